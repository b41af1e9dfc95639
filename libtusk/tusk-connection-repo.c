/* tusk-connection-repo.c: saved connections in the `connections` table,
 * joined with `ssh_tunnels` when loading.
 *
 * Writes run as TuskStorageWriteFuncs on the writer thread; validation that
 * needs the database (unique name, saved tunnel) runs there too, inside the
 * same transaction as the write, so it cannot race another writer. */
#define G_LOG_DOMAIN "tusk-storage-connections"

#include "tusk-connection-repo.h"
#include "tusk-log.h"
#include "tusk-repo-private.h"

/* The columns every load reads, in this order (see row_to_config()). */
#define SELECT_CONNECTION                                                      \
  "SELECT c.connection_id, c.name, c.host, c.port, c.database, c.username, "   \
  "c.ssl_mode, c.ssl_root_cert, c.ssl_cert, c.ssl_key, c.color, "              \
  "c.read_only, c.connect_timeout_secs, c.statement_timeout_secs, "            \
  "c.application_name, c.last_connected_at, t.tunnel_id, t.name, t.host, "     \
  "t.port, t.username, t.auth_method, t.key_path "                             \
  "FROM connections c LEFT JOIN ssh_tunnels t ON t.tunnel_id = "               \
  "c.ssh_tunnel_id "

static TuskConnectionConfig *
row_to_config (sqlite3_stmt *stmt)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  const char *ssl_mode = (const char *)sqlite3_column_text (stmt, 6);

  tusk_repo_replace_string (&config->id, tusk_repo_column_dup (stmt, 0));
  tusk_repo_replace_string (&config->name, tusk_repo_column_dup (stmt, 1));
  tusk_repo_replace_string (&config->host, tusk_repo_column_dup (stmt, 2));
  config->port = sqlite3_column_int (stmt, 3);
  tusk_repo_replace_string (&config->database, tusk_repo_column_dup (stmt, 4));
  tusk_repo_replace_string (&config->username, tusk_repo_column_dup (stmt, 5));
  if (ssl_mode == NULL
      || !tusk_ssl_mode_from_string (ssl_mode, &config->ssl_mode))
    {
      tusk_warn ("Connection %s has an unknown ssl_mode \"%s\"; using prefer",
                 config->id, ssl_mode ? ssl_mode : "");
      config->ssl_mode = TUSK_SSL_MODE_PREFER;
    }
  tusk_repo_replace_string (&config->ssl_root_cert,
                            tusk_repo_column_dup (stmt, 7));
  tusk_repo_replace_string (&config->ssl_cert, tusk_repo_column_dup (stmt, 8));
  tusk_repo_replace_string (&config->ssl_key, tusk_repo_column_dup (stmt, 9));
  tusk_repo_replace_string (&config->color, tusk_repo_column_dup (stmt, 10));
  config->options.read_only = sqlite3_column_int (stmt, 11) != 0;
  config->options.connect_timeout_secs = sqlite3_column_int (stmt, 12);
  config->options.statement_timeout_secs
      = sqlite3_column_type (stmt, 13) == SQLITE_NULL
            ? -1
            : sqlite3_column_int (stmt, 13);
  tusk_repo_replace_string (&config->options.application_name,
                            tusk_repo_column_dup (stmt, 14));
  tusk_repo_replace_string (&config->last_connected_at,
                            tusk_repo_column_dup (stmt, 15));

  if (sqlite3_column_type (stmt, 16) != SQLITE_NULL)
    config->ssh_tunnel = tusk_tunnel_repo_decode_row (stmt, 16);

  /* Never NULL, whatever an older or hand-edited row holds. */
  if (config->options.application_name == NULL)
    config->options.application_name = g_strdup ("Tusk");
  return config;
}

/* Runs a SELECT_CONNECTION … query with one text parameter and returns its
 * single row; NOT_FOUND naming @what when there is none. */
static TuskConnectionConfig *
load_one (TuskStorage *storage, const char *sql, const char *key,
          const char *what, GError **error)
{
  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, sql, "Could not load a connection", error);
  if (stmt == NULL)
    return NULL;
  tusk_repo_bind_text (stmt, 1, key);

  int rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return row_to_config (stmt);
  if (rc == SQLITE_DONE)
    tusk_set_error (error, TUSK_ERROR_NOT_FOUND,
                    "Check the name, or list the saved connections",
                    "No saved connection %s", what);
  else
    tusk_repo_step_error (db, rc, "Could not load a connection", error);
  return NULL;
}

TuskConnectionConfig *
tusk_connection_repo_load (TuskStorage *storage, const char *id, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autofree char *what = g_strdup_printf ("has the id %s", id);
  return load_one (storage, SELECT_CONNECTION "WHERE c.connection_id = ?1", id,
                   what, error);
}

TuskConnectionConfig *
tusk_connection_repo_find_by_name (TuskStorage *storage, const char *name,
                                   GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autofree char *what = g_strdup_printf ("is named \"%s\"", name);
  return load_one (storage,
                   SELECT_CONNECTION "WHERE c.name = ?1 COLLATE NOCASE "
                                     "ORDER BY c.name = ?1 DESC LIMIT 1",
                   name, what, error);
}

GPtrArray *
tusk_connection_repo_load_all (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      SELECT_CONNECTION "ORDER BY c.last_connected_at IS NULL, "
                        "c.last_connected_at DESC, c.name COLLATE NOCASE, "
                        "c.connection_id",
      "Could not load the connections", error);
  if (stmt == NULL)
    return NULL;

  g_autoptr (GPtrArray) configs = g_ptr_array_new_with_free_func (
      (GDestroyNotify)tusk_connection_config_free);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (configs, row_to_config (stmt));
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, "Could not load the connections", error);
      return NULL;
    }
  return g_steal_pointer (&configs);
}

/* Writer side of save: the database checks, then the upsert. */
static gboolean
save_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  const TuskConnectionConfig *config = data;
  g_autoptr (GString) problems = g_string_new (NULL);

  if (!tusk_connection_config_validate (config, error))
    return FALSE;

  {
    TUSK_REPO_STMT stmt = tusk_repo_prepare (
        db,
        "SELECT name FROM connections WHERE name = ?1 COLLATE NOCASE "
        "AND connection_id <> ?2 LIMIT 1",
        "Could not save the connection", error);
    if (stmt == NULL)
      return FALSE;
    tusk_repo_bind_text (stmt, 1, config->name);
    tusk_repo_bind_text (stmt, 2, config->id);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
      tusk_repo_problem (problems,
                         "name: must be unique, and another connection is "
                         "already named \"%s\"",
                         (const char *)sqlite3_column_text (stmt, 0));
    else if (rc != SQLITE_DONE)
      {
        tusk_repo_step_error (db, rc, "Could not save the connection", error);
        return FALSE;
      }
  }

  if (config->ssh_tunnel != NULL)
    {
      TUSK_REPO_STMT stmt = tusk_repo_prepare (
          db, "SELECT 1 FROM ssh_tunnels WHERE tunnel_id = ?1",
          "Could not save the connection", error);
      if (stmt == NULL)
        return FALSE;
      tusk_repo_bind_text (stmt, 1, config->ssh_tunnel->id);
      int rc
          = config->ssh_tunnel->id != NULL ? sqlite3_step (stmt) : SQLITE_DONE;
      if (rc == SQLITE_DONE)
        tusk_repo_problem (problems,
                           "ssh_tunnel: must be a saved SSH tunnel (save the "
                           "tunnel first)");
      else if (rc != SQLITE_ROW)
        {
          tusk_repo_step_error (db, rc, "Could not save the connection", error);
          return FALSE;
        }
    }

  if (!tusk_repo_check_problems (problems, "Invalid connection", error))
    return FALSE;

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO connections (connection_id, name, host, port, database, "
      "username, ssl_mode, ssl_root_cert, ssl_cert, ssl_key, ssh_tunnel_id, "
      "color, read_only, connect_timeout_secs, statement_timeout_secs, "
      "application_name) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
      "?15, ?16) "
      "ON CONFLICT (connection_id) DO UPDATE SET name = excluded.name, "
      "host = excluded.host, port = excluded.port, "
      "database = excluded.database, username = excluded.username, "
      "ssl_mode = excluded.ssl_mode, ssl_root_cert = excluded.ssl_root_cert, "
      "ssl_cert = excluded.ssl_cert, ssl_key = excluded.ssl_key, "
      "ssh_tunnel_id = excluded.ssh_tunnel_id, color = excluded.color, "
      "read_only = excluded.read_only, "
      "connect_timeout_secs = excluded.connect_timeout_secs, "
      "statement_timeout_secs = excluded.statement_timeout_secs, "
      "application_name = excluded.application_name, "
      "updated_at = CURRENT_TIMESTAMP",
      "Could not save the connection", error);
  if (stmt == NULL)
    return FALSE;

  tusk_repo_bind_text (stmt, 1, config->id);
  tusk_repo_bind_text (stmt, 2, config->name);
  tusk_repo_bind_text (stmt, 3, config->host);
  sqlite3_bind_int (stmt, 4, config->port);
  tusk_repo_bind_text (stmt, 5, config->database);
  tusk_repo_bind_text (stmt, 6, config->username);
  tusk_repo_bind_text (stmt, 7, tusk_ssl_mode_to_string (config->ssl_mode));
  tusk_repo_bind_text (stmt, 8, config->ssl_root_cert);
  tusk_repo_bind_text (stmt, 9, config->ssl_cert);
  tusk_repo_bind_text (stmt, 10, config->ssl_key);
  tusk_repo_bind_text (stmt, 11,
                       config->ssh_tunnel ? config->ssh_tunnel->id : NULL);
  tusk_repo_bind_text (stmt, 12, config->color);
  sqlite3_bind_int (stmt, 13, config->options.read_only ? 1 : 0);
  sqlite3_bind_int (stmt, 14, config->options.connect_timeout_secs);
  if (config->options.statement_timeout_secs < 0)
    sqlite3_bind_null (stmt, 15);
  else
    sqlite3_bind_int (stmt, 15, config->options.statement_timeout_secs);
  tusk_repo_bind_text (stmt, 16,
                       config->options.application_name
                           ? config->options.application_name
                           : "Tusk");
  if (!tusk_repo_step_done (db, stmt, "Could not save the connection", error))
    return FALSE;

  tusk_debug ("Saved connection %s", config->id);
  return TRUE;
}

gboolean
tusk_connection_repo_save (TuskStorage *storage,
                           const TuskConnectionConfig *config, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* The writer reads @config while this call blocks: no copy needed. */
  return tusk_storage_write_sync (storage, save_in_writer, (gpointer)config,
                                  NULL, error);
}

void
tusk_connection_repo_save_async (TuskStorage *storage,
                                 const TuskConnectionConfig *config,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (config != NULL);

  tusk_storage_write_async (storage, save_in_writer,
                            tusk_connection_config_copy (config),
                            (GDestroyNotify)tusk_connection_config_free,
                            cancellable, callback, user_data);
}

gboolean
tusk_connection_repo_save_finish (TuskStorage *storage, GAsyncResult *result,
                                  GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}

/* Runs one statement taking the connection id; NOT_FOUND when it changed no
 * row.  @data is the id. */
static gboolean
run_on_id (sqlite3 *db, const char *sql, const char *id, const char *what,
           GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (db, sql, what, error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, id);
  if (!tusk_repo_step_done (db, stmt, what, error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      tusk_set_error (error, TUSK_ERROR_NOT_FOUND,
                      "List the saved connections to see what exists",
                      "No saved connection has the id %s", id);
      return FALSE;
    }
  return TRUE;
}

static gboolean
delete_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  if (!run_on_id (db, "DELETE FROM connections WHERE connection_id = ?1", data,
                  "Could not delete the connection", error))
    return FALSE;
  tusk_debug ("Deleted connection %s", (const char *)data);
  return TRUE;
}

gboolean
tusk_connection_repo_delete (TuskStorage *storage, const char *id,
                             GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, delete_in_writer, (gpointer)id, NULL,
                                  error);
}

void
tusk_connection_repo_delete_async (TuskStorage *storage, const char *id,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (id != NULL);

  tusk_storage_write_async (storage, delete_in_writer, g_strdup (id), g_free,
                            cancellable, callback, user_data);
}

gboolean
tusk_connection_repo_delete_finish (TuskStorage *storage, GAsyncResult *result,
                                    GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}

static gboolean
touch_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  return run_on_id (db,
                    "UPDATE connections SET last_connected_at = "
                    "CURRENT_TIMESTAMP WHERE connection_id = ?1",
                    data, "Could not record the connection time", error);
}

gboolean
tusk_connection_repo_touch (TuskStorage *storage, const char *id,
                            GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, touch_in_writer, (gpointer)id, NULL,
                                  error);
}

void
tusk_connection_repo_touch_queue (TuskStorage *storage, const char *id)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (id != NULL);

  tusk_storage_write_queue (storage, touch_in_writer, g_strdup (id), g_free);
}
