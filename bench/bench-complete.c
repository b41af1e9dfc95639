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
 * Runs on bench-catalog.h's scratch catalog.  Exit status 1 when a figure
 * misses. */
#include "bench-catalog.h"
#include "tusk-complete.h"

#define N_RUNS    2000
#define TARGET_MS 50.0

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
  qsort (lat, buffers->len, sizeof (double), bench_compare_double);
  g_autofree char *median = g_strdup_printf ("%s (median)", what);
  g_autofree char *max = g_strdup_printf ("%s (max)", what);
  bench_check ("complete", median, lat[buffers->len / 2], "ms", TARGET_MS);
  bench_check ("complete", max, lat[buffers->len - 1], "ms", TARGET_MS);
  bench_note ("  mean candidates", (double)total / buffers->len, "");
  g_free (lat);
}

int
main (void)
{
  tusk_log_set_filter ("warn", NULL);
  BenchCatalog catalog
      = bench_catalog_create ("tusk_complete_bench", "app_0, public");
  g_autoptr (GError) error = NULL;
  TuskPool *pool = bench_catalog_pool (&catalog, "complete bench");
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
  if (n_rel != BENCH_CATALOG_TABLES || n_col != BENCH_CATALOG_TABLES * 10)
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
  bench_note ("baseline: tusk_schema_complete, 1,000, mean",
              (g_get_monotonic_time () - start) / 1000.0 / N_RUNS, "ms");

  g_rand_free (rand);
  tusk_schema_snapshot_unref (snapshot);
  tusk_schema_cache_unref (cache);
  tusk_pool_unref (pool);

  bench_catalog_drop (&catalog);
  return bench_exit_status ();
}
