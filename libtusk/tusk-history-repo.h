/* tusk-history-repo.h: the query history (table `query_history`).
 *
 * One store for every front end: each statement run is recorded with its
 * connection, time, duration, row count and error.  Adding is queued to the
 * writer thread and costs the caller a validation and a copy (< 50 µs); the
 * history is kept to a limit (TUSK_HISTORY_DEFAULT_LIMIT entries unless
 * tusk_history_repo_set_limit() says otherwise), pruned on the writer thread
 * once every TUSK_HISTORY_PRUNE_EVERY adds, so it may exceed the limit by
 * fewer than that many entries between prunes.  Deleting a connection
 * deletes its history (ON DELETE CASCADE).  Passwords typed as SQL are
 * hidden before an entry is stored (tusk_history_redact_sql(), on the
 * writer thread).
 *
 * Order: "newest first" is executed_at descending, then id descending (ids
 * grow with every add, so entries of the same second keep their order).
 *
 * Thread rules: any thread.  Reads run on the calling thread; writes other
 * than tusk_history_repo_add() block until committed.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-storage.h"

G_BEGIN_DECLS

#define TUSK_HISTORY_DEFAULT_LIMIT 10000
#define TUSK_HISTORY_PRUNE_EVERY   100

/**
 * TuskHistoryEntry:
 *
 * One executed statement (data model "QueryHistoryEntry").  Plain data;
 * every string is owned by the entry; free with tusk_history_entry_free().
 * A value: any number of threads may read one that none modifies.
 */
typedef struct
{
  gint64 id;                /* assigned by the storage; 0 before adding */
  char *connection_id;      /* required: a saved connection's id */
  char *sql;                /* required, not blank */
  gint64 execution_time_ms; /* -1 when unknown */
  gint64 row_count;         /* rows returned or affected; -1 when unknown */
  char *error_message;      /* nullable: the error, when it failed */
  /* UTC "YYYY-MM-DD HH:MM:SS".  Filled in when loading; when adding, NULL
   * means now (the usual case) and a value is stored as given. */
  char *executed_at;
} TuskHistoryEntry;

/* Returns (transfer full) an entry for @sql run on @connection_id (both
 * copied), with unknown time and row count; free with
 * tusk_history_entry_free(). */
TuskHistoryEntry *tusk_history_entry_new (const char *connection_id,
                                          const char *sql);
TuskHistoryEntry *tusk_history_entry_copy (const TuskHistoryEntry *entry);
void tusk_history_entry_free (TuskHistoryEntry *entry);

/* Checks @entry against the data model: connection_id required, sql not
 * empty nor only white space, execution_time_ms and row_count >= -1,
 * executed_at NULL or "YYYY-MM-DD HH:MM:SS".  FALSE with one
 * TUSK_ERROR_VALIDATION naming each bad field.  That the connection exists
 * is checked when the entry is written. */
gboolean tusk_history_entry_validate (const TuskHistoryEntry *entry,
                                      GError **error);

/**
 * tusk_history_redact_sql:
 * @sql: (transfer none): SQL as typed; any bytes
 *
 * Returns (transfer full) @sql with the secrets a person may type as SQL
 * replaced, everything else byte for byte:
 *
 * - the string after the key word PASSWORD becomes '***': `ALTER ROLE` /
 *   `CREATE ROLE|USER|GROUP … [ENCRYPTED] PASSWORD '…'`, `ALTER USER`, and
 *   `OPTIONS (password '…')` of user mappings and servers.  Any form of
 *   string counts ('…', E'…', U&'…', N'…', $tag$…$tag$, and '…' continued on
 *   the next line); key words in any case; comments between the key word
 *   and the string are kept; `PASSWORD NULL` and a column named password
 *   (`password = '…'`) are left alone.  A string that does not end runs to
 *   the end of @sql, and a backslash in it is read both ways
 *   (standard_conforming_strings on and off): the longer reading is hidden.
 * - inside any string, the value of a conninfo `password=…` and the
 *   password of a URI (`scheme://user:…@host`) become *** (CREATE
 *   SUBSCRIPTION … CONNECTION, dblink, foreign servers); elsewhere, URI
 *   passwords.
 * - in a comment (a statement commented out), the same: PASSWORD and the
 *   string after it, conninfo values, URI passwords.
 * - a backslash command (text starting with '\') is not SQL: conninfo
 *   values and URI passwords anywhere in it (`\c postgresql://me:***@db`).
 *
 * Redacting twice changes nothing more; text without "password" or "://"
 * (ASCII case ignored) comes back unchanged.  O(length of @sql): about
 * 0.1 ns a byte without those words, a few ns a byte with them.  What it
 * cannot recognise (a password in a column value, in a psql variable) is
 * kept as typed.
 *
 * tusk_history_repo_add() applies it to every entry it stores; front ends
 * apply it to their own histories (the shell's libedit file).  Any thread.
 */
char *tusk_history_redact_sql (const char *sql);

/* Returns (transfer full) @message (an error about @sql: the server may
 * quote the statement, as in `unterminated quoted string at or near
 * "'…"`) with every text that tusk_history_redact_sql (@sql) hides replaced
 * by ***.  For what is written down: logs, stored errors.  Any thread. */
char *tusk_history_redact_message (const char *sql, const char *message);

/* Validates @entry (transfer none; copied) and queues it: returns at once,
 * without waiting for the writer.  What is stored is redacted: the SQL by
 * tusk_history_redact_sql(), and the error message with every secret that
 * hid replaced by *** (a server error may quote the statement).  A
 * validation error is returned here; a failure on the writer (the
 * connection was deleted meanwhile, a full disk) is logged and the entry
 * dropped.  tusk_storage_flush() waits for it. */
gboolean tusk_history_repo_add (TuskStorage *storage,
                                const TuskHistoryEntry *entry, GError **error);

/* The same with a completion: the callback runs on the caller's
 * thread-default main context once the entry is committed (or refused:
 * TUSK_ERROR_VALIDATION when its connection is not saved).  _finish returns
 * the new entry's id, or -1 with an error. */
void tusk_history_repo_add_async (TuskStorage *storage,
                                  const TuskHistoryEntry *entry,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
gint64 tusk_history_repo_add_finish (TuskStorage *storage, GAsyncResult *result,
                                     GError **error);

/* Returns (transfer full) the newest entries, skipping @offset (>= 0) and
 * returning at most @limit (-1: all), of @connection_id (nullable: of every
 * connection): a GPtrArray of TuskHistoryEntry * freeing its elements with
 * tusk_history_entry_free().  NULL only with an error. */
GPtrArray *tusk_history_repo_list (TuskStorage *storage,
                                   const char *connection_id, int limit,
                                   int offset, GError **error);

/* As tusk_history_repo_list(), keeping the entries whose SQL contains
 * @text: a plain substring (% and _ are literal), case-insensitive for
 * ASCII letters (SQLite's LIKE; other letters match exactly).  An empty
 * @text matches every entry. */
GPtrArray *tusk_history_repo_search (TuskStorage *storage, const char *text,
                                     const char *connection_id, int limit,
                                     int offset, GError **error);

/* Returns the number of entries of @connection_id (nullable: all), or -1
 * with an error. */
gint64 tusk_history_repo_count (TuskStorage *storage, const char *connection_id,
                                GError **error);

/* Deletes every entry of @connection_id (nullable: the whole history).
 * Blocks.  Returns the number deleted, or -1 with an error. */
gint64 tusk_history_repo_clear (TuskStorage *storage, const char *connection_id,
                                GError **error);

/* Keeps the @keep (>= 0) newest entries and deletes the rest.  Blocks.
 * Returns the number deleted, or -1 with an error. */
gint64 tusk_history_repo_prune_by_count (TuskStorage *storage, gint64 keep,
                                         GError **error);

/* Deletes the entries executed more than @max_age (>= 0, microseconds)
 * before now.  Blocks.  Returns the number deleted, or -1 with an error. */
gint64 tusk_history_repo_prune_by_age (TuskStorage *storage, GTimeSpan max_age,
                                       GError **error);

/* The most entries the history keeps: stored in ui_state under
 * "history.max_entries" (so it survives restarts and travels with an
 * export); 0 means no limit.  _set (@limit >= 0) blocks and prunes to the
 * new limit at once; _get returns TUSK_HISTORY_DEFAULT_LIMIT when unset (or
 * the stored value is not a non-negative integer), -1 with an error. */
gboolean tusk_history_repo_set_limit (TuskStorage *storage, gint64 limit,
                                      GError **error);
gint64 tusk_history_repo_get_limit (TuskStorage *storage, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskHistoryEntry, tusk_history_entry_free)

G_END_DECLS
