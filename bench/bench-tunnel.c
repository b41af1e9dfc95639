/* bench-tunnel.c: issue 7's two numbers, Tusk's SSH tunnel (libssh, one
 * thread) beside OpenSSH's `ssh -N -L` forward to the same sshd and the same
 * PostgreSQL, with the same client on both sides (a plain libpq loop), so
 * that only the tunnel differs:
 *
 *   - 10,000 sequential SELECT 1 (target: Tusk <= 1.5x ssh -L);
 *   - fetching 1,000,000 rows in single-row mode (target: <= 1.3x).
 *
 * Rounds alternate A/B (Tusk, ssh -L, Tusk, …) so that the machine's load
 * drifts over both alike; the medians are compared.  Needs the test
 * environment's postgres and ssh (make bench).  Exit status 1 when a figure
 * misses its target. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libpq-fe.h>

#include "bench-common.h"
#include "tusk.h"

#define N_SELECT1 10000
#define N_ROWS    1000000
#define ROWS_SQL                                                               \
  "SELECT g, md5 (g::text), now () FROM generate_series (1, 1000000) g"
#define SELECT1_ROUNDS 5
#define ROWS_ROUNDS    3

static PGconn *
connect_port (guint16 port)
{
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  const char *keywords[]
      = { "hostaddr", "port", "dbname", "user", "sslmode", NULL };
  const char *values[] = { "127.0.0.1",
                           port_text,
                           bench_env ("TUSK_TEST_PGDATABASE"),
                           bench_env ("TUSK_TEST_PGUSER_TRUST"),
                           "disable",
                           NULL };
  PGconn *pg = PQconnectdbParams (keywords, values, 0);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect to port %u: %s", port, PQerrorMessage (pg));
  return pg;
}

static double
run_select1 (guint16 port)
{
  PGconn *pg = connect_port (port);
  gint64 start = g_get_monotonic_time ();
  for (int i = 0; i < N_SELECT1; i++)
    {
      PGresult *res = PQexec (pg, "SELECT 1");
      if (PQresultStatus (res) != PGRES_TUPLES_OK)
        g_error ("SELECT 1: %s", PQerrorMessage (pg));
      PQclear (res);
    }
  double ms = bench_ms_since (start);
  PQfinish (pg);
  return ms;
}

static double
run_rows (guint16 port)
{
  PGconn *pg = connect_port (port);
  gint64 start = g_get_monotonic_time ();
  if (!PQsendQuery (pg, ROWS_SQL) || !PQsetSingleRowMode (pg))
    g_error ("rows: %s", PQerrorMessage (pg));
  PGresult *res;
  long rows = 0;
  while ((res = PQgetResult (pg)) != NULL)
    {
      if (PQresultStatus (res) == PGRES_SINGLE_TUPLE)
        rows++;
      else if (PQresultStatus (res) != PGRES_TUPLES_OK)
        g_error ("rows: %s", PQerrorMessage (pg));
      PQclear (res);
    }
  double ms = bench_ms_since (start);
  if (rows != N_ROWS)
    g_error ("got %ld rows", rows);
  PQfinish (pg);
  return ms;
}

/* ---- the two tunnels ------------------------------------------------------
 */

static guint16
free_port (void)
{
  g_autoptr (GSocket) socket = g_socket_new (
      G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback
      = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  if (!g_socket_bind (socket, any, FALSE, NULL))
    g_error ("bind");
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static gboolean
port_accepts (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection
      = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  return connection != NULL;
}

/* OpenSSH's forward: `ssh -N -L`, key login, host key verified. */
static GPid
start_openssh (guint16 local_port)
{
  g_autofree char *forward = g_strdup_printf ("127.0.0.1:%u:%s:%s", local_port,
                                              bench_env ("TUSK_TEST_PGHOST"),
                                              bench_env ("TUSK_TEST_PGPORT"));
  g_autofree char *known = g_strconcat (
      "UserKnownHostsFile=", bench_env ("TUSK_TEST_SSH_KNOWN_HOSTS"), NULL);
  g_autofree char *target
      = g_strdup_printf ("%s@%s", bench_env ("TUSK_TEST_SSH_USER"),
                         bench_env ("TUSK_TEST_SSH_HOST"));
  const char *argv[] = { "ssh",       "-F",
                         "/dev/null", "-N",
                         "-o",        "BatchMode=yes",
                         "-o",        "ExitOnForwardFailure=yes",
                         "-o",        "StrictHostKeyChecking=yes",
                         "-o",        known,
                         "-o",        "GlobalKnownHostsFile=/dev/null",
                         "-o",        "IdentitiesOnly=yes",
                         "-i",        bench_env ("TUSK_TEST_SSH_KEY"),
                         "-p",        bench_env ("TUSK_TEST_SSH_PORT"),
                         "-L",        forward,
                         target,      NULL };
  GPid pid;
  g_autoptr (GError) error = NULL;
  if (!g_spawn_async (NULL, (char **)argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD
                          | G_SPAWN_STDIN_FROM_DEV_NULL,
                      NULL, NULL, &pid, &error))
    g_error ("ssh: %s", error->message);
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
  while (!port_accepts (local_port))
    {
      if (g_get_monotonic_time () > deadline
          || waitpid (pid, NULL, WNOHANG) == pid)
        g_error ("ssh -L did not start listening on %u", local_port);
      g_usleep (20 * 1000);
    }
  return pid;
}

static TuskSshTunnel *
start_tusk (const char *dir)
{
  g_autofree char *ssh_dir = g_build_filename (dir, "ssh", NULL);
  g_mkdir (ssh_dir, 0700);
  g_autofree char *contents = NULL;
  if (!g_file_get_contents (bench_env ("TUSK_TEST_SSH_KNOWN_HOSTS"), &contents,
                            NULL, NULL))
    g_error ("known_hosts");
  g_autofree char *known = g_build_filename (ssh_dir, "known_hosts", NULL);
  g_file_set_contents (known, contents, -1, NULL);

  g_autoptr (TuskSshTunnelConfig) config = tusk_ssh_tunnel_config_new ();
  config->name = g_strdup ("bench");
  config->host = g_strdup (bench_env ("TUSK_TEST_SSH_HOST"));
  config->port = atoi (bench_env ("TUSK_TEST_SSH_PORT"));
  config->username = g_strdup (bench_env ("TUSK_TEST_SSH_USER"));
  config->auth_method = TUSK_SSH_AUTH_KEY;
  config->key_path = g_strdup (bench_env ("TUSK_TEST_SSH_KEY"));
  TuskSshTunnelOptions options
      = { .ssh_dir = ssh_dir, .connect_timeout_secs = 10 };
  g_autoptr (GError) error = NULL;
  TuskSshTunnel *tunnel = tusk_ssh_tunnel_open_sync (
      config, bench_env ("TUSK_TEST_PGHOST"),
      atoi (bench_env ("TUSK_TEST_PGPORT")), &options, NULL, &error);
  if (tunnel == NULL)
    g_error ("tunnel: %s", error->message);
  return tunnel;
}

/* Runs @run @rounds times on each port, alternating, and reports the
 * medians. */
static void
compare (const char *what, double (*run) (guint16), int rounds,
         guint16 tusk_port, guint16 openssh_port, double max_ratio,
         int per_unit)
{
  double ours[8], theirs[8];
  g_assert (rounds <= 8);

  for (int i = 0; i < rounds; i++)
    {
      /* Which goes first alternates too. */
      if (i % 2 == 0)
        {
          ours[i] = run (tusk_port);
          theirs[i] = run (openssh_port);
        }
      else
        {
          theirs[i] = run (openssh_port);
          ours[i] = run (tusk_port);
        }
      printf ("  round %d: tusk %.1f ms, ssh -L %.1f ms\n", i + 1, ours[i],
              theirs[i]);
    }
  BenchStat a = bench_stat (ours, rounds), b = bench_stat (theirs, rounds);
  bench_report ("tunnel", what, "ms", a, "ssh -L", b, BENCH_RATIO_AT_MOST,
                max_ratio);
  if (per_unit > 0)
    {
      BenchStat pa = { a.median * 1000 / per_unit, a.min * 1000 / per_unit,
                       a.max * 1000 / per_unit };
      BenchStat pb = { b.median * 1000 / per_unit, b.min * 1000 / per_unit,
                       b.max * 1000 / per_unit };
      bench_report ("tunnel", "SELECT 1, a query", "us", pa, "ssh -L", pb,
                    BENCH_NO_TARGET, 0);
    }
}

/* With arguments, only the named parts run: idle, select1, rows. */
static gboolean
wanted (int argc, char **argv, const char *part)
{
  if (argc < 2)
    return TRUE;
  for (int i = 1; i < argc; i++)
    if (g_str_equal (argv[i], part))
      return TRUE;
  return FALSE;
}

int
main (int argc, char **argv)
{
  tusk_log_set_filter ("warn", NULL);
  setvbuf (stdout, NULL, _IOLBF, 0);
  signal (SIGPIPE, SIG_IGN);

  g_autofree char *dir = g_dir_make_tmp ("tusk-bench-tunnel-XXXXXX", NULL);
  TuskSshTunnel *tunnel = start_tusk (dir);
  guint16 openssh_port = free_port ();
  GPid ssh = start_openssh (openssh_port);
  guint16 tusk_port = tusk_ssh_tunnel_get_local_port (tunnel);

  /* Warm both paths (connections, the server's caches). */
  PQfinish (connect_port (tusk_port));
  PQfinish (connect_port (openssh_port));

  if (wanted (argc, argv, "idle"))
    {
      /* An idle tunnel sleeps in poll (): no timeouts, no spinning. */
      struct rusage before, after;
      getrusage (RUSAGE_SELF, &before);
      g_usleep (G_USEC_PER_SEC);
      getrusage (RUSAGE_SELF, &after);
      double cpu_ms = (after.ru_utime.tv_sec - before.ru_utime.tv_sec
                       + after.ru_stime.tv_sec - before.ru_stime.tv_sec)
                          * 1000.0
                      + (after.ru_utime.tv_usec - before.ru_utime.tv_usec
                         + after.ru_stime.tv_usec - before.ru_stime.tv_usec)
                            / 1000.0;
      printf ("idle tunnel, 1 s\n");
      bench_check ("tunnel", "idle, CPU in 1 s", cpu_ms, "ms", 5);
    }
  if (wanted (argc, argv, "select1"))
    {
      printf ("%d sequential SELECT 1 through the tunnel, %d rounds each\n",
              N_SELECT1, SELECT1_ROUNDS);
      compare ("10,000 SELECT 1, wall", run_select1, SELECT1_ROUNDS, tusk_port,
               openssh_port, 1.5, N_SELECT1);
    }
  if (wanted (argc, argv, "rows"))
    {
      printf ("fetching %d rows through the tunnel (single-row mode), %d "
              "rounds each\n",
              N_ROWS, ROWS_ROUNDS);
      compare ("1,000,000 rows, wall", run_rows, ROWS_ROUNDS, tusk_port,
               openssh_port, 1.3, 0);
    }

  kill (ssh, SIGTERM);
  waitpid (ssh, NULL, 0);
  g_spawn_close_pid (ssh);
  tusk_ssh_tunnel_unref (tunnel);
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
  if (system (cmd) != 0)
    g_warning ("could not remove %s", dir);

  return bench_exit_status ();
}
