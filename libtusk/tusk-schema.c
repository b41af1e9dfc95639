/* tusk-schema.c: the per-connection schema cache: one round trip of
 * set-based catalog queries builds an immutable, indexed snapshot that is
 * swapped in under a short lock.
 *
 * Design note.
 *
 * Loading (tusk_schema_cache_load_sync()): one PQsendQuery carries
 * BEGIN REPEATABLE READ READ ONLY, one SELECT per object kind, COMMIT.  The
 * worker polls the socket and the cancellable together, so a cancel sends
 * PQcancel from the worker (never from the thread that cancelled) and then
 * drains to the end.  The connection goes back to the pool before the
 * snapshot is built: building is pure CPU on the PGresults.
 *
 * A snapshot keeps every string in one GStringChunk (type names, schemas and
 * defaults deduplicated), every object kind in one array of plain structs,
 * a hash of relations on (schema, name), and per kind a completion index:
 * entries sorted by case-folded name, and pointers to them sorted by
 * "schema.name" folded, for qualified prefixes.  Column entries are
 * collapsed to one per distinct name.  Nothing is mutated after
 * snapshot_build() returns, which is why readers need no lock.
 *
 * Cache state, all under `lock`: the current snapshot (nullable),
 * `generation` (bumped by invalidate), `next_seq` (the order in which loads
 * began) and the TTL.  Invariants:
 *   1. A snapshot's generation and seq are those of the cache when its load
 *      began; it is stale when its generation is not the cache's, or when
 *      the TTL has passed since its load began.
 *   2. The current snapshot only ever moves to one whose load began later
 *      (higher seq), so a slow load never replaces a newer one.
 *   3. `lock` is a leaf held only for a few loads and stores: no I/O, no
 *      allocation, no unref (the last unref of a replaced snapshot happens
 *      after unlocking).
 * `lock` is a pthread mutex rather than a GMutex so ThreadSanitizer sees it
 * (as in tusk-pool.c).
 */
#define G_LOG_DOMAIN "tusk-schema"

#include "tusk-schema.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tusk-error-private.h"
#include "tusk-log.h"
#include "tusk-pool-private.h"
#include "tusk-runtime-private.h"

/* ------------------------------------------------------------------ */
/* The catalog queries                                                  */

/* Every query leaves out pg_catalog, information_schema, pg_toast and the
 * temporary schemas (pg_temp_N, pg_toast_temp_N). */

/* The results, in the order the statements produce them; BEGIN and COMMIT
 * give no tuples and are skipped. */
enum
{
  RES_META,
  RES_SEARCH_PATH,
  RES_SCHEMAS,
  RES_RELATIONS,
  RES_COLUMNS,
  RES_FUNCTIONS,
  RES_INDEXES,
  RES_SEQUENCES,
  RES_ENUMS,
  N_RESULTS
};

static const int result_fields[N_RESULTS] = { 1, 1, 1, 4, 6, 5, 8, 2, 4 };

static const char catalog_sql[]
    = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"

      /* RES_META */
      "SELECT pg_catalog.current_database();\n"

      /* RES_SEARCH_PATH */
      "SELECT s FROM unnest(pg_catalog.current_schemas(false))"
      " WITH ORDINALITY AS t(s, i) ORDER BY i;\n"

      /* RES_SCHEMAS */
      "SELECT n.nspname FROM pg_catalog.pg_namespace n"
      " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)'"
      " ORDER BY 1;\n"

      /* RES_RELATIONS: tables (plain, partitioned, foreign), views and
       * materialized views.  Unsorted, as are the columns: the client
       * sorts (snapshot_build()). */
      "SELECT c.oid, n.nspname, c.relname, c.relkind"
      " FROM pg_catalog.pg_class c"
      " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')"
      " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)';\n"

      /* RES_COLUMNS: of those relations.  Primary-key membership comes
       * from the indexes (build_indexes()), not from a join here. */
      "SELECT a.attrelid, a.attnum, a.attname,"
      " pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,"
      " pg_catalog.pg_get_expr(d.adbin, d.adrelid)"
      " FROM pg_catalog.pg_attribute a"
      " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
      " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " LEFT JOIN pg_catalog.pg_attrdef d"
      " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
      " WHERE a.attnum > 0 AND NOT a.attisdropped"
      " AND c.relkind IN ('r', 'p', 'f', 'v', 'm')"
      " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)';\n"

      /* RES_FUNCTIONS */
      "SELECT n.nspname, p.proname,"
      " pg_catalog.pg_get_function_identity_arguments(p.oid),"
      " pg_catalog.pg_get_function_result(p.oid), p.prokind"
      " FROM pg_catalog.pg_proc p"
      " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
      " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)'"
      " ORDER BY 1, 2, 3;\n"

      /* RES_INDEXES */
      "SELECT n.nspname, ic.relname, i.indrelid, tc.relname,"
      " pg_catalog.pg_get_indexdef(i.indexrelid),"
      " i.indisunique, i.indisprimary, i.indkey"
      " FROM pg_catalog.pg_index i"
      " JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
      " JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid"
      " JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace"
      " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)'"
      " ORDER BY 1, 2;\n"

      /* RES_SEQUENCES */
      "SELECT n.nspname, c.relname"
      " FROM pg_catalog.pg_class c"
      " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.relkind = 'S'"
      " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)'"
      " ORDER BY 1, 2;\n"

      /* RES_ENUMS: one row per label, grouped by type. */
      "SELECT t.oid, n.nspname, t.typname, e.enumlabel"
      " FROM pg_catalog.pg_type t"
      " JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
      " JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid"
      " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
      " AND n.nspname !~ '^pg_(toast|temp_)'"
      " ORDER BY 2, 3, 1, e.enumsortorder;\n"

      "COMMIT;";

/* ------------------------------------------------------------------ */
/* Snapshots                                                            */

/* Bit positions of TuskSchemaKind: one completion index each. */
#define N_KINDS 10

typedef struct
{
  const char *key;  /* case-folded name */
  const char *qkey; /* case-folded "schema.name"; NULL for schemas, columns */
  TuskSchemaCandidate candidate;
} Entry;

typedef struct
{
  Entry *entries; /* sorted by key, then name, then schema */
  guint n;
  Entry **qualified; /* the entries with a qkey, sorted by qkey */
  guint n_qualified;
} KindIndex;

struct TuskSchemaSnapshot
{
  gint ref_count;
  gint64 cached_at;    /* g_get_real_time() when the load began */
  gint64 started_mono; /* g_get_monotonic_time() then: the TTL counts */
  guint64 generation;  /* the cache's generation then */
  guint64 seq;         /* the order of the load's start */

  GStringChunk *strings;
  const char *database;
  const char **search_path; /* NULL-terminated */
  const char **schemas;
  guint n_schemas;
  TuskSchemaRelation *relations;
  guint n_relations;
  TuskSchemaColumn *columns;
  const char **column_keys; /* case-folded names, parallel to columns */
  guint n_columns;
  TuskSchemaFunction *functions;
  guint n_functions;
  TuskSchemaIndex *indexes;
  guint n_indexes;
  TuskSchemaSequence *sequences;
  guint n_sequences;
  TuskSchemaEnum *enums;
  guint n_enums;
  const char **enum_labels;

  GHashTable *relation_set; /* TuskSchemaRelation *, on (schema, name) */
  KindIndex index[N_KINDS];
};

TuskSchemaSnapshot *
tusk_schema_snapshot_ref (TuskSchemaSnapshot *snapshot)
{
  g_return_val_if_fail (snapshot != NULL, NULL);
  g_atomic_int_inc (&snapshot->ref_count);
  return snapshot;
}

void
tusk_schema_snapshot_unref (TuskSchemaSnapshot *snapshot)
{
  if (snapshot == NULL || !g_atomic_int_dec_and_test (&snapshot->ref_count))
    return;
  for (guint k = 0; k < N_KINDS; k++)
    {
      g_free (snapshot->index[k].entries);
      g_free (snapshot->index[k].qualified);
    }
  if (snapshot->relation_set != NULL)
    g_hash_table_unref (snapshot->relation_set);
  g_free (snapshot->search_path);
  g_free (snapshot->schemas);
  g_free (snapshot->relations);
  g_free (snapshot->columns);
  g_free (snapshot->column_keys);
  g_free (snapshot->functions);
  g_free (snapshot->indexes);
  g_free (snapshot->sequences);
  g_free (snapshot->enums);
  g_free (snapshot->enum_labels);
  g_string_chunk_free (snapshot->strings);
  g_free (snapshot);
}

gint64
tusk_schema_snapshot_get_cached_at (TuskSchemaSnapshot *snapshot)
{
  g_return_val_if_fail (snapshot != NULL, 0);
  return snapshot->cached_at;
}

const char *
tusk_schema_snapshot_get_database (TuskSchemaSnapshot *snapshot)
{
  g_return_val_if_fail (snapshot != NULL, NULL);
  return snapshot->database;
}

const char *const *
tusk_schema_snapshot_get_search_path (TuskSchemaSnapshot *snapshot)
{
  g_return_val_if_fail (snapshot != NULL, NULL);
  return snapshot->search_path;
}

const TuskSchemaRelation *
tusk_schema_snapshot_get_relations (TuskSchemaSnapshot *snapshot, guint *n_out)
{
  g_return_val_if_fail (snapshot != NULL && n_out != NULL, NULL);
  *n_out = snapshot->n_relations;
  return snapshot->relations;
}

const TuskSchemaFunction *
tusk_schema_snapshot_get_functions (TuskSchemaSnapshot *snapshot, guint *n_out)
{
  g_return_val_if_fail (snapshot != NULL && n_out != NULL, NULL);
  *n_out = snapshot->n_functions;
  return snapshot->functions;
}

const TuskSchemaIndex *
tusk_schema_snapshot_get_indexes (TuskSchemaSnapshot *snapshot, guint *n_out)
{
  g_return_val_if_fail (snapshot != NULL && n_out != NULL, NULL);
  *n_out = snapshot->n_indexes;
  return snapshot->indexes;
}

const TuskSchemaSequence *
tusk_schema_snapshot_get_sequences (TuskSchemaSnapshot *snapshot, guint *n_out)
{
  g_return_val_if_fail (snapshot != NULL && n_out != NULL, NULL);
  *n_out = snapshot->n_sequences;
  return snapshot->sequences;
}

const TuskSchemaEnum *
tusk_schema_snapshot_get_enums (TuskSchemaSnapshot *snapshot, guint *n_out)
{
  g_return_val_if_fail (snapshot != NULL && n_out != NULL, NULL);
  *n_out = snapshot->n_enums;
  return snapshot->enums;
}

const char *const *
tusk_schema_snapshot_get_schemas (TuskSchemaSnapshot *snapshot, guint *n_out)
{
  g_return_val_if_fail (snapshot != NULL && n_out != NULL, NULL);
  *n_out = snapshot->n_schemas;
  return snapshot->schemas;
}

static guint
relation_hash (gconstpointer p)
{
  const TuskSchemaRelation *r = p;
  return g_str_hash (r->schema) * 31 + g_str_hash (r->name);
}

static gboolean
relation_equal (gconstpointer a, gconstpointer b)
{
  const TuskSchemaRelation *x = a, *y = b;
  return strcmp (x->name, y->name) == 0 && strcmp (x->schema, y->schema) == 0;
}

const TuskSchemaRelation *
tusk_schema_snapshot_find_relation (TuskSchemaSnapshot *snapshot,
                                    const char *schema, const char *name)
{
  g_return_val_if_fail (snapshot != NULL && name != NULL, NULL);

  TuskSchemaRelation key = { .name = name, .schema = schema };
  if (schema != NULL)
    return g_hash_table_lookup (snapshot->relation_set, &key);
  for (const char **s = snapshot->search_path; *s != NULL; s++)
    {
      key.schema = *s;
      const TuskSchemaRelation *found
          = g_hash_table_lookup (snapshot->relation_set, &key);
      if (found != NULL)
        return found;
    }
  return NULL;
}

const TuskSchemaColumn *
tusk_schema_relation_find_column (const TuskSchemaRelation *relation,
                                  const char *name)
{
  g_return_val_if_fail (relation != NULL && name != NULL, NULL);
  for (guint i = 0; i < relation->n_columns; i++)
    if (strcmp (relation->columns[i].name, name) == 0)
      return &relation->columns[i];
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Case folding                                                         */

/* Returns (transfer full) @s case-folded: ASCII lower-cased, the rest by
 * g_utf8_casefold(); bytes that are not UTF-8 are kept as they are. */
static char *
fold_dup (const char *s)
{
  gboolean ascii = TRUE;
  for (const char *p = s; *p; p++)
    if ((guchar)*p >= 0x80)
      {
        ascii = FALSE;
        break;
      }
  if (ascii)
    return g_ascii_strdown (s, -1);
  if (!g_utf8_validate (s, -1, NULL))
    return g_strdup (s);
  return g_utf8_casefold (s, -1);
}

/* The same into @chunk, returning @s itself when folding changes nothing
 * (the usual lower-case ASCII identifier): @s must live in @chunk. */
static const char *
fold_into (GStringChunk *chunk, const char *s)
{
  const char *p;
  for (p = s; *p; p++)
    if ((guchar)*p >= 0x80 || (*p >= 'A' && *p <= 'Z'))
      break;
  if (*p == '\0')
    return s;
  g_autofree char *folded = fold_dup (s);
  return g_string_chunk_insert (chunk, folded);
}

/* ------------------------------------------------------------------ */
/* Building                                                             */

typedef struct
{
  TuskSchemaSnapshot *snapshot;
  GArray *entries[N_KINDS]; /* Entry */
  GString *scratch;
  GHashTable *by_oid; /* oid -> TuskSchemaRelation * */
} Builder;

static int
kind_bit (TuskSchemaKind kind)
{
  return g_bit_nth_lsf ((gulong)kind, -1);
}

static void
add_entry (Builder *b, TuskSchemaKind kind, const char *schema,
           const char *name, const char *detail, gconstpointer object)
{
  GStringChunk *chunk = b->snapshot->strings;
  Entry e = { .key = fold_into (chunk, name),
              .candidate = { .kind = kind,
                             .name = name,
                             .schema = schema,
                             .detail = detail,
                             .object = object } };
  if (schema != NULL)
    {
      g_string_truncate (b->scratch, 0);
      g_string_append (b->scratch, fold_into (chunk, schema));
      g_string_append_c (b->scratch, '.');
      g_string_append (b->scratch, e.key);
      e.qkey = g_string_chunk_insert_len (chunk, b->scratch->str,
                                          (gssize)b->scratch->len);
    }
  g_array_append_val (b->entries[kind_bit (kind)], e);
}

static int
entry_cmp (gconstpointer a, gconstpointer b)
{
  const Entry *x = a, *y = b;
  int c = strcmp (x->key, y->key);
  if (c == 0)
    c = strcmp (x->candidate.name, y->candidate.name);
  if (c == 0)
    c = g_strcmp0 (x->candidate.schema, y->candidate.schema);
  return c;
}

static int
qualified_cmp (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(Entry *const *)a, *y = *(Entry *const *)b;
  int c = strcmp (x->qkey, y->qkey);
  return c != 0 ? c : entry_cmp (x, y);
}

/* Sorts the entries of each kind into the snapshot's indexes; columns are
 * collapsed to one entry per distinct name. */
static void
finish_indexes (Builder *b)
{
  for (guint k = 0; k < N_KINDS; k++)
    {
      GArray *arr = b->entries[k];
      g_array_sort (arr, entry_cmp);
      if ((1u << k) == TUSK_SCHEMA_KIND_COLUMN && arr->len > 0)
        {
          Entry *v = (Entry *)arr->data;
          guint out = 1;
          for (guint i = 1; i < arr->len; i++)
            if (strcmp (v[i].candidate.name, v[out - 1].candidate.name) != 0)
              v[out++] = v[i];
          g_array_set_size (arr, out);
        }
      KindIndex *index = &b->snapshot->index[k];
      index->n = arr->len;
      index->entries = (Entry *)g_array_free (arr, FALSE);
      b->entries[k] = NULL;

      index->qualified = g_new (Entry *, index->n + 1);
      for (guint i = 0; i < index->n; i++)
        if (index->entries[i].qkey != NULL)
          index->qualified[index->n_qualified++] = &index->entries[i];
      qsort (index->qualified, index->n_qualified, sizeof (Entry *),
             qualified_cmp);
    }
}

static guint32
parse_oid (const char *s)
{
  return (guint32)strtoul (s, NULL, 10);
}

static gboolean
parse_bool (const char *s)
{
  return s[0] == 't';
}

static int
relation_cmp (gconstpointer a, gconstpointer b)
{
  const TuskSchemaRelation *x = a, *y = b;
  int c = strcmp (x->schema, y->schema);
  return c != 0 ? c : strcmp (x->name, y->name);
}

static int
column_cmp (gconstpointer a, gconstpointer b)
{
  const TuskSchemaColumn *x = a, *y = b;
  return (x->position > y->position) - (x->position < y->position);
}

/* Reads the relations, sorts them by (schema, name), and places their
 * columns: both results come unsorted (a server-side sort of 100,000 wide
 * rows spills to disk), so the columns are bucketed by relation through an
 * oid hash and each relation's run sorted by attnum. */
static void
build_relations (Builder *b, const PGresult *rels, const PGresult *cols)
{
  TuskSchemaSnapshot *s = b->snapshot;
  GStringChunk *chunk = s->strings;

  s->n_relations = (guint)PQntuples (rels);
  s->relations = g_new0 (TuskSchemaRelation, s->n_relations);
  for (guint i = 0; i < s->n_relations; i++)
    {
      TuskSchemaRelation *r = &s->relations[i];
      r->oid = parse_oid (PQgetvalue (rels, (int)i, 0));
      r->schema
          = g_string_chunk_insert_const (chunk, PQgetvalue (rels, (int)i, 1));
      r->name = g_string_chunk_insert (chunk, PQgetvalue (rels, (int)i, 2));
      r->relkind = PQgetvalue (rels, (int)i, 3)[0];
      r->kind = r->relkind == 'v'   ? TUSK_SCHEMA_KIND_VIEW
                : r->relkind == 'm' ? TUSK_SCHEMA_KIND_MATVIEW
                                    : TUSK_SCHEMA_KIND_TABLE;
    }
  if (s->n_relations > 1) /* an empty database has no array to sort */
    qsort (s->relations, s->n_relations, sizeof (TuskSchemaRelation),
           relation_cmp);
  for (guint i = 0; i < s->n_relations; i++)
    g_hash_table_insert (b->by_oid, GUINT_TO_POINTER (s->relations[i].oid),
                         &s->relations[i]);

  /* Count each relation's columns, then give each its run. */
  guint n_rows = (guint)PQntuples (cols);
  TuskSchemaRelation **owner = g_new (TuskSchemaRelation *, n_rows);
  for (guint row = 0; row < n_rows; row++)
    {
      owner[row] = g_hash_table_lookup (
          b->by_oid,
          GUINT_TO_POINTER (parse_oid (PQgetvalue (cols, (int)row, 0))));
      if (owner[row] != NULL) /* else: cannot happen in one snapshot */
        owner[row]->n_columns++;
    }
  s->columns = g_new0 (TuskSchemaColumn, n_rows);
  s->column_keys = g_new0 (const char *, n_rows);
  guint *fill = g_new (guint, s->n_relations);
  for (guint i = 0; i < s->n_relations; i++)
    {
      s->relations[i].columns = &s->columns[s->n_columns];
      fill[i] = s->n_columns;
      s->n_columns += s->relations[i].n_columns;
    }
  for (guint row = 0; row < n_rows; row++)
    {
      if (owner[row] == NULL)
        continue;
      TuskSchemaColumn *c = &s->columns[fill[owner[row] - s->relations]++];
      c->relation = owner[row];
      c->position = atoi (PQgetvalue (cols, (int)row, 1));
      c->name = g_string_chunk_insert (chunk, PQgetvalue (cols, (int)row, 2));
      c->type_name
          = g_string_chunk_insert_const (chunk, PQgetvalue (cols, (int)row, 3));
      c->not_null = parse_bool (PQgetvalue (cols, (int)row, 4));
      if (!PQgetisnull (cols, (int)row, 5))
        c->default_expr = g_string_chunk_insert_const (
            chunk, PQgetvalue (cols, (int)row, 5));
    }
  g_free (fill);
  g_free (owner);

  s->relation_set = g_hash_table_new (relation_hash, relation_equal);
  for (guint i = 0; i < s->n_relations; i++)
    {
      TuskSchemaRelation *rel = &s->relations[i];
      TuskSchemaColumn *run = &s->columns[rel->columns - s->columns];
      gboolean sorted = TRUE;
      for (guint j = 1; j < rel->n_columns && sorted; j++)
        sorted = run[j - 1].position < run[j].position;
      if (!sorted)
        qsort (run, rel->n_columns, sizeof (TuskSchemaColumn), column_cmp);
      if (rel->n_columns == 0)
        rel->columns = NULL;

      g_hash_table_add (s->relation_set, rel);
      add_entry (b, rel->kind, rel->schema, rel->name, NULL, rel);
      for (guint j = 0; j < rel->n_columns; j++)
        {
          s->column_keys[run + j - s->columns] = fold_into (chunk, run[j].name);
          add_entry (b, TUSK_SCHEMA_KIND_COLUMN, NULL, run[j].name, NULL,
                     &run[j]);
        }
    }
}

static void
build_functions (Builder *b, const PGresult *res)
{
  TuskSchemaSnapshot *s = b->snapshot;
  GStringChunk *chunk = s->strings;

  s->n_functions = (guint)PQntuples (res);
  s->functions = g_new0 (TuskSchemaFunction, s->n_functions);
  for (guint i = 0; i < s->n_functions; i++)
    {
      TuskSchemaFunction *f = &s->functions[i];
      int row = (int)i;
      f->schema = g_string_chunk_insert_const (chunk, PQgetvalue (res, row, 0));
      f->name = g_string_chunk_insert (chunk, PQgetvalue (res, row, 1));
      f->arguments
          = g_string_chunk_insert_const (chunk, PQgetvalue (res, row, 2));
      if (!PQgetisnull (res, row, 3))
        f->result_type
            = g_string_chunk_insert_const (chunk, PQgetvalue (res, row, 3));
      f->prokind = PQgetvalue (res, row, 4)[0];
      add_entry (b,
                 f->prokind == 'p' ? TUSK_SCHEMA_KIND_PROCEDURE
                                   : TUSK_SCHEMA_KIND_FUNCTION,
                 f->schema, f->name, f->arguments, f);
    }
}

/* Marks the columns of @table listed in @indkey (an int2vector: "1 3"). */
static void
mark_primary_key (const TuskSchemaRelation *table, const char *indkey)
{
  TuskSchemaColumn *columns = (TuskSchemaColumn *)table->columns;
  char *end;
  for (const char *p = indkey; *p != '\0'; p = end)
    {
      long attnum = strtol (p, &end, 10);
      if (end == p)
        break;
      for (guint i = 0; i < table->n_columns; i++)
        if (columns[i].position == attnum)
          columns[i].primary_key = TRUE;
    }
}

static void
build_indexes (Builder *b, const PGresult *res)
{
  TuskSchemaSnapshot *s = b->snapshot;
  GStringChunk *chunk = s->strings;

  s->n_indexes = (guint)PQntuples (res);
  s->indexes = g_new0 (TuskSchemaIndex, s->n_indexes);
  for (guint i = 0; i < s->n_indexes; i++)
    {
      TuskSchemaIndex *x = &s->indexes[i];
      int row = (int)i;
      x->schema = g_string_chunk_insert_const (chunk, PQgetvalue (res, row, 0));
      x->name = g_string_chunk_insert (chunk, PQgetvalue (res, row, 1));
      x->table = g_hash_table_lookup (
          b->by_oid, GUINT_TO_POINTER (parse_oid (PQgetvalue (res, row, 2))));
      x->table_name
          = x->table != NULL
                ? x->table->name
                : g_string_chunk_insert (chunk, PQgetvalue (res, row, 3));
      /* NULL only if the index went away under a concurrent DROP. */
      x->definition = g_string_chunk_insert (chunk, PQgetvalue (res, row, 4));
      x->is_unique = parse_bool (PQgetvalue (res, row, 5));
      x->is_primary = parse_bool (PQgetvalue (res, row, 6));
      if (x->is_primary && x->table != NULL)
        mark_primary_key (x->table, PQgetvalue (res, row, 7));
      add_entry (b, TUSK_SCHEMA_KIND_INDEX, x->schema, x->name, x->table_name,
                 x);
    }
}

static void
build_sequences (Builder *b, const PGresult *res)
{
  TuskSchemaSnapshot *s = b->snapshot;
  s->n_sequences = (guint)PQntuples (res);
  s->sequences = g_new0 (TuskSchemaSequence, s->n_sequences);
  for (guint i = 0; i < s->n_sequences; i++)
    {
      TuskSchemaSequence *q = &s->sequences[i];
      q->schema = g_string_chunk_insert_const (s->strings,
                                               PQgetvalue (res, (int)i, 0));
      q->name = g_string_chunk_insert (s->strings, PQgetvalue (res, (int)i, 1));
      add_entry (b, TUSK_SCHEMA_KIND_SEQUENCE, q->schema, q->name, NULL, q);
    }
}

static void
build_enums (Builder *b, const PGresult *res)
{
  TuskSchemaSnapshot *s = b->snapshot;
  GStringChunk *chunk = s->strings;
  int n_rows = PQntuples (res);

  s->enum_labels = g_new0 (const char *, n_rows);
  s->enums = g_new0 (TuskSchemaEnum, n_rows);
  guint32 last = 0;
  for (int row = 0; row < n_rows; row++)
    {
      guint32 oid = parse_oid (PQgetvalue (res, row, 0));
      if (s->n_enums == 0 || oid != last)
        {
          TuskSchemaEnum *e = &s->enums[s->n_enums++];
          e->schema
              = g_string_chunk_insert_const (chunk, PQgetvalue (res, row, 1));
          e->name = g_string_chunk_insert (chunk, PQgetvalue (res, row, 2));
          e->labels = &s->enum_labels[row];
          last = oid;
        }
      s->enum_labels[row]
          = g_string_chunk_insert (chunk, PQgetvalue (res, row, 3));
      s->enums[s->n_enums - 1].n_labels++;
    }
  for (guint i = 0; i < s->n_enums; i++)
    add_entry (b, TUSK_SCHEMA_KIND_ENUM, s->enums[i].schema, s->enums[i].name,
               NULL, &s->enums[i]);
}

/* Builds a snapshot from the results of catalog_sql.  Pure CPU; the
 * results stay owned by the caller. */
static TuskSchemaSnapshot *
snapshot_build (PGresult *const *res)
{
  TuskSchemaSnapshot *s = g_new0 (TuskSchemaSnapshot, 1);
  s->ref_count = 1;
  s->strings = g_string_chunk_new (64 * 1024);

  Builder b = { .snapshot = s,
                .scratch = g_string_new (NULL),
                .by_oid = g_hash_table_new (NULL, NULL) };
  for (guint k = 0; k < N_KINDS; k++)
    b.entries[k] = g_array_new (FALSE, FALSE, sizeof (Entry));

  s->database = g_string_chunk_insert (
      s->strings,
      PQntuples (res[RES_META]) > 0 ? PQgetvalue (res[RES_META], 0, 0) : "");

  int n_path = PQntuples (res[RES_SEARCH_PATH]);
  s->search_path = g_new0 (const char *, n_path + 1);
  for (int i = 0; i < n_path; i++)
    s->search_path[i] = g_string_chunk_insert_const (
        s->strings, PQgetvalue (res[RES_SEARCH_PATH], i, 0));

  s->n_schemas = (guint)PQntuples (res[RES_SCHEMAS]);
  s->schemas = g_new0 (const char *, s->n_schemas + 1);
  for (guint i = 0; i < s->n_schemas; i++)
    {
      s->schemas[i] = g_string_chunk_insert_const (
          s->strings, PQgetvalue (res[RES_SCHEMAS], (int)i, 0));
      add_entry (&b, TUSK_SCHEMA_KIND_SCHEMA, NULL, s->schemas[i], NULL,
                 s->schemas[i]);
    }

  build_relations (&b, res[RES_RELATIONS], res[RES_COLUMNS]);
  build_functions (&b, res[RES_FUNCTIONS]);
  build_indexes (&b, res[RES_INDEXES]);
  build_sequences (&b, res[RES_SEQUENCES]);
  build_enums (&b, res[RES_ENUMS]);
  finish_indexes (&b);

  g_string_free (b.scratch, TRUE);
  g_hash_table_unref (b.by_oid);
  return s;
}

/* ------------------------------------------------------------------ */
/* Completion                                                           */

/* The first position in @index whose key (or qkey) is >= @prefix. */
static guint
lower_bound (const KindIndex *index, gboolean qualified, const char *prefix)
{
  guint lo = 0, hi = qualified ? index->n_qualified : index->n;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      const char *key
          = qualified ? index->qualified[mid]->qkey : index->entries[mid].key;
      if (strcmp (key, prefix) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

GPtrArray *
tusk_schema_complete (TuskSchemaSnapshot *snapshot, guint kinds,
                      const char *prefix, guint limit)
{
  g_return_val_if_fail (snapshot != NULL, NULL);
  g_return_val_if_fail (prefix != NULL, NULL);
  g_return_val_if_fail (limit > 0, NULL);

  g_autofree char *folded = fold_dup (prefix);
  size_t len = strlen (folded);
  gboolean qualified = strchr (folded, '.') != NULL;
  guint pos[N_KINDS], end[N_KINDS];
  const char *key[N_KINDS];

  for (guint k = 0; k < N_KINDS; k++)
    {
      const KindIndex *index = &snapshot->index[k];
      key[k] = NULL;
      if (!(kinds & (1u << k)))
        continue;
      pos[k] = lower_bound (index, qualified, folded);
      end[k] = qualified ? index->n_qualified : index->n;
      if (pos[k] < end[k])
        key[k] = qualified ? index->qualified[pos[k]]->qkey
                           : index->entries[pos[k]].key;
      if (key[k] != NULL && strncmp (key[k], folded, len) != 0)
        key[k] = NULL;
    }

  /* Merge the kinds' runs of matches, smallest key first. */
  GPtrArray *out = g_ptr_array_sized_new (MIN (limit, 64));
  while (out->len < limit)
    {
      int best = -1;
      for (guint k = 0; k < N_KINDS; k++)
        if (key[k] != NULL && (best < 0 || strcmp (key[k], key[best]) < 0))
          best = (int)k;
      if (best < 0)
        break;

      const KindIndex *index = &snapshot->index[best];
      const Entry *e = qualified ? index->qualified[pos[best]]
                                 : &index->entries[pos[best]];
      g_ptr_array_add (out, (gpointer)&e->candidate);
      if (++pos[best] < end[best])
        {
          const char *next = qualified ? index->qualified[pos[best]]->qkey
                                       : index->entries[pos[best]].key;
          key[best] = strncmp (next, folded, len) == 0 ? next : NULL;
        }
      else
        key[best] = NULL;
    }
  return out;
}

GPtrArray *
tusk_schema_complete_columns (TuskSchemaSnapshot *snapshot,
                              const TuskSchemaRelation *relation,
                              const char *prefix, guint limit)
{
  g_return_val_if_fail (snapshot != NULL && relation != NULL, NULL);
  g_return_val_if_fail (prefix != NULL && limit > 0, NULL);
  g_return_val_if_fail (
      relation->n_columns == 0
          || (relation->columns >= snapshot->columns
              && relation->columns < snapshot->columns + snapshot->n_columns),
      NULL);

  g_autofree char *folded = fold_dup (prefix);
  size_t len = strlen (folded);
  guint first = (guint)(relation->columns - snapshot->columns);
  GPtrArray *out = g_ptr_array_new ();
  for (guint i = 0; i < relation->n_columns && out->len < limit; i++)
    if (strncmp (snapshot->column_keys[first + i], folded, len) == 0)
      g_ptr_array_add (out, (gpointer)&relation->columns[i]);
  return out;
}

/* ------------------------------------------------------------------ */
/* DDL tags                                                             */

gboolean
tusk_schema_is_ddl_tag (const char *command_tag)
{
  static const char *const verbs[]
      = { "CREATE", "ALTER", "DROP", "IMPORT", "DO" };
  /* Objects no schema cache holds: cluster-wide ones and settings. */
  static const char *const ignored[]
      = { "ROLE",       "USER",   "GROUP",       "DATABASE",
          "TABLESPACE", "SYSTEM", "SUBSCRIPTION" };

  if (command_tag == NULL)
    return FALSE;

  const char *p = command_tag;
  while (*p == ' ')
    p++;
  gboolean verb = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (verbs) && !verb; i++)
    {
      size_t n = strlen (verbs[i]);
      if (g_ascii_strncasecmp (p, verbs[i], n) == 0
          && (p[n] == '\0' || p[n] == ' '))
        {
          verb = TRUE;
          p += n;
        }
    }
  if (!verb)
    return FALSE;

  while (*p == ' ')
    p++;
  for (guint i = 0; i < G_N_ELEMENTS (ignored); i++)
    {
      size_t n = strlen (ignored[i]);
      if (g_ascii_strncasecmp (p, ignored[i], n) == 0
          && (p[n] == '\0' || p[n] == ' '))
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* The cache                                                            */

struct TuskSchemaCache
{
  gint ref_count;
  TuskPool *pool; /* owned reference; immutable */

  pthread_mutex_t lock; /* protects the fields below; a leaf (invariant 3) */
  TuskSchemaSnapshot *snapshot; /* nullable: the current one */
  guint64 generation;           /* bumped by invalidate */
  guint64 next_seq;             /* handed to each load as it begins */
  gint64 ttl_us;
};

TuskSchemaCache *
tusk_schema_cache_new (TuskPool *pool)
{
  g_return_val_if_fail (pool != NULL, NULL);

  TuskSchemaCache *cache = g_new0 (TuskSchemaCache, 1);
  cache->ref_count = 1;
  cache->pool = tusk_pool_ref (pool);
  pthread_mutex_init (&cache->lock, NULL);
  cache->ttl_us = (gint64)TUSK_SCHEMA_CACHE_DEFAULT_TTL_MS * 1000;
  return cache;
}

TuskSchemaCache *
tusk_schema_cache_ref (TuskSchemaCache *cache)
{
  g_return_val_if_fail (cache != NULL, NULL);
  g_atomic_int_inc (&cache->ref_count);
  return cache;
}

void
tusk_schema_cache_unref (TuskSchemaCache *cache)
{
  if (cache == NULL || !g_atomic_int_dec_and_test (&cache->ref_count))
    return;
  tusk_schema_snapshot_unref (cache->snapshot);
  tusk_pool_unref (cache->pool);
  pthread_mutex_destroy (&cache->lock);
  g_free (cache);
}

void
tusk_schema_cache_set_ttl (TuskSchemaCache *cache, guint ttl_ms)
{
  g_return_if_fail (cache != NULL);
  pthread_mutex_lock (&cache->lock);
  cache->ttl_us = (gint64)ttl_ms * 1000;
  pthread_mutex_unlock (&cache->lock);
}

TuskSchemaSnapshot *
tusk_schema_cache_dup_snapshot (TuskSchemaCache *cache)
{
  g_return_val_if_fail (cache != NULL, NULL);
  pthread_mutex_lock (&cache->lock);
  TuskSchemaSnapshot *snapshot
      = cache->snapshot ? tusk_schema_snapshot_ref (cache->snapshot) : NULL;
  pthread_mutex_unlock (&cache->lock);
  return snapshot;
}

/* Invariant 1.  Called with `lock` held. */
static gboolean
is_stale_locked (TuskSchemaCache *cache)
{
  const TuskSchemaSnapshot *s = cache->snapshot;
  return s == NULL || s->generation != cache->generation
         || g_get_monotonic_time () - s->started_mono >= cache->ttl_us;
}

gboolean
tusk_schema_cache_is_stale (TuskSchemaCache *cache)
{
  g_return_val_if_fail (cache != NULL, TRUE);
  pthread_mutex_lock (&cache->lock);
  gboolean stale = is_stale_locked (cache);
  pthread_mutex_unlock (&cache->lock);
  return stale;
}

void
tusk_schema_cache_invalidate (TuskSchemaCache *cache)
{
  g_return_if_fail (cache != NULL);
  pthread_mutex_lock (&cache->lock);
  cache->generation++;
  pthread_mutex_unlock (&cache->lock);
}

/* Sends catalog_sql on @conn and collects its N_RESULTS tuple results into
 * @res (each set, or all cleared on failure).  Waits on the socket and on
 * @cancellable together; on cancellation sends a cancel request from this
 * (worker) thread and drains the connection to its end.  Blocks. */
static gboolean
run_catalog_queries (TuskPoolConn *conn, GCancellable *cancellable,
                     PGresult **res, GError **error)
{
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  GError *failure = NULL;
  gboolean cancel_sent = FALSE;
  guint n = 0;

  if (!PQsendQuery (pg, catalog_sql))
    {
      g_propagate_error (error, tusk_error_from_pg_result (pg, NULL));
      return FALSE;
    }

  GPollFD fds[2] = { { .fd = PQsocket (pg), .events = G_IO_IN } };
  guint n_fds = g_cancellable_make_pollfd (cancellable, &fds[1]) ? 2 : 1;

  for (;;)
    {
      while (PQisBusy (pg))
        {
          if (!cancel_sent && g_cancellable_is_cancelled (cancellable))
            {
              /* Best effort: if the request fails, draining still ends. */
              tusk_pool_conn_cancel (conn, NULL);
              cancel_sent = TRUE;
              n_fds = 1;
            }
          g_poll (fds, n_fds, -1);
          if (!PQconsumeInput (pg))
            break;
        }
      if (PQstatus (pg) == CONNECTION_BAD)
        {
          if (failure == NULL)
            failure = tusk_error_from_pg_result (pg, NULL);
          break;
        }

      PGresult *r = PQgetResult (pg);
      if (r == NULL)
        break;
      switch (PQresultStatus (r))
        {
          case PGRES_TUPLES_OK:
            if (n < N_RESULTS && PQnfields (r) == result_fields[n])
              {
                res[n++] = r;
                continue;
              }
            if (failure == NULL)
              failure = g_error_new (TUSK_ERROR, TUSK_ERROR_INTERNAL,
                                     "Unexpected catalog result %u", n);
            break;
          case PGRES_COMMAND_OK:
            break;
          default:
            if (failure == NULL)
              failure = tusk_error_from_pg_result (pg, r);
            break;
        }
      PQclear (r);
    }
  if (n_fds == 2)
    g_cancellable_release_fd (cancellable);

  if (failure == NULL && n != N_RESULTS)
    failure = g_error_new (TUSK_ERROR, TUSK_ERROR_INTERNAL,
                           "The catalog queries gave %u results of %d", n,
                           N_RESULTS);
  if (failure != NULL && cancel_sent)
    {
      g_clear_error (&failure);
      failure = g_error_new_literal (TUSK_ERROR, TUSK_ERROR_QUERY_CANCELLED,
                                     "Loading the schema was cancelled");
    }
  if (failure != NULL)
    {
      for (guint i = 0; i < n; i++)
        g_clear_pointer (&res[i], PQclear);
      g_propagate_error (error, failure);
      return FALSE;
    }
  return TRUE;
}

TuskSchemaSnapshot *
tusk_schema_cache_load_sync (TuskSchemaCache *cache, GCancellable *cancellable,
                             GError **error)
{
  g_return_val_if_fail (cache != NULL, NULL);

  pthread_mutex_lock (&cache->lock);
  guint64 generation = cache->generation;
  guint64 seq = ++cache->next_seq;
  pthread_mutex_unlock (&cache->lock);
  gint64 started_mono = g_get_monotonic_time ();
  gint64 cached_at = g_get_real_time ();

  TuskPoolConn *conn = tusk_pool_acquire_sync (cache->pool, cancellable, error);
  if (conn == NULL)
    return NULL;
  PGresult *res[N_RESULTS] = { NULL };
  gboolean ok = run_catalog_queries (conn, cancellable, res, error);
  tusk_pool_release (conn);
  if (!ok)
    return NULL;
  gint64 fetched = g_get_monotonic_time ();

  TuskSchemaSnapshot *snapshot = snapshot_build (res);
  for (guint i = 0; i < N_RESULTS; i++)
    PQclear (res[i]);
  snapshot->cached_at = cached_at;
  snapshot->started_mono = started_mono;
  snapshot->generation = generation;
  snapshot->seq = seq;

  /* Invariant 2: only a newer load replaces the current snapshot. */
  TuskSchemaSnapshot *old = NULL;
  tusk_schema_snapshot_ref (snapshot);
  pthread_mutex_lock (&cache->lock);
  if (cache->snapshot == NULL || cache->snapshot->seq < seq)
    {
      old = cache->snapshot;
      cache->snapshot = snapshot;
    }
  else
    old = snapshot; /* a later load landed first */
  pthread_mutex_unlock (&cache->lock);
  tusk_schema_snapshot_unref (old);

  tusk_debug ("schema of %s: %u relations, %u columns, %u functions, "
              "%u indexes in %.1f ms (%.1f ms on the server)",
              snapshot->database, snapshot->n_relations, snapshot->n_columns,
              snapshot->n_functions, snapshot->n_indexes,
              (g_get_monotonic_time () - started_mono) / 1000.0,
              (fetched - started_mono) / 1000.0);
  return snapshot;
}

static void
load_thread (GTask *task, gpointer source, gpointer data,
             GCancellable *cancellable)
{
  (void)source;
  GError *error = NULL;
  TuskSchemaSnapshot *snapshot
      = tusk_schema_cache_load_sync (data, cancellable, &error);
  tusk_tsan_release (task);
  if (snapshot != NULL)
    g_task_return_pointer (task, snapshot,
                           (GDestroyNotify)tusk_schema_snapshot_unref);
  else
    g_task_return_error (task, error);
}

static void
start_load (TuskSchemaCache *cache, TuskRuntime *runtime, gpointer tag,
            GCancellable *cancellable, GAsyncReadyCallback callback,
            gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tag);
  /* Our own TUSK_ERROR_QUERY_CANCELLED, not GIO's. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, tusk_schema_cache_ref (cache),
                        (GDestroyNotify)tusk_schema_cache_unref);
  tusk_runtime_run_in_thread (runtime, task, load_thread);
}

void
tusk_schema_cache_load_async (TuskSchemaCache *cache, TuskRuntime *runtime,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (cache != NULL && runtime != NULL);
  start_load (cache, runtime, tusk_schema_cache_load_async, cancellable,
              callback, user_data);
}

static TuskSchemaSnapshot *
finish (TuskSchemaCache *cache, GAsyncResult *result, gpointer tag,
        GError **error)
{
  g_return_val_if_fail (cache != NULL, NULL);
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, NULL);
  tusk_tsan_acquire (result);
  return g_task_propagate_pointer (G_TASK (result), error);
}

TuskSchemaSnapshot *
tusk_schema_cache_load_finish (TuskSchemaCache *cache, GAsyncResult *result,
                               GError **error)
{
  return finish (cache, result, tusk_schema_cache_load_async, error);
}

TuskSchemaSnapshot *
tusk_schema_cache_ensure_sync (TuskSchemaCache *cache,
                               GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (cache != NULL, NULL);

  pthread_mutex_lock (&cache->lock);
  TuskSchemaSnapshot *fresh = is_stale_locked (cache)
                                  ? NULL
                                  : tusk_schema_snapshot_ref (cache->snapshot);
  pthread_mutex_unlock (&cache->lock);
  return fresh ? fresh
               : tusk_schema_cache_load_sync (cache, cancellable, error);
}

void
tusk_schema_cache_ensure_async (TuskSchemaCache *cache, TuskRuntime *runtime,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_return_if_fail (cache != NULL && runtime != NULL);

  pthread_mutex_lock (&cache->lock);
  TuskSchemaSnapshot *fresh = is_stale_locked (cache)
                                  ? NULL
                                  : tusk_schema_snapshot_ref (cache->snapshot);
  pthread_mutex_unlock (&cache->lock);
  if (fresh == NULL)
    {
      start_load (cache, runtime, tusk_schema_cache_ensure_async, cancellable,
                  callback, user_data);
      return;
    }

  /* GTask delivers this in a later iteration of the caller's context,
   * never inside this call (a task returned in the iteration that made it
   * goes through an idle source). */
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tusk_schema_cache_ensure_async);
  g_task_set_check_cancellable (task, FALSE);
  g_task_return_pointer (task, fresh,
                         (GDestroyNotify)tusk_schema_snapshot_unref);
}

TuskSchemaSnapshot *
tusk_schema_cache_ensure_finish (TuskSchemaCache *cache, GAsyncResult *result,
                                 GError **error)
{
  return finish (cache, result, tusk_schema_cache_ensure_async, error);
}
