/* bench-credentials.c: what a keychain operation costs through
 * gnome-keyring, in the test environment's private keyring.
 *
 * (a) tusk_credentials_new() with its availability probe (open a session,
 *     check the default keyring, store and delete a test entry), median and
 *     max of 20.  Budget: it is part of state init, < 100 ms (SC-002).
 * (b) tusk_credentials_store_sync() and _lookup_sync(), median and max of
 *     50 each, each on a new account.  Target (SC-005): < 500 ms.
 * (c) the baseline: the same store and lookup with libsecret's simple API
 *     (secret_password_store_sync(), _lookup_sync()) on the calling
 *     thread, i.e. without the keychain thread.
 */
#define G_LOG_DOMAIN "tusk-bench"

#include "tusk-credentials.h"
#include "tusk-log.h"

#include <stdio.h>
#include <stdlib.h>

#include <libsecret/secret.h>

#define PROBES     20
#define ITERATIONS 50

static const SecretSchema baseline_schema = {
  .name = "dev.tusk.Tusk.Bench",
  .flags = SECRET_SCHEMA_NONE,
  .attributes = {
      { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

typedef struct
{
  double median_ms, max_ms;
} Figures;

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

static Figures
figures (gint64 *us, int n)
{
  qsort (us, n, sizeof us[0], compare_gint64);
  return (Figures){ .median_ms = (us[(n - 1) / 2] + us[n / 2]) / 2e3,
                    .max_ms = us[n - 1] / 1e3 };
}

static void
print_figures (const char *what, Figures f)
{
  printf ("%-44s %7.2f / %.2f ms\n", what, f.median_ms, f.max_ms);
}

static void
print_verdict (const char *what, gboolean pass)
{
  printf ("%-44s %s\n", what, pass ? "PASS" : "MISS");
}

static void
die (const char *what, GError *error)
{
  fprintf (stderr, "bench-credentials: %s: %s\n", what,
           error ? error->message : "failed");
  exit (1);
}

int
main (void)
{
  g_autoptr (GError) error = NULL;
  gint64 probe_us[PROBES], store_us[ITERATIONS], lookup_us[ITERATIONS];
  gint64 base_store_us[ITERATIONS], base_lookup_us[ITERATIONS];
  g_autofree char *prefix = g_uuid_string_random ();

  tusk_log_set_filter ("warn", NULL);
  if (g_getenv ("TUSK_TEST_KEYRING") == NULL)
    fprintf (stderr, "bench-credentials: TUSK_TEST_KEYRING is not set: this "
                     "measures whatever keychain the session has\n");

  for (int i = 0; i < PROBES; i++)
    {
      gint64 start = g_get_monotonic_time ();
      TuskCredentials *creds = tusk_credentials_new ();
      probe_us[i] = g_get_monotonic_time () - start;
      if (!tusk_credentials_is_available (creds))
        {
          fprintf (stderr, "bench-credentials: keychain unavailable: %s\n",
                   tusk_credentials_get_unavailable_reason (creds));
          return 1;
        }
      tusk_credentials_free (creds);
    }

  TuskCredentials *creds = tusk_credentials_new ();
  for (int i = 0; i < ITERATIONS; i++)
    {
      g_autofree char *id = g_strdup_printf ("bench-%s-%d", prefix, i);
      g_autofree char *secret = g_strdup_printf ("secret-%d-%s", i, prefix);

      gint64 start = g_get_monotonic_time ();
      if (!tusk_credentials_store_sync (creds, TUSK_CREDENTIAL_KIND_DB, id,
                                        "bench", secret, NULL, &error))
        die ("store", error);
      store_us[i] = g_get_monotonic_time () - start;

      start = g_get_monotonic_time ();
      char *got = tusk_credentials_lookup_sync (creds, TUSK_CREDENTIAL_KIND_DB,
                                                id, NULL, &error);
      lookup_us[i] = g_get_monotonic_time () - start;
      if (got == NULL || g_strcmp0 (got, secret) != 0)
        die ("lookup", error);
      tusk_credentials_secret_free (got);

      if (!tusk_credentials_delete_sync (creds, TUSK_CREDENTIAL_KIND_DB, id,
                                         NULL, &error))
        die ("delete", error);
    }
  tusk_credentials_free (creds);

  for (int i = 0; i < ITERATIONS; i++)
    {
      g_autofree char *account = g_strdup_printf ("bench:%s-%d", prefix, i);
      g_autofree char *secret = g_strdup_printf ("secret-%d-%s", i, prefix);

      gint64 start = g_get_monotonic_time ();
      if (!secret_password_store_sync (
              &baseline_schema, SECRET_COLLECTION_DEFAULT, "Tusk: bench",
              secret, NULL, &error, "service", TUSK_CREDENTIALS_SERVICE,
              "account", account, NULL))
        die ("baseline store", error);
      base_store_us[i] = g_get_monotonic_time () - start;

      start = g_get_monotonic_time ();
      char *got = secret_password_lookup_sync (
          &baseline_schema, NULL, &error, "service", TUSK_CREDENTIALS_SERVICE,
          "account", account, NULL);
      base_lookup_us[i] = g_get_monotonic_time () - start;
      if (got == NULL || g_strcmp0 (got, secret) != 0)
        die ("baseline lookup", error);
      secret_password_free (got);

      secret_password_clear_sync (&baseline_schema, NULL, &error, "service",
                                  TUSK_CREDENTIALS_SERVICE, "account", account,
                                  NULL);
      if (error != NULL)
        die ("baseline clear", error);
    }
  secret_service_disconnect ();

  Figures probe = figures (probe_us, PROBES);
  Figures store = figures (store_us, ITERATIONS);
  Figures lookup = figures (lookup_us, ITERATIONS);
  char what[64];
  g_snprintf (what, sizeof what, "new() with probe, median / max (%d)", PROBES);
  print_figures (what, probe);
  g_snprintf (what, sizeof what, "store, median / max (%d)", ITERATIONS);
  print_figures (what, store);
  print_figures ("lookup, median / max", lookup);
  print_figures ("baseline: libsecret store, median / max",
                 figures (base_store_us, ITERATIONS));
  print_figures ("baseline: libsecret lookup, median / max",
                 figures (base_lookup_us, ITERATIONS));
  print_verdict ("probe < 100 ms (max; state init, SC-002)",
                 probe.max_ms < 100);
  print_verdict ("store < 500 ms (max; SC-005)", store.max_ms < 500);
  print_verdict ("lookup < 500 ms (max; SC-005)", lookup.max_ms < 500);

  return probe.max_ms < 100 && store.max_ms < 500 && lookup.max_ms < 500 ? 0
                                                                         : 1;
}
