/* test-complete.c: the shell's tab completion (shell/tusk-complete.c) on a
 * snapshot loaded from the real test server: each context (statement start,
 * FROM, JOIN, alias., the SELECT list, WHERE, INSERT INTO, UPDATE … SET,
 * DROP …), key word case, backslash commands, quoting, the 1,000 cap and
 * completion without a snapshot.
 *
 * The catalog lives in a database of its own, created by main() and dropped
 * at the end. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "tusk.h"
#include "tusk-complete.h"
#include "tusk-test.h"

static char *test_db;
static TuskSchemaSnapshot *snapshot; /* loaded once by main() */

static const char fixture_sql[]
    = "CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL,"
      " born date);"
      "CREATE TABLE books (id serial PRIMARY KEY, title text NOT NULL,"
      " author_id integer REFERENCES authors, price numeric(8,2),"
      " \"order\" integer, published date);"
      "CREATE TABLE bookings (id integer, booked_at timestamptz);"
      "CREATE VIEW book_titles AS SELECT id, title FROM books;"
      "CREATE INDEX books_title_idx ON books (title);"
      "CREATE SEQUENCE ticket_seq;"
      "CREATE FUNCTION book_count() RETURNS bigint LANGUAGE sql"
      " AS 'SELECT count(*) FROM books';"
      "CREATE SCHEMA shop;"
      "CREATE TABLE shop.orders (id integer, total numeric, placed_on date);"
      "CREATE TABLE shop.\"MixedCase\" (\"Value\" integer, plain integer);"
      "CREATE TYPE shop.mood AS ENUM ('sad', 'happy');"
      "CREATE TABLE wide ();"
      "DO $$ BEGIN FOR i IN 1..1200 LOOP"
      " EXECUTE format('ALTER TABLE wide ADD COLUMN c%s integer',"
      " lpad(i::text, 4, '0'));"
      " END LOOP; END $$;";

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

static TuskSchemaSnapshot *
load_snapshot (void)
{
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup ("complete test");
  config->host = g_strdup (tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (test_db);
  config->username = g_strdup (tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  TuskSchemaCache *cache = tusk_schema_cache_new (pool);
  TuskSchemaSnapshot *s = tusk_schema_cache_load_sync (cache, NULL, &error);
  g_assert_no_error (error);
  tusk_schema_cache_unref (cache);
  tusk_pool_unref (pool);
  return s;
}

/* ---- helpers ------------------------------------------------------------ */

/* Completes @text at the '|' in it (or at its end) and returns the
 * candidates; *@word_start (nullable) gets the word's start. */
static char **
complete_at (TuskSchemaSnapshot *snap, const char *text, gsize *word_start)
{
  const char *bar = strchr (text, '|');
  g_autofree char *buffer = NULL;
  gsize cursor;
  if (bar != NULL)
    {
      buffer = g_strdup_printf ("%.*s%s", (int)(bar - text), text, bar + 1);
      cursor = (gsize)(bar - text);
    }
  else
    {
      buffer = g_strdup (text);
      cursor = strlen (text);
    }
  gsize start = G_MAXSIZE;
  char **out = tusk_complete (snap, buffer, cursor, &start);
  g_assert_nonnull (out);
  g_assert_cmpuint (start, <=, cursor);
  if (word_start != NULL)
    *word_start = start;
  return out;
}

static char *
describe (char **cands)
{
  g_autofree char *joined = g_strjoinv (" ", cands);
  return g_strdup_printf ("[%s]", joined);
}

/* Asserts that completing @text gives exactly the NULL-terminated list
 * that follows, in order. */
static void
check_exact (const char *text, ...)
{
  g_auto (GStrv) got = complete_at (snapshot, text, NULL);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  va_list ap;
  va_start (ap, text);
  for (const char *s = va_arg (ap, const char *); s != NULL;
       s = va_arg (ap, const char *))
    g_strv_builder_add (b, s);
  va_end (ap);
  g_auto (GStrv) want = g_strv_builder_end (b);
  if (!g_strv_equal ((const char *const *)got, (const char *const *)want))
    {
      g_autofree char *g = describe (got);
      g_autofree char *w = describe (want);
      g_error ("completing \"%s\": got %s, want %s", text, g, w);
    }
}

/* Asserts that completing @text offers every one of the NULL-terminated
 * strings that follow. */
static void
check_has (const char *text, ...)
{
  g_auto (GStrv) got = complete_at (snapshot, text, NULL);
  va_list ap;
  va_start (ap, text);
  for (const char *s = va_arg (ap, const char *); s != NULL;
       s = va_arg (ap, const char *))
    if (!g_strv_contains ((const char *const *)got, s))
      {
        g_autofree char *g = describe (got);
        g_error ("completing \"%s\": %s missing from %s", text, s, g);
      }
  va_end (ap);
}

/* Asserts that completing @text offers none of the strings that follow. */
static void
check_lacks (const char *text, ...)
{
  g_auto (GStrv) got = complete_at (snapshot, text, NULL);
  va_list ap;
  va_start (ap, text);
  for (const char *s = va_arg (ap, const char *); s != NULL;
       s = va_arg (ap, const char *))
    if (g_strv_contains ((const char *const *)got, s))
      {
        g_autofree char *g = describe (got);
        g_error ("completing \"%s\": %s should not be in %s", text, s, g);
      }
  va_end (ap);
}

/* ---- cases -------------------------------------------------------------- */

static void
test_keywords (void)
{
  check_exact ("SEL", "SELECT", NULL);
  check_exact ("sel", "select", NULL);
  check_has ("", "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", NULL);
  check_exact ("select 1; ins", "insert", NULL);
  check_exact ("INSERT ", "INTO", NULL);
  check_exact ("DELETE ", "FROM", NULL);
  check_exact ("select * from books order ", "by", NULL);
  check_exact ("SELECT * FROM books WH", "WHERE", NULL);
  check_exact ("select * from books wh", "where", NULL);
  check_has ("select * from books b ", "where", "join", "left join", "order by",
             NULL);
  check_has ("SELECT id ", "FROM", "AS", NULL);
  check_exact ("SELECT * FR", "FROM", NULL);
  check_has ("SELECT * FROM books WHERE price IS ", "NULL", "NOT NULL", NULL);
  check_has ("DROP ", "TABLE", "VIEW", "INDEX", NULL);
  /* A new name: nothing to offer. */
  check_exact ("CREATE TABLE ", NULL);
  check_exact ("SELECT title AS ", NULL);
}

static void
test_from (void)
{
  gsize start = 0;
  g_auto (GStrv) got = complete_at (snapshot, "SELECT * FROM bo", &start);
  g_assert_cmpuint (start, ==, strlen ("SELECT * FROM "));
  g_autofree char *d = describe (got);
  g_assert_cmpstr (d, ==, "[book_titles bookings books]");

  /* Tables, views and schemas; no columns, no key words. */
  check_has ("SELECT * FROM ", "authors", "books", "book_titles", "shop.",
             "shop.orders", "wide", NULL);
  check_lacks ("SELECT * FROM ", "title", "WHERE", "ticket_seq",
               "books_title_idx", NULL);
  /* Outside the search_path: schema-qualified. */
  check_exact ("select * from ord", "shop.orders", NULL);
  check_exact ("select * from sh", "shop.", NULL);
  check_exact ("TABLE au", "authors", NULL);
  check_exact ("select * from authors, bookin", "bookings", NULL);
  check_exact ("SELECT *\n  FROM bookin", "bookings", NULL);
  check_exact ("DELETE FROM bookin", "bookings", NULL);
  check_exact ("TRUNCATE bookin", "bookings", NULL);
  check_exact ("SELECT * FROM ONLY bookin", "bookings", NULL);
}

static void
test_join (void)
{
  check_exact ("SELECT * FROM books b JOIN au", "authors", NULL);
  check_exact ("SELECT * FROM books b LEFT JOIN au", "authors", NULL);
  check_exact ("SELECT * FROM books b JOIN authors a ON a.", "a.id", "a.name",
               "a.born", NULL);
  check_exact ("SELECT * FROM books b JOIN authors a ON a.id = b.au",
               "b.author_id", NULL);
}

static void
test_schema_qualified (void)
{
  gsize start = 0;
  g_auto (GStrv) got = complete_at (snapshot, "SELECT * FROM shop.", &start);
  g_assert_cmpuint (start, ==, strlen ("SELECT * FROM "));
  g_autofree char *d = describe (got);
  g_assert_cmpstr (d, ==, "[shop.\"MixedCase\" shop.orders]");
  check_exact ("SELECT * FROM shop.or", "shop.orders", NULL);
  check_exact ("SELECT * FROM SHOP.OR", "SHOP.orders", NULL);
  check_exact ("SELECT shop.orders.to| FROM shop.orders", "shop.orders.total",
               NULL);
}

static void
test_alias (void)
{
  gsize start = 0;
  g_auto (GStrv) got
      = complete_at (snapshot, "SELECT b.| FROM books b", &start);
  g_assert_cmpuint (start, ==, strlen ("SELECT "));
  g_autofree char *d = describe (got);
  g_assert_cmpstr (d, ==,
                   "[b.id b.title b.author_id b.price b.\"order\" "
                   "b.published]");
  check_exact ("SELECT * FROM books b WHERE b.ti", "b.title", NULL);
  check_exact ("select * from books AS bk where bk.pr", "bk.price", NULL);
  check_exact ("SELECT o.pl| FROM shop.orders o", "o.placed_on", NULL);
  /* A table's own name works as its alias, and so does a table out of the
   * statement. */
  check_exact ("SELECT books.ti| FROM books", "books.title", NULL);
  check_exact ("SELECT authors.bo", "authors.born", NULL);
  /* An alias in a later statement of the buffer does not count. */
  check_exact ("SELECT x.| FROM books b; SELECT 1 FROM authors x", NULL);
}

static void
test_select_list (void)
{
  /* The FROM after the cursor gives the scope. */
  check_exact ("SELECT ti| FROM books", "title", NULL);
  check_has ("SELECT | FROM books", "id", "title", "author_id", "price",
             "\"order\"", NULL);
  check_lacks ("SELECT | FROM books", "name", "born", "SELECT", NULL);
  check_exact ("SELECT title, pr| FROM books", "price", NULL);
  /* Two tables: the columns of both, each name once. */
  check_has ("SELECT | FROM books b JOIN authors a ON a.id = b.author_id",
             "title", "name", "born", "id", NULL);
  /* No FROM yet: every column name of the catalog. */
  check_has ("SELECT place", "placed_on", NULL);
  /* Functions: the snapshot's and the common built-ins. */
  check_exact ("SELECT book_c", "book_count", NULL);
  check_exact ("SELECT coa", "coalesce", NULL);
  check_has ("SELECT count(| FROM books", "title", "price", NULL);
  check_has ("SELECT DIS", "DISTINCT", NULL);
}

static void
test_where (void)
{
  check_exact ("SELECT * FROM books WHERE au", "author_id", NULL);
  check_exact ("SELECT * FROM books WHERE price > 3 AND pu", "published", NULL);
  check_exact ("SELECT * FROM books WHERE title = 'x' OR ti", "title", NULL);
  check_exact ("SELECT * FROM books GROUP BY ti", "title", NULL);
  check_exact ("SELECT * FROM books ORDER BY published, pr", "price", NULL);
  check_has ("SELECT * FROM books WHERE id IN (", "SELECT", "id", NULL);
  check_exact ("SELECT * FROM books WHERE id IN (SELECT author_id FROM au",
               "authors", NULL);
  /* Inside a string or a comment: nothing. */
  check_exact ("SELECT * FROM books WHERE title = 'bo", NULL);
  check_exact ("SELECT * FROM books -- bo", NULL);
  check_exact ("SELECT * FROM books /* bo", NULL);
  check_exact ("SELECT $$ bo", NULL);
}

static void
test_insert (void)
{
  check_exact ("INSERT INTO au", "authors", NULL);
  check_exact ("INSERT INTO books (ti", "title", NULL);
  check_exact ("INSERT INTO books (title, pr", "price", NULL);
  check_exact ("insert into shop.orders (to", "total", NULL);
  check_has ("INSERT INTO books ", "VALUES", "SELECT", "DEFAULT VALUES", NULL);
}

static void
test_update (void)
{
  check_exact ("UPDATE bookin", "bookings", NULL);
  check_exact ("UPDATE books SET pr", "price", NULL);
  check_exact ("UPDATE books SET price = 1, ti", "title", NULL);
  check_exact ("UPDATE books b SET price = 2 WHERE b.pu", "b.published", NULL);
  check_has ("update books ", "set", NULL);
}

static void
test_ddl (void)
{
  check_exact ("DROP VIEW bo", "book_titles", NULL);
  check_exact ("DROP INDEX bo", "books_pkey", "books_title_idx", NULL);
  check_exact ("DROP SEQUENCE ti", "ticket_seq", NULL);
  check_exact ("DROP FUNCTION book", "book_count", NULL);
  check_exact ("DROP SCHEMA sh", "shop", NULL);
  check_exact ("DROP TABLE IF EXISTS bookin", "bookings", NULL);
  check_exact ("ALTER TABLE bookin", "bookings", NULL);
}

static void
test_backslash (void)
{
  gsize start = 99;
  g_auto (GStrv) got = complete_at (snapshot, "\\ti", &start);
  g_assert_cmpuint (start, ==, 0);
  g_autofree char *d = describe (got);
  g_assert_cmpstr (d, ==, "[\\timing]");
  check_has ("\\d", "\\d", "\\dt", "\\dv", "\\dm", "\\df", "\\di", "\\dn",
             "\\ds", "\\dT", NULL);
  check_exact ("\\sa", "\\save", "\\saved", NULL);
  /* The argument, by command. */
  check_exact ("\\d bo", "book_titles", "bookings", "books", "books_id_seq",
               "books_pkey", "books_title_idx", NULL);
  check_exact ("\\dt bo", "bookings", "books", NULL);
  check_exact ("\\dv bo", "book_titles", NULL);
  check_exact ("\\di bo", "books_pkey", "books_title_idx", NULL);
  check_exact ("\\dt+ shop.or", "shop.orders", NULL);
  check_exact ("\\dn sh", "shop", NULL);
  check_exact ("\\dT mo", "shop.mood", NULL);
  check_exact ("\\format c", "csv", NULL);
  check_exact ("\\x ", "on", "off", NULL);
  check_exact ("\\timing o", "on", "off", NULL);
  /* A backslash line after a statement's first lines. */
  check_exact ("SELECT *\n\\dt bookin", "bookings", NULL);
}

static void
test_files (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("tusk-complete-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *file = g_build_filename (dir, "script.sql", NULL);
  g_autofree char *sub = g_build_filename (dir, "scripts", NULL);
  g_assert_true (g_file_set_contents (file, "SELECT 1;", -1, NULL));
  g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);

  g_autofree char *line = g_strdup_printf ("\\i %s/scr", dir);
  g_auto (GStrv) got = complete_at (snapshot, line, NULL);
  g_autofree char *want_file = g_strdup_printf ("%s/script.sql", dir);
  g_autofree char *want_dir = g_strdup_printf ("%s/scripts/", dir);
  g_assert_cmpuint (g_strv_length (got), ==, 2);
  g_assert_cmpstr (got[0], ==, want_file);
  g_assert_cmpstr (got[1], ==, want_dir);

  g_remove (file);
  g_rmdir (sub);
  g_rmdir (dir);
}

static void
test_quoting (void)
{
  /* Names that need quotes get them: mixed case, reserved words. */
  check_exact ("SELECT * FROM shop.Mi", "shop.\"MixedCase\"", NULL);
  check_exact ("SELECT * FROM shop.\"Mi", "shop.\"MixedCase\"", NULL);
  check_exact ("SELECT * FROM shop.\"mi", NULL); /* quoted: exact case */
  check_exact ("SELECT \"Va| FROM shop.\"MixedCase\"", "\"Value\"", NULL);
  check_exact ("SELECT m.| FROM shop.\"MixedCase\" m", "m.\"Value\"", "m.plain",
               NULL);
  check_exact ("SELECT ord| FROM books", "\"order\"", NULL);
  /* A quoted word is completed quoted. */
  check_exact ("SELECT \"pri| FROM books", "\"price\"", NULL);
}

static void
test_cap (void)
{
  g_auto (GStrv) got = complete_at (snapshot, "SELECT | FROM wide", NULL);
  g_assert_cmpuint (g_strv_length (got), ==, 1000);
  g_assert_cmpstr (got[0], ==, "c0001");
  g_assert_cmpstr (got[999], ==, "c1000");
  g_auto (GStrv) some = complete_at (snapshot, "SELECT c11| FROM wide", NULL);
  g_assert_cmpuint (g_strv_length (some), ==, 100); /* c1100 … c1199 */
}

static void
test_no_snapshot (void)
{
  g_auto (GStrv) kw = complete_at (NULL, "SEL", NULL);
  g_assert_cmpuint (g_strv_length (kw), ==, 1);
  g_assert_cmpstr (kw[0], ==, "SELECT");
  g_auto (GStrv) tables = complete_at (NULL, "SELECT * FROM bo", NULL);
  g_assert_cmpuint (g_strv_length (tables), ==, 0);
  g_auto (GStrv) cols = complete_at (NULL, "SELECT b.| FROM books b", NULL);
  g_assert_cmpuint (g_strv_length (cols), ==, 0);
  g_auto (GStrv) follow = complete_at (NULL, "select * from books wh", NULL);
  g_assert_cmpuint (g_strv_length (follow), ==, 1);
  g_assert_cmpstr (follow[0], ==, "where");
  g_auto (GStrv) meta = complete_at (NULL, "\\tim", NULL);
  g_assert_cmpuint (g_strv_length (meta), ==, 1);
  g_assert_cmpstr (meta[0], ==, "\\timing");
  g_auto (GStrv) fn = complete_at (NULL, "SELECT coa", NULL);
  g_assert_cmpuint (g_strv_length (fn), ==, 1);
}

static void
test_odd_input (void)
{
  /* Anything goes in; nothing crashes, the cursor clamps. */
  const char *inputs[] = {
    "",
    "\"",
    "'",
    "$",
    "$$",
    "$a$",
    "(((",
    ")))",
    ";;;",
    "..",
    ".",
    "a.b.c.d.",
    "\\",
    "\\\\",
    "E'\\",
    "U&\"x",
    "/* /*",
    "--",
    "SELECT \"a\"\"b",
    "\xff\xfe",
    "SELECT * FROM \xc3",
    "FROM FROM FROM",
  };
  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++)
    {
      gsize len = strlen (inputs[i]);
      for (gsize cursor = 0; cursor <= len + 1; cursor++)
        {
          gsize start;
          g_auto (GStrv) out
              = tusk_complete (snapshot, inputs[i], cursor, &start);
          g_assert_nonnull (out);
          g_assert_cmpuint (start, <=, MIN (cursor, len));
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_log_set_filter ("warn", NULL);

  test_db = g_strdup_printf ("tusk_complete_test_%d", (int)getpid ());
  PGconn *admin = admin_connect (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", test_db);
  admin_exec (admin, create);
  PGconn *pg = admin_connect (test_db);
  admin_exec (pg, fixture_sql);
  PQfinish (pg);
  snapshot = load_snapshot ();

  g_test_add_func ("/tusk/complete/keywords", test_keywords);
  g_test_add_func ("/tusk/complete/from", test_from);
  g_test_add_func ("/tusk/complete/join", test_join);
  g_test_add_func ("/tusk/complete/schema-qualified", test_schema_qualified);
  g_test_add_func ("/tusk/complete/alias", test_alias);
  g_test_add_func ("/tusk/complete/select-list", test_select_list);
  g_test_add_func ("/tusk/complete/where", test_where);
  g_test_add_func ("/tusk/complete/insert", test_insert);
  g_test_add_func ("/tusk/complete/update", test_update);
  g_test_add_func ("/tusk/complete/ddl", test_ddl);
  g_test_add_func ("/tusk/complete/backslash", test_backslash);
  g_test_add_func ("/tusk/complete/files", test_files);
  g_test_add_func ("/tusk/complete/quoting", test_quoting);
  g_test_add_func ("/tusk/complete/cap", test_cap);
  g_test_add_func ("/tusk/complete/no-snapshot", test_no_snapshot);
  g_test_add_func ("/tusk/complete/odd-input", test_odd_input);
  int status = g_test_run ();

  tusk_schema_snapshot_unref (snapshot);
  g_autofree char *drop
      = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", test_db);
  admin_exec (admin, drop);
  PQfinish (admin);
  g_free (test_db);
  return status;
}
