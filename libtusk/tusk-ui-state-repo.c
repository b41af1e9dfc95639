/* tusk-ui-state-repo.c: being written */
