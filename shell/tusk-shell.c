/* tusk-shell.c: one shell session — resolving a target and connecting,
 * running SQL text statement by statement on one session connection while
 * the main context turns (Ctrl-C, the elapsed-time indicator), and the
 * output: the current format, the pager, \o, timing.
 *
 * Waiting: every blocking step (connecting, acquiring the session
 * connection, a statement) is started asynchronously on the state's
 * runtime, and the main thread iterates the default main context until it
 * reports.  While a step runs, SIGINT is watched with g_unix_signal_add()
 * and cancels it; SIGINT's previous disposition is restored afterwards, so
 * the interactive loop keeps its own.
 *
 * The session connection: taken from the pool once connected and kept, so
 * SET, BEGIN … COMMIT and temporary tables carry from one statement to the
 * next.  When the server goes away under it, it goes back to the pool
 * (which closes a broken one) and the next statement takes a new one.
 */
#define G_LOG_DOMAIN "tusk-shell"

#include "tusk-shell.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <glib-unix.h>

#include "tusk-meta.h"

/* libpq's compiled-in socket directory on Debian (DEFAULT_PGSOCKET_DIR). */
#define DEFAULT_SOCKET_DIR "/var/run/postgresql"

/* ---- waiting, and Ctrl-C while waiting -------------------------------- */

typedef struct
{
  guint source;
  struct sigaction old;
} SigintWatch;

static gboolean
on_sigint (gpointer user_data)
{
  tusk_shell_cancel (user_data);
  return G_SOURCE_CONTINUE;
}

static void
sigint_watch_begin (TuskShell *shell, SigintWatch *watch)
{
  sigaction (SIGINT, NULL, &watch->old);
  watch->source = g_unix_signal_add (SIGINT, on_sigint, shell);
}

static void
sigint_watch_end (SigintWatch *watch)
{
  g_source_remove (watch->source);
  sigaction (SIGINT, &watch->old, NULL);
}

/* Iterates the default main context until *@flag is TRUE, cancelling on
 * SIGINT. */
static void
wait_for (TuskShell *shell, gboolean *flag)
{
  SigintWatch watch;
  sigint_watch_begin (shell, &watch);
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
  sigint_watch_end (&watch);
}

void
tusk_shell_cancel (TuskShell *shell)
{
  g_return_if_fail (shell != NULL);
  if (shell->running)
    tusk_query_handle_cancel (shell->running);
  if (shell->cancellable)
    g_cancellable_cancel (shell->cancellable);
}

/* ---- life ------------------------------------------------------------- */

TuskShell *
tusk_shell_new (const char *data_dir, GError **error)
{
  TuskState *state = tusk_state_new (data_dir, error);
  if (state == NULL)
    return NULL;

  /* A shell has psql's manners: no statement timeout and no idle-in-
   * transaction timeout unless the connection asks for one (a saved
   * connection's own statement_timeout_secs still applies). */
  TuskPoolOptions pool_options;
  tusk_pool_options_init (&pool_options);
  pool_options.statement_timeout_secs = 0;
  pool_options.idle_in_transaction_timeout_secs = 0;
  tusk_state_set_pool_options (state, &pool_options);

  TuskShell *shell = g_new0 (TuskShell, 1);
  shell->state = state;
  shell->transaction_status = TUSK_TRANSACTION_IDLE;
  tusk_print_options_init (&shell->print);
  shell->null_display = g_strdup ("");
  shell->print.null_display = shell->null_display;
  shell->out = stdout;
  shell->pager = TRUE;
  shell->interactive = isatty (STDIN_FILENO) && isatty (STDERR_FILENO)
                       && g_getenv ("CI") == NULL;
  return shell;
}

/* Gives the session connection back and forgets the connection. */
static void
disconnect (TuskShell *shell)
{
  g_clear_pointer (&shell->session, tusk_pool_release);
  g_clear_pointer (&shell->pool, tusk_pool_unref);
  if (shell->config)
    tusk_state_disconnect (shell->state, shell->config->id);
  g_clear_pointer (&shell->config, tusk_connection_config_free);
  shell->saved = FALSE;
}

static void
close_output (TuskShell *shell)
{
  if (shell->out && shell->out != stdout)
    {
      if (shell->out_is_pipe)
        pclose (shell->out);
      else
        fclose (shell->out);
    }
  shell->out = stdout;
  shell->out_is_pipe = FALSE;
  g_clear_pointer (&shell->out_path, g_free);
}

void
tusk_shell_free (TuskShell *shell)
{
  if (shell == NULL)
    return;
  disconnect (shell);
  close_output (shell);
  g_clear_object (&shell->cancellable);
  tusk_state_free (shell->state);
  g_free (shell->null_display);
  g_free (shell);
}

const char *
tusk_shell_get_display_name (TuskShell *shell)
{
  g_return_val_if_fail (shell != NULL, "");
  if (shell->config == NULL)
    return "";
  if (shell->saved && shell->config->name)
    return shell->config->name;
  return shell->config->database ? shell->config->database : "";
}

/* ---- resolving a target ----------------------------------------------- */

static const char *
env_value (const char *name)
{
  const char *value = g_getenv (name);
  return value && *value ? value : NULL;
}

/* Fills what @config leaves unset the way libpq would: the PG* variables,
 * then libpq's defaults (the Debian socket directory, port 5432, the
 * operating-system user, a database named after the user).  @with_port:
 * PGPORT applies (the target said nothing about the port). */
static void
fill_defaults (TuskConnectionConfig *config, gboolean with_port)
{
  if (config->host == NULL)
    {
      const char *host = env_value ("PGHOST");
      if (host == NULL)
        host = env_value ("PGHOSTADDR");
      if (host == NULL)
        host = g_file_test (DEFAULT_SOCKET_DIR, G_FILE_TEST_IS_DIR)
                   ? DEFAULT_SOCKET_DIR
                   : "localhost";
      config->host = g_strdup (host);
    }
  const char *port = env_value ("PGPORT");
  if (with_port && port)
    {
      gint64 value = 0;
      if (g_ascii_string_to_signed (port, 10, 1, 65535, &value, NULL))
        config->port = (int)value;
      else
        config->port = 0; /* validation names it */
    }
  if (config->username == NULL)
    config->username = g_strdup (env_value ("PGUSER") ? env_value ("PGUSER")
                                                      : g_get_user_name ());
  if (config->database == NULL)
    config->database = g_strdup (
        env_value ("PGDATABASE") ? env_value ("PGDATABASE") : config->username);
  const char *sslmode = env_value ("PGSSLMODE");
  TuskSslMode mode;
  if (sslmode && with_port && tusk_ssl_mode_from_string (sslmode, &mode))
    config->ssl_mode = mode;
  if (config->ssl_root_cert == NULL)
    config->ssl_root_cert = g_strdup (env_value ("PGSSLROOTCERT"));
  if (config->ssl_cert == NULL)
    config->ssl_cert = g_strdup (env_value ("PGSSLCERT"));
  if (config->ssl_key == NULL)
    config->ssl_key = g_strdup (env_value ("PGSSLKEY"));
  const char *timeout = env_value ("PGCONNECT_TIMEOUT");
  gint64 secs;
  if (timeout && with_port
      && g_ascii_string_to_signed (timeout, 10, 0, G_MAXINT, &secs, NULL))
    config->options.connect_timeout_secs = (int)secs;
}

/* Applies -h -p -U -d. */
static gboolean
apply_overrides (TuskConnectionConfig *config,
                 const TuskTargetOverrides *overrides, GError **error)
{
  if (overrides == NULL)
    return TRUE;
  if (overrides->host)
    {
      g_free (config->host);
      config->host = g_strdup (overrides->host);
    }
  if (overrides->port)
    {
      gint64 port;
      if (!g_ascii_string_to_signed (overrides->port, 10, 1, 65535, &port,
                                     NULL))
        {
          tusk_set_error (error, TUSK_ERROR_VALIDATION,
                          "Give the port as a number from 1 to 65535, e.g. "
                          "-p 5432",
                          "Invalid port \"%s\" (-p)", overrides->port);
          return FALSE;
        }
      config->port = (int)port;
    }
  if (overrides->user)
    {
      g_free (config->username);
      config->username = g_strdup (overrides->user);
    }
  if (overrides->dbname)
    {
      g_free (config->database);
      config->database = g_strdup (overrides->dbname);
    }
  return TRUE;
}

static gboolean
has_overrides (const TuskTargetOverrides *overrides)
{
  return overrides
         && (overrides->host || overrides->port || overrides->user
             || overrides->dbname);
}

/* Resolves @target into a config (transfer full): a saved connection
 * (*@saved TRUE), or an ad-hoc one with libpq's defaults filled in.
 * *@password gets a password the target text carried (transfer full,
 * nullable). */
static TuskConnectionConfig *
resolve_target (TuskShell *shell, const char *target,
                const TuskTargetOverrides *overrides, gboolean *saved,
                char **password, GError **error)
{
  g_autoptr (TuskConnectionConfig) config = NULL;
  gboolean from_text = FALSE;

  *saved = FALSE;
  *password = NULL;
  if (target && *target && !strstr (target, "://") && !strchr (target, '='))
    {
      g_autoptr (GError) local = NULL;
      TuskStorage *storage = tusk_state_open_storage (shell->state, error);
      if (storage == NULL)
        return NULL;
      config = tusk_connection_repo_find_by_name (storage, target, &local);
      if (config)
        {
          /* Its password is read from the keychain: the probe's round
           * trips overlap the connect's set-up.  Not earlier: a word that
           * is no saved connection (a database) never touches the
           * keychain. */
          *saved = TRUE;
          tusk_credentials_start (tusk_state_get_credentials (shell->state));
        }
      else if (!g_error_matches (local, TUSK_ERROR, TUSK_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
      else
        {
          /* As psql: a word that is no saved connection is a database. */
          config = tusk_connection_config_new ();
          config->database = g_strdup (target);
        }
    }
  else if (target && *target)
    {
      config = tusk_connection_config_new_from_string (target, password, error);
      if (config == NULL)
        return NULL;
      from_text = TRUE;
    }
  else
    config = tusk_connection_config_new ();

  if (*saved && has_overrides (overrides))
    {
      /* -h -p -U -d on a saved connection: a new, unsaved connection made
       * from it (its keychain password belongs to the saved one). */
      g_free (config->id);
      config->id = g_uuid_string_random ();
      *saved = FALSE;
    }
  if (!*saved)
    {
      fill_defaults (config, !from_text);
      if (!apply_overrides (config, overrides, error))
        return NULL;
      g_free (config->name);
      config->name = g_strdup (config->database);
    }
  return g_steal_pointer (&config);
}

/* ---- connecting ------------------------------------------------------- */

typedef struct
{
  TuskState *state;
  TuskConnectionConfig *config; /* owned */
  char *password;               /* owned, wiped; NULL: the keychain's */
  gboolean saved;
  /* Out, set by connect_thread (owned until taken): */
  TuskPool *pool;
  TuskPoolConn *session; /* taken on the same worker: no second hop */
} ConnectJob;

static void
connect_job_free (ConnectJob *job)
{
  tusk_connection_config_free (job->config);
  tusk_credentials_secret_free (job->password);
  g_clear_pointer (&job->session, tusk_pool_release);
  g_clear_pointer (&job->pool, tusk_pool_unref);
  g_free (job);
}

static void
connect_thread (GTask *task, gpointer source, gpointer data,
                GCancellable *cancellable)
{
  ConnectJob *job = data;
  GError *error = NULL;
  TuskPool *pool;
  (void)source;

  if (job->saved && job->password == NULL)
    pool = tusk_state_connect_sync (job->state, job->config->id, cancellable,
                                    &error);
  else
    pool = tusk_state_connect_config_sync (job->state, job->config,
                                           job->password, cancellable, &error);
  job->pool = pool;
  if (pool)
    job->session = tusk_pool_acquire_sync (pool, cancellable, &error);
  if (job->session)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

typedef struct
{
  gboolean done;
  GAsyncResult *result; /* owned */
} Waiter;

static void
on_task_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Waiter *waiter = user_data;
  (void)source;
  waiter->result = g_object_ref (result);
  waiter->done = TRUE;
}

/* Opens (or reuses) the pool of @config on the runtime and takes the
 * session connection from it, waiting with Ctrl-C.  Sets *@pool_out when
 * the pool opened (even if the session could not be taken); returns the
 * session, or NULL with @error. */
static TuskPoolConn *
open_session (TuskShell *shell, const TuskConnectionConfig *config,
              gboolean saved, const char *password, TuskPool **pool_out,
              GError **error)
{
  ConnectJob *job = g_new0 (ConnectJob, 1);
  job->state = shell->state;
  job->config = tusk_connection_config_copy (config);
  job->password = g_strdup (password);
  job->saved = saved;

  Waiter waiter = { FALSE, NULL };
  g_clear_object (&shell->cancellable);
  shell->cancellable = g_cancellable_new ();
  GTask *task = g_task_new (NULL, shell->cancellable, on_task_done, &waiter);
  g_task_set_task_data (task, job, (GDestroyNotify)connect_job_free);
  tusk_runtime_run_in_thread (tusk_state_get_runtime (shell->state), task,
                              connect_thread);
  g_object_unref (task);
  wait_for (shell, &waiter.done);

  TuskPoolConn *session = NULL;
  if (g_task_propagate_boolean (G_TASK (waiter.result), error))
    session = g_steal_pointer (&job->session);
  *pool_out = g_steal_pointer (&job->pool);
  g_object_unref (waiter.result); /* frees job */
  g_clear_object (&shell->cancellable);
  return session;
}

/* Takes a connection of @pool for the session, waiting with Ctrl-C. */
static TuskPoolConn *
acquire_session (TuskShell *shell, TuskPool *pool, GError **error)
{
  Waiter waiter = { FALSE, NULL };
  g_clear_object (&shell->cancellable);
  shell->cancellable = g_cancellable_new ();
  tusk_pool_acquire_async (pool, tusk_state_get_runtime (shell->state),
                           shell->cancellable, on_task_done, &waiter);
  wait_for (shell, &waiter.done);
  TuskPoolConn *conn = tusk_pool_acquire_finish (pool, waiter.result, error);
  g_object_unref (waiter.result);
  g_clear_object (&shell->cancellable);
  return conn;
}

/* The terminal's settings while a password is read, for the SIGINT
 * handler that puts echo back. */
static int password_tty = -1;
static struct termios password_saved;

static void
restore_tty_and_die (int signum)
{
  tcsetattr (password_tty, TCSAFLUSH, &password_saved);
  signal (signum, SIG_DFL);
  raise (signum);
}

/* Asks for a password on /dev/tty without echo; returns (transfer full)
 * the answer (wipe with tusk_credentials_secret_free()), or NULL when
 * there is no terminal or input ended. */
static char *
ask_password (const char *prompt)
{
  int fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return NULL;

  struct termios noecho;
  gboolean echo_off = tcgetattr (fd, &password_saved) == 0;
  struct sigaction old_int, old_term, action = { 0 };
  if (echo_off)
    {
      password_tty = fd;
      action.sa_handler = restore_tty_and_die;
      sigemptyset (&action.sa_mask);
      sigaction (SIGINT, &action, &old_int);
      sigaction (SIGTERM, &action, &old_term);
      noecho = password_saved;
      noecho.c_lflag &= ~(tcflag_t)ECHO;
      noecho.c_lflag |= ECHONL;
      tcsetattr (fd, TCSAFLUSH, &noecho);
    }
  if (write (fd, prompt, strlen (prompt)) < 0)
    {
      /* Nothing to do: the read below still works or fails. */
    }

  GString *answer = g_string_new (NULL);
  gboolean got_line = FALSE;
  char c;
  while (read (fd, &c, 1) == 1)
    {
      if (c == '\n' || c == '\r')
        {
          got_line = TRUE;
          break;
        }
      g_string_append_c (answer, c);
    }
  if (echo_off)
    {
      tcsetattr (fd, TCSAFLUSH, &password_saved);
      sigaction (SIGINT, &old_int, NULL);
      sigaction (SIGTERM, &old_term, NULL);
      password_tty = -1;
    }
  close (fd);

  char *password = g_strndup (answer->str, answer->len);
  memset (answer->str, 0, answer->len);
  g_string_free (answer, TRUE);
  if (!got_line && *password == '\0')
    {
      tusk_credentials_secret_free (password);
      return NULL;
    }
  return password;
}

/* Asks a yes/no question on /dev/tty; FALSE without a terminal. */
static gboolean
ask_yes_no (const char *question)
{
  int fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  if (write (fd, question, strlen (question)) < 0)
    {
      close (fd);
      return FALSE;
    }
  char line[16] = { 0 };
  ssize_t n = read (fd, line, sizeof line - 1);
  close (fd);
  return n > 0 && (line[0] == 'y' || line[0] == 'Y');
}

static gboolean
needs_password (const GError *error)
{
  return g_error_matches (error, TUSK_ERROR, TUSK_ERROR_AUTHENTICATION)
         && strstr (error->message, "no password supplied") != NULL;
}

typedef struct
{
  TuskState *state;
  TuskConnectionConfig *config;
  char *password;
} SaveJob;

static void
save_job_free (SaveJob *job)
{
  tusk_connection_config_free (job->config);
  tusk_credentials_secret_free (job->password);
  g_free (job);
}

static void
save_thread (GTask *task, gpointer source, gpointer data,
             GCancellable *cancellable)
{
  SaveJob *job = data;
  GError *error = NULL;
  (void)source;
  if (tusk_state_save_connection_sync (job->state, job->config, job->password,
                                       cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/* Stores @password for the saved @config in the keychain (on the
 * runtime); prints what happened. */
static void
save_password (TuskShell *shell, const TuskConnectionConfig *config,
               const char *password)
{
  SaveJob *job = g_new0 (SaveJob, 1);
  job->state = shell->state;
  job->config = tusk_connection_config_copy (config);
  job->password = g_strdup (password);

  Waiter waiter = { FALSE, NULL };
  GTask *task = g_task_new (NULL, NULL, on_task_done, &waiter);
  g_task_set_task_data (task, job, (GDestroyNotify)save_job_free);
  tusk_runtime_run_in_thread (tusk_state_get_runtime (shell->state), task,
                              save_thread);
  g_object_unref (task);
  wait_for (shell, &waiter.done);

  g_autoptr (GError) error = NULL;
  if (g_task_propagate_boolean (G_TASK (waiter.result), &error))
    fprintf (stderr, "Password saved in the keychain for %s.\n", config->name);
  else
    tusk_print_error (stderr, error, NULL, shell->print.format);
  g_object_unref (waiter.result);
}

gboolean
tusk_shell_connect (TuskShell *shell, const char *target,
                    const TuskTargetOverrides *overrides, GError **error)
{
  g_return_val_if_fail (shell != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  gboolean saved;
  char *text_password = NULL;
  g_autoptr (TuskConnectionConfig) config = resolve_target (
      shell, target, overrides, &saved, &text_password, error);
  if (config == NULL)
    return FALSE;

  GError *local = NULL;
  TuskPool *pool = NULL;
  TuskPoolConn *session
      = open_session (shell, config, saved, text_password, &pool, &local);
  if (pool == NULL && needs_password (local) && shell->interactive)
    {
      g_autofree char *prompt
          = g_strdup_printf ("Password for user %s: ", config->username);
      char *password = ask_password (prompt);
      if (password)
        {
          g_clear_error (&local);
          session
              = open_session (shell, config, FALSE, password, &pool, &local);
          if (session && saved
              && tusk_credentials_is_available (
                  tusk_state_get_credentials (shell->state)))
            {
              g_autofree char *question = g_strdup_printf (
                  "Save the password of %s in the keychain? [y/N] ",
                  config->name);
              if (ask_yes_no (question))
                save_password (shell, config, password);
            }
          tusk_credentials_secret_free (password);
        }
    }
  tusk_credentials_secret_free (text_password);
  if (session == NULL && pool != NULL)
    {
      /* The pool opened but gave no connection. */
      if (shell->config == NULL || !g_str_equal (shell->config->id, config->id))
        tusk_state_disconnect (shell->state, config->id);
      tusk_pool_unref (pool);
      g_propagate_error (error, local);
      return FALSE;
    }
  if (session == NULL)
    {
      if (needs_password (local))
        tusk_error_set_hint (
            local, saved
                       ? "The server asks for a password and the keychain has "
                         "none: save one with `tusk conn edit NAME "
                         "--ask-password`, or set PGPASSWORD or ~/.pgpass"
                       : "The server asks for a password: set PGPASSWORD, add "
                         "it to ~/.pgpass, or save the connection with `tusk "
                         "conn add NAME … --password-stdin`");
      g_propagate_error (error, local);
      return FALSE;
    }

  /* The new connection works: let the old one go (unless it is the same
   * saved connection, whose pool the state shares). */
  gboolean same = shell->config && g_str_equal (shell->config->id, config->id);
  g_clear_pointer (&shell->session, tusk_pool_release);
  g_clear_pointer (&shell->pool, tusk_pool_unref);
  if (shell->config && !same)
    tusk_state_disconnect (shell->state, shell->config->id);
  g_clear_pointer (&shell->config, tusk_connection_config_free);

  shell->config = g_steal_pointer (&config);
  shell->saved = saved;
  shell->pool = pool;
  shell->session = session;
  shell->transaction_status = TUSK_TRANSACTION_IDLE;
  shell->connection_lost = FALSE;
  tusk_info ("shell connected to %s (%s)", tusk_shell_get_display_name (shell),
             shell->saved ? "saved" : "ad hoc");
  return TRUE;
}

/* Makes sure there is a session connection (a new one after the server
 * went away). */
static gboolean
ensure_session (TuskShell *shell, GError **error)
{
  if (shell->session)
    return TRUE;
  if (shell->pool == NULL)
    {
      tusk_set_error (error, TUSK_ERROR_CONNECTION, "Connect first: \\c TARGET",
                      "Not connected");
      return FALSE;
    }
  shell->session = acquire_session (shell, shell->pool, error);
  if (shell->session)
    shell->transaction_status = TUSK_TRANSACTION_IDLE;
  return shell->session != NULL;
}

/* ---- output: the terminal, the pager, \o ------------------------------ */

/* Where one result goes.  When the pager may be needed, output collects in
 * memory until the first batch (or the end) shows how tall it is; then it
 * goes to the pager or the terminal, and everything after it too. */
typedef struct
{
  TuskShell *shell;
  FILE *target; /* where the printer writes now */
  FILE *buffer; /* nullable: collecting for the pager decision */
  char *buffer_data;
  size_t buffer_size;
  FILE *pager; /* nullable: popen()ed */
  struct sigaction old_pipe;
  gboolean pager_gone; /* the pager quit before the output ended */
} Output;

static gboolean
pager_possible (TuskShell *shell)
{
  const char *pager = g_getenv ("PAGER");
  return shell->interactive && shell->pager && shell->out == stdout
         && isatty (STDOUT_FILENO) && !(pager && *pager == '\0');
}

static FILE *
output_begin (Output *output, TuskShell *shell)
{
  *output = (Output){ .shell = shell, .target = shell->out };
  if (pager_possible (shell))
    {
      output->buffer
          = open_memstream (&output->buffer_data, &output->buffer_size);
      if (output->buffer)
        output->target = output->buffer;
    }
  return output->target;
}

/* Whether @text is taller or wider than the terminal. */
static gboolean
too_big_for_terminal (const char *text, gsize length)
{
  struct winsize size;
  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_row == 0)
    return FALSE;
  guint lines = 0, width = 0, widest = 0;
  for (const char *p = text; p < text + length; p = g_utf8_next_char (p))
    {
      if (*p == '\n')
        {
          lines++;
          widest = MAX (widest, width);
          width = 0;
        }
      else
        width++;
    }
  widest = MAX (widest, width);
  return lines >= size.ws_row || (size.ws_col > 0 && widest > size.ws_col);
}

/* Sends what was collected to the pager or the terminal, and points
 * @printer (nullable) there. */
static void
output_decide (Output *output, TuskPrinter *printer)
{
  if (output->buffer == NULL)
    return;
  fflush (output->buffer);
  FILE *target = output->shell->out;
  if (too_big_for_terminal (output->buffer_data, output->buffer_size))
    {
      const char *command = g_getenv ("PAGER");
      if (command == NULL)
        command = "less -SFX";
      struct sigaction ignore = { 0 };
      ignore.sa_handler = SIG_IGN;
      sigemptyset (&ignore.sa_mask);
      sigaction (SIGPIPE, &ignore, &output->old_pipe);
      fflush (stdout);
      output->pager = popen (command, "w");
      if (output->pager)
        target = output->pager;
      else
        sigaction (SIGPIPE, &output->old_pipe, NULL);
    }
  fwrite (output->buffer_data, 1, output->buffer_size, target);
  fflush (target);
  if (output->pager && ferror (output->pager))
    output->pager_gone = TRUE;
  fclose (output->buffer);
  output->buffer = NULL;
  g_clear_pointer (&output->buffer_data, free);
  output->target = target;
  if (printer)
    tusk_printer_set_output (printer, target);
}

static void
output_end (Output *output)
{
  output_decide (output, NULL);
  if (output->pager)
    {
      pclose (output->pager);
      output->pager = NULL;
      sigaction (SIGPIPE, &output->old_pipe, NULL);
    }
}

gboolean
tusk_shell_set_output (TuskShell *shell, const char *path, GError **error)
{
  g_return_val_if_fail (shell != NULL, FALSE);

  if (path == NULL || *path == '\0')
    {
      close_output (shell);
      return TRUE;
    }
  FILE *file;
  gboolean pipe = path[0] == '|';
  if (pipe)
    file = popen (path + 1, "w");
  else
    file = fopen (path, "w");
  if (file == NULL)
    {
      int saved = errno;
      tusk_set_error (error, TUSK_ERROR_VALIDATION,
                      "Check the path and its directory's permissions",
                      pipe ? "Could not start \"%s\": %s"
                           : "Could not open \"%s\" for writing: %s",
                      pipe ? path + 1 : path, g_strerror (saved));
      return FALSE;
    }
  close_output (shell);
  shell->out = file;
  shell->out_is_pipe = pipe;
  shell->out_path = g_strdup (path);
  return TRUE;
}

/* ---- errors ----------------------------------------------------------- */

void
tusk_shell_print_error (TuskShell *shell, const GError *error, const char *sql)
{
  g_return_if_fail (shell != NULL && error != NULL);
  fflush (shell->out);
  tusk_print_error (stderr, error, sql, shell->print.format);
}

/* The hint for a write refused on a read-only connection. */
static char *
read_only_hint (TuskShell *shell)
{
  if (shell->saved)
    return g_strdup_printf ("%s is a read-only connection: the server refuses "
                            "writes.  To write, make it read-write with `tusk "
                            "conn edit %s --read-write`",
                            shell->config->name, shell->config->name);
  return g_strdup ("This connection is read-only (default_transaction_read_"
                   "only=on): the server refuses writes.  Connect without "
                   "that option to write");
}

/* Whether @sql would switch a read-only session to read-write (BEGIN READ
 * WRITE, SET … default_transaction_read_only, set_config(…)).  Lexical and
 * on the safe side. */
static gboolean
lifts_read_only (const char *sql)
{
  static gsize once;
  static GRegex *read_write, *setting;
  if (g_once_init_enter (&once))
    {
      setting = g_regex_new (
          "\\b(set|reset|set_config|alter)\\b.*transaction_read_only",
          G_REGEX_CASELESS | G_REGEX_DOTALL | G_REGEX_OPTIMIZE, 0, NULL);
      read_write = g_regex_new ("\\bread\\s+write\\b",
                                G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, NULL);
      g_once_init_leave (&once, 1);
    }
  return g_regex_match (read_write, sql, 0, NULL)
         || g_regex_match (setting, sql, 0, NULL);
}

/* ---- running statements ----------------------------------------------- */

typedef struct
{
  TuskShell *shell;
  TuskPrinter *printer;
  Output output;
  const TuskErrorLocation *location;
  TuskQueryHandle *handle;

  gboolean done;
  GError *error;       /* the statement's */
  GError *write_error; /* the printer's (the query was cancelled for it) */
  TuskTransactionStatus transaction_status;

  /* The elapsed-time indicator. */
  gint64 started;
  guint ticker;
  gboolean indicator_shown;
  gboolean output_seen;
} Run;

static void
indicator_erase (Run *run)
{
  if (run->indicator_shown)
    {
      fputs ("\r\033[K", stderr);
      fflush (stderr);
      run->indicator_shown = FALSE;
    }
}

static void
indicator_stop (Run *run)
{
  if (run->ticker)
    {
      g_source_remove (run->ticker);
      run->ticker = 0;
    }
  indicator_erase (run);
}

static gboolean
on_tick (gpointer user_data)
{
  Run *run = user_data;
  double seconds = (g_get_monotonic_time () - run->started) / 1e6;
  if (seconds >= 1.0 && !run->output_seen)
    {
      fprintf (stderr, "\r\033[KRunning… %.1f s (Ctrl-C cancels)", seconds);
      fflush (stderr);
      run->indicator_shown = TRUE;
    }
  return G_SOURCE_CONTINUE;
}

static void
on_first_output (Run *run)
{
  if (!run->output_seen)
    {
      run->output_seen = TRUE;
      indicator_erase (run);
    }
}

static void
run_fail_write (Run *run, GError *error)
{
  if (run->write_error == NULL)
    run->write_error = error;
  else
    g_error_free (error);
  tusk_query_handle_cancel (run->handle);
}

static void
on_columns (TuskQueryHandle *handle, const GPtrArray *columns,
            gpointer user_data)
{
  Run *run = user_data;
  GError *error = NULL;
  (void)handle;
  if (run->write_error)
    return;
  on_first_output (run);
  if (!tusk_printer_begin (run->printer, columns, &error))
    run_fail_write (run, error);
}

static void
on_batch (TuskQueryHandle *handle, TuskRowBatch *batch, gpointer user_data)
{
  Run *run = user_data;
  GError *error = NULL;
  (void)handle;
  if (run->write_error)
    return;
  on_first_output (run);
  if (!tusk_printer_add_batch (run->printer, batch, &error))
    run_fail_write (run, error);
  else
    {
      output_decide (&run->output, run->printer);
      if (run->output.pager_gone)
        run_fail_write (run,
                        g_error_new_literal (TUSK_ERROR, TUSK_ERROR_INTERNAL,
                                             "The pager quit"));
    }
}

static void
on_done (TuskQueryHandle *handle, const TuskQueryResult *result,
         const GError *error, gpointer user_data)
{
  Run *run = user_data;
  (void)handle;
  if (result)
    {
      run->transaction_status = result->transaction_status;
      GError *write_error = NULL;
      if (!run->write_error
          && !tusk_printer_end (run->printer, result, &write_error))
        run->write_error = write_error;
    }
  else
    run->error = g_error_copy (error);
  run->done = TRUE;
}

static void
on_notice (TuskQueryHandle *handle, const TuskNotice *notice,
           gpointer user_data)
{
  Run *run = user_data;
  (void)handle;
  indicator_erase (run);
  fflush (run->output.target);
  tusk_print_notice_at (stderr, notice, run->location);
}

/* psql's "Time: 1.234 ms", with the minutes, hours and days beyond a
 * second. */
static void
print_timing (double ms)
{
  if (ms < 1000.0)
    {
      printf ("Time: %.3f ms\n", ms);
      return;
    }
  double seconds = ms / 1000.0;
  double minutes = (double)(gint64)(seconds / 60.0); /* >= 0: floor */
  seconds -= 60.0 * minutes;
  if (minutes < 60.0)
    {
      printf ("Time: %.3f ms (%02d:%06.3f)\n", ms, (int)minutes, seconds);
      return;
    }
  double hours = (double)(gint64)(minutes / 60.0);
  minutes -= 60.0 * hours;
  if (hours < 24.0)
    {
      printf ("Time: %.3f ms (%02d:%02d:%06.3f)\n", ms, (int)hours,
              (int)minutes, seconds);
      return;
    }
  double days = (double)(gint64)(hours / 24.0);
  hours -= 24.0 * days;
  printf ("Time: %.3f ms (%.0f d %02d:%02d:%06.3f)\n", ms, days, (int)hours,
          (int)minutes, seconds);
}

/* After a statement failed: what the session's transaction looks like
 * now (the server tells only with a result). */
static void
note_failure (TuskShell *shell, const GError *error)
{
  if (g_error_matches (error, TUSK_ERROR, TUSK_ERROR_CONNECTION))
    {
      /* The server went away: the pool closes the connection. */
      g_clear_pointer (&shell->session, tusk_pool_release);
      shell->transaction_status = TUSK_TRANSACTION_UNKNOWN;
      shell->connection_lost = TRUE;
    }
  else if (shell->transaction_status == TUSK_TRANSACTION_IN_TRANSACTION
           || shell->transaction_status == TUSK_TRANSACTION_FAILED)
    shell->transaction_status = TUSK_TRANSACTION_FAILED;
  else
    shell->transaction_status = TUSK_TRANSACTION_IDLE;
}

/* Runs one statement, printing its rows in the current format; FALSE
 * after printing why it failed. */
static gboolean
run_statement (TuskShell *shell, const TuskSqlPiece *piece,
               TuskErrorLocation *location)
{
  g_autoptr (GError) error = NULL;
  const char *sql = piece->text;

  if (shell->config && shell->config->options.read_only
      && lifts_read_only (sql))
    {
      g_autofree char *hint = read_only_hint (shell);
      error = tusk_error_new_full (
          TUSK_ERROR_QUERY,
          "Refused: this statement would make a read-only session writable",
          NULL, hint, 0, NULL);
      fflush (shell->out);
      tusk_print_error_at (stderr, error, sql, shell->print.format, location);
      return FALSE;
    }
  if (!ensure_session (shell, &error))
    {
      fflush (shell->out);
      tusk_print_error_at (stderr, error, NULL, shell->print.format, location);
      return FALSE;
    }

  Run run = { .shell = shell, .location = location };
  run.transaction_status = shell->transaction_status;
  FILE *target = output_begin (&run.output, shell);
  run.printer = tusk_printer_new (&shell->print, target);

  g_autoptr (TuskSchemaCache) schema
      = tusk_state_dup_schema_cache (shell->state, shell->config->id);
  TuskQueryOptions options;
  tusk_query_options_init (&options);
  /* Only saved connections have a history: an ad hoc one skips the
   * look-up that would find that out. */
  options.storage = shell->saved ? tusk_state_get_storage (shell->state) : NULL;
  options.registry = tusk_state_get_query_registry (shell->state);
  options.schema = schema;
  options.conn = shell->session;
  options.notice_func = on_notice;
  options.notice_data = &run;

  static const TuskQueryStreamFuncs funcs = {
    .columns = on_columns,
    .batch = on_batch,
    .done = on_done,
  };
  run.started = g_get_monotonic_time ();
  if (shell->interactive && isatty (STDERR_FILENO))
    run.ticker = g_timeout_add (100, on_tick, &run);
  run.handle
      = tusk_query_stream (shell->pool, tusk_state_get_runtime (shell->state),
                           sql, &options, &funcs, &run, NULL, NULL);
  shell->running = run.handle;
  wait_for (shell, &run.done);
  shell->running = NULL;
  indicator_stop (&run);
  double elapsed_ms = (g_get_monotonic_time () - run.started) / 1000.0;

  output_end (&run.output);
  tusk_printer_free (run.printer);
  tusk_query_handle_unref (run.handle);
  fflush (shell->out);

  gboolean pager_quit = run.output.pager_gone;
  if (run.write_error && !pager_quit)
    {
      tusk_print_error_at (stderr, run.write_error, NULL, shell->print.format,
                           location);
      g_clear_error (&run.write_error);
      g_clear_error (&run.error);
      return FALSE;
    }
  g_clear_error (&run.write_error);
  if (run.error && pager_quit
      && g_error_matches (run.error, TUSK_ERROR, TUSK_ERROR_QUERY_CANCELLED))
    g_clear_error (&run.error); /* quitting the pager is no failure */
  if (run.error)
    {
      note_failure (shell, run.error);
      const char *sqlstate = tusk_error_get_sqlstate (run.error);
      if (sqlstate && g_str_equal (sqlstate, "25006") && shell->config
          && shell->config->options.read_only)
        {
          g_autofree char *hint = read_only_hint (shell);
          tusk_error_set_hint (run.error, hint);
        }
      int position = tusk_error_get_position (run.error);
      if (position > 0)
        tusk_sql_piece_locate (piece, position, &location->error_line,
                               &location->error_column);
      tusk_print_error_at (stderr, run.error, sql, shell->print.format,
                           location);
      g_clear_error (&run.error);
      return FALSE;
    }
  shell->transaction_status = run.transaction_status;
  if (shell->timing)
    {
      print_timing (elapsed_ms);
      fflush (stdout);
    }
  return TRUE;
}

/* Fills @location for @piece of a script named @source (nullable). */
static void
locate_piece (const TuskSqlPiece *piece, const char *source,
              TuskErrorLocation *location)
{
  int end_line = piece->line;
  tusk_sql_piece_locate (piece, G_MAXINT, &end_line, NULL);
  *location = (TuskErrorLocation){
    .source = source,
    .line = end_line,
    .error_line = piece->line,
    .error_column = piece->column,
  };
}

/* Runs @pieces in order; FALSE at the first failure. */
static gboolean
run_pieces (TuskShell *shell, GPtrArray *pieces, const char *source)
{
  for (guint i = 0; i < pieces->len && !shell->quit; i++)
    {
      TuskSqlPiece *piece = g_ptr_array_index (pieces, i);
      TuskErrorLocation location;
      locate_piece (piece, source, &location);

      switch (piece->kind)
        {
          case TUSK_SQL_META:
            {
              TuskMetaStatus status = tusk_meta_run (shell, piece->text, NULL);
              if (status == TUSK_META_QUIT)
                shell->quit = TRUE;
              else if (status == TUSK_META_FAILED)
                return FALSE;
            }
            break;

          case TUSK_SQL_COPY_DATA:
            /* The COPY before it was refused (libtusk sends no COPY data),
             * and that error already stopped the script. */
            break;

          case TUSK_SQL_STATEMENT:
            {
              if (piece->empty)
                break;
              /* A statement ended by \g or \gx: run it here, \gx expanded. */
              TuskSqlPiece *next = i + 1 < pieces->len
                                       ? g_ptr_array_index (pieces, i + 1)
                                       : NULL;
              gboolean go = piece->end == TUSK_SQL_END_META && next
                            && next->kind == TUSK_SQL_META
                            && (g_str_equal (next->command, "g")
                                || g_str_equal (next->command, "gx"));
              gboolean expanded = shell->print.expanded;
              if (go && g_str_equal (next->command, "gx"))
                shell->print.expanded = TRUE;
              gboolean ok = run_statement (shell, piece, &location);
              shell->print.expanded = expanded;
              if (go)
                i++;
              if (!ok)
                return FALSE;
            }
            break;
        }
    }
  return TRUE;
}

gboolean
tusk_shell_run_sql (TuskShell *shell, const char *text, const char *source)
{
  g_return_val_if_fail (shell != NULL && text != NULL, FALSE);

  g_autoptr (GPtrArray) pieces = tusk_sql_split (text, -1);
  return run_pieces (shell, pieces, source);
}

gboolean
tusk_shell_run_stream (TuskShell *shell, FILE *in, const char *source)
{
  g_return_val_if_fail (shell != NULL && in != NULL, FALSE);

  g_autoptr (TuskSqlScanner) scanner = tusk_sql_scanner_new ();
  char *line = NULL;
  size_t capacity = 0;
  ssize_t n;
  gboolean ok = TRUE;

  while (ok && !shell->quit && (n = getline (&line, &capacity, in)) > 0)
    {
      g_autoptr (GPtrArray) pieces = tusk_sql_scanner_feed (scanner, line, n);
      ok = run_pieces (shell, pieces, source);
    }
  int saved = errno;
  gboolean read_failed = ferror (in);
  free (line);
  if (ok && !shell->quit && read_failed)
    {
      g_autoptr (GError) error = NULL;
      tusk_set_error (&error, TUSK_ERROR_VALIDATION,
                      "Check that the file is readable",
                      "Could not read %s: %s", source ? source : "the script",
                      g_strerror (saved));
      tusk_shell_print_error (shell, error, NULL);
      return FALSE;
    }
  if (ok && !shell->quit)
    {
      g_autoptr (GPtrArray) pieces = tusk_sql_scanner_finish (scanner);
      ok = run_pieces (shell, pieces, source);
    }
  return ok;
}

/* ---- internal queries and materialized results ------------------------ */

typedef struct
{
  gboolean done;
  TuskQueryResult *result;
  GError *error;
} ExecWait;

static void
on_executed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ExecWait *wait = user_data;
  (void)source;
  wait->result = tusk_query_execute_finish (result, &wait->error);
  wait->done = TRUE;
}

TuskQueryResult *
tusk_shell_query (TuskShell *shell, const char *sql, GError **error)
{
  g_return_val_if_fail (shell != NULL && sql != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!ensure_session (shell, error))
    return NULL;

  TuskQueryOptions options;
  tusk_query_options_init (&options);
  options.registry = tusk_state_get_query_registry (shell->state);
  options.conn = shell->session;

  ExecWait wait = { FALSE, NULL, NULL };
  shell->running = tusk_query_execute_async (
      shell->pool, tusk_state_get_runtime (shell->state), sql, &options, NULL,
      on_executed, &wait);
  wait_for (shell, &wait.done);
  tusk_query_handle_unref (shell->running);
  shell->running = NULL;

  if (wait.result == NULL)
    {
      note_failure (shell, wait.error);
      g_propagate_error (error, wait.error);
      return NULL;
    }
  shell->transaction_status = wait.result->transaction_status;
  return wait.result;
}

gboolean
tusk_shell_print_result (TuskShell *shell, const char *title,
                         const TuskQueryResult *result)
{
  g_return_val_if_fail (shell != NULL && result != NULL, FALSE);

  Output output;
  FILE *target = output_begin (&output, shell);
  g_autoptr (TuskPrinter) printer = tusk_printer_new (&shell->print, target);
  g_autoptr (GError) error = NULL;
  gboolean ok = TRUE;

  tusk_printer_set_title (printer, title);
  if (result->columns->len > 0)
    ok = tusk_printer_begin (printer, result->columns, &error);
  for (guint i = 0; ok && i < result->batches->len; i++)
    {
      ok = tusk_printer_add_batch (printer, result->batches->pdata[i], &error);
      if (ok)
        output_decide (&output, printer);
      if (output.pager_gone)
        break;
    }
  if (ok && !output.pager_gone)
    ok = tusk_printer_end (printer, result, &error);
  output_end (&output);
  fflush (shell->out);
  if (!ok && !output.pager_gone)
    {
      tusk_shell_print_error (shell, error, NULL);
      return FALSE;
    }
  return TRUE;
}
