/* tusk-script.h: running a script statement by statement (issue 6 item 5).
 *
 * The script is split as psql -f splits it (tusk-sql-split.h) and every
 * statement runs on one connection, in order, so that SET, BEGIN … COMMIT
 * and temporary tables carry from one statement to the next.  Backslash
 * commands and COPY data are the front end's business: they are returned
 * as skipped steps, never sent.
 *
 * Thread rules: tusk_script_run_sync() blocks (network); call it on a
 * worker.  A TuskScriptStep is plain data with a single owner.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-pool.h"
#include "tusk-query.h"
#include "tusk-sql-split.h"

G_BEGIN_DECLS

/**
 * TuskScriptStep:
 *
 * One piece of the script and what became of it.  Free with
 * tusk_script_step_free() (the array from tusk_script_run_sync() does).
 */
typedef struct
{
  TuskSqlPiece *piece;     /* owned */
  gboolean skipped;        /* a backslash command, COPY data or an empty
                              statement: not sent */
  TuskQueryResult *result; /* nullable: set when the statement succeeded */
  GError *error;           /* nullable: set when it failed */
  int error_line;          /* where in the script the error points (the
                              server's position, else the statement's
                              start); 0 without an error */
  int error_column;
} TuskScriptStep;

void tusk_script_step_free (TuskScriptStep *step);

/**
 * tusk_script_run_sync:
 * @pool: where to take the one connection the script runs on
 * @script: the script's text (NUL-terminated)
 * @options: (nullable): passed to every statement (history, registry,
 *   schema cache, notices); its conn, if set, is used instead of acquiring
 * @stop_on_error: stop at the first failing statement (psql's
 *   ON_ERROR_STOP; the default a front end should use)
 * @cancellable: (nullable): cancels the statement running and stops
 * @error: set to a copy of the first statement's error, if any failed
 *
 * Returns: (transfer full): the steps in script order, up to the failing
 *   one when @stop_on_error; free with g_ptr_array_unref().  Never NULL:
 *   when acquiring the connection fails, the array is empty and @error set.
 */
GPtrArray *tusk_script_run_sync (TuskPool *pool, const char *script,
                                 const TuskQueryOptions *options,
                                 gboolean stop_on_error,
                                 GCancellable *cancellable, GError **error);

G_END_DECLS
