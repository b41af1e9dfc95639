/* fuzz-connection-config.c: URI and conninfo text -> ConnectionConfig; a
 * config that parses must render to a URI and a conninfo string that parse
 * back to the same fields. */
#include <string.h>

#include "tusk-connection-config.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
assert_same (const TuskConnectionConfig *a, const TuskConnectionConfig *b)
{
  g_assert_cmpstr (a->host, ==, b->host);
  g_assert_cmpint (a->port, ==, b->port);
  g_assert_cmpstr (a->database, ==, b->database);
  g_assert_cmpstr (a->username, ==, b->username);
  g_assert_cmpint (a->ssl_mode, ==, b->ssl_mode);
  g_assert_cmpstr (a->ssl_root_cert, ==, b->ssl_root_cert);
  g_assert_cmpstr (a->ssl_cert, ==, b->ssl_cert);
  g_assert_cmpstr (a->ssl_key, ==, b->ssl_key);
  g_assert_cmpint (a->options.connect_timeout_secs, ==,
                   b->options.connect_timeout_secs);
  g_assert_cmpint (a->options.statement_timeout_secs, ==,
                   b->options.statement_timeout_secs);
  g_assert_cmpint (a->options.read_only, ==, b->options.read_only);
  g_assert_cmpstr (a->options.application_name, ==,
                   b->options.application_name);
}

static void
round_trip (const TuskConnectionConfig *config, char *text)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) again
      = tusk_connection_config_new_from_string (text, NULL, &error);
  if (again == NULL)
    g_error ("\"%s\" does not parse back: %s", text, error->message);
  assert_same (config, again);
  g_free (text);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *)data, size);
  if (strlen (text) != size)
    return 0; /* a C string: an embedded NUL cannot reach the parser */

  g_autoptr (GError) error = NULL;
  g_autofree char *password = NULL;
  g_autoptr (TuskConnectionConfig) config
      = tusk_connection_config_new_from_string (text, &password, &error);
  if (config == NULL)
    {
      g_assert (error != NULL && error->message != NULL);
      return 0;
    }
  g_assert (error == NULL);
  (void)tusk_connection_config_validate (config, NULL);
  round_trip (config, tusk_connection_config_to_uri (config));
  round_trip (config, tusk_connection_config_to_conninfo (config));
  return 0;
}
