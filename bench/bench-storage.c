/* bench-storage.c: the storage numbers of issue 3, each printed with its
 * target and PASS or MISS: open + load 100 connections, load 10,000
 * history entries, search 100,000, single CRUD operations, the caller's
 * cost of adding a history entry, and the file size with 50,000 history
 * entries, 500 saved queries and 100 connections.
 *
 * Runs in a temporary data directory, removed at the end.  Exit status 1
 * when any figure misses its target. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "tusk.h"
#include "tusk-storage-private.h"

static int misses = 0;

static void
report (const char *what, double figure, const char *unit, double target)
{
  gboolean pass = figure < target;
  printf ("%-44s %10.2f %-3s (target < %g %s)  %s\n", what, figure, unit,
          target, unit, pass ? "PASS" : "MISS");
  if (!pass)
    misses++;
}

static double
ms_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000.0;
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_remove (child);
    }
  g_rmdir (path);
}

static TuskStorage *
open_or_die (const char *dir)
{
  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  if (storage == NULL)
    g_error ("open: %s", error->message);
  return storage;
}

static char *
make_dir (const char *root, const char *name)
{
  char *dir = g_build_filename (root, name, NULL);
  g_mkdir (dir, 0700);
  return dir;
}

static TuskConnectionConfig *
make_connection (int i)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup_printf ("Connection %03d", i);
  config->host = g_strdup_printf ("db%03d.internal.example.com", i);
  config->database = g_strdup ("app");
  config->username = g_strdup ("app_reader");
  config->color = g_strdup ("#3b82f6");
  return config;
}

static void
save_connections (TuskStorage *storage, int n, GPtrArray *ids)
{
  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskConnectionConfig) config = make_connection (i);
      if (!tusk_connection_repo_save (storage, config, &error))
        g_error ("save: %s", error->message);
      if (ids != NULL)
        g_ptr_array_add (ids, g_strdup (config->id));
    }
}

/* A plausible statement of 60-400 bytes. */
static char *
make_sql (GRand *rand, int i)
{
  static const char *const templates[] = {
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = "
    "o.customer_id WHERE o.created_at > now() - interval '%d days' ORDER BY "
    "o.total DESC LIMIT 50",
    "UPDATE accounts SET balance = balance - %d WHERE id = 42",
    "SELECT count(*) FROM events WHERE kind = 'click' AND user_id = %d",
    "INSERT INTO audit_log (actor, action, payload) VALUES ('bench', "
    "'update', '{\"n\": %d, \"note\": \"a longer payload to vary the row "
    "size a little, as real statements do\"}')",
    "WITH recent AS (SELECT * FROM sessions WHERE started_at > now() - "
    "interval '1 hour') SELECT user_id, count(*) FROM recent GROUP BY 1 "
    "HAVING count(*) > %d",
  };
  const char *t
      = templates[g_rand_int_range (rand, 0, G_N_ELEMENTS (templates))];
  return g_strdup_printf (t, i);
}

/* Adds @n history entries through the queue and waits for them. */
static void
add_history (TuskStorage *storage, GPtrArray *connection_ids, int n,
             GRand *rand)
{
  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *sql = make_sql (rand, i);
      g_autoptr (TuskHistoryEntry) entry = tusk_history_entry_new (
          connection_ids->pdata[i % connection_ids->len], sql);
      entry->execution_time_ms = g_rand_int_range (rand, 0, 5000);
      entry->row_count = g_rand_int_range (rand, 0, 100000);
      if (!tusk_history_repo_add (storage, entry, &error))
        g_error ("add: %s", error->message);
    }
  tusk_storage_flush (storage);
}

static void
bench_open_and_load (const char *root)
{
  g_autofree char *dir = make_dir (root, "connections");
  TuskStorage *storage = open_or_die (dir);
  save_connections (storage, 100, NULL);
  tusk_storage_close (storage);

  gint64 start = g_get_monotonic_time ();
  storage = open_or_die (dir);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) all = tusk_connection_repo_load_all (storage, &error);
  double ms = ms_since (start);
  g_assert (all != NULL && all->len == 100);
  tusk_storage_close (storage);
  report ("open + load 100 connections", ms, "ms", 50);
}

static gint
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void
bench_history (const char *root, GRand *rand)
{
  g_autofree char *dir = make_dir (root, "history");
  TuskStorage *storage = open_or_die (dir);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  save_connections (storage, 10, ids);
  tusk_history_repo_set_limit (storage, 0, &error);

  /* The caller's cost of an add: the queue, not the write. */
  const int n_adds = 10000;
  g_autoptr (GArray) costs
      = g_array_sized_new (FALSE, FALSE, sizeof (double), n_adds);
  g_autofree char *sql = make_sql (rand, 1);
  for (int i = 0; i < n_adds; i++)
    {
      g_autoptr (TuskHistoryEntry) entry
          = tusk_history_entry_new (ids->pdata[i % ids->len], sql);
      gint64 start = g_get_monotonic_time ();
      tusk_history_repo_add (storage, entry, NULL);
      double us = (double)(g_get_monotonic_time () - start);
      g_array_append_val (costs, us);
    }
  gint64 drain = g_get_monotonic_time ();
  tusk_storage_flush (storage);
  double drain_ms = ms_since (drain);
  double total = 0;
  for (guint i = 0; i < costs->len; i++)
    total += g_array_index (costs, double, i);
  g_array_sort (costs, compare_doubles);
  report ("history add, caller cost (mean of 10,000)", total / n_adds, "us",
          50);
  printf ("%-44s %10.2f us\n", "  99th percentile",
          g_array_index (costs, double, n_adds * 99 / 100));
  printf ("%-44s %10.2f ms (writer drained the rest after the last add)\n",
          "  writer backlog", drain_ms);

  add_history (storage, ids, 90000, rand);
  g_assert (tusk_history_repo_count (storage, NULL, NULL) == 100000);

  gint64 start = g_get_monotonic_time ();
  g_autoptr (GPtrArray) page
      = tusk_history_repo_list (storage, NULL, 10000, 0, &error);
  double ms = ms_since (start);
  g_assert (page != NULL && page->len == 10000);
  report ("load 10,000 history entries", ms, "ms", 50);

  /* A rare term: the search scans every entry. */
  start = g_get_monotonic_time ();
  g_autoptr (GPtrArray) found = tusk_history_repo_search (
      storage, "BALANCE - 4242 ", NULL, 100, 0, &error);
  ms = ms_since (start);
  g_assert (found != NULL);
  report ("search 100,000 history entries", ms, "ms", 50);

  tusk_storage_close (storage);
}

static void
bench_crud (const char *root)
{
  g_autofree char *dir = make_dir (root, "crud");
  TuskStorage *storage = open_or_die (dir);
  g_autoptr (GError) error = NULL;
  save_connections (storage, 100, NULL);

  double worst = 0, total = 0;
  const int rounds = 200;
  for (int i = 0; i < rounds; i++)
    {
      g_autoptr (TuskConnectionConfig) config = make_connection (1000 + i);
      g_autoptr (TuskSavedQuery) query = tusk_saved_query_new ("q", "SELECT 1");
      query->folder_path = g_strdup ("bench/crud");
      g_autofree char *key = g_strdup_printf ("bench.%d", i);
      double t[7];
      gint64 start;

#define TIME(slot, expr)                                                       \
  start = g_get_monotonic_time ();                                             \
  if (!(expr))                                                                 \
    g_error ("%s failed", #expr);                                              \
  t[slot] = ms_since (start)

      TIME (0, tusk_connection_repo_save (storage, config, &error));
      TuskConnectionConfig *loaded;
      TIME (1,
            (loaded = tusk_connection_repo_load (storage, config->id, &error)));
      tusk_connection_config_free (loaded);
      TIME (2, tusk_connection_repo_touch (storage, config->id, &error));
      TIME (3, tusk_saved_query_repo_create (storage, query, &error));
      TIME (4, tusk_saved_query_repo_delete (storage, query->id, &error));
      TIME (5,
            tusk_ui_state_repo_set (storage, key, "{\"open\":true}", &error));
      TIME (6, tusk_connection_repo_delete (storage, config->id, &error));
#undef TIME
      for (int k = 0; k < 7; k++)
        {
          worst = MAX (worst, t[k]);
          total += t[k];
        }
    }
  printf ("%-44s %10.3f ms\n", "single CRUD, mean of 1,400",
          total / (7 * rounds));
  report ("single CRUD, slowest of 1,400", worst, "ms", 10);
  tusk_storage_close (storage);
}

static gint64
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (gint64)st.st_size : 0;
}

static void
bench_size (const char *root, GRand *rand)
{
  g_autofree char *dir = make_dir (root, "size");
  TuskStorage *storage = open_or_die (dir);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  save_connections (storage, 100, ids);
  tusk_history_repo_set_limit (storage, 0, &error);
  add_history (storage, ids, 50000, rand);
  for (int i = 0; i < 500; i++)
    {
      g_autofree char *name = g_strdup_printf ("Saved query %d", i);
      g_autofree char *sql = make_sql (rand, i);
      g_autoptr (TuskSavedQuery) query = tusk_saved_query_new (name, sql);
      query->connection_id = g_strdup (ids->pdata[i % ids->len]);
      query->folder_path = g_strdup_printf ("team/%d", i % 10);
      query->description = g_strdup ("What this query is for, in a sentence.");
      if (!tusk_saved_query_repo_create (storage, query, &error))
        g_error ("create: %s", error->message);
    }
  g_autofree char *path = g_strdup (tusk_storage_get_path (storage));
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  double open_mb
      = (file_size (path) + file_size (wal) + file_size (shm)) / 1048576.0;
  tusk_storage_close (storage);
  double closed_mb = file_size (path) / 1048576.0;
  printf ("%-44s %10.2f MB (with -wal and -shm, while open)\n",
          "  size while open", open_mb);
  report ("size: 50,000 history + 500 queries + 100 conn", closed_mb, "MB", 50);
}

int
main (void)
{
  g_autofree char *root = g_dir_make_tmp ("tusk-bench-storage-XXXXXX", NULL);
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);

  tusk_log_set_filter ("warn", NULL);
  bench_open_and_load (root);
  bench_crud (root);
  bench_history (root, rand);
  bench_size (root, rand);
  remove_tree (root);
  return misses > 0 ? 1 : 0;
}
