/* tusk-meta.h: backslash commands with psql's meanings — \q \? \c
 * \conninfo \d [NAME] \dt \dv \dm \df \di \dn \ds \dT \x \timing \format
 * \o \i \e \history \save \saved \run \refresh.
 *
 * Thread rules: main thread only.
 */
#pragma once

#include "tusk-shell.h"

G_BEGIN_DECLS

typedef enum
{
  TUSK_META_OK,     /* done (its output printed) */
  TUSK_META_FAILED, /* an error was printed; -f stops here */
  TUSK_META_QUIT,   /* \q */
} TuskMetaStatus;

/**
 * tusk_meta_run:
 * @line: one backslash command as the splitter returned it (starting
 *   with the backslash, arguments included, no newline)
 * @query_buffer: (nullable): the statement typed so far in the REPL, for
 *   \e (edited in place) and \save; NULL when running a file
 *
 * Runs @line on @shell.  An unknown command prints psql's "invalid
 * command \foo" with "Try \? for help." and fails.
 */
TuskMetaStatus tusk_meta_run (TuskShell *shell, const char *line,
                              GString *query_buffer);

G_END_DECLS
