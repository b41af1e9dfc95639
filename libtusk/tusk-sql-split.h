/* tusk-sql-split.h: splits SQL scripts into statements exactly as psql 15
 * does with `psql -f`, and maps server error positions back to the script.
 *
 * The lexer mirrors psql's (src/fe_utils/psqlscan.l, PostgreSQL 15): '…'
 * with '' doubling and backslash taken literally (standard_conforming_strings
 * on), E'…' with backslash escapes, N'…', B'…', X'…', U&'…', "…" and U&"…"
 * identifiers, $tag$…$tag$ (a tag never starts with a digit: $1 is a
 * parameter), -- comments, nested block comments, parentheses (a ';' inside
 * them does not end a statement), and the bodies of CREATE [OR REPLACE]
 * FUNCTION/PROCEDURE … BEGIN ATOMIC … END (psql's begin_depth heuristic,
 * CASE … END included).  Like psql, it reads the script line by line (lines
 * end at '\n'), so a string continued on the next line ('a'\n'b') is two
 * strings to it.
 *
 * What a STATEMENT's text is: byte for byte what psql 15 sends to the server
 * for it, including the terminating ';'.  That is the script from the first
 * token (leading white space and -- comments are dropped, a leading block
 * comment is kept) through the ';', with three psql edits: blank lines
 * outside quotes and comments are dropped, backslash commands met inside a
 * statement are cut out (and, when one fills its line, the line break before
 * it), and "\;" becomes ";" (several statements sent as one string).  A lone
 * ";" is a statement too (psql sends it; the server answers with an empty
 * query): such pieces, and comment-only ones, are flagged `empty`.  psql
 * variables (:name, :'name') are not interpolated.
 *
 * Backslash commands (META pieces): a backslash outside quotes and comments
 * starts one anywhere on a line.  It runs to the end of the line, or to the
 * next unquoted backslash (where the next command starts), or through "\\"
 * (after which SQL resumes on the same line); \copy, \!, \h, \help, \ef, \ev,
 * \sf, \sv and an argument starting with '|' take the rest of the line.  The
 * splitter interprets only what changes the split:
 *   - \g, \gx, \gset, \gexec, \gdesc, \crosstabview and \watch end the
 *     pending statement (its `end` is TUSK_SQL_END_META and the META piece
 *     follows it).  With no pending statement, psql re-sends the previous one;
 *     that is the caller's business.
 *   - \r and \reset discard the pending statement.
 *   - any other command inside a statement is returned at once, before the
 *     statement it interrupts (psql runs it first), and the statement goes on.
 * Conditionals (\if, \elif, \else, \endif) are returned like any other
 * command; the splitter does not evaluate them.
 *
 * COPY … FROM STDIN and \copy … from stdin: the lines that follow, up to a
 * line "\." (or the end of the input), are one COPY_DATA piece, placed right
 * after the statement.  Whatever followed the COPY's ';' on its line is
 * scanned after the data, as psql does.  This is lexical: a COPY the server
 * rejects has no data phase in psql, and its data lines then run as SQL; a
 * caller that gets an error from the COPY should skip the data piece.
 *
 * Robustness: any byte string is accepted (invalid UTF-8, NUL bytes); the
 * work is linear in the input (times the dollar-quote tag length inside
 * dollar quotes).  Input that ends inside a quote, comment, dollar quote,
 * parentheses or BEGIN ATOMIC body gives a last piece with complete = FALSE;
 * psql sends it all the same.
 *
 * Thread rules: tusk_sql_split() and the piece functions are pure and may be
 * called from any thread; a TuskSqlScanner has a single owner.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  TUSK_SQL_STATEMENT, /* SQL to send */
  TUSK_SQL_META,      /* a psql backslash command */
  TUSK_SQL_COPY_DATA, /* the rows of a COPY … FROM STDIN */
} TuskSqlKind;

/* What ended a STATEMENT.  META and COPY_DATA pieces have
 * TUSK_SQL_END_INPUT when the input ran out on them and TUSK_SQL_END_LINE
 * otherwise. */
typedef enum
{
  TUSK_SQL_END_SEMICOLON, /* its ';' */
  TUSK_SQL_END_META,      /* a \g-like command: the next piece */
  TUSK_SQL_END_INPUT,     /* the end of the input */
  TUSK_SQL_END_LINE,      /* META and COPY_DATA: the end of their line(s) */
} TuskSqlEnd;

/**
 * TuskSqlPiece:
 *
 * One statement, backslash command or block of COPY data.  Plain data owned
 * by the struct; free with tusk_sql_piece_free().  A value: any number of
 * threads may read one that none modifies.
 *
 * Offsets, lines and columns refer to the whole script (for a
 * TuskSqlScanner: to everything fed since it was created or last finished).
 * Lines and columns are 1-based; columns count characters (UTF-8 lead
 * bytes, so a stray byte counts as one), a tab counts as one.
 */
typedef struct
{
  TuskSqlKind kind;
  /* STATEMENT: what psql sends, with its ';'.  META: the command line from
   * the backslash, trailing white space removed ("\set x 1").  COPY_DATA:
   * the data lines with their line breaks, without the "\." line.  Always
   * NUL-terminated; may hold NUL bytes when the script did. */
  char *text;
  gsize length;     /* of text, in bytes */
  char *command;    /* META: the name without the backslash ("set", "d+",
                       "" for a lone backslash); NULL otherwise */
  gsize offset;     /* of the piece's first byte in the script */
  gsize end_offset; /* just past its last byte (after the ';') */
  int line;         /* of offset */
  int column;       /* of offset */
  TuskSqlEnd end;
  /* FALSE when the input ended inside a quote, comment, dollar quote,
   * parentheses, BEGIN ATOMIC body, backslash-command argument in quotes or
   * COPY data without "\.", or when a \g-like command sent it from inside
   * parentheses or a body. */
  gboolean complete;
  /* STATEMENT only: nothing but comments, white space and ';' — the server
   * answers an empty query. */
  gboolean empty;
  /*< private >*/
  GArray *segments; /* where each run of text comes from in the script */
} TuskSqlPiece;

TuskSqlPiece *tusk_sql_piece_copy (const TuskSqlPiece *piece);
void tusk_sql_piece_free (TuskSqlPiece *piece);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSqlPiece, tusk_sql_piece_free)

/* Maps @position, a 1-based character position in @piece's text as
 * PostgreSQL reports it in an error, to the script: sets *@line and *@column
 * (either may be NULL) and returns the byte offset in the script.  Positions
 * below 1 mean the piece's first character; positions past the end mean the
 * place just after its last one.  Accounts for the parts psql cut out. */
gsize tusk_sql_piece_locate (const TuskSqlPiece *piece, int position, int *line,
                             int *column);

/* Splits @script (@length bytes, or NUL-terminated when -1) into pieces in
 * the order psql executes them.  Returns (transfer full) an array of
 * TuskSqlPiece that frees its elements; empty for an empty or blank
 * script. */
GPtrArray *tusk_sql_split (const char *script, gssize length);

/**
 * TuskSqlContinuation:
 *
 * Where a scanner stands between two lines: what psql shows in its prompt
 * (%R; tusk_sql_continuation_symbol()).
 */
typedef enum
{
  TUSK_SQL_CONTINUATION_NONE,         /* nothing pending: "=" */
  TUSK_SQL_CONTINUATION_STATEMENT,    /* a statement goes on: "-" */
  TUSK_SQL_CONTINUATION_SINGLE_QUOTE, /* inside '…': "'" */
  TUSK_SQL_CONTINUATION_DOUBLE_QUOTE, /* inside "…": "\"" */
  TUSK_SQL_CONTINUATION_DOLLAR_QUOTE, /* inside $tag$…: "$" */
  TUSK_SQL_CONTINUATION_COMMENT,      /* inside a block comment: "*" */
  TUSK_SQL_CONTINUATION_PAREN,        /* inside parentheses: "(" */
  TUSK_SQL_CONTINUATION_COPY_DATA,    /* reading COPY data: ">>" */
} TuskSqlContinuation;

/* psql's prompt symbol for @continuation ("=", "-", "'", …); static. */
const char *tusk_sql_continuation_symbol (TuskSqlContinuation continuation);

/**
 * TuskSqlScanner:
 *
 * The same splitter fed piece by piece, for an interactive shell: feed each
 * line as it is typed (with its '\n'), run the pieces that come back, and
 * prompt according to tusk_sql_scanner_get_continuation().  Opaque; single
 * owner; free with tusk_sql_scanner_free().
 */
typedef struct _TuskSqlScanner TuskSqlScanner;

TuskSqlScanner *tusk_sql_scanner_new (void);
void tusk_sql_scanner_free (TuskSqlScanner *scanner);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSqlScanner, tusk_sql_scanner_free)

/* Appends @text (@length bytes, or NUL-terminated when -1) to the input and
 * returns (transfer full) the pieces it completed, possibly none.  Text is
 * scanned a whole line at a time: a last line without its '\n' waits for
 * more input or for tusk_sql_scanner_finish(). */
GPtrArray *tusk_sql_scanner_feed (TuskSqlScanner *scanner, const char *text,
                                  gssize length);

/* Ends the input: returns (transfer full) what was still pending — a last
 * statement without ';' (psql runs it), COPY data without "\." — and resets
 * @scanner to its new state (offsets start again at 0, line 1). */
GPtrArray *tusk_sql_scanner_finish (TuskSqlScanner *scanner);

/* Forgets any pending statement and lexer state, as psql's \r does, keeping
 * the offsets. */
void tusk_sql_scanner_reset (TuskSqlScanner *scanner);

/* Where @scanner stands after the complete lines fed so far. */
TuskSqlContinuation
tusk_sql_scanner_get_continuation (const TuskSqlScanner *scanner);

G_END_DECLS
