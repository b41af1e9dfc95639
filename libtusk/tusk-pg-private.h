/* tusk-pg-private.h: opening one libpq connection, the way every part of
 * libtusk does it.
 *
 * Parameters reach libpq only as keyword/value arrays with expand_dbname
 * off, so no value is ever parsed as conninfo: a host "db password=x" is a
 * wrong host name, not an injected parameter.  Failures come back as
 * TUSK_ERROR with the SQLSTATE the server sent (the connection is opened
 * with PQERRORS_VERBOSE so that libpq keeps it in the message).
 */
#pragma once

#include <gio/gio.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

/* Opens a connection and waits for it; blocks the calling thread, so call it
 * on a worker, never on the UI thread.  @keywords and @values are parallel
 * NULL-terminated arrays (values may be NULL or "" for "not set"); libpq's
 * defaults (PG* variables, ~/.pgpass, pg_service.conf) apply to what they
 * do not set.  The attempt gives up after the "connect_timeout" value in
 * seconds (none when absent or 0), and when @cancellable (nullable) is
 * cancelled, with TUSK_ERROR_QUERY_CANCELLED.  Returns (transfer full) a
 * connection in CONNECTION_OK, to be freed with PQfinish(), or NULL with
 * @error set. */
PGconn *tusk_pg_connect (const char *const *keywords, const char *const *values,
                         GCancellable *cancellable, GError **error);

G_END_DECLS
