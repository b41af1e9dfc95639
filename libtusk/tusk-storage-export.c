/* tusk-storage-export.c: being written */
