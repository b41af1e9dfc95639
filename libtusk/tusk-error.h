/* tusk-error.h: the TUSK_ERROR domain, its PostgreSQL fields and ErrorInfo.
 *
 * Every runtime failure in libtusk is a GError in the TUSK_ERROR domain whose
 * code is one of the categories below.  Errors that came from PostgreSQL also
 * carry the server's detail, hint, 1-based statement position and SQLSTATE on
 * the GError itself (an extended error domain), read with the accessors
 * below; errors from anywhere else answer NULL / 0 for them.
 *
 * Thread rules: everything here is a pure function of its arguments and may
 * be called from any thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define TUSK_ERROR (tusk_error_quark ())

/**
 * TuskErrorCode:
 *
 * The error categories (data model "TuskError").  Each has a default hint
 * (tusk_error_code_hint()).
 */
typedef enum
{
  TUSK_ERROR_CONNECTION,
  TUSK_ERROR_AUTHENTICATION,
  TUSK_ERROR_SSL,
  TUSK_ERROR_SSH,
  TUSK_ERROR_QUERY,
  TUSK_ERROR_QUERY_CANCELLED,
  TUSK_ERROR_STORAGE,
  TUSK_ERROR_KEYRING,
  TUSK_ERROR_POOL_TIMEOUT,
  TUSK_ERROR_VALIDATION,
  TUSK_ERROR_NOT_FOUND,
  TUSK_ERROR_INTERNAL,
} TuskErrorCode;

#define TUSK_ERROR_N_CODES (TUSK_ERROR_INTERNAL + 1)

GQuark tusk_error_quark (void);

/* The machine name of a category ("connection", "query-cancelled", …). */
const char *tusk_error_code_name (TuskErrorCode code);

/* The display name of a category ("Connection Error", …). */
const char *tusk_error_code_title (TuskErrorCode code);

/* The category's default hint; never NULL (SC-008). */
const char *tusk_error_code_hint (TuskErrorCode code);

/* Returns (transfer full) a new TUSK_ERROR with the given fields.  Any of
 * @detail, @hint and @sqlstate may be NULL; @position is 1-based, 0 for
 * none.  When @hint is NULL and @sqlstate has an entry in the SQLSTATE table,
 * that entry's hint is used. */
GError *tusk_error_new_full (TuskErrorCode code, const char *message,
                             const char *detail, const char *hint, int position,
                             const char *sqlstate);

/* Like g_set_error() for TUSK_ERROR, with @hint (nullable) attached. */
void tusk_set_error (GError **error, TuskErrorCode code, const char *hint,
                     const char *format, ...) G_GNUC_PRINTF (4, 5);

/* Accessors for the PostgreSQL fields.  They return borrowed strings owned
 * by @error (nullable), or 0 for no position, for any GError including ones
 * from other domains. */
const char *tusk_error_get_detail (const GError *error);
const char *tusk_error_get_hint (const GError *error);
int tusk_error_get_position (const GError *error);
const char *tusk_error_get_sqlstate (const GError *error);

/* Attach a hint to @error if it is a TUSK_ERROR, replacing any other. */
void tusk_error_set_hint (GError *error, const char *hint);

/**
 * TuskSqlstateInfo:
 *
 * What the SQLSTATE table knows of one code (research §5).
 */
typedef struct
{
  const char *sqlstate; /* five characters, or a two-character class */
  TuskErrorCode code;
  const char *hint;
} TuskSqlstateInfo;

/* Looks @sqlstate up: an exact entry first, then its class ("08", "42", …).
 * Returns a pointer into a static table, or NULL for an unknown code. */
const TuskSqlstateInfo *tusk_sqlstate_lookup (const char *sqlstate);

/**
 * TuskErrorInfo:
 *
 * What a front end shows for an error (data model "ErrorInfo").  Plain data;
 * every string is owned by the struct; free with tusk_error_info_free().
 */
typedef struct
{
  TuskErrorCode code;
  char *error_type;       /* "Connection Error"; never NULL */
  char *message;          /* never NULL */
  char *hint;             /* never NULL: the error's own or its category's */
  char *technical_detail; /* nullable: the server's DETAIL, the SQLSTATE */
  int position;           /* 1-based position in the statement, 0 if none */
  char *sqlstate;         /* nullable */
  gboolean recoverable;   /* TRUE when retrying or editing can succeed */
} TuskErrorInfo;

/* Derives (transfer full) the ErrorInfo of any GError; errors from other
 * domains become TUSK_ERROR_INTERNAL with their message kept. */
TuskErrorInfo *tusk_error_info_new (const GError *error);
void tusk_error_info_free (TuskErrorInfo *info);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskErrorInfo, tusk_error_info_free)

G_END_DECLS
