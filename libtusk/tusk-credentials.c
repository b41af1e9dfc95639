/* tusk-credentials.c: the keychain thread, the operations it runs against
 * the Secret Service or the in-memory session store, and the probe that
 * chooses between them.
 *
 * Design note.
 *
 * Every operation is a Job carried by a GTask.  _async submits the task to
 * the keychain thread's own GMainContext (an idle source: same priority, so
 * first in, first out); the thread runs the job to completion with
 * libsecret's blocking calls and returns the task, which GTask delivers to
 * the caller's context.  _sync does the same with a private context that it
 * iterates until the task comes back (libsecret's own _sync pattern), so
 * there is one code path.  The keychain thread iterates its context between
 * jobs, which also dispatches the D-Bus signals of the SecretService proxy
 * it created there.
 *
 * States (of one TuskCredentials):
 *   IDLE         after tusk_credentials_new(): no thread, no D-Bus yet, so
 *                a client that never needs a secret never pays for the
 *                probe (a `tusk -c` on a URI).
 *   PROBING      from the first operation or availability question on
 *                (ensure_started()): the keychain thread opens the service
 *                and runs the probe while a watchdog thread waits on
 *                probe_cond (cancelling the probe at the deadline), then
 *                publishes the verdict.  Operations submitted meanwhile
 *                wait in `early`; look-ups at its head run between the
 *                probe's two halves (open, then test write), and one that
 *                finds a secret replaces the test write, so a start-up's
 *                password read costs the open and the read alone.  A
 *                service lost then makes the probe fail.
 *   KEYCHAIN     probe passed: `service` is set, jobs go to libsecret.
 *   SESSION      probe failed: `service` is NULL, jobs use `session`.
 *   KEYCHAIN -> SESSION  keychain_lost(), on the keychain thread, when the
 *                Secret Service the probe talked to is gone: its bus name
 *                changed owner (on_owner_changed(), as soon as the thread's
 *                context runs), or an operation failed and the bus says the
 *                daemon is gone (service_gone_reason()).  One warning; the
 *                failed operation is run again on `session`, and so is
 *                every later one.  Secrets stored in the keychain stay
 *                there, out of reach until the next start.
 *   STOPPED      inside tusk_credentials_free(): a quit job queued behind
 *                every earlier job ends the loop, the thread drops the
 *                service and exits; free joins it and wipes `session`.
 *
 * Invariants:
 *   1. `service`, `lost_service`, `service_owner` and `session` are touched
 *      only by the keychain thread while it runs (free touches `session`
 *      after joining it).  No lock guards them: one thread is the
 *      serialization the research asks for.
 *   2. `available` and `unavailable_reason` are written by the watchdog
 *      when the probe ends (published through probe_lock), before any
 *      operation runs and before an availability question is answered;
 *      afterwards only
 *      keychain_lost() changes them, once: reason from NULL to a string,
 *      then available from TRUE to FALSE (atomics, in that order, so a
 *      reader that sees FALSE finds the reason).
 *   3. available == (service != NULL) once the probe is done.
 *   4. Every buffer that held a secret is wiped before it is freed: the
 *      job's copy (job_free), session values (their GDestroyNotify), the
 *      GTask result (returned with tusk_credentials_secret_free as its
 *      destroy, so an unclaimed result is wiped too).  libsecret keeps
 *      its SecretValues in its own non-pageable pool (egg-secure-memory),
 *      and the session with the Secret Service is encrypted, so D-Bus
 *      buffers carry ciphertext.
 *
 * ThreadSanitizer: probe_lock is a pthread lock, and the two GLib hand-overs
 * of a job (g_source_attach() to the keychain thread, GTask back to the
 * caller) are announced with tusk_tsan_release/acquire: GLib's own locks
 * are futexes it cannot see.
 *
 * Prompts: gnome-keyring answers an unlock (or collection creation) with a
 * prompt object that waits for a person without any timeout.  Tusk's
 * SecretService subclass refuses every prompt (dismissing it) with
 * SECRET_ERROR_IS_LOCKED, so no call can wait on one.
 */
#define G_LOG_DOMAIN "tusk-credentials"

#include "tusk-credentials.h"
#include "tusk-error-private.h"
#include "tusk-log.h"
#include "tusk-runtime-private.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <libsecret/secret.h>

#define PROBE_ACCOUNT "tusk:availability-probe"

/* Lookups match on service + account only, not on xdg:schema (which store
 * still writes): "service" already scopes every search to Tusk, and an item
 * made by hand with `secret-tool store --label=… service dev.tusk.Tusk
 * account db:<id>` is found. */
static const SecretSchema schema = {
  .name = TUSK_CREDENTIALS_SERVICE,
  .flags = SECRET_SCHEMA_DONT_MATCH_NAME,
  .attributes = {
      { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
      { NULL, 0 },
  },
};

/* ---- a SecretService that never prompts -------------------------------- */

/* Registered as "TuskKeychainService" (the test finds it by that name). */

typedef struct
{
  SecretService parent;
} TuskKeychainService;

typedef struct
{
  SecretServiceClass parent_class;
} TuskKeychainServiceClass;

static GType keychain_service_get_type (void);
G_DEFINE_TYPE (TuskKeychainService, keychain_service, SECRET_TYPE_SERVICE)

#define PROMPT_REFUSED                                                         \
  "The keyring is locked (Tusk does not show unlock prompts)"

static void
dismiss_prompt (SecretPrompt *prompt)
{
  /* Fire and forget: the Secret Service frees the prompt object. */
  g_dbus_proxy_call (G_DBUS_PROXY (prompt), "Dismiss", NULL,
                     G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, NULL, NULL);
}

static GVariant *
keychain_service_prompt_sync (SecretService *service, SecretPrompt *prompt,
                              GCancellable *cancellable,
                              const GVariantType *return_type, GError **error)
{
  (void)service;
  (void)cancellable;
  (void)return_type;
  dismiss_prompt (prompt);
  g_set_error_literal (error, SECRET_ERROR, SECRET_ERROR_IS_LOCKED,
                       PROMPT_REFUSED);
  return NULL;
}

static void
keychain_service_prompt_async (SecretService *service, SecretPrompt *prompt,
                               const GVariantType *return_type,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  (void)return_type;
  dismiss_prompt (prompt);
  g_autoptr (GTask) task
      = g_task_new (service, cancellable, callback, user_data);
  g_task_set_source_tag (task, keychain_service_prompt_async);
  g_task_return_new_error (task, SECRET_ERROR, SECRET_ERROR_IS_LOCKED,
                           PROMPT_REFUSED);
}

static GVariant *
keychain_service_prompt_finish (SecretService *service, GAsyncResult *result,
                                GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, service), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
keychain_service_class_init (TuskKeychainServiceClass *klass)
{
  SecretServiceClass *service_class = SECRET_SERVICE_CLASS (klass);

  service_class->prompt_sync = keychain_service_prompt_sync;
  service_class->prompt_async = keychain_service_prompt_async;
  service_class->prompt_finish = keychain_service_prompt_finish;
}

static void
keychain_service_init (TuskKeychainService *self)
{
  (void)self;
}

/* ---- secrets in memory ------------------------------------------------- */

void
tusk_credentials_secret_free (char *secret)
{
  if (secret == NULL)
    return;
  explicit_bzero (secret, strlen (secret)); /* not optimised away */
  g_free (secret);
}

static char *
secret_dup (const char *secret, size_t length)
{
  char *copy = g_malloc (length + 1);
  memcpy (copy, secret, length);
  copy[length] = '\0';
  return copy;
}

/* ---- the object -------------------------------------------------------- */

struct _TuskCredentials
{
  GThread *thread; /* "tusk-keychain" */
  GMainContext *context;
  GMainLoop *loop;

  /* Invariant 2: atomics, set when the probe ends, then changed once at
   * most. */
  int available;
  char *unavailable_reason;

  /* Keychain thread only (invariant 1). */
  SecretService *service;
  SecretService *lost_service; /* kept until the thread ends: it may be
                                  inside one of its own signals when lost */
  char *service_owner;         /* the unique bus name the probe talked to */
  gulong owner_handler;        /* notify::g-name-owner on service */
  GHashTable *session;         /* account -> secret (wiped on removal) */
  gboolean probing;            /* the verdict is not out yet */
  gboolean read_found;         /* a look-up found a secret while probing */
  char *lost_reason;           /* the service went away while probing */

  /* probe_lock protects started, probe_done, probe_reason and published,
   * the hand-over between the probe, the watchdog and the askers. */
  pthread_mutex_t probe_lock;
  pthread_cond_t probe_cond; /* CLOCK_MONOTONIC, as g_get_monotonic_time() */
  gboolean probe_done;
  char *probe_reason; /* NULL when the probe passed */
  gboolean published; /* the watchdog has set available: the loop may
                         start and askers may read it */
  gboolean started;   /* the threads run (set once, by ensure_started) */
  GQueue early;       /* of GTask: submitted before the verdict, run by the
                         keychain thread in order (reads may run before
                         the probe's test write) */
  GThread *watchdog;  /* "tusk-keychain-watchdog", until the probe ends */
  GCancellable *probe_cancellable;
};

typedef enum
{
  OP_STORE,
  OP_LOOKUP,
  OP_DELETE,
  OP_HAS,
} Op;

typedef struct
{
  TuskCredentials *self; /* outlives the job: free() drains the queue */
  Op op;
  char *account;
  char *label;  /* OP_STORE: the item's label */
  char *secret; /* OP_STORE: a copy, wiped in job_free() */
} Job;

static void
job_free (Job *job)
{
  g_free (job->account);
  g_free (job->label);
  tusk_credentials_secret_free (job->secret);
  g_free (job);
}

static gboolean
kind_is_valid (TuskCredentialKind kind)
{
  return kind == TUSK_CREDENTIAL_KIND_DB || kind == TUSK_CREDENTIAL_KIND_SSH;
}

char *
tusk_credentials_account_name (TuskCredentialKind kind, const char *id)
{
  g_return_val_if_fail (kind_is_valid (kind), NULL);
  g_return_val_if_fail (id != NULL && *id != '\0', NULL);

  return g_strconcat (kind == TUSK_CREDENTIAL_KIND_DB ? "db:" : "ssh:", id,
                      NULL);
}

static GHashTable *
attributes_for (const char *account)
{
  return secret_attributes_build (&schema, "service", TUSK_CREDENTIALS_SERVICE,
                                  "account", account, NULL);
}

/* ---- operations, on the keychain thread --------------------------------- */

/* The keychain_* functions report libsecret's (or GDBus's) own error in
 * @raw, unconverted, so that run_job() can tell a Secret Service that went
 * away from one that refused. */

static gboolean
keychain_store (SecretService *service, const char *account, const char *label,
                const char *secret, GCancellable *cancellable, GError **raw)
{
  g_autoptr (GHashTable) attributes = attributes_for (account);
  g_autoptr (SecretValue) value = secret_value_new (secret, -1, "text/plain");

  return secret_service_store_sync (service, &schema, attributes,
                                    SECRET_COLLECTION_DEFAULT, label, value,
                                    cancellable, raw);
}

/* What secret_service_lookup_sync() does (the first unlocked match, else
 * the first locked one after asking to unlock it), but read through the
 * item.  Not the lookup itself: libsecret 0.20.5 (Debian 12's) leaks the
 * whole GetSecrets reply, about 1 KB, in every call, inside
 * secret_service_get_secret_for_dbus_path_finish() (fixed in 0.21.0,
 * "secret-paths: Fix a little memory leak").  The block is allocated on
 * GDBus's worker thread, so a valgrind suppression would hide the leak of
 * any D-Bus reply.  The item's own GetSecret leaks nothing; it costs one
 * round trip more (the item proxy's properties), about 1 ms.  Returns
 * (transfer full) the value, or NULL with @raw set or unset (none
 * stored). */
static SecretValue *
lookup_value (SecretService *service, GHashTable *attributes,
              GCancellable *cancellable, GError **raw)
{
  GList *items = secret_service_search_sync (
      service, &schema, attributes, SECRET_SEARCH_NONE, cancellable, raw);
  if (items == NULL)
    return NULL;

  SecretItem *item = items->data;
  SecretValue *value = NULL;
  gboolean unlocked = !secret_item_get_locked (item);
  if (!unlocked)
    {
      /* As the lookup does; Tusk's service refuses the prompt, so this
       * fails with SECRET_ERROR_IS_LOCKED unless no prompt is needed. */
      GList *one = g_list_prepend (NULL, item);
      unlocked
          = secret_service_unlock_sync (service, one, cancellable, NULL, raw)
            > 0;
      g_list_free (one);
    }
  if (unlocked && secret_item_load_secret_sync (item, cancellable, raw))
    value = secret_item_get_secret (item);
  g_list_free_full (items, g_object_unref);
  return value;
}

/* Returns the secret (transfer full, wipe it), or NULL with @raw set or
 * unset (none stored). */
static char *
keychain_lookup (SecretService *service, const char *account,
                 GCancellable *cancellable, GError **raw)
{
  g_autoptr (GHashTable) attributes = attributes_for (account);
  GError *local = NULL;

  SecretValue *value = lookup_value (service, attributes, cancellable, &local);
  if (local != NULL)
    {
      g_propagate_error (raw, local);
      return NULL;
    }
  if (value == NULL)
    return NULL;

  gsize length = 0;
  const char *data = secret_value_get (value, &length);
  char *secret = NULL;
  if (memchr (data, '\0', length) != NULL)
    tusk_set_error (raw, TUSK_ERROR_KEYRING,
                    "Store the password again from Tusk",
                    "Could not read the secret of %s: the stored secret is "
                    "not text",
                    account);
  else
    secret = secret_dup (data, length);
  secret_value_unref (value); /* egg-secure memory: libsecret's to clear */
  return secret;
}

static gboolean
keychain_delete (SecretService *service, const char *account,
                 GCancellable *cancellable, GError **raw)
{
  g_autoptr (GHashTable) attributes = attributes_for (account);
  GError *local = NULL;

  /* FALSE without an error means nothing matched: not a failure. */
  if (!secret_service_clear_sync (service, &schema, attributes, cancellable,
                                  &local)
      && local != NULL)
    {
      g_propagate_error (raw, local);
      return FALSE;
    }
  return TRUE;
}

/* Searches without unlocking or loading any secret. */
static gboolean
keychain_has (SecretService *service, const char *account,
              GCancellable *cancellable, GError **raw)
{
  g_autoptr (GHashTable) attributes = attributes_for (account);
  GError *local = NULL;

  GList *items = secret_service_search_sync (
      service, &schema, attributes, SECRET_SEARCH_NONE, cancellable, &local);
  if (local != NULL)
    {
      g_propagate_error (raw, local);
      return FALSE;
    }
  gboolean found = items != NULL;
  g_list_free_full (items, g_object_unref);
  return found;
}

/* What a job's failure says, as a TUSK_ERROR (transfer full). */
static GError *
job_error (const Job *job, const GError *raw)
{
  static const char *const verbs[] = {
    [OP_STORE] = "store",
    [OP_LOOKUP] = "read",
    [OP_DELETE] = "delete",
    [OP_HAS] = "look for",
  };
  if (raw->domain == TUSK_ERROR)
    return g_error_copy (raw);
  g_autofree char *what = g_strdup_printf ("Could not %s the secret of %s",
                                           verbs[job->op], job->account);
  return tusk_error_from_secret (raw, what);
}

/* Runs @job against the Secret Service.  On success sets *@secret (lookup)
 * or *@has (has); on failure returns FALSE with @raw set. */
static gboolean
run_on_keychain (TuskCredentials *self, Job *job, GCancellable *cancellable,
                 char **secret, gboolean *has, GError **raw)
{
  switch (job->op)
    {
      case OP_STORE:
        return keychain_store (self->service, job->account, job->label,
                               job->secret, cancellable, raw);
      case OP_LOOKUP:
        {
          GError *local = NULL;
          *secret = keychain_lookup (self->service, job->account, cancellable,
                                     &local);
          if (local == NULL)
            return TRUE;
          g_propagate_error (raw, local);
          return FALSE;
        }
      case OP_DELETE:
        return keychain_delete (self->service, job->account, cancellable, raw);
      case OP_HAS:
      default:
        {
          GError *local = NULL;
          *has
              = keychain_has (self->service, job->account, cancellable, &local);
          if (local == NULL)
            return TRUE;
          g_propagate_error (raw, local);
          return FALSE;
        }
    }
}

/* Runs @job on the session store; never fails. */
static void
run_in_memory (TuskCredentials *self, Job *job, char **secret, gboolean *has)
{
  switch (job->op)
    {
      case OP_STORE:
        g_hash_table_replace (self->session, g_strdup (job->account),
                              g_steal_pointer (&job->secret));
        break;
      case OP_LOOKUP:
        {
          const char *held = g_hash_table_lookup (self->session, job->account);
          *secret = held != NULL ? secret_dup (held, strlen (held)) : NULL;
          break;
        }
      case OP_DELETE:
        g_hash_table_remove (self->session, job->account);
        break;
      case OP_HAS:
      default:
        *has = g_hash_table_contains (self->session, job->account);
        break;
    }
}

/* Switches to the session store for good (see the design note): one
 * warning saying @why.  Keychain thread. */
static void
keychain_lost (TuskCredentials *self, const char *why)
{
  if (self->service == NULL)
    return;
  char *reason = g_strdup_printf ("the Secret Service went away (%s)", why);
  if (self->probing)
    {
      /* Before the verdict: it becomes the probe's reason (and warning). */
      g_clear_signal_handler (&self->owner_handler, self->service);
      g_clear_object (&self->lost_service);
      self->lost_service = g_steal_pointer (&self->service);
      self->lost_reason = reason;
      return;
    }
  tusk_warn ("Keychain unavailable: %s. Passwords will be kept for this "
             "session only.",
             reason);
  g_clear_signal_handler (&self->owner_handler, self->service);
  g_clear_object (&self->lost_service);
  self->lost_service = g_steal_pointer (&self->service);
  g_atomic_pointer_set (&self->unavailable_reason, reason);
  g_atomic_int_set (&self->available, FALSE);
}

/* The proxy's view of the bus name changed (dispatched on the keychain
 * thread, whose context was the thread-default one when the proxy was
 * made). */
static void
on_owner_changed (GObject *proxy, GParamSpec *pspec, gpointer data)
{
  (void)pspec;
  TuskCredentials *self = data;
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (proxy));
  if (g_strcmp0 (owner, self->service_owner) != 0)
    keychain_lost (self, owner == NULL
                             ? "its daemon left the session bus"
                             : "its daemon was replaced by another one");
}

/* After a failed operation: why the Secret Service the probe talked to is
 * gone, or NULL (transfer full) when it is still there and simply refused.
 * Asks the bus itself (one round trip, on failures only): the proxy hears
 * of a new owner only when this thread's context next runs. */
static char *
service_gone_reason (TuskCredentials *self, const GError *raw)
{
  if (g_error_matches (raw, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
      || g_error_matches (raw, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)
      || g_error_matches (raw, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
      || g_error_matches (raw, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED)
      || g_error_matches (raw, G_IO_ERROR, G_IO_ERROR_CLOSED))
    return g_strdup (raw->message);

  GDBusProxy *proxy = G_DBUS_PROXY (self->service);
  GDBusConnection *bus = g_dbus_proxy_get_connection (proxy);
  if (g_dbus_connection_is_closed (bus))
    return g_strdup ("the session bus connection closed");
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
      "org.freedesktop.DBus", "GetNameOwner",
      g_variant_new ("(s)", g_dbus_proxy_get_name (proxy)),
      G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  if (reply == NULL)
    {
      if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)
          || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED))
        return g_strdup_printf ("its daemon left the session bus: %s",
                                raw->message);
      return NULL; /* the bus did not answer: keep the keychain */
    }
  const char *owner = NULL;
  g_variant_get (reply, "(&s)", &owner);
  if (g_strcmp0 (owner, self->service_owner) == 0)
    return NULL;
  return g_strdup_printf ("its daemon was replaced by another one: %s",
                          raw->message);
}

/* Returns @task with what @job produced.  Announces to ThreadSanitizer
 * what this thread wrote for the caller, which the _finish() acquires; the
 * job is not read after that (its task may be freed on the caller's side at
 * once). */
static void
job_return (GTask *task, Job *job, char *secret, gboolean has)
{
  Op op = job->op;
  switch (op)
    {
      case OP_STORE:
        tusk_trace ("stored the secret of %s", job->account);
        break;
      case OP_LOOKUP:
        tusk_trace ("read the secret of %s: %s", job->account,
                    secret != NULL ? "found" : "none stored");
        if (secret != NULL && job->self->service != NULL)
          job->self->read_found = TRUE;
        break;
      case OP_DELETE:
        tusk_trace ("deleted the secret of %s", job->account);
        break;
      case OP_HAS:
      default:
        break;
    }
  tusk_tsan_release (task);
  if (op == OP_LOOKUP)
    g_task_return_pointer (task, secret,
                           (GDestroyNotify)tusk_credentials_secret_free);
  else
    g_task_return_boolean (task, op == OP_HAS ? has : TRUE);
}

static void
job_return_error (GTask *task, GError *error)
{
  tusk_tsan_release (task);
  g_task_return_error (task, error);
}

static void
run_job (GTask *task)
{
  Job *job = g_task_get_task_data (task);
  TuskCredentials *self = job->self;
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr (GError) raw = NULL;
  char *secret = NULL;
  gboolean has = FALSE;

  if (g_cancellable_set_error_if_cancelled (cancellable, &raw))
    {
      job_return_error (task, tusk_error_from_secret (raw, job->account));
      return;
    }

  if (self->service != NULL)
    {
      if (run_on_keychain (self, job, cancellable, &secret, &has, &raw))
        {
          job_return (task, job, secret, has);
          return;
        }
      g_autofree char *gone
          = g_error_matches (raw, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                ? NULL
                : service_gone_reason (self, raw);
      if (gone == NULL)
        {
          job_return_error (task, job_error (job, raw));
          return;
        }
      keychain_lost (self, gone);
    }
  run_in_memory (self, job, &secret, &has);
  job_return (task, job, secret, has);
}

static gboolean
dispatch_job (gpointer data)
{
  GTask *task = data;
  tusk_tsan_acquire (task); /* released by submit() */
  run_job (task);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

/* ---- the probe and the thread ------------------------------------------ */

/* The probe's first half: opens the service and its default collection
 * (*@collection_out, transfer full).  Returns NULL when both are usable,
 * else (transfer full) the reason. */
static char *
probe_open (TuskCredentials *self, GCancellable *cancellable,
            SecretCollection **collection_out)
{
  g_autoptr (GError) error = NULL;

  self->service = secret_service_open_sync (keychain_service_get_type (), NULL,
                                            SECRET_SERVICE_OPEN_SESSION,
                                            cancellable, &error);
  if (self->service == NULL)
    return g_strdup_printf ("cannot reach the Secret Service (%s)",
                            error->message);

  /* Watch the daemon that answered: if it goes, so does the keychain. */
  self->service_owner
      = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (self->service));
  self->owner_handler = g_signal_connect (self->service, "notify::g-name-owner",
                                          G_CALLBACK (on_owner_changed), self);

  g_autoptr (SecretCollection) collection = secret_collection_for_alias_sync (
      self->service, SECRET_COLLECTION_DEFAULT, SECRET_COLLECTION_NONE,
      cancellable, &error);
  if (error != NULL)
    return g_strdup_printf ("cannot open the default keyring (%s)",
                            error->message);
  if (collection == NULL)
    return g_strdup ("the Secret Service has no default keyring");
  if (secret_collection_get_locked (collection))
    return g_strdup ("the default keyring is locked");
  *collection_out = g_steal_pointer (&collection);
  return NULL;
}

/* The second half: a test write into @collection.  Returns NULL when the
 * keychain works, else (transfer full) the reason. */
static char *
probe_write (SecretCollection *collection, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;

  /* The test entry is deleted through its own item, not by a search on
   * its attributes: another process probing at the same moment has an
   * entry with the same attributes, and deleting that one under it makes
   * libsecret return its clear twice. */
  g_autofree char *random = g_uuid_string_random ();
  g_autoptr (GHashTable) attributes = attributes_for (PROBE_ACCOUNT);
  g_autoptr (SecretValue) value = secret_value_new (random, -1, "text/plain");
  g_autoptr (SecretItem) item = secret_item_create_sync (
      collection, &schema, attributes,
      "Tusk: availability check (safe to delete)", value,
      SECRET_ITEM_CREATE_NONE, cancellable, &error);
  if (item == NULL || !secret_item_delete_sync (item, cancellable, &error))
    return g_strdup_printf ("a test entry could not be written (%s)",
                            error->message);

  return NULL;
}

static gpointer
keychain_thread (gpointer data)
{
  TuskCredentials *self = data;

  g_main_context_push_thread_default (self->context);

  gint64 start = g_get_monotonic_time ();
  self->probing = TRUE;
  g_autoptr (SecretCollection) collection = NULL;
  char *reason = probe_open (self, self->probe_cancellable, &collection);
  /* Reads submitted meanwhile (a start-up's password look-up) need not
   * wait for the test write: the service and the collection answer. */
  while (reason == NULL
         && !g_cancellable_is_cancelled (self->probe_cancellable))
    {
      pthread_mutex_lock (&self->probe_lock);
      GTask *task = g_queue_peek_head (&self->early);
      Job *job = task ? g_task_get_task_data (task) : NULL;
      gboolean read = job && (job->op == OP_LOOKUP || job->op == OP_HAS);
      if (read)
        g_queue_pop_head (&self->early);
      pthread_mutex_unlock (&self->probe_lock);
      if (!read)
        break;
      dispatch_job (task);
      if (self->service == NULL)
        reason = g_steal_pointer (&self->lost_reason);
    }
  /* A secret read back from the keychain proves it as well as the test
   * write would: a saved connection's start-up writes nothing to the
   * keyring. */
  if (reason == NULL && !self->read_found)
    reason = probe_write (collection, self->probe_cancellable);
  /* Dropped now, not at the thread's end: a live SecretCollection proxy
   * hears ItemCreated/ItemChanged/ItemDeleted for every store and delete,
   * and libsecret 0.20.5's handlers leak each signal's variants; and after
   * the loop its signal subscriptions would never be released (their
   * clean-up is dispatched in this context). */
  g_clear_object (&collection);
  if (reason != NULL)
    {
      g_clear_signal_handler (&self->owner_handler, self->service);
      g_clear_object (&self->service);
    }
  self->probing = FALSE;
  tusk_debug ("keychain probe: %s in %.1f ms",
              reason == NULL ? "available" : "unavailable",
              (g_get_monotonic_time () - start) / 1000.0);

  /* Hand the result to the watchdog, and wait until it has published
   * `available` (invariant 2) before anything here may change it. */
  pthread_mutex_lock (&self->probe_lock);
  self->probe_reason = reason;
  self->probe_done = TRUE;
  pthread_cond_broadcast (&self->probe_cond);
  while (!self->published)
    pthread_cond_wait (&self->probe_cond, &self->probe_lock);
  pthread_mutex_unlock (&self->probe_lock);

  /* The rest of what came before the verdict, in order; nothing joins
   * `early` once it is out (submit() checks under probe_lock), and what
   * came after waits in the context. */
  GTask *task;
  while ((task = g_queue_pop_head (&self->early)))
    dispatch_job (task);

  g_main_loop_run (self->loop);

  /* Anything submitted after the quit (a misuse) still completes. */
  while (g_main_context_iteration (self->context, FALSE))
    ;
  g_clear_signal_handler (&self->owner_handler, self->service);
  g_clear_object (&self->service);
  g_clear_object (&self->lost_service);
  g_clear_pointer (&self->service_owner, g_free);
  while (g_main_context_iteration (self->context, FALSE))
    ;
  g_main_context_pop_thread_default (self->context);
  return NULL;
}

/* Waits for the probe (at most TUSK_CREDENTIALS_PROBE_TIMEOUT_MS, then
 * cancels it) and publishes its verdict (invariant 2). */
static gpointer
watchdog_thread (gpointer data)
{
  TuskCredentials *self = data;
  gint64 deadline
      = g_get_monotonic_time () + TUSK_CREDENTIALS_PROBE_TIMEOUT_MS * 1000;
  struct timespec until = {
    .tv_sec = deadline / G_USEC_PER_SEC,
    .tv_nsec = (deadline % G_USEC_PER_SEC) * 1000,
  };
  gboolean timed_out = FALSE;
  pthread_mutex_lock (&self->probe_lock);
  while (!self->probe_done)
    {
      if (timed_out)
        {
          pthread_cond_wait (&self->probe_cond, &self->probe_lock);
          continue;
        }
      if (pthread_cond_timedwait (&self->probe_cond, &self->probe_lock, &until)
              != ETIMEDOUT
          || self->probe_done)
        continue;
      /* The cancelled probe ends at once with a reason of its own, which
       * the timeout's replaces below. */
      timed_out = TRUE;
      pthread_mutex_unlock (&self->probe_lock);
      g_cancellable_cancel (self->probe_cancellable);
      pthread_mutex_lock (&self->probe_lock);
    }
  char *reason = g_steal_pointer (&self->probe_reason);

  if (timed_out && reason != NULL)
    {
      g_free (reason);
      reason = g_strdup_printf ("the Secret Service did not answer within %d s",
                                TUSK_CREDENTIALS_PROBE_TIMEOUT_MS / 1000);
    }
  /* Warned before the verdict is published, so that an asker told
   * "unavailable" finds the warning already logged.  Without the lock
   * (the console callback is the caller's): nothing else touches the probe
   * fields until `published` is set. */
  if (reason != NULL)
    {
      pthread_mutex_unlock (&self->probe_lock);
      tusk_warn ("Keychain unavailable: %s. Passwords will be kept for this "
                 "session only.",
                 reason);
      pthread_mutex_lock (&self->probe_lock);
    }
  g_atomic_pointer_set (&self->unavailable_reason, reason);
  g_atomic_int_set (&self->available, reason == NULL);
  self->published = TRUE;
  pthread_cond_broadcast (&self->probe_cond);
  pthread_mutex_unlock (&self->probe_lock);
  return NULL;
}

/* Starts the keychain thread and its probe, once.  Any thread. */
static void
ensure_started (TuskCredentials *self)
{
  pthread_mutex_lock (&self->probe_lock);
  if (!self->started)
    {
      self->started = TRUE;
      self->thread = g_thread_new ("tusk-keychain", keychain_thread, self);
      self->watchdog
          = g_thread_new ("tusk-keychain-watchdog", watchdog_thread, self);
    }
  pthread_mutex_unlock (&self->probe_lock);
}

/* Starts the probe if need be and waits for its verdict. */
static void
wait_for_verdict (TuskCredentials *self)
{
  ensure_started (self);
  pthread_mutex_lock (&self->probe_lock);
  while (!self->published)
    pthread_cond_wait (&self->probe_cond, &self->probe_lock);
  pthread_mutex_unlock (&self->probe_lock);
}

TuskCredentials *
tusk_credentials_new (void)
{
  TuskCredentials *self = g_new0 (TuskCredentials, 1);

  self->context = g_main_context_new ();
  self->loop = g_main_loop_new (self->context, FALSE);
  self->session
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                               (GDestroyNotify)tusk_credentials_secret_free);
  pthread_mutex_init (&self->probe_lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&self->probe_cond, &attr);
  pthread_condattr_destroy (&attr);
  self->probe_cancellable = g_cancellable_new ();
  return self;
}

void
tusk_credentials_free (TuskCredentials *self)
{
  if (self == NULL)
    return;
  g_return_if_fail (self->thread == NULL || g_thread_self () != self->thread);

  /* Never used: no thread ever started (ensure_started() is not called
   * concurrently with free, see the header). */
  if (self->started)
    {
      /* Queued behind every job already submitted (FIFO), so those
       * finish. */
      g_main_context_invoke (self->context, quit_loop, self->loop);
      g_thread_join (self->thread);
      g_thread_join (self->watchdog);
    }

  g_hash_table_destroy (self->session); /* wipes every value */
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_object_unref (self->probe_cancellable);
  pthread_mutex_destroy (&self->probe_lock);
  pthread_cond_destroy (&self->probe_cond);
  g_free (self->unavailable_reason);
  g_free (self->lost_reason);
  g_free (self);
}

void
tusk_credentials_start (TuskCredentials *self)
{
  g_return_if_fail (self != NULL);
  ensure_started (self);
}

gboolean
tusk_credentials_is_available (TuskCredentials *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  wait_for_verdict (self);
  return g_atomic_int_get (&self->available);
}

const char *
tusk_credentials_get_unavailable_reason (TuskCredentials *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  wait_for_verdict (self);
  return g_atomic_pointer_get (&self->unavailable_reason);
}

/* ---- submitting --------------------------------------------------------- */

/* Creates the task of an operation on the calling thread's thread-default
 * context and hands it to the keychain thread.  Takes @job. */
static void
submit (TuskCredentials *self, Job *job, gpointer source_tag,
        GCancellable *cancellable, GAsyncReadyCallback callback,
        gpointer user_data)
{
  ensure_started (self);
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  g_task_set_name (task, "tusk-credentials");
  g_task_set_task_data (task, job, (GDestroyNotify)job_free);
  /* Cancellation is reported by run_job() as a TUSK_ERROR, and an operation
   * that finished before the cancel keeps its result. */
  g_task_set_check_cancellable (task, FALSE);

  /* Never runs inline: the keychain thread owns the context.
   * dispatch_job() acquires what this thread wrote into the job. */
  tusk_tsan_release (task);
  pthread_mutex_lock (&self->probe_lock);
  gboolean early = !self->published;
  if (early)
    g_queue_push_tail (&self->early, task);
  pthread_mutex_unlock (&self->probe_lock);
  if (early)
    return;
  GSource *source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, dispatch_job, task, NULL);
  g_source_set_static_name (source, "tusk-credentials job");
  g_source_attach (source, self->context);
  g_source_unref (source);
}

static Job *
job_new (TuskCredentials *self, Op op, TuskCredentialKind kind, const char *id)
{
  Job *job = g_new0 (Job, 1);
  job->self = self;
  job->op = op;
  job->account = tusk_credentials_account_name (kind, id);
  return job;
}

static Job *
store_job_new (TuskCredentials *self, TuskCredentialKind kind, const char *id,
               const char *label, const char *secret)
{
  Job *job = job_new (self, OP_STORE, kind, id);
  job->label = g_strconcat (
      "Tusk: ", label != NULL && *label != '\0' ? label : job->account, NULL);
  job->secret = secret_dup (secret, strlen (secret));
  return job;
}

typedef struct
{
  GAsyncResult *result;
} SyncWait;

static void
on_sync_done (GObject *source, GAsyncResult *result, gpointer data)
{
  (void)source;
  SyncWait *wait = data;
  wait->result = g_object_ref (result);
}

/* Runs @job on the keychain thread and waits for it.  Returns (transfer
 * full) its finished task. */
static GTask *
run_sync (TuskCredentials *self, Job *job, gpointer source_tag,
          GCancellable *cancellable)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  SyncWait wait = { NULL };

  g_main_context_push_thread_default (context);
  submit (self, job, source_tag, cancellable, on_sync_done, &wait);
  while (wait.result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  tusk_tsan_acquire (wait.result); /* released by job_return() */
  return G_TASK (wait.result);
}

static gboolean
finish_boolean (GAsyncResult *result, gpointer source_tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag,
                        FALSE);
  tusk_tsan_acquire (result);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The checks every operation makes of its arguments (criticals on misuse). */
static gboolean
args_ok (TuskCredentials *self, TuskCredentialKind kind, const char *id,
         GCancellable *cancellable)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (kind_is_valid (kind), FALSE);
  g_return_val_if_fail (id != NULL && *id != '\0', FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable),
                        FALSE);
  return TRUE;
}

/* And those of a _sync call: it would wait for itself on the keychain
 * thread. */
static gboolean
sync_args_ok (TuskCredentials *self, TuskCredentialKind kind, const char *id,
              GCancellable *cancellable, GError **error)
{
  if (!args_ok (self, kind, id, cancellable))
    return FALSE;
  g_return_val_if_fail (g_thread_self () != self->thread, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  return TRUE;
}

/* ---- store --------------------------------------------------------------- */

gboolean
tusk_credentials_store_sync (TuskCredentials *self, TuskCredentialKind kind,
                             const char *id, const char *label,
                             const char *secret, GCancellable *cancellable,
                             GError **error)
{
  if (!sync_args_ok (self, kind, id, cancellable, error))
    return FALSE;
  g_return_val_if_fail (secret != NULL, FALSE);

  g_autoptr (GTask) task
      = run_sync (self, store_job_new (self, kind, id, label, secret),
                  tusk_credentials_store_async, cancellable);
  return g_task_propagate_boolean (task, error);
}

void
tusk_credentials_store_async (TuskCredentials *self, TuskCredentialKind kind,
                              const char *id, const char *label,
                              const char *secret, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  if (!args_ok (self, kind, id, cancellable))
    return;
  g_return_if_fail (secret != NULL);

  submit (self, store_job_new (self, kind, id, label, secret),
          tusk_credentials_store_async, cancellable, callback, user_data);
}

gboolean
tusk_credentials_store_finish (TuskCredentials *self, GAsyncResult *result,
                               GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return finish_boolean (result, tusk_credentials_store_async, error);
}

/* ---- lookup -------------------------------------------------------------- */

char *
tusk_credentials_lookup_sync (TuskCredentials *self, TuskCredentialKind kind,
                              const char *id, GCancellable *cancellable,
                              GError **error)
{
  if (!sync_args_ok (self, kind, id, cancellable, error))
    return NULL;

  g_autoptr (GTask) task
      = run_sync (self, job_new (self, OP_LOOKUP, kind, id),
                  tusk_credentials_lookup_async, cancellable);
  return g_task_propagate_pointer (task, error);
}

void
tusk_credentials_lookup_async (TuskCredentials *self, TuskCredentialKind kind,
                               const char *id, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  if (!args_ok (self, kind, id, cancellable))
    return;

  submit (self, job_new (self, OP_LOOKUP, kind, id),
          tusk_credentials_lookup_async, cancellable, callback, user_data);
}

char *
tusk_credentials_lookup_finish (TuskCredentials *self, GAsyncResult *result,
                                GError **error)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result))
                            == tusk_credentials_lookup_async,
                        NULL);
  tusk_tsan_acquire (result);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- delete -------------------------------------------------------------- */

gboolean
tusk_credentials_delete_sync (TuskCredentials *self, TuskCredentialKind kind,
                              const char *id, GCancellable *cancellable,
                              GError **error)
{
  if (!sync_args_ok (self, kind, id, cancellable, error))
    return FALSE;

  g_autoptr (GTask) task
      = run_sync (self, job_new (self, OP_DELETE, kind, id),
                  tusk_credentials_delete_async, cancellable);
  return g_task_propagate_boolean (task, error);
}

void
tusk_credentials_delete_async (TuskCredentials *self, TuskCredentialKind kind,
                               const char *id, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  if (!args_ok (self, kind, id, cancellable))
    return;

  submit (self, job_new (self, OP_DELETE, kind, id),
          tusk_credentials_delete_async, cancellable, callback, user_data);
}

gboolean
tusk_credentials_delete_finish (TuskCredentials *self, GAsyncResult *result,
                                GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return finish_boolean (result, tusk_credentials_delete_async, error);
}

/* ---- has ----------------------------------------------------------------- */

gboolean
tusk_credentials_has_sync (TuskCredentials *self, TuskCredentialKind kind,
                           const char *id, GCancellable *cancellable,
                           GError **error)
{
  if (!sync_args_ok (self, kind, id, cancellable, error))
    return FALSE;

  g_autoptr (GTask) task = run_sync (self, job_new (self, OP_HAS, kind, id),
                                     tusk_credentials_has_async, cancellable);
  return g_task_propagate_boolean (task, error);
}

void
tusk_credentials_has_async (TuskCredentials *self, TuskCredentialKind kind,
                            const char *id, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
  if (!args_ok (self, kind, id, cancellable))
    return;

  submit (self, job_new (self, OP_HAS, kind, id), tusk_credentials_has_async,
          cancellable, callback, user_data);
}

gboolean
tusk_credentials_has_finish (TuskCredentials *self, GAsyncResult *result,
                             GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return finish_boolean (result, tusk_credentials_has_async, error);
}
