/* tusk-script.c: a script, statement by statement, on one connection. */
#define G_LOG_DOMAIN "tusk-script"

#include "tusk-script.h"

#include "tusk-error.h"
#include "tusk-log.h"

void
tusk_script_step_free (TuskScriptStep *step)
{
  if (step == NULL)
    return;
  tusk_sql_piece_free (step->piece);
  tusk_query_result_free (step->result);
  g_clear_error (&step->error);
  g_free (step);
}

/* Runs one statement piece into @step. */
static void
run_piece (TuskPool *pool, TuskScriptStep *step,
           const TuskQueryOptions *options, GCancellable *cancellable)
{
  const TuskSqlPiece *piece = step->piece;

  step->result = tusk_query_execute_sync (pool, piece->text, options,
                                          cancellable, &step->error);
  if (step->error == NULL)
    return;

  int position = tusk_error_get_position (step->error);
  if (position > 0)
    tusk_sql_piece_locate (piece, position, &step->error_line,
                           &step->error_column);
  else
    {
      step->error_line = piece->line;
      step->error_column = piece->column;
    }
}

GPtrArray *
tusk_script_run_sync (TuskPool *pool, const char *script,
                      const TuskQueryOptions *options, gboolean stop_on_error,
                      GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (pool != NULL && script != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  GPtrArray *steps
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_script_step_free);
  TuskQueryOptions run_options;
  if (options)
    run_options = *options;
  else
    tusk_query_options_init (&run_options);

  /* One connection for the whole script, unless the caller lent one. */
  TuskPoolConn *conn = NULL;
  if (run_options.conn == NULL)
    {
      conn = tusk_pool_acquire_sync (pool, cancellable, error);
      if (conn == NULL)
        return steps;
      run_options.conn = conn;
    }

  g_autoptr (GPtrArray) pieces = tusk_sql_split (script, -1);
  const GError *first_error = NULL;
  for (guint i = 0; i < pieces->len; i++)
    {
      TuskScriptStep *step = g_new0 (TuskScriptStep, 1);
      step->piece = tusk_sql_piece_copy (pieces->pdata[i]);
      g_ptr_array_add (steps, step);

      step->skipped
          = step->piece->kind != TUSK_SQL_STATEMENT || step->piece->empty;
      if (step->skipped)
        {
          if (step->piece->kind == TUSK_SQL_META)
            tusk_debug ("script: skipped the front-end command %s",
                        step->piece->text);
          continue;
        }

      run_piece (pool, step, &run_options, cancellable);
      if (step->error && first_error == NULL)
        first_error = step->error;
      if (step->error
          && (stop_on_error || g_cancellable_is_cancelled (cancellable)))
        break;
    }

  if (conn)
    tusk_pool_release (conn);
  if (first_error)
    g_propagate_error (error, g_error_copy (first_error));
  return steps;
}
