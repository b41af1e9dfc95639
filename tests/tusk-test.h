/* tusk-test.h: what every test program shares: the test environment's
 * coordinates (scripts/test-env.sh, docs/TEST-ENV.md) and a few helpers.
 *
 * A test that needs a service it was not given fails; it never skips.
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "tusk-log-private.h"
#include "tusk-state.h"

/* Returns (transfer none) the value of the test-environment variable @name;
 * aborts the test with a message when it is missing. */
static inline const char *
tusk_test_env (const char *name)
{
  const char *value = g_getenv (name);
  if (value == NULL || *value == '\0')
    g_error ("%s is not set: run the tests through scripts/test-env.sh "
             "(make test)",
             name);
  return value;
}

/* Runs the default main context until @done (@data) answers TRUE, failing
 * the test after @timeout_ms. */
static inline void
tusk_test_wait_until (gboolean (*done) (gpointer data), gpointer data,
                      guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;
  while (!done (data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out after %u ms", timeout_ms);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (100);
    }
}

static inline gboolean
tusk_test_flag_is_set (gpointer flag)
{
  return *(gboolean *)flag;
}

/* Runs the default main context until *@flag becomes TRUE, failing the
 * test after @timeout_ms. */
static inline void
tusk_test_wait_for (gboolean *flag, guint timeout_ms)
{
  tusk_test_wait_until (tusk_test_flag_is_set, flag, timeout_ms);
}

/* Asserts that @error is a TUSK_ERROR of @code, printing it otherwise. */
#define tusk_assert_error(err, expected)                                       \
  G_STMT_START                                                                 \
  {                                                                            \
    const GError *e_ = (err);                                                  \
    if (e_ == NULL)                                                            \
      g_error ("expected a %s error, got none", #expected);                    \
    if (e_->domain != TUSK_ERROR || e_->code != (int)(expected))               \
      g_error ("expected a %s error, got %s %d: %s", #expected,                \
               g_quark_to_string (e_->domain), e_->code, e_->message);         \
  }                                                                            \
  G_STMT_END

/* Returns (transfer none) @state's storage, opened if need be; the test
 * fails when it does not open. */
static inline TuskStorage *
tusk_test_open_storage (TuskState *state)
{
  GError *error = NULL;
  TuskStorage *storage = tusk_state_open_storage (state, &error);
  g_assert_no_error (error);
  return storage;
}

/* The log's console lines, captured from whichever thread writes them
 * (tusk_log_set_console_func_for_testing()).  A pthread lock, not a
 * GMutex: ThreadSanitizer sees it. */
typedef struct
{
  pthread_mutex_t lock;
  GString *text;
} TuskTestConsole;

static inline void
tusk_test_console_capture (const char *line, gpointer data)
{
  TuskTestConsole *console = data;
  pthread_mutex_lock (&console->lock);
  g_string_append (console->text, line);
  pthread_mutex_unlock (&console->lock);
}

/* Starts capturing into @console (the caller's storage). */
static inline void
tusk_test_console_start (TuskTestConsole *console)
{
  pthread_mutex_init (&console->lock, NULL);
  console->text = g_string_new (NULL);
  tusk_log_set_console_func_for_testing (tusk_test_console_capture, console);
}

/* Returns (transfer full) what was captured, once the log has written what
 * was logged so far. */
static inline char *
tusk_test_console_dup (TuskTestConsole *console)
{
  tusk_log_flush ();
  pthread_mutex_lock (&console->lock);
  char *text = g_strdup (console->text->str);
  pthread_mutex_unlock (&console->lock);
  return text;
}

/* Stops capturing and frees what @console holds. */
static inline void
tusk_test_console_stop (TuskTestConsole *console)
{
  tusk_log_set_console_func_for_testing (NULL, NULL);
  g_string_free (console->text, TRUE);
  pthread_mutex_destroy (&console->lock);
}

/* Removes @path and, for a directory, everything below it, without
 * following symbolic links.  Directories are made writable first (a test
 * may leave one at 0500). */
static inline void
tusk_test_remove_tree (const char *path)
{
  GStatBuf st;
  if (g_lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
    {
      g_chmod (path, 0700);
      GDir *dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)))
        {
          char *child = g_build_filename (path, name, NULL);
          tusk_test_remove_tree (child);
          g_free (child);
        }
      if (dir)
        g_dir_close (dir);
    }
  g_remove (path);
}

/* Copies the WAL that Tusk's storage keeps after a close into the database
 * file at @db_path and removes it (the raw connection checkpoints on
 * close), so that a test which damages the file between runs damages every
 * page.  Call with no storage open on the file. */
static inline void
tusk_test_checkpoint (const char *db_path)
{
  sqlite3 *db = NULL;
  g_assert_cmpint (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READWRITE, NULL),
                   ==, SQLITE_OK);
  g_assert_cmpint (
      sqlite3_exec (db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
      ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_close (db), ==, SQLITE_OK);
  char *wal = g_strconcat (db_path, "-wal", NULL);
  g_assert_false (g_file_test (wal, G_FILE_TEST_EXISTS));
  g_free (wal);
}
