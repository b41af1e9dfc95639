/* test-shell.c: the `tusk` command run as a person or a script runs it,
 * against the real server of the test environment, with a private data
 * directory: every output format (csv byte for byte against the real
 * psql, table against psql's aligned output, json and ndjson parsed back),
 * exit codes, errors with their LINE excerpt and caret, -c and -f scripts,
 * a saved connection, read-only connections, Ctrl-C, and a 1,000,000-row
 * export in bounded memory. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "tusk.h"
#include "tusk-test-pty.h"
#include "tusk-test.h"

#define PSQL "/usr/lib/postgresql/15/bin/psql"

/* The schema of the enum and composite types of the corpus. */
#define SCHEMA "tusk_shell_test"

extern char **environ;

typedef struct
{
  char *data_dir;
} Fixture;

typedef struct
{
  int status; /* the exit code; 128 + N after signal N */
  char *out;  /* NUL-terminated, may hold other NULs */
  gsize out_len;
  char *err;
} Result;

static void
result_free (Result *result)
{
  g_free (result->out);
  g_free (result->err);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Result, result_free)

static char *
tusk_path (void)
{
  return g_build_filename (tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell",
                           "tusk", NULL);
}

/* The environment for children: the caller's without any PG* variable,
 * plus @extra ("NAME=VALUE", NULL-terminated, nullable). */
static char **
child_environ (const char *const *extra)
{
  char **env = g_get_environ ();
  static const char *const pg[]
      = { "PGHOST",     "PGHOSTADDR", "PGPORT",    "PGUSER",
          "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGOPTIONS",
          "PGSSLMODE",  "PGPASSFILE", "PGAPPNAME", "PGCONNECT_TIMEOUT",
          "PAGER",      "CI",         "PGTZ",      "PGDATESTYLE" };
  for (guint i = 0; i < G_N_ELEMENTS (pg); i++)
    env = g_environ_unsetenv (env, pg[i]);
  env = g_environ_setenv (env, "PGPASSFILE", "/nonexistent", TRUE);
  for (guint i = 0; extra && extra[i]; i++)
    {
      g_auto (GStrv) kv = g_strsplit (extra[i], "=", 2);
      env = g_environ_setenv (env, kv[0], kv[1] ? kv[1] : "", TRUE);
    }
  return env;
}

/* Runs @argv with @input (nullable) on stdin and returns what it did. */
static Result *
run_argv (const char *const *argv, const char *const *extra_env,
          const char *input)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
      | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_auto (GStrv) env = child_environ (extra_env);
  g_subprocess_launcher_set_environ (launcher, env);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process
      = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);

  g_autoptr (GBytes) in
      = g_bytes_new (input ? input : "", input ? strlen (input) : 0);
  g_autoptr (GBytes) out = NULL;
  g_autoptr (GBytes) err = NULL;
  g_subprocess_communicate (process, in, NULL, &out, &err, &error);
  g_assert_no_error (error);

  Result *result = g_new0 (Result, 1);
  if (g_subprocess_get_if_exited (process))
    result->status = g_subprocess_get_exit_status (process);
  else
    result->status = 128 + g_subprocess_get_term_sig (process);
  gsize len;
  const char *data = g_bytes_get_data (out, &len);
  result->out = g_strndup (data ? data : "", len);
  result->out_len = len;
  data = g_bytes_get_data (err, &len);
  result->err = g_strndup (data ? data : "", len);
  return result;
}

/* argv for tusk on the trusted role, with the fixture's data directory,
 * then @args. */
static GPtrArray *
tusk_argv (Fixture *f, const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, tusk_path ());
  g_ptr_array_add (argv, g_strdup ("--data-dir"));
  g_ptr_array_add (argv, g_strdup (f->data_dir));
  g_ptr_array_add (argv, g_strdup ("-h"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGHOST")));
  g_ptr_array_add (argv, g_strdup ("-p"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGPORT")));
  g_ptr_array_add (argv, g_strdup ("-U"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST")));
  g_ptr_array_add (argv, g_strdup ("-d"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE")));
  for (guint i = 0; args && args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  return argv;
}

/* Runs tusk with the connection options and @args. */
static Result *
tusk (Fixture *f, const char *const *args, const char *input)
{
  g_autoptr (GPtrArray) argv = tusk_argv (f, args);
  return run_argv ((const char *const *)argv->pdata, NULL, input);
}

/* Runs tusk with --data-dir and @args only (no connection options). */
static Result *
tusk_bare (Fixture *f, const char *const *args, const char *const *env,
           const char *input)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, tusk_path ());
  g_ptr_array_add (argv, g_strdup ("--data-dir"));
  g_ptr_array_add (argv, g_strdup (f->data_dir));
  for (guint i = 0; args && args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  return run_argv ((const char *const *)argv->pdata, env, input);
}

static GPtrArray *
psql_argv (const char *const *args)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, g_strdup (PSQL));
  g_ptr_array_add (argv, g_strdup ("-X"));
  g_ptr_array_add (argv, g_strdup ("-h"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGHOST")));
  g_ptr_array_add (argv, g_strdup ("-p"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGPORT")));
  g_ptr_array_add (argv, g_strdup ("-U"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST")));
  g_ptr_array_add (argv, g_strdup ("-d"));
  g_ptr_array_add (argv, g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE")));
  g_ptr_array_add (argv, g_strdup ("-P"));
  g_ptr_array_add (argv, g_strdup ("pager=off"));
  for (guint i = 0; args && args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  return argv;
}

static Result *
psql (const char *const *args)
{
  g_autoptr (GPtrArray) argv = psql_argv (args);
  return run_argv ((const char *const *)argv->pdata, NULL, NULL);
}

/* Fails with both outputs shown when @tusk_out differs from @psql_out. */
static void
assert_same_output (const char *what, const Result *mine, const Result *theirs)
{
  if (mine->out_len == theirs->out_len
      && memcmp (mine->out, theirs->out, mine->out_len) == 0
      && mine->status == theirs->status)
    return;
  g_error ("%s: tusk printed (exit %d, stderr: %s)\n---\n%s---\n"
           "psql printed (exit %d, stderr: %s)\n---\n%s---",
           what, mine->status, mine->err, mine->out, theirs->status,
           theirs->err, theirs->out);
}

static void
assert_contains (const char *haystack, const char *needle)
{
  if (strstr (haystack, needle) == NULL)
    g_error ("expected \"%s\" in:\n%s", needle, haystack);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  f->data_dir = g_dir_make_tmp ("tusk-shell-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_remove_tree (f->data_dir);
  g_free (f->data_dir);
}

/* Runs every statement of @corpus (one -c each, in one session) with
 * @options through tusk and psql and fails unless both print the same
 * bytes and exit the same way. */
static void
compare_with_psql (Fixture *f, const char *const *options,
                   const char *const *corpus, guint n_corpus)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  for (guint i = 0; options[i]; i++)
    g_ptr_array_add (args, (gpointer)options[i]);
  for (guint i = 0; i < n_corpus; i++)
    {
      g_ptr_array_add (args, "-c");
      g_ptr_array_add (args, (gpointer)corpus[i]);
    }
  g_ptr_array_add (args, NULL);

  g_autoptr (Result) mine = tusk (f, (const char *const *)args->pdata, NULL);
  g_autoptr (Result) theirs = psql ((const char *const *)args->pdata);
  g_autofree char *what = g_strjoinv (" ", (char **)options);
  assert_same_output (what, mine, theirs);
  if (theirs->status != 0)
    g_error ("psql failed with %s: %s", what, theirs->err);
  g_assert_cmpint (mine->status, ==, 0);
}

/* ---- csv against psql --csv ------------------------------------------ */

static const char *const csv_corpus[] = {
  /* NULLs, empty strings, quotes, commas, line breaks, unicode */
  "SELECT NULL::text AS n, ''::text AS e, 'plain' AS p, 'a,b' AS comma, "
  "'say \"hi\"' AS quote, E'two\\nlines' AS lf, E'cr\\rhere' AS cr, "
  "E'crlf\\r\\nend' AS crlf, 'é ü 日本語 🐘' AS unicode, '\\.' AS dot, "
  "' padded ' AS spaces, E'tab\\there' AS tab",
  /* column names that need quoting */
  "SELECT 1 AS \"a,b\", 2 AS \"q\"\"x\", 3 AS \"new\nline\", 4 AS \"\"\"\"",
  /* numbers */
  "SELECT 1::int2 AS i2, -2::int4 AS i4, 9223372036854775807::int8 AS i8, "
  "1.50::numeric(5,2) AS num, 'NaN'::numeric AS num_nan, "
  "1.5e300::float8 AS f8, 'NaN'::float8 AS f8_nan, "
  "'Infinity'::float8 AS f8_inf, '-Infinity'::float4 AS f4_ninf, "
  "0.1::float4 AS f4, -0.0::float8 AS negzero, 12345.678::money AS money, "
  "42::oid AS oid",
  /* booleans, strings, binary, identifiers */
  "SELECT true AS t, false AS f, NULL::bool AS nb, 'x'::varchar(5) AS vc, "
  "'y'::char(3) AS ch, '\\xdeadbeef'::bytea AS ba, ''::bytea AS ba_empty, "
  "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, 'name'::name AS nm",
  /* dates and times */
  "SELECT '2024-02-29'::date AS d, '13:45:00.123'::time AS t, "
  "'13:45:00+02'::timetz AS ttz, '2024-02-29 13:45:00'::timestamp AS ts, "
  "'2024-02-29 13:45:00.5+02'::timestamptz AS tstz, "
  "'1 year 2 mons 3 days 04:05:06.7'::interval AS iv, "
  "'infinity'::timestamp AS inf, '-infinity'::date AS ninf",
  /* json */
  "SELECT '{\"a\": [1, 2, {\"b\": null}], \"c\": \"x,y\"}'::json AS j, "
  "'{\"b\":1,\"a\":\"x\\ny\"}'::jsonb AS jb, '\"str\"'::jsonb AS js, "
  "'null'::jsonb AS jnull, NULL::jsonb AS sqlnull, '[]'::json AS empty",
  /* arrays and ranges */
  "SELECT ARRAY[1, 2, NULL] AS ints, ARRAY['a,b', 'c\"d', NULL, ''] AS texts, "
  "'{{1,2},{3,4}}'::int[] AS matrix, ARRAY[]::text[] AS empty, "
  "int4range(1, 10) AS r, '[2024-01-01,2024-02-01)'::daterange AS dr, "
  "'empty'::numrange AS er, '(,5]'::int8range AS unbounded",
  /* enum and composite */
  "SELECT 'sad'::" SCHEMA ".mood AS mood, ROW(1, 'a,b', NULL)::" SCHEMA
  ".pair AS pair, ARRAY['happy', 'ok']::" SCHEMA ".mood[] AS moods, "
  "ROW(2, E'q\"\\n', 'x')::" SCHEMA ".pair AS tricky",
  /* several rows, NULLs among them, more than one batch */
  "SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE md5(i::text) END AS h, "
  "i % 3 = 0 AS third FROM generate_series(1, 2500) AS i",
  /* no rows */
  "SELECT 1 AS x WHERE false",
  /* several statements, commands among them */
  "CREATE TEMP TABLE shell_csv (a int, b text); "
  "INSERT INTO shell_csv VALUES (1, 'x'), (2, NULL) RETURNING a, b; "
  "UPDATE shell_csv SET b = 'y' WHERE a = 2; SELECT * FROM shell_csv "
  "ORDER BY a; DROP TABLE shell_csv",
};

static void
test_csv_matches_psql (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *csv[] = { "--csv", NULL };
  compare_with_psql (f, csv, csv_corpus, G_N_ELEMENTS (csv_corpus));

  /* -P null=… applies to csv as well, in both. */
  const char *null[] = { "--csv", "-P", "null=<null>", NULL };
  compare_with_psql (f, null, csv_corpus, 1);
}

/* ---- table, unaligned, expanded against psql -------------------------- */

static const char *const table_corpus[] = {
  "SELECT 1 AS a, 'hello'::text AS b, NULL AS c",
  "SELECT 'a' || chr(10) || 'bb' AS m, 2 AS n, E'x\\ty\\rz' AS t, "
  "E'one\\ntwo\\nthree' AS last",
  "SELECT i, i * 1.5 AS x, repeat('é', i) AS s, i % 2 = 0 AS even, "
  "CASE WHEN i % 3 = 0 THEN NULL ELSE -i END AS neg "
  "FROM generate_series(1, 12) AS i",
  "SELECT '日本語' AS wide, 'x' AS \"long column name\", 1.5::float8 AS f",
  "SELECT 1 AS \"two\nlines\", 'v' AS single",
  "SELECT 1 AS x WHERE false",
  "SELECT i, md5(i::text) AS h FROM generate_series(1, 2500) AS i",
  "CREATE TEMP TABLE shell_t (a int); "
  "INSERT INTO shell_t VALUES (1), (2) RETURNING a; "
  "UPDATE shell_t SET a = a + 1; SELECT * FROM shell_t; DROP TABLE shell_t",
  "SELECT 'sad'::" SCHEMA ".mood AS mood, '{\"a\": 1}'::jsonb AS j, "
  "ARRAY[1, NULL] AS arr, ROW(1, 'x', NULL)::" SCHEMA ".pair AS p",
};

static void
test_table_matches_psql (Fixture *f, gconstpointer data)
{
  (void)data;
  static const char *const option_sets[][4] = {
    { NULL },
    { "-x", NULL },
    { "-t", NULL },
    { "-x", "-t", NULL },
    { "-A", NULL },
    { "-A", "-t", NULL },
    { "-A", "-x", NULL },
    { "-P", "null=(null)", NULL },
    { "-A", "-F", ";", NULL },
  };
  for (guint o = 0; o < G_N_ELEMENTS (option_sets); o++)
    compare_with_psql (f, option_sets[o], table_corpus,
                       G_N_ELEMENTS (table_corpus));
}

/* ---- json, ndjson, markdown ------------------------------------------- */

static JsonNode *
parse_json (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  if (!json_parser_load_from_data (parser, text, -1, &error))
    g_error ("not JSON (%s):\n%s", error->message, text);
  return json_node_copy (json_parser_get_root (parser));
}

static const char json_query[]
    = "SELECT 1::int4 AS i, 9007199254740993::int8 AS big, 2.50::numeric AS "
      "num, 'NaN'::numeric AS num_nan, 'Infinity'::float8 AS inf, "
      "0.5::float4 AS half, true AS t, false AS f, NULL::int AS nothing, "
      "'{\"k\": [1, \"two\"]}'::jsonb AS doc, '\"s\"'::json AS js, "
      "E'quote\" back\\\\ nl\\n tab\\t bell\\x07 é 日本' AS text, "
      "'2024-02-29'::date AS d, ARRAY[1,2] AS arr";

static void
check_json_row (JsonObject *row)
{
  g_assert_cmpint (json_object_get_int_member (row, "i"), ==, 1);
  JsonNode *big = json_object_get_member (row, "big");
  g_assert_cmpint (json_node_get_value_type (big), ==, G_TYPE_INT64);
  g_assert_cmpint (json_node_get_int (big), ==, 9007199254740993);
  g_assert_cmpfloat (json_object_get_double_member (row, "num"), ==, 2.5);
  g_assert_cmpstr (json_object_get_string_member (row, "num_nan"), ==, "NaN");
  g_assert_cmpstr (json_object_get_string_member (row, "inf"), ==, "Infinity");
  g_assert_cmpfloat (json_object_get_double_member (row, "half"), ==, 0.5);
  g_assert_true (json_object_get_boolean_member (row, "t"));
  g_assert_false (json_object_get_boolean_member (row, "f"));
  g_assert_true (json_object_get_null_member (row, "nothing"));
  JsonObject *doc = json_object_get_object_member (row, "doc");
  g_assert_nonnull (doc);
  JsonArray *k = json_object_get_array_member (doc, "k");
  g_assert_cmpint (json_array_get_int_element (k, 0), ==, 1);
  g_assert_cmpstr (json_array_get_string_element (k, 1), ==, "two");
  g_assert_cmpstr (json_object_get_string_member (row, "js"), ==, "s");
  g_assert_cmpstr (json_object_get_string_member (row, "text"), ==,
                   "quote\" back\\ nl\n tab\t bell\x07 é 日本");
  g_assert_cmpstr (json_object_get_string_member (row, "d"), ==, "2024-02-29");
  g_assert_cmpstr (json_object_get_string_member (row, "arr"), ==, "{1,2}");
}

static void
test_json (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *args[] = { "--format", "json", "-c", json_query, NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_autoptr (JsonNode) root = parse_json (r->out);
  JsonArray *rows = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (rows), ==, 1);
  check_json_row (json_array_get_object_element (rows, 0));

  /* Many rows (several batches), and none. */
  const char *many[] = { "--format", "json", "-c",
                         "SELECT i FROM generate_series(1, 2345) AS i", NULL };
  g_autoptr (Result) m = tusk (f, many, NULL);
  g_assert_cmpint (m->status, ==, 0);
  g_autoptr (JsonNode) mroot = parse_json (m->out);
  JsonArray *mrows = json_node_get_array (mroot);
  g_assert_cmpuint (json_array_get_length (mrows), ==, 2345);
  g_assert_cmpint (json_object_get_int_member (
                       json_array_get_object_element (mrows, 2344), "i"),
                   ==, 2345);

  const char *none[]
      = { "--format", "json", "-c", "SELECT 1 AS x WHERE false", NULL };
  g_autoptr (Result) n = tusk (f, none, NULL);
  g_assert_cmpint (n->status, ==, 0);
  g_assert_cmpstr (n->out, ==, "[]\n");

  /* A command prints nothing on stdout in json. */
  const char *command[]
      = { "--format", "json", "-c", "SET search_path = public", NULL };
  g_autoptr (Result) c = tusk (f, command, NULL);
  g_assert_cmpint (c->status, ==, 0);
  g_assert_cmpstr (c->out, ==, "");
}

static void
test_ndjson (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *sql = g_strdup_printf ("%s UNION ALL %s", json_query,
                                          json_query); /* two identical rows */
  const char *args[] = { "--format", "ndjson", "-c", sql, NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_auto (GStrv) lines = g_strsplit (r->out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  g_assert_cmpstr (lines[2], ==, "");
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (JsonNode) row = parse_json (lines[i]);
      check_json_row (json_node_get_object (row));
    }
}

static void
test_markdown (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *args[]
      = { "--format", "markdown", "-c",
          "SELECT 1 AS n, 'a|b' AS pipe, E'two\\nlines' AS text, NULL AS z",
          NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==,
                   "| n | pipe | text | z |\n"
                   "|---:|---|---|---|\n"
                   "| 1 | a\\|b | two<br>lines |  |\n"
                   "\n");
}

/* ---- exit codes and errors ------------------------------------------- */

static void
test_exit_codes (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *ok[] = { "-c", "SELECT 1", NULL };
  g_autoptr (Result) r0 = tusk (f, ok, NULL);
  g_assert_cmpint (r0->status, ==, 0);

  const char *syntax[] = { "-c", "SELEC 1", NULL };
  g_autoptr (Result) r1 = tusk (f, syntax, NULL);
  g_assert_cmpint (r1->status, ==, 1);
  assert_contains (r1->err, "ERROR:  syntax error at or near \"SELEC\"");
  assert_contains (r1->err, "SQLSTATE: 42601");

  const char *table[] = { "-c", "SELECT * FROM no_such_table", NULL };
  g_autoptr (Result) r2 = tusk (f, table, NULL);
  g_assert_cmpint (r2->status, ==, 1);
  assert_contains (r2->err, "relation \"no_such_table\" does not exist");

  const char *bad_option[] = { "--no-such-option", NULL };
  g_autoptr (Result) r3 = tusk_bare (f, bad_option, NULL, NULL);
  g_assert_cmpint (r3->status, ==, 2);
  assert_contains (r3->err, "--no-such-option");
  assert_contains (r3->err, "Try \"tusk --help\"");

  const char *bad_format[] = { "--format", "xml", "-c", "SELECT 1", NULL };
  g_autoptr (Result) r4 = tusk_bare (f, bad_format, NULL, NULL);
  g_assert_cmpint (r4->status, ==, 2);
  assert_contains (r4->err, "xml");
  assert_contains (r4->err, "csv");

  const char *missing_value[] = { "-c", NULL };
  g_autoptr (Result) r5 = tusk_bare (f, missing_value, NULL, NULL);
  g_assert_cmpint (r5->status, ==, 2);
  assert_contains (r5->err, "-c");

  /* Nothing listens on port 1. */
  const char *unreachable[]
      = { "-h", "127.0.0.1", "-p", "1", "-c", "SELECT 1", NULL };
  g_autoptr (Result) r6 = tusk_bare (f, unreachable, NULL, NULL);
  g_assert_cmpint (r6->status, ==, 2);
  assert_contains (r6->err, "connection error");
  assert_contains (r6->err, "HINT:");

  const char *bad_port[] = { "-p", "http", "-c", "SELECT 1", NULL };
  g_autoptr (Result) r7 = tusk_bare (f, bad_port, NULL, NULL);
  g_assert_cmpint (r7->status, ==, 2);
  assert_contains (r7->err, "-p");

  const char *version[] = { "--version", NULL };
  g_autoptr (Result) r8 = tusk_bare (f, version, NULL, NULL);
  g_assert_cmpint (r8->status, ==, 0);
  g_assert_true (g_str_has_prefix (r8->out, "tusk " TUSK_VERSION_STRING));

  const char *help[] = { "--help", NULL };
  g_autoptr (Result) r9 = tusk_bare (f, help, NULL, NULL);
  g_assert_cmpint (r9->status, ==, 0);
  assert_contains (r9->out, "--format");
}

/* tusk_pw needs a password (scram-sha-256). */
static void
test_passwords (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *user = tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD");
  const char *args[] = { "-h", tusk_test_env ("TUSK_TEST_PGHOST"),
                         "-p", tusk_test_env ("TUSK_TEST_PGPORT"),
                         "-U", user,
                         "-d", tusk_test_env ("TUSK_TEST_PGDATABASE"),
                         "-c", "SELECT current_user",
                         NULL };

  g_autofree char *good = g_strdup_printf (
      "PGPASSWORD=%s", tusk_test_env ("TUSK_TEST_PGPASSWORD"));
  const char *good_env[] = { good, NULL };
  g_autoptr (Result) ok = tusk_bare (f, args, good_env, NULL);
  g_assert_cmpint (ok->status, ==, 0);
  assert_contains (ok->out, user);

  const char *bad_env[] = { "PGPASSWORD=wrong-password", NULL };
  g_autoptr (Result) bad = tusk_bare (f, args, bad_env, NULL);
  g_assert_cmpint (bad->status, ==, 2);
  assert_contains (bad->err, "authentication error");
  assert_contains (bad->err, "password authentication failed");

  /* No password anywhere, and no terminal to ask at. */
  g_autoptr (Result) none = tusk_bare (f, args, NULL, NULL);
  g_assert_cmpint (none->status, ==, 2);
  assert_contains (none->err, "no password supplied");
  assert_contains (none->err, "PGPASSWORD");
  assert_contains (none->err, "--password-stdin");

  /* A URI carries its own password. */
  g_autofree char *uri = g_strdup_printf (
      "postgresql://%s:%s@%s:%s/%s", user,
      tusk_test_env ("TUSK_TEST_PGPASSWORD"),
      tusk_test_env ("TUSK_TEST_PGHOST"), tusk_test_env ("TUSK_TEST_PGPORT"),
      tusk_test_env ("TUSK_TEST_PGDATABASE"));
  const char *uri_args[] = { uri, "-c", "SELECT current_user", NULL };
  g_autoptr (Result) by_uri = tusk_bare (f, uri_args, NULL, NULL);
  g_assert_cmpint (by_uri->status, ==, 0);
  assert_contains (by_uri->out, user);
}

static void
test_error_caret (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *args[]
      = { "-c", "SELECT 1,\n  no_such_column FROM pg_class", NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_autoptr (Result) p = psql (args);
  g_assert_cmpint (r->status, ==, 1);
  /* psql's first three lines, byte for byte. */
  assert_contains (r->err, "ERROR:  column \"no_such_column\" does not exist\n"
                           "LINE 2:   no_such_column FROM pg_class\n"
                           "          ^\n");
  assert_contains (p->err, "LINE 2:   no_such_column FROM pg_class\n"
                           "          ^\n");
  assert_contains (r->err, "SQLSTATE: 42703");

  /* A long line is cut around the caret, as libpq cuts it. */
  g_autofree char *pad = g_strnfill (80, 'x');
  g_autofree char *long_sql = g_strdup_printf (
      "SELECT '%s' AS a, no_such_column, '%s' AS b", pad, pad);
  const char *long_args[] = { "-c", long_sql, NULL };
  g_autoptr (Result) rl = tusk (f, long_args, NULL);
  g_autoptr (Result) pl = psql (long_args);
  const char *mine = strstr (rl->err, "LINE 1:");
  const char *theirs = strstr (pl->err, "LINE 1:");
  g_assert_nonnull (mine);
  g_assert_nonnull (theirs);
  g_autofree char *theirs_excerpt
      = g_strndup (theirs, strstr (theirs, "^\n") + 2 - theirs);
  assert_contains (mine, theirs_excerpt);

  /* With --format json the error is one JSON object on stderr. */
  const char *json_args[]
      = { "--format", "json", "-c", "SELECT 1,\n  no_such_column FROM pg_class",
          NULL };
  g_autoptr (Result) j = tusk (f, json_args, NULL);
  g_assert_cmpint (j->status, ==, 1);
  g_autoptr (JsonNode) node = parse_json (j->err);
  JsonObject *e = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (e, "category"), ==, "query");
  g_assert_cmpstr (json_object_get_string_member (e, "message"), ==,
                   "column \"no_such_column\" does not exist");
  g_assert_cmpstr (json_object_get_string_member (e, "sqlstate"), ==, "42703");
  g_assert_cmpint (json_object_get_int_member (e, "position"), ==, 13);
  g_assert_cmpint (json_object_get_int_member (e, "line"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (e, "column"), ==, 3);
  g_assert_true (json_object_has_member (e, "detail"));
  g_assert_nonnull (json_object_get_string_member (e, "hint"));

  /* Connection errors too. */
  const char *conn_args[] = { "--format", "json", "-h",       "127.0.0.1", "-p",
                              "1",        "-c",   "SELECT 1", NULL };
  g_autoptr (Result) c = tusk_bare (f, conn_args, NULL, NULL);
  g_assert_cmpint (c->status, ==, 2);
  g_autoptr (JsonNode) cnode = parse_json (c->err);
  g_assert_cmpstr (
      json_object_get_string_member (json_node_get_object (cnode), "category"),
      ==, "connection");
}

/* ---- scripts ---------------------------------------------------------- */

static char *
write_script (Fixture *f, const char *name, const char *text)
{
  char *path = g_build_filename (f->data_dir, name, NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static const char script_text[] = "-- a script\n"
                                  "CREATE TEMP TABLE s (a int);\n"
                                  "BEGIN;\n"
                                  "INSERT INTO s VALUES (1);\n"
                                  "INSERT INTO s\n"
                                  "  VALUES (2);\n"
                                  "COMMIT;\n"
                                  "SET search_path = pg_temp, public;\n"
                                  "SELECT count(*) AS n FROM s;\n"
                                  "SELECT 'before' AS marker;\n"
                                  "SELECT *\n"
                                  "  FROM no_such_table\n"
                                  "  WHERE false;\n"
                                  "SELECT 'after' AS marker;\n";

static void
test_script_file (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *path = write_script (f, "s.sql", script_text);
  const char *args[] = { "-f", path, NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_assert_cmpint (r->status, ==, 1);
  /* The transaction and the temp table carried across statements. */
  assert_contains (r->out, " n \n---\n 2\n(1 row)\n");
  assert_contains (r->out, "before");
  g_assert_null (strstr (r->out, "after"));
  /* psql's form: the script and the line where the statement ends. */
  g_autofree char *expected = g_strdup_printf (
      "tusk:%s:13: ERROR:  relation \"no_such_table\" does not exist\n"
      "LINE 2:   FROM no_such_table\n"
      "               ^\n",
      path);
  assert_contains (r->err, expected);

  /* The same from stdin, with -f - and without. */
  const char *dash[] = { "-f", "-", NULL };
  g_autoptr (Result) s = tusk (f, dash, script_text);
  g_assert_cmpint (s->status, ==, 1);
  assert_contains (s->err, "tusk:<stdin>:13: ERROR:  relation");
  g_assert_null (strstr (s->out, "after"));
  g_autoptr (Result) piped = tusk (f, NULL, script_text);
  g_assert_cmpint (piped->status, ==, 1);
  assert_contains (piped->out, " n \n---\n 2\n");
  assert_contains (piped->err, "tusk:<stdin>:13: ERROR:");

  /* With --format json the error carries the script's coordinates. */
  const char *json_args[] = { "--format", "json", "-f", path, NULL };
  g_autoptr (Result) j = tusk (f, json_args, NULL);
  g_assert_cmpint (j->status, ==, 1);
  g_autoptr (JsonNode) node = parse_json (j->err);
  JsonObject *e = json_node_get_object (node);
  g_assert_cmpint (json_object_get_int_member (e, "line"), ==, 12);
  g_assert_cmpint (json_object_get_int_member (e, "column"), ==, 8);
  g_assert_cmpstr (json_object_get_string_member (e, "source"), ==, path);

  /* A script that succeeds, and a missing one. */
  g_autofree char *good
      = write_script (f, "good.sql", "SELECT 1 AS one;\nSELECT 2 AS two\n");
  const char *good_args[] = { "-f", good, NULL };
  g_autoptr (Result) g = tusk (f, good_args, NULL);
  g_assert_cmpint (g->status, ==, 0);
  assert_contains (g->out, " two \n-----\n   2\n(1 row)\n");
  const char *missing[] = { "-f", "/nonexistent/x.sql", NULL };
  g_autoptr (Result) m = tusk (f, missing, NULL);
  g_assert_cmpint (m->status, ==, 1);
  assert_contains (m->err, "/nonexistent/x.sql");
}

static void
test_repeated_commands (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *script = write_script (f, "mid.sql", "SELECT 'file';\n");
  const char *args[] = { "-A", "-t",
                         "-c", "CREATE TEMP TABLE c (a int)",
                         "-c", "INSERT INTO c VALUES (41)",
                         "-f", script,
                         "-c", "SELECT a + 1 FROM c",
                         NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==, "CREATE TABLE\nINSERT 0 1\nfile\n42\n");

  /* The first failure stops the rest. */
  const char *failing[]
      = { "-c", "SELECT 1/0", "-c", "SELECT 'not run'", NULL };
  g_autoptr (Result) s = tusk (f, failing, NULL);
  g_assert_cmpint (s->status, ==, 1);
  assert_contains (s->err, "division by zero");
  g_assert_null (strstr (s->out, "not run"));
}

static void
test_notices (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *args[] = { "-c",
                         "DO $$BEGIN RAISE NOTICE 'hello %', 42; "
                         "RAISE WARNING 'careful' USING HINT = 'be so'; END$$",
                         NULL };
  g_autoptr (Result) r = tusk (f, args, NULL);
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->err, "NOTICE:  hello 42\n");
  assert_contains (r->err, "WARNING:  careful\nHINT:  be so\n");
  g_assert_cmpstr (r->out, ==, "DO\n");
}

/* ---- read-only -------------------------------------------------------- */

static void
test_read_only (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *uri = g_strdup_printf (
      "postgresql://%s@%s:%s/%s?options=-c%%20default_transaction_read_"
      "only%%3Don",
      tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
      tusk_test_env ("TUSK_TEST_PGHOST"), tusk_test_env ("TUSK_TEST_PGPORT"),
      tusk_test_env ("TUSK_TEST_PGDATABASE"));

  const char *read[]
      = { uri, "-A", "-t", "-c", "SHOW transaction_read_only", NULL };
  g_autoptr (Result) r = tusk_bare (f, read, NULL, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==, "on\n");

  const char *write[] = { uri, "-c", "CREATE TABLE ro_refused (a int)", NULL };
  g_autoptr (Result) w = tusk_bare (f, write, NULL, NULL);
  g_assert_cmpint (w->status, ==, 1);
  assert_contains (w->err, "read-only transaction");
  assert_contains (w->err, "read-only");
  assert_contains (w->err, "SQLSTATE: 25006");

  const char *lift[] = { uri, "-c", "BEGIN READ WRITE", NULL };
  g_autoptr (Result) l = tusk_bare (f, lift, NULL, NULL);
  g_assert_cmpint (l->status, ==, 1);
  assert_contains (l->err, "read-only");
  const char *set[]
      = { uri, "-c", "SET default_transaction_read_only = off", NULL };
  g_autoptr (Result) s = tusk_bare (f, set, NULL, NULL);
  g_assert_cmpint (s->status, ==, 1);
  assert_contains (s->err, "read-only");
}

/* ---- local storage, opened when needed ---------------------------------- */

/* A connection given on the command line never opens the local storage
 * (no tusk.db appears), so it works even when the storage refuses to open;
 * a saved connection's name needs it, and then the refusal is the error,
 * with the file left as it was. */
static void
test_storage_when_needed (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *db = g_build_filename (f->data_dir, "tusk.db", NULL);
  const char *args[] = { "-A", "-t", "-c", "SELECT 1", NULL };
  g_autoptr (Result) fresh = tusk (f, args, NULL);
  g_assert_cmpint (fresh->status, ==, 0);
  g_assert_cmpstr (fresh->out, ==, "1\n");
  g_assert_false (g_file_test (db, G_FILE_TEST_EXISTS));

  /* A saved connection, then a migration step that no longer matches. */
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("refused");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  g_assert_true (
      tusk_state_save_connection_sync (state, config, NULL, NULL, &error));
  g_assert_no_error (error);
  tusk_state_free (state);
  sqlite3 *raw = NULL;
  g_assert_cmpint (sqlite3_open (db, &raw), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (raw,
                                 "UPDATE migrations SET migration = migration "
                                 "|| '-- edited' WHERE domain = 'tusk' AND "
                                 "step = 1",
                                 NULL, NULL, NULL),
                   ==, SQLITE_OK);
  sqlite3_close (raw);
  g_autofree char *before = NULL;
  gsize before_len = 0;
  g_assert_true (g_file_get_contents (db, &before, &before_len, NULL));

  g_autoptr (Result) adhoc = tusk (f, args, NULL);
  g_assert_cmpint (adhoc->status, ==, 0);
  g_assert_cmpstr (adhoc->out, ==, "1\n");

  const char *by_name[] = { "refused", "-c", "SELECT 1", NULL };
  g_autoptr (Result) saved = tusk_bare (f, by_name, NULL, NULL);
  g_assert_cmpint (saved->status, ==, 2);
  assert_contains (saved->err, "step 1");
  g_assert_null (strstr (saved->out, "1"));

  g_autofree char *after = NULL;
  gsize after_len = 0;
  g_assert_true (g_file_get_contents (db, &after, &after_len, NULL));
  g_assert_cmpmem (before, before_len, after, after_len);
}

/* A TARGET word that is no saved connection's name is a database, as in
 * psql, and such a run never touches the keychain (its debug log has no
 * keychain line). */
static void
test_database_word (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *args[] = { tusk_test_env ("TUSK_TEST_PGDATABASE"),
                         "-h",
                         tusk_test_env ("TUSK_TEST_PGHOST"),
                         "-p",
                         tusk_test_env ("TUSK_TEST_PGPORT"),
                         "-U",
                         tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
                         "-A",
                         "-t",
                         "-c",
                         "SELECT current_database ()",
                         NULL };
  const char *env[] = { "TUSK_LOG=debug", NULL };
  g_autoptr (Result) r = tusk_bare (f, args, env, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_autofree char *expected
      = g_strdup_printf ("%s\n", tusk_test_env ("TUSK_TEST_PGDATABASE"));
  g_assert_cmpstr (r->out, ==, expected);

  g_autofree char *logs = g_build_filename (f->data_dir, "logs", NULL);
  g_autoptr (GDir) dir = g_dir_open (logs, 0, NULL);
  g_assert_nonnull (dir);
  g_autoptr (GString) all = g_string_new (NULL);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (logs, name, NULL);
      g_autofree char *text = NULL;
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      g_string_append (all, text);
    }
  assert_contains (all->str, "shell connected");
  g_assert_null (strstr (all->str, "tusk-credentials"));
  g_assert_null (strstr (all->str, "keychain"));
}

/* ---- a saved connection ----------------------------------------------- */

static void
test_saved_connection (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_env ("TUSK_TEST_KEYRING");
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;

  /* Saved through the library, its password in the keychain. */
  {
    TuskState *state = tusk_state_new (f->data_dir, &error);
    g_assert_no_error (error);
    g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
    config->name = g_strdup ("Shelltest");
    config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
    config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
    config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
    config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
    id = g_strdup (config->id);
    g_assert_true (tusk_state_save_connection_sync (
        state, config, tusk_test_env ("TUSK_TEST_PGPASSWORD"), NULL, &error));
    g_assert_no_error (error);
    tusk_state_free (state);
  }

  const char *args[]
      = { "shelltest",        "-A", "-t", "-c", "SELECT current_user", "-c",
          "SELECT 'history'", NULL };
  g_autoptr (Result) r = tusk_bare (f, args, NULL, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==, "tusk_pw\nhistory\n");

  /* Both statements went to the history of the saved connection. */
  TuskState *state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  gint64 count
      = tusk_history_repo_count (tusk_test_open_storage (state), id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (count, ==, 2);
  tusk_state_free (state);

  /* -d on a saved connection overrides its database. */
  const char *other[] = { "Shelltest",
                          "-d",
                          "postgres",
                          "-A",
                          "-t",
                          "-c",
                          "SELECT current_database()",
                          NULL };
  g_autofree char *good = g_strdup_printf (
      "PGPASSWORD=%s", tusk_test_env ("TUSK_TEST_PGPASSWORD"));
  const char *env[] = { good, NULL };
  g_autoptr (Result) o = tusk_bare (f, other, env, NULL);
  g_assert_cmpint (o->status, ==, 0);
  g_assert_cmpstr (o->out, ==, "postgres\n");
}

/* ---- Ctrl-C ----------------------------------------------------------- */

static gboolean
sleep_is_running (void)
{
  const char *args[] = { "-A", "-t", "-c",
                         "SELECT count(*) FROM pg_stat_activity WHERE query "
                         "= 'SELECT pg_sleep(30)' AND state = 'active'",
                         NULL };
  g_autoptr (Result) r = psql (args);
  return g_str_equal (r->out, "1\n");
}

static void
test_sigint_cancels (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *args[]
      = { "-c", "SELECT pg_sleep(30)", "-c", "SELECT 'next'", NULL };
  g_autoptr (GPtrArray) argv = tusk_argv (f, args);
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_auto (GStrv) env = child_environ (NULL);
  g_subprocess_launcher_set_environ (launcher, env);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = g_subprocess_launcher_spawnv (
      launcher, (const char *const *)argv->pdata, &error);
  g_assert_no_error (error);

  /* Wait (up to 20 s) until the server runs the statement. */
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (!sleep_is_running ())
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("the statement never started");
      g_usleep (50 * 1000);
    }
  g_subprocess_send_signal (process, SIGINT);

  g_autofree char *out = NULL, *err = NULL;
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 1);
  assert_contains (err, "ERROR:  canceling statement due to user request");
  g_assert_null (strstr (out, "next"));
  g_assert_false (sleep_is_running ());
}

/* ---- at a terminal ---------------------------------------------------- */

/* Saves connection @name for the password role, without its password. */
static void
save_password_connection (Fixture *f, const char *name)
{
  g_autoptr (GError) error = NULL;
  TuskState *state = tusk_state_new (f->data_dir, &error);
  g_assert_no_error (error);
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup (name);
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  g_assert_true (
      tusk_state_save_connection_sync (state, config, NULL, NULL, &error));
  g_assert_no_error (error);
  tusk_state_free (state);
}

static void
test_password_prompt (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_env ("TUSK_TEST_KEYRING");
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  save_password_connection (f, "prompted");

  g_autofree char *tusk = tusk_path ();
  const char *argv[]
      = { tusk, "--data-dir", f->data_dir,           "prompted", "-A",
          "-t", "-c",         "SELECT current_user", NULL };
  TuskTestPty pty;
  g_auto (GStrv) env = child_environ (NULL);
  tusk_test_pty_spawn (&pty, argv, env, 8, 80);
  tusk_test_pty_expect (&pty, "Password for user tusk_pw: ");
  g_autofree char *answer = g_strdup_printf ("%s\n", password);
  tusk_test_pty_send (&pty, answer);
  tusk_test_pty_expect (
      &pty, "Save the password of prompted in the keychain? [y/N] ");
  tusk_test_pty_send (&pty, "y\n");
  g_assert_cmpint (tusk_test_pty_finish (&pty), ==, 0);
  assert_contains (pty.seen->str, "Password saved in the keychain");
  assert_contains (pty.seen->str, "tusk_pw\r\n");
  /* Never echoed. */
  g_assert_null (strstr (pty.seen->str, password));
  tusk_test_pty_clear (&pty);

  /* From now on the keychain has it: no terminal needed. */
  const char *again[] = { "prompted", "-A", "-t", "-c", "SELECT 42", NULL };
  g_autoptr (Result) r = tusk_bare (f, again, NULL, NULL);
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==, "42\n");
}

static void
test_pager_and_indicator (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GPtrArray) argv = tusk_argv (
      f, (const char *const[]){ "-c", "SELECT generate_series(1, 50) AS n",
                                "-c", "SELECT 'short' AS s", "-c",
                                "SELECT pg_sleep(2.5) AS slept", NULL });
  const char *extra[] = { "PAGER=sed s/^/paged:/", NULL };
  g_auto (GStrv) env = child_environ (extra);
  TuskTestPty pty;
  tusk_test_pty_spawn (&pty, (const char *const *)argv->pdata, env, 8, 80);
  g_assert_cmpint (tusk_test_pty_finish (&pty), ==, 0);
  /* Taller than the terminal: through the pager. */
  assert_contains (pty.seen->str, "paged: n  \r\npaged:----\r\n");
  assert_contains (pty.seen->str, "paged: 50\r\n");
  assert_contains (pty.seen->str, "paged:(50 rows)");
  /* Short: straight to the terminal. */
  assert_contains (pty.seen->str, "\r\n   s   \r\n");
  g_assert_null (strstr (pty.seen->str, "paged:   s"));
  /* The slow statement showed the elapsed time, then erased it. */
  assert_contains (pty.seen->str, "Running… 1.");
  assert_contains (pty.seen->str, "\r\033[K");
  tusk_test_pty_clear (&pty);
}

/* ---- a million rows --------------------------------------------------- */

/* The ceiling on the peak RSS of a 1,000,000-row export (about 100 MB of
 * CSV): 64 MiB, or twice that under AddressSanitizer, whose shadow memory
 * and redzones inflate every allocation (a plain build stays near 20
 * MiB). */
#ifdef __SANITIZE_ADDRESS__
#define MAX_RSS_KIB (128 * 1024)
#else
#define MAX_RSS_KIB (64 * 1024)
#endif

/* Runs @argv with stdout into @path (stderr too, to @path.err) and returns
 * its exit code; @usage gets the child's own resource usage. */
static int
spawn_to_file (const char *const *argv, const char *path, struct rusage *usage)
{
  g_auto (GStrv) env = child_environ (NULL);
#ifdef __SANITIZE_ADDRESS__
  /* AddressSanitizer keeps freed memory in quarantine (256 MiB by
   * default), which would hide what the program itself keeps. */
  const char *asan = g_environ_getenv (env, "ASAN_OPTIONS");
  g_autofree char *options = g_strdup_printf (
      "%s%squarantine_size_mb=1:thread_local_quarantine_size_kb=64",
      asan ? asan : "", asan && *asan ? ":" : "");
  env = g_environ_setenv (env, "ASAN_OPTIONS", options, TRUE);
#endif
  g_autofree char *err_path = g_strdup_printf ("%s.err", path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_addopen (&actions, STDIN_FILENO, "/dev/null",
                                    O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&actions, STDOUT_FILENO, path,
                                    O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen (&actions, STDERR_FILENO, err_path,
                                    O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  int rc
      = posix_spawn (&pid, argv[0], &actions, NULL, (char *const *)argv, env);
  posix_spawn_file_actions_destroy (&actions);
  g_assert_cmpint (rc, ==, 0);

  int status;
  pid_t got;
  do
    got = wait4 (pid, &status, 0, usage);
  while (got < 0 && errno == EINTR);
  g_assert_cmpint (got, ==, pid);
  g_assert_true (WIFEXITED (status));
  if (WEXITSTATUS (status) != 0)
    {
      g_autofree char *err = NULL;
      g_file_get_contents (err_path, &err, NULL, NULL);
      g_printerr ("%s exited %d: %s\n", argv[0], WEXITSTATUS (status), err);
    }
  return WEXITSTATUS (status);
}

static void
test_million_rows_csv (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *sql = "SELECT i, md5(i::text) AS h, CASE WHEN i % 10 = 0 THEN "
                    "NULL ELSE 'v,' || i END AS v, i % 2 = 0 AS even "
                    "FROM generate_series(1, 1000000) AS i";
  const char *args[] = { "--csv", "-c", sql, NULL };
  g_autoptr (GPtrArray) mine_argv = tusk_argv (f, args);
  g_autoptr (GPtrArray) psql_args = psql_argv (args);
  g_autofree char *mine_path = g_build_filename (f->data_dir, "mine.csv", NULL);
  g_autofree char *psql_path = g_build_filename (f->data_dir, "psql.csv", NULL);

  struct rusage usage;
  g_assert_cmpint (
      spawn_to_file ((const char *const *)mine_argv->pdata, mine_path, &usage),
      ==, 0);
  /* ru_maxrss is in KiB: the rows streamed through in bounded memory. */
  g_test_message ("tusk's peak RSS for 1,000,000 rows: %ld KiB",
                  usage.ru_maxrss);
  g_assert_cmpint (usage.ru_maxrss, <, MAX_RSS_KIB);

  struct rusage psql_usage;
  g_assert_cmpint (spawn_to_file ((const char *const *)psql_args->pdata,
                                  psql_path, &psql_usage),
                   ==, 0);

  g_autofree char *mine = NULL, *theirs = NULL;
  gsize mine_len, theirs_len;
  g_assert_true (g_file_get_contents (mine_path, &mine, &mine_len, NULL));
  g_assert_true (g_file_get_contents (psql_path, &theirs, &theirs_len, NULL));
  g_assert_cmpuint (mine_len, ==, theirs_len);
  g_assert_true (memcmp (mine, theirs, mine_len) == 0);
  g_assert_true (g_str_has_prefix (mine, "i,h,v,even\n1,"));
}

/* ---- main ------------------------------------------------------------- */

/* Creates the corpus's types once for the whole run. */
static void
create_types (void)
{
  const char *args[]
      = { "-v",
          "ON_ERROR_STOP=1",
          "-q",
          "-c",
          "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE; CREATE SCHEMA " SCHEMA
          "; CREATE TYPE " SCHEMA ".mood AS ENUM ('sad', 'ok', 'happy'); "
          "CREATE TYPE " SCHEMA ".pair AS (a int, b text, c text)",
          NULL };
  g_autoptr (Result) r = psql (args);
  if (r->status != 0)
    g_error ("could not create the test types: %s", r->err);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_log_set_console_level (TUSK_LOG_WARN);
  create_types ();

#define ADD(path, func)                                                        \
  g_test_add ("/tusk/shell/" path, Fixture, NULL, fixture_set_up, func,        \
              fixture_tear_down)
  ADD ("csv-matches-psql", test_csv_matches_psql);
  ADD ("table-matches-psql", test_table_matches_psql);
  ADD ("json", test_json);
  ADD ("ndjson", test_ndjson);
  ADD ("markdown", test_markdown);
  ADD ("exit-codes", test_exit_codes);
  ADD ("passwords", test_passwords);
  ADD ("error-caret", test_error_caret);
  ADD ("script-file", test_script_file);
  ADD ("repeated-commands", test_repeated_commands);
  ADD ("notices", test_notices);
  ADD ("read-only", test_read_only);
  ADD ("storage-when-needed", test_storage_when_needed);
  ADD ("database-word", test_database_word);
  ADD ("saved-connection", test_saved_connection);
  ADD ("sigint-cancels", test_sigint_cancels);
  ADD ("password-prompt", test_password_prompt);
  ADD ("pager-and-indicator", test_pager_and_indicator);
  ADD ("million-rows-csv", test_million_rows_csv);
#undef ADD
  return g_test_run ();
}
