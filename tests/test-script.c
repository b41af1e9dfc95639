/* test-script.c: scripts run statement by statement on one connection,
 * against the real server. */
#include <string.h>

#include "tusk.h"
#include "tusk-test.h"

static TuskPool *
open_pool (void)
{
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("script test");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (
      config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, NULL, &error);
  g_assert_no_error (error);
  return pool;
}

static const char *
value (const TuskScriptStep *step, guint row, guint column)
{
  g_assert_nonnull (step->result);
  return tusk_query_result_get_value (step->result, row, column);
}

static void
test_session_carries_over (void)
{
  TuskPool *pool = open_pool ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) steps = tusk_script_run_sync (
      pool,
      "SET application_name = 'script';\n"
      "\\echo a front-end command\n"
      "CREATE TEMP TABLE t (x int);\n"
      "INSERT INTO t VALUES (1), (2);\n"
      "-- a comment, then the last statement without ';'\n"
      "SELECT current_setting('application_name'), count(*) FROM t",
      NULL, TRUE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (steps->len, ==, 5);

  TuskScriptStep *meta = steps->pdata[1];
  g_assert_true (meta->skipped);
  g_assert_cmpint (meta->piece->kind, ==, TUSK_SQL_META);
  TuskScriptStep *insert = steps->pdata[3];
  g_assert_cmpint (insert->result->rows_affected, ==, 2);
  TuskScriptStep *last = steps->pdata[4];
  g_assert_cmpstr (value (last, 0, 0), ==, "script");
  g_assert_cmpstr (value (last, 0, 1), ==, "2");
  tusk_pool_unref (pool);
}

static void
test_stops_at_the_first_error (void)
{
  TuskPool *pool = open_pool ();
  const char *script = "SELECT 1;\n"
                       "SELECT 2;\n"
                       "SELECT *\n"
                       "  FORM nowhere;\n"
                       "SELECT 4;\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) steps
      = tusk_script_run_sync (pool, script, NULL, TRUE, NULL, &error);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "42601");
  g_assert_cmpuint (steps->len, ==, 3);
  TuskScriptStep *failed = steps->pdata[2];
  g_assert_nonnull (failed->error);
  /* "FORM" is on line 4, column 3 of the script. */
  g_assert_cmpint (failed->error_line, ==, 4);
  g_assert_cmpint (failed->error_column, ==, 3);

  /* Without stopping, the rest still runs. */
  g_clear_error (&error);
  g_autoptr (GPtrArray) all
      = tusk_script_run_sync (pool, script, NULL, FALSE, NULL, &error);
  tusk_assert_error (error, TUSK_ERROR_QUERY);
  g_assert_cmpuint (all->len, ==, 4);
  g_assert_cmpstr (value (all->pdata[3], 0, 0), ==, "4");
  tusk_pool_unref (pool);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tusk/script/session-carries-over",
                   test_session_carries_over);
  g_test_add_func ("/tusk/script/stops-at-the-first-error",
                   test_stops_at_the_first_error);
  return g_test_run ();
}
