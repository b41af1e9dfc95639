/* bench-shell.c: the `tusk` command beside the real psql binary (issue 9,
 * items 2, 3 and 6), each pair run alternately after a warm-up:
 *
 *   - export: tusk --csv -c QUERY vs psql -X --csv -c QUERY, to /dev/null:
 *     wall <= 1.0x, peak RSS <= 0.25x (Tusk streams, psql holds it all);
 *   - the same rows unaligned (tusk -A -t vs psql -X -At): wall < 1.0x;
 *   - the floor of a start-up: tusk --version vs psql --version (loading
 *     each program and its libraries; context for the next figure);
 *   - start-up: tusk -c 'select 1' URI vs psql -X -c 'select 1' URI <= 1.1x,
 *     and for a saved connection whose password is in the keychain (psql
 *     gets the same password from PGPASSWORD) <= 1.3x;
 *   - TuskState initialisation alone, storage included, < 100 ms (SC-002).
 *
 * Needs the test environment with the keyring (make bench) and a built
 * shell beside this program. */
#include "bench-common.h"

#include "tusk.h"

#define BIG_SQL                                                                \
  "SELECT g, md5 (g::text), now () FROM generate_series (1, 1000000) g"
#define PSQL "/usr/lib/postgresql/15/bin/psql"

static char *tusk_path;
static char *data_dir;

static char *
uri (const char *user_var)
{
  return g_strdup_printf ("postgresql://%s@%s:%s/%s?sslmode=disable",
                          bench_env (user_var), bench_env ("TUSK_TEST_PGHOST"),
                          bench_env ("TUSK_TEST_PGPORT"),
                          bench_env ("TUSK_TEST_PGDATABASE"));
}

/* One run of @argv, 30 ms after the previous one ended.  A run is slowed
 * by the one before it while the server is still ending that run's backend
 * (on a 2-core machine); the pause lets that finish.  Measured on the
 * start-up pair, 60 runs of each order without the pause: tusk 63.0 ms
 * after psql and 59.9 after tusk, psql 50.0 after psql and 46.7 after tusk
 * (psql's run ends sooner after its last message, so more of its backend's
 * exit overlaps the next run).  With the pause: 49.8 / 49.0 and 38.8 /
 * 38.8. */
static BenchRun
settled_spawn (char **argv)
{
  g_usleep (30 * 1000);
  return bench_spawn (argv, NULL);
}

/* Runs @a and @b alternately @reps times after one warm-up each, in the
 * order A B B A A B B A …, so that each follows itself in half of its runs
 * and the other in the rest (what is left of the order effect above falls
 * on both alike); fills their wall and RSS figures. */
static void
alternate (char **a, char **b, int reps, BenchStat *a_wall, BenchStat *b_wall,
           BenchStat *a_rss, BenchStat *b_rss)
{
  double aw[64], bw[64], ar[64], br[64];
  g_assert (reps <= 64);
  if (bench_spawn (a, NULL).status != 0 || bench_spawn (b, NULL).status != 0)
    g_error ("warm-up failed: %s … / %s …", a[0], b[0]);
  for (int i = 0; i < reps; i++)
    {
      BenchRun ra, rb;
      if (i % 2 == 0)
        {
          ra = settled_spawn (a);
          rb = settled_spawn (b);
        }
      else
        {
          rb = settled_spawn (b);
          ra = settled_spawn (a);
        }
      if (ra.status != 0 || rb.status != 0)
        g_error ("a run failed (exit %d / %d)", ra.status, rb.status);
      aw[i] = ra.wall_ms;
      bw[i] = rb.wall_ms;
      ar[i] = ra.rss_mib;
      br[i] = rb.rss_mib;
    }
  *a_wall = bench_stat (aw, reps);
  *b_wall = bench_stat (bw, reps);
  *a_rss = bench_stat (ar, reps);
  *b_rss = bench_stat (br, reps);
}

static void
bench_export (void)
{
  g_autofree char *target = uri ("TUSK_TEST_PGUSER_TRUST");
  char *tusk[] = { tusk_path, "--data-dir", data_dir, "--csv",
                   "-c",      BIG_SQL,      target,   NULL };
  char *psql[] = { PSQL, "-X", "--csv", "-c", BIG_SQL, target, NULL };
  BenchStat tw, pw, tr, pr;
  printf ("export: 1,000,000 rows as CSV to /dev/null (5 runs each)\n");
  alternate (tusk, psql, 5, &tw, &pw, &tr, &pr);
  bench_report ("export", "wall", "ms", tw, "psql", pw, BENCH_RATIO_AT_MOST,
                1.0);
  bench_report ("export", "peak RSS", "MiB", tr, "psql", pr,
                BENCH_RATIO_AT_MOST, 0.25);
}

static void
bench_unaligned (void)
{
  g_autofree char *target = uri ("TUSK_TEST_PGUSER_TRUST");
  char *tusk[] = { tusk_path, "--data-dir", data_dir, "-A", "-t",
                   "-c",      BIG_SQL,      target,   NULL };
  char *psql[] = { PSQL, "-X", "-At", "-c", BIG_SQL, target, NULL };
  BenchStat tw, pw, tr, pr;
  printf ("materialized: 1,000,000 rows unaligned to /dev/null (5 runs "
          "each)\n");
  alternate (tusk, psql, 5, &tw, &pw, &tr, &pr);
  bench_report ("unaligned", "wall", "ms", tw, "psql", pw, BENCH_RATIO_AT_MOST,
                0.999);
  bench_report ("unaligned", "peak RSS", "MiB", tr, "psql", pr, BENCH_NO_TARGET,
                0);
}

static void
bench_startup (void)
{
  g_autofree char *target = uri ("TUSK_TEST_PGUSER_TRUST");
  char *tusk[]
      = { tusk_path, "--data-dir", data_dir, "-c", "select 1", target, NULL };
  char *psql[] = { PSQL, "-X", "-c", "select 1", target, NULL };
  BenchStat tw, pw, tr, pr;

  /* The floor under both: loading the program and its shared libraries,
   * and their constructors, with nothing else to do. */
  char *tusk_version[] = { tusk_path, "--version", NULL };
  char *psql_version[] = { PSQL, "--version", NULL };
  printf ("start-up floor: --version (20 runs each)\n");
  alternate (tusk_version, psql_version, 20, &tw, &pw, &tr, &pr);
  bench_report ("startup", "floor: --version", "ms", tw, "psql", pw,
                BENCH_NO_TARGET, 0);

  printf ("start-up: -c 'select 1' (20 runs each)\n");
  alternate (tusk, psql, 20, &tw, &pw, &tr, &pr);
  bench_report ("startup", "wall (URI)", "ms", tw, "psql", pw,
                BENCH_RATIO_AT_MOST, 1.1);

  /* A saved connection whose password is in the keychain; psql gets the
   * same password from the environment. */
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (data_dir, &error);
  if (state == NULL)
    g_error ("state: %s", error->message);
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("bench-saved");
  config->host = g_strdup (bench_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (bench_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (bench_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (bench_env ("TUSK_TEST_PGUSER_PASSWORD"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  if (!tusk_state_save_connection_sync (
          state, config, bench_env ("TUSK_TEST_PGPASSWORD"), NULL, &error))
    g_error ("save: %s", error->message);
  tusk_state_free (state);

  g_autofree char *password_uri = uri ("TUSK_TEST_PGUSER_PASSWORD");
  char *tusk_saved[] = { tusk_path,  "--data-dir",  data_dir, "-c",
                         "select 1", "bench-saved", NULL };
  char *psql_password[] = { PSQL, "-X", "-c", "select 1", password_uri, NULL };
  g_setenv ("PGPASSWORD", bench_env ("TUSK_TEST_PGPASSWORD"), TRUE);
  alternate (tusk_saved, psql_password, 20, &tw, &pw, &tr, &pr);
  g_unsetenv ("PGPASSWORD");
  bench_report ("startup", "wall (saved, keychain)", "ms", tw, "psql", pw,
                BENCH_RATIO_AT_MOST, 1.3);
}

static void
bench_state_init (void)
{
  double walls[10];
  for (int i = 0; i < 10; i++)
    {
      g_autofree char *dir = g_build_filename (data_dir, "init", NULL);
      gint64 start = g_get_monotonic_time ();
      g_autoptr (GError) error = NULL;
      TuskState *state = tusk_state_new (dir, &error);
      if (state == NULL || tusk_state_open_storage (state, &error) == NULL)
        g_error ("state: %s", error->message);
      walls[i] = bench_ms_since (start);
      tusk_state_free (state);
    }
  printf ("state initialisation with its storage (10 runs)\n");
  bench_report ("startup", "tusk_state_new + open_storage", "ms",
                bench_stat (walls, 10), NULL, (BenchStat){ 0 }, BENCH_BELOW,
                100);
}

int
main (int argc, char **argv)
{
  (void)argc;
  g_autofree char *here = g_path_get_dirname (argv[0]);
  tusk_path = g_build_filename (here, "..", "shell", "tusk", NULL);
  if (!g_file_test (tusk_path, G_FILE_TEST_IS_EXECUTABLE))
    g_error ("%s is not built", tusk_path);
  g_autoptr (GError) error = NULL;
  data_dir = g_dir_make_tmp ("tusk-bench-shell-XXXXXX", &error);
  g_assert_no_error (error);

  bench_state_init ();
  bench_startup ();
  bench_export ();
  bench_unaligned ();

  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", data_dir);
  if (system (rm) != 0)
    g_warning ("could not remove %s", data_dir);
  g_free (data_dir);
  g_free (tusk_path);
  return bench_exit_status ();
}
