/* tusk-complete.h: context-aware tab completion from the schema cache —
 * keywords; schemas, tables and views after FROM, JOIN, UPDATE, INTO,
 * TABLE; columns after SELECT, WHERE and "alias."; functions; backslash
 * commands.  Answers from the in-memory snapshot (never the network), so
 * within 50 ms on 10,000 tables.
 *
 * Thread rules: main thread only; plain functions of their input.
 */
#pragma once

#include <tusk.h>

G_BEGIN_DECLS

/**
 * tusk_complete:
 * @snapshot: (nullable): the connection's schema snapshot; without one
 *   only keywords and backslash commands are offered
 * @buffer: the whole statement typed so far (all lines)
 * @cursor: the byte offset of the cursor in @buffer
 * @word_start: (out): where the word being completed starts in @buffer
 *
 * Returns: (transfer full): the candidates for the word before @cursor, in
 *   display order, at most 1,000; free with g_strfreev().  Never NULL.
 */
char **tusk_complete (TuskSchemaSnapshot *snapshot, const char *buffer,
                      gsize cursor, gsize *word_start);

G_END_DECLS
