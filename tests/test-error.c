/* test-error.c: the TUSK_ERROR domain, the SQLSTATE table, ErrorInfo and
 * the conversions, against the real PostgreSQL server of the test
 * environment where a server is involved. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsecret/secret.h>

#include "tusk-error-private.h"
#include "tusk-pg-private.h"
#include "tusk-test.h"

/* ---- categories and the table ----------------------------------------- */

static void
test_every_category_has_a_hint (void)
{
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  for (int code = 0; code < TUSK_ERROR_N_CODES; code++)
    {
      const char *name = tusk_error_code_name (code);
      g_assert_nonnull (name);
      g_assert_true (g_hash_table_add (names, (gpointer)name));
      g_assert_cmpuint (strlen (tusk_error_code_title (code)), >, 3);
      g_assert_cmpuint (strlen (tusk_error_code_hint (code)), >, 10);

      /* An error without a hint of its own still shows its category's. */
      g_autoptr (GError) error = g_error_new_literal (TUSK_ERROR, code, "x");
      g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
      g_assert_cmpstr (info->hint, ==, tusk_error_code_hint (code));
      g_assert_cmpstr (info->error_type, ==, tusk_error_code_title (code));
    }
  g_assert_cmpstr (tusk_error_code_name (TUSK_ERROR_QUERY_CANCELLED), ==,
                   "query-cancelled");
  g_assert_cmpstr (tusk_error_code_name (TUSK_ERROR_POOL_TIMEOUT), ==,
                   "pool-timeout");
}

static void
test_sqlstate_table (void)
{
  static const struct
  {
    const char *sqlstate;
    TuskErrorCode code;
    const char *hint_word;
  } cases[] = {
    { "28P01", TUSK_ERROR_AUTHENTICATION, "password" },
    { "28000", TUSK_ERROR_AUTHENTICATION, "username" },
    { "3D000", TUSK_ERROR_CONNECTION, "Database does not exist" },
    { "08000", TUSK_ERROR_CONNECTION, "network" },
    { "08001", TUSK_ERROR_CONNECTION, "running" },
    { "08003", TUSK_ERROR_CONNECTION, "reconnect" },
    { "08004", TUSK_ERROR_CONNECTION, "pg_hba.conf" },
    { "08006", TUSK_ERROR_CONNECTION, "lost" },
    { "42601", TUSK_ERROR_QUERY, "syntax" },
    { "42P01", TUSK_ERROR_QUERY, "table" },
    { "42703", TUSK_ERROR_QUERY, "column" },
    { "42501", TUSK_ERROR_QUERY, "GRANT" },
    { "53300", TUSK_ERROR_CONNECTION, "max_connections" },
    { "57014", TUSK_ERROR_QUERY_CANCELLED, "cancelled" },
    { "57P01", TUSK_ERROR_CONNECTION, "restarted" },
    /* Classes. */
    { "08P99", TUSK_ERROR_CONNECTION, "network" },
    { "42P99", TUSK_ERROR_QUERY, "syntax" },
    { "28XYZ", TUSK_ERROR_AUTHENTICATION, "username" },
    { "23505", TUSK_ERROR_QUERY, "constraint" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const TuskSqlstateInfo *info = tusk_sqlstate_lookup (cases[i].sqlstate);
      g_assert_nonnull (info);
      g_assert_cmpint (info->code, ==, cases[i].code);
      g_assert_nonnull (strstr (info->hint, cases[i].hint_word));
    }
  g_assert_null (tusk_sqlstate_lookup ("ZZ999"));
  g_assert_null (tusk_sqlstate_lookup (NULL));
  g_assert_null (tusk_sqlstate_lookup ("42"));
  g_assert_null (tusk_sqlstate_lookup ("4260"));
  g_assert_null (tusk_sqlstate_lookup ("426011"));
}

/* ---- the extended fields ----------------------------------------------- */

static void
test_fields_travel_with_the_error (void)
{
  g_autoptr (GError) error
      = tusk_error_new_full (TUSK_ERROR_QUERY, "syntax error at or near \"x\"",
                             "a detail", NULL, 8, "42601");
  g_assert_cmpstr (tusk_error_get_detail (error), ==, "a detail");
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "42601");
  g_assert_cmpint (tusk_error_get_position (error), ==, 8);
  /* No hint given: the table's. */
  g_assert_cmpstr (tusk_error_get_hint (error), ==,
                   tusk_sqlstate_lookup ("42601")->hint);

  /* Copies (GTask, g_propagate_prefixed_error) keep every field. */
  g_autoptr (GError) copy = g_error_copy (error);
  g_assert_cmpstr (tusk_error_get_detail (copy), ==, "a detail");
  g_assert_cmpint (tusk_error_get_position (copy), ==, 8);
  g_assert_cmpstr (tusk_error_get_sqlstate (copy), ==, "42601");

  tusk_error_set_hint (copy, "another");
  g_assert_cmpstr (tusk_error_get_hint (copy), ==, "another");
  g_assert_cmpstr (tusk_error_get_hint (error), !=, "another");

  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  g_assert_cmpint (info->code, ==, TUSK_ERROR_QUERY);
  g_assert_cmpstr (info->error_type, ==, "Query Error");
  g_assert_cmpint (info->position, ==, 8);
  g_assert_cmpstr (info->sqlstate, ==, "42601");
  g_assert_nonnull (strstr (info->hint, "position 8"));
  g_assert_nonnull (strstr (info->technical_detail, "a detail"));
  g_assert_nonnull (strstr (info->technical_detail, "SQLSTATE 42601"));
  g_assert_true (info->recoverable);
}

static void
test_foreign_errors (void)
{
  g_autoptr (GError) error
      = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "disk on fire");

  /* Accessors answer nothing for other domains, without a critical. */
  g_assert_null (tusk_error_get_detail (error));
  g_assert_null (tusk_error_get_hint (error));
  g_assert_null (tusk_error_get_sqlstate (error));
  g_assert_cmpint (tusk_error_get_position (error), ==, 0);
  g_assert_null (tusk_error_get_hint (NULL));
  tusk_error_set_hint (error, "ignored");

  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  g_assert_cmpint (info->code, ==, TUSK_ERROR_INTERNAL);
  g_assert_cmpstr (info->message, ==, "disk on fire");
  g_assert_cmpstr (info->hint, ==, "Please report this issue");
  g_assert_nonnull (strstr (info->technical_detail, "g-io-error-quark"));
  g_assert_false (info->recoverable);

  g_autoptr (GError) set = NULL;
  tusk_set_error (&set, TUSK_ERROR_VALIDATION, "fix the name",
                  "name: must be 1-%d characters", 255);
  tusk_assert_error (set, TUSK_ERROR_VALIDATION);
  g_assert_cmpstr (set->message, ==, "name: must be 1-255 characters");
  g_assert_cmpstr (tusk_error_get_hint (set), ==, "fix the name");
  tusk_set_error (NULL, TUSK_ERROR_INTERNAL, NULL, "ignored");
}

/* ---- conversions from the other libraries ------------------------------ */

static void
test_from_errno (void)
{
  g_autoptr (GError) denied
      = tusk_error_from_errno (EACCES, "Could not open /x");
  tusk_assert_error (denied, TUSK_ERROR_STORAGE);
  g_assert_cmpstr (denied->message, ==, "Could not open /x: Permission denied");
  g_assert_nonnull (strstr (tusk_error_get_hint (denied), "Permission"));

  g_autoptr (GError) missing = tusk_error_from_errno (ENOENT, "Reading f");
  tusk_assert_error (missing, TUSK_ERROR_NOT_FOUND);
  g_autoptr (GError) full = tusk_error_from_errno (ENOSPC, "Writing f");
  tusk_assert_error (full, TUSK_ERROR_STORAGE);
  g_assert_nonnull (strstr (tusk_error_get_hint (full), "full"));
  g_autoptr (GError) refused = tusk_error_from_errno (ECONNREFUSED, "c");
  tusk_assert_error (refused, TUSK_ERROR_CONNECTION);
  g_autoptr (GError) odd = tusk_error_from_errno (EDOM, "maths");
  tusk_assert_error (odd, TUSK_ERROR_INTERNAL);
}

static void
test_from_sqlite (void)
{
  g_autofree char *dir = g_dir_make_tmp ("tusk-error-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "garbage.db", NULL);
  g_assert_true (g_file_set_contents (
      path, "this is not a database, not at all; 100 bytes of junk ......", -1,
      NULL));

  sqlite3 *db = NULL;
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  int rc = sqlite3_exec (db, "SELECT * FROM sqlite_master", NULL, NULL, NULL);
  g_assert_cmpint (rc, ==, SQLITE_NOTADB);
  g_autoptr (GError) error = tusk_error_from_sqlite (db, rc, "Opening tusk.db");
  sqlite3_close (db);

  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  g_assert_true (g_str_has_prefix (error->message, "Opening tusk.db: "));
  g_assert_nonnull (strstr (tusk_error_get_hint (error), "damaged"));
  g_assert_nonnull (strstr (tusk_error_get_detail (error), "SQLite error 26"));

  g_unlink (path);
  g_rmdir (dir);
}

static void
test_from_json (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) parse_error = NULL;
  g_assert_false (
      json_parser_load_from_data (parser, "{\"a\": [1, 2", -1, &parse_error));

  g_autoptr (GError) error = tusk_error_from_json (parse_error, "Reading f");
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_true (g_str_has_prefix (error->message, "Reading f: "));
  g_assert_nonnull (strstr (tusk_error_get_hint (error), "valid JSON"));
}

static void
test_from_secret (void)
{
  g_autoptr (GError) locked = g_error_new_literal (
      SECRET_ERROR, SECRET_ERROR_IS_LOCKED, "Cannot store in a locked item");
  g_autoptr (GError) a = tusk_error_from_secret (locked, "Storing a password");
  tusk_assert_error (a, TUSK_ERROR_KEYRING);
  g_assert_nonnull (strstr (tusk_error_get_hint (a), "locked"));

  g_autoptr (GError) no_bus = g_error_new_literal (
      G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN, "not provided");
  g_autoptr (GError) b = tusk_error_from_secret (no_bus, "Reading a password");
  tusk_assert_error (b, TUSK_ERROR_KEYRING);
  g_assert_nonnull (strstr (tusk_error_get_hint (b), "Secret Service"));

  g_autoptr (GError) cancelled
      = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Cancelled");
  g_autoptr (GError) c = tusk_error_from_secret (cancelled, "x");
  tusk_assert_error (c, TUSK_ERROR_QUERY_CANCELLED);
}

/* A loopback port nothing listens on (bound, then closed). */
static int
closed_port (void)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr
      = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof addr;
  g_assert_cmpint (bind (fd, (struct sockaddr *)&addr, len), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *)&addr, &len), ==, 0);
  close (fd);
  return ntohs (addr.sin_port);
}

static void
test_from_ssh (void)
{
  ssh_session session = ssh_new ();
  int port = closed_port ();
  long timeout = 5;
  ssh_options_set (session, SSH_OPTIONS_HOST, "127.0.0.1");
  ssh_options_set (session, SSH_OPTIONS_PORT, &port);
  ssh_options_set (session, SSH_OPTIONS_TIMEOUT, &timeout);
  g_assert_cmpint (ssh_connect (session), ==, SSH_ERROR);

  g_autoptr (GError) error = tusk_error_from_ssh (session, "Connecting to the "
                                                           "bastion");
  ssh_free (session);
  tusk_assert_error (error, TUSK_ERROR_SSH);
  g_assert_true (
      g_str_has_prefix (error->message, "Connecting to the bastion"));
  g_assert_nonnull (tusk_error_get_hint (error));
}

/* ---- against the real server ------------------------------------------- */

/* Connects to the test server with the given overrides of the password
 * role's defaults; returns the connection or NULL with @error set. */
static PGconn *
connect_as (const char *user, const char *password, const char *dbname,
            const char *port, GError **error)
{
  const char *keywords[] = { "host",     "port",    "dbname",          "user",
                             "password", "sslmode", "connect_timeout", NULL };
  const char *values[] = {
    tusk_test_env ("TUSK_TEST_PGHOST"),
    port ? port : tusk_test_env ("TUSK_TEST_PGPORT"),
    dbname ? dbname : tusk_test_env ("TUSK_TEST_PGDATABASE"),
    user ? user : tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"),
    password ? password : tusk_test_env ("TUSK_TEST_PGPASSWORD"),
    "disable",
    "10",
    NULL,
  };
  return tusk_pg_connect (keywords, values, NULL, error);
}

static GError *
run_failing (PGconn *conn, const char *sql)
{
  PGresult *res = PQexec (conn, sql);
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_FATAL_ERROR);
  GError *error = tusk_error_from_pg_result (conn, res);
  PQclear (res);
  return error;
}

static void
test_pg_wrong_password (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (connect_as (NULL, "not-the-password", NULL, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_AUTHENTICATION);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "28P01");
  g_assert_nonnull (strstr (error->message, "password authentication failed"));
  g_assert_null (strstr (error->message, "FATAL"));
  g_assert_null (strstr (error->message, "28P01"));
  g_assert_null (strstr (error->message, "not-the-password"));
  g_assert_cmpstr (tusk_error_get_hint (error), ==,
                   "Invalid password—check your credentials");
}

static void
test_pg_missing_database (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (connect_as (NULL, NULL, "no_such_db", NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "3D000");
  g_assert_nonnull (strstr (error->message, "\"no_such_db\" does not exist"));
  g_assert_nonnull (strstr (tusk_error_get_hint (error), "verify database"));
}

static void
test_pg_refused_port (void)
{
  g_autofree char *port = g_strdup_printf ("%d", closed_port ());
  g_autoptr (GError) error = NULL;
  g_assert_null (connect_as (NULL, NULL, NULL, port, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "08001");
  g_assert_nonnull (strstr (error->message, "refused"));
}

static void
test_pg_statement_errors (void)
{
  g_autoptr (GError) error = NULL;
  PGconn *conn = connect_as (NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_autoptr (GError) syntax = run_failing (conn, "SELECT * FORM x");
  tusk_assert_error (syntax, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (syntax), ==, "42601");
  g_assert_cmpint (tusk_error_get_position (syntax), ==, 10);
  g_assert_nonnull (strstr (syntax->message, "syntax error"));
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (syntax);
  g_assert_nonnull (strstr (info->hint, "position 10"));

  g_autoptr (GError) table = run_failing (conn, "SELECT * FROM no_such_table");
  tusk_assert_error (table, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (table), ==, "42P01");
  g_assert_cmpint (tusk_error_get_position (table), ==, 15);

  g_autoptr (GError) column = run_failing (conn, "SELECT no_such_column");
  g_assert_cmpstr (tusk_error_get_sqlstate (column), ==, "42703");

  /* A server HINT wins over the table's. */
  g_autoptr (GError) function = run_failing (conn, "SELECT no_such_fn(1)");
  g_assert_cmpstr (tusk_error_get_sqlstate (function), ==, "42883");
  g_assert_nonnull (strstr (tusk_error_get_hint (function), "explicit type"));

  g_autoptr (GError) detail = run_failing (
      conn, "DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', "
            "ERRCODE = '22012'; END $$");
  g_assert_cmpstr (tusk_error_get_detail (detail), ==, "the detail");
  g_assert_cmpstr (tusk_error_get_sqlstate (detail), ==, "22012");

  g_autoptr (GError) denied
      = run_failing (conn, "SELECT * FROM pg_authid LIMIT 1");
  tusk_assert_error (denied, TUSK_ERROR_QUERY);
  g_assert_cmpstr (tusk_error_get_sqlstate (denied), ==, "42501");
  PQfinish (conn);
}

static void
test_pg_statement_timeout_and_cancel (void)
{
  g_autoptr (GError) error = NULL;
  PGconn *conn = connect_as (NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  PQclear (PQexec (conn, "SET statement_timeout = '50ms'"));
  g_autoptr (GError) timeout = run_failing (conn, "SELECT pg_sleep(5)");
  g_assert_cmpstr (tusk_error_get_sqlstate (timeout), ==, "57014");
  tusk_assert_error (timeout, TUSK_ERROR_QUERY);
  g_assert_nonnull (
      strstr (tusk_error_get_hint (timeout), "statement_timeout"));
  PQclear (PQexec (conn, "SET statement_timeout = 0"));

  /* A user's cancel: the same SQLSTATE, another category. */
  g_assert_cmpint (PQsendQuery (conn, "SELECT pg_sleep(5)"), ==, 1);
  g_usleep (100 * 1000);
  char errbuf[256];
  PGcancel *cancel = PQgetCancel (conn);
  g_assert_cmpint (PQcancel (cancel, errbuf, sizeof errbuf), ==, 1);
  PQfreeCancel (cancel);
  PGresult *res = PQgetResult (conn);
  g_autoptr (GError) cancelled = tusk_error_from_pg_result (conn, res);
  PQclear (res);
  while ((res = PQgetResult (conn)))
    PQclear (res);
  tusk_assert_error (cancelled, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_cmpstr (tusk_error_get_sqlstate (cancelled), ==, "57014");
  PQfinish (conn);
}

static void
test_pg_terminated (void)
{
  g_autoptr (GError) error = NULL;
  PGconn *victim = connect_as (NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  PGconn *admin = connect_as (NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  g_autofree char *kill = g_strdup_printf ("SELECT pg_terminate_backend(%d)",
                                           PQbackendPID (victim));
  PGresult *res = PQexec (admin, kill);
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_TUPLES_OK);
  PQclear (res);
  g_usleep (100 * 1000);

  res = PQexec (victim, "SELECT 1");
  g_autoptr (GError) terminated = tusk_error_from_pg_result (victim, res);
  PQclear (res);
  tusk_assert_error (terminated, TUSK_ERROR_CONNECTION);
  /* Either the FATAL 57P01 arrived first, or only the closed socket did. */
  const char *sqlstate = tusk_error_get_sqlstate (terminated);
  g_assert_true (g_strcmp0 (sqlstate, "57P01") == 0
                 || g_strcmp0 (sqlstate, "08006") == 0);

  PQfinish (victim);
  PQfinish (admin);
}

static void
test_pg_too_many_connections (void)
{
  g_autoptr (GError) error = NULL;
  PGconn *admin = connect_as (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"), "",
                              NULL, NULL, &error);
  g_assert_no_error (error);
  PQclear (PQexec (admin, "DROP DATABASE IF EXISTS tusk_error_limited"));
  PGresult *res = PQexec (admin, "CREATE DATABASE tusk_error_limited "
                                 "CONNECTION LIMIT 0");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_COMMAND_OK);
  PQclear (res);

  g_assert_null (connect_as (NULL, NULL, "tusk_error_limited", NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_assert_cmpstr (tusk_error_get_sqlstate (error), ==, "53300");
  g_assert_nonnull (strstr (tusk_error_get_hint (error), "max_connections"));

  PQclear (PQexec (admin, "DROP DATABASE tusk_error_limited"));
  PQfinish (admin);
}

static void
test_pg_ssl_host_mismatch (void)
{
  const char *keywords[]
      = { "host",     "hostaddr", "port",        "dbname", "user",
          "password", "sslmode",  "sslrootcert", NULL };
  const char *values[] = { "tusk.invalid",
                           tusk_test_env ("TUSK_TEST_PGHOST"),
                           tusk_test_env ("TUSK_TEST_PGPORT"),
                           tusk_test_env ("TUSK_TEST_PGDATABASE"),
                           tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"),
                           tusk_test_env ("TUSK_TEST_PGPASSWORD"),
                           "verify-full",
                           tusk_test_env ("TUSK_TEST_SSL_ROOT_CERT"),
                           NULL };
  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_pg_connect (keywords, values, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_SSL);
  g_assert_nonnull (strstr (tusk_error_get_hint (error), "host name"));

  /* The same without the CA: not trusted. */
  values[0] = "localhost";
  values[7] = "/nonexistent/root.crt";
  g_clear_error (&error);
  g_assert_null (tusk_pg_connect (keywords, values, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_SSL);
  g_assert_nonnull (strstr (tusk_error_get_hint (error), "root certificate"));
}

static void
test_pg_connect_cancelled (void)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  const char *keywords[] = { "host", NULL };
  const char *values[] = { tusk_test_env ("TUSK_TEST_PGHOST"), NULL };
  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_pg_connect (keywords, values, cancellable, &error));
  tusk_assert_error (error, TUSK_ERROR_QUERY_CANCELLED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tusk/error/categories", test_every_category_has_a_hint);
  g_test_add_func ("/tusk/error/sqlstate-table", test_sqlstate_table);
  g_test_add_func ("/tusk/error/fields", test_fields_travel_with_the_error);
  g_test_add_func ("/tusk/error/foreign", test_foreign_errors);
  g_test_add_func ("/tusk/error/from-errno", test_from_errno);
  g_test_add_func ("/tusk/error/from-sqlite", test_from_sqlite);
  g_test_add_func ("/tusk/error/from-json", test_from_json);
  g_test_add_func ("/tusk/error/from-secret", test_from_secret);
  g_test_add_func ("/tusk/error/from-ssh", test_from_ssh);
  g_test_add_func ("/tusk/error/pg/28P01-wrong-password",
                   test_pg_wrong_password);
  g_test_add_func ("/tusk/error/pg/3D000-missing-database",
                   test_pg_missing_database);
  g_test_add_func ("/tusk/error/pg/08001-refused", test_pg_refused_port);
  g_test_add_func ("/tusk/error/pg/statement-errors", test_pg_statement_errors);
  g_test_add_func ("/tusk/error/pg/57014-timeout-and-cancel",
                   test_pg_statement_timeout_and_cancel);
  g_test_add_func ("/tusk/error/pg/57P01-terminated", test_pg_terminated);
  g_test_add_func ("/tusk/error/pg/53300-too-many",
                   test_pg_too_many_connections);
  g_test_add_func ("/tusk/error/pg/ssl", test_pg_ssl_host_mismatch);
  g_test_add_func ("/tusk/error/pg/connect-cancelled",
                   test_pg_connect_cancelled);
  return g_test_run ();
}
