/* bench-complete.c: the shell's tab completion (shell/tusk-complete.c) on
 * a catalog of 10,000 tables with 100,000 columns (issue 8: an answer
 * within 50 ms).  Measures the median and the maximum latency of
 * tusk_complete() for three cases — a table after FROM, a column in the
 * SELECT list of a query on one table, and alias.column with the alias
 * resolved from the FROM clause — plus the worst cases for the 1,000 cap
 * (an empty word where every table or every column name matches), each
 * printed with its target and PASS or MISS, beside the raw
 * tusk_schema_complete() lookup it is built on.
 *
 * Runs in a scratch database of the test environment's server, populated
 * as bench-schema.c does it (one DO block, committing every 250 tables)
 * and dropped at the end.  Exit status 1 when a figure misses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "tusk.h"
#include "tusk-complete.h"

#define N_TABLES  10000
#define N_SCHEMAS 20
#define N_RUNS    2000
#define TARGET_MS 50.0

static int misses = 0;

static void
report (const char *what, double figure, const char *unit, double target)
{
  gboolean pass = figure < target;
  printf ("%-48s %10.3f %-3s (target < %g %s)  %s\n", what, figure, unit,
          target, unit, pass ? "PASS" : "MISS");
  if (!pass)
    misses++;
}

static void
note (const char *what, double figure, const char *unit)
{
  printf ("%-48s %10.3f %s\n", what, figure, unit);
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

/* The catalog of bench-schema.c: 20 schemas of 500 tables, 10 columns
 * each, names drawn from a few words so that prefixes match many objects.
 * app_0 is put on the search_path so that some tables complete
 * unqualified and the rest schema-qualified. */
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

/* Times tusk_complete() on each buffer (cursor at its '|', else its end);
 * prints median and max against the target, and the mean candidates. */
static void
measure (const char *what, TuskSchemaSnapshot *snapshot, GPtrArray *buffers)
{
  double *lat = g_new (double, buffers->len);
  guint64 total = 0;
  for (guint i = 0; i < buffers->len; i++)
    {
      const char *text = buffers->pdata[i];
      const char *bar = strchr (text, '|');
      g_autofree char *buffer
          = bar == NULL
                ? g_strdup (text)
                : g_strdup_printf ("%.*s%s", (int)(bar - text), text, bar + 1);
      gsize cursor = bar == NULL ? strlen (text) : (gsize)(bar - text);
      gsize start;
      gint64 t0 = g_get_monotonic_time ();
      char **cands = tusk_complete (snapshot, buffer, cursor, &start);
      lat[i] = (g_get_monotonic_time () - t0) / 1000.0;
      total += g_strv_length (cands);
      g_strfreev (cands);
    }
  qsort (lat, buffers->len, sizeof (double), cmp_double);
  g_autofree char *median = g_strdup_printf ("%s (median)", what);
  g_autofree char *max = g_strdup_printf ("%s (max)", what);
  report (median, lat[buffers->len / 2], "ms", TARGET_MS);
  report (max, lat[buffers->len - 1], "ms", TARGET_MS);
  note ("  mean candidates", (double)total / buffers->len, "");
  g_free (lat);
}

int
main (void)
{
  tusk_log_set_filter ("warn", NULL);
  g_autofree char *db
      = g_strdup_printf ("tusk_complete_bench_%d", (int)getpid ());

  /* Setup. */
  gint64 t0 = g_get_monotonic_time ();
  PGconn *admin = admin_connect (env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", db);
  exec_or_die (admin, create);
  PGconn *pg = admin_connect (db);
  g_autofree char *populate
      = g_strdup_printf (populate_sql, N_SCHEMAS - 1, N_TABLES - 1, N_SCHEMAS);
  exec_or_die (pg, populate);
  g_autofree char *path = g_strdup_printf (
      "ALTER DATABASE %s SET search_path = app_0, public", db);
  exec_or_die (pg, path);
  PQfinish (pg);
  printf ("setup: %d tables, %d columns in %d schemas in %.1f s\n", N_TABLES,
          N_TABLES * 10, N_SCHEMAS, (g_get_monotonic_time () - t0) / 1e6);

  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("complete bench");
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
  TuskSchemaSnapshot *snapshot
      = tusk_schema_cache_load_sync (cache, NULL, &error);
  if (snapshot == NULL)
    g_error ("load: %s", error->message);
  guint n_rel = 0, n_col = 0;
  const TuskSchemaRelation *rels
      = tusk_schema_snapshot_get_relations (snapshot, &n_rel);
  for (guint i = 0; i < n_rel; i++)
    n_col += rels[i].n_columns;
  printf ("snapshot: %u relations, %u columns\n", n_rel, n_col);
  if (n_rel != N_TABLES || n_col != N_TABLES * 10)
    g_error ("the snapshot does not hold the scratch catalog");

  GRand *rand = g_rand_new_with_seed (8);
  g_autoptr (GPtrArray) tables = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) columns = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) aliased = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; i < N_RUNS; i++)
    {
      const TuskSchemaRelation *r = &rels[g_rand_int_range (rand, 0, n_rel)];
      const TuskSchemaRelation *r2 = &rels[g_rand_int_range (rand, 0, n_rel)];
      const TuskSchemaColumn *c
          = &r->columns[g_rand_int_range (rand, 0, (int)r->n_columns)];
      int len = g_rand_int_range (rand, 0, 5);
      /* FROM: a table's first letters, every fourth one qualified. */
      g_ptr_array_add (
          tables, i % 4 == 3
                      ? g_strdup_printf ("SELECT * FROM %s.%.*s", r->schema,
                                         len, r->name)
                      : g_strdup_printf ("SELECT * FROM %.*s", len, r->name));
      /* The SELECT list of a two-table query, the FROM after the cursor. */
      g_ptr_array_add (columns,
                       g_strdup_printf ("SELECT id, %.*s| FROM %s.%s JOIN "
                                        "%s.%s USING (id) WHERE id > 10",
                                        len, c->name, r->schema, r->name,
                                        r2->schema, r2->name));
      /* alias.column, the alias defined after the cursor. */
      g_ptr_array_add (aliased,
                       g_strdup_printf ("SELECT x.id FROM %s.%s x JOIN %s.%s "
                                        "y ON y.%.*s",
                                        r->schema, r->name, r2->schema,
                                        r2->name, len, c->name));
    }
  measure ("table after FROM", snapshot, tables);
  measure ("column in the SELECT list", snapshot, columns);
  measure ("alias.column", snapshot, aliased);

  /* The cap's worst cases: every relation, every column name, matches. */
  g_autoptr (GPtrArray) worst = g_ptr_array_new_with_free_func (g_free);
  for (int i = 0; i < 50; i++)
    {
      g_ptr_array_add (worst, g_strdup ("SELECT * FROM "));
      g_ptr_array_add (worst, g_strdup ("SELECT "));
      g_ptr_array_add (worst, g_strdup ("SELECT * FROM app_7."));
    }
  measure ("empty word, 1,000 candidates", snapshot, worst);

  /* The lookup it is built on, for scale. */
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < N_RUNS; i++)
    {
      GPtrArray *c = tusk_schema_complete (
          snapshot, TUSK_SCHEMA_KIND_RELATIONS | TUSK_SCHEMA_KIND_SCHEMA, "",
          1000);
      g_ptr_array_unref (c);
    }
  note ("baseline: tusk_schema_complete, 1,000, mean",
        (g_get_monotonic_time () - start) / 1000.0 / N_RUNS, "ms");

  g_rand_free (rand);
  tusk_schema_snapshot_unref (snapshot);
  tusk_schema_cache_unref (cache);
  tusk_pool_unref (pool);

  g_autofree char *drop = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", db);
  exec_or_die (admin, drop);
  PQfinish (admin);
  return misses > 0 ? 1 : 0;
}
