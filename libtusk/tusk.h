/* tusk.h: the one header a front end includes to use libtusk. */
#pragma once

#include "tusk-version.h"
#include "tusk-error.h"
#include "tusk-log.h"
#include "tusk-data-dir.h"
#include "tusk-connection-config.h"
#include "tusk-storage.h"
#include "tusk-connection-repo.h"
#include "tusk-tunnel-repo.h"
#include "tusk-history-repo.h"
#include "tusk-saved-query-repo.h"
#include "tusk-ui-state-repo.h"
#include "tusk-storage-export.h"
#include "tusk-credentials.h"
#include "tusk-runtime.h"
#include "tusk-pool.h"
#include "tusk-state.h"
