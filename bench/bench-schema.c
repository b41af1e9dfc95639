/* bench-schema.c: the schema-cache numbers of issue 9 (item 10), each
 * printed with its target and PASS or MISS: loading 10,000 tables with
 * 100,000 columns (< 1 s), and completion lookups on that snapshot
 * (< 1 ms each, median and max), beside the plain hash lookup of a table.
 *
 * Runs on bench-catalog.h's scratch catalog.  Exit status 1 when a figure
 * misses. */
#include "bench-catalog.h"

#define N_LOADS   5
#define N_LOOKUPS 20000

int
main (void)
{
  tusk_log_set_filter ("warn", NULL);
  BenchCatalog catalog = bench_catalog_create ("tusk_schema_bench", NULL);
  g_autoptr (GError) error = NULL;
  TuskPool *pool = bench_catalog_pool (&catalog, "schema bench");
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
  qsort (loads, N_LOADS, sizeof (double), bench_compare_double);
  guint n_rel = 0, n_col = 0, n_idx = 0;
  const TuskSchemaRelation *rels
      = tusk_schema_snapshot_get_relations (snapshot, &n_rel);
  for (guint i = 0; i < n_rel; i++)
    n_col += rels[i].n_columns;
  tusk_schema_snapshot_get_indexes (snapshot, &n_idx);
  printf ("snapshot: %u relations, %u columns, %u indexes\n", n_rel, n_col,
          n_idx);
  if (n_rel != BENCH_CATALOG_TABLES || n_col != BENCH_CATALOG_TABLES * 10)
    g_error ("the snapshot does not hold the scratch catalog");
  bench_check ("schema", "load 10,000 tables / 100,000 columns (median)",
               loads[N_LOADS / 2], "ms", 1000);
  bench_note ("  first load on a new connection (cold)", cold, "ms");
  bench_note ("  min", loads[0], "ms");
  bench_note ("  max", loads[N_LOADS - 1], "ms");

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
  qsort (lat, N_LOOKUPS, sizeof (double), bench_compare_double);
  bench_check ("schema", "completion, limit 50 (median)",
               lat[N_LOOKUPS / 2] / 1000.0, "ms", 1);
  bench_check ("schema", "completion, limit 50 (max)",
               lat[N_LOOKUPS - 1] / 1000.0, "ms", 1);
  bench_note ("  p99", lat[N_LOOKUPS * 99 / 100] / 1000.0, "ms");
  bench_note ("  mean candidates", (double)total / N_LOOKUPS, "");

  /* The worst case for the cap: an empty prefix over everything. */
  gint64 start = g_get_monotonic_time ();
  GPtrArray *all
      = tusk_schema_complete (snapshot, TUSK_SCHEMA_KIND_ALL, "", 50);
  bench_check ("schema", "completion of \"\" over everything, limit 50",
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
  bench_note ("find_relation (schema, name), mean",
              (g_get_monotonic_time () - start) / 1000.0 / N_LOOKUPS, "ms");

  g_free (lat);
  g_rand_free (rand);
  tusk_schema_snapshot_unref (snapshot);
  tusk_schema_cache_unref (cache);
  tusk_pool_unref (pool);

  bench_catalog_drop (&catalog);
  return bench_exit_status ();
}
