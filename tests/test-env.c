/* test-env.c: proves that scripts/test-env.sh provides what the other tests
 * rely on: PostgreSQL with verified SSL and trust, SCRAM and certificate
 * logins, the Secret Service on a private session bus, and sshd with a known
 * host key, key and password logins.
 *
 * Every case reads its coordinates from the TUSK_TEST_* variables
 * (docs/TEST-ENV.md) and fails, never skips, when they are missing. */

#define G_LOG_DOMAIN "tusk-test-env"

#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <libpq-fe.h>
#include <libsecret/secret.h>
#include <libssh/libssh.h>

typedef struct ssh_session_struct SshSession;
typedef struct ssh_key_struct SshKey;
typedef struct ssh_channel_struct SshChannel;

static void
ssh_session_close (SshSession *session)
{
  ssh_disconnect (session);
  ssh_free (session);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGconn, PQfinish)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SshSession, ssh_session_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SshKey, ssh_key_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SshChannel, ssh_channel_free)

/* The value of the variable NAME.  When it is unset or empty, logs that,
 * marks the current test failed and returns NULL; callers read all their
 * variables and then return if g_test_failed (), so the log names every
 * missing one. */
static const char *
need (const char *name)
{
  const char *value = g_getenv (name);

  if (value == NULL || *value == '\0')
    {
      g_test_message ("%s is not set", name);
      g_test_fail_printf ("%s is not set: run under scripts/test-env.sh", name);
      return NULL;
    }
  return value;
}

/* ------------------------------------------------------------ PostgreSQL */

typedef struct
{
  const char *host;
  const char *port;
  const char *socket;
  const char *dbname;
  const char *user_trust;
  const char *user_password;
  const char *password;
  const char *user_cert;
  const char *root_cert;
  const char *client_cert;
  const char *client_key;
} PgEnv;

/* Reads every PostgreSQL variable; FALSE (with the test failed) if any is
 * missing. */
static gboolean
pg_env_load (PgEnv *env)
{
  env->host = need ("TUSK_TEST_PGHOST");
  env->port = need ("TUSK_TEST_PGPORT");
  env->socket = need ("TUSK_TEST_PGSOCKET");
  env->dbname = need ("TUSK_TEST_PGDATABASE");
  env->user_trust = need ("TUSK_TEST_PGUSER_TRUST");
  env->user_password = need ("TUSK_TEST_PGUSER_PASSWORD");
  env->password = need ("TUSK_TEST_PGPASSWORD");
  env->user_cert = need ("TUSK_TEST_PGUSER_CERT");
  env->root_cert = need ("TUSK_TEST_SSL_ROOT_CERT");
  env->client_cert = need ("TUSK_TEST_SSL_CLIENT_CERT");
  env->client_key = need ("TUSK_TEST_SSL_CLIENT_KEY");
  return !g_test_failed ();
}

/* Connects with the NULL-terminated keyword/value pairs in KV.  PG*
 * variables of the caller still fill in what KV leaves out, as in any libpq
 * program, so the cases set everything they depend on. */
static PGconn *
pg_connect (const char *const *kv)
{
  GPtrArray *keywords = g_ptr_array_new ();
  GPtrArray *values = g_ptr_array_new ();
  PGconn *conn;

  for (guint i = 0; kv[i] != NULL; i += 2)
    {
      g_ptr_array_add (keywords, (gpointer)kv[i]);
      g_ptr_array_add (values, (gpointer)kv[i + 1]);
    }
  g_ptr_array_add (keywords, NULL);
  g_ptr_array_add (values, NULL);
  conn = PQconnectdbParams ((const char *const *)keywords->pdata,
                            (const char *const *)values->pdata, 0);
  g_ptr_array_unref (keywords);
  g_ptr_array_unref (values);
  g_assert_nonnull (conn);
  return conn;
}

static void
assert_connected (PGconn *conn)
{
  if (PQstatus (conn) != CONNECTION_OK)
    g_test_message ("connection failed: %s", PQerrorMessage (conn));
  g_assert_cmpint (PQstatus (conn), ==, CONNECTION_OK);
}

/* Asserts that CONN failed, and failed with a message containing WHY. */
static void
assert_refused (PGconn *conn, const char *why)
{
  const char *message = PQerrorMessage (conn);

  g_assert_cmpint (PQstatus (conn), ==, CONNECTION_BAD);
  if (strstr (message, why) == NULL)
    g_test_message ("expected \"%s\" in: %s", why, message);
  g_assert_nonnull (strstr (message, why));
}

/* Runs `SELECT 1, current_user` and checks both values. */
static void
assert_select_1_as (PGconn *conn, const char *user)
{
  g_autoptr (PGresult) res = PQexec (conn, "SELECT 1, current_user");

  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    g_test_message ("SELECT 1 failed: %s", PQerrorMessage (conn));
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);
  g_assert_cmpint (PQntuples (res), ==, 1);
  g_assert_cmpstr (PQgetvalue (res, 0, 0), ==, "1");
  g_assert_cmpstr (PQgetvalue (res, 0, 1), ==, user);
}

static void
test_postgres_ssl_verify_full (void)
{
  PgEnv env;

  if (!pg_env_load (&env))
    return;

  /* The certificate names localhost; hostaddr skips the name lookup. */
  const char *const good[] = { "host",
                               "localhost",
                               "hostaddr",
                               env.host,
                               "port",
                               env.port,
                               "dbname",
                               env.dbname,
                               "user",
                               env.user_password,
                               "password",
                               env.password,
                               "sslmode",
                               "verify-full",
                               "sslrootcert",
                               env.root_cert,
                               "connect_timeout",
                               "10",
                               NULL };
  g_autoptr (PGconn) conn = pg_connect (good);
  assert_connected (conn);
  g_assert_cmpint (PQsslInUse (conn), ==, 1);
  g_assert_nonnull (PQsslAttribute (conn, "protocol"));
  assert_select_1_as (conn, env.user_password);

  /* Same server, a name the certificate does not carry. */
  const char *const mismatch[] = { "host",
                                   "tusk.invalid",
                                   "hostaddr",
                                   env.host,
                                   "port",
                                   env.port,
                                   "dbname",
                                   env.dbname,
                                   "user",
                                   env.user_password,
                                   "password",
                                   env.password,
                                   "sslmode",
                                   "verify-full",
                                   "sslrootcert",
                                   env.root_cert,
                                   "connect_timeout",
                                   "10",
                                   NULL };
  g_autoptr (PGconn) bad = pg_connect (mismatch);
  assert_refused (bad, "does not match host name");
}

static void
test_postgres_client_cert (void)
{
  PgEnv env;

  if (!pg_env_load (&env))
    return;

  const char *const with_cert[]
      = { "host",        "localhost",    "hostaddr",        env.host,
          "port",        env.port,       "dbname",          env.dbname,
          "user",        env.user_cert,  "sslmode",         "verify-full",
          "sslrootcert", env.root_cert,  "sslcert",         env.client_cert,
          "sslkey",      env.client_key, "connect_timeout", "10",
          NULL };
  g_autoptr (PGconn) conn = pg_connect (with_cert);
  assert_connected (conn);
  g_assert_cmpint (PQsslInUse (conn), ==, 1);
  assert_select_1_as (conn, env.user_cert);

  /* Without a certificate the cert role is refused. */
  const char *const without_cert[] = { "host",
                                       "localhost",
                                       "hostaddr",
                                       env.host,
                                       "port",
                                       env.port,
                                       "dbname",
                                       env.dbname,
                                       "user",
                                       env.user_cert,
                                       "sslmode",
                                       "verify-full",
                                       "sslrootcert",
                                       env.root_cert,
                                       "sslcert",
                                       "/nonexistent/tusk.crt",
                                       "sslkey",
                                       "/nonexistent/tusk.key",
                                       "connect_timeout",
                                       "10",
                                       NULL };
  g_autoptr (PGconn) bad = pg_connect (without_cert);
  assert_refused (bad, "connection requires a valid client certificate");
}

static void
test_postgres_scram_wrong_password (void)
{
  PgEnv env;

  if (!pg_env_load (&env))
    return;

  g_autofree char *wrong = g_strconcat ("wrong-", env.password, NULL);
  const char *const kv[] = { "host",
                             env.host,
                             "port",
                             env.port,
                             "dbname",
                             env.dbname,
                             "user",
                             env.user_password,
                             "password",
                             wrong,
                             "sslmode",
                             "require",
                             "connect_timeout",
                             "10",
                             NULL };
  g_autoptr (PGconn) conn = pg_connect (kv);
  assert_refused (conn, "password authentication failed");
}

static void
test_postgres_trust_socket (void)
{
  PgEnv env;

  if (!pg_env_load (&env))
    return;

  const char *const kv[] = { "host",   env.socket,        "port",
                             env.port, "dbname",          env.dbname,
                             "user",   env.user_trust,    "password",
                             "",       "connect_timeout", "10",
                             NULL };
  g_autoptr (PGconn) conn = pg_connect (kv);
  assert_connected (conn);
  g_assert_cmpint (PQsslInUse (conn), ==, 0);
  assert_select_1_as (conn, env.user_trust);
}

/* -------------------------------------------------------- Secret Service */

static const SecretSchema test_schema = {
  .name = "dev.tusk.Tusk.TestEnv",
  .flags = SECRET_SCHEMA_NONE,
  .attributes = {
      { "case", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

static void
test_secret_service (void)
{
  const char *dir = need ("TUSK_TEST_DIR");
  const char *bus = need ("DBUS_SESSION_BUS_ADDRESS");
  g_autoptr (GError) error = NULL;
  g_autofree char *key = g_uuid_string_random ();
  g_autofree char *secret = g_uuid_string_random ();

  need ("TUSK_TEST_KEYRING");
  if (g_test_failed ())
    return;

  /* Never write into a real keyring: the bus must be the private one. */
  g_autofree char *private_bus = g_strconcat ("unix:path=", dir, "/", NULL);
  if (!g_str_has_prefix (bus, private_bus))
    {
      g_test_fail_printf ("DBUS_SESSION_BUS_ADDRESS=%s is not below %s: "
                          "run under scripts/test-env.sh",
                          bus, dir);
      return;
    }

  gboolean stored = secret_password_store_sync (
      &test_schema, SECRET_COLLECTION_DEFAULT, "tusk test-env", secret, NULL,
      &error, "case", key, NULL);
  g_assert_no_error (error);
  g_assert_true (stored);

  g_autofree char *found = NULL;
  found = secret_password_lookup_sync (&test_schema, NULL, &error, "case", key,
                                       NULL);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, secret);

  gboolean cleared = secret_password_clear_sync (&test_schema, NULL, &error,
                                                 "case", key, NULL);
  g_assert_no_error (error);
  g_assert_true (cleared);

  g_autofree char *gone = secret_password_lookup_sync (
      &test_schema, NULL, &error, "case", key, NULL);
  g_assert_no_error (error);
  g_assert_null (gone);
}

/* ------------------------------------------------------------------ sshd */

typedef struct
{
  const char *host;
  guint port;
  const char *user;
  const char *password;
  const char *key;
  const char *key_enc;
  const char *key_passphrase;
  const char *known_hosts;
} SshEnv;

static gboolean
ssh_env_load (SshEnv *env)
{
  const char *port;
  guint64 number = 0;

  env->host = need ("TUSK_TEST_SSH_HOST");
  port = need ("TUSK_TEST_SSH_PORT");
  env->user = need ("TUSK_TEST_SSH_USER");
  env->password = need ("TUSK_TEST_SSH_PASSWORD");
  env->key = need ("TUSK_TEST_SSH_KEY");
  env->key_enc = need ("TUSK_TEST_SSH_KEY_ENC");
  env->key_passphrase = need ("TUSK_TEST_SSH_KEY_PASSPHRASE");
  env->known_hosts = need ("TUSK_TEST_SSH_KNOWN_HOSTS");
  if (port != NULL
      && !g_ascii_string_to_unsigned (port, 10, 1, 65535, &number, NULL))
    g_test_fail_printf ("TUSK_TEST_SSH_PORT=%s is not a port", port);
  env->port = (guint)number;
  return !g_test_failed ();
}

/* A session connected to the test sshd whose host key has been verified
 * against TUSK_TEST_SSH_KNOWN_HOSTS; not yet authenticated.  ~/.ssh/config
 * is not read, so the caller's settings cannot interfere. */
static SshSession *
ssh_open (const SshEnv *env)
{
  g_autoptr (SshSession) session = ssh_new ();
  unsigned int port = env->port;
  long timeout = 10;
  bool process_config = false;

  g_assert_nonnull (session);
  g_assert_cmpint (ssh_options_set (session, SSH_OPTIONS_HOST, env->host), ==,
                   SSH_OK);
  g_assert_cmpint (ssh_options_set (session, SSH_OPTIONS_PORT, &port), ==,
                   SSH_OK);
  g_assert_cmpint (ssh_options_set (session, SSH_OPTIONS_USER, env->user), ==,
                   SSH_OK);
  g_assert_cmpint (
      ssh_options_set (session, SSH_OPTIONS_KNOWNHOSTS, env->known_hosts), ==,
      SSH_OK);
  g_assert_cmpint (
      ssh_options_set (session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null"), ==,
      SSH_OK);
  g_assert_cmpint (
      ssh_options_set (session, SSH_OPTIONS_PROCESS_CONFIG, &process_config),
      ==, SSH_OK);
  g_assert_cmpint (ssh_options_set (session, SSH_OPTIONS_TIMEOUT, &timeout), ==,
                   SSH_OK);

  if (ssh_connect (session) != SSH_OK)
    g_test_message ("ssh_connect: %s", ssh_get_error (session));
  g_assert_true (ssh_is_connected (session));
  g_assert_cmpint (ssh_session_is_known_server (session), ==,
                   SSH_KNOWN_HOSTS_OK);
  return g_steal_pointer (&session);
}

/* Authenticates SESSION with the private key at PATH (PASSPHRASE may be
 * NULL) and asserts success. */
static void
ssh_auth_key (SshSession *session, const char *path, const char *passphrase)
{
  g_autoptr (SshKey) key = NULL;

  g_assert_cmpint (
      ssh_pki_import_privkey_file (path, passphrase, NULL, NULL, &key), ==,
      SSH_OK);
  int rc = ssh_userauth_publickey (session, NULL, key);
  if (rc != SSH_AUTH_SUCCESS)
    g_test_message ("publickey auth: %s", ssh_get_error (session));
  g_assert_cmpint (rc, ==, SSH_AUTH_SUCCESS);
}

/* Runs COMMAND on SESSION and returns its standard output. */
static char *
ssh_exec (SshSession *session, const char *command)
{
  g_autoptr (SshChannel) channel = ssh_channel_new (session);
  g_autoptr (GString) out = g_string_new (NULL);
  char buffer[256];
  int n;

  g_assert_nonnull (channel);
  g_assert_cmpint (ssh_channel_open_session (channel), ==, SSH_OK);
  g_assert_cmpint (ssh_channel_request_exec (channel, command), ==, SSH_OK);
  while ((n = ssh_channel_read (channel, buffer, sizeof buffer, 0)) > 0)
    g_string_append_len (out, buffer, n);
  g_assert_cmpint (n, ==, 0);
  ssh_channel_send_eof (channel);
  ssh_channel_close (channel);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_ssh_session (void)
{
  SshEnv env;

  if (!ssh_env_load (&env))
    return;

  g_autoptr (SshSession) session = ssh_open (&env);
  ssh_auth_key (session, env.key, NULL);
  g_autofree char *out = ssh_exec (session, "echo hi");
  g_assert_cmpstr (out, ==, "hi\n");
}

static void
test_ssh_key_passphrase (void)
{
  SshEnv env;
  g_autoptr (SshKey) key = NULL;

  if (!ssh_env_load (&env))
    return;

  /* Without the passphrase the key does not open. */
  g_assert_cmpint (
      ssh_pki_import_privkey_file (env.key_enc, "wrong", NULL, NULL, &key), !=,
      SSH_OK);

  g_autoptr (SshSession) session = ssh_open (&env);
  ssh_auth_key (session, env.key_enc, env.key_passphrase);
  g_autofree char *out = ssh_exec (session, "echo hi");
  g_assert_cmpstr (out, ==, "hi\n");
}

static void
test_ssh_password (void)
{
  SshEnv env;

  if (!ssh_env_load (&env))
    return;

  g_autoptr (SshSession) session = ssh_open (&env);
  int rc = ssh_userauth_password (session, NULL, env.password);
  if (rc != SSH_AUTH_SUCCESS)
    g_test_message ("password auth: %s", ssh_get_error (session));
  g_assert_cmpint (rc, ==, SSH_AUTH_SUCCESS);
  g_autofree char *out = ssh_exec (session, "echo hi");
  g_assert_cmpstr (out, ==, "hi\n");

  /* A wrong password is refused. */
  g_autoptr (SshSession) other = ssh_open (&env);
  g_autofree char *wrong = g_strconcat ("wrong-", env.password, NULL);
  g_assert_cmpint (ssh_userauth_password (other, NULL, wrong), ==,
                   SSH_AUTH_DENIED);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  ssh_init ();

  g_test_add_func ("/tusk/env/postgres-ssl-verify-full",
                   test_postgres_ssl_verify_full);
  g_test_add_func ("/tusk/env/postgres-client-cert", test_postgres_client_cert);
  g_test_add_func ("/tusk/env/postgres-scram-wrong-password",
                   test_postgres_scram_wrong_password);
  g_test_add_func ("/tusk/env/postgres-trust-socket",
                   test_postgres_trust_socket);
  g_test_add_func ("/tusk/env/secret-service", test_secret_service);
  g_test_add_func ("/tusk/env/ssh-session", test_ssh_session);
  g_test_add_func ("/tusk/env/ssh-key-passphrase", test_ssh_key_passphrase);
  g_test_add_func ("/tusk/env/ssh-password", test_ssh_password);

  status = g_test_run ();
  ssh_finalize ();
  return status;
}
