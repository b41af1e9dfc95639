/* test-repl.c: the interactive shell, driven at a real terminal: the
 * `tusk` binary runs in tmux (a private server, `tmux -L`), keys go in with
 * send-keys and the screen comes back with capture-pane.  Every wait polls
 * the screen until the expected text appears; its deadline only bounds a
 * failure, it is not a timing assertion.
 *
 * The shell connects to a saved connection ("shop", role tusk_pw, color
 * #ff8800) whose password went into the test keyring through
 * `tusk conn add … --password-stdin`, in a database of its own created by
 * main() and dropped at the end.
 *
 * Needs the postgres and keyring services (scripts/test-env.sh) and tmux. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "tusk.h"
#include "tusk-test.h"

#define CONN           "shop"
#define WAIT_MS        20000 /* failure bound of every wait */
#define SESSION_WIDTH  "160"
#define SESSION_HEIGHT "50"

static char *test_db;
static char *data_dir; /* the shell's --data-dir, shared by the cases */
static char *home_dir; /* HOME for the shell: no ~/.editrc, no ~/.pgpass */
static char *tusk_path;
static char *tmux_socket;

/* ---- the database ----------------------------------------------------- */

static const char fixture_sql[]
    = "SET ROLE tusk_pw;"
      "CREATE TABLE authors (id integer PRIMARY KEY, name text NOT NULL);"
      "CREATE TABLE books (id integer PRIMARY KEY, title text NOT NULL,"
      " author_id integer REFERENCES authors, published date);"
      "CREATE TABLE reviews (id integer PRIMARY KEY, book_id integer"
      " REFERENCES books, stars integer);"
      "INSERT INTO authors VALUES (1, 'Frank Herbert'), (2, 'Jane Austen'),"
      " (3, 'Stanisław Lem');"
      "INSERT INTO books VALUES (1, 'Dune', 1, '1965-08-01'),"
      " (2, 'Emma', 2, '1815-12-23'), (3, 'Solaris', 3, '1961-06-01');";

static PGconn *
admin_connect (const char *dbname)
{
  const char *keys[] = { "host", "port", "user", "dbname", NULL };
  const char *values[]
      = { tusk_test_env ("TUSK_TEST_PGHOST"),
          tusk_test_env ("TUSK_TEST_PGPORT"),
          tusk_test_env ("TUSK_TEST_PGUSER_TRUST"), dbname, NULL };
  PGconn *pg = PQconnectdbParams (keys, values, 0);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect to %s: %s", dbname, PQerrorMessage (pg));
  return pg;
}

static void
admin_exec (PGconn *pg, const char *sql)
{
  PGresult *res = PQexec (pg, sql);
  ExecStatusType status = PQresultStatus (res);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    g_error ("%.80s: %s", sql, PQerrorMessage (pg));
  PQclear (res);
}

/* Whether a backend of the test database is running @query_prefix now. */
static gboolean
query_is_active (const char *query_prefix)
{
  PGconn *pg = admin_connect (test_db);
  const char *params[] = { test_db, query_prefix };
  PGresult *res
      = PQexecParams (pg,
                      "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                      " AND state = 'active' AND starts_with (query, $2)",
                      2, NULL, params, NULL, NULL, 0);
  gboolean active = PQresultStatus (res) == PGRES_TUPLES_OK
                    && atoi (PQgetvalue (res, 0, 0)) > 0;
  PQclear (res);
  PQfinish (pg);
  return active;
}

/* ---- tmux ------------------------------------------------------------- */

/* Runs tmux on the private socket with the NULL-terminated arguments;
 * returns (transfer full) its standard output, failing the test when it
 * fails. */
static char *
tmux (const char *first, ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, "tmux");
  g_ptr_array_add (argv, "-L");
  g_ptr_array_add (argv, tmux_socket);
  g_ptr_array_add (argv, "-f");
  g_ptr_array_add (argv, "/dev/null");
  va_list ap;
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer)a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  if (!g_spawn_sync (NULL, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH,
                     NULL, NULL, &out, &err, &status, &error))
    g_error ("tmux: %s (tmux is installed by scripts/deps.sh)", error->message);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("tmux %s failed: %s", first, err);
  return g_steal_pointer (&out);
}

/* The arguments of `tmux kill-server`, ready for the fatal-signal handler
 * (which may only fork and exec). */
static char *kill_argv[8];

static void
kill_tmux_and_die (int signum)
{
  pid_t pid = fork ();
  if (pid == 0)
    {
      execvp ("tmux", kill_argv);
      _exit (127);
    }
  if (pid > 0)
    waitpid (pid, NULL, 0);
  signal (signum, SIG_DFL);
  raise (signum);
}

typedef struct
{
  char *name; /* the tmux session */
} Term;

/* Starts `tusk --data-dir DATA_DIR @args` at a 160×50 terminal in a new
 * tmux session; when it exits the pane shows "[tusk exited N]". */
static void
term_start (Term *t, const char *name, const char *env, const char *args)
{
  g_autofree char *q_home = g_shell_quote (home_dir);
  g_autofree char *q_tusk = g_shell_quote (tusk_path);
  g_autofree char *q_data = g_shell_quote (data_dir);
  g_autofree char *q_bus
      = g_shell_quote (tusk_test_env ("DBUS_SESSION_BUS_ADDRESS"));
  g_autofree char *command = g_strdup_printf (
      "env -u CI -u NO_COLOR -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE"
      " -u PGPASSWORD HOME=%s LANG=C.UTF-8 LC_ALL=C.UTF-8"
      " TERM=xterm-256color PAGER= DBUS_SESSION_BUS_ADDRESS=%s %s"
      " %s --data-dir %s %s; echo \"[tusk exited $?]\"; exec sleep 300",
      q_home, q_bus, env ? env : "", q_tusk, q_data, args);
  t->name = g_strdup (name);
  g_free (tmux ("new-session", "-d", "-s", name, "-x", SESSION_WIDTH, "-y",
                SESSION_HEIGHT, command, NULL));
}

static void
term_stop (Term *t)
{
  g_free (tmux ("kill-session", "-t", t->name, NULL));
  g_clear_pointer (&t->name, g_free);
}

/* Returns (transfer full) the screen and its scroll-back, wrapped lines
 * joined, trailing blanks removed. */
static char *
term_capture (Term *t, gboolean escapes)
{
  return tmux ("capture-pane", "-p", "-J", escapes ? "-e" : "-J", "-S", "-2000",
               "-t", t->name, NULL);
}

/* Returns (transfer full) the last line of the screen that is not blank. */
static char *
last_line (const char *screen)
{
  g_auto (GStrv) lines = g_strsplit (screen, "\n", -1);
  for (int i = (int)g_strv_length (lines) - 1; i >= 0; i--)
    {
      g_strchomp (lines[i]);
      if (*lines[i] != '\0')
        return g_strdup (lines[i]);
    }
  return g_strdup ("");
}

static guint
count (const char *haystack, const char *needle)
{
  guint n = 0;
  for (const char *p = strstr (haystack, needle); p != NULL;
       p = strstr (p + strlen (needle), needle))
    n++;
  return n;
}

/* Waits until the screen shows @text at least @times times; returns
 * (transfer full) the screen then. */
static char *
term_wait_count (Term *t, const char *text, guint times)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)WAIT_MS * 1000;
  for (;;)
    {
      g_autofree char *screen = term_capture (t, FALSE);
      if (count (screen, text) >= times)
        return g_steal_pointer (&screen);
      if (g_get_monotonic_time () > deadline)
        g_error ("the screen never showed \"%s\" %u times; it shows:\n%s", text,
                 times, screen);
      g_usleep (20000);
    }
}

static char *
term_wait (Term *t, const char *text)
{
  return term_wait_count (t, text, 1);
}

/* Waits until the last line of the screen is @line (trailing blanks
 * ignored): a prompt with nothing after it, or a line being edited.
 * Returns FALSE instead of failing when @bound_ms passes, if it is not 0. */
static gboolean
term_wait_last (Term *t, const char *line, guint bound_ms)
{
  gint64 deadline = g_get_monotonic_time ()
                    + (gint64)(bound_ms ? bound_ms : WAIT_MS) * 1000;
  for (;;)
    {
      g_autofree char *screen = term_capture (t, FALSE);
      g_autofree char *last = last_line (screen);
      if (g_str_equal (last, line))
        return TRUE;
      if (g_get_monotonic_time () > deadline)
        {
          if (bound_ms)
            return FALSE;
          g_error ("the last line never became \"%s\"; the screen is:\n%s",
                   line, screen);
        }
      g_usleep (20000);
    }
}

/* Sends key names (Enter, Tab, C-c, Up …). */
static void
term_keys (Term *t, const char *key)
{
  g_free (tmux ("send-keys", "-t", t->name, key, NULL));
}

/* Types @text literally.  tmux reads an argument that ends in ';' as a
 * command separator, so a ';' goes as "\;" of its own. */
static void
term_type (Term *t, const char *text)
{
  g_auto (GStrv) parts = g_strsplit (text, ";", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      if (*parts[i] != '\0')
        g_free (tmux ("send-keys", "-t", t->name, "-l", parts[i], NULL));
      if (parts[i + 1] != NULL)
        g_free (tmux ("send-keys", "-t", t->name, "-l", "\\;", NULL));
    }
}

/* Types @text, presses Enter, and waits until @prompt is the last line
 * again; returns (transfer full) the screen. */
static char *
term_run (Term *t, const char *text, const char *prompt)
{
  term_type (t, text);
  term_keys (t, "Enter");
  term_wait_last (t, prompt, 0);
  return term_capture (t, FALSE);
}

/* Starts the shell on the saved connection and waits for its prompt. */
static void
term_start_shell (Term *t, const char *name)
{
  term_start (t, name, NULL, CONN);
  term_wait_last (t, CONN "=>", 0);
}

/* ---- cases ------------------------------------------------------------ */

static void
test_connect_keychain (void)
{
  Term t = { 0 };
  term_start_shell (&t, "connect");
  g_autofree char *screen = term_capture (&t, FALSE);
  g_autofree char *welcome
      = g_strdup_printf ("tusk %s (server 15.", TUSK_VERSION_STRING);
  g_assert_nonnull (strstr (screen, welcome));
  g_assert_nonnull (strstr (screen, "Type \"\\?\" for help."));
  /* The password came from the keychain: nobody was asked. */
  g_assert_null (strstr (screen, "assword"));

  g_autofree char *user = term_run (&t, "SELECT current_user;", CONN "=>");
  g_assert_nonnull (strstr (user, "tusk_pw"));

  /* The name in the connection's color, #ff8800, as a 24-bit color. */
  g_autofree char *colored = term_capture (&t, TRUE);
  g_assert_nonnull (strstr (colored, "38;2;255;136;0m" CONN));
  term_stop (&t);

  /* No color with NO_COLOR, nor on a dumb terminal. */
  term_start (&t, "no-color", "NO_COLOR=1", CONN);
  term_wait_last (&t, CONN "=>", 0);
  g_autofree char *plain = term_capture (&t, TRUE);
  g_assert_null (strstr (plain, "38;2;255;136;0m"));
  term_stop (&t);
}

static void
test_query (void)
{
  Term t = { 0 };
  term_start_shell (&t, "query");
  g_autofree char *screen
      = term_run (&t, "SELECT title FROM books ORDER BY id;", CONN "=>");
  g_assert_nonnull (strstr (screen, " Dune"));
  g_assert_nonnull (strstr (screen, " Emma"));
  g_assert_nonnull (strstr (screen, " Solaris"));
  g_assert_nonnull (strstr (screen, "(3 rows)"));
  term_stop (&t);
}

static void
test_multi_line (void)
{
  Term t = { 0 };
  term_start_shell (&t, "multi");
  /* A statement goes on until its ';', under the '-' prompt. */
  term_type (&t, "SELECT title");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "->", 0);
  term_type (&t, "FROM books");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "->", 0);
  g_autofree char *one = term_run (&t, "WHERE id = 2;", CONN "=>");
  g_assert_nonnull (strstr (one, " Emma"));
  g_assert_cmpuint (count (one, "(1 row)"), ==, 1);

  /* Inside quotes and parentheses the prompt says so. */
  term_type (&t, "SELECT 'one");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "'>", 0);
  g_autofree char *two = term_run (&t, "two' AS joined;", CONN "=>");
  g_assert_nonnull (strstr (two, "joined"));
  term_type (&t, "SELECT (1 +");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "(>", 0);
  g_autofree char *three = term_run (&t, "2) AS three;", CONN "=>");
  g_assert_nonnull (strstr (three, "three"));
  g_assert_cmpuint (count (three, "(1 row)"), ==, 3);

  /* \r forgets the statement in progress. */
  term_type (&t, "SELECT nothing +");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "->", 0);
  g_autofree char *reset = term_run (&t, "\\r", CONN "=>");
  g_assert_nonnull (strstr (reset, "Query buffer reset (cleared)."));
  g_autofree char *four = term_run (&t, "SELECT 4 AS four;", CONN "=>");
  g_assert_cmpuint (count (four, "(1 row)"), ==, 4);
  g_assert_null (strstr (four, "ERROR"));
  term_stop (&t);
}

static gboolean
sleep_is_active (gpointer data)
{
  (void)data;
  return query_is_active ("SELECT pg_sleep(30)");
}

static void
test_cancel (void)
{
  Term t = { 0 };
  term_start_shell (&t, "cancel");
  term_type (&t, "SELECT pg_sleep(30);");
  term_keys (&t, "Enter");
  tusk_test_wait_until (sleep_is_active, NULL, WAIT_MS);

  gint64 start = g_get_monotonic_time ();
  term_keys (&t, "C-c");
  g_autofree char *screen
      = term_wait (&t, "ERROR:  canceling statement due to user request");
  term_wait_last (&t, CONN "=>", 0);
  double ms = (g_get_monotonic_time () - start) / 1000.0;
  g_test_message ("Ctrl-C to the prompt: %.0f ms (screen polled every 20 ms)",
                  ms);
  /* Not a timing assertion: only proof that the 30 s sleep did not run
   * out. */
  g_assert_cmpfloat (ms, <, 15000);

  /* The session is clean and still the shell's. */
  g_autofree char *after
      = term_run (&t, "SELECT 'after cancel' AS state;", CONN "=>");
  g_assert_nonnull (strstr (after, "after cancel"));
  g_assert_null (strstr (after, "[tusk exited"));
  term_stop (&t);
}

static void
test_ctrl_c_idle (void)
{
  Term t = { 0 };
  term_start_shell (&t, "idle");
  /* On a half-typed line: the line goes, the shell stays. */
  term_type (&t, "SELECT 'junk");
  term_wait_last (&t, CONN "=> SELECT 'junk", 0);
  term_keys (&t, "C-c");
  term_wait_last (&t, CONN "=>", 0);
  /* On a statement's second line: the whole statement goes. */
  term_type (&t, "SELECT 1 +");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "->", 0);
  term_keys (&t, "C-c");
  term_wait_last (&t, CONN "=>", 0);

  g_autofree char *screen
      = term_run (&t, "SELECT 'fresh' AS marker;", CONN "=>");
  g_assert_nonnull (strstr (screen, " fresh"));
  g_assert_cmpuint (count (screen, "(1 row)"), ==, 1);
  g_assert_null (strstr (screen, "ERROR"));
  g_assert_null (strstr (screen, "[tusk exited"));
  term_stop (&t);
}

/* Types @text, presses Tab and waits for @line as the last line; the
 * schema snapshot loads in the background after connecting, so until it
 * is there the line is cleared (Ctrl-C) and typed again. */
static void
complete_until (Term *t, const char *prompt, const char *text, const char *line)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)WAIT_MS * 1000;
  for (;;)
    {
      term_type (t, text);
      term_keys (t, "Tab");
      if (term_wait_last (t, line, 2000))
        return;
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *screen = term_capture (t, FALSE);
          g_error ("Tab never completed \"%s\" to \"%s\":\n%s", text, line,
                   screen);
        }
      term_keys (t, "C-c");
      term_wait_last (t, prompt, 0);
    }
}

static void
test_complete_table (void)
{
  Term t = { 0 };
  term_start_shell (&t, "complete-table");
  complete_until (&t, CONN "=>", "SELECT title FROM boo",
                  CONN "=> SELECT title FROM books");
  g_autofree char *screen = term_run (&t, "WHERE id = 3;", CONN "=>");
  g_assert_nonnull (strstr (screen, " Solaris"));

  /* Ambiguous: the candidates are listed under the line. */
  term_type (&t, "SELECT * FROM ");
  term_keys (&t, "Tab");
  g_autofree char *list = term_wait (&t, "reviews");
  g_assert_nonnull (strstr (list, "authors"));
  g_assert_nonnull (strstr (list, "books"));
  term_wait_last (&t, CONN "=> SELECT * FROM", 0);
  term_keys (&t, "C-c");
  term_wait_last (&t, CONN "=>", 0);
  term_stop (&t);
}

static void
test_complete_column (void)
{
  Term t = { 0 };
  term_start_shell (&t, "complete-column");
  /* A column in WHERE. */
  complete_until (&t, CONN "=>", "SELECT title FROM books WHERE pub",
                  CONN "=> SELECT title FROM books WHERE published");
  g_autofree char *one = term_run (&t, "< '1900-01-01';", CONN "=>");
  g_assert_nonnull (strstr (one, " Emma"));

  /* alias.column, the alias on the statement's first line. */
  term_type (&t, "SELECT b.id FROM books b");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "->", 0);
  term_type (&t, "WHERE b.ti");
  term_keys (&t, "Tab");
  term_wait_last (&t, CONN "-> WHERE b.title", 0);
  g_autofree char *two = term_run (&t, "= 'Dune';", CONN "=>");
  g_assert_cmpuint (count (two, "(1 row)"), ==, 2);
  term_stop (&t);
}

static void
test_describe (void)
{
  Term t = { 0 };
  term_start_shell (&t, "describe");
  g_autofree char *screen = term_run (&t, "\\d books", CONN "=>");
  g_assert_nonnull (strstr (screen, "Table \"public.books\""));
  g_assert_nonnull (strstr (screen, "title"));
  g_assert_nonnull (strstr (screen, "author_id"));
  term_stop (&t);
}

static void
test_expanded (void)
{
  Term t = { 0 };
  term_start_shell (&t, "expanded");
  g_autofree char *on = term_run (&t, "\\x", CONN "=>");
  g_assert_nonnull (strstr (on, "Expanded display is on."));
  g_autofree char *screen
      = term_run (&t, "SELECT id, title FROM books WHERE id = 1;", CONN "=>");
  g_assert_nonnull (strstr (screen, "-[ RECORD 1 ]"));
  g_assert_nonnull (strstr (screen, "title | Dune"));
  term_stop (&t);
}

static void
test_timing (void)
{
  Term t = { 0 };
  term_start_shell (&t, "timing");
  g_autofree char *on = term_run (&t, "\\timing", CONN "=>");
  g_assert_nonnull (strstr (on, "Timing is on."));
  g_autofree char *screen = term_run (&t, "SELECT 1 AS one;", CONN "=>");
  g_assert_nonnull (strstr (screen, "Time: "));
  g_assert_nonnull (strstr (screen, " ms"));
  term_stop (&t);
}

static void
test_transaction_prompt (void)
{
  Term t = { 0 };
  term_start_shell (&t, "transaction");
  g_free (term_run (&t, "BEGIN;", CONN "=*>"));
  g_autofree char *failed = term_run (&t, "SELECT 1/0;", CONN "=!>");
  g_assert_nonnull (strstr (failed, "division by zero"));
  g_free (term_run (&t, "ROLLBACK;", CONN "=>"));
  /* The transaction's marks show on continuation lines too. */
  g_free (term_run (&t, "BEGIN;", CONN "=*>"));
  term_type (&t, "SELECT 1");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "-*>", 0);
  g_free (term_run (&t, ";", CONN "=*>"));
  g_free (term_run (&t, "COMMIT;", CONN "=>"));
  term_stop (&t);
}

static void
test_history (void)
{
  Term t = { 0 };
  term_start_shell (&t, "history-1");
  g_free (term_run (&t, "SELECT 'hist-one' AS h1;", CONN "=>"));
  term_type (&t, "SELECT 'hist-two'");
  term_keys (&t, "Enter");
  term_wait_last (&t, CONN "->", 0);
  g_free (term_run (&t, "AS h2;", CONN "=>"));

  /* Up: the two-line statement comes back whole and runs again. */
  term_keys (&t, "Up");
  term_wait_last (&t, "AS h2;", 0);
  term_keys (&t, "Enter");
  g_autofree char *again = term_wait_count (&t, "(1 row)", 3);
  term_wait_last (&t, CONN "=>", 0);
  g_assert_cmpuint (count (again, " hist-two"), ==, 2);
  g_free (term_run (&t, "\\q", "[tusk exited 0]"));
  term_stop (&t);

  /* The file: mode 0600, one entry per statement. */
  g_autofree char *path = g_build_filename (data_dir, "shell_history", NULL);
  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_autofree char *contents = NULL;
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_nonnull (strstr (contents, "hist-two"));

  /* After a restart: \q, then the two-line statement, then hist-one. */
  term_start_shell (&t, "history-2");
  term_keys (&t, "Up");
  term_wait_last (&t, CONN "=> \\q", 0);
  term_keys (&t, "Up");
  term_wait_last (&t, "AS h2;", 0);
  term_keys (&t, "Up");
  term_wait_last (&t, CONN "=> SELECT 'hist-one' AS h1;", 0);
  term_keys (&t, "Enter");
  g_autofree char *recalled = term_wait (&t, "(1 row)");
  g_assert_nonnull (strstr (recalled, " hist-one"));
  term_wait_last (&t, CONN "=>", 0);
  term_stop (&t);
}

static void
test_quit (void)
{
  Term t = { 0 };
  term_start_shell (&t, "quit");
  term_type (&t, "\\q");
  term_keys (&t, "Enter");
  g_free (term_wait (&t, "[tusk exited 0]"));
  term_stop (&t);

  /* Ctrl-D on an empty line does the same. */
  term_start_shell (&t, "ctrl-d");
  term_keys (&t, "C-d");
  g_free (term_wait (&t, "[tusk exited 0]"));
  term_stop (&t);
}

/* ---- main ------------------------------------------------------------- */

static void
save_connection (void)
{
  g_autofree char *port = g_strdup (tusk_test_env ("TUSK_TEST_PGPORT"));
  const char *argv[] = { tusk_path,
                         "--data-dir",
                         data_dir,
                         "conn",
                         "add",
                         CONN,
                         "-h",
                         tusk_test_env ("TUSK_TEST_PGHOST"),
                         "-p",
                         port,
                         "-U",
                         tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"),
                         "-d",
                         test_db,
                         "--color",
                         "#ff8800",
                         "--password-stdin",
                         NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) p = g_subprocess_newv (
      argv,
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
          | G_SUBPROCESS_FLAGS_STDERR_MERGE,
      &error);
  g_assert_no_error (error);
  g_autofree char *password
      = g_strconcat (tusk_test_env ("TUSK_TEST_PGPASSWORD"), "\n", NULL);
  g_autofree char *out = NULL;
  g_subprocess_communicate_utf8 (p, password, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (p))
    g_error ("tusk conn add failed:\n%s", out);
  g_assert_nonnull (strstr (out, "keychain"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_test_env ("TUSK_TEST_KEYRING");

  tusk_path = g_build_filename (tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell",
                                "tusk", NULL);
  if (!g_file_test (tusk_path, G_FILE_TEST_IS_EXECUTABLE))
    g_error ("%s is missing: build the shell first", tusk_path);
  g_autoptr (GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("tusk-repl-XXXXXX", &error);
  g_assert_no_error (error);
  data_dir = g_build_filename (root, "data", NULL);
  home_dir = g_build_filename (root, "home", NULL);
  g_assert_cmpint (g_mkdir (home_dir, 0700), ==, 0);

  tmux_socket = g_strdup_printf ("tusk-test-repl-%d", (int)getpid ());
  const char *kill[] = { "tmux", "-L", tmux_socket, "kill-server", NULL };
  for (guint i = 0; kill[i] != NULL; i++)
    kill_argv[i] = (char *)kill[i];
  signal (SIGABRT, kill_tmux_and_die);
  signal (SIGTRAP, kill_tmux_and_die);
  signal (SIGTERM, kill_tmux_and_die);
  signal (SIGINT, kill_tmux_and_die);
  /* One server for the whole program: by default tmux exits when its last
   * session ends, and a new-session sent while it is exiting fails with
   * "server exited unexpectedly" (seen in CI). */
  g_free (tmux ("start-server", ";", "set-option", "-g", "exit-empty", "off",
                NULL));

  test_db = g_strdup_printf ("tusk_repl_test_%d", (int)getpid ());
  PGconn *admin = admin_connect (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *create
      = g_strdup_printf ("CREATE DATABASE %s OWNER %s", test_db,
                         tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  admin_exec (admin, create);
  PGconn *pg = admin_connect (test_db);
  admin_exec (pg, fixture_sql);
  PQfinish (pg);
  save_connection ();

  g_test_add_func ("/tusk/repl/connect-keychain", test_connect_keychain);
  g_test_add_func ("/tusk/repl/query", test_query);
  g_test_add_func ("/tusk/repl/multi-line", test_multi_line);
  g_test_add_func ("/tusk/repl/cancel", test_cancel);
  g_test_add_func ("/tusk/repl/ctrl-c-idle", test_ctrl_c_idle);
  g_test_add_func ("/tusk/repl/complete-table", test_complete_table);
  g_test_add_func ("/tusk/repl/complete-column", test_complete_column);
  g_test_add_func ("/tusk/repl/describe", test_describe);
  g_test_add_func ("/tusk/repl/expanded", test_expanded);
  g_test_add_func ("/tusk/repl/timing", test_timing);
  g_test_add_func ("/tusk/repl/transaction-prompt", test_transaction_prompt);
  g_test_add_func ("/tusk/repl/history", test_history);
  g_test_add_func ("/tusk/repl/quit", test_quit);
  int status = g_test_run ();

  g_autofree char *kill_out = NULL;
  g_autofree char *kill_err = NULL;
  g_spawn_sync (NULL, kill_argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                &kill_out, &kill_err, NULL, NULL);
  /* tmux leaves its socket behind. */
  const char *tmpdir = g_getenv ("TMUX_TMPDIR");
  g_autofree char *uid_dir = g_strdup_printf ("tmux-%u", (unsigned)getuid ());
  g_autofree char *socket_path = g_build_filename (
      tmpdir && *tmpdir ? tmpdir : "/tmp", uid_dir, tmux_socket, NULL);
  g_unlink (socket_path);
  signal (SIGABRT, SIG_DFL);
  signal (SIGTRAP, SIG_DFL);
  signal (SIGTERM, SIG_DFL);
  signal (SIGINT, SIG_DFL);
  g_autofree char *drop
      = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", test_db);
  admin_exec (admin, drop);
  PQfinish (admin);

  g_autofree char *q_root = g_shell_quote (root);
  g_autofree char *rm = g_strdup_printf ("rm -rf %s", q_root);
  int rc = system (rm);
  (void)rc;
  g_free (test_db);
  g_free (data_dir);
  g_free (home_dir);
  g_free (tusk_path);
  g_free (tmux_socket);
  return status;
}
