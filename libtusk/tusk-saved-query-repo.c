/* tusk-saved-query-repo.c: the query library in the `saved_queries` table;
 * folders are derived from folder_path. */
#define G_LOG_DOMAIN "tusk-storage-saved-queries"

#include "tusk-saved-query-repo.h"
#include "tusk-log.h"
#include "tusk-repo-private.h"

#define SELECT_QUERY                                                           \
  "SELECT query_id, connection_id, name, description, sql_text, "              \
  "folder_path, created_at, updated_at FROM saved_queries "
/* Tree order: '/' sorts before every other character (char(1) stands in for
 * it), so "a/b" comes right after "a" and before "a b". */
#define TREE_ORDER                                                             \
  "ORDER BY folder_path IS NOT NULL, replace(folder_path, '/', char(1)), "     \
  "name COLLATE NOCASE, name, query_id"

TuskSavedQuery *
tusk_saved_query_new (const char *name, const char *sql)
{
  TuskSavedQuery *query = g_new0 (TuskSavedQuery, 1);
  query->id = g_uuid_string_random ();
  query->name = g_strdup (name);
  query->sql = g_strdup (sql);
  return query;
}

TuskSavedQuery *
tusk_saved_query_copy (const TuskSavedQuery *query)
{
  g_return_val_if_fail (query != NULL, NULL);

  TuskSavedQuery *copy = g_new0 (TuskSavedQuery, 1);
  copy->id = g_strdup (query->id);
  copy->connection_id = g_strdup (query->connection_id);
  copy->name = g_strdup (query->name);
  copy->description = g_strdup (query->description);
  copy->sql = g_strdup (query->sql);
  copy->folder_path = g_strdup (query->folder_path);
  copy->created_at = g_strdup (query->created_at);
  copy->updated_at = g_strdup (query->updated_at);
  return copy;
}

void
tusk_saved_query_free (TuskSavedQuery *query)
{
  if (query == NULL)
    return;
  g_free (query->id);
  g_free (query->connection_id);
  g_free (query->name);
  g_free (query->description);
  g_free (query->sql);
  g_free (query->folder_path);
  g_free (query->created_at);
  g_free (query->updated_at);
  g_free (query);
}

/* TRUE for NULL, or for names joined by single '/'s. */
static gboolean
folder_path_ok (const char *path)
{
  if (path == NULL)
    return TRUE;
  if (!g_utf8_validate (path, -1, NULL) || *path == '\0' || *path == '/')
    return FALSE;
  for (const char *p = path; *p != '\0'; p++)
    if (*p == '/' && (p[1] == '/' || p[1] == '\0'))
      return FALSE;
  return TRUE;
}

static void
check_folder_path (GString *problems, const char *path)
{
  if (!folder_path_ok (path))
    tusk_repo_problem (problems,
                       "folder_path: must be folder names joined by '/' (no "
                       "empty name, no leading, trailing or doubled '/'), or "
                       "none for the top level");
}

gboolean
tusk_saved_query_validate (const TuskSavedQuery *query, GError **error)
{
  g_return_val_if_fail (query != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr (GString) problems = g_string_new (NULL);

  if (query->id == NULL || !g_uuid_string_is_valid (query->id))
    tusk_repo_problem (problems, "id: must be a UUID");
  if (!tusk_repo_length_ok (query->name, 1, 255))
    tusk_repo_problem (problems, "name: must be 1-255 characters");
  if (query->sql == NULL)
    tusk_repo_problem (problems, "sql: required");
  else if (!g_utf8_validate (query->sql, -1, NULL))
    tusk_repo_problem (problems, "sql: must be valid UTF-8");
  if (query->description != NULL
      && !g_utf8_validate (query->description, -1, NULL))
    tusk_repo_problem (problems, "description: must be valid UTF-8");
  if (query->connection_id != NULL && *query->connection_id == '\0')
    tusk_repo_problem (problems, "connection_id: must be a connection's id, "
                                 "or none");
  check_folder_path (problems, query->folder_path);
  return tusk_repo_check_problems (problems, "Invalid saved query", error);
}

static TuskSavedQuery *
row_to_query (sqlite3_stmt *stmt)
{
  TuskSavedQuery *query = g_new0 (TuskSavedQuery, 1);
  query->id = tusk_repo_column_dup (stmt, 0);
  query->connection_id = tusk_repo_column_dup (stmt, 1);
  query->name = tusk_repo_column_dup (stmt, 2);
  query->description = tusk_repo_column_dup (stmt, 3);
  query->sql = tusk_repo_column_dup (stmt, 4);
  query->folder_path = tusk_repo_column_dup (stmt, 5);
  query->created_at = tusk_repo_column_dup (stmt, 6);
  query->updated_at = tusk_repo_column_dup (stmt, 7);
  return query;
}

static void
not_found (const char *id, GError **error)
{
  tusk_set_error (error, TUSK_ERROR_NOT_FOUND,
                  "List the saved queries to see what exists",
                  "No saved query has the id %s", id);
}

/* Writer side: validation, then "is the connection saved" and, for create,
 * "is the id free". */
static gboolean
check_in_writer (sqlite3 *db, const TuskSavedQuery *query, gboolean creating,
                 GError **error)
{
  g_autoptr (GString) problems = g_string_new (NULL);

  if (!tusk_saved_query_validate (query, error))
    return FALSE;

  if (query->connection_id != NULL)
    {
      TUSK_REPO_STMT stmt = tusk_repo_prepare (
          db, "SELECT 1 FROM connections WHERE connection_id = ?1",
          "Could not save the query", error);
      if (stmt == NULL)
        return FALSE;
      tusk_repo_bind_text (stmt, 1, query->connection_id);
      int rc = sqlite3_step (stmt);
      if (rc == SQLITE_DONE)
        tusk_repo_problem (problems,
                           "connection_id: must be a saved connection, or "
                           "none");
      else if (rc != SQLITE_ROW)
        {
          tusk_repo_step_error (db, rc, "Could not save the query", error);
          return FALSE;
        }
    }
  if (creating)
    {
      TUSK_REPO_STMT stmt
          = tusk_repo_prepare (db,
                               "SELECT 1 FROM saved_queries WHERE "
                               "query_id = ?1",
                               "Could not save the query", error);
      if (stmt == NULL)
        return FALSE;
      tusk_repo_bind_text (stmt, 1, query->id);
      int rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW)
        tusk_repo_problem (problems, "id: must be new, and a saved query "
                                     "already has it");
      else if (rc != SQLITE_DONE)
        {
          tusk_repo_step_error (db, rc, "Could not save the query", error);
          return FALSE;
        }
    }
  return tusk_repo_check_problems (problems, "Invalid saved query", error);
}

/* Binds ?1 id … ?6 folder_path. */
static void
bind_query (sqlite3_stmt *stmt, const TuskSavedQuery *query)
{
  tusk_repo_bind_text (stmt, 1, query->id);
  tusk_repo_bind_text (stmt, 2, query->connection_id);
  tusk_repo_bind_text (stmt, 3, query->name);
  tusk_repo_bind_text (stmt, 4, query->description);
  tusk_repo_bind_text (stmt, 5, query->sql);
  tusk_repo_bind_text (stmt, 6, query->folder_path);
}

static gboolean
create_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  const TuskSavedQuery *query = data;

  if (!check_in_writer (db, query, TRUE, error))
    return FALSE;
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO saved_queries (query_id, connection_id, name, "
      "description, sql_text, folder_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      "Could not save the query", error);
  if (stmt == NULL)
    return FALSE;
  bind_query (stmt, query);
  if (!tusk_repo_step_done (db, stmt, "Could not save the query", error))
    return FALSE;
  tusk_debug ("Created saved query %s", query->id);
  return TRUE;
}

static gboolean
update_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  const TuskSavedQuery *query = data;

  if (!check_in_writer (db, query, FALSE, error))
    return FALSE;
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "UPDATE saved_queries SET connection_id = ?2, name = ?3, "
      "description = ?4, sql_text = ?5, folder_path = ?6, "
      "updated_at = CURRENT_TIMESTAMP WHERE query_id = ?1",
      "Could not save the query", error);
  if (stmt == NULL)
    return FALSE;
  bind_query (stmt, query);
  if (!tusk_repo_step_done (db, stmt, "Could not save the query", error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      not_found (query->id, error);
      return FALSE;
    }
  tusk_debug ("Updated saved query %s", query->id);
  return TRUE;
}

gboolean
tusk_saved_query_repo_create (TuskStorage *storage, const TuskSavedQuery *query,
                              GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (query != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, create_in_writer, (gpointer)query,
                                  NULL, error);
}

void
tusk_saved_query_repo_create_async (TuskStorage *storage,
                                    const TuskSavedQuery *query,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (query != NULL);

  tusk_storage_write_async (
      storage, create_in_writer, tusk_saved_query_copy (query),
      (GDestroyNotify)tusk_saved_query_free, cancellable, callback, user_data);
}

gboolean
tusk_saved_query_repo_create_finish (TuskStorage *storage, GAsyncResult *result,
                                     GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}

gboolean
tusk_saved_query_repo_update (TuskStorage *storage, const TuskSavedQuery *query,
                              GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (query != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, update_in_writer, (gpointer)query,
                                  NULL, error);
}

void
tusk_saved_query_repo_update_async (TuskStorage *storage,
                                    const TuskSavedQuery *query,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (query != NULL);

  tusk_storage_write_async (
      storage, update_in_writer, tusk_saved_query_copy (query),
      (GDestroyNotify)tusk_saved_query_free, cancellable, callback, user_data);
}

gboolean
tusk_saved_query_repo_update_finish (TuskStorage *storage, GAsyncResult *result,
                                     GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}

/* Runs a SELECT_QUERY … with ?1 bound to @key (nullable). */
static GPtrArray *
select_queries (TuskStorage *storage, const char *sql, const char *key,
                GError **error)
{
  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, sql, "Could not load the saved queries", error);
  if (stmt == NULL)
    return NULL;
  if (sqlite3_bind_parameter_count (stmt) > 0)
    tusk_repo_bind_text (stmt, 1, key);

  g_autoptr (GPtrArray) queries
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_saved_query_free);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (queries, row_to_query (stmt));
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, "Could not load the saved queries", error);
      return NULL;
    }
  return g_steal_pointer (&queries);
}

TuskSavedQuery *
tusk_saved_query_repo_load (TuskStorage *storage, const char *id,
                            GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (GPtrArray) queries
      = select_queries (storage, SELECT_QUERY "WHERE query_id = ?1", id, error);
  if (queries == NULL)
    return NULL;
  if (queries->len == 0)
    {
      not_found (id, error);
      return NULL;
    }
  return g_ptr_array_steal_index (queries, 0);
}

GPtrArray *
tusk_saved_query_repo_list (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return select_queries (storage, SELECT_QUERY TREE_ORDER, NULL, error);
}

GPtrArray *
tusk_saved_query_repo_list_folder (TuskStorage *storage,
                                   const char *folder_path, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return select_queries (storage,
                         folder_path != NULL
                             ? SELECT_QUERY "WHERE folder_path = ?1 " TREE_ORDER
                             : SELECT_QUERY "WHERE folder_path IS NULL "
                                            "AND ?1 IS NULL " TREE_ORDER,
                         folder_path, error);
}

/* strcmp() with '/' sorting before every other byte: tree order. */
static int
compare_paths (gconstpointer a, gconstpointer b)
{
  const unsigned char *x = *(const unsigned char *const *)a;
  const unsigned char *y = *(const unsigned char *const *)b;

  for (; *x != '\0' && *x == *y; x++, y++)
    ;
  int cx = *x == '/' ? 1 : *x;
  int cy = *y == '/' ? 1 : *y;
  return cx - cy;
}

char **
tusk_saved_query_repo_list_folders (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db,
                           "SELECT DISTINCT folder_path FROM saved_queries "
                           "WHERE folder_path IS NOT NULL",
                           "Could not load the folders", error);
  if (stmt == NULL)
    return NULL;

  /* Every path and each of its parents, once. */
  g_autoptr (GHashTable) folders
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      const char *path = (const char *)sqlite3_column_text (stmt, 0);
      for (const char *slash = strchr (path, '/'); slash != NULL;
           slash = strchr (slash + 1, '/'))
        g_hash_table_add (folders, g_strndup (path, slash - path));
      g_hash_table_add (folders, g_strdup (path));
    }
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, "Could not load the folders", error);
      return NULL;
    }

  guint n;
  g_autofree gpointer *keys = g_hash_table_get_keys_as_array (folders, &n);
  qsort (keys, n, sizeof *keys, compare_paths);
  char **paths = g_new (char *, n + 1);
  for (guint i = 0; i < n; i++)
    paths[i] = g_strdup (keys[i]);
  paths[n] = NULL;
  return paths;
}

typedef struct
{
  char *id;
  char *folder_path;
} MoveData;

static gboolean
move_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  MoveData *move = data;
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "UPDATE saved_queries SET folder_path = ?2, updated_at = "
      "CURRENT_TIMESTAMP WHERE query_id = ?1",
      "Could not move the saved query", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, move->id);
  tusk_repo_bind_text (stmt, 2, move->folder_path);
  if (!tusk_repo_step_done (db, stmt, "Could not move the saved query", error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      not_found (move->id, error);
      return FALSE;
    }
  return TRUE;
}

gboolean
tusk_saved_query_repo_move (TuskStorage *storage, const char *id,
                            const char *folder_path, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr (GString) problems = g_string_new (NULL);
  check_folder_path (problems, folder_path);
  if (!tusk_repo_check_problems (problems, "Invalid folder", error))
    return FALSE;

  MoveData move = { (char *)id, (char *)folder_path };
  return tusk_storage_write_sync (storage, move_in_writer, &move, NULL, error);
}

static gboolean
delete_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  const char *id = data;
  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, "DELETE FROM saved_queries WHERE query_id = ?1",
                           "Could not delete the saved query", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, id);
  if (!tusk_repo_step_done (db, stmt, "Could not delete the saved query",
                            error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      not_found (id, error);
      return FALSE;
    }
  tusk_debug ("Deleted saved query %s", id);
  return TRUE;
}

gboolean
tusk_saved_query_repo_delete (TuskStorage *storage, const char *id,
                              GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, delete_in_writer, (gpointer)id, NULL,
                                  error);
}

void
tusk_saved_query_repo_delete_async (TuskStorage *storage, const char *id,
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
tusk_saved_query_repo_delete_finish (TuskStorage *storage, GAsyncResult *result,
                                     GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}
