/* test-ssh-tunnel.c: SSH tunnels against the test environment's real sshd
 * and PostgreSQL: every authentication method (a real ssh-agent included),
 * host keys known, unknown (accepted through a question, refused without a
 * front end) and changed, the distinct failures, cancelling, many
 * connections through one tunnel, sshd stopped and started again, and
 * TuskState connecting through a tunnel end to end (the prompt on the main
 * context, the keychain's passphrase, TLS verify-full through the tunnel).
 *
 * Stops and starts the run's sshd: not run in parallel with other tests. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "tusk.h"
#include "tusk-pool-private.h"
#include "tusk-test.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGconn, PQfinish)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

/* ---- the environment ------------------------------------------------------
 */

typedef struct
{
  char *root;        /* a temporary directory, removed at teardown */
  char *ssh_dir;     /* empty: nothing known, no default keys */
  char *known_hosts; /* Tusk's own known_hosts (not created yet) */
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-ssh-tunnel-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->ssh_dir = g_build_filename (f->root, "ssh", NULL);
  g_assert_cmpint (g_mkdir (f->ssh_dir, 0700), ==, 0);
  f->known_hosts = g_build_filename (f->root, "tusk_known_hosts", NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->root);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->ssh_dir);
  g_free (f->known_hosts);
  g_free (f->root);
}

static int
ssh_port (void)
{
  return atoi (tusk_test_env ("TUSK_TEST_SSH_PORT"));
}

static int
pg_port (void)
{
  return atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
}

/* Makes @f's ssh dir know the test sshd's host key, as ~/.ssh/known_hosts
 * would. */
static void
know_host (Fixture *f)
{
  g_autofree char *contents = NULL;
  g_assert_true (g_file_get_contents (
      tusk_test_env ("TUSK_TEST_SSH_KNOWN_HOSTS"), &contents, NULL, NULL));
  g_autofree char *path = g_build_filename (f->ssh_dir, "known_hosts", NULL);
  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
}

/* The host key's fingerprint as `ssh-keygen -l -E sha256` prints it. */
static char *
expected_fingerprint (void)
{
  g_autofree char *out = NULL;
  const char *argv[]
      = { "ssh-keygen", "-l", "-E",
          "sha256",     "-f", tusk_test_env ("TUSK_TEST_SSH_HOST_KEY_PUB"),
          NULL };
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, &out, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_auto (GStrv) fields = g_strsplit (out, " ", -1);
  g_assert_cmpuint (g_strv_length (fields), >=, 2);
  g_assert_true (g_str_has_prefix (fields[1], "SHA256:"));
  return g_strdup (fields[1]);
}

static TuskSshTunnelConfig *
tunnel_config (TuskSshAuthMethod method)
{
  TuskSshTunnelConfig *config = tusk_ssh_tunnel_config_new ();
  config->name = g_strdup ("test bastion");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_SSH_HOST"));
  config->port = ssh_port ();
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_SSH_USER"));
  config->auth_method = method;
  if (method == TUSK_SSH_AUTH_KEY)
    config->key_path = g_strdup (tusk_test_env ("TUSK_TEST_SSH_KEY"));
  return config;
}

/* Options for @f: its ssh dir and known_hosts, non-interactive. */
static TuskSshTunnelOptions
options_for (Fixture *f)
{
  TuskSshTunnelOptions options = {
    .ssh_dir = f->ssh_dir,
    .known_hosts = f->known_hosts,
    .connect_timeout_secs = 10,
  };
  return options;
}

static TuskSshTunnel *
open_tunnel (const TuskSshTunnelConfig *config,
             const TuskSshTunnelOptions *options, GError **error)
{
  return tusk_ssh_tunnel_open_sync (config, tusk_test_env ("TUSK_TEST_PGHOST"),
                                    pg_port (), options, NULL, error);
}

/* A plain libpq connection through the tunnel's port. */
static PGconn *
connect_through (TuskSshTunnel *tunnel)
{
  g_autofree char *port
      = g_strdup_printf ("%u", tusk_ssh_tunnel_get_local_port (tunnel));
  const char *keywords[]
      = { "hostaddr",        "port", "dbname", "user", "sslmode",
          "connect_timeout", NULL };
  const char *values[] = { "127.0.0.1",
                           port,
                           tusk_test_env ("TUSK_TEST_PGDATABASE"),
                           tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
                           "disable",
                           "10",
                           NULL };
  PGconn *pg = PQconnectdbParams (keywords, values, 0);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect through the tunnel: %s", PQerrorMessage (pg));
  return pg;
}

static void
assert_query (PGconn *pg)
{
  g_autoptr (PGresult) res = PQexec (pg, "SELECT 40 + 2, current_user");
  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("query through the tunnel: %s", PQerrorMessage (pg));
  g_assert_cmpstr (PQgetvalue (res, 0, 0), ==, "42");
}

/* Opens a connection through @tunnel and runs a query on it. */
static void
assert_tunnel_works (TuskSshTunnel *tunnel)
{
  g_autoptr (PGconn) pg = connect_through (tunnel);
  assert_query (pg);
}

/* Asserts a TUSK_ERROR_SSH whose message contains @needle and whose hint
 * contains @hint_needle (both nullable). */
static void
assert_ssh_error (const GError *error, const char *needle,
                  const char *hint_needle)
{
  tusk_assert_error (error, TUSK_ERROR_SSH);
  g_test_message ("%s (hint: %s)", error->message, tusk_error_get_hint (error));
  if (needle && strstr (error->message, needle) == NULL)
    g_error ("expected \"%s\" in: %s", needle, error->message);
  const char *hint = tusk_error_get_hint (error);
  g_assert_nonnull (hint);
  if (hint_needle && strstr (hint, hint_needle) == NULL)
    g_error ("expected \"%s\" in the hint: %s", hint_needle, hint);
}

/* ---- a front end that answers on the connecting thread ---------------------
 */

typedef struct
{
  gboolean accept;
  const char *secret; /* given to PASSPHRASE / PASSWORD */
  gboolean answer;    /* FALSE: leave the question unanswered */
  guint n_asked;
  guint n_retries;
  TuskSshQuestionKind last_kind;
  char *fingerprint;
  char *message;
  TuskSshQuestion *pending; /* when !answer: a reference */
  GMutex mutex;
  GCond cond;
} Asker;

static gboolean
asker_ask (TuskSshQuestion *question, gpointer data)
{
  Asker *a = data;

  g_mutex_lock (&a->mutex);
  a->n_asked++;
  a->last_kind = tusk_ssh_question_get_kind (question);
  if (tusk_ssh_question_is_retry (question))
    a->n_retries++;
  g_free (a->fingerprint);
  a->fingerprint = g_strdup (tusk_ssh_question_get_fingerprint (question));
  g_free (a->message);
  a->message = g_strdup (tusk_ssh_question_get_message (question));
  g_assert_cmpstr (tusk_ssh_question_get_tunnel_name (question), ==,
                   "test bastion");
  g_assert_cmpint (tusk_ssh_question_get_port (question), ==, ssh_port ());
  g_assert_true (tusk_ssh_question_is_pending (question));
  if (!a->answer)
    a->pending = tusk_ssh_question_ref (question);
  g_cond_broadcast (&a->cond);
  g_mutex_unlock (&a->mutex);

  if (a->answer)
    tusk_ssh_question_answer (question, a->accept, a->secret);
  return TRUE;
}

static void
asker_init (Asker *a, gboolean accept, const char *secret)
{
  memset (a, 0, sizeof *a);
  a->accept = accept;
  a->secret = secret;
  a->answer = TRUE;
  g_mutex_init (&a->mutex);
  g_cond_init (&a->cond);
}

static void
asker_clear (Asker *a)
{
  g_free (a->fingerprint);
  g_free (a->message);
  g_clear_pointer (&a->pending, tusk_ssh_question_unref);
  g_mutex_clear (&a->mutex);
  g_cond_clear (&a->cond);
}

static void
with_asker (TuskSshTunnelOptions *options, Asker *a)
{
  options->ask = asker_ask;
  options->ask_data = a;
}

/* ---- authentication -------------------------------------------------------
 */

static void
test_key (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  Asker a;
  asker_init (&a, FALSE, NULL);
  with_asker (&options, &a);
  g_autoptr (GError) error = NULL;

  g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
  g_assert_no_error (error);
  g_assert_true (tusk_ssh_tunnel_is_up (tunnel));
  g_assert_cmpuint (tusk_ssh_tunnel_get_n_connects (tunnel), ==, 1);
  g_assert_cmpuint (tusk_ssh_tunnel_get_local_port (tunnel), >, 0);
  /* A host known to ~/.ssh/known_hosts is not asked about. */
  g_assert_cmpuint (a.n_asked, ==, 0);
  g_autofree char *fp = tusk_ssh_tunnel_dup_host_key_fingerprint (tunnel);
  g_autofree char *want = expected_fingerprint ();
  g_assert_cmpstr (fp, ==, want);
  g_assert_false (g_file_test (f->known_hosts, G_FILE_TEST_EXISTS));
  assert_tunnel_works (tunnel);
  assert_tunnel_works (tunnel);
  asker_clear (&a);
}

static void
test_key_passphrase (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_free (config->key_path);
  config->key_path = g_strdup (tusk_test_env ("TUSK_TEST_SSH_KEY_ENC"));
  const char *passphrase = tusk_test_env ("TUSK_TEST_SSH_KEY_PASSPHRASE");

  /* The keychain's passphrase (options.secret). */
  {
    TuskSshTunnelOptions options = options_for (f);
    options.secret = passphrase;
    g_autoptr (GError) error = NULL;
    g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
    g_assert_no_error (error);
    assert_tunnel_works (tunnel);
  }
  /* None stored and nobody to ask. */
  {
    TuskSshTunnelOptions options = options_for (f);
    g_autoptr (GError) error = NULL;
    g_assert_null (open_tunnel (config, &options, &error));
    assert_ssh_error (error, "is encrypted and no passphrase is saved",
                      "Save the secret");
  }
  /* A wrong one stored and nobody to ask. */
  {
    TuskSshTunnelOptions options = options_for (f);
    options.secret = "not the passphrase";
    g_autoptr (GError) error = NULL;
    g_assert_null (open_tunnel (config, &options, &error));
    assert_ssh_error (error, "does not open the SSH key", NULL);
  }
  /* Asked of the front end, after a wrong stored one. */
  {
    TuskSshTunnelOptions options = options_for (f);
    options.secret = "not the passphrase";
    Asker a;
    asker_init (&a, TRUE, passphrase);
    with_asker (&options, &a);
    g_autoptr (GError) error = NULL;
    g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (a.n_asked, ==, 1);
    g_assert_cmpint (a.last_kind, ==, TUSK_SSH_QUESTION_PASSPHRASE);
    g_assert_cmpuint (a.n_retries, ==, 1);
    assert_tunnel_works (tunnel);
    asker_clear (&a);
  }
  /* The front end gives up. */
  {
    TuskSshTunnelOptions options = options_for (f);
    Asker a;
    asker_init (&a, FALSE, NULL);
    with_asker (&options, &a);
    g_autoptr (GError) error = NULL;
    g_assert_null (open_tunnel (config, &options, &error));
    assert_ssh_error (error, "No passphrase was given", NULL);
    asker_clear (&a);
  }
}

static void
test_password (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config
      = tunnel_config (TUSK_SSH_AUTH_PASSWORD);
  TuskSshTunnelOptions options = options_for (f);
  options.secret = tusk_test_env ("TUSK_TEST_SSH_PASSWORD");
  g_autoptr (GError) error = NULL;

  g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
  g_assert_no_error (error);
  assert_tunnel_works (tunnel);

  /* No password stored: asked of the front end. */
  TuskSshTunnelOptions asked = options_for (f);
  Asker a;
  asker_init (&a, TRUE, tusk_test_env ("TUSK_TEST_SSH_PASSWORD"));
  with_asker (&asked, &a);
  g_autoptr (TuskSshTunnel) second = open_tunnel (config, &asked, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a.n_asked, ==, 1);
  g_assert_cmpint (a.last_kind, ==, TUSK_SSH_QUESTION_PASSWORD);
  g_assert_cmpuint (a.n_retries, ==, 0);
  assert_tunnel_works (second);
  asker_clear (&a);

  /* Neither stored nor anyone to ask. */
  TuskSshTunnelOptions none = options_for (f);
  g_assert_null (open_tunnel (config, &none, &error));
  assert_ssh_error (error, "No password is saved", "Save the secret");
}

static void
test_wrong_password (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config
      = tunnel_config (TUSK_SSH_AUTH_PASSWORD);
  g_autofree char *wrong
      = g_strconcat ("wrong-", tusk_test_env ("TUSK_TEST_SSH_PASSWORD"), NULL);

  /* Non-interactive: refused, with the authentication hint. */
  TuskSshTunnelOptions options = options_for (f);
  options.secret = wrong;
  g_autoptr (GError) error = NULL;
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "SSH authentication as", "refused the password");
  g_assert_nonnull (strstr (error->message, "tusk-ssh"));
  g_clear_error (&error);

  /* Interactive: asked again (a retry), and the right one works. */
  Asker a;
  asker_init (&a, TRUE, tusk_test_env ("TUSK_TEST_SSH_PASSWORD"));
  with_asker (&options, &a);
  g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a.n_asked, ==, 1);
  g_assert_cmpuint (a.n_retries, ==, 1);
  assert_tunnel_works (tunnel);
  asker_clear (&a);

  /* Interactive, always wrong: gives up after three answers. */
  asker_init (&a, TRUE, wrong);
  with_asker (&options, &a);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "refused", NULL);
  g_assert_cmpuint (a.n_asked, ==, 3);
  asker_clear (&a);
}

/* A real ssh-agent on a private socket, with @key added. */
typedef struct
{
  GPid pid;
  char *socket;
} Agent;

static gboolean
file_exists (gpointer path)
{
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static void
agent_start (Agent *agent, const char *dir, const char *key)
{
  agent->socket = g_build_filename (dir, "agent.sock", NULL);
  const char *argv[] = { "ssh-agent", "-D", "-a", agent->socket, NULL };
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_async (NULL, (char **)argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD
                                    | G_SPAWN_STDOUT_TO_DEV_NULL,
                                NULL, NULL, &agent->pid, &error));
  g_assert_no_error (error);
  tusk_test_wait_until (file_exists, agent->socket, 10000);

  g_auto (GStrv) env = g_get_environ ();
  env = g_environ_setenv (env, "SSH_AUTH_SOCK", agent->socket, TRUE);
  const char *add[] = { "ssh-add", "-q", key, NULL };
  int status = 0;
  g_autofree char *err = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **)add, env, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, NULL, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("ssh-add %s: %s", key, err);
}

static void
agent_stop (Agent *agent)
{
  kill (agent->pid, SIGTERM);
  waitpid (agent->pid, NULL, 0);
  g_spawn_close_pid (agent->pid);
  g_free (agent->socket);
}

static void
test_agent (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_AGENT);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;
  g_autofree char *old = g_strdup (g_getenv ("SSH_AUTH_SOCK"));

  /* No agent: refused, saying so. */
  g_unsetenv ("SSH_AUTH_SOCK");
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "no ssh-agent is running", "ssh-add");
  g_clear_error (&error);

  /* An agent holding the key (the ssh dir holds no key of its own). */
  Agent agent;
  agent_start (&agent, f->root, tusk_test_env ("TUSK_TEST_SSH_KEY"));
  g_setenv ("SSH_AUTH_SOCK", agent.socket, TRUE);
  {
    g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
    g_assert_no_error (error);
    assert_tunnel_works (tunnel);
  }
  agent_stop (&agent);

  /* An agent whose keys the server does not know. */
  g_autofree char *other = g_build_filename (f->root, "other_key", NULL);
  const char *keygen[]
      = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other, NULL };
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, (char **)keygen, NULL, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  agent_start (&agent, f->root, other);
  g_setenv ("SSH_AUTH_SOCK", agent.socket, TRUE);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "none of the ssh-agent's keys", "ssh-add");
  agent_stop (&agent);

  if (old)
    g_setenv ("SSH_AUTH_SOCK", old, TRUE);
  else
    g_unsetenv ("SSH_AUTH_SOCK");
}

static int closed_port (void);

/* ~/.ssh/config is read as ssh reads it: a Host alias with its HostName
 * and Port (the tunnel's port 22 being the default), and IdentityFile for
 * the agent method when no agent runs. */
static void
test_ssh_config (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autofree char *path = g_build_filename (f->ssh_dir, "config", NULL);
  g_autofree char *text
      = g_strdup_printf ("Host tusk-bastion\n"
                         "  HostName %s\n"
                         "  Port %d\n"
                         "  IdentityFile %s\n",
                         tusk_test_env ("TUSK_TEST_SSH_HOST"), ssh_port (),
                         tusk_test_env ("TUSK_TEST_SSH_KEY"));
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_autofree char *old = g_strdup (g_getenv ("SSH_AUTH_SOCK"));
  g_unsetenv ("SSH_AUTH_SOCK");

  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_AGENT);
  g_free (config->host);
  config->host = g_strdup ("tusk-bastion");
  config->port = 22;
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;
  {
    g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
    g_assert_no_error (error);
    assert_tunnel_works (tunnel);
  }

  /* Errors name the alias and where it led. */
  config->port = closed_port ();
  g_assert_null (open_tunnel (config, &options, &error));
  g_autofree char *where
      = g_strdup_printf ("SSH server tusk-bastion (%s port %d)",
                         tusk_test_env ("TUSK_TEST_SSH_HOST"), config->port);
  assert_ssh_error (error, where, NULL);

  if (old)
    g_setenv ("SSH_AUTH_SOCK", old, TRUE);
}

/* ---- host keys ------------------------------------------------------------
 */

static void
test_unknown_host_accept (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  Asker a;
  asker_init (&a, TRUE, NULL);
  with_asker (&options, &a);
  g_autoptr (GError) error = NULL;
  g_autofree char *want = expected_fingerprint ();

  {
    g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
    g_assert_no_error (error);
    assert_tunnel_works (tunnel);
  }
  g_assert_cmpuint (a.n_asked, ==, 1);
  g_assert_cmpint (a.last_kind, ==, TUSK_SSH_QUESTION_HOST_KEY);
  g_assert_cmpstr (a.fingerprint, ==, want);
  g_assert_nonnull (strstr (a.message, want));
  g_assert_nonnull (strstr (a.message, "can't be established"));

  /* Remembered in Tusk's known_hosts, not in the ssh dir's. */
  g_autofree char *saved = NULL;
  g_assert_true (g_file_get_contents (f->known_hosts, &saved, NULL, NULL));
  g_autofree char *entry
      = g_strdup_printf ("[%s]:%d ssh-ed25519 ",
                         tusk_test_env ("TUSK_TEST_SSH_HOST"), ssh_port ());
  g_assert_nonnull (strstr (saved, entry));
  g_autofree char *user_file
      = g_build_filename (f->ssh_dir, "known_hosts", NULL);
  g_assert_false (g_file_test (user_file, G_FILE_TEST_EXISTS));

  /* Known from then on: not asked again. */
  {
    g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
    g_assert_no_error (error);
  }
  g_assert_cmpuint (a.n_asked, ==, 1);
  asker_clear (&a);
}

static void
test_unknown_host_refused (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_autofree char *want = expected_fingerprint ();
  g_autoptr (GError) error = NULL;

  /* Non-interactive: refused, with the fingerprint to check. */
  TuskSshTunnelOptions options = options_for (f);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "is not known", "fingerprint");
  g_assert_nonnull (strstr (error->message, want));
  g_clear_error (&error);

  /* The front end says no. */
  Asker a;
  asker_init (&a, FALSE, NULL);
  with_asker (&options, &a);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "was not accepted", NULL);
  g_assert_cmpuint (a.n_asked, ==, 1);
  asker_clear (&a);

  /* Nothing was remembered. */
  g_assert_false (g_file_test (f->known_hosts, G_FILE_TEST_EXISTS));
}

/* Writes a known_hosts line for the test sshd with another key. */
static void
write_other_host_key (Fixture *f, const char *path)
{
  g_autofree char *key = g_build_filename (f->root, "impostor", NULL);
  const char *keygen[]
      = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key, NULL };
  int status = 0;
  g_assert_true (g_spawn_sync (NULL, (char **)keygen, NULL, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_autofree char *pub_path = g_strconcat (key, ".pub", NULL);
  g_autofree char *pub = NULL;
  g_assert_true (g_file_get_contents (pub_path, &pub, NULL, NULL));
  g_auto (GStrv) fields = g_strsplit (pub, " ", 3);
  g_autofree char *line = g_strdup_printf ("[%s]:%d %s %s\n",
                                           tusk_test_env ("TUSK_TEST_SSH_HOST"),
                                           ssh_port (), fields[0], fields[1]);
  g_assert_true (g_file_set_contents (path, line, -1, NULL));
  g_unlink (key);
  g_unlink (pub_path);
}

static void
test_changed_host_key (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_autofree char *want = expected_fingerprint ();
  g_autoptr (GError) error = NULL;
  TuskSshTunnelOptions options = options_for (f);
  Asker a;
  asker_init (&a, TRUE, NULL); /* would accept anything: never asked */
  with_asker (&options, &a);

  /* In ~/.ssh/known_hosts. */
  g_autofree char *user_file
      = g_build_filename (f->ssh_dir, "known_hosts", NULL);
  write_other_host_key (f, user_file);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "has changed", "intercepting");
  g_assert_nonnull (strstr (error->message, want));
  g_assert_nonnull (strstr (error->message, user_file));
  g_clear_error (&error);

  /* In Tusk's own file. */
  g_unlink (user_file);
  write_other_host_key (f, f->known_hosts);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "has changed", "intercepting");
  g_assert_nonnull (strstr (error->message, f->known_hosts));

  g_assert_cmpuint (a.n_asked, ==, 0);
  asker_clear (&a);
}

/* ---- the other failures ---------------------------------------------------
 */

static void
test_key_file_problems (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;

  /* Missing: the data model's validation rule. */
  g_free (config->key_path);
  config->key_path = g_build_filename (f->root, "no-such-key", NULL);
  g_assert_null (open_tunnel (config, &options, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_nonnull (strstr (error->message, "key_path"));
  g_clear_error (&error);

  /* Readable by others. */
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (tusk_test_env ("TUSK_TEST_SSH_KEY"),
                                      &contents, &len, NULL));
  g_autofree char *loose = g_build_filename (f->root, "loose_key", NULL);
  g_assert_true (g_file_set_contents_full (
      loose, contents, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0644, NULL));
  g_chmod (loose, 0644);
  g_free (config->key_path);
  config->key_path = g_strdup (loose);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "0644", "chmod 600");
  g_clear_error (&error);

  /* Not a key at all. */
  g_autofree char *junk = g_build_filename (f->root, "junk_key", NULL);
  g_assert_true (g_file_set_contents_full (
      junk, "not a key\n", -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_free (config->key_path);
  config->key_path = g_strdup (junk);
  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "could not be read", "key_path");
}

/* A port on 127.0.0.1 where nothing listens. */
static int
closed_port (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                      G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_autoptr (GInetAddress) loopback
      = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  g_autoptr (GSocketAddress) bound
      = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_unreachable (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  config->port = closed_port ();
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;

  g_assert_null (open_tunnel (config, &options, &error));
  assert_ssh_error (error, "Could not reach SSH server", "sshd runs there");
  g_autofree char *where = g_strdup_printf ("port %d", config->port);
  g_assert_nonnull (strstr (error->message, where));
}

static void
test_channel_refused (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;
  int port = closed_port ();

  TuskSshTunnel *tunnel = tusk_ssh_tunnel_open_sync (config, "127.0.0.1", port,
                                                     &options, NULL, &error);
  g_assert_null (tunnel);
  assert_ssh_error (error, "could not open a connection to the database",
                    "as the SSH server sees them");
  g_autofree char *where = g_strdup_printf ("127.0.0.1 port %d", port);
  g_assert_nonnull (strstr (error->message, where));
}

typedef struct
{
  Asker *asker;
  GCancellable *cancellable;
} CancelWhenAsked;

static gpointer
cancel_when_asked (gpointer data)
{
  CancelWhenAsked *c = data;
  g_mutex_lock (&c->asker->mutex);
  while (c->asker->n_asked == 0)
    g_cond_wait (&c->asker->cond, &c->asker->mutex);
  g_mutex_unlock (&c->asker->mutex);
  g_cancellable_cancel (c->cancellable);
  return NULL;
}

static void
test_cancel (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;

  /* Cancelled before it starts. */
  g_autoptr (GCancellable) early = g_cancellable_new ();
  g_cancellable_cancel (early);
  g_assert_null (tusk_ssh_tunnel_open_sync (config, "127.0.0.1", pg_port (),
                                            &options, early, &error));
  tusk_assert_error (error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&error);

  /* Cancelled while the host-key question waits for its answer. */
  Asker a;
  asker_init (&a, TRUE, NULL);
  a.answer = FALSE;
  with_asker (&options, &a);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  CancelWhenAsked c = { &a, cancellable };
  GThread *thread = g_thread_new ("cancel", cancel_when_asked, &c);
  g_assert_null (tusk_ssh_tunnel_open_sync (config, "127.0.0.1", pg_port (),
                                            &options, cancellable, &error));
  g_thread_join (thread);
  tusk_assert_error (error, TUSK_ERROR_QUERY_CANCELLED);
  /* The question was withdrawn; a late answer changes nothing. */
  g_assert_nonnull (a.pending);
  g_assert_false (tusk_ssh_question_is_pending (a.pending));
  g_assert_true (tusk_ssh_question_get_cancellable (a.pending) == cancellable);
  tusk_ssh_question_answer (a.pending, TRUE, NULL);
  g_assert_false (g_file_test (f->known_hosts, G_FILE_TEST_EXISTS));
  asker_clear (&a);
}

/* ---- many connections, much data ------------------------------------------
 */

typedef struct
{
  TuskSshTunnel *tunnel;
  int index;
  gint64 sum;
} Worker;

static gpointer
worker_run (gpointer data)
{
  Worker *w = data;
  g_autoptr (PGconn) pg = connect_through (w->tunnel);
  for (int i = 0; i < 50; i++)
    assert_query (pg);
  /* A result larger than the SSH window, read while others run. */
  g_autoptr (PGresult) res
      = PQexec (pg, "SELECT g, repeat ('x', 100) FROM generate_series (1, "
                    "50000) g");
  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("big query: %s", PQerrorMessage (pg));
  g_assert_cmpint (PQntuples (res), ==, 50000);
  for (int r = 0; r < PQntuples (res); r++)
    w->sum += atoi (PQgetvalue (res, r, 0));
  return NULL;
}

static void
test_concurrent (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
  g_assert_no_error (error);

  Worker workers[TUSK_POOL_MAX_SIZE_LIMIT];
  GThread *threads[TUSK_POOL_MAX_SIZE_LIMIT];
  for (int i = 0; i < TUSK_POOL_MAX_SIZE_LIMIT; i++)
    {
      workers[i] = (Worker){ tunnel, i, 0 };
      threads[i] = g_thread_new ("worker", worker_run, &workers[i]);
    }
  for (int i = 0; i < TUSK_POOL_MAX_SIZE_LIMIT; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpint (workers[i].sum, ==, (gint64)50000 * 50001 / 2);
    }
  /* Still one session. */
  g_assert_cmpuint (tusk_ssh_tunnel_get_n_connects (tunnel), ==, 1);
}

/* ---- sshd going away --------------------------------------------------------
 */

static void
sshctl (const char *action)
{
  const char *argv[] = { tusk_test_env ("TUSK_TEST_SSHCTL"), action, NULL };
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, NULL, NULL, &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static gboolean
tunnel_is_down (gpointer tunnel)
{
  return !tusk_ssh_tunnel_is_up (tunnel);
}

static void
test_sshd_restart (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
  g_assert_no_error (error);
  guint16 port = tusk_ssh_tunnel_get_local_port (tunnel);
  g_autoptr (PGconn) pg = connect_through (tunnel);
  assert_query (pg);

  sshctl ("stop");
  /* The tunnel sees its session end, and cuts what went through it. */
  tusk_test_wait_until (tunnel_is_down, tunnel, 10000);
  g_autoptr (PGresult) res = PQexec (pg, "SELECT 1");
  g_assert_cmpint (PQresultStatus (res), !=, PGRES_TUPLES_OK);

  /* Re-establishing fails clearly while sshd is away. */
  g_assert_false (tusk_ssh_tunnel_ensure_sync (tunnel, NULL, &error));
  assert_ssh_error (error, "Could not reach SSH server", "sshd runs there");
  g_clear_error (&error);

  /* And works once it is back, on the same port. */
  sshctl ("start");
  g_assert_true (tusk_ssh_tunnel_ensure_sync (tunnel, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (tusk_ssh_tunnel_is_up (tunnel));
  g_assert_cmpuint (tusk_ssh_tunnel_get_n_connects (tunnel), ==, 2);
  g_assert_cmpuint (tusk_ssh_tunnel_get_local_port (tunnel), ==, port);
  assert_tunnel_works (tunnel);
}

static gboolean
port_refuses (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) connection = g_socket_client_connect_to_host (
      client, "127.0.0.1", port, NULL, &error);
  return connection == NULL
         && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

static void
test_close (Fixture *f, gconstpointer data)
{
  (void)data;
  know_host (f);
  g_autoptr (TuskSshTunnelConfig) config = tunnel_config (TUSK_SSH_AUTH_KEY);
  TuskSshTunnelOptions options = options_for (f);
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSshTunnel) tunnel = open_tunnel (config, &options, &error);
  g_assert_no_error (error);
  guint16 port = tusk_ssh_tunnel_get_local_port (tunnel);
  g_autoptr (PGconn) pg = connect_through (tunnel);
  assert_query (pg);

  /* Closed while a reference (and a connection) remains. */
  tusk_ssh_tunnel_close (tunnel);
  g_assert_false (tusk_ssh_tunnel_is_up (tunnel));
  g_assert_true (port_refuses (port));
  g_autoptr (PGresult) res = PQexec (pg, "SELECT 1");
  g_assert_cmpint (PQresultStatus (res), !=, PGRES_TUPLES_OK);
  g_assert_false (tusk_ssh_tunnel_ensure_sync (tunnel, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  tusk_ssh_tunnel_close (tunnel); /* idempotent */
}

/* ---- TuskState through a tunnel ---------------------------------------------
 */

typedef struct
{
  Fixture base;
  char *data_dir;
  TuskState *state;
  GThread *main_thread;
  guint n_prompts;
  gboolean prompt_accepts;
  char *prompt_fingerprint;
} StateFixture;

static void
state_set_up (StateFixture *f, gconstpointer data)
{
  fixture_set_up (&f->base, data);
  f->data_dir = g_build_filename (f->base.root, "data", NULL);
  g_setenv ("TUSK_LOG", "warn", FALSE);
  g_autoptr (GError) error = NULL;
  f->state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  tusk_state_set_ssh_dir (f->state, f->base.ssh_dir);
  f->main_thread = g_thread_self ();
}

static void
state_tear_down (StateFixture *f, gconstpointer data)
{
  tusk_state_free (f->state);
  /* Results still on their way to this context hold pools. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_free (f->prompt_fingerprint);
  g_free (f->data_dir);
  fixture_tear_down (&f->base, data);
}

static void
on_prompt (TuskState *state, TuskSshQuestion *question, gpointer user_data)
{
  StateFixture *f = user_data;
  g_assert_true (state == f->state);
  /* On the state's main context, i.e. the thread that made it. */
  g_assert_true (g_thread_self () == f->main_thread);
  g_assert_cmpint (tusk_ssh_question_get_kind (question), ==,
                   TUSK_SSH_QUESTION_HOST_KEY);
  f->n_prompts++;
  g_free (f->prompt_fingerprint);
  f->prompt_fingerprint
      = g_strdup (tusk_ssh_question_get_fingerprint (question));
  tusk_ssh_question_answer (question, f->prompt_accepts, NULL);
}

static TuskConnectionConfig *
saved_connection (StateFixture *f, TuskSshTunnelConfig *tunnel,
                  const char *secret)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (
      tusk_state_save_tunnel_sync (f->state, tunnel, secret, NULL, &error));
  g_assert_no_error (error);
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup ("through the bastion");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = pg_port ();
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  config->ssh_tunnel = tusk_ssh_tunnel_config_copy (tunnel);
  g_assert_true (
      tusk_state_save_connection_sync (f->state, config, NULL, NULL, &error));
  g_assert_no_error (error);
  return config;
}

typedef struct
{
  TuskState *state;
  gboolean done;
  TuskPool *pool;
  GError *error;
} ConnectWait;

static void
on_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  ConnectWait *w = data;
  (void)source;
  w->pool = tusk_state_connect_finish (w->state, result, &w->error);
  w->done = TRUE;
}

/* Runs one statement on an acquired connection; returns its first value. */
static char *
pool_query (TuskPool *pool, const char *sql, GError **error)
{
  g_autoptr (TuskPoolConn) conn = tusk_pool_acquire_sync (pool, NULL, error);
  if (conn == NULL)
    return NULL;
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  g_autoptr (PGresult) res = PQexec (pg, sql);
  if (PQresultStatus (res) != PGRES_TUPLES_OK)
    {
      tusk_set_error (error, TUSK_ERROR_CONNECTION, NULL, "%s",
                      PQerrorMessage (pg));
      return NULL;
    }
  return g_strdup (PQgetvalue (res, 0, 0));
}

/* Connects @id with tusk_state_connect_async (), iterating the main context
 * (where the prompt runs) until it is done. */
static TuskPool *
state_connect (StateFixture *f, const char *id, GError **error)
{
  ConnectWait w = { .state = f->state };
  tusk_state_connect_async (f->state, id, NULL, on_connected, &w);
  tusk_test_wait_for (&w.done, 30000);
  if (w.error)
    g_propagate_error (error, w.error);
  return w.pool;
}

static void
test_state_query (StateFixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) tunnel = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_autoptr (TuskConnectionConfig) config = saved_connection (f, tunnel, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *want = expected_fingerprint ();

  f->prompt_accepts = TRUE;
  tusk_state_set_ssh_prompt (f->state, on_prompt, f, NULL);
  g_autoptr (TuskPool) pool = state_connect (f, config->id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_prompts, ==, 1);
  g_assert_cmpstr (f->prompt_fingerprint, ==, want);

  /* The accepted key is in {data_dir}/known_hosts. */
  g_autofree char *known = g_build_filename (f->data_dir, "known_hosts", NULL);
  g_assert_true (g_file_test (known, G_FILE_TEST_IS_REGULAR));

  /* Queries go through the tunnel: the server sees the connection come
   * from sshd (127.0.0.1), and libpq's address is the tunnel's. */
  g_autoptr (TuskPoolConn) conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  g_assert_cmpstr (PQhost (pg), ==, tusk_test_env ("TUSK_TEST_PGHOST"));
  g_assert_cmpstr (PQhostaddr (pg), ==, "127.0.0.1");
  g_assert_cmpint (atoi (PQport (pg)), !=, pg_port ());
  g_clear_pointer (&conn, tusk_pool_release);

  /* The query module end to end, through the pool and the runtime. */
  g_autoptr (TuskQueryResult) result = NULL;
  {
    TuskQueryOptions options = { 0 };
    result = tusk_query_execute_sync (
        pool, "SELECT sum (g) FROM generate_series (1, 1000) g", &options, NULL,
        &error);
  }
  g_assert_no_error (error);
  g_assert_cmpuint (result->n_rows, ==, 1);
  TuskRowBatch *batch = result->batches->pdata[0];
  g_assert_cmpstr (tusk_row_batch_get_value (batch, 0, 0, NULL), ==, "500500");

  g_autoptr (TuskConnectionStatus) status
      = tusk_state_get_status (f->state, config->id);
  g_assert_cmpint (status->state, ==, TUSK_CONNECTION_CONNECTED);

  /* Connecting again reuses the pool; no second question. */
  g_autoptr (TuskPool) again = state_connect (f, config->id, &error);
  g_assert_no_error (error);
  g_assert_true (again == pool);
  g_assert_cmpuint (f->n_prompts, ==, 1);

  /* Freeing the state stops the tunnel even though the pool (its owner)
   * is still referenced here: its port refuses from then on. */
  conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  guint16 port = (guint16)atoi (PQport (tusk_pool_conn_get_pg (conn)));
  g_clear_pointer (&conn, tusk_pool_release);
  tusk_state_free (f->state);
  f->state = NULL;
  g_assert_true (port_refuses (port));
  g_assert_true (tusk_pool_is_closed (pool));
}

static void
test_state_non_interactive (StateFixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) tunnel = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_autoptr (TuskConnectionConfig) config = saved_connection (f, tunnel, NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *want = expected_fingerprint ();

  /* No prompt: an unknown host key is refused, the fingerprint shown. */
  g_autoptr (TuskPool) pool = state_connect (f, config->id, &error);
  g_assert_null (pool);
  assert_ssh_error (error, "is not known", NULL);
  g_assert_nonnull (strstr (error->message, want));
  g_autoptr (TuskConnectionStatus) status
      = tusk_state_get_status (f->state, config->id);
  g_assert_cmpint (status->state, ==, TUSK_CONNECTION_ERROR);
  g_assert_nonnull (strstr (status->error_message, want));
  g_clear_error (&error);

  /* A prompt that refuses. */
  f->prompt_accepts = FALSE;
  tusk_state_set_ssh_prompt (f->state, on_prompt, f, NULL);
  g_assert_null (state_connect (f, config->id, &error));
  assert_ssh_error (error, "was not accepted", NULL);
  g_assert_cmpuint (f->n_prompts, ==, 1);
}

static void
test_state_passphrase_from_keychain (StateFixture *f, gconstpointer data)
{
  (void)data;
  know_host (&f->base);
  g_autoptr (TuskSshTunnelConfig) tunnel = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_free (tunnel->key_path);
  tunnel->key_path = g_strdup (tusk_test_env ("TUSK_TEST_SSH_KEY_ENC"));
  g_autoptr (TuskConnectionConfig) config = saved_connection (
      f, tunnel, tusk_test_env ("TUSK_TEST_SSH_KEY_PASSPHRASE"));
  g_autoptr (GError) error = NULL;

  g_autoptr (TuskPool) pool = state_connect (f, config->id, &error);
  g_assert_no_error (error);
  g_autofree char *value = pool_query (pool, "SELECT 7 * 6", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (value, ==, "42");
}

static void
test_state_missing_key_file (StateFixture *f, gconstpointer data)
{
  (void)data;
  know_host (&f->base);
  /* Saved while the key existed, then the key went away. */
  g_autofree char *key = g_build_filename (f->base.root, "key", NULL);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (tusk_test_env ("TUSK_TEST_SSH_KEY"),
                                      &contents, &len, NULL));
  g_assert_true (g_file_set_contents_full (
      key, contents, (gssize)len, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_autoptr (TuskSshTunnelConfig) tunnel = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_free (tunnel->key_path);
  tunnel->key_path = g_strdup (key);
  g_autoptr (TuskConnectionConfig) config = saved_connection (f, tunnel, NULL);
  g_unlink (key);

  g_autoptr (GError) error = NULL;
  g_assert_null (state_connect (f, config->id, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_nonnull (strstr (error->message, "ssh_tunnel.key_path"));
  g_clear_error (&error);

  /* Saving refuses it too. */
  g_assert_false (
      tusk_state_save_tunnel_sync (f->state, tunnel, NULL, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
}

static void
test_state_sshd_stopped (StateFixture *f, gconstpointer data)
{
  (void)data;
  know_host (&f->base);
  g_autoptr (TuskSshTunnelConfig) tunnel = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_autoptr (TuskConnectionConfig) config = saved_connection (f, tunnel, NULL);
  g_autoptr (GError) error = NULL;

  g_autoptr (TuskPool) pool = state_connect (f, config->id, &error);
  g_assert_no_error (error);
  g_autofree char *before = pool_query (pool, "SELECT 1", &error);
  g_assert_no_error (error);

  sshctl ("stop");
  /* The connection that went through the tunnel is cut.  Until the tunnel
   * has noticed, a query may fail as a lost connection; after that, every
   * acquire tries to re-establish the tunnel and fails with the SSH
   * server's error. */
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autofree char *value = pool_query (pool, "SELECT 1", &error);
      g_assert_null (value);
      g_assert_nonnull (error);
      if (error->code == TUSK_ERROR_SSH)
        break;
      tusk_assert_error (error, TUSK_ERROR_CONNECTION);
      g_clear_error (&error);
      if (g_get_monotonic_time () > deadline)
        g_error ("the tunnel never reported the stopped sshd");
      g_usleep (20 * 1000);
    }
  assert_ssh_error (error, "Could not reach SSH server", "sshd runs there");
  g_clear_error (&error);

  /* Back: the next acquire re-establishes the tunnel. */
  sshctl ("start");
  g_autofree char *after = pool_query (pool, "SELECT 'back'", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (after, ==, "back");
}

static void
test_state_verify_full (StateFixture *f, gconstpointer data)
{
  (void)data;
  know_host (&f->base);
  g_autoptr (TuskSshTunnelConfig) tunnel = tunnel_config (TUSK_SSH_AUTH_KEY);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      tusk_state_save_tunnel_sync (f->state, tunnel, NULL, NULL, &error));

  /* TLS end to end to the database, through the tunnel, checked against
   * the database's name ("localhost", which sshd resolves), with a client
   * certificate for the cert-only role. */
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("tls through the bastion");
  config->host = g_strdup ("localhost");
  config->port = pg_port ();
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_CERT"));
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  config->ssl_root_cert = g_strdup (tusk_test_env ("TUSK_TEST_SSL_ROOT_CERT"));
  config->ssl_cert = g_strdup (tusk_test_env ("TUSK_TEST_SSL_CLIENT_CERT"));
  config->ssl_key = g_strdup (tusk_test_env ("TUSK_TEST_SSL_CLIENT_KEY"));
  config->ssh_tunnel = tusk_ssh_tunnel_config_copy (tunnel);
  g_assert_true (
      tusk_state_save_connection_sync (f->state, config, NULL, NULL, &error));

  g_autoptr (TuskPool) pool = state_connect (f, config->id, &error);
  g_assert_no_error (error);
  g_autoptr (TuskPoolConn) conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  g_assert_cmpint (PQsslInUse (pg), ==, 1);
  g_assert_cmpstr (PQhost (pg), ==, "localhost");
  g_assert_cmpstr (PQhostaddr (pg), ==, "127.0.0.1");
  g_autoptr (PGresult) res
      = PQexec (pg, "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = "
                    "pg_backend_pid ()");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);
  g_assert_cmpstr (PQgetvalue (res, 0, 0), ==,
                   tusk_test_env ("TUSK_TEST_PGUSER_CERT"));
  g_assert_cmpstr (PQgetvalue (res, 0, 1), ==, "t");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_log_set_filter (g_getenv ("TUSK_LOG") ? g_getenv ("TUSK_LOG") : "error",
                       NULL);

#define ADD(path, func)                                                        \
  g_test_add ("/tusk/ssh-tunnel/" path, Fixture, NULL, fixture_set_up, func,   \
              fixture_tear_down)
#define ADD_STATE(path, func)                                                  \
  g_test_add ("/tusk/ssh-tunnel/state/" path, StateFixture, NULL,              \
              state_set_up, func, state_tear_down)
  ADD ("key", test_key);
  ADD ("key-passphrase", test_key_passphrase);
  ADD ("password", test_password);
  ADD ("wrong-password", test_wrong_password);
  ADD ("agent", test_agent);
  ADD ("ssh-config", test_ssh_config);
  ADD ("unknown-host/accept", test_unknown_host_accept);
  ADD ("unknown-host/refused", test_unknown_host_refused);
  ADD ("changed-host-key", test_changed_host_key);
  ADD ("key-file-problems", test_key_file_problems);
  ADD ("unreachable", test_unreachable);
  ADD ("channel-refused", test_channel_refused);
  ADD ("cancel", test_cancel);
  ADD ("concurrent", test_concurrent);
  ADD ("sshd-restart", test_sshd_restart);
  ADD ("close", test_close);
  ADD_STATE ("query", test_state_query);
  ADD_STATE ("non-interactive", test_state_non_interactive);
  ADD_STATE ("passphrase-from-keychain", test_state_passphrase_from_keychain);
  ADD_STATE ("missing-key-file", test_state_missing_key_file);
  ADD_STATE ("sshd-stopped", test_state_sshd_stopped);
  ADD_STATE ("verify-full", test_state_verify_full);
#undef ADD
#undef ADD_STATE

  return g_test_run ();
}
