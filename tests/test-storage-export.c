/* test-storage-export.c: export of the saved data to one JSON document and
 * its import under each conflict policy; a round trip loses nothing, a bad
 * document changes nothing. */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "tusk.h"
#include "tusk-storage-private.h"
#include "tusk-test.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct
{
  char *root;     /* a fresh temporary directory */
  TuskStorage *a; /* the store exported from ({root}/a) */
  TuskStorage *b; /* an empty store imported into ({root}/b) */
  char *key_path; /* an SSH key file that exists */
  /* What populate() saved in a. */
  char *tunnel_key_id, *tunnel_agent_id;
  char *prod_id, *dev_id, *local_id;
  char *query_ids[4];
} Fixture;

static TuskStorage *
open_store (const char *root, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (root, name, NULL);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  TuskStorage *storage = tusk_storage_open (dir, &error);
  g_assert_no_error (error);
  return storage;
}

static gboolean
exec_func (sqlite3 *db, gpointer data, GError **error)
{
  char *message = NULL;
  if (sqlite3_exec (db, data, NULL, NULL, &message) != SQLITE_OK)
    {
      g_set_error (error, TUSK_ERROR, TUSK_ERROR_STORAGE, "%s", message);
      sqlite3_free (message);
      return FALSE;
    }
  return TRUE;
}

static void
exec_sql (TuskStorage *storage, const char *sql)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (tusk_storage_write_sync (storage, exec_func, (gpointer)sql,
                                          NULL, &error));
  g_assert_no_error (error);
}

static gint64
count_rows (TuskStorage *storage, const char *table)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM %s", table);
  sqlite3 *db = tusk_storage_reader (storage, NULL);
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  gint64 n = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return n;
}

static TuskConnectionConfig *
make_connection (const char *name)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup (name);
  config->host = g_strdup ("db.example.com");
  config->database = g_strdup ("app");
  config->username = g_strdup ("alice");
  return config;
}

static TuskSshTunnelConfig *
make_tunnel (const char *name)
{
  TuskSshTunnelConfig *tunnel = tusk_ssh_tunnel_config_new ();
  tunnel->name = g_strdup (name);
  tunnel->host = g_strdup ("bastion.example.com");
  tunnel->username = g_strdup ("bob");
  return tunnel;
}

/* Fills store a with two tunnels, three connections (every field set on
 * one), four saved queries, three UI state keys and some history. */
static void
populate (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  TuskStorage *s = f->a;

  g_autoptr (TuskSshTunnelConfig) keyed = make_tunnel ("jump-key");
  keyed->port = 2222;
  keyed->auth_method = TUSK_SSH_AUTH_KEY;
  keyed->key_path = g_strdup (f->key_path);
  g_autoptr (TuskSshTunnelConfig) agent = make_tunnel ("jump-agent");
  g_assert_true (tusk_tunnel_repo_save (s, keyed, &error));
  g_assert_true (tusk_tunnel_repo_save (s, agent, &error));
  g_assert_no_error (error);
  f->tunnel_key_id = g_strdup (keyed->id);
  f->tunnel_agent_id = g_strdup (agent->id);

  g_autoptr (TuskConnectionConfig) prod = make_connection ("Production");
  prod->port = 6432;
  prod->ssl_mode = TUSK_SSL_MODE_VERIFY_FULL;
  prod->ssl_root_cert = g_strdup ("/etc/ssl/root.crt");
  prod->ssl_cert = g_strdup ("/home/a/client.crt");
  prod->ssl_key = g_strdup ("/home/a/client.key");
  prod->ssh_tunnel = tusk_ssh_tunnel_config_copy (keyed);
  prod->color = g_strdup ("#ff0000");
  prod->options.read_only = TRUE;
  prod->options.connect_timeout_secs = 3;
  prod->options.statement_timeout_secs = 120;
  g_free (prod->options.application_name);
  prod->options.application_name = g_strdup ("Reports");
  g_autoptr (TuskConnectionConfig) dev = make_connection ("dev");
  dev->ssh_tunnel = tusk_ssh_tunnel_config_copy (agent);
  dev->options.statement_timeout_secs = 0;
  g_autoptr (TuskConnectionConfig) local = make_connection ("local");
  g_free (local->host);
  local->host = g_strdup ("/var/run/postgresql");
  g_assert_true (tusk_connection_repo_save (s, prod, &error));
  g_assert_true (tusk_connection_repo_save (s, dev, &error));
  g_assert_true (tusk_connection_repo_save (s, local, &error));
  g_assert_no_error (error);
  g_assert_true (tusk_connection_repo_touch (s, prod->id, &error));
  f->prod_id = g_strdup (prod->id);
  f->dev_id = g_strdup (dev->id);
  f->local_id = g_strdup (local->id);
  /* Distinct timestamps, so that a round trip that reset them would show. */
  g_autofree char *stamps = g_strdup_printf (
      "UPDATE connections SET created_at = '2021-02-03 04:05:06', "
      "updated_at = '2022-02-03 04:05:06' WHERE connection_id = '%s';"
      "UPDATE ssh_tunnels SET created_at = '2020-01-01 01:01:01';"
      "UPDATE saved_queries SET created_at = '2019-09-09 09:09:09';",
      dev->id);

  const char *folders[] = { NULL, "reports", "reports/monthly", "scratch" };
  const char *owners[] = { prod->id, dev->id, NULL, prod->id };
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *name = g_strdup_printf ("Query %d", i);
      g_autoptr (TuskSavedQuery) query
          = tusk_saved_query_new (name, "SELECT * FROM t WHERE x = 'é'");
      query->folder_path = g_strdup (folders[i]);
      query->connection_id = g_strdup (owners[i]);
      query->description = i % 2 ? g_strdup ("described") : NULL;
      g_assert_true (tusk_saved_query_repo_create (s, query, &error));
      g_assert_no_error (error);
      f->query_ids[i] = g_strdup (query->id);
    }
  exec_sql (s, stamps);

  g_assert_true (tusk_ui_state_repo_set (
      s, "window.main", "{\"width\":1200,\"tabs\":[\"a\",\"b\"]}", &error));
  g_assert_true (tusk_ui_state_repo_set (s, "theme", "\"dark\"", &error));
  g_assert_true (
      tusk_ui_state_repo_set (s, "history.max_entries", "5000", &error));
  g_assert_no_error (error);

  for (int i = 0; i < 5; i++)
    {
      g_autoptr (TuskHistoryEntry) entry
          = tusk_history_entry_new (prod->id, "SELECT 'HISTORY-MARKER'");
      g_assert_true (tusk_history_repo_add (s, entry, &error));
    }
  tusk_storage_flush (s);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-export-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->key_path = g_build_filename (f->root, "id_ed25519", NULL);
  g_assert_true (g_file_set_contents (f->key_path, "key", -1, NULL));
  f->a = open_store (f->root, "a");
  f->b = open_store (f->root, "b");
  populate (f);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_storage_close (f->a);
  tusk_storage_close (f->b);
  tusk_test_remove_tree (f->root);
  g_free (f->root);
  g_free (f->key_path);
  g_free (f->tunnel_key_id);
  g_free (f->tunnel_agent_id);
  g_free (f->prod_id);
  g_free (f->dev_id);
  g_free (f->local_id);
  for (int i = 0; i < 4; i++)
    g_free (f->query_ids[i]);
}

static char *
export_ok (TuskStorage *storage)
{
  g_autoptr (GError) error = NULL;
  char *text = tusk_storage_export_to_string (storage, &error);
  g_assert_no_error (error);
  g_assert_nonnull (text);
  return text;
}

/* Returns (transfer full) @text's document without "exported_at". */
static JsonNode *
document (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
  JsonNode *root = json_node_copy (json_parser_get_root (parser));
  json_object_remove_member (json_node_get_object (root), "exported_at");
  return root;
}

static void
assert_same_document (const char *x, const char *y)
{
  g_autoptr (JsonNode) a = document (x);
  g_autoptr (JsonNode) b = document (y);
  if (!json_node_equal (a, b))
    g_error ("documents differ:\n%s\n---\n%s", x, y);
}

static void
import_ok (TuskStorage *storage, const char *text, TuskImportPolicy policy,
           TuskImportSummary *summary)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (
      tusk_storage_import_string (storage, text, -1, policy, summary, &error));
  g_assert_no_error (error);
}

static void
assert_counts (const TuskImportCounts *c, int added, int replaced, int renamed,
               int skipped)
{
  g_assert_cmpint (c->added, ==, added);
  g_assert_cmpint (c->replaced, ==, replaced);
  g_assert_cmpint (c->renamed, ==, renamed);
  g_assert_cmpint (c->skipped, ==, skipped);
}

/* ---- tests -------------------------------------------------------------- */

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = export_ok (f->a);

  /* The shape, and what must never be in it. */
  g_autoptr (JsonNode) doc = document (text);
  JsonObject *root = json_node_get_object (doc);
  g_assert_cmpstr (json_object_get_string_member (root, "format"), ==,
                   "tusk-export");
  g_assert_cmpint (json_object_get_int_member (root, "version"), ==, 1);
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (root, "ssh_tunnels")),
                    ==, 2);
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (root, "connections")),
                    ==, 3);
  g_assert_cmpuint (json_array_get_length (
                        json_object_get_array_member (root, "saved_queries")),
                    ==, 4);
  g_assert_cmpuint (
      json_array_get_length (json_object_get_array_member (root, "ui_state")),
      ==, 3);
  g_assert_null (strstr (text, "HISTORY-MARKER"));
  g_assert_null (strstr (text, "\"password\""));
  g_assert_false (json_object_has_member (root, "query_history"));

  TuskImportSummary summary;
  import_ok (f->b, text, TUSK_IMPORT_SKIP, &summary);
  assert_counts (&summary.ssh_tunnels, 2, 0, 0, 0);
  assert_counts (&summary.connections, 3, 0, 0, 0);
  assert_counts (&summary.saved_queries, 4, 0, 0, 0);
  assert_counts (&summary.ui_state, 3, 0, 0, 0);
  g_assert_cmpint (count_rows (f->b, "query_history"), ==, 0);

  /* Every field of every item: the export of b is the export of a. */
  g_autofree char *again = export_ok (f->b);
  assert_same_document (text, again);

  /* And through the repositories. */
  g_autoptr (GPtrArray) ca = tusk_connection_repo_load_all (f->a, &error);
  g_autoptr (GPtrArray) cb = tusk_connection_repo_load_all (f->b, &error);
  g_assert_cmpuint (ca->len, ==, cb->len);
  for (guint i = 0; i < ca->len; i++)
    {
      TuskConnectionConfig *x = ca->pdata[i], *y = cb->pdata[i];
      g_autofree char *ux = tusk_connection_config_to_conninfo (x);
      g_autofree char *uy = tusk_connection_config_to_conninfo (y);
      g_assert_cmpstr (x->id, ==, y->id);
      g_assert_cmpstr (x->name, ==, y->name);
      g_assert_cmpstr (ux, ==, uy);
      g_assert_cmpstr (x->color, ==, y->color);
      g_assert_cmpstr (x->last_connected_at, ==, y->last_connected_at);
      g_assert_true ((x->ssh_tunnel == NULL) == (y->ssh_tunnel == NULL));
      if (x->ssh_tunnel)
        g_assert_cmpstr (x->ssh_tunnel->key_path, ==, y->ssh_tunnel->key_path);
    }
  g_autofree char *ui = tusk_ui_state_repo_get (f->b, "window.main", &error);
  g_assert_cmpstr (ui, ==, "{\"width\":1200,\"tabs\":[\"a\",\"b\"]}");
  g_assert_cmpint (tusk_history_repo_get_limit (f->b, &error), ==, 5000);
}

static void
test_file (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (f->root, "export.json", NULL);

  g_assert_true (tusk_storage_export_to_file (f->a, path, &error));
  g_assert_no_error (error);
  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  TuskImportSummary summary;
  g_assert_true (tusk_storage_import_file (f->b, path, TUSK_IMPORT_RENAME,
                                           &summary, &error));
  g_assert_no_error (error);
  assert_counts (&summary.connections, 3, 0, 0, 0);
  g_autofree char *x = export_ok (f->a);
  g_autofree char *y = export_ok (f->b);
  assert_same_document (x, y);

  g_autofree char *missing = g_build_filename (f->root, "nope.json", NULL);
  g_assert_false (
      tusk_storage_import_file (f->b, missing, TUSK_IMPORT_SKIP, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_autofree char *bad_dir
      = g_build_filename (f->root, "no-such-dir", "x.json", NULL);
  g_assert_false (tusk_storage_export_to_file (f->a, bad_dir, &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
}

static void
test_skip (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = export_ok (f->a);

  /* b already has: the agent tunnel (same id, another host), dev (same id,
   * renamed) and another connection named "production". */
  g_autoptr (TuskSshTunnelConfig) tunnel = make_tunnel ("mine");
  g_free (tunnel->id);
  tunnel->id = g_strdup (f->tunnel_agent_id);
  g_free (tunnel->host);
  tunnel->host = g_strdup ("other.example.com");
  g_assert_true (tusk_tunnel_repo_save (f->b, tunnel, &error));
  g_autoptr (TuskConnectionConfig) dev = make_connection ("my dev");
  g_free (dev->id);
  dev->id = g_strdup (f->dev_id);
  g_assert_true (tusk_connection_repo_save (f->b, dev, &error));
  g_autoptr (TuskConnectionConfig) prod = make_connection ("production");
  g_assert_true (tusk_connection_repo_save (f->b, prod, &error));
  g_assert_no_error (error);

  TuskImportSummary summary;
  import_ok (f->b, text, TUSK_IMPORT_SKIP, &summary);
  assert_counts (&summary.ssh_tunnels, 1, 0, 0, 1);
  assert_counts (&summary.connections, 1, 0, 0, 2);
  assert_counts (&summary.saved_queries, 4, 0, 0, 0);

  g_autoptr (TuskSshTunnelConfig) kept
      = tusk_tunnel_repo_load (f->b, f->tunnel_agent_id, &error);
  g_assert_cmpstr (kept->host, ==, "other.example.com");
  g_autoptr (TuskConnectionConfig) kept_dev
      = tusk_connection_repo_load (f->b, f->dev_id, &error);
  g_assert_cmpstr (kept_dev->name, ==, "my dev");
  g_assert_null (kept_dev->ssh_tunnel);
  g_assert_null (tusk_connection_repo_load (f->b, f->prod_id, &error));
  g_clear_error (&error);
  g_assert_cmpint (count_rows (f->b, "connections"), ==, 3);

  /* Queries of the skipped Production now belong to the stored one. */
  g_autoptr (TuskSavedQuery) q0
      = tusk_saved_query_repo_load (f->b, f->query_ids[0], &error);
  g_assert_cmpstr (q0->connection_id, ==, prod->id);
  g_autoptr (TuskSavedQuery) q1
      = tusk_saved_query_repo_load (f->b, f->query_ids[1], &error);
  g_assert_cmpstr (q1->connection_id, ==, f->dev_id);

  /* Importing the same again skips everything. */
  import_ok (f->b, text, TUSK_IMPORT_SKIP, &summary);
  assert_counts (&summary.ssh_tunnels, 0, 0, 0, 2);
  assert_counts (&summary.connections, 0, 0, 0, 3);
  assert_counts (&summary.saved_queries, 0, 0, 0, 4);
  assert_counts (&summary.ui_state, 0, 0, 0, 3);
}

static void
test_replace (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = export_ok (f->a);

  /* Change things in a after the export, plus a name clash by another id. */
  g_autoptr (TuskConnectionConfig) dev
      = tusk_connection_repo_load (f->a, f->dev_id, &error);
  g_free (dev->database);
  dev->database = g_strdup ("changed");
  g_assert_true (tusk_connection_repo_save (f->a, dev, &error));
  g_autoptr (TuskSavedQuery) query
      = tusk_saved_query_repo_load (f->a, f->query_ids[2], &error);
  g_free (query->sql);
  query->sql = g_strdup ("SELECT 'changed'");
  g_assert_true (tusk_saved_query_repo_update (f->a, query, &error));
  g_assert_true (tusk_ui_state_repo_set (f->a, "theme", "\"light\"", &error));
  g_assert_true (tusk_connection_repo_delete (f->a, f->local_id, &error));
  g_autoptr (TuskConnectionConfig) other = make_connection ("LOCAL");
  g_assert_true (tusk_connection_repo_save (f->a, other, &error));
  g_assert_no_error (error);
  gint64 history = count_rows (f->a, "query_history");

  TuskImportSummary summary;
  import_ok (f->a, text, TUSK_IMPORT_REPLACE, &summary);
  assert_counts (&summary.ssh_tunnels, 0, 2, 0, 0);
  assert_counts (&summary.connections, 0, 3, 0, 0);
  assert_counts (&summary.saved_queries, 0, 4, 0, 0);
  assert_counts (&summary.ui_state, 0, 3, 0, 0);

  g_autoptr (TuskConnectionConfig) back
      = tusk_connection_repo_load (f->a, f->dev_id, &error);
  g_assert_cmpstr (back->database, ==, "app");
  g_autoptr (TuskSavedQuery) q
      = tusk_saved_query_repo_load (f->a, f->query_ids[2], &error);
  g_assert_cmpstr (q->sql, ==, "SELECT * FROM t WHERE x = 'é'");
  g_autofree char *theme = tusk_ui_state_repo_get (f->a, "theme", &error);
  g_assert_cmpstr (theme, ==, "\"dark\"");
  /* "local" replaced the connection with its name, keeping that one's id. */
  g_autoptr (TuskConnectionConfig) local
      = tusk_connection_repo_load (f->a, other->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (local->name, ==, "local");
  g_assert_cmpstr (local->host, ==, "/var/run/postgresql");
  g_assert_cmpint (count_rows (f->a, "connections"), ==, 3);
  /* Replacing keeps the history of the connections. */
  g_assert_cmpint (count_rows (f->a, "query_history"), ==, history);
}

static void
test_rename (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = export_ok (f->a);

  /* Into the same store: everything conflicts. */
  TuskImportSummary summary;
  import_ok (f->a, text, TUSK_IMPORT_RENAME, &summary);
  assert_counts (&summary.ssh_tunnels, 0, 0, 2, 0);
  assert_counts (&summary.connections, 0, 0, 3, 0);
  assert_counts (&summary.saved_queries, 0, 0, 4, 0);
  assert_counts (&summary.ui_state, 0, 0, 0, 3);
  g_assert_cmpint (count_rows (f->a, "connections"), ==, 6);
  g_assert_cmpint (count_rows (f->a, "ssh_tunnels"), ==, 4);
  g_assert_cmpint (count_rows (f->a, "saved_queries"), ==, 8);

  /* The copies have new ids and names, and their references follow. */
  g_autoptr (TuskConnectionConfig) prod2
      = tusk_connection_repo_find_by_name (f->a, "Production (2)", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (prod2->id, !=, f->prod_id);
  g_assert_cmpstr (prod2->database, ==, "app");
  g_assert_nonnull (prod2->ssh_tunnel);
  g_assert_cmpstr (prod2->ssh_tunnel->id, !=, f->tunnel_key_id);
  g_assert_cmpstr (prod2->ssh_tunnel->name, ==, "jump-key (2)");
  g_autoptr (TuskConnectionConfig) dev2
      = tusk_connection_repo_find_by_name (f->a, "dev (2)", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dev2->ssh_tunnel->name, ==, "jump-agent (2)");

  g_autoptr (GPtrArray) queries = tusk_saved_query_repo_list (f->a, &error);
  int copies = 0;
  for (guint i = 0; i < queries->len; i++)
    {
      TuskSavedQuery *q = queries->pdata[i];
      if (!g_str_has_suffix (q->name, " (2)"))
        continue;
      copies++;
      if (g_str_equal (q->name, "Query 0 (2)")
          || g_str_equal (q->name, "Query 3 (2)"))
        g_assert_cmpstr (q->connection_id, ==, prod2->id);
      else if (g_str_equal (q->name, "Query 1 (2)"))
        g_assert_cmpstr (q->connection_id, ==, dev2->id);
      else
        g_assert_null (q->connection_id);
    }
  g_assert_cmpint (copies, ==, 4);

  /* A third time: "X (3)". */
  import_ok (f->a, text, TUSK_IMPORT_RENAME, &summary);
  g_autoptr (TuskConnectionConfig) prod3
      = tusk_connection_repo_find_by_name (f->a, "Production (3)", &error);
  g_assert_no_error (error);
  g_assert_nonnull (prod3);
}

static void
test_refused (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *before = export_ok (f->a);
  g_autofree char *dangling_tunnel = g_uuid_string_random ();

  /* Each document is refused, with a message naming what is wrong, and
   * the store is exactly as before. */
  g_autofree char *dangling = g_strdup_printf (
      "{\"format\":\"tusk-export\",\"version\":1,"
      "\"ssh_tunnels\":[{\"id\":\"%s\",\"name\":\"t\",\"host\":\"h\","
      "\"username\":\"u\",\"auth_method\":\"agent\"}],"
      "\"connections\":[{\"id\":\"%s\",\"name\":\"n\",\"host\":\"h\","
      "\"database\":\"d\",\"username\":\"u\",\"ssh_tunnel_id\":\"%s\"}]}",
      "11111111-1111-4111-8111-111111111111",
      "22222222-2222-4222-8222-222222222222", dangling_tunnel);
  struct
  {
    const char *text;
    const char *words[3];
  } cases[] = {
    { "not json at all", { "JSON", NULL } },
    { "", { "format", NULL } },
    { "[1, 2]", { "format", NULL } },
    { "{\"format\":\"other\",\"version\":1}", { "format", NULL } },
    { "{\"format\":\"tusk-export\"}", { "version", NULL } },
    { "{\"format\":\"tusk-export\",\"version\":\"1\"}", { "version", NULL } },
    { "{\"format\":\"tusk-export\",\"version\":2,\"connections\":[]}",
      { "newer", "2", NULL } },
    { "{\"format\":\"tusk-export\",\"version\":1,\"connections\":{}}",
      { "connections", "array", NULL } },
    { "{\"format\":\"tusk-export\",\"version\":1,\"connections\":[{"
      "\"id\":\"33333333-3333-4333-8333-333333333333\",\"name\":\"\","
      "\"host\":\"h\",\"port\":\"5432\",\"database\":\"d\","
      "\"username\":\"u\"}]}",
      { "connections[0].port", "connections[0]: Invalid connection", NULL } },
    { "{\"format\":\"tusk-export\",\"version\":1,\"saved_queries\":[{"
      "\"id\":\"44444444-4444-4444-8444-444444444444\",\"name\":\"q\","
      "\"sql\":\"\"},{\"id\":\"44444444-4444-4444-8444-444444444444\","
      "\"name\":\"q\",\"sql\":\"\"}]}",
      { "saved_queries[1].id", "twice", NULL } },
    { "{\"format\":\"tusk-export\",\"version\":1,\"saved_queries\":[{"
      "\"name\":\"q\"}],\"ui_state\":[{\"key\":\"k\"}]}",
      { "saved_queries[0].id", "ui_state[0].value", NULL } },
    { dangling, { "connections[0].ssh_tunnel_id", NULL } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int policy = TUSK_IMPORT_SKIP; policy <= TUSK_IMPORT_RENAME; policy++)
      {
        g_autoptr (GError) error = NULL;
        g_assert_false (tusk_storage_import_string (f->a, cases[i].text, -1,
                                                    policy, NULL, &error));
        tusk_assert_error (error, TUSK_ERROR_VALIDATION);
        for (int w = 0; cases[i].words[w] != NULL; w++)
          if (strstr (error->message, cases[i].words[w]) == NULL)
            g_error ("case %u: \"%s\" does not mention \"%s\"", i,
                     error->message, cases[i].words[w]);
        g_autofree char *after = export_ok (f->a);
        assert_same_document (before, after);
      }

  /* The dangling reference failed on the writer after the tunnel had been
   * inserted: it was rolled back. */
  g_assert_cmpint (count_rows (f->a, "ssh_tunnels"), ==, 2);
}

static void
test_policy_strings (void)
{
  TuskImportPolicy policy;
  for (int p = TUSK_IMPORT_SKIP; p <= TUSK_IMPORT_RENAME; p++)
    {
      const char *name = tusk_import_policy_to_string (p);
      g_assert_true (tusk_import_policy_from_string (name, &policy));
      g_assert_cmpint (policy, ==, p);
    }
  g_assert_cmpstr (tusk_import_policy_to_string (TUSK_IMPORT_RENAME), ==,
                   "rename");
  g_assert_false (tusk_import_policy_from_string ("merge", &policy));
  g_assert_false (tusk_import_policy_from_string (NULL, &policy));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                        \
  g_test_add ("/tusk/storage-export/" path, Fixture, NULL, fixture_set_up,     \
              func, fixture_tear_down)

  ADD ("round-trip", test_round_trip);
  ADD ("file", test_file);
  ADD ("skip", test_skip);
  ADD ("replace", test_replace);
  ADD ("rename", test_rename);
  ADD ("refused", test_refused);
  g_test_add_func ("/tusk/storage-export/policy-strings", test_policy_strings);

  return g_test_run ();
}
