/* tusk-tunnel-repo.c: saved SSH tunnels in the `ssh_tunnels` table. */
#define G_LOG_DOMAIN "tusk-storage-tunnels"

#include "tusk-tunnel-repo.h"
#include "tusk-log.h"
#include "tusk-repo-private.h"

#define SELECT_TUNNEL                                                          \
  "SELECT tunnel_id, name, host, port, username, auth_method, key_path "       \
  "FROM ssh_tunnels "

TuskSshTunnelConfig *
tusk_tunnel_repo_decode_row (sqlite3_stmt *stmt, int first_column)
{
  TuskSshTunnelConfig *tunnel = tusk_ssh_tunnel_config_new ();
  int c = first_column;
  const char *method = (const char *)sqlite3_column_text (stmt, c + 5);

  tusk_repo_replace_string (&tunnel->id, tusk_repo_column_dup (stmt, c));
  tusk_repo_replace_string (&tunnel->name, tusk_repo_column_dup (stmt, c + 1));
  tusk_repo_replace_string (&tunnel->host, tusk_repo_column_dup (stmt, c + 2));
  tunnel->port = sqlite3_column_int (stmt, c + 3);
  tusk_repo_replace_string (&tunnel->username,
                            tusk_repo_column_dup (stmt, c + 4));
  if (method == NULL
      || !tusk_ssh_auth_method_from_string (method, &tunnel->auth_method))
    {
      tusk_warn ("SSH tunnel %s has an unknown auth_method \"%s\"; using agent",
                 tunnel->id, method ? method : "");
      tunnel->auth_method = TUSK_SSH_AUTH_AGENT;
    }
  tusk_repo_replace_string (&tunnel->key_path,
                            tusk_repo_column_dup (stmt, c + 6));
  return tunnel;
}

TuskSshTunnelConfig *
tusk_tunnel_repo_load (TuskStorage *storage, const char *id, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, SELECT_TUNNEL "WHERE tunnel_id = ?1",
                           "Could not load the SSH tunnel", error);
  if (stmt == NULL)
    return NULL;
  tusk_repo_bind_text (stmt, 1, id);

  int rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    return tusk_tunnel_repo_decode_row (stmt, 0);
  if (rc == SQLITE_DONE)
    tusk_set_error (error, TUSK_ERROR_NOT_FOUND,
                    "List the saved SSH tunnels to see what exists",
                    "No saved SSH tunnel has the id %s", id);
  else
    tusk_repo_step_error (db, rc, "Could not load the SSH tunnel", error);
  return NULL;
}

GPtrArray *
tusk_tunnel_repo_load_all (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db, SELECT_TUNNEL "ORDER BY name COLLATE NOCASE, tunnel_id",
      "Could not load the SSH tunnels", error);
  if (stmt == NULL)
    return NULL;

  g_autoptr (GPtrArray) tunnels = g_ptr_array_new_with_free_func (
      (GDestroyNotify)tusk_ssh_tunnel_config_free);
  int rc;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    g_ptr_array_add (tunnels, tusk_tunnel_repo_decode_row (stmt, 0));
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, "Could not load the SSH tunnels", error);
      return NULL;
    }
  return g_steal_pointer (&tunnels);
}

static gboolean
save_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  const TuskSshTunnelConfig *tunnel = data;

  if (!tusk_ssh_tunnel_config_validate (tunnel, error))
    return FALSE;

  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO ssh_tunnels (tunnel_id, name, host, port, username, "
      "auth_method, key_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
      "ON CONFLICT (tunnel_id) DO UPDATE SET name = excluded.name, "
      "host = excluded.host, port = excluded.port, "
      "username = excluded.username, auth_method = excluded.auth_method, "
      "key_path = excluded.key_path",
      "Could not save the SSH tunnel", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, tunnel->id);
  tusk_repo_bind_text (stmt, 2, tunnel->name);
  tusk_repo_bind_text (stmt, 3, tunnel->host);
  sqlite3_bind_int (stmt, 4, tunnel->port);
  tusk_repo_bind_text (stmt, 5, tunnel->username);
  tusk_repo_bind_text (stmt, 6,
                       tusk_ssh_auth_method_to_string (tunnel->auth_method));
  tusk_repo_bind_text (stmt, 7, tunnel->key_path);
  if (!tusk_repo_step_done (db, stmt, "Could not save the SSH tunnel", error))
    return FALSE;

  tusk_debug ("Saved SSH tunnel %s", tunnel->id);
  return TRUE;
}

gboolean
tusk_tunnel_repo_save (TuskStorage *storage, const TuskSshTunnelConfig *tunnel,
                       GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (tunnel != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, save_in_writer, (gpointer)tunnel,
                                  NULL, error);
}

void
tusk_tunnel_repo_save_async (TuskStorage *storage,
                             const TuskSshTunnelConfig *tunnel,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (tunnel != NULL);

  tusk_storage_write_async (storage, save_in_writer,
                            tusk_ssh_tunnel_config_copy (tunnel),
                            (GDestroyNotify)tusk_ssh_tunnel_config_free,
                            cancellable, callback, user_data);
}

gboolean
tusk_tunnel_repo_save_finish (TuskStorage *storage, GAsyncResult *result,
                              GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}

static gboolean
delete_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  const char *id = data;
  TUSK_REPO_STMT stmt
      = tusk_repo_prepare (db, "DELETE FROM ssh_tunnels WHERE tunnel_id = ?1",
                           "Could not delete the SSH tunnel", error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, id);
  if (!tusk_repo_step_done (db, stmt, "Could not delete the SSH tunnel", error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      tusk_set_error (error, TUSK_ERROR_NOT_FOUND,
                      "List the saved SSH tunnels to see what exists",
                      "No saved SSH tunnel has the id %s", id);
      return FALSE;
    }
  tusk_debug ("Deleted SSH tunnel %s", id);
  return TRUE;
}

gboolean
tusk_tunnel_repo_delete (TuskStorage *storage, const char *id, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return tusk_storage_write_sync (storage, delete_in_writer, (gpointer)id, NULL,
                                  error);
}

void
tusk_tunnel_repo_delete_async (TuskStorage *storage, const char *id,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (id != NULL);

  tusk_storage_write_async (storage, delete_in_writer, g_strdup (id), g_free,
                            cancellable, callback, user_data);
}

gboolean
tusk_tunnel_repo_delete_finish (TuskStorage *storage, GAsyncResult *result,
                                GError **error)
{
  return tusk_storage_write_finish (storage, result, error);
}
