/* tusk-tunnel-repo.h: the saved SSH tunnels (table `ssh_tunnels`).
 *
 * A tunnel is stored without its password or key passphrase (those live in
 * the keychain under "ssh:{id}").  Connections refer to a tunnel by id
 * (tusk-connection-repo.h); deleting a tunnel detaches them (their
 * ssh_tunnel_id becomes NULL, ON DELETE SET NULL) and they keep working
 * without it.
 *
 * Thread rules: as tusk-connection-repo.h: any thread; reads on the calling
 * thread; plain writes block until committed; _async variants call back on
 * the caller's thread-default main context.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-connection-config.h"
#include "tusk-storage.h"

G_BEGIN_DECLS

/* Saves @tunnel (transfer none): inserts it, or updates the row with the
 * same id (created_at kept).  Validates with
 * tusk_ssh_tunnel_config_validate() (which also checks that the key file
 * exists when the method is key): one TUSK_ERROR_VALIDATION naming each bad
 * field; nothing is stored then.
 * Blocks. */
gboolean tusk_tunnel_repo_save (TuskStorage *storage,
                                const TuskSshTunnelConfig *tunnel,
                                GError **error);
/* The same without blocking: @tunnel is copied before the call returns. */
void tusk_tunnel_repo_save_async (TuskStorage *storage,
                                  const TuskSshTunnelConfig *tunnel,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
gboolean tusk_tunnel_repo_save_finish (TuskStorage *storage,
                                       GAsyncResult *result, GError **error);

/* Returns (transfer full) the tunnel @id; free with
 * tusk_ssh_tunnel_config_free().  NULL with TUSK_ERROR_NOT_FOUND when there
 * is none. */
TuskSshTunnelConfig *tusk_tunnel_repo_load (TuskStorage *storage,
                                            const char *id, GError **error);

/* Returns (transfer full) every saved tunnel ordered by name: a GPtrArray of
 * TuskSshTunnelConfig * freeing its elements with
 * tusk_ssh_tunnel_config_free().  NULL only with an error. */
GPtrArray *tusk_tunnel_repo_load_all (TuskStorage *storage, GError **error);

/* Deletes the tunnel @id; connections using it are detached.
 * TUSK_ERROR_NOT_FOUND when there is no such tunnel.  Blocks. */
gboolean tusk_tunnel_repo_delete (TuskStorage *storage, const char *id,
                                  GError **error);
void tusk_tunnel_repo_delete_async (TuskStorage *storage, const char *id,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
gboolean tusk_tunnel_repo_delete_finish (TuskStorage *storage,
                                         GAsyncResult *result, GError **error);

G_END_DECLS
