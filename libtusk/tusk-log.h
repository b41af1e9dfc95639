/* tusk-log.h: leveled logging to the console and a daily log file at once.
 *
 * Callers only format and enqueue; one background thread ("tusk-log") writes
 * every line to stderr and to `tusk.YYYY-MM-DD.log` in the log directory,
 * switching files at local midnight and keeping the 14 newest.  Passwords in
 * conninfo strings, URIs and key=value configs are masked before any line is
 * written (tusk_log_redact()).
 *
 * Modules are GLib log domains.  Every libtusk source file defines
 * G_LOG_DOMAIN as "tusk-<module>" before its includes and logs with the
 * tusk_error() … tusk_trace() macros below; a file without G_LOG_DOMAIN logs
 * under the program's name (g_get_prgname()).  tusk_log_init() also routes
 * GLib's own g_message()/g_warning()/g_critical() (from GLib, libsecret,
 * json-glib, …) through the same filter and sinks.
 *
 * Filter directives (TUSK_LOG, tusk_log_set_filter()) are a comma-separated
 * list of `level` (the default for every domain) and `module=level`; levels
 * are off, error, warn, info, debug, trace (any case).  A module names a
 * domain and every domain below it ("tusk" matches "tusk" and "tusk-pool",
 * "GLib" matches "GLib-GIO"), and a short name stands for "tusk-<name>"
 * ("pool" matches "tusk-pool").  The most specific match wins; between equal
 * ones, the later.  Built-in defaults: debug builds "debug,tusk=trace,
 * GLib=info", release builds "info".  A bad directive is reported as a
 * warning and skipped; the others still apply.
 *
 * Thread rules: tusk_log_init() and tusk_log_shutdown() are called by one
 * thread (normally main()), never concurrently with each other.  Everything
 * else may be called from any thread at any time, also before init and after
 * shutdown: then lines go synchronously to the console only.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * TuskLogLevel:
 *
 * Severity of a log line, most severe first.  A filter set to a level lets
 * that level and every more severe one through.
 */
typedef enum
{
  TUSK_LOG_ERROR,
  TUSK_LOG_WARN,
  TUSK_LOG_INFO,
  TUSK_LOG_DEBUG,
  TUSK_LOG_TRACE,
} TuskLogLevel;

/**
 * tusk_log_init:
 * @log_dir: (nullable): the directory of the log files, normally
 *   `{data_dir}/logs`; created (mode 0700) if missing.  %NULL logs to the
 *   console only.
 *
 * Starts logging: applies the build's default filter, then TUSK_LOG from the
 * environment (which replaces the default directives; without a bare level,
 * the build's default level stays), opens today's file (mode 0600), prunes
 * old files and starts the writer thread.
 *
 * Never fails and never blocks start-up: if the directory or the file cannot
 * be created or opened (read-only directory, full disk, …), one warning
 * naming the path and the reason goes to the console and logging continues
 * on the console only.  Bad TUSK_LOG directives become warnings.
 *
 * Call once from main(), before other threads log; call tusk_log_shutdown()
 * before returning from main() (no atexit() handler is installed).  May be
 * called again after tusk_log_shutdown().  The first call installs GLib's
 * log writer function, which GLib allows once per process: the program must
 * not call g_log_set_writer_func() itself.  While logging is stopped that
 * writer hands GLib's messages to g_log_writer_default().
 */
void tusk_log_init (const char *log_dir);

/**
 * tusk_log_shutdown:
 *
 * Writes every line enqueued so far to the console and the file, closes the
 * file and joins the writer thread.  Blocks until that is done.  Later lines
 * go synchronously to the console only.  Does nothing if logging is not
 * running, so calling it twice is harmless.
 */
void tusk_log_shutdown (void);

/**
 * tusk_log_file_active:
 *
 * Returns: %TRUE while lines are also written to a log file; %FALSE when
 *   logging is console-only (no directory given, the file could not be
 *   opened, a write failed, or logging is not running).  Any thread.
 */
gboolean tusk_log_file_active (void);

/**
 * tusk_log_dup_file_path:
 *
 * Returns: (transfer full) (nullable): the path of the log file being written
 *   (it changes at midnight), or %NULL when logging is console-only.  Free
 *   with g_free().  Any thread.
 */
char *tusk_log_dup_file_path (void);

/**
 * tusk_log_enabled:
 * @level: a level
 * @domain: (nullable): a log domain, e.g. "tusk-pool"; %NULL is the program
 *
 * Returns: whether a line at @level under @domain would be written.  Any
 * thread.  The macros below use a cheaper per-call-site cache instead.
 */
gboolean tusk_log_enabled (TuskLogLevel level, const char *domain);

/**
 * tusk_log:
 * @level: the line's level
 * @domain: (nullable): its log domain; %NULL is the program
 * @format: printf-style format of the message
 *
 * Logs one line if the filter lets it through.  The message is formatted on
 * the calling thread and enqueued; the call never waits for I/O.  Any thread.
 * Prefer the macros, which log under G_LOG_DOMAIN.
 */
void tusk_log (TuskLogLevel level, const char *domain, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

/**
 * tusk_log_set_filter:
 * @directives: (nullable): directives as in TUSK_LOG, e.g. "info,pool=trace";
 *   %NULL restores the build's default directives
 * @problems: (out) (optional) (transfer full): one message per rejected
 *   directive, %NULL-terminated, or %NULL when all were valid; free with
 *   g_strfreev().  When @problems is %NULL the messages are logged as
 *   warnings instead.
 *
 * Replaces the filter.  The valid directives apply even when some are
 * rejected; the build's default level applies unless @directives holds a
 * bare level.  Takes effect at once on every thread.  Any thread;
 * tusk_log_init() resets the filter from TUSK_LOG.
 *
 * Returns: %TRUE if every directive was valid.
 */
gboolean tusk_log_set_filter (const char *directives, char ***problems);

/**
 * tusk_log_set_console_level:
 * @level: the least severe level still written to the console
 *
 * Lines less severe than @level go to the log file only; the filter still
 * decides what is logged at all.  The default, %TUSK_LOG_TRACE, sends every
 * line to both.  A command-line front end sets %TUSK_LOG_WARN so that its
 * own output stays readable while the file keeps the detail.  Any thread;
 * applies to lines written afterwards.
 */
void tusk_log_set_console_level (TuskLogLevel level);

/**
 * tusk_log_redact:
 * @text: (nullable): any text: a conninfo string, a URI, a config dump, a
 *   message containing them
 *
 * Masks passwords with `********`: the value of every key=value or key: value
 * pair whose key contains "password", "passwd" or "passphrase", or is
 * "sshpass" or "pwd" (quoted values with '' or \ escapes included, e.g.
 * conninfo `password='it''s'`, query strings `?password=…`, JSON
 * `"password": "…"`), and the password of every `scheme://user:password@host`
 * URI.  It errs towards masking too much.  Any input, however malformed, is
 * safe.  Every logged line goes through it.  Any thread.
 *
 * Returns: (transfer full) (nullable): the masked copy (%NULL for %NULL);
 *   free with g_free().
 */
char *tusk_log_redact (const char *text);

/* Used by the macros; not for direct calls. */
gboolean tusk_log_site_check (int *site, const char *domain,
                              TuskLogLevel level);
void tusk_log_emit (TuskLogLevel level, const char *domain, const char *format,
                    ...) G_GNUC_PRINTF (3, 4);

/* Each call site caches its domain's level in a static int, revalidated
 * against the filter's generation, so a disabled call costs one function
 * call and two loads. */
#define TUSK_LOG_AT(level, ...)                                                \
  G_STMT_START                                                                 \
  {                                                                            \
    static int tusk_log_site_ = 0;                                             \
    if (tusk_log_site_check (&tusk_log_site_, G_LOG_DOMAIN, (level)))          \
      tusk_log_emit ((level), G_LOG_DOMAIN, __VA_ARGS__);                      \
  }                                                                            \
  G_STMT_END

/* Log a printf-style message under G_LOG_DOMAIN.  Unlike g_error(),
 * tusk_error() does not abort. */
#define tusk_error(...) TUSK_LOG_AT (TUSK_LOG_ERROR, __VA_ARGS__)
#define tusk_warn(...)  TUSK_LOG_AT (TUSK_LOG_WARN, __VA_ARGS__)
#define tusk_info(...)  TUSK_LOG_AT (TUSK_LOG_INFO, __VA_ARGS__)
#define tusk_debug(...) TUSK_LOG_AT (TUSK_LOG_DEBUG, __VA_ARGS__)
#define tusk_trace(...) TUSK_LOG_AT (TUSK_LOG_TRACE, __VA_ARGS__)

G_END_DECLS
