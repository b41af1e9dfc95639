/* tusk-storage-private.h: what the repositories use of the storage core.
 *
 * Reads: tusk_storage_reader() hands the calling thread its own read-only
 * connection (opened on first use, closed when the thread exits or the
 * storage closes); a writing statement on it fails (SQLITE_READONLY).  Reset
 * or finalize every statement before returning: a statement left stepping
 * holds a read transaction open, which keeps the WAL from being checkpointed.
 *
 * Writes: a TuskStorageWriteFunc runs on the writer thread inside one
 * transaction (BEGIN IMMEDIATE … COMMIT; ROLLBACK when it returns FALSE,
 * which it does with @error set).  It must finalize its statements and must
 * not submit another write and wait for it (the writer would wait on
 * itself).  Three ways to submit one, all taking ownership of @data (freed
 * with @destroy, nullable, on the writer thread after the function ran, or
 * when it could not run):
 *   _sync   blocks the caller until committed or rolled back;
 *   _async  returns at once, the callback runs on the caller's
 *           thread-default main context after the commit, never from inside
 *           the _async call; a @cancellable cancelled before the write
 *           starts skips it (TUSK_ERROR_QUERY_CANCELLED); once started, the
 *           write completes and reports its own result;
 *   _queue  fire-and-forget (errors are logged): for history, whose add
 *           must cost the caller < 50 µs.
 * Writes run one at a time, in the order they were submitted, whichever of
 * the three forms and whichever thread submitted them.
 *
 * Any thread may call every function here while the storage is open.
 */
#pragma once

#include <sqlite3.h>

#include "tusk-storage.h"

G_BEGIN_DECLS

/* Returns (transfer none) the calling thread's read-only connection, or NULL
 * with TUSK_ERROR_STORAGE if it cannot be opened. */
sqlite3 *tusk_storage_reader (TuskStorage *storage, GError **error);

typedef gboolean (*TuskStorageWriteFunc) (sqlite3 *db, gpointer data,
                                          GError **error);

gboolean tusk_storage_write_sync (TuskStorage *storage,
                                  TuskStorageWriteFunc func, gpointer data,
                                  GDestroyNotify destroy, GError **error);
void tusk_storage_write_async (TuskStorage *storage, TuskStorageWriteFunc func,
                               gpointer data, GDestroyNotify destroy,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data);
gboolean tusk_storage_write_finish (TuskStorage *storage, GAsyncResult *result,
                                    GError **error);
void tusk_storage_write_queue (TuskStorage *storage, TuskStorageWriteFunc func,
                               gpointer data, GDestroyNotify destroy);

/* Blocks until every write submitted before the call has committed. */
void tusk_storage_flush (TuskStorage *storage);

/* Applies the migration steps of @domain to @db (the sqlez pattern):
 * @steps is a NULL-terminated array of SQL texts, each of which may hold
 * several statements; step i is recorded as (domain, i, text) in the
 * migrations table, which is created first if missing.  Steps already
 * recorded are not run again; a recorded step whose text differs from
 * @steps[i] is refused with TUSK_ERROR_STORAGE naming the domain and the
 * step.  Recorded steps beyond @steps (a newer program's) are left alone.
 *
 * Runs in one savepoint: on any failure nothing of this call remains.  When
 * @db is outside a transaction the call takes the write lock first
 * (BEGIN IMMEDIATE, waiting up to the busy timeout) and commits at the end,
 * so that processes migrating one file at once apply each step once; inside
 * a transaction (a TuskStorageWriteFunc) it only uses the savepoint.
 * Blocks.  Call it on the thread that owns @db. */
gboolean tusk_storage_migrate (sqlite3 *db, const char *domain,
                               const char *const *steps, GError **error);

G_END_DECLS
