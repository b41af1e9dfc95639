/* tusk-storage.c: the SQLite core of LocalStorage: opening with recovery,
 * pragmas, domain migrations, thread-local readers and one writer thread.
 *
 * Design note
 * ===========
 *
 * Objects.  A TuskStorage is what tusk_storage_open() returns.  A Writer is
 * one thread, one read-write connection and one FIFO of jobs; every storage
 * on the same database file in this process shares one Writer, found in a
 * process-wide registry keyed by the file's canonical path and refcounted
 * (an in-memory Writer is private to its storage and not registered).  A
 * Reader is one read-only connection of one thread for one storage; each
 * thread keeps its Readers in a GPrivate table keyed by the storage's
 * process-unique id (not its address, which malloc may reuse), and each
 * storage keeps a list of its Readers so that closing it closes those of
 * every thread.
 *
 * States of a storage and who moves it:
 *
 *   (none) --tusk_storage_open()--> OPEN_FILE | OPEN_MEMORY --close()--> freed
 *
 * tusk_storage_open() reaches OPEN_FILE through open_file() on the file as
 * it is; when that reports FILE_DAMAGED (not a database, truncated, fails
 * quick_check, or not a regular file) move_aside() renames it with its -wal
 * and -shm to tusk.db.corrupt-YYYYMMDD-HHMMSS[-N] and open_file() runs once
 * more on a fresh file; when either attempt reports FILE_UNUSABLE (cannot
 * create, I/O error, locked past the busy timeout) open_memory() gives
 * OPEN_MEMORY.  Both detours set was_reset and a message.  FILE_REFUSED (an
 * applied migration step differs) fails the open with the file untouched:
 * it is neither moved nor replaced by memory.
 *
 * Writer states: RUNNING (from writer_new()) --writer_unref() of the last
 * reference pushes JOB_STOP--> STOPPED (the thread closes its connection and
 * returns; writer_unref() joins it and frees the Writer).
 *
 * Invariants (g_assert checks 1 and 4, and that no job starts inside a
 * transaction):
 *  1. writer->refcount is the number of storages holding the Writer; a file
 *     Writer is in the registry exactly while refcount > 0, and there is at
 *     most one per canonical path.
 *  2. After writer_new(), only the writer thread touches writer->db.
 *  3. Jobs run one at a time in push order; a JOB_FLUSH completes only after
 *     every job pushed before it.  Each job's data is destroyed exactly once,
 *     on the writer thread.
 *  4. A Reader is in its storage's list while its storage is open; its
 *     connection is closed exactly once, by whichever comes first: the
 *     thread's exit (or its table dropping the entry) or the storage's
 *     close.  It is freed when both have let go (reader->owners == 0).
 *  5. open_file() runs only while no connection of this process has the
 *     file open (registry_lock is held and no Writer exists for the path):
 *     it open(2)s and close(2)s the file to set its mode, and close(2)
 *     drops every POSIX lock the process holds on it.
 *
 * Locks.  registry_lock protects the registry and every writer->refcount;
 * it is held across a whole open (recovery and migration included), so
 * opens in one process run one at a time: simple, and an open is a few
 * milliseconds.  readers_lock protects every storage's readers list and
 * closed flag and every Reader's db and storage fields.  Never take
 * registry_lock while holding readers_lock.  Both, and each Waiter's, are
 * pthread locks rather than GMutex/GCond, whose futexes in uninstrumented
 * GLib ThreadSanitizer cannot see; the job queue (a GAsyncQueue) and the
 * GTask of a _async write announce their hand-overs instead
 * (tusk_tsan_release/acquire, tusk-runtime-private.h).
 *
 * Why in-memory mode uses the memdb VFS ("file:/tusk-mem-<uuid>?vfs=memdb")
 * rather than a shared-cache ":memory:" URI: both let several connections
 * of the process see one database, but shared cache reports table-lock
 * conflicts as SQLITE_LOCKED, which the busy timeout does not wait on, so a
 * reader would fail while the writer is inside a transaction.  memdb locks
 * like a file (SQLITE_BUSY), so the busy timeout applies and the
 * reader/writer split works unchanged.
 */
#define G_LOG_DOMAIN "tusk-storage"

#include "tusk-storage-private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "tusk-error-private.h"
#include "tusk-log.h"
#include "tusk-runtime-private.h"

#define BUSY_TIMEOUT_MS 5000

/* The pragmas every connection gets (research §3); journal_mode = WAL is
 * set once, on the file, by open_file().  mmap_size: with the research's
 * 64 MB page cache a connection's first full scan copied every page into
 * freshly faulted cache memory (~110 ms for 100,000 history entries on a
 * new connection, ~25 ms mapped; bench-storage's "search, first of a
 * session").  journal_size_limit: the WAL outlives a close (see
 * configure()), so when a checkpoint lets it start over SQLite cuts it back
 * to 4 MiB rather than keep the size of the largest transaction ever
 * written. */
static const char per_connection_pragmas[] = "PRAGMA synchronous = NORMAL;"
                                             "PRAGMA busy_timeout = 5000;"
                                             "PRAGMA cache_size = -64000;"
                                             "PRAGMA mmap_size = 268435456;"
                                             "PRAGMA foreign_keys = ON;"
                                             "PRAGMA temp_store = MEMORY;"
                                             "PRAGMA journal_size_limit = "
                                             "4194304;";

/* The seed's definition of the migrations table, created before any step. */
static const char migrations_table[]
    = "CREATE TABLE IF NOT EXISTS migrations (\n"
      "    domain TEXT NOT NULL,\n"
      "    step INTEGER NOT NULL,\n"
      "    migration TEXT NOT NULL,\n"
      "    PRIMARY KEY(domain, step)\n"
      ") STRICT;";

/* Domain "tusk".  Step 0 is the seed's schema verbatim, less the migrations
 * table (created above).  Never edit an applied step: append a new one. */
static const char *const tusk_steps[] = {
  "-- Saved Connections (credentials in OS keychain, NOT here)\n"
  "CREATE TABLE connections (\n"
  "    connection_id TEXT PRIMARY KEY,\n"
  "    name TEXT NOT NULL,\n"
  "    host TEXT NOT NULL,\n"
  "    port INTEGER NOT NULL DEFAULT 5432,\n"
  "    database TEXT NOT NULL,\n"
  "    username TEXT NOT NULL,\n"
  "    ssl_mode TEXT NOT NULL DEFAULT 'prefer',\n"
  "    ssh_tunnel_id TEXT,\n"
  "    color TEXT,\n"
  "    read_only INTEGER NOT NULL DEFAULT 0,\n"
  "    connect_timeout_secs INTEGER NOT NULL DEFAULT 10,\n"
  "    statement_timeout_secs INTEGER,\n"
  "    application_name TEXT NOT NULL DEFAULT 'Tusk',\n"
  "    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
  "    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
  "    last_connected_at TEXT,\n"
  "    FOREIGN KEY(ssh_tunnel_id) REFERENCES ssh_tunnels(tunnel_id) ON "
  "DELETE SET NULL\n"
  ") STRICT;\n"
  "\n"
  "-- SSH Tunnel Configurations\n"
  "CREATE TABLE ssh_tunnels (\n"
  "    tunnel_id TEXT PRIMARY KEY,\n"
  "    name TEXT NOT NULL,\n"
  "    host TEXT NOT NULL,\n"
  "    port INTEGER NOT NULL DEFAULT 22,\n"
  "    username TEXT NOT NULL,\n"
  "    auth_method TEXT NOT NULL,\n"
  "    key_path TEXT,\n"
  "    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP\n"
  ") STRICT;\n"
  "\n"
  "-- Query History\n"
  "CREATE TABLE query_history (\n"
  "    history_id INTEGER PRIMARY KEY,\n"
  "    connection_id TEXT NOT NULL,\n"
  "    sql_text TEXT NOT NULL,\n"
  "    execution_time_ms INTEGER,\n"
  "    row_count INTEGER,\n"
  "    error_message TEXT,\n"
  "    executed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
  "    FOREIGN KEY(connection_id) REFERENCES connections(connection_id) ON "
  "DELETE CASCADE\n"
  ") STRICT;\n"
  "\n"
  "-- Saved Queries\n"
  "CREATE TABLE saved_queries (\n"
  "    query_id TEXT PRIMARY KEY,\n"
  "    connection_id TEXT,\n"
  "    name TEXT NOT NULL,\n"
  "    description TEXT,\n"
  "    sql_text TEXT NOT NULL,\n"
  "    folder_path TEXT,\n"
  "    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
  "    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
  "    FOREIGN KEY(connection_id) REFERENCES connections(connection_id) ON "
  "DELETE SET NULL\n"
  ") STRICT;\n"
  "\n"
  "-- UI State Persistence\n"
  "CREATE TABLE ui_state (\n"
  "    key TEXT PRIMARY KEY,\n"
  "    value_json TEXT NOT NULL,\n"
  "    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP\n"
  ") STRICT;\n"
  "\n"
  "-- Indexes\n"
  "CREATE INDEX idx_connections_last_connected ON "
  "connections(last_connected_at DESC);\n"
  "CREATE INDEX idx_query_history_connection ON query_history(connection_id, "
  "executed_at DESC);\n"
  "CREATE INDEX idx_query_history_executed ON query_history(executed_at "
  "DESC);\n"
  "CREATE INDEX idx_saved_queries_folder ON saved_queries(folder_path);\n",

  /* TuskConnectionConfig's client certificate paths (sslrootcert, sslcert,
   * sslkey), which the seed's schema lacks. */
  "ALTER TABLE connections ADD COLUMN ssl_root_cert TEXT;\n"
  "ALTER TABLE connections ADD COLUMN ssl_cert TEXT;\n"
  "ALTER TABLE connections ADD COLUMN ssl_key TEXT;\n",

  /* History lists newest first with history_id as the tie-breaker (entries
   * of the same second), so they need no sort step.  The new indexes
   * extend the seed's two history indexes, which become redundant. */
  "DROP INDEX idx_query_history_connection;\n"
  "DROP INDEX idx_query_history_executed;\n"
  "CREATE INDEX idx_query_history_connection ON query_history(connection_id, "
  "executed_at DESC, history_id DESC);\n"
  "CREATE INDEX idx_query_history_executed ON query_history(executed_at "
  "DESC, history_id DESC);\n",

  NULL,
};

/* ---- types ------------------------------------------------------------ */

typedef struct
{
  char *key;          /* canonical path; NULL for a private in-memory one */
  int refcount;       /* under registry_lock */
  sqlite3 *db;        /* the writer thread's, after writer_new() */
  GAsyncQueue *queue; /* of Job */
  GThread *thread;
} Writer;

typedef enum
{
  JOB_WRITE,
  JOB_FLUSH,
  JOB_STOP,
} JobKind;

/* What a blocked caller waits on (_sync, flush); lives on its stack. */
typedef struct
{
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  gboolean done; /* under mutex */
  gboolean ok;
  GError *error;
} Waiter;

typedef struct
{
  JobKind kind;
  TuskStorageWriteFunc func;
  gpointer data;
  GDestroyNotify destroy;
  GTask *task;    /* _async: owned; NULL otherwise */
  Waiter *waiter; /* _sync and flush: borrowed; NULL otherwise */
} Job;

typedef struct _Reader Reader;

struct _TuskStorage
{
  guint64 id; /* process-unique: keys the thread-local readers */
  char *path; /* canonical file path; NULL in memory */
  char *uri;  /* what readers open */
  gboolean in_memory;
  gboolean was_reset;
  char *reset_message;
  Writer *writer;
  GList *readers;  /* of Reader, under readers_lock */
  gboolean closed; /* under readers_lock */
};

struct _Reader
{
  guint64 storage_id;   /* the thread table's key */
  sqlite3 *db;          /* under readers_lock; NULL once closed */
  TuskStorage *storage; /* under readers_lock; NULL once detached */
  int owners;           /* under readers_lock: the thread table, the list */
};

typedef enum
{
  FILE_OK,
  FILE_DAMAGED,  /* move it aside and start afresh */
  FILE_UNUSABLE, /* leave it alone; use memory */
  FILE_REFUSED,  /* fail the open; leave it alone */
} FileStatus;

typedef enum
{
  MIGRATE_OK,
  MIGRATE_MISMATCH,
  MIGRATE_FAILED,
} MigrateStatus;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *registry; /* canonical path -> Writer, under the lock */
static pthread_mutex_t readers_lock = PTHREAD_MUTEX_INITIALIZER;
static guint64 next_storage_id = 1; /* under registry_lock */

static void thread_readers_free (gpointer table);
static GPrivate thread_readers = G_PRIVATE_INIT (thread_readers_free);

/* ---- small SQLite helpers --------------------------------------------- */

static gboolean
rc_is_damage (int rc)
{
  rc &= 0xff;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* Runs @sql (any number of statements); returns the SQLite result code and
 * sets @error from @db's message on failure. */
static int
exec_sql (sqlite3 *db, const char *sql, const char *what, GError **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
  return rc;
}

/* Runs a one-row statement and returns (transfer full, in @out) its first
 * column as text, NULL when there is no row. */
static int
query_text (sqlite3 *db, const char *sql, const char *what, char **out,
            GError **error)
{
  sqlite3_stmt *stmt = NULL;
  *out = NULL;
  int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);
  if (rc == SQLITE_OK)
    {
      rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW)
        {
          *out = g_strdup ((const char *)sqlite3_column_text (stmt, 0));
          rc = SQLITE_OK;
        }
      else if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    }
  if (rc != SQLITE_OK)
    g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
  sqlite3_finalize (stmt);
  return rc;
}

/* Busy timeout, extended codes and the per-connection pragmas; WAL too when
 * @set_wal.  Leaves @db as it was on failure. */
static int
configure (sqlite3 *db, gboolean set_wal, GError **error)
{
  sqlite3_extended_result_codes (db, 1);
  sqlite3_busy_timeout (db, BUSY_TIMEOUT_MS);
  /* The last connection to close does not checkpoint: the WAL and its
   * index stay beside the file, and the next open reads them.  A checkpoint
   * there copied the WAL into the file, synced both and deleted them, so
   * the next write created and synced a new WAL: four syncs and two file
   * creations in every `tusk` run that wrote a history entry, about 9 ms
   * of a saved connection's start-up on the bench machine.  The writer's
   * automatic checkpoint (every 1000 pages) still keeps the WAL short, and
   * a commit is exactly as durable as before (synchronous = NORMAL). */
  sqlite3_db_config (db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  if (set_wal)
    {
      g_autofree char *mode = NULL;
      /* Switching takes an exclusive lock, and SQLite may answer "locked"
       * at once (without its busy handler) while another process opens the
       * same new file: retry for as long as the busy timeout.  A file
       * already in WAL needs no switch. */
      int rc = query_text (db, "PRAGMA journal_mode",
                           "Reading the journal mode", &mode, error);
      if (rc != SQLITE_OK)
        return rc;
      gint64 deadline = g_get_monotonic_time () + BUSY_TIMEOUT_MS * 1000;
      while (g_strcmp0 (mode, "wal") != 0)
        {
          g_autoptr (GError) local = NULL;
          g_clear_pointer (&mode, g_free);
          rc = query_text (db, "PRAGMA journal_mode = WAL", "Switching to WAL",
                           &mode, &local);
          if (rc == SQLITE_OK)
            break;
          if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            {
              g_propagate_error (error, g_steal_pointer (&local));
              return rc;
            }
          if (g_get_monotonic_time () > deadline)
            {
              g_propagate_error (error, g_steal_pointer (&local));
              return rc;
            }
          g_usleep (10 * 1000);
        }
      if (g_strcmp0 (mode, "wal") != 0)
        tusk_warn ("SQLite kept journal mode %s instead of WAL for %s",
                   mode ? mode : "(none)", sqlite3_db_filename (db, "main"));
    }
  return exec_sql (db, per_connection_pragmas, "Setting the storage pragmas",
                   error);
}

/* Closes @db, tolerating statements a caller forgot to finalize. */
static void
close_db (sqlite3 *db)
{
  if (db == NULL)
    return;
  if (sqlite3_close (db) != SQLITE_OK)
    {
      tusk_warn ("Closing %s left statements unfinalized: %s",
                 sqlite3_db_filename (db, "main"), sqlite3_errmsg (db));
      sqlite3_close_v2 (db);
    }
}

/* ---- migrations ------------------------------------------------------- */

static MigrateStatus
migrate (sqlite3 *db, const char *domain, const char *const *steps, int *rc_out,
         GError **error)
{
  gboolean own_transaction = sqlite3_get_autocommit (db);
  gboolean in_savepoint = FALSE;
  sqlite3_stmt *select = NULL;
  sqlite3_stmt *insert = NULL;
  MigrateStatus status = MIGRATE_FAILED;
  int rc;

  if (own_transaction
      && (rc = exec_sql (db, "BEGIN IMMEDIATE",
                         "Locking the storage to migrate", error))
             != SQLITE_OK)
    goto out;
  if ((rc
       = exec_sql (db, "SAVEPOINT tusk_migrate", "Starting a migration", error))
      != SQLITE_OK)
    goto out;
  in_savepoint = TRUE;
  if ((rc = exec_sql (db, migrations_table, "Creating the migrations table",
                      error))
      != SQLITE_OK)
    goto out;
  if ((rc = sqlite3_prepare_v2 (db,
                                "SELECT migration FROM migrations"
                                " WHERE domain = ?1 AND step = ?2",
                                -1, &select, NULL))
          != SQLITE_OK
      || (rc = sqlite3_prepare_v2 (db,
                                   "INSERT INTO migrations (domain, step, "
                                   "migration) VALUES (?1, ?2, ?3)",
                                   -1, &insert, NULL))
             != SQLITE_OK)
    {
      g_propagate_error (error, tusk_error_from_sqlite (
                                    db, rc, "Reading the applied migrations"));
      goto out;
    }

  for (int i = 0; steps[i] != NULL; i++)
    {
      sqlite3_bind_text (select, 1, domain, -1, SQLITE_STATIC);
      sqlite3_bind_int (select, 2, i);
      rc = sqlite3_step (select);
      if (rc == SQLITE_ROW)
        {
          const char *applied = (const char *)sqlite3_column_text (select, 0);
          if (g_strcmp0 (applied, steps[i]) != 0)
            {
              tusk_set_error (
                  error, TUSK_ERROR_STORAGE,
                  "The database was changed by a different build of Tusk; "
                  "run a matching version, or use another data directory "
                  "(--data-dir)",
                  "Migration step %d of domain \"%s\" differs from the one "
                  "already applied to %s; the database was not changed",
                  i, domain, sqlite3_db_filename (db, "main"));
              status = MIGRATE_MISMATCH;
              rc = SQLITE_OK;
              goto out;
            }
          sqlite3_reset (select);
          continue;
        }
      if (rc != SQLITE_DONE)
        {
          g_propagate_error (
              error, tusk_error_from_sqlite (db, rc,
                                             "Reading the applied migrations"));
          goto out;
        }
      sqlite3_reset (select);

      g_autofree char *what = g_strdup_printf (
          "Applying migration step %d of domain \"%s\"", i, domain);
      if ((rc = exec_sql (db, steps[i], what, error)) != SQLITE_OK)
        goto out;
      sqlite3_bind_text (insert, 1, domain, -1, SQLITE_STATIC);
      sqlite3_bind_int (insert, 2, i);
      sqlite3_bind_text (insert, 3, steps[i], -1, SQLITE_STATIC);
      rc = sqlite3_step (insert);
      sqlite3_reset (insert);
      if (rc != SQLITE_DONE)
        {
          g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
          goto out;
        }
      tusk_debug ("Applied migration step %d of domain \"%s\"", i, domain);
    }

  sqlite3_finalize (select);
  sqlite3_finalize (insert);
  select = insert = NULL;
  if ((rc
       = exec_sql (db, "RELEASE tusk_migrate", "Finishing a migration", error))
      != SQLITE_OK)
    goto out;
  in_savepoint = FALSE;
  if (own_transaction
      && (rc = exec_sql (db, "COMMIT", "Committing a migration", error))
             != SQLITE_OK)
    goto out;
  status = MIGRATE_OK;

out:
  sqlite3_finalize (select);
  sqlite3_finalize (insert);
  if (status != MIGRATE_OK)
    {
      if (in_savepoint)
        sqlite3_exec (db, "ROLLBACK TO tusk_migrate; RELEASE tusk_migrate",
                      NULL, NULL, NULL);
      if (own_transaction && !sqlite3_get_autocommit (db))
        sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    }
  if (rc_out != NULL)
    *rc_out = rc;
  return status;
}

gboolean
tusk_storage_migrate (sqlite3 *db, const char *domain, const char *const *steps,
                      GError **error)
{
  g_return_val_if_fail (db != NULL, FALSE);
  g_return_val_if_fail (domain != NULL, FALSE);
  g_return_val_if_fail (steps != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return migrate (db, domain, steps, NULL, error) == MIGRATE_OK;
}

/* ---- opening the file, recovery, memory -------------------------------- */

static void
tighten_mode (const char *path)
{
  GStatBuf st;
  if (g_stat (path, &st) == 0 && (st.st_mode & 077) != 0)
    g_chmod (path, 0600);
}

/* FALSE when @path exists, is not empty and does not begin with the 16
 * bytes every SQLite database begins with. */
static gboolean
has_sqlite_header (const char *path)
{
  static const char magic[16] = "SQLite format 3";
  char head[sizeof magic];
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    return TRUE; /* missing, or unreadable: open_file() finds out */
  ssize_t n = read (fd, head, sizeof head);
  close (fd);
  return n == 0
         || (n == sizeof head && memcmp (head, magic, sizeof magic) == 0);
}

/* Opens the file at @path (creating it, mode 0600) as a read-write
 * connection with the pragmas set, checked by quick_check and migrated.  On
 * FILE_OK sets *@db_out; otherwise leaves no connection open, @path as it
 * was (but created if it was missing) and @error saying why.  See invariant
 * 5. */
static FileStatus
open_file (const char *path, sqlite3 **db_out, GError **error)
{
  g_autofree char *check = NULL;
  sqlite3 *db = NULL;
  GStatBuf st;
  int rc;

  if (g_stat (path, &st) == 0 && !S_ISREG (st.st_mode))
    {
      tusk_set_error (error, TUSK_ERROR_STORAGE, NULL,
                      "%s is not a regular file", path);
      return FILE_DAMAGED;
    }
  /* Judged before SQLite opens it: closing a connection to a file that is
   * not a database deletes the -wal beside it, which the backup should keep.
   * A zero-length file is a valid empty database. */
  if (!has_sqlite_header (path))
    {
      tusk_set_error (error, TUSK_ERROR_STORAGE, NULL,
                      "%s does not start with the SQLite header", path);
      return FILE_DAMAGED;
    }

  /* SQLite would create the file 0644 and give -wal and -shm the same mode;
   * creating it first makes all three 0600. */
  int fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int errsv = errno;
      g_autofree char *what = g_strdup_printf ("Could not create %s", path);
      g_propagate_error (error, tusk_error_from_errno (errsv, what));
      return FILE_UNUSABLE;
    }
  if (fstat (fd, &st) == 0 && (st.st_mode & 077) != 0)
    fchmod (fd, 0600);
  close (fd);
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);
  g_autofree char *shm = g_strconcat (path, "-shm", NULL);
  tighten_mode (wal);
  tighten_mode (shm);

  rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL);
  if (rc != SQLITE_OK)
    {
      g_autofree char *what = g_strdup_printf ("Could not open %s", path);
      g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
      close_db (db);
      return rc_is_damage (rc) ? FILE_DAMAGED : FILE_UNUSABLE;
    }

  if ((rc = configure (db, TRUE, error)) != SQLITE_OK)
    goto fail;

  if ((rc = query_text (db, "PRAGMA quick_check", "Checking the database",
                        &check, error))
      != SQLITE_OK)
    goto fail;
  if (g_strcmp0 (check, "ok") != 0)
    {
      tusk_set_error (error, TUSK_ERROR_STORAGE, NULL,
                      "%s fails quick_check: %s", path,
                      check ? check : "(no answer)");
      close_db (db);
      return FILE_DAMAGED;
    }

  switch (migrate (db, "tusk", tusk_steps, &rc, error))
    {
      case MIGRATE_OK:
        *db_out = db;
        return FILE_OK;
      case MIGRATE_MISMATCH:
        close_db (db);
        return FILE_REFUSED;
      case MIGRATE_FAILED:
      default:
        goto fail;
    }

fail:
  close_db (db);
  return rc_is_damage (rc) ? FILE_DAMAGED : FILE_UNUSABLE;
}

static gboolean
path_exists (const char *path)
{
  GStatBuf st;
  return g_lstat (path, &st) == 0;
}

/* Renames @path and its -wal and -shm to @path.corrupt-YYYYMMDD-HHMMSS,
 * adding -1, -2, … if that is taken.  Returns (transfer full) the new path,
 * or NULL with @error and @path untouched.  A -wal or -shm that cannot be
 * moved is deleted, so it cannot be replayed into the fresh database. */
static char *
move_aside (const char *path, GError **error)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  g_autofree char *base = g_strdup_printf ("%s.corrupt-%s", path, stamp);
  char *backup = g_strdup (base);

  for (int n = 1;; n++)
    {
      g_autofree char *wal = g_strconcat (backup, "-wal", NULL);
      g_autofree char *shm = g_strconcat (backup, "-shm", NULL);
      if (!path_exists (backup) && !path_exists (wal) && !path_exists (shm))
        break;
      g_free (backup);
      backup = g_strdup_printf ("%s-%d", base, n);
    }

  if (g_rename (path, backup) != 0)
    {
      int errsv = errno;
      g_autofree char *what
          = g_strdup_printf ("Could not move %s to %s", path, backup);
      g_propagate_error (error, tusk_error_from_errno (errsv, what));
      g_free (backup);
      return NULL;
    }

  static const char *const suffixes[] = { "-wal", "-shm" };
  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *from = g_strconcat (path, suffixes[i], NULL);
      g_autofree char *to = g_strconcat (backup, suffixes[i], NULL);
      if (path_exists (from) && g_rename (from, to) != 0)
        {
          tusk_warn ("Could not move %s to %s (%s); deleting it", from, to,
                     g_strerror (errno));
          g_unlink (from);
        }
    }
  return backup;
}

/* Opens a fresh in-memory database that every connection of the process
 * opening *@uri_out shares. */
static sqlite3 *
open_memory (char **uri_out, GError **error)
{
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *uri = g_strdup_printf ("file:/tusk-mem-%s?vfs=memdb", uuid);
  sqlite3 *db = NULL;

  int rc = sqlite3_open_v2 (uri, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                            NULL);
  if (rc != SQLITE_OK)
    {
      g_propagate_error (
          error,
          tusk_error_from_sqlite (db, rc, "Could not open a memory database"));
      close_db (db);
      return NULL;
    }
  if (configure (db, FALSE, error) != SQLITE_OK
      || migrate (db, "tusk", tusk_steps, NULL, error) != MIGRATE_OK)
    {
      close_db (db);
      return NULL;
    }
  *uri_out = g_steal_pointer (&uri);
  return db;
}

/* ---- the writer --------------------------------------------------------- */

static void
job_free (Job *job)
{
  if (job->destroy != NULL)
    job->destroy (job->data);
  g_clear_object (&job->task);
  g_free (job);
}

/* Queues @job for @writer's thread.  GAsyncQueue's lock is a futex in
 * uninstrumented GLib, so the hand-over of @job (and of what the caller
 * wrote before it) is announced to ThreadSanitizer; writer_main() acquires
 * each job it pops. */
static void
writer_push (Writer *writer, Job *job)
{
  tusk_tsan_release (job);
  g_async_queue_push (writer->queue, job);
}

static void
waiter_signal (Waiter *waiter, gboolean ok, GError *error)
{
  pthread_mutex_lock (&waiter->mutex);
  waiter->ok = ok;
  waiter->error = error;
  waiter->done = TRUE;
  pthread_cond_signal (&waiter->cond);
  pthread_mutex_unlock (&waiter->mutex);
}

/* Pushes @job and blocks until the writer signals @waiter; returns the
 * job's result. */
static gboolean
push_and_wait (Writer *writer, Job *job, Waiter *waiter, GError **error)
{
  pthread_mutex_init (&waiter->mutex, NULL);
  pthread_cond_init (&waiter->cond, NULL);
  waiter->done = FALSE;
  waiter->error = NULL;
  job->waiter = waiter;
  writer_push (writer, job);

  pthread_mutex_lock (&waiter->mutex);
  while (!waiter->done)
    pthread_cond_wait (&waiter->cond, &waiter->mutex);
  pthread_mutex_unlock (&waiter->mutex);
  pthread_mutex_destroy (&waiter->mutex);
  pthread_cond_destroy (&waiter->cond);

  if (waiter->error != NULL)
    g_propagate_error (error, waiter->error);
  return waiter->ok;
}

/* One transaction around @job's function.  Leaves no transaction open. */
static gboolean
run_write (sqlite3 *db, Job *job, GError **error)
{
  g_assert (sqlite3_get_autocommit (db)); /* no transaction left over */
  if (exec_sql (db, "BEGIN IMMEDIATE", "Starting a write", error) != SQLITE_OK)
    return FALSE;

  GError *local = NULL;
  gboolean ok = job->func (db, job->data, &local);
  if (ok && local != NULL)
    {
      g_critical ("A storage write succeeded yet set an error: %s",
                  local->message);
      g_clear_error (&local);
    }
  if (!ok && local == NULL)
    local = g_error_new_literal (TUSK_ERROR, TUSK_ERROR_INTERNAL,
                                 "A storage write failed without saying why");
  if (ok)
    ok = exec_sql (db, "COMMIT", "Committing a write", &local) == SQLITE_OK;
  if (!sqlite3_get_autocommit (db))
    sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
  if (local != NULL)
    g_propagate_error (error, local);
  return ok;
}

static gpointer
writer_main (gpointer user_data)
{
  Writer *writer = user_data;

  for (;;)
    {
      Job *job = g_async_queue_pop (writer->queue);
      tusk_tsan_acquire (job);
      GError *error = NULL;
      gboolean ok = TRUE;

      switch (job->kind)
        {
          case JOB_STOP:
            job_free (job);
            close_db (writer->db);
            writer->db = NULL;
            return NULL;

          case JOB_FLUSH:
            waiter_signal (job->waiter, TRUE, NULL);
            job_free (job);
            break;

          case JOB_WRITE:
          default:
            {
              /* write_finish() acquires what the task carries back. */
              if (job->task != NULL)
                tusk_tsan_release (job->task);
              if (job->task != NULL
                  && g_task_return_error_if_cancelled (job->task))
                {
                  /* Skipped: the GTask reports G_IO_ERROR_CANCELLED; convert
                   * it in write_finish. */
                }
              else
                {
                  ok = run_write (writer->db, job, &error);
                  if (job->task != NULL)
                    {
                      tusk_tsan_release (job->task);
                      if (ok)
                        g_task_return_boolean (job->task, TRUE);
                      else
                        g_task_return_error (job->task,
                                             g_steal_pointer (&error));
                    }
                  else if (job->waiter == NULL && !ok)
                    tusk_warn ("A queued storage write failed: %s",
                               error->message);
                }
              /* Destroy the data before waking a _sync caller, who may reuse
               * what it lent. */
              Waiter *waiter = job->waiter;
              job_free (job);
              if (waiter != NULL)
                waiter_signal (waiter, ok, g_steal_pointer (&error));
              g_clear_error (&error);
              break;
            }
        }
    }
}

/* Returns a running Writer owning @db (refcount 1), or NULL with @error. */
static Writer *
writer_new (const char *key, sqlite3 *db, GError **error)
{
  Writer *writer = g_new0 (Writer, 1);
  writer->key = g_strdup (key);
  writer->refcount = 1;
  writer->db = db;
  writer->queue = g_async_queue_new ();

  GError *local = NULL;
  writer->thread
      = g_thread_try_new ("tusk-storage-writer", writer_main, writer, &local);
  if (writer->thread == NULL)
    {
      tusk_set_error (error, TUSK_ERROR_INTERNAL, NULL,
                      "Could not start the storage writer thread: %s",
                      local->message);
      g_error_free (local);
      g_async_queue_unref (writer->queue);
      g_free (writer->key);
      g_free (writer);
      return NULL;
    }
  return writer;
}

/* Drops one reference; the last one stops the thread (after every queued
 * job), which closes the connection, and frees @writer.  Blocks then. */
static void
writer_unref (Writer *writer)
{
  pthread_mutex_lock (&registry_lock);
  g_assert (writer->refcount > 0);
  gboolean last = --writer->refcount == 0;
  if (last && writer->key != NULL)
    {
      g_assert (g_hash_table_lookup (registry, writer->key) == writer);
      g_hash_table_remove (registry, writer->key);
    }
  pthread_mutex_unlock (&registry_lock);
  if (!last)
    return;

  Job *stop = g_new0 (Job, 1);
  stop->kind = JOB_STOP;
  writer_push (writer, stop);
  g_thread_join (writer->thread);
  g_async_queue_unref (writer->queue);
  g_free (writer->key);
  g_free (writer);
}

/* ---- open and close --------------------------------------------------- */

/* The path the registry knows the file by: symlinks in @data_dir resolved,
 * so two spellings of one directory share one Writer. */
static char *
canonical_db_path (const char *data_dir)
{
  char *real = realpath (data_dir, NULL);
  if (real != NULL)
    {
      char *path = g_build_filename (real, "tusk.db", NULL);
      free (real);
      return path;
    }
  g_autofree char *dir = g_canonicalize_filename (data_dir, NULL);
  return g_build_filename (dir, "tusk.db", NULL);
}

static void
storage_free (TuskStorage *storage)
{
  g_free (storage->path);
  g_free (storage->uri);
  g_free (storage->reset_message);
  g_free (storage);
}

TuskStorage *
tusk_storage_open (const char *data_dir, GError **error)
{
  g_return_val_if_fail (data_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  gint64 start = g_get_monotonic_time ();
  TuskStorage *storage = g_new0 (TuskStorage, 1);
  g_autoptr (GError) reason = NULL;
  g_autofree char *backup = NULL;
  sqlite3 *db = NULL;
  FileStatus status = FILE_UNUSABLE;

  pthread_mutex_lock (&registry_lock);
  storage->id = next_storage_id++;
  if (registry == NULL)
    registry = g_hash_table_new (g_str_hash, g_str_equal);

  if (g_mkdir_with_parents (data_dir, 0700) != 0)
    {
      int errsv = errno;
      g_autofree char *what
          = g_strdup_printf ("Could not create the directory %s", data_dir);
      reason = tusk_error_from_errno (errsv, what);
    }
  g_autofree char *path = canonical_db_path (data_dir);

  Writer *shared = g_hash_table_lookup (registry, path);
  if (shared != NULL)
    {
      shared->refcount++;
      pthread_mutex_unlock (&registry_lock);
      storage->writer = shared;
      storage->path = g_steal_pointer (&path);
      storage->uri = g_strdup (storage->path);
      return storage;
    }

  if (reason == NULL)
    status = open_file (path, &db, &reason);
  if (status == FILE_DAMAGED)
    {
      tusk_warn ("The local database %s is damaged: %s", path, reason->message);
      g_autoptr (GError) move_error = NULL;
      backup = move_aside (path, &move_error);
      if (backup == NULL)
        {
          g_clear_error (&reason);
          reason = g_steal_pointer (&move_error);
          status = FILE_UNUSABLE;
        }
      else
        {
          g_clear_error (&reason);
          status = open_file (path, &db, &reason);
          if (status == FILE_DAMAGED) /* not for a file just created */
            status = FILE_UNUSABLE;
        }
    }

  if (status == FILE_REFUSED)
    {
      pthread_mutex_unlock (&registry_lock);
      tusk_warn ("%s", reason->message);
      g_propagate_error (error, g_steal_pointer (&reason));
      storage_free (storage);
      return NULL;
    }

  if (status == FILE_OK)
    {
      storage->path = g_steal_pointer (&path);
      storage->uri = g_strdup (storage->path);
      if (backup != NULL)
        {
          storage->was_reset = TRUE;
          storage->reset_message = g_strdup_printf (
              "The local database was damaged and has been moved to %s; "
              "Tusk started with an empty one.",
              backup);
        }
    }
  else
    {
      db = open_memory (&storage->uri, error);
      if (db == NULL)
        {
          pthread_mutex_unlock (&registry_lock);
          storage_free (storage);
          return NULL;
        }
      storage->in_memory = TRUE;
      storage->was_reset = TRUE;
      GString *message = g_string_new (NULL);
      if (backup != NULL)
        g_string_append_printf (message,
                                "The local database was damaged and has been "
                                "moved to %s. ",
                                backup);
      g_string_append_printf (message,
                              "The local database %s cannot be used (%s), so "
                              "Tusk keeps this session's data in memory and "
                              "nothing will be saved after it exits.",
                              path, reason->message);
      storage->reset_message = g_string_free (message, FALSE);
    }

  storage->writer
      = writer_new (storage->in_memory ? NULL : storage->path, db, error);
  if (storage->writer == NULL)
    {
      pthread_mutex_unlock (&registry_lock);
      close_db (db);
      storage_free (storage);
      return NULL;
    }
  if (!storage->in_memory)
    g_hash_table_insert (registry, storage->writer->key, storage->writer);
  pthread_mutex_unlock (&registry_lock);

  if (storage->was_reset)
    tusk_warn ("%s", storage->reset_message);
  tusk_debug ("Opened %s in %.1f ms",
              storage->in_memory ? storage->uri : storage->path,
              (g_get_monotonic_time () - start) / 1000.0);
  return storage;
}

static void close_readers (TuskStorage *storage);

void
tusk_storage_close (TuskStorage *storage)
{
  if (storage == NULL)
    return;

  tusk_storage_flush (storage);
  close_readers (storage);
  writer_unref (storage->writer);
  storage_free (storage);
}

gboolean
tusk_storage_was_reset (TuskStorage *storage)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  return storage->was_reset;
}

const char *
tusk_storage_get_reset_message (TuskStorage *storage)
{
  g_return_val_if_fail (storage != NULL, NULL);
  return storage->reset_message;
}

gboolean
tusk_storage_is_in_memory (TuskStorage *storage)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  return storage->in_memory;
}

const char *
tusk_storage_get_path (TuskStorage *storage)
{
  g_return_val_if_fail (storage != NULL, NULL);
  return storage->in_memory ? NULL : storage->path;
}

/* ---- readers ------------------------------------------------------------ */

/* Drops one owner of @reader; closes its connection if the other owner had
 * not, and frees it when it was the last.  Call with readers_lock held. */
static void
reader_drop_locked (Reader *reader)
{
  g_assert (reader->owners > 0);
  if (reader->db != NULL)
    {
      close_db (reader->db);
      reader->db = NULL;
    }
  if (--reader->owners == 0)
    g_free (reader);
}

/* The thread table's value destroy: the thread exits or sweeps the entry. */
static void
reader_release (gpointer data)
{
  Reader *reader = data;

  pthread_mutex_lock (&readers_lock);
  if (reader->storage != NULL)
    {
      reader->storage->readers
          = g_list_remove (reader->storage->readers, reader);
      reader->storage = NULL;
      reader_drop_locked (reader); /* the list's ownership */
    }
  reader_drop_locked (reader); /* the table's */
  pthread_mutex_unlock (&readers_lock);
}

static void
thread_readers_free (gpointer table)
{
  g_hash_table_destroy (table);
}

static gboolean
reader_is_detached (gpointer key, gpointer value, gpointer user_data)
{
  (void)key;
  (void)user_data;
  Reader *reader = value;
  pthread_mutex_lock (&readers_lock);
  gboolean detached = reader->storage == NULL;
  pthread_mutex_unlock (&readers_lock);
  return detached;
}

/* Closes every thread's reader of @storage and refuses new ones.  The
 * closing thread's own entry leaves its table at once; other threads'
 * entries stay, detached, until those threads exit or sweep them. */
static void
close_readers (TuskStorage *storage)
{
  GHashTable *table = g_private_get (&thread_readers);
  if (table != NULL)
    g_hash_table_remove (table, &storage->id);

  pthread_mutex_lock (&readers_lock);
  storage->closed = TRUE;
  while (storage->readers != NULL)
    {
      Reader *reader = storage->readers->data;
      g_assert (reader->storage == storage && reader->owners == 2);
      storage->readers
          = g_list_delete_link (storage->readers, storage->readers);
      reader->storage = NULL;
      reader_drop_locked (reader);
    }
  pthread_mutex_unlock (&readers_lock);
}

sqlite3 *
tusk_storage_reader (TuskStorage *storage, GError **error)
{
  g_return_val_if_fail (storage != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  GHashTable *table = g_private_get (&thread_readers);
  if (table == NULL)
    {
      table = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL,
                                     reader_release);
      g_private_set (&thread_readers, table);
    }
  Reader *reader = g_hash_table_lookup (table, &storage->id);
  if (reader != NULL)
    return reader->db;

  /* A miss: drop entries of storages closed since, then open. */
  g_hash_table_foreach_remove (table, reader_is_detached, NULL);

  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2 (
      storage->uri, &db,
      SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      g_autofree char *what
          = g_strdup_printf ("Could not open %s for reading", storage->uri);
      g_propagate_error (error, tusk_error_from_sqlite (db, rc, what));
      close_db (db);
      return NULL;
    }
  if (configure (db, FALSE, error) != SQLITE_OK)
    {
      close_db (db);
      return NULL;
    }

  reader = g_new0 (Reader, 1);
  reader->storage_id = storage->id;
  reader->db = db;
  reader->storage = storage;
  reader->owners = 2;

  pthread_mutex_lock (&readers_lock);
  gboolean closed = storage->closed;
  if (!closed)
    storage->readers = g_list_prepend (storage->readers, reader);
  pthread_mutex_unlock (&readers_lock);
  if (closed)
    {
      g_critical ("tusk_storage_reader() called on a closed storage");
      close_db (db);
      g_free (reader);
      tusk_set_error (error, TUSK_ERROR_INTERNAL, NULL,
                      "The storage is closed");
      return NULL;
    }
  g_hash_table_insert (table, &reader->storage_id, reader);
  return db;
}

/* ---- writes ------------------------------------------------------------- */

static Job *
job_new (JobKind kind, TuskStorageWriteFunc func, gpointer data,
         GDestroyNotify destroy)
{
  Job *job = g_new0 (Job, 1);
  job->kind = kind;
  job->func = func;
  job->data = data;
  job->destroy = destroy;
  return job;
}

gboolean
tusk_storage_write_sync (TuskStorage *storage, TuskStorageWriteFunc func,
                         gpointer data, GDestroyNotify destroy, GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (func != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  /* From the writer thread this would wait on itself forever. */
  g_return_val_if_fail (g_thread_self () != storage->writer->thread, FALSE);

  Waiter waiter;
  return push_and_wait (storage->writer,
                        job_new (JOB_WRITE, func, data, destroy), &waiter,
                        error);
}

void
tusk_storage_write_async (TuskStorage *storage, TuskStorageWriteFunc func,
                          gpointer data, GDestroyNotify destroy,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (func != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  Job *job = job_new (JOB_WRITE, func, data, destroy);
  job->task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, tusk_storage_write_async);
  /* A write that ran reports its own result even if cancelled meanwhile:
   * "cancelled" must never hide a commit. */
  g_task_set_check_cancellable (job->task, FALSE);
  writer_push (storage->writer, job);
}

gboolean
tusk_storage_write_finish (TuskStorage *storage, GAsyncResult *result,
                           GError **error)
{
  g_return_val_if_fail (storage != NULL, FALSE);
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result))
                            == tusk_storage_write_async,
                        FALSE);

  tusk_tsan_acquire (result);
  GError *local = NULL;
  if (g_task_propagate_boolean (G_TASK (result), &local))
    return TRUE;
  if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      tusk_set_error (error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                      "The write was cancelled before it ran; nothing was "
                      "saved");
      g_error_free (local);
      return FALSE;
    }
  g_propagate_error (error, local);
  return FALSE;
}

void
tusk_storage_write_queue (TuskStorage *storage, TuskStorageWriteFunc func,
                          gpointer data, GDestroyNotify destroy)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (func != NULL);

  writer_push (storage->writer, job_new (JOB_WRITE, func, data, destroy));
}

void
tusk_storage_flush (TuskStorage *storage)
{
  g_return_if_fail (storage != NULL);
  g_return_if_fail (g_thread_self () != storage->writer->thread);

  Waiter waiter;
  push_and_wait (storage->writer, job_new (JOB_FLUSH, NULL, NULL, NULL),
                 &waiter, NULL);
}
