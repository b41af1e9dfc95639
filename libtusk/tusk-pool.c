/* tusk-pool.c: the connection pool of one connection config: slots, idle
 * connections, a FIFO of waiting acquires, and recycling on acquire.
 *
 * Design note.
 *
 * The pool has max_size slots.  A slot is free, or holds an idle
 * connection, or is taken: by a connection handed out, by a connection in
 * transit to a waiter (to be recycled), or reserved for a connection being
 * opened.  `lock` guards the bookkeeping; no network I/O ever happens with it
 * held, and releasing never does network I/O at all.
 *
 * States of one connection (TuskPoolConn) and the function that moves it:
 *
 *   OPENING  --conn_open() ok-->             OUT     (ready_conn)
 *   OPENING  --conn_open() fails-->          gone, slot freed (ready_conn)
 *   OUT      --tusk_pool_release(), clean
 *               or dirty, no waiter-->       IDLE
 *   OUT      --tusk_pool_release(),
 *               a waiter queued-->           GRANTED (to the oldest waiter)
 *   OUT      --release() broken or closed,
 *               tusk_pool_conn_discard()-->  gone, slot freed
 *   IDLE     --acquire (idle list head)-->   GRANTED (to that acquire)
 *   IDLE     --tusk_pool_close()-->          gone
 *   GRANTED  --ready_conn(): clean, or
 *               recycled (ROLLBACK,
 *               cancel+drain)-->             OUT
 *   GRANTED  --start_ready(): clean (async,
 *               no worker needed)-->         OUT
 *   GRANTED  --ready_conn(): broken or
 *               recycling failed-->          gone, and the slot OPENING again
 *
 * "Clean" is decided by conn_check() without blocking: it reads what the
 * server sent while the connection sat idle, so the FATAL (on_notice()) or
 * end of file of a backend terminated by a server restart marks the
 * connection broken before it is handed out.
 *
 * A slot that is freed goes to the oldest waiter first (as a reserved slot
 * to open a connection in: slot_free_locked()), so capacity never sits
 * unused while a task waits.  Waiters are sync (a thread in
 * tusk_pool_acquire_sync() sleeping on `cond`) or async (a GTask; its wait
 * timeout and cancellation are sources on the task's main context, and no
 * thread is held while it waits).  Whoever takes a waiter off the queue (a
 * grant, the timeout, the cancellation, close) decides its outcome, under
 * `lock`; everyone else then finds it gone and does nothing.
 *
 * Invariants (checked under `lock` by check_locked() in debug builds):
 *   1. size == idle + n_taken <= max_size.
 *   2. waiting > 0 implies idle == 0 and size == max_size: no task waits
 *      while a connection or a slot could be handed out (so available ==
 *      idle - waiting is never both positive and a lie).
 *   3. closed implies idle == 0 and waiting == 0.
 *   4. Every connection out of the idle list (OUT or GRANTED) and every
 *      reserved slot is counted once in n_taken; an idle connection is never
 *      touched by anyone but the thread that takes it off the list.
 *   5. A connection leaves ready_conn() only in CONNECTION_OK and
 *      PQTRANS_IDLE, with its pending input read (never dirty or broken).
 * The status (tusk_pool_get_status()) reads these counters under the same
 * lock, so its four numbers always belong together (SC-010).
 *
 * References: the owner holds one; each connection out holds one (taken in
 * ready_conn(), dropped by release/discard), each async acquire one.  Idle
 * connections hold none, so the last unref can close them.
 *
 * Locks: pthread mutex/cond rather than GMutex/GCond, because GLib's are
 * futex-based and invisible to ThreadSanitizer, which checks the pool's
 * stress test.  `lock` is a leaf: while it is held nothing of ours is taken,
 * only GLib's internal locks (attaching a source, connecting a cancellable
 * source), which never call back into the pool.
 */
#define G_LOG_DOMAIN "tusk-pool"

#include "tusk-pool-private.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "tusk-config.h"
#include "tusk-connection-config-private.h"
#include "tusk-error-private.h"
#include "tusk-log.h"
#include "tusk-pg-private.h"
#include "tusk-runtime-private.h"

typedef enum
{
  WAITER_WAITING, /* in pool->waiters */
  WAITER_GOT_CONN,
  WAITER_GOT_SLOT,
  WAITER_FAILED,
} WaiterState;

typedef struct
{
  GList link; /* in pool->waiters while WAITING; link.data is the Waiter */
  WaiterState state;
  TuskPoolConn *conn; /* GOT_CONN: the connection granted, maybe dirty */
  GError *error;      /* FAILED */
  GTask *task;        /* async waiters only (borrowed: the Acquire's task) */
} Waiter;

struct TuskPool
{
  int ref_count; /* atomic */

  /* Immutable after tusk_pool_new_sync (). */
  TuskConnectionConfig *config;
  TuskPoolOptions options;
  TuskPgParams *params; /* holds the password, wiped when freed */
  /* The route's hook (tusk_pool_new_routed_sync ()): called before each
   * connection is opened, on the opening thread. */
  gboolean (*prepare) (gpointer data, GCancellable *cancellable,
                       GError **error);
  gpointer route_data;
  GDestroyNotify route_destroy;

  pthread_mutex_t lock; /* protects everything below */
  pthread_cond_t cond;  /* broadcast when a sync waiter may be done */
  GQueue idle;          /* of TuskPoolConn *, most recently used first */
  guint n_taken;        /* connections out or granted, and reserved slots */
  GQueue waiters;       /* of Waiter *, links embedded, oldest first */
  gboolean closed;
};

struct TuskPoolConn
{
  TuskPool *pool; /* a reference while out (see the design note) */
  PGconn *pg;
  PGcancel *cancel; /* nullable */
  gboolean discard; /* set by tusk_pool_conn_discard () */
  gboolean fatal;   /* the server sent a FATAL or PANIC (on_notice ()) */
};

typedef enum
{
  CONN_CLEAN,
  CONN_DIRTY,
  CONN_BROKEN,
} ConnState;

/* ---- bookkeeping (all *_locked functions need pool->lock) ---------------- */

static void
check_locked (TuskPool *pool)
{
#if TUSK_DEBUG_BUILD
  guint idle = pool->idle.length;
  guint size = idle + pool->n_taken;

  g_assert (size <= pool->options.max_size);
  g_assert (pool->waiters.length == 0
            || (idle == 0 && size == pool->options.max_size));
  g_assert (!pool->closed || (idle == 0 && pool->waiters.length == 0));
#else
  (void)pool;
#endif
}

static guint
size_locked (TuskPool *pool)
{
  return pool->idle.length + pool->n_taken;
}

/* Takes the oldest waiter off the queue, or returns NULL. */
static Waiter *
pop_waiter_locked (TuskPool *pool)
{
  GList *link = g_queue_pop_head_link (&pool->waiters);
  return link ? link->data : NULL;
}

/* Tells @waiter, just taken off the queue and given its outcome, that it is
 * done: a sync one wakes up; an async one is put on @notify, to be finished
 * by notify_async_waiters () once the lock is released. */
static void
wake_locked (TuskPool *pool, Waiter *waiter, GQueue *notify)
{
  if (waiter->task)
    g_queue_push_tail_link (notify, &waiter->link);
  else
    pthread_cond_broadcast (&pool->cond);
}

/* A taken slot is free again: it goes to the oldest waiter if there is one,
 * which will open a connection in it. */
static void
slot_free_locked (TuskPool *pool, GQueue *notify)
{
  Waiter *waiter = pop_waiter_locked (pool);

  g_assert (pool->n_taken > 0);
  if (waiter)
    {
      waiter->state = WAITER_GOT_SLOT;
      wake_locked (pool, waiter, notify);
    }
  else
    pool->n_taken--;
}

static GError *
closed_error (TuskPool *pool)
{
  GError *error = NULL;
  tusk_set_error (&error, TUSK_ERROR_CONNECTION,
                  "Connect again to open a new pool",
                  "The connection pool of %s is closed", pool->config->name);
  return error;
}

static GError *
cancelled_error (void)
{
  GError *error = NULL;
  tusk_set_error (&error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                  "Acquiring a connection was cancelled");
  return error;
}

/* The pool-timeout error; @waiting counts the caller among the tasks
 * waiting. */
static GError *
timeout_error_locked (TuskPool *pool, guint waiting)
{
  GError *error = NULL;

  tusk_set_error (
      &error, TUSK_ERROR_POOL_TIMEOUT,
      "Every connection of the pool is busy—wait for a running query to "
      "finish, cancel one, or close unused tabs",
      "Timed out after %g s waiting for a connection to %s: %u in use, "
      "%u %s waiting",
      pool->options.wait_timeout_ms / 1000.0, pool->config->name, pool->n_taken,
      waiting, waiting == 1 ? "task" : "tasks");
  return error;
}

/* ---- one connection ------------------------------------------------------ */

/* libpq hands an error that arrives outside a statement to the notice
 * receiver: for an idle connection that is the FATAL of a terminated
 * backend (57P01 at a server shutdown, pg_terminate_backend ()), whose end
 * of file may not have arrived yet.  Such a connection is finished. */
static void
on_notice (void *arg, const PGresult *res)
{
  TuskPoolConn *conn = arg;
  const char *severity
      = PQresultErrorField (res, PG_DIAG_SEVERITY_NONLOCALIZED);

  if (severity
      && (g_str_equal (severity, "FATAL") || g_str_equal (severity, "PANIC")))
    conn->fatal = TRUE;
  g_autofree char *text = g_strchomp (g_strdup (PQresultErrorMessage (res)));
  tusk_debug ("server said on a pooled connection: %s", text);
}

/* Opens a connection (blocking, up to the create timeout).  The caller holds
 * the slot it goes in. */
static TuskPoolConn *
conn_open (TuskPool *pool, GCancellable *cancellable, GError **error)
{
  gint64 start = g_get_monotonic_time ();
  if (pool->prepare && !pool->prepare (pool->route_data, cancellable, error))
    return NULL;
  PGconn *pg = tusk_pg_connect (tusk_pg_params_keywords (pool->params),
                                tusk_pg_params_values (pool->params),
                                cancellable, error);
  if (pg == NULL)
    return NULL;

  TuskPoolConn *conn = g_new0 (TuskPoolConn, 1);
  PQsetNoticeReceiver (pg, on_notice, conn);
  conn->pool = pool;
  conn->pg = pg;
  conn->cancel = PQgetCancel (pg);
  tusk_debug ("opened a connection to %s (backend %d) in %.1f ms",
              pool->config->name, PQbackendPID (pg),
              (g_get_monotonic_time () - start) / 1000.0);
  return conn;
}

/* Closes @conn; its slot is the caller's business.  Sends a Terminate
 * message at most: does not wait for the server. */
static void
conn_close (TuskPoolConn *conn)
{
  if (conn->cancel)
    PQfreeCancel (conn->cancel);
  PQfinish (conn->pg);
  g_free (conn);
}

/* Without blocking: reads whatever the server sent while @conn sat idle (a
 * NOTICE, or the FATAL and end of file of a backend that was terminated,
 * e.g. by a restart) and says whether @conn can be handed out as it is.  A
 * connection whose server went away without a word (a dead network) looks
 * clean here; TCP keepalives and the first statement find it out. */
static ConnState
conn_check (TuskPoolConn *conn)
{
  PGconn *pg = conn->pg;

  /* A terminated backend sends a FATAL, then end of file: two reads; a
   * few more for NOTICEs in between. */
  for (int i = 0; i < 4 && PQstatus (pg) == CONNECTION_OK; i++)
    {
      struct pollfd fd = { .fd = PQsocket (pg), .events = POLLIN };
      int ready = poll (&fd, 1, 0);
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready <= 0)
        break;
      if (!PQconsumeInput (pg))
        break;
      (void)PQisBusy (pg); /* parses what was read: on_notice () sees a FATAL */
    }
  if (PQstatus (pg) != CONNECTION_OK || conn->fatal)
    return CONN_BROKEN;
  switch (PQtransactionStatus (pg))
    {
      case PQTRANS_IDLE:
        return CONN_CLEAN;
      case PQTRANS_ACTIVE:
      case PQTRANS_INTRANS:
      case PQTRANS_INERROR:
        return CONN_DIRTY;
      case PQTRANS_UNKNOWN:
      default:
        return CONN_BROKEN;
    }
}

/* Waits until @pg has a whole result to give (PQisBusy () false), until
 * @deadline (monotonic µs, 0 for none) or until @cancellable is cancelled.
 * On FALSE, @pg is mid-statement: the caller closes it. */
static gboolean
wait_ready (PGconn *pg, gint64 deadline, GCancellable *cancellable,
            GError **error)
{
  GPollFD cancel_fd = { .fd = -1 };
  gboolean have_cancel_fd
      = cancellable && g_cancellable_make_pollfd (cancellable, &cancel_fd);
  gboolean ok = TRUE;

  while (PQisBusy (pg))
    {
      struct pollfd fds[2] = {
        { .fd = PQsocket (pg), .events = POLLIN },
        { .fd = have_cancel_fd ? cancel_fd.fd : -1, .events = POLLIN },
      };
      int timeout_ms = -1;
      if (deadline)
        {
          gint64 left = deadline - g_get_monotonic_time ();
          timeout_ms = left > 0 ? (int)((left + 999) / 1000) : 0;
        }
      int ready = poll (fds, 2, timeout_ms);
      if (ready < 0 && errno == EINTR)
        continue;
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_propagate_error (error, cancelled_error ());
          ok = FALSE;
          break;
        }
      if (ready < 0)
        {
          g_propagate_error (
              error, tusk_error_from_errno (errno, "Waiting for the server"));
          ok = FALSE;
          break;
        }
      if (ready == 0)
        {
          tusk_set_error (error, TUSK_ERROR_CONNECTION, NULL,
                          "The server did not answer in time");
          ok = FALSE;
          break;
        }
      if (!PQconsumeInput (pg))
        {
          g_propagate_error (error, tusk_error_from_pg_result (pg, NULL));
          ok = FALSE;
          break;
        }
    }
  if (have_cancel_fd)
    g_cancellable_release_fd (cancellable);
  return ok;
}

/* Reads and drops every result of the statement @pg is running.  FALSE (and
 * @pg to be closed) on a timeout, a cancellation, a lost connection or a
 * COPY, which would need a protocol exchange of its own.  The first
 * statement error, if any, goes to @statement_error (nullable). */
static gboolean
drain (PGconn *pg, gint64 deadline, GCancellable *cancellable,
       GError **statement_error, GError **error)
{
  for (;;)
    {
      if (!wait_ready (pg, deadline, cancellable, error))
        return FALSE;
      PGresult *res = PQgetResult (pg);
      if (res == NULL && PQstatus (pg) != CONNECTION_OK)
        {
          g_propagate_error (error, tusk_error_from_pg_result (pg, NULL));
          return FALSE;
        }
      if (res == NULL)
        return TRUE;
      switch (PQresultStatus (res))
        {
          case PGRES_COPY_IN:
          case PGRES_COPY_OUT:
          case PGRES_COPY_BOTH:
            PQclear (res);
            tusk_set_error (error, TUSK_ERROR_INTERNAL, NULL,
                            "A COPY was left unfinished on the connection");
            return FALSE;
          case PGRES_FATAL_ERROR:
            if (statement_error && *statement_error == NULL)
              *statement_error = tusk_error_from_pg_result (pg, res);
            break;
          default:
            break;
        }
      PQclear (res);
    }
}

/* Runs @sql and waits for it (blocking, up to @deadline).  On FALSE, @pg may
 * be mid-statement: the caller closes it. */
static gboolean
exec_sql (PGconn *pg, const char *sql, gint64 deadline,
          GCancellable *cancellable, GError **error)
{
  GError *statement_error = NULL;

  if (!PQsendQuery (pg, sql))
    {
      g_propagate_error (error, tusk_error_from_pg_result (pg, NULL));
      return FALSE;
    }
  if (!drain (pg, deadline, cancellable, &statement_error, error))
    {
      g_clear_error (&statement_error);
      return FALSE;
    }
  if (statement_error)
    {
      g_propagate_error (error, statement_error);
      return FALSE;
    }
  return TRUE;
}

static gint64
deadline_after (int timeout_ms)
{
  return timeout_ms > 0 ? g_get_monotonic_time () + (gint64)timeout_ms * 1000
                        : 0;
}

/* Makes a granted connection clean (blocking, up to the recycle timeout):
 * cancels and drains a statement still running, rolls back a transaction.
 * FALSE when @conn is broken or could not be cleaned: the caller closes it. */
static gboolean
conn_recycle (TuskPool *pool, TuskPoolConn *conn, GCancellable *cancellable)
{
  PGconn *pg = conn->pg;
  g_autoptr (GError) error = NULL;

  switch (conn_check (conn))
    {
      case CONN_CLEAN:
        return TRUE;
      case CONN_BROKEN:
        tusk_debug (
            "a pooled connection to %s was broken: %s", pool->config->name,
            conn->fatal ? "the server ended its session" : PQerrorMessage (pg));
        return FALSE;
      case CONN_DIRTY:
        break;
    }

  gint64 deadline = deadline_after (pool->options.recycle_timeout_ms);
  if (PQtransactionStatus (pg) == PQTRANS_ACTIVE)
    {
      char errbuf[256];
      if (conn->cancel && !PQcancel (conn->cancel, errbuf, sizeof errbuf))
        tusk_debug ("could not cancel a statement left running: %s", errbuf);
      if (!drain (pg, deadline, cancellable, NULL, &error))
        {
          tusk_debug ("could not drain a connection to %s: %s",
                      pool->config->name, error->message);
          return FALSE;
        }
    }
  if (PQtransactionStatus (pg) == PQTRANS_INTRANS
      || PQtransactionStatus (pg) == PQTRANS_INERROR)
    {
      if (!exec_sql (pg, "ROLLBACK", deadline, cancellable, &error))
        {
          tusk_debug ("could not roll back a connection to %s: %s",
                      pool->config->name, error->message);
          return FALSE;
        }
      tusk_debug ("rolled back a transaction left open on a connection to %s",
                  pool->config->name);
    }
  return PQstatus (pg) == CONNECTION_OK
         && PQtransactionStatus (pg) == PQTRANS_IDLE;
}

/* ---- notifying async waiters --------------------------------------------- */

/* What an async acquire carries (its task data). */
typedef struct
{
  TuskPool *pool; /* a reference */
  TuskRuntime *runtime;
  Waiter waiter;
  GSource *timeout_source; /* owned; while waiting, on the task's context */
  GSource *cancel_source;  /* owned; likewise */
  /* What ready_conn () is to work on: a granted connection (to recycle) or
   * a reserved slot (to open one in); given back by acquire_free () if the
   * job never ran. */
  TuskPoolConn *conn;
  gboolean has_slot;
} Acquire;

static void slot_free (TuskPool *pool);

static void
acquire_drop_sources (Acquire *acquire)
{
  if (acquire->timeout_source)
    {
      g_source_destroy (acquire->timeout_source);
      g_clear_pointer (&acquire->timeout_source, g_source_unref);
    }
  if (acquire->cancel_source)
    {
      g_source_destroy (acquire->cancel_source);
      g_clear_pointer (&acquire->cancel_source, g_source_unref);
    }
}

static void
acquire_free (Acquire *acquire)
{
  TuskPool *pool = acquire->pool;

  tusk_tsan_acquire (acquire->waiter.task); /* finalizing: an address only */
  acquire_drop_sources (acquire);
  if (acquire->conn)
    {
      /* Granted but never handed out: it goes back like a released one. */
      tusk_pool_ref (pool); /* which release drops */
      tusk_pool_release (g_steal_pointer (&acquire->conn));
    }
  if (acquire->has_slot)
    slot_free (pool);
  g_clear_error (&acquire->waiter.error);
  tusk_pool_unref (pool);
  g_free (acquire);
}

static void start_ready (GTask *task);

/* Finishes async waiters that were taken off the queue with an outcome
 * (wake_locked ()).  Called without the lock. */
static void
notify_async_waiters (GQueue *notify)
{
  GList *link;

  while ((link = g_queue_pop_head_link (notify)))
    {
      Waiter *waiter = link->data;
      GTask *task = waiter->task; /* the queue's reference, dropped below */
      Acquire *acquire = g_task_get_task_data (task);

      acquire_drop_sources (acquire);
      switch (waiter->state)
        {
          case WAITER_GOT_CONN:
            acquire->conn = g_steal_pointer (&waiter->conn);
            start_ready (task);
            break;
          case WAITER_GOT_SLOT:
            acquire->has_slot = TRUE;
            start_ready (task);
            break;
          case WAITER_FAILED:
            tusk_tsan_release (task);
            g_task_return_error (task, g_steal_pointer (&waiter->error));
            break;
          case WAITER_WAITING:
          default:
            g_assert_not_reached ();
        }
      g_object_unref (task);
    }
}

static void
slot_free (TuskPool *pool)
{
  GQueue notify = G_QUEUE_INIT;

  pthread_mutex_lock (&pool->lock);
  slot_free_locked (pool, &notify);
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);
  notify_async_waiters (&notify);
}

/* ---- handing out --------------------------------------------------------- */

/* Turns what an acquire was granted into a clean connection (blocking):
 * @conn (transfer full, nullable) is recycled, or replaced when that fails;
 * without @conn the caller holds a reserved slot and a connection is opened
 * in it.  Either way the slot is the caller's; on failure it is freed (to
 * the next waiter), so a failed acquire leaves the pool as it was. */
static TuskPoolConn *
ready_conn (TuskPool *pool, TuskPoolConn *conn, GCancellable *cancellable,
            GError **error)
{
  if (conn && !conn_recycle (pool, conn, cancellable))
    g_clear_pointer (&conn, conn_close);

  if (conn == NULL)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_propagate_error (error, cancelled_error ());
          slot_free (pool);
          return NULL;
        }
      conn = conn_open (pool, cancellable, error);
      if (conn == NULL)
        {
          slot_free (pool);
          return NULL;
        }
    }

  pthread_mutex_lock (&pool->lock);
  gboolean closed = pool->closed;
  pthread_mutex_unlock (&pool->lock);
  if (closed)
    {
      conn_close (conn);
      slot_free (pool);
      g_propagate_error (error, closed_error (pool));
      return NULL;
    }

  g_assert (PQstatus (conn->pg) == CONNECTION_OK
            && PQtransactionStatus (conn->pg) == PQTRANS_IDLE);
  conn->pool = tusk_pool_ref (pool);
  return conn;
}

/* What an acquire gets at once, decided under the lock. */
typedef enum
{
  TAKE_CONN,  /* an idle connection */
  TAKE_SLOT,  /* a free slot, to open a connection in */
  TAKE_WAIT,  /* nothing: wait */
  TAKE_CLOSED /* the pool is closed */
} Take;

static Take
take_locked (TuskPool *pool, TuskPoolConn **conn)
{
  if (pool->closed)
    return TAKE_CLOSED;
  *conn = g_queue_pop_head (&pool->idle);
  if (*conn)
    {
      pool->n_taken++;
      return TAKE_CONN;
    }
  if (size_locked (pool) < pool->options.max_size)
    {
      pool->n_taken++;
      return TAKE_SLOT;
    }
  return TAKE_WAIT;
}

/* ---- creation ------------------------------------------------------------ */

void
tusk_pool_options_init (TuskPoolOptions *options)
{
  g_return_if_fail (options != NULL);
  *options = (TuskPoolOptions){
    .max_size = 4,
    .wait_timeout_ms = 5000,
    .create_timeout_ms = 10000,
    .recycle_timeout_ms = 5000,
    .statement_timeout_secs = 30,
    .idle_in_transaction_timeout_secs = 60,
    .keepalives_idle_secs = 60,
    .keepalives_interval_secs = 15,
    .keepalives_count = 3,
  };
}

static gboolean
options_validate (const TuskPoolOptions *options, GError **error)
{
  g_autoptr (GString) problems = g_string_new (NULL);

#define PROBLEM(cond, text)                                                    \
  if (cond)                                                                    \
  g_string_append_printf (problems, "%s%s", problems->len ? "; " : "", text)
  PROBLEM (options->max_size < 1
               || options->max_size > TUSK_POOL_MAX_SIZE_LIMIT,
           "max_size: must be 1-" G_STRINGIFY (TUSK_POOL_MAX_SIZE_LIMIT));
  PROBLEM (options->wait_timeout_ms < -1,
           "wait_timeout_ms: must be -1 (forever) or more");
  PROBLEM (options->create_timeout_ms < 0,
           "create_timeout_ms: must not be negative");
  PROBLEM (options->recycle_timeout_ms < 0,
           "recycle_timeout_ms: must not be negative");
  PROBLEM (options->statement_timeout_secs < 0
               || options->idle_in_transaction_timeout_secs < 0
               || options->keepalives_idle_secs < 0
               || options->keepalives_interval_secs < 0
               || options->keepalives_count < 0,
           "session defaults: must not be negative");
#undef PROBLEM

  if (problems->len == 0)
    return TRUE;
  tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL, "%s", problems->str);
  return FALSE;
}

/* The connect timeout that libpq gets: the config's, bounded by the create
 * timeout (rounded up to whole seconds); 0 for none. */
static int
connect_timeout_secs (const TuskConnectionConfig *config,
                      const TuskPoolOptions *options)
{
  int secs = MAX (config->options.connect_timeout_secs, 0);
  if (options->create_timeout_ms > 0)
    {
      int create_secs = (options->create_timeout_ms + 999) / 1000;
      secs = secs ? MIN (secs, create_secs) : create_secs;
    }
  return secs;
}

static void
pool_free (TuskPool *pool)
{
  g_assert (pool->n_taken == 0 && pool->idle.length == 0
            && pool->waiters.length == 0);
  tusk_pg_params_free (pool->params);
  tusk_connection_config_free (pool->config);
  if (pool->route_destroy)
    pool->route_destroy (pool->route_data);
  pthread_cond_destroy (&pool->cond);
  pthread_mutex_destroy (&pool->lock);
  g_free (pool);
}

TuskPool *
tusk_pool_new_sync (const TuskConnectionConfig *config, const char *password,
                    const TuskPoolOptions *options, GCancellable *cancellable,
                    GError **error)
{
  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return tusk_pool_new_routed_sync (config, password, options, NULL,
                                    cancellable, error);
}

TuskPool *
tusk_pool_new_routed_sync (const TuskConnectionConfig *config,
                           const char *password, const TuskPoolOptions *options,
                           const TuskPoolRoute *route,
                           GCancellable *cancellable, GError **error)
{
  TuskPoolOptions defaults;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (route == NULL || route->hostaddr != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (options == NULL)
    {
      tusk_pool_options_init (&defaults);
      options = &defaults;
    }
  if (!tusk_connection_config_validate (config, error)
      || !options_validate (options, error))
    {
      if (route && route->destroy)
        route->destroy (route->data);
      return NULL;
    }

  TuskPool *pool = g_new0 (TuskPool, 1);
  pool->ref_count = 1;
  pool->config = tusk_connection_config_copy (config);
  pool->options = *options;
  if (route)
    {
      pool->prepare = route->prepare;
      pool->route_data = route->data;
      pool->route_destroy = route->destroy;
    }
  pthread_mutex_init (&pool->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC); /* as g_get_monotonic */
  pthread_cond_init (&pool->cond, &attr);
  pthread_condattr_destroy (&attr);
  g_queue_init (&pool->idle);
  g_queue_init (&pool->waiters);

  TuskSessionDefaults session = {
    .statement_timeout_secs = options->statement_timeout_secs,
    .idle_in_transaction_timeout_secs
    = options->idle_in_transaction_timeout_secs,
    .keepalives_idle_secs = options->keepalives_idle_secs,
    .keepalives_interval_secs = options->keepalives_interval_secs,
    .keepalives_count = options->keepalives_count,
  };
  pool->params = tusk_connection_config_to_params (config, password, &session);
  char timeout[16];
  g_snprintf (timeout, sizeof timeout, "%d",
              connect_timeout_secs (config, options));
  tusk_pg_params_set (pool->params, "connect_timeout", timeout);
  if (route)
    {
      /* libpq connects to hostaddr:port; "host" stays the name that TLS
       * verify-full checks and ~/.pgpass matches. */
      char port[16];
      g_snprintf (port, sizeof port, "%d", route->port);
      tusk_pg_params_set (pool->params, "hostaddr", route->hostaddr);
      tusk_pg_params_set (pool->params, "port", port);
      if (route->host)
        tusk_pg_params_set (pool->params, "host", route->host);
    }

  /* Validation: the first connection and SELECT 1 (research §1). */
  gint64 start = g_get_monotonic_time ();
  TuskPoolConn *conn = conn_open (pool, cancellable, error);
  if (conn
      && !exec_sql (conn->pg, "SELECT 1",
                    deadline_after (options->create_timeout_ms), cancellable,
                    error))
    g_clear_pointer (&conn, conn_close);
  if (conn == NULL)
    {
      pool_free (pool);
      return NULL;
    }
  g_queue_push_head (&pool->idle, conn);
  tusk_info ("connection pool of %s ready in %.1f ms (max %u connections%s%s)",
             config->name, (g_get_monotonic_time () - start) / 1000.0,
             options->max_size, route ? ", through " : "",
             route ? route->hostaddr : "");
  return pool;
}

typedef struct
{
  TuskConnectionConfig *config;
  char *password; /* wiped */
  TuskPoolOptions options;
  gboolean has_options;
} NewData;

static void
new_data_free (NewData *data)
{
  tusk_connection_config_free (data->config);
  if (data->password)
    explicit_bzero (data->password, strlen (data->password));
  g_free (data->password);
  g_free (data);
}

static void
new_thread (GTask *task, gpointer source, gpointer task_data,
            GCancellable *cancellable)
{
  NewData *data = task_data;
  GError *error = NULL;
  (void)source;

  TuskPool *pool = tusk_pool_new_sync (
      data->config, data->password, data->has_options ? &data->options : NULL,
      cancellable, &error);
  tusk_tsan_release (task);
  if (pool)
    g_task_return_pointer (task, pool, (GDestroyNotify)tusk_pool_unref);
  else
    g_task_return_error (task, error);
}

void
tusk_pool_new_async (TuskRuntime *runtime, const TuskConnectionConfig *config,
                     const char *password, const TuskPoolOptions *options,
                     GCancellable *cancellable, GAsyncReadyCallback callback,
                     gpointer user_data)
{
  g_return_if_fail (runtime != NULL);
  g_return_if_fail (config != NULL);

  NewData *data = g_new0 (NewData, 1);
  data->config = tusk_connection_config_copy (config);
  data->password = g_strdup (password);
  if (options)
    {
      data->options = *options;
      data->has_options = TRUE;
    }

  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tusk_pool_new_async);
  g_task_set_name (task, "tusk_pool_new");
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, data, (GDestroyNotify)new_data_free);
  tusk_runtime_run_in_thread (runtime, task, new_thread);
}

TuskPool *
tusk_pool_new_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == tusk_pool_new_async, NULL);

  GTask *task = G_TASK (result);
  tusk_tsan_acquire (task);
  TuskPool *pool = g_task_propagate_pointer (task, error);
  if (pool && g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      tusk_pool_unref (pool);
      tusk_set_error (error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                      "Connecting was cancelled");
      return NULL;
    }
  return pool;
}

/* ---- the rest of the public API ----------------------------------------- */

TuskPool *
tusk_pool_ref (TuskPool *pool)
{
  g_return_val_if_fail (pool != NULL, NULL);
  g_atomic_int_inc (&pool->ref_count);
  return pool;
}

void
tusk_pool_unref (TuskPool *pool)
{
  if (pool == NULL || !g_atomic_int_dec_and_test (&pool->ref_count))
    return;
  tusk_pool_close (pool);
  pool_free (pool);
}

const TuskConnectionConfig *
tusk_pool_get_config (TuskPool *pool)
{
  g_return_val_if_fail (pool != NULL, NULL);
  return pool->config;
}

void
tusk_pool_get_status (TuskPool *pool, TuskPoolStatus *status)
{
  g_return_if_fail (pool != NULL);
  g_return_if_fail (status != NULL);

  pthread_mutex_lock (&pool->lock);
  status->max_size = pool->options.max_size;
  status->size = size_locked (pool);
  status->waiting = pool->waiters.length;
  status->available = (int)pool->idle.length - (int)pool->waiters.length;
  pthread_mutex_unlock (&pool->lock);
}

gboolean
tusk_pool_is_closed (TuskPool *pool)
{
  g_return_val_if_fail (pool != NULL, TRUE);

  pthread_mutex_lock (&pool->lock);
  gboolean closed = pool->closed;
  pthread_mutex_unlock (&pool->lock);
  return closed;
}

void
tusk_pool_close (TuskPool *pool)
{
  GQueue notify = G_QUEUE_INIT;
  GQueue idle = G_QUEUE_INIT;
  Waiter *waiter;

  g_return_if_fail (pool != NULL);

  pthread_mutex_lock (&pool->lock);
  if (pool->closed)
    {
      pthread_mutex_unlock (&pool->lock);
      return;
    }
  pool->closed = TRUE;
  idle = pool->idle;
  g_queue_init (&pool->idle);
  while ((waiter = pop_waiter_locked (pool)))
    {
      waiter->state = WAITER_FAILED;
      waiter->error = closed_error (pool);
      wake_locked (pool, waiter, &notify);
    }
  guint in_use = pool->n_taken;
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);

  tusk_debug ("closing the connection pool of %s: %u idle, %u in use",
              pool->config->name, idle.length, in_use);
  TuskPoolConn *conn;
  while ((conn = g_queue_pop_head (&idle)))
    conn_close (conn);
  notify_async_waiters (&notify);
}

/* ---- acquire ------------------------------------------------------------- */

static void
on_sync_cancelled (GCancellable *cancellable, gpointer data)
{
  TuskPool *pool = data;
  (void)cancellable;

  /* The waiter itself is not touched: it may be gone by now. */
  pthread_mutex_lock (&pool->lock);
  pthread_cond_broadcast (&pool->cond);
  pthread_mutex_unlock (&pool->lock);
}

/* Sleeps until @waiter (queued) gets an outcome, the wait timeout passes or
 * @cancellable is cancelled; takes it off the queue itself in the last two
 * cases (then FAILED with the error).  Needs the lock; may release it while
 * it sleeps. */
static void
wait_locked (TuskPool *pool, Waiter *waiter, gint64 deadline,
             GCancellable *cancellable)
{
  while (waiter->state == WAITER_WAITING)
    {
      GError *error = NULL;
      if (g_cancellable_is_cancelled (cancellable))
        error = cancelled_error ();
      else if (deadline && g_get_monotonic_time () >= deadline)
        error = timeout_error_locked (pool, pool->waiters.length);
      if (error)
        {
          g_queue_unlink (&pool->waiters, &waiter->link);
          waiter->state = WAITER_FAILED;
          waiter->error = error;
          check_locked (pool);
          return;
        }
      if (deadline)
        {
          struct timespec ts = {
            .tv_sec = deadline / G_USEC_PER_SEC,
            .tv_nsec = (deadline % G_USEC_PER_SEC) * 1000,
          };
          pthread_cond_timedwait (&pool->cond, &pool->lock, &ts);
        }
      else
        pthread_cond_wait (&pool->cond, &pool->lock);
    }
}

TuskPoolConn *
tusk_pool_acquire_sync (TuskPool *pool, GCancellable *cancellable,
                        GError **error)
{
  TuskPoolConn *conn = NULL;
  GError *failure = NULL;

  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_cancellable_is_cancelled (cancellable))
    {
      g_propagate_error (error, cancelled_error ());
      return NULL;
    }
  gint64 deadline = deadline_after (pool->options.wait_timeout_ms);

  pthread_mutex_lock (&pool->lock);
  Take take = take_locked (pool, &conn);
  if (take == TAKE_WAIT && pool->options.wait_timeout_ms == 0)
    failure = timeout_error_locked (pool, pool->waiters.length + 1);
  else if (take == TAKE_WAIT)
    {
      Waiter waiter = { .link.data = &waiter };
      g_queue_push_tail_link (&pool->waiters, &waiter.link);
      check_locked (pool);
      pthread_mutex_unlock (&pool->lock);

      /* Connected outside the lock: the handler runs at once if the
       * cancellable is already cancelled, and takes the lock. */
      gulong handler = 0;
      if (cancellable)
        handler = g_cancellable_connect (
            cancellable, G_CALLBACK (on_sync_cancelled), pool, NULL);
      pthread_mutex_lock (&pool->lock);
      wait_locked (pool, &waiter, deadline, cancellable);
      pthread_mutex_unlock (&pool->lock);
      g_cancellable_disconnect (cancellable, handler);

      /* The waiter is off the queue now, and ours alone. */
      switch (waiter.state)
        {
          case WAITER_GOT_CONN:
            return ready_conn (pool, waiter.conn, cancellable, error);
          case WAITER_GOT_SLOT:
            return ready_conn (pool, NULL, cancellable, error);
          case WAITER_FAILED:
            g_propagate_error (error, waiter.error);
            return NULL;
          case WAITER_WAITING:
          default:
            g_assert_not_reached ();
        }
    }
  else if (take == TAKE_CLOSED)
    failure = closed_error (pool);
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);

  if (failure)
    {
      g_propagate_error (error, failure);
      return NULL;
    }
  return ready_conn (pool, conn, cancellable, error);
}

static void
acquire_thread (GTask *task, gpointer source, gpointer task_data,
                GCancellable *cancellable)
{
  Acquire *acquire = task_data;
  GError *error = NULL;
  (void)source;

  /* ready_conn () takes over the slot, whatever happens. */
  acquire->has_slot = FALSE;
  TuskPoolConn *conn = ready_conn (
      acquire->pool, g_steal_pointer (&acquire->conn), cancellable, &error);
  tusk_tsan_release (task);
  if (conn)
    g_task_return_pointer (task, conn, (GDestroyNotify)tusk_pool_release);
  else
    g_task_return_error (task, error);
}

/* Completes an async acquire that holds a connection or a slot: at once for
 * a clean connection, else on the runtime (recycling and opening block). */
static void
start_ready (GTask *task)
{
  Acquire *acquire = g_task_get_task_data (task);

  if (acquire->conn && conn_check (acquire->conn) == CONN_CLEAN)
    {
      TuskPoolConn *conn = g_steal_pointer (&acquire->conn);
      conn->pool = tusk_pool_ref (acquire->pool);
      tusk_tsan_release (task);
      g_task_return_pointer (task, conn, (GDestroyNotify)tusk_pool_release);
      return;
    }
  tusk_runtime_run_in_thread (acquire->runtime, task, acquire_thread);
}

/* The wait timeout or the cancellation of a queued async acquire, on the
 * task's main context.  Does nothing if a grant or close came first. */
static void
abandon_wait (GTask *task, gboolean cancelled)
{
  Acquire *acquire = g_task_get_task_data (task);
  TuskPool *pool = acquire->pool;
  GError *error;

  pthread_mutex_lock (&pool->lock);
  if (acquire->waiter.state != WAITER_WAITING)
    {
      pthread_mutex_unlock (&pool->lock);
      return;
    }
  error = cancelled ? cancelled_error ()
                    : timeout_error_locked (pool, pool->waiters.length);
  g_queue_unlink (&pool->waiters, &acquire->waiter.link);
  acquire->waiter.state = WAITER_FAILED;
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);

  acquire_drop_sources (acquire);
  g_task_return_error (task, error);
  g_object_unref (task); /* the queue's reference */
}

static gboolean
on_async_timeout (gpointer data)
{
  abandon_wait (data, FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_async_cancelled (GCancellable *cancellable, gpointer data)
{
  (void)cancellable;
  abandon_wait (data, TRUE);
  return G_SOURCE_REMOVE;
}

void
tusk_pool_acquire_async (TuskPool *pool, TuskRuntime *runtime,
                         GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  TuskPoolConn *conn = NULL;

  g_return_if_fail (pool != NULL);
  g_return_if_fail (runtime != NULL);

  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tusk_pool_acquire_async);
  g_task_set_name (task, "tusk_pool_acquire");
  g_task_set_check_cancellable (task, FALSE);
  Acquire *acquire = g_new0 (Acquire, 1);
  acquire->pool = tusk_pool_ref (pool);
  acquire->runtime = runtime;
  acquire->waiter.link.data = &acquire->waiter;
  acquire->waiter.task = task;
  g_task_set_task_data (task, acquire, (GDestroyNotify)acquire_free);

  if (g_cancellable_is_cancelled (cancellable))
    {
      g_task_return_error (task, cancelled_error ());
      return;
    }

  GError *failure = NULL;
  pthread_mutex_lock (&pool->lock);
  Take take = take_locked (pool, &conn);
  if (take == TAKE_WAIT && pool->options.wait_timeout_ms == 0)
    failure = timeout_error_locked (pool, pool->waiters.length + 1);
  else if (take == TAKE_WAIT)
    {
      /* The sources exist before the waiter is visible to a grant, which
       * destroys them. */
      GMainContext *context = g_task_get_context (task);
      if (pool->options.wait_timeout_ms > 0)
        {
          acquire->timeout_source
              = g_timeout_source_new ((guint)pool->options.wait_timeout_ms);
          g_source_set_callback (acquire->timeout_source, on_async_timeout,
                                 g_object_ref (task), g_object_unref);
          g_source_attach (acquire->timeout_source, context);
        }
      if (cancellable)
        {
          acquire->cancel_source = g_cancellable_source_new (cancellable);
          g_source_set_callback (
              acquire->cancel_source,
              (GSourceFunc)(void (*) (void))on_async_cancelled,
              g_object_ref (task), g_object_unref);
          g_source_attach (acquire->cancel_source, context);
        }
      g_object_ref (task); /* the queue's */
      g_queue_push_tail_link (&pool->waiters, &acquire->waiter.link);
    }
  else if (take == TAKE_CLOSED)
    failure = closed_error (pool);
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);

  if (failure)
    g_task_return_error (task, failure);
  else if (take == TAKE_CONN)
    {
      acquire->conn = conn;
      start_ready (task);
    }
  else if (take == TAKE_SLOT)
    {
      acquire->has_slot = TRUE;
      start_ready (task);
    }
}

TuskPoolConn *
tusk_pool_acquire_finish (TuskPool *pool, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == tusk_pool_acquire_async, NULL);

  GTask *task = G_TASK (result);
  tusk_tsan_acquire (task);
  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      tusk_pool_release (g_task_propagate_pointer (task, NULL));
      g_propagate_error (error, cancelled_error ());
      return NULL;
    }
  return g_task_propagate_pointer (task, error);
}

/* ---- release ------------------------------------------------------------- */

void
tusk_pool_release (TuskPoolConn *conn)
{
  GQueue notify = G_QUEUE_INIT;
  Waiter *waiter;

  if (conn == NULL)
    return;
  TuskPool *pool = conn->pool;
  gboolean broken
      = conn->discard || conn->fatal || PQstatus (conn->pg) != CONNECTION_OK;

  pthread_mutex_lock (&pool->lock);
  if (broken || pool->closed)
    slot_free_locked (pool, &notify);
  else if ((waiter = pop_waiter_locked (pool)))
    {
      waiter->state = WAITER_GOT_CONN;
      waiter->conn = conn;
      wake_locked (pool, waiter, &notify);
      conn = NULL;
    }
  else
    {
      g_queue_push_head (&pool->idle, conn);
      pool->n_taken--;
      conn = NULL;
    }
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);

  if (conn)
    {
      tusk_debug ("closed a %s connection to %s",
                  broken ? "broken" : "released", pool->config->name);
      conn_close (conn);
    }
  notify_async_waiters (&notify);
  tusk_pool_unref (pool);
}

/* ---- private ------------------------------------------------------------- */

PGconn *
tusk_pool_conn_get_pg (TuskPoolConn *conn)
{
  g_return_val_if_fail (conn != NULL, NULL);
  return conn->pg;
}

TuskPool *
tusk_pool_conn_get_pool (TuskPoolConn *conn)
{
  g_return_val_if_fail (conn != NULL, NULL);
  return conn->pool;
}

void
tusk_pool_conn_discard (TuskPoolConn *conn)
{
  if (conn == NULL)
    return;
  conn->discard = TRUE;
  tusk_pool_release (conn);
}

gboolean
tusk_pool_conn_cancel (TuskPoolConn *conn, GError **error)
{
  char errbuf[256] = "";

  g_return_val_if_fail (conn != NULL, FALSE);

  if (conn->cancel && PQcancel (conn->cancel, errbuf, sizeof errbuf))
    return TRUE;
  tusk_set_error (error, TUSK_ERROR_CONNECTION, NULL,
                  "Could not send the cancel request to %s: %s",
                  conn->pool->config->name,
                  *errbuf ? g_strchomp (errbuf) : "no cancel key");
  return FALSE;
}

/* ---- non-blocking acquire (the query module's fast path) ---------------- */

/* conn_check () without its poll (): for a socket known to have had nothing
 * to read since the connection was last released drained. */
static ConnState
conn_check_quiet (TuskPoolConn *conn)
{
  if (PQstatus (conn->pg) != CONNECTION_OK || conn->fatal)
    return CONN_BROKEN;
  return PQtransactionStatus (conn->pg) == PQTRANS_IDLE ? CONN_CLEAN
                                                        : CONN_DIRTY;
}

TuskPoolConn *
tusk_pool_try_acquire (TuskPool *pool, TuskPoolQuietFunc quiet,
                       gpointer quiet_data)
{
  TuskPoolConn *conn = NULL;

  g_return_val_if_fail (pool != NULL, NULL);

  pthread_mutex_lock (&pool->lock);
  if (!pool->closed && (conn = g_queue_pop_head (&pool->idle)))
    pool->n_taken++;
  check_locked (pool);
  pthread_mutex_unlock (&pool->lock);
  if (conn == NULL)
    return NULL;

  conn->pool = tusk_pool_ref (pool);
  ConnState state = quiet && quiet (PQsocket (conn->pg), quiet_data)
                        ? conn_check_quiet (conn)
                        : conn_check (conn);
  if (state == CONN_CLEAN)
    return conn;
  /* Recycling blocks: a dirty connection goes back to be recycled by the
   * next blocking acquire, a broken one is closed. */
  tusk_pool_release (conn);
  return NULL;
}
