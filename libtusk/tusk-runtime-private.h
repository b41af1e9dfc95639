/* tusk-runtime-private.h: telling ThreadSanitizer about the hand-overs GLib
 * makes for us.
 *
 * GTask delivers a result to the caller's main context through GLib's own
 * locks, futexes in an uninstrumented library that ThreadSanitizer cannot
 * see; to it, everything a worker wrote before g_task_return_*() and the
 * caller reads after _finish() looks unsynchronised.  A worker calls
 * tusk_tsan_release (task) just before it returns the task, and the
 * _finish() (and a task data's free function) calls tusk_tsan_acquire
 * (task) first.  Both compile to nothing outside a -fsanitize=thread build.
 *
 * Not installed.
 */
#pragma once

#include <gio/gio.h>

#if defined(__SANITIZE_THREAD__)
#define TUSK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TUSK_TSAN 1
#endif
#endif

#ifdef TUSK_TSAN
#include <sanitizer/tsan_interface.h>
#define tusk_tsan_release(task) __tsan_release (task)
#define tusk_tsan_acquire(task) __tsan_acquire (task)
#else
#define tusk_tsan_release(task) ((void)(task))
#define tusk_tsan_acquire(task) ((void)(task))
#endif
