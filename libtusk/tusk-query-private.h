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

G_END_DECLS
