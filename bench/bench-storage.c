/* bench-storage.c: the numbers of the storage issue (issue 3; issue 9 item
 * 9), each with its target through bench-common.h, and beside a plain
 * sqlite3 program where one does the same work: the same SQL text as the
 * repository, on the same file, through a connection of its own with the
 * storage's pragmas, every column of every row read.  The two alternate
 * after a warm-up.
 *
 *   - open the store and load 100 connections (tusk_storage_open() +
 *     tusk_connection_repo_load_all(): pragmas, quick_check, the migration
 *     check, the writer thread) vs sqlite3_open_v2() + the same SELECT:
 *     < 50 ms;
 *   - single CRUD operations, 7 kinds x CRUD_ROUNDS (save, load and touch a
 *     connection, create and delete a saved query, set a ui_state key,
 *     delete the connection) vs the same statement in autocommit: the
 *     slowest < 10 ms;
 *   - adding a history entry, the caller's cost (it is queued to the writer)
 *     vs the caller running the INSERT itself (one autocommit INSERT, a
 *     statement prepared once): < 50 µs, per round of ADD_ROUNDS and for
 *     the 99th percentile of every add;
 *   - load 10,000 of 100,000 history entries (newest first) and search all
 *     100,000 for a rare substring: < 50 ms each, on a reader whose page
 *     cache is warm; and the search as the first of a session, on a new
 *     thread whose read connection starts with an empty page cache (the
 *     baseline opens a new connection): < 50 ms too;
 *   - the file size with 50,000 history entries, 500 saved queries and 100
 *     connections: < 50 MiB.  No baseline.
 *
 * The history that the loads read is written in one transaction on the
 * storage's writer (the repository's INSERT text, executed_at spread over
 * the past weeks), not through 100,000 queued adds: the adds are what the
 * third figure measures, and 100,000 single-row commits would take most of
 * this benchmark's time budget.
 *
 * Runs in a temporary data directory, removed at the end.  Needs no
 * service.  Exit status 1 when a figure misses its target. */
#define G_LOG_DOMAIN "tusk-bench"

#include "bench-common.h"
#include "tusk.h"
#include "tusk-storage-private.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#define OPEN_REPS    20
#define CRUD_ROUNDS  200
#define CRUD_KINDS   7
#define ADD_ROUNDS   20
#define ADDS         500
#define HISTORY      100000
#define HISTORY_LOAD 10000
#define SEARCH_TEXT  "BALANCE - 424"
#define READ_REPS    10
#define COLD_REPS    6
#define SIZE_HISTORY 50000

/* The repositories' SQL, copied: the baseline runs the same text. */
#define SELECT_CONNECTION                                                      \
  "SELECT c.connection_id, c.name, c.host, c.port, c.database, c.username, "   \
  "c.ssl_mode, c.ssl_root_cert, c.ssl_cert, c.ssl_key, c.color, "              \
  "c.read_only, c.connect_timeout_secs, c.statement_timeout_secs, "            \
  "c.application_name, c.last_connected_at, t.tunnel_id, t.name, t.host, "     \
  "t.port, t.username, t.auth_method, t.key_path "                             \
  "FROM connections c LEFT JOIN ssh_tunnels t ON t.tunnel_id = "               \
  "c.ssh_tunnel_id "
#define LOAD_ALL_CONNECTIONS                                                   \
  SELECT_CONNECTION "ORDER BY c.last_connected_at IS NULL, "                   \
                    "c.last_connected_at DESC, c.name COLLATE NOCASE, "        \
                    "c.connection_id"
#define SELECT_ENTRY                                                           \
  "SELECT history_id, connection_id, sql_text, execution_time_ms, "            \
  "row_count, error_message, executed_at FROM query_history "
#define LIST_HISTORY                                                           \
  SELECT_ENTRY "WHERE ?1 IS NULL ORDER BY executed_at DESC, history_id DESC "  \
               "LIMIT ?2 OFFSET ?3"
#define SEARCH_HISTORY                                                         \
  SELECT_ENTRY                                                                 \
  "WHERE ?1 IS NULL AND sql_text LIKE ?4 ESCAPE '\\' "                         \
  "ORDER BY +executed_at DESC, history_id DESC LIMIT ?2 OFFSET ?3"
#define ADD_HISTORY                                                            \
  "INSERT INTO query_history (connection_id, sql_text, "                       \
  "execution_time_ms, row_count, error_message, executed_at) "                 \
  "SELECT ?1, ?2, ?3, ?4, ?5, coalesce(?6, CURRENT_TIMESTAMP) "                \
  "WHERE EXISTS (SELECT 1 FROM connections WHERE connection_id = ?1)"

static const char *const crud_names[CRUD_KINDS]
    = { "save connection",  "load connection", "touch",
        "create query",     "delete query",    "set ui_state",
        "delete connection" };

/* ---- the plain sqlite3 side -------------------------------------------- */

static sqlite3 *
raw_open (const char *path, gboolean read_only)
{
  sqlite3 *db = NULL;
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (sqlite3_open_v2 (path, &db, flags, NULL) != SQLITE_OK
      || sqlite3_exec (db,
                       "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = "
                       "5000; PRAGMA cache_size = -64000; PRAGMA foreign_keys "
                       "= ON; PRAGMA temp_store = MEMORY;",
                       NULL, NULL, NULL)
             != SQLITE_OK)
    g_error ("sqlite3: %s: %s", path, sqlite3_errmsg (db));
  return db;
}

/* Reads every column of the current row; returns what it read, so that the
 * work is not optimised away. */
static gsize
raw_read_row (sqlite3_stmt *stmt)
{
  gsize sum = 0;
  int n = sqlite3_column_count (stmt);
  for (int i = 0; i < n; i++)
    if (sqlite3_column_type (stmt, i) == SQLITE_INTEGER)
      sum += (gsize)sqlite3_column_int64 (stmt, i);
    else if (sqlite3_column_text (stmt, i) != NULL)
      sum += (gsize)sqlite3_column_bytes (stmt, i);
  return sum;
}

static sqlite3_stmt *
raw_prepare (sqlite3 *db, const char *sql)
{
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK)
    g_error ("sqlite3: %s: %s", sql, sqlite3_errmsg (db));
  return stmt;
}

/* Steps @stmt to the end reading every row, finalizes it; returns the
 * number of rows. */
static int
raw_finish (sqlite3 *db, sqlite3_stmt *stmt)
{
  int rows = 0, rc;
  gsize sum = 0;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      sum += raw_read_row (stmt);
      rows++;
    }
  if (rc != SQLITE_DONE)
    g_error ("sqlite3: %s: %s", sqlite3_sql (stmt), sqlite3_errmsg (db));
  sqlite3_finalize (stmt);
  g_assert (rows == 0 || sum > 0);
  return rows;
}

/* Prepares @sql, binds @n text parameters (NULL binds SQL NULL) and runs it
 * as raw_finish() does. */
static int
raw_run (sqlite3 *db, const char *sql, int n, const char *const *params)
{
  sqlite3_stmt *stmt = raw_prepare (db, sql);
  for (int i = 0; i < n; i++)
    if (params[i] != NULL)
      sqlite3_bind_text (stmt, i + 1, params[i], -1, SQLITE_STATIC);
  return raw_finish (db, stmt);
}

/* ---- the Tusk side and shared helpers ---------------------------------- */

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_remove (child);
    }
  g_rmdir (path);
}

static TuskStorage *
open_or_die (const char *dir)
{
  g_autoptr (GError) error = NULL;
  TuskStorage *storage = tusk_storage_open (dir, &error);
  if (storage == NULL)
    g_error ("open: %s", error->message);
  return storage;
}

static char *
make_dir (const char *root, const char *name)
{
  char *dir = g_build_filename (root, name, NULL);
  g_mkdir (dir, 0700);
  return dir;
}

static TuskConnectionConfig *
make_connection (int i)
{
  TuskConnectionConfig *config = tusk_connection_config_new ();
  config->name = g_strdup_printf ("Connection %03d", i);
  config->host = g_strdup_printf ("db%03d.internal.example.com", i);
  config->database = g_strdup ("app");
  config->username = g_strdup ("app_reader");
  config->color = g_strdup ("#3b82f6");
  return config;
}

static void
save_connections (TuskStorage *storage, int n, GPtrArray *ids)
{
  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskConnectionConfig) config = make_connection (i);
      if (!tusk_connection_repo_save (storage, config, &error))
        g_error ("save: %s", error->message);
      if (ids != NULL)
        g_ptr_array_add (ids, g_strdup (config->id));
    }
}

/* A plausible statement of 60-400 bytes. */
static char *
make_sql (GRand *rand, int i)
{
  static const char *const templates[] = {
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = "
    "o.customer_id WHERE o.created_at > now() - interval '%d days' ORDER BY "
    "o.total DESC LIMIT 50",
    "UPDATE accounts SET balance = balance - %d WHERE id = 42",
    "SELECT count(*) FROM events WHERE kind = 'click' AND user_id = %d",
    "INSERT INTO audit_log (actor, action, payload) VALUES ('bench', "
    "'update', '{\"n\": %d, \"note\": \"a longer payload to vary the row "
    "size a little, as real statements do\"}')",
    "WITH recent AS (SELECT * FROM sessions WHERE started_at > now() - "
    "interval '1 hour') SELECT user_id, count(*) FROM recent GROUP BY 1 "
    "HAVING count(*) > %d",
  };
  const char *t
      = templates[g_rand_int_range (rand, 0, G_N_ELEMENTS (templates))];
  return g_strdup_printf (t, i);
}

typedef struct
{
  GPtrArray *connection_ids;
  int n;
  GRand *rand;
} Fill;

/* Writes @fill->n history entries in one transaction on the writer, the
 * newest a minute ago, one every 30 s before it. */
static gboolean
fill_in_writer (sqlite3 *db, gpointer data, GError **error)
{
  Fill *fill = data;
  gint64 newest = g_get_real_time () / G_USEC_PER_SEC - 60;

  (void)error;
  sqlite3_stmt *stmt = raw_prepare (db, ADD_HISTORY);
  for (int i = 0; i < fill->n; i++)
    {
      g_autofree char *sql = make_sql (fill->rand, i);
      g_autoptr (GDateTime) when
          = g_date_time_new_from_unix_utc (newest - 30 * (fill->n - i));
      g_autofree char *stamp = g_date_time_format (when, "%Y-%m-%d %H:%M:%S");
      sqlite3_bind_text (
          stmt, 1, fill->connection_ids->pdata[i % fill->connection_ids->len],
          -1, SQLITE_STATIC);
      sqlite3_bind_text (stmt, 2, sql, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 3, g_rand_int_range (fill->rand, 0, 5000));
      sqlite3_bind_int64 (stmt, 4, g_rand_int_range (fill->rand, 0, 100000));
      sqlite3_bind_null (stmt, 5);
      sqlite3_bind_text (stmt, 6, stamp, -1, SQLITE_STATIC);
      if (sqlite3_step (stmt) != SQLITE_DONE)
        g_error ("fill: %s", sqlite3_errmsg (db));
      sqlite3_reset (stmt);
    }
  sqlite3_finalize (stmt);
  return TRUE;
}

static void
fill_history (TuskStorage *storage, GPtrArray *ids, int n, GRand *rand)
{
  g_autoptr (GError) error = NULL;
  Fill fill = { ids, n, rand };
  if (!tusk_storage_write_sync (storage, fill_in_writer, &fill, NULL, &error))
    g_error ("fill: %s", error->message);
}

static double
p99 (const double *values, int n)
{
  g_autofree double *sorted = g_memdup2 (values, n * sizeof values[0]);
  qsort (sorted, n, sizeof sorted[0], bench_compare_double);
  return sorted[n * 99 / 100];
}

static BenchStat
single (double value)
{
  return (BenchStat){ value, value, value };
}

/* ---- open + load ------------------------------------------------------- */

static double
tusk_open_load (const char *dir)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  TuskStorage *storage = open_or_die (dir);
  g_autoptr (GPtrArray) all = tusk_connection_repo_load_all (storage, &error);
  double ms = bench_ms_since (start);
  if (all == NULL || all->len != 100)
    g_error ("load_all: %s", error ? error->message : "not 100 connections");
  tusk_storage_close (storage);
  return ms;
}

static double
raw_open_load (const char *path)
{
  gint64 start = g_get_monotonic_time ();
  sqlite3 *db = raw_open (path, TRUE);
  int rows = raw_run (db, LOAD_ALL_CONNECTIONS, 0, NULL);
  double ms = bench_ms_since (start);
  g_assert (rows == 100);
  sqlite3_close (db);
  return ms;
}

/* Opens the store in @dir (its file @path) and loads its 100 connections,
 * through Tusk and through sqlite3 alternately, OPEN_REPS times a side after
 * a warm-up each, and reports @figure. */
static void
report_open_load (const char *dir, const char *path, const char *figure,
                  BenchTarget kind, double target)
{
  double ours[OPEN_REPS], base[OPEN_REPS];
  tusk_open_load (dir);
  raw_open_load (path);
  for (int i = 0; i < OPEN_REPS; i++)
    {
      if (i % 2 == 0)
        base[i] = raw_open_load (path);
      ours[i] = tusk_open_load (dir);
      if (i % 2 == 1)
        base[i] = raw_open_load (path);
    }
  bench_report ("storage", figure, "ms", bench_stat (ours, OPEN_REPS),
                "sqlite3", bench_stat (base, OPEN_REPS), kind, target);
}

static void
bench_open_and_load (const char *root)
{
  g_autofree char *dir = make_dir (root, "connections");
  TuskStorage *storage = open_or_die (dir);
  save_connections (storage, 100, NULL);
  g_autofree char *path = g_strdup (tusk_storage_get_path (storage));
  tusk_storage_close (storage);

  printf ("open the store + load 100 connections, %d times a side\n",
          OPEN_REPS);
  report_open_load (dir, path, "open + load 100 connections", BENCH_BELOW, 50);
}

/* ---- CRUD -------------------------------------------------------------- */

/* One round of the 7 operations through the repositories; @t gets ms. */
static void
tusk_crud (TuskStorage *storage, int i, double *t)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) config = make_connection (1000 + i);
  g_autoptr (TuskSavedQuery) query = tusk_saved_query_new ("q", "SELECT 1");
  query->folder_path = g_strdup ("bench/crud");
  g_autofree char *key = g_strdup_printf ("bench.%d", i);
  TuskConnectionConfig *loaded = NULL;
  gint64 start;

#define TIME(slot, expr)                                                       \
  start = g_get_monotonic_time ();                                             \
  if (!(expr))                                                                 \
    g_error ("%s: %s", #expr, error ? error->message : "failed");              \
  t[slot] = bench_ms_since (start)

  TIME (0, tusk_connection_repo_save (storage, config, &error));
  TIME (1, (loaded = tusk_connection_repo_load (storage, config->id, &error)));
  tusk_connection_config_free (loaded);
  TIME (2, tusk_connection_repo_touch (storage, config->id, &error));
  TIME (3, tusk_saved_query_repo_create (storage, query, &error));
  TIME (4, tusk_saved_query_repo_delete (storage, query->id, &error));
  TIME (5, tusk_ui_state_repo_set (storage, key, "{\"open\":true}", &error));
  TIME (6, tusk_connection_repo_delete (storage, config->id, &error));
#undef TIME
}

/* The same 7 operations as single statements on a connection of its own. */
static void
raw_crud (sqlite3 *db, int i, double *t)
{
  g_autofree char *id = g_uuid_string_random ();
  g_autofree char *query_id = g_uuid_string_random ();
  g_autofree char *name = g_strdup_printf ("Raw connection %03d", i);
  g_autofree char *host = g_strdup_printf ("db%03d.internal.example.com", i);
  g_autofree char *key = g_strdup_printf ("raw.%d", i);
  const char *save[] = { id, name, host };
  const char *by_id[] = { id };
  const char *by_query[] = { query_id };
  const char *ui[] = { key, "{\"open\":true}" };
  static const char *const sql[CRUD_KINDS] = {
    "INSERT INTO connections (connection_id, name, host, port, database, "
    "username, ssl_mode, color) VALUES (?1, ?2, ?3, 5432, 'app', "
    "'app_reader', 'prefer', '#3b82f6')",
    SELECT_CONNECTION "WHERE c.connection_id = ?1",
    "UPDATE connections SET last_connected_at = CURRENT_TIMESTAMP WHERE "
    "connection_id = ?1",
    "INSERT INTO saved_queries (query_id, connection_id, name, description, "
    "sql_text, folder_path) VALUES (?1, NULL, 'q', NULL, 'SELECT 1', "
    "'bench/crud')",
    "DELETE FROM saved_queries WHERE query_id = ?1",
    "INSERT INTO ui_state (key, value_json) VALUES (?1, ?2) ON CONFLICT "
    "(key) DO UPDATE SET value_json = excluded.value_json, updated_at = "
    "CURRENT_TIMESTAMP",
    "DELETE FROM connections WHERE connection_id = ?1",
  };
  const char *const *params[CRUD_KINDS]
      = { save, by_id, by_id, by_query, by_query, ui, by_id };
  const int n_params[CRUD_KINDS] = { 3, 1, 1, 1, 1, 2, 1 };

  for (int k = 0; k < CRUD_KINDS; k++)
    {
      gint64 start = g_get_monotonic_time ();
      raw_run (db, sql[k], n_params[k], params[k]);
      t[k] = bench_ms_since (start);
    }
}

static void
bench_crud (const char *root)
{
  g_autofree char *dir = make_dir (root, "crud");
  TuskStorage *storage = open_or_die (dir);
  save_connections (storage, 100, NULL);
  sqlite3 *db = raw_open (tusk_storage_get_path (storage), FALSE);

  static double ours[CRUD_ROUNDS * CRUD_KINDS], base[CRUD_ROUNDS * CRUD_KINDS];
  double kind_ours[CRUD_KINDS][CRUD_ROUNDS], kind_base[CRUD_KINDS][CRUD_ROUNDS];
  double t[CRUD_KINDS];
  tusk_crud (storage, -1, t);
  raw_crud (db, -1, t);
  for (int i = 0; i < CRUD_ROUNDS; i++)
    {
      if (i % 2 == 0)
        raw_crud (db, i, &base[i * CRUD_KINDS]);
      tusk_crud (storage, i, &ours[i * CRUD_KINDS]);
      if (i % 2 == 1)
        raw_crud (db, i, &base[i * CRUD_KINDS]);
      for (int k = 0; k < CRUD_KINDS; k++)
        {
          kind_ours[k][i] = ours[i * CRUD_KINDS + k];
          kind_base[k][i] = base[i * CRUD_KINDS + k];
        }
    }
  sqlite3_close (db);
  tusk_storage_close (storage);

  int n = CRUD_ROUNDS * CRUD_KINDS;
  printf ("single CRUD operations, %d rounds of %d kinds a side\n", CRUD_ROUNDS,
          CRUD_KINDS);
  for (int k = 0; k < CRUD_KINDS; k++)
    {
      BenchStat o = bench_stat (kind_ours[k], CRUD_ROUNDS);
      BenchStat b = bench_stat (kind_base[k], CRUD_ROUNDS);
      printf ("    %-18s tusk %.3f [%.3f-%.3f] ms, sqlite3 %.3f [%.3f-%.3f]\n",
              crud_names[k], o.median, o.min, o.max, b.median, b.min, b.max);
    }
  BenchStat o = bench_stat (ours, n), b = bench_stat (base, n);
  g_autofree char *slowest
      = g_strdup_printf ("CRUD, slowest of %d", CRUD_ROUNDS * CRUD_KINDS);
  bench_report ("storage", "CRUD, an operation", "ms", o, "sqlite3", b,
                BENCH_NO_TARGET, 0);
  bench_report ("storage", "CRUD, 99th percentile", "ms",
                single (p99 (ours, n)), "sqlite3", single (p99 (base, n)),
                BENCH_NO_TARGET, 0);
  bench_report ("storage", slowest, "ms", single (o.max), "sqlite3",
                single (b.max), BENCH_BELOW, 10);
}

/* ---- history ----------------------------------------------------------- */

/* @n adds through the queue, each timed (µs); then waits for the writer. */
static double
tusk_adds (TuskStorage *storage, GPtrArray *ids, const char *sql, double *us,
           double *drain_ms)
{
  double total = 0;
  for (int i = 0; i < ADDS; i++)
    {
      g_autoptr (TuskHistoryEntry) entry
          = tusk_history_entry_new (ids->pdata[i % ids->len], sql);
      entry->execution_time_ms = 12;
      entry->row_count = 1;
      gint64 start = g_get_monotonic_time ();
      if (!tusk_history_repo_add (storage, entry, NULL))
        g_error ("history add refused");
      us[i] = (double)(g_get_monotonic_time () - start);
      total += us[i];
    }
  gint64 start = g_get_monotonic_time ();
  tusk_storage_flush (storage);
  *drain_ms = bench_ms_since (start);
  return total / ADDS;
}

/* @n autocommit INSERTs by the caller, a statement prepared once. */
static double
raw_adds (sqlite3_stmt *insert, GPtrArray *ids, const char *sql, double *us)
{
  double total = 0;
  for (int i = 0; i < ADDS; i++)
    {
      gint64 start = g_get_monotonic_time ();
      sqlite3_bind_text (insert, 1, ids->pdata[i % ids->len], -1,
                         SQLITE_STATIC);
      sqlite3_bind_text (insert, 2, sql, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (insert, 3, 12);
      sqlite3_bind_int64 (insert, 4, 1);
      int rc = sqlite3_step (insert);
      sqlite3_reset (insert);
      us[i] = (double)(g_get_monotonic_time () - start);
      if (rc != SQLITE_DONE)
        g_error ("insert: %s", sqlite3_errstr (rc));
      total += us[i];
    }
  return total / ADDS;
}

static double
tusk_list (TuskStorage *storage)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  g_autoptr (GPtrArray) page
      = tusk_history_repo_list (storage, NULL, HISTORY_LOAD, 0, &error);
  double ms = bench_ms_since (start);
  if (page == NULL || page->len != HISTORY_LOAD)
    g_error ("list: %s", error ? error->message : "short");
  return ms;
}

static double
raw_list (sqlite3 *db)
{
  gint64 start = g_get_monotonic_time ();
  sqlite3_stmt *stmt = raw_prepare (db, LIST_HISTORY);
  sqlite3_bind_int (stmt, 2, HISTORY_LOAD);
  sqlite3_bind_int (stmt, 3, 0);
  int rows = raw_finish (db, stmt);
  double ms = bench_ms_since (start);
  g_assert (rows == HISTORY_LOAD);
  return ms;
}

static double
tusk_search (TuskStorage *storage, guint *found)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  g_autoptr (GPtrArray) hits
      = tusk_history_repo_search (storage, SEARCH_TEXT, NULL, 100, 0, &error);
  double ms = bench_ms_since (start);
  if (hits == NULL)
    g_error ("search: %s", error->message);
  *found = hits->len;
  return ms;
}

static double
raw_search (sqlite3 *db, guint *found)
{
  gint64 start = g_get_monotonic_time ();
  sqlite3_stmt *stmt = raw_prepare (db, SEARCH_HISTORY);
  sqlite3_bind_int (stmt, 2, 100);
  sqlite3_bind_int (stmt, 3, 0);
  sqlite3_bind_text (stmt, 4, "%" SEARCH_TEXT "%", -1, SQLITE_STATIC);
  *found = raw_finish (db, stmt);
  return bench_ms_since (start);
}

typedef struct
{
  TuskStorage *storage;
  const char *path;
  double ms;
  guint found;
} ColdSearch;

/* A thread's first search, as the first of a session: the thread's read
 * connection opens with an empty page cache (the OS's is warm). */
static gpointer
tusk_cold_search_thread (gpointer data)
{
  ColdSearch *cold = data;
  cold->ms = tusk_search (cold->storage, &cold->found);
  return NULL;
}

static double
tusk_cold_search (TuskStorage *storage)
{
  ColdSearch cold = { storage, NULL, 0, 0 };
  g_thread_join (g_thread_new ("bench-search", tusk_cold_search_thread, &cold));
  return cold.ms;
}

static double
raw_cold_search (const char *path)
{
  guint found = 0;
  gint64 start = g_get_monotonic_time ();
  sqlite3 *db = raw_open (path, TRUE);
  raw_search (db, &found);
  double ms = bench_ms_since (start);
  sqlite3_close (db);
  return ms;
}

static void
bench_history (const char *root, GRand *rand)
{
  g_autofree char *dir = make_dir (root, "history");
  TuskStorage *storage = open_or_die (dir);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  save_connections (storage, 10, ids);
  if (!tusk_history_repo_set_limit (storage, 0, &error))
    g_error ("set_limit: %s", error->message);
  sqlite3 *writer = raw_open (tusk_storage_get_path (storage), FALSE);
  sqlite3_stmt *insert = raw_prepare (writer, ADD_HISTORY);

  /* The caller's cost of an add: the queue, not the write.  The writer
   * drains each round before the baseline's round starts. */
  g_autofree char *sql = make_sql (rand, 1);
  static double ours[ADD_ROUNDS * ADDS], base[ADD_ROUNDS * ADDS];
  double ours_mean[ADD_ROUNDS], base_mean[ADD_ROUNDS], drain[ADD_ROUNDS];
  tusk_adds (storage, ids, sql, ours, &drain[0]);
  raw_adds (insert, ids, sql, base);
  for (int r = 0; r < ADD_ROUNDS; r++)
    {
      if (r % 2 == 0)
        base_mean[r] = raw_adds (insert, ids, sql, &base[r * ADDS]);
      ours_mean[r] = tusk_adds (storage, ids, sql, &ours[r * ADDS], &drain[r]);
      if (r % 2 == 1)
        base_mean[r] = raw_adds (insert, ids, sql, &base[r * ADDS]);
    }
  sqlite3_finalize (insert);
  sqlite3_close (writer);
  int n = ADD_ROUNDS * ADDS;
  printf ("history add, %d rounds of %d a side; baseline: the caller runs "
          "the INSERT itself\n",
          ADD_ROUNDS, ADDS);
  bench_report ("storage", "history add, caller (mean)", "us",
                bench_stat (ours_mean, ADD_ROUNDS), "sqlite3",
                bench_stat (base_mean, ADD_ROUNDS), BENCH_BELOW, 50);
  bench_report ("storage", "history add, caller p99", "us",
                single (p99 (ours, n)), "sqlite3", single (p99 (base, n)),
                BENCH_BELOW, 50);
  BenchStat d = bench_stat (drain, ADD_ROUNDS);
  printf ("  (the writer finished each round %.1f [%.1f-%.1f] ms after its "
          "last add)\n",
          d.median, d.min, d.max);

  /* Older history up to HISTORY entries, then the reads. */
  gint64 have = tusk_history_repo_count (storage, NULL, NULL);
  gint64 start = g_get_monotonic_time ();
  fill_history (storage, ids, HISTORY - (int)have, rand);
  printf ("  (%d older entries written in one transaction in %.0f ms)\n",
          HISTORY - (int)have, bench_ms_since (start));
  g_assert (tusk_history_repo_count (storage, NULL, NULL) == HISTORY);

  sqlite3 *reader = raw_open (tusk_storage_get_path (storage), TRUE);
  double list_ours[READ_REPS], list_base[READ_REPS];
  double search_ours[READ_REPS], search_base[READ_REPS];
  guint found_ours = 0, found_base = 0;
  tusk_list (storage);
  raw_list (reader);
  tusk_search (storage, &found_ours);
  raw_search (reader, &found_base);
  for (int i = 0; i < READ_REPS; i++)
    {
      if (i % 2 == 0)
        {
          list_base[i] = raw_list (reader);
          search_base[i] = raw_search (reader, &found_base);
        }
      list_ours[i] = tusk_list (storage);
      search_ours[i] = tusk_search (storage, &found_ours);
      if (i % 2 == 1)
        {
          list_base[i] = raw_list (reader);
          search_base[i] = raw_search (reader, &found_base);
        }
    }
  g_assert (found_ours == found_base && found_ours > 0);
  sqlite3_close (reader);
  double cold_ours[COLD_REPS], cold_base[COLD_REPS];
  for (int i = 0; i < COLD_REPS; i++)
    {
      if (i % 2 == 0)
        cold_base[i] = raw_cold_search (tusk_storage_get_path (storage));
      cold_ours[i] = tusk_cold_search (storage);
      if (i % 2 == 1)
        cold_base[i] = raw_cold_search (tusk_storage_get_path (storage));
    }
  tusk_storage_close (storage);

  printf ("history reads, %d times a side: the newest %d of %d, and a "
          "search of all for \"%s\" (%u matches)\n",
          READ_REPS, HISTORY_LOAD, HISTORY, SEARCH_TEXT, found_ours);
  bench_report ("storage", "load 10,000 history entries", "ms",
                bench_stat (list_ours, READ_REPS), "sqlite3",
                bench_stat (list_base, READ_REPS), BENCH_BELOW, 50);
  bench_report ("storage", "search 100,000 history entries", "ms",
                bench_stat (search_ours, READ_REPS), "sqlite3",
                bench_stat (search_base, READ_REPS), BENCH_BELOW, 50);
  bench_report ("storage", "search, first of a session", "ms",
                bench_stat (cold_ours, COLD_REPS), "sqlite3",
                bench_stat (cold_base, COLD_REPS), BENCH_BELOW, 50);
}

/* ---- size -------------------------------------------------------------- */

static gint64
file_size (const char *path)
{
  GStatBuf st;
  return g_stat (path, &st) == 0 ? (gint64)st.st_size : 0;
}

static void
bench_size (const char *root, GRand *rand)
{
  g_autofree char *dir = make_dir (root, "size");
  TuskStorage *storage = open_or_die (dir);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  save_connections (storage, 100, ids);
  if (!tusk_history_repo_set_limit (storage, 0, &error))
    g_error ("set_limit: %s", error->message);
  fill_history (storage, ids, SIZE_HISTORY, rand);
  for (int i = 0; i < 500; i++)
    {
      g_autofree char *name = g_strdup_printf ("Saved query %d", i);
      g_autofree char *sql = make_sql (rand, i);
      g_autoptr (TuskSavedQuery) query = tusk_saved_query_new (name, sql);
      query->connection_id = g_strdup (ids->pdata[i % ids->len]);
      query->folder_path = g_strdup_printf ("team/%d", i % 10);
      query->description = g_strdup ("What this query is for, in a sentence.");
      if (!tusk_saved_query_repo_create (storage, query, &error))
        g_error ("create: %s", error->message);
    }
  g_autofree char *path = g_strdup (tusk_storage_get_path (storage));
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  double open_mib
      = (file_size (path) + file_size (wal) + file_size (shm)) / 1048576.0;
  tusk_storage_close (storage);
  /* A close keeps the WAL (and its index) beside the file: they count. */
  printf ("database file with its -wal and -shm, closed\n");
  bench_check ("storage", "size: 50,000 history + 500 queries + 100 conn",
               (file_size (path) + file_size (wal) + file_size (shm))
                   / 1048576.0,
               "MiB", 50);
  bench_note ("  while open, with -wal and -shm", open_mib, "MiB");

  /* Opening that store (what a saved connection's start-up pays): Tusk
   * runs PRAGMA quick_check on every open, which reads the whole file. */
  printf ("open that store + load its 100 connections, %d times a side\n",
          OPEN_REPS);
  report_open_load (dir, path, "open + load, the 50,000-entry store",
                    BENCH_NO_TARGET, 0);
}

int
main (void)
{
  g_autofree char *root = g_dir_make_tmp ("tusk-bench-storage-XXXXXX", NULL);
  g_autoptr (GRand) rand = g_rand_new_with_seed (42);

  setvbuf (stdout, NULL, _IOLBF, 0);
  tusk_log_set_filter ("warn", NULL);
  bench_open_and_load (root);
  bench_crud (root);
  bench_history (root, rand);
  bench_size (root, rand);
  remove_tree (root);
  return bench_exit_status ();
}
