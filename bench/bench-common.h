/* bench-common.h: what every benchmark shares — runs alternating between
 * Tusk and its baseline after a warm-up, medians with min–max, the ratio,
 * and a PASS/MISS verdict against the target, printed as a table
 * row and appended to $TUSK_BENCH_RESULTS (tab-separated) for
 * bench/RESULTS.md (scripts/bench.sh).
 *
 * Header-only; each benchmark is one program, single-threaded here.
 * Timings mean something only as ratios measured in the same run: these
 * shared 2-core machines drift.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

typedef struct
{
  double median, min, max;
} BenchStat;

static int bench_misses = 0;

static int
bench_compare_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

/* The median, min and max of @n values (sorted in place). */
static inline BenchStat
bench_stat (double *values, int n)
{
  BenchStat s = { 0, 0, 0 };
  if (n <= 0)
    return s;
  qsort (values, n, sizeof values[0], bench_compare_double);
  s.min = values[0];
  s.max = values[n - 1];
  s.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return s;
}

/* Returns (transfer none) a test-environment variable; exits without it. */
static inline const char *
bench_env (const char *name)
{
  const char *value = g_getenv (name);
  if (value == NULL || *value == '\0')
    g_error ("%s is not set: run through scripts/test-env.sh (make bench)",
             name);
  return value;
}

static inline double
bench_ms_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000.0;
}

typedef enum
{
  BENCH_RATIO_AT_MOST,  /* pass when tusk / baseline <= target */
  BENCH_RATIO_AT_LEAST, /* pass when tusk / baseline >= target (throughput) */
  BENCH_BELOW,          /* pass when tusk's median < target (absolute) */
  BENCH_NO_TARGET,      /* context only */
} BenchTarget;

/**
 * bench_report:
 * @bench: the benchmark's name ("export")
 * @figure: what is measured ("wall", "peak RSS")
 * @unit: "ms", "MiB", "queries/s"
 * @tusk: Tusk's figures
 * @baseline_name: (nullable): "psql", "libpq", … NULL for an absolute figure
 * @baseline: the baseline's figures (ignored without @baseline_name)
 * @kind, @target: the target
 *
 * Prints one row and records it; a miss makes bench_exit_status() 1.
 */
static inline void
bench_report (const char *bench, const char *figure, const char *unit,
              BenchStat tusk, const char *baseline_name, BenchStat baseline,
              BenchTarget kind, double target)
{
  double ratio = baseline_name && baseline.median > 0
                     ? tusk.median / baseline.median
                     : 0;
  gboolean pass = TRUE;
  g_autofree char *target_text = NULL;
  switch (kind)
    {
      case BENCH_RATIO_AT_MOST:
        pass = ratio <= target;
        target_text = g_strdup_printf ("ratio <= %.2f", target);
        break;
      case BENCH_RATIO_AT_LEAST:
        pass = ratio >= target;
        target_text = g_strdup_printf ("ratio >= %.2f", target);
        break;
      case BENCH_BELOW:
        pass = tusk.median < target;
        target_text = g_strdup_printf ("< %g %s", target, unit);
        break;
      case BENCH_NO_TARGET:
        target_text = g_strdup ("-");
        break;
    }
  const char *verdict = kind == BENCH_NO_TARGET ? "" : pass ? "PASS" : "MISS";
  if (!pass)
    bench_misses++;

  g_autofree char *tusk_text
      = g_strdup_printf ("%.2f [%.2f-%.2f]", tusk.median, tusk.min, tusk.max);
  g_autofree char *base_text
      = baseline_name
            ? g_strdup_printf ("%s %.2f [%.2f-%.2f]", baseline_name,
                               baseline.median, baseline.min, baseline.max)
            : g_strdup ("-");
  g_autofree char *ratio_text
      = baseline_name ? g_strdup_printf ("%.2f", ratio) : g_strdup ("-");
  printf ("  %-28s %-9s tusk %-26s %-30s ratio %-5s target %-14s %s\n", figure,
          unit, tusk_text, base_text, ratio_text, target_text, verdict);
  fflush (stdout);

  const char *path = g_getenv ("TUSK_BENCH_RESULTS");
  if (path != NULL && *path != '\0')
    {
      FILE *f = fopen (path, "a");
      if (f != NULL)
        {
          fprintf (f, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", bench, figure, unit,
                   tusk_text, base_text, ratio_text, target_text, verdict);
          fclose (f);
        }
    }
}

/* One figure against an absolute target (a latency, a load time): a row
 * like bench_report()'s, without a baseline. */
static inline void
bench_check (const char *bench, const char *figure, double value,
             const char *unit, double target)
{
  BenchStat stat = { value, value, value };
  bench_report (bench, figure, unit, stat, NULL, stat, BENCH_BELOW, target);
}

/* A figure given for context only (printed, not recorded). */
static inline void
bench_note (const char *figure, double value, const char *unit)
{
  printf ("  %-28s %-9s %.3f\n", figure, unit, value);
}

static inline int
bench_exit_status (void)
{
  return bench_misses ? 1 : 0;
}

/* ---- child processes -------------------------------------------------- */

typedef struct
{
  double wall_ms;
  double cpu_ms;  /* user + system of the child (and its children) */
  double rss_mib; /* the child's peak RSS */
  int status;     /* its exit status, -1 when killed */
} BenchRun;

/* Runs @argv (stdout to @out_path, or /dev/null when NULL; stdin from
 * /dev/null) and measures it with wait4(). */
static inline BenchRun
bench_spawn (char **argv, const char *out_path)
{
  BenchRun run = { 0, 0, 0, -1 };
  fflush (stdout);
  gint64 start = g_get_monotonic_time ();
  pid_t pid = fork ();
  g_assert (pid >= 0);
  if (pid == 0)
    {
      FILE *in = freopen ("/dev/null", "r", stdin);
      FILE *out = freopen (out_path ? out_path : "/dev/null", "w", stdout);
      (void)in;
      (void)out;
      execvp (argv[0], argv);
      _exit (127);
    }
  int status = 0;
  struct rusage usage;
  wait4 (pid, &status, 0, &usage);
  run.wall_ms = bench_ms_since (start);
  run.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0
               + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
  run.rss_mib = usage.ru_maxrss / 1024.0;
  run.status = WIFEXITED (status) ? WEXITSTATUS (status) : -1;
  return run;
}
