/* test-faults.c: libtusk under faults injected into the real components of
 * the test environment (issue 10, item 3): PostgreSQL restarted in the
 * middle of a streamed query and between queries, the server at
 * max_connections, statement_timeout against a user's cancel, the log
 * file's file system full, the SQLite file corrupted between runs, SIGKILL
 * during history writes, and the keyring daemon killed mid-session.
 *
 * What other tests already cover is not repeated here: a backend terminated
 * mid-stream (test-query), an acquire after a restart (test-pool), the
 * SQLSTATE table and libpq-level 53300 / 57014 (test-error), the log
 * writer's EFBIG on its own (test-log), garbage and truncated database
 * files and SIGKILL of a plain storage writer (test-storage), a keychain
 * missing at start (test-credentials).  These drive the same faults through
 * the layers above them, as a front end meets them.
 *
 * Each test says what it observed with g_test_message(); the faults that
 * leave a daemon down run in a subprocess, and the parent brings the daemon
 * back whatever the child did.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <libsecret/secret.h>

#include "tusk.h"
#include "tusk-log-private.h"
#include "tusk-storage-private.h"
#include "tusk-test.h"

/* ---- helpers ------------------------------------------------------------ */

/* Runs the control script named by @variable (TUSK_TEST_PGCTL,
 * TUSK_TEST_KEYRINGCTL) with @action and an optional @mode; fails the test
 * unless it succeeds.  Returns the milliseconds it took. */
static double
run_ctl (const char *variable, const char *action, const char *mode)
{
  const char *argv[] = { tusk_test_env (variable), action, mode, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s %s failed: %s%s", argv[0], action, out, err);
  return (g_get_monotonic_time () - start) / 1000.0;
}

static TuskConnectionConfig *
pg_config (const char *name, gboolean password_role)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup (name);
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env (
      password_role ? "TUSK_TEST_PGUSER_PASSWORD" : "TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  return config;
}

static TuskPool *
new_pool (const TuskConnectionConfig *config, guint max_size)
{
  TuskPoolOptions options;
  tusk_pool_options_init (&options);
  options.max_size = max_size;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, &options, NULL, &error);
  g_assert_no_error (error);
  return pool;
}

/* Runs @sql on @pool and returns (transfer full) the first value. */
static char *
query_value (TuskPool *pool, const char *sql, const TuskQueryOptions *options)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskQueryResult) result
      = tusk_query_execute_sync (pool, sql, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (result->n_rows, >=, 1);
  return g_strdup (tusk_query_result_get_value (result, 0, 0));
}

static void
ignore_notice (void *data, const char *message)
{
  (void)data;
  (void)message;
}

/* A raw libpq connection as the trust role, to @database (NULL: the test
 * database); NULL when it failed, with the message in @message. */
static PGconn *
raw_connect (const char *database, char **message)
{
  const char *keywords[] = { "host", "port", "dbname", "user", NULL };
  const char *values[]
      = { tusk_test_env ("TUSK_TEST_PGHOST"),
          tusk_test_env ("TUSK_TEST_PGPORT"),
          database ? database : tusk_test_env ("TUSK_TEST_PGDATABASE"),
          tusk_test_env ("TUSK_TEST_PGUSER_TRUST"), NULL };
  PGconn *conn = PQconnectdbParams (keywords, values, 0);
  if (PQstatus (conn) == CONNECTION_OK)
    {
      PQsetNoticeProcessor (conn, ignore_notice, NULL);
      return conn;
    }
  if (message)
    *message = g_strdup (PQerrorMessage (conn));
  PQfinish (conn);
  return NULL;
}

static void
raw_exec (PGconn *conn, const char *sql)
{
  PGresult *res = PQexec (conn, sql);
  ExecStatusType status = PQresultStatus (res);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    g_error ("%s: %s", sql, PQerrorMessage (conn));
  PQclear (res);
}

static guint
count_of (const char *haystack, const char *needle)
{
  guint n = 0;
  for (const char *p = haystack; (p = strstr (p, needle)) != NULL;
       p += strlen (needle))
    n++;
  return n;
}

/* ---- PostgreSQL restarted mid-query -------------------------------------- */

typedef struct
{
  GPtrArray *batches; /* TuskRowBatch *, kept */
  gboolean done;
  GError *error;
} Stream;

static void
on_batch (TuskQueryHandle *handle, TuskRowBatch *batch, gpointer data)
{
  (void)handle;
  Stream *s = data;
  g_ptr_array_add (s->batches, tusk_row_batch_ref (batch));
}

static void
on_done (TuskQueryHandle *handle, const TuskQueryResult *result,
         const GError *error, gpointer data)
{
  (void)handle;
  (void)result;
  Stream *s = data;
  s->error = error ? g_error_copy (error) : NULL;
  s->done = TRUE;
}

static gboolean
has_batches (gpointer data)
{
  Stream *s = data;
  return s->batches->len >= 2 || s->done;
}

static void
test_pg_restart_mid_query (void)
{
  g_autoptr (TuskConnectionConfig) config = pg_config ("restart mid", FALSE);
  g_autoptr (TuskPool) pool = new_pool (config, 2);
  TuskRuntime *runtime = tusk_runtime_new (2);

  Stream s
      = { g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_row_batch_unref),
          FALSE, NULL };
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.batch_size = 1000;
  options.max_batches_in_flight = 2;
  const TuskQueryStreamFuncs funcs = { NULL, on_batch, on_done };
  g_autoptr (TuskQueryHandle) handle = tusk_query_stream (
      pool, runtime, "SELECT g FROM generate_series (1, 50000000) g", &options,
      &funcs, &s, NULL, NULL);

  /* Two batches are in; the worker is held back by the unread ones. */
  tusk_test_wait_until (has_batches, &s, 30000);
  g_assert_false (s.done);
  double ms = run_ctl ("TUSK_TEST_PGCTL", "restart", "fast");

  tusk_test_wait_for (&s.done, 60000);
  tusk_assert_error (s.error, TUSK_ERROR_CONNECTION);
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (s.error);
  g_assert_true (info->recoverable);
  g_assert_cmpuint (strlen (info->hint), >, 10);
  g_test_message ("pg_ctl restart: %.0f ms; the stream ended with: %s [%s] "
                  "(hint: %s)",
                  ms, s.error->message,
                  tusk_error_get_sqlstate (s.error)
                      ? tusk_error_get_sqlstate (s.error)
                      : "no SQLSTATE",
                  info->hint);

  /* Every batch that arrived stays readable, the rows in order with none
   * missing (the last one may be short: the server went mid-batch). */
  g_assert_cmpuint (s.batches->len, >=, 2);
  guint64 rows = 0;
  for (guint i = 0; i < s.batches->len; i++)
    {
      TuskRowBatch *batch = s.batches->pdata[i];
      guint n = tusk_row_batch_get_n_rows (batch);
      g_assert_cmpuint (tusk_row_batch_get_first_row (batch), ==, rows);
      if (i + 1 < s.batches->len)
        g_assert_cmpuint (n, ==, 1000);
      g_assert_cmpuint (n, >=, 1);
      g_autofree char *first = g_strdup_printf ("%" G_GUINT64_FORMAT, rows + 1);
      g_autofree char *last = g_strdup_printf ("%" G_GUINT64_FORMAT, rows + n);
      g_assert_cmpstr (tusk_row_batch_get_value (batch, 0, 0, NULL), ==, first);
      g_assert_cmpstr (tusk_row_batch_get_value (batch, n - 1, 0, NULL), ==,
                       last);
      rows += n;
    }
  g_test_message ("%" G_GUINT64_FORMAT " rows in %u batches arrived, all "
                  "readable",
                  rows, s.batches->len);

  /* The next query on the same pool works. */
  g_autofree char *one = query_value (pool, "SELECT 1", NULL);
  g_assert_cmpstr (one, ==, "1");

  g_ptr_array_unref (s.batches);
  g_clear_error (&s.error);
  tusk_runtime_free (runtime);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- PostgreSQL restarted between queries -------------------------------- */

static void
test_pg_restart_between_queries (void)
{
  g_autoptr (TuskConnectionConfig) config = pg_config ("restart idle", FALSE);
  g_autoptr (TuskPool) pool = new_pool (config, 3);
  g_autoptr (GError) error = NULL;

  /* Three connections, idle in the pool when the server goes. */
  g_autoptr (GHashTable) before
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  TuskPoolConn *held[3];
  for (int i = 0; i < 3; i++)
    {
      held[i] = tusk_pool_acquire_sync (pool, NULL, &error);
      g_assert_no_error (error);
      TuskQueryOptions options;
      tusk_query_options_init (&options);
      options.conn = held[i];
      g_hash_table_add (
          before, query_value (pool, "SELECT pg_backend_pid ()", &options));
    }
  for (int i = 0; i < 3; i++)
    tusk_pool_release (held[i]);
  g_assert_cmpuint (g_hash_table_size (before), ==, 3);

  double ms = run_ctl ("TUSK_TEST_PGCTL", "restart", "fast");

  /* Every query after the restart works: the pool replaces each dead idle
   * connection it hands out, and no error reaches the caller. */
  for (int i = 0; i < 6; i++)
    {
      g_autofree char *pid
          = query_value (pool, "SELECT pg_backend_pid ()", NULL);
      g_assert_false (g_hash_table_contains (before, pid));
    }
  TuskPoolStatus status;
  tusk_pool_get_status (pool, &status);
  g_assert_cmpuint (status.size, >=, 1);
  g_assert_cmpuint (status.size, <=, 3);
  g_assert_cmpint (status.available, ==, (int)status.size);
  g_assert_cmpuint (status.waiting, ==, 0);
  g_test_message ("pg_ctl restart: %.0f ms with 3 idle connections; the 6 "
                  "queries after it all succeeded, on new backends; pool "
                  "size %u",
                  ms, status.size);
}

/* ---- the server at max_connections --------------------------------------- */

static void
test_pg_too_many_connections (void)
{
  g_autoptr (GPtrArray) fillers
      = g_ptr_array_new_with_free_func ((GDestroyNotify)PQfinish);
  g_autofree char *refusal = NULL;
  /* Fill the server (max_connections = 50 in the test environment). */
  for (int i = 0; i < 500 && refusal == NULL; i++)
    {
      PGconn *conn = raw_connect (NULL, &refusal);
      if (conn)
        g_ptr_array_add (fillers, conn);
    }
  g_assert_nonnull (refusal);
  g_assert_nonnull (strstr (refusal, "too many clients"));
  g_test_message ("the server took %u connections, then: %s", fillers->len,
                  g_strstrip (refusal));

  g_autoptr (TuskConnectionConfig) config = pg_config ("full", FALSE);
  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_pool_new_sync (config, NULL, NULL, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "53300");
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  g_assert_nonnull (strstr (info->hint, "max_connections"));
  g_assert_true (info->recoverable);
  g_test_message ("pool: %s: %s (hint: %s)", info->error_type, info->message,
                  info->hint);

  /* One slot free again: the same config works.  The closed backend
   * gives its slot back when it has exited, a moment after PQfinish ():
   * until then the server still counts it (53300 again, nothing else). */
  g_ptr_array_remove_index (fillers, fillers->len - 1);
  TuskPool *pool = NULL;
  for (int tries = 0; pool == NULL && tries < 100; tries++)
    {
      g_clear_error (&error);
      pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
      if (pool == NULL)
        {
          g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "53300");
          g_usleep (100 * 1000);
        }
    }
  g_assert_no_error (error);
  g_autofree char *one = query_value (pool, "SELECT 1", NULL);
  g_assert_cmpstr (one, ==, "1");
  tusk_pool_unref (pool);
}

/* A pool that grows into a database's CONNECTION LIMIT: the acquire that
 * would open one connection too many fails with 53300, the pool stays as
 * it was, and the next acquire after a release works. */
static void
test_pg_pool_grows_into_limit (void)
{
  PGconn *admin = raw_connect ("postgres", NULL);
  g_assert_nonnull (admin);
  raw_exec (admin, "DROP DATABASE IF EXISTS tusk_faults_limited");
  raw_exec (admin, "CREATE DATABASE tusk_faults_limited CONNECTION LIMIT 1");

  /* The limit binds roles that are not superusers: the password role. */
  g_autoptr (TuskConnectionConfig) config = pg_config ("limited", TRUE);
  g_free (config->database);
  config->database = g_strdup ("tusk_faults_limited");
  TuskPoolOptions options;
  tusk_pool_options_init (&options);
  options.max_size = 2;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (
      config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), &options, NULL, &error);
  g_assert_no_error (error);
  TuskPoolConn *first = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (tusk_pool_acquire_sync (pool, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "53300");
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  g_test_message ("second connection: %s (hint: %s)", info->message,
                  info->hint);
  TuskPoolStatus status;
  tusk_pool_get_status (pool, &status);
  g_assert_cmpuint (status.size, ==, 1);
  g_assert_cmpint (status.available, ==, 0);
  g_assert_cmpuint (status.waiting, ==, 0);

  tusk_pool_release (first);
  g_clear_error (&error);
  g_autofree char *one = query_value (pool, "SELECT 1", NULL);
  g_assert_cmpstr (one, ==, "1");
  tusk_pool_unref (pool);
  raw_exec (admin, "DROP DATABASE tusk_faults_limited");
  PQfinish (admin);
}

/* ---- statement_timeout against a user's cancel ----------------------------
 */

typedef struct
{
  gboolean done;
  TuskQueryResult *result;
  GError *error;
} AsyncRun;

static void
on_executed (GObject *source, GAsyncResult *res, gpointer data)
{
  (void)source;
  AsyncRun *run = data;
  run->result = tusk_query_execute_finish (res, &run->error);
  run->done = TRUE;
}

static void
test_pg_statement_timeout_vs_cancel (void)
{
  /* The connection's own statement timeout, sent by the pool in every
   * connection's startup packet. */
  g_autoptr (TuskConnectionConfig) config = pg_config ("timeout", FALSE);
  config->options.statement_timeout_secs = 1;
  g_autoptr (TuskPool) pool = new_pool (config, 2);
  g_autofree char *shown = query_value (pool, "SHOW statement_timeout", NULL);
  g_assert_cmpstr (shown, ==, "1s");

  g_autoptr (GError) timeout = NULL;
  g_assert_null (tusk_query_execute_sync (pool, "SELECT pg_sleep (10)", NULL,
                                          NULL, &timeout));
  tusk_assert_error (timeout, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (timeout), ==, "57014");
  g_autoptr (TuskErrorInfo) timeout_info = tusk_error_info_new (timeout);
  g_assert_nonnull (strstr (timeout_info->hint, "statement_timeout"));
  g_assert_cmpstr (timeout_info->error_type, ==, "Query Error");

  /* A user's cancel of the same statement, on a pool without a timeout. */
  g_autoptr (TuskConnectionConfig) untimed = pg_config ("cancel", FALSE);
  untimed->options.statement_timeout_secs = 0;
  g_autoptr (TuskPool) other = new_pool (untimed, 2);
  TuskRuntime *runtime = tusk_runtime_new (2);
  AsyncRun run = { 0 };
  g_autoptr (TuskQueryHandle) handle = tusk_query_execute_async (
      other, runtime, "SELECT pg_sleep (30) /* tusk-faults cancel */", NULL,
      NULL, on_executed, &run);
  /* Cancel once the server runs it. */
  for (gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;;)
    {
      g_autofree char *active = query_value (
          pool,
          "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
          "AND query LIKE '%tusk-faults cancel */'",
          NULL);
      if (g_strcmp0 (active, "1") == 0)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (20 * 1000);
    }
  tusk_query_handle_cancel (handle);
  tusk_test_wait_for (&run.done, 30000);
  g_assert_null (run.result);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY_CANCELLED);
  g_autoptr (TuskErrorInfo) cancel_info = tusk_error_info_new (run.error);
  g_assert_cmpstr (cancel_info->error_type, ==, "Query Cancelled");
  g_assert_cmpstr (cancel_info->hint, !=, timeout_info->hint);
  g_test_message ("timeout: %s [%s] (hint: %s); user cancel: %s [%s] (hint: "
                  "%s)",
                  timeout_info->error_type, timeout->message,
                  timeout_info->hint, cancel_info->error_type,
                  run.error->message, cancel_info->hint);

  /* Both pools are clean afterwards. */
  g_autofree char *one = query_value (pool, "SELECT 1", NULL);
  g_autofree char *two = query_value (other, "SELECT 2", NULL);
  g_assert_cmpstr (one, ==, "1");
  g_assert_cmpstr (two, ==, "2");
  g_clear_error (&run.error);
  tusk_runtime_free (runtime);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- the log file's file system full ------------------------------------- */

#define LOG_LIMIT (4 * 1024 * 1024)

/* Runs @n queries on @pool recording history in @storage. */
static void
run_queries (TuskPool *pool, TuskStorage *storage, int n, const char *tag)
{
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.storage = storage;
  for (int i = 0; i < n; i++)
    {
      g_autofree char *sql = g_strdup_printf ("SELECT '%s %d'", tag, i);
      g_autofree char *value = query_value (pool, sql, &options);
      g_autofree char *expected = g_strdup_printf ("%s %d", tag, i);
      g_assert_cmpstr (value, ==, expected);
    }
}

static void
test_log_disk_full (void)
{
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  /* The child.  The log file alone fills up: it is topped up to just
   * under a file-size limit that the database files stay far below. */
  signal (SIGXFSZ, SIG_IGN); /* so that write() fails with EFBIG */
  g_setenv ("TUSK_LOG", "trace", TRUE);
  TuskTestConsole console;
  tusk_test_console_start (&console);
  g_autofree char *root = g_dir_make_tmp ("tusk-faults-XXXXXX", NULL);
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (root, &error);
  g_assert_no_error (error);
  g_autofree char *path = tusk_log_dup_file_path ();
  g_assert_nonnull (path);
  tusk_log_flush ();

  FILE *fill = fopen (path, "a");
  g_assert_nonnull (fill);
  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  static const char filler[]
      = "# filler that brings the log file close to its size limit\n";
  for (goffset size = st.st_size; size < LOG_LIMIT - 256;
       size += sizeof filler - 1)
    fputs (filler, fill);
  fclose (fill);
  struct rlimit rl = { LOG_LIMIT, LOG_LIMIT };
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &rl), ==, 0);

  /* Work as a session does: save, connect, query (each logs at trace). */
  g_autoptr (TuskConnectionConfig) config = pg_config ("disk full", TRUE);
  g_assert_true (tusk_state_save_connection_sync (
      state, config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, &error));
  g_assert_no_error (error);
  TuskPool *pool = tusk_state_connect_sync (state, config->id, NULL, &error);
  g_assert_no_error (error);
  TuskStorage *storage = tusk_test_open_storage (state);
  run_queries (pool, storage, 20, "before");
  tusk_log_flush ();

  g_assert_false (tusk_log_file_active ());
  g_autofree char *warning = g_strdup_printf (
      " WARN tusk-log: cannot write the log file %s: %s; logging to the "
      "console only\n",
      path, g_strerror (EFBIG));
  g_autofree char *seen = tusk_test_console_dup (&console);
  g_assert_nonnull (strstr (seen, warning));

  /* It keeps working, on the console. */
  run_queries (pool, storage, 20, "after");
  tusk_info ("still logging after the disk filled");
  g_autofree char *later = tusk_test_console_dup (&console);
  g_assert_nonnull (strstr (
      later, " INFO test-faults: still logging after the disk filled\n"));
  g_assert_cmpuint (count_of (later, "cannot write the log file"), ==, 1);
  tusk_storage_flush (storage);
  g_assert_cmpint (tusk_history_repo_count (storage, config->id, &error), ==,
                   40);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_size, <=, LOG_LIMIT);
  /* The figures, on stderr: the parent passes it through. */
  g_printerr ("# log file stopped at %" G_GOFFSET_FORMAT
              " bytes (limit %d); %s",
              (goffset)st.st_size, LOG_LIMIT, warning + 1);
  tusk_pool_unref (pool);
  tusk_state_free (state);

  /* What was saved is there in the next run. */
  rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
  setrlimit (RLIMIT_FSIZE, &rl);
  TuskStorage *again = tusk_storage_open (root, &error);
  g_assert_no_error (error);
  g_assert_false (tusk_storage_was_reset (again));
  g_assert_cmpint (tusk_history_repo_count (again, config->id, &error), ==, 40);
  tusk_storage_close (again);
  tusk_test_console_stop (&console);
  tusk_test_remove_tree (root);
}

/* ---- the SQLite file corrupted between runs ------------------------------ */

typedef enum
{
  CORRUPT_TABLE_PAGES, /* every page after the first: garbage */
  CORRUPT_SCHEMA_PAGE, /* the first page past its 100-byte header */
} Corruption;

/* Overwrites part of @path with garbage; returns (transfer full) the
 * corrupted bytes. */
static GBytes *
corrupt (const char *path, Corruption how)
{
  g_autofree char *bytes = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &bytes, &len, NULL));
  g_assert_cmpuint (len, >=, 4 * 4096);
  g_assert_cmpint (memcmp (bytes, "SQLite format 3", 16), ==, 0);
  GRand *rand = g_rand_new_with_seed (10);
  gsize from = how == CORRUPT_TABLE_PAGES ? 4096 : 100;
  gsize to = how == CORRUPT_TABLE_PAGES ? len : 4096;
  for (gsize i = from; i < to; i++)
    bytes[i] = (char)g_rand_int_range (rand, 0, 256);
  g_rand_free (rand);
  g_assert_true (g_file_set_contents (path, bytes, len, NULL));
  return g_bytes_new_take (g_steal_pointer (&bytes), len);
}

static char *
find_backup (const char *dir)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;
  char *found = NULL;
  while ((name = g_dir_read_name (listing)) != NULL)
    if (g_str_has_prefix (name, "tusk.db.corrupt-")
        && !g_str_has_suffix (name, "-wal") && !g_str_has_suffix (name, "-shm"))
      {
        g_assert_null (found);
        found = g_build_filename (dir, name, NULL);
      }
  return found;
}

static void
corrupted_between_runs (Corruption how)
{
  g_autofree char *root = g_dir_make_tmp ("tusk-faults-XXXXXX", NULL);
  g_autofree char *db = g_build_filename (root, "tusk.db", NULL);
  g_autoptr (GError) error = NULL;

  /* Run 1: a connection, its history, some UI state. */
  TuskState *state = tusk_state_new (root, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) before = pg_config ("before", FALSE);
  g_assert_true (
      tusk_state_save_connection_sync (state, before, NULL, NULL, &error));
  g_assert_no_error (error);
  TuskStorage *storage = tusk_test_open_storage (state);
  for (int i = 0; i < 300; i++)
    {
      g_autofree char *sql = g_strdup_printf ("SELECT %d -- %0200d", i, i);
      g_autoptr (TuskHistoryEntry) entry
          = tusk_history_entry_new (before->id, sql);
      g_assert_true (tusk_history_repo_add (storage, entry, &error));
    }
  tusk_state_free (state);

  /* Run 1's pages are in the WAL, which a close keeps: into the file with
   * them, so that the damage below hits them. */
  tusk_test_checkpoint (db);

  /* Between runs: part of the file turns to garbage. */
  g_autoptr (GBytes) damaged = corrupt (db, how);

  /* Run 2: the damaged file is kept aside, a fresh one works, and the
   * person is told. */
  TuskTestConsole console;
  tusk_test_console_start (&console);
  state = tusk_state_new (root, &error);
  g_assert_no_error (error);
  storage = tusk_test_open_storage (state);
  g_assert_true (tusk_storage_was_reset (storage));
  g_assert_false (tusk_storage_is_in_memory (storage));
  g_autofree char *backup = find_backup (root);
  g_assert_nonnull (backup);
  const char *message = tusk_storage_get_reset_message (storage);
  g_assert_nonnull (strstr (message, backup));
  g_autofree char *kept = NULL;
  gsize kept_len = 0;
  g_assert_true (g_file_get_contents (backup, &kept, &kept_len, NULL));
  g_assert_cmpmem (kept, kept_len, g_bytes_get_data (damaged, NULL),
                   g_bytes_get_size (damaged));
  GStatBuf st;
  g_assert_cmpint (g_stat (backup, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_autofree char *seen = tusk_test_console_dup (&console);
  g_autofree char *warning
      = g_strdup_printf (" WARN tusk-state: %s\n", message);
  g_assert_nonnull (strstr (seen, warning));
  tusk_test_console_stop (&console);
  g_test_message ("%s", message);

  g_autoptr (GPtrArray) none = tusk_connection_repo_load_all (storage, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);
  g_autoptr (TuskConnectionConfig) after = pg_config ("after", FALSE);
  g_assert_true (
      tusk_state_save_connection_sync (state, after, NULL, NULL, &error));
  g_assert_no_error (error);
  TuskPool *pool = tusk_state_connect_sync (state, after->id, NULL, &error);
  g_assert_no_error (error);
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.storage = storage;
  g_autofree char *one = query_value (pool, "SELECT 1", &options);
  g_assert_cmpstr (one, ==, "1");
  tusk_pool_unref (pool);
  tusk_state_free (state);

  /* Run 3: a normal start, with what run 2 saved. */
  storage = tusk_storage_open (root, &error);
  g_assert_no_error (error);
  g_assert_false (tusk_storage_was_reset (storage));
  g_autoptr (TuskConnectionConfig) loaded
      = tusk_connection_repo_load (storage, after->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (loaded->name, ==, "after");
  g_assert_cmpint (tusk_history_repo_count (storage, NULL, &error), ==, 1);
  tusk_storage_close (storage);
  tusk_test_remove_tree (root);
}

static void
test_storage_corrupt_pages (void)
{
  corrupted_between_runs (CORRUPT_TABLE_PAGES);
}

static void
test_storage_corrupt_schema (void)
{
  corrupted_between_runs (CORRUPT_SCHEMA_PAGE);
}

/* ---- SIGKILL during history writes --------------------------------------- */

#define HISTORY_WRITES 3000

typedef struct
{
  TuskStorage *storage;
  int n;
  int *acked;
} HistoryAck;

/* Entries commit in the order they were added: acknowledge each one as
 * its commit is reported, on stdout, for the parent. */
static void
history_added (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  HistoryAck *ack = data;
  g_autoptr (GError) error = NULL;
  if (tusk_history_repo_add_finish (ack->storage, result, &error) < 0)
    g_error ("history entry %d: %s", ack->n, error->message);
  char line[32];
  int len = g_snprintf (line, sizeof line, "%d\n", ack->n);
  if (write (STDOUT_FILENO, line, len) != len)
    _exit (5);
  *ack->acked = ack->n;
  g_free (ack);
}

static int
child_history (const char *dir, const char *connection_id)
{
  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  g_assert_no_error (error);
  int acked = 0;
  for (int n = 1; n <= HISTORY_WRITES; n++)
    {
      g_autofree char *sql = g_strdup_printf ("SELECT %d", n);
      g_autoptr (TuskHistoryEntry) entry
          = tusk_history_entry_new (connection_id, sql);
      entry->row_count = 1;
      entry->execution_time_ms = n % 7;
      HistoryAck *ack = g_new (HistoryAck, 1);
      *ack = (HistoryAck){ storage, n, &acked };
      tusk_history_repo_add_async (storage, entry, NULL, history_added, ack);
    }
  while (acked < HISTORY_WRITES)
    g_main_context_iteration (NULL, TRUE);
  for (;;) /* the parent's SIGKILL comes first */
    pause ();
  return 0;
}

static void
test_storage_sigkill_history (void)
{
  g_autofree char *root = g_dir_make_tmp ("tusk-faults-XXXXXX", NULL);
  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (root, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) config = pg_config ("history", FALSE);
  g_assert_true (tusk_connection_repo_save (storage, config, &error));
  g_assert_no_error (error);
  tusk_storage_close (storage);

  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  const char *argv[] = { exe, "--child-history", root, config->id, NULL };
  GPid pid;
  int out_fd = -1;
  g_assert_true (g_spawn_async_with_pipes (
      NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
      NULL, &out_fd, NULL, &error));
  g_assert_no_error (error);

  /* Read acknowledgements; kill mid-stream; keep every one already sent. */
  GString *pending = g_string_new (NULL);
  int max_acked = 0;
  int acked_at_kill = 0;
  char buf[4096];
  ssize_t n;
  while ((n = read (out_fd, buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      g_string_append_len (pending, buf, n);
      char *nl;
      while ((nl = strchr (pending->str, '\n')) != NULL)
        {
          int acked = atoi (pending->str);
          g_assert_cmpint (acked, ==, max_acked + 1); /* in order */
          max_acked = acked;
          g_string_erase (pending, 0, nl - pending->str + 1);
        }
      if (acked_at_kill == 0 && max_acked >= HISTORY_WRITES / 5)
        {
          g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
          acked_at_kill = max_acked;
        }
    }
  close (out_fd);
  int status = 0;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
  g_string_free (pending, TRUE);

  storage = tusk_storage_open (root, &error);
  g_assert_no_error (error);
  g_assert_false (tusk_storage_was_reset (storage));
  sqlite3 *db = tusk_storage_reader (storage, &error);
  g_assert_no_error (error);
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (
      sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &stmt, NULL), ==,
      SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *)sqlite3_column_text (stmt, 0), ==, "ok");
  sqlite3_finalize (stmt);
  /* Every acknowledged entry, once each. */
  g_assert_cmpint (
      sqlite3_prepare_v2 (db,
                          "SELECT count(DISTINCT sql_text), count(*) FROM "
                          "query_history WHERE CAST(substr(sql_text, 8) AS "
                          "INTEGER) BETWEEN 1 AND ?1",
                          -1, &stmt, NULL),
      ==, SQLITE_OK);
  sqlite3_bind_int (stmt, 1, max_acked);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, max_acked);
  g_assert_cmpint (sqlite3_column_int (stmt, 1), ==, max_acked);
  sqlite3_finalize (stmt);
  gint64 kept = tusk_history_repo_count (storage, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kept, >=, max_acked);
  g_test_message ("SIGKILL after %d acknowledged history writes of %d; "
                  "%d acknowledged in all, %" G_GINT64_FORMAT
                  " on disk after the restart, integrity_check ok",
                  acked_at_kill, HISTORY_WRITES, max_acked, kept);
  tusk_storage_close (storage);
  tusk_test_remove_tree (root);
}

/* ---- the keyring daemon killed mid-session ------------------------------- */

static gboolean
keychain_gone (gpointer credentials)
{
  return !tusk_credentials_is_available (credentials);
}

/* After a daemon was killed: what its last moments may have left in the
 * keyring file (a probe item whose deletion was not saved, a store that
 * reached it), so that later tests find the keyring as they expect. */
static void
keyring_clean_up (void)
{
  static const SecretSchema schema = {
    .name = TUSK_CREDENTIALS_SERVICE,
    .flags = SECRET_SCHEMA_DONT_MATCH_NAME,
    .attributes = { { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
                    { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
                    { NULL, 0 } },
  };
  static const char *const accounts[]
      = { "tusk:availability-probe", "db:faults-call", "ssh:faults" };
  for (gsize i = 0; i < G_N_ELEMENTS (accounts); i++)
    {
      g_autoptr (GError) error = NULL;
      secret_password_clear_sync (&schema, NULL, &error, "service",
                                  TUSK_CREDENTIALS_SERVICE, "account",
                                  accounts[i], NULL);
      g_assert_no_error (error);
    }
  secret_service_disconnect ();
}

static void
keyring_killed_child (void)
{
  g_setenv ("TUSK_LOG", "warn", TRUE);
  TuskTestConsole console;
  tusk_test_console_start (&console);
  g_autofree char *root = g_dir_make_tmp ("tusk-faults-XXXXXX", NULL);
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (root, &error);
  g_assert_no_error (error);
  TuskCredentials *credentials = tusk_state_get_credentials (state);
  g_assert_true (tusk_credentials_is_available (credentials));
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");

  /* Before: a password in the keychain, used to connect. */
  g_autoptr (TuskConnectionConfig) first = pg_config ("before the kill", TRUE);
  g_assert_true (
      tusk_state_save_connection_sync (state, first, password, NULL, &error));
  g_assert_no_error (error);
  TuskPool *pool = tusk_state_connect_sync (state, first->id, NULL, &error);
  g_assert_no_error (error);
  tusk_pool_unref (pool);
  g_assert_true (tusk_state_disconnect (state, first->id));

  /* A session whose first call is a look-up that finds its secret (its
   * probe then writes no test entry) watches the daemon all the same. */
  TuskCredentials *reader = tusk_credentials_new ();
  char *found = tusk_credentials_lookup_sync (reader, TUSK_CREDENTIAL_KIND_DB,
                                              first->id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, password);
  tusk_credentials_secret_free (found);
  g_assert_true (tusk_credentials_is_available (reader));

  /* A second session uses the keychain right after the kill: whichever it
   * meets first, the failed call or the news that the daemon left, that
   * call too succeeds, in memory. */
  TuskCredentials *other = tusk_credentials_new ();
  g_assert_true (tusk_credentials_is_available (other));
  run_ctl ("TUSK_TEST_KEYRINGCTL", "stop", NULL);
  g_assert_true (tusk_credentials_store_sync (other, TUSK_CREDENTIAL_KIND_SSH,
                                              "faults", "right after the kill",
                                              "s3cret", NULL, &error));
  g_assert_no_error (error);
  g_assert_false (tusk_credentials_is_available (other));
  char *held = tusk_credentials_lookup_sync (other, TUSK_CREDENTIAL_KIND_SSH,
                                             "faults", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (held, ==, "s3cret");
  tusk_credentials_secret_free (held);
  g_autofree char *other_reason
      = g_strdup (tusk_credentials_get_unavailable_reason (other));
  tusk_credentials_free (other);

  /* The state's keychain thread notices by itself, and warns once; so
   * does the reader's. */
  tusk_test_wait_until (keychain_gone, credentials, 20000);
  tusk_test_wait_until (keychain_gone, reader, 20000);
  g_assert_true (
      g_str_has_prefix (tusk_credentials_get_unavailable_reason (reader),
                        "the Secret Service went away"));
  tusk_credentials_free (reader);
  const char *reason = tusk_credentials_get_unavailable_reason (credentials);
  g_assert_nonnull (reason);
  g_assert_true (g_str_has_prefix (reason, "the Secret Service went away"));
  g_autofree char *warning
      = g_strdup_printf (" WARN tusk-credentials: Keychain unavailable: %s. "
                         "Passwords will be kept for this session only.\n",
                         reason);
  g_autofree char *seen = tusk_test_console_dup (&console);
  g_assert_nonnull (strstr (seen, warning));

  /* The state keeps working, with passwords in memory. */
  g_autoptr (TuskConnectionConfig) second = pg_config ("after the kill", TRUE);
  g_assert_true (
      tusk_state_save_connection_sync (state, second, password, NULL, &error));
  g_assert_no_error (error);
  pool = tusk_state_connect_sync (state, second->id, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *one = query_value (pool, "SELECT 1", NULL);
  g_assert_cmpstr (one, ==, "1");
  tusk_pool_unref (pool);
  g_assert_true (tusk_credentials_has_sync (
      credentials, TUSK_CREDENTIAL_KIND_DB, second->id, NULL, &error));
  g_assert_no_error (error);

  /* The password stored in the keychain is out of reach: connecting asks
   * again (an authentication error, no crash); saving it again works. */
  g_assert_null (tusk_credentials_lookup_sync (
      credentials, TUSK_CREDENTIAL_KIND_DB, first->id, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (tusk_state_connect_sync (state, first->id, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_AUTHENTICATION);
  g_autofree char *refused = g_strdup (error->message);
  g_clear_error (&error);
  g_assert_true (
      tusk_state_save_connection_sync (state, first, password, NULL, &error));
  g_assert_no_error (error);
  pool = tusk_state_connect_sync (state, first->id, NULL, &error);
  g_assert_no_error (error);
  tusk_pool_unref (pool);
  g_assert_true (
      tusk_state_delete_connection_sync (state, second->id, NULL, &error));
  g_assert_no_error (error);

  g_autofree char *after = tusk_test_console_dup (&console);
  g_assert_cmpuint (count_of (after, "Keychain unavailable"), ==, 3);
  tusk_state_free (state);
  tusk_test_console_stop (&console);

  /* Once a daemon runs again, a new session finds the keychain, and the
   * password stored before the kill in it. */
  run_ctl ("TUSK_TEST_KEYRINGCTL", "start", NULL);
  TuskCredentials *fresh = tusk_credentials_new ();
  g_assert_true (tusk_credentials_is_available (fresh));
  char *stored = tusk_credentials_lookup_sync (fresh, TUSK_CREDENTIAL_KIND_DB,
                                               first->id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (stored, ==, password);
  tusk_credentials_secret_free (stored);
  g_assert_true (tusk_credentials_delete_sync (fresh, TUSK_CREDENTIAL_KIND_DB,
                                               first->id, NULL, &error));
  tusk_credentials_free (fresh);
  g_printerr ("# %s\n# a call right after the kill: %s\n# reconnecting the "
              "connection whose password was in the keychain: %s\n",
              g_strstrip (warning), other_reason, refused);
  tusk_test_remove_tree (root);
}

static void
test_keyring_killed (void)
{
  if (g_test_subprocess ())
    {
      keyring_killed_child ();
      return;
    }
  run_ctl ("TUSK_TEST_KEYRINGCTL", "start", NULL);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  /* Whatever the child did, later tests get a running, clean keyring. */
  run_ctl ("TUSK_TEST_KEYRINGCTL", "start", NULL);
  keyring_clean_up ();
  g_test_trap_assert_passed ();
}

/* The daemon dies under a call: the call itself falls back.  Which way it
 * learns of it varies (the call fails with no reply, D-Bus activation
 * started a locked daemon that does not know the session, or the bus's
 * notice came first); each gives the same result. */
static void
keyring_killed_during_call_child (void)
{
  g_setenv ("TUSK_LOG", "warn", TRUE);
  g_autoptr (GError) error = NULL;
  TuskCredentials *credentials = tusk_credentials_new ();
  g_assert_true (tusk_credentials_is_available (credentials));
  run_ctl ("TUSK_TEST_KEYRINGCTL", "kill", NULL);
  g_assert_true (
      tusk_credentials_store_sync (credentials, TUSK_CREDENTIAL_KIND_DB,
                                   "faults-call", NULL, "pw", NULL, &error));
  g_assert_no_error (error);
  g_assert_false (tusk_credentials_is_available (credentials));
  const char *reason = tusk_credentials_get_unavailable_reason (credentials);
  g_assert_true (g_str_has_prefix (reason, "the Secret Service went away"));
  char *held = tusk_credentials_lookup_sync (
      credentials, TUSK_CREDENTIAL_KIND_DB, "faults-call", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (held, ==, "pw");
  tusk_credentials_secret_free (held);
  g_printerr ("# the store that met the dead daemon: %s\n", reason);
  tusk_credentials_free (credentials);
}

static void
test_keyring_killed_during_call (void)
{
  if (g_test_subprocess ())
    {
      keyring_killed_during_call_child ();
      return;
    }
  run_ctl ("TUSK_TEST_KEYRINGCTL", "start", NULL);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  run_ctl ("TUSK_TEST_KEYRINGCTL", "start", NULL);
  keyring_clean_up ();
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  if (argc == 4 && strcmp (argv[1], "--child-history") == 0)
    return child_history (argv[2], argv[3]);

  g_test_init (&argc, &argv, NULL);
  if (!g_test_subprocess ())
    g_setenv ("TUSK_LOG", "warn", TRUE);
  tusk_log_set_filter ("warn", NULL);

  g_test_add_func ("/tusk/faults/pg/restart-mid-query",
                   test_pg_restart_mid_query);
  g_test_add_func ("/tusk/faults/pg/restart-between-queries",
                   test_pg_restart_between_queries);
  g_test_add_func ("/tusk/faults/pg/too-many-connections",
                   test_pg_too_many_connections);
  g_test_add_func ("/tusk/faults/pg/pool-grows-into-limit",
                   test_pg_pool_grows_into_limit);
  g_test_add_func ("/tusk/faults/pg/statement-timeout-vs-cancel",
                   test_pg_statement_timeout_vs_cancel);
  g_test_add_func ("/tusk/faults/log/disk-full", test_log_disk_full);
  g_test_add_func ("/tusk/faults/storage/corrupt-pages",
                   test_storage_corrupt_pages);
  g_test_add_func ("/tusk/faults/storage/corrupt-schema",
                   test_storage_corrupt_schema);
  g_test_add_func ("/tusk/faults/storage/sigkill-history",
                   test_storage_sigkill_history);
  g_test_add_func ("/tusk/faults/keyring/killed-mid-session",
                   test_keyring_killed);
  g_test_add_func ("/tusk/faults/keyring/killed-during-call",
                   test_keyring_killed_during_call);
  return g_test_run ();
}
