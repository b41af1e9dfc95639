/* test-credentials.c: the keychain module against the test environment's
 * real gnome-keyring (store, lookup, has, delete for both kinds, labels,
 * threads, async delivery, cancellation, what reaches the logs), and its
 * in-memory fallback in a child process that has no session bus. */
#define G_LOG_DOMAIN "tusk-test"

#include "tusk-credentials.h"
#include "tusk-error.h"
#include "tusk-log-private.h"
#include "tusk-test.h"

#include <string.h>

#include <libsecret/secret.h>

#define WARNING_TAIL ". Passwords will be kept for this session only.\n"

typedef struct
{
  TuskCredentials *creds;
  char *id; /* a fresh id per test, so parallel runs never meet */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  (void)data;
  tusk_test_env ("TUSK_TEST_KEYRING");
  f->creds = tusk_credentials_new ();
  if (!tusk_credentials_is_available (f->creds))
    g_error ("the test keyring is unavailable: %s",
             tusk_credentials_get_unavailable_reason (f->creds));
  f->id = g_uuid_string_random ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  (void)data;
  g_assert_true (tusk_credentials_delete_sync (
      f->creds, TUSK_CREDENTIAL_KIND_DB, f->id, NULL, NULL));
  g_assert_true (tusk_credentials_delete_sync (
      f->creds, TUSK_CREDENTIAL_KIND_SSH, f->id, NULL, NULL));
  tusk_credentials_free (f->creds);
  g_free (f->id);
}

/* The keychain items of @account, straight from libsecret's default
 * service (transfer full). */
static GList *
keyring_items (const char *account)
{
  g_autoptr (GHashTable) attributes
      = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (attributes, "service", TUSK_CREDENTIALS_SERVICE);
  g_hash_table_insert (attributes, "account", (gpointer)account);
  g_autoptr (GError) error = NULL;
  GList *items = secret_service_search_sync (NULL, NULL, attributes,
                                             SECRET_SEARCH_ALL, NULL, &error);
  g_assert_no_error (error);
  return items;
}

static guint
keyring_count (const char *account)
{
  GList *items = keyring_items (account);
  guint n = g_list_length (items);
  g_list_free_full (items, g_object_unref);
  return n;
}

/* Stores, reads back, checks, deletes; asserts every step. */
static void
assert_round_trip (TuskCredentials *creds, TuskCredentialKind kind,
                   const char *id, const char *secret)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (tusk_credentials_store_sync (creds, kind, id, NULL, secret,
                                              NULL, &error));
  g_assert_no_error (error);
  g_assert_true (tusk_credentials_has_sync (creds, kind, id, NULL, &error));
  g_assert_no_error (error);
  char *got = tusk_credentials_lookup_sync (creds, kind, id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got, ==, secret);
  tusk_credentials_secret_free (got);

  g_assert_true (tusk_credentials_delete_sync (creds, kind, id, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (tusk_credentials_has_sync (creds, kind, id, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (tusk_credentials_lookup_sync (creds, kind, id, NULL, &error));
  g_assert_no_error (error);
}

static void
test_account_name (void)
{
  g_autofree char *db
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_DB, "c1");
  g_autofree char *ssh
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_SSH, "t1");
  g_assert_cmpstr (db, ==, "db:c1");
  g_assert_cmpstr (ssh, ==, "ssh:t1");
}

static void
test_available (Fixture *f, gconstpointer data)
{
  (void)data;
  g_assert_true (tusk_credentials_is_available (f->creds));
  g_assert_null (tusk_credentials_get_unavailable_reason (f->creds));

  gint64 start = g_get_monotonic_time ();
  TuskCredentials *other = tusk_credentials_new ();
  g_test_message ("tusk_credentials_new (probe included): %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_assert_true (tusk_credentials_is_available (other));
  tusk_credentials_free (other);

  /* The probe leaves nothing behind. */
  g_assert_cmpuint (keyring_count ("tusk:availability-probe"), ==, 0);
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  TuskCredentialKind kind = GPOINTER_TO_INT (data);

  assert_round_trip (f->creds, kind, f->id, "s3cret-password");

  /* Both kinds for one id are separate secrets. */
  g_autoptr (GError) error = NULL;
  TuskCredentialKind other = kind == TUSK_CREDENTIAL_KIND_DB
                                 ? TUSK_CREDENTIAL_KIND_SSH
                                 : TUSK_CREDENTIAL_KIND_DB;
  g_assert_true (tusk_credentials_store_sync (f->creds, kind, f->id, NULL,
                                              "mine", NULL, &error));
  g_assert_true (tusk_credentials_store_sync (f->creds, other, f->id, NULL,
                                              "theirs", NULL, &error));
  g_assert_true (
      tusk_credentials_delete_sync (f->creds, other, f->id, NULL, &error));
  char *got
      = tusk_credentials_lookup_sync (f->creds, kind, f->id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got, ==, "mine");
  tusk_credentials_secret_free (got);
  g_assert_false (
      tusk_credentials_has_sync (f->creds, other, f->id, NULL, NULL));
}

static void
test_not_found (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;

  for (int kind = TUSK_CREDENTIAL_KIND_DB; kind <= TUSK_CREDENTIAL_KIND_SSH;
       kind++)
    {
      g_assert_null (
          tusk_credentials_lookup_sync (f->creds, kind, f->id, NULL, &error));
      g_assert_no_error (error);
      g_assert_false (
          tusk_credentials_has_sync (f->creds, kind, f->id, NULL, &error));
      g_assert_no_error (error);
      /* Deleting what is not there succeeds. */
      g_assert_true (
          tusk_credentials_delete_sync (f->creds, kind, f->id, NULL, &error));
      g_assert_no_error (error);
    }
}

static void
test_overwrite (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *account
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_DB, f->id);

  g_assert_true (tusk_credentials_store_sync (f->creds, TUSK_CREDENTIAL_KIND_DB,
                                              f->id, "Old name", "first", NULL,
                                              &error));
  g_assert_true (tusk_credentials_store_sync (f->creds, TUSK_CREDENTIAL_KIND_DB,
                                              f->id, "New name", "second", NULL,
                                              &error));
  g_assert_no_error (error);
  char *got = tusk_credentials_lookup_sync (f->creds, TUSK_CREDENTIAL_KIND_DB,
                                            f->id, NULL, &error);
  g_assert_cmpstr (got, ==, "second");
  tusk_credentials_secret_free (got);

  /* Replaced, not added beside: one item, with the new label. */
  GList *items = keyring_items (account);
  g_assert_cmpuint (g_list_length (items), ==, 1);
  g_autofree char *label = secret_item_get_label (items->data);
  g_assert_cmpstr (label, ==, "Tusk: New name");
  g_list_free_full (items, g_object_unref);
}

static void
test_unicode_and_long (Fixture *f, gconstpointer data)
{
  (void)data;
  assert_round_trip (f->creds, TUSK_CREDENTIAL_KIND_DB, f->id,
                     "pässwörd 🔑 日本語 ' \" \\ ; = % $ \t end");
  assert_round_trip (f->creds, TUSK_CREDENTIAL_KIND_SSH, f->id, "ä");

  /* 4 KiB of printable ASCII and multibyte characters. */
  GString *big = g_string_new (NULL);
  for (guint i = 0; big->len < 4096 - 4; i++)
    if (i % 7 == 0)
      g_string_append (big, "€");
    else
      g_string_append_c (big, (char)(' ' + 1 + g_random_int_range (0, 94)));
  while (big->len < 4096)
    g_string_append_c (big, 'x');
  g_assert_cmpuint (big->len, ==, 4096);
  assert_round_trip (f->creds, TUSK_CREDENTIAL_KIND_DB, f->id, big->str);
  g_string_free (big, TRUE);
}

static void
test_label (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GError) error = NULL;
  g_autofree char *db
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_DB, f->id);
  g_autofree char *ssh
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_SSH, f->id);

  g_assert_true (tusk_credentials_store_sync (f->creds, TUSK_CREDENTIAL_KIND_DB,
                                              f->id, "Production (EU)", "pw",
                                              NULL, &error));
  g_assert_true (tusk_credentials_store_sync (
      f->creds, TUSK_CREDENTIAL_KIND_SSH, f->id, NULL, "pw", NULL, &error));
  g_assert_no_error (error);

  g_autoptr (SecretService) service
      = secret_service_get_sync (SECRET_SERVICE_NONE, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (SecretCollection) collection = secret_collection_for_alias_sync (
      service, SECRET_COLLECTION_DEFAULT, SECRET_COLLECTION_NONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (collection);
  const char *collection_path
      = g_dbus_proxy_get_object_path (G_DBUS_PROXY (collection));

  struct
  {
    const char *account, *label;
  } want[] = { { db, "Tusk: Production (EU)" }, { ssh, NULL } };
  g_autofree char *ssh_label = g_strconcat ("Tusk: ", ssh, NULL);
  want[1].label = ssh_label;

  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      GList *items = keyring_items (want[i].account);
      g_assert_cmpuint (g_list_length (items), ==, 1);
      SecretItem *item = items->data;
      g_autofree char *label = secret_item_get_label (item);
      g_assert_cmpstr (label, ==, want[i].label);

      /* In the default collection, with the schema's attributes. */
      const char *path = g_dbus_proxy_get_object_path (G_DBUS_PROXY (item));
      g_assert_true (g_str_has_prefix (path, collection_path));
      g_autoptr (GHashTable) attributes = secret_item_get_attributes (item);
      g_assert_cmpstr (g_hash_table_lookup (attributes, "service"), ==,
                       TUSK_CREDENTIALS_SERVICE);
      g_assert_cmpstr (g_hash_table_lookup (attributes, "account"), ==,
                       want[i].account);
      g_assert_cmpstr (g_hash_table_lookup (attributes, "xdg:schema"), ==,
                       TUSK_CREDENTIALS_SERVICE);
      g_list_free_full (items, g_object_unref);
    }
}

/* An item made by another tool with the same service and account (as
 * `secret-tool store service dev.tusk.Tusk account db:<id>` makes it) is
 * found, and deleted with ours. */
static void
test_foreign_item (Fixture *f, gconstpointer data)
{
  (void)data;
  static const SecretSchema other = {
    .name = "org.example.Other",
    .flags = SECRET_SCHEMA_NONE,
    .attributes = {
        { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
        { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
        { NULL, 0 },
    },
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *account
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_DB, f->id);

  g_autoptr (SecretService) service
      = secret_service_get_sync (SECRET_SERVICE_OPEN_SESSION, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (GHashTable) attributes = secret_attributes_build (
      &other, "service", TUSK_CREDENTIALS_SERVICE, "account", account, NULL);
  g_autoptr (SecretValue) value
      = secret_value_new ("by-hand", -1, "text/plain");
  g_assert_true (secret_service_store_sync (
      service, &other, attributes, SECRET_COLLECTION_DEFAULT, "made by hand",
      value, NULL, &error));
  g_assert_no_error (error);

  char *got = tusk_credentials_lookup_sync (f->creds, TUSK_CREDENTIAL_KIND_DB,
                                            f->id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (got, ==, "by-hand");
  tusk_credentials_secret_free (got);
  g_assert_true (tusk_credentials_delete_sync (
      f->creds, TUSK_CREDENTIAL_KIND_DB, f->id, NULL, &error));
  g_assert_cmpuint (keyring_count (account), ==, 0);
}

static void
on_collection_created (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  GAsyncResult **out = data;
  *out = g_object_ref (result);
}

/* Where gnome-keyring would show a prompt (creating a keyring always asks
 * for its password), Tusk's service refuses at once: no call can wait for a
 * person, even with no prompter.  The service type is found by its name;
 * tusk_credentials_new() registered it.  (Async, on this thread's context:
 * libsecret's _sync calls leave 8 bytes of every prompt proxy behind.) */
static void
test_never_prompts (Fixture *f, gconstpointer data)
{
  (void)f;
  (void)data;
  g_autoptr (GError) error = NULL;
  GType type = g_type_from_name ("TuskKeychainService");
  g_assert_cmpuint (type, !=, 0);
  g_assert_true (g_type_is_a (type, SECRET_TYPE_SERVICE));

  g_autoptr (SecretService) service = secret_service_open_sync (
      type, NULL, SECRET_SERVICE_OPEN_SESSION, NULL, &error);
  g_assert_no_error (error);
  gint64 start = g_get_monotonic_time ();
  GAsyncResult *result = NULL;
  secret_collection_create (service, "Tusk test: must not exist", NULL,
                            SECRET_COLLECTION_CREATE_NONE, NULL,
                            on_collection_created, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_autoptr (SecretCollection) collection
      = secret_collection_create_finish (result, &error);
  g_object_unref (result);
  g_assert_null (collection);
  g_assert_error (error, SECRET_ERROR, SECRET_ERROR_IS_LOCKED);
  /* Not a speed bound: a prompt waits for a person, or for D-Bus's 25 s
   * timeout; ending well before that proves none was waited for. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 20 * G_USEC_PER_SEC);
  g_clear_object (&service);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- threads ------------------------------------------------------------ */

#define N_THREADS 10
#define N_ROUNDS  3

typedef struct
{
  TuskCredentials *creds;
  TuskCredentialKind kind;
  char *id;
  char *secret;
  gboolean shared; /* the id is shared by every thread */
  const char *const *all_secrets;
} Worker;

static gpointer
worker_run (gpointer data)
{
  Worker *w = data;
  g_autoptr (GError) error = NULL;

  for (guint round = 0; round < N_ROUNDS; round++)
    {
      g_assert_true (tusk_credentials_store_sync (
          w->creds, w->kind, w->id, "thread", w->secret, NULL, &error));
      g_assert_no_error (error);
      char *got = tusk_credentials_lookup_sync (w->creds, w->kind, w->id, NULL,
                                                &error);
      g_assert_no_error (error);
      g_assert_nonnull (got);
      if (w->shared)
        g_assert_true (g_strv_contains (w->all_secrets, got));
      else
        g_assert_cmpstr (got, ==, w->secret);
      tusk_credentials_secret_free (got);
      g_assert_true (
          tusk_credentials_has_sync (w->creds, w->kind, w->id, NULL, &error));
      g_assert_no_error (error);
    }
  if (!w->shared)
    {
      g_assert_true (tusk_credentials_delete_sync (w->creds, w->kind, w->id,
                                                   NULL, &error));
      g_assert_null (tusk_credentials_lookup_sync (w->creds, w->kind, w->id,
                                                   NULL, &error));
      g_assert_no_error (error);
    }
  return NULL;
}

static void
run_workers (Fixture *f, gboolean shared)
{
  Worker workers[N_THREADS];
  GThread *threads[N_THREADS];
  char *secrets[N_THREADS + 1];

  for (guint i = 0; i < N_THREADS; i++)
    secrets[i] = g_strdup_printf ("secret-%u-%s", i, f->id);
  secrets[N_THREADS] = NULL;
  for (guint i = 0; i < N_THREADS; i++)
    {
      workers[i] = (Worker){
        .creds = f->creds,
        .kind = i % 2 ? TUSK_CREDENTIAL_KIND_SSH : TUSK_CREDENTIAL_KIND_DB,
        .id = shared ? g_strdup (f->id) : g_strdup_printf ("%s-%u", f->id, i),
        .secret = secrets[i],
        .shared = shared,
        .all_secrets = (const char *const *)secrets,
      };
      if (shared)
        workers[i].kind = TUSK_CREDENTIAL_KIND_DB;
    }
  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("worker", worker_run, &workers[i]);
  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);

  if (shared)
    {
      /* One item survives, holding one of the secrets. */
      g_autofree char *account
          = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_DB, f->id);
      g_assert_cmpuint (keyring_count (account), ==, 1);
      char *got = tusk_credentials_lookup_sync (
          f->creds, TUSK_CREDENTIAL_KIND_DB, f->id, NULL, NULL);
      g_assert_true (g_strv_contains ((const char *const *)secrets, got));
      tusk_credentials_secret_free (got);
    }
  for (guint i = 0; i < N_THREADS; i++)
    {
      g_free (workers[i].id);
      g_free (secrets[i]);
    }
}

static void
test_threads (Fixture *f, gconstpointer data)
{
  (void)data;
  run_workers (f, FALSE);
}

static void
test_threads_same_account (Fixture *f, gconstpointer data)
{
  (void)data;
  run_workers (f, TRUE);
}

/* ---- async -------------------------------------------------------------- */

typedef struct
{
  TuskCredentials *creds;
  GThread *caller;
  gboolean in_call; /* TRUE while an _async call has not returned */
  guint done;
  gboolean stored, deleted, has_before, has_after;
  char *secret;
} AsyncState;

static void
check_delivery (AsyncState *s)
{
  g_assert_false (s->in_call);
  g_assert_true (g_thread_self () == s->caller);
  s->done++;
}

static void
on_stored (GObject *source, GAsyncResult *result, gpointer data)
{
  AsyncState *s = data;
  g_autoptr (GError) error = NULL;

  g_assert_null (source);
  check_delivery (s);
  s->stored = tusk_credentials_store_finish (s->creds, result, &error);
  g_assert_no_error (error);
}

static void
on_has (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  AsyncState *s = data;
  g_autoptr (GError) error = NULL;

  check_delivery (s);
  gboolean has = tusk_credentials_has_finish (s->creds, result, &error);
  g_assert_no_error (error);
  if (s->deleted)
    s->has_after = has;
  else
    s->has_before = has;
}

static void
on_lookup (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  AsyncState *s = data;
  g_autoptr (GError) error = NULL;

  check_delivery (s);
  s->secret = tusk_credentials_lookup_finish (s->creds, result, &error);
  g_assert_no_error (error);
}

static void
on_deleted (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  AsyncState *s = data;
  g_autoptr (GError) error = NULL;

  check_delivery (s);
  s->deleted = tusk_credentials_delete_finish (s->creds, result, &error);
  g_assert_no_error (error);
}

static void
wait_done (AsyncState *s, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (s->done < n)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
    }
}

/* The four operations queued back to back run in order; each callback
 * comes on the calling thread's context, after the _async call returned. */
static void
run_async_sequence (TuskCredentials *creds, TuskCredentialKind kind,
                    const char *id)
{
  AsyncState s = { .creds = creds, .caller = g_thread_self () };

#define CALL(expr)                                                             \
  G_STMT_START                                                                 \
  {                                                                            \
    s.in_call = TRUE;                                                          \
    expr;                                                                      \
    s.in_call = FALSE;                                                         \
  }                                                                            \
  G_STMT_END
  CALL (tusk_credentials_store_async (creds, kind, id, "async", "a-secret",
                                      NULL, on_stored, &s));
  CALL (tusk_credentials_has_async (creds, kind, id, NULL, on_has, &s));
  CALL (tusk_credentials_lookup_async (creds, kind, id, NULL, on_lookup, &s));
  wait_done (&s, 3);
  CALL (tusk_credentials_delete_async (creds, kind, id, NULL, on_deleted, &s));
  wait_done (&s, 4);
  CALL (tusk_credentials_has_async (creds, kind, id, NULL, on_has, &s));
  wait_done (&s, 5);
#undef CALL

  g_assert_true (s.stored);
  g_assert_true (s.has_before);
  g_assert_cmpstr (s.secret, ==, "a-secret");
  g_assert_true (s.deleted);
  g_assert_false (s.has_after);
  tusk_credentials_secret_free (s.secret);
}

static void
test_async (Fixture *f, gconstpointer data)
{
  (void)data;
  run_async_sequence (f->creds, TUSK_CREDENTIAL_KIND_DB, f->id);
  run_async_sequence (f->creds, TUSK_CREDENTIAL_KIND_SSH, f->id);
}

static gpointer
async_thread_run (gpointer data)
{
  Fixture *f = data;
  g_autoptr (GMainContext) context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  run_async_sequence (f->creds, TUSK_CREDENTIAL_KIND_DB, f->id);
  g_main_context_pop_thread_default (context);
  return NULL;
}

/* From a thread with a context of its own, callbacks come to that one. */
static void
test_async_thread_context (Fixture *f, gconstpointer data)
{
  (void)data;
  g_thread_join (g_thread_new ("async-caller", async_thread_run, f));
}

typedef struct
{
  TuskCredentials *creds;
  gboolean done;
  gboolean result;
  GError *error;
} CancelState;

static void
on_cancelled_store (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  CancelState *s = data;
  s->result = tusk_credentials_store_finish (s->creds, result, &s->error);
  s->done = TRUE;
}

/* An operation whose cancellable is cancelled before it runs fails with
 * TUSK_ERROR_QUERY_CANCELLED and does nothing. */
static void
test_cancelled (Fixture *f, gconstpointer data)
{
  (void)data;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;

  g_cancellable_cancel (cancellable);
  g_assert_false (
      tusk_credentials_store_sync (f->creds, TUSK_CREDENTIAL_KIND_DB, f->id,
                                   NULL, "never", cancellable, &error));
  tusk_assert_error (error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&error);
  g_assert_null (tusk_credentials_lookup_sync (
      f->creds, TUSK_CREDENTIAL_KIND_DB, f->id, cancellable, &error));
  tusk_assert_error (error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&error);

  CancelState s = { .creds = f->creds };
  tusk_credentials_store_async (f->creds, TUSK_CREDENTIAL_KIND_SSH, f->id, NULL,
                                "never", cancellable, on_cancelled_store, &s);
  g_assert_false (s.done);
  tusk_test_wait_for (&s.done, 10000);
  g_assert_false (s.result);
  tusk_assert_error (s.error, TUSK_ERROR_QUERY_CANCELLED);
  g_clear_error (&s.error);

  for (int kind = TUSK_CREDENTIAL_KIND_DB; kind <= TUSK_CREDENTIAL_KIND_SSH;
       kind++)
    g_assert_false (
        tusk_credentials_has_sync (f->creds, kind, f->id, NULL, NULL));
}

/* ---- logs --------------------------------------------------------------- */

static void
test_no_secret_in_logs (Fixture *f, gconstpointer data)
{
  (void)data;
  const char *secret = "password=hunter2-unique-7f3a";
  TuskTestConsole console;
  g_autofree char *account
      = tusk_credentials_account_name (TUSK_CREDENTIAL_KIND_DB, f->id);

  tusk_log_set_filter ("trace", NULL);
  tusk_test_console_start (&console);
  assert_round_trip (f->creds, TUSK_CREDENTIAL_KIND_DB, f->id, secret);
  tusk_credentials_free (tusk_credentials_new ());
  g_autofree char *text = tusk_test_console_dup (&console);
  tusk_test_console_stop (&console);
  tusk_log_set_filter ("warn", NULL);

  g_assert_nonnull (strstr (text, account));
  g_assert_null (strstr (text, "hunter2"));
}

/* ---- starting early ------------------------------------------------------ */

static gboolean
probe_logged (gpointer console)
{
  g_autofree char *text = tusk_test_console_dup (console);
  return strstr (text, "keychain probe: ") != NULL;
}

/* tusk_credentials_start () runs the probe in the background with no
 * operation asked for (it reports its verdict in the log); operations
 * afterwards work as usual. */
static void
test_start (Fixture *f, gconstpointer data)
{
  (void)data;
  TuskTestConsole console;
  tusk_log_set_filter ("debug", NULL);
  tusk_test_console_start (&console);

  TuskCredentials *creds = tusk_credentials_new ();
  tusk_credentials_start (creds);
  tusk_credentials_start (creds); /* once is enough; twice is harmless */
  tusk_test_wait_until (probe_logged, &console, 20000);
  g_autofree char *text = tusk_test_console_dup (&console);
  g_assert_nonnull (strstr (text, "keychain probe: available"));
  assert_round_trip (creds, TUSK_CREDENTIAL_KIND_DB, f->id, "early");
  tusk_credentials_free (creds);

  tusk_test_console_stop (&console);
  tusk_log_set_filter ("warn", NULL);
}

/* ---- no session bus ----------------------------------------------------- */

static void
test_no_dbus (void)
{
  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }

  /* The child: before anything touches GDBus. */
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent", TRUE);
  TuskTestConsole console;
  g_autoptr (GError) error = NULL;
  tusk_test_console_start (&console);

  gint64 start = g_get_monotonic_time ();
  TuskCredentials *creds = tusk_credentials_new ();
  gint64 elapsed = g_get_monotonic_time () - start;
  /* Without a bus the probe fails at once rather than waiting out its
   * timeout.  (How fast is for bench/: no timed bound here, the sanitizer
   * builds on a shared machine are many times slower.) */
  g_test_message ("tusk_credentials_new() without a bus: %.1f ms",
                  elapsed / 1000.0);
  g_assert_cmpint (elapsed, <, TUSK_CREDENTIALS_PROBE_TIMEOUT_MS * 1000);

  g_assert_false (tusk_credentials_is_available (creds));
  const char *reason = tusk_credentials_get_unavailable_reason (creds);
  g_assert_nonnull (reason);
  g_assert_cmpstr (reason, !=, "");

  /* One warning, with the reason in it. */
  g_autofree char *warning
      = g_strconcat ("Keychain unavailable: ", reason, WARNING_TAIL, NULL);
  g_autofree char *text = tusk_test_console_dup (&console);
  g_assert_true (g_str_has_suffix (text, warning));
  g_assert_null (strstr (strstr (text, "Keychain unavailable") + 1,
                         "Keychain unavailable"));
  g_test_message ("%s", text);

  /* The session store behaves as the keychain does. */
  assert_round_trip (creds, TUSK_CREDENTIAL_KIND_DB, "c1", "pw-db");
  assert_round_trip (creds, TUSK_CREDENTIAL_KIND_SSH, "c1", "pw-ssh");
  g_assert_null (tusk_credentials_lookup_sync (creds, TUSK_CREDENTIAL_KIND_DB,
                                               "never", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (tusk_credentials_delete_sync (creds, TUSK_CREDENTIAL_KIND_DB,
                                               "never", NULL, &error));
  run_async_sequence (creds, TUSK_CREDENTIAL_KIND_SSH, "c2");

  g_assert_true (tusk_credentials_store_sync (creds, TUSK_CREDENTIAL_KIND_DB,
                                              "c1", NULL, "old", NULL, &error));
  g_assert_true (tusk_credentials_store_sync (creds, TUSK_CREDENTIAL_KIND_DB,
                                              "c1", NULL, "new", NULL, &error));
  char *got = tusk_credentials_lookup_sync (creds, TUSK_CREDENTIAL_KIND_DB,
                                            "c1", NULL, &error);
  g_assert_cmpstr (got, ==, "new");
  tusk_credentials_secret_free (got);

  /* Held by this object only: another one (another session) sees nothing. */
  TuskCredentials *other = tusk_credentials_new ();
  g_assert_false (tusk_credentials_is_available (other));
  g_assert_false (tusk_credentials_has_sync (other, TUSK_CREDENTIAL_KIND_DB,
                                             "c1", NULL, &error));
  g_assert_no_error (error);
  tusk_credentials_free (other);

  tusk_credentials_free (creds);
  tusk_test_console_stop (&console);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tusk_log_set_filter ("warn", NULL);

  g_test_add_func ("/tusk/credentials/account-name", test_account_name);
  g_test_add_func ("/tusk/credentials/no-dbus", test_no_dbus);
#define ADD(path, func)                                                        \
  g_test_add ("/tusk/credentials/" path, Fixture, NULL, fixture_setup, func,   \
              fixture_teardown)
  ADD ("available", test_available);
  g_test_add ("/tusk/credentials/round-trip/db", Fixture,
              GINT_TO_POINTER (TUSK_CREDENTIAL_KIND_DB), fixture_setup,
              test_round_trip, fixture_teardown);
  g_test_add ("/tusk/credentials/round-trip/ssh", Fixture,
              GINT_TO_POINTER (TUSK_CREDENTIAL_KIND_SSH), fixture_setup,
              test_round_trip, fixture_teardown);
  ADD ("not-found", test_not_found);
  ADD ("overwrite", test_overwrite);
  ADD ("unicode-and-4k", test_unicode_and_long);
  ADD ("label", test_label);
  ADD ("foreign-item", test_foreign_item);
  ADD ("never-prompts", test_never_prompts);
  ADD ("threads", test_threads);
  ADD ("threads-same-account", test_threads_same_account);
  ADD ("async", test_async);
  ADD ("async-thread-context", test_async_thread_context);
  ADD ("cancelled", test_cancelled);
  ADD ("no-secret-in-logs", test_no_secret_in_logs);
  ADD ("start", test_start);
#undef ADD

  int status = g_test_run ();
  /* The default service's proxies unsubscribe through the main context. */
  secret_service_disconnect ();
  while (g_main_context_iteration (NULL, FALSE))
    ;
  return status;
}
