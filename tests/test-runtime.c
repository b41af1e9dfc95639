/* test-runtime.c: the worker runtime: where results are delivered (the
 * creating thread's thread-default context, never inside the call), how
 * many threads run at once, order, cancellation, free draining the queue,
 * and plain (GTask-less) jobs. */
#define G_LOG_DOMAIN "tusk-test"

#include "tusk-error.h"
#include "tusk-runtime-private.h"
#include "tusk-runtime.h"
#include "tusk-test.h"

#include <pthread.h>

/* ---- a gate that jobs wait at until the test opens it ------------------- */

/* pthread rather than GMutex/GCond, so that the TSan build sees them. */
typedef struct
{
  pthread_mutex_t lock;
  pthread_cond_t cond;
  gboolean open;
  guint arrived; /* jobs that reached the gate */
  guint running; /* jobs between start and end */
  guint max_running;
  GHashTable *threads; /* GThread * of every job */
  GPtrArray *order;    /* job numbers in the order they started */
} Gate;

static void
gate_init (Gate *gate)
{
  *gate = (Gate){ 0 };
  pthread_mutex_init (&gate->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init (&attr);
  pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
  pthread_cond_init (&gate->cond, &attr);
  pthread_condattr_destroy (&attr);
  gate->threads = g_hash_table_new (NULL, NULL);
  gate->order = g_ptr_array_new ();
}

static void
gate_clear (Gate *gate)
{
  g_hash_table_unref (gate->threads);
  g_ptr_array_unref (gate->order);
  pthread_cond_destroy (&gate->cond);
  pthread_mutex_destroy (&gate->lock);
}

static void
gate_open (Gate *gate)
{
  pthread_mutex_lock (&gate->lock);
  gate->open = TRUE;
  pthread_cond_broadcast (&gate->cond);
  pthread_mutex_unlock (&gate->lock);
}

/* Waits (at most 10 s) until @n jobs have arrived at the gate. */
static void
gate_wait_arrived (Gate *gate, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  struct timespec ts = { .tv_sec = deadline / G_USEC_PER_SEC,
                         .tv_nsec = (deadline % G_USEC_PER_SEC) * 1000 };
  pthread_mutex_lock (&gate->lock);
  while (gate->arrived < n)
    if (pthread_cond_timedwait (&gate->cond, &gate->lock, &ts) != 0
        && gate->arrived < n)
      g_error ("only %u of %u jobs arrived", gate->arrived, n);
  pthread_mutex_unlock (&gate->lock);
}

typedef struct
{
  Gate *gate;
  guint number;
} JobData;

static JobData *
job_data_new (Gate *gate, guint number)
{
  JobData *data = g_new0 (JobData, 1);
  data->gate = gate;
  data->number = number;
  return data;
}

/* A job: records its thread, waits at the gate, returns its thread. */
static void
gate_job (GTask *task, gpointer source, gpointer task_data,
          GCancellable *cancellable)
{
  JobData *data = task_data;
  Gate *gate = data->gate;
  (void)source;
  (void)cancellable;

  pthread_mutex_lock (&gate->lock);
  g_hash_table_add (gate->threads, g_thread_self ());
  g_ptr_array_add (gate->order, GUINT_TO_POINTER (data->number));
  gate->arrived++;
  gate->running++;
  gate->max_running = MAX (gate->max_running, gate->running);
  pthread_cond_broadcast (&gate->cond);
  while (!gate->open)
    pthread_cond_wait (&gate->cond, &gate->lock);
  gate->running--;
  pthread_mutex_unlock (&gate->lock);

  tusk_tsan_release (task);
  g_task_return_pointer (task, g_thread_self (), NULL);
}

/* ---- delivery ----------------------------------------------------------- */

typedef struct
{
  gboolean done;
  GThread *callback_thread;
  GMainContext *callback_context; /* thread-default during the callback */
  GThread *worker_thread;
  char worker_name[16];
  GError *error;
} Outcome;

static void
outcome_clear (Outcome *outcome)
{
  g_clear_error (&outcome->error);
}

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Outcome *outcome = user_data;
  (void)source;

  tusk_tsan_acquire (result);
  outcome->callback_thread = g_thread_self ();
  outcome->callback_context = g_main_context_ref_thread_default ();
  g_main_context_unref (outcome->callback_context); /* still alive */
  outcome->worker_thread
      = g_task_propagate_pointer (G_TASK (result), &outcome->error);
  outcome->done = TRUE;
}

static void
name_job (GTask *task, gpointer source, gpointer task_data,
          GCancellable *cancellable)
{
  Outcome *outcome = task_data;
  (void)source;
  (void)cancellable;

  pthread_getname_np (pthread_self (), outcome->worker_name,
                      sizeof outcome->worker_name);
  tusk_tsan_release (task);
  g_task_return_pointer (task, g_thread_self (), NULL);
}

static void
test_deliver_default (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (0);
  Outcome outcome = { 0 };

  g_assert_cmpuint (tusk_runtime_get_n_threads (runtime), ==,
                    TUSK_RUNTIME_DEFAULT_THREADS);

  g_autoptr (GTask) task = g_task_new (NULL, NULL, on_done, &outcome);
  g_task_set_task_data (task, &outcome, NULL);
  tusk_runtime_run_in_thread (runtime, task, name_job);
  /* Never from inside the call, even if the worker is quick. */
  g_assert_false (outcome.done);
  g_usleep (20000);
  g_assert_false (outcome.done);

  tusk_test_wait_for (&outcome.done, 5000);
  g_assert_no_error (outcome.error);
  g_assert_true (outcome.callback_thread == g_thread_self ());
  g_assert_true (outcome.callback_context == g_main_context_default ());
  g_assert_nonnull (outcome.worker_thread);
  g_assert_true (outcome.worker_thread != g_thread_self ());
  g_assert_cmpstr (outcome.worker_name, ==, "tusk-worker");
  outcome_clear (&outcome);
}

/* A context pushed as thread-default gets the result; the global default
 * context never sees it. */
static void
test_deliver_pushed_context (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (2);
  g_autoptr (GMainContext) context = g_main_context_new ();
  Outcome outcome = { 0 };

  g_main_context_push_thread_default (context);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, on_done, &outcome);
  g_task_set_task_data (task, &outcome, NULL);
  tusk_runtime_run_in_thread (runtime, task, name_job);
  g_main_context_pop_thread_default (context);

  /* The global default context: nothing arrives there. */
  gint64 until = g_get_monotonic_time () + 100000;
  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_false (outcome.done);

  g_main_context_push_thread_default (context);
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (!outcome.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  g_assert_true (outcome.done);
  g_assert_no_error (outcome.error);
  g_assert_true (outcome.callback_context == context);
  g_assert_true (outcome.callback_thread == g_thread_self ());
  outcome_clear (&outcome);
}

typedef struct
{
  TuskRuntime *runtime;
  Outcome outcome;
  GThread *self;
} OtherThread;

/* A thread of its own with its own context, like a second front end. */
static gpointer
other_thread_main (gpointer data)
{
  OtherThread *other = data;
  g_autoptr (GMainContext) context = g_main_context_new ();

  other->self = g_thread_self ();
  g_main_context_push_thread_default (context);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, on_done, &other->outcome);
  g_task_set_task_data (task, &other->outcome, NULL);
  tusk_runtime_run_in_thread (other->runtime, task, name_job);
  g_assert_false (other->outcome.done);
  while (!other->outcome.done)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  g_assert_true (other->outcome.callback_context == context);
  return NULL;
}

static void
test_deliver_other_thread (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (2);
  OtherThread other = { .runtime = runtime };

  GThread *thread = g_thread_new ("other", other_thread_main, &other);
  g_thread_join (thread);
  g_assert_no_error (other.outcome.error);
  g_assert_true (other.outcome.callback_thread == other.self);
  outcome_clear (&other.outcome);
}

/* ---- threads, order ----------------------------------------------------- */

typedef struct
{
  guint done;
  guint failed;
} Counter;

static void
on_counted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Counter *counter = user_data;
  g_autoptr (GError) error = NULL;
  (void)source;

  tusk_tsan_acquire (result);
  g_task_propagate_pointer (G_TASK (result), &error);
  if (error)
    counter->failed++;
  counter->done++;
}

static void
wait_count (Counter *counter, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (counter->done < n)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("only %u of %u callbacks arrived", counter->done, n);
      g_main_context_iteration (NULL, TRUE);
    }
}

/* N workers run N jobs at once, never more, on N distinct threads. */
static void
test_threads (void)
{
  const guint n = 3;
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (n);
  Gate gate;
  Counter counter = { 0 };

  gate_init (&gate);
  for (guint i = 0; i < 2 * n; i++)
    {
      g_autoptr (GTask) task = g_task_new (NULL, NULL, on_counted, &counter);
      g_task_set_task_data (task, job_data_new (&gate, i), g_free);
      tusk_runtime_run_in_thread (runtime, task, gate_job);
    }
  gate_wait_arrived (&gate, n); /* all n blocked at the gate at once */
  g_usleep (50000);
  pthread_mutex_lock (&gate.lock);
  g_assert_cmpuint (gate.arrived, ==, n); /* the other n are queued */
  g_assert_cmpuint (gate.running, ==, n);
  pthread_mutex_unlock (&gate.lock);

  gate_open (&gate);
  wait_count (&counter, 2 * n);
  g_assert_cmpuint (counter.failed, ==, 0);
  g_assert_cmpuint (gate.max_running, ==, n);
  g_assert_cmpuint (g_hash_table_size (gate.threads), ==, n);
  g_assert_false (g_hash_table_contains (gate.threads, g_thread_self ()));
  gate_clear (&gate);
}

/* One worker runs jobs in the order they were queued. */
static void
test_fifo (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (1);
  Gate gate;
  Counter counter = { 0 };
  const guint n = 20;

  gate_init (&gate);
  gate_open (&gate);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GTask) task = g_task_new (NULL, NULL, on_counted, &counter);
      g_task_set_task_data (task, job_data_new (&gate, i), g_free);
      tusk_runtime_run_in_thread (runtime, task, gate_job);
    }
  wait_count (&counter, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (GPOINTER_TO_UINT (gate.order->pdata[i]), ==, i);
  gate_clear (&gate);
}

/* ---- plain jobs ---------------------------------------------------------- */

typedef struct
{
  Gate *gate;
  guint number;
  GThread *thread; /* where it ran */
  gboolean ran;
} PlainData;

static void
plain_job (gpointer data)
{
  PlainData *plain = data;
  Gate *gate = plain->gate;

  pthread_mutex_lock (&gate->lock);
  plain->thread = g_thread_self ();
  plain->ran = TRUE;
  g_ptr_array_add (gate->order, GUINT_TO_POINTER (plain->number));
  gate->arrived++;
  pthread_cond_broadcast (&gate->cond);
  while (!gate->open)
    pthread_cond_wait (&gate->cond, &gate->lock);
  pthread_mutex_unlock (&gate->lock);
}

/* Plain jobs run on a worker, never inside the call, in one FIFO with the
 * GTask jobs; free runs those still queued. */
static void
test_plain_jobs (void)
{
  TuskRuntime *runtime = tusk_runtime_new (1);
  Gate gate;
  Counter counter = { 0 };
  PlainData plain[4] = { 0 };

  gate_init (&gate);
  for (guint i = 0; i < 4; i++)
    {
      plain[i].gate = &gate;
      plain[i].number = 2 * i;
      tusk_runtime_run_func (runtime, plain_job, &plain[i]);
      g_autoptr (GTask) task = g_task_new (NULL, NULL, on_counted, &counter);
      g_task_set_task_data (task, job_data_new (&gate, 2 * i + 1), g_free);
      tusk_runtime_run_in_thread (runtime, task, gate_job);
    }
  gate_wait_arrived (&gate, 1);
  pthread_mutex_lock (&gate.lock);
  g_assert_true (plain[0].ran);
  g_assert_false (plain[1].ran);
  g_assert_true (plain[0].thread != g_thread_self ());
  pthread_mutex_unlock (&gate.lock);

  gate_open (&gate);
  tusk_runtime_free (runtime); /* runs the rest first */
  for (guint i = 0; i < 4; i++)
    {
      g_assert_true (plain[i].ran);
      g_assert_true (plain[i].thread == plain[0].thread);
    }
  g_assert_cmpuint (gate.order->len, ==, 8);
  for (guint i = 0; i < 8; i++)
    g_assert_cmpuint (GPOINTER_TO_UINT (gate.order->pdata[i]), ==, i);
  wait_count (&counter, 4);
  gate_clear (&gate);
}

/* ---- urgent jobs ----------------------------------------------------- */

static void
urgent_open (gpointer data)
{
  Gate *gate = data;
  g_usleep (50 * 1000); /* free must wait for this */
  gate_open (gate);
}

/* An urgent job runs at once beside workers that are all busy, even when
 * they wait for it (a queued job would never run), and free waits for it
 * to return. */
static void
test_urgent (void)
{
  TuskRuntime *runtime = tusk_runtime_new (1);
  Gate gate;
  gate_init (&gate);
  PlainData plain = { .gate = &gate };
  tusk_runtime_run_func (runtime, plain_job, &plain);
  gate_wait_arrived (&gate, 1); /* the only worker now waits for the gate */
  tusk_runtime_run_urgent (runtime, urgent_open, &gate);
  tusk_runtime_free (runtime);
  pthread_mutex_lock (&gate.lock);
  g_assert_true (gate.open);
  pthread_mutex_unlock (&gate.lock);
  gate_clear (&gate);

  /* Free also waits for an urgent job that nothing else waits for. */
  runtime = tusk_runtime_new (1);
  gate_init (&gate);
  tusk_runtime_run_urgent (runtime, urgent_open, &gate);
  tusk_runtime_free (runtime);
  pthread_mutex_lock (&gate.lock);
  g_assert_true (gate.open);
  pthread_mutex_unlock (&gate.lock);
  gate_clear (&gate);
}

/* ---- cancellation ------------------------------------------------------- */

static gboolean job_ran;

static void
must_not_run (GTask *task, gpointer source, gpointer task_data,
              GCancellable *cancellable)
{
  (void)task;
  (void)source;
  (void)task_data;
  (void)cancellable;
  job_ran = TRUE;
  g_task_return_pointer (task, NULL, NULL);
}

static void
on_freed (gpointer data)
{
  *(gboolean *)data = TRUE;
}

/* A job cancelled while queued is skipped with a cancelled error; its task
 * data is still freed. */
static void
test_cancel_queued (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (1);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Gate gate;
  Counter counter = { 0 };
  Outcome outcome = { 0 };
  gboolean freed = FALSE;

  gate_init (&gate);
  g_autoptr (GTask) blocker = g_task_new (NULL, NULL, on_counted, &counter);
  g_task_set_task_data (blocker, job_data_new (&gate, 0), g_free);
  tusk_runtime_run_in_thread (runtime, blocker, gate_job);
  gate_wait_arrived (&gate, 1);

  GTask *task = g_task_new (NULL, cancellable, on_done, &outcome);
  g_task_set_check_cancellable (task, FALSE); /* see the runtime's error */
  g_task_set_task_data (task, &freed, on_freed);
  job_ran = FALSE;
  tusk_runtime_run_in_thread (runtime, task, must_not_run);
  g_object_unref (task);
  g_cancellable_cancel (cancellable);
  gate_open (&gate);

  tusk_test_wait_for (&outcome.done, 5000);
  wait_count (&counter, 1);
  g_assert_false (job_ran);
  tusk_assert_error (outcome.error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_true (outcome.callback_thread == g_thread_self ());
  /* The task (and its data) go once GTask has delivered. */
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (!freed && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  g_assert_true (freed);
  outcome_clear (&outcome);
  gate_clear (&gate);
}

/* A running job that watches its cancellable stops when it is cancelled. */
static void
watching_job (GTask *task, gpointer source, gpointer task_data,
              GCancellable *cancellable)
{
  (void)source;
  (void)task_data;

  GPollFD fd;
  g_assert_true (g_cancellable_make_pollfd (cancellable, &fd));
  g_poll (&fd, 1, 10000);
  g_cancellable_release_fd (cancellable);

  GError *error = NULL;
  if (g_cancellable_is_cancelled (cancellable))
    tusk_set_error (&error, TUSK_ERROR_QUERY_CANCELLED, NULL, "stopped");
  else
    tusk_set_error (&error, TUSK_ERROR_INTERNAL, NULL, "never cancelled");
  tusk_tsan_release (task);
  g_task_return_error (task, error);
}

static gboolean
cancel_later (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_cancel_running (void)
{
  g_autoptr (TuskRuntime) runtime = tusk_runtime_new (1);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Outcome outcome = { 0 };

  g_autoptr (GTask) task = g_task_new (NULL, cancellable, on_done, &outcome);
  g_task_set_check_cancellable (task, FALSE);
  tusk_runtime_run_in_thread (runtime, task, watching_job);
  g_timeout_add (50, cancel_later, cancellable);
  gint64 start = g_get_monotonic_time ();
  tusk_test_wait_for (&outcome.done, 5000);
  tusk_assert_error (outcome.error, TUSK_ERROR_QUERY_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  outcome_clear (&outcome);
}

/* ---- free --------------------------------------------------------------- */

/* free runs what is queued, waits for it, and the results still arrive. */
static void
test_free_drains (void)
{
  TuskRuntime *runtime = tusk_runtime_new (2);
  Gate gate;
  Counter counter = { 0 };
  const guint n = 8;

  gate_init (&gate);
  gate_open (&gate);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GTask) task = g_task_new (NULL, NULL, on_counted, &counter);
      g_task_set_task_data (task, job_data_new (&gate, i), g_free);
      tusk_runtime_run_in_thread (runtime, task, gate_job);
    }
  tusk_runtime_free (runtime);
  g_assert_cmpuint (gate.arrived, ==, n);
  g_assert_cmpuint (counter.done, ==, 0); /* delivered later, on the loop */
  wait_count (&counter, n);
  g_assert_cmpuint (counter.failed, ==, 0);
  gate_clear (&gate);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tusk/runtime/deliver/default", test_deliver_default);
  g_test_add_func ("/tusk/runtime/deliver/pushed-context",
                   test_deliver_pushed_context);
  g_test_add_func ("/tusk/runtime/deliver/other-thread",
                   test_deliver_other_thread);
  g_test_add_func ("/tusk/runtime/threads", test_threads);
  g_test_add_func ("/tusk/runtime/fifo", test_fifo);
  g_test_add_func ("/tusk/runtime/plain-jobs", test_plain_jobs);
  g_test_add_func ("/tusk/runtime/urgent", test_urgent);
  g_test_add_func ("/tusk/runtime/cancel/queued", test_cancel_queued);
  g_test_add_func ("/tusk/runtime/cancel/running", test_cancel_running);
  g_test_add_func ("/tusk/runtime/free-drains", test_free_drains);
  return g_test_run ();
}
