/* tusk-state.c: the central state: what it owns, the open pools, and the
 * connection status with its notifications.
 *
 * Locks (never hold two at once; pthread ones, which ThreadSanitizer sees,
 * and the hand-overs through GLib's main contexts and GTask are announced
 * with tusk_tsan_release/acquire):
 *   lock        (a rwlock) protects connections and pool_options;
 *   connect_mutex + connect_cond protect connecting, the ids whose pool is
 *               being opened, so that two connects of one id open one pool;
 *   watch_mutex protects watches and pending;
 *   prompt->mutex protects the SSH prompt (a leaf).
 *
 * A connection entry exists while its status is not disconnected.  Its
 * transitions: connect_with() makes connecting, then connected (pool and
 * an empty schema cache set; front ends start its load when they need it)
 * or error; tusk_state_disconnect() removes the entry
 * (closing the pool, or cancelling the connect in progress).
 */
#define G_LOG_DOMAIN "tusk-state"

#include "tusk-state.h"

#include <pthread.h>
#include <string.h>

#include "tusk-connection-repo.h"
#include "tusk-data-dir.h"
#include "tusk-error.h"
#include "tusk-log.h"
#include "tusk-pool-private.h"
#include "tusk-runtime-private.h"
#include "tusk-tunnel-repo.h"

#define RUNTIME_THREADS 4

/* Who answers SSH tunnels' questions (tusk_state_set_ssh_prompt ()).
 * Shared with the tunnels, which may outlive the state (a pool kept by a
 * front end): reference-counted, and emptied when the state is freed. */
typedef struct
{
  int ref_count;         /* atomic */
  GMainContext *context; /* the state's; where prompts are shown */
  TuskState *state;      /* valid while func is set */
  pthread_mutex_t mutex; /* protects func, user_data and destroy */
  TuskSshPromptFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
} Prompt;

typedef struct
{
  TuskConnectionState state;
  char *error_message;
  gboolean recoverable;
  TuskPool *pool;            /* set when connected */
  TuskSchemaCache *schema;   /* set when connected; loaded on the runtime */
  TuskSshTunnel *tunnel;     /* the pool's tunnel, if any (a reference) */
  GCancellable *cancellable; /* cancels a connect in progress */
} Entry;

typedef struct
{
  guint id;
  TuskStatusFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
} Watch;

struct _TuskState
{
  char *data_dir;
  pthread_mutex_t storage_mutex; /* held while the storage opens */
  TuskStorage *storage; /* NULL until first needed; then set once, atomic */
  TuskCredentials *credentials;
  TuskRuntime *runtime;
  GMainContext *context;      /* where watchers are called */
  TuskQueryRegistry *queries; /* the running queries */

  pthread_rwlock_t lock;
  GHashTable *connections; /* id → Entry */
  TuskPoolOptions pool_options;

  pthread_mutex_t connect_mutex;
  pthread_cond_t connect_cond;
  GHashTable *connecting; /* set of ids */

  pthread_mutex_t watch_mutex;
  GArray *watches;    /* of Watch */
  GPtrArray *pending; /* GSource* of undelivered notifications */
  guint next_watch_id;

  Prompt *prompt;
  char *ssh_dir; /* nullable; under lock */
};

const char *
tusk_connection_state_to_string (TuskConnectionState state)
{
  switch (state)
    {
      case TUSK_CONNECTION_DISCONNECTED:
        return "disconnected";
      case TUSK_CONNECTION_CONNECTING:
        return "connecting";
      case TUSK_CONNECTION_CONNECTED:
        return "connected";
      case TUSK_CONNECTION_ERROR:
        return "error";
    }
  g_return_val_if_reached ("error");
}

TuskConnectionStatus *
tusk_connection_status_copy (const TuskConnectionStatus *status)
{
  TuskConnectionStatus *copy = g_memdup2 (status, sizeof *status);
  copy->connection_id = g_strdup (status->connection_id);
  copy->error_message = g_strdup (status->error_message);
  return copy;
}

void
tusk_connection_status_free (TuskConnectionStatus *status)
{
  if (status == NULL)
    return;
  g_free (status->connection_id);
  g_free (status->error_message);
  g_free (status);
}

static void
entry_free (Entry *entry)
{
  g_free (entry->error_message);
  g_clear_pointer (&entry->schema, tusk_schema_cache_unref);
  /* The pool keeps its tunnel for the connections still in use. */
  g_clear_pointer (&entry->tunnel, tusk_ssh_tunnel_unref);
  if (entry->pool)
    {
      tusk_pool_close (entry->pool);
      tusk_pool_unref (entry->pool);
    }
  g_cancellable_cancel (entry->cancellable);
  g_object_unref (entry->cancellable);
  g_free (entry);
}

/* Returns (transfer full) the status of @entry (NULL: disconnected).
 * Called with state->lock held. */
static TuskConnectionStatus *
status_of (const char *id, const Entry *entry)
{
  TuskConnectionStatus *status = g_new0 (TuskConnectionStatus, 1);
  status->connection_id = g_strdup (id);
  status->state = entry ? entry->state : TUSK_CONNECTION_DISCONNECTED;
  if (entry)
    {
      status->error_message = g_strdup (entry->error_message);
      status->recoverable = entry->recoverable;
      if (entry->pool)
        tusk_pool_get_status (entry->pool, &status->pool);
    }
  return status;
}

/* ---- notifications ---------------------------------------------------- */

typedef struct
{
  TuskState *state;
  TuskConnectionStatus *status;
  GSource *source;
} Notification;

static void
notification_free (gpointer data)
{
  Notification *n = data;
  tusk_tsan_acquire (n); /* released by notify() */
  tusk_connection_status_free (n->status);
  g_free (n);
}

static gboolean
deliver (gpointer data)
{
  Notification *n = data;
  tusk_tsan_acquire (n); /* released by notify() */
  TuskState *state = n->state;

  pthread_mutex_lock (&state->watch_mutex);
  g_ptr_array_remove_fast (state->pending, n->source);
  g_autoptr (GArray) watches = g_array_copy (state->watches);
  pthread_mutex_unlock (&state->watch_mutex);

  /* A watch removed by an earlier watcher in this loop is still called
   * once; watchers are removed on the main context, so that is the only
   * overlap. */
  for (guint i = 0; i < watches->len; i++)
    {
      Watch *w = &g_array_index (watches, Watch, i);
      w->func (state, n->status, w->user_data);
    }
  return G_SOURCE_REMOVE;
}

/* Queues @status (transfer full) for the watchers on the state's context. */
static void
notify (TuskState *state, TuskConnectionStatus *status)
{
  tusk_debug ("connection %s is %s", status->connection_id,
              tusk_connection_state_to_string (status->state));

  Notification *n = g_new0 (Notification, 1);
  GSource *source = g_idle_source_new ();
  n->state = state;
  n->status = status;
  n->source = source;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, deliver, n, notification_free);
  g_source_set_static_name (source, "[tusk] connection status");

  pthread_mutex_lock (&state->watch_mutex);
  g_ptr_array_add (state->pending, source);
  tusk_tsan_release (n); /* GMainContext's lock is invisible to TSan */
  g_source_attach (source, state->context);
  pthread_mutex_unlock (&state->watch_mutex);
  /* Not n->source: the main context may have delivered and freed n. */
  g_source_unref (source);
}

guint
tusk_state_add_status_watch (TuskState *state, TuskStatusFunc func,
                             gpointer user_data, GDestroyNotify destroy)
{
  g_return_val_if_fail (state != NULL && func != NULL, 0);

  pthread_mutex_lock (&state->watch_mutex);
  Watch watch = { ++state->next_watch_id, func, user_data, destroy };
  g_array_append_val (state->watches, watch);
  pthread_mutex_unlock (&state->watch_mutex);
  return watch.id;
}

void
tusk_state_remove_status_watch (TuskState *state, guint watch_id)
{
  g_return_if_fail (state != NULL);

  Watch removed = { 0 };
  pthread_mutex_lock (&state->watch_mutex);
  for (guint i = 0; i < state->watches->len; i++)
    if (g_array_index (state->watches, Watch, i).id == watch_id)
      {
        removed = g_array_index (state->watches, Watch, i);
        g_array_remove_index (state->watches, i);
        break;
      }
  pthread_mutex_unlock (&state->watch_mutex);
  if (removed.destroy)
    removed.destroy (removed.user_data);
}

/* ---- SSH questions ------------------------------------------------------ */

static Prompt *
prompt_ref (Prompt *prompt)
{
  g_atomic_int_inc (&prompt->ref_count);
  return prompt;
}

static void
prompt_unref (Prompt *prompt)
{
  if (!g_atomic_int_dec_and_test (&prompt->ref_count))
    return;
  g_assert (prompt->func == NULL && prompt->destroy == NULL);
  g_main_context_unref (prompt->context);
  pthread_mutex_destroy (&prompt->mutex);
  g_free (prompt);
}

typedef struct
{
  Prompt *prompt;
  TuskSshQuestion *question;
} PromptCall;

static void
prompt_call_free (gpointer data)
{
  PromptCall *call = data;
  prompt_unref (call->prompt);
  tusk_ssh_question_unref (call->question);
  g_free (call);
}

/* On the state's main context: shows the question, or refuses it when the
 * prompt was removed meanwhile. */
static gboolean
prompt_dispatch (gpointer data)
{
  PromptCall *call = data;
  tusk_tsan_acquire (call); /* released by prompt_ask() */
  Prompt *prompt = call->prompt;

  pthread_mutex_lock (&prompt->mutex);
  TuskSshPromptFunc func = prompt->func;
  gpointer user_data = prompt->user_data;
  TuskState *state = prompt->state;
  pthread_mutex_unlock (&prompt->mutex);

  if (!tusk_ssh_question_is_pending (call->question))
    return G_SOURCE_REMOVE; /* withdrawn before it was shown */
  if (func)
    func (state, call->question, user_data);
  else
    tusk_ssh_question_answer (call->question, FALSE, NULL);
  return G_SOURCE_REMOVE;
}

/* The tunnels' TuskSshAskFunc, on a connecting worker. */
static gboolean
prompt_ask (TuskSshQuestion *question, gpointer data)
{
  Prompt *prompt = data;

  pthread_mutex_lock (&prompt->mutex);
  gboolean interactive = prompt->func != NULL;
  pthread_mutex_unlock (&prompt->mutex);
  if (!interactive)
    return FALSE;

  PromptCall *call = g_new0 (PromptCall, 1);
  call->prompt = prompt_ref (prompt);
  call->question = tusk_ssh_question_ref (question);
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_name (source, "tusk-ssh-question");
  g_source_set_callback (source, prompt_dispatch, call, prompt_call_free);
  tusk_tsan_release (call);
  g_source_attach (source, prompt->context);
  g_source_unref (source);
  return TRUE;
}

void
tusk_state_set_ssh_prompt (TuskState *state, TuskSshPromptFunc func,
                           gpointer user_data, GDestroyNotify destroy)
{
  g_return_if_fail (state != NULL);

  Prompt *prompt = state->prompt;
  pthread_mutex_lock (&prompt->mutex);
  gpointer old_data = prompt->user_data;
  GDestroyNotify old_destroy = prompt->destroy;
  prompt->func = func;
  prompt->user_data = func ? user_data : NULL;
  prompt->destroy = func ? destroy : NULL;
  pthread_mutex_unlock (&prompt->mutex);
  if (old_destroy)
    old_destroy (old_data);
}

void
tusk_state_set_ssh_dir (TuskState *state, const char *ssh_dir)
{
  g_return_if_fail (state != NULL);

  pthread_rwlock_wrlock (&state->lock);
  g_free (state->ssh_dir);
  state->ssh_dir = g_strdup (ssh_dir);
  pthread_rwlock_unlock (&state->lock);
}

/* ---- life ------------------------------------------------------------- */

TuskState *
tusk_state_new (const char *data_dir, GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* Before the first thread: GLib makes its C locale on the first
   * g_ascii_strto*() call, and when one of our threads and the caller's do
   * that at the same moment, the waiting one can come back with EAGAIN in
   * errno, which g_ascii_string_to_unsigned() reports as "not a number"
   * (seen as `tusk conn edit -p 1` refused, about 1 run in 150). */
  g_ascii_strtoull ("0", NULL, 10);

  g_autofree char *dir = tusk_data_dir_resolve (data_dir);
  if (!tusk_data_dir_ensure (dir, error))
    return NULL;

  g_autofree char *log_dir = g_build_filename (dir, "logs", NULL);
  tusk_log_init (log_dir);
  gint64 started = g_get_monotonic_time ();

  TuskState *state = g_new0 (TuskState, 1);
  state->data_dir = g_steal_pointer (&dir);
  pthread_mutex_init (&state->storage_mutex, NULL);
  state->credentials = tusk_credentials_new ();
  state->runtime = tusk_runtime_new (RUNTIME_THREADS);
  state->queries = tusk_query_registry_new ();
  state->context = g_main_context_ref_thread_default ();
  pthread_rwlock_init (&state->lock, NULL);
  state->connections = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify)entry_free);
  tusk_pool_options_init (&state->pool_options);
  pthread_mutex_init (&state->connect_mutex, NULL);
  pthread_cond_init (&state->connect_cond, NULL);
  state->connecting
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  pthread_mutex_init (&state->watch_mutex, NULL);
  state->watches = g_array_new (FALSE, FALSE, sizeof (Watch));
  state->pending = g_ptr_array_new ();
  state->prompt = g_new0 (Prompt, 1);
  state->prompt->ref_count = 1;
  state->prompt->context = g_main_context_ref (state->context);
  state->prompt->state = state;
  pthread_mutex_init (&state->prompt->mutex, NULL);

  tusk_info ("state ready in %.1f ms; data directory %s",
             (g_get_monotonic_time () - started) / 1000.0, state->data_dir);
  return state;
}

void
tusk_state_free (TuskState *state)
{
  if (state == NULL)
    return;

  /* 0. No more SSH questions to the front end: those not yet shown are
   * refused, those shown are withdrawn as their connects are cancelled. */
  tusk_state_set_ssh_prompt (state, NULL, NULL, NULL);

  /* 1. Cancel running queries and connects in progress, and close every
   * pool (connections in use close as they come back). */
  tusk_query_registry_cancel_connection (state->queries, NULL);
  g_autoptr (GPtrArray) tunnels
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_ssh_tunnel_unref);
  pthread_rwlock_wrlock (&state->lock);
  GHashTableIter iter;
  Entry *entry;
  g_hash_table_iter_init (&iter, state->connections);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&entry))
    if (entry->tunnel)
      g_ptr_array_add (tunnels, tusk_ssh_tunnel_ref (entry->tunnel));
  g_hash_table_remove_all (state->connections);
  pthread_rwlock_unlock (&state->lock);

  /* Wait for connects that were running to notice. */
  pthread_mutex_lock (&state->connect_mutex);
  while (g_hash_table_size (state->connecting) > 0)
    pthread_cond_wait (&state->connect_cond, &state->connect_mutex);
  pthread_mutex_unlock (&state->connect_mutex);

  /* 2. The runtime: lets work already running finish. */
  tusk_runtime_free (state->runtime);
  tusk_query_registry_unref (state->queries);

  /* SSH tunnels stop now, even if a pool that owns one is still referenced
   * (by the front end, or by a result not yet delivered to the main
   * context): their threads must not outlive the state, which the program
   * may follow with exit (). */
  for (guint i = 0; i < tunnels->len; i++)
    tusk_ssh_tunnel_close (tunnels->pdata[i]);

  /* 3. Storage: drains the writer.  4. Keychain: wipes session secrets. */
  if (state->storage)
    tusk_storage_close (state->storage);
  pthread_mutex_destroy (&state->storage_mutex);
  tusk_credentials_free (state->credentials);

  /* Notifications not yet delivered are dropped. */
  pthread_mutex_lock (&state->watch_mutex);
  for (guint i = 0; i < state->pending->len; i++)
    g_source_destroy (state->pending->pdata[i]);
  g_ptr_array_set_size (state->pending, 0);
  pthread_mutex_unlock (&state->watch_mutex);
  while (state->watches->len > 0)
    tusk_state_remove_status_watch (
        state, g_array_index (state->watches, Watch, 0).id);

  g_hash_table_unref (state->connections);
  g_hash_table_unref (state->connecting);
  pthread_rwlock_destroy (&state->lock);
  pthread_mutex_destroy (&state->connect_mutex);
  pthread_cond_destroy (&state->connect_cond);
  pthread_mutex_destroy (&state->watch_mutex);
  g_array_unref (state->watches);
  g_ptr_array_unref (state->pending);
  g_main_context_unref (state->context);
  prompt_unref (state->prompt);
  g_free (state->ssh_dir);
  g_free (state->data_dir);
  g_free (state);

  /* 5. Logs last, so that everything above could still log. */
  tusk_log_shutdown ();
}

const char *
tusk_state_get_data_dir (TuskState *state)
{
  g_return_val_if_fail (state != NULL, NULL);
  return state->data_dir;
}

TuskStorage *
tusk_state_open_storage (TuskState *state, GError **error)
{
  g_return_val_if_fail (state != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  TuskStorage *storage = g_atomic_pointer_get (&state->storage);
  if (storage)
    return storage;
  pthread_mutex_lock (&state->storage_mutex);
  storage = state->storage;
  if (storage == NULL)
    {
      gint64 started = g_get_monotonic_time ();
      storage = tusk_storage_open (state->data_dir, error);
      if (storage && tusk_storage_was_reset (storage))
        tusk_warn ("%s", tusk_storage_get_reset_message (storage));
      if (storage)
        tusk_debug ("storage open in %.1f ms",
                    (g_get_monotonic_time () - started) / 1000.0);
      g_atomic_pointer_set (&state->storage, storage);
    }
  pthread_mutex_unlock (&state->storage_mutex);
  return storage;
}

TuskStorage *
tusk_state_get_storage (TuskState *state)
{
  g_return_val_if_fail (state != NULL, NULL);
  return g_atomic_pointer_get (&state->storage);
}

TuskCredentials *
tusk_state_get_credentials (TuskState *state)
{
  g_return_val_if_fail (state != NULL, NULL);
  return state->credentials;
}

TuskQueryRegistry *
tusk_state_get_query_registry (TuskState *state)
{
  g_return_val_if_fail (state != NULL, NULL);
  return state->queries;
}

TuskRuntime *
tusk_state_get_runtime (TuskState *state)
{
  g_return_val_if_fail (state != NULL, NULL);
  return state->runtime;
}

void
tusk_state_set_pool_options (TuskState *state, const TuskPoolOptions *options)
{
  g_return_if_fail (state != NULL && options != NULL);
  pthread_rwlock_wrlock (&state->lock);
  state->pool_options = *options;
  pthread_rwlock_unlock (&state->lock);
}

/* ---- saving and deleting ------------------------------------------------ */

gboolean
tusk_state_save_connection_sync (TuskState *state,
                                 const TuskConnectionConfig *config,
                                 const char *password,
                                 GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (state != NULL && config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  TuskStorage *storage = tusk_state_open_storage (state, error);
  if (storage == NULL || !tusk_connection_repo_save (storage, config, error))
    return FALSE;
  if (password == NULL)
    return TRUE;

  g_autoptr (GError) local = NULL;
  if (!tusk_credentials_store_sync (state->credentials, TUSK_CREDENTIAL_KIND_DB,
                                    config->id, config->name, password,
                                    cancellable, &local))
    {
      g_propagate_prefixed_error (
          error, g_steal_pointer (&local),
          "Connection \"%s\" was saved, but its password was not: ",
          config->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
tusk_state_delete_connection_sync (TuskState *state, const char *connection_id,
                                   GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (state != NULL && connection_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  tusk_state_disconnect (state, connection_id);
  TuskStorage *storage = tusk_state_open_storage (state, error);
  if (storage == NULL
      || !tusk_connection_repo_delete (storage, connection_id, error))
    return FALSE;
  return tusk_credentials_delete_sync (state->credentials,
                                       TUSK_CREDENTIAL_KIND_DB, connection_id,
                                       cancellable, error);
}

gboolean
tusk_state_save_tunnel_sync (TuskState *state,
                             const TuskSshTunnelConfig *tunnel,
                             const char *secret, GCancellable *cancellable,
                             GError **error)
{
  g_return_val_if_fail (state != NULL && tunnel != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  TuskStorage *storage = tusk_state_open_storage (state, error);
  if (storage == NULL || !tusk_tunnel_repo_save (storage, tunnel, error))
    return FALSE;
  if (secret == NULL)
    return TRUE;

  g_autoptr (GError) local = NULL;
  if (!tusk_credentials_store_sync (state->credentials,
                                    TUSK_CREDENTIAL_KIND_SSH, tunnel->id,
                                    tunnel->name, secret, cancellable, &local))
    {
      g_propagate_prefixed_error (
          error, g_steal_pointer (&local),
          "SSH tunnel \"%s\" was saved, but its secret was not: ",
          tunnel->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
tusk_state_delete_tunnel_sync (TuskState *state, const char *tunnel_id,
                               GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (state != NULL && tunnel_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  TuskStorage *storage = tusk_state_open_storage (state, error);
  if (storage == NULL || !tusk_tunnel_repo_delete (storage, tunnel_id, error))
    return FALSE;
  return tusk_credentials_delete_sync (state->credentials,
                                       TUSK_CREDENTIAL_KIND_SSH, tunnel_id,
                                       cancellable, error);
}

/* ---- connecting -----------------------------------------------------------
 */

/* Moves the entry of @id to @new_state and notifies.  Only
 * TUSK_CONNECTION_CONNECTING creates the entry (and returns its cancellable
 * in @cancellable_out, transfer full); the other states apply only while
 * the entry still exists, so a disconnect during a connect wins.  Returns
 * FALSE when there was no entry to update. */
static gboolean
set_status (TuskState *state, const char *id, TuskConnectionState new_state,
            const GError *error, TuskPool *pool, TuskSshTunnel *tunnel,
            GCancellable **cancellable_out)
{
  pthread_rwlock_wrlock (&state->lock);
  Entry *entry = g_hash_table_lookup (state->connections, id);
  if (entry == NULL && new_state != TUSK_CONNECTION_CONNECTING)
    {
      pthread_rwlock_unlock (&state->lock);
      return FALSE;
    }
  if (entry == NULL)
    {
      entry = g_new0 (Entry, 1);
      entry->cancellable = g_cancellable_new ();
      g_hash_table_insert (state->connections, g_strdup (id), entry);
    }
  entry->state = new_state;
  g_clear_pointer (&entry->error_message, g_free);
  entry->recoverable = FALSE;
  if (error)
    {
      g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
      entry->error_message = g_strdup (info->message);
      entry->recoverable = info->recoverable;
    }
  if (pool)
    {
      entry->pool = tusk_pool_ref (pool);
      entry->schema = tusk_schema_cache_new (pool);
      entry->tunnel = tunnel ? tusk_ssh_tunnel_ref (tunnel) : NULL;
    }
  if (cancellable_out)
    *cancellable_out = g_object_ref (entry->cancellable);
  TuskConnectionStatus *status = status_of (id, entry);
  pthread_rwlock_unlock (&state->lock);

  notify (state, status);
  return TRUE;
}

static gboolean
tunnel_prepare (gpointer tunnel, GCancellable *cancellable, GError **error)
{
  return tusk_ssh_tunnel_ensure_sync (tunnel, cancellable, error);
}

/* Opens @config's SSH tunnel, then a pool through it that owns the tunnel
 * (and re-establishes it before opening a connection, should it drop). */
static TuskPool *
pool_through_tunnel (TuskState *state, const TuskConnectionConfig *config,
                     const char *password, const TuskPoolOptions *options,
                     TuskSshTunnel **tunnel_out, GCancellable *cancellable,
                     GError **error)
{
  const TuskSshTunnelConfig *tunnel_config = config->ssh_tunnel;
  GError *local = NULL;

  if (!tusk_connection_config_validate (config, error))
    return NULL;

  char *secret = tusk_credentials_lookup_sync (
      state->credentials, TUSK_CREDENTIAL_KIND_SSH, tunnel_config->id,
      cancellable, &local);
  if (local && local->code == TUSK_ERROR_QUERY_CANCELLED)
    {
      g_propagate_error (error, local);
      return NULL;
    }
  if (local)
    {
      tusk_warn ("Could not read the secret of SSH tunnel \"%s\" from the "
                 "keychain: %s",
                 tunnel_config->name, local->message);
      g_clear_error (&local);
    }

  g_autofree char *known_hosts
      = g_build_filename (state->data_dir, "known_hosts", NULL);
  pthread_rwlock_rdlock (&state->lock);
  g_autofree char *ssh_dir = g_strdup (state->ssh_dir);
  pthread_rwlock_unlock (&state->lock);
  TuskSshTunnelOptions tunnel_options = {
    .ssh_dir = ssh_dir,
    .known_hosts = known_hosts,
    .secret = secret,
    .connect_timeout_secs = config->options.connect_timeout_secs,
    .ask = prompt_ask,
    .ask_data = prompt_ref (state->prompt),
    .ask_data_destroy = (GDestroyNotify)prompt_unref,
  };
  TuskSshTunnel *tunnel
      = tusk_ssh_tunnel_open_sync (tunnel_config, config->host, config->port,
                                   &tunnel_options, cancellable, error);
  tusk_credentials_secret_free (secret);
  if (tunnel == NULL)
    return NULL;

  *tunnel_out = tusk_ssh_tunnel_ref (tunnel);
  TuskPoolRoute route = {
    .hostaddr = "127.0.0.1",
    .port = tusk_ssh_tunnel_get_local_port (tunnel),
    /* A socket directory on the far side is reached over TCP here. */
    .host = config->host[0] == '/' ? "localhost" : NULL,
    .prepare = tunnel_prepare,
    .data = tunnel, /* the pool's from now on */
    .destroy = (GDestroyNotify)tusk_ssh_tunnel_unref,
  };
  TuskPool *pool = tusk_pool_new_routed_sync (config, password, options, &route,
                                              cancellable, error);
  if (pool == NULL)
    g_clear_pointer (tunnel_out, tusk_ssh_tunnel_unref);
  return pool;
}

/* Opens (or returns) the pool of @id.  @config is NULL for a saved
 * connection, loaded here; @password is used only with @config. */
static TuskPool *
connect_with (TuskState *state, const char *id,
              const TuskConnectionConfig *config, const char *password,
              GCancellable *cancellable, GError **error)
{
  /* One connect per id at a time; a second caller waits for the first
   * and shares its pool. */
  pthread_mutex_lock (&state->connect_mutex);
  while (g_hash_table_contains (state->connecting, id))
    pthread_cond_wait (&state->connect_cond, &state->connect_mutex);
  TuskPool *pool = tusk_state_get_pool (state, id);
  if (pool == NULL)
    g_hash_table_add (state->connecting, g_strdup (id));
  pthread_mutex_unlock (&state->connect_mutex);
  if (pool)
    return pool;

  g_autoptr (GCancellable) entry_cancellable = NULL;
  set_status (state, id, TUSK_CONNECTION_CONNECTING, NULL, NULL, NULL,
              &entry_cancellable);
  gulong handler = 0;
  if (cancellable)
    handler
        = g_cancellable_connect (cancellable, G_CALLBACK (g_cancellable_cancel),
                                 entry_cancellable, NULL);

  g_autoptr (TuskConnectionConfig) loaded = NULL;
  g_autoptr (TuskSshTunnel) tunnel = NULL;
  char *secret = NULL;
  GError *local = NULL;
  if (config == NULL)
    {
      TuskStorage *storage = tusk_state_open_storage (state, &local);
      loaded = storage ? tusk_connection_repo_load (storage, id, &local) : NULL;
      config = loaded;
      if (config)
        secret = tusk_credentials_lookup_sync (state->credentials,
                                               TUSK_CREDENTIAL_KIND_DB, id,
                                               entry_cancellable, &local);
      password = secret;
    }

  if (local == NULL)
    {
      pthread_rwlock_rdlock (&state->lock);
      TuskPoolOptions options = state->pool_options;
      pthread_rwlock_unlock (&state->lock);
      if (config->ssh_tunnel)
        pool = pool_through_tunnel (state, config, password, &options, &tunnel,
                                    entry_cancellable, &local);
      else
        pool = tusk_pool_new_sync (config, password, &options,
                                   entry_cancellable, &local);
    }
  tusk_credentials_secret_free (secret);
  g_cancellable_disconnect (cancellable, handler);

  gboolean disconnected = g_cancellable_is_cancelled (entry_cancellable);
  if (pool && !disconnected)
    disconnected = !set_status (state, id, TUSK_CONNECTION_CONNECTED, NULL,
                                pool, tunnel, NULL);
  else if (local && !disconnected)
    disconnected = !set_status (state, id, TUSK_CONNECTION_ERROR, local, NULL,
                                NULL, NULL);

  if (disconnected)
    {
      /* tusk_state_disconnect () (or free) removed the entry. */
      if (pool)
        tusk_pool_close (pool);
      g_clear_pointer (&pool, tusk_pool_unref);
      g_clear_error (&local);
      tusk_set_error (&local, TUSK_ERROR_QUERY_CANCELLED, NULL,
                      "Connecting was cancelled");
    }
  else if (pool && loaded)
    tusk_connection_repo_touch_queue (tusk_state_get_storage (state), id);

  pthread_mutex_lock (&state->connect_mutex);
  g_hash_table_remove (state->connecting, id);
  pthread_cond_broadcast (&state->connect_cond);
  pthread_mutex_unlock (&state->connect_mutex);

  if (local)
    g_propagate_error (error, local);
  return pool;
}

TuskPool *
tusk_state_connect_sync (TuskState *state, const char *connection_id,
                         GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (state != NULL && connection_id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return connect_with (state, connection_id, NULL, NULL, cancellable, error);
}

TuskPool *
tusk_state_connect_config_sync (TuskState *state,
                                const TuskConnectionConfig *config,
                                const char *password, GCancellable *cancellable,
                                GError **error)
{
  g_return_val_if_fail (state != NULL && config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return connect_with (state, config->id, config, password, cancellable, error);
}

typedef struct
{
  TuskState *state;
  char *connection_id;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  g_free (data->connection_id);
  g_free (data);
}

static void
connect_thread (GTask *task, gpointer source, gpointer task_data,
                GCancellable *cancellable)
{
  ConnectData *data = task_data;
  GError *error = NULL;
  (void)source;
  TuskPool *pool = tusk_state_connect_sync (data->state, data->connection_id,
                                            cancellable, &error);
  tusk_tsan_release (task); /* acquired by tusk_state_connect_finish() */
  if (pool)
    g_task_return_pointer (task, pool, (GDestroyNotify)tusk_pool_unref);
  else
    g_task_return_error (task, error);
}

void
tusk_state_connect_async (TuskState *state, const char *connection_id,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (state != NULL && connection_id != NULL);

  ConnectData *data = g_new0 (ConnectData, 1);
  data->state = state;
  data->connection_id = g_strdup (connection_id);
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tusk_state_connect_async);
  g_task_set_task_data (task, data, (GDestroyNotify)connect_data_free);
  tusk_runtime_run_in_thread (state->runtime, task, connect_thread);
}

TuskPool *
tusk_state_connect_finish (TuskState *state, GAsyncResult *result,
                           GError **error)
{
  g_return_val_if_fail (state != NULL, NULL);
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  tusk_tsan_acquire (result);
  return g_task_propagate_pointer (G_TASK (result), error);
}

gboolean
tusk_state_disconnect (TuskState *state, const char *connection_id)
{
  g_return_val_if_fail (state != NULL && connection_id != NULL, FALSE);

  tusk_query_registry_cancel_connection (state->queries, connection_id);
  pthread_rwlock_wrlock (&state->lock);
  gboolean found = g_hash_table_remove (state->connections, connection_id);
  pthread_rwlock_unlock (&state->lock);

  if (found)
    notify (state, status_of (connection_id, NULL));
  return found;
}

TuskPool *
tusk_state_get_pool (TuskState *state, const char *connection_id)
{
  g_return_val_if_fail (state != NULL && connection_id != NULL, NULL);

  pthread_rwlock_rdlock (&state->lock);
  Entry *entry = g_hash_table_lookup (state->connections, connection_id);
  TuskPool *pool = entry && entry->pool ? tusk_pool_ref (entry->pool) : NULL;
  pthread_rwlock_unlock (&state->lock);
  return pool;
}

TuskSchemaCache *
tusk_state_dup_schema_cache (TuskState *state, const char *connection_id)
{
  g_return_val_if_fail (state != NULL && connection_id != NULL, NULL);

  pthread_rwlock_rdlock (&state->lock);
  Entry *entry = g_hash_table_lookup (state->connections, connection_id);
  TuskSchemaCache *schema
      = entry && entry->schema ? tusk_schema_cache_ref (entry->schema) : NULL;
  pthread_rwlock_unlock (&state->lock);
  return schema;
}

TuskConnectionStatus *
tusk_state_get_status (TuskState *state, const char *connection_id)
{
  g_return_val_if_fail (state != NULL && connection_id != NULL, NULL);

  pthread_rwlock_rdlock (&state->lock);
  TuskConnectionStatus *status = status_of (
      connection_id, g_hash_table_lookup (state->connections, connection_id));
  pthread_rwlock_unlock (&state->lock);
  return status;
}

static int
compare_status (gconstpointer a, gconstpointer b)
{
  const TuskConnectionStatus *x = *(TuskConnectionStatus *const *)a;
  const TuskConnectionStatus *y = *(TuskConnectionStatus *const *)b;
  return strcmp (x->connection_id, y->connection_id);
}

GPtrArray *
tusk_state_list_connections (TuskState *state)
{
  g_return_val_if_fail (state != NULL, NULL);

  GPtrArray *list = g_ptr_array_new_with_free_func (
      (GDestroyNotify)tusk_connection_status_free);
  pthread_rwlock_rdlock (&state->lock);
  GHashTableIter iter;
  gpointer id, entry;
  g_hash_table_iter_init (&iter, state->connections);
  while (g_hash_table_iter_next (&iter, &id, &entry))
    g_ptr_array_add (list, status_of (id, entry));
  pthread_rwlock_unlock (&state->lock);
  g_ptr_array_sort (list, compare_status);
  return list;
}
