/* tusk-storage-export.h: everything a person saved, as one JSON document,
 * and back.
 *
 * The document holds the SSH tunnels, connections, saved queries and UI
 * state, with every stored field; never a password (none is stored) and
 * never the query history.  Its shape (version 1):
 *
 *   { "format": "tusk-export", "version": 1,
 *     "exported_at": "YYYY-MM-DD HH:MM:SS",
 *     "ssh_tunnels":   [ { "id", "name", "host", "port", "username",
 *                          "auth_method", "key_path", "created_at" } ],
 *     "connections":   [ { "id", "name", "host", "port", "database",
 *                          "username", "ssl_mode", "ssl_root_cert",
 *                          "ssl_cert", "ssl_key", "ssh_tunnel_id", "color",
 *                          "read_only", "connect_timeout_secs",
 *                          "statement_timeout_secs", "application_name",
 *                          "created_at", "updated_at",
 *                          "last_connected_at" } ],
 *     "saved_queries": [ { "id", "connection_id", "name", "description",
 *                          "sql", "folder_path", "created_at",
 *                          "updated_at" } ],
 *     "ui_state":      [ { "key", "value" (any JSON), "updated_at" } ] }
 *
 * Absent optional members take the defaults of the data model (null
 * statement_timeout_secs is the pool's default; absent timestamps are the
 * time of import); unknown members are ignored.
 *
 * Import checks the whole document first (JSON syntax, format, version,
 * every member's type, every entity's validation rules, unique ids, and
 * that every reference points to a tunnel or connection in the document or
 * already stored), then applies it in one writer transaction: on any error
 * nothing at all is changed.
 *
 * Conflicts: an imported tunnel or saved query conflicts with a stored one
 * of the same id; an imported connection with one of the same id or the
 * same name (names are unique, tusk-connection-repo.h); a UI state entry
 * with the same key.  The policy decides:
 *   SKIP     keep the stored item; references to the imported one now point
 *            to the stored one;
 *   REPLACE  overwrite the stored item's fields (it keeps its id, so
 *            history and references stay); a connection whose name would
 *            then clash with a third one is renamed as below;
 *   RENAME   store the imported item as a new one: a fresh id and the first
 *            free name of "X (2)", "X (3)", …; references in the document
 *            follow it.  UI state keys cannot be renamed (nothing would read
 *            them): RENAME keeps the stored value, as SKIP.
 *
 * Thread rules: any thread; every function blocks (export reads on the
 * calling thread in one read transaction; import runs on the writer).
 */
#pragma once

#include <gio/gio.h>

#include "tusk-storage.h"

G_BEGIN_DECLS

#define TUSK_EXPORT_FORMAT  "tusk-export"
#define TUSK_EXPORT_VERSION 1

typedef enum
{
  TUSK_IMPORT_SKIP,
  TUSK_IMPORT_REPLACE,
  TUSK_IMPORT_RENAME,
} TuskImportPolicy;

/* "skip", "replace", "rename". */
const char *tusk_import_policy_to_string (TuskImportPolicy policy);
gboolean tusk_import_policy_from_string (const char *text,
                                         TuskImportPolicy *policy);

/* What an import did with the items of one kind. */
typedef struct
{
  int added;    /* no conflict */
  int replaced; /* conflict, REPLACE */
  int renamed;  /* conflict, RENAME */
  int skipped;  /* conflict, SKIP (or RENAME of a UI state key) */
} TuskImportCounts;

typedef struct
{
  TuskImportCounts ssh_tunnels;
  TuskImportCounts connections;
  TuskImportCounts saved_queries;
  TuskImportCounts ui_state;
} TuskImportSummary;

/* Returns (transfer full) the export document of @storage, pretty-printed
 * JSON, items sorted by id (key for UI state); free with g_free().  NULL
 * with TUSK_ERROR_STORAGE when SQLite fails.  A UI state value that is not
 * valid JSON (edited by hand) is left out with a warning. */
char *tusk_storage_export_to_string (TuskStorage *storage, GError **error);

/* Writes the export document to @path atomically (a temporary file renamed
 * over it) with mode 0600.  FALSE with an error naming the path when it
 * cannot be written (the old file, if any, is then unchanged). */
gboolean tusk_storage_export_to_file (TuskStorage *storage, const char *path,
                                      GError **error);

/* Imports the document @text (@length bytes, or -1 when NUL-terminated)
 * with @policy.  @summary (optional, out) receives what was done.  FALSE
 * with TUSK_ERROR_VALIDATION for a malformed document, one of another
 * format or of a newer version ("made by a newer Tusk"), or one that breaks
 * a validation rule (the message names the item and the field);
 * TUSK_ERROR_STORAGE when SQLite fails.  On FALSE nothing was changed. */
gboolean tusk_storage_import_string (TuskStorage *storage, const char *text,
                                     gssize length, TuskImportPolicy policy,
                                     TuskImportSummary *summary,
                                     GError **error);

/* Reads @path and imports it as tusk_storage_import_string(). */
gboolean tusk_storage_import_file (TuskStorage *storage, const char *path,
                                   TuskImportPolicy policy,
                                   TuskImportSummary *summary, GError **error);

G_END_DECLS
