/* bench-log.c: what logging costs the caller's thread, and how long a line
 * takes to reach the console and the file.
 *
 * (a) mean time per tusk_info() call over a burst of 200,000 calls (file
 *     sink on, console captured and discarded), per disabled tusk_debug()
 *     call, and the baseline: a blocking logger that formats and write()s
 *     each line itself.  Target (issue 7): an enabled call < 1 µs.
 * (b) latency from the call to the line in the file (polled) and on the
 *     console, median and max over 100 samples, one every 2 ms.  Target
 *     (SC-007): < 100 ms.
 */
#define G_LOG_DOMAIN "tusk-bench"

#include "tusk-log-private.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define BURST    200000
#define DISABLED 10000000
#define SAMPLES  100

typedef struct
{
  GMutex lock;
  char want[64];
  gint64 seen_at; /* monotonic µs when the wanted line reached the console */
} ConsoleWatch;

static void
console_watch (const char *line, gpointer data)
{
  ConsoleWatch *watch = data;

  g_mutex_lock (&watch->lock);
  if (watch->seen_at == 0 && watch->want[0] != '\0'
      && strstr (line, watch->want) != NULL)
    watch->seen_at = g_get_monotonic_time ();
  g_mutex_unlock (&watch->lock);
}

static double
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

static guint
count_lines (const char *path)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  guint n = 0;

  if (!g_file_get_contents (path, &text, &len, NULL))
    return 0;
  for (gsize i = 0; i < len; i++)
    n += text[i] == '\n';
  return n;
}

/* Whether the file holds @want at or after @from. */
static gboolean
file_has (int fd, off_t from, const char *want)
{
  char buf[4096];
  ssize_t n = pread (fd, buf, sizeof buf - 1, from);
  if (n <= 0)
    return FALSE;
  buf[n] = '\0';
  return strstr (buf, want) != NULL;
}

static void
rm_rf (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
print_verdict (const char *what, gboolean pass)
{
  printf ("%-44s %s\n", what, pass ? "PASS" : "MISS");
}

int
main (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("tusk-bench-log-XXXXXX", &error);
  if (tmp == NULL)
    {
      fprintf (stderr, "bench-log: %s\n", error->message);
      return 1;
    }
  g_autofree char *log_dir = g_build_filename (tmp, "logs", NULL);
  ConsoleWatch watch = { 0 };
  g_mutex_init (&watch.lock);

  g_unsetenv ("TUSK_LOG");
  tusk_log_set_console_func_for_testing (console_watch, &watch);
  tusk_log_init (log_dir);
  tusk_log_set_filter ("info", NULL);
  g_autofree char *path = tusk_log_dup_file_path ();
  if (path == NULL)
    {
      fprintf (stderr, "bench-log: no log file in %s\n", log_dir);
      return 1;
    }

  /* Warm up: allocator, page cache, the call sites' filter cache. */
  for (int i = 0; i < 1000; i++)
    tusk_info ("warm-up %d", i);
  tusk_log_flush ();

  /* (a) enabled calls, a burst. */
  double t0 = now_ns ();
  for (int i = 0; i < BURST; i++)
    tusk_info ("query %d finished in %d ms: %s", i, i % 97,
               "SELECT id, name FROM accounts WHERE id = $1");
  double enabled_ns = (now_ns () - t0) / BURST;
  double t_flush = now_ns ();
  tusk_log_flush ();
  double drain_ms = (now_ns () - t_flush) / 1e6;
  guint written = count_lines (path) - 1000;

  /* (a) disabled calls. */
  t0 = now_ns ();
  for (int i = 0; i < DISABLED; i++)
    tusk_debug ("never written %d", i);
  double disabled_ns = (now_ns () - t0) / DISABLED;

  /* (a) baseline: format and write() on the caller's thread. */
  g_autofree char *baseline_path = g_build_filename (tmp, "baseline.log", NULL);
  int baseline_fd = open (baseline_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  t0 = now_ns ();
  for (int i = 0; i < BURST; i++)
    {
      g_autoptr (GDateTime) stamp = g_date_time_new_now_utc ();
      g_autofree char *when = g_date_time_format (stamp, "%FT%T.%fZ");
      char line[256];
      int n = snprintf (line, sizeof line,
                        "%s  INFO tusk-bench: query %d finished in %d ms: %s\n",
                        when, i, i % 97,
                        "SELECT id, name FROM accounts WHERE id = $1");
      if (write (baseline_fd, line, n) != n)
        break;
    }
  double baseline_ns = (now_ns () - t0) / BURST;
  close (baseline_fd);

  /* (b) latency, the writer idle before each sample. */
  gint64 file_us[SAMPLES], console_us[SAMPLES];
  int fd = open (path, O_RDONLY);
  for (int s = 0; s < SAMPLES; s++)
    {
      g_usleep (2000);
      struct stat st;
      fstat (fd, &st);
      char want[64];
      g_snprintf (want, sizeof want, "latency sample %d\n", s);
      g_mutex_lock (&watch.lock);
      g_strlcpy (watch.want, want, sizeof watch.want);
      watch.seen_at = 0;
      g_mutex_unlock (&watch.lock);

      gint64 start = g_get_monotonic_time ();
      tusk_info ("latency sample %d", s);
      while (!file_has (fd, st.st_size, want))
        g_usleep (20);
      file_us[s] = g_get_monotonic_time () - start;
      for (;;)
        {
          g_mutex_lock (&watch.lock);
          gint64 seen = watch.seen_at;
          g_mutex_unlock (&watch.lock);
          if (seen != 0)
            {
              console_us[s] = seen - start;
              break;
            }
          g_usleep (20);
        }
    }
  close (fd);
  tusk_log_shutdown ();
  tusk_log_set_console_func_for_testing (NULL, NULL);

  qsort (file_us, SAMPLES, sizeof file_us[0], compare_gint64);
  qsort (console_us, SAMPLES, sizeof console_us[0], compare_gint64);
  double file_median = (file_us[SAMPLES / 2 - 1] + file_us[SAMPLES / 2]) / 2e3;
  double file_max = file_us[SAMPLES - 1] / 1e3;
  double console_median
      = (console_us[SAMPLES / 2 - 1] + console_us[SAMPLES / 2]) / 2e3;
  double console_max = console_us[SAMPLES - 1] / 1e3;

  printf ("caller cost, enabled tusk_info (mean of %d)   %8.1f ns\n", BURST,
          enabled_ns);
  printf ("  lines written %u of %d, queue drained %.1f ms after the burst\n",
          written, BURST, drain_ms);
  printf ("caller cost, disabled tusk_debug (mean of %d) %6.1f ns\n", DISABLED,
          disabled_ns);
  printf ("baseline: format + write() per call (mean)     %8.1f ns\n",
          baseline_ns);
  printf ("latency to file, median / max (%d samples)    %6.2f / %.2f ms\n",
          SAMPLES, file_median, file_max);
  printf ("latency to console, median / max              %6.2f / %.2f ms\n",
          console_median, console_max);
  print_verdict ("enabled call < 1 us on the caller's thread",
                 enabled_ns < 1000);
  print_verdict ("every burst line written", written == BURST);
  print_verdict ("console and file < 100 ms (max)",
                 file_max < 100 && console_max < 100);

  rm_rf (tmp);
  g_mutex_clear (&watch.lock);
  return enabled_ns < 1000 && written == BURST && file_max < 100
                 && console_max < 100
             ? 0
             : 1;
}
