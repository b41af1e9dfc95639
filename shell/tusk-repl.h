/* tusk-repl.h: the interactive shell — line editing (libedit) with
 * persistent history, multi-line statements, the prompt, Ctrl-C, the
 * pager and the elapsed-time indicator.
 *
 * Thread rules: main thread only.
 */
#pragma once

#include "tusk-shell.h"

G_BEGIN_DECLS

/* Reads and runs statements and backslash commands from the terminal until
 * \q or end of input; returns the exit code (TUSK_EXIT_OK after \q). */
int tusk_repl_run (TuskShell *shell);

G_END_DECLS
