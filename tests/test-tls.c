/* test-tls.c: every SslMode through a pool against the test environment's
 * SSL-enabled PostgreSQL, the root certificate, client certificate and key,
 * and each TLS failure as a TUSK_ERROR_SSL (or authentication) error with
 * its own hint: certificate not trusted, host name mismatch, root
 * certificate missing, server without SSL under require, client key with
 * loose permissions, client certificate required.
 *
 * Turns the server's ssl off and on again (a reload): not run in parallel
 * with other tests. */
#include <string.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "tusk.h"
#include "tusk-pool-private.h"
#include "tusk-test.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGconn, PQfinish)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

static TuskPoolOptions
small_pool (void)
{
  TuskPoolOptions options;
  tusk_pool_options_init (&options);
  options.max_size = 1;
  return options;
}

/* The password role over TCP, in @mode, with the test CA. */
static TuskConnectionConfig *
tls_config (TuskSslMode mode)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup ("tls");
  config->host = g_strdup ("localhost");
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  config->ssl_mode = mode;
  config->ssl_root_cert = g_strdup (tusk_test_env ("TUSK_TEST_SSL_ROOT_CERT"));
  return config;
}

/* Through hostaddr 127.0.0.1 with @config's host as the name TLS checks
 * (what a tunnel does). */
static TuskPool *
pool_new (const TuskConnectionConfig *config, GError **error)
{
  TuskPoolOptions options = small_pool ();
  TuskPoolRoute route = { .hostaddr = tusk_test_env ("TUSK_TEST_PGHOST"),
                          .port = config->port };
  return tusk_pool_new_routed_sync (config,
                                    tusk_test_env ("TUSK_TEST_PGPASSWORD"),
                                    &options, &route, NULL, error);
}

/* Whether the pool's connection uses SSL. */
static gboolean
uses_ssl (TuskPool *pool)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskPoolConn) conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  g_autoptr (PGresult) res = PQexec (
      pg, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid ()");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);
  gboolean server_says = g_str_equal (PQgetvalue (res, 0, 0), "t");
  g_assert_cmpint (server_says, ==, PQsslInUse (pg));
  return server_says;
}

static void
assert_connects (TuskConnectionConfig *config, gboolean ssl)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskPool) pool = pool_new (config, &error);
  g_assert_no_error (error);
  g_assert_cmpint (uses_ssl (pool), ==, ssl);
}

/* Asserts that @config fails with @code, a message containing @needle and
 * a hint containing @hint_needle. */
static void
assert_fails (TuskConnectionConfig *config, TuskErrorCode code,
              const char *needle, const char *hint_needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskPool) pool = pool_new (config, &error);
  g_assert_null (pool);
  tusk_assert_error (error, code);
  const char *hint = tusk_error_get_hint (error);
  g_test_message ("%s (hint: %s)", error->message, hint);
  if (strstr (error->message, needle) == NULL)
    g_error ("expected \"%s\" in: %s", needle, error->message);
  g_assert_nonnull (hint);
  if (strstr (hint, hint_needle) == NULL)
    g_error ("expected \"%s\" in the hint: %s", hint_needle, hint);
  /* The ErrorInfo a front end shows carries the same hint. */
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  g_assert_cmpstr (info->hint, ==, hint);
}

static void
test_modes (void)
{
  g_autoptr (TuskConnectionConfig) config = tls_config (TUSK_SSL_MODE_DISABLE);

  assert_connects (config, FALSE);
  config->ssl_mode = TUSK_SSL_MODE_PREFER;
  assert_connects (config, TRUE);
  config->ssl_mode = TUSK_SSL_MODE_REQUIRE;
  assert_connects (config, TRUE);
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_CA;
  assert_connects (config, TRUE);
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  assert_connects (config, TRUE);

  /* verify-ca does not check the name; verify-full does. */
  g_free (config->host);
  config->host = g_strdup ("tusk.invalid");
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_CA;
  assert_connects (config, TRUE);
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  assert_fails (config, TUSK_ERROR_SSL, "does not match host name",
                "another host name");

  /* The certificate also names 127.0.0.1. */
  g_free (config->host);
  config->host = g_strdup ("127.0.0.1");
  assert_connects (config, TRUE);
}

static void
test_untrusted (void)
{
  g_autoptr (TuskConnectionConfig) config
      = tls_config (TUSK_SSL_MODE_VERIFY_CA);

  /* A root that did not sign the server's certificate (the client
   * certificate is no CA at all). */
  g_free (config->ssl_root_cert);
  config->ssl_root_cert
      = g_strdup (tusk_test_env ("TUSK_TEST_SSL_CLIENT_CERT"));
  assert_fails (config, TUSK_ERROR_SSL, "certificate verify failed",
                "not trusted");
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  assert_fails (config, TUSK_ERROR_SSL, "certificate verify failed",
                "not trusted");

  /* No root certificate where one is needed. */
  g_free (config->ssl_root_cert);
  config->ssl_root_cert = g_strdup ("/nonexistent/tusk/root.crt");
  assert_fails (config, TUSK_ERROR_SSL, "root certificate file", "sslrootcert");
}

/* Runs @sql as the superuser. */
static void
admin (const char *sql)
{
  const char *keywords[]
      = { "host", "port", "dbname", "user", "sslmode", NULL };
  const char *values[] = { tusk_test_env ("TUSK_TEST_PGSOCKET"),
                           tusk_test_env ("TUSK_TEST_PGPORT"),
                           tusk_test_env ("TUSK_TEST_PGDATABASE"),
                           tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
                           "disable",
                           NULL };
  g_autoptr (PGconn) pg = PQconnectdbParams (keywords, values, 0);
  g_assert_cmpint (PQstatus (pg), ==, CONNECTION_OK);
  g_autoptr (PGresult) res = PQexec (pg, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK
      && PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQerrorMessage (pg));
}

/* Whether a new connection in sslmode prefer gets SSL (a reload of ssl
 * takes effect for new connections once the postmaster has read it). */
static gboolean
server_offers_ssl (gpointer want)
{
  const char *keywords[]
      = { "host", "port", "dbname", "user", "sslmode", NULL };
  const char *values[] = { tusk_test_env ("TUSK_TEST_PGHOST"),
                           tusk_test_env ("TUSK_TEST_PGPORT"),
                           tusk_test_env ("TUSK_TEST_PGDATABASE"),
                           tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
                           "prefer",
                           NULL };
  g_autoptr (PGconn) pg = PQconnectdbParams (keywords, values, 0);
  g_assert_cmpint (PQstatus (pg), ==, CONNECTION_OK);
  return PQsslInUse (pg) == GPOINTER_TO_INT (want);
}

static void
set_server_ssl (gboolean on)
{
  admin (on ? "ALTER SYSTEM SET ssl = on" : "ALTER SYSTEM SET ssl = off");
  admin ("SELECT pg_reload_conf ()");
  tusk_test_wait_until (server_offers_ssl, GINT_TO_POINTER (on), 30000);
}

static void
test_server_without_ssl (void)
{
  g_autoptr (TuskConnectionConfig) config = tls_config (TUSK_SSL_MODE_REQUIRE);

  set_server_ssl (FALSE);
  assert_fails (config, TUSK_ERROR_SSL, "does not support SSL",
                "does not offer SSL");
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  assert_fails (config, TUSK_ERROR_SSL, "does not support SSL",
                "does not offer SSL");
  /* prefer goes on without it. */
  config->ssl_mode = TUSK_SSL_MODE_PREFER;
  assert_connects (config, FALSE);
  set_server_ssl (TRUE);
  assert_connects (config, TRUE);
}

static TuskConnectionConfig *
cert_config (void)
{
  TuskConnectionConfig *config = tls_config (TUSK_SSL_MODE_VERIFY_FULL);
  g_free (config->username);
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_CERT"));
  config->ssl_cert = g_strdup (tusk_test_env ("TUSK_TEST_SSL_CLIENT_CERT"));
  config->ssl_key = g_strdup (tusk_test_env ("TUSK_TEST_SSL_CLIENT_KEY"));
  return config;
}

static void
test_client_certificate (void)
{
  g_autoptr (TuskConnectionConfig) config = cert_config ();
  g_autoptr (GError) error = NULL;

  /* The certificate logs in as its CN, with no password. */
  TuskPoolOptions options = small_pool ();
  g_autoptr (TuskPool) pool
      = tusk_pool_new_sync (config, NULL, &options, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TuskPoolConn) conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  g_autoptr (PGresult) res = PQexec (
      pg, "SELECT current_user, client_dn FROM pg_stat_ssl WHERE pid = "
          "pg_backend_pid ()");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);
  g_assert_cmpstr (PQgetvalue (res, 0, 0), ==,
                   tusk_test_env ("TUSK_TEST_PGUSER_CERT"));
  g_assert_cmpstr (PQgetvalue (res, 0, 1), ==, "/CN=tusk_cert");
}

static void
test_client_certificate_problems (void)
{
  g_autoptr (TuskConnectionConfig) config = cert_config ();
  g_autofree char *dir = g_dir_make_tmp ("tusk-tls-XXXXXX", NULL);

  /* Without a certificate the cert-only role is refused. */
  g_clear_pointer (&config->ssl_cert, g_free);
  g_clear_pointer (&config->ssl_key, g_free);
  config->ssl_cert = g_build_filename (dir, "missing.crt", NULL);
  config->ssl_key = g_build_filename (dir, "missing.key", NULL);
  assert_fails (config, TUSK_ERROR_AUTHENTICATION,
                "requires a valid client certificate", "sslcert");

  /* A key others can read. */
  g_autofree char *key = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (
      tusk_test_env ("TUSK_TEST_SSL_CLIENT_KEY"), &key, &len, NULL));
  g_free (config->ssl_cert);
  config->ssl_cert = g_strdup (tusk_test_env ("TUSK_TEST_SSL_CLIENT_CERT"));
  g_free (config->ssl_key);
  config->ssl_key = g_build_filename (dir, "loose.key", NULL);
  g_assert_true (g_file_set_contents_full (
      config->ssl_key, key, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0644, NULL));
  g_chmod (config->ssl_key, 0644);
  assert_fails (config, TUSK_ERROR_SSL, "private key file", "chmod 600");

  /* A certificate without its key. */
  g_unlink (config->ssl_key);
  assert_fails (config, TUSK_ERROR_SSL, "not private key", "sslkey");

  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_log_set_filter (g_getenv ("TUSK_LOG") ? g_getenv ("TUSK_LOG") : "error",
                       NULL);

  g_test_add_func ("/tusk/tls/modes", test_modes);
  g_test_add_func ("/tusk/tls/untrusted", test_untrusted);
  g_test_add_func ("/tusk/tls/server-without-ssl", test_server_without_ssl);
  g_test_add_func ("/tusk/tls/client-certificate", test_client_certificate);
  g_test_add_func ("/tusk/tls/client-certificate-problems",
                   test_client_certificate_problems);
  return g_test_run ();
}
