/* tusk-history-repo.c: the query history in the `query_history` table.
 *
 * Adds are queued (tusk_storage_write_queue) and pruned statelessly: the
 * writer prunes to the limit after an add whose new history_id is a
 * multiple of TUSK_HISTORY_PRUNE_EVERY.  The prune walks the executed_at
 * index past the newest `limit` entries: O(limit) once per PRUNE_EVERY adds,
 * about 1 ms at 10,000, so an add costs the writer ~10 µs amortized. */
#define G_LOG_DOMAIN "tusk-storage-history"

#include "tusk-history-repo.h"
#include "tusk-history-redact-private.h"
#include "tusk-log.h"
#include "tusk-repo-private.h"

#define LIMIT_KEY "history.max_entries"

#define SELECT_ENTRY                                                           \
  "SELECT history_id, connection_id, sql_text, execution_time_ms, "            \
  "row_count, error_message, executed_at FROM query_history "
#define NEWEST_FIRST "ORDER BY executed_at DESC, history_id DESC "
/* The same order without the newest-first indexes: a search reads every
 * row anyway, and a sequential scan plus a sort of the matches beats
 * walking the index with a table lookup per row when matches are rare. */
#define NEWEST_FIRST_SCAN "ORDER BY +executed_at DESC, history_id DESC "

TuskHistoryEntry *
tusk_history_entry_new (const char *connection_id, const char *sql)
{
  TuskHistoryEntry *entry = g_new0 (TuskHistoryEntry, 1);
  entry->connection_id = g_strdup (connection_id);
  entry->sql = g_strdup (sql);
  entry->execution_time_ms = -1;
  entry->row_count = -1;
  return entry;
}

TuskHistoryEntry *
tusk_history_entry_copy (const TuskHistoryEntry *entry)
{
  g_return_val_if_fail (entry != NULL, NULL);

  TuskHistoryEntry *copy = g_new (TuskHistoryEntry, 1);
  *copy = *entry;
  copy->connection_id = g_strdup (entry->connection_id);
  copy->sql = g_strdup (entry->sql);
  copy->error_message = g_strdup (entry->error_message);
  copy->executed_at = g_strdup (entry->executed_at);
  return copy;
}

void
tusk_history_entry_free (TuskHistoryEntry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->connection_id);
  g_free (entry->sql);
  g_free (entry->error_message);
  g_free (entry->executed_at);
  g_free (entry);
}

static gboolean
is_blank (const char *text)
{
  for (; *text != '\0'; text++)
    if (!g_ascii_isspace (*text))
      return FALSE;
  return TRUE;
}

gboolean
tusk_history_entry_validate (const TuskHistoryEntry *entry, GError **error)
{
  g_return_val_if_fail (entry != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr (GString) problems = g_string_new (NULL);

  if (entry->connection_id == NULL || *entry->connection_id == '\0')
    tusk_repo_problem (problems, "connection_id: required");
  if (entry->sql == NULL || is_blank (entry->sql))
    tusk_repo_problem (problems, "sql: must not be empty");
  else if (!g_utf8_validate (entry->sql, -1, NULL))
    tusk_repo_problem (problems, "sql: must be valid UTF-8");
  if (entry->execution_time_ms < -1)
    tusk_repo_problem (problems,
                       "execution_time_ms: must be >= 0, or -1 for unknown");
  if (entry->row_count < -1)
    tusk_repo_problem (problems, "row_count: must be >= 0, or -1 for unknown");
  if (entry->error_message != NULL
      && !g_utf8_validate (entry->error_message, -1, NULL))
    tusk_repo_problem (problems, "error_message: must be valid UTF-8");
  if (entry->executed_at != NULL
      && !tusk_repo_timestamp_ok (entry->executed_at))
    tusk_repo_problem (problems,
                       "executed_at: must be \"YYYY-MM-DD HH:MM:SS\" (UTC)");
  return tusk_repo_check_problems (problems, "Invalid history entry", error);
}

static TuskHistoryEntry *
row_to_entry (sqlite3_stmt *stmt)
{
  TuskHistoryEntry *entry = g_new0 (TuskHistoryEntry, 1);
  entry->id = sqlite3_column_int64 (stmt, 0);
  entry->connection_id = tusk_repo_column_dup (stmt, 1);
  entry->sql = tusk_repo_column_dup (stmt, 2);
  entry->execution_time_ms = sqlite3_column_type (stmt, 3) == SQLITE_NULL
                                 ? -1
                                 : sqlite3_column_int64 (stmt, 3);
  entry->row_count = sqlite3_column_type (stmt, 4) == SQLITE_NULL
                         ? -1
                         : sqlite3_column_int64 (stmt, 4);
  entry->error_message = tusk_repo_column_dup (stmt, 5);
  entry->executed_at = tusk_repo_column_dup (stmt, 6);
  return entry;
}

/* Writer side: the limit as stored in ui_state, or the default. */
static gint64
read_limit (sqlite3 *db, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db, "SELECT value_json FROM ui_state WHERE key = '" LIMIT_KEY "'",
      "Could not read the history limit", error);
  if (stmt == NULL)
    return -1;
  int rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    {
      const char *text = (const char *)sqlite3_column_text (stmt, 0);
      guint64 value;
      if (text != NULL
          && g_ascii_string_to_unsigned (text, 10, 0, G_MAXINT64, &value, NULL))
        return (gint64)value;
      return TUSK_HISTORY_DEFAULT_LIMIT;
    }
  if (rc == SQLITE_DONE)
    return TUSK_HISTORY_DEFAULT_LIMIT;
  tusk_repo_step_error (db, rc, "Could not read the history limit", error);
  return -1;
}

/* Writer side: deletes all but the @keep newest entries; the number deleted
 * or -1. */
static gint64
prune_to (sqlite3 *db, gint64 keep, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "DELETE FROM query_history WHERE history_id IN (SELECT history_id "
      "FROM query_history " NEWEST_FIRST "LIMIT -1 OFFSET ?1)",
      "Could not prune the query history", error);
  if (stmt == NULL)
    return -1;
  sqlite3_bind_int64 (stmt, 1, keep);
  if (!tusk_repo_step_done (db, stmt, "Could not prune the query history",
                            error))
    return -1;
  return sqlite3_changes64 (db);
}

typedef struct
{
  TuskHistoryEntry *entry;
  gint64 *id_out; /* nullable; points into the async operation's state */
} AddData;

static void
add_data_free (gpointer data)
{
  AddData *add = data;
  tusk_history_entry_free (add->entry);
  g_free (add);
}

static gboolean
add_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  AddData *add = data;
  const TuskHistoryEntry *entry = add->entry;

  /* Here rather than in the caller's thread: a long statement costs a few
   * ns a byte. */
  tusk_history_entry_redact (add->entry);

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO query_history (connection_id, sql_text, "
      "execution_time_ms, row_count, error_message, executed_at) "
      "SELECT ?1, ?2, ?3, ?4, ?5, coalesce(?6, CURRENT_TIMESTAMP) "
      "WHERE EXISTS (SELECT 1 FROM connections WHERE connection_id = ?1)",
      "Could not add to the query history", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, entry->connection_id);
  tusk_repo_bind_text (stmt, 2, entry->sql);
  if (entry->execution_time_ms >= 0)
    sqlite3_bind_int64 (stmt, 3, entry->execution_time_ms);
  if (entry->row_count >= 0)
    sqlite3_bind_int64 (stmt, 4, entry->row_count);
  tusk_repo_bind_text (stmt, 5, entry->error_message);
  tusk_repo_bind_text (stmt, 6, entry->executed_at);
  if (!tusk_repo_step_done (db, stmt, "Could not add to the query history",
                            error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL,
                      "Invalid history entry: connection_id: must be a saved "
                      "connection (%s is not)",
                      entry->connection_id);
      return FALSE;
    }

  gint64 id = sqlite3_last_insert_rowid (db);
  if (add->id_out != NULL)
    *add->id_out = id;

  if (id % TUSK_HISTORY_PRUNE_EVERY == 0)
    {
      gint64 limit = read_limit (db, error);
      if (limit < 0)
        return FALSE;
      if (limit > 0)
        {
          gint64 pruned = prune_to (db, limit, error);
          if (pruned < 0)
            return FALSE;
          if (pruned > 0)
            tusk_debug ("Pruned %" G_GINT64_FORMAT " history entries", pruned);
        }
    }
  return TRUE;
}

static AddData *
add_data_new (const TuskHistoryEntry *entry)
{
  AddData *add = g_new0 (AddData, 1);
  add->entry = tusk_history_entry_copy (entry);
  return add;
}

gboolean
tusk_history_repo_add (TuskStorage *storage, const TuskHistoryEntry *entry,
                       GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (entry != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!tusk_history_entry_validate (entry, error))
    return FALSE;
  tusk_storage_write_queue (storage, add_in_writer, add_data_new (entry),
                            add_data_free);
  return TRUE;
}

/* State of one tusk_history_repo_add_async(), the task data of its GTask. */
typedef struct
{
  TuskStorage *storage;
  gint64 id;
} AddAsync;

static void
add_async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  g_autoptr (GTask) task = user_data;
  AddAsync *state = g_task_get_task_data (task);
  GError *error = NULL;

  if (tusk_storage_write_finish (state->storage, result, &error))
    g_task_return_int (task, state->id);
  else
    g_task_return_error (task, error);
}

void
tusk_history_repo_add_async (TuskStorage *storage,
                             const TuskHistoryEntry *entry,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (entry != NULL);

  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tusk_history_repo_add_async);
  GError *error = NULL;

  if (!tusk_history_entry_validate (entry, &error))
    {
      g_task_return_error (task, error);
      return;
    }

  AddAsync *state = g_new0 (AddAsync, 1);
  state->storage = storage;
  state->id = -1;
  g_task_set_task_data (task, state, g_free);

  AddData *add = add_data_new (entry);
  add->id_out = &state->id;
  tusk_storage_write_async (storage, add_in_writer, add, add_data_free,
                            cancellable, add_async_done,
                            g_steal_pointer (&task));
}

gint64
tusk_history_repo_add_finish (TuskStorage *storage, GAsyncResult *result,
                              GError **error)
{
  (void)storage;
  g_return_val_if_fail (g_task_is_valid (result, NULL), -1);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result))
                            == tusk_history_repo_add_async,
                        -1);

  return g_task_propagate_int (G_TASK (result), error);
}

/* Runs a SELECT_ENTRY query whose parameters are ?1 connection (nullable),
 * ?2 limit, ?3 offset and optionally ?4 a text. */
static GPtrArray *
select_entries (TuskStorage *storage, const char *sql,
                const char *connection_id, int limit, int offset,
                const char *text, GError **error)
{
  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, sql, "Could not read the query history", error);
  if (stmt == NULL)
    return NULL;
  tusk_repo_bind_text (stmt, 1, connection_id);
  sqlite3_bind_int (stmt, 2, limit < 0 ? -1 : limit);
  sqlite3_bind_int (stmt, 3, offset);
  if (text != NULL)
    tusk_repo_bind_text (stmt, 4, text);

  g_autoptr (GPtrArray) entries = g_ptr_array_new_with_free_func (
      (GDestroyNotify)tusk_history_entry_free);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (entries, row_to_entry (stmt));
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, "Could not read the query history", error);
      return NULL;
    }
  return g_steal_pointer (&entries);
}

GPtrArray *
tusk_history_repo_list (TuskStorage *storage, const char *connection_id,
                        int limit, int offset, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (offset >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* Two texts so that each uses its index: (connection_id, executed_at)
   * and (executed_at). */
  return select_entries (
      storage,
      connection_id != NULL ? SELECT_ENTRY
          "WHERE connection_id = ?1 " NEWEST_FIRST "LIMIT ?2 OFFSET ?3"
                            : SELECT_ENTRY "WHERE ?1 IS NULL " NEWEST_FIRST
                                           "LIMIT ?2 OFFSET ?3",
      connection_id, limit, offset, NULL, error);
}

/* Returns (transfer full) a LIKE pattern matching @text anywhere, with the
 * LIKE wildcards and the escape character itself escaped by '\'. */
static char *
like_pattern (const char *text)
{
  GString *pattern = g_string_sized_new (strlen (text) + 2);
  g_string_append_c (pattern, '%');
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '%' || *p == '_' || *p == '\\')
        g_string_append_c (pattern, '\\');
      g_string_append_c (pattern, *p);
    }
  g_string_append_c (pattern, '%');
  return g_string_free (pattern, FALSE);
}

GPtrArray *
tusk_history_repo_search (TuskStorage *storage, const char *text,
                          const char *connection_id, int limit, int offset,
                          GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (offset >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autofree char *pattern = like_pattern (text);
  return select_entries (
      storage,
      connection_id != NULL ? SELECT_ENTRY
          "WHERE connection_id = ?1 AND sql_text LIKE ?4 "
          "ESCAPE '\\' " NEWEST_FIRST_SCAN "LIMIT ?2 OFFSET ?3"
                            : SELECT_ENTRY
          "WHERE ?1 IS NULL AND sql_text LIKE ?4 ESCAPE '\\' " NEWEST_FIRST_SCAN
          "LIMIT ?2 OFFSET ?3",
      connection_id, limit, offset, pattern, error);
}

gint64
tusk_history_repo_count (TuskStorage *storage, const char *connection_id,
                         GError **error)
{
  g_return_val_if_fail (storage != NULL, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return -1;

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      connection_id != NULL
          ? "SELECT count(*) FROM query_history WHERE connection_id = ?1"
          : "SELECT count(*) FROM query_history",
      "Could not count the query history", error);
  if (stmt == NULL)
    return -1;
  if (connection_id != NULL)
    tusk_repo_bind_text (stmt, 1, connection_id);
  int rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    {
      tusk_repo_step_error (db, rc, "Could not count the query history", error);
      return -1;
    }
  return sqlite3_column_int64 (stmt, 0);
}

/* A blocking delete: its statement, one optional parameter of each kind,
 * and where the number of deleted rows goes. */
typedef struct
{
  const char *sql;
  const char *text; /* ?1, nullable */
  gint64 number;    /* ?2 */
  gint64 deleted;
} DeleteData;

static gboolean
delete_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  DeleteData *del = data;
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db, del->sql, "Could not delete from the query history", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, del->text);
  sqlite3_bind_int64 (stmt, 2, del->number);
  if (!tusk_repo_step_done (db, stmt, "Could not delete from the query history",
                            error))
    return FALSE;
  del->deleted = sqlite3_changes64 (db);
  return TRUE;
}

static gint64
run_delete (TuskStorage *storage, DeleteData *del, GError **error)
{
  if (!tusk_storage_write_sync (storage, delete_in_writer, del, NULL, error))
    return -1;
  tusk_debug ("Deleted %" G_GINT64_FORMAT " history entries", del->deleted);
  return del->deleted;
}

gint64
tusk_history_repo_clear (TuskStorage *storage, const char *connection_id,
                         GError **error)
{
  g_return_val_if_fail (storage != NULL, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  DeleteData del = {
    .sql = connection_id != NULL
               ? "DELETE FROM query_history WHERE connection_id = ?1"
               : "DELETE FROM query_history WHERE ?1 IS NULL",
    .text = connection_id,
  };
  return run_delete (storage, &del, error);
}

gint64
tusk_history_repo_prune_by_count (TuskStorage *storage, gint64 keep,
                                  GError **error)
{
  g_return_val_if_fail (storage != NULL, -1);
  g_return_val_if_fail (keep >= 0, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  DeleteData del = {
    .sql = "DELETE FROM query_history WHERE ?1 IS NULL AND history_id IN "
           "(SELECT history_id FROM query_history " NEWEST_FIRST
           "LIMIT -1 OFFSET ?2)",
    .number = keep,
  };
  return run_delete (storage, &del, error);
}

gint64
tusk_history_repo_prune_by_age (TuskStorage *storage, GTimeSpan max_age,
                                GError **error)
{
  g_return_val_if_fail (storage != NULL, -1);
  g_return_val_if_fail (max_age >= 0, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr (GDateTime) cutoff = g_date_time_add (now, -max_age);
  g_autofree char *text = g_date_time_format (cutoff, "%Y-%m-%d %H:%M:%S");
  DeleteData del = {
    .sql = "DELETE FROM query_history WHERE executed_at < ?1",
    .text = text,
  };
  return run_delete (storage, &del, error);
}

static gboolean
set_limit_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  gint64 limit = *(gint64 *)data;
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, limit);
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO ui_state (key, value_json) VALUES ('" LIMIT_KEY "', ?1) "
      "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
      "updated_at = CURRENT_TIMESTAMP",
      "Could not set the history limit", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, text);
  if (!tusk_repo_step_done (db, stmt, "Could not set the history limit", error))
    return FALSE;
  return limit == 0 || prune_to (db, limit, error) >= 0;
}

gboolean
tusk_history_repo_set_limit (TuskStorage *storage, gint64 limit, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (limit < 0)
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL,
                      "Invalid history limit: must be >= 0 (0: no limit)");
      return FALSE;
    }
  return tusk_storage_write_sync (storage, set_limit_in_writer, &limit, NULL,
                                  error);
}

gint64
tusk_history_repo_get_limit (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return -1;
  return read_limit (db, error);
}
