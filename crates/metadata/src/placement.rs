//! Placement, fencing and the ISR: which brokers hold the replicas of a new
//! partition, who leads each partition as brokers register, are fenced,
//! are unfenced and leave, and which ISR changes a partition leader may
//! make (AlterPartition).
//!
//! Everything here is a pure function of a [`MetadataImage`] and its
//! arguments, returning the [`MetadataRecord`]s of one change (or the
//! [`ApiError`] refusing it); the [`crate::Controller`] commits what they
//! return. Nothing here does I/O or looks at the clock.
//!
//! Invariants every function keeps (checked by the property test below):
//! - a partition's leader is [`NO_LEADER`] or a live broker in its ISR;
//! - a partition without a leader has no live broker in its ISR (so
//!   unfencing an ISR member is what gives it a leader again), and, if its
//!   topic enables `unclean.leader.election.enable`, no live replica at all;
//! - the replicas of a partition are distinct brokers, its ISR a non-empty
//!   subset of them without repeats;
//! - a new partition's ISR is its live replicas, its partition epoch 0;
//! - leader epochs never decrease, and rise by one on every leader change;
//! - every later `partition` record for a partition carries its partition
//!   epoch plus one (leader, ISR or replica change alike);
//! - automatic placement uses only live brokers.
//!
//! "Live" means registered and not fenced, with one bootstrap rule: while
//! the image has no registered broker at all (a data directory written
//! before brokers registered, or a single node without a quorum), this node
//! is the one live broker. The first registration ends that rule.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use sluice_protocol::error::codes as code;
use uuid::Uuid;

use crate::error::ApiError;
use crate::image::{MetadataImage, MetadataRecord, PartitionImage};

/// Kafka's leader id for a partition with no leader (`NO_LEADER`).
pub const NO_LEADER: i32 = -1;

/// Longest `host` a broker may register: a DNS name is at most 253 bytes,
/// and the bound keeps a registration record small.
pub const MAX_BROKER_HOST_LEN: usize = 255;

/// Longest `broker.rack` a broker may register: racks are operator labels,
/// compared on every placement; the bound keeps records small.
pub const MAX_BROKER_RACK_LEN: usize = 255;

/// Most Kafka listeners one broker may register: every record the broker
/// is named in carries them, and no real deployment has more than a few
/// (one per network and security protocol).
pub const MAX_BROKER_ENDPOINTS: usize = 16;

/// A broker that may take new replicas and lead partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableBroker {
    /// Its node id.
    pub id: i32,
    /// Its `broker.rack`, if set.
    pub rack: Option<String>,
}

/// The live brokers of `image`, by id: registered and unfenced, or
/// `node_id` alone while no broker is registered (the bootstrap rule).
pub fn usable_brokers(image: &MetadataImage, node_id: i32) -> Vec<UsableBroker> {
    if image.brokers.is_empty() {
        return vec![UsableBroker {
            id: node_id,
            rack: None,
        }];
    }
    image
        .live_brokers()
        .map(|b| UsableBroker {
            id: b.broker_id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// True if `broker` is live in `image` (see [`usable_brokers`]).
pub fn is_live(image: &MetadataImage, node_id: i32, broker: i32) -> bool {
    if image.brokers.is_empty() {
        return broker == node_id;
    }
    image.brokers.get(&broker).is_some_and(|b| !b.fenced)
}

/// True if `broker` may be named in a manual assignment: registered, fenced
/// or not (Kafka allows fenced replicas; they just cannot lead), or this
/// node under the bootstrap rule.
fn is_registered(image: &MetadataImage, node_id: i32, broker: i32) -> bool {
    if image.brokers.is_empty() {
        return broker == node_id;
    }
    image.brokers.contains_key(&broker)
}

/// The brokers in placement order: grouped by rack (racks in name order, no
/// rack first), then taken one from each rack in turn, so consecutive
/// entries sit on different racks while racks last. Within a rack, by id.
fn rack_alternated(brokers: &[UsableBroker]) -> Vec<&UsableBroker> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<&UsableBroker>> = BTreeMap::new();
    for b in brokers {
        by_rack.entry(b.rack.as_deref()).or_default().push(b);
    }
    for members in by_rack.values_mut() {
        members.sort_by_key(|b| b.id);
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    let mut arranged = Vec::with_capacity(brokers.len());
    for depth in 0..deepest {
        for members in by_rack.values() {
            if let Some(b) = members.get(depth) {
                arranged.push(*b);
            }
        }
    }
    arranged
}

/// Checks a replication factor against the live brokers, as Kafka does.
pub fn check_replication_factor(replication_factor: i16, live: usize) -> Result<(), ApiError> {
    if replication_factor < 1 {
        return Err(ApiError::new(
            code::INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if replication_factor as usize > live {
        return Err(ApiError::new(
            code::INVALID_REPLICATION_FACTOR,
            format!(
                "Replication factor: {replication_factor} larger than available brokers: {live}."
            ),
        ));
    }
    Ok(())
}

/// Assigns replicas to `partitions` across `brokers`, Kafka's rack-aware
/// way: brokers are taken in [`rack_alternated`] order; partition `p`'s
/// first replica (its leader) is broker `(start + p) mod n`, so leaders
/// spread evenly; the other replicas follow at a shift that grows each time
/// the partitions wrap around the brokers, skipping brokers already chosen
/// and racks already holding a replica until every rack holds one.
///
/// `start` is the position of `anchor` (the broker holding partition 0's
/// first replica, when partitions are added to an existing topic, so the
/// round robin continues) or else comes from `seed`, as does the shift:
/// random-ish across calls, the same for the same seed.
pub fn place_replicas(
    brokers: &[UsableBroker],
    partitions: Range<i32>,
    replication_factor: i16,
    seed: u64,
    anchor: Option<i32>,
) -> Result<Vec<Vec<i32>>, ApiError> {
    check_replication_factor(replication_factor, brokers.len())?;
    let arranged = rack_alternated(brokers);
    let n = arranged.len();
    let rf = replication_factor as usize;
    let racks = arranged
        .iter()
        .map(|b| b.rack.as_deref())
        .collect::<BTreeSet<_>>()
        .len();
    let start = anchor
        .and_then(|a| arranged.iter().position(|b| b.id == a))
        .unwrap_or((seed % n as u64) as usize);
    let first_shift = ((seed >> 32) % n as u64) as usize;
    let mut assignments = Vec::with_capacity(partitions.len());
    for partition in partitions {
        // Partition indexes are non-negative (dense from 0).
        let index = usize::try_from(partition).unwrap_or(0);
        let first = (start + index) % n;
        let leader = arranged[first];
        let mut replicas = vec![leader.id];
        let mut racks_used = BTreeSet::from([leader.rack.as_deref()]);
        if rf > 1 {
            // Each wrap of the partitions around the brokers shifts the
            // followers, so the same pairs do not always share partitions.
            let shift = (first_shift + index / n) * racks;
            let mut step = 0;
            for _ in 1..rf {
                // Every n - 1 consecutive steps visit every broker but the
                // first once, and one of them qualifies (an unchosen broker
                // on an unused rack, or any unchosen one once every rack is
                // used), so the bound is never reached.
                let mut chosen = None;
                for _ in 0..n - 1 {
                    let b = arranged[(first + 1 + (shift + step) % (n - 1)) % n];
                    step += 1;
                    let rack_ok =
                        !racks_used.contains(&b.rack.as_deref()) || racks_used.len() == racks;
                    if rack_ok && !replicas.contains(&b.id) {
                        chosen = Some(b);
                        break;
                    }
                }
                let Some(b) =
                    chosen.or_else(|| arranged.iter().copied().find(|b| !replicas.contains(&b.id)))
                else {
                    break; // unreachable: rf <= n was checked
                };
                replicas.push(b.id);
                racks_used.insert(b.rack.as_deref());
            }
        }
        assignments.push(replicas);
    }
    Ok(assignments)
}

/// Checks one partition's manual assignment as Kafka does: not empty, every
/// broker registered, no broker twice, and as many replicas as `expected_rf`
/// (the topic's other partitions) when given.
pub fn check_manual_assignment(
    image: &MetadataImage,
    node_id: i32,
    replicas: &[i32],
    expected_rf: Option<usize>,
) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::new(code::INVALID_REPLICA_ASSIGNMENT, message));
    if replicas.is_empty() {
        return invalid(
            "The manual partition assignment includes an empty replica list.".to_owned(),
        );
    }
    let mut seen = BTreeSet::new();
    for &broker in replicas {
        if !is_registered(image, node_id, broker) {
            return invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            ));
        }
        if !seen.insert(broker) {
            return invalid(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            ));
        }
    }
    if let Some(rf) = expected_rf
        && replicas.len() != rf
    {
        return invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
            replicas.len()
        ));
    }
    Ok(())
}

/// A new partition's replicas, leader and ISR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartition {
    /// Every replica, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The first live replica.
    pub leader: i32,
    /// The live replicas, in replica order (so the leader first).
    pub isr: Vec<i32>,
}

impl NewPartition {
    /// The partition with `replicas`, led by the first live one and with
    /// every live one in sync; `None` if none is live.
    pub fn led_by_first_live(
        image: &MetadataImage,
        node_id: i32,
        replicas: Vec<i32>,
    ) -> Option<Self> {
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|&b| is_live(image, node_id, b))
            .collect();
        let leader = *isr.first()?;
        Some(NewPartition {
            replicas,
            leader,
            isr,
        })
    }

    /// Its `partition` record: leader and partition epoch 0, and an ISR of
    /// every live replica. Every replica of a new partition holds the same
    /// (empty) log, so all are in sync, as Kafka starts them; a fenced or
    /// unregistered one is left out, as Kafka adds only unfenced brokers,
    /// and joins once it has caught up (AlterPartition).
    pub fn record(&self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            leader: self.leader,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }
}

/// Places `partitions` of a topic with `replication_factor` replicas on the
/// live brokers of `image` (see [`place_replicas`]).
pub fn place_new_partitions(
    image: &MetadataImage,
    node_id: i32,
    partitions: Range<i32>,
    replication_factor: i16,
    seed: u64,
    anchor: Option<i32>,
) -> Result<Vec<NewPartition>, ApiError> {
    let live = usable_brokers(image, node_id);
    let placed = place_replicas(&live, partitions, replication_factor, seed, anchor)?;
    // Placement uses only live brokers, so every replica is in sync.
    Ok(placed
        .into_iter()
        .map(|replicas| NewPartition {
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
        })
        .collect())
}

/// A placement seed from a topic id (random per topic) and the first
/// partition placed: deterministic for one call, different across topics.
pub fn seed_of(topic_id: Uuid, first_partition: i32) -> u64 {
    let (high, low) = topic_id.as_u64_pair();
    high ^ low ^ (first_partition as u64).rotate_left(17)
}

/// A broker asking to join the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// Its node id.
    pub broker_id: i32,
    /// Random per process start; tells a restart from a retried request.
    pub incarnation_id: Uuid,
    /// Its Kafka listener's host.
    pub host: String,
    /// Its Kafka listener's port.
    pub port: i32,
    /// Its `broker.rack`, if set.
    pub rack: Option<String>,
    /// Every Kafka listener it serves clients on; `host`/`port` is the
    /// inter-broker one's. Empty from a broker that predates named
    /// listeners.
    pub endpoints: Vec<crate::image::BrokerEndpoint>,
}

/// What registering a broker writes, and the epoch it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The broker's epoch after this registration.
    pub epoch: i64,
    /// The records of the change; empty for a retried registration.
    pub records: Vec<MetadataRecord>,
}

fn not_registered(broker_id: i32) -> ApiError {
    ApiError::new(
        code::BROKER_ID_NOT_REGISTERED,
        format!("Broker ID {broker_id} is not currently registered"),
    )
}

fn invalid_registration(broker_id: i32, why: &str) -> ApiError {
    ApiError::new(
        code::INVALID_REQUEST,
        format!("registration of broker {broker_id} refused: {why}"),
    )
}

/// The records registering `registration`: a `register_broker` record with
/// the next epoch of that id (1 for a new id), and, since a registered
/// broker starts fenced, new leaders for the partitions it led. A retry with
/// the current incarnation writes nothing and returns the current epoch.
pub fn register_broker_records(
    image: &MetadataImage,
    registration: &BrokerRegistration,
) -> Result<Registered, ApiError> {
    let BrokerRegistration {
        broker_id,
        incarnation_id,
        host,
        port,
        rack,
        endpoints,
    } = registration;
    let id = *broker_id;
    if id < 0 {
        return Err(invalid_registration(id, "broker ids are non-negative"));
    }
    if host.is_empty() || host.len() > MAX_BROKER_HOST_LEN {
        return Err(invalid_registration(
            id,
            &format!("host must be 1 to {MAX_BROKER_HOST_LEN} bytes"),
        ));
    }
    if !(1..=i32::from(u16::MAX)).contains(port) {
        return Err(invalid_registration(
            id,
            &format!("port {port} is not 1 to 65535"),
        ));
    }
    if rack
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.len() > MAX_BROKER_RACK_LEN)
    {
        return Err(invalid_registration(
            id,
            &format!("rack must be 1 to {MAX_BROKER_RACK_LEN} bytes"),
        ));
    }
    if endpoints.len() > MAX_BROKER_ENDPOINTS {
        return Err(invalid_registration(
            id,
            &format!("at most {MAX_BROKER_ENDPOINTS} listeners"),
        ));
    }
    for e in endpoints {
        if e.name.is_empty()
            || e.name.len() > MAX_BROKER_HOST_LEN
            || e.host.is_empty()
            || e.host.len() > MAX_BROKER_HOST_LEN
            || !(1..=i32::from(u16::MAX)).contains(&e.port)
        {
            return Err(invalid_registration(
                id,
                &format!(
                    "listener {:?} at {}:{} needs a name, a host of 1 to {MAX_BROKER_HOST_LEN} bytes and a port from 1 to 65535",
                    e.name, e.host, e.port
                ),
            ));
        }
    }
    let previous = image.brokers.get(&id);
    if let Some(current) = previous
        && current.incarnation_id == *incarnation_id
    {
        return Ok(Registered {
            epoch: current.epoch,
            records: Vec::new(),
        });
    }
    let epoch = previous.map_or(1, |b| b.epoch + 1);
    let mut records = vec![MetadataRecord::RegisterBroker {
        broker_id: id,
        incarnation_id: *incarnation_id,
        epoch,
        host: host.clone(),
        port: *port,
        rack: rack.clone(),
        endpoints: endpoints.clone(),
    }];
    // After this record the broker is fenced, and with a first registration
    // the bootstrap rule ends: only registered, unfenced brokers are live.
    let live_after = |b: i32| b != id && image.brokers.get(&b).is_some_and(|x| !x.fenced);
    records.extend(leadership_records(image, Some(id), live_after));
    Ok(Registered { epoch, records })
}

/// The records fencing `broker_id`: a `fence_broker` record, and for every
/// partition it leads a new leader (the first other live ISR member, or
/// [`NO_LEADER`]); it leaves every ISR where it is not the last member.
/// Nothing if it is fenced already.
pub fn fence_broker_records(
    image: &MetadataImage,
    broker_id: i32,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let broker = image
        .brokers
        .get(&broker_id)
        .ok_or_else(|| not_registered(broker_id))?;
    if broker.fenced {
        return Ok(Vec::new());
    }
    let mut records = vec![MetadataRecord::FenceBroker {
        broker_id,
        fenced: true,
    }];
    let live_after = |b: i32| b != broker_id && image.brokers.get(&b).is_some_and(|x| !x.fenced);
    records.extend(leadership_records(image, Some(broker_id), live_after));
    Ok(records)
}

/// The records unfencing `broker_id`: a `fence_broker` record, and the
/// broker as leader of every leaderless partition whose ISR holds it.
/// Nothing if it is unfenced already.
pub fn unfence_broker_records(
    image: &MetadataImage,
    broker_id: i32,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let broker = image
        .brokers
        .get(&broker_id)
        .ok_or_else(|| not_registered(broker_id))?;
    if !broker.fenced {
        return Ok(Vec::new());
    }
    let mut records = vec![MetadataRecord::FenceBroker {
        broker_id,
        fenced: false,
    }];
    let live_after = |b: i32| b == broker_id || image.brokers.get(&b).is_some_and(|x| !x.fenced);
    records.extend(leadership_records(image, None, live_after));
    Ok(records)
}

/// The records removing `broker_id` for good: what fencing it changes in
/// the partitions (if it is not fenced already), then an
/// `unregister_broker` record. It stays in the replica lists, and in ISRs
/// where it is the last member, as Kafka keeps it.
///
/// The last registered broker cannot leave: an image without brokers falls
/// back to the bootstrap rule, which would make this node live again
/// without a registration.
pub fn unregister_broker_records(
    image: &MetadataImage,
    broker_id: i32,
) -> Result<Vec<MetadataRecord>, ApiError> {
    if !image.brokers.contains_key(&broker_id) {
        return Err(not_registered(broker_id));
    }
    if image.brokers.len() == 1 {
        return Err(ApiError::new(
            code::INVALID_REQUEST,
            format!("broker {broker_id} is the last registered broker and cannot be unregistered"),
        ));
    }
    let live_after = |b: i32| b != broker_id && image.brokers.get(&b).is_some_and(|x| !x.fenced);
    let mut records = leadership_records(image, Some(broker_id), live_after);
    records.push(MetadataRecord::UnregisterBroker { broker_id });
    Ok(records)
}

/// The `partition` records that restore the invariants once the brokers
/// for which `live_after` holds are the live ones: `leaving` (a broker
/// being fenced or removed) leaves every ISR it is not the last member of;
/// a partition whose leader is no longer live or in its ISR gets the first
/// live ISR member, or [`NO_LEADER`]; a leaderless partition with a live
/// ISR member gets it. Where no ISR member is live and the topic sets
/// `unclean.leader.election.enable`, the first live replica leads alone
/// (see [`reelect`]). Each record bumps the partition epoch, and a leader
/// change the leader epoch.
fn leadership_records(
    image: &MetadataImage,
    leaving: Option<i32>,
    live_after: impl Fn(i32) -> bool,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        let unclean = unclean_election_enabled(&topic.configs);
        for (&partition, p) in &topic.partitions {
            if let Some((leader, isr)) = reelect(p, leaving, unclean, &live_after) {
                records.push(changed_partition(
                    topic.topic_id,
                    partition,
                    p,
                    leader,
                    isr,
                    &live_after,
                ));
            }
        }
    }
    records
}

/// The record moving `p` to `leader` and `isr`: the same replicas (and
/// reassignment), the partition epoch one higher, the leader epoch one
/// higher if the leader changes; a reassignment whose target replicas are
/// now all in the ISR completes in the same record (see
/// [`complete_reassignment`]).
fn changed_partition(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionImage,
    leader: i32,
    isr: Vec<i32>,
    live: &dyn Fn(i32) -> bool,
) -> MetadataRecord {
    let next = NextPartition {
        leader,
        replicas: p.replicas.clone(),
        isr,
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
    };
    partition_record(topic_id, partition, p, next, live)
}

/// A partition's next state, before it becomes a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NextPartition {
    /// The leader, or [`NO_LEADER`].
    pub(crate) leader: i32,
    /// Every replica.
    pub(crate) replicas: Vec<i32>,
    /// The in-sync replicas.
    pub(crate) isr: Vec<i32>,
    /// Replicas a reassignment adds.
    pub(crate) adding_replicas: Vec<i32>,
    /// Replicas a reassignment removes.
    pub(crate) removing_replicas: Vec<i32>,
}

/// The record moving `p` to `next` (completing its reassignment if it can):
/// the partition epoch one higher, the leader epoch one higher if the
/// leader changes. Every partition change but creation goes through here.
pub(crate) fn partition_record(
    topic_id: Uuid,
    partition: i32,
    p: &PartitionImage,
    mut next: NextPartition,
    live: &dyn Fn(i32) -> bool,
) -> MetadataRecord {
    complete_reassignment(&mut next, live);
    let leader_epoch = if next.leader == p.leader {
        p.leader_epoch
    } else {
        p.leader_epoch.saturating_add(1)
    };
    MetadataRecord::Partition {
        topic_id,
        partition,
        leader: next.leader,
        replicas: next.replicas,
        isr: next.isr,
        leader_epoch,
        partition_epoch: p.partition_epoch.saturating_add(1),
        adding_replicas: next.adding_replicas,
        removing_replicas: next.removing_replicas,
    }
}

/// Completes the reassignment in `next` if every target replica (the
/// replicas less the removing ones) is in the ISR, as Kafka's controller
/// does on any change to the partition: the replicas become the target,
/// the ISR keeps only target replicas, the leader stays if it is a target
/// replica and is otherwise the first live target replica (in replica
/// order, so the preferred one first), and the lists clear.
///
/// It waits instead when the leader would have to move and no target
/// replica is live: completing would leave the partition leaderless while
/// its current (removing) leader still serves it.
fn complete_reassignment(next: &mut NextPartition, live: &dyn Fn(i32) -> bool) {
    if next.adding_replicas.is_empty() && next.removing_replicas.is_empty() {
        return;
    }
    let target: Vec<i32> = next
        .replicas
        .iter()
        .copied()
        .filter(|b| !next.removing_replicas.contains(b))
        .collect();
    if target.is_empty() || !target.iter().all(|b| next.isr.contains(b)) {
        return;
    }
    let leader = if target.contains(&next.leader) {
        next.leader
    } else {
        match target.iter().copied().find(|&b| live(b)) {
            Some(b) => b,
            None if next.leader == NO_LEADER => NO_LEADER,
            None => return,
        }
    };
    next.isr.retain(|b| target.contains(b));
    next.leader = leader;
    next.replicas = target;
    next.adding_replicas.clear();
    next.removing_replicas.clear();
}

/// Kafka's topic config allowing an out-of-sync replica to lead when no
/// in-sync one is live (losing the records it lacks).
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// True if a topic with `configs` allows unclean leader election. Kafka's
/// default is false, and the value was validated as a boolean when set.
pub fn unclean_election_enabled(configs: &BTreeMap<String, String>) -> bool {
    configs
        .get(UNCLEAN_LEADER_ELECTION_ENABLE)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The new leader and ISR of `p`, or `None` if neither changes. With
/// `unclean`, a partition left without a live ISR member is led by its
/// first live replica, whose ISR becomes that replica alone (Kafka's
/// unclean election: the others may hold records it lacks, which are lost).
fn reelect(
    p: &PartitionImage,
    leaving: Option<i32>,
    unclean: bool,
    live_after: impl Fn(i32) -> bool,
) -> Option<(i32, Vec<i32>)> {
    let mut isr = p.isr.clone();
    if let Some(gone) = leaving
        && isr.len() > 1
    {
        // Kafka keeps the last ISR member: it holds the newest data, and
        // when it comes back it can lead again without losing any.
        isr.retain(|&b| b != gone);
    }
    let keeps_leader = p.leader != NO_LEADER && live_after(p.leader) && isr.contains(&p.leader);
    let mut leader = if keeps_leader {
        p.leader
    } else {
        isr.iter()
            .copied()
            .find(|&b| live_after(b))
            .unwrap_or(NO_LEADER)
    };
    if leader == NO_LEADER
        && unclean
        && let Some(replica) = p.replicas.iter().copied().find(|&b| live_after(b))
    {
        leader = replica;
        isr = vec![replica];
    }
    (leader != p.leader || isr != p.isr).then_some((leader, isr))
}

/// The records electing a leader for the leaderless partitions of topic
/// `topic_id` once its configs are `configs`: what turning on
/// `unclean.leader.election.enable` does at once (Kafka's controller does
/// it on its next periodic check). Nothing if `configs` does not enable it.
pub fn unclean_election_records(
    image: &MetadataImage,
    node_id: i32,
    topic_id: Uuid,
    configs: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let Some(topic) = image.topic_by_id(&topic_id) else {
        return Vec::new();
    };
    if !unclean_election_enabled(configs) {
        return Vec::new();
    }
    let live = |b: i32| is_live(image, node_id, b);
    topic
        .partitions
        .iter()
        .filter(|(_, p)| p.leader == NO_LEADER)
        .filter_map(|(&partition, p)| {
            let (leader, isr) = reelect(p, None, true, live)?;
            Some(changed_partition(
                topic_id, partition, p, leader, isr, &live,
            ))
        })
        .collect()
}

/// A partition leader asking to change its ISR: one partition of Kafka's
/// AlterPartition request (the leader shrinks the ISR when a follower
/// falls behind, and expands it when one catches up).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlterPartitionRequest {
    /// The requesting broker: it must lead the partition.
    pub broker_id: i32,
    /// Its broker epoch (its registration's); -1 skips the check.
    pub broker_epoch: i64,
    /// The topic.
    pub topic_id: Uuid,
    /// The partition.
    pub partition: i32,
    /// The leader epoch the leader knows.
    pub leader_epoch: i32,
    /// The partition epoch the change is built on.
    pub partition_epoch: i32,
    /// The ISR it asks for; must hold the leader.
    pub new_isr: Vec<i32>,
}

/// The partition's state after an AlterPartition: what the leader adopts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlterPartitionOutcome {
    /// The leader: unchanged by an AlterPartition, unless it completes a
    /// reassignment that removes the leader.
    pub leader: i32,
    /// The leader epoch (one higher when the leader changed).
    pub leader_epoch: i32,
    /// The partition epoch: one more than the request's, or the request's
    /// own when the ISR asked for is already the ISR.
    pub partition_epoch: i32,
    /// The committed ISR.
    pub isr: Vec<i32>,
}

/// Refuses an AlterPartition with `code`, naming the partition.
fn alter_refused(request: &AlterPartitionRequest, code: i16, why: String) -> ApiError {
    ApiError::new(
        code,
        format!(
            "AlterPartition from broker {} for {}-{} refused: {why}",
            request.broker_id, request.topic_id, request.partition
        ),
    )
}

/// Checks an AlterPartition against `image` in the order Kafka's
/// controller does (`ReplicationControlManager.alterPartition`) and
/// returns the record committing it with its outcome, or no record and the
/// current state when the ISR asked for is the ISR already:
///
/// - `broker_epoch` (unless -1) not the requester's registered epoch:
///   STALE_BROKER_EPOCH;
/// - unknown topic id: UNKNOWN_TOPIC_ID; unknown partition:
///   UNKNOWN_TOPIC_OR_PARTITION;
/// - a leader or partition epoch newer than the image's: NOT_CONTROLLER
///   (this controller is behind; the leader retries and finds the current
///   one);
/// - an older leader epoch: FENCED_LEADER_EPOCH;
/// - a requester that is not the leader, at the current leader epoch:
///   INVALID_REQUEST (Kafka's choice: a broker that claims the current
///   epoch but does not lead is broken, not stale);
/// - an older partition epoch: INVALID_UPDATE_VERSION (the leader waits for
///   the metadata that changed the partition);
/// - an ISR that is empty, names a broker twice or one not among the
///   replicas, or leaves out the leader: INVALID_REQUEST;
/// - an ISR member that is not live (fenced or not registered):
///   INELIGIBLE_REPLICA.
///
/// The record keeps the leader, leader epoch and replicas and bumps the
/// partition epoch. Run inside the commit closure, against the image at
/// commit time, so two racing requests cannot both pass: the second is
/// built on a partition epoch the first consumed.
pub fn alter_partition_records(
    image: &MetadataImage,
    node_id: i32,
    request: &AlterPartitionRequest,
) -> Result<(Vec<MetadataRecord>, AlterPartitionOutcome), ApiError> {
    let refuse = |code: i16, why: String| Err(alter_refused(request, code, why));
    if request.broker_epoch != -1 {
        match image.brokers.get(&request.broker_id) {
            Some(b) if b.epoch == request.broker_epoch => {}
            Some(b) => {
                return refuse(
                    code::STALE_BROKER_EPOCH,
                    format!(
                        "broker epoch {} is not the registered {}",
                        request.broker_epoch, b.epoch
                    ),
                );
            }
            None => {
                return refuse(
                    code::STALE_BROKER_EPOCH,
                    "the broker is not registered".to_owned(),
                );
            }
        }
    }
    let Some(topic) = image.topic_by_id(&request.topic_id) else {
        return refuse(code::UNKNOWN_TOPIC_ID, "unknown topic id".to_owned());
    };
    let Some(p) = topic.partitions.get(&request.partition) else {
        return refuse(
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic `{}` has no such partition", topic.name),
        );
    };
    if request.leader_epoch > p.leader_epoch || request.partition_epoch > p.partition_epoch {
        return refuse(
            code::NOT_CONTROLLER,
            format!(
                "leader epoch {} / partition epoch {} are newer than this controller's {} / {}",
                request.leader_epoch, request.partition_epoch, p.leader_epoch, p.partition_epoch
            ),
        );
    }
    if request.leader_epoch < p.leader_epoch {
        return refuse(
            code::FENCED_LEADER_EPOCH,
            format!(
                "leader epoch {} is older than {}",
                request.leader_epoch, p.leader_epoch
            ),
        );
    }
    if request.broker_id != p.leader {
        return refuse(code::INVALID_REQUEST, format!("the leader is {}", p.leader));
    }
    if request.partition_epoch < p.partition_epoch {
        return refuse(
            code::INVALID_UPDATE_VERSION,
            format!(
                "partition epoch {} is older than {}",
                request.partition_epoch, p.partition_epoch
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for &b in &request.new_isr {
        if !p.replicas.contains(&b) || !seen.insert(b) {
            return refuse(
                code::INVALID_REQUEST,
                format!(
                    "ISR {:?} is not a set of the replicas {:?}",
                    request.new_isr, p.replicas
                ),
            );
        }
    }
    if !seen.contains(&p.leader) {
        return refuse(
            code::INVALID_REQUEST,
            format!(
                "ISR {:?} leaves out the leader {}",
                request.new_isr, p.leader
            ),
        );
    }
    if let Some(b) = request
        .new_isr
        .iter()
        .find(|&&b| !is_live(image, node_id, b))
    {
        return refuse(
            code::INELIGIBLE_REPLICA,
            format!("ISR member {b} is fenced or not registered"),
        );
    }
    let current: BTreeSet<i32> = p.isr.iter().copied().collect();
    if current == seen {
        // Nothing to change: the ISR holds the same brokers already.
        return Ok((
            Vec::new(),
            AlterPartitionOutcome {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                isr: p.isr.clone(),
            },
        ));
    }
    // A reassignment whose last target replica just joined the ISR
    // completes here, which may move the leader (when it was a removing
    // replica): the outcome is what the record says.
    let record = changed_partition(
        request.topic_id,
        request.partition,
        p,
        p.leader,
        request.new_isr.clone(),
        &|b| is_live(image, node_id, b),
    );
    let MetadataRecord::Partition {
        leader,
        leader_epoch,
        partition_epoch,
        isr,
        ..
    } = &record
    else {
        unreachable!("changed_partition builds a partition record");
    };
    let outcome = AlterPartitionOutcome {
        leader: *leader,
        leader_epoch: *leader_epoch,
        partition_epoch: *partition_epoch,
        isr: isr.clone(),
    };
    Ok((vec![record], outcome))
}

#[cfg(test)]
mod tests;
