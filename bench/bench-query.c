/* bench-query.c: the query numbers of issue 6, each beside a plain libpq
 * program doing the same work in the same run, reported as medians
 * [min-max] with the ratio and PASS or MISS against the target
 * (bench-common.h):
 *
 *   - streaming SELECT g, md5 (g::text), now () FROM generate_series (1,
 *     1000000) g to a consumer that drops rows, vs a libpq single-row-mode
 *     loop: wall, client CPU, peak RSS, time to the first batch, over
 *     STREAM_TRIALS alternating trials a side;
 *   - the same fully materialized vs a PQexec loop touching every value,
 *     over MATERIALIZED_TRIALS alternating trials a side;
 *   - 10,000 sequential SELECT 1 through pool + runtime + main-context
 *     delivery vs a PQexec loop, the two sides in alternating rounds on
 *     one connection (see select1_rounds ()): the time a query of each
 *     round, and the totals;
 *   - cancel latency (pg_sleep (30) cancelled -> cancelled error delivered),
 *     20 times, vs raw PQcancel (which returns only once the server's
 *     cancel process has exited): median and slowest, for an execution
 *     read on the caller's thread and for a stream read by a worker.
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

#include "bench-common.h"
#include "tusk.h"
#include "tusk-pool-private.h"

#define BIG_SQL                                                                \
  "SELECT g, md5 (g::text), now () FROM generate_series (1, 1000000) g"

#define STREAM_TRIALS 5

typedef struct
{
  double wall_ms;
  double cpu_ms;
  double rss_mib;
  double extra; /* what the child reports besides (ms) */
  double extra2;
} Figures;

static char *
conninfo (void)
{
  return g_strdup_printf (
      "host=%s port=%s dbname=%s user=%s sslmode=disable",
      bench_env ("TUSK_TEST_PGHOST"), bench_env ("TUSK_TEST_PGPORT"),
      bench_env ("TUSK_TEST_PGDATABASE"), bench_env ("TUSK_TEST_PGUSER_TRUST"));
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
  config->host = g_strdup (bench_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (bench_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (bench_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (bench_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  if (pool == NULL)
    g_error ("pool: %s", error->message);
  tusk_connection_config_free (config);
  return pool;
}

#define ms_since bench_ms_since

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

/* Runs @body in a child, which fills @values; returns (transfer full)
 * them. */
typedef void (*ValuesBody) (GArray *values);

static GArray *
in_child_values (ValuesBody body)
{
  int fds[2];
  g_assert_cmpint (pipe (fds), ==, 0);
  fflush (stdout);
  pid_t pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      close (fds[0]);
      GArray *values = g_array_new (FALSE, FALSE, sizeof (double));
      body (values);
      guint n = values->len;
      if (write (fds[1], &n, sizeof n) != sizeof n
          || write (fds[1], values->data, n * sizeof (double))
                 != (ssize_t)(n * sizeof (double)))
        _exit (1);
      _exit (0);
    }
  close (fds[1]);
  guint n = 0;
  if (read (fds[0], &n, sizeof n) != sizeof n)
    g_error ("child failed");
  GArray *values = g_array_sized_new (FALSE, FALSE, sizeof (double), n);
  g_array_set_size (values, n);
  gsize want = n * sizeof (double), got = 0;
  while (got < want)
    {
      ssize_t r = read (fds[0], values->data + got, want - got);
      if (r <= 0)
        g_error ("child failed");
      got += (gsize)r;
    }
  close (fds[0]);
  int status = 0;
  waitpid (pid, &status, 0);
  return values;
}

/* A BenchStat of one value. */
static BenchStat
bench_one (double value)
{
  return (BenchStat){ value, value, value };
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

#define MATERIALIZED_TRIALS 7

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

/* 10,000 queries a side on the same connection and backend: the pool's one
 * connection, which the libpq side borrows (tusk_pool_acquire_sync (), then
 * a plain PQexec loop on its PGconn) and Tusk gets back through the pool.
 * So the server does the same work for both (one backend, one session with
 * the pool's settings) and only the client path differs.  The sides take
 * turns in rounds of ROUND queries, after a warm-up round each that is not
 * counted: the machine is shared, and its load changes from one moment,
 * and one backend process, to the next.  The figures are each side's
 * total. */
#define N_SMALL 10000
#define ROUND   20

static double
libpq_small_round (TuskPool *pool, int n)
{
  g_autoptr (GError) error = NULL;
  TuskPoolConn *conn = tusk_pool_acquire_sync (pool, NULL, &error);
  if (conn == NULL)
    g_error ("acquire: %s", error->message);
  PGconn *pg = tusk_pool_conn_get_pg (conn);
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < n; i++)
    PQclear (PQexec (pg, "SELECT 1"));
  double ms = ms_since (start);
  tusk_pool_release (conn);
  return ms;
}

static double
tusk_small_round (TuskPool *pool, TuskRuntime *runtime, int n)
{
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < n; i++)
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
  return ms_since (start);
}

/* In a child: each round's time a query in µs, libpq's then Tusk's, round
 * after round. */
static void
select1_rounds (GArray *values)
{
  TuskRuntime *runtime = tusk_runtime_new (0);
  TuskPool *pool = pool_new ();
  libpq_small_round (pool, ROUND); /* warm-up */
  tusk_small_round (pool, runtime, ROUND);
  for (int done = 0; done < N_SMALL; done += ROUND)
    {
      double libpq_us = libpq_small_round (pool, ROUND) * 1000 / ROUND;
      double tusk_us = tusk_small_round (pool, runtime, ROUND) * 1000 / ROUND;
      g_array_append_val (values, libpq_us);
      g_array_append_val (values, tusk_us);
    }
  tusk_pool_unref (pool);
  tusk_runtime_free (runtime);
}

/* ---- cancel ----------------------------------------------------------- */

#define N_CANCEL 20

/* The time from each cancel to the cancelled error, in ms. */
static void
libpq_cancel (GArray *values)
{
  PGconn *pg = raw_connect ();
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
      double ms = ms_since (start);
      g_array_append_val (values, ms);
      PQfreeCancel (cancel);
    }
  PQfinish (pg);
}

static void
on_stream_done (TuskQueryHandle *handle, const TuskQueryResult *result,
                const GError *error, gpointer data)
{
  (void)handle;
  (void)result;
  Wait *w = data;
  w->error = error ? g_error_copy (error) : NULL;
  w->done = TRUE;
}

/* Starts the sleep as an execution (the caller's thread reads it). */
static TuskQueryHandle *
start_execute (TuskPool *pool, TuskRuntime *runtime, const char *sql, Wait *w)
{
  return tusk_query_execute_async (pool, runtime, sql, NULL, NULL, on_result,
                                   w);
}

/* Starts the sleep as a stream (a worker reads it). */
static TuskQueryHandle *
start_stream (TuskPool *pool, TuskRuntime *runtime, const char *sql, Wait *w)
{
  static const TuskQueryStreamFuncs funcs = { .done = on_stream_done };
  return tusk_query_stream (pool, runtime, sql, NULL, &funcs, w, NULL, NULL);
}

typedef TuskQueryHandle *(*StartFunc) (TuskPool *pool, TuskRuntime *runtime,
                                       const char *sql, Wait *w);

static void
tusk_cancel_with (GArray *values, StartFunc start_query)
{
  TuskRuntime *runtime = tusk_runtime_new (0);
  TuskPool *pool = pool_new ();
  for (int i = 0; i < N_CANCEL; i++)
    {
      Wait w = { 0 };
      TuskQueryHandle *handle
          = start_query (pool, runtime, "SELECT pg_sleep (30)", &w);
      g_usleep (50 * 1000);
      gint64 start = g_get_monotonic_time ();
      tusk_query_handle_cancel (handle);
      run_main_until (&w.done);
      double ms = ms_since (start);
      g_array_append_val (values, ms);
      if (w.error == NULL || w.error->code != TUSK_ERROR_QUERY_CANCELLED)
        g_error ("expected a cancel");
      g_clear_error (&w.error);
      tusk_query_handle_unref (handle);
    }
  tusk_pool_unref (pool);
  tusk_runtime_free (runtime);
}

static void
tusk_cancel (GArray *values)
{
  tusk_cancel_with (values, start_execute);
}

static void
tusk_stream_cancel (GArray *values)
{
  tusk_cancel_with (values, start_stream);
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

/* Trials of two bodies taking turns (libpq first), so that both sides see
 * the machine's load alike. */
typedef struct
{
  double wall[8], cpu[8], rss[8], extra[8], extra2[8];
  int n;
} Trials;

static void
trials_add (Trials *trials, Figures figures)
{
  g_assert (trials->n < 8);
  trials->wall[trials->n] = figures.wall_ms;
  trials->cpu[trials->n] = figures.cpu_ms;
  trials->rss[trials->n] = figures.rss_mib;
  trials->extra[trials->n] = figures.extra;
  trials->extra2[trials->n] = figures.extra2;
  trials->n++;
}

int
main (int argc, char **argv)
{
  g_setenv ("TUSK_LOG", "warn", TRUE);
  tusk_log_set_filter ("warn", NULL);
  setvbuf (stdout, NULL, _IOLBF, 0);

  if (wanted (argc, argv, "stream"))
    {
      printf ("streaming 1,000,000 rows to a consumer that drops them, "
              "%d alternating trials a side\n",
              STREAM_TRIALS);
      Trials base = { 0 }, ours = { 0 };
      for (int t = 0; t < STREAM_TRIALS; t++)
        {
          trials_add (&base, in_child (libpq_single_row));
          trials_add (&ours, in_child (tusk_stream));
          g_assert_cmpfloat (ours.extra2[t], ==, 1000000);
        }
      int n = STREAM_TRIALS;
      BenchStat first_row = bench_stat (base.extra, n);
      bench_report ("query", "stream wall", "ms", bench_stat (ours.wall, n),
                    "libpq", bench_stat (base.wall, n), BENCH_RATIO_AT_MOST,
                    1.05);
      bench_report ("query", "stream client CPU", "ms",
                    bench_stat (ours.cpu, n), "libpq", bench_stat (base.cpu, n),
                    BENCH_RATIO_AT_MOST, 1.5);
      bench_report ("query", "stream peak RSS", "MiB", bench_stat (ours.rss, n),
                    "libpq", bench_stat (base.rss, n), BENCH_BELOW, 32);
      bench_report ("query", "stream first batch (libpq: row)", "ms",
                    bench_stat (ours.extra, n), "libpq", first_row, BENCH_BELOW,
                    first_row.median + 50);
    }

  if (wanted (argc, argv, "materialized"))
    {
      printf ("fully materialized, every value read, %d alternating trials "
              "a side\n",
              MATERIALIZED_TRIALS);
      Trials base = { 0 }, ours = { 0 };
      for (int t = 0; t < MATERIALIZED_TRIALS; t++)
        {
          trials_add (&base, in_child (libpq_exec));
          trials_add (&ours, in_child (tusk_materialized));
          /* Rows, not bytes: now ()'s text drops trailing zeros of its
           * microseconds, so its length differs between the two runs. */
          g_assert_cmpfloat (ours.extra2[t], ==, base.extra2[t]);
        }
      int n = MATERIALIZED_TRIALS;
      bench_report ("query", "materialized wall", "ms",
                    bench_stat (ours.wall, n), "libpq",
                    bench_stat (base.wall, n), BENCH_RATIO_AT_MOST, 1.0);
      bench_report ("query", "materialized client CPU", "ms",
                    bench_stat (ours.cpu, n), "libpq", bench_stat (base.cpu, n),
                    BENCH_NO_TARGET, 0);
      bench_report ("query", "materialized peak RSS", "MiB",
                    bench_stat (ours.rss, n), "libpq", bench_stat (base.rss, n),
                    BENCH_RATIO_AT_MOST, 1.0);
    }

  if (wanted (argc, argv, "select1"))
    {
      printf ("10,000 sequential SELECT 1 (pool + runtime + main context), "
              "alternating rounds of %d on one connection\n",
              ROUND);
      g_autoptr (GArray) values = in_child_values (select1_rounds);
      int rounds = (int)values->len / 2;
      g_autofree double *base = g_new (double, rounds);
      g_autofree double *ours = g_new (double, rounds);
      double base_total = 0, ours_total = 0;
      for (int i = 0; i < rounds; i++)
        {
          base[i] = g_array_index (values, double, 2 * i);
          ours[i] = g_array_index (values, double, 2 * i + 1);
          base_total += base[i] * ROUND / 1000;
          ours_total += ours[i] * ROUND / 1000;
        }
      bench_report ("query", "SELECT 1, a query", "us",
                    bench_stat (ours, rounds), "libpq",
                    bench_stat (base, rounds), BENCH_RATIO_AT_MOST, 1.15);
      bench_report ("query", "SELECT 1, 10,000 in all", "ms",
                    bench_one (ours_total), "libpq", bench_one (base_total),
                    BENCH_NO_TARGET, 0);
    }

  if (wanted (argc, argv, "cancel"))
    {
      printf ("cancel pg_sleep (30) -> cancelled error delivered, %d times\n",
              N_CANCEL);
      g_autoptr (GArray) base = in_child_values (libpq_cancel);
      g_autoptr (GArray) ours = in_child_values (tusk_cancel);
      BenchStat base_stat = bench_stat ((double *)base->data, (int)base->len);
      BenchStat ours_stat = bench_stat ((double *)ours->data, (int)ours->len);
      /* SC-004: median <= 10 ms, slowest <= 50 ms. */
      bench_report ("query", "cancel -> cancelled error", "ms", ours_stat,
                    "libpq", base_stat, BENCH_BELOW, 10);
      bench_report ("query", "cancel, slowest", "ms", bench_one (ours_stat.max),
                    "libpq", bench_one (base_stat.max), BENCH_BELOW, 50);
      g_autoptr (GArray) stream = in_child_values (tusk_stream_cancel);
      BenchStat stream_stat
          = bench_stat ((double *)stream->data, (int)stream->len);
      bench_report ("query", "cancel a stream -> cancelled error", "ms",
                    stream_stat, "libpq", base_stat, BENCH_BELOW, 10);
      bench_report ("query", "cancel a stream, slowest", "ms",
                    bench_one (stream_stat.max), "libpq",
                    bench_one (base_stat.max), BENCH_BELOW, 50);
    }

  printf ("%s\n", bench_misses ? "some figures MISS their targets"
                               : "every figure meets its target");
  return bench_exit_status ();
}
