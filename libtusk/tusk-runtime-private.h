/* tusk-runtime-private.h: plain jobs for libtusk's own work, and telling
 * ThreadSanitizer about the hand-overs GLib makes for us.
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

#include "tusk-runtime.h"

G_BEGIN_DECLS

/* Queues @func (@data) on @runtime's workers, in FIFO order with the GTask
 * jobs, for internal work that has no main context to report to (e.g. the
 * cancel request of a query that runs on its caller's thread).  @func owns
 * @data and runs exactly once, also when tusk_runtime_free() drains the
 * queue.  Returns at once; never blocks and never calls @func itself.  Any
 * thread. */
void tusk_runtime_run_func (TuskRuntime *runtime, void (*func) (gpointer data),
                            gpointer data);

/* Runs @func (@data) at once on a thread of its own, beside the workers and
 * outside their limit: for short blocking work that must not wait behind
 * the queue, whose jobs may themselves be waiting for it (the cancel
 * request of a running query).  tusk_runtime_free() waits for every such
 * thread to return.  @func owns @data and runs exactly once (queued on the
 * workers when no thread can be started); never on the calling thread.
 * Any thread, as tusk_runtime_run_func(). */
void tusk_runtime_run_urgent (TuskRuntime *runtime,
                              void (*func) (gpointer data), gpointer data);

G_END_DECLS

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
