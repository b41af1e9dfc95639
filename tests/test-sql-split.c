/* test-sql-split.c: the statement splitter, construct by construct, the
 * error-position mapping, the incremental scanner, robustness, and a corpus
 * of scripts (tests/sql-split/NN-name.sql) whose statements and results must be
 * exactly those of `psql -f` against the test server. */
#include <string.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "tusk.h"
#include "tusk-test.h"

/* ---- helpers ------------------------------------------------------------ */

/* "S:" statement, "M:" backslash command, "D:" COPY data, then the text. */
static char *
describe (const TuskSqlPiece *piece)
{
  const char *kind = piece->kind == TUSK_SQL_STATEMENT ? "S"
                     : piece->kind == TUSK_SQL_META    ? "M"
                                                       : "D";
  return g_strdup_printf ("%s:%s", kind, piece->text);
}

/* Splits @script and checks the pieces against the NULL-terminated
 * descriptions that follow; returns the pieces for further checks. */
static GPtrArray *
check_split (const char *script, ...)
{
  GPtrArray *pieces = tusk_sql_split (script, -1);
  g_autoptr (GPtrArray) expected = g_ptr_array_new ();
  va_list ap;
  va_start (ap, script);
  const char *e;
  while ((e = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (expected, (gpointer)e);
  va_end (ap);

  g_autoptr (GString) got = g_string_new (NULL);
  g_autoptr (GString) want = g_string_new (NULL);
  for (guint i = 0; i < pieces->len; i++)
    {
      g_autofree char *d = describe (pieces->pdata[i]);
      g_string_append_printf (got, "[%s]\n", d);
    }
  for (guint i = 0; i < expected->len; i++)
    g_string_append_printf (want, "[%s]\n", (char *)expected->pdata[i]);
  if (strcmp (got->str, want->str) != 0)
    g_error ("split of:\n%s\ngave:\n%swanted:\n%s", script, got->str,
             want->str);
  return pieces;
}

static const TuskSqlPiece *
piece_at (GPtrArray *pieces, guint i)
{
  g_assert_cmpuint (i, <, pieces->len);
  return pieces->pdata[i];
}

/* ---- constructs -----------------------------------------------------------
 */

static void
test_basic (void)
{
  g_autoptr (GPtrArray) p
      = check_split ("SELECT 1; SELECT 2;\n  SELECT 3", "S:SELECT 1;",
                     "S:SELECT 2;", "S:SELECT 3", NULL);
  const TuskSqlPiece *a = piece_at (p, 0), *b = piece_at (p, 1),
                     *c = piece_at (p, 2);
  g_assert_cmpint (a->kind, ==, TUSK_SQL_STATEMENT);
  g_assert_cmpuint (a->offset, ==, 0);
  g_assert_cmpuint (a->end_offset, ==, 9);
  g_assert_cmpint (a->line, ==, 1);
  g_assert_cmpint (a->column, ==, 1);
  g_assert_cmpint (a->end, ==, TUSK_SQL_END_SEMICOLON);
  g_assert_true (a->complete);
  g_assert_false (a->empty);
  g_assert_cmpuint (b->offset, ==, 10);
  g_assert_cmpint (b->column, ==, 11);
  g_assert_cmpint (c->line, ==, 2);
  g_assert_cmpint (c->column, ==, 3);
  g_assert_cmpint (c->end, ==, TUSK_SQL_END_INPUT);
  g_assert_true (c->complete); /* psql runs a last statement without ';' */
  g_assert_null (a->command);

  g_autoptr (GPtrArray) none = check_split ("", NULL);
  g_autoptr (GPtrArray) blank
      = check_split ("  \n\t\n-- only a comment\n", NULL);
  g_autoptr (GPtrArray) copy = tusk_sql_split ("SELECT 1;x", 9);
  g_assert_cmpuint (copy->len, ==, 1);
  g_autoptr (TuskSqlPiece) dup = tusk_sql_piece_copy (piece_at (copy, 0));
  g_assert_cmpstr (dup->text, ==, "SELECT 1;");
  g_assert_cmpuint (dup->length, ==, 9);
}

static void
test_empty_statements (void)
{
  /* psql sends a lone ';' (the server answers an empty query), and a
   * comment-only statement. */
  g_autoptr (GPtrArray) p = check_split (
      "SELECT 1;;\n  ; \n/* c */ ;\nSELECT 2; /* tail */", "S:SELECT 1;", "S:;",
      "S:;", "S:/* c */ ;", "S:SELECT 2;", "S:/* tail */", NULL);
  g_assert_false (piece_at (p, 0)->empty);
  g_assert_true (piece_at (p, 1)->empty);
  g_assert_true (piece_at (p, 3)->empty);
  g_assert_true (piece_at (p, 5)->empty);
  g_assert_cmpint (piece_at (p, 5)->end, ==, TUSK_SQL_END_INPUT);
}

static void
test_strings (void)
{
  g_autoptr (GPtrArray) a
      = check_split ("SELECT 'a;b', 'it''s;'; SELECT 2;",
                     "S:SELECT 'a;b', 'it''s;';", "S:SELECT 2;", NULL);
  /* standard_conforming_strings: a backslash is just a character */
  g_autoptr (GPtrArray) b = check_split (
      "SELECT 'a\\'; SELECT 2;", "S:SELECT 'a\\';", "S:SELECT 2;", NULL);
  /* E'…': backslash escapes */
  g_autoptr (GPtrArray) c
      = check_split ("SELECT E'a\\';b', e'\\\\'; SELECT 2;",
                     "S:SELECT E'a\\';b', e'\\\\';", "S:SELECT 2;", NULL);
  g_autoptr (GPtrArray) d
      = check_split ("SELECT E'x''y\\';z' ; SELECT 2;",
                     "S:SELECT E'x''y\\';z' ;", "S:SELECT 2;", NULL);
  /* N'…', B'…', X'…' */
  g_autoptr (GPtrArray) e = check_split (
      "SELECT N'a;', B'01;', x'1;', n'\\'; SELECT 2;",
      "S:SELECT N'a;', B'01;', x'1;', n'\\';", "S:SELECT 2;", NULL);
  /* U&'…' and U&"…"; u& alone is not a string */
  g_autoptr (GPtrArray) f = check_split (
      "SELECT U&'d\\0061t;' AS U&\"x;\"\"y\"; SELECT u&x;",
      "S:SELECT U&'d\\0061t;' AS U&\"x;\"\"y\";", "S:SELECT u&x;", NULL);
  /* a word that merely ends in e, n, b, x or u */
  g_autoptr (GPtrArray) g = check_split (
      "SELECT abe'x;'; SELECT 2;", "S:SELECT abe'x;';", "S:SELECT 2;", NULL);
  /* an E string's backslash before the line break escapes nothing else */
  g_autoptr (GPtrArray) h = check_split (
      "SELECT E'a\\\n';\nSELECT 2;", "S:SELECT E'a\\\n';", "S:SELECT 2;", NULL);
  /* psql reads line by line: 'a'<newline>'b' are two strings to it, so an
   * E string "continued" on the next line as a plain one ends at \' */
  g_autoptr (GPtrArray) i = check_split (
      "SELECT E'q\\''\n'b\\'c';\nSELECT 2;\nSELECT 'x';",
      "S:SELECT E'q\\''\n'b\\'c';\nSELECT 2;\nSELECT 'x';", NULL);
  g_assert_false (piece_at (i, 0)->complete);
}

static void
test_identifiers (void)
{
  g_autoptr (GPtrArray) a = check_split (
      "SELECT 1 AS \"a\"\";b\"; SELECT 2 AS \"'\";",
      "S:SELECT 1 AS \"a\"\";b\";", "S:SELECT 2 AS \"'\";", NULL);
  /* $ inside an identifier is not a dollar quote */
  g_autoptr (GPtrArray) b
      = check_split ("SELECT 1 AS a$b; SELECT 2 AS c$b;", "S:SELECT 1 AS a$b;",
                     "S:SELECT 2 AS c$b;", NULL);
}

static void
test_dollar_quotes (void)
{
  g_autoptr (GPtrArray) a
      = check_split ("SELECT $$a;'b$$; SELECT $x$ $$;$$ $y$; $x$;\nSELECT 3;",
                     "S:SELECT $$a;'b$$;", "S:SELECT $x$ $$;$$ $y$; $x$;",
                     "S:SELECT 3;", NULL);
  /* tags are case-sensitive; $1 is a parameter, not a tag */
  g_autoptr (GPtrArray) b
      = check_split ("SELECT $A$ $a$; $A$; PREPARE p AS SELECT $1; SELECT 2;",
                     "S:SELECT $A$ $a$; $A$;", "S:PREPARE p AS SELECT $1;",
                     "S:SELECT 2;", NULL);
  /* a failed tag ($abc without a closing $) is a '$' and a word */
  g_autoptr (GPtrArray) c = check_split ("SELECT $abc; SELECT 2;",
                                         "S:SELECT $abc;", "S:SELECT 2;", NULL);
  /* $junk$ inside a quote does not end it: $delim$…$junk$delim$ */
  g_autoptr (GPtrArray) d
      = check_split ("SELECT $d$;$junk$d$; SELECT 2;", "S:SELECT $d$;$junk$d$;",
                     "S:SELECT 2;", NULL);
  /* multi-line body */
  g_autoptr (GPtrArray) e
      = check_split ("DO $do$\nBEGIN\n  PERFORM 1;\n\n  RAISE NOTICE 'x;';\n"
                     "END\n$do$;\nSELECT 2;",
                     "S:DO $do$\nBEGIN\n  PERFORM 1;\n\n  RAISE NOTICE "
                     "'x;';\nEND\n$do$;",
                     "S:SELECT 2;", NULL);
}

static void
test_comments (void)
{
  /* leading -- comments are dropped, later ones kept (psql 15) */
  g_autoptr (GPtrArray) a
      = check_split ("-- head; 'x\n  SELECT 1 -- tail; 'y\n, 2;\n",
                     "S:SELECT 1 -- tail; 'y\n, 2;", NULL);
  g_assert_cmpint (piece_at (a, 0)->line, ==, 2);
  g_assert_cmpint (piece_at (a, 0)->column, ==, 3);
  /* nested block comments holding ';' and quotes; a leading one is kept */
  g_autoptr (GPtrArray) b = check_split (
      "/* a /* ; ' */ \" $$ ; */ SELECT 1; SELECT /*/ ; **/ 2;",
      "S:/* a /* ; ' */ \" $$ ; */ SELECT 1;", "S:SELECT /*/ ; **/ 2;", NULL);
  /* an operator running into a comment */
  g_autoptr (GPtrArray) c
      = check_split ("SELECT 1 +--;\n2; SELECT 3 */* ; */ 4;",
                     "S:SELECT 1 +--;\n2;", "S:SELECT 3 */* ; */ 4;", NULL);
  /* a comment line between statements joins nothing */
  g_autoptr (GPtrArray) d = check_split ("SELECT 1; -- x\n-- y\nSELECT 2;",
                                         "S:SELECT 1;", "S:SELECT 2;", NULL);
}

static void
test_parens (void)
{
  g_autoptr (GPtrArray) a = check_split (
      "SELECT (1;\n2); SELECT ((3)); SELECT 4);SELECT 5;", "S:SELECT (1;\n2);",
      "S:SELECT ((3));", "S:SELECT 4);", "S:SELECT 5;", NULL);
  /* brackets are not counted */
  g_autoptr (GPtrArray) b = check_split (
      "SELECT a[1:2]; SELECT 2;", "S:SELECT a[1:2];", "S:SELECT 2;", NULL);
}

static void
test_begin_atomic (void)
{
  g_autoptr (GPtrArray) a = check_split (
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
      "  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND;\nSELECT 3;",
      "S:CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
      "  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND;",
      "S:SELECT 3;", NULL);
  g_autoptr (GPtrArray) b = check_split (
      "create or replace procedure p() begin atomic insert into t values "
      "(1); end; call p();",
      "S:create or replace procedure p() begin atomic insert into t values "
      "(1); end;",
      "S:call p();", NULL);
  /* a transaction's BEGIN … END is not a body */
  g_autoptr (GPtrArray) c = check_split ("BEGIN; SELECT 1; END;", "S:BEGIN;",
                                         "S:SELECT 1;", "S:END;", NULL);
  /* BEGIN inside parentheses does not count */
  g_autoptr (GPtrArray) d = check_split (
      "CREATE FUNCTION g(begin int) RETURNS int LANGUAGE sql RETURN 1; "
      "SELECT 2;",
      "S:CREATE FUNCTION g(begin int) RETURNS int LANGUAGE sql RETURN 1;",
      "S:SELECT 2;", NULL);
  /* psql's heuristic, mirrored: outside parentheses any BEGIN counts, so
   * this statement runs on to the end of the input */
  g_autoptr (GPtrArray) e = check_split (
      "CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql RETURN begin; "
      "SELECT 2;",
      "S:CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql RETURN begin; "
      "SELECT 2;",
      NULL);
  g_assert_false (piece_at (e, 0)->complete);
  /* a quoted or psql-variable BEGIN is not a word */
  g_autoptr (GPtrArray) f = check_split (
      "CREATE FUNCTION k() RETURNS text LANGUAGE sql RETURN 'begin'; "
      "SELECT :begin;",
      "S:CREATE FUNCTION k() RETURNS text LANGUAGE sql RETURN 'begin';",
      "S:SELECT :begin;", NULL);
  /* "::" is a cast, the word after it counts */
  g_autoptr (GPtrArray) g
      = check_split ("CREATE FUNCTION m() RETURNS int LANGUAGE sql BEGIN "
                     "ATOMIC SELECT 1::end; SELECT 2; END; SELECT 3;",
                     "S:CREATE FUNCTION m() RETURNS int LANGUAGE sql BEGIN "
                     "ATOMIC SELECT 1::end;",
                     "S:SELECT 2;", "S:END;", "S:SELECT 3;", NULL);
}

static void
test_meta (void)
{
  g_autoptr (GPtrArray) a = check_split (
      "\\set x 1\nSELECT 1;\n  \\d+ foo  \n\\echo 'a \\ b' x\n", "M:\\set x 1",
      "S:SELECT 1;", "M:\\d+ foo", "M:\\echo 'a \\ b' x", NULL);
  g_assert_cmpint (piece_at (a, 0)->kind, ==, TUSK_SQL_META);
  g_assert_cmpstr (piece_at (a, 0)->command, ==, "set");
  g_assert_cmpstr (piece_at (a, 2)->command, ==, "d+");
  g_assert_cmpint (piece_at (a, 2)->line, ==, 3);
  g_assert_cmpint (piece_at (a, 2)->column, ==, 3);
  g_assert_cmpint (piece_at (a, 0)->end, ==, TUSK_SQL_END_LINE);

  /* two commands on a line; "\\" goes back to SQL */
  g_autoptr (GPtrArray) b = check_split (
      "\\set a 1 \\set b 2\n\\set c 3 \\\\ SELECT 1;", "M:\\set a 1",
      "M:\\set b 2", "M:\\set c 3", "S:SELECT 1;", NULL);
  /* whole-line commands keep their backslashes */
  g_autoptr (GPtrArray) c
      = check_split ("\\! echo \\x \\\\ y\n\\copy t to 'f' \\\\ x\n\\g |cat "
                     "\\x\n",
                     "M:\\! echo \\x \\\\ y", "M:\\copy t to 'f' \\\\ x",
                     "M:\\g |cat \\x", NULL);
  /* an unterminated quoted argument takes the line */
  g_autoptr (GPtrArray) d = check_split (
      "\\echo 'abc \\n\nSELECT 1;", "M:\\echo 'abc \\n", "S:SELECT 1;", NULL);
  g_assert_false (piece_at (d, 0)->complete);
  /* a lone backslash */
  g_autoptr (GPtrArray) e
      = check_split ("\\\nSELECT 1;", "M:\\", "S:SELECT 1;", NULL);
  g_assert_cmpstr (piece_at (e, 0)->command, ==, "");
  /* not inside quotes, comments or dollar quotes */
  g_autoptr (GPtrArray) f = check_split ("SELECT '\\x', $$\\y$$ /* \\z */;",
                                         "S:SELECT '\\x', "
                                         "$$\\y$$ /* \\z */;",
                                         NULL);
}

static void
test_meta_in_statement (void)
{
  /* psql runs the command first; a command alone on its line takes the
   * line break before it along */
  g_autoptr (GPtrArray) a = check_split (
      "SELECT 6\n\\set x 1\n\\set y 2\n, 7;\nSELECT 13 \\echo mid\n;",
      "M:\\set x 1", "M:\\set y 2", "S:SELECT 6\n, 7;", "M:\\echo mid",
      "S:SELECT 13 \n;", NULL);
  /* "\\" inside a statement */
  g_autoptr (GPtrArray) b = check_split (
      "SELECT 1 \\echo x \\\\ , 2;", "M:\\echo x", "S:SELECT 1  , 2;", NULL);
  /* \; and \: send the character */
  g_autoptr (GPtrArray) c
      = check_split ("SELECT 8\\; SELECT 9;\n\\;SELECT 10;",
                     "S:SELECT 8; SELECT 9;", "S:;SELECT 10;", NULL);
  /* \g and friends end the statement, from anywhere */
  g_autoptr (GPtrArray) d
      = check_split ("SELECT 5 \\g\nSELECT (6\n\\gx\n\\g\nSELECT 7 \\gset p_",
                     "S:SELECT 5 ", "M:\\g", "S:SELECT (6", "M:\\gx", "M:\\g",
                     "S:SELECT 7 ", "M:\\gset p_", NULL);
  g_assert_cmpint (piece_at (d, 0)->end, ==, TUSK_SQL_END_META);
  g_assert_true (piece_at (d, 0)->complete);
  g_assert_false (piece_at (d, 2)->complete);
  g_assert_cmpint (piece_at (d, 5)->end, ==, TUSK_SQL_END_META);
  g_assert_cmpint (piece_at (d, 6)->end, ==, TUSK_SQL_END_INPUT);
  /* \r and \reset discard the statement */
  g_autoptr (GPtrArray) e = check_split ("SELECT 3\n\\r\nSELECT (4 \\reset\n5;",
                                         "M:\\r", "M:\\reset", "S:5;", NULL);
}

static void
test_lines (void)
{
  /* psql drops blank lines outside quotes and comments */
  g_autoptr (GPtrArray) a = check_split (
      "SELECT\n\n1;\nSELECT '\n\n', $$\n\n$$ /*\n\n*/;\n", "S:SELECT\n1;",
      "S:SELECT '\n\n', $$\n\n$$ /*\n\n*/;", NULL);
  /* and never sends the last line break */
  g_autoptr (GPtrArray) b
      = check_split ("SELECT 7\n\n  \n", "S:SELECT 7\n  ", NULL);
  g_autoptr (GPtrArray) c
      = check_split ("SELECT '7\n\n", "S:SELECT '7\n", NULL);
  /* CR LF: the CR is part of the line */
  g_autoptr (GPtrArray) d
      = check_split ("SELECT 5\r\n, 6;\r\n\\set x\r\nSELECT 7;\r\n",
                     "S:SELECT 5\r\n, 6;", "M:\\set x", "S:SELECT 7;", NULL);
  g_assert_cmpint (piece_at (d, 1)->line, ==, 3);
}

static void
test_unterminated (void)
{
  const char *cases[] = {
    "SELECT 'abc; SELECT 2;\n",
    "SELECT E'abc\\'; SELECT 2;",
    "SELECT \"abc; SELECT 2;",
    "SELECT $x$ abc; $y$; SELECT 2;",
    "SELECT /* /* */ abc; SELECT 2;",
    "SELECT (abc; SELECT 2;",
    "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; SELECT 2;",
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GPtrArray) p = tusk_sql_split (cases[i], -1);
      g_assert_cmpuint (p->len, ==, 1);
      const TuskSqlPiece *piece = piece_at (p, 0);
      g_assert_false (piece->complete);
      g_assert_cmpint (piece->end, ==, TUSK_SQL_END_INPUT);
      g_autofree char *want = g_strchomp (g_strdup (cases[i]));
      g_assert_cmpstr (piece->text, ==, want);
    }
}

static void
test_copy (void)
{
  /* the rest of the COPY's line comes after the data, as in psql */
  g_autoptr (GPtrArray) a = check_split (
      "COPY t FROM stdin; SELECT 100\n1\tx;'\n\\N\t--y\n\\.\n, 101;\n"
      "copy t (a, b) from STDIN with (format csv);\n\\.\r\nSELECT 2;\n",
      "S:COPY t FROM stdin;", "D:1\tx;'\n\\N\t--y\n", "S:SELECT 100\n, 101;",
      "S:copy t (a, b) from STDIN with (format csv);", "D:", "S:SELECT 2;",
      NULL);
  const TuskSqlPiece *data = piece_at (a, 1);
  g_assert_cmpint (data->kind, ==, TUSK_SQL_COPY_DATA);
  g_assert_cmpint (data->line, ==, 2);
  g_assert_cmpint (data->column, ==, 1);
  g_assert_true (data->complete);
  g_assert_cmpint (piece_at (a, 4)->line, ==, 7);
  /* the statement that went on around the data maps back on both sides */
  int line, column;
  tusk_sql_piece_locate (piece_at (a, 2), 14, &line, &column);
  g_assert_cmpint (line, ==, 5);
  g_assert_cmpint (column, ==, 3);
  tusk_sql_piece_locate (piece_at (a, 2), 8, &line, &column);
  g_assert_cmpint (line, ==, 1);
  g_assert_cmpint (column, ==, 27);

  /* not data: COPY … TO STDOUT, FROM a file, "stdin" elsewhere */
  g_autoptr (GPtrArray) b = check_split (
      "COPY t TO stdout;\nCOPY t FROM '/f';\nSELECT 1 FROM stdin;\nx;\n",
      "S:COPY t TO stdout;", "S:COPY t FROM '/f';", "S:SELECT 1 FROM stdin;",
      "S:x;", NULL);
  /* \copy … from stdin reads data too; the end of the input ends it */
  g_autoptr (GPtrArray) c
      = check_split ("\\copy t from stdin with csv\n1,2\n\\.x\n",
                     "M:\\copy t from stdin with csv", "D:1,2\n\\.x\n", NULL);
  g_assert_false (piece_at (c, 1)->complete);
  g_assert_cmpint (piece_at (c, 1)->end, ==, TUSK_SQL_END_INPUT);
  /* \g sends a COPY too */
  g_autoptr (GPtrArray) d
      = check_split ("COPY t FROM stdin \\g\n1\n\\.\n", "S:COPY t FROM stdin ",
                     "M:\\g", "D:1\n", NULL);
}

static void
test_positions (void)
{
  const char *script = "SELECT 1;\n  SELECT  \xc3\xa9\xe2\x82\xac, x\n FROM t;";
  g_autoptr (GPtrArray) p = tusk_sql_split (script, -1);
  const TuskSqlPiece *s = piece_at (p, 1);
  int line = 0, column = 0;
  /* "SELECT  é€, x": x is character 13 */
  gsize off = tusk_sql_piece_locate (s, 13, &line, &column);
  g_assert_cmpint (line, ==, 2);
  g_assert_cmpint (column, ==, 15);
  g_assert_cmpint (script[off], ==, 'x');
  /* "FROM" on the next line: character 16 ("\n" is 14) */
  off = tusk_sql_piece_locate (s, 16, &line, &column);
  g_assert_cmpint (line, ==, 3);
  g_assert_cmpint (column, ==, 2);
  g_assert_true (g_str_has_prefix (script + off, "FROM"));
  /* out of range */
  off = tusk_sql_piece_locate (s, 0, &line, &column);
  g_assert_cmpuint (off, ==, s->offset);
  g_assert_cmpint (line, ==, 2);
  g_assert_cmpint (column, ==, 3);
  off = tusk_sql_piece_locate (s, 1000, &line, &column);
  g_assert_cmpuint (off, ==, strlen (script));
  g_assert_cmpint (line, ==, 3);
  g_assert_cmpint (column, ==, 9);
  tusk_sql_piece_locate (s, 2, NULL, NULL);

  /* across parts psql cut out */
  const char *cut = "SELECT 6\n\\set x 1\n\n, bogus \\echo z\n, \xc3\xa9;";
  g_autoptr (GPtrArray) q = tusk_sql_split (cut, -1);
  const TuskSqlPiece *t = piece_at (q, 2);
  g_assert_cmpstr (t->text, ==, "SELECT 6\n, bogus \n, \xc3\xa9;");
  off = tusk_sql_piece_locate (t, 12, &line, &column);
  g_assert_cmpint (line, ==, 4);
  g_assert_cmpint (column, ==, 3);
  g_assert_true (g_str_has_prefix (cut + off, "bogus"));
  off = tusk_sql_piece_locate (t, 21, &line, &column);
  g_assert_cmpint (line, ==, 5);
  g_assert_cmpint (column, ==, 3);
  g_assert_true (g_str_has_prefix (cut + off, "\xc3\xa9"));
  g_assert_cmpuint (t->end_offset, ==, strlen (cut));

  /* "\;": the server's positions count the ';' without its backslash */
  const char *multi = "SELECT 8\\; SELECT oops;";
  g_autoptr (GPtrArray) r = tusk_sql_split (multi, -1);
  off = tusk_sql_piece_locate (piece_at (r, 0), 18, &line, &column);
  g_assert_true (g_str_has_prefix (multi + off, "oops"));
  g_assert_cmpint (column, ==, 19);
}

/* ---- the scanner ------------------------------------------------------------
 */

static void
test_scanner_continuation (void)
{
  static const struct
  {
    const char *line;
    TuskSqlContinuation after;
    guint pieces;
  } steps[] = {
    { "\n", TUSK_SQL_CONTINUATION_NONE, 0 },
    { "-- nothing yet\n", TUSK_SQL_CONTINUATION_NONE, 0 },
    { "SELECT 1\n", TUSK_SQL_CONTINUATION_STATEMENT, 0 },
    { ", 'abc\n", TUSK_SQL_CONTINUATION_SINGLE_QUOTE, 0 },
    { "def', E'\\'\n", TUSK_SQL_CONTINUATION_SINGLE_QUOTE, 0 },
    { "', \"id\n", TUSK_SQL_CONTINUATION_DOUBLE_QUOTE, 0 },
    { "\" , $f$\n", TUSK_SQL_CONTINUATION_DOLLAR_QUOTE, 0 },
    { "$$ ; $f$ /* x /*\n", TUSK_SQL_CONTINUATION_COMMENT, 0 },
    { "*/\n", TUSK_SQL_CONTINUATION_COMMENT, 0 },
    { "*/ , (1,\n", TUSK_SQL_CONTINUATION_PAREN, 0 },
    { "2); SELECT 2; SELECT\n", TUSK_SQL_CONTINUATION_STATEMENT, 2 },
    { "3;\n", TUSK_SQL_CONTINUATION_NONE, 1 },
    { "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1;\n",
      TUSK_SQL_CONTINUATION_STATEMENT, 0 },
    { "END;\n", TUSK_SQL_CONTINUATION_NONE, 1 },
    { "\\set x 1\n", TUSK_SQL_CONTINUATION_NONE, 1 },
    { "COPY t FROM stdin;\n", TUSK_SQL_CONTINUATION_COPY_DATA, 1 },
    { "1\n", TUSK_SQL_CONTINUATION_COPY_DATA, 0 },
    { "\\.\n", TUSK_SQL_CONTINUATION_NONE, 1 },
    { "SELECT 'x", TUSK_SQL_CONTINUATION_NONE, 0 }, /* waits for its '\n' */
  };
  static const char *symbols[] = { "=", "-", "'", "\"", "$", "*", "(", ">>" };

  g_autoptr (TuskSqlScanner) scanner = tusk_sql_scanner_new ();
  g_assert_cmpint (tusk_sql_scanner_get_continuation (scanner), ==,
                   TUSK_SQL_CONTINUATION_NONE);
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      g_autoptr (GPtrArray) out
          = tusk_sql_scanner_feed (scanner, steps[i].line, -1);
      g_assert_cmpuint (out->len, ==, steps[i].pieces);
      g_assert_cmpint (tusk_sql_scanner_get_continuation (scanner), ==,
                       steps[i].after);
    }
  for (guint i = 0; i < G_N_ELEMENTS (symbols); i++)
    g_assert_cmpstr (tusk_sql_continuation_symbol (i), ==, symbols[i]);

  /* the last line is scanned at the end of the input */
  g_autoptr (GPtrArray) last = tusk_sql_scanner_finish (scanner);
  g_assert_cmpuint (last->len, ==, 1);
  g_assert_cmpstr (piece_at (last, 0)->text, ==, "SELECT 'x");
  g_assert_false (piece_at (last, 0)->complete);

  /* and the scanner starts over */
  g_autoptr (GPtrArray) again
      = tusk_sql_scanner_feed (scanner, "SELECT 1;\n", -1);
  g_assert_cmpuint (piece_at (again, 0)->offset, ==, 0);
  g_assert_cmpint (piece_at (again, 0)->line, ==, 1);

  /* reset drops what is pending but keeps counting */
  g_autoptr (GPtrArray) pending
      = tusk_sql_scanner_feed (scanner, "SELECT 'abc\n", -1);
  g_assert_cmpint (tusk_sql_scanner_get_continuation (scanner), ==,
                   TUSK_SQL_CONTINUATION_SINGLE_QUOTE);
  tusk_sql_scanner_reset (scanner);
  g_assert_cmpint (tusk_sql_scanner_get_continuation (scanner), ==,
                   TUSK_SQL_CONTINUATION_NONE);
  g_autoptr (GPtrArray) after
      = tusk_sql_scanner_feed (scanner, "SELECT 2;\n", -1);
  g_assert_cmpint (piece_at (after, 0)->line, ==, 3);
  g_autoptr (GPtrArray) end = tusk_sql_scanner_finish (scanner);
  g_assert_cmpuint (end->len, ==, 0);
}

/* Checks that @pieces are consistent with @script: every character of every
 * piece maps back to the same bytes in the script. */
static void
check_consistent (const char *script, gsize len, GPtrArray *pieces)
{
  for (guint i = 0; i < pieces->len; i++)
    {
      const TuskSqlPiece *piece = pieces->pdata[i];
      g_assert_cmpuint (piece->offset, <=, piece->end_offset);
      g_assert_cmpuint (piece->end_offset, <=, len);
      g_assert_cmpuint (strlen (piece->text), <=, piece->length);
      g_assert_cmpint (piece->text[piece->length], ==, '\0');
      g_assert_true ((piece->kind == TUSK_SQL_META)
                     == (piece->command != NULL));
      gsize idx = 0;
      for (int pos = 1; idx < piece->length; pos++)
        {
          int line, column;
          gsize off = tusk_sql_piece_locate (piece, pos, &line, &column);
          g_assert_cmpuint (off, <, len);
          g_assert_cmpint (script[off], ==, piece->text[idx]);
          g_assert_cmpint (line, >=, 1);
          g_assert_cmpint (column, >=, 1);
          if (pos == 1)
            {
              g_assert_cmpuint (off, ==, piece->offset);
              g_assert_cmpint (line, ==, piece->line);
              g_assert_cmpint (column, ==, piece->column);
            }
          idx++;
          while (idx < piece->length
                 && ((guchar)piece->text[idx] & 0xC0) == 0x80)
            idx++;
        }
    }
}

static void
assert_same_pieces (GPtrArray *a, GPtrArray *b, const char *script, gsize len)
{
  if (g_test_verbose ())
    {
      g_autofree char *shown = g_strescape (script, NULL);
      g_test_message ("script (%" G_GSIZE_FORMAT " bytes): %s", len, shown);
    }
  g_assert_cmpuint (a->len, ==, b->len);
  for (guint i = 0; i < a->len; i++)
    {
      const TuskSqlPiece *x = a->pdata[i], *y = b->pdata[i];
      g_assert_cmpint (x->kind, ==, y->kind);
      g_assert_cmpmem (x->text, x->length, y->text, y->length);
      g_assert_cmpstr (x->command, ==, y->command);
      g_assert_cmpuint (x->offset, ==, y->offset);
      g_assert_cmpuint (x->end_offset, ==, y->end_offset);
      g_assert_cmpint (x->line, ==, y->line);
      g_assert_cmpint (x->column, ==, y->column);
      g_assert_cmpint (x->end, ==, y->end);
      g_assert_cmpint (x->complete, ==, y->complete);
      g_assert_cmpint (x->empty, ==, y->empty);
      for (int pos = 1; pos <= (int)x->length + 1; pos += 3)
        {
          int lx, cx, ly, cy;
          g_assert_cmpuint (tusk_sql_piece_locate (x, pos, &lx, &cx), ==,
                            tusk_sql_piece_locate (y, pos, &ly, &cy));
          g_assert_cmpint (lx, ==, ly);
          g_assert_cmpint (cx, ==, cy);
        }
    }
}

/* Feeds @script to a scanner in chunks of random sizes. */
static GPtrArray *
split_in_chunks (const char *script, gsize len, GRand *rand)
{
  g_autoptr (TuskSqlScanner) scanner = tusk_sql_scanner_new ();
  GPtrArray *all
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_sql_piece_free);
  gsize at = 0;
  while (at < len)
    {
      gsize n = g_rand_int_range (rand, 0, 12);
      n = MIN (n, len - at);
      GPtrArray *out = tusk_sql_scanner_feed (scanner, script + at, n);
      g_ptr_array_extend_and_steal (all, out);
      at += n;
    }
  g_ptr_array_extend_and_steal (all, tusk_sql_scanner_finish (scanner));
  return all;
}

static const char *const fragments[] = {
  "'",
  "''",
  "\"",
  "$",
  "$$",
  "$a$",
  "$1",
  "E'",
  "e'\\'",
  "U&'",
  "U&\"",
  "u&",
  "B'",
  "N'",
  "/*",
  "*/",
  "--",
  "\\",
  "\\\\",
  "\\;",
  "\\:",
  ";",
  ";",
  "(",
  ")",
  "\n",
  "\n",
  "\n\n",
  " ",
  "\t",
  "\r\n",
  "BEGIN",
  " END",
  "CASE ",
  "CREATE FUNCTION f() ",
  "create or replace procedure ",
  "ATOMIC",
  "\\g",
  "\\gx ",
  "\\set x 'a b'",
  "\\r",
  "\\! ls",
  "\n\\.\n",
  "COPY t FROM stdin",
  "\\copy t from stdin",
  "SELECT 1",
  "x",
  "1.5e3",
  "::",
  ":v",
  "\xff",
  "\xc3",
  "\xc3\xa9",
  "\xe2\x82\xac",
  "\xf0\x9f\x90\x98",
  "-",
  "*",
  "/",
  "`",
};

static void
test_robust (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20240611);
  for (int round = 0; round < 3000; round++)
    {
      g_autoptr (GString) script = g_string_new (NULL);
      int n = g_rand_int_range (rand, 0, 60);
      for (int i = 0; i < n; i++)
        {
          const char *f
              = fragments[g_rand_int_range (rand, 0, G_N_ELEMENTS (fragments))];
          g_string_append (script, f);
        }
      if (g_rand_int_range (rand, 0, 10) == 0)
        g_string_insert_c (script, g_rand_int_range (rand, 0, script->len + 1),
                           '\0');
      g_autoptr (GPtrArray) whole = tusk_sql_split (script->str, script->len);
      check_consistent (script->str, script->len, whole);
      g_autoptr (GPtrArray) chunked
          = split_in_chunks (script->str, script->len, rand);
      assert_same_pieces (whole, chunked, script->str, script->len);
    }
}

/* Linear time: megabytes split in well under a second (a quadratic
 * splitter would take minutes). */
static void
test_large (void)
{
  const char *unit = "SELECT 'a;b', $$c;d$$, \"e;f\" /* g; */ -- h;\n"
                     "  FROM t WHERE x = E'\\';';\n";
  g_autoptr (GString) script = g_string_new (NULL);
  while (script->len < 8 * 1024 * 1024)
    g_string_append (script, unit);
  /* and one statement of 8 MiB */
  g_autoptr (GString) one = g_string_new ("SELECT ");
  while (one->len < 8 * 1024 * 1024)
    g_string_append (one, "'x', 1 + 2,\n");
  g_string_append (one, "3");

  gint64 start = g_get_monotonic_time ();
  g_autoptr (GPtrArray) many = tusk_sql_split (script->str, script->len);
  g_autoptr (GPtrArray) single = tusk_sql_split (one->str, one->len);
  gint64 took = g_get_monotonic_time () - start;
  g_test_message ("split 16 MiB in %" G_GINT64_FORMAT " ms", took / 1000);
  g_assert_cmpuint (many->len, ==, script->len / strlen (unit));
  g_assert_cmpuint (single->len, ==, 1);
  g_assert_cmpuint (piece_at (single, 0)->length, ==, one->len);
  g_assert_cmpint (took, <, 20 * G_USEC_PER_SEC);
  int line;
  tusk_sql_piece_locate (piece_at (single, 0), one->len, &line, NULL);
  g_assert_cmpint (line, ==, (int)(one->len / 12) + 1);
}

/* ---- the corpus, against psql
 * ------------------------------------------------ */

#define PSQL_DEFAULT "/usr/lib/postgresql/15/bin/psql"
#define LOG_START    "********* QUERY **********\n"
#define LOG_END      "\n**************************\n\n"

static char *
conninfo (const char *dbname)
{
  return g_strdup_printf (
      "host=%s port=%s user=%s dbname=%s client_encoding=UTF8",
      tusk_test_env ("TUSK_TEST_PGSOCKET"), tusk_test_env ("TUSK_TEST_PGPORT"),
      tusk_test_env ("TUSK_TEST_PGUSER_TRUST"), dbname);
}

static void
ignore_notice (void *data, const char *message)
{
  (void)data;
  g_test_message ("notice: %s", message);
}

static PGconn *
connect_to (const char *dbname)
{
  g_autofree char *info = conninfo (dbname);
  PGconn *conn = PQconnectdb (info);
  if (PQstatus (conn) != CONNECTION_OK)
    g_error ("cannot connect to %s: %s", dbname, PQerrorMessage (conn));
  PQsetNoticeProcessor (conn, ignore_notice, NULL);
  return conn;
}

static void
exec_ok (PGconn *conn, const char *sql)
{
  PGresult *res = PQexec (conn, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK)
    g_error ("%s: %s", sql, PQerrorMessage (conn));
  PQclear (res);
}

/* A fresh, empty database named @name. */
static void
recreate_database (const char *name)
{
  PGconn *admin = connect_to (tusk_test_env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *drop = g_strdup_printf ("DROP DATABASE IF EXISTS %s", name);
  g_autofree char *create
      = g_strdup_printf ("CREATE DATABASE %s TEMPLATE template0 ENCODING "
                         "'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'",
                         name);
  exec_ok (admin, drop);
  exec_ok (admin, create);
  PQfinish (admin);
}

/* What psql does with @file on database @db: the statements it sent (from
 * its -L log), what it printed (unaligned, tuples only) and its errors. */
static void
run_psql (const char *file, const char *db, GPtrArray **sent, char **printed,
          int *errors)
{
  const char *psql = g_getenv ("TUSK_TEST_PSQL");
  if (psql == NULL)
    psql = PSQL_DEFAULT;
  g_autofree char *dir = g_dir_make_tmp ("tusk-split-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_autofree char *log = g_build_filename (dir, "psql.log", NULL);
  const char *argv[] = { psql,
                         "-X",
                         "-q",
                         "-A",
                         "-t",
                         "-v",
                         "ON_ERROR_STOP=0",
                         "-h",
                         tusk_test_env ("TUSK_TEST_PGSOCKET"),
                         "-p",
                         tusk_test_env ("TUSK_TEST_PGPORT"),
                         "-U",
                         tusk_test_env ("TUSK_TEST_PGUSER_TRUST"),
                         "-d",
                         db,
                         "-L",
                         log,
                         "-f",
                         file,
                         NULL };
  g_auto (GStrv) env = g_get_environ ();
  const char *unset[]
      = { "PGHOST",    "PGPORT", "PGUSER",   "PGDATABASE", "PGOPTIONS",
          "PGSERVICE", "PSQLRC", "LANGUAGE", "PSQL_PAGER" };
  for (guint i = 0; i < G_N_ELEMENTS (unset); i++)
    env = g_environ_unsetenv (env, unset[i]);
  env = g_environ_setenv (env, "LC_ALL", "C.UTF-8", TRUE);
  env = g_environ_setenv (env, "PGCLIENTENCODING", "UTF8", TRUE);

  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_spawn_sync (NULL, (char **)argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out,
                &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("psql -f %s failed: %s\n%s", file, error->message, err);

  g_autofree char *contents = NULL;
  g_file_get_contents (log, &contents, NULL, &error);
  g_assert_no_error (error);
  *sent = g_ptr_array_new_with_free_func (g_free);
  const char *at = contents;
  while ((at = strstr (at, LOG_START)) != NULL)
    {
      at += strlen (LOG_START);
      const char *end = strstr (at, LOG_END);
      g_assert_nonnull (end);
      g_ptr_array_add (*sent, g_strndup (at, end - at));
      at = end + strlen (LOG_END);
    }

  *errors = 0;
  for (const char *e = err; (e = strstr (e, "ERROR:  ")) != NULL; e++)
    (*errors)++;
  *printed = g_steal_pointer (&out);
  g_test_message ("psql stderr:\n%s", err);
  g_unlink (log);
  g_rmdir (dir);
}

static void
append_rows (GString *out, PGresult *res)
{
  for (int r = 0; r < PQntuples (res); r++)
    {
      for (int c = 0; c < PQnfields (res); c++)
        {
          if (c > 0)
            g_string_append_c (out, '|');
          g_string_append (out, PQgetvalue (res, r, c));
        }
      g_string_append_c (out, '\n');
    }
}

/* Runs @pieces on database @db as psql would, printing what psql -A -t
 * prints; counts the errors. */
static char *
run_pieces (GPtrArray *pieces, const char *db, int *errors)
{
  PGconn *conn = connect_to (db);
  GString *out = g_string_new (NULL);
  gboolean stop_on_error = FALSE;
  *errors = 0;
  for (guint i = 0; i < pieces->len; i++)
    {
      const TuskSqlPiece *piece = pieces->pdata[i];
      if (piece->kind == TUSK_SQL_META)
        {
          g_auto (GStrv) words = g_strsplit_set (piece->text, " \t", -1);
          const char *cmd = piece->command;
          if (g_str_equal (cmd, "set") && words[1] != NULL
              && g_str_equal (words[1], "ON_ERROR_STOP"))
            stop_on_error = words[2] != NULL
                            && (g_str_equal (words[2], "on")
                                || g_str_equal (words[2], "1"));
          else if (g_str_equal (cmd, "g"))
            g_assert_true (
                i > 0 && piece_at (pieces, i - 1)->end == TUSK_SQL_END_META);
          else if (!g_str_equal (cmd, "set") && !g_str_equal (cmd, "unset")
                   && !g_str_equal (cmd, "r"))
            g_error ("the corpus uses \\%s, which this test cannot replay",
                     cmd);
          continue;
        }
      g_assert_cmpint (piece->kind, ==, TUSK_SQL_STATEMENT);
      g_assert_cmpint (PQsendQuery (conn, piece->text), ==, 1);
      gboolean failed = FALSE;
      PGresult *res;
      while ((res = PQgetResult (conn)) != NULL)
        {
          switch (PQresultStatus (res))
            {
              case PGRES_TUPLES_OK:
                append_rows (out, res);
                break;
              case PGRES_COPY_IN:
                {
                  g_assert_cmpuint (i + 1, <, pieces->len);
                  const TuskSqlPiece *data = piece_at (pieces, ++i);
                  g_assert_cmpint (data->kind, ==, TUSK_SQL_COPY_DATA);
                  g_assert_cmpint (
                      PQputCopyData (conn, data->text, data->length), ==, 1);
                  g_assert_cmpint (PQputCopyEnd (conn, NULL), ==, 1);
                  break;
                }
              case PGRES_COPY_OUT:
                {
                  char *buf;
                  int n;
                  while ((n = PQgetCopyData (conn, &buf, FALSE)) > 0)
                    {
                      g_string_append_len (out, buf, n);
                      PQfreemem (buf);
                    }
                  break;
                }
              case PGRES_FATAL_ERROR:
                failed = TRUE;
                (*errors)++;
                g_test_message ("error in [%s]: %s", piece->text,
                                PQresultErrorMessage (res));
                break;
              default:
                break;
            }
          PQclear (res);
        }
      if (failed && stop_on_error)
        break;
    }
  PQfinish (conn);
  return g_string_free (out, FALSE);
}

static void
test_corpus (gconstpointer data)
{
  const char *file = data;
  g_autofree char *script = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  g_file_get_contents (file, &script, &len, &error);
  g_assert_no_error (error);

  recreate_database ("split_psql");
  recreate_database ("split_tusk");

  g_autoptr (GPtrArray) sent = NULL;
  g_autofree char *psql_out = NULL;
  int psql_errors = 0;
  run_psql (file, "split_psql", &sent, &psql_out, &psql_errors);

  g_autoptr (GPtrArray) pieces = tusk_sql_split (script, len);
  check_consistent (script, len, pieces);
  g_autoptr (GPtrArray) statements = g_ptr_array_new ();
  for (guint i = 0; i < pieces->len; i++)
    if (piece_at (pieces, i)->kind == TUSK_SQL_STATEMENT)
      g_ptr_array_add (statements, piece_at (pieces, i)->text);

  /* The same statements, byte for byte. */
  for (guint i = 0; i < MAX (sent->len, statements->len); i++)
    {
      const char *theirs = i < sent->len ? sent->pdata[i] : "(nothing)";
      const char *ours
          = i < statements->len ? statements->pdata[i] : "(nothing)";
      if (strcmp (theirs, ours) != 0)
        g_error ("%s: statement %u differs\npsql sent:\n[%s]\nwe have:\n[%s]",
                 file, i + 1, theirs, ours);
    }
  g_assert_cmpuint (statements->len, ==, sent->len);
  g_assert_cmpuint (statements->len, >, 3);

  /* The same results. */
  int our_errors = 0;
  g_autofree char *our_out = run_pieces (pieces, "split_tusk", &our_errors);
  g_assert_cmpstr (our_out, ==, psql_out);
  g_assert_cmpint (our_errors, ==, psql_errors);
  g_test_message ("%s: %u statements, %d errors", file, statements->len,
                  psql_errors);
}

static void
test_corpus_missing (void)
{
  tusk_test_env ("TUSK_TEST_SOURCE_DIR");
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* One test per tests/sql-split/NN-name.sql. */
static void
add_corpus_tests (void)
{
  const char *src = g_getenv ("TUSK_TEST_SOURCE_DIR");
  if (src == NULL)
    {
      g_test_add_func ("/tusk/sql-split/corpus", test_corpus_missing);
      return;
    }
  g_autofree char *dir = g_build_filename (src, "tests", "sql-split", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".sql"))
      g_ptr_array_add (names, g_strdup (name));
  if (names->len < 10)
    g_error ("%s holds %u scripts, fewer than 10", dir, names->len);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = names->pdata[i];
      g_autofree char *base = g_strndup (n, strlen (n) - 4);
      g_autofree char *path
          = g_strdup_printf ("/tusk/sql-split/corpus/%s", base);
      g_test_add_data_func_full (path, g_build_filename (dir, n, NULL),
                                 test_corpus, g_free);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tusk/sql-split/basic", test_basic);
  g_test_add_func ("/tusk/sql-split/empty-statements", test_empty_statements);
  g_test_add_func ("/tusk/sql-split/strings", test_strings);
  g_test_add_func ("/tusk/sql-split/identifiers", test_identifiers);
  g_test_add_func ("/tusk/sql-split/dollar-quotes", test_dollar_quotes);
  g_test_add_func ("/tusk/sql-split/comments", test_comments);
  g_test_add_func ("/tusk/sql-split/parens", test_parens);
  g_test_add_func ("/tusk/sql-split/begin-atomic", test_begin_atomic);
  g_test_add_func ("/tusk/sql-split/meta", test_meta);
  g_test_add_func ("/tusk/sql-split/meta-in-statement", test_meta_in_statement);
  g_test_add_func ("/tusk/sql-split/lines", test_lines);
  g_test_add_func ("/tusk/sql-split/unterminated", test_unterminated);
  g_test_add_func ("/tusk/sql-split/copy", test_copy);
  g_test_add_func ("/tusk/sql-split/positions", test_positions);
  g_test_add_func ("/tusk/sql-split/scanner-continuation",
                   test_scanner_continuation);
  g_test_add_func ("/tusk/sql-split/robust", test_robust);
  g_test_add_func ("/tusk/sql-split/large", test_large);
  add_corpus_tests ();
  return g_test_run ();
}
