/* tusk-ui-state-repo.c: key → JSON text in the `ui_state` table. */
#define G_LOG_DOMAIN "tusk-storage-ui-state"

#include <json-glib/json-glib.h>

#include "tusk-ui-state-repo.h"
#include "tusk-log.h"
#include "tusk-repo-private.h"

/* Checks @key and @value_json on the writer's connection @db. */
static gboolean
check_ui_state (sqlite3 *db, const char *key, const char *value_json,
                GError **error)
{
  g_autoptr (GString) problems = g_string_new (NULL);

  if (key == NULL || *key == '\0' || !g_utf8_validate (key, -1, NULL))
    tusk_repo_problem (problems, "key: must be non-empty UTF-8 text");
  if (value_json == NULL)
    tusk_repo_problem (problems, "value: required");
  else
    {
      g_autoptr (JsonParser) parser = json_parser_new_immutable ();
      g_autoptr (GError) json_error = NULL;

      if (!json_parser_load_from_data (parser, value_json, -1, &json_error))
        tusk_repo_problem (problems, "value: must be valid JSON (%s)",
                           json_error->message);
      else if (json_parser_get_root (parser) == NULL)
        tusk_repo_problem (problems, "value: must be one JSON value, not "
                                     "empty text");
      else
        {
          TUSK_REPO_STMT stmt
              = tusk_repo_prepare (db, "SELECT json_valid(?1)",
                                   "Could not save the UI state", error);
          if (stmt == NULL)
            return FALSE;
          tusk_repo_bind_text (stmt, 1, value_json);
          int rc = sqlite3_step (stmt);
          if (rc != SQLITE_ROW)
            {
              tusk_repo_step_error (db, rc, "Could not save the UI state",
                                    error);
              return FALSE;
            }
          if (sqlite3_column_int (stmt, 0) == 0)
            tusk_repo_problem (problems,
                               "value: must be strict JSON (RFC 8259: one "
                               "value, double-quoted strings, no comments)");
        }
    }
  return tusk_repo_check_problems (problems, "Invalid UI state", error);
}

typedef struct
{
  char *key;
  char *value_json;
} SetData;

static void
set_data_free (gpointer data)
{
  SetData *set = data;
  g_free (set->key);
  g_free (set->value_json);
  g_free (set);
}

static gboolean
set_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  SetData *set = data;

  /* Checked here, on the writer, so that _async reports it the same way. */
  if (!check_ui_state (db, set->key, set->value_json, error))
    return FALSE;

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO ui_state (key, value_json) VALUES (?1, ?2) "
      "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
      "updated_at = CURRENT_TIMESTAMP",
      "Could not save the UI state", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, set->key);
  tusk_repo_bind_text (stmt, 2, set->value_json);
  return tusk_repo_step_done (db, stmt, "Could not save the UI state", error);
}

gboolean
tusk_ui_state_repo_set (TuskStorage *storage, const char *key,
                        const char *value_json, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  SetData set = { (char *)key, (char *)value_json };
  return tusk_storage_write_sync (storage, set_in_writer, &set, NULL, error);
}

void
tusk_ui_state_repo_set_async (TuskStorage *storage, const char *key,
                              const char *value_json, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (storage != NULL);

  SetData *set = g_new (SetData, 1);
  set->key = g_strdup (key);
  set->value_json = g_strdup (value_json);
  tusk_storage_write_async (storage, set_in_writer, set, set_data_free,
                            cancellable, callback, user_data);
}

gboolean
tusk_ui_state_repo_set_finish (TuskStorage *storage, GAsyncResult *result,
                               GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}

char *
tusk_ui_state_repo_get (TuskStorage *storage, const char *key, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, "SELECT value_json FROM ui_state WHERE key = ?1",
                           "Could not read the UI state", error);
  if (stmt == NULL)
    return NULL;
  tusk_repo_bind_text (stmt, 1, key);
  int rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return tusk_repo_column_dup (stmt, 0);
  if (rc != SQLITE_DONE)
    tusk_repo_step_error (db, rc, "Could not read the UI state", error);
  return NULL;
}

static gboolean
delete_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, "DELETE FROM ui_state WHERE key = ?1",
                           "Could not delete the UI state", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, data);
  return tusk_repo_step_done (db, stmt, "Could not delete the UI state", error);
}

gboolean
tusk_ui_state_repo_delete (TuskStorage *storage, const char *key,
                           GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, delete_in_writer, (gpointer)key,
                                  NULL, error);
}
