/* tusk-data-dir.h: where Tusk keeps its database, logs and known_hosts
 * (FR-025–FR-027a).
 *
 * Release builds use $XDG_DATA_HOME/tusk (~/.local/share/tusk); debug builds
 * a development directory inside the build tree, so that working on Tusk
 * never touches a person's real data.  TUSK_DATA_DIR, and a front end's
 * --data-dir, override both.
 *
 * Thread rules: all functions may be called from any thread; they read the
 * environment, so call them before starting threads that change it.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Returns (transfer full) the build type's default data directory. */
char *tusk_data_dir_default (void);

/* Returns (transfer full) the absolute data directory to use: @override
 * (nullable; a front end's --data-dir) if given, else $TUSK_DATA_DIR if set
 * and non-empty, else tusk_data_dir_default(). */
char *tusk_data_dir_resolve (const char *override);

/* Makes sure @path is a directory Tusk can write: creates it and any missing
 * parents with mode 0700, and proves it writable by creating and removing a
 * file.  A directory that already exists keeps its mode; when group or
 * others can enter it, a warning is logged.  Blocks on the file system.
 * On failure returns FALSE with a TUSK_ERROR_STORAGE naming the path and the
 * reason, whose hint offers the two ways out: another location
 * (--data-dir, TUSK_DATA_DIR) or exit. */
gboolean tusk_data_dir_ensure (const char *path, GError **error);

G_END_DECLS
