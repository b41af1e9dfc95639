/* tusk-credentials.h: CredentialService, the passwords of saved connections
 * and SSH tunnels in the OS keychain, with an in-memory fallback (research
 * §2, data model "CredentialService").
 *
 * Secrets live in the Secret Service (gnome-keyring, KWallet, KeePassXC, …)
 * through libsecret: attributes service = "dev.tusk.Tusk" and account =
 * "db:{connection_id}" or "ssh:{tunnel_id}", label "Tusk: <name>", in the
 * default collection.  Every keychain call runs on one dedicated thread
 * ("tusk-keychain"), so no two ever overlap.
 *
 * The first time the keychain is needed (the first operation, or the first
 * availability question) a probe checks that it can be used.  When it
 * cannot (no session bus, no Secret Service, the default keyring locked, a
 * test write refused or unanswered) one warning is logged — "Keychain
 * unavailable: <reason>. Passwords will be kept for this session only." —
 * and every operation works on an in-memory
 * table instead, owned by this TuskCredentials alone and wiped (overwritten,
 * then freed) as entries are replaced or deleted and at
 * tusk_credentials_free().  Nothing is ever written to a file or to SQLite.
 * The same happens mid-session when the Secret Service goes away (its daemon
 * exits or is replaced, or the session bus closes): one warning, "Keychain
 * unavailable: the Secret Service went away (…). …", and the operation that
 * noticed it and every later one use the in-memory table; secrets stored in
 * the keychain before stay there, out of reach until the next start.
 * Tusk never shows a keyring unlock prompt: a keyring that is locked at
 * start makes the keychain unavailable, and one locked later makes
 * operations fail with TUSK_ERROR_KEYRING.
 *
 * Secrets are never logged nor put in error messages (only account names
 * are), and every buffer libtusk filled with one is wiped before it is
 * freed.  A secret handed to the caller is the caller's to wipe: free it
 * with tusk_credentials_secret_free(), never g_free().
 *
 * Results: a missing credential is not an error — lookup answers NULL with
 * no error set, has answers FALSE, delete succeeds.  Failures are
 * TUSK_ERROR_KEYRING (the Secret Service failed or refused, the keyring is
 * locked) or TUSK_ERROR_QUERY_CANCELLED (the cancellable was cancelled;
 * best effort: an operation that already reached the keychain may still
 * have happened).
 *
 * Thread rules: a TuskCredentials is shared by every thread; every function
 * may be called from any thread.  The _sync functions block until the
 * keychain thread has done the work (normally a few milliseconds, at most
 * the Secret Service's D-Bus timeouts), so a UI thread uses the
 * _async/_finish pairs, whose callback runs on the thread-default main
 * context of the thread that called _async, never from inside the _async
 * call.  Operations run in the order they were submitted.
 * tusk_credentials_free() is called once, by the owner, after every other
 * thread has stopped submitting operations.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The Secret Service "service" attribute and the schema name. */
#define TUSK_CREDENTIALS_SERVICE "dev.tusk.Tusk"

/* How long the availability probe may take before the keychain counts as
 * unavailable for the session. */
#define TUSK_CREDENTIALS_PROBE_TIMEOUT_MS 5000

/**
 * TuskCredentialKind:
 * @TUSK_CREDENTIAL_KIND_DB: a database password; account "db:{connection_id}"
 * @TUSK_CREDENTIAL_KIND_SSH: an SSH password or key passphrase; account
 *   "ssh:{tunnel_id}"
 *
 * What a secret unlocks, which decides its account name.
 */
typedef enum
{
  TUSK_CREDENTIAL_KIND_DB,
  TUSK_CREDENTIAL_KIND_SSH,
} TuskCredentialKind;

typedef struct _TuskCredentials TuskCredentials;

/**
 * tusk_credentials_account_name:
 * @kind: the kind of secret
 * @id: the connection or tunnel id; not empty
 *
 * Returns: (transfer full): the account attribute, "db:{id}" or "ssh:{id}";
 *   free with g_free().  Any thread.
 */
char *tusk_credentials_account_name (TuskCredentialKind kind, const char *id);

/**
 * tusk_credentials_new:
 *
 * Makes the service without touching D-Bus: nothing starts until the
 * keychain is first needed.  Then the keychain thread starts and probes the
 * Secret Service: opens an encrypted session, checks that the default
 * collection exists and is unlocked, stores a test entry (account
 * "tusk:availability-probe") and deletes it — unless a look-up submitted
 * meanwhile, which runs before that test write, finds a secret: reading
 * one back proves the keychain as well — 15–30 ms against a local
 * gnome-keyring (half of it opening the session), a few ms when there is no
 * session bus, and at most TUSK_CREDENTIALS_PROBE_TIMEOUT_MS, after which
 * the keychain counts as unavailable.  Operations submitted meanwhile wait
 * for it.  When the probe fails, logs the one warning described above and
 * uses the in-memory store for the rest of this object's life.  A front
 * end that wants to show availability at start-up asks
 * tusk_credentials_is_available() from a worker thread.
 *
 * Never fails, never blocks.
 *
 * Returns: (transfer full): free with tusk_credentials_free().
 */
TuskCredentials *tusk_credentials_new (void);

/**
 * tusk_credentials_free:
 * @self: (nullable) (transfer full): the credentials
 *
 * Lets every operation already submitted finish (their callbacks are still
 * delivered), stops the keychain thread, and wipes the in-memory store.
 * Blocks until that is done.  Any thread but the keychain thread.
 */
void tusk_credentials_free (TuskCredentials *self);

/**
 * tusk_credentials_start:
 *
 * Starts the probe described at tusk_credentials_new() now, in the
 * background, unless it has started; never blocks.  A front end that will
 * need a secret soon (a saved connection about to be opened) calls this
 * first, so that the probe's D-Bus round trips overlap its other work; a
 * look-up submitted while the probe opens the service still runs before
 * its test write.  Any thread.
 */
void tusk_credentials_start (TuskCredentials *self);

/**
 * tusk_credentials_is_available:
 *
 * Runs the probe described at tusk_credentials_new() unless it ran already,
 * so the first call (or the first after new() with no operation yet)
 * **blocks** for it; later calls answer at once.
 *
 * Returns: %TRUE when secrets go to the OS keychain; %FALSE when they are
 *   kept in memory for this session only.  Turns %FALSE, once, if the
 *   Secret Service goes away later.  Any thread.
 */
gboolean tusk_credentials_is_available (TuskCredentials *self);

/**
 * tusk_credentials_get_unavailable_reason:
 *
 * Blocks for the probe as tusk_credentials_is_available() does.
 *
 * Returns: (transfer none) (nullable): why the keychain is unavailable, in
 *   words for a person ("the default keyring is locked"), or %NULL when it
 *   is available.  Owned by @self, valid until tusk_credentials_free().
 */
const char *tusk_credentials_get_unavailable_reason (TuskCredentials *self);

/**
 * tusk_credentials_secret_free:
 * @secret: (nullable) (transfer full): a secret returned by libtusk
 *
 * Overwrites @secret with zeros, then frees it.  Use it for every secret
 * tusk_credentials_lookup_sync() or _finish() returned.
 */
void tusk_credentials_secret_free (char *secret);

/**
 * tusk_credentials_store_sync:
 * @self: the credentials
 * @kind: the kind of secret
 * @id: the connection or tunnel id; not empty
 * @label: (nullable): the connection's or tunnel's display name; the item is
 *   labelled "Tusk: <label>", or "Tusk: <account>" when %NULL or empty
 * @secret: the password or passphrase (NUL-terminated); copied, and the copy
 *   is wiped after use; the caller wipes its own
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Stores @secret for the account, replacing any earlier one.  Blocks until
 * the keychain thread has done it; never call it on a UI thread.
 *
 * Returns: %TRUE on success; on failure %FALSE with @error set, and the
 *   earlier secret (if any) is normally left in place.
 */
gboolean tusk_credentials_store_sync (TuskCredentials *self,
                                      TuskCredentialKind kind, const char *id,
                                      const char *label, const char *secret,
                                      GCancellable *cancellable,
                                      GError **error);

/**
 * tusk_credentials_store_async:
 *
 * Like tusk_credentials_store_sync() without blocking: @callback runs on
 * the calling thread's thread-default main context; call
 * tusk_credentials_store_finish() from it.  @secret is copied at once.
 */
void tusk_credentials_store_async (TuskCredentials *self,
                                   TuskCredentialKind kind, const char *id,
                                   const char *label, const char *secret,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);

/* Returns: as tusk_credentials_store_sync(). */
gboolean tusk_credentials_store_finish (TuskCredentials *self,
                                        GAsyncResult *result, GError **error);

/**
 * tusk_credentials_lookup_sync:
 * @self: the credentials
 * @kind: the kind of secret
 * @id: the connection or tunnel id; not empty
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Reads the secret of the account.  Blocks; never call it on a UI thread.
 *
 * Returns: (transfer full) (nullable): the secret, to be freed with
 *   tusk_credentials_secret_free(); %NULL with @error unset when no secret
 *   is stored (not found is not an error); %NULL with @error set on
 *   failure.  Callers must test @error (or pass %NULL and treat every %NULL
 *   as "ask the user").
 */
char *tusk_credentials_lookup_sync (TuskCredentials *self,
                                    TuskCredentialKind kind, const char *id,
                                    GCancellable *cancellable, GError **error);

void tusk_credentials_lookup_async (TuskCredentials *self,
                                    TuskCredentialKind kind, const char *id,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);

/* Returns: (transfer full) (nullable): as tusk_credentials_lookup_sync(). */
char *tusk_credentials_lookup_finish (TuskCredentials *self,
                                      GAsyncResult *result, GError **error);

/**
 * tusk_credentials_delete_sync:
 *
 * Deletes the account's secret (every matching keychain item).  Deleting a
 * secret that is not there succeeds.  Blocks; never call it on a UI thread.
 *
 * Returns: %TRUE on success; %FALSE with @error set on failure.
 */
gboolean tusk_credentials_delete_sync (TuskCredentials *self,
                                       TuskCredentialKind kind, const char *id,
                                       GCancellable *cancellable,
                                       GError **error);

void tusk_credentials_delete_async (TuskCredentials *self,
                                    TuskCredentialKind kind, const char *id,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);

gboolean tusk_credentials_delete_finish (TuskCredentials *self,
                                         GAsyncResult *result, GError **error);

/**
 * tusk_credentials_has_sync:
 *
 * Tells whether a secret is stored for the account, without reading it
 * (and so without unlocking anything).  Blocks; never call it on a UI
 * thread.
 *
 * Returns: %TRUE if one is stored; %FALSE if none is, or on failure (then
 *   @error is set).
 */
gboolean tusk_credentials_has_sync (TuskCredentials *self,
                                    TuskCredentialKind kind, const char *id,
                                    GCancellable *cancellable, GError **error);

void tusk_credentials_has_async (TuskCredentials *self, TuskCredentialKind kind,
                                 const char *id, GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);

gboolean tusk_credentials_has_finish (TuskCredentials *self,
                                      GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskCredentials, tusk_credentials_free)

G_END_DECLS
