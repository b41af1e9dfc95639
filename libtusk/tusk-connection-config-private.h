/* tusk-connection-config-private.h: turning a connection config into the
 * keyword/value arrays that libpq opens a connection with.
 *
 * Values reach libpq one per keyword (PQconnectdbParams with expand_dbname
 * off, see tusk-pg-private.h), so no value is ever parsed as conninfo.
 *
 * Thread rules: a TuskPgParams has a single owner; the functions may be
 * called from any thread.
 */
#pragma once

#include "tusk-connection-config.h"

G_BEGIN_DECLS

/**
 * TuskSessionDefaults:
 *
 * What every new connection gets besides its config (research §1): session
 * settings sent in the startup packet's "options" (no extra round trip) and
 * TCP keepalives.  A timeout of 0 means none.
 */
typedef struct
{
  int statement_timeout_secs; /* used when the config's is -1; default 30 */
  int idle_in_transaction_timeout_secs; /* default 60 */
  int keepalives_idle_secs;             /* default 60 */
  int keepalives_interval_secs;         /* default 15 */
  int keepalives_count;                 /* default 3 */
} TuskSessionDefaults;

#define TUSK_SESSION_DEFAULTS_INIT                                             \
  {                                                                            \
    30, 60, 60, 15, 3                                                          \
  }

/**
 * TuskPgParams:
 *
 * Parallel NULL-terminated keyword and value arrays, each keyword at most
 * once.  The password value is overwritten with zeros before it is freed.
 */
typedef struct TuskPgParams TuskPgParams;

TuskPgParams *tusk_pg_params_new (void);
void tusk_pg_params_free (TuskPgParams *params);

/* Sets @keyword to a copy of @value, replacing an earlier value; a NULL
 * @value removes @keyword. */
void tusk_pg_params_set (TuskPgParams *params, const char *keyword,
                         const char *value);

/* Returns (transfer none) the value of @keyword, or NULL when unset. */
const char *tusk_pg_params_get (const TuskPgParams *params,
                                const char *keyword);

/* Return (transfer none) the arrays for tusk_pg_connect (); valid until
 * @params is changed or freed. */
const char *const *tusk_pg_params_keywords (const TuskPgParams *params);
const char *const *tusk_pg_params_values (const TuskPgParams *params);

/* Returns (transfer full) the parameters that open a connection for
 * @config: host, port, dbname, user (those that are set), password (only
 * when @password is not NULL, so that libpq's PGPASSWORD and ~/.pgpass
 * still apply otherwise), sslmode, sslrootcert / sslcert / sslkey when set,
 * connect_timeout, application_name, keepalives and options ("-c
 * statement_timeout=30s -c idle_in_transaction_session_timeout=60s", plus
 * "-c default_transaction_read_only=on" for a read-only config).  Keywords
 * it leaves out fall back to libpq's defaults (PG* variables, service
 * files).  @defaults may be NULL for TUSK_SESSION_DEFAULTS_INIT.  Does not
 * validate @config: call tusk_connection_config_validate () first. */
TuskPgParams *
tusk_connection_config_to_params (const TuskConnectionConfig *config,
                                  const char *password,
                                  const TuskSessionDefaults *defaults);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskPgParams, tusk_pg_params_free)

G_END_DECLS
