/* tusk-state.h: TuskState, the one object a front end holds (data model
 * "TuskState").
 *
 * A state is made from a data directory and owns everything else: the
 * logs, the local storage, the credentials, the runtime's worker threads,
 * and the pools of the connections that are open.  Saving and deleting
 * connections through the state keeps the keychain in step with the
 * storage; connecting reads the password from the keychain (and, when none
 * is stored, lets libpq find one in PGPASSWORD or ~/.pgpass).
 *
 * Connection status (disconnected, connecting, connected, error) is kept
 * per connection id; every change is delivered to the watchers on the main
 * context that was the thread-default one when the state was created (the
 * UI thread's).
 *
 * Thread rules: a state is shared by every thread.  Functions ending in
 * _sync block (storage, keychain, network): call them on a worker, never on
 * the UI thread; use the _async forms there.  The rest never block on I/O
 * and may be called from any thread.  tusk_state_free() is called once, by
 * the owner, on the thread that created the state.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-connection-config.h"
#include "tusk-credentials.h"
#include "tusk-pool.h"
#include "tusk-query.h"
#include "tusk-runtime.h"
#include "tusk-schema.h"
#include "tusk-ssh-tunnel.h"
#include "tusk-storage.h"

G_BEGIN_DECLS

typedef struct _TuskState TuskState;

typedef enum
{
  TUSK_CONNECTION_DISCONNECTED,
  TUSK_CONNECTION_CONNECTING,
  TUSK_CONNECTION_CONNECTED,
  TUSK_CONNECTION_ERROR,
} TuskConnectionState;

/* "disconnected", "connecting", "connected", "error". */
const char *tusk_connection_state_to_string (TuskConnectionState state);

/**
 * TuskConnectionStatus:
 *
 * Plain data; free with tusk_connection_status_free().
 */
typedef struct
{
  char *connection_id;
  TuskConnectionState state;
  char *error_message;  /* nullable: set in TUSK_CONNECTION_ERROR */
  gboolean recoverable; /* in TUSK_CONNECTION_ERROR: trying again can work */
  TuskPoolStatus pool;  /* all zero unless connected */
} TuskConnectionStatus;

TuskConnectionStatus *
tusk_connection_status_copy (const TuskConnectionStatus *status);
void tusk_connection_status_free (TuskConnectionStatus *status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskConnectionStatus,
                               tusk_connection_status_free)

/* Called on the state's main context for every status change; @status is
 * borrowed for the call. */
typedef void (*TuskStatusFunc) (TuskState *state,
                                const TuskConnectionStatus *status,
                                gpointer user_data);

/**
 * tusk_state_new:
 * @data_dir: (nullable): the data directory; %NULL resolves it as
 *   tusk_data_dir_resolve() does
 * @error: return location for a TUSK_ERROR
 *
 * Prepares the data directory and starts logging into {data_dir}/logs.
 * Everything else starts when first needed: the storage
 * (tusk_state_open_storage()), the keychain's probe (the first credentials
 * call) and the runtime's workers (up to 4, as jobs arrive), so that a
 * front end that needs none of them (a `tusk -c` on a URI) never pays for
 * them.  Blocks briefly (SC-002: < 100 ms); call from main() or the UI
 * thread at start-up.  Keychain trouble is not an error: see
 * tusk_credentials_is_available().
 *
 * Returns: (transfer full) (nullable): the state, or %NULL with
 *   TUSK_ERROR_STORAGE when the data directory cannot be used.  Free with
 *   tusk_state_free().
 */
TuskState *tusk_state_new (const char *data_dir, GError **error);

/**
 * tusk_state_free:
 *
 * Shuts down in order: cancels running work, closes every pool, drains the
 * storage writer, stops the keychain thread (wiping session passwords),
 * stops the runtime, flushes and stops logging.  Blocks until done.
 */
void tusk_state_free (TuskState *state);

/**
 * tusk_state_open_storage:
 *
 * Opens {data_dir}/tusk.db on the first call (a few milliseconds: blocks,
 * any thread); later calls return the same storage at once.  Storage that
 * had to be reset is not an error (a warning is logged): see
 * tusk_storage_was_reset().  The state's own functions that need the
 * storage call this themselves.
 *
 * Returns: (transfer none) (nullable): the storage, valid until
 *   tusk_state_free(), or %NULL with TUSK_ERROR_STORAGE when it refuses to
 *   open (a changed migration); a later call tries again.
 */
TuskStorage *tusk_state_open_storage (TuskState *state, GError **error);

/* Borrowed parts, valid until tusk_state_free().  The storage is NULL
 * until tusk_state_open_storage() has opened it. */
const char *tusk_state_get_data_dir (TuskState *state);
TuskStorage *tusk_state_get_storage (TuskState *state);
TuskCredentials *tusk_state_get_credentials (TuskState *state);
TuskRuntime *tusk_state_get_runtime (TuskState *state);
/* The running queries: front ends pass it in TuskQueryOptions.registry so
 * that disconnecting (and freeing the state) cancels them. */
TuskQueryRegistry *tusk_state_get_query_registry (TuskState *state);

/* The options every new pool gets (copied); change before connecting. */
void tusk_state_set_pool_options (TuskState *state,
                                  const TuskPoolOptions *options);

/**
 * tusk_state_save_connection_sync:
 * @config: the connection; validated, then saved (inserted or updated)
 * @password: (nullable): stored in the keychain under "db:{id}" when not
 *   %NULL (an empty string stores an empty password); the caller wipes its
 *   copy
 *
 * Saves @config, and then its password.  If storing the password fails the
 * config stays saved and the error says the password was not stored.
 * Blocks.
 */
gboolean tusk_state_save_connection_sync (TuskState *state,
                                          const TuskConnectionConfig *config,
                                          const char *password,
                                          GCancellable *cancellable,
                                          GError **error);

/* Disconnects @connection_id if connected, deletes it (its history goes
 * with it, its saved queries stay, detached) and its keychain password.
 * Blocks.  TUSK_ERROR_NOT_FOUND for an unknown id. */
gboolean tusk_state_delete_connection_sync (TuskState *state,
                                            const char *connection_id,
                                            GCancellable *cancellable,
                                            GError **error);

/* The same for SSH tunnels: @secret (nullable) is the tunnel's password or
 * key passphrase, kept under "ssh:{id}". */
gboolean tusk_state_save_tunnel_sync (TuskState *state,
                                      const TuskSshTunnelConfig *tunnel,
                                      const char *secret,
                                      GCancellable *cancellable,
                                      GError **error);
gboolean tusk_state_delete_tunnel_sync (TuskState *state, const char *tunnel_id,
                                        GCancellable *cancellable,
                                        GError **error);

/**
 * TuskSshPromptFunc:
 * @state: the state
 * @question: (transfer none): what a connecting SSH tunnel asks (an unknown
 *   host key to confirm, a key passphrase, a password); take a reference
 *   to keep it past the call
 * @user_data: the data given to tusk_state_set_ssh_prompt()
 *
 * Shows @question to the user.  Called on the state's main context (the
 * thread-default one when the state was created: the UI thread); must not
 * block: answer now or later, from any thread, with
 * tusk_ssh_question_answer().  The connect waits for the answer; cancelling
 * the connect (or disconnecting, or freeing the state) withdraws the
 * question (tusk_ssh_question_get_cancellable()).
 */
typedef void (*TuskSshPromptFunc) (TuskState *state, TuskSshQuestion *question,
                                   gpointer user_data);

/**
 * tusk_state_set_ssh_prompt:
 * @func: (nullable): the prompt; %NULL makes connects non-interactive
 *   (the default): an unknown host key is refused with its fingerprint in
 *   the error, and a missing passphrase or password is an error
 * @destroy: (nullable): frees @user_data when the prompt is replaced or the
 *   state freed; called on the state's thread
 *
 * Sets who answers SSH tunnels' questions.  Call on the state's thread (the
 * one that created it).  A question already delivered keeps its answer
 * path; one not yet delivered goes to the new prompt.
 */
void tusk_state_set_ssh_prompt (TuskState *state, TuskSshPromptFunc func,
                                gpointer user_data, GDestroyNotify destroy);

/* Where SSH tunnels read the user's SSH settings: config, known_hosts and
 * default keys (copied; %NULL, the default: ~/.ssh).  Tusk's own known_hosts
 * is {data_dir}/known_hosts either way.  For a front end's option and for
 * tests; applies to tunnels opened afterwards.  Any thread. */
void tusk_state_set_ssh_dir (TuskState *state, const char *ssh_dir);

/**
 * tusk_state_connect_sync:
 * @connection_id: a saved connection's id
 *
 * Opens a pool for the saved connection (its password from the keychain,
 * else libpq's PGPASSWORD / ~/.pgpass), records the connection time, and
 * keeps the pool and a schema cache until disconnect.  Connecting an id that is
 * already connected returns the same pool.  Status goes connecting → connected,
 * or → error with the message.  Blocks.
 *
 * A connection with an SSH tunnel first opens the tunnel
 * (tusk-ssh-tunnel.h): its password or key passphrase from the keychain
 * ("ssh:{tunnel_id}"), questions to the prompt (tusk_state_set_ssh_prompt()),
 * host keys against ~/.ssh/known_hosts and {data_dir}/known_hosts.  The pool
 * then connects through it (hostaddr 127.0.0.1 and the tunnel's port, host
 * the database host, so that sslmode verify-full checks the database's
 * name); the tunnel lives as long as the pool, and a tunnel that dropped is
 * re-established when the pool next opens a connection.  Its failures are
 * TUSK_ERROR_SSH (or TUSK_ERROR_VALIDATION for a missing key file).
 *
 * Returns: (transfer full) (nullable): a reference to the pool
 *   (tusk_pool_unref()), or %NULL with @error set.
 */
TuskPool *tusk_state_connect_sync (TuskState *state, const char *connection_id,
                                   GCancellable *cancellable, GError **error);

/* The same for a config that need not be saved (a URI given on a command
 * line): the pool is kept under @config's id; @password (nullable) is used
 * and not stored. */
TuskPool *tusk_state_connect_config_sync (TuskState *state,
                                          const TuskConnectionConfig *config,
                                          const char *password,
                                          GCancellable *cancellable,
                                          GError **error);

/* tusk_state_connect_sync() on the runtime; @callback runs on the calling
 * thread's thread-default main context and calls _finish. */
void tusk_state_connect_async (TuskState *state, const char *connection_id,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data);
TuskPool *tusk_state_connect_finish (TuskState *state, GAsyncResult *result,
                                     GError **error);

/* Cancels the running queries of @connection_id (those registered in the
 * state's query registry), closes its pool (connections still in use close
 * as they come back), drops its schema cache and marks it disconnected.  Never
 * blocks on the network.  Returns FALSE if it was not connected. */
gboolean tusk_state_disconnect (TuskState *state, const char *connection_id);

/* Returns (transfer full) (nullable) a reference to the open pool of
 * @connection_id, or NULL when it is not connected. */
TuskPool *tusk_state_get_pool (TuskState *state, const char *connection_id);

/* Returns (transfer full) (nullable) a reference to the schema cache of
 * @connection_id (tusk_schema_cache_unref()), or NULL when it is not
 * connected.  It starts empty: nothing is loaded until a front end asks
 * (tusk_schema_cache_ensure_async(), e.g. when its status watch sees the
 * connection connected), so a short-lived client never pays for the
 * catalog; until a load is done tusk_schema_cache_dup_snapshot() answers
 * NULL. */
TuskSchemaCache *tusk_state_dup_schema_cache (TuskState *state,
                                              const char *connection_id);

/* Returns (transfer full) the status of @connection_id (disconnected when
 * unknown); free with tusk_connection_status_free(). */
TuskConnectionStatus *tusk_state_get_status (TuskState *state,
                                             const char *connection_id);

/* Returns (transfer full) the status of every connection that is not
 * disconnected, as TuskConnectionStatus*, sorted by id; free with
 * g_ptr_array_unref(). */
GPtrArray *tusk_state_list_connections (TuskState *state);

/* Adds a watcher of status changes; returns its id for
 * tusk_state_remove_status_watch().  @destroy (nullable) frees @user_data
 * when the watch is removed or the state freed. */
guint tusk_state_add_status_watch (TuskState *state, TuskStatusFunc func,
                                   gpointer user_data, GDestroyNotify destroy);
void tusk_state_remove_status_watch (TuskState *state, guint watch_id);

G_END_DECLS
