/* tusk-connection-config.c: being written */
