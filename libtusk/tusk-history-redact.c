/* tusk-history-redact.c: hiding the passwords a person types as SQL
 * before a history keeps them (tusk_history_redact_sql() and
 * tusk_history_redact_message(), declared in tusk-history-repo.h, and
 * tusk_history_entry_redact(), which the repository applies on its
 * writer).  No state; any thread.
 */
#define G_LOG_DOMAIN "tusk-storage-history"

#include <string.h>

#include "tusk-history-redact-private.h"
#include "tusk-history-repo.h"

/* ---- redaction ----------------------------------------------------------
 *
 * A lexer of just enough of PostgreSQL's SQL (scan.l) to tell strings,
 * comments and words apart: a word PASSWORD followed (past white space and
 * comments) by a string hides that string; every other string is searched
 * for a conninfo "password=" value and a URI's password; the text between
 * strings for URI passwords.  A comment's text (a statement commented out)
 * is searched for PASSWORD and a string, conninfo values and URI
 * passwords, without lexing: quotes mean nothing there ("don't").  A
 * backslash command is not SQL: its whole text is searched for conninfo
 * values and URI passwords.  Replacements are made left to right into a
 * copy that starts at the first one, so text without secrets costs one
 * scan; none changes where a string or a comment ends, so redacting again
 * finds nothing new. */

typedef struct Redactor
{
  const char *sql;
  gsize len;
  GString *out;       /* NULL until the first replacement */
  gsize copied;       /* sql[0, copied) is accounted for in out */
  GPtrArray *secrets; /* nullable: copies of the hidden texts */
} Redactor;

typedef enum
{
  LITERAL_STANDARD, /* '…', N'…', U&'…', B'…', X'…' */
  LITERAL_ESCAPE,   /* E'…': a backslash escapes the next byte */
  LITERAL_DOLLAR,   /* $tag$…$tag$ */
} LiteralKind;

typedef struct
{
  LiteralKind kind;
  gsize start;   /* the prefix or the opening quote */
  gsize body;    /* just past the opening quote or tag */
  gsize tag_len; /* LITERAL_DOLLAR: the length of "$tag$" */
} Literal;

static void
wipe_free (gpointer secret)
{
  if (secret != NULL)
    {
      explicit_bzero (secret, strlen (secret));
      g_free (secret);
    }
}

/* Replaces sql[@start, @end) (at or after everything replaced so far) with
 * @with, keeping a copy of what it hid. */
static void
redactor_replace (Redactor *r, gsize start, gsize end, const char *with)
{
  g_assert (start >= r->copied && end >= start && end <= r->len);
  if (r->out == NULL)
    r->out = g_string_sized_new (r->len + 8);
  g_string_append_len (r->out, r->sql + r->copied, start - r->copied);
  g_string_append (r->out, with);
  r->copied = end;
  if (r->secrets != NULL && end > start)
    g_ptr_array_add (r->secrets, g_strndup (r->sql + start, end - start));
}

static gboolean
is_ident_start (guchar c)
{
  return g_ascii_isalpha (c) || c == '_' || c >= 0x80;
}

static gboolean
is_ident_char (guchar c)
{
  return is_ident_start (c) || g_ascii_isdigit (c) || c == '$';
}

static gboolean
word_at (const char *s, gsize len, gsize i, const char *word)
{
  gsize n = strlen (word);
  return i + n <= len && g_ascii_strncasecmp (s + i, word, n) == 0;
}

/* Returns the index past the comment at @i ("--" to the end of the line,
 * nested slash-star), or @i when there is none. */
static gsize
skip_comment (const char *s, gsize len, gsize i)
{
  if (i + 1 >= len || (s[i] != '-' && s[i] != '/'))
    return i;
  if (word_at (s, len, i, "--"))
    {
      while (i < len && s[i] != '\n' && s[i] != '\r')
        i++;
      return i;
    }
  if (!word_at (s, len, i, "/*"))
    return i;
  int depth = 0;
  while (i < len)
    {
      if (word_at (s, len, i, "/*"))
        depth++, i += 2;
      else if (word_at (s, len, i, "*/"))
        {
          i += 2;
          if (--depth == 0)
            return i;
        }
      else
        i++;
    }
  return len;
}

/* Returns the index past white space and comments from @i; *@newline tells
 * whether a line ended in between. */
static gsize
skip_blanks (const char *s, gsize len, gsize i, gboolean *newline)
{
  *newline = FALSE;
  while (i < len)
    {
      if (g_ascii_isspace (s[i]))
        {
          if (s[i] == '\n' || s[i] == '\r')
            *newline = TRUE;
          i++;
          continue;
        }
      gsize next = skip_comment (s, len, i);
      if (next == i)
        break;
      i = next;
    }
  return i;
}

/* Whether a string starts at @i (at the start of a token). */
static gboolean
literal_at (const char *s, gsize len, gsize i, Literal *lit)
{
  char c = i < len ? s[i] : '\0';
  char next = i + 1 < len ? s[i + 1] : '\0';

  lit->start = i;
  lit->tag_len = 0;
  lit->kind = LITERAL_STANDARD;
  if (c == '\'')
    lit->body = i + 1;
  else if ((c == 'e' || c == 'E') && next == '\'')
    lit->kind = LITERAL_ESCAPE, lit->body = i + 2;
  else if (c != '\0' && strchr ("nNbBxX", c) && next == '\'')
    lit->body = i + 2;
  else if ((c == 'u' || c == 'U') && next == '&' && i + 2 < len
           && s[i + 2] == '\'')
    lit->body = i + 3;
  else if (c == '$' && !g_ascii_isdigit (next))
    {
      gsize j = i + 1;
      while (j < len && s[j] != '$' && is_ident_char (s[j]))
        j++;
      if (j >= len || s[j] != '$')
        return FALSE;
      lit->kind = LITERAL_DOLLAR;
      lit->body = j + 1;
      lit->tag_len = j + 1 - i;
    }
  else
    return FALSE;
  return TRUE;
}

/* Returns the index past the closing quote of a quoted text from @i, or
 * @len when it does not end; *@text_end gets the index of the closing
 * quote (@len when none). */
static gsize
quoted_end (const char *s, gsize len, gsize i, gboolean backslash_escapes,
            gsize *text_end)
{
  while (i < len)
    {
      if (s[i] == '\'')
        {
          if (i + 1 < len && s[i + 1] == '\'')
            {
              i += 2;
              continue;
            }
          *text_end = i;
          return i + 1;
        }
      i += backslash_escapes && s[i] == '\\' ? 2 : 1;
    }
  *text_end = len;
  return len;
}

/* Called with the text of each piece of a string. */
typedef void (*SegmentFunc) (Redactor *r, gsize from, gsize to);

/* Returns the index past @lit, including the pieces that continue it on
 * later lines ('a'<newline>'b' is one string; after a dollar-quoted string
 * PostgreSQL refuses such a piece, but it is taken in all the same, so
 * that the '***' that replaces a dollar-quoted password reads the same);
 * *@body_end gets the end of its text (before the last closing quote or
 * tag).  @backslashes reads a backslash in a standard string as an escape.
 * @pieces: whether later pieces count (not in a comment, where the text
 * is not SQL).  @segment (nullable) gets the text of each piece. */
static gsize
literal_end (const char *s, gsize len, const Literal *lit, gboolean backslashes,
             gboolean pieces, gsize *body_end, SegmentFunc segment, Redactor *r)
{
  gboolean escapes = backslashes || lit->kind == LITERAL_ESCAPE;
  gsize end;

  if (lit->kind == LITERAL_DOLLAR)
    {
      const char *close = memmem (s + lit->body, len - lit->body,
                                  s + lit->start, lit->tag_len);
      *body_end = close != NULL ? (gsize)(close - s) : len;
      end = close != NULL ? *body_end + lit->tag_len : len;
    }
  else
    end = quoted_end (s, len, lit->body, escapes, body_end);
  if (segment != NULL)
    segment (r, lit->body, *body_end);

  while (pieces)
    {
      gboolean newline;
      gsize next = skip_blanks (s, len, end, &newline);
      if (!(newline && next < len && s[next] == '\''))
        break;
      end = quoted_end (s, len, next + 1, escapes, body_end);
      if (segment != NULL)
        segment (r, next + 1, *body_end);
    }
  return end;
}

/* Where redact_inline() searches: what it looks for, and where a conninfo
 * value ends. */
typedef enum
{
  INLINE_URIS,         /* SQL between strings: URI passwords only */
  INLINE_STRING,       /* a string's text: values end at a blank */
  INLINE_META,         /* a backslash command: values end at a blank or at the
                        * quote that closes an argument ('password=x') */
  INLINE_COMMENT,      /* a slash-star comment's text: values end at a blank or
                        * at a comment mark */
  INLINE_LINE_COMMENT, /* a "--" comment's text: values end at a blank */
} InlineMode;

/* Hides, in sql[@from, @to), every URI password ("://user:…@") and, but
 * with INLINE_URIS, every conninfo "password=…" value. */
static void
redact_inline (Redactor *r, gsize from, gsize to, InlineMode mode)
{
  const char *s = r->sql;
  gsize i = from;

  while (i < to)
    {
      gsize start = 0, end = 0;
      if ((s[i] | 0x20) != 'p' && s[i] != ':')
        {
          i++;
          continue;
        }
      if (mode != INLINE_URIS && word_at (s, to, i, "password")
          && (i == from || !is_ident_char (s[i - 1])))
        {
          gsize j = i + strlen ("password");
          while (j < to && (s[j] == ' ' || s[j] == '\t'))
            j++;
          if (j < to && s[j] == '=')
            {
              j++;
              while (j < to && (s[j] == ' ' || s[j] == '\t'))
                j++;
              start = j;
              /* A quoted value may hold blanks: hide the rest (in a
               * comment, up to a comment mark, which must stay). */
              gboolean quoted
                  = j < to && (s[j] == '\'' || s[j] == '\\' || s[j] == '"');
              for (end = j; end < to; end++)
                {
                  if (mode == INLINE_COMMENT
                      && (word_at (s, to, end, "/*")
                          || word_at (s, to, end, "*/")))
                    break;
                  if (quoted)
                    continue;
                  if (g_ascii_isspace (s[end])
                      || (mode == INLINE_META && s[end] == '\''
                          && (end + 1 == to || g_ascii_isspace (s[end + 1]))))
                    break;
                }
            }
          i = MAX (j, end); /* past the value: it is not searched again */
        }
      else if (word_at (s, to, i, "://"))
        {
          gsize host = i + 3, stop = host, at = 0;
          while (stop < to && !g_ascii_isspace (s[stop])
                 && !strchr ("/?#'\"", s[stop]))
            {
              if (s[stop] == '@')
                at = stop;
              stop++;
            }
          if (at)
            {
              const char *colon = memchr (s + host, ':', at - host);
              if (colon != NULL)
                start = colon + 1 - s, end = at;
            }
          i = stop;
        }
      else
        {
          i++;
          continue;
        }
      /* A blank after "***" where it would run on: before a '/' ("*"
       * "/" ends a comment) and, in a comment, before the string that
       * stopped a value (a conninfo value reads to a blank). */
      gboolean blank
          = end < r->len
            && (s[end] == '/'
                || ((mode == INLINE_COMMENT || mode == INLINE_LINE_COMMENT)
                    && end == to && !g_ascii_isspace (s[end])
                    && !word_at (s, r->len, end, "*/")));
      if (end > start
          && !(end - start == 3 && memcmp (s + start, "***", 3) == 0))
        redactor_replace (r, start, end, blank ? "*** " : "***");
    }
}

/* A SegmentFunc: searches a string's text. */
static void
redact_string_text (Redactor *r, gsize from, gsize to)
{
  redact_inline (r, from, to, INLINE_STRING);
}

/* Hides the string @lit that follows a PASSWORD, bounded by @to, with
 * '***'; returns the index past it.  In a comment (@in_comment) only its
 * first piece counts; in a block comment (@block) the comment marks inside
 * the string are kept after it, so that the comment still ends where it
 * did. */
static gsize
hide_password_string (Redactor *r, const Literal *lit, gsize to,
                      gboolean in_comment, gboolean block)
{
  const char *sql = r->sql;
  gsize body_end;
  gsize end
      = literal_end (sql, to, lit, FALSE, !in_comment, &body_end, NULL, NULL);
  /* Read a backslash both ways; hide the longer string. */
  gsize alt_body_end;
  gsize alt = literal_end (sql, to, lit, TRUE, !in_comment, &alt_body_end, NULL,
                           NULL);
  if (alt > end)
    end = alt, body_end = alt_body_end;
  if (body_end - lit->body == 3 && lit->start + 1 == lit->body
      && end == body_end + 1 && memcmp (sql + lit->body, "***", 3) == 0)
    return end; /* hidden already */

  g_autoptr (GString) with = g_string_new ("'***'");
  for (gsize k = lit->start; block && k + 1 < end; k++)
    if ((sql[k] == '/' && sql[k + 1] == '*')
        || (sql[k] == '*' && sql[k + 1] == '/'))
      {
        g_string_append_c (with, ' ');
        g_string_append_len (with, sql + k, 2);
        k++;
      }
  /* '***' right before a quote would run on into it. */
  if (end < to && sql[end] == '\'')
    g_string_append_c (with, ' ');
  /* What is kept for error messages is the text, not the quotes. */
  if (r->secrets != NULL && body_end > lit->body)
    g_ptr_array_add (r->secrets,
                     g_strndup (sql + lit->body, body_end - lit->body));
  GPtrArray *secrets = r->secrets;
  r->secrets = NULL;
  redactor_replace (r, lit->start, end, with->str);
  r->secrets = secrets;
  return end;
}

/* Hides what a comment's text sql[@from, @to) holds: the string after each
 * word PASSWORD (quotes elsewhere mean nothing in a comment: "don't"),
 * conninfo values and URI passwords.  @block: a slash-star comment. */
static void
redact_comment (Redactor *r, gsize from, gsize to, gboolean block)
{
  const char *sql = r->sql;
  gsize plain = from;
  gsize i = from;

  while (i < to)
    {
      if (!(word_at (sql, to, i, "password")
            && (i == plain || !is_ident_char (sql[i - 1]))))
        {
          i++;
          continue;
        }
      i += strlen ("password");
      gsize j = i;
      while (j < to && g_ascii_isspace (sql[j]))
        j++;
      Literal lit;
      if ((i < to && is_ident_char (sql[i])) || !literal_at (sql, to, j, &lit))
        continue;
      redact_inline (r, plain, j, block ? INLINE_COMMENT : INLINE_LINE_COMMENT);
      i = plain = hide_password_string (r, &lit, to, TRUE, block);
    }
  redact_inline (r, plain, to, block ? INLINE_COMMENT : INLINE_LINE_COMMENT);
}

/* Lexes sql[@from, @to) as SQL and hides what it finds (see above). */
static void
redact_sql (Redactor *r, gsize from, gsize to)
{
  const char *sql = r->sql;
  gboolean after_password = FALSE; /* the last word was PASSWORD */
  gsize plain = from;              /* start of the text since the last string */
  gsize i = from;

  while (i < to)
    {
      guchar c = sql[i];
      Literal lit;

      /* White space and comments keep after_password as it is. */
      if (g_ascii_isspace (c))
        {
          i++;
          continue;
        }
      gsize after_comment = skip_comment (sql, to, i);
      if (after_comment != i)
        {
          /* A statement commented out may hold a password too. */
          gboolean block = sql[i] == '/';
          gsize body_end = after_comment;
          if (block && after_comment - i >= 4 && sql[after_comment - 2] == '*'
              && sql[after_comment - 1] == '/')
            body_end -= 2;
          redact_inline (r, plain, i, INLINE_URIS);
          redact_comment (r, i + 2, body_end, block);
          i = plain = after_comment;
          continue;
        }
      if (literal_at (sql, to, i, &lit))
        {
          redact_inline (r, plain, i, INLINE_URIS);
          if (after_password)
            i = hide_password_string (r, &lit, to, FALSE, FALSE);
          else
            {
              gsize body_end;
              i = literal_end (sql, to, &lit, FALSE, TRUE, &body_end,
                               redact_string_text, r);
            }
          plain = i;
          after_password = FALSE;
          continue;
        }
      if (is_ident_start (c))
        {
          gsize start = i;
          while (i < to && is_ident_char (sql[i]))
            i++;
          after_password = i - start == strlen ("password")
                           && word_at (sql, to, start, "password");
          continue;
        }
      i++;
      if (c == '"') /* a quoted identifier; "" stands for one " */
        {
          while (i < to
                 && !(sql[i] == '"' && !(i + 1 < to && sql[i + 1] == '"')))
            i += sql[i] == '"' ? 2 : 1;
          i = MIN (i + 1, to);
        }
      after_password = FALSE;
    }
  redact_inline (r, plain, to, INLINE_URIS);
}

/* Returns (transfer full) the redacted copy of @sql, or NULL when nothing
 * needed hiding; copies of what was hidden go to @secrets (nullable). */
static char *
redact (const char *sql, GPtrArray *secrets)
{
  /* The common case first: no "password", no "://" (strpbrk is fast). */
  gboolean suspect = FALSE;
  for (const char *p = sql; !suspect && (p = strpbrk (p, "pP:")) != NULL; p++)
    suspect = *p == ':' ? p[1] == '/' && p[2] == '/'
                        : g_ascii_strncasecmp (p, "password", 8) == 0;
  if (!suspect)
    return NULL;
  gsize len = strlen (sql);

  Redactor r = { .sql = sql, .len = len, .secrets = secrets };
  gsize first = 0;
  while (first < len && g_ascii_isspace (sql[first]))
    first++;
  /* A backslash command's arguments are not SQL: conninfo, URIs. */
  if (first < len && sql[first] == '\\')
    redact_inline (&r, 0, len, INLINE_META);
  else
    redact_sql (&r, 0, len);
  if (r.out == NULL)
    return NULL;
  g_string_append_len (r.out, sql + r.copied, len - r.copied);
  return g_string_free (r.out, FALSE);
}

char *
tusk_history_redact_sql (const char *sql)
{
  g_return_val_if_fail (sql != NULL, NULL);

  char *redacted = redact (sql, NULL);
  return redacted != NULL ? redacted : g_strdup (sql);
}

/* Returns (transfer full) @message with each of @secrets (nonempty ones)
 * replaced by ***. */
static char *
hide_in_message (const char *message, GPtrArray *secrets)
{
  GString *out = g_string_new (message);
  for (guint i = 0; i < secrets->len; i++)
    if (*(const char *)secrets->pdata[i] != '\0')
      g_string_replace (out, secrets->pdata[i], "***", 0);
  return g_string_free (out, FALSE);
}

char *
tusk_history_redact_message (const char *sql, const char *message)
{
  g_return_val_if_fail (sql != NULL, NULL);
  g_return_val_if_fail (message != NULL, NULL);

  g_autoptr (GPtrArray) secrets = g_ptr_array_new_with_free_func (wipe_free);
  g_free (redact (sql, secrets)); /* only what it hid is needed */
  return hide_in_message (message, secrets);
}

void
tusk_history_entry_redact (TuskHistoryEntry *entry)
{
  g_autoptr (GPtrArray) secrets = g_ptr_array_new_with_free_func (wipe_free);
  char *sql = redact (entry->sql, secrets);
  if (sql == NULL)
    return;
  wipe_free (entry->sql);
  entry->sql = sql;
  if (entry->error_message == NULL)
    return;
  char *message = hide_in_message (entry->error_message, secrets);
  wipe_free (entry->error_message);
  entry->error_message = message;
}
