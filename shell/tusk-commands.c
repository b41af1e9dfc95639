/* tusk-commands.c: placeholder until the subcommands land (issue 8). */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-commands.h"
