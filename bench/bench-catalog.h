/* bench-catalog.h: the scratch catalog that bench-schema and bench-complete
 * measure — 20 schemas of 500 tables, 10 columns each (10,000 tables,
 * 100,000 columns), names drawn from a few words so that prefixes match
 * many objects — in a database of its own on the test environment's
 * server, created with one DO block (committing every 250 tables, so the
 * lock table never fills) and dropped at the end.
 *
 * Header-only, for one benchmark program's main thread. */
#pragma once

#include <libpq-fe.h>

#include "bench-common.h"
#include "tusk.h"

#define BENCH_CATALOG_TABLES  10000
#define BENCH_CATALOG_SCHEMAS 20

typedef struct
{
  PGconn *admin; /* on the test database, to drop the catalog's */
  char *db;      /* the catalog's database */
} BenchCatalog;

static PGconn *
bench_catalog_connect (const char *dbname)
{
  const char *keys[] = { "host", "port", "user", "dbname", NULL };
  const char *values[]
      = { bench_env ("TUSK_TEST_PGHOST"), bench_env ("TUSK_TEST_PGPORT"),
          bench_env ("TUSK_TEST_PGUSER_TRUST"), dbname, NULL };
  PGconn *pg = PQconnectdbParams (keys, values, 0);
  if (PQstatus (pg) != CONNECTION_OK)
    g_error ("connect to %s: %s", dbname, PQerrorMessage (pg));
  return pg;
}

static void
bench_catalog_exec (PGconn *pg, const char *sql)
{
  PGresult *res = PQexec (pg, sql);
  if (PQresultStatus (res) != PGRES_COMMAND_OK
      && PQresultStatus (res) != PGRES_TUPLES_OK)
    g_error ("%.60s…: %s", sql, PQerrorMessage (pg));
  PQclear (res);
}

static const char bench_catalog_sql[]
    = "DO $$\n"
      "DECLARE\n"
      "  words text[] := ARRAY['customer', 'order', 'invoice', 'product',\n"
      "    'event', 'account', 'payment', 'shipment', 'user', 'session'];\n"
      "BEGIN\n"
      "  FOR s IN 0..%d LOOP\n"
      "    EXECUTE format('CREATE SCHEMA app_%%s', s);\n"
      "  END LOOP;\n"
      "  FOR i IN 0..%d LOOP\n"
      "    EXECUTE format('CREATE TABLE app_%%s.%%s_%%s ('\n"
      "      'id bigint PRIMARY KEY, name text NOT NULL,'\n"
      "      ' created_at timestamptz NOT NULL DEFAULT now(),'\n"
      "      ' amount numeric(12,2) DEFAULT 0, active boolean,'\n"
      "      ' code varchar(40), %%s_ref integer, payload jsonb,'\n"
      "      ' tags text[], due date)',\n"
      "      i %% %d, words[1 + i %% 10], i, words[1 + (i / 10) %% 10]);\n"
      "    IF i %% 250 = 249 THEN COMMIT; END IF;\n"
      "  END LOOP;\n"
      "END $$";

/* Creates the catalog in a new database named @prefix_PID, with
 * @search_path (nullable) as the database's default, and prints how long
 * it took. */
static BenchCatalog
bench_catalog_create (const char *prefix, const char *search_path)
{
  BenchCatalog catalog;
  gint64 start = g_get_monotonic_time ();
  catalog.db = g_strdup_printf ("%s_%d", prefix, (int)getpid ());
  catalog.admin = bench_catalog_connect (bench_env ("TUSK_TEST_PGDATABASE"));
  g_autofree char *create = g_strdup_printf ("CREATE DATABASE %s", catalog.db);
  bench_catalog_exec (catalog.admin, create);

  PGconn *pg = bench_catalog_connect (catalog.db);
  g_autofree char *populate
      = g_strdup_printf (bench_catalog_sql, BENCH_CATALOG_SCHEMAS - 1,
                         BENCH_CATALOG_TABLES - 1, BENCH_CATALOG_SCHEMAS);
  bench_catalog_exec (pg, populate);
  bench_catalog_exec (pg, "ANALYZE");
  if (search_path != NULL)
    {
      g_autofree char *path = g_strdup_printf (
          "ALTER DATABASE %s SET search_path = %s", catalog.db, search_path);
      bench_catalog_exec (pg, path);
    }
  PQfinish (pg);
  printf ("setup: %d tables, %d columns in %d schemas in %.1f s\n",
          BENCH_CATALOG_TABLES, BENCH_CATALOG_TABLES * 10,
          BENCH_CATALOG_SCHEMAS, bench_ms_since (start) / 1000.0);
  return catalog;
}

/* Returns (transfer full) a pool on the catalog's database. */
static TuskPool *
bench_catalog_pool (const BenchCatalog *catalog, const char *name)
{
  g_autoptr (TuskConnectionConfig) config = tusk_connection_config_new ();
  config->name = g_strdup (name);
  config->host = g_strdup (bench_env ("TUSK_TEST_PGHOST"));
  config->port = atoi (bench_env ("TUSK_TEST_PGPORT"));
  config->database = g_strdup (catalog->db);
  config->username = g_strdup (bench_env ("TUSK_TEST_PGUSER_TRUST"));
  config->ssl_mode = TUSK_SSL_MODE_DISABLE;
  g_autoptr (GError) error = NULL;
  TuskPool *pool = tusk_pool_new_sync (config, NULL, NULL, NULL, &error);
  if (pool == NULL)
    g_error ("pool: %s", error->message);
  return pool;
}

/* Drops the catalog's database (closing its connections). */
static void
bench_catalog_drop (BenchCatalog *catalog)
{
  g_autofree char *drop
      = g_strdup_printf ("DROP DATABASE %s WITH (FORCE)", catalog->db);
  bench_catalog_exec (catalog->admin, drop);
  PQfinish (catalog->admin);
  g_free (catalog->db);
}
