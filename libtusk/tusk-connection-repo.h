/* tusk-connection-repo.h: the saved connections (table `connections`).
 *
 * A connection is stored without its password (that lives in the keychain,
 * tusk-credentials.h); no function here accepts one.  A connection that
 * uses an SSH tunnel stores the tunnel's id only: the tunnel itself is saved
 * with tusk-tunnel-repo.h first, and loading fills in the embedded
 * TuskConnectionConfig.ssh_tunnel from the `ssh_tunnels` table.
 *
 * Names are unique, compared without regard to ASCII case ("Prod" and "prod"
 * cannot both exist): the shell addresses connections by name, so a name
 * must say which one.  The schema has no UNIQUE constraint; the check runs
 * inside the writer's transaction, which every process serializes with
 * BEGIN IMMEDIATE, so it cannot race.
 *
 * Thread rules: every function may be called from any thread.  Reads run on
 * the calling thread (its own read connection) and block briefly on SQLite;
 * the plain write functions block until the writer thread has committed;
 * the _async variants return at once and call back on the caller's
 * thread-default main context, never from inside the _async call.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-connection-config.h"
#include "tusk-storage.h"

G_BEGIN_DECLS

/* Saves @config (transfer none): inserts it, or updates the row with the
 * same id (created_at and last_connected_at are kept; updated_at is set to
 * now).  Validates first with tusk_connection_config_validate(), then on the
 * writer, in one TUSK_ERROR_VALIDATION naming each bad field: the name must
 * not be used by another connection, and config->ssh_tunnel (nullable) must
 * be a tunnel already saved (only its id is stored; its other fields are
 * not written back).  On any failure nothing is stored.  Blocks. */
gboolean tusk_connection_repo_save (TuskStorage *storage,
                                    const TuskConnectionConfig *config,
                                    GError **error);
/* The same without blocking: @config is copied before the call returns. */
void tusk_connection_repo_save_async (TuskStorage *storage,
                                      const TuskConnectionConfig *config,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean tusk_connection_repo_save_finish (TuskStorage *storage,
                                           GAsyncResult *result,
                                           GError **error);

/* Returns (transfer full) the connection @id, with its tunnel and
 * last_connected_at filled in; free with tusk_connection_config_free().
 * NULL with TUSK_ERROR_NOT_FOUND when there is none, TUSK_ERROR_STORAGE when
 * SQLite fails. */
TuskConnectionConfig *tusk_connection_repo_load (TuskStorage *storage,
                                                 const char *id,
                                                 GError **error);

/* Returns (transfer full) the connection named @name (ASCII case ignored),
 * as tusk_connection_repo_load(); NULL with TUSK_ERROR_NOT_FOUND when no
 * connection has that name. */
TuskConnectionConfig *tusk_connection_repo_find_by_name (TuskStorage *storage,
                                                         const char *name,
                                                         GError **error);

/* Returns (transfer full) every saved connection, most recently connected
 * first, never-connected ones last, ties by name: a GPtrArray of
 * TuskConnectionConfig * whose free function is
 * tusk_connection_config_free() (free the array with g_ptr_array_unref()).
 * NULL only with an error. */
GPtrArray *tusk_connection_repo_load_all (TuskStorage *storage, GError **error);

/* Deletes the connection @id.  Its query history goes with it (ON DELETE
 * CASCADE) and its saved queries stay, detached (connection_id becomes
 * NULL).  The keychain entry is not touched (tusk-credentials.h).
 * TUSK_ERROR_NOT_FOUND when there is no such connection.  Blocks. */
gboolean tusk_connection_repo_delete (TuskStorage *storage, const char *id,
                                      GError **error);
void tusk_connection_repo_delete_async (TuskStorage *storage, const char *id,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
gboolean tusk_connection_repo_delete_finish (TuskStorage *storage,
                                             GAsyncResult *result,
                                             GError **error);

/* Sets the connection's last_connected_at to now (UTC, second resolution).
 * TUSK_ERROR_NOT_FOUND when there is no such connection.  Blocks. */
gboolean tusk_connection_repo_touch (TuskStorage *storage, const char *id,
                                     GError **error);

/* The same, queued to the storage's writer without waiting (a failure is
 * logged there): what connecting uses, so that recording the time never
 * delays a connection.  Any thread. */
void tusk_connection_repo_touch_queue (TuskStorage *storage, const char *id);

G_END_DECLS
