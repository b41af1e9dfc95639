/* fuzz-history-redact.c: SQL text -> tusk_history_redact_sql (); redacting
 * is idempotent, keeps valid UTF-8 valid, and leaves text without
 * "password" or "://" unchanged; tusk_history_redact_message () takes any
 * text. */
#include <string.h>

#include "tusk-history-repo.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *sql = g_strndup ((const char *)data, size);
  if (strlen (sql) != size)
    return 0;
  g_autofree char *once = tusk_history_redact_sql (sql);
  g_autofree char *twice = tusk_history_redact_sql (once);
  g_assert_cmpstr (twice, ==, once);
  if (g_utf8_validate (sql, -1, NULL))
    g_assert (g_utf8_validate (once, -1, NULL));
  g_autofree char *folded = g_ascii_strdown (sql, -1);
  if (strstr (folded, "password") == NULL && strstr (folded, "://") == NULL)
    g_assert_cmpstr (once, ==, sql);
  g_autofree char *message = tusk_history_redact_message (sql, sql);
  g_assert_nonnull (message);
  return 0;
}
