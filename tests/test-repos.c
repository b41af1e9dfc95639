/* test-repos.c: the repositories on top of the storage core: connections,
 * SSH tunnels, query history, saved queries and UI state; their validation
 * rules, orderings, foreign keys, concurrent writers, and the promise that
 * no password reaches the database file. */
#include <string.h>

#include <glib/gstdio.h>

#include "tusk.h"
#include "tusk-storage-private.h"
#include "tusk-test.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct
{
  char *root; /* a fresh temporary directory, the data directory */
  TuskStorage *storage;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  f->root = g_dir_make_tmp ("tusk-repos-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->storage = tusk_storage_open (f->root, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->storage);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  if (f->storage != NULL)
    tusk_storage_close (f->storage);
  tusk_test_remove_tree (f->root);
  g_free (f->root);
}

/* A TuskStorageWriteFunc running @data as SQL: tests set what the API
 * does not (old timestamps). */
static gboolean
exec_func (sqlite3 *db, gpointer data, GError **error)
{
  char *message = NULL;
  if (sqlite3_exec (db, data, NULL, NULL, &message) != SQLITE_OK)
    {
      g_set_error (error, TUSK_ERROR, TUSK_ERROR_STORAGE, "%s", message);
      sqlite3_free (message);
      return FALSE;
    }
  return TRUE;
}

static void exec_sql (Fixture *f, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
exec_sql (Fixture *f, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *sql = g_strdup_vprintf (format, args);
  va_end (args);
  g_autoptr (GError) error = NULL;
  g_assert_true (
      tusk_storage_write_sync (f->storage, exec_func, sql, NULL, &error));
  g_assert_no_error (error);
}

/* Returns (transfer full) the first column of the first row of @sql, read
 * on this thread; NULL for SQL NULL or no row. */
static char *query_text (Fixture *f, const char *format, ...)
    G_GNUC_PRINTF (2, 3);

static char *
query_text (Fixture *f, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *sql = g_strdup_vprintf (format, args);
  va_end (args);
  sqlite3 *db = tusk_storage_reader (f->storage, NULL);
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==,
                   SQLITE_OK);
  char *text = NULL;
  if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0))
    text = g_strdup ((const char *)sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  return text;
}

static gint64
count_rows (Fixture *f, const char *table)
{
  g_autofree char *text = query_text (f, "SELECT count(*) FROM %s", table);
  return g_ascii_strtoll (text, NULL, 10);
}

static TuskConnectionConfig *
make_connection (const char *name)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup (name);
  config->host = g_strdup ("db.example.com");
  config->database = g_strdup ("app");
  config->username = g_strdup ("alice");
  return config;
}

static TuskConnectionConfig *
save_connection (Fixture *f, const char *name)
{
  g_autoptr (GError) error = NULL;
  TuskConnectionConfig *config = make_connection (name);
  g_assert_true (tusk_connection_repo_save (f->storage, config, &error));
  g_assert_no_error (error);
  return config;
}

static TuskSshTunnelConfig *
make_tunnel (const char *name)
{
  TuskSshTunnelConfig *tunnel = tusk_ssh_tunnel_config_new ();
  tunnel->name = g_strdup (name);
  tunnel->host = g_strdup ("bastion.example.com");
  tunnel->username = g_strdup ("bob");
  tunnel->auth_method = TUSK_SSH_AUTH_AGENT;
  return tunnel;
}

/* Asserts that @error is a validation error whose message mentions each of
 * the NULL-terminated words. */
static void
assert_validation (const GError *error, ...)
{
  va_list args;
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  va_start (args, error);
  for (const char *word; (word = va_arg (args, const char *)) != NULL;)
    if (strstr (error->message, word) == NULL)
      g_error ("\"%s\" does not mention \"%s\"", error->message, word);
  va_end (args);
}

static void
add_history (Fixture *f, const char *connection_id, const char *sql,
             const char *executed_at)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskHistoryEntry) entry
      = tusk_history_entry_new (connection_id, sql);
  entry->executed_at = g_strdup (executed_at);
  g_assert_true (tusk_history_repo_add (f->storage, entry, &error));
  g_assert_no_error (error);
}

typedef struct
{
  gboolean done;
  GAsyncResult *result;
} AsyncWait;

static void
async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  AsyncWait *wait = user_data;
  wait->result = g_object_ref (result);
  wait->done = TRUE;
}

/* Waits for an async operation and returns (transfer full) its result. */
static GAsyncResult *
async_wait (AsyncWait *wait)
{
  tusk_test_wait_for (&wait->done, 10000);
  return wait->result;
}

/* ---- connections -------------------------------------------------------- */

static void
assert_same_connection (const TuskConnectionConfig *a,
                        const TuskConnectionConfig *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_cmpstr (a->host, ==, b->host);
  g_assert_cmpint (a->port, ==, b->port);
  g_assert_cmpstr (a->database, ==, b->database);
  g_assert_cmpstr (a->username, ==, b->username);
  g_assert_cmpint (a->ssl_mode, ==, b->ssl_mode);
  g_assert_cmpstr (a->ssl_root_cert, ==, b->ssl_root_cert);
  g_assert_cmpstr (a->ssl_cert, ==, b->ssl_cert);
  g_assert_cmpstr (a->ssl_key, ==, b->ssl_key);
  g_assert_cmpstr (a->color, ==, b->color);
  g_assert_cmpint (a->options.connect_timeout_secs, ==,
                   b->options.connect_timeout_secs);
  g_assert_cmpint (a->options.statement_timeout_secs, ==,
                   b->options.statement_timeout_secs);
  g_assert_cmpint (a->options.read_only, ==, b->options.read_only);
  g_assert_cmpstr (a->options.application_name, ==,
                   b->options.application_name);
  g_assert_true ((a->ssh_tunnel == NULL) == (b->ssh_tunnel == NULL));
  if (a->ssh_tunnel != NULL)
    g_assert_cmpstr (a->ssh_tunnel->id, ==, b->ssh_tunnel->id);
}

static void
test_connection_save_load (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) config = make_connection ("Production");
  config->port = 6432;
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  config->ssl_root_cert = g_strdup ("/etc/ssl/root.crt");
  config->ssl_cert = g_strdup ("/home/a/client.crt");
  config->ssl_key = g_strdup ("/home/a/client.key");
  config->color = g_strdup ("#3b82f6");
  config->options.read_only = TRUE;
  config->options.connect_timeout_secs = 3;
  config->options.statement_timeout_secs = 0;
  g_free (config->options.application_name);
  config->options.application_name = g_strdup ("Reports");

  g_assert_true (tusk_connection_repo_save (f->storage, config, &error));
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) loaded
      = tusk_connection_repo_load (f->storage, config->id, &error);
  g_assert_no_error (error);
  assert_same_connection (config, loaded);
  g_assert_null (loaded->last_connected_at);

  /* The defaults round-trip too: statement timeout -1 is SQL NULL. */
  g_autoptr (TuskConnectionConfig) plain = save_connection (f, "Plain");
  g_autoptr (TuskConnectionConfig) plain_loaded
      = tusk_connection_repo_load (f->storage, plain->id, &error);
  assert_same_connection (plain, plain_loaded);
  g_autofree char *timeout = query_text (
      f,
      "SELECT coalesce(statement_timeout_secs, 'null') FROM connections "
      "WHERE connection_id = '%s'",
      plain->id);
  g_assert_cmpstr (timeout, ==, "null");

  /* An update keeps created_at and sets updated_at. */
  exec_sql (f,
            "UPDATE connections SET created_at = '2020-01-01 00:00:00', "
            "updated_at = '2020-01-01 00:00:00' WHERE connection_id = '%s'",
            config->id);
  g_free (config->host);
  config->host = g_strdup ("replica.example.com");
  g_assert_true (tusk_connection_repo_save (f->storage, config, &error));
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) updated
      = tusk_connection_repo_load (f->storage, config->id, &error);
  g_assert_cmpstr (updated->host, ==, "replica.example.com");
  g_autofree char *created = query_text (
      f, "SELECT created_at FROM connections WHERE connection_id = '%s'",
      config->id);
  g_autofree char *changed = query_text (
      f, "SELECT updated_at FROM connections WHERE connection_id = '%s'",
      config->id);
  g_assert_cmpstr (created, ==, "2020-01-01 00:00:00");
  g_assert_cmpstr (changed, >, "2020-01-01 00:00:00");
  g_assert_cmpint (count_rows (f, "connections"), ==, 2);
}

static void
test_connection_not_found (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *id = g_uuid_string_random ();

  g_assert_null (tusk_connection_repo_load (f->storage, id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (tusk_connection_repo_delete (f->storage, id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (tusk_connection_repo_touch (f->storage, id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (tusk_connection_repo_find_by_name (f->storage, "x", &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
}

static void
test_connection_validation (Fixture *f, gconstpointer data)
{
  (void)data;
  /* Each rule of the data model, one at a time. */
  for (int i = 0; i < 7; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskConnectionConfig) config = make_connection ("ok");
      const char *field = NULL;
      switch (i)
        {
          case 0:
            g_free (config->name);
            config->name = g_strdup ("");
            field = "name";
            break;
          case 1:
            g_free (config->name);
            config->name = g_strnfill (256, 'n');
            field = "name";
            break;
          case 2:
            g_free (config->database);
            config->database = g_strnfill (64, 'd');
            field = "database";
            break;
          case 3:
            config->port = 0;
            field = "port";
            break;
          case 4:
            config->port = 65536;
            field = "port";
            break;
          case 5:
            config->color = g_strdup ("blue");
            field = "color";
            break;
          default:
            g_free (config->username);
            config->username = NULL;
            field = "username";
            break;
        }
      g_assert_false (tusk_connection_repo_save (f->storage, config, &error));
      assert_validation (error, field, NULL);
    }
  g_assert_cmpint (count_rows (f, "connections"), ==, 0);

  /* The limits themselves pass: 255 characters (not bytes), 63 bytes. */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (TuskConnectionConfig) config = make_connection ("x");
    GString *name = g_string_new (NULL);
    for (int i = 0; i < 255; i++)
      g_string_append (name, "é");
    g_free (config->name);
    config->name = g_string_free (name, FALSE);
    g_free (config->database);
    config->database = g_strnfill (63, 'd');
    config->port = 65535;
    g_assert_true (tusk_connection_repo_save (f->storage, config, &error));
    g_assert_no_error (error);
  }

  /* Database rules, reported together: a duplicate name (ASCII case
   * ignored) and a tunnel that is not saved. */
  g_autoptr (TuskConnectionConfig) first = save_connection (f, "Staging");
  g_autoptr (TuskConnectionConfig) second = make_connection ("STAGING");
  second->ssh_tunnel = make_tunnel ("unsaved");
  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_connection_repo_save (f->storage, second, &error));
  assert_validation (error, "name", "Staging", "ssh_tunnel", NULL);
  g_assert_cmpint (count_rows (f, "connections"), ==, 2);

  /* Saving the same connection again under its own name is fine. */
  g_clear_error (&error);
  g_assert_true (tusk_connection_repo_save (f->storage, first, &error));
  g_assert_no_error (error);
}

static void
test_connection_order (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) beta = save_connection (f, "beta");
  tusk_connection_config_free (save_connection (f, "Alpha"));
  g_autoptr (TuskConnectionConfig) old = save_connection (f, "old");
  g_autoptr (TuskConnectionConfig) recent = save_connection (f, "recent");
  exec_sql (f,
            "UPDATE connections SET last_connected_at = '2024-01-01 10:00:00' "
            "WHERE connection_id = '%s';"
            "UPDATE connections SET last_connected_at = '2025-06-01 10:00:00' "
            "WHERE connection_id = '%s'",
            old->id, recent->id);

  g_autoptr (GPtrArray) all
      = tusk_connection_repo_load_all (f->storage, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, 4);
  const char *expected[] = { "recent", "old", "Alpha", "beta" };
  for (guint i = 0; i < 4; i++)
    g_assert_cmpstr (((TuskConnectionConfig *)all->pdata[i])->name, ==,
                     expected[i]);
  g_assert_cmpstr (((TuskConnectionConfig *)all->pdata[0])->last_connected_at,
                   ==, "2025-06-01 10:00:00");

  /* Touching one makes it the most recent. */
  g_assert_true (tusk_connection_repo_touch (f->storage, beta->id, &error));
  g_assert_no_error (error);
  g_autoptr (GPtrArray) again
      = tusk_connection_repo_load_all (f->storage, &error);
  TuskConnectionConfig *first = again->pdata[0];
  g_assert_cmpstr (first->name, ==, "beta");
  g_assert_nonnull (first->last_connected_at);
  g_assert_cmpuint (strlen (first->last_connected_at), ==, 19);
}

static void
test_connection_find_delete (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) prod = save_connection (f, "Prod");
  g_autoptr (TuskConnectionConfig) dev = save_connection (f, "dev");

  g_autoptr (TuskConnectionConfig) found
      = tusk_connection_repo_find_by_name (f->storage, "Prod", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found->id, ==, prod->id);
  g_autoptr (TuskConnectionConfig) folded
      = tusk_connection_repo_find_by_name (f->storage, "DEV", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (folded->id, ==, dev->id);

  g_assert_true (tusk_connection_repo_delete (f->storage, prod->id, &error));
  g_assert_no_error (error);
  g_assert_null (tusk_connection_repo_load (f->storage, prod->id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (
      tusk_connection_repo_find_by_name (f->storage, "Prod", &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_assert_cmpint (count_rows (f, "connections"), ==, 1);
}

static void
test_connection_async (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) config = make_connection ("Async");

  AsyncWait save = { 0 };
  tusk_connection_repo_save_async (f->storage, config, NULL, async_done, &save);
  g_assert_false (save.done); /* never from inside the call */
  g_autoptr (GAsyncResult) saved = async_wait (&save);
  g_assert_true (tusk_connection_repo_save_finish (f->storage, saved, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count_rows (f, "connections"), ==, 1);

  /* A validation error arrives through _finish. */
  g_autoptr (TuskConnectionConfig) bad = make_connection ("");
  AsyncWait refuse = { 0 };
  tusk_connection_repo_save_async (f->storage, bad, NULL, async_done, &refuse);
  g_autoptr (GAsyncResult) refused = async_wait (&refuse);
  g_assert_false (
      tusk_connection_repo_save_finish (f->storage, refused, &error));
  assert_validation (error, "name", NULL);
  g_clear_error (&error);

  AsyncWait del = { 0 };
  tusk_connection_repo_delete_async (f->storage, config->id, NULL, async_done,
                                     &del);
  g_autoptr (GAsyncResult) deleted = async_wait (&del);
  g_assert_true (
      tusk_connection_repo_delete_finish (f->storage, deleted, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count_rows (f, "connections"), ==, 0);

  AsyncWait missing = { 0 };
  tusk_connection_repo_delete_async (f->storage, config->id, NULL, async_done,
                                     &missing);
  g_autoptr (GAsyncResult) not_deleted = async_wait (&missing);
  g_assert_false (
      tusk_connection_repo_delete_finish (f->storage, not_deleted, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
}

/* ---- SSH tunnels -------------------------------------------------------- */

static void
test_tunnel_crud (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *key_path = g_build_filename (f->root, "id_ed25519", NULL);
  g_assert_true (g_file_set_contents (key_path, "not really a key", -1, NULL));

  g_autoptr (TuskSshTunnelConfig) keyed = make_tunnel ("zeta");
  keyed->port = 2222;
  keyed->auth_method = TUSK_SSH_AUTH_KEY;
  keyed->key_path = g_strdup (key_path);
  g_autoptr (TuskSshTunnelConfig) agent = make_tunnel ("alpha");
  g_assert_true (tusk_tunnel_repo_save (f->storage, keyed, &error));
  g_assert_no_error (error);
  g_assert_true (tusk_tunnel_repo_save (f->storage, agent, &error));
  g_assert_no_error (error);

  g_autoptr (TuskSshTunnelConfig) loaded
      = tusk_tunnel_repo_load (f->storage, keyed->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (loaded->name, ==, "zeta");
  g_assert_cmpstr (loaded->host, ==, "bastion.example.com");
  g_assert_cmpint (loaded->port, ==, 2222);
  g_assert_cmpstr (loaded->username, ==, "bob");
  g_assert_cmpint (loaded->auth_method, ==, TUSK_SSH_AUTH_KEY);
  g_assert_cmpstr (loaded->key_path, ==, key_path);

  g_autoptr (GPtrArray) all = tusk_tunnel_repo_load_all (f->storage, &error);
  g_assert_cmpuint (all->len, ==, 2);
  g_assert_cmpstr (((TuskSshTunnelConfig *)all->pdata[0])->name, ==, "alpha");
  g_assert_cmpstr (((TuskSshTunnelConfig *)all->pdata[1])->name, ==, "zeta");

  /* Update in place. */
  agent->auth_method = TUSK_SSH_AUTH_PASSWORD;
  g_assert_true (tusk_tunnel_repo_save (f->storage, agent, &error));
  g_autoptr (TuskSshTunnelConfig) updated
      = tusk_tunnel_repo_load (f->storage, agent->id, &error);
  g_assert_cmpint (updated->auth_method, ==, TUSK_SSH_AUTH_PASSWORD);
  g_assert_cmpint (count_rows (f, "ssh_tunnels"), ==, 2);

  /* Validation: key auth with a key that does not exist, port, name. */
  g_autoptr (TuskSshTunnelConfig) bad = make_tunnel ("");
  bad->port = 0;
  bad->auth_method = TUSK_SSH_AUTH_KEY;
  bad->key_path = g_build_filename (f->root, "missing-key", NULL);
  g_assert_false (tusk_tunnel_repo_save (f->storage, bad, &error));
  assert_validation (error, "name", "port", "key_path", NULL);
  g_clear_error (&error);
  g_assert_cmpint (count_rows (f, "ssh_tunnels"), ==, 2);

  g_assert_true (tusk_tunnel_repo_delete (f->storage, agent->id, &error));
  g_assert_no_error (error);
  g_assert_null (tusk_tunnel_repo_load (f->storage, agent->id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (tusk_tunnel_repo_delete (f->storage, agent->id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);

  AsyncWait save = { 0 };
  tusk_tunnel_repo_save_async (f->storage, agent, NULL, async_done, &save);
  g_autoptr (GAsyncResult) saved = async_wait (&save);
  g_assert_true (tusk_tunnel_repo_save_finish (f->storage, saved, &error));
  AsyncWait del = { 0 };
  tusk_tunnel_repo_delete_async (f->storage, agent->id, NULL, async_done, &del);
  g_autoptr (GAsyncResult) deleted = async_wait (&del);
  g_assert_true (tusk_tunnel_repo_delete_finish (f->storage, deleted, &error));
  g_assert_no_error (error);
}

static void
test_tunnel_embedded_and_detached (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSshTunnelConfig) tunnel = make_tunnel ("jump");
  g_assert_true (tusk_tunnel_repo_save (f->storage, tunnel, &error));
  g_autoptr (TuskConnectionConfig) config = make_connection ("Behind");
  config->ssh_tunnel = tusk_ssh_tunnel_config_copy (tunnel);
  g_assert_true (tusk_connection_repo_save (f->storage, config, &error));
  g_assert_no_error (error);

  g_autoptr (TuskConnectionConfig) loaded
      = tusk_connection_repo_load (f->storage, config->id, &error);
  g_assert_nonnull (loaded->ssh_tunnel);
  g_assert_cmpstr (loaded->ssh_tunnel->id, ==, tunnel->id);
  g_assert_cmpstr (loaded->ssh_tunnel->name, ==, "jump");
  g_assert_cmpstr (loaded->ssh_tunnel->host, ==, "bastion.example.com");
  g_assert_cmpstr (loaded->ssh_tunnel->username, ==, "bob");
  g_assert_cmpint (loaded->ssh_tunnel->port, ==, 22);
  g_assert_cmpint (loaded->ssh_tunnel->auth_method, ==, TUSK_SSH_AUTH_AGENT);

  /* Deleting the tunnel detaches the connection, which keeps working. */
  g_assert_true (tusk_tunnel_repo_delete (f->storage, tunnel->id, &error));
  g_autoptr (TuskConnectionConfig) detached
      = tusk_connection_repo_load (f->storage, config->id, &error);
  g_assert_no_error (error);
  g_assert_null (detached->ssh_tunnel);
  g_autofree char *column = query_text (
      f, "SELECT ssh_tunnel_id FROM connections WHERE connection_id = '%s'",
      config->id);
  g_assert_null (column);
  g_assert_true (tusk_connection_repo_save (f->storage, detached, &error));
  g_assert_no_error (error);
}

/* ---- history ------------------------------------------------------------ */

static void
test_history_add_list (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) a = save_connection (f, "a");
  g_autoptr (TuskConnectionConfig) b = save_connection (f, "b");

  g_autoptr (TuskHistoryEntry) full
      = tusk_history_entry_new (a->id, "SELECT 1");
  full->execution_time_ms = 12;
  full->row_count = 1;
  g_assert_true (tusk_history_repo_add (f->storage, full, &error));
  g_autoptr (TuskHistoryEntry) failed
      = tusk_history_entry_new (b->id, "SELEC 2");
  failed->error_message = g_strdup ("syntax error at or near \"SELEC\"");
  g_assert_true (tusk_history_repo_add (f->storage, failed, &error));
  add_history (f, a->id, "SELECT 3", NULL);
  add_history (f, a->id, "SELECT old", "2020-01-01 00:00:00");
  tusk_storage_flush (f->storage);

  g_autoptr (GPtrArray) all
      = tusk_history_repo_list (f->storage, NULL, -1, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, ==, 4);
  /* Newest first: same second → id descending; the old one last. */
  TuskHistoryEntry *e0 = all->pdata[0], *e1 = all->pdata[1],
                   *e2 = all->pdata[2], *e3 = all->pdata[3];
  g_assert_cmpstr (e0->sql, ==, "SELECT 3");
  g_assert_cmpstr (e1->sql, ==, "SELEC 2");
  g_assert_cmpstr (e2->sql, ==, "SELECT 1");
  g_assert_cmpstr (e3->sql, ==, "SELECT old");
  g_assert_cmpint (e0->id, >, e1->id);
  g_assert_cmpint (e2->execution_time_ms, ==, 12);
  g_assert_cmpint (e2->row_count, ==, 1);
  g_assert_null (e2->error_message);
  g_assert_cmpstr (e2->connection_id, ==, a->id);
  g_assert_cmpint (e1->execution_time_ms, ==, -1);
  g_assert_cmpint (e1->row_count, ==, -1);
  g_assert_cmpstr (e1->error_message, ==, "syntax error at or near \"SELEC\"");
  g_assert_cmpstr (e3->executed_at, ==, "2020-01-01 00:00:00");
  g_assert_cmpuint (strlen (e0->executed_at), ==, 19);

  /* Per connection, limit and offset. */
  g_autoptr (GPtrArray) of_a
      = tusk_history_repo_list (f->storage, a->id, -1, 0, &error);
  g_assert_cmpuint (of_a->len, ==, 3);
  g_autoptr (GPtrArray) page
      = tusk_history_repo_list (f->storage, a->id, 1, 1, &error);
  g_assert_cmpuint (page->len, ==, 1);
  g_assert_cmpstr (((TuskHistoryEntry *)page->pdata[0])->sql, ==, "SELECT 1");
  g_autoptr (GPtrArray) past_end
      = tusk_history_repo_list (f->storage, NULL, 10, 4, &error);
  g_assert_cmpuint (past_end->len, ==, 0);
  g_autoptr (GPtrArray) two
      = tusk_history_repo_list (f->storage, NULL, 2, 0, &error);
  g_assert_cmpuint (two->len, ==, 2);

  g_assert_cmpint (tusk_history_repo_count (f->storage, NULL, &error), ==, 4);
  g_assert_cmpint (tusk_history_repo_count (f->storage, a->id, &error), ==, 3);
  g_assert_cmpint (tusk_history_repo_count (f->storage, b->id, &error), ==, 1);

  /* Copy is deep. */
  g_autoptr (TuskHistoryEntry) copy = tusk_history_entry_copy (e1);
  g_assert_true (copy->sql != e1->sql);
  g_assert_cmpstr (copy->error_message, ==, e1->error_message);
}

static void
test_history_validation (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) a = save_connection (f, "a");
  struct
  {
    const char *connection_id;
    const char *sql;
    gint64 time, rows;
    const char *executed_at;
    const char *field;
  } cases[] = {
    { a->id, "", -1, -1, NULL, "sql" },
    { a->id, " \n\t ", -1, -1, NULL, "sql" },
    { a->id, NULL, -1, -1, NULL, "sql" },
    { NULL, "SELECT 1", -1, -1, NULL, "connection_id" },
    { "", "SELECT 1", -1, -1, NULL, "connection_id" },
    { a->id, "SELECT 1", -2, -1, NULL, "execution_time_ms" },
    { a->id, "SELECT 1", -1, -5, NULL, "row_count" },
    { a->id, "SELECT 1", -1, -1, "yesterday", "executed_at" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskHistoryEntry) entry
          = tusk_history_entry_new (cases[i].connection_id, cases[i].sql);
      entry->execution_time_ms = cases[i].time;
      entry->row_count = cases[i].rows;
      entry->executed_at = g_strdup (cases[i].executed_at);
      g_assert_false (tusk_history_repo_add (f->storage, entry, &error));
      assert_validation (error, cases[i].field, NULL);
    }

  /* A connection that does not exist: async reports it; queued drops it. */
  g_autoptr (GError) error = NULL;
  g_autofree char *ghost = g_uuid_string_random ();
  g_autoptr (TuskHistoryEntry) entry
      = tusk_history_entry_new (ghost, "SELECT 1");
  AsyncWait add = { 0 };
  tusk_history_repo_add_async (f->storage, entry, NULL, async_done, &add);
  g_autoptr (GAsyncResult) result = async_wait (&add);
  g_assert_cmpint (tusk_history_repo_add_finish (f->storage, result, &error),
                   ==, -1);
  assert_validation (error, "connection_id", NULL);
  g_clear_error (&error);
  g_assert_true (tusk_history_repo_add (f->storage, entry, &error));
  tusk_storage_flush (f->storage);
  g_assert_cmpint (count_rows (f, "query_history"), ==, 0);

  /* And a good one through async returns its id. */
  g_autoptr (TuskHistoryEntry) good
      = tusk_history_entry_new (a->id, "SELECT 2");
  AsyncWait add2 = { 0 };
  tusk_history_repo_add_async (f->storage, good, NULL, async_done, &add2);
  g_autoptr (GAsyncResult) result2 = async_wait (&add2);
  gint64 id = tusk_history_repo_add_finish (f->storage, result2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  g_autofree char *stored = query_text (
      f,
      "SELECT sql_text FROM query_history WHERE history_id = %" G_GINT64_FORMAT,
      id);
  g_assert_cmpstr (stored, ==, "SELECT 2");

  /* A validation error through async arrives later, not inside the call. */
  g_autoptr (TuskHistoryEntry) empty = tusk_history_entry_new (a->id, "");
  AsyncWait add3 = { 0 };
  tusk_history_repo_add_async (f->storage, empty, NULL, async_done, &add3);
  g_assert_false (add3.done);
  g_autoptr (GAsyncResult) result3 = async_wait (&add3);
  g_assert_cmpint (tusk_history_repo_add_finish (f->storage, result3, &error),
                   ==, -1);
  assert_validation (error, "sql", NULL);
}

static void
test_history_search (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) a = save_connection (f, "a");
  g_autoptr (TuskConnectionConfig) b = save_connection (f, "b");
  add_history (f, a->id, "SELECT discount * 100 FROM orders", NULL);
  add_history (f, a->id, "SELECT '100%' AS full", NULL);
  add_history (f, a->id, "select user_id from users", NULL);
  add_history (f, a->id, "select userXid from users", NULL);
  add_history (f, b->id, "SELECT 'C:\\temp' AS path", NULL);
  add_history (f, b->id, "Select * From Users", NULL);
  tusk_storage_flush (f->storage);

  struct
  {
    const char *text;
    const char *connection_id;
    guint expected;
  } cases[] = {
    { "select", NULL, 6 },  /* case-insensitive */
    { "SELECT", a->id, 4 }, /* with a connection filter */
    { "USERS", NULL, 3 },
    { "users", b->id, 1 },
    { "100%", NULL, 1 }, /* % is literal */
    { "%", NULL, 1 },
    { "user_id", NULL, 1 }, /* _ is literal: not userXid */
    { "_", NULL, 1 },
    { "C:\\temp", NULL, 1 }, /* so is the escape character */
    { "\\", NULL, 1 },
    { "", NULL, 6 },
    { "nothing like this", NULL, 0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GPtrArray) found = tusk_history_repo_search (
          f->storage, cases[i].text, cases[i].connection_id, -1, 0, &error);
      g_assert_no_error (error);
      if (found->len != cases[i].expected)
        g_error ("search \"%s\": %u found, %u expected", cases[i].text,
                 found->len, cases[i].expected);
    }

  /* Newest first, with limit and offset. */
  g_autoptr (GPtrArray) page
      = tusk_history_repo_search (f->storage, "users", NULL, 2, 1, &error);
  g_assert_cmpuint (page->len, ==, 2);
  g_assert_cmpstr (((TuskHistoryEntry *)page->pdata[0])->sql, ==,
                   "select userXid from users");
  g_assert_cmpstr (((TuskHistoryEntry *)page->pdata[1])->sql, ==,
                   "select user_id from users");
}

static void
test_history_clear_cascade (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) a = save_connection (f, "a");
  g_autoptr (TuskConnectionConfig) b = save_connection (f, "b");
  g_autoptr (TuskConnectionConfig) c = save_connection (f, "c");
  for (int i = 0; i < 5; i++)
    {
      add_history (f, a->id, "SELECT a", NULL);
      add_history (f, b->id, "SELECT b", NULL);
      add_history (f, c->id, "SELECT c", NULL);
    }
  tusk_storage_flush (f->storage);

  g_assert_cmpint (tusk_history_repo_clear (f->storage, a->id, &error), ==, 5);
  g_assert_cmpint (tusk_history_repo_count (f->storage, a->id, &error), ==, 0);
  g_assert_cmpint (tusk_history_repo_count (f->storage, NULL, &error), ==, 10);

  /* Deleting a connection deletes its history (ON DELETE CASCADE). */
  g_assert_true (tusk_connection_repo_delete (f->storage, b->id, &error));
  g_assert_cmpint (tusk_history_repo_count (f->storage, b->id, &error), ==, 0);
  g_assert_cmpint (tusk_history_repo_count (f->storage, NULL, &error), ==, 5);

  g_assert_cmpint (tusk_history_repo_clear (f->storage, NULL, &error), ==, 5);
  g_assert_cmpint (tusk_history_repo_count (f->storage, NULL, &error), ==, 0);
  g_assert_no_error (error);
}

static void
test_history_prune (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) a = save_connection (f, "a");

  g_assert_cmpint (tusk_history_repo_get_limit (f->storage, &error), ==,
                   TUSK_HISTORY_DEFAULT_LIMIT);
  g_assert_false (tusk_history_repo_set_limit (f->storage, -1, &error));
  assert_validation (error, "limit", NULL);
  g_clear_error (&error);

  /* Automatic: with a limit of 150, 500 adds leave between 150 and
   * 150 + PRUNE_EVERY - 1, the newest. */
  g_assert_true (tusk_history_repo_set_limit (f->storage, 150, &error));
  g_assert_cmpint (tusk_history_repo_get_limit (f->storage, &error), ==, 150);
  for (int i = 0; i < 500; i++)
    {
      g_autofree char *sql = g_strdup_printf ("SELECT %d", i);
      add_history (f, a->id, sql, NULL);
    }
  tusk_storage_flush (f->storage);
  gint64 n = tusk_history_repo_count (f->storage, NULL, &error);
  g_assert_cmpint (n, >=, 150);
  g_assert_cmpint (n, <, 150 + TUSK_HISTORY_PRUNE_EVERY);
  g_autoptr (GPtrArray) newest
      = tusk_history_repo_list (f->storage, NULL, 1, 0, &error);
  g_assert_cmpstr (((TuskHistoryEntry *)newest->pdata[0])->sql, ==,
                   "SELECT 499");

  /* Explicit, by count: the newest stay. */
  g_assert_cmpint (tusk_history_repo_prune_by_count (f->storage, 10, &error),
                   ==, n - 10);
  g_autoptr (GPtrArray) kept
      = tusk_history_repo_list (f->storage, NULL, -1, 0, &error);
  g_assert_cmpuint (kept->len, ==, 10);
  g_assert_cmpstr (((TuskHistoryEntry *)kept->pdata[9])->sql, ==, "SELECT 490");

  /* Lowering the limit prunes at once; 0 means none. */
  g_assert_true (tusk_history_repo_set_limit (f->storage, 4, &error));
  g_assert_cmpint (tusk_history_repo_count (f->storage, NULL, &error), ==, 4);
  g_assert_true (tusk_history_repo_set_limit (f->storage, 0, &error));
  g_assert_cmpint (tusk_history_repo_get_limit (f->storage, &error), ==, 0);

  /* By age. */
  g_assert_cmpint (tusk_history_repo_clear (f->storage, NULL, &error), ==, 4);
  add_history (f, a->id, "SELECT ancient", "2001-01-01 00:00:00");
  add_history (f, a->id, "SELECT recent", NULL);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) month_ago = g_date_time_add_days (now, -31);
  g_autofree char *stamp = g_date_time_format (month_ago, "%Y-%m-%d %H:%M:%S");
  add_history (f, a->id, "SELECT a month ago", stamp);
  add_history (f, a->id, "SELECT now", NULL);
  tusk_storage_flush (f->storage);
  g_assert_cmpint (
      tusk_history_repo_prune_by_age (f->storage, 30 * G_TIME_SPAN_DAY, &error),
      ==, 2);
  g_assert_cmpint (tusk_history_repo_count (f->storage, NULL, &error), ==, 2);
  g_assert_cmpint (
      tusk_history_repo_prune_by_age (f->storage, 30 * G_TIME_SPAN_DAY, &error),
      ==, 0);
  g_assert_no_error (error);
}

/* ---- saved queries ------------------------------------------------------ */

static TuskSavedQuery *
create_query (Fixture *f, const char *name, const char *folder)
{
  g_autoptr (GError) error = NULL;
  TuskSavedQuery *query = tusk_saved_query_new (name, "SELECT 1");
  query->folder_path = g_strdup (folder);
  g_assert_true (tusk_saved_query_repo_create (f->storage, query, &error));
  g_assert_no_error (error);
  return query;
}

static void
test_saved_query_crud (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) conn = save_connection (f, "c");
  g_autoptr (TuskSavedQuery) query
      = tusk_saved_query_new ("Monthly revenue", "SELECT sum(x) FROM t");
  query->connection_id = g_strdup (conn->id);
  query->description = g_strdup ("For the board");
  query->folder_path = g_strdup ("reports/monthly");
  g_assert_true (tusk_saved_query_repo_create (f->storage, query, &error));
  g_assert_no_error (error);

  g_autoptr (TuskSavedQuery) loaded
      = tusk_saved_query_repo_load (f->storage, query->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (loaded->id, ==, query->id);
  g_assert_cmpstr (loaded->connection_id, ==, conn->id);
  g_assert_cmpstr (loaded->name, ==, "Monthly revenue");
  g_assert_cmpstr (loaded->description, ==, "For the board");
  g_assert_cmpstr (loaded->sql, ==, "SELECT sum(x) FROM t");
  g_assert_cmpstr (loaded->folder_path, ==, "reports/monthly");
  g_assert_nonnull (loaded->created_at);
  g_assert_cmpstr (loaded->created_at, ==, loaded->updated_at);

  /* Creating the same id again is refused. */
  g_assert_false (tusk_saved_query_repo_create (f->storage, query, &error));
  assert_validation (error, "id", NULL);
  g_clear_error (&error);

  /* Update: every field replaced; created_at kept, updated_at now. */
  exec_sql (f, "UPDATE saved_queries SET created_at = '2020-01-01 00:00:00', "
               "updated_at = '2020-01-01 00:00:00'");
  g_free (query->sql);
  query->sql = g_strdup ("SELECT 2");
  g_clear_pointer (&query->description, g_free);
  g_clear_pointer (&query->connection_id, g_free);
  g_assert_true (tusk_saved_query_repo_update (f->storage, query, &error));
  g_assert_no_error (error);
  g_autoptr (TuskSavedQuery) updated
      = tusk_saved_query_repo_load (f->storage, query->id, &error);
  g_assert_cmpstr (updated->sql, ==, "SELECT 2");
  g_assert_null (updated->description);
  g_assert_null (updated->connection_id);
  g_assert_cmpstr (updated->created_at, ==, "2020-01-01 00:00:00");
  g_assert_cmpstr (updated->updated_at, >, "2020-01-01 00:00:00");

  /* Missing ones. */
  g_autoptr (TuskSavedQuery) ghost = tusk_saved_query_new ("ghost", "");
  g_assert_false (tusk_saved_query_repo_update (f->storage, ghost, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (tusk_saved_query_repo_load (f->storage, ghost->id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (tusk_saved_query_repo_delete (f->storage, ghost->id, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (
      tusk_saved_query_repo_move (f->storage, ghost->id, "x", &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Move, to a folder and back to the top level. */
  g_assert_true (
      tusk_saved_query_repo_move (f->storage, query->id, "archive", &error));
  g_autoptr (TuskSavedQuery) moved
      = tusk_saved_query_repo_load (f->storage, query->id, &error);
  g_assert_cmpstr (moved->folder_path, ==, "archive");
  g_assert_true (
      tusk_saved_query_repo_move (f->storage, query->id, NULL, &error));
  g_autoptr (TuskSavedQuery) top
      = tusk_saved_query_repo_load (f->storage, query->id, &error);
  g_assert_null (top->folder_path);
  g_assert_false (
      tusk_saved_query_repo_move (f->storage, query->id, "a//b", &error));
  assert_validation (error, "folder_path", NULL);
  g_clear_error (&error);

  g_assert_true (tusk_saved_query_repo_delete (f->storage, query->id, &error));
  g_assert_no_error (error);
  g_assert_cmpint (count_rows (f, "saved_queries"), ==, 0);
}

static void
test_saved_query_validation (Fixture *f, gconstpointer data)
{
  (void)data;
  for (int i = 0; i < 9; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskSavedQuery) query = tusk_saved_query_new ("q", "SELECT 1");
      const char *field = NULL;
      switch (i)
        {
          case 0:
            g_free (query->name);
            query->name = g_strdup ("");
            field = "name";
            break;
          case 1:
            g_free (query->name);
            query->name = g_strnfill (256, 'q');
            field = "name";
            break;
          case 2:
            g_clear_pointer (&query->sql, g_free);
            field = "sql";
            break;
          case 3:
            g_free (query->id);
            query->id = g_strdup ("not-a-uuid");
            field = "id";
            break;
          case 4:
            query->folder_path = g_strdup ("/abs");
            field = "folder_path";
            break;
          case 5:
            query->folder_path = g_strdup ("a//b");
            field = "folder_path";
            break;
          case 6:
            query->folder_path = g_strdup ("trailing/");
            field = "folder_path";
            break;
          case 7:
            query->folder_path = g_strdup ("");
            field = "folder_path";
            break;
          default:
            query->connection_id = g_uuid_string_random ();
            field = "connection_id";
            break;
        }
      g_assert_false (tusk_saved_query_repo_create (f->storage, query, &error));
      assert_validation (error, field, NULL);
    }
  g_assert_cmpint (count_rows (f, "saved_queries"), ==, 0);

  /* 255 characters pass; several problems come in one message. */
  g_autoptr (GError) error = NULL;
  g_autofree char *long_name = g_strnfill (255, 'q');
  g_autoptr (TuskSavedQuery) ok = tusk_saved_query_new (long_name, "");
  g_assert_true (tusk_saved_query_repo_create (f->storage, ok, &error));
  g_assert_no_error (error);
  g_autoptr (TuskSavedQuery) bad = tusk_saved_query_new ("", NULL);
  bad->folder_path = g_strdup ("/");
  g_assert_false (tusk_saved_query_validate (bad, &error));
  assert_validation (error, "name", "sql", "folder_path", NULL);
}

static void
test_saved_query_folders (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSavedQuery) q1 = create_query (f, "b-query", "a/b/c");
  g_autoptr (TuskSavedQuery) q2 = create_query (f, "top", NULL);
  g_autoptr (TuskSavedQuery) q3 = create_query (f, "space", "a b");
  g_autoptr (TuskSavedQuery) q4 = create_query (f, "Zed", "a/x");
  g_autoptr (TuskSavedQuery) q5 = create_query (f, "alpha", "a/x");
  g_autoptr (TuskSavedQuery) q6 = create_query (f, "last", "b");

  g_auto (GStrv) folders
      = tusk_saved_query_repo_list_folders (f->storage, &error);
  g_assert_no_error (error);
  const char *const expected[]
      = { "a", "a/b", "a/b/c", "a/x", "a b", "b", NULL };
  g_assert_cmpstrv (folders, expected);

  g_autoptr (GPtrArray) all = tusk_saved_query_repo_list (f->storage, &error);
  g_assert_cmpuint (all->len, ==, 6);
  const char *order[] = { "top", "b-query", "alpha", "Zed", "space", "last" };
  for (guint i = 0; i < all->len; i++)
    g_assert_cmpstr (((TuskSavedQuery *)all->pdata[i])->name, ==, order[i]);

  g_autoptr (GPtrArray) in_x
      = tusk_saved_query_repo_list_folder (f->storage, "a/x", &error);
  g_assert_cmpuint (in_x->len, ==, 2);
  g_assert_cmpstr (((TuskSavedQuery *)in_x->pdata[0])->name, ==, "alpha");
  g_autoptr (GPtrArray) in_a
      = tusk_saved_query_repo_list_folder (f->storage, "a", &error);
  g_assert_cmpuint (in_a->len, ==, 0); /* not recursive */
  g_autoptr (GPtrArray) top
      = tusk_saved_query_repo_list_folder (f->storage, NULL, &error);
  g_assert_cmpuint (top->len, ==, 1);
  g_assert_cmpstr (((TuskSavedQuery *)top->pdata[0])->name, ==, "top");

  /* Moving the last query out of a folder makes the folder disappear. */
  g_assert_true (tusk_saved_query_repo_move (f->storage, q1->id, "b", &error));
  g_auto (GStrv) after
      = tusk_saved_query_repo_list_folders (f->storage, &error);
  const char *const expected_after[] = { "a", "a/x", "a b", "b", NULL };
  g_assert_cmpstrv (after, expected_after);
  (void)q2, (void)q3, (void)q4, (void)q5, (void)q6;
}

static void
test_saved_query_detached_and_async (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) conn = save_connection (f, "c");
  g_autoptr (TuskSavedQuery) query = tusk_saved_query_new ("q", "SELECT 1");
  query->connection_id = g_strdup (conn->id);

  AsyncWait create = { 0 };
  tusk_saved_query_repo_create_async (f->storage, query, NULL, async_done,
                                      &create);
  g_autoptr (GAsyncResult) created = async_wait (&create);
  g_assert_true (
      tusk_saved_query_repo_create_finish (f->storage, created, &error));
  g_assert_no_error (error);

  g_free (query->name);
  query->name = g_strdup ("renamed");
  AsyncWait update = { 0 };
  tusk_saved_query_repo_update_async (f->storage, query, NULL, async_done,
                                      &update);
  g_autoptr (GAsyncResult) updated = async_wait (&update);
  g_assert_true (
      tusk_saved_query_repo_update_finish (f->storage, updated, &error));

  /* Deleting the connection keeps the query, detached. */
  g_assert_true (tusk_connection_repo_delete (f->storage, conn->id, &error));
  g_autoptr (TuskSavedQuery) loaded
      = tusk_saved_query_repo_load (f->storage, query->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (loaded->name, ==, "renamed");
  g_assert_null (loaded->connection_id);

  AsyncWait del = { 0 };
  tusk_saved_query_repo_delete_async (f->storage, query->id, NULL, async_done,
                                      &del);
  g_autoptr (GAsyncResult) deleted = async_wait (&del);
  g_assert_true (
      tusk_saved_query_repo_delete_finish (f->storage, deleted, &error));
  g_assert_cmpint (count_rows (f, "saved_queries"), ==, 0);

  g_auto (GStrv) folders
      = tusk_saved_query_repo_list_folders (f->storage, &error);
  g_assert_nonnull (folders);
  g_assert_null (folders[0]);
}

/* ---- UI state ----------------------------------------------------------- */

static void
test_ui_state (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;

  g_autofree char *missing
      = tusk_ui_state_repo_get (f->storage, "window.main", &error);
  g_assert_no_error (error);
  g_assert_null (missing);

  const char *value = "{ \"width\": 1200, \"tabs\": [\"a\", \"b\"] }";
  g_assert_true (
      tusk_ui_state_repo_set (f->storage, "window.main", value, &error));
  g_assert_no_error (error);
  g_autofree char *got
      = tusk_ui_state_repo_get (f->storage, "window.main", &error);
  g_assert_cmpstr (got, ==, value); /* stored exactly as given */

  g_assert_true (
      tusk_ui_state_repo_set (f->storage, "window.main", "[]", &error));
  g_autofree char *replaced
      = tusk_ui_state_repo_get (f->storage, "window.main", &error);
  g_assert_cmpstr (replaced, ==, "[]");

  /* Scalars are JSON values too. */
  const char *scalars[] = { "42", "\"text\"", "null", "true", "-1.5" };
  for (guint i = 0; i < G_N_ELEMENTS (scalars); i++)
    {
      g_assert_true (
          tusk_ui_state_repo_set (f->storage, "scalar", scalars[i], &error));
      g_assert_no_error (error);
    }

  /* Invalid JSON is refused and nothing changes. */
  const char *invalid[] = { "{",       "",        "{'a': 1}", "hello", "[1,]",
                            "{\"a\"}", "[1] [2]", "01",       "/*c*/1" };
  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_assert_false (tusk_ui_state_repo_set (f->storage, "window.main",
                                              invalid[i], &error));
      assert_validation (error, "value", NULL);
      g_clear_error (&error);
    }
  g_assert_false (tusk_ui_state_repo_set (f->storage, "", "1", &error));
  assert_validation (error, "key", NULL);
  g_clear_error (&error);
  g_autofree char *unchanged
      = tusk_ui_state_repo_get (f->storage, "window.main", &error);
  g_assert_cmpstr (unchanged, ==, "[]");
  g_assert_cmpint (count_rows (f, "ui_state"), ==, 2);

  /* Async set, with a validation error through _finish. */
  AsyncWait set = { 0 };
  tusk_ui_state_repo_set_async (f->storage, "async", "{\"x\":1}", NULL,
                                async_done, &set);
  g_autoptr (GAsyncResult) set_result = async_wait (&set);
  g_assert_true (
      tusk_ui_state_repo_set_finish (f->storage, set_result, &error));
  AsyncWait bad = { 0 };
  tusk_ui_state_repo_set_async (f->storage, "async", "{x}", NULL, async_done,
                                &bad);
  g_autoptr (GAsyncResult) bad_result = async_wait (&bad);
  g_assert_false (
      tusk_ui_state_repo_set_finish (f->storage, bad_result, &error));
  assert_validation (error, "value", NULL);
  g_clear_error (&error);
  g_autofree char *async_value
      = tusk_ui_state_repo_get (f->storage, "async", &error);
  g_assert_cmpstr (async_value, ==, "{\"x\":1}");

  /* Delete, twice: the second is no error. */
  g_assert_true (tusk_ui_state_repo_delete (f->storage, "window.main", &error));
  g_assert_true (tusk_ui_state_repo_delete (f->storage, "window.main", &error));
  g_assert_no_error (error);
  g_autofree char *gone
      = tusk_ui_state_repo_get (f->storage, "window.main", &error);
  g_assert_null (gone);
  g_assert_no_error (error);
}

/* ---- no password in the file -------------------------------------------- */

static gboolean
file_contains (const char *path, const char *needle)
{
  g_autofree char *bytes = NULL;
  gsize length = 0;
  if (!g_file_get_contents (path, &bytes, &length, NULL))
    return FALSE;
  return memmem (bytes, length, needle, strlen (needle)) != NULL;
}

static void
test_no_password_stored (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  const char *name_marker = "NAME-MARKER-5d1c0e";
  const char *password_marker = "PW-MARKER-9a7f3b";

  /* A front end hands over a URI with a password; the config keeps none
   * and no repository function takes one. */
  g_autofree char *uri = g_strdup_printf (
      "postgresql://alice:%s@db.example.com:5432/app?sslmode=require",
      password_marker);
  g_autofree char *password = NULL;
  g_autoptr (TuskConnectionConfig) config
      = tusk_connection_config_new_from_string (uri, &password, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, password_marker);
  config->name = g_strdup (name_marker);
  g_assert_true (tusk_connection_repo_save (f->storage, config, &error));
  g_assert_no_error (error);
  g_autoptr (TuskSshTunnelConfig) tunnel = make_tunnel ("t");
  tunnel->auth_method = TUSK_SSH_AUTH_PASSWORD;
  g_assert_true (tusk_tunnel_repo_save (f->storage, tunnel, &error));
  add_history (f, config->id, "SELECT 1", NULL);
  tusk_storage_flush (f->storage);

  /* Look at the bytes: the database and its WAL before a checkpoint. */
  g_autofree char *db_path = g_strdup (tusk_storage_get_path (f->storage));
  g_autofree char *wal_path = g_strconcat (db_path, "-wal", NULL);
  gboolean name_seen = file_contains (db_path, name_marker)
                       || file_contains (wal_path, name_marker);
  g_assert_true (name_seen); /* the grep works */
  g_assert_false (file_contains (db_path, password_marker));
  g_assert_false (file_contains (wal_path, password_marker));

  /* And after closing (checkpointed into the main file). */
  tusk_storage_close (f->storage);
  f->storage = NULL;
  g_assert_true (file_contains (db_path, name_marker)
                 || file_contains (wal_path, name_marker));
  g_assert_false (file_contains (db_path, password_marker));
  g_assert_false (file_contains (wal_path, password_marker));
}

/* ---- concurrency -------------------------------------------------------- */

#define N_THREADS    8
#define N_PER_THREAD 25

typedef struct
{
  Fixture *f;
  int index;
} Worker;

static gpointer
worker_main (gpointer data)
{
  Worker *worker = data;
  TuskStorage *storage = worker->f->storage;
  g_autoptr (GError) error = NULL;

  for (int i = 0; i < N_PER_THREAD; i++)
    {
      g_autofree char *name
          = g_strdup_printf ("thread %d connection %d", worker->index, i);
      g_autoptr (TuskConnectionConfig) config = make_connection (name);
      g_assert_true (tusk_connection_repo_save (storage, config, &error));
      g_assert_no_error (error);
      for (int j = 0; j < 4; j++)
        {
          g_autoptr (TuskHistoryEntry) entry
              = tusk_history_entry_new (config->id, "SELECT now()");
          g_assert_true (tusk_history_repo_add (storage, entry, &error));
        }
      g_autoptr (TuskSavedQuery) query
          = tusk_saved_query_new (name, "SELECT 1");
      query->connection_id = g_strdup (config->id);
      query->folder_path = g_strdup_printf ("thread-%d", worker->index);
      g_assert_true (tusk_saved_query_repo_create (storage, query, &error));
      g_autofree char *key = g_strdup_printf ("t%d.%d", worker->index, i);
      g_assert_true (
          tusk_ui_state_repo_set (storage, key, "{\"n\": 1}", &error));
      g_assert_true (tusk_connection_repo_touch (storage, config->id, &error));
      /* Reads on this thread's own connection meanwhile. */
      g_autoptr (TuskConnectionConfig) loaded
          = tusk_connection_repo_load (storage, config->id, &error);
      g_assert_no_error (error);
      g_assert_nonnull (loaded->last_connected_at);
    }
  g_autoptr (GPtrArray) all = tusk_connection_repo_load_all (storage, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (all->len, >=, N_PER_THREAD);
  return NULL;
}

static void
test_concurrent_writers (Fixture *f, gconstpointer data)
{
  (void)data;
  GThread *threads[N_THREADS];
  Worker workers[N_THREADS];

  for (int i = 0; i < N_THREADS; i++)
    {
      workers[i] = (Worker){ f, i };
      threads[i] = g_thread_new ("writer", worker_main, &workers[i]);
    }
  for (int i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);
  tusk_storage_flush (f->storage);

  g_assert_cmpint (count_rows (f, "connections"), ==, N_THREADS * N_PER_THREAD);
  g_assert_cmpint (count_rows (f, "query_history"), ==,
                   N_THREADS * N_PER_THREAD * 4);
  g_assert_cmpint (count_rows (f, "saved_queries"), ==,
                   N_THREADS * N_PER_THREAD);
  g_assert_cmpint (count_rows (f, "ui_state"), ==, N_THREADS * N_PER_THREAD);
  g_autofree char *check = query_text (f, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");
  g_autofree char *fk = query_text (f, "PRAGMA foreign_key_check");
  g_assert_null (fk);

  g_autoptr (GError) error = NULL;
  g_auto (GStrv) folders
      = tusk_saved_query_repo_list_folders (f->storage, &error);
  g_assert_cmpuint (g_strv_length (folders), ==, N_THREADS);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                        \
  g_test_add ("/tusk/repos/" path, Fixture, NULL, fixture_set_up, func,        \
              fixture_tear_down)

  ADD ("connections/save-load", test_connection_save_load);
  ADD ("connections/not-found", test_connection_not_found);
  ADD ("connections/validation", test_connection_validation);
  ADD ("connections/order", test_connection_order);
  ADD ("connections/find-delete", test_connection_find_delete);
  ADD ("connections/async", test_connection_async);
  ADD ("tunnels/crud", test_tunnel_crud);
  ADD ("tunnels/embedded-and-detached", test_tunnel_embedded_and_detached);
  ADD ("history/add-list", test_history_add_list);
  ADD ("history/validation", test_history_validation);
  ADD ("history/search", test_history_search);
  ADD ("history/clear-cascade", test_history_clear_cascade);
  ADD ("history/prune", test_history_prune);
  ADD ("saved-queries/crud", test_saved_query_crud);
  ADD ("saved-queries/validation", test_saved_query_validation);
  ADD ("saved-queries/folders", test_saved_query_folders);
  ADD ("saved-queries/detached-and-async", test_saved_query_detached_and_async);
  ADD ("ui-state/all", test_ui_state);
  ADD ("no-password-stored", test_no_password_stored);
  ADD ("concurrent-writers", test_concurrent_writers);

  return g_test_run ();
}
