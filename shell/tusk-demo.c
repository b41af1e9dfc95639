/* tusk-demo.c: what `make run` shows until the shell lands (issue 8): it
 * connects through libtusk with libpq's defaults (the PG* variables that
 * scripts/test-env.sh --sample-data sets), runs a few queries, and shows how
 * an error reaches a person.  Goes away with the shell. */
#define G_LOG_DOMAIN "tusk-demo"

#include <stdio.h>
#include <string.h>

#include "tusk.h"
#include "tusk-error-private.h"
#include "tusk-pg-private.h"

/* Prints @res as an aligned table (psql's default look, without frills). */
static void
print_table (const PGresult *res)
{
  int rows = PQntuples (res), cols = PQnfields (res);
  g_autofree int *width = g_new0 (int, cols);

  for (int c = 0; c < cols; c++)
    {
      width[c] = g_utf8_strlen (PQfname (res, c), -1);
      for (int r = 0; r < rows; r++)
        width[c] = MAX (width[c], g_utf8_strlen (PQgetvalue (res, r, c), -1));
    }
  for (int c = 0; c < cols; c++)
    printf ("%s %-*s ", c ? "|" : "", width[c], PQfname (res, c));
  printf ("\n");
  for (int c = 0; c < cols; c++)
    {
      printf ("%s", c ? "+" : "");
      for (int i = 0; i < width[c] + 2; i++)
        printf ("-");
    }
  printf ("\n");
  for (int r = 0; r < rows; r++)
    {
      for (int c = 0; c < cols; c++)
        {
          const char *value
              = PQgetisnull (res, r, c) ? "" : PQgetvalue (res, r, c);
          int pad = width[c] - (int)g_utf8_strlen (value, -1);
          printf ("%s %s%*s ", c ? "|" : "", value, pad, "");
        }
      printf ("\n");
    }
  printf ("(%d row%s)\n\n", rows, rows == 1 ? "" : "s");
}

/* Runs @sql and prints its rows, or the error as a front end shows it. */
static gboolean
run (PGconn *conn, const char *title, const char *sql)
{
  printf ("-- %s\n%s\n\n", title, sql);
  PGresult *res = PQexec (conn, sql);
  gboolean ok = PQresultStatus (res) == PGRES_TUPLES_OK;

  if (ok)
    print_table (res);
  else
    {
      g_autoptr (GError) error = tusk_error_from_pg_result (conn, res);
      g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
      printf ("%s: %s\nHINT: %s\n", info->error_type, info->message,
              info->hint);
      if (info->technical_detail)
        printf ("DETAIL: %s\n", info->technical_detail);
      printf ("\n");
    }
  PQclear (res);
  return ok;
}

int
main (int argc, char **argv)
{
  g_autofree char *data_dir = tusk_data_dir_resolve (NULL);
  g_autoptr (GError) error = NULL;

  if (!tusk_data_dir_ensure (data_dir, &error))
    {
      fprintf (stderr, "tusk-demo: %s\n", error->message);
      return 2;
    }
  g_autofree char *log_dir = g_build_filename (data_dir, "logs", NULL);
  tusk_log_init (log_dir);

  const char *keywords[] = { "application_name", "connect_timeout", NULL };
  const char *values[] = { "Tusk demo", "10", NULL };
  PGconn *conn = tusk_pg_connect (keywords, values, NULL, &error);
  if (conn == NULL)
    {
      g_autoptr (TuskErrorInfo) info = tusk_error_info_new (error);
      fprintf (stderr, "%s: %s\nHINT: %s\n", info->error_type, info->message,
               info->hint);
      tusk_log_shutdown ();
      return 2;
    }
  tusk_info ("demo connected to %s as %s", PQdb (conn), PQuser (conn));

  printf ("Tusk %s connected to database \"%s\" as \"%s\" (server %d)\n\n",
          TUSK_VERSION_STRING, PQdb (conn), PQuser (conn),
          PQserverVersion (conn));

  int status = 0;
  if (argc > 1)
    {
      for (int i = 1; i < argc; i++)
        status |= !run (conn, "your query", argv[i]);
    }
  else
    {
      run (conn, "the tables of the sample database, with their row counts",
           "SELECT table_name AS \"table\",\n"
           "       (xpath('/row/n/text()', query_to_xml(format(\n"
           "          'SELECT count(*) AS n FROM %I.%I', table_schema,\n"
           "          table_name), false, true, '')))[1]::text::bigint AS "
           "rows\n"
           "FROM information_schema.tables\n"
           "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'\n"
           "ORDER BY 1");
      run (conn, "the five best-selling books",
           "SELECT title, author, sold FROM bestsellers LIMIT 5");
      run (conn, "an error, as Tusk explains it",
           "SELECT title FROM bookz WHERE price > 10");
    }

  printf ("The interactive shell arrives with issue 8; logs are in %s\n",
          log_dir);
  PQfinish (conn);
  tusk_log_shutdown ();
  return status;
}
