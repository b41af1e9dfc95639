/* fuzz-ui-state.c: ui_state values (JSON texts) and keys from arbitrary
 * bytes: a value is stored exactly as given when valid, refused with a
 * validation error otherwise. */
#include <string.h>

#include "tusk-error.h"
#include "tusk-storage.h"
#include "tusk-ui-state-repo.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static TuskStorage *storage;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("tusk-fuzz-ui-state-XXXXXX", &error);
  g_assert_no_error (error);
  storage = tusk_storage_open (dir, &error);
  g_assert_no_error (error);
  g_free (dir);
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  /* The first line is the key, the rest the value. */
  g_autofree char *text = g_strndup ((const char *)data, size);
  if (strlen (text) != size)
    return 0;
  char *newline = strchr (text, '\n');
  const char *value = "null";
  if (newline != NULL)
    {
      *newline = '\0';
      value = newline + 1;
    }

  g_autoptr (GError) error = NULL;
  if (!tusk_ui_state_repo_set (storage, text, value, &error))
    {
      g_assert (error != NULL);
      g_assert (error->code == TUSK_ERROR_VALIDATION);
      return 0;
    }
  g_autofree char *back = tusk_ui_state_repo_get (storage, text, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (back, ==, value);
  return 0;
}
