/* test-commands.c: the `tusk` subcommands (conn, history, saved, schema,
 * export, import), run as a person runs them: the built binary, spawned
 * with a private --data-dir per test, against the test environment's real
 * PostgreSQL, gnome-keyring and, for the tunnel case (the last), sshd:
 * scripts/test-env.sh with its three services. */
#include <pty.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libpq-fe.h>
#include <libsecret/secret.h>
#include <sqlite3.h>

#include "tusk.h"
#include "tusk-test.h"

/* The keychain items libtusk writes (tusk-credentials.c). */
static const SecretSchema keychain_schema = {
  .name = TUSK_CREDENTIALS_SERVICE,
  .flags = SECRET_SCHEMA_DONT_MATCH_NAME,
  .attributes = {
      { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

typedef struct
{
  char *root;     /* a fresh temporary directory */
  char *data_dir; /* root/data: the --data-dir of every run */
  char *out;      /* the last run's stdout and stderr */
  char *err;
  char *suffix;    /* makes names unique across parallel tests */
  const char *bus; /* nullable: the runs' DBUS_SESSION_BUS_ADDRESS */
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-commands-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->data_dir = g_build_filename (f->root, "data", NULL);
  f->suffix = g_uuid_string_random ();
  f->suffix[8] = '\0';
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_remove_tree (f->root);
  g_free (f->root);
  g_free (f->data_dir);
  g_free (f->out);
  g_free (f->err);
  g_free (f->suffix);
}

static void
new_session (gpointer data)
{
  (void)data;
  setsid ();
}

/* Runs `tusk --data-dir @data_dir ARGS…` (@args NULL-terminated) with
 * @input (nullable) on stdin; keeps stdout and stderr in f->out and f->err
 * and returns the exit status.  A crash fails the test. */
static int
run_argv (Fixture *f, const char *data_dir, const char *input,
          const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *binary = g_build_filename (
      tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell", "tusk", NULL);
  g_ptr_array_add (argv, binary);
  g_ptr_array_add (argv, (char *)"--data-dir");
  g_ptr_array_add (argv, (char *)data_dir);
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (char *)args[i]);
  g_ptr_array_add (argv, NULL);

  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
      | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* Log everything, so that a password in any log line is caught. */
  g_subprocess_launcher_setenv (launcher, "TUSK_LOG", "trace", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "PGPASSWORD");
  g_subprocess_launcher_unsetenv (launcher, "TUSK_DATA_DIR");
  if (f->bus)
    g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", f->bus,
                                  TRUE);
  /* No controlling terminal: nothing may prompt on the developer's. */
  g_subprocess_launcher_set_child_setup (launcher, new_session, NULL, NULL);

  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = g_subprocess_launcher_spawnv (
      launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);
  g_clear_pointer (&f->out, g_free);
  g_clear_pointer (&f->err, g_free);
  g_subprocess_communicate_utf8 (process, input ? input : "", NULL, &f->out,
                                 &f->err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (process))
    g_error ("tusk %s died (signal %d); stderr:\n%s", args[0],
             g_subprocess_get_term_sig (process), f->err);
  return g_subprocess_get_exit_status (process);
}

static int
run_in_v (Fixture *f, const char *data_dir, const char *input,
          const char *first, va_list args)
{
  g_autoptr (GPtrArray) list = g_ptr_array_new ();
  for (const char *arg = first; arg; arg = va_arg (args, const char *))
    g_ptr_array_add (list, (char *)arg);
  g_ptr_array_add (list, NULL);
  return run_argv (f, data_dir, input, (const char *const *)list->pdata);
}

static int
run_in (Fixture *f, const char *data_dir, const char *input, const char *first,
        ...)
{
  va_list args;
  va_start (args, first);
  int status = run_in_v (f, data_dir, input, first, args);
  va_end (args);
  return status;
}

static int
run (Fixture *f, const char *input, const char *first, ...)
{
  va_list args;
  va_start (args, first);
  int status = run_in_v (f, f->data_dir, input, first, args);
  va_end (args);
  return status;
}

/* Asserts an exit status, showing the run's output when it differs. */
#define assert_status(f, status, expected)                                     \
  G_STMT_START                                                                 \
  {                                                                            \
    int s_ = (status);                                                         \
    if (s_ != (expected))                                                      \
      g_error ("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s", s_,    \
               (expected), (f)->out, (f)->err);                                \
  }                                                                            \
  G_STMT_END

#define assert_contains(haystack, needle)                                      \
  G_STMT_START                                                                 \
  {                                                                            \
    const char *h_ = (haystack);                                               \
    if (strstr (h_, (needle)) == NULL)                                         \
      g_error ("expected \"%s\" in:\n%s", (needle), h_);                       \
  }                                                                            \
  G_STMT_END

#define assert_not_contains(haystack, needle)                                  \
  G_STMT_START                                                                 \
  {                                                                            \
    const char *h_ = (haystack);                                               \
    if (strstr (h_, (needle)) != NULL)                                         \
      g_error ("did not expect \"%s\" in:\n%s", (needle), h_);                 \
  }                                                                            \
  G_STMT_END

/* Parses f->out as JSON; (transfer full). */
static JsonNode *
parse_out (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (f->out, &error);
  if (node == NULL)
    g_error ("not JSON (%s):\n%s", error ? error->message : "empty", f->out);
  return node;
}

/* The saved connections of @data_dir, from `conn list --json`; (transfer
 * full) an array node. */
static JsonNode *
list_connections_in (Fixture *f, const char *data_dir)
{
  assert_status (f, run_in (f, data_dir, NULL, "conn", "list", "--json", NULL),
                 0);
  JsonNode *node = parse_out (f);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  return node;
}

static JsonNode *
list_connections (Fixture *f)
{
  return list_connections_in (f, f->data_dir);
}

/* The object of the connection @name in a `conn list --json` array, or
 * NULL. */
static JsonObject *
find_named (JsonNode *array, const char *name)
{
  JsonArray *items = json_node_get_array (array);
  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonObject *item = json_array_get_object_element (items, i);
      if (g_strcmp0 (json_object_get_string_member (item, "name"), name) == 0)
        return item;
    }
  return NULL;
}

/* The id of the saved connection @name; (transfer full). */
static char *
connection_id (Fixture *f, const char *name)
{
  g_autoptr (JsonNode) all = list_connections (f);
  JsonObject *item = find_named (all, name);
  if (item == NULL)
    g_error ("no connection named %s in:\n%s", name, f->out);
  return g_strdup (json_object_get_string_member (item, "id"));
}

/* The keychain's secret for "@kind:@id" straight from libsecret, or NULL;
 * (transfer full). */
static char *
keychain_lookup (const char *kind, const char *id)
{
  g_autofree char *account = g_strdup_printf ("%s:%s", kind, id);
  g_autoptr (GError) error = NULL;
  char *secret = secret_password_lookup_sync (
      &keychain_schema, NULL, &error, "service", TUSK_CREDENTIALS_SERVICE,
      "account", account, NULL);
  g_assert_no_error (error);
  return secret;
}

/* Whether any Tusk keychain item's label mentions @name. */
static gboolean
keychain_mentions (const char *name)
{
  g_autoptr (GHashTable) attributes = secret_attributes_build (
      &keychain_schema, "service", TUSK_CREDENTIALS_SERVICE, NULL);
  g_autoptr (GError) error = NULL;
  GList *items = NULL;
  /* Other test programs running at the same time store and delete items of
   * the same service (the keychain probe's): one may vanish between the
   * search and the loading of its properties.  Search again then. */
  for (int attempt = 0; attempt < 10; attempt++)
    {
      g_clear_error (&error);
      items = secret_service_search_sync (NULL, &keychain_schema, attributes,
                                          SECRET_SEARCH_ALL, NULL, &error);
      if (error == NULL
          || strstr (error->message, "No such secret item") == NULL)
        break;
    }
  g_assert_no_error (error);
  gboolean found = FALSE;
  for (GList *l = items; l; l = l->next)
    {
      g_autofree char *label = secret_item_get_label (l->data);
      if (label && strstr (label, name))
        found = TRUE;
    }
  g_list_free_full (items, g_object_unref);
  return found;
}

/* Fails when any file under @path holds @secret. */
static void
assert_no_file_holds (const char *path, const char *secret)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          assert_no_file_holds (child, secret);
        }
      return;
    }
  g_autofree char *contents = NULL;
  gsize length = 0;
  if (!g_file_get_contents (path, &contents, &length, NULL))
    return;
  if (memmem (contents, length, secret, strlen (secret)) != NULL)
    g_error ("%s holds the password", path);
}

/* Adds connection @name for the password role over TCP, with its password
 * from stdin. */
static void
add_password_connection (Fixture *f, const char *name)
{
  g_autofree char *input
      = g_strdup_printf ("%s\n", tusk_test_env ("TUSK_TEST_PGPASSWORD"));
  assert_status (f,
                 run (f, input, "conn", "add", name, "-h",
                      tusk_test_env ("TUSK_TEST_PGHOST"), "-p",
                      tusk_test_env ("TUSK_TEST_PGPORT"), "-U",
                      tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"), "-d",
                      tusk_test_env ("TUSK_TEST_PGDATABASE"),
                      "--password-stdin", NULL),
                 0);
}

/* A URI for the trust role over TCP; (transfer full). */
static char *
trust_uri (void)
{
  return g_strdup_printf (
      "postgresql://%s@%s:%s/%s", tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
      tusk_test_env ("TUSK_TEST_PGHOST"), tusk_test_env ("TUSK_TEST_PGPORT"),
      tusk_test_env ("TUSK_TEST_PGDATABASE"));
}

static void
ignore_notice (void *data, const char *message)
{
  (void)data;
  (void)message;
}

/* Runs @sql as the trust role with libpq, failing the test on error. */
static void
exec_sql (const char *sql)
{
  g_autofree char *uri = trust_uri ();
  PGconn *conn = PQconnectdb (uri);
  g_assert_cmpint (PQstatus (conn), ==, CONNECTION_OK);
  PQsetNoticeProcessor (conn, ignore_notice, NULL);
  PGresult *result = PQexec (conn, sql);
  if (PQresultStatus (result) != PGRES_COMMAND_OK
      && PQresultStatus (result) != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQerrorMessage (conn));
  PQclear (result);
  PQfinish (conn);
}

/* ------------------------------------------------------------ help */

static void
test_help (Fixture *f, gconstpointer data)
{
  (void)data;
  static const char *const groups[]
      = { "conn", "history", "saved", "schema", "export", "import" };
  for (guint i = 0; i < G_N_ELEMENTS (groups); i++)
    {
      assert_status (f, run (f, NULL, groups[i], "--help", NULL), 0);
      assert_contains (f->out, "Usage:");
      assert_contains (f->out, groups[i]);
    }
  assert_status (f, run (f, NULL, "conn", "--help", NULL), 0);
  static const char *const options[] = {
    "--uri",
    "-h, --host",
    "--ssl-mode",
    "--ssl-root-cert",
    "--read-only",
    "--color",
    "--password-stdin",
    "--ask-password",
    "--ssh-host",
    "--ssh-port",
    "--ssh-user",
    "--ssh-key",
    "--ssh-password-stdin",
    "--ssh-agent",
    "--read-write",
    "--no-ssh",
    "--rename",
    "--json",
  };
  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    assert_contains (f->out, options[i]);
  assert_status (f, run (f, NULL, "conn", "add", "--help", NULL), 0);
  assert_contains (f->out, "--password-stdin");
  assert_status (f, run (f, NULL, "saved", "run", "--help", NULL), 0);
  assert_contains (f->out, "--format");
  assert_status (f, run (f, NULL, "import", "--help", NULL), 0);
  assert_contains (f->out, "rename");

  /* Wrong usage exits 2 with a message. */
  assert_status (f, run (f, NULL, "conn", NULL), 2);
  assert_status (f, run (f, NULL, "conn", "frobnicate", NULL), 2);
  assert_contains (f->err, "frobnicate");
  assert_status (f, run (f, NULL, "conn", "list", "--bogus", NULL), 2);
  assert_contains (f->err, "--bogus");
  assert_status (f, run (f, NULL, "conn", "show", NULL), 2);
  assert_contains (f->err, "missing NAME");
  assert_status (f, run (f, NULL, "history", "--limit", "lots", NULL), 2);
  assert_contains (f->err, "--limit");
}

/* ------------------------------------------------------------ conn */

static void
test_conn_password_lifecycle (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  g_autofree char *name = g_strdup_printf ("pw-%s", f->suffix);
  add_password_connection (f, name);
  assert_contains (f->out, "password stored in the keychain");
  assert_not_contains (f->out, password);
  assert_not_contains (f->err, password);

  /* The password is in the keychain, under db:{id}, and nowhere else. */
  g_autofree char *id = connection_id (f, name);
  g_autofree char *stored = keychain_lookup ("db", id);
  g_assert_cmpstr (stored, ==, password);

  /* list --json: every field, never the password. */
  g_autoptr (JsonNode) all = list_connections (f);
  assert_not_contains (f->out, password);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (all)), ==, 1);
  JsonObject *item = find_named (all, name);
  g_assert_nonnull (item);
  g_assert_cmpstr (json_object_get_string_member (item, "host"), ==,
                   tusk_test_env ("TUSK_TEST_PGHOST"));
  g_assert_cmpint (json_object_get_int_member (item, "port"), ==,
                   atoi (tusk_test_env ("TUSK_TEST_PGPORT")));
  g_assert_cmpstr (json_object_get_string_member (item, "username"), ==,
                   tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  g_assert_cmpstr (json_object_get_string_member (item, "database"), ==,
                   tusk_test_env ("TUSK_TEST_PGDATABASE"));
  g_assert_cmpstr (json_object_get_string_member (item, "ssl_mode"), ==,
                   "prefer");
  g_assert_false (json_object_get_boolean_member (item, "read_only"));
  g_assert_true (json_object_get_null_member (item, "ssh_tunnel"));
  g_assert_false (json_object_has_member (item, "password"));

  /* The text list. */
  assert_status (f, run (f, NULL, "conn", "list", NULL), 0);
  assert_contains (f->out, name);
  assert_contains (f->out, "(1 row)");

  /* show: says where the password is, never shows it. */
  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 0);
  assert_contains (f->out, "password: stored in the keychain");
  assert_contains (f->out, "last connected: never");
  assert_not_contains (f->out, password);
  assert_status (f, run (f, NULL, "conn", "show", name, "--json", NULL), 0);
  {
    g_autoptr (JsonNode) shown = parse_out (f);
    g_assert_cmpstr (json_object_get_string_member (
                         json_node_get_object (shown), "password"),
                     ==, "stored in the keychain");
  }

  /* test: connects with the keychain's password (PGPASSWORD is unset). */
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 0);
  assert_contains (f->out, "server version: PostgreSQL");
  assert_contains (f->out, "SELECT 1 round trip: ");
  assert_contains (f->out, " ms");
  assert_not_contains (f->out, password);
  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 0);
  assert_not_contains (f->out, "last connected: never");

  /* Names are found without regard to ASCII case. */
  g_autofree char *upper = g_ascii_strup (name, -1);
  assert_status (f, run (f, NULL, "conn", "show", upper, NULL), 0);

  /* rm: the connection and its keychain entry go. */
  assert_status (f, run (f, NULL, "conn", "rm", name, NULL), 0);
  g_autofree char *gone = keychain_lookup ("db", id);
  g_assert_null (gone);
  g_autoptr (JsonNode) none = list_connections (f);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (none)), ==, 0);
  assert_status (f, run (f, NULL, "conn", "rm", name, NULL), 1);
  assert_contains (f->err, name);

  /* A password inside --uri goes to the keychain too (with a warning that
   * the command line is visible to others). */
  g_autofree char *uri = g_strdup_printf (
      "postgresql://%s:%s@%s:%s/%s",
      tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"), password,
      tusk_test_env ("TUSK_TEST_PGHOST"), tusk_test_env ("TUSK_TEST_PGPORT"),
      tusk_test_env ("TUSK_TEST_PGDATABASE"));
  assert_status (f, run (f, NULL, "conn", "add", name, "--uri", uri, NULL), 0);
  assert_contains (f->err, "the password in --uri goes to the keychain");
  assert_not_contains (f->out, password);
  g_autofree char *uri_id = connection_id (f, name);
  assert_not_contains (f->out, password);
  g_autofree char *from_uri = keychain_lookup ("db", uri_id);
  g_assert_cmpstr (from_uri, ==, password);
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 0);

  /* Nothing in the data directory (database, WAL, logs) holds it. */
  assert_no_file_holds (f->data_dir, password);
}

static void
test_conn_test_failures (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *name = g_strdup_printf ("nopw-%s", f->suffix);
  /* Saved without a password: the server refuses. */
  assert_status (f,
                 run (f, NULL, "conn", "add", name, "-h",
                      tusk_test_env ("TUSK_TEST_PGHOST"), "-p",
                      tusk_test_env ("TUSK_TEST_PGPORT"), "-U",
                      tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"), "-d",
                      tusk_test_env ("TUSK_TEST_PGDATABASE"), NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 0);
  assert_contains (f->out, "password: not stored");
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 2);

  /* A wrong password. */
  assert_status (f,
                 run (f, "not-the-password\n", "conn", "edit", name,
                      "--password-stdin", NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 2);
  assert_not_contains (f->err, "not-the-password");

  /* A port where nothing listens. */
  assert_status (f, run (f, NULL, "conn", "edit", name, "-p", "1", NULL), 0);
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 2);

  /* No such connection. */
  assert_status (f, run (f, NULL, "conn", "test", "no-such-conn", NULL), 1);
  assert_contains (f->err, "no-such-conn");
}

/* The number of saved connections named @name (ASCII case ignored), read
 * straight from the data directory's SQLite file: cheaper than a run. */
static int
stored_connections (Fixture *f, const char *name)
{
  g_autofree char *path = g_build_filename (f->data_dir, "tusk.db", NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return 0;
  sqlite3 *db = NULL;
  if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    g_error ("%s: %s", path, sqlite3_errmsg (db));
  sqlite3_busy_timeout (db, 5000);
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                                       "SELECT count(*) FROM connections "
                                       "WHERE name = ?1 COLLATE NOCASE",
                                       -1, &stmt, NULL),
                   ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, name, -1, SQLITE_TRANSIENT);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  int count = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return count;
}

/* Without a keychain a password would live only as long as the process:
 * saving one is refused (nothing stored); saving without one works. */
static void
test_conn_keychain_unavailable (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *bus = g_strdup_printf ("unix:path=%s/no-bus", f->root);
  f->bus = bus;
  g_autofree char *name = g_strdup_printf ("nokc-%s", f->suffix);
  g_autofree char *uri = trust_uri ();

  g_autofree char *secret = g_strdup_printf ("unkept-%s", f->suffix);
  g_autofree char *input = g_strdup_printf ("%s\n", secret);
  assert_status (f,
                 run (f, input, "conn", "add", name, "--uri", uri,
                      "--password-stdin", NULL),
                 1);
  assert_contains (f->err, "keychain is unavailable");
  assert_contains (f->err, "nothing was saved");
  g_assert_cmpint (stored_connections (f, name), ==, 0);

  assert_status (f, run (f, NULL, "conn", "add", name, "--uri", uri, NULL), 0);
  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 0);
  assert_contains (f->out, "password: unknown (the keychain is unavailable");
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 0);
  assert_no_file_holds (f->data_dir, secret);
  f->bus = NULL;
}

/* Reads from @fd until @needle has been seen or the child closed the
 * terminal; returns everything read (transfer full). */
static char *
read_until (int fd, const char *needle)
{
  GString *seen = g_string_new (NULL);
  char buf[512];
  while (!(needle && strstr (seen->str, needle)))
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n <= 0)
        break; /* EIO: the child closed the terminal */
      g_string_append_len (seen, buf, n);
    }
  return g_string_free (seen, FALSE);
}

/* --ask-password asks on the terminal without echo; without a terminal it
 * fails and stores nothing. */
static void
test_conn_ask_password (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  g_autofree char *name = g_strdup_printf ("ask-%s", f->suffix);
  g_autofree char *tusk = g_build_filename (
      tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell", "tusk", NULL);

  assert_status (f,
                 run (f, NULL, "conn", "add", name, "-h",
                      tusk_test_env ("TUSK_TEST_PGHOST"), "-U", "u", "-d", "db",
                      "--ask-password", NULL),
                 2);
  assert_contains (f->err, "--ask-password needs a terminal");
  g_assert_cmpint (stored_connections (f, name), ==, 0);

  int master;
  pid_t pid = forkpty (&master, NULL, NULL, NULL);
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      g_setenv ("TUSK_LOG", "trace", TRUE);
      g_unsetenv ("PGPASSWORD");
      execl (tusk, tusk, "--data-dir", f->data_dir, "conn", "add", name, "-h",
             tusk_test_env ("TUSK_TEST_PGHOST"), "-p",
             tusk_test_env ("TUSK_TEST_PGPORT"), "-U",
             tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"), "-d",
             tusk_test_env ("TUSK_TEST_PGDATABASE"), "--ask-password",
             (char *)NULL);
      _exit (127);
    }
  g_autofree char *prompt = read_until (master, "Password for ");
  assert_contains (prompt, "Password for ");
  g_autofree char *answer = g_strdup_printf ("%s\n", password);
  g_assert_cmpint (write (master, answer, strlen (answer)), ==,
                   (ssize_t)strlen (answer));
  g_autofree char *rest = read_until (master, NULL);
  close (master);
  int status;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  if (WEXITSTATUS (status) != 0)
    g_error ("exit status %d:\n%s%s", WEXITSTATUS (status), prompt, rest);
  assert_contains (rest, "password stored in the keychain");
  /* Not echoed, not printed. */
  assert_not_contains (prompt, password);
  assert_not_contains (rest, password);

  g_autofree char *id = connection_id (f, name);
  g_autofree char *stored = keychain_lookup ("db", id);
  g_assert_cmpstr (stored, ==, password);
  assert_status (f, run (f, NULL, "conn", "test", name, NULL), 0);
  assert_no_file_holds (f->data_dir, password);
}

/* Runs `conn add` with @args (NULL-terminated after the name), expects exit
 * 2 with @expected in stderr, and checks that nothing was stored. */
static void
expect_invalid_add (Fixture *f, const char *input, const char *expected,
                    const char *name, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (char *)"conn");
  g_ptr_array_add (argv, (char *)"add");
  g_ptr_array_add (argv, (char *)name);
  va_list args;
  va_start (args, name);
  for (const char *a = va_arg (args, const char *); a;
       a = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *)a);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  int status
      = run_argv (f, f->data_dir, input, (const char *const *)argv->pdata);
  assert_status (f, status, 2);
  assert_contains (f->err, expected);
  if (stored_connections (f, name) != 0)
    g_error ("\"%s\" was stored after: %s", name, f->err);
  if (strstr (name, f->suffix))
    g_assert_false (keychain_mentions (name));
}

static void
test_conn_validation (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *host = tusk_test_env ("TUSK_TEST_PGHOST");
  const char *port = tusk_test_env ("TUSK_TEST_PGPORT");
  const char *db = tusk_test_env ("TUSK_TEST_PGDATABASE");
  g_autofree char *name = g_strdup_printf ("v-%s", f->suffix);
  g_autofree char *missing_key
      = g_build_filename (f->root, "no-such-key", NULL);

  /* A subcommand's name, in any case. */
  expect_invalid_add (f, NULL, "is a subcommand", "saved", "-h", host, "-U",
                      "u", "-d", db, NULL);
  expect_invalid_add (f, NULL, "is a subcommand", "History", "-h", host, "-U",
                      "u", "-d", db, NULL);
  /* Names that read as options or conninfo. */
  expect_invalid_add (f, NULL, "conninfo", "a=b", "-h", host, "-U", "u", "-d",
                      db, NULL);
  /* Each bad field is named by its option. */
  expect_invalid_add (f, NULL, "--color", name, "-h", host, "-U", "u", "-d", db,
                      "--color", "red", NULL);
  expect_invalid_add (f, NULL, "--color", name, "-h", host, "-U", "u", "-d", db,
                      "--color", "#12345g", NULL);
  expect_invalid_add (f, NULL, "--ssl-mode", name, "-h", host, "-U", "u", "-d",
                      db, "--ssl-mode", "allow", NULL);
  expect_invalid_add (f, NULL, "-p PORT", name, "-h", host, "-p", "0", "-U",
                      "u", "-d", db, NULL);
  expect_invalid_add (f, NULL, "-p PORT", name, "-h", host, "-p", "http", "-U",
                      "u", "-d", db, NULL);
  expect_invalid_add (f, NULL, "-h HOST", name, "-U", "u", "-d", db, NULL);
  expect_invalid_add (f, NULL, "-U USER", name, "-h", host, "-d", db, NULL);
  expect_invalid_add (f, NULL, "-d DB", name, "-h", host, "-U", "u", NULL);
  expect_invalid_add (f, NULL, "-h HOST", name, "-h", "db password=x", "-U",
                      "u", "-d", db, NULL);
  expect_invalid_add (f, NULL, "--ssl-root-cert", name, "-h", host, "-U", "u",
                      "-d", db, "--ssl-root-cert", missing_key, NULL);
  expect_invalid_add (f, NULL, "--uri", name, "--uri",
                      "postgresql://u@h/db?gssencmode=disable", NULL);
  expect_invalid_add (f, NULL, "--uri", name, "--uri", "host='unterminated",
                      NULL);
  /* SSH: the key file must exist; a user and one login method. */
  expect_invalid_add (f, NULL, "--ssh-key", name, "-h", host, "-U", "u", "-d",
                      db, "--ssh-host", "127.0.0.1", "--ssh-user", "me",
                      "--ssh-key", missing_key, NULL);
  expect_invalid_add (f, NULL, "--ssh-user", name, "-h", host, "-U", "u", "-d",
                      db, "--ssh-host", "127.0.0.1", "--ssh-agent", NULL);
  expect_invalid_add (f, NULL, "choose one way", name, "-h", host, "-U", "u",
                      "-d", db, "--ssh-host", "127.0.0.1", "--ssh-user", "me",
                      "--ssh-agent", "--ssh-password-stdin", NULL);
  expect_invalid_add (f, NULL, "choose how to log in", name, "-h", host, "-U",
                      "u", "-d", db, "--ssh-host", "127.0.0.1", "--ssh-user",
                      "me", NULL);
  expect_invalid_add (f, NULL, "--ssh-port", name, "-h", host, "-U", "u", "-d",
                      db, "--ssh-host", "127.0.0.1", "--ssh-user", "me",
                      "--ssh-agent", "--ssh-port", "70000", NULL);
  /* Edit-only options. */
  expect_invalid_add (f, NULL, "--rename", name, "-h", host, "-U", "u", "-d",
                      db, "--rename", "x", NULL);
  /* Every problem at once. */
  expect_invalid_add (f, NULL, "--ssl-mode", name, "-p", "x", "--color", "blue",
                      "--ssl-mode", "sometimes", NULL);
  assert_contains (f->err, "-p PORT");
  assert_contains (f->err, "--color");
  assert_contains (f->err, "-h HOST");
  assert_contains (f->err, "nothing was saved");
  /* A password that stdin does not give; two ways of giving one. */
  expect_invalid_add (f, "", "--password-stdin", name, "-h", host, "-p", port,
                      "-U", "u", "-d", db, "--password-stdin", NULL);
  expect_invalid_add (f, "\n", "empty", name, "-h", host, "-p", port, "-U", "u",
                      "-d", db, "--password-stdin", NULL);
  expect_invalid_add (f, "pw\n", "one way only", name, "-h", host, "-p", port,
                      "-U", "u", "-d", db, "--password-stdin", "--ask-password",
                      NULL);

  /* A name already taken (ASCII case ignored) is refused; the first stays
   * as it was. */
  add_password_connection (f, name);
  g_assert_cmpint (stored_connections (f, name), ==, 1);
  g_autofree char *upper = g_ascii_strup (name, -1);
  assert_status (f,
                 run (f, NULL, "conn", "add", upper, "-h", host, "-U", "other",
                      "-d", db, NULL),
                 2);
  assert_contains (f->err, "already exists");
  g_autoptr (JsonNode) all = list_connections (f);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (all)), ==, 1);
  g_assert_cmpstr (
      json_object_get_string_member (find_named (all, name), "username"), ==,
      tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
}

static void
test_conn_edit (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *name = g_strdup_printf ("ed-%s", f->suffix);
  g_autofree char *renamed = g_strdup_printf ("ed2-%s", f->suffix);
  g_autofree char *uri = trust_uri ();
  assert_status (f, run (f, NULL, "conn", "add", name, "--uri", uri, NULL), 0);
  g_autofree char *id = connection_id (f, name);

  assert_status (f, run (f, NULL, "conn", "edit", name, NULL), 2);
  assert_contains (f->err, "nothing to change");
  assert_status (
      f, run (f, NULL, "conn", "edit", "no-such", "--read-only", NULL), 1);

  assert_status (f,
                 run (f, NULL, "conn", "edit", name, "--rename", renamed,
                      "--read-only", "--color", "#3B82F6", "--ssl-mode",
                      "require", "--statement-timeout", "5", NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "show", renamed, NULL), 0);
  assert_contains (f->out, "read-only: yes");
  assert_contains (f->out, "color: #3B82F6");
  assert_contains (f->out, "ssl mode: require");
  assert_contains (f->out, "statement timeout: 5 s");
  g_autofree char *same_id = connection_id (f, renamed);
  g_assert_cmpstr (same_id, ==, id);
  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 1);

  /* Invalid changes change nothing. */
  assert_status (
      f,
      run (f, NULL, "conn", "edit", renamed, "--color", "red", "-p", "0", NULL),
      2);
  assert_contains (f->err, "--color");
  assert_status (f, run (f, NULL, "conn", "show", renamed, NULL), 0);
  assert_contains (f->out, "color: #3B82F6");
  assert_status (
      f, run (f, NULL, "conn", "edit", renamed, "--rename", "schema", NULL), 2);

  /* Unsetting. */
  assert_status (f,
                 run (f, NULL, "conn", "edit", renamed, "--read-write",
                      "--color", "", "--ssl-mode", "prefer",
                      "--statement-timeout", "default", NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "show", renamed, NULL), 0);
  assert_contains (f->out, "read-only: no");
  assert_contains (f->out, "color: none");
  assert_contains (f->out, "statement timeout: default");

  /* The password: set, replaced, forgotten. */
  assert_status (f,
                 run (f, "first-secret\n", "conn", "edit", renamed,
                      "--password-stdin", NULL),
                 0);
  g_autofree char *first = keychain_lookup ("db", id);
  g_assert_cmpstr (first, ==, "first-secret");
  assert_status (f,
                 run (f, "second-secret\n", "conn", "edit", renamed,
                      "--password-stdin", NULL),
                 0);
  g_autofree char *second = keychain_lookup ("db", id);
  g_assert_cmpstr (second, ==, "second-secret");
  assert_status (
      f, run (f, NULL, "conn", "edit", renamed, "--no-password", NULL), 0);
  g_autofree char *none = keychain_lookup ("db", id);
  g_assert_null (none);
  assert_status (f, run (f, NULL, "conn", "show", renamed, NULL), 0);
  assert_contains (f->out, "password: not stored");

  /* The trust role works without one; -U switches to the password role. */
  assert_status (f, run (f, NULL, "conn", "test", renamed, NULL), 0);
  g_autofree char *input
      = g_strdup_printf ("%s\n", tusk_test_env ("TUSK_TEST_PGPASSWORD"));
  assert_status (f,
                 run (f, input, "conn", "edit", renamed, "-U",
                      tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"),
                      "--password-stdin", NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "test", renamed, NULL), 0);
  assert_no_file_holds (f->data_dir, tusk_test_env ("TUSK_TEST_PGPASSWORD"));
}

static void
test_conn_ssh (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *name = g_strdup_printf ("ssh-%s", f->suffix);
  g_autofree char *key = g_build_filename (f->root, "id_ed25519", NULL);
  g_assert_true (
      g_file_set_contents (key, "not a real key, only saved\n", -1, NULL));
  g_autofree char *uri = trust_uri ();

  /* A key with a passphrase: the passphrase goes to the keychain. */
  assert_status (f,
                 run (f, "key-passphrase\n", "conn", "add", name, "--uri", uri,
                      "--ssh-host", "127.0.0.1", "--ssh-port", "2222",
                      "--ssh-user", "tusk-ssh", "--ssh-key", key,
                      "--ssh-passphrase-stdin", NULL),
                 0);
  g_autoptr (JsonNode) all = list_connections (f);
  JsonObject *item = find_named (all, name);
  g_assert_nonnull (item);
  JsonObject *tunnel = json_object_get_object_member (item, "ssh_tunnel");
  g_assert_nonnull (tunnel);
  g_assert_cmpstr (json_object_get_string_member (tunnel, "host"), ==,
                   "127.0.0.1");
  g_assert_cmpint (json_object_get_int_member (tunnel, "port"), ==, 2222);
  g_assert_cmpstr (json_object_get_string_member (tunnel, "username"), ==,
                   "tusk-ssh");
  g_assert_cmpstr (json_object_get_string_member (tunnel, "auth_method"), ==,
                   "key");
  g_assert_cmpstr (json_object_get_string_member (tunnel, "key_path"), ==, key);
  assert_not_contains (f->out, "key-passphrase");
  g_autofree char *tunnel_id
      = g_strdup (json_object_get_string_member (tunnel, "id"));
  g_autofree char *secret = keychain_lookup ("ssh", tunnel_id);
  g_assert_cmpstr (secret, ==, "key-passphrase");

  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 0);
  assert_contains (f->out, "ssh tunnel: tusk-ssh@127.0.0.1:2222 (key ");
  assert_contains (f->out, "ssh key passphrase: stored in the keychain");
  assert_not_contains (f->out, "key-passphrase");

  /* Both secrets from stdin: the database password first. */
  g_autofree char *both = g_strdup_printf ("both-%s", f->suffix);
  assert_status (f,
                 run (f, "db-secret\nssh-secret\n", "conn", "add", both,
                      "--uri", uri, "--password-stdin", "--ssh-host",
                      "127.0.0.1", "--ssh-user", "tusk-ssh",
                      "--ssh-password-stdin", NULL),
                 0);
  g_autofree char *both_id = connection_id (f, both);
  g_autoptr (JsonNode) all2 = list_connections (f);
  g_autofree char *both_tunnel = g_strdup (json_object_get_string_member (
      json_object_get_object_member (find_named (all2, both), "ssh_tunnel"),
      "id"));
  g_autofree char *db_secret = keychain_lookup ("db", both_id);
  g_autofree char *ssh_secret = keychain_lookup ("ssh", both_tunnel);
  g_assert_cmpstr (db_secret, ==, "db-secret");
  g_assert_cmpstr (ssh_secret, ==, "ssh-secret");

  /* Switching to the agent forgets the password; the tunnel keeps its id. */
  assert_status (f, run (f, NULL, "conn", "edit", both, "--ssh-agent", NULL),
                 0);
  g_autofree char *forgotten = keychain_lookup ("ssh", both_tunnel);
  g_assert_null (forgotten);
  assert_status (f, run (f, NULL, "conn", "show", both, "--json", NULL), 0);
  {
    g_autoptr (JsonNode) shown = parse_out (f);
    JsonObject *t = json_object_get_object_member (json_node_get_object (shown),
                                                   "ssh_tunnel");
    g_assert_cmpstr (json_object_get_string_member (t, "id"), ==, both_tunnel);
    g_assert_cmpstr (json_object_get_string_member (t, "auth_method"), ==,
                     "agent");
  }

  /* --no-ssh drops the tunnel and its secret. */
  assert_status (f, run (f, NULL, "conn", "edit", name, "--no-ssh", NULL), 0);
  g_autofree char *dropped = keychain_lookup ("ssh", tunnel_id);
  g_assert_null (dropped);
  assert_status (f, run (f, NULL, "conn", "show", name, NULL), 0);
  assert_contains (f->out, "ssh tunnel: none");
  assert_status (f, run (f, NULL, "export", "-", NULL), 0);
  assert_not_contains (f->out, tunnel_id);
  assert_contains (f->out, both_tunnel);

  /* rm takes the tunnel with it. */
  assert_status (f, run (f, NULL, "conn", "rm", both, NULL), 0);
  g_autofree char *db_gone = keychain_lookup ("db", both_id);
  g_assert_null (db_gone);
  assert_status (f, run (f, NULL, "export", "-", NULL), 0);
  assert_not_contains (f->out, both_tunnel);
  assert_no_file_holds (f->data_dir, "key-passphrase");
  assert_no_file_holds (f->data_dir, "ssh-secret");
  assert_no_file_holds (f->data_dir, "db-secret");
}

/* Connecting through the test environment's sshd: a key, a password and an
 * encrypted key whose passphrase the keychain keeps. */
static void
test_conn_ssh_tunnel (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *ssh_host = tusk_test_env ("TUSK_TEST_SSH_HOST");
  const char *ssh_port = tusk_test_env ("TUSK_TEST_SSH_PORT");
  const char *ssh_user = tusk_test_env ("TUSK_TEST_SSH_USER");
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");

  /* Tusk's own known_hosts file knows the test host key (nobody is there
   * to confirm an unknown one). */
  g_assert_cmpint (g_mkdir_with_parents (f->data_dir, 0700), ==, 0);
  g_autofree char *known = NULL;
  gsize length = 0;
  g_assert_true (g_file_get_contents (
      tusk_test_env ("TUSK_TEST_SSH_KNOWN_HOSTS"), &known, &length, NULL));
  g_autofree char *known_path
      = g_build_filename (f->data_dir, "known_hosts", NULL);
  g_assert_true (g_file_set_contents (known_path, known, length, NULL));

  /* A key; the database password from the keychain. */
  g_autofree char *input = g_strdup_printf ("%s\n", password);
  g_autofree char *key_name = g_strdup_printf ("tk-%s", f->suffix);
  const char *const add_key[] = {
    "conn",
    "add",
    key_name,
    "-h",
    "127.0.0.1",
    "-p",
    tusk_test_env ("TUSK_TEST_PGPORT"),
    "-U",
    tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"),
    "-d",
    tusk_test_env ("TUSK_TEST_PGDATABASE"),
    "--password-stdin",
    "--ssh-host",
    ssh_host,
    "--ssh-port",
    ssh_port,
    "--ssh-user",
    ssh_user,
    "--ssh-key",
    tusk_test_env ("TUSK_TEST_SSH_KEY"),
    NULL,
  };
  assert_status (f, run_argv (f, f->data_dir, input, add_key), 0);
  assert_status (f, run (f, NULL, "conn", "test", key_name, NULL), 0);
  assert_contains (f->out, "through SSH");
  assert_contains (f->out, "server version: PostgreSQL");
  assert_contains (f->out, "SELECT 1 round trip: ");
  assert_status (f,
                 run (f, NULL, "saved", "add", "via", "--sql",
                      "SELECT 'tunnelled' AS how", "--connection", key_name,
                      NULL),
                 0);
  assert_status (f, run (f, NULL, "saved", "run", "via", "--csv", NULL), 0);
  g_assert_cmpstr (f->out, ==, "how\ntunnelled\n");

  /* A password, from the keychain; a wrong one fails with exit 2. */
  g_autofree char *pw_name = g_strdup_printf ("tp-%s", f->suffix);
  g_autofree char *both = g_strdup_printf (
      "%s\n%s\n", password, tusk_test_env ("TUSK_TEST_SSH_PASSWORD"));
  const char *const add_password[] = {
    "conn",
    "add",
    pw_name,
    "-h",
    "127.0.0.1",
    "-p",
    tusk_test_env ("TUSK_TEST_PGPORT"),
    "-U",
    tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"),
    "-d",
    tusk_test_env ("TUSK_TEST_PGDATABASE"),
    "--password-stdin",
    "--ssh-host",
    ssh_host,
    "--ssh-port",
    ssh_port,
    "--ssh-user",
    ssh_user,
    "--ssh-password-stdin",
    NULL,
  };
  assert_status (f, run_argv (f, f->data_dir, both, add_password), 0);
  assert_status (f, run (f, NULL, "conn", "test", pw_name, NULL), 0);
  assert_status (f,
                 run (f, "not-the-ssh-password\n", "conn", "edit", pw_name,
                      "--ssh-password-stdin", NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "test", pw_name, NULL), 2);
  assert_contains (f->err, "SSH");
  assert_not_contains (f->err, "not-the-ssh-password");

  /* An encrypted key, its passphrase from the keychain. */
  g_autofree char *enc_name = g_strdup_printf ("te-%s", f->suffix);
  g_autofree char *passphrase = g_strdup_printf (
      "%s\n", tusk_test_env ("TUSK_TEST_SSH_KEY_PASSPHRASE"));
  g_autofree char *uri = trust_uri ();
  assert_status (f,
                 run (f, passphrase, "conn", "add", enc_name, "--uri", uri,
                      "--ssh-host", ssh_host, "--ssh-port", ssh_port,
                      "--ssh-user", ssh_user, "--ssh-key",
                      tusk_test_env ("TUSK_TEST_SSH_KEY_ENC"),
                      "--ssh-passphrase-stdin", NULL),
                 0);
  assert_status (f, run (f, NULL, "conn", "test", enc_name, NULL), 0);
  assert_status (f, run (f, NULL, "schema", enc_name, "--json", NULL), 0);
  g_autoptr (JsonNode) schema = parse_out (f);
  g_assert_cmpstr (
      json_object_get_string_member (json_node_get_object (schema), "database"),
      ==, tusk_test_env ("TUSK_TEST_PGDATABASE"));

  /* A tunnel to a port where no SSH server listens fails with exit 2. */
  assert_status (
      f, run (f, NULL, "conn", "edit", enc_name, "--ssh-port", "1", NULL), 0);
  assert_status (f, run (f, NULL, "conn", "test", enc_name, NULL), 2);

  assert_no_file_holds (f->data_dir, password);
  assert_no_file_holds (f->data_dir, tusk_test_env ("TUSK_TEST_SSH_PASSWORD"));
  assert_no_file_holds (f->data_dir,
                        tusk_test_env ("TUSK_TEST_SSH_KEY_PASSPHRASE"));
}

/* ------------------------------------------------------ history, saved */

/* The history entries of `history ARGS --json`; (transfer full). */
static JsonNode *
history_json (Fixture *f, const char *a, const char *b, const char *c)
{
  assert_status (f, run (f, NULL, "history", "--json", a, b, c, NULL), 0);
  JsonNode *node = parse_out (f);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  return node;
}

static gboolean
history_has (JsonNode *entries, const char *sql)
{
  JsonArray *array = json_node_get_array (entries);
  for (guint i = 0; i < json_array_get_length (array); i++)
    if (g_strcmp0 (json_object_get_string_member (
                       json_array_get_object_element (array, i), "sql"),
                   sql)
        == 0)
      return TRUE;
  return FALSE;
}

static void
test_history (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *name = g_strdup_printf ("hist-%s", f->suffix);
  g_autofree char *other = g_strdup_printf ("other-%s", f->suffix);
  add_password_connection (f, name);
  g_autofree char *uri = trust_uri ();
  assert_status (f, run (f, NULL, "conn", "add", other, "--uri", uri, NULL), 0);

  assert_status (f, run (f, NULL, "history", NULL), 0);
  assert_contains (f->out, "No history");

  /* tusk -c on a saved connection records history. */
  assert_status (f, run (f, NULL, "-c", "SELECT 42 AS answer", name, NULL), 0);
  assert_contains (f->out, "42");
  assert_status (f, run (f, NULL, "-c", "SELECT 'other' AS who", other, NULL),
                 0);
  assert_status (f, run (f, NULL, "-c", "SELECT nope", name, NULL), 1);

  /* saved run records it too. */
  assert_status (f,
                 run (f, NULL, "saved", "add", "hq", "--sql",
                      "SELECT 7 AS seven", "--connection", name, NULL),
                 0);
  assert_status (f, run (f, NULL, "saved", "run", "hq", NULL), 0);

  g_autoptr (JsonNode) mine = history_json (f, name, NULL, NULL);
  g_assert_true (history_has (mine, "SELECT 42 AS answer"));
  g_assert_true (history_has (mine, "SELECT 7 AS seven"));
  g_assert_true (history_has (mine, "SELECT nope"));
  g_assert_false (history_has (mine, "SELECT 'other' AS who"));
  JsonArray *array = json_node_get_array (mine);
  /* Newest first. */
  g_assert_cmpstr (json_object_get_string_member (
                       json_array_get_object_element (array, 0), "sql"),
                   ==, "SELECT 7 AS seven");
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *e = json_array_get_object_element (array, i);
      g_assert_cmpstr (json_object_get_string_member (e, "connection"), ==,
                       name);
      gboolean failed = g_str_equal (json_object_get_string_member (e, "sql"),
                                     "SELECT nope");
      g_assert_true (json_object_get_null_member (e, "error") != failed);
    }

  g_autoptr (JsonNode) every = history_json (f, NULL, NULL, NULL);
  g_assert_true (history_has (every, "SELECT 'other' AS who"));
  g_assert_true (history_has (every, "SELECT 42 AS answer"));

  g_autoptr (JsonNode) found = history_json (f, "--search", "answer", NULL);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (found)), ==, 1);
  g_assert_true (history_has (found, "SELECT 42 AS answer"));
  g_autoptr (JsonNode) one = history_json (f, "--limit", "1", NULL);
  g_assert_cmpuint (json_array_get_length (json_node_get_array (one)), ==, 1);

  /* The text form. */
  assert_status (f, run (f, NULL, "history", name, NULL), 0);
  assert_contains (f->out, "SELECT 42 AS answer");
  assert_contains (f->out, "ERROR: ");
  assert_not_contains (f->out, "SELECT 'other' AS who");

  /* Only saved connections have history. */
  assert_status (f, run (f, NULL, "history", "no-such-conn", NULL), 1);
  assert_contains (f->err, "no-such-conn");
}

static void
test_saved (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *name = g_strdup_printf ("sq-%s", f->suffix);
  add_password_connection (f, name);
  g_autofree char *uri = trust_uri ();

  assert_status (f, run (f, NULL, "saved", "list", NULL), 0);
  assert_contains (f->out, "No saved queries");
  assert_status (f,
                 run (f, NULL, "saved", "add", "answer", "--sql",
                      "SELECT 42 AS answer, 'a,b' AS text", "--folder",
                      "reports/daily", "--connection", name, "--description",
                      "the answer", NULL),
                 0);
  assert_status (f,
                 run (f, NULL, "saved", "add", "loose", "--sql",
                      "SELECT current_user AS who", NULL),
                 0);
  g_autofree char *file = g_build_filename (f->root, "q.sql", NULL);
  g_assert_true (
      g_file_set_contents (file, "SELECT 1 AS a;\nSELECT 2 AS b;\n", -1, NULL));
  assert_status (f,
                 run (f, NULL, "saved", "add", "two", "--file", file,
                      "--folder", "reports", NULL),
                 0);

  /* Invalid adds store nothing. */
  assert_status (
      f, run (f, NULL, "saved", "add", "ANSWER", "--sql", "SELECT 1", NULL), 2);
  assert_contains (f->err, "already exists");
  assert_status (f, run (f, NULL, "saved", "add", "x", NULL), 2);
  assert_contains (f->err, "--sql");
  assert_status (f, run (f, NULL, "saved", "add", "x", "--sql", "  ", NULL), 2);
  assert_status (f,
                 run (f, NULL, "saved", "add", "x", "--sql", "SELECT 1",
                      "--folder", "a//b", NULL),
                 2);
  assert_contains (f->err, "--folder");
  assert_status (f,
                 run (f, NULL, "saved", "add", "x", "--sql", "SELECT 1",
                      "--connection", "no-such-conn", NULL),
                 2);
  assert_contains (f->err, "--connection");

  /* list: all, by folder (with the folders inside it), as JSON. */
  assert_status (f, run (f, NULL, "saved", "list", NULL), 0);
  assert_contains (f->out, "answer");
  assert_contains (f->out, "loose");
  assert_contains (f->out, "reports/daily");
  assert_contains (f->out, "(3 rows)");
  assert_not_contains (f->out, "\nSELECT 2");
  assert_status (
      f, run (f, NULL, "saved", "list", "--folder", "reports", "--json", NULL),
      0);
  {
    g_autoptr (JsonNode) list = parse_out (f);
    JsonArray *items = json_node_get_array (list);
    g_assert_cmpuint (json_array_get_length (items), ==, 2);
    for (guint i = 0; i < 2; i++)
      {
        JsonObject *q = json_array_get_object_element (items, i);
        if (g_str_equal (json_object_get_string_member (q, "name"), "answer"))
          {
            g_assert_cmpstr (json_object_get_string_member (q, "folder"), ==,
                             "reports/daily");
            g_assert_cmpstr (json_object_get_string_member (q, "connection"),
                             ==, name);
            g_assert_cmpstr (json_object_get_string_member (q, "description"),
                             ==, "the answer");
          }
      }
  }
  assert_status (f,
                 run (f, NULL, "saved", "list", "--folder", "reports/daily",
                      "--json", NULL),
                 0);
  {
    g_autoptr (JsonNode) list = parse_out (f);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (list)), ==,
                      1);
  }

  /* run: on the query's connection (its keychain password), in CSV. */
  assert_status (f, run (f, NULL, "saved", "run", "answer", "--csv", NULL), 0);
  g_assert_cmpstr (f->out, ==, "answer,text\n42,\"a,b\"\n");
  assert_status (
      f, run (f, NULL, "saved", "run", "answer", "--format", "json", NULL), 0);
  {
    g_autoptr (JsonNode) rows = parse_out (f);
    JsonObject *row
        = json_array_get_object_element (json_node_get_array (rows), 0);
    g_assert_cmpint (json_object_get_int_member (row, "answer"), ==, 42);
  }
  /* FOLDER/NAME finds it too. */
  assert_status (
      f, run (f, NULL, "saved", "run", "reports/daily/answer", "--csv", NULL),
      0);
  /* On a TARGET given on the command line. */
  assert_status (f, run (f, NULL, "saved", "run", "loose", uri, "--csv", NULL),
                 0);
  g_autofree char *expected_who
      = g_strdup_printf ("who\n%s\n", tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  g_assert_cmpstr (f->out, ==, expected_who);
  assert_status (f, run (f, NULL, "saved", "run", "two", uri, "--csv", NULL),
                 0);
  assert_contains (f->out, "a\n1\n");
  assert_contains (f->out, "b\n2\n");

  /* Failures: a statement (1), the connection (2), a name (1), usage (2). */
  assert_status (f,
                 run (f, NULL, "saved", "add", "broken", "--sql",
                      "SELECT * FROM no_such_table_anywhere", NULL),
                 0);
  assert_status (f, run (f, NULL, "saved", "run", "broken", uri, NULL), 1);
  assert_contains (f->err, "no_such_table_anywhere");
  g_autofree char *dead = g_strdup_printf (
      "postgresql://%s@%s:1/%s", tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
      tusk_test_env ("TUSK_TEST_PGHOST"),
      tusk_test_env ("TUSK_TEST_PGDATABASE"));
  assert_status (f, run (f, NULL, "saved", "run", "loose", dead, NULL), 2);
  assert_status (f, run (f, NULL, "saved", "run", "nothing", uri, NULL), 1);
  assert_status (
      f, run (f, NULL, "saved", "run", "loose", uri, "--format", "yaml", NULL),
      2);
  assert_contains (f->err, "--format");

  /* rm. */
  assert_status (f, run (f, NULL, "saved", "rm", "answer", NULL), 0);
  assert_status (f, run (f, NULL, "saved", "rm", "answer", NULL), 1);
  assert_status (f, run (f, NULL, "saved", "list", "--json", NULL), 0);
  {
    g_autoptr (JsonNode) list = parse_out (f);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (list)), ==,
                      3);
  }
  assert_not_contains (f->out, "\"answer\"");
}

/* ------------------------------------------------------------ schema */

static JsonObject *
find_object (JsonObject *root, const char *member, const char *schema,
             const char *name)
{
  JsonArray *array = json_object_get_array_member (root, member);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *item = json_array_get_object_element (array, i);
      if (g_strcmp0 (json_object_get_string_member (item, "schema"), schema)
              == 0
          && g_strcmp0 (json_object_get_string_member (item, "name"), name)
                 == 0)
        return item;
    }
  return NULL;
}

static void
test_schema (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *schema = g_strdup_printf ("cmds_%s", f->suffix);
  g_autofree char *ddl = g_strdup_printf (
      "CREATE SCHEMA %1$s;"
      "CREATE TYPE %1$s.mood AS ENUM ('sad', 'ok', 'happy');"
      "CREATE TABLE %1$s.people (id serial PRIMARY KEY, name text NOT NULL, "
      "  mood %1$s.mood DEFAULT 'ok', born date);"
      "CREATE INDEX people_name_idx ON %1$s.people (name);"
      "CREATE VIEW %1$s.happy_people AS SELECT id, name FROM %1$s.people "
      "  WHERE mood = 'happy';"
      "CREATE MATERIALIZED VIEW %1$s.counts AS SELECT count(*) AS n FROM "
      "  %1$s.people;"
      "CREATE FUNCTION %1$s.greet(who text) RETURNS text LANGUAGE sql AS "
      "  $$SELECT 'hi ' || who$$;"
      "CREATE SEQUENCE %1$s.tickets;",
      schema);
  exec_sql (ddl);

  /* On a URI. */
  g_autofree char *uri = trust_uri ();
  assert_status (f, run (f, NULL, "schema", uri, "--json", NULL), 0);
  g_autoptr (JsonNode) node = parse_out (f);
  JsonObject *root = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (root, "database"), ==,
                   tusk_test_env ("TUSK_TEST_PGDATABASE"));
  gboolean schema_listed = FALSE;
  JsonArray *schemas = json_object_get_array_member (root, "schemas");
  for (guint i = 0; i < json_array_get_length (schemas); i++)
    if (g_str_equal (json_array_get_string_element (schemas, i), schema))
      schema_listed = TRUE;
  g_assert_true (schema_listed);

  JsonObject *people = find_object (root, "tables", schema, "people");
  g_assert_nonnull (people);
  JsonArray *columns = json_object_get_array_member (people, "columns");
  g_assert_cmpuint (json_array_get_length (columns), ==, 4);
  JsonObject *id = json_array_get_object_element (columns, 0);
  g_assert_cmpstr (json_object_get_string_member (id, "name"), ==, "id");
  g_assert_cmpstr (json_object_get_string_member (id, "type"), ==, "integer");
  g_assert_true (json_object_get_boolean_member (id, "primary_key"));
  g_assert_true (json_object_get_boolean_member (id, "not_null"));
  assert_contains (json_object_get_string_member (id, "default"), "nextval");
  JsonObject *name = json_array_get_object_element (columns, 1);
  g_assert_cmpstr (json_object_get_string_member (name, "type"), ==, "text");
  g_assert_true (json_object_get_boolean_member (name, "not_null"));
  g_assert_false (json_object_get_boolean_member (name, "primary_key"));
  JsonObject *mood = json_array_get_object_element (columns, 2);
  g_autofree char *mood_type = g_strdup_printf ("%s.mood", schema);
  g_assert_cmpstr (json_object_get_string_member (mood, "type"), ==, mood_type);

  JsonObject *view = find_object (root, "views", schema, "happy_people");
  g_assert_nonnull (view);
  g_assert_cmpuint (
      json_array_get_length (json_object_get_array_member (view, "columns")),
      ==, 2);
  g_assert_nonnull (find_object (root, "materialized_views", schema, "counts"));
  g_assert_null (find_object (root, "tables", schema, "happy_people"));

  JsonObject *greet = find_object (root, "functions", schema, "greet");
  g_assert_nonnull (greet);
  g_assert_cmpstr (json_object_get_string_member (greet, "arguments"), ==,
                   "who text");
  g_assert_cmpstr (json_object_get_string_member (greet, "result_type"), ==,
                   "text");
  JsonObject *pkey = find_object (root, "indexes", schema, "people_pkey");
  g_assert_nonnull (pkey);
  g_assert_true (json_object_get_boolean_member (pkey, "primary"));
  g_assert_cmpstr (json_object_get_string_member (pkey, "table"), ==, "people");
  JsonObject *by_name
      = find_object (root, "indexes", schema, "people_name_idx");
  g_assert_nonnull (by_name);
  g_assert_false (json_object_get_boolean_member (by_name, "unique"));
  g_assert_nonnull (find_object (root, "sequences", schema, "tickets"));
  g_assert_nonnull (find_object (root, "sequences", schema, "people_id_seq"));
  JsonObject *moods = find_object (root, "enums", schema, "mood");
  g_assert_nonnull (moods);
  JsonArray *labels = json_object_get_array_member (moods, "labels");
  g_assert_cmpuint (json_array_get_length (labels), ==, 3);
  g_assert_cmpstr (json_array_get_string_element (labels, 0), ==, "sad");
  g_assert_cmpstr (json_array_get_string_element (labels, 2), ==, "happy");

  /* On a saved connection (its keychain password), as text. */
  g_autofree char *saved = g_strdup_printf ("schema-%s", f->suffix);
  add_password_connection (f, saved);
  assert_status (f, run (f, NULL, "schema", saved, NULL), 0);
  g_autofree char *table_line = g_strdup_printf ("  %s.people\n", schema);
  assert_contains (f->out, "Tables:");
  assert_contains (f->out, table_line);
  assert_contains (f->out, "primary key");
  assert_contains (f->out, "Views:");
  assert_contains (f->out, "Functions:");
  assert_contains (f->out, "returns text");
  assert_contains (f->out, "Indexes:");
  assert_contains (f->out, "Sequences:");
  assert_contains (f->out, "Enums:");
  assert_contains (f->out, "sad, ok, happy");

  /* A connection that fails exits 2. */
  g_autofree char *dead = g_strdup_printf (
      "postgresql://%s@%s:1/%s", tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
      tusk_test_env ("TUSK_TEST_PGHOST"),
      tusk_test_env ("TUSK_TEST_PGDATABASE"));
  assert_status (f, run (f, NULL, "schema", dead, NULL), 2);

  g_autofree char *drop = g_strdup_printf ("DROP SCHEMA %s CASCADE", schema);
  exec_sql (drop);
}

/* ------------------------------------------------------ export, import */

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

/* The names of the connections of @data_dir, sorted, joined by ','. */
static char *
connection_names (Fixture *f, const char *data_dir)
{
  g_autoptr (JsonNode) all = list_connections_in (f, data_dir);
  JsonArray *items = json_node_get_array (all);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (guint i = 0; i < json_array_get_length (items); i++)
    g_ptr_array_add (names,
                     (char *)json_object_get_string_member (
                         json_array_get_object_element (items, i), "name"));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **)names->pdata);
}

static void
test_export_import (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  g_autofree char *name = g_strdup_printf ("ex-%s", f->suffix);
  add_password_connection (f, name);
  g_autofree char *key = g_build_filename (f->root, "id_ed25519", NULL);
  g_assert_true (g_file_set_contents (key, "key\n", -1, NULL));
  g_autofree char *uri = trust_uri ();
  assert_status (f,
                 run (f, NULL, "conn", "add", "tunnelled", "--uri", uri,
                      "--color", "#00ff00", "--ssh-host", "127.0.0.1",
                      "--ssh-user", "tusk-ssh", "--ssh-key", key, NULL),
                 0);
  assert_status (f,
                 run (f, NULL, "saved", "add", "q", "--sql", "SELECT 1",
                      "--connection", name, "--folder", "f", NULL),
                 0);

  g_autofree char *file = g_build_filename (f->root, "export.json", NULL);
  assert_status (f, run (f, NULL, "export", file, NULL), 0);
  assert_contains (f->out, "2 connection(s)");
  assert_contains (f->out, "1 SSH tunnel(s)");
  assert_contains (f->out, "1 saved query(ies)");
  GStatBuf st;
  g_assert_cmpint (g_stat (file, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  assert_no_file_holds (file, password);
  g_autoptr (JsonNode) doc = NULL;
  {
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (file, &text, NULL, NULL));
    doc = json_from_string (text, NULL);
    g_assert_nonnull (doc);
    g_assert_cmpstr (
        json_object_get_string_member (json_node_get_object (doc), "format"),
        ==, "tusk-export");
  }

  /* Into a new data directory: the same connections, tunnel and query. */
  g_autofree char *other = g_build_filename (f->root, "other", NULL);
  assert_status (f, run_in (f, other, NULL, "import", file, NULL), 0);
  assert_contains (f->out, "connections:   2 added");
  assert_contains (f->out, "SSH tunnels:   1 added");
  assert_contains (f->out, "saved queries: 1 added");
  g_autofree char *names_a = connection_names (f, f->data_dir);
  g_autofree char *names_b = connection_names (f, other);
  g_assert_cmpstr (names_a, ==, names_b);
  g_autofree char *export_a = NULL;
  g_autofree char *export_b = NULL;
  assert_status (f, run (f, NULL, "conn", "list", "--json", NULL), 0);
  export_a = g_strdup (f->out);
  assert_status (f, run_in (f, other, NULL, "conn", "list", "--json", NULL), 0);
  export_b = g_strdup (f->out);
  /* Identical but for last_connected_at (the first was tested, not the
   * copy): compare the tunnelled one, never connected in either. */
  {
    g_autoptr (JsonNode) a = json_from_string (export_a, NULL);
    g_autoptr (JsonNode) b = json_from_string (export_b, NULL);
    JsonObject *ta = find_named (a, "tunnelled");
    JsonObject *tb = find_named (b, "tunnelled");
    g_autoptr (JsonNode) na = json_node_init_object (json_node_alloc (), ta);
    g_autoptr (JsonNode) nb = json_node_init_object (json_node_alloc (), tb);
    g_assert_true (json_node_equal (na, nb));
  }
  assert_status (f, run_in (f, other, NULL, "saved", "list", NULL), 0);
  assert_contains (f->out, "q");
  assert_contains (f->out, name);

  /* skip: everything conflicts and is kept. */
  assert_status (
      f, run_in (f, other, NULL, "import", file, "--on-conflict", "skip", NULL),
      0);
  assert_contains (f->out, "connections:   0 added, 0 replaced, 0 renamed, "
                           "2 skipped");
  g_autofree char *after_skip = connection_names (f, other);
  g_assert_cmpstr (after_skip, ==, names_a);

  /* replace: a changed field comes back from the file. */
  assert_status (f,
                 run_in (f, other, NULL, "conn", "edit", "tunnelled", "--color",
                         "#0000ff", NULL),
                 0);
  assert_status (
      f,
      run_in (f, other, NULL, "import", file, "--on-conflict", "replace", NULL),
      0);
  assert_contains (f->out, "connections:   0 added, 2 replaced");
  assert_status (f, run_in (f, other, NULL, "conn", "show", "tunnelled", NULL),
                 0);
  assert_contains (f->out, "color: #00ff00");

  /* rename: copies beside the originals. */
  assert_status (
      f,
      run_in (f, other, NULL, "import", file, "--on-conflict", "rename", NULL),
      0);
  assert_contains (f->out, "connections:   0 added, 0 replaced, 2 renamed");
  g_autofree char *after_rename = connection_names (f, other);
  g_autofree char *expected
      = g_strdup_printf ("%s,%s (2),tunnelled,tunnelled (2)", name, name);
  g_assert_cmpstr (after_rename, ==, expected);

  /* Bad input: exit 2, nothing imported. */
  assert_status (
      f,
      run_in (f, other, NULL, "import", file, "--on-conflict", "merge", NULL),
      2);
  assert_contains (f->err, "--on-conflict");
  g_autofree char *broken = g_build_filename (f->root, "broken.json", NULL);
  g_assert_true (
      g_file_set_contents (broken, "{\"format\": \"tusk-export\"", -1, NULL));
  assert_status (f, run_in (f, other, NULL, "import", broken, NULL), 2);
  assert_contains (f->err, "Nothing was imported");
  g_autofree char *missing = g_build_filename (f->root, "missing.json", NULL);
  assert_status (f, run_in (f, other, NULL, "import", missing, NULL), 2);
  g_autofree char *after_bad = connection_names (f, other);
  g_assert_cmpstr (after_bad, ==, expected);

  /* export - and import - go through stdout and stdin. */
  assert_status (f, run (f, NULL, "export", "-", NULL), 0);
  g_autofree char *piped = g_strdup (f->out);
  assert_contains (f->err, "Exported 2 connection(s)");
  g_autofree char *third = g_build_filename (f->root, "third", NULL);
  assert_status (f, run_in (f, third, piped, "import", "-", NULL), 0);
  g_autofree char *names_c = connection_names (f, third);
  g_assert_cmpstr (names_c, ==, names_a);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_test_env ("TUSK_TEST_PGHOST");
  tusk_test_env ("TUSK_TEST_KEYRING");

#define ADD(path, func)                                                        \
  g_test_add ("/tusk/commands/" path, Fixture, NULL, fixture_set_up, func,     \
              fixture_tear_down)
  ADD ("help", test_help);
  ADD ("conn-password-lifecycle", test_conn_password_lifecycle);
  ADD ("conn-test-failures", test_conn_test_failures);
  ADD ("conn-ask-password", test_conn_ask_password);
  ADD ("conn-keychain-unavailable", test_conn_keychain_unavailable);
  ADD ("conn-validation", test_conn_validation);
  ADD ("conn-edit", test_conn_edit);
  ADD ("conn-ssh", test_conn_ssh);
  ADD ("history", test_history);
  ADD ("saved", test_saved);
  ADD ("schema", test_schema);
  ADD ("export-import", test_export_import);
  /* Needs the ssh service too (scripts/test-env.sh's default: all three). */
  ADD ("conn-ssh-tunnel", test_conn_ssh_tunnel);
#undef ADD
  return g_test_run ();
}
