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

/**
 * TuskPoolRoute:
 *
 * How a pool reaches its server when not directly, e.g. through an SSH
 * tunnel: libpq connects to @hostaddr port @port, while the config's host
 * stays the name that TLS verify-full checks and ~/.pgpass matches (or
 * @host, when set).  Before opening each connection (the first one
 * included) the pool calls @prepare on the opening thread; it may block
 * (re-establishing a dropped tunnel) and, by failing, fails the open (and so
 * the acquire) with its error.
 */
typedef struct
{
  const char *hostaddr; /* libpq's hostaddr; copied */
  int port;             /* 1-65535 */
  const char *host;     /* nullable: replaces the config's host for libpq
                           (a socket directory reached over TCP); copied */
  gboolean (*prepare) (gpointer data, GCancellable *cancellable,
                       GError **error); /* nullable; any thread; blocks */
  gpointer data;
  GDestroyNotify destroy; /* nullable: frees @data with the pool, or before
                             tusk_pool_new_routed_sync () returns NULL */
} TuskPoolRoute;

/* tusk_pool_new_sync () through @route (nullable: directly); @route's data
 * belongs to the pool from the call on. */
TuskPool *tusk_pool_new_routed_sync (const TuskConnectionConfig *config,
                                     const char *password,
                                     const TuskPoolOptions *options,
                                     const TuskPoolRoute *route,
                                     GCancellable *cancellable, GError **error);

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

/* Whether the socket @fd is known to have had nothing to read since its
 * connection was last released (its reader watched it since); see
 * tusk_pool_try_acquire(). */
typedef gboolean (*TuskPoolQuietFunc) (int fd, gpointer data);

/* Hands out an idle connection that is clean now, or NULL when there is
 * none (all in use, none open yet, the pool closed, or the one found needs
 * recycling or replacing, which blocks).  What the server sent while the
 * connection sat idle is read first, without waiting (one poll () with a
 * zero timeout), unless @quiet (nullable) says its socket had nothing to
 * read.  Never waits and never blocks on the network: any thread,
 * including the UI thread.  Give the connection back with
 * tusk_pool_release(). */
TuskPoolConn *tusk_pool_try_acquire (TuskPool *pool, TuskPoolQuietFunc quiet,
                                     gpointer quiet_data);

G_END_DECLS
