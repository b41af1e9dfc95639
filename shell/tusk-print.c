/* tusk-print.c: placeholder until the printer lands (issue 8). */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-print.h"

void
tusk_print_options_init (TuskPrintOptions *options)
{
  *options = (TuskPrintOptions){ .format = TUSK_FORMAT_TABLE,
                                 .null_display = "",
                                 .field_separator = "|" };
}
