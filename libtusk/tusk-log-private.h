/* tusk-log-private.h: hooks of the logging module for tests and benches.
 *
 * Not installed.  The hooks persist across tusk_log_init() and
 * tusk_log_shutdown(); a test resets them in its teardown.
 */
#pragma once

#include "tusk-log.h"

G_BEGIN_DECLS

/* How many daily files the log directory keeps, the current one included. */
#define TUSK_LOG_KEEP_FILES 14

/* Lines waiting for the writer beyond this many are dropped (and counted in
 * a warning) rather than let memory grow without bound. */
#define TUSK_LOG_MAX_PENDING 131072

/**
 * TuskLogClockFunc:
 * @user_data: the data given with the function
 *
 * Returns: (transfer full): the current time (any time zone).  Called with
 *   the queue lock held, from any thread that logs: it must not log.
 */
typedef GDateTime *(*TuskLogClockFunc) (gpointer user_data);

/**
 * tusk_log_set_clock_for_testing:
 * @now: (nullable): the clock that stamps each line; %NULL restores the real
 *   clock
 * @user_data: passed to @now; owned by the caller, must outlive its use
 *
 * Line timestamps decide the file a line goes to, so a test moves the clock
 * across midnight to see the rotation.
 */
void tusk_log_set_clock_for_testing (TuskLogClockFunc now, gpointer user_data);

/**
 * TuskLogConsoleFunc:
 * @line: one uncoloured line, ending with "\n"
 * @user_data: the data given with the function
 *
 * Receives the console lines, from the writer thread or (when logging is not
 * running) from the thread that logs.
 */
typedef void (*TuskLogConsoleFunc) (const char *line, gpointer user_data);

/**
 * tusk_log_set_console_func_for_testing:
 * @func: (nullable): where console lines go instead of stderr; %NULL
 *   restores stderr
 * @user_data: passed to @func; owned by the caller
 */
void tusk_log_set_console_func_for_testing (TuskLogConsoleFunc func,
                                            gpointer user_data);

/**
 * tusk_log_flush:
 *
 * Blocks until every line enqueued before the call is written to the console
 * and the file.  Returns at once when logging is not running or when called
 * from the writer thread.  Any thread.
 */
void tusk_log_flush (void);

/**
 * tusk_log_fd_wants_color:
 * @fd: a file descriptor
 *
 * Returns: whether console lines to @fd get colours: @fd is a terminal,
 *   NO_COLOR is unset or empty and TERM is not "dumb".
 */
gboolean tusk_log_fd_wants_color (int fd);

G_END_DECLS
