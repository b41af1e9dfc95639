/* test-connection-config.c: connection configs: defaults, copies, every
 * validation rule, URI / conninfo parsing and rendering, the libpq
 * parameters, and, against the test server, that values arrive literally,
 * that the session defaults apply and that every sslmode behaves. */
#define G_LOG_DOMAIN "tusk-test-config"

#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "tusk-connection-config-private.h"
#include "tusk-error.h"
#include "tusk-pg-private.h"
#include "tusk-test.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGconn, PQfinish)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PGresult, PQclear)

/* Replaces the string at @field with a copy of @value (nullable). */
static void
set (char **field, const char *value)
{
  char *copy = g_strdup (value);
  g_free (*field);
  *field = copy;
}

/* A config that passes validation. */
static TuskConnectionConfig *
valid_config (void)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  set (&config->name, "Production");
  set (&config->host, "db.example.com");
  set (&config->database, "app");
  set (&config->username, "me");
  return config;
}

static TuskSshTunnelConfig *
valid_tunnel (void)
{
  TuskSshTunnelConfig *tunnel = tusk_ssh_tunnel_config_new ();
  set (&tunnel->name, "Bastion");
  set (&tunnel->host, "bastion.example.com");
  set (&tunnel->username, "ops");
  return tunnel;
}

/* @n copies of @unit. */
static char *
repeat (const char *unit, guint n)
{
  GString *out = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    g_string_append (out, unit);
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------- plain data */

static void
test_defaults (void)
{
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  g_autoptr (TuskConnectionConfig) other = tusk_connection_config_new ();

  g_assert_true (g_uuid_string_is_valid (config->id));
  g_assert_cmpstr (config->id, !=, other->id);
  g_assert_null (config->name);
  g_assert_null (config->host);
  g_assert_cmpint (config->port, ==, 5432);
  g_assert_null (config->database);
  g_assert_null (config->username);
  g_assert_cmpint (config->ssl_mode, ==, TUSK_SSL_MODE_PREFER);
  g_assert_null (config->ssl_root_cert);
  g_assert_null (config->ssl_cert);
  g_assert_null (config->ssl_key);
  g_assert_null (config->ssh_tunnel);
  g_assert_cmpint (config->options.connect_timeout_secs, ==, 10);
  g_assert_cmpint (config->options.statement_timeout_secs, ==, -1);
  g_assert_false (config->options.read_only);
  g_assert_cmpstr (config->options.application_name, ==, "Tusk");
  g_assert_null (config->color);
  g_assert_null (config->last_connected_at);

  g_autoptr (TuskSshTunnelConfig) tunnel = tusk_ssh_tunnel_config_new ();
  g_assert_true (g_uuid_string_is_valid (tunnel->id));
  g_assert_null (tunnel->name);
  g_assert_null (tunnel->host);
  g_assert_cmpint (tunnel->port, ==, 22);
  g_assert_null (tunnel->username);
  g_assert_cmpint (tunnel->auth_method, ==, TUSK_SSH_AUTH_AGENT);
  g_assert_null (tunnel->key_path);
}

static void
test_copy (void)
{
  TuskConnectionConfig *config = valid_config ();
  set (&config->ssl_root_cert, "/ca.crt");
  set (&config->ssl_cert, "/c.crt");
  set (&config->ssl_key, "/c.key");
  set (&config->color, "#112233");
  set (&config->last_connected_at, "2026-01-20 10:00:00");
  set (&config->options.application_name, "app");
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  config->port = 6543;
  config->options.connect_timeout_secs = 3;
  config->options.statement_timeout_secs = 7;
  config->options.read_only = TRUE;
  config->ssh_tunnel = valid_tunnel ();
  config->ssh_tunnel->auth_method = TUSK_SSH_AUTH_KEY;
  set (&config->ssh_tunnel->key_path, "/id_ed25519");

  TuskConnectionConfig *copy = tusk_connection_config_copy (config);
  g_autofree char *tunnel_id = g_strdup (config->ssh_tunnel->id);
  g_autofree char *id = g_strdup (config->id);

  g_assert_true (copy->name != config->name);
  g_assert_true (copy->ssh_tunnel != config->ssh_tunnel);
  g_assert_true (copy->options.application_name
                 != config->options.application_name);
  /* Freeing the original first proves that the copy shares nothing (ASan
   * reports any use after free). */
  tusk_connection_config_free (config);

  g_assert_cmpstr (copy->id, ==, id);
  g_assert_cmpstr (copy->name, ==, "Production");
  g_assert_cmpstr (copy->host, ==, "db.example.com");
  g_assert_cmpint (copy->port, ==, 6543);
  g_assert_cmpstr (copy->database, ==, "app");
  g_assert_cmpstr (copy->username, ==, "me");
  g_assert_cmpint (copy->ssl_mode, ==, TUSK_SSL_MODE_VERIFY_FULL);
  g_assert_cmpstr (copy->ssl_root_cert, ==, "/ca.crt");
  g_assert_cmpstr (copy->ssl_cert, ==, "/c.crt");
  g_assert_cmpstr (copy->ssl_key, ==, "/c.key");
  g_assert_cmpstr (copy->color, ==, "#112233");
  g_assert_cmpstr (copy->last_connected_at, ==, "2026-01-20 10:00:00");
  g_assert_cmpstr (copy->options.application_name, ==, "app");
  g_assert_cmpint (copy->options.connect_timeout_secs, ==, 3);
  g_assert_cmpint (copy->options.statement_timeout_secs, ==, 7);
  g_assert_true (copy->options.read_only);
  g_assert_cmpstr (copy->ssh_tunnel->id, ==, tunnel_id);
  g_assert_cmpstr (copy->ssh_tunnel->name, ==, "Bastion");
  g_assert_cmpstr (copy->ssh_tunnel->host, ==, "bastion.example.com");
  g_assert_cmpint (copy->ssh_tunnel->port, ==, 22);
  g_assert_cmpstr (copy->ssh_tunnel->username, ==, "ops");
  g_assert_cmpint (copy->ssh_tunnel->auth_method, ==, TUSK_SSH_AUTH_KEY);
  g_assert_cmpstr (copy->ssh_tunnel->key_path, ==, "/id_ed25519");

  g_autoptr (TuskConnectionConfig) plain = tusk_connection_config_new ();
  g_autoptr (TuskConnectionConfig) plain_copy
      = tusk_connection_config_copy (plain);
  g_assert_null (plain_copy->ssh_tunnel);
  g_assert_null (plain_copy->name);

  tusk_connection_config_free (copy);
  tusk_connection_config_free (NULL);
  tusk_ssh_tunnel_config_free (NULL);
}

static void
test_enum_strings (void)
{
  static const char *const ssl[]
      = { "disable", "prefer", "require", "verify-ca", "verify-full" };
  static const char *const ssh[] = { "key", "password", "agent" };

  for (guint i = 0; i < G_N_ELEMENTS (ssl); i++)
    {
      TuskSslMode mode = 99;
      g_assert_cmpstr (tusk_ssl_mode_to_string ((TuskSslMode)i), ==, ssl[i]);
      g_assert_true (tusk_ssl_mode_from_string (ssl[i], &mode));
      g_assert_cmpint (mode, ==, i);
    }
  for (guint i = 0; i < G_N_ELEMENTS (ssh); i++)
    {
      TuskSshAuthMethod method = 99;
      g_assert_cmpstr (tusk_ssh_auth_method_to_string ((TuskSshAuthMethod)i),
                       ==, ssh[i]);
      g_assert_true (tusk_ssh_auth_method_from_string (ssh[i], &method));
      g_assert_cmpint (method, ==, i);
    }

  TuskSslMode mode = TUSK_SSL_MODE_REQUIRE;
  g_assert_false (tusk_ssl_mode_from_string ("allow", &mode));
  g_assert_false (tusk_ssl_mode_from_string ("Prefer", &mode));
  g_assert_false (tusk_ssl_mode_from_string ("", &mode));
  g_assert_false (tusk_ssl_mode_from_string (NULL, &mode));
  g_assert_cmpint (mode, ==, TUSK_SSL_MODE_REQUIRE);
  TuskSshAuthMethod method = TUSK_SSH_AUTH_KEY;
  g_assert_false (tusk_ssh_auth_method_from_string ("publickey", &method));
  g_assert_false (tusk_ssh_auth_method_from_string (NULL, &method));
  g_assert_cmpint (method, ==, TUSK_SSH_AUTH_KEY);
}

/* ------------------------------------------------------- validation */

static void
assert_valid (const TuskConnectionConfig *config)
{
  g_autoptr (GError) error = NULL;
  if (!tusk_connection_config_validate (config, &error))
    g_error ("expected a valid config: %s", error->message);
}

/* Asserts that @config fails validation with exactly "Invalid connection:
 * @expected" and a hint. */
static void
assert_invalid (const TuskConnectionConfig *config, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *message
      = g_strdup_printf ("Invalid connection: %s", expected);

  g_assert_false (tusk_connection_config_validate (config, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_cmpstr (error->message, ==, message);
  g_assert_nonnull (tusk_error_get_hint (error));
  g_assert_cmpstr (tusk_error_get_hint (error), !=, "");
}

static void
test_validate_accepts (void)
{
  static const char *const hosts[] = {
    "db.example.com",
    "db.example.com.",
    "localhost",
    "my_db",
    "a-b.c-d.example",
    "127.0.0.1",
    "::1",
    "2001:db8::5:1",
    "fe80::1%eth0",
    "::ffff:10.0.0.1",
    "/var/run/postgresql",
    "/tmp/dir with space",
    "/tmp/ünï",
  };
  g_autoptr (TuskConnectionConfig) config = valid_config ();
  assert_valid (config);

  for (guint i = 0; i < G_N_ELEMENTS (hosts); i++)
    {
      set (&config->host, hosts[i]);
      assert_valid (config);
    }

  /* Limits, at the limit. */
  g_autofree char *name = repeat ("é", 255); /* 510 bytes, 255 chars */
  g_autofree char *db = repeat ("d", 63);
  g_autofree char *app = repeat ("a", 63);
  set (&config->name, name);
  set (&config->database, db);
  set (&config->username, db);
  set (&config->options.application_name, app);
  config->port = 65535;
  assert_valid (config);
  config->port = 1;
  config->options.connect_timeout_secs = 0;
  config->options.statement_timeout_secs = 0;
  set (&config->options.application_name, "");
  set (&config->color, "#a0B1c2");
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL; /* no root cert: fine */
  assert_valid (config);
  config->options.statement_timeout_secs = 2147483;
  set (&config->database, "x' host='evil");
  set (&config->username, "a b=c");
  set (&config->options.application_name, "x' options='-c log_statement=all");
  assert_valid (config);

  config->ssh_tunnel = valid_tunnel ();
  assert_valid (config);
}

/* Each rule alone: a valid config with one field broken fails with exactly
 * that field's entry. */
static void
test_validate_each_rule (void)
{
  g_autofree char *name256 = repeat ("é", 256);
  g_autofree char *bytes64 = repeat ("d", 64);
  g_autofree char *utf8_64 = repeat ("é", 32); /* 32 chars, 64 bytes */
  g_autofree char *app64 = repeat ("a", 64);

#define BAD(statement, expected)                                               \
  G_STMT_START                                                                 \
  {                                                                            \
    g_autoptr (TuskConnectionConfig) c = valid_config ();                      \
    statement;                                                                 \
    assert_invalid (c, expected);                                              \
  }                                                                            \
  G_STMT_END

  BAD (set (&c->id, "not-a-uuid"), "id: must be a UUID");
  BAD (set (&c->id, NULL), "id: must be a UUID");

  BAD (set (&c->name, NULL), "name: must be 1-255 characters");
  BAD (set (&c->name, ""), "name: must be 1-255 characters");
  BAD (set (&c->name, name256), "name: must be 1-255 characters");
  BAD (set (&c->name, "bad \xff utf-8"), "name: must be 1-255 characters");

  BAD (set (&c->host, NULL), "host: required");
  BAD (set (&c->host, ""), "host: required");
  static const char *const bad_hosts[] = {
    "db password=x",
    "db\n",
    "db\t",
    " db",
    "1::2::3",
    "256.1.1.1",
    "127.1",
    "-db",
    "db-.com",
    "a..b",
    "db/x",
    "dé.example",
    "db'x",
    "fe80::1%eth0 x",
    "db.example.com..",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad_hosts); i++)
    BAD (set (&c->host, bad_hosts[i]),
         "host: must be a host name, an IP address or an absolute socket "
         "directory");
  BAD (set (&c->host, "[::1]"),
       "host: IPv6 addresses are written without brackets");
  BAD (set (&c->host, "db1,db2"),
       "host: must be one host (lists of hosts are not supported)");
  BAD (set (&c->host, "/tmp/a,b"),
       "host: must be one host (lists of hosts are not supported)");
  BAD (set (&c->host, "/tmp/\x01"),
       "host: a socket directory must be UTF-8 without control characters");

  BAD (c->port = 0, "port: must be 1-65535");
  BAD (c->port = -1, "port: must be 1-65535");
  BAD (c->port = 65536, "port: must be 1-65535");

  BAD (set (&c->database, NULL), "database: must be 1-63 bytes of UTF-8");
  BAD (set (&c->database, ""), "database: must be 1-63 bytes of UTF-8");
  BAD (set (&c->database, bytes64), "database: must be 1-63 bytes of UTF-8");
  BAD (set (&c->database, utf8_64), "database: must be 1-63 bytes of UTF-8");
  BAD (set (&c->database, "\xc3"), "database: must be 1-63 bytes of UTF-8");

  BAD (set (&c->username, NULL), "username: must be 1-63 bytes of UTF-8");
  BAD (set (&c->username, ""), "username: must be 1-63 bytes of UTF-8");
  BAD (set (&c->username, bytes64), "username: must be 1-63 bytes of UTF-8");

  BAD (c->ssl_mode = 5,
       "ssl_mode: must be disable, prefer, require, verify-ca or verify-full");
  BAD (set (&c->ssl_root_cert, ""),
       "ssl_root_cert: must be a file path or unset");
  BAD (set (&c->ssl_cert, ""), "ssl_cert: must be a file path or unset");
  BAD (set (&c->ssl_key, "/a\nb"), "ssl_key: must be a file path or unset");

  BAD (c->options.connect_timeout_secs = -1,
       "connect_timeout_secs: must be 0 (wait forever) or more");
  BAD (c->options.statement_timeout_secs = -2,
       "statement_timeout_secs: must be -1 (default), 0 (none) or 1-2147483");
  BAD (c->options.statement_timeout_secs = 2147484,
       "statement_timeout_secs: must be -1 (default), 0 (none) or 1-2147483");

  BAD (set (&c->options.application_name, NULL),
       "application_name: must be 0-63 printable ASCII characters");
  BAD (set (&c->options.application_name, app64),
       "application_name: must be 0-63 printable ASCII characters");
  BAD (set (&c->options.application_name, "café"),
       "application_name: must be 0-63 printable ASCII characters");
  BAD (set (&c->options.application_name, "a\tb"),
       "application_name: must be 0-63 printable ASCII characters");

  static const char *const bad_colors[]
      = { "", "red", "#12345", "#1234567", "#GG0000", "112233", "#12 345" };
  for (guint i = 0; i < G_N_ELEMENTS (bad_colors); i++)
    BAD (set (&c->color, bad_colors[i]), "color: must be #RRGGBB");

  BAD (c->ssh_tunnel = tusk_ssh_tunnel_config_new (),
       "ssh_tunnel.name: must be 1-255 characters; ssh_tunnel.host: "
       "required; ssh_tunnel.username: required");
#undef BAD
}

static void
test_validate_many (void)
{
  g_autoptr (TuskConnectionConfig) config = valid_config ();
  set (&config->name, "");
  config->port = 0;
  set (&config->color, "blue");
  assert_invalid (config, "name: must be 1-255 characters; port: must be "
                          "1-65535; color: must be #RRGGBB");

  set (&config->host, "db password=x");
  set (&config->database, NULL);
  config->options.statement_timeout_secs = -5;
  config->ssh_tunnel = valid_tunnel ();
  config->ssh_tunnel->port = 70000;
  assert_invalid (
      config,
      "name: must be 1-255 characters; host: must be a host name, an IP "
      "address or an absolute socket directory; port: must be 1-65535; "
      "database: must be 1-63 bytes of UTF-8; statement_timeout_secs: must "
      "be -1 (default), 0 (none) or 1-2147483; color: must be #RRGGBB; "
      "ssh_tunnel.port: must be 1-65535");

  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_connection_config_validate (config, &error));
  /* The hint says how to fix each field. */
  const char *hint = tusk_error_get_hint (error);
  g_assert_nonnull (strstr (hint, "name of 1 to 255"));
  g_assert_nonnull (strstr (hint, "port"));
  g_assert_nonnull (strstr (hint, "#"));
}

static void
assert_tunnel_invalid (const TuskSshTunnelConfig *tunnel, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *message
      = g_strdup_printf ("Invalid SSH tunnel: %s", expected);

  g_assert_false (tusk_ssh_tunnel_config_validate (tunnel, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_cmpstr (error->message, ==, message);
  g_assert_nonnull (tusk_error_get_hint (error));
}

static void
test_validate_tunnel (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("tusk-config-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *key = g_build_filename (dir, "id_ed25519", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing", NULL);
  g_assert_true (g_file_set_contents (key, "key\n", -1, &error));

  g_autoptr (TuskSshTunnelConfig) tunnel = valid_tunnel ();
  g_assert_true (tusk_ssh_tunnel_config_validate (tunnel, &error));
  tunnel->auth_method = TUSK_SSH_AUTH_PASSWORD;
  g_assert_true (tusk_ssh_tunnel_config_validate (tunnel, &error));
  set (&tunnel->host, "10.0.0.7");
  tunnel->auth_method = TUSK_SSH_AUTH_KEY;
  set (&tunnel->key_path, key);
  g_assert_true (tusk_ssh_tunnel_config_validate (tunnel, &error));
  g_assert_no_error (error);

  set (&tunnel->key_path, NULL);
  assert_tunnel_invalid (tunnel, "key_path: required for key authentication");
  set (&tunnel->key_path, "");
  assert_tunnel_invalid (tunnel, "key_path: required for key authentication");
  set (&tunnel->key_path, missing);
  assert_tunnel_invalid (tunnel, "key_path: must be an existing file");
  set (&tunnel->key_path, dir);
  assert_tunnel_invalid (tunnel, "key_path: must be an existing file");
  /* Other methods do not need the key. */
  tunnel->auth_method = TUSK_SSH_AUTH_AGENT;
  g_assert_true (tusk_ssh_tunnel_config_validate (tunnel, &error));
  g_assert_no_error (error);

  g_autoptr (TuskSshTunnelConfig) bad = valid_tunnel ();
  set (&bad->id, "x");
  set (&bad->name, NULL);
  set (&bad->host, "/tmp"); /* no socket directories for SSH */
  bad->port = 0;
  set (&bad->username, "");
  bad->auth_method = 7;
  assert_tunnel_invalid (
      bad, "id: must be a UUID; name: must be 1-255 characters; host: must "
           "be a host name or an IP address; port: must be 1-65535; "
           "username: required; auth_method: must be key, password or agent");

  /* Inside a connection, the fields carry the ssh_tunnel. prefix. */
  g_autoptr (TuskConnectionConfig) config = valid_config ();
  config->ssh_tunnel = valid_tunnel ();
  config->ssh_tunnel->auth_method = TUSK_SSH_AUTH_KEY;
  set (&config->ssh_tunnel->key_path, missing);
  assert_invalid (config, "ssh_tunnel.key_path: must be an existing file");
  set (&config->ssh_tunnel->key_path, key);
  assert_valid (config);

  g_assert_no_errno (g_unlink (key));
  g_assert_no_errno (g_rmdir (dir));
}

/* ----------------------------------------------------------- parsing */

static TuskConnectionConfig *
parse_ok (const char *text, char **password)
{
  g_autoptr (GError) error = NULL;
  TuskConnectionConfig *config
      = tusk_connection_config_new_from_string (text, password, &error);
  if (config == NULL)
    g_error ("parsing %s: %s", text, error->message);
  return config;
}

/* Asserts that parsing @text fails with a validation error containing
 * @expected, and that no password comes out. */
static void
assert_parse_fails (const char *text, const char *expected)
{
  g_autoptr (GError) error = NULL;
  char *password = (char *)"untouched";

  g_assert_null (
      tusk_connection_config_new_from_string (text, &password, &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  if (strstr (error->message, expected) == NULL)
    g_error ("parsing %s: expected \"%s\" in \"%s\"", text, expected,
             error->message);
  g_assert_null (password);
  g_assert_nonnull (tusk_error_get_hint (error));
}

static void
test_parse_uri (void)
{
  g_autofree char *password = NULL;
  g_autoptr (TuskConnectionConfig) config = parse_ok (
      "postgresql://a%40b:p%40ss%3Aw%2Frd@[::1]:6543/my%20db"
      "?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt&sslcert=/c.crt"
      "&sslkey=/c.key&connect_timeout=3&application_name=psql%20x",
      &password);

  g_assert_cmpstr (password, ==, "p@ss:w/rd");
  g_assert_cmpstr (config->username, ==, "a@b");
  g_assert_cmpstr (config->host, ==, "::1");
  g_assert_cmpint (config->port, ==, 6543);
  g_assert_cmpstr (config->database, ==, "my db");
  g_assert_cmpint (config->ssl_mode, ==, TUSK_SSL_MODE_VERIFY_FULL);
  g_assert_cmpstr (config->ssl_root_cert, ==, "/etc/ssl/ca.crt");
  g_assert_cmpstr (config->ssl_cert, ==, "/c.crt");
  g_assert_cmpstr (config->ssl_key, ==, "/c.key");
  g_assert_cmpint (config->options.connect_timeout_secs, ==, 3);
  g_assert_cmpstr (config->options.application_name, ==, "psql x");
  g_assert_true (g_uuid_string_is_valid (config->id));
  g_assert_null (config->name);

  /* The postgres:// scheme, surrounding whitespace, no password. */
  g_clear_pointer (&password, g_free);
  g_autoptr (TuskConnectionConfig) short_form
      = parse_ok ("  postgres://me@db.example.com/app\n", &password);
  g_assert_null (password);
  g_assert_cmpstr (short_form->host, ==, "db.example.com");
  g_assert_cmpstr (short_form->username, ==, "me");
  g_assert_cmpstr (short_form->database, ==, "app");
  g_assert_cmpint (short_form->port, ==, 5432);
  g_assert_cmpint (short_form->ssl_mode, ==, TUSK_SSL_MODE_PREFER);

  /* Without @password_out the password is dropped. */
  g_autoptr (TuskConnectionConfig) dropped
      = parse_ok ("postgresql://u:secret@h/d", NULL);
  g_assert_cmpstr (dropped->username, ==, "u");

  /* IPv6 with a zone. */
  g_autoptr (TuskConnectionConfig) zone
      = parse_ok ("postgresql://[fe80::1%25eth0]:5433/x", NULL);
  g_assert_cmpstr (zone->host, ==, "fe80::1%eth0");
  g_assert_cmpint (zone->port, ==, 5433);
}

static void
test_parse_conninfo (void)
{
  g_autofree char *password = NULL;
  g_autoptr (TuskConnectionConfig) config
      = parse_ok ("host=db.example.com port=5433 dbname='my db' "
                  "user='it\\'s' password='p w\\\\' sslmode=require "
                  "application_name=shell connect_timeout=0",
                  &password);

  g_assert_cmpstr (config->host, ==, "db.example.com");
  g_assert_cmpint (config->port, ==, 5433);
  g_assert_cmpstr (config->database, ==, "my db");
  g_assert_cmpstr (config->username, ==, "it's");
  g_assert_cmpstr (password, ==, "p w\\");
  g_assert_cmpint (config->ssl_mode, ==, TUSK_SSL_MODE_REQUIRE);
  g_assert_cmpstr (config->options.application_name, ==, "shell");
  g_assert_cmpint (config->options.connect_timeout_secs, ==, 0);

  /* Nothing given: unset strings stay NULL, the rest at the defaults. */
  static const char *const empty[]
      = { "", "postgresql://", "host='' dbname='' user=''",
          "postgresql://:5432" };
  for (guint i = 0; i < G_N_ELEMENTS (empty); i++)
    {
      g_autoptr (TuskConnectionConfig) c = parse_ok (empty[i], NULL);
      g_assert_null (c->host);
      g_assert_null (c->database);
      g_assert_null (c->username);
      g_assert_null (c->name);
      g_assert_cmpint (c->port, ==, 5432);
      g_assert_cmpint (c->ssl_mode, ==, TUSK_SSL_MODE_PREFER);
      g_assert_cmpint (c->options.connect_timeout_secs, ==, 10);
      g_assert_cmpint (c->options.statement_timeout_secs, ==, -1);
      g_assert_cmpstr (c->options.application_name, ==, "Tusk");
    }

  /* An explicitly empty application_name is kept. */
  g_autoptr (TuskConnectionConfig) no_app
      = parse_ok ("application_name=''", NULL);
  g_assert_cmpstr (no_app->options.application_name, ==, "");

  /* hostaddr alone becomes the host. */
  g_autoptr (TuskConnectionConfig) addr
      = parse_ok ("hostaddr=10.0.0.1 dbname=x", NULL);
  g_assert_cmpstr (addr->host, ==, "10.0.0.1");
}

static void
test_parse_socket (void)
{
  g_autoptr (TuskConnectionConfig) uri
      = parse_ok ("postgresql:///db?host=/var/run/postgresql", NULL);
  g_assert_cmpstr (uri->host, ==, "/var/run/postgresql");
  g_assert_cmpstr (uri->database, ==, "db");
  assert_invalid (uri, "name: must be 1-255 characters; username: must be "
                       "1-63 bytes of UTF-8");

  g_autoptr (TuskConnectionConfig) encoded
      = parse_ok ("postgresql://%2Ftmp/d", NULL);
  g_assert_cmpstr (encoded->host, ==, "/tmp");

  g_autoptr (TuskConnectionConfig) conninfo
      = parse_ok ("host=/tmp dbname=x port=5439", NULL);
  g_assert_cmpstr (conninfo->host, ==, "/tmp");
  g_assert_cmpint (conninfo->port, ==, 5439);
}

static void
test_parse_options (void)
{
  g_autoptr (TuskConnectionConfig) both
      = parse_ok ("options='-c default_transaction_read_only=on -c "
                  "statement_timeout=5min'",
                  NULL);
  g_assert_true (both->options.read_only);
  g_assert_cmpint (both->options.statement_timeout_secs, ==, 300);

  g_autoptr (TuskConnectionConfig) uri = parse_ok (
      "postgresql://h/d?options=-c%20default_transaction_read_only%3Don", NULL);
  g_assert_true (uri->options.read_only);
  g_assert_cmpint (uri->options.statement_timeout_secs, ==, -1);

  g_autoptr (TuskConnectionConfig) forms = parse_ok (
      "options='--default-transaction-read-only=off -cstatement_timeout=2000 "
      "-c  Statement_Timeout=7s'",
      NULL);
  g_assert_false (forms->options.read_only);
  g_assert_cmpint (forms->options.statement_timeout_secs, ==, 7);

  static const char *const units[][2] = {
    { "0", "0" },     { "0s", "0" },     { "1500ms", NULL }, { "3000ms", "3" },
    { "2h", "7200" }, { "1d", "86400" }, { "10x", NULL },    { "-5s", NULL },
    { "s", NULL },    { "1.5s", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    {
      g_autofree char *text
          = g_strdup_printf ("options='-c statement_timeout=%s'", units[i][0]);
      if (units[i][1] == NULL)
        {
          assert_parse_fails (text, "options: only");
          continue;
        }
      g_autoptr (TuskConnectionConfig) c = parse_ok (text, NULL);
      g_assert_cmpint (c->options.statement_timeout_secs, ==,
                       atoi (units[i][1]));
    }

  assert_parse_fails ("options='-c search_path=x'",
                      "options: only -c default_transaction_read_only=on|off "
                      "and -c statement_timeout=<whole seconds> are "
                      "supported");
  assert_parse_fails ("options='-c default_transaction_read_only=maybe'",
                      "options: only");
  assert_parse_fails ("options=-c", "options: only");
  assert_parse_fails ("options=statement_timeout=5", "options: only");
}

static void
test_parse_invalid (void)
{
  /* libpq's own messages. */
  assert_parse_fails ("postgresql://h/db?foo=1",
                      "invalid URI query parameter: \"foo\"");
  assert_parse_fails ("host='x", "unterminated quoted string");
  assert_parse_fails ("bogus=1", "invalid connection option \"bogus\"");
  assert_parse_fails ("host", "missing \"=\"");
  assert_parse_fails ("postgresql://[::1/db", "matching \"]\"");
  assert_parse_fails ("postgresql://h/%zz", "invalid percent-encoded token");

  /* Tusk's rules. */
  assert_parse_fails ("postgresql://h:abc/d",
                      "Invalid connection string: port: must be 1-65535");
  assert_parse_fails ("port=0", "port: must be 1-65535");
  assert_parse_fails ("port=5432,5433", "port: must be 1-65535");
  assert_parse_fails ("postgresql://h1,h2/d", "host: must be one host");
  assert_parse_fails ("sslmode=allow", "sslmode: must be disable, prefer, "
                                       "require, verify-ca or verify-full");
  assert_parse_fails ("sslmode=Prefer", "sslmode: must be");
  assert_parse_fails ("connect_timeout=-1", "connect_timeout: must be");
  assert_parse_fails ("connect_timeout=ten", "connect_timeout: must be");
  assert_parse_fails ("host=a hostaddr=10.0.0.1",
                      "hostaddr: not supported together with host");

  /* Keywords a config cannot keep are named, all of them, in one error. */
  g_autoptr (GError) error = NULL;
  g_assert_null (tusk_connection_config_new_from_string (
      "host=h gssencmode=disable target_session_attrs=any port=x", NULL,
      &error));
  tusk_assert_error (error, TUSK_ERROR_VALIDATION);
  g_assert_nonnull (strstr (error->message, "Invalid connection string: "));
  g_assert_nonnull (
      strstr (error->message, "gssencmode: not supported by Tusk"));
  g_assert_nonnull (
      strstr (error->message, "target_session_attrs: not supported by Tusk"));
  g_assert_nonnull (strstr (error->message, "port: must be 1-65535"));
  /* The hint names each fix once. */
  const char *hint = tusk_error_get_hint (error);
  const char *first = strstr (hint, "Remove the keywords");
  g_assert_nonnull (first);
  g_assert_null (strstr (first + 1, "Remove the keywords"));
}

/* A password never comes out of a failed parse, not even in the message. */
static void
test_parse_keeps_password_secret (void)
{
  static const char *const texts[] = {
    "postgresql://u:s3cr3t@h:abc/d", "postgresql://u:s3cr3t@[::1/d",
    "postgresql://u:s3cr3t@h/%zz",   "postgresql://u:s3cr3t@h/d?bogus=1",
    "password=s3cr3t sslmode=allow",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (GError) error = NULL;
      char *password = (char *)"untouched";
      g_assert_null (
          tusk_connection_config_new_from_string (texts[i], &password, &error));
      tusk_assert_error (error, TUSK_ERROR_VALIDATION);
      g_assert_null (password);
      if (strstr (error->message, "s3cr3t"))
        g_error ("the password leaked: %s", error->message);
    }
}

/* ------------------------------------------------------- round trips */

static void
assert_same_carried (const TuskConnectionConfig *a,
                     const TuskConnectionConfig *b, const char *text)
{
  g_test_message ("round trip of %s", text);
  g_assert_cmpstr (a->host, ==, b->host);
  g_assert_cmpint (a->port, ==, b->port);
  g_assert_cmpstr (a->database, ==, b->database);
  g_assert_cmpstr (a->username, ==, b->username);
  g_assert_cmpint (a->ssl_mode, ==, b->ssl_mode);
  g_assert_cmpstr (a->ssl_root_cert, ==, b->ssl_root_cert);
  g_assert_cmpstr (a->ssl_cert, ==, b->ssl_cert);
  g_assert_cmpstr (a->ssl_key, ==, b->ssl_key);
  g_assert_cmpint (a->options.connect_timeout_secs, ==,
                   b->options.connect_timeout_secs);
  g_assert_cmpint (a->options.statement_timeout_secs, ==,
                   b->options.statement_timeout_secs);
  g_assert_cmpint (a->options.read_only, ==, b->options.read_only);
  g_assert_cmpstr (a->options.application_name, ==,
                   b->options.application_name);
}

static void
assert_round_trips (const TuskConnectionConfig *config)
{
  g_autofree char *uri = tusk_connection_config_to_uri (config);
  g_autofree char *conninfo = tusk_connection_config_to_conninfo (config);
  g_autofree char *password = NULL;

  g_autoptr (TuskConnectionConfig) from_uri = parse_ok (uri, &password);
  g_assert_null (password);
  assert_same_carried (config, from_uri, uri);
  g_autoptr (TuskConnectionConfig) from_conninfo
      = parse_ok (conninfo, &password);
  g_assert_null (password);
  assert_same_carried (config, from_conninfo, conninfo);
}

static void
test_render (void)
{
  g_autoptr (TuskConnectionConfig) config = valid_config ();
  g_autofree char *uri = tusk_connection_config_to_uri (config);
  g_autofree char *conninfo = tusk_connection_config_to_conninfo (config);
  g_assert_cmpstr (uri, ==, "postgresql://me@db.example.com:5432/app");
  g_assert_cmpstr (conninfo, ==,
                   "host=db.example.com port=5432 dbname=app user=me");

  g_autoptr (TuskConnectionConfig) v6 = valid_config ();
  set (&v6->host, "::1");
  set (&v6->username, "a@b");
  set (&v6->database, "my db");
  set (&v6->ssl_root_cert, "/etc/ssl/my ca.crt");
  v6->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  g_autofree char *v6_uri = tusk_connection_config_to_uri (v6);
  g_assert_cmpstr (v6_uri, ==,
                   "postgresql://a%40b@[::1]:5432/my%20db?sslmode=verify-full"
                   "&sslrootcert=/etc/ssl/my%20ca.crt");
  g_autofree char *v6_conninfo = tusk_connection_config_to_conninfo (v6);
  g_assert_cmpstr (v6_conninfo, ==,
                   "host=::1 port=5432 dbname='my db' user=a@b "
                   "sslmode=verify-full sslrootcert='/etc/ssl/my ca.crt'");

  g_autoptr (TuskConnectionConfig) sock = valid_config ();
  set (&sock->host, "/var/run/postgresql");
  set (&sock->database, "x' host='evil");
  set (&sock->username, "a b=c");
  set (&sock->options.application_name, "x' options='-c log_statement=all");
  sock->port = 5433;
  sock->options.read_only = TRUE;
  sock->options.statement_timeout_secs = 0;
  sock->options.connect_timeout_secs = 0;
  g_autofree char *sock_uri = tusk_connection_config_to_uri (sock);
  g_assert_cmpstr (
      sock_uri, ==,
      "postgresql://a%20b%3Dc@:5433/x%27%20host%3D%27evil"
      "?host=/var/run/postgresql&connect_timeout=0"
      "&application_name=x%27%20options%3D%27-c%20log_statement%3Dall"
      "&options=-c%20default_transaction_read_only%3Don%20-c%20statement_"
      "timeout%3D0s");
  g_autofree char *sock_conninfo = tusk_connection_config_to_conninfo (sock);
  g_assert_cmpstr (sock_conninfo, ==,
                   "host=/var/run/postgresql port=5433 "
                   "dbname='x\\' host=\\'evil' user='a b=c' "
                   "connect_timeout=0 "
                   "application_name='x\\' options=\\'-c log_statement=all' "
                   "options='-c default_transaction_read_only=on -c "
                   "statement_timeout=0s'");

  /* Nothing set renders nothing but the port. */
  g_autoptr (TuskConnectionConfig) empty = tusk_connection_config_new ();
  g_autofree char *empty_uri = tusk_connection_config_to_uri (empty);
  g_autofree char *empty_conninfo = tusk_connection_config_to_conninfo (empty);
  g_assert_cmpstr (empty_uri, ==, "postgresql://:5432");
  g_assert_cmpstr (empty_conninfo, ==, "port=5432");
}

static void
test_round_trip (void)
{
  g_autoptr (TuskConnectionConfig) config = valid_config ();
  assert_round_trips (config);

  static const char *const hosts[]
      = { "::1",       "fe80::1%eth0", "127.0.0.1",
          "localhost", "/tmp/a dir/ü", "/var/run/postgresql" };
  for (guint i = 0; i < G_N_ELEMENTS (hosts); i++)
    {
      set (&config->host, hosts[i]);
      assert_round_trips (config);
    }

  static const char *const names[] = {
    "a@b",        "my db", "x' host='evil", "a b=c", "ü ser",
    "d%b&c?=#/+", "'\\",   "\\'",           "a:b",   "[x]",
  };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      set (&config->username, names[i]);
      set (&config->database, names[i]);
      set (&config->options.application_name, names[i]);
      set (&config->ssl_key, names[i]);
      assert_round_trips (config);
    }

  for (TuskSslMode mode = TUSK_SSL_MODE_DISABLE;
       mode <= TUSK_SSL_MODE_VERIFY_FULL; mode++)
    {
      config->ssl_mode = mode;
      assert_round_trips (config);
    }

  set (&config->ssl_root_cert, "/etc/ssl/ca.crt");
  set (&config->ssl_cert, "C:\\certs\\client.crt");
  set (&config->options.application_name, "");
  config->port = 1;
  config->options.connect_timeout_secs = 0;
  config->options.statement_timeout_secs = 0;
  config->options.read_only = TRUE;
  assert_round_trips (config);
  config->port = 65535;
  config->options.connect_timeout_secs = 1;
  config->options.statement_timeout_secs = 2147483;
  config->options.read_only = FALSE;
  assert_round_trips (config);

  /* And unset strings stay unset. */
  g_autoptr (TuskConnectionConfig) empty = tusk_connection_config_new ();
  assert_round_trips (empty);
  /* The cases from the issue, parsed, rendered and parsed again. */
  static const char *const texts[] = {
    "postgresql://a%40b:p%40ss%3Aw%2Frd@[::1]:5432/my%20db?sslmode=verify-full",
    "postgresql:///db?host=/var/run/postgresql",
    "host=/tmp dbname=x",
  };
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autofree char *password = NULL;
      g_autoptr (TuskConnectionConfig) c = parse_ok (texts[i], &password);
      assert_round_trips (c);
      g_autofree char *uri = tusk_connection_config_to_uri (c);
      g_assert_null (strstr (uri, "ss:w"));
    }
}

/* ----------------------------------------------------- libpq params */

/* Asserts that each keyword of @params appears once and that the arrays
 * are parallel and NULL-terminated. */
static void
assert_params_well_formed (const TuskPgParams *params)
{
  const char *const *keywords = tusk_pg_params_keywords (params);
  const char *const *values = tusk_pg_params_values (params);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint n = 0;

  for (; keywords[n]; n++)
    {
      g_assert_nonnull (values[n]);
      if (!g_hash_table_add (seen, (gpointer)keywords[n]))
        g_error ("keyword %s appears twice", keywords[n]);
    }
  g_assert_null (values[n]);
}

static void
test_params (void)
{
  g_autoptr (TuskConnectionConfig) config = valid_config ();
  set (&config->host, "db password=x");
  set (&config->database, "x' host='evil");
  set (&config->username, "a b=c");
  set (&config->options.application_name, "x' options='-c log_statement=all");
  const char *password = "pw' sslmode='disable";

  g_autoptr (TuskPgParams) params
      = tusk_connection_config_to_params (config, password, NULL);
  assert_params_well_formed (params);
  static const char *const expected[][2] = {
    { "host", "db password=x" },
    { "port", "5432" },
    { "dbname", "x' host='evil" },
    { "user", "a b=c" },
    { "password", "pw' sslmode='disable" },
    { "sslmode", "prefer" },
    { "connect_timeout", "10" },
    { "application_name", "x' options='-c log_statement=all" },
    { "keepalives", "1" },
    { "keepalives_idle", "60" },
    { "keepalives_interval", "15" },
    { "keepalives_count", "3" },
    { "options", "-c statement_timeout=30s "
                 "-c idle_in_transaction_session_timeout=60s" },
  };
  const char *const *keywords = tusk_pg_params_keywords (params);
  g_assert_cmpuint (g_strv_length ((char **)keywords), ==,
                    G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_cmpstr (tusk_pg_params_get (params, expected[i][0]), ==,
                     expected[i][1]);

  /* No password: the keyword is absent, so PGPASSWORD and ~/.pgpass apply.
   * Certificates appear when set; read-only and a statement timeout go into
   * options. */
  set (&config->ssl_root_cert, "/ca dir/ca.crt");
  set (&config->ssl_cert, "/c.crt");
  set (&config->ssl_key, "/c.key");
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  config->options.read_only = TRUE;
  config->options.statement_timeout_secs = 5;
  g_autoptr (TuskPgParams) other
      = tusk_connection_config_to_params (config, NULL, NULL);
  assert_params_well_formed (other);
  g_assert_null (tusk_pg_params_get (other, "password"));
  g_assert_cmpstr (tusk_pg_params_get (other, "sslmode"), ==, "verify-full");
  g_assert_cmpstr (tusk_pg_params_get (other, "sslrootcert"), ==,
                   "/ca dir/ca.crt");
  g_assert_cmpstr (tusk_pg_params_get (other, "sslcert"), ==, "/c.crt");
  g_assert_cmpstr (tusk_pg_params_get (other, "sslkey"), ==, "/c.key");
  g_assert_cmpstr (tusk_pg_params_get (other, "options"), ==,
                   "-c statement_timeout=5s "
                   "-c idle_in_transaction_session_timeout=60s "
                   "-c default_transaction_read_only=on");

  /* The pool's own defaults. */
  const TuskSessionDefaults defaults = { 12, 0, 30, 5, 2 };
  config->options.statement_timeout_secs = -1;
  config->options.read_only = FALSE;
  g_autoptr (TuskPgParams) custom
      = tusk_connection_config_to_params (config, NULL, &defaults);
  g_assert_cmpstr (tusk_pg_params_get (custom, "options"), ==,
                   "-c statement_timeout=12s "
                   "-c idle_in_transaction_session_timeout=0s");
  g_assert_cmpstr (tusk_pg_params_get (custom, "keepalives_idle"), ==, "30");
  g_assert_cmpstr (tusk_pg_params_get (custom, "keepalives_interval"), ==, "5");
  g_assert_cmpstr (tusk_pg_params_get (custom, "keepalives_count"), ==, "2");
  config->options.statement_timeout_secs = 0;
  g_autoptr (TuskPgParams) none
      = tusk_connection_config_to_params (config, NULL, &defaults);
  g_assert_cmpstr (tusk_pg_params_get (none, "options"), ==,
                   "-c statement_timeout=0s "
                   "-c idle_in_transaction_session_timeout=0s");

  /* Setting replaces; NULL removes; the arrays stay parallel. */
  tusk_pg_params_set (none, "host", "other");
  tusk_pg_params_set (none, "hostaddr", "127.0.0.1");
  tusk_pg_params_set (none, "password", "a");
  tusk_pg_params_set (none, "password", "b");
  tusk_pg_params_set (none, "sslkey", NULL);
  tusk_pg_params_set (none, "nothing", NULL);
  assert_params_well_formed (none);
  g_assert_cmpstr (tusk_pg_params_get (none, "host"), ==, "other");
  g_assert_cmpstr (tusk_pg_params_get (none, "hostaddr"), ==, "127.0.0.1");
  g_assert_cmpstr (tusk_pg_params_get (none, "password"), ==, "b");
  g_assert_null (tusk_pg_params_get (none, "sslkey"));
  tusk_pg_params_set (none, "password", NULL);
  g_assert_null (tusk_pg_params_get (none, "password"));
  assert_params_well_formed (none);
}

/* ------------------------------------------------- against the server */

/* A config for the test server as the trust role. */
static TuskConnectionConfig *
server_config (void)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  set (&config->name, "test server");
  set (&config->host, tusk_test_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (tusk_test_env ("TUSK_TEST_PGPORT"));
  set (&config->database, tusk_test_env ("TUSK_TEST_PGDATABASE"));
  set (&config->username, tusk_test_env ("TUSK_TEST_PGUSER_TRUST"));
  return config;
}

static PGconn *
open_params (const TuskPgParams *params, GError **error)
{
  return tusk_pg_connect (tusk_pg_params_keywords (params),
                          tusk_pg_params_values (params), NULL, error);
}

static PGconn *
open_config (const TuskConnectionConfig *config, const char *password,
             GError **error)
{
  g_autoptr (TuskPgParams) params
      = tusk_connection_config_to_params (config, password, NULL);
  return open_params (params, error);
}

static PGconn *
open_ok (const TuskConnectionConfig *config, const char *password)
{
  g_autoptr (GError) error = NULL;
  PGconn *conn = open_config (config, password, &error);
  g_assert_no_error (error);
  g_assert_nonnull (conn);
  return conn;
}

/* Runs @sql and returns (transfer full) the first column of its row. */
static char *
query_value (PGconn *conn, const char *sql)
{
  g_autoptr (PGresult) res = PQexec (conn, sql);
  if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
    g_error ("%s: %s", sql, PQerrorMessage (conn));
  return g_strdup (PQgetvalue (res, 0, 0));
}

static void
exec_ok (PGconn *conn, const char *sql)
{
  g_autoptr (PGresult) res = PQexec (conn, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK)
    g_error ("%s: %s", sql, PQerrorMessage (conn));
}

/* Database, user (as far as the server's rules let another role in) and
 * application_name with quotes, spaces and '=' arrive as written; a host
 * with a space is looked up as a host name. */
static void
test_server_literal_values (void)
{
  g_autoptr (TuskConnectionConfig) admin_config = server_config ();
  g_autoptr (PGconn) admin = open_ok (admin_config, NULL);
  g_autofree char *dbname
      = g_strdup_printf ("x' host='evil %08x", g_random_int ());
  char *quoted = PQescapeIdentifier (admin, dbname, strlen (dbname));
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", quoted);
  g_autofree char *drop
      = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", quoted);
  PQfreemem (quoted);
  exec_ok (admin, create);

  g_autoptr (TuskConnectionConfig) config = server_config ();
  set (&config->database, dbname);
  set (&config->options.application_name, "x' options='-c log_statement=all");
  assert_valid (config);
  {
    g_autoptr (PGconn) conn = open_ok (config, NULL);
    g_autofree char *user = query_value (conn, "SELECT current_user");
    g_autofree char *db = query_value (conn, "SELECT current_database()");
    g_autofree char *app
        = query_value (conn, "SELECT current_setting('application_name')");
    g_autofree char *log = query_value (conn, "SHOW log_statement");
    g_autofree char *admin_log = query_value (admin, "SHOW log_statement");
    g_assert_cmpstr (user, ==, config->username);
    g_assert_cmpstr (db, ==, dbname);
    g_assert_cmpstr (app, ==, "x' options='-c log_statement=all");
    g_assert_cmpstr (log, ==, admin_log);
  }
  exec_ok (admin, drop);

  /* The server's rules admit only the test roles, so a user "a b=c" is
   * refused, and its refusal names the user exactly as sent. */
  g_autoptr (TuskConnectionConfig) user = server_config ();
  set (&user->username, "a b=c");
  assert_valid (user);
  g_autoptr (GError) error = NULL;
  g_assert_null (open_config (user, "x' user='tusk", &error));
  g_assert_nonnull (error);
  g_test_message ("refused: %s", error->message);
  if (strstr (error->message, "user \"a b=c\"") == NULL)
    g_error ("expected the user \"a b=c\" in: %s", error->message);

  /* A host with a space is a host name nobody can resolve, not a password
   * keyword. */
  g_autoptr (TuskConnectionConfig) host = server_config ();
  set (&host->host, "db password=x");
  g_clear_error (&error);
  g_assert_null (open_config (host, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_CONNECTION);
  g_test_message ("unknown host: %s", error->message);
  if (strstr (error->message, "\"db password=x\"") == NULL)
    g_error ("expected the host \"db password=x\" in: %s", error->message);
}

static void
test_server_session_defaults (void)
{
  g_autoptr (TuskConnectionConfig) config = server_config ();
  {
    g_autoptr (PGconn) conn = open_ok (config, NULL);
    g_autofree char *statement = query_value (conn, "SHOW statement_timeout");
    g_autofree char *idle
        = query_value (conn, "SHOW idle_in_transaction_session_timeout");
    g_autofree char *read_only
        = query_value (conn, "SHOW default_transaction_read_only");
    g_autofree char *app = query_value (conn, "SHOW application_name");
    g_assert_cmpstr (statement, ==, "30s");
    g_assert_cmpstr (idle, ==, "1min");
    g_assert_cmpstr (read_only, ==, "off");
    g_assert_cmpstr (app, ==, "Tusk");
  }

  static const struct
  {
    int secs;
    const char *shown;
  } timeouts[] = { { 0, "0" }, { 90, "90s" }, { 7200, "2h" } };
  for (guint i = 0; i < G_N_ELEMENTS (timeouts); i++)
    {
      config->options.statement_timeout_secs = timeouts[i].secs;
      g_autoptr (PGconn) conn = open_ok (config, NULL);
      g_autofree char *statement = query_value (conn, "SHOW statement_timeout");
      g_assert_cmpstr (statement, ==, timeouts[i].shown);
    }

  /* Read-only is the server's: writes fail with 25006. */
  config->options.read_only = TRUE;
  g_autoptr (PGconn) conn = open_ok (config, NULL);
  g_autofree char *read_only
      = query_value (conn, "SHOW default_transaction_read_only");
  g_assert_cmpstr (read_only, ==, "on");
  g_autoptr (PGresult) res
      = PQexec (conn, "CREATE TEMP TABLE tusk_read_only_probe (x int)");
  g_assert_cmpint (PQresultStatus (res), ==, PGRES_FATAL_ERROR);
  g_assert_cmpstr (PQresultErrorField (res, PG_DIAG_SQLSTATE), ==, "25006");
}

/* The password goes through when given; when not, libpq's PGPASSWORD
 * still works. */
static void
test_server_password (void)
{
  g_autoptr (TuskConnectionConfig) config = server_config ();
  const char *password = tusk_test_env ("TUSK_TEST_PGPASSWORD");
  set (&config->username, tusk_test_env ("TUSK_TEST_PGUSER_PASSWORD"));
  {
    g_autoptr (PGconn) conn = open_ok (config, password);
    g_autofree char *user = query_value (conn, "SELECT current_user");
    g_assert_cmpstr (user, ==, config->username);
  }

  g_autoptr (GError) error = NULL;
  g_assert_null (open_config (config, "wrong", &error));
  tusk_assert_error (error, TUSK_ERROR_AUTHENTICATION);

  g_assert_null (g_getenv ("PGPASSWORD"));
  g_setenv ("PGPASSWORD", password, TRUE);
  PQfinish (open_ok (config, NULL));
  g_unsetenv ("PGPASSWORD");
}

static void
test_server_socket (void)
{
  g_autoptr (TuskConnectionConfig) config = server_config ();
  set (&config->host, tusk_test_env ("TUSK_TEST_PGSOCKET"));
  assert_valid (config);
  g_autoptr (PGconn) conn = open_ok (config, NULL);
  g_assert_cmpstr (PQhost (conn), ==, config->host);
  g_assert_false (PQsslInUse (conn));
}

static void
test_server_ssl_modes (void)
{
  const char *root_cert = tusk_test_env ("TUSK_TEST_SSL_ROOT_CERT");
  static const struct
  {
    TuskSslMode mode;
    const char *host;
    gboolean root_cert;
    gboolean ssl;
  } modes[] = {
    { TUSK_SSL_MODE_DISABLE, NULL, FALSE, FALSE },
    { TUSK_SSL_MODE_PREFER, NULL, FALSE, TRUE },
    { TUSK_SSL_MODE_REQUIRE, NULL, FALSE, TRUE },
    { TUSK_SSL_MODE_VERIFY_CA, NULL, TRUE, TRUE },
    { TUSK_SSL_MODE_VERIFY_FULL, "localhost", TRUE, TRUE },
    { TUSK_SSL_MODE_VERIFY_FULL, "127.0.0.1", TRUE, TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autoptr (TuskConnectionConfig) config = server_config ();
      config->ssl_mode = modes[i].mode;
      if (modes[i].host)
        set (&config->host, modes[i].host);
      if (modes[i].root_cert)
        set (&config->ssl_root_cert, root_cert);
      g_test_message ("sslmode %s host %s",
                      tusk_ssl_mode_to_string (config->ssl_mode), config->host);
      assert_valid (config);
      g_autoptr (PGconn) conn = open_ok (config, NULL);
      g_assert_cmpint (PQsslInUse (conn), ==, modes[i].ssl);
    }

  /* verify-full against a name the certificate does not carry: the name
   * is tusk.invalid, the address (hostaddr, added to the parameters, not a
   * config field) the test server's. */
  g_autoptr (TuskConnectionConfig) config = server_config ();
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  set (&config->host, "tusk.invalid");
  set (&config->ssl_root_cert, root_cert);
  g_autoptr (TuskPgParams) params
      = tusk_connection_config_to_params (config, NULL, NULL);
  tusk_pg_params_set (params, "hostaddr", tusk_test_env ("TUSK_TEST_PGHOST"));
  g_autoptr (GError) error = NULL;
  g_assert_null (open_params (params, &error));
  tusk_assert_error (error, TUSK_ERROR_SSL);
  g_assert_nonnull (strstr (error->message, "tusk.invalid"));

  /* verify-ca with a root certificate file that is not there. */
  g_clear_error (&error);
  config->ssl_mode = TUSK_SSL_MODE_VERIFY_CA;
  set (&config->host, tusk_test_env ("TUSK_TEST_PGHOST"));
  set (&config->ssl_root_cert, "/nonexistent/tusk-root.crt");
  g_assert_null (open_config (config, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_SSL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tusk/connection-config/defaults", test_defaults);
  g_test_add_func ("/tusk/connection-config/copy", test_copy);
  g_test_add_func ("/tusk/connection-config/enum-strings", test_enum_strings);
  g_test_add_func ("/tusk/connection-config/validate/accepts",
                   test_validate_accepts);
  g_test_add_func ("/tusk/connection-config/validate/each-rule",
                   test_validate_each_rule);
  g_test_add_func ("/tusk/connection-config/validate/many", test_validate_many);
  g_test_add_func ("/tusk/connection-config/validate/tunnel",
                   test_validate_tunnel);
  g_test_add_func ("/tusk/connection-config/parse/uri", test_parse_uri);
  g_test_add_func ("/tusk/connection-config/parse/conninfo",
                   test_parse_conninfo);
  g_test_add_func ("/tusk/connection-config/parse/socket", test_parse_socket);
  g_test_add_func ("/tusk/connection-config/parse/options", test_parse_options);
  g_test_add_func ("/tusk/connection-config/parse/invalid", test_parse_invalid);
  g_test_add_func ("/tusk/connection-config/parse/password-secret",
                   test_parse_keeps_password_secret);
  g_test_add_func ("/tusk/connection-config/render", test_render);
  g_test_add_func ("/tusk/connection-config/round-trip", test_round_trip);
  g_test_add_func ("/tusk/connection-config/params", test_params);
  g_test_add_func ("/tusk/connection-config/server/literal-values",
                   test_server_literal_values);
  g_test_add_func ("/tusk/connection-config/server/session-defaults",
                   test_server_session_defaults);
  g_test_add_func ("/tusk/connection-config/server/password",
                   test_server_password);
  g_test_add_func ("/tusk/connection-config/server/socket", test_server_socket);
  g_test_add_func ("/tusk/connection-config/server/ssl-modes",
                   test_server_ssl_modes);

  return g_test_run ();
}
