//! Background tasks under one shutdown signal, and detached work whose
//! panics are reported.
//!
//! A panic is caught inside the task that panicked (not by whoever awaits
//! its handle), so it is reported even when nobody is waiting: a group
//! timer, or a commit whose client went away. `AssertUnwindSafe` is sound
//! here in the sense tokio's own catch is: the panicking future is dropped,
//! and shared state it held behind a mutex is recovered by its users as
//! they already do for poisoned locks.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// Why a supervised task produced no result.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The task panicked: a bug. It has been logged and counted already.
    #[error("task `{task}` panicked: {message}")]
    Panicked {
        /// The task's name.
        task: &'static str,
        /// The panic's message, when it was a string.
        message: String,
    },
    /// The runtime dropped the task before it finished (it is shutting
    /// down).
    #[error("task `{task}` did not finish")]
    Join {
        /// The task's name.
        task: &'static str,
        /// What tokio reported.
        #[source]
        source: JoinError,
    },
}

/// Some background tasks were still running when the shutdown grace ran out.
#[derive(Debug, thiserror::Error)]
#[error("{running} background task(s) still running {grace:?} after shutdown was signalled")]
pub struct ShutdownTimeout {
    /// How many had not stopped.
    pub running: usize,
    /// How long shutdown waited.
    pub grace: Duration,
}

/// The process's background tasks and the one signal that stops them.
///
/// Cloning shares the set. Handed to whatever starts background loops
/// (the binary's housekeeping, the coordinators at load), never reached
/// through a broker back-pointer.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    /// Cancelled once, at shutdown; every task spawned here races it.
    token: CancellationToken,
    /// Counts live tasks so shutdown can wait for the last one.
    tracker: TaskTracker,
}

impl Tasks {
    /// An empty set whose shutdown has not been signalled.
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// The shutdown signal, for loops that are not spawned here (accept
    /// loops, connections).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Resolves once shutdown has been signalled.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Whether shutdown has been signalled.
    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// How many tasks spawned here are still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Spawns background task `name`. It runs until it returns or shutdown
    /// is signalled, whichever comes first (it is dropped at its next
    /// `.await` then). A panic is logged with `name` and counted. Spawned
    /// after shutdown, it stops at once.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.tracker.spawn(async move {
            let run = async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    () = task => {}
                }
            };
            // The error was reported where it was caught; nobody else is
            // waiting for this task's result.
            if let Err(e) = supervised(name, run).await {
                tracing::debug!("{e}");
            }
        });
    }

    /// Spawns background task `name`, built by `make` from the shutdown
    /// signal, which it watches itself: for a loop that must not be cut
    /// off mid-step (housekeeping finishes the disk pass it is in, whose
    /// blocking work could not be cancelled anyway). It must return
    /// promptly once the token is cancelled. A panic is logged with `name`
    /// and counted.
    pub fn spawn_with_shutdown<F>(
        &self,
        name: &'static str,
        make: impl FnOnce(CancellationToken) -> F,
    ) where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = make(self.token.clone());
        self.tracker.spawn(async move {
            if let Err(e) = supervised(name, task).await {
                tracing::debug!("{e}");
            }
        });
    }

    /// Signals shutdown and waits up to `grace` for every task spawned here
    /// to stop.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), ShutdownTimeout> {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(ShutdownTimeout {
                running: self.tracker.len(),
                grace,
            }),
        }
    }
}

/// Runs `work` on a task of its own, started now, that runs to the end even
/// if the returned handle is dropped: for work that must not stop half-way
/// once begun (an fsync and high-watermark advance, a metadata change, a
/// transaction abort). Shutdown does not cancel it; it is short and bounded
/// by its own I/O. A panic is logged with `name`, counted, and returned as
/// [`TaskError::Panicked`].
pub fn spawn_detached<F>(name: &'static str, work: F) -> Detached<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Detached {
        task: name,
        handle: tokio::spawn(supervised(name, work)),
    }
}

/// Runs blocking `f` (disk work) on tokio's blocking pool. A panic is
/// logged with `name`, counted, and returned as [`TaskError::Panicked`].
pub async fn blocking<T, F>(name: &'static str, f: F) -> Result<T, TaskError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = tokio::task::spawn_blocking(move || run_blocking(name, f));
    match handle.await {
        Ok(result) => result,
        Err(source) => Err(TaskError::Join { task: name, source }),
    }
}

/// Runs blocking `f` on the calling thread (a pool of the caller's own),
/// with the same panic reporting as [`blocking`].
pub fn run_blocking<T>(name: &'static str, f: impl FnOnce() -> T) -> Result<T, TaskError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panicked(name, payload))
}

/// The outcome of [`spawn_detached`] work. Dropping it does not stop the
/// work.
pub struct Detached<T> {
    task: &'static str,
    handle: JoinHandle<Result<T, TaskError>>,
}

impl<T> std::fmt::Debug for Detached<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

impl<T> Future for Detached<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self.task;
        Pin::new(&mut self.handle)
            .poll(cx)
            .map(|joined| match joined {
                Ok(result) => result,
                Err(source) => Err(TaskError::Join { task, source }),
            })
    }
}

/// Runs `fut`, turning a panic into a reported [`TaskError::Panicked`].
async fn supervised<F: Future>(name: &'static str, fut: F) -> Result<F::Output, TaskError> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|payload| panicked(name, payload))
}

/// Logs and counts a caught panic.
fn panicked(task: &'static str, payload: Box<dyn Any + Send>) -> TaskError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    tracing::error!(task, "task panicked: {message}");
    sluice_metrics::task_panicked(task);
    TaskError::Panicked { task, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generous bound for work that takes microseconds; a failure means the
    /// task did not stop, not that the machine was slow.
    const DEADLINE: Duration = Duration::from_secs(10);

    // Metric counters are process-wide, so each test uses its own task name.

    #[tokio::test]
    async fn a_background_task_that_panics_is_reported_not_swallowed() {
        let tasks = Tasks::new();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("test-bg-panic", async move {
            let _ = started_tx.send(());
            panic!("background bug");
        });
        // Let it run to its panic before shutdown can cancel it.
        let _ = tokio::time::timeout(DEADLINE, started_rx).await;
        tasks.tracker.close();
        tokio::time::timeout(DEADLINE, tasks.tracker.wait())
            .await
            .expect("the panicking task ends");
        assert_eq!(sluice_metrics::task_panics("test-bg-panic"), 1);
        // The set is still usable and shuts down cleanly.
        tasks.shutdown(DEADLINE).await.expect("shutdown");
    }

    #[tokio::test]
    async fn a_detached_task_that_panics_returns_a_typed_error_and_is_counted() {
        let outcome = spawn_detached("test-detached-panic", async {
            if true {
                panic!("detached bug");
            }
            7
        })
        .await;
        match outcome {
            Err(TaskError::Panicked { task, message }) => {
                assert_eq!(task, "test-detached-panic");
                assert!(message.contains("detached bug"), "{message}");
            }
            other => panic!("expected a panic report, got {other:?}"),
        }
        assert_eq!(sluice_metrics::task_panics("test-detached-panic"), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_detached_task_still_reports_its_panic() {
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        // A guard dropped during the unwind tells the test the task is done.
        struct SignalOnDrop(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for SignalOnDrop {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let handle = spawn_detached("test-dropped-panic", async move {
            let _signal = SignalOnDrop(Some(done_tx));
            let _ = go_rx.await;
            panic!("nobody is waiting");
        });
        drop(handle);
        let _ = go_tx.send(());
        tokio::time::timeout(DEADLINE, done_rx)
            .await
            .expect("task ends")
            .expect("signalled");
        // The guard drops during the unwind, and catch_unwind counts the
        // panic in the same poll; on this single-threaded runtime the test
        // resumes only after that poll returned, so the count is in.
        assert_eq!(sluice_metrics::task_panics("test-dropped-panic"), 1);
    }

    #[tokio::test]
    async fn blocking_work_that_panics_returns_a_typed_error() {
        let outcome = blocking("test-blocking-panic", || -> u8 { panic!("disk bug") }).await;
        assert!(
            matches!(
                outcome,
                Err(TaskError::Panicked {
                    task: "test-blocking-panic",
                    ..
                })
            ),
            "{outcome:?}"
        );
        assert_eq!(sluice_metrics::task_panics("test-blocking-panic"), 1);
        assert_eq!(blocking("test-blocking-ok", || 5).await.expect("ok"), 5);
    }

    #[tokio::test]
    async fn background_tasks_stop_when_shutdown_is_signalled() {
        let tasks = Tasks::new();
        tasks.spawn("test-forever", std::future::pending());
        tasks.spawn("test-loop", async move {
            // A periodic loop that never ends by itself.
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert_eq!(tasks.running(), 2);
        tasks.shutdown(DEADLINE).await.expect("every task stops");
        assert_eq!(tasks.running(), 0);
        assert!(tasks.is_shutting_down());
        // A task started after shutdown does not run on.
        tasks.spawn("test-late", std::future::pending());
        tasks.shutdown(DEADLINE).await.expect("late task stops");
    }

    #[tokio::test]
    async fn a_task_watching_the_signal_itself_finishes_its_step_then_stops() {
        let tasks = Tasks::new();
        let (step_tx, step_rx) = tokio::sync::oneshot::channel::<()>();
        let (finished_tx, mut finished_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn_with_shutdown("test-graceful", |token| async move {
            // One step in progress when shutdown comes; it completes.
            let _ = step_rx.await;
            let _ = finished_tx.send(());
            token.cancelled().await;
        });
        let shutdown = tasks.shutdown(DEADLINE);
        tokio::pin!(shutdown);
        // Shutdown waits for the step rather than cutting it off.
        tokio::select! {
            biased;
            _ = &mut shutdown => panic!("shutdown finished before the step did"),
            () = tokio::task::yield_now() => {}
        }
        let _ = step_tx.send(());
        shutdown.await.expect("stops after its step");
        assert!(finished_rx.try_recv().is_ok(), "the step completed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_reports_a_task_that_does_not_stop_in_time() {
        let tasks = Tasks::new();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("test-stuck", async move {
            let _ = started_tx.send(());
            // Blocks its worker thread: cancellation cannot reach it until
            // the test releases it.
            let _ = release_rx.recv();
        });
        tokio::time::timeout(DEADLINE, started_rx)
            .await
            .expect("started")
            .expect("signalled");
        let err = tasks
            .shutdown(Duration::from_millis(20))
            .await
            .expect_err("the stuck task is reported");
        assert_eq!(err.running, 1);
        let _ = release_tx.send(());
        tasks.shutdown(DEADLINE).await.expect("stops once released");
    }
}
