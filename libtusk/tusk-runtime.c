/* tusk-runtime.c: up to n_threads worker threads running GTask bodies in
 * FIFO order.  Workers start on demand — when a job is queued and no idle
 * worker is free to take it — so a short-lived program that needs one or
 * two never pays for the rest.
 *
 * Why not GThreadPool: its queue (GAsyncQueue) and GLib's GMutex/GCond are
 * futex-based and invisible to ThreadSanitizer, which would then see every
 * hand-over of job data as a race; a pthread mutex and condition variable
 * keep the pool's own stress test meaningful under TSan.  The queue is a
 * GQueue of Job records; O(1) push and pop, which is all it needs.
 */
#define G_LOG_DOMAIN "tusk-runtime"

#include "tusk-runtime.h"

#include <pthread.h>

#include "tusk-error.h"
#include "tusk-log.h"
#include "tusk-runtime-private.h"

typedef struct
{
  GTask *task; /* owned reference; NULL for a plain job */
  GTaskThreadFunc func;
  void (*plain) (gpointer data); /* a plain job's body */
  gpointer data;
} Job;

struct TuskRuntime
{
  guint n_threads; /* the most workers there may be */

  /* lock protects the rest; wake is signalled when jobs or stopping change.
   * Nothing else is ever taken while lock is held (g_thread_new () is
   * called under it: a new worker only waits for it). */
  pthread_mutex_t lock;
  pthread_cond_t wake;
  GThread **threads; /* n_started workers, joined by tusk_runtime_free () */
  guint n_started;
  guint n_idle; /* workers waiting on wake (a woken one stops counting) */
  GQueue jobs;  /* of Job *, oldest first */
  gboolean stopping;
  guint n_urgent; /* tusk_runtime_run_urgent () threads still running */
  pthread_cond_t urgent_done; /* n_urgent went down */
};

/* The runtime whose worker the current thread is, or NULL. */
static GPrivate current_runtime;

static void
run_job (Job *job)
{
  GTask *task = job->task;

  if (task == NULL)
    {
      job->plain (job->data);
      g_free (job);
      return;
    }

  GCancellable *cancellable = g_task_get_cancellable (task);

  if (g_cancellable_is_cancelled (cancellable))
    {
      GError *error = NULL;
      tusk_set_error (&error, TUSK_ERROR_QUERY_CANCELLED, NULL,
                      "The operation was cancelled before it started");
      tusk_tsan_release (task);
      g_task_return_error (task, error);
    }
  else
    job->func (task, g_task_get_source_object (task),
               g_task_get_task_data (task), cancellable);

  g_object_unref (task);
  g_free (job);
}

static gpointer
worker_main (gpointer data)
{
  TuskRuntime *runtime = data;

  g_private_set (&current_runtime, runtime);
  for (;;)
    {
      pthread_mutex_lock (&runtime->lock);
      while (g_queue_is_empty (&runtime->jobs) && !runtime->stopping)
        {
          runtime->n_idle++;
          pthread_cond_wait (&runtime->wake, &runtime->lock);
          runtime->n_idle--;
        }
      Job *job = g_queue_pop_head (&runtime->jobs);
      pthread_mutex_unlock (&runtime->lock);

      if (job == NULL) /* stopping, and nothing left to run */
        break;
      run_job (job);
    }
  g_private_set (&current_runtime, NULL);
  return NULL;
}

TuskRuntime *
tusk_runtime_new (guint n_threads)
{
  TuskRuntime *runtime = g_new0 (TuskRuntime, 1);

  runtime->n_threads = n_threads ? n_threads : TUSK_RUNTIME_DEFAULT_THREADS;
  pthread_mutex_init (&runtime->lock, NULL);
  pthread_cond_init (&runtime->wake, NULL);
  pthread_cond_init (&runtime->urgent_done, NULL);
  g_queue_init (&runtime->jobs);
  runtime->threads = g_new0 (GThread *, runtime->n_threads);
  return runtime;
}

void
tusk_runtime_free (TuskRuntime *runtime)
{
  if (runtime == NULL)
    return;
  g_return_if_fail (g_private_get (&current_runtime) != runtime);

  pthread_mutex_lock (&runtime->lock);
  runtime->stopping = TRUE;
  pthread_cond_broadcast (&runtime->wake);
  pthread_mutex_unlock (&runtime->lock);

  /* Workers drain the queue before they see stopping with nothing left;
   * one may still start another for a follow-up job, hence the count is
   * read again each time. */
  for (guint i = 0;; i++)
    {
      pthread_mutex_lock (&runtime->lock);
      GThread *thread = i < runtime->n_started ? runtime->threads[i] : NULL;
      pthread_mutex_unlock (&runtime->lock);
      if (thread == NULL)
        break;
      g_thread_join (thread);
    }

  pthread_mutex_lock (&runtime->lock);
  while (runtime->n_urgent > 0)
    pthread_cond_wait (&runtime->urgent_done, &runtime->lock);
  pthread_mutex_unlock (&runtime->lock);

  g_assert (g_queue_is_empty (&runtime->jobs));
  g_free (runtime->threads);
  pthread_cond_destroy (&runtime->urgent_done);
  pthread_cond_destroy (&runtime->wake);
  pthread_mutex_destroy (&runtime->lock);
  g_free (runtime);
}

guint
tusk_runtime_get_n_threads (TuskRuntime *runtime)
{
  g_return_val_if_fail (runtime != NULL, 0);
  return runtime->n_threads;
}

static void
push_job (TuskRuntime *runtime, Job *job)
{
  pthread_mutex_lock (&runtime->lock);
  /* Once free has begun, only the workers themselves may queue (follow-up
   * jobs, which a worker still alive runs); from elsewhere the job might
   * find every worker gone. */
  g_warn_if_fail (!runtime->stopping
                  || g_private_get (&current_runtime) == runtime);
  g_queue_push_tail (&runtime->jobs, job);
  /* Every queued job needs a worker of its own, as with a fixed set (a job
   * may wait for one queued after it): start one when the idle ones are
   * too few. */
  if (g_queue_get_length (&runtime->jobs) > runtime->n_idle
      && runtime->n_started < runtime->n_threads)
    {
      runtime->threads[runtime->n_started]
          = g_thread_new ("tusk-worker", worker_main, runtime);
      runtime->n_started++;
    }
  pthread_mutex_unlock (&runtime->lock);
  /* After unlocking: a worker woken while the lock is still held would only
   * go back to sleep on the lock. */
  pthread_cond_signal (&runtime->wake);
}

void
tusk_runtime_run_in_thread (TuskRuntime *runtime, GTask *task,
                            GTaskThreadFunc func)
{
  g_return_if_fail (runtime != NULL);
  g_return_if_fail (G_IS_TASK (task));
  g_return_if_fail (func != NULL);

  Job *job = g_new0 (Job, 1);
  job->task = g_object_ref (task);
  job->func = func;
  push_job (runtime, job);
}

void
tusk_runtime_run_func (TuskRuntime *runtime, void (*func) (gpointer data),
                       gpointer data)
{
  g_return_if_fail (runtime != NULL);
  g_return_if_fail (func != NULL);

  Job *job = g_new0 (Job, 1);
  job->plain = func;
  job->data = data;
  push_job (runtime, job);
}

typedef struct
{
  TuskRuntime *runtime;
  void (*func) (gpointer data);
  gpointer data;
} Urgent;

static gpointer
urgent_main (gpointer data)
{
  Urgent *urgent = data;
  TuskRuntime *runtime = urgent->runtime;
  urgent->func (urgent->data);
  g_free (urgent);
  pthread_mutex_lock (&runtime->lock);
  runtime->n_urgent--;
  pthread_cond_broadcast (&runtime->urgent_done);
  pthread_mutex_unlock (&runtime->lock);
  return NULL;
}

void
tusk_runtime_run_urgent (TuskRuntime *runtime, void (*func) (gpointer data),
                         gpointer data)
{
  g_return_if_fail (runtime != NULL);
  g_return_if_fail (func != NULL);

  Urgent *urgent = g_new (Urgent, 1);
  urgent->runtime = runtime;
  urgent->func = func;
  urgent->data = data;
  pthread_mutex_lock (&runtime->lock);
  g_warn_if_fail (!runtime->stopping
                  || g_private_get (&current_runtime) == runtime);
  runtime->n_urgent++;
  pthread_mutex_unlock (&runtime->lock);

  g_autoptr (GError) error = NULL;
  GThread *thread
      = g_thread_try_new ("tusk-urgent", urgent_main, urgent, &error);
  if (thread)
    {
      g_thread_unref (thread); /* detached: free counts it instead */
      return;
    }
  tusk_warn ("Could not start a thread (%s); queueing the job instead",
             error->message);
  pthread_mutex_lock (&runtime->lock);
  runtime->n_urgent--;
  pthread_mutex_unlock (&runtime->lock);
  g_free (urgent);
  tusk_runtime_run_func (runtime, func, data);
}
