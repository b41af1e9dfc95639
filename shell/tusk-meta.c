/* tusk-meta.c: the shell's backslash commands, with psql's meanings and,
 * where psql has the command, psql 15's output byte for byte.
 *
 * A command line is "\name args…": the name runs to the first white space
 * and the arguments are split as psql splits them ('…' with '' and
 * backslash escapes; "…" kept with its quotes where a name pattern is
 * expected, so that \d "MixedCase" keeps its case).  Missing arguments
 * fail with the command's usage; extra ones are ignored with psql's
 * warning.
 *
 * The catalog commands (\d and its family) send psql 15's catalog queries,
 * with psql's name patterns (append_pattern()), through tusk_shell_query()
 * (never recorded in history; Ctrl-C cancels them) and print with
 * tusk_shell_print_result().  One exception: \d NAME in the table and
 * unaligned formats shows footers (Indexes:, Referenced by:, …) and no
 * "(N rows)", which the shell's printer does not offer, so a small
 * psql-style printer here renders it; it also renders \saved and
 * \history, whose rows come from the local storage, not from a query.
 *
 * Where output goes, as psql: listings to shell->out (the \o file), status
 * messages ("Expanded display is on.") to stdout, errors to stderr.
 *
 * The last statement (\e and \save with an empty query buffer) is the
 * newest entry of the saved connection's history: the shell keeps no other
 * record of it, so on an unsaved connection only the query buffer counts.
 *
 * Thread rules: main thread only.  Every wait (queries, storage writes,
 * the history read behind a flush of the storage writer, the schema load)
 * iterates the thread-default main context; only the external editor of
 * \e holds the thread, as it holds the terminal.
 */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-meta.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

/* \i files including \i files: psql has no limit, but a file that includes
 * itself must end in an error, not in a stack overflow. */
#define MAX_INCLUDE_DEPTH 64

/* ---- a command and its arguments ------------------------------------ */

typedef struct
{
  TuskShell *shell;
  const char *name;      /* as typed, without the backslash: "dt+" */
  const char *rest;      /* the text after the name */
  const char *usage;     /* "\\i FILE" */
  GString *query_buffer; /* nullable: the REPL's statement in progress */
} Command;

/* Splits @text into psql-style arguments, appending them (char *) to @out:
 * white space separates; '…' quotes, with '' and the escapes \n \t \r \\
 * and \' inside; "…" quotes too, kept with its quotes when
 * @keep_double_quotes (name patterns), else unwrapped ("" inside becomes
 * one ").  FALSE with an error for an unterminated quote. */
static gboolean
split_args (const char *text, gboolean keep_double_quotes, GPtrArray *out,
            GError **error)
{
  const char *p = text;

  for (;;)
    {
      while (g_ascii_isspace (*p))
        p++;
      if (*p == '\0')
        return TRUE;

      g_autoptr (GString) arg = g_string_new (NULL);
      while (*p != '\0' && !g_ascii_isspace (*p))
        {
          char quote = *p;
          if (quote != '\'' && quote != '"')
            {
              g_string_append_c (arg, *p++);
              continue;
            }
          if (quote == '"' && keep_double_quotes)
            g_string_append_c (arg, '"');
          p++;
          for (;;)
            {
              if (*p == '\0')
                {
                  tusk_set_error (error, TUSK_ERROR_VALIDATION,
                                  "Close the quote, or put the argument in "
                                  "the other kind of quotes.",
                                  "unterminated quoted string");
                  return FALSE;
                }
              if (*p == quote && p[1] == quote)
                {
                  g_string_append_c (arg, quote);
                  if (quote == '"' && keep_double_quotes)
                    g_string_append_c (arg, quote);
                  p += 2;
                  continue;
                }
              if (*p == quote)
                {
                  if (quote == '"' && keep_double_quotes)
                    g_string_append_c (arg, '"');
                  p++;
                  break;
                }
              if (quote == '\'' && *p == '\\' && p[1] != '\0')
                {
                  p++;
                  switch (*p)
                    {
                      case 'n':
                        g_string_append_c (arg, '\n');
                        break;
                      case 't':
                        g_string_append_c (arg, '\t');
                        break;
                      case 'r':
                        g_string_append_c (arg, '\r');
                        break;
                      default:
                        g_string_append_c (arg, *p);
                        break;
                    }
                  p++;
                  continue;
                }
              g_string_append_c (arg, *p++);
            }
        }
      g_ptr_array_add (out, g_string_free (g_steal_pointer (&arg), FALSE));
    }
}

/* Parses the arguments of @cmd into @args_out (transfer full, a
 * NULL-terminated array): fails after saying so when there are fewer than
 * @min; warns as psql ("extra argument ignored") and drops those beyond
 * @max (-1: no limit). */
static gboolean
get_args (const Command *cmd, gboolean keep_double_quotes, int min, int max,
          GStrv *args_out)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;

  if (!split_args (cmd->rest, keep_double_quotes, args, &error))
    {
      fprintf (stderr, "\\%s: %s\n", cmd->name, error->message);
      return FALSE;
    }
  if ((int)args->len < min)
    {
      fprintf (stderr, "\\%s: missing required argument\nUsage: %s\n",
               cmd->name, cmd->usage);
      return FALSE;
    }
  while (max >= 0 && (int)args->len > max)
    {
      fprintf (stderr, "\\%s: extra argument \"%s\" ignored\n", cmd->name,
               (const char *)args->pdata[max]);
      g_ptr_array_remove_index (args, max);
    }
  g_ptr_array_add (args, NULL);
  *args_out = (GStrv)g_ptr_array_free (g_steal_pointer (&args), FALSE);
  return TRUE;
}

/* Expands a leading "~/" (or a lone "~") to the home directory, as psql
 * does for file names.  Returns (transfer full) the path. */
static char *
expand_tilde (const char *path)
{
  if (path[0] == '~' && (path[1] == '/' || path[1] == '\0'))
    return g_build_filename (g_get_home_dir (), path + 1, NULL);
  return g_strdup (path);
}

/* ---- waiting, queries ---------------------------------------------- */

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  GAsyncResult **slot = user_data;
  *slot = g_object_ref (result);
}

/* Iterates the thread-default main context until store_result() has
 * filled *@slot; returns it (the caller unrefs it). */
static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  while (*slot == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_unref (context);
  return *slot;
}

/* Says psql's sentence and returns FALSE when @shell has no connection. */
static gboolean
check_connected (TuskShell *shell)
{
  if (shell->session != NULL && shell->config != NULL)
    return TRUE;
  fputs ("You are currently not connected to a database.\n", stderr);
  return FALSE;
}

/* Runs a catalog query; prints the error and returns NULL when it fails. */
static TuskQueryResult *
run_query (TuskShell *shell, const char *sql)
{
  g_autoptr (GError) error = NULL;
  TuskQueryResult *result = tusk_shell_query (shell, sql, &error);
  if (result == NULL)
    tusk_shell_print_error (shell, error, NULL);
  return result;
}

/* A value of @result as text: "" for NULL. */
static const char *
value (const TuskQueryResult *result, guint64 row, guint column)
{
  const char *text = tusk_query_result_get_value (result, row, column);
  return text ? text : "";
}

/* Appends @text to @sql as a string literal that means the same whatever
 * standard_conforming_strings says. */
static void
append_literal (GString *sql, const char *text)
{
  gboolean backslash = strchr (text, '\\') != NULL;
  g_string_append (sql, backslash ? "E'" : "'");
  for (const char *p = text; *p; p++)
    {
      if (*p == '\'' || (*p == '\\' && backslash))
        g_string_append_c (sql, *p);
      g_string_append_c (sql, *p);
    }
  g_string_append_c (sql, '\'');
}

/* Flushes the output after a listing; FALSE after saying why when writing
 * failed (a full disk, a closed pipe). */
static gboolean
finish_output (TuskShell *shell)
{
  if (fflush (shell->out) == 0 && !ferror (shell->out))
    return TRUE;
  fprintf (stderr, "could not write to %s: %s\n",
           shell->out_path ? shell->out_path : "standard output",
           g_strerror (errno));
  clearerr (shell->out);
  return FALSE;
}

/* ---- a small psql-style printer ------------------------------------- */

/* A table of text built here (not from a query): \d NAME's columns with
 * their footers, \saved, \history. */
typedef struct
{
  GPtrArray *headers; /* char * */
  GArray *right;      /* gboolean per column: right-aligned (numbers) */
  GPtrArray *cells;   /* char *, row after row */
} TextTable;

static TextTable *
text_table_new (void)
{
  TextTable *table = g_new0 (TextTable, 1);
  table->headers = g_ptr_array_new_with_free_func (g_free);
  table->right = g_array_new (FALSE, TRUE, sizeof (gboolean));
  table->cells = g_ptr_array_new_with_free_func (g_free);
  return table;
}

static void
text_table_free (TextTable *table)
{
  g_ptr_array_unref (table->headers);
  g_array_unref (table->right);
  g_ptr_array_unref (table->cells);
  g_free (table);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TextTable, text_table_free)

static void
text_table_add_column (TextTable *table, const char *header, gboolean right)
{
  g_ptr_array_add (table->headers, g_strdup (header));
  g_array_append_val (table->right, right);
}

static void
text_table_add_cell (TextTable *table, const char *text)
{
  g_ptr_array_add (table->cells, g_strdup (text ? text : ""));
}

static guint
text_table_n_rows (const TextTable *table)
{
  return table->headers->len ? table->cells->len / table->headers->len : 0;
}

/* Whether psql right-aligns a column of type @oid: the numeric types. */
static gboolean
is_numeric_type (guint32 oid)
{
  switch (oid)
    {
      case 20:   /* int8 */
      case 21:   /* int2 */
      case 23:   /* int4 */
      case 26:   /* oid */
      case 28:   /* xid */
      case 29:   /* cid */
      case 700:  /* float4 */
      case 701:  /* float8 */
      case 790:  /* money */
      case 1700: /* numeric */
      case 5069: /* xid8 */
        return TRUE;
      default:
        return FALSE;
    }
}

/* Returns (transfer full) @result's rows as a TextTable (NULL as ""). */
static TextTable *
text_table_from_result (const TuskQueryResult *result)
{
  TextTable *table = text_table_new ();
  for (guint j = 0; j < result->columns->len; j++)
    {
      const TuskColumnInfo *column = result->columns->pdata[j];
      text_table_add_column (table, column->name,
                             is_numeric_type (column->type_oid));
    }
  for (guint64 i = 0; i < result->n_rows; i++)
    for (guint j = 0; j < result->columns->len; j++)
      text_table_add_cell (table, value (result, i, j));
  return table;
}

/* The width of @len bytes of @text on a terminal: wide (East Asian)
 * characters count two, combining marks none, invalid bytes one each. */
static int
display_width (const char *text, gsize len)
{
  const char *p = text;
  const char *end = text + len;
  int width = 0;

  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);
      if (c == (gunichar)-1 || c == (gunichar)-2)
        {
          width++;
          p++;
          continue;
        }
      if (g_unichar_iswide (c))
        width += 2;
      else if (!g_unichar_iszerowidth (c))
        width++;
      p = g_utf8_next_char (p);
    }
  return width;
}

/* The widest line of @text. */
static int
max_line_width (const char *text)
{
  int width = 0;
  for (;;)
    {
      const char *nl = strchr (text, '\n');
      gsize len = nl ? (gsize)(nl - text) : strlen (text);
      width = MAX (width, display_width (text, len));
      if (nl == NULL)
        return width;
      text = nl + 1;
    }
}

/* Finds line @k of @text: sets *@start and *@len and returns TRUE, or
 * FALSE when @text has fewer lines. */
static gboolean
nth_line (const char *text, int k, const char **start, gsize *len)
{
  for (int i = 0; i < k; i++)
    {
      text = strchr (text, '\n');
      if (text == NULL)
        return FALSE;
      text++;
    }
  const char *nl = strchr (text, '\n');
  *start = text;
  *len = nl ? (gsize)(nl - text) : strlen (text);
  return TRUE;
}

static int
count_lines (const char *text)
{
  int n = 1;
  for (const char *p = text; (p = strchr (p, '\n')) != NULL; p++)
    n++;
  return n;
}

static void
put_spaces (FILE *out, int n)
{
  for (int i = 0; i < n; i++)
    fputc (' ', out);
}

/* psql's aligned format with border 1: the title centered over the table,
 * centered headers, " | " between columns, "+" where a value goes on on
 * the next line, no padding after the last column, then the footers and a
 * blank line. */
static void
print_aligned (FILE *out, const TextTable *table, const char *title,
               const char *const *footers, gboolean tuples_only)
{
  guint n = table->headers->len;
  guint n_rows = text_table_n_rows (table);
  g_autofree int *widths = g_new0 (int, n);
  g_autofree int *heights = g_new0 (int, n);
  const gboolean *right = (const gboolean *)table->right->data;

  for (guint j = 0; j < n; j++)
    widths[j] = max_line_width (table->headers->pdata[j]);
  for (guint c = 0; c < table->cells->len; c++)
    widths[c % n]
        = MAX (widths[c % n], max_line_width (table->cells->pdata[c]));

  if (title && !tuples_only)
    {
      int total = (int)n * 3 - 1;
      for (guint j = 0; j < n; j++)
        total += widths[j];
      int title_width = max_line_width (title);
      if (title_width < total)
        put_spaces (out, (total - title_width) / 2);
      fprintf (out, "%s\n", title);
    }

  if (!tuples_only)
    {
      fputc (' ', out);
      for (guint j = 0; j < n; j++)
        {
          const char *header = table->headers->pdata[j];
          int width = display_width (header, strlen (header));
          int left = (widths[j] - width) / 2;
          put_spaces (out, left);
          fputs (header, out);
          put_spaces (out, widths[j] - width - left);
          fputs (j + 1 < n ? " | " : " \n", out);
        }
      for (guint j = 0; j < n; j++)
        {
          for (int k = 0; k < widths[j] + 2; k++)
            fputc ('-', out);
          fputc (j + 1 < n ? '+' : '\n', out);
        }
    }

  for (guint i = 0; i < n_rows; i++)
    {
      const char *const *row
          = (const char *const *)table->cells->pdata + (gsize)i * n;
      int height = 1;
      for (guint j = 0; j < n; j++)
        {
          heights[j] = count_lines (row[j]);
          height = MAX (height, heights[j]);
        }
      for (int k = 0; k < height; k++)
        {
          fputc (' ', out);
          for (guint j = 0; j < n; j++)
            {
              const char *start = "";
              gsize len = 0;
              nth_line (row[j], k, &start, &len);
              int pad = widths[j] - display_width (start, len);
              gboolean more = k + 1 < heights[j];
              gboolean last = j + 1 == n;
              if (right[j])
                put_spaces (out, pad);
              fwrite (start, 1, len, out);
              if (!right[j] && (!last || more))
                put_spaces (out, pad);
              if (!last)
                fputs (more ? "+| " : " | ", out);
              else if (more)
                fputc ('+', out);
            }
          fputc ('\n', out);
        }
    }

  for (guint f = 0; footers && footers[f] && !tuples_only; f++)
    fprintf (out, "%s\n", footers[f]);
  fputc ('\n', out);
}

/* psql -A: the title, the header and each row on a line, fields joined by
 * the separator, then the footers. */
static void
print_unaligned (FILE *out, const TextTable *table, const char *title,
                 const char *const *footers, const char *separator,
                 gboolean tuples_only)
{
  guint n = table->headers->len;

  if (title && !tuples_only)
    fprintf (out, "%s\n", title);
  for (guint j = 0; j < n && !tuples_only; j++)
    fprintf (out, "%s%s", (const char *)table->headers->pdata[j],
             j + 1 < n ? separator : "\n");
  for (guint c = 0; c < table->cells->len; c++)
    fprintf (out, "%s%s", (const char *)table->cells->pdata[c],
             (c + 1) % n ? separator : "\n");
  for (guint f = 0; footers && footers[f] && !tuples_only; f++)
    fprintf (out, "%s\n", footers[f]);
}

/* Prints @table to shell->out: unaligned in the unaligned format, else
 * aligned (never expanded: psql shows \d NAME unexpanded too). */
static gboolean
print_text_table (TuskShell *shell, const TextTable *table, const char *title,
                  const char *const *footers)
{
  if (shell->print.format == TUSK_FORMAT_UNALIGNED)
    print_unaligned (shell->out, table, title, footers,
                     shell->print.field_separator ? shell->print.field_separator
                                                  : "|",
                     shell->print.tuples_only);
  else
    print_aligned (shell->out, table, title, footers, shell->print.tuples_only);
  return finish_output (shell);
}

/* psql's "(N rows)" footer. */
static char *
rows_footer (guint n)
{
  return g_strdup_printf (n == 1 ? "(%u row)" : "(%u rows)", n);
}

/* ---- name patterns (psql's processSQLNamePattern) ------------------- */

/* Appends "WHERE cond" or "  AND cond" to @sql. */
static void
add_condition (GString *sql, gboolean *have_where, const char *condition)
{
  g_string_append (sql, *have_where ? "  AND " : "WHERE ");
  g_string_append (sql, condition);
  g_string_append_c (sql, '\n');
  *have_where = TRUE;
}

/* Appends "VAR OPERATOR(pg_catalog.~) 'REGEX' COLLATE pg_catalog.default". */
static void
append_regex_match (GString *sql, const char *var, const char *regex)
{
  g_string_append_printf (sql, "%s OPERATOR(pg_catalog.~) ", var);
  append_literal (sql, regex);
  g_string_append (sql, " COLLATE pg_catalog.default");
}

/**
 * append_pattern:
 * @pattern: (nullable): what the user typed: "books", "pub*", "public.*",
 *   "\"MixedCase\""
 * @schema_var: (nullable): the schema column ("n.nspname"); NULL when the
 *   objects are schemas themselves (no dot allowed then)
 * @name_var: the name column ("c.relname")
 * @alt_name_var: (nullable): a second column the name may match instead
 *   (\dT: format_type())
 * @visibility: (nullable): the condition that an unqualified name is on
 *   the search_path ("pg_catalog.pg_table_is_visible(c.oid)")
 *
 * Appends psql's conditions for @pattern: unquoted letters fold to lower
 * case, * and ? are wildcards, a dot separates the schema from the name,
 * "…" keeps case and special characters, regular-expression characters
 * outside quotes pass through (as psql); the whole is anchored.  Without a
 * schema part (or without @pattern) the visibility rule applies.  FALSE,
 * with an error naming the pattern, for too many dots.
 */
static gboolean
append_pattern (GString *sql, gboolean *have_where, const char *pattern,
                const char *schema_var, const char *name_var,
                const char *alt_name_var, const char *visibility,
                GError **error)
{
  if (pattern == NULL)
    {
      if (visibility)
        add_condition (sql, have_where, visibility);
      return TRUE;
    }

  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) part = g_string_new ("^(");
  gboolean in_quotes = FALSE;
  guint max_parts = schema_var ? 2 : 1;

  for (const char *p = pattern; *p;)
    {
      char c = *p;
      if (c == '"')
        {
          if (in_quotes && p[1] == '"')
            {
              g_string_append_c (part, '"');
              p++;
            }
          else
            in_quotes = !in_quotes;
          p++;
        }
      else if (!in_quotes && g_ascii_isupper (c))
        {
          g_string_append_c (part, g_ascii_tolower (c));
          p++;
        }
      else if (!in_quotes && c == '*')
        {
          g_string_append (part, ".*");
          p++;
        }
      else if (!in_quotes && c == '?')
        {
          g_string_append_c (part, '.');
          p++;
        }
      else if (!in_quotes && c == '.')
        {
          if (parts->len + 1 >= max_parts)
            {
              tusk_set_error (error, TUSK_ERROR_VALIDATION,
                              schema_var ? "Write SCHEMA.NAME at most; quote "
                                           "a name that holds a dot."
                                         : "Quote a name that holds a dot.",
                              "improper qualified name (too many dotted "
                              "names): %s",
                              pattern);
              return FALSE;
            }
          g_string_append (part, ")$");
          g_ptr_array_add (parts,
                           g_string_free (g_steal_pointer (&part), FALSE));
          part = g_string_new ("^(");
          p++;
        }
      else if (c == '$')
        {
          /* Always literal: a legal identifier character, and the pattern
           * is anchored anyway. */
          g_string_append (part, "\\$");
          p++;
        }
      else
        {
          if (in_quotes && strchr ("|*+?()[]{}.^\\", c))
            g_string_append_c (part, '\\');
          else if (c == '[' && p[1] == ']')
            g_string_append_c (part, '\\');
          const char *next = g_utf8_next_char (p);
          gsize len = strnlen (p, next - p);
          g_string_append_len (part, p, MAX (len, 1));
          p += MAX (len, 1);
        }
    }
  g_string_append (part, ")$");
  g_ptr_array_add (parts, g_string_free (g_steal_pointer (&part), FALSE));

  const char *name_regex = parts->pdata[parts->len - 1];
  const char *schema_regex = parts->len > 1 ? parts->pdata[0] : NULL;

  if (!g_str_equal (name_regex, "^(.*)$"))
    {
      g_autoptr (GString) condition = g_string_new (NULL);
      if (alt_name_var)
        g_string_append_c (condition, '(');
      append_regex_match (condition, name_var, name_regex);
      if (alt_name_var)
        {
          g_string_append (condition, "\n        OR ");
          append_regex_match (condition, alt_name_var, name_regex);
          g_string_append_c (condition, ')');
        }
      add_condition (sql, have_where, condition->str);
    }
  if (schema_regex && !g_str_equal (schema_regex, "^(.*)$"))
    {
      g_autoptr (GString) condition = g_string_new (NULL);
      append_regex_match (condition, schema_var, schema_regex);
      add_condition (sql, have_where, condition->str);
    }
  else if (schema_regex == NULL && visibility)
    add_condition (sql, have_where, visibility);
  return TRUE;
}

/* ---- listings: \d \dt \dv \dm \di \ds \df \dn \dT -------------------- */

/* What a \d-family command asked for. */
typedef struct
{
  gboolean system;  /* S: include pg_catalog and information_schema */
  gboolean verbose; /* + */
} Modifiers;

/* Runs @sql and prints its rows under @title, or @none_message (nullable)
 * on stderr when there are none (psql's "Did not find any relations."). */
static TuskMetaStatus
print_listing (TuskShell *shell, const char *sql, const char *title,
               const char *none_message)
{
  g_autoptr (TuskQueryResult) result = run_query (shell, sql);
  if (result == NULL)
    return TUSK_META_FAILED;
  if (result->n_rows == 0 && none_message)
    {
      fprintf (stderr, "%s\n", none_message);
      return TUSK_META_OK;
    }
  return tusk_shell_print_result (shell, title, result) ? TUSK_META_OK
                                                        : TUSK_META_FAILED;
}

/* Prints a pattern error the way the command names it. */
static TuskMetaStatus
pattern_failed (const char *name, const GError *error)
{
  fprintf (stderr, "\\%s: %s\n", name, error->message);
  return TUSK_META_FAILED;
}

/* \d \dt \dv \dm \di \ds and their combinations (psql's listTables):
 * @kinds holds t (tables), v, m, i, s (sequences) and E (foreign
 * tables). */
static TuskMetaStatus
list_relations (const Command *cmd, const char *kinds, Modifiers mods,
                const char *pattern)
{
  gboolean tables = strchr (kinds, 't') != NULL;
  gboolean views = strchr (kinds, 'v') != NULL;
  gboolean matviews = strchr (kinds, 'm') != NULL;
  gboolean indexes = strchr (kinds, 'i') != NULL;
  gboolean sequences = strchr (kinds, 's') != NULL;
  gboolean foreign = strchr (kinds, 'E') != NULL;
  g_autoptr (GString) sql = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gboolean have_where = FALSE;

  g_string_append (
      sql, "SELECT n.nspname as \"Schema\",\n"
           "  c.relname as \"Name\",\n"
           "  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' "
           "WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' "
           "WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' "
           "WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' "
           "WHEN 'I' THEN 'partitioned index' END as \"Type\",\n"
           "  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"");
  if (indexes)
    g_string_append (sql, ",\n  c2.relname as \"Table\"");
  if (mods.verbose)
    {
      g_string_append (sql, ",\n  CASE c.relpersistence WHEN 'p' THEN "
                            "'permanent' WHEN 't' THEN 'temporary' "
                            "WHEN 'u' THEN 'unlogged' END as \"Persistence\"");
      if (tables || matviews || indexes)
        g_string_append (sql, ",\n  am.amname as \"Access method\"");
      g_string_append (sql, ",\n  pg_catalog.pg_size_pretty("
                            "pg_catalog.pg_table_size(c.oid)) as \"Size\",\n"
                            "  pg_catalog.obj_description(c.oid, 'pg_class') "
                            "as \"Description\"");
    }
  g_string_append (sql, "\nFROM pg_catalog.pg_class c\n"
                        "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = "
                        "c.relnamespace\n"
                        "     LEFT JOIN pg_catalog.pg_am am ON am.oid = "
                        "c.relam\n");
  if (indexes)
    g_string_append (sql, "     LEFT JOIN pg_catalog.pg_index i ON "
                          "i.indexrelid = c.oid\n"
                          "     LEFT JOIN pg_catalog.pg_class c2 ON "
                          "i.indrelid = c2.oid\n");

  g_autoptr (GString) relkinds = g_string_new ("c.relkind IN (");
  if (tables)
    g_string_append (relkinds,
                     mods.system || pattern ? "'r','p','t'," : "'r','p',");
  if (views)
    g_string_append (relkinds, "'v',");
  if (matviews)
    g_string_append (relkinds, "'m',");
  if (indexes)
    g_string_append (relkinds, "'i','I',");
  if (sequences)
    g_string_append (relkinds, "'S',");
  if (mods.system || pattern)
    g_string_append (relkinds, "'s',");
  if (foreign)
    g_string_append (relkinds, "'f',");
  g_string_append (relkinds, "'')");
  add_condition (sql, &have_where, relkinds->str);

  if (!mods.system && pattern == NULL)
    add_condition (sql, &have_where,
                   "n.nspname <> 'pg_catalog'\n"
                   "      AND n.nspname !~ '^pg_toast'\n"
                   "      AND n.nspname <> 'information_schema'");
  if (!append_pattern (sql, &have_where, pattern, "n.nspname", "c.relname",
                       NULL, "pg_catalog.pg_table_is_visible(c.oid)", &error))
    return pattern_failed (cmd->name, error);
  g_string_append (sql, "ORDER BY 1,2;");

  g_autofree char *none
      = pattern ? g_strdup_printf ("Did not find any relation named \"%s\".",
                                   pattern)
                : g_strdup ("Did not find any relations.");
  return print_listing (cmd->shell, sql->str, "List of relations", none);
}

/* \df (psql's listFunctions, without its type letters). */
static TuskMetaStatus
list_functions (const Command *cmd, Modifiers mods, const char *pattern)
{
  g_autoptr (GString) sql = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gboolean have_where = FALSE;

  g_string_append (sql,
                   "SELECT n.nspname as \"Schema\",\n"
                   "  p.proname as \"Name\",\n"
                   "  pg_catalog.pg_get_function_result(p.oid) as \"Result "
                   "data type\",\n"
                   "  pg_catalog.pg_get_function_arguments(p.oid) as "
                   "\"Argument data types\",\n"
                   " CASE p.prokind\n"
                   "  WHEN 'a' THEN 'agg'\n"
                   "  WHEN 'w' THEN 'window'\n"
                   "  WHEN 'p' THEN 'proc'\n"
                   "  ELSE 'func'\n"
                   " END as \"Type\"");
  if (mods.verbose)
    g_string_append (
        sql, ",\n CASE\n"
             "  WHEN p.provolatile = 'i' THEN 'immutable'\n"
             "  WHEN p.provolatile = 's' THEN 'stable'\n"
             "  WHEN p.provolatile = 'v' THEN 'volatile'\n"
             " END as \"Volatility\",\n"
             " CASE\n"
             "  WHEN p.proparallel = 'r' THEN 'restricted'\n"
             "  WHEN p.proparallel = 's' THEN 'safe'\n"
             "  WHEN p.proparallel = 'u' THEN 'unsafe'\n"
             " END as \"Parallel\",\n"
             " pg_catalog.pg_get_userbyid(p.proowner) as \"Owner\",\n"
             " CASE WHEN prosecdef THEN 'definer' ELSE 'invoker' END AS "
             "\"Security\",\n"
             " pg_catalog.array_to_string(p.proacl, E'\\n') AS \"Access "
             "privileges\",\n"
             " l.lanname as \"Language\",\n"
             " COALESCE(pg_catalog.pg_get_function_sqlbody(p.oid), "
             "p.prosrc) as \"Source code\",\n"
             " pg_catalog.obj_description(p.oid, 'pg_proc') as "
             "\"Description\"");
  g_string_append (sql, "\nFROM pg_catalog.pg_proc p\n"
                        "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = "
                        "p.pronamespace\n");
  if (mods.verbose)
    g_string_append (sql, "     LEFT JOIN pg_catalog.pg_language l ON "
                          "l.oid = p.prolang\n");
  if (!append_pattern (sql, &have_where, pattern, "n.nspname", "p.proname",
                       NULL, "pg_catalog.pg_function_is_visible(p.oid)",
                       &error))
    return pattern_failed (cmd->name, error);
  if (!mods.system && pattern == NULL)
    add_condition (sql, &have_where,
                   "n.nspname <> 'pg_catalog'\n"
                   "      AND n.nspname <> 'information_schema'");
  g_string_append (sql, "ORDER BY 1, 2, 4;");
  return print_listing (cmd->shell, sql->str, "List of functions", NULL);
}

/* \dn (psql's listSchemas). */
static TuskMetaStatus
list_schemas (const Command *cmd, Modifiers mods, const char *pattern)
{
  g_autoptr (GString) sql = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gboolean have_where = FALSE;

  g_string_append (sql, "SELECT n.nspname AS \"Name\",\n"
                        "  pg_catalog.pg_get_userbyid(n.nspowner) AS "
                        "\"Owner\"");
  if (mods.verbose)
    g_string_append (sql, ",\n  pg_catalog.array_to_string(n.nspacl, "
                          "E'\\n') AS \"Access privileges\",\n"
                          "  pg_catalog.obj_description(n.oid, "
                          "'pg_namespace') AS \"Description\"");
  g_string_append (sql, "\nFROM pg_catalog.pg_namespace n\n");
  if (!mods.system && pattern == NULL)
    add_condition (sql, &have_where,
                   "n.nspname !~ '^pg_' AND n.nspname <> "
                   "'information_schema'");
  if (!append_pattern (sql, &have_where, pattern, NULL, "n.nspname", NULL, NULL,
                       &error))
    return pattern_failed (cmd->name, error);
  g_string_append (sql, "ORDER BY 1;");
  return print_listing (cmd->shell, sql->str, "List of schemas", NULL);
}

/* \dT (psql's listTypes). */
static TuskMetaStatus
list_types (const Command *cmd, Modifiers mods, const char *pattern)
{
  g_autoptr (GString) sql = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  gboolean have_where = FALSE;

  g_string_append (sql, "SELECT n.nspname as \"Schema\",\n"
                        "  pg_catalog.format_type(t.oid, NULL) AS \"Name\",\n");
  if (mods.verbose)
    g_string_append (sql,
                     "  t.typname AS \"Internal name\",\n"
                     "  CASE WHEN t.typrelid != 0\n"
                     "      THEN CAST('tuple' AS pg_catalog.text)\n"
                     "    WHEN t.typlen < 0\n"
                     "      THEN CAST('var' AS pg_catalog.text)\n"
                     "    ELSE CAST(t.typlen AS pg_catalog.text)\n"
                     "  END AS \"Size\",\n"
                     "  pg_catalog.array_to_string(\n"
                     "      ARRAY(\n"
                     "          SELECT e.enumlabel\n"
                     "          FROM pg_catalog.pg_enum e\n"
                     "          WHERE e.enumtypid = t.oid\n"
                     "          ORDER BY e.enumsortorder\n"
                     "      ),\n"
                     "      E'\\n'\n"
                     "  ) AS \"Elements\",\n"
                     "  pg_catalog.pg_get_userbyid(t.typowner) AS \"Owner\",\n"
                     "pg_catalog.array_to_string(t.typacl, E'\\n') AS \"Access "
                     "privileges\",\n");
  g_string_append (sql, "    pg_catalog.obj_description(t.oid, 'pg_type') as "
                        "\"Description\"\n"
                        "FROM pg_catalog.pg_type t\n"
                        "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = "
                        "t.typnamespace\n");
  add_condition (sql, &have_where,
                 "(t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM "
                 "pg_catalog.pg_class c WHERE c.oid = t.typrelid))");
  add_condition (sql, &have_where,
                 "NOT EXISTS(SELECT 1 FROM pg_catalog.pg_type el WHERE "
                 "el.oid = t.typelem AND el.typarray = t.oid)");
  if (!mods.system && pattern == NULL)
    add_condition (sql, &have_where,
                   "n.nspname <> 'pg_catalog'\n"
                   "      AND n.nspname <> 'information_schema'");
  if (!append_pattern (sql, &have_where, pattern, "n.nspname", "t.typname",
                       "pg_catalog.format_type(t.oid, NULL)",
                       "pg_catalog.pg_type_is_visible(t.oid)", &error))
    return pattern_failed (cmd->name, error);
  g_string_append (sql, "ORDER BY 1, 2;");
  return print_listing (cmd->shell, sql->str, "List of data types", NULL);
}

/* ---- \d NAME: describing relations ----------------------------------- */

/* Returns (transfer full) @template with every "$OID" replaced by @oid as
 * an oid literal and every "$REL" by the same as a regclass. */
static char *
with_oid (const char *template, const char *oid)
{
  g_autofree char *as_oid = g_strdup_printf ("'%s'::pg_catalog.oid", oid);
  g_autofree char *as_rel = g_strdup_printf ("'%s'::pg_catalog.regclass", oid);
  g_autoptr (GString) sql = g_string_new (template);
  g_string_replace (sql, "$OID", as_oid, 0);
  g_string_replace (sql, "$REL", as_rel, 0);
  return g_string_free (g_steal_pointer (&sql), FALSE);
}

/* psql's title for a relation of @relkind. */
static char *
describe_title (char relkind, char persistence, const char *schema,
                const char *name)
{
  gboolean unlogged = persistence == 'u';
  const char *kind;

  switch (relkind)
    {
      case 'r':
        kind = unlogged ? "Unlogged table" : "Table";
        break;
      case 'v':
        kind = "View";
        break;
      case 'm':
        kind = unlogged ? "Unlogged materialized view" : "Materialized view";
        break;
      case 'S':
        kind = unlogged ? "Unlogged sequence" : "Sequence";
        break;
      case 'i':
        kind = unlogged ? "Unlogged index" : "Index";
        break;
      case 'I':
        kind = unlogged ? "Unlogged partitioned index" : "Partitioned index";
        break;
      case 't':
        kind = "TOAST table";
        break;
      case 'c':
        kind = "Composite type";
        break;
      case 'f':
        kind = "Foreign table";
        break;
      case 'p':
        kind = unlogged ? "Unlogged partitioned table" : "Partitioned table";
        break;
      default:
        return g_strdup_printf ("?%c? \"%s.%s\"", relkind, schema, name);
    }
  return g_strdup_printf ("%s \"%s.%s\"", kind, schema, name);
}

static const char sequence_columns_sql[]
    = "SELECT pg_catalog.format_type(seqtypid, NULL) AS \"Type\",\n"
      "       seqstart AS \"Start\",\n"
      "       seqmin AS \"Minimum\",\n"
      "       seqmax AS \"Maximum\",\n"
      "       seqincrement AS \"Increment\",\n"
      "       CASE WHEN seqcycle THEN 'yes' ELSE 'no' END AS \"Cycles?\",\n"
      "       seqcache AS \"Cache\"\n"
      "FROM pg_catalog.pg_sequence\n"
      "WHERE seqrelid = $OID;";

static const char sequence_footers_sql[]
    = "SELECT 0, CASE d.deptype WHEN 'a' THEN 'Owned by: '\n"
      "  ELSE 'Sequence for identity column: ' END ||\n"
      "  pg_catalog.quote_ident(nspname) || '.' ||\n"
      "  pg_catalog.quote_ident(relname) || '.' ||\n"
      "  pg_catalog.quote_ident(attname)\n"
      "FROM pg_catalog.pg_class c\n"
      "INNER JOIN pg_catalog.pg_depend d ON c.oid=d.refobjid\n"
      "INNER JOIN pg_catalog.pg_namespace n ON n.oid=c.relnamespace\n"
      "INNER JOIN pg_catalog.pg_attribute a ON (\n"
      " a.attrelid=c.oid AND\n"
      " a.attnum=d.refobjsubid)\n"
      "WHERE d.classid='pg_catalog.pg_class'::pg_catalog.regclass\n"
      " AND d.refclassid='pg_catalog.pg_class'::pg_catalog.regclass\n"
      " AND d.objid=$OID\n"
      " AND d.deptype IN ('a', 'i')\n"
      "LIMIT 1;";

static const char index_footers_sql[]
    = "SELECT 0, CASE WHEN i.indisprimary THEN 'primary key, '\n"
      "  WHEN i.indisunique THEN 'unique' || CASE WHEN i.indnullsnotdistinct\n"
      "    THEN ' nulls not distinct' ELSE '' END || ', '\n"
      "  ELSE '' END || a.amname || ', for table \"' || n.nspname || '.' ||\n"
      "  c2.relname || '\"' ||\n"
      "  coalesce(', predicate (' ||\n"
      "    pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) || ')', '') ||\n"
      "  CASE WHEN i.indisclustered THEN ', clustered' ELSE '' END ||\n"
      "  CASE WHEN NOT i.indisvalid THEN ', invalid' ELSE '' END ||\n"
      "  CASE WHEN (NOT i.indimmediate) AND EXISTS (SELECT 1 FROM\n"
      "    pg_catalog.pg_constraint WHERE conrelid = i.indrelid AND\n"
      "    conindid = i.indexrelid AND contype IN ('p','u','x') AND\n"
      "    condeferrable) THEN ', deferrable' ELSE '' END ||\n"
      "  CASE WHEN (NOT i.indimmediate) AND EXISTS (SELECT 1 FROM\n"
      "    pg_catalog.pg_constraint WHERE conrelid = i.indrelid AND\n"
      "    conindid = i.indexrelid AND contype IN ('p','u','x') AND\n"
      "    condeferred) THEN ', initially deferred' ELSE '' END ||\n"
      "  CASE WHEN i.indisreplident THEN ', replica identity' ELSE '' END\n"
      "FROM pg_catalog.pg_index i, pg_catalog.pg_class c,\n"
      "  pg_catalog.pg_class c2, pg_catalog.pg_am a,\n"
      "  pg_catalog.pg_namespace n\n"
      "WHERE i.indexrelid = c.oid AND c.oid = $OID AND c.relam = a.oid\n"
      "  AND i.indrelid = c2.oid AND n.oid = c.relnamespace\n"
      "UNION ALL\n"
      "SELECT 125, 'Tablespace: \"' || t.spcname || '\"'\n"
      "FROM pg_catalog.pg_class c\n"
      "  JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace\n"
      "WHERE c.oid = $OID\n"
      "UNION ALL\n"
      "SELECT 140, 'Options: ' ||\n"
      "  pg_catalog.array_to_string(c.reloptions, ', ')\n"
      "FROM pg_catalog.pg_class c\n"
      "WHERE $VERBOSE AND c.oid = $OID AND c.reloptions IS NOT NULL\n"
      "ORDER BY 1;";

/* The footer sections of a table-like relation, in psql's order: each
 * part yields (section, order within it, text).  The headings and the
 * layout of sections 90-101 are added by build_footers(). */
enum
{
  SECTION_VIEW_DEFINITION = 10,
  SECTION_VIEW_RULES = 11,
  SECTION_PARTITION_OF = 20,
  SECTION_PARTITION_CONSTRAINT = 21,
  SECTION_PARTITION_KEY = 30,
  SECTION_OWNING_TABLE = 35,
  SECTION_INDEXES = 40,
  SECTION_MATVIEW_DEFINITION = 45,
  SECTION_CHECKS = 50,
  SECTION_FOREIGN_KEYS = 60,
  SECTION_REFERENCED_BY = 70,
  SECTION_RULES = 75,    /* 75-78: enabled, disabled, always, replica */
  SECTION_TRIGGERS = 80, /* 80-83: enabled, disabled, always, replica */
  SECTION_INHERITS = 90,
  SECTION_CHILD_COUNT = 100,
  SECTION_CHILDREN = 101,
  SECTION_REPLICA_IDENTITY = 120,
  SECTION_TABLESPACE = 125,
  SECTION_ACCESS_METHOD = 130,
  SECTION_OPTIONS = 140,
};

typedef struct
{
  const char *relkinds; /* where the section applies */
  gboolean verbose;     /* only with \d+ */
  const char *sql;
} FooterPart;

static const FooterPart footer_parts[] = {
  { "vm", TRUE,
    "SELECT CASE c.relkind WHEN 'm' THEN 45 ELSE 10 END, 0::int8,\n"
    "  pg_catalog.pg_get_viewdef($OID, true)\n"
    "FROM pg_catalog.pg_class c WHERE c.oid = $OID" },
  { "v", TRUE,
    "SELECT 11, row_number() OVER (ORDER BY r.rulename), ' ' ||\n"
    "  substr(trim(trailing ';' from pg_catalog.pg_get_ruledef(r.oid,\n"
    "    true)), 13)\n"
    "FROM pg_catalog.pg_rewrite r\n"
    "WHERE r.ev_class = $OID AND r.rulename != '_RETURN'" },
  { "rpf", FALSE,
    "SELECT 20, 0::int8, 'Partition of: ' ||\n"
    "  i.inhparent::pg_catalog.regclass::pg_catalog.text || ' ' ||\n"
    "  pg_catalog.pg_get_expr(c.relpartbound, c.oid) ||\n"
    "  CASE WHEN i.inhdetachpending THEN ' DETACH PENDING' ELSE '' END\n"
    "FROM pg_catalog.pg_class c\n"
    "  JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid\n"
    "WHERE c.oid = $OID AND c.relispartition" },
  { "rpf", TRUE,
    "SELECT 21, 0::int8, 'Partition constraint: ' ||\n"
    "  pg_catalog.pg_get_partition_constraintdef($OID)\n"
    "WHERE pg_catalog.pg_get_partition_constraintdef($OID) IS NOT NULL" },
  { "p", FALSE,
    "SELECT 30, 0::int8, 'Partition key: ' ||\n"
    "  pg_catalog.pg_get_partkeydef($OID)" },
  { "rpmt", FALSE,
    "SELECT 40, row_number() OVER (ORDER BY i.indisprimary DESC,\n"
    "  c2.relname), '    \"' || c2.relname || '\"' ||\n"
    "  CASE WHEN con.contype = 'x'\n"
    "    THEN ' ' || pg_catalog.pg_get_constraintdef(con.oid, true)\n"
    "  ELSE CASE WHEN i.indisprimary THEN ' PRIMARY KEY,'\n"
    "    WHEN i.indisunique THEN CASE WHEN con.contype = 'u'\n"
    "      THEN ' UNIQUE CONSTRAINT,' ELSE ' UNIQUE,' END\n"
    "    ELSE '' END ||\n"
    "    ' ' || substr(x.def, strpos(x.def, ' USING ') + 7) ||\n"
    "    CASE WHEN con.condeferrable THEN ' DEFERRABLE' ELSE '' END ||\n"
    "    CASE WHEN con.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END\n"
    "  END ||\n"
    "  CASE WHEN i.indisclustered THEN ' CLUSTER' ELSE '' END ||\n"
    "  CASE WHEN NOT i.indisvalid THEN ' INVALID' ELSE '' END ||\n"
    "  CASE WHEN i.indisreplident THEN ' REPLICA IDENTITY' ELSE '' END ||\n"
    "  coalesce(', tablespace \"' || (SELECT spcname FROM\n"
    "    pg_catalog.pg_tablespace WHERE oid = c2.reltablespace) || '\"', '')\n"
    "FROM pg_catalog.pg_index i\n"
    "  JOIN pg_catalog.pg_class c2 ON c2.oid = i.indexrelid\n"
    "  LEFT JOIN pg_catalog.pg_constraint con ON con.conrelid = i.indrelid\n"
    "    AND con.conindid = i.indexrelid AND con.contype IN ('p','u','x')\n"
    "  CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_indexdef(i.indexrelid,\n"
    "    0, true) AS def) x\n"
    "WHERE i.indrelid = $OID" },
  { "rpf", FALSE,
    "SELECT 50, row_number() OVER (ORDER BY r.conname),\n"
    "  '    \"' || r.conname || '\" ' ||\n"
    "  pg_catalog.pg_get_constraintdef(r.oid, true)\n"
    "FROM pg_catalog.pg_constraint r\n"
    "WHERE r.conrelid = $OID AND r.contype = 'c'" },
  { "rp", FALSE,
    "SELECT 60, row_number() OVER (ORDER BY conrelid = $OID DESC,\n"
    "  conname),\n"
    "  CASE WHEN conrelid = $OID THEN '    \"' || conname || '\" '\n"
    "  ELSE '    TABLE \"' ||\n"
    "    conrelid::pg_catalog.regclass::pg_catalog.text ||\n"
    "    '\" CONSTRAINT \"' || conname || '\" ' END ||\n"
    "  pg_catalog.pg_get_constraintdef(oid, true)\n"
    "FROM pg_catalog.pg_constraint\n"
    "WHERE conrelid IN (SELECT pg_catalog.pg_partition_ancestors($REL)\n"
    "                   UNION VALUES ($REL))\n"
    "  AND contype = 'f' AND conparentid = 0" },
  { "rp", FALSE,
    "SELECT 70, row_number() OVER (ORDER BY conname),\n"
    "  '    TABLE \"' || conrelid::pg_catalog.regclass::pg_catalog.text ||\n"
    "  '\" CONSTRAINT \"' || conname || '\" ' ||\n"
    "  pg_catalog.pg_get_constraintdef(oid, true)\n"
    "FROM pg_catalog.pg_constraint c\n"
    "WHERE confrelid IN (SELECT pg_catalog.pg_partition_ancestors($REL)\n"
    "                    UNION ALL VALUES ($REL))\n"
    "  AND contype = 'f' AND conparentid = 0" },
  { "rp", FALSE,
    "SELECT 75 + CASE r.ev_enabled WHEN 'O' THEN 0 WHEN 'D' THEN 1\n"
    "  WHEN 'A' THEN 2 ELSE 3 END, row_number() OVER (ORDER BY r.rulename),\n"
    "  '    ' || substr(trim(trailing ';' from\n"
    "    pg_catalog.pg_get_ruledef(r.oid, true)), 13)\n"
    "FROM pg_catalog.pg_rewrite r WHERE r.ev_class = $OID" },
  { "rpvf", FALSE,
    "SELECT 80 + CASE t.tgenabled WHEN 'O' THEN 0 WHEN 'D' THEN 1\n"
    "  WHEN 'A' THEN 2 ELSE 3 END, row_number() OVER (ORDER BY t.tgname),\n"
    "  '    ' || substr(x.def, strpos(x.def, ' TRIGGER ') + 9) ||\n"
    "  CASE WHEN t.tgparentid <> 0 THEN ', ON TABLE ' ||\n"
    "    (SELECT u.tgrelid::pg_catalog.regclass::pg_catalog.text\n"
    "     FROM pg_catalog.pg_trigger AS u,\n"
    "       pg_catalog.pg_partition_ancestors(t.tgrelid)\n"
    "         WITH ORDINALITY AS a(relid, depth)\n"
    "     WHERE u.tgname = t.tgname AND u.tgrelid = a.relid\n"
    "       AND u.tgparentid = 0\n"
    "     ORDER BY a.depth LIMIT 1)\n"
    "  ELSE '' END\n"
    "FROM pg_catalog.pg_trigger t\n"
    "  CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_triggerdef(t.oid, true)\n"
    "    AS def) x\n"
    "WHERE t.tgrelid = $OID AND NOT t.tgisinternal" },
  { "rpf", FALSE,
    "SELECT 90, row_number() OVER (ORDER BY i.inhseqno),\n"
    "  c.oid::pg_catalog.regclass::pg_catalog.text\n"
    "FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i\n"
    "WHERE c.oid = i.inhparent AND i.inhrelid = $OID\n"
    "  AND c.relkind != 'p' AND c.relkind != 'I'" },
  { "rpf", FALSE,
    "SELECT 100, 0::int8, count(*)::pg_catalog.text\n"
    "FROM pg_catalog.pg_inherits i WHERE i.inhparent = $OID" },
  { "rpf", TRUE,
    "SELECT 101, row_number() OVER (ORDER BY\n"
    "  pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',\n"
    "  c.oid::pg_catalog.regclass::pg_catalog.text),\n"
    "  c.oid::pg_catalog.regclass::pg_catalog.text ||\n"
    "  coalesce(' ' || pg_catalog.pg_get_expr(c.relpartbound, c.oid), '') ||\n"
    "  CASE WHEN c.relkind IN ('p', 'I') THEN ', PARTITIONED'\n"
    "    WHEN c.relkind = 'f' THEN ', FOREIGN' ELSE '' END ||\n"
    "  CASE WHEN i.inhdetachpending THEN ' (DETACH PENDING)' ELSE '' END\n"
    "FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i\n"
    "WHERE c.oid = i.inhrelid AND i.inhparent = $OID" },
  { "rm", TRUE,
    "SELECT 120, 0::int8, 'Replica Identity: ' ||\n"
    "  CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'\n"
    "  ELSE 'DEFAULT' END\n"
    "FROM pg_catalog.pg_class c\n"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "WHERE c.oid = $OID AND c.relreplident <> 'i'\n"
    "  AND ((n.nspname <> 'pg_catalog' AND c.relreplident <> 'd')\n"
    "    OR (n.nspname = 'pg_catalog' AND c.relreplident <> 'n'))" },
  { "rpmt", FALSE,
    "SELECT 125, 0::int8, 'Tablespace: \"' || t.spcname || '\"'\n"
    "FROM pg_catalog.pg_class c\n"
    "  JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace\n"
    "WHERE c.oid = $OID" },
  { "t", FALSE,
    "SELECT 35, 0::int8, 'Owning table: \"' || n.nspname || '.' ||\n"
    "  c.relname || '\"'\n"
    "FROM pg_catalog.pg_class c\n"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
    "WHERE c.reltoastrelid = $OID" },
  { "rmt", TRUE,
    "SELECT 130, 0::int8, 'Access method: ' || am.amname\n"
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_am am ON am.oid = "
    "c.relam\n"
    "WHERE c.oid = $OID" },
  { "rpmv", TRUE,
    "SELECT 140, 0::int8, 'Options: ' ||\n"
    "  pg_catalog.array_to_string(c.reloptions, ', ')\n"
    "FROM pg_catalog.pg_class c\n"
    "WHERE c.oid = $OID AND c.reloptions IS NOT NULL" },
};

/* Returns (transfer full) the query of the footers of a relation of
 * @relkind (columns: section, text), or NULL when it has none. */
static char *
footers_sql (const char *oid, char relkind, gboolean verbose)
{
  if (relkind == 'S')
    return with_oid (sequence_footers_sql, oid);
  if (relkind == 'i' || relkind == 'I')
    {
      g_autoptr (GString) sql = g_string_new (index_footers_sql);
      g_string_replace (sql, "$VERBOSE", verbose ? "true" : "false", 0);
      return with_oid (sql->str, oid);
    }

  g_autoptr (GString) sql = g_string_new ("SELECT s, t FROM (\n");
  gboolean any = FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (footer_parts); i++)
    {
      const FooterPart *part = &footer_parts[i];
      if (strchr (part->relkinds, relkind) == NULL
          || (part->verbose && !verbose))
        continue;
      if (any)
        g_string_append (sql, "\nUNION ALL\n");
      g_string_append (sql, part->sql);
      any = TRUE;
    }
  if (!any)
    return NULL;
  g_string_append (sql, "\n) AS f(s, o, t)\nORDER BY s, o;");
  return with_oid (sql->str, oid);
}

/* The heading of a list section, or NULL for sections of single lines. */
static const char *
section_heading (int section)
{
  switch (section)
    {
      case SECTION_VIEW_DEFINITION:
      case SECTION_MATVIEW_DEFINITION:
        return "View definition:";
      case SECTION_VIEW_RULES:
      case SECTION_RULES:
        return "Rules:";
      case SECTION_RULES + 1:
        return "Disabled rules:";
      case SECTION_RULES + 2:
        return "Rules firing always:";
      case SECTION_RULES + 3:
        return "Rules firing on replica only:";
      case SECTION_INDEXES:
        return "Indexes:";
      case SECTION_CHECKS:
        return "Check constraints:";
      case SECTION_FOREIGN_KEYS:
        return "Foreign-key constraints:";
      case SECTION_REFERENCED_BY:
        return "Referenced by:";
      case SECTION_TRIGGERS:
        return "Triggers:";
      case SECTION_TRIGGERS + 1:
        return "Disabled user triggers:";
      case SECTION_TRIGGERS + 2:
        return "Triggers firing always:";
      case SECTION_TRIGGERS + 3:
        return "Triggers firing on replica only:";
      default:
        return NULL;
    }
}

/* Lays out the footer rows (section, text) of a relation the way psql
 * does: headings above list sections; "Inherits: a,\n          b" and
 * "Partitions: …" continued under their label; the child count.  Returns
 * (transfer full) a NULL-terminated array. */
static GStrv
build_footers (const TuskQueryResult *rows, char relkind, gboolean verbose)
{
  g_autoptr (GStrvBuilder) footers = g_strv_builder_new ();
  int previous = -1;

  for (guint64 i = 0; i < rows->n_rows; i++)
    {
      int section = atoi (value (rows, i, 0));
      const char *text = value (rows, i, 1);
      gboolean first = section != previous;
      gboolean last
          = i + 1 == rows->n_rows || atoi (value (rows, i + 1, 0)) != section;
      const char *heading = section_heading (section);
      previous = section;

      if (first && heading)
        g_strv_builder_add (footers, heading);

      if (section == SECTION_INHERITS || section == SECTION_CHILDREN)
        {
          const char *label
              = section == SECTION_INHERITS
                    ? "Inherits"
                    : (relkind == 'p' ? "Partitions" : "Child tables");
          g_autofree char *line
              = first
                    ? g_strdup_printf ("%s: %s%s", label, text, last ? "" : ",")
                    : g_strdup_printf ("%*s  %s%s", (int)strlen (label), "",
                                       text, last ? "" : ",");
          g_strv_builder_add (footers, line);
        }
      else if (section == SECTION_CHILD_COUNT)
        {
          int n = atoi (text);
          g_autofree char *line = NULL;
          if (relkind == 'p' && n == 0)
            line = g_strdup ("Number of partitions: 0");
          else if (!verbose && n > 0)
            line = g_strdup_printf (
                "Number of %s: %d (Use \\d+ to list "
                "them.)",
                relkind == 'p' ? "partitions" : "child tables", n);
          if (line)
            g_strv_builder_add (footers, line);
        }
      else
        g_strv_builder_add (footers, text);
    }
  return g_strv_builder_end (footers);
}

/* Returns (transfer full) the query of @relkind's column table. */
static char *
columns_sql (const char *oid, char relkind, gboolean verbose)
{
  if (relkind == 'S')
    return with_oid (sequence_columns_sql, oid);

  gboolean index = relkind == 'i' || relkind == 'I';
  gboolean toast = relkind == 't';
  g_autoptr (GString) sql = g_string_new (
      "SELECT a.attname AS \"Column\",\n"
      "  pg_catalog.format_type(a.atttypid, a.atttypmod) AS \"Type\"");
  if (index)
    g_string_append (sql,
                     ",\n  CASE WHEN a.attnum <= (SELECT i.indnkeyatts FROM "
                     "pg_catalog.pg_index i WHERE i.indexrelid = $OID) THEN "
                     "'yes' ELSE 'no' END AS \"Key?\",\n"
                     "  pg_catalog.pg_get_indexdef(a.attrelid, a.attnum, "
                     "TRUE) AS \"Definition\"");
  else if (!toast)
    g_string_append (
        sql, ",\n  coalesce((SELECT c.collname FROM pg_catalog.pg_collation "
             "c, pg_catalog.pg_type t\n"
             "   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND "
             "a.attcollation <> t.typcollation), '') AS \"Collation\",\n"
             "  CASE WHEN a.attnotnull THEN 'not null' ELSE '' END AS "
             "\"Nullable\",\n"
             "  CASE WHEN a.attidentity = 'a' THEN 'generated always as "
             "identity'\n"
             "    WHEN a.attidentity = 'd' THEN 'generated by default as "
             "identity'\n"
             "    WHEN a.attgenerated = 's' THEN 'generated always as (' ||\n"
             "      pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) || ') "
             "stored'\n"
             "    ELSE coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid, "
             "true), '')\n"
             "  END AS \"Default\"");
  if (relkind == 'f')
    g_string_append (sql, ",\n  CASE WHEN a.attfdwoptions IS NULL THEN '' "
                          "ELSE '(' || pg_catalog.array_to_string(ARRAY("
                          "SELECT pg_catalog.quote_ident(option_name) || ' ' "
                          "|| pg_catalog.quote_literal(option_value) FROM "
                          "pg_catalog.pg_options_to_table(a.attfdwoptions)), "
                          "', ') || ')' END AS \"FDW options\"");
  if (verbose)
    {
      g_string_append (sql, ",\n  CASE a.attstorage WHEN 'p' THEN 'plain' "
                            "WHEN 'm' THEN 'main' WHEN 'x' THEN 'extended' "
                            "WHEN 'e' THEN 'external' ELSE '?\?\?' END AS "
                            "\"Storage\"");
      if (strchr ("rpm", relkind))
        g_string_append (sql, ",\n  CASE a.attcompression WHEN 'p' THEN "
                              "'pglz' WHEN 'l' THEN 'lz4' ELSE '' END AS "
                              "\"Compression\"");
      if (strchr ("riImfp", relkind))
        g_string_append (sql, ",\n  coalesce(CASE WHEN a.attstattarget = -1 "
                              "THEN NULL ELSE a.attstattarget::pg_catalog.text "
                              "END, '') AS \"Stats target\"");
      if (strchr ("rvmfcp", relkind))
        g_string_append (sql, ",\n  coalesce(pg_catalog.col_description("
                              "a.attrelid, a.attnum), '') AS \"Description\"");
    }
  g_string_append (sql, "\nFROM pg_catalog.pg_attribute a\n");
  if (!index && !toast)
    g_string_append (sql, "  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid "
                          "= a.attrelid\n"
                          "    AND d.adnum = a.attnum AND a.atthasdef\n");
  g_string_append (sql, "WHERE a.attrelid = $OID AND a.attnum > 0 AND NOT "
                        "a.attisdropped\n"
                        "ORDER BY a.attnum;");
  return with_oid (sql->str, oid);
}

/* Describes one relation: its column table under psql's title, then its
 * footers.  FALSE after printing why when a query or the output failed. */
static gboolean
describe_one (TuskShell *shell, const char *oid, const char *schema,
              const char *name, char relkind, char persistence,
              gboolean verbose)
{
  g_autofree char *title = describe_title (relkind, persistence, schema, name);
  g_autofree char *sql = columns_sql (oid, relkind, verbose);
  g_autoptr (TuskQueryResult) columns = run_query (shell, sql);
  if (columns == NULL)
    return FALSE;

  if (shell->print.format != TUSK_FORMAT_TABLE
      && shell->print.format != TUSK_FORMAT_UNALIGNED)
    return tusk_shell_print_result (shell, NULL, columns);

  g_auto (GStrv) footers = NULL;
  g_autofree char *footer_sql = footers_sql (oid, relkind, verbose);
  if (footer_sql)
    {
      g_autoptr (TuskQueryResult) rows = run_query (shell, footer_sql);
      if (rows == NULL)
        return FALSE;
      footers = build_footers (rows, relkind, verbose);
    }

  g_autoptr (TextTable) table = text_table_from_result (columns);
  return print_text_table (shell, table, title, (const char *const *)footers);
}

/* \d NAME (psql's describeTableDetails): every relation matching the
 * pattern, in schema and name order. */
static TuskMetaStatus
describe_relations (const Command *cmd, Modifiers mods, const char *pattern)
{
  g_autoptr (GString) sql = g_string_new (
      "SELECT c.oid,\n"
      "  n.nspname,\n"
      "  c.relname,\n"
      "  c.relkind,\n"
      "  c.relpersistence\n"
      "FROM pg_catalog.pg_class c\n"
      "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n");
  g_autoptr (GError) error = NULL;
  gboolean have_where = FALSE;

  if (!append_pattern (sql, &have_where, pattern, "n.nspname", "c.relname",
                       NULL, "pg_catalog.pg_table_is_visible(c.oid)", &error))
    return pattern_failed (cmd->name, error);
  g_string_append (sql, "ORDER BY 2, 3;");

  g_autoptr (TuskQueryResult) found = run_query (cmd->shell, sql->str);
  if (found == NULL)
    return TUSK_META_FAILED;
  if (found->n_rows == 0)
    {
      fprintf (stderr, "Did not find any relation named \"%s\".\n", pattern);
      return TUSK_META_FAILED;
    }
  for (guint64 i = 0; i < found->n_rows; i++)
    {
      const char *oid = value (found, i, 0);
      guint64 number;
      if (!g_ascii_string_to_unsigned (oid, 10, 1, G_MAXUINT32, &number, NULL))
        continue;
      if (!describe_one (cmd->shell, oid, value (found, i, 1),
                         value (found, i, 2), value (found, i, 3)[0],
                         value (found, i, 4)[0], mods.verbose))
        return TUSK_META_FAILED;
    }
  return TUSK_META_OK;
}

/* The \d family: \d[S+] [NAME], \dt \dv \dm \di \ds (combinable: \dtv),
 * \df, \dn, \dT, each with S and + after the letters.  FALSE when @name is
 * not one of them. */
static gboolean
parse_describe_name (const char *name, char *what, char kinds[8],
                     Modifiers *mods)
{
  const char *p = name + 1; /* after the 'd' */
  gsize n_kinds = 0;

  *what = 'd';
  if (*p == 'f' || *p == 'n' || *p == 'T')
    *what = *p++;
  else
    while (*p && strchr ("tvmis", *p) && n_kinds < 5)
      {
        if (strchr (kinds, *p) == NULL)
          kinds[n_kinds++] = *p;
        p++;
      }
  kinds[n_kinds] = '\0';

  *mods = (Modifiers){ FALSE, FALSE };
  for (; *p; p++)
    {
      if (*p == 'S' && !mods->system)
        mods->system = TRUE;
      else if (*p == '+' && !mods->verbose)
        mods->verbose = TRUE;
      else
        return FALSE;
    }
  return TRUE;
}

static TuskMetaStatus
cmd_describe (Command *cmd)
{
  char what;
  char kinds[8] = "";
  Modifiers mods;
  g_auto (GStrv) args = NULL;

  if (!parse_describe_name (cmd->name, &what, kinds, &mods))
    {
      fprintf (stderr, "invalid command \\%s\nTry \\? for help.\n", cmd->name);
      return TUSK_META_FAILED;
    }
  if (!get_args (cmd, TRUE, 0, 1, &args))
    return TUSK_META_FAILED;
  if (!check_connected (cmd->shell))
    return TUSK_META_FAILED;

  const char *pattern = args[0];
  switch (what)
    {
      case 'f':
        return list_functions (cmd, mods, pattern);
      case 'n':
        return list_schemas (cmd, mods, pattern);
      case 'T':
        return list_types (cmd, mods, pattern);
      default:
        if (kinds[0] == '\0' && pattern)
          return describe_relations (cmd, mods, pattern);
        return list_relations (cmd, kinds[0] ? kinds : "tvmsE", mods, pattern);
    }
}

/* ---- \c and \conninfo ----------------------------------------------- */

/* What the server says about the session: database, user, server address
 * (NULL over a Unix socket) and SSL. */
typedef struct
{
  char *database;
  char *user;
  char *address;
  char *ssl_version; /* NULL without SSL */
  char *ssl_cipher;
} SessionInfo;

static void
session_info_clear (SessionInfo *info)
{
  g_free (info->database);
  g_free (info->user);
  g_free (info->address);
  g_free (info->ssl_version);
  g_free (info->ssl_cipher);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SessionInfo, session_info_clear)

static gboolean
get_session_info (TuskShell *shell, SessionInfo *info)
{
  g_autoptr (TuskQueryResult) result = run_query (
      shell, "SELECT pg_catalog.current_database(), session_user,\n"
             "  pg_catalog.host(pg_catalog.inet_server_addr()),\n"
             "  s.version, s.cipher\n"
             "FROM (SELECT 1) AS one\n"
             "  LEFT JOIN pg_catalog.pg_stat_ssl s\n"
             "    ON s.pid = pg_catalog.pg_backend_pid() AND s.ssl");
  if (result == NULL || result->n_rows != 1)
    return FALSE;
  info->database = g_strdup (value (result, 0, 0));
  info->user = g_strdup (value (result, 0, 1));
  info->address = g_strdup (tusk_query_result_get_value (result, 0, 2));
  info->ssl_version = g_strdup (tusk_query_result_get_value (result, 0, 3));
  info->ssl_cipher = g_strdup (tusk_query_result_get_value (result, 0, 4));
  return TRUE;
}

/* The host as configured ("" for libpq's default socket directory). */
static const char *
config_host (const TuskConnectionConfig *config)
{
  return config->host ? config->host : "";
}

/* psql's sentence about the connection: "You are connected to database
 * "x" as user "y" on host "h" at port "p"." (@now: "You are now
 * connected"), with "(address …)" when the host is a name, or "via socket
 * in …".  Never a password: the shell does not hold one. */
static void
print_connection_sentence (TuskShell *shell, const SessionInfo *info,
                           gboolean now, gboolean with_host)
{
  const char *host = config_host (shell->config);
  const char *start = now ? "You are now connected" : "You are connected";

  if (!with_host)
    printf ("%s to database \"%s\" as user \"%s\".\n", start, info->database,
            info->user);
  else if (info->address == NULL)
    printf ("%s to database \"%s\" as user \"%s\" via socket in \"%s\" at "
            "port \"%d\".\n",
            start, info->database, info->user,
            *host ? host : "the default socket directory", shell->config->port);
  else if (shell->config->ssh_tunnel == NULL && *host
           && !g_str_equal (host, info->address))
    printf ("%s to database \"%s\" as user \"%s\" on host \"%s\" (address "
            "\"%s\") at port \"%d\".\n",
            start, info->database, info->user, host, info->address,
            shell->config->port);
  else
    printf ("%s to database \"%s\" as user \"%s\" on host \"%s\" at port "
            "\"%d\".\n",
            start, info->database, info->user, *host ? host : info->address,
            shell->config->port);
}

static TuskMetaStatus
cmd_conninfo (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_auto (SessionInfo) info = { 0 };

  if (!get_args (cmd, FALSE, 0, 0, &args))
    return TUSK_META_FAILED;
  if (!check_connected (shell) || !get_session_info (shell, &info))
    return TUSK_META_FAILED;

  print_connection_sentence (shell, &info, FALSE, TRUE);
  if (shell->config->ssh_tunnel)
    printf ("SSH tunnel through %s@%s:%d.\n",
            shell->config->ssh_tunnel->username,
            shell->config->ssh_tunnel->host, shell->config->ssh_tunnel->port);
  if (info.ssl_version)
    printf ("SSL connection (protocol: %s, cipher: %s, compression: off)\n",
            info.ssl_version, info.ssl_cipher ? info.ssl_cipher : "unknown");
  fflush (stdout);
  return TUSK_META_OK;
}

/* "-" stands for "keep the current value", as in psql's \c. */
static const char *
unless_dash (const char *arg)
{
  return arg && !g_str_equal (arg, "-") ? arg : NULL;
}

/* \c [TARGET] or psql's \c [DBNAME|-] [USER|-] [HOST|-] [PORT|-].  TARGET
 * is a saved connection's name, a URI or a conninfo string; anything else
 * is a database name on the current server, reached with the current
 * connection's settings (SSL included).  On failure the old connection
 * stays. */
static TuskMetaStatus
cmd_connect (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;

  if (!get_args (cmd, FALSE, 0, 4, &args))
    return TUSK_META_FAILED;

  const char *first = unless_dash (args[0]);
  gboolean positional = args[0] == NULL || args[1] != NULL || first == NULL;
  gboolean is_target = FALSE;

  if (!positional)
    {
      if (strstr (first, "://") != NULL || strchr (first, '=') != NULL)
        is_target = TRUE;
      else
        {
          TuskStorage *storage = tusk_state_open_storage (shell->state, NULL);
          g_autoptr (TuskConnectionConfig) saved
              = storage
                    ? tusk_connection_repo_find_by_name (storage, first, NULL)
                    : NULL;
          is_target = saved != NULL;
        }
    }

  g_autofree char *old_host
      = shell->config ? g_strdup (config_host (shell->config)) : NULL;
  int old_port = shell->config ? shell->config->port : 0;
  gboolean ok;

  if (is_target)
    ok = tusk_shell_connect (shell, first, NULL, &error);
  else if (shell->config == NULL)
    {
      TuskTargetOverrides overrides
          = { .dbname = first,
              .user = unless_dash (args[0] ? args[1] : NULL),
              .host = unless_dash (args[0] && args[1] ? args[2] : NULL),
              .port
              = unless_dash (args[0] && args[1] && args[2] ? args[3] : NULL) };
      ok = tusk_shell_connect (shell, NULL, &overrides, &error);
    }
  else if (shell->config->ssh_tunnel != NULL && args[0] != NULL)
    {
      fprintf (stderr,
               "\\c: this connection goes through an SSH tunnel; to reach "
               "another database through it, save a connection for it "
               "(tusk conn add NAME … --ssh-host …) and use \\c NAME\n");
      return TUSK_META_FAILED;
    }
  else if (args[0] == NULL && shell->saved)
    ok = tusk_shell_connect (shell, shell->config->name, NULL, &error);
  else
    {
      /* The current connection's settings (SSL, timeouts, read-only) as
       * the target, with psql's positional overrides. */
      g_autofree char *conninfo
          = tusk_connection_config_to_conninfo (shell->config);
      TuskTargetOverrides overrides = { 0 };
      if (args[0])
        {
          overrides.dbname = first;
          overrides.user = unless_dash (args[1]);
          overrides.host = args[1] ? unless_dash (args[2]) : NULL;
          overrides.port = args[1] && args[2] ? unless_dash (args[3]) : NULL;
        }
      ok = tusk_shell_connect (shell, conninfo, &overrides, &error);
    }

  if (!ok)
    {
      tusk_shell_print_error (shell, error, NULL);
      if (shell->config != NULL && shell->session != NULL)
        fputs ("Previous connection kept\n", stderr);
      return TUSK_META_FAILED;
    }

  g_auto (SessionInfo) info = { 0 };
  if (!get_session_info (shell, &info))
    return TUSK_META_FAILED;
  gboolean moved = old_host == NULL
                   || !g_str_equal (old_host, config_host (shell->config))
                   || old_port != shell->config->port;
  print_connection_sentence (shell, &info, TRUE, moved);
  fflush (stdout);
  return TUSK_META_OK;
}

/* ---- settings: \x \timing \format \o -------------------------------- */

/* psql's boolean words: on/off, true/false, yes/no, 1/0 and their unique
 * prefixes, any case.  FALSE for anything else. */
static gboolean
parse_bool (const char *text, gboolean *result)
{
  static const struct
  {
    const char *word;
    gsize min; /* shortest accepted prefix */
    gboolean value;
  } words[] = {
    { "true", 1, TRUE }, { "false", 1, FALSE }, { "yes", 1, TRUE },
    { "no", 1, FALSE },  { "on", 2, TRUE },     { "off", 2, FALSE },
    { "1", 1, TRUE },    { "0", 1, FALSE },
  };
  gsize len = strlen (text);

  for (gsize i = 0; i < G_N_ELEMENTS (words); i++)
    if (len >= words[i].min && len <= strlen (words[i].word)
        && g_ascii_strncasecmp (text, words[i].word, len) == 0)
      {
        *result = words[i].value;
        return TRUE;
      }
  return FALSE;
}

static TuskMetaStatus
cmd_expanded (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  gboolean on = !shell->print.expanded;

  if (!get_args (cmd, FALSE, 0, 1, &args))
    return TUSK_META_FAILED;
  if (args[0] && g_ascii_strcasecmp (args[0], "auto") == 0)
    {
      /* The shell's printer has no automatic mode (TuskPrintOptions holds a
       * boolean), so auto is refused rather than pretended. */
      fprintf (stderr, "\\x: \"auto\" is not available in Tusk yet; use "
                       "\\x on or \\x off\n");
      return TUSK_META_FAILED;
    }
  if (args[0] && !parse_bool (args[0], &on))
    {
      fprintf (stderr,
               "unrecognized value \"%s\" for \"expanded\"\n"
               "Available values are: on, off, auto.\n",
               args[0]);
      return TUSK_META_FAILED;
    }
  shell->print.expanded = on;
  printf ("Expanded display is %s.\n", on ? "on" : "off");
  fflush (stdout);
  return TUSK_META_OK;
}

static TuskMetaStatus
cmd_timing (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  gboolean on = !shell->timing;

  if (!get_args (cmd, FALSE, 0, 1, &args))
    return TUSK_META_FAILED;
  if (args[0] && !parse_bool (args[0], &on))
    {
      fprintf (stderr,
               "unrecognized value \"%s\" for \"\\timing\": Boolean "
               "expected\n",
               args[0]);
      return TUSK_META_FAILED;
    }
  shell->timing = on;
  printf ("Timing is %s.\n", on ? "on" : "off");
  fflush (stdout);
  return TUSK_META_OK;
}

static TuskMetaStatus
cmd_format (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;
  TuskFormat format;

  if (!get_args (cmd, FALSE, 0, 1, &args))
    return TUSK_META_FAILED;
  if (args[0] && !tusk_format_from_string (args[0], &format, &error))
    {
      fprintf (stderr, "\\format: %s\nUsage: %s\n", error->message, cmd->usage);
      return TUSK_META_FAILED;
    }
  if (args[0])
    shell->print.format = format;
  printf ("Output format is %s.\n",
          tusk_format_to_string (shell->print.format));
  fflush (stdout);
  return TUSK_META_OK;
}

static TuskMetaStatus
cmd_output (Command *cmd)
{
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  /* "\o |command" pipes to a command: the rest of the line, as psql. */
  g_autofree char *rest = g_strstrip (g_strdup (cmd->rest));
  if (rest[0] == '|')
    path = g_steal_pointer (&rest);
  else if (!get_args (cmd, FALSE, 0, 1, &args))
    return TUSK_META_FAILED;
  else if (args[0])
    path = expand_tilde (args[0]);
  if (!tusk_shell_set_output (cmd->shell, path, &error))
    {
      fprintf (stderr, "\\o: %s\n", error->message);
      return TUSK_META_FAILED;
    }
  return TUSK_META_OK;
}

/* ---- input: \i \e --------------------------------------------------- */

static TuskMetaStatus
cmd_include (Command *cmd)
{
  static int depth; /* main thread only */
  g_auto (GStrv) args = NULL;

  if (!get_args (cmd, FALSE, 1, 1, &args))
    return TUSK_META_FAILED;
  g_autofree char *path = expand_tilde (args[0]);
  if (depth >= MAX_INCLUDE_DEPTH)
    {
      fprintf (stderr,
               "\\i: %s: files include each other more than %d levels "
               "deep; is one including itself?\n",
               path, MAX_INCLUDE_DEPTH);
      return TUSK_META_FAILED;
    }
  FILE *in = fopen (path, "r");
  if (in == NULL)
    {
      fprintf (stderr, "\\i: %s: %s\n", path, g_strerror (errno));
      return TUSK_META_FAILED;
    }
  depth++;
  gboolean ok = tusk_shell_run_stream (cmd->shell, in, path);
  depth--;
  fclose (in);
  return ok ? TUSK_META_OK : TUSK_META_FAILED;
}

/* What load_history() reads, on a worker. */
typedef struct
{
  TuskStorage *storage;
  char *connection_id;
  char *text; /* nullable: a search */
  int limit;
} HistoryRead;

static void
history_read_free (HistoryRead *read)
{
  g_free (read->connection_id);
  g_free (read->text);
  g_free (read);
}

static void
history_read_thread (GTask *task, gpointer source, gpointer task_data,
                     GCancellable *cancellable)
{
  (void)source;
  (void)cancellable;
  HistoryRead *read = task_data;
  GError *error = NULL;

  /* Statements just run are queued to the writer: let them land. */
  tusk_storage_flush (read->storage);
  GPtrArray *entries
      = read->text ? tusk_history_repo_search (read->storage, read->text,
                                               read->connection_id, read->limit,
                                               0, &error)
                   : tusk_history_repo_list (read->storage, read->connection_id,
                                             read->limit, 0, &error);
  if (entries)
    g_task_return_pointer (task, entries, (GDestroyNotify)g_ptr_array_unref);
  else
    g_task_return_error (task, error);
}

/* Returns (transfer full) the newest @limit (-1: all) history entries of
 * the saved connection, newest first, those containing @text (nullable)
 * only, once every statement already run has been written; NULL with
 * @error.  Waits on a worker, iterating the main context. */
static GPtrArray *
load_history (TuskShell *shell, const char *text, int limit, GError **error)
{
  TuskStorage *storage = tusk_state_open_storage (shell->state, error);
  if (storage == NULL)
    return NULL;
  HistoryRead *read = g_new0 (HistoryRead, 1);
  GAsyncResult *result = NULL;

  read->storage = storage;
  read->connection_id = g_strdup (shell->config->id);
  read->text = g_strdup (text);
  read->limit = limit;
  g_autoptr (GTask) task = g_task_new (NULL, NULL, store_result, &result);
  g_task_set_task_data (task, read, (GDestroyNotify)history_read_free);
  g_task_run_in_thread (task, history_read_thread);
  g_autoptr (GAsyncResult) done = wait_result (&result);
  return g_task_propagate_pointer (G_TASK (done), error);
}

/* Returns (transfer full) (nullable) the newest statement of this saved
 * connection's history: what \e and \save take when the query buffer is
 * empty (the shell keeps no other record of the last statement). */
static char *
dup_last_statement (TuskShell *shell)
{
  if (shell->config == NULL || !shell->saved)
    return NULL;
  g_autoptr (GPtrArray) entries = load_history (shell, NULL, 1, NULL);
  if (entries == NULL || entries->len == 0)
    return NULL;
  const TuskHistoryEntry *entry = entries->pdata[0];
  return g_strdup (entry->sql);
}

/* Returns (transfer full) the query buffer when it holds more than white
 * space, else the last statement, else NULL. */
static char *
dup_buffer_or_last (TuskShell *shell, const GString *query_buffer)
{
  if (query_buffer)
    {
      g_autofree char *copy = g_strstrip (g_strdup (query_buffer->str));
      if (*copy)
        return g_strdup (query_buffer->str);
    }
  return dup_last_statement (shell);
}

/* Runs @command_line through /bin/sh with the terminal (as psql: EDITOR
 * may hold arguments), SIGINT and SIGQUIT ignored here while it runs.
 * FALSE with @error when it cannot start or exits with a failure. */
static gboolean
run_editor (const char *editor, const char *path, GError **error)
{
  g_autofree char *quoted = g_shell_quote (path);
  g_autofree char *command = g_strdup_printf ("exec %s %s", editor, quoted);
  const char *argv[] = { "/bin/sh", "-c", command, NULL };
  struct sigaction ignore = { .sa_handler = SIG_IGN };
  struct sigaction old_int, old_quit;

  g_autoptr (GSubprocess) editor_process
      = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_INHERIT, error);
  if (editor_process == NULL)
    return FALSE;
  sigemptyset (&ignore.sa_mask);
  sigaction (SIGINT, &ignore, &old_int);
  sigaction (SIGQUIT, &ignore, &old_quit);
  gboolean waited = g_subprocess_wait (editor_process, NULL, error);
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGQUIT, &old_quit, NULL);
  if (!waited)
    return FALSE;
  if (!g_subprocess_get_if_exited (editor_process))
    {
      g_set_error (error, TUSK_ERROR, TUSK_ERROR_VALIDATION,
                   "the editor \"%s\" was killed by signal %d", editor,
                   g_subprocess_get_term_sig (editor_process));
      return FALSE;
    }
  int status = g_subprocess_get_exit_status (editor_process);
  if (status != 0)
    {
      g_set_error (error, TUSK_ERROR, TUSK_ERROR_VALIDATION,
                   status == 127 ? "could not start the editor \"%s\" (exit "
                                   "status %d): set VISUAL or EDITOR"
                                 : "the editor \"%s\" exited with status %d",
                   editor, status);
      return FALSE;
    }
  return TRUE;
}

/* \e: edits the query buffer (or the last statement) in $VISUAL, else
 * $EDITOR, else vi, through a temporary file of mode 0600.  In the REPL
 * the text goes back into the query buffer; in a script (no buffer) it
 * runs, as psql runs what \e leaves complete. */
static TuskMetaStatus
cmd_edit (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;

  if (!get_args (cmd, FALSE, 0, 0, &args))
    return TUSK_META_FAILED;

  g_autofree char *text = dup_buffer_or_last (shell, cmd->query_buffer);
  g_autoptr (GString) initial = g_string_new (text);
  if (initial->len > 0 && initial->str[initial->len - 1] != '\n')
    g_string_append_c (initial, '\n');

  int fd = g_file_open_tmp ("tusk.edit.XXXXXX.sql", &path, &error);
  if (fd < 0)
    {
      fprintf (stderr, "\\e: %s\n", error->message);
      return TUSK_META_FAILED;
    }
  fchmod (fd, 0600);
  gboolean written
      = write (fd, initial->str, initial->len) == (gssize)initial->len;
  int saved_errno = errno;
  close (fd);
  if (!written)
    {
      fprintf (stderr, "\\e: could not write %s: %s\n", path,
               g_strerror (saved_errno));
      g_unlink (path);
      return TUSK_META_FAILED;
    }

  const char *editor = g_getenv ("VISUAL");
  if (editor == NULL || *editor == '\0')
    editor = g_getenv ("EDITOR");
  if (editor == NULL || *editor == '\0')
    editor = "vi";

  g_autofree char *edited = NULL;
  gboolean ok = run_editor (editor, path, &error)
                && g_file_get_contents (path, &edited, NULL, &error);
  g_unlink (path);
  if (!ok)
    {
      fprintf (stderr, "\\e: %s; the query buffer is unchanged\n",
               error->message);
      return TUSK_META_FAILED;
    }
  g_strchomp (edited);

  if (cmd->query_buffer)
    {
      g_string_assign (cmd->query_buffer, edited);
      return TUSK_META_OK;
    }
  g_autofree char *check = g_strstrip (g_strdup (edited));
  if (*check == '\0')
    return TUSK_META_OK;
  return tusk_shell_run_sql (shell, edited, NULL) ? TUSK_META_OK
                                                  : TUSK_META_FAILED;
}

/* ---- history and saved queries -------------------------------------- */

/* Joins the arguments with single spaces: "\history order by" searches
 * for "order by".  Returns (transfer full) (nullable). */
static char *
join_args (GStrv args)
{
  return args[0] ? g_strjoinv (" ", args) : NULL;
}

/* "YYYY-MM-DD HH:MM:SS" in UTC, as stored, shown in local time. */
static char *
local_time (const char *utc)
{
  g_autoptr (GTimeZone) zone = g_time_zone_new_utc ();
  g_autoptr (GDateTime) when
      = utc ? g_date_time_new_from_iso8601 (utc, zone) : NULL;
  if (when == NULL)
    return g_strdup (utc ? utc : "");
  g_autoptr (GDateTime) local = g_date_time_to_local (when);
  return g_date_time_format (local, "%Y-%m-%d %H:%M:%S");
}

/* \history [TEXT]: the saved connection's history, oldest first so that
 * the newest is next to the prompt, or the statements containing TEXT. */
static TuskMetaStatus
cmd_history (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;

  if (!get_args (cmd, FALSE, 0, -1, &args))
    return TUSK_META_FAILED;
  if (!check_connected (shell))
    return TUSK_META_FAILED;
  if (!shell->saved)
    {
      fprintf (stderr,
               "\\history: Tusk keeps history for saved connections only; "
               "save this one with \"tusk conn add NAME …\" and connect "
               "with its name\n");
      return TUSK_META_FAILED;
    }

  g_autofree char *text = join_args (args);
  g_autoptr (GPtrArray) entries = load_history (shell, text, -1, &error);
  if (entries == NULL)
    {
      tusk_shell_print_error (shell, error, NULL);
      return TUSK_META_FAILED;
    }

  g_autoptr (TextTable) table = text_table_new ();
  text_table_add_column (table, "Executed at", FALSE);
  text_table_add_column (table, "Duration", TRUE);
  text_table_add_column (table, "Rows", TRUE);
  text_table_add_column (table, "Statement", FALSE);
  for (guint i = entries->len; i-- > 0;)
    {
      const TuskHistoryEntry *entry = entries->pdata[i];
      g_autofree char *when = local_time (entry->executed_at);
      g_autofree char *duration
          = entry->execution_time_ms >= 0 ? g_strdup_printf (
                "%" G_GINT64_FORMAT " ms", entry->execution_time_ms)
                                          : g_strdup ("");
      g_autofree char *rows
          = entry->error_message ? g_strdup ("failed")
            : entry->row_count >= 0
                ? g_strdup_printf ("%" G_GINT64_FORMAT, entry->row_count)
                : g_strdup ("");
      text_table_add_cell (table, when);
      text_table_add_cell (table, duration);
      text_table_add_cell (table, rows);
      text_table_add_cell (table, entry->sql);
    }

  g_autofree char *title
      = text ? g_strdup_printf ("History of \"%s\" matching \"%s\"",
                                tusk_shell_get_display_name (shell), text)
             : g_strdup_printf ("History of \"%s\"",
                                tusk_shell_get_display_name (shell));
  g_autofree char *count = rows_footer (entries->len);
  const char *footers[] = { count, NULL };
  return print_text_table (shell, table, title, footers) ? TUSK_META_OK
                                                         : TUSK_META_FAILED;
}

/* Returns (transfer full) (nullable) the saved query named @name: the one
 * of this connection first, then one tied to no connection, then any. */
static TuskSavedQuery *
find_saved_query (TuskShell *shell, const char *name, GError **error)
{
  TuskStorage *storage = tusk_state_open_storage (shell->state, error);
  if (storage == NULL)
    return NULL;
  g_autoptr (GPtrArray) all = tusk_saved_query_repo_list (storage, error);
  const char *connection_id = shell->saved ? shell->config->id : NULL;
  const TuskSavedQuery *best = NULL;
  int best_rank = 0;

  if (all == NULL)
    return NULL;
  for (guint i = 0; i < all->len; i++)
    {
      const TuskSavedQuery *query = all->pdata[i];
      if (!g_str_equal (query->name, name))
        continue;
      int rank = g_strcmp0 (query->connection_id, connection_id) == 0 ? 3
                 : query->connection_id == NULL                       ? 2
                                                                      : 1;
      if (rank > best_rank)
        {
          best = query;
          best_rank = rank;
        }
    }
  return best ? tusk_saved_query_copy (best) : NULL;
}

/* \save NAME: the query buffer, or the last statement, as a saved query
 * of this connection (replacing its SQL when the name exists). */
static TuskMetaStatus
cmd_save (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;

  if (!get_args (cmd, FALSE, 1, 1, &args))
    return TUSK_META_FAILED;
  TuskStorage *storage = tusk_state_open_storage (shell->state, &error);
  if (storage == NULL)
    {
      fprintf (stderr, "\\save: %s\n", error->message);
      return TUSK_META_FAILED;
    }
  g_autofree char *sql = dup_buffer_or_last (shell, cmd->query_buffer);
  if (sql == NULL)
    {
      fprintf (stderr,
               "\\save: nothing to save: the query buffer is empty "
               "and no statement of this connection is in the "
               "history\nUsage: %s\n",
               cmd->usage);
      return TUSK_META_FAILED;
    }
  g_strchomp (sql);

  const char *connection_id
      = shell->config && shell->saved ? shell->config->id : NULL;
  g_autoptr (TuskSavedQuery) query = find_saved_query (shell, args[0], &error);
  gboolean replace
      = query != NULL && g_strcmp0 (query->connection_id, connection_id) == 0;
  if (error == NULL && !replace)
    {
      g_clear_pointer (&query, tusk_saved_query_free);
      query = tusk_saved_query_new (args[0], sql);
      query->connection_id = g_strdup (connection_id);
    }
  else if (replace)
    {
      g_free (query->sql);
      query->sql = g_strdup (sql);
    }

  gboolean ok = error == NULL;
  if (ok)
    {
      GAsyncResult *slot = NULL;
      if (replace)
        tusk_saved_query_repo_update_async (storage, query, NULL, store_result,
                                            &slot);
      else
        tusk_saved_query_repo_create_async (storage, query, NULL, store_result,
                                            &slot);
      g_autoptr (GAsyncResult) done = wait_result (&slot);
      ok = replace
               ? tusk_saved_query_repo_update_finish (storage, done, &error)
               : tusk_saved_query_repo_create_finish (storage, done, &error);
    }
  if (!ok)
    {
      fprintf (stderr, "\\save: %s\n", error->message);
      return TUSK_META_FAILED;
    }
  printf ("%s saved query \"%s\".\n", replace ? "Replaced" : "Created",
          args[0]);
  fflush (stdout);
  return TUSK_META_OK;
}

/* The first line of @sql, cut to 60 characters, with "…" when cut. */
static char *
sql_summary (const char *sql)
{
  const char *nl = strchr (sql, '\n');
  g_autofree char *line = nl ? g_strndup (sql, nl - sql) : g_strdup (sql);
  glong length = g_utf8_validate (line, -1, NULL) ? g_utf8_strlen (line, -1)
                                                  : (glong)strlen (line);
  if (length <= 60 && nl == NULL)
    return g_steal_pointer (&line);
  if (length > 60 && g_utf8_validate (line, -1, NULL))
    *g_utf8_offset_to_pointer (line, 59) = '\0';
  else if (length > 60)
    line[59] = '\0';
  return g_strconcat (line, "…", NULL);
}

static TuskMetaStatus
cmd_saved (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;

  if (!get_args (cmd, FALSE, 0, 0, &args))
    return TUSK_META_FAILED;
  TuskStorage *storage = tusk_state_open_storage (shell->state, &error);
  g_autoptr (GPtrArray) queries
      = storage ? tusk_saved_query_repo_list (storage, &error) : NULL;
  g_autoptr (GPtrArray) connections
      = queries ? tusk_connection_repo_load_all (storage, &error) : NULL;
  if (connections == NULL)
    {
      tusk_shell_print_error (shell, error, NULL);
      return TUSK_META_FAILED;
    }

  g_autoptr (TextTable) table = text_table_new ();
  text_table_add_column (table, "Name", FALSE);
  text_table_add_column (table, "Folder", FALSE);
  text_table_add_column (table, "Connection", FALSE);
  text_table_add_column (table, "Query", FALSE);
  for (guint i = 0; i < queries->len; i++)
    {
      const TuskSavedQuery *query = queries->pdata[i];
      const char *connection = "";
      for (guint c = 0; query->connection_id && c < connections->len; c++)
        {
          const TuskConnectionConfig *config = connections->pdata[c];
          if (g_str_equal (config->id, query->connection_id))
            connection = config->name;
        }
      g_autofree char *summary = sql_summary (query->sql);
      text_table_add_cell (table, query->name);
      text_table_add_cell (table, query->folder_path);
      text_table_add_cell (table, connection);
      text_table_add_cell (table, summary);
    }
  g_autofree char *count = rows_footer (queries->len);
  const char *footers[] = { count, NULL };
  return print_text_table (shell, table, "Saved queries", footers)
             ? TUSK_META_OK
             : TUSK_META_FAILED;
}

static TuskMetaStatus
cmd_run (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;

  if (!get_args (cmd, FALSE, 1, 1, &args))
    return TUSK_META_FAILED;
  if (!check_connected (shell))
    return TUSK_META_FAILED;
  g_autoptr (TuskSavedQuery) query = find_saved_query (shell, args[0], &error);
  if (query == NULL)
    {
      if (error)
        tusk_shell_print_error (shell, error, NULL);
      else
        fprintf (stderr,
                 "\\run: there is no saved query named \"%s\"; "
                 "\\saved lists them\n",
                 args[0]);
      return TUSK_META_FAILED;
    }
  return tusk_shell_run_sql (shell, query->sql, NULL) ? TUSK_META_OK
                                                      : TUSK_META_FAILED;
}

/* ---- \refresh ------------------------------------------------------- */

static TuskMetaStatus
cmd_refresh (Command *cmd)
{
  TuskShell *shell = cmd->shell;
  g_auto (GStrv) args = NULL;
  g_autoptr (GError) error = NULL;
  GAsyncResult *slot = NULL;

  if (!get_args (cmd, FALSE, 0, 0, &args))
    return TUSK_META_FAILED;
  if (!check_connected (shell))
    return TUSK_META_FAILED;
  g_autoptr (TuskSchemaCache) cache
      = tusk_state_dup_schema_cache (shell->state, shell->config->id);
  if (cache == NULL)
    {
      fprintf (stderr, "\\refresh: this connection has no schema cache; "
                       "reconnect with \\c\n");
      return TUSK_META_FAILED;
    }

  tusk_schema_cache_invalidate (cache);
  tusk_schema_cache_load_async (cache, tusk_state_get_runtime (shell->state),
                                NULL, store_result, &slot);
  g_autoptr (GAsyncResult) done = wait_result (&slot);
  g_autoptr (TuskSchemaSnapshot) snapshot
      = tusk_schema_cache_load_finish (cache, done, &error);
  if (snapshot == NULL)
    {
      tusk_shell_print_error (shell, error, NULL);
      return TUSK_META_FAILED;
    }

  guint n_relations, n_functions, tables = 0, views = 0;
  const TuskSchemaRelation *relations
      = tusk_schema_snapshot_get_relations (snapshot, &n_relations);
  tusk_schema_snapshot_get_functions (snapshot, &n_functions);
  for (guint i = 0; i < n_relations; i++)
    {
      if (relations[i].kind == TUSK_SCHEMA_KIND_TABLE)
        tables++;
      else
        views++;
    }
  printf ("Schema refreshed: %u tables, %u views, %u functions\n", tables,
          views, n_functions);
  fflush (stdout);
  return TUSK_META_OK;
}

/* ---- \q \? and the dispatcher --------------------------------------- */

static TuskMetaStatus
cmd_quit (Command *cmd)
{
  (void)cmd;
  return TUSK_META_QUIT;
}

static const char help_text[]
    = "General\n"
      "  \\q                     quit tusk\n"
      "  \\?                     show this help\n"
      "\n"
      "Connection\n"
      "  \\c [TARGET]            connect to a saved connection, a URI, a "
      "conninfo\n"
      "                         string or another database of this server\n"
      "  \\c DBNAME [USER] [HOST] [PORT]\n"
      "                         as psql (\"-\" keeps the current value)\n"
      "  \\conninfo              display information about the current "
      "connection\n"
      "\n"
      "Informational\n"
      "  (options: S = show system objects, + = additional detail)\n"
      "  \\d[S+]                 list tables, views, materialized views and "
      "sequences\n"
      "  \\d[S+]  NAME           describe table, view, materialized view, "
      "sequence\n"
      "                         or index\n"
      "  \\df[S+] [PATTERN]      list functions\n"
      "  \\di[S+] [PATTERN]      list indexes\n"
      "  \\dm[S+] [PATTERN]      list materialized views\n"
      "  \\dn[S+] [PATTERN]      list schemas\n"
      "  \\ds[S+] [PATTERN]      list sequences\n"
      "  \\dt[S+] [PATTERN]      list tables\n"
      "  \\dT[S+] [PATTERN]      list data types\n"
      "  \\dv[S+] [PATTERN]      list views\n"
      "  \\refresh               reload the schema cache (tab completion)\n"
      "  Patterns: * and ? are wildcards, SCHEMA.NAME qualifies, \"Quoted\" "
      "keeps case.\n"
      "\n"
      "Formatting\n"
      "  \\format FORMAT         table, csv, json, ndjson, markdown or "
      "unaligned\n"
      "  \\timing [on|off]       toggle timing of commands\n"
      "  \\x [on|off]            toggle expanded output\n"
      "\n"
      "Input/Output\n"
      "  \\e                     edit the query buffer (or the last "
      "statement) with\n"
      "                         $VISUAL, $EDITOR or vi\n"
      "  \\i FILE                execute commands from file\n"
      "  \\o [FILE]              send query results to file or |pipe (or "
      "back to\n"
      "                         standard output)\n"
      "\n"
      "History and saved queries\n"
      "  \\history [TEXT]        this connection's history (the statements "
      "containing\n"
      "                         TEXT)\n"
      "  \\save NAME             save the query buffer (or the last "
      "statement) as NAME\n"
      "  \\saved                 list saved queries\n"
      "  \\run NAME              run the saved query NAME\n";

static TuskMetaStatus
cmd_help (Command *cmd)
{
  g_auto (GStrv) args = NULL;
  if (!get_args (cmd, FALSE, 0, 0, &args))
    return TUSK_META_FAILED;
  fputs (help_text, stdout);
  fflush (stdout);
  return TUSK_META_OK;
}

typedef struct
{
  const char *name;
  const char *alias; /* psql's long name, nullable */
  TuskMetaStatus (*func) (Command *cmd);
  const char *usage;
} CommandSpec;

static const CommandSpec commands[] = {
  { "q", "quit", cmd_quit, "\\q" },
  { "?", NULL, cmd_help, "\\?" },
  { "c", "connect", cmd_connect,
    "\\c [TARGET] or \\c [DBNAME|-] [USER|-] [HOST|-] [PORT|-]" },
  { "conninfo", NULL, cmd_conninfo, "\\conninfo" },
  { "x", NULL, cmd_expanded, "\\x [on|off]" },
  { "timing", NULL, cmd_timing, "\\timing [on|off]" },
  { "format", NULL, cmd_format,
    "\\format table|csv|json|ndjson|markdown|unaligned" },
  { "o", "out", cmd_output, "\\o [FILE | |COMMAND]" },
  { "i", "include", cmd_include, "\\i FILE" },
  { "e", "edit", cmd_edit, "\\e" },
  { "history", NULL, cmd_history, "\\history [TEXT]" },
  { "save", NULL, cmd_save, "\\save NAME" },
  { "saved", NULL, cmd_saved, "\\saved" },
  { "run", NULL, cmd_run, "\\run NAME" },
  { "refresh", NULL, cmd_refresh, "\\refresh" },
};

TuskMetaStatus
tusk_meta_run (TuskShell *shell, const char *line, GString *query_buffer)
{
  g_return_val_if_fail (shell != NULL, TUSK_META_FAILED);
  g_return_val_if_fail (line != NULL, TUSK_META_FAILED);

  const char *p = line;
  while (g_ascii_isspace (*p))
    p++;
  if (*p == '\\')
    p++;
  const char *end = p;
  while (*end != '\0' && !g_ascii_isspace (*end))
    end++;
  g_autofree char *name = g_strndup (p, end - p);
  Command cmd = { .shell = shell,
                  .name = name,
                  .rest = end,
                  .usage = "\\d[S+] [PATTERN]",
                  .query_buffer = query_buffer };

  if (name[0] == 'd')
    return cmd_describe (&cmd);
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (name, commands[i].name)
        || g_strcmp0 (name, commands[i].alias) == 0)
      {
        cmd.usage = commands[i].usage;
        return commands[i].func (&cmd);
      }

  fprintf (stderr, "invalid command \\%s\nTry \\? for help.\n", name);
  return TUSK_META_FAILED;
}
