/* tusk-shell.c: placeholder until the shell core lands (issue 8). */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-shell.h"
