/* tusk-ui-state-repo.h: persistent UI state (table `ui_state`): a key
 * (window geometry, open tabs, a preference) mapped to a JSON value.
 *
 * Values are JSON texts, stored exactly as given once they pass two checks:
 * json-glib parses them (its message says where a syntax error is), and
 * SQLite's json_valid() accepts them, which refuses what json-glib lets
 * through but RFC 8259 does not (single quotes, comments, leading zeros,
 * a second value after the first).  Keys are free text; by convention dotted
 * ("window.main.geometry").  libtusk itself uses "history.max_entries"
 * (tusk-history-repo.h).
 *
 * Thread rules: any thread.  Reads run on the calling thread; _set and
 * _delete block until committed; _set_async calls back on the caller's
 * thread-default main context.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-storage.h"

G_BEGIN_DECLS

/* Stores @value_json (transfer none) under @key, replacing any earlier
 * value.  TUSK_ERROR_VALIDATION, nothing stored, when @key is empty or not
 * UTF-8, or @value_json is not one valid JSON value (an object, array,
 * string, number, true, false or null; white space around it is kept).
 * Blocks. */
gboolean tusk_ui_state_repo_set (TuskStorage *storage, const char *key,
                                 const char *value_json, GError **error);
void tusk_ui_state_repo_set_async (TuskStorage *storage, const char *key,
                                   const char *value_json,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
gboolean tusk_ui_state_repo_set_finish (TuskStorage *storage,
                                        GAsyncResult *result, GError **error);

/* Returns (transfer full) (nullable) the JSON text stored under @key; free
 * with g_free().  A missing key is not an error: NULL with @error unset
 * (nothing saved yet is the normal first run).  NULL with @error set only
 * when SQLite fails. */
char *tusk_ui_state_repo_get (TuskStorage *storage, const char *key,
                              GError **error);

/* Removes @key; removing a missing key succeeds (there is nothing to
 * restore either way).  Blocks. */
gboolean tusk_ui_state_repo_delete (TuskStorage *storage, const char *key,
                                    GError **error);

G_END_DECLS
