/* test-schema.c: the schema cache against the real PostgreSQL server: a
 * fixture catalog loaded and compared with pg_catalog, lookups through the
 * search_path, completion, TTL expiry, invalidation, loading on a worker,
 * and the DDL command tags.
 *
 * Everything lives in a database of its own, created by main() and dropped
 * at the end, so tests of other units running against the same server
 * neither disturb the catalog compared here nor see it. */
#include <string.h>

#include "tusk.h"
#include "tusk-test.h"

#include <libpq-fe.h>

static char *test_db; /* the scratch database */

static const char fixture_sql[]
    = "CREATE SCHEMA shop;"
      "CREATE SCHEMA audit;"
      "CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');"
      "CREATE SEQUENCE shop.ticket_seq;"
      "CREATE TABLE shop.customers (id serial PRIMARY KEY,"
      " name varchar(80) NOT NULL, email text, mood shop.mood DEFAULT 'ok',"
      " created_at timestamptz NOT NULL DEFAULT now(),"
      " score numeric(10,2), tags text[]);"
      "CREATE TABLE shop.orders (customer_id integer NOT NULL"
      " REFERENCES shop.customers, dropme integer, line integer NOT NULL,"
      " total numeric(12,2) DEFAULT 0, PRIMARY KEY (customer_id, line));"
      "ALTER TABLE shop.orders DROP COLUMN dropme;"
      "CREATE TABLE shop.\"MixedCase\" (\"Value\" int);"
      "CREATE INDEX orders_total_idx ON shop.orders (total);"
      "CREATE UNIQUE INDEX customers_email_key ON shop.customers"
      " (lower(email));"
      "CREATE VIEW shop.big_orders AS SELECT customer_id, total"
      " FROM shop.orders WHERE total > 100;"
      "CREATE MATERIALIZED VIEW shop.order_counts AS"
      " SELECT customer_id, count(*) AS n FROM shop.orders GROUP BY 1;"
      "CREATE FUNCTION shop.add(a integer, b integer) RETURNS integer"
      " LANGUAGE sql AS 'SELECT a + b';"
      "CREATE FUNCTION shop.add(a numeric, b numeric) RETURNS numeric"
      " LANGUAGE sql AS 'SELECT a + b';"
      "CREATE PROCEDURE shop.reset_scores(who integer) LANGUAGE sql"
      " AS 'UPDATE shop.customers SET score = 0 WHERE id = who';"
      "CREATE TABLE audit.customers (id integer, at timestamptz);"
      "CREATE TABLE audit.events (id bigint PRIMARY KEY, payload jsonb);";

/* A libpq connection as the trust superuser to @dbname; aborts on failure. */
static PGconn *
admin_connect (const char *dbname)
{
  const char *keys[] = { "host", "port", "user", "dbname", NULL };
  const char *values[]
      = { tusk_test_env ("TUSK_TEST_PGHOST"),
          tusk_test_env ("TUSK_TEST_PGPORT"),
          tusk_test_env ("TUSK_TEST_PGUSER_TRUST"), dbname, NULL };
  PGconn *pg = PQconnectdbParams (keys, values, 0);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect to %s: %s", dbname, PQerrorMessage (pg));
  return pg;
}

static void
admin_exec (PGconn *pg, const char *sql)
{
  PGresult *res = PQexec (pg, sql);
  ExecStatusType status = PQresultStatus (res);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQerrorMessage (pg));
  PQclear (res);
}

/* Runs @sql in the scratch database on a fresh connection. */
static void
db_exec (const char *sql)
{
  PGconn *pg = admin_connect (test_db);
  admin_exec (pg, sql);
  PQfinish (pg);
}

typedef struct
{
  TuskPool *pool;
  TuskSchemaCache *cache;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("schema test");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (test_db);
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  f->pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  f->cache = tusk_schema_cache_new (f->pool);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_schema_cache_unref (f->cache);
  tusk_pool_unref (f->pool);
}

static TuskSchemaSnapshot *
load (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  TuskSchemaSnapshot *snapshot
      = tusk_schema_cache_load_sync (f->cache, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (snapshot);
  return snapshot;
}

static const TuskSchemaRelation *
find (TuskSchemaSnapshot *snapshot, const char *schema, const char *name)
{
  const TuskSchemaRelation *r
      = tusk_schema_snapshot_find_relation (snapshot, schema, name);
  if (r == NULL)
    g_error ("relation %s.%s not found", schema, name);
  return r;
}

static gboolean
strv_has (const char *const *strv, guint n, const char *s)
{
  for (guint i = 0; i < n; i++)
    if (strcmp (strv[i], s) == 0)
      return TRUE;
  return FALSE;
}

/* Every relation and column of the snapshot against pg_catalog, read with
 * the same search_path so that format_type() qualifies names alike. */
static void
check_against_catalog (TuskSchemaSnapshot *snapshot)
{
  PGconn *pg = admin_connect (test_db);
  admin_exec (pg, "SET search_path = shop, audit, public");
  PGresult *res = PQexec (
      pg, "SELECT n.nspname, c.relname, c.relkind, a.attname,"
          " format_type(a.atttypid, a.atttypmod), a.attnotnull"
          " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
          " JOIN pg_attribute a ON a.attrelid = c.oid"
          " WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')"
          " AND n.nspname IN ('shop', 'audit', 'public')"
          " AND a.attnum > 0 AND NOT a.attisdropped"
          " ORDER BY 1, 2, a.attnum");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);

  guint n_relations = 0, n_columns = 0;
  const TuskSchemaRelation *rels
      = tusk_schema_snapshot_get_relations (snapshot, &n_relations);
  for (guint i = 0; i < n_relations; i++)
    n_columns += rels[i].n_columns;
  g_assert_cmpuint (n_columns, ==, PQntuples (res));

  const TuskSchemaRelation *rel = NULL;
  guint col = 0, seen_relations = 0;
  for (int row = 0; row < PQntuples (res); row++)
    {
      const char *schema = PQgetvalue (res, row, 0);
      const char *name = PQgetvalue (res, row, 1);
      if (rel == NULL || strcmp (rel->schema, schema) != 0
          || strcmp (rel->name, name) != 0)
        {
          if (rel != NULL)
            g_assert_cmpuint (col, ==, rel->n_columns);
          rel = find (snapshot, schema, name);
          g_assert_cmpint (rel->relkind, ==, PQgetvalue (res, row, 2)[0]);
          col = 0;
          seen_relations++;
        }
      g_assert_cmpuint (col, <, rel->n_columns);
      const TuskSchemaColumn *c = &rel->columns[col++];
      g_assert_cmpstr (c->name, ==, PQgetvalue (res, row, 3));
      g_assert_cmpstr (c->type_name, ==, PQgetvalue (res, row, 4));
      g_assert_cmpint (c->not_null, ==, PQgetvalue (res, row, 5)[0] == 't');
      g_assert_true (c->relation == rel);
    }
  g_assert_cmpuint (col, ==, rel->n_columns);
  g_assert_cmpuint (seen_relations, ==, n_relations);
  PQclear (res);

  /* The other kinds, counted. */
  res = PQexec (
      pg, "SELECT (SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
          "  ON n.oid = p.pronamespace WHERE n.nspname IN ('shop', 'audit')),"
          " (SELECT count(*) FROM pg_index i JOIN pg_class c"
          "  ON c.oid = i.indexrelid JOIN pg_namespace n"
          "  ON n.oid = c.relnamespace WHERE n.nspname IN ('shop', 'audit')),"
          " (SELECT count(*) FROM pg_class c JOIN pg_namespace n"
          "  ON n.oid = c.relnamespace WHERE c.relkind = 'S'"
          "  AND n.nspname IN ('shop', 'audit')),"
          " (SELECT count(*) FROM pg_type t JOIN pg_namespace n"
          "  ON n.oid = t.typnamespace WHERE t.typtype = 'e'"
          "  AND n.nspname IN ('shop', 'audit'))");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);
  guint n = 0;
  tusk_schema_snapshot_get_functions (snapshot, &n);
  g_assert_cmpint (n, ==, atoi (PQgetvalue (res, 0, 0)));
  tusk_schema_snapshot_get_indexes (snapshot, &n);
  g_assert_cmpint (n, ==, atoi (PQgetvalue (res, 0, 1)));
  tusk_schema_snapshot_get_sequences (snapshot, &n);
  g_assert_cmpint (n, ==, atoi (PQgetvalue (res, 0, 2)));
  tusk_schema_snapshot_get_enums (snapshot, &n);
  g_assert_cmpint (n, ==, atoi (PQgetvalue (res, 0, 3)));
  PQclear (res);
  PQfinish (pg);
}

static void
test_load (Fixture *f, gconstpointer data)
{
  (void)data;
  g_assert_true (tusk_schema_cache_is_stale (f->cache));
  g_assert_null (tusk_schema_cache_dup_snapshot (f->cache));

  /* A temporary table on another session must not show up. */
  PGconn *temp = admin_connect (test_db);
  admin_exec (temp, "CREATE TEMP TABLE scratch_temp (x int)");

  gint64 before = g_get_real_time ();
  g_autoptr (TuskSchemaSnapshot) s = load (f);
  gint64 after = g_get_real_time ();
  PQfinish (temp);

  g_assert_false (tusk_schema_cache_is_stale (f->cache));
  g_autoptr (TuskSchemaSnapshot) current
      = tusk_schema_cache_dup_snapshot (f->cache);
  g_assert_true (current == s);
  g_assert_cmpint (tusk_schema_snapshot_get_cached_at (s), >=, before);
  g_assert_cmpint (tusk_schema_snapshot_get_cached_at (s), <=, after);
  g_assert_cmpstr (tusk_schema_snapshot_get_database (s), ==, test_db);

  const char *const *path = tusk_schema_snapshot_get_search_path (s);
  g_assert_cmpuint (g_strv_length ((char **)path), ==, 3);
  g_assert_cmpstr (path[0], ==, "shop");
  g_assert_cmpstr (path[1], ==, "audit");
  g_assert_cmpstr (path[2], ==, "public");

  guint n = 0;
  const char *const *schemas = tusk_schema_snapshot_get_schemas (s, &n);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpstr (schemas[0], ==, "audit");
  g_assert_cmpstr (schemas[1], ==, "public");
  g_assert_cmpstr (schemas[2], ==, "shop");
  g_assert_false (strv_has (schemas, n, "pg_catalog"));

  check_against_catalog (s);

  /* Columns in detail. */
  const TuskSchemaRelation *customers = find (s, "shop", "customers");
  g_assert_cmpint (customers->kind, ==, TUSK_SCHEMA_KIND_TABLE);
  g_assert_cmpuint (customers->n_columns, ==, 7);
  const TuskSchemaColumn *id = &customers->columns[0];
  g_assert_cmpstr (id->name, ==, "id");
  g_assert_cmpstr (id->type_name, ==, "integer");
  g_assert_true (id->not_null && id->primary_key);
  g_assert_cmpstr (id->default_expr, ==,
                   "nextval('customers_id_seq'::regclass)");
  const TuskSchemaColumn *name = &customers->columns[1];
  g_assert_cmpstr (name->type_name, ==, "character varying(80)");
  g_assert_true (name->not_null && !name->primary_key);
  g_assert_null (name->default_expr);
  const TuskSchemaColumn *mood = &customers->columns[3];
  g_assert_cmpstr (mood->type_name, ==, "mood");
  g_assert_cmpstr (mood->default_expr, ==, "'ok'::mood");
  g_assert_cmpstr (customers->columns[4].type_name, ==,
                   "timestamp with time zone");
  g_assert_cmpstr (customers->columns[4].default_expr, ==, "now()");
  g_assert_cmpstr (customers->columns[5].type_name, ==, "numeric(10,2)");
  g_assert_cmpstr (customers->columns[6].type_name, ==, "text[]");
  g_assert_false (customers->columns[2].not_null);

  const TuskSchemaRelation *orders = find (s, "shop", "orders");
  g_assert_cmpuint (orders->n_columns, ==, 3);
  g_assert_cmpstr (orders->columns[0].name, ==, "customer_id");
  g_assert_true (orders->columns[0].primary_key);
  g_assert_cmpstr (orders->columns[1].name, ==, "line");
  g_assert_cmpint (orders->columns[1].position, ==, 3); /* after the drop */
  g_assert_true (orders->columns[1].primary_key);
  g_assert_false (orders->columns[2].primary_key);

  g_assert_cmpint (find (s, "shop", "big_orders")->kind, ==,
                   TUSK_SCHEMA_KIND_VIEW);
  g_assert_cmpuint (find (s, "shop", "big_orders")->n_columns, ==, 2);
  const TuskSchemaRelation *counts = find (s, "shop", "order_counts");
  g_assert_cmpint (counts->kind, ==, TUSK_SCHEMA_KIND_MATVIEW);
  g_assert_cmpstr (counts->columns[1].type_name, ==, "bigint");
  g_assert_null (
      tusk_schema_snapshot_find_relation (s, "pg_catalog", "pg_class"));
  g_assert_null (tusk_schema_snapshot_find_relation (s, NULL, "scratch_temp"));

  /* Functions and procedures, overloads apart. */
  const TuskSchemaFunction *fn = tusk_schema_snapshot_get_functions (s, &n);
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpstr (fn[0].name, ==, "add");
  g_assert_cmpstr (fn[0].arguments, ==, "a integer, b integer");
  g_assert_cmpstr (fn[0].result_type, ==, "integer");
  g_assert_cmpint (fn[0].prokind, ==, 'f');
  g_assert_cmpstr (fn[1].arguments, ==, "a numeric, b numeric");
  g_assert_cmpstr (fn[1].result_type, ==, "numeric");
  g_assert_cmpstr (fn[2].name, ==, "reset_scores");
  g_assert_cmpstr (fn[2].arguments, ==, "IN who integer");
  g_assert_null (fn[2].result_type);
  g_assert_cmpint (fn[2].prokind, ==, 'p');

  /* Indexes, with their table. */
  const TuskSchemaIndex *ix = tusk_schema_snapshot_get_indexes (s, &n);
  const TuskSchemaIndex *email = NULL, *pkey = NULL, *total = NULL;
  for (guint i = 0; i < n; i++)
    {
      if (strcmp (ix[i].name, "customers_email_key") == 0)
        email = &ix[i];
      else if (strcmp (ix[i].name, "customers_pkey") == 0)
        pkey = &ix[i];
      else if (strcmp (ix[i].name, "orders_total_idx") == 0)
        total = &ix[i];
    }
  g_assert_nonnull (email);
  g_assert_true (email->is_unique && !email->is_primary);
  g_assert_true (email->table == customers);
  g_assert_cmpstr (email->table_name, ==, "customers");
  g_assert_nonnull (strstr (email->definition, "lower(email)"));
  g_assert_true (pkey->is_unique && pkey->is_primary);
  g_assert_false (total->is_unique);
  g_assert_cmpstr (total->definition, ==,
                   "CREATE INDEX orders_total_idx ON shop.orders USING btree "
                   "(total)");

  const TuskSchemaSequence *seq = tusk_schema_snapshot_get_sequences (s, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (seq[0].name, ==, "customers_id_seq");
  g_assert_cmpstr (seq[1].name, ==, "ticket_seq");

  const TuskSchemaEnum *en = tusk_schema_snapshot_get_enums (s, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpstr (en[0].schema, ==, "shop");
  g_assert_cmpstr (en[0].name, ==, "mood");
  g_assert_cmpuint (en[0].n_labels, ==, 3);
  g_assert_cmpstr (en[0].labels[0], ==, "sad");
  g_assert_cmpstr (en[0].labels[1], ==, "ok");
  g_assert_cmpstr (en[0].labels[2], ==, "happy");
}

static void
test_lookup (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSchemaSnapshot) s = load (f);

  /* Unqualified names resolve through the search_path, in its order. */
  const TuskSchemaRelation *shop_customers = find (s, "shop", "customers");
  const TuskSchemaRelation *audit_customers = find (s, "audit", "customers");
  g_assert_true (shop_customers != audit_customers);
  g_assert_true (tusk_schema_snapshot_find_relation (s, NULL, "customers")
                 == shop_customers);
  g_assert_true (tusk_schema_snapshot_find_relation (s, NULL, "events")
                 == find (s, "audit", "events"));
  g_assert_nonnull (tusk_schema_snapshot_find_relation (s, NULL, "MixedCase"));
  g_assert_null (tusk_schema_snapshot_find_relation (s, NULL, "mixedcase"));
  g_assert_null (tusk_schema_snapshot_find_relation (s, NULL, "nope"));
  g_assert_null (tusk_schema_snapshot_find_relation (s, "nope", "customers"));

  const TuskSchemaColumn *c
      = tusk_schema_relation_find_column (audit_customers, "at");
  g_assert_nonnull (c);
  g_assert_cmpstr (c->type_name, ==, "timestamp with time zone");
  g_assert_true (c->relation == audit_customers);
  g_assert_null (tusk_schema_relation_find_column (audit_customers, "name"));

  /* Lookups are hash lookups: far below a microsecond each. */
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < 10000; i++)
    g_assert_nonnull (tusk_schema_snapshot_find_relation (s, NULL, "events"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 100000);
}

static gboolean
has_candidate (GPtrArray *cands, TuskSchemaKind kind, const char *schema,
               const char *name)
{
  for (guint i = 0; i < cands->len; i++)
    {
      const TuskSchemaCandidate *c = cands->pdata[i];
      if (c->kind == kind && g_strcmp0 (c->schema, schema) == 0
          && strcmp (c->name, name) == 0)
        return TRUE;
    }
  return FALSE;
}

static void
test_complete (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSchemaSnapshot) s = load (f);

  g_autoptr (GPtrArray) cu
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ALL, "CU", 100);
  g_assert_true (
      has_candidate (cu, TUSK_SCHEMA_KIND_TABLE, "shop", "customers"));
  g_assert_true (
      has_candidate (cu, TUSK_SCHEMA_KIND_TABLE, "audit", "customers"));
  g_assert_true (
      has_candidate (cu, TUSK_SCHEMA_KIND_COLUMN, NULL, "customer_id"));
  g_assert_true (has_candidate (cu, TUSK_SCHEMA_KIND_INDEX, "shop",
                                "customers_email_key"));
  g_assert_true (has_candidate (cu, TUSK_SCHEMA_KIND_SEQUENCE, "shop",
                                "customers_id_seq"));
  g_assert_cmpuint (cu->len, ==, 6); /* and customers_pkey */
  for (guint i = 0; i < cu->len; i++)
    {
      const TuskSchemaCandidate *c = cu->pdata[i];
      g_assert_true (g_ascii_strncasecmp (c->name, "cu", 2) == 0);
      if (i > 0)
        {
          const TuskSchemaCandidate *p = cu->pdata[i - 1];
          g_assert_cmpint (g_ascii_strcasecmp (p->name, c->name), <=, 0);
        }
    }

  /* A column name shared by several relations is offered once. */
  g_autoptr (GPtrArray) id
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_COLUMN, "id", 100);
  g_assert_cmpuint (id->len, ==, 1);
  const TuskSchemaCandidate *idc = id->pdata[0];
  g_assert_cmpstr (idc->name, ==, "id");
  g_assert_null (idc->schema);

  /* Case-insensitive both ways; the name comes back as stored. */
  g_autoptr (GPtrArray) mixed
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_RELATIONS, "mixed", 10);
  g_assert_cmpuint (mixed->len, ==, 1);
  g_assert_cmpstr (((TuskSchemaCandidate *)mixed->pdata[0])->name, ==,
                   "MixedCase");

  /* The kind mask. */
  g_autoptr (GPtrArray) procs
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_PROCEDURE, "", 10);
  g_assert_cmpuint (procs->len, ==, 1);
  g_assert_cmpstr (((TuskSchemaCandidate *)procs->pdata[0])->name, ==,
                   "reset_scores");
  g_autoptr (GPtrArray) funcs
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_FUNCTION, "a", 10);
  g_assert_cmpuint (funcs->len, ==, 2);
  g_assert_cmpstr (((TuskSchemaCandidate *)funcs->pdata[0])->detail, ==,
                   "a integer, b integer");
  g_autoptr (GPtrArray) enums
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ENUM, "M", 10);
  g_assert_cmpuint (enums->len, ==, 1);
  g_autoptr (GPtrArray) schemas
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_SCHEMA, "", 10);
  g_assert_cmpuint (schemas->len, ==, 3);

  /* Qualified prefixes: that schema only; no schemas, no columns. */
  g_autoptr (GPtrArray) q
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ALL, "audit.", 100);
  g_assert_cmpuint (q->len, ==, 3); /* customers, events, events_pkey */
  g_assert_true (
      has_candidate (q, TUSK_SCHEMA_KIND_TABLE, "audit", "customers"));
  g_assert_true (
      has_candidate (q, TUSK_SCHEMA_KIND_INDEX, "audit", "events_pkey"));
  g_autoptr (GPtrArray) q2
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ALL, "Shop.Or", 100);
  /* order_counts, orders, orders_pkey, orders_total_idx */
  g_assert_cmpuint (q2->len, ==, 4);

  /* The cap. */
  g_autoptr (GPtrArray) all
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ALL, "", 1000);
  g_assert_cmpuint (all->len, >, 30);
  g_autoptr (GPtrArray) capped
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ALL, "", 5);
  g_assert_cmpuint (capped->len, ==, 5);
  for (guint i = 0; i < 5; i++)
    g_assert_true (capped->pdata[i] == all->pdata[i]);
  g_autoptr (GPtrArray) none
      = tusk_schema_complete (s, TUSK_SCHEMA_KIND_ALL, "zzz", 5);
  g_assert_cmpuint (none->len, ==, 0);

  /* One relation's columns. */
  const TuskSchemaRelation *customers = find (s, "shop", "customers");
  g_autoptr (GPtrArray) cols
      = tusk_schema_complete_columns (s, customers, "C", 10);
  g_assert_cmpuint (cols->len, ==, 1);
  g_assert_cmpstr (((TuskSchemaColumn *)cols->pdata[0])->name, ==,
                   "created_at");
  g_autoptr (GPtrArray) two
      = tusk_schema_complete_columns (s, customers, "", 2);
  g_assert_cmpuint (two->len, ==, 2);
  g_assert_cmpstr (((TuskSchemaColumn *)two->pdata[1])->name, ==, "name");
}

static void
test_ttl (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_schema_cache_set_ttl (f->cache, 300);
  g_autoptr (TuskSchemaSnapshot) first = load (f);
  g_assert_false (tusk_schema_cache_is_stale (f->cache));

  /* Fresh: ensure hands out the same snapshot without loading. */
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSchemaSnapshot) same
      = tusk_schema_cache_ensure_sync (f->cache, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same == first);

  db_exec ("CREATE TABLE shop.ttl_late (x int)");
  g_usleep (400 * 1000);
  g_assert_true (tusk_schema_cache_is_stale (f->cache));

  g_autoptr (TuskSchemaSnapshot) second
      = tusk_schema_cache_ensure_sync (f->cache, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (second != first);
  g_assert_false (tusk_schema_cache_is_stale (f->cache));
  g_assert_nonnull (
      tusk_schema_snapshot_find_relation (second, "shop", "ttl_late"));
  /* The old snapshot is immutable. */
  g_assert_null (
      tusk_schema_snapshot_find_relation (first, "shop", "ttl_late"));
  g_assert_cmpint (tusk_schema_snapshot_get_cached_at (second), >,
                   tusk_schema_snapshot_get_cached_at (first));

  /* TTL 0: always stale. */
  tusk_schema_cache_set_ttl (f->cache, 0);
  g_assert_true (tusk_schema_cache_is_stale (f->cache));
  db_exec ("DROP TABLE shop.ttl_late");
}

static void
test_invalidate (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskSchemaSnapshot) first = load (f);
  g_assert_false (tusk_schema_cache_is_stale (f->cache));

  db_exec ("CREATE TABLE audit.invalidated (x int)");
  tusk_schema_cache_invalidate (f->cache);
  g_assert_true (tusk_schema_cache_is_stale (f->cache));

  /* The stale snapshot stays readable meanwhile. */
  g_autoptr (TuskSchemaSnapshot) stale
      = tusk_schema_cache_dup_snapshot (f->cache);
  g_assert_true (stale == first);

  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSchemaSnapshot) second
      = tusk_schema_cache_ensure_sync (f->cache, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (
      tusk_schema_snapshot_find_relation (second, "audit", "invalidated"));
  g_assert_false (tusk_schema_cache_is_stale (f->cache));
  db_exec ("DROP TABLE audit.invalidated");

  /* A failed load keeps the current snapshot. */
  tusk_pool_close (f->pool);
  tusk_schema_cache_invalidate (f->cache);
  g_assert_null (tusk_schema_cache_load_sync (f->cache, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_autoptr (TuskSchemaSnapshot) kept
      = tusk_schema_cache_dup_snapshot (f->cache);
  g_assert_true (kept == second);
}

typedef struct
{
  gboolean done;
  GThread *thread;
  TuskSchemaSnapshot *snapshot;
  GError *error;
  TuskSchemaCache *cache;
  gboolean ensure;
} AsyncResult;

static void
on_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  AsyncResult *r = user_data;
  r->thread = g_thread_self ();
  r->snapshot
      = r->ensure
            ? tusk_schema_cache_ensure_finish (r->cache, result, &r->error)
            : tusk_schema_cache_load_finish (r->cache, result, &r->error);
  r->done = TRUE;
}

static void
test_async (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskRuntime *runtime = tusk_runtime_new (2);

  /* ensure on an empty cache loads on a worker, delivers here. */
  AsyncResult r = { .cache = f->cache, .ensure = TRUE };
  tusk_schema_cache_ensure_async (f->cache, runtime, NULL, on_loaded, &r);
  g_assert_false (r.done);
  tusk_test_wait_for (&r.done, 10000);
  g_assert_no_error (r.error);
  g_assert_true (r.thread == g_thread_self ());
  g_assert_nonnull (r.snapshot);
  g_autoptr (TuskSchemaSnapshot) current
      = tusk_schema_cache_dup_snapshot (f->cache);
  g_assert_true (current == r.snapshot);

  /* Fresh: no trip through the runtime, still never inside the call. */
  AsyncResult again = { .cache = f->cache, .ensure = TRUE };
  tusk_schema_cache_ensure_async (f->cache, runtime, NULL, on_loaded, &again);
  g_assert_false (again.done);
  tusk_test_wait_for (&again.done, 10000);
  g_assert_true (again.snapshot == r.snapshot);

  /* load always loads. */
  AsyncResult fresh = { .cache = f->cache };
  tusk_schema_cache_load_async (f->cache, runtime, NULL, on_loaded, &fresh);
  tusk_test_wait_for (&fresh.done, 10000);
  g_assert_no_error (fresh.error);
  g_assert_true (fresh.snapshot != r.snapshot);

  /* Cancelled before it starts. */
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  AsyncResult cancelled = { .cache = f->cache };
  tusk_schema_cache_load_async (f->cache, runtime, cancellable, on_loaded,
                                &cancelled);
  tusk_test_wait_for (&cancelled.done, 10000);
  tusk_assert_error (cancelled.error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_null (cancelled.snapshot);

  /* The caller may drop the cache while a background load runs. */
  TuskSchemaCache *dropped = tusk_schema_cache_new (f->pool);
  tusk_schema_cache_load_async (dropped, runtime, NULL, NULL, NULL);
  tusk_schema_cache_unref (dropped);

  tusk_runtime_free (runtime);
  tusk_schema_snapshot_unref (r.snapshot);
  tusk_schema_snapshot_unref (again.snapshot);
  tusk_schema_snapshot_unref (fresh.snapshot);
  g_clear_error (&cancelled.error);
  /* Let the NULL-callback task's completion run. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_cancel_sync (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_schema_cache_load_sync (f->cache, cancellable, &error));
  tusk_assert_error (error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_null (tusk_schema_cache_dup_snapshot (f->cache));
  g_assert_true (tusk_schema_cache_is_stale (f->cache));
}

static void
test_ddl_tag (void)
{
  static const struct
  {
    const char *tag;
    gboolean ddl;
  } cases[] = {
    { "CREATE TABLE", TRUE },
    { "CREATE INDEX", TRUE },
    { "CREATE VIEW", TRUE },
    { "CREATE MATERIALIZED VIEW", TRUE },
    { "CREATE FUNCTION", TRUE },
    { "CREATE PROCEDURE", TRUE },
    { "CREATE SCHEMA", TRUE },
    { "CREATE TYPE", TRUE },
    { "CREATE SEQUENCE", TRUE },
    { "CREATE EXTENSION", TRUE },
    { "ALTER TABLE", TRUE },
    { "ALTER TYPE", TRUE },
    { "DROP TABLE", TRUE },
    { "DROP SCHEMA", TRUE },
    { "DROP FUNCTION", TRUE },
    { "IMPORT FOREIGN SCHEMA", TRUE },
    { "DO", TRUE },
    { "create table", TRUE },
    { "CREATE ROLE", FALSE },
    { "ALTER ROLE", FALSE },
    { "DROP USER", FALSE },
    { "CREATE DATABASE", FALSE },
    { "DROP TABLESPACE", FALSE },
    { "ALTER SYSTEM", FALSE },
    { "SELECT 3", FALSE },
    { "INSERT 0 1", FALSE },
    { "UPDATE 2", FALSE },
    { "DELETE 0", FALSE },
    { "TRUNCATE TABLE", FALSE },
    { "COMMIT", FALSE },
    { "SET", FALSE },
    { "CREATED", FALSE },
    { "DOING", FALSE },
    { "", FALSE },
    { NULL, FALSE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    if (tusk_schema_is_ddl_tag (cases[i].tag) != cases[i].ddl)
      g_error ("tusk_schema_is_ddl_tag (\"%s\") should be %s", cases[i].tag,
               cases[i].ddl ? "TRUE" : "FALSE");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_log_set_filter ("warn", NULL);

  test_db = g_strdup_printf ("tusk_schema_test_%d", (int)getpid ());
  PGconn *admin = admin_connect (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *drop
      = g_strdup_printf ("DROP DATABASE IF EXISTS %s", test_db);
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", test_db);
  admin_exec (admin, "SET client_min_messages = warning");
  admin_exec (admin, drop);
  admin_exec (admin, create);
  db_exec (fixture_sql);
  g_autofree char *path = g_strdup_printf (
      "ALTER DATABASE %s SET search_path = shop, audit, public", test_db);
  admin_exec (admin, path);

#define ADD(name, func)                                                        \
  g_test_add ("/tusk/schema/" name, Fixture, NULL, fixture_set_up, func,       \
              fixture_tear_down)
  ADD ("load", test_load);
  ADD ("lookup", test_lookup);
  ADD ("complete", test_complete);
  ADD ("ttl", test_ttl);
  ADD ("invalidate", test_invalidate);
  ADD ("async", test_async);
  ADD ("cancel", test_cancel_sync);
#undef ADD
  g_test_add_func ("/tusk/schema/ddl-tag", test_ddl_tag);

  int status = g_test_run ();

  g_autofree char *drop_forced
      = g_strdup_printf ("DROP DATABASE IF EXISTS %s WITH (FORCE)", test_db);
  admin_exec (admin, drop_forced);
  PQfinish (admin);
  g_free (test_db);
  return status;
}
