/* tusk-saved-query-repo.c: being written */
