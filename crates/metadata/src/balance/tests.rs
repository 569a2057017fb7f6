//! The balancer's plan against images: a broker joining, one
//! decommissioned, one lost, a full disk, racks, the in-flight bound,
//! preferred leaders, and a property test that planning and completing
//! moves until nothing is left keeps every partition's replication and
//! ends balanced.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::image::{MetadataRecord, PartitionImage};
use crate::placement::{
    BrokerRegistration, NextPartition, partition_record, register_broker_records,
    unfence_broker_records,
};
use crate::reassignment::reassignment_record;

/// This node's id in the tests.
const NODE: i32 = 1;

fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut next = image.clone();
    for record in records {
        let offset = next.next_offset;
        next.apply(record, offset).expect("records apply");
        next.next_offset += 1;
    }
    next
}

/// Registers and unfences broker `id` on `rack`.
fn join(image: &MetadataImage, id: i32, rack: Option<&str>) -> MetadataImage {
    let registration = BrokerRegistration {
        broker_id: id,
        incarnation_id: Uuid::new_v4(),
        host: format!("b{id}.example"),
        port: 9092,
        rack: rack.map(str::to_owned),
        endpoints: Vec::new(),
    };
    let registered = register_broker_records(image, &registration).expect("register");
    let image = apply(image, &registered.records);
    apply(
        &image,
        &unfence_broker_records(&image, id).expect("unfence"),
    )
}

/// Brokers `1..=brokers` (rack `racks[i % len]` if any), and topic "t" with
/// `partitions` partitions of `rf` replicas placed round-robin, all in
/// sync, led by the first.
fn cluster(brokers: i32, partitions: i32, rf: i32, racks: &[&str]) -> MetadataImage {
    let mut image = MetadataImage::default();
    for id in 1..=brokers {
        let rack = (!racks.is_empty()).then(|| racks[(id - 1) as usize % racks.len()]);
        image = join(&image, id, rack);
    }
    let topic_id = Uuid::from_u128(7);
    let mut records = vec![MetadataRecord::Topic {
        name: "t".to_owned(),
        topic_id,
    }];
    for partition in 0..partitions {
        let replicas: Vec<i32> = (0..rf).map(|i| (partition + i) % brokers + 1).collect();
        records.push(MetadataRecord::Partition {
            topic_id,
            partition,
            leader: replicas[0],
            replicas: replicas.clone(),
            isr: replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        });
    }
    apply(&image, &records)
}

fn decommission(image: &MetadataImage, broker_id: i32) -> MetadataImage {
    apply(
        image,
        &[MetadataRecord::DecommissionBroker {
            broker_id,
            decommissioning: true,
        }],
    )
}

/// Starts `moves` as the controller would, then lets every adding replica
/// catch up, which completes them.
fn run_moves(image: &MetadataImage, moves: &[ReassignmentRequest]) -> MetadataImage {
    let mut image = image.clone();
    for m in moves {
        let record = reassignment_record(&image, NODE, m)
            .expect("the balancer asks only for valid moves")
            .expect("the balancer asks only for moves that change something");
        image = apply(&image, &[record]);
    }
    let live = |b: i32| image.brokers.get(&b).is_some_and(|x| !x.fenced);
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (&partition, p) in &topic.partitions {
            if !p.reassignment_in_progress() {
                continue;
            }
            let isr: Vec<i32> = p.replicas.iter().copied().filter(|&b| live(b)).collect();
            records.push(partition_record(
                topic.topic_id,
                partition,
                p,
                NextPartition {
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr,
                    adding_replicas: p.adding_replicas.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                },
                &live,
            ));
        }
    }
    apply(&image, &records)
}

/// Plans and completes rounds until the plan is empty; panics past
/// `max_rounds`. Returns the image and how many moves ran.
fn settle(
    image: &MetadataImage,
    config: &BalancerConfig,
    health: &BTreeMap<i32, BrokerHealth>,
    max_rounds: usize,
) -> (MetadataImage, usize) {
    let mut image = image.clone();
    let mut total = 0;
    for _ in 0..max_rounds {
        let moves = plan(&image, NODE, config, health);
        assert!(
            moves.len() <= config.max_moves_in_flight,
            "{} moves planned, bound {}",
            moves.len(),
            config.max_moves_in_flight
        );
        if moves.is_empty() {
            return (image, total);
        }
        total += moves.len();
        image = run_moves(&image, &moves);
    }
    panic!("the balancer did not settle in {max_rounds} rounds");
}

fn replica_counts(image: &MetadataImage) -> BTreeMap<i32, usize> {
    let mut counts: BTreeMap<i32, usize> = image.brokers.keys().map(|&b| (b, 0)).collect();
    for p in image.topics.values().flat_map(|t| t.partitions.values()) {
        for &b in &p.replicas {
            *counts.entry(b).or_default() += 1;
        }
    }
    counts
}

fn preferred_counts(image: &MetadataImage) -> BTreeMap<i32, usize> {
    let mut counts: BTreeMap<i32, usize> = image.brokers.keys().map(|&b| (b, 0)).collect();
    for p in image.topics.values().flat_map(|t| t.partitions.values()) {
        *counts.entry(p.replicas[0]).or_default() += 1;
    }
    counts
}

fn spread(counts: &BTreeMap<i32, usize>, brokers: &[i32]) -> usize {
    let loads: Vec<usize> = brokers.iter().map(|b| counts[b]).collect();
    loads.iter().max().unwrap_or(&0) - loads.iter().min().unwrap_or(&0)
}

fn partitions(image: &MetadataImage) -> impl Iterator<Item = &PartitionImage> {
    image.topics.values().flat_map(|t| t.partitions.values())
}

fn assert_replication_kept(image: &MetadataImage, rf: usize) {
    for p in partitions(image) {
        assert!(!p.reassignment_in_progress(), "{p:?}");
        assert_eq!(p.replicas.len(), rf, "{p:?}");
        let distinct: BTreeSet<i32> = p.replicas.iter().copied().collect();
        assert_eq!(distinct.len(), rf, "a broker twice: {p:?}");
        assert!(p.isr.contains(&p.leader), "{p:?}");
    }
}

#[test]
fn a_joining_broker_gets_its_share_of_replicas_and_preferred_leaders() {
    let image = cluster(3, 60, 3, &[]);
    let image = join(&image, 4, None);
    let config = BalancerConfig::default();
    let (settled, moves) = settle(&image, &config, &BTreeMap::new(), 100);
    assert_replication_kept(&settled, 3);
    let brokers = [1, 2, 3, 4];
    let counts = replica_counts(&settled);
    // 180 replicas over 4 brokers: 45 each, within 10 % (5) of each other.
    assert!(
        spread(&counts, &brokers) <= tolerance(180, 4, 10),
        "{counts:?}"
    );
    assert!(counts[&4] >= 40, "{counts:?}");
    let preferred = preferred_counts(&settled);
    assert!(
        spread(&preferred, &brokers) <= tolerance(60, 4, 10),
        "{preferred:?}"
    );
    // No churn: about the 45 moves a perfect plan needs, plus reorders.
    assert!(moves <= 45 + 20, "{moves} moves");
}

#[test]
fn a_balanced_cluster_plans_nothing() {
    let image = cluster(3, 30, 3, &[]);
    assert!(plan(&image, NODE, &BalancerConfig::default(), &BTreeMap::new()).is_empty());
}

#[test]
fn a_decommissioned_broker_is_drained_and_takes_nothing() {
    let image = cluster(4, 40, 2, &[]);
    let image = decommission(&image, 2);
    let (settled, _) = settle(&image, &BalancerConfig::default(), &BTreeMap::new(), 100);
    assert_replication_kept(&settled, 2);
    assert_eq!(replica_counts(&settled)[&2], 0);
    let status = status(&settled, true, &BTreeMap::new(), &ReplicaSizes::new(), None);
    let b2 = status
        .brokers
        .iter()
        .find(|b| b.broker_id == 2)
        .expect("broker 2");
    assert!(b2.decommissioning && b2.drained, "{b2:?}");
    assert!(spread(&replica_counts(&settled), &[1, 3, 4]) <= tolerance(80, 3, 10));
}

#[test]
fn a_lost_brokers_replicas_are_recreated_elsewhere() {
    let image = cluster(4, 40, 3, &[]);
    let health = BTreeMap::from([(
        3,
        BrokerHealth {
            lost: true,
            disk_used_percent: None,
        },
    )]);
    let (settled, _) = settle(&image, &BalancerConfig::default(), &health, 100);
    assert_replication_kept(&settled, 3);
    assert_eq!(replica_counts(&settled)[&3], 0);
}

#[test]
fn a_restart_does_not_end_a_decommission_and_a_snapshot_keeps_it() {
    let image = decommission(&cluster(3, 3, 2, &[]), 2);
    // Broker 2 restarts: it registers (and is unfenced) again.
    let restarted = join(&image, 2, None);
    assert!(restarted.brokers[&2].decommissioning);
    let records = crate::snapshot::snapshot_records(&restarted);
    let rebuilt = apply(&MetadataImage::default(), &records);
    assert!(rebuilt.brokers[&2].decommissioning);
    assert!(!rebuilt.brokers[&1].decommissioning);
}

#[test]
fn replicas_on_an_unregistered_broker_are_recreated_elsewhere() {
    let image = cluster(4, 8, 2, &[]);
    let image = apply(&image, &[MetadataRecord::UnregisterBroker { broker_id: 4 }]);
    let (settled, _) = settle(&image, &BalancerConfig::default(), &BTreeMap::new(), 100);
    assert_replication_kept(&settled, 2);
    assert!(partitions(&settled).all(|p| !p.replicas.contains(&4)));
}

#[test]
fn decommissioning_with_nowhere_to_go_moves_nothing() {
    // Replication factor 3 on 3 brokers: no broker can take broker 3's
    // replicas, so nothing moves and it is not drained.
    let image = decommission(&cluster(3, 10, 3, &[]), 3);
    assert!(plan(&image, NODE, &BalancerConfig::default(), &BTreeMap::new()).is_empty());
    let status = status(&image, true, &BTreeMap::new(), &ReplicaSizes::new(), None);
    assert!(
        status
            .brokers
            .iter()
            .any(|b| b.broker_id == 3 && !b.drained)
    );
}

#[test]
fn a_full_disk_takes_no_replica_and_sheds_one_at_a_time() {
    let image = join(&cluster(3, 30, 2, &[]), 4, None);
    let full = BTreeMap::from([(
        4,
        BrokerHealth {
            lost: false,
            disk_used_percent: Some(95),
        },
    )]);
    let moves = plan(&image, NODE, &BalancerConfig::default(), &full);
    // Broker 4 is empty but full: nothing goes to it.
    assert!(
        moves
            .iter()
            .all(|m| !m.target.as_ref().expect("a move").contains(&4)),
        "{moves:?}"
    );
    let full1 = BTreeMap::from([(
        1,
        BrokerHealth {
            lost: false,
            disk_used_percent: Some(80),
        },
    )]);
    let moves = plan(&image, NODE, &BalancerConfig::default(), &full1);
    let leaving_1 = moves
        .iter()
        .filter(|m| {
            let p = &image.topics[&m.topic].partitions[&m.partition];
            p.replicas.contains(&1) && !m.target.as_ref().expect("a move").contains(&1)
        })
        .count();
    assert_eq!(leaving_1, 1, "{moves:?}");
}

#[test]
fn moves_in_flight_are_bounded() {
    let image = join(&cluster(3, 60, 3, &[]), 4, None);
    let config = BalancerConfig {
        max_moves_in_flight: 3,
        ..BalancerConfig::default()
    };
    let moves = plan(&image, NODE, &config, &BTreeMap::new());
    assert_eq!(moves.len(), 3);
    // Start them without completing: the budget is used up.
    let mut started = image.clone();
    for m in &moves {
        let record = reassignment_record(&started, NODE, m)
            .expect("a valid move")
            .expect("a change");
        started = apply(&started, &[record]);
    }
    assert!(plan(&started, NODE, &config, &BTreeMap::new()).is_empty());
}

#[test]
fn moves_keep_partitions_spread_over_racks() {
    // Racks a, b, a, b: every partition of 2 replicas spans both racks.
    let image = cluster(4, 40, 2, &["a", "b"]);
    let image = join(&image, 5, Some("a"));
    let image = join(&image, 6, Some("b"));
    let (settled, moves) = settle(&image, &BalancerConfig::default(), &BTreeMap::new(), 100);
    assert!(moves > 0);
    for p in partitions(&settled) {
        let racks: BTreeSet<&str> = p
            .replicas
            .iter()
            .map(|b| settled.brokers[b].rack.as_deref().expect("a rack"))
            .collect();
        assert_eq!(racks.len(), 2, "{p:?}");
    }
    let counts = replica_counts(&settled);
    assert!(
        spread(&counts, &[1, 2, 3, 4, 5, 6]) <= tolerance(80, 6, 10),
        "{counts:?}"
    );
}

#[test]
fn under_replicated_partitions_are_not_rebalanced() {
    let mut image = join(&cluster(3, 3, 3, &[]), 4, None);
    for p in image
        .topics
        .get_mut("t")
        .expect("topic")
        .partitions
        .values_mut()
    {
        p.isr.truncate(2);
        if !p.isr.contains(&p.leader) {
            p.leader = p.isr[0];
        }
    }
    assert!(plan(&image, NODE, &BalancerConfig::default(), &BTreeMap::new()).is_empty());
}

/// One partition ("t"-0 on 1 and 2) moving its replica on 2 to 3.
fn one_move() -> MetadataImage {
    let image = cluster(3, 1, 2, &[]);
    let request = ReassignmentRequest {
        topic: "t".to_owned(),
        partition: 0,
        target: Some(vec![1, 3]),
    };
    let record = reassignment_record(&image, NODE, &request)
        .expect("a valid move")
        .expect("a change");
    apply(&image, &[record])
}

fn sizes(entries: &[(i32, u64)]) -> ReplicaSizes {
    let mut sizes = ReplicaSizes::new();
    for &(broker, bytes) in entries {
        sizes
            .entry(broker)
            .or_default()
            .insert(("t".to_owned(), 0), bytes);
    }
    sizes
}

#[test]
fn a_moves_bytes_left_are_what_its_new_replicas_lack_of_the_leaders_log() {
    let image = one_move();
    let progress = move_progress(&image, &sizes(&[(1, 1_000), (3, 400)]));
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].adding_replicas, vec![3]);
    assert_eq!(progress[0].bytes_total, Some(1_000));
    assert_eq!(progress[0].bytes_left, Some(600));
    // The new replica has not reported yet: it lacks everything.
    assert_eq!(
        move_progress(&image, &sizes(&[(1, 1_000)]))[0].bytes_left,
        Some(1_000)
    );
    // The leader has not reported: unknown.
    assert_eq!(
        move_progress(&image, &sizes(&[(3, 10)]))[0].bytes_left,
        None
    );
    let status = status(
        &image,
        true,
        &BTreeMap::new(),
        &sizes(&[(1, 1_000), (3, 400)]),
        Some(200),
    );
    assert_eq!((status.bytes_left, status.eta_s), (600, Some(3)));
}

#[test]
fn the_copy_rate_is_what_new_replicas_gained_over_the_time_between_samples() {
    let image = one_move();
    let start = std::time::Instant::now();
    let mut meter = ProgressMeter::default();
    meter.observe(start, &image, &sizes(&[(1, 1_000), (3, 0)]));
    assert_eq!(
        meter.rate_bytes_per_s(),
        None,
        "one sample measures nothing"
    );
    meter.observe(
        start + std::time::Duration::from_secs(2),
        &image,
        &sizes(&[(1, 1_000), (3, 400)]),
    );
    assert_eq!(meter.rate_bytes_per_s(), Some(200));
    // Smoothed: half the old rate, half the new sample (0 here).
    meter.observe(
        start + std::time::Duration::from_secs(3),
        &image,
        &sizes(&[(1, 1_000), (3, 400)]),
    );
    assert_eq!(meter.rate_bytes_per_s(), Some(100));
    // No move in flight: no rate.
    let settled = cluster(3, 1, 2, &[]);
    meter.observe(
        start + std::time::Duration::from_secs(4),
        &settled,
        &ReplicaSizes::new(),
    );
    assert_eq!(meter.rate_bytes_per_s(), None);
    assert_eq!(eta_s(0, None), Some(0));
    assert_eq!(eta_s(10, None), None);
    assert_eq!(eta_s(10, Some(0)), None);
}

#[test]
fn tolerance_is_a_rounded_up_share_of_the_mean_and_at_least_one() {
    assert_eq!(tolerance(180, 4, 10), 5);
    assert_eq!(tolerance(10, 4, 10), 1);
    assert_eq!(tolerance(0, 0, 10), 1);
    assert_eq!(tolerance(1000, 3, 0), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any cluster shape, with brokers joining, one decommissioned or
    /// lost: planning and completing moves settles, keeps every
    /// partition's replication factor with distinct replicas, drains the
    /// leaving broker when the others can hold its replicas, and leaves
    /// the replica counts within the tolerance.
    #[test]
    fn balancing_settles_and_keeps_replication(
        brokers in 2i32..6,
        joining in 0i32..3,
        partitions in 1i32..40,
        rf in 1i32..4,
        leaving in proptest::option::of((1i32..6, any::<bool>())),
        max_moves in 1usize..10,
    ) {
        let rf = rf.min(brokers);
        let mut image = cluster(brokers, partitions, rf, &[]);
        for id in brokers + 1..=brokers + joining {
            image = join(&image, id, None);
        }
        let all = brokers + joining;
        let mut health = BTreeMap::new();
        let mut gone = None;
        if let Some((id, lost)) = leaving.filter(|(id, _)| *id <= all) {
            gone = Some(id);
            if lost {
                health.insert(id, BrokerHealth { lost: true, disk_used_percent: None });
            } else {
                image = decommission(&image, id);
            }
        }
        let config = BalancerConfig { max_moves_in_flight: max_moves, ..BalancerConfig::default() };
        let (settled, _) = settle(&image, &config, &health, 500);
        assert_replication_kept(&settled, rf as usize);
        let counts = replica_counts(&settled);
        let staying: Vec<i32> = (1..=all).filter(|b| Some(*b) != gone).collect();
        if let Some(id) = gone && staying.len() >= rf as usize {
            prop_assert_eq!(counts[&id], 0);
        }
        if gone.is_none() {
            let total = (partitions * rf) as usize;
            prop_assert!(spread(&counts, &staying) <= tolerance(total, staying.len(), 10),
                "{:?}", counts);
        }
    }
}
