/* tusk-storage.c: being written */
