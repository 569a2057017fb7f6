//! The balancer's plan: which replicas to move so that no partition keeps a
//! replica on a broker leaving the cluster, and every broker holds a fair
//! share of replicas and preferred leaderships.
//!
//! Pure functions of the image and of what the controller knows about each
//! broker beyond it (lost for long, disk use); the active controller turns
//! the plan into reassignments ([`crate::reassignment`]), so every move is a
//! metadata record, resumes after a controller failover, and keeps every
//! replica it replaces until the new one is in the ISR: a move never leaves
//! a partition with fewer in-sync replicas than it had.
//!
//! The plan is made in rounds, at most [`BalancerConfig::max_moves_in_flight`]
//! partitions moving at once, in this order:
//!
//! 1. evacuate: a replica on a decommissioning, lost or unregistered
//!    broker, or (one at a time) on a broker past the disk high-water
//!    mark, moves to the
//!    eligible broker with the fewest replicas, on a rack the partition
//!    does not use yet when there is one;
//! 2. spread replicas: while the most and least loaded eligible brokers
//!    differ by more than the tolerance, a replica moves from one to the
//!    other;
//! 3. spread preferred leaders: with nothing moving, a partition's replica
//!    order changes so a broker with few preferred leaderships comes first
//!    (no data moves; a preferred election then moves the leader).
//!
//! Steps 2 and 3 leave under-replicated partitions alone.

use std::collections::{BTreeMap, BTreeSet};

use crate::image::{BrokerImage, MetadataImage};
use crate::placement;
use crate::reassignment::ReassignmentRequest;

/// The balancer's settings (`balancer.*` in the broker's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerConfig {
    /// Partitions moving at once, the balancer's and an operator's
    /// together: bounds the replication traffic moves add.
    pub max_moves_in_flight: usize,
    /// How far (percent of the mean, at least one) a broker's replica or
    /// preferred-leader count may be from the mean before replicas move.
    pub imbalance_percent: u32,
    /// Disk use (percent) past which a broker takes no new replica and
    /// sheds replicas.
    pub disk_high_watermark_percent: u8,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            max_moves_in_flight: 8,
            imbalance_percent: 10,
            disk_high_watermark_percent: 80,
        }
    }
}

/// What the controller knows about a broker beyond the image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerHealth {
    /// Gone longer than `balancer.lost_broker_timeout_ms`: its replicas
    /// are re-created elsewhere.
    pub lost: bool,
    /// Its data disk's use, from its last heartbeat.
    pub disk_used_percent: Option<u8>,
}

/// Why a broker gives replicas away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// Decommissioning or lost: every replica leaves.
    All,
    /// Past the disk high-water mark: one replica at a time.
    Disk,
}

/// The brokers and their loads while a plan is made.
struct Loads<'a> {
    image: &'a MetadataImage,
    /// Brokers that may take replicas, by id.
    eligible: BTreeSet<i32>,
    /// Brokers whose replicas leave.
    draining: BTreeMap<i32, Drain>,
    /// Replicas per broker, counting moves in flight at their target.
    replicas: BTreeMap<i32, usize>,
    /// Preferred leaderships (first target replica) per broker.
    preferred: BTreeMap<i32, usize>,
}

impl<'a> Loads<'a> {
    fn new(
        image: &'a MetadataImage,
        node_id: i32,
        config: &BalancerConfig,
        health: &BTreeMap<i32, BrokerHealth>,
    ) -> Loads<'a> {
        let mut eligible = BTreeSet::new();
        let mut draining = BTreeMap::new();
        for b in image.brokers.values() {
            let h = health.get(&b.broker_id).copied().unwrap_or_default();
            let disk_full = h
                .disk_used_percent
                .is_some_and(|p| p >= config.disk_high_watermark_percent);
            if b.decommissioning || h.lost {
                draining.insert(b.broker_id, Drain::All);
            } else if disk_full {
                draining.insert(b.broker_id, Drain::Disk);
            } else if placement::is_live(image, node_id, b.broker_id) {
                eligible.insert(b.broker_id);
            }
        }
        let mut replicas: BTreeMap<i32, usize> = eligible.iter().map(|&b| (b, 0)).collect();
        let mut preferred = replicas.clone();
        for topic in image.topics.values() {
            for p in topic.partitions.values() {
                let target = p.target_replicas();
                for b in &target {
                    *replicas.entry(*b).or_default() += 1;
                }
                if let Some(first) = target.first() {
                    *preferred.entry(*first).or_default() += 1;
                }
            }
        }
        Loads {
            image,
            eligible,
            draining,
            replicas,
            preferred,
        }
    }

    fn rack(&self, broker: i32) -> Option<&str> {
        self.image
            .brokers
            .get(&broker)
            .and_then(|b: &BrokerImage| b.rack.as_deref())
    }

    /// The eligible broker to put a replica of a partition on, whose other
    /// replicas are `others`: a rack they do not use if one has room, then
    /// the fewest replicas, then the lowest id.
    fn best_target(&self, others: &[i32]) -> Option<i32> {
        let used_racks: BTreeSet<Option<&str>> = others.iter().map(|&b| self.rack(b)).collect();
        self.eligible
            .iter()
            .copied()
            .filter(|b| !others.contains(b))
            .min_by_key(|&b| {
                let new_rack = !used_racks.contains(&self.rack(b));
                (!new_rack, self.replicas.get(&b).copied().unwrap_or(0), b)
            })
    }

    fn moved(&mut self, from: i32, to: i32, was_preferred: bool) {
        if let Some(n) = self.replicas.get_mut(&from) {
            *n = n.saturating_sub(1);
        }
        *self.replicas.entry(to).or_default() += 1;
        if was_preferred {
            if let Some(n) = self.preferred.get_mut(&from) {
                *n = n.saturating_sub(1);
            }
            *self.preferred.entry(to).or_default() += 1;
        }
    }

    /// The eligible brokers' (most loaded, least loaded) under `counts`,
    /// if they differ by more than the tolerance.
    fn imbalance(&self, counts: &BTreeMap<i32, usize>, percent: u32) -> Option<Vec<(i32, i32)>> {
        let loads: Vec<(i32, usize)> = self
            .eligible
            .iter()
            .map(|&b| (b, counts.get(&b).copied().unwrap_or(0)))
            .collect();
        if loads.len() < 2 {
            return None;
        }
        let total: usize = loads.iter().map(|(_, n)| n).sum();
        let tolerance = tolerance(total, loads.len(), percent);
        let mut by_load = loads.clone();
        by_load.sort_by_key(|&(b, n)| (std::cmp::Reverse(n), b));
        let (_, max) = by_load[0];
        let (_, min) = by_load[by_load.len() - 1];
        if max - min <= tolerance {
            return None;
        }
        // Every (over, under) pair whose gap exceeds the tolerance, the
        // widest first.
        let mut pairs = Vec::new();
        for &(over, high) in &by_load {
            for &(under, low) in by_load.iter().rev() {
                if high > low && high - low > tolerance {
                    pairs.push((over, under));
                }
            }
        }
        Some(pairs)
    }
}

/// How far from each other two brokers' counts may be: `percent` of the
/// mean of `total` over `brokers`, rounded up, at least one.
pub fn tolerance(total: usize, brokers: usize, percent: u32) -> usize {
    if brokers == 0 {
        return 1;
    }
    let scaled = total.saturating_mul(percent as usize);
    let per = brokers.saturating_mul(100);
    scaled.div_ceil(per).max(1)
}

/// The partition's replicas with `from` replaced by `to` in its place (so a
/// preferred replica's successor is preferred too).
fn replaced(replicas: &[i32], from: i32, to: i32) -> Vec<i32> {
    replicas
        .iter()
        .map(|&b| if b == from { to } else { b })
        .collect()
}

/// The next round of moves for `image`: at most the moves in flight the
/// config leaves room for, none while that many already run. See the
/// module docs for the order.
pub fn plan(
    image: &MetadataImage,
    node_id: i32,
    config: &BalancerConfig,
    health: &BTreeMap<i32, BrokerHealth>,
) -> Vec<ReassignmentRequest> {
    let in_flight = image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.reassignment_in_progress())
        .count();
    let mut budget = config.max_moves_in_flight.saturating_sub(in_flight);
    if budget == 0 {
        return Vec::new();
    }
    let mut loads = Loads::new(image, node_id, config, health);
    if loads.eligible.is_empty() {
        return Vec::new();
    }
    let mut moves = Vec::new();
    let mut moving: BTreeSet<(String, i32)> = BTreeSet::new();

    // 1. Evacuate.
    let mut disk_moves: BTreeSet<i32> = BTreeSet::new();
    'evacuate: for (name, topic) in &image.topics {
        for (&partition, p) in &topic.partitions {
            if p.reassignment_in_progress() {
                continue;
            }
            let mut target = p.replicas.clone();
            for &from in &p.replicas {
                // A broker no longer registered (removed from the cluster)
                // holds nothing anyone can read: like a lost one.
                let unregistered = !image.brokers.contains_key(&from);
                let Some(drain) = loads
                    .draining
                    .get(&from)
                    .copied()
                    .or(unregistered.then_some(Drain::All))
                else {
                    continue;
                };
                if drain == Drain::Disk && !disk_moves.insert(from) {
                    continue;
                }
                let others: Vec<i32> = target.iter().copied().filter(|&b| b != from).collect();
                let Some(to) = loads.best_target(&others) else {
                    continue;
                };
                let was_preferred = target.first() == Some(&from);
                target = replaced(&target, from, to);
                loads.moved(from, to, was_preferred);
            }
            if target != p.replicas {
                moving.insert((name.clone(), partition));
                moves.push(ReassignmentRequest {
                    topic: name.clone(),
                    partition,
                    target: Some(target),
                });
                budget -= 1;
                if budget == 0 {
                    break 'evacuate;
                }
            }
        }
    }

    // 2. Spread replicas.
    while budget > 0 {
        let Some(pairs) = loads.imbalance(&loads.replicas, config.imbalance_percent) else {
            break;
        };
        let Some((name, partition, from, to, target, was_preferred)) =
            pairs.iter().find_map(|&(over, under)| {
                movable(image, &moving, &loads, over, under).map(|(name, partition, target)| {
                    let was_preferred =
                        image.topics[&name].partitions[&partition].replicas.first() == Some(&over);
                    (name, partition, over, under, target, was_preferred)
                })
            })
        else {
            break;
        };
        loads.moved(from, to, was_preferred);
        moving.insert((name.clone(), partition));
        moves.push(ReassignmentRequest {
            topic: name,
            partition,
            target: Some(target),
        });
        budget -= 1;
    }

    // 3. Spread preferred leaders, once nothing moves. A reorder copies
    // no data and completes in the record that starts it.
    if moves.is_empty() && in_flight == 0 {
        let mut reordered: BTreeSet<(String, i32)> = BTreeSet::new();
        while budget > 0 {
            let Some(pairs) = loads.imbalance(&loads.preferred, config.imbalance_percent) else {
                break;
            };
            let Some((over, under, name, partition, target)) =
                pairs.iter().find_map(|&(over, under)| {
                    reorderable(image, &reordered, over, under)
                        .map(|(name, partition, target)| (over, under, name, partition, target))
                })
            else {
                break;
            };
            if let Some(n) = loads.preferred.get_mut(&over) {
                *n = n.saturating_sub(1);
            }
            *loads.preferred.entry(under).or_default() += 1;
            reordered.insert((name.clone(), partition));
            moves.push(ReassignmentRequest {
                topic: name,
                partition,
                target: Some(target),
            });
            budget -= 1;
        }
    }
    moves
}

/// A fully replicated partition, not moving, with a replica on `from` and
/// none on `to`, whose racks stay as spread if `from` is replaced by `to`
/// (Kafka's rack awareness): its name, partition and new replicas. Prefers
/// partitions `from` does not lead, so fewer leaders move.
fn movable(
    image: &MetadataImage,
    moving: &BTreeSet<(String, i32)>,
    loads: &Loads<'_>,
    from: i32,
    to: i32,
) -> Option<(String, i32, Vec<i32>)> {
    let racks = |replicas: &[i32]| {
        replicas
            .iter()
            .map(|&b| loads.rack(b))
            .collect::<BTreeSet<_>>()
            .len()
    };
    let mut led = None;
    for (name, topic) in &image.topics {
        for (&partition, p) in &topic.partitions {
            if p.reassignment_in_progress()
                || moving.contains(&(name.clone(), partition))
                || !p.replicas.contains(&from)
                || p.replicas.contains(&to)
                || p.isr.len() < p.replicas.len()
            {
                continue;
            }
            let target = replaced(&p.replicas, from, to);
            if racks(&target) < racks(&p.replicas) {
                continue;
            }
            if p.leader != from {
                return Some((name.clone(), partition, target));
            }
            if led.is_none() {
                led = Some((name.clone(), partition, target));
            }
        }
    }
    led
}

/// A fully replicated partition not reordered yet this round, preferring
/// `over` (its first replica) with `under` as an in-sync replica: its name,
/// partition and replicas with the two swapped.
fn reorderable(
    image: &MetadataImage,
    reordered: &BTreeSet<(String, i32)>,
    over: i32,
    under: i32,
) -> Option<(String, i32, Vec<i32>)> {
    for (name, topic) in &image.topics {
        for (&partition, p) in &topic.partitions {
            if p.reassignment_in_progress()
                || reordered.contains(&(name.clone(), partition))
                || p.replicas.first() != Some(&over)
                || !p.isr.contains(&under)
                || p.isr.len() < p.replicas.len()
            {
                continue;
            }
            let target = p
                .replicas
                .iter()
                .map(|&b| match b {
                    b if b == over => under,
                    b if b == under => over,
                    b => b,
                })
                .collect();
            return Some((name.clone(), partition, target));
        }
    }
    None
}

/// Most replica sizes one heartbeat reports: a broker reports only its
/// replicas of partitions being moved, which `max_moves_in_flight` bounds
/// far below this; the cap bounds what one heartbeat can make the
/// controller hold.
pub const MAX_REPORTED_REPLICA_SIZES: usize = 4_096;

/// A replica's log size, as its broker reports it in heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaSize {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Bytes in the replica's log.
    pub size_bytes: u64,
}

/// Replica sizes by broker, then by (topic, partition).
pub type ReplicaSizes = BTreeMap<i32, BTreeMap<(String, i32), u64>>;

/// One partition moving, with how much data its new replicas still lack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MoveProgress {
    /// The topic's name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Every replica: the target, then the ones being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
    /// The leader's log size, if it reported one.
    pub bytes_total: Option<u64>,
    /// What the adding replicas still lack, together, if the leader
    /// reported its size (an adding replica that reported nothing lacks
    /// everything).
    pub bytes_left: Option<u64>,
}

/// The moves in flight in `image` with their progress from `sizes`.
pub fn move_progress(image: &MetadataImage, sizes: &ReplicaSizes) -> Vec<MoveProgress> {
    let size = |broker: i32, topic: &str, partition: i32| {
        sizes
            .get(&broker)
            .and_then(|s| s.get(&(topic.to_owned(), partition)))
            .copied()
    };
    crate::reassignment::ongoing_reassignments(image, None)
        .into_iter()
        .map(|m| {
            let leader = image.topics[&m.topic].partitions[&m.partition].leader;
            let bytes_total = size(leader, &m.topic, m.partition);
            let bytes_left = bytes_total.map(|total| {
                m.adding_replicas
                    .iter()
                    .map(|&b| total.saturating_sub(size(b, &m.topic, m.partition).unwrap_or(0)))
                    .sum()
            });
            MoveProgress {
                topic: m.topic,
                partition: m.partition,
                replicas: m.replicas,
                adding_replicas: m.adding_replicas,
                removing_replicas: m.removing_replicas,
                bytes_total,
                bytes_left,
            }
        })
        .collect()
}

/// The rate moves copy data at, from successive samples of the adding
/// replicas' sizes: what they gained between two samples over the time
/// between them, smoothed.
#[derive(Debug, Default)]
pub struct ProgressMeter {
    last: Option<(std::time::Instant, AddingSizes)>,
    rate_bytes_per_s: Option<f64>,
}

/// Adding replicas' sizes by (topic, partition, broker).
type AddingSizes = BTreeMap<(String, i32, i32), u64>;

/// Weight of the newest sample in the smoothed rate.
const RATE_SMOOTHING: f64 = 0.5;

impl ProgressMeter {
    /// Takes a sample at `now` of the adding replicas' sizes in `image`.
    pub fn observe(
        &mut self,
        now: std::time::Instant,
        image: &MetadataImage,
        sizes: &ReplicaSizes,
    ) {
        let mut current = BTreeMap::new();
        for m in crate::reassignment::ongoing_reassignments(image, None) {
            for b in m.adding_replicas {
                if let Some(s) = sizes
                    .get(&b)
                    .and_then(|s| s.get(&(m.topic.clone(), m.partition)))
                {
                    current.insert((m.topic.clone(), m.partition, b), *s);
                }
            }
        }
        if let Some((at, before)) = &self.last {
            let elapsed = now.saturating_duration_since(*at).as_secs_f64();
            if elapsed > 0.0 {
                let gained: u64 = current
                    .iter()
                    .filter_map(|(k, now_size)| before.get(k).map(|b| now_size.saturating_sub(*b)))
                    .sum();
                let sample = gained as f64 / elapsed;
                self.rate_bytes_per_s = Some(match self.rate_bytes_per_s {
                    Some(rate) => rate * (1.0 - RATE_SMOOTHING) + sample * RATE_SMOOTHING,
                    None => sample,
                });
            }
        }
        if current.is_empty() {
            self.rate_bytes_per_s = None;
        }
        self.last = Some((now, current));
    }

    /// The smoothed copy rate, once two samples were taken with moves in
    /// flight.
    pub fn rate_bytes_per_s(&self) -> Option<u64> {
        self.rate_bytes_per_s.map(|r| r.round() as u64)
    }
}

/// Seconds to copy `bytes_left` at `rate`, if it is moving at all.
pub fn eta_s(bytes_left: u64, rate_bytes_per_s: Option<u64>) -> Option<u64> {
    match rate_bytes_per_s {
        Some(rate) if rate > 0 => Some(bytes_left.div_ceil(rate)),
        _ if bytes_left == 0 => Some(0),
        _ => None,
    }
}

/// One broker as the balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerBalance {
    /// Its node id.
    pub broker_id: i32,
    /// Replicas it holds or is receiving.
    pub replicas: usize,
    /// Partitions it leads.
    pub leaders: usize,
    /// Being decommissioned.
    pub decommissioning: bool,
    /// Decommissioning and holding no replica: safe to stop.
    pub drained: bool,
    /// Lost (gone longer than the lost-broker timeout).
    pub lost: bool,
    /// Disk use from its last heartbeat.
    pub disk_used_percent: Option<u8>,
}

/// What `sluice cluster balance status` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BalanceStatus {
    /// Whether the balancer runs.
    pub enabled: bool,
    /// Moves in flight now.
    pub moves: Vec<MoveProgress>,
    /// What the moves in flight still have to copy, as far as reported.
    pub bytes_left: u64,
    /// The rate they copy at, once measured.
    pub rate_bytes_per_s: Option<u64>,
    /// Seconds until they are done at that rate.
    pub eta_s: Option<u64>,
    /// Every registered broker.
    pub brokers: Vec<BrokerBalance>,
}

/// The balance of `image` as `health`, the reported replica `sizes` and
/// the measured copy rate complete it.
pub fn status(
    image: &MetadataImage,
    enabled: bool,
    health: &BTreeMap<i32, BrokerHealth>,
    sizes: &ReplicaSizes,
    rate_bytes_per_s: Option<u64>,
) -> BalanceStatus {
    let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for p in image.topics.values().flat_map(|t| t.partitions.values()) {
        for &b in &p.replicas {
            *replicas.entry(b).or_default() += 1;
        }
        *leaders.entry(p.leader).or_default() += 1;
    }
    let brokers = image
        .brokers
        .values()
        .map(|b| {
            let h = health.get(&b.broker_id).copied().unwrap_or_default();
            let held = replicas.get(&b.broker_id).copied().unwrap_or(0);
            BrokerBalance {
                broker_id: b.broker_id,
                replicas: held,
                leaders: leaders.get(&b.broker_id).copied().unwrap_or(0),
                decommissioning: b.decommissioning,
                drained: b.decommissioning && held == 0,
                lost: h.lost,
                disk_used_percent: h.disk_used_percent,
            }
        })
        .collect();
    let moves = move_progress(image, sizes);
    let bytes_left = moves.iter().filter_map(|m| m.bytes_left).sum();
    BalanceStatus {
        enabled,
        moves,
        bytes_left,
        rate_bytes_per_s,
        eta_s: eta_s(bytes_left, rate_bytes_per_s),
        brokers,
    }
}

#[cfg(test)]
mod tests;
