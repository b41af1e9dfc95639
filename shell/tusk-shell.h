/* tusk-shell.h: one shell session — the state, the connection it talks to,
 * its settings, and running SQL text through libtusk's asynchronous API
 * while the main context keeps turning (so Ctrl-C and the elapsed-time
 * indicator work while a query runs).
 *
 * Used by main() for -c and -f, by the interactive loop (tusk-repl.c) and
 * by the subcommands (tusk-commands.c).
 *
 * Thread rules: a TuskShell belongs to the main thread; every function here
 * is called there and iterates the thread-default main context while it
 * waits (it never blocks it on the network).
 */
#pragma once

#include <stdio.h>

#include <tusk.h>

#include "tusk-print.h"

G_BEGIN_DECLS

/* Exit codes, as psql's. */
enum
{
  TUSK_EXIT_OK = 0,
  TUSK_EXIT_FAILED = 1,     /* a statement failed */
  TUSK_EXIT_CONNECTION = 2, /* the connection failed, or the usage was wrong */
};

/* -h -p -U -d: override the target's fields when set (nullable each). */
typedef struct
{
  const char *host;
  const char *port;
  const char *user;
  const char *dbname;
} TuskTargetOverrides;

typedef struct
{
  TuskState *state; /* owned */

  /* The connection (NULL until tusk_shell_connect() succeeds). */
  TuskConnectionConfig *config; /* owned; config->id is the pool's key */
  gboolean saved;               /* config is a saved connection */
  TuskPool *pool;               /* owned reference */
  TuskPoolConn *session;        /* owned: the one connection every
                                   statement runs on, so SET, BEGIN …
                                   COMMIT and temp tables carry over */
  TuskTransactionStatus transaction_status; /* after the last statement */

  /* Settings (\x, \timing, \format, \pset null, \o). */
  TuskPrintOptions print;
  char *null_display; /* owned; print.null_display points here */
  gboolean timing;    /* print "Time: 1.234 ms" after each statement */
  FILE *out;          /* stdout, or the \o file (owned then) */
  char *out_path;     /* owned, nullable: the \o file's path */

  gboolean interactive; /* prompts allowed (stdin and stderr are ttys and
                           CI is not set) */

  /* The statement running now, for Ctrl-C (nullable). */
  TuskQueryHandle *running;

  /* Added by the shell core (issue 8). */
  gboolean pager;            /* use $PAGER when interactive (-P pager=off
                                clears it); default TRUE */
  gboolean quit;             /* \q ran inside a script or -c: stop */
  gboolean connection_lost;  /* a statement failed because the server went
                                away (psql then exits 2) */
  gboolean out_is_pipe;      /* \o |command: out is a popen() stream */
  GCancellable *cancellable; /* the connect or acquire being waited for,
                                for Ctrl-C (nullable, owned) */
} TuskShell;

/* Returns (transfer full) a shell on a new TuskState in @data_dir, or NULL
 * with @error (storage trouble).  Settings start at psql's defaults. */
TuskShell *tusk_shell_new (const char *data_dir, GError **error);

/* Disconnects (releasing the session connection) and frees the state. */
void tusk_shell_free (TuskShell *shell);

/**
 * tusk_shell_connect:
 * @target: (nullable): a saved connection's name, a postgres:// URI or a
 *   conninfo string; NULL for libpq's defaults and the PG* variables, as
 *   psql
 * @overrides: (nullable): -h -p -U -d
 *
 * Resolves @target, connects (password from the keychain, else libpq's
 * PGPASSWORD / ~/.pgpass; else, when interactive, asked without echo and
 * offered to be saved for a saved connection) and takes the session
 * connection.  A previous connection is closed only once the new one works
 * (\c keeps the old one on failure).
 */
gboolean tusk_shell_connect (TuskShell *shell, const char *target,
                             const TuskTargetOverrides *overrides,
                             GError **error);

/* A short name for prompts and messages: the saved connection's name, else
 * the database name. */
const char *tusk_shell_get_display_name (TuskShell *shell);

/**
 * tusk_shell_run_sql:
 * @text: one or more statements (psql's splitting); a backslash command
 *   in it runs through tusk_meta_run() in its place (so -c '\dt', -f and
 *   \i files behave as in psql)
 * @source: (nullable): a file name for error messages ("-f script.sql")
 *
 * Runs each statement in order on the session connection, streaming its
 * rows to shell->out in the current format, notices to stderr, errors with
 * tusk_print_error(); stops at the first error.  Iterates the main context
 * while waiting; tusk_shell_cancel() (Ctrl-C) cancels the running
 * statement.  History is recorded for saved connections.  When
 * interactive and writing to the terminal, output taller than the terminal
 * goes through $PAGER (default "less -SFX"), and statements running over
 * 1 s show an elapsed-time indicator on stderr (erased when they end).
 * Read-only connections refuse writes with a message saying so.  While
 * it waits, SIGINT runs tusk_shell_cancel(); SIGINT's previous
 * disposition is restored afterwards (so is SIGPIPE's after the pager).
 * A \q in @text sets shell->quit and stops there (returning TRUE).
 *
 * Returns: TRUE when every statement succeeded.
 */
gboolean tusk_shell_run_sql (TuskShell *shell, const char *text,
                             const char *source);

/* Runs one internal statement (the catalog queries behind \d, \dt, conn
 * test …) on the session connection and returns (transfer full) its whole
 * result, or NULL with @error.  Not recorded in history; iterates the main
 * context; Ctrl-C cancels it. */
TuskQueryResult *tusk_shell_query (TuskShell *shell, const char *sql,
                                   GError **error);

/* Prints a materialized @result in the shell's format to shell->out (the
 * pager when interactive), under @title (nullable; psql's "List of
 * relations" line, centered in table format).  FALSE when writing failed
 * (after printing why). */
gboolean tusk_shell_print_result (TuskShell *shell, const char *title,
                                  const TuskQueryResult *result);

/**
 * tusk_shell_run_stream:
 * @in: a script, read line by line to its end (-f FILE, -f -, stdin that is
 *   not a terminal, \i)
 * @source: (nullable): its name for error messages ("s.sql", "<stdin>")
 *
 * tusk_shell_run_sql() on a stream: statements run as soon as their last
 * line has been read, so a script of any size needs no more memory than
 * its longest statement.  Stops at the first error (printed "tusk:SOURCE:
 * LINE: ERROR:  …" as psql prints it) and at \q.
 *
 * Returns: TRUE when every statement succeeded and @in was read to its end.
 */
gboolean tusk_shell_run_stream (TuskShell *shell, FILE *in, const char *source);

/* Cancels the running statement, if any (async-signal context excluded:
 * call from a main-context source such as g_unix_signal_add()). */
void tusk_shell_cancel (TuskShell *shell);

/* Points output at @path (\o FILE), or back at stdout when NULL; FALSE with
 * @error when the file cannot be opened (the old output stays). */
gboolean tusk_shell_set_output (TuskShell *shell, const char *path,
                                GError **error);

/* Prints @error with tusk_print_error() in the shell's format to stderr. */
void tusk_shell_print_error (TuskShell *shell, const GError *error,
                             const char *sql);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskShell, tusk_shell_free)

G_END_DECLS
