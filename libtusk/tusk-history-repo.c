/* tusk-history-repo.c: being written */
