/* tusk-error-private.h: conversions into TUSK_ERROR at the boundaries.
 *
 * Each function turns a failure of one external library into a TUSK_ERROR
 * with a category and a hint; nothing above this layer sees a raw libpq,
 * SQLite, libsecret, libssh, json-glib or errno code.  Every function
 * returns a new GError (transfer full) and may be called from any thread
 * (the handle passed in must be one the calling thread may use).
 */
#pragma once

#include <libpq-fe.h>
#include <libssh/libssh.h>
#include <sqlite3.h>

#include "tusk-error.h"

G_BEGIN_DECLS

/* From a failed statement: @res is the PGRES_FATAL_ERROR result (nullable:
 * then @conn's error message is used).  @conn (nullable) tells a lost
 * connection from a statement error when the result has no SQLSTATE. */
GError *tusk_error_from_pg_result (const PGconn *conn, const PGresult *res);

/* From a connection attempt that failed (PQstatus() == CONNECTION_BAD).
 * Understands both the default and the PQERRORS_VERBOSE message forms; the
 * verbose form carries the SQLSTATE and is what tusk_pg_connect() asks for. */
GError *tusk_error_from_pg_conn (const PGconn *conn);

/* From a failed SQLite call: @rc is its result code, @db (nullable) the
 * handle whose message to use, @what says what Tusk was doing. */
GError *tusk_error_from_sqlite (sqlite3 *db, int rc, const char *what);

/* From a libsecret / D-Bus failure reported as @error. */
GError *tusk_error_from_secret (const GError *error, const char *what);

/* From a failed libssh call on @session. */
GError *tusk_error_from_ssh (ssh_session session, const char *what);

/* From a json-glib parser or reader failure. */
GError *tusk_error_from_json (const GError *error, const char *what);

/* From a failed system call: @errsv is its errno, @what names the action
 * and the path ("Could not create /tmp/x"). */
GError *tusk_error_from_errno (int errsv, const char *what);

G_END_DECLS
