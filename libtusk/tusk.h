/* tusk.h: the one header a front end includes to use libtusk. */
#pragma once

#include "tusk-version.h"
#include "tusk-error.h"
#include "tusk-log.h"
#include "tusk-data-dir.h"
