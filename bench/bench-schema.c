/* bench-schema.c: the schema-cache numbers of issue 9 (item 10), each
 * printed with its target and PASS or MISS: loading 10,000 tables with
 * 100,000 columns (< 1 s), and completion lookups on that snapshot
 * (< 1 ms each, median and max), beside the plain hash lookup of a table.
 *
 * Runs in a scratch database of the test environment's server, created
 * with one DO block (committing every 250 tables, so the lock table never
 * fills) and dropped at the end.  Exit status 1 when a figure misses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "tusk.h"

#define N_TABLES  10000
#define N_SCHEMAS 20
#define N_LOADS   5
#define N_LOOKUPS 20000

static int misses = 0;

static void
report (const char *what, double figure, const char *unit, double target)
{
  gboolean pass = figure < target;
  printf ("%-44s %10.3f %-3s (target < %g %s)  %s\n", what, figure, unit,
          target, unit, pass ? "PASS" : "MISS");
  if (!pass)
    misses++;
}

static void
note (const char *what, double figure, const char *unit)
{
  printf ("%-44s %10.3f %s\n", what, figure, unit);
}

static const char *
env (const char *name)
{
  const char *value = g_getenv (name);
  if (value == NULL || *value == '\0')
    g_error ("%s is not set: run through scripts/test-env.sh (make bench)",
             name);
  return value;
}

static PGconn *
admin_connect (const char *dbname)
{
  const char *keys[] = { "host", "port", "user", "dbname", NULL };
  const char *values[] = { env ("TUSK_TEST_PGHOST"), env ("TUSK_TEST_PGPORT"),
                           env ("TUSK_TEST_PGUSER_TRUST"), dbname, NULL };
  PGconn *pg = PQconnectdbParams (keys, values, 0);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect to %s: %s", dbname, PQerrorMessage (pg));
  return pg;
}

static void
exec_or_die (PGconn *pg, const char *sql)
{
  PGresult *res = PQexec (pg, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK
      && PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("%.60s…: %s", sql, PQerrorMessage (pg));
  PQclear (res);
}

/* 20 schemas of 500 tables, 10 columns each (a primary key, NOT NULLs,
 * defaults, a spread of types), names drawn from a few words so that
 * prefixes match many objects, as in a real catalog. */
static const char populate_sql[]
    = "DO $$\n"
      "DECLARE\n"
      "  words text[] := ARRAY['customer', 'order', 'invoice', 'product',\n"
      "    'event', 'account', 'payment', 'shipment', 'user', 'session'];\n"
      "BEGIN\n"
      "  FOR s IN 0..%d LOOP\n"
      "    EXECUTE format('CREATE SCHEMA app_%%s', s);\n"
      "  END LOOP;\n"
      "  FOR i IN 0..%d LOOP\n"
      "    EXECUTE format('CREATE TABLE app_%%s.%%s_%%s ('\n"
      "      'id bigint PRIMARY KEY, name text NOT NULL,'\n"
      "      ' created_at timestamptz NOT NULL DEFAULT now(),'\n"
      "      ' amount numeric(12,2) DEFAULT 0, active boolean,'\n"
      "      ' code varchar(40), %%s_ref integer, payload jsonb,'\n"
      "      ' tags text[], due date)',\n"
      "      i %% %d, words[1 + i %% 10], i, words[1 + (i / 10) %% 10]);\n"
      "    IF i %% 250 = 249 THEN COMMIT; END IF;\n"
      "  END LOOP;\n"
      "END $$";

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int
main (void)
{
  tusk_log_set_filter ("warn", NULL);
  g_autofree char *db
      = g_strdup_printf ("tusk_schema_bench_%d", (int)getpid ());

  /* Setup. */
  gint64 t0 = g_get_monotonic_time ();
  PGconn *admin = admin_connect (env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", db);
  exec_or_die (admin, create);
  PGconn *pg = admin_connect (db);
  g_autofree char *populate
      = g_strdup_printf (populate_sql, N_SCHEMAS - 1, N_TABLES - 1, N_SCHEMAS);
  exec_or_die (pg, populate);
  exec_or_die (pg, "ANALYZE");
  PQfinish (pg);
  printf ("setup: %d tables, %d columns in %d schemas in %.1f s\n", N_TABLES,
          N_TABLES * 10, N_SCHEMAS, (g_get_monotonic_time () - t0) / 1e6);

  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("schema bench");
  config->host = g_strdup (env ("TUSK_TEST_PGHOST"));
  config->port = atoi (env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (db);
  config->username = g_strdup (env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  if (pool == NULL)
    g_error ("pool: %s", error->message);
  TuskSchemaCache *cache = tusk_schema_cache_new (pool);

  /* Load: one warm-up, then N_LOADS timed. */
  double loads[N_LOADS], cold = 0;
  TuskSchemaSnapshot *snapshot = NULL;
  for (int i = -1; i < N_LOADS; i++)
    {
      tusk_schema_snapshot_unref (snapshot);
      gint64 start = g_get_monotonic_time ();
      snapshot = tusk_schema_cache_load_sync (cache, NULL, &error);
      if (snapshot == NULL)
        g_error ("load: %s", error->message);
      double ms = (g_get_monotonic_time () - start) / 1000.0;
      if (i >= 0)
        loads[i] = ms;
      else
        cold = ms;
    }
  qsort (loads, N_LOADS, sizeof (double), cmp_double);
  guint n_rel = 0, n_col = 0, n_idx = 0;
  const TuskSchemaRelation *rels
      = tusk_schema_snapshot_get_relations (snapshot, &n_rel);
  for (guint i = 0; i < n_rel; i++)
    n_col += rels[i].n_columns;
  tusk_schema_snapshot_get_indexes (snapshot, &n_idx);
  printf ("snapshot: %u relations, %u columns, %u indexes\n", n_rel, n_col,
          n_idx);
  if (n_rel != N_TABLES || n_col != N_TABLES * 10)
    g_error ("the snapshot does not hold the scratch catalog");
  report ("load 10,000 tables / 100,000 columns (median)", loads[N_LOADS / 2],
          "ms", 1000);
  note ("  first load on a new connection (cold)", cold, "ms");
  note ("  min", loads[0], "ms");
  note ("  max", loads[N_LOADS - 1], "ms");

  /* Completion: prefixes of 0-4 characters of real names, all kinds,
   * limit 50 (a popup's worth), and some qualified ones. */
  GRand *rand = g_rand_new_with_seed (42);
  double *lat = g_new (double, N_LOOKUPS);
  guint total = 0;
  for (int i = 0; i < N_LOOKUPS; i++)
    {
      const TuskSchemaRelation *r = &rels[g_rand_int_range (rand, 0, n_rel)];
      int len = g_rand_int_range (rand, 0, 5);
      g_autofree char *prefix
          = (i % 4 == 3) ? g_strdup_printf ("%s.%.*s", r->schema, len, r->name)
                         : g_strndup (r->name, len);
      gint64 start = g_get_monotonic_time ();
      GPtrArray *cands
          = tusk_schema_complete (snapshot, TUSK_SCHEMA_KIND_ALL, prefix, 50);
      lat[i] = (double)(g_get_monotonic_time () - start);
      total += cands->len;
      g_ptr_array_unref (cands);
    }
  qsort (lat, N_LOOKUPS, sizeof (double), cmp_double);
  report ("completion, limit 50 (median)", lat[N_LOOKUPS / 2] / 1000.0, "ms",
          1);
  report ("completion, limit 50 (max)", lat[N_LOOKUPS - 1] / 1000.0, "ms", 1);
  note ("  p99", lat[N_LOOKUPS * 99 / 100] / 1000.0, "ms");
  note ("  mean candidates", (double)total / N_LOOKUPS, "");

  /* The worst case for the cap: an empty prefix over everything. */
  gint64 start = g_get_monotonic_time ();
  GPtrArray *all
      = tusk_schema_complete (snapshot, TUSK_SCHEMA_KIND_ALL, "", 50);
  report ("completion of \"\" over everything, limit 50",
          (g_get_monotonic_time () - start) / 1000.0, "ms", 1);
  g_ptr_array_unref (all);

  /* Table lookup through the search_path. */
  start = g_get_monotonic_time ();
  for (int i = 0; i < N_LOOKUPS; i++)
    {
      const TuskSchemaRelation *r = &rels[g_rand_int_range (rand, 0, n_rel)];
      if (tusk_schema_snapshot_find_relation (snapshot, r->schema, r->name)
          != r)
        g_error ("lookup failed");
    }
  note ("find_relation (schema, name), mean",
        (g_get_monotonic_time () - start) / 1000.0 / N_LOOKUPS, "ms");

  g_free (lat);
  g_rand_free (rand);
  tusk_schema_snapshot_unref (snapshot);
  tusk_schema_cache_unref (cache);
  tusk_pool_unref (pool);

  g_autofree char *drop = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", db);
  exec_or_die (admin, drop);
  PQfinish (admin);
  return misses > 0 ? 1 : 0;
}
