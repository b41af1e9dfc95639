/* test-security.c: issue 10, item 4 — no secret on disk or in any output,
 * a private data directory, values that reach libpq literally, and
 * passwords typed as SQL kept out of both histories.
 *
 * Drives the built `tusk` (TUSK_TEST_BUILD_DIR/shell/tusk, a private
 * --data-dir per test, TUSK_LOG=trace) and libtusk against the test
 * environment's real PostgreSQL, gnome-keyring and sshd
 * (scripts/test-env.sh with its three services).
 *
 * The program changes the shared server for its run and puts it back at
 * the end (a run that stops half-way leaves them, harmless, and the next
 * run starts by removing them): roles of its own (tusk_sec with a distinctive
 * password, and a role whose name has spaces, '=', quotes and a backslash), a
 * database so named, and two pg_hba.conf lines letting the members of
 * tusk_sec_login in with SCRAM (the environment's file lets only its own roles
 * in).  So it is registered with 'parallel': false.  The SSH password is the
 * environment's (tusk-ssh's password is shared by concurrent runs and
 * cannot change); the database password is DB_PASSWORD. */
#include <poll.h>
#include <pty.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <histedit.h>
#include <json-glib/json-glib.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "tusk.h"
#include "tusk-test-pty.h"
#include "tusk-test.h"

#define DB_PASSWORD     "S3cr3t-db-Ω7"
#define DB_PASSWORD_URI "S3cr3t-db-%CE%A97" /* percent-encoded */
#define DB_MARKER       "S3cr3t-db"         /* any spelling of it */
#define LOGIN_GROUP     "tusk_sec_login"
#define ROLE            "tusk_sec"
/* Names with a space, '=', both quotes and a backslash. */
#define ODD_DB   "we'ird = \"db\" \\x"
#define ODD_USER "we'ird = \"user\" \\x"
#define ODD_APP  "we'ird = \"app\" \\x"
#define ODD_SOCK "we'ird = \"sock\" \\x"

/* What no file and no output may hold (NULL-terminated). */
static const char *secrets[5];

/* ---- the server ---------------------------------------------------------- */

static void
ignore_notice (void *data, const char *message)
{
  (void)data;
  (void)message;
}

/* Runs @sql as the trust superuser over the socket, in @dbname. */
static void
superuser_sql (const char *dbname, const char *sql)
{
  const char *keywords[] = { "host", "port", "user", "dbname", NULL };
  const char *values[]
      = { tusk_test_env ("TUSK_TEST_PGSOCKET"),
          tusk_test_env ("TUSK_TEST_PGPORT"),
          tusk_test_env ("TUSK_TEST_PGUSER_TRUST"), dbname, NULL };
  PGconn *conn = PQconnectdbParams (keywords, values, 0);
  if (PQstatus (conn) != CONNECTION_OK)
    g_error ("connecting as the superuser: %s", PQerrorMessage (conn));
  PQsetNoticeProcessor (conn, ignore_notice, NULL);
  PGresult *result = PQexec (conn, sql);
  if (PQresultStatus (result) != PGRES_COMMAND_OK
      && PQresultStatus (result) != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQerrorMessage (conn));
  PQclear (result);
  PQfinish (conn);
}

/* Returns (transfer full) @name quoted as an SQL identifier. */
static char *
quote_ident (const char *name)
{
  GString *out = g_string_new ("\"");
  for (const char *p = name; *p; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

static char *hba_path;
static char *hba_saved; /* the environment's pg_hba.conf */

/* Writes @text over @path in place: the file keeps its owner (the
 * server's) and mode. */
static void
overwrite (const char *path, const char *text)
{
  FILE *fp = fopen (path, "w");
  if (fp == NULL)
    g_error ("%s: %s", path, g_strerror (errno));
  g_assert_cmpint (fputs (text, fp), >=, 0);
  g_assert_cmpint (fclose (fp), ==, 0);
}

/* Whether @user with DB_PASSWORD gets in over the socket. */
static gboolean
can_log_in (gpointer user)
{
  const char *keywords[]
      = { "host", "port", "user", "dbname", "password", NULL };
  const char *values[] = { tusk_test_env ("TUSK_TEST_PGSOCKET"),
                           tusk_test_env ("TUSK_TEST_PGPORT"),
                           user,
                           tusk_test_env ("TUSK_TEST_PGDATABASE"),
                           DB_PASSWORD,
                           NULL };
  PGconn *conn = PQconnectdbParams (keywords, values, 0);
  gboolean ok = PQstatus (conn) == CONNECTION_OK;
  PQfinish (conn);
  return ok;
}

static void
server_set_up (void)
{
  g_autofree char *odd_db = quote_ident (ODD_DB);
  g_autofree char *odd_user = quote_ident (ODD_USER);
  g_autofree char *drop_roles = g_strdup_printf (
      "DROP ROLE IF EXISTS %s, " ROLE ", " LOGIN_GROUP, odd_user);
  g_autofree char *drop_db
      = g_strdup_printf ("DROP DATABASE IF EXISTS %s WITH (FORCE)", odd_db);
  g_autofree char *create_user = g_strdup_printf (
      "CREATE ROLE %s LOGIN PASSWORD '" DB_PASSWORD "' IN ROLE " LOGIN_GROUP,
      odd_user);
  g_autofree char *create_db
      = g_strdup_printf ("CREATE DATABASE %s OWNER %s", odd_db,
                         tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));

  superuser_sql ("postgres", drop_db);
  superuser_sql ("postgres", drop_roles);
  superuser_sql ("postgres", "CREATE ROLE " LOGIN_GROUP " NOLOGIN");
  superuser_sql ("postgres", "CREATE ROLE " ROLE " LOGIN PASSWORD '" DB_PASSWORD
                             "' IN ROLE " LOGIN_GROUP);
  superuser_sql ("postgres", create_user);
  superuser_sql ("postgres", create_db);

  /* Let the group in with SCRAM, on the socket and on 127.0.0.1 (where
   * the SSH tunnel arrives), ahead of the file's final "reject" lines. */
  hba_path = g_build_filename (tusk_test_env ("TUSK_TEST_PGDATA"),
                               "pg_hba.conf", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *hba_now = NULL;
  g_assert_true (g_file_get_contents (hba_path, &hba_now, NULL, &error));
  g_assert_no_error (error);
  /* Without the lines an earlier run that stopped half-way left. */
  g_auto (GStrv) lines = g_strsplit (hba_now, "\n", -1);
  GString *kept = g_string_new (NULL);
  for (guint i = 0; lines[i]; i++)
    if (strstr (lines[i], "+" LOGIN_GROUP) == NULL)
      g_string_append_printf (kept, "%s%s", lines[i], lines[i + 1] ? "\n" : "");
  hba_saved = g_string_free (kept, FALSE);
  g_autofree char *ours = g_strdup (
      "local   all      +" LOGIN_GROUP "              scram-sha-256\n"
      "host    all      +" LOGIN_GROUP " 127.0.0.1/32 scram-sha-256\n");
  g_autofree char *hba = g_strconcat (ours, hba_saved, NULL);
  overwrite (hba_path, hba);
  superuser_sql ("postgres", "SELECT pg_reload_conf()");
  /* The reload is asynchronous: wait until it took effect. */
  tusk_test_wait_until (can_log_in, (gpointer)ROLE, 30000);
  tusk_test_wait_until (can_log_in, (gpointer)ODD_USER, 30000);
}

static void
server_tear_down (void)
{
  overwrite (hba_path, hba_saved);
  superuser_sql ("postgres", "SELECT pg_reload_conf()");
  g_autofree char *odd_db = quote_ident (ODD_DB);
  g_autofree char *odd_user = quote_ident (ODD_USER);
  g_autofree char *drop_db
      = g_strdup_printf ("DROP DATABASE IF EXISTS %s WITH (FORCE)", odd_db);
  g_autofree char *drop_roles = g_strdup_printf (
      "DROP ROLE IF EXISTS %s, " ROLE ", " LOGIN_GROUP, odd_user);
  superuser_sql ("postgres", drop_db);
  superuser_sql ("postgres", drop_roles);
  g_clear_pointer (&hba_path, g_free);
  g_clear_pointer (&hba_saved, g_free);
}

/* ---- the fixture: a data directory and every output ---------------------- */

typedef struct
{
  char *root;     /* a fresh temporary directory */
  char *data_dir; /* root/data: every run's --data-dir */
  char *out;      /* the last run's stdout and stderr */
  char *err;
  GPtrArray *seen; /* "what: text" of every output so far */
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-security-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->data_dir = g_build_filename (f->root, "data", NULL);
  f->seen = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_remove_tree (f->root);
  g_free (f->root);
  g_free (f->data_dir);
  g_free (f->out);
  g_free (f->err);
  g_ptr_array_unref (f->seen);
}

/* Marks the test failed when @text (@length bytes) holds a secret; @what
 * names it.  The test goes on (every leak is reported, and the server is
 * put back at the end). */
static void
assert_no_secret (const char *what, const char *text, gsize length)
{
  for (guint i = 0; secrets[i]; i++)
    {
      const char *at = memmem (text, length, secrets[i], strlen (secrets[i]));
      if (at == NULL)
        continue;
      /* The line that holds it. */
      const char *start = at, *end = at;
      while (start > text && start[-1] != '\n')
        start--;
      while (end < text + length && *end != '\n')
        end++;
      g_test_message ("%s holds the secret \"%s\": %.*s", what, secrets[i],
                      (int)MIN (end - start, 2000), start);
      g_test_fail ();
    }
}

/* The same for a rule about a file's mode. */
#define fail_mode(...)                                                         \
  G_STMT_START                                                                 \
  {                                                                            \
    g_test_message (__VA_ARGS__);                                              \
    g_test_fail ();                                                            \
  }                                                                            \
  G_STMT_END

static char *
tusk_binary (void)
{
  return g_build_filename (tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell",
                           "tusk", NULL);
}

/* The environment of every run: everything logged, no PG* variable or
 * ~/.pgpass that could supply a password. */
static char **
child_environ (void)
{
  char **env = g_get_environ ();
  static const char *const drop[]
      = { "PGHOST",     "PGHOSTADDR", "PGPORT",        "PGUSER",
          "PGDATABASE", "PGPASSWORD", "PGSERVICE",     "PGOPTIONS",
          "PGSSLMODE",  "PGAPPNAME",  "TUSK_DATA_DIR", "PAGER" };
  for (guint i = 0; i < G_N_ELEMENTS (drop); i++)
    env = g_environ_unsetenv (env, drop[i]);
  env = g_environ_setenv (env, "PGPASSFILE", "/nonexistent", TRUE);
  env = g_environ_setenv (env, "TUSK_LOG", "trace", TRUE);
  return env;
}

static void
new_session (gpointer data)
{
  (void)data;
  setsid (); /* no controlling terminal: nothing may prompt */
}

/* Runs `tusk --data-dir DATA ARGS…` (@args NULL-terminated) with @input
 * (nullable) on stdin; keeps stdout and stderr in f->out and f->err (and
 * in f->seen) and returns the exit status.  A crash fails the test. */
static int
run (Fixture *f, const char *input, const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, tusk_binary ());
  g_ptr_array_add (argv, g_strdup ("--data-dir"));
  g_ptr_array_add (argv, g_strdup (f->data_dir));
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
      | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_auto (GStrv) env = child_environ ();
  g_subprocess_launcher_set_environ (launcher, env);
  g_subprocess_launcher_set_child_setup (launcher, new_session, NULL, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = g_subprocess_launcher_spawnv (
      launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);
  g_clear_pointer (&f->out, g_free);
  g_clear_pointer (&f->err, g_free);
  g_subprocess_communicate_utf8 (process, input ? input : "", NULL, &f->out,
                                 &f->err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (process))
    g_error ("tusk %s died (signal %d); stderr:\n%s", args[0],
             g_subprocess_get_term_sig (process), f->err);
  /* Named by number: the arguments themselves may hold a password. */
  guint n = f->seen->len / 2 + 1;
  g_ptr_array_add (f->seen, g_strdup_printf ("run %u (tusk %s): stdout: %s", n,
                                             args[0], f->out ? f->out : ""));
  g_ptr_array_add (f->seen, g_strdup_printf ("run %u (tusk %s): stderr: %s", n,
                                             args[0], f->err ? f->err : ""));
  return g_subprocess_get_exit_status (process);
}

#define assert_status(f, status, expected)                                     \
  G_STMT_START                                                                 \
  {                                                                            \
    int s_ = (status);                                                         \
    if (s_ != (expected))                                                      \
      g_error ("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s", s_,    \
               (expected), (f)->out, (f)->err);                                \
  }                                                                            \
  G_STMT_END

#define assert_contains(haystack, needle)                                      \
  G_STMT_START                                                                 \
  {                                                                            \
    const char *h_ = (haystack);                                               \
    if (strstr (h_, (needle)) == NULL)                                         \
      g_error ("expected \"%s\" in:\n%s", (needle), h_);                       \
  }                                                                            \
  G_STMT_END

#define RUN(f, input, ...)                                                     \
  run ((f), (input), (const char *const[]){ __VA_ARGS__, NULL })

/* Parses f->out as JSON; (transfer full). */
static JsonNode *
parse_out (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = json_from_string (f->out, &error);
  if (node == NULL)
    g_error ("not JSON (%s):\n%s", error ? error->message : "empty", f->out);
  return node;
}

/* ---- the data directory -------------------------------------------------- */

/* Fails unless every directory under @path (itself included) is 0700 and
 * every file 0600, and unless no file holds a secret. */
static void
check_tree (const char *path, guint *files)
{
  struct stat st;
  if (lstat (path, &st) != 0)
    g_error ("%s: %s", path, g_strerror (errno));
  if (S_ISDIR (st.st_mode))
    {
      if ((st.st_mode & 07777) != 0700)
        fail_mode ("%s is a directory of mode %04o, not 0700", path,
                   st.st_mode & 07777);
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      g_assert_nonnull (dir);
      const char *name;
      while ((name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          check_tree (child, files);
        }
      return;
    }
  if (!S_ISREG (st.st_mode))
    {
      fail_mode ("%s is neither a file nor a directory", path);
      return;
    }
  if ((st.st_mode & 07777) != 0600)
    fail_mode ("%s is a file of mode %04o, not 0600", path, st.st_mode & 07777);
  g_autofree char *contents = NULL;
  gsize length = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &contents, &length, &error));
  assert_no_secret (path, contents, length);
  g_test_message ("checked %s: mode %04o, %zu bytes", path, st.st_mode & 07777,
                  (size_t)length);
  (*files)++;
}

/* Reads every row of every table of {data_dir}/tusk.db (through SQLite,
 * so the WAL counts) and fails when a value holds a secret; returns the
 * number of values read. */
static guint
check_database (const char *data_dir)
{
  g_autofree char *path = g_build_filename (data_dir, "tusk.db", NULL);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    g_error ("%s: %s", path, sqlite3_errmsg (db));
  sqlite3_busy_timeout (db, 5000);
  g_autoptr (GPtrArray) tables = g_ptr_array_new_with_free_func (g_free);
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                                       "SELECT name FROM sqlite_schema WHERE "
                                       "type = 'table'",
                                       -1, &stmt, NULL),
                   ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    g_ptr_array_add (tables,
                     g_strdup ((const char *)sqlite3_column_text (stmt, 0)));
  sqlite3_finalize (stmt);
  g_assert_cmpuint (tables->len, >, 0);

  guint values = 0;
  for (guint t = 0; t < tables->len; t++)
    {
      g_autofree char *name = quote_ident (tables->pdata[t]);
      g_autofree char *sql = g_strdup_printf ("SELECT * FROM %s", name);
      g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==,
                       SQLITE_OK);
      int rc;
      while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        for (int c = 0; c < sqlite3_column_count (stmt); c++)
          {
            const void *bytes = sqlite3_column_blob (stmt, c);
            int n = sqlite3_column_bytes (stmt, c);
            g_autofree char *what = g_strdup_printf (
                "tusk.db table %s column %s", (char *)tables->pdata[t],
                sqlite3_column_name (stmt, c));
            if (bytes != NULL)
              assert_no_secret (what, bytes, (gsize)n);
            values++;
          }
      g_assert_cmpint (rc, ==, SQLITE_DONE);
      sqlite3_finalize (stmt);
    }
  sqlite3_close (db);
  return values;
}

/* Returns (transfer full) the entries of the shell's history file, read
 * back with libedit (which writes them vis(3)-encoded). */
static GPtrArray *
shell_history (const char *data_dir)
{
  g_autofree char *path = g_build_filename (data_dir, "shell_history", NULL);
  g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
  History *h = history_init ();
  HistEvent ev;
  history (h, &ev, H_SETSIZE, 100000);
  g_assert_cmpint (history (h, &ev, H_LOAD, path), >=, 0);
  GPtrArray *entries = g_ptr_array_new_with_free_func (g_free);
  for (int rc = history (h, &ev, H_LAST); rc >= 0;
       rc = history (h, &ev, H_PREV))
    g_ptr_array_add (entries, g_strdup (ev.str));
  history_end (h);
  return entries;
}

static gboolean
has_string (GPtrArray *strings, const char *text)
{
  for (guint i = 0; i < strings->len; i++)
    if (g_str_equal (strings->pdata[i], text))
      return TRUE;
  return FALSE;
}

/* ---- redaction, the function --------------------------------------------- */

static void
test_redact_sql (void)
{
  static const struct
  {
    const char *sql, *expected; /* expected NULL: unchanged */
  } cases[] = {
    /* The forms of ALTER/CREATE ROLE/USER/GROUP, any case. */
    { "ALTER ROLE bob PASSWORD 'hunter2'", "ALTER ROLE bob PASSWORD '***'" },
    { "alter role bob with login password 'x''y' valid until 'infinity'",
      "alter role bob with login password '***' valid until 'infinity'" },
    { "CrEaTe UsEr bob PaSsWoRd 'hunter2';",
      "CrEaTe UsEr bob PaSsWoRd '***';" },
    { "CREATE ROLE bob LOGIN ENCRYPTED PASSWORD 'md5abc'",
      "CREATE ROLE bob LOGIN ENCRYPTED PASSWORD '***'" },
    { "ALTER USER bob WITH ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:x'",
      "ALTER USER bob WITH ENCRYPTED PASSWORD '***'" },
    { "CREATE GROUP g PASSWORD 'x'", "CREATE GROUP g PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD '" DB_PASSWORD "'",
      "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD'x'", "ALTER ROLE bob PASSWORD'***'" },
    /* Every kind of string. */
    { "ALTER ROLE bob PASSWORD E'it\\'s\\\\'",
      "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD e'x''y'", "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD U&'d\\0061t\\+000061'",
      "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD N'x'", "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD $$hun'ter2$$", "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD $pw$a$b$$c$pw$ VALID UNTIL 'infinity'",
      "ALTER ROLE bob PASSWORD '***' VALID UNTIL 'infinity'" },
    { "ALTER ROLE bob PASSWORD 'hun'\n  'ter2'",
      "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD E'a\\\\'\n'b\\'c'",
      "ALTER ROLE bob PASSWORD '***'" },
    /* A backslash is read both ways (standard_conforming_strings). */
    { "ALTER ROLE bob PASSWORD 'a\\'b'", "ALTER ROLE bob PASSWORD '***'" },
    /* Not ended: hidden to the end. */
    { "ALTER ROLE bob PASSWORD 'hunter2", "ALTER ROLE bob PASSWORD '***'" },
    { "ALTER ROLE bob PASSWORD $x$hunter2", "ALTER ROLE bob PASSWORD '***'" },
    /* Comments between the key word and the string stay. */
    { "ALTER ROLE bob PASSWORD /* a /* nested */ one */ -- and\n 'x'",
      "ALTER ROLE bob PASSWORD /* a /* nested */ one */ -- and\n '***'" },
    /* A statement commented out counts. */
    { "-- ALTER ROLE bob PASSWORD 'x'\nSELECT 1",
      "-- ALTER ROLE bob PASSWORD '***'\nSELECT 1" },
    { "SELECT 1 /* ALTER ROLE bob PASSWORD 'x' */",
      "SELECT 1 /* ALTER ROLE bob PASSWORD '***' */" },
    { "-- don't forget: ALTER ROLE bob PASSWORD 'x' (it's new)\nSELECT 1",
      "-- don't forget: ALTER ROLE bob PASSWORD '***' (it's new)\nSELECT 1" },
    { "/* a /* b */ PASSWORD 'x/*y' */ */ SELECT 1",
      "/* a /* b */ PASSWORD '***' /* */ */ SELECT 1" },
    /* Several statements. */
    { "ALTER ROLE a PASSWORD 'x'; ALTER ROLE b PASSWORD 'y';",
      "ALTER ROLE a PASSWORD '***'; ALTER ROLE b PASSWORD '***';" },
    { "ALTER ROLE \"password\" PASSWORD 'x'",
      "ALTER ROLE \"password\" PASSWORD '***'" },
    /* Foreign servers and user mappings. */
    { "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password "
      "'hunter2')",
      "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password "
      "'***')" },
    /* conninfo and URIs inside strings. */
    { "CREATE SUBSCRIPTION s CONNECTION 'host=db password=hunter2 "
      "dbname=app' PUBLICATION p",
      "CREATE SUBSCRIPTION s CONNECTION 'host=db password=*** dbname=app' "
      "PUBLICATION p" },
    { "SELECT dblink_connect('host=db password = ''hun ter2''')",
      "SELECT dblink_connect('host=db password = ***')" },
    { "SELECT dblink_connect($$postgresql://bob:hunter2@db:5432/app$$)",
      "SELECT dblink_connect($$postgresql://bob:***@db:5432/app$$)" },
    { "SELECT E'postgres://bob:p@ss@db/app'",
      "SELECT E'postgres://bob:***@db/app'" },
    /* Backslash commands: conninfo and URIs anywhere. */
    { "\\c postgresql://bob:hunter2@db/app",
      "\\c postgresql://bob:***@db/app" },
    { "\\connect host=db password=hunter2 dbname=app",
      "\\connect host=db password=*** dbname=app" },
    { "  \\c 'host=db password=hunter2'", "  \\c 'host=db password=***'" },
    /* Left alone. */
    { "ALTER ROLE bob PASSWORD NULL", NULL },
    { "ALTER ROLE bob PASSWORD '***'", NULL },
    { "SELECT password FROM users WHERE password = 'hunter2'", NULL },
    { "INSERT INTO users (name, password) VALUES ('bob', 'hunter2')", NULL },
    { "SELECT 'ALTER ROLE bob PASSWORD ''x''' AS text", NULL },
    { "SELECT $q$ PASSWORD 'x' $q$", NULL },
    { "SELECT \"PASSWORD 'x'\" FROM t", NULL },
    { "SELECT my_password 'x'", NULL },
    { "SELECT 'https://example.com/a?b' AS url, 'bob@example.com'", NULL },
    { "SELECT 'postgresql://bob@db/app'", NULL },
    { "SELECT 1", NULL },
    { "", NULL },
    { "ALTER ROLE bob PASSWORD", NULL },
    { "password password password", NULL },
    { "\\password bob", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *expected
          = cases[i].expected ? cases[i].expected : cases[i].sql;
      g_autofree char *once = tusk_history_redact_sql (cases[i].sql);
      if (!g_str_equal (once, expected))
        g_error ("redacting\n  %s\ngave\n  %s\nnot\n  %s", cases[i].sql, once,
                 expected);
      g_autofree char *twice = tusk_history_redact_sql (once);
      g_assert_cmpstr (twice, ==, once);
    }

  /* An error about a statement loses what the statement's redaction
   * hides. */
  g_autofree char *message = tusk_history_redact_message (
      "ALTER ROLE bob PASSWORD 'hunter2",
      "unterminated quoted string at or near \"'hunter2\"");
  g_assert_cmpstr (message, ==,
                   "unterminated quoted string at or near \"'***\"");
  g_autofree char *plain
      = tusk_history_redact_message ("SELECT 1", "hunter2 is fine here");
  g_assert_cmpstr (plain, ==, "hunter2 is fine here");
}

/* ---- the scripted session ------------------------------------------------ */

static char *
pg_port_uri (const char *user_and_password)
{
  return g_strdup_printf ("postgresql://%s@%s:%s/%s", user_and_password,
                          tusk_test_env ("TUSK_TEST_PGHOST"),
                          tusk_test_env ("TUSK_TEST_PGPORT"),
                          tusk_test_env ("TUSK_TEST_PGDATABASE"));
}

/* A whole session with database and SSH passwords at TUSK_LOG=trace: no
 * password in the data directory (files as bytes, the SQLite tables, the
 * logs, both histories, known_hosts), in an export, or in any output; the
 * directory 0700 and its files 0600. */
static void
test_session (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *ssh_password = tusk_test_env ("TUSK_TEST_SSH_PASSWORD");
  const char *port = tusk_test_env ("TUSK_TEST_PGPORT");
  tusk_test_env ("TUSK_TEST_KEYRING");

  /* Tusk makes its data directory; its known_hosts knows the test host key
   * (nobody is there to confirm an unknown one). */
  assert_status (f, RUN (f, NULL, "conn", "list"), 0);
  g_autofree char *known = NULL;
  gsize length = 0;
  g_assert_true (g_file_get_contents (
      tusk_test_env ("TUSK_TEST_SSH_KNOWN_HOSTS"), &known, &length, NULL));
  g_autofree char *known_path
      = g_build_filename (f->data_dir, "known_hosts", NULL);
  g_assert_true (g_file_set_contents_full (
      known_path, known, length, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL));

  /* A saved connection through an SSH tunnel, both passwords on stdin. */
  g_autofree char *both
      = g_strdup_printf ("%s\n%s\n", DB_PASSWORD, ssh_password);
  assert_status (
      f,
      RUN (f, both, "conn", "add", "sec", "-h", "127.0.0.1", "-p", port, "-U",
           ROLE, "-d", tusk_test_env ("TUSK_TEST_PGDATABASE"),
           "--password-stdin", "--ssh-host",
           tusk_test_env ("TUSK_TEST_SSH_HOST"), "--ssh-port",
           tusk_test_env ("TUSK_TEST_SSH_PORT"), "--ssh-user",
           tusk_test_env ("TUSK_TEST_SSH_USER"), "--ssh-password-stdin"),
      0);
  assert_status (f, RUN (f, NULL, "conn", "test", "sec"), 0);
  assert_contains (f->out, "through SSH");

  /* Queries: -c, a script on stdin, and passwords typed as SQL (the same
   * password again, so that nothing else breaks). */
  assert_status (
      f, RUN (f, NULL, "-A", "-t", "-c", "SELECT current_user", "sec"), 0);
  g_assert_cmpstr (f->out, ==, ROLE "\n");
  assert_status (f,
                 RUN (f, NULL, "-c",
                      "ALTER ROLE " ROLE " PASSWORD '" DB_PASSWORD "'", "sec"),
                 0);
  assert_status (f,
                 RUN (f,
                      "SELECT 'from a script' AS what;\n"
                      "ALTER USER " ROLE
                      " WITH ENCRYPTED PASSWORD E'S3cr3t-db-\\u03A97';\n"
                      "SELECT current_user;\n",
                      "-A", "-t", "-f", "-", "sec"),
                 0);
  assert_contains (f->out, "from a script\n");
  /* The E'' string is the same password: the role still logs in. */
  g_assert_true (can_log_in ((gpointer)ROLE));

  /* A URI that carries the password (percent-encoded, and as is). */
  g_autofree char *uri_encoded = pg_port_uri (ROLE ":" DB_PASSWORD_URI);
  assert_status (
      f, RUN (f, NULL, "-A", "-t", "-c", "SELECT current_user", uri_encoded),
      0);
  g_assert_cmpstr (f->out, ==, ROLE "\n");
  g_autofree char *uri_raw = pg_port_uri (ROLE ":" DB_PASSWORD);
  assert_status (
      f, RUN (f, NULL, "-A", "-t", "-c", "SELECT current_user", uri_raw), 0);
  g_assert_cmpstr (f->out, ==, ROLE "\n");

  /* The interactive shell: a password typed as SQL, and \c to a URI with
   * a password, then \q. */
  {
    g_autofree char *tusk = tusk_binary ();
    const char *argv[] = { tusk, "--data-dir", f->data_dir, "sec", NULL };
    g_auto (GStrv) env
        = g_environ_setenv (child_environ (), "TERM", "xterm", TRUE);
    TuskTestPty pty;
    tusk_test_pty_spawn (&pty, argv, env, 24, 200);
    tusk_test_pty_expect (&pty, "=> ");
    tusk_test_pty_send (&pty, "SELECT 'typed' AS how;\r");
    tusk_test_pty_expect (&pty, "(1 row)");
    tusk_test_pty_send (&pty, "alter role " ROLE
                              " password /* same */ '" DB_PASSWORD "';\r");
    tusk_test_pty_expect (&pty, "ALTER ROLE\r\n");
    g_autofree char *connect = g_strdup_printf ("\\c %s\r", uri_encoded);
    tusk_test_pty_send (&pty, connect);
    tusk_test_pty_expect (&pty, "You are now connected");
    tusk_test_pty_send (&pty, "\\q\r");
    g_assert_cmpint (tusk_test_pty_finish (&pty), ==, 0);
    tusk_test_pty_clear (&pty);
  }

  /* What a person looks at. */
  assert_status (f, RUN (f, NULL, "conn", "show", "sec"), 0);
  assert_contains (f->out, "password: stored in the keychain");
  assert_status (f, RUN (f, NULL, "conn", "show", "sec", "--json"), 0);
  assert_status (f, RUN (f, NULL, "conn", "list"), 0);
  assert_status (f, RUN (f, NULL, "conn", "list", "--json"), 0);
  {
    g_autoptr (JsonNode) list = parse_out (f);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (list)), ==,
                      1);
  }
  g_autofree char *export_path
      = g_build_filename (f->root, "export.json", NULL);
  assert_status (f, RUN (f, NULL, "export", export_path), 0);
  assert_status (f, RUN (f, NULL, "history"), 0);
  assert_status (f, RUN (f, NULL, "history", "--json", "--limit", "0"), 0);
  g_autoptr (JsonNode) history = parse_out (f);

  /* The histories keep the statements, with the passwords hidden. */
  g_autoptr (GPtrArray) stored = g_ptr_array_new_with_free_func (g_free);
  JsonArray *entries = json_node_get_array (history);
  for (guint i = 0; i < json_array_get_length (entries); i++)
    g_ptr_array_add (stored,
                     g_strdup (json_object_get_string_member (
                         json_array_get_object_element (entries, i), "sql")));
  for (guint i = 0; i < stored->len; i++)
    g_test_message ("history: %s", (char *)stored->pdata[i]);
  g_assert_true (has_string (stored, "SELECT current_user"));
  g_assert_true (has_string (stored, "ALTER ROLE " ROLE " PASSWORD '***'"));
  g_assert_true (has_string (stored, "ALTER USER " ROLE
                                     " WITH ENCRYPTED PASSWORD '***';"));
  g_assert_true (
      has_string (stored, "alter role " ROLE " password /* same */ '***';"));
  g_autoptr (GPtrArray) typed = shell_history (f->data_dir);
  for (guint i = 0; i < typed->len; i++)
    g_test_message ("shell history: %s", (char *)typed->pdata[i]);
  g_assert_true (has_string (typed, "SELECT 'typed' AS how;"));
  g_assert_true (
      has_string (typed, "alter role " ROLE " password /* same */ '***';"));
  g_autofree char *connect_redacted = pg_port_uri (ROLE ":***");
  g_autofree char *connect_line = g_strdup_printf ("\\c %s", connect_redacted);
  g_assert_true (has_string (typed, connect_line));

  /* The export: no password, readable only by its owner. */
  struct stat st;
  g_assert_cmpint (stat (export_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_autofree char *exported = NULL;
  g_assert_true (g_file_get_contents (export_path, &exported, &length, NULL));
  assert_no_secret (export_path, exported, length);

  /* Every output of every command. */
  for (guint i = 0; i < f->seen->len; i++)
    assert_no_secret ("an output", f->seen->pdata[i],
                      strlen (f->seen->pdata[i]));

  /* The data directory: 0700, files 0600, no secret in any byte (tusk.db
   * and its WAL, logs/, shell_history, known_hosts), then the tables. */
  guint files = 0;
  check_tree (f->data_dir, &files);
  g_autofree char *logs = g_build_filename (f->data_dir, "logs", NULL);
  g_assert_true (g_file_test (logs, G_FILE_TEST_IS_DIR));
  g_assert_cmpuint (files, >=, 4); /* tusk.db, a log, history, known_hosts */
  g_assert_cmpuint (check_database (f->data_dir), >, 0);

  assert_status (f, RUN (f, NULL, "conn", "rm", "sec"), 0);
}

/* ---- values that reach libpq literally ----------------------------------- */

/* Checks that a result row is ODD_DB, ODD_USER, ODD_APP. */
static void
assert_odd_session (const TuskQueryResult *result)
{
  g_assert_cmpuint (result->n_rows, ==, 1);
  g_assert_cmpstr (tusk_query_result_get_value (result, 0, 0), ==, ODD_DB);
  g_assert_cmpstr (tusk_query_result_get_value (result, 0, 1), ==, ODD_USER);
  g_assert_cmpstr (tusk_query_result_get_value (result, 0, 2), ==, ODD_APP);
}

#define WHO_SQL                                                                \
  "SELECT current_database(), current_user, "                                  \
  "current_setting('application_name')"

/* Checks f->out, `--format json` of WHO_SQL, against the odd names. */
static void
assert_odd_json (Fixture *f)
{
  g_autoptr (JsonNode) node = parse_out (f);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  JsonArray *rows = json_node_get_array (node);
  g_assert_cmpuint (json_array_get_length (rows), ==, 1);
  JsonObject *row = json_array_get_object_element (rows, 0);
  g_assert_cmpstr (json_object_get_string_member (row, "current_database"), ==,
                   ODD_DB);
  g_assert_cmpstr (json_object_get_string_member (row, "current_user"), ==,
                   ODD_USER);
  g_assert_cmpstr (json_object_get_string_member (row, "current_setting"), ==,
                   ODD_APP);
}

/* Runs WHO_SQL on @pool and checks the names. */
static void
assert_odd_pool (TuskPool *pool)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskQueryResult) result
      = tusk_query_execute_sync (pool, WHO_SQL, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_odd_session (result);
}

static void
test_literal_values (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *port = tusk_test_env ("TUSK_TEST_PGPORT");
  /* The socket directory under a name with every awkward character: only
   * the whole name, byte for byte, reaches the server. */
  g_autofree char *sock = g_build_filename (f->root, ODD_SOCK, NULL);
  g_assert_cmpint (symlink (tusk_test_env ("TUSK_TEST_PGSOCKET"), sock), ==, 0);

  /* The shell: a saved connection (application_name from a conninfo
   * --uri, the rest from options), then -c. */
  g_autofree char *app_conninfo
      = g_strdup ("application_name='we\\'ird = \"app\" \\\\x'");
  g_autofree char *input = g_strdup (DB_PASSWORD "\n");
  assert_status (f,
                 RUN (f, input, "conn", "add", "odd", "--uri", app_conninfo,
                      "-h", sock, "-p", port, "-U", ODD_USER, "-d", ODD_DB,
                      "--password-stdin"),
                 0);
  assert_status (f, RUN (f, NULL, "conn", "show", "odd", "--json"), 0);
  {
    g_autoptr (JsonNode) shown = parse_out (f);
    JsonObject *o = json_node_get_object (shown);
    g_assert_cmpstr (json_object_get_string_member (o, "host"), ==, sock);
    g_assert_cmpstr (json_object_get_string_member (o, "database"), ==, ODD_DB);
    g_assert_cmpstr (json_object_get_string_member (o, "username"), ==,
                     ODD_USER);
    g_assert_cmpstr (json_object_get_string_member (o, "application_name"), ==,
                     ODD_APP);
  }
  assert_status (f, RUN (f, NULL, "conn", "test", "odd"), 0);
  assert_status (f, RUN (f, NULL, "--format", "json", "-c", WHO_SQL, "odd"), 0);
  assert_odd_json (f);
  assert_status (f, RUN (f, NULL, "-c", "\\conninfo", "odd"), 0);
  g_autofree char *sentence = g_strdup_printf (
      "You are connected to database \"%s\" as user \"%s\" via socket in "
      "\"%s\" at port \"%s\".",
      ODD_DB, ODD_USER, sock, port);
  assert_contains (f->out, sentence);

  /* The shell: a URI (percent-encoded) and a conninfo string as TARGET. */
  g_autofree char *e_user = g_uri_escape_string (ODD_USER, NULL, FALSE);
  g_autofree char *e_db = g_uri_escape_string (ODD_DB, NULL, FALSE);
  g_autofree char *e_sock = g_uri_escape_string (sock, NULL, FALSE);
  g_autofree char *e_app = g_uri_escape_string (ODD_APP, NULL, FALSE);
  g_autofree char *uri = g_strdup_printf (
      "postgresql://%s:%s@/%s?host=%s&port=%s&application_name=%s", e_user,
      DB_PASSWORD_URI, e_db, e_sock, port, e_app);
  assert_status (f, RUN (f, NULL, "--format", "json", "-c", WHO_SQL, uri), 0);
  assert_odd_json (f);

  g_autoptr (TuskConnectionConfig) odd = tusk_connection_config_new ();
  odd->name = g_strdup ("odd");
  odd->host = g_strdup (sock);
  odd->port = atoi (port);
  odd->database = g_strdup (ODD_DB);
  odd->username = g_strdup (ODD_USER);
  g_free (odd->options.application_name);
  odd->options.application_name = g_strdup (ODD_APP);
  g_autofree char *conninfo = tusk_connection_config_to_conninfo (odd);
  g_autofree char *conninfo_pw
      = g_strconcat (conninfo, " password='" DB_PASSWORD "'", NULL);
  assert_status (
      f, RUN (f, NULL, "--format", "json", "-c", WHO_SQL, conninfo_pw), 0);
  assert_odd_json (f);

  /* libtusk: a config built field by field, ... */
  g_autoptr (GError) error = NULL;
  {
    g_autoptr (TuskPool) pool
        = tusk_pool_new_sync (odd, DB_PASSWORD, NULL, NULL, &error);
    g_assert_no_error (error);
    assert_odd_pool (pool);
  }

  /* ... parsed from the URI and from the conninfo string, and from what
   * the config renders, ... */
  const char *texts[] = { uri, conninfo_pw, NULL, NULL };
  g_autofree char *rendered_uri = tusk_connection_config_to_uri (odd);
  texts[2] = rendered_uri;
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *password = NULL;
      g_autoptr (TuskConnectionConfig) parsed
          = tusk_connection_config_new_from_string (texts[i], &password,
                                                    &error);
      g_assert_no_error (error);
      g_assert_cmpstr (parsed->host, ==, sock);
      g_assert_cmpstr (parsed->database, ==, ODD_DB);
      g_assert_cmpstr (parsed->username, ==, ODD_USER);
      g_assert_cmpstr (parsed->options.application_name, ==, ODD_APP);
      g_assert_cmpint (parsed->port, ==, atoi (port));
      g_assert_cmpstr (password, ==, i < 2 ? DB_PASSWORD : NULL);
      parsed->name = g_strdup ("parsed");
      g_autoptr (TuskPool) pool
          = tusk_pool_new_sync (parsed, DB_PASSWORD, NULL, NULL, &error);
      g_assert_no_error (error);
      assert_odd_pool (pool);
    }

  /* ... and saved, with its password in the keychain, through TuskState;
   * the statement is recorded in the history as it was run. */
  TuskState *state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) saved = tusk_connection_config_copy (odd);
  g_free (saved->id);
  saved->id = g_uuid_string_random ();
  g_free (saved->name);
  saved->name = g_strdup ("odd saved");
  g_assert_true (tusk_state_save_connection_sync (state, saved, DB_PASSWORD,
                                                  NULL, &error));
  g_assert_no_error (error);
  {
    g_autoptr (TuskPool) pool
        = tusk_state_connect_sync (state, saved->id, NULL, &error);
    g_assert_no_error (error);
    assert_odd_pool (pool);
  }
  g_assert_true (
      tusk_state_delete_connection_sync (state, saved->id, NULL, &error));
  g_assert_no_error (error);
  tusk_state_free (state);

  assert_status (f, RUN (f, NULL, "conn", "rm", "odd"), 0);
}

/* ---- the history through libtusk ----------------------------------------- */

/* tusk_query_execute_sync() with a storage records each statement; the
 * stored SQL and error message hide the password, and the raw file holds
 * none. */
static void
test_history_redacted (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("history");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGSOCKET"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (ROLE);
  g_assert_true (tusk_state_save_connection_sync (state, config, DB_PASSWORD,
                                                  NULL, &error));
  g_assert_no_error (error);
  g_autoptr (TuskPool) pool
      = tusk_state_connect_sync (state, config->id, NULL, &error);
  g_assert_no_error (error);

  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.storage = tusk_test_open_storage (state);

  /* One that works (the same password again) and one the server refuses:
   * its error message quotes the unterminated string. */
  static const char *const statements[] = {
    "ALTER ROLE " ROLE " PASSWORD $$" DB_PASSWORD "$$",
    "ALTER ROLE " ROLE " PASSWORD '" DB_PASSWORD,
  };
  g_autoptr (TuskQueryResult) ok
      = tusk_query_execute_sync (pool, statements[0], &options, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TuskQueryResult) failed
      = tusk_query_execute_sync (pool, statements[1], &options, NULL, &error);
  g_assert_null (failed);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  assert_contains (error->message, DB_PASSWORD); /* the server's words */
  g_clear_error (&error);
  tusk_storage_flush (tusk_test_open_storage (state));

  g_autoptr (GPtrArray) entries = tusk_history_repo_list (
      tusk_test_open_storage (state), config->id, -1, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (entries->len, ==, 2);
  const TuskHistoryEntry *newest = entries->pdata[0];
  const TuskHistoryEntry *oldest = entries->pdata[1];
  g_assert_cmpstr (oldest->sql, ==, "ALTER ROLE " ROLE " PASSWORD '***'");
  g_assert_null (oldest->error_message);
  g_assert_cmpstr (newest->sql, ==, "ALTER ROLE " ROLE " PASSWORD '***'");
  g_assert_nonnull (newest->error_message);
  assert_contains (newest->error_message, "***");
  assert_no_secret ("the error message", newest->error_message,
                    strlen (newest->error_message));

  /* The database file and its WAL (still there while the state is open),
   * as bytes, then its tables. */
  static const char *const names[] = { "tusk.db", "tusk.db-wal" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (f->data_dir, names[i], NULL);
      g_autofree char *contents = NULL;
      gsize length = 0;
      g_assert_true (g_file_get_contents (path, &contents, &length, NULL));
      assert_no_secret (path, contents, length);
    }
  g_clear_pointer (&pool, tusk_pool_unref);
  tusk_state_free (state);
  g_assert_cmpuint (check_database (f->data_dir), >, 0);
}

/* A statement the server refuses, whose error quotes the password: the log
 * line that reports the failure (at TUSK_LOG=trace) must not hold it. */
static void
test_failed_statement_log (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("failing");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGSOCKET"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (ROLE);
  g_autoptr (TuskPool) pool = tusk_state_connect_config_sync (
      state, config, DB_PASSWORD, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TuskQueryResult) failed = tusk_query_execute_sync (
      pool, "ALTER ROLE " ROLE " PASSWORD '" DB_PASSWORD, NULL, NULL, &error);
  g_assert_null (failed);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  g_clear_pointer (&pool, tusk_pool_unref);
  tusk_state_free (state);

  g_autofree char *logs = g_build_filename (f->data_dir, "logs", NULL);
  guint files = 0;
  check_tree (logs, &files);
  g_assert_cmpuint (files, >=, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* libtusk in this process logs everything too. */
  g_setenv ("TUSK_LOG", "trace", TRUE);
  /* The keyring's bus, sshd and PostgreSQL come from scripts/test-env.sh;
   * a missing one fails here rather than skipping. */
  tusk_test_env ("TUSK_TEST_KEYRING");
  tusk_test_env ("TUSK_TEST_SSH_HOST");
  secrets[0] = DB_PASSWORD;
  secrets[1] = DB_PASSWORD_URI;
  secrets[2] = DB_MARKER;
  secrets[3] = tusk_test_env ("TUSK_TEST_SSH_PASSWORD");
  server_set_up ();

  g_test_add_func ("/tusk/security/redact-sql", test_redact_sql);
  g_test_add ("/tusk/security/history-redacted", Fixture, NULL, fixture_set_up,
              test_history_redacted, fixture_tear_down);
  g_test_add ("/tusk/security/literal-values", Fixture, NULL, fixture_set_up,
              test_literal_values, fixture_tear_down);
  g_test_add ("/tusk/security/session", Fixture, NULL, fixture_set_up,
              test_session, fixture_tear_down);
  g_test_add ("/tusk/security/failed-statement-log", Fixture, NULL,
              fixture_set_up, test_failed_statement_log, fixture_tear_down);
  int status = g_test_run ();
  server_tear_down ();
  return status;
}
