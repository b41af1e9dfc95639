/* tusk-print.c: the shell's output formats, streamed batch by batch, and
 * errors printed the way psql prints them.
 *
 * Table output follows psql's aligned format with its default settings
 * (border 1, linestyle ascii): headers centered, numbers right-aligned by
 * type, control characters shown as psql shows them (\r, \xNN, tabs to the
 * next multiple of 8), "+" at the end of a line continued by a newline in
 * the value.  psql measures the whole result before printing; a stream
 * cannot, so the widths come from the first batch (1000 rows: the whole
 * result for most queries, so the output is psql's byte for byte) and
 * grow with later batches, as psql's own FETCH_COUNT output does.  Memory
 * stays bounded by one batch whatever the result's size.
 *
 * Every printing function checks the stream afterwards and reports a
 * failed write (full disk, closed pipe) as TUSK_ERROR_INTERNAL, so the
 * caller can cancel the query.
 */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-print.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* PostgreSQL type oids (pg_type.dat): those psql right-aligns, and those
 * JSON output writes as numbers, booleans or embedded JSON. */
enum
{
  OID_BOOL = 16,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_OID = 26,
  OID_XID = 28,
  OID_CID = 29,
  OID_JSON = 114,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_MONEY = 790,
  OID_NUMERIC = 1700,
  OID_JSONB = 3802,
  OID_XID8 = 5069,
};

static const struct
{
  const char *name;
  TuskFormat format;
} format_names[] = {
  { "table", TUSK_FORMAT_TABLE },
  { "aligned", TUSK_FORMAT_TABLE },
  { "csv", TUSK_FORMAT_CSV },
  { "json", TUSK_FORMAT_JSON },
  { "ndjson", TUSK_FORMAT_NDJSON },
  { "markdown", TUSK_FORMAT_MARKDOWN },
  { "unaligned", TUSK_FORMAT_UNALIGNED },
};

gboolean
tusk_format_from_string (const char *text, TuskFormat *format, GError **error)
{
  g_return_val_if_fail (format != NULL, FALSE);

  for (guint i = 0; text && i < G_N_ELEMENTS (format_names); i++)
    if (g_ascii_strcasecmp (text, format_names[i].name) == 0)
      {
        *format = format_names[i].format;
        return TRUE;
      }
  tusk_set_error (error, TUSK_ERROR_VALIDATION,
                  "Choose one of table, csv, json, ndjson, markdown, "
                  "unaligned",
                  "Unknown output format \"%s\"", text ? text : "");
  return FALSE;
}

const char *
tusk_format_to_string (TuskFormat format)
{
  for (guint i = 0; i < G_N_ELEMENTS (format_names); i++)
    if (format_names[i].format == format)
      return format_names[i].name;
  g_return_val_if_reached ("table");
}

void
tusk_print_options_init (TuskPrintOptions *options)
{
  *options = (TuskPrintOptions){ .format = TUSK_FORMAT_TABLE,
                                 .null_display = "",
                                 .field_separator = "|" };
}

/* ---- display width and psql's cell formatting ------------------------ */

/* One display line of a formatted cell: bytes [offset, offset + length)
 * of the format buffer, @width screen columns. */
typedef struct
{
  guint offset;
  guint length;
  guint width;
} Line;

/* Formats @text as psql's pg_wcsformat() does into @buf (cleared first),
 * one Line per display line into @lines (cleared first): '\n' ends a
 * line, '\r' shows as "\r", a tab becomes spaces up to the next multiple
 * of 8, other control characters show as "\xNN" (ASCII) or "\uNNNN"
 * (C1), invalid UTF-8 bytes as "\xNN"; wide characters count 2 columns
 * and combining ones 0.  Returns the widest line's width. */
static guint
format_cell (const char *text, GString *buf, GArray *lines)
{
  const guchar *p = (const guchar *)text;
  guint width = 0, widest = 0;
  Line line = { 0, 0, 0 };

  g_string_truncate (buf, 0);
  g_array_set_size (lines, 0);
  while (*p)
    {
      guchar c = *p;
      if (c < 0x80)
        {
          if (c == '\n')
            {
              line.length = buf->len - line.offset;
              line.width = width;
              g_array_append_val (lines, line);
              widest = MAX (widest, width);
              line.offset = buf->len;
              width = 0;
            }
          else if (c == '\r')
            {
              g_string_append (buf, "\\r");
              width += 2;
            }
          else if (c == '\t')
            do
              {
                g_string_append_c (buf, ' ');
                width++;
              }
            while (width % 8 != 0);
          else if (c < 0x20 || c == 0x7f)
            {
              g_string_append_printf (buf, "\\x%02X", c);
              width += 4;
            }
          else
            {
              g_string_append_c (buf, (char)c);
              width++;
            }
          p++;
          continue;
        }

      gunichar u = g_utf8_get_char_validated ((const char *)p, -1);
      if (u == (gunichar)-1 || u == (gunichar)-2)
        {
          g_string_append_printf (buf, "\\x%02X", c);
          width += 4;
          p++;
          continue;
        }
      const guchar *next = (const guchar *)g_utf8_next_char (p);
      if (u < 0xa0)
        {
          g_string_append_printf (buf, "\\u%04X", u);
          width += 6;
        }
      else
        {
          g_string_append_len (buf, (const char *)p, next - p);
          width += g_unichar_iszerowidth (u) ? 0 : g_unichar_iswide (u) ? 2 : 1;
        }
      p = next;
    }
  line.length = buf->len - line.offset;
  line.width = width;
  g_array_append_val (lines, line);
  return MAX (widest, width);
}

/* Screen width of @text without formatting it (psql's pg_wcssize()). */
static guint
display_width (const char *text, GString *scratch, GArray *lines,
               guint *n_lines)
{
  guint width = format_cell (text, scratch, lines);
  if (n_lines)
    *n_lines = lines->len;
  return width;
}

static void
put_spaces (FILE *out, guint n)
{
  static const char spaces[] = "                                ";
  while (n > 0)
    {
      guint k = MIN (n, sizeof spaces - 1);
      fwrite (spaces, 1, k, out);
      n -= k;
    }
}

static void
put_repeat (FILE *out, char c, guint n)
{
  for (guint i = 0; i < n; i++)
    fputc (c, out);
}

static gboolean
is_right_aligned (guint32 oid)
{
  switch (oid)
    {
      case OID_INT2:
      case OID_INT4:
      case OID_INT8:
      case OID_FLOAT4:
      case OID_FLOAT8:
      case OID_NUMERIC:
      case OID_OID:
      case OID_XID:
      case OID_XID8:
      case OID_CID:
      case OID_MONEY:
        return TRUE;
      default:
        return FALSE;
    }
}

static gboolean
is_json_number_type (guint32 oid)
{
  switch (oid)
    {
      case OID_INT2:
      case OID_INT4:
      case OID_INT8:
      case OID_OID:
      case OID_FLOAT4:
      case OID_FLOAT8:
      case OID_NUMERIC:
        return TRUE;
      default:
        return FALSE;
    }
}

/* Whether @text is a number in JSON's grammar (so NaN, Infinity and
 * anything odd are written as strings instead). */
static gboolean
is_json_number (const char *text)
{
  const char *p = text;
  if (*p == '-')
    p++;
  if (*p == '0')
    p++;
  else if (*p >= '1' && *p <= '9')
    while (g_ascii_isdigit (*p))
      p++;
  else
    return FALSE;
  if (*p == '.')
    {
      p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (g_ascii_isdigit (*p))
        p++;
    }
  if (*p == 'e' || *p == 'E')
    {
      p++;
      if (*p == '+' || *p == '-')
        p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (g_ascii_isdigit (*p))
        p++;
    }
  return *p == '\0';
}

/* Writes @text as a JSON string: quotes, backslashes and control
 * characters escaped, valid UTF-8 kept as it is, invalid bytes as
 * U+FFFD. */
static void
put_json_string (FILE *out, const char *text)
{
  const guchar *p = (const guchar *)text;

  fputc ('"', out);
  while (*p)
    {
      const guchar *run = p;
      while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
      if (p > run)
        fwrite (run, 1, p - run, out);
      if (*p == '\0')
        break;
      guchar c = *p;
      if (c >= 0x80)
        {
          gunichar u = g_utf8_get_char_validated ((const char *)p, -1);
          if (u == (gunichar)-1 || u == (gunichar)-2)
            {
              fputs ("\\ufffd", out);
              p++;
            }
          else
            {
              const guchar *next = (const guchar *)g_utf8_next_char (p);
              fwrite (p, 1, next - p, out);
              p = next;
            }
          continue;
        }
      switch (c)
        {
          case '"':
            fputs ("\\\"", out);
            break;
          case '\\':
            fputs ("\\\\", out);
            break;
          case '\b':
            fputs ("\\b", out);
            break;
          case '\f':
            fputs ("\\f", out);
            break;
          case '\n':
            fputs ("\\n", out);
            break;
          case '\r':
            fputs ("\\r", out);
            break;
          case '\t':
            fputs ("\\t", out);
            break;
          default:
            fprintf (out, "\\u%04x", c);
            break;
        }
      p++;
    }
  fputc ('"', out);
}

static void
put_json_string_or_null (FILE *out, const char *text)
{
  if (text)
    put_json_string (out, text);
  else
    fputs ("null", out);
}

/* ---- the printer ----------------------------------------------------- */

struct TuskPrinter
{
  TuskPrintOptions options; /* strings point into the fields below */
  char *null_display;
  char *field_separator;
  char *title; /* nullable; printed with the next result */
  FILE *out;   /* borrowed */

  /* The result being printed (between begin and end). */
  gboolean open;    /* columns announced */
  gboolean started; /* its header (or first record) printed */
  guint n_columns;
  char **names;    /* column names */
  gboolean *right; /* right-aligned (psql's rule) */
  guint32 *oids;
  guint *widths;         /* table: the current column widths */
  GArray **header_lines; /* table/expanded: each name formatted */
  GString **header_text;
  guint header_height; /* the most lines a name has */
  guint header_width;  /* expanded: the widest name */
  guint64 rows;        /* rows of this result printed */
  guint64 total_rows;  /* of every result */

  /* Scratch for formatting cells, one per column so that a row's cells
   * can be printed side by side. */
  GString **cell_text;
  GArray **cell_lines;
  guint *cell_line; /* the next line of each cell to print */
};

TuskPrinter *
tusk_printer_new (const TuskPrintOptions *options, FILE *out)
{
  g_return_val_if_fail (options != NULL && out != NULL, NULL);

  TuskPrinter *printer = g_new0 (TuskPrinter, 1);
  printer->options = *options;
  printer->null_display
      = g_strdup (options->null_display ? options->null_display : "");
  printer->field_separator
      = g_strdup (options->field_separator ? options->field_separator : "|");
  printer->options.null_display = printer->null_display;
  printer->options.field_separator = printer->field_separator;
  printer->out = out;
  return printer;
}

static void
close_columns (TuskPrinter *printer)
{
  for (guint i = 0; i < printer->n_columns; i++)
    {
      if (printer->header_lines)
        g_array_unref (printer->header_lines[i]);
      if (printer->header_text)
        g_string_free (printer->header_text[i], TRUE);
      if (printer->cell_text)
        g_string_free (printer->cell_text[i], TRUE);
      if (printer->cell_lines)
        g_array_unref (printer->cell_lines[i]);
    }
  g_clear_pointer (&printer->names, g_strfreev);
  g_clear_pointer (&printer->right, g_free);
  g_clear_pointer (&printer->oids, g_free);
  g_clear_pointer (&printer->widths, g_free);
  g_clear_pointer (&printer->header_lines, g_free);
  g_clear_pointer (&printer->header_text, g_free);
  g_clear_pointer (&printer->cell_text, g_free);
  g_clear_pointer (&printer->cell_lines, g_free);
  g_clear_pointer (&printer->cell_line, g_free);
  printer->n_columns = 0;
  printer->open = FALSE;
  printer->started = FALSE;
  printer->rows = 0;
}

void
tusk_printer_free (TuskPrinter *printer)
{
  if (printer == NULL)
    return;
  close_columns (printer);
  g_free (printer->null_display);
  g_free (printer->field_separator);
  g_free (printer->title);
  g_free (printer);
}

void
tusk_printer_set_title (TuskPrinter *printer, const char *title)
{
  g_return_if_fail (printer != NULL);
  g_free (printer->title);
  printer->title = g_strdup (title);
}

void
tusk_printer_set_output (TuskPrinter *printer, FILE *out)
{
  g_return_if_fail (printer != NULL && out != NULL);
  printer->out = out;
}

guint64
tusk_printer_get_n_rows (TuskPrinter *printer)
{
  g_return_val_if_fail (printer != NULL, 0);
  return printer->total_rows;
}

/* Reports a failed write on the printer's stream. */
static gboolean
check_output (TuskPrinter *printer, GError **error)
{
  if (!ferror (printer->out))
    return TRUE;
  int saved = errno;
  tusk_set_error (error, TUSK_ERROR_INTERNAL,
                  "Check the free disk space and the output file (\\o), or "
                  "write somewhere else",
                  "Could not write the output: %s",
                  g_strerror (saved ? saved : EIO));
  return FALSE;
}

static const char *
cell_value (TuskPrinter *printer, TuskRowBatch *batch, guint row, guint col)
{
  const char *value = tusk_row_batch_get_value (batch, row, col, NULL);
  return value ? value : printer->null_display;
}

/* ---- table (aligned) ------------------------------------------------- */

static guint
table_total_width (TuskPrinter *printer)
{
  guint total = printer->n_columns > 0 ? printer->n_columns * 3 - 1 : 0;
  for (guint i = 0; i < printer->n_columns; i++)
    total += printer->widths[i];
  return total;
}

static void
table_print_rule (TuskPrinter *printer)
{
  FILE *out = printer->out;
  fputc ('-', out);
  for (guint i = 0; i < printer->n_columns; i++)
    {
      put_repeat (out, '-', printer->widths[i]);
      if (i + 1 < printer->n_columns)
        fputs ("-+-", out);
    }
  fputs ("-\n", out);
}

static void
table_print_header (TuskPrinter *printer)
{
  FILE *out = printer->out;
  guint n = printer->n_columns;

  if (printer->title && !printer->options.tuples_only)
    {
      guint total = table_total_width (printer);
      g_autoptr (GString) scratch = g_string_new (NULL);
      g_autoptr (GArray) lines = g_array_new (FALSE, FALSE, sizeof (Line));
      guint width = display_width (printer->title, scratch, lines, NULL);
      if (width < total)
        put_spaces (out, (total - width) / 2);
      fprintf (out, "%s\n", printer->title);
    }
  if (printer->options.tuples_only)
    return;

  for (guint line = 0; line < printer->header_height; line++)
    {
      for (guint i = 0; i < n; i++)
        {
          GArray *lines = printer->header_lines[i];
          gboolean has_line = line < lines->len;
          fputc (' ', out);
          if (has_line)
            {
              Line *l = &g_array_index (lines, Line, line);
              guint spare = printer->widths[i] - l->width;
              put_spaces (out, spare / 2);
              fwrite (printer->header_text[i]->str + l->offset, 1, l->length,
                      out);
              put_spaces (out, (spare + 1) / 2);
            }
          else
            put_spaces (out, printer->widths[i]);
          /* "+" where the name goes on to the next line */
          fputc (has_line && line + 1 < lines->len ? '+' : ' ', out);
          if (i + 1 < n)
            fputc ('|', out);
        }
      fputc ('\n', out);
    }
  table_print_rule (printer);
}

/* Prints one row whose cells are formatted in printer->cell_*. */
static void
table_print_row (TuskPrinter *printer)
{
  FILE *out = printer->out;
  guint n = printer->n_columns;
  gboolean more;

  for (guint j = 0; j < n; j++)
    printer->cell_line[j] = 0;
  do
    {
      more = FALSE;
      for (guint j = 0; j < n; j++)
        {
          GArray *lines = printer->cell_lines[j];
          guint width = printer->widths[j];
          gboolean last = j + 1 == n;
          guint printed = width;

          fputc (' ', out);
          if (printer->cell_line[j] >= lines->len)
            {
              if (!last)
                put_spaces (out, width);
            }
          else
            {
              Line *l = &g_array_index (lines, Line, printer->cell_line[j]);
              printed = l->width;
              if (printer->right[j])
                put_spaces (out, width - printed);
              fwrite (printer->cell_text[j]->str + l->offset, 1, l->length,
                      out);
              printer->cell_line[j]++;
              if (printer->cell_line[j] < lines->len)
                more = TRUE;
            }
          gboolean continued
              = printer->cell_line[j] > 0 && printer->cell_line[j] < lines->len;
          if (!printer->right[j] && (!last || continued))
            put_spaces (out, width - printed);
          if (continued)
            fputc ('+', out);
          else if (!last)
            fputc (' ', out);
          if (!last)
            fputc ('|', out);
        }
      fputc ('\n', out);
    }
  while (more);
}

static void
table_add_batch (TuskPrinter *printer, TuskRowBatch *batch)
{
  guint n = printer->n_columns;
  guint n_rows = tusk_row_batch_get_n_rows (batch);

  /* Widths first: they only grow. */
  for (guint r = 0; r < n_rows; r++)
    for (guint j = 0; j < n; j++)
      {
        guint w = format_cell (cell_value (printer, batch, r, j),
                               printer->cell_text[j], printer->cell_lines[j]);
        printer->widths[j] = MAX (printer->widths[j], w);
      }
  if (!printer->started)
    {
      table_print_header (printer);
      printer->started = TRUE;
    }
  for (guint r = 0; r < n_rows; r++)
    {
      for (guint j = 0; j < n; j++)
        format_cell (cell_value (printer, batch, r, j), printer->cell_text[j],
                     printer->cell_lines[j]);
      table_print_row (printer);
    }
}

static void
print_rows_footer (TuskPrinter *printer)
{
  fprintf (printer->out,
           printer->rows == 1 ? "(%" G_GUINT64_FORMAT " row)\n"
                              : "(%" G_GUINT64_FORMAT " rows)\n",
           printer->rows);
}

static void
table_end (TuskPrinter *printer)
{
  if (!printer->started)
    {
      table_print_header (printer);
      printer->started = TRUE;
    }
  if (!printer->options.tuples_only)
    print_rows_footer (printer);
  fputc ('\n', printer->out);
}

/* ---- expanded (\x) --------------------------------------------------- */

static guint
n_digits (guint64 n)
{
  guint d = 1;
  while (n >= 10)
    {
      n /= 10;
      d++;
    }
  return d;
}

/* psql's print_aligned_vertical_line() for border 1. */
static void
expanded_print_rule (TuskPrinter *printer, guint64 record, guint hwidth,
                     guint dwidth)
{
  FILE *out = printer->out;
  int reclen = 0;

  fputc ('-', out);
  if (record)
    reclen = fprintf (out, "[ RECORD %" G_GUINT64_FORMAT " ]", record);
  if (reclen < 0)
    reclen = 0;
  reclen++;
  for (guint i = reclen; i < hwidth; i++)
    fputc ('-', out);
  reclen -= (int)hwidth;
  if (reclen-- <= 0)
    fputc ('-', out);
  if (reclen-- <= 0)
    fputc ('+', out);
  if (reclen-- <= 0)
    fputc ('-', out);
  if (reclen < 0)
    reclen = 0;
  for (guint i = reclen; i < dwidth; i++)
    fputc ('-', out);
  fputc ('\n', out);
}

static void
expanded_add_batch (TuskPrinter *printer, TuskRowBatch *batch)
{
  FILE *out = printer->out;
  guint n = printer->n_columns;
  guint n_rows = tusk_row_batch_get_n_rows (batch);
  guint hwidth = printer->header_width;
  guint dwidth = 0;
  gboolean dmultiline = FALSE;
  GString *text = printer->cell_text[0];
  GArray *lines = printer->cell_lines[0];

  if (n_rows == 0 || n == 0)
    return;
  for (guint r = 0; r < n_rows; r++)
    for (guint j = 0; j < n; j++)
      {
        guint w = format_cell (cell_value (printer, batch, r, j), text, lines);
        dwidth = MAX (dwidth, w);
        if (lines->len > 1)
          dmultiline = TRUE;
      }

  /* Make the data column at least as wide as the record lines need. */
  guint swidth = 3 + (dmultiline ? 1 : 0);
  guint rwidth = 0;
  if (!printer->options.tuples_only)
    rwidth = n_digits (printer->total_rows + n_rows) + 12;
  guint width = hwidth + swidth + dwidth;
  if (width < rwidth)
    width = rwidth;
  dwidth = width - hwidth - swidth;

  if (!printer->started)
    {
      if (printer->title && !printer->options.tuples_only)
        fprintf (out, "%s\n", printer->title);
    }

  for (guint r = 0; r < n_rows; r++)
    {
      if (!printer->options.tuples_only)
        expanded_print_rule (printer, printer->total_rows + r + 1, hwidth,
                             dwidth);
      else if (r != 0 || printer->started)
        expanded_print_rule (printer, 0, hwidth, dwidth);

      for (guint j = 0; j < n; j++)
        {
          GArray *hlines = printer->header_lines[j];
          GString *htext = printer->header_text[j];
          format_cell (cell_value (printer, batch, r, j), text, lines);
          guint hline = 0, dline = 0;
          gboolean hdone = FALSE, ddone = FALSE;

          while (!hdone || !ddone)
            {
              if (!hdone)
                {
                  Line *l = &g_array_index (hlines, Line, hline);
                  fwrite (htext->str + l->offset, 1, l->length, out);
                  put_spaces (out, hwidth - l->width);
                  if (hline + 1 < hlines->len)
                    {
                      fputc ('+', out);
                      hline++;
                    }
                  else
                    {
                      fputc (' ', out);
                      hdone = TRUE;
                    }
                }
              else
                put_spaces (out, hwidth + 1);
              fputc ('|', out);
              if (!ddone)
                {
                  Line *l = &g_array_index (lines, Line, dline);
                  fputc (' ', out);
                  fwrite (text->str + l->offset, 1, l->length, out);
                  if (dline + 1 < lines->len)
                    {
                      if (dmultiline)
                        {
                          put_spaces (out, dwidth - l->width);
                          fputc ('+', out);
                        }
                      dline++;
                    }
                  else
                    ddone = TRUE;
                }
              fputc ('\n', out);
            }
        }
    }
  printer->started = TRUE;
}

static void
expanded_end (TuskPrinter *printer)
{
  if (printer->rows == 0 && !printer->options.tuples_only)
    print_rows_footer (printer);
  fputc ('\n', printer->out);
}

/* ---- unaligned, csv, json, ndjson, markdown --------------------------- */

static void
put_csv_field (FILE *out, const char *text)
{
  if (strcspn (text, ",\r\n\"") == strlen (text) && strcmp (text, "\\.") != 0)
    {
      fputs (text, out);
      return;
    }
  fputc ('"', out);
  for (const char *p = text; *p; p++)
    {
      if (*p == '"')
        fputc ('"', out);
      fputc (*p, out);
    }
  fputc ('"', out);
}

static void
put_markdown_cell (FILE *out, const char *text)
{
  for (const char *p = text; *p; p++)
    {
      if (*p == '|')
        fputs ("\\|", out);
      else if (*p == '\r')
        {
          fputs ("<br>", out);
          if (p[1] == '\n')
            p++;
        }
      else if (*p == '\n')
        fputs ("<br>", out);
      else
        fputc (*p, out);
    }
}

static void
put_json_value (TuskPrinter *printer, const char *value, guint col)
{
  FILE *out = printer->out;
  guint32 oid = printer->oids[col];

  if (value == NULL)
    fputs ("null", out);
  else if (oid == OID_BOOL
           && (g_str_equal (value, "t") || g_str_equal (value, "f")))
    fputs (value[0] == 't' ? "true" : "false", out);
  else if ((oid == OID_JSON || oid == OID_JSONB) && *value)
    fputs (value, out);
  else if (is_json_number_type (oid) && is_json_number (value))
    fputs (value, out);
  else
    put_json_string (out, value);
}

static void
put_json_row (TuskPrinter *printer, TuskRowBatch *batch, guint row,
              const char *between)
{
  FILE *out = printer->out;
  fputc ('{', out);
  for (guint j = 0; j < printer->n_columns; j++)
    {
      if (j > 0)
        fputs (between, out);
      put_json_string (out, printer->names[j]);
      fputc (':', out);
      if (*between == ',' && between[1] == ' ')
        fputc (' ', out);
      put_json_value (printer, tusk_row_batch_get_value (batch, row, j, NULL),
                      j);
    }
  fputc ('}', out);
}

static void
simple_start (TuskPrinter *printer)
{
  FILE *out = printer->out;
  guint n = printer->n_columns;
  gboolean header = !printer->options.tuples_only;

  printer->started = TRUE;
  switch (printer->options.format)
    {
      case TUSK_FORMAT_UNALIGNED:
        if (header && printer->title)
          fprintf (out, "%s\n", printer->title);
        if (header && !printer->options.expanded)
          {
            for (guint j = 0; j < n; j++)
              {
                if (j > 0)
                  fputs (printer->field_separator, out);
                fputs (printer->names[j], out);
              }
            fputc ('\n', out);
          }
        break;
      case TUSK_FORMAT_CSV:
        if (header && !printer->options.expanded)
          {
            for (guint j = 0; j < n; j++)
              {
                if (j > 0)
                  fputc (',', out);
                put_csv_field (out, printer->names[j]);
              }
            fputc ('\n', out);
          }
        break;
      case TUSK_FORMAT_MARKDOWN:
        if (header)
          {
            fputc ('|', out);
            for (guint j = 0; j < n; j++)
              {
                fputc (' ', out);
                put_markdown_cell (out, printer->names[j]);
                fputs (" |", out);
              }
            fputs ("\n|", out);
            for (guint j = 0; j < n; j++)
              fputs (printer->right[j] ? "---:|" : "---|", out);
            fputc ('\n', out);
          }
        break;
      default:
        break;
    }
}

static void
simple_add_batch (TuskPrinter *printer, TuskRowBatch *batch)
{
  FILE *out = printer->out;
  guint n = printer->n_columns;
  guint n_rows = tusk_row_batch_get_n_rows (batch);
  gboolean expanded = printer->options.expanded;

  for (guint r = 0; r < n_rows; r++)
    {
      guint64 index = printer->rows + r;
      switch (printer->options.format)
        {
          case TUSK_FORMAT_UNALIGNED:
            if (expanded)
              {
                if (index > 0)
                  fputc ('\n', out);
                for (guint j = 0; j < n; j++)
                  fprintf (out, "%s%s%s\n", printer->names[j],
                           printer->field_separator,
                           cell_value (printer, batch, r, j));
              }
            else
              {
                for (guint j = 0; j < n; j++)
                  {
                    if (j > 0)
                      fputs (printer->field_separator, out);
                    fputs (cell_value (printer, batch, r, j), out);
                  }
                fputc ('\n', out);
              }
            break;
          case TUSK_FORMAT_CSV:
            for (guint j = 0; j < n; j++)
              {
                if (expanded)
                  {
                    put_csv_field (out, printer->names[j]);
                    fputc (',', out);
                    put_csv_field (out, cell_value (printer, batch, r, j));
                    fputc ('\n', out);
                  }
                else
                  {
                    if (j > 0)
                      fputc (',', out);
                    put_csv_field (out, cell_value (printer, batch, r, j));
                  }
              }
            if (!expanded)
              fputc ('\n', out);
            break;
          case TUSK_FORMAT_JSON:
            fputs (index == 0 ? "[\n  " : ",\n  ", out);
            put_json_row (printer, batch, r, ", ");
            break;
          case TUSK_FORMAT_NDJSON:
            put_json_row (printer, batch, r, ",");
            fputc ('\n', out);
            break;
          case TUSK_FORMAT_MARKDOWN:
            fputc ('|', out);
            for (guint j = 0; j < n; j++)
              {
                fputc (' ', out);
                put_markdown_cell (out, cell_value (printer, batch, r, j));
                fputs (" |", out);
              }
            fputc ('\n', out);
            break;
          case TUSK_FORMAT_TABLE:
          default:
            g_assert_not_reached ();
        }
    }
}

static void
simple_end (TuskPrinter *printer)
{
  FILE *out = printer->out;
  switch (printer->options.format)
    {
      case TUSK_FORMAT_UNALIGNED:
        if (!printer->options.tuples_only && !printer->options.expanded)
          print_rows_footer (printer);
        break;
      case TUSK_FORMAT_JSON:
        fputs (printer->rows > 0 ? "\n]\n" : "[]\n", out);
        break;
      case TUSK_FORMAT_MARKDOWN:
        fputc ('\n', out);
        break;
      default:
        break;
    }
}

/* ---- the stream's events --------------------------------------------- */

/* Finishes the open result (its footer). */
static void
finish_open_result (TuskPrinter *printer)
{
  if (!printer->open)
    return;
  switch (printer->options.format)
    {
      case TUSK_FORMAT_TABLE:
        if (printer->options.expanded)
          expanded_end (printer);
        else
          table_end (printer);
        break;
      default:
        if (!printer->started)
          simple_start (printer);
        simple_end (printer);
        break;
    }
  g_clear_pointer (&printer->title, g_free);
  close_columns (printer);
}

gboolean
tusk_printer_begin (TuskPrinter *printer, const GPtrArray *columns,
                    GError **error)
{
  g_return_val_if_fail (printer != NULL && columns != NULL, FALSE);

  finish_open_result (printer);

  guint n = columns->len;
  printer->open = TRUE;
  printer->started = FALSE;
  printer->rows = 0;
  printer->n_columns = n;
  printer->names = g_new0 (char *, n + 1);
  printer->right = g_new0 (gboolean, n);
  printer->oids = g_new0 (guint32, n);
  printer->widths = g_new0 (guint, n);
  printer->header_lines = g_new0 (GArray *, n);
  printer->header_text = g_new0 (GString *, n);
  printer->cell_text = g_new0 (GString *, MAX (n, 1));
  printer->cell_lines = g_new0 (GArray *, MAX (n, 1));
  printer->cell_line = g_new0 (guint, n);
  printer->header_height = 0;
  printer->header_width = 0;
  for (guint i = 0; i < MAX (n, 1); i++)
    {
      printer->cell_text[i] = g_string_new (NULL);
      printer->cell_lines[i] = g_array_new (FALSE, FALSE, sizeof (Line));
    }
  for (guint i = 0; i < n; i++)
    {
      const TuskColumnInfo *column = g_ptr_array_index (columns, i);
      printer->names[i] = g_strdup (column->name ? column->name : "");
      printer->oids[i] = column->type_oid;
      printer->right[i] = is_right_aligned (column->type_oid);
      printer->header_text[i] = g_string_new (NULL);
      printer->header_lines[i] = g_array_new (FALSE, FALSE, sizeof (Line));
      guint w = format_cell (printer->names[i], printer->header_text[i],
                             printer->header_lines[i]);
      printer->widths[i] = w;
      printer->header_width = MAX (printer->header_width, w);
      printer->header_height
          = MAX (printer->header_height, printer->header_lines[i]->len);
    }
  if (printer->options.format != TUSK_FORMAT_TABLE)
    simple_start (printer);
  return check_output (printer, error);
}

gboolean
tusk_printer_add_batch (TuskPrinter *printer, TuskRowBatch *batch,
                        GError **error)
{
  g_return_val_if_fail (printer != NULL && batch != NULL, FALSE);
  g_return_val_if_fail (printer->open, FALSE);

  guint n_rows = tusk_row_batch_get_n_rows (batch);
  if (n_rows > 0 && tusk_row_batch_get_n_columns (batch) != printer->n_columns)
    {
      tusk_set_error (error, TUSK_ERROR_INTERNAL, NULL,
                      "A batch of %u columns arrived for a result of %u",
                      tusk_row_batch_get_n_columns (batch), printer->n_columns);
      return FALSE;
    }

  if (printer->options.format == TUSK_FORMAT_TABLE)
    {
      if (printer->options.expanded)
        expanded_add_batch (printer, batch);
      else
        table_add_batch (printer, batch);
    }
  else
    simple_add_batch (printer, batch);
  printer->rows += n_rows;
  printer->total_rows += n_rows;
  fflush (printer->out);
  return check_output (printer, error);
}

/* psql prints the command tag of a command, and of INSERT, UPDATE, DELETE
 * and MERGE with RETURNING after their rows. */
static gboolean
tag_follows_rows (const char *tag)
{
  return g_str_has_prefix (tag, "INSERT") || g_str_has_prefix (tag, "UPDATE")
         || g_str_has_prefix (tag, "DELETE") || g_str_has_prefix (tag, "MERGE");
}

gboolean
tusk_printer_end (TuskPrinter *printer, const TuskQueryResult *result,
                  GError **error)
{
  g_return_val_if_fail (printer != NULL && result != NULL, FALSE);

  gboolean had_rows = printer->open;
  finish_open_result (printer);

  const char *tag = result->command_tag;
  gboolean machine = printer->options.format == TUSK_FORMAT_JSON
                     || printer->options.format == TUSK_FORMAT_NDJSON;
  if (!machine && tag && *tag && (!had_rows || tag_follows_rows (tag)))
    fprintf (printer->out, "%s\n", tag);
  g_clear_pointer (&printer->title, g_free);
  fflush (printer->out);
  return check_output (printer, error);
}

/* ---- errors and notices ---------------------------------------------- */

/* Appends psql's "LINE n: …" excerpt with a caret under the 1-based
 * character @position of @sql (libpq's reportErrorPosition(): tabs shown
 * as spaces, lines longer than 60 columns cut around the caret with
 * "..."). */
static void
append_error_excerpt (GString *msg, const char *sql, int position)
{
  enum
  {
    DISPLAY_SIZE = 60,
    MIN_RIGHT_CUT = 10
  };
  int loc = position - 1;
  if (loc < 0 || sql == NULL)
    return;

  glong n_chars = g_utf8_strlen (sql, -1);
  g_autofree char *copy = g_strdup (sql);
  /* Byte offset and screen column of each character, to the line's end. */
  g_autofree int *qidx = g_new (int, n_chars + 2);
  g_autofree int *scridx = g_new (int, n_chars + 2);
  int qoffset = 0, scroffset = 0, loc_line = 1, ibeg = 0, iend = -1;
  int cno;

  for (cno = 0; copy[qoffset] != '\0'; cno++)
    {
      char ch = copy[qoffset];
      qidx[cno] = qoffset;
      scridx[cno] = scroffset;
      if (ch == '\t')
        copy[qoffset] = ' ';
      else if (ch == '\r' || ch == '\n')
        {
          if (cno < loc)
            {
              if (ch == '\r' || cno == 0 || copy[qidx[cno - 1]] != '\r')
                loc_line++;
              ibeg = cno + 1;
            }
          else
            {
              iend = cno;
              break;
            }
        }
      const char *p = copy + qoffset;
      gunichar u = g_utf8_get_char_validated (p, -1);
      int w = 1, len = 1;
      if (u != (gunichar)-1 && u != (gunichar)-2)
        {
          len = g_utf8_next_char (p) - p;
          w = g_unichar_iswide (u) ? 2 : 1;
        }
      scroffset += w;
      qoffset += len;
    }
  if (iend < 0)
    {
      iend = cno;
      qidx[iend] = qoffset;
      scridx[iend] = scroffset;
    }
  if (loc > cno)
    return;

  gboolean beg_trunc = FALSE, end_trunc = FALSE;
  if (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE)
    {
      if (scridx[ibeg] + DISPLAY_SIZE >= scridx[loc] + MIN_RIGHT_CUT)
        {
          while (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE)
            iend--;
          end_trunc = TRUE;
        }
      else
        {
          while (scridx[loc] + MIN_RIGHT_CUT < scridx[iend])
            {
              iend--;
              end_trunc = TRUE;
            }
          while (scridx[iend] - scridx[ibeg] > DISPLAY_SIZE)
            {
              ibeg++;
              beg_trunc = TRUE;
            }
        }
    }
  copy[qidx[iend]] = '\0';

  gsize prefix_start = msg->len;
  g_string_append_printf (msg, "LINE %d: ", loc_line);
  if (beg_trunc)
    g_string_append (msg, "...");
  int caret = (int)g_utf8_strlen (msg->str + prefix_start, -1);
  g_string_append (msg, copy + qidx[ibeg]);
  if (end_trunc)
    g_string_append (msg, "...");
  g_string_append_c (msg, '\n');
  caret += scridx[loc] - scridx[ibeg];
  for (int i = 0; i < caret; i++)
    g_string_append_c (msg, ' ');
  g_string_append (msg, "^\n");
}

/* The 1-based line and character column of the 1-based character
 * @position in @sql. */
static void
locate_in_sql (const char *sql, int position, int *line, int *column)
{
  *line = 1;
  *column = 1;
  const char *p = sql;
  for (int i = 1; i < position && *p; i++)
    {
      if (*p == '\n')
        {
          (*line)++;
          *column = 1;
        }
      else
        (*column)++;
      p = g_utf8_next_char (p);
    }
}

static void
append_prefix (GString *msg, const TuskErrorLocation *location)
{
  if (location && location->source)
    g_string_append_printf (msg, "tusk:%s:%d: ", location->source,
                            location->line);
}

static void
print_error_json (FILE *out, const GError *error, const char *sql,
                  const TuskErrorLocation *location)
{
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  int position = tusk_error_get_position (error);
  int line = 0, column = 0;

  if (location && location->error_line > 0)
    {
      line = location->error_line;
      column = location->error_column;
    }
  else if (position > 0 && sql)
    locate_in_sql (sql, position, &line, &column);

  const char *message = info->message;
  if (info->code == TUSK_ERROR_QUERY_CANCELLED)
    message = "canceling statement due to user request";

  fputs ("{\"category\":", out);
  put_json_string (out, tusk_error_code_name (info->code));
  fputs (",\"message\":", out);
  put_json_string (out, message);
  fputs (",\"detail\":", out);
  put_json_string_or_null (out, tusk_error_get_detail (error));
  fputs (",\"hint\":", out);
  put_json_string_or_null (out, info->hint);
  fputs (",\"sqlstate\":", out);
  put_json_string_or_null (out, info->sqlstate);
  if (position > 0)
    fprintf (out, ",\"position\":%d", position);
  else
    fputs (",\"position\":null", out);
  if (line > 0)
    fprintf (out, ",\"line\":%d,\"column\":%d", line, column);
  else
    fputs (",\"line\":null,\"column\":null", out);
  if (location && location->source)
    {
      fputs (",\"source\":", out);
      put_json_string (out, location->source);
    }
  fputs ("}\n", out);
  fflush (out);
}

void
tusk_print_error_at (FILE *out, const GError *error, const char *sql,
                     TuskFormat format, const TuskErrorLocation *location)
{
  g_return_if_fail (out != NULL && error != NULL);

  if (format == TUSK_FORMAT_JSON || format == TUSK_FORMAT_NDJSON)
    {
      print_error_json (out, error, sql, location);
      return;
    }

  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  g_autoptr (GString) msg = g_string_new (NULL);
  const char *detail = tusk_error_get_detail (error);

  append_prefix (msg, location);
  switch (info->code)
    {
      case TUSK_ERROR_QUERY_CANCELLED:
        g_string_append (msg,
                         "ERROR:  canceling statement due to user request\n");
        fputs (msg->str, out);
        fflush (out);
        return;
      case TUSK_ERROR_QUERY:
        g_string_append_printf (msg, "ERROR:  %s\n", info->message);
        append_error_excerpt (msg, sql, tusk_error_get_position (error));
        break;
      default:
        g_string_append_printf (msg, "%s error: %s\n",
                                tusk_error_code_name (info->code),
                                info->message);
        break;
    }
  if (detail)
    g_string_append_printf (msg, "DETAIL:  %s\n", detail);
  if (info->hint && *info->hint)
    g_string_append_printf (msg, "HINT:  %s\n", info->hint);
  if (info->sqlstate)
    g_string_append_printf (msg, "SQLSTATE: %s\n", info->sqlstate);
  fputs (msg->str, out);
  fflush (out);
}

void
tusk_print_error (FILE *out, const GError *error, const char *sql,
                  TuskFormat format)
{
  tusk_print_error_at (out, error, sql, format, NULL);
}

void
tusk_print_notice_at (FILE *out, const TuskNotice *notice,
                      const TuskErrorLocation *location)
{
  g_return_if_fail (out != NULL && notice != NULL);

  g_autoptr (GString) msg = g_string_new (NULL);
  append_prefix (msg, location);
  g_string_append_printf (msg, "%s:  %s\n",
                          notice->severity ? notice->severity : "NOTICE",
                          notice->message ? notice->message : "");
  if (notice->detail)
    g_string_append_printf (msg, "DETAIL:  %s\n", notice->detail);
  if (notice->hint)
    g_string_append_printf (msg, "HINT:  %s\n", notice->hint);
  fputs (msg->str, out);
  fflush (out);
}

void
tusk_print_notice (FILE *out, const TuskNotice *notice)
{
  tusk_print_notice_at (out, notice, NULL);
}
