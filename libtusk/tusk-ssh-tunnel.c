/* tusk-ssh-tunnel.c: SSH local forwards with libssh: connecting and
 * authenticating on the caller's thread, moving bytes on the tunnel's own.
 *
 * Design note.
 *
 * A tunnel has a listening socket on 127.0.0.1 (fixed for its life), a
 * wake-up pipe, and one thread ("tusk-ssh-tunnel") that owns the SSH
 * session while it is up.  The session is made on whichever thread calls
 * tusk_ssh_tunnel_open_sync () / _ensure_sync () (connect_session (): a
 * non-blocking libssh session driven by poll () with the cancellable's fd
 * beside it), and then handed over through `handoff`; from then on only the
 * tunnel's thread touches it (libssh sessions are not thread-safe).
 *
 * States of the tunnel, and who moves it:
 *
 *   DOWN --ensure/open: connect_session () ok, handoff set-->   UP
 *   UP   --the thread sees the session closed (io_drop ())-->  DOWN
 *   any  --tusk_ssh_tunnel_close (): stopping, thread joined,
 *          listener closed-->                                  CLOSED
 *   any  --last unref (closes first)-->                        gone
 *
 * The thread's loop polls: the wake-up pipe, the listener, the session's
 * socket (POLLOUT only while libssh has output pending), and each local
 * connection (POLLIN while its channel's window is open and nothing read
 * is still waiting to go out; POLLOUT while bytes for it wait).  No poll
 * has a timeout: the thread sleeps until there is something to do.
 *
 * Server-to-client bytes reach a local socket straight from libssh's
 * channel data callback (on_channel_data ()), written with a non-blocking
 * send; what the socket does not take stays in libssh's channel buffer,
 * which keeps the SSH window closed until it is drained (flow control),
 * and is drained by forward_flush_down () when the socket is writable.
 * Client-to-server bytes are read only as far as the channel's window
 * allows and written with ssh_channel_write ().
 *
 * Invariants (the thread's own data, no lock):
 *   1. A forward's local fd is open until forward_free (); its channel
 *      carries our callbacks until then, and nothing else frees it.
 *   2. Bytes of one direction are delivered in order: while `down` holds
 *      bytes, the data callback takes none (they stay in libssh).
 *   3. ssh_buffered is what libssh holds for the forward: exact after each
 *      data callback and each read.
 *   4. Callbacks only write to a local socket and set flags; forwards are
 *      freed only by io_service () and io_drop (), outside any libssh call.
 *
 * Locks: `close_mutex` serializes tusk_ssh_tunnel_close () (joining the
 * thread); `connect_mutex` serializes connects and protects `secret` and
 * `accepted_fingerprint`; `lock` protects up, stopping, handoff,
 * n_connects and fingerprint, and is held only for bookkeeping.  A thread
 * may take `lock` while holding one of the other two, never the other way,
 * and never holds `close_mutex` and `connect_mutex` at once.
 */
#define G_LOG_DOMAIN "tusk-ssh-tunnel"

#include "tusk-ssh-tunnel.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include "tusk-error-private.h"
#include "tusk-log.h"

#define DOWN_BUF_SIZE (256 * 1024) /* per forward, only while a client lags */
#define UP_BUF_SIZE   (64 * 1024)  /* per forward: one read from the client */
#define PUMP_BUDGET   64           /* session reads (4 KiB) per wake-up */
#define MAX_ASKS      3            /* passphrase / password attempts */

static const char HINT_UNREACHABLE[]
    = "Check the SSH server's host name and port, that sshd runs there and "
      "that no firewall blocks the port (`ssh -v` to the same host shows the "
      "same step)";
static const char HINT_HOST_KEY_CHANGED[]
    = "Someone may be intercepting the connection, or the server was "
      "reinstalled: confirm the new key with the server's administrator, "
      "then remove the old entry from the known_hosts file named above "
      "(ssh-keygen -R HOST -f FILE)";
static const char HINT_HOST_KEY_UNKNOWN[]
    = "Compare the fingerprint with the server's own (ssh-keygen -lf "
      "/etc/ssh/ssh_host_ed25519_key.pub on the server), then accept it "
      "from an interactive session or add the key to ~/.ssh/known_hosts";
static const char HINT_AUTH_KEY[]
    = "The SSH server refused the key—check the user name, and that the "
      "key's public half is in ~/.ssh/authorized_keys on the server";
static const char HINT_AUTH_PASSWORD[]
    = "The SSH server refused the password—check the user name and the "
      "password saved with the tunnel";
static const char HINT_AUTH_AGENT[]
    = "The SSH server accepted none of the ssh-agent's keys—load the right "
      "key with ssh-add, and check that SSH_AUTH_SOCK points at the agent";
static const char HINT_KEY_FILE[]
    = "The private key must be a file only you can read: check key_path, "
      "and run chmod 600 on the key";
static const char HINT_NO_SECRET[]
    = "Save the secret with the tunnel (it goes to the keychain), or connect "
      "from a front end that can ask for it";
static const char HINT_CHANNEL[]
    = "The SSH server could not reach the database: check the database host "
      "and port as the SSH server sees them (not as this machine does), that "
      "the database accepts connections from the SSH server, and that the "
      "server allows forwarding (AllowTcpForwarding)";

static void
secret_free (char *secret)
{
  if (secret)
    {
      explicit_bzero (secret, strlen (secret));
      g_free (secret);
    }
}

/* ---- questions ---------------------------------------------------------- */

typedef enum
{
  Q_PENDING,
  Q_ANSWERED,
  Q_WITHDRAWN,
} QState;

struct _TuskSshQuestion
{
  int ref_count; /* atomic */
  TuskSshQuestionKind kind;
  gboolean retry;
  char *message;
  char *tunnel_name;
  char *host;
  int port;
  char *username;
  char *fingerprint;
  char *key_type;
  char *key_path;
  GCancellable *cancellable; /* nullable, a reference */

  GMutex mutex; /* protects state, accepted and secret */
  GCond cond;   /* signalled when state leaves Q_PENDING, or on cancel */
  QState state;
  gboolean accepted;
  char *secret; /* wiped */
};

TuskSshQuestion *
tusk_ssh_question_ref (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  g_atomic_int_inc (&question->ref_count);
  return question;
}

void
tusk_ssh_question_unref (TuskSshQuestion *question)
{
  if (question == NULL || !g_atomic_int_dec_and_test (&question->ref_count))
    return;
  g_free (question->message);
  g_free (question->tunnel_name);
  g_free (question->host);
  g_free (question->username);
  g_free (question->fingerprint);
  g_free (question->key_type);
  g_free (question->key_path);
  g_clear_object (&question->cancellable);
  secret_free (question->secret);
  g_mutex_clear (&question->mutex);
  g_cond_clear (&question->cond);
  g_free (question);
}

TuskSshQuestionKind
tusk_ssh_question_get_kind (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, TUSK_SSH_QUESTION_HOST_KEY);
  return question->kind;
}

const char *
tusk_ssh_question_get_message (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->message;
}

const char *
tusk_ssh_question_get_tunnel_name (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->tunnel_name;
}

const char *
tusk_ssh_question_get_host (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->host;
}

int
tusk_ssh_question_get_port (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, 0);
  return question->port;
}

const char *
tusk_ssh_question_get_username (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->username;
}

const char *
tusk_ssh_question_get_fingerprint (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->fingerprint;
}

const char *
tusk_ssh_question_get_key_type (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->key_type;
}

const char *
tusk_ssh_question_get_key_path (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->key_path;
}

gboolean
tusk_ssh_question_is_retry (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, FALSE);
  return question->retry;
}

GCancellable *
tusk_ssh_question_get_cancellable (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, NULL);
  return question->cancellable;
}

void
tusk_ssh_question_answer (TuskSshQuestion *question, gboolean accept,
                          const char *secret)
{
  g_return_if_fail (question != NULL);

  g_mutex_lock (&question->mutex);
  if (question->state == Q_PENDING)
    {
      question->state = Q_ANSWERED;
      question->accepted = accept;
      if (accept && question->kind != TUSK_SSH_QUESTION_HOST_KEY)
        question->secret = g_strdup (secret ? secret : "");
      g_cond_broadcast (&question->cond);
    }
  g_mutex_unlock (&question->mutex);
}

gboolean
tusk_ssh_question_is_pending (TuskSshQuestion *question)
{
  g_return_val_if_fail (question != NULL, FALSE);

  g_mutex_lock (&question->mutex);
  gboolean pending = question->state == Q_PENDING;
  g_mutex_unlock (&question->mutex);
  return pending;
}

static void
on_question_cancelled (GCancellable *cancellable, gpointer data)
{
  TuskSshQuestion *question = data;
  (void)cancellable;

  g_mutex_lock (&question->mutex);
  g_cond_broadcast (&question->cond);
  g_mutex_unlock (&question->mutex);
}

/* ---- the tunnel ------------------------------------------------------- */

struct _TuskSshTunnel
{
  int ref_count; /* atomic */

  /* Immutable after tusk_ssh_tunnel_open_sync (). */
  TuskSshTunnelConfig *config;
  char *target_host;
  int target_port;
  char *target_socket; /* "<dir>/.s.PGSQL.<port>" for a socket directory */
  char *target_label;  /* "db.internal port 5432", for messages */
  char *ssh_dir;
  char *known_hosts;
  int connect_timeout_secs;
  TuskSshAskFunc ask;
  gpointer ask_data;
  GDestroyNotify ask_data_destroy;
  int listen_fd;
  guint16 local_port;
  int wake_read;
  int wake_write;
  GThread *thread;

  GMutex close_mutex;         /* serializes joining the thread */
  GMutex connect_mutex;       /* held through a connect (see the note) */
  char *secret;               /* the secret that worked (or the keychain's) */
  char *accepted_fingerprint; /* a host key accepted but not saved */

  GMutex lock;
  gboolean up;
  gboolean stopping;
  ssh_session handoff; /* a new session for the thread to adopt */
  guint n_connects;
  char *fingerprint; /* of the last session's host key */
};

static void
wake (TuskSshTunnel *tunnel)
{
  char byte = 1;
  while (write (tunnel->wake_write, &byte, 1) < 0 && errno == EINTR)
    ;
}

static void
session_free (ssh_session session)
{
  if (session == NULL)
    return;
  ssh_disconnect (session);
  ssh_free (session);
}

/* Opens the forward channel to the database (non-blocking: SSH_AGAIN until
 * the server answers). */
static int
open_forward (TuskSshTunnel *tunnel, ssh_channel channel)
{
  if (tunnel->target_socket)
    return ssh_channel_open_forward_unix (channel, tunnel->target_socket,
                                          "127.0.0.1", tunnel->local_port);
  return ssh_channel_open_forward (channel, tunnel->target_host,
                                   tunnel->target_port, "127.0.0.1",
                                   tunnel->local_port);
}

/* ---- connecting (on the caller's thread) --------------------------------- */

typedef struct
{
  TuskSshTunnel *tunnel;
  GCancellable *cancellable;
  int cancel_fd; /* -1 without a cancellable */
  ssh_session session;
  gint64 deadline; /* monotonic µs; 0: none */
  char *host;      /* as connected to (HostName applied) */
  unsigned int port;
  char *server;      /* "SSH server bastion (10.0.0.5 port 22)" */
  char *known_hosts; /* the file the host key is checked against */
  char *new_secret;  /* a secret the front end gave, that worked */
  char *fingerprint; /* of the server's host key */
  int methods;       /* what the server accepts (ssh_userauth_list) */
} Connect;

static void
restart_deadline (Connect *c)
{
  c->deadline = c->tunnel->connect_timeout_secs > 0
                    ? g_get_monotonic_time ()
                          + c->tunnel->connect_timeout_secs * G_USEC_PER_SEC
                    : 0;
}

static void
set_cancelled (Connect *c, GError **error)
{
  tusk_set_error (error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                  "Connecting to %s was cancelled", c->server);
}

/* Waits until the session's socket is ready for what libssh wants of it,
 * the deadline passes (FALSE: a timeout error naming @step) or the
 * cancellable is cancelled (FALSE: cancelled). */
static gboolean
connect_wait (Connect *c, const char *step, GError **error)
{
  for (;;)
    {
      if (g_cancellable_is_cancelled (c->cancellable))
        {
          set_cancelled (c, error);
          return FALSE;
        }
      int flags = ssh_get_poll_flags (c->session);
      short events = 0;
      if (flags & SSH_READ_PENDING)
        events |= POLLIN;
      if (flags & SSH_WRITE_PENDING)
        events |= POLLOUT;
      if (events == 0)
        events = POLLIN;
      socket_t fd = ssh_get_fd (c->session);
      struct pollfd fds[2] = {
        { .fd = fd, .events = events },
        { .fd = c->cancel_fd, .events = POLLIN },
      };
      int timeout_ms = -1;
      if (c->deadline)
        {
          gint64 left = c->deadline - g_get_monotonic_time ();
          timeout_ms = left > 0 ? (int)((left + 999) / 1000) : 0;
        }
      /* No socket yet (libssh is still resolving): look again soon. */
      if (fd == SSH_INVALID_SOCKET && (timeout_ms < 0 || timeout_ms > 10))
        timeout_ms = 10;

      int ready = poll (fds, 2, timeout_ms);
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready < 0)
        {
          g_propagate_error (error, tusk_error_from_errno (errno, step));
          return FALSE;
        }
      if (g_cancellable_is_cancelled (c->cancellable))
        {
          set_cancelled (c, error);
          return FALSE;
        }
      if (ready == 0 && c->deadline && g_get_monotonic_time () >= c->deadline)
        {
          tusk_set_error (error, TUSK_ERROR_SSH, HINT_UNREACHABLE,
                          "Timed out after %d s %s %s",
                          c->tunnel->connect_timeout_secs, step, c->server);
          return FALSE;
        }
      return TRUE;
    }
}

/* The libssh error of the session, for a message. */
static const char *
ssh_text (Connect *c)
{
  const char *text = ssh_get_error (c->session);
  return text && *text ? text : "the session failed";
}

/* A failure in the middle of a step: the session is gone, or libssh
 * refused; named with the step. */
static void
set_session_error (Connect *c, const char *step, GError **error)
{
  GError *e = tusk_error_from_ssh (c->session, step);
  g_propagate_prefixed_error (error, e, "%s: ", c->server);
}

static char *
server_label (const char *alias, const char *host, unsigned int port)
{
  if (alias == NULL || g_strcmp0 (alias, host) == 0)
    return g_strdup_printf ("SSH server %s port %u", host, port);
  return g_strdup_printf ("SSH server %s (%s port %u)", alias, host, port);
}

/* Sets the session's options: the tunnel's host, ~/.ssh/config, then the
 * tunnel's port (unless it is the default 22) and user. */
static gboolean
configure (Connect *c, GError **error)
{
  TuskSshTunnel *tunnel = c->tunnel;
  ssh_session s = c->session;
  int nodelay = 1;
  bool process_config = false;

  if (ssh_options_set (s, SSH_OPTIONS_HOST, tunnel->config->host) < 0
      || (tunnel->ssh_dir
          && ssh_options_set (s, SSH_OPTIONS_SSH_DIR, tunnel->ssh_dir) < 0))
    {
      set_session_error (c, "Invalid SSH settings", error);
      return FALSE;
    }
  /* ~/.ssh/config (or ssh_dir/config) and /etc/ssh/ssh_config, for the
   * host just set: HostName, Port, ProxyJump, IdentityFile, … */
  if (ssh_options_parse_config (s, NULL) < 0)
    {
      set_session_error (c, "Could not read the SSH configuration", error);
      return FALSE;
    }
  unsigned int port = 22;
  ssh_options_get_port (s, &port);
  if (tunnel->config->port != 22)
    port = (unsigned int)tunnel->config->port;
  if (ssh_options_set (s, SSH_OPTIONS_PORT, &port) < 0
      || ssh_options_set (s, SSH_OPTIONS_USER, tunnel->config->username) < 0
      || ssh_options_set (s, SSH_OPTIONS_NODELAY, &nodelay) < 0
      || ssh_options_set (s, SSH_OPTIONS_PROCESS_CONFIG, &process_config) < 0)
    {
      set_session_error (c, "Invalid SSH settings", error);
      return FALSE;
    }

  char *host = NULL;
  if (ssh_options_get (s, SSH_OPTIONS_HOST, &host) == SSH_OK)
    {
      c->host = g_strdup (host);
      ssh_string_free_char (host);
    }
  else
    c->host = g_strdup (tunnel->config->host);
  c->port = port;
  g_free (c->server);
  c->server = server_label (tunnel->config->host, c->host, port);
  char *proxy = NULL;
  if (ssh_options_get (s, SSH_OPTIONS_PROXYCOMMAND, &proxy) == SSH_OK)
    {
      char *label = c->server;
      c->server
          = g_strdup_printf ("%s through ProxyCommand \"%s\"", label, proxy);
      g_free (label);
      ssh_string_free_char (proxy);
    }

  /* Known hosts: ~/.ssh/known_hosts and the global file when they know the
   * host; Tusk's own file for every other host (where accepted keys go). */
  enum ssh_known_hosts_e known = ssh_session_has_known_hosts_entry (s);
  char *path = NULL;
  if (known != SSH_KNOWN_HOSTS_OK && tunnel->known_hosts)
    {
      if (ssh_options_set (s, SSH_OPTIONS_KNOWNHOSTS, tunnel->known_hosts) < 0)
        {
          set_session_error (c, "Invalid known_hosts path", error);
          return FALSE;
        }
      c->known_hosts = g_strdup (tunnel->known_hosts);
    }
  else if (ssh_options_get (s, SSH_OPTIONS_KNOWNHOSTS, &path) == SSH_OK)
    {
      c->known_hosts = g_strdup (path);
      ssh_string_free_char (path);
    }
  else
    c->known_hosts = g_strdup ("~/.ssh/known_hosts");
  return TRUE;
}

typedef enum
{
  ASK_YES,
  ASK_NO,
  ASK_NOBODY,
} AskResult;

/* Puts @kind to the front end and waits for the answer (or the
 * cancellable: FALSE with a cancelled error).  A secret given comes back in
 * @secret_out (transfer full, to wipe). */
static gboolean
ask (Connect *c, TuskSshQuestionKind kind, gboolean retry, const char *key_path,
     const char *key_type, AskResult *result, char **secret_out, GError **error)
{
  TuskSshTunnel *tunnel = c->tunnel;
  g_autoptr (TuskSshQuestion) q = g_new0 (TuskSshQuestion, 1);

  q->ref_count = 1;
  q->kind = kind;
  q->retry = retry;
  q->tunnel_name = g_strdup (tunnel->config->name);
  q->host = g_strdup (c->host);
  q->port = (int)c->port;
  q->username = g_strdup (tunnel->config->username);
  q->cancellable = c->cancellable ? g_object_ref (c->cancellable) : NULL;
  g_mutex_init (&q->mutex);
  g_cond_init (&q->cond);
  switch (kind)
    {
      case TUSK_SSH_QUESTION_HOST_KEY:
        q->fingerprint = g_strdup (c->fingerprint);
        q->key_type = g_strdup (key_type);
        q->message = g_strdup_printf (
            "The authenticity of %s can't be established%s. Its %s key "
            "fingerprint is %s. Connect and remember the key?",
            c->server,
            retry ? " (known_hosts has a key of another type for it)" : "",
            key_type, c->fingerprint);
        break;
      case TUSK_SSH_QUESTION_PASSPHRASE:
        q->key_path = g_strdup (key_path);
        q->message = g_strdup_printf (
            "%sEnter the passphrase of the key %s (for %s@%s)",
            retry ? "That passphrase does not open the key. " : "", key_path,
            tunnel->config->username, c->server);
        break;
      case TUSK_SSH_QUESTION_PASSWORD:
        q->message = g_strdup_printf (
            "%sEnter the password of %s on %s",
            retry ? "The SSH server refused that password. " : "",
            tunnel->config->username, c->server);
        break;
    }

  *result = ASK_NOBODY;
  if (tunnel->ask == NULL || !tunnel->ask (q, tunnel->ask_data))
    {
      g_mutex_lock (&q->mutex);
      q->state = Q_WITHDRAWN;
      g_mutex_unlock (&q->mutex);
      return TRUE;
    }

  gulong handler = 0;
  if (c->cancellable)
    handler = g_cancellable_connect (
        c->cancellable, G_CALLBACK (on_question_cancelled), q, NULL);
  g_mutex_lock (&q->mutex);
  while (q->state == Q_PENDING && !g_cancellable_is_cancelled (c->cancellable))
    g_cond_wait (&q->cond, &q->mutex);
  if (q->state == Q_PENDING)
    q->state = Q_WITHDRAWN;
  QState state = q->state;
  gboolean accepted = q->accepted;
  char *secret = g_steal_pointer (&q->secret);
  g_mutex_unlock (&q->mutex);
  g_cancellable_disconnect (c->cancellable, handler);

  if (state == Q_WITHDRAWN)
    {
      secret_free (secret);
      set_cancelled (c, error);
      return FALSE;
    }
  restart_deadline (c); /* the wait for a person does not count */
  *result = accepted ? ASK_YES : ASK_NO;
  if (secret_out)
    *secret_out = secret;
  else
    secret_free (secret);
  return TRUE;
}

/* Checks the server's host key (see the header). */
static gboolean
check_host_key (Connect *c, GError **error)
{
  TuskSshTunnel *tunnel = c->tunnel;
  ssh_key key = NULL;
  unsigned char *hash = NULL;
  size_t hash_len = 0;

  if (ssh_get_server_publickey (c->session, &key) != SSH_OK)
    {
      set_session_error (c, "No host key", error);
      return FALSE;
    }
  const char *key_type = ssh_key_type_to_char (ssh_key_type (key));
  g_autofree char *type = g_strdup (key_type ? key_type : "unknown");
  if (ssh_get_publickey_hash (key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len)
      == 0)
    {
      char *fp = ssh_get_fingerprint_hash (SSH_PUBLICKEY_HASH_SHA256, hash,
                                           hash_len);
      c->fingerprint = g_strdup (fp);
      ssh_string_free_char (fp);
      ssh_clean_pubkey_hash (&hash);
    }
  ssh_key_free (key);
  if (c->fingerprint == NULL)
    {
      set_session_error (c, "Could not hash the host key", error);
      return FALSE;
    }

  enum ssh_known_hosts_e known = ssh_session_is_known_server (c->session);
  switch (known)
    {
      case SSH_KNOWN_HOSTS_OK:
        return TRUE;
      case SSH_KNOWN_HOSTS_CHANGED:
        tusk_set_error (error, TUSK_ERROR_SSH, HINT_HOST_KEY_CHANGED,
                        "The host key of %s has changed: it now offers a %s "
                        "key with fingerprint %s, which does not match the "
                        "key recorded in %s. The connection was refused",
                        c->server, type, c->fingerprint, c->known_hosts);
        return FALSE;
      case SSH_KNOWN_HOSTS_ERROR:
        set_session_error (c, "Could not check the host key", error);
        return FALSE;
      case SSH_KNOWN_HOSTS_OTHER:
      case SSH_KNOWN_HOSTS_UNKNOWN:
      case SSH_KNOWN_HOSTS_NOT_FOUND:
      default:
        break;
    }

  /* Accepted earlier in this tunnel's life (but not saved)? */
  if (g_strcmp0 (tunnel->accepted_fingerprint, c->fingerprint) == 0)
    return TRUE;

  AskResult answer;
  if (!ask (c, TUSK_SSH_QUESTION_HOST_KEY, known == SSH_KNOWN_HOSTS_OTHER, NULL,
            type, &answer, NULL, error))
    return FALSE;
  switch (answer)
    {
      case ASK_YES:
        break;
      case ASK_NO:
        tusk_set_error (error, TUSK_ERROR_SSH, HINT_HOST_KEY_UNKNOWN,
                        "The host key of %s (%s %s) was not accepted",
                        c->server, type, c->fingerprint);
        return FALSE;
      case ASK_NOBODY:
      default:
        tusk_set_error (
            error, TUSK_ERROR_SSH, HINT_HOST_KEY_UNKNOWN,
            "The host key of %s is not known: its %s key fingerprint is %s. "
            "It was refused because nobody could be asked to confirm it",
            c->server, type, c->fingerprint);
        return FALSE;
    }

  g_free (tunnel->accepted_fingerprint);
  tunnel->accepted_fingerprint = g_strdup (c->fingerprint);
  if (tunnel->known_hosts == NULL
      || g_strcmp0 (c->known_hosts, tunnel->known_hosts) != 0)
    return TRUE;
  if (ssh_session_update_known_hosts (c->session) != SSH_OK)
    tusk_warn ("The host key of %s was accepted for this session, but could "
               "not be saved to %s: %s",
               c->server, tunnel->known_hosts, ssh_text (c));
  else
    tusk_info ("Added the %s host key of %s (%s) to %s", type, c->server,
               c->fingerprint, tunnel->known_hosts);
  return TRUE;
}

/* Reports a failed ssh_userauth_* call: DENIED with @hint, PARTIAL, or an
 * error of the session. */
static void
set_auth_error (Connect *c, int rc, const char *what, const char *hint,
                GError **error)
{
  if (rc == SSH_AUTH_DENIED)
    tusk_set_error (error, TUSK_ERROR_SSH, hint,
                    "SSH authentication as %s on %s failed: %s",
                    c->tunnel->config->username, c->server, what);
  else if (rc == SSH_AUTH_PARTIAL)
    tusk_set_error (error, TUSK_ERROR_SSH,
                    "The server asks for more than one authentication method "
                    "(AuthenticationMethods); Tusk tunnels support one",
                    "%s accepted %s but requires a further authentication "
                    "step",
                    c->server, what);
  else
    set_session_error (c, "Authentication failed", error);
}

static char *
methods_text (int methods)
{
  GString *text = g_string_new (NULL);
  static const struct
  {
    int flag;
    const char *name;
  } names[] = {
    { SSH_AUTH_METHOD_PUBLICKEY, "publickey" },
    { SSH_AUTH_METHOD_PASSWORD, "password" },
    { SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive" },
    { SSH_AUTH_METHOD_HOSTBASED, "hostbased" },
    { SSH_AUTH_METHOD_GSSAPI_MIC, "gssapi-with-mic" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (methods & names[i].flag)
      g_string_append_printf (text, "%s%s", text->len ? ", " : "",
                              names[i].name);
  if (text->len == 0)
    g_string_append (text, "none");
  return g_string_free (text, FALSE);
}

typedef struct
{
  const char *secret;
  gboolean asked;    /* the key is encrypted */
  gboolean supplied; /* and @secret was given to libssh */
} KeyLoad;

static int
supply_passphrase (const char *prompt, char *buf, size_t len, int echo,
                   int verify, void *userdata)
{
  KeyLoad *load = userdata;
  (void)prompt;
  (void)echo;
  (void)verify;

  load->asked = TRUE;
  if (load->secret == NULL || strlen (load->secret) + 1 > len)
    return -1;
  memcpy (buf, load->secret, strlen (load->secret) + 1);
  load->supplied = TRUE;
  return 0;
}

/* The key file must be a regular file its owner alone can read (OpenSSH's
 * rule, checked when the caller owns it). */
static gboolean
check_key_file (const char *path, GError **error)
{
  struct stat st;

  if (stat (path, &st) != 0)
    {
      int errsv = errno;
      if (errsv == ENOENT)
        tusk_set_error (error, TUSK_ERROR_VALIDATION, HINT_KEY_FILE,
                        "Invalid SSH tunnel: key_path: must be an existing "
                        "file (%s)",
                        path);
      else
        tusk_set_error (error, TUSK_ERROR_SSH, HINT_KEY_FILE,
                        "Could not read the SSH key %s: %s", path,
                        g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      tusk_set_error (error, TUSK_ERROR_SSH, HINT_KEY_FILE,
                      "The SSH key %s is not a regular file", path);
      return FALSE;
    }
  if (st.st_uid == getuid () && (st.st_mode & 077) != 0)
    {
      tusk_set_error (
          error, TUSK_ERROR_SSH, HINT_KEY_FILE,
          "The SSH key %s has permissions %04o: others can read it, so it is "
          "not used (as ssh refuses it too)—run chmod 600 %s",
          path, (unsigned int)(st.st_mode & 0777), path);
      return FALSE;
    }
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int errsv = errno;
      tusk_set_error (error, TUSK_ERROR_SSH, HINT_KEY_FILE,
                      "Could not read the SSH key %s: %s", path,
                      g_strerror (errsv));
      return FALSE;
    }
  close (fd);
  return TRUE;
}

static gboolean
auth_key (Connect *c, GError **error)
{
  TuskSshTunnel *tunnel = c->tunnel;
  const char *path = tunnel->config->key_path;
  ssh_key key = NULL;

  if (!check_key_file (path, error))
    return FALSE;

  KeyLoad load = { .secret = tunnel->secret };
  int rc = ssh_pki_import_privkey_file (path, NULL, supply_passphrase, &load,
                                        &key);
  if (rc != SSH_OK && !load.asked)
    {
      tusk_set_error (error, TUSK_ERROR_SSH, HINT_KEY_FILE,
                      "The SSH key %s could not be read: it is not a private "
                      "key in a format libssh knows (OpenSSH, PEM)",
                      path);
      return FALSE;
    }
  gboolean retry = load.supplied;
  for (int attempt = 0; rc != SSH_OK; attempt++)
    {
      AskResult answer;
      char *secret = NULL;
      if (attempt == MAX_ASKS)
        {
          tusk_set_error (error, TUSK_ERROR_SSH, HINT_KEY_FILE,
                          "None of %d passphrases opened the SSH key %s",
                          MAX_ASKS, path);
          return FALSE;
        }
      if (!ask (c, TUSK_SSH_QUESTION_PASSPHRASE, retry, path, NULL, &answer,
                &secret, error))
        return FALSE;
      if (answer != ASK_YES)
        {
          secret_free (secret);
          if (answer == ASK_NO)
            tusk_set_error (error, TUSK_ERROR_SSH, HINT_NO_SECRET,
                            "No passphrase was given for the SSH key %s", path);
          else if (retry)
            tusk_set_error (error, TUSK_ERROR_SSH, HINT_NO_SECRET,
                            "The passphrase saved for tunnel \"%s\" does not "
                            "open the SSH key %s",
                            tunnel->config->name, path);
          else
            tusk_set_error (error, TUSK_ERROR_SSH, HINT_NO_SECRET,
                            "The SSH key %s is encrypted and no passphrase "
                            "is saved for tunnel \"%s\"",
                            path, tunnel->config->name);
          return FALSE;
        }
      rc = ssh_pki_import_privkey_file (path, secret, NULL, NULL, &key);
      if (rc == SSH_OK)
        {
          secret_free (c->new_secret);
          c->new_secret = secret;
        }
      else
        secret_free (secret);
      retry = TRUE;
    }

  if (!(c->methods & SSH_AUTH_METHOD_PUBLICKEY))
    {
      g_autofree char *methods = methods_text (c->methods);
      ssh_key_free (key);
      tusk_set_error (error, TUSK_ERROR_SSH, HINT_AUTH_KEY,
                      "%s does not accept keys for %s (it accepts: %s)",
                      c->server, tunnel->config->username, methods);
      return FALSE;
    }
  while ((rc = ssh_userauth_publickey (c->session, NULL, key))
         == SSH_AUTH_AGAIN)
    if (!connect_wait (c, "authenticating with", error))
      {
        ssh_key_free (key);
        return FALSE;
      }
  ssh_key_free (key);
  if (rc == SSH_AUTH_SUCCESS)
    return TRUE;
  g_autofree char *what = g_strdup_printf ("the key %s was refused", path);
  set_auth_error (c, rc, what, HINT_AUTH_KEY, error);
  return FALSE;
}

/* keyboard-interactive, answering every hidden prompt with @password. */
static int
kbdint_password (Connect *c, const char *password, GError **error)
{
  int rc;

  for (;;)
    {
      while ((rc = ssh_userauth_kbdint (c->session, NULL, NULL))
             == SSH_AUTH_AGAIN)
        if (!connect_wait (c, "authenticating with", error))
          return -100;
      if (rc != SSH_AUTH_INFO)
        return rc;
      int n = ssh_userauth_kbdint_getnprompts (c->session);
      for (int i = 0; i < n; i++)
        {
          char echo = 0;
          ssh_userauth_kbdint_getprompt (c->session, (unsigned int)i, &echo);
          ssh_userauth_kbdint_setanswer (c->session, (unsigned int)i,
                                         echo ? "" : password);
        }
    }
}

static gboolean
auth_password (Connect *c, GError **error)
{
  TuskSshTunnel *tunnel = c->tunnel;
  gboolean use_kbdint = !(c->methods & SSH_AUTH_METHOD_PASSWORD);

  if (use_kbdint && !(c->methods & SSH_AUTH_METHOD_INTERACTIVE))
    {
      g_autofree char *methods = methods_text (c->methods);
      tusk_set_error (error, TUSK_ERROR_SSH, HINT_AUTH_PASSWORD,
                      "%s does not accept passwords for %s (it accepts: %s)",
                      c->server, tunnel->config->username, methods);
      return FALSE;
    }

  char *answer_secret = NULL; /* from the front end: wiped */
  const char *secret = tunnel->secret;
  gboolean retry = FALSE;
  gboolean ok = FALSE;
  for (int n_asks = 0;;)
    {
      if (secret == NULL)
        {
          AskResult answer;
          secret_free (g_steal_pointer (&answer_secret));
          if (n_asks++ == MAX_ASKS)
            {
              tusk_set_error (error, TUSK_ERROR_SSH, HINT_AUTH_PASSWORD,
                              "SSH authentication as %s on %s failed: %d "
                              "passwords were refused",
                              tunnel->config->username, c->server, MAX_ASKS);
              break;
            }
          if (!ask (c, TUSK_SSH_QUESTION_PASSWORD, retry, NULL, NULL, &answer,
                    &answer_secret, error))
            break;
          if (answer == ASK_NOBODY && retry)
            {
              set_auth_error (c, SSH_AUTH_DENIED,
                              "the password saved for the tunnel was refused",
                              HINT_AUTH_PASSWORD, error);
              break;
            }
          if (answer != ASK_YES)
            {
              if (answer == ASK_NO)
                tusk_set_error (error, TUSK_ERROR_SSH, HINT_NO_SECRET,
                                "No password was given for %s on %s",
                                tunnel->config->username, c->server);
              else
                tusk_set_error (error, TUSK_ERROR_SSH, HINT_NO_SECRET,
                                "No password is saved for %s on %s (SSH "
                                "tunnel \"%s\") and nobody could be asked "
                                "for one",
                                tunnel->config->username, c->server,
                                tunnel->config->name);
              break;
            }
          secret = answer_secret;
        }

      int rc;
      if (use_kbdint)
        rc = kbdint_password (c, secret, error);
      else
        while ((rc = ssh_userauth_password (c->session, NULL, secret))
               == SSH_AUTH_AGAIN)
          if (!connect_wait (c, "authenticating with", error))
            {
              rc = -100;
              break;
            }
      if (rc == -100)
        break;
      if (rc == SSH_AUTH_SUCCESS)
        {
          if (answer_secret)
            {
              secret_free (c->new_secret);
              c->new_secret = g_steal_pointer (&answer_secret);
            }
          ok = TRUE;
          break;
        }
      if (rc != SSH_AUTH_DENIED)
        {
          set_auth_error (c, rc, "the password", HINT_AUTH_PASSWORD, error);
          break;
        }
      secret = NULL;
      retry = TRUE;
    }
  secret_free (answer_secret);
  return ok;
}

static gboolean
auth_agent (Connect *c, GError **error)
{
  int rc;

  while ((rc = ssh_userauth_publickey_auto (c->session, NULL, NULL))
         == SSH_AUTH_AGAIN)
    if (!connect_wait (c, "authenticating with", error))
      return FALSE;
  if (rc == SSH_AUTH_SUCCESS)
    return TRUE;
  const char *sock = g_getenv ("SSH_AUTH_SOCK");
  if (rc == SSH_AUTH_DENIED && (sock == NULL || *sock == '\0'))
    set_auth_error (c, rc,
                    "no ssh-agent is running (SSH_AUTH_SOCK is not set) and "
                    "no default key was accepted",
                    "Start ssh-agent and add the key with ssh-add, or give the "
                    "tunnel a key file",
                    error);
  else
    set_auth_error (c, rc,
                    "none of the ssh-agent's keys (nor a default key) was "
                    "accepted",
                    HINT_AUTH_AGENT, error);
  return FALSE;
}

static gboolean
authenticate (Connect *c, GError **error)
{
  int rc;

  /* "none" first: its refusal lists the methods the server accepts. */
  while ((rc = ssh_userauth_none (c->session, NULL)) == SSH_AUTH_AGAIN)
    if (!connect_wait (c, "authenticating with", error))
      return FALSE;
  if (rc == SSH_AUTH_SUCCESS)
    return TRUE;
  if (rc == SSH_AUTH_ERROR)
    {
      set_session_error (c, "Authentication failed", error);
      return FALSE;
    }
  c->methods = ssh_userauth_list (c->session, NULL);

  switch (c->tunnel->config->auth_method)
    {
      case TUSK_SSH_AUTH_KEY:
        return auth_key (c, error);
      case TUSK_SSH_AUTH_PASSWORD:
        return auth_password (c, error);
      case TUSK_SSH_AUTH_AGENT:
      default:
        return auth_agent (c, error);
    }
}

/* Opens and closes one channel to the database: the server's refusal (no
 * route, connection refused, forwarding off) is reported here, once, with
 * its reason, rather than as a closed connection later. */
static gboolean
probe_forward (Connect *c, GError **error)
{
  TuskSshTunnel *tunnel = c->tunnel;
  ssh_channel channel = ssh_channel_new (c->session);
  int rc;

  if (channel == NULL)
    {
      set_session_error (c, "Could not open a channel", error);
      return FALSE;
    }
  while ((rc = open_forward (tunnel, channel)) == SSH_AGAIN)
    if (!connect_wait (c, "opening a channel through", error))
      {
        ssh_channel_free (channel);
        return FALSE;
      }
  if (rc != SSH_OK)
    {
      if (ssh_is_connected (c->session)
          && ssh_get_error_code (c->session) == SSH_REQUEST_DENIED)
        tusk_set_error (error, TUSK_ERROR_SSH, HINT_CHANNEL,
                        "%s could not open a connection to the database at "
                        "%s: %s",
                        c->server, tunnel->target_label, ssh_text (c));
      else
        set_session_error (c, "Opening a channel failed", error);
      ssh_channel_free (channel);
      return FALSE;
    }
  ssh_channel_close (channel);
  ssh_channel_free (channel);
  return TRUE;
}

/* Makes a session that is connected, verified, authenticated and proven to
 * reach the database; the caller holds connect_mutex.  Returns (transfer
 * full) the session in non-blocking mode, or NULL with @error. */
static ssh_session
connect_session (TuskSshTunnel *tunnel, GCancellable *cancellable,
                 GError **error)
{
  Connect c = { .tunnel = tunnel, .cancellable = cancellable, .cancel_fd = -1 };
  GPollFD cancel_fd = { .fd = -1 };
  gboolean have_cancel_fd
      = cancellable && g_cancellable_make_pollfd (cancellable, &cancel_fd);
  gboolean ok = FALSE;
  gint64 start = g_get_monotonic_time ();
  int rc;

  c.cancel_fd = have_cancel_fd ? cancel_fd.fd : -1;
  c.server = server_label (NULL, tunnel->config->host,
                           (unsigned int)tunnel->config->port);
  restart_deadline (&c);
  c.session = ssh_new ();
  if (c.session == NULL)
    {
      tusk_set_error (error, TUSK_ERROR_INTERNAL, NULL,
                      "Could not create an SSH session");
      goto out;
    }
  if (!configure (&c, error))
    goto out;
  if (g_cancellable_is_cancelled (cancellable))
    {
      set_cancelled (&c, error);
      goto out;
    }

  ssh_set_blocking (c.session, 0);
  while ((rc = ssh_connect (c.session)) == SSH_AGAIN)
    if (!connect_wait (&c, "connecting to", error))
      goto out;
  if (rc != SSH_OK)
    {
      tusk_set_error (error, TUSK_ERROR_SSH, HINT_UNREACHABLE,
                      "Could not reach %s: %s", c.server, ssh_text (&c));
      goto out;
    }
  if (!check_host_key (&c, error) || !authenticate (&c, error)
      || !probe_forward (&c, error))
    goto out;
  ok = TRUE;

out:
  if (have_cancel_fd)
    g_cancellable_release_fd (cancellable);
  if (ok)
    {
      if (c.new_secret)
        {
          secret_free (tunnel->secret);
          tunnel->secret = g_steal_pointer (&c.new_secret);
        }
      g_mutex_lock (&tunnel->lock);
      g_free (tunnel->fingerprint);
      tunnel->fingerprint = g_strdup (c.fingerprint);
      g_mutex_unlock (&tunnel->lock);
      tusk_info ("SSH tunnel \"%s\": %s@%s authenticated in %.1f ms; "
                 "127.0.0.1:%u forwards to %s",
                 tunnel->config->name, tunnel->config->username, c.server,
                 (g_get_monotonic_time () - start) / 1000.0, tunnel->local_port,
                 tunnel->target_label);
    }
  else
    g_clear_pointer (&c.session, session_free);
  secret_free (c.new_secret);
  g_free (c.host);
  g_free (c.server);
  g_free (c.known_hosts);
  g_free (c.fingerprint);
  return c.session;
}

/* ---- moving bytes (on the tunnel's thread) --------------------------------
 */

typedef struct Io Io;

typedef struct
{
  int fd;
  ssh_channel channel;
  struct ssh_channel_callbacks_struct callbacks;
  gboolean open; /* the channel is open */
  gboolean done; /* to be freed by io_service () */
  char *up;      /* read from the client, not yet in the channel */
  gsize up_len, up_off;
  char *down; /* from the channel, not yet taken by the client */
  gsize down_len, down_off;
  gsize ssh_buffered;     /* what libssh holds for us (invariant 3) */
  gboolean local_eof;     /* the client shut its sending side */
  gboolean eof_sent;      /* so we sent the channel's EOF */
  gboolean remote_eof;    /* the server sent EOF */
  gboolean shut_wr;       /* so we shut the client's receiving side */
  gboolean remote_closed; /* the server closed the channel */
  gboolean failed;        /* the client's socket failed */
} Forward;

struct Io
{
  TuskSshTunnel *tunnel;
  ssh_session session; /* NULL while down */
  ssh_event event;
  GPtrArray *forwards; /* of Forward * */
};

static int
on_channel_data (ssh_session session, ssh_channel channel, void *data,
                 uint32_t len, int is_stderr, void *userdata)
{
  Forward *f = userdata;
  (void)session;
  (void)channel;

  if (is_stderr || f->failed)
    return (int)len; /* nobody to give them to */
  if (f->down_off < f->down_len)
    {
      f->ssh_buffered = len; /* after what we hold (invariant 2) */
      return 0;
    }
  ssize_t n = send (f->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0)
    {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        {
          f->failed = TRUE;
          f->ssh_buffered = 0;
          return (int)len;
        }
      n = 0;
    }
  f->ssh_buffered = len - (gsize)n;
  return (int)n;
}

static void
on_channel_eof (ssh_session session, ssh_channel channel, void *userdata)
{
  Forward *f = userdata;
  (void)session;
  (void)channel;
  f->remote_eof = TRUE;
}

static void
on_channel_close (ssh_session session, ssh_channel channel, void *userdata)
{
  Forward *f = userdata;
  (void)session;
  (void)channel;
  f->remote_eof = TRUE;
  f->remote_closed = TRUE;
}

static void
forward_free (Forward *f)
{
  if (f->channel)
    {
      ssh_remove_channel_callbacks (f->channel, &f->callbacks);
      ssh_channel_free (f->channel);
    }
  close (f->fd);
  g_free (f->up);
  g_free (f->down);
  g_free (f);
}

static void
forward_try_open (Io *io, Forward *f)
{
  int rc = open_forward (io->tunnel, f->channel);
  if (rc == SSH_OK)
    f->open = TRUE;
  else if (rc != SSH_AGAIN)
    {
      tusk_warn ("SSH tunnel \"%s\": the server refused a channel to %s: %s",
                 io->tunnel->config->name, io->tunnel->target_label,
                 ssh_get_error (io->session));
      f->done = TRUE;
    }
}

/* Gives the client what waits for it: our buffer, then libssh's. */
static void
forward_flush_down (Forward *f)
{
  for (;;)
    {
      while (f->down_off < f->down_len)
        {
          ssize_t n
              = send (f->fd, f->down + f->down_off, f->down_len - f->down_off,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
          if (n < 0)
            {
              f->failed = TRUE;
              return;
            }
          f->down_off += (gsize)n;
        }
      f->down_off = f->down_len = 0;
      if (f->ssh_buffered == 0 || !f->open)
        return;
      if (f->down == NULL)
        f->down = g_malloc (DOWN_BUF_SIZE);
      int r = ssh_channel_read_nonblocking (f->channel, f->down, DOWN_BUF_SIZE,
                                            0);
      if (r <= 0)
        {
          f->ssh_buffered = 0;
          return;
        }
      f->ssh_buffered
          = (gsize)r < f->ssh_buffered ? f->ssh_buffered - (gsize)r : 0;
      f->down_len = (gsize)r;
    }
}

/* Writes what was read from the client into the channel, as far as its
 * window allows. */
static void
forward_flush_up (Forward *f)
{
  while (f->up_off < f->up_len)
    {
      int w = ssh_channel_write (f->channel, f->up + f->up_off,
                                 (uint32_t)(f->up_len - f->up_off));
      if (w == SSH_ERROR)
        {
          f->failed = TRUE;
          return;
        }
      if (w <= 0)
        return; /* window closed, or a key exchange runs: later */
      f->up_off += (gsize)w;
    }
  f->up_off = f->up_len = 0;
}

static void
forward_read_up (Forward *f)
{
  if (!f->open || f->local_eof || f->up_off < f->up_len || f->failed)
    return;
  uint32_t window = ssh_channel_window_size (f->channel);
  if (window == 0)
    return;
  if (f->up == NULL)
    f->up = g_malloc (UP_BUF_SIZE);
  ssize_t n
      = recv (f->fd, f->up, MIN ((gsize)window, UP_BUF_SIZE), MSG_DONTWAIT);
  if (n < 0)
    {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        f->failed = TRUE;
      return;
    }
  if (n == 0)
    {
      f->local_eof = TRUE;
      return;
    }
  f->up_len = (gsize)n;
  f->up_off = 0;
  forward_flush_up (f);
}

/* Moves every forward on as far as it can go, and frees the finished. */
static void
io_service (Io *io)
{
  for (guint i = 0; i < io->forwards->len; i++)
    {
      Forward *f = io->forwards->pdata[i];

      g_assert (f->up_off <= f->up_len && f->down_off <= f->down_len);
      g_assert (f->open || (f->up_len == 0 && f->ssh_buffered == 0));
      if (!f->open && !f->done)
        forward_try_open (io, f);
      if (f->open && !f->failed)
        {
          if (f->up_off < f->up_len)
            forward_flush_up (f);
          if (f->local_eof && !f->eof_sent && f->up_off == f->up_len)
            {
              ssh_channel_send_eof (f->channel);
              f->eof_sent = TRUE;
            }
          if (f->down_off < f->down_len || f->ssh_buffered > 0)
            forward_flush_down (f);
          if (f->remote_eof && !f->shut_wr && f->down_off == f->down_len
              && f->ssh_buffered == 0)
            {
              shutdown (f->fd, SHUT_WR);
              f->shut_wr = TRUE;
            }
          if ((f->remote_closed && f->shut_wr) || (f->eof_sent && f->shut_wr))
            f->done = TRUE;
        }
      if (f->failed)
        f->done = TRUE;
    }

  for (guint i = io->forwards->len; i-- > 0;)
    {
      Forward *f = io->forwards->pdata[i];
      if (f->done)
        {
          g_ptr_array_remove_index_fast (io->forwards, i);
          forward_free (f);
        }
    }
}

static void
io_accept (Io *io)
{
  TuskSshTunnel *tunnel = io->tunnel;

  for (;;)
    {
      int fd = accept4 (tunnel->listen_fd, NULL, NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && errno == EINTR)
        continue;
      if (fd < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK)
            tusk_warn ("SSH tunnel \"%s\": accept: %s", tunnel->config->name,
                       g_strerror (errno));
          return;
        }
      if (io->session == NULL)
        {
          tusk_debug ("SSH tunnel \"%s\" is down: closed a local connection",
                      tunnel->config->name);
          close (fd);
          continue;
        }
      int one = 1;
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

      Forward *f = g_new0 (Forward, 1);
      f->fd = fd;
      f->channel = ssh_channel_new (io->session);
      if (f->channel == NULL)
        {
          close (fd);
          g_free (f);
          continue;
        }
      ssh_callbacks_init (&f->callbacks);
      f->callbacks.userdata = f;
      f->callbacks.channel_data_function = on_channel_data;
      f->callbacks.channel_eof_function = on_channel_eof;
      f->callbacks.channel_close_function = on_channel_close;
      ssh_set_channel_callbacks (f->channel, &f->callbacks);
      g_ptr_array_add (io->forwards, f);
      forward_try_open (io, f);
    }
}

static void
io_adopt (Io *io, ssh_session session)
{
  io->session = session;
  io->event = ssh_event_new ();
  ssh_event_add_session (io->event, session);
}

/* The session is gone (or the tunnel stops): every local connection is
 * closed and the tunnel is down. */
static void
io_drop (Io *io, const char *reason)
{
  TuskSshTunnel *tunnel = io->tunnel;

  if (io->session == NULL)
    return;
  if (reason)
    tusk_warn ("SSH tunnel \"%s\" dropped (%s); %u connection%s through it "
               "closed",
               tunnel->config->name, reason, io->forwards->len,
               io->forwards->len == 1 ? "" : "s");
  for (guint i = 0; i < io->forwards->len; i++)
    forward_free (io->forwards->pdata[i]);
  g_ptr_array_set_size (io->forwards, 0);
  ssh_event_remove_session (io->event, io->session);
  g_clear_pointer (&io->event, ssh_event_free);
  g_clear_pointer (&io->session, session_free);

  g_mutex_lock (&tunnel->lock);
  if (tunnel->handoff == NULL)
    tunnel->up = FALSE;
  g_mutex_unlock (&tunnel->lock);
}

/* Adopts a session handed over by a connect (@adopted, nullable, says
 * whether there was one); returns TRUE when the thread is to stop. */
static gboolean
io_take_handoff (Io *io, gboolean *adopted)
{
  TuskSshTunnel *tunnel = io->tunnel;

  g_mutex_lock (&tunnel->lock);
  gboolean stopping = tunnel->stopping;
  ssh_session handoff = g_steal_pointer (&tunnel->handoff);
  g_mutex_unlock (&tunnel->lock);
  if (handoff)
    {
      io_drop (io, NULL);
      io_adopt (io, handoff);
    }
  if (adopted)
    *adopted = handoff != NULL;
  return stopping;
}

static gboolean
session_alive (ssh_session session)
{
  return ssh_is_connected (session)
         && !(ssh_get_status (session) & (SSH_CLOSED | SSH_CLOSED_ERROR));
}

static gpointer
io_thread (gpointer data)
{
  TuskSshTunnel *tunnel = data;
  Io io = { .tunnel = tunnel, .forwards = g_ptr_array_new () };
  GArray *pfds = g_array_new (FALSE, FALSE, sizeof (struct pollfd));

  while (!io_take_handoff (&io, NULL))
    {
      g_array_set_size (pfds, 0);
      struct pollfd p = { .fd = tunnel->wake_read, .events = POLLIN };
      g_array_append_val (pfds, p);
      p = (struct pollfd){ .fd = tunnel->listen_fd, .events = POLLIN };
      g_array_append_val (pfds, p);
      p = (struct pollfd){ .fd = -1 };
      if (io.session)
        {
          int flags = ssh_get_poll_flags (io.session);
          p.fd = ssh_get_fd (io.session);
          p.events = POLLIN | ((flags & SSH_WRITE_PENDING) ? POLLOUT : 0);
        }
      g_array_append_val (pfds, p);
      guint n_forwards = io.forwards->len;
      for (guint i = 0; i < n_forwards; i++)
        {
          Forward *f = io.forwards->pdata[i];
          p = (struct pollfd){ .fd = f->fd };
          if (f->open && !f->local_eof && f->up_off == f->up_len
              && ssh_channel_window_size (f->channel) > 0)
            p.events |= POLLIN;
          if (f->down_off < f->down_len || f->ssh_buffered > 0)
            p.events |= POLLOUT;
          if (p.events == 0)
            p.fd = -1;
          g_array_append_val (pfds, p);
        }

      struct pollfd *fds = (struct pollfd *)(void *)pfds->data;
      int ready = poll (fds, pfds->len, -1);
      if (ready < 0)
        {
          if (errno != EINTR)
            {
              tusk_error ("SSH tunnel \"%s\": poll: %s", tunnel->config->name,
                          g_strerror (errno));
              break;
            }
          continue;
        }

      if (fds[0].revents)
        {
          char bytes[64];
          while (read (tunnel->wake_read, bytes, sizeof bytes) > 0)
            ;
          /* A new session first: a client may already be connecting to
           * it (and the listener is polled again with it). */
          gboolean adopted = FALSE;
          if (io_take_handoff (&io, &adopted))
            break;
          if (adopted)
            continue;
        }
      if (io.session && fds[2].revents)
        for (int i = 0; i < PUMP_BUDGET; i++)
          if (ssh_event_dopoll (io.event, 0) != SSH_OK)
            break;
      for (guint i = 0; i < n_forwards; i++)
        {
          Forward *f = io.forwards->pdata[i];
          short revents = fds[3 + i].revents;
          if (revents & POLLOUT)
            forward_flush_down (f);
          if (revents & (POLLIN | POLLHUP | POLLERR))
            forward_read_up (f);
        }
      if (fds[1].revents & POLLIN)
        io_accept (&io);
      if (io.session)
        io_service (&io);
      if (io.session && !session_alive (io.session))
        io_drop (&io, ssh_get_error (io.session));
    }

  io_drop (&io, NULL);
  g_ptr_array_unref (io.forwards);
  g_array_unref (pfds);
  return NULL;
}

/* ---- public -------------------------------------------------------------- */

static void
tunnel_free (TuskSshTunnel *tunnel)
{
  tusk_ssh_tunnel_close (tunnel);
  session_free (tunnel->handoff);
  if (tunnel->wake_read >= 0)
    close (tunnel->wake_read);
  if (tunnel->wake_write >= 0)
    close (tunnel->wake_write);
  if (tunnel->ask_data_destroy)
    tunnel->ask_data_destroy (tunnel->ask_data);
  tusk_ssh_tunnel_config_free (tunnel->config);
  g_free (tunnel->target_host);
  g_free (tunnel->target_socket);
  g_free (tunnel->target_label);
  g_free (tunnel->ssh_dir);
  g_free (tunnel->known_hosts);
  secret_free (tunnel->secret);
  g_free (tunnel->accepted_fingerprint);
  g_free (tunnel->fingerprint);
  g_mutex_clear (&tunnel->close_mutex);
  g_mutex_clear (&tunnel->connect_mutex);
  g_mutex_clear (&tunnel->lock);
  g_free (tunnel);
}

void
tusk_ssh_tunnel_close (TuskSshTunnel *tunnel)
{
  g_return_if_fail (tunnel != NULL);

  g_mutex_lock (&tunnel->close_mutex);
  GThread *thread = g_steal_pointer (&tunnel->thread);
  g_mutex_lock (&tunnel->lock);
  tunnel->stopping = TRUE;
  g_mutex_unlock (&tunnel->lock);
  if (thread)
    {
      wake (tunnel);
      g_thread_join (thread);
    }
  /* New connections are refused rather than left in the backlog. */
  if (tunnel->listen_fd >= 0)
    {
      close (tunnel->listen_fd);
      tunnel->listen_fd = -1;
    }
  g_mutex_unlock (&tunnel->close_mutex);
}

/* Listens on 127.0.0.1 on a port the system picks. */
static gboolean
tunnel_listen (TuskSshTunnel *tunnel, GError **error)
{
  struct sockaddr_in addr
      = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof addr;
  int fds[2];

  tunnel->listen_fd
      = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (tunnel->listen_fd < 0
      || bind (tunnel->listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0
      || listen (tunnel->listen_fd, 64) < 0
      || getsockname (tunnel->listen_fd, (struct sockaddr *)&addr, &len) < 0)
    {
      g_propagate_error (error, tusk_error_from_errno (
                                    errno, "Could not listen on 127.0.0.1 for "
                                           "the SSH tunnel"));
      return FALSE;
    }
  tunnel->local_port = ntohs (addr.sin_port);
  if (pipe2 (fds, O_NONBLOCK | O_CLOEXEC) < 0)
    {
      g_propagate_error (
          error, tusk_error_from_errno (errno, "Could not make a pipe"));
      return FALSE;
    }
  tunnel->wake_read = fds[0];
  tunnel->wake_write = fds[1];
  return TRUE;
}

TuskSshTunnel *
tusk_ssh_tunnel_open_sync (const TuskSshTunnelConfig *config,
                           const char *target_host, int target_port,
                           const TuskSshTunnelOptions *options,
                           GCancellable *cancellable, GError **error)
{
  static const TuskSshTunnelOptions none = { 0 };

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (target_host != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (options == NULL)
    options = &none;
  if (!tusk_ssh_tunnel_config_validate (config, error) || target_port < 1
      || target_port > 65535 || *target_host == '\0')
    {
      if (error && *error == NULL)
        tusk_set_error (error, TUSK_ERROR_VALIDATION, NULL,
                        "Invalid database address for the SSH tunnel: "
                        "host \"%s\" port %d",
                        target_host, target_port);
      if (options->ask_data_destroy)
        options->ask_data_destroy (options->ask_data);
      return NULL;
    }

  TuskSshTunnel *tunnel = g_new0 (TuskSshTunnel, 1);
  tunnel->ref_count = 1;
  tunnel->config = tusk_ssh_tunnel_config_copy (config);
  tunnel->target_host = g_strdup (target_host);
  tunnel->target_port = target_port;
  if (target_host[0] == '/')
    {
      tunnel->target_socket
          = g_strdup_printf ("%s/.s.PGSQL.%d", target_host, target_port);
      tunnel->target_label = g_strdup (tunnel->target_socket);
    }
  else
    tunnel->target_label
        = g_strdup_printf ("%s port %d", target_host, target_port);
  tunnel->ssh_dir = g_strdup (options->ssh_dir);
  tunnel->known_hosts = g_strdup (options->known_hosts);
  tunnel->secret = g_strdup (options->secret);
  tunnel->connect_timeout_secs = MAX (options->connect_timeout_secs, 0);
  tunnel->ask = options->ask;
  tunnel->ask_data = options->ask_data;
  tunnel->ask_data_destroy = options->ask_data_destroy;
  tunnel->listen_fd = tunnel->wake_read = tunnel->wake_write = -1;
  g_mutex_init (&tunnel->close_mutex);
  g_mutex_init (&tunnel->connect_mutex);
  g_mutex_init (&tunnel->lock);

  if (!tunnel_listen (tunnel, error))
    {
      tunnel_free (tunnel);
      return NULL;
    }
  g_autoptr (GError) thread_error = NULL;
  tunnel->thread
      = g_thread_try_new ("tusk-ssh-tunnel", io_thread, tunnel, &thread_error);
  if (tunnel->thread == NULL)
    tusk_set_error (error, TUSK_ERROR_INTERNAL, NULL,
                    "Could not start the SSH tunnel's thread: %s",
                    thread_error->message);
  if (tunnel->thread == NULL
      || !tusk_ssh_tunnel_ensure_sync (tunnel, cancellable, error))
    {
      tunnel_free (tunnel);
      return NULL;
    }
  return tunnel;
}

TuskSshTunnel *
tusk_ssh_tunnel_ref (TuskSshTunnel *tunnel)
{
  g_return_val_if_fail (tunnel != NULL, NULL);
  g_atomic_int_inc (&tunnel->ref_count);
  return tunnel;
}

void
tusk_ssh_tunnel_unref (TuskSshTunnel *tunnel)
{
  if (tunnel == NULL || !g_atomic_int_dec_and_test (&tunnel->ref_count))
    return;
  tusk_debug ("closing SSH tunnel \"%s\" (127.0.0.1:%u)", tunnel->config->name,
              tunnel->local_port);
  tunnel_free (tunnel);
}

guint16
tusk_ssh_tunnel_get_local_port (TuskSshTunnel *tunnel)
{
  g_return_val_if_fail (tunnel != NULL, 0);
  return tunnel->local_port;
}

gboolean
tusk_ssh_tunnel_is_up (TuskSshTunnel *tunnel)
{
  g_return_val_if_fail (tunnel != NULL, FALSE);

  g_mutex_lock (&tunnel->lock);
  gboolean up = tunnel->up;
  g_mutex_unlock (&tunnel->lock);
  return up;
}

guint
tusk_ssh_tunnel_get_n_connects (TuskSshTunnel *tunnel)
{
  g_return_val_if_fail (tunnel != NULL, 0);

  g_mutex_lock (&tunnel->lock);
  guint n = tunnel->n_connects;
  g_mutex_unlock (&tunnel->lock);
  return n;
}

char *
tusk_ssh_tunnel_dup_host_key_fingerprint (TuskSshTunnel *tunnel)
{
  g_return_val_if_fail (tunnel != NULL, NULL);

  g_mutex_lock (&tunnel->lock);
  char *fingerprint = g_strdup (tunnel->fingerprint);
  g_mutex_unlock (&tunnel->lock);
  return fingerprint;
}

/* Sets the error of a closed tunnel and returns TRUE, or FALSE when it is
 * not closed. */
static gboolean
closed_error (TuskSshTunnel *tunnel, GError **error)
{
  g_mutex_lock (&tunnel->lock);
  gboolean stopping = tunnel->stopping;
  g_mutex_unlock (&tunnel->lock);
  if (stopping)
    tusk_set_error (error, TUSK_ERROR_CONNECTION, "Connect again",
                    "The SSH tunnel \"%s\" is closed", tunnel->config->name);
  return stopping;
}

gboolean
tusk_ssh_tunnel_ensure_sync (TuskSshTunnel *tunnel, GCancellable *cancellable,
                             GError **error)
{
  g_return_val_if_fail (tunnel != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (tusk_ssh_tunnel_is_up (tunnel))
    return TRUE;

  g_mutex_lock (&tunnel->connect_mutex);
  gboolean up = tusk_ssh_tunnel_is_up (tunnel);
  ssh_session session = NULL;
  if (!up && !closed_error (tunnel, error))
    session = connect_session (tunnel, cancellable, error);
  if (session)
    {
      g_mutex_lock (&tunnel->lock);
      gboolean stopping = tunnel->stopping;
      if (!stopping)
        {
          tunnel->handoff = g_steal_pointer (&session);
          tunnel->up = TRUE;
        }
      guint n = ++tunnel->n_connects;
      g_mutex_unlock (&tunnel->lock);
      if (stopping)
        {
          session_free (session);
          closed_error (tunnel, error);
        }
      else
        {
          wake (tunnel);
          if (n > 1)
            tusk_info ("SSH tunnel \"%s\" re-established",
                       tunnel->config->name);
          up = TRUE;
        }
    }
  g_mutex_unlock (&tunnel->connect_mutex);
  return up;
}
