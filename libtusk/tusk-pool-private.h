/* tusk-pool-private.h: what the rest of libtusk (the query module) needs of
 * an acquired connection: its libpq handle, a way to cancel the statement it
 * runs, and a way to throw it away.
 *
 * Not installed; raw PGconn pointers never reach public headers.
 */
#pragma once

#include <libpq-fe.h>

#include "tusk-pool.h"

G_BEGIN_DECLS

/* Returns (transfer none) @conn's libpq connection, valid until @conn is
 * released or discarded.  Only @conn's owner uses it (libpq connections are
 * not thread-safe), and it must not PQfinish() it, change its blocking mode
 * for good, or leave a COPY unfinished: release it idle, in a transaction
 * (it will be rolled back) or broken (it will be replaced).  The pool's
 * notice receiver notices a FATAL that arrives while the connection is idle;
 * an owner that sets its own (PQsetNoticeReceiver(), to show NOTICEs)
 * restores the one it replaced before releasing. */
PGconn *tusk_pool_conn_get_pg (TuskPoolConn *conn);

/* Returns (transfer none) the pool @conn came from. */
TuskPool *tusk_pool_conn_get_pool (TuskPoolConn *conn);

/* Gives @conn (transfer full) back to be closed, never reused: for a
 * connection whose state the owner no longer trusts (a failed COPY, a
 * protocol error).  The slot is free for a new connection at once.  Never
 * blocks on the network; any thread. */
void tusk_pool_conn_discard (TuskPoolConn *conn);

/* Asks the server to cancel the statement @conn is running (PQcancel),
 * while its owner waits for the results on another thread.  Blocks: it
 * opens a separate connection to the server; call it on a worker, never on
 * the UI thread.  May be called from any thread while @conn is still held by
 * its owner (not yet released).  TRUE when the request was sent (the
 * statement may still finish first), FALSE with TUSK_ERROR_CONNECTION
 * otherwise. */
gboolean tusk_pool_conn_cancel (TuskPoolConn *conn, GError **error);

G_END_DECLS
