//! The schema registry's storage (issue 16, step 2): subjects, versions,
//! global ids, compatibility levels and modes, kept in the `_schemas` topic
//! in Confluent's record format and replayed from it.
//!
//! - [`format`]: the `_schemas` keys and values.
//! - [`state`]: the contents a replay yields, and the rules that check a
//!   write and turn it into records (pure, no I/O).
//! - [`RegistryError`]: Confluent's error codes.
//! - [`Registry`] (here): the `_schemas` partition underneath.
//!
//! # Consistency
//! The log is the only source of truth. A write, on the node that leads
//! `_schemas-0`, takes the one writer lock, first makes everything already
//! in the log committed under its leadership, plans against the contents up
//! to there, appends the records, waits until the ISR holds them (acks=all)
//! and applies them back from the log before it answers. So ids are
//! assigned by one writer over the whole history (never reused: a new id
//! is above every id ever applied, deleted or not), and a read after a
//! write that returned sees it (read-your-writes). Reads apply the log up
//! to the high watermark first, so they never show data a leader change
//! could take back. A node that does not lead `_schemas-0` serves reads
//! from its replica and refuses writes with 50004, naming the leader.
//!
//! The schema texts stay in memory; parsed forms are made on first use and
//! kept. Every count and size has a named bound in [`state`].

pub mod codec;
pub mod error;
pub mod format;
pub mod state;
pub mod validation;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_metadata::Controller;
use sluice_records::{BatchBuilder, Batches, NewRecord, NextBatch, decode_records};
use sluice_replica::{Partition, ReplicaManager};

pub use codec::{Decoded, SchemaChoice};
pub use error::RegistryError;
pub use format::{Key, SchemaReference};
pub use sluice_schema::SchemaType;
pub use state::{
    CompatibilityResult, Mode, NewSchema, RegisterOptions, RegisterPlan, State, StoredSchema,
    SubjectVersion, VersionSpec,
};
pub use validation::{SubjectStrategy, TopicRules};

/// The topic the registry keeps its contents in, as Confluent names it.
pub const SCHEMAS_TOPIC: &str = "_schemas";

/// The name of the endpoint a broker registers for its schema registry
/// listener, beside its Kafka listeners, so the others can forward writes
/// to the leader of `_schemas-0`. The config refuses it as a Kafka
/// listener's name, so it never appears in a Kafka client's Metadata.
pub const REGISTRY_ENDPOINT: &str = "_SCHEMA_REGISTRY";

/// Bytes read from `_schemas` per step of a replay.
const REPLAY_READ_BYTES: u32 = 4 * 1024 * 1024;

/// How long a write waits for `_schemas-0` to exist and be led here after
/// creating it.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// The registry of one node.
#[derive(Debug)]
pub struct Registry {
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    inner: Mutex<Inner>,
    /// One write at a time: a write plans against the contents and appends
    /// with nothing in between.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    /// The partition replayed, to notice a deleted and re-created topic.
    partition: Option<Arc<Partition>>,
    /// The next offset to apply.
    next_offset: i64,
}

impl Registry {
    /// A registry over `_schemas` as hosted by `replicas`; `controller`
    /// creates the topic on the first write.
    pub fn new(controller: Arc<Controller>, replicas: Arc<ReplicaManager>) -> Arc<Registry> {
        Arc::new(Registry {
            controller,
            replicas,
            inner: Mutex::new(Inner::default()),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs `read` over the contents, brought up to the high watermark
    /// first. Runs off the async threads: a catch-up reads the log and a
    /// lookup parses schemas.
    pub async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, RegistryError>
    where
        F: FnOnce(&mut State) -> Result<T, RegistryError> + Send + 'static,
        T: Send + 'static,
    {
        let this = Arc::clone(self);
        sluice_runtime::blocking("schema-registry-read", move || {
            let mut inner = this.caught_up()?;
            read(&mut inner.state)
        })
        .await
        .map_err(|e| RegistryError::Store(e.to_string()))?
    }

    /// Runs a write: `plan` checks it against the contents and returns its
    /// answer and the records that make it; they are appended, replicated
    /// and applied before this returns. Only the leader of `_schemas-0`
    /// writes.
    pub async fn write<T, F>(self: &Arc<Self>, plan: F) -> Result<T, RegistryError>
    where
        F: FnOnce(&mut State) -> Result<(T, Vec<state::Record>), RegistryError> + Send + 'static,
        T: Send + 'static,
    {
        let _writer = self.writer.lock().await;
        let partition = self.led_partition().await?;
        // What an earlier leader wrote counts once it is committed under
        // this leadership; plan on nothing less.
        partition
            .commit(partition.log().log_end_offset())
            .await
            .map_err(commit_error)?;
        let this = Arc::clone(self);
        let (answer, batch) = sluice_runtime::blocking("schema-registry-plan", move || {
            let mut inner = this.caught_up()?;
            let (answer, records) = plan(&mut inner.state)?;
            Ok::<_, RegistryError>((answer, encode(&records)?))
        })
        .await
        .map_err(|e| RegistryError::Store(e.to_string()))??;
        let Some(batch) = batch else {
            return Ok(answer);
        };
        let now = sluice_metadata::now_ms();
        let info = partition
            .append(batch, now)
            .map_err(|e| RegistryError::Store(e.to_string()))?;
        partition
            .commit(info.last_offset + 1)
            .await
            .map_err(commit_error)?;
        self.read(|_| Ok(())).await?;
        Ok(answer)
    }

    /// Checks the records of one produced batch against `topic`'s schema
    /// validation `rules` ([`validation`]); returns (index of the record in
    /// the batch, why) for each refused record, empty when all pass. Reads
    /// the registry as it stands (applied up to the high watermark) without
    /// leaving the calling thread: it runs on the produce path, and a
    /// catch-up reads only the `_schemas` records not applied yet.
    pub fn validate_records(
        &self,
        topic: &str,
        rules: TopicRules,
        records: &[sluice_records::Record],
    ) -> Vec<(i32, String)> {
        let mut inner = match self.caught_up() {
            Ok(inner) => inner,
            Err(e) => {
                let why = format!("the schema registry cannot be read: {e}");
                return records
                    .iter()
                    .enumerate()
                    .map(|(i, _)| (i32::try_from(i).unwrap_or(i32::MAX), why.clone()))
                    .collect();
            }
        };
        let mut refused = Vec::new();
        // The records of a batch nearly always carry one schema id, and
        // under TopicNameStrategy the verdict depends on the id alone:
        // check each (field, id) once per batch.
        let mut verdicts: std::collections::HashMap<(validation::Field, i32), Result<(), String>> =
            std::collections::HashMap::new();
        for (i, record) in records.iter().enumerate() {
            let checks = [
                (validation::Field::Key, rules.key, record.key.as_deref()),
                (
                    validation::Field::Value,
                    rules.value,
                    record.value.as_deref(),
                ),
            ];
            for (field, strategy, data) in checks {
                let Some(strategy) = strategy else { continue };
                let cacheable = strategy == SubjectStrategy::TopicName;
                let key = data.and_then(validation::schema_id).map(|id| (field, id));
                let verdict = match key.filter(|_| cacheable) {
                    Some(key) => verdicts
                        .entry(key)
                        .or_insert_with(|| {
                            validation::check(&mut inner.state, topic, field, strategy, data)
                        })
                        .clone(),
                    None => validation::check(&mut inner.state, topic, field, strategy, data),
                };
                if let Err(why) = verdict {
                    refused.push((i32::try_from(i).unwrap_or(i32::MAX), why));
                    break;
                }
            }
        }
        refused
    }

    /// Runs `f` over the contents as they stand, brought up to the high
    /// watermark, on the calling thread, which may read the log: call it
    /// from a blocking context. REST reads decode records with it.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, RegistryError> {
        let mut inner = self.caught_up()?;
        Ok(f(&mut inner.state))
    }

    /// The node to send every registry request to when this node hosts no
    /// replica of `_schemas-0` (a cluster with more nodes than the topic's
    /// replication factor): its leader. `None` when this node hosts a
    /// replica, when `_schemas` does not exist yet, or when it has no leader.
    pub fn leader_elsewhere(&self) -> Option<i32> {
        if self.replicas.partition(SCHEMAS_TOPIC, 0).is_some() {
            return None;
        }
        let leader = self
            .controller
            .image()
            .topics
            .get(SCHEMAS_TOPIC)?
            .partitions
            .get(&0)?
            .leader;
        (leader >= 0 && leader != self.replicas.node_id()).then_some(leader)
    }

    /// Registers `schema` under `subject` ([`State::plan_register`]): its
    /// id, and nothing written when the subject already holds it.
    pub async fn register(
        self: &Arc<Self>,
        subject: String,
        schema: NewSchema,
        options: RegisterOptions,
    ) -> Result<i32, RegistryError> {
        self.write(move |s| {
            Ok(match s.plan_register(&subject, &schema, options)? {
                RegisterPlan::Existing(id) => (id, Vec::new()),
                RegisterPlan::Write { id, records } => (id, records),
            })
        })
        .await
    }

    /// `_schemas-0`, created if missing, once this node leads it.
    async fn led_partition(&self) -> Result<Arc<Partition>, RegistryError> {
        if !self.controller.image().topics.contains_key(SCHEMAS_TOPIC) {
            self.controller
                .ensure_internal_topic(SCHEMAS_TOPIC, 1)
                .await
                .map_err(|e| {
                    RegistryError::Store(format!("cannot create {SCHEMAS_TOPIC}: {}", e.message))
                })?;
        }
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            if let Some(p) = self.replicas.partition(SCHEMAS_TOPIC, 0)
                && p.is_leader()
                && !self.replicas.leadership_suspended()
            {
                return Ok(p);
            }
            let leader = self
                .controller
                .image()
                .topics
                .get(SCHEMAS_TOPIC)
                .and_then(|t| t.partitions.get(&0))
                .map_or(-1, |p| p.leader);
            if leader >= 0 && leader != self.replicas.node_id() {
                return Err(RegistryError::NotLeader { leader });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RegistryError::Timeout(format!(
                    "{SCHEMAS_TOPIC} has no leader"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The contents, with the log applied up to the high watermark.
    fn caught_up(&self) -> Result<MutexGuard<'_, Inner>, RegistryError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| RegistryError::Store("the registry's lock is poisoned".into()))?;
        let Some(partition) = self.replicas.partition(SCHEMAS_TOPIC, 0) else {
            if self.controller.image().topics.contains_key(SCHEMAS_TOPIC) {
                return Err(RegistryError::Unavailable(format!(
                    "this node hosts no replica of {SCHEMAS_TOPIC}"
                )));
            }
            // No topic: nothing was ever registered (or it was deleted).
            *inner = Inner::default();
            return Ok(inner);
        };
        let end = partition.high_watermark();
        let replaced = !inner
            .partition
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &partition));
        if replaced
            || inner.next_offset < partition.log().log_start_offset()
            || inner.next_offset > end
        {
            *inner = Inner {
                partition: Some(Arc::clone(&partition)),
                next_offset: partition.log().log_start_offset(),
                state: State::new(),
            };
        }
        while inner.next_offset < end {
            let before = inner.next_offset;
            let read = partition
                .log()
                .read(before, REPLAY_READ_BYTES, end)
                .map_err(|e| RegistryError::Store(e.to_string()))?;
            let bytes = read
                .to_bytes()
                .map_err(|e| RegistryError::Store(e.to_string()))?;
            inner.next_offset = apply_batches(&mut inner.state, &bytes, before);
            if inner.next_offset == before {
                // A gap the read cannot cross (or a corrupt batch, already
                // logged): stop here rather than spin.
                break;
            }
        }
        Ok(inner)
    }
}

/// Applies every record of the batches in `bytes`; returns the offset after
/// the last complete batch (`from` when there is none).
fn apply_batches(state: &mut State, bytes: &Bytes, from: i64) -> i64 {
    let mut next = from;
    for item in Batches::new(bytes) {
        let NextBatch::Complete {
            position, header, ..
        } = item
        else {
            if !matches!(item, NextBatch::TruncatedTail { .. }) {
                tracing::error!(
                    offset = next,
                    "corrupt batch in {SCHEMAS_TOPIC}; the registry stops reading here"
                );
            }
            break;
        };
        next = header.next_offset();
        if header.is_control() {
            continue;
        }
        let batch = bytes.slice(position..position + header.total_size());
        let records = match decode_records(&batch) {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(
                    offset = header.base_offset,
                    "skipping unreadable {SCHEMAS_TOPIC} batch: {e}"
                );
                continue;
            }
        };
        for record in records {
            let Some(key) = record.key else { continue };
            match Key::decode(&key) {
                Ok(key) => state.apply(&key, record.value.as_deref()),
                Err(e) => tracing::warn!(
                    offset = header.base_offset,
                    "skipping {SCHEMAS_TOPIC} record: {e}"
                ),
            }
        }
    }
    next
}

/// One batch holding `records`, or `None` for none.
fn encode(records: &[state::Record]) -> Result<Option<BytesMut>, RegistryError> {
    if records.is_empty() {
        return Ok(None);
    }
    let now = sluice_metadata::now_ms();
    let mut builder = BatchBuilder::new();
    for (key, value) in records {
        builder.push(NewRecord {
            key: Some(Bytes::from(key.encode())),
            value: value.clone().map(Bytes::from),
            headers: Vec::new(),
            timestamp_ms: now,
        });
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| RegistryError::Store(e.to_string()))
}

fn commit_error(e: sluice_replica::CommitError) -> RegistryError {
    match e {
        sluice_replica::CommitError::TimedOut { .. } => RegistryError::Timeout(e.to_string()),
        sluice_replica::CommitError::NotLeader => RegistryError::Unavailable(format!(
            "leadership of {SCHEMAS_TOPIC} moved during the write; retry"
        )),
        other => RegistryError::Store(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
