/* test-pool.c: the connection pool against the test environment's real
 * PostgreSQL: validation at creation, session defaults in the startup
 * packet, exhaustion and the pool-timeout error with exact status counts,
 * recycling of dirty and broken connections, a server restart, close, the
 * async API on a main loop that keeps ticking, and a random stress run from
 * 8 threads with the status invariants checked throughout.
 *
 * It restarts the server, so meson runs it alone (tests/meson.build). */
#define G_LOG_DOMAIN "tusk-test"

#include "tusk-error.h"
#include "tusk-pool-private.h"
#include "tusk-runtime-private.h"
#include "tusk-runtime.h"
#include "tusk-test.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static void
set (char **field, const char *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

/* A config for the trust role over TCP (transfer full). */
static TuskConnectionConfig *
test_config (void)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  set (&config->name, "pool test");
  set (&config->host, tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  set (&config->database, tusk_test_env ("TUSK_TEST_PGDATABASE"));
  set (&config->username, tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  return config;
}

static TuskPoolOptions
test_options (guint max_size, int wait_timeout_ms)
{
  TuskPoolOptions options;
  tusk_pool_options_init (&options);
  options.max_size = max_size;
  options.wait_timeout_ms = wait_timeout_ms;
  return options;
}

static TuskPool *
new_pool (guint max_size, int wait_timeout_ms)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  TuskPoolOptions options = test_options (max_size, wait_timeout_ms);
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, &options, NULL, &error);
  g_assert_no_error (error);
  return pool;
}

static TuskPoolConn *
acquire (TuskPool *pool)
{
  g_autoptr (GError) error = NULL;
  TuskPoolConn *conn = tusk_pool_acquire_sync (pool, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  return conn;
}

/* Runs @sql and returns (transfer full) the first value of its first row,
 * or NULL for SQL NULL or no row; asserts that it worked. */
static char *
query_value (TuskPoolConn *conn, const char *sql)
{
  PGresult *res = PQexec (tusk_pool_conn_get_pg (conn), sql);
  ExecStatusType status = PQresultStatus (res);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
    g_error ("%s: %s", sql, PQresultErrorMessage (res));
  char *value = NULL;
  if (status == PGRES_TUPLES_OK && PQntuples (res) > 0
      && !PQgetisnull (res, 0, 0))
    value = g_strdup (PQgetvalue (res, 0, 0));
  PQclear (res);
  return value;
}

static void
exec_ok (TuskPoolConn *conn, const char *sql)
{
  g_free (query_value (conn, sql));
}

static int
backend_pid (TuskPoolConn *conn)
{
  return PQbackendPID (tusk_pool_conn_get_pg (conn));
}

static void
assert_status (TuskPool *pool, guint max_size, guint size, int available,
               guint waiting)
{
  TuskPoolStatus status;
  tusk_pool_get_status (pool, &status);
  if (status.max_size != max_size || status.size != size
      || status.available != available || status.waiting != waiting)
    g_error ("status is max_size %u size %u available %d waiting %u; "
             "expected %u %u %d %u",
             status.max_size, status.size, status.available, status.waiting,
             max_size, size, available, waiting);
}

/* Waits (at most 10 s) until the pool has @waiting waiters. */
static void
wait_for_waiting (TuskPool *pool, guint waiting)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  TuskPoolStatus status;
  for (;;)
    {
      tusk_pool_get_status (pool, &status);
      if (status.waiting == waiting)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("%u tasks waiting, expected %u", status.waiting, waiting);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

/* A TCP port on 127.0.0.1 where nothing listens. */
static int
refused_port (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                      G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_autoptr (GInetAddress) loopback
      = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  g_autoptr (GSocketAddress) bound
      = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  /* closed (never listened) on return */
}

/* ---- validation at creation --------------------------------------------- */

static void
assert_creation_fails (TuskConnectionConfig *config, const char *password,
                       TuskErrorCode code, const char *sqlstate)
{
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, password, NULL, NULL, &error);
  g_assert_null (pool);
  tusk_assert_error (error, code);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, sqlstate);
  g_assert_nonnull (tusk_error_get_hint (error));
  g_assert_cmpstr (tusk_error_get_hint (error), !=, "");
  g_test_message ("%s -> %s (%s), hint: %s", sqlstate, error->message,
                  tusk_error_code_name (code), tusk_error_get_hint (error));
}

static void
test_create_ok (void)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;

  g_autoptr (TuskPool) pool
      = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  /* Validated with one connection, which stays idle. */
  assert_status (pool, 4, 1, 1, 0);
  g_assert_true (tusk_pool_get_config (pool) != config);
  g_assert_cmpstr (tusk_pool_get_config (pool)->id, ==, config->id);
  g_assert_false (tusk_pool_is_closed (pool));
}

static void
test_create_password (void)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;

  set (&config->username, tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  assert_creation_fails (config, "wrong password", TUSK_ERROR_AUTHENTICATION,
                         "28P01");

  char *password = g_strdup (tusk_test_env ("TUSK_TEST_PGPASSWORD"));
  TuskPool *pool = tusk_pool_new_sync (config, password, NULL, NULL, &error);
  /* The pool keeps its own copy for the connections it opens later. */
  memset (password, 'x', strlen (password));
  g_free (password);
  g_assert_no_error (error);
  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool); /* a new connection */
  g_assert_cmpint (backend_pid (first), !=, backend_pid (second));
  tusk_pool_release (first);
  tusk_pool_release (second);
  tusk_pool_unref (pool);
}

static void
test_create_missing_database (void)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  set (&config->database, "tusk_no_such_database");
  assert_creation_fails (config, NULL, TUSK_ERROR_CONNECTION, "3D000");
}

static void
test_create_refused_port (void)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  config->port = refused_port ();
  assert_creation_fails (config, NULL, TUSK_ERROR_CONNECTION, "08001");
}

static void
test_create_invalid (void)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;
  TuskPoolOptions options = test_options (TUSK_POOL_MAX_SIZE_LIMIT + 1, 100);

  g_assert_null (tusk_pool_new_sync (config, NULL, &options, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_nonnull (strstr (error->message, "max_size"));
  g_clear_error (&error);

  options = test_options (0, -2);
  g_assert_null (tusk_pool_new_sync (config, NULL, &options, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_nonnull (strstr (error->message, "max_size"));
  g_assert_nonnull (strstr (error->message, "wait_timeout_ms"));
  g_clear_error (&error);

  set (&config->name, NULL);
  g_assert_null (tusk_pool_new_sync (config, NULL, NULL, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_clear_error (&error);

  /* The limit itself is accepted. */
  g_autoptr (TuskConnectionConfig) good = test_config ();
  options = test_options (TUSK_POOL_MAX_SIZE_LIMIT, 100);
  TuskPool *pool = tusk_pool_new_sync (good, NULL, &options, NULL, &error);
  g_assert_no_error (error);
  assert_status (pool, TUSK_POOL_MAX_SIZE_LIMIT, 1, 1, 0);
  tusk_pool_unref (pool);
}

typedef struct
{
  gboolean done;
  gboolean in_call; /* TRUE while the _async call runs */
  gboolean called_in_call;
  GThread *thread;
  TuskPool *pool;     /* tusk_pool_new_finish ()'s, owned */
  TuskPool *from;     /* the pool acquired from, borrowed */
  TuskPoolConn *conn; /* acquired, owned */
  GError *error;
  gint64 at; /* when the callback ran */
} Result;

static void
result_clear (Result *result)
{
  g_clear_error (&result->error);
  g_clear_pointer (&result->pool, tusk_pool_unref);
  g_clear_pointer (&result->conn, tusk_pool_release);
}

static void
on_pool_new (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *result = user_data;
  (void)source;
  result->called_in_call = result->in_call;
  result->thread = g_thread_self ();
  result->pool = tusk_pool_new_finish (res, &result->error);
  result->done = TRUE;
}

static void
test_create_async (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (2);
  g_autoptr (TuskConnectionConfig) config = test_config ();
  Result result = { 0 };

  result.in_call = TRUE;
  tusk_pool_new_async (runtime, config, NULL, NULL, NULL, on_pool_new, &result);
  result.in_call = FALSE;
  tusk_test_wait_for (&result.done, 20000);
  g_assert_false (result.called_in_call);
  g_assert_true (result.thread == g_thread_self ());
  g_assert_no_error (result.error);
  assert_status (result.pool, 4, 1, 1, 0);
  result_clear (&result);

  result = (Result){ 0 };
  set (&config->username, tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  tusk_pool_new_async (runtime, config, "wrong", NULL, NULL, on_pool_new,
                       &result);
  tusk_test_wait_for (&result.done, 20000);
  g_assert_null (result.pool);
  tusk_assert_error (result.error, TUSK_ERROR_AUTHENTICATION);
  g_assert_cmpstr (tusk_error_get_sqlstate (result.error), ==, "28P01");
  result_clear (&result);
}

/* ---- session defaults --------------------------------------------------- */

static void
assert_setting (TuskPoolConn *conn, const char *name, const char *value)
{
  g_autofree char *show = g_strdup_printf ("SHOW %s", name);
  g_autofree char *got = query_value (conn, show);
  g_assert_cmpstr (got, ==, value);

  /* From the startup packet (source "client"), not from a SET ("session")
   * or the server's configuration. */
  g_autofree char *source_sql = g_strdup_printf (
      "SELECT source FROM pg_settings WHERE name = '%s'", name);
  g_autofree char *source = query_value (conn, source_sql);
  g_assert_cmpstr (source, ==, "client");
}

static void
assert_conninfo (TuskPoolConn *conn, const char *keyword, const char *value)
{
  PQconninfoOption *options = PQconninfo (tusk_pool_conn_get_pg (conn));
  const char *found = NULL;
  for (PQconninfoOption *o = options; o->keyword; o++)
    if (g_str_equal (o->keyword, keyword))
      found = o->val;
  g_assert_cmpstr (found, ==, value);
  PQconninfoFree (options);
}

static void
test_session_defaults (void)
{
  g_autoptr (TuskPool) pool = new_pool (4, 1000);
  TuskPoolConn *conns[4];

  /* Every connection: the validated one and three new ones. */
  for (guint i = 0; i < 4; i++)
    conns[i] = acquire (pool);
  assert_status (pool, 4, 4, 0, 0);
  for (guint i = 0; i < 4; i++)
    {
      assert_setting (conns[i], "statement_timeout", "30s");
      assert_setting (conns[i], "idle_in_transaction_session_timeout", "1min");
      assert_setting (conns[i], "application_name", "Tusk");
      g_autofree char *read_only
          = query_value (conns[i], "SHOW default_transaction_read_only");
      g_assert_cmpstr (read_only, ==, "off");
      assert_conninfo (conns[i], "keepalives", "1");
      assert_conninfo (conns[i], "keepalives_idle", "60");
      assert_conninfo (conns[i], "keepalives_interval", "15");
      assert_conninfo (conns[i], "keepalives_count", "3");
      assert_conninfo (conns[i], "connect_timeout", "10");
    }
  for (guint i = 0; i < 4; i++)
    tusk_pool_release (conns[i]);
}

static void
test_session_config (void)
{
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;
  TuskPoolOptions options = test_options (2, 1000);

  /* The config's own statement timeout, read-only, application name. */
  config->options.statement_timeout_secs = 5;
  config->options.read_only = TRUE;
  set (&config->options.application_name, "tusk pool test");
  options.idle_in_transaction_timeout_secs = 0;
  options.create_timeout_ms = 3500; /* bounds connect_timeout (10 s) */
  TuskPool *pool = tusk_pool_new_sync (config, NULL, &options, NULL, &error);
  g_assert_no_error (error);
  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool);
  TuskPoolConn *conns[] = { first, second };
  for (guint i = 0; i < G_N_ELEMENTS (conns); i++)
    {
      assert_setting (conns[i], "statement_timeout", "5s");
      assert_setting (conns[i], "idle_in_transaction_session_timeout", "0");
      assert_setting (conns[i], "default_transaction_read_only", "on");
      assert_setting (conns[i], "application_name", "tusk pool test");
      assert_conninfo (conns[i], "connect_timeout", "4");
      PGresult *res = PQexec (tusk_pool_conn_get_pg (conns[i]),
                              "CREATE TEMP TABLE t (x int)");
      g_assert_cmpstr (PQresultErrorField (res, PG_DIAG_SQLSTATE), ==,
                       "25006"); /* read_only_sql_transaction */
      PQclear (res);
    }
  tusk_pool_release (first);
  tusk_pool_release (second);
  tusk_pool_unref (pool);

  /* The pool's statement timeout, for a config that has none of its own. */
  config->options.statement_timeout_secs = -1;
  config->options.read_only = FALSE;
  options.statement_timeout_secs = 12;
  pool = tusk_pool_new_sync (config, NULL, &options, NULL, &error);
  g_assert_no_error (error);
  first = acquire (pool);
  assert_setting (first, "statement_timeout", "12s");
  tusk_pool_release (first);
  tusk_pool_unref (pool);
}

/* ---- exhaustion --------------------------------------------------------- */

/* The wait timeout, then POOL_TIMEOUT naming the counts. */
static void
test_exhaustion_timeout (void)
{
  g_autoptr (TuskPool) pool = new_pool (2, 200);
  g_autoptr (GError) error = NULL;

  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool);
  assert_status (pool, 2, 2, 0, 0);

  gint64 start = g_get_monotonic_time ();
  g_assert_null (tusk_pool_acquire_sync (pool, NULL, &error));
  gint64 elapsed = g_get_monotonic_time () - start;
  tusk_assert_error (error, TUSK_ERROR_POOL_TIMEOUT);
  g_assert_cmpstr (error->message, ==,
                   "Timed out after 0.2 s waiting for a connection to pool "
                   "test: 2 in use, 1 task waiting");
  g_assert_nonnull (tusk_error_get_hint (error));
  g_assert_cmpint (elapsed, >=, 200000);
  g_assert_cmpint (elapsed, <, 5 * G_USEC_PER_SEC);
  g_test_message ("timed out after %.1f ms", elapsed / 1000.0);
  assert_status (pool, 2, 2, 0, 0); /* the waiter is gone */

  tusk_pool_release (first);
  tusk_pool_release (second);
  assert_status (pool, 2, 2, 2, 0);
}

typedef struct
{
  TuskPool *pool;
  GCancellable *cancellable;
  GError *error;
  int pid;
  gboolean hold; /* release at once when FALSE */
  TuskPoolConn *conn;
} Waiter;

static gpointer
waiter_main (gpointer data)
{
  Waiter *waiter = data;
  TuskPoolConn *conn = tusk_pool_acquire_sync (
      waiter->pool, waiter->cancellable, &waiter->error);
  if (conn)
    {
      g_free (query_value (conn, "SELECT 1"));
      waiter->pid = backend_pid (conn);
      if (waiter->hold)
        waiter->conn = conn;
      else
        tusk_pool_release (conn);
    }
  return NULL;
}

/* Three threads time out one after the other; each error counts the tasks
 * still waiting at that moment: 3, then 2, then 1. */
static void
test_exhaustion_counts (void)
{
  g_autoptr (TuskPool) pool = new_pool (2, 1000);
  Waiter waiters[3] = { 0 };
  GThread *threads[3];

  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool);
  for (guint i = 0; i < 3; i++)
    {
      waiters[i].pool = pool;
      threads[i] = g_thread_new ("waiter", waiter_main, &waiters[i]);
    }
  wait_for_waiting (pool, 3);
  assert_status (pool, 2, 2, -3, 3);

  gboolean seen[4] = { FALSE };
  for (guint i = 0; i < 3; i++)
    {
      g_thread_join (threads[i]);
      tusk_assert_error (waiters[i].error, TUSK_ERROR_POOL_TIMEOUT);
      g_test_message ("%s", waiters[i].error->message);
      g_assert_nonnull (strstr (waiters[i].error->message, ": 2 in use, "));
      for (guint n = 1; n <= 3; n++)
        {
          g_autofree char *tail = g_strdup_printf (
              ": 2 in use, %u %s waiting", n, n == 1 ? "task" : "tasks");
          if (g_str_has_suffix (waiters[i].error->message, tail))
            seen[n] = TRUE;
        }
      g_clear_error (&waiters[i].error);
    }
  g_assert_true (seen[1] && seen[2] && seen[3]);
  assert_status (pool, 2, 2, 0, 0);
  tusk_pool_release (first);
  tusk_pool_release (second);
}

/* A release wakes the oldest waiter, which gets that very connection; the
 * counts follow every step. */
static void
test_release_wakes (void)
{
  g_autoptr (TuskPool) pool = new_pool (2, 10000);
  Waiter waiters[3] = { 0 };
  GThread *threads[3];

  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool);
  int first_pid = backend_pid (first);
  for (guint i = 0; i < 3; i++)
    {
      waiters[i].pool = pool;
      waiters[i].hold = TRUE;
      threads[i] = g_thread_new ("waiter", waiter_main, &waiters[i]);
      wait_for_waiting (pool, i + 1); /* so that the order is known */
    }
  assert_status (pool, 2, 2, -3, 3);

  tusk_pool_release (first);
  g_thread_join (threads[0]);
  g_assert_no_error (waiters[0].error);
  g_assert_cmpint (waiters[0].pid, ==, first_pid);
  assert_status (pool, 2, 2, -2, 2);

  /* A discarded connection's slot goes to the next waiter, who opens a
   * new connection in it. */
  int second_pid = backend_pid (second);
  tusk_pool_conn_discard (second);
  g_thread_join (threads[1]);
  g_assert_no_error (waiters[1].error);
  g_assert_cmpint (waiters[1].pid, !=, second_pid);
  assert_status (pool, 2, 2, -1, 1);

  tusk_pool_release (waiters[0].conn);
  g_thread_join (threads[2]);
  g_assert_no_error (waiters[2].error);
  assert_status (pool, 2, 2, 0, 0);
  tusk_pool_release (waiters[1].conn);
  tusk_pool_release (waiters[2].conn);
  assert_status (pool, 2, 2, 2, 0);
}

/* A cancelled sync waiter leaves at once. */
static void
test_cancel_waiting (void)
{
  g_autoptr (TuskPool) pool = new_pool (1, 10000);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Waiter waiter = { .pool = pool, .cancellable = cancellable };

  TuskPoolConn *conn = acquire (pool);
  GThread *thread = g_thread_new ("waiter", waiter_main, &waiter);
  wait_for_waiting (pool, 1);
  gint64 start = g_get_monotonic_time ();
  g_cancellable_cancel (cancellable);
  g_thread_join (thread);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  tusk_assert_error (waiter.error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&waiter.error);
  assert_status (pool, 1, 1, 0, 0);

  /* Already cancelled: fails before touching the pool. */
  tusk_pool_release (conn);
  g_assert_null (tusk_pool_acquire_sync (pool, cancellable, &waiter.error));
  tusk_assert_error (waiter.error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&waiter.error);
  assert_status (pool, 1, 1, 1, 0);
}

/* ---- async acquire ------------------------------------------------------ */

static void
on_acquired (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *result = user_data;
  (void)source;
  result->called_in_call = result->in_call;
  result->thread = g_thread_self ();
  result->conn = tusk_pool_acquire_finish (result->from, res, &result->error);
  result->at = g_get_monotonic_time ();
  result->done = TRUE;
}

static void
start_acquire (TuskPool *pool, TuskRuntime *runtime, GCancellable *cancellable,
               Result *result)
{
  *result = (Result){ .from = pool };
  result->in_call = TRUE;
  tusk_pool_acquire_async (pool, runtime, cancellable, on_acquired, result);
  result->in_call = FALSE;
}

static void
finish_result (Result *result, TuskPool *pool)
{
  (void)pool;
  tusk_test_wait_for (&result->done, 20000);
  g_assert_false (result->called_in_call);
  g_assert_true (result->thread == g_thread_self ());
}

static void
test_acquire_async (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (2);
  g_autoptr (TuskPool) pool = new_pool (1, 300);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Result first, second, third, fourth;

  /* The idle connection, handed out without blocking. */
  start_acquire (pool, runtime, NULL, &first);
  finish_result (&first, pool);
  g_assert_no_error (first.error);
  g_assert_nonnull (first.conn);
  assert_status (pool, 1, 1, 0, 0);

  /* Waiting holds no worker; a release hands the connection over. */
  start_acquire (pool, runtime, NULL, &second);
  assert_status (pool, 1, 1, -1, 1);
  int pid = backend_pid (first.conn);
  tusk_pool_release (g_steal_pointer (&first.conn));
  finish_result (&second, pool);
  g_assert_no_error (second.error);
  g_assert_cmpint (backend_pid (second.conn), ==, pid);

  /* The wait timeout, counted on the main context. */
  gint64 start = g_get_monotonic_time ();
  start_acquire (pool, runtime, NULL, &third);
  assert_status (pool, 1, 1, -1, 1);
  finish_result (&third, pool);
  tusk_assert_error (third.error, TUSK_ERROR_POOL_TIMEOUT);
  g_assert_cmpint (third.at - start, >=, 300000);
  g_assert_cmpstr (third.error->message, ==,
                   "Timed out after 0.3 s waiting for a connection to pool "
                   "test: 1 in use, 1 task waiting");
  assert_status (pool, 1, 1, 0, 0);

  /* Cancelled while waiting. */
  start_acquire (pool, runtime, cancellable, &fourth);
  assert_status (pool, 1, 1, -1, 1);
  g_cancellable_cancel (cancellable);
  finish_result (&fourth, pool);
  tusk_assert_error (fourth.error, TUSK_ERROR_QUERY_CANCELLED);
  assert_status (pool, 1, 1, 0, 0);
  result_clear (&fourth);

  /* Cancelled after the connection was granted but before finish: the
   * caller sees the cancellation and the connection goes back. */
  g_cancellable_reset (cancellable);
  start_acquire (pool, runtime, cancellable, &fourth);
  tusk_pool_release (g_steal_pointer (&second.conn));
  g_cancellable_cancel (cancellable);
  finish_result (&fourth, pool);
  tusk_assert_error (fourth.error, TUSK_ERROR_QUERY_CANCELLED);
  assert_status (pool, 1, 1, 1, 0);

  result_clear (&first);
  result_clear (&second);
  result_clear (&third);
  result_clear (&fourth);
}

/* ---- recycling ---------------------------------------------------------- */

static void
test_dirty_transaction (void)
{
  g_autoptr (TuskPool) pool = new_pool (1, 5000);

  TuskPoolConn *conn = acquire (pool);
  int pid = backend_pid (conn);
  exec_ok (conn, "BEGIN");
  exec_ok (conn, "CREATE TEMP TABLE dirty_t (x int)");
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_INTRANS);
  tusk_pool_release (conn);

  conn = acquire (pool);
  g_assert_cmpint (backend_pid (conn), ==, pid); /* recycled, not replaced */
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_IDLE);
  g_autofree char *table
      = query_value (conn, "SELECT to_regclass('pg_temp.dirty_t')");
  g_assert_null (table); /* rolled back */

  /* A failed transaction. */
  exec_ok (conn, "BEGIN");
  PQclear (PQexec (tusk_pool_conn_get_pg (conn), "SELECT 1/0"));
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_INERROR);
  tusk_pool_release (conn);
  conn = acquire (pool);
  g_assert_cmpint (backend_pid (conn), ==, pid);
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_IDLE);
  exec_ok (conn, "SELECT 1");
  tusk_pool_release (conn);
}

static void
test_dirty_running (void)
{
  g_autoptr (TuskPool) pool = new_pool (1, 5000);

  /* Released with a statement still running, inside a transaction. */
  TuskPoolConn *conn = acquire (pool);
  int pid = backend_pid (conn);
  exec_ok (conn, "BEGIN");
  g_assert_true (
      PQsendQuery (tusk_pool_conn_get_pg (conn), "SELECT pg_sleep(60)"));
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_ACTIVE);
  tusk_pool_release (conn);

  gint64 start = g_get_monotonic_time ();
  conn = acquire (pool);
  gint64 elapsed = g_get_monotonic_time () - start;
  g_test_message ("cancel + drain + rollback took %.1f ms", elapsed / 1000.0);
  g_assert_cmpint (elapsed, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpint (backend_pid (conn), ==, pid);
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_IDLE);
  exec_ok (conn, "SELECT 1");
  tusk_pool_release (conn);
}

/* A connection whose backend was terminated while idle is replaced on the
 * next acquire; one discarded frees its slot at once. */
static void
test_broken (void)
{
  g_autoptr (TuskPool) pool = new_pool (2, 5000);

  TuskPoolConn *conn = acquire (pool);
  int pid = backend_pid (conn);
  TuskPoolConn *other = acquire (pool);
  g_autofree char *sql
      = g_strdup_printf ("SELECT pg_terminate_backend(%d)", pid);
  g_autofree char *killed = query_value (other, sql);
  g_assert_cmpstr (killed, ==, "t");
  tusk_pool_release (other);
  /* Released once the FATAL has arrived, which libpq has not read. */
  struct pollfd fd
      = { .fd = PQsocket (tusk_pool_conn_get_pg (conn)), .events = POLLIN };
  g_assert_cmpint (poll (&fd, 1, 5000), ==, 1);
  tusk_pool_release (conn);

  /* LIFO: the terminated one is the idle head; it is found dead. */
  conn = acquire (pool);
  exec_ok (conn, "SELECT 1");
  g_assert_cmpint (backend_pid (conn), !=, pid);
  assert_status (pool, 2, 2, 1, 0);

  tusk_pool_conn_discard (conn);
  assert_status (pool, 2, 1, 1, 0);
}

static void
run_pgctl (const char *action)
{
  const char *argv[] = { tusk_test_env ("TUSK_TEST_PGCTL"), action, NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL,
                               NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("pg_ctl %s: %s\n%s%s", action, error->message, out, err);
}

/* After the server restarts, the next acquire hands out a working
 * connection. */
static void
test_restart (void)
{
  g_autoptr (TuskPool) pool = new_pool (2, 5000);

  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool);
  int pids[] = { backend_pid (first), backend_pid (second) };
  exec_ok (first, "SELECT 1");
  tusk_pool_release (first);
  tusk_pool_release (second);

  gint64 start = g_get_monotonic_time ();
  run_pgctl ("restart");
  g_test_message ("pg_ctl restart took %.0f ms",
                  (g_get_monotonic_time () - start) / 1000.0);

  first = acquire (pool);
  g_autofree char *one = query_value (first, "SELECT 1");
  g_assert_cmpstr (one, ==, "1");
  second = acquire (pool);
  g_autofree char *two = query_value (second, "SELECT 2");
  g_assert_cmpstr (two, ==, "2");
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpint (backend_pid (first), !=, pids[i]);
      g_assert_cmpint (backend_pid (second), !=, pids[i]);
    }
  assert_status (pool, 2, 2, 0, 0);
  tusk_pool_release (first);
  tusk_pool_release (second);
}

/* ---- close -------------------------------------------------------------- */

static void
test_close (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (2);
  g_autoptr (TuskPool) pool = new_pool (2, 10000);
  Waiter waiters[2] = { 0 };
  GThread *threads[2];
  Result async_waiter;
  g_autoptr (GError) error = NULL;

  TuskPoolConn *first = acquire (pool);
  TuskPoolConn *second = acquire (pool);
  for (guint i = 0; i < 2; i++)
    {
      waiters[i].pool = pool;
      threads[i] = g_thread_new ("waiter", waiter_main, &waiters[i]);
    }
  wait_for_waiting (pool, 2);
  start_acquire (pool, runtime, NULL, &async_waiter);
  assert_status (pool, 2, 2, -3, 3);

  gint64 start = g_get_monotonic_time ();
  tusk_pool_close (pool);
  g_assert_true (tusk_pool_is_closed (pool));
  for (guint i = 0; i < 2; i++)
    {
      g_thread_join (threads[i]);
      tusk_assert_error (waiters[i].error, TUSK_ERROR_CONNECTION);
      g_assert_cmpstr (waiters[i].error->message, ==,
                       "The connection pool of pool test is closed");
      g_clear_error (&waiters[i].error);
    }
  finish_result (&async_waiter, pool);
  tusk_assert_error (async_waiter.error, TUSK_ERROR_CONNECTION);
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  /* In use until released, then closed. */
  assert_status (pool, 2, 2, 0, 0);

  g_assert_null (tusk_pool_acquire_sync (pool, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_clear_error (&error);
  Result after;
  start_acquire (pool, runtime, NULL, &after);
  finish_result (&after, pool);
  tusk_assert_error (after.error, TUSK_ERROR_CONNECTION);

  exec_ok (first, "SELECT 1"); /* still usable by its owner */
  tusk_pool_release (first);
  assert_status (pool, 2, 1, 0, 0);
  tusk_pool_release (second);
  assert_status (pool, 2, 0, 0, 0);
  tusk_pool_close (pool); /* again: nothing */

  result_clear (&async_waiter);
  result_clear (&after);
}

/* ---- the caller's main loop keeps running (SC-006, SC-009) -------------- */

typedef struct
{
  TuskPool *pool;
  TuskRuntime *runtime;
  guint ticks;
  gint64 last_tick;
  gint64 max_gap;
  guint started;
  guint done;
  guint failed;
} Loop;

typedef struct
{
  Loop *loop;
  TuskPoolConn *conn;
} Query;

static gboolean
on_tick (gpointer data)
{
  Loop *loop = data;
  gint64 now = g_get_monotonic_time ();
  if (loop->last_tick)
    loop->max_gap = MAX (loop->max_gap, now - loop->last_tick);
  loop->last_tick = now;
  loop->ticks++;
  return G_SOURCE_CONTINUE;
}

static void
query_thread (GTask *task, gpointer source, gpointer task_data,
              GCancellable *cancellable)
{
  Query *query = task_data;
  (void)source;
  (void)cancellable;
  PGresult *res
      = PQexec (tusk_pool_conn_get_pg (query->conn), "SELECT pg_sleep(0.2)");
  gboolean ok = PQresultStatus (res) == PGRES_TUPLES_OK;
  PQclear (res);
  tusk_tsan_release (task); /* as a query module does */
  g_task_return_boolean (task, ok);
}

static void
on_queried (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Query *query = user_data;
  (void)source;
  tusk_tsan_acquire (res);
  if (!g_task_propagate_boolean (G_TASK (res), NULL))
    query->loop->failed++;
  query->loop->done++;
  tusk_pool_release (query->conn);
  g_free (query);
}

static void
on_loop_acquired (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Loop *loop = user_data;
  g_autoptr (GError) error = NULL;
  (void)source;

  TuskPoolConn *conn = tusk_pool_acquire_finish (loop->pool, res, &error);
  g_assert_no_error (error);
  Query *query = g_new0 (Query, 1);
  query->loop = loop;
  query->conn = conn;
  g_autoptr (GTask) task = g_task_new (NULL, NULL, on_queried, query);
  g_task_set_task_data (task, query, NULL);
  tusk_runtime_run_in_thread (loop->runtime, task, query_thread);
}

static void
test_main_loop (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (0);
  g_autoptr (TuskPool) pool = new_pool (4, 10000);
  Loop loop = { .pool = pool, .runtime = runtime };

  guint timer = g_timeout_add (10, on_tick, &loop);
  gint64 start = g_get_monotonic_time ();
  for (guint i = 0; i < 10; i++)
    tusk_pool_acquire_async (pool, runtime, NULL, on_loop_acquired, &loop);
  gint64 call_time = g_get_monotonic_time () - start;
  while (loop.done < 10)
    g_main_context_iteration (NULL, TRUE);
  gint64 elapsed = g_get_monotonic_time () - start;
  g_source_remove (timer);

  g_test_message ("10 queries of 0.2 s on 4 connections: %.0f ms; the 10 "
                  "_async calls took %.2f ms; %u ticks of 10 ms, largest "
                  "gap %.1f ms",
                  elapsed / 1000.0, call_time / 1000.0, loop.ticks,
                  loop.max_gap / 1000.0);
  g_assert_cmpuint (loop.failed, ==, 0);
  g_assert_cmpint (elapsed, >=, 400000); /* 3 rounds of 0.2 s */
  g_assert_cmpuint (loop.ticks, >=, 10);
  g_assert_cmpint (call_time, <, 100000); /* the calls never block */
  assert_status (pool, 4, 4, 4, 0);
}

/* ---- stress ------------------------------------------------------------- */

#define STRESS_THREADS 8
#define STRESS_OPS     125 /* per thread: 1,000 in all */
#define STRESS_MAX     3

typedef struct
{
  TuskPool *pool;
  pthread_mutex_t lock; /* protects current (not a GMutex: TSan sees it) */
  GCancellable *current[STRESS_THREADS];
  int stop;                              /* atomic */
  int ok, cancelled, timed_out, samples; /* atomic counters */
  int min_available;
  guint max_waiting;
} Stress;

typedef struct
{
  Stress *stress;
  guint index;
} StressThread;

static gpointer
monitor_main (gpointer data)
{
  Stress *stress = data;
  TuskPoolStatus status;

  while (!g_atomic_int_get (&stress->stop))
    {
      tusk_pool_get_status (stress->pool, &status);
      g_assert_cmpuint (status.max_size, ==, STRESS_MAX);
      g_assert_cmpuint (status.size, <=, status.max_size);
      g_assert_cmpint (status.available, <=, (int)status.size);
      g_assert_cmpint (status.available, >=, -(int)status.waiting);
      if (status.waiting > 0)
        {
          /* Waiting only when nothing could be handed out. */
          g_assert_cmpint (status.available, ==, -(int)status.waiting);
          g_assert_cmpuint (status.size, ==, status.max_size);
        }
      stress->min_available = MIN (stress->min_available, status.available);
      stress->max_waiting = MAX (stress->max_waiting, status.waiting);
      g_atomic_int_inc (&stress->samples);
      g_thread_yield ();
    }
  return NULL;
}

static void
stress_publish (Stress *stress, guint index, GCancellable *cancellable)
{
  pthread_mutex_lock (&stress->lock);
  g_clear_object (&stress->current[index]);
  if (cancellable)
    stress->current[index] = g_object_ref (cancellable);
  pthread_mutex_unlock (&stress->lock);
}

static gpointer
stress_main (gpointer data)
{
  StressThread *self = data;
  Stress *stress = self->stress;
  g_autoptr (GRand) rand
      = g_rand_new_with_seed ((guint32)g_test_rand_int () + self->index);

  for (guint op = 0; op < STRESS_OPS; op++)
    {
      g_autoptr (GCancellable) cancellable = g_cancellable_new ();
      g_autoptr (GError) error = NULL;
      int kind = g_rand_int_range (rand, 0, 7);

      stress_publish (stress, self->index, cancellable);
      if (kind == 0)
        {
          /* Cancel another thread's acquire, wherever it is. */
          guint other = g_rand_int_range (rand, 0, STRESS_THREADS);
          pthread_mutex_lock (&stress->lock);
          if (stress->current[other])
            g_cancellable_cancel (stress->current[other]);
          pthread_mutex_unlock (&stress->lock);
        }
      TuskPoolConn *conn
          = tusk_pool_acquire_sync (stress->pool, cancellable, &error);
      stress_publish (stress, self->index, NULL);
      if (conn == NULL)
        {
          g_assert_nonnull (error);
          if (g_error_matches (error, TUSK_ERROR, TUSK_ERROR_QUERY_CANCELLED))
            g_atomic_int_inc (&stress->cancelled);
          else if (g_error_matches (error, TUSK_ERROR, TUSK_ERROR_POOL_TIMEOUT))
            g_atomic_int_inc (&stress->timed_out);
          else
            g_error ("unexpected: %s", error->message);
          continue;
        }
      g_atomic_int_inc (&stress->ok);

      /* Never dirty, never broken. */
      PGconn *pg = tusk_pool_conn_get_pg (conn);
      g_assert_cmpint (PQstatus (pg), ==, CONNECTION_OK);
      g_assert_cmpint (PQtransactionStatus (pg), ==, PQTRANS_IDLE);
      switch (kind)
        {
          case 1: /* left in a transaction */
            exec_ok (conn, "BEGIN");
            tusk_pool_release (conn);
            break;
          case 2: /* left with a statement running */
            g_assert_true (PQsendQuery (pg, "SELECT pg_sleep(0.01)"));
            tusk_pool_release (conn);
            break;
          case 3:
            tusk_pool_conn_discard (conn);
            break;
          case 4: /* held a little */
            g_usleep (g_rand_int_range (rand, 0, 2000));
            tusk_pool_release (conn);
            break;
          default:
            exec_ok (conn, "SELECT 1");
            tusk_pool_release (conn);
            break;
        }
    }
  return NULL;
}

/* Async acquires from the main thread meanwhile, some cancelled. */
typedef struct
{
  Stress *stress;
  TuskRuntime *runtime;
  guint outstanding;
  guint started;
  guint ok;
  guint failed;
} AsyncStress;

static void
on_stress_acquired (GObject *source, GAsyncResult *res, gpointer user_data)
{
  AsyncStress *as = user_data;
  g_autoptr (GError) error = NULL;
  (void)source;

  TuskPoolConn *conn = tusk_pool_acquire_finish (as->stress->pool, res, &error);
  if (conn)
    {
      as->ok++;
      g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                       PQTRANS_IDLE);
      tusk_pool_release (conn);
    }
  else
    {
      g_assert_true (
          g_error_matches (error, TUSK_ERROR, TUSK_ERROR_QUERY_CANCELLED)
          || g_error_matches (error, TUSK_ERROR, TUSK_ERROR_POOL_TIMEOUT));
      as->failed++;
    }
  as->outstanding--;
}

static gboolean
cancel_source (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_stress (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (4);
  g_autoptr (TuskPool) pool = new_pool (STRESS_MAX, 100);
  Stress stress = { .pool = pool, .min_available = STRESS_MAX };
  StressThread selves[STRESS_THREADS];
  GThread *threads[STRESS_THREADS];
  AsyncStress as = { .stress = &stress, .runtime = runtime };

  pthread_mutex_init (&stress.lock, NULL);
  GThread *monitor = g_thread_new ("monitor", monitor_main, &stress);
  gint64 start = g_get_monotonic_time ();
  for (guint i = 0; i < STRESS_THREADS; i++)
    {
      selves[i] = (StressThread){ .stress = &stress, .index = i };
      threads[i] = g_thread_new ("stress", stress_main, &selves[i]);
    }

  /* Until the threads are done: up to 4 async acquires at a time. */
  while ((guint)g_atomic_int_get (&stress.ok)
             + (guint)g_atomic_int_get (&stress.cancelled)
             + (guint)g_atomic_int_get (&stress.timed_out)
         < STRESS_THREADS * STRESS_OPS)
    {
      while (as.outstanding < 4)
        {
          g_autoptr (GCancellable) cancellable = g_cancellable_new ();
          if (g_random_int_range (0, 3) == 0)
            {
              GSource *timer = g_timeout_source_new (g_random_int_range (0, 5));
              g_source_set_callback (timer, cancel_source,
                                     g_object_ref (cancellable),
                                     g_object_unref);
              g_source_attach (timer, NULL);
              g_source_unref (timer);
            }
          as.outstanding++;
          as.started++;
          tusk_pool_acquire_async (pool, runtime, cancellable,
                                   on_stress_acquired, &as);
        }
      g_main_context_iteration (NULL, FALSE);
      g_usleep (200);
    }
  for (guint i = 0; i < STRESS_THREADS; i++)
    g_thread_join (threads[i]);
  while (as.outstanding > 0)
    g_main_context_iteration (NULL, TRUE);
  g_atomic_int_set (&stress.stop, 1);
  g_thread_join (monitor);
  gint64 elapsed = g_get_monotonic_time () - start;

  g_test_message ("1000 operations from %d threads in %.0f ms: %d acquired, "
                  "%d cancelled, %d timed out; %u async (%u acquired); "
                  "%d status samples, lowest available %d, most waiting %u",
                  STRESS_THREADS, elapsed / 1000.0, stress.ok, stress.cancelled,
                  stress.timed_out, as.started, as.ok, stress.samples,
                  stress.min_available, stress.max_waiting);
  g_assert_cmpint (stress.ok + stress.cancelled + stress.timed_out, ==,
                   STRESS_THREADS * STRESS_OPS);
  g_assert_cmpint (stress.ok, >, 0);

  /* Settled: nobody waits, everything idle, every connection clean. */
  TuskPoolStatus status;
  tusk_pool_get_status (pool, &status);
  g_assert_cmpuint (status.waiting, ==, 0);
  g_assert_cmpint (status.available, ==, (int)status.size);
  TuskPoolConn *conns[STRESS_MAX];
  for (guint i = 0; i < STRESS_MAX; i++)
    {
      conns[i] = acquire (pool);
      exec_ok (conns[i], "SELECT 1");
    }
  for (guint i = 0; i < STRESS_MAX; i++)
    tusk_pool_release (conns[i]);
  assert_status (pool, STRESS_MAX, STRESS_MAX, STRESS_MAX, 0);
  for (guint i = 0; i < STRESS_THREADS; i++)
    g_clear_object (&stress.current[i]);
  pthread_mutex_destroy (&stress.lock);
}

/* ---- cost --------------------------------------------------------------- */

static void
on_cost_acquired (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *result = user_data;
  (void)source;
  result->conn = tusk_pool_acquire_finish (result->from, res, &result->error);
  result->done = TRUE;
}

static void
test_cost (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (2);
  g_autoptr (TuskPool) pool = new_pool (1, 1000);
  const guint n = 20000;

  gint64 start = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    tusk_pool_release (acquire (pool));
  double sync_us = (g_get_monotonic_time () - start) / (double)n;

  const guint n_async = 2000;
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n_async; i++)
    {
      Result result = { .from = pool };
      tusk_pool_acquire_async (pool, runtime, NULL, on_cost_acquired, &result);
      while (!result.done)
        g_main_context_iteration (NULL, TRUE);
      g_assert_no_error (result.error);
      tusk_pool_release (result.conn);
    }
  double async_us = (g_get_monotonic_time () - start) / (double)n_async;

  /* A new connection each time, for scale. */
  const guint n_open = 20;
  start = g_get_monotonic_time ();
  for (guint i = 0; i < n_open; i++)
    tusk_pool_conn_discard (acquire (pool));
  double open_us = (g_get_monotonic_time () - start) / (double)n_open;

  g_test_message ("acquire + release of an idle connection: %.2f us sync, "
                  "%.1f us async (one main-loop round trip); opening a "
                  "connection: %.2f ms",
                  sync_us, async_us, open_us / 1000.0);
  g_assert_cmpfloat (sync_us, <, 1000.0); /* no network on the fast path */
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tusk/pool/create/ok", test_create_ok);
  g_test_add_func ("/tusk/pool/create/password", test_create_password);
  g_test_add_func ("/tusk/pool/create/missing-database",
                   test_create_missing_database);
  g_test_add_func ("/tusk/pool/create/refused-port", test_create_refused_port);
  g_test_add_func ("/tusk/pool/create/invalid", test_create_invalid);
  g_test_add_func ("/tusk/pool/create/async", test_create_async);
  g_test_add_func ("/tusk/pool/session/defaults", test_session_defaults);
  g_test_add_func ("/tusk/pool/session/config", test_session_config);
  g_test_add_func ("/tusk/pool/exhaustion/timeout", test_exhaustion_timeout);
  g_test_add_func ("/tusk/pool/exhaustion/counts", test_exhaustion_counts);
  g_test_add_func ("/tusk/pool/exhaustion/release-wakes", test_release_wakes);
  g_test_add_func ("/tusk/pool/exhaustion/cancel", test_cancel_waiting);
  g_test_add_func ("/tusk/pool/acquire-async", test_acquire_async);
  g_test_add_func ("/tusk/pool/recycle/transaction", test_dirty_transaction);
  g_test_add_func ("/tusk/pool/recycle/running", test_dirty_running);
  g_test_add_func ("/tusk/pool/recycle/broken", test_broken);
  g_test_add_func ("/tusk/pool/restart", test_restart);
  g_test_add_func ("/tusk/pool/close", test_close);
  g_test_add_func ("/tusk/pool/main-loop", test_main_loop);
  g_test_add_func ("/tusk/pool/stress", test_stress);
  g_test_add_func ("/tusk/pool/cost", test_cost);
  return g_test_run ();
}
