/* tusk-query.h: running SQL on a pool connection (data model "QueryHandle",
 * "QueryResult", "ColumnInfo", "QueryType"): whole results, streamed
 * results, cancellation, the registry of running queries, and history.
 *
 * Every execution gets a TuskQueryHandle (a UUID, the connection id, the
 * SQL, the start time and a GCancellable).  It runs on a connection acquired
 * from a TuskPool (or one the caller already holds), on a runtime worker,
 * with the simple query protocol: a string may hold several statements.
 * The worker never blocks inside libpq: it polls the socket and the
 * cancellable's fd, so a cancel is noticed at once in every phase (waiting
 * for a worker or a connection, the server running, rows streaming, the
 * worker held back by a slow consumer).  It then sends the cancel request
 * itself (PQcancel blocks on the network, so never on the caller's thread),
 * drains the connection to ReadyForQuery and gives it back to the pool
 * clean.
 *
 * tusk_query_execute_async() has a fast path: when an idle connection is at
 * hand without waiting (or the caller passed its own) and the calling thread
 * may run its thread-default main context, the query is sent from inside the
 * call without blocking, and its socket is watched and read on that main
 * context, so a small result reaches the callback with no thread hop.  The
 * caller's thread never blocks on the network there either (the socket is
 * non-blocking; a cancel request is sent from a worker); the rest of a
 * result past its first 128 KiB of rows, a COPY, and type names that need
 * the catalog are handed over to a worker.
 *
 * Results: every value is text (PostgreSQL's output format), NULL is a NULL
 * pointer and '' an empty string.  Type names are those of PostgreSQL's
 * format_type() with the column's modifier ("character varying(20)",
 * "numeric(10,2)", "timestamp with time zone", "integer[]", user enums and
 * domains): built-in types are named without a round trip, others are
 * looked up once per server connection and cached.  A stream's columns
 * event comes before the connection is free for a lookup: it names a
 * user-defined type once the connection has met one (the first statement
 * returning one loads every user type's name when it ends) and says
 * "oid N" before that; the final result always has the real name.
 *
 * Several statements in one string: a whole result (execute) describes the
 * last statement (its rows, tag, rows_affected); the rows of earlier ones
 * are dropped.  A stream delivers the rows of every statement, each
 * row-returning statement announced by its own columns event; the final
 * event describes the last statement.  The first failing statement ends the
 * string (the server skips the rest; without an explicit BEGIN the whole
 * string is one implicit transaction and is rolled back).  Script runners
 * call this once per statement.
 *
 * History: with options->storage set and the pool's connection saved in that
 * storage, every execution (success, error or cancel) is queued to the
 * query history (tusk_history_repo_add(): never waits for the writer).
 *
 * Thread rules: TuskQueryHandle and TuskQueryRegistry are shared and
 * thread-safe.  TuskQueryResult, TuskColumnInfo and TuskNotice are plain
 * values: any number of threads may read one that none modifies.  A
 * TuskRowBatch is immutable and reference-counted (any thread).  Callbacks
 * run on the thread-default main context of the thread that started the
 * operation, never inside the call that started it.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-pool.h"
#include "tusk-schema.h"
#include "tusk-runtime.h"
#include "tusk-storage.h"

G_BEGIN_DECLS

/* The default number of rows per streamed batch. */
#define TUSK_QUERY_DEFAULT_BATCH_SIZE 1000
/* The default number of batches read from the server but not yet consumed;
 * past it the worker stops reading (back-pressure). */
#define TUSK_QUERY_DEFAULT_MAX_BATCHES_IN_FLIGHT 4

/* ---- handles and the registry --------------------------------------- */

/**
 * TuskQueryHandle:
 *
 * One execution (data model "QueryHandle").  Reference-counted and
 * thread-safe: its fields never change after creation, and its cancellable
 * may be cancelled from any thread.  States: running (registered), then
 * completed, failed or cancelled (unregistered before the final callback).
 */
typedef struct TuskQueryHandle TuskQueryHandle;

TuskQueryHandle *tusk_query_handle_ref (TuskQueryHandle *handle);
void tusk_query_handle_unref (TuskQueryHandle *handle);

/* Borrowed, valid as long as @handle: the UUID of the execution, the id of
 * the connection (the pool's config id) and the SQL as given. */
const char *tusk_query_handle_get_id (TuskQueryHandle *handle);
const char *tusk_query_handle_get_connection_id (TuskQueryHandle *handle);
const char *tusk_query_handle_get_sql (TuskQueryHandle *handle);

/* Wall-clock start (microseconds since the epoch, g_get_real_time ()). */
gint64 tusk_query_handle_get_started_at (TuskQueryHandle *handle);

/* Returns (transfer none) the handle's cancellable: the caller's one when
 * one was passed to the execute / stream call, else its own. */
GCancellable *tusk_query_handle_get_cancellable (TuskQueryHandle *handle);

/* Requests cancellation (FR-015): cancels the cancellable.  Never blocks:
 * the worker running the query sends the cancel request.  Idempotent; any
 * thread.  Best effort: a statement that completed first reports its
 * results. */
void tusk_query_handle_cancel (TuskQueryHandle *handle);
gboolean tusk_query_handle_is_cancelled (TuskQueryHandle *handle);

/**
 * TuskQueryRegistry:
 *
 * The queries running now (data model TuskState "active_queries").
 * Reference-counted; every function may be called from any thread and
 * never blocks beyond its mutex.  An execution given a registry (options)
 * holds a reference to it until the execution ends, so the owner may drop
 * its own reference at any time.
 */
typedef struct TuskQueryRegistry TuskQueryRegistry;

/* Returns (transfer full) an empty registry; free with
 * tusk_query_registry_unref(). */
TuskQueryRegistry *tusk_query_registry_new (void);
TuskQueryRegistry *tusk_query_registry_ref (TuskQueryRegistry *registry);
void tusk_query_registry_unref (TuskQueryRegistry *registry);

/* Registers and unregisters @handle (transfer none; the registry takes its
 * own reference).  Executions do this themselves; these are for callers
 * that track other work. */
void tusk_query_registry_add (TuskQueryRegistry *registry,
                              TuskQueryHandle *handle);
void tusk_query_registry_remove (TuskQueryRegistry *registry,
                                 TuskQueryHandle *handle);

/* Returns (transfer full) (nullable) the running query @query_id, or NULL. */
TuskQueryHandle *tusk_query_registry_lookup (TuskQueryRegistry *registry,
                                             const char *query_id);

/* Cancels the running query @query_id only.  FALSE when none runs under
 * that id (it may have just finished).  Never blocks on the network. */
gboolean tusk_query_registry_cancel (TuskQueryRegistry *registry,
                                     const char *query_id);

/* Cancels every running query of @connection_id (nullable: of every
 * connection) and returns how many.  Never blocks on the network; for a
 * disconnect and for shutting down. */
guint tusk_query_registry_cancel_connection (TuskQueryRegistry *registry,
                                             const char *connection_id);

/* Returns (transfer full) a snapshot of the running queries of
 * @connection_id (nullable: all), oldest first, as TuskQueryHandle * with
 * a reference each; free with g_ptr_array_unref(). */
GPtrArray *tusk_query_registry_list (TuskQueryRegistry *registry,
                                     const char *connection_id);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskQueryHandle, tusk_query_handle_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskQueryRegistry, tusk_query_registry_unref)

/* ---- results -------------------------------------------------------- */

typedef enum
{
  TUSK_QUERY_TYPE_SELECT, /* returned rows (SELECT, VALUES, TABLE, SHOW,
                             … RETURNING is still its command's type) */
  TUSK_QUERY_TYPE_INSERT,
  TUSK_QUERY_TYPE_UPDATE,
  TUSK_QUERY_TYPE_DELETE,
  TUSK_QUERY_TYPE_OTHER, /* DDL, MERGE, COPY, SELECT INTO, BEGIN, … */
} TuskQueryType;

/* "select", "insert", "update", "delete", "other". */
const char *tusk_query_type_to_string (TuskQueryType type);

/* The session's transaction state after the statement (PQtransactionStatus). */
typedef enum
{
  TUSK_TRANSACTION_IDLE,           /* outside a transaction block */
  TUSK_TRANSACTION_IN_TRANSACTION, /* inside BEGIN … */
  TUSK_TRANSACTION_FAILED,         /* inside a failed block: ROLLBACK */
  TUSK_TRANSACTION_UNKNOWN,        /* the connection is gone */
} TuskTransactionStatus;

/* "idle", "in transaction", "failed", "unknown". */
const char *tusk_transaction_status_to_string (TuskTransactionStatus status);

/**
 * TuskColumnInfo:
 *
 * One result column.  Plain data; free with tusk_column_info_free().
 */
typedef struct
{
  char *name;
  guint32 type_oid;
  int type_modifier; /* the column's typmod, -1 for none */
  char *type_name;   /* format_type (type_oid, type_modifier); for a table
                        column of a domain type, the domain (the wire
                        protocol only carries the base type) */
  guint32 table_oid; /* the table the column comes from, 0 if none */
  int table_column;  /* its attribute number there, 0 if none */
} TuskColumnInfo;

TuskColumnInfo *tusk_column_info_copy (const TuskColumnInfo *column);
void tusk_column_info_free (TuskColumnInfo *column);

/**
 * TuskNotice:
 *
 * A message the server sent while a statement ran (RAISE NOTICE, WARNING,
 * …).  Plain data; free with tusk_notice_free().
 */
typedef struct
{
  char *severity; /* "NOTICE", "WARNING", "INFO", "LOG", "DEBUG" (English) */
  char *sqlstate; /* nullable */
  char *message;  /* the primary message */
  char *detail;   /* nullable */
  char *hint;     /* nullable */
} TuskNotice;

TuskNotice *tusk_notice_copy (const TuskNotice *notice);
void tusk_notice_free (TuskNotice *notice);

/**
 * TuskRowBatch:
 *
 * Consecutive rows of one result, immutable and reference-counted.  Values
 * are NUL-terminated text owned by the batch, valid as long as it lives,
 * whatever happens to the query afterwards.
 *
 * Storage: rows are read in libpq's single-row mode (whole results too),
 * and a batch keeps its values in one buffer, back to back, with a 32-bit
 * offset per value (SQL NULL is an empty span): a value costs its text, a
 * terminator and 4 bytes, where a PGresult spends 16 on its length and
 * pointer, so a materialized result takes less memory than libpq's own.
 * Each value is copied once, out of its single-row result; the row of a
 * one-row result, and rows libpq delivers whole, stay in their PGresult and
 * are read in place, without a copy.
 */
typedef struct TuskRowBatch TuskRowBatch;

TuskRowBatch *tusk_row_batch_ref (TuskRowBatch *batch);
void tusk_row_batch_unref (TuskRowBatch *batch);

guint tusk_row_batch_get_n_rows (TuskRowBatch *batch);
guint tusk_row_batch_get_n_columns (TuskRowBatch *batch);

/* The 0-based index, within its statement's rows, of the batch's first
 * row. */
guint64 tusk_row_batch_get_first_row (TuskRowBatch *batch);

/* Returns (transfer none) (nullable) the text of a value, NULL for SQL
 * NULL; borrowed from @batch.  @length (optional) gets its length in bytes
 * (0 for NULL).  Out of range is a programming error. */
const char *tusk_row_batch_get_value (TuskRowBatch *batch, guint row,
                                      guint column, gsize *length);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskRowBatch, tusk_row_batch_unref)

/**
 * TuskQueryResult:
 *
 * What an execution produced (data model "QueryResult").  Plain data owned
 * by the struct; free with tusk_query_result_free().  Rows live in
 * batches, read with tusk_query_result_get_value().
 */
typedef struct
{
  char *query_id;        /* the handle's id */
  GPtrArray *columns;    /* TuskColumnInfo *; empty for a command */
  GPtrArray *batches;    /* TuskRowBatch *, in order; empty in a stream's
                            final result (the rows went to the consumer) */
  guint64 n_rows;        /* rows held in batches */
  guint64 rows_returned; /* rows the (last) statement returned, streamed or
                            held */
  gint64 rows_affected;  /* INSERT, UPDATE, DELETE, MERGE, COPY, SELECT
                            INTO, CREATE TABLE AS, MOVE, FETCH; -1 for
                            others */
  gint64 execution_time_ms;
  TuskQueryType query_type;
  char *command_tag;  /* "INSERT 0 3", "SELECT 5", "CREATE TABLE", … */
  GPtrArray *notices; /* TuskNotice *, in arrival order, of the whole
                         execution */
  TuskTransactionStatus transaction_status;
} TuskQueryResult;

/* Returns (transfer full) a copy (batches are shared, by reference). */
TuskQueryResult *tusk_query_result_copy (const TuskQueryResult *result);
void tusk_query_result_free (TuskQueryResult *result);

/* Returns (transfer none) (nullable) a value of a held row, NULL for SQL
 * NULL; @row < n_rows, @column < columns->len.  O(log batches). */
const char *tusk_query_result_get_value (const TuskQueryResult *result,
                                         guint64 row, guint column);
gboolean tusk_query_result_is_null (const TuskQueryResult *result, guint64 row,
                                    guint column);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskColumnInfo, tusk_column_info_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskNotice, tusk_notice_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskQueryResult, tusk_query_result_free)

/* ---- execution ------------------------------------------------------ */

/* Called on the caller's main context for each notice, while the statement
 * still runs; @notice is borrowed for the call (a copy is kept in the
 * result). */
typedef void (*TuskQueryNoticeFunc) (TuskQueryHandle *handle,
                                     const TuskNotice *notice,
                                     gpointer user_data);

/**
 * TuskQueryOptions:
 *
 * Per-execution settings.  Plain data read during the call that takes it
 * (pointers inside are referenced, not copied); zero-initialise or use
 * tusk_query_options_init().
 */
typedef struct
{
  TuskStorage *storage;        /* nullable: record history there (when the
                                  connection is saved in it); must outlive
                                  the execution */
  TuskQueryRegistry *registry; /* nullable: register the handle there */
  TuskSchemaCache *schema;     /* nullable: invalidated after DDL (and
                                  after COMMIT); referenced */
  TuskPoolConn *conn;          /* nullable: run on this connection, which the
                                  caller holds and keeps (for a session:
                                  BEGIN … COMMIT across calls), instead of
                                  acquiring one; the caller must not use it
                                  until the execution ends */
  guint batch_size;            /* rows per streamed batch; 0 = 1000 */
  guint max_batches_in_flight; /* streamed batches not yet consumed; 0 = 4 */
  TuskQueryNoticeFunc notice_func; /* nullable */
  gpointer notice_data;
} TuskQueryOptions;

void tusk_query_options_init (TuskQueryOptions *options);

/**
 * tusk_query_execute_sync:
 * @pool: where to acquire a connection (its config id is the connection
 *   id), or the pool of options->conn
 * @sql: one or more statements
 * @options: (nullable): %NULL for the defaults
 * @cancellable: (nullable): becomes the handle's cancellable
 * @error: return location for a TUSK_ERROR
 *
 * Runs @sql and collects the whole result.  Blocks; call on a worker.
 * Notices go to options->notice_func on the calling thread, from inside
 * this call.
 *
 * Errors: TUSK_ERROR_QUERY (with the server's SQLSTATE, position, detail,
 * hint; also a statement timeout), TUSK_ERROR_QUERY_CANCELLED, TUSK_ERROR_
 * CONNECTION (the server went away), and any error of acquiring.  On error
 * the connection is back in the pool (drained), or discarded if broken.
 *
 * Returns: (transfer full) (nullable): the result, free with
 *   tusk_query_result_free(), or %NULL with @error set.
 */
TuskQueryResult *tusk_query_execute_sync (TuskPool *pool, const char *sql,
                                          const TuskQueryOptions *options,
                                          GCancellable *cancellable,
                                          GError **error);

/**
 * tusk_query_execute_async:
 * @runtime: runs the query; must outlive it
 *
 * The same on @runtime.  Notices reach options->notice_func on the caller's
 * thread-default main context while the statement runs, and @callback runs
 * there afterwards (after every notice); it calls
 * tusk_query_execute_finish().  Never blocks.
 *
 * Returns: (transfer full): the handle (already registered); unref it
 *   when no longer needed (the execution keeps its own reference).
 */
TuskQueryHandle *tusk_query_execute_async (TuskPool *pool, TuskRuntime *runtime,
                                           const char *sql,
                                           const TuskQueryOptions *options,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback,
                                           gpointer user_data);

/* Returns (transfer full) (nullable): as tusk_query_execute_sync(). */
TuskQueryResult *tusk_query_execute_finish (GAsyncResult *result,
                                            GError **error);

/**
 * TuskQueryStreamFuncs:
 *
 * A stream consumer.  Every callback runs on the caller's thread-default
 * main context, in this order: columns (once per row-returning statement,
 * before its rows; @columns is borrowed), batch (any number; @batch is
 * borrowed: tusk_row_batch_ref() it to keep it), done (exactly once, last).
 * done gets either @result (borrowed: columns, totals, tag, notices; no
 * rows) or @error (borrowed).  A batch counts as consumed when its
 * callback returns: until then it holds back the worker (at most
 * max_batches_in_flight batches are read ahead), so a consumer that is slow
 * or a main context that is not iterated stops the reading.
 */
typedef struct
{
  void (*columns) (TuskQueryHandle *handle, const GPtrArray *columns,
                   gpointer user_data);
  void (*batch) (TuskQueryHandle *handle, TuskRowBatch *batch,
                 gpointer user_data);
  void (*done) (TuskQueryHandle *handle, const TuskQueryResult *result,
                const GError *error, gpointer user_data);
} TuskQueryStreamFuncs;

/**
 * tusk_query_stream:
 * @funcs: (transfer none): the consumer; copied; any member may be NULL
 * @user_data: passed to every callback
 * @destroy: (nullable): frees @user_data after done has run
 *
 * Runs @sql on @runtime (as tusk_query_execute_async()) and streams its rows
 * in batches of options->batch_size.  Memory stays bounded by
 * max_batches_in_flight batches whatever the result's size, unless the
 * consumer keeps the batches.  Never blocks.
 *
 * Returns: (transfer full): the handle; unref it when no longer needed.
 */
TuskQueryHandle *tusk_query_stream (TuskPool *pool, TuskRuntime *runtime,
                                    const char *sql,
                                    const TuskQueryOptions *options,
                                    const TuskQueryStreamFuncs *funcs,
                                    gpointer user_data, GDestroyNotify destroy,
                                    GCancellable *cancellable);

G_END_DECLS
