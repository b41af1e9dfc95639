/* tusk-connection-config.h: how to reach one database (data model
 * "ConnectionConfig", "SslMode", "SshTunnelConfig", "ConnectionOptions").
 *
 * Plain data: every string is owned by its struct and freed by the struct's
 * _free(); _copy() is deep.  A config never holds a password: passwords live
 * in the keychain (tusk-credentials.h) under the config's id.
 *
 * Thread rules: a config is a value; one that no thread modifies may be read
 * from any number of threads.  All functions may be called from any thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  TUSK_SSL_MODE_DISABLE,
  TUSK_SSL_MODE_PREFER, /* the default */
  TUSK_SSL_MODE_REQUIRE,
  TUSK_SSL_MODE_VERIFY_CA,
  TUSK_SSL_MODE_VERIFY_FULL,
} TuskSslMode;

/* "disable", "prefer", "require", "verify-ca", "verify-full": libpq's
 * sslmode words, also what the storage keeps. */
const char *tusk_ssl_mode_to_string (TuskSslMode mode);

/* Parses libpq's sslmode word (case-sensitive, as libpq); FALSE for any
 * other text ("allow" is not offered: it is never what a person wants). */
gboolean tusk_ssl_mode_from_string (const char *text, TuskSslMode *mode);

typedef enum
{
  TUSK_SSH_AUTH_KEY,
  TUSK_SSH_AUTH_PASSWORD,
  TUSK_SSH_AUTH_AGENT,
} TuskSshAuthMethod;

/* "key", "password", "agent". */
const char *tusk_ssh_auth_method_to_string (TuskSshAuthMethod method);
gboolean tusk_ssh_auth_method_from_string (const char *text,
                                           TuskSshAuthMethod *method);

/**
 * TuskSshTunnelConfig:
 *
 * An SSH server to tunnel through.  Its password or key passphrase, if any,
 * is in the keychain under "ssh:{id}".
 */
typedef struct
{
  char *id;       /* UUID; never NULL */
  char *name;     /* required */
  char *host;     /* required */
  int port;       /* 1-65535; default 22 */
  char *username; /* required */
  TuskSshAuthMethod auth_method;
  char *key_path; /* nullable; required (and must exist) when auth is key */
} TuskSshTunnelConfig;

/* Returns (transfer full) a tunnel with a fresh UUID, port 22, auth agent,
 * and every string but the id NULL. */
TuskSshTunnelConfig *tusk_ssh_tunnel_config_new (void);
TuskSshTunnelConfig *
tusk_ssh_tunnel_config_copy (const TuskSshTunnelConfig *tunnel);
void tusk_ssh_tunnel_config_free (TuskSshTunnelConfig *tunnel);

/**
 * TuskConnectionOptions:
 *
 * Embedded in TuskConnectionConfig (not allocated on its own).
 */
typedef struct
{
  int connect_timeout_secs;   /* default 10; 0 waits forever */
  int statement_timeout_secs; /* -1: the pool's default (30 s); 0: none */
  gboolean read_only;         /* default FALSE; enforced by the server */
  char *application_name;     /* default "Tusk"; never NULL */
} TuskConnectionOptions;

/**
 * TuskConnectionConfig:
 *
 * One saved (or about to be saved) database connection.
 */
typedef struct
{
  char *id;       /* UUID; never NULL */
  char *name;     /* 1-255 characters */
  char *host;     /* host name, IP address or socket directory */
  int port;       /* 1-65535; default 5432 */
  char *database; /* 1-63 characters */
  char *username; /* required */
  TuskSslMode ssl_mode;
  char *ssl_root_cert; /* nullable paths: sslrootcert, sslcert, sslkey */
  char *ssl_cert;
  char *ssl_key;
  TuskSshTunnelConfig *ssh_tunnel; /* nullable, owned */
  TuskConnectionOptions options;
  char *color; /* nullable; "#RRGGBB" */
  /* Filled in by the storage when loading; ignored when saving.  UTC,
   * "YYYY-MM-DD HH:MM:SS", NULL when never connected. */
  char *last_connected_at;
} TuskConnectionConfig;

/* Returns (transfer full) a config with a fresh UUID and the data model's
 * defaults (port 5432, sslmode prefer, connect timeout 10 s, statement
 * timeout -1, application name "Tusk"); name, host, database and username
 * are NULL until set. */
TuskConnectionConfig *tusk_connection_config_new (void);
TuskConnectionConfig *
tusk_connection_config_copy (const TuskConnectionConfig *config);
void tusk_connection_config_free (TuskConnectionConfig *config);

/* Checks @config against the data model's validation rules.  Returns TRUE,
 * or FALSE with one TUSK_ERROR_VALIDATION whose message lists every bad
 * field and its rule ("name: must be 1-255 characters; port: must be
 * 1-65535").  Touches no file except to check that an SSH key_path exists. */
gboolean tusk_connection_config_validate (const TuskConnectionConfig *config,
                                          GError **error);

/* Same for a tunnel on its own. */
gboolean tusk_ssh_tunnel_config_validate (const TuskSshTunnelConfig *tunnel,
                                          GError **error);

/* Parses @text, a "postgresql://" (or "postgres://") URI or a conninfo string
 * ("host=db port=5432 dbname=app"), with libpq's own parser
 * (PQconninfoParse: no PG* variable, service file or default is consulted).
 * Leading and trailing whitespace is ignored.
 *
 * Carried keywords: host, hostaddr (only without host: it then becomes the
 * host), port, dbname, user, password, sslmode, sslrootcert, sslcert,
 * sslkey, connect_timeout, application_name, and options made only of
 * "-c default_transaction_read_only=..." and "-c statement_timeout=..."
 * (whole seconds).  Any other keyword libpq knows (gssencmode, service,
 * target_session_attrs, ...) is refused by name, as are lists of hosts and
 * sslmode "allow": a config could not keep them, and dropping them silently
 * would connect differently than the text says.
 *
 * What the text leaves out stays unset: host, database and username NULL
 * (an empty value counts as left out), the rest at the defaults of
 * tusk_connection_config_new () (port 5432, sslmode prefer, connect timeout
 * 10 s, application_name "Tusk").  The name is NULL too, so the result does
 * not pass tusk_connection_config_validate () until the caller fills it in;
 * the id is fresh.
 *
 * The password, if the text has one, is never put in the config: it goes to
 * @password_out (nullable; set to (transfer full) a string to wipe and
 * g_free (), or to NULL when the text has none); with @password_out NULL it
 * is dropped.
 *
 * Returns (transfer full) the config, or NULL with one TUSK_ERROR_VALIDATION
 * listing every problem (libpq's own message for text it cannot parse). */
TuskConnectionConfig *
tusk_connection_config_new_from_string (const char *text, char **password_out,
                                        GError **error);

/* Renders (transfer full) @config as a "postgresql://" URI that
 * tusk_connection_config_new_from_string () reads back to the same host,
 * port, database, username, ssl_mode, ssl paths, connect timeout, statement
 * timeout, read-only flag and application name.  Never contains a password.
 * User, host, database and query values are percent-encoded; an IPv6 host
 * is put in brackets; a socket directory goes in "?host=".  The port is
 * always written; the query parameters only where they differ from the
 * defaults of tusk_connection_config_new (). */
char *tusk_connection_config_to_uri (const TuskConnectionConfig *config);

/* The same as a conninfo string ("host=db port=5432 dbname='my db'"), with
 * the same keywords as the URI plus host, port, dbname and user; a value
 * is single-quoted, with a backslash before each ' and \, unless it is made
 * only of characters that need no quotes. */
char *tusk_connection_config_to_conninfo (const TuskConnectionConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSshTunnelConfig, tusk_ssh_tunnel_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskConnectionConfig,
                               tusk_connection_config_free)

G_END_DECLS
