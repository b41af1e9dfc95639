/* tusk-commands.h: the subcommands — `tusk conn …`, `tusk history`,
 * `tusk saved …`, `tusk schema`, `tusk export`, `tusk import`.
 *
 * Thread rules: main thread only; each subcommand runs to completion.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Whether @word names a subcommand ("conn", "history", "saved", "schema",
 * "export", "import"): such names cannot be connection names. */
gboolean tusk_commands_is_subcommand (const char *word);

/**
 * tusk_commands_main:
 * @data_dir: the prepared data directory (from --data-dir or the default)
 * @argc: the number of arguments from the subcommand's name on
 * @argv: the subcommand's name, then its arguments
 *
 * Runs one subcommand and returns its exit code: TUSK_EXIT_OK, then
 * TUSK_EXIT_FAILED when it failed (a statement of `saved run`, a connection
 * not found), TUSK_EXIT_CONNECTION for a failed connection or wrong usage
 * (with a message on stderr naming what was wrong and how to fix it).
 */
int tusk_commands_main (const char *data_dir, int argc, char **argv);

G_END_DECLS
