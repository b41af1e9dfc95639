/* tusk-print.h: the shell's output formats — query results streamed to a
 * FILE as they arrive, and errors printed the way psql prints them.
 *
 * Thread rules: a TuskPrinter has a single owner and is used from one
 * thread (the shell's main thread, from the query stream's callbacks).
 * Nothing here touches the network or libtusk's state.
 */
#pragma once

#include <stdio.h>

#include <tusk.h>

G_BEGIN_DECLS

typedef enum
{
  TUSK_FORMAT_TABLE,     /* aligned like psql's default output */
  TUSK_FORMAT_CSV,       /* RFC 4180 with a header: byte-identical to
                            psql --csv */
  TUSK_FORMAT_JSON,      /* one array of objects per result */
  TUSK_FORMAT_NDJSON,    /* one object per line */
  TUSK_FORMAT_MARKDOWN,  /* a GitHub-flavoured Markdown table */
  TUSK_FORMAT_UNALIGNED, /* psql -A: fields joined by the separator */
} TuskFormat;

/* Parses "table", "csv", "json", "ndjson", "markdown", "unaligned" (and
 * psql's "aligned" for table); FALSE with TUSK_ERROR_VALIDATION naming the
 * accepted values otherwise. */
gboolean tusk_format_from_string (const char *text, TuskFormat *format,
                                  GError **error);
const char *tusk_format_to_string (TuskFormat format);

/* What the shell's settings say about printing; plain data, copied by the
 * printer. */
typedef struct
{
  TuskFormat format;
  gboolean expanded;           /* \x: one record per block (table, unaligned)*/
  gboolean tuples_only;        /* psql -t: no header, no footer */
  const char *null_display;    /* how NULL shows in table, unaligned and
                                  markdown; "" by default, as psql */
  const char *field_separator; /* unaligned; "|" by default */
} TuskPrintOptions;

void tusk_print_options_init (TuskPrintOptions *options);

typedef struct TuskPrinter TuskPrinter;

/* Returns (transfer full) a printer writing to @out (borrowed; must outlive
 * the printer).  One printer prints one statement's result. */
TuskPrinter *tusk_printer_new (const TuskPrintOptions *options, FILE *out);
void tusk_printer_free (TuskPrinter *printer);

/* The stream's events, in order: columns once (not for a command), then
 * every batch, then end with the final result (its command tag, rows and
 * notices) or not at all after an error (what was printed stays).  Each
 * returns FALSE with a TUSK_ERROR_INTERNAL error naming the file problem
 * when writing failed (a full disk, a closed pipe): the caller cancels the
 * query.
 *
 * Table format keeps memory bounded: the widths come from the first batch
 * and grow with later ones (psql's FETCH_COUNT behaviour), so the first
 * rows appear before the query ends.  The footer is "(N rows)" for rows,
 * the command tag for a command, as psql. */
gboolean tusk_printer_begin (TuskPrinter *printer, const GPtrArray *columns,
                             GError **error);
gboolean tusk_printer_add_batch (TuskPrinter *printer, TuskRowBatch *batch,
                                 GError **error);
gboolean tusk_printer_end (TuskPrinter *printer, const TuskQueryResult *result,
                           GError **error);

/**
 * tusk_print_error:
 * @out: where to print (stderr)
 * @error: any error from libtusk
 * @sql: (nullable): the statement that failed, for psql's "LINE n:"
 *   excerpt with a caret under the error's position
 * @format: TUSK_FORMAT_JSON and NDJSON print one JSON object per error
 *   (category, message, detail, hint, sqlstate, position, line, column);
 *   the others print psql's text form:
 *     ERROR:  relation "nope" does not exist
 *     LINE 1: SELECT * FROM nope
 *                           ^
 *     DETAIL: …  HINT: …
 *   prefixed by the category when it is not a query error.
 */
void tusk_print_error (FILE *out, const GError *error, const char *sql,
                       TuskFormat format);

/* Prints a server NOTICE/WARNING as psql does ("NOTICE:  text"). */
void tusk_print_notice (FILE *out, const TuskNotice *notice);

/* Added for the shell core (issue 8). */

/* A title printed above the next result (psql's "List of relations"):
 * centered over the table in table format, a line of its own in unaligned
 * and expanded output, left out by csv, json, ndjson and markdown and with
 * tuples_only.  Copied; NULL for none. */
void tusk_printer_set_title (TuskPrinter *printer, const char *title);

/* Points the printer at another FILE from now on (the shell's pager
 * decision: the first rows go to a memory buffer, then to the terminal or
 * the pager).  @out is borrowed and must outlive the printer. */
void tusk_printer_set_output (TuskPrinter *printer, FILE *out);

/* Rows printed so far (all results since the printer was made). */
guint64 tusk_printer_get_n_rows (TuskPrinter *printer);

/* Where a failed statement sits in its script, for tusk_print_error_at().
 * Plain data, borrowed. */
typedef struct
{
  const char *source; /* nullable: the script's name ("s.sql", "<stdin>");
                         text errors then start "tusk:SOURCE:LINE: " as
                         psql's start "psql:SOURCE:LINE: " */
  int line;           /* that LINE: the script line where the statement
                         ends, as psql counts */
  int error_line;     /* the script line and column (1-based characters) of
                         the error's position, or of the statement's start;
                         0 = count them in @sql */
  int error_column;
} TuskErrorLocation;

/* tusk_print_error() with the statement's place in its script (nullable:
 * as tusk_print_error()).  JSON objects then also carry "source", and
 * "line"/"column" are script coordinates. */
void tusk_print_error_at (FILE *out, const GError *error, const char *sql,
                          TuskFormat format, const TuskErrorLocation *location);

/* tusk_print_notice() with psql's "tusk:SOURCE:LINE: " prefix when
 * @location (nullable) has a source. */
void tusk_print_notice_at (FILE *out, const TuskNotice *notice,
                           const TuskErrorLocation *location);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskPrinter, tusk_printer_free)

G_END_DECLS
