/* tusk-ssh-tunnel.h: an SSH local forward (data model "SshTunnelConfig"):
 * 127.0.0.1:<ephemeral port> -> the SSH server -> the database host and
 * port, the way `ssh -N -L` makes one, with libssh.
 *
 * Opening a tunnel connects to the SSH server, checks its host key,
 * authenticates, and opens one forward channel to the database to prove
 * that the server can reach it; only then does the local port accept
 * connections.  Every connection accepted on the local port gets a channel
 * of its own, so any number of clients (a pool's eight) share the tunnel.
 *
 * What is honoured, as `ssh` does: ~/.ssh/config (and
 * /etc/ssh/ssh_config) through libssh's own parser: Host aliases, HostName,
 * Port, IdentityFile, ProxyJump / ProxyCommand, IdentityAgent, Ciphers,
 * UserKnownHostsFile; the ssh-agent at SSH_AUTH_SOCK; ~/.ssh/known_hosts
 * and /etc/ssh/ssh_known_hosts.  The tunnel's username always wins over a
 * User line.  A port of 22 in the tunnel counts as "the default": a Port
 * that ~/.ssh/config gives the host is used instead.
 *
 * Host keys: a host that ~/.ssh/known_hosts (or the global file) knows is
 * checked against it; any other host against Tusk's own known_hosts file
 * (TuskSshTunnelOptions.known_hosts, {data_dir}/known_hosts for a
 * TuskState).  A key that does not match is refused with TUSK_ERROR_SSH
 * saying the key changed, never accepted.  An unknown host is put to the
 * front end as a question (TUSK_SSH_QUESTION_HOST_KEY) with its SHA256
 * fingerprint, as OpenSSH prints it; accepted keys are added to Tusk's own
 * file (never to ~/.ssh/known_hosts).  Without a front end, an unknown host
 * is refused, the fingerprint in the error.
 *
 * Authentication by the tunnel's method:
 *   key:      the private key at key_path; it must be readable by its owner
 *             alone (as OpenSSH requires).  An encrypted key opens with
 *             TuskSshTunnelOptions.secret (the keychain's "ssh:{id}"), else
 *             with a passphrase asked of the front end
 *             (TUSK_SSH_QUESTION_PASSPHRASE).
 *   password: TuskSshTunnelOptions.secret, else asked of the front end
 *             (TUSK_SSH_QUESTION_PASSWORD); keyboard-interactive is used
 *             with the same password when the server offers only that.
 *   agent:    the ssh-agent (SSH_AUTH_SOCK or IdentityAgent), then the
 *             unencrypted IdentityFile keys, as `ssh` tries them.
 * A secret the front end gave is kept in memory (wiped at the end) for
 * re-establishing the tunnel; nothing is written to the keychain here.
 *
 * Errors are TUSK_ERROR_SSH naming the hop that failed ("SSH server
 * bastion (10.0.0.5 port 22)", or the database host as seen from it), each
 * kind with its own hint: unreachable server, host key unknown or changed,
 * authentication refused, key file unreadable or with loose permissions,
 * channel refused (the database is unreachable from the SSH server, or
 * forwarding is off).  A missing key file is TUSK_ERROR_VALIDATION, as
 * tusk_ssh_tunnel_config_validate() reports it.  Cancelling the
 * cancellable stops a connect at once (TUSK_ERROR_QUERY_CANCELLED), also
 * while a question waits for its answer.
 *
 * When the SSH session drops (the server restarts, the network fails), the
 * local connections through it are closed and the tunnel is down; the local
 * port stays the same.  tusk_ssh_tunnel_ensure_sync() re-establishes it (a
 * pool calls it before opening each connection), with the secret it used
 * before.
 *
 * Anyone on this machine can connect to the local port, as with `ssh -L`;
 * the database still asks for its own credentials.
 *
 * Thread rules: a TuskSshTunnel is shared and reference-counted; every
 * function may be called from any thread.  One thread of the tunnel's own
 * owns the SSH session while it is up and moves the bytes (libssh sessions
 * are not thread-safe); connecting and authenticating run on the thread
 * that calls _open_sync / _ensure_sync, which block: never call them on a
 * UI thread.  A TuskSshQuestion is shared and reference-counted; its
 * getters and tusk_ssh_question_answer() may be called from any thread.
 */
#pragma once

#include <gio/gio.h>

#include "tusk-connection-config.h"

G_BEGIN_DECLS

/**
 * TuskSshQuestionKind:
 * @TUSK_SSH_QUESTION_HOST_KEY: the SSH server's host key is unknown: accept
 *   it?  Answer TRUE to accept (the key is added to Tusk's known_hosts) or
 *   FALSE to refuse; no secret.
 * @TUSK_SSH_QUESTION_PASSPHRASE: the key file is encrypted: its passphrase?
 * @TUSK_SSH_QUESTION_PASSWORD: the user's password on the SSH server?
 *
 * For the last two, answer TRUE with the secret, or FALSE to give up.
 */
typedef enum
{
  TUSK_SSH_QUESTION_HOST_KEY,
  TUSK_SSH_QUESTION_PASSPHRASE,
  TUSK_SSH_QUESTION_PASSWORD,
} TuskSshQuestionKind;

/**
 * TuskSshQuestion:
 *
 * One question a connecting tunnel puts to a front end.  Opaque and
 * reference-counted; every field is fixed when it is asked.  The connecting
 * thread waits until the question is answered (once: later answers are
 * ignored) or the connect's cancellable is cancelled; then the question is
 * withdrawn and a front end closes its prompt (see
 * tusk_ssh_question_get_cancellable()).
 */
typedef struct _TuskSshQuestion TuskSshQuestion;

/* Returns (transfer full) @question with one more reference. */
TuskSshQuestion *tusk_ssh_question_ref (TuskSshQuestion *question);
/* Drops a reference (@question nullable); an answer's secret is wiped. */
void tusk_ssh_question_unref (TuskSshQuestion *question);

TuskSshQuestionKind tusk_ssh_question_get_kind (TuskSshQuestion *question);

/* What to show, in one sentence ("The authenticity of SSH server bastion
 * (10.0.0.5 port 22) can't be established. Its ED25519 key fingerprint is
 * SHA256:…. Connect and remember the key?").  (transfer none), never
 * NULL. */
const char *tusk_ssh_question_get_message (TuskSshQuestion *question);

/* The tunnel's name and the SSH server as connected to (the HostName from
 * ~/.ssh/config if any) and its port.  (transfer none). */
const char *tusk_ssh_question_get_tunnel_name (TuskSshQuestion *question);
const char *tusk_ssh_question_get_host (TuskSshQuestion *question);
int tusk_ssh_question_get_port (TuskSshQuestion *question);
const char *tusk_ssh_question_get_username (TuskSshQuestion *question);

/* HOST_KEY only: "SHA256:…" as OpenSSH prints it, and the key type
 * ("ssh-ed25519"); NULL for the other kinds.  (transfer none). */
const char *tusk_ssh_question_get_fingerprint (TuskSshQuestion *question);
const char *tusk_ssh_question_get_key_type (TuskSshQuestion *question);

/* PASSPHRASE only: the key file; NULL for the other kinds. */
const char *tusk_ssh_question_get_key_path (TuskSshQuestion *question);

/* PASSPHRASE and PASSWORD: TRUE when the previous secret (the keychain's or
 * an earlier answer) was wrong. */
gboolean tusk_ssh_question_is_retry (TuskSshQuestion *question);

/* Returns (transfer none) (nullable) the connect's cancellable: once it is
 * cancelled the question is withdrawn and any answer ignored; a front end
 * may connect to it to close its prompt.  Its "cancelled" signal is emitted
 * on the thread that cancels. */
GCancellable *tusk_ssh_question_get_cancellable (TuskSshQuestion *question);

/**
 * tusk_ssh_question_answer:
 * @accept: TRUE to accept the host key / to give the secret; FALSE to refuse
 * @secret: (nullable): the passphrase or password when @accept; copied (the
 *   caller wipes its own copy); ignored for HOST_KEY
 *
 * Answers @question and wakes the connecting thread.  Only the first answer
 * counts; one after the question was withdrawn is ignored.  Any thread;
 * never blocks.
 */
void tusk_ssh_question_answer (TuskSshQuestion *question, gboolean accept,
                               const char *secret);

/* Whether the question still waits for its answer. */
gboolean tusk_ssh_question_is_pending (TuskSshQuestion *question);

/**
 * TuskSshAskFunc:
 * @question: (transfer none): the question; take a reference to keep it
 * @user_data: TuskSshTunnelOptions.ask_data
 *
 * Hands @question to a front end, on the connecting thread.  Must not
 * block: the front end answers later, from any thread, with
 * tusk_ssh_question_answer() (a TuskState does this on its main context,
 * see tusk_state_set_ssh_prompt()).
 *
 * Returns: TRUE when someone will answer; FALSE when nobody can be asked
 *   (non-interactive): the question is then refused at once.
 */
typedef gboolean (*TuskSshAskFunc) (TuskSshQuestion *question,
                                    gpointer user_data);

/**
 * TuskSshTunnelOptions:
 *
 * Everything a tunnel needs besides its config.  Copied by
 * tusk_ssh_tunnel_open_sync(), except that ask_data is owned from then on
 * (ask_data_destroy is called when the tunnel is freed, also when opening
 * fails).  Zero-initialize and set what you need.
 */
typedef struct
{
  const char *ssh_dir;      /* nullable: libssh's default, ~/.ssh (its config,
                               known_hosts and default keys) */
  const char *known_hosts;  /* nullable: Tusk's own known_hosts, for hosts
                               that ~/.ssh/known_hosts does not know; where
                               accepted keys go.  NULL: unknown hosts are
                               refused */
  const char *secret;       /* nullable: the password or key passphrase to
                               try first (the keychain's "ssh:{id}"); copied,
                               the copy wiped */
  int connect_timeout_secs; /* bounds each network step of a connect (not
                               the time a question waits); 0: none */
  TuskSshAskFunc ask;       /* nullable: non-interactive */
  gpointer ask_data;
  GDestroyNotify ask_data_destroy; /* nullable */
} TuskSshTunnelOptions;

/**
 * TuskSshTunnel:
 *
 * Opaque and reference-counted: tusk_ssh_tunnel_ref(), _unref().
 */
typedef struct _TuskSshTunnel TuskSshTunnel;

/**
 * tusk_ssh_tunnel_open_sync:
 * @config: the SSH server; validated (tusk_ssh_tunnel_config_validate()),
 *   copied
 * @target_host: the database host as the SSH server sees it (a name, an
 *   address, or a Unix socket directory: then the socket
 *   "<dir>/.s.PGSQL.<port>" is forwarded)
 * @target_port: the database port
 * @options: (nullable): see TuskSshTunnelOptions
 * @cancellable: (nullable): cancels the connect
 * @error: return location for a TUSK_ERROR
 *
 * Connects, checks the host key, authenticates, proves the forward with
 * one channel, and starts listening on 127.0.0.1 on a port the system
 * picks.  Blocks (network, and questions to the front end): call on a
 * worker.
 *
 * Returns: (transfer full) (nullable): the tunnel, up; or %NULL with
 *   TUSK_ERROR_SSH, TUSK_ERROR_VALIDATION or TUSK_ERROR_QUERY_CANCELLED.
 */
TuskSshTunnel *tusk_ssh_tunnel_open_sync (const TuskSshTunnelConfig *config,
                                          const char *target_host,
                                          int target_port,
                                          const TuskSshTunnelOptions *options,
                                          GCancellable *cancellable,
                                          GError **error);

TuskSshTunnel *tusk_ssh_tunnel_ref (TuskSshTunnel *tunnel);

/* Drops a reference (@tunnel nullable).  The last one stops the tunnel:
 * the local port closes, connections through it are cut, the SSH session
 * ends.  Blocks briefly (joins the tunnel's thread); never on the network
 * beyond sending the SSH disconnect. */
void tusk_ssh_tunnel_unref (TuskSshTunnel *tunnel);

/* Stops @tunnel for good, before its last reference goes: the SSH session
 * ends, connections through it are cut, the local port is closed (new
 * connections are refused), and the tunnel's thread is joined,
 * so that nothing of the tunnel runs any more (TuskState does this when it
 * is freed, so that a program may exit right after, even while a pool that
 * owns the tunnel is still referenced).  tusk_ssh_tunnel_ensure_sync() fails
 * from then on with TUSK_ERROR_CONNECTION.  Blocks briefly (the thread
 * sends the SSH disconnect); idempotent; any thread. */
void tusk_ssh_tunnel_close (TuskSshTunnel *tunnel);

/* The local port (127.0.0.1), fixed for the tunnel's life, also across
 * re-establishing. */
guint16 tusk_ssh_tunnel_get_local_port (TuskSshTunnel *tunnel);

/* Whether the SSH session is up (FALSE after it dropped, until
 * tusk_ssh_tunnel_ensure_sync() re-establishes it). */
gboolean tusk_ssh_tunnel_is_up (TuskSshTunnel *tunnel);

/* How many times the session was established (1 after open); tests and
 * logs use it to see a re-establishment. */
guint tusk_ssh_tunnel_get_n_connects (TuskSshTunnel *tunnel);

/**
 * tusk_ssh_tunnel_ensure_sync:
 *
 * Returns at once when the tunnel is up; otherwise connects again as
 * tusk_ssh_tunnel_open_sync() did (the same local port), with the secret
 * that worked before.  Concurrent callers share one attempt.  Blocks; call
 * on a worker.
 *
 * Returns: TRUE when the tunnel is up; FALSE with the error of the attempt
 *   (TUSK_ERROR_SSH "… is unreachable", …).
 */
gboolean tusk_ssh_tunnel_ensure_sync (TuskSshTunnel *tunnel,
                                      GCancellable *cancellable,
                                      GError **error);

/* The SHA256 fingerprint ("SHA256:…", OpenSSH's form) of the host key of
 * the current (or last) session; (transfer full), NULL before the first
 * connect. */
char *tusk_ssh_tunnel_dup_host_key_fingerprint (TuskSshTunnel *tunnel);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSshQuestion, tusk_ssh_question_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskSshTunnel, tusk_ssh_tunnel_unref)

G_END_DECLS
