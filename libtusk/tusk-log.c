/* tusk-log.c: the log filter, the queue, the writer thread that writes
 * every line to the console and the daily file, and the password redactor.
 *
 * Design note.
 *
 * States (changed only by tusk_log_init() and tusk_log_shutdown(), on one
 * thread):
 *   STOPPED  no writer thread; `accepting` is false.  A line is formatted and
 *            written to the console by the thread that logs it.
 *   RUNNING  the writer thread runs; `accepting` is true.  Logging threads
 *            format the message, stamp it and append it to the queue; the
 *            writer takes the whole queue at once, writes it and wakes the
 *            flushers.  init enters it; init leaves STOPPED again (console
 *            only) if the thread cannot be created.
 *   DRAINING inside tusk_log_shutdown(): `accepting` is false, `stopping` is
 *            true, the writer empties the queue and exits; shutdown joins it
 *            and closes the file: STOPPED.
 *
 * Invariants:
 *   1. While a writer thread exists only it touches `w` (the file, its date
 *      and the buffers); init and shutdown touch `w` only when none exists.
 *   2. written_seq <= enqueued_seq, and every record numbered up to
 *      written_seq has been written to both sinks (or dropped by a failed
 *      sink).
 *   3. `pending` is the length of the queue, never above
 *      TUSK_LOG_MAX_PENDING; lines beyond it are counted in `dropped`.
 *   4. file_path names the open file while there is one (RUNNING, w.fd >=
 *      0) and is NULL otherwise — that is what tusk_log_file_active()
 *      reports.  A file that failed stays closed until the next init: one
 *      warning, then console only.
 *   5. A call site's cache (see tusk_log_site_check()) holds the generation
 *      of the filter it was computed from; every filter change bumps the
 *      generation, so a stale cache is recomputed on its next use.
 *
 * Locks: filter_lock, queue_lock and spare_lock are never held together.
 * The test clock is called with queue_lock held, so that stamps follow queue
 * order.  They are pthread locks, not GMutex/GCond: GLib's are futexes in an
 * uninstrumented library, invisible to ThreadSanitizer, and every record
 * crosses from a logging thread to the writer under queue_lock.
 *
 * Cost on the caller's thread (bench/bench-log.c): a disabled macro call is
 * a function call and two loads; an enabled one is a vsnprintf() into a
 * stack buffer, a recycled record, a clock read and one short lock.  The
 * writer is woken only when it sleeps, and then lets a burst gather for
 * BATCH_WINDOW_USEC.
 */
#define G_LOG_DOMAIN "tusk-log"

#include "tusk-log-private.h"
#include "tusk-config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib/gstdio.h>

#if TUSK_DEBUG_BUILD
#define DEFAULT_DIRECTIVES "debug,tusk=trace,GLib=info"
#define DEFAULT_LEVEL      TUSK_LOG_DEBUG
#else
#define DEFAULT_DIRECTIVES "info"
#define DEFAULT_LEVEL      TUSK_LOG_INFO
#endif

/* A threshold is a level + 1: a line passes when level < threshold, and 0
 * means off. */
#define THRESHOLD(level) ((int)(level) + 1)
#define THRESHOLD_OFF    0
#define THRESHOLD_ALL    THRESHOLD (TUSK_LOG_TRACE)

#define MASK "********"

/* After a wake-up the writer lets lines gather this long before it writes,
 * so that a burst costs its callers one wake-up, not one each.  Well below
 * the 100 ms the console and the file may lag (SC-007). */
#define BATCH_WINDOW_USEC 1000

/* Buffered output is written out when it grows past this. */
#define BUFFER_LIMIT (64 * 1024)

/* ---- filter ------------------------------------------------------------ */

typedef struct
{
  char *module;
  int threshold;
} Directive;

/* filter_lock protects directives, default_threshold and filter_ready.
 * filter_generation and max_threshold are written with it held and read
 * atomically without it. */
static pthread_mutex_t filter_lock = PTHREAD_MUTEX_INITIALIZER;
static GArray *directives; /* of Directive, in the order given */
static int default_threshold = THRESHOLD (DEFAULT_LEVEL);
static gboolean filter_ready;     /* the built-in defaults were applied */
static int filter_generation = 1; /* 1 ..= 0x0fffffff; site caches start 0 */
static int max_threshold = THRESHOLD_ALL; /* of default and directives */

static void
directive_clear (gpointer data)
{
  Directive *d = data;
  g_free (d->module);
}

static int
parse_level (const char *text)
{
  static const char *const names[]
      = { "error", "warn", "info", "debug", "trace" };

  if (g_ascii_strcasecmp (text, "off") == 0)
    return THRESHOLD_OFF;
  if (g_ascii_strcasecmp (text, "warning") == 0)
    return THRESHOLD (TUSK_LOG_WARN);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (text, names[i]) == 0)
      return THRESHOLD (i);
  return -1;
}

/* The directive is quoted as given, made valid UTF-8 (TUSK_LOG may hold
 * any bytes) so that the warning itself can be logged. */
static void
add_problem (GPtrArray *problems, const char *source, const char *directive,
             const char *reason)
{
  g_autofree char *valid = g_utf8_make_valid (directive, -1);
  g_ptr_array_add (problems,
                   g_strdup_printf ("%s: ignoring directive \"%s\": %s", source,
                                    valid, reason));
}

/* Parses @text into a new array; *default_out starts at the build's default
 * level and takes the last bare level.  Rejected directives are described in
 * @problems. */
static GArray *
parse_directives (const char *text, const char *source, int *default_out,
                  GPtrArray *problems)
{
  GArray *parsed = g_array_new (FALSE, FALSE, sizeof (Directive));
  g_array_set_clear_func (parsed, directive_clear);
  *default_out = THRESHOLD (DEFAULT_LEVEL);
  if (text == NULL)
    return parsed;

  g_auto (GStrv) items = g_strsplit (text, ",", -1);
  for (char **item = items; *item != NULL; item++)
    {
      char *directive = g_strstrip (*item);
      if (*directive == '\0')
        continue; /* "a,,b" and a trailing comma are harmless */

      char *eq = strchr (directive, '=');
      if (eq == NULL)
        {
          int threshold = parse_level (directive);
          if (threshold < 0)
            add_problem (problems, source, directive,
                         "unknown level (use off, error, warn, info, debug "
                         "or trace, or module=level)");
          else
            *default_out = threshold;
          continue;
        }

      g_autofree char *module
          = g_strstrip (g_strndup (directive, eq - directive));
      g_autofree char *level = g_strstrip (g_strdup (eq + 1));
      int threshold = parse_level (level);
      if (*module == '\0')
        add_problem (problems, source, directive, "no module before \"=\"");
      else if (*level == '\0')
        add_problem (problems, source, directive, "no level after \"=\"");
      else if (threshold < 0)
        add_problem (problems, source, directive,
                     "unknown level (use off, error, warn, info, debug or "
                     "trace)");
      else
        {
          Directive d = { g_steal_pointer (&module), threshold };
          g_array_append_val (parsed, d);
        }
    }
  return parsed;
}

/* Replaces the filter; takes ownership of @parsed.  filter_lock held. */
static void
install_filter_locked (GArray *parsed, int default_level)
{
  int max = default_level;
  for (guint i = 0; i < parsed->len; i++)
    max = MAX (max, g_array_index (parsed, Directive, i).threshold);

  g_clear_pointer (&directives, g_array_unref);
  directives = parsed;
  default_threshold = default_level;
  filter_ready = TRUE;
  g_atomic_int_set (&max_threshold, max);
  g_atomic_int_set (&filter_generation, filter_generation % 0x0fffffff + 1);
}

static void
ensure_filter_locked (void)
{
  if (filter_ready)
    return;
  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  int def;
  GArray *parsed
      = parse_directives (DEFAULT_DIRECTIVES, "defaults", &def, problems);
  g_assert (problems->len == 0);
  install_filter_locked (parsed, def);
}

/* Whether @prefix names @name or a domain below it ("tusk" names "tusk" and
 * "tusk-pool", not "tuskfoo"). */
static gboolean
names_domain (const char *prefix, gsize prefix_len, const char *name)
{
  return g_ascii_strncasecmp (name, prefix, prefix_len) == 0
         && (name[prefix_len] == '\0' || name[prefix_len] == '-');
}

/* How much of @domain @module covers, or -1 if it does not match.  A short
 * name ("pool") counts as its full name ("tusk-pool"). */
static int
match_length (const char *module, const char *domain)
{
  gsize len = strlen (module);
  if (names_domain (module, len, domain))
    return (int)len;
  if (g_str_has_prefix (domain, "tusk-")
      && names_domain (module, len, domain + strlen ("tusk-")))
    return (int)(len + strlen ("tusk-"));
  return -1;
}

/* The threshold of @domain: the most specific matching directive's, the
 * later one between equals, else the default.  filter_lock held. */
static int
resolve_locked (const char *domain)
{
  int best = -1;
  int threshold = default_threshold;
  for (guint i = 0; i < directives->len; i++)
    {
      const Directive *d = &g_array_index (directives, Directive, i);
      int len = match_length (d->module, domain);
      if (len >= 0 && len >= best)
        {
          best = len;
          threshold = d->threshold;
        }
    }
  return threshold;
}

/* The domain of lines logged with a NULL domain: the program's name. */
static const char *
program_domain (void)
{
  const char *name = g_get_prgname ();
  if (name == NULL)
    return "main";
  const char *slash = strrchr (name, '/');
  return slash != NULL && slash[1] != '\0' ? slash + 1 : name;
}

static int
domain_threshold (const char *domain, int *generation)
{
  if (domain == NULL)
    domain = program_domain ();
  pthread_mutex_lock (&filter_lock);
  ensure_filter_locked ();
  int threshold = resolve_locked (domain);
  if (generation != NULL)
    *generation = filter_generation;
  pthread_mutex_unlock (&filter_lock);
  return threshold;
}

gboolean
tusk_log_site_check (int *site, const char *domain, TuskLogLevel level)
{
  int cached = g_atomic_int_get (site);
  if (G_LIKELY ((cached >> 3) == g_atomic_int_get (&filter_generation)))
    return (int)level < (cached & 7);

  int generation;
  int threshold = domain_threshold (domain, &generation);
  g_atomic_int_set (site, (generation << 3) | threshold);
  return (int)level < threshold;
}

gboolean
tusk_log_enabled (TuskLogLevel level, const char *domain)
{
  g_return_val_if_fail ((guint)level <= TUSK_LOG_TRACE, FALSE);

  if ((int)level >= g_atomic_int_get (&max_threshold))
    return FALSE;
  return (int)level < domain_threshold (domain, NULL);
}

static gboolean
apply_filter (const char *text, const char *source, GPtrArray *problems)
{
  guint before = problems->len;
  int def;
  GArray *parsed = parse_directives (text != NULL ? text : DEFAULT_DIRECTIVES,
                                     source, &def, problems);
  pthread_mutex_lock (&filter_lock);
  install_filter_locked (parsed, def);
  pthread_mutex_unlock (&filter_lock);
  return problems->len == before;
}

gboolean
tusk_log_set_filter (const char *directives_text, char ***problems)
{
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  gboolean ok = apply_filter (directives_text, "log filter", found);

  if (problems != NULL)
    {
      *problems = NULL;
      if (found->len > 0)
        {
          g_ptr_array_add (found, NULL);
          *problems = (char **)g_ptr_array_steal (found, NULL);
        }
    }
  else
    {
      for (guint i = 0; i < found->len; i++)
        tusk_warn ("%s", (const char *)found->pdata[i]);
    }
  return ok;
}

/* ---- redaction --------------------------------------------------------- */

static gboolean
is_key_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '-' || c == '.';
}

static gboolean
span_contains (const char *span, gsize len, const char *needle)
{
  gsize n = strlen (needle);
  for (gsize i = 0; i + n <= len; i++)
    if (g_ascii_strncasecmp (span + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
span_equals (const char *span, gsize len, const char *word)
{
  return strlen (word) == len && g_ascii_strncasecmp (span, word, len) == 0;
}

static gboolean
is_secret_key (const char *key, gsize len)
{
  if (span_contains (key, len, "password") || span_contains (key, len, "passwd")
      || span_contains (key, len, "passphrase"))
    return TRUE;
  while (len > 0 && *key == '-') /* --pwd=… */
    {
      key++;
      len--;
    }
  return span_equals (key, len, "sshpass") || span_equals (key, len, "pwd");
}

/* @p follows a secret key.  If a value follows (key=value, key: value, with
 * the key possibly quoted), appends the separator and the masked value and
 * returns the position after the value; else returns @p. */
static const char *
redact_value (GString *out, const char *p)
{
  const char *q = p;
  if (*q == '"' || *q == '\'')
    q++; /* the closing quote of a quoted key: "password": "…" */
  while (*q == ' ' || *q == '\t')
    q++;
  if (*q != '=' && *q != ':')
    return p;
  if (q[0] == ':' && q[1] == '/' && q[2] == '/')
    return p; /* a URI scheme; the URI rule sees it */
  q++;
  while (*q == ' ' || *q == '\t')
    q++;
  g_string_append_len (out, p, q - p);
  if (*q == '\0')
    return q;

  if (*q == '\'' || *q == '"')
    {
      /* Quoted: \x escapes x, a doubled quote is a quote (libpq and SQL
       * styles both); unterminated runs to the end. */
      char quote = *q;
      const char *v = q + 1;
      while (*v != '\0')
        {
          if (*v == '\\' && v[1] != '\0')
            v += 2;
          else if (*v == quote && v[1] == quote)
            v += 2;
          else if (*v == quote)
            break;
          else
            v++;
        }
      g_string_append_c (out, quote);
      g_string_append (out, MASK);
      if (*v == quote)
        {
          g_string_append_c (out, quote);
          v++;
        }
      return v;
    }

  /* Unquoted: up to white space, so that "a&b" or "a,b" passwords are
   * masked whole, at the price of masking "&sslmode=…" after them too. */
  const char *v = q;
  while (*v != '\0' && !g_ascii_isspace (*v))
    v++;
  g_string_append (out, MASK);
  return v;
}

/* @p is at "://".  Masks the password of `user:password@` in the authority
 * and returns where to go on.  The authority is taken to end at the last '@'
 * before white space, so passwords with unencoded '@', '/', '?' or '#' are
 * masked whole. */
static const char *
redact_uri (GString *out, const char *p)
{
  const char *start = p + 3;
  const char *end = start;
  const char *at = NULL;

  g_string_append (out, "://");
  for (; *end != '\0' && !g_ascii_isspace (*end); end++)
    if (*end == '@')
      at = end;
  if (at == NULL)
    return start;
  const char *colon = memchr (start, ':', at - start);
  if (colon == NULL)
    return start;
  g_string_append_len (out, start, colon + 1 - start);
  g_string_append (out, MASK);
  return at;
}

/* Appends @text to @out with its passwords masked.  O(n · number of keys). */
static void
redact_append (GString *out, const char *text)
{
  const char *p = text;
  while (*p != '\0')
    {
      if (p[0] == ':' && p[1] == '/' && p[2] == '/')
        {
          p = redact_uri (out, p);
        }
      else if (is_key_char (*p))
        {
          const char *end = p;
          while (is_key_char (*end))
            end++;
          g_string_append_len (out, p, end - p);
          if (is_secret_key (p, end - p))
            end = redact_value (out, end);
          p = end;
        }
      else
        {
          g_string_append_c (out, *p);
          p++;
        }
    }
}

char *
tusk_log_redact (const char *text)
{
  if (text == NULL)
    return NULL;
  GString *out = g_string_sized_new (strlen (text) + 16);
  redact_append (out, text);
  return g_string_free (out, FALSE);
}

/* ---- line format ------------------------------------------------------- */

typedef struct Record Record;
struct Record
{
  Record *next;
  gint64 usec; /* wall clock, Unix epoch */
  TuskLogLevel level;
  gboolean spare; /* SLOT_SIZE bytes, recycled through spare_records */
  char *domain;   /* inside data */
  char *message;  /* inside data */
  char data[];
};

/* The last second formatted, "YYYY-MM-DDTHH:MM:SS" in UTC. */
typedef struct
{
  gint64 sec;
  char text[32];
} StampCache;

static void
split_usec (gint64 usec, gint64 *sec, int *frac)
{
  *sec = usec / G_USEC_PER_SEC;
  *frac = (int)(usec % G_USEC_PER_SEC);
  if (*frac < 0)
    {
      *frac += G_USEC_PER_SEC;
      *sec -= 1;
    }
}

static const char *
stamp_for (StampCache *cache, gint64 sec)
{
  if (cache->text[0] != '\0' && cache->sec == sec)
    return cache->text;
  g_autoptr (GDateTime) utc = g_date_time_new_from_unix_utc (sec);
  g_autofree char *text
      = utc != NULL ? g_date_time_format (utc, "%Y-%m-%dT%H:%M:%S") : NULL;
  g_strlcpy (cache->text, text != NULL ? text : "0000-00-00T00:00:00",
             sizeof cache->text);
  cache->sec = sec;
  return cache->text;
}

static const char *const level_labels[]
    = { "ERROR", " WARN", " INFO", "DEBUG", "TRACE" };
static const char *const level_colors[]
    = { "\033[1;31m", "\033[33m", "\033[32m", "\033[34m", "\033[35m" };

/* Appends "2026-11-23T10:15:30.123456Z  INFO tusk-pool: message\n" with
 * @message already redacted. */
static void
append_line (GString *out, gboolean color, StampCache *cache, const Record *rec,
             const GString *message)
{
  gint64 sec;
  int frac;
  char digits[8];

  split_usec (rec->usec, &sec, &frac);
  for (int i = 5; i >= 0; i--, frac /= 10)
    digits[i] = (char)('0' + frac % 10);
  digits[6] = '\0';

  if (color)
    g_string_append (out, "\033[2m");
  g_string_append (out, stamp_for (cache, sec));
  g_string_append_c (out, '.');
  g_string_append (out, digits);
  g_string_append_c (out, 'Z');
  if (color)
    g_string_append (out, "\033[0m");
  g_string_append_c (out, ' ');
  if (color)
    g_string_append (out, level_colors[rec->level]);
  g_string_append (out, level_labels[rec->level]);
  if (color)
    g_string_append (out, "\033[0m");
  g_string_append_c (out, ' ');
  g_string_append (out, rec->domain);
  g_string_append (out, ": ");
  g_string_append_len (out, message->str, message->len);
  g_string_append_c (out, '\n');
}

/* Whether @text may hold anything redact_append() masks: every key it knows
 * contains "pass" or is "pwd", and URIs have "://".  Most lines have none,
 * and this scan is several times cheaper. */
static gboolean
may_hold_secret (const char *text)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == ':' && p[1] == '/' && p[2] == '/')
        return TRUE;
      if ((*p == 'p' || *p == 'P')
          && (g_ascii_strncasecmp (p, "pass", 4) == 0
              || g_ascii_strncasecmp (p, "pwd", 3) == 0))
        return TRUE;
    }
  return FALSE;
}

/* Puts @rec's redacted message in @scratch, without a trailing newline. */
static void
redact_message (GString *scratch, const Record *rec)
{
  g_string_truncate (scratch, 0);
  if (may_hold_secret (rec->message))
    redact_append (scratch, rec->message);
  else
    g_string_append (scratch, rec->message);
  if (scratch->len > 0 && scratch->str[scratch->len - 1] == '\n')
    g_string_truncate (scratch, scratch->len - 1);
}

/* Writes all of @len bytes.  Returns 0 or an errno value. */
static int
write_all (int fd, const char *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno;
      if (n == 0)
        return EIO;
      buf += n;
      len -= (gsize)n;
    }
  return 0;
}

gboolean
tusk_log_fd_wants_color (int fd)
{
  const char *no_color = g_getenv ("NO_COLOR");
  const char *term = g_getenv ("TERM");

  if (no_color != NULL && *no_color != '\0')
    return FALSE;
  if (term != NULL && strcmp (term, "dumb") == 0)
    return FALSE;
  return isatty (fd);
}

/* ---- queue ------------------------------------------------------------- */

/* queue_lock protects everything in this block; `accepting` is also read
 * atomically without it, as a hint. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond
    = PTHREAD_COND_INITIALIZER; /* the writer waits for records or `stopping` */
static pthread_cond_t done_cond
    = PTHREAD_COND_INITIALIZER; /* flushers wait for written_seq or the writer's
                                   end */
static Record *queue_head;
static Record *queue_tail;
static guint pending;
static guint64 enqueued_seq;
static guint64 written_seq;
static guint64 dropped;
static int accepting;
static gboolean stopping;
static gboolean writer_idle;    /* waiting on queue_cond: wake it */
static gboolean writer_running; /* between init and the writer's exit */
static guint flush_waiters;
static GThread *writer;
static char *file_path; /* invariant 4 */
static gboolean console_color;
static TuskLogClockFunc clock_func;
static gpointer clock_data;
static TuskLogConsoleFunc console_func;
static gpointer console_data;
static int console_level = TUSK_LOG_TRACE; /* atomic */

/* queue_lock held. */
static gint64
now_usec_locked (void)
{
  if (clock_func == NULL)
    return g_get_real_time ();
  g_autoptr (GDateTime) now = clock_func (clock_data);
  return g_date_time_to_unix (now) * G_USEC_PER_SEC
         + g_date_time_get_microsecond (now);
}

/* Records that fit SLOT_SIZE bytes are recycled: the writer hands them back
 * here and callers take them again, so a steady stream of lines keeps
 * reusing warm memory.  Without this, a burst that outruns the writer makes
 * every call fault in fresh heap pages, which costs more than formatting.
 * At most MAX_SPARE are kept (1 MiB).  spare_lock protects the list and is
 * never held with another lock. */
#define SLOT_SIZE 256
#define MAX_SPARE 4096

static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static Record *spare_records;
static guint n_spare;

/* Frees @rec, or keeps it for reuse. */
static void
record_release (Record *rec)
{
  if (rec->spare)
    {
      pthread_mutex_lock (&spare_lock);
      if (n_spare < MAX_SPARE)
        {
          rec->next = spare_records;
          spare_records = rec;
          n_spare++;
          rec = NULL;
        }
      pthread_mutex_unlock (&spare_lock);
    }
  g_free (rec);
}

/* Like record_release() for a whole chain (linked by next), under one
 * lock. */
static void
record_release_chain (Record *chain)
{
  pthread_mutex_lock (&spare_lock);
  while (chain != NULL && n_spare < MAX_SPARE)
    {
      Record *next = chain->next;
      chain->next = spare_records;
      spare_records = chain;
      n_spare++;
      chain = next;
    }
  pthread_mutex_unlock (&spare_lock);
  while (chain != NULL)
    {
      Record *next = chain->next;
      g_free (chain);
      chain = next;
    }
}

/* A record whose message has room for @message_len bytes and a NUL. */
static Record *
record_alloc (TuskLogLevel level, const char *domain, gsize message_len)
{
  if (domain == NULL)
    domain = program_domain ();
  gsize domain_size = strlen (domain) + 1;
  gsize size = sizeof (Record) + domain_size + message_len + 1;
  Record *rec = NULL;

  if (size <= SLOT_SIZE)
    {
      pthread_mutex_lock (&spare_lock);
      rec = spare_records;
      if (rec != NULL)
        {
          spare_records = rec->next;
          n_spare--;
        }
      pthread_mutex_unlock (&spare_lock);
      if (rec == NULL)
        rec = g_malloc (SLOT_SIZE);
      rec->spare = TRUE;
    }
  else
    {
      rec = g_malloc (size);
      rec->spare = FALSE;
    }

  memcpy (rec->data, domain, domain_size);
  rec->next = NULL;
  rec->usec = 0;
  rec->level = level;
  rec->domain = rec->data;
  rec->message = rec->data + domain_size;
  return rec;
}

static Record *
record_new (TuskLogLevel level, const char *domain, const char *message,
            gsize message_len)
{
  Record *rec = record_alloc (level, domain, message_len);
  memcpy (rec->message, message, message_len);
  rec->message[message_len] = '\0';
  return rec;
}

/* Formats on the calling thread: short messages (the usual case) into a
 * stack buffer and then the record, long ones straight into the record. */
static Record *
record_new_valist (TuskLogLevel level, const char *domain, const char *format,
                   va_list args)
{
  char small[256];
  va_list copy;

  va_copy (copy, args);
  int n = vsnprintf (small, sizeof small, format, copy);
  va_end (copy);
  if (n < 0)
    return record_new (level, domain, format, strlen (format));
  if ((gsize)n < sizeof small)
    return record_new (level, domain, small, (gsize)n);

  Record *rec = record_alloc (level, domain, (gsize)n);
  vsnprintf (rec->message, (gsize)n + 1, format, args);
  return rec;
}

/* Writes @rec to the console from the calling thread (STOPPED, or a fatal
 * message on the writer thread) and frees it. */
static void
write_now (Record *rec, TuskLogConsoleFunc func, gpointer data)
{
  if (rec->level > (TuskLogLevel)g_atomic_int_get (&console_level))
    {
      record_release (rec);
      return;
    }
  StampCache cache = { 0 };
  GString *message = g_string_new (NULL);
  GString *line = g_string_new (NULL);

  redact_message (message, rec);
  append_line (line, func == NULL && tusk_log_fd_wants_color (STDERR_FILENO),
               &cache, rec, message);
  if (func != NULL)
    func (line->str, data);
  else
    write_all (STDERR_FILENO, line->str, line->len);
  g_string_free (line, TRUE);
  g_string_free (message, TRUE);
  record_release (rec);
}

/* Stamps @rec and hands it to the writer, or writes it at once when logging
 * is not running.  Takes ownership. */
static void
enqueue (Record *rec)
{
  gboolean wake = FALSE;

  pthread_mutex_lock (&queue_lock);
  rec->usec = now_usec_locked ();
  if (!accepting)
    {
      TuskLogConsoleFunc func = console_func;
      gpointer data = console_data;
      pthread_mutex_unlock (&queue_lock);
      write_now (rec, func, data);
      return;
    }
  if (pending >= TUSK_LOG_MAX_PENDING)
    {
      dropped++;
      pthread_mutex_unlock (&queue_lock);
      record_release (rec);
      return;
    }
  if (queue_tail != NULL)
    queue_tail->next = rec;
  else
    queue_head = rec;
  queue_tail = rec;
  pending++;
  enqueued_seq++;
  if (writer_idle)
    {
      writer_idle = FALSE;
      wake = TRUE;
    }
  pthread_mutex_unlock (&queue_lock);

  if (wake)
    pthread_cond_signal (&queue_cond);
}

void
tusk_log_emit (TuskLogLevel level, const char *domain, const char *format, ...)
{
  va_list args;

  g_return_if_fail ((guint)level <= TUSK_LOG_TRACE);
  g_return_if_fail (format != NULL);

  va_start (args, format);
  Record *rec = record_new_valist (level, domain, format, args);
  va_end (args);
  enqueue (rec);
}

void
tusk_log (TuskLogLevel level, const char *domain, const char *format, ...)
{
  va_list args;

  g_return_if_fail ((guint)level <= TUSK_LOG_TRACE);
  g_return_if_fail (format != NULL);

  if (!tusk_log_enabled (level, domain))
    return;
  va_start (args, format);
  Record *rec = record_new_valist (level, domain, format, args);
  va_end (args);
  enqueue (rec);
}

void
tusk_log_flush (void)
{
  pthread_mutex_lock (&queue_lock);
  if (writer_running && g_thread_self () != writer)
    {
      guint64 target = enqueued_seq;
      flush_waiters++;
      pthread_cond_signal (&queue_cond); /* ends a batching window */
      while (written_seq < target && writer_running)
        pthread_cond_wait (&done_cond, &queue_lock);
      flush_waiters--;
    }
  pthread_mutex_unlock (&queue_lock);
}

gboolean
tusk_log_file_active (void)
{
  pthread_mutex_lock (&queue_lock);
  gboolean active = file_path != NULL;
  pthread_mutex_unlock (&queue_lock);
  return active;
}

char *
tusk_log_dup_file_path (void)
{
  pthread_mutex_lock (&queue_lock);
  char *path = g_strdup (file_path);
  pthread_mutex_unlock (&queue_lock);
  return path;
}

void
tusk_log_set_clock_for_testing (TuskLogClockFunc now, gpointer user_data)
{
  pthread_mutex_lock (&queue_lock);
  clock_func = now;
  clock_data = user_data;
  pthread_mutex_unlock (&queue_lock);
}

void
tusk_log_set_console_func_for_testing (TuskLogConsoleFunc func,
                                       gpointer user_data)
{
  pthread_mutex_lock (&queue_lock);
  console_func = func;
  console_data = user_data;
  pthread_mutex_unlock (&queue_lock);
}

/* ---- the writer -------------------------------------------------------- */

/* Owned by the writer thread while it exists (invariant 1). */
static struct
{
  char *dir;        /* NULL: console only from the start */
  int fd;           /* -1: console only */
  char date[16];    /* local date of fd's file, YYYY-MM-DD */
  gint64 day_start; /* [day_start, day_end): that date, in Unix usec */
  gint64 day_end;
  StampCache stamps;
  GString *file_buf;
  GString *console_buf;
  GString *line;
  GString *message;
} w = { .fd = -1 };

/* The local date of @usec and the bounds of that day. */
static gboolean
local_day (gint64 usec, char date[16], gint64 *start, gint64 *end)
{
  gint64 sec;
  int frac, y, m, d;

  split_usec (usec, &sec, &frac);
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_local (sec);
  if (t == NULL)
    return FALSE;
  g_date_time_get_ymd (t, &y, &m, &d);
  g_snprintf (date, 16, "%04d-%02d-%02d", y, m, d);

  g_autoptr (GDateTime) midnight = g_date_time_new_local (y, m, d, 0, 0, 0);
  g_autoptr (GDateTime) next = g_date_time_add_days (midnight, 1);
  if (midnight == NULL || next == NULL)
    return FALSE;
  /* A midnight that DST skips may land after @usec; keep @usec inside. */
  *start = MIN (g_date_time_to_unix (midnight) * G_USEC_PER_SEC, usec);
  *end = MAX (g_date_time_to_unix (next) * G_USEC_PER_SEC, usec + 1);
  return TRUE;
}

static gboolean
is_log_file_name (const char *name)
{
  /* tusk.YYYY-MM-DD.log */
  if (strlen (name) != 19 || !g_str_has_prefix (name, "tusk.")
      || !g_str_has_suffix (name, ".log"))
    return FALSE;
  for (int i = 5; i < 15; i++)
    if (i == 9 || i == 12 ? name[i] != '-' : !g_ascii_isdigit (name[i]))
      return FALSE;
  return TRUE;
}

static int
compare_names_newest_first (gconstpointer a, gconstpointer b)
{
  return -strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* Deletes all but the TUSK_LOG_KEEP_FILES newest log files of @dir, never
 * @current.  Other files are left alone.  O(files in @dir). */
static void
prune (const char *dir, const char *current)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  if (listing == NULL)
    return;

  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (listing)) != NULL)
    if (is_log_file_name (name) && g_strcmp0 (name, current) != 0)
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names_newest_first);

  guint keep = TUSK_LOG_KEEP_FILES - (current != NULL ? 1 : 0);
  for (guint i = keep; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      g_unlink (path);
    }
}

/* Opens the file of @date in w.dir and prunes.  Returns the new path, or
 * NULL with errno set and *tried_path naming the file it tried. */
static char *
open_day_file (const char *date, char **tried_path)
{
  g_autofree char *name = g_strdup_printf ("tusk.%s.log", date);
  char *path = g_build_filename (w.dir, name, NULL);
  int fd
      = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    {
      *tried_path = path;
      return NULL;
    }
  w.fd = fd;
  g_strlcpy (w.date, date, sizeof w.date);
  prune (w.dir, name);
  return path;
}

static void
set_file_path (char *path)
{
  pthread_mutex_lock (&queue_lock);
  g_free (file_path);
  file_path = path;
  pthread_mutex_unlock (&queue_lock);
}

/* A batch: records taken from the queue plus the writer's own warnings. */
typedef struct
{
  Record *head;
  Record *tail;
} Batch;

static void
batch_add_warning (Batch *batch, char *message)
{
  if (tusk_log_enabled (TUSK_LOG_WARN, G_LOG_DOMAIN))
    {
      Record *rec
          = record_new (TUSK_LOG_WARN, G_LOG_DOMAIN, message, strlen (message));
      pthread_mutex_lock (&queue_lock);
      rec->usec = now_usec_locked ();
      pthread_mutex_unlock (&queue_lock);
      if (batch->tail != NULL)
        batch->tail->next = rec;
      else
        batch->head = rec;
      batch->tail = rec;
    }
  g_free (message);
}

/* Closes the file after a failure; lines go to the console only from now
 * on (invariant 4). */
static void
file_failed (Batch *batch, const char *what, const char *path, int err)
{
  batch_add_warning (batch,
                     g_strdup_printf ("cannot %s the log file %s: %s; logging "
                                      "to the console only",
                                      what, path, g_strerror (err)));
  if (w.fd >= 0)
    close (w.fd);
  w.fd = -1;
  g_string_truncate (w.file_buf, 0);
  set_file_path (NULL);
}

static void
write_file_buf (Batch *batch)
{
  if (w.fd < 0 || w.file_buf->len == 0)
    return;
  int err = write_all (w.fd, w.file_buf->str, w.file_buf->len);
  g_string_truncate (w.file_buf, 0);
  if (err != 0)
    {
      g_autofree char *path = tusk_log_dup_file_path ();
      file_failed (batch, "write", path, err);
    }
}

static void
write_console_buf (void)
{
  write_all (STDERR_FILENO, w.console_buf->str, w.console_buf->len);
  g_string_truncate (w.console_buf, 0);
}

/* Switches to the file of @usec's local date if that is another date. */
static void
maybe_rotate (Batch *batch, gint64 usec)
{
  char date[16];

  if (usec >= w.day_start && usec < w.day_end)
    return;
  if (!local_day (usec, date, &w.day_start, &w.day_end))
    return;
  if (strcmp (date, w.date) == 0)
    return;

  write_file_buf (batch);
  if (w.fd < 0)
    return;
  close (w.fd);
  w.fd = -1;

  char *tried = NULL;
  char *path = open_day_file (date, &tried);
  if (path == NULL)
    {
      int err = errno;
      file_failed (batch, "open", tried, err);
      g_free (tried);
      return;
    }
  set_file_path (path);
}

static void
write_batch (Batch *batch, TuskLogConsoleFunc func, gpointer data,
             gboolean color)
{
  Record *spares = NULL; /* written records to recycle */

  while (batch->head != NULL)
    {
      Record *rec = batch->head;

      if (w.fd >= 0)
        maybe_rotate (batch, rec->usec);
      redact_message (w.message, rec);
      if (w.fd >= 0)
        append_line (w.file_buf, FALSE, &w.stamps, rec, w.message);
      gboolean to_console
          = rec->level <= (TuskLogLevel)g_atomic_int_get (&console_level);
      if (to_console && func != NULL)
        {
          g_string_truncate (w.line, 0);
          append_line (w.line, FALSE, &w.stamps, rec, w.message);
          func (w.line->str, data);
        }
      else if (to_console)
        {
          append_line (w.console_buf, color, &w.stamps, rec, w.message);
        }

      if (w.file_buf->len > BUFFER_LIMIT)
        write_file_buf (batch);
      if (w.console_buf->len > BUFFER_LIMIT)
        write_console_buf ();

      /* Warnings added above land behind the tail, so read next now. */
      batch->head = rec->next;
      if (batch->head == NULL)
        batch->tail = NULL;
      if (rec->spare)
        {
          rec->next = spares;
          spares = rec;
        }
      else
        {
          g_free (rec);
        }

      if (batch->head == NULL)
        {
          write_file_buf (batch); /* may add a warning: loop again */
          write_console_buf ();
        }
    }
  record_release_chain (spares);
}

static gpointer
writer_main (G_GNUC_UNUSED gpointer unused)
{
  pthread_mutex_lock (&queue_lock);
  for (;;)
    {
      while (queue_head == NULL && !stopping)
        {
          writer_idle = TRUE;
          pthread_cond_wait (&queue_cond, &queue_lock);
        }
      writer_idle = FALSE;
      if (queue_head != NULL && !stopping && flush_waiters == 0)
        {
          /* Lets a burst gather; a flush or the shutdown (which signal
           * queue_cond) cuts the window short, so that a short-lived
           * program does not wait it out at exit. */
          struct timespec until;
          clock_gettime (CLOCK_REALTIME, &until); /* queue_cond's clock */
          until.tv_nsec += BATCH_WINDOW_USEC * 1000;
          if (until.tv_nsec >= 1000000000)
            {
              until.tv_sec++;
              until.tv_nsec -= 1000000000;
            }
          while (!stopping && flush_waiters == 0
                 && pthread_cond_timedwait (&queue_cond, &queue_lock, &until)
                        == 0)
            ;
        }

      Batch batch = { queue_head, queue_tail };
      queue_head = queue_tail = NULL;
      pending = 0;
      guint64 last = enqueued_seq;
      guint64 lost = dropped;
      dropped = 0;
      TuskLogConsoleFunc func = console_func;
      gpointer data = console_data;
      gboolean color = console_color;
      pthread_mutex_unlock (&queue_lock);

      if (lost > 0)
        batch_add_warning (&batch,
                           g_strdup_printf ("%" G_GUINT64_FORMAT
                                            " log lines dropped: more than %d "
                                            "were waiting to be written",
                                            lost, TUSK_LOG_MAX_PENDING));
      write_batch (&batch, func, data, color);

      pthread_mutex_lock (&queue_lock);
      written_seq = last;
      pthread_cond_broadcast (&done_cond);
      if (stopping && queue_head == NULL)
        break;
    }
  writer_running = FALSE;
  pthread_cond_broadcast (&done_cond);
  pthread_mutex_unlock (&queue_lock);
  return NULL;
}

/* ---- GLib's messages --------------------------------------------------- */

static TuskLogLevel
level_from_glib (GLogLevelFlags flags)
{
  if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return TUSK_LOG_ERROR;
  if (flags & G_LOG_LEVEL_WARNING)
    return TUSK_LOG_WARN;
  if (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    return TUSK_LOG_INFO;
  return TUSK_LOG_DEBUG;
}

/* GLib's writer while logging runs: the same filter and sinks.  Warnings and
 * worse are written before it returns, because GLib may abort right after
 * (g_error(), G_DEBUG=fatal-warnings, g_test_init()) and g_log() strips the
 * fatal flag before it reaches a writer.  While logging is stopped, GLib's
 * default writer. */
static GLogWriterOutput
glib_writer (GLogLevelFlags flags, const GLogField *fields, gsize n_fields,
             gpointer user_data)
{
  if (!g_atomic_int_get (&accepting))
    return g_log_writer_default (flags, fields, n_fields, user_data);

  g_autofree char *domain = NULL;
  const char *message = "(no message)";
  gssize message_len = -1;
  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0
          && fields[i].value != NULL)
        domain = fields[i].length < 0
                     ? g_strdup (fields[i].value)
                     : g_strndup (fields[i].value, fields[i].length);
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0
               && fields[i].value != NULL)
        {
          message = fields[i].value;
          message_len = fields[i].length;
        }
    }

  TuskLogLevel level = level_from_glib (flags);
  if (!tusk_log_enabled (level, domain))
    return G_LOG_WRITER_HANDLED;

  Record *rec
      = record_new (level, domain, message,
                    message_len < 0 ? strlen (message) : (gsize)message_len);
  gboolean urgent = level <= TUSK_LOG_WARN || (flags & G_LOG_FLAG_FATAL);
  if (!urgent)
    {
      enqueue (rec);
      return G_LOG_WRITER_HANDLED;
    }

  pthread_mutex_lock (&queue_lock);
  gboolean on_writer = g_thread_self () == writer;
  TuskLogConsoleFunc func = console_func;
  gpointer data = console_data;
  if (on_writer)
    rec->usec = now_usec_locked ();
  pthread_mutex_unlock (&queue_lock);
  if (on_writer)
    {
      write_now (rec, func, data); /* console only: the file is busy */
      return G_LOG_WRITER_HANDLED;
    }
  enqueue (rec);
  tusk_log_flush ();
  return G_LOG_WRITER_HANDLED;
}

/* g_log_set_writer_func() may be called once per process: the writer stays
 * and consults `accepting`. */
static void
install_glib_writer (void)
{
  static gsize installed = 0;
  if (g_once_init_enter (&installed))
    {
      g_log_set_writer_func (glib_writer, NULL, NULL);
      g_once_init_leave (&installed, 1);
    }
}

/* ---- init and shutdown ------------------------------------------------- */

/* Creates the directory and opens today's file.  On failure returns the
 * console warning and leaves w.fd at -1. */
static char *
open_first_file (const char *log_dir, char **path_out)
{
  if (g_mkdir_with_parents (log_dir, 0700) != 0)
    {
      int err = errno;
      return g_strdup_printf ("cannot create the log directory %s: %s; "
                              "logging to the console only",
                              log_dir, g_strerror (err));
    }

  pthread_mutex_lock (&queue_lock);
  gint64 now = now_usec_locked ();
  pthread_mutex_unlock (&queue_lock);

  char date[16];
  if (!local_day (now, date, &w.day_start, &w.day_end))
    return g_strdup ("cannot read the local date; logging to the console "
                     "only");
  char *tried = NULL;
  *path_out = open_day_file (date, &tried);
  if (*path_out == NULL)
    {
      int err = errno;
      g_autofree char *path = tried;
      return g_strdup_printf ("cannot open the log file %s: %s; logging to "
                              "the console only",
                              path, g_strerror (err));
    }
  return NULL;
}

/* Frees the writer's state.  No writer thread exists. */
static void
writer_state_clear (void)
{
  if (w.fd >= 0)
    close (w.fd);
  w.fd = -1;
  g_clear_pointer (&w.dir, g_free);
  if (w.file_buf != NULL)
    {
      g_string_free (g_steal_pointer (&w.file_buf), TRUE);
      g_string_free (g_steal_pointer (&w.console_buf), TRUE);
      g_string_free (g_steal_pointer (&w.line), TRUE);
      g_string_free (g_steal_pointer (&w.message), TRUE);
    }
}

void
tusk_log_init (const char *log_dir)
{
  g_return_if_fail (writer == NULL);

  install_glib_writer ();

  g_autoptr (GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  const char *env = g_getenv ("TUSK_LOG");
  apply_filter (env != NULL && *env != '\0' ? env : NULL, "TUSK_LOG", problems);

  w.dir = g_strdup (log_dir);
  w.fd = -1;
  w.date[0] = '\0';
  w.day_start = w.day_end = 0;
  w.stamps.text[0] = '\0';
  w.file_buf = g_string_sized_new (BUFFER_LIMIT);
  w.console_buf = g_string_sized_new (BUFFER_LIMIT);
  w.line = g_string_new (NULL);
  w.message = g_string_new (NULL);

  char *path = NULL;
  g_autofree char *warning
      = log_dir != NULL ? open_first_file (log_dir, &path) : NULL;

  pthread_mutex_lock (&queue_lock);
  file_path = path;
  enqueued_seq = written_seq = 0;
  pending = 0;
  dropped = 0;
  stopping = FALSE;
  writer_idle = FALSE;
  writer_running = TRUE;
  console_color = tusk_log_fd_wants_color (STDERR_FILENO);
  g_atomic_int_set (&accepting, TRUE);
  pthread_mutex_unlock (&queue_lock);

  g_autoptr (GError) error = NULL;
  GThread *thread = g_thread_try_new ("tusk-log", writer_main, NULL, &error);
  if (thread == NULL)
    {
      pthread_mutex_lock (&queue_lock);
      g_atomic_int_set (&accepting, FALSE);
      writer_running = FALSE;
      g_clear_pointer (&file_path, g_free);
      pthread_mutex_unlock (&queue_lock);
      writer_state_clear ();
      tusk_warn ("cannot start the log writer thread: %s; logging to the "
                 "console only",
                 error->message);
    }
  else
    {
      pthread_mutex_lock (&queue_lock);
      writer = thread;
      pthread_mutex_unlock (&queue_lock);
    }

  if (warning != NULL)
    tusk_warn ("%s", warning);
  for (guint i = 0; i < problems->len; i++)
    tusk_warn ("%s", (const char *)problems->pdata[i]);
}

void
tusk_log_shutdown (void)
{
  if (writer == NULL)
    return;

  pthread_mutex_lock (&queue_lock);
  g_atomic_int_set (&accepting, FALSE);
  stopping = TRUE;
  pthread_mutex_unlock (&queue_lock);
  pthread_cond_signal (&queue_cond);

  g_thread_join (writer);

  pthread_mutex_lock (&queue_lock);
  writer = NULL;
  g_clear_pointer (&file_path, g_free);
  pthread_mutex_unlock (&queue_lock);

  writer_state_clear ();

  pthread_mutex_lock (&spare_lock);
  Record *spares = g_steal_pointer (&spare_records);
  n_spare = 0;
  pthread_mutex_unlock (&spare_lock);
  while (spares != NULL)
    {
      Record *next = spares->next;
      g_free (spares);
      spares = next;
    }
}

void
tusk_log_set_console_level (TuskLogLevel level)
{
  g_return_if_fail (level <= TUSK_LOG_TRACE);
  g_atomic_int_set (&console_level, (int)level);
}
