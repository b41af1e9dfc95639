/* test-storage.c: the storage core: pragmas, the seed's schema, domain
 * migrations, readers and the writer, recovery, and crashes.
 *
 * The program is also its own helper for the multi-process cases: run as
 * `test-storage --child-open DIR GO-FILE` it opens DIR's store once GO-FILE
 * exists; as `test-storage --child-writer DIR` it submits 10,000 writes and
 * prints each acknowledged id to stdout.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "tusk.h"
#include "tusk-storage-private.h"
#include "tusk-test.h"

/* How many migration steps domain "tusk" has (libtusk/tusk-storage.c). */
#define TUSK_STEPS 3

/* ---- helpers ------------------------------------------------------------ */

typedef struct
{
  char *root; /* a fresh temporary directory, the data directory */
  char *db_path;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-storage-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->db_path = g_build_filename (f->root, "tusk.db", NULL);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_remove_tree (f->root);
  g_free (f->root);
  g_free (f->db_path);
}

static TuskStorage *
open_ok (const char *dir)
{
  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (storage);
  return storage;
}

/* A TuskStorageWriteFunc running @data as SQL. */
static gboolean
exec_func (sqlite3 *db, gpointer data, GError **error)
{
  char *message = NULL;
  if (sqlite3_exec (db, data, NULL, NULL, &message) == SQLITE_OK)
    return TRUE;
  g_set_error (error, TUSK_ERROR, TUSK_ERROR_STORAGE, "%s", message);
  sqlite3_free (message);
  return FALSE;
}

static void
write_sql (TuskStorage *storage, const char *sql)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (tusk_storage_write_sync (storage, exec_func, g_strdup (sql),
                                          g_free, &error));
  g_assert_no_error (error);
}

static gint64
query_int (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  gint64 value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return value;
}

static char *
query_str (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==,
                   SQLITE_OK);
  int rc = sqlite3_step (stmt);
  g_assert_true (rc == SQLITE_ROW || rc == SQLITE_DONE);
  char *value = rc == SQLITE_ROW
                    ? g_strdup ((const char *)sqlite3_column_text (stmt, 0))
                    : NULL;
  sqlite3_finalize (stmt);
  return value;
}

static gint64
read_int (TuskStorage *storage, const char *sql)
{
  g_autoptr (GError) error = NULL;
  sqlite3 *db = tusk_storage_reader (storage, &error);
  g_assert_no_error (error);
  return query_int (db, sql);
}

static char *
read_str (TuskStorage *storage, const char *sql)
{
  g_autoptr (GError) error = NULL;
  sqlite3 *db = tusk_storage_reader (storage, &error);
  g_assert_no_error (error);
  return query_str (db, sql);
}

static sqlite3 *
raw_open (const char *path)
{
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  g_assert_cmpint (sqlite3_open_v2 (path, &db, flags, NULL), ==, SQLITE_OK);
  return db;
}

/* The names in @dir starting with "tusk.db.corrupt-", sorted. */
static GPtrArray *
list_backups (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "tusk.db.corrupt-"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc)g_strcmp0);
  return names;
}

static char *
self_exe (void)
{
  char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_assert_nonnull (exe);
  return exe;
}

static const char *const kv_steps[]
    = { "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT) STRICT;", NULL };

static gboolean
migrate_kv (sqlite3 *db, gpointer data, GError **error)
{
  (void)data;
  return tusk_storage_migrate (db, "kv", kv_steps, error);
}

/* ---- open, pragmas, schema ---------------------------------------------- */

static void
test_open_creates_file (Fixture *f, gconstpointer data)
{
  (void)data;
  gint64 start = g_get_monotonic_time ();
  TuskStorage *storage = open_ok (f->root);
  gint64 took = g_get_monotonic_time () - start;
  g_test_message ("first open (create + migrate): %.2f ms", took / 1000.0);

  g_assert_false (tusk_storage_was_reset (storage));
  g_assert_null (tusk_storage_get_reset_message (storage));
  g_assert_false (tusk_storage_is_in_memory (storage));
  g_autofree char *real = realpath (f->root, NULL);
  g_autofree char *expected = g_build_filename (real, "tusk.db", NULL);
  g_assert_cmpstr (tusk_storage_get_path (storage), ==, expected);

  write_sql (storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");
  const char *const files[] = { "tusk.db", "tusk.db-wal", "tusk.db-shm" };
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (f->root, files[i], NULL);
      GStatBuf st;
      g_assert_cmpint (g_stat (path, &st), ==, 0);
      g_assert_cmpint (st.st_mode & 0777, ==, 0600);
    }
  tusk_storage_close (storage);

  start = g_get_monotonic_time ();
  storage = open_ok (f->root);
  took = g_get_monotonic_time () - start;
  g_test_message ("reopen (checks only): %.2f ms", took / 1000.0);
  tusk_storage_close (storage);
}

typedef struct
{
  char *journal_mode;
  gint64 synchronous, busy_timeout, cache_size, foreign_keys, temp_store,
      journal_size_limit;
} Pragmas;

/* How many of this process's file descriptors are open on @path. */
static guint
count_open_fds (const char *path)
{
  g_autofree char *real = realpath (path, NULL);
  g_assert_nonnull (real);
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  g_assert_nonnull (dir);
  guint count = 0;
  const char *name;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *link = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (link, NULL);
      if (target && strcmp (target, real) == 0)
        count++;
    }
  return count;
}

static void
read_pragmas (sqlite3 *db, Pragmas *p)
{
  p->journal_mode = query_str (db, "PRAGMA journal_mode");
  p->synchronous = query_int (db, "PRAGMA synchronous");
  p->busy_timeout = query_int (db, "PRAGMA busy_timeout");
  p->cache_size = query_int (db, "PRAGMA cache_size");
  p->foreign_keys = query_int (db, "PRAGMA foreign_keys");
  p->temp_store = query_int (db, "PRAGMA temp_store");
  p->journal_size_limit = query_int (db, "PRAGMA journal_size_limit");
}

static gboolean
read_pragmas_func (sqlite3 *db, gpointer data, GError **error)
{
  (void)error;
  read_pragmas (db, data);
  return TRUE;
}

static void
assert_pragmas (Pragmas *p, const char *journal_mode)
{
  g_assert_cmpstr (p->journal_mode, ==, journal_mode);
  g_assert_cmpint (p->synchronous, ==, 1); /* NORMAL */
  g_assert_cmpint (p->busy_timeout, ==, 5000);
  g_assert_cmpint (p->cache_size, ==, -64000);
  g_assert_cmpint (p->foreign_keys, ==, 1);
  g_assert_cmpint (p->temp_store, ==, 2); /* MEMORY */
  g_assert_cmpint (p->journal_size_limit, ==, 4194304);
  g_free (p->journal_mode);
}

static void
test_pragmas (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  Pragmas writer = { 0 }, reader = { 0 };

  g_assert_true (tusk_storage_write_sync (storage, read_pragmas_func, &writer,
                                          NULL, NULL));
  assert_pragmas (&writer, "wal");
  read_pragmas (tusk_storage_reader (storage, NULL), &reader);
  assert_pragmas (&reader, "wal");
  tusk_storage_close (storage);
}

static char *
describe_table (sqlite3 *db, const char *table)
{
  g_autofree char *sql = g_strdup_printf (
      "SELECT group_concat(d, ', ') FROM (SELECT name || ' ' || type"
      " || (CASE \"notnull\" WHEN 1 THEN ' NOT NULL' ELSE '' END)"
      " || coalesce(' DEFAULT ' || dflt_value, '')"
      " || (CASE WHEN pk > 0 THEN ' PK' || pk ELSE '' END) AS d"
      " FROM pragma_table_info('%s') ORDER BY cid)",
      table);
  return query_str (db, sql);
}

static char *
describe_fks (sqlite3 *db, const char *table)
{
  g_autofree char *sql = g_strdup_printf (
      "SELECT group_concat(d, ', ') FROM (SELECT \"from\" || ' -> ' || "
      "\"table\" || '(' || \"to\" || ') ON DELETE ' || on_delete AS d"
      " FROM pragma_foreign_key_list('%s') ORDER BY id)",
      table);
  return query_str (db, sql);
}

static void
test_schema (Fixture *f, gconstpointer data)
{
  (void)data;
  /* A STRICT table's TEXT PRIMARY KEY is NOT NULL implicitly; SQLite
   * reports it so. */
  static const struct
  {
    const char *table, *columns, *fks;
  } expected[] = {
    { "connections",
      "connection_id TEXT NOT NULL PK1, name TEXT NOT NULL, host TEXT NOT "
      "NULL, "
      "port INTEGER NOT NULL DEFAULT 5432, database TEXT NOT NULL, "
      "username TEXT NOT NULL, ssl_mode TEXT NOT NULL DEFAULT 'prefer', "
      "ssh_tunnel_id TEXT, color TEXT, "
      "read_only INTEGER NOT NULL DEFAULT 0, "
      "connect_timeout_secs INTEGER NOT NULL DEFAULT 10, "
      "statement_timeout_secs INTEGER, "
      "application_name TEXT NOT NULL DEFAULT 'Tusk', "
      "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, "
      "updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, "
      "last_connected_at TEXT, "
      "ssl_root_cert TEXT, ssl_cert TEXT, ssl_key TEXT",
      "ssh_tunnel_id -> ssh_tunnels(tunnel_id) ON DELETE SET NULL" },
    { "ssh_tunnels",
      "tunnel_id TEXT NOT NULL PK1, name TEXT NOT NULL, host TEXT NOT NULL, "
      "port INTEGER NOT NULL DEFAULT 22, username TEXT NOT NULL, "
      "auth_method TEXT NOT NULL, key_path TEXT, "
      "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP",
      NULL },
    { "query_history",
      "history_id INTEGER PK1, connection_id TEXT NOT NULL, "
      "sql_text TEXT NOT NULL, execution_time_ms INTEGER, "
      "row_count INTEGER, error_message TEXT, "
      "executed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP",
      "connection_id -> connections(connection_id) ON DELETE CASCADE" },
    { "saved_queries",
      "query_id TEXT NOT NULL PK1, connection_id TEXT, name TEXT NOT NULL, "
      "description TEXT, sql_text TEXT NOT NULL, folder_path TEXT, "
      "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, "
      "updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP",
      "connection_id -> connections(connection_id) ON DELETE SET NULL" },
    { "ui_state",
      "key TEXT NOT NULL PK1, value_json TEXT NOT NULL, "
      "updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP",
      NULL },
    { "migrations",
      "domain TEXT NOT NULL PK1, step INTEGER NOT NULL PK2, "
      "migration TEXT NOT NULL",
      NULL },
  };
  TuskStorage *storage = open_ok (f->root);
  sqlite3 *db = tusk_storage_reader (storage, NULL);

  g_autofree char *tables
      = query_str (db, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
                       "sqlite_schema WHERE type = 'table' ORDER BY name)");
  g_assert_cmpstr (tables, ==,
                   "connections,migrations,query_history,saved_queries,ssh_"
                   "tunnels,ui_state");

  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *strict_sql = g_strdup_printf (
          "SELECT sql LIKE '%%) STRICT' FROM sqlite_schema WHERE name = '%s'",
          expected[i].table);
      g_assert_cmpint (query_int (db, strict_sql), ==, 1);
      g_autofree char *columns = describe_table (db, expected[i].table);
      g_assert_cmpstr (columns, ==, expected[i].columns);
      g_autofree char *fks = describe_fks (db, expected[i].table);
      g_assert_cmpstr (fks, ==, expected[i].fks);
    }

  g_autofree char *indexes = query_str (
      db, "SELECT group_concat(d, '; ') FROM (SELECT s.name || ' ON ' || "
          "s.tbl_name || '(' || (SELECT group_concat(x.name || (CASE x.desc "
          "WHEN 1 THEN ' DESC' ELSE '' END), ', ') FROM "
          "pragma_index_xinfo(s.name) AS x WHERE x.key = 1) || ')' AS d "
          "FROM sqlite_schema AS s WHERE s.type = 'index' AND s.sql IS NOT "
          "NULL ORDER BY s.name)");
  g_assert_cmpstr (
      indexes, ==,
      "idx_connections_last_connected ON "
      "connections(last_connected_at DESC); "
      "idx_query_history_connection ON "
      "query_history(connection_id, executed_at DESC, history_id DESC); "
      "idx_query_history_executed ON query_history(executed_at "
      "DESC, history_id DESC); "
      "idx_saved_queries_folder ON saved_queries(folder_path)");

  /* STRICT is enforced, and so are the foreign keys. */
  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_storage_write_sync (
      storage, exec_func,
      g_strdup ("INSERT INTO ui_state (key, value_json) VALUES (1, x'00')"),
      g_free, &error));
  g_clear_error (&error);
  g_assert_false (tusk_storage_write_sync (
      storage, exec_func,
      g_strdup ("INSERT INTO query_history (connection_id, sql_text) "
                "VALUES ('nobody', 'SELECT 1')"),
      g_free, &error));
  g_assert_nonnull (strstr (error->message, "FOREIGN KEY"));
  tusk_storage_close (storage);
}

/* ---- migrations --------------------------------------------------------- */

static void
test_migrations_recorded (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  g_autofree char *steps
      = read_str (storage, "SELECT group_concat(domain || ':' || step, ',') "
                           "FROM (SELECT * FROM migrations ORDER BY step)");
  g_assert_cmpstr (steps, ==, "tusk:0,tusk:1,tusk:2");
  g_autofree char *step0 = read_str (
      storage,
      "SELECT migration FROM migrations WHERE domain = 'tusk' AND step = 0");
  g_assert_nonnull (strstr (step0, "CREATE TABLE connections"));
  g_autofree char *step1 = read_str (
      storage,
      "SELECT migration FROM migrations WHERE domain = 'tusk' AND step = 1");
  g_assert_nonnull (strstr (step1, "ADD COLUMN ssl_root_cert"));
  tusk_storage_close (storage);

  /* Reopening runs nothing again. */
  storage = open_ok (f->root);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM migrations"), ==,
                   TUSK_STEPS);
  tusk_storage_close (storage);
}

static void
test_migrate_not_rerun (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *const two[] = { "CREATE TABLE t (x INTEGER) STRICT;",
                              "INSERT INTO t VALUES (1);", NULL };
  const char *const three[]
      = { "CREATE TABLE t (x INTEGER) STRICT;", "INSERT INTO t VALUES (1);",
          "INSERT INTO t VALUES (2);", NULL };
  sqlite3 *db = raw_open (f->db_path);
  g_autoptr (GError) error = NULL;

  g_assert_true (tusk_storage_migrate (db, "test", two, &error));
  g_assert_true (tusk_storage_migrate (db, "test", two, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM t"), ==, 1);

  /* A new step appended later runs alone. */
  g_assert_true (tusk_storage_migrate (db, "test", three, &error));
  g_assert_cmpint (query_int (db, "SELECT sum(x) FROM t"), ==, 3);
  g_assert_cmpint (
      query_int (db, "SELECT count(*) FROM migrations WHERE domain = 'test'"),
      ==, 3);

  /* Domains are independent; an older program's shorter list is fine. */
  g_assert_true (tusk_storage_migrate (db, "other", two + 1, &error));
  g_assert_cmpint (query_int (db, "SELECT sum(x) FROM t"), ==, 4);
  g_assert_true (tusk_storage_migrate (db, "test", two, &error));
  g_assert_cmpint (query_int (db, "SELECT sum(x) FROM t"), ==, 4);
  g_assert_true (sqlite3_get_autocommit (db));
  sqlite3_close (db);
}

static void
test_migrate_changed_step (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *const before[] = { "CREATE TABLE t (x INTEGER) STRICT;",
                                 "INSERT INTO t VALUES (1);", NULL };
  const char *const after[]
      = { "CREATE TABLE t (x INTEGER) STRICT;", "INSERT INTO t VALUES (2);",
          "INSERT INTO t VALUES (3);", NULL };
  sqlite3 *db = raw_open (f->db_path);
  g_autoptr (GError) error = NULL;

  g_assert_true (tusk_storage_migrate (db, "test", before, &error));
  g_assert_false (tusk_storage_migrate (db, "test", after, &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, "step 1"));
  g_assert_nonnull (strstr (error->message, "\"test\""));
  g_assert_cmpint (query_int (db, "SELECT sum(x) FROM t"), ==, 1);
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM migrations"), ==, 2);
  g_assert_true (sqlite3_get_autocommit (db));
  sqlite3_close (db);
}

static void
test_open_refuses_changed_step (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_storage_close (open_ok (f->root));
  sqlite3 *db = raw_open (f->db_path);
  g_assert_cmpint (sqlite3_exec (db,
                                 "UPDATE migrations SET migration = migration "
                                 "|| '-- edited' WHERE domain = 'tusk' AND "
                                 "step = 1",
                                 NULL, NULL, NULL),
                   ==, SQLITE_OK);
  sqlite3_close (db);
  g_autofree char *before = NULL;
  gsize before_len = 0;
  g_assert_true (g_file_get_contents (f->db_path, &before, &before_len, NULL));

  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (f->root, &error);
  g_assert_null (storage);
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, "step 1"));
  g_assert_nonnull (strstr (error->message, "\"tusk\""));

  /* The file is as it was: not changed, not moved, not replaced. */
  g_autofree char *after = NULL;
  gsize after_len = 0;
  g_assert_true (g_file_get_contents (f->db_path, &after, &after_len, NULL));
  g_assert_cmpmem (before, before_len, after, after_len);
  g_autoptr (GPtrArray) backups = list_backups (f->root);
  g_assert_cmpuint (backups->len, ==, 0);
}

static void
test_migrate_multi_statement (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *const steps[] = { "CREATE TABLE a (x INTEGER) STRICT;\n"
                                "CREATE TABLE b (y TEXT) STRICT;\n"
                                "INSERT INTO a VALUES (1), (2);\n"
                                "-- a comment\n"
                                "INSERT INTO b SELECT 'row ' || x FROM a;",
                                NULL };
  sqlite3 *db = raw_open (f->db_path);
  g_autoptr (GError) error = NULL;
  g_assert_true (tusk_storage_migrate (db, "multi", steps, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM b"), ==, 2);
  sqlite3_close (db);
}

static void
test_migrate_failed_step (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *const steps[] = { "CREATE TABLE a (x INTEGER) STRICT;",
                                "CREATE TABLE b (y INTEGER) STRICT;\n"
                                "INSERT INTO b VALUES (1);\n"
                                "INSERT INTO no_such_table VALUES (1);",
                                NULL };
  sqlite3 *db = raw_open (f->db_path);
  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_storage_migrate (db, "broken", steps, &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, "step 1"));
  g_assert_nonnull (strstr (error->message, "\"broken\""));
  g_assert_nonnull (strstr (error->message, "no_such_table"));

  /* Nothing of the run remains: not step 0, not half of step 1. */
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM sqlite_schema WHERE "
                                  "name IN ('a', 'b', 'migrations')"),
                   ==, 0);
  g_assert_true (sqlite3_get_autocommit (db));

  /* With the migrations table already there, no row of the run is left. */
  g_clear_error (&error);
  g_assert_true (tusk_storage_migrate (db, "ok", steps + 2, &error));
  g_assert_false (tusk_storage_migrate (db, "broken", steps, &error));
  g_assert_cmpint (
      query_int (db, "SELECT count(*) FROM migrations WHERE domain = 'broken'"),
      ==, 0);
  sqlite3_close (db);
}

typedef struct
{
  GError *migrate_error;
} InWriterMigrate;

static gboolean
failing_migrate_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  InWriterMigrate *m = data;
  const char *const steps[] = { "CREATE TABLE a (x INTEGER) STRICT;",
                                "SELECT no_such_column;", NULL };
  if (!exec_func (db,
                  "INSERT INTO ui_state (key, value_json) "
                  "VALUES ('kept', '1')",
                  error))
    return FALSE;
  /* Inside the write's transaction: only the savepoint rolls back. */
  g_assert_false (
      tusk_storage_migrate (db, "broken", steps, &m->migrate_error));
  return TRUE;
}

static void
test_migrate_failed_in_writer (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  InWriterMigrate m = { NULL };
  g_autoptr (GError) error = NULL;
  g_assert_true (tusk_storage_write_sync (storage, failing_migrate_in_writer,
                                          &m, NULL, &error));
  g_assert_no_error (error);
  tusk_assert_error (m.migrate_error, TUSK_ERROR_STORAGE);
  g_clear_error (&m.migrate_error);
  g_assert_cmpint (
      read_int (storage, "SELECT count(*) FROM sqlite_schema WHERE name = 'a'"),
      ==, 0);
  g_assert_cmpint (
      read_int (storage, "SELECT count(*) FROM ui_state WHERE key = 'kept'"),
      ==, 1);
  tusk_storage_close (storage);
}

/* ---- opening at once ---------------------------------------------------- */

typedef struct
{
  const char *dir;
  pthread_mutex_t mutex; /* not a GMutex: ThreadSanitizer sees it */
  pthread_cond_t cond;
  gboolean go;
  int index;
} Race;

static gpointer
race_open_thread (gpointer user_data)
{
  Race *race = user_data;
  pthread_mutex_lock (&race->mutex);
  int index = race->index++;
  while (!race->go)
    pthread_cond_wait (&race->cond, &race->mutex);
  pthread_mutex_unlock (&race->mutex);

  TuskStorage *storage = open_ok (race->dir);
  g_assert_false (tusk_storage_was_reset (storage));
  g_autofree char *sql = g_strdup_printf (
      "INSERT INTO ui_state (key, value_json) VALUES ('t%d', '1')", index);
  write_sql (storage, sql);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM migrations"), ==,
                   TUSK_STEPS);
  tusk_storage_close (storage);
  return NULL;
}

static void
test_open_threads (Fixture *f, gconstpointer data)
{
  (void)data;
  Race race = { .dir = f->root };
  GThread *threads[20];
  pthread_mutex_init (&race.mutex, NULL);
  pthread_cond_init (&race.cond, NULL);
  for (int i = 0; i < 20; i++)
    threads[i] = g_thread_new ("opener", race_open_thread, &race);
  pthread_mutex_lock (&race.mutex);
  race.go = TRUE;
  pthread_cond_broadcast (&race.cond);
  pthread_mutex_unlock (&race.mutex);
  for (int i = 0; i < 20; i++)
    g_thread_join (threads[i]);
  pthread_mutex_destroy (&race.mutex);
  pthread_cond_destroy (&race.cond);

  TuskStorage *storage = open_ok (f->root);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 20);
  tusk_storage_close (storage);
}

static int
child_open (const char *dir, const char *go)
{
  while (!g_file_test (go, G_FILE_TEST_EXISTS))
    g_usleep (100);
  GError *error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  if (storage == NULL)
    {
      g_printerr ("child %d: %s\n", (int)getpid (), error->message);
      g_error_free (error);
      return 1;
    }
  if (tusk_storage_was_reset (storage))
    {
      g_printerr ("child %d: %s\n", (int)getpid (),
                  tusk_storage_get_reset_message (storage));
      tusk_storage_close (storage);
      return 2;
    }
  g_autofree char *sql = g_strdup_printf (
      "INSERT INTO ui_state (key, value_json) VALUES ('pid-%d', '1')",
      (int)getpid ());
  gboolean ok = tusk_storage_write_sync (
      storage, exec_func, g_steal_pointer (&sql), g_free, &error);
  if (!ok)
    {
      g_printerr ("child %d: %s\n", (int)getpid (), error->message);
      g_error_free (error);
    }
  tusk_storage_close (storage);
  return ok ? 0 : 3;
}

static void
test_open_processes (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *exe = self_exe ();
  g_autofree char *go = g_build_filename (f->root, "go", NULL);
  g_autofree char *dir = g_build_filename (f->root, "data", NULL);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  GPid pids[4];

  for (int i = 0; i < 4; i++)
    {
      const char *argv[] = { exe, "--child-open", dir, go, NULL };
      g_autoptr (GError) error = NULL;
      g_assert_true (g_spawn_async (NULL, (char **)argv, NULL,
                                    G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                    &pids[i], &error));
      g_assert_no_error (error);
    }
  g_assert_true (g_file_set_contents (go, "", 0, NULL));
  for (int i = 0; i < 4; i++)
    {
      int status = 0;
      g_assert_cmpint (waitpid (pids[i], &status, 0), ==, pids[i]);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 0);
      g_spawn_close_pid (pids[i]);
    }

  TuskStorage *storage = open_ok (dir);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 4);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM migrations"), ==,
                   TUSK_STEPS);
  tusk_storage_close (storage);
}

/* ---- readers ------------------------------------------------------------ */

static void
test_reader_read_only (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  g_autoptr (GError) error = NULL;
  sqlite3 *db = tusk_storage_reader (storage, &error);
  g_assert_no_error (error);
  g_assert_true (db == tusk_storage_reader (storage, NULL));

  char *message = NULL;
  int rc = sqlite3_exec (
      db, "INSERT INTO ui_state (key, value_json) VALUES ('x', '1')", NULL,
      NULL, &message);
  g_assert_cmpint (rc & 0xff, ==, SQLITE_READONLY);
  sqlite3_free (message);
  rc = sqlite3_exec (db, "CREATE TABLE nope (x INTEGER)", NULL, NULL, NULL);
  g_assert_cmpint (rc & 0xff, ==, SQLITE_READONLY);
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM ui_state"), ==, 0);

  /* It sees every committed write at once. */
  write_sql (storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('y', '1')");
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM ui_state"), ==, 1);
  tusk_storage_close (storage);
}

typedef struct
{
  TuskStorage *storage;
  sqlite3 *db;
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  int stage; /* 1: the thread read; 2: the storage closed */
} ReaderThread;

static gpointer
reader_thread (gpointer user_data)
{
  ReaderThread *rt = user_data;
  sqlite3 *db = tusk_storage_reader (rt->storage, NULL);
  g_assert_nonnull (db);
  g_assert_cmpint (query_int (db, "SELECT count(*) FROM ui_state"), ==, 1);
  pthread_mutex_lock (&rt->mutex);
  rt->db = db;
  rt->stage = 1;
  pthread_cond_broadcast (&rt->cond);
  while (rt->stage != 2)
    pthread_cond_wait (&rt->cond, &rt->mutex);
  pthread_mutex_unlock (&rt->mutex);
  /* Exits after the storage was freed: the thread-local destroy must cope. */
  return NULL;
}

static void
test_reader_threads (Fixture *f, gconstpointer data)
{
  (void)data;
  ReaderThread rt = { 0 };
  pthread_mutex_init (&rt.mutex, NULL);
  pthread_cond_init (&rt.cond, NULL);
  rt.storage = open_ok (f->root);
  write_sql (rt.storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");

  GThread *thread = g_thread_new ("reader", reader_thread, &rt);
  pthread_mutex_lock (&rt.mutex);
  while (rt.stage != 1)
    pthread_cond_wait (&rt.cond, &rt.mutex);
  pthread_mutex_unlock (&rt.mutex);
  g_assert_true (rt.db != tusk_storage_reader (rt.storage, NULL));

  tusk_storage_close (rt.storage);
  pthread_mutex_lock (&rt.mutex);
  rt.stage = 2;
  pthread_cond_broadcast (&rt.cond);
  pthread_mutex_unlock (&rt.mutex);
  g_thread_join (thread);
  pthread_mutex_destroy (&rt.mutex);
  pthread_cond_destroy (&rt.cond);

  /* No connection was left open: the thread's reader was closed too. */
  g_assert_cmpuint (count_open_fds (f->db_path), ==, 0);
}

static void
test_reader_two_storages (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *dir_a = g_build_filename (f->root, "a", NULL);
  g_autofree char *dir_b = g_build_filename (f->root, "b", NULL);
  TuskStorage *a = open_ok (dir_a);
  TuskStorage *b = open_ok (dir_b);
  write_sql (a, "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");
  g_assert_true (tusk_storage_reader (a, NULL)
                 != tusk_storage_reader (b, NULL));
  g_assert_cmpint (read_int (a, "SELECT count(*) FROM ui_state"), ==, 1);
  g_assert_cmpint (read_int (b, "SELECT count(*) FROM ui_state"), ==, 0);
  tusk_storage_close (a);
  /* A storage opened after a close never gets the closed one's reader. */
  TuskStorage *c = open_ok (dir_b);
  g_assert_cmpint (read_int (c, "SELECT count(*) FROM ui_state"), ==, 0);
  tusk_storage_close (c);
  tusk_storage_close (b);
}

/* ---- writes ------------------------------------------------------------- */

static gboolean
insert_then_fail (sqlite3 *db, gpointer data, GError **error)
{
  (void)data;
  if (!exec_func (db,
                  "INSERT INTO ui_state (key, value_json) VALUES ('half', '1')",
                  error))
    return FALSE;
  return exec_func (db, "INSERT INTO no_such_table VALUES (1)", error);
}

static void
test_write_sync (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  write_sql (storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);

  g_autoptr (GError) error = NULL;
  g_assert_false (
      tusk_storage_write_sync (storage, insert_then_fail, NULL, NULL, &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  /* Rolled back as a whole. */
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);
  tusk_storage_close (storage);
}

typedef struct
{
  TuskStorage *storage;
  gboolean done;
  gboolean ok;
  GError *error;
  GThread *thread;
  GMainContext *context;
} AsyncResult;

static void
async_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  AsyncResult *r = user_data;
  r->ok = tusk_storage_write_finish (r->storage, result, &r->error);
  r->thread = g_thread_self ();
  r->context = g_main_context_get_thread_default ();
  r->done = TRUE;
}

static void
test_write_async (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  AsyncResult r = { .storage = storage };

  tusk_storage_write_async (
      storage, exec_func,
      g_strdup ("INSERT INTO ui_state (key, value_json) VALUES ('a', '1')"),
      g_free, NULL, async_done, &r);
  g_assert_false (r.done); /* never from inside the call */
  tusk_test_wait_for (&r.done, 10000);
  g_assert_true (r.ok);
  g_assert_no_error (r.error);
  g_assert_true (r.thread == g_thread_self ());
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);

  /* Failure, rolled back. */
  r = (AsyncResult){ .storage = storage };
  tusk_storage_write_async (storage, insert_then_fail, NULL, NULL, NULL,
                            async_done, &r);
  tusk_test_wait_for (&r.done, 10000);
  g_assert_false (r.ok);
  tusk_assert_error (r.error, TUSK_ERROR_STORAGE);
  g_clear_error (&r.error);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);

  /* Cancelled before it ran: not run, reported as cancelled. */
  r = (AsyncResult){ .storage = storage };
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  tusk_storage_write_async (
      storage, exec_func,
      g_strdup ("INSERT INTO ui_state (key, value_json) VALUES ('c', '1')"),
      g_free, cancellable, async_done, &r);
  tusk_test_wait_for (&r.done, 10000);
  g_assert_false (r.ok);
  tusk_assert_error (r.error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&r.error);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);

  /* Delivered to the caller's thread-default context, not the global one. */
  GMainContext *context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  r = (AsyncResult){ .storage = storage };
  tusk_storage_write_async (
      storage, exec_func,
      g_strdup ("INSERT INTO ui_state (key, value_json) VALUES ('d', '1')"),
      g_free, NULL, async_done, &r);
  tusk_storage_flush (storage);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (r.done);
  while (!r.done)
    g_main_context_iteration (context, TRUE);
  g_assert_true (r.ok);
  g_assert_true (r.context == context);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  tusk_storage_close (storage);
}

static void
test_write_queue (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  const int n = 2000;
  char **sql = g_new0 (char *, n);
  for (int i = 0; i < n; i++)
    sql[i] = g_strdup_printf (
        "INSERT INTO ui_state (key, value_json) VALUES ('q%d', '%d')", i, i);

  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < n; i++)
    tusk_storage_write_queue (storage, exec_func, sql[i], g_free);
  gint64 took = g_get_monotonic_time () - start;
  g_test_message ("_queue: %.2f µs per write for the caller", (double)took / n);
  g_free (sql);

  /* A failing queued write is logged and does not stop the others. */
  tusk_storage_write_queue (storage, insert_then_fail, NULL, NULL);
  tusk_storage_write_queue (
      storage, exec_func,
      g_strdup ("INSERT INTO ui_state (key, value_json) VALUES ('last', '1')"),
      g_free);
  tusk_storage_flush (storage);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==,
                   n + 1);
  tusk_storage_close (storage);

  /* Close commits whatever is still queued. */
  storage = open_ok (f->root);
  for (int i = 0; i < 100; i++)
    tusk_storage_write_queue (
        storage, exec_func,
        g_strdup_printf ("INSERT INTO ui_state (key, value_json) "
                         "VALUES ('late%d', '1')",
                         i),
        g_free);
  tusk_storage_close (storage);
  storage = open_ok (f->root);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==,
                   n + 101);
  tusk_storage_close (storage);
}

static gboolean
append_order (sqlite3 *db, gpointer data, GError **error)
{
  g_autofree char *sql = g_strdup_printf (
      "INSERT INTO ui_state (key, value_json) VALUES ('%s', '%d')",
      (char *)data, (int)g_random_int_range (0, 1000));
  return exec_func (db, sql, error);
}

static void
test_write_order (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  AsyncResult r = { .storage = storage };

  tusk_storage_write_queue (storage, append_order, g_strdup ("1"), g_free);
  tusk_storage_write_async (storage, append_order, g_strdup ("2"), g_free, NULL,
                            async_done, &r);
  tusk_storage_write_queue (storage, append_order, g_strdup ("3"), g_free);
  g_assert_true (tusk_storage_write_sync (storage, append_order, g_strdup ("4"),
                                          g_free, NULL));
  tusk_test_wait_for (&r.done, 10000);
  g_autofree char *order = read_str (
      storage, "SELECT group_concat(key, '') FROM (SELECT key FROM ui_state "
               "ORDER BY rowid)");
  g_assert_cmpstr (order, ==, "1234");
  tusk_storage_close (storage);
}

static gpointer
writer_thread (gpointer user_data)
{
  TuskStorage *storage = user_data;
  static int next = 0;
  int id = g_atomic_int_add (&next, 1);
  for (int i = 0; i < 250; i++)
    {
      g_autofree char *sql = g_strdup_printf (
          "INSERT INTO ui_state (key, value_json) VALUES ('w%d-%d', '1')", id,
          i);
      if (i % 2 == 0)
        write_sql (storage, sql);
      else
        tusk_storage_write_queue (storage, exec_func, g_steal_pointer (&sql),
                                  g_free);
      if (i % 50 == 0)
        g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), >,
                         0);
    }
  return NULL;
}

static void
test_write_threads (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  GThread *threads[8];
  for (int i = 0; i < 8; i++)
    threads[i] = g_thread_new ("writer", writer_thread, storage);
  for (int i = 0; i < 8; i++)
    g_thread_join (threads[i]);
  tusk_storage_flush (storage);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==,
                   8 * 250);
  g_autofree char *check = read_str (storage, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");
  tusk_storage_close (storage);
}

static gboolean
record_thread (sqlite3 *db, gpointer data, GError **error)
{
  (void)db;
  (void)error;
  *(GThread **)data = g_thread_self ();
  return TRUE;
}

static void
test_shared_writer (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *link = g_build_filename (f->root, "link", NULL);
  g_autofree char *dir = g_build_filename (f->root, "data", NULL);
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_cmpint (symlink (dir, link), ==, 0);

  TuskStorage *a = open_ok (dir);
  TuskStorage *b = open_ok (link); /* another spelling of the same file */
  g_assert_cmpstr (tusk_storage_get_path (a), ==, tusk_storage_get_path (b));
  GThread *ta = NULL, *tb = NULL;
  g_assert_true (tusk_storage_write_sync (a, record_thread, &ta, NULL, NULL));
  g_assert_true (tusk_storage_write_sync (b, record_thread, &tb, NULL, NULL));
  g_assert_true (ta == tb);

  write_sql (a, "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");
  g_assert_cmpint (read_int (b, "SELECT count(*) FROM ui_state"), ==, 1);
  tusk_storage_close (a);
  write_sql (b, "INSERT INTO ui_state (key, value_json) VALUES ('b', '1')");
  g_assert_cmpint (read_int (b, "SELECT count(*) FROM ui_state"), ==, 2);
  tusk_storage_close (b);
}

/* ---- recovery ----------------------------------------------------------- */

/* Asserts @storage was reset with its old file moved to the one backup in
 * @dir, whose path the message names; returns (transfer full) that path. */
static char *
assert_recovered (TuskStorage *storage, const char *dir)
{
  g_assert_true (tusk_storage_was_reset (storage));
  g_assert_false (tusk_storage_is_in_memory (storage));
  const char *message = tusk_storage_get_reset_message (storage);
  g_autoptr (GPtrArray) backups = list_backups (dir);
  char *backup = NULL;
  for (guint i = 0; i < backups->len; i++)
    {
      const char *name = g_ptr_array_index (backups, i);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *quoted = g_strdup_printf ("%s;", path);
      if (strstr (message, quoted) != NULL)
        {
          g_assert_null (backup);
          backup = g_steal_pointer (&path);
        }
    }
  g_assert_nonnull (backup);

  /* The fresh database works. */
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM migrations"), ==,
                   TUSK_STEPS);
  write_sql (storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);
  return backup;
}

static void
test_recover_garbage (Fixture *f, gconstpointer data)
{
  (void)data;
  GString *garbage = g_string_new (NULL);
  for (int i = 0; i < 300; i++)
    g_string_append (garbage, "this is not a database\n");
  g_assert_true (g_file_set_contents (f->db_path, garbage->str, -1, NULL));
  g_autofree char *wal = g_strconcat (f->db_path, "-wal", NULL);
  g_assert_true (g_file_set_contents (wal, "not a wal either", -1, NULL));

  TuskStorage *storage = open_ok (f->root);
  g_autofree char *backup = assert_recovered (storage, f->root);
  g_autofree char *moved = NULL;
  g_assert_true (g_file_get_contents (backup, &moved, NULL, NULL));
  g_assert_cmpstr (moved, ==, garbage->str);
  g_autofree char *backup_wal = g_strconcat (backup, "-wal", NULL);
  g_autofree char *moved_wal = NULL;
  g_assert_true (g_file_get_contents (backup_wal, &moved_wal, NULL, NULL));
  g_assert_cmpstr (moved_wal, ==, "not a wal either");
  tusk_storage_close (storage);

  /* Again within the same second: a second, distinct backup. */
  g_assert_true (g_file_set_contents (f->db_path, garbage->str, -1, NULL));
  storage = open_ok (f->root);
  g_autofree char *second = assert_recovered (storage, f->root);
  tusk_storage_close (storage);
  g_autoptr (GPtrArray) backups = list_backups (f->root);
  /* Two: the first with its -wal, the second with the -wal and -shm that
   * the fresh database's close left. */
  g_assert_cmpuint (backups->len, ==, 5);
  g_test_message ("backups: %s, %s", backup, second);
  g_string_free (garbage, TRUE);
}

static void
test_recover_truncated (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskStorage *storage = open_ok (f->root);
  write_sql (storage,
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
             "WHERE i < 2000) INSERT INTO ui_state (key, value_json) SELECT "
             "'k' || i, '\"' || hex(randomblob(100)) || '\"' FROM c");
  tusk_storage_close (storage);
  tusk_test_checkpoint (f->db_path);

  GStatBuf st;
  g_assert_cmpint (g_stat (f->db_path, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 100 * 1024);
  g_assert_cmpint (truncate (f->db_path, st.st_size / 2), ==, 0);

  storage = open_ok (f->root);
  g_autofree char *backup = assert_recovered (storage, f->root);
  g_assert_cmpint (g_stat (backup, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 50 * 1024);
  tusk_storage_close (storage);
}

static void
test_recover_empty_file (Fixture *f, gconstpointer data)
{
  (void)data;
  g_assert_true (g_file_set_contents (f->db_path, "", 0, NULL));
  TuskStorage *storage = open_ok (f->root);
  /* A zero-length file is a valid empty database: nothing was lost. */
  g_assert_false (tusk_storage_was_reset (storage));
  g_assert_false (tusk_storage_is_in_memory (storage));
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM migrations"), ==,
                   TUSK_STEPS);
  tusk_storage_close (storage);
  g_autoptr (GPtrArray) backups = list_backups (f->root);
  g_assert_cmpuint (backups->len, ==, 0);
}

static void
test_recover_directory (Fixture *f, gconstpointer data)
{
  (void)data;
  g_assert_cmpint (g_mkdir (f->db_path, 0700), ==, 0);
  g_autofree char *inside = g_build_filename (f->db_path, "keep-me", NULL);
  g_assert_true (g_file_set_contents (inside, "precious", -1, NULL));

  TuskStorage *storage = open_ok (f->root);
  g_autofree char *backup = assert_recovered (storage, f->root);
  g_assert_true (g_file_test (backup, G_FILE_TEST_IS_DIR));
  g_autofree char *kept = g_build_filename (backup, "keep-me", NULL);
  g_assert_true (g_file_test (kept, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (f->db_path, G_FILE_TEST_IS_REGULAR));
  tusk_storage_close (storage);
}

typedef struct
{
  TuskStorage *storage;
  gint64 count;
} CountInThread;

static gpointer
count_in_thread (gpointer user_data)
{
  CountInThread *c = user_data;
  c->count = read_int (c->storage, "SELECT count(*) FROM ui_state");
  return NULL;
}

static gboolean
insert_and_linger (sqlite3 *db, gpointer data, GError **error)
{
  (void)data;
  if (!exec_func (db,
                  "INSERT INTO ui_state (key, value_json) VALUES ('slow', '1')",
                  error))
    return FALSE;
  g_usleep (50 * 1000);
  return TRUE;
}

static void
assert_in_memory_works (TuskStorage *storage)
{
  g_assert_true (tusk_storage_was_reset (storage));
  g_assert_true (tusk_storage_is_in_memory (storage));
  g_assert_null (tusk_storage_get_path (storage));
  g_assert_nonnull (
      strstr (tusk_storage_get_reset_message (storage), "memory"));

  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM migrations"), ==,
                   TUSK_STEPS);
  write_sql (storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('a', '1')");
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 1);

  /* Readers of other threads see the same database... */
  CountInThread c = { storage, -1 };
  g_thread_join (g_thread_new ("counter", count_in_thread, &c));
  g_assert_cmpint (c.count, ==, 1);

  /* ...and wait for a writer inside its transaction instead of failing. */
  AsyncResult r = { .storage = storage };
  tusk_storage_write_async (storage, insert_and_linger, NULL, NULL, NULL,
                            async_done, &r);
  gint64 seen = read_int (storage, "SELECT count(*) FROM ui_state");
  g_assert_true (seen == 1 || seen == 2);
  tusk_test_wait_for (&r.done, 10000);
  g_assert_true (r.ok);
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM ui_state"), ==, 2);

  /* A write on the read connection is still refused. */
  sqlite3 *db = tusk_storage_reader (storage, NULL);
  int rc = sqlite3_exec (db, "DELETE FROM ui_state", NULL, NULL, NULL);
  g_assert_cmpint (rc & 0xff, ==, SQLITE_READONLY);
}

static void
test_recover_unwritable (Fixture *f, gconstpointer data)
{
  (void)data;
  /* Root may write anywhere; a path under a regular file it cannot. */
  g_autofree char *file = g_build_filename (f->root, "plain-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_autofree char *dir = g_build_filename (file, "data", NULL);

  TuskStorage *storage = open_ok (dir);
  assert_in_memory_works (storage);
  TuskStorage *other = open_ok (dir);
  /* Each in-memory store is its own. */
  g_assert_cmpint (read_int (other, "SELECT count(*) FROM ui_state"), ==, 0);
  tusk_storage_close (other);
  tusk_storage_close (storage);

  /* A directory that exists but takes no new file (even from root). */
  storage = open_ok ("/proc/self");
  assert_in_memory_works (storage);
  tusk_storage_close (storage);

  /* memdb keeps even its journal in memory: nothing appears in "/". */
  g_autoptr (GDir) root = g_dir_open ("/", 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (root)) != NULL)
    g_assert_false (g_str_has_prefix (name, "tusk-mem-"));
}

/* ---- crashes and cycles -------------------------------------------------- */

#define KILL_WRITES 10000

static const char *const kill_steps[]
    = { "CREATE TABLE kill_test (id INTEGER PRIMARY KEY) STRICT;", NULL };

static gboolean
migrate_kill (sqlite3 *db, gpointer data, GError **error)
{
  (void)data;
  return tusk_storage_migrate (db, "kill-test", kill_steps, error);
}

static gboolean
insert_id (sqlite3 *db, gpointer data, GError **error)
{
  g_autofree char *sql = g_strdup_printf (
      "INSERT INTO kill_test (id) VALUES (%d)", GPOINTER_TO_INT (data));
  return exec_func (db, sql, error);
}

typedef struct
{
  TuskStorage *storage;
  int id;
  int *acked;
} Ack;

/* Writes run in submission order, so once write @id committed every
 * earlier queued one has too: acknowledge them all by printing @id. */
static void
ack_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  (void)source;
  Ack *ack = user_data;
  GError *error = NULL;
  if (!tusk_storage_write_finish (ack->storage, result, &error))
    g_error ("write %d failed: %s", ack->id, error->message);
  char line[32];
  int len = g_snprintf (line, sizeof line, "%d\n", ack->id);
  if (write (STDOUT_FILENO, line, len) != len)
    _exit (5);
  *ack->acked = ack->id;
  g_free (ack);
}

static int
child_writer (const char *dir)
{
  GError *error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  if (storage == NULL
      || !tusk_storage_write_sync (storage, migrate_kill, NULL, NULL, &error))
    {
      g_printerr ("child: %s\n", error->message);
      return 1;
    }
  int acked = 0;
  for (int id = 1; id <= KILL_WRITES; id++)
    {
      if (id % 10 != 0)
        {
          tusk_storage_write_queue (storage, insert_id, GINT_TO_POINTER (id),
                                    NULL);
          continue;
        }
      Ack *ack = g_new (Ack, 1);
      *ack = (Ack){ storage, id, &acked };
      tusk_storage_write_async (storage, insert_id, GINT_TO_POINTER (id), NULL,
                                NULL, ack_done, ack);
    }
  while (acked < KILL_WRITES)
    g_main_context_iteration (NULL, TRUE);
  for (;;) /* wait for the parent's SIGKILL */
    pause ();
}

static void
test_sigkill (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *exe = self_exe ();
  const char *argv[] = { exe, "--child-writer", f->root, NULL };
  GPid pid;
  int out_fd = -1;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_async_with_pipes (
      NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
      NULL, &out_fd, NULL, &error));
  g_assert_no_error (error);

  /* Read acknowledgements; kill mid-way; keep every line already sent. */
  GString *pending = g_string_new (NULL);
  int max_acked = 0;
  gboolean killed = FALSE;
  char buf[4096];
  ssize_t n;
  while ((n = read (out_fd, buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      g_string_append_len (pending, buf, n);
      char *nl;
      while ((nl = strchr (pending->str, '\n')) != NULL)
        {
          max_acked = MAX (max_acked, atoi (pending->str));
          g_string_erase (pending, 0, nl - pending->str + 1);
        }
      if (!killed && max_acked >= KILL_WRITES * 3 / 10)
        {
          g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
          killed = TRUE;
        }
    }
  close (out_fd);
  int status = 0;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_spawn_close_pid (pid);
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
  g_string_free (pending, TRUE);

  TuskStorage *storage = open_ok (f->root);
  g_assert_false (tusk_storage_was_reset (storage));
  g_autofree char *check = read_str (storage, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");
  g_autofree char *sql = g_strdup_printf (
      "SELECT count(*) FROM kill_test WHERE id <= %d", max_acked);
  g_assert_cmpint (read_int (storage, sql), ==, max_acked);
  g_test_message (
      "acknowledged %d of %d writes before SIGKILL; %" G_GINT64_FORMAT
      " committed",
      max_acked, KILL_WRITES,
      read_int (storage, "SELECT count(*) FROM kill_test"));
  tusk_storage_close (storage);
}

static void
test_open_close_cycles (Fixture *f, gconstpointer data)
{
  (void)data;
  const int cycles = 1000;
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < cycles; i++)
    {
      TuskStorage *storage = open_ok (f->root);
      g_assert_false (tusk_storage_was_reset (storage));
      if (i == 0)
        g_assert_true (
            tusk_storage_write_sync (storage, migrate_kv, NULL, NULL, NULL));
      tusk_storage_write_queue (
          storage, exec_func,
          g_strdup_printf ("INSERT INTO kv (k, v) VALUES (%d, 'v')", i),
          g_free);
      if (i % 100 == 0)
        g_assert_cmpint (read_int (storage, "SELECT count(*) FROM kv"), >=, i);
      tusk_storage_close (storage);
    }
  g_test_message ("open + queued write + close: %.2f ms per cycle",
                  (g_get_monotonic_time () - start) / 1000.0 / cycles);

  TuskStorage *storage = open_ok (f->root);
  g_autofree char *check = read_str (storage, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");
  g_assert_cmpint (read_int (storage, "SELECT count(*) FROM kv"), ==, cycles);
  tusk_storage_close (storage);
}

/* A close leaves the WAL beside the file instead of checkpointing it into
 * the file (four syncs and two file creations per run of `tusk`); the next
 * open, and any SQLite client, reads it. */
static void
test_close_keeps_wal (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *wal = g_strconcat (f->db_path, "-wal", NULL);
  TuskStorage *storage = open_ok (f->root);
  write_sql (storage,
             "INSERT INTO ui_state (key, value_json) VALUES ('kept', '1')");
  tusk_storage_close (storage);

  GStatBuf st;
  g_assert_cmpint (g_stat (wal, &st), ==, 0);
  g_assert_cmpint (st.st_size, >, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpuint (count_open_fds (f->db_path), ==, 0);

  /* What the sqlite3 shell or a backup tool opening the file sees. */
  sqlite3 *db = NULL;
  g_assert_cmpint (
      sqlite3_open_v2 (f->db_path, &db, SQLITE_OPEN_READWRITE, NULL), ==,
      SQLITE_OK);
  g_assert_cmpint (
      query_int (db, "SELECT count(*) FROM ui_state WHERE key = 'kept'"), ==,
      1);
  sqlite3_close (db);

  storage = open_ok (f->root);
  g_assert_false (tusk_storage_was_reset (storage));
  g_assert_cmpint (
      read_int (storage, "SELECT count(*) FROM ui_state WHERE key = 'kept'"),
      ==, 1);
  g_autofree char *check = read_str (storage, "PRAGMA quick_check");
  g_assert_cmpstr (check, ==, "ok");
  tusk_storage_close (storage);
}

int
main (int argc, char **argv)
{
  if (argc == 4 && strcmp (argv[1], "--child-open") == 0)
    return child_open (argv[2], argv[3]);
  if (argc == 3 && strcmp (argv[1], "--child-writer") == 0)
    return child_writer (argv[2]);

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func)                                                        \
  g_test_add ("/tusk/storage/" path, Fixture, NULL, fixture_set_up, func,      \
              fixture_tear_down)
  ADD ("open/creates-file", test_open_creates_file);
  ADD ("open/pragmas", test_pragmas);
  ADD ("open/schema", test_schema);
  ADD ("open/threads", test_open_threads);
  ADD ("open/processes", test_open_processes);
  ADD ("open/refuses-changed-step", test_open_refuses_changed_step);
  ADD ("open/close-cycles", test_open_close_cycles);
  ADD ("close/keeps-wal", test_close_keeps_wal);
  ADD ("migrate/recorded", test_migrations_recorded);
  ADD ("migrate/not-rerun", test_migrate_not_rerun);
  ADD ("migrate/changed-step", test_migrate_changed_step);
  ADD ("migrate/multi-statement", test_migrate_multi_statement);
  ADD ("migrate/failed-step", test_migrate_failed_step);
  ADD ("migrate/failed-in-writer", test_migrate_failed_in_writer);
  ADD ("reader/read-only", test_reader_read_only);
  ADD ("reader/threads", test_reader_threads);
  ADD ("reader/two-storages", test_reader_two_storages);
  ADD ("write/sync", test_write_sync);
  ADD ("write/async", test_write_async);
  ADD ("write/queue", test_write_queue);
  ADD ("write/order", test_write_order);
  ADD ("write/threads", test_write_threads);
  ADD ("write/shared-writer", test_shared_writer);
  ADD ("recover/garbage", test_recover_garbage);
  ADD ("recover/truncated", test_recover_truncated);
  ADD ("recover/empty-file", test_recover_empty_file);
  ADD ("recover/directory", test_recover_directory);
  ADD ("recover/unwritable", test_recover_unwritable);
  ADD ("crash/sigkill", test_sigkill);
#undef ADD

  return g_test_run ();
}
