/* tusk-history-redact-private.h: the redaction the history repository
 * applies to what it stores (tusk-history-redact.c).
 */
#pragma once

#include "tusk-history-repo.h"

G_BEGIN_DECLS

/* Redacts @entry in place: its SQL (tusk_history_redact_sql()), and in its
 * error message each text that the SQL's redaction hid.  Any thread. */
void tusk_history_entry_redact (TuskHistoryEntry *entry);

G_END_DECLS
