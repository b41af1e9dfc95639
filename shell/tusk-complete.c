/* tusk-complete.c: context-aware tab completion for the shell, answered
 * from an immutable schema snapshot and the text typed so far.
 *
 * Design note.  Completion is a pure function of (snapshot, buffer,
 * cursor).  It runs in four steps:
 *   1. A backslash command on the cursor's line is completed on its own
 *      (command names, then the argument by command: relations for \d,
 *      functions for \df, files for \i and \o, …).
 *   2. Otherwise a small SQL lexer (quotes, dollar quotes, comments,
 *      operators; not the splitter, which does not keep tokens) turns the
 *      statement around the cursor into tokens.  The word being completed is
 *      the identifier that ends at the cursor, with up to two qualifiers
 *      ("b.ti", "shop.orders.to").
 *   3. The context comes from the tokens before the word: the token just
 *      before it (FROM, JOIN, ',', '(', an operator, a name …) and, when that
 *      is not enough, the nearest clause keyword at the same parenthesis
 *      depth.  The table references of the whole statement (also those after
 *      the cursor: "SELECT | FROM books") give the columns in scope and
 *      resolve aliases.
 *   4. Candidates come from tusk_schema_complete() and
 *      tusk_schema_complete_columns() (both O(limit) on any catalog size)
 *      and from the keyword lists below; identifiers are quoted when they
 *      need it and schema-qualified when the search_path would not find
 *      them; keywords take the case the user types in.
 *
 * Cost: linear in the statement's length plus O(limit) per kind asked for,
 * with limit = 1,000: well under a millisecond on 10,000 tables
 * (bench/bench-complete.c).
 */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-complete.h"

#include <string.h>

#define MAX_CANDIDATES 1000

/* ------------------------------------------------------------------ */
/* Word lists                                                           */

/* Words that start a statement. */
static const char *const statement_keywords[] = {
  "ABORT",      "ALTER",    "ANALYZE",   "BEGIN",    "CALL",     "CHECKPOINT",
  "CLOSE",      "CLUSTER",  "COMMENT",   "COMMIT",   "COPY",     "CREATE",
  "DEALLOCATE", "DECLARE",  "DELETE",    "DISCARD",  "DO",       "DROP",
  "END",        "EXECUTE",  "EXPLAIN",   "FETCH",    "GRANT",    "IMPORT",
  "INSERT",     "LISTEN",   "LOAD",      "LOCK",     "MOVE",     "NOTIFY",
  "PREPARE",    "REASSIGN", "REFRESH",   "REINDEX",  "RELEASE",  "RESET",
  "REVOKE",     "ROLLBACK", "SAVEPOINT", "SECURITY", "SELECT",   "SET",
  "SHOW",       "START",    "TABLE",     "TRUNCATE", "UNLISTEN", "UPDATE",
  "VACUUM",     "VALUES",   "WITH",      NULL,
};

/* After a table reference (FROM books b |). */
static const char *const relation_follow_keywords[] = {
  "WHERE",
  "JOIN",
  "INNER JOIN",
  "LEFT JOIN",
  "RIGHT JOIN",
  "FULL JOIN",
  "CROSS JOIN",
  "NATURAL JOIN",
  "LEFT OUTER JOIN",
  "RIGHT OUTER JOIN",
  "FULL OUTER JOIN",
  "ON",
  "USING",
  "AS",
  "GROUP BY",
  "ORDER BY",
  "HAVING",
  "LIMIT",
  "OFFSET",
  "UNION",
  "EXCEPT",
  "INTERSECT",
  "WINDOW",
  "FOR UPDATE",
  "SET",
  "VALUES",
  "DEFAULT VALUES",
  "SELECT",
  "RETURNING",
  "TABLESAMPLE",
  NULL,
};

/* After an expression (SELECT id | ; WHERE a = 1 |). */
static const char *const expression_follow_keywords[] = {
  "FROM",    "WHERE",       "AS",         "AND",        "OR",       "NOT",
  "IS",      "IN",          "LIKE",       "ILIKE",      "BETWEEN",  "ASC",
  "DESC",    "NULLS FIRST", "NULLS LAST", "GROUP BY",   "ORDER BY", "HAVING",
  "LIMIT",   "OFFSET",      "UNION",      "INTERSECT",  "EXCEPT",   "JOIN",
  "ON",      "RETURNING",   "THEN",       "ELSE",       "END",      "WHEN",
  "COLLATE", "OVER",        "FILTER",     "SIMILAR TO", "ISNULL",   "NOTNULL",
  NULL,
};

/* Keywords that may start an expression, offered beside the columns once
 * the user has typed a letter. */
static const char *const expression_keywords[] = {
  "CASE",
  "CAST",
  "DISTINCT",
  "EXISTS",
  "FALSE",
  "NOT",
  "NULL",
  "TRUE",
  "ARRAY",
  "CURRENT_DATE",
  "CURRENT_TIMESTAMP",
  "CURRENT_USER",
  "INTERVAL",
  "SELECT",
  NULL,
};

/* Object kinds after CREATE, ALTER and DROP. */
static const char *const object_keywords[] = {
  "TABLE",           "VIEW",           "MATERIALIZED VIEW",
  "INDEX",           "SCHEMA",         "SEQUENCE",
  "FUNCTION",        "PROCEDURE",      "TYPE",
  "EXTENSION",       "ROLE",           "USER",
  "DATABASE",        "TRIGGER",        "DOMAIN",
  "POLICY",          "OR REPLACE",     "UNIQUE INDEX",
  "TEMPORARY TABLE", "UNLOGGED TABLE", NULL,
};

static const char *const subquery_keywords[]
    = { "SELECT", "VALUES", "WITH", NULL };

/* The functions of pg_catalog people type most (the snapshot leaves
 * pg_catalog out). */
static const char *const builtin_functions[] = {
  "abs",
  "array_agg",
  "array_length",
  "avg",
  "bool_and",
  "bool_or",
  "ceil",
  "char_length",
  "coalesce",
  "concat",
  "concat_ws",
  "count",
  "current_setting",
  "date_part",
  "date_trunc",
  "extract",
  "floor",
  "format",
  "gen_random_uuid",
  "generate_series",
  "greatest",
  "json_agg",
  "json_build_object",
  "jsonb_agg",
  "jsonb_build_object",
  "jsonb_set",
  "least",
  "left",
  "length",
  "lower",
  "lpad",
  "ltrim",
  "max",
  "md5",
  "min",
  "now",
  "nullif",
  "position",
  "regexp_replace",
  "replace",
  "right",
  "round",
  "row_number",
  "rpad",
  "rtrim",
  "split_part",
  "string_agg",
  "substring",
  "sum",
  "to_char",
  "to_date",
  "to_timestamp",
  "trim",
  "trunc",
  "unnest",
  "upper",
  NULL,
};

/* PostgreSQL 15's reserved key words (both "reserved" and "reserved (can be
 * function or type)"): a name spelled like one must be quoted. */
static const char *const reserved_words[] = {
  "all",
  "analyse",
  "analyze",
  "and",
  "any",
  "array",
  "as",
  "asc",
  "asymmetric",
  "authorization",
  "binary",
  "both",
  "case",
  "cast",
  "check",
  "collate",
  "collation",
  "column",
  "concurrently",
  "constraint",
  "create",
  "cross",
  "current_catalog",
  "current_date",
  "current_role",
  "current_schema",
  "current_time",
  "current_timestamp",
  "current_user",
  "default",
  "deferrable",
  "desc",
  "distinct",
  "do",
  "else",
  "end",
  "except",
  "false",
  "fetch",
  "for",
  "foreign",
  "freeze",
  "from",
  "full",
  "grant",
  "group",
  "having",
  "ilike",
  "in",
  "initially",
  "inner",
  "intersect",
  "into",
  "is",
  "isnull",
  "join",
  "lateral",
  "leading",
  "left",
  "like",
  "limit",
  "localtime",
  "localtimestamp",
  "natural",
  "not",
  "notnull",
  "null",
  "offset",
  "on",
  "only",
  "or",
  "order",
  "outer",
  "overlaps",
  "placing",
  "primary",
  "references",
  "returning",
  "right",
  "select",
  "session_user",
  "similar",
  "some",
  "symmetric",
  "table",
  "tablesample",
  "then",
  "to",
  "trailing",
  "true",
  "union",
  "unique",
  "user",
  "using",
  "variadic",
  "verbose",
  "when",
  "where",
  "window",
  "with",
  NULL,
};

/* The backslash commands of tusk-meta.c, in \? order. */
static const char *const meta_commands[] = {
  "\\?",      "\\q",     "\\c",   "\\conninfo", "\\d",
  "\\dt",     "\\dv",    "\\dm",  "\\df",       "\\di",
  "\\dn",     "\\ds",    "\\dT",  "\\x",        "\\timing",
  "\\format", "\\o",     "\\i",   "\\e",        "\\history",
  "\\save",   "\\saved", "\\run", "\\refresh",  NULL,
};

static const char *const format_names[]
    = { "table", "csv", "json", "ndjson", "markdown", "unaligned", NULL };
static const char *const on_off[] = { "on", "off", NULL };

static gboolean
word_in (const char *word, gsize len, const char *const *list)
{
  for (guint i = 0; list[i] != NULL; i++)
    if (strlen (list[i]) == len
        && g_ascii_strncasecmp (list[i], word, len) == 0)
      return TRUE;
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

typedef struct
{
  GPtrArray *items; /* char *, owned */
  GHashTable *seen; /* borrowed keys from items */
} Out;

static void
out_init (Out *out)
{
  out->items = g_ptr_array_new_with_free_func (g_free);
  out->seen = g_hash_table_new (g_str_hash, g_str_equal);
}

static gboolean
out_full (const Out *out)
{
  return out->items->len >= MAX_CANDIDATES;
}

/* Adds @text (transfer full) unless it is there already or the list is
 * full. */
static void
out_take (Out *out, char *text)
{
  if (out_full (out) || g_hash_table_contains (out->seen, text))
    {
      g_free (text);
      return;
    }
  g_ptr_array_add (out->items, text);
  g_hash_table_add (out->seen, text);
}

static char **
out_finish (Out *out)
{
  g_hash_table_unref (out->seen);
  g_ptr_array_add (out->items, NULL);
  return (char **)g_ptr_array_free (out->items, FALSE);
}

/* ------------------------------------------------------------------ */
/* Identifiers                                                          */

/* Whether @name can be written without double quotes: lower-case ASCII
 * letters, digits, '_', '$' and non-ASCII bytes, not starting with a digit
 * or '$', and not a reserved word. */
static gboolean
needs_quotes (const char *name)
{
  const guchar *p = (const guchar *)name;
  if (*p == '\0' || (g_ascii_isdigit (*p) || *p == '$'))
    return TRUE;
  for (; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || g_ascii_isdigit (*p) || *p == '_'
          || *p == '$' || *p >= 0x80))
      return TRUE;
  return word_in (name, strlen (name), reserved_words);
}

static void
append_ident (GString *s, const char *name, gboolean force_quotes)
{
  if (!force_quotes && !needs_quotes (name))
    {
      g_string_append (s, name);
      return;
    }
  g_string_append_c (s, '"');
  for (const char *p = name; *p; p++)
    {
      if (*p == '"')
        g_string_append_c (s, '"');
      g_string_append_c (s, *p);
    }
  g_string_append_c (s, '"');
}

/* ------------------------------------------------------------------ */
/* Lexer                                                                */

typedef enum
{
  TOK_IDENT,  /* unquoted name or key word */
  TOK_QIDENT, /* "quoted name" */
  TOK_STRING, /* '…', E'…', $tag$…$tag$ */
  TOK_NUMBER,
  TOK_PARAM, /* $1 */
  TOK_PUNCT, /* ( ) , ; . [ ] : */
  TOK_OP,    /* + - * / < > = … */
  TOK_META,  /* a backslash command inside a statement */
} TokKind;

typedef struct
{
  TokKind kind;
  gsize start, end;
  gboolean open; /* the input ended inside it (quote, dollar quote) */
} Token;

typedef struct
{
  const char *text;
  gsize len;
  GArray *tokens; /* Token */
  /* The cursor lies inside a comment, a string or a backslash command. */
  gboolean cursor_in_literal;
} Lexed;

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
is_op_char (char c)
{
  return c != '\0' && strchr ("+-*/<>=~!@#%^&|`?", c) != NULL;
}

/* The end of a '…' string starting at @i (the quote); backslashes escape
 * when @escapes. */
static gsize
scan_string (const char *s, gsize len, gsize i, gboolean escapes,
             gboolean *open)
{
  for (i++; i < len; i++)
    {
      if (escapes && s[i] == '\\' && i + 1 < len)
        i++;
      else if (s[i] == '\'')
        {
          if (i + 1 < len && s[i + 1] == '\'')
            i++;
          else
            return i + 1;
        }
    }
  *open = TRUE;
  return len;
}

/* Lexes @text[0, @len) and notes whether @cursor falls inside a literal or
 * comment (then nothing is completed). */
static void
lex (Lexed *lx, const char *text, gsize len, gsize cursor)
{
  lx->text = text;
  lx->len = len;
  lx->tokens = g_array_new (FALSE, FALSE, sizeof (Token));
  lx->cursor_in_literal = FALSE;

  gsize i = 0;
  while (i < len)
    {
      const char *s = text;
      char c = s[i];
      Token t = { .start = i, .open = FALSE };
      gboolean skip = FALSE; /* a comment: no token */

      if (g_ascii_isspace (c))
        {
          i++;
          continue;
        }
      if (c == '-' && i + 1 < len && s[i + 1] == '-')
        {
          while (i < len && s[i] != '\n')
            i++;
          t.end = i;
          skip = TRUE;
          if (cursor > t.start && cursor <= t.end)
            lx->cursor_in_literal = TRUE;
        }
      else if (c == '/' && i + 1 < len && s[i + 1] == '*')
        {
          int depth = 0;
          while (i < len)
            {
              if (s[i] == '/' && i + 1 < len && s[i + 1] == '*')
                depth++, i += 2;
              else if (s[i] == '*' && i + 1 < len && s[i + 1] == '/')
                {
                  i += 2;
                  if (--depth == 0)
                    break;
                }
              else
                i++;
            }
          t.end = i;
          skip = TRUE;
          if (cursor > t.start && (cursor < t.end || depth > 0))
            lx->cursor_in_literal = TRUE;
        }
      else if (c == '\'')
        {
          t.kind = TOK_STRING;
          i = scan_string (s, len, i, FALSE, &t.open);
        }
      else if (c == '"')
        {
          t.kind = TOK_QIDENT;
          for (i++;; i++)
            {
              if (i >= len)
                {
                  t.open = TRUE;
                  break;
                }
              if (s[i] == '"')
                {
                  if (i + 1 < len && s[i + 1] == '"')
                    i++;
                  else
                    {
                      i++;
                      break;
                    }
                }
            }
        }
      else if (c == '$' && i + 1 < len && g_ascii_isdigit (s[i + 1]))
        {
          t.kind = TOK_PARAM;
          for (i++; i < len && g_ascii_isdigit (s[i]); i++)
            ;
        }
      else if (c == '$')
        {
          /* $tag$ … $tag$, or a lone '$' (an operator character then). */
          gsize j = i + 1;
          while (j < len && s[j] != '$' && is_ident_char ((guchar)s[j])
                 && s[j] != '$')
            j++;
          if (j < len && s[j] == '$'
              && (j == i + 1 || is_ident_start ((guchar)s[i + 1])))
            {
              gsize tag_len = j + 1 - i;
              const char *tag = s + i;
              t.kind = TOK_STRING;
              i = j + 1;
              for (;;)
                {
                  if (i + tag_len > len)
                    {
                      i = len;
                      t.open = TRUE;
                      break;
                    }
                  if (memcmp (s + i, tag, tag_len) == 0)
                    {
                      i += tag_len;
                      break;
                    }
                  i++;
                }
            }
          else
            {
              t.kind = TOK_OP;
              i++;
            }
        }
      else if (g_ascii_isdigit (c)
               || (c == '.' && i + 1 < len && g_ascii_isdigit (s[i + 1])
                   && (i == 0 || !is_ident_char ((guchar)s[i - 1]))))
        {
          t.kind = TOK_NUMBER;
          for (i++; i < len
                    && (g_ascii_isalnum (s[i]) || s[i] == '.' || s[i] == '_');
               i++)
            ;
        }
      else if (is_ident_start ((guchar)c))
        {
          for (i++; i < len && is_ident_char ((guchar)s[i]); i++)
            ;
          /* E'…', B'…', X'…', N'…' and U&'…' are strings. */
          gsize n = i - t.start;
          if (i < len && s[i] == '\'' && n == 1 && strchr ("eEbBxXnN", c))
            {
              t.kind = TOK_STRING;
              i = scan_string (s, len, i, c == 'e' || c == 'E', &t.open);
            }
          else if (n == 1 && (c == 'u' || c == 'U') && i + 1 < len
                   && s[i] == '&' && (s[i + 1] == '\'' || s[i + 1] == '"'))
            {
              if (s[i + 1] == '\'')
                {
                  t.kind = TOK_STRING;
                  i = scan_string (s, len, i + 1, FALSE, &t.open);
                }
              else
                t.kind = TOK_IDENT; /* U&"…": the quote lexes next */
            }
          else
            t.kind = TOK_IDENT;
        }
      else if (c == '\\')
        {
          t.kind = TOK_META;
          while (i < len && s[i] != '\n')
            i++;
        }
      else if (strchr ("(),;.[]:", c) != NULL)
        {
          t.kind = TOK_PUNCT;
          i++;
        }
      else if (is_op_char (c))
        {
          t.kind = TOK_OP;
          for (i++; i < len && is_op_char (s[i]); i++)
            {
              /* a comment starts inside an operator run */
              if ((s[i] == '-' && i + 1 < len && s[i + 1] == '-')
                  || (s[i] == '/' && i + 1 < len && s[i + 1] == '*'))
                break;
            }
        }
      else
        {
          t.kind = TOK_OP; /* any other byte */
          i++;
        }

      if (skip)
        continue;
      t.end = i;
      if ((t.kind == TOK_STRING || t.kind == TOK_META) && cursor > t.start
          && (cursor < t.end || t.open
              || (t.kind == TOK_META && cursor == t.end)))
        lx->cursor_in_literal = TRUE;
      g_array_append_val (lx->tokens, t);
    }
}

static const Token *
tok (const Lexed *lx, int i)
{
  return &g_array_index (lx->tokens, Token, i);
}

/* Whether token @i is the key word @kw (case-insensitive, unquoted). */
static gboolean
tok_is (const Lexed *lx, int i, const char *kw)
{
  if (i < 0 || i >= (int)lx->tokens->len)
    return FALSE;
  const Token *t = tok (lx, i);
  gsize n = t->end - t->start;
  return t->kind == TOK_IDENT && strlen (kw) == n
         && g_ascii_strncasecmp (lx->text + t->start, kw, n) == 0;
}

static gboolean
tok_in (const Lexed *lx, int i, const char *const *list)
{
  if (i < 0 || i >= (int)lx->tokens->len)
    return FALSE;
  const Token *t = tok (lx, i);
  return t->kind == TOK_IDENT
         && word_in (lx->text + t->start, t->end - t->start, list);
}

static gboolean
tok_punct (const Lexed *lx, int i, char c)
{
  if (i < 0 || i >= (int)lx->tokens->len)
    return FALSE;
  const Token *t = tok (lx, i);
  return t->kind == TOK_PUNCT && lx->text[t->start] == c;
}

static gboolean
tok_is_name (const Lexed *lx, int i)
{
  if (i < 0 || i >= (int)lx->tokens->len)
    return FALSE;
  TokKind k = tok (lx, i)->kind;
  return k == TOK_IDENT || k == TOK_QIDENT;
}

/* Returns (transfer full) the identifier token @t means: an unquoted one
 * folded to lower case as the server does (ASCII only), a quoted one
 * without its quotes. */
static char *
ident_value (const char *text, const Token *t)
{
  if (t->kind != TOK_QIDENT)
    return g_ascii_strdown (text + t->start, (gssize)(t->end - t->start));
  GString *s = g_string_new (NULL);
  gsize end = t->open ? t->end : t->end - 1;
  for (gsize i = t->start + 1; i < end; i++)
    {
      if (text[i] == '"' && i + 1 < end && text[i + 1] == '"')
        i++;
      g_string_append_c (s, text[i]);
    }
  return g_string_free (s, FALSE);
}

/* ------------------------------------------------------------------ */
/* Table references                                                     */

typedef struct
{
  char *schema; /* nullable */
  char *name;
  char *alias;                        /* nullable */
  const TuskSchemaRelation *relation; /* nullable: not in the snapshot */
} Ref;

static void
ref_clear (gpointer p)
{
  Ref *r = p;
  g_free (r->schema);
  g_free (r->name);
  g_free (r->alias);
}

/* Words after which a name is not an alias of the table before it. */
static const char *const not_alias_words[] = {
  "where",     "join",        "inner",  "left",    "right",   "full",
  "cross",     "natural",     "on",     "using",   "group",   "order",
  "having",    "limit",       "offset", "union",   "except",  "intersect",
  "window",    "for",         "set",    "values",  "default", "select",
  "returning", "tablesample", "outer",  "lateral", "only",    "as",
  "with",      "do",          "from",   "into",    NULL,
};

static const char *const ref_intro_words[]
    = { "from", "join", "update", "into", "table", "truncate", NULL };

static const char *const from_end_words[]
    = { "where",  "group",  "order",     "having", "limit",     "offset",
        "union",  "except", "intersect", "window", "returning", "set",
        "values", "select", "on",        "using",  NULL };

/* Reads a "[schema.]name [[AS] alias]" at token @i into @refs; returns the
 * index after it. */
static int
read_ref (const Lexed *lx, int i, GArray *refs, TuskSchemaSnapshot *snapshot)
{
  int n = (int)lx->tokens->len;
  while (tok_is (lx, i, "only") || tok_is (lx, i, "lateral"))
    i++;
  if (!tok_is_name (lx, i) || tok_in (lx, i, not_alias_words))
    return i;

  Ref r = { 0 };
  r.name = ident_value (lx->text, tok (lx, i));
  i++;
  if (tok_punct (lx, i, '.') && tok_is_name (lx, i + 1))
    {
      r.schema = r.name;
      r.name = ident_value (lx->text, tok (lx, i + 1));
      i += 2;
    }
  if (tok_is (lx, i, "as"))
    i++;
  if (i < n && tok_is_name (lx, i) && !tok_in (lx, i, not_alias_words))
    {
      r.alias = ident_value (lx->text, tok (lx, i));
      i++;
    }
  if (snapshot != NULL)
    r.relation
        = tusk_schema_snapshot_find_relation (snapshot, r.schema, r.name);
  g_array_append_val (refs, r);
  return i;
}

/* The table references of tokens [@from, @to): after FROM, JOIN, UPDATE,
 * INTO, TABLE, TRUNCATE and the commas of a FROM list. */
static GArray *
collect_refs (const Lexed *lx, int from, int to, TuskSchemaSnapshot *snapshot)
{
  GArray *refs = g_array_new (FALSE, TRUE, sizeof (Ref));
  g_array_set_clear_func (refs, ref_clear);
  gboolean in_from = FALSE;
  for (int i = from; i < to;)
    {
      if (tok_in (lx, i, ref_intro_words))
        {
          in_from = tok_is (lx, i, "from") || tok_is (lx, i, "join");
          /* IS DISTINCT FROM x, EXTRACT (f FROM x): not table references. */
          if (tok_is (lx, i, "from") && tok_is (lx, i - 1, "distinct"))
            {
              in_from = FALSE;
              i++;
              continue;
            }
          i = read_ref (lx, i + 1, refs, snapshot);
          continue;
        }
      if (in_from && tok_punct (lx, i, ','))
        {
          i = read_ref (lx, i + 1, refs, snapshot);
          continue;
        }
      if (tok_in (lx, i, from_end_words) || tok_punct (lx, i, ')'))
        in_from = FALSE;
      i++;
    }
  return refs;
}

/* ------------------------------------------------------------------ */
/* Context                                                              */

typedef enum
{
  CTX_NONE,       /* nothing to offer (an alias, a number …) */
  CTX_STATEMENT,  /* the first word of a statement */
  CTX_RELATION,   /* tables, views, materialized views, schemas */
  CTX_KINDS,      /* objects of ctx.kinds (DROP INDEX |) */
  CTX_EXPRESSION, /* columns in scope, functions */
  CTX_COLUMNS_OF, /* the columns of ctx.relation (INSERT INTO t (|) */
  CTX_AFTER_REL,  /* key words after a table reference */
  CTX_AFTER_EXPR, /* key words after an expression */
  CTX_KEYWORDS,   /* ctx.keywords only */
  CTX_SUBQUERY,   /* SELECT / VALUES / WITH */
} CtxKind;

typedef struct
{
  CtxKind kind;
  guint kinds;                        /* CTX_KINDS */
  const TuskSchemaRelation *relation; /* CTX_COLUMNS_OF */
  const char *const *keywords;        /* CTX_KEYWORDS */
  gboolean with_subquery;             /* CTX_EXPRESSION inside IN ( … */
} Ctx;

/* Clause key words that decide what a ',' continues. */
static const char *const clause_words[] = {
  "select",   "from",      "join",   "on",     "where",  "set",   "by",
  "having",   "returning", "into",   "update", "values", "using", "table",
  "truncate", "limit",     "offset", "window", NULL,
};

static const char *const relation_words[]
    = { "from",     "join", "update", "into", "table",
        "truncate", "only", "lock",   NULL };

static const char *const expression_words[] = {
  "select",    "where", "and",  "or",   "not",  "on",       "by",   "having",
  "returning", "when",  "then", "else", "case", "distinct", "like", "ilike",
  "between",   "in",    "any",  "all",  "some", "set",      NULL,
};

static const char *const next_insert[] = { "INTO", NULL };
static const char *const next_delete[] = { "FROM", NULL };
static const char *const next_by[] = { "BY", NULL };
static const char *const next_join[] = { "JOIN", "OUTER JOIN", NULL };
static const char *const next_join_only[] = { "JOIN", NULL };
static const char *const next_is[]
    = { "NULL",          "NOT NULL",          "TRUE", "FALSE", "UNKNOWN",
        "DISTINCT FROM", "NOT DISTINCT FROM", NULL };
static const char *const next_union[] = { "ALL", "SELECT", NULL };
static const char *const next_nulls[] = { "FIRST", "LAST", NULL };
static const char *const next_explain[]
    = { "ANALYZE", "VERBOSE", "SELECT", "INSERT",
        "UPDATE",  "DELETE",  "WITH",   NULL };
static const char *const next_explained[]
    = { "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", NULL };
static const char *const next_materialized[] = { "VIEW", NULL };
static const char *const next_refresh[] = { "MATERIALIZED VIEW", NULL };
static const char *const next_comment[] = { "ON", NULL };
static const char *const next_with[] = { "RECURSIVE", NULL };
static const char *const next_begin[]
    = { "ISOLATION LEVEL", "READ ONLY", "READ WRITE", NULL };
static const char *const next_start[] = { "TRANSACTION", NULL };
static const char *const no_words[] = { NULL };

/* Index of the unmatched '(' enclosing token @i, or -1; *@clause gets the
 * nearest clause key word at the same depth on the way (or -1). */
static int
scan_back (const Lexed *lx, int i, int stop, int *clause)
{
  int depth = 0;
  *clause = -1;
  for (; i >= stop; i--)
    {
      if (tok_punct (lx, i, ')'))
        depth++;
      else if (tok_punct (lx, i, '('))
        {
          if (depth == 0)
            return i;
          depth--;
        }
      else if (depth == 0 && *clause < 0 && tok_in (lx, i, clause_words))
        *clause = i;
    }
  return -1;
}

/* The context inside the parentheses opened at token @open. */
static Ctx
paren_context (const Lexed *lx, int open, int stop, GArray *refs)
{
  Ctx ctx = { .kind = CTX_EXPRESSION };
  int q = open - 1;
  if (q < stop)
    {
      ctx.kind = CTX_SUBQUERY;
      return ctx;
    }
  if (tok_is (lx, q, "in") || tok_is (lx, q, "any") || tok_is (lx, q, "all")
      || tok_is (lx, q, "some"))
    {
      ctx.with_subquery = TRUE;
      return ctx;
    }
  if (tok_is (lx, q, "exists") || tok_is (lx, q, "from")
      || tok_is (lx, q, "join") || tok_is (lx, q, "lateral")
      || tok_is (lx, q, "as") || tok_punct (lx, q, '('))
    {
      ctx.kind = CTX_SUBQUERY;
      return ctx;
    }
  if (tok_is_name (lx, q) && !tok_in (lx, q, reserved_words))
    {
      /* [schema.]name ( after INTO or ON: that table's column list. */
      int first = q;
      if (tok_punct (lx, q - 1, '.') && tok_is_name (lx, q - 2))
        first = q - 2;
      if (tok_is (lx, first - 1, "into") || tok_is (lx, first - 1, "on"))
        {
          g_autofree char *name = ident_value (lx->text, tok (lx, q));
          g_autofree char *schema
              = first < q ? ident_value (lx->text, tok (lx, first)) : NULL;
          for (guint i = 0; i < refs->len; i++)
            {
              const Ref *r = &g_array_index (refs, Ref, i);
              if (r->relation != NULL && g_str_equal (r->name, name)
                  && g_strcmp0 (r->schema, schema) == 0)
                {
                  ctx.kind = CTX_COLUMNS_OF;
                  ctx.relation = r->relation;
                  return ctx;
                }
            }
          ctx.kind = CTX_NONE; /* a table we do not know */
          return ctx;
        }
    }
  return ctx;
}

/* Whether token @p is the object kind of a CREATE (CREATE TABLE |,
 * CREATE UNIQUE INDEX |): a new name follows, nothing to complete. */
static gboolean
after_create (const Lexed *lx, int p, int stop)
{
  static const char *const modifiers[]
      = { "unique",       "temporary", "temp",    "unlogged",
          "materialized", "or",        "replace", "global",
          "local",        "recursive", NULL };
  static const char *const kinds[]
      = { "table",   "view",   "index",     "sequence", "function", "procedure",
          "schema",  "type",   "extension", "role",     "user",     "database",
          "trigger", "domain", "policy",    NULL };
  if (!tok_in (lx, p, kinds))
    return FALSE;
  int i = p - 1;
  while (i >= stop && tok_in (lx, i, modifiers))
    i--;
  return i >= stop && tok_is (lx, i, "create");
}

/* The context of a word whose previous token is @p, in the statement
 * starting at token @stop. */
static Ctx
find_context (const Lexed *lx, int p, int stop, GArray *refs)
{
  Ctx ctx = { .kind = CTX_NONE };
  if (p < stop)
    {
      ctx.kind = CTX_STATEMENT;
      return ctx;
    }

  /* DROP TABLE IF EXISTS | : as DROP TABLE | */
  if (tok_is (lx, p, "exists") && tok_is (lx, p - 1, "if"))
    {
      if (p - 2 < stop)
        return ctx;
      p -= 2;
      if (tok_is (lx, p, "not")) /* CREATE … IF NOT EXISTS: a new name */
        return ctx;
    }

  const Token *t = tok (lx, p);
  gboolean ddl = tok_is (lx, p - 1, "drop") || tok_is (lx, p - 1, "alter")
                 || tok_is (lx, p - 1, "comment")
                 || (tok_is (lx, p - 1, "on") && tok_is (lx, p - 2, "comment"))
                 || tok_is (lx, p - 1, "reindex")
                 || tok_is (lx, p - 1, "materialized");

  if (t->kind == TOK_IDENT)
    {
      if (after_create (lx, p, stop))
        return ctx;
      if (tok_is (lx, p, "from") && tok_is (lx, p - 1, "distinct"))
        {
          ctx.kind = CTX_EXPRESSION;
          return ctx;
        }
      if (tok_is (lx, p, "update") && tok_is (lx, p - 1, "for"))
        return ctx;
      if (tok_is (lx, p, "from") || tok_is (lx, p, "in"))
        {
          /* EXTRACT (f FROM |), SUBSTRING (s FROM |): an expression. */
          int clause;
          int open = scan_back (lx, p - 1, stop, &clause);
          if (open >= stop && clause < 0 && tok_is_name (lx, open - 1)
              && !tok_in (lx, open - 1, reserved_words))
            {
              ctx.kind = CTX_EXPRESSION;
              return ctx;
            }
          if (tok_is (lx, p, "in"))
            return ctx; /* x IN | : a parenthesis comes next */
        }
      if (tok_in (lx, p, relation_words))
        {
          ctx.kind = CTX_RELATION;
          return ctx;
        }
      if (tok_is (lx, p, "analyze") || tok_is (lx, p, "vacuum"))
        {
          if (tok_is (lx, p - 1, "explain"))
            {
              ctx.kind = CTX_KEYWORDS;
              ctx.keywords = next_explained;
            }
          else
            ctx.kind = CTX_RELATION;
          return ctx;
        }
      if (ddl || tok_is (lx, p - 1, "refresh"))
        {
          ctx.kind = CTX_KINDS;
          if (tok_is (lx, p, "view"))
            ctx.kinds = tok_is (lx, p - 1, "materialized")
                            ? TUSK_SCHEMA_KIND_MATVIEW
                            : TUSK_SCHEMA_KIND_VIEW;
          else if (tok_is (lx, p, "index"))
            ctx.kinds = TUSK_SCHEMA_KIND_INDEX;
          else if (tok_is (lx, p, "sequence"))
            ctx.kinds = TUSK_SCHEMA_KIND_SEQUENCE;
          else if (tok_is (lx, p, "function") || tok_is (lx, p, "procedure"))
            ctx.kinds = TUSK_SCHEMA_KIND_FUNCTION | TUSK_SCHEMA_KIND_PROCEDURE;
          else if (tok_is (lx, p, "schema"))
            ctx.kinds = TUSK_SCHEMA_KIND_SCHEMA;
          else if (tok_is (lx, p, "type"))
            ctx.kinds = TUSK_SCHEMA_KIND_ENUM;
          else
            ctx.kind = CTX_NONE;
          if (ctx.kind == CTX_KINDS)
            return ctx;
        }

      /* Key words that call for a particular next word. */
      static const struct
      {
        const char *word;
        const char *const *next;
      } next_words[] = {
        { "insert", next_insert },
        { "delete", next_delete },
        { "order", next_by },
        { "group", next_by },
        { "partition", next_by },
        { "left", next_join },
        { "right", next_join },
        { "full", next_join },
        { "inner", next_join_only },
        { "cross", next_join_only },
        { "natural", next_join_only },
        { "outer", next_join_only },
        { "is", next_is },
        { "union", next_union },
        { "intersect", next_union },
        { "except", next_union },
        { "nulls", next_nulls },
        { "explain", next_explain },
        { "verbose", next_explained },
        { "materialized", next_materialized },
        { "refresh", next_refresh },
        { "comment", next_comment },
        { "with", next_with },
        { "begin", next_begin },
        { "start", next_start },
        { "values", no_words },
        { "create", object_keywords },
        { "drop", object_keywords },
        { "alter", object_keywords },
        { "as", no_words },
        { "limit", no_words },
        { "offset", no_words },
        { "set", no_words },
      };
      for (guint i = 0; i < G_N_ELEMENTS (next_words); i++)
        if (tok_is (lx, p, next_words[i].word))
          {
            /* SET at the start takes a setting's name; in UPDATE, columns. */
            if (g_str_equal (next_words[i].word, "set") && p > stop)
              break;
            /* WITH inside a statement (WITH ORDINALITY …): nothing. */
            ctx.kind = CTX_KEYWORDS;
            ctx.keywords = next_words[i].next;
            return ctx;
          }

      if (tok_in (lx, p, expression_words))
        {
          ctx.kind = CTX_EXPRESSION;
          return ctx;
        }
    }

  if (t->kind == TOK_PUNCT)
    {
      char c = lx->text[t->start];
      if (c == ';')
        {
          ctx.kind = CTX_STATEMENT;
          return ctx;
        }
      if (c == '(' || c == ',')
        {
          int clause = -1;
          int open = c == '(' ? p : scan_back (lx, p - 1, stop, &clause);
          if (c == ',' && clause >= 0)
            {
              if (tok_in (lx, clause, relation_words)
                  || tok_is (lx, clause, "table"))
                ctx.kind = CTX_RELATION;
              else if (tok_is (lx, clause, "limit")
                       || tok_is (lx, clause, "offset"))
                ctx.kind = CTX_NONE;
              else
                ctx.kind = CTX_EXPRESSION;
              return ctx;
            }
          if (open >= stop)
            return paren_context (lx, open, stop, refs);
          ctx.kind = CTX_EXPRESSION;
          return ctx;
        }
      if (c == '[' || c == ':')
        {
          ctx.kind = CTX_EXPRESSION;
          return ctx;
        }
      if (c == ')' || c == ']')
        {
          ctx.kind = CTX_AFTER_EXPR;
          return ctx;
        }
      return ctx;
    }

  if (t->kind == TOK_OP)
    {
      /* SELECT * | and t.* | : a star, not a multiplication. */
      if (t->end - t->start == 1 && lx->text[t->start] == '*'
          && (p - 1 < stop || tok_is (lx, p - 1, "select")
              || tok_punct (lx, p - 1, ',') || tok_punct (lx, p - 1, '.')
              || tok_punct (lx, p - 1, '(')))
        {
          ctx.kind = CTX_AFTER_EXPR;
          return ctx;
        }
      ctx.kind = CTX_EXPRESSION;
      return ctx;
    }

  if (t->kind == TOK_META || t->kind == TOK_PARAM)
    {
      ctx.kind = t->kind == TOK_PARAM ? CTX_AFTER_EXPR : CTX_NONE;
      return ctx;
    }

  /* A name, string or number: what follows it depends on the clause. */
  int clause;
  scan_back (lx, p, stop, &clause);
  if (clause >= 0 && tok_in (lx, clause, relation_words))
    {
      /* FROM books b |, but FROM books b WHERE x IN (SELECT … ) |… */
      ctx.kind = CTX_AFTER_REL;
      return ctx;
    }
  if (clause >= 0 && tok_is (lx, clause, "set") && clause == stop)
    return ctx; /* SET search_path | */
  ctx.kind = CTX_AFTER_EXPR;
  return ctx;
}

/* ------------------------------------------------------------------ */
/* Candidates                                                           */

typedef struct
{
  TuskSchemaSnapshot *snapshot; /* nullable */
  const char *prefix;           /* what the user typed of the word, its
                                   quotes removed and unfolded */
  gboolean quoted;              /* the word starts with '"' */
  gboolean lower;               /* key words in lower case */
  const char *qualifier;        /* nullable: the buffer's "x." or "s.t."
                                   before the word, as typed */
  gboolean bare_schemas;        /* schemas without their trailing dot
                                   (DROP SCHEMA |, \dn |) */
  Out out;
} Gen;

static gboolean
matches (const Gen *g, const char *name)
{
  gsize n = strlen (g->prefix);
  if (g->quoted)
    return strncmp (name, g->prefix, n) == 0;
  return g_ascii_strncasecmp (name, g->prefix, n) == 0;
}

static void
add_keywords (Gen *g, const char *const *list)
{
  if (g->quoted)
    return;
  for (guint i = 0; list[i] != NULL && !out_full (&g->out); i++)
    if (matches (g, list[i]))
      out_take (&g->out,
                g->lower ? g_ascii_strdown (list[i], -1) : g_strdup (list[i]));
}

/* Whether an unqualified @name finds @schema's object through the
 * search_path: @schema must be on it and come first among those that have
 * a relation of that name (relations only; other kinds: on the path). */
static gboolean
visible (TuskSchemaSnapshot *snapshot, const char *schema, const char *name,
         gboolean relation)
{
  if (relation)
    {
      const TuskSchemaRelation *r
          = tusk_schema_snapshot_find_relation (snapshot, NULL, name);
      return r != NULL && g_str_equal (r->schema, schema);
    }
  const char *const *path = tusk_schema_snapshot_get_search_path (snapshot);
  for (guint i = 0; path[i] != NULL; i++)
    if (g_str_equal (path[i], schema))
      return TRUE;
  return FALSE;
}

/* Adds the objects of @kinds matching the word, as they would be written:
 * quoted when needed, schema-qualified when the search_path would not find
 * them (or the user typed a qualifier), schemas with a trailing dot. */
static void
add_objects (Gen *g, guint kinds)
{
  if (g->snapshot == NULL || out_full (&g->out))
    return;
  g_autofree char *query = g->qualifier != NULL
                               ? g_strconcat (g->qualifier, g->prefix, NULL)
                               : g_strdup (g->prefix);
  if (g->qualifier != NULL)
    {
      /* the qualifier as the schema's stored name: unquote it */
      Lexed lx;
      lex (&lx, g->qualifier, strlen (g->qualifier), 0);
      if (lx.tokens->len >= 1 && tok_is_name (&lx, 0))
        {
          g_autofree char *schema = ident_value (g->qualifier, tok (&lx, 0));
          g_free (query);
          query = g_strconcat (schema, ".", g->prefix, NULL);
        }
      g_array_unref (lx.tokens);
    }

  g_autoptr (GPtrArray) found
      = tusk_schema_complete (g->snapshot, kinds, query, MAX_CANDIDATES);
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < found->len && !out_full (&g->out); i++)
    {
      const TuskSchemaCandidate *c = found->pdata[i];
      if (!matches (g, c->name))
        continue;
      g_string_truncate (s, 0);
      if (c->kind == TUSK_SCHEMA_KIND_SCHEMA)
        {
          append_ident (s, c->name, g->quoted);
          if (!g->bare_schemas)
            g_string_append_c (s, '.');
        }
      else if (g->qualifier != NULL)
        {
          g_string_append (s, g->qualifier);
          append_ident (s, c->name, g->quoted);
        }
      else
        {
          gboolean rel = (c->kind & TUSK_SCHEMA_KIND_RELATIONS) != 0;
          if (c->schema != NULL
              && !visible (g->snapshot, c->schema, c->name, rel))
            {
              append_ident (s, c->schema, FALSE);
              g_string_append_c (s, '.');
            }
          append_ident (s, c->name, g->quoted);
        }
      out_take (&g->out, g_strdup (s->str));
    }
  g_string_free (s, TRUE);
}

static void
add_relation_columns (Gen *g, const TuskSchemaRelation *relation)
{
  g_autoptr (GPtrArray) cols = tusk_schema_complete_columns (
      g->snapshot, relation, g->quoted ? "" : g->prefix, MAX_CANDIDATES);
  for (guint i = 0; i < cols->len && !out_full (&g->out); i++)
    {
      const TuskSchemaColumn *col = cols->pdata[i];
      if (!matches (g, col->name))
        continue;
      GString *s = g_string_new (g->qualifier);
      append_ident (s, col->name, g->quoted);
      out_take (&g->out, g_string_free (s, FALSE));
    }
}

/* Columns in scope: those of the statement's known tables, or every column
 * name of the snapshot when none is known. */
static void
add_scope_columns (Gen *g, GArray *refs)
{
  gboolean any = FALSE;
  for (guint i = 0; i < refs->len; i++)
    {
      const Ref *r = &g_array_index (refs, Ref, i);
      if (r->relation != NULL)
        {
          add_relation_columns (g, r->relation);
          any = TRUE;
        }
    }
  if (!any)
    add_objects (g, TUSK_SCHEMA_KIND_COLUMN);
}

static void
add_functions (Gen *g)
{
  add_objects (g, TUSK_SCHEMA_KIND_FUNCTION);
  if (g->quoted || g->qualifier != NULL)
    return;
  for (guint i = 0; builtin_functions[i] != NULL && !out_full (&g->out); i++)
    if (matches (g, builtin_functions[i]))
      out_take (&g->out, g_strdup (builtin_functions[i]));
}

/* ------------------------------------------------------------------ */
/* Backslash commands                                                   */

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static void
complete_files (Gen *g, const char *word)
{
  g_autofree char *expanded
      = word[0] == '~' && (word[1] == '/' || word[1] == '\0')
            ? g_strconcat (g_get_home_dir (), word + 1, NULL)
            : g_strdup (word);
  const char *slash = strrchr (expanded, '/');
  g_autofree char *dir = slash == NULL ? g_strdup (".")
                         : slash == expanded
                             ? g_strdup ("/")
                             : g_strndup (expanded, (gsize)(slash - expanded));
  const char *base = slash == NULL ? expanded : slash + 1;
  gsize typed_dir = slash == NULL ? 0 : (gsize)(strrchr (word, '/') - word + 1);

  GDir *d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, base) && (base[0] == '.' || name[0] != '.'))
      g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len && !out_full (&g->out); i++)
    {
      const char *n = names->pdata[i];
      g_autofree char *path = g_build_filename (dir, n, NULL);
      gboolean is_dir = g_file_test (path, G_FILE_TEST_IS_DIR);
      out_take (&g->out, g_strdup_printf ("%.*s%s%s", (int)typed_dir, word, n,
                                          is_dir ? "/" : ""));
    }
}

static void
complete_meta (Gen *g, const char *line, gsize line_start, gsize cursor,
               gsize *word_start)
{
  /* line[0] is the backslash; the command name runs to white space. */
  gsize rel = cursor - line_start;
  gsize name_end = 1;
  while (name_end < rel && !g_ascii_isspace (line[name_end]))
    name_end++;
  if (name_end >= rel)
    {
      *word_start = line_start;
      g_autofree char *typed = g_strndup (line, rel);
      for (guint i = 0; meta_commands[i] != NULL; i++)
        if (g_str_has_prefix (meta_commands[i], typed))
          out_take (&g->out, g_strdup (meta_commands[i]));
      return;
    }

  g_autofree char *command = g_strndup (line + 1, name_end - 1);
  gsize arg = rel;
  while (arg > name_end && !g_ascii_isspace (line[arg - 1]))
    arg--;
  *word_start = line_start + arg;
  g_autofree char *word = g_strndup (line + arg, rel - arg);

  if (g_str_equal (command, "i") || g_str_equal (command, "o")
      || g_str_equal (command, "include"))
    {
      complete_files (g, word);
      return;
    }
  const char *const *words = g_str_equal (command, "format")   ? format_names
                             : g_str_equal (command, "x")      ? on_off
                             : g_str_equal (command, "timing") ? on_off
                                                               : NULL;
  if (words != NULL)
    {
      for (guint i = 0; words[i] != NULL; i++)
        if (g_str_has_prefix (words[i], word))
          out_take (&g->out, g_strdup (words[i]));
      return;
    }

  /* \d and friends: "+" and "S" modifiers do not change the kinds. */
  g_autofree char *base = g_strdup (command);
  for (char *p = base + strlen (base);
       p > base + 1 && (p[-1] == '+' || p[-1] == 'S');)
    *--p = '\0';
  guint kinds = 0;
  if (g_str_equal (base, "d"))
    kinds = TUSK_SCHEMA_KIND_RELATIONS | TUSK_SCHEMA_KIND_INDEX
            | TUSK_SCHEMA_KIND_SEQUENCE | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "dt"))
    kinds = TUSK_SCHEMA_KIND_TABLE | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "dv"))
    kinds = TUSK_SCHEMA_KIND_VIEW | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "dm"))
    kinds = TUSK_SCHEMA_KIND_MATVIEW | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "di"))
    kinds = TUSK_SCHEMA_KIND_INDEX | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "ds"))
    kinds = TUSK_SCHEMA_KIND_SEQUENCE | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "df"))
    kinds = TUSK_SCHEMA_KIND_FUNCTION | TUSK_SCHEMA_KIND_PROCEDURE
            | TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "dn"))
    kinds = TUSK_SCHEMA_KIND_SCHEMA;
  else if (g_str_equal (base, "dT"))
    kinds = TUSK_SCHEMA_KIND_ENUM | TUSK_SCHEMA_KIND_SCHEMA;
  if (kinds == 0)
    return;

  /* The argument as an SQL name: "shop.ord", "\"Mixed". */
  Lexed lx;
  lex (&lx, word, strlen (word), strlen (word));
  int n = (int)lx.tokens->len;
  g_autofree char *prefix = NULL;
  g_autofree char *qualifier = NULL;
  gboolean quoted = FALSE;
  if (n >= 1 && tok_is_name (&lx, n - 1)
      && tok (&lx, n - 1)->end == strlen (word))
    {
      prefix = ident_value (word, tok (&lx, n - 1));
      quoted = tok (&lx, n - 1)->kind == TOK_QIDENT;
      if (tok (&lx, n - 1)->kind == TOK_IDENT)
        {
          g_free (prefix);
          prefix = g_strndup (word + tok (&lx, n - 1)->start,
                              tok (&lx, n - 1)->end - tok (&lx, n - 1)->start);
        }
      n--;
    }
  else
    prefix = g_strdup ("");
  if (n >= 2 && tok_punct (&lx, n - 1, '.') && tok_is_name (&lx, n - 2))
    {
      qualifier = g_strndup (word + tok (&lx, n - 2)->start,
                             tok (&lx, n - 1)->end - tok (&lx, n - 2)->start);
      kinds &= ~(guint)TUSK_SCHEMA_KIND_SCHEMA;
    }
  g_array_unref (lx.tokens);
  g->prefix = prefix;
  g->quoted = quoted;
  g->qualifier = qualifier;
  g->bare_schemas = kinds == TUSK_SCHEMA_KIND_SCHEMA;
  add_objects (g, kinds);
  g->prefix = "";
  g->qualifier = NULL;
}

/* ------------------------------------------------------------------ */
/* Entry point                                                          */

/* Whether key words go in lower case: as the word typed, else as the
 * statement's last key word, else upper case. */
static gboolean
want_lower (const Lexed *lx, int stop, int before, const char *word,
            gsize word_len)
{
  for (gsize i = 0; i < word_len; i++)
    if (g_ascii_isalpha (word[i]))
      return g_ascii_islower (word[i]);
  for (int i = before - 1; i >= stop && i >= before - 64; i--)
    {
      const Token *t = tok (lx, i);
      if (t->kind != TOK_IDENT)
        continue;
      gsize n = t->end - t->start;
      const char *s = lx->text + t->start;
      if (word_in (s, n, statement_keywords) || word_in (s, n, clause_words)
          || word_in (s, n, reserved_words))
        return g_ascii_islower (s[0]);
    }
  return FALSE;
}

char **
tusk_complete (TuskSchemaSnapshot *snapshot, const char *buffer, gsize cursor,
               gsize *word_start)
{
  g_return_val_if_fail (buffer != NULL && word_start != NULL, NULL);
  gsize len = strlen (buffer);
  if (cursor > len)
    cursor = len;
  *word_start = cursor;

  Gen g = { .snapshot = snapshot, .prefix = "" };
  out_init (&g.out);

  /* 1. A backslash command on the cursor's line. */
  gsize line_start = cursor;
  while (line_start > 0 && buffer[line_start - 1] != '\n')
    line_start--;
  gsize first = line_start;
  while (first < cursor && (buffer[first] == ' ' || buffer[first] == '\t'))
    first++;
  if (first < cursor && buffer[first] == '\\')
    {
      complete_meta (&g, buffer + first, first, cursor, word_start);
      return out_finish (&g.out);
    }

  /* 2. Tokens of the statement around the cursor. */
  Lexed lx;
  lex (&lx, buffer, len, cursor);
  if (lx.cursor_in_literal)
    {
      g_array_unref (lx.tokens);
      return out_finish (&g.out);
    }
  int n = (int)lx.tokens->len;
  int at = 0; /* the first token ending after the cursor … */
  while (at < n && tok (&lx, at)->end < cursor)
    at++;
  int stop = 0, end = n; /* the statement: tokens [stop, end) */
  for (int i = 0; i < at; i++)
    if (tok_punct (&lx, i, ';') && tok (&lx, i)->end <= cursor)
      stop = i + 1;
  for (int i = at; i < n; i++)
    if (tok_punct (&lx, i, ';') && tok (&lx, i)->start >= cursor)
      {
        end = i;
        break;
      }

  /* The word: a name token that reaches the cursor. */
  int word = -1;
  if (at < n && tok (&lx, at)->start < cursor && tok (&lx, at)->end >= cursor)
    {
      const Token *t = tok (&lx, at);
      if (t->kind == TOK_IDENT || t->kind == TOK_QIDENT)
        word = at;
      else if (!(t->kind == TOK_PUNCT && lx.text[t->start] == '.'
                 && t->end == cursor))
        {
          /* inside a number, an operator or a parameter */
          if (t->kind != TOK_OP && t->kind != TOK_PUNCT)
            {
              g_array_unref (lx.tokens);
              return out_finish (&g.out);
            }
        }
    }
  int chain = word; /* the first token of "q.q.word" */
  if (word < 0)
    for (chain = at; chain < n && tok (&lx, chain)->start < cursor; chain++)
      ;
  int qualifiers = 0;
  gsize chain_start = word >= 0 ? tok (&lx, word)->start : cursor;
  while (qualifiers < 2 && chain - 2 >= stop && tok_punct (&lx, chain - 1, '.')
         && tok (&lx, chain - 1)->end == chain_start
         && tok_is_name (&lx, chain - 2)
         && tok (&lx, chain - 2)->end == tok (&lx, chain - 1)->start)
    {
      chain -= 2;
      chain_start = tok (&lx, chain)->start;
      qualifiers++;
    }
  *word_start = chain_start;

  g_autofree char *prefix = NULL;
  if (word >= 0)
    {
      const Token *t = tok (&lx, word);
      Token cut = *t;
      cut.end = cursor;
      if (t->kind == TOK_QIDENT)
        {
          cut.open = cursor < t->end || t->open;
          prefix = ident_value (buffer, &cut);
          g.quoted = TRUE;
        }
      else
        prefix = g_strndup (buffer + t->start, cursor - t->start);
    }
  else
    prefix = g_strdup ("");
  g.prefix = prefix;
  g_autofree char *qualifier
      = qualifiers > 0 ? g_strndup (buffer + chain_start,
                                    tok (&lx, chain + qualifiers * 2 - 1)->end
                                        - chain_start)
                       : NULL;
  g.lower = want_lower (&lx, stop, chain,
                        word >= 0 ? buffer + tok (&lx, word)->start : "",
                        word >= 0 ? cursor - tok (&lx, word)->start : 0);

  /* 3. Context. */
  GArray *refs = collect_refs (&lx, stop, end, snapshot);
  Ctx ctx = find_context (&lx, chain - 1, stop, refs);

  /* 4. Candidates. */
  if (qualifiers > 0)
    {
      /* alias.col, table.col, schema.table.col, schema.object */
      const TuskSchemaRelation *relation = NULL;
      g_autofree char *q1 = ident_value (buffer, tok (&lx, chain));
      if (qualifiers == 1)
        {
          for (guint i = 0; i < refs->len && relation == NULL; i++)
            {
              const Ref *r = &g_array_index (refs, Ref, i);
              if (r->relation != NULL
                  && g_str_equal (r->alias != NULL ? r->alias : r->name, q1))
                relation = r->relation;
            }
          if (relation == NULL && snapshot != NULL && ctx.kind != CTX_RELATION
              && ctx.kind != CTX_KINDS)
            relation = tusk_schema_snapshot_find_relation (snapshot, NULL, q1);
        }
      else if (snapshot != NULL)
        {
          g_autofree char *q2 = ident_value (buffer, tok (&lx, chain + 2));
          relation = tusk_schema_snapshot_find_relation (snapshot, q1, q2);
        }

      g.qualifier = qualifier;
      if (relation != NULL && snapshot != NULL)
        add_relation_columns (&g, relation);
      else if (qualifiers == 1)
        {
          switch (ctx.kind)
            {
              case CTX_RELATION:
                add_objects (&g, TUSK_SCHEMA_KIND_RELATIONS);
                break;
              case CTX_KINDS:
                add_objects (&g, ctx.kinds & ~(guint)TUSK_SCHEMA_KIND_SCHEMA);
                break;
              default:
                add_objects (&g, TUSK_SCHEMA_KIND_RELATIONS
                                     | TUSK_SCHEMA_KIND_FUNCTION);
                break;
            }
        }
    }
  else
    {
      switch (ctx.kind)
        {
          case CTX_NONE:
            break;
          case CTX_STATEMENT:
            add_keywords (&g, statement_keywords);
            break;
          case CTX_RELATION:
            add_objects (&g,
                         TUSK_SCHEMA_KIND_RELATIONS | TUSK_SCHEMA_KIND_SCHEMA);
            if (tok_is (&lx, chain - 1, "lock"))
              add_keywords (&g, (const char *const[]){ "TABLE", NULL });
            break;
          case CTX_KINDS:
            g.bare_schemas = ctx.kinds == TUSK_SCHEMA_KIND_SCHEMA;
            add_objects (&g, ctx.kinds | TUSK_SCHEMA_KIND_SCHEMA);
            break;
          case CTX_EXPRESSION:
            if (snapshot != NULL)
              add_scope_columns (&g, refs);
            /* Functions once a letter is typed: an empty word lists the
             * columns, not every function there is. */
            if (*g.prefix != '\0')
              add_functions (&g);
            if (ctx.with_subquery)
              add_keywords (&g, subquery_keywords);
            if (*g.prefix != '\0')
              add_keywords (&g, expression_keywords);
            break;
          case CTX_COLUMNS_OF:
            if (snapshot != NULL)
              add_relation_columns (&g, ctx.relation);
            break;
          case CTX_AFTER_REL:
            add_keywords (&g, relation_follow_keywords);
            break;
          case CTX_AFTER_EXPR:
            add_keywords (&g, expression_follow_keywords);
            break;
          case CTX_KEYWORDS:
            add_keywords (&g, ctx.keywords);
            break;
          case CTX_SUBQUERY:
            add_keywords (&g, subquery_keywords);
            break;
        }
    }

  g_array_unref (refs);
  g_array_unref (lx.tokens);
  return out_finish (&g.out);
}
