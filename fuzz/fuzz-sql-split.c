/* fuzz-sql-split.c: the statement splitter on arbitrary bytes, whole and
 * fed line by line; the pieces must agree and stay inside the script. */
#include <string.h>

#include "tusk-sql-split.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *script = g_malloc (size + 1);
  memcpy (script, data, size);
  script[size] = '\0';

  g_autoptr (GPtrArray) whole = tusk_sql_split (script, size);
  for (guint i = 0; i < whole->len; i++)
    {
      TuskSqlPiece *piece = whole->pdata[i];
      g_assert (piece->offset <= piece->end_offset);
      g_assert (piece->end_offset <= size);
      g_assert (piece->text[piece->length] == '\0');
      int line = 0, column = 0;
      gsize at = tusk_sql_piece_locate (piece, (int)piece->length / 2 + 1,
                                        &line, &column);
      g_assert (at <= size);
      g_assert (line >= 1 && column >= 1);
    }

  /* The scanner fed one line at a time finds the same pieces. */
  g_autoptr (TuskSqlScanner) scanner = tusk_sql_scanner_new ();
  g_autoptr (GPtrArray) fed
      = g_ptr_array_new_with_free_func ((GDestroyNotify)tusk_sql_piece_free);
  gsize start = 0;
  while (start < size)
    {
      const char *nl = memchr (script + start, '\n', size - start);
      gsize end = nl ? (gsize)(nl - script) + 1 : size;
      g_autoptr (GPtrArray) got
          = tusk_sql_scanner_feed (scanner, script + start, end - start);
      for (guint i = 0; i < got->len; i++)
        g_ptr_array_add (fed, g_steal_pointer (&got->pdata[i]));
      g_ptr_array_set_free_func (got, NULL);
      start = end;
      (void)tusk_sql_scanner_get_continuation (scanner);
    }
  g_autoptr (GPtrArray) rest = tusk_sql_scanner_finish (scanner);
  for (guint i = 0; i < rest->len; i++)
    g_ptr_array_add (fed, g_steal_pointer (&rest->pdata[i]));
  g_ptr_array_set_free_func (rest, NULL);

  g_assert_cmpuint (fed->len, ==, whole->len);
  for (guint i = 0; i < whole->len; i++)
    {
      TuskSqlPiece *a = whole->pdata[i], *b = fed->pdata[i];
      g_assert_cmpint (a->kind, ==, b->kind);
      g_assert_cmpuint (a->length, ==, b->length);
      g_assert (memcmp (a->text, b->text, a->length) == 0);
      g_assert_cmpuint (a->offset, ==, b->offset);
    }
  return 0;
}
