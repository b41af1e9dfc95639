/* test-log.c: the logging module: both sinks, rotation, pruning, fallback to
 * the console, filters, redaction, write failures, shutdown. */
#define G_LOG_DOMAIN "tusk-test"

#include "tusk-log-private.h"
#include "tusk-config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

/* Lines from other domains: the macros log under G_LOG_DOMAIN. */
#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "tusk-pool"
static void
trace_from_pool (void)
{
  tusk_trace ("pool trace");
}
#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "tusk-query"
static void
trace_from_query (void)
{
  tusk_trace ("query trace");
}
#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "tusk-test"

typedef struct
{
  char *tmp;
  char *log_dir;
  pthread_mutex_t lock; /* protects console, blocked, in_callback (not a
                          GMutex: ThreadSanitizer sees it) */
  pthread_cond_t cond;
  GString *console;
  gboolean blocked;     /* the console callback waits while set */
  gboolean in_callback; /* it was entered at least once */
  GDateTime *now;       /* the injected clock's time, or NULL */
  GLogFunc old_handler;
} Fixture;

static void
console_capture (const char *line, gpointer data)
{
  Fixture *f = data;

  pthread_mutex_lock (&f->lock);
  f->in_callback = TRUE;
  pthread_cond_broadcast (&f->cond);
  while (f->blocked)
    pthread_cond_wait (&f->cond, &f->lock);
  g_string_append (f->console, line);
  pthread_mutex_unlock (&f->lock);
}

static char *
console_dup (Fixture *f)
{
  pthread_mutex_lock (&f->lock);
  char *text = g_strdup (f->console->str);
  pthread_mutex_unlock (&f->lock);
  return text;
}

static GDateTime *
fixture_clock (gpointer data)
{
  Fixture *f = data;

  pthread_mutex_lock (&f->lock);
  GDateTime *now = g_date_time_ref (f->now);
  pthread_mutex_unlock (&f->lock);
  return now;
}

/* Injects a clock reading the given local time from now on. */
static void
set_local_time (Fixture *f, int year, int month, int day, int hour, int minute,
                double seconds)
{
  pthread_mutex_lock (&f->lock);
  g_clear_pointer (&f->now, g_date_time_unref);
  f->now = g_date_time_new_local (year, month, day, hour, minute, seconds);
  pthread_mutex_unlock (&f->lock);
  tusk_log_set_clock_for_testing (fixture_clock, f);
}

static void
rm_rf (const char *path)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          rm_rf (child);
        }
      g_rmdir (path);
    }
  else
    {
      g_unlink (path);
    }
}

static void
fixture_setup (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->tmp = g_dir_make_tmp ("tusk-log-XXXXXX", &error);
  g_assert_no_error (error);
  f->log_dir = g_build_filename (f->tmp, "logs", NULL);
  pthread_mutex_init (&f->lock, NULL);
  pthread_cond_init (&f->cond, NULL);
  f->console = g_string_new (NULL);
  f->blocked = FALSE;
  f->in_callback = FALSE;
  f->now = NULL;
  if (g_getenv ("TUSK_LOG") != NULL)
    g_unsetenv ("TUSK_LOG");
  tusk_log_set_console_func_for_testing (console_capture, f);
  /* g_test_init()'s handler echoes every g_log() message into the TAP
   * output before it reaches the writer under test: bypass it. */
  f->old_handler = g_log_set_default_handler (g_log_default_handler, NULL);
}

static void
fixture_teardown (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  tusk_log_shutdown ();
  tusk_log_set_filter (NULL, NULL);
  tusk_log_set_console_func_for_testing (NULL, NULL);
  tusk_log_set_clock_for_testing (NULL, NULL);
  if (g_getenv ("TUSK_LOG") != NULL)
    g_unsetenv ("TUSK_LOG");
  g_log_set_default_handler (f->old_handler, NULL);
  rm_rf (f->tmp);
  g_free (f->tmp);
  g_free (f->log_dir);
  g_string_free (f->console, TRUE);
  g_clear_pointer (&f->now, g_date_time_unref);
  pthread_cond_destroy (&f->cond);
  pthread_mutex_destroy (&f->lock);
}

static char *
read_text (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static guint
count (const char *haystack, const char *needle)
{
  /* Not strstr() in a loop: ASan's strstr measures the whole haystack on
   * every call, which makes that quadratic. */
  gsize len = strlen (needle);
  guint n = 0;
  for (const char *p = haystack; *p != '\0'; p++)
    if (*p == *needle && strncmp (p, needle, len) == 0)
      {
        n++;
        p += len - 1;
      }
  return n;
}

static char *
day_file (Fixture *f, const char *date)
{
  g_autofree char *name = g_strdup_printf ("tusk.%s.log", date);
  return g_build_filename (f->log_dir, name, NULL);
}

static guint
count_log_files (Fixture *f)
{
  g_autoptr (GDir) dir = g_dir_open (f->log_dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "tusk.2") && g_str_has_suffix (name, ".log")
        && strlen (name) == strlen ("tusk.YYYY-MM-DD.log"))
      n++;
  return n;
}

static void
touch (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_file_set_contents (path, "old\n", -1, &error);
  g_assert_no_error (error);
}

#define LINE_RE                                                                \
  "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z (ERROR| WARN| INFO|"   \
  "DEBUG|TRACE) [^ :]+: "

/* ---- sinks ------------------------------------------------------------- */

static void
test_console_and_file (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  set_local_time (f, 2026, 11, 23, 10, 15, 30.123456);
  tusk_log_init (f->log_dir);
  g_assert_true (tusk_log_file_active ());

  tusk_info ("hello %d", 42);
  tusk_log_flush ();

  g_autofree char *path = tusk_log_dup_file_path ();
  g_autofree char *expected_path = day_file (f, "2026-11-23");
  g_assert_cmpstr (path, ==, expected_path);

  g_autoptr (GDateTime) utc = g_date_time_to_utc (f->now);
  g_autofree char *stamp = g_date_time_format (utc, "%Y-%m-%dT%H:%M:%S.%fZ");
  g_autofree char *line
      = g_strdup_printf ("%s  INFO tusk-test: hello 42\n", stamp);
  g_autofree char *console = console_dup (f);
  g_autofree char *file = read_text (path);
  g_assert_cmpstr (console, ==, line);
  g_assert_cmpstr (file, ==, line);
  g_assert_true (
      g_regex_match_simple (LINE_RE "hello 42$", file, G_REGEX_MULTILINE, 0));
  g_assert_null (strchr (file, '\033'));

  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (f->log_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
}

static void
test_stderr (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      g_test_trap_assert_stderr ("*Z  INFO tusk-test: to stderr\n*");
      g_test_trap_assert_stderr ("*Z  WARN tusk-test: stopped, still there\n*");
      /* A pipe gets no colours. */
      g_test_trap_assert_stderr_unmatched ("*\033*");
      return;
    }

  /* The child: the real console. */
  tusk_log_set_console_func_for_testing (NULL, NULL);
  tusk_log_init (f->log_dir);
  tusk_info ("to stderr");
  tusk_log_shutdown ();
  tusk_warn ("stopped, still there");
}

static void
test_levels (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  tusk_log_init (NULL);
  g_assert_false (tusk_log_file_active ());
  g_assert_null (tusk_log_dup_file_path ());
  tusk_log_set_filter ("trace", NULL);

  tusk_info ("trailing newline\n");
  tusk_error ("e");
  tusk_warn ("w");
  tusk_info ("i");
  tusk_debug ("d");
  tusk_trace ("t");
  tusk_log (TUSK_LOG_INFO, "json", "direct %s", "call");
  tusk_log (TUSK_LOG_INFO, NULL, "no domain");
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_assert_nonnull (strstr (console, "Z ERROR tusk-test: e\n"));
  g_assert_nonnull (strstr (console, "Z  WARN tusk-test: w\n"));
  g_assert_nonnull (strstr (console, "Z  INFO tusk-test: i\n"));
  g_assert_nonnull (strstr (console, "Z DEBUG tusk-test: d\n"));
  g_assert_nonnull (strstr (console, "Z TRACE tusk-test: t\n"));
  g_assert_nonnull (strstr (console, "Z  INFO json: direct call\n"));
  g_assert_nonnull (strstr (console, "Z  INFO test-log: no domain\n"));
  g_assert_nonnull (strstr (console, ": trailing newline\n2"));
}

static void
test_shutdown_flushes (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  const guint n = 20000;

  tusk_log_init (f->log_dir);
  g_autofree char *path = tusk_log_dup_file_path ();
  for (guint i = 0; i < n; i++)
    tusk_info ("line %u", i);
  tusk_log_shutdown ();
  tusk_log_shutdown ();
  g_assert_false (tusk_log_file_active ());

  g_autofree char *file = read_text (path);
  g_assert_cmpuint (count (file, "\n"), ==, n);
  g_assert_nonnull (strstr (file, "tusk-test: line 19999\n"));
  g_autofree char *console = console_dup (f);
  g_assert_cmpuint (count (console, "\n"), ==, n);

  /* Stopped: straight to the console, no flush needed. */
  tusk_info ("after shutdown");
  g_autofree char *console2 = console_dup (f);
  g_assert_nonnull (strstr (console2, "tusk-test: after shutdown\n"));

  /* A second cycle appends to the same file. */
  tusk_log_init (f->log_dir);
  tusk_info ("second run");
  tusk_log_shutdown ();
  g_autofree char *file2 = read_text (path);
  g_assert_cmpuint (count (file2, "\n"), ==, n + 1);
  g_assert_null (strstr (file2, "after shutdown"));
  g_assert_nonnull (strstr (file2, "tusk-test: second run\n"));
}

typedef struct
{
  guint id;
} Worker;

static gpointer
log_many (gpointer data)
{
  Worker *worker = data;
  for (guint i = 0; i < 2000; i++)
    tusk_info ("thread %u line %u", worker->id, i);
  return NULL;
}

static void
test_concurrent (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  Worker workers[4];
  GThread *threads[4];

  tusk_log_init (f->log_dir);
  for (guint i = 0; i < 4; i++)
    {
      workers[i].id = i;
      threads[i] = g_thread_new ("logger", log_many, &workers[i]);
    }
  for (guint i = 0; i < 4; i++)
    g_thread_join (threads[i]);
  tusk_log_flush ();

  g_autofree char *path = tusk_log_dup_file_path ();
  g_autofree char *file = read_text (path);
  g_auto (GStrv) lines = g_strsplit (file, "\n", -1);
  g_autoptr (GRegex) re
      = g_regex_new (LINE_RE "thread [0-3] line \\d+$", 0, 0, NULL);
  g_assert_cmpuint (g_strv_length (lines), ==, 4 * 2000 + 1);
  for (guint i = 0; i < 4 * 2000; i++)
    g_assert_true (g_regex_match (re, lines[i], 0, NULL));
  g_assert_nonnull (strstr (file, "thread 3 line 1999\n"));
}

static void
test_dropped (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  tusk_log_init (NULL);

  /* Hold the writer inside the console callback, then overfill the queue. */
  pthread_mutex_lock (&f->lock);
  f->blocked = TRUE;
  pthread_mutex_unlock (&f->lock);
  tusk_info ("first");
  pthread_mutex_lock (&f->lock);
  while (!f->in_callback)
    pthread_cond_wait (&f->cond, &f->lock);
  pthread_mutex_unlock (&f->lock);

  for (guint i = 0; i < TUSK_LOG_MAX_PENDING + 5; i++)
    tusk_info ("x");

  pthread_mutex_lock (&f->lock);
  f->blocked = FALSE;
  pthread_cond_broadcast (&f->cond);
  pthread_mutex_unlock (&f->lock);
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_assert_nonnull (
      strstr (console, "WARN tusk-log: 5 log lines dropped: more than"));
  g_assert_cmpuint (count (console, "tusk-test: x\n"), ==,
                    TUSK_LOG_MAX_PENDING);
}

/* ---- files ------------------------------------------------------------- */

static void
test_rotation (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  /* 13 old files and today's make 14; the 15th day prunes the oldest. */
  g_assert_cmpint (g_mkdir_with_parents (f->log_dir, 0700), ==, 0);
  for (int day = 1; day <= 13; day++)
    {
      g_autofree char *date = g_strdup_printf ("2026-10-%02d", day);
      g_autofree char *old = day_file (f, date);
      touch (old);
    }

  set_local_time (f, 2026, 11, 23, 23, 59, 59.5);
  tusk_log_init (f->log_dir);
  tusk_info ("before midnight");
  tusk_log_flush ();
  g_assert_cmpuint (count_log_files (f), ==, 14);

  set_local_time (f, 2026, 11, 24, 0, 0, 1);
  tusk_info ("after midnight");
  tusk_log_flush ();

  g_autofree char *day1 = day_file (f, "2026-11-23");
  g_autofree char *day2 = day_file (f, "2026-11-24");
  g_autofree char *path = tusk_log_dup_file_path ();
  g_assert_cmpstr (path, ==, day2);
  g_assert_true (tusk_log_file_active ());

  g_autofree char *text1 = read_text (day1);
  g_autofree char *text2 = read_text (day2);
  g_assert_true (
      g_regex_match_simple (LINE_RE "before midnight\n$", text1, 0, 0));
  g_assert_true (
      g_regex_match_simple (LINE_RE "after midnight\n$", text2, 0, 0));

  g_autoptr (GDateTime) utc = g_date_time_to_utc (f->now);
  g_autofree char *stamp = g_date_time_format (utc, "%Y-%m-%dT%H:%M:%S");
  g_assert_true (g_str_has_prefix (text2, stamp));

  g_assert_cmpuint (count_log_files (f), ==, 14);
  g_autofree char *oldest = day_file (f, "2026-10-01");
  g_autofree char *kept = day_file (f, "2026-10-02");
  g_assert_false (g_file_test (oldest, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (kept, G_FILE_TEST_EXISTS));

  /* Both lines also reached the console. */
  g_autofree char *console = console_dup (f);
  g_assert_nonnull (strstr (console, "before midnight"));
  g_assert_nonnull (strstr (console, "after midnight"));
}

static void
test_prune (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  g_assert_cmpint (g_mkdir_with_parents (f->log_dir, 0700), ==, 0);
  for (int day = 1; day <= 20; day++)
    {
      g_autofree char *date = g_strdup_printf ("2020-01-%02d", day);
      g_autofree char *old = day_file (f, date);
      touch (old);
    }
  const char *others[] = { "notes.txt", "tusk.latest.log",
                           "tusk.2019-01-01.log.bak", "tusk.2019-1-01.log" };
  for (guint i = 0; i < G_N_ELEMENTS (others); i++)
    {
      g_autofree char *other = g_build_filename (f->log_dir, others[i], NULL);
      touch (other);
    }

  tusk_log_init (f->log_dir);
  tusk_info ("pruned");
  tusk_log_flush ();

  /* Today's file and the 13 newest old ones. */
  g_assert_cmpuint (count_log_files (f), ==, TUSK_LOG_KEEP_FILES);
  g_autofree char *gone = day_file (f, "2020-01-07");
  g_autofree char *kept = day_file (f, "2020-01-08");
  g_assert_false (g_file_test (gone, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (kept, G_FILE_TEST_EXISTS));
  for (guint i = 0; i < G_N_ELEMENTS (others); i++)
    {
      g_autofree char *other = g_build_filename (f->log_dir, others[i], NULL);
      g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
    }
}

static void
test_unwritable_dir (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  /* Tests run as root, where a 0500 directory is still writable: put the
   * log directory under a regular file instead. */
  g_autofree char *file = g_build_filename (f->tmp, "file", NULL);
  g_autofree char *log_dir = g_build_filename (file, "logs", NULL);
  touch (file);

  tusk_log_init (log_dir);
  g_assert_false (tusk_log_file_active ());
  g_assert_null (tusk_log_dup_file_path ());
  tusk_info ("still logging");
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_autofree char *warning = g_strdup_printf (
      " WARN tusk-log: cannot create the log directory %s: %s; logging to "
      "the console only\n",
      log_dir, g_strerror (ENOTDIR));
  g_assert_nonnull (strstr (console, warning));
  g_assert_cmpuint (count (console, "WARN"), ==, 1);
  g_assert_nonnull (strstr (console, "INFO tusk-test: still logging\n"));
}

static void
test_unopenable_file (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  /* The day's file name is taken by a directory. */
  set_local_time (f, 2026, 11, 23, 12, 0, 0);
  g_autofree char *path = day_file (f, "2026-11-23");
  g_assert_cmpint (g_mkdir_with_parents (path, 0700), ==, 0);

  tusk_log_init (f->log_dir);
  g_assert_false (tusk_log_file_active ());
  tusk_info ("still logging");
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_autofree char *warning = g_strdup_printf (
      " WARN tusk-log: cannot open the log file %s: %s; logging to the "
      "console only\n",
      path, g_strerror (EISDIR));
  g_assert_nonnull (strstr (console, warning));
  g_assert_nonnull (strstr (console, "INFO tusk-test: still logging\n"));
}

static void
test_write_failure (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }

  /* The child: a 16 KiB file-size limit makes write() fail with EFBIG. */
  const rlim_t limit = 16384;
  signal (SIGXFSZ, SIG_IGN);
  tusk_log_init (f->log_dir);
  g_autofree char *path = tusk_log_dup_file_path ();
  g_assert_nonnull (path);

  struct rlimit rl = { limit, limit };
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &rl), ==, 0);
  for (guint i = 0; i < 1000; i++)
    tusk_info ("line %04u %s", i, "0123456789012345678901234567890123456789");
  tusk_log_flush ();
  g_assert_false (tusk_log_file_active ());
  g_assert_null (tusk_log_dup_file_path ());

  tusk_info ("after the failure");
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_autofree char *warning = g_strdup_printf (
      " WARN tusk-log: cannot write the log file %s: %s; logging to the "
      "console only\n",
      path, g_strerror (EFBIG));
  g_assert_nonnull (strstr (console, warning));
  g_assert_cmpuint (count (console, "cannot write"), ==, 1);
  g_assert_nonnull (strstr (console, "tusk-test: line 0999 "));
  g_assert_nonnull (strstr (console, "tusk-test: after the failure\n"));

  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, <=, (goffset)limit);
  g_autofree char *file = read_text (path);
  g_assert_nonnull (strstr (file, "tusk-test: line 0000 "));
  g_assert_null (strstr (file, "after the failure"));
}

/* ---- filters ----------------------------------------------------------- */

static void
test_defaults (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  g_setenv ("TUSK_LOG", "", TRUE); /* empty is unset */
  tusk_log_init (NULL);
#if TUSK_DEBUG_BUILD
  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "tusk-pool"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "tusk"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_DEBUG, "Json"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_TRACE, "Json"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_INFO, "GLib-GIO"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_DEBUG, "GLib-GIO"));
#else
  g_assert_true (tusk_log_enabled (TUSK_LOG_INFO, "tusk-pool"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_DEBUG, "tusk-pool"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_DEBUG, "Json"));
#endif
  tusk_log_flush ();
  g_autofree char *console = console_dup (f);
  g_assert_cmpstr (console, ==, "");
}

static void
test_env_filter (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  g_setenv ("TUSK_LOG", "info,pool=loud,=,,,tusk=trace,x=", TRUE);
  tusk_log_init (f->log_dir);
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_assert_cmpuint (count (console, "WARN tusk-log: TUSK_LOG: ignoring"), ==,
                    3);
  g_assert_nonnull (strstr (console, "directive \"pool=loud\": unknown level"));
  g_assert_nonnull (strstr (console, "directive \"=\": no module"));
  g_assert_nonnull (strstr (console, "directive \"x=\": no level"));
  g_autofree char *path = tusk_log_dup_file_path ();
  g_autofree char *file = read_text (path);
  g_assert_cmpstr (file, ==, console);

  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "tusk-pool"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "tusk-query"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_INFO, "GLib-GIO"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_DEBUG, "GLib-GIO"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_DEBUG, "x"));

  /* Nothing valid at all: the build's default level stays. */
  g_auto (GStrv) problems = NULL;
  g_assert_false (tusk_log_set_filter ("loud,,=trace", &problems));
  g_assert_cmpuint (g_strv_length (problems), ==, 2);
  g_assert_true (tusk_log_enabled (TUSK_LOG_INFO, "tusk-pool"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_TRACE, "tusk-pool"));
}

static void
test_set_filter (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  g_auto (GStrv) problems = NULL;

  tusk_log_init (NULL);
  g_assert_true (tusk_log_set_filter (" warn , pool = trace ", &problems));
  g_assert_null (problems);
  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "tusk-pool"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "pool"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_TRACE, "tusk-pool-reaper"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_INFO, "tusk-poolside"));
  g_assert_false (tusk_log_enabled (TUSK_LOG_INFO, "tusk-query"));
  g_assert_true (tusk_log_enabled (TUSK_LOG_WARN, "tusk-query"));

  g_assert_false (tusk_log_set_filter ("warn,pool=,loud", &problems));
  g_assert_cmpuint (g_strv_length (problems), ==, 2);
  g_assert_nonnull (strstr (problems[0], "\"pool=\""));
  g_assert_nonnull (strstr (problems[1], "\"loud\""));
  g_assert_false (tusk_log_enabled (TUSK_LOG_INFO, "tusk-pool"));
  g_clear_pointer (&problems, g_strfreev);

  /* A directive that is not UTF-8 (found by fuzz/fuzz-log-filter.c) is
   * quoted in valid UTF-8, so that the warning can be logged. */
  g_assert_false (tusk_log_set_filter ("debug,query=o\232\230", &problems));
  g_assert_cmpuint (g_strv_length (problems), ==, 1);
  g_assert_true (g_utf8_validate (problems[0], -1, NULL));
  g_assert_nonnull (strstr (problems[0], "\"query=o\357\277\275"));

  /* Without @problems the problems are logged. */
  g_assert_false (tusk_log_set_filter ("info,tusk=blah", NULL));
  tusk_log_flush ();
  g_autofree char *console = console_dup (f);
  g_assert_nonnull (strstr (
      console, "WARN tusk-log: log filter: ignoring directive \"tusk=blah\""));

  /* Most specific wins, the later between equals; any case. */
  struct
  {
    const char *filter;
    TuskLogLevel level;
    const char *domain;
    gboolean enabled;
  } cases[] = {
    { "tusk=trace,tusk-pool=warn", TUSK_LOG_INFO, "tusk-pool", FALSE },
    { "tusk-pool=warn,tusk=trace", TUSK_LOG_INFO, "tusk-pool", FALSE },
    { "tusk=trace,tusk-pool=warn", TUSK_LOG_TRACE, "tusk-query", TRUE },
    { "tusk=warn,pool=debug", TUSK_LOG_DEBUG, "tusk-pool", TRUE },
    { "pool=debug,tusk-pool=error", TUSK_LOG_WARN, "tusk-pool", FALSE },
    { "tusk-pool=error,pool=debug", TUSK_LOG_DEBUG, "tusk-pool", TRUE },
    { "GLib=warn,GLib-GIO=debug", TUSK_LOG_DEBUG, "GLib-GIO", TRUE },
    { "GLib=warn,GLib-GIO=debug", TUSK_LOG_DEBUG, "GLib-GObject", FALSE },
    { "GLib=warn,GLib-GIO=debug", TUSK_LOG_INFO, "GLib", FALSE },
    { "glib=debug", TUSK_LOG_DEBUG, "GLib-GIO", TRUE },
    { "POOL=Trace", TUSK_LOG_TRACE, "tusk-pool", TRUE },
    { "error,tusk=trace", TUSK_LOG_WARN, "tuskfoo", FALSE },
    { "trace,tusk=off", TUSK_LOG_ERROR, "tusk-pool", FALSE },
    { "trace,tusk=off", TUSK_LOG_TRACE, "libsecret", TRUE },
    { "off", TUSK_LOG_ERROR, "anything", FALSE },
    { "error,test-log=info", TUSK_LOG_INFO, NULL, TRUE },
    { "info,test=trace", TUSK_LOG_TRACE, "tusk-test", TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_assert_true (tusk_log_set_filter (cases[i].filter, NULL));
      if (tusk_log_enabled (cases[i].level, cases[i].domain)
          != cases[i].enabled)
        g_test_fail_printf ("filter \"%s\": level %d of %s should be %s",
                            cases[i].filter, cases[i].level, cases[i].domain,
                            cases[i].enabled ? "enabled" : "disabled");
    }
}

static void
test_call_sites (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  tusk_log_init (NULL);

  tusk_log_set_filter ("info,pool=trace", NULL);
  trace_from_pool ();
  trace_from_query ();
  tusk_log_set_filter ("info,query=TRACE,pool=off", NULL);
  trace_from_pool ();
  trace_from_query ();
  tusk_log_set_filter ("info", NULL);
  trace_from_pool ();
  trace_from_query ();
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_assert_cmpuint (count (console, "TRACE tusk-pool: pool trace\n"), ==, 1);
  g_assert_cmpuint (count (console, "TRACE tusk-query: query trace\n"), ==, 1);
  g_assert_cmpuint (count (console, "\n"), ==, 2);
}

static void
test_glib_messages (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  tusk_log_init (NULL);
  tusk_log_set_filter ("info,GLib-GIO=warn", NULL);

  g_message ("from glib %d", 1);
  g_log ("Json", G_LOG_LEVEL_MESSAGE, "json says hi");
  g_log ("GLib-GIO", G_LOG_LEVEL_MESSAGE, "hidden message");
  g_log ("GLib-GIO", G_LOG_LEVEL_DEBUG, "hidden debug");
  g_debug ("hidden debug too");

  /* g_test_init() makes warnings fatal; what matters is that our writer
   * does not abort by itself. */
  GLogLevelFlags fatal
      = g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_warning ("careful");
  g_log ("GLib-GIO", G_LOG_LEVEL_WARNING, "gio warning");
  g_log_set_always_fatal (fatal);
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_assert_nonnull (strstr (console, " INFO tusk-test: from glib 1\n"));
  g_assert_nonnull (strstr (console, " INFO Json: json says hi\n"));
  g_assert_nonnull (strstr (console, " WARN tusk-test: careful\n"));
  g_assert_nonnull (strstr (console, " WARN GLib-GIO: gio warning\n"));
  g_assert_null (strstr (console, "hidden"));
}

/* ---- redaction --------------------------------------------------------- */

static void
test_redact_logged (Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  tusk_log_init (f->log_dir);
  tusk_info ("connecting with %s", "host=db user=bob password=s3cr3t-A");
  tusk_info ("uri %s", "postgresql://bob:s3cr3t-B@db.example.com:5432/app");
  tusk_info ("query postgres://db.example.com/app?user=bob&password=s3cr3t-C");
  tusk_warn ("config {\"password\": \"s3cr3t-D\", \"user\": \"bob\"}");
  g_message ("glib %s", "password='s3cr3t E'");
  tusk_log_flush ();

  g_autofree char *console = console_dup (f);
  g_autofree char *path = tusk_log_dup_file_path ();
  g_autofree char *file = read_text (path);
  const char *sinks[] = { console, file };
  for (guint i = 0; i < G_N_ELEMENTS (sinks); i++)
    {
      g_assert_null (strstr (sinks[i], "s3cr3t"));
      g_assert_cmpuint (count (sinks[i], "********"), ==, 5);
      g_assert_nonnull (strstr (sinks[i], "user=bob password=********\n"));
      g_assert_nonnull (strstr (sinks[i], "bob:********@db.example.com"));
    }
}

static void
test_redact_cases (void)
{
  const struct
  {
    const char *in;
    const char *out; /* NULL: unchanged */
  } cases[] = {
    { "host=db password=secret user=bob",
      "host=db password=******** user=bob" },
    { "password = secret", "password = ********" },
    { "password='it''s \\' quoted' user=bob", "password='********' user=bob" },
    { "PASSWORD=secret", "PASSWORD=********" },
    { "password=", NULL },
    { "password=''", "password='********'" },
    { "password='unterminated secret", "password='********" },
    { "password='a\\", "password='********" },
    { "password=\"", "password=\"********" },
    { "postgres://user:secret@host/db", "postgres://user:********@host/db" },
    { "POSTGRESQL://user:secret@h1:5432,h2:5433/db?sslmode=require",
      "POSTGRESQL://user:********@h1:5432,h2:5433/db?sslmode=require" },
    { "postgresql://u:p@ss:w/rd?#@host/db", "postgresql://u:********@host/db" },
    { "postgres://user@host/db", NULL },
    { "postgres://host:5432/db", NULL },
    { "postgres://host/db?user=bob&password=secret",
      "postgres://host/db?user=bob&password=********" },
    { "postgres://host/db?password=secret&sslmode=require",
      "postgres://host/db?password=********" },
    { "see postgres://a:b@c and postgres://d:e@f.",
      "see postgres://a:********@c and postgres://d:********@f." },
    { "ssh://deploy:hunter2@bastion:22", "ssh://deploy:********@bastion:22" },
    { "sshpass=hunter2 port=22", "sshpass=******** port=22" },
    { "ssh_key_passphrase: 'correct horse'", "ssh_key_passphrase: '********'" },
    { "{\"password\": \"se\\\"cret\", \"user\": \"bob\"}",
      "{\"password\": \"********\", \"user\": \"bob\"}" },
    { "{'db_password':'x'}", "{'db_password':'********'}" },
    { "PGPASSWORD=secret psql", "PGPASSWORD=******** psql" },
    { "--passwd=x --pwd=y", "--passwd=******** --pwd=********" },
    { "password authentication failed for user \"bob\"", NULL },
    { "fe_sendauth: no password supplied", NULL },
    { "passfile=/home/bob/.pgpass cwd=/tmp", NULL },
    { "\xff\xfepassword=\xc3secret \xc3", "\xff\xfepassword=******** \xc3" },
    { "", NULL },
    { "://", NULL },
    { "://@", NULL },
    { "://:@", "://:********@" },
    { "a://b:c@", "a://b:********@" },
    { "password://x:y@z", "password://x:********@z" },
    { "::::@@@@", NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = tusk_log_redact (cases[i].in);
      g_assert_cmpstr (out, ==,
                       cases[i].out != NULL ? cases[i].out : cases[i].in);
    }
  g_assert_null (tusk_log_redact (NULL));

  /* Malformed input of every shape: no crash, no overrun (ASan), and a
   * secret after "password=" never survives. */
  const char alphabet[] = "pasword=:'\"\\@/?&# \tx\xc3";
  for (guint round = 0; round < 5000; round++)
    {
      char text[64];
      guint len = (guint)g_test_rand_int_range (0, sizeof text - 20);
      for (guint i = 0; i < len; i++)
        text[i] = alphabet[g_test_rand_int_range (0, sizeof alphabet - 1)];
      text[len] = '\0';
      g_autofree char *out = tusk_log_redact (text);
      g_assert_nonnull (out);

      g_autofree char *with_secret
          = g_strconcat (text, " password=SECRET", NULL);
      g_autofree char *masked = tusk_log_redact (with_secret);
      g_assert_null (strstr (masked, "SECRET"));
    }
}

/* ---- console colours --------------------------------------------------- */

static void
test_color (G_GNUC_UNUSED Fixture *f, G_GNUC_UNUSED gconstpointer data)
{
  int master = posix_openpt (O_RDWR | O_NOCTTY);
  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  int terminal = open (ptsname (master), O_RDWR | O_NOCTTY);
  g_assert_cmpint (terminal, >=, 0);
  int fds[2];
  g_assert_cmpint (pipe (fds), ==, 0);

  g_autofree char *no_color = g_strdup (g_getenv ("NO_COLOR"));
  g_autofree char *term = g_strdup (g_getenv ("TERM"));

  g_unsetenv ("NO_COLOR");
  g_setenv ("TERM", "xterm-256color", TRUE);
  g_assert_true (tusk_log_fd_wants_color (terminal));
  g_assert_false (tusk_log_fd_wants_color (fds[1]));
  g_setenv ("NO_COLOR", "", TRUE);
  g_assert_true (tusk_log_fd_wants_color (terminal));
  g_setenv ("NO_COLOR", "1", TRUE);
  g_assert_false (tusk_log_fd_wants_color (terminal));
  g_unsetenv ("NO_COLOR");
  g_setenv ("TERM", "dumb", TRUE);
  g_assert_false (tusk_log_fd_wants_color (terminal));

  if (no_color != NULL)
    g_setenv ("NO_COLOR", no_color, TRUE);
  else
    g_unsetenv ("NO_COLOR");
  if (term != NULL)
    g_setenv ("TERM", term, TRUE);
  else
    g_unsetenv ("TERM");
  close (fds[0]);
  close (fds[1]);
  close (terminal);
  close (master);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                        \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/tusk/log/console-and-file", test_console_and_file);
  ADD ("/tusk/log/stderr", test_stderr);
  ADD ("/tusk/log/levels", test_levels);
  ADD ("/tusk/log/shutdown-flushes", test_shutdown_flushes);
  ADD ("/tusk/log/concurrent", test_concurrent);
  ADD ("/tusk/log/dropped", test_dropped);
  ADD ("/tusk/log/rotation", test_rotation);
  ADD ("/tusk/log/prune", test_prune);
  ADD ("/tusk/log/unwritable-dir", test_unwritable_dir);
  ADD ("/tusk/log/unopenable-file", test_unopenable_file);
  ADD ("/tusk/log/write-failure", test_write_failure);
  ADD ("/tusk/log/filter/defaults", test_defaults);
  ADD ("/tusk/log/filter/env", test_env_filter);
  ADD ("/tusk/log/filter/set", test_set_filter);
  ADD ("/tusk/log/filter/call-sites", test_call_sites);
  ADD ("/tusk/log/glib-messages", test_glib_messages);
  ADD ("/tusk/log/redact/logged", test_redact_logged);
  g_test_add_func ("/tusk/log/redact/cases", test_redact_cases);
  ADD ("/tusk/log/color", test_color);

#undef ADD
  return g_test_run ();
}
