/* tusk-runtime.h: the worker threads that every blocking libtusk operation
 * runs on, so that the caller's (UI) thread never blocks (research §6).
 *
 * Every database operation in libtusk is a blocking `_sync` function plus an
 * `_async`/`_finish` pair that runs the `_sync` body on a TuskRuntime with
 * tusk_runtime_run_in_thread().  The result is delivered by GTask to the
 * thread-default main context of the thread that created the task (the one
 * current when `_async` was called), in a later iteration of that context:
 * never from inside the `_async` call.
 *
 * Dropping interest in an operation means cancelling its GCancellable: a job
 * whose cancellable is cancelled before a worker picks it up is not run at
 * all, and a running one is expected to notice and stop early.
 *
 * Thread rules: a runtime is shared.  tusk_runtime_run_in_thread() and
 * tusk_runtime_get_n_threads() may be called from any thread, including the
 * runtime's own workers; tusk_runtime_free() is called once, by the owner,
 * never from one of the runtime's workers.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The number of workers of tusk_runtime_new (0). */
#define TUSK_RUNTIME_DEFAULT_THREADS 4

/**
 * TuskRuntime:
 *
 * A fixed set of dedicated worker threads ("tusk-worker") and a FIFO queue
 * of jobs.  Opaque; one owner frees it with tusk_runtime_free().
 */
typedef struct TuskRuntime TuskRuntime;

/**
 * tusk_runtime_new:
 * @n_threads: how many workers; 0 for %TUSK_RUNTIME_DEFAULT_THREADS
 *
 * Makes a runtime of up to @n_threads workers.  They start as jobs need
 * them (a job queued while no idle worker is free starts one) and live
 * until tusk_runtime_free().
 *
 * Returns: (transfer full): the runtime; free with tusk_runtime_free().
 */
TuskRuntime *tusk_runtime_new (guint n_threads);

/**
 * tusk_runtime_free:
 * @runtime: (nullable) (transfer full): a runtime
 *
 * Runs every job still queued, waits for all of them to finish, then joins
 * the workers.  It cancels nothing: a caller that wants a quick shutdown
 * cancels its operations' cancellables first (queued jobs whose cancellable
 * is cancelled are then skipped, and running ones stop early).  Blocks the
 * calling thread until the last job has returned.  The results of those jobs
 * are still delivered afterwards, to their tasks' main contexts.
 *
 * Must not be called from one of @runtime's workers (that would wait for
 * itself).
 */
void tusk_runtime_free (TuskRuntime *runtime);

/**
 * tusk_runtime_get_n_threads:
 * @runtime: a runtime
 *
 * Returns: the most worker threads the runtime runs.  Any thread.
 */
guint tusk_runtime_get_n_threads (TuskRuntime *runtime);

/**
 * tusk_runtime_run_in_thread:
 * @runtime: a runtime
 * @task: (transfer none): the task of an `_async` call; the runtime takes
 *   its own reference until @func has returned
 * @func: the blocking body, called on one of @runtime's workers with the
 *   task's source object, task data and cancellable
 *
 * Like g_task_run_in_thread(), but on @runtime's workers instead of GLib's
 * shared pool, so that database work never competes with (or starves) other
 * users of GLib's pool and the number of threads touching the network stays
 * bounded.  Returns at once; never blocks and never calls @func itself.
 *
 * @func must return a result with g_task_return_*() before it returns (or
 * hand @task on, with a reference, to something that will).  GTask delivers
 * that result to the task's main context in a later iteration.
 *
 * If the task's cancellable is already cancelled when a worker picks the job
 * up, @func is not called and the task returns %TUSK_ERROR_QUERY_CANCELLED
 * instead; so anything @func would have had to release must be released by
 * the task data's destroy notify, which runs in any case.  Jobs start in the
 * order they were queued.  Any thread.
 */
void tusk_runtime_run_in_thread (TuskRuntime *runtime, GTask *task,
                                 GTaskThreadFunc func);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TuskRuntime, tusk_runtime_free)

G_END_DECLS
