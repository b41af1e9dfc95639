/* tusk.c: the `tusk` command — psql's options and exit codes, then one of
 * the subcommands (tusk-commands.c), the statements of -c and -f, a script
 * on stdin, or the interactive shell (tusk-repl.c).
 *
 * Exit codes, as psql's: 0 when everything ran, 1 when a statement failed
 * (execution stops at the first failure), 2 when the connection failed,
 * was lost, or the usage was wrong.
 */
#define G_LOG_DOMAIN "tusk-shell"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tusk.h>

#include "tusk-commands.h"
#include "tusk-repl.h"
#include "tusk-shell.h"

static const char usage_text[]
    = "Usage: tusk [OPTIONS] [TARGET [USER]]\n"
      "       tusk [--data-dir DIR] SUBCOMMAND …\n"
      "\n"
      "Tusk is a fast, native PostgreSQL client.  TARGET is a saved "
      "connection's\n"
      "name, a postgresql:// URI, a conninfo string (\"host=… dbname=…\") or "
      "a\n"
      "database name; without one, libpq's defaults and the PG* variables "
      "apply.\n"
      "\n"
      "Connection options:\n"
      "  -h, --host=HOST          server host or socket directory\n"
      "  -p, --port=PORT          server port\n"
      "  -U, --username=USER      database user\n"
      "  -d, --dbname=DBNAME      database (or a URI or conninfo, as "
      "TARGET)\n"
      "\n"
      "Running:\n"
      "  -c, --command=SQL        run SQL (or a backslash command) and exit; "
      "repeatable\n"
      "  -f, --file=FILE          run the statements of FILE (\"-\": stdin) "
      "and exit;\n"
      "                           repeatable, in order with -c\n"
      "  -X, --no-psqlrc          accepted for psql's sake (there is no "
      "startup file)\n"
      "\n"
      "Output:\n"
      "  --format=FORMAT          table (default), csv, json, ndjson, "
      "markdown,\n"
      "                           unaligned\n"
      "  --csv                    --format=csv\n"
      "  -A, --no-align           --format=unaligned\n"
      "  -F, --field-separator=S  the separator of unaligned output "
      "(default \"|\")\n"
      "  -t, --tuples-only        rows only: no header, no footer\n"
      "  -x, --expanded           one record per block\n"
      "  -P null=TEXT, --null=TEXT  how NULL shows (default: nothing)\n"
      "  -P pager=off             never use the pager\n"
      "\n"
      "Other:\n"
      "  --data-dir=DIR           keep Tusk's database and logs in DIR\n"
      "                           (default: $TUSK_DATA_DIR, else the build's "
      "default)\n"
      "  -V, --version            print the version and exit\n"
      "  -?, --help               print this help and exit\n"
      "\n"
      "Subcommands (see tusk SUBCOMMAND --help):\n"
      "  conn, history, saved, schema, export, import\n"
      "\n"
      "Exit status: 0 success, 1 a statement failed, 2 the connection failed "
      "or\n"
      "the usage was wrong.\n"
      "\n"
      "Environment:\n"
      "  PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD …  as in psql; "
      "~/.pgpass too\n"
      "  PAGER            the pager (default: less -SFX)\n"
      "  TUSK_DATA_DIR    the data directory, when --data-dir is not given\n"
      "  TUSK_LOG         log levels, e.g. info,pool=trace\n";

static int G_GNUC_PRINTF (1, 2) usage_error (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr,
           "tusk: %s\n"
           "Try \"tusk --help\" for more information.\n",
           message);
  return TUSK_EXIT_CONNECTION;
}

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

typedef enum
{
  ACTION_COMMAND,
  ACTION_FILE,
} ActionKind;

typedef struct
{
  ActionKind kind;
  const char *text; /* the SQL, or the file name */
} Action;

/* Everything the command line says. */
typedef struct
{
  const char *data_dir;
  const char *target;
  TuskTargetOverrides overrides;
  GArray *actions; /* Action */
  TuskPrintOptions print;
  const char *null_display;
  gboolean no_pager;
  int subcommand; /* index in argv of the subcommand's name, or 0 */
  gboolean help;
  gboolean version;
} Options;

/* Applies "-P NAME=VALUE" (psql's \pset): null, pager, format, expanded,
 * tuples_only, fieldsep. */
static gboolean
apply_pset (Options *options, const char *setting, char **problem)
{
  g_auto (GStrv) parts = g_strsplit (setting, "=", 2);
  const char *name = parts[0];
  const char *value = parts[1];

  if (g_str_equal (name, "null") && value)
    options->null_display = setting + strlen ("null=");
  else if (g_str_equal (name, "pager"))
    options->no_pager
        = value
          && (g_str_equal (value, "off") || g_str_equal (value, "0")
              || g_str_equal (value, "false"));
  else if (g_str_equal (name, "format") && value)
    {
      g_autoptr (GError) error = NULL;
      if (!tusk_format_from_string (value, &options->print.format, &error))
        {
          *problem = g_strdup_printf ("%s (-P format)", error->message);
          return FALSE;
        }
    }
  else if (g_str_equal (name, "expanded") || g_str_equal (name, "x"))
    options->print.expanded = !(value && g_str_equal (value, "off"));
  else if (g_str_equal (name, "tuples_only") || g_str_equal (name, "t"))
    options->print.tuples_only = !(value && g_str_equal (value, "off"));
  else if (g_str_equal (name, "fieldsep") && value)
    options->print.field_separator = setting + strlen ("fieldsep=");
  else
    {
      *problem = g_strdup_printf (
          "unsupported -P setting \"%s\" (known: null, pager, format, "
          "expanded, tuples_only, fieldsep)",
          setting);
      return FALSE;
    }
  return TRUE;
}

/* Long options and whether they take a value. */
static const struct
{
  const char *name;
  char short_name; /* the equivalent short option, or 0 */
  gboolean has_value;
} long_options[] = {
  { "host", 'h', TRUE },
  { "port", 'p', TRUE },
  { "username", 'U', TRUE },
  { "dbname", 'd', TRUE },
  { "command", 'c', TRUE },
  { "file", 'f', TRUE },
  { "no-psqlrc", 'X', FALSE },
  { "no-align", 'A', FALSE },
  { "field-separator", 'F', TRUE },
  { "tuples-only", 't', FALSE },
  { "expanded", 'x', FALSE },
  { "pset", 'P', TRUE },
  { "version", 'V', FALSE },
  { "help", '?', FALSE },
  { "format", 0, TRUE },
  { "csv", 0, FALSE },
  { "null", 0, TRUE },
  { "data-dir", 0, TRUE },
};

/* Applies one option (@letter, or the long @name when @letter is 0) with
 * @value (nullable); FALSE with *@problem set for a bad value. */
static gboolean
apply_option (Options *options, char letter, const char *name,
              const char *value, char **problem)
{
  switch (letter)
    {
      case 'h':
        options->overrides.host = value;
        return TRUE;
      case 'p':
        options->overrides.port = value;
        return TRUE;
      case 'U':
        options->overrides.user = value;
        return TRUE;
      case 'd':
        /* As psql: -d may hold a whole URI or conninfo string. */
        if (strstr (value, "://") || strchr (value, '='))
          options->target = value;
        else
          options->overrides.dbname = value;
        return TRUE;
      case 'c':
      case 'f':
        {
          Action action
              = { letter == 'c' ? ACTION_COMMAND : ACTION_FILE, value };
          g_array_append_val (options->actions, action);
          return TRUE;
        }
      case 'X':
        return TRUE;
      case 'A':
        options->print.format = TUSK_FORMAT_UNALIGNED;
        return TRUE;
      case 'F':
        options->print.field_separator = value;
        return TRUE;
      case 't':
        options->print.tuples_only = TRUE;
        return TRUE;
      case 'x':
        options->print.expanded = TRUE;
        return TRUE;
      case 'P':
        return apply_pset (options, value, problem);
      case 'V':
        options->version = TRUE;
        return TRUE;
      case '?':
        options->help = TRUE;
        return TRUE;
      default:
        break;
    }

  if (g_str_equal (name, "format"))
    {
      g_autoptr (GError) error = NULL;
      if (!tusk_format_from_string (value, &options->print.format, &error))
        {
          *problem = g_strdup_printf ("%s (--format): choose table, csv, "
                                      "json, ndjson, markdown or unaligned",
                                      error->message);
          return FALSE;
        }
    }
  else if (g_str_equal (name, "csv"))
    options->print.format = TUSK_FORMAT_CSV;
  else if (g_str_equal (name, "null"))
    options->null_display = value;
  else if (g_str_equal (name, "data-dir"))
    options->data_dir = value;
  return TRUE;
}

/* Parses argv into @options; returns -1 when all is well, else the exit
 * code after printing what was wrong. */
static int
parse_args (int argc, char **argv, Options *options)
{
  gboolean options_done = FALSE;
  int n_positional = 0;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      g_autofree char *problem = NULL;

      if (options_done || arg[0] != '-' || g_str_equal (arg, "-"))
        {
          if (n_positional == 0 && tusk_commands_is_subcommand (arg))
            {
              options->subcommand = i;
              return -1;
            }
          if (n_positional == 0)
            options->target = arg;
          else if (n_positional == 1 && options->overrides.user == NULL)
            options->overrides.user = arg;
          else
            return usage_error ("extra argument \"%s\" (one TARGET at most)",
                                arg);
          n_positional++;
          continue;
        }
      if (g_str_equal (arg, "--"))
        {
          options_done = TRUE;
          continue;
        }

      if (arg[1] == '-')
        {
          const char *name = arg + 2;
          const char *eq = strchr (name, '=');
          g_autofree char *key
              = eq ? g_strndup (name, eq - name) : g_strdup (name);
          guint k;
          for (k = 0; k < G_N_ELEMENTS (long_options); k++)
            if (g_str_equal (long_options[k].name, key))
              break;
          if (k == G_N_ELEMENTS (long_options))
            return usage_error ("unknown option \"%s\"", arg);
          const char *value = NULL;
          if (long_options[k].has_value)
            {
              if (eq)
                value = eq + 1;
              else if (i + 1 < argc)
                value = argv[++i];
              else
                return usage_error ("option \"--%s\" needs a value", key);
            }
          else if (eq)
            return usage_error ("option \"--%s\" takes no value", key);
          if (!apply_option (options, long_options[k].short_name, key, value,
                             &problem))
            return usage_error ("%s", problem);
          continue;
        }

      /* Short options, possibly grouped ("-At") or with the value attached
       * ("-cSELECT 1"). */
      for (const char *p = arg + 1; *p; p++)
        {
          guint k;
          for (k = 0; k < G_N_ELEMENTS (long_options); k++)
            if (long_options[k].short_name == *p)
              break;
          if (k == G_N_ELEMENTS (long_options))
            return usage_error ("unknown option \"-%c\"%s%s%s", *p,
                                p == arg + 1 ? "" : " in \"",
                                p == arg + 1 ? "" : arg,
                                p == arg + 1 ? "" : "\"");
          const char *value = NULL;
          if (long_options[k].has_value)
            {
              if (p[1])
                value = p + 1;
              else if (i + 1 < argc)
                value = argv[++i];
              else
                return usage_error ("option \"-%c\" needs a value", *p);
            }
          if (!apply_option (options, *p, long_options[k].name, value,
                             &problem))
            return usage_error ("%s", problem);
          if (value)
            break;
        }
    }
  return -1;
}

/* Runs -c and -f in order; TRUE when all succeeded. */
static gboolean
run_actions (TuskShell *shell, GArray *actions)
{
  for (guint i = 0; i < actions->len && !shell->quit; i++)
    {
      Action *action = &g_array_index (actions, Action, i);
      if (action->kind == ACTION_COMMAND)
        {
          if (!tusk_shell_run_sql (shell, action->text, NULL))
            return FALSE;
          continue;
        }
      if (g_str_equal (action->text, "-"))
        {
          if (!tusk_shell_run_stream (shell, stdin, "<stdin>"))
            return FALSE;
          continue;
        }
      FILE *file = fopen (action->text, "r");
      if (file == NULL)
        {
          fprintf (stderr, "tusk: could not open \"%s\" (-f): %s\n",
                   action->text, g_strerror (errno));
          return FALSE;
        }
      gboolean ok = tusk_shell_run_stream (shell, file, action->text);
      fclose (file);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  Options options = { 0 };
  tusk_print_options_init (&options.print);
  options.actions = g_array_new (FALSE, FALSE, sizeof (Action));
  g_autoptr (GArray) actions = options.actions;

  int code = parse_args (argc, argv, &options);
  if (code >= 0)
    return code;
  if (options.version)
    {
      printf ("tusk %s\n", TUSK_VERSION_STRING);
      return TUSK_EXIT_OK;
    }
  if (options.help)
    {
      fputs (usage_text, stdout);
      return TUSK_EXIT_OK;
    }
  if (options.subcommand
      && (actions->len > 0 || options.target || options.overrides.host
          || options.overrides.port || options.overrides.user
          || options.overrides.dbname))
    return usage_error ("options before the subcommand \"%s\" other than "
                        "--data-dir are not used; put them after it",
                        argv[options.subcommand]);

  /* The console shows warnings and errors; the log file keeps the rest. */
  tusk_log_set_console_level (TUSK_LOG_WARN);

  g_autofree char *data_dir = prepare_data_dir (options.data_dir);
  if (data_dir == NULL)
    return TUSK_EXIT_CONNECTION;

  if (options.subcommand)
    return tusk_commands_main (data_dir, argc - options.subcommand,
                               argv + options.subcommand);

  g_autoptr (GError) error = NULL;
  TuskShell *shell = tusk_shell_new (data_dir, &error);
  if (shell == NULL)
    {
      tusk_print_error (stderr, error, NULL, options.print.format);
      return TUSK_EXIT_CONNECTION;
    }
  shell->print = options.print;
  if (options.null_display)
    {
      g_free (shell->null_display);
      shell->null_display = g_strdup (options.null_display);
    }
  shell->print.null_display = shell->null_display;
  shell->pager = !options.no_pager;

  if (!tusk_shell_connect (shell, options.target, &options.overrides, &error))
    {
      tusk_print_error (stderr, error, NULL, shell->print.format);
      tusk_shell_free (shell);
      return TUSK_EXIT_CONNECTION;
    }

  if (actions->len > 0)
    code = run_actions (shell, actions) ? TUSK_EXIT_OK : TUSK_EXIT_FAILED;
  else if (isatty (STDIN_FILENO))
    code = tusk_repl_run (shell);
  else
    code = tusk_shell_run_stream (shell, stdin, "<stdin>") ? TUSK_EXIT_OK
                                                           : TUSK_EXIT_FAILED;
  if (code == TUSK_EXIT_FAILED && shell->connection_lost)
    code = TUSK_EXIT_CONNECTION;
  tusk_shell_free (shell);
  return code;
}
