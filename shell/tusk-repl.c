/* tusk-repl.c: placeholder until the interactive shell lands (issue 8). */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-repl.h"
