/* tusk-meta.c: placeholder until the backslash commands land (issue 8). */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-meta.h"
