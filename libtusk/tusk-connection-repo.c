/* tusk-connection-repo.c: being written */
