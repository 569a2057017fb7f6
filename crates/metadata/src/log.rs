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
//! A change is all-or-nothing. A small one is one record batch, and a torn
//! tail batch is truncated by log recovery. A change too large for one batch
//! (a 10,000-partition topic) spans several batches between a begin and an
//! end marker ([`crate::codec`]); replay applies it only when it
//! reads the end marker, and a change a crash cut short is discarded and
//! closed with an abort marker when the store opens.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use sluice_log::{Log, LogConfig, LogError};
use sluice_records::{BatchBuilder, NewRecord, decode_records};

use crate::codec::{self as metadata_codec, CodecError, Decoded};
use crate::delta::MetadataDelta;
use crate::error::{ApiError, MetadataError};
use crate::image::{MetadataImage, MetadataRecord};
use crate::now_ms;

/// Directory of the metadata log inside the data directory.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// Largest metadata batch read at once during replay.
const REPLAY_READ_BYTES: u32 = 8 * 1024 * 1024;

/// Encoded record values per metadata batch, in bytes. Half the log's
/// `max.message.bytes` (1 MiB), so record framing can never push a batch
/// over the limit the log enforces on append.
const MAX_BATCH_VALUE_BYTES: usize = 512 * 1024;

/// Records per metadata batch. Bounds the work (and the allocation) of
/// decoding one batch; 4,096 compact partition records are about 200 KB.
const MAX_RECORDS_PER_BATCH: usize = 4096;

/// One change to write: given the current image, the records to commit
/// (none = nothing to do) or the error refusing the change. It runs under
/// the log's commit lock, so a check and its commit cannot interleave with
/// another change.
pub type Change<'a> =
    Box<dyn FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, ApiError> + Send + 'a>;

/// What [`MetadataLog::commit`] returns: the outer error is the log
/// failing, the inner one the change refused.
pub type CommitFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Result<Committed, ApiError>, MetadataError>> + Send + 'a>>;

/// A committed change: the image it produced and what it did.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The image after the change.
    pub image: Arc<MetadataImage>,
    /// The topics it touched.
    pub delta: MetadataDelta,
    /// The log already handed the change to its subscribers (a quorum
    /// publishes every applied entry on every node); the controller must
    /// not publish it again.
    pub published: bool,
}

/// The seam between the controller and where metadata records are kept.
/// Today's implementation is [`LocalMetadataLog`], one fsynced log on this
/// node; the cluster's is a Raft log replicated by the metadata quorum,
/// where `commit` returns once a majority has the change.
pub trait MetadataLog: Send + Sync + std::fmt::Debug {
    /// The current image.
    fn image(&self) -> Arc<MetadataImage>;

    /// Validates and commits one change, all or nothing, and applies it to
    /// the image. The outer error is the log failing; the inner one is the
    /// change refused.
    fn commit<'a>(&'a self, change: Change<'a>) -> CommitFuture<'a>;

    /// True while the log refuses writes (admin changes fail).
    fn is_offline(&self) -> bool;

    /// Retries an offline log. Blocking.
    fn reopen_if_offline(&self);

    /// Makes every committed change durable (shutdown).
    fn flush(&self) -> Result<(), MetadataError>;

    /// The node that is the active controller (the quorum's leader), if
    /// one is known. `None` from a log with no quorum: this node is the
    /// whole cluster and its own controller.
    fn controller_id(&self) -> Option<i32> {
        None
    }

    /// Adds a listener that follows every change this log applies. A log
    /// that applies only its own commits (the local log) leaves publishing
    /// to the controller and ignores this; a quorum member, which also
    /// applies changes other nodes committed, publishes each one itself.
    fn subscribe(&self, listener: Arc<dyn crate::delta::MetadataListener>) {
        let _ = listener;
    }
}

impl MetadataLog for LocalMetadataLog {
    fn image(&self) -> Arc<MetadataImage> {
        LocalMetadataLog::image(self)
    }

    fn commit<'a>(&'a self, change: Change<'a>) -> CommitFuture<'a> {
        Box::pin(LocalMetadataLog::commit(self, change))
    }

    fn is_offline(&self) -> bool {
        LocalMetadataLog::is_offline(self)
    }

    fn reopen_if_offline(&self) {
        LocalMetadataLog::reopen_if_offline(self);
    }

    fn flush(&self) -> Result<(), MetadataError> {
        LocalMetadataLog::flush(self)
    }
}

/// The metadata log on this node's disk and the image it produces.
#[derive(Debug)]
pub struct LocalMetadataLog {
    log: Arc<Log>,
    /// The current image. Readers clone the `Arc` and never block writers for
    /// long: the lock is held only to swap or clone a pointer.
    image: RwLock<Arc<MetadataImage>>,
    /// Serializes commits so images apply in log order.
    commit_lock: tokio::sync::Mutex<()>,
}

impl LocalMetadataLog {
    /// Opens (recovering) the metadata log under `data_dir` and replays it.
    ///
    /// A multi-batch change that a crash cut short (a begin marker without
    /// its end) is discarded, and an abort marker is appended and fsynced
    /// before any new change can be written after it.
    pub fn open(data_dir: &Path) -> Result<LocalMetadataLog, MetadataError> {
        LocalMetadataLog::open_with_encryption(data_dir, None)
    }

    /// [`LocalMetadataLog::open`] with encryption at rest: records are
    /// written in envelopes with the keyring's active key (see
    /// `docs/design.md`, "Encryption at rest").
    pub fn open_with_encryption(
        data_dir: &Path,
        encryption: Option<std::sync::Arc<sluice_log::Keyring>>,
    ) -> Result<LocalMetadataLog, MetadataError> {
        let config = LogConfig {
            encryption,
            ..LogConfig::default()
        };
        let log = Log::open(&data_dir.join(METADATA_LOG_DIR), config)?;
        let mut replay = Replay::default();
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
            offset = replay.apply_batches(&bytes)?;
        }
        let mut image = replay.image;
        if let Some(pending) = replay.pending {
            tracing::warn!(
                begin_offset = pending.begin_offset,
                records = pending.records.len(),
                expected = pending.expected,
                "discarding a metadata change that a crash cut short"
            );
            let batch = build_batch(&[metadata_codec::encode_abort()], now_ms())?;
            log.append(batch, 0, now_ms())?;
            log.flush()?;
        }
        image.next_offset = log.log_end_offset();
        tracing::info!(
            topics = image.topics.len(),
            records = image.next_offset,
            "metadata log replayed"
        );
        Ok(LocalMetadataLog {
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

    /// Appends `records` as one change, waits for it to be durable, applies
    /// it, and returns the new image. `check` runs under the commit lock on
    /// the current image, so a validation and its commit cannot interleave
    /// with another change; it returns the records to write (empty = none).
    ///
    /// A change that fits one batch is written as one batch; a larger one as
    /// several between begin and end markers (see the module docs).
    pub async fn commit<F, E>(&self, check: F) -> Result<Result<Committed, E>, MetadataError>
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
            return Ok(Ok(Committed {
                image: current,
                delta: MetadataDelta::default(),
                published: false,
            }));
        }
        let now = now_ms();
        // Encode and build every batch before writing any, so an encoding
        // error cannot leave a change half-written.
        let chunks = plan_batches(&records)?;
        let mut batches = Vec::with_capacity(chunks.len());
        for chunk in &chunks {
            batches.push(build_batch(chunk, now)?);
        }
        let mut base_offsets = Vec::with_capacity(batches.len());
        let mut end = 0;
        for (i, batch) in batches.into_iter().enumerate() {
            match self.log.append(batch, 0, now) {
                Ok(info) => {
                    base_offsets.push(info.base_offset);
                    end = info.last_offset + 1;
                }
                Err(e) => {
                    if i > 0 {
                        // Close the half-written change so later records are
                        // never read as part of it. If this fails too the log
                        // is offline, and the next open writes the marker.
                        self.abort_partial_change(now);
                    }
                    return Err(e.into());
                }
            }
        }
        let log = Arc::clone(&self.log);
        sluice_runtime::blocking("metadata-fsync", move || log.sync_until(end)).await??;
        let mut next = (*current).clone();
        let multi = chunks.len() > 1;
        let mut record_offsets = Vec::with_capacity(records.len());
        for (chunk, base) in chunks.iter().zip(&base_offsets) {
            record_offsets.extend((0..chunk.len() as i64).map(|i| base + i));
        }
        // With markers, the first and last offsets are the begin and end.
        let record_offsets = if multi {
            &record_offsets[1..record_offsets.len() - 1]
        } else {
            &record_offsets[..]
        };
        for (record, &offset) in records.iter().zip(record_offsets) {
            next.apply(record, offset)?;
        }
        next.next_offset = end;
        let delta = MetadataDelta::of(&current, &records, &next);
        let next = Arc::new(next);
        match self.image.write() {
            Ok(mut guard) => *guard = Arc::clone(&next),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&next),
        }
        Ok(Ok(Committed {
            image: next,
            delta,
            published: false,
        }))
    }

    /// True while the metadata log refuses writes (admin changes fail).
    pub fn is_offline(&self) -> bool {
        self.log.is_offline()
    }

    /// Retries an offline metadata log (see [`Log::reopen`]). A change whose
    /// append or fsync failed was never applied to the image, and the
    /// reopen cuts it from the log, so the image stays a function of it.
    ///
    /// Blocking: call it from a blocking thread. It holds the commit lock,
    /// so no change is written between the reopen and the abort marker.
    pub fn reopen_if_offline(&self) {
        if !self.log.is_offline() {
            return;
        }
        let _guard = self.commit_lock.blocking_lock();
        match self.log.reopen() {
            Ok(true) => {
                // The reopen cut the log back to its last fsync, which can
                // fall inside a multi-batch change (begin marker without its
                // end). An abort marker closes such a change, and is a no-op
                // otherwise, so the next change is never read as part of it.
                let now = now_ms();
                let closed =
                    build_batch(&[metadata_codec::encode_abort()], now).and_then(|batch| {
                        let info = self.log.append(batch, 0, now)?;
                        Ok(self.log.sync_until(info.last_offset + 1)?)
                    });
                match closed {
                    Ok(()) => tracing::info!("metadata log is back online"),
                    Err(e) => tracing::warn!("metadata log reopened, but closing it failed: {e}"),
                }
            }
            Ok(false) => {}
            Err(e) => tracing::debug!("reopening the metadata log failed: {e}"),
        }
    }

    fn abort_partial_change(&self, now: i64) {
        let result = build_batch(&[metadata_codec::encode_abort()], now)
            .and_then(|batch| Ok(self.log.append(batch, 0, now)?));
        if let Err(e) = result {
            tracing::error!("cannot abort a half-written metadata change: {e}");
        }
    }

    /// Flushes the metadata log (shutdown).
    pub fn flush(&self) -> Result<(), MetadataError> {
        Ok(self.log.flush()?)
    }
}

/// Encodes `records` and cuts them into batches of at most
/// [`MAX_RECORDS_PER_BATCH`] values and [`MAX_BATCH_VALUE_BYTES`] bytes. More
/// than one batch gets a begin marker first and an end marker last.
fn plan_batches(records: &[MetadataRecord]) -> Result<Vec<Vec<Vec<u8>>>, MetadataError> {
    let mut values = Vec::with_capacity(records.len() + 2);
    for record in records {
        values.push(metadata_codec::encode(record)?);
    }
    let total: usize = values.iter().map(Vec::len).sum();
    if values.len() <= MAX_RECORDS_PER_BATCH && total <= MAX_BATCH_VALUE_BYTES {
        return Ok(vec![values]);
    }
    let count = u32::try_from(values.len()).map_err(|_| CodecError::TooLong("change"))?;
    values.insert(0, metadata_codec::encode_begin(count));
    values.push(metadata_codec::encode_end());
    let mut chunks = Vec::new();
    let mut chunk: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for value in values {
        if value.len() > MAX_BATCH_VALUE_BYTES {
            return Err(CodecError::TooLong("record").into());
        }
        if chunk.len() == MAX_RECORDS_PER_BATCH || bytes + value.len() > MAX_BATCH_VALUE_BYTES {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += value.len();
        chunk.push(value);
    }
    chunks.push(chunk);
    Ok(chunks)
}

fn build_batch(values: &[Vec<u8>], now: i64) -> Result<BytesMut, MetadataError> {
    let mut builder = BatchBuilder::new();
    for value in values {
        builder.push(NewRecord {
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Vec::new(),
            timestamp_ms: now,
        });
    }
    Ok(builder.build()?)
}

/// A multi-batch change read up to now, waiting for its end marker.
#[derive(Debug)]
struct PendingChange {
    begin_offset: i64,
    expected: u32,
    records: Vec<(i64, MetadataRecord)>,
}

/// Replay state: the image so far and any change still open.
#[derive(Debug, Default)]
struct Replay {
    image: MetadataImage,
    pending: Option<PendingChange>,
}

impl Replay {
    /// Applies every record of every whole batch in `bytes`; returns the next offset.
    fn apply_batches(&mut self, bytes: &Bytes) -> Result<i64, MetadataError> {
        let mut next = self.image.next_offset;
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
                let decoded = metadata_codec::decode(&value)
                    .map_err(|source| MetadataError::Decode { offset, source })?;
                self.apply(decoded, offset)?;
            }
            next = header.last_offset() + 1;
            self.image.next_offset = next;
        }
        Ok(next)
    }

    fn apply(&mut self, decoded: Decoded, offset: i64) -> Result<(), MetadataError> {
        let bad = |reason: String| MetadataError::BadChange { offset, reason };
        match (decoded, &mut self.pending) {
            (Decoded::Begin { records }, pending) => {
                if let Some(open) = pending {
                    // The writer aborts a change before starting another;
                    // reaching here means a damaged log.
                    return Err(bad(format!(
                        "begin marker inside the change begun at offset {}",
                        open.begin_offset
                    )));
                }
                self.pending = Some(PendingChange {
                    begin_offset: offset,
                    expected: records,
                    records: Vec::new(),
                });
            }
            (Decoded::End, pending) => {
                let Some(change) = pending.take() else {
                    return Err(bad("end marker without a begin marker".into()));
                };
                if change.records.len() != change.expected as usize {
                    return Err(bad(format!(
                        "change begun at offset {} holds {} records, its begin marker says {}",
                        change.begin_offset,
                        change.records.len(),
                        change.expected
                    )));
                }
                for (offset, record) in &change.records {
                    self.image.apply(record, *offset)?;
                }
            }
            (Decoded::Abort, pending) => {
                if let Some(change) = pending.take() {
                    tracing::info!(
                        begin_offset = change.begin_offset,
                        "skipping a metadata change that was aborted"
                    );
                }
            }
            (Decoded::Record(record), Some(change)) => {
                if change.records.len() >= change.expected as usize {
                    return Err(bad(format!(
                        "change begun at offset {} has more records than its begin marker says",
                        change.begin_offset
                    )));
                }
                change.records.push((offset, record));
            }
            (Decoded::Record(record), None) => self.image.apply(&record, offset)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
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
            let store = LocalMetadataLog::open(dir.path()).expect("open");
            store
                .commit(|_| Ok::<_, ()>(topic_records("orders", 3)))
                .await
                .expect("commit")
                .expect("check");
            let img = store
                .commit(|_| Ok::<_, ()>(topic_records("gone", 1)))
                .await
                .expect("commit")
                .expect("check")
                .image;
            let gone = img.topics["gone"].topic_id;
            store
                .commit(|_| Ok::<_, ()>(vec![MetadataRecord::RemoveTopic { topic_id: gone }]))
                .await
                .expect("commit")
                .expect("check");
            store.image()
        };
        let store = LocalMetadataLog::open(dir.path()).expect("reopen");
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

    /// Byte positions where each whole batch of the metadata log's first segment ends.
    fn batch_ends(dir: &Path) -> Vec<u64> {
        let bytes = std::fs::read(dir.join(METADATA_LOG_DIR).join("00000000000000000000.log"))
            .expect("read segment");
        let mut ends = Vec::new();
        let mut pos = 0usize;
        while pos + sluice_records::BATCH_HEADER_BYTES <= bytes.len() {
            let header = sluice_records::BatchHeader::parse(&bytes[pos..]).expect("header");
            pos += header.total_size();
            ends.push(pos as u64);
        }
        ends
    }

    #[tokio::test]
    async fn a_change_larger_than_one_batch_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = {
            let store = LocalMetadataLog::open(dir.path()).expect("open");
            store
                .commit(|_| Ok::<_, ()>(topic_records("wide", 10_000)))
                .await
                .expect("commit")
                .expect("check")
                .image
        };
        assert_eq!(before.topics["wide"].partitions.len(), 10_000);
        assert!(
            batch_ends(dir.path()).len() > 1,
            "a 10,000-partition change must span several batches"
        );
        let store = LocalMetadataLog::open(dir.path()).expect("reopen");
        assert_eq!(store.image(), before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopen_that_ends_inside_a_change_closes_it_before_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LocalMetadataLog::open(dir.path()).expect("open"));
        // What a failed multi-batch commit can leave behind a reopen: its
        // begin marker and first records fsynced, the rest cut away.
        let now = now_ms();
        let chunks = plan_batches(&topic_records("half", 10_000)).expect("plan");
        assert!(chunks.len() > 2, "the change must span batches");
        for chunk in &chunks[..2] {
            let batch = build_batch(chunk, now).expect("batch");
            let info = store.log.append(batch, 0, now).expect("append");
            store.log.sync_until(info.last_offset + 1).expect("fsync");
        }
        store.log.inject_write_failure();
        let third = build_batch(&chunks[2], now).expect("batch");
        assert!(
            store.log.append(third, 0, now).is_err(),
            "the write must fail"
        );
        assert!(store.is_offline());
        let s = Arc::clone(&store);
        tokio::task::spawn_blocking(move || s.reopen_if_offline())
            .await
            .expect("reopen");
        assert!(!store.is_offline());
        store
            .commit(|_| Ok::<_, ()>(topic_records("later", 1)))
            .await
            .expect("commit")
            .expect("check");
        drop(store);
        let store = LocalMetadataLog::open(dir.path()).expect("replay");
        let image = store.image();
        assert!(!image.topics.contains_key("half"), "half a change applied");
        assert!(
            image.topics.contains_key("later"),
            "a change written after the reopen was read as part of the cut one"
        );
    }

    #[tokio::test]
    async fn a_change_cut_short_by_a_crash_is_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small_end = {
            let store = LocalMetadataLog::open(dir.path()).expect("open");
            store
                .commit(|_| Ok::<_, ()>(topic_records("small", 2)))
                .await
                .expect("commit")
                .expect("check");
            let small_end = batch_ends(dir.path());
            store
                .commit(|_| Ok::<_, ()>(topic_records("wide", 10_000)))
                .await
                .expect("commit")
                .expect("check");
            small_end
        };
        // A crash after the first two batches of the wide change reached the
        // disk, before the rest did and before any recovery point was saved.
        let ends = batch_ends(dir.path());
        assert!(ends.len() >= small_end.len() + 3, "{ends:?}");
        let cut = ends[small_end.len() + 1];
        let meta = dir.path().join(METADATA_LOG_DIR);
        match std::fs::remove_file(meta.join("recovery-point-offset-checkpoint")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("rm recovery point: {e}"),
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(meta.join("00000000000000000000.log"))
            .and_then(|f| f.set_len(cut))
            .expect("cut");

        let image = {
            let store = LocalMetadataLog::open(dir.path()).expect("reopen after the cut");
            let image = store.image();
            assert!(!image.topics.contains_key("wide"), "half a change applied");
            assert_eq!(image.topics["small"].partitions.len(), 2);
            // Changes written after the discarded one apply normally.
            store
                .commit(|_| Ok::<_, ()>(topic_records("later", 1)))
                .await
                .expect("commit")
                .expect("check")
                .image
        };
        assert!(image.topics.contains_key("later"));
        let store = LocalMetadataLog::open(dir.path()).expect("reopen again");
        assert_eq!(store.image(), image);
    }

    #[tokio::test]
    async fn json_records_written_by_older_brokers_still_load() {
        // Written by the JSON encoder that brokers used before the binary
        // format (commit 5bdd04c): topics `orders` (3 partitions) and `gone`,
        // configs set and reset, `gone` removed, a producer id block, and a
        // leader epoch bump of orders-1.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/metadata-json-v0/00000000000000000000.log");
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = dir.path().join(METADATA_LOG_DIR);
        std::fs::create_dir_all(&meta).expect("mkdir");
        std::fs::copy(&fixture, meta.join("00000000000000000000.log")).expect("copy fixture");

        let check = |image: &MetadataImage| {
            assert_eq!(
                image.topics.len() - usize::from(image.topics.contains_key("new")),
                1
            );
            let orders = &image.topics["orders"];
            assert_eq!(
                orders.topic_id,
                Uuid::parse_str("6f1c1d2e-0000-4000-8000-000000000001").expect("uuid")
            );
            assert_eq!(orders.partitions.len(), 3);
            assert_eq!(orders.partitions[&1].leader_epoch, 3);
            assert_eq!(orders.partitions[&0].replicas, vec![1]);
            let configs: Vec<(&str, &str)> = orders
                .configs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(configs, vec![("cleanup.policy", "compact")]);
            assert_eq!(image.next_producer_id, 1000);
        };
        {
            let store = LocalMetadataLog::open(dir.path()).expect("open old data");
            check(&store.image());
            // New changes are written in the binary format after the JSON ones.
            store
                .commit(|_| Ok::<_, ()>(topic_records("new", 2)))
                .await
                .expect("commit")
                .expect("check");
        }
        let store = LocalMetadataLog::open(dir.path()).expect("reopen mixed");
        let image = store.image();
        check(&image);
        assert_eq!(image.topics["new"].partitions.len(), 2);
    }

    #[tokio::test]
    async fn a_rejected_check_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalMetadataLog::open(dir.path()).expect("open");
        let result = store
            .commit(|_| Err::<Vec<MetadataRecord>, _>("no"))
            .await
            .expect("io");
        assert_eq!(result.err(), Some("no"));
        assert_eq!(store.image().next_offset, 0);
    }
}
