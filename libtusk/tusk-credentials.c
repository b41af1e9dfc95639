/* tusk-credentials.c: being written */
