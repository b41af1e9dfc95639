/* tusk-repl.c: the interactive shell — lines read with libedit, fed to the
 * statement splitter, statements run with tusk_shell_run_sql() and
 * backslash commands with tusk_meta_run(), under psql's prompts.
 *
 * Design note.
 *
 * Reading.  libedit reads the terminal through read_char() below
 * (EL_GETCFN), which poll()s stdin and a self-pipe that the SIGINT,
 * SIGWINCH and SIGCONT handlers write to.  So a signal never interrupts
 * libedit half-way: Ctrl-C while a line is edited makes read_char() hand
 * libedit a newline with `interrupted` set, libedit ends the line as for
 * Enter (its display stays tidy), and the loop throws the line and the
 * statement in progress away and prompts afresh, as psql does.  The
 * handlers are installed for the whole session and re-armed before each
 * line; tusk_shell_run_sql() puts its own SIGINT watch in place while a
 * statement runs (Ctrl-C then cancels the statement).
 *
 * Statements.  Each line goes to a TuskSqlScanner; the pieces it completes
 * run in order.  The query buffer (what \e edits and \save saves) is the
 * text typed since the last complete statement, backslash-command lines
 * left out.  When a backslash command changes it (\e, \r), the scanner
 * starts over on the new text, so a statement \e left complete runs.
 *
 * History.  One libedit history entry per statement, typed over one line
 * or several (newlines kept inside the entry), and one per backslash
 * command; kept in {data_dir}/shell_history (mode 0600), rewritten through
 * a temporary file and rename() after each entry so that a crash loses
 * nothing and a reader never sees half a file.
 *
 * Completion.  Tab calls tusk_complete() on the query buffer plus the line
 * being edited, with the newest snapshot of the connection's schema cache
 * (never waiting for one: while the first load runs, only key words and
 * backslash commands complete).  A stale cache is reloaded in the
 * background, at most once every few seconds.
 *
 * Thread rules: main thread only, like the TuskShell it drives.
 */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-repl.h"

#include <errno.h>
#include <fcntl.h>
#include <histedit.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "tusk-complete.h"
#include "tusk-meta.h"

#define HISTORY_SIZE      2000
#define LIST_MAX          100     /* candidates shown on one Tab */
#define RELOAD_EVERY_USEC 3000000 /* a stale schema: one reload per 3 s */

typedef struct
{
  TuskShell *shell;
  EditLine *el;
  History *history;
  char *history_path;

  TuskSqlScanner *scanner;
  guint generation; /* counts scanner_restart() calls */
  gsize fed;        /* bytes fed to the scanner since it was created */
  GString *query;   /* the query buffer */
  GString *entry;   /* the history entry being gathered */
  gboolean quit;

  char *prompt;         /* what prompt_cb() shows */
  gboolean interrupted; /* Ctrl-C ended the line being read */

  TuskSchemaSnapshot *snapshot; /* nullable: the newest one seen */
  char *snapshot_id;            /* the connection it belongs to */
  gint64 last_reload;           /* when we last asked for a reload */
  gint64 reload_from;           /* the cached_at of the snapshot then */
} Repl;

/* ---- signals ---------------------------------------------------------- */

static int signal_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_sigint, got_sigwinch, got_sigcont;

static void
on_signal (int signum)
{
  int saved = errno;
  if (signum == SIGINT)
    got_sigint = 1;
  else if (signum == SIGWINCH)
    got_sigwinch = 1;
  else if (signum == SIGCONT)
    got_sigcont = 1;
  if (signal_pipe[1] >= 0)
    {
      char c = 0;
      ssize_t n = write (signal_pipe[1], &c, 1);
      (void)n; /* a full pipe already wakes the reader */
    }
  errno = saved;
}

static const int handled_signals[] = { SIGINT, SIGWINCH, SIGCONT };
static struct sigaction saved_actions[G_N_ELEMENTS (handled_signals)];

/* Puts our handlers back in place without touching the saved ones:
 * whatever ran since (a statement's SIGINT watch, an editor) may have left
 * another disposition behind. */
static void
signals_arm (void)
{
  struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
  sigemptyset (&sa.sa_mask);
  for (guint i = 0; i < G_N_ELEMENTS (handled_signals); i++)
    sigaction (handled_signals[i], &sa, NULL);
}

static gboolean
signals_install (GError **error)
{
  if (!g_unix_open_pipe (signal_pipe, FD_CLOEXEC, error)
      || !g_unix_set_fd_nonblocking (signal_pipe[0], TRUE, error)
      || !g_unix_set_fd_nonblocking (signal_pipe[1], TRUE, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (handled_signals); i++)
    sigaction (handled_signals[i], NULL, &saved_actions[i]);
  signals_arm ();
  return TRUE;
}

static void
signals_restore (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (handled_signals); i++)
    sigaction (handled_signals[i], &saved_actions[i], NULL);
  for (int i = 0; i < 2; i++)
    if (signal_pipe[i] >= 0)
      {
        close (signal_pipe[i]);
        signal_pipe[i] = -1;
      }
}

static void
signals_drain (void)
{
  char buf[64];
  while (read (signal_pipe[0], buf, sizeof buf) > 0)
    ;
}

/* ---- reading ------------------------------------------------------------ */

/* libedit's character reader (EL_GETCFN): one character from stdin,
 * decoded in the locale's encoding; Ctrl-C gives a newline with
 * repl->interrupted set.  Returns 1, 0 at end of input, -1 on error. */
static int
read_char (EditLine *el, wchar_t *wc)
{
  Repl *repl = NULL;
  el_get (el, EL_CLIENTDATA, &repl);
  char buf[MB_LEN_MAX];
  size_t n = 0;

  for (;;)
    {
      struct pollfd fds[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
                               { .fd = signal_pipe[0], .events = POLLIN } };
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (fds[1].revents & POLLIN)
        {
          signals_drain ();
          if (got_sigcont)
            {
              /* The terminal may have been reset while we were stopped. */
              got_sigcont = 0;
              el_set (el, EL_PREP_TERM, 0);
              el_set (el, EL_PREP_TERM, 1);
              el_set (el, EL_REFRESH);
            }
          if (got_sigwinch)
            {
              got_sigwinch = 0;
              el_resize (el);
              el_set (el, EL_REFRESH);
            }
          if (got_sigint)
            {
              got_sigint = 0;
              repl->interrupted = TRUE;
              *wc = L'\n';
              return 1;
            }
        }
      if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;

      ssize_t got = read (STDIN_FILENO, buf + n, 1);
      if (got < 0)
        {
          if (errno == EINTR || errno == EAGAIN)
            continue;
          return -1;
        }
      if (got == 0)
        {
          *wc = L'\0';
          return 0;
        }
      n++;
      mbstate_t state;
      memset (&state, 0, sizeof state);
      size_t r = mbrtowc (wc, buf, n, &state);
      if (r == (size_t)-2 && n < sizeof buf)
        continue; /* more bytes of this character to come */
      if (r == (size_t)-1 || r == (size_t)-2)
        {
          n = 0; /* not a character: dropped, as libedit does */
          continue;
        }
      return 1;
    }
}

/* ---- prompt ------------------------------------------------------------- */

static char *
prompt_cb (EditLine *el)
{
  Repl *repl = NULL;
  el_get (el, EL_CLIENTDATA, &repl);
  return repl->prompt;
}

/* Whether the prompt may be colored: not with NO_COLOR (no-color.org) nor
 * on a dumb terminal. */
static gboolean
color_allowed (void)
{
  const char *no_color = g_getenv ("NO_COLOR");
  const char *term = g_getenv ("TERM");
  return (no_color == NULL || *no_color == '\0')
         && !(term != NULL && g_str_equal (term, "dumb"));
}

/* Parses "#RRGGBB"; FALSE for anything else. */
static gboolean
parse_color (const char *text, guint rgb[3])
{
  if (text == NULL || strlen (text) != 7 || text[0] != '#')
    return FALSE;
  for (int i = 0; i < 3; i++)
    {
      int hi = g_ascii_xdigit_value (text[1 + 2 * i]);
      int lo = g_ascii_xdigit_value (text[2 + 2 * i]);
      if (hi < 0 || lo < 0)
        return FALSE;
      rgb[i] = (guint)(hi * 16 + lo);
    }
  return TRUE;
}

/* psql's default PROMPT1 and PROMPT2, "%/%R%x%# ", with '>' always (psql
 * shows '#' to a superuser): the connection's name, then '=' (or, inside a
 * statement, '-', '\'', '"', '$', '*', '('), then '*' in a transaction, '!'
 * in a failed one, '?' when the connection is gone, then "> ".  The name
 * is in the connection's color, its control characters shown as '?'; \1
 * brackets the escapes that take no room (EL_PROMPT_ESC). */
static void
update_prompt (Repl *repl)
{
  TuskShell *shell = repl->shell;
  TuskSqlContinuation cont = tusk_sql_scanner_get_continuation (repl->scanner);
  GString *p = g_string_new (NULL);
  const char *name = tusk_shell_get_display_name (shell);
  guint rgb[3];

  if (cont == TUSK_SQL_CONTINUATION_COPY_DATA)
    {
      g_free (repl->prompt);
      repl->prompt = g_strdup (">> ");
      g_string_free (p, TRUE);
      return;
    }
  gboolean colored = shell->config != NULL
                     && parse_color (shell->config->color, rgb)
                     && color_allowed ();
  if (colored)
    g_string_append_printf (p, "\1\033[1;38;2;%u;%u;%um\1", rgb[0], rgb[1],
                            rgb[2]);
  gsize name_at = p->len;
  g_string_append (p, *name ? name : "tusk");
  for (gsize i = name_at; i < p->len; i++)
    if ((guchar)p->str[i] < 0x20 || p->str[i] == 0x7f)
      p->str[i] = '?';
  if (colored)
    g_string_append (p, "\1\033[0m\1");
  g_string_append (p, tusk_sql_continuation_symbol (cont));
  switch (shell->config == NULL ? TUSK_TRANSACTION_UNKNOWN
                                : shell->transaction_status)
    {
      case TUSK_TRANSACTION_IDLE:
        break;
      case TUSK_TRANSACTION_IN_TRANSACTION:
        g_string_append_c (p, '*');
        break;
      case TUSK_TRANSACTION_FAILED:
        g_string_append_c (p, '!');
        break;
      case TUSK_TRANSACTION_UNKNOWN:
        g_string_append_c (p, '?');
        break;
    }
  g_string_append (p, "> ");
  g_free (repl->prompt);
  repl->prompt = g_string_free (p, FALSE);
}

/* ---- history ------------------------------------------------------------ */

/* Writes the history to its file: a temporary file of mode 0600 beside it,
 * then rename().  Failures are logged and otherwise ignored: losing
 * history never stops the shell. */
static void
history_write (Repl *repl)
{
  HistEvent ev;
  g_autofree char *tmp = g_strconcat (repl->history_path, ".XXXXXX", NULL);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      tusk_warn ("history: could not create %s: %s", tmp, g_strerror (errno));
      return;
    }
  FILE *fp = fdopen (fd, "w");
  if (fp == NULL)
    {
      close (fd);
      g_unlink (tmp);
      return;
    }
  int saved = history (repl->history, &ev, H_SAVE_FP, fp);
  gboolean ok = saved >= 0 && fflush (fp) == 0;
  ok = fclose (fp) == 0 && ok;
  if (!ok || g_rename (tmp, repl->history_path) != 0)
    {
      tusk_warn ("history: could not write %s: %s", repl->history_path,
                 g_strerror (errno));
      g_unlink (tmp);
    }
}

/* Adds the gathered entry (trailing white space trimmed) to the history,
 * passwords hidden (tusk_history_redact_sql(): `ALTER ROLE … PASSWORD
 * '***'`, `\c postgresql://me:***@db`): the file is on disk, and what
 * the memory keeps is what Up recalls and what the file gets next. */
static void
history_flush_entry (Repl *repl)
{
  g_autofree char *text = g_strdup (repl->entry->str);
  g_strchomp (text);
  g_string_truncate (repl->entry, 0);
  const char *p = text;
  while (g_ascii_isspace (*p))
    p++;
  if (*p == '\0')
    return;
  g_autofree char *redacted = tusk_history_redact_sql (p);
  HistEvent ev;
  history (repl->history, &ev, H_ENTER, redacted);
  history_write (repl);
}

/* ---- completion --------------------------------------------------------- */

/* Returns (transfer none) the newest snapshot of the connection's schema,
 * or NULL; starts a background reload when the cache is stale (after DDL,
 * \refresh, or the TTL) unless one we started may still be running: one
 * whose result has not landed yet and that is younger than
 * RELOAD_EVERY_USEC.  Never blocks. */
static TuskSchemaSnapshot *
current_snapshot (Repl *repl)
{
  TuskShell *shell = repl->shell;
  if (shell->config == NULL || shell->config->id == NULL)
    return NULL;
  if (g_strcmp0 (repl->snapshot_id, shell->config->id) != 0)
    {
      g_clear_pointer (&repl->snapshot, tusk_schema_snapshot_unref);
      g_free (repl->snapshot_id);
      repl->snapshot_id = g_strdup (shell->config->id);
    }
  g_autoptr (TuskSchemaCache) cache
      = tusk_state_dup_schema_cache (shell->state, shell->config->id);
  if (cache == NULL)
    return repl->snapshot;
  TuskSchemaSnapshot *newest = tusk_schema_cache_dup_snapshot (cache);
  if (newest != NULL)
    {
      tusk_schema_snapshot_unref (repl->snapshot);
      repl->snapshot = newest;
    }
  gint64 now = g_get_monotonic_time ();
  gint64 current = repl->snapshot != NULL
                       ? tusk_schema_snapshot_get_cached_at (repl->snapshot)
                       : 0;
  if (tusk_schema_cache_is_stale (cache)
      && (current != repl->reload_from
          || now - repl->last_reload > RELOAD_EVERY_USEC))
    {
      repl->last_reload = now;
      repl->reload_from = current;
      tusk_schema_cache_ensure_async (
          cache, tusk_state_get_runtime (shell->state), NULL, NULL, NULL);
    }
  return repl->snapshot;
}

/* How many columns @s takes on the terminal. */
static gsize
display_width (const char *s)
{
  if (!g_utf8_validate (s, -1, NULL))
    return strlen (s);
  gsize width = 0;
  for (const char *p = s; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      width += g_unichar_iswide (c) ? 2 : g_unichar_iszerowidth (c) ? 0 : 1;
    }
  return width;
}

/* Prints @cands in columns across the terminal, at most LIST_MAX. */
static void
print_candidates (EditLine *el, char **cands)
{
  int term_cols = 80;
  if (el_get (el, EL_GETTC, "co", &term_cols, NULL) != 0 || term_cols <= 0)
    term_cols = 80;
  guint n = g_strv_length (cands);
  guint shown = MIN (n, LIST_MAX);
  gsize width = 1;
  for (guint i = 0; i < shown; i++)
    width = MAX (width, display_width (cands[i]));
  width += 2;
  guint cols = MAX (1, (guint)term_cols / (guint)width);
  guint rows = (shown + cols - 1) / cols;

  fputc ('\n', stdout);
  for (guint r = 0; r < rows; r++)
    {
      for (guint c = 0; c < cols; c++)
        {
          guint i = c * rows + r;
          if (i >= shown)
            break;
          fputs (cands[i], stdout);
          if (c + 1 < cols && (c + 1) * rows + r < shown)
            for (gsize pad = display_width (cands[i]); pad < width; pad++)
              fputc (' ', stdout);
        }
      fputc ('\n', stdout);
    }
  if (shown < n)
    printf ("… and %u more%s\n", n - shown,
            n >= 1000 ? " (at least): type more letters" : "");
  fflush (stdout);
}

/* The longest common prefix of @cands, cut back to a whole character. */
static gsize
common_prefix (char **cands)
{
  gsize len = strlen (cands[0]);
  for (guint i = 1; cands[i] != NULL; i++)
    {
      gsize j = 0;
      while (j < len && cands[i][j] == cands[0][j])
        j++;
      len = j;
    }
  while (len > 0 && ((guchar)cands[0][len] & 0xC0) == 0x80)
    len--;
  return len;
}

static gsize
char_count (const char *s, gsize bytes)
{
  return g_utf8_validate (s, (gssize)bytes, NULL)
             ? (gsize)g_utf8_strlen (s, (gssize)bytes)
             : bytes;
}

/* Tab: replaces the word before the cursor with the only candidate (and a
 * space), or with the candidates' common prefix and lists them. */
static unsigned char
complete_cb (EditLine *el, int ch)
{
  (void)ch;
  Repl *repl = NULL;
  el_get (el, EL_CLIENTDATA, &repl);
  const LineInfo *li = el_line (el);
  gsize line_len = (gsize)(li->lastchar - li->buffer);
  gsize cursor_in_line = (gsize)(li->cursor - li->buffer);

  g_autoptr (GString) buffer = g_string_new (repl->query->str);
  gsize base = buffer->len;
  g_string_append_len (buffer, li->buffer, (gssize)line_len);
  gsize cursor = base + cursor_in_line;

  gsize word_start = cursor;
  g_auto (GStrv) cands = tusk_complete (current_snapshot (repl), buffer->str,
                                        cursor, &word_start);
  if (word_start < base)
    word_start = base;
  if (cands[0] == NULL)
    return CC_ERROR;

  const char *word = buffer->str + word_start;
  gsize word_len = cursor - word_start;
  gsize chars = char_count (word, word_len);
  if (cands[1] == NULL)
    {
      const char *c = cands[0];
      gsize len = strlen (c);
      gboolean open_ended = len > 0 && (c[len - 1] == '.' || c[len - 1] == '/');
      gboolean space_next = cursor_in_line < line_len
                            && g_ascii_isspace (li->buffer[cursor_in_line]);
      el_deletestr (el, (int)chars);
      g_autofree char *insert
          = g_strconcat (c, open_ended || space_next ? "" : " ", NULL);
      el_insertstr (el, insert);
      return CC_REFRESH;
    }

  gsize prefix = common_prefix (cands);
  if (prefix > word_len)
    {
      g_autofree char *insert = g_strndup (cands[0], prefix);
      el_deletestr (el, (int)chars);
      el_insertstr (el, insert);
    }
  print_candidates (el, cands);
  return CC_REDISPLAY;
}

/* ---- statements --------------------------------------------------------- */

static void
scanner_restart (Repl *repl)
{
  tusk_sql_scanner_free (repl->scanner);
  repl->scanner = tusk_sql_scanner_new ();
  repl->generation++;
  repl->fed = 0;
}

static gboolean
is_blank (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isspace (*s))
      return FALSE;
  return TRUE;
}

static void feed_text (Repl *repl, const char *text, int depth);

/* Runs one backslash command; the query buffer it may change (\e, \r)
 * restarts the scanner on its new text. */
static void
run_meta (Repl *repl, const TuskSqlPiece *piece, int depth)
{
  /* \r is the REPL's own: the splitter already dropped the statement. */
  if (g_str_equal (piece->command, "r")
      || g_str_equal (piece->command, "reset"))
    {
      g_string_truncate (repl->query, 0);
      scanner_restart (repl);
      printf ("Query buffer reset (cleared).\n");
      fflush (stdout);
      return;
    }
  g_autofree char *before = g_strdup (repl->query->str);
  TuskMetaStatus status = tusk_meta_run (repl->shell, piece->text, repl->query);
  if (status == TUSK_META_QUIT)
    {
      repl->quit = TRUE;
      return;
    }
  if (!g_str_equal (before, repl->query->str) && depth < 4)
    {
      g_autofree char *text = g_strdup (repl->query->str);
      g_string_truncate (repl->query, 0);
      scanner_restart (repl);
      if (*text != '\0')
        {
          /* What \e left is typed in afresh: a complete statement runs, the
           * rest waits; it is what the history keeps. */
          g_string_assign (repl->entry, text);
          g_autofree char *line = g_str_has_suffix (text, "\n")
                                      ? g_strdup (text)
                                      : g_strconcat (text, "\n", NULL);
          feed_text (repl, line, depth + 1);
        }
    }
}

/* Feeds @text (whole lines) to the scanner and runs what it completes. */
static void
feed_text (Repl *repl, const char *text, int depth)
{
  gsize base = repl->fed;
  gsize len = strlen (text);
  repl->fed += len;

  /* A backslash command on a line of its own (not inside a quote or a
   * comment) is not part of the query buffer. */
  const char *first = text;
  while (*first == ' ' || *first == '\t')
    first++;
  TuskSqlContinuation cont = tusk_sql_scanner_get_continuation (repl->scanner);
  gboolean command_line = *first == '\\'
                          && (cont == TUSK_SQL_CONTINUATION_NONE
                              || cont == TUSK_SQL_CONTINUATION_STATEMENT
                              || cont == TUSK_SQL_CONTINUATION_PAREN);
  if (!command_line)
    g_string_append (repl->query, text);

  g_autoptr (GPtrArray) pieces
      = tusk_sql_scanner_feed (repl->scanner, text, (gssize)len);
  guint generation = repl->generation;
  for (guint i = 0; i < pieces->len && !repl->quit; i++)
    {
      const TuskSqlPiece *piece = pieces->pdata[i];
      switch (piece->kind)
        {
          case TUSK_SQL_STATEMENT:
            /* The query buffer is what follows the statement on its line. */
            if (piece->end_offset >= base && piece->end_offset <= base + len)
              g_string_assign (repl->query, text + (piece->end_offset - base));
            else
              g_string_truncate (repl->query, 0);
            if (is_blank (repl->query->str))
              g_string_truncate (repl->query, 0);
            if (!piece->empty)
              tusk_shell_run_sql (repl->shell, piece->text, NULL);
            /* libtusk sends no COPY data: do not wait for it. */
            if (tusk_sql_scanner_get_continuation (repl->scanner)
                == TUSK_SQL_CONTINUATION_COPY_DATA)
              tusk_sql_scanner_reset (repl->scanner);
            break;
          case TUSK_SQL_META:
            run_meta (repl, piece, depth);
            break;
          case TUSK_SQL_COPY_DATA:
            break;
        }
      if (repl->generation != generation)
        break; /* a backslash command replaced the input (\e) */
    }
  if (is_blank (repl->query->str))
    g_string_truncate (repl->query, 0);
}

/* One line (or several, recalled from the history) from the terminal. */
static void
handle_input (Repl *repl, const char *line)
{
  g_autofree char *text = g_str_has_suffix (line, "\n")
                              ? g_strdup (line)
                              : g_strconcat (line, "\n", NULL);
  g_string_append (repl->entry, text);
  feed_text (repl, text, 0);
  current_snapshot (repl); /* after DDL: reload before the next Tab */
  if (tusk_sql_scanner_get_continuation (repl->scanner)
          == TUSK_SQL_CONTINUATION_NONE
      && repl->query->len == 0)
    {
      history_flush_entry (repl);
      scanner_restart (repl); /* nothing pending: offsets start over */
    }
}

/* Forgets the statement in progress (Ctrl-C). */
static void
discard_input (Repl *repl)
{
  g_string_truncate (repl->query, 0);
  g_string_truncate (repl->entry, 0);
  scanner_restart (repl);
}

/* ---- welcome ------------------------------------------------------------ */

static void
print_welcome (TuskShell *shell)
{
  g_autofree char *server = NULL;
  if (shell->config != NULL)
    {
      g_autoptr (GError) error = NULL;
      TuskQueryResult *result = tusk_shell_query (
          shell, "SELECT current_setting('server_version')", &error);
      if (result != NULL && result->n_rows > 0)
        {
          const char *v = tusk_query_result_get_value (result, 0, 0);
          if (v != NULL)
            server = g_strndup (v, strcspn (v, " "));
        }
      g_clear_pointer (&result, tusk_query_result_free);
    }
  if (server != NULL)
    printf ("tusk %s (server %s)\n", TUSK_VERSION_STRING, server);
  else
    printf ("tusk %s\n", TUSK_VERSION_STRING);
  printf ("Type \"\\?\" for help.\n\n");
  fflush (stdout);
}

/* ---- the loop ----------------------------------------------------------- */

int
tusk_repl_run (TuskShell *shell)
{
  g_return_val_if_fail (shell != NULL, TUSK_EXIT_FAILED);

  /* Without a terminal there is nothing to edit: run the input as a
   * script, as psql does. */
  if (!isatty (STDIN_FILENO) || !isatty (STDOUT_FILENO))
    return tusk_shell_run_stream (shell, stdin, "<stdin>") ? TUSK_EXIT_OK
                                                           : TUSK_EXIT_FAILED;

  /* libedit decodes keys in the locale's encoding. */
  setlocale (LC_CTYPE, "");

  g_autoptr (GError) error = NULL;
  if (!signals_install (&error))
    {
      fprintf (stderr, "tusk: cannot watch for Ctrl-C: %s\n", error->message);
      return TUSK_EXIT_FAILED;
    }

  Repl repl = {
    .shell = shell,
    .scanner = tusk_sql_scanner_new (),
    .query = g_string_new (NULL),
    .entry = g_string_new (NULL),
    .last_reload = g_get_monotonic_time (), /* the first load is running */
  };
  repl.history_path = g_build_filename (tusk_state_get_data_dir (shell->state),
                                        "shell_history", NULL);

  HistEvent ev;
  repl.history = history_init ();
  history (repl.history, &ev, H_SETSIZE, HISTORY_SIZE);
  history (repl.history, &ev, H_SETUNIQUE, 1);
  if (g_file_test (repl.history_path, G_FILE_TEST_EXISTS)
      && history (repl.history, &ev, H_LOAD, repl.history_path) < 0)
    fprintf (stderr, "tusk: could not read the history in %s\n",
             repl.history_path);

  print_welcome (shell);

  repl.el = el_init ("tusk", stdin, stdout, stderr);
  el_set (repl.el, EL_CLIENTDATA, &repl);
  el_set (repl.el, EL_EDITOR, "emacs");
  el_set (repl.el, EL_HIST, history, repl.history);
  el_set (repl.el, EL_PROMPT_ESC, prompt_cb, '\1');
  el_set (repl.el, EL_GETCFN, read_char);
  /* el_wset: the narrow el_set() copies these strings and never frees
   * them. */
  el_wset (repl.el, EL_ADDFN, L"tusk-complete",
           L"Complete the word at the cursor", complete_cb);
  el_set (repl.el, EL_BIND, "^I", "tusk-complete", NULL);
  el_source (repl.el, NULL); /* ~/.editrc */

  while (!repl.quit)
    {
      signals_arm ();
      signals_drain ();
      got_sigint = 0;
      repl.interrupted = FALSE;
      update_prompt (&repl);
      /* Completion's schema loads in the background while the user types
       * (first after connecting, again after \c or DDL). */
      current_snapshot (&repl);

      int count = 0;
      const char *line = el_gets (repl.el, &count);
      if (repl.interrupted)
        {
          discard_input (&repl);
          continue;
        }
      if (line == NULL)
        {
          if (count < 0 && errno == EINTR)
            continue;
          /* Ctrl-D on an empty line, or the end of input: as \q. */
          printf ("\\q\n");
          fflush (stdout);
          break;
        }
      handle_input (&repl, line);
    }

  el_end (repl.el);
  history_end (repl.history);
  signals_restore ();
  tusk_schema_snapshot_unref (repl.snapshot);
  g_free (repl.snapshot_id);
  tusk_sql_scanner_free (repl.scanner);
  g_string_free (repl.query, TRUE);
  g_string_free (repl.entry, TRUE);
  g_free (repl.prompt);
  g_free (repl.history_path);
  return TUSK_EXIT_OK;
}
