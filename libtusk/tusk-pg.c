/* tusk-pg.c: opening one libpq connection with a deadline and a cancellable. */
#define G_LOG_DOMAIN "tusk-pg"

#include "tusk-pg-private.h"

#include <errno.h>
#include <poll.h>

#include "tusk-error-private.h"

static gint64
connect_deadline (const char *const *keywords, const char *const *values)
{
  for (gsize i = 0; keywords[i]; i++)
    if (g_str_equal (keywords[i], "connect_timeout") && values[i] && *values[i])
      {
        gint64 secs = g_ascii_strtoll (values[i], NULL, 10);
        /* libpq treats 1 as 2 seconds; anything non-positive means none. */
        if (secs > 0)
          return g_get_monotonic_time () + MAX (secs, 2) * G_USEC_PER_SEC;
      }
  return 0;
}

PGconn *
tusk_pg_connect (const char *const *keywords, const char *const *values,
                 GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (keywords != NULL && values != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_cancellable_is_cancelled (cancellable))
    {
      tusk_set_error (error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                      "Connecting was cancelled");
      return NULL;
    }

  PGconn *conn = PQconnectStartParams (keywords, values, 0);
  if (conn == NULL)
    {
      g_propagate_error (error, tusk_error_from_pg_conn (NULL));
      return NULL;
    }
  PQsetErrorVerbosity (conn, PQERRORS_VERBOSE);

  gint64 deadline = connect_deadline (keywords, values);
  GPollFD cancel_fd = { .fd = -1 };
  gboolean have_cancel_fd
      = cancellable && g_cancellable_make_pollfd (cancellable, &cancel_fd);
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;

  while (PQstatus (conn) != CONNECTION_BAD && state != PGRES_POLLING_OK
         && state != PGRES_POLLING_FAILED)
    {
      struct pollfd fds[2] = {
        { .fd = PQsocket (conn),
          .events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT },
        { .fd = have_cancel_fd ? cancel_fd.fd : -1, .events = POLLIN },
      };
      int timeout_ms = -1;
      if (deadline)
        {
          gint64 left = deadline - g_get_monotonic_time ();
          timeout_ms = left > 0 ? (int)((left + 999) / 1000) : 0;
        }

      int ready = poll (fds, 2, timeout_ms);
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready < 0)
        {
          g_propagate_error (
              error, tusk_error_from_errno (errno, "Waiting for the server"));
          goto fail;
        }
      if (g_cancellable_is_cancelled (cancellable))
        {
          tusk_set_error (error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                          "Connecting was cancelled");
          goto fail;
        }
      if (ready == 0)
        {
          const char *host = PQhost (conn);
          tusk_set_error (
              error, TUSK_ERROR_CONNECTION,
              "The server did not answer within the connect timeout—check "
              "the network, firewalls and the host",
              "Timed out connecting to %s port %s", host ? host : "the server",
              PQport (conn) ? PQport (conn) : "");
          goto fail;
        }
      state = PQconnectPoll (conn);
    }

  if (PQstatus (conn) != CONNECTION_OK)
    {
      g_propagate_error (error, tusk_error_from_pg_conn (conn));
      goto fail;
    }
  PQsetErrorVerbosity (conn, PQERRORS_DEFAULT);
  if (have_cancel_fd)
    g_cancellable_release_fd (cancellable);
  return conn;

fail:
  if (have_cancel_fd)
    g_cancellable_release_fd (cancellable);
  PQfinish (conn);
  return NULL;
}
