/* fuzz-log-filter.c: TUSK_LOG directives from arbitrary text: every
 * directive is applied or named in a problem, never a crash. */
#include <string.h>

#include "tusk-log.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *)data, size);
  if (strlen (text) != size)
    return 0;
  g_auto (GStrv) problems = NULL;
  gboolean ok = tusk_log_set_filter (text, &problems);
  g_assert (ok == (problems == NULL));
  for (guint i = 0; problems != NULL && problems[i] != NULL; i++)
    g_assert (g_utf8_validate (problems[i], -1, NULL));
  return 0;
}
