/* tusk.c: the `tusk` command.  Until the shell lands (issue 8) it prints its
 * version and help, and prepares the data directory and the logs the way
 * the shell will. */
#define G_LOG_DOMAIN "tusk-shell"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tusk.h>

/* Exit codes, as psql's. */
enum
{
  EXIT_OK = 0,
  EXIT_USAGE = 2,
};

static const char usage_text[]
    = "Usage: tusk [OPTIONS] [TARGET]\n"
      "\n"
      "Tusk is a fast, native PostgreSQL client.\n"
      "\n"
      "Options:\n"
      "  --data-dir DIR   keep Tusk's database and logs in DIR\n"
      "                   (default: $TUSK_DATA_DIR, else the build's default)\n"
      "  -V, --version    print the version and exit\n"
      "  -?, --help       print this help and exit\n"
      "\n"
      "Environment:\n"
      "  TUSK_DATA_DIR    the data directory, when --data-dir is not given\n"
      "  TUSK_LOG         log levels, e.g. info,pool=trace\n"
      "\n"
      "The interactive shell is not here yet; this build prepares the data\n"
      "directory and the logs, and `make run` shows the library at work.\n";

/* Asks a person at a terminal for another data directory; returns
 * (transfer full) the answer, or NULL when they chose to exit. */
static char *
ask_for_data_dir (void)
{
  char line[4096];

  fputs ("Another data directory (empty to exit): ", stderr);
  fflush (stderr);
  if (fgets (line, sizeof line, stdin) == NULL)
    return NULL;
  g_strstrip (line);
  return *line ? g_strdup (line) : NULL;
}

/* Resolves and prepares the data directory; returns (transfer full) its
 * path, or NULL after telling the user why. */
static char *
prepare_data_dir (const char *option)
{
  g_autofree char *path = tusk_data_dir_resolve (option);
  gboolean interactive = isatty (STDIN_FILENO) && isatty (STDERR_FILENO);

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      if (tusk_data_dir_ensure (path, &error))
        return g_steal_pointer (&path);

      g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
      fprintf (stderr, "tusk: %s\nHINT: %s\n", info->message, info->hint);
      if (!interactive)
        return NULL;
      g_autofree char *answer = ask_for_data_dir ();
      if (answer == NULL)
        return NULL;
      g_free (path);
      path = g_canonicalize_filename (answer, NULL);
    }
}

int
main (int argc, char **argv)
{
  const char *data_dir_option = NULL;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      if (g_str_equal (arg, "-V") || g_str_equal (arg, "--version"))
        {
          printf ("tusk %s\n", TUSK_VERSION_STRING);
          return EXIT_OK;
        }
      if (g_str_equal (arg, "-?") || g_str_equal (arg, "--help"))
        {
          fputs (usage_text, stdout);
          return EXIT_OK;
        }
      if (g_str_equal (arg, "--data-dir") && i + 1 < argc)
        data_dir_option = argv[++i];
      else if (g_str_has_prefix (arg, "--data-dir="))
        data_dir_option = arg + strlen ("--data-dir=");
      else
        {
          fprintf (stderr,
                   "tusk: unknown option or argument \"%s\"\n"
                   "Try \"tusk --help\" for more information.\n",
                   arg);
          return EXIT_USAGE;
        }
    }

  g_autofree char *data_dir = prepare_data_dir (data_dir_option);
  if (data_dir == NULL)
    return EXIT_USAGE;

  g_autofree char *log_dir = g_build_filename (data_dir, "logs", NULL);
  tusk_log_init (log_dir);
  tusk_info ("tusk %s started; data directory %s", TUSK_VERSION_STRING,
             data_dir);
  printf ("Tusk %s: data directory %s\n", TUSK_VERSION_STRING, data_dir);
  tusk_log_shutdown ();
  return EXIT_OK;
}
