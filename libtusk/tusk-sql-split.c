/* tusk-sql-split.c: psql 15's statement splitter, line by line.
 *
 * Design note.  The scanner lexes one whole line (through its '\n') at a
 * time, as psql does: no decision ever needs to see past a line break, so a
 * line is lexed once, in order, and the work is linear.  Between lines it
 * keeps psql's lexer state:
 *
 *   state          INITIAL, or inside a block comment (comment_depth), '…'
 *                  (also B'…', X'…', N'…', U&'…': none of them treats a
 *                  backslash specially), E'…', "…" (also U&"…") or a dollar
 *                  quote (dollar_tag, with both '$');
 *   paren_depth    '(' minus ')', never below 0;
 *   begin_depth,   psql's BEGIN ATOMIC heuristic: the first four identifiers
 *   identifiers    of a statement, recorded when they are CREATE, OR,
 *                  REPLACE, FUNCTION or PROCEDURE; once they read CREATE
 *                  [OR REPLACE] FUNCTION|PROCEDURE, BEGIN (and CASE inside
 *                  a BEGIN) opens and END closes, outside parentheses.
 *
 * The pending statement (active) is built as psql builds its query buffer:
 * bytes are copied ("flushed") from each line into `text`, except the parts
 * psql leaves out (holes: a backslash command, the '\' of "\;", a blank
 * line).  `segments` records where each run of `text` starts in the script,
 * so that an error position maps back to a line and column.
 *
 * Invariants (asserted where they matter):
 *   1. !active => text and segments are empty.
 *   2. segments are in increasing text_offset order; the first starts at 0.
 *   3. source_next is the script offset just past the last byte flushed.
 *   4. copy_mode => state is INITIAL: lines are data until "\." and the
 *      rest of the COPY's line waits in `stash`, lexed once the data ends.
 *
 * Transitions: lex_line() takes each line; lex_initial(), lex_meta() and
 * the lex_<quote>() helpers move `state`; begin_statement(),
 * finish_statement() and drop_statement() move `active`; enter_copy() and
 * end_copy() move `copy_mode`.  Nothing here fails: any input leaves a
 * valid state.
 */
#define G_LOG_DOMAIN "tusk-sql-split"

#include "tusk-sql-split.h"

#include <string.h>

typedef enum
{
  LEX_INITIAL,
  LEX_COMMENT,
  LEX_QUOTE,  /* '…', B'…', X'…', N'…', U&'…' */
  LEX_EQUOTE, /* E'…' */
  LEX_DQUOTE, /* "…", U&"…" */
  LEX_DOLLAR, /* $tag$…$tag$ */
} LexState;

typedef struct
{
  gsize offset; /* in the script */
  int line;
  int column;
} Where;

typedef struct
{
  gsize text_offset; /* where the run starts in the piece's text */
  Where source;      /* and in the script */
} Segment;

struct _TuskSqlScanner
{
  GString *line_buf;     /* a last line still waiting for its '\n' */
  gsize offset;          /* script offset of the next line */
  int line;              /* its line number */
  gboolean last_newline; /* the last line lexed ended with '\n' */
  GPtrArray *out;        /* pieces completed by the current call */

  /* psql's lexer state */
  LexState state;
  int comment_depth;
  char *dollar_tag;
  gsize dollar_tag_len;
  int paren_depth;
  int begin_depth;
  int identifier_count;
  char identifiers[4];

  /* the pending statement */
  gboolean active;
  GString *text;
  GArray *segments;
  gboolean seg_pending; /* the next flush starts a segment at seg_next */
  Where seg_next;
  gsize source_next;
  Where start;
  gboolean has_token; /* something besides comments and ';' */
  int stmt_identifiers;
  gboolean is_copy;   /* its first identifier is COPY */
  gboolean prev_from; /* the last token was FROM (in a COPY) */
  gboolean copy_in;   /* COPY … FROM STDIN */

  /* COPY data */
  gboolean copy_mode;
  gboolean copy_started;
  Where copy_start;
  GString *copy_data;
  GString *stash; /* the rest of the COPY's line, scanned after the data */
  Where stash_where;
};

/* One line being lexed. */
typedef struct
{
  TuskSqlScanner *s;
  const char *p;
  gsize len; /* with the '\n', if any */
  gsize eol; /* len without the '\n' */
  Where at;  /* of p[0] */
  gsize flush_from;
  gsize col_index; /* column cursor: column of p[col_index] is col */
  int col;
} Line;

#define STOP G_MAXSIZE /* lexing of the line ends: COPY data follows */

static void lex_line (TuskSqlScanner *s, const char *p, gsize len, Where at);

static void
string_free (GString *string)
{
  g_string_free (string, TRUE);
}

/* ---- character classes (psqlscan.l) ----------------------------------- */

static inline gboolean
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static inline gboolean
is_ident_start (char c)
{
  return g_ascii_isalpha (c) || c == '_' || (guchar)c >= 0x80;
}

/* dolq_cont and variable_char */
static inline gboolean
is_ident_char (char c)
{
  return is_ident_start (c) || g_ascii_isdigit (c);
}

static inline gboolean
is_lead_byte (char c)
{
  return ((guchar)c & 0xC0) != 0x80;
}

static gboolean
word_is (const char *w, gsize n, const char *keyword)
{
  return strlen (keyword) == n && g_ascii_strncasecmp (w, keyword, n) == 0;
}

/* ---- pieces ------------------------------------------------------------- */

static TuskSqlPiece *
piece_new (TuskSqlKind kind, const char *text, gsize length)
{
  TuskSqlPiece *piece = g_new0 (TuskSqlPiece, 1);
  piece->kind = kind;
  piece->text = g_malloc (length + 1);
  if (length > 0)
    memcpy (piece->text, text, length);
  piece->text[length] = '\0';
  piece->length = length;
  piece->segments = g_array_new (FALSE, FALSE, sizeof (Segment));
  return piece;
}

TuskSqlPiece *
tusk_sql_piece_copy (const TuskSqlPiece *piece)
{
  g_return_val_if_fail (piece != NULL, NULL);
  TuskSqlPiece *copy = g_new (TuskSqlPiece, 1);
  *copy = *piece;
  copy->text = g_malloc (piece->length + 1);
  memcpy (copy->text, piece->text, piece->length + 1);
  copy->command = g_strdup (piece->command);
  copy->segments = g_array_copy (piece->segments);
  return copy;
}

void
tusk_sql_piece_free (TuskSqlPiece *piece)
{
  if (piece == NULL)
    return;
  g_free (piece->text);
  g_free (piece->command);
  g_array_unref (piece->segments);
  g_free (piece);
}

gsize
tusk_sql_piece_locate (const TuskSqlPiece *piece, int position, int *line,
                       int *column)
{
  g_return_val_if_fail (piece != NULL, 0);

  /* Character @position → byte index in the text. */
  gsize idx = 0;
  for (int pos = 1; pos < position && idx < piece->length; pos++)
    {
      idx++;
      while (idx < piece->length && !is_lead_byte (piece->text[idx]))
        idx++;
    }

  const GArray *segs = piece->segments;
  if (segs->len == 0)
    {
      if (line)
        *line = piece->line;
      if (column)
        *column = piece->column;
      return piece->offset;
    }

  /* The last segment starting at or before idx (binary search). */
  guint lo = 0, hi = segs->len;
  while (hi - lo > 1)
    {
      guint mid = lo + (hi - lo) / 2;
      if (g_array_index (segs, Segment, mid).text_offset <= idx)
        lo = mid;
      else
        hi = mid;
    }
  const Segment *seg = &g_array_index (segs, Segment, lo);

  int l = seg->source.line, c = seg->source.column;
  for (gsize k = seg->text_offset; k < idx; k++)
    {
      if (piece->text[k] == '\n')
        {
          l++;
          c = 1;
        }
      else if (is_lead_byte (piece->text[k]))
        c++;
    }
  if (line)
    *line = l;
  if (column)
    *column = c;
  return seg->source.offset + (idx - seg->text_offset);
}

static void
piece_finish_extent (TuskSqlPiece *piece)
{
  if (piece->segments->len == 0)
    {
      piece->end_offset = piece->offset;
      return;
    }
  const Segment *first = &g_array_index (piece->segments, Segment, 0);
  const Segment *last
      = &g_array_index (piece->segments, Segment, piece->segments->len - 1);
  piece->offset = first->source.offset;
  piece->line = first->source.line;
  piece->column = first->source.column;
  piece->end_offset = last->source.offset + (piece->length - last->text_offset);
}

/* A piece made of one run of the script starting at @where. */
static TuskSqlPiece *
piece_new_run (TuskSqlKind kind, const char *text, gsize length, Where where)
{
  TuskSqlPiece *piece = piece_new (kind, text, length);
  Segment seg = { 0, where };
  g_array_append_val (piece->segments, seg);
  piece->offset = where.offset;
  piece->line = where.line;
  piece->column = where.column;
  piece->end_offset = where.offset + length;
  return piece;
}

/* ---- positions ----------------------------------------------------------- */

/* Where p[@i] is; @i never decreases within a line. */
static Where
where_at (Line *L, gsize i)
{
  g_assert (i >= L->col_index);
  for (; L->col_index < i; L->col_index++)
    if (is_lead_byte (L->p[L->col_index]))
      L->col++;
  return (Where){ L->at.offset + i, L->at.line, L->col };
}

/* ---- the pending statement ---------------------------------------------- */

static void
reset_lexer (TuskSqlScanner *s)
{
  s->state = LEX_INITIAL;
  s->comment_depth = 0;
  g_clear_pointer (&s->dollar_tag, g_free);
  s->dollar_tag_len = 0;
  s->paren_depth = 0;
  s->begin_depth = 0;
  s->identifier_count = 0;
}

static void
drop_statement (TuskSqlScanner *s)
{
  s->active = FALSE;
  g_string_truncate (s->text, 0);
  g_array_set_size (s->segments, 0);
  s->seg_pending = FALSE;
}

static void
begin_statement (Line *L, gsize i)
{
  TuskSqlScanner *s = L->s;
  g_assert (!s->active && s->text->len == 0 && s->segments->len == 0);
  s->active = TRUE;
  s->start = where_at (L, i);
  s->seg_pending = TRUE;
  s->seg_next = s->start;
  L->flush_from = i;
  s->has_token = FALSE;
  s->stmt_identifiers = 0;
  s->is_copy = FALSE;
  s->prev_from = FALSE;
  s->copy_in = FALSE;
}

/* Copies p[flush_from, b) to the statement's text. */
static void
flush (Line *L, gsize b)
{
  TuskSqlScanner *s = L->s;
  if (!s->active || b <= L->flush_from)
    {
      L->flush_from = MAX (L->flush_from, b);
      return;
    }
  if (s->seg_pending)
    {
      Segment seg = { s->text->len, s->seg_next };
      g_assert (seg.source.offset == L->at.offset + L->flush_from);
      g_array_append_val (s->segments, seg);
      s->seg_pending = FALSE;
    }
  else
    g_assert (s->source_next == L->at.offset + L->flush_from);
  g_string_append_len (s->text, L->p + L->flush_from, b - L->flush_from);
  s->source_next = L->at.offset + b;
  L->flush_from = b;
}

/* Leaves p[a, b) out of the statement's text. */
static void
hole (Line *L, gsize a, gsize b)
{
  TuskSqlScanner *s = L->s;
  flush (L, a);
  L->flush_from = b;
  if (s->active)
    {
      s->seg_pending = TRUE;
      s->seg_next = where_at (L, b);
    }
}

/* Removes the text's last byte (a line break psql does not send). */
static void
truncate_newline (TuskSqlScanner *s)
{
  g_assert (s->text->len > 0 && s->text->str[s->text->len - 1] == '\n');
  g_string_truncate (s->text, s->text->len - 1);
  s->source_next--;
  if (s->segments->len > 0
      && g_array_index (s->segments, Segment, s->segments->len - 1).text_offset
             == s->text->len)
    g_array_set_size (s->segments, s->segments->len - 1);
}

static void
finish_statement (TuskSqlScanner *s, TuskSqlEnd end, gboolean complete)
{
  g_assert (s->active);
  TuskSqlPiece *piece = g_new0 (TuskSqlPiece, 1);
  piece->kind = TUSK_SQL_STATEMENT;
  piece->length = s->text->len;
  piece->text = g_string_free (g_steal_pointer (&s->text), FALSE);
  piece->segments = g_steal_pointer (&s->segments);
  piece->offset = s->start.offset;
  piece->line = s->start.line;
  piece->column = s->start.column;
  piece->end = end;
  piece->complete = complete;
  piece->empty = !s->has_token;
  piece_finish_extent (piece);
  g_ptr_array_add (s->out, piece);

  s->text = g_string_new (NULL);
  s->segments = g_array_new (FALSE, FALSE, sizeof (Segment));
  s->active = FALSE;
  s->seg_pending = FALSE;
}

static gboolean
lexically_complete (const TuskSqlScanner *s)
{
  return s->state == LEX_INITIAL && s->paren_depth == 0 && s->begin_depth == 0;
}

/* ---- COPY data ----------------------------------------------------------- */

/* The statement or command just handled was COPY … FROM STDIN: the next
 * lines are data; p[i, len) is scanned after them. */
static void
enter_copy (Line *L, gsize i)
{
  TuskSqlScanner *s = L->s;
  s->copy_mode = TRUE;
  s->copy_started = FALSE;
  g_string_truncate (s->copy_data, 0);
  g_clear_pointer (&s->stash, string_free);
  if (i < L->len)
    {
      s->stash = g_string_new_len (L->p + i, L->len - i);
      s->stash_where = where_at (L, i);
    }
}

static void
end_copy (TuskSqlScanner *s, TuskSqlEnd end, gboolean complete)
{
  if (!s->copy_started)
    {
      s->copy_start = (Where){ s->offset, s->line, 1 };
      s->copy_started = TRUE;
    }
  TuskSqlPiece *piece = piece_new_run (TUSK_SQL_COPY_DATA, s->copy_data->str,
                                       s->copy_data->len, s->copy_start);
  piece->end = end;
  piece->complete = complete;
  g_ptr_array_add (s->out, piece);
  s->copy_mode = FALSE;
  s->copy_started = FALSE;
  g_string_truncate (s->copy_data, 0);

  if (s->stash != NULL)
    {
      GString *stash = g_steal_pointer (&s->stash);
      lex_line (s, stash->str, stash->len, s->stash_where);
      g_string_free (stash, TRUE);
    }
}

static void
copy_line (TuskSqlScanner *s, const char *p, gsize len, Where at)
{
  if (!s->copy_started)
    {
      s->copy_start = at;
      s->copy_started = TRUE;
    }
  if ((len == 3 && memcmp (p, "\\.\n", 3) == 0)
      || (len == 4 && memcmp (p, "\\.\r\n", 4) == 0))
    end_copy (s, TUSK_SQL_END_LINE, TRUE);
  else
    g_string_append_len (s->copy_data, p, len);
}

/* ---- backslash commands -------------------------------------------------- */

static gboolean
name_in (const char *name, gsize n, const char *const *list)
{
  for (; *list != NULL; list++)
    if (strlen (*list) == n && memcmp (*list, name, n) == 0)
      return TRUE;
  return FALSE;
}

static const char *const whole_line_commands[]
    = { "!", "copy", "ef", "ev", "h", "help", "sf", "sf+", "sv", "sv+", NULL };
static const char *const pipe_commands[]
    = { "g", "gx", "o", "out", "w", "write", NULL };
static const char *const send_commands[]
    = { "g", "gx", "gset", "gexec", "gdesc", "watch", "crosstabview", NULL };
static const char *const reset_commands[] = { "r", "reset", NULL };

/* \copy … from stdin (unquoted, any case). */
static gboolean
meta_copies_from_stdin (const char *text, gsize n)
{
  g_autofree char *copy = g_strndup (text, n);
  g_auto (GStrv) words = g_strsplit_set (copy, " \t\r\f", -1);
  gboolean from = FALSE;
  for (char **w = words; *w != NULL; w++)
    {
      if (**w == '\0')
        continue;
      if (from && g_ascii_strcasecmp (*w, "stdin") == 0)
        return TRUE;
      from = g_ascii_strcasecmp (*w, "from") == 0;
    }
  return FALSE;
}

/* Lexes the backslash command at p[a] (psqlscanslash.l); returns where SQL
 * lexing resumes, or STOP. */
static gsize
lex_meta (Line *L, gsize a)
{
  TuskSqlScanner *s = L->s;
  const char *p = L->p;
  gsize eol = L->eol;

  gsize j = a + 1;
  while (j < eol && !is_space (p[j]) && p[j] != '\\')
    j++;
  const char *name = p + a + 1;
  gsize name_len = j - (a + 1);

  gsize meta_end = j; /* end of the command's text */
  gsize resume;       /* where SQL goes on */
  gboolean quote_open = FALSE;
  if (name_len == 0 || name_in (name, name_len, whole_line_commands))
    {
      /* psql takes the whole line (an empty name is an error that does). */
      meta_end = eol;
      while (meta_end > j && is_space (p[meta_end - 1]))
        meta_end--;
      resume = eol;
    }
  else
    {
      gboolean pipe = name_in (name, name_len, pipe_commands);
      gsize k = j;
      for (;;)
        {
          while (k < eol && is_space (p[k]))
            k++;
          if (k >= eol)
            {
              resume = eol;
              break;
            }
          if (p[k] == '\\')
            {
              resume = (k + 1 < eol && p[k + 1] == '\\') ? k + 2 : k;
              break;
            }
          if (pipe && p[k] == '|')
            {
              meta_end = eol;
              while (meta_end > k && is_space (p[meta_end - 1]))
                meta_end--;
              resume = eol;
              break;
            }
          /* one argument: up to unquoted white space or backslash */
          while (k < eol && !is_space (p[k]) && p[k] != '\\')
            {
              char q = p[k];
              if (q != '\'' && q != '"' && q != '`')
                {
                  k++;
                  continue;
                }
              for (k++; k < eol && p[k] != q; k++)
                if (q == '\'' && p[k] == '\\' && k + 1 < eol)
                  k++;
              if (k >= eol)
                {
                  quote_open = TRUE;
                  break;
                }
              k++;
            }
          meta_end = MIN (k, eol);
          if (quote_open)
            {
              resume = eol;
              break;
            }
        }
    }

  Where where = where_at (L, a);
  TuskSqlPiece *meta
      = piece_new_run (TUSK_SQL_META, p + a, meta_end - a, where);
  meta->command = g_strndup (name, name_len);
  meta->complete = !quote_open;
  meta->end = (resume == eol && eol == L->len) ? TUSK_SQL_END_INPUT
                                               : TUSK_SQL_END_LINE;

  /* A command alone on its line inside a statement: psql strips the line
   * break it added before the line, whatever the command. */
  if (s->active && a == 0 && L->at.column == 1 && s->text->len > 0
      && s->text->str[s->text->len - 1] == '\n')
    truncate_newline (s);

  gboolean copy = FALSE;
  if (name_in (name, name_len, send_commands))
    {
      if (s->active)
        {
          gboolean complete = lexically_complete (s);
          copy = s->copy_in;
          flush (L, a);
          finish_statement (s, TUSK_SQL_END_META, complete);
        }
      reset_lexer (s); /* psql_scan_reset() after a send */
      L->flush_from = resume;
    }
  else if (name_in (name, name_len, reset_commands))
    {
      drop_statement (s);
      reset_lexer (s);
      L->flush_from = resume;
    }
  else
    {
      hole (L, a, resume);
      copy = word_is (name, name_len, "copy")
             && meta_copies_from_stdin (p + j, meta_end - j);
    }
  g_ptr_array_add (s->out, meta);

  if (copy)
    {
      enter_copy (L, resume);
      return STOP;
    }
  return resume;
}

/* ---- SQL ------------------------------------------------------------------
 */

/* psqlscan.l's {identifier} action, plus COPY … FROM STDIN detection. */
static void
on_identifier (TuskSqlScanner *s, const char *w, gsize n)
{
  if (s->identifier_count == 0)
    memset (s->identifiers, 0, sizeof s->identifiers);
  if (word_is (w, n, "create") || word_is (w, n, "function")
      || word_is (w, n, "procedure") || word_is (w, n, "or")
      || word_is (w, n, "replace"))
    {
      if (s->identifier_count < (int)sizeof s->identifiers)
        s->identifiers[s->identifier_count] = g_ascii_tolower (w[0]);
    }
  s->identifier_count++;

  const char *id = s->identifiers;
  if (id[0] == 'c'
      && (id[1] == 'f' || id[1] == 'p'
          || (id[1] == 'o' && id[2] == 'r' && (id[3] == 'f' || id[3] == 'p')))
      && s->paren_depth == 0)
    {
      if (word_is (w, n, "begin"))
        s->begin_depth++;
      else if (word_is (w, n, "case"))
        {
          if (s->begin_depth >= 1)
            s->begin_depth++;
        }
      else if (word_is (w, n, "end"))
        {
          if (s->begin_depth > 0)
            s->begin_depth--;
        }
    }

  if (s->stmt_identifiers == 0 && word_is (w, n, "copy"))
    s->is_copy = TRUE;
  s->stmt_identifiers++;
  if (s->is_copy && s->prev_from && word_is (w, n, "stdin"))
    s->copy_in = TRUE;
  s->prev_from = s->is_copy && s->paren_depth == 0 && word_is (w, n, "from");
}

/* One token in the INITIAL state at p[i]; returns the next index or STOP. */
static gsize
lex_initial (Line *L, gsize i)
{
  TuskSqlScanner *s = L->s;
  const char *p = L->p;
  gsize len = L->len;
  char c = p[i];
  char next = i + 1 < len ? p[i + 1] : '\0';

  if (is_space (c))
    return i + 1;
  if (c == '-' && next == '-')
    {
      /* Kept inside a statement (psql 15), dropped before one. */
      gsize j = i + 2;
      while (j < len && p[j] != '\n' && p[j] != '\r')
        j++;
      return j;
    }
  if (c == '\\')
    {
      if (next == ';' || next == ':')
        {
          /* psql sends the character without its backslash. */
          if (!s->active)
            begin_statement (L, i + 1);
          else
            hole (L, i, i + 1);
          if (next == ';')
            s->identifier_count = 0;
          else
            s->has_token = TRUE;
          s->prev_from = FALSE;
          return i + 2;
        }
      return lex_meta (L, i);
    }

  if (!s->active)
    begin_statement (L, i);

  if (c == '/' && next == '*')
    {
      s->state = LEX_COMMENT;
      s->comment_depth = 0;
      return i + 2;
    }
  if (c == ';')
    {
      s->prev_from = FALSE;
      if (s->paren_depth > 0 || s->begin_depth > 0)
        return i + 1;
      gboolean copy = s->copy_in;
      flush (L, i + 1);
      s->identifier_count = 0;
      finish_statement (s, TUSK_SQL_END_SEMICOLON, TRUE);
      if (copy)
        {
          enter_copy (L, i + 1);
          return STOP;
        }
      return i + 1;
    }

  s->has_token = TRUE;
  if (is_ident_start (c))
    {
      char next2 = i + 2 < len ? p[i + 2] : '\0';
      switch (c)
        {
          case 'b':
          case 'B':
          case 'x':
          case 'X':
            if (next == '\'')
              {
                s->prev_from = FALSE;
                s->state = LEX_QUOTE;
                return i + 2;
              }
            break;
          case 'e':
          case 'E':
            if (next == '\'')
              {
                s->prev_from = FALSE;
                s->state = LEX_EQUOTE;
                return i + 2;
              }
            break;
          case 'n':
          case 'N':
            if (next == '\'')
              {
                s->prev_from = FALSE;
                return i + 1; /* the quote follows */
              }
            break;
          case 'u':
          case 'U':
            if (next == '&')
              {
                s->prev_from = FALSE;
                if (next2 == '\'' || next2 == '"')
                  {
                    s->state = next2 == '\'' ? LEX_QUOTE : LEX_DQUOTE;
                    return i + 3;
                  }
                return i + 1; /* "u" alone, not an identifier */
              }
            break;
          default:
            break;
        }
      gsize j = i + 1;
      while (j < len && (is_ident_char (p[j]) || p[j] == '$'))
        j++;
      on_identifier (s, p + i, j - i);
      return j;
    }

  s->prev_from = FALSE;
  switch (c)
    {
      case '\'':
        s->state = LEX_QUOTE;
        return i + 1;
      case '"':
        s->state = LEX_DQUOTE;
        return i + 1;
      case '(':
        s->paren_depth++;
        return i + 1;
      case ')':
        if (s->paren_depth > 0)
          s->paren_depth--;
        return i + 1;
      case '$':
        {
          gsize j = i + 1;
          if (g_ascii_isdigit (next))
            {
              while (j < len && g_ascii_isdigit (p[j]))
                j++;
              return j; /* a parameter */
            }
          if (is_ident_start (next))
            while (j < len && is_ident_char (p[j]))
              j++;
          if (j < len && p[j] == '$')
            {
              s->state = LEX_DOLLAR;
              s->dollar_tag = g_strndup (p + i, j + 1 - i);
              s->dollar_tag_len = j + 1 - i;
              return j + 1;
            }
          return i + 1; /* a lone '$'; any name after it is rescanned */
        }
      case ':':
        {
          /* A psql variable: not an identifier to the BEGIN heuristic. */
          if (next == ':')
            return i + 2; /* a typecast */
          gsize j = i + 1;
          while (j < len && is_ident_char (p[j]))
            j++;
          return j;
        }
      default:
        break;
    }

  if (g_ascii_isdigit (c) || (c == '.' && g_ascii_isdigit (next)))
    {
      gsize j = i;
      while (j < len && g_ascii_isdigit (p[j]))
        j++;
      if (j < len && p[j] == '.' && !(j + 1 < len && p[j + 1] == '.'))
        {
          j++;
          while (j < len && g_ascii_isdigit (p[j]))
            j++;
        }
      if (j < len && (p[j] == 'e' || p[j] == 'E'))
        {
          gsize k = j + 1;
          if (k < len && (p[k] == '+' || p[k] == '-'))
            k++;
          if (k < len && g_ascii_isdigit (p[k]))
            {
              while (k < len && g_ascii_isdigit (p[k]))
                k++;
              j = k;
            }
        }
      return j;
    }
  return i + 1;
}

/* Scans to the end of a quote closed by @q ('' or "" doubling it). */
static gsize
lex_quoted (TuskSqlScanner *s, const char *p, gsize len, gsize i, char q,
            gboolean escapes)
{
  while (i < len)
    {
      char c = p[i];
      if (escapes && c == '\\')
        {
          i = MIN (i + 2, len);
          continue;
        }
      if (c == q)
        {
          if (i + 1 < len && p[i + 1] == q)
            {
              i += 2;
              continue;
            }
          s->state = LEX_INITIAL;
          return i + 1;
        }
      if (!escapes)
        {
          const char *hit = memchr (p + i, q, len - i);
          i = hit ? (gsize)(hit - p) : len;
        }
      else
        i++;
    }
  return len;
}

static gsize
lex_comment (TuskSqlScanner *s, const char *p, gsize len, gsize i)
{
  while (i < len)
    {
      if (p[i] == '/' && i + 1 < len && p[i + 1] == '*')
        {
          s->comment_depth++;
          i += 2;
        }
      else if (p[i] == '*' && i + 1 < len && p[i + 1] == '/')
        {
          i += 2;
          if (s->comment_depth <= 0)
            {
              s->state = LEX_INITIAL;
              return i;
            }
          s->comment_depth--;
        }
      else
        i++;
    }
  return len;
}

static gsize
lex_dollar (TuskSqlScanner *s, const char *p, gsize len, gsize i)
{
  while (i < len)
    {
      const char *hit = memchr (p + i, '$', len - i);
      if (hit == NULL)
        return len;
      i = hit - p;
      if (len - i >= s->dollar_tag_len
          && memcmp (p + i, s->dollar_tag, s->dollar_tag_len) == 0)
        {
          i += s->dollar_tag_len;
          s->state = LEX_INITIAL;
          g_clear_pointer (&s->dollar_tag, g_free);
          s->dollar_tag_len = 0;
          return i;
        }
      i++;
    }
  return len;
}

/* Lexes one line: p[0, len) with its '\n' if it has one, starting at @at. */
static void
lex_line (TuskSqlScanner *s, const char *p, gsize len, Where at)
{
  if (s->copy_mode)
    {
      copy_line (s, p, len, at);
      return;
    }

  Line L = { s, p, len, len, at, 0, 0, at.column };
  if (len > 0 && p[len - 1] == '\n')
    L.eol = len - 1;
  s->last_newline = L.eol < len;

  if (s->active && at.offset != s->source_next)
    {
      s->seg_pending = TRUE;
      s->seg_next = at;
    }
  /* psql skips a blank line, unless it is inside a quote or comment. */
  if (len == 1 && p[0] == '\n' && at.column == 1 && s->state == LEX_INITIAL)
    return;

  gsize i = 0;
  while (i < len)
    {
      switch (s->state)
        {
          case LEX_INITIAL:
            i = lex_initial (&L, i);
            if (i == STOP)
              return;
            break;
          case LEX_COMMENT:
            i = lex_comment (s, p, len, i);
            break;
          case LEX_QUOTE:
            i = lex_quoted (s, p, len, i, '\'', FALSE);
            break;
          case LEX_EQUOTE:
            i = lex_quoted (s, p, len, i, '\'', TRUE);
            break;
          case LEX_DQUOTE:
            i = lex_quoted (s, p, len, i, '"', FALSE);
            break;
          case LEX_DOLLAR:
            i = lex_dollar (s, p, len, i);
            break;
          default:
            g_assert_not_reached ();
        }
    }
  flush (&L, len);
}

/* ---- the scanner ----------------------------------------------------------
 */

TuskSqlScanner *
tusk_sql_scanner_new (void)
{
  TuskSqlScanner *s = g_new0 (TuskSqlScanner, 1);
  s->line_buf = g_string_new (NULL);
  s->line = 1;
  s->text = g_string_new (NULL);
  s->segments = g_array_new (FALSE, FALSE, sizeof (Segment));
  s->copy_data = g_string_new (NULL);
  return s;
}

void
tusk_sql_scanner_free (TuskSqlScanner *scanner)
{
  if (scanner == NULL)
    return;
  g_string_free (scanner->line_buf, TRUE);
  g_string_free (scanner->text, TRUE);
  g_array_unref (scanner->segments);
  g_string_free (scanner->copy_data, TRUE);
  if (scanner->stash)
    g_string_free (scanner->stash, TRUE);
  g_free (scanner->dollar_tag);
  g_free (scanner);
}

static void
feed_line (TuskSqlScanner *s, const char *p, gsize len)
{
  lex_line (s, p, len, (Where){ s->offset, s->line, 1 });
  s->offset += len;
  if (len > 0 && p[len - 1] == '\n')
    s->line++;
}

static GPtrArray *
new_output (TuskSqlScanner *s)
{
  g_assert (s->out == NULL);
  s->out = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_sql_piece_free);
  return s->out;
}

GPtrArray *
tusk_sql_scanner_feed (TuskSqlScanner *scanner, const char *text, gssize length)
{
  g_return_val_if_fail (scanner != NULL, NULL);
  g_return_val_if_fail (text != NULL || length == 0, NULL);

  TuskSqlScanner *s = scanner;
  GPtrArray *out = new_output (s);
  gsize n = length < 0 ? strlen (text) : (gsize)length;
  const char *p = text, *end = text + n;

  if (s->line_buf->len > 0)
    {
      const char *nl = memchr (p, '\n', end - p);
      if (nl == NULL)
        {
          g_string_append_len (s->line_buf, p, end - p);
          s->out = NULL;
          return out;
        }
      g_string_append_len (s->line_buf, p, nl + 1 - p);
      feed_line (s, s->line_buf->str, s->line_buf->len);
      g_string_truncate (s->line_buf, 0);
      p = nl + 1;
    }
  const char *nl;
  while (p < end && (nl = memchr (p, '\n', end - p)) != NULL)
    {
      feed_line (s, p, nl + 1 - p);
      p = nl + 1;
    }
  g_string_append_len (s->line_buf, p, end - p);
  s->out = NULL;
  return out;
}

void
tusk_sql_scanner_reset (TuskSqlScanner *scanner)
{
  g_return_if_fail (scanner != NULL);
  drop_statement (scanner);
  reset_lexer (scanner);
  scanner->copy_mode = FALSE;
  scanner->copy_started = FALSE;
  g_string_truncate (scanner->copy_data, 0);
  g_clear_pointer (&scanner->stash, string_free);
}

GPtrArray *
tusk_sql_scanner_finish (TuskSqlScanner *scanner)
{
  g_return_val_if_fail (scanner != NULL, NULL);

  TuskSqlScanner *s = scanner;
  GPtrArray *out = new_output (s);
  if (s->line_buf->len > 0)
    {
      GString *last = g_steal_pointer (&s->line_buf);
      s->line_buf = g_string_new (NULL);
      feed_line (s, last->str, last->len);
      g_string_free (last, TRUE);
    }
  if (s->copy_mode)
    end_copy (s, TUSK_SQL_END_INPUT, FALSE);
  if (s->active)
    {
      /* psql adds a line break before each line, never after the last. */
      if (s->last_newline && s->text->len > 0
          && s->text->str[s->text->len - 1] == '\n')
        truncate_newline (s);
      finish_statement (s, TUSK_SQL_END_INPUT, lexically_complete (s));
    }

  tusk_sql_scanner_reset (s);
  s->offset = 0;
  s->line = 1;
  s->last_newline = FALSE;
  s->source_next = 0;
  s->out = NULL;
  return out;
}

TuskSqlContinuation
tusk_sql_scanner_get_continuation (const TuskSqlScanner *scanner)
{
  g_return_val_if_fail (scanner != NULL, TUSK_SQL_CONTINUATION_NONE);

  if (scanner->copy_mode)
    return TUSK_SQL_CONTINUATION_COPY_DATA;
  switch (scanner->state)
    {
      case LEX_QUOTE:
      case LEX_EQUOTE:
        return TUSK_SQL_CONTINUATION_SINGLE_QUOTE;
      case LEX_DQUOTE:
        return TUSK_SQL_CONTINUATION_DOUBLE_QUOTE;
      case LEX_DOLLAR:
        return TUSK_SQL_CONTINUATION_DOLLAR_QUOTE;
      case LEX_COMMENT:
        return TUSK_SQL_CONTINUATION_COMMENT;
      case LEX_INITIAL:
      default:
        break;
    }
  if (scanner->paren_depth > 0)
    return TUSK_SQL_CONTINUATION_PAREN;
  if (scanner->active || scanner->begin_depth > 0)
    return TUSK_SQL_CONTINUATION_STATEMENT;
  return TUSK_SQL_CONTINUATION_NONE;
}

const char *
tusk_sql_continuation_symbol (TuskSqlContinuation continuation)
{
  switch (continuation)
    {
      case TUSK_SQL_CONTINUATION_NONE:
        return "=";
      case TUSK_SQL_CONTINUATION_STATEMENT:
        return "-";
      case TUSK_SQL_CONTINUATION_SINGLE_QUOTE:
        return "'";
      case TUSK_SQL_CONTINUATION_DOUBLE_QUOTE:
        return "\"";
      case TUSK_SQL_CONTINUATION_DOLLAR_QUOTE:
        return "$";
      case TUSK_SQL_CONTINUATION_COMMENT:
        return "*";
      case TUSK_SQL_CONTINUATION_PAREN:
        return "(";
      case TUSK_SQL_CONTINUATION_COPY_DATA:
        return ">>";
      default:
        g_return_val_if_reached ("=");
    }
}

GPtrArray *
tusk_sql_split (const char *script, gssize length)
{
  g_return_val_if_fail (script != NULL || length == 0, NULL);

  g_autoptr (TuskSqlScanner) scanner = tusk_sql_scanner_new ();
  GPtrArray *pieces = tusk_sql_scanner_feed (scanner, script, length);
  GPtrArray *rest = tusk_sql_scanner_finish (scanner);
  g_ptr_array_extend_and_steal (pieces, rest);
  return pieces;
}
