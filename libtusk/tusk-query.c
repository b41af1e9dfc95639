/* tusk-query.c: executing SQL on a pool connection, on a runtime worker,
 * whole or streamed, cancellable in every phase, with history.
 *
 * Design note.
 *
 * An execution is an Exec, shared (reference-counted) by the call that
 * started it, the runtime job and the main-context source that delivers its
 * events.  Its life:
 *
 *   QUEUED   --exec_new(): handle registered-->          (job queued)
 *   QUEUED   --worker: cancelled-->                       DONE (never sent)
 *   QUEUED   --worker: acquire fails-->                   DONE (error)
 *   RUNNING  --PQsendQuery(); poll loop-->                DRAINED
 *   RUNNING  --cancellable fd readable: PQcancel(),
 *               rows from then on dropped-->              RUNNING (cancelling)
 *   DRAINED  --PQgetResult() == NULL: ReadyForQuery;
 *               notice receiver restored, connection
 *               released (or discarded)-->                FINISHED
 *   FINISHED --history queued, handle unregistered,
 *               DONE event posted-->                      DONE
 *
 * Invariants:
 *   1. Only the worker touches the PGconn, and it never blocks inside libpq
 *      while a statement runs: it polls the socket and the cancellable's fd
 *      (the catalog lookups of type names are the one exception: short
 *      blocking queries on an idle connection).
 *   2. A connection goes back to the pool only after PQgetResult() returned
 *      NULL (ReadyForQuery), with the pool's notice receiver restored.
 *   3. The consumer sees: columns (per row-returning statement) before that
 *      statement's batches, batches in order, then exactly one DONE.
 *   4. in_flight (batches posted, not yet consumed) never exceeds
 *      max_in_flight: the worker waits on `cond` before reading on.
 *   5. A result is reported as cancelled iff the server said 57014 for a
 *      user cancel, or rows were dropped because of the cancel, or it was
 *      never sent; a statement that completed first returns its results.
 *
 * Lock rules: Exec.lock protects the event queue, `scheduled` and
 * `in_flight`; type_caches_lock protects the type-name caches; registry
 * locks protect their tables.  No two are ever held at once, and none is
 * held during network I/O or while a callback runs.
 */
#define G_LOG_DOMAIN "tusk-query"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
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

/* ---- handles ----------------------------------------------------------- */

struct TuskQueryHandle
{
  gatomicrefcount ref;
  char *id;
  char *connection_id;
  char *sql;
  gint64 started_at;
  GCancellable *cancellable;
  int in_flight;      /* atomic: batches posted, not yet consumed */
  int in_flight_peak; /* atomic: the most there ever were */
};

static TuskQueryHandle *
handle_new (const char *connection_id, const char *sql,
            GCancellable *cancellable)
{
  TuskQueryHandle *handle = g_new0 (TuskQueryHandle, 1);
  g_atomic_ref_count_init (&handle->ref);
  handle->id = g_uuid_string_random ();
  handle->connection_id = g_strdup (connection_id);
  handle->sql = g_strdup (sql);
  handle->started_at = g_get_real_time ();
  handle->cancellable
      = cancellable ? g_object_ref (cancellable) : g_cancellable_new ();
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
  if (handle == NULL || !g_atomic_ref_count_dec (&handle->ref))
    return;
  g_free (handle->id);
  g_free (handle->connection_id);
  g_free (handle->sql);
  g_object_unref (handle->cancellable);
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

GCancellable *
tusk_query_handle_get_cancellable (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, NULL);
  return handle->cancellable;
}

void
tusk_query_handle_cancel (TuskQueryHandle *handle)
{
  g_return_if_fail (handle != NULL);
  g_cancellable_cancel (handle->cancellable);
}

gboolean
tusk_query_handle_is_cancelled (TuskQueryHandle *handle)
{
  g_return_val_if_fail (handle != NULL, FALSE);
  return g_cancellable_is_cancelled (handle->cancellable);
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

/* ---- the registry ------------------------------------------------------ */

struct TuskQueryRegistry
{
  gatomicrefcount ref;
  GMutex lock;       /* protects by_id */
  GHashTable *by_id; /* id (owned by the handle) -> TuskQueryHandle * (ref) */
};

TuskQueryRegistry *
tusk_query_registry_new (void)
{
  TuskQueryRegistry *registry = g_new0 (TuskQueryRegistry, 1);
  g_atomic_ref_count_init (&registry->ref);
  g_mutex_init (&registry->lock);
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
  if (registry == NULL || !g_atomic_ref_count_dec (&registry->ref))
    return;
  g_hash_table_unref (registry->by_id);
  g_mutex_clear (&registry->lock);
  g_free (registry);
}

void
tusk_query_registry_add (TuskQueryRegistry *registry, TuskQueryHandle *handle)
{
  g_return_if_fail (registry != NULL && handle != NULL);
  g_mutex_lock (&registry->lock);
  g_hash_table_replace (registry->by_id, handle->id,
                        tusk_query_handle_ref (handle));
  g_mutex_unlock (&registry->lock);
}

void
tusk_query_registry_remove (TuskQueryRegistry *registry,
                            TuskQueryHandle *handle)
{
  g_return_if_fail (registry != NULL && handle != NULL);
  g_mutex_lock (&registry->lock);
  if (g_hash_table_lookup (registry->by_id, handle->id) == handle)
    g_hash_table_remove (registry->by_id, handle->id);
  g_mutex_unlock (&registry->lock);
}

TuskQueryHandle *
tusk_query_registry_lookup (TuskQueryRegistry *registry, const char *query_id)
{
  g_return_val_if_fail (registry != NULL && query_id != NULL, NULL);
  g_mutex_lock (&registry->lock);
  TuskQueryHandle *handle = g_hash_table_lookup (registry->by_id, query_id);
  if (handle)
    tusk_query_handle_ref (handle);
  g_mutex_unlock (&registry->lock);
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
  g_mutex_lock (&registry->lock);
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
  g_mutex_unlock (&registry->lock);
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

/* A batch holds its values either in a PGresult (a whole result, without a
 * copy) or in one arena: the values back to back, each NUL-terminated,
 * cell i spanning offsets[i] .. offsets[i + 1] (empty for NULL). */
struct TuskRowBatch
{
  gatomicrefcount ref;
  guint n_rows;
  guint n_columns;
  guint64 first_row;
  PGresult *res;
  char *data;
  gsize *offsets; /* n_rows * n_columns + 1 */
  guint8 *nulls;  /* n_rows * n_columns */
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
  if (batch == NULL || !g_atomic_ref_count_dec (&batch->ref))
    return;
  PQclear (batch->res);
  g_free (batch->data);
  g_free (batch->offsets);
  g_free (batch->nulls);
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
  if (batch->nulls[cell])
    {
      if (length)
        *length = 0;
      return NULL;
    }
  if (length)
    *length = batch->offsets[cell + 1] - batch->offsets[cell] - 1;
  return batch->data + batch->offsets[cell];
}

static TuskRowBatch *
batch_new_from_result (PGresult *res, guint64 first_row)
{
  TuskRowBatch *batch = g_new0 (TuskRowBatch, 1);
  g_atomic_ref_count_init (&batch->ref);
  batch->res = res;
  batch->n_rows = (guint)PQntuples (res);
  batch->n_columns = (guint)PQnfields (res);
  batch->first_row = first_row;
  return batch;
}

/* Collects single-row results into an arena batch. */
typedef struct
{
  TuskRowBatch *batch; /* being filled; NULL when none */
  gsize len, cap;      /* of batch->data */
  gsize last_len;      /* the previous batch's data size: the next one's
                          first allocation, so a batch's arena is allocated
                          once, not grown through mmap-sized reallocs */
  guint capacity;      /* rows */
} Builder;

static void
builder_add_row (Builder *b, const PGresult *res, guint n_columns,
                 guint64 first_row)
{
  if (b->batch == NULL)
    {
      b->batch = g_new0 (TuskRowBatch, 1);
      g_atomic_ref_count_init (&b->batch->ref);
      b->batch->n_columns = n_columns;
      b->batch->first_row = first_row;
      b->batch->offsets
          = g_new (gsize, (gsize)b->capacity * MAX (n_columns, 1) + 1);
      b->batch->nulls = g_new (guint8, (gsize)b->capacity * MAX (n_columns, 1));
      b->len = 0;
      b->cap = b->last_len + b->last_len / 8;
      if (b->cap)
        b->batch->data = g_malloc (b->cap);
    }
  TuskRowBatch *batch = b->batch;
  gsize cell = (gsize)batch->n_rows * n_columns;
  for (guint c = 0; c < n_columns; c++, cell++)
    {
      batch->offsets[cell] = b->len;
      if (PQgetisnull (res, 0, (int)c))
        {
          batch->nulls[cell] = 1;
          continue;
        }
      batch->nulls[cell] = 0;
      gsize n = (gsize)PQgetlength (res, 0, (int)c);
      if (b->len + n + 1 > b->cap)
        {
          b->cap = MAX (MAX (b->cap * 2, 4096), b->len + n + 1);
          batch->data = g_realloc (batch->data, b->cap);
        }
      memcpy (batch->data + b->len, PQgetvalue (res, 0, (int)c), n);
      batch->data[b->len + n] = '\0';
      b->len += n + 1;
    }
  batch->offsets[cell] = b->len;
  batch->n_rows++;
}

/* Returns (transfer full) (nullable) the batch being filled, trimmed. */
static TuskRowBatch *
builder_take (Builder *b)
{
  TuskRowBatch *batch = g_steal_pointer (&b->batch);
  if (batch == NULL)
    return NULL;
  /* Trim only real waste: a shrinking realloc of a large block costs a
   * copy or a page-table change. */
  if (b->len < b->cap / 2)
    batch->data = g_realloc (batch->data, MAX (b->len, 1));
  b->last_len = b->len;
  return batch;
}

/* ---- results ----------------------------------------------------------- */

static TuskQueryResult *
result_new (const char *query_id)
{
  TuskQueryResult *result = g_new0 (TuskQueryResult, 1);
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

static GMutex type_caches_lock; /* protects type_caches and every TypeCache */
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
              g_mutex_lock (&type_caches_lock);
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
          g_mutex_lock (&type_caches_lock);
          locked = TRUE;
          cache = type_cache_get_locked (pg);
        }
      gint64 key = type_key (column->type_oid, column->type_modifier);
      column->type_name = g_strdup (g_hash_table_lookup (cache->names, &key));
      if (column->type_name == NULL)
        unknown++;
    }
  if (locked)
    g_mutex_unlock (&type_caches_lock);
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
      g_mutex_lock (&type_caches_lock);
      TypeCache *cache = type_cache_get_locked (pg);
      for (int r = 0; r < PQntuples (res); r++)
        type_cache_put_locked (
            domains ? cache->domains : cache->names,
            (guint32)strtoul (PQgetvalue (res, r, 0), NULL, 10),
            atoi (PQgetvalue (res, r, 1)), PQgetvalue (res, r, 2));
      g_mutex_unlock (&type_caches_lock);
    }
  else
    {
      g_autofree char *text
          = g_strchomp (g_strdup (PQresultErrorMessage (res)));
      tusk_warn ("could not look up type names: %s", text);
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
  g_autoptr (GString) oids = g_string_new ("{");
  g_autoptr (GString) mods = g_string_new ("{");
  g_autoptr (GString) tables = g_string_new ("{");
  g_autoptr (GString) attnums = g_string_new ("{");
  g_mutex_lock (&type_caches_lock);
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
  g_mutex_unlock (&type_caches_lock);

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

/* Before streaming on a connection for the first time, load the names of
 * the database's own types (enums, domains, ranges, base and standalone
 * composite types, their arrays; not the row types of tables), so that a
 * stream's columns event, which comes before any lookup is possible, names
 * them.  One query per connection.  Blocks. */
static void
preload_types (PGconn *pg)
{
  g_mutex_lock (&type_caches_lock);
  TypeCache *cache = type_cache_get_locked (pg);
  gboolean done = cache->preloaded;
  cache->preloaded = TRUE;
  g_mutex_unlock (&type_caches_lock);
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
      g_mutex_lock (&type_caches_lock);
      cache = type_cache_get_locked (pg);
      for (int r = 0; r < PQntuples (res); r++)
        type_cache_put_locked (
            cache->names, (guint32)strtoul (PQgetvalue (res, r, 0), NULL, 10),
            -1, PQgetvalue (res, r, 1));
      g_mutex_unlock (&type_caches_lock);
    }
  PQclear (res);
}

static GPtrArray *
columns_from_result (const PGresult *res)
{
  int n = PQnfields (res);
  GPtrArray *columns
      = g_ptr_array_new_full ((guint)n, (GDestroyNotify)tusk_column_info_free);
  for (int i = 0; i < n; i++)
    {
      TuskColumnInfo *column = g_new0 (TuskColumnInfo, 1);
      column->name = g_strdup (PQfname (res, i));
      column->type_oid = PQftype (res, i);
      column->type_modifier = PQfmod (res, i);
      column->table_oid = PQftable (res, i);
      column->table_column = PQftablecol (res, i);
      g_ptr_array_add (columns, column);
    }
  return columns;
}

/* ---- executions -------------------------------------------------------- */

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

typedef struct
{
  gatomicrefcount ref;
  TuskQueryHandle *handle;
  TuskPool *pool;
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
  GTask *task;           /* execute_async's, returned at DONE */

  /* Written by the worker; read by the main context after DONE. */
  TuskQueryResult *result;
  GError *error;

  GMutex lock; /* protects events, scheduled, in_flight, wake_fd */
  GCond cond;  /* in_flight went down, or the cancellable fired */
  GQueue events;
  gboolean scheduled; /* a source is attached to deliver events */
  guint in_flight;
  int wake_fd; /* while the statement runs: the write end of the running
                  thread's wake pipe, written by on_cancelled (); else -1 */
} Exec;

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
  if (!g_atomic_ref_count_dec (&ex->ref))
    return;
  tusk_tsan_acquire (ex);
  g_queue_clear_full (&ex->events, (GDestroyNotify)event_free);
  if (ex->destroy)
    ex->destroy (ex->user_data);
  g_clear_object (&ex->task);
  tusk_query_result_free (ex->result);
  g_clear_error (&ex->error);
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
  g_mutex_clear (&ex->lock);
  g_cond_clear (&ex->cond);
  g_free (ex);
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
  Exec *ex = g_new0 (Exec, 1);
  g_atomic_ref_count_init (&ex->ref);
  g_mutex_init (&ex->lock);
  g_cond_init (&ex->cond);
  g_queue_init (&ex->events);
  ex->wake_fd = -1;
  ex->pool = tusk_pool_ref (pool);
  ex->handle = handle_new (tusk_pool_get_config (pool)->id, sql, cancellable);
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
  if (options->registry)
    {
      ex->registry = tusk_query_registry_ref (options->registry);
      tusk_query_registry_add (ex->registry, ex->handle);
    }
  return ex;
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
        g_mutex_lock (&ex->lock);
        ex->in_flight--;
        g_atomic_int_add (&ex->handle->in_flight, -1);
        g_cond_signal (&ex->cond);
        g_mutex_unlock (&ex->lock);
        break;
      case EVENT_NOTICE:
        if (ex->notice_func)
          ex->notice_func (ex->handle, event->data, ex->notice_data);
        break;
      case EVENT_DONE:
        if (ex->task)
          {
            GTask *task = g_steal_pointer (&ex->task);
            if (ex->error)
              g_task_return_error (task, g_steal_pointer (&ex->error));
            else
              g_task_return_pointer (task, g_steal_pointer (&ex->result),
                                     (GDestroyNotify)tusk_query_result_free);
            g_object_unref (task);
          }
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
  g_mutex_lock (&ex->lock);
  Event *event = g_queue_pop_head (&ex->events);
  if (event == NULL)
    ex->scheduled = FALSE;
  g_mutex_unlock (&ex->lock);
  if (event == NULL)
    return G_SOURCE_REMOVE;
  tusk_tsan_acquire (ex);
  deliver (ex, event);
  event_free (event);
  return G_SOURCE_CONTINUE;
}

/* Worker: hands @data to the caller.  A batch then waits while too many are
 * in flight (back-pressure), until one is consumed or the query is
 * cancelled. */
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
  g_mutex_lock (&ex->lock);
  tusk_tsan_release (ex);
  if (kind == EVENT_DONE && ex->task && !ex->scheduled)
    {
      /* Every earlier event has been delivered (a source still attached
       * might not have): the task itself carries the outcome to the
       * caller's context, one wakeup instead of an events source and a
       * task return. */
      GTask *task = g_steal_pointer (&ex->task);
      g_mutex_unlock (&ex->lock);
      event_free (event);
      tusk_tsan_release (task);
      if (ex->error)
        g_task_return_error (task, g_steal_pointer (&ex->error));
      else
        g_task_return_pointer (task, g_steal_pointer (&ex->result),
                               (GDestroyNotify)tusk_query_result_free);
      g_object_unref (task);
      return;
    }
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
           && !g_cancellable_is_cancelled (ex->handle->cancellable))
      g_cond_wait (&ex->cond, &ex->lock);
  g_mutex_unlock (&ex->lock);
}

/* Runs in whichever thread cancels: wakes a worker held back by a slow
 * consumer, or waiting for the server (through its wake pipe). */
static void
on_cancelled (GCancellable *cancellable, gpointer data)
{
  (void)cancellable;
  Exec *ex = data;
  g_mutex_lock (&ex->lock);
  g_cond_broadcast (&ex->cond);
  if (ex->wake_fd >= 0)
    {
      /* Non-blocking; a full pipe is readable already. */
      ssize_t n = write (ex->wake_fd, "", 1);
      (void)n;
    }
  g_mutex_unlock (&ex->lock);
}

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

/* The worker's state while one string runs on one connection. */
typedef struct
{
  Exec *ex;
  TuskPoolConn *conn;
  PGconn *pg;
  PQnoticeReceiver pool_receiver;
  WakePipe *wake;    /* nullable: then cancel_fd is the cancellable's */
  GPollFD cancel_fd; /* readable once the query is cancelled */
  gboolean have_cancel_fd;
  gboolean cancel_sent;
  gboolean dropped;  /* rows discarded because of a cancel */
  gboolean in_rows;  /* inside a row-returning statement */
  gboolean copy_out; /* in COPY … TO STDOUT */
  gboolean copy_in;  /* refused a COPY … FROM STDIN */
  gboolean broken;   /* reading failed: the connection is gone */
  gboolean abandon;  /* the connection cannot be reused (COPY BOTH) */
  guint64 stmt_rows; /* rows of the current statement */
  Builder builder;
} Run;

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
  post (r->ex, EVENT_NOTICE, notice);
}

static void
send_cancel (Run *r)
{
  g_autoptr (GError) error = NULL;
  r->cancel_sent = TRUE;
  gint64 start = g_get_monotonic_time ();
  if (!tusk_pool_conn_cancel (r->conn, &error))
    tusk_warn ("%s", error->message);
  else
    tusk_debug ("cancel request for query %s sent in %.2f ms",
                r->ex->handle->id, (g_get_monotonic_time () - start) / 1000.0);
}

/* Waits until the server sent something or the query is cancelled (then
 * sends the cancel request, once). */
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
    send_cancel (r);
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
}

static void
flush_batch (Run *r)
{
  TuskRowBatch *batch = builder_take (&r->builder);
  if (batch)
    post (r->ex, EVENT_BATCH, batch);
}

/* The first result of a row-returning statement: its columns. */
static void
begin_rows (Run *r, const PGresult *res)
{
  Exec *ex = r->ex;
  start_statement (r);
  r->in_rows = TRUE;
  GPtrArray *columns = columns_from_result (res);
  name_columns (r->pg, columns);
  g_ptr_array_extend_and_steal (ex->result->columns, columns);
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

static void
set_error (Exec *ex, GError *error)
{
  if (ex->error == NULL)
    ex->error = error;
  else
    g_error_free (error);
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
        if (g_cancellable_is_cancelled (ex->handle->cancellable))
          r->dropped = TRUE;
        else
          {
            r->builder.capacity = ex->batch_size;
            builder_add_row (&r->builder, res, ex->result->columns->len,
                             r->stmt_rows);
            r->stmt_rows++;
            if (r->builder.batch->n_rows >= ex->batch_size)
              flush_batch (r);
          }
        PQclear (res);
        break;

      case PGRES_TUPLES_OK:
        if (!r->in_rows)
          begin_rows (r, res);
        if (ex->stream)
          {
            flush_batch (r);
            if (PQntuples (res) > 0)
              {
                /* Rows that came whole (not in single-row mode): one batch,
                 * without a copy. */
                TuskRowBatch *batch = batch_new_from_result (res, r->stmt_rows);
                r->stmt_rows += batch->n_rows;
                finish_statement (r, res, TRUE);
                post (ex, EVENT_BATCH, batch);
              }
            else
              {
                finish_statement (r, res, TRUE);
                PQclear (res);
              }
          }
        else
          {
            r->stmt_rows = (guint64)PQntuples (res);
            finish_statement (r, res, TRUE);
            if (r->stmt_rows > 0)
              {
                g_ptr_array_add (ex->result->batches,
                                 batch_new_from_result (res, 0));
                ex->result->n_rows = r->stmt_rows;
              }
            else
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
        if (r->in_rows && ex->stream)
          flush_batch (r); /* the rows before the error are valid */
        r->in_rows = FALSE;
        set_error (ex, tusk_error_from_pg_result (r->pg, res));
        PQclear (res);
        break;

      default:
        PQclear (res);
        break;
    }
}

/* Runs @ex's SQL on @conn and drains it to ReadyForQuery.  Fills
 * ex->result, or sets ex->error.  Leaves @conn idle (or in a transaction the
 * statement opened, or broken, or to be abandoned: r->abandon). */
static gboolean
run_on_conn (Exec *ex, TuskPoolConn *conn)
{
  GCancellable *cancellable = ex->handle->cancellable;
  Run r = { 0 };
  r.ex = ex;
  r.conn = conn;
  r.pg = tusk_pool_conn_get_pg (conn);
  r.builder.capacity = ex->batch_size;

  if (ex->stream)
    preload_types (r.pg);

  /* The pool's receiver has the connection as its argument
   * (tusk-pool-private.h); it is put back below, before release. */
  r.pool_receiver = PQsetNoticeReceiver (r.pg, on_notice, &r);
  r.wake = wake_pipe_take ();
  if (r.wake)
    {
      /* Before the check below: a cancel from now on writes to the pipe. */
      g_mutex_lock (&ex->lock);
      ex->wake_fd = r.wake->fds[1];
      g_mutex_unlock (&ex->lock);
      r.cancel_fd.fd = r.wake->fds[0];
      r.have_cancel_fd = TRUE;
    }
  else
    r.have_cancel_fd = g_cancellable_make_pollfd (cancellable, &r.cancel_fd);

  gint64 start = g_get_monotonic_time ();
  if (g_cancellable_is_cancelled (cancellable))
    set_error (ex, tusk_error_new_full (TUSK_ERROR_QUERY_CANCELLED,
                                        "The query was cancelled before it "
                                        "was sent",
                                        NULL, NULL, 0, NULL));
  else if (!PQsendQuery (r.pg, ex->handle->sql))
    set_error (ex, tusk_error_from_pg_result (r.pg, NULL));
  else
    {
      if (ex->stream)
        PQsetSingleRowMode (r.pg);
      for (;;)
        {
          if (r.copy_out)
            {
              char *buf = NULL;
              int n;
              while ((n = PQgetCopyData (r.pg, &buf, 1)) > 0)
                PQfreemem (buf);
              if (n == 0 && !r.broken)
                {
                  wait_for_input (&r);
                  continue;
                }
              r.copy_out = FALSE;
            }
          PGresult *res = NULL;
          gboolean done = FALSE;
          while (r.broken || !PQisBusy (r.pg))
            {
              res = PQgetResult (r.pg);
              if (res == NULL)
                {
                  done = TRUE;
                  break;
                }
              handle_result (&r, res);
              if (r.copy_out || r.abandon)
                break;
            }
          if (done || r.abandon)
            break;
          if (!r.copy_out)
            wait_for_input (&r);
        }
      flush_batch (&r);
    }
  ex->result->execution_time_ms = (g_get_monotonic_time () - start) / 1000;

  switch (PQtransactionStatus (r.pg))
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

  /* Type names still unknown: the connection is idle now. */
  if (ex->error == NULL && !r.abandon)
    look_up_columns (r.pg, ex->result->columns);

  if (r.wake)
    {
      g_mutex_lock (&ex->lock);
      ex->wake_fd = -1;
      g_mutex_unlock (&ex->lock);
      /* on_cancelled () runs after the cancellable is marked cancelled: if
       * it is not now, nothing was written. */
      wake_pipe_give_back (r.wake, g_cancellable_is_cancelled (cancellable));
    }
  else if (r.have_cancel_fd)
    g_cancellable_release_fd (cancellable);
  PQsetNoticeReceiver (r.pg, r.pool_receiver, conn);

  if (r.dropped && ex->error == NULL)
    set_error (ex, tusk_error_new_full (TUSK_ERROR_QUERY_CANCELLED,
                                        "The query was cancelled", NULL, NULL,
                                        0, "57014"));
  return !r.abandon;
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

/* The whole execution, on a worker (or the _sync caller's thread). */
static void
exec_run (Exec *ex)
{
  GCancellable *cancellable = ex->handle->cancellable;
  ex->result = result_new (ex->handle->id);
  gulong handler_id = g_cancellable_connect (
      cancellable, G_CALLBACK (on_cancelled), ex, NULL);

  TuskPoolConn *conn = ex->given_conn;
  if (conn == NULL && !g_cancellable_is_cancelled (cancellable))
    conn = tusk_pool_acquire_sync (ex->pool, cancellable, &ex->error);
  if (conn)
    {
      gboolean reusable = run_on_conn (ex, conn);
      if (conn != ex->given_conn)
        {
          if (reusable)
            tusk_pool_release (conn);
          else
            tusk_pool_conn_discard (conn);
        }
    }
  else if (ex->error == NULL)
    set_error (ex, tusk_error_new_full (TUSK_ERROR_QUERY_CANCELLED,
                                        "The query was cancelled before it "
                                        "was sent",
                                        NULL, NULL, 0, NULL));
  /* Never with ex->lock held: it waits for a running on_cancelled(). */
  g_cancellable_disconnect (cancellable, handler_id);

  if (ex->error)
    tusk_debug ("query %s failed: %s", ex->handle->id, ex->error->message);
  record_history (ex);
  if (ex->registry)
    tusk_query_registry_remove (ex->registry, ex->handle);
  post (ex, EVENT_DONE, NULL);
}

/* A stream's job: returns a boolean nobody reads once the DONE event is
 * posted. */
static void
exec_thread (GTask *task, gpointer source_object, gpointer task_data,
             GCancellable *cancellable)
{
  (void)source_object;
  (void)cancellable;
  exec_run (task_data);
  tusk_tsan_release (task);
  g_task_return_boolean (task, TRUE);
}

/* execute_async's job is its own task, which post () returns with the
 * outcome at DONE (or hands to the events source, which does). */
static void
exec_async_thread (GTask *task, gpointer source_object, gpointer task_data,
                   GCancellable *cancellable)
{
  (void)task;
  (void)source_object;
  (void)cancellable;
  exec_run (task_data);
}

/* Queues @ex on @runtime.  The job's GTask has no cancellable, so the
 * runtime always runs it and the cancel is reported by exec_run(), with
 * history and unregistering, whatever the phase.  The task data's reference
 * to @ex outlives ex->task's reference to the task: ex drops that at DONE. */
static void
exec_start (Exec *ex, TuskRuntime *runtime)
{
  ex->context = g_main_context_ref_thread_default ();
  if (ex->task)
    {
      g_task_set_task_data (ex->task, exec_ref (ex),
                            (GDestroyNotify)exec_unref);
      tusk_runtime_run_in_thread (runtime, ex->task, exec_async_thread);
      return;
    }
  GTask *job = g_task_new (NULL, NULL, NULL, NULL);
  g_task_set_source_tag (job, exec_start);
  g_task_set_task_data (job, exec_ref (ex), (GDestroyNotify)exec_unref);
  tusk_runtime_run_in_thread (runtime, job, exec_thread);
  g_object_unref (job);
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
  exec_run (ex);
  TuskQueryResult *result = NULL;
  if (ex->error)
    g_propagate_error (error, g_steal_pointer (&ex->error));
  else
    result = g_steal_pointer (&ex->result);
  exec_unref (ex);
  return result;
}

TuskQueryHandle *
tusk_query_execute_async (TuskPool *pool, TuskRuntime *runtime, const char *sql,
                          const TuskQueryOptions *options,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_val_if_fail (pool != NULL, NULL);
  g_return_val_if_fail (runtime != NULL, NULL);
  g_return_val_if_fail (sql != NULL, NULL);

  Exec *ex = exec_new (pool, sql, options, cancellable, FALSE);
  ex->task = g_task_new (NULL, NULL, callback, user_data);
  g_task_set_source_tag (ex->task, tusk_query_execute_async);
  /* The query reports its own cancel (QUERY_CANCELLED, or its results
   * when it finished first); GTask must not replace that. */
  g_task_set_check_cancellable (ex->task, FALSE);
  TuskQueryHandle *handle = tusk_query_handle_ref (ex->handle);
  exec_start (ex, runtime);
  exec_unref (ex);
  return handle;
}

TuskQueryResult *
tusk_query_execute_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result))
                            == tusk_query_execute_async,
                        NULL);
  tusk_tsan_acquire (result);
  return g_task_propagate_pointer (G_TASK (result), error);
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
  TuskQueryHandle *handle = tusk_query_handle_ref (ex->handle);
  exec_start (ex, runtime);
  exec_unref (ex);
  return handle;
}
