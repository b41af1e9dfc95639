/* tusk-query-private.h: what the tests and benchmarks of the query module
 * look at inside it.  Not installed.
 */
#pragma once

#include "tusk-query.h"

G_BEGIN_DECLS

/* Returns (transfer full) (nullable) the name format_type (@oid, @typmod)
 * gives a built-in type, computed without the server, or NULL when the
 * server must be asked (user types, interval with fields).  Any thread. */
char *tusk_query_builtin_type_name (guint32 oid, int typmod);

/* The number of streamed batches posted to the consumer and not yet
 * consumed, now and at the most.  Any thread. */
guint tusk_query_handle_get_batches_in_flight (TuskQueryHandle *handle);
guint tusk_query_handle_get_batches_in_flight_peak (TuskQueryHandle *handle);

/* Rows of the running statement read so far, as of the last batch (on a
 * worker) or the last read (on the caller's thread).  Any thread. */
guint tusk_query_handle_get_rows_read (TuskQueryHandle *handle);

/* What the fast path did, counted since the process started.  Any
 * thread. */
typedef struct
{
  guint started;     /* executions sent from the caller's thread */
  guint finished;    /* ended there, result and all */
  guint handed_over; /* handed to a worker mid-result (rows, a COPY) */
  guint looked_up;   /* handed to a worker for type names from the
                        catalog */
} TuskQueryFastStats;

void tusk_query_get_fast_stats (TuskQueryFastStats *stats);

/* Turns the fast path of tusk_query_execute_async () (reading a small
 * result on the caller's thread, tusk-query.c) on (the default) or off, for
 * every later call in the process: for tests and benchmarks that measure or
 * exercise the worker path.  Any thread. */
void tusk_query_set_fast_path (gboolean enabled);

G_END_DECLS
