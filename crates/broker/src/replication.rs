//! Partition replication on this broker: one fetcher per leader this node
//! follows partitions of, the ISR shrink timer, and the sender of ISR
//! changes to the controller.
//!
//! A fetcher ([`run_fetcher`]) sends Fetch (v12, replica id = this node) to
//! its leader for every partition this node follows there, from each
//! log's end with the epoch of its last batch. The answer is appended as
//! it is ([`Partition::append_as_follower`]), fsynced under group commit
//! before the next fetch (so the offset the leader learns from that fetch
//! is durable here), and the leader's high watermark is taken. A diverging
//! epoch in the answer means this log holds a tail the leader does not
//! (it was written under an older leader and never committed): the log is
//! cut back to where the two agree and the fetch goes on from there.
//!
//! The set of fetchers follows the partitions' leadership: the supervisor
//! ([`run`]) re-plans whenever the replica manager applies a metadata
//! change, starts fetchers for new leaders and stops those with nothing
//! left to fetch. A fetcher re-reads its partitions before every fetch, so
//! a partition that moves to another leader (or to this node) drops out
//! of the next request; appends and truncations check the leader and epoch
//! the fetch was made under, under the partition's lock, so an answer that
//! arrives after a leadership change is discarded.
//!
//! Throttled replicas ([`crate::throttle`]) outside the ISR are left out of
//! the fetch while this broker's follower quota is exceeded; the others
//! are still fetched, so no partition's ISR suffers from a move. The bytes
//! fetched for throttled replicas are counted against the quota.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use sluice_client::conn::{ConnOptions, Connection};
use sluice_metadata::AlterPartitionRequest;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use sluice_replica::{IsrChange, Partition};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Broker;
use crate::throttle;

/// Fetch version followers send: the first with `last_fetched_epoch` and
/// the diverging-epoch answer (KIP-320 in Fetch), still naming topics by
/// name, which every partition here has.
const REPLICA_FETCH_VERSION: i16 = 12;

/// Time allowed to connect to a leader; a dead leader is found out this
/// fast, and the fetcher retries after the backoff.
const CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Starts replication: the ISR change sender, the shrink timer and the
/// fetcher supervisor, all stopping on `stop`.
pub async fn run(broker: Arc<Broker>, stop: CancellationToken) {
    let (sink, changes) = mpsc::unbounded_channel();
    broker.replicas.set_isr_sink(sink);
    let sender = tokio::spawn(send_isr_changes(Arc::clone(&broker), changes, stop.clone()));
    let shrinker = tokio::spawn(shrink_isrs(Arc::clone(&broker), stop.clone()));
    supervise_fetchers(&broker, &stop).await;
    let _ = sender.await;
    let _ = shrinker.await;
}

/// Sends each proposed ISR change to the controller (AlterPartition). The
/// outcome comes back as a metadata change; a refusal or a failure to
/// reach the controller unmarks the change so the next check proposes
/// again.
async fn send_isr_changes(
    broker: Arc<Broker>,
    mut changes: mpsc::UnboundedReceiver<(Arc<Partition>, IsrChange)>,
    stop: CancellationToken,
) {
    loop {
        let (partition, change) = tokio::select! {
            () = stop.cancelled() => return,
            next = changes.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        match alter_partition(&broker, &partition, &change).await {
            Ok(isr) => {
                tracing::info!(partition = %partition.tp, ?isr, "ISR changed");
            }
            Err(e) => {
                tracing::warn!(partition = %partition.tp, code = e.code, "ISR change refused: {}", e.message);
                partition.isr_change_failed(&change);
            }
        }
    }
}

/// Asks the controller for `change` of `partition`; the committed ISR.
async fn alter_partition(
    broker: &Broker,
    partition: &Partition,
    change: &IsrChange,
) -> Result<Vec<i32>, sluice_metadata::ApiError> {
    let request = AlterPartitionRequest {
        broker_id: broker.config.node_id,
        // The epoch this node registered with, as the metadata it follows
        // records it: a request from an earlier incarnation (a node that
        // restarted since) is refused (STALE_BROKER_EPOCH). A node that
        // never registered (a single node) sends -1, which skips the check.
        broker_epoch: broker
            .metadata
            .image()
            .brokers
            .get(&broker.config.node_id)
            .map_or(-1, |b| b.epoch),
        topic_id: partition.topic_id,
        partition: partition.tp.partition,
        leader_epoch: change.leader_epoch,
        partition_epoch: change.partition_epoch,
        new_isr: change.new_isr.clone(),
    };
    Ok(broker.controller.alter_partition(request).await?.isr)
}

/// Every half `replica.lag_time_max_ms`, proposes shrinking the ISR of
/// every partition led here whose followers fell behind (Kafka checks at
/// the same rate).
async fn shrink_isrs(broker: Arc<Broker>, stop: CancellationToken) {
    let lag_max_ms = broker.config.replica.lag_time_max_ms;
    let every = Duration::from_millis((lag_max_ms / 2).max(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = sluice_metadata::now_ms();
        broker
            .replicas
            .shrink_isrs(now, i64::try_from(lag_max_ms).unwrap_or(i64::MAX));
    }
}

/// Keeps one fetcher per leader this node follows partitions of.
async fn supervise_fetchers(broker: &Arc<Broker>, stop: &CancellationToken) {
    let mut fetchers: HashMap<i32, (CancellationToken, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        let changed = broker.replicas.leadership_changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let leaders = followed_leaders(broker);
        fetchers.retain(|leader, (token, handle)| {
            let keep = leaders.contains_key(leader) && !handle.is_finished();
            if !keep {
                token.cancel();
            }
            keep
        });
        for leader in leaders.keys() {
            fetchers.entry(*leader).or_insert_with(|| {
                let token = stop.child_token();
                let handle = tokio::spawn(run_fetcher(Arc::clone(broker), *leader, token.clone()));
                (token, handle)
            });
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = &mut changed => {}
        }
    }
    for (_, (token, handle)) in fetchers {
        token.cancel();
        let _ = handle.await;
    }
}

/// The partitions this node follows, by leader.
fn followed_leaders(broker: &Broker) -> BTreeMap<i32, Vec<Arc<Partition>>> {
    let me = broker.config.node_id;
    let mut by_leader: BTreeMap<i32, Vec<Arc<Partition>>> = BTreeMap::new();
    for partition in broker.replicas.all() {
        let (leader, _) = partition.leadership();
        if leader >= 0 && leader != me && !partition.is_offline() {
            by_leader.entry(leader).or_default().push(partition);
        }
    }
    by_leader
}

/// A followed partition with the leader and leader epoch it is fetched under.
type Followed = (Arc<Partition>, (i32, i32));

/// Why one round of fetching stopped.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    /// The leader is not registered (yet), so there is no address.
    #[error("leader {0} has no registered address")]
    NoAddress(i32),
    /// It refused the whole fetch.
    #[error("the leader refused the fetch with error {0}")]
    Refused(i16),
    /// Talking to it failed.
    #[error(transparent)]
    Client(#[from] sluice_client::ClientError),
}

/// Fetches from `leader` for every partition this node follows there,
/// until none is left or `stop`.
async fn run_fetcher(broker: Arc<Broker>, leader: i32, stop: CancellationToken) {
    let backoff = Duration::from_millis(broker.config.replica.fetch_backoff_ms);
    tracing::info!(leader, "starting the follower fetcher");
    let mut conn: Option<Connection> = None;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let outcome = tokio::select! {
            () = stop.cancelled() => break,
            outcome = fetch_once(&broker, leader, &mut conn) => outcome,
        };
        match outcome {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::debug!(leader, "follower fetch failed: {e}");
                conn = None;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    tracing::info!(leader, "follower fetcher stopped");
}

/// One fetch from `leader` and what follows from its answer. Returns
/// false when there is nothing left to follow there.
async fn fetch_once(
    broker: &Arc<Broker>,
    leader: i32,
    conn: &mut Option<Connection>,
) -> Result<bool, FetchError> {
    let partitions: Vec<Followed> = broker
        .replicas
        .all()
        .into_iter()
        .filter(|p| !p.is_offline())
        .filter_map(|p| {
            let leadership = p.leadership();
            (leadership.0 == leader).then_some((p, leadership))
        })
        .filter(|(_, (leader, _))| *leader != broker.config.node_id)
        .collect();
    if partitions.is_empty() {
        return Ok(false);
    }
    let image = broker.metadata.image();
    let me = broker.config.node_id;
    let rate = throttle::follower_rate(&image, me);
    let (partitions, throttled) = select_unthrottled(&image, me, partitions, || {
        broker
            .throttles
            .follower
            .is_exceeded(rate, broker.throttles.now_ms())
    });
    if partitions.is_empty() {
        // Every partition here is held back: wait until the quota allows
        // fetching again (at most one quota window, then check again).
        let delay = broker
            .throttles
            .follower
            .delay_until_within(rate, broker.throttles.now_ms());
        tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
        return Ok(true);
    }
    if conn.as_ref().is_none_or(Connection::is_dead) {
        let image = broker.metadata.image();
        let address = image
            .brokers
            .get(&leader)
            .map(|b| format!("{}:{}", b.host, b.port))
            .ok_or(FetchError::NoAddress(leader))?;
        let options = ConnOptions {
            client_id: format!("sluice-replica-{}", broker.config.node_id),
            connect_timeout: Duration::from_millis(CONNECT_TIMEOUT_MS),
            request_timeout: Duration::from_secs(30),
            tls: broker.inter_broker_tls.clone(),
            ..ConnOptions::default()
        };
        *conn = Some(Connection::connect(&address, options).await?);
    }
    let Some(connection) = conn.as_ref() else {
        return Ok(true);
    };
    let request = fetch_request(broker, &partitions);
    let wait = Duration::from_millis(broker.config.replica.fetch_wait_max_ms);
    let response: FetchResponse = connection
        .send_at_with_timeout(
            &request,
            REPLICA_FETCH_VERSION,
            wait + Duration::from_secs(30),
        )
        .await?;
    if response.error_code != code::NONE {
        tracing::debug!(leader, code = response.error_code, "follower fetch refused");
        return Err(FetchError::Refused(response.error_code));
    }
    let by_tp: HashMap<(String, i32), Followed> = partitions
        .into_iter()
        .map(|(p, l)| ((p.tp.topic.clone(), p.tp.partition), (p, l)))
        .collect();
    let mut any_error = false;
    let mut throttled_bytes = 0u64;
    for topic in response.responses {
        for data in topic.partitions {
            let key = (topic.topic.clone(), data.partition_index);
            let Some((partition, leadership)) = by_tp.get(&key) else {
                continue;
            };
            if throttled.contains(&key) {
                throttled_bytes += data.records.len() as u64;
            }
            let partition = Arc::clone(partition);
            let leadership = *leadership;
            let outcome = sluice_runtime::blocking("replica-apply", move || {
                apply_fetched(&partition, leadership, data)
            })
            .await;
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    any_error = true;
                    tracing::debug!(leader, "{e}");
                }
                Err(e) => {
                    any_error = true;
                    tracing::error!(leader, "follower apply task failed: {e}");
                }
            }
        }
    }
    broker
        .throttles
        .follower
        .record(throttled_bytes, broker.throttles.now_ms());
    if any_error {
        // Back off a little so a partition stuck on an error (its leader
        // has not applied the metadata yet) does not spin; the others
        // carry on at the next fetch.
        tokio::time::sleep(Duration::from_millis(
            broker.config.replica.fetch_backoff_ms.min(100),
        ))
        .await;
    }
    Ok(true)
}

/// Splits `partitions` for the follower throttle: returns the partitions
/// to fetch and the `(topic, partition)`s of the throttled ones among them
/// (whose bytes count against the quota). A throttled replica outside the
/// ISR is left out when `exceeded()` says the follower quota is exceeded
/// (asked once, and only if some partition could be left out); replicas in
/// the ISR are always fetched (Kafka's `shouldFollowerThrottle`).
fn select_unthrottled(
    image: &sluice_metadata::MetadataImage,
    me: i32,
    partitions: Vec<Followed>,
    exceeded: impl FnOnce() -> bool,
) -> (Vec<Followed>, std::collections::HashSet<(String, i32)>) {
    let throttled: std::collections::HashSet<(String, i32)> = partitions
        .iter()
        .filter(|(p, _)| throttle::follower_throttled(image, &p.tp.topic, p.tp.partition, me))
        .map(|(p, _)| (p.tp.topic.clone(), p.tp.partition))
        .collect();
    let holdable = |p: &Partition| {
        throttled.contains(&(p.tp.topic.clone(), p.tp.partition))
            && !throttle::in_sync(image, &p.tp.topic, p.tp.partition, me)
    };
    let hold_back = partitions.iter().any(|(p, _)| holdable(p)) && exceeded();
    let partitions = if hold_back {
        partitions
            .into_iter()
            .filter(|(p, _)| !holdable(p))
            .collect()
    } else {
        partitions
    };
    (partitions, throttled)
}

/// The Fetch a follower sends for `partitions`.
fn fetch_request(broker: &Broker, partitions: &[Followed]) -> FetchRequest {
    let config = &broker.config.replica;
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    for (partition, (_, leader_epoch)) in partitions {
        let log = partition.log();
        let last_fetched_epoch = log.leader_epochs().last().map_or(-1, |&(e, _)| e);
        topics
            .entry(partition.tp.topic.clone())
            .or_default()
            .push(FetchPartition {
                partition: partition.tp.partition,
                current_leader_epoch: *leader_epoch,
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch,
                log_start_offset: log.log_start_offset(),
                partition_max_bytes: i32::try_from(config.fetch_max_bytes).unwrap_or(i32::MAX),
                ..Default::default()
            });
    }
    FetchRequest {
        replica_id: broker.config.node_id,
        max_wait_ms: i32::try_from(config.fetch_wait_max_ms).unwrap_or(i32::MAX),
        min_bytes: 1,
        max_bytes: i32::try_from(config.fetch_response_max_bytes).unwrap_or(i32::MAX),
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| FetchTopic {
                topic,
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// What stopped a partition's fetched data from being applied.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    /// The leader refused the partition (it has not applied the same
    /// metadata yet, or leadership moved).
    #[error("{tp}: the leader answered error {code}")]
    Refused {
        /// The partition.
        tp: String,
        /// Kafka error code.
        code: i16,
    },
    /// The local log refused the data.
    #[error("{tp}: {source}")]
    Log {
        /// The partition.
        tp: String,
        /// Why.
        source: sluice_log::LogError,
    },
}

/// Applies one partition's part of a fetch answer: truncates a divergent
/// tail, or appends and (under group commit) fsyncs the records, then
/// takes the leader's high watermark. Blocking.
fn apply_fetched(
    partition: &Partition,
    leadership: (i32, i32),
    data: sluice_protocol::messages::fetch::PartitionData,
) -> Result<(), ApplyError> {
    let tp = || partition.tp.to_string();
    let log_error = |source| ApplyError::Log { tp: tp(), source };
    if data.error_code == code::OFFSET_OUT_OF_RANGE
        && data.log_start_offset > partition.log().log_end_offset()
    {
        // The leader deleted (retention, DeleteRecords) everything from
        // this log's end to its own log start: nothing left to copy there,
        // so start over at the leader's log start (Kafka's follower does
        // the same).
        partition
            .restart_as_follower_at(data.log_start_offset, leadership)
            .map_err(log_error)?;
        return Ok(());
    }
    if data.error_code != code::NONE {
        return Err(ApplyError::Refused {
            tp: tp(),
            code: data.error_code,
        });
    }
    let diverging = data.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        // Cut back to where both logs agree: the end of that epoch on the
        // leader, or on this log if it ends the epoch earlier. If this log
        // never had the epoch, the next fetch compares again from there.
        let local_end = partition
            .log()
            .leader_epoch_end_offset(diverging.epoch)
            .map_or(diverging.end_offset, |(_, end)| end);
        let offset = diverging.end_offset.min(local_end).max(0);
        partition
            .truncate_as_follower(offset, leadership)
            .map_err(log_error)?;
        return Ok(());
    }
    // Decoded records are in memory: this clones a handle.
    let records = data.records.to_bytes().map_err(|source| {
        log_error(sluice_log::LogError::Io {
            op: "read the fetched records of",
            path: partition.log().dir().to_owned(),
            source,
        })
    })?;
    if !records.is_empty()
        && let Some(info) = partition
            .append_as_follower(&records, leadership)
            .map_err(log_error)?
        && partition.is_group_commit()
    {
        // The next fetch tells the leader this offset: it must be on disk.
        partition
            .log()
            .sync_until(info.last_offset + 1)
            .map_err(log_error)?;
    }
    partition.follow_high_watermark(data.high_watermark);
    // DeleteRecords and retention on the leader move its log start; the
    // follower's follows, up to what it holds (Kafka's follower does the
    // same with the fetch answer's log start offset).
    let log = partition.log();
    let log_start = data.log_start_offset.min(log.log_end_offset());
    if log_start > log.log_start_offset() {
        log.advance_log_start_offset(log_start).map_err(log_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use sluice_metadata::MetadataImage;
    use sluice_metadata::topic_config::FOLLOWER_THROTTLED_REPLICAS;

    use super::*;
    use crate::testing::{self, SPREAD};

    /// [`SPREAD`]'s partitions 1 (led by 2) and 4 (led by 4), both followed
    /// here, outside their ISR, and the image they come from.
    async fn followed(dir: &std::path::Path) -> (testing::Node, Vec<Followed>) {
        let node = testing::node_in(dir).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        let partitions = [(1, (2, 5)), (4, (4, 1))]
            .into_iter()
            .map(|(p, leadership)| {
                let partition = node.replicas.partition(SPREAD, p).expect("hosted here");
                (partition, leadership)
            })
            .collect();
        (node, partitions)
    }

    fn with(
        image: &MetadataImage,
        edit: impl FnOnce(&mut sluice_metadata::TopicImage),
    ) -> MetadataImage {
        let mut image = image.clone();
        edit(image.topics.get_mut(SPREAD).expect("spread"));
        image
    }

    fn indexes(partitions: &[Followed]) -> Vec<i32> {
        partitions.iter().map(|(p, _)| p.tp.partition).collect()
    }

    #[tokio::test]
    async fn a_follower_leaves_out_throttled_replicas_outside_the_isr_only_when_exceeded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (node, partitions) = followed(dir.path()).await;
        let listed = with(&node.image(), |t| {
            t.configs
                .insert(FOLLOWER_THROTTLED_REPLICAS.to_owned(), "1:1,4:2".to_owned());
        });
        let key = (SPREAD.to_owned(), 1);

        let (kept, throttled) = select_unthrottled(&listed, 1, partitions.clone(), || false);
        assert_eq!(indexes(&kept), [1, 4], "within the quota: everything");
        assert_eq!(
            throttled,
            std::collections::HashSet::from([key.clone()]),
            "4:2 names another follower"
        );
        let (kept, throttled) = select_unthrottled(&listed, 1, partitions.clone(), || true);
        assert_eq!(indexes(&kept), [4], "exceeded: the throttled one waits");
        assert!(
            throttled.contains(&key),
            "and is still counted when fetched"
        );

        // In the ISR: never left out, and the quota is not even asked.
        let in_sync = with(&listed, |t| {
            t.partitions.get_mut(&1).expect("p1").isr.push(1);
        });
        let asked = Cell::new(false);
        let (kept, throttled) = select_unthrottled(&in_sync, 1, partitions.clone(), || {
            asked.set(true);
            true
        });
        assert_eq!(indexes(&kept), [1, 4]);
        assert!(throttled.contains(&key));
        assert!(!asked.get());

        // No config at all: a replica being added here is throttled.
        let adding = with(&node.image(), |t| {
            t.partitions.get_mut(&4).expect("p4").adding_replicas = vec![1];
        });
        let (kept, throttled) = select_unthrottled(&adding, 1, partitions, || true);
        assert_eq!(indexes(&kept), [1]);
        assert_eq!(
            throttled,
            std::collections::HashSet::from([(SPREAD.to_owned(), 4)])
        );
    }
}
