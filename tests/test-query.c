/* test-query.c: executing, streaming and cancelling queries against the
 * real PostgreSQL server of the test environment: type names, values,
 * query types and row counts, batches and back-pressure, cancellation in
 * every phase and its race, a backend killed mid-stream, notices while a
 * statement runs, the registry of running queries, and history; and the
 * fast path of execute_async (a result read on the caller's thread): its
 * hand-over to a worker, cancellation in each of its phases, notices,
 * sessions, COPY and catalog lookups. */
#include <string.h>

#include <glib/gstdio.h>

#include "tusk.h"
#include "tusk-pool-private.h"
#include "tusk-query-private.h"
#include "tusk-storage-private.h"
#include "tusk-test.h"

typedef struct
{
  TuskRuntime *runtime;
  TuskPool *pool;
  TuskQueryRegistry *registry;
} Fixture;

static TuskConnectionConfig *
test_config (void)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup ("query test");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  return config;
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;
  f->runtime = tusk_runtime_new (0);
  f->pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  f->registry = tusk_query_registry_new ();
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GPtrArray) running = tusk_query_registry_list (f->registry, NULL);
  g_assert_cmpuint (running->len, ==, 0);
  tusk_runtime_free (f->runtime);
  /* Deliver what the runtime's jobs left for this thread. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  tusk_query_registry_unref (f->registry);
  tusk_pool_unref (f->pool);
}

static TuskQueryResult *
run_ok (Fixture *f, const char *sql)
{
  g_autoptr (GError) error = NULL;
  TuskQueryResult *result
      = tusk_query_execute_sync (f->pool, sql, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  return result;
}

/* Runs @sql with execute_async and waits for the callback. */
typedef struct
{
  gboolean done;
  TuskQueryResult *result;
  GError *error;
  gint64 done_at;
  GPtrArray *notices; /* TuskNotice *, as delivered */
  gint64 first_notice_at;
} AsyncRun;

static void
on_executed (GObject *source, GAsyncResult *res, gpointer data)
{
  (void)source;
  AsyncRun *run = data;
  run->result = tusk_query_execute_finish (res, &run->error);
  run->done_at = g_get_monotonic_time ();
  run->done = TRUE;
}

static void
on_notice_seen (TuskQueryHandle *handle, const TuskNotice *notice,
                gpointer data)
{
  (void)handle;
  AsyncRun *run = data;
  g_assert_false (run->done);
  if (run->notices->len == 0)
    run->first_notice_at = g_get_monotonic_time ();
  g_ptr_array_add (run->notices, tusk_notice_copy (notice));
}

static void
async_run_clear (AsyncRun *run)
{
  tusk_query_result_free (run->result);
  g_clear_error (&run->error);
  g_clear_pointer (&run->notices, g_ptr_array_unref);
}

static TuskQueryHandle *
start_async (Fixture *f, const char *sql, TuskQueryOptions *options,
             GCancellable *cancellable, AsyncRun *run)
{
  memset (run, 0, sizeof *run);
  run->notices
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_notice_free);
  TuskQueryOptions defaults;
  if (options == NULL)
    {
      tusk_query_options_init (&defaults);
      options = &defaults;
    }
  options->registry = f->registry;
  options->notice_func = on_notice_seen;
  options->notice_data = run;
  return tusk_query_execute_async (f->pool, f->runtime, sql, options,
                                   cancellable, on_executed, run);
}

/* The pool still works: a query on it gets a clean, idle connection. */
static void
assert_pool_clean (Fixture *f)
{
  for (int i = 0; i < 5; i++)
    {
      g_autoptr (TuskQueryResult) result
          = run_ok (f, "SELECT 1, pg_backend_pid ()");
      g_assert_cmpstr (tusk_query_result_get_value (result, 0, 0), ==, "1");
      g_assert_cmpint (result->transaction_status, ==, TUSK_TRANSACTION_IDLE);
    }
  g_autoptr (GError) error = NULL;
  TuskPoolConn *conn = tusk_pool_acquire_sync (f->pool, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)), ==,
                   PQTRANS_IDLE);
  tusk_pool_release (conn);
}

/* ---- types and values ------------------------------------------------ */

static void
test_type_names (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskQueryResult) setup = run_ok (
      f, "DROP TYPE IF EXISTS qt_mood, qt_pair CASCADE;"
         "DROP DOMAIN IF EXISTS qt_posint CASCADE;"
         "CREATE TYPE qt_mood AS ENUM ('sad', 'ok', 'happy');"
         "CREATE DOMAIN qt_posint AS integer CHECK (VALUE > 0);"
         "CREATE TYPE qt_pair AS (a integer, b text);"
         "CREATE TABLE qt_typed (d qt_posint, v varchar(5), e qt_mood);"
         "INSERT INTO qt_typed VALUES (1, 'a', 'ok')");
  const char *sql
      = "SELECT 1.5::numeric(10,2) AS n, 'x'::text AS t, "
        "'ab'::varchar(20) AS v, 'a'::char(3) AS c, now () AS tz, "
        "now ()::timestamp(3) AS ts, '1 day'::interval AS i, true AS b, "
        "'\\x00ff'::bytea AS by, gen_random_uuid () AS u, '{}'::json AS j, "
        "'{}'::jsonb AS jb, ARRAY[1,2] AS a, '[1,5)'::int4range AS r, "
        "'happy'::qt_mood AS e, 5::qt_posint AS d, ROW (1, 'x')::qt_pair AS p, "
        "ARRAY['sad'::qt_mood] AS ea, ARRAY['x'::varchar(7)] AS va, "
        "1.5::numeric AS nn, '12:00'::time(2) AS tm, B'101'::bit(3) AS bt, "
        "NULL::interval day to second (2) AS ids";
  g_autoptr (TuskQueryResult) result = run_ok (f, sql);
  const char *expected[] = {
    "numeric(10,2)",
    "text",
    "character varying(20)",
    "character(3)",
    "timestamp with time zone",
    "timestamp(3) without time zone",
    "interval",
    "boolean",
    "bytea",
    "uuid",
    "json",
    "jsonb",
    "integer[]",
    "int4range",
    "qt_mood",
    "integer", /* a domain outside a table: the
                  protocol carries the base type */
    "qt_pair",
    "qt_mood[]",
    "character varying(7)[]",
    "numeric",
    "time(2) without time zone",
    "bit(3)",
    "interval day to second(2)",
  };
  g_assert_cmpuint (result->columns->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < result->columns->len; i++)
    {
      TuskColumnInfo *column = result->columns->pdata[i];
      g_assert_cmpstr (column->type_name, ==, expected[i]);
    }
  g_assert_cmpstr (((TuskColumnInfo *)result->columns->pdata[0])->name, ==,
                   "n");
  g_assert_cmpuint (((TuskColumnInfo *)result->columns->pdata[0])->type_oid, ==,
                    1700);

  /* Each name agrees with the server's format_type(). */
  g_autoptr (GString) check = g_string_new ("SELECT ");
  for (guint i = 0; i < result->columns->len; i++)
    {
      TuskColumnInfo *column = result->columns->pdata[i];
      g_string_append_printf (check, "%sformat_type (%u, %d)", i ? ", " : "",
                              column->type_oid, column->type_modifier);
    }
  g_autoptr (TuskQueryResult) server = run_ok (f, check->str);
  for (guint i = 0; i < result->columns->len; i++)
    if (i != 15)
      g_assert_cmpstr (((TuskColumnInfo *)result->columns->pdata[i])->type_name,
                       ==, tusk_query_result_get_value (server, 0, i));

  /* A table column of a domain type is named by the domain. */
  for (int round = 0; round < 2; round++)
    {
      g_autoptr (TuskQueryResult) table
          = run_ok (f, "SELECT d, v, e, d + 1 AS plus FROM qt_typed");
      const char *names[]
          = { "qt_posint", "character varying(5)", "qt_mood", "integer" };
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        g_assert_cmpstr (
            ((TuskColumnInfo *)table->columns->pdata[i])->type_name, ==,
            names[i]);
      g_assert_cmpuint (
          ((TuskColumnInfo *)table->columns->pdata[0])->table_column, ==, 1);
      g_assert_cmpuint (((TuskColumnInfo *)table->columns->pdata[0])->table_oid,
                        !=, 0);
    }
  g_autoptr (TuskQueryResult) drop = run_ok (f, "DROP TABLE qt_typed");
}

/* The built-in table and the modifier rules match the server for every
 * built-in type and a spread of modifiers. */
static void
test_builtin_names_match_server (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskQueryResult) result = run_ok (
      f, "SELECT t.oid, m, format_type (t.oid, m) FROM pg_type t, "
         "unnest (ARRAY[-1, 4, 5, 24, 655366, 1310724, 0, 3, 6]) m "
         "WHERE t.oid < 10000 AND t.oid NOT IN (1186, 1187) "
         "AND (m = -1 OR t.typmodin <> 0 "
         "OR t.typelem IN (SELECT oid FROM pg_type WHERE typmodin <> 0))");
  guint checked = 0;
  for (guint64 r = 0; r < result->n_rows; r++)
    {
      guint32 oid = atoi (tusk_query_result_get_value (result, r, 0));
      int typmod = atoi (tusk_query_result_get_value (result, r, 1));
      g_autofree char *name = tusk_query_builtin_type_name (oid, typmod);
      if (name == NULL)
        continue; /* left to the server */
      g_assert_cmpstr (name, ==, tusk_query_result_get_value (result, r, 2));
      checked++;
    }
  g_assert_cmpuint (checked, >, 200);
}

static void
test_values (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskQueryResult) result
      = run_ok (f, "SELECT NULL::text, ''::text, E'line 1\\nline 2\\n', "
                   "'żółć 日本語 🐘', NULL::int FROM generate_series (1, 2)");
  g_assert_cmpuint (result->n_rows, ==, 2);
  g_assert_cmpuint (result->rows_returned, ==, 2);
  g_assert_cmpint (result->query_type, ==, TUSK_QUERY_TYPE_SELECT);
  g_assert_cmpint (result->rows_affected, ==, -1);
  g_assert_cmpstr (result->command_tag, ==, "SELECT 2");
  for (guint r = 0; r < 2; r++)
    {
      g_assert_null (tusk_query_result_get_value (result, r, 0));
      g_assert_true (tusk_query_result_is_null (result, r, 0));
      g_assert_cmpstr (tusk_query_result_get_value (result, r, 1), ==, "");
      g_assert_false (tusk_query_result_is_null (result, r, 1));
      g_assert_cmpstr (tusk_query_result_get_value (result, r, 2), ==,
                       "line 1\nline 2\n");
      g_assert_cmpstr (tusk_query_result_get_value (result, r, 3), ==,
                       "żółć 日本語 🐘");
      g_assert_null (tusk_query_result_get_value (result, r, 4));
    }
  gsize length = 99;
  TuskRowBatch *batch = result->batches->pdata[0];
  g_assert_null (tusk_row_batch_get_value (batch, 0, 0, &length));
  g_assert_cmpuint (length, ==, 0);
  g_assert_nonnull (tusk_row_batch_get_value (batch, 0, 3, &length));
  g_assert_cmpuint (length, ==, strlen ("żółć 日本語 🐘"));
}

static void
test_query_types (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (TuskQueryResult) ddl
      = run_ok (f, "DROP TABLE IF EXISTS qt_items, qt_copy;"
                   "CREATE TABLE qt_items (id int PRIMARY KEY, name text)");
  g_assert_cmpint (ddl->query_type, ==, TUSK_QUERY_TYPE_OTHER);
  g_assert_cmpstr (ddl->command_tag, ==, "CREATE TABLE");
  g_assert_cmpint (ddl->rows_affected, ==, -1);
  g_assert_cmpuint (ddl->columns->len, ==, 0);

  struct
  {
    const char *sql;
    TuskQueryType type;
    gint64 affected;
    guint64 returned;
    const char *tag;
  } cases[] = {
    { "INSERT INTO qt_items SELECT g, 'n' || g FROM generate_series (1, 5) g",
      TUSK_QUERY_TYPE_INSERT, 5, 0, "INSERT 0 5" },
    { "UPDATE qt_items SET name = 'x' WHERE id <= 3", TUSK_QUERY_TYPE_UPDATE, 3,
      0, "UPDATE 3" },
    { "DELETE FROM qt_items WHERE id = 5", TUSK_QUERY_TYPE_DELETE, 1, 0,
      "DELETE 1" },
    { "INSERT INTO qt_items VALUES (9, 'r') RETURNING id",
      TUSK_QUERY_TYPE_INSERT, 1, 1, "INSERT 0 1" },
    { "MERGE INTO qt_items t USING (VALUES (1), (10)) s (id) ON t.id = s.id "
      "WHEN MATCHED THEN UPDATE SET name = 'm' "
      "WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'new')",
      TUSK_QUERY_TYPE_OTHER, 2, 0, "MERGE 2" },
    { "COPY (SELECT * FROM qt_items) TO STDOUT", TUSK_QUERY_TYPE_OTHER, 6, 0,
      "COPY 6" },
    { "SELECT * INTO qt_copy FROM qt_items WHERE id < 4", TUSK_QUERY_TYPE_OTHER,
      3, 0, "SELECT 3" },
    { "SELECT * FROM qt_items ORDER BY id", TUSK_QUERY_TYPE_SELECT, -1, 6,
      "SELECT 6" },
    { "", TUSK_QUERY_TYPE_OTHER, -1, 0, "" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (TuskQueryResult) result = run_ok (f, cases[i].sql);
      g_assert_cmpint (result->query_type, ==, cases[i].type);
      g_assert_cmpint (result->rows_affected, ==, cases[i].affected);
      g_assert_cmpuint (result->rows_returned, ==, cases[i].returned);
      g_assert_cmpuint (result->n_rows, ==, cases[i].returned);
      g_assert_cmpstr (result->command_tag, ==, cases[i].tag);
      g_assert_cmpint (result->execution_time_ms, >=, 0);
    }

  /* COPY FROM STDIN is refused and leaves the connection usable. */
  g_autoptr (GError) error = NULL;
  TuskQueryResult *none = tusk_query_execute_sync (
      f->pool, "COPY qt_items FROM STDIN", NULL, NULL, &error);
  g_assert_null (none);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  g_clear_error (&error);

  /* Several statements: the result is the last one's. */
  g_autoptr (TuskQueryResult) multi
      = run_ok (f, "SELECT 1; SELECT 2 AS two, 3 AS three");
  g_assert_cmpuint (multi->columns->len, ==, 2);
  g_assert_cmpstr (tusk_query_result_get_value (multi, 0, 1), ==, "3");

  /* A syntax error carries its position. */
  none = tusk_query_execute_sync (f->pool, "SELEC 1", NULL, NULL, &error);
  g_assert_null (none);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "42601");
  g_assert_cmpint (tusk_error_get_position (error), ==, 1);

  g_autoptr (TuskQueryResult) drop = run_ok (f, "DROP TABLE qt_items, qt_copy");
  assert_pool_clean (f);
}

/* A session: statements on a connection the caller holds; the transaction
 * status follows them. */
static void
test_transaction_status (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  TuskPoolConn *conn = tusk_pool_acquire_sync (f->pool, NULL, &error);
  g_assert_no_error (error);
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.conn = conn;
  const char *sqls[] = { "BEGIN", "SELECT 1", "SELECT 1/0", "ROLLBACK" };
  TuskTransactionStatus expected[]
      = { TUSK_TRANSACTION_IN_TRANSACTION, TUSK_TRANSACTION_IN_TRANSACTION,
          TUSK_TRANSACTION_FAILED, TUSK_TRANSACTION_IDLE };
  for (guint i = 0; i < G_N_ELEMENTS (sqls); i++)
    {
      TuskQueryResult *result
          = tusk_query_execute_sync (f->pool, sqls[i], &options, NULL, &error);
      if (i == 2)
        {
          tusk_assert_error (error, TUSK_ERROR_QUERY);
          g_clear_error (&error);
          g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)),
                           ==, PQTRANS_INERROR);
          continue;
        }
      g_assert_no_error (error);
      g_assert_cmpint (result->transaction_status, ==, expected[i]);
      tusk_query_result_free (result);
    }
  tusk_pool_release (conn);
}

/* ---- streaming ---------------------------------------------------------- */

typedef struct
{
  GPtrArray *events;  /* "columns", "batch", "done" */
  GPtrArray *batches; /* TuskRowBatch * kept */
  GPtrArray *columns; /* the last columns event's, copied */
  gboolean done;
  TuskQueryResult *result;
  GError *error;
  gboolean keep;
  guint cancel_after; /* cancel in the batch callback after this many */
  guint n_batches;
  gint64 done_at;
} Consumer;

static void
on_columns (TuskQueryHandle *handle, const GPtrArray *columns, gpointer data)
{
  (void)handle;
  Consumer *c = data;
  g_assert_false (c->done);
  g_ptr_array_add (c->events, g_strdup ("columns"));
  g_clear_pointer (&c->columns, g_ptr_array_unref);
  c->columns
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_column_info_free);
  for (guint i = 0; i < columns->len; i++)
    g_ptr_array_add (c->columns, tusk_column_info_copy (columns->pdata[i]));
}

static void
on_batch (TuskQueryHandle *handle, TuskRowBatch *batch, gpointer data)
{
  Consumer *c = data;
  g_assert_false (c->done);
  g_assert_nonnull (c->columns);
  g_ptr_array_add (c->events, g_strdup ("batch"));
  c->n_batches++;
  if (c->keep)
    g_ptr_array_add (c->batches, tusk_row_batch_ref (batch));
  if (c->cancel_after && c->n_batches == c->cancel_after)
    tusk_query_handle_cancel (handle);
}

static void
on_done (TuskQueryHandle *handle, const TuskQueryResult *result,
         const GError *error, gpointer data)
{
  (void)handle;
  Consumer *c = data;
  g_assert_false (c->done);
  g_assert_true ((result == NULL) != (error == NULL));
  g_ptr_array_add (c->events, g_strdup ("done"));
  c->done = TRUE;
  c->done_at = g_get_monotonic_time ();
  if (result)
    c->result = tusk_query_result_copy (result);
  if (error)
    c->error = g_error_copy (error);
}

static const TuskQueryStreamFuncs consumer_funcs
    = { on_columns, on_batch, on_done };

static void
consumer_init (Consumer *c, gboolean keep)
{
  memset (c, 0, sizeof *c);
  c->events = g_ptr_array_new_with_free_func (g_free);
  c->batches
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_row_batch_unref);
  c->keep = keep;
}

static void
consumer_clear (Consumer *c)
{
  g_ptr_array_unref (c->events);
  g_ptr_array_unref (c->batches);
  g_clear_pointer (&c->columns, g_ptr_array_unref);
  tusk_query_result_free (c->result);
  g_clear_error (&c->error);
}

static TuskQueryHandle *
start_stream (Fixture *f, const char *sql, guint batch_size, guint max,
              Consumer *c)
{
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.registry = f->registry;
  options.batch_size = batch_size;
  options.max_batches_in_flight = max;
  return tusk_query_stream (f->pool, f->runtime, sql, &options, &consumer_funcs,
                            c, NULL, NULL);
}

static void
test_stream_batches (Fixture *f, gconstpointer data)
{
  (void)data;
  Consumer c;
  consumer_init (&c, TRUE);
  g_autoptr (TuskQueryHandle) handle = start_stream (
      f,
      "SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE g::text END, "
      "'happy'::text FROM generate_series (1, 2500) g",
      1000, 2, &c);
  g_assert_false (c.done); /* never called from inside the call */
  tusk_test_wait_for (&c.done, 30000);
  g_assert_no_error (c.error);

  g_assert_cmpuint (c.events->len, ==, 5);
  g_assert_cmpstr (c.events->pdata[0], ==, "columns");
  g_assert_cmpstr (c.events->pdata[4], ==, "done");
  g_assert_cmpuint (c.batches->len, ==, 3);
  guint sizes[] = { 1000, 1000, 500 };
  guint64 expected = 1;
  for (guint b = 0; b < 3; b++)
    {
      TuskRowBatch *batch = c.batches->pdata[b];
      g_assert_cmpuint (tusk_row_batch_get_n_rows (batch), ==, sizes[b]);
      g_assert_cmpuint (tusk_row_batch_get_n_columns (batch), ==, 3);
      g_assert_cmpuint (tusk_row_batch_get_first_row (batch), ==, expected - 1);
      for (guint r = 0; r < sizes[b]; r++, expected++)
        {
          g_autofree char *text
              = g_strdup_printf ("%" G_GUINT64_FORMAT, expected);
          g_assert_cmpstr (tusk_row_batch_get_value (batch, r, 0, NULL), ==,
                           text);
          if (expected % 7 == 0)
            g_assert_null (tusk_row_batch_get_value (batch, r, 1, NULL));
          else
            g_assert_cmpstr (tusk_row_batch_get_value (batch, r, 1, NULL), ==,
                             text);
        }
    }
  g_assert_cmpuint (c.result->rows_returned, ==, 2500);
  g_assert_cmpuint (c.result->n_rows, ==, 0);
  g_assert_cmpstr (c.result->command_tag, ==, "SELECT 2500");
  g_assert_cmpstr (((TuskColumnInfo *)c.columns->pdata[0])->type_name, ==,
                   "integer");
  g_assert_cmpuint (tusk_query_handle_get_batches_in_flight_peak (handle), <=,
                    2);
  consumer_clear (&c);

  /* User types: the first stream on a connection that meets one says
   * "oid N" in its columns event (the connection is busy until the rows
   * end) and names it in the final result; every later stream there names
   * it in the columns event too.  One connection, so both run on it. */
  g_autoptr (TuskQueryResult) setup
      = run_ok (f, "DROP TYPE IF EXISTS qt_color CASCADE;"
                   "CREATE TYPE qt_color AS ENUM ('red')");
  TuskPoolOptions one;
  tusk_pool_options_init (&one);
  one.max_size = 1;
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;
  TuskPool *shared = f->pool;
  f->pool = tusk_pool_new_sync (config, NULL, &one, NULL, &error);
  g_assert_no_error (error);
  for (int round = 0; round < 2; round++)
    {
      consumer_init (&c, FALSE);
      g_autoptr (TuskQueryHandle) again
          = start_stream (f, "SELECT 'red'::qt_color", 0, 0, &c);
      tusk_test_wait_for (&c.done, 30000);
      g_assert_no_error (c.error);
      const char *announced
          = ((TuskColumnInfo *)c.columns->pdata[0])->type_name;
      if (round == 0)
        g_assert_true (g_str_has_prefix (announced, "oid "));
      else
        g_assert_cmpstr (announced, ==, "qt_color");
      g_assert_cmpstr (
          ((TuskColumnInfo *)c.result->columns->pdata[0])->type_name, ==,
          "qt_color");
      consumer_clear (&c);
    }
  tusk_pool_close (f->pool);
  tusk_pool_unref (f->pool);
  f->pool = shared;
}

/* A consumer whose main context does not run: the worker stops after
 * max_batches_in_flight batches and reads on once they are consumed. */
static void
test_back_pressure (Fixture *f, gconstpointer data)
{
  (void)data;
  Consumer c;
  consumer_init (&c, FALSE);
  g_autoptr (TuskQueryHandle) handle = start_stream (
      f, "SELECT g, md5 (g::text) FROM generate_series (1, 200000) g", 100, 3,
      &c);
  /* Not iterating: the worker fills the queue and stops. */
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (tusk_query_handle_get_batches_in_flight (handle) < 3)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
  g_usleep (300 * 1000);
  g_assert_cmpuint (tusk_query_handle_get_batches_in_flight (handle), ==, 3);
  g_assert_cmpuint (tusk_query_handle_get_batches_in_flight_peak (handle), ==,
                    3);
  /* Draining lets it finish, never more than 3 ahead. */
  tusk_test_wait_for (&c.done, 60000);
  g_assert_no_error (c.error);
  g_assert_cmpuint (c.n_batches, ==, 2000);
  g_assert_cmpuint (tusk_query_handle_get_batches_in_flight_peak (handle), ==,
                    3);
  g_assert_cmpuint (tusk_query_handle_get_batches_in_flight (handle), ==, 0);
  consumer_clear (&c);
}

/* ---- cancellation ------------------------------------------------------ */

static void
test_cancel_before_send (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f, "SELECT pg_sleep (30)", NULL, cancellable, &run);
  g_assert_true (tusk_query_handle_is_cancelled (handle));
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY_CANCELLED);
  async_run_clear (&run);

  /* The same through the handle, while the job waits for a worker: fill the
   * runtime's workers with sleeps first. */
  TuskQueryHandle *sleepers[4];
  AsyncRun sleeps[4];
  for (int i = 0; i < 4; i++)
    sleepers[i]
        = start_async (f, "SELECT pg_sleep (0.5)", NULL, NULL, &sleeps[i]);
  AsyncRun late;
  g_autoptr (TuskQueryHandle) queued
      = start_async (f, "SELECT 'never'", NULL, NULL, &late);
  tusk_query_handle_cancel (queued);
  tusk_test_wait_for (&late.done, 10000);
  tusk_assert_error (late.error, TUSK_ERROR_QUERY_CANCELLED);
  async_run_clear (&late);
  for (int i = 0; i < 4; i++)
    {
      tusk_test_wait_for (&sleeps[i].done, 10000);
      g_assert_no_error (sleeps[i].error);
      async_run_clear (&sleeps[i]);
      tusk_query_handle_unref (sleepers[i]);
    }
  assert_pool_clean (f);
}

static void
test_cancel_running (Fixture *f, gconstpointer data)
{
  (void)data;
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f, "SELECT pg_sleep (30)", NULL, NULL, &run);
  /* Running: wait until the server shows it. */
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autoptr (TuskQueryResult) active = run_ok (
          f, "SELECT count (*) FROM pg_stat_activity "
             "WHERE query = 'SELECT pg_sleep (30)' AND state = 'active'");
      if (g_str_equal (tusk_query_result_get_value (active, 0, 0), "1"))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }
  gint64 start = g_get_monotonic_time ();
  tusk_query_handle_cancel (handle);
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_cmpstr (tusk_error_get_sqlstate (run.error), ==, "57014");
  g_test_message ("cancel -> cancelled error: %.1f ms",
                  (run.done_at - start) / 1000.0);
  g_assert_cmpint (run.done_at - start, <, 5 * G_USEC_PER_SEC);
  async_run_clear (&run);
  assert_pool_clean (f);
}

static void
test_cancel_streaming (Fixture *f, gconstpointer data)
{
  (void)data;
  Consumer c;
  consumer_init (&c, TRUE);
  c.cancel_after = 3;
  g_autoptr (TuskQueryHandle) handle = start_stream (
      f, "SELECT g FROM generate_series (1, 50000000) g", 1000, 4, &c);
  tusk_test_wait_for (&c.done, 30000);
  tusk_assert_error (c.error, TUSK_ERROR_QUERY_CANCELLED);
  /* What was delivered stays readable. */
  g_assert_cmpuint (c.batches->len, >=, 3);
  TuskRowBatch *third = c.batches->pdata[2];
  g_assert_cmpstr (tusk_row_batch_get_value (third, 999, 0, NULL), ==, "3000");
  g_assert_cmpstr (c.events->pdata[c.events->len - 1], ==, "done");
  consumer_clear (&c);
  assert_pool_clean (f);
}

/* A cancel that comes after the query finished: its results stand.  On a
 * worker (the fast path reads on this thread: see fast-path/race). */
static void
test_cancel_race (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_query_set_fast_path (FALSE);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f, "SELECT 42", NULL, NULL, &run);
  /* The worker is done once the handle is unregistered; the callback has
   * not run since this thread has not iterated. */
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autoptr (TuskQueryHandle) still = tusk_query_registry_lookup (
          f->registry, tusk_query_handle_get_id (handle));
      if (still == NULL)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
  g_assert_false (tusk_query_registry_cancel (
      f->registry, tusk_query_handle_get_id (handle)));
  tusk_query_handle_cancel (handle);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 0), ==, "42");
  async_run_clear (&run);
  tusk_query_set_fast_path (TRUE);
}

static void
test_terminated_mid_stream (Fixture *f, gconstpointer data)
{
  (void)data;
  Consumer c;
  consumer_init (&c, TRUE);
  g_autoptr (TuskQueryHandle) handle = start_stream (
      f, "SELECT g, pg_backend_pid () FROM generate_series (1, 50000000) g",
      1000, 2, &c);
  while (c.batches->len < 2)
    {
      g_assert_false (c.done);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (100);
    }
  TuskRowBatch *first = c.batches->pdata[0];
  g_autofree char *kill
      = g_strdup_printf ("SELECT pg_terminate_backend (%s)",
                         tusk_row_batch_get_value (first, 0, 1, NULL));
  /* On another connection of the pool (sync, on this thread). */
  g_autoptr (TuskQueryResult) killed = run_ok (f, kill);
  g_assert_cmpstr (tusk_query_result_get_value (killed, 0, 0), ==, "t");
  tusk_test_wait_for (&c.done, 30000);
  tusk_assert_error (c.error, TUSK_ERROR_CONNECTION);
  g_assert_cmpstr (tusk_row_batch_get_value (first, 999, 0, NULL), ==, "1000");
  TuskRowBatch *second = c.batches->pdata[1];
  g_assert_cmpstr (tusk_row_batch_get_value (second, 0, 0, NULL), ==, "1001");
  consumer_clear (&c);
  assert_pool_clean (f);
}

static void
test_statement_timeout (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  TuskQueryResult *result = tusk_query_execute_sync (
      f->pool,
      "BEGIN; SET LOCAL statement_timeout = '100ms'; SELECT pg_sleep (5)", NULL,
      NULL, &error);
  g_assert_null (result);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "57014");
  assert_pool_clean (f);
}

/* ---- the fast path ------------------------------------------------------ */

/* Waits until the server shows @sql in @state ("active", "idle") on some
 * connection. */
static void
wait_for_activity (Fixture *f, const char *sql, const char *state)
{
  g_autofree char *check = g_strdup_printf (
      "SELECT count (*) FROM pg_stat_activity WHERE query = '%s' "
      "AND state = '%s'",
      sql, state);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autoptr (TuskQueryResult) active = run_ok (f, check);
      if (!g_str_equal (tusk_query_result_get_value (active, 0, 0), "0"))
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }
}

static void
assert_pool_idle (Fixture *f)
{
  TuskPoolStatus status;
  tusk_pool_get_status (f->pool, &status);
  g_assert_cmpint (status.available, ==, (int)status.size);
}

/* A small result is read and delivered on this thread, never from inside
 * the call; the connection is back when the callback runs. */
static void
test_fast_small (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  for (int i = 0; i < 20; i++)
    {
      AsyncRun run;
      g_autoptr (TuskQueryHandle) handle = start_async (
          f, "SELECT 1 AS one, NULL::text AS nothing, ''::text AS empty", NULL,
          NULL, &run);
      g_assert_false (run.done);
      tusk_test_wait_for (&run.done, 10000);
      g_assert_no_error (run.error);
      g_assert_cmpuint (run.result->n_rows, ==, 1);
      g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 0), ==, "1");
      g_assert_null (tusk_query_result_get_value (run.result, 0, 1));
      g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 2), ==, "");
      g_assert_cmpstr (run.result->command_tag, ==, "SELECT 1");
      g_assert_cmpstr (run.result->query_id, ==,
                       tusk_query_handle_get_id (handle));
      g_assert_true (g_uuid_string_is_valid (run.result->query_id));
      /* A random UUID: version 4, variant 10. */
      g_assert_cmpint (run.result->query_id[14], ==, '4');
      g_assert_nonnull (strchr ("89ab", run.result->query_id[19]));
      g_assert_cmpint (run.result->transaction_status, ==,
                       TUSK_TRANSACTION_IDLE);
      g_assert_cmpstr (
          ((TuskColumnInfo *)run.result->columns->pdata[0])->type_name, ==,
          "integer");
      assert_pool_idle (f);
      async_run_clear (&run);
    }
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.finished - before.finished, ==, 20);
  g_assert_cmpuint (after.handed_over, ==, before.handed_over);

  /* Several rows, several statements, an error: as on a worker. */
  AsyncRun run;
  g_autoptr (TuskQueryHandle) multi = start_async (
      f, "SELECT 1; SELECT g, g * 2 FROM generate_series (1, 5) g", NULL, NULL,
      &run);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.result->n_rows, ==, 5);
  g_assert_cmpuint (run.result->rows_returned, ==, 5);
  g_assert_cmpstr (tusk_query_result_get_value (run.result, 4, 1), ==, "10");
  async_run_clear (&run);
  g_autoptr (TuskQueryHandle) bad
      = start_async (f, "SELEC 1", NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY);
  g_assert_cmpint (tusk_error_get_position (run.error), ==, 1);
  async_run_clear (&run);
  assert_pool_clean (f);
}

/* A result too big for the caller's thread goes on on a worker: every row
 * arrives, in order, with the notice sent before them delivered once. */
static void
test_fast_hand_over (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle = start_async (
      f,
      "DO $$ BEGIN RAISE NOTICE 'before the rows'; END $$; "
      "SELECT g, repeat ('x', 200) AS pad, CASE WHEN g % 1000 = 0 THEN NULL "
      "ELSE g::text END AS maybe FROM generate_series (1, 20000) g",
      NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 60000);
  g_assert_no_error (run.error);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.started - before.started, ==, 1);
  g_assert_cmpuint (after.handed_over - before.handed_over, ==, 1);
  g_assert_cmpuint (run.result->n_rows, ==, 20000);
  g_assert_cmpuint (run.result->rows_returned, ==, 20000);
  g_assert_cmpstr (run.result->command_tag, ==, "SELECT 20000");
  g_assert_cmpuint (run.result->batches->len, >=, 20);
  guint64 expected_first = 0;
  for (guint b = 0; b < run.result->batches->len; b++)
    {
      TuskRowBatch *batch = run.result->batches->pdata[b];
      g_assert_cmpuint (tusk_row_batch_get_first_row (batch), ==,
                        expected_first);
      expected_first += tusk_row_batch_get_n_rows (batch);
    }
  for (guint64 r = 0; r < 20000; r += 997)
    {
      g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, r + 1);
      g_assert_cmpstr (tusk_query_result_get_value (run.result, r, 0), ==,
                       text);
      g_assert_cmpuint (strlen (tusk_query_result_get_value (run.result, r, 1)),
                        ==, 200);
    }
  g_assert_null (tusk_query_result_get_value (run.result, 999, 2));
  g_assert_cmpstr (tusk_query_result_get_value (run.result, 19999, 0), ==,
                   "20000");
  g_assert_cmpuint (run.notices->len, ==, 1);
  g_assert_cmpstr (((TuskNotice *)run.notices->pdata[0])->message, ==,
                   "before the rows");
  g_assert_cmpuint (run.result->notices->len, ==, 1);
  async_run_clear (&run);
  assert_pool_clean (f);
}

/* A NOTICE reaches notice_func on this thread while the statement runs,
 * before the callback, and is kept in the result. */
static void
test_fast_notices (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f,
                     "DO $$ BEGIN RAISE NOTICE 'fast %', 1; "
                     "PERFORM pg_sleep (0.5); RAISE NOTICE 'fast %', 2; END $$",
                     NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 20000);
  g_assert_no_error (run.error);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.finished - before.finished, ==, 1);
  g_assert_cmpuint (run.notices->len, ==, 2);
  g_assert_cmpstr (((TuskNotice *)run.notices->pdata[0])->message, ==,
                   "fast 1");
  g_assert_cmpstr (((TuskNotice *)run.notices->pdata[1])->message, ==,
                   "fast 2");
  /* The first came while the statement still ran (on_notice_seen checks
   * that the callback had not run). */
  g_assert_cmpint (run.done_at - run.first_notice_at, >, 300 * 1000);
  g_assert_cmpuint (run.result->notices->len, ==, 2);
  async_run_clear (&run);
  assert_pool_clean (f);
}

static void
cancel_fast_and_check (Fixture *f, TuskQueryHandle *handle, AsyncRun *run,
                       const char *phase)
{
  gint64 start = g_get_monotonic_time ();
  tusk_query_handle_cancel (handle);
  tusk_test_wait_for (&run->done, 10000);
  tusk_assert_error (run->error, TUSK_ERROR_QUERY_CANCELLED);
  g_test_message ("fast path, cancel %s -> cancelled error: %.1f ms", phase,
                  (run->done_at - start) / 1000.0);
  async_run_clear (run);
  assert_pool_clean (f);
}

/* Cancelled before anything was read (right after the call, and before
 * the call: then the fast path does not even start). */
static void
test_fast_cancel_before (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f, "SELECT pg_sleep (30)", NULL, NULL, &run);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.started - before.started, ==, 1);
  cancel_fast_and_check (f, handle, &run, "right after sending");

  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  tusk_query_get_fast_stats (&before);
  g_autoptr (TuskQueryHandle) never
      = start_async (f, "SELECT 'never'", NULL, cancellable, &run);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.started, ==, before.started);
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY_CANCELLED);
  async_run_clear (&run);
}

/* Cancelled while the server runs the statement. */
static void
test_fast_cancel_running (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle = start_async (
      f, "SELECT pg_sleep (30) AS fast_running", NULL, NULL, &run);
  wait_for_activity (f, "SELECT pg_sleep (30) AS fast_running", "active");
  /* Through the caller's own cancellable this time. */
  g_cancellable_cancel (tusk_query_handle_get_cancellable (handle));
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_cmpstr (tusk_error_get_sqlstate (run.error), ==, "57014");
  g_assert_true (tusk_query_handle_is_cancelled (handle));
  async_run_clear (&run);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.started - before.started, ==, 1);
  g_assert_cmpuint (after.finished - before.finished, ==, 1);
  assert_pool_clean (f);

  /* And through the handle. */
  g_autoptr (TuskQueryHandle) again = start_async (
      f, "SELECT pg_sleep (30) AS fast_running_2", NULL, NULL, &run);
  wait_for_activity (f, "SELECT pg_sleep (30) AS fast_running_2", "active");
  cancel_fast_and_check (f, again, &run, "while the server runs");
}

/* Cancelled while rows arrive: the first ones are read on this thread, the
 * server is then held up by a sleep. */
static void
test_fast_cancel_rows (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle = start_async (
      f,
      "SELECT g, repeat ('r', 1000) FROM generate_series (1, 60) g "
      "UNION ALL SELECT 0, pg_sleep (30)::text",
      NULL, NULL, &run);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (tusk_query_handle_get_rows_read (handle) < 10)
    {
      g_assert_false (run.done);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  cancel_fast_and_check (f, handle, &run, "while rows arrive");
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.handed_over, ==, before.handed_over);
  g_assert_cmpuint (after.finished - before.finished, ==, 1);
}

/* The race: the statement is over on the server before the cancel, its
 * results not yet read: they stand. */
static void
test_fast_race (Fixture *f, gconstpointer data)
{
  (void)data;
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f, "SELECT 42 AS fast_race", NULL, NULL, &run);
  wait_for_activity (f, "SELECT 42 AS fast_race", "idle");
  tusk_query_handle_cancel (handle);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 0), ==, "42");
  async_run_clear (&run);
  assert_pool_clean (f);
}

/* A session: statements on the caller's connection run on the fast path
 * too, and the transaction status follows them. */
static void
test_fast_session (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  TuskPoolConn *conn = tusk_pool_acquire_sync (f->pool, NULL, &error);
  g_assert_no_error (error);
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  const char *sqls[] = { "BEGIN", "SELECT 1", "SELECT 1/0", "ROLLBACK" };
  TuskTransactionStatus expected[]
      = { TUSK_TRANSACTION_IN_TRANSACTION, TUSK_TRANSACTION_IN_TRANSACTION,
          TUSK_TRANSACTION_FAILED, TUSK_TRANSACTION_IDLE };
  for (guint i = 0; i < G_N_ELEMENTS (sqls); i++)
    {
      TuskQueryOptions options;
      tusk_query_options_init (&options);
      options.conn = conn;
      AsyncRun run;
      g_autoptr (TuskQueryHandle) handle
          = start_async (f, sqls[i], &options, NULL, &run);
      tusk_test_wait_for (&run.done, 10000);
      if (i == 2)
        {
          tusk_assert_error (run.error, TUSK_ERROR_QUERY);
          g_assert_cmpint (PQtransactionStatus (tusk_pool_conn_get_pg (conn)),
                           ==, PQTRANS_INERROR);
        }
      else
        {
          g_assert_no_error (run.error);
          g_assert_cmpint (run.result->transaction_status, ==, expected[i]);
        }
      async_run_clear (&run);
    }
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.started - before.started, ==, 4);
  /* Still the caller's, blocking as before. */
  g_assert_cmpint (PQisnonblocking (tusk_pool_conn_get_pg (conn)), ==, 0);
  tusk_pool_release (conn);
  assert_pool_clean (f);
}

/* COPY is the worker's; so are type names the catalog must give. */
static void
test_fast_copy_and_types (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) copy = start_async (
      f, "COPY (SELECT g FROM generate_series (1, 3) g) TO STDOUT", NULL, NULL,
      &run);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_assert_cmpint (run.result->rows_affected, ==, 3);
  g_assert_cmpstr (run.result->command_tag, ==, "COPY 3");
  async_run_clear (&run);
  g_autoptr (TuskQueryResult) setup
      = run_ok (f, "DROP TABLE IF EXISTS qt_fast_in; "
                   "CREATE TABLE qt_fast_in (i int)");
  g_autoptr (TuskQueryHandle) copy_in
      = start_async (f, "COPY qt_fast_in FROM STDIN", NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY);
  async_run_clear (&run);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.handed_over - before.handed_over, ==, 2);
  assert_pool_clean (f);

  /* A user type on a connection that never named it. */
  g_autoptr (TuskQueryResult) type
      = run_ok (f, "DROP TYPE IF EXISTS qt_fast_mood CASCADE; "
                   "CREATE TYPE qt_fast_mood AS ENUM ('calm'); "
                   "DROP TABLE qt_fast_in");
  tusk_query_get_fast_stats (&before);
  g_autoptr (TuskQueryHandle) named = start_async (
      f, "SELECT 'calm'::qt_fast_mood AS mood", NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_assert_cmpstr (((TuskColumnInfo *)run.result->columns->pdata[0])->type_name,
                   ==, "qt_fast_mood");
  g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 0), ==, "calm");
  async_run_clear (&run);
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.looked_up - before.looked_up, ==, 1);
  assert_pool_clean (f);
}

/* A backend terminated while its connection sat idle after a fast-path
 * query: the next query gets a working connection. */
static void
test_fast_idle_terminated (Fixture *f, gconstpointer data)
{
  (void)data;
  AsyncRun run;
  g_autoptr (TuskQueryHandle) first
      = start_async (f, "SELECT pg_backend_pid ()", NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_autofree char *kill
      = g_strdup_printf ("SELECT pg_terminate_backend (%s)",
                         tusk_query_result_get_value (run.result, 0, 0));
  async_run_clear (&run);
  /* From another pool: this one's idle head is the connection to kill. */
  g_autoptr (TuskConnectionConfig) config = test_config ();
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskPool) other
      = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (TuskQueryResult) killed
      = tusk_query_execute_sync (other, kill, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (tusk_query_result_get_value (killed, 0, 0), ==, "t");
  /* Let the FATAL and end of file arrive. */
  g_usleep (200 * 1000);
  for (int i = 0; i < 3; i++)
    {
      g_autoptr (TuskQueryHandle) next
          = start_async (f, "SELECT 'alive'", NULL, NULL, &run);
      tusk_test_wait_for (&run.done, 10000);
      g_assert_no_error (run.error);
      g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 0), ==,
                       "alive");
      async_run_clear (&run);
    }
  assert_pool_clean (f);
}

/* The worker path of execute_async still does all of the above. */
static void
test_worker_path (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_query_set_fast_path (FALSE);
  TuskQueryFastStats before, after;
  tusk_query_get_fast_stats (&before);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle = start_async (
      f, "DO $$ BEGIN RAISE NOTICE 'worker'; END $$; SELECT 7, NULL::int", NULL,
      NULL, &run);
  g_assert_false (run.done);
  tusk_test_wait_for (&run.done, 10000);
  g_assert_no_error (run.error);
  g_assert_cmpstr (tusk_query_result_get_value (run.result, 0, 0), ==, "7");
  g_assert_null (tusk_query_result_get_value (run.result, 0, 1));
  g_assert_cmpuint (run.notices->len, ==, 1);
  async_run_clear (&run);
  g_autoptr (TuskQueryHandle) sleeper = start_async (
      f, "SELECT pg_sleep (30) AS worker_sleep", NULL, NULL, &run);
  wait_for_activity (f, "SELECT pg_sleep (30) AS worker_sleep", "active");
  cancel_fast_and_check (f, sleeper, &run, "(worker) while the server runs");
  tusk_query_get_fast_stats (&after);
  g_assert_cmpuint (after.started, ==, before.started);
  tusk_query_set_fast_path (TRUE);
}

/* ---- notices, registry, history --------------------------------------- */

static void
test_notices (Fixture *f, gconstpointer data)
{
  (void)data;
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f,
                     "DO $$ BEGIN RAISE NOTICE 'first %', 1; "
                     "RAISE WARNING 'careful' USING HINT = 'a hint'; "
                     "PERFORM pg_sleep (1); END $$",
                     NULL, NULL, &run);
  tusk_test_wait_for (&run.done, 20000);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.notices->len, ==, 2);
  /* Delivered while the statement ran, well before it ended. */
  g_assert_cmpint (run.done_at - run.first_notice_at, >, 500 * 1000);
  TuskNotice *first = run.notices->pdata[0];
  g_assert_cmpstr (first->severity, ==, "NOTICE");
  g_assert_cmpstr (first->message, ==, "first 1");
  TuskNotice *second = run.notices->pdata[1];
  g_assert_cmpstr (second->severity, ==, "WARNING");
  g_assert_cmpstr (second->hint, ==, "a hint");
  /* And kept in the result. */
  g_assert_cmpuint (run.result->notices->len, ==, 2);
  g_assert_cmpstr (((TuskNotice *)run.result->notices->pdata[0])->message, ==,
                   "first 1");
  async_run_clear (&run);
  assert_pool_clean (f);
}

static void
test_registry (Fixture *f, gconstpointer data)
{
  (void)data;
  AsyncRun a, b;
  g_autoptr (TuskQueryHandle) ha
      = start_async (f, "SELECT pg_sleep (30)", NULL, NULL, &a);
  g_autoptr (TuskQueryHandle) hb
      = start_async (f, "SELECT pg_sleep (30), 2", NULL, NULL, &b);
  const char *connection_id = tusk_pool_get_config (f->pool)->id;
  g_assert_cmpstr (tusk_query_handle_get_connection_id (ha), ==, connection_id);
  g_assert_cmpstr (tusk_query_handle_get_sql (ha), ==, "SELECT pg_sleep (30)");
  g_assert_true (g_uuid_string_is_valid (tusk_query_handle_get_id (ha)));
  g_assert_cmpint (tusk_query_handle_get_started_at (ha), >, 0);

  g_autoptr (GPtrArray) list = tusk_query_registry_list (f->registry, NULL);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_true (list->pdata[0] == ha);
  g_autoptr (GPtrArray) other
      = tusk_query_registry_list (f->registry, "no such connection");
  g_assert_cmpuint (other->len, ==, 0);

  /* Cancelling one by id leaves the other running. */
  g_assert_true (
      tusk_query_registry_cancel (f->registry, tusk_query_handle_get_id (ha)));
  tusk_test_wait_for (&a.done, 10000);
  tusk_assert_error (a.error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_false (b.done);
  g_assert_false (tusk_query_handle_is_cancelled (hb));
  g_autoptr (GPtrArray) left = tusk_query_registry_list (f->registry, NULL);
  g_assert_cmpuint (left->len, ==, 1);

  /* A disconnect cancels the rest of the connection's queries. */
  g_assert_cmpuint (
      tusk_query_registry_cancel_connection (f->registry, connection_id), ==,
      1);
  tusk_test_wait_for (&b.done, 10000);
  tusk_assert_error (b.error, TUSK_ERROR_QUERY_CANCELLED);
  g_autoptr (GPtrArray) none = tusk_query_registry_list (f->registry, NULL);
  g_assert_cmpuint (none->len, ==, 0);
  async_run_clear (&a);
  async_run_clear (&b);
}

static void
test_history (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *dir = g_dir_make_tmp ("tusk-query-XXXXXX", NULL);
  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  g_assert_no_error (error);
  g_assert_true (tusk_connection_repo_save (
      storage, tusk_pool_get_config (f->pool), &error));
  g_assert_no_error (error);
  const char *id = tusk_pool_get_config (f->pool)->id;

  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.storage = storage;
  TuskQueryResult *ok = tusk_query_execute_sync (
      f->pool, "SELECT g FROM generate_series (1, 7) g", &options, NULL,
      &error);
  g_assert_no_error (error);
  tusk_query_result_free (ok);
  g_assert_null (tusk_query_execute_sync (f->pool, "SELECT * FROM qt_missing",
                                          &options, NULL, &error));
  g_clear_error (&error);
  AsyncRun run;
  g_autoptr (TuskQueryHandle) handle
      = start_async (f, "SELECT pg_sleep (20)", &options, NULL, &run);
  g_usleep (200 * 1000);
  tusk_query_handle_cancel (handle);
  tusk_test_wait_for (&run.done, 10000);
  tusk_assert_error (run.error, TUSK_ERROR_QUERY_CANCELLED);
  async_run_clear (&run);

  /* An unsaved connection records nothing. */
  g_autoptr (TuskConnectionConfig) unsaved = test_config ();
  g_autoptr (TuskPool) other
      = tusk_pool_new_sync (unsaved, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  ok = tusk_query_execute_sync (other, "SELECT 'unsaved'", &options, NULL,
                                &error);
  g_assert_no_error (error);
  tusk_query_result_free (ok);

  tusk_storage_flush (storage);
  g_autoptr (GPtrArray) entries
      = tusk_history_repo_list (storage, NULL, -1, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (entries->len, ==, 3);
  TuskHistoryEntry *cancelled = entries->pdata[0];
  TuskHistoryEntry *failed = entries->pdata[1];
  TuskHistoryEntry *success = entries->pdata[2];
  g_assert_cmpstr (success->connection_id, ==, id);
  g_assert_cmpstr (success->sql, ==, "SELECT g FROM generate_series (1, 7) g");
  g_assert_cmpint (success->row_count, ==, 7);
  g_assert_cmpint (success->execution_time_ms, >=, 0);
  g_assert_null (success->error_message);
  g_assert_nonnull (strstr (failed->error_message, "qt_missing"));
  g_assert_cmpint (failed->row_count, ==, -1);
  g_assert_cmpstr (cancelled->sql, ==, "SELECT pg_sleep (20)");
  g_assert_nonnull (cancelled->error_message);
  g_assert_cmpint (cancelled->execution_time_ms, >=, 150);
  tusk_storage_close (storage);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  g_assert_cmpint (system (cmd), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_setenv ("TUSK_LOG", "warn", TRUE);
#define ADD(path, func)                                                        \
  g_test_add ("/tusk/query/" path, Fixture, NULL, fixture_set_up, func,        \
              fixture_tear_down)
  ADD ("type-names", test_type_names);
  ADD ("builtin-names-match-server", test_builtin_names_match_server);
  ADD ("values", test_values);
  ADD ("query-types", test_query_types);
  ADD ("transaction-status", test_transaction_status);
  ADD ("stream-batches", test_stream_batches);
  ADD ("back-pressure", test_back_pressure);
  ADD ("cancel-before-send", test_cancel_before_send);
  ADD ("cancel-running", test_cancel_running);
  ADD ("cancel-streaming", test_cancel_streaming);
  ADD ("cancel-race", test_cancel_race);
  ADD ("terminated-mid-stream", test_terminated_mid_stream);
  ADD ("statement-timeout", test_statement_timeout);
  ADD ("notices", test_notices);
  ADD ("registry", test_registry);
  ADD ("history", test_history);
  ADD ("fast-path/small", test_fast_small);
  ADD ("fast-path/hand-over", test_fast_hand_over);
  ADD ("fast-path/notices", test_fast_notices);
  ADD ("fast-path/cancel-before", test_fast_cancel_before);
  ADD ("fast-path/cancel-running", test_fast_cancel_running);
  ADD ("fast-path/cancel-rows", test_fast_cancel_rows);
  ADD ("fast-path/race", test_fast_race);
  ADD ("fast-path/session", test_fast_session);
  ADD ("fast-path/copy-and-types", test_fast_copy_and_types);
  ADD ("fast-path/idle-terminated", test_fast_idle_terminated);
  ADD ("worker-path", test_worker_path);
#undef ADD
  return g_test_run ();
}
