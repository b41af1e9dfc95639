/* bench-query.c: the query numbers of issue 6, each beside a plain libpq
 * program doing the same work in the same run, printed with the ratio and
 * PASS or MISS against the target:
 *
 *   - streaming SELECT g, md5 (g::text), now () FROM generate_series (1,
 *     1000000) g to a consumer that drops rows, vs a libpq single-row-mode
 *     loop: wall, client CPU, peak RSS, time to the first batch;
 *   - the same fully materialized vs a PQexec loop touching every value;
 *   - 10,000 sequential SELECT 1 through pool + runtime + main-context
 *     delivery vs a PQexec loop;
 *   - cancel latency (pg_sleep (30) cancelled -> cancelled error delivered),
 *     median and max over 20, vs raw PQcancel.
 *
 * Each side of a comparison runs in a child process of its own, so that its
 * CPU time and peak RSS (wait4()) are its own.  Needs the test environment
 * (make bench).  Exit status 1 when any figure misses its target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tusk.h"
#include "tusk-pool-private.h"

#define BIG_SQL                                                                \
  "SELECT g, md5 (g::text), now () FROM generate_series (1, 1000000) g"

static int misses = 0;

typedef struct
{
  double wall_ms;
  double cpu_ms;
  double rss_mib;
  double extra; /* what the child reports besides (ms) */
  double extra2;
} Figures;

static void
report (const char *what, double figure, double baseline, const char *unit,
        double max_ratio, double max_abs)
{
  double ratio = baseline > 0 ? figure / baseline : 0;
  gboolean pass = TRUE;
  if (max_ratio > 0 && ratio > max_ratio)
    pass = FALSE;
  if (max_abs > 0 && figure > max_abs)
    pass = FALSE;
  printf ("%-40s %10.2f %-4s libpq %10.2f  ratio %5.2f", what, figure, unit,
          baseline, ratio);
  if (max_ratio > 0)
    printf ("  (target ratio <= %.2f)", max_ratio);
  if (max_abs > 0)
    printf ("  (target < %g %s)", max_abs, unit);
  printf ("  %s\n", pass ? "PASS" : "MISS");
  if (!pass)
    misses++;
}

/* Returns (transfer none) a test-environment variable; exits without it. */
static const char *
tusk_test_env (const char *name)
{
  const char *value = g_getenv (name);
  if (value == NULL || *value == '\0')
    g_error ("%s is not set: run through scripts/test-env.sh (make bench)",
             name);
  return value;
}

static char *
conninfo (void)
{
  return g_strdup_printf ("host=%s port=%s dbname=%s user=%s sslmode=disable",
                          tusk_test_env ("TUSK_TEST_PGHOST"),
                          tusk_test_env ("TUSK_TEST_PGPORT"),
                          tusk_test_env ("TUSK_TEST_PGDATABASE"),
                          tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
}

static PGconn *
raw_connect (void)
{
  g_autofree char *info = conninfo ();
  PGconn *pg = PQconnectdb (info);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect: %s", PQerrorMessage (pg));
  return pg;
}

static TuskPool *
pool_new (void)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup ("bench");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  if (pool == NULL)
    g_error ("pool: %s", error->message);
  tusk_connection_config_free (config);
  return pool;
}

static double
ms_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000.0;
}

/* Runs @body in a child; it returns two figures of its own through a pipe;
 * wall time is measured around the body inside the child. */
typedef void (*Body) (double *extra, double *extra2, double *wall_ms);

static Figures
in_child (Body body)
{
  int fds[2];
  g_assert_cmpint (pipe (fds), ==, 0);
  fflush (stdout);
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (fds[0]);
      double out[3] = { 0, 0, 0 };
      body (&out[0], &out[1], &out[2]);
      if (write (fds[1], out, sizeof out) != sizeof out)
        _exit (1);
      _exit (0);
    }
  close (fds[1]);
  double in[3] = { 0, 0, 0 };
  if (read (fds[0], in, sizeof in) != sizeof in)
    g_error ("child failed");
  close (fds[0]);
  int status = 0;
  struct rusage usage;
  wait4 (pid, &status, 0, &usage);
  Figures figures;
  figures.extra = in[0];
  figures.extra2 = in[1];
  figures.wall_ms = in[2];
  figures.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0
                   + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
  figures.rss_mib = usage.ru_maxrss / 1024.0;
  return figures;
}

/* ---- streaming ---------------------------------------------------------- */

static void
libpq_single_row (double *first_row_ms, double *rows, double *wall)
{
  PGconn *pg = raw_connect ();
  gint64 start = g_get_monotonic_time ();
  PQsendQuery (pg, BIG_SQL);
  PQsetSingleRowMode (pg);
  PGresult *res;
  double n = 0;
  while ((res = PQgetResult (pg)) != NULL)
    {
      if (PQresultStatus (res) == PGRES_SINGLE_TUPLE)
        {
          if (n == 0)
            *first_row_ms = ms_since (start);
          n++;
        }
      PQclear (res);
    }
  *wall = ms_since (start);
  *rows = n;
  PQfinish (pg);
}

typedef struct
{
  gint64 start;
  double first_batch_ms;
  guint64 rows;
  gboolean done;
} Drop;

static void
drop_batch (TuskQueryHandle *handle, TuskRowBatch *batch, gpointer data)
{
  (void)handle;
  Drop *d = data;
  if (d->rows == 0)
    d->first_batch_ms = ms_since (d->start);
  d->rows += tusk_row_batch_get_n_rows (batch);
}

static void
drop_done (TuskQueryHandle *handle, const TuskQueryResult *result,
           const GError *error, gpointer data)
{
  (void)handle;
  (void)result;
  if (error)
    g_error ("stream: %s", error->message);
  ((Drop *)data)->done = TRUE;
}

static void
run_main_until (gboolean *flag)
{
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
}

static void
tusk_stream (double *first_batch_ms, double *rows, double *wall)
{
  TuskRuntime *runtime = tusk_runtime_new (0);
  TuskPool *pool = pool_new ();
  Drop d = { 0 };
  TuskQueryStreamFuncs funcs = { NULL, drop_batch, drop_done };
  d.start = g_get_monotonic_time ();
  TuskQueryHandle *handle = tusk_query_stream (pool, runtime, BIG_SQL, NULL,
                                               &funcs, &d, NULL, NULL);
  run_main_until (&d.done);
  *wall = ms_since (d.start);
  *first_batch_ms = d.first_batch_ms;
  *rows = (double)d.rows;
  tusk_query_handle_unref (handle);
  tusk_pool_unref (pool);
  tusk_runtime_free (runtime);
}

/* ---- materialized ----------------------------------------------------- */

static void
libpq_exec (double *bytes, double *rows, double *wall)
{
  PGconn *pg = raw_connect ();
  gint64 start = g_get_monotonic_time ();
  PGresult *res = PQexec (pg, BIG_SQL);
  double total = 0;
  int n = PQntuples (res), m = PQnfields (res);
  for (int r = 0; r < n; r++)
    for (int c = 0; c < m; c++)
      total += strlen (PQgetvalue (res, r, c));
  *wall = ms_since (start);
  *bytes = total;
  *rows = n;
  PQclear (res);
  PQfinish (pg);
}

typedef struct
{
  TuskQueryResult *result;
  GError *error;
  gboolean done;
} Wait;

static void
on_result (GObject *source, GAsyncResult *res, gpointer data)
{
  (void)source;
  Wait *w = data;
  w->result = tusk_query_execute_finish (res, &w->error);
  w->done = TRUE;
}

static void
tusk_materialized (double *bytes, double *rows, double *wall)
{
  TuskRuntime *runtime = tusk_runtime_new (0);
  TuskPool *pool = pool_new ();
  gint64 start = g_get_monotonic_time ();
  Wait w = { 0 };
  TuskQueryHandle *handle = tusk_query_execute_async (
      pool, runtime, BIG_SQL, NULL, NULL, on_result, &w);
  run_main_until (&w.done);
  if (w.error)
    g_error ("execute: %s", w.error->message);
  double total = 0;
  for (guint b = 0; b < w.result->batches->len; b++)
    {
      TuskRowBatch *batch = w.result->batches->pdata[b];
      guint n = tusk_row_batch_get_n_rows (batch);
      guint m = tusk_row_batch_get_n_columns (batch);
      for (guint r = 0; r < n; r++)
        for (guint c = 0; c < m; c++)
          total += strlen (tusk_row_batch_get_value (batch, r, c, NULL));
    }
  *wall = ms_since (start);
  *bytes = total;
  *rows = (double)w.result->n_rows;
  tusk_query_result_free (w.result);
  tusk_query_handle_unref (handle);
  tusk_pool_unref (pool);
  tusk_runtime_free (runtime);
}

/* ---- many small queries ------------------------------------------------ */

#define N_SMALL 10000

static void
libpq_select1 (double *unused, double *unused2, double *wall)
{
  (void)unused;
  (void)unused2;
  PGconn *pg = raw_connect ();
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < N_SMALL; i++)
    PQclear (PQexec (pg, "SELECT 1"));
  *wall = ms_since (start);
  PQfinish (pg);
}

static void
tusk_select1 (double *unused, double *unused2, double *wall)
{
  (void)unused;
  (void)unused2;
  TuskRuntime *runtime = tusk_runtime_new (0);
  TuskPool *pool = pool_new ();
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < N_SMALL; i++)
    {
      Wait w = { 0 };
      TuskQueryHandle *handle = tusk_query_execute_async (
          pool, runtime, "SELECT 1", NULL, NULL, on_result, &w);
      run_main_until (&w.done);
      if (w.error)
        g_error ("execute: %s", w.error->message);
      tusk_query_result_free (w.result);
      tusk_query_handle_unref (handle);
    }
  *wall = ms_since (start);
  tusk_pool_unref (pool);
  tusk_runtime_free (runtime);
}

/* ---- cancel ----------------------------------------------------------- */

#define N_CANCEL 20

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static void
libpq_cancel (double *median, double *max, double *wall)
{
  PGconn *pg = raw_connect ();
  double lat[N_CANCEL];
  gint64 begin = g_get_monotonic_time ();
  for (int i = 0; i < N_CANCEL; i++)
    {
      PQsendQuery (pg, "SELECT pg_sleep (30)");
      g_usleep (50 * 1000);
      PGcancel *cancel = PQgetCancel (pg);
      char errbuf[256];
      gint64 start = g_get_monotonic_time ();
      PQcancel (cancel, errbuf, sizeof errbuf);
      PGresult *res;
      while ((res = PQgetResult (pg)) != NULL)
        PQclear (res);
      lat[i] = ms_since (start);
      PQfreeCancel (cancel);
    }
  *wall = ms_since (begin);
  qsort (lat, N_CANCEL, sizeof lat[0], compare_double);
  *median = lat[N_CANCEL / 2];
  *max = lat[N_CANCEL - 1];
  PQfinish (pg);
}

static void
tusk_cancel (double *median, double *max, double *wall)
{
  TuskRuntime *runtime = tusk_runtime_new (0);
  TuskPool *pool = pool_new ();
  double lat[N_CANCEL];
  gint64 begin = g_get_monotonic_time ();
  for (int i = 0; i < N_CANCEL; i++)
    {
      Wait w = { 0 };
      TuskQueryHandle *handle = tusk_query_execute_async (
          pool, runtime, "SELECT pg_sleep (30)", NULL, NULL, on_result, &w);
      g_usleep (50 * 1000);
      gint64 start = g_get_monotonic_time ();
      tusk_query_handle_cancel (handle);
      run_main_until (&w.done);
      lat[i] = ms_since (start);
      if (w.error == NULL || w.error->code != TUSK_ERROR_QUERY_CANCELLED)
        g_error ("expected a cancel");
      g_clear_error (&w.error);
      tusk_query_handle_unref (handle);
    }
  *wall = ms_since (begin);
  qsort (lat, N_CANCEL, sizeof lat[0], compare_double);
  *median = lat[N_CANCEL / 2];
  *max = lat[N_CANCEL - 1];
  tusk_pool_unref (pool);
  tusk_runtime_free (runtime);
}

/* With arguments, only the named parts run: stream, materialized, select1,
 * cancel. */
static gboolean
wanted (int argc, char **argv, const char *part)
{
  if (argc < 2)
    return TRUE;
  for (int i = 1; i < argc; i++)
    if (g_str_equal (argv[i], part))
      return TRUE;
  return FALSE;
}

int
main (int argc, char **argv)
{
  g_setenv ("TUSK_LOG", "warn", TRUE);
  tusk_log_set_filter ("warn", NULL);
  setvbuf (stdout, NULL, _IOLBF, 0);

  Figures base, ours;
  if (wanted (argc, argv, "stream"))
    {
      printf ("streaming 1,000,000 rows to a consumer that drops them\n");
      base = in_child (libpq_single_row);
      ours = in_child (tusk_stream);
      g_assert_cmpfloat (ours.extra2, ==, 1000000);
      report ("  wall", ours.wall_ms, base.wall_ms, "ms", 1.05, 0);
      report ("  client CPU", ours.cpu_ms, base.cpu_ms, "ms", 1.5, 0);
      report ("  peak RSS", ours.rss_mib, base.rss_mib, "MiB", 0, 32);
      report ("  first batch (libpq: first row)", ours.extra, base.extra, "ms",
              0, base.extra + 50);
    }

  if (wanted (argc, argv, "materialized"))
    {
      printf ("fully materialized, every value read\n");
      base = in_child (libpq_exec);
      ours = in_child (tusk_materialized);
      g_assert_cmpfloat (ours.extra, ==, base.extra);
      report ("  wall", ours.wall_ms, base.wall_ms, "ms", 1.0, 0);
      report ("  peak RSS", ours.rss_mib, base.rss_mib, "MiB", 1.0, 0);
    }

  if (wanted (argc, argv, "select1"))
    {
      printf ("10,000 sequential SELECT 1 (pool + runtime + main context)\n");
      base = in_child (libpq_select1);
      ours = in_child (tusk_select1);
      report ("  wall", ours.wall_ms, base.wall_ms, "ms", 1.15, 0);
      report ("  per query", ours.wall_ms * 1000 / N_SMALL,
              base.wall_ms * 1000 / N_SMALL, "us", 0, 0);
    }

  if (wanted (argc, argv, "cancel"))
    {
      printf ("cancel pg_sleep (30) -> cancelled error delivered, %d times\n",
              N_CANCEL);
      base = in_child (libpq_cancel);
      ours = in_child (tusk_cancel);
      report ("  median", ours.extra, base.extra, "ms", 0, 50);
      report ("  max", ours.extra2, base.extra2, "ms", 0, 50);
    }

  printf ("%s\n", misses ? "some figures MISS their targets"
                         : "every figure meets its target");
  return misses ? 1 : 0;
}
