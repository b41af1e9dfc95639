/* bench-concurrency.c: 10 concurrent callers x 1,000 SELECT 1 through one
 * TuskState (pool size 8), every result delivered on the main context, vs
 * pgbench -n -c 8 -j 2 running a SELECT 1 script for the same 10,000
 * transactions (issue 9, item 5): throughput >= 0.9x.  Three runs each,
 * alternating, after a warm-up.  Needs the test environment (make bench).
 */
#include "bench-common.h"

#include "tusk.h"

#define CALLERS    10
#define PER_CALLER 1000

typedef struct
{
  TuskPool *pool;
  TuskRuntime *runtime;
  int left[CALLERS];
  int running;
  GError *error;
} Load;

static void start_one (Load *load, int caller);

typedef struct
{
  Load *load;
  int caller;
} Caller;

static void
on_done (GObject *source, GAsyncResult *res, gpointer data)
{
  (void)source;
  Caller *c = data;
  Load *load = c->load;
  g_autoptr (GError) error = NULL;
  TuskQueryResult *result = tusk_query_execute_finish (res, &error);
  if (result == NULL && load->error == NULL)
    load->error = g_steal_pointer (&error);
  tusk_query_result_free (result);
  int caller = c->caller;
  g_free (c);
  load->running--;
  if (load->left[caller] > 0 && load->error == NULL)
    start_one (load, caller);
}

static void
start_one (Load *load, int caller)
{
  Caller *c = g_new (Caller, 1);
  c->load = load;
  c->caller = caller;
  load->left[caller]--;
  load->running++;
  TuskQueryHandle *handle = tusk_query_execute_async (
      load->pool, load->runtime, "SELECT 1", NULL, NULL, on_done, c);
  tusk_query_handle_unref (handle);
}

/* Returns the queries per second of one run through @state's pool. */
static double
tusk_run (TuskState *state, TuskPool *pool)
{
  Load load = { .pool = pool, .runtime = tusk_state_get_runtime (state) };
  for (int i = 0; i < CALLERS; i++)
    load.left[i] = PER_CALLER;
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < CALLERS; i++)
    start_one (&load, i);
  while (load.running > 0)
    g_main_context_iteration (NULL, TRUE);
  double ms = bench_ms_since (start);
  if (load.error)
    g_error ("query: %s", load.error->message);
  return CALLERS * PER_CALLER / (ms / 1000.0);
}

/* Returns pgbench's tps (without the initial connection time). */
static double
pgbench_run (const char *script)
{
  char *argv[] = { "pgbench",
                   "-n",
                   "-c",
                   "8",
                   "-j",
                   "2",
                   "-t",
                   "1250",
                   "-f",
                   (char *)script,
                   "-h",
                   (char *)bench_env ("TUSK_TEST_PGHOST"),
                   "-p",
                   (char *)bench_env ("TUSK_TEST_PGPORT"),
                   "-U",
                   (char *)bench_env ("TUSK_TEST_PGUSER_TRUST"),
                   (char *)bench_env ("TUSK_TEST_PGDATABASE"),
                   NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  if (!g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                     &err, &status, &error))
    g_error ("pgbench: %s", error->message);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("pgbench failed: %s", err);
  const char *tps = strstr (out, "tps = ");
  if (tps == NULL)
    g_error ("pgbench printed no tps: %s", out);
  return g_ascii_strtod (tps + strlen ("tps = "), NULL);
}

int
main (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("tusk-bench-conc-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *script = g_build_filename (dir, "select1.sql", NULL);
  g_file_set_contents (script, "SELECT 1;\n", -1, &error);
  g_assert_no_error (error);

  TuskState *state = tusk_state_new (dir, &error);
  if (state == NULL)
    g_error ("state: %s", error->message);
  TuskPoolOptions options;
  tusk_pool_options_init (&options);
  options.max_size = 8;
  tusk_state_set_pool_options (state, &options);
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("bench");
  config->host = g_strdup (bench_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (bench_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (bench_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (bench_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  TuskPool *pool
      = tusk_state_connect_config_sync (state, config, NULL, NULL, &error);
  if (pool == NULL)
    g_error ("connect: %s", error->message);

  printf ("concurrency: %d callers x %d SELECT 1, pool of 8, vs pgbench -c 8 "
          "-j 2 (3 runs each)\n",
          CALLERS, PER_CALLER);
  tusk_run (state, pool); /* warm-up: opens the 8 connections */
  pgbench_run (script);
  double t[3], p[3];
  for (int i = 0; i < 3; i++)
    {
      t[i] = tusk_run (state, pool);
      p[i] = pgbench_run (script);
    }
  bench_report ("concurrency", "throughput", "queries/s", bench_stat (t, 3),
                "pgbench", bench_stat (p, 3), BENCH_RATIO_AT_LEAST, 0.9);

  tusk_pool_unref (pool);
  tusk_state_free (state);
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
  if (system (rm) != 0)
    g_warning ("could not remove %s", dir);
  return bench_exit_status ();
}
