/* tusk-storage-private.h: what the repositories use of the storage core.
 *
 * Reads: tusk_storage_reader() hands the calling thread its own read-only
 * connection (opened on first use, closed when the thread exits or the
 * storage closes); a writing statement on it fails.
 *
 * Writes: a TuskStorageWriteFunc runs on the writer thread inside one
 * transaction (BEGIN IMMEDIATE … COMMIT; ROLLBACK when it returns FALSE).
 * Three ways to submit one, all taking ownership of @data (freed with
 * @destroy on the writer thread after the function ran, or when it could
 * not run):
 *   _sync   blocks the caller until committed;
 *   _async  returns at once, the callback runs on the caller's
 *           thread-default main context after the commit;
 *   _queue  fire-and-forget (errors are logged): for history, whose add
 *           must cost the caller < 50 µs.
 */
#pragma once

#include <sqlite3.h>

#include "tusk-storage.h"

G_BEGIN_DECLS

/* Returns (transfer none) the calling thread's read-only connection. */
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

G_END_DECLS
