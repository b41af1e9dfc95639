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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSshTunnelConfig, tusk_ssh_tunnel_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskConnectionConfig,
                               tusk_connection_config_free)

G_END_DECLS
