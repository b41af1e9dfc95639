/* tusk-schema.h: the schema cache of one connection (data model
 * "SchemaCache", FR-007): what the database holds, for completion, object
 * browsers and "which table is this?", answered from memory.
 *
 * Two types.  A TuskSchemaSnapshot is one load of the catalog: schemas,
 * tables, views and materialized views with their columns, functions and
 * procedures, indexes, sequences, enum types, the search_path of the
 * session that loaded it and the time it was taken.  It is immutable once
 * built and reference-counted, so any thread reads it without a lock, and
 * everything it hands out (structs, strings, arrays) lives as long as the
 * snapshot does.  A TuskSchemaCache belongs to one connection (one pool):
 * it holds the current snapshot and makes new ones; a refresh builds the
 * next snapshot on a worker while readers keep using the old one, then
 * swaps it in under a short lock.
 *
 * Loading is set-based: one catalog query per object kind (never one per
 * table), all sent in one round trip inside one REPEATABLE READ READ ONLY
 * transaction, so the kinds agree with each other.  pg_catalog,
 * information_schema, pg_toast and the temporary schemas are left out.
 * 10,000 tables with 100,000 columns load in about 0.5-0.7 s (bench/bench-
 * schema.c; most of it server time, pg_get_indexdef() and the attribute
 * scan), slower on a backend's first load while its caches are cold.
 *
 * Staleness: a snapshot is stale once it is older than the cache's TTL
 * (5 minutes by default) or after tusk_schema_cache_invalidate(), which the
 * query module calls when a statement's command tag says it changed the
 * schema (tusk_schema_is_ddl_tag()).  A stale snapshot stays readable: the
 * front end keeps completing from it while tusk_schema_cache_ensure_async()
 * fetches the next one.
 *
 * Identifiers are compared as stored in the catalog (case-sensitive) by the
 * find functions; a caller folds unquoted identifiers to lower case first,
 * as the server does.  Completion is case-insensitive.
 *
 * Thread rules: a TuskSchemaCache is shared and reference-counted; every
 * function may be called from any thread.  The `_sync` functions block on
 * the network (call them on a worker, never on the UI thread); all other
 * cache functions only take the cache's lock for a pointer swap and never
 * block.  A TuskSchemaSnapshot is immutable: every snapshot function may be
 * called from any thread, concurrently, without locking, and none blocks.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-pool.h"
#include "tusk-runtime.h"

G_BEGIN_DECLS

/* The TTL of a new cache: 5 minutes (research §1). */
#define TUSK_SCHEMA_CACHE_DEFAULT_TTL_MS (5 * 60 * 1000)

/**
 * TuskSchemaKind:
 *
 * The kinds of objects in a snapshot, as bits so that completion can ask
 * for several at once.  Tables include partitioned and foreign tables;
 * functions include aggregates and window functions.
 */
typedef enum
{
  TUSK_SCHEMA_KIND_SCHEMA = 1 << 0,
  TUSK_SCHEMA_KIND_TABLE = 1 << 1,
  TUSK_SCHEMA_KIND_VIEW = 1 << 2,
  TUSK_SCHEMA_KIND_MATVIEW = 1 << 3,
  TUSK_SCHEMA_KIND_COLUMN = 1 << 4,
  TUSK_SCHEMA_KIND_FUNCTION = 1 << 5,
  TUSK_SCHEMA_KIND_PROCEDURE = 1 << 6,
  TUSK_SCHEMA_KIND_INDEX = 1 << 7,
  TUSK_SCHEMA_KIND_SEQUENCE = 1 << 8,
  TUSK_SCHEMA_KIND_ENUM = 1 << 9,
} TuskSchemaKind;

#define TUSK_SCHEMA_KIND_RELATIONS                                             \
  (TUSK_SCHEMA_KIND_TABLE | TUSK_SCHEMA_KIND_VIEW | TUSK_SCHEMA_KIND_MATVIEW)
#define TUSK_SCHEMA_KIND_ALL ((1 << 10) - 1)

typedef struct TuskSchemaRelation TuskSchemaRelation;

/**
 * TuskSchemaColumn:
 *
 * One column of a table, view or materialized view.  Owned by its snapshot;
 * every pointer is valid as long as the snapshot is.
 */
typedef struct
{
  const char *name;
  const char *type_name;    /* format_type(): "character varying(20)" */
  const char *default_expr; /* nullable: pg_get_expr() of the default (or
                               of a generated column's expression) */
  int position;             /* attnum: 1-based, with gaps after drops */
  gboolean not_null;
  gboolean primary_key;               /* part of the table's primary key */
  const TuskSchemaRelation *relation; /* the relation it belongs to */
} TuskSchemaColumn;

/**
 * TuskSchemaRelation:
 *
 * A table, view or materialized view, with its columns in attnum order.
 * Owned by its snapshot.
 */
struct TuskSchemaRelation
{
  guint32 oid;
  const char *schema;
  const char *name;
  TuskSchemaKind kind; /* TABLE, VIEW or MATVIEW */
  char relkind;        /* pg_class.relkind: r, p, f, v or m */
  const TuskSchemaColumn *columns;
  guint n_columns;
};

/**
 * TuskSchemaFunction:
 *
 * A function, procedure, aggregate or window function.  Owned by its
 * snapshot.  Overloads are separate entries.
 */
typedef struct
{
  const char *schema;
  const char *name;
  const char *arguments;   /* pg_get_function_identity_arguments(): "a
                              integer, b text"; "" for none */
  const char *result_type; /* nullable: pg_get_function_result(); NULL for
                              procedures */
  char prokind;            /* f, p, a or w */
} TuskSchemaFunction;

/**
 * TuskSchemaIndex:
 *
 * One index.  Owned by its snapshot.
 */
typedef struct
{
  const char *schema;
  const char *name;
  const char *table_name;          /* the indexed relation's name */
  const TuskSchemaRelation *table; /* nullable: the indexed relation, when
                                      it is one the snapshot holds */
  const char *definition;          /* pg_get_indexdef() */
  gboolean is_unique;
  gboolean is_primary;
} TuskSchemaIndex;

/**
 * TuskSchemaSequence:
 *
 * One sequence.  Owned by its snapshot.
 */
typedef struct
{
  const char *schema;
  const char *name;
} TuskSchemaSequence;

/**
 * TuskSchemaEnum:
 *
 * One enum type with its labels in sort order.  Owned by its snapshot.
 */
typedef struct
{
  const char *schema;
  const char *name;
  const char *const *labels;
  guint n_labels;
} TuskSchemaEnum;

/**
 * TuskSchemaCandidate:
 *
 * One completion candidate.  Owned by its snapshot.
 */
typedef struct
{
  TuskSchemaKind kind;  /* exactly one bit */
  const char *name;     /* the object's name, as stored */
  const char *schema;   /* nullable: NULL for schemas and columns */
  const char *detail;   /* nullable: a function's arguments, an index's
                           table; NULL for the other kinds */
  gconstpointer object; /* the TuskSchemaRelation, TuskSchemaColumn (the
                           first of that name), TuskSchemaFunction,
                           TuskSchemaIndex, TuskSchemaSequence or
                           TuskSchemaEnum; for a schema, its name */
} TuskSchemaCandidate;

/**
 * TuskSchemaSnapshot:
 *
 * One immutable load of the catalog.  Opaque and reference-counted:
 * tusk_schema_snapshot_ref(), tusk_schema_snapshot_unref().
 */
typedef struct TuskSchemaSnapshot TuskSchemaSnapshot;

/* Returns (transfer full) @snapshot with one more reference.  Any thread. */
TuskSchemaSnapshot *tusk_schema_snapshot_ref (TuskSchemaSnapshot *snapshot);

/* Drops a reference (@snapshot nullable); the last one frees it and
 * everything it handed out.  Any thread. */
void tusk_schema_snapshot_unref (TuskSchemaSnapshot *snapshot);

/* When the load started, in g_get_real_time() microseconds (data model
 * "cached_at"). */
gint64 tusk_schema_snapshot_get_cached_at (TuskSchemaSnapshot *snapshot);

/* Returns (transfer none) the database the snapshot describes. */
const char *tusk_schema_snapshot_get_database (TuskSchemaSnapshot *snapshot);

/* Returns (transfer none) the loading session's current_schemas(false), in
 * order, NULL-terminated (possibly empty).  Sessions of one pool share the
 * same settings; a `SET search_path` on one of them is not seen here. */
const char *const *
tusk_schema_snapshot_get_search_path (TuskSchemaSnapshot *snapshot);

/* Each returns (transfer none) an array owned by @snapshot and stores its
 * length in @n_out (not optional).  Schemas are sorted by name; relations,
 * functions, indexes, sequences and enums by (schema, name) in byte order;
 * functions of one name in argument order. */
const char *const *
tusk_schema_snapshot_get_schemas (TuskSchemaSnapshot *snapshot, guint *n_out);
const TuskSchemaRelation *
tusk_schema_snapshot_get_relations (TuskSchemaSnapshot *snapshot, guint *n_out);
const TuskSchemaFunction *
tusk_schema_snapshot_get_functions (TuskSchemaSnapshot *snapshot, guint *n_out);
const TuskSchemaIndex *
tusk_schema_snapshot_get_indexes (TuskSchemaSnapshot *snapshot, guint *n_out);
const TuskSchemaSequence *
tusk_schema_snapshot_get_sequences (TuskSchemaSnapshot *snapshot, guint *n_out);
const TuskSchemaEnum *
tusk_schema_snapshot_get_enums (TuskSchemaSnapshot *snapshot, guint *n_out);

/**
 * tusk_schema_snapshot_find_relation:
 * @schema: (nullable): the schema, or %NULL to search the snapshot's
 *   search_path in order, as the server resolves an unqualified name
 * @name: the relation's name, exactly as stored
 *
 * O(1) per schema tried (a hash lookup).
 *
 * Returns: (transfer none) (nullable): the table, view or materialized
 *   view, or %NULL.
 */
const TuskSchemaRelation *
tusk_schema_snapshot_find_relation (TuskSchemaSnapshot *snapshot,
                                    const char *schema, const char *name);

/* Returns (transfer none) (nullable) the column @name of @relation, exactly
 * as stored.  O(columns of @relation). */
const TuskSchemaColumn *
tusk_schema_relation_find_column (const TuskSchemaRelation *relation,
                                  const char *name);

/**
 * tusk_schema_complete:
 * @snapshot: a snapshot
 * @kinds: a mask of #TuskSchemaKind: the kinds to offer
 * @prefix: what the user typed, without quotes: "us" or "public.us"
 * @limit: the most candidates to return (at least 1)
 *
 * Completion candidates whose name starts with @prefix, compared
 * case-insensitively (Unicode case folding).  A prefix with a dot is
 * qualified: the part before the last dot must be the schema's whole name,
 * and schemas and columns are not offered then.  Candidates come sorted by
 * folded name, kinds in #TuskSchemaKind order on ties; column names are
 * offered once however many relations have them (use
 * tusk_schema_complete_columns() for one relation's).  Every candidate of
 * every kind matches, not only those on the search_path.
 *
 * Cost: O(kinds × log n + @limit × kinds), whatever the catalog's size; a
 * few microseconds on 10,000 tables / 100,000 columns.  Never blocks.
 *
 * Returns: (transfer container): at most @limit `const TuskSchemaCandidate
 *   *` owned by @snapshot; free the array with g_ptr_array_unref() and keep
 *   a snapshot reference while using its elements.
 */
GPtrArray *tusk_schema_complete (TuskSchemaSnapshot *snapshot, guint kinds,
                                 const char *prefix, guint limit);

/**
 * tusk_schema_complete_columns:
 * @relation: a relation of @snapshot
 * @prefix: what the user typed, without quotes
 * @limit: the most columns to return (at least 1)
 *
 * The columns of @relation whose name starts with @prefix
 * (case-insensitively), in attnum order.  O(columns of @relation).
 *
 * Returns: (transfer container): at most @limit `const TuskSchemaColumn *`
 *   owned by @snapshot; free with g_ptr_array_unref().
 */
GPtrArray *tusk_schema_complete_columns (TuskSchemaSnapshot *snapshot,
                                         const TuskSchemaRelation *relation,
                                         const char *prefix, guint limit);

/**
 * tusk_schema_is_ddl_tag:
 * @command_tag: (nullable): a command tag as PQcmdStatus() gives it
 *   ("CREATE TABLE", "ALTER TYPE", "DROP VIEW", "SELECT 3")
 *
 * Whether a statement with this tag may have changed what a schema cache
 * holds, so that its cache should be invalidated: CREATE, ALTER, DROP,
 * IMPORT FOREIGN SCHEMA, and DO blocks (which may run anything); not those
 * about roles, databases, tablespaces or ALTER SYSTEM.  Case-insensitive.
 * Two cases a tag cannot show: CREATE TABLE AS and SELECT INTO report
 * "SELECT n" (the query module knows the statement and invalidates itself),
 * and DDL in a transaction becomes visible to the cache's other sessions
 * only at COMMIT, so a COMMIT after DDL should invalidate again.  Pure;
 * any thread.
 */
gboolean tusk_schema_is_ddl_tag (const char *command_tag);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSchemaSnapshot, tusk_schema_snapshot_unref)

/**
 * TuskSchemaCache:
 *
 * The schema cache of one connection.  Opaque and reference-counted:
 * tusk_schema_cache_ref(), tusk_schema_cache_unref().  It holds a reference
 * to its pool; a load in progress holds one to the cache.
 */
typedef struct TuskSchemaCache TuskSchemaCache;

/**
 * tusk_schema_cache_new:
 * @pool: (transfer none): the connection's pool; the cache keeps a
 *   reference and acquires a connection from it for each load
 *
 * Makes an empty cache (no snapshot yet: stale).  Loads nothing and never
 * blocks; any thread.
 *
 * Returns: (transfer full): the cache; release with
 *   tusk_schema_cache_unref().
 */
TuskSchemaCache *tusk_schema_cache_new (TuskPool *pool);

/* Returns (transfer full) @cache with one more reference.  Any thread. */
TuskSchemaCache *tusk_schema_cache_ref (TuskSchemaCache *cache);

/* Drops a reference (@cache nullable); the last one frees the cache, its
 * snapshot reference and its pool reference.  A load still running holds
 * its own reference, so this never waits.  Any thread. */
void tusk_schema_cache_unref (TuskSchemaCache *cache);

/* Sets the time after which a snapshot is stale, in milliseconds (0: always
 * stale).  Applies to the current snapshot too.  Any thread. */
void tusk_schema_cache_set_ttl (TuskSchemaCache *cache, guint ttl_ms);

/* Returns (transfer full) (nullable) a reference to the current snapshot,
 * stale or not, or %NULL before the first successful load; release with
 * tusk_schema_snapshot_unref().  Never blocks; any thread: this is what the
 * UI thread calls. */
TuskSchemaSnapshot *tusk_schema_cache_dup_snapshot (TuskSchemaCache *cache);

/* Whether a load is due: no snapshot yet, the current one is older than the
 * TTL, or the cache was invalidated after that snapshot's load began.
 * Never blocks; any thread. */
gboolean tusk_schema_cache_is_stale (TuskSchemaCache *cache);

/* Marks the current snapshot stale (it stays readable) so the next
 * tusk_schema_cache_ensure_*() loads again; a load already running when
 * this is called is stale when it lands.  Call after DDL went through Tusk
 * (tusk_schema_is_ddl_tag()) and for `\refresh`.  Never blocks; any
 * thread. */
void tusk_schema_cache_invalidate (TuskSchemaCache *cache);

/**
 * tusk_schema_cache_load_sync:
 * @cancellable: (nullable): cancels waiting for a connection and the
 *   catalog queries (a cancel request reaches the server)
 * @error: return location for a TUSK_ERROR
 *
 * Loads a new snapshot now, whatever the current one's age, and makes it
 * the current one unless a load that started later has already landed.
 * Blocks (acquiring a connection, one round trip); call on a worker.
 *
 * Errors: those of tusk_pool_acquire_sync(), TUSK_ERROR_QUERY or
 * TUSK_ERROR_CONNECTION from the catalog queries,
 * TUSK_ERROR_QUERY_CANCELLED.  On failure the current snapshot is kept.
 *
 * Returns: (transfer full) (nullable): the snapshot just loaded, or %NULL
 *   with @error set; release with tusk_schema_snapshot_unref().
 */
TuskSchemaSnapshot *tusk_schema_cache_load_sync (TuskSchemaCache *cache,
                                                 GCancellable *cancellable,
                                                 GError **error);

/**
 * tusk_schema_cache_load_async:
 * @runtime: runs tusk_schema_cache_load_sync(); must outlive the call
 *
 * The same on @runtime.  @callback runs on the caller's thread-default main
 * context, never inside this call, and calls
 * tusk_schema_cache_load_finish().  Never blocks.  @callback may be %NULL
 * to load in the background (the new snapshot is installed all the same).
 */
void tusk_schema_cache_load_async (TuskSchemaCache *cache, TuskRuntime *runtime,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);

/* Returns (transfer full) (nullable) as tusk_schema_cache_load_sync(). */
TuskSchemaSnapshot *tusk_schema_cache_load_finish (TuskSchemaCache *cache,
                                                   GAsyncResult *result,
                                                   GError **error);

/**
 * tusk_schema_cache_ensure_sync:
 *
 * Returns the current snapshot when it is not stale, else
 * tusk_schema_cache_load_sync().  Blocks when it loads; call on a worker.
 *
 * Returns: (transfer full) (nullable): a fresh snapshot, or %NULL with
 *   @error set (the stale one, if any, stays available through
 *   tusk_schema_cache_dup_snapshot()).
 */
TuskSchemaSnapshot *tusk_schema_cache_ensure_sync (TuskSchemaCache *cache,
                                                   GCancellable *cancellable,
                                                   GError **error);

/* The same without blocking: a fresh snapshot is returned without a trip
 * through @runtime, a stale one is reloaded on it.  @callback (nullable)
 * runs on the caller's thread-default main context, never inside this
 * call, and calls tusk_schema_cache_ensure_finish(). */
void tusk_schema_cache_ensure_async (TuskSchemaCache *cache,
                                     TuskRuntime *runtime,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
TuskSchemaSnapshot *tusk_schema_cache_ensure_finish (TuskSchemaCache *cache,
                                                     GAsyncResult *result,
                                                     GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSchemaCache, tusk_schema_cache_unref)

G_END_DECLS
