//! Partitions this broker hosts: each owns its [`Log`], leader epoch and
//! high watermark, and wakes fetchers when the high watermark moves.
//!
//! The [`ReplicaManager`] keeps the map from topic-partition to
//! [`Partition`] in step with the metadata image: it opens logs for new
//! partitions, deletes the logs of deleted topics, and on start removes
//! directories the metadata no longer knows (a delete interrupted by a crash).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::BytesMut;
use sluice_log::{AppendInfo, FlushPolicy, Log, LogConfig, LogError, ReadResult};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::LogDefaults;
use crate::metadata::{MetadataImage, TopicImage};
use crate::topic_config;

/// File in each partition directory naming the topic id it belongs to, so a
/// directory left over from a deleted topic of the same name is recognised.
const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Threads that open (or, at shutdown, flush) partition logs at once
/// (start-up, a large CreateTopics). Opening a new log is a few fsyncs and a clean reopen a
/// few small reads; overlapping them keeps the device queue busy, so
/// 10,000 partitions do not wait on 10,000 sequential round trips. Small,
/// because each thread is blocking work beside the async runtime.
const OPEN_THREADS: usize = 8;

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One hosted partition.
#[derive(Debug)]
pub struct Partition {
    /// Which partition this is.
    pub tp: TopicPartition,
    /// The topic's stable id.
    pub topic_id: Uuid,
    log: Arc<Log>,
    /// Leader epoch from the metadata; stamped on every appended batch.
    leader_epoch: AtomicI32,
    /// Offset below which data is visible to consumers. With group commit it
    /// is the fsynced end, so no consumer ever sees data a crash could lose;
    /// with Kafka's interval flush it is the log end, as on a single Kafka
    /// broker.
    high_watermark: AtomicI64,
    /// Woken whenever the high watermark advances (long-polling fetches).
    hw_advanced: Notify,
    /// True when appends must be fsynced before they become visible.
    group_commit: bool,
}

impl Partition {
    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// A future that resolves when the high watermark next advances. Create
    /// it (and `enable` it) before checking the condition it waits for.
    pub fn hw_advanced(&self) -> tokio::sync::futures::Notified<'_> {
        self.hw_advanced.notified()
    }

    /// Appends a producer's batches. The data is in the page cache, not yet
    /// visible to consumers; call [`Partition::commit`] next.
    pub fn append(&self, records: BytesMut, now_ms: i64) -> Result<AppendInfo, LogError> {
        let bytes = records.len();
        let info = self.log.append(records, self.leader_epoch(), now_ms)?;
        crate::metrics::appended(&self.tp.topic, bytes, info.record_count);
        Ok(info)
    }

    /// Makes everything up to `end_offset` durable (group commit) and
    /// visible. Concurrent callers share one fsync.
    pub async fn commit(self: &Arc<Self>, end_offset: i64) -> Result<(), LogError> {
        if self.group_commit {
            let started = std::time::Instant::now();
            let this = Arc::clone(self);
            tokio::task::spawn_blocking(move || this.log.sync_until(end_offset))
                .await
                .map_err(|e| LogError::Io {
                    op: "fsync task",
                    path: self.log.dir().to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })??;
            crate::metrics::fsync_observed(started.elapsed());
        }
        self.advance_high_watermark(end_offset);
        Ok(())
    }

    fn advance_high_watermark(&self, to: i64) {
        let previous = self.high_watermark.fetch_max(to, Ordering::AcqRel);
        if to > previous {
            self.hw_advanced.notify_waiters();
        }
    }

    /// Reads whole batches from `offset`, never past the high watermark.
    pub fn read(&self, offset: i64, max_bytes: u32) -> Result<ReadResult, LogError> {
        self.log.read(offset, max_bytes, self.high_watermark())
    }

    /// Moves the log start offset forward (DeleteRecords).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        self.log.advance_log_start_offset(offset)?;
        Ok(self.log.log_start_offset())
    }
}

/// The set of partitions this broker hosts.
#[derive(Debug)]
pub struct ReplicaManager {
    data_dir: PathBuf,
    defaults: LogDefaults,
    node_id: i32,
    /// Lock held only to look up or swap entries, never across I/O waits.
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Serialises [`ReplicaManager::sync_with`] and holds the metadata
    /// offset of the newest image applied. Two admin changes finishing at
    /// once must not both open (or both delete) the same partition
    /// directory, and an older image must never undo a newer one. Held
    /// across file I/O, so only on blocking threads.
    synced_to: Mutex<i64>,
}

impl ReplicaManager {
    /// Creates an empty manager; call [`ReplicaManager::sync_with`] next.
    pub fn new(data_dir: &Path, defaults: LogDefaults, node_id: i32) -> ReplicaManager {
        ReplicaManager {
            data_dir: data_dir.to_owned(),
            defaults,
            node_id,
            partitions: RwLock::new(HashMap::new()),
            synced_to: Mutex::new(-1),
        }
    }

    /// A hosted partition.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.read_map().get(tp).cloned()
    }

    /// A hosted partition by topic name and index.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.get(&TopicPartition {
            topic: topic.to_owned(),
            partition,
        })
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.read_map().values().cloned().collect()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_map(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, Arc<Partition>>> {
        self.partitions.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the hosted partitions in line with `image`: opens logs for
    /// partitions led here, updates configs and epochs, deletes the logs of
    /// topics that are gone. `startup` also removes stray directories.
    pub fn sync_with(&self, image: &MetadataImage, startup: bool) -> Result<(), LogError> {
        let mut synced_to = self.synced_to.lock().unwrap_or_else(|p| p.into_inner());
        if image.next_offset < *synced_to {
            return Ok(()); // a newer image was applied already
        }
        *synced_to = image.next_offset;
        let mut wanted = HashMap::new();
        for topic in image.topics.values() {
            for (&index, p) in &topic.partitions {
                if p.replicas.contains(&self.node_id) {
                    wanted.insert(
                        TopicPartition {
                            topic: topic.name.clone(),
                            partition: index,
                        },
                        (topic, p),
                    );
                }
            }
        }
        // Remove partitions no longer wanted (deleted topics).
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.write_map();
            let gone: Vec<TopicPartition> = map
                .keys()
                .filter(|tp| !wanted.contains_key(*tp))
                .cloned()
                .collect();
            gone.iter().filter_map(|tp| map.remove(tp)).collect()
        };
        for partition in removed {
            tracing::info!(partition = %partition.tp, "deleting partition log");
            crate::metrics::forget_partition(&partition.tp);
            let dir = self.partition_dir(&partition.tp);
            drop(partition);
            remove_dir(&dir);
        }
        // Refresh existing ones; collect new ones.
        let mut to_open = Vec::new();
        for (tp, (topic, p)) in wanted {
            let config = self.log_config(topic);
            if let Some(existing) = self.get(&tp) {
                existing.log.update_config(config);
                existing
                    .leader_epoch
                    .store(p.leader_epoch, Ordering::Release);
                continue;
            }
            to_open.push((tp, topic.topic_id, config, p.leader_epoch));
        }
        let opened = self.open_partitions(to_open);
        if startup {
            self.remove_strays();
        }
        opened
    }

    /// Opens (recovering) new partitions on up to [`OPEN_THREADS`] threads
    /// and hosts every one that opened; returns the first failure.
    fn open_partitions(
        &self,
        mut to_open: Vec<(TopicPartition, Uuid, LogConfig, i32)>,
    ) -> Result<(), LogError> {
        if to_open.is_empty() {
            return Ok(());
        }
        let threads = OPEN_THREADS.min(to_open.len());
        let per_thread = to_open.len().div_ceil(threads);
        let mut chunks = Vec::with_capacity(threads);
        while !to_open.is_empty() {
            let rest = to_open.split_off(to_open.len().saturating_sub(per_thread));
            chunks.push(rest);
        }
        let first_error = std::thread::scope(|scope| {
            let workers: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    scope.spawn(move || -> Option<LogError> {
                        for (tp, topic_id, config, epoch) in chunk {
                            match self.open_partition(&tp, topic_id, config, epoch) {
                                Ok(partition) => {
                                    self.write_map().insert(tp, Arc::new(partition));
                                }
                                Err(e) => {
                                    tracing::error!(partition = %tp, "cannot open partition log: {e}");
                                    return Some(e);
                                }
                            }
                        }
                        None
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| match w.join() {
                    Ok(result) => result,
                    Err(_) => Some(LogError::Io {
                        op: "open partition",
                        path: self.data_dir.clone(),
                        source: std::io::Error::other("partition open thread panicked"),
                    }),
                })
                .next()
        });
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn log_config(&self, topic: &TopicImage) -> LogConfig {
        topic_config::log_config(&self.defaults, &topic.configs)
    }

    fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.data_dir.join(tp.to_string())
    }

    fn open_partition(
        &self,
        tp: &TopicPartition,
        topic_id: Uuid,
        config: LogConfig,
        leader_epoch: i32,
    ) -> Result<Partition, LogError> {
        let dir = self.partition_dir(tp);
        // A directory of an older topic with the same name is not ours.
        if let Some(existing) = read_partition_topic_id(&dir)
            && existing != topic_id
        {
            tracing::warn!(partition = %tp, %existing, "removing log of a deleted topic with the same name");
            remove_dir(&dir);
        }
        let group_commit = matches!(config.flush, FlushPolicy::GroupCommit);
        let log = Log::open(&dir, config)?;
        write_partition_topic_id(&dir, topic_id)?;
        let end = log.log_end_offset();
        Ok(Partition {
            tp: tp.clone(),
            topic_id,
            log: Arc::new(log),
            leader_epoch: AtomicI32::new(leader_epoch),
            // Recovery kept only what was on disk; all of it is visible.
            high_watermark: AtomicI64::new(end),
            hw_advanced: Notify::new(),
            group_commit,
        })
    }

    fn remove_strays(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        let hosted: std::collections::HashSet<String> =
            self.read_map().keys().map(|tp| tp.to_string()).collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir || name.starts_with("__cluster_metadata") || hosted.contains(&name) {
                continue;
            }
            // Only directories that look like partitions and carry our marker.
            if read_partition_topic_id(&entry.path()).is_some() {
                tracing::info!(dir = %name, "removing partition directory the metadata does not host");
                remove_dir(&entry.path());
            }
        }
    }

    /// Flushes every log (shutdown), on up to [`OPEN_THREADS`] threads: each
    /// flush is a few fsyncs, and 10,000 of them in a row take half a minute.
    pub fn flush_all(&self) {
        let all = self.all();
        let per_thread = all.len().div_ceil(OPEN_THREADS).max(1);
        std::thread::scope(|scope| {
            for chunk in all.chunks(per_thread) {
                scope.spawn(move || {
                    for partition in chunk {
                        if let Err(e) = partition.log.flush() {
                            tracing::error!(partition = %partition.tp, "flush at shutdown failed: {e}");
                        }
                    }
                });
            }
        });
    }

    /// Applies retention and time-based rolls to every log.
    pub fn apply_retention(&self, now_ms: i64) {
        for partition in self.all() {
            match partition.log.apply_retention(now_ms) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(partition = %partition.tp, segments = n, "retention deleted segments")
                }
                Err(e) => tracing::error!(partition = %partition.tp, "retention failed: {e}"),
            }
        }
        self.flush_on_timer(now_ms);
    }

    /// Runs Kafka's `flush.ms` timer on every log.
    pub fn flush_on_timer(&self, now_ms: i64) {
        for partition in self.all() {
            if let Err(e) = partition.log.maybe_flush_on_timer(now_ms) {
                tracing::error!(partition = %partition.tp, "timed flush failed: {e}");
            }
        }
    }
}

fn read_partition_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|s| s.trim().parse().ok())
}

fn write_partition_topic_id(dir: &Path, topic_id: Uuid) -> Result<(), LogError> {
    let path = dir.join(PARTITION_METADATA_FILE);
    if read_partition_topic_id(dir) == Some(topic_id) {
        return Ok(());
    }
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| LogError::Io { op, path, source }
    };
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n"))
        .map_err(io("write", &tmp))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", dir))?;
    Ok(())
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(dir = %dir.display(), "cannot remove partition directory: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::{PartitionImage, TopicImage};

    fn image_with(topics: &[(&str, Uuid)], next_offset: i64) -> MetadataImage {
        let mut image = MetadataImage {
            next_offset,
            ..MetadataImage::default()
        };
        for (name, id) in topics {
            let mut partitions = BTreeMap::new();
            partitions.insert(
                0,
                PartitionImage {
                    leader: 1,
                    replicas: vec![1],
                    isr: vec![1],
                    leader_epoch: 0,
                },
            );
            image.topic_names.insert(*id, (*name).to_owned());
            image.topics.insert(
                (*name).to_owned(),
                TopicImage {
                    name: (*name).to_owned(),
                    topic_id: *id,
                    partitions,
                    configs: BTreeMap::new(),
                },
            );
        }
        image
    }

    #[test]
    fn an_older_image_never_undoes_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(dir.path(), LogDefaults::default(), 1);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let older = image_with(&[("a", a)], 5);
        let newer = image_with(&[("a", a), ("b", b)], 9);
        replicas.sync_with(&newer, false).expect("newer");
        // The older image finishes its sync late: it must not delete `b`.
        replicas.sync_with(&older, false).expect("older");
        assert!(
            replicas.partition("b", 0).is_some(),
            "older image deleted a newer topic"
        );
        assert!(dir.path().join("b-0").exists());
        // A newer image without `a` does delete it.
        replicas
            .sync_with(&image_with(&[("b", b)], 12), false)
            .expect("delete a");
        assert!(replicas.partition("a", 0).is_none());
        assert!(!dir.path().join("a-0").exists());
    }
}
