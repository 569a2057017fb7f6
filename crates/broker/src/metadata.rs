//! Cluster metadata as a log of records, replayed into an in-memory image.
//!
//! Every change to topics, partitions and configs is a [`MetadataRecord`]
//! appended to the metadata log (`<data_dir>/__cluster_metadata-0`, a
//! normal [`Log`]), fsynced, and only then applied to the image. At start
//! the log is replayed from the beginning. This is the shape KRaft uses, and
//! the log a later issue replicates with Raft: the image is a pure function
//! of the records, so a follower that applies the same records gets the
//! same image.
//!
//! One admin change is one record batch, so a change is all-or-nothing: a
//! torn tail batch is truncated by log recovery and never half-applied.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_log::{Log, LogConfig, LogError};
use sluice_records::{BatchBuilder, NewRecord, RecordsError, decode_records};
use uuid::Uuid;

/// Directory of the metadata log inside the data directory.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// Largest metadata batch read at once during replay.
const REPLAY_READ_BYTES: u32 = 8 * 1024 * 1024;

/// One change to cluster metadata. The JSON form is the on-disk value of a
/// record in the metadata log; `docs/design.md` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// A topic came into being.
    Topic {
        /// Its name.
        name: String,
        /// Its stable id, for Fetch v13+ and Produce v13.
        topic_id: Uuid,
    },
    /// A partition was created or its leadership changed.
    Partition {
        /// The topic it belongs to.
        topic_id: Uuid,
        /// Its index.
        partition: i32,
        /// Broker id of the leader.
        leader: i32,
        /// Every replica's broker id.
        replicas: Vec<i32>,
        /// The in-sync replicas.
        isr: Vec<i32>,
        /// Bumped on every leadership change; stamped on appended batches.
        leader_epoch: i32,
    },
    /// A topic config was set (`Some`) or reset to its default (`None`).
    TopicConfig {
        /// The topic.
        topic_id: Uuid,
        /// Kafka's config name.
        name: String,
        /// The new value.
        value: Option<String>,
    },
    /// A topic was deleted with all its partitions.
    RemoveTopic {
        /// The topic.
        topic_id: Uuid,
    },
    /// Producer ids below this one are reserved; the next block starts here.
    ProducerIds {
        /// First id not yet reserved.
        next_producer_id: i64,
    },
}

/// A partition as the metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionImage {
    /// Broker id of the leader.
    pub leader: i32,
    /// Every replica.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Current leader epoch.
    pub leader_epoch: i32,
}

/// A topic as the metadata describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    /// Name.
    pub name: String,
    /// Stable id.
    pub topic_id: Uuid,
    /// Partitions by index; indexes are dense from 0.
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Only the configs set on the topic; the rest are broker defaults.
    pub configs: BTreeMap<String, String>,
}

/// Everything the metadata log says, at one offset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataImage {
    /// Topics by name.
    pub topics: BTreeMap<String, TopicImage>,
    /// Topic names by id.
    pub topic_names: HashMap<Uuid, String>,
    /// Offset of the next metadata record; how far this image has applied.
    pub next_offset: i64,
    /// First producer id not yet reserved by a `ProducerIds` record.
    pub next_producer_id: i64,
}

/// A record that contradicts the image it is applied to: a bug or a
/// damaged log, never user input (handlers validate before committing).
#[derive(Debug, thiserror::Error)]
#[error("metadata record at offset {offset} cannot apply: {reason}")]
pub struct ApplyError {
    offset: i64,
    reason: String,
}

impl MetadataImage {
    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// Applies one record.
    fn apply(&mut self, record: &MetadataRecord, offset: i64) -> Result<(), ApplyError> {
        let fail = |reason: String| ApplyError { offset, reason };
        match record {
            MetadataRecord::Topic { name, topic_id } => {
                if self.topics.contains_key(name) {
                    return Err(fail(format!("topic {name} already exists")));
                }
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                leader,
                replicas,
                isr,
                leader_epoch,
            } => {
                let topic = self
                    .topic_mut(topic_id)
                    .ok_or_else(|| fail(format!("no topic {topic_id}")))?;
                topic.partitions.insert(
                    *partition,
                    PartitionImage {
                        leader: *leader,
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader_epoch: *leader_epoch,
                    },
                );
            }
            MetadataRecord::TopicConfig {
                topic_id,
                name,
                value,
            } => {
                let topic = self
                    .topic_mut(topic_id)
                    .ok_or_else(|| fail(format!("no topic {topic_id}")))?;
                match value {
                    Some(v) => topic.configs.insert(name.clone(), v.clone()),
                    None => topic.configs.remove(name),
                };
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                let name = self
                    .topic_names
                    .remove(topic_id)
                    .ok_or_else(|| fail(format!("no topic {topic_id}")))?;
                self.topics.remove(&name);
            }
            MetadataRecord::ProducerIds { next_producer_id } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(fail(format!(
                        "producer id block {next_producer_id} does not advance past {}",
                        self.next_producer_id
                    )));
                }
                self.next_producer_id = *next_producer_id;
            }
        }
        Ok(())
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.topic_names.get(id)?;
        self.topics.get_mut(name)
    }
}

/// Failures of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The metadata log failed; the broker cannot change metadata.
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    /// A batch in the metadata log could not be decoded.
    #[error("metadata log batch: {0}")]
    Records(#[from] RecordsError),
    /// A record's value is not a metadata record.
    #[error("metadata record at offset {offset} is not valid: {reason}")]
    Decode {
        /// Where.
        offset: i64,
        /// Why.
        reason: String,
    },
    /// A record does not apply to the image.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Encoding a record failed (a bug).
    #[error("cannot encode metadata record: {0}")]
    Encode(String),
    /// The blocking fsync task died.
    #[error("metadata fsync task failed: {0}")]
    Join(String),
}

/// The metadata log and the image it produces.
#[derive(Debug)]
pub struct MetadataStore {
    log: Arc<Log>,
    /// The current image. Readers clone the `Arc` and never block writers for
    /// long: the lock is held only to swap or clone a pointer.
    image: RwLock<Arc<MetadataImage>>,
    /// Serializes commits so images apply in log order.
    commit_lock: tokio::sync::Mutex<()>,
}

impl MetadataStore {
    /// Opens (recovering) the metadata log under `data_dir` and replays it.
    pub fn open(data_dir: &Path) -> Result<MetadataStore, MetadataError> {
        let log = Log::open(&data_dir.join(METADATA_LOG_DIR), LogConfig::default())?;
        let mut image = MetadataImage::default();
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            let read = log.read(offset, REPLAY_READ_BYTES, end)?;
            let bytes = read.to_bytes().map_err(|source| LogError::Io {
                op: "read",
                path: log.dir().to_owned(),
                source,
            })?;
            if bytes.is_empty() {
                break;
            }
            offset = apply_batches(&mut image, &bytes)?;
        }
        image.next_offset = end;
        tracing::info!(
            topics = image.topics.len(),
            records = end,
            "metadata log replayed"
        );
        Ok(MetadataStore {
            log: Arc::new(log),
            image: RwLock::new(Arc::new(image)),
            commit_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        // A poisoned lock means a panic while swapping a pointer, which
        // cannot leave the Arc half-written; keep serving the last image.
        match self.image.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Appends `records` as one batch, waits for it to be durable, applies
    /// it, and returns the new image. `check` runs under the commit lock on
    /// the current image, so a validation and its commit cannot interleave
    /// with another change; it returns the records to write (empty = none).
    pub async fn commit<F, E>(
        &self,
        check: F,
    ) -> Result<Result<Arc<MetadataImage>, E>, MetadataError>
    where
        F: FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, E>,
    {
        let _guard = self.commit_lock.lock().await;
        let current = self.image();
        let records = match check(&current) {
            Ok(records) => records,
            Err(e) => return Ok(Err(e)),
        };
        if records.is_empty() {
            return Ok(Ok(current));
        }
        let now = now_ms();
        let mut builder = BatchBuilder::new();
        for record in &records {
            let value =
                serde_json::to_vec(record).map_err(|e| MetadataError::Encode(e.to_string()))?;
            builder.push(NewRecord {
                key: None,
                value: Some(Bytes::from(value)),
                headers: Vec::new(),
                timestamp_ms: now,
            });
        }
        let batch = builder.build()?;
        let info = self.log.append(batch, 0, now)?;
        let log = Arc::clone(&self.log);
        let end = info.last_offset + 1;
        tokio::task::spawn_blocking(move || log.sync_until(end))
            .await
            .map_err(|e| MetadataError::Join(e.to_string()))??;
        let mut next = (*current).clone();
        for (i, record) in records.iter().enumerate() {
            next.apply(record, info.base_offset + i as i64)?;
        }
        next.next_offset = end;
        let next = Arc::new(next);
        match self.image.write() {
            Ok(mut guard) => *guard = Arc::clone(&next),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&next),
        }
        Ok(Ok(next))
    }

    /// True while the metadata log refuses writes (admin changes fail).
    pub fn is_offline(&self) -> bool {
        self.log.is_offline()
    }

    /// Retries an offline metadata log (see [`Log::reopen`]). A change whose
    /// append or fsync failed was never applied to the image, and the
    /// reopen cuts it from the log, so the image stays a function of it.
    pub fn reopen_if_offline(&self) {
        if !self.log.is_offline() {
            return;
        }
        match self.log.reopen() {
            Ok(true) => tracing::info!("metadata log is back online"),
            Ok(false) => {}
            Err(e) => tracing::debug!("reopening the metadata log failed: {e}"),
        }
    }

    /// Flushes the metadata log (shutdown).
    pub fn flush(&self) -> Result<(), MetadataError> {
        Ok(self.log.flush()?)
    }
}

/// Applies every record of every batch in `bytes`; returns the next offset.
fn apply_batches(image: &mut MetadataImage, bytes: &Bytes) -> Result<i64, MetadataError> {
    let mut next = image.next_offset;
    let mut rest = bytes.clone();
    while rest.len() >= sluice_records::BATCH_HEADER_BYTES {
        let header = sluice_records::BatchHeader::parse(&rest)?;
        let size = header.total_size();
        if size > rest.len() {
            break;
        }
        let batch = rest.split_to(size);
        for record in decode_records(&batch)? {
            let offset = header.base_offset + i64::from(record.offset_delta);
            let value = record.value.unwrap_or_default();
            let parsed: MetadataRecord =
                serde_json::from_slice(&value).map_err(|e| MetadataError::Decode {
                    offset,
                    reason: e.to_string(),
                })?;
            image.apply(&parsed, offset)?;
        }
        next = header.last_offset() + 1;
        image.next_offset = next;
    }
    Ok(next)
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_records(name: &str, partitions: i32) -> Vec<MetadataRecord> {
        let topic_id = Uuid::new_v4();
        let mut records = vec![MetadataRecord::Topic {
            name: name.to_owned(),
            topic_id,
        }];
        for p in 0..partitions {
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: p,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                leader_epoch: 0,
            });
        }
        records.push(MetadataRecord::TopicConfig {
            topic_id,
            name: "retention.ms".to_owned(),
            value: Some("1000".to_owned()),
        });
        records
    }

    #[tokio::test]
    async fn committed_changes_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = {
            let store = MetadataStore::open(dir.path()).expect("open");
            store
                .commit(|_| Ok::<_, ()>(topic_records("orders", 3)))
                .await
                .expect("commit")
                .expect("check");
            let img = store
                .commit(|_| Ok::<_, ()>(topic_records("gone", 1)))
                .await
                .expect("commit")
                .expect("check");
            let gone = img.topics["gone"].topic_id;
            store
                .commit(|_| Ok::<_, ()>(vec![MetadataRecord::RemoveTopic { topic_id: gone }]))
                .await
                .expect("commit")
                .expect("check");
            store.image()
        };
        let store = MetadataStore::open(dir.path()).expect("reopen");
        let after = store.image();
        assert_eq!(after, before);
        assert_eq!(after.topics.len(), 1);
        let orders = &after.topics["orders"];
        assert_eq!(orders.partitions.len(), 3);
        assert_eq!(
            orders.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert_eq!(
            after.topic_by_id(&orders.topic_id).map(|t| t.name.as_str()),
            Some("orders")
        );
    }

    #[tokio::test]
    async fn a_rejected_check_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = MetadataStore::open(dir.path()).expect("open");
        let result = store
            .commit(|_| Err::<Vec<MetadataRecord>, _>("no"))
            .await
            .expect("io");
        assert_eq!(result.err(), Some("no"));
        assert_eq!(store.image().next_offset, 0);
    }
}
