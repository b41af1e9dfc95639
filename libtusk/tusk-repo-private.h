/* tusk-repo-private.h: small SQLite helpers shared by the repositories
 * (tusk-*-repo.c) and export/import (tusk-storage-export.c).
 *
 * Everything here is static inline: no state, no source file.  Each helper
 * may be called on any thread with a connection that thread may use (its
 * reader, or the writer's inside a TuskStorageWriteFunc).
 */
#pragma once

#include <stdarg.h>
#include <string.h>

#include <sqlite3.h>

#include "tusk-connection-config.h"
#include "tusk-error-private.h"
#include "tusk-storage-private.h"

G_BEGIN_DECLS

static inline void
tusk_repo_stmt_cleanup (sqlite3_stmt **stmt)
{
  if (*stmt != NULL)
    sqlite3_finalize (*stmt);
}

/* A statement finalized when it goes out of scope: `TUSK_REPO_STMT s =
 * tusk_repo_prepare(…);` (the g_autoptr of sqlite3_stmt, which GLib lacks). */
#define TUSK_REPO_STMT                                                         \
  __attribute__ ((cleanup (tusk_repo_stmt_cleanup))) sqlite3_stmt *

/* Returns a prepared statement, or NULL with TUSK_ERROR_STORAGE saying
 * @what was being done. */
static inline sqlite3_stmt *
tusk_repo_prepare (sqlite3 *db, const char *sql, const char *what,
                   GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK)
    {
      g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
      sqlite3_finalize (stmt);
      return NULL;
    }
  return stmt;
}

/* Binds @text (nullable: SQL NULL).  The text must outlive the statement's
 * next step. */
static inline void
tusk_repo_bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
  if (text == NULL)
    sqlite3_bind_null (stmt, index);
  else
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
}

/* Returns (transfer full) (nullable) a copy of a text column. */
static inline char *
tusk_repo_column_dup (sqlite3_stmt *stmt, int column)
{
  const unsigned char *text = sqlite3_column_text (stmt, column);
  return text != NULL ? g_strdup ((const char *)text) : NULL;
}

/* Steps a statement that returns no row; FALSE with TUSK_ERROR_STORAGE
 * otherwise. */
/* Replaces *@field (freed) with @value (transfer full). */
static inline void
tusk_repo_replace_string (char **field, char *value)
{
  g_free (*field);
  *field = value;
}

static inline gboolean
tusk_repo_step_done (sqlite3 *db, sqlite3_stmt *stmt, const char *what,
                     GError **error)
{
  int rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    return TRUE;
  g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
  return FALSE;
}

/* Reports the failure of a sqlite3_step() that returned @rc (neither
 * SQLITE_ROW nor SQLITE_DONE). */
static inline void
tusk_repo_step_error (sqlite3 *db, int rc, const char *what, GError **error)
{
  g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
}

/* TRUE when @text is valid UTF-8 of @min to @max characters (NULL counts
 * as 0 characters). */
static inline gboolean
tusk_repo_length_ok (const char *text, glong min, glong max)
{
  if (text == NULL)
    return min <= 0;
  if (!g_utf8_validate (text, -1, NULL))
    return FALSE;
  glong n = g_utf8_strlen (text, -1);
  return n >= min && n <= max;
}

/* Appends one "field: rule" to a validation message, "; "-separated. */
static inline void tusk_repo_problem (GString *problems, const char *format,
                                      ...) G_GNUC_PRINTF (2, 3);

static inline void
tusk_repo_problem (GString *problems, const char *format, ...)
{
  va_list args;
  if (problems->len > 0)
    g_string_append (problems, "; ");
  va_start (args, format);
  g_string_append_vprintf (problems, format, args);
  va_end (args);
}

/* Turns collected problems into one TUSK_ERROR_VALIDATION ("What: a; b");
 * returns FALSE when there were any. */
static inline gboolean
tusk_repo_check_problems (GString *problems, const char *what, GError **error)
{
  if (problems->len == 0)
    return TRUE;
  tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL, "%s: %s", what,
                  problems->str);
  return FALSE;
}

/* TRUE when @text is a timestamp as SQLite's CURRENT_TIMESTAMP writes it:
 * "YYYY-MM-DD HH:MM:SS" (UTC), optionally with ".SSS". */
static inline gboolean
tusk_repo_timestamp_ok (const char *text)
{
  if (text == NULL || strlen (text) < 19 || text[10] != ' ')
    return FALSE;
  g_autofree char *iso = g_strdup_printf ("%.10sT%sZ", text, text + 11);
  g_autoptr (GDateTime) parsed = g_date_time_new_from_iso8601 (iso, NULL);
  return parsed != NULL;
}

/* Decodes the seven ssh_tunnels columns (tunnel_id, name, host, port,
 * username, auth_method, key_path) that start at @first_column of the
 * current row; returns (transfer full) the tunnel.  In tusk-tunnel-repo.c;
 * the connections repository uses it for its joined tunnel. */
TuskSshTunnelConfig *tusk_tunnel_repo_decode_row (sqlite3_stmt *stmt,
                                                  int first_column);

G_END_DECLS
