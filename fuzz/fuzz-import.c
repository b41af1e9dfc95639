/* fuzz-import.c: the export/import JSON reader on arbitrary documents,
 * into a real storage; whatever the input, import either succeeds or
 * fails with a validation error, and the storage stays readable. */
#include <glib/gstdio.h>

#include "tusk-error.h"
#include "tusk-storage-export.h"
#include "tusk-storage.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static TuskStorage *storage;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("tusk-fuzz-import-XXXXXX", &error);
  g_assert_no_error (error);
  storage = tusk_storage_open (dir, &error);
  g_assert_no_error (error);
  g_free (dir);
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  static const TuskImportPolicy policies[]
      = { TUSK_IMPORT_SKIP, TUSK_IMPORT_REPLACE, TUSK_IMPORT_RENAME };
  TuskImportPolicy policy = policies[size % 3];
  g_autoptr (GError) error = NULL;
  TuskImportSummary summary;

  if (!tusk_storage_import_string (storage, (const char *)data, size, policy,
                                   &summary, &error))
    {
      g_assert (error != NULL);
      g_assert (error->domain == TUSK_ERROR);
      g_assert (error->code == TUSK_ERROR_VALIDATION);
      return 0;
    }
  /* What was imported exports again. */
  g_autofree char *exported = tusk_storage_export_to_string (storage, &error);
  g_assert_no_error (error);
  g_assert (exported != NULL);
  return 0;
}
