/* tusk-query.c: executing SQL on a pool connection, whole or streamed,
 * cancellable in every phase, with history.
 *
 * Design note.
 *
 * An execution is an Exec, shared (reference-counted) by the call that
 * started it, the run (one reference from start to exec_end ()), the jobs
 * and sources that act for it, and the sources that deliver its events.
 * It runs in one of two places:
 *
 *   - On a runtime worker (streams, everything when the fast path does not
 *     apply; _sync runs the same code on the calling thread): a blocking
 *     loop that polls the socket and the thread's wake pipe.
 *   - On the caller's thread (the fast path of tusk_query_execute_async(),
 *     taken when an idle connection is at hand without waiting, or the
 *     caller passed its own, and the calling thread may run its
 *     thread-default main context): the query is sent from inside
 *     execute_async without blocking (first: the handle and result are
 *     made while the server works), the socket is watched by one
 *     persistent GSource per main context (FastSource), and a small result
 *     is read and delivered there with no thread hop at all.  Past
 *     FAST_MAX_BYTES of rows, at a COPY, or when type names need catalog
 *     queries, the connection is handed to a worker, which goes on with the
 *     blocking code; a big result is never parsed on the caller's thread.
 *
 * execute_async's callback gets a QueryAsyncResult, a minimal GAsyncResult
 * (GTask cost as much as the rest of a small query), reused on its thread
 * when the callback kept no reference to it.  Jobs are plain runtime jobs
 * (tusk_runtime_run_func ()).
 *
 * Exec.phase and what moves it:
 *
 *   QUEUED --exec_run(): on a worker: acquire, PQsendQuery-->  WORKER
 *   QUEUED --fast_start(): try-acquire, PQsendQuery-->          FAST
 *   FAST   --fast_step(): socket ready, results read-->         FAST
 *   FAST   --fast_hand_over(): many rows, a COPY-->             WORKER
 *   FAST   --fast_finish(): ReadyForQuery-->                    DONE
 *   WORKER --run_pump() returns: ReadyForQuery-->               DONE
 *   DONE   --exec_end(): connection released, history queued,
 *             handle unregistered, DONE delivered (at once on the
 *             caller's thread, else through an events source)-->  (gone)
 *
 * A cancel reaches the execution through its handle's hook
 * (exec_on_cancelled(), on the cancelling thread).  On the fast path the
 * hook starts cancel_job(); a worker is woken through its wake pipe and
 * starts it itself, once its statement is on the wire.  cancel_job() sends
 * the cancel request on a thread of its own (tusk_runtime_run_urgent()),
 * because PQcancel blocks until the server's cancel process has exited,
 * some 8 ms after the error it causes has reached the reader.  A _sync
 * execution (no runtime) sends it from its own thread.
 *
 * Invariants:
 *   1. One thread at a time touches the PGconn: the caller's in FAST, a
 *      worker in WORKER (the hand-over goes through the runtime's queue).
 *      Neither blocks inside libpq while a statement runs (the catalog
 *      lookups of type names, on a worker, are the one exception: short
 *      queries on an idle connection).  The caller's thread never blocks on
 *      the network: the socket is non-blocking while it reads, and PQcancel
 *      runs on a worker.
 *   2. A connection goes back to the pool only after PQgetResult() returned
 *      NULL (ReadyForQuery), with the pool's notice receiver and blocking
 *      mode restored, and never while a cancel request for it is being
 *      sent (cancel_job RUNNING): then cancel_job() releases it when it
 *      is done, after DONE was delivered.  The caller's own connection
 *      (options->conn) is the caller's again at DONE, so its DONE waits
 *      for the request instead.  No catalog lookup runs on a connection
 *      while a request for it may be on its way.
 *   3. The consumer sees: columns (per row-returning statement) before that
 *      statement's batches, batches in order, notices, then exactly one
 *      DONE, never from inside the call that started the execution.
 *   4. in_flight (stream batches posted, not yet consumed) never exceeds
 *      max_in_flight: the worker waits on `cond` before reading on.
 *   5. A result is reported as cancelled iff the server said 57014 for a
 *      user cancel, or it was never sent, or rows were dropped because of
 *      the cancel (a worker drops rows read after a cancel; the caller's
 *      thread keeps the few it reads, so that a statement whose results
 *      were complete before the server saw the cancel returns them).
 *
 * Materialized results (execute) are read in single-row mode, like
 * streams, and packed into batches of `batch_size` rows: per batch one
 * buffer holding the values back to back, NUL-terminated, and 32-bit
 * offsets (TuskRowBatch), so they take less memory than libpq's own
 * PGresult (16 bytes of length and pointer per value) at the price of one
 * copy of each value out of the single-row result.  A whole PGresult is
 * still kept as it is, without a copy, where libpq delivers one.
 *
 * Lock rules: a handle's lock protects its cancellable's creation and its
 * hook, and is held while the hook runs, which takes Exec.lock, which may
 * take the runtime's queue lock: that is the order.  Exec.lock protects the
 * event queue, `scheduled`, `in_flight`, `wake_fd`, `phase` and the cancel
 * job's state.  type_caches_lock and the registry locks are leaves.  None
 * is held during network I/O or while a caller's callback runs.  All are
 * pthread locks, which ThreadSanitizer sees (GLib's are futexes it cannot).
 */
#define G_LOG_DOMAIN "tusk-query"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tusk-query.h"
#include "tusk-query-private.h"

#include "tusk-connection-repo.h"
#include "tusk-error-private.h"
#include "tusk-history-repo.h"
#include "tusk-log.h"
#include "tusk-pool-private.h"
#include "tusk-runtime-private.h"

/* g_new0 () for the structs made per query: glibc's calloc () skips the
 * per-thread cache that malloc () uses, and costs several times as much. */
#define new0(type) ((type *)memset (g_malloc (sizeof (type)), 0, sizeof (type)))

/* ---- handles ----------------------------------------------------------- */

struct TuskQueryHandle
{
  gatomicrefcount ref;
  char id[37];         /* a random (version 4) UUID */
  char *connection_id; /* in the same block as the handle */
  char *sql;           /* likewise */
  gint64 started_at;
  int in_flight;      /* atomic: batches posted, not yet consumed */
  int in_flight_peak; /* atomic: the most there ever were */
  int rows_read;      /* atomic: rows of the current statement read, as of
                         the last batch or read on the caller's thread */
  int cancelled;      /* atomic; set once, under lock */

  pthread_mutex_t lock;         /* protects cancellable, handler and the hook */
  GCancellable *cancellable;    /* the caller's, or our own made on demand */
  gulong handler;               /* ours, on cancellable */
  void (*hook) (gpointer data); /* the running execution's reaction to a
                                   cancel; runs under lock */
  gpointer hook_data;
};

/* Query ids come from a per-thread xoshiro256** generator seeded from
 * g_random (itself seeded from the system's entropy): g_uuid_string_random ()
 * costs some 7,000 instructions an id (a global lock, printf), this about a
 * hundred.  The ids are random version 4 UUIDs (RFC 4122): unique in
 * practice, not secrets. */
typedef struct
{
  guint64 s[4];
} IdRng;

static GPrivate id_rng_key = G_PRIVATE_INIT (g_free);

static inline guint64
rotl64 (guint64 x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static guint64
id_rng_next (IdRng *rng)
{
  guint64 *s = rng->s;
  guint64 result = rotl64 (s[1] * 5, 7) * 9;
  guint64 t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64 (s[3], 45);
  return result;
}

static void
uuid_v4 (char out[37])
{
  static const char hex[] = "0123456789abcdef";
  IdRng *rng = g_private_get (&id_rng_key);
  if (rng == NULL)
    {
      rng = g_new (IdRng, 1);
      for (int i = 0; i < 4; i++)
        rng->s[i] = ((guint64)g_random_int () << 32) | g_random_int ();
      if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = 1;
      g_private_set (&id_rng_key, rng);
    }
  guint64 hi = id_rng_next (rng), lo = id_rng_next (rng);
  hi = (hi & ~G_GUINT64_CONSTANT (0xf000)) | 0x4000;        /* version 4 */
  lo = (lo >> 2) | G_GUINT64_CONSTANT (0x8000000000000000); /* variant 10 */
  /* Nibbles from the most significant, dashes after 8, 12, 16, 20. */
  char *p = out;
  for (int i = 60; i >= 0; i -= 4)
    {
      *p++ = hex[(hi >> i) & 15];
      if (i == 32 || i == 16 || i == 0)
        *p++ = '-';
    }
  for (int i = 60; i >= 0; i -= 4)
    {
      *p++ = hex[(lo >> i) & 15];
      if (i == 48)
        *p++ = '-';
    }
  *p = '\0';
}

/* Marks @handle cancelled (once) and runs its execution's hook; then
 * cancels its cancellable too, for those who watch that (a no-op when the
 * cancellable is what got here).  Any thread. */
static void
handle_mark_cancelled (TuskQueryHandle *handle)
{
  GCancellable *cancellable = NULL;
  pthread_mutex_lock (&handle->lock);
  if (!g_atomic_int_get (&handle->cancelled))
    {
      g_atomic_int_set (&handle->cancelled, 1);
      if (handle->hook)
        handle->hook (handle->hook_data);
      if (handle->cancellable)
        cancellable = g_object_ref (handle->cancellable);
    }
  pthread_mutex_unlock (&handle->lock);
  /* Outside the lock: its handlers (ours included) run inside. */
  if (cancellable)
    {
      g_cancellable_cancel (cancellable);
      g_object_unref (cancellable);
    }
}

static void
on_cancellable_cancelled (GCancellable *cancellable, gpointer data)
{
  (void)cancellable;
  handle_mark_cancelled (data);
}

/* Sets (@hook non-NULL) or clears what a cancel of @handle does for the
 * execution running it; a hook set on a handle cancelled already runs at
 * once.  The hook runs under the handle's lock: it must be short and never
 * block.  Once a clear has returned, the old hook neither runs nor will. */
static void
handle_set_hook (TuskQueryHandle *handle, void (*hook) (gpointer data),
                 gpointer data)
{
  pthread_mutex_lock (&handle->lock);
  handle->hook = hook;
  handle->hook_data = data;
  if (hook && g_atomic_int_get (&handle->cancelled))
    hook (data);
  pthread_mutex_unlock (&handle->lock);
}

static gboolean
handle_is_cancelled (TuskQueryHandle *handle)
{
  return g_atomic_int_get (&handle->cancelled) != 0;
}

static TuskQueryHandle *
handle_new (const char *connection_id, const char *sql,
            GCancellable *cancellable)
{
  /* One block: the handle, then its two strings. */
  gsize id_size = strlen (connection_id) + 1, sql_size = strlen (sql) + 1;
  TuskQueryHandle *handle
      = g_malloc (sizeof (TuskQueryHandle) + id_size + sql_size);
  memset (handle, 0, sizeof *handle);
  g_atomic_ref_count_init (&handle->ref);
  uuid_v4 (handle->id);
  handle->connection_id = memcpy ((char *)(handle + 1), connection_id, id_size);
  handle->sql = memcpy (handle->connection_id + id_size, sql, sql_size);
  handle->started_at = g_get_real_time ();
  pthread_mutex_init (&handle->lock, NULL);
  if (cancellable)
    {
      handle->cancellable = g_object_ref (cancellable);
      /* Marks the handle at once if it is cancelled already. */
      handle->handler = g_cancellable_connect (
          cancellable, G_CALLBACK (on_cancellable_cancelled), handle, NULL);
    }
  return handle;
}

TuskQueryHandle *
tusk_query_handle_ref (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, NULL);
  g_atomic_ref_count_inc (&handle->ref);
  return handle;
}

void
tusk_query_handle_unref (TuskQueryHandle *handle)
{
  if (handle == NULL)
    return;
  tusk_tsan_release (handle);
  if (!g_atomic_ref_count_dec (&handle->ref))
    return;
  tusk_tsan_acquire (handle);
  if (handle->cancellable)
    {
      /* Waits for our handler if it runs on another thread now. */
      g_cancellable_disconnect (handle->cancellable, handle->handler);
      g_object_unref (handle->cancellable);
    }
  pthread_mutex_destroy (&handle->lock);
  g_free (handle);
}

const char *
tusk_query_handle_get_id (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, NULL);
  return handle->id;
}

const char *
tusk_query_handle_get_connection_id (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, NULL);
  return handle->connection_id;
}

const char *
tusk_query_handle_get_sql (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, NULL);
  return handle->sql;
}

gint64
tusk_query_handle_get_started_at (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, 0);
  return handle->started_at;
}

/* Without a caller's cancellable, the handle makes its own on the first
 * call (most executions never need one: tusk_query_handle_cancel() works
 * without); it is cancelled already if the handle is. */
GCancellable *
tusk_query_handle_get_cancellable (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, NULL);
  pthread_mutex_lock (&handle->lock);
  if (handle->cancellable == NULL)
    {
      handle->cancellable = g_cancellable_new ();
      if (g_atomic_int_get (&handle->cancelled))
        g_cancellable_cancel (handle->cancellable); /* no handler yet */
      else
        handle->handler = g_cancellable_connect (
            handle->cancellable, G_CALLBACK (on_cancellable_cancelled), handle,
            NULL);
    }
  GCancellable *cancellable = handle->cancellable;
  pthread_mutex_unlock (&handle->lock);
  return cancellable;
}

void
tusk_query_handle_cancel (TuskQueryHandle *handle)
{
  g_return_if_fail (handle != NULL);
  handle_mark_cancelled (handle);
}

gboolean
tusk_query_handle_is_cancelled (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, FALSE);
  return handle_is_cancelled (handle);
}

guint
tusk_query_handle_get_batches_in_flight (TuskQueryHandle *handle)
{
  return (guint)g_atomic_int_get (&handle->in_flight);
}

guint
tusk_query_handle_get_batches_in_flight_peak (TuskQueryHandle *handle)
{
  return (guint)g_atomic_int_get (&handle->in_flight_peak);
}

guint
tusk_query_handle_get_rows_read (TuskQueryHandle *handle)
{
  return (guint)g_atomic_int_get (&handle->rows_read);
}

/* ---- the registry ------------------------------------------------------ */

struct TuskQueryRegistry
{
  gatomicrefcount ref;
  pthread_mutex_t lock; /* protects by_id */
  GHashTable *by_id; /* id (owned by the handle) -> TuskQueryHandle * (ref) */
};

TuskQueryRegistry *
tusk_query_registry_new (void)
{
  TuskQueryRegistry *registry = g_new0 (TuskQueryRegistry, 1);
  g_atomic_ref_count_init (&registry->ref);
  pthread_mutex_init (&registry->lock, NULL);
  registry->by_id = g_hash_table_new_full (
      g_str_hash, g_str_equal, NULL, (GDestroyNotify)tusk_query_handle_unref);
  return registry;
}

TuskQueryRegistry *
tusk_query_registry_ref (TuskQueryRegistry *registry)
{
  g_return_val_if_fail (registry != NULL, NULL);
  g_atomic_ref_count_inc (&registry->ref);
  return registry;
}

void
tusk_query_registry_unref (TuskQueryRegistry *registry)
{
  if (registry == NULL)
    return;
  tusk_tsan_release (registry);
  if (!g_atomic_ref_count_dec (&registry->ref))
    return;
  tusk_tsan_acquire (registry);
  g_hash_table_unref (registry->by_id);
  pthread_mutex_destroy (&registry->lock);
  g_free (registry);
}

void
tusk_query_registry_add (TuskQueryRegistry *registry, TuskQueryHandle *handle)
{
  g_return_if_fail (registry != NULL && handle != NULL);
  pthread_mutex_lock (&registry->lock);
  g_hash_table_replace (registry->by_id, handle->id,
                        tusk_query_handle_ref (handle));
  pthread_mutex_unlock (&registry->lock);
}

void
tusk_query_registry_remove (TuskQueryRegistry *registry,
                            TuskQueryHandle *handle)
{
  g_return_if_fail (registry != NULL && handle != NULL);
  pthread_mutex_lock (&registry->lock);
  if (g_hash_table_lookup (registry->by_id, handle->id) == handle)
    g_hash_table_remove (registry->by_id, handle->id);
  pthread_mutex_unlock (&registry->lock);
}

TuskQueryHandle *
tusk_query_registry_lookup (TuskQueryRegistry *registry, const char *query_id)
{
  g_return_val_if_fail (registry != NULL && query_id != NULL, NULL);
  pthread_mutex_lock (&registry->lock);
  TuskQueryHandle *handle = g_hash_table_lookup (registry->by_id, query_id);
  if (handle)
    tusk_query_handle_ref (handle);
  pthread_mutex_unlock (&registry->lock);
  return handle;
}

gboolean
tusk_query_registry_cancel (TuskQueryRegistry *registry, const char *query_id)
{
  g_autoptr (TuskQueryHandle) handle
      = tusk_query_registry_lookup (registry, query_id);
  if (handle == NULL)
    return FALSE;
  /* Outside the lock: cancelled handlers run inside g_cancellable_cancel(). */
  tusk_query_handle_cancel (handle);
  return TRUE;
}

static int
compare_started (gconstpointer a, gconstpointer b)
{
  const TuskQueryHandle *x = *(TuskQueryHandle *const *)a;
  const TuskQueryHandle *y = *(TuskQueryHandle *const *)b;
  if (x->started_at != y->started_at)
    return x->started_at < y->started_at ? -1 : 1;
  return strcmp (x->id, y->id);
}

GPtrArray *
tusk_query_registry_list (TuskQueryRegistry *registry,
                          const char *connection_id)
{
  g_return_val_if_fail (registry != NULL, NULL);
  GPtrArray *list = g_ptr_array_new_with_free_func (
      (GDestroyNotify)tusk_query_handle_unref);
  pthread_mutex_lock (&registry->lock);
  GHashTableIter iter;
  gpointer value;
  g_hash_table_iter_init (&iter, registry->by_id);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      TuskQueryHandle *handle = value;
      if (connection_id == NULL
          || g_strcmp0 (handle->connection_id, connection_id) == 0)
        g_ptr_array_add (list, tusk_query_handle_ref (handle));
    }
  pthread_mutex_unlock (&registry->lock);
  g_ptr_array_sort (list, compare_started);
  return list;
}

guint
tusk_query_registry_cancel_connection (TuskQueryRegistry *registry,
                                       const char *connection_id)
{
  g_autoptr (GPtrArray) list
      = tusk_query_registry_list (registry, connection_id);
  for (guint i = 0; i < list->len; i++)
    tusk_query_handle_cancel (list->pdata[i]);
  return list->len;
}

/* ---- plain values ------------------------------------------------------ */

const char *
tusk_query_type_to_string (TuskQueryType type)
{
  switch (type)
    {
      case TUSK_QUERY_TYPE_SELECT:
        return "select";
      case TUSK_QUERY_TYPE_INSERT:
        return "insert";
      case TUSK_QUERY_TYPE_UPDATE:
        return "update";
      case TUSK_QUERY_TYPE_DELETE:
        return "delete";
      case TUSK_QUERY_TYPE_OTHER:
      default:
        return "other";
    }
}

const char *
tusk_transaction_status_to_string (TuskTransactionStatus status)
{
  switch (status)
    {
      case TUSK_TRANSACTION_IDLE:
        return "idle";
      case TUSK_TRANSACTION_IN_TRANSACTION:
        return "in transaction";
      case TUSK_TRANSACTION_FAILED:
        return "failed";
      case TUSK_TRANSACTION_UNKNOWN:
      default:
        return "unknown";
    }
}

TuskColumnInfo *
tusk_column_info_copy (const TuskColumnInfo *column)
{
  g_return_val_if_fail (column != NULL, NULL);
  TuskColumnInfo *copy = g_new0 (TuskColumnInfo, 1);
  copy->name = g_strdup (column->name);
  copy->type_oid = column->type_oid;
  copy->type_modifier = column->type_modifier;
  copy->type_name = g_strdup (column->type_name);
  copy->table_oid = column->table_oid;
  copy->table_column = column->table_column;
  return copy;
}

void
tusk_column_info_free (TuskColumnInfo *column)
{
  if (column == NULL)
    return;
  g_free (column->name);
  g_free (column->type_name);
  g_free (column);
}

TuskNotice *
tusk_notice_copy (const TuskNotice *notice)
{
  g_return_val_if_fail (notice != NULL, NULL);
  TuskNotice *copy = g_new0 (TuskNotice, 1);
  copy->severity = g_strdup (notice->severity);
  copy->sqlstate = g_strdup (notice->sqlstate);
  copy->message = g_strdup (notice->message);
  copy->detail = g_strdup (notice->detail);
  copy->hint = g_strdup (notice->hint);
  return copy;
}

void
tusk_notice_free (TuskNotice *notice)
{
  if (notice == NULL)
    return;
  g_free (notice->severity);
  g_free (notice->sqlstate);
  g_free (notice->message);
  g_free (notice->detail);
  g_free (notice->hint);
  g_free (notice);
}

/* ---- row batches ------------------------------------------------------- */

/* A batch holds its values either in a PGresult (rows that came whole: read
 * in place) or in one arena: the values back to back, each NUL-terminated,
 * cell i spanning offsets[i] .. offsets[i + 1], which is its length plus
 * one, or nothing for SQL NULL (no separate NULL flags).  So a cell costs
 * its text, one terminator and a 4-byte offset, against 16 bytes of length
 * and pointer in a PGresult.  The 32-bit offsets bound a batch's text to
 * 4 GiB: a row that would not fit starts a new batch (one row always fits,
 * since a protocol message is at most 1 GB). */
struct TuskRowBatch
{
  gatomicrefcount ref;
  guint n_rows;
  guint n_columns;
  guint64 first_row;
  PGresult *res;
  char *data;
  guint32 *offsets; /* n_rows * n_columns + 1 */
};

TuskRowBatch *
tusk_row_batch_ref (TuskRowBatch *batch)
{
  g_return_val_if_fail (batch != NULL, NULL);
  g_atomic_ref_count_inc (&batch->ref);
  return batch;
}

void
tusk_row_batch_unref (TuskRowBatch *batch)
{
  if (batch == NULL)
    return;
  tusk_tsan_release (batch);
  if (!g_atomic_ref_count_dec (&batch->ref))
    return;
  tusk_tsan_acquire (batch);
  PQclear (batch->res);
  g_free (batch->data);
  g_free (batch->offsets);
  g_free (batch);
}

guint
tusk_row_batch_get_n_rows (TuskRowBatch *batch)
{
  g_return_val_if_fail (batch != NULL, 0);
  return batch->n_rows;
}

guint
tusk_row_batch_get_n_columns (TuskRowBatch *batch)
{
  g_return_val_if_fail (batch != NULL, 0);
  return batch->n_columns;
}

guint64
tusk_row_batch_get_first_row (TuskRowBatch *batch)
{
  g_return_val_if_fail (batch != NULL, 0);
  return batch->first_row;
}

const char *
tusk_row_batch_get_value (TuskRowBatch *batch, guint row, guint column,
                          gsize *length)
{
  g_return_val_if_fail (batch != NULL, NULL);
  g_return_val_if_fail (row < batch->n_rows && column < batch->n_columns, NULL);
  if (batch->res)
    {
      if (PQgetisnull (batch->res, (int)row, (int)column))
        {
          if (length)
            *length = 0;
          return NULL;
        }
      if (length)
        *length = (gsize)PQgetlength (batch->res, (int)row, (int)column);
      return PQgetvalue (batch->res, (int)row, (int)column);
    }
  gsize cell = (gsize)row * batch->n_columns + column;
  guint32 start = batch->offsets[cell], end = batch->offsets[cell + 1];
  if (end == start)
    {
      if (length)
        *length = 0;
      return NULL;
    }
  if (length)
    *length = end - start - 1;
  return batch->data + start;
}

static TuskRowBatch *
batch_new_from_result (PGresult *res, guint64 first_row)
{
  TuskRowBatch *batch = new0 (TuskRowBatch);
  g_atomic_ref_count_init (&batch->ref);
  batch->res = res;
  batch->n_rows = (guint)PQntuples (res);
  batch->n_columns = (guint)PQnfields (res);
  batch->first_row = first_row;
  return batch;
}

/* Collects single-row results into arena batches of up to `capacity` rows.
 * A statement's first batch starts small and grows (a one-row result costs
 * a few dozen bytes, not a whole batch); later ones are sized after the
 * previous one, so that a big result's arenas are allocated once, not grown
 * through copies. */
typedef struct
{
  TuskRowBatch *batch; /* being filled; NULL when none */
  gsize len, cap;      /* of batch->data */
  guint rows_cap;      /* rows batch->offsets has room for */
  guint capacity;      /* rows per batch */
  gsize last_len;      /* the previous batch's text size */
  guint last_rows;     /* and rows */
  guint64 added;       /* bytes of text added, ever */
  gboolean keep;       /* batches are kept (a whole result): trim them */
} Builder;

static void
builder_open (Builder *b, guint n_columns, guint64 first_row)
{
  TuskRowBatch *batch = new0 (TuskRowBatch);
  g_atomic_ref_count_init (&batch->ref);
  batch->n_columns = n_columns;
  batch->first_row = first_row;
  b->rows_cap = MIN (b->capacity, b->last_rows ? b->last_rows : 8);
  batch->offsets = g_new (guint32, (gsize)b->rows_cap * n_columns + 1);
  batch->offsets[0] = 0;
  b->len = 0;
  b->cap = b->last_len ? b->last_len + b->last_len / 8 : 64;
  batch->data = g_malloc (b->cap);
  b->batch = batch;
}

/* Adds the row of the single-row result @res.  FALSE, adding nothing, when
 * it does not fit in the batch being filled: flush that, and add again. */
static gboolean
builder_add_row (Builder *b, const PGresult *res, guint n_columns,
                 guint64 first_row)
{
  if (b->batch == NULL)
    builder_open (b, n_columns, first_row);
  TuskRowBatch *batch = b->batch;
  if (batch->n_rows == b->rows_cap)
    {
      g_assert (b->rows_cap < b->capacity);
      b->rows_cap = MIN (b->rows_cap * 2, b->capacity);
      batch->offsets = g_renew (guint32, batch->offsets,
                                (gsize)b->rows_cap * n_columns + 1);
    }
  gsize row_start = b->len;
  gsize cell = (gsize)batch->n_rows * n_columns;
  for (guint c = 0; c < n_columns; c++, cell++)
    {
      batch->offsets[cell] = (guint32)b->len;
      /* A NULL has length 0: only an empty value needs the NULL check. */
      gsize n = (gsize)PQgetlength (res, 0, (int)c);
      if (n == 0 && PQgetisnull (res, 0, (int)c))
        continue;
      if (b->len + n + 1 > G_MAXUINT32)
        {
          g_assert (batch->n_rows > 0);
          b->len = row_start;
          return FALSE;
        }
      if (b->len + n + 1 > b->cap)
        {
          b->cap = MIN (MAX (b->cap * 2, b->len + n + 1), (gsize)G_MAXUINT32);
          batch->data = g_realloc (batch->data, b->cap);
        }
      memcpy (batch->data + b->len, PQgetvalue (res, 0, (int)c), n);
      batch->data[b->len + n] = '\0';
      b->len += n + 1;
    }
  batch->offsets[cell] = (guint32)b->len;
  batch->n_rows++;
  b->added += b->len - row_start;
  return TRUE;
}

/* Returns (transfer full) (nullable) the batch being filled, trimmed. */
static TuskRowBatch *
builder_take (Builder *b)
{
  TuskRowBatch *batch = g_steal_pointer (&b->batch);
  if (batch == NULL)
    return NULL;
  /* A kept batch gives back real waste.  A stream's batches live briefly:
   * trimming them costs (the heap shrinks and grows again) and saves
   * nothing. */
  if (b->keep && b->cap - b->len > 4096)
    batch->data = g_realloc (batch->data, MAX (b->len, 1));
  gsize cells = (gsize)batch->n_rows * batch->n_columns + 1;
  if (b->keep
      && ((gsize)b->rows_cap * batch->n_columns + 1 - cells) * sizeof (guint32)
             > 4096)
    batch->offsets = g_renew (guint32, batch->offsets, cells);
  b->last_len = b->len;
  b->last_rows = batch->n_rows;
  return batch;
}

static void
builder_clear (Builder *b)
{
  g_clear_pointer (&b->batch, tusk_row_batch_unref);
}

/* ---- results ----------------------------------------------------------- */

static TuskQueryResult *
result_new (const char *query_id)
{
  TuskQueryResult *result = new0 (TuskQueryResult);
  result->query_id = g_strdup (query_id);
  result->columns
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_column_info_free);
  result->batches
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_row_batch_unref);
  result->notices
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_notice_free);
  result->rows_affected = -1;
  result->query_type = TUSK_QUERY_TYPE_OTHER;
  result->transaction_status = TUSK_TRANSACTION_UNKNOWN;
  return result;
}

static gpointer
copy_column (gconstpointer src, gpointer data)
{
  (void)data;
  return tusk_column_info_copy (src);
}

static gpointer
copy_notice (gconstpointer src, gpointer data)
{
  (void)data;
  return tusk_notice_copy (src);
}

static gpointer
copy_batch (gconstpointer src, gpointer data)
{
  (void)data;
  return tusk_row_batch_ref ((TuskRowBatch *)src);
}

TuskQueryResult *
tusk_query_result_copy (const TuskQueryResult *result)
{
  g_return_val_if_fail (result != NULL, NULL);
  TuskQueryResult *copy = g_new0 (TuskQueryResult, 1);
  *copy = *result;
  copy->query_id = g_strdup (result->query_id);
  copy->command_tag = g_strdup (result->command_tag);
  copy->columns = g_ptr_array_copy (result->columns, copy_column, NULL);
  g_ptr_array_set_free_func (copy->columns,
                             (GDestroyNotify)tusk_column_info_free);
  copy->batches = g_ptr_array_copy (result->batches, copy_batch, NULL);
  g_ptr_array_set_free_func (copy->batches,
                             (GDestroyNotify)tusk_row_batch_unref);
  copy->notices = g_ptr_array_copy (result->notices, copy_notice, NULL);
  g_ptr_array_set_free_func (copy->notices, (GDestroyNotify)tusk_notice_free);
  return copy;
}

void
tusk_query_result_free (TuskQueryResult *result)
{
  if (result == NULL)
    return;
  g_free (result->query_id);
  g_free (result->command_tag);
  g_ptr_array_unref (result->columns);
  g_ptr_array_unref (result->batches);
  g_ptr_array_unref (result->notices);
  g_free (result);
}

/* The batch holding @row (binary search on first_row), or NULL. */
static TuskRowBatch *
result_find_batch (const TuskQueryResult *result, guint64 row, guint *index)
{
  guint lo = 0, hi = result->batches->len;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      TuskRowBatch *batch = result->batches->pdata[mid];
      if (row < batch->first_row)
        hi = mid;
      else if (row >= batch->first_row + batch->n_rows)
        lo = mid + 1;
      else
        {
          *index = (guint)(row - batch->first_row);
          return batch;
        }
    }
  return NULL;
}

const char *
tusk_query_result_get_value (const TuskQueryResult *result, guint64 row,
                             guint column)
{
  g_return_val_if_fail (result != NULL, NULL);
  guint index = 0;
  TuskRowBatch *batch = result_find_batch (result, row, &index);
  g_return_val_if_fail (batch != NULL, NULL);
  return tusk_row_batch_get_value (batch, index, column, NULL);
}

gboolean
tusk_query_result_is_null (const TuskQueryResult *result, guint64 row,
                           guint column)
{
  return tusk_query_result_get_value (result, row, column) == NULL;
}

void
tusk_query_options_init (TuskQueryOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->batch_size = TUSK_QUERY_DEFAULT_BATCH_SIZE;
  options->max_batches_in_flight = TUSK_QUERY_DEFAULT_MAX_BATCHES_IN_FLIGHT;
}

/* ---- type names -------------------------------------------------------- */

/* format_type (oid, -1) of every built-in type (oid < 10000), as PostgreSQL
 * 15 prints it; OIDs below FirstGenbkiObjectId never change between
 * versions.  Sorted by OID for bsearch.  Generated with
 *   SELECT oid, format_type (oid, -1) FROM pg_type
 *   WHERE oid < 10000 AND typtype IN ('b','r','m','p','d') ORDER BY oid */
typedef struct
{
  guint32 oid;
  const char *name;
} BuiltinType;

static const BuiltinType builtin_types[] = {
  { 16, "boolean" },
  { 17, "bytea" },
  { 18, "\"char\"" },
  { 19, "name" },
  { 20, "bigint" },
  { 21, "smallint" },
  { 22, "int2vector" },
  { 23, "integer" },
  { 24, "regproc" },
  { 25, "text" },
  { 26, "oid" },
  { 27, "tid" },
  { 28, "xid" },
  { 29, "cid" },
  { 30, "oidvector" },
  { 32, "pg_ddl_command" },
  { 114, "json" },
  { 142, "xml" },
  { 143, "xml[]" },
  { 194, "pg_node_tree" },
  { 199, "json[]" },
  { 210, "pg_type[]" },
  { 269, "table_am_handler" },
  { 270, "pg_attribute[]" },
  { 271, "xid8[]" },
  { 272, "pg_proc[]" },
  { 273, "pg_class[]" },
  { 325, "index_am_handler" },
  { 600, "point" },
  { 601, "lseg" },
  { 602, "path" },
  { 603, "box" },
  { 604, "polygon" },
  { 628, "line" },
  { 629, "line[]" },
  { 650, "cidr" },
  { 651, "cidr[]" },
  { 700, "real" },
  { 701, "double precision" },
  { 705, "unknown" },
  { 718, "circle" },
  { 719, "circle[]" },
  { 774, "macaddr8" },
  { 775, "macaddr8[]" },
  { 790, "money" },
  { 791, "money[]" },
  { 829, "macaddr" },
  { 869, "inet" },
  { 1000, "boolean[]" },
  { 1001, "bytea[]" },
  { 1002, "\"char\"[]" },
  { 1003, "name[]" },
  { 1005, "smallint[]" },
  { 1006, "int2vector[]" },
  { 1007, "integer[]" },
  { 1008, "regproc[]" },
  { 1009, "text[]" },
  { 1010, "tid[]" },
  { 1011, "xid[]" },
  { 1012, "cid[]" },
  { 1013, "oidvector[]" },
  { 1014, "bpchar[]" },
  { 1015, "character varying[]" },
  { 1016, "bigint[]" },
  { 1017, "point[]" },
  { 1018, "lseg[]" },
  { 1019, "path[]" },
  { 1020, "box[]" },
  { 1021, "real[]" },
  { 1022, "double precision[]" },
  { 1027, "polygon[]" },
  { 1028, "oid[]" },
  { 1033, "aclitem" },
  { 1034, "aclitem[]" },
  { 1040, "macaddr[]" },
  { 1041, "inet[]" },
  { 1042, "bpchar" },
  { 1043, "character varying" },
  { 1082, "date" },
  { 1083, "time without time zone" },
  { 1114, "timestamp without time zone" },
  { 1115, "timestamp without time zone[]" },
  { 1182, "date[]" },
  { 1183, "time without time zone[]" },
  { 1184, "timestamp with time zone" },
  { 1185, "timestamp with time zone[]" },
  { 1186, "interval" },
  { 1187, "interval[]" },
  { 1231, "numeric[]" },
  { 1263, "cstring[]" },
  { 1266, "time with time zone" },
  { 1270, "time with time zone[]" },
  { 1560, "\"bit\"" },
  { 1561, "\"bit\"[]" },
  { 1562, "bit varying" },
  { 1563, "bit varying[]" },
  { 1700, "numeric" },
  { 1790, "refcursor" },
  { 2201, "refcursor[]" },
  { 2202, "regprocedure" },
  { 2203, "regoper" },
  { 2204, "regoperator" },
  { 2205, "regclass" },
  { 2206, "regtype" },
  { 2207, "regprocedure[]" },
  { 2208, "regoper[]" },
  { 2209, "regoperator[]" },
  { 2210, "regclass[]" },
  { 2211, "regtype[]" },
  { 2249, "record" },
  { 2275, "cstring" },
  { 2276, "\"any\"" },
  { 2277, "anyarray" },
  { 2278, "void" },
  { 2279, "trigger" },
  { 2280, "language_handler" },
  { 2281, "internal" },
  { 2283, "anyelement" },
  { 2287, "record[]" },
  { 2776, "anynonarray" },
  { 2949, "txid_snapshot[]" },
  { 2950, "uuid" },
  { 2951, "uuid[]" },
  { 2970, "txid_snapshot" },
  { 3115, "fdw_handler" },
  { 3220, "pg_lsn" },
  { 3221, "pg_lsn[]" },
  { 3310, "tsm_handler" },
  { 3361, "pg_ndistinct" },
  { 3402, "pg_dependencies" },
  { 3500, "anyenum" },
  { 3614, "tsvector" },
  { 3615, "tsquery" },
  { 3642, "gtsvector" },
  { 3643, "tsvector[]" },
  { 3644, "gtsvector[]" },
  { 3645, "tsquery[]" },
  { 3734, "regconfig" },
  { 3735, "regconfig[]" },
  { 3769, "regdictionary" },
  { 3770, "regdictionary[]" },
  { 3802, "jsonb" },
  { 3807, "jsonb[]" },
  { 3831, "anyrange" },
  { 3838, "event_trigger" },
  { 3904, "int4range" },
  { 3905, "int4range[]" },
  { 3906, "numrange" },
  { 3907, "numrange[]" },
  { 3908, "tsrange" },
  { 3909, "tsrange[]" },
  { 3910, "tstzrange" },
  { 3911, "tstzrange[]" },
  { 3912, "daterange" },
  { 3913, "daterange[]" },
  { 3926, "int8range" },
  { 3927, "int8range[]" },
  { 4072, "jsonpath" },
  { 4073, "jsonpath[]" },
  { 4089, "regnamespace" },
  { 4090, "regnamespace[]" },
  { 4096, "regrole" },
  { 4097, "regrole[]" },
  { 4191, "regcollation" },
  { 4192, "regcollation[]" },
  { 4451, "int4multirange" },
  { 4532, "nummultirange" },
  { 4533, "tsmultirange" },
  { 4534, "tstzmultirange" },
  { 4535, "datemultirange" },
  { 4536, "int8multirange" },
  { 4537, "anymultirange" },
  { 4538, "anycompatiblemultirange" },
  { 4600, "pg_brin_bloom_summary" },
  { 4601, "pg_brin_minmax_multi_summary" },
  { 5017, "pg_mcv_list" },
  { 5038, "pg_snapshot" },
  { 5039, "pg_snapshot[]" },
  { 5069, "xid8" },
  { 5077, "anycompatible" },
  { 5078, "anycompatiblearray" },
  { 5079, "anycompatiblenonarray" },
  { 5080, "anycompatiblerange" },
  { 6150, "int4multirange[]" },
  { 6151, "nummultirange[]" },
  { 6152, "tsmultirange[]" },
  { 6153, "tstzmultirange[]" },
  { 6155, "datemultirange[]" },
  { 6157, "int8multirange[]" },
};

static int
compare_builtin (const void *key, const void *item)
{
  guint32 oid = *(const guint32 *)key;
  const BuiltinType *type = item;
  return oid < type->oid ? -1 : oid > type->oid ? 1 : 0;
}

static const char *
builtin_name (guint32 oid)
{
  const BuiltinType *type
      = bsearch (&oid, builtin_types, G_N_ELEMENTS (builtin_types),
                 sizeof builtin_types[0], compare_builtin);
  return type ? type->name : NULL;
}

/* The element types whose modifiers are printed here as format_type() and
 * their typmodout functions do; interval's field masks are left to the
 * server. */
static char *
builtin_with_modifier (guint32 oid, int typmod)
{
  int n = typmod - 4; /* VARHDRSZ */
  switch (oid)
    {
      case 1042: /* bpchar; bpchartypmodout prints nothing up to VARHDRSZ */
        return n > 0 ? g_strdup_printf ("character(%d)", n)
                     : g_strdup ("character");
      case 1043: /* varchar */
        return n > 0 ? g_strdup_printf ("character varying(%d)", n)
                     : g_strdup ("character varying");
      case 1700: /* numeric: precision, then an 11-bit signed scale */
        if (n < 0)
          return g_strdup ("numeric");
        return g_strdup_printf ("numeric(%d,%d)", (n >> 16) & 0xffff,
                                ((n & 0x7ff) ^ 1024) - 1024);
      case 1083:
        return g_strdup_printf ("time(%d) without time zone", typmod);
      case 1266:
        return g_strdup_printf ("time(%d) with time zone", typmod);
      case 1114:
        return g_strdup_printf ("timestamp(%d) without time zone", typmod);
      case 1184:
        return g_strdup_printf ("timestamp(%d) with time zone", typmod);
      case 1560:
        return g_strdup_printf ("bit(%d)", typmod);
      case 1562:
        return g_strdup_printf ("bit varying(%d)", typmod);
      default:
        return NULL;
    }
}

/* The arrays of the types above, and their elements. */
static guint32
array_element (guint32 oid)
{
  static const guint32 pairs[][2] = {
    { 1014, 1042 }, { 1015, 1043 }, { 1231, 1700 },
    { 1183, 1083 }, { 1270, 1266 }, { 1115, 1114 },
    { 1185, 1184 }, { 1561, 1560 }, { 1563, 1562 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (pairs); i++)
    if (pairs[i][0] == oid)
      return pairs[i][1];
  return 0;
}

char *
tusk_query_builtin_type_name (guint32 oid, int typmod)
{
  if (typmod < 0)
    return g_strdup (builtin_name (oid));
  char *name = builtin_with_modifier (oid, typmod);
  if (name)
    return name;
  guint32 element = array_element (oid);
  if (element == 0)
    return NULL;
  g_autofree char *inner = builtin_with_modifier (element, typmod);
  return g_strconcat (inner, "[]", NULL);
}

/* Names of other types (user types, interval with fields), per server
 * connection, keyed by (oid, typmod).  A cache belongs to one PGconn and
 * the backend it talks to; the table keeps the most recently used
 * TYPE_CACHE_MAX of them (a PGconn freed by the pool just ages out; its
 * address coming back for a new connection is caught by the backend pid).
 * Names of user types can go stale after ALTER TYPE … RENAME or a
 * search_path change: such a connection gets the new name once the pool
 * replaces it. */
#define TYPE_CACHE_MAX 64

typedef struct
{
  int backend_pid;
  gint64 last_used;
  gboolean preloaded;
  GHashTable *names; /* gint64 * (oid << 32 | typmod) -> char * */
  /* gint64 * (table oid << 32 | attnum) -> the domain's name, or "" when
   * the column's type is not a domain */
  GHashTable *domains;
} TypeCache;

/* protects type_caches and every TypeCache */
static pthread_mutex_t type_caches_lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *type_caches; /* PGconn * -> TypeCache * */

static void
type_cache_free (TypeCache *cache)
{
  g_hash_table_unref (cache->names);
  g_hash_table_unref (cache->domains);
  g_free (cache);
}

static gint64
type_key (guint32 oid, int typmod)
{
  return (gint64)(((guint64)oid << 32) | (guint32)typmod);
}

/* Returns the cache of @pg; type_caches_lock held. */
static TypeCache *
type_cache_get_locked (PGconn *pg)
{
  if (type_caches == NULL)
    type_caches = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                         (GDestroyNotify)type_cache_free);
  TypeCache *cache = g_hash_table_lookup (type_caches, pg);
  int pid = PQbackendPID (pg);
  if (cache && cache->backend_pid != pid)
    {
      g_hash_table_remove (type_caches, pg);
      cache = NULL;
    }
  if (cache == NULL)
    {
      if (g_hash_table_size (type_caches) >= TYPE_CACHE_MAX)
        {
          /* Evict the least recently used: O(TYPE_CACHE_MAX), only when a
           * new connection first runs a query. */
          gpointer oldest = NULL;
          gint64 oldest_time = G_MAXINT64;
          GHashTableIter iter;
          gpointer key, value;
          g_hash_table_iter_init (&iter, type_caches);
          while (g_hash_table_iter_next (&iter, &key, &value))
            if (((TypeCache *)value)->last_used < oldest_time)
              {
                oldest = key;
                oldest_time = ((TypeCache *)value)->last_used;
              }
          g_hash_table_remove (type_caches, oldest);
        }
      cache = g_new0 (TypeCache, 1);
      cache->backend_pid = pid;
      cache->names
          = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
      cache->domains
          = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
      g_hash_table_insert (type_caches, pg, cache);
    }
  cache->last_used = g_get_monotonic_time ();
  return cache;
}

static void
type_cache_put_locked (GHashTable *table, guint32 oid, int typmod,
                       const char *name)
{
  gint64 *key = g_new (gint64, 1);
  *key = type_key (oid, typmod);
  g_hash_table_replace (table, key, g_strdup (name));
}

/* Fills in the type_name of each column it can without a query: built-in
 * types, then the connection's cache.  Returns how many are left NULL. */
static guint
name_columns (PGconn *pg, GPtrArray *columns)
{
  guint unknown = 0;
  gboolean locked = FALSE;
  TypeCache *cache = NULL;
  for (guint i = 0; i < columns->len; i++)
    {
      TuskColumnInfo *column = columns->pdata[i];
      if (column->table_oid != 0)
        {
          if (!locked)
            {
              pthread_mutex_lock (&type_caches_lock);
              locked = TRUE;
              cache = type_cache_get_locked (pg);
            }
          gint64 key = type_key (column->table_oid, column->table_column);
          const char *domain = g_hash_table_lookup (cache->domains, &key);
          if (domain == NULL)
            unknown++; /* named by its base type until looked up */
          else if (*domain)
            {
              g_free (column->type_name);
              column->type_name = g_strdup (domain);
              continue;
            }
        }
      if (column->type_name)
        continue;
      column->type_name = tusk_query_builtin_type_name (column->type_oid,
                                                        column->type_modifier);
      if (column->type_name)
        continue;
      if (!locked)
        {
          pthread_mutex_lock (&type_caches_lock);
          locked = TRUE;
          cache = type_cache_get_locked (pg);
        }
      gint64 key = type_key (column->type_oid, column->type_modifier);
      column->type_name = g_strdup (g_hash_table_lookup (cache->names, &key));
      if (column->type_name == NULL)
        unknown++;
    }
  if (locked)
    pthread_mutex_unlock (&type_caches_lock);
  return unknown;
}

/* Whether @pg may run a catalog query now: open, idle, not in a failed
 * transaction. */
static gboolean
can_look_up (PGconn *pg)
{
  PGTransactionStatusType status = PQtransactionStatus (pg);
  return PQstatus (pg) == CONNECTION_OK
         && (status == PQTRANS_IDLE || status == PQTRANS_INTRANS);
}

/* Runs one catalog query of pairs ($1[i], $2[i]) and caches its rows
 * (key1, key2, name) in cache->domains or cache->names.  Blocks. */
static void
look_up_pairs (PGconn *pg, const char *sql, GString *first, GString *second,
               gboolean domains)
{
  g_string_append_c (first, '}');
  g_string_append_c (second, '}');
  const char *params[2] = { first->str, second->str };
  PGresult *res = PQexecParams (pg, sql, 2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus (res) == PGRES_TUPLES_OK)
    {
      pthread_mutex_lock (&type_caches_lock);
      TypeCache *cache = type_cache_get_locked (pg);
      for (int r = 0; r < PQntuples (res); r++)
        type_cache_put_locked (
            domains ? cache->domains : cache->names,
            (guint32)strtoul (PQgetvalue (res, r, 0), NULL, 10),
            atoi (PQgetvalue (res, r, 1)), PQgetvalue (res, r, 2));
      pthread_mutex_unlock (&type_caches_lock);
    }
  else
    {
      g_autofree char *text
          = g_strchomp (g_strdup (PQresultErrorMessage (res)));
      tusk_warn ("could not look up type names: %s", text);
    }
  PQclear (res);
}

/* The first time a statement on a connection returns a user-defined type,
 * load the names of all the database's own types (enums, domains, ranges,
 * base and standalone composite types, their arrays; not the row types of
 * tables), so that later streams' columns events, which come before any
 * lookup is possible, name them.  One query per connection, and none on a
 * connection that never meets such a type (a `tusk -c 'select 1'` never
 * touches the catalog).  Blocks. */
static void
preload_types (PGconn *pg)
{
  pthread_mutex_lock (&type_caches_lock);
  TypeCache *cache = type_cache_get_locked (pg);
  gboolean done = cache->preloaded;
  cache->preloaded = TRUE;
  pthread_mutex_unlock (&type_caches_lock);
  if (done || !can_look_up (pg))
    return;

  PGresult *res = PQexec (
      pg, "SELECT t.oid, format_type (t.oid, NULL) FROM pg_catalog.pg_type t "
          "LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid "
          "LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem "
          "AND t.typcategory = 'A' "
          "LEFT JOIN pg_catalog.pg_class ec ON ec.oid = e.typrelid "
          "WHERE t.oid >= 16384 AND (c.oid IS NULL OR c.relkind = 'c') "
          "AND (ec.oid IS NULL OR ec.relkind = 'c') LIMIT 10000");
  if (PQresultStatus (res) == PGRES_TUPLES_OK)
    {
      pthread_mutex_lock (&type_caches_lock);
      cache = type_cache_get_locked (pg);
      for (int r = 0; r < PQntuples (res); r++)
        type_cache_put_locked (
            cache->names, (guint32)strtoul (PQgetvalue (res, r, 0), NULL, 10),
            -1, PQgetvalue (res, r, 1));
      pthread_mutex_unlock (&type_caches_lock);
    }
  PQclear (res);
}

/* Asks the server, in at most two queries, for the names of the columns
 * still unnamed and for the declared types of table columns not seen
 * before (to name domains), and caches them.  Blocks (catalog queries on
 * an idle connection).  Leaves a placeholder ("oid 16385") where the server
 * cannot answer. */
static void
look_up_columns (PGconn *pg, GPtrArray *columns)
{
  if (name_columns (pg, columns) == 0)
    return;
  for (guint i = 0; i < columns->len; i++)
    if (((TuskColumnInfo *)columns->pdata[i])->type_name == NULL)
      {
        preload_types (pg);
        name_columns (pg, columns);
        break;
      }
  g_autoptr (GString) oids = g_string_new ("{");
  g_autoptr (GString) mods = g_string_new ("{");
  g_autoptr (GString) tables = g_string_new ("{");
  g_autoptr (GString) attnums = g_string_new ("{");
  pthread_mutex_lock (&type_caches_lock);
  TypeCache *cache = type_cache_get_locked (pg);
  for (guint i = 0; i < columns->len; i++)
    {
      TuskColumnInfo *column = columns->pdata[i];
      gint64 key = type_key (column->table_oid, column->table_column);
      if (column->table_oid != 0
          && !g_hash_table_contains (cache->domains, &key))
        {
          g_string_append_printf (tables, "%s%u", tables->len > 1 ? "," : "",
                                  column->table_oid);
          g_string_append_printf (attnums, "%s%d", attnums->len > 1 ? "," : "",
                                  column->table_column);
        }
      if (column->type_name == NULL)
        {
          g_string_append_printf (oids, "%s%u", oids->len > 1 ? "," : "",
                                  column->type_oid);
          g_string_append_printf (mods, "%s%d", mods->len > 1 ? "," : "",
                                  column->type_modifier);
        }
    }
  pthread_mutex_unlock (&type_caches_lock);

  if (can_look_up (pg) && oids->len > 1)
    look_up_pairs (pg,
                   "SELECT o, m, format_type (o, m) FROM unnest ($1::oid[], "
                   "$2::int4[]) AS u (o, m)",
                   oids, mods, FALSE);
  if (can_look_up (pg) && tables->len > 1)
    look_up_pairs (pg,
                   "SELECT u.r, u.n, CASE WHEN t.typtype = 'd' "
                   "THEN format_type (a.atttypid, a.atttypmod) ELSE '' END "
                   "FROM unnest ($1::oid[], $2::int2[]) AS u (r, n) "
                   "JOIN pg_catalog.pg_attribute a ON a.attrelid = u.r "
                   "AND a.attnum = u.n "
                   "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid",
                   tables, attnums, TRUE);
  name_columns (pg, columns);
  for (guint i = 0; i < columns->len; i++)
    {
      TuskColumnInfo *column = columns->pdata[i];
      if (column->type_name == NULL)
        column->type_name = g_strdup_printf ("oid %u", column->type_oid);
    }
}

/* Appends the columns of @res to @columns. */
static void
columns_from_result (const PGresult *res, GPtrArray *columns)
{
  int n = PQnfields (res);
  for (int i = 0; i < n; i++)
    {
      TuskColumnInfo *column = new0 (TuskColumnInfo);
      column->name = g_strdup (PQfname (res, i));
      column->type_oid = PQftype (res, i);
      column->type_modifier = PQfmod (res, i);
      column->table_oid = PQftable (res, i);
      column->table_column = PQftablecol (res, i);
      g_ptr_array_add (columns, column);
    }
}

/* ---- executions -------------------------------------------------------- */

/* Row data read on the caller's thread (text plus a few bytes a value, about
 * what came over the wire) before the rest of a result is handed to a
 * worker: small results never leave the caller's thread, and big ones are
 * never parsed there. */
#define FAST_MAX_BYTES (128 * 1024)

static int fast_path_enabled = 1; /* atomic */

/* TuskQueryFastStats, atomic. */
static int fast_started, fast_finished, fast_handed_over, fast_looked_up;

void
tusk_query_get_fast_stats (TuskQueryFastStats *stats)
{
  g_return_if_fail (stats != NULL);
  stats->started = (guint)g_atomic_int_get (&fast_started);
  stats->finished = (guint)g_atomic_int_get (&fast_finished);
  stats->handed_over = (guint)g_atomic_int_get (&fast_handed_over);
  stats->looked_up = (guint)g_atomic_int_get (&fast_looked_up);
}

void
tusk_query_set_fast_path (gboolean enabled)
{
  g_atomic_int_set (&fast_path_enabled, enabled ? 1 : 0);
}

typedef enum
{
  EVENT_COLUMNS, /* data: GPtrArray * of TuskColumnInfo * */
  EVENT_BATCH,   /* data: TuskRowBatch * */
  EVENT_NOTICE,  /* data: TuskNotice * */
  EVENT_DONE,    /* data: NULL; the outcome is in Exec.result / .error */
} EventKind;

typedef struct
{
  EventKind kind;
  gpointer data;
} Event;

typedef enum
{
  PHASE_QUEUED,
  PHASE_FAST,   /* the caller's thread reads */
  PHASE_WORKER, /* a worker (or the _sync caller) reads */
  PHASE_DONE,
} Phase;

/* The cancel request that cancel_job () sends on a thread of its own. */
typedef enum
{
  CANCEL_JOB_NONE,
  CANCEL_JOB_QUEUED,  /* cancel_job () is started */
  CANCEL_JOB_RUNNING, /* it sends now: the connection must stay */
  CANCEL_JOB_DONE,    /* sent (or failed) */
  CANCEL_JOB_STOLEN,  /* not to be sent: the statement ended first */
} CancelJob;

typedef struct Exec Exec;
typedef struct FastEntry FastEntry;

/* A thread's wake pipe: what its poll loop watches, beside the socket, for
 * a cancel.  One per thread that runs statements, made on its first one and
 * closed when it exits, instead of a cancellable fd (an eventfd made and
 * closed) per statement.  Used by one statement at a time: a statement run
 * from inside another's notice callback (_sync) uses the cancellable's fd. */
typedef struct
{
  int fds[2]; /* read end, write end; both non-blocking */
  gboolean busy;
} WakePipe;

/* The state while one string runs on one connection. */
typedef struct
{
  Exec *ex;
  TuskPoolConn *conn;
  PGconn *pg;
  PQnoticeReceiver pool_receiver;
  gint64 start;      /* monotonic, just before sending */
  WakePipe *wake;    /* nullable: then cancel_fd is the cancellable's */
  GPollFD cancel_fd; /* readable once the query is cancelled */
  gboolean have_cancel_fd;
  gboolean cancel_sent; /* this run asked for the cancel request */
  gboolean dropped;     /* rows discarded because of a cancel */
  gboolean in_rows;     /* inside a row-returning statement */
  gboolean copy_out;    /* in COPY … TO STDOUT */
  gboolean copy_in;     /* refused a COPY … FROM STDIN */
  gboolean broken;      /* reading failed: the connection is gone */
  gboolean abandon;     /* the connection cannot be reused (COPY BOTH) */
  guint64 stmt_rows;    /* rows of the current statement */
  guint unnamed;        /* its columns still to be named by the catalog */
  PGresult *first;      /* a whole result's first row as libpq gave it: a
                           one-row result becomes a batch without a copy */
  Builder builder;

  /* The fast path (the caller's thread) only. */
  gboolean fast;        /* the caller's thread reads */
  gboolean nonblocking; /* the connection was made non-blocking */
  gboolean busy;        /* inside fast_step () (a callback may recurse) */
  gboolean need_flush;  /* the query is not all sent yet */
  FastEntry *entry;     /* the poll record of the socket */
  guint64 read_bytes;   /* rows read here, roughly in wire bytes */
  GPtrArray *notices;   /* TuskNotice *: read, not delivered yet */
  PGresult *pending;    /* a COPY's first result, for the worker */
} Run;

struct Exec
{
  gatomicrefcount ref;
  TuskQueryHandle *handle;
  TuskPool *pool;
  TuskRuntime *runtime;     /* NULL for _sync */
  TuskPoolConn *given_conn; /* the caller's; never released here */
  TuskStorage *storage;
  TuskQueryRegistry *registry;
  TuskSchemaCache *schema; /* nullable; invalidated after DDL */
  gboolean stream;
  guint batch_size;
  guint max_in_flight;
  TuskQueryNoticeFunc notice_func;
  gpointer notice_data;
  TuskQueryStreamFuncs funcs;
  gpointer user_data;
  GDestroyNotify destroy;
  GMainContext *context; /* NULL for _sync: deliver on the calling thread */
  GAsyncReadyCallback callback; /* execute_async's, called at DONE */
  gpointer callback_data;

  /* Written by whoever reads the statement (one thread at a time, handed
   * over through the runtime's queue); read by the main context after DONE
   * (handed over by the events source, announced to TSan). */
  TuskQueryResult *result;
  GError *error;
  Run run;

  pthread_mutex_t lock; /* protects events … deferred_discard */
  pthread_cond_t cond;  /* in_flight went down, a cancel, a cancel_job done */
  GQueue events;
  gboolean scheduled; /* a source is attached to deliver events */
  guint in_flight;
  int wake_fd; /* while a worker waits for the server: the write end of its
                  wake pipe, written by exec_on_cancelled (); else -1 */
  Phase phase;
  CancelJob cancel_job;
  gboolean end_after_cancel;   /* cancel_job () schedules exec_end () */
  TuskPoolConn *deferred_conn; /* cancel_job () gives it back (invariant 2) */
  gboolean deferred_discard;   /* … to be discarded, not reused */

  gboolean hooked; /* exec_on_cancelled () is the handle's hook; only the
                      thread that runs the execution reads or writes it */
};

static void
event_free (Event *event)
{
  switch (event->kind)
    {
      case EVENT_COLUMNS:
        g_ptr_array_unref (event->data);
        break;
      case EVENT_BATCH:
        tusk_row_batch_unref (event->data);
        break;
      case EVENT_NOTICE:
        tusk_notice_free (event->data);
        break;
      case EVENT_DONE:
        break;
    }
  g_free (event);
}

static Exec *
exec_ref (Exec *ex)
{
  g_atomic_ref_count_inc (&ex->ref);
  return ex;
}

static void
exec_unref (Exec *ex)
{
  /* GLib's reference counts are atomics TSan cannot see (not inlined). */
  tusk_tsan_release (ex);
  if (!g_atomic_ref_count_dec (&ex->ref))
    return;
  tusk_tsan_acquire (ex);
  g_queue_clear_full (&ex->events, (GDestroyNotify)event_free);
  if (ex->destroy)
    ex->destroy (ex->user_data);
  tusk_query_result_free (ex->result);
  g_clear_error (&ex->error);
  builder_clear (&ex->run.builder);
  PQclear (ex->run.first);
  g_clear_pointer (&ex->run.notices, g_ptr_array_unref);
  PQclear (ex->run.pending);
  if (ex->registry)
    {
      tusk_query_registry_remove (ex->registry, ex->handle);
      tusk_query_registry_unref (ex->registry);
    }
  g_clear_pointer (&ex->schema, tusk_schema_cache_unref);
  tusk_query_handle_unref (ex->handle);
  tusk_pool_unref (ex->pool);
  if (ex->context)
    g_main_context_unref (ex->context);
  pthread_mutex_destroy (&ex->lock);
  pthread_cond_destroy (&ex->cond);
  g_free (ex);
}

/* An execution without its handle and result yet: exec_identify () adds
 * them.  Apart so that the fast path can send the query first and make
 * them while the server works. */
static Exec *
exec_alloc (TuskPool *pool, const TuskQueryOptions *options, gboolean stream)
{
  Exec *ex = new0 (Exec);
  g_atomic_ref_count_init (&ex->ref);
  pthread_mutex_init (&ex->lock, NULL);
  pthread_cond_init (&ex->cond, NULL);
  g_queue_init (&ex->events);
  ex->wake_fd = -1;
  ex->pool = tusk_pool_ref (pool);
  ex->given_conn = options->conn;
  ex->storage = options->storage;
  ex->schema = options->schema ? tusk_schema_cache_ref (options->schema) : NULL;
  ex->stream = stream;
  ex->batch_size = options->batch_size ? options->batch_size
                                       : TUSK_QUERY_DEFAULT_BATCH_SIZE;
  ex->max_in_flight = options->max_batches_in_flight
                          ? options->max_batches_in_flight
                          : TUSK_QUERY_DEFAULT_MAX_BATCHES_IN_FLIGHT;
  ex->notice_func = options->notice_func;
  ex->notice_data = options->notice_data;
  ex->registry
      = options->registry ? tusk_query_registry_ref (options->registry) : NULL;
  ex->run.ex = ex;
  ex->run.builder.capacity = ex->batch_size;
  ex->run.builder.keep = !stream;
  return ex;
}

/* Gives @ex its handle (registered) and its empty result. */
static void
exec_identify (Exec *ex, const char *sql, GCancellable *cancellable)
{
  ex->handle
      = handle_new (tusk_pool_get_config (ex->pool)->id, sql, cancellable);
  ex->result = result_new (ex->handle->id);
  if (ex->registry)
    tusk_query_registry_add (ex->registry, ex->handle);
}

static Exec *
exec_new (TuskPool *pool, const char *sql, const TuskQueryOptions *options,
          GCancellable *cancellable, gboolean stream)
{
  TuskQueryOptions defaults;
  if (options == NULL)
    {
      tusk_query_options_init (&defaults);
      options = &defaults;
    }
  Exec *ex = exec_alloc (pool, options, stream);
  exec_identify (ex, sql, cancellable);
  return ex;
}

/* The GAsyncResult execute_async's callback gets.  GTask would do, at
 * about twice the cost of the rest of a small query (properties and their
 * notifications, its own sources); this only carries the outcome to
 * tusk_query_execute_finish ().  Made on the caller's thread, right before
 * the callback. */
typedef struct
{
  GObject parent;
  gpointer user_data;
  TuskQueryResult *result; /* owned until _finish () */
  GError *error;           /* likewise */
} QueryAsyncResult;

typedef struct
{
  GObjectClass parent_class;
} QueryAsyncResultClass;

static void query_async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (
    QueryAsyncResult, query_async_result, G_TYPE_OBJECT,
    G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT, query_async_result_iface_init))

static void
query_async_result_finalize (GObject *object)
{
  QueryAsyncResult *self = (QueryAsyncResult *)object;
  tusk_query_result_free (self->result);
  g_clear_error (&self->error);
  G_OBJECT_CLASS (query_async_result_parent_class)->finalize (object);
}

static void
query_async_result_class_init (QueryAsyncResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = query_async_result_finalize;
}

static void
query_async_result_init (QueryAsyncResult *self)
{
  (void)self;
}

static gpointer
query_async_result_get_user_data (GAsyncResult *result)
{
  return ((QueryAsyncResult *)result)->user_data;
}

static GObject *
query_async_result_get_source_object (GAsyncResult *result)
{
  (void)result;
  return NULL;
}

static gboolean
query_async_result_is_tagged (GAsyncResult *result, gpointer source_tag)
{
  (void)result;
  return source_tag == (gpointer)tusk_query_execute_async;
}

static void
query_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = query_async_result_get_user_data;
  iface->get_source_object = query_async_result_get_source_object;
  iface->is_tagged = query_async_result_is_tagged;
}

/* A thread's spare QueryAsyncResult: making and finalizing a GObject costs
 * as much as the rest of delivering a small query.  Only one the callback
 * neither kept (a reference) nor marked (data, weak references: qdata) is
 * reused, emptied. */
static GPrivate spare_async_result = G_PRIVATE_INIT (g_object_unref);

/* On the caller's context: hands the outcome to execute_async's
 * callback. */
static void
complete_async (Exec *ex)
{
  GAsyncReadyCallback callback = g_steal_pointer (&ex->callback);
  QueryAsyncResult *result = g_private_get (&spare_async_result);
  if (result)
    g_private_set (&spare_async_result, NULL);
  else
    result = g_object_new (query_async_result_get_type (), NULL);
  result->user_data = ex->callback_data;
  result->error = g_steal_pointer (&ex->error);
  if (result->error == NULL)
    result->result = g_steal_pointer (&ex->result);
  callback (NULL, G_ASYNC_RESULT (result), ex->callback_data);
  GObject *object = G_OBJECT (result);
  if (g_atomic_int_get (&object->ref_count) == 1 && object->qdata == NULL
      && g_private_get (&spare_async_result) == NULL)
    {
      g_clear_pointer (&result->result, tusk_query_result_free);
      g_clear_error (&result->error);
      result->user_data = NULL;
      g_private_set (&spare_async_result, result);
    }
  else
    g_object_unref (result);
}

static void
deliver (Exec *ex, Event *event)
{
  switch (event->kind)
    {
      case EVENT_COLUMNS:
        if (ex->funcs.columns)
          ex->funcs.columns (ex->handle, event->data, ex->user_data);
        break;
      case EVENT_BATCH:
        if (ex->funcs.batch)
          ex->funcs.batch (ex->handle, event->data, ex->user_data);
        pthread_mutex_lock (&ex->lock);
        ex->in_flight--;
        g_atomic_int_add (&ex->handle->in_flight, -1);
        pthread_cond_signal (&ex->cond);
        pthread_mutex_unlock (&ex->lock);
        break;
      case EVENT_NOTICE:
        if (ex->notice_func)
          ex->notice_func (ex->handle, event->data, ex->notice_data);
        break;
      case EVENT_DONE:
        if (ex->callback)
          complete_async (ex);
        else
          {
            if (ex->funcs.done)
              ex->funcs.done (ex->handle, ex->error ? NULL : ex->result,
                              ex->error, ex->user_data);
            /* Here, on the caller's context, not wherever the last reference
             * happens to go. */
            if (ex->destroy)
              g_steal_pointer (&ex->destroy) (ex->user_data);
          }
        break;
    }
}

/* The source on the caller's main context: one event per dispatch, so that
 * a long stream never starves the rest of the main loop. */
static gboolean
dispatch_events (gpointer data)
{
  Exec *ex = data;
  pthread_mutex_lock (&ex->lock);
  Event *event = g_queue_pop_head (&ex->events);
  if (event == NULL)
    ex->scheduled = FALSE;
  pthread_mutex_unlock (&ex->lock);
  if (event == NULL)
    return G_SOURCE_REMOVE;
  tusk_tsan_acquire (ex);
  deliver (ex, event);
  event_free (event);
  return G_SOURCE_CONTINUE;
}

/* Hands @data to the caller, through a source on its main context (from
 * any thread).  A batch then waits while too many are in flight
 * (back-pressure), until one is consumed or the query is cancelled. */
static void
post (Exec *ex, EventKind kind, gpointer data)
{
  Event *event = g_new (Event, 1);
  event->kind = kind;
  event->data = data;
  if (ex->context == NULL)
    {
      /* _sync: only notices are posted; deliver them here and now. */
      if (kind == EVENT_NOTICE)
        deliver (ex, event);
      event_free (event);
      return;
    }
  pthread_mutex_lock (&ex->lock);
  tusk_tsan_release (ex);
  g_queue_push_tail (&ex->events, event);
  if (kind == EVENT_BATCH)
    {
      ex->in_flight++;
      int now = g_atomic_int_add (&ex->handle->in_flight, 1) + 1;
      if (now > g_atomic_int_get (&ex->handle->in_flight_peak))
        g_atomic_int_set (&ex->handle->in_flight_peak, now);
    }
  if (!ex->scheduled)
    {
      ex->scheduled = TRUE;
      GSource *source = g_idle_source_new ();
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, dispatch_events, exec_ref (ex),
                             (GDestroyNotify)exec_unref);
      g_source_set_static_name (source, "[tusk] query events");
      g_source_attach (source, ex->context);
      g_source_unref (source);
    }
  if (kind == EVENT_BATCH)
    while (ex->in_flight >= ex->max_in_flight
           && !handle_is_cancelled (ex->handle))
      pthread_cond_wait (&ex->cond, &ex->lock);
  pthread_mutex_unlock (&ex->lock);
}

static void cancel_job (gpointer data);

/* With ex->lock held: claims the cancel request of @ex's statement, which
 * is on the wire; TRUE when the caller is to start cancel_job () (after
 * unlocking), FALSE when it was claimed before. */
static gboolean
cancel_claim_locked (Exec *ex)
{
  if (ex->cancel_job != CANCEL_JOB_NONE)
    return FALSE;
  ex->cancel_job = CANCEL_JOB_QUEUED;
  return TRUE;
}

static void
cancel_start (Exec *ex)
{
  tusk_runtime_run_urgent (ex->runtime, cancel_job, exec_ref (ex));
}

/* The handle's hook (handle_set_hook ()): runs in whichever thread cancels,
 * under the handle's lock.  Wakes a worker held back by a slow consumer or
 * waiting for the server (through its wake pipe); for a query read on the
 * caller's thread, starts the cancel request. */
static void
exec_on_cancelled (gpointer data)
{
  Exec *ex = data;
  pthread_mutex_lock (&ex->lock);
  pthread_cond_broadcast (&ex->cond);
  if (ex->wake_fd >= 0)
    {
      /* Non-blocking; a full pipe is readable already. */
      ssize_t n = write (ex->wake_fd, "", 1);
      (void)n;
    }
  gboolean start = ex->phase == PHASE_FAST && cancel_claim_locked (ex);
  pthread_mutex_unlock (&ex->lock);
  if (start)
    cancel_start (ex);
}

static void
exec_hook (Exec *ex)
{
  ex->hooked = TRUE;
  handle_set_hook (ex->handle, exec_on_cancelled, ex);
}

/* After this, exec_on_cancelled () neither runs nor will: no new cancel
 * job, no write to the wake pipe. */
static void
exec_unhook (Exec *ex)
{
  if (ex->hooked)
    {
      handle_set_hook (ex->handle, NULL, NULL);
      ex->hooked = FALSE;
    }
}

static void
wake_pipe_free (gpointer data)
{
  WakePipe *wake = data;
  close (wake->fds[0]);
  close (wake->fds[1]);
  g_free (wake);
}

static GPrivate wake_pipe_key = G_PRIVATE_INIT (wake_pipe_free);

/* Returns (transfer none) (nullable) the calling thread's wake pipe, marked
 * busy, or NULL when it is busy or cannot be made. */
static WakePipe *
wake_pipe_take (void)
{
  WakePipe *wake = g_private_get (&wake_pipe_key);
  if (wake == NULL)
    {
      int fds[2];
      if (!g_unix_open_pipe (fds, FD_CLOEXEC, NULL))
        return NULL;
      if (!g_unix_set_fd_nonblocking (fds[0], TRUE, NULL)
          || !g_unix_set_fd_nonblocking (fds[1], TRUE, NULL))
        {
          close (fds[0]);
          close (fds[1]);
          return NULL;
        }
      wake = g_new0 (WakePipe, 1);
      wake->fds[0] = fds[0];
      wake->fds[1] = fds[1];
      g_private_set (&wake_pipe_key, wake);
    }
  if (wake->busy)
    return NULL;
  wake->busy = TRUE;
  return wake;
}

/* Gives @wake back empty, once nobody can write to it any more (ex->wake_fd
 * is -1); @written: whether anything may have been. */
static void
wake_pipe_give_back (WakePipe *wake, gboolean written)
{
  char buf[64];
  while (written && read (wake->fds[0], buf, sizeof buf) > 0)
    ;
  wake->busy = FALSE;
}

/* On a thread about to wait for the server in poll (): what wakes it on a
 * cancel. */
static void
run_watch_cancel (Run *r)
{
  Exec *ex = r->ex;
  r->wake = wake_pipe_take ();
  if (r->wake)
    {
      /* Before the caller checks for a cancel: one from now on writes to
       * the pipe. */
      pthread_mutex_lock (&ex->lock);
      ex->wake_fd = r->wake->fds[1];
      pthread_mutex_unlock (&ex->lock);
      r->cancel_fd.fd = r->wake->fds[0];
      r->have_cancel_fd = TRUE;
    }
  else
    r->have_cancel_fd = g_cancellable_make_pollfd (
        tusk_query_handle_get_cancellable (ex->handle), &r->cancel_fd);
}

static void
run_unwatch_cancel (Run *r)
{
  Exec *ex = r->ex;
  if (r->wake)
    {
      pthread_mutex_lock (&ex->lock);
      ex->wake_fd = -1;
      pthread_mutex_unlock (&ex->lock);
      /* The hook runs after the handle is marked cancelled: if it is not
       * now, nothing was written. */
      wake_pipe_give_back (r->wake, handle_is_cancelled (ex->handle));
      r->wake = NULL;
    }
  else if (r->have_cancel_fd)
    g_cancellable_release_fd (tusk_query_handle_get_cancellable (ex->handle));
  r->have_cancel_fd = FALSE;
}

static void
on_notice (void *arg, const PGresult *res)
{
  Run *r = arg;
  const char *severity
      = PQresultErrorField (res, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity
      && (g_str_equal (severity, "FATAL") || g_str_equal (severity, "PANIC")))
    {
      /* The pool's receiver marks the connection broken. */
      r->pool_receiver (r->conn, res);
      return;
    }
  TuskNotice *notice = g_new0 (TuskNotice, 1);
  notice->severity = g_strdup (severity ? severity : "NOTICE");
  notice->sqlstate = g_strdup (PQresultErrorField (res, PG_DIAG_SQLSTATE));
  notice->message
      = g_strdup (PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY));
  if (notice->message == NULL)
    notice->message = g_strchomp (g_strdup (PQresultErrorMessage (res)));
  notice->detail = g_strdup (PQresultErrorField (res, PG_DIAG_MESSAGE_DETAIL));
  notice->hint = g_strdup (PQresultErrorField (res, PG_DIAG_MESSAGE_HINT));
  g_ptr_array_add (r->ex->result->notices, tusk_notice_copy (notice));
  if (r->fast)
    {
      /* Delivered by fast_step () once libpq has returned. */
      if (r->notices == NULL)
        r->notices
            = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_notice_free);
      g_ptr_array_add (r->notices, notice);
    }
  else
    post (r->ex, EVENT_NOTICE, notice);
}

/* The statement on @r's connection, sent, is to be cancelled: cancel_job ()
 * sends the request while this thread reads on (the error usually arrives
 * before PQcancel returns).  A _sync execution has no runtime: it blocks
 * here until the request is sent. */
static void
run_request_cancel (Run *r)
{
  Exec *ex = r->ex;
  r->cancel_sent = TRUE;
  if (ex->runtime)
    {
      pthread_mutex_lock (&ex->lock);
      gboolean start = cancel_claim_locked (ex);
      pthread_mutex_unlock (&ex->lock);
      if (start)
        cancel_start (ex);
      return;
    }
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  if (!tusk_pool_conn_cancel (r->conn, &error))
    tusk_warn ("%s", error->message);
  else
    tusk_debug ("cancel request for query %s sent in %.2f ms",
                r->ex->handle->id, (g_get_monotonic_time () - start) / 1000.0);
}

/* Waits until the server sent something or the query is cancelled (then
 * asks for the cancel request, once). */
static void
wait_for_input (Run *r)
{
  struct pollfd fds[2] = { { PQsocket (r->pg), POLLIN, 0 }, { -1, 0, 0 } };
  nfds_t n = 1;
  if (r->have_cancel_fd && !r->cancel_sent)
    {
      fds[1].fd = r->cancel_fd.fd;
      fds[1].events = POLLIN;
      n = 2;
    }
  if (fds[0].fd < 0)
    {
      r->broken = TRUE;
      return;
    }
  int rc = poll (fds, n, -1);
  if (rc < 0)
    {
      if (errno != EINTR)
        r->broken = TRUE;
      return;
    }
  if (n == 2 && fds[1].revents)
    run_request_cancel (r);
  if (fds[0].revents && !PQconsumeInput (r->pg))
    r->broken = TRUE;
}

static TuskQueryType
query_type_from_tag (const char *tag, gboolean rows)
{
  if (g_str_has_prefix (tag, "INSERT"))
    return TUSK_QUERY_TYPE_INSERT;
  if (g_str_has_prefix (tag, "UPDATE"))
    return TUSK_QUERY_TYPE_UPDATE;
  if (g_str_has_prefix (tag, "DELETE"))
    return TUSK_QUERY_TYPE_DELETE;
  return rows ? TUSK_QUERY_TYPE_SELECT : TUSK_QUERY_TYPE_OTHER;
}

/* Records the command tag of a statement that ended with @res. */
static void
finish_statement (Run *r, const PGresult *res, gboolean rows)
{
  TuskQueryResult *result = r->ex->result;
  const char *tag = PQcmdStatus ((PGresult *)res);
  g_free (result->command_tag);
  result->command_tag = g_strdup (tag ? tag : "");
  result->query_type = query_type_from_tag (result->command_tag, rows);
  const char *count = PQcmdTuples ((PGresult *)res);
  result->rows_affected = -1;
  if (count && *count && result->query_type != TUSK_QUERY_TYPE_SELECT)
    result->rows_affected = g_ascii_strtoll (count, NULL, 10);
  result->rows_returned = rows ? r->stmt_rows : 0;
  r->in_rows = FALSE;

  /* DDL changes what the schema cache knows; DDL inside a transaction
   * becomes visible to the cache's connection at COMMIT. */
  if (r->ex->schema
      && (tusk_schema_is_ddl_tag (result->command_tag)
          || g_str_equal (result->command_tag, "COMMIT")))
    tusk_schema_cache_invalidate (r->ex->schema);
}

/* A new statement begins: the whole result describes the last one. */
static void
start_statement (Run *r)
{
  TuskQueryResult *result = r->ex->result;
  g_ptr_array_set_size (result->columns, 0);
  g_ptr_array_set_size (result->batches, 0);
  result->n_rows = 0;
  r->stmt_rows = 0;
  r->unnamed = 0;
  g_clear_pointer (&r->first, PQclear);
}

/* A batch goes to the consumer (a stream) or into the result. */
static void
add_batch (Run *r, TuskRowBatch *batch)
{
  if (r->ex->stream)
    post (r->ex, EVENT_BATCH, batch);
  else
    {
      g_ptr_array_add (r->ex->result->batches, batch);
      r->ex->result->n_rows += batch->n_rows;
    }
}

/* The batch being filled, if any, goes where add_batch () puts it. */
static void
flush_batch (Run *r)
{
  TuskRowBatch *batch = builder_take (&r->builder);
  if (batch)
    add_batch (r, batch);
  g_atomic_int_set (&r->ex->handle->rows_read,
                    (int)MIN (r->stmt_rows, G_MAXINT));
}

/* The first result of a row-returning statement: its columns. */
static void
begin_rows (Run *r, const PGresult *res)
{
  Exec *ex = r->ex;
  start_statement (r);
  r->in_rows = TRUE;
  columns_from_result (res, ex->result->columns);
  r->unnamed = name_columns (r->pg, ex->result->columns);
  if (ex->stream)
    {
      /* The consumer's copy; names still unknown are looked up once the
       * statement is over (the connection is busy until then), and the
       * final result carries them. */
      GPtrArray *copy
          = g_ptr_array_copy (ex->result->columns, copy_column, NULL);
      g_ptr_array_set_free_func (copy, (GDestroyNotify)tusk_column_info_free);
      for (guint i = 0; i < copy->len; i++)
        {
          TuskColumnInfo *column = copy->pdata[i];
          if (column->type_name == NULL)
            column->type_name = g_strdup_printf ("oid %u", column->type_oid);
        }
      post (ex, EVENT_COLUMNS, copy);
    }
}

/* Names the columns no lookup named, by their type's oid. */
static void
name_placeholders (GPtrArray *columns)
{
  for (guint i = 0; i < columns->len; i++)
    {
      TuskColumnInfo *column = columns->pdata[i];
      if (column->type_name == NULL)
        column->type_name = g_strdup_printf ("oid %u", column->type_oid);
    }
}

static void
set_error (Exec *ex, GError *error)
{
  if (ex->error == NULL)
    ex->error = error;
  else
    g_error_free (error);
}

/* Copies the row of the single-row result @res (the statement's row
 * @row) into the batch being filled, which goes once full. */
static void
add_row (Run *r, const PGresult *res, guint64 row)
{
  Exec *ex = r->ex;
  guint n_columns = ex->result->columns->len;
  guint64 before = r->builder.added;
  if (!builder_add_row (&r->builder, res, n_columns, row))
    {
      flush_batch (r);
      builder_add_row (&r->builder, res, n_columns, row);
    }
  if (r->fast)
    r->read_bytes += r->builder.added - before + 5 + 4 * n_columns;
  if (r->builder.batch->n_rows >= ex->batch_size)
    flush_batch (r);
}

/* Takes @res. */
static void
handle_result (Run *r, PGresult *res)
{
  Exec *ex = r->ex;
  switch (PQresultStatus (res))
    {
      case PGRES_SINGLE_TUPLE:
        if (!r->in_rows)
          begin_rows (r, res);
        /* A worker drops what comes after a cancel; the caller's thread
         * keeps its few rows (invariant 5). */
        if (!r->fast && handle_is_cancelled (ex->handle))
          r->dropped = TRUE;
        else if (!ex->stream && r->stmt_rows == 0 && ex->batch_size > 1)
          {
            /* Kept: if no second row comes, it is the batch. */
            r->first = g_steal_pointer (&res);
            r->stmt_rows = 1;
            r->read_bytes += 64;
          }
        else
          {
            if (r->first)
              {
                add_row (r, r->first, 0);
                g_clear_pointer (&r->first, PQclear);
              }
            add_row (r, res, r->stmt_rows);
            r->stmt_rows++;
          }
        PQclear (res);
        break;

      case PGRES_TUPLES_OK:
        if (!r->in_rows)
          begin_rows (r, res);
        if (r->first)
          add_batch (r, batch_new_from_result (g_steal_pointer (&r->first), 0));
        flush_batch (r);
        if (PQntuples (res) > 0)
          {
            /* Rows that came whole (not in single-row mode): one batch,
             * without a copy. */
            TuskRowBatch *batch = batch_new_from_result (res, r->stmt_rows);
            r->stmt_rows += batch->n_rows;
            finish_statement (r, res, TRUE);
            add_batch (r, batch);
          }
        else
          {
            finish_statement (r, res, TRUE);
            PQclear (res);
          }
        break;

      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:
        if (!r->copy_in)
          start_statement (r);
        finish_statement (r, res, FALSE);
        PQclear (res);
        break;

      case PGRES_COPY_OUT:
        start_statement (r);
        r->copy_out = TRUE;
        PQclear (res);
        break;

      case PGRES_COPY_IN:
        /* The server waits for data Tusk does not have: end the COPY with an
         * error (the server's own message then says "COPY from stdin
         * failed", 57014, which must not read as a cancel). */
        PQclear (res);
        r->copy_in = TRUE;
        set_error (ex,
                   tusk_error_new_full (
                       TUSK_ERROR_QUERY,
                       "COPY … FROM STDIN needs data from the client, which "
                       "this statement cannot send",
                       NULL,
                       "Use COPY … FROM a server file or program, or "
                       "INSERT",
                       0, NULL));
        if (PQputCopyEnd (r->pg, "COPY FROM STDIN is not supported here") < 0
            || PQflush (r->pg) != 0)
          r->broken = TRUE;
        break;

      case PGRES_COPY_BOTH:
        PQclear (res);
        r->abandon = TRUE;
        set_error (
            ex, tusk_error_new_full (TUSK_ERROR_QUERY,
                                     "Replication commands are not supported",
                                     NULL, NULL, 0, NULL));
        break;

      case PGRES_FATAL_ERROR:
        /* A stream's rows before the error stay valid; a whole result is
         * dropped with the error. */
        if (r->in_rows && ex->stream)
          flush_batch (r);
        else
          {
            builder_clear (&r->builder);
            g_clear_pointer (&r->first, PQclear);
          }
        r->in_rows = FALSE;
        set_error (ex, tusk_error_from_pg_result (r->pg, res));
        PQclear (res);
        break;

      default:
        PQclear (res);
        break;
    }
}

/* Reads the results of the string sent on @r until ReadyForQuery, waiting
 * on the socket and for a cancel.  Blocks: a worker, or the _sync
 * caller. */
static void
run_pump (Run *r)
{
  for (;;)
    {
      if (r->copy_out)
        {
          char *buf = NULL;
          int n;
          while ((n = PQgetCopyData (r->pg, &buf, 1)) > 0)
            PQfreemem (buf);
          if (n == 0 && !r->broken)
            {
              wait_for_input (r);
              continue;
            }
          r->copy_out = FALSE;
        }
      gboolean done = FALSE;
      while (r->broken || !PQisBusy (r->pg))
        {
          PGresult *res = PQgetResult (r->pg);
          if (res == NULL)
            {
              done = TRUE;
              break;
            }
          handle_result (r, res);
          if (r->copy_out || r->abandon)
            break;
        }
      if (done || r->abandon)
        break;
      if (!r->copy_out)
        wait_for_input (r);
    }
  flush_batch (r);
}

/* The string is over (ReadyForQuery), or could not be sent: the result's
 * timing and transaction status, the connection's blocking mode, with
 * @look_up the catalog lookups of type names still unknown (blocking: not
 * on the caller's thread; not after a cancel request, invariant 2), and
 * the pool's notice receiver back. */
static void
run_end (Run *r, gboolean look_up)
{
  Exec *ex = r->ex;
  ex->result->execution_time_ms = (g_get_monotonic_time () - r->start) / 1000;
  switch (PQtransactionStatus (r->pg))
    {
      case PQTRANS_IDLE:
        ex->result->transaction_status = TUSK_TRANSACTION_IDLE;
        break;
      case PQTRANS_INTRANS:
        ex->result->transaction_status = TUSK_TRANSACTION_IN_TRANSACTION;
        break;
      case PQTRANS_INERROR:
        ex->result->transaction_status = TUSK_TRANSACTION_FAILED;
        break;
      default:
        ex->result->transaction_status = TUSK_TRANSACTION_UNKNOWN;
        break;
    }
  if (r->nonblocking)
    {
      /* Nothing is left to send after ReadyForQuery: never waits. */
      PQsetnonblocking (r->pg, 0);
      r->nonblocking = FALSE;
    }
  if (look_up && ex->error == NULL && !r->abandon && !r->cancel_sent)
    look_up_columns (r->pg, ex->result->columns);
  PQsetNoticeReceiver (r->pg, r->pool_receiver, r->conn);
  if (r->dropped && ex->error == NULL)
    set_error (ex, tusk_error_new_full (TUSK_ERROR_QUERY_CANCELLED,
                                        "The query was cancelled", NULL, NULL,
                                        0, "57014"));
}

static void
record_history (Exec *ex)
{
  if (ex->storage == NULL)
    return;
  const char *sql = ex->handle->sql;
  while (g_ascii_isspace (*sql))
    sql++;
  if (*sql == '\0')
    return;
  /* Only saved connections have a history (the table's foreign key). */
  g_autoptr (TuskConnectionConfig) saved = tusk_connection_repo_load (
      ex->storage, ex->handle->connection_id, NULL);
  if (saved == NULL)
    return;

  g_autoptr (TuskHistoryEntry) entry
      = tusk_history_entry_new (ex->handle->connection_id, ex->handle->sql);
  entry->execution_time_ms = ex->result->execution_time_ms;
  if (ex->error)
    entry->error_message = g_strdup (ex->error->message);
  else
    entry->row_count = ex->result->rows_affected >= 0
                           ? ex->result->rows_affected
                           : (gint64)ex->result->rows_returned;
  g_autoptr (GError) error = NULL;
  if (!tusk_history_repo_add (ex->storage, entry, &error))
    tusk_warn ("query history: %s", error->message);
}

static void
conn_give_back (TuskPoolConn *conn, gboolean discard)
{
  if (discard)
    tusk_pool_conn_discard (conn);
  else
    tusk_pool_release (conn);
}

/* After the run: gives the connection back (or leaves that to the cancel
 * request still on its way), queues the history entry, unregisters the
 * handle, reports, and drops the run's reference (taken when it started:
 * nothing of @ex may be used after).  Any thread; with @here, the caller's
 * inside its context's dispatch: then DONE is delivered from here (nothing
 * else is queued: the fast path delivers its notices itself) and no
 * request for the caller's own connection is on its way (fast_finish ());
 * else a worker, which waits for one (invariant 2). */
static void
exec_end (Exec *ex, gboolean here)
{
  Run *r = &ex->run;
  exec_unhook (ex); /* no cancel request starts from here on */
  pthread_mutex_lock (&ex->lock);
  ex->phase = PHASE_DONE;
  if (ex->cancel_job == CANCEL_JOB_QUEUED)
    ex->cancel_job = CANCEL_JOB_STOLEN; /* too late to matter */
  TuskPoolConn *conn = g_steal_pointer (&r->conn);
  if (conn == ex->given_conn)
    {
      conn = NULL;
      g_assert (!here || ex->cancel_job != CANCEL_JOB_RUNNING);
      while (ex->cancel_job == CANCEL_JOB_RUNNING)
        pthread_cond_wait (&ex->cond, &ex->lock);
    }
  else if (ex->cancel_job == CANCEL_JOB_RUNNING)
    {
      ex->deferred_conn = g_steal_pointer (&conn);
      ex->deferred_discard = r->abandon;
    }
  pthread_mutex_unlock (&ex->lock);
  if (conn)
    conn_give_back (conn, r->abandon);
  if (ex->error)
    {
      /* The server may quote the statement, password and all. */
      g_autofree char *message
          = tusk_history_redact_message (ex->handle->sql, ex->error->message);
      tusk_debug ("query %s failed: %s", ex->handle->id, message);
    }
  record_history (ex);
  if (ex->registry)
    tusk_query_registry_remove (ex->registry, ex->handle);
  if (here)
    {
      Event done = { EVENT_DONE, NULL };
      g_assert (ex->events.length == 0);
      deliver (ex, &done);
    }
  else
    post (ex, EVENT_DONE, NULL);
  exec_unref (ex);
}

/* Sends @ex's SQL on @conn in blocking mode (a worker, or the _sync
 * caller).  FALSE with ex->error set when it was not sent. */
static gboolean
run_begin (Run *r, TuskPoolConn *conn)
{
  Exec *ex = r->ex;
  r->conn = conn;
  r->pg = tusk_pool_conn_get_pg (conn);
  /* The pool's receiver has the connection as its argument
   * (tusk-pool-private.h); run_end () puts it back. */
  r->pool_receiver = PQsetNoticeReceiver (r->pg, on_notice, r);
  run_watch_cancel (r);
  r->start = g_get_monotonic_time ();
  if (handle_is_cancelled (ex->handle))
    {
      set_error (ex, tusk_error_new_full (TUSK_ERROR_QUERY_CANCELLED,
                                          "The query was cancelled before it "
                                          "was sent",
                                          NULL, NULL, 0, NULL));
      return FALSE;
    }
  if (!PQsendQuery (r->pg, ex->handle->sql))
    {
      set_error (ex, tusk_error_from_pg_result (r->pg, NULL));
      return FALSE;
    }
  PQsetSingleRowMode (r->pg);
  return TRUE;
}

/* The whole execution on a worker (or the _sync caller's thread). */
static void
exec_run (Exec *ex)
{
  Run *r = &ex->run;
  pthread_mutex_lock (&ex->lock);
  ex->phase = PHASE_WORKER;
  pthread_mutex_unlock (&ex->lock);
  exec_hook (ex);

  TuskPoolConn *conn = ex->given_conn;
  if (conn == NULL && !handle_is_cancelled (ex->handle))
    conn = tusk_pool_acquire_sync (
        ex->pool, tusk_query_handle_get_cancellable (ex->handle), &ex->error);
  if (conn)
    {
      if (run_begin (r, conn))
        run_pump (r);
      run_unwatch_cancel (r);
      run_end (r, TRUE);
    }
  else if (ex->error == NULL)
    set_error (ex, tusk_error_new_full (TUSK_ERROR_QUERY_CANCELLED,
                                        "The query was cancelled before it "
                                        "was sent",
                                        NULL, NULL, 0, NULL));
  exec_end (ex, FALSE);
}

/* ---- the fast path: reading on the caller's thread ---------------------- */

/* One socket a FastSource polls.  A record stays registered with the main
 * context as long as its descriptor reports nothing wrong: changing a
 * context's poll set wakes the context up (a write and a read of its
 * eventfd, and one more poll), which would cost more than the whole rest of
 * a small query.  So a record is armed (events) for a query and disarmed
 * after (events 0: polled for nothing), and dropped only when its
 * descriptor reports an error, a hang-up or its closing.  The descriptor
 * number never changes (GLib keeps the records sorted by it).
 *
 * After a query that ended here, the record goes on watching the idle
 * connection for input (`quiet`), so that the next try-acquire of that
 * connection on this thread can skip the poll () of its socket (a system
 * call, a fifth of what a small query costs here) when the socket was seen
 * quiet less than FAST_QUIET_US ago: at its release, or at the context's
 * last poll since.  That bounds the time in which input could have arrived
 * unseen (a FATAL of a backend terminated while idle) to what separates
 * any check from the send that follows it anyway.  Anything that does
 * arrive (also the traffic of another thread that took the connection
 * meanwhile) wakes the context once; the record then stops watching and is
 * no longer quiet. */
#define FAST_QUIET_US 1000

struct FastEntry
{
  GPollFD pfd;
  Run *run;           /* the run waiting on it, or NULL */
  gboolean quiet;     /* idle, watched, nothing read since its release */
  gint64 released_at; /* monotonic, when quiet was set */
};

/* The one source per main context that watches the sockets of the queries
 * read on it.  Attached for good; it can recurse, so that dispatching it
 * does not take its records out of the poll set and put them back (two
 * wakeups each time). */
typedef struct
{
  GSource source;
  GMainContext *context; /* borrowed: a destroyed source is never used */
  GPtrArray *entries;    /* FastEntry *, owned */
  gint64 checked_at;     /* monotonic: the last poll that saw a quiet
                            record quiet */
} FastSource;

static void fast_step (Run *r, gushort revents);

static gboolean
fast_source_check (GSource *source)
{
  FastSource *fs = (FastSource *)source;
  gboolean ready = FALSE, quiet = FALSE;
  for (guint i = 0; i < fs->entries->len; i++)
    {
      FastEntry *entry = fs->entries->pdata[i];
      if (entry->pfd.revents)
        ready = TRUE;
      else if (entry->quiet)
        quiet = TRUE;
    }
  if (quiet)
    fs->checked_at = g_get_monotonic_time ();
  return ready;
}

static gboolean
fast_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  FastSource *fs = (FastSource *)source;
  (void)callback;
  (void)data;
  /* A callback run from fast_step () may add records or (iterating the
   * context) drop some: index afresh each time; a record skipped is seen
   * at the next poll. */
  for (guint i = 0; i < fs->entries->len; i++)
    {
      FastEntry *entry = fs->entries->pdata[i];
      gushort revents = entry->pfd.revents;
      if (revents == 0)
        continue;
      entry->pfd.revents = 0;
      if (entry->run)
        {
          fast_step (entry->run, revents); /* entry may be gone after */
          continue;
        }
      entry->quiet = FALSE;
      entry->pfd.events = 0;
      if (revents & (G_IO_ERR | G_IO_HUP | G_IO_NVAL))
        {
          g_source_remove_poll (source, &entry->pfd);
          g_ptr_array_remove_index_fast (fs->entries, i);
          i--;
        }
    }
  return G_SOURCE_CONTINUE;
}

static void
fast_source_finalize (GSource *source)
{
  g_ptr_array_unref (((FastSource *)source)->entries);
}

static GSourceFuncs fast_source_funcs = {
  .check = fast_source_check,
  .dispatch = fast_source_dispatch,
  .finalize = fast_source_finalize,
};

/* The FastSources this thread made, one per main context (a reference
 * each); destroyed when the thread exits. */
static void
fast_sources_free (gpointer data)
{
  GPtrArray *sources = data;
  for (guint i = 0; i < sources->len; i++)
    {
      GSource *source = sources->pdata[i];
      if (!g_source_is_destroyed (source))
        g_source_destroy (source);
      g_source_unref (source);
    }
  g_ptr_array_free (sources, TRUE);
}

static GPrivate fast_sources_key = G_PRIVATE_INIT (fast_sources_free);

/* Returns (transfer none) the FastSource of @context, which the calling
 * thread has acquired, made and attached on first use. */
static FastSource *
fast_source_get (GMainContext *context)
{
  GPtrArray *sources = g_private_get (&fast_sources_key);
  if (sources == NULL)
    {
      sources = g_ptr_array_new ();
      g_private_set (&fast_sources_key, sources);
    }
  for (guint i = 0; i < sources->len; i++)
    {
      FastSource *fs = sources->pdata[i];
      if (g_source_is_destroyed (&fs->source))
        {
          /* Its context was freed (maybe to come back at the same
           * address). */
          g_source_unref (&fs->source);
          g_ptr_array_remove_index_fast (sources, i);
          i--;
        }
      else if (fs->context == context)
        return fs;
    }
  FastSource *fs
      = (FastSource *)g_source_new (&fast_source_funcs, sizeof (FastSource));
  fs->context = context;
  fs->entries = g_ptr_array_new_with_free_func (g_free);
  g_source_set_can_recurse (&fs->source, TRUE);
  g_source_set_static_name (&fs->source, "[tusk] query sockets");
  g_source_attach (&fs->source, context);
  g_ptr_array_add (sources, fs);
  return fs;
}

/* TuskPoolQuietFunc of a FastSource (@data): see FastEntry. */
static gboolean
fast_source_quiet (int fd, gpointer data)
{
  FastSource *fs = data;
  for (guint i = 0; i < fs->entries->len; i++)
    {
      FastEntry *entry = fs->entries->pdata[i];
      if (entry->pfd.fd != fd)
        continue;
      if (!entry->quiet || entry->run || entry->pfd.revents)
        return FALSE;
      gint64 seen = MAX (entry->released_at, fs->checked_at);
      return g_get_monotonic_time () - seen < FAST_QUIET_US;
    }
  return FALSE;
}

/* Returns (transfer none) @fs's record of @fd, added on first use. */
static FastEntry *
fast_entry_get (FastSource *fs, int fd)
{
  for (guint i = 0; i < fs->entries->len; i++)
    {
      FastEntry *entry = fs->entries->pdata[i];
      if (entry->pfd.fd == fd)
        return entry;
    }
  FastEntry *entry = g_new0 (FastEntry, 1);
  entry->pfd.fd = fd;
  g_source_add_poll (&fs->source, &entry->pfd);
  g_ptr_array_add (fs->entries, entry);
  return entry;
}

/* Sends @ex's SQL on @conn from the caller's thread without blocking and
 * arms the record of its socket.  FALSE, with nothing sent (or the
 * connection broken), when the connection would not take it. */
static gboolean
fast_send (Exec *ex, FastSource *fs, TuskPoolConn *conn, const char *sql)
{
  Run *r = &ex->run;
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  int fd = PQsocket (pg);
  if (fd < 0)
    return FALSE;
  FastEntry *entry = fast_entry_get (fs, fd);
  /* Busy: a caller's connection given to two executions at once (misuse);
   * the worker path reports what libpq says. */
  if (entry->run || PQsetnonblocking (pg, 1) != 0)
    return FALSE;
  r->start = g_get_monotonic_time ();
  if (!PQsendQuery (pg, sql))
    {
      PQsetnonblocking (pg, 0);
      return FALSE;
    }
  PQsetSingleRowMode (pg);
  int flushed = PQflush (pg); /* 1: the rest when the socket is writable */
  r->conn = conn;
  r->pg = pg;
  r->fast = TRUE;
  r->nonblocking = TRUE;
  r->need_flush = flushed == 1;
  r->pool_receiver = PQsetNoticeReceiver (pg, on_notice, r);
  r->entry = entry;
  r->entry->run = r;
  r->entry->quiet = FALSE;
  r->entry->pfd.revents = 0;
  r->entry->pfd.events = G_IO_IN | (r->need_flush ? G_IO_OUT : 0);
  ex->phase = PHASE_FAST; /* before the hook can read it */
  g_atomic_int_inc (&fast_started);
  return TRUE;
}

/* The fast path's entry, before @ex has its handle: sends @sql.  FALSE
 * when it does not apply (a stream, disabled, cancelled already, no idle
 * connection at hand, a main context that another thread runs, a
 * connection that would not take the query); then nothing happened and the
 * worker path takes over. */
static gboolean
fast_start (Exec *ex, const char *sql, GCancellable *cancellable)
{
  if (ex->stream || !g_atomic_int_get (&fast_path_enabled)
      || g_cancellable_is_cancelled (cancellable))
    return FALSE;
  /* The socket is read in the context's dispatch, on this thread. */
  if (!g_main_context_acquire (ex->context))
    return FALSE;
  FastSource *fs = fast_source_get (ex->context);
  TuskPoolConn *conn
      = ex->given_conn
            ? ex->given_conn
            : tusk_pool_try_acquire (ex->pool, fast_source_quiet, fs);
  gboolean started = conn && fast_send (ex, fs, conn, sql);
  if (conn && !started && conn != ex->given_conn)
    tusk_pool_release (conn); /* closed if broken */
  g_main_context_release (ex->context);
  return started;
}

static void
fast_detach (Run *r)
{
  r->entry->run = NULL;
  r->entry->pfd.events = 0;
  r->entry = NULL;
  r->fast = FALSE;
}

static void
fast_deliver_notices (Run *r)
{
  Exec *ex = r->ex;
  if (r->notices == NULL)
    return;
  /* Taken first: the callback may recurse into the context. */
  g_autoptr (GPtrArray) notices = g_steal_pointer (&r->notices);
  if (ex->notice_func)
    for (guint i = 0; i < notices->len; i++)
      ex->notice_func (ex->handle, notices->pdata[i], ex->notice_data);
}

/* A worker takes over a run begun on the caller's thread. */
static void
exec_continue_job (gpointer data)
{
  Exec *ex = data;
  Run *r = &ex->run;

  PQsetnonblocking (r->pg, 0); /* sends what is left of the query */
  r->nonblocking = FALSE;
  run_watch_cancel (r);
  /* A cancel on the caller's thread started its request already; one from
   * now on wakes this thread. */
  if (handle_is_cancelled (ex->handle))
    run_request_cancel (r);

  if (r->pending)
    handle_result (r, g_steal_pointer (&r->pending));
  if (!r->abandon)
    run_pump (r);
  run_unwatch_cancel (r);
  run_end (r, TRUE);
  exec_end (ex, FALSE);
}

/* A worker names the result's columns from the catalog (the fast path read
 * the rows), then ends. */
static void
exec_look_up_job (gpointer data)
{
  Exec *ex = data;
  look_up_columns (ex->run.pg, ex->result->columns);
  exec_end (ex, FALSE);
}

/* Too many rows for the caller's thread, or a COPY: a worker goes on with
 * the blocking code. */
static void
fast_hand_over (Run *r)
{
  Exec *ex = r->ex;
  fast_detach (r);
  pthread_mutex_lock (&ex->lock);
  ex->phase = PHASE_WORKER;
  pthread_mutex_unlock (&ex->lock);
  g_atomic_int_inc (&fast_handed_over);
  tusk_runtime_run_func (ex->runtime, exec_continue_job, ex);
}

/* ReadyForQuery on the caller's thread. */
static void
fast_finish (Run *r)
{
  Exec *ex = r->ex;
  FastEntry *entry = r->entry;
  fast_detach (r);
  run_end (r, FALSE);
  /* From here on no cancel request starts: the connection is on its way
   * back.  Only a cancelled handle can have one started or running. */
  exec_unhook (ex);
  gboolean cancelled = handle_is_cancelled (ex->handle);
  gboolean sending = FALSE, end_later = FALSE;
  if (cancelled)
    {
      pthread_mutex_lock (&ex->lock);
      ex->phase = PHASE_DONE;
      if (ex->cancel_job == CANCEL_JOB_QUEUED)
        ex->cancel_job = CANCEL_JOB_STOLEN; /* too late to matter */
      sending = ex->cancel_job == CANCEL_JOB_RUNNING;
      /* Invariant 2: DONE gives the caller's connection back. */
      end_later = sending && r->conn == ex->given_conn;
      ex->end_after_cancel = end_later;
      pthread_mutex_unlock (&ex->lock);
    }
  if (r->unnamed > 0 && ex->error == NULL && !sending)
    {
      /* Catalog queries block. */
      g_atomic_int_inc (&fast_looked_up);
      tusk_runtime_run_func (ex->runtime, exec_look_up_job, ex);
      return;
    }
  g_atomic_int_inc (&fast_finished);
  name_placeholders (ex->result->columns);
  if (!end_later)
    {
      if (r->conn != ex->given_conn && !r->broken && !r->abandon && !cancelled
          && PQstatus (r->pg) == CONNECTION_OK)
        {
          /* Drained to ReadyForQuery: watched while idle (FastEntry). */
          entry->quiet = TRUE;
          entry->released_at = g_get_monotonic_time ();
          entry->pfd.events = G_IO_IN;
        }
      exec_end (ex, TRUE);
    }
}

static gboolean
end_after_cancel (gpointer data)
{
  Exec *ex = data;
  tusk_tsan_acquire (ex);
  exec_end (ex, TRUE);
  return G_SOURCE_REMOVE;
}

/* On a thread of its own (tusk_runtime_run_urgent ()): sends the cancel
 * request (PQcancel blocks), unless the statement ended first; then gives
 * back the connection if the execution ended meanwhile (invariant 2). */
static void
cancel_job (gpointer data)
{
  Exec *ex = data;
  pthread_mutex_lock (&ex->lock);
  gboolean send = ex->cancel_job == CANCEL_JOB_QUEUED;
  TuskPoolConn *conn = ex->run.conn; /* exec_end () takes it under lock */
  if (send)
    ex->cancel_job = CANCEL_JOB_RUNNING;
  pthread_mutex_unlock (&ex->lock);
  if (send)
    {
      g_autoptr (GError) error = NULL;
      gint64 start = g_get_monotonic_time ();
      if (!tusk_pool_conn_cancel (conn, &error))
        tusk_warn ("%s", error->message);
      else
        tusk_debug ("cancel request for query %s sent in %.2f ms",
                    ex->handle->id, (g_get_monotonic_time () - start) / 1000.0);
      pthread_mutex_lock (&ex->lock);
      ex->cancel_job = CANCEL_JOB_DONE;
      pthread_cond_broadcast (&ex->cond);
      gboolean end = ex->end_after_cancel;
      TuskPoolConn *deferred = g_steal_pointer (&ex->deferred_conn);
      gboolean discard = ex->deferred_discard;
      pthread_mutex_unlock (&ex->lock);
      if (deferred)
        conn_give_back (deferred, discard);
      if (end)
        {
          /* The statement ended while the request was on its way. */
          GSource *source = g_idle_source_new ();
          g_source_set_priority (source, G_PRIORITY_DEFAULT);
          g_source_set_callback (source, end_after_cancel, exec_ref (ex),
                                 (GDestroyNotify)exec_unref);
          g_source_set_static_name (source, "[tusk] query end");
          tusk_tsan_release (ex);
          g_source_attach (source, ex->context);
          g_source_unref (source);
        }
    }
  exec_unref (ex);
}

/* The FastSource found @r's socket ready: sends the rest of the query,
 * reads what arrived and handles every result complete so far, without
 * blocking; then ends, hands over to a worker, or waits for more. */
static void
fast_step (Run *r, gushort revents)
{
  if (r->busy)
    return; /* a callback below recursed into the context */
  r->busy = TRUE;
  r->entry->pfd.events = 0;
  if (r->need_flush)
    r->need_flush = PQflush (r->pg) == 1; /* a failure shows when reading */
  if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR | G_IO_NVAL))
      && !PQconsumeInput (r->pg))
    r->broken = TRUE; /* the connection is gone: nothing will wait */
  gboolean done = FALSE, to_worker = FALSE;
  while (!to_worker && (r->broken || !PQisBusy (r->pg)))
    {
      PGresult *res = PQgetResult (r->pg);
      if (res == NULL)
        {
          done = TRUE;
          break;
        }
      switch (PQresultStatus (res))
        {
          case PGRES_COPY_IN:
          case PGRES_COPY_OUT:
          case PGRES_COPY_BOTH:
            /* A COPY's data exchange is the blocking code's. */
            r->pending = res;
            to_worker = TRUE;
            break;
          default:
            handle_result (r, res);
            break;
        }
    }
  g_atomic_int_set (&r->ex->handle->rows_read,
                    (int)MIN (r->stmt_rows, G_MAXINT));
  fast_deliver_notices (r);
  r->busy = FALSE;
  if (done)
    fast_finish (r);
  else if (to_worker || r->read_bytes >= FAST_MAX_BYTES)
    fast_hand_over (r);
  else
    r->entry->pfd.events = G_IO_IN | (r->need_flush ? G_IO_OUT : 0);
}

/* ---- entry points ------------------------------------------------------ */

/* The worker path's job; holds the run's reference. */
static void
exec_job (gpointer data)
{
  exec_run (data);
}

TuskQueryResult *
tusk_query_execute_sync (TuskPool *pool, const char *sql,
                         const TuskQueryOptions *options,
                         GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (sql != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  Exec *ex = exec_new (pool, sql, options, cancellable, FALSE);
  exec_run (exec_ref (ex));
  TuskQueryResult *result = NULL;
  if (ex->error)
    g_propagate_error (error, g_steal_pointer (&ex->error));
  else
    result = g_steal_pointer (&ex->result);
  exec_unref (ex);
  return result;
}

/* The execution reports its own cancel (QUERY_CANCELLED, or its results
 * when it finished first), with history and unregistering, whatever the
 * phase. */
TuskQueryHandle *
tusk_query_execute_async (TuskPool *pool, TuskRuntime *runtime, const char *sql,
                          const TuskQueryOptions *options,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (runtime != NULL, NULL);
  g_return_val_if_fail (sql != NULL, NULL);

  TuskQueryOptions defaults;
  if (options == NULL)
    {
      tusk_query_options_init (&defaults);
      options = &defaults;
    }
  Exec *ex = exec_alloc (pool, options, FALSE);
  ex->runtime = runtime;
  ex->context = g_main_context_ref_thread_default ();
  ex->callback = callback;
  ex->callback_data = user_data;
  exec_ref (ex); /* the run's, dropped by exec_end () */
  /* Sent first: the rest is made while the server works.  Nothing of it
   * shows before this call returns (the socket is read in a later
   * dispatch). */
  gboolean fast = fast_start (ex, sql, cancellable);
  exec_identify (ex, sql, cancellable);
  TuskQueryHandle *handle = tusk_query_handle_ref (ex->handle);
  if (fast)
    exec_hook (ex);
  else
    tusk_runtime_run_func (runtime, exec_job, ex);
  exec_unref (ex);
  return handle;
}

TuskQueryResult *
tusk_query_execute_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (
      G_TYPE_CHECK_INSTANCE_TYPE (result, query_async_result_get_type ()),
      NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  QueryAsyncResult *self = (QueryAsyncResult *)result;
  if (self->error)
    {
      g_propagate_error (error, g_steal_pointer (&self->error));
      return NULL;
    }
  g_return_val_if_fail (self->result != NULL, NULL); /* finished twice */
  return g_steal_pointer (&self->result);
}

TuskQueryHandle *
tusk_query_stream (TuskPool *pool, TuskRuntime *runtime, const char *sql,
                   const TuskQueryOptions *options,
                   const TuskQueryStreamFuncs *funcs, gpointer user_data,
                   GDestroyNotify destroy, GCancellable *cancellable)
{
  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (runtime != NULL, NULL);
  g_return_val_if_fail (sql != NULL, NULL);
  g_return_val_if_fail (funcs != NULL, NULL);

  Exec *ex = exec_new (pool, sql, options, cancellable, TRUE);
  ex->funcs = *funcs;
  ex->user_data = user_data;
  ex->destroy = destroy;
  ex->runtime = runtime;
  ex->context = g_main_context_ref_thread_default ();
  TuskQueryHandle *handle = tusk_query_handle_ref (ex->handle);
  tusk_runtime_run_func (runtime, exec_job, exec_ref (ex));
  exec_unref (ex);
  return handle;
}
