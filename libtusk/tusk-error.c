/* tusk-error.c: the TUSK_ERROR domain, the SQLSTATE table, ErrorInfo, and
 * the conversions from every external library's failures.
 *
 * The PostgreSQL fields live in the GError's private part (an extended error
 * domain), so they travel with the error through GTask and g_propagate_error
 * and are freed with it.
 */
#define G_LOG_DOMAIN "tusk-error"

#include "tusk-error-private.h"

#include <errno.h>
#include <string.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsecret/secret.h>

typedef struct
{
  char *detail;
  char *hint;
  int position;
  char *sqlstate;
} TuskErrorPrivate;

static void
tusk_error_private_init (TuskErrorPrivate *priv)
{
  memset (priv, 0, sizeof *priv);
}

static void
tusk_error_private_copy (const TuskErrorPrivate *src, TuskErrorPrivate *dest)
{
  dest->detail = g_strdup (src->detail);
  dest->hint = g_strdup (src->hint);
  dest->position = src->position;
  dest->sqlstate = g_strdup (src->sqlstate);
}

static void
tusk_error_private_clear (TuskErrorPrivate *priv)
{
  g_clear_pointer (&priv->detail, g_free);
  g_clear_pointer (&priv->hint, g_free);
  g_clear_pointer (&priv->sqlstate, g_free);
}

G_DEFINE_EXTENDED_ERROR (TuskError, tusk_error)

/* The categories, indexed by TuskErrorCode. */
static const struct
{
  const char *name;
  const char *title;
  const char *hint;
  gboolean recoverable;
} categories[TUSK_ERROR_N_CODES] = {
  [TUSK_ERROR_CONNECTION] = { "connection", "Connection Error",
                              "Check that the database server is running and "
                              "reachable from this machine",
                              TRUE },
  [TUSK_ERROR_AUTHENTICATION] = { "authentication", "Authentication Error",
                                  "Check the user name and password", TRUE },
  [TUSK_ERROR_SSL] = { "ssl", "SSL Error",
                       "Verify the SSL configuration: sslmode, root "
                       "certificate, client certificate and key",
                       TRUE },
  [TUSK_ERROR_SSH]
  = { "ssh", "SSH Error", "Check the SSH host, user, key and its permissions",
      TRUE },
  [TUSK_ERROR_QUERY]
  = { "query", "Query Error", "Check the SQL statement", TRUE },
  [TUSK_ERROR_QUERY_CANCELLED] = { "query-cancelled", "Query Cancelled",
                                   "The operation was cancelled; run it again "
                                   "to get its result",
                                   TRUE },
  [TUSK_ERROR_STORAGE] = { "storage", "Storage Error",
                           "The data directory may be unwritable, full or "
                           "corrupted; check its permissions and free space",
                           FALSE },
  [TUSK_ERROR_KEYRING] = { "keyring", "Keychain Error",
                           "Unlock the keyring, or grant Tusk access to the "
                           "Secret Service",
                           TRUE },
  [TUSK_ERROR_POOL_TIMEOUT] = { "pool-timeout", "Pool Timeout",
                                "All connections are busy; wait for running "
                                "queries to finish or close unused ones",
                                TRUE },
  [TUSK_ERROR_VALIDATION] = { "validation", "Validation Error",
                              "Correct the fields named in the message", TRUE },
  [TUSK_ERROR_NOT_FOUND]
  = { "not-found", "Not Found", "Check the name or id; list what exists first",
      TRUE },
  [TUSK_ERROR_INTERNAL]
  = { "internal", "Internal Error", "Please report this issue", FALSE },
};

/* SQLSTATE → category and hint (research §5, extended to the usual classes).
 * Exact codes first; a two-character entry covers its whole class. */
static const TuskSqlstateInfo sqlstates[] = {
  { "28P01", TUSK_ERROR_AUTHENTICATION,
    "Invalid password—check your credentials" },
  { "28000", TUSK_ERROR_AUTHENTICATION,
    "Authentication failed—check username and permissions (and pg_hba.conf)" },
  { "3D000", TUSK_ERROR_CONNECTION,
    "Database does not exist—verify database name" },
  { "08000", TUSK_ERROR_CONNECTION,
    "Connection exception—check network connectivity" },
  { "08001", TUSK_ERROR_CONNECTION,
    "Could not connect—check that the server is running and accepts "
    "connections on that host and port" },
  { "08003", TUSK_ERROR_CONNECTION,
    "The connection no longer exists—reconnect" },
  { "08004", TUSK_ERROR_CONNECTION,
    "The server refused the connection—check pg_hba.conf and the server log" },
  { "08006", TUSK_ERROR_CONNECTION,
    "The connection was lost—check the network, then reconnect" },
  { "08P01", TUSK_ERROR_CONNECTION,
    "Protocol violation—the server or a proxy in between misbehaved" },
  { "42601", TUSK_ERROR_QUERY, "Check the SQL syntax near the position shown" },
  { "42P01", TUSK_ERROR_QUERY,
    "The table does not exist—check its name, its schema and search_path" },
  { "42703", TUSK_ERROR_QUERY,
    "The column does not exist—check its name and the table it belongs to" },
  { "42883", TUSK_ERROR_QUERY,
    "No function matches—check its name and the argument types (add casts)" },
  { "42501", TUSK_ERROR_QUERY,
    "Permission denied—ask the object's owner to GRANT the privilege, or "
    "connect as another role" },
  { "3F000", TUSK_ERROR_QUERY,
    "The schema does not exist—check its name and search_path" },
  { "25006", TUSK_ERROR_QUERY,
    "The transaction is read-only—use a connection that is not read-only "
    "to change data" },
  { "25P02", TUSK_ERROR_QUERY,
    "The transaction has failed—ROLLBACK before running more statements" },
  { "40001", TUSK_ERROR_QUERY,
    "Serialization failure—run the transaction again" },
  { "40P01", TUSK_ERROR_QUERY, "Deadlock detected—run the transaction again" },
  { "53300", TUSK_ERROR_CONNECTION,
    "The server has reached max_connections—close unused connections or "
    "raise max_connections" },
  { "57014", TUSK_ERROR_QUERY_CANCELLED, "The query was cancelled" },
  { "57P01", TUSK_ERROR_CONNECTION,
    "The server was shut down or restarted—reconnect in a moment" },
  { "57P02", TUSK_ERROR_CONNECTION,
    "The server crashed and is restarting—reconnect in a moment" },
  { "57P03", TUSK_ERROR_CONNECTION,
    "The server is starting up or shutting down—try again in a moment" },
  /* Classes. */
  { "08", TUSK_ERROR_CONNECTION,
    "Connection exception—check network connectivity" },
  { "28", TUSK_ERROR_AUTHENTICATION,
    "Authentication failed—check username and permissions" },
  { "42", TUSK_ERROR_QUERY,
    "Check the statement's syntax, names and privileges" },
  { "22", TUSK_ERROR_QUERY, "A value is invalid for its type—check the data" },
  { "23", TUSK_ERROR_QUERY,
    "A constraint was violated—check the values against the table's "
    "constraints" },
  { "25", TUSK_ERROR_QUERY,
    "Not allowed in the current transaction state—check BEGIN/COMMIT" },
  { "40", TUSK_ERROR_QUERY, "The transaction was rolled back—run it again" },
  { "53", TUSK_ERROR_CONNECTION,
    "The server is out of resources (memory, disk or connections)" },
  { "54", TUSK_ERROR_QUERY,
    "A program limit was exceeded—simplify the statement" },
  { "55", TUSK_ERROR_QUERY,
    "The object is not in the required state (locked or in use)—try again" },
  { "57", TUSK_ERROR_CONNECTION,
    "The server intervened (shutdown or cancel)—reconnect and try again" },
  { "0A", TUSK_ERROR_QUERY, "This feature is not supported by the server" },
  { "XX", TUSK_ERROR_QUERY,
    "The server reported an internal error—check the server log" },
};

GQuark tusk_error_quark (void);

const char *
tusk_error_code_name (TuskErrorCode code)
{
  g_return_val_if_fail (code < TUSK_ERROR_N_CODES, "internal");
  return categories[code].name;
}

const char *
tusk_error_code_title (TuskErrorCode code)
{
  g_return_val_if_fail (code < TUSK_ERROR_N_CODES, "Internal Error");
  return categories[code].title;
}

const char *
tusk_error_code_hint (TuskErrorCode code)
{
  g_return_val_if_fail (code < TUSK_ERROR_N_CODES, categories[0].hint);
  return categories[code].hint;
}

const TuskSqlstateInfo *
tusk_sqlstate_lookup (const char *sqlstate)
{
  if (sqlstate == NULL || strlen (sqlstate) != 5)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (sqlstates); i++)
    if (strlen (sqlstates[i].sqlstate) == 5
        && g_ascii_strcasecmp (sqlstates[i].sqlstate, sqlstate) == 0)
      return &sqlstates[i];
  for (gsize i = 0; i < G_N_ELEMENTS (sqlstates); i++)
    if (strlen (sqlstates[i].sqlstate) == 2
        && g_ascii_strncasecmp (sqlstates[i].sqlstate, sqlstate, 2) == 0)
      return &sqlstates[i];
  return NULL;
}

static TuskErrorPrivate *
get_private (const GError *error)
{
  if (error == NULL || error->domain != TUSK_ERROR)
    return NULL;
  return tusk_error_get_private (error);
}

GError *
tusk_error_new_full (TuskErrorCode code, const char *message,
                     const char *detail, const char *hint, int position,
                     const char *sqlstate)
{
  g_return_val_if_fail (code < TUSK_ERROR_N_CODES, NULL);
  g_return_val_if_fail (message != NULL, NULL);

  GError *error = g_error_new_literal (TUSK_ERROR, code, message);
  TuskErrorPrivate *priv = tusk_error_get_private (error);
  const TuskSqlstateInfo *info = tusk_sqlstate_lookup (sqlstate);

  priv->detail = detail && *detail ? g_strdup (detail) : NULL;
  if (hint && *hint)
    priv->hint = g_strdup (hint);
  else if (info)
    priv->hint = g_strdup (info->hint);
  priv->position = MAX (position, 0);
  priv->sqlstate = sqlstate && *sqlstate ? g_strdup (sqlstate) : NULL;
  return error;
}

void
tusk_set_error (GError **error, TuskErrorCode code, const char *hint,
                const char *format, ...)
{
  if (error == NULL)
    return;

  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_propagate_error (error,
                     tusk_error_new_full (code, message, NULL, hint, 0, NULL));
}

const char *
tusk_error_get_detail (const GError *error)
{
  TuskErrorPrivate *priv = get_private (error);
  return priv ? priv->detail : NULL;
}

const char *
tusk_error_get_hint (const GError *error)
{
  TuskErrorPrivate *priv = get_private (error);
  return priv ? priv->hint : NULL;
}

int
tusk_error_get_position (const GError *error)
{
  TuskErrorPrivate *priv = get_private (error);
  return priv ? priv->position : 0;
}

const char *
tusk_error_get_sqlstate (const GError *error)
{
  TuskErrorPrivate *priv = get_private (error);
  return priv ? priv->sqlstate : NULL;
}

void
tusk_error_set_hint (GError *error, const char *hint)
{
  TuskErrorPrivate *priv = get_private (error);
  if (priv == NULL)
    return;
  g_free (priv->hint);
  priv->hint = g_strdup (hint);
}

TuskErrorInfo *
tusk_error_info_new (const GError *error)
{
  g_return_val_if_fail (error != NULL, NULL);

  TuskErrorInfo *info = g_new0 (TuskErrorInfo, 1);
  gboolean ours
      = error->domain == TUSK_ERROR && (guint)error->code < TUSK_ERROR_N_CODES;
  info->code = ours ? (TuskErrorCode)error->code : TUSK_ERROR_INTERNAL;
  info->error_type = g_strdup (categories[info->code].title);
  info->message = g_strdup (error->message && *error->message
                                ? error->message
                                : categories[info->code].title);
  info->position = tusk_error_get_position (error);
  info->sqlstate = g_strdup (tusk_error_get_sqlstate (error));

  const char *hint = tusk_error_get_hint (error);
  if (hint == NULL)
    hint = categories[info->code].hint;
  if (info->position > 0 && info->sqlstate
      && g_str_has_prefix (info->sqlstate, "42"))
    info->hint = g_strdup_printf ("%s (at position %d)", hint, info->position);
  else
    info->hint = g_strdup (hint);

  /* The technical detail is what a "Show Details" expansion shows: the
   * server's DETAIL, the SQLSTATE and, for foreign errors, their origin. */
  GString *technical = g_string_new (NULL);
  const char *detail = tusk_error_get_detail (error);
  if (detail)
    g_string_append (technical, detail);
  if (info->sqlstate)
    g_string_append_printf (technical, "%sSQLSTATE %s",
                            technical->len ? "\n" : "", info->sqlstate);
  if (!ours)
    g_string_append_printf (technical, "%s%s error %d",
                            technical->len ? "\n" : "",
                            g_quark_to_string (error->domain), error->code);
  info->technical_detail = g_string_free (technical, technical->len == 0);
  info->recoverable = categories[info->code].recoverable;
  return info;
}

void
tusk_error_info_free (TuskErrorInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->error_type);
  g_free (info->message);
  g_free (info->hint);
  g_free (info->technical_detail);
  g_free (info->sqlstate);
  g_free (info);
}

/* ---- PostgreSQL ------------------------------------------------------- */

/* 57014 is both a user's cancel and statement_timeout; only the second is
 * something the user should fix in the connection settings. */
static TuskErrorCode
pg_category (const char *sqlstate, const char *message, const char **hint)
{
  const TuskSqlstateInfo *info = tusk_sqlstate_lookup (sqlstate);

  if (g_strcmp0 (sqlstate, "57014") == 0 && message
      && strstr (message, "statement timeout"))
    {
      *hint = "The statement ran longer than statement_timeout—raise the "
              "connection's statement timeout or make the query faster";
      return TUSK_ERROR_QUERY;
    }
  /* Certificate logins refused by pg_hba.conf (28000): say what to set. */
  if (g_strcmp0 (sqlstate, "28000") == 0 && message
      && strstr (message, "requires a valid client certificate"))
    {
      *hint = "The server requires a client certificate—set the client "
              "certificate (sslcert) and key (sslkey), signed by a CA the "
              "server trusts";
      return TUSK_ERROR_AUTHENTICATION;
    }
  if (g_strcmp0 (sqlstate, "28000") == 0 && message
      && strstr (message, "certificate authentication failed"))
    {
      *hint = "The client certificate's CN must match the user name (or a "
              "pg_ident mapping)";
      return TUSK_ERROR_AUTHENTICATION;
    }
  if (g_strcmp0 (sqlstate, "28000") == 0 && message
      && strstr (message, "no pg_hba.conf entry")
      && (strstr (message, "no encryption") || strstr (message, "SSL off")))
    {
      *hint = "The server accepts this user only over SSL—use sslmode "
              "require or stricter";
      return TUSK_ERROR_AUTHENTICATION;
    }
  if (info)
    {
      *hint = info->hint;
      return info->code;
    }
  *hint = NULL;
  return TUSK_ERROR_QUERY;
}

static char *
strip_trailing_newlines (const char *text)
{
  char *copy = g_strdup (text ? text : "");
  g_strchomp (copy);
  return copy;
}

GError *
tusk_error_from_pg_result (const PGconn *conn, const PGresult *res)
{
  const char *sqlstate
      = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary
      = res ? PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  g_autofree char *fallback = NULL;

  if (primary == NULL)
    {
      const char *text = res ? PQresultErrorMessage (res) : NULL;
      if ((text == NULL || *text == '\0') && conn)
        text = PQerrorMessage (conn);
      fallback = strip_trailing_newlines (text);
      if (*fallback == '\0')
        {
          g_free (fallback);
          fallback
              = g_strdup ("The server reported an error without a message");
        }
      primary = fallback;
    }

  if (sqlstate == NULL)
    {
      /* A client-side failure: the connection went away, or libpq itself
       * refused (out of memory, protocol confusion). */
      gboolean lost = conn == NULL || PQstatus (conn) == CONNECTION_BAD;
      return tusk_error_new_full (
          lost ? TUSK_ERROR_CONNECTION : TUSK_ERROR_QUERY, primary, NULL,
          lost ? "The connection to the server was lost—reconnect and run "
                 "the statement again"
               : NULL,
          0, lost ? "08006" : NULL);
    }

  const char *position = PQresultErrorField (res, PG_DIAG_STATEMENT_POSITION);
  const char *server_hint = PQresultErrorField (res, PG_DIAG_MESSAGE_HINT);
  const char *table_hint = NULL;
  TuskErrorCode code = pg_category (sqlstate, primary, &table_hint);

  return tusk_error_new_full (code, primary,
                              PQresultErrorField (res, PG_DIAG_MESSAGE_DETAIL),
                              server_hint ? server_hint : table_hint,
                              position ? atoi (position) : 0, sqlstate);
}

/* Patterns in libpq's connection failure messages, for servers and paths
 * that give no SQLSTATE (client-side failures, and non-verbose messages).
 * Searched in order; the first match wins, so specific SSL messages come
 * before "does not exist" and the catch-all "SSL" comes last. */
static const struct
{
  const char *needle;
  const char *sqlstate;
  TuskErrorCode code;
  const char *hint;
} conn_patterns[] = {
  { "password authentication failed", "28P01", TUSK_ERROR_AUTHENTICATION,
    NULL },
  { "no password supplied", "28P01", TUSK_ERROR_AUTHENTICATION,
    "The server asks for a password—store one for this connection, or set "
    "PGPASSWORD or ~/.pgpass" },
  { "certificate authentication failed", "28000", TUSK_ERROR_AUTHENTICATION,
    "The client certificate's CN must match the user name (or a pg_ident "
    "mapping)" },
  { "no pg_hba.conf entry", "28000", TUSK_ERROR_AUTHENTICATION,
    "The server's pg_hba.conf has no entry for this host, user and "
    "database—ask the administrator, or try another sslmode" },
  { "does not match host name", NULL, TUSK_ERROR_SSL,
    "The server certificate is for another host name—connect by the name "
    "in the certificate, or use sslmode verify-ca" },
  { "certificate verify failed", NULL, TUSK_ERROR_SSL,
    "The server certificate is not trusted—set the root certificate "
    "(sslrootcert) to the CA that signed it" },
  { "root certificate file", NULL, TUSK_ERROR_SSL,
    "The root certificate file is missing—set sslrootcert to the CA file, "
    "or use sslmode require" },
  { "server does not support SSL", NULL, TUSK_ERROR_SSL,
    "The server does not offer SSL—enable ssl on the server, or use "
    "sslmode prefer or disable" },
  { "certificate present, but not private key", NULL, TUSK_ERROR_SSL,
    "The client key (sslkey) is missing—set sslkey to the key of the "
    "client certificate" },
  { "private key file", NULL, TUSK_ERROR_SSL,
    "The client key (sslkey) must be readable by you alone—chmod 600 it, "
    "and check that it is the key of the client certificate" },
  { "could not open certificate file", NULL, TUSK_ERROR_SSL,
    "The client certificate (sslcert) could not be read—check its path and "
    "permissions" },
  { "could not read certificate file", NULL, TUSK_ERROR_SSL,
    "The client certificate (sslcert) is not a PEM certificate—check the "
    "file" },
  { "alert unknown ca", NULL, TUSK_ERROR_SSL,
    "The server does not trust the client certificate—use one signed by a "
    "CA in the server's ssl_ca_file" },
  { "alert bad certificate", NULL, TUSK_ERROR_SSL,
    "The server rejected the client certificate—check sslcert and sslkey" },
  { "certificate has expired", NULL, TUSK_ERROR_SSL,
    "A certificate has expired—renew it, or check this machine's clock" },
  { "self-signed certificate", NULL, TUSK_ERROR_SSL,
    "The server certificate is self-signed or its CA is not trusted—set the "
    "root certificate (sslrootcert) to the CA that signed it" },
  { "does not exist", NULL, TUSK_ERROR_CONNECTION, NULL },
  { "too many clients", "53300", TUSK_ERROR_CONNECTION, NULL },
  { "remaining connection slots are reserved", "53300", TUSK_ERROR_CONNECTION,
    NULL },
  { "the database system is starting up", "57P03", TUSK_ERROR_CONNECTION,
    NULL },
  { "the database system is shutting down", "57P03", TUSK_ERROR_CONNECTION,
    NULL },
  { "could not translate host name", "08001", TUSK_ERROR_CONNECTION,
    "The host name could not be resolved—check its spelling and DNS" },
  { "Connection refused", "08001", TUSK_ERROR_CONNECTION,
    "Nothing is listening there—check that the server runs, the host and "
    "port, and listen_addresses" },
  { "No such file or directory", "08001", TUSK_ERROR_CONNECTION,
    "No server socket there—check that the server runs and the socket "
    "directory (host) and port" },
  { "timeout expired", "08001", TUSK_ERROR_CONNECTION,
    "The server did not answer within the connect timeout—check the "
    "network, firewalls and the host" },
  { "server closed the connection unexpectedly", "08006", TUSK_ERROR_CONNECTION,
    NULL },
  { "SSL", NULL, TUSK_ERROR_SSL, NULL },
  { "certificate", NULL, TUSK_ERROR_SSL, NULL },
};

/* The severities that end a connection attempt; all are 8 bytes long. */
static const char *const severities[] = { "FATAL:  ", "ERROR:  ", "PANIC:  " };

/* Finds "SEVERITY:  XXXXX: " (libpq's verbose form) in @text; returns the
 * SQLSTATE in @sqlstate (6 bytes) and where the message after it starts. */
static const char *
find_verbose_sqlstate (const char *text, char sqlstate[6])
{
  for (const char *p = text; *p; p++)
    for (gsize s = 0; s < G_N_ELEMENTS (severities); s++)
      {
        gsize len = strlen (severities[s]);
        if (strncmp (p, severities[s], len) != 0)
          continue;
        const char *code = p + len;
        gboolean ok = TRUE;
        for (int i = 0; i < 5 && ok; i++)
          ok = g_ascii_isdigit (code[i]) || g_ascii_isupper (code[i]);
        if (ok && code[5] == ':' && code[6] == ' ')
          {
            memcpy (sqlstate, code, 5);
            sqlstate[5] = '\0';
            return p;
          }
      }
  return NULL;
}

/* libpq's connection message, cleaned for a person: verbose prefixes
 * removed, DETAIL / HINT lines split out, LOCATION lines dropped. */
static char *
clean_conn_message (const char *text, char **detail, char **hint)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  GString *message = g_string_new (NULL);

  for (char **l = lines; *l; l++)
    {
      char *line = g_strstrip (*l);
      if (*line == '\0' || g_str_has_prefix (line, "LOCATION:"))
        continue;
      if (g_str_has_prefix (line, "DETAIL:"))
        {
          g_free (*detail);
          *detail = g_strdup (g_strstrip (line + strlen ("DETAIL:")));
          continue;
        }
      if (g_str_has_prefix (line, "HINT:"))
        {
          g_free (*hint);
          *hint = g_strdup (g_strstrip (line + strlen ("HINT:")));
          continue;
        }
      /* "FATAL:  28P01: text" and "FATAL:  text" both become "text". */
      GString *clean = g_string_new (line);
      char code[6];
      const char *at;
      while ((at = find_verbose_sqlstate (clean->str, code)))
        g_string_erase (clean, at - clean->str,
                        strlen ("FATAL:  ") + strlen ("XXXXX: "));
      for (gsize s = 0; s < G_N_ELEMENTS (severities); s++)
        {
          char *p;
          while ((p = strstr (clean->str, severities[s])))
            g_string_erase (clean, p - clean->str, strlen (severities[s]));
        }
      if (message->len)
        g_string_append (message, "; ");
      g_string_append_len (message, clean->str, clean->len);
      g_string_free (clean, TRUE);
    }
  if (message->len == 0)
    g_string_append (message, "Could not connect to the server");
  return g_string_free (message, FALSE);
}

GError *
tusk_error_from_pg_conn (const PGconn *conn)
{
  const char *text = conn ? PQerrorMessage (conn) : NULL;
  if (text == NULL || *text == '\0')
    text = conn ? "Could not connect to the server"
                : "Out of memory while connecting to the server";

  char sqlstate_buf[6] = "";
  const char *sqlstate = NULL;
  if (find_verbose_sqlstate (text, sqlstate_buf))
    sqlstate = sqlstate_buf;

  g_autofree char *detail = NULL;
  g_autofree char *server_hint = NULL;
  g_autofree char *message = clean_conn_message (text, &detail, &server_hint);
  const char *hint = NULL;
  TuskErrorCode code;

  if (sqlstate)
    code = pg_category (sqlstate, message, &hint);
  else
    {
      code = conn ? TUSK_ERROR_CONNECTION : TUSK_ERROR_INTERNAL;
      for (gsize i = 0; i < G_N_ELEMENTS (conn_patterns); i++)
        if (strstr (text, conn_patterns[i].needle))
          {
            code = conn_patterns[i].code;
            sqlstate = conn_patterns[i].sqlstate;
            hint = conn_patterns[i].hint;
            /* "database "x" does not exist" vs "role "x" does not exist". */
            if (g_str_equal (conn_patterns[i].needle, "does not exist"))
              {
                gboolean role = strstr (text, "role \"") != NULL;
                sqlstate = role ? "28000" : "3D000";
                code = role ? TUSK_ERROR_AUTHENTICATION : TUSK_ERROR_CONNECTION;
              }
            if (hint == NULL && sqlstate)
              hint = tusk_sqlstate_lookup (sqlstate)->hint;
            break;
          }
    }
  return tusk_error_new_full (code, message, detail,
                              server_hint ? server_hint : hint, 0, sqlstate);
}

/* ---- SQLite, libsecret, libssh, json-glib, errno ---------------------- */

GError *
tusk_error_from_sqlite (sqlite3 *db, int rc, const char *what)
{
  const char *text = db ? sqlite3_errmsg (db) : sqlite3_errstr (rc);
  int primary = rc & 0xff;
  const char *hint = NULL;

  switch (primary)
    {
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
        hint = "The local database is damaged—Tusk moves it aside and starts a "
               "fresh one when it next opens it";
        break;
      case SQLITE_FULL:
        hint = "The disk is full—free space where the data directory is";
        break;
      case SQLITE_READONLY:
      case SQLITE_CANTOPEN:
      case SQLITE_PERM:
      case SQLITE_IOERR:
        hint = "Check that the data directory exists, is writable and its disk "
               "works; or choose another with --data-dir";
        break;
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        hint = "Another Tusk process is holding the local database—try again";
        break;
      case SQLITE_CONSTRAINT:
        hint = "The change conflicts with data already stored (a duplicate or "
               "a missing reference)";
        break;
      default:
        break;
    }

  g_autofree char *message = g_strdup_printf ("%s: %s", what, text);
  g_autofree char *detail
      = g_strdup_printf ("SQLite error %d (%s)", rc, sqlite3_errstr (rc));
  return tusk_error_new_full (TUSK_ERROR_STORAGE, message, detail, hint, 0,
                              NULL);
}

GError *
tusk_error_from_secret (const GError *error, const char *what)
{
  g_return_val_if_fail (error != NULL, NULL);

  TuskErrorCode code = TUSK_ERROR_KEYRING;
  const char *hint = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    code = TUSK_ERROR_QUERY_CANCELLED;
  else if (error->domain == SECRET_ERROR
           && error->code == SECRET_ERROR_IS_LOCKED)
    hint = "The keyring is locked—unlock it in your keyring manager";
  else if (error->domain == SECRET_ERROR
           && error->code == SECRET_ERROR_NO_SUCH_OBJECT)
    code = TUSK_ERROR_NOT_FOUND;
  else if (error->domain == G_DBUS_ERROR || error->domain == G_IO_ERROR)
    hint = "No Secret Service answered on the session bus—start "
           "gnome-keyring (or another Secret Service) and log in again";

  g_autofree char *message = g_strdup_printf ("%s: %s", what, error->message);
  g_autofree char *detail = g_strdup_printf (
      "%s error %d", g_quark_to_string (error->domain), error->code);
  return tusk_error_new_full (code, message, detail, hint, 0, NULL);
}

GError *
tusk_error_from_ssh (ssh_session session, const char *what)
{
  const char *text = session ? ssh_get_error (session) : NULL;
  int ssh_code = session ? ssh_get_error_code (session) : SSH_FATAL;
  const char *hint = NULL;

  if (ssh_code == SSH_REQUEST_DENIED)
    hint = "The SSH server refused the request—check that it allows TCP "
           "forwarding (AllowTcpForwarding) and that the database host is "
           "reachable from it";
  else if (text
           && (strstr (text, "disconnected")
               || strstr (text, "Connection reset")
               || strstr (text, "Broken pipe")))
    hint = "The SSH server closed the connection—it may have restarted, or "
           "refused the client (MaxStartups, AllowUsers); check its log";
  else if (text && strstr (text, "Timeout"))
    hint = "The SSH server did not answer in time—check the network and the "
           "host";
  else if (ssh_code == SSH_FATAL)
    hint = "Check the SSH host and port, and that the server is reachable";

  g_autofree char *message = g_strdup_printf (
      "%s: %s", what, text && *text ? text : "SSH session failed");
  return tusk_error_new_full (TUSK_ERROR_SSH, message, NULL, hint, 0, NULL);
}

GError *
tusk_error_from_json (const GError *error, const char *what)
{
  g_return_val_if_fail (error != NULL, NULL);

  g_autofree char *message = g_strdup_printf ("%s: %s", what, error->message);
  return tusk_error_new_full (
      TUSK_ERROR_VALIDATION, message, NULL,
      error->domain == JSON_PARSER_ERROR
          ? "The text is not valid JSON—check it near the line and column "
            "shown"
          : "The JSON does not have the expected shape—check the field named",
      0, NULL);
}

GError *
tusk_error_from_errno (int errsv, const char *what)
{
  TuskErrorCode code;
  const char *hint;

  switch (errsv)
    {
      case ENOENT:
        code = TUSK_ERROR_NOT_FOUND;
        hint = "Check the path";
        break;
      case EACCES:
      case EPERM:
        code = TUSK_ERROR_STORAGE;
        hint = "Permission denied—check the owner and mode of the path, or "
               "choose another location";
        break;
      case EROFS:
        code = TUSK_ERROR_STORAGE;
        hint = "The file system is read-only—choose another location";
        break;
      case ENOSPC:
      case EDQUOT:
      case EFBIG:
        code = TUSK_ERROR_STORAGE;
        hint = "The disk is full—free some space or choose another location";
        break;
      case ENOTDIR:
      case EEXIST:
      case EISDIR:
        code = TUSK_ERROR_STORAGE;
        hint = "Something else is already at that path—move it or choose "
               "another location";
        break;
      case ECONNREFUSED:
      case ETIMEDOUT:
      case EHOSTUNREACH:
      case ENETUNREACH:
      case ECONNRESET:
        code = TUSK_ERROR_CONNECTION;
        hint = NULL;
        break;
      case ECANCELED:
        code = TUSK_ERROR_QUERY_CANCELLED;
        hint = NULL;
        break;
      default:
        code = TUSK_ERROR_INTERNAL;
        hint = NULL;
        break;
    }

  g_autofree char *message
      = g_strdup_printf ("%s: %s", what, g_strerror (errsv));
  return tusk_error_new_full (code, message, NULL, hint, 0, NULL);
}
