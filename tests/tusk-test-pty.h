/* tusk-test-pty.h: running a program at a terminal of its own (forkpty),
 * for the tests of what a person at a terminal sees: prompts, echo, the
 * pager.  Header-only; link with libutil.  Main thread of the test.
 */
#pragma once

#include <poll.h>
#include <pty.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

typedef struct
{
  int master;
  pid_t pid;
  GString *seen; /* everything the terminal showed; owned */
  gsize matched; /* everything before this was matched already */
} TuskTestPty;

/* Starts @argv (argv[0] a path) with @env at a new terminal of @rows x
 * @cols.  Free with tusk_test_pty_clear() after tusk_test_pty_finish(). */
static inline void
tusk_test_pty_spawn (TuskTestPty *pty, const char *const *argv,
                     char *const *env, unsigned short rows, unsigned short cols)
{
  struct winsize size = { .ws_row = rows, .ws_col = cols };
  pty->seen = g_string_new (NULL);
  pty->matched = 0;
  pty->pid = forkpty (&pty->master, NULL, NULL, &size);
  g_assert_cmpint (pty->pid, >=, 0);
  if (pty->pid == 0)
    {
      execve (argv[0], (char *const *)argv, env);
      _exit (127);
    }
}

/* Reads what the terminal shows until @needle (NULL: the end), failing
 * after 60 s (a hang, not a speed bound). */
static inline void
tusk_test_pty_expect (TuskTestPty *pty, const char *needle)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  for (;;)
    {
      const char *found
          = needle ? strstr (pty->seen->str + pty->matched, needle) : NULL;
      if (found)
        {
          pty->matched = found - pty->seen->str + strlen (needle);
          return;
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("waited in vain for \"%s\"; the terminal shows:\n%s",
                 needle ? needle : "the end", pty->seen->str);
      struct pollfd fd = { .fd = pty->master, .events = POLLIN };
      if (poll (&fd, 1, 100) <= 0)
        continue;
      char buf[4096];
      ssize_t n = read (pty->master, buf, sizeof buf);
      if (n <= 0)
        {
          if (needle)
            g_error ("the program ended before \"%s\":\n%s", needle,
                     pty->seen->str);
          return; /* EIO: the child closed the terminal */
        }
      g_string_append_len (pty->seen, buf, n);
    }
}

/* Types @text. */
static inline void
tusk_test_pty_send (TuskTestPty *pty, const char *text)
{
  g_assert_cmpint (write (pty->master, text, strlen (text)), ==,
                   (gssize)strlen (text));
}

/* Reads to the end and returns the exit code (pty->seen stays readable). */
static inline int
tusk_test_pty_finish (TuskTestPty *pty)
{
  tusk_test_pty_expect (pty, NULL);
  close (pty->master);
  int status;
  g_assert_cmpint (waitpid (pty->pid, &status, 0), ==, pty->pid);
  g_assert_true (WIFEXITED (status));
  return WEXITSTATUS (status);
}

static inline void
tusk_test_pty_clear (TuskTestPty *pty)
{
  g_string_free (pty->seen, TRUE);
}
