/* bench-credentials.c: what a keychain operation costs through
 * gnome-keyring (issue 9 item 8, SC-005), each figure beside raw libsecret
 * calls on the calling thread (no keychain thread), alternating, after a
 * warm-up, reported through bench-common.h:
 *
 *   - tusk_credentials_new() alone: it no longer touches D-Bus, so it is all
 *     that state initialisation pays for the keychain.  No baseline.
 *   - first use: tusk_credentials_new() + tusk_credentials_is_available(),
 *     which starts the keychain thread and runs the probe (open an
 *     encrypted session, read the default collection, create and delete a
 *     test item), vs the same four libsecret calls on the caller's thread
 *     (secret_service_open_sync() with a session,
 *     secret_collection_for_alias_sync(), secret_item_create_sync(),
 *     secret_item_delete_sync()).  The first store or lookup of a session
 *     waits for it, so it is held to SC-005's < 500 ms.
 *   - store and lookup (_sync, a new account each time) vs
 *     secret_password_store_sync() and secret_password_lookup_sync():
 *     median [min-max], and the slowest, each < 500 ms (SC-005).
 *
 * Needs the test environment's keyring (make bench).  Exit status 1 when a
 * figure misses its target. */
#define G_LOG_DOMAIN "tusk-bench"

#include "bench-common.h"
#include "tusk-credentials.h"
#include "tusk-log.h"

#include <libsecret/secret.h>

#define PROBES     20
#define WARM_UP    3
#define ITERATIONS 50

/* The baseline's items: the attributes of Tusk's schema under a schema name
 * of their own, so that they never mix with Tusk's. */
static const SecretSchema baseline_schema = {
  .name = "dev.tusk.Tusk.Bench",
  .flags = SECRET_SCHEMA_NONE,
  .attributes = {
      { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

static void
die (const char *what, GError *error)
{
  g_error ("bench-credentials: %s: %s", what,
           error ? error->message : "failed");
}

/* new() + is_available(): the probe on the keychain thread. */
static double
tusk_first_use (double *new_us)
{
  gint64 start = g_get_monotonic_time ();
  TuskCredentials *creds = tusk_credentials_new ();
  *new_us = (double)(g_get_monotonic_time () - start);
  gboolean available = tusk_credentials_is_available (creds);
  double ms = bench_ms_since (start);
  if (!available)
    g_error ("bench-credentials: keychain unavailable: %s",
             tusk_credentials_get_unavailable_reason (creds));
  tusk_credentials_free (creds);
  return ms;
}

/* The probe's libsecret calls, on this thread. */
static double
libsecret_first_use (void)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  SecretService *service = secret_service_open_sync (
      SECRET_TYPE_SERVICE, NULL, SECRET_SERVICE_OPEN_SESSION, NULL, &error);
  if (service == NULL)
    die ("baseline: open the Secret Service", error);
  SecretCollection *collection = secret_collection_for_alias_sync (
      service, SECRET_COLLECTION_DEFAULT, SECRET_COLLECTION_NONE, NULL, &error);
  if (collection == NULL || secret_collection_get_locked (collection))
    die ("baseline: the default collection", error);
  g_autofree char *random = g_uuid_string_random ();
  GHashTable *attributes = secret_attributes_build (
      &baseline_schema, "service", TUSK_CREDENTIALS_SERVICE, "account",
      "bench:probe", NULL);
  SecretValue *value = secret_value_new (random, -1, "text/plain");
  SecretItem *item = secret_item_create_sync (
      collection, &baseline_schema, attributes, "Tusk: bench probe", value,
      SECRET_ITEM_CREATE_NONE, NULL, &error);
  if (item == NULL || !secret_item_delete_sync (item, NULL, &error))
    die ("baseline: a test item", error);
  double ms = bench_ms_since (start);
  g_object_unref (item);
  secret_value_unref (value);
  g_hash_table_unref (attributes);
  g_object_unref (collection);
  g_object_unref (service);
  return ms;
}

static void
bench_first_use (void)
{
  double new_us[PROBES], ours[PROBES], base[PROBES], unused;

  tusk_first_use (&unused);
  libsecret_first_use ();
  for (int i = 0; i < PROBES; i++)
    {
      if (i % 2 == 0)
        base[i] = libsecret_first_use ();
      ours[i] = tusk_first_use (&new_us[i]);
      if (i % 2 == 1)
        base[i] = libsecret_first_use ();
    }
  printf ("first use of the keychain, %d times a side, alternating\n", PROBES);
  bench_report ("credentials", "new() alone", "us", bench_stat (new_us, PROBES),
                NULL, (BenchStat){ 0 }, BENCH_NO_TARGET, 0);
  bench_report ("credentials", "first use (probe)", "ms",
                bench_stat (ours, PROBES), "libsecret",
                bench_stat (base, PROBES), BENCH_BELOW, 500);
}

static double
tusk_store (TuskCredentials *creds, const char *id, const char *secret)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  if (!tusk_credentials_store_sync (creds, TUSK_CREDENTIAL_KIND_DB, id, "bench",
                                    secret, NULL, &error))
    die ("store", error);
  return bench_ms_since (start);
}

static double
tusk_lookup (TuskCredentials *creds, const char *id, const char *secret)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  char *got = tusk_credentials_lookup_sync (creds, TUSK_CREDENTIAL_KIND_DB, id,
                                            NULL, &error);
  double ms = bench_ms_since (start);
  if (got == NULL || g_strcmp0 (got, secret) != 0)
    die ("lookup", error);
  tusk_credentials_secret_free (got);
  if (!tusk_credentials_delete_sync (creds, TUSK_CREDENTIAL_KIND_DB, id, NULL,
                                     &error))
    die ("delete", error);
  return ms;
}

static double
libsecret_store (const char *account, const char *secret)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  if (!secret_password_store_sync (&baseline_schema, SECRET_COLLECTION_DEFAULT,
                                   "Tusk: bench", secret, NULL, &error,
                                   "service", TUSK_CREDENTIALS_SERVICE,
                                   "account", account, NULL))
    die ("baseline store", error);
  return bench_ms_since (start);
}

static double
libsecret_lookup (const char *account, const char *secret)
{
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  char *got = secret_password_lookup_sync (&baseline_schema, NULL, &error,
                                           "service", TUSK_CREDENTIALS_SERVICE,
                                           "account", account, NULL);
  double ms = bench_ms_since (start);
  if (got == NULL || g_strcmp0 (got, secret) != 0)
    die ("baseline lookup", error);
  secret_password_free (got);
  secret_password_clear_sync (&baseline_schema, NULL, &error, "service",
                              TUSK_CREDENTIALS_SERVICE, "account", account,
                              NULL);
  if (error != NULL)
    die ("baseline clear", error);
  return ms;
}

static void
bench_store_lookup (void)
{
  double store[ITERATIONS], lookup[ITERATIONS];
  double base_store[ITERATIONS], base_lookup[ITERATIONS];
  g_autofree char *prefix = g_uuid_string_random ();
  TuskCredentials *creds = tusk_credentials_new ();

  /* The first rounds (not counted) pay for the probe and for libsecret's
   * shared SecretService. */
  for (int i = -WARM_UP; i < ITERATIONS; i++)
    {
      g_autofree char *id = g_strdup_printf ("bench-%s-%d", prefix, i);
      g_autofree char *account = g_strdup_printf ("bench:%s-%d", prefix, i);
      g_autofree char *secret = g_strdup_printf ("secret-%d-%s", i, prefix);
      double s, l, bs, bl;
      if (i % 2 == 0)
        {
          bs = libsecret_store (account, secret);
          s = tusk_store (creds, id, secret);
          bl = libsecret_lookup (account, secret);
          l = tusk_lookup (creds, id, secret);
        }
      else
        {
          s = tusk_store (creds, id, secret);
          bs = libsecret_store (account, secret);
          l = tusk_lookup (creds, id, secret);
          bl = libsecret_lookup (account, secret);
        }
      if (i < 0)
        continue;
      store[i] = s;
      lookup[i] = l;
      base_store[i] = bs;
      base_lookup[i] = bl;
    }
  tusk_credentials_free (creds);

  printf ("store and lookup, %d each a side (a new account each), "
          "alternating\n",
          ITERATIONS);
  BenchStat st = bench_stat (store, ITERATIONS);
  BenchStat bst = bench_stat (base_store, ITERATIONS);
  BenchStat lk = bench_stat (lookup, ITERATIONS);
  BenchStat blk = bench_stat (base_lookup, ITERATIONS);
  bench_report ("credentials", "store", "ms", st, "libsecret", bst, BENCH_BELOW,
                500);
  bench_report ("credentials", "store, slowest", "ms",
                (BenchStat){ st.max, st.max, st.max }, "libsecret",
                (BenchStat){ bst.max, bst.max, bst.max }, BENCH_BELOW, 500);
  bench_report ("credentials", "lookup", "ms", lk, "libsecret", blk,
                BENCH_BELOW, 500);
  bench_report ("credentials", "lookup, slowest", "ms",
                (BenchStat){ lk.max, lk.max, lk.max }, "libsecret",
                (BenchStat){ blk.max, blk.max, blk.max }, BENCH_BELOW, 500);
}

int
main (void)
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  tusk_log_set_filter ("warn", NULL);
  bench_env ("TUSK_TEST_KEYRING");

  bench_first_use ();
  bench_store_lookup ();
  secret_service_disconnect ();
  return bench_exit_status ();
}
