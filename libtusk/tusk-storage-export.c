/* tusk-storage-export.c: export of the saved data as one JSON document, and
 * its import with a conflict policy.
 *
 * Import runs in two phases.  parse_document() turns the text into Import
 * items on the calling thread and checks everything that does not need the
 * database (syntax, format, version, member types, validation rules,
 * duplicate ids), collecting every problem into one message.  Then
 * import_in_writer() applies the items in one writer transaction, in
 * reference order (tunnels, connections, saved queries, UI state), mapping
 * each document id to the id it ends up with so that references follow
 * SKIP and RENAME; any error rolls the whole import back. */
#define G_LOG_DOMAIN "tusk-storage-export"

#include <json-glib/json-glib.h>

#include "tusk-storage-export.h"
#include "tusk-connection-config.h"
#include "tusk-log.h"
#include "tusk-repo-private.h"
#include "tusk-saved-query-repo.h"
#include "tusk-ui-state-repo.h"

/* At most this many problems are listed in one error; the rest are
 * counted. */
#define MAX_PROBLEMS 20

static const char *const policy_names[] = { "skip", "replace", "rename" };

const char *
tusk_import_policy_to_string (TuskImportPolicy policy)
{
  g_return_val_if_fail ((guint)policy < G_N_ELEMENTS (policy_names), NULL);
  return policy_names[policy];
}

gboolean
tusk_import_policy_from_string (const char *text, TuskImportPolicy *policy)
{
  g_return_val_if_fail (policy != NULL, FALSE);

  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (policy_names); i++)
    if (g_str_equal (text, policy_names[i]))
      {
        *policy = (TuskImportPolicy)i;
        return TRUE;
      }
  return FALSE;
}

/* ---- export ------------------------------------------------------------ */

#define EXPORT_FAILED "Could not export the saved data"

/* Adds @member: an array with one object per row of @sql, keyed by column
 * name.  Integer columns become numbers, except read_only, a boolean. */
static gboolean
add_rows (JsonBuilder *builder, sqlite3 *db, const char *member,
          const char *sql, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (db, sql, EXPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;

  int n_columns = sqlite3_column_count (stmt);
  int rc;
  json_builder_set_member_name (builder, member);
  json_builder_begin_array (builder);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      json_builder_begin_object (builder);
      for (int i = 0; i < n_columns; i++)
        {
          const char *name = sqlite3_column_name (stmt, i);
          json_builder_set_member_name (builder, name);
          switch (sqlite3_column_type (stmt, i))
            {
              case SQLITE_NULL:
                json_builder_add_null_value (builder);
                break;
              case SQLITE_INTEGER:
                if (g_str_equal (name, "read_only"))
                  json_builder_add_boolean_value (
                      builder, sqlite3_column_int64 (stmt, i) != 0);
                else
                  json_builder_add_int_value (builder,
                                              sqlite3_column_int64 (stmt, i));
                break;
              default:
                json_builder_add_string_value (
                    builder, (const char *)sqlite3_column_text (stmt, i));
                break;
            }
        }
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, EXPORT_FAILED, error);
      return FALSE;
    }
  return TRUE;
}

/* Adds "ui_state": each value embedded as the JSON it holds. */
static gboolean
add_ui_state (JsonBuilder *builder, sqlite3 *db, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db, "SELECT key, value_json, updated_at FROM ui_state ORDER BY key",
      EXPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;

  int rc;
  json_builder_set_member_name (builder, "ui_state");
  json_builder_begin_array (builder);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      const char *key = (const char *)sqlite3_column_text (stmt, 0);
      const char *value = (const char *)sqlite3_column_text (stmt, 1);
      g_autoptr (JsonParser) parser = json_parser_new_immutable ();
      g_autoptr (GError) json_error = NULL;

      if (!json_parser_load_from_data (parser, value, -1, &json_error)
          || json_parser_get_root (parser) == NULL)
        {
          tusk_warn ("UI state \"%s\" is not valid JSON; not exported", key);
          continue;
        }
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "key");
      json_builder_add_string_value (builder, key);
      json_builder_set_member_name (builder, "value");
      json_builder_add_value (builder,
                              json_node_copy (json_parser_get_root (parser)));
      json_builder_set_member_name (builder, "updated_at");
      json_builder_add_string_value (
          builder, (const char *)sqlite3_column_text (stmt, 2));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  if (rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, EXPORT_FAILED, error);
      return FALSE;
    }
  return TRUE;
}

static gboolean
build_document (JsonBuilder *builder, sqlite3 *db, GError **error)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *exported_at = g_date_time_format (now, "%Y-%m-%d %H:%M:%S");

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "format");
  json_builder_add_string_value (builder, TUSK_EXPORT_FORMAT);
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, TUSK_EXPORT_VERSION);
  json_builder_set_member_name (builder, "exported_at");
  json_builder_add_string_value (builder, exported_at);

  if (!add_rows (builder, db, "ssh_tunnels",
                 "SELECT tunnel_id AS id, name, host, port, username, "
                 "auth_method, key_path, created_at FROM ssh_tunnels "
                 "ORDER BY tunnel_id",
                 error)
      || !add_rows (builder, db, "connections",
                    "SELECT connection_id AS id, name, host, port, database, "
                    "username, ssl_mode, ssl_root_cert, ssl_cert, ssl_key, "
                    "ssh_tunnel_id, color, read_only, connect_timeout_secs, "
                    "statement_timeout_secs, application_name, created_at, "
                    "updated_at, last_connected_at FROM connections "
                    "ORDER BY connection_id",
                    error)
      || !add_rows (builder, db, "saved_queries",
                    "SELECT query_id AS id, connection_id, name, description, "
                    "sql_text AS sql, folder_path, created_at, updated_at "
                    "FROM saved_queries ORDER BY query_id",
                    error)
      || !add_ui_state (builder, db, error))
    return FALSE;

  json_builder_end_object (builder);
  return TRUE;
}

char *
tusk_storage_export_to_string (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  sqlite3 *db = tusk_storage_reader (storage, error);
  if (db == NULL)
    return NULL;

  /* One read transaction: the four tables as of one moment. */
  int rc = sqlite3_exec (db, "BEGIN", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    {
      g_propagate_error (error, tusk_error_from_sqlite (db, rc, EXPORT_FAILED));
      return NULL;
    }
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();
  gboolean ok = build_document (builder, db, error);
  sqlite3_exec (db, "COMMIT", NULL, NULL, NULL);
  if (!sqlite3_get_autocommit (db))
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  if (!ok)
    return NULL;

  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

gboolean
tusk_storage_export_to_file (TuskStorage *storage, const char *path,
                             GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autofree char *text = tusk_storage_export_to_string (storage, error);
  if (text == NULL)
    return FALSE;

  g_autoptr (GError) file_error = NULL;
  if (!g_file_set_contents_full (path, text, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT
                                     | G_FILE_SET_CONTENTS_DURABLE,
                                 0600, &file_error))
    {
      tusk_set_error (error, TUSK_ERROR_STORAGE,
                      "Check that the folder exists and is writable, or "
                      "choose another file",
                      "Could not write the export to %s: %s", path,
                      file_error->message);
      return FALSE;
    }
  tusk_info ("Exported the saved data to %s", path);
  return TRUE;
}

/* ---- import: parsing --------------------------------------------------- */

typedef struct
{
  GString *text;
  int count;
} Problems;

static void problem (Problems *problems, const char *format, ...)
    G_GNUC_PRINTF (2, 3);

static void
problem (Problems *problems, const char *format, ...)
{
  va_list args;

  if (++problems->count > MAX_PROBLEMS)
    return;
  if (problems->text->len > 0)
    g_string_append (problems->text, "; ");
  va_start (args, format);
  g_string_append_vprintf (problems->text, format, args);
  va_end (args);
}

typedef struct
{
  TuskSshTunnelConfig *tunnel;
  char *created_at;
} ImportTunnel;

typedef struct
{
  TuskConnectionConfig *config; /* ssh_tunnel always NULL */
  char *ssh_tunnel_id;
  char *created_at;
  char *updated_at;
} ImportConnection;

typedef struct
{
  char *key;
  char *value_json;
  char *updated_at;
} ImportUiState;

typedef struct
{
  GPtrArray *tunnels;       /* ImportTunnel * */
  GPtrArray *connections;   /* ImportConnection * */
  GPtrArray *saved_queries; /* TuskSavedQuery * */
  GPtrArray *ui_state;      /* ImportUiState * */
  TuskImportPolicy policy;
  TuskImportSummary summary;
  GHashTable *tunnel_ids;     /* document id → stored id, both owned */
  GHashTable *connection_ids; /* the same */
} Import;

static void
import_tunnel_free (gpointer data)
{
  ImportTunnel *item = data;
  tusk_ssh_tunnel_config_free (item->tunnel);
  g_free (item->created_at);
  g_free (item);
}

static void
import_connection_free (gpointer data)
{
  ImportConnection *item = data;
  tusk_connection_config_free (item->config);
  g_free (item->ssh_tunnel_id);
  g_free (item->created_at);
  g_free (item->updated_at);
  g_free (item);
}

static void
import_ui_state_free (gpointer data)
{
  ImportUiState *item = data;
  g_free (item->key);
  g_free (item->value_json);
  g_free (item->updated_at);
  g_free (item);
}

static void
import_clear (Import *import)
{
  g_clear_pointer (&import->tunnels, g_ptr_array_unref);
  g_clear_pointer (&import->connections, g_ptr_array_unref);
  g_clear_pointer (&import->saved_queries, g_ptr_array_unref);
  g_clear_pointer (&import->ui_state, g_ptr_array_unref);
  g_clear_pointer (&import->tunnel_ids, g_hash_table_unref);
  g_clear_pointer (&import->connection_ids, g_hash_table_unref);
}

/* The member @name of @object, or NULL when absent or null. */
static JsonNode *
get_member (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);
  return node != NULL && !JSON_NODE_HOLDS_NULL (node) ? node : NULL;
}

/* Replaces *@field with a copy of the string member @name when present;
 * leaves it alone when absent or null (a problem when @required). */
static void
get_string (Problems *problems, const char *where, JsonObject *object,
            const char *name, gboolean required, char **field)
{
  JsonNode *node = get_member (object, name);
  if (node == NULL)
    {
      if (required)
        problem (problems, "%s.%s: required", where, name);
      return;
    }
  if (json_node_get_value_type (node) != G_TYPE_STRING)
    {
      problem (problems, "%s.%s: must be a string", where, name);
      return;
    }
  g_free (*field);
  *field = g_strdup (json_node_get_string (node));
}

/* As get_string() for a timestamp "YYYY-MM-DD HH:MM:SS". */
static void
get_timestamp (Problems *problems, const char *where, JsonObject *object,
               const char *name, char **field)
{
  get_string (problems, where, object, name, FALSE, field);
  if (*field != NULL && !tusk_repo_timestamp_ok (*field))
    problem (problems, "%s.%s: must be \"YYYY-MM-DD HH:MM:SS\" (UTC)", where,
             name);
}

/* Sets *@field from the integer member @name when present; @nullable says
 * whether null is allowed (it then sets @if_null). */
static void
get_int (Problems *problems, const char *where, JsonObject *object,
         const char *name, int *field, gboolean nullable, int if_null)
{
  JsonNode *node = json_object_get_member (object, name);
  if (node == NULL)
    return;
  if (JSON_NODE_HOLDS_NULL (node))
    {
      if (nullable)
        *field = if_null;
      else
        problem (problems, "%s.%s: must be an integer", where, name);
      return;
    }
  if (json_node_get_value_type (node) != G_TYPE_INT64)
    {
      problem (problems, "%s.%s: must be an integer", where, name);
      return;
    }
  gint64 value = json_node_get_int (node);
  if (value < G_MININT || value > G_MAXINT)
    {
      problem (problems, "%s.%s: out of range", where, name);
      return;
    }
  *field = (int)value;
}

static void
get_boolean (Problems *problems, const char *where, JsonObject *object,
             const char *name, gboolean *field)
{
  JsonNode *node = get_member (object, name);
  if (node == NULL)
    return;
  if (json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      problem (problems, "%s.%s: must be true or false", where, name);
      return;
    }
  *field = json_node_get_boolean (node);
}

/* Adds the message of a failed validation, "where: message". */
static void
validation_problem (Problems *problems, const char *where, GError *error)
{
  problem (problems, "%s: %s", where, error->message);
  g_error_free (error);
}

/* Checks that @id was not seen before in its array. */
static void
check_unique (Problems *problems, GHashTable *seen, const char *where,
              const char *name, const char *id)
{
  if (id == NULL)
    return;
  if (g_hash_table_contains (seen, id))
    problem (problems, "%s.%s: \"%s\" appears twice in the document", where,
             name, id);
  else
    g_hash_table_add (seen, (gpointer)id);
}

static ImportTunnel *
parse_tunnel (Problems *problems, const char *where, JsonObject *object)
{
  ImportTunnel *item = g_new0 (ImportTunnel, 1);
  TuskSshTunnelConfig *tunnel = tusk_ssh_tunnel_config_new ();
  g_autofree char *method = NULL;
  GError *error = NULL;

  item->tunnel = tunnel;
  g_clear_pointer (&tunnel->id, g_free);
  get_string (problems, where, object, "id", TRUE, &tunnel->id);
  get_string (problems, where, object, "name", FALSE, &tunnel->name);
  get_string (problems, where, object, "host", FALSE, &tunnel->host);
  get_int (problems, where, object, "port", &tunnel->port, FALSE, 0);
  get_string (problems, where, object, "username", FALSE, &tunnel->username);
  get_string (problems, where, object, "auth_method", TRUE, &method);
  if (method != NULL
      && !tusk_ssh_auth_method_from_string (method, &tunnel->auth_method))
    problem (problems, "%s.auth_method: must be key, password or agent", where);
  get_string (problems, where, object, "key_path", FALSE, &tunnel->key_path);
  get_timestamp (problems, where, object, "created_at", &item->created_at);

  if (tunnel->id != NULL && !tusk_ssh_tunnel_config_validate (tunnel, &error))
    validation_problem (problems, where, error);
  return item;
}

static ImportConnection *
parse_connection (Problems *problems, const char *where, JsonObject *object)
{
  ImportConnection *item = g_new0 (ImportConnection, 1);
  TuskConnectionConfig *config = tusk_connection_config_new ();
  g_autofree char *ssl_mode = NULL;
  GError *error = NULL;

  item->config = config;
  g_clear_pointer (&config->id, g_free);
  get_string (problems, where, object, "id", TRUE, &config->id);
  get_string (problems, where, object, "name", FALSE, &config->name);
  get_string (problems, where, object, "host", FALSE, &config->host);
  get_int (problems, where, object, "port", &config->port, FALSE, 0);
  get_string (problems, where, object, "database", FALSE, &config->database);
  get_string (problems, where, object, "username", FALSE, &config->username);
  get_string (problems, where, object, "ssl_mode", FALSE, &ssl_mode);
  if (ssl_mode != NULL
      && !tusk_ssl_mode_from_string (ssl_mode, &config->ssl_mode))
    problem (problems,
             "%s.ssl_mode: must be disable, prefer, require, verify-ca or "
             "verify-full",
             where);
  get_string (problems, where, object, "ssl_root_cert", FALSE,
              &config->ssl_root_cert);
  get_string (problems, where, object, "ssl_cert", FALSE, &config->ssl_cert);
  get_string (problems, where, object, "ssl_key", FALSE, &config->ssl_key);
  get_string (problems, where, object, "ssh_tunnel_id", FALSE,
              &item->ssh_tunnel_id);
  get_string (problems, where, object, "color", FALSE, &config->color);
  get_boolean (problems, where, object, "read_only",
               &config->options.read_only);
  get_int (problems, where, object, "connect_timeout_secs",
           &config->options.connect_timeout_secs, FALSE, 0);
  get_int (problems, where, object, "statement_timeout_secs",
           &config->options.statement_timeout_secs, TRUE, -1);
  get_string (problems, where, object, "application_name", FALSE,
              &config->options.application_name);
  get_timestamp (problems, where, object, "created_at", &item->created_at);
  get_timestamp (problems, where, object, "updated_at", &item->updated_at);
  get_timestamp (problems, where, object, "last_connected_at",
                 &config->last_connected_at);

  if (config->id != NULL && !tusk_connection_config_validate (config, &error))
    validation_problem (problems, where, error);
  return item;
}

static TuskSavedQuery *
parse_saved_query (Problems *problems, const char *where, JsonObject *object)
{
  TuskSavedQuery *query = g_new0 (TuskSavedQuery, 1);
  GError *error = NULL;

  get_string (problems, where, object, "id", TRUE, &query->id);
  get_string (problems, where, object, "connection_id", FALSE,
              &query->connection_id);
  get_string (problems, where, object, "name", FALSE, &query->name);
  get_string (problems, where, object, "description", FALSE,
              &query->description);
  get_string (problems, where, object, "sql", TRUE, &query->sql);
  get_string (problems, where, object, "folder_path", FALSE,
              &query->folder_path);
  get_timestamp (problems, where, object, "created_at", &query->created_at);
  get_timestamp (problems, where, object, "updated_at", &query->updated_at);

  if (query->id != NULL && query->sql != NULL
      && !tusk_saved_query_validate (query, &error))
    validation_problem (problems, where, error);
  return query;
}

static ImportUiState *
parse_ui_state (Problems *problems, const char *where, JsonObject *object)
{
  ImportUiState *item = g_new0 (ImportUiState, 1);

  get_string (problems, where, object, "key", TRUE, &item->key);
  if (item->key != NULL && *item->key == '\0')
    problem (problems, "%s.key: must not be empty", where);
  JsonNode *value = json_object_get_member (object, "value");
  if (value == NULL)
    problem (problems, "%s.value: required", where);
  else
    item->value_json = json_to_string (value, FALSE);
  get_timestamp (problems, where, object, "updated_at", &item->updated_at);
  return item;
}

typedef gpointer (*ParseFunc) (Problems *problems, const char *where,
                               JsonObject *object);

/* Parses the array @member of @root (absent: empty) into @items. */
static void
parse_array (Problems *problems, JsonObject *root, const char *member,
             ParseFunc parse, GPtrArray *items)
{
  JsonNode *node = get_member (root, member);
  if (node == NULL)
    return;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      problem (problems, "%s: must be an array", member);
      return;
    }
  JsonArray *array = json_node_get_array (node);
  guint n = json_array_get_length (array);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *where = g_strdup_printf ("%s[%u]", member, i);
      JsonNode *element = json_array_get_element (array, i);
      if (!JSON_NODE_HOLDS_OBJECT (element))
        {
          problem (problems, "%s: must be an object", where);
          continue;
        }
      g_ptr_array_add (items,
                       parse (problems, where, json_node_get_object (element)));
    }
}

/* Fills @import from @text; FALSE with one TUSK_ERROR_VALIDATION listing
 * the problems. */
static gboolean
parse_document (Import *import, const char *text, gssize length, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) json_error = NULL;

  if (!json_parser_load_from_data (parser, text, length, &json_error))
    {
      g_propagate_error (
          error,
          tusk_error_from_json (json_error, "The export is not valid JSON"));
      return FALSE;
    }
  JsonNode *root_node = json_parser_get_root (parser);
  JsonObject *root = root_node != NULL && JSON_NODE_HOLDS_OBJECT (root_node)
                         ? json_node_get_object (root_node)
                         : NULL;
  JsonNode *format = root ? get_member (root, "format") : NULL;
  if (format == NULL || json_node_get_value_type (format) != G_TYPE_STRING
      || !g_str_equal (json_node_get_string (format), TUSK_EXPORT_FORMAT))
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION,
                      "Choose a file made by Tusk's export",
                      "Not a Tusk export: the document must be a JSON object "
                      "whose \"format\" is \"" TUSK_EXPORT_FORMAT "\"");
      return FALSE;
    }
  JsonNode *version = get_member (root, "version");
  if (version == NULL || json_node_get_value_type (version) != G_TYPE_INT64
      || json_node_get_int (version) < 1)
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL,
                      "Malformed Tusk export: \"version\" must be a positive "
                      "integer");
      return FALSE;
    }
  if (json_node_get_int (version) > TUSK_EXPORT_VERSION)
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION,
                      "Update Tusk to import this file",
                      "The export was made by a newer Tusk (format version "
                      "%" G_GINT64_FORMAT "; this Tusk reads version %d); "
                      "nothing was imported",
                      json_node_get_int (version), TUSK_EXPORT_VERSION);
      return FALSE;
    }

  Problems problems = { g_string_new (NULL), 0 };
  parse_array (&problems, root, "ssh_tunnels", (ParseFunc)parse_tunnel,
               import->tunnels);
  parse_array (&problems, root, "connections", (ParseFunc)parse_connection,
               import->connections);
  parse_array (&problems, root, "saved_queries", (ParseFunc)parse_saved_query,
               import->saved_queries);
  parse_array (&problems, root, "ui_state", (ParseFunc)parse_ui_state,
               import->ui_state);

  /* Ids (and keys) are unique within each array. */
  {
    g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
    for (guint i = 0; i < import->tunnels->len; i++)
      {
        ImportTunnel *item = import->tunnels->pdata[i];
        g_autofree char *where = g_strdup_printf ("ssh_tunnels[%u]", i);
        check_unique (&problems, seen, where, "id", item->tunnel->id);
      }
    g_hash_table_remove_all (seen);
    for (guint i = 0; i < import->connections->len; i++)
      {
        ImportConnection *item = import->connections->pdata[i];
        g_autofree char *where = g_strdup_printf ("connections[%u]", i);
        check_unique (&problems, seen, where, "id", item->config->id);
      }
    g_hash_table_remove_all (seen);
    for (guint i = 0; i < import->saved_queries->len; i++)
      {
        TuskSavedQuery *item = import->saved_queries->pdata[i];
        g_autofree char *where = g_strdup_printf ("saved_queries[%u]", i);
        check_unique (&problems, seen, where, "id", item->id);
      }
    g_hash_table_remove_all (seen);
    for (guint i = 0; i < import->ui_state->len; i++)
      {
        ImportUiState *item = import->ui_state->pdata[i];
        g_autofree char *where = g_strdup_printf ("ui_state[%u]", i);
        check_unique (&problems, seen, where, "key", item->key);
      }
  }

  g_autoptr (GString) message = problems.text;
  if (problems.count == 0)
    return TRUE;
  if (problems.count > MAX_PROBLEMS)
    g_string_append_printf (message, "; and %d more",
                            problems.count - MAX_PROBLEMS);
  tusk_set_error (error, TUSK_ERROR_VALIDATION,
                  "Correct the file, or export it again from Tusk",
                  "Invalid Tusk export; nothing was imported: %s",
                  message->str);
  return FALSE;
}

/* ---- import: writing --------------------------------------------------- */

#define IMPORT_FAILED "Could not import the saved data"

/* Runs @sql with ?1 = @key and says whether it returned a row; with
 * @found_out (optional) set to a copy of that row's first column. */
static gboolean
query_row (sqlite3 *db, const char *sql, const char *key, gboolean *exists,
           char **found_out, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (db, sql, IMPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, key);
  int rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    {
      tusk_repo_step_error (db, rc, IMPORT_FAILED, error);
      return FALSE;
    }
  *exists = rc == SQLITE_ROW;
  if (found_out != NULL)
    *found_out = *exists ? tusk_repo_column_dup (stmt, 0) : NULL;
  return TRUE;
}

/* Returns (transfer full) the first of @base, "@base (2)", "@base (3)", …
 * that @exists_sql (?1 = the name) does not find, at most 255 characters
 * (@base is shortened to fit the suffix). */
static char *
free_name (sqlite3 *db, const char *exists_sql, const char *base,
           GError **error)
{
  gboolean exists;

  if (!query_row (db, exists_sql, base, &exists, NULL, error))
    return NULL;
  if (!exists)
    return g_strdup (base);
  for (int n = 2;; n++)
    {
      g_autofree char *suffix = g_strdup_printf (" (%d)", n);
      glong room = 255 - g_utf8_strlen (suffix, -1);
      g_autofree char *stem
          = g_utf8_substring (base, 0, MIN (g_utf8_strlen (base, -1), room));
      g_autofree char *name = g_strconcat (stem, suffix, NULL);
      if (!query_row (db, exists_sql, name, &exists, NULL, error))
        return NULL;
      if (!exists)
        return g_steal_pointer (&name);
    }
}

/* Inserts, or overwrites, the tunnel with id @id. */
static gboolean
write_tunnel (sqlite3 *db, const ImportTunnel *item, const char *id,
              const char *name, GError **error)
{
  const TuskSshTunnelConfig *tunnel = item->tunnel;
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO ssh_tunnels (tunnel_id, name, host, port, username, "
      "auth_method, key_path, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
      "?7, coalesce(?8, CURRENT_TIMESTAMP)) "
      "ON CONFLICT (tunnel_id) DO UPDATE SET name = excluded.name, "
      "host = excluded.host, port = excluded.port, "
      "username = excluded.username, auth_method = excluded.auth_method, "
      "key_path = excluded.key_path, "
      "created_at = coalesce(?8, ssh_tunnels.created_at)",
      IMPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, id);
  tusk_repo_bind_text (stmt, 2, name);
  tusk_repo_bind_text (stmt, 3, tunnel->host);
  sqlite3_bind_int (stmt, 4, tunnel->port);
  tusk_repo_bind_text (stmt, 5, tunnel->username);
  tusk_repo_bind_text (stmt, 6,
                       tusk_ssh_auth_method_to_string (tunnel->auth_method));
  tusk_repo_bind_text (stmt, 7, tunnel->key_path);
  tusk_repo_bind_text (stmt, 8, item->created_at);
  return tusk_repo_step_done (db, stmt, IMPORT_FAILED, error);
}

static gboolean
write_connection (sqlite3 *db, const ImportConnection *item, const char *id,
                  const char *name, const char *tunnel_id, GError **error)
{
  const TuskConnectionConfig *config = item->config;
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO connections (connection_id, name, host, port, database, "
      "username, ssl_mode, ssl_root_cert, ssl_cert, ssl_key, ssh_tunnel_id, "
      "color, read_only, connect_timeout_secs, statement_timeout_secs, "
      "application_name, created_at, updated_at, last_connected_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
      "?15, ?16, coalesce(?17, CURRENT_TIMESTAMP), "
      "coalesce(?18, CURRENT_TIMESTAMP), ?19) "
      "ON CONFLICT (connection_id) DO UPDATE SET name = excluded.name, "
      "host = excluded.host, port = excluded.port, "
      "database = excluded.database, username = excluded.username, "
      "ssl_mode = excluded.ssl_mode, ssl_root_cert = excluded.ssl_root_cert, "
      "ssl_cert = excluded.ssl_cert, ssl_key = excluded.ssl_key, "
      "ssh_tunnel_id = excluded.ssh_tunnel_id, color = excluded.color, "
      "read_only = excluded.read_only, "
      "connect_timeout_secs = excluded.connect_timeout_secs, "
      "statement_timeout_secs = excluded.statement_timeout_secs, "
      "application_name = excluded.application_name, "
      "created_at = coalesce(?17, connections.created_at), "
      "updated_at = excluded.updated_at, "
      "last_connected_at = coalesce(?19, connections.last_connected_at)",
      IMPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, id);
  tusk_repo_bind_text (stmt, 2, name);
  tusk_repo_bind_text (stmt, 3, config->host);
  sqlite3_bind_int (stmt, 4, config->port);
  tusk_repo_bind_text (stmt, 5, config->database);
  tusk_repo_bind_text (stmt, 6, config->username);
  tusk_repo_bind_text (stmt, 7, tusk_ssl_mode_to_string (config->ssl_mode));
  tusk_repo_bind_text (stmt, 8, config->ssl_root_cert);
  tusk_repo_bind_text (stmt, 9, config->ssl_cert);
  tusk_repo_bind_text (stmt, 10, config->ssl_key);
  tusk_repo_bind_text (stmt, 11, tunnel_id);
  tusk_repo_bind_text (stmt, 12, config->color);
  sqlite3_bind_int (stmt, 13, config->options.read_only ? 1 : 0);
  sqlite3_bind_int (stmt, 14, config->options.connect_timeout_secs);
  if (config->options.statement_timeout_secs >= 0)
    sqlite3_bind_int (stmt, 15, config->options.statement_timeout_secs);
  tusk_repo_bind_text (stmt, 16, config->options.application_name);
  tusk_repo_bind_text (stmt, 17, item->created_at);
  tusk_repo_bind_text (stmt, 18, item->updated_at);
  tusk_repo_bind_text (stmt, 19, config->last_connected_at);
  return tusk_repo_step_done (db, stmt, IMPORT_FAILED, error);
}

static gboolean
write_saved_query (sqlite3 *db, const TuskSavedQuery *query, const char *id,
                   const char *name, const char *connection_id, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO saved_queries (query_id, connection_id, name, "
      "description, sql_text, folder_path, created_at, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, coalesce(?7, CURRENT_TIMESTAMP), "
      "coalesce(?8, CURRENT_TIMESTAMP)) "
      "ON CONFLICT (query_id) DO UPDATE SET "
      "connection_id = excluded.connection_id, name = excluded.name, "
      "description = excluded.description, sql_text = excluded.sql_text, "
      "folder_path = excluded.folder_path, "
      "created_at = coalesce(?7, saved_queries.created_at), "
      "updated_at = excluded.updated_at",
      IMPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, id);
  tusk_repo_bind_text (stmt, 2, connection_id);
  tusk_repo_bind_text (stmt, 3, name);
  tusk_repo_bind_text (stmt, 4, query->description);
  tusk_repo_bind_text (stmt, 5, query->sql);
  tusk_repo_bind_text (stmt, 6, query->folder_path);
  tusk_repo_bind_text (stmt, 7, query->created_at);
  tusk_repo_bind_text (stmt, 8, query->updated_at);
  return tusk_repo_step_done (db, stmt, IMPORT_FAILED, error);
}

static gboolean
write_ui_state (sqlite3 *db, const ImportUiState *item, GError **error)
{
  TUSK_REPO_STMT stmt = tusk_repo_prepare (
      db,
      "INSERT INTO ui_state (key, value_json, updated_at) "
      "VALUES (?1, ?2, coalesce(?3, CURRENT_TIMESTAMP)) "
      "ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, "
      "updated_at = excluded.updated_at",
      IMPORT_FAILED, error);
  if (stmt == NULL)
    return FALSE;
  tusk_repo_bind_text (stmt, 1, item->key);
  tusk_repo_bind_text (stmt, 2, item->value_json);
  tusk_repo_bind_text (stmt, 3, item->updated_at);
  return tusk_repo_step_done (db, stmt, IMPORT_FAILED, error);
}

/* Resolves a reference of the document (nullable) to a stored id: through
 * @ids (items of this import) or to an item already stored.  Sets
 * *@resolved (transfer none: @ids' value or @ref); FALSE with a validation
 * error naming @where when it points nowhere. */
static gboolean
resolve (sqlite3 *db, GHashTable *ids, const char *exists_sql, const char *ref,
         const char *where, const char *what, const char **resolved,
         GError **error)
{
  gboolean exists;

  *resolved = NULL;
  if (ref == NULL)
    return TRUE;
  if ((*resolved = g_hash_table_lookup (ids, ref)) != NULL)
    return TRUE;
  if (!query_row (db, exists_sql, ref, &exists, NULL, error))
    return FALSE;
  if (!exists)
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION,
                      "Correct the file, or export it again from Tusk",
                      "Invalid Tusk export; nothing was imported: %s: no %s "
                      "has the id %s, in the document or already saved",
                      where, what, ref);
      return FALSE;
    }
  *resolved = ref;
  return TRUE;
}

#define TUNNEL_ID_EXISTS   "SELECT 1 FROM ssh_tunnels WHERE tunnel_id = ?1"
#define TUNNEL_NAME_EXISTS "SELECT 1 FROM ssh_tunnels WHERE name = ?1"
#define CONNECTION_ID_EXISTS                                                   \
  "SELECT 1 FROM connections WHERE connection_id = ?1"
#define CONNECTION_NAME_EXISTS                                                 \
  "SELECT 1 FROM connections WHERE name = ?1 COLLATE NOCASE"
#define QUERY_ID_EXISTS   "SELECT 1 FROM saved_queries WHERE query_id = ?1"
#define QUERY_NAME_EXISTS "SELECT 1 FROM saved_queries WHERE name = ?1"

static gboolean
import_tunnels (sqlite3 *db, Import *import, GError **error)
{
  TuskImportCounts *counts = &import->summary.ssh_tunnels;

  for (guint i = 0; i < import->tunnels->len; i++)
    {
      ImportTunnel *item = import->tunnels->pdata[i];
      const char *id = item->tunnel->id;
      g_autofree char *new_id = NULL;
      g_autofree char *new_name = NULL;
      gboolean exists;

      if (!query_row (db, TUNNEL_ID_EXISTS, id, &exists, NULL, error))
        return FALSE;
      if (!exists)
        {
          if (!write_tunnel (db, item, id, item->tunnel->name, error))
            return FALSE;
          counts->added++;
          new_id = g_strdup (id);
        }
      else if (import->policy == TUSK_IMPORT_SKIP)
        {
          counts->skipped++;
          new_id = g_strdup (id);
        }
      else if (import->policy == TUSK_IMPORT_REPLACE)
        {
          if (!write_tunnel (db, item, id, item->tunnel->name, error))
            return FALSE;
          counts->replaced++;
          new_id = g_strdup (id);
        }
      else
        {
          new_id = g_uuid_string_random ();
          new_name
              = free_name (db, TUNNEL_NAME_EXISTS, item->tunnel->name, error);
          if (new_name == NULL
              || !write_tunnel (db, item, new_id, new_name, error))
            return FALSE;
          counts->renamed++;
        }
      g_hash_table_insert (import->tunnel_ids, g_strdup (id),
                           g_steal_pointer (&new_id));
    }
  return TRUE;
}

static gboolean
import_connections (sqlite3 *db, Import *import, GError **error)
{
  TuskImportCounts *counts = &import->summary.connections;

  for (guint i = 0; i < import->connections->len; i++)
    {
      ImportConnection *item = import->connections->pdata[i];
      const char *id = item->config->id;
      const char *name = item->config->name;
      g_autofree char *where
          = g_strdup_printf ("connections[%u].ssh_tunnel_id", i);
      g_autofree char *by_name = NULL; /* another connection with the name */
      g_autofree char *target = NULL;  /* the id it ends up with */
      g_autofree char *new_name = NULL;
      const char *tunnel_id;
      gboolean by_id, named;

      if (!resolve (db, import->tunnel_ids, TUNNEL_ID_EXISTS,
                    item->ssh_tunnel_id, where, "SSH tunnel", &tunnel_id,
                    error))
        return FALSE;
      if (!query_row (db, CONNECTION_ID_EXISTS, id, &by_id, NULL, error))
        return FALSE;
      {
        TUSK_REPO_STMT stmt = tusk_repo_prepare (
            db,
            "SELECT connection_id FROM connections WHERE name = ?1 "
            "COLLATE NOCASE AND connection_id <> ?2 LIMIT 1",
            IMPORT_FAILED, error);
        if (stmt == NULL)
          return FALSE;
        tusk_repo_bind_text (stmt, 1, name);
        tusk_repo_bind_text (stmt, 2, id);
        int rc = sqlite3_step (stmt);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
          {
            tusk_repo_step_error (db, rc, IMPORT_FAILED, error);
            return FALSE;
          }
        named = rc == SQLITE_ROW;
        if (named)
          by_name = tusk_repo_column_dup (stmt, 0);
      }

      if (!by_id && !named)
        {
          if (!write_connection (db, item, id, name, tunnel_id, error))
            return FALSE;
          counts->added++;
          target = g_strdup (id);
        }
      else if (import->policy == TUSK_IMPORT_SKIP)
        {
          counts->skipped++;
          target = g_strdup (by_id ? id : by_name);
        }
      else if (import->policy == TUSK_IMPORT_REPLACE)
        {
          target = g_strdup (by_id ? id : by_name);
          /* Both: the stored connection @id is replaced, and the name,
           * taken by a third one, gets a suffix. */
          if (by_id && named)
            {
              new_name = free_name (db, CONNECTION_NAME_EXISTS, name, error);
              if (new_name == NULL)
                return FALSE;
            }
          if (!write_connection (db, item, target, new_name ? new_name : name,
                                 tunnel_id, error))
            return FALSE;
          counts->replaced++;
        }
      else
        {
          target = g_uuid_string_random ();
          new_name = free_name (db, CONNECTION_NAME_EXISTS, name, error);
          if (new_name == NULL
              || !write_connection (db, item, target, new_name, tunnel_id,
                                    error))
            return FALSE;
          counts->renamed++;
        }
      g_hash_table_insert (import->connection_ids, g_strdup (id),
                           g_steal_pointer (&target));
    }
  return TRUE;
}

static gboolean
import_saved_queries (sqlite3 *db, Import *import, GError **error)
{
  TuskImportCounts *counts = &import->summary.saved_queries;

  for (guint i = 0; i < import->saved_queries->len; i++)
    {
      TuskSavedQuery *query = import->saved_queries->pdata[i];
      g_autofree char *where
          = g_strdup_printf ("saved_queries[%u].connection_id", i);
      const char *connection_id;
      gboolean exists;

      if (!resolve (db, import->connection_ids, CONNECTION_ID_EXISTS,
                    query->connection_id, where, "connection", &connection_id,
                    error))
        return FALSE;
      if (!query_row (db, QUERY_ID_EXISTS, query->id, &exists, NULL, error))
        return FALSE;

      if (!exists || import->policy == TUSK_IMPORT_REPLACE)
        {
          if (!write_saved_query (db, query, query->id, query->name,
                                  connection_id, error))
            return FALSE;
          if (exists)
            counts->replaced++;
          else
            counts->added++;
        }
      else if (import->policy == TUSK_IMPORT_SKIP)
        counts->skipped++;
      else
        {
          g_autofree char *new_id = g_uuid_string_random ();
          g_autofree char *new_name
              = free_name (db, QUERY_NAME_EXISTS, query->name, error);
          if (new_name == NULL
              || !write_saved_query (db, query, new_id, new_name, connection_id,
                                     error))
            return FALSE;
          counts->renamed++;
        }
    }
  return TRUE;
}

static gboolean
import_ui_state (sqlite3 *db, Import *import, GError **error)
{
  TuskImportCounts *counts = &import->summary.ui_state;

  for (guint i = 0; i < import->ui_state->len; i++)
    {
      ImportUiState *item = import->ui_state->pdata[i];
      gboolean exists;

      if (!query_row (db, "SELECT 1 FROM ui_state WHERE key = ?1", item->key,
                      &exists, NULL, error))
        return FALSE;
      if (exists && import->policy != TUSK_IMPORT_REPLACE)
        {
          counts->skipped++;
          continue;
        }
      if (!write_ui_state (db, item, error))
        return FALSE;
      if (exists)
        counts->replaced++;
      else
        counts->added++;
    }
  return TRUE;
}

static gboolean
import_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  Import *import = data;

  /* A retried run must not count twice. */
  memset (&import->summary, 0, sizeof import->summary);
  g_hash_table_remove_all (import->tunnel_ids);
  g_hash_table_remove_all (import->connection_ids);

  return import_tunnels (db, import, error)
         && import_connections (db, import, error)
         && import_saved_queries (db, import, error)
         && import_ui_state (db, import, error);
}

gboolean
tusk_storage_import_string (TuskStorage *storage, const char *text,
                            gssize length, TuskImportPolicy policy,
                            TuskImportSummary *summary, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail ((guint)policy < G_N_ELEMENTS (policy_names), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  Import import = {
    .tunnels = g_ptr_array_new_with_free_func (import_tunnel_free),
    .connections = g_ptr_array_new_with_free_func (import_connection_free),
    .saved_queries
    = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_saved_query_free),
    .ui_state = g_ptr_array_new_with_free_func (import_ui_state_free),
    .policy = policy,
    .tunnel_ids
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
    .connection_ids
    = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
  };

  gboolean ok = parse_document (&import, text, length, error)
                && tusk_storage_write_sync (storage, import_in_writer, &import,
                                            NULL, error);
  if (ok)
    {
      const TuskImportSummary *s = &import.summary;
      tusk_info ("Imported (%s): %d tunnels, %d connections, %d saved "
                 "queries, %d UI states added; %d, %d, %d, %d replaced; "
                 "%d, %d, %d renamed; %d, %d, %d, %d skipped",
                 policy_names[policy], s->ssh_tunnels.added,
                 s->connections.added, s->saved_queries.added,
                 s->ui_state.added, s->ssh_tunnels.replaced,
                 s->connections.replaced, s->saved_queries.replaced,
                 s->ui_state.replaced, s->ssh_tunnels.renamed,
                 s->connections.renamed, s->saved_queries.renamed,
                 s->ssh_tunnels.skipped, s->connections.skipped,
                 s->saved_queries.skipped, s->ui_state.skipped);
      if (summary != NULL)
        *summary = import.summary;
    }
  import_clear (&import);
  return ok;
}

gboolean
tusk_storage_import_file (TuskStorage *storage, const char *path,
                          TuskImportPolicy policy, TuskImportSummary *summary,
                          GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autofree char *text = NULL;
  gsize length;
  g_autoptr (GError) file_error = NULL;

  if (!g_file_get_contents (path, &text, &length, &file_error))
    {
      tusk_set_error (
          error,
          g_error_matches (file_error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
              ? TUSK_ERROR_NOT_FOUND
              : TUSK_ERROR_STORAGE,
          "Check the path of the export file", "Could not read %s: %s", path,
          file_error->message);
      return FALSE;
    }
  return tusk_storage_import_string (storage, text, (gssize)length, policy,
                                     summary, error);
}
