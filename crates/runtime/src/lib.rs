//! How Sluice runs work off the request path: background tasks that stop
//! on one shutdown signal, detached work whose panics are reported, and the
//! backoff the Kafka and HTTP accept loops share.
//!
//! Owns task supervision only. It knows nothing about logs, partitions or
//! requests; the crates above hand it futures and names.
//!
//! - [`Tasks`]: the process's background tasks (housekeeping, group timers,
//!   offset retention, transaction expiry). One [`CancellationToken`]
//!   stops them all; [`Tasks::shutdown`] waits for them, bounded.
//! - [`spawn_detached`] and [`blocking`]: work that must finish once it has
//!   started (an fsync, a metadata change), on a task of its own so the
//!   caller going away cannot cut it short.
//! - [`AcceptBackoff`]: a growing delay after accept errors (EMFILE,
//!   ENFILE), reset by a success.
//!
//! Every task carries a name. A panic in one is a bug: it is logged at
//! error level with that name, counted in `task_panics{task=...}`, and
//! turned into [`TaskError::Panicked`] for whoever awaits the result. No
//! panic is dropped silently, whether or not anyone awaits the task.

mod backoff;
mod tasks;

pub use backoff::{ACCEPT_BACKOFF_INITIAL, ACCEPT_BACKOFF_MAX, AcceptBackoff};
pub use tasks::{
    Detached, ShutdownTimeout, TaskError, Tasks, blocking, run_blocking, spawn_detached,
};
pub use tokio_util::sync::CancellationToken;
