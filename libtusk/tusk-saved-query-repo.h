/* tusk-saved-query-repo.h: the query library (table `saved_queries`).
 *
 * A saved query may belong to a connection (deleting the connection keeps
 * the query and detaches it: connection_id becomes NULL) and may sit in a
 * folder.  Folders exist only as the folder_path of the queries in them:
 * "reports/monthly/eu" is the folder "eu" inside "monthly" inside
 * "reports"; NULL is the top level.  A folder with no query in it, at any
 * depth below, does not exist.
 *
 * Thread rules: any thread.  Reads run on the calling thread; the plain
 * writes block until committed; the _async variants return at once and
 * call back on the caller's thread-default main context.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-storage.h"

G_BEGIN_DECLS

/**
 * TuskSavedQuery:
 *
 * One saved query.  Plain data; every string is owned by the struct; free
 * with tusk_saved_query_free().  A value: any number of threads may read one
 * that none modifies.
 */
typedef struct
{
  char *id;            /* UUID; never NULL */
  char *connection_id; /* nullable: not tied to a connection */
  char *name;          /* 1-255 characters */
  char *description;   /* nullable */
  char *sql;           /* never NULL (may be empty) */
  char *folder_path;   /* nullable: top level; else "a/b/c" */
  /* Filled in when loading, ignored when writing.  UTC, "YYYY-MM-DD
   * HH:MM:SS". */
  char *created_at;
  char *updated_at;
} TuskSavedQuery;

/* Returns (transfer full) a query with a fresh UUID, @name and @sql (both
 * copied; nullable) and every other field NULL; free with
 * tusk_saved_query_free(). */
TuskSavedQuery *tusk_saved_query_new (const char *name, const char *sql);
TuskSavedQuery *tusk_saved_query_copy (const TuskSavedQuery *query);
void tusk_saved_query_free (TuskSavedQuery *query);

/* Checks @query against the data model: id a UUID, name 1-255 characters,
 * sql present, folder_path NULL or non-empty names joined by single '/'
 * (no leading, trailing or doubled '/'), every text valid UTF-8.  FALSE with
 * one TUSK_ERROR_VALIDATION naming each bad field and its rule.  That
 * connection_id names a saved connection is checked when writing. */
gboolean tusk_saved_query_validate (const TuskSavedQuery *query,
                                    GError **error);

/* Inserts @query (transfer none); created_at and updated_at become now.
 * TUSK_ERROR_VALIDATION when it is invalid, its connection_id is not a
 * saved connection, or a saved query already has its id.  Blocks. */
gboolean tusk_saved_query_repo_create (TuskStorage *storage,
                                       const TuskSavedQuery *query,
                                       GError **error);
void tusk_saved_query_repo_create_async (TuskStorage *storage,
                                         const TuskSavedQuery *query,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data);
gboolean tusk_saved_query_repo_create_finish (TuskStorage *storage,
                                              GAsyncResult *result,
                                              GError **error);

/* Replaces every field of the saved query with @query's id (created_at
 * kept, updated_at now).  Validation as for create; TUSK_ERROR_NOT_FOUND
 * when there is no such query.  Blocks. */
gboolean tusk_saved_query_repo_update (TuskStorage *storage,
                                       const TuskSavedQuery *query,
                                       GError **error);
void tusk_saved_query_repo_update_async (TuskStorage *storage,
                                         const TuskSavedQuery *query,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data);
gboolean tusk_saved_query_repo_update_finish (TuskStorage *storage,
                                              GAsyncResult *result,
                                              GError **error);

/* Returns (transfer full) the saved query @id; free with
 * tusk_saved_query_free().  NULL with TUSK_ERROR_NOT_FOUND when there is
 * none. */
TuskSavedQuery *tusk_saved_query_repo_load (TuskStorage *storage,
                                            const char *id, GError **error);

/* Returns (transfer full) every saved query, ordered by folder (top level
 * first, then folders in tree order) and by name within a folder: a
 * GPtrArray of TuskSavedQuery * freeing its elements with
 * tusk_saved_query_free().  NULL only with an error. */
GPtrArray *tusk_saved_query_repo_list (TuskStorage *storage, GError **error);

/* As tusk_saved_query_repo_list(), only the queries directly in
 * @folder_path (nullable: the top level; not those in its sub-folders),
 * ordered by name. */
GPtrArray *tusk_saved_query_repo_list_folder (TuskStorage *storage,
                                              const char *folder_path,
                                              GError **error);

/* Returns (transfer full) the folder tree: every folder that holds a query,
 * and every folder above one, each once, in tree (depth-first) order with
 * siblings sorted by name: {"a", "a/b", "a/b/c", "x"}.  A folder's depth is
 * its number of '/'.  NULL-terminated; free with g_strfreev().  NULL only
 * with an error. */
char **tusk_saved_query_repo_list_folders (TuskStorage *storage,
                                           GError **error);

/* Moves the saved query @id into @folder_path (nullable: the top level;
 * validated as TuskSavedQuery.folder_path); updated_at becomes now.
 * TUSK_ERROR_NOT_FOUND when there is no such query.  Blocks. */
gboolean tusk_saved_query_repo_move (TuskStorage *storage, const char *id,
                                     const char *folder_path, GError **error);

/* Deletes the saved query @id; TUSK_ERROR_NOT_FOUND when there is none.
 * Blocks. */
gboolean tusk_saved_query_repo_delete (TuskStorage *storage, const char *id,
                                       GError **error);
void tusk_saved_query_repo_delete_async (TuskStorage *storage, const char *id,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data);
gboolean tusk_saved_query_repo_delete_finish (TuskStorage *storage,
                                              GAsyncResult *result,
                                              GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSavedQuery, tusk_saved_query_free)

G_END_DECLS
