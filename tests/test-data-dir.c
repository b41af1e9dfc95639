/* test-data-dir.c: choosing, creating and refusing data directories, in the
 * library and through the `tusk` command (non-interactive and at a
 * terminal). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pty.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "tusk.h"
#include "tusk-config.h"
#include "tusk-test.h"

typedef struct
{
  char *root; /* a fresh temporary directory */
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  (void)data;
  f->root = g_dir_make_tmp ("tusk-data-dir-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  g_unsetenv ("TUSK_DATA_DIR");
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_remove_tree (f->root);
  g_free (f->root);
}

static void
test_default_by_build_type (void)
{
  g_autofree char *dir = tusk_data_dir_default ();
#if TUSK_DEBUG_BUILD
  /* Debug builds never touch a person's real data. */
  g_autofree char *expected
      = g_build_filename (tusk_test_env ("TUSK_TEST_BUILD_DIR"), "data", NULL);
  g_assert_cmpstr (dir, ==, expected);
#else
  g_autofree char *expected
      = g_build_filename (g_get_user_data_dir (), "tusk", NULL);
  g_assert_cmpstr (dir, ==, expected);
#endif
}

static void
test_resolve_order (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *from_env = g_build_filename (f->root, "env", NULL);
  g_autofree char *from_option = g_build_filename (f->root, "option", NULL);
  g_autofree char *fallback = tusk_data_dir_default ();

  g_autofree char *a = tusk_data_dir_resolve (NULL);
  g_assert_cmpstr (a, ==, fallback);

  g_setenv ("TUSK_DATA_DIR", from_env, TRUE);
  g_autofree char *b = tusk_data_dir_resolve (NULL);
  g_assert_cmpstr (b, ==, from_env);
  g_autofree char *c = tusk_data_dir_resolve ("");
  g_assert_cmpstr (c, ==, from_env);

  g_autofree char *d = tusk_data_dir_resolve (from_option);
  g_assert_cmpstr (d, ==, from_option);

  /* Relative paths become absolute; an empty variable counts as unset. */
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *expected = g_build_filename (cwd, "rel", "dir", NULL);
  g_autofree char *e = tusk_data_dir_resolve ("rel/./dir");
  g_assert_cmpstr (e, ==, expected);
  g_setenv ("TUSK_DATA_DIR", "", TRUE);
  g_autofree char *g = tusk_data_dir_resolve (NULL);
  g_assert_cmpstr (g, ==, fallback);
  g_unsetenv ("TUSK_DATA_DIR");
}

static void
test_created_private (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *path = g_build_filename (f->root, "a", "b", "tusk", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (tusk_data_dir_ensure (path, &error));
  g_assert_no_error (error);

  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  /* Ensuring again is a no-op that keeps what is inside. */
  g_autofree char *keep = g_build_filename (path, "tusk.db", NULL);
  g_assert_true (g_file_set_contents (keep, "data", -1, NULL));
  g_assert_true (tusk_data_dir_ensure (path, &error));
  g_assert_true (g_file_test (keep, G_FILE_TEST_EXISTS));

  /* Nothing is left behind. */
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  int entries = 0;
  while (g_dir_read_name (dir))
    entries++;
  g_assert_cmpint (entries, ==, 1);
}

static void
assert_refused (const char *path, const char *reason_word)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_data_dir_ensure (path, &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  /* The error names the path and the reason, and offers both ways out. */
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, reason_word));
  const char *hint = tusk_error_get_hint (error);
  g_assert_nonnull (strstr (hint, "--data-dir"));
  g_assert_nonnull (strstr (hint, "TUSK_DATA_DIR"));
  g_assert_nonnull (strstr (hint, "exit"));
}

static void
test_unusable_paths (Fixture *f, gconstpointer data)
{
  (void)data;
  /* Tests run as root in CI, where modes do not stop writes: use paths no
   * one can create. */
  g_autofree char *file = g_build_filename (f->root, "a-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_autofree char *under_file = g_build_filename (file, "tusk", NULL);

  assert_refused (under_file, "Not a directory");
  assert_refused (file, "Not a directory");
  assert_refused ("/proc/tusk-data", "/proc/tusk-data");

  g_autoptr (GError) error = NULL;
  g_assert_false (tusk_data_dir_ensure ("", &error));
  tusk_assert_error (error, TUSK_ERROR_STORAGE);
  g_assert_nonnull (strstr (error->message, "empty"));
}

/* Sets or clears the immutable attribute of directory @path (root only;
 * `chattr +i`).  Returns whether it could. */
static gboolean
set_immutable (const char *path, gboolean on)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return FALSE;
  int flags = 0;
  gboolean ok = ioctl (fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok)
    {
      flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
      ok = ioctl (fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
  close (fd);
  return ok;
}

/* A directory that exists but cannot be written to is refused with the
 * kernel's reason, and nothing is created in it.  Root writes through
 * modes, so as root the directory is made immutable instead. */
static void
test_unwritable (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *path = g_build_filename (f->root, "locked", NULL);
  g_assert_cmpint (g_mkdir (path, 0700), ==, 0);
  const char *reason;
  if (geteuid () == 0)
    {
      g_assert_true (set_immutable (path, TRUE));
      reason = g_strerror (EPERM);
    }
  else
    {
      g_assert_cmpint (g_chmod (path, 0500), ==, 0);
      reason = g_strerror (EACCES);
    }
  assert_refused (path, reason);
  if (geteuid () == 0)
    g_assert_true (set_immutable (path, FALSE));
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  g_assert_null (g_dir_read_name (dir));
}

/* A socket directory where no server listens: `tusk -h NO_SERVER` fails
 * to connect (exit 2) after preparing its data directory. */
#define NO_SERVER "/nonexistent-tusk-socket-dir"

/* Runs `tusk ARGS…`, returns its exit status and (transfer full) stderr. */
static int
run_tusk (const char *const *args, char **out, char **err)
{
  g_autofree char *tusk = g_build_filename (
      tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell", "tusk", NULL);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_ptr_array_add (argv, tusk);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer)args[i]);
  g_ptr_array_add (argv, NULL);

  int status;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **)argv->pdata, NULL,
                               G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL, out,
                               err, &status, &error));
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_tusk_non_interactive (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *file = g_build_filename (f->root, "a-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_autofree char *bad = g_build_filename (file, "tusk", NULL);
  g_autofree char *out = NULL, *err = NULL;

  const char *refused[] = { "--data-dir", bad, NULL };
  g_assert_cmpint (run_tusk (refused, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, bad));
  g_assert_nonnull (strstr (err, "--data-dir"));
  g_assert_null (strstr (err, "Another data directory"));

  /* The data directory is ready before the shell connects (here to a
   * server that is not there: exit 2, as psql). */
  g_autofree char *good = g_build_filename (f->root, "good", NULL);
  g_autofree char *option = g_strdup_printf ("--data-dir=%s", good);
  const char *accepted[] = { option, "-h", NO_SERVER, "-c", "SELECT 1", NULL };
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tusk (accepted, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "connection"));
  g_assert_true (g_file_test (good, G_FILE_TEST_IS_DIR));

  const char *version[] = { "--version", NULL };
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tusk (version, &out, &err), ==, 0);
  g_assert_true (g_str_has_prefix (out, "tusk " TUSK_VERSION_STRING));

  const char *unknown[] = { "--bogus", NULL };
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tusk (unknown, &out, &err), ==, 2);
  g_assert_nonnull (strstr (err, "--bogus"));
}

/* Reads from @fd until @needle has been seen or the child closed the
 * terminal; returns everything read (transfer full). */
static char *
read_until (int fd, const char *needle)
{
  GString *seen = g_string_new (NULL);
  char buf[512];
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (!(needle && strstr (seen->str, needle))
         && g_get_monotonic_time () < deadline)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n <= 0)
        break; /* EIO: the child closed the terminal */
      g_string_append_len (seen, buf, n);
    }
  return g_string_free (seen, FALSE);
}

static void
test_tusk_asks_at_a_terminal (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autofree char *tusk = g_build_filename (
      tusk_test_env ("TUSK_TEST_BUILD_DIR"), "shell", "tusk", NULL);
  g_autofree char *file = g_build_filename (f->root, "a-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  g_autofree char *bad = g_build_filename (file, "tusk", NULL);
  g_autofree char *good = g_build_filename (f->root, "chosen", NULL);

  int master;
  pid_t pid = forkpty (&master, NULL, NULL, NULL);
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      execl (tusk, tusk, "--data-dir", bad, "-h", NO_SERVER, "-c", "SELECT 1",
             (char *)NULL);
      _exit (127);
    }

  g_autofree char *prompt = read_until (master, "Another data directory");
  g_assert_nonnull (strstr (prompt, bad));
  g_autofree char *answer = g_strdup_printf ("%s\n", good);
  g_assert_cmpint (write (master, answer, strlen (answer)), ==,
                   (ssize_t)strlen (answer));
  g_autofree char *rest = read_until (master, NULL);
  close (master);

  int status;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 2); /* no server there */
  g_assert_nonnull (strstr (rest, good));
  g_assert_true (g_file_test (good, G_FILE_TEST_IS_DIR));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tusk/data-dir/default", test_default_by_build_type);
  g_test_add ("/tusk/data-dir/resolve-order", Fixture, NULL, fixture_set_up,
              test_resolve_order, fixture_tear_down);
  g_test_add ("/tusk/data-dir/created-0700", Fixture, NULL, fixture_set_up,
              test_created_private, fixture_tear_down);
  g_test_add ("/tusk/data-dir/unusable", Fixture, NULL, fixture_set_up,
              test_unusable_paths, fixture_tear_down);
  g_test_add ("/tusk/data-dir/unwritable", Fixture, NULL, fixture_set_up,
              test_unwritable, fixture_tear_down);
  g_test_add ("/tusk/data-dir/tusk-non-interactive", Fixture, NULL,
              fixture_set_up, test_tusk_non_interactive, fixture_tear_down);
  g_test_add ("/tusk/data-dir/tusk-asks-at-a-terminal", Fixture, NULL,
              fixture_set_up, test_tusk_asks_at_a_terminal, fixture_tear_down);
  return g_test_run ();
}
