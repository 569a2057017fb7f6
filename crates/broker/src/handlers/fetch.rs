//! Fetch (1): serve stored batches, long-polling until `min_bytes` arrive.
//!
//! Batches go from the segment files into the response unchanged. A
//! response holds at most the smaller of the request's `max_bytes` and the
//! broker's `limits.fetch_max_bytes`, and each partition at most its
//! `partition_max_bytes`, except that the first batch of the first non-empty
//! partition is returned whole (KIP-74) so a consumer always progresses. The
//! `records` field is never null (librdkafka rejects a -1 length). Waiting
//! is driven by the partitions' high-watermark notifications, never by
//! polling on a timer.
//!
//! Only the partition's leader serves a consumer: a partition this broker
//! does not lead is NOT_LEADER_OR_FOLLOWER, and a `current_leader_epoch`
//! (v9+) older than ours FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
//! From v16 (KIP-951) the first two carry the current leader and epoch,
//! with that leader's endpoint in `node_endpoints`.
//!
//! A follower's fetch of a throttled replica (see [`crate::throttle`]) that
//! is not in the ISR gets no records while this broker's leader quota is
//! exceeded (Kafka's behaviour: no error, just nothing), and the bytes sent
//! for throttled replicas are counted against that quota.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use sluice_log::{LogError, ReadResult};
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::fetch::{
    EpochEndOffset, FetchRequest, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch,
    NodeEndpoint, PartitionData,
};
use sluice_protocol::{Records, RequestHeader};
use uuid::Uuid;

use super::{RequestContext, cluster};
use crate::authz::Authorizer;
use crate::throttle::{self, ReplicationThrottles};
use crate::zero_copy::SegmentRecords;
use sluice_metadata::MetadataImage;
use sluice_metadata::acl::AclOperation;
use sluice_replica::{LeaderError, Partition, ReplicaManager, WAKE_SHARD_COUNT, WAKE_SHARDS};

/// Longest long-poll we honour, whatever the client asks: a bound on how
/// long a request can pin its connection's response queue.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// First Fetch version whose responses carry `CurrentLeader` hints and
/// `NodeEndpoints` (KIP-951; `CurrentLeader` exists from v12, for KRaft).
const MIN_LEADER_HINT_VERSION: i16 = 16;

/// One partition the request asked for.
struct Wanted {
    partition_index: i32,
    fetch_offset: i64,
    /// For a follower: the diverging epoch to send back instead of data
    /// (its log has a tail the leader's does not).
    diverging: Option<(i32, i64)>,
    partition_max_bytes: i32,
    /// The partition this broker leads, or the error to report.
    target: Result<Arc<Partition>, i16>,
    /// KIP-951's `current_leader` for a refused partition (v16+).
    current_leader: Option<(i32, i32)>,
    /// A follower's fetch of a replica throttled on the leader side: its
    /// bytes count against the leader quota.
    throttled: bool,
    /// Throttled and not in the ISR: held back while the quota is exceeded.
    may_hold_back: bool,
}

struct WantedTopic {
    name: String,
    topic_id: Uuid,
    partitions: Vec<Wanted>,
}

/// True if a follower (a broker replicating) sent `request`; consumers
/// send replica id -1 (in `ReplicaState` from v15).
pub fn from_follower(request: &FetchRequest, version: i16) -> bool {
    let replica_id = if version >= 15 {
        request.replica_state.replica_id
    } else {
        request.replica_id
    };
    replica_id >= 0
}

/// Handles Fetch: topics resolve through `image`, partitions through
/// `replicas`; a response carries at most `fetch_max_bytes` of records
/// (past KIP-74's first batch); followers' fetches of throttled replicas go
/// through `throttles.leader`.
// The narrow handles the handler uses plus the authorizer, ctx, header
// and request: one more than clippy's default, kept explicit by design
// (see the module docs of `handlers`).
#[allow(clippy::too_many_arguments)]
pub fn handle(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    fetch_max_bytes: u32,
    throttles: &Arc<ReplicationThrottles>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: FetchRequest,
) -> impl Future<Output = FetchResponse> + Send + 'static {
    let version = header.request_api_version;
    let mut hints = cluster::LeaderHints::for_listener(&ctx.listener);
    // A follower names itself (v15+ in ReplicaState); consumers send -1.
    let replica_id = if version >= 15 {
        request.replica_state.replica_id
    } else {
        request.replica_id
    };
    let follower = replica_id >= 0;
    // Kafka: a follower needs CLUSTER_ACTION on the cluster, a consumer
    // READ on each topic; either refusal is TOPIC_AUTHORIZATION_FAILED on
    // the partitions.
    let follower_denied = follower && !authorizer.cluster(ctx, AclOperation::ClusterAction);
    let now = super::now_ms();
    let me = replicas.node_id();
    let leader_rate = throttle::leader_rate(image, me);
    let topics: Vec<WantedTopic> = request
        .topics
        .into_iter()
        .map(|t| {
            // v13+ names topics by id only.
            let name = if version >= 13 {
                image.topic_by_id(&t.topic_id).map(|ti| ti.name.clone())
            } else {
                Some(t.topic.clone())
            };
            let topic_error = if version >= 13 {
                code::UNKNOWN_TOPIC_ID
            } else {
                code::UNKNOWN_TOPIC_OR_PARTITION
            };
            let topic_id = name
                .as_ref()
                .and_then(|n| image.topics.get(n))
                .map_or(t.topic_id, |ti| ti.topic_id);
            let denied = follower_denied
                || (!follower
                    && name
                        .as_deref()
                        .is_some_and(|n| !authorizer.topic(ctx, AclOperation::Read, n)));
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut current_leader = None;
                    let target = match &name {
                        Some(_) if denied => Err(code::TOPIC_AUTHORIZATION_FAILED),
                        Some(n) => replicas
                            .leader_partition(image, n, p.partition, p.current_leader_epoch, true)
                            .map_err(|e| {
                                let hinted = matches!(
                                    e,
                                    LeaderError::NotLeaderOrFollower
                                        | LeaderError::FencedLeaderEpoch { .. }
                                );
                                if hinted && version >= MIN_LEADER_HINT_VERSION {
                                    current_leader =
                                        Some(hints.leader_of(replicas, image, n, p.partition));
                                }
                                e.kafka_error_code()
                            }),
                        None => Err(topic_error),
                    };
                    let mut target = target;
                    let mut diverging = None;
                    // Only followers are throttled, and only partitions
                    // this broker leads (the others are errors).
                    let throttled = follower
                        && target.is_ok()
                        && name.as_deref().is_some_and(|n| {
                            throttle::leader_throttled(image, n, p.partition, me, replica_id)
                        });
                    let may_hold_back = throttled
                        && name
                            .as_deref()
                            .is_some_and(|n| !throttle::in_sync(image, n, p.partition, replica_id));
                    if follower && let Ok(partition) = &target {
                        match follower_fetch(
                            replicas,
                            partition,
                            replica_id,
                            p.fetch_offset,
                            p.last_fetched_epoch,
                            now,
                        ) {
                            Ok(d) => diverging = d,
                            Err(code) => target = Err(code),
                        }
                    }
                    Wanted {
                        partition_index: p.partition,
                        fetch_offset: p.fetch_offset,
                        diverging,
                        partition_max_bytes: p.partition_max_bytes,
                        target,
                        current_leader,
                        throttled,
                        may_hold_back,
                    }
                })
                .collect();
            WantedTopic {
                name: name.unwrap_or(t.topic),
                topic_id,
                partitions,
            }
        })
        .collect();
    // The broker's cap bounds the response whatever the client asks for
    // (Kafka's fetch.max.bytes); KIP-74's first batch is still returned whole.
    let max_bytes = (request.max_bytes.max(0) as usize).min(fetch_max_bytes as usize);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    // isolation_level 1 (read_committed): stop at the last stable offset
    // and list the aborted transactions in the returned range.
    let read_committed = request.isolation_level == 1;
    let node_endpoints: Vec<NodeEndpoint> = hints
        .into_endpoints()
        .map(|b| NodeEndpoint {
            node_id: b.node_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect();

    let throttles = Arc::clone(throttles);
    async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            // Checked once per read, like Kafka's per-fetch check: a fetch
            // may overshoot the rate by one response, which the meter then
            // makes up for by holding back the next ones.
            let hold_back = follower
                && throttles
                    .leader
                    .is_exceeded(leader_rate, throttles.now_ms());
            // Register for wake-ups before reading, so an append between the
            // read and the wait is not missed. A held-back partition's
            // appends would only wake the fetch to send nothing again.
            let any_held_back = hold_back
                && topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .any(|w| w.may_hold_back && w.target.is_ok());
            // Consumers wait for the high watermark, followers for data,
            // each on the wake-up shards of its partitions: at most
            // WAKE_SHARD_COUNT registrations however many partitions the
            // fetch (or its session) holds.
            let mut shards = [false; WAKE_SHARD_COUNT];
            for w in topics.iter().flat_map(|t| t.partitions.iter()) {
                if let Ok(p) = &w.target
                    && !(hold_back && w.may_hold_back)
                {
                    shards[p.wake_shard()] = true;
                }
            }
            let wake = &*WAKE_SHARDS;
            let mut waits: Vec<_> = shards
                .iter()
                .enumerate()
                .filter(|&(_, &wanted)| wanted)
                .map(|(shard, _)| {
                    Box::pin(if follower {
                        wake.appended[shard].notified()
                    } else {
                        wake.hw_advanced[shard].notified()
                    })
                })
                .collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            let read = read_all(
                &topics,
                max_bytes,
                version,
                read_committed,
                follower,
                hold_back,
            );
            let now = tokio::time::Instant::now();
            let nothing_to_wait_for = waits.is_empty() && !any_held_back;
            if read.bytes >= min_bytes || read.any_error || now >= deadline || nothing_to_wait_for {
                throttles
                    .leader
                    .record(read.throttled_bytes as u64, throttles.now_ms());
                let mut response = read.response;
                response.node_endpoints = node_endpoints;
                return response;
            }
            if waits.is_empty() {
                // Only held-back partitions: the follower waits out its
                // max_wait_ms, as in Kafka, instead of fetching again at once.
                tokio::time::sleep_until(deadline).await;
                continue;
            }
            tokio::select! {
                _ = select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// The leader's side of a follower's fetch of `partition` from
/// `fetch_offset`, whose last batch was of `last_fetched_epoch` (v12+, -1
/// when unknown). A follower whose log diverges from this leader's gets the
/// epoch and end offset to truncate to (KIP-320's check, done on Fetch from
/// v12, Kafka's `Partition.fetchRecords`), and its fetch does not count as
/// progress. Otherwise the fetch is the follower's log end: it moves the
/// high watermark and may add the follower to the ISR.
///
/// Only a replica of the partition may fetch as a follower: anyone else
/// claiming a replica id could move the high watermark.
fn follower_fetch(
    replicas: &ReplicaManager,
    partition: &Arc<Partition>,
    replica_id: i32,
    fetch_offset: i64,
    last_fetched_epoch: i32,
    now_ms: i64,
) -> Result<Option<(i32, i64)>, i16> {
    if replica_id == replicas.node_id() || !partition.replicas().contains(&replica_id) {
        tracing::warn!(partition = %partition.tp, replica_id, "fetch as a follower from a broker that is not a replica");
        return Err(code::NOT_LEADER_OR_FOLLOWER);
    }
    if last_fetched_epoch >= 0 {
        match partition.log().leader_epoch_end_offset(last_fetched_epoch) {
            Some((epoch, end_offset))
                if epoch != last_fetched_epoch || end_offset < fetch_offset =>
            {
                return Ok(Some((epoch, end_offset)));
            }
            _ => {}
        }
    }
    if fetch_offset > partition.log().log_end_offset() {
        return Err(code::OFFSET_OUT_OF_RANGE);
    }
    if let Some(change) = partition.record_follower_fetch(replica_id, fetch_offset, now_ms) {
        replicas.propose_isr_change(partition, change);
    }
    Ok(None)
}

/// One read of every wanted partition.
struct Read {
    response: FetchResponse,
    /// Bytes of records in the response.
    bytes: usize,
    /// Of those, the bytes of throttled replicas (the leader quota's share).
    throttled_bytes: usize,
    /// A partition carries an error (which ends a long poll at once, as in
    /// Kafka).
    any_error: bool,
}

/// Reads every wanted partition once; with `hold_back`, throttled replicas
/// outside the ISR get no records.
fn read_all(
    topics: &[WantedTopic],
    max_bytes: usize,
    version: i16,
    read_committed: bool,
    follower: bool,
    hold_back: bool,
) -> Read {
    let mut total = 0usize;
    let mut throttled_bytes = 0usize;
    let mut any_error = false;
    let responses = topics
        .iter()
        .map(|t| FetchableTopicResponse {
            topic: if version < 13 {
                t.name.clone()
            } else {
                String::new()
            },
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|w| {
                    let data = read_partition(
                        w,
                        max_bytes.saturating_sub(total),
                        total == 0,
                        read_committed,
                        follower,
                        hold_back && w.may_hold_back,
                    );
                    total += data.records.len();
                    if w.throttled {
                        throttled_bytes += data.records.len();
                    }
                    any_error |= data.error_code != code::NONE;
                    data
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let response = FetchResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        session_id: 0,
        responses,
        ..Default::default()
    };
    Read {
        response,
        bytes: total,
        throttled_bytes,
        any_error,
    }
}

/// What a read returns to the client: a plain log's batches stay in their
/// segment files until the response is written (sent from there, see
/// [`crate::zero_copy`]); an encrypted log's are read and opened now.
fn fetched_records(read: ReadResult) -> std::io::Result<Records> {
    if read.encryption.is_some() || read.envelopes {
        return read.to_bytes().map(Records::from);
    }
    if read.slices.is_empty() {
        return Ok(Records::default());
    }
    Ok(Records::Deferred(Arc::new(SegmentRecords::new(
        read.slices,
    ))))
}

fn read_partition(
    w: &Wanted,
    budget: usize,
    first: bool,
    read_committed: bool,
    follower: bool,
    held_back: bool,
) -> PartitionData {
    let empty = |error_code: i16| PartitionData {
        partition_index: w.partition_index,
        error_code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        records: Records::default(),
        ..Default::default()
    };
    let partition = match &w.target {
        Ok(p) => p,
        Err(error_code) => {
            let mut data = empty(*error_code);
            if let Some((leader_id, leader_epoch)) = w.current_leader {
                data.current_leader = LeaderIdAndEpoch {
                    leader_id,
                    leader_epoch,
                };
            }
            return data;
        }
    };
    let high_watermark = partition.high_watermark();
    let log_start_offset = partition.log().log_start_offset();
    let last_stable_offset = partition.last_stable_offset();
    let mut data = PartitionData {
        high_watermark,
        last_stable_offset,
        log_start_offset,
        ..empty(code::NONE)
    };
    if let Some((epoch, end_offset)) = w.diverging {
        data.diverging_epoch = EpochEndOffset { epoch, end_offset };
        return data;
    }
    if held_back {
        // Kafka's leader-side throttle: the partition answers, with its
        // offsets, but no records.
        return data;
    }
    // KIP-74: the first batch of the response is returned even when it is
    // larger than the limits, so a consumer can always make progress.
    // Past the first batch, a partition gets only what fits both its own
    // partition_max_bytes and what is left of the request's max_bytes.
    let limit_bytes = (w.partition_max_bytes.max(0) as usize).min(budget);
    if limit_bytes == 0 && !first {
        return data;
    }
    let limit = u32::try_from(limit_bytes.max(1)).unwrap_or(u32::MAX);
    // A follower copies the whole log, committed or not: the high
    // watermark moves only once followers hold the data.
    let max_offset = if follower {
        partition.log().log_end_offset()
    } else if read_committed {
        last_stable_offset
    } else {
        high_watermark
    };
    // Nothing new (a consumer at the high watermark, a follower at the log
    // end): answered without planning a read, which a session of
    // thousands of idle partitions would otherwise do on every fetch.
    if w.fetch_offset == max_offset && w.fetch_offset >= log_start_offset {
        if read_committed {
            data.aborted_transactions = Some(Vec::new());
        }
        return data;
    }
    let read = partition
        .log()
        .read(w.fetch_offset, limit, max_offset)
        .and_then(|r| {
            let next_offset = r.next_offset;
            let records = fetched_records(r).map_err(|source| LogError::Io {
                op: "read",
                path: partition.log().dir().to_owned(),
                source,
            })?;
            Ok((records, next_offset))
        });
    match read {
        Ok((records, next_offset)) => {
            // The log always returns at least one whole batch; outside
            // KIP-74's first-batch exception, one that overshoots the limit
            // is left for the next fetch.
            if !first && records.len() > limit_bytes {
                return data;
            }
            if read_committed {
                match partition.aborted_transactions(w.fetch_offset, next_offset) {
                    Ok(aborted) => data.aborted_transactions = Some(aborted),
                    Err(e) => {
                        // Records without their aborted list would show a
                        // read_committed consumer aborted data: send none.
                        tracing::error!(partition = %partition.tp, offset = w.fetch_offset, "cannot read the transaction index: {e}");
                        data.error_code = e.kafka_error_code();
                        return data;
                    }
                }
            }
            sluice_metrics::fetched(&partition.tp.topic, records.len());
            data.records = records;
        }
        Err(e) => {
            let error_code = e.kafka_error_code();
            if error_code != code::OFFSET_OUT_OF_RANGE {
                tracing::error!(partition = %partition.tp, offset = w.fetch_offset, "fetch read failed: {e}");
            }
            data.error_code = error_code;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::messages::fetch::{FetchPartition, FetchTopic};

    use super::*;
    use crate::{Broker, testing};

    const CAP: u32 = 4096;

    async fn broker_with_cap(dir: &std::path::Path) -> Arc<Broker> {
        let mut config = crate::config::Config::default();
        config.limits.fetch_max_bytes = CAP;
        testing::broker_with(dir, config).await
    }

    /// Appends `batches` batches of one `value_bytes` record to `topic`-`p`.
    async fn fill(broker: &Arc<Broker>, topic: &str, p: i32, batches: usize, value_bytes: usize) {
        let partition = broker.replicas.partition(topic, p).expect("partition");
        for _ in 0..batches {
            let batch = testing::batch_with_value(&vec![b'x'; value_bytes]);
            let info = partition
                .append(BytesMut::from(batch.as_ref()), testing::now_ms())
                .expect("append");
            partition
                .commit(info.last_offset + 1)
                .await
                .expect("commit");
        }
    }

    /// A Fetch v12 asking for everything, from offset 0 of each partition.
    fn fetch_everything(topic: &str, partitions: i32) -> (RequestHeader, FetchRequest) {
        let header = RequestHeader {
            request_api_key: 1,
            request_api_version: 12,
            correlation_id: 1,
            client_id: None,
        };
        let request = FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                partitions: (0..partitions)
                    .map(|p| FetchPartition {
                        partition: p,
                        fetch_offset: 0,
                        partition_max_bytes: i32::MAX,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        (header, request)
    }

    fn record_bytes(response: &FetchResponse) -> Vec<usize> {
        response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.records.len()))
            .collect()
    }

    #[tokio::test]
    async fn fetch_response_is_capped_by_fetch_max_bytes_whatever_the_client_asks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_cap(dir.path()).await;
        testing::create_topic(&broker, "t", 3).await;
        for p in 0..3 {
            fill(&broker, "t", p, 20, 500).await; // about 11 KB per partition
        }
        let (header, request) = fetch_everything("t", 3);
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            broker.config.limits.fetch_max_bytes,
            &Arc::default(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let sizes = record_bytes(&response);
        let total: usize = sizes.iter().sum();
        assert!(total > 0, "something is returned");
        assert!(
            total <= CAP as usize,
            "response carries {total} record bytes, above the {CAP}-byte cap: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn first_batch_is_returned_whole_even_above_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_cap(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        fill(&broker, "t", 0, 3, 3 * CAP as usize).await;
        fill(&broker, "t", 1, 3, 100).await;
        let (header, request) = fetch_everything("t", 2);
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            broker.config.limits.fetch_max_bytes,
            &Arc::default(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let sizes = record_bytes(&response);
        // Exactly one oversized batch from partition 0; nothing else fits.
        assert!(sizes[0] > 3 * CAP as usize, "{sizes:?}");
        assert!(
            sizes[0] < 4 * CAP as usize,
            "only the first batch: {sizes:?}"
        );
        assert_eq!(sizes[1], 0, "{sizes:?}");
    }

    #[tokio::test]
    async fn partition_max_bytes_limits_each_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_cap(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        for p in 0..2 {
            fill(&broker, "t", p, 10, 200).await;
        }
        let (header, mut request) = fetch_everything("t", 2);
        for p in &mut request.topics[0].partitions {
            p.partition_max_bytes = 1000;
        }
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            broker.config.limits.fetch_max_bytes,
            &Arc::default(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let sizes = record_bytes(&response);
        assert!(sizes.iter().all(|&s| s > 0 && s <= 1000), "{sizes:?}");
    }

    /// Fetch in a cluster: only the leader serves, leader epochs are
    /// checked, and v16 names the current leader (KIP-951).
    mod cluster {
        use sluice_protocol::messages::fetch::{FetchPartition, FetchTopic};

        use super::super::*;
        use crate::testing::{self, Node, SPREAD};

        async fn cluster_node(dir: &std::path::Path) -> (Node, Uuid) {
            let node = testing::node_in(dir).await;
            testing::three_brokers(&node).await;
            let topic_id = testing::spread_topic(&node).await;
            (node, topic_id)
        }

        /// Fetches `(partition, current_leader_epoch)` of [`SPREAD`] at
        /// `version` (by id from v13); answers with (index, error code,
        /// current leader, its epoch) per partition and the response.
        async fn fetch_spread(
            node: &Node,
            topic_id: Uuid,
            version: i16,
            partitions: &[(i32, i32)],
        ) -> (Vec<(i32, i16, i32, i32)>, FetchResponse) {
            let request = FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: i32::MAX,
                topics: vec![FetchTopic {
                    topic: SPREAD.to_owned(),
                    topic_id,
                    partitions: partitions
                        .iter()
                        .map(|&(partition, current_leader_epoch)| FetchPartition {
                            partition,
                            current_leader_epoch,
                            fetch_offset: 0,
                            partition_max_bytes: i32::MAX,
                            ..Default::default()
                        })
                        .collect(),
                }],
                ..Default::default()
            };
            let header = testing::header(1, version);
            let response = handle(
                &node.replicas,
                &node.image(),
                u32::MAX,
                &Arc::default(),
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            )
            .await;
            let got = response.responses[0]
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        p.error_code,
                        p.current_leader.leader_id,
                        p.current_leader.leader_epoch,
                    )
                })
                .collect();
            (got, response)
        }

        #[tokio::test]
        async fn only_the_leader_serves_and_v16_names_the_current_leader() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (node, topic_id) = cluster_node(dir.path()).await;
            let leader = node.partition(SPREAD, 0);
            testing::append(&leader, &testing::batch(2)).await;
            let every = [(0, -1), (1, -1), (2, -1), (3, -1), (4, -1), (5, -1)];
            let (got, response) = fetch_spread(&node, topic_id, 16, &every).await;
            assert_eq!(
                got,
                [
                    (0, code::NONE, -1, -1),
                    (1, code::NOT_LEADER_OR_FOLLOWER, 2, 5),
                    (2, code::NOT_LEADER_OR_FOLLOWER, 3, 7),
                    (3, code::NOT_LEADER_OR_FOLLOWER, -1, 2),
                    (4, code::NOT_LEADER_OR_FOLLOWER, 4, 1),
                    (5, code::NOT_LEADER_OR_FOLLOWER, 9, 4),
                ]
            );
            let data = &response.responses[0].partitions;
            assert!(!data[0].records.is_empty(), "the leader serves its data");
            assert!(data[1..].iter().all(|p| p.records.is_empty()));
            let endpoints: Vec<_> = response
                .node_endpoints
                .iter()
                .map(|e| (e.node_id, e.host.as_str(), e.port, e.rack.as_deref()))
                .collect();
            assert_eq!(
                endpoints,
                [
                    (2, "host-2", 9002, Some("rack-2")),
                    (3, "host-3", 9003, None)
                ]
            );
        }

        #[tokio::test]
        async fn below_v16_a_refusal_carries_no_leader_hint() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (node, topic_id) = cluster_node(dir.path()).await;
            for version in [12, 15] {
                let (got, response) =
                    fetch_spread(&node, topic_id, version, &[(1, -1), (2, -1), (0, 1)]).await;
                assert_eq!(
                    got,
                    [
                        (1, code::NOT_LEADER_OR_FOLLOWER, -1, -1),
                        (2, code::NOT_LEADER_OR_FOLLOWER, -1, -1),
                        (0, code::FENCED_LEADER_EPOCH, -1, -1),
                    ],
                    "v{version}"
                );
                assert!(response.node_endpoints.is_empty(), "v{version}");
            }
        }

        #[tokio::test]
        async fn a_stale_leader_epoch_is_fenced_and_a_newer_one_unknown() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (node, topic_id) = cluster_node(dir.path()).await;
            // Partition 0 is led here at epoch 3.
            let (got, response) =
                fetch_spread(&node, topic_id, 16, &[(0, 2), (0, 4), (0, 3)]).await;
            assert_eq!(
                got,
                [
                    // Fenced: told where the leader is (here, at epoch 3).
                    (0, code::FENCED_LEADER_EPOCH, 1, 3),
                    (0, code::UNKNOWN_LEADER_EPOCH, -1, -1),
                    (0, code::NONE, -1, -1),
                ]
            );
            let endpoints: Vec<_> = response.node_endpoints.iter().map(|e| e.node_id).collect();
            assert_eq!(endpoints, [1]);
            // A follower's epoch is checked before its leadership, as in Kafka.
            let (got, _) = fetch_spread(&node, topic_id, 16, &[(1, 4)]).await;
            assert_eq!(got, [(1, code::FENCED_LEADER_EPOCH, 2, 5)]);
        }
    }

    /// The leader side of replication throttles (KIP-73): follower
    /// fetches of throttled replicas outside the ISR get no records while
    /// the leader quota is exceeded. Time is the throttles' manual clock.
    mod throttled {
        use std::sync::atomic::Ordering;

        use bytes::BytesMut;
        use sluice_metadata::MetadataRecord;
        use sluice_metadata::broker_config::LEADER_THROTTLED_RATE;
        use sluice_metadata::topic_config::LEADER_THROTTLED_REPLICAS;
        use sluice_protocol::messages::fetch::{FetchPartition, FetchTopic};

        use super::super::*;
        use crate::testing::{self, Node, SPREAD};

        const TOPIC_ID: u128 = 0x5eed;

        /// A three-broker node whose [`SPREAD`] partition 0 (led here,
        /// replicas [1, 2], ISR [1]) holds `batches` one-record batches of
        /// `value_bytes`, with this broker's leader rate `rate` B/s.
        async fn leader_with(
            dir: &std::path::Path,
            batches: usize,
            value_bytes: usize,
            rate: i64,
        ) -> Node {
            let node = testing::node_in(dir).await;
            testing::three_brokers(&node).await;
            testing::spread_topic(&node).await;
            testing::commit(
                &node,
                vec![MetadataRecord::BrokerConfig {
                    broker_id: 1,
                    name: LEADER_THROTTLED_RATE.to_owned(),
                    value: Some(rate.to_string()),
                }],
            )
            .await;
            let partition = node.replicas.partition(SPREAD, 0).expect("led here");
            for _ in 0..batches {
                let batch = testing::batch_with_value(&vec![b'x'; value_bytes]);
                let info = partition
                    .append(BytesMut::from(batch.as_ref()), testing::now_ms())
                    .expect("append");
                // Committed: the high watermark is the log end, so a
                // follower joins the ISR only once it has everything.
                partition
                    .commit(info.last_offset + 1)
                    .await
                    .expect("commit");
            }
            node
        }

        async fn set_topic_config(node: &Node, name: &str, value: &str) {
            testing::commit(
                node,
                vec![MetadataRecord::TopicConfig {
                    topic_id: Uuid::from_u128(TOPIC_ID),
                    name: name.to_owned(),
                    value: Some(value.to_owned()),
                }],
            )
            .await;
        }

        /// Fetches partition 0 of [`SPREAD`] from `offset` as `replica_id`
        /// (-1: a consumer), at most one batch past the first (KIP-74).
        async fn fetch_as(
            node: &Node,
            throttles: &Arc<ReplicationThrottles>,
            replica_id: i32,
            offset: i64,
        ) -> PartitionData {
            let request = FetchRequest {
                replica_id,
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: i32::MAX,
                topics: vec![FetchTopic {
                    topic: SPREAD.to_owned(),
                    partitions: vec![FetchPartition {
                        partition: 0,
                        current_leader_epoch: -1,
                        fetch_offset: offset,
                        last_fetched_epoch: -1,
                        partition_max_bytes: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let header = testing::header(1, 12);
            let mut response = handle(
                &node.replicas,
                &node.image(),
                u32::MAX,
                throttles,
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            )
            .await;
            response.responses.remove(0).partitions.remove(0)
        }

        #[tokio::test]
        async fn a_throttled_follower_gets_no_records_while_the_leader_quota_is_exceeded() {
            let dir = tempfile::tempdir().expect("tempdir");
            // 1,000 B/s: 10 s of it (the minimum measuring span) is 10 KB.
            let node = leader_with(dir.path(), 30, 1_000, 1_000).await;
            let (throttles, clock) = ReplicationThrottles::with_manual_clock(0);
            let throttles = Arc::new(throttles);

            // Not throttled: the follower gets its batch and nothing counts.
            let data = fetch_as(&node, &throttles, 2, 0).await;
            assert!(!data.records.is_empty());
            assert_eq!(throttles.leader.rate(0), 0.0);

            set_topic_config(&node, LEADER_THROTTLED_REPLICAS, "0:1").await;
            // Within the quota: records flow and count, until the measured
            // rate passes 1,000 B/s (11 batches of ~1 KB over 10 s).
            let mut offset = 0;
            let mut sent = 0;
            loop {
                let data = fetch_as(&node, &throttles, 2, offset).await;
                assert_eq!(data.error_code, code::NONE);
                if data.records.is_empty() {
                    break;
                }
                sent += data.records.len();
                offset += 1;
                assert!(offset < 30, "never held back");
            }
            assert!(throttles.leader.is_exceeded(1_000, 0));
            assert!(
                (10_000..=12_200).contains(&sent),
                "sent {sent} before holding back"
            );
            // Held back, not refused: the offsets are there.
            let held = fetch_as(&node, &throttles, 2, offset).await;
            assert!(held.records.is_empty());
            assert_eq!((held.error_code, held.high_watermark), (code::NONE, 30));
            // Consumers are never throttled, nor counted.
            let rate = throttles.leader.rate(0);
            let consumer = fetch_as(&node, &throttles, -1, 0).await;
            assert!(!consumer.records.is_empty());
            assert_eq!(throttles.leader.rate(0), rate);
            // An in-sync follower is never held back, but counted.
            let before = throttles.leader.rate(0);
            testing::commit(
                &node,
                vec![MetadataRecord::Partition {
                    topic_id: Uuid::from_u128(TOPIC_ID),
                    partition: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                    leader_epoch: 3,
                    partition_epoch: 1,
                    adding_replicas: vec![],
                    removing_replicas: vec![],
                }],
            )
            .await;
            let in_sync = fetch_as(&node, &throttles, 2, offset).await;
            assert!(!in_sync.records.is_empty(), "in the ISR: not held back");
            assert!(throttles.leader.rate(0) > before, "but counted");

            // Once the window has passed, a follower outside the ISR is
            // served again.
            testing::commit(
                &node,
                vec![MetadataRecord::Partition {
                    topic_id: Uuid::from_u128(TOPIC_ID),
                    partition: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1],
                    leader_epoch: 3,
                    partition_epoch: 2,
                    adding_replicas: vec![],
                    removing_replicas: vec![],
                }],
            )
            .await;
            assert!(
                fetch_as(&node, &throttles, 2, offset)
                    .await
                    .records
                    .is_empty()
            );
            clock.store(11_000, Ordering::Relaxed);
            assert!(
                !fetch_as(&node, &throttles, 2, offset)
                    .await
                    .records
                    .is_empty()
            );
        }

        #[tokio::test]
        async fn a_replica_being_added_is_throttled_without_any_topic_config() {
            let dir = tempfile::tempdir().expect("tempdir");
            let node = leader_with(dir.path(), 30, 1_000, 1_000).await;
            // A reassignment adds 2 to partition 0.
            testing::commit(
                &node,
                vec![MetadataRecord::Partition {
                    topic_id: Uuid::from_u128(TOPIC_ID),
                    partition: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1],
                    leader_epoch: 3,
                    partition_epoch: 1,
                    adding_replicas: vec![2],
                    removing_replicas: vec![],
                }],
            )
            .await;
            let (throttles, _clock) = ReplicationThrottles::with_manual_clock(0);
            let throttles = Arc::new(throttles);
            let mut offset = 0;
            while !fetch_as(&node, &throttles, 2, offset)
                .await
                .records
                .is_empty()
            {
                offset += 1;
                assert!(offset < 30, "never held back");
            }
            assert!(offset >= 10, "the quota let {offset} batches through first");
        }

        #[tokio::test]
        async fn a_throttled_follower_still_catches_up_and_joins_the_isr() {
            let dir = tempfile::tempdir().expect("tempdir");
            // A tiny rate: 100 B/s against 20 batches of ~600 B.
            let node = leader_with(dir.path(), 20, 500, 100).await;
            set_topic_config(&node, LEADER_THROTTLED_REPLICAS, "*").await;
            let (sink, mut changes) = tokio::sync::mpsc::unbounded_channel();
            node.replicas.set_isr_sink(sink);
            let (throttles, clock) = ReplicationThrottles::with_manual_clock(0);
            let throttles = Arc::new(throttles);
            let end = node
                .replicas
                .partition(SPREAD, 0)
                .expect("led here")
                .log()
                .log_end_offset();
            let (mut offset, mut held_back, mut now_ms) = (0, 0, 0);
            // Bounded: at 100 B/s, 12 KB takes about two minutes of fetches
            // a second apart; 1,000 rounds is ample.
            for _ in 0..1_000 {
                now_ms += 1_000;
                clock.store(now_ms, Ordering::Relaxed);
                let data = fetch_as(&node, &throttles, 2, offset).await;
                assert_eq!(data.error_code, code::NONE);
                if data.records.is_empty() {
                    held_back += 1;
                } else {
                    offset += 1;
                }
                if offset == end {
                    break;
                }
            }
            assert_eq!(offset, end, "caught up");
            assert!(held_back > 50, "held back {held_back} times: throttled");
            // Its fetch from the end proposes it for the ISR.
            fetch_as(&node, &throttles, 2, offset).await;
            let (_, change) = changes.try_recv().expect("an ISR expansion is proposed");
            assert_eq!(change.new_isr, [1, 2]);
        }
    }

    /// Fetch against partitions alone: a replica manager and an image
    /// built by hand, no controller, coordinator or broker.
    mod hosted {
        use std::time::Duration;

        use sluice_protocol::messages::fetch::{FetchPartition, FetchTopic};

        use super::super::*;
        use crate::testing;

        /// A Fetch of one partition from `offset`, naming the topic by
        /// name (v12) or id (v13+).
        fn request(topic: &str, topic_id: Uuid, partition: i32, offset: i64) -> FetchRequest {
            FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: i32::MAX,
                topics: vec![FetchTopic {
                    topic: topic.to_owned(),
                    topic_id,
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset: offset,
                        partition_max_bytes: i32::MAX,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            }
        }

        fn fetch(
            replicas: &ReplicaManager,
            image: &MetadataImage,
            version: i16,
            request: FetchRequest,
        ) -> futures::future::BoxFuture<'static, FetchResponse> {
            let header = testing::header(1, version);
            Box::pin(handle(
                replicas,
                image,
                u32::MAX,
                &Arc::default(),
                &testing::allow_all(),
                &testing::ctx(),
                &header,
                request,
            ))
        }

        fn only(response: &FetchResponse) -> &PartitionData {
            assert_eq!(response.responses.len(), 1);
            assert_eq!(response.responses[0].partitions.len(), 1);
            &response.responses[0].partitions[0]
        }

        #[tokio::test]
        async fn stored_batches_come_back_byte_for_byte_with_the_offsets() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
            let partition = replicas.partition("t", 0).expect("hosted");
            let first = testing::batch(2);
            let second = testing::batch(3);
            testing::append(&partition, &first).await;
            testing::append(&partition, &second).await;
            let response = fetch(&replicas, &image, 12, request("t", Uuid::nil(), 0, 0)).await;
            let data = only(&response);
            assert_eq!(data.error_code, code::NONE);
            assert_eq!(data.high_watermark, 5);
            assert_eq!(data.last_stable_offset, 5);
            assert_eq!(data.log_start_offset, 0);
            assert_eq!(response.responses[0].topic, "t");
            // The log rewrote base offsets; the bodies are what was sent.
            let records = data.records.to_bytes().expect("records");
            assert_eq!(records.len(), first.len() + second.len());
            let headers: Vec<_> = sluice_records::Batches::without_crc(&records)
                .filter_map(|b| match b {
                    sluice_records::NextBatch::Complete { header, .. } => Some(header),
                    _ => None,
                })
                .collect();
            assert_eq!(headers.len(), 2);
            assert_eq!(headers[0].base_offset, 0);
            assert_eq!(headers[1].base_offset, 2);
            // Past base offset, length and leader epoch (rewritten by the
            // log), the second batch is the bytes the producer sent.
            assert_eq!(records[first.len() + 16..], second[16..]);
        }

        #[tokio::test]
        async fn unknown_topics_partitions_and_ids_get_their_own_errors_and_empty_records() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
            let cases = [
                (
                    12,
                    request("missing", Uuid::nil(), 0, 0),
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                ),
                (
                    12,
                    request("t", Uuid::nil(), 5, 0),
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                ),
                (
                    13,
                    request("", Uuid::from_u128(99), 0, 0),
                    code::UNKNOWN_TOPIC_ID,
                ),
                (
                    13,
                    request("", Uuid::from_u128(1), 5, 0),
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                ),
            ];
            for (version, request, expected) in cases {
                let response = fetch(&replicas, &image, version, request).await;
                let data = only(&response);
                assert_eq!(data.error_code, expected, "v{version}");
                assert_eq!(data.high_watermark, -1);
                assert_eq!(data.log_start_offset, -1);
                assert!(data.records.is_empty());
            }
        }

        #[tokio::test]
        async fn v13_names_topics_by_id_and_leaves_the_name_empty() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("a", 1), ("b", 1)]);
            let b = replicas.partition("b", 0).expect("hosted");
            testing::append(&b, &testing::batch(1)).await;
            let b_id = image.topics["b"].topic_id;
            let response = fetch(&replicas, &image, 13, request("", b_id, 0, 0)).await;
            assert_eq!(response.responses[0].topic, "");
            assert_eq!(response.responses[0].topic_id, b_id);
            let data = only(&response);
            assert_eq!(data.error_code, code::NONE);
            assert_eq!(data.high_watermark, 1);
            assert!(!data.records.is_empty(), "b's record, found by id");
        }

        #[tokio::test]
        async fn an_offset_past_the_log_end_is_out_of_range() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
            let partition = replicas.partition("t", 0).expect("hosted");
            testing::append(&partition, &testing::batch(2)).await;
            let response = fetch(&replicas, &image, 12, request("t", Uuid::nil(), 0, 10)).await;
            let data = only(&response);
            assert_eq!(data.error_code, code::OFFSET_OUT_OF_RANGE);
            assert!(data.records.is_empty());
            // At the log end there is simply nothing yet.
            let response = fetch(&replicas, &image, 12, request("t", Uuid::nil(), 0, 2)).await;
            let data = only(&response);
            assert_eq!(data.error_code, code::NONE);
            assert!(data.records.is_empty());
            assert_eq!(data.high_watermark, 2);
        }

        #[tokio::test]
        async fn a_long_poll_returns_when_records_arrive_not_at_its_deadline() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
            let partition = replicas.partition("t", 0).expect("hosted");
            let mut waiting = request("t", Uuid::nil(), 0, 0);
            waiting.min_bytes = 1;
            waiting.max_wait_ms = 30_000; // MAX_WAIT: far past the test's own bound
            let reply = tokio::spawn(fetch(&replicas, &image, 12, waiting));
            testing::append(&partition, &testing::batch(1)).await;
            let response = tokio::time::timeout(Duration::from_secs(10), reply)
                .await
                .expect("woken by the append, not the 30 s deadline")
                .expect("fetch task");
            let data = only(&response);
            assert_eq!(data.error_code, code::NONE);
            assert!(!data.records.is_empty());
        }

        #[tokio::test]
        async fn a_long_poll_over_more_partitions_than_wake_shards_wakes_for_any_of_them() {
            const PARTITIONS: i32 = 2 * WAKE_SHARD_COUNT as i32 + 1;
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("t", PARTITIONS)]);
            for target in [PARTITIONS - 1, 0] {
                let mut waiting = request("t", Uuid::nil(), 0, 0);
                waiting.topics[0].partitions = (0..PARTITIONS)
                    .map(|partition| FetchPartition {
                        partition,
                        partition_max_bytes: i32::MAX,
                        ..Default::default()
                    })
                    .collect();
                // Past what the first round appended: nothing to read
                // anywhere until the append below.
                waiting.topics[0].partitions[(PARTITIONS - 1) as usize].fetch_offset =
                    i64::from(target == 0);
                waiting.min_bytes = 1;
                waiting.max_wait_ms = 30_000;
                let reply = tokio::spawn(fetch(&replicas, &image, 12, waiting));
                tokio::time::sleep(Duration::from_millis(50)).await;
                let partition = replicas.partition("t", target).expect("hosted");
                testing::append(&partition, &testing::batch(1)).await;
                let response = tokio::time::timeout(Duration::from_secs(10), reply)
                    .await
                    .expect("woken by the append to one of its partitions")
                    .expect("fetch task");
                let with_records: Vec<i32> = response.responses[0]
                    .partitions
                    .iter()
                    .filter(|p| !p.records.is_empty())
                    .map(|p| p.partition_index)
                    .collect();
                assert_eq!(with_records, vec![target]);
            }
        }

        #[tokio::test]
        async fn read_committed_stops_at_the_last_stable_offset() {
            let dir = tempfile::tempdir().expect("tempdir");
            let (replicas, image) = testing::hosted(dir.path(), &[("t", 1)]);
            let partition = replicas.partition("t", 0).expect("hosted");
            testing::append(&partition, &testing::batch(1)).await;
            let open_txn = sluice_records::BatchBuilder::new()
                .producer(77, 0, 0)
                .transactional(true)
                .record(sluice_records::NewRecord {
                    key: None,
                    value: Some(bytes::Bytes::from_static(b"pending")),
                    headers: vec![],
                    timestamp_ms: testing::now_ms(),
                })
                .build()
                .expect("batch");
            testing::append(&partition, &open_txn).await;

            let mut committed = request("t", Uuid::nil(), 0, 0);
            committed.isolation_level = 1;
            let response = fetch(&replicas, &image, 12, committed).await;
            let data = only(&response);
            assert_eq!(data.high_watermark, 2);
            assert_eq!(data.last_stable_offset, 1, "held at the open transaction");
            assert_eq!(
                data.records.len(),
                testing::batch(1).len(),
                "only the plain batch"
            );
            let response = fetch(&replicas, &image, 12, request("t", Uuid::nil(), 0, 0)).await;
            let data = only(&response);
            assert!(
                data.records.len() > testing::batch(1).len(),
                "read_uncommitted sees both"
            );

            // The coordinator aborts: the marker frees the last stable
            // offset and read_committed learns which range to drop.
            let marker = sluice_records::BatchBuilder::new()
                .producer(77, 0, -1)
                .transactional(true)
                .control(true)
                .record(sluice_records::NewRecord {
                    key: Some(sluice_log::producer_state::marker_key(
                        sluice_log::MarkerType::Abort,
                    )),
                    value: Some(sluice_log::producer_state::marker_value(0)),
                    headers: vec![],
                    timestamp_ms: testing::now_ms(),
                })
                .build()
                .expect("marker");
            let info = partition
                .log()
                .append_as(
                    marker,
                    partition.leader_epoch(),
                    testing::now_ms(),
                    sluice_log::AppendOrigin::Coordinator,
                )
                .expect("marker appended");
            partition
                .commit(info.last_offset + 1)
                .await
                .expect("commit");
            let mut committed = request("t", Uuid::nil(), 0, 0);
            committed.isolation_level = 1;
            let response = fetch(&replicas, &image, 12, committed).await;
            let data = only(&response);
            assert_eq!(data.last_stable_offset, 3);
            let aborted = data.aborted_transactions.as_deref().expect("listed");
            assert_eq!(aborted.len(), 1, "{aborted:?}");
            assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (77, 1));
        }
    }
}
