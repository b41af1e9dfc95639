/* tusk-connection-config.c: connection and SSH tunnel configs: defaults,
 * copies, validation, URI / conninfo parsing and rendering, and the libpq
 * parameters a config opens a connection with.
 *
 * Decisions the data model leaves open:
 * - Lengths that PostgreSQL enforces are counted as the server counts them:
 *   database and username at most 63 bytes (NAMEDATALEN - 1; the server
 *   truncates longer names at startup and would connect to a different
 *   database), application_name at most 63 printable ASCII characters (the
 *   server truncates it and turns other bytes into '?').  The display name
 *   counts UTF-8 characters.
 * - Hosts are stored as libpq takes them: IPv6 addresses without brackets,
 *   socket directories as absolute paths (which may contain spaces: they
 *   reach libpq as one value).  A host name may not contain spaces, control
 *   characters or commas (libpq would split a comma list into several
 *   hosts), so "db password=x" is rejected as a host name.
 * - Parsing refuses what a config cannot keep instead of dropping it.
 */
#define G_LOG_DOMAIN "tusk-config"

#include "tusk-connection-config-private.h"

#include <string.h>

#include <libpq-fe.h>

#include "tusk-error.h"

#define DEFAULT_PORT            5432
#define DEFAULT_SSH_PORT        22
#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_APP_NAME        "Tusk"
#define NAME_MAX_CHARS          255
#define PG_NAME_MAX_BYTES       63 /* NAMEDATALEN - 1 */
/* statement_timeout is an int of milliseconds on the server. */
#define MAX_STATEMENT_TIMEOUT_SECS (G_MAXINT / 1000)

/* ------------------------------------------------------------ enums */

static const char *const ssl_mode_names[] = {
  [TUSK_SSL_MODE_DISABLE] = "disable",
  [TUSK_SSL_MODE_PREFER] = "prefer",
  [TUSK_SSL_MODE_REQUIRE] = "require",
  [TUSK_SSL_MODE_VERIFY_CA] = "verify-ca",
  [TUSK_SSL_MODE_VERIFY_FULL] = "verify-full",
};

static const char *const ssh_auth_names[] = {
  [TUSK_SSH_AUTH_KEY] = "key",
  [TUSK_SSH_AUTH_PASSWORD] = "password",
  [TUSK_SSH_AUTH_AGENT] = "agent",
};

static gboolean
ssl_mode_is_valid (TuskSslMode mode)
{
  return (guint)mode < G_N_ELEMENTS (ssl_mode_names);
}

static gboolean
ssh_auth_is_valid (TuskSshAuthMethod method)
{
  return (guint)method < G_N_ELEMENTS (ssh_auth_names);
}

const char *
tusk_ssl_mode_to_string (TuskSslMode mode)
{
  g_return_val_if_fail (ssl_mode_is_valid (mode), NULL);
  return ssl_mode_names[mode];
}

gboolean
tusk_ssl_mode_from_string (const char *text, TuskSslMode *mode)
{
  g_return_val_if_fail (mode != NULL, FALSE);

  for (guint i = 0; text && i < G_N_ELEMENTS (ssl_mode_names); i++)
    if (g_str_equal (text, ssl_mode_names[i]))
      {
        *mode = (TuskSslMode)i;
        return TRUE;
      }
  return FALSE;
}

const char *
tusk_ssh_auth_method_to_string (TuskSshAuthMethod method)
{
  g_return_val_if_fail (ssh_auth_is_valid (method), NULL);
  return ssh_auth_names[method];
}

gboolean
tusk_ssh_auth_method_from_string (const char *text, TuskSshAuthMethod *method)
{
  g_return_val_if_fail (method != NULL, FALSE);

  for (guint i = 0; text && i < G_N_ELEMENTS (ssh_auth_names); i++)
    if (g_str_equal (text, ssh_auth_names[i]))
      {
        *method = (TuskSshAuthMethod)i;
        return TRUE;
      }
  return FALSE;
}

/* ------------------------------------------------- new / copy / free */

TuskSshTunnelConfig *
tusk_ssh_tunnel_config_new (void)
{
  TuskSshTunnelConfig *tunnel = g_new0 (TuskSshTunnelConfig, 1);

  tunnel->id = g_uuid_string_random ();
  tunnel->port = DEFAULT_SSH_PORT;
  tunnel->auth_method = TUSK_SSH_AUTH_AGENT;
  return tunnel;
}

TuskSshTunnelConfig *
tusk_ssh_tunnel_config_copy (const TuskSshTunnelConfig *tunnel)
{
  g_return_val_if_fail (tunnel != NULL, NULL);

  TuskSshTunnelConfig *copy = g_new0 (TuskSshTunnelConfig, 1);
  copy->id = g_strdup (tunnel->id);
  copy->name = g_strdup (tunnel->name);
  copy->host = g_strdup (tunnel->host);
  copy->port = tunnel->port;
  copy->username = g_strdup (tunnel->username);
  copy->auth_method = tunnel->auth_method;
  copy->key_path = g_strdup (tunnel->key_path);
  return copy;
}

void
tusk_ssh_tunnel_config_free (TuskSshTunnelConfig *tunnel)
{
  if (tunnel == NULL)
    return;
  g_free (tunnel->id);
  g_free (tunnel->name);
  g_free (tunnel->host);
  g_free (tunnel->username);
  g_free (tunnel->key_path);
  g_free (tunnel);
}

TuskConnectionConfig *
tusk_connection_config_new (void)
{
  TuskConnectionConfig *config = g_new0 (TuskConnectionConfig, 1);

  config->id = g_uuid_string_random ();
  config->port = DEFAULT_PORT;
  config->ssl_mode = TUSK_SSL_MODE_PREFER;
  config->options.connect_timeout_secs = DEFAULT_CONNECT_TIMEOUT;
  config->options.statement_timeout_secs = -1;
  config->options.read_only = FALSE;
  config->options.application_name = g_strdup (DEFAULT_APP_NAME);
  return config;
}

TuskConnectionConfig *
tusk_connection_config_copy (const TuskConnectionConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  TuskConnectionConfig *copy = g_new0 (TuskConnectionConfig, 1);
  copy->id = g_strdup (config->id);
  copy->name = g_strdup (config->name);
  copy->host = g_strdup (config->host);
  copy->port = config->port;
  copy->database = g_strdup (config->database);
  copy->username = g_strdup (config->username);
  copy->ssl_mode = config->ssl_mode;
  copy->ssl_root_cert = g_strdup (config->ssl_root_cert);
  copy->ssl_cert = g_strdup (config->ssl_cert);
  copy->ssl_key = g_strdup (config->ssl_key);
  if (config->ssh_tunnel)
    copy->ssh_tunnel = tusk_ssh_tunnel_config_copy (config->ssh_tunnel);
  copy->options = config->options;
  copy->options.application_name = g_strdup (config->options.application_name);
  copy->color = g_strdup (config->color);
  copy->last_connected_at = g_strdup (config->last_connected_at);
  return copy;
}

void
tusk_connection_config_free (TuskConnectionConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->id);
  g_free (config->name);
  g_free (config->host);
  g_free (config->database);
  g_free (config->username);
  g_free (config->ssl_root_cert);
  g_free (config->ssl_cert);
  g_free (config->ssl_key);
  tusk_ssh_tunnel_config_free (config->ssh_tunnel);
  g_free (config->options.application_name);
  g_free (config->color);
  g_free (config->last_connected_at);
  g_free (config);
}

/* ------------------------------------------------------- problems */

/* The bad fields found so far: "field: rule" entries for the message, and
 * one sentence per entry saying how to fix it, for the hint. */
typedef struct
{
  GString *message;
  GString *hint;
  guint count;
} Problems;

static void
problems_init (Problems *problems)
{
  problems->message = g_string_new (NULL);
  problems->hint = g_string_new (NULL);
  problems->count = 0;
}

/* Adds "@prefix@field: @rule" to the message and @fix, unless it is there
 * already, to the hint. */
static void
problems_add (Problems *problems, const char *prefix, const char *field,
              const char *rule, const char *fix)
{
  if (problems->count++ > 0)
    g_string_append (problems->message, "; ");
  g_string_append_printf (problems->message, "%s%s: %s", prefix, field, rule);
  if (strstr (problems->hint->str, fix) == NULL)
    {
      if (problems->hint->len > 0)
        g_string_append_c (problems->hint, ' ');
      g_string_append (problems->hint, fix);
    }
}

/* Frees @problems.  Returns TRUE when there were none; otherwise sets
 * @error to one TUSK_ERROR_VALIDATION "@what: entry; entry" and returns
 * FALSE. */
static gboolean
problems_finish (Problems *problems, const char *what, GError **error)
{
  gboolean ok = problems->count == 0;

  if (!ok)
    tusk_set_error (error, TUSK_ERROR_VALIDATION, problems->hint->str, "%s: %s",
                    what, problems->message->str);
  g_string_free (problems->message, TRUE);
  g_string_free (problems->hint, TRUE);
  return ok;
}

/* ------------------------------------------------------ validation */

static gboolean
has_control_chars (const char *text)
{
  for (const char *p = text; *p; p++)
    if ((guchar)*p < 0x20 || *p == 0x7f)
      return TRUE;
  return FALSE;
}

/* TRUE for 1-@max_chars UTF-8 characters. */
static gboolean
utf8_chars_between (const char *text, glong max_chars)
{
  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    return FALSE;
  glong n = g_utf8_strlen (text, -1);
  return n >= 1 && n <= max_chars;
}

/* TRUE for 1-63 bytes of valid UTF-8, a name the server keeps whole. */
static gboolean
is_pg_name (const char *text)
{
  return text != NULL && *text != '\0' && strlen (text) <= PG_NAME_MAX_BYTES
         && g_utf8_validate (text, -1, NULL);
}

/* A DNS name (RFC 1123, plus '_' as container names use): dot-separated
 * labels of 1-63 letters, digits, '-' and '_', not starting or ending with
 * '-', at most 253 characters, an optional final dot, and a last label
 * that is not all digits (that would be a malformed IPv4 address). */
static gboolean
is_dns_name (const char *host)
{
  gsize len = strlen (host);

  if (len > 0 && host[len - 1] == '.')
    len--;
  if (len == 0 || len > 253)
    return FALSE;

  gboolean all_digits = FALSE;
  gsize i = 0;
  while (i < len)
    {
      gsize start = i;
      all_digits = TRUE;
      while (i < len && host[i] != '.')
        {
          char c = host[i];
          if (!g_ascii_isalnum (c) && c != '-' && c != '_')
            return FALSE;
          if (!g_ascii_isdigit (c))
            all_digits = FALSE;
          i++;
        }
      if (i == start || i - start > 63 || host[start] == '-'
          || host[i - 1] == '-')
        return FALSE;
      if (i < len && ++i == len) /* a dot followed by nothing: ".." */
        return FALSE;
    }
  return !all_digits;
}

/* An IPv4 or IPv6 address (with an optional "%zone" of letters, digits, '.',
 * '_' and '-'), or a DNS name. */
static gboolean
is_network_host (const char *host)
{
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr (".:-_%", *p))
      return FALSE;
  return g_hostname_is_ip_address (host) || is_dns_name (host);
}

/* Checks a host; @allow_socket_dir accepts an absolute directory (the
 * PostgreSQL host, not the SSH one). */
static void
check_host (Problems *problems, const char *prefix, const char *host,
            gboolean allow_socket_dir)
{
  const char *fix
      = allow_socket_dir
            ? "Enter the server's host name or IP address (IPv6 without "
              "brackets), or the directory of its Unix socket."
            : "Enter the SSH server's host name or IP address (IPv6 without "
              "brackets).";

  if (host == NULL || *host == '\0')
    problems_add (problems, prefix, "host", "required", fix);
  else if (strchr (host, ','))
    problems_add (problems, prefix, "host",
                  "must be one host (lists of hosts are not supported)", fix);
  else if (allow_socket_dir && host[0] == '/')
    {
      if (!g_utf8_validate (host, -1, NULL) || has_control_chars (host))
        problems_add (problems, prefix, "host",
                      "a socket directory must be UTF-8 without control "
                      "characters",
                      fix);
    }
  else if (host[0] == '[')
    problems_add (problems, prefix, "host",
                  "IPv6 addresses are written without brackets", fix);
  else if (!is_network_host (host))
    problems_add (problems, prefix, "host",
                  allow_socket_dir ? "must be a host name, an IP address or "
                                     "an absolute socket directory"
                                   : "must be a host name or an IP address",
                  fix);
}

static void
check_port (Problems *problems, const char *prefix, int port)
{
  if (port < 1 || port > 65535)
    problems_add (problems, prefix, "port", "must be 1-65535",
                  "Enter the port the server listens on.");
}

static gboolean
is_hex_color (const char *color)
{
  if (color[0] != '#' || strlen (color) != 7)
    return FALSE;
  for (int i = 1; i < 7; i++)
    if (!g_ascii_isxdigit (color[i]))
      return FALSE;
  return TRUE;
}

static gboolean
is_printable_ascii (const char *text)
{
  for (const guchar *p = (const guchar *)text; *p; p++)
    if (*p < 0x20 || *p > 0x7e)
      return FALSE;
  return TRUE;
}

static void
check_tunnel (Problems *problems, const char *prefix,
              const TuskSshTunnelConfig *tunnel)
{
  if (tunnel->id == NULL || !g_uuid_string_is_valid (tunnel->id))
    problems_add (problems, prefix, "id", "must be a UUID",
                  "Create tunnels with tusk_ssh_tunnel_config_new ().");
  if (!utf8_chars_between (tunnel->name, NAME_MAX_CHARS))
    problems_add (problems, prefix, "name", "must be 1-255 characters",
                  "Give the tunnel a name of 1 to 255 characters.");
  check_host (problems, prefix, tunnel->host, FALSE);
  check_port (problems, prefix, tunnel->port);
  if (tunnel->username == NULL || *tunnel->username == '\0')
    problems_add (problems, prefix, "username", "required",
                  "Enter the SSH user name.");
  if (!ssh_auth_is_valid (tunnel->auth_method))
    problems_add (problems, prefix, "auth_method",
                  "must be key, password or agent",
                  "Choose key, password or agent authentication.");
  else if (tunnel->auth_method == TUSK_SSH_AUTH_KEY)
    {
      if (tunnel->key_path == NULL || *tunnel->key_path == '\0')
        problems_add (problems, prefix, "key_path",
                      "required for key authentication",
                      "Choose the private key file, or use the SSH agent.");
      else if (!g_file_test (tunnel->key_path, G_FILE_TEST_IS_REGULAR))
        problems_add (problems, prefix, "key_path", "must be an existing file",
                      "Check the path of the private key file.");
    }
}

gboolean
tusk_connection_config_validate (const TuskConnectionConfig *config,
                                 GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  Problems problems;
  const TuskConnectionOptions *options = &config->options;

  problems_init (&problems);
  if (config->id == NULL || !g_uuid_string_is_valid (config->id))
    problems_add (&problems, "", "id", "must be a UUID",
                  "Create configs with tusk_connection_config_new ().");
  if (!utf8_chars_between (config->name, NAME_MAX_CHARS))
    problems_add (&problems, "", "name", "must be 1-255 characters",
                  "Give the connection a name of 1 to 255 characters.");
  check_host (&problems, "", config->host, TRUE);
  check_port (&problems, "", config->port);
  if (!is_pg_name (config->database))
    problems_add (&problems, "", "database", "must be 1-63 bytes of UTF-8",
                  "Enter the database name; PostgreSQL names are at most 63 "
                  "bytes.");
  if (!is_pg_name (config->username))
    problems_add (&problems, "", "username", "must be 1-63 bytes of UTF-8",
                  "Enter the user (role) name; PostgreSQL names are at most "
                  "63 bytes.");
  if (!ssl_mode_is_valid (config->ssl_mode))
    problems_add (&problems, "", "ssl_mode",
                  "must be disable, prefer, require, verify-ca or verify-full",
                  "Choose one of the five SSL modes.");

  static const struct
  {
    const char *field;
    gsize offset;
  } paths[] = {
    { "ssl_root_cert", G_STRUCT_OFFSET (TuskConnectionConfig, ssl_root_cert) },
    { "ssl_cert", G_STRUCT_OFFSET (TuskConnectionConfig, ssl_cert) },
    { "ssl_key", G_STRUCT_OFFSET (TuskConnectionConfig, ssl_key) },
  };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      const char *path
          = G_STRUCT_MEMBER (const char *, config, paths[i].offset);
      if (path != NULL && (*path == '\0' || has_control_chars (path)))
        problems_add (&problems, "", paths[i].field,
                      "must be a file path or unset",
                      "Choose the certificate or key file, or leave it "
                      "empty.");
    }

  if (options->connect_timeout_secs < 0)
    problems_add (&problems, "", "connect_timeout_secs",
                  "must be 0 (wait forever) or more",
                  "Enter the seconds to wait for the server, 0 for no "
                  "limit.");
  if (options->statement_timeout_secs < -1
      || options->statement_timeout_secs > MAX_STATEMENT_TIMEOUT_SECS)
    problems_add (&problems, "", "statement_timeout_secs",
                  "must be -1 (default), 0 (none) or 1-2147483",
                  "Enter the seconds a statement may run, 0 for no limit.");
  if (options->application_name == NULL
      || strlen (options->application_name) > PG_NAME_MAX_BYTES
      || !is_printable_ascii (options->application_name))
    problems_add (&problems, "", "application_name",
                  "must be 0-63 printable ASCII characters",
                  "Shorten the application name to 63 ASCII characters.");
  if (config->color != NULL && !is_hex_color (config->color))
    problems_add (&problems, "", "color", "must be #RRGGBB",
                  "Write the color as # and six hex digits, like #3b82f6.");
  if (config->ssh_tunnel)
    check_tunnel (&problems, "ssh_tunnel.", config->ssh_tunnel);

  return problems_finish (&problems, "Invalid connection", error);
}

gboolean
tusk_ssh_tunnel_config_validate (const TuskSshTunnelConfig *tunnel,
                                 GError **error)
{
  g_return_val_if_fail (tunnel != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  Problems problems;
  problems_init (&problems);
  check_tunnel (&problems, "", tunnel);
  return problems_finish (&problems, "Invalid SSH tunnel", error);
}

/* ---------------------------------------------------------- parsing */

/* Frees a string that may hold a secret after overwriting it. */
static void
wipe_free (char *secret)
{
  if (secret)
    {
      explicit_bzero (secret, strlen (secret));
      g_free (secret);
    }
}

/* Splits libpq's "options" value the way the server does (pg_split_opts):
 * words separated by whitespace, a backslash taking the next character
 * literally.  Returns (transfer full) the words. */
static GPtrArray *
split_options (const char *text)
{
  GPtrArray *words = g_ptr_array_new_with_free_func (g_free);
  const char *p = text;

  for (;;)
    {
      while (g_ascii_isspace (*p))
        p++;
      if (*p == '\0')
        break;
      GString *word = g_string_new (NULL);
      while (*p && !g_ascii_isspace (*p))
        {
          if (*p == '\\' && p[1])
            p++;
          g_string_append_c (word, *p++);
        }
      g_ptr_array_add (words, g_string_free (word, FALSE));
    }
  return words;
}

/* Reads a PostgreSQL boolean (the full words; the server also takes
 * unambiguous prefixes, which Tusk never writes). */
static gboolean
parse_pg_bool (const char *text, gboolean *out)
{
  static const char *const yes[] = { "on", "true", "yes", "1" };
  static const char *const no[] = { "off", "false", "no", "0" };

  for (guint i = 0; i < G_N_ELEMENTS (yes); i++)
    {
      if (g_ascii_strcasecmp (text, yes[i]) == 0)
        return *out = TRUE, TRUE;
      if (g_ascii_strcasecmp (text, no[i]) == 0)
        return *out = FALSE, TRUE;
    }
  return FALSE;
}

/* Reads a statement_timeout value (a number of milliseconds, or with a
 * unit ms, s, min, h or d) that is a whole number of seconds. */
static gboolean
parse_timeout_secs (const char *text, int *secs)
{
  static const struct
  {
    const char *unit;
    gint64 ms;
  } units[] = {
    { "", 1 },
    { "ms", 1 },
    { "s", 1000 },
    { "min", 60 * 1000 },
    { "h", 3600 * 1000 },
    { "d", 86400 * 1000 },
  };
  char *end = NULL;

  if (!g_ascii_isdigit (*text))
    return FALSE;
  guint64 n = g_ascii_strtoull (text, &end, 10);
  if (n > G_MAXINT)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    if (g_str_equal (end, units[i].unit))
      {
        gint64 ms = (gint64)n * units[i].ms;
        if (ms % 1000 != 0 || ms / 1000 > MAX_STATEMENT_TIMEOUT_SECS)
          return FALSE;
        *secs = (int)(ms / 1000);
        return TRUE;
      }
  return FALSE;
}

/* Applies one "name=value" server setting that a config carries; FALSE for
 * any other. */
static gboolean
apply_setting (const char *setting, TuskConnectionConfig *config)
{
  const char *eq = strchr (setting, '=');
  if (eq == NULL)
    return FALSE;

  /* The server folds case and reads '-' as '_' in setting names. */
  g_autofree char *name = g_ascii_strdown (setting, eq - setting);
  g_strdelimit (name, "-", '_');
  const char *value = eq + 1;

  if (g_str_equal (name, "default_transaction_read_only"))
    return parse_pg_bool (value, &config->options.read_only);
  if (g_str_equal (name, "statement_timeout"))
    return parse_timeout_secs (value, &config->options.statement_timeout_secs);
  return FALSE;
}

/* Reads libpq's "options" into @config; only "-c name=value",
 * "-cname=value" and "--name=value" words for the settings above. */
static void
parse_options (const char *text, TuskConnectionConfig *config,
               Problems *problems)
{
  g_autoptr (GPtrArray) words = split_options (text);

  for (guint i = 0; i < words->len; i++)
    {
      const char *word = words->pdata[i];
      const char *setting = NULL;

      if (g_str_equal (word, "-c") && i + 1 < words->len)
        setting = words->pdata[++i];
      else if (g_str_has_prefix (word, "-c") || g_str_has_prefix (word, "--"))
        setting = word + 2;
      if (setting == NULL || !apply_setting (setting, config))
        {
          problems_add (
              problems, "", "options",
              "only -c default_transaction_read_only=on|off and -c "
              "statement_timeout=<whole seconds> are supported",
              "Remove other server settings from options; set them in the "
              "database or role instead (ALTER ROLE ... SET).");
          return;
        }
    }
}

static gboolean
parse_int (const char *text, int min, int max, int *out)
{
  gint64 n;

  if (!g_ascii_string_to_signed (text, 10, min, max, &n, NULL))
    return FALSE;
  *out = (int)n;
  return TRUE;
}

/* Replaces the string at @field with a copy of @value (nullable). */
static void
set_str (char **field, const char *value)
{
  char *copy = g_strdup (value);
  g_free (*field);
  *field = copy;
}

/* The value of a parsed keyword, NULL when unset or empty. */
static const char *
nonempty (const char *value)
{
  return value && *value ? value : NULL;
}

/* Returns (transfer full) libpq's parse error @message, trimmed, with any
 * copy of the URI @text in it (libpq quotes the whole URI in some messages)
 * turned into one whose password, between "user:" and "@", is "***". */
static char *
redact_libpq_message (const char *message, const char *text)
{
  g_autofree char *uri = g_strstrip (g_strdup (text));
  char *out = g_strchomp (g_strdup (message));
  const char *scheme_end = strstr (uri, "://");

  if (scheme_end == NULL || *uri == '\0' || strstr (out, uri) == NULL)
    {
      explicit_bzero (uri, strlen (uri));
      return out;
    }

  const char *authority = scheme_end + 3;
  gsize authority_len = strcspn (authority, "/?");
  const char *at = g_strrstr_len (authority, (gssize)authority_len, "@");
  const char *colon
      = at ? memchr (authority, ':', (gsize)(at - authority)) : NULL;
  if (colon)
    {
      g_autofree char *redacted
          = g_strdup_printf ("%.*s***%s", (int)(colon + 1 - uri), uri, at);
      GString *replaced = g_string_new (out);
      g_string_replace (replaced, uri, redacted, 0);
      wipe_free (out);
      out = g_string_free (replaced, FALSE);
    }
  explicit_bzero (uri, strlen (uri));
  return out;
}

TuskConnectionConfig *
tusk_connection_config_new_from_string (const char *text, char **password_out,
                                        GError **error)
{
  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (password_out)
    *password_out = NULL;

  char *stripped = g_strstrip (g_strdup (text));
  char *errmsg = NULL;
  PQconninfoOption *parsed = PQconninfoParse (stripped, &errmsg);
  wipe_free (stripped);
  if (parsed == NULL)
    {
      g_autofree char *message
          = redact_libpq_message (errmsg ? errmsg : "out of memory", text);
      PQfreemem (errmsg);
      tusk_set_error (error, TUSK_ERROR_VALIDATION,
                      "Write a URI like postgresql://user@host:5432/database "
                      "or a conninfo string like \"host=db.example.com "
                      "port=5432 dbname=app user=me\".",
                      "Invalid connection string: %s", message);
      return NULL;
    }

  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  Problems problems;
  g_autofree char *hostaddr = NULL;

  problems_init (&problems);
  for (PQconninfoOption *o = parsed; o->keyword; o++)
    {
      const char *key = o->keyword;
      const char *value = o->val;

      if (value == NULL)
        continue;
      if (g_str_equal (key, "host"))
        set_str (&config->host, nonempty (value));
      else if (g_str_equal (key, "hostaddr"))
        set_str (&hostaddr, nonempty (value));
      else if (g_str_equal (key, "port"))
        {
          if (*value && !parse_int (value, 1, 65535, &config->port))
            problems_add (&problems, "", "port", "must be 1-65535",
                          "Write one port number.");
        }
      else if (g_str_equal (key, "dbname"))
        set_str (&config->database, nonempty (value));
      else if (g_str_equal (key, "user"))
        set_str (&config->username, nonempty (value));
      else if (g_str_equal (key, "password"))
        {
          if (password_out && *value)
            *password_out = g_strdup (value);
          explicit_bzero (o->val, strlen (o->val));
        }
      else if (g_str_equal (key, "sslmode"))
        {
          if (*value && !tusk_ssl_mode_from_string (value, &config->ssl_mode))
            problems_add (
                &problems, "", "sslmode",
                "must be disable, prefer, require, verify-ca or verify-full",
                "Choose one of the five SSL modes (\"allow\" is not "
                "offered).");
        }
      else if (g_str_equal (key, "sslrootcert"))
        set_str (&config->ssl_root_cert, nonempty (value));
      else if (g_str_equal (key, "sslcert"))
        set_str (&config->ssl_cert, nonempty (value));
      else if (g_str_equal (key, "sslkey"))
        set_str (&config->ssl_key, nonempty (value));
      else if (g_str_equal (key, "connect_timeout"))
        {
          if (*value
              && !parse_int (value, 0, G_MAXINT,
                             &config->options.connect_timeout_secs))
            problems_add (&problems, "", "connect_timeout",
                          "must be a whole number of seconds, 0 or more",
                          "Write the seconds to wait, 0 for no limit.");
        }
      else if (g_str_equal (key, "application_name"))
        set_str (&config->options.application_name, value);
      else if (g_str_equal (key, "options"))
        parse_options (value, config, &problems);
      else
        problems_add (&problems, "", key, "not supported by Tusk",
                      "Remove the keywords Tusk does not keep; they would be "
                      "lost when the connection is saved.");
    }
  PQconninfoFree (parsed);

  if (hostaddr && config->host)
    problems_add (&problems, "", "hostaddr", "not supported together with host",
                  "Give either a host name or an address.");
  else if (hostaddr)
    config->host = g_steal_pointer (&hostaddr);
  if (config->host && strchr (config->host, ','))
    problems_add (&problems, "", "host",
                  "must be one host (lists of hosts are not supported)",
                  "Keep one host and one port.");

  if (!problems_finish (&problems, "Invalid connection string", error))
    {
      if (password_out)
        g_clear_pointer (password_out, wipe_free);
      return NULL;
    }
  return g_steal_pointer (&config);
}

/* ---------------------------------------------------------- rendering */

/* Appends @keyword and @value (transfer full) to @pairs. */
static void
add_pair (GPtrArray *pairs, const char *keyword, char *value)
{
  g_ptr_array_add (pairs, g_strdup (keyword));
  g_ptr_array_add (pairs, value);
}

/* Appends to @pairs (alternating keyword, value; owned) the query
 * parameters a URI carries beyond user, host, port and database: those
 * that differ from tusk_connection_config_new ()'s defaults. */
static void
add_extra_params (const TuskConnectionConfig *config, GPtrArray *pairs)
{
  const TuskConnectionOptions *options = &config->options;

  if (config->ssl_mode != TUSK_SSL_MODE_PREFER
      && ssl_mode_is_valid (config->ssl_mode))
    add_pair (pairs, "sslmode", g_strdup (ssl_mode_names[config->ssl_mode]));
  if (config->ssl_root_cert)
    add_pair (pairs, "sslrootcert", g_strdup (config->ssl_root_cert));
  if (config->ssl_cert)
    add_pair (pairs, "sslcert", g_strdup (config->ssl_cert));
  if (config->ssl_key)
    add_pair (pairs, "sslkey", g_strdup (config->ssl_key));
  if (options->connect_timeout_secs != DEFAULT_CONNECT_TIMEOUT)
    add_pair (pairs, "connect_timeout",
              g_strdup_printf ("%d", options->connect_timeout_secs));
  if (options->application_name
      && !g_str_equal (options->application_name, DEFAULT_APP_NAME))
    add_pair (pairs, "application_name", g_strdup (options->application_name));

  GString *settings = g_string_new (NULL);
  if (options->read_only)
    g_string_append (settings, "-c default_transaction_read_only=on ");
  if (options->statement_timeout_secs >= 0)
    g_string_append_printf (settings, "-c statement_timeout=%ds ",
                            options->statement_timeout_secs);
  if (settings->len > 0)
    {
      g_string_truncate (settings, settings->len - 1);
      add_pair (pairs, "options", g_string_free (settings, FALSE));
    }
  else
    g_string_free (settings, TRUE);
}

static void
append_uri_escaped (GString *out, const char *text, const char *allowed)
{
  g_autofree char *escaped = g_uri_escape_string (text, allowed, FALSE);
  g_string_append (out, escaped);
}

char *
tusk_connection_config_to_uri (const TuskConnectionConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  GString *uri = g_string_new ("postgresql://");
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (g_free);
  const char *host = config->host;
  gboolean socket_dir = host && host[0] == '/';

  if (config->username)
    {
      append_uri_escaped (uri, config->username, NULL);
      g_string_append_c (uri, '@');
    }
  if (host && socket_dir)
    {
      add_pair (pairs, "host", g_strdup (host));
    }
  else if (host && strchr (host, ':'))
    {
      g_string_append_c (uri, '[');
      append_uri_escaped (uri, host, ":");
      g_string_append_c (uri, ']');
    }
  else if (host)
    append_uri_escaped (uri, host, NULL);
  g_string_append_printf (uri, ":%d", config->port);
  if (config->database)
    {
      g_string_append_c (uri, '/');
      append_uri_escaped (uri, config->database, NULL);
    }

  add_extra_params (config, pairs);
  for (guint i = 0; i < pairs->len; i += 2)
    {
      g_string_append_c (uri, i == 0 ? '?' : '&');
      g_string_append (uri, pairs->pdata[i]);
      g_string_append_c (uri, '=');
      append_uri_escaped (uri, pairs->pdata[i + 1], "/:");
    }
  return g_string_free (uri, FALSE);
}

/* Appends @value as libpq reads it back: bare when it is non-empty and made
 * of characters that never need quotes, otherwise in single quotes with a
 * backslash before ' and \. */
static void
append_conninfo_value (GString *out, const char *value)
{
  gboolean bare = *value != '\0';

  for (const char *p = value; *p && bare; p++)
    bare = g_ascii_isalnum (*p) || strchr ("._-/:@+,", *p);
  if (bare)
    {
      g_string_append (out, value);
      return;
    }
  g_string_append_c (out, '\'');
  for (const char *p = value; *p; p++)
    {
      if (*p == '\'' || *p == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '\'');
}

char *
tusk_connection_config_to_conninfo (const TuskConnectionConfig *config)
{
  g_return_val_if_fail (config != NULL, NULL);

  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (g_free);
  GString *out = g_string_new (NULL);

  if (config->host)
    {
      add_pair (pairs, "host", g_strdup (config->host));
    }
  add_pair (pairs, "port", g_strdup_printf ("%d", config->port));
  if (config->database)
    {
      add_pair (pairs, "dbname", g_strdup (config->database));
    }
  if (config->username)
    {
      add_pair (pairs, "user", g_strdup (config->username));
    }
  add_extra_params (config, pairs);

  for (guint i = 0; i < pairs->len; i += 2)
    {
      if (i > 0)
        g_string_append_c (out, ' ');
      g_string_append (out, pairs->pdata[i]);
      g_string_append_c (out, '=');
      append_conninfo_value (out, pairs->pdata[i + 1]);
    }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------ libpq params */

struct TuskPgParams
{
  GPtrArray *keywords; /* NULL-terminated, owned strings */
  GPtrArray *values;   /* NULL-terminated, owned strings, parallel */
};

TuskPgParams *
tusk_pg_params_new (void)
{
  TuskPgParams *params = g_new0 (TuskPgParams, 1);

  params->keywords = g_ptr_array_new_null_terminated (24, g_free, TRUE);
  params->values = g_ptr_array_new_null_terminated (24, g_free, TRUE);
  return params;
}

static int
params_find (const TuskPgParams *params, const char *keyword)
{
  for (guint i = 0; i < params->keywords->len; i++)
    if (g_str_equal (params->keywords->pdata[i], keyword))
      return (int)i;
  return -1;
}

/* Overwrites the value at @i if it is the password. */
static void
params_wipe_secret (TuskPgParams *params, guint i)
{
  if (g_str_equal (params->keywords->pdata[i], "password"))
    {
      char *value = params->values->pdata[i];
      explicit_bzero (value, strlen (value));
    }
}

void
tusk_pg_params_free (TuskPgParams *params)
{
  if (params == NULL)
    return;
  for (guint i = 0; i < params->keywords->len; i++)
    params_wipe_secret (params, i);
  g_ptr_array_unref (params->keywords);
  g_ptr_array_unref (params->values);
  g_free (params);
}

void
tusk_pg_params_set (TuskPgParams *params, const char *keyword,
                    const char *value)
{
  g_return_if_fail (params != NULL);
  g_return_if_fail (keyword != NULL);

  int i = params_find (params, keyword);
  if (i >= 0)
    {
      params_wipe_secret (params, (guint)i);
      if (value)
        {
          g_free (params->values->pdata[i]);
          params->values->pdata[i] = g_strdup (value);
        }
      else
        {
          g_ptr_array_remove_index (params->keywords, (guint)i);
          g_ptr_array_remove_index (params->values, (guint)i);
        }
    }
  else if (value)
    {
      g_ptr_array_add (params->keywords, g_strdup (keyword));
      g_ptr_array_add (params->values, g_strdup (value));
    }
}

const char *
tusk_pg_params_get (const TuskPgParams *params, const char *keyword)
{
  g_return_val_if_fail (params != NULL, NULL);
  g_return_val_if_fail (keyword != NULL, NULL);

  int i = params_find (params, keyword);
  return i >= 0 ? params->values->pdata[i] : NULL;
}

const char *const *
tusk_pg_params_keywords (const TuskPgParams *params)
{
  g_return_val_if_fail (params != NULL, NULL);
  return (const char *const *)params->keywords->pdata;
}

const char *const *
tusk_pg_params_values (const TuskPgParams *params)
{
  g_return_val_if_fail (params != NULL, NULL);
  return (const char *const *)params->values->pdata;
}

static void
params_set_int (TuskPgParams *params, const char *keyword, int value)
{
  char text[16];

  g_snprintf (text, sizeof text, "%d", value);
  tusk_pg_params_set (params, keyword, text);
}

TuskPgParams *
tusk_connection_config_to_params (const TuskConnectionConfig *config,
                                  const char *password,
                                  const TuskSessionDefaults *defaults)
{
  static const TuskSessionDefaults builtin = TUSK_SESSION_DEFAULTS_INIT;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (ssl_mode_is_valid (config->ssl_mode), NULL);

  const TuskConnectionOptions *options = &config->options;
  TuskPgParams *params = tusk_pg_params_new ();

  if (defaults == NULL)
    defaults = &builtin;

  tusk_pg_params_set (params, "host", config->host);
  params_set_int (params, "port", config->port);
  tusk_pg_params_set (params, "dbname", config->database);
  tusk_pg_params_set (params, "user", config->username);
  tusk_pg_params_set (params, "password", password);
  tusk_pg_params_set (params, "sslmode", ssl_mode_names[config->ssl_mode]);
  tusk_pg_params_set (params, "sslrootcert", config->ssl_root_cert);
  tusk_pg_params_set (params, "sslcert", config->ssl_cert);
  tusk_pg_params_set (params, "sslkey", config->ssl_key);
  params_set_int (params, "connect_timeout", options->connect_timeout_secs);
  tusk_pg_params_set (params, "application_name", options->application_name);
  tusk_pg_params_set (params, "keepalives", "1");
  params_set_int (params, "keepalives_idle", defaults->keepalives_idle_secs);
  params_set_int (params, "keepalives_interval",
                  defaults->keepalives_interval_secs);
  params_set_int (params, "keepalives_count", defaults->keepalives_count);

  /* The server splits "options" at whitespace (a backslash would protect
   * one); every value written here is a number or "on", so none needs
   * escaping. */
  int statement_timeout = options->statement_timeout_secs >= 0
                              ? options->statement_timeout_secs
                              : defaults->statement_timeout_secs;
  g_autoptr (GString) settings = g_string_new (NULL);
  g_string_append_printf (settings,
                          "-c statement_timeout=%ds "
                          "-c idle_in_transaction_session_timeout=%ds",
                          statement_timeout,
                          defaults->idle_in_transaction_timeout_secs);
  if (options->read_only)
    g_string_append (settings, " -c default_transaction_read_only=on");
  tusk_pg_params_set (params, "options", settings->str);
  return params;
}
