//! [`Consumer`]: fetch from assigned partitions, seek by offset or
//! timestamp, and (with a group id) classic group membership with commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchResponse, FetchTopic, ForgottenTopic,
};
use sluice_protocol::messages::heartbeat::HeartbeatRequest;
use sluice_protocol::messages::join_group::{JoinGroupRequest, JoinGroupRequestProtocol};
use sluice_protocol::messages::leave_group::{LeaveGroupRequest, MemberIdentity};
use sluice_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupRequestAssignment};
use sluice_records::{Batches, Header, NextBatch, TimestampType, decode_records};

use crate::admin::{
    EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, commit_offsets, fetch_committed, find_coordinator,
    list_offsets,
};
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::group;

/// MEMBER_ID_REQUIRED: JoinGroup v4+ asks the member to rejoin with the id it got.
const MEMBER_ID_REQUIRED: i16 = 79;
/// Error codes meaning "this membership is over, join again".
const REJOIN_CODES: [i16; 3] = [22, 25, 27];

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The log start offset.
    Earliest,
    /// The log end offset (only new records).
    Latest,
    /// An exact offset.
    At(i64),
    /// The first record with timestamp >= ms since the epoch (end if none).
    Timestamp(i64),
    /// The group's committed offset, else the reset policy.
    Committed,
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Consumer group id, for subscribe and commits.
    pub group_id: Option<String>,
    /// Where to start when there is no valid position (`auto.offset.reset`).
    pub auto_offset_reset: Offset,
    /// Longest time a fetch waits for `min_bytes` (`fetch.max.wait.ms`).
    pub max_wait: Duration,
    /// Bytes a fetch waits for (`fetch.min.bytes`).
    pub min_bytes: i32,
    /// Cap on one fetch response (`fetch.max.bytes`).
    pub max_bytes: i32,
    /// Cap per partition (`max.partition.fetch.bytes`).
    pub partition_max_bytes: i32,
    /// Group session timeout.
    pub session_timeout: Duration,
    /// Group rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// Notified when the group starts a rebalance and this member must
    /// rejoin (its next [`Consumer::poll`] does), so an owner that polls
    /// rarely can poll at once instead of being dropped from the group.
    pub rejoin_signal: Option<Arc<tokio::sync::Notify>>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            auto_offset_reset: Offset::Latest,
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(3),
            rejoin_signal: None,
        }
    }
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in ms.
    pub timestamp_ms: i64,
    /// Whether the timestamp is CreateTime or LogAppendTime.
    pub timestamp_type: TimestampType,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}

#[derive(Debug)]
struct Membership {
    group_id: String,
    member_id: String,
    generation_id: i32,
    topics: Vec<String>,
    rejoin: Arc<AtomicBool>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

/// A consumer. Not shared between tasks: `poll` takes `&mut self`.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    /// Next offset to fetch, per assigned partition.
    positions: BTreeMap<(String, i32), i64>,
    /// Last high watermark seen, per partition.
    high_watermarks: HashMap<(String, i32), i64>,
    membership: Option<Membership>,
    /// The incremental fetch session (KIP-227) with each broker, by id.
    sessions: HashMap<i32, FetchSession>,
}

impl Consumer {
    /// A consumer with no assignment.
    pub fn new(client: Client, config: ConsumerConfig) -> Consumer {
        Consumer {
            client,
            config,
            positions: BTreeMap::new(),
            high_watermarks: HashMap::new(),
            membership: None,
            sessions: HashMap::new(),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Assigns partitions manually, each starting at its own offset.
    pub async fn assign(&mut self, partitions: &[(String, i32, Offset)]) -> Result<()> {
        self.positions.clear();
        for (topic, partition, _) in partitions {
            // Validates existence and warms the leader cache.
            self.client.leader(topic, *partition).await?;
        }
        let offsets = self.resolve(partitions).await?;
        for ((topic, partition, _), offset) in partitions.iter().zip(offsets) {
            self.positions.insert((topic.clone(), *partition), offset);
        }
        Ok(())
    }

    /// Adds `partitions` at their start points to a manual assignment,
    /// keeping the positions of the partitions already assigned.
    pub async fn extend_assignment(&mut self, partitions: &[(String, i32, Offset)]) -> Result<()> {
        for (topic, partition, _) in partitions {
            self.client.leader(topic, *partition).await?;
        }
        let offsets = self.resolve(partitions).await?;
        for ((topic, partition, _), offset) in partitions.iter().zip(offsets) {
            self.positions
                .entry((topic.clone(), *partition))
                .or_insert(offset);
        }
        Ok(())
    }

    /// Assigns every partition of `topic` at `offset`.
    pub async fn assign_topic(&mut self, topic: &str, offset: Offset) -> Result<()> {
        let info = self.client.topic(topic).await?;
        let parts: Vec<_> = info
            .partitions
            .iter()
            .map(|p| (topic.to_owned(), p.partition, offset))
            .collect();
        self.assign(&parts).await
    }

    /// Moves one assigned partition to `offset`.
    pub async fn seek(&mut self, topic: &str, partition: i32, offset: Offset) -> Result<()> {
        let key = (topic.to_owned(), partition);
        if !self.positions.contains_key(&key) {
            return Err(ClientError::Invalid {
                what: "seek",
                reason: format!("{topic}-{partition} is not assigned"),
            });
        }
        let resolved = self
            .resolve(&[(topic.to_owned(), partition, offset)])
            .await?;
        if let Some(o) = resolved.first() {
            self.positions.insert(key, *o);
        }
        Ok(())
    }

    /// Current positions (next offset to read) of assigned partitions.
    pub fn positions(&self) -> &BTreeMap<(String, i32), i64> {
        &self.positions
    }

    /// The high watermark last seen for a partition.
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.high_watermarks
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// Turns requested start points into offsets.
    async fn resolve(&self, partitions: &[(String, i32, Offset)]) -> Result<Vec<i64>> {
        let mut out = vec![0i64; partitions.len()];
        let mut committed = BTreeMap::new();
        if partitions.iter().any(|(_, _, o)| *o == Offset::Committed) {
            let group_id = self
                .config
                .group_id
                .as_deref()
                .ok_or(ClientError::Invalid {
                    what: "offset",
                    reason: "committed offsets need a group id".to_owned(),
                })?;
            let keys: Vec<_> = partitions.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
            committed = fetch_committed(&self.client, group_id, Some(&keys)).await?;
        }
        let mut queries = Vec::new();
        let mut query_index = Vec::new();
        for (i, (topic, partition, offset)) in partitions.iter().enumerate() {
            let mut offset = *offset;
            if offset == Offset::Committed {
                offset = match committed.get(&(topic.clone(), *partition)) {
                    Some(o) => Offset::At(*o),
                    None => self.config.auto_offset_reset,
                };
            }
            let ts = match offset {
                Offset::At(o) if o >= 0 => {
                    out[i] = o;
                    continue;
                }
                Offset::At(_) | Offset::Earliest => EARLIEST_TIMESTAMP,
                Offset::Latest | Offset::Committed => LATEST_TIMESTAMP,
                Offset::Timestamp(ts) => ts,
            };
            queries.push((topic.clone(), *partition, ts));
            query_index.push(i);
        }
        if !queries.is_empty() {
            let found = list_offsets(&self.client, &queries).await?;
            let mut need_end = Vec::new();
            for (qi, offset) in found.into_iter().enumerate() {
                if offset < 0 {
                    // A timestamp after the last record: start at the end.
                    need_end.push(qi);
                } else {
                    out[query_index[qi]] = offset;
                }
            }
            if !need_end.is_empty() {
                let q: Vec<_> = need_end
                    .iter()
                    .map(|&qi| (queries[qi].0.clone(), queries[qi].1, LATEST_TIMESTAMP))
                    .collect();
                let ends = list_offsets(&self.client, &q).await?;
                for (k, &qi) in need_end.iter().enumerate() {
                    out[query_index[qi]] = ends[k];
                }
            }
        }
        Ok(out)
    }

    /// Joins the configured group and subscribes to `topics`; partitions are
    /// assigned by the group (range assignor).
    pub async fn subscribe(&mut self, topics: &[String]) -> Result<()> {
        let group_id = self.config.group_id.clone().ok_or(ClientError::Invalid {
            what: "subscribe",
            reason: "a group id is required".to_owned(),
        })?;
        for t in topics {
            self.client.topic(t).await?;
        }
        self.membership = Some(Membership {
            group_id,
            member_id: String::new(),
            generation_id: -1,
            topics: topics.to_vec(),
            rejoin: Arc::new(AtomicBool::new(true)),
            heartbeat: None,
        });
        self.join().await
    }

    /// Changes a subscribed member's topics: the member keeps its id and
    /// rejoins on the next [`Consumer::poll`], so the group rebalances over
    /// the new list (Kafka's consumer does the same when a pattern
    /// subscription matches a new topic).
    pub async fn update_subscription(&mut self, topics: &[String]) -> Result<()> {
        for t in topics {
            self.client.topic(t).await?;
        }
        let m = self.membership.as_mut().ok_or(ClientError::Invalid {
            what: "update_subscription",
            reason: "not subscribed".to_owned(),
        })?;
        m.topics = topics.to_vec();
        m.rejoin.store(true, Ordering::Release);
        Ok(())
    }

    /// True when the group asked this member to rejoin; the next
    /// [`Consumer::poll`] rejoins before fetching.
    pub fn needs_rejoin(&self) -> bool {
        self.membership
            .as_ref()
            .is_some_and(|m| m.rejoin.load(Ordering::Acquire))
    }

    /// The group generation and member id, when subscribed.
    pub fn membership(&self) -> Option<(i32, &str)> {
        self.membership
            .as_ref()
            .map(|m| (m.generation_id, m.member_id.as_str()))
    }

    async fn join(&mut self) -> Result<()> {
        let Some(m) = self.membership.as_mut() else {
            return Ok(());
        };
        if let Some(h) = m.heartbeat.take() {
            h.abort();
        }
        let coordinator = find_coordinator(&self.client, &m.group_id).await?;
        let subscription = group::encode_subscription(&m.topics);
        let mut request = JoinGroupRequest {
            group_id: m.group_id.clone(),
            session_timeout_ms: self.config.session_timeout.as_millis() as i32,
            rebalance_timeout_ms: self.config.rebalance_timeout.as_millis() as i32,
            member_id: m.member_id.clone(),
            protocol_type: group::CONSUMER_PROTOCOL_TYPE.to_owned(),
            protocols: vec![JoinGroupRequestProtocol {
                name: group::RANGE_ASSIGNOR.to_owned(),
                metadata: subscription,
                ..Default::default()
            }],
            ..Default::default()
        };
        // JoinGroup blocks until the rebalance completes, so it may take up
        // to the rebalance timeout.
        let join_timeout = self.config.rebalance_timeout + Duration::from_secs(5);
        let version = coordinator.pick_version(sluice_protocol::ApiKey::JoinGroup, 0, 7)?;
        let joined = loop {
            let resp = coordinator
                .send_at_with_timeout(&request, version, join_timeout)
                .await?;
            if resp.error_code == MEMBER_ID_REQUIRED {
                request.member_id = resp.member_id.clone();
                continue;
            }
            if resp.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("join group '{}'", m.group_id),
                    resp.error_code,
                    None,
                ));
            }
            break resp;
        };
        m.member_id = joined.member_id.clone();
        m.generation_id = joined.generation_id;
        let assignments = if joined.leader == joined.member_id {
            let mut subscriptions = BTreeMap::new();
            let mut all_topics = Vec::new();
            for member in &joined.members {
                let topics = group::decode_subscription(member.metadata.clone())?;
                all_topics.extend(topics.iter().cloned());
                subscriptions.insert(member.member_id.clone(), topics);
            }
            all_topics.sort();
            all_topics.dedup();
            let md = self.client.refresh_metadata(Some(&all_topics)).await?;
            let counts: BTreeMap<String, i32> = all_topics
                .iter()
                .filter_map(|t| {
                    md.topics
                        .get(t)
                        .map(|i| (t.clone(), i.partitions.len() as i32))
                })
                .collect();
            group::range_assign(&subscriptions, &counts)
                .into_iter()
                .map(|(member_id, a)| SyncGroupRequestAssignment {
                    member_id,
                    assignment: group::encode_assignment(&a),
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest {
            group_id: m.group_id.clone(),
            generation_id: m.generation_id,
            member_id: m.member_id.clone(),
            protocol_type: Some(group::CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: joined.protocol_name.clone(),
            assignments,
            ..Default::default()
        };
        let sync_version = coordinator.pick_version(sluice_protocol::ApiKey::SyncGroup, 0, 5)?;
        let synced = coordinator
            .send_at_with_timeout(&sync, sync_version, join_timeout)
            .await?;
        if synced.error_code != 0 {
            return Err(ClientError::kafka(
                format!("sync group '{}'", m.group_id),
                synced.error_code,
                None,
            ));
        }
        let assigned = group::decode_assignment(synced.assignment)?;
        m.rejoin.store(false, Ordering::Release);
        m.heartbeat = Some(tokio::spawn(heartbeat_loop(
            self.client.clone(),
            m.group_id.clone(),
            m.member_id.clone(),
            m.generation_id,
            self.config.heartbeat_interval,
            m.rejoin.clone(),
            self.config.rejoin_signal.clone(),
        )));
        tracing::debug!(generation = m.generation_id, member = %m.member_id, ?assigned, "joined group");
        let parts: Vec<_> = assigned
            .into_iter()
            .map(|(t, p)| (t, p, Offset::Committed))
            .collect();
        self.assign(&parts).await
    }

    /// Fetches once from every assigned partition's leader and returns the
    /// records (possibly none after `max_wait`).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        if let Some(m) = &self.membership
            && m.rejoin.load(Ordering::Acquire)
        {
            self.join().await?;
        }
        if self.positions.is_empty() {
            tokio::time::sleep(self.config.max_wait).await;
            return Ok(Vec::new());
        }
        let mut by_leader: BTreeMap<i32, Vec<(String, i32, i64)>> = BTreeMap::new();
        for ((topic, partition), offset) in &self.positions {
            match self.client.leader(topic, *partition).await {
                Ok(leader) => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((topic.clone(), *partition, *offset))
                }
                Err(e) if e.is_retriable() => {
                    let _ = self.client.refresh_metadata(None).await;
                }
                Err(e) => return Err(e),
            }
        }
        let fetches = by_leader.into_iter().map(|(leader, parts)| {
            let client = self.client.clone();
            let config = self.config.clone();
            let mut session = self.sessions.remove(&leader).unwrap_or_default();
            async move {
                let result = fetch_from(&client, &config, leader, &parts, &mut session).await;
                (leader, session, result)
            }
        });
        let results = futures::future::join_all(fetches).await;
        let mut records = Vec::new();
        let mut refresh = false;
        let mut reset = Vec::new();
        for (leader, session, result) in results {
            self.sessions.insert(leader, session);
            let response = match result {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    tracing::debug!("fetch failed, will retry: {e}");
                    refresh = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for t in response.responses {
                for p in t.partitions {
                    let key = (t.topic.clone(), p.partition_index);
                    let Some(position) = self.positions.get(&key).copied() else {
                        continue;
                    };
                    match p.error_code {
                        0 => {}
                        1 => {
                            reset.push(key);
                            continue;
                        }
                        code => {
                            let err = ClientError::kafka(
                                format!("fetch {}-{}", key.0, key.1),
                                code,
                                None,
                            );
                            if err.is_retriable() {
                                refresh = true;
                                continue;
                            }
                            return Err(err);
                        }
                    }
                    self.high_watermarks.insert(key.clone(), p.high_watermark);
                    // Decoded records are in memory: this clones a handle.
                    let bytes = p.records.to_bytes().map_err(|source| ClientError::Io {
                        addr: format!("the leader of {}-{}", key.0, key.1),
                        source,
                    })?;
                    let next = decode_partition(&key.0, key.1, position, &bytes, &mut records)?;
                    self.positions.insert(key, next);
                }
            }
        }
        if refresh {
            let _ = self.client.refresh_metadata(None).await;
        }
        for (topic, partition) in reset {
            let o = self
                .resolve(&[(topic.clone(), partition, self.config.auto_offset_reset)])
                .await?;
            if let Some(o) = o.first() {
                tracing::debug!(%topic, partition, offset = o, "offset out of range; reset");
                self.positions.insert((topic, partition), *o);
            }
        }
        Ok(records)
    }

    /// Commits the current positions for the group.
    pub async fn commit(&mut self) -> Result<()> {
        let group_id = self.config.group_id.clone().ok_or(ClientError::Invalid {
            what: "commit",
            reason: "a group id is required".to_owned(),
        })?;
        let (generation, member) = match &self.membership {
            Some(m) => (m.generation_id, m.member_id.clone()),
            None => (-1, String::new()),
        };
        commit_offsets(
            &self.client,
            &group_id,
            generation,
            &member,
            &self.positions,
        )
        .await
    }

    /// Commits specific offsets (next offset to read) for the group.
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<(String, i32), i64>) -> Result<()> {
        let group_id = self.config.group_id.clone().ok_or(ClientError::Invalid {
            what: "commit",
            reason: "a group id is required".to_owned(),
        })?;
        let (generation, member) = match &self.membership {
            Some(m) => (m.generation_id, m.member_id.clone()),
            None => (-1, String::new()),
        };
        commit_offsets(&self.client, &group_id, generation, &member, offsets).await
    }

    /// Leaves the group (if any). Does not commit.
    pub async fn close(mut self) -> Result<()> {
        let Some(mut m) = self.membership.take() else {
            return Ok(());
        };
        if let Some(h) = m.heartbeat.take() {
            h.abort();
        }
        if m.member_id.is_empty() {
            return Ok(());
        }
        let conn = find_coordinator(&self.client, &m.group_id).await?;
        let request = LeaveGroupRequest {
            group_id: m.group_id.clone(),
            member_id: m.member_id.clone(),
            members: vec![MemberIdentity {
                member_id: m.member_id.clone(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (resp, _) = conn.send(&request, 0, 4).await?;
        if resp.error_code != 0 && !REJOIN_CODES.contains(&resp.error_code) {
            return Err(ClientError::kafka(
                format!("leave group '{}'", m.group_id),
                resp.error_code,
                None,
            ));
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if let Some(m) = &mut self.membership
            && let Some(h) = m.heartbeat.take()
        {
            h.abort();
        }
    }
}

/// This consumer's incremental fetch session with one broker (KIP-227):
/// after a full fetch opens it, each fetch lists only the partitions whose
/// position moved, and the broker answers only partitions with news. The
/// broker may refuse a session (id 0) or drop it (an error); the next fetch
/// is then full again.
#[derive(Debug, Default)]
struct FetchSession {
    /// 0 until the broker opens one.
    id: i32,
    /// The epoch of the next fetch: 0 for a full one.
    epoch: i32,
    /// Each partition's fetch offset as the session holds it.
    positions: HashMap<(String, i32), i64>,
}

/// Fetch sessions begin at this version.
const MIN_SESSION_VERSION: i16 = 7;

/// A partition to fetch and the offset to fetch it from.
type FetchPosition = (String, i32, i64);

impl FetchSession {
    /// The partitions to list and to forget for a fetch of `parts`.
    fn delta(&self, parts: &[FetchPosition]) -> (Vec<FetchPosition>, Vec<(String, i32)>) {
        if self.epoch == 0 {
            return (parts.to_vec(), Vec::new());
        }
        let send = parts
            .iter()
            .filter(|(t, p, offset)| self.positions.get(&(t.clone(), *p)) != Some(offset))
            .cloned()
            .collect();
        let wanted: std::collections::HashSet<(&str, i32)> =
            parts.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
        let forget = self
            .positions
            .keys()
            .filter(|(t, p)| !wanted.contains(&(t.as_str(), *p)))
            .cloned()
            .collect();
        (send, forget)
    }

    /// Takes in the broker's answer to a fetch of `parts`.
    fn answered(&mut self, parts: &[FetchPosition], response: &FetchResponse) {
        if response.error_code != 0 {
            // Unknown to the broker or out of step: the next fetch is full
            // and names this id, so the broker closes what is left of it.
            self.epoch = 0;
            self.positions.clear();
            return;
        }
        if response.session_id == 0 {
            // Refused or closed by the broker.
            *self = FetchSession::default();
            return;
        }
        self.epoch = if self.epoch == i32::MAX {
            1
        } else {
            self.epoch + 1
        };
        self.id = response.session_id;
        self.positions = parts
            .iter()
            .map(|(t, p, o)| ((t.clone(), *p), *o))
            .collect();
    }
}

async fn fetch_from(
    client: &Client,
    config: &ConsumerConfig,
    leader: i32,
    parts: &[(String, i32, i64)],
    session: &mut FetchSession,
) -> Result<FetchResponse> {
    let conn = client.broker(leader).await?;
    let version = conn.pick_version(sluice_protocol::ApiKey::Fetch, 4, 12)?;
    let sessions = version >= MIN_SESSION_VERSION;
    let (send, forget) = if sessions {
        session.delta(parts)
    } else {
        (parts.to_vec(), Vec::new())
    };
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (topic, partition, offset) in &send {
        topics
            .entry(topic.as_str())
            .or_default()
            .push(FetchPartition {
                partition: *partition,
                fetch_offset: *offset,
                partition_max_bytes: config.partition_max_bytes,
                ..Default::default()
            });
    }
    let mut forgotten: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &forget {
        forgotten
            .entry(topic.as_str())
            .or_default()
            .push(*partition);
    }
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: config.max_wait.as_millis() as i32,
        min_bytes: config.min_bytes,
        max_bytes: config.max_bytes,
        isolation_level: 0,
        session_id: if sessions { session.id } else { 0 },
        session_epoch: if sessions { session.epoch } else { -1 },
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| FetchTopic {
                topic: topic.to_owned(),
                partitions,
                ..Default::default()
            })
            .collect(),
        forgotten_topics_data: forgotten
            .into_iter()
            .map(|(topic, partitions)| ForgottenTopic {
                topic: topic.to_owned(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let timeout = client.config().conn.request_timeout + config.max_wait;
    match conn.send_at_with_timeout(&request, version, timeout).await {
        Ok(response) => {
            if sessions {
                session.answered(parts, &response);
            }
            Ok(response)
        }
        Err(e) => {
            // Whether the broker moved the epoch is unknown: the next fetch
            // is full, naming the old id so the broker closes it.
            session.epoch = 0;
            session.positions.clear();
            Err(e)
        }
    }
}

/// Decodes one partition's record batches, appending records at or after
/// `position`; returns the next position.
fn decode_partition(
    topic: &str,
    partition: i32,
    position: i64,
    records: &Bytes,
    out: &mut Vec<ConsumerRecord>,
) -> Result<i64> {
    let mut next = position;
    for item in Batches::new(records) {
        let (start, header, len) = match item {
            NextBatch::Complete {
                position: start,
                header,
                bytes,
            } => (start, header, bytes.len()),
            // A partial batch at the end is normal: max bytes cut it.
            NextBatch::TruncatedTail { .. } => break,
            NextBatch::Corrupt { error, .. } => return Err(ClientError::Records(error)),
        };
        if header.next_offset() <= next {
            continue;
        }
        if !header.is_control() {
            let batch = records.slice(start..start + len);
            let timestamp_type = header.timestamp_type();
            for r in decode_records(&batch)? {
                let offset = header.base_offset + i64::from(r.offset_delta);
                if offset < next {
                    continue;
                }
                let timestamp_ms = match timestamp_type {
                    TimestampType::LogAppendTime => header.max_timestamp,
                    _ => header.base_timestamp + r.timestamp_delta,
                };
                out.push(ConsumerRecord {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    timestamp_ms,
                    timestamp_type,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
        }
        next = header.next_offset();
    }
    Ok(next)
}

async fn heartbeat_loop(
    client: Client,
    group_id: String,
    member_id: String,
    generation_id: i32,
    interval: Duration,
    rejoin: Arc<AtomicBool>,
    signal: Option<Arc<tokio::sync::Notify>>,
) {
    let request = HeartbeatRequest {
        group_id: group_id.clone(),
        generation_id,
        member_id,
        ..Default::default()
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let result = async {
            let conn = find_coordinator(&client, &group_id).await?;
            let (resp, _) = conn.send(&request, 0, 4).await?;
            Ok::<_, ClientError>(resp.error_code)
        }
        .await;
        match result {
            Ok(0) => {}
            Ok(code) if REJOIN_CODES.contains(&code) => {
                rejoin.store(true, Ordering::Release);
                if let Some(signal) = signal {
                    signal.notify_one();
                }
                return;
            }
            Ok(code) => tracing::debug!(code, "heartbeat error"),
            Err(e) => tracing::debug!("heartbeat failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, i32, i64)]) -> Vec<(String, i32, i64)> {
        list.iter()
            .map(|(t, p, o)| ((*t).to_owned(), *p, *o))
            .collect()
    }

    fn answer(session_id: i32, error_code: i16) -> FetchResponse {
        FetchResponse {
            session_id,
            error_code,
            ..Default::default()
        }
    }

    #[test]
    fn a_session_lists_only_moved_partitions_and_forgets_dropped_ones() {
        let mut s = FetchSession::default();
        let first = parts(&[("a", 0, 0), ("a", 1, 5), ("b", 0, 7)]);
        assert_eq!(
            s.delta(&first),
            (first.clone(), vec![]),
            "the first fetch is full"
        );
        s.answered(&first, &answer(42, 0));
        assert_eq!((s.id, s.epoch), (42, 1));

        let next = parts(&[("a", 0, 3), ("a", 1, 5)]);
        let (send, forget) = s.delta(&next);
        assert_eq!(send, parts(&[("a", 0, 3)]));
        assert_eq!(forget, vec![("b".to_owned(), 0)]);
        s.answered(&next, &answer(42, 0));
        assert_eq!(s.epoch, 2);
        assert_eq!(s.delta(&next), (vec![], vec![]));
    }

    #[test]
    fn a_refused_or_failed_session_goes_back_to_full_fetches() {
        let all = parts(&[("a", 0, 0)]);
        let mut s = FetchSession::default();
        s.answered(&all, &answer(0, 0));
        assert_eq!((s.id, s.epoch), (0, 0), "no session offered");

        s.answered(&all, &answer(9, 0));
        s.answered(&all, &answer(0, 71));
        // Out of step: full again, naming the old id so the broker closes it.
        assert_eq!((s.id, s.epoch), (9, 0));
        assert_eq!(s.delta(&all), (all.clone(), vec![]));
    }
}
