//! The group-commit fsync pool: a fixed set of threads that make appended
//! data durable and then expose it (move the high watermark).
//!
//! A produce request touching many partitions asks for one fsync per
//! partition. Running each on a blocking task of its own let a load spread
//! over 1,000 partitions grow tokio's blocking pool to its 512-thread limit,
//! with the threads mostly queued on one another's journal commits. Here the
//! cost is bounded by [`GROUP_COMMIT_THREADS`], whatever the partition count:
//!
//! - Requests for one partition coalesce: while its fsync runs, later
//!   commits wait in one pending entry that keeps the highest offset asked
//!   for, and the next fsync covers all of them (group commit).
//! - A partition is synced by at most one thread at a time, so no thread
//!   waits on another's `flush_lock` while other partitions are dirty.
//! - Partitions are served in the order they became dirty.
//!
//! Once a commit is queued it runs to completion whether or not anyone
//! still waits for it: durability and visibility of appended data must not
//! depend on the client connection that wrote it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use sluice_log::LogError;
use tokio::sync::oneshot;

use crate::Partition;

/// Threads making partitions durable (Kafka's `num.io.threads` default).
/// Concurrent `fdatasync`s on different files share the filesystem's journal
/// commits, so a few run side by side; more only queue inside the kernel.
/// Measured at 1,000 partitions (docs/benchmarks.md): 2 to 8 threads give
/// the same throughput, 64 half of it and 512 a quarter.
pub const GROUP_COMMIT_THREADS: usize = 8;

type Outcome = Result<(), LogError>;

/// The process's pool, started on first use.
pub(crate) fn pool() -> &'static SyncPool {
    static POOL: OnceLock<SyncPool> = OnceLock::new();
    POOL.get_or_init(|| SyncPool::start(GROUP_COMMIT_THREADS))
}

/// A partition's identity while it is queued: the address of its
/// `Partition`, kept alive by the `Arc` in its pending entry or in the
/// worker syncing it.
type Key = usize;

fn key_of(partition: &Arc<Partition>) -> Key {
    Arc::as_ptr(partition) as Key
}

struct Pending {
    partition: Arc<Partition>,
    /// The highest offset any waiter needs durable.
    end_offset: i64,
    waiters: Vec<oneshot::Sender<Outcome>>,
}

#[derive(Default)]
struct Queue {
    /// Partitions with a pending entry and no sync running, oldest first.
    ready: VecDeque<Key>,
    pending: HashMap<Key, Pending>,
    /// Partitions a worker is syncing now. A pending entry for one of them
    /// becomes ready when that sync ends.
    running: std::collections::HashSet<Key>,
}

pub(crate) struct SyncPool {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    /// Threads that started; 0 only when the process could start none.
    threads: usize,
}

impl SyncPool {
    fn start(threads: usize) -> SyncPool {
        let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        for i in 0..threads {
            let shared = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("sluice-fsync-{i}"))
                .spawn(move || worker(&shared));
            if let Err(e) = spawned {
                // Fewer threads only means less parallel fsync. With none
                // at all, each commit syncs on the caller's thread.
                tracing::warn!(started = i, "group-commit pool smaller than planned: {e}");
                return SyncPool { queue, threads: i };
            }
        }
        SyncPool { queue, threads }
    }

    /// Queues `partition` to be durable up to `end_offset` and its high
    /// watermark updated; the receiver gets the outcome.
    pub(crate) fn submit(
        &self,
        partition: &Arc<Partition>,
        end_offset: i64,
    ) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        if self.threads == 0 {
            let _ = tx.send(partition.sync_and_expose(end_offset));
            return rx;
        }
        let key = key_of(partition);
        let (lock, ready) = &*self.queue;
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        match q.pending.get_mut(&key) {
            Some(entry) => {
                entry.end_offset = entry.end_offset.max(end_offset);
                entry.waiters.push(tx);
            }
            None => {
                q.pending.insert(
                    key,
                    Pending {
                        partition: Arc::clone(partition),
                        end_offset,
                        waiters: vec![tx],
                    },
                );
                if !q.running.contains(&key) {
                    q.ready.push_back(key);
                    ready.notify_one();
                }
            }
        }
        rx
    }
}

fn worker(queue: &(Mutex<Queue>, Condvar)) {
    let (lock, ready) = queue;
    loop {
        let (key, entry) = {
            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
            let key = loop {
                match q.ready.pop_front() {
                    Some(key) => break key,
                    None => q = ready.wait(q).unwrap_or_else(|p| p.into_inner()),
                }
            };
            let entry = q
                .pending
                .remove(&key)
                .expect("a ready partition has a pending entry");
            q.running.insert(key);
            (key, entry)
        };
        // A panic is a bug: reported (logged, counted) and answered as
        // this partition's storage error; the thread lives on.
        let outcome = sluice_runtime::run_blocking("partition-fsync", || {
            entry.partition.sync_and_expose(entry.end_offset)
        })
        .unwrap_or_else(|e| {
            Err(LogError::Io {
                op: "fsync task",
                path: entry.partition.log().dir().to_owned(),
                source: std::io::Error::other(e),
            })
        });
        {
            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
            q.running.remove(&key);
            if q.pending.contains_key(&key) {
                q.ready.push_back(key);
                ready.notify_one();
            }
        }
        deliver(outcome, entry.waiters);
    }
}

/// Hands every waiter the outcome. An error is not `Clone` (it carries an
/// `io::Error`): the first waiter gets it whole, the others a copy with the
/// same kind and message.
fn deliver(outcome: Outcome, waiters: Vec<oneshot::Sender<Outcome>>) {
    let mut waiters = waiters.into_iter();
    let copy = outcome.as_ref().err().map(copy_error);
    if let Some(first) = waiters.next() {
        // A waiter that went away does not need the answer.
        let _ = first.send(outcome);
    }
    for waiter in waiters {
        let _ = waiter.send(match &copy {
            None => Ok(()),
            Some(e) => Err(e()),
        });
    }
}

fn copy_error(e: &LogError) -> impl Fn() -> LogError + use<> {
    let failed_dir = match e {
        LogError::Failed { dir } => Some(dir.clone()),
        _ => None,
    };
    let (op, path, kind) = match e {
        LogError::Io { op, path, source } => (*op, path.clone(), source.kind()),
        _ => (
            "fsync",
            std::path::PathBuf::new(),
            std::io::ErrorKind::Other,
        ),
    };
    let message = match e {
        LogError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    move || match &failed_dir {
        Some(dir) => LogError::Failed { dir: dir.clone() },
        None => LogError::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(kind, message.clone()),
        },
    }
}
