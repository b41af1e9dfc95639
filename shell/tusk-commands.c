/* tusk-commands.c: the subcommands: saved connections (`tusk conn …`), the
 * query history, the query library (`tusk saved …`), the schema cache
 * (`tusk schema`) and export/import of everything a person saved.
 *
 * Each subcommand parses its own options (GOptionContext with GLib's help
 * turned off, so that -h is the host as in psql), works on one TuskShell's
 * state and returns psql's exit codes: 0; 1 when the work failed (nothing
 * of that name, storage or keychain trouble, a statement of `saved run`);
 * 2 for wrong usage, invalid input and failed connections.  Invalid input
 * is found before anything is written: every bad option is listed at once,
 * named as the user typed it, and nothing is stored.
 *
 * The main thread never blocks on SQLite writes, the keychain or the
 * network: those run on the state's runtime (run_work ()) while the main
 * context turns.  Storage reads run here, as the repositories allow.
 *
 * Secrets: a password or SSH secret is read from stdin (one line each, the
 * database password first) or from /dev/tty without echo, into a buffer
 * that is wiped before it is freed, and goes nowhere but the keychain.
 * When the keychain is unavailable (libtusk would keep the secret in memory
 * and lose it when this process exits) a command that would store one
 * refuses and stores nothing.
 */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "tusk-shell.h"

/* The longest secret read from stdin or the terminal, in bytes. */
#define SECRET_MAX 4096

/* How many rows `tusk history` shows without --limit. */
#define HISTORY_DEFAULT_LIMIT 50

/* How many `SELECT 1` round trips `tusk conn test` times. */
#define PING_COUNT 5

/* The widest SQL excerpt in `tusk saved list`, in characters. */
#define SQL_EXCERPT_CHARS 60

static const char *const subcommand_names[] = {
  "conn", "history", "saved", "schema", "export", "import",
};

gboolean
tusk_commands_is_subcommand (const char *word)
{
  for (guint i = 0; word && i < G_N_ELEMENTS (subcommand_names); i++)
    if (g_str_equal (word, subcommand_names[i]))
      return TRUE;
  return FALSE;
}

/* ------------------------------------------------------------ help */

static const char conn_help[]
    = "Usage:\n"
      "  tusk conn add NAME (--uri URI | -h HOST [-p PORT] -U USER -d DB) "
      "[OPTION…]\n"
      "  tusk conn edit NAME OPTION…\n"
      "  tusk conn list [--json]\n"
      "  tusk conn show NAME [--json]\n"
      "  tusk conn rm NAME\n"
      "  tusk conn test NAME\n"
      "\n"
      "Saved connections: how to reach a database, kept in Tusk's data\n"
      "directory.  Passwords go to the keychain (Secret Service), never to a\n"
      "file.  NAME cannot be a subcommand (conn, history, saved, schema,\n"
      "export, import).\n"
      "\n"
      "Connection (add, edit):\n"
      "  --uri URI              a postgres:// URI or a conninfo string; -h -p "
      "-U -d\n"
      "                         override its fields (in edit it replaces the "
      "host,\n"
      "                         port, database, user, SSL settings, timeouts "
      "and\n"
      "                         read-only flag)\n"
      "  -h, --host HOST        server host name, IP address or socket "
      "directory\n"
      "  -p, --port PORT        server port (default 5432)\n"
      "  -U, --user USER        user (role) name\n"
      "  -d, --dbname DB        database name\n"
      "  --ssl-mode MODE        disable, prefer (default), require, verify-ca "
      "or\n"
      "                         verify-full\n"
      "  --ssl-root-cert FILE   CA certificate to verify the server with\n"
      "  --ssl-cert FILE        client certificate\n"
      "  --ssl-key FILE         client certificate's key\n"
      "  --connect-timeout SECS seconds to wait for the server (default 10; 0 "
      "waits\n"
      "                         forever)\n"
      "  --statement-timeout SECS\n"
      "                         longest a statement may run (\"default\": 30 "
      "s; "
      "0: no\n"
      "                         limit)\n"
      "  --read-only            the server refuses writes on this connection\n"
      "  --color '#RRGGBB'      the prompt's color\n"
      "\n"
      "Password (kept in the keychain):\n"
      "  --password-stdin       read it from the first line of stdin\n"
      "  --ask-password         ask for it at the terminal, without echo\n"
      "\n"
      "SSH tunnel (add, edit):\n"
      "  --ssh-host HOST        reach the database through this SSH server\n"
      "  --ssh-port PORT        its port (default 22)\n"
      "  --ssh-user USER        the SSH user name\n"
      "  --ssh-key FILE         log in with this private key\n"
      "  --ssh-passphrase-stdin read the key's passphrase from stdin\n"
      "  --ssh-password-stdin   log in with a password read from stdin\n"
      "  --ssh-agent            log in through the SSH agent\n"
      "  With --password-stdin too, the database password is the first line "
      "of\n"
      "  stdin and the SSH secret the second.\n"
      "\n"
      "Only for edit:\n"
      "  --rename NEW           give the connection a new name\n"
      "  --read-write           undo --read-only\n"
      "  --no-ssh               stop using the SSH tunnel (forgetting it)\n"
      "  --no-password          forget the stored password\n"
      "  An empty value unsets --color, --ssl-root-cert, --ssl-cert and "
      "--ssl-key.\n"
      "\n"
      "Other options:\n"
      "  --json                 (list, show) print JSON\n"
      "  --help                 print this help\n"
      "\n"
      "conn test connects, prints the server's version and the round trip "
      "of\n"
      "SELECT 1; it exits 2 when the connection fails.\n";

static const char history_help[]
    = "Usage:\n"
      "  tusk history [TARGET] [--search TEXT] [--limit N] [--json]\n"
      "\n"
      "The statements run on saved connections, newest first.\n"
      "\n"
      "  TARGET          only those of this saved connection\n"
      "  --search TEXT   only statements containing TEXT (ASCII case "
      "ignored)\n"
      "  --limit N       at most N entries (default 50; 0 for all)\n"
      "  --json          print JSON\n"
      "  --help          print this help\n";

static const char saved_help[]
    = "Usage:\n"
      "  tusk saved add NAME (--sql SQL | --file FILE) [--folder PATH]\n"
      "                 [--connection NAME] [--description TEXT]\n"
      "  tusk saved list [--folder PATH] [--json]\n"
      "  tusk saved run NAME [TARGET] [--format FORMAT | --csv]\n"
      "  tusk saved rm NAME\n"
      "\n"
      "The query library.  NAME is unique; FOLDER/NAME also finds a query.\n"
      "\n"
      "  --sql SQL          the query's text\n"
      "  --file FILE        read the query's text from FILE (- for stdin)\n"
      "  --folder PATH      the folder, like reports/monthly (list: this "
      "folder\n"
      "                     and the ones inside it)\n"
      "  --connection NAME  the saved connection it runs on by default\n"
      "  --description TEXT what it is for\n"
      "  --format FORMAT    (run) table, csv, json, ndjson, markdown or "
      "unaligned\n"
      "  --csv              (run) the same as --format csv\n"
      "  --json             (list) print JSON\n"
      "  --help             print this help\n"
      "\n"
      "saved run connects to TARGET (a saved connection's name, a "
      "postgres://\n"
      "URI or a conninfo string), else to the query's connection, else as "
      "psql\n"
      "does (PG* variables); it exits 1 when a statement fails, 2 when the\n"
      "connection does.\n";

static const char schema_help[]
    = "Usage:\n"
      "  tusk schema [TARGET] [--json]\n"
      "\n"
      "What the database holds, from Tusk's schema cache: schemas, tables "
      "and\n"
      "views with their columns, functions, indexes, sequences and enums.\n"
      "TARGET is a saved connection's name, a postgres:// URI or a "
      "conninfo\n"
      "string; without it the PG* variables apply, as in psql.\n"
      "\n"
      "  --json   print JSON\n"
      "  --help   print this help\n";

static const char export_help[]
    = "Usage:\n"
      "  tusk export FILE\n"
      "\n"
      "Writes the saved connections, SSH tunnels, saved queries and settings "
      "to\n"
      "FILE (- for stdout) as JSON, readable only by you.  Never a password "
      "(they\n"
      "stay in the keychain) and never the history.\n";

static const char import_help[]
    = "Usage:\n"
      "  tusk import FILE [--on-conflict skip|replace|rename]\n"
      "\n"
      "Reads what `tusk export` wrote (FILE - for stdin).  The whole file is\n"
      "checked first: when anything is wrong nothing is imported.\n"
      "\n"
      "  --on-conflict skip     keep what is stored (the default)\n"
      "  --on-conflict replace  overwrite it with the imported item\n"
      "  --on-conflict rename   keep both: the imported one becomes "
      "\"X (2)\"\n"
      "  --help                 print this help\n";

/* ------------------------------------------------------------ commands */

typedef struct
{
  const char *data_dir;
  char *label;      /* owned: "conn add", names the command in messages */
  const char *help; /* the usage text of its group */
  TuskShell *shell; /* owned, made by cmd_shell () */
} Cmd;

static int usage_error (Cmd *cmd, const char *format, ...) G_GNUC_PRINTF (2, 3);

static int
usage_error (Cmd *cmd, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr,
           "tusk %s: %s\nTry \"tusk %s --help\" for more information.\n",
           cmd->label, message, cmd->label);
  return TUSK_EXIT_CONNECTION;
}

static void
print_error (Cmd *cmd, const GError *error)
{
  g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
  fprintf (stderr, "tusk %s: %s\n", cmd->label, info->message);
  if (tusk_error_get_detail (error))
    fprintf (stderr, "DETAIL: %s\n", tusk_error_get_detail (error));
  fprintf (stderr, "HINT: %s\n", info->hint);
}

/* Prints @error; returns 2 for invalid input, 1 for the rest. */
static int
error_exit (Cmd *cmd, const GError *error)
{
  print_error (cmd, error);
  return g_error_matches (error, TUSK_ERROR, TUSK_ERROR_VALIDATION)
             ? TUSK_EXIT_CONNECTION
             : TUSK_EXIT_FAILED;
}

/* Returns (transfer none) the command's shell, made on first use with its
 * storage open (every subcommand reads or writes it); NULL after printing
 * why it could not be made. */
static TuskShell *
cmd_shell (Cmd *cmd)
{
  if (cmd->shell == NULL)
    {
      g_autoptr (GError) error = NULL;
      cmd->shell = tusk_shell_new (cmd->data_dir, &error);
      if (cmd->shell
          && tusk_state_open_storage (cmd->shell->state, &error) == NULL)
        g_clear_pointer (&cmd->shell, tusk_shell_free);
      if (cmd->shell == NULL)
        print_error (cmd, error);
    }
  return cmd->shell;
}

/* After cmd_shell (): open. */
static TuskStorage *
cmd_storage (Cmd *cmd)
{
  return tusk_state_get_storage (cmd->shell->state);
}

/* Parses @argv (argv[0] is the command's own name) with @entries
 * (nullable).  Returns -1 with *@rest set to (transfer full) the positional
 * arguments; otherwise the exit code: 0 after printing the help, 2 after a
 * usage message. */
static int
parse_args (Cmd *cmd, const GOptionEntry *entries, int argc, char **argv,
            GStrv *rest)
{
  gboolean help = FALSE;
  const GOptionEntry help_entries[] = {
    { "help", '?', 0, G_OPTION_ARG_NONE, &help, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_set_help_enabled (context, FALSE);
  if (entries)
    g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, help_entries, NULL);

  g_auto (GStrv) args = g_new0 (char *, argc + 1);
  for (int i = 0; i < argc; i++)
    args[i] = g_strdup (argv[i]);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse_strv (context, &args, &error))
    return usage_error (cmd, "%s", error->message);
  if (help)
    {
      fputs (cmd->help, stdout);
      return TUSK_EXIT_OK;
    }

  /* GOption leaves the "--" that ends the options in place. */
  GPtrArray *positional = g_ptr_array_new ();
  gboolean dashes_seen = FALSE;
  for (int i = 1; args[i]; i++)
    {
      if (!dashes_seen && g_str_equal (args[i], "--"))
        {
          dashes_seen = TRUE;
          continue;
        }
      g_ptr_array_add (positional, g_strdup (args[i]));
    }
  g_ptr_array_add (positional, NULL);
  *rest = (GStrv)g_ptr_array_free (positional, FALSE);
  return -1;
}

/* Checks that @rest holds between @min and @max arguments, naming them in
 * @names ("NAME [TARGET]") otherwise.  Returns -1 when it does, else 2. */
static int
expect_args (Cmd *cmd, GStrv rest, guint min, guint max, const char *names)
{
  guint n = g_strv_length (rest);
  if (n < min)
    return usage_error (cmd, "missing %s", names);
  if (n > max)
    return usage_error (cmd, "unexpected argument \"%s\" (expected %s)",
                        rest[max], names);
  return -1;
}

/* ------------------------------------------------ blocking work, off the
 * main thread */

typedef gboolean (*WorkFunc) (TuskState *state, gpointer data,
                              GCancellable *cancellable, GError **error);

typedef struct
{
  TuskState *state;
  WorkFunc func;
  gpointer data;
  gboolean done;
  gboolean ok;
  GError *error;
} Work;

static void
work_thread (GTask *task, gpointer source, gpointer task_data,
             GCancellable *cancellable)
{
  Work *work = task_data;
  GError *error = NULL;
  (void)source;
  if (work->func (work->state, work->data, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
work_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Work *work = user_data;
  (void)source;
  work->ok = g_task_propagate_boolean (G_TASK (result), &work->error);
  work->done = TRUE;
}

/* Runs @func on the state's runtime and turns the main context until it
 * has returned: the main thread never blocks on a write, the keychain or
 * the network.  @data is borrowed for the call. */
static gboolean
run_work (TuskState *state, WorkFunc func, gpointer data, GError **error)
{
  Work work = { state, func, data, FALSE, FALSE, NULL };
  GMainContext *context = g_main_context_ref_thread_default ();
  GTask *task = g_task_new (NULL, NULL, work_done, &work);
  g_task_set_task_data (task, &work, NULL);
  tusk_runtime_run_in_thread (tusk_state_get_runtime (state), task,
                              work_thread);
  g_object_unref (task);
  while (!work.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_unref (context);
  if (!work.ok)
    {
      g_propagate_error (error, work.error);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  TuskCredentialKind kind;
  const char *id;
  gboolean stored;
} HasJob;

static gboolean
has_work (TuskState *state, gpointer data, GCancellable *cancellable,
          GError **error)
{
  HasJob *job = data;
  g_autoptr (GError) local = NULL;
  job->stored
      = tusk_credentials_has_sync (tusk_state_get_credentials (state),
                                   job->kind, job->id, cancellable, &local);
  if (local)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  return TRUE;
}

/* "stored in the keychain", "not stored", or why it is not known;
 * (transfer full). */
static char *
describe_secret (TuskState *state, TuskCredentialKind kind, const char *id)
{
  TuskCredentials *credentials = tusk_state_get_credentials (state);
  if (!tusk_credentials_is_available (credentials))
    return g_strdup_printf (
        "unknown (the keychain is unavailable: %s)",
        tusk_credentials_get_unavailable_reason (credentials));
  HasJob job = { kind, id, FALSE };
  g_autoptr (GError) error = NULL;
  if (!run_work (state, has_work, &job, &error))
    return g_strdup_printf ("unknown (%s)", error->message);
  return g_strdup (job.stored ? "stored in the keychain" : "not stored");
}

/* ------------------------------------------------------------ secrets */

static void
wipe_free (char *secret)
{
  if (secret)
    {
      explicit_bzero (secret, strlen (secret));
      g_free (secret);
    }
}

typedef char Secret;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Secret, wipe_free)

/* Reads one line, without its end, from @fd byte by byte (no stdio buffer
 * keeps a copy).  Returns (transfer full) the line, to be freed with
 * wipe_free (), or NULL with @error naming @what when there is none, it is
 * empty or longer than SECRET_MAX. */
static char *
read_secret_line (int fd, const char *what, GError **error)
{
  char *buffer = g_malloc0 (SECRET_MAX + 1);
  gsize n = 0;
  gboolean got_any = FALSE;
  gboolean too_long = FALSE;

  for (;;)
    {
      char c;
      ssize_t r = read (fd, &c, 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int saved_errno = errno;
          wipe_free (buffer);
          tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL,
                          "Could not read %s: %s", what,
                          g_strerror (saved_errno));
          return NULL;
        }
      if (r == 0)
        break;
      got_any = TRUE;
      if (c == '\n')
        break;
      if (n < SECRET_MAX)
        buffer[n++] = c;
      else
        too_long = TRUE;
      c = 0;
    }
  if (n > 0 && buffer[n - 1] == '\r')
    buffer[--n] = '\0';

  if (!got_any || n == 0 || too_long)
    {
      wipe_free (buffer);
      tusk_set_error (
          error, TUSK_ERROR_VALIDATION,
          "Give the secret as one line, e.g. printf '%s\\n' \"$PW\" | tusk …",
          "%s %s", what,
          !got_any   ? "ended before a line was read"
          : too_long ? "gave a line longer than 4096 bytes"
                     : "gave an empty line");
      return NULL;
    }
  return buffer;
}

/* Asks for a secret on /dev/tty without echo.  Returns (transfer full) it,
 * to be freed with wipe_free (), or NULL with @error. */
static char *
ask_secret (const char *prompt, GError **error)
{
  int fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    {
      tusk_set_error (error, TUSK_ERROR_VALIDATION,
                      "Pipe the password in with --password-stdin instead.",
                      "--ask-password needs a terminal (/dev/tty: %s)",
                      g_strerror (errno));
      return NULL;
    }

  struct termios saved, quiet;
  gboolean restore = tcgetattr (fd, &saved) == 0;
  if (restore)
    {
      quiet = saved;
      quiet.c_lflag &= ~(tcflag_t)ECHO;
      quiet.c_lflag |= ECHONL;
      tcsetattr (fd, TCSAFLUSH, &quiet);
    }
  if (write (fd, prompt, strlen (prompt)) < 0)
    {
      /* The read below still works; the person sees no prompt. */
    }
  char *secret = read_secret_line (fd, "the terminal", error);
  if (restore)
    tcsetattr (fd, TCSAFLUSH, &saved);
  close (fd);
  return secret;
}

/* ------------------------------------------------------------ problems */

/* Everything wrong with one command line, each named by the option that
 * sets it, so that one run shows them all. */
typedef struct
{
  GPtrArray *items;    /* char *: "OPTION: what is wrong" */
  GHashTable *options; /* the OPTIONs named so far */
  GString *hint;       /* the library's hints */
} Problems;

static void
problems_init (Problems *problems)
{
  problems->items = g_ptr_array_new_with_free_func (g_free);
  problems->options
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  problems->hint = g_string_new (NULL);
}

static void
problems_clear (Problems *problems)
{
  g_clear_pointer (&problems->items, g_ptr_array_unref);
  g_clear_pointer (&problems->options, g_hash_table_unref);
  if (problems->hint)
    g_string_free (problems->hint, TRUE);
  problems->hint = NULL;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Problems, problems_clear)

static void problems_add (Problems *problems, const char *option,
                          const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
problems_add (Problems *problems, const char *option, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_ptr_array_add (problems->items,
                   g_strdup_printf ("%s: %s", option, message));
  g_hash_table_add (problems->options, g_strdup (option));
}

/* Which option sets each field named by the library's validation. */
static const struct
{
  const char *field;
  const char *option;
} field_options[] = {
  { "name", "NAME" },
  { "host", "-h HOST" },
  { "port", "-p PORT" },
  { "database", "-d DB" },
  { "username", "-U USER" },
  { "ssl_mode", "--ssl-mode" },
  { "ssl_root_cert", "--ssl-root-cert" },
  { "ssl_cert", "--ssl-cert" },
  { "ssl_key", "--ssl-key" },
  { "connect_timeout_secs", "--connect-timeout" },
  { "statement_timeout_secs", "--statement-timeout" },
  { "application_name", "--uri (application_name)" },
  { "color", "--color" },
  { "ssh_tunnel.name", "NAME" },
  { "ssh_tunnel.host", "--ssh-host" },
  { "ssh_tunnel.port", "--ssh-port" },
  { "ssh_tunnel.username", "--ssh-user" },
  { "ssh_tunnel.key_path", "--ssh-key" },
  { "sql", "--sql" },
  { "folder_path", "--folder" },
  { "description", "--description" },
};

/* Adds the problems of a TUSK_ERROR_VALIDATION whose message is "What:
 * field: rule; field: rule" (libtusk's validation), skipping options
 * already named. */
static void
problems_add_validation (Problems *problems, const GError *error)
{
  const char *colon = strstr (error->message, ": ");
  if (colon == NULL)
    {
      problems_add (problems, "input", "%s", error->message);
      return;
    }
  g_auto (GStrv) entries = g_strsplit (colon + 2, "; ", -1);
  gboolean added = FALSE;
  for (guint i = 0; entries[i]; i++)
    {
      const char *entry = entries[i];
      const char *sep = strstr (entry, ": ");
      g_autofree char *field
          = sep ? g_strndup (entry, sep - entry) : g_strdup ("input");
      const char *rule = sep ? sep + 2 : entry;
      const char *option = field;
      for (guint j = 0; j < G_N_ELEMENTS (field_options); j++)
        if (g_str_equal (field, field_options[j].field))
          option = field_options[j].option;
      if (!g_hash_table_contains (problems->options, option))
        {
          problems_add (problems, option, "%s", rule);
          added = TRUE;
        }
    }
  const char *hint = tusk_error_get_hint (error);
  if (added && hint && *hint && strstr (problems->hint->str, hint) == NULL)
    g_string_append_printf (problems->hint, "%s%s",
                            problems->hint->len ? " " : "", hint);
}

/* Prints the problems, if any, and returns 2; -1 when there are none. */
static int
problems_report (Cmd *cmd, Problems *problems, const char *what)
{
  if (problems->items->len == 0)
    return -1;
  fprintf (stderr, "tusk %s: %s; nothing was saved:\n", cmd->label, what);
  for (guint i = 0; i < problems->items->len; i++)
    fprintf (stderr, "  %s\n", (const char *)problems->items->pdata[i]);
  if (problems->hint->len)
    fprintf (stderr, "HINT: %s\n", problems->hint->str);
  fprintf (stderr, "Try \"tusk %s --help\" for the options.\n", cmd->label);
  return TUSK_EXIT_CONNECTION;
}

/* ------------------------------------------------------------ output */

static void
json_add_string (JsonBuilder *builder, const char *key, const char *value)
{
  json_builder_set_member_name (builder, key);
  if (value == NULL)
    json_builder_add_null_value (builder);
  else if (g_utf8_validate (value, -1, NULL))
    json_builder_add_string_value (builder, value);
  else
    {
      g_autofree char *valid = g_utf8_make_valid (value, -1);
      json_builder_add_string_value (builder, valid);
    }
}

static void
json_add_int (JsonBuilder *builder, const char *key, gint64 value)
{
  json_builder_set_member_name (builder, key);
  json_builder_add_int_value (builder, value);
}

/* @value, or null when it is -1 (unknown). */
static void
json_add_int_or_null (JsonBuilder *builder, const char *key, gint64 value)
{
  json_builder_set_member_name (builder, key);
  if (value < 0)
    json_builder_add_null_value (builder);
  else
    json_builder_add_int_value (builder, value);
}

static void
json_add_bool (JsonBuilder *builder, const char *key, gboolean value)
{
  json_builder_set_member_name (builder, key);
  json_builder_add_boolean_value (builder, value);
}

/* Prints the builder's document, pretty, with a final newline. */
static void
print_json (JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_pretty (generator, TRUE);
  json_generator_set_root (generator, root);
  gsize length = 0;
  g_autofree char *text = json_generator_to_data (generator, &length);
  fwrite (text, 1, length, stdout);
  fputc ('\n', stdout);
}

static glong
text_width (const char *text)
{
  return g_utf8_validate (text, -1, NULL) ? g_utf8_strlen (text, -1)
                                          : (glong)strlen (text);
}

/* Prints an aligned table in psql's style: a header, a rule, the rows and
 * "(N rows)".  @rows holds GStrv of @n_columns cells each. */
static void
print_table (const char *const *headers, guint n_columns, GPtrArray *rows)
{
  g_autofree glong *widths = g_new0 (glong, n_columns);
  for (guint c = 0; c < n_columns; c++)
    widths[c] = text_width (headers[c]);
  for (guint r = 0; r < rows->len; r++)
    {
      char **cells = rows->pdata[r];
      for (guint c = 0; c < n_columns; c++)
        widths[c] = MAX (widths[c], text_width (cells[c]));
    }

  for (guint c = 0; c < n_columns; c++)
    {
      glong pad = widths[c] - text_width (headers[c]);
      printf ("%s %s%*s", c ? " |" : "", headers[c],
              c + 1 < n_columns ? (int)pad : 0, "");
    }
  putchar ('\n');
  for (guint c = 0; c < n_columns; c++)
    {
      if (c)
        putchar ('+');
      for (glong i = 0; i < widths[c] + 2; i++)
        putchar ('-');
    }
  putchar ('\n');
  for (guint r = 0; r < rows->len; r++)
    {
      char **cells = rows->pdata[r];
      for (guint c = 0; c < n_columns; c++)
        {
          glong pad = widths[c] - text_width (cells[c]);
          printf ("%s %s%*s", c ? " |" : "", cells[c],
                  c + 1 < n_columns ? (int)pad : 0, "");
        }
      putchar ('\n');
    }
  printf ("(%u row%s)\n", rows->len, rows->len == 1 ? "" : "s");
}

/* "user@host:port/database"; (transfer full). */
static char *
describe_target (const TuskConnectionConfig *config)
{
  return g_strdup_printf ("%s@%s:%d/%s",
                          config->username ? config->username : "?",
                          config->host ? config->host : "?", config->port,
                          config->database ? config->database : "?");
}

/* "user@host:port (key /path)"; (transfer full). */
static char *
describe_tunnel (const TuskSshTunnelConfig *tunnel)
{
  if (tunnel->auth_method == TUSK_SSH_AUTH_KEY)
    return g_strdup_printf ("%s@%s:%d (key %s)", tunnel->username, tunnel->host,
                            tunnel->port, tunnel->key_path);
  return g_strdup_printf ("%s@%s:%d (%s)", tunnel->username, tunnel->host,
                          tunnel->port,
                          tusk_ssh_auth_method_to_string (tunnel->auth_method));
}

/* ------------------------------------------------------ connection JSON */

static void
json_add_tunnel (JsonBuilder *builder, const TuskSshTunnelConfig *tunnel)
{
  json_builder_set_member_name (builder, "ssh_tunnel");
  if (tunnel == NULL)
    {
      json_builder_add_null_value (builder);
      return;
    }
  json_builder_begin_object (builder);
  json_add_string (builder, "id", tunnel->id);
  json_add_string (builder, "name", tunnel->name);
  json_add_string (builder, "host", tunnel->host);
  json_add_int (builder, "port", tunnel->port);
  json_add_string (builder, "username", tunnel->username);
  json_add_string (builder, "auth_method",
                   tusk_ssh_auth_method_to_string (tunnel->auth_method));
  json_add_string (builder, "key_path", tunnel->key_path);
  json_builder_end_object (builder);
}

/* Adds @config's fields to the open object; never a password (a config has
 * none). */
static void
json_add_connection_fields (JsonBuilder *builder,
                            const TuskConnectionConfig *config)
{
  g_autofree char *uri = tusk_connection_config_to_uri (config);
  json_add_string (builder, "id", config->id);
  json_add_string (builder, "name", config->name);
  json_add_string (builder, "host", config->host);
  json_add_int (builder, "port", config->port);
  json_add_string (builder, "database", config->database);
  json_add_string (builder, "username", config->username);
  json_add_string (builder, "uri", uri);
  json_add_string (builder, "ssl_mode",
                   tusk_ssl_mode_to_string (config->ssl_mode));
  json_add_string (builder, "ssl_root_cert", config->ssl_root_cert);
  json_add_string (builder, "ssl_cert", config->ssl_cert);
  json_add_string (builder, "ssl_key", config->ssl_key);
  json_add_bool (builder, "read_only", config->options.read_only);
  json_add_string (builder, "color", config->color);
  json_add_int (builder, "connect_timeout_secs",
                config->options.connect_timeout_secs);
  json_add_int_or_null (builder, "statement_timeout_secs",
                        config->options.statement_timeout_secs);
  json_add_string (builder, "application_name",
                   config->options.application_name);
  json_add_string (builder, "last_connected_at", config->last_connected_at);
  json_add_tunnel (builder, config->ssh_tunnel);
}

/* ------------------------------------------------------ connection options */

typedef struct
{
  char *uri, *host, *port, *user, *dbname;
  char *ssl_mode, *ssl_root_cert, *ssl_cert, *ssl_key;
  char *connect_timeout, *statement_timeout;
  gboolean read_only, read_write;
  char *color;
  gboolean password_stdin, ask_password, no_password;
  char *ssh_host, *ssh_port, *ssh_user, *ssh_key;
  gboolean ssh_password_stdin, ssh_passphrase_stdin, ssh_agent, no_ssh;
  char *rename;
  gboolean json;
} ConnOptions;

static void
conn_options_clear (ConnOptions *o)
{
  /* A URI may hold a password. */
  if (o->uri)
    wipe_free (g_steal_pointer (&o->uri));
  char **strings[] = {
    &o->host,
    &o->port,
    &o->user,
    &o->dbname,
    &o->ssl_mode,
    &o->ssl_root_cert,
    &o->ssl_cert,
    &o->ssl_key,
    &o->connect_timeout,
    &o->statement_timeout,
    &o->color,
    &o->ssh_host,
    &o->ssh_port,
    &o->ssh_user,
    &o->ssh_key,
    &o->rename,
  };
  for (guint i = 0; i < G_N_ELEMENTS (strings); i++)
    g_clear_pointer (strings[i], g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ConnOptions, conn_options_clear)

/* Parses the options of conn add / edit / list / show into @o. */
static int
parse_conn_options (Cmd *cmd, ConnOptions *o, int argc, char **argv,
                    GStrv *rest)
{
#define STRING(l, s, f)                                                        \
  {                                                                            \
    l, s, 0, G_OPTION_ARG_FILENAME, &o->f, NULL, NULL                          \
  }
#define FLAG(l, f)                                                             \
  {                                                                            \
    l, 0, 0, G_OPTION_ARG_NONE, &o->f, NULL, NULL                              \
  }
  const GOptionEntry entries[] = {
    STRING ("uri", 0, uri),
    STRING ("host", 'h', host),
    STRING ("port", 'p', port),
    STRING ("user", 'U', user),
    STRING ("dbname", 'd', dbname),
    STRING ("ssl-mode", 0, ssl_mode),
    STRING ("ssl-root-cert", 0, ssl_root_cert),
    STRING ("ssl-cert", 0, ssl_cert),
    STRING ("ssl-key", 0, ssl_key),
    STRING ("connect-timeout", 0, connect_timeout),
    STRING ("statement-timeout", 0, statement_timeout),
    FLAG ("read-only", read_only),
    FLAG ("read-write", read_write),
    STRING ("color", 0, color),
    FLAG ("password-stdin", password_stdin),
    FLAG ("ask-password", ask_password),
    FLAG ("no-password", no_password),
    STRING ("ssh-host", 0, ssh_host),
    STRING ("ssh-port", 0, ssh_port),
    STRING ("ssh-user", 0, ssh_user),
    STRING ("ssh-key", 0, ssh_key),
    FLAG ("ssh-password-stdin", ssh_password_stdin),
    FLAG ("ssh-passphrase-stdin", ssh_passphrase_stdin),
    FLAG ("ssh-agent", ssh_agent),
    FLAG ("no-ssh", no_ssh),
    STRING ("rename", 0, rename),
    FLAG ("json", json),
    G_OPTION_ENTRY_NULL,
  };
#undef STRING
#undef FLAG
  return parse_args (cmd, entries, argc, argv, rest);
}

static gboolean
conn_options_touch_ssh (const ConnOptions *o)
{
  return o->ssh_host || o->ssh_port || o->ssh_user || o->ssh_key
         || o->ssh_password_stdin || o->ssh_passphrase_stdin || o->ssh_agent;
}

/* Whether @o asks to change anything of a connection (edit). */
static gboolean
conn_options_any_change (const ConnOptions *o)
{
  return o->uri || o->host || o->port || o->user || o->dbname || o->ssl_mode
         || o->ssl_root_cert || o->ssl_cert || o->ssl_key || o->connect_timeout
         || o->statement_timeout || o->read_only || o->read_write || o->color
         || o->password_stdin || o->ask_password || o->no_password
         || conn_options_touch_ssh (o) || o->no_ssh || o->rename;
}

/* Options that only mean something to some conn commands. */
static int
refuse_options (Cmd *cmd, const ConnOptions *o, gboolean edit_allowed,
                gboolean change_allowed, gboolean json_allowed)
{
  if (!edit_allowed)
    {
      const char *edit_only = o->rename        ? "--rename"
                              : o->read_write  ? "--read-write"
                              : o->no_ssh      ? "--no-ssh"
                              : o->no_password ? "--no-password"
                                               : NULL;
      if (edit_only)
        return usage_error (cmd, "%s is only for \"tusk conn edit\"",
                            edit_only);
    }
  if (!change_allowed && conn_options_any_change (o))
    return usage_error (cmd, "takes no connection options (they are for "
                             "\"tusk conn add\" and \"tusk conn edit\")");
  if (!json_allowed && o->json)
    return usage_error (cmd, "--json is only for list and show");
  return -1;
}

/* A connection name must say which connection it is wherever a TARGET is
 * read: not a subcommand, not an option, not a URI or conninfo string. */
static void
check_name (const char *name, const char *option, Problems *problems)
{
  for (guint i = 0; i < G_N_ELEMENTS (subcommand_names); i++)
    if (g_ascii_strcasecmp (name, subcommand_names[i]) == 0)
      {
        problems_add (problems, option,
                      "\"%s\" is a subcommand (tusk %s …), so it cannot name "
                      "a connection; choose another name",
                      name, subcommand_names[i]);
        return;
      }
  if (name[0] == '-')
    problems_add (problems, option,
                  "must not start with '-' (it would read as an option)");
  else if (g_str_has_prefix (name, "postgres://")
           || g_str_has_prefix (name, "postgresql://") || strchr (name, '='))
    problems_add (problems, option,
                  "\"%s\" reads as a URI or conninfo string; choose a name "
                  "without \"://\" and '='",
                  name);
}

/* Parses a port; FALSE after adding a problem. */
static gboolean
parse_port (const char *text, const char *option, int *port, Problems *problems)
{
  guint64 value;
  if (!g_ascii_string_to_unsigned (text, 10, 1, 65535, &value, NULL))
    {
      problems_add (problems, option, "\"%s\" is not a port number (1-65535)",
                    text);
      return FALSE;
    }
  *port = (int)value;
  return TRUE;
}

/* Sets *@field to the absolute path of @value, checking that the file
 * exists; an empty @value unsets it. */
static void
set_path (char **field, const char *value, const char *option,
          Problems *problems)
{
  if (*value == '\0')
    {
      g_clear_pointer (field, g_free);
      return;
    }
  g_autofree char *path = g_canonicalize_filename (value, NULL);
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      problems_add (problems, option, "no such file: %s", path);
      return;
    }
  g_free (*field);
  *field = g_steal_pointer (&path);
}

static gboolean
is_hex_color (const char *text)
{
  if (text[0] != '#' || strlen (text) != 7)
    return FALSE;
  for (int i = 1; i < 7; i++)
    if (!g_ascii_isxdigit (text[i]))
      return FALSE;
  return TRUE;
}

/* Copies what a URI or conninfo string describes from @parsed. */
static void
copy_target (TuskConnectionConfig *config, const TuskConnectionConfig *parsed)
{
  g_free (config->host);
  config->host = g_strdup (parsed->host);
  config->port = parsed->port;
  g_free (config->database);
  config->database = g_strdup (parsed->database);
  g_free (config->username);
  config->username = g_strdup (parsed->username);
  config->ssl_mode = parsed->ssl_mode;
  g_free (config->ssl_root_cert);
  config->ssl_root_cert = g_strdup (parsed->ssl_root_cert);
  g_free (config->ssl_cert);
  config->ssl_cert = g_strdup (parsed->ssl_cert);
  g_free (config->ssl_key);
  config->ssl_key = g_strdup (parsed->ssl_key);
  config->options.connect_timeout_secs = parsed->options.connect_timeout_secs;
  config->options.statement_timeout_secs
      = parsed->options.statement_timeout_secs;
  config->options.read_only = parsed->options.read_only;
  g_free (config->options.application_name);
  config->options.application_name
      = g_strdup (parsed->options.application_name);
}

/* Applies the database options of @o to @config.  *@uri_password gets the
 * URI's password, if it has one (transfer full: wipe_free ()). */
static void
apply_conn_options (const ConnOptions *o, TuskConnectionConfig *config,
                    Problems *problems, char **uri_password)
{
  if (o->uri)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskConnectionConfig) parsed
          = tusk_connection_config_new_from_string (o->uri, uri_password,
                                                    &error);
      if (parsed)
        copy_target (config, parsed);
      else
        problems_add (problems, "--uri", "%s", error->message);
    }
  if (o->host)
    {
      g_free (config->host);
      config->host = *o->host ? g_strdup (o->host) : NULL;
    }
  if (o->port)
    parse_port (o->port, "-p PORT", &config->port, problems);
  if (o->user)
    {
      g_free (config->username);
      config->username = *o->user ? g_strdup (o->user) : NULL;
    }
  if (o->dbname)
    {
      g_free (config->database);
      config->database = *o->dbname ? g_strdup (o->dbname) : NULL;
    }
  if (o->ssl_mode
      && !tusk_ssl_mode_from_string (o->ssl_mode, &config->ssl_mode))
    problems_add (problems, "--ssl-mode",
                  "unknown mode \"%s\"; use disable, prefer, require, "
                  "verify-ca or verify-full",
                  o->ssl_mode);
  if (o->ssl_root_cert)
    set_path (&config->ssl_root_cert, o->ssl_root_cert, "--ssl-root-cert",
              problems);
  if (o->ssl_cert)
    set_path (&config->ssl_cert, o->ssl_cert, "--ssl-cert", problems);
  if (o->ssl_key)
    set_path (&config->ssl_key, o->ssl_key, "--ssl-key", problems);
  if (o->connect_timeout)
    {
      guint64 value;
      if (g_ascii_string_to_unsigned (o->connect_timeout, 10, 0, G_MAXINT,
                                      &value, NULL))
        config->options.connect_timeout_secs = (int)value;
      else
        problems_add (problems, "--connect-timeout",
                      "\"%s\" is not a number of seconds (0 waits forever)",
                      o->connect_timeout);
    }
  if (o->statement_timeout)
    {
      guint64 value;
      if (g_str_equal (o->statement_timeout, "default"))
        config->options.statement_timeout_secs = -1;
      else if (g_ascii_string_to_unsigned (o->statement_timeout, 10, 0,
                                           G_MAXINT / 1000, &value, NULL))
        config->options.statement_timeout_secs = (int)value;
      else
        problems_add (problems, "--statement-timeout",
                      "\"%s\" is not a number of seconds (0 for no limit, "
                      "\"default\" for 30 s)",
                      o->statement_timeout);
    }
  if (o->read_only && o->read_write)
    problems_add (problems, "--read-only",
                  "cannot be combined with --read-write; choose one");
  else if (o->read_only)
    config->options.read_only = TRUE;
  else if (o->read_write)
    config->options.read_only = FALSE;
  if (o->color)
    {
      if (*o->color == '\0')
        g_clear_pointer (&config->color, g_free);
      else if (is_hex_color (o->color))
        {
          g_free (config->color);
          config->color = g_strdup (o->color);
        }
      else
        problems_add (problems, "--color",
                      "\"%s\" is not a color: write # and six hex digits, "
                      "like #3b82f6",
                      o->color);
    }

  /* Say which option supplies what is missing. */
  if (config->host == NULL)
    problems_add (problems, "-h HOST",
                  "required (or a host in --uri; a socket directory works)");
  if (config->username == NULL)
    problems_add (problems, "-U USER", "required (or a user in --uri)");
  if (config->database == NULL)
    problems_add (problems, "-d DB", "required (or a database in --uri)");
}

/* Applies the SSH options of @o to @config's tunnel, making one when it has
 * none.  Returns TRUE when the tunnel changed. */
static gboolean
apply_ssh_options (const ConnOptions *o, TuskConnectionConfig *config,
                   Problems *problems)
{
  if (o->no_ssh)
    {
      if (conn_options_touch_ssh (o))
        problems_add (problems, "--no-ssh",
                      "cannot be combined with the other --ssh-* options");
      g_clear_pointer (&config->ssh_tunnel, tusk_ssh_tunnel_config_free);
      return FALSE;
    }
  if (!conn_options_touch_ssh (o))
    return FALSE;

  TuskSshTunnelConfig *tunnel = config->ssh_tunnel;
  gboolean is_new = tunnel == NULL;
  if (is_new)
    {
      tunnel = config->ssh_tunnel = tusk_ssh_tunnel_config_new ();
      tunnel->name = g_strdup (config->name);
      if (o->ssh_host == NULL)
        problems_add (problems, "--ssh-host",
                      "required for an SSH tunnel (the SSH server)");
      if (o->ssh_user == NULL)
        problems_add (problems, "--ssh-user",
                      "required for an SSH tunnel (the SSH user name)");
    }

  int methods = (o->ssh_key != NULL) + !!o->ssh_password_stdin + !!o->ssh_agent;
  if (methods > 1)
    problems_add (problems, "--ssh-key, --ssh-password-stdin, --ssh-agent",
                  "choose one way to log in to the SSH server");
  else if (methods == 0 && is_new)
    problems_add (problems, "--ssh-key, --ssh-password-stdin, --ssh-agent",
                  "choose how to log in to the SSH server");

  if (o->ssh_host)
    {
      g_free (tunnel->host);
      tunnel->host = *o->ssh_host ? g_strdup (o->ssh_host) : NULL;
    }
  if (o->ssh_port)
    parse_port (o->ssh_port, "--ssh-port", &tunnel->port, problems);
  if (o->ssh_user)
    {
      g_free (tunnel->username);
      tunnel->username = *o->ssh_user ? g_strdup (o->ssh_user) : NULL;
    }
  if (methods == 1)
    {
      if (o->ssh_key)
        {
          tunnel->auth_method = TUSK_SSH_AUTH_KEY;
          if (*o->ssh_key == '\0')
            problems_add (problems, "--ssh-key", "needs the private key file");
          else
            set_path (&tunnel->key_path, o->ssh_key, "--ssh-key", problems);
        }
      else
        {
          tunnel->auth_method
              = o->ssh_agent ? TUSK_SSH_AUTH_AGENT : TUSK_SSH_AUTH_PASSWORD;
          g_clear_pointer (&tunnel->key_path, g_free);
        }
    }
  if (o->ssh_passphrase_stdin && tunnel->auth_method != TUSK_SSH_AUTH_KEY)
    problems_add (problems, "--ssh-passphrase-stdin",
                  "only for key logins (--ssh-key)");
  return TRUE;
}

/* Reads the secrets @o asks for: the database password first (stdin or
 * the terminal), then the SSH secret (stdin).  FALSE with @error. */
static gboolean
read_secrets (const ConnOptions *o, const TuskConnectionConfig *config,
              char **password, char **ssh_secret, GError **error)
{
  if (o->password_stdin)
    *password
        = read_secret_line (STDIN_FILENO, "--password-stdin: stdin", error);
  else if (o->ask_password)
    {
      g_autofree char *target = describe_target (config);
      g_autofree char *prompt
          = g_strdup_printf ("Password for %s (%s): ", config->name, target);
      *password = ask_secret (prompt, error);
    }
  if ((o->password_stdin || o->ask_password) && *password == NULL)
    return FALSE;

  if (o->ssh_password_stdin || o->ssh_passphrase_stdin)
    {
      *ssh_secret = read_secret_line (STDIN_FILENO,
                                      o->ssh_password_stdin
                                          ? "--ssh-password-stdin: stdin"
                                          : "--ssh-passphrase-stdin: stdin",
                                      error);
      if (*ssh_secret == NULL)
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------- saving connections */

typedef struct
{
  const TuskConnectionConfig *config; /* what to save */
  const TuskConnectionConfig *old;    /* nullable: as stored (edit) */
  gboolean save_tunnel;               /* config->ssh_tunnel is new or changed */
  const char *password;               /* nullable: store it */
  gboolean forget_password;
  const char *ssh_secret; /* nullable: store it */
  gboolean forget_ssh_secret;
  gboolean renamed;   /* relabel the secrets that stay */
  char *cleanup_note; /* out, owned: what the clean-up after saving could
                         not do */
} SaveJob;

/* Deletes the tunnel @tunnel_id (and its secret) unless a connection still
 * uses it. */
static gboolean
drop_tunnel_if_unused (TuskState *state, const char *tunnel_id,
                       GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) all
      = tusk_connection_repo_load_all (tusk_state_get_storage (state), error);
  if (all == NULL)
    return FALSE;
  for (guint i = 0; i < all->len; i++)
    {
      const TuskConnectionConfig *other = all->pdata[i];
      if (other->ssh_tunnel && g_str_equal (other->ssh_tunnel->id, tunnel_id))
        return TRUE;
    }
  return tusk_state_delete_tunnel_sync (state, tunnel_id, cancellable, error);
}

/* Stores the secret of @id again under the new @label. */
static gboolean
relabel_secret (TuskState *state, TuskCredentialKind kind, const char *id,
                const char *label, GCancellable *cancellable, GError **error)
{
  TuskCredentials *credentials = tusk_state_get_credentials (state);
  GError *local = NULL;
  g_autoptr (Secret) secret = tusk_credentials_lookup_sync (
      credentials, kind, id, cancellable, &local);
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (secret == NULL)
    return TRUE;
  return tusk_credentials_store_sync (credentials, kind, id, label, secret,
                                      cancellable, error);
}

/* Puts the tunnel back as it was: the old one's fields, or no new one. */
static void
undo_tunnel (TuskState *state, const TuskSshTunnelConfig *tunnel,
             const TuskSshTunnelConfig *old_tunnel)
{
  if (old_tunnel)
    tusk_tunnel_repo_save (tusk_state_get_storage (state), old_tunnel, NULL);
  else
    tusk_state_delete_tunnel_sync (state, tunnel->id, NULL, NULL);
}

/* Saves a new or edited connection: its tunnel (and secret), then the
 * connection (and password).  When either fails what was written is put
 * back, so nothing half-saved stays.  Then the clean-up: secrets to forget
 * or relabel, a tunnel no longer used; its failures are noted in
 * job->cleanup_note, not undone. */
static gboolean
save_work (TuskState *state, gpointer data, GCancellable *cancellable,
           GError **error)
{
  SaveJob *job = data;
  TuskStorage *storage = tusk_state_get_storage (state);
  TuskCredentials *credentials = tusk_state_get_credentials (state);
  const TuskSshTunnelConfig *tunnel = job->config->ssh_tunnel;
  const TuskSshTunnelConfig *old_tunnel
      = job->old ? job->old->ssh_tunnel : NULL;
  const TuskSshTunnelConfig *tunnel_before
      = tunnel && old_tunnel && g_str_equal (tunnel->id, old_tunnel->id)
            ? old_tunnel
            : NULL;

  if (tunnel && job->save_tunnel
      && !tusk_state_save_tunnel_sync (state, tunnel, job->ssh_secret,
                                       cancellable, error))
    {
      undo_tunnel (state, tunnel, tunnel_before);
      return FALSE;
    }
  if (!tusk_state_save_connection_sync (state, job->config, job->password,
                                        cancellable, error))
    {
      if (job->old)
        tusk_connection_repo_save (storage, job->old, NULL);
      else
        tusk_state_delete_connection_sync (state, job->config->id, NULL, NULL);
      if (tunnel && job->save_tunnel)
        undo_tunnel (state, tunnel, tunnel_before);
      return FALSE;
    }

  g_autoptr (GError) local = NULL;
  if (job->forget_password)
    tusk_credentials_delete_sync (credentials, TUSK_CREDENTIAL_KIND_DB,
                                  job->config->id, cancellable, &local);
  else if (job->renamed && job->password == NULL)
    relabel_secret (state, TUSK_CREDENTIAL_KIND_DB, job->config->id,
                    job->config->name, cancellable, &local);
  if (tunnel && local == NULL)
    {
      if (job->forget_ssh_secret)
        tusk_credentials_delete_sync (credentials, TUSK_CREDENTIAL_KIND_SSH,
                                      tunnel->id, cancellable, &local);
      else if (job->renamed && job->ssh_secret == NULL)
        relabel_secret (state, TUSK_CREDENTIAL_KIND_SSH, tunnel->id,
                        tunnel->name, cancellable, &local);
    }
  if (old_tunnel && local == NULL
      && (tunnel == NULL || !g_str_equal (tunnel->id, old_tunnel->id)))
    drop_tunnel_if_unused (state, old_tunnel->id, cancellable, &local);
  if (local)
    job->cleanup_note = g_strdup (local->message);
  return TRUE;
}

/* Checks that no other connection than @self_id is named @name. */
static void
check_name_free (TuskStorage *storage, const char *name, const char *self_id,
                 const char *option, Problems *problems)
{
  g_autoptr (TuskConnectionConfig) other
      = tusk_connection_repo_find_by_name (storage, name, NULL);
  if (other && (self_id == NULL || !g_str_equal (other->id, self_id)))
    problems_add (problems, option,
                  "a connection named \"%s\" already exists; change it with "
                  "\"tusk conn edit %s\" or choose another name",
                  other->name, other->name);
}

/* The keychain must keep a secret beyond this process. */
static gboolean
check_keychain (Cmd *cmd)
{
  TuskCredentials *credentials = tusk_state_get_credentials (cmd->shell->state);
  if (tusk_credentials_is_available (credentials))
    return TRUE;
  fprintf (stderr,
           "tusk %s: the keychain is unavailable (%s), so a password would "
           "be lost when tusk exits; nothing was saved.\n"
           "HINT: Start a Secret Service (gnome-keyring, KeePassXC) and try "
           "again, or save the connection without a password and let libpq "
           "find it in ~/.pgpass or PGPASSWORD.\n",
           cmd->label, tusk_credentials_get_unavailable_reason (credentials));
  return FALSE;
}

/* What every conn subcommand starts with: parses @argv into @o, checks
 * the positional arguments (NAME when @named, none otherwise) and the
 * options this subcommand takes (refuse_options ()), refuses an edit that
 * changes nothing, and opens the shell.  Returns -1 when the subcommand
 * may go on, else its exit code.  Main thread. */
static int
conn_begin (Cmd *cmd, ConnOptions *o, int argc, char **argv, GStrv *rest,
            gboolean named, gboolean edit_allowed, gboolean change_allowed,
            gboolean json_allowed)
{
  int code = parse_conn_options (cmd, o, argc, argv, rest);
  if (code >= 0)
    return code;
  if ((code = named ? expect_args (cmd, *rest, 1, 1, "NAME")
                    : expect_args (cmd, *rest, 0, 0, "no argument"))
      >= 0)
    return code;
  if ((code
       = refuse_options (cmd, o, edit_allowed, change_allowed, json_allowed))
      >= 0)
    return code;
  if (edit_allowed && !conn_options_any_change (o))
    return usage_error (cmd, "nothing to change: give the options to change "
                             "(see --help)");
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;
  return -1;
}

/* conn add and conn edit. */
static int
conn_save (Cmd *cmd, int argc, char **argv, gboolean edit)
{
  g_auto (ConnOptions) o = { 0 };
  g_auto (GStrv) rest = NULL;
  int code = conn_begin (cmd, &o, argc, argv, &rest, TRUE, edit, TRUE, FALSE);
  if (code >= 0)
    return code;
  TuskStorage *storage = cmd_storage (cmd);
  const char *name = rest[0];

  g_autoptr (TuskConnectionConfig) old = NULL;
  g_autoptr (TuskConnectionConfig) config = NULL;
  g_auto (Problems) problems = { 0 };
  problems_init (&problems);
  if (edit)
    {
      g_autoptr (GError) error = NULL;
      old = tusk_connection_repo_find_by_name (storage, name, &error);
      if (old == NULL)
        return error_exit (cmd, error);
      config = tusk_connection_config_copy (old);
      if (o.rename)
        {
          check_name (o.rename, "--rename", &problems);
          check_name_free (storage, o.rename, old->id, "--rename", &problems);
          g_free (config->name);
          config->name = g_strdup (o.rename);
        }
    }
  else
    {
      config = tusk_connection_config_new ();
      config->name = g_strdup (name);
      check_name (name, "NAME", &problems);
      check_name_free (storage, name, NULL, "NAME", &problems);
    }

  g_autoptr (Secret) uri_password = NULL;
  apply_conn_options (&o, config, &problems, &uri_password);
  gboolean renamed = old && !g_str_equal (old->name, config->name);
  gboolean tunnel_changed = apply_ssh_options (&o, config, &problems);
  if (renamed && config->ssh_tunnel && old->ssh_tunnel
      && g_strcmp0 (config->ssh_tunnel->name, old->name) == 0)
    {
      g_free (config->ssh_tunnel->name);
      config->ssh_tunnel->name = g_strdup (config->name);
      tunnel_changed = TRUE;
    }
  int password_sources = !!o.password_stdin + !!o.ask_password + !!o.no_password
                         + (uri_password != NULL);
  if (password_sources > 1)
    problems_add (&problems, "--password-stdin, --ask-password",
                  "give the password one way only (the URI holds one too)");

  g_autoptr (GError) invalid = NULL;
  if (!tusk_connection_config_validate (config, &invalid))
    problems_add_validation (&problems, invalid);
  if ((code = problems_report (cmd, &problems,
                               edit ? "the changes are not valid"
                                    : "the connection is not valid"))
      >= 0)
    return code;

  /* Secrets: only once everything else is known to be right. */
  gboolean stores_secret = o.password_stdin || o.ask_password || uri_password
                           || o.ssh_password_stdin || o.ssh_passphrase_stdin;
  if (stores_secret && !check_keychain (cmd))
    return TUSK_EXIT_FAILED;
  g_autoptr (Secret) password = NULL;
  g_autoptr (Secret) ssh_secret = NULL;
  g_autoptr (GError) error = NULL;
  if (!read_secrets (&o, config, &password, &ssh_secret, &error))
    return error_exit (cmd, error);
  if (uri_password)
    {
      password = g_steal_pointer (&uri_password);
      fprintf (stderr,
               "tusk %s: note: the password in --uri goes to the keychain; "
               "a password on the command line can be seen by other users "
               "(ps), so prefer --password-stdin or --ask-password.\n",
               cmd->label);
    }

  const TuskSshTunnelConfig *old_tunnel = old ? old->ssh_tunnel : NULL;
  const TuskSshTunnelConfig *tunnel = config->ssh_tunnel;
  SaveJob job = {
    .config = config,
    .old = old,
    .save_tunnel = tunnel_changed,
    .password = password,
    .forget_password = o.no_password,
    .ssh_secret = ssh_secret,
    /* A secret of another login method means nothing now. */
    .forget_ssh_secret = ssh_secret == NULL && tunnel && old_tunnel
                         && g_str_equal (tunnel->id, old_tunnel->id)
                         && (tunnel->auth_method == TUSK_SSH_AUTH_AGENT
                             || tunnel->auth_method != old_tunnel->auth_method),
    .renamed = renamed,
  };
  if (!run_work (cmd->shell->state, save_work, &job, &error))
    return error_exit (cmd, error);

  g_autofree char *target = describe_target (config);
  printf ("%s connection \"%s\" (%s)%s.\n", edit ? "Updated" : "Saved",
          config->name, target,
          password        ? "; password stored in the keychain"
          : o.no_password ? "; password forgotten"
                          : "");
  if (job.cleanup_note)
    {
      fprintf (stderr, "tusk %s: the connection was saved, but: %s\n",
               cmd->label, job.cleanup_note);
      g_free (job.cleanup_note);
      return TUSK_EXIT_FAILED;
    }
  return TUSK_EXIT_OK;
}

static int
conn_add (Cmd *cmd, int argc, char **argv)
{
  return conn_save (cmd, argc, argv, FALSE);
}

static int
conn_edit (Cmd *cmd, int argc, char **argv)
{
  return conn_save (cmd, argc, argv, TRUE);
}

static int
conn_list (Cmd *cmd, int argc, char **argv)
{
  g_auto (ConnOptions) o = { 0 };
  g_auto (GStrv) rest = NULL;
  int code = conn_begin (cmd, &o, argc, argv, &rest, FALSE, FALSE, FALSE, TRUE);
  if (code >= 0)
    return code;

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) all
      = tusk_connection_repo_load_all (cmd_storage (cmd), &error);
  if (all == NULL)
    return error_exit (cmd, error);

  if (o.json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_array (builder);
      for (guint i = 0; i < all->len; i++)
        {
          json_builder_begin_object (builder);
          json_add_connection_fields (builder, all->pdata[i]);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      print_json (builder);
      return TUSK_EXIT_OK;
    }

  if (all->len == 0)
    {
      printf ("No saved connections.  Add one with:\n"
              "  tusk conn add NAME --uri postgres://USER@HOST:PORT/DB "
              "--ask-password\n");
      return TUSK_EXIT_OK;
    }
  static const char *const headers[] = {
    "Name",  "Connection",     "SSL", "SSH tunnel", "Read-only",
    "Color", "Last connected",
  };
  g_autoptr (GPtrArray) rows
      = g_ptr_array_new_with_free_func ((GDestroyNotify)g_strfreev);
  for (guint i = 0; i < all->len; i++)
    {
      const TuskConnectionConfig *c = all->pdata[i];
      char **cells = g_new0 (char *, G_N_ELEMENTS (headers) + 1);
      cells[0] = g_strdup (c->name);
      cells[1] = describe_target (c);
      cells[2] = g_strdup (tusk_ssl_mode_to_string (c->ssl_mode));
      cells[3]
          = c->ssh_tunnel ? describe_tunnel (c->ssh_tunnel) : g_strdup ("");
      cells[4] = g_strdup (c->options.read_only ? "yes" : "no");
      cells[5] = g_strdup (c->color ? c->color : "");
      cells[6]
          = g_strdup (c->last_connected_at ? c->last_connected_at : "never");
      g_ptr_array_add (rows, cells);
    }
  print_table (headers, G_N_ELEMENTS (headers), rows);
  return TUSK_EXIT_OK;
}

static int
conn_show (Cmd *cmd, int argc, char **argv)
{
  g_auto (ConnOptions) o = { 0 };
  g_auto (GStrv) rest = NULL;
  int code = conn_begin (cmd, &o, argc, argv, &rest, TRUE, FALSE, FALSE, TRUE);
  if (code >= 0)
    return code;

  TuskState *state = cmd->shell->state;
  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) c
      = tusk_connection_repo_find_by_name (cmd_storage (cmd), rest[0], &error);
  if (c == NULL)
    return error_exit (cmd, error);
  g_autofree char *password
      = describe_secret (state, TUSK_CREDENTIAL_KIND_DB, c->id);
  g_autofree char *ssh_secret
      = c->ssh_tunnel && c->ssh_tunnel->auth_method != TUSK_SSH_AUTH_AGENT
            ? describe_secret (state, TUSK_CREDENTIAL_KIND_SSH,
                               c->ssh_tunnel->id)
            : NULL;

  if (o.json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_object (builder);
      json_add_connection_fields (builder, c);
      json_add_string (builder, "password", password);
      if (c->ssh_tunnel)
        json_add_string (builder, "ssh_secret", ssh_secret);
      json_builder_end_object (builder);
      print_json (builder);
      return TUSK_EXIT_OK;
    }

  g_autofree char *uri = tusk_connection_config_to_uri (c);
  printf ("name: %s\n", c->name);
  printf ("id: %s\n", c->id);
  printf ("host: %s\n", c->host);
  printf ("port: %d\n", c->port);
  printf ("database: %s\n", c->database);
  printf ("user: %s\n", c->username);
  printf ("uri: %s\n", uri);
  printf ("ssl mode: %s\n", tusk_ssl_mode_to_string (c->ssl_mode));
  if (c->ssl_root_cert)
    printf ("ssl root cert: %s\n", c->ssl_root_cert);
  if (c->ssl_cert)
    printf ("ssl cert: %s\n", c->ssl_cert);
  if (c->ssl_key)
    printf ("ssl key: %s\n", c->ssl_key);
  printf ("read-only: %s\n", c->options.read_only ? "yes" : "no");
  printf ("color: %s\n", c->color ? c->color : "none");
  if (c->options.connect_timeout_secs)
    printf ("connect timeout: %d s\n", c->options.connect_timeout_secs);
  else
    printf ("connect timeout: none\n");
  if (c->options.statement_timeout_secs < 0)
    printf ("statement timeout: default\n");
  else if (c->options.statement_timeout_secs == 0)
    printf ("statement timeout: none\n");
  else
    printf ("statement timeout: %d s\n", c->options.statement_timeout_secs);
  printf ("application name: %s\n", c->options.application_name);
  printf ("last connected: %s\n",
          c->last_connected_at ? c->last_connected_at : "never");
  printf ("password: %s\n", password);
  if (c->ssh_tunnel)
    {
      g_autofree char *tunnel = describe_tunnel (c->ssh_tunnel);
      printf ("ssh tunnel: %s\n", tunnel);
      if (ssh_secret)
        printf ("ssh %s: %s\n",
                c->ssh_tunnel->auth_method == TUSK_SSH_AUTH_PASSWORD
                    ? "password"
                    : "key passphrase",
                ssh_secret);
    }
  else
    printf ("ssh tunnel: none\n");
  return TUSK_EXIT_OK;
}

typedef struct
{
  const char *connection_id;
  const char *tunnel_id; /* nullable */
} RemoveJob;

static gboolean
remove_work (TuskState *state, gpointer data, GCancellable *cancellable,
             GError **error)
{
  RemoveJob *job = data;
  if (!tusk_state_delete_connection_sync (state, job->connection_id,
                                          cancellable, error))
    return FALSE;
  return job->tunnel_id == NULL
         || drop_tunnel_if_unused (state, job->tunnel_id, cancellable, error);
}

static int
conn_rm (Cmd *cmd, int argc, char **argv)
{
  g_auto (ConnOptions) o = { 0 };
  g_auto (GStrv) rest = NULL;
  int code = conn_begin (cmd, &o, argc, argv, &rest, TRUE, FALSE, FALSE, FALSE);
  if (code >= 0)
    return code;

  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) c
      = tusk_connection_repo_find_by_name (cmd_storage (cmd), rest[0], &error);
  if (c == NULL)
    return error_exit (cmd, error);
  RemoveJob job = { c->id, c->ssh_tunnel ? c->ssh_tunnel->id : NULL };
  if (!run_work (cmd->shell->state, remove_work, &job, &error))
    return error_exit (cmd, error);
  printf ("Removed connection \"%s\", its history and its keychain "
          "entries.\n",
          c->name);
  return TUSK_EXIT_OK;
}

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int
conn_test (Cmd *cmd, int argc, char **argv)
{
  g_auto (ConnOptions) o = { 0 };
  g_auto (GStrv) rest = NULL;
  int code = conn_begin (cmd, &o, argc, argv, &rest, TRUE, FALSE, FALSE, FALSE);
  if (code >= 0)
    return code;
  TuskShell *shell = cmd->shell;

  g_autoptr (GError) error = NULL;
  g_autoptr (TuskConnectionConfig) c
      = tusk_connection_repo_find_by_name (cmd_storage (cmd), rest[0], &error);
  if (c == NULL)
    return error_exit (cmd, error);

  g_autofree char *target = describe_target (c);
  if (c->ssh_tunnel)
    {
      g_autofree char *tunnel = describe_tunnel (c->ssh_tunnel);
      char *through = g_strdup_printf ("%s through SSH %s", target, tunnel);
      g_free (target);
      target = through;
    }
  gint64 started = g_get_monotonic_time ();
  if (!tusk_shell_connect (shell, c->name, NULL, &error))
    {
      fprintf (stderr, "tusk %s: could not connect to \"%s\" (%s)\n",
               cmd->label, c->name, target);
      tusk_shell_print_error (shell, error, NULL);
      return TUSK_EXIT_CONNECTION;
    }
  double connect_ms = (g_get_monotonic_time () - started) / 1000.0;

  g_autoptr (TuskQueryResult) info
      = tusk_shell_query (shell,
                          "SELECT version(), current_user, "
                          "coalesce((SELECT version FROM pg_stat_ssl "
                          "WHERE pid = pg_backend_pid() AND ssl), 'off')",
                          &error);
  if (info == NULL || info->n_rows != 1)
    {
      if (error)
        tusk_shell_print_error (shell, error, NULL);
      return TUSK_EXIT_CONNECTION;
    }

  double ms[PING_COUNT];
  for (int i = 0; i < PING_COUNT; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      g_autoptr (TuskQueryResult) one
          = tusk_shell_query (shell, "SELECT 1", &error);
      if (one == NULL)
        {
          tusk_shell_print_error (shell, error, NULL);
          return TUSK_EXIT_CONNECTION;
        }
      ms[i] = (g_get_monotonic_time () - t0) / 1000.0;
    }
  qsort (ms, PING_COUNT, sizeof ms[0], compare_doubles);

  printf ("Connected to \"%s\" (%s) as %s in %.1f ms.\n", c->name, target,
          tusk_query_result_get_value (info, 0, 1), connect_ms);
  printf ("server version: %s\n", tusk_query_result_get_value (info, 0, 0));
  printf ("ssl: %s\n", tusk_query_result_get_value (info, 0, 2));
  printf ("SELECT 1 round trip: %.2f ms (median of %d; fastest %.2f ms)\n",
          ms[PING_COUNT / 2], PING_COUNT, ms[0]);
  return TUSK_EXIT_OK;
}

static int
cmd_conn (Cmd *cmd, int argc, char **argv)
{
  static const struct
  {
    const char *name;
    int (*run) (Cmd *cmd, int argc, char **argv);
  } actions[] = {
    { "add", conn_add },   { "edit", conn_edit }, { "list", conn_list },
    { "ls", conn_list },   { "show", conn_show }, { "rm", conn_rm },
    { "remove", conn_rm }, { "test", conn_test },
  };

  if (argc < 2)
    {
      fputs (conn_help, stderr);
      return TUSK_EXIT_CONNECTION;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-?"))
    {
      fputs (conn_help, stdout);
      return TUSK_EXIT_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    if (g_str_equal (argv[1], actions[i].name))
      {
        g_free (cmd->label);
        cmd->label = g_strdup_printf ("conn %s", actions[i].name);
        return actions[i].run (cmd, argc - 1, argv + 1);
      }
  return usage_error (cmd,
                      "unknown command \"%s\": use add, edit, list, show, rm "
                      "or test",
                      argv[1]);
}

/* ------------------------------------------------------------ history */

static int
cmd_history (Cmd *cmd, int argc, char **argv)
{
  g_autofree char *search = NULL;
  g_autofree char *limit_text = NULL;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "search", 0, 0, G_OPTION_ARG_FILENAME, &search, NULL, NULL },
    { "limit", 0, 0, G_OPTION_ARG_FILENAME, &limit_text, NULL, NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, entries, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 0, 1, "[TARGET]")) >= 0)
    return code;
  int limit = HISTORY_DEFAULT_LIMIT;
  if (limit_text)
    {
      guint64 value;
      if (!g_ascii_string_to_unsigned (limit_text, 10, 0, G_MAXINT, &value,
                                       NULL))
        return usage_error (cmd,
                            "--limit: \"%s\" is not a number of entries (0 "
                            "for all)",
                            limit_text);
      limit = value == 0 ? -1 : (int)value;
    }
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;
  TuskStorage *storage = cmd_storage (cmd);

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) connections
      = tusk_connection_repo_load_all (storage, &error);
  if (connections == NULL)
    return error_exit (cmd, error);
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < connections->len; i++)
    {
      const TuskConnectionConfig *c = connections->pdata[i];
      g_hash_table_insert (names, c->id, c->name);
    }

  const char *connection_id = NULL;
  g_autoptr (TuskConnectionConfig) target = NULL;
  if (rest[0])
    {
      target = tusk_connection_repo_find_by_name (storage, rest[0], &error);
      if (target == NULL)
        {
          print_error (cmd, error);
          fprintf (stderr, "(History is kept for saved connections only.)\n");
          return TUSK_EXIT_FAILED;
        }
      connection_id = target->id;
    }

  g_autoptr (GPtrArray) entries_found
      = search
            ? tusk_history_repo_search (storage, search, connection_id, limit,
                                        0, &error)
            : tusk_history_repo_list (storage, connection_id, limit, 0, &error);
  if (entries_found == NULL)
    return error_exit (cmd, error);

  if (json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_array (builder);
      for (guint i = 0; i < entries_found->len; i++)
        {
          const TuskHistoryEntry *e = entries_found->pdata[i];
          json_builder_begin_object (builder);
          json_add_int (builder, "id", e->id);
          json_add_string (builder, "connection_id", e->connection_id);
          json_add_string (builder, "connection",
                           g_hash_table_lookup (names, e->connection_id));
          json_add_string (builder, "executed_at", e->executed_at);
          json_add_int_or_null (builder, "execution_time_ms",
                                e->execution_time_ms);
          json_add_int_or_null (builder, "row_count", e->row_count);
          json_add_string (builder, "sql", e->sql);
          json_add_string (builder, "error", e->error_message);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      print_json (builder);
      return TUSK_EXIT_OK;
    }

  if (entries_found->len == 0)
    {
      printf ("No history%s%s%s.\n", search ? " matching \"" : "",
              search ? search : "", search ? "\"" : "");
      return TUSK_EXIT_OK;
    }
  for (guint i = 0; i < entries_found->len; i++)
    {
      const TuskHistoryEntry *e = entries_found->pdata[i];
      const char *name = g_hash_table_lookup (names, e->connection_id);
      printf ("#%" G_GINT64_FORMAT "  %s UTC  %s", e->id, e->executed_at,
              name ? name : e->connection_id);
      if (e->execution_time_ms >= 0)
        printf ("  %" G_GINT64_FORMAT " ms", e->execution_time_ms);
      if (e->row_count >= 0)
        printf ("  %" G_GINT64_FORMAT " row%s", e->row_count,
                e->row_count == 1 ? "" : "s");
      if (e->error_message)
        printf ("  failed");
      putchar ('\n');
      g_auto (GStrv) lines = g_strsplit (e->sql, "\n", -1);
      for (guint l = 0; lines[l]; l++)
        printf ("    %s\n", lines[l]);
      if (e->error_message)
        printf ("    ERROR: %s\n", e->error_message);
    }
  return TUSK_EXIT_OK;
}

/* ------------------------------------------------------------ saved */

/* Returns (transfer full) the saved query called @name (ASCII case
 * ignored), or the one in FOLDER/NAME; NULL with TUSK_ERROR_NOT_FOUND, or
 * TUSK_ERROR_VALIDATION when several have that name. */
static TuskSavedQuery *
find_saved (TuskStorage *storage, const char *name, GError **error)
{
  g_autoptr (GPtrArray) all = tusk_saved_query_repo_list (storage, error);
  if (all == NULL)
    return NULL;

  g_autoptr (GPtrArray) found = g_ptr_array_new ();
  for (guint i = 0; i < all->len; i++)
    {
      TuskSavedQuery *q = all->pdata[i];
      if (g_ascii_strcasecmp (q->name, name) == 0)
        g_ptr_array_add (found, q);
    }
  const char *slash = strrchr (name, '/');
  if (found->len == 0 && slash)
    {
      g_autofree char *folder = g_strndup (name, slash - name);
      for (guint i = 0; i < all->len; i++)
        {
          TuskSavedQuery *q = all->pdata[i];
          if (g_ascii_strcasecmp (q->name, slash + 1) == 0
              && g_strcmp0 (q->folder_path, folder) == 0)
            g_ptr_array_add (found, q);
        }
    }
  if (found->len == 1)
    return tusk_saved_query_copy (found->pdata[0]);
  if (found->len == 0)
    {
      tusk_set_error (error, TUSK_ERROR_NOT_FOUND,
                      "\"tusk saved list\" shows the saved queries.",
                      "No saved query is named \"%s\"", name);
      return NULL;
    }
  tusk_set_error (error, TUSK_ERROR_VALIDATION,
                  "Name it with its folder: FOLDER/NAME.",
                  "%u saved queries are named \"%s\"", found->len, name);
  return NULL;
}

static gboolean
saved_create_work (TuskState *state, gpointer data, GCancellable *cancellable,
                   GError **error)
{
  (void)cancellable;
  return tusk_saved_query_repo_create (tusk_state_get_storage (state), data,
                                       error);
}

static gboolean
saved_delete_work (TuskState *state, gpointer data, GCancellable *cancellable,
                   GError **error)
{
  (void)cancellable;
  return tusk_saved_query_repo_delete (tusk_state_get_storage (state), data,
                                       error);
}

/* Reads all of @path ("-": stdin); (transfer full) or NULL with @error. */
static char *
read_input (const char *path, gsize *length, GError **error)
{
  if (!g_str_equal (path, "-"))
    {
      char *text = NULL;
      if (!g_file_get_contents (path, &text, length, error))
        return NULL;
      return text;
    }
  GString *text = g_string_new (NULL);
  char buffer[65536];
  for (;;)
    {
      ssize_t n = read (STDIN_FILENO, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                       "Could not read stdin: %s", g_strerror (errno));
          g_string_free (text, TRUE);
          return NULL;
        }
      if (n == 0)
        break;
      g_string_append_len (text, buffer, n);
    }
  *length = text->len;
  return g_string_free (text, FALSE);
}

static int
saved_add (Cmd *cmd, int argc, char **argv)
{
  g_autofree char *sql = NULL;
  g_autofree char *file = NULL;
  g_autofree char *folder = NULL;
  g_autofree char *connection = NULL;
  g_autofree char *description = NULL;
  const GOptionEntry entries[] = {
    { "sql", 0, 0, G_OPTION_ARG_FILENAME, &sql, NULL, NULL },
    { "file", 0, 0, G_OPTION_ARG_FILENAME, &file, NULL, NULL },
    { "folder", 0, 0, G_OPTION_ARG_FILENAME, &folder, NULL, NULL },
    { "connection", 0, 0, G_OPTION_ARG_FILENAME, &connection, NULL, NULL },
    { "description", 0, 0, G_OPTION_ARG_FILENAME, &description, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, entries, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 1, 1, "NAME")) >= 0)
    return code;
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;
  TuskStorage *storage = cmd_storage (cmd);

  g_auto (Problems) problems = { 0 };
  problems_init (&problems);
  g_autoptr (TuskSavedQuery) query = tusk_saved_query_new (rest[0], NULL);
  if (sql && file)
    problems_add (&problems, "--sql, --file", "give the SQL one way only");
  else if (sql)
    query->sql = g_strdup (sql);
  else if (file)
    {
      g_autoptr (GError) error = NULL;
      gsize length = 0;
      query->sql = read_input (file, &length, &error);
      if (query->sql == NULL)
        problems_add (&problems, "--file", "%s", error->message);
      else if (strlen (query->sql) != length)
        problems_add (&problems, "--file", "holds a NUL byte: not SQL text");
    }
  else
    problems_add (&problems, "--sql", "required (or --file FILE)");
  if (query->sql)
    {
      g_autofree char *stripped = g_strstrip (g_strdup (query->sql));
      if (*stripped == '\0')
        problems_add (&problems, sql ? "--sql" : "--file", "the SQL is empty");
    }
  if (folder && *folder)
    query->folder_path = g_strdup (folder);
  if (description && *description)
    query->description = g_strdup (description);
  if (connection)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TuskConnectionConfig) c
          = tusk_connection_repo_find_by_name (storage, connection, &error);
      if (c)
        query->connection_id = g_strdup (c->id);
      else
        problems_add (&problems, "--connection",
                      "no saved connection is named \"%s\" (tusk conn list "
                      "shows them)",
                      connection);
    }
  g_autoptr (GError) existing_error = NULL;
  g_autoptr (TuskSavedQuery) existing
      = find_saved (storage, rest[0], &existing_error);
  if (existing
      || g_error_matches (existing_error, TUSK_ERROR, TUSK_ERROR_VALIDATION))
    problems_add (&problems, "NAME",
                  "a saved query named \"%s\" already exists; remove it "
                  "first (tusk saved rm %s) or choose another name",
                  rest[0], rest[0]);
  g_autoptr (GError) invalid = NULL;
  if (query->sql && !tusk_saved_query_validate (query, &invalid))
    problems_add_validation (&problems, invalid);
  if ((code = problems_report (cmd, &problems, "the query is not valid")) >= 0)
    return code;

  g_autoptr (GError) error = NULL;
  if (!run_work (cmd->shell->state, saved_create_work, query, &error))
    return error_exit (cmd, error);
  printf ("Saved query \"%s\"%s%s.\n", query->name,
          query->folder_path ? " in " : "",
          query->folder_path ? query->folder_path : "");
  return TUSK_EXIT_OK;
}

/* The first line of @sql, cut at SQL_EXCERPT_CHARS; (transfer full). */
static char *
sql_excerpt (const char *sql)
{
  g_autofree char *copy = g_strstrip (g_strdup (sql));
  char *newline = strchr (copy, '\n');
  gboolean cut = newline != NULL;
  if (newline)
    *newline = '\0';
  if (!g_utf8_validate (copy, -1, NULL))
    return g_utf8_make_valid (copy, -1);
  if (g_utf8_strlen (copy, -1) > SQL_EXCERPT_CHARS)
    {
      *g_utf8_offset_to_pointer (copy, SQL_EXCERPT_CHARS) = '\0';
      cut = TRUE;
    }
  return cut ? g_strconcat (g_strchomp (copy), "…", NULL)
             : g_steal_pointer (&copy);
}

static int
saved_list (Cmd *cmd, int argc, char **argv)
{
  g_autofree char *folder = NULL;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "folder", 0, 0, G_OPTION_ARG_FILENAME, &folder, NULL, NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, entries, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 0, 0, "no argument")) >= 0)
    return code;
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;
  TuskStorage *storage = cmd_storage (cmd);

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) all = tusk_saved_query_repo_list (storage, &error);
  if (all == NULL)
    return error_exit (cmd, error);
  g_autoptr (GPtrArray) connections
      = tusk_connection_repo_load_all (storage, &error);
  if (connections == NULL)
    return error_exit (cmd, error);
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < connections->len; i++)
    {
      const TuskConnectionConfig *c = connections->pdata[i];
      g_hash_table_insert (names, c->id, c->name);
    }

  /* --folder: that folder and the ones inside it. */
  if (folder && *folder)
    {
      g_autofree char *prefix = g_strconcat (folder, "/", NULL);
      for (guint i = all->len; i-- > 0;)
        {
          const TuskSavedQuery *q = all->pdata[i];
          if (q->folder_path == NULL
              || (!g_str_equal (q->folder_path, folder)
                  && !g_str_has_prefix (q->folder_path, prefix)))
            g_ptr_array_remove_index (all, i);
        }
    }

  if (json)
    {
      g_autoptr (JsonBuilder) builder = json_builder_new ();
      json_builder_begin_array (builder);
      for (guint i = 0; i < all->len; i++)
        {
          const TuskSavedQuery *q = all->pdata[i];
          json_builder_begin_object (builder);
          json_add_string (builder, "id", q->id);
          json_add_string (builder, "name", q->name);
          json_add_string (builder, "folder", q->folder_path);
          json_add_string (builder, "connection_id", q->connection_id);
          json_add_string (builder, "connection",
                           q->connection_id
                               ? g_hash_table_lookup (names, q->connection_id)
                               : NULL);
          json_add_string (builder, "description", q->description);
          json_add_string (builder, "sql", q->sql);
          json_add_string (builder, "created_at", q->created_at);
          json_add_string (builder, "updated_at", q->updated_at);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      print_json (builder);
      return TUSK_EXIT_OK;
    }

  if (all->len == 0)
    {
      printf ("No saved queries%s%s.  Add one with:\n"
              "  tusk saved add NAME --sql 'SELECT …'\n",
              folder ? " in " : "", folder ? folder : "");
      return TUSK_EXIT_OK;
    }
  static const char *const headers[] = {
    "Folder",
    "Name",
    "Connection",
    "SQL",
  };
  g_autoptr (GPtrArray) rows
      = g_ptr_array_new_with_free_func ((GDestroyNotify)g_strfreev);
  for (guint i = 0; i < all->len; i++)
    {
      const TuskSavedQuery *q = all->pdata[i];
      const char *connection
          = q->connection_id ? g_hash_table_lookup (names, q->connection_id)
                             : NULL;
      char **cells = g_new0 (char *, G_N_ELEMENTS (headers) + 1);
      cells[0] = g_strdup (q->folder_path ? q->folder_path : "");
      cells[1] = g_strdup (q->name);
      cells[2] = g_strdup (connection ? connection : "");
      cells[3] = sql_excerpt (q->sql);
      g_ptr_array_add (rows, cells);
    }
  print_table (headers, G_N_ELEMENTS (headers), rows);
  return TUSK_EXIT_OK;
}

static int
saved_run (Cmd *cmd, int argc, char **argv)
{
  g_autofree char *format_text = NULL;
  gboolean csv = FALSE;
  const GOptionEntry entries[] = {
    { "format", 0, 0, G_OPTION_ARG_FILENAME, &format_text, NULL, NULL },
    { "csv", 0, 0, G_OPTION_ARG_NONE, &csv, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, entries, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 1, 2, "NAME [TARGET]")) >= 0)
    return code;
  TuskFormat format = TUSK_FORMAT_TABLE;
  g_autoptr (GError) error = NULL;
  if (csv && format_text)
    return usage_error (cmd, "--csv and --format: choose one");
  if (csv)
    format = TUSK_FORMAT_CSV;
  else if (format_text
           && !tusk_format_from_string (format_text, &format, &error))
    return usage_error (cmd, "--format: %s", error->message);
  TuskShell *shell = cmd_shell (cmd);
  if (shell == NULL)
    return TUSK_EXIT_FAILED;
  TuskStorage *storage = cmd_storage (cmd);

  g_autoptr (TuskSavedQuery) query = find_saved (storage, rest[0], &error);
  if (query == NULL)
    return error_exit (cmd, error);

  /* TARGET, else the query's connection, else libpq's defaults. */
  const char *target = rest[1];
  g_autoptr (TuskConnectionConfig) own = NULL;
  if (target == NULL && query->connection_id)
    {
      own = tusk_connection_repo_load (storage, query->connection_id, &error);
      if (own == NULL)
        return error_exit (cmd, error);
      target = own->name;
    }
  shell->print.format = format;
  if (!tusk_shell_connect (shell, target, NULL, &error))
    {
      tusk_shell_print_error (shell, error, NULL);
      return TUSK_EXIT_CONNECTION;
    }
  g_autofree char *source = g_strdup_printf ("saved query %s", query->name);
  return tusk_shell_run_sql (shell, query->sql, source) ? TUSK_EXIT_OK
                                                        : TUSK_EXIT_FAILED;
}

static int
saved_rm (Cmd *cmd, int argc, char **argv)
{
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, NULL, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 1, 1, "NAME")) >= 0)
    return code;
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;

  g_autoptr (GError) error = NULL;
  g_autoptr (TuskSavedQuery) query
      = find_saved (cmd_storage (cmd), rest[0], &error);
  if (query == NULL)
    return error_exit (cmd, error);
  if (!run_work (cmd->shell->state, saved_delete_work, query->id, &error))
    return error_exit (cmd, error);
  printf ("Removed saved query \"%s\".\n", query->name);
  return TUSK_EXIT_OK;
}

static int
cmd_saved (Cmd *cmd, int argc, char **argv)
{
  static const struct
  {
    const char *name;
    int (*run) (Cmd *cmd, int argc, char **argv);
  } actions[] = {
    { "add", saved_add }, { "list", saved_list }, { "ls", saved_list },
    { "run", saved_run }, { "rm", saved_rm },     { "remove", saved_rm },
  };

  if (argc < 2)
    {
      fputs (saved_help, stderr);
      return TUSK_EXIT_CONNECTION;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-?"))
    {
      fputs (saved_help, stdout);
      return TUSK_EXIT_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (actions); i++)
    if (g_str_equal (argv[1], actions[i].name))
      {
        g_free (cmd->label);
        cmd->label = g_strdup_printf ("saved %s", actions[i].name);
        return actions[i].run (cmd, argc - 1, argv + 1);
      }
  return usage_error (cmd, "unknown command \"%s\": use add, list, run or rm",
                      argv[1]);
}

/* ------------------------------------------------------------ schema */

typedef struct
{
  TuskSchemaCache *cache;
  gboolean done;
  TuskSchemaSnapshot *snapshot;
  GError *error;
} Ensure;

static void
ensure_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Ensure *ensure = user_data;
  (void)source;
  ensure->snapshot
      = tusk_schema_cache_ensure_finish (ensure->cache, result, &ensure->error);
  ensure->done = TRUE;
}

static const char *
relation_kind_name (const TuskSchemaRelation *relation)
{
  switch (relation->relkind)
    {
      case 'p':
        return "partitioned table";
      case 'f':
        return "foreign table";
      case 'v':
        return "view";
      case 'm':
        return "materialized view";
      default:
        return "table";
    }
}

static const char *
function_kind_name (char prokind)
{
  switch (prokind)
    {
      case 'p':
        return "procedure";
      case 'a':
        return "aggregate";
      case 'w':
        return "window";
      default:
        return "function";
    }
}

static void
json_add_relations (JsonBuilder *builder, const char *key,
                    const TuskSchemaRelation *relations, guint n,
                    TuskSchemaKind kind)
{
  json_builder_set_member_name (builder, key);
  json_builder_begin_array (builder);
  for (guint i = 0; i < n; i++)
    {
      const TuskSchemaRelation *r = &relations[i];
      if (r->kind != kind)
        continue;
      json_builder_begin_object (builder);
      json_add_string (builder, "schema", r->schema);
      json_add_string (builder, "name", r->name);
      json_add_string (builder, "kind", relation_kind_name (r));
      json_builder_set_member_name (builder, "columns");
      json_builder_begin_array (builder);
      for (guint c = 0; c < r->n_columns; c++)
        {
          const TuskSchemaColumn *col = &r->columns[c];
          json_builder_begin_object (builder);
          json_add_string (builder, "name", col->name);
          json_add_string (builder, "type", col->type_name);
          json_add_int (builder, "position", col->position);
          json_add_bool (builder, "not_null", col->not_null);
          json_add_bool (builder, "primary_key", col->primary_key);
          json_add_string (builder, "default", col->default_expr);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
}

static void
print_schema_json (TuskSchemaSnapshot *snapshot)
{
  guint n_schemas, n_relations, n_functions, n_indexes, n_sequences, n_enums;
  const char *const *schemas
      = tusk_schema_snapshot_get_schemas (snapshot, &n_schemas);
  const TuskSchemaRelation *relations
      = tusk_schema_snapshot_get_relations (snapshot, &n_relations);
  const TuskSchemaFunction *functions
      = tusk_schema_snapshot_get_functions (snapshot, &n_functions);
  const TuskSchemaIndex *indexes
      = tusk_schema_snapshot_get_indexes (snapshot, &n_indexes);
  const TuskSchemaSequence *sequences
      = tusk_schema_snapshot_get_sequences (snapshot, &n_sequences);
  const TuskSchemaEnum *enums
      = tusk_schema_snapshot_get_enums (snapshot, &n_enums);
  g_autoptr (GDateTime) cached_at = g_date_time_new_from_unix_utc (
      tusk_schema_snapshot_get_cached_at (snapshot) / G_USEC_PER_SEC);
  g_autofree char *cached_text = g_date_time_format_iso8601 (cached_at);

  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_add_string (builder, "database",
                   tusk_schema_snapshot_get_database (snapshot));
  json_add_string (builder, "cached_at", cached_text);
  json_builder_set_member_name (builder, "search_path");
  json_builder_begin_array (builder);
  for (const char *const *p = tusk_schema_snapshot_get_search_path (snapshot);
       *p; p++)
    json_builder_add_string_value (builder, *p);
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "schemas");
  json_builder_begin_array (builder);
  for (guint i = 0; i < n_schemas; i++)
    json_builder_add_string_value (builder, schemas[i]);
  json_builder_end_array (builder);

  json_add_relations (builder, "tables", relations, n_relations,
                      TUSK_SCHEMA_KIND_TABLE);
  json_add_relations (builder, "views", relations, n_relations,
                      TUSK_SCHEMA_KIND_VIEW);
  json_add_relations (builder, "materialized_views", relations, n_relations,
                      TUSK_SCHEMA_KIND_MATVIEW);

  json_builder_set_member_name (builder, "functions");
  json_builder_begin_array (builder);
  for (guint i = 0; i < n_functions; i++)
    {
      const TuskSchemaFunction *f = &functions[i];
      json_builder_begin_object (builder);
      json_add_string (builder, "schema", f->schema);
      json_add_string (builder, "name", f->name);
      json_add_string (builder, "arguments", f->arguments);
      json_add_string (builder, "result_type", f->result_type);
      json_add_string (builder, "kind", function_kind_name (f->prokind));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "indexes");
  json_builder_begin_array (builder);
  for (guint i = 0; i < n_indexes; i++)
    {
      const TuskSchemaIndex *x = &indexes[i];
      json_builder_begin_object (builder);
      json_add_string (builder, "schema", x->schema);
      json_add_string (builder, "name", x->name);
      json_add_string (builder, "table", x->table_name);
      json_add_string (builder, "definition", x->definition);
      json_add_bool (builder, "unique", x->is_unique);
      json_add_bool (builder, "primary", x->is_primary);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "sequences");
  json_builder_begin_array (builder);
  for (guint i = 0; i < n_sequences; i++)
    {
      json_builder_begin_object (builder);
      json_add_string (builder, "schema", sequences[i].schema);
      json_add_string (builder, "name", sequences[i].name);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "enums");
  json_builder_begin_array (builder);
  for (guint i = 0; i < n_enums; i++)
    {
      json_builder_begin_object (builder);
      json_add_string (builder, "schema", enums[i].schema);
      json_add_string (builder, "name", enums[i].name);
      json_builder_set_member_name (builder, "labels");
      json_builder_begin_array (builder);
      for (guint l = 0; l < enums[i].n_labels; l++)
        json_builder_add_string_value (builder, enums[i].labels[l]);
      json_builder_end_array (builder);
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  print_json (builder);
}

static void
print_relations (const char *title, const TuskSchemaRelation *relations,
                 guint n, TuskSchemaKind kind)
{
  gboolean any = FALSE;
  for (guint i = 0; i < n; i++)
    {
      const TuskSchemaRelation *r = &relations[i];
      if (r->kind != kind)
        continue;
      if (!any)
        printf ("\n%s:\n", title);
      any = TRUE;
      printf ("  %s.%s%s%s%s\n", r->schema, r->name,
              r->relkind == 'p' || r->relkind == 'f' ? " (" : "",
              r->relkind == 'p' || r->relkind == 'f' ? relation_kind_name (r)
                                                     : "",
              r->relkind == 'p' || r->relkind == 'f' ? ")" : "");
      glong name_width = 0, type_width = 0;
      for (guint c = 0; c < r->n_columns; c++)
        {
          name_width = MAX (name_width, text_width (r->columns[c].name));
          type_width = MAX (type_width, text_width (r->columns[c].type_name));
        }
      for (guint c = 0; c < r->n_columns; c++)
        {
          const TuskSchemaColumn *col = &r->columns[c];
          GString *line = g_string_new (NULL);
          g_string_append_printf (
              line, "    %s%*s  %s%*s", col->name,
              (int)(name_width - text_width (col->name)), "", col->type_name,
              (int)(type_width - text_width (col->type_name)), "");
          if (col->not_null)
            g_string_append (line, "  not null");
          if (col->primary_key)
            g_string_append (line, "  primary key");
          if (col->default_expr)
            g_string_append_printf (line, "  default %s", col->default_expr);
          g_strchomp (line->str);
          printf ("%s\n", line->str);
          g_string_free (line, TRUE);
        }
    }
}

/* @n strings joined by ", "; (transfer full).  The snapshot's arrays are
 * counted, not NULL-terminated. */
static char *
join_n (const char *const *strings, guint n)
{
  GString *text = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    g_string_append_printf (text, "%s%s", i ? ", " : "", strings[i]);
  return g_string_free (text, FALSE);
}

static void
print_schema_text (TuskSchemaSnapshot *snapshot)
{
  guint n_schemas, n_relations, n_functions, n_indexes, n_sequences, n_enums;
  const char *const *schemas
      = tusk_schema_snapshot_get_schemas (snapshot, &n_schemas);
  const TuskSchemaRelation *relations
      = tusk_schema_snapshot_get_relations (snapshot, &n_relations);
  const TuskSchemaFunction *functions
      = tusk_schema_snapshot_get_functions (snapshot, &n_functions);
  const TuskSchemaIndex *indexes
      = tusk_schema_snapshot_get_indexes (snapshot, &n_indexes);
  const TuskSchemaSequence *sequences
      = tusk_schema_snapshot_get_sequences (snapshot, &n_sequences);
  const TuskSchemaEnum *enums
      = tusk_schema_snapshot_get_enums (snapshot, &n_enums);

  g_autofree char *search_path = g_strjoinv (
      ", ", (char **)tusk_schema_snapshot_get_search_path (snapshot));
  printf ("Database %s (search_path: %s)\n",
          tusk_schema_snapshot_get_database (snapshot), search_path);
  g_autofree char *schema_list = join_n (schemas, n_schemas);
  printf ("\nSchemas: %s\n", n_schemas ? schema_list : "(none)");

  print_relations ("Tables", relations, n_relations, TUSK_SCHEMA_KIND_TABLE);
  print_relations ("Views", relations, n_relations, TUSK_SCHEMA_KIND_VIEW);
  print_relations ("Materialized views", relations, n_relations,
                   TUSK_SCHEMA_KIND_MATVIEW);
  if (n_functions)
    printf ("\nFunctions:\n");
  for (guint i = 0; i < n_functions; i++)
    {
      const TuskSchemaFunction *f = &functions[i];
      printf ("  %s.%s(%s)", f->schema, f->name, f->arguments);
      if (f->result_type)
        printf (" returns %s", f->result_type);
      if (f->prokind != 'f')
        printf (" (%s)", function_kind_name (f->prokind));
      putchar ('\n');
    }
  if (n_indexes)
    printf ("\nIndexes:\n");
  for (guint i = 0; i < n_indexes; i++)
    {
      const TuskSchemaIndex *x = &indexes[i];
      printf ("  %s.%s on %s%s: %s\n", x->schema, x->name, x->table_name,
              x->is_primary  ? " (primary key)"
              : x->is_unique ? " (unique)"
                             : "",
              x->definition);
    }
  if (n_sequences)
    printf ("\nSequences:\n");
  for (guint i = 0; i < n_sequences; i++)
    printf ("  %s.%s\n", sequences[i].schema, sequences[i].name);
  if (n_enums)
    printf ("\nEnums:\n");
  for (guint i = 0; i < n_enums; i++)
    {
      g_autofree char *labels = join_n (enums[i].labels, enums[i].n_labels);
      printf ("  %s.%s: %s\n", enums[i].schema, enums[i].name,
              enums[i].n_labels ? labels : "(no labels)");
    }
}

static int
cmd_schema (Cmd *cmd, int argc, char **argv)
{
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, entries, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 0, 1, "[TARGET]")) >= 0)
    return code;
  TuskShell *shell = cmd_shell (cmd);
  if (shell == NULL)
    return TUSK_EXIT_FAILED;

  g_autoptr (GError) error = NULL;
  if (!tusk_shell_connect (shell, rest[0], NULL, &error))
    {
      tusk_shell_print_error (shell, error, NULL);
      return TUSK_EXIT_CONNECTION;
    }
  g_autoptr (TuskSchemaCache) cache
      = tusk_state_dup_schema_cache (shell->state, shell->config->id);
  if (cache == NULL)
    cache = tusk_schema_cache_new (shell->pool);

  Ensure ensure = { cache, FALSE, NULL, NULL };
  tusk_schema_cache_ensure_async (cache, tusk_state_get_runtime (shell->state),
                                  NULL, ensure_done, &ensure);
  GMainContext *context = g_main_context_ref_thread_default ();
  while (!ensure.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_unref (context);
  g_autoptr (TuskSchemaSnapshot) snapshot = ensure.snapshot;
  if (snapshot == NULL)
    {
      tusk_shell_print_error (shell, ensure.error, NULL);
      g_error_free (ensure.error);
      return TUSK_EXIT_CONNECTION;
    }
  if (json)
    print_schema_json (snapshot);
  else
    print_schema_text (snapshot);
  return TUSK_EXIT_OK;
}

/* ------------------------------------------------------ export, import */

typedef struct
{
  const char *path;
  const char *text; /* import: the document */
  gsize length;
  TuskImportPolicy policy;
  TuskImportSummary summary;
} TransferJob;

static gboolean
export_work (TuskState *state, gpointer data, GCancellable *cancellable,
             GError **error)
{
  TransferJob *job = data;
  (void)cancellable;
  return tusk_storage_export_to_file (tusk_state_get_storage (state), job->path,
                                      error);
}

static gboolean
import_work (TuskState *state, gpointer data, GCancellable *cancellable,
             GError **error)
{
  TransferJob *job = data;
  (void)cancellable;
  return tusk_storage_import_string (tusk_state_get_storage (state), job->text,
                                     job->length, job->policy, &job->summary,
                                     error);
}

/* The number of items in the member @key (an array) of @root. */
static guint
count_items (JsonObject *root, const char *key)
{
  JsonNode *node = json_object_get_member (root, key);
  return node && JSON_NODE_HOLDS_ARRAY (node)
             ? json_array_get_length (json_node_get_array (node))
             : 0;
}

static int
cmd_export (Cmd *cmd, int argc, char **argv)
{
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, NULL, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 1, 1, "FILE")) >= 0)
    return code;
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;

  const char *path = rest[0];
  gboolean to_stdout = g_str_equal (path, "-");
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  if (to_stdout)
    {
      text = tusk_storage_export_to_string (cmd_storage (cmd), &error);
      if (text == NULL)
        return error_exit (cmd, error);
      fputs (text, stdout);
      if (!g_str_has_suffix (text, "\n"))
        fputc ('\n', stdout);
    }
  else
    {
      TransferJob job = { .path = path };
      if (!run_work (cmd->shell->state, export_work, &job, &error))
        return error_exit (cmd, error);
      if (!g_file_get_contents (path, &text, NULL, &error))
        return error_exit (cmd, error);
    }

  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, -1, &error)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      fprintf (stderr, "tusk %s: the export could not be read back%s%s\n",
               cmd->label, error ? ": " : "", error ? error->message : "");
      return TUSK_EXIT_FAILED;
    }
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  FILE *out = to_stdout ? stderr : stdout;
  fprintf (out,
           "Exported %u connection(s), %u SSH tunnel(s), %u saved "
           "query(ies) and %u setting(s) to %s.\n"
           "Passwords are not exported: they stay in the keychain.\n",
           count_items (root, "connections"), count_items (root, "ssh_tunnels"),
           count_items (root, "saved_queries"), count_items (root, "ui_state"),
           to_stdout ? "stdout" : path);
  return TUSK_EXIT_OK;
}

static void
print_counts (const char *what, const TuskImportCounts *counts)
{
  printf ("  %-14s %d added, %d replaced, %d renamed, %d skipped\n", what,
          counts->added, counts->replaced, counts->renamed, counts->skipped);
}

static int
cmd_import (Cmd *cmd, int argc, char **argv)
{
  g_autofree char *policy_text = NULL;
  const GOptionEntry entries[] = {
    { "on-conflict", 0, 0, G_OPTION_ARG_FILENAME, &policy_text, NULL, NULL },
    G_OPTION_ENTRY_NULL,
  };
  g_auto (GStrv) rest = NULL;
  int code = parse_args (cmd, entries, argc, argv, &rest);
  if (code >= 0)
    return code;
  if ((code = expect_args (cmd, rest, 1, 1, "FILE")) >= 0)
    return code;
  TransferJob job = { .path = rest[0], .policy = TUSK_IMPORT_SKIP };
  if (policy_text && !tusk_import_policy_from_string (policy_text, &job.policy))
    return usage_error (cmd,
                        "--on-conflict: unknown policy \"%s\"; use skip, "
                        "replace or rename",
                        policy_text);

  g_autoptr (GError) error = NULL;
  g_autofree char *text = read_input (job.path, &job.length, &error);
  if (text == NULL)
    {
      fprintf (stderr, "tusk %s: %s; nothing was imported.\n", cmd->label,
               error->message);
      return TUSK_EXIT_CONNECTION;
    }
  job.text = text;
  if (cmd_shell (cmd) == NULL)
    return TUSK_EXIT_FAILED;
  if (!run_work (cmd->shell->state, import_work, &job, &error))
    {
      print_error (cmd, error);
      fprintf (stderr, "Nothing was imported.\n");
      return g_error_matches (error, TUSK_ERROR, TUSK_ERROR_VALIDATION)
                 ? TUSK_EXIT_CONNECTION
                 : TUSK_EXIT_FAILED;
    }

  printf ("Imported %s (on conflict: %s):\n",
          g_str_equal (job.path, "-") ? "stdin" : job.path,
          tusk_import_policy_to_string (job.policy));
  print_counts ("connections:", &job.summary.connections);
  print_counts ("SSH tunnels:", &job.summary.ssh_tunnels);
  print_counts ("saved queries:", &job.summary.saved_queries);
  print_counts ("settings:", &job.summary.ui_state);
  if (job.summary.connections.added + job.summary.connections.renamed > 0)
    printf ("Exports hold no passwords: set them with "
            "\"tusk conn edit NAME --ask-password\".\n");
  return TUSK_EXIT_OK;
}

/* ------------------------------------------------------------ main */

int
tusk_commands_main (const char *data_dir, int argc, char **argv)
{
  static const struct
  {
    const char *name;
    int (*run) (Cmd *cmd, int argc, char **argv);
    const char *help;
  } groups[] = {
    { "conn", cmd_conn, conn_help },
    { "history", cmd_history, history_help },
    { "saved", cmd_saved, saved_help },
    { "schema", cmd_schema, schema_help },
    { "export", cmd_export, export_help },
    { "import", cmd_import, import_help },
  };
  g_return_val_if_fail (argc >= 1 && argv != NULL, TUSK_EXIT_CONNECTION);

  for (guint i = 0; i < G_N_ELEMENTS (groups); i++)
    {
      if (!g_str_equal (argv[0], groups[i].name))
        continue;
      Cmd cmd = { data_dir, g_strdup (groups[i].name), groups[i].help, NULL };
      int code = groups[i].run (&cmd, argc, argv);
      if (fflush (stdout) != 0 || ferror (stdout))
        {
          fprintf (stderr, "tusk %s: could not write the output: %s\n",
                   cmd.label, g_strerror (errno));
          code = MAX (code, TUSK_EXIT_FAILED);
        }
      g_clear_pointer (&cmd.shell, tusk_shell_free);
      g_free (cmd.label);
      return code;
    }
  fprintf (stderr, "tusk: unknown subcommand \"%s\"\n", argv[0]);
  return TUSK_EXIT_CONNECTION;
}
