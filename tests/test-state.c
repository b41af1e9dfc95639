/* test-state.c: TuskState against the real PostgreSQL server and the real
 * Secret Service of the test environment: saving with passwords, connecting
 * through the keychain, status notifications, disconnecting, deleting. */
#include <string.h>

#include <glib/gstdio.h>

#include "tusk.h"
#include "tusk-pool-private.h"
#include "tusk-storage-private.h"
#include "tusk-test.h"

typedef struct
{
  char *root;
  char *data_dir;
  TuskState *state;
  GPtrArray *seen; /* "id:state" strings, in delivery order */
  GThread *main_thread;
} Fixture;

static void
on_status (TuskState *state, const TuskConnectionStatus *status,
           gpointer user_data)
{
  Fixture *f = user_data;
  g_assert_true (state == f->state);
  /* Watchers run on the state's main context, i.e. this thread. */
  g_assert_true (g_thread_self () == f->main_thread);
  g_ptr_array_add (f->seen, g_strdup_printf ("%s:%s", status->connection_id,
                                             tusk_connection_state_to_string (
                                                 status->state)));
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-state-XXXXXX", NULL);
  f->data_dir = g_build_filename (f->root, "data", NULL);
  g_setenv ("TUSK_LOG", "warn", TRUE);
  g_autoptr (GError) error = NULL;
  f->state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  f->seen = g_ptr_array_new_with_free_func (g_free);
  f->main_thread = g_thread_self ();
  tusk_state_add_status_watch (f->state, on_status, f, NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_state_free (f->state);
  g_ptr_array_unref (f->seen);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", f->root);
  g_assert_cmpint (system (cmd), ==, 0);
  g_free (f->data_dir);
  g_free (f->root);
}

/* A saved-connection config for the password role of the test server. */
static TuskConnectionConfig *
test_config (const char *name)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup (name);
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  return config;
}

typedef struct
{
  Fixture *f;
  guint n;
} SeenAtLeast;

static gboolean
seen_at_least (gpointer data)
{
  SeenAtLeast *want = data;
  return want->f->seen->len >= want->n;
}

/* Iterates the main context until @n notifications have arrived. */
static void
wait_for_notifications (Fixture *f, guint n)
{
  SeenAtLeast want = { f, n };
  tusk_test_wait_until (seen_at_least, &want, 10000);
}

static gboolean
schema_loaded (gpointer schema)
{
  g_autoptr (TuskSchemaSnapshot) snapshot
      = tusk_schema_cache_dup_snapshot (schema);
  return snapshot != NULL;
}

static gboolean
error_arrived (gpointer error)
{
  return *(GError **)error != NULL;
}

static gboolean
file_contains (const char *path, const char *needle)
{
  g_autofree char *bytes = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &bytes, &len, NULL))
    return FALSE;
  return memmem (bytes, len, needle, strlen (needle)) != NULL;
}

static void
test_new (Fixture *f, gconstpointer data)
{
  (void)data;
  g_assert_cmpstr (tusk_state_get_data_dir (f->state), ==, f->data_dir);
  g_autofree char *db = g_build_filename (f->data_dir, "tusk.db", NULL);
  g_autofree char *logs = g_build_filename (f->data_dir, "logs", NULL);
  g_assert_true (g_file_test (logs, G_FILE_TEST_IS_DIR));

  /* The storage opens when first needed, once. */
  g_assert_null (tusk_state_get_storage (f->state));
  g_assert_false (g_file_test (db, G_FILE_TEST_EXISTS));
  TuskStorage *storage = tusk_test_open_storage (f->state);
  g_assert_true (g_file_test (db, G_FILE_TEST_IS_REGULAR));
  g_assert_false (tusk_storage_was_reset (storage));
  g_assert_true (tusk_test_open_storage (f->state) == storage);
  g_assert_true (tusk_state_get_storage (f->state) == storage);

  g_assert_true (
      tusk_credentials_is_available (tusk_state_get_credentials (f->state)));

  /* Nothing connected yet. */
  g_autoptr (GPtrArray) list = tusk_state_list_connections (f->state);
  g_assert_cmpuint (list->len, ==, 0);
  g_autoptr (TuskConnectionStatus) status
      = tusk_state_get_status (f->state, "nope");
  g_assert_cmpint (status->state, ==, TUSK_CONNECTION_DISCONNECTED);
}

static void
test_unusable_data_dir (void)
{
  g_autofree char *root = g_dir_make_tmp ("tusk-state-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (root, "file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_autofree char *under = g_build_filename (file, "data", NULL);

  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_state_new (under, &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, under));
  g_unlink (file);
  g_rmdir (root);
}

static void
test_saved_connection_through_keychain (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("state test");
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  g_autoptr (GError) error = NULL;

  g_assert_true (tusk_state_save_connection_sync (f->state, config, password,
                                                  NULL, &error));
  g_assert_no_error (error);
  TuskCredentials *credentials = tusk_state_get_credentials (f->state);
  g_assert_true (tusk_credentials_has_sync (
      credentials, TUSK_CREDENTIAL_KIND_DB, config->id, NULL, &error));

  /* Connect by id: the password comes from the keychain. */
  g_unsetenv ("PGPASSWORD");
  TuskPool *pool = tusk_state_connect_sync (f->state, config->id, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pool);

  TuskPoolConn *conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  PGresult *res = PQexec (tusk_pool_conn_get_pg (conn), "SELECT current_user");
  g_assert_cmpstr (PQgetvalue (res, 0, 0), ==, config->username);
  PQclear (res);
  tusk_pool_release (conn);

  /* The same id connects to the same pool. */
  TuskPool *again
      = tusk_state_connect_sync (f->state, config->id, NULL, &error);
  g_assert_true (again == pool);
  tusk_pool_unref (again);

  g_autoptr (GPtrArray) list = tusk_state_list_connections (f->state);
  g_assert_cmpuint (list->len, ==, 1);
  TuskConnectionStatus *status = list->pdata[0];
  g_assert_cmpstr (status->connection_id, ==, config->id);
  g_assert_cmpint (status->state, ==, TUSK_CONNECTION_CONNECTED);
  g_assert_cmpuint (status->pool.size, >=, 1);
  g_assert_cmpuint (status->pool.max_size, ==, 4);

  /* Connecting recorded the time (queued to the writer). */
  tusk_storage_flush (tusk_test_open_storage (f->state));
  g_autoptr (TuskConnectionConfig) loaded = tusk_connection_repo_load (
      tusk_test_open_storage (f->state), config->id, &error);
  g_assert_nonnull (loaded->last_connected_at);

  wait_for_notifications (f, 2);
  g_autofree char *connecting = g_strdup_printf ("%s:connecting", config->id);
  g_autofree char *connected = g_strdup_printf ("%s:connected", config->id);
  g_assert_cmpstr (f->seen->pdata[0], ==, connecting);
  g_assert_cmpstr (f->seen->pdata[1], ==, connected);

  /* Disconnect closes the pool and says so. */
  g_assert_true (tusk_state_disconnect (f->state, config->id));
  g_assert_false (tusk_state_disconnect (f->state, config->id));
  g_assert_true (tusk_pool_is_closed (pool));
  g_assert_null (tusk_state_get_pool (f->state, config->id));
  wait_for_notifications (f, 3);
  g_autofree char *gone = g_strdup_printf ("%s:disconnected", config->id);
  g_assert_cmpstr (f->seen->pdata[2], ==, gone);
  tusk_pool_unref (pool);

  /* No password reached the data directory. */
  tusk_storage_flush (tusk_test_open_storage (f->state));
  g_autofree char *db = g_build_filename (f->data_dir, "tusk.db", NULL);
  g_autofree char *wal = g_build_filename (f->data_dir, "tusk.db-wal", NULL);
  g_assert_true (file_contains (db, "state test")
                 || file_contains (wal, "state test"));
  g_assert_false (file_contains (db, password));
  g_assert_false (file_contains (wal, password));

  /* Deleting the connection deletes its password. */
  g_assert_true (
      tusk_state_delete_connection_sync (f->state, config->id, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (tusk_credentials_has_sync (
      credentials, TUSK_CREDENTIAL_KIND_DB, config->id, NULL, &error));
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) deleted = tusk_connection_repo_load (
      tusk_test_open_storage (f->state), config->id, &error);
  g_assert_null (deleted);
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
}

static void
test_wrong_password_is_an_error_status (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("wrong");
  g_autoptr (GError) error = NULL;
  g_assert_true (tusk_state_save_connection_sync (
      f->state, config, "not-the-password", NULL, &error));

  g_assert_null (tusk_state_connect_sync (f->state, config->id, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_AUTHENTICATION);

  g_autoptr (TuskConnectionStatus) status
      = tusk_state_get_status (f->state, config->id);
  g_assert_cmpint (status->state, ==, TUSK_CONNECTION_ERROR);
  g_assert_nonnull (strstr (status->error_message, "password"));
  g_assert_true (status->recoverable);
  g_assert_null (strstr (status->error_message, "not-the-password"));
  wait_for_notifications (f, 2);
}

static void
test_libpq_finds_the_password (Fixture *f, gconstpointer data)
{
  (void)data;
  /* No password in the keychain: PGPASSWORD still works, as in psql. */
  g_autoptr (TuskConnectionConfig) config = test_config ("from env");
  g_autoptr (GError) error = NULL;
  g_assert_true (
      tusk_state_save_connection_sync (f->state, config, NULL, NULL, &error));
  g_setenv ("PGPASSWORD", tusk_test_env ("TUSK_TEST_PGPASSWORD"), TRUE);
  TuskPool *pool = tusk_state_connect_sync (f->state, config->id, NULL, &error);
  g_unsetenv ("PGPASSWORD");
  g_assert_no_error (error);
  tusk_pool_unref (pool);
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  Fixture *f = user_data;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_state_connect_finish (f->state, result, &error);
  g_assert_no_error (error);
  g_ptr_array_add (f->seen, g_strdup ("callback"));
  tusk_pool_unref (pool);
}

static void
test_connect_async (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("async");
  g_autoptr (GError) error = NULL;
  g_assert_true (tusk_state_save_connection_sync (
      f->state, config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, &error));

  tusk_state_connect_async (f->state, config->id, NULL, on_connected, f);
  /* Never delivered from inside the call. */
  g_assert_cmpuint (f->seen->len, ==, 0);
  wait_for_notifications (f, 3);
  gboolean called = FALSE;
  for (guint i = 0; i < f->seen->len; i++)
    called |= g_str_equal (f->seen->pdata[i], "callback");
  g_assert_true (called);
}

static void
test_adhoc_config (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("ad hoc");
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_state_connect_config_sync (
      f->state, config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pool);
  g_assert_true (tusk_state_get_pool (f->state, config->id) == pool);
  tusk_pool_unref (pool); /* the one get_pool gave */
  tusk_pool_unref (pool);
  /* Freeing the state with a pool open is clean (tear-down). */
}

static void
test_tunnel_secret_goes_with_the_tunnel (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSshTunnelConfig) tunnel = tusk_ssh_tunnel_config_new ();
  tunnel->name = g_strdup ("bastion");
  tunnel->host = g_strdup ("127.0.0.1");
  tunnel->username = g_strdup ("tusk-ssh");
  tunnel->auth_method = TUSK_SSH_AUTH_PASSWORD;
  g_autoptr (GError) error = NULL;
  TuskCredentials *credentials = tusk_state_get_credentials (f->state);

  g_assert_true (tusk_state_save_tunnel_sync (f->state, tunnel, "ssh secret",
                                              NULL, &error));
  g_assert_no_error (error);
  g_assert_true (tusk_credentials_has_sync (
      credentials, TUSK_CREDENTIAL_KIND_SSH, tunnel->id, NULL, &error));
  g_assert_true (
      tusk_state_delete_tunnel_sync (f->state, tunnel->id, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (tusk_credentials_has_sync (
      credentials, TUSK_CREDENTIAL_KIND_SSH, tunnel->id, NULL, &error));
}

static void
test_schema_cache_follows_the_connection (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("schema");
  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_state_dup_schema_cache (f->state, config->id));
  TuskPool *pool = tusk_state_connect_config_sync (
      f->state, config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, &error);
  g_assert_no_error (error);
  tusk_pool_unref (pool);

  /* The cache exists from the connect on, empty: nothing loads the
   * catalog until a front end asks. */
  g_autoptr (TuskSchemaCache) schema
      = tusk_state_dup_schema_cache (f->state, config->id);
  g_assert_nonnull (schema);
  wait_for_notifications (f, 2);
  g_assert_null (tusk_schema_cache_dup_snapshot (schema));
  tusk_schema_cache_ensure_async (schema, tusk_state_get_runtime (f->state),
                                  NULL, NULL, NULL);
  tusk_test_wait_until (schema_loaded, schema, 20000);
  TuskSchemaSnapshot *snapshot = tusk_schema_cache_dup_snapshot (schema);
  g_assert_cmpstr (tusk_schema_snapshot_get_database (snapshot), ==,
                   config->database);
  tusk_schema_snapshot_unref (snapshot);

  tusk_state_disconnect (f->state, config->id);
  g_assert_null (tusk_state_dup_schema_cache (f->state, config->id));
}

static void
on_query_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  GError **out = user_data;
  TuskQueryResult *rows = tusk_query_execute_finish (result, out);
  g_assert_null (rows);
  g_assert_nonnull (*out);
}

static void
test_disconnect_cancels_queries_and_ddl_invalidates (Fixture *f,
                                                     gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("queries");
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_state_connect_config_sync (
      f->state, config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, &error);
  g_assert_no_error (error);

  /* DDL through Tusk marks the connection's schema cache stale. */
  g_autoptr (TuskSchemaCache) schema
      = tusk_state_dup_schema_cache (f->state, config->id);
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.registry = tusk_state_get_query_registry (f->state);
  options.schema = schema;
  tusk_schema_cache_ensure_async (schema, tusk_state_get_runtime (f->state),
                                  NULL, NULL, NULL);
  tusk_test_wait_until (schema_loaded, schema, 20000);
  g_assert_false (tusk_schema_cache_is_stale (schema));
  TuskQueryResult *created = tusk_query_execute_sync (
      pool, "CREATE TEMP TABLE state_ddl (x int)", &options, NULL, &error);
  g_assert_no_error (error);
  tusk_query_result_free (created);
  g_assert_true (tusk_schema_cache_is_stale (schema));

  /* Disconnecting cancels what runs on the connection. */
  GError *query_error = NULL;
  TuskQueryHandle *handle = tusk_query_execute_async (
      pool, tusk_state_get_runtime (f->state), "SELECT pg_sleep(30)", &options,
      NULL, on_query_done, &query_error);
  g_usleep (200 * 1000);
  tusk_state_disconnect (f->state, config->id);
  tusk_test_wait_until (error_arrived, &query_error, 10000);
  tusk_assert_error (query_error, TUSK_ERROR_QUERY_CANCELLED);
  g_error_free (query_error);
  tusk_query_handle_unref (handle);
  tusk_pool_unref (pool);
}

static void
test_invalid_config_stores_nothing (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ("");
  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_state_save_connection_sync (f->state, config, "secret",
                                                   NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_clear_error (&error);
  g_assert_false (tusk_credentials_has_sync (
      tusk_state_get_credentials (f->state), TUSK_CREDENTIAL_KIND_DB,
      config->id, NULL, &error));
}

/* Returns TRUE if any file below @dir contains @needle. */
static gboolean
tree_contains (const char *dir, const char *needle)
{
  g_autoptr (GDir) handle = g_dir_open (dir, 0, NULL);
  const char *name;
  while (handle && (name = g_dir_read_name (handle)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR) ? tree_contains (path, needle)
                                                 : file_contains (path, needle))
        return TRUE;
    }
  return FALSE;
}

static void
test_no_password_on_disk_at_trace (void)
{
  /* A whole session with passwords, logging everything. */
  g_autofree char *root = g_dir_make_tmp ("tusk-state-XXXXXX", NULL);
  g_setenv ("TUSK_LOG", "trace", TRUE);
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (root, &error);
  g_assert_no_error (error);

  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  g_autoptr (TuskConnectionConfig) config = test_config ("trace session");
  g_assert_true (
      tusk_state_save_connection_sync (state, config, password, NULL, &error));
  TuskPool *pool = tusk_state_connect_sync (state, config->id, NULL, &error);
  g_assert_no_error (error);
  tusk_pool_unref (pool);
  g_autofree char *uri = g_strdup_printf (
      "postgresql://%s:%s@%s:%d/%s", config->username, password, config->host,
      config->port, config->database);
  g_autoptr (TuskConnectionConfig) parsed = NULL;
  g_autofree char *parsed_password = NULL;
  parsed
      = tusk_connection_config_new_from_string (uri, &parsed_password, &error);
  g_assert_no_error (error);
  parsed->name = g_strdup ("parsed");
  tusk_info ("connecting with %s", uri); /* redacted by the logger */
  tusk_state_disconnect (state, config->id);
  TuskPool *adhoc = tusk_state_connect_config_sync (
      state, parsed, parsed_password, NULL, &error);
  g_assert_no_error (error);
  tusk_pool_unref (adhoc);
  tusk_state_free (state); /* flushes the logs and the storage */
  g_setenv ("TUSK_LOG", "warn", TRUE);

  g_assert_true (tree_contains (root, "trace session"));
  g_assert_false (tree_contains (root, password));

  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", root);
  g_assert_cmpint (system (cmd), ==, 0);
}

#define ADD(path, func)                                                        \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/tusk/state/new", test_new);
  g_test_add_func ("/tusk/state/unusable-data-dir", test_unusable_data_dir);
  ADD ("/tusk/state/saved-connection-through-keychain",
       test_saved_connection_through_keychain);
  ADD ("/tusk/state/wrong-password", test_wrong_password_is_an_error_status);
  ADD ("/tusk/state/libpq-finds-the-password", test_libpq_finds_the_password);
  ADD ("/tusk/state/connect-async", test_connect_async);
  ADD ("/tusk/state/adhoc-config", test_adhoc_config);
  ADD ("/tusk/state/tunnel-secret", test_tunnel_secret_goes_with_the_tunnel);
  ADD ("/tusk/state/invalid-config", test_invalid_config_stores_nothing);
  ADD ("/tusk/state/schema-cache", test_schema_cache_follows_the_connection);
  ADD ("/tusk/state/disconnect-cancels-queries",
       test_disconnect_cancels_queries_and_ddl_invalidates);
  g_test_add_func ("/tusk/state/no-password-on-disk-at-trace",
                   test_no_password_on_disk_at_trace);
  return g_test_run ();
}
