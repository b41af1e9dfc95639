/* tusk-data-dir.c: choosing and preparing the data directory. */
#define G_LOG_DOMAIN "tusk-data-dir"

#include "tusk-data-dir.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tusk-config.h"
#include "tusk-error.h"
#include "tusk-log.h"

#define WAYS_OUT                                                               \
  "Choose another location with --data-dir DIR (or TUSK_DATA_DIR=DIR), or "    \
  "exit"

char *
tusk_data_dir_default (void)
{
#if TUSK_DEBUG_BUILD
  return g_strdup (TUSK_DEV_DATA_DIR);
#else
  return g_build_filename (g_get_user_data_dir (), "tusk", NULL);
#endif
}

char *
tusk_data_dir_resolve (const char *override)
{
  const char *chosen = override;
  if (chosen == NULL || *chosen == '\0')
    chosen = g_getenv ("TUSK_DATA_DIR");
  if (chosen == NULL || *chosen == '\0')
    return tusk_data_dir_default ();
  return g_canonicalize_filename (chosen, NULL);
}

/* Sets the one error every failure here gives: what, where, why, and the
 * two ways out.  Always returns FALSE. */
static gboolean
fail (GError **error, int errsv, const char *path, const char *reason)
{
  tusk_set_error (error, TUSK_ERROR_STORAGE, WAYS_OUT,
                  "Cannot use data directory %s: %s", path,
                  reason ? reason : g_strerror (errsv));
  return FALSE;
}

gboolean
tusk_data_dir_ensure (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (*path == '\0')
    return fail (error, EINVAL, "\"\"", "the path is empty");

  if (g_mkdir_with_parents (path, 0700) != 0)
    return fail (error, errno, path, NULL);

  GStatBuf st;
  if (g_stat (path, &st) != 0)
    return fail (error, errno, path, NULL);
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    tusk_warn ("Data directory %s can be read by other users (mode %04o); "
               "run: chmod 700 %s",
               path, (unsigned)(st.st_mode & 07777), path);

  /* access(2) asks the kernel's own question, root included: EROFS on a
   * read-only file system, EPERM for an immutable directory, and whatever
   * the modes, ACLs and security modules say.  (Creating and removing a
   * probe file would cost an inode allocation on every start.) */
  if (access (path, W_OK | X_OK) != 0)
    return fail (error, errno, path, NULL);
  return TRUE;
}
