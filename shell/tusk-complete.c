/* tusk-complete.c: placeholder until completion lands (issue 8). */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-complete.h"
