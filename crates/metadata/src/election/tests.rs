//! Elections as pure functions of an image: each rule of preferred and
//! unclean elections, the all-partitions form, the choice of partitions for
//! automatic balancing, and a property test that elections mixed with
//! fencing, unfencing and ISR changes keep the partition invariants.

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::placement::{
    AlterPartitionRequest, BrokerRegistration, alter_partition_records, fence_broker_records,
    register_broker_records, unfence_broker_records,
};

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

/// Brokers `1..=brokers` registered and unfenced.
fn brokers(brokers: i32) -> MetadataImage {
    let mut image = MetadataImage::default();
    for id in 1..=brokers {
        let registration = BrokerRegistration {
            broker_id: id,
            incarnation_id: Uuid::new_v4(),
            host: format!("b{id}.example"),
            port: 9092,
            rack: None,
            endpoints: Vec::new(),
        };
        let registered = register_broker_records(&image, &registration).expect("register");
        image = apply(&image, &registered.records);
        image = apply(
            &image,
            &unfence_broker_records(&image, id).expect("unfence"),
        );
    }
    image
}

/// One partition's state in a test topic: (leader, replicas, ISR).
type Spec<'a> = (i32, &'a [i32], &'a [i32]);

/// `image` plus topic `name` with one partition per spec, each at leader
/// epoch 3 and partition epoch 4.
fn with_topic(image: &MetadataImage, name: &str, partitions: &[Spec<'_>]) -> MetadataImage {
    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id,
    }];
    for (partition, &(leader, replicas, isr)) in (0..).zip(partitions) {
        records.push(MetadataRecord::Partition {
            topic_id,
            partition,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader_epoch: 3,
            partition_epoch: 4,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        });
    }
    apply(image, &records)
}

fn fence(image: &MetadataImage, broker: i32) -> MetadataImage {
    apply(image, &fence_broker_records(image, broker).expect("fence"))
}

fn partition<'a>(image: &'a MetadataImage, topic: &str, index: i32) -> &'a PartitionImage {
    &image.topics[topic].partitions[&index]
}

fn code_of(result: &Result<MetadataRecord, ApiError>) -> Option<i16> {
    result.as_ref().err().map(|e| e.code)
}

#[test]
fn a_preferred_election_moves_leadership_to_the_first_replica_keeping_the_isr() {
    let image = with_topic(&brokers(3), "t", &[(2, &[1, 2, 3], &[2, 3, 1])]);
    let record = election_record(&image, NODE, ElectionType::Preferred, "t", 0).expect("elected");
    let after = apply(&image, &[record]);
    let p = partition(&after, "t", 0);
    assert_eq!(
        (
            p.leader,
            p.isr.as_slice(),
            p.leader_epoch,
            p.partition_epoch
        ),
        (1, &[2, 3, 1][..], 4, 5)
    );
    assert_eq!(p.replicas, [1, 2, 3]);
}

#[test]
fn a_preferred_election_is_refused_when_not_needed_or_not_possible() {
    let image = with_topic(
        &brokers(3),
        "t",
        &[
            // The preferred replica leads already.
            (1, &[1, 2], &[1, 2]),
            // The preferred replica is out of the ISR.
            (2, &[1, 2], &[2]),
            // The preferred replica is fenced (and so out of the ISR once
            // fenced; here it is fenced below while still listed).
            (2, &[3, 2], &[2, 3]),
        ],
    );
    let image = fence(&image, 3);
    let elect = |index| election_record(&image, NODE, ElectionType::Preferred, "t", index);
    assert_eq!(code_of(&elect(0)), Some(code::ELECTION_NOT_NEEDED));
    assert_eq!(
        code_of(&elect(1)),
        Some(code::PREFERRED_LEADER_NOT_AVAILABLE)
    );
    assert_eq!(
        code_of(&elect(2)),
        Some(code::PREFERRED_LEADER_NOT_AVAILABLE)
    );
    // Unknown topic, unknown partition.
    for (topic, index) in [("missing", 0), ("t", 7)] {
        let refused = election_record(&image, NODE, ElectionType::Preferred, topic, index);
        assert_eq!(code_of(&refused), Some(code::UNKNOWN_TOPIC_OR_PARTITION));
    }
}

#[test]
fn an_unclean_election_leads_a_leaderless_partition_with_the_first_live_replica_alone() {
    // Partition 0 lost its leader (1, last in the ISR) to fencing.
    let image = with_topic(&brokers(3), "t", &[(1, &[1, 2, 3], &[1])]);
    let image = fence(&image, 1);
    let p = partition(&image, "t", 0).clone();
    assert_eq!((p.leader, p.isr.as_slice()), (NO_LEADER, &[1][..]));

    let record = election_record(&image, NODE, ElectionType::Unclean, "t", 0).expect("elected");
    let after = apply(&image, &[record]);
    let q = partition(&after, "t", 0);
    assert_eq!((q.leader, q.isr.as_slice()), (2, &[2][..]));
    assert_eq!(q.leader_epoch, p.leader_epoch + 1);
    assert_eq!(q.partition_epoch, p.partition_epoch + 1);

    // A partition with a leader needs none.
    let refused = election_record(&after, NODE, ElectionType::Unclean, "t", 0);
    assert_eq!(code_of(&refused), Some(code::ELECTION_NOT_NEEDED));
}

#[test]
fn an_unclean_election_prefers_a_live_isr_member_and_needs_a_live_replica() {
    // A leaderless partition whose ISR member 3 is live: written by hand,
    // as no change of ours leaves it so, but the election must not lose
    // data where it need not.
    let image = with_topic(
        &brokers(3),
        "t",
        &[(NO_LEADER, &[2, 3], &[3]), (NO_LEADER, &[1, 2], &[1])],
    );
    let record = election_record(&image, NODE, ElectionType::Unclean, "t", 0).expect("elected");
    let after = apply(&image, &[record]);
    let p = partition(&after, "t", 0);
    assert_eq!((p.leader, p.isr.as_slice()), (3, &[3][..]));

    // Partition 1: both replicas fenced.
    let image = fence(&fence(&image, 1), 2);
    let refused = election_record(&image, NODE, ElectionType::Unclean, "t", 1);
    assert_eq!(
        code_of(&refused),
        Some(code::ELIGIBLE_LEADERS_NOT_AVAILABLE)
    );
}

#[test]
fn electing_all_partitions_leaves_out_those_that_need_no_election() {
    let image = with_topic(
        &brokers(3),
        "t",
        &[
            (1, &[1, 2], &[1, 2]),
            (1, &[2, 1], &[1, 2]),
            (1, &[3, 1], &[1]),
        ],
    );
    let image = with_topic(&image, "u", &[(3, &[3, 2], &[3, 2])]);
    let (records, results) = election_records(&image, NODE, ElectionType::Preferred, None);
    let got: Vec<(&str, i32, Option<i16>)> = results
        .iter()
        .map(|r| {
            (
                r.topic.as_str(),
                r.partition,
                r.result.as_ref().err().map(|e| e.code),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("t", 1, None),
            ("t", 2, Some(code::PREFERRED_LEADER_NOT_AVAILABLE))
        ]
    );
    assert_eq!(records.len(), 1);
    let after = apply(&image, &records);
    assert_eq!(partition(&after, "t", 1).leader, 2);
}

#[test]
fn named_partitions_are_answered_in_order_and_a_repeat_is_refused() {
    let image = with_topic(&brokers(2), "t", &[(2, &[1, 2], &[1, 2])]);
    let named = [
        ("t".to_owned(), 0),
        ("missing".to_owned(), 0),
        ("t".to_owned(), 0),
    ];
    let (records, results) = election_records(&image, NODE, ElectionType::Preferred, Some(&named));
    let codes: Vec<Option<i16>> = results
        .iter()
        .map(|r| r.result.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(code::UNKNOWN_TOPIC_OR_PARTITION),
            Some(code::INVALID_REQUEST)
        ]
    );
    assert_eq!(records.len(), 1, "one record for the partition named twice");
    assert!(check_call_size(MAX_ELECTIONS_PER_CALL).is_ok());
    assert_eq!(
        check_call_size(MAX_ELECTIONS_PER_CALL + 1).map_err(|e| e.code),
        Err(code::INVALID_REQUEST)
    );
}

#[test]
fn a_preferred_election_during_a_reassignment_wants_the_first_target_replica() {
    // A reassignment from [1, 2] to [3, 2]: the replicas list the target
    // first, so 3 is preferred, and it has not joined the ISR yet.
    let image = with_topic(&brokers(3), "t", &[(2, &[1, 2], &[1, 2])]);
    let topic_id = image.topics["t"].topic_id;
    let image = apply(
        &image,
        &[MetadataRecord::Partition {
            topic_id,
            partition: 0,
            leader: 2,
            replicas: vec![3, 2, 1],
            isr: vec![1, 2],
            leader_epoch: 3,
            partition_epoch: 5,
            adding_replicas: vec![3],
            removing_replicas: vec![1],
        }],
    );
    // 3 is not in the ISR yet: it cannot lead.
    let refused = election_record(&image, NODE, ElectionType::Preferred, "t", 0);
    assert_eq!(
        code_of(&refused),
        Some(code::PREFERRED_LEADER_NOT_AVAILABLE)
    );
}

/// `(broker, preferred partitions it does not lead)` spread: broker 1 is
/// preferred for four partitions of `t` and leads one; broker 2 is
/// preferred for four and leads three; broker 3 for two and leads none.
fn imbalanced() -> MetadataImage {
    with_topic(
        &brokers(3),
        "t",
        &[
            (1, &[1, 2], &[1, 2]),
            (2, &[1, 2], &[1, 2]),
            (2, &[1, 2], &[2]),
            (3, &[1, 3], &[1, 3]),
            (2, &[2, 1], &[2, 1]),
            (2, &[2, 3], &[2, 3]),
            (2, &[2, 3], &[2, 3]),
            (3, &[2, 3], &[3, 2]),
            (1, &[3, 1], &[1, 3]),
            (2, &[3, 2], &[2]),
        ],
    )
}

#[test]
fn balancing_picks_the_partitions_of_brokers_past_the_threshold_whose_preferred_can_lead() {
    let image = imbalanced();
    // Broker 1: 3 of 4 (75%) led elsewhere; partition 2 has 1 out of the
    // ISR. Broker 2: 1 of 4 (25%). Broker 3: 2 of 2 (100%); partition 9
    // has 3 out of the ISR.
    let picked = imbalanced_preferred_elections(&image, NODE, 10);
    let t = |i: i32| ("t".to_owned(), i);
    assert_eq!(picked, [t(1), t(3), t(7), t(8)]);
    // At 25% broker 2 is not past the threshold (equal is not more).
    assert_eq!(
        imbalanced_preferred_elections(&image, NODE, 25),
        [t(1), t(3), t(8)]
    );
    assert_eq!(imbalanced_preferred_elections(&image, NODE, 75), [t(8)]);
    assert!(imbalanced_preferred_elections(&image, NODE, 100).is_empty());
    // A fenced preferred broker is skipped. Fencing 3 also moved the
    // leadership of partitions 3 and 7 to their preferred 1 and 2, and
    // left broker 1 with only partition 1 to take back.
    let fenced = fence(&image, 3);
    assert_eq!(imbalanced_preferred_elections(&fenced, NODE, 10), [t(1)]);
    // Electing what balancing picks leaves nothing to pick.
    let (records, results) = election_records(&image, NODE, ElectionType::Preferred, Some(&picked));
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    let balanced = apply(&image, &records);
    assert!(imbalanced_preferred_elections(&balanced, NODE, 10).is_empty());
    for (_, i) in picked {
        let p = partition(&balanced, "t", i);
        assert_eq!(p.leader, p.replicas[0]);
    }
}

#[test]
fn balancing_leaves_partitions_being_reassigned_alone() {
    let image = with_topic(&brokers(3), "t", &[(2, &[1, 2], &[1, 2])]);
    assert_eq!(
        imbalanced_preferred_elections(&image, NODE, 10),
        [("t".to_owned(), 0)]
    );
    let topic_id = image.topics["t"].topic_id;
    let reassigning = apply(
        &image,
        &[MetadataRecord::Partition {
            topic_id,
            partition: 0,
            leader: 2,
            replicas: vec![1, 3, 2],
            isr: vec![1, 2],
            leader_epoch: 3,
            partition_epoch: 5,
            adding_replicas: vec![3],
            removing_replicas: vec![2],
        }],
    );
    assert!(imbalanced_preferred_elections(&reassigning, NODE, 10).is_empty());
}

/// The brokers of the property test.
const BROKERS: i32 = 4;
/// The replica sets of its topic's partitions.
const REPLICAS: [&[i32]; 4] = [&[1, 2, 3], &[2, 3, 4], &[3, 1], &[4, 2, 1]];

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Fence(i32),
    Unfence(i32),
    /// The leader of a partition shrinks its ISR to itself.
    Shrink(i32),
    /// The leader of a partition adds every live replica to its ISR.
    Expand(i32),
    /// An election of one partition, or of all (`None`).
    Elect(ElectionType, Option<i32>),
    /// Automatic balancing at a threshold.
    Balance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let partition = 0..REPLICAS.len() as i32;
    let election = prop_oneof![Just(ElectionType::Preferred), Just(ElectionType::Unclean)];
    prop_oneof![
        (1..=BROKERS).prop_map(Op::Fence),
        (1..=BROKERS).prop_map(Op::Unfence),
        partition.clone().prop_map(Op::Shrink),
        partition.clone().prop_map(Op::Expand),
        (election, proptest::option::of(partition)).prop_map(|(t, p)| Op::Elect(t, p)),
        (0u32..=100).prop_map(Op::Balance),
    ]
}

/// The records of `op` against `image`; a refused change writes nothing.
fn run(image: &MetadataImage, op: &Op) -> Vec<MetadataRecord> {
    match op {
        Op::Fence(b) => fence_broker_records(image, *b).unwrap_or_default(),
        Op::Unfence(b) => unfence_broker_records(image, *b).unwrap_or_default(),
        Op::Shrink(i) | Op::Expand(i) => {
            let p = partition(image, "t", *i);
            if p.leader == NO_LEADER {
                return Vec::new();
            }
            let new_isr = match op {
                Op::Shrink(_) => vec![p.leader],
                _ => p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|&b| placement::is_live(image, NODE, b))
                    .collect(),
            };
            let request = AlterPartitionRequest {
                broker_id: p.leader,
                broker_epoch: -1,
                topic_id: image.topics["t"].topic_id,
                partition: *i,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr,
            };
            alter_partition_records(image, NODE, &request)
                .map(|(records, _)| records)
                .unwrap_or_default()
        }
        Op::Elect(election_type, named) => {
            let named: Option<Vec<(String, i32)>> = named.map(|i| vec![("t".to_owned(), i)]);
            let (records, results) =
                election_records(image, NODE, *election_type, named.as_deref());
            // Exactly the accepted elections write a record.
            let accepted = results.iter().filter(|r| r.result.is_ok()).count();
            assert_eq!(records.len(), accepted, "{results:?}");
            records
        }
        Op::Balance(percentage) => {
            let picked = imbalanced_preferred_elections(image, NODE, *percentage);
            let (records, results) =
                election_records(image, NODE, ElectionType::Preferred, Some(&picked));
            // Balancing picks only partitions a preferred election moves.
            assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
            records
        }
    }
}

/// The invariants of every partition of `after`, and what must not go
/// backwards from `before`.
fn check(before: &MetadataImage, after: &MetadataImage, op: &Op) {
    for (&index, p) in &after.topics["t"].partitions {
        let at = format!("{op:?} t-{index}: {p:?}");
        let old = partition(before, "t", index);
        assert!(!p.isr.is_empty(), "{at}");
        assert!(p.isr.iter().all(|b| p.replicas.contains(b)), "{at}");
        assert_eq!(
            p.isr.iter().collect::<BTreeSet<_>>().len(),
            p.isr.len(),
            "{at}"
        );
        if p.leader == NO_LEADER {
            assert!(
                !p.isr.iter().any(|&b| placement::is_live(after, NODE, b)),
                "a live ISR member would lead: {at}"
            );
        } else {
            assert!(p.isr.contains(&p.leader), "{at}");
            assert!(placement::is_live(after, NODE, p.leader), "{at}");
        }
        assert!(p.leader_epoch >= old.leader_epoch, "{at}");
        assert!(p.partition_epoch >= old.partition_epoch, "{at}");
        if p.leader != old.leader {
            assert!(p.leader_epoch > old.leader_epoch, "{at}");
        }
        if p != old {
            assert!(p.partition_epoch > old.partition_epoch, "{at}");
        }
        if let Op::Elect(ElectionType::Preferred, _) | Op::Balance(_) = op
            && p.leader != old.leader
        {
            assert_eq!(p.leader, p.replicas[0], "{at}");
            assert_eq!(p.isr, old.isr, "a preferred election keeps the ISR: {at}");
        }
    }
}

/// Applies `records` one by one, checking that each partition record
/// carries the partition epoch one above the partition's before it.
fn apply_checked(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut next = image.clone();
    for record in records {
        if let MetadataRecord::Partition {
            topic_id,
            partition,
            partition_epoch,
            ..
        } = record
        {
            let old = &next.topic_by_id(topic_id).expect("topic").partitions[partition];
            assert_eq!(*partition_epoch, old.partition_epoch + 1, "{record:?}");
        }
        next = apply(&next, std::slice::from_ref(record));
    }
    next
}

proptest! {
    #[test]
    fn elections_among_failures_and_isr_changes_keep_the_partition_invariants(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let specs: Vec<Spec<'_>> = REPLICAS.iter().map(|r| (r[0], *r, *r)).collect();
        let mut image = with_topic(&brokers(BROKERS), "t", &specs);
        for op in &ops {
            let records = run(&image, op);
            let next = apply_checked(&image, &records);
            check(&image, &next, op);
            image = next;
        }
    }
}
