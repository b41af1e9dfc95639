/* tusk-tunnel-repo.c: being written */
