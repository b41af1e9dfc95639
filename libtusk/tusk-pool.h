/* tusk-pool.h: a small pool of PostgreSQL connections for one connection
 * config (research §1, data model "ConnectionPool", "PoolStatus").
 *
 * A pool is created by opening its first connection and running `SELECT 1`
 * on it, so that a wrong password, a missing database or a refused port
 * fail at creation, each with its own error category and hint.  Further
 * connections are opened on demand, up to max_size.  Every connection gets
 * the session defaults (statement_timeout, idle_in_transaction_session_
 * timeout, default_transaction_read_only for a read-only config,
 * application_name, TCP keepalives) in its startup packet: no extra round
 * trip, no SET.
 *
 * Acquiring hands out a connection that is open, idle and outside any
 * transaction ("fast recycling"): one left in a transaction is rolled back,
 * one with a statement still running is cancelled and drained, and one that
 * is broken (also one whose server went away while it sat idle, e.g. after a
 * server restart) is closed and replaced by a new one.  Recycling happens on
 * the acquiring side, so releasing never touches the network.
 *
 * When every connection is in use, an acquire waits (FIFO) up to the wait
 * timeout and then fails with TUSK_ERROR_POOL_TIMEOUT, whose message says
 * how many connections are in use and how many tasks are waiting.
 *
 * Thread rules: a pool is shared and reference-counted; every function may be
 * called from any thread.  Functions ending in _sync block (network, or
 * waiting for a connection): call them on a worker, never on the UI thread.
 * tusk_pool_release(), tusk_pool_get_status() and tusk_pool_close() never
 * block on the network.  A TuskPoolConn has a single owner at a time: the
 * thread that acquired it, or one it handed the connection to.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-connection-config.h"
#include "tusk-runtime.h"

G_BEGIN_DECLS

/* The largest max_size a pool accepts (research §1: "max 8 for heavy
 * workloads"); each connection costs the server 1.3-10 MB. */
#define TUSK_POOL_MAX_SIZE_LIMIT 8

/**
 * TuskPoolOptions:
 *
 * How a pool behaves.  Plain data, copied by tusk_pool_new_sync(); start
 * from tusk_pool_options_init() and change what differs.  Every timeout is
 * in the unit its name says.
 */
typedef struct
{
  guint max_size;         /* 1-TUSK_POOL_MAX_SIZE_LIMIT; default 4 */
  int wait_timeout_ms;    /* how long an acquire waits for a free connection
                             when all are in use; default 5000; 0 fails at
                             once; -1 waits forever */
  int create_timeout_ms;  /* bounds opening one connection (the config's
                             connect timeout applies too, whichever is
                             shorter; rounded up to whole seconds, at least
                             2); default 10000; 0 leaves only the config's */
  int recycle_timeout_ms; /* bounds the ROLLBACK or cancel+drain of a
                             dirty connection; past it the connection is
                             replaced; default 5000; 0 waits forever */

  /* Session defaults, sent in every connection's startup packet.  0 means
   * none (no timeout, no keepalive setting). */
  int statement_timeout_secs; /* when the config's own is -1; default 30 */
  int idle_in_transaction_timeout_secs; /* default 60 */
  int keepalives_idle_secs;             /* default 60 */
  int keepalives_interval_secs;         /* default 15 */
  int keepalives_count;                 /* default 3 */
} TuskPoolOptions;

/* Fills @options with the defaults above. */
void tusk_pool_options_init (TuskPoolOptions *options);

/**
 * TuskPoolStatus:
 *
 * A snapshot of a pool, taken atomically (data model "PoolStatus", SC-010):
 * the four numbers always belong to the same moment.
 */
typedef struct
{
  guint max_size; /* the pool's capacity */
  guint size;     /* connections open or being opened, idle or in use */
  int available;  /* idle connections minus waiting tasks: negative while
                     tasks wait (then every connection is in use) */
  guint waiting;  /* acquires waiting for a connection */
} TuskPoolStatus;

/**
 * TuskPool:
 *
 * Opaque and reference-counted: tusk_pool_ref(), tusk_pool_unref().  Each
 * acquired connection holds a reference, so the pool outlives its
 * connections.
 */
typedef struct TuskPool TuskPool;

/**
 * TuskPoolConn:
 *
 * One acquired connection.  Opaque; owned by whoever acquired it until it is
 * given back with tusk_pool_release().  The query module uses it (through
 * tusk-pool-private.h); front ends only pass it along.
 */
typedef struct TuskPoolConn TuskPoolConn;

/**
 * tusk_pool_new_sync:
 * @config: (transfer none): the connection; copied
 * @password: (nullable): its password, or %NULL to let libpq find one
 *   (PGPASSWORD, ~/.pgpass) or go without; copied, kept for new connections
 *   and overwritten with zeros when the pool is freed
 * @options: (nullable): copied; %NULL for the defaults
 * @cancellable: (nullable): cancels opening the first connection
 * @error: return location for a TUSK_ERROR
 *
 * Checks @config (tusk_connection_config_validate()) and @options, opens
 * the first connection and runs `SELECT 1` on it.  Blocks (up to the create
 * timeout, twice at most); call on a worker.
 *
 * Errors: TUSK_ERROR_VALIDATION for a bad config or max_size, and whatever
 * connecting reports: TUSK_ERROR_AUTHENTICATION for a wrong password (28P01)
 * or role, TUSK_ERROR_CONNECTION for a missing database (3D000), a refused
 * port (08001) or a timeout, TUSK_ERROR_SSL, TUSK_ERROR_QUERY_CANCELLED;
 * each with the server's SQLSTATE and a hint (tusk-error.h).
 *
 * Returns: (transfer full) (nullable): the pool, with one idle connection,
 *   or %NULL with @error set; release with tusk_pool_unref().
 */
TuskPool *tusk_pool_new_sync (const TuskConnectionConfig *config,
                              const char *password,
                              const TuskPoolOptions *options,
                              GCancellable *cancellable, GError **error);

/**
 * tusk_pool_new_async:
 * @runtime: where to run tusk_pool_new_sync(); must outlive the call
 *
 * The same on @runtime; the arguments are copied before it returns.
 * @callback runs on the caller's thread-default main context; it calls
 * tusk_pool_new_finish().  Never blocks.
 */
void tusk_pool_new_async (TuskRuntime *runtime,
                          const TuskConnectionConfig *config,
                          const char *password, const TuskPoolOptions *options,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);

/**
 * tusk_pool_new_finish:
 *
 * Returns: (transfer full) (nullable): as tusk_pool_new_sync().
 */
TuskPool *tusk_pool_new_finish (GAsyncResult *result, GError **error);

/* Returns (transfer full) @pool with one more reference. */
TuskPool *tusk_pool_ref (TuskPool *pool);

/* Drops a reference (@pool nullable).  The last one closes the pool
 * (tusk_pool_close()) and frees it; there is none left while a connection
 * is out, so that never waits. */
void tusk_pool_unref (TuskPool *pool);

/* Returns (transfer none) the pool's own copy of its config, valid as long
 * as the pool; never changes. */
const TuskConnectionConfig *tusk_pool_get_config (TuskPool *pool);

/* Fills @status with an atomic snapshot.  Never blocks (beyond the pool's
 * mutex, held only for bookkeeping). */
void tusk_pool_get_status (TuskPool *pool, TuskPoolStatus *status);

/**
 * tusk_pool_acquire_sync:
 * @pool: a pool
 * @cancellable: (nullable): cancels waiting, opening and recycling
 * @error: return location for a TUSK_ERROR
 *
 * Hands out a clean connection: an idle one (recycled if needed), or a new
 * one while the pool is below max_size, or else the first one released,
 * waiting up to the wait timeout.  Blocks; call on a worker.
 *
 * Errors: TUSK_ERROR_POOL_TIMEOUT ("Timed out after 5 s waiting for a
 * connection to <name>: 4 in use, 3 tasks waiting", the count including the
 * caller), TUSK_ERROR_QUERY_CANCELLED, TUSK_ERROR_CONNECTION "… pool is
 * closed" after tusk_pool_close(), and any error of opening a connection.
 * A failed acquire leaves the pool as it was (a connection it found broken
 * is closed).
 *
 * Returns: (transfer full) (nullable): the connection; give it back with
 *   tusk_pool_release() (or tusk_pool_conn_discard(), private).
 */
TuskPoolConn *tusk_pool_acquire_sync (TuskPool *pool, GCancellable *cancellable,
                                      GError **error);

/**
 * tusk_pool_acquire_async:
 * @runtime: runs what blocks (opening, recycling); must outlive the call
 *
 * The same without blocking the caller: while the caller waits for a
 * connection to be released, no worker thread is held.  A clean idle
 * connection is handed out without a trip through @runtime.  @callback runs
 * on the caller's thread-default main context (never inside this call) and
 * calls tusk_pool_acquire_finish().  The wait timeout and a cancellation
 * are noticed on that main context too, so it must be running.
 */
void tusk_pool_acquire_async (TuskPool *pool, TuskRuntime *runtime,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);

/**
 * tusk_pool_acquire_finish:
 *
 * Once the cancellable is cancelled this reports TUSK_ERROR_QUERY_CANCELLED,
 * even if a connection was obtained meanwhile (it goes back to the pool).
 * A result never finished is given back too.
 *
 * Returns: (transfer full) (nullable): as tusk_pool_acquire_sync().
 */
TuskPoolConn *tusk_pool_acquire_finish (TuskPool *pool, GAsyncResult *result,
                                        GError **error);

/**
 * tusk_pool_release:
 * @conn: (transfer full) (nullable): an acquired connection
 *
 * Gives @conn back: to the longest-waiting acquire if there is one, else to
 * the idle list.  A broken connection, or any after tusk_pool_close(), is
 * closed instead.  One left dirty (in a transaction, a statement running) is
 * recycled by the next acquire, at the latest; the server's idle-in-
 * transaction timeout ends such a transaction anyway.  Never touches the
 * network; any thread.
 */
void tusk_pool_release (TuskPoolConn *conn);

/**
 * tusk_pool_close:
 * @pool: a pool
 *
 * Closes the pool: every waiting acquire fails with TUSK_ERROR_CONNECTION
 * ("… pool is closed"), and so does every later one; idle connections are
 * closed now, those in use when they are released.  Idempotent; any
 * thread; does not wait for connections in use.
 */
void tusk_pool_close (TuskPool *pool);

/* Whether tusk_pool_close() has been called. */
gboolean tusk_pool_is_closed (TuskPool *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskPool, tusk_pool_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskPoolConn, tusk_pool_release)

G_END_DECLS
