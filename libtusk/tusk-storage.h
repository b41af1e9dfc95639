/* tusk-storage.h: LocalStorage, the SQLite database in {data_dir}/tusk.db
 * that keeps everything a person saves (research §3, data model
 * "LocalStorage", "SQLite Schema").
 *
 * Reads run on the calling thread through a read-only connection of that
 * thread's own; every write goes through one writer thread per database
 * file.  The repositories (tusk-*-repo.h) are the API; this header opens,
 * reports and closes.
 *
 * Thread rules: a TuskStorage is shared by every thread; all functions may be
 * called from any thread.  tusk_storage_close() is called once, by its
 * owner, after every other thread has stopped using it.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TuskStorage TuskStorage;

/* Opens (creating if needed, with its directory) {data_dir}/tusk.db, mode
 * 0600, applies the pragmas, runs `PRAGMA quick_check` and migrates the
 * schema; blocks on the file system (and up to the 5 s busy timeout while
 * another process holds the write lock).  A damaged file (not a database,
 * truncated, failing quick_check, or a directory in its place) is moved
 * aside with its -wal and -shm as tusk.db.corrupt-YYYYMMDD-HHMMSS[-N] and
 * replaced by a fresh one; when no usable file can be had (unwritable
 * directory, I/O error, locked) an in-memory database is used.  Both are
 * reported by tusk_storage_was_reset(), not as errors.  Opening a file that
 * is already open in this process shares its writer thread.
 * Fails (NULL, TUSK_ERROR_STORAGE) only when an applied migration step
 * differs from the program's (the file is left untouched: not changed, not
 * moved), or when not even an in-memory database or the writer thread can
 * be had.  Returns (transfer full): close with tusk_storage_close(). */
TuskStorage *tusk_storage_open (const char *data_dir, GError **error);

/* Commits every write submitted before the call, closes the read
 * connections of every thread, stops the writer thread unless another
 * storage on the same file still uses it, and frees @storage.  Blocks.
 * NULL is ignored. */
void tusk_storage_close (TuskStorage *storage);

/* TRUE when opening lost the earlier data (recovered or in memory); the
 * message (transfer none) says what happened and where the old file went,
 * for the front end to show; NULL otherwise. */
gboolean tusk_storage_was_reset (TuskStorage *storage);
const char *tusk_storage_get_reset_message (TuskStorage *storage);

/* TRUE when the database lives in memory only (nothing will survive). */
gboolean tusk_storage_is_in_memory (TuskStorage *storage);

/* Returns (transfer none) the database file's path, or NULL in memory. */
const char *tusk_storage_get_path (TuskStorage *storage);

/* Blocks until every write submitted before the call has committed (the
 * queued history entries of tusk_history_repo_add() included), so that a
 * read afterwards sees them.  Any thread except the storage's writer. */
void tusk_storage_flush (TuskStorage *storage);

G_END_DECLS
