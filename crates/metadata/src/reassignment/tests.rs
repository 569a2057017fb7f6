//! Reassignment as pure functions of an image: unit tests of each rule
//! (start, replace, cancel, completion, errors, listing) and a property
//! test of the invariants over random sequences of reassignments, cancels,
//! ISR changes, fencing and unfencing over 3 to 5 brokers.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::placement::{
    AlterPartitionOutcome, AlterPartitionRequest, BrokerRegistration, alter_partition_records,
    fence_broker_records, register_broker_records, unfence_broker_records,
};

/// This node's id in the tests.
const NODE: i32 = 1;
/// The topic every test reassigns.
const TOPIC: &str = "t";

fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut next = image.clone();
    for record in records {
        let offset = next.next_offset;
        next.apply(record, offset).expect("records apply");
        next.next_offset += 1;
    }
    next
}

/// Brokers `1..=brokers` registered and unfenced, and topic [`TOPIC`] with
/// one partition on `replicas`, all in sync, led by the first.
fn cluster(brokers: i32, replicas: &[i32]) -> MetadataImage {
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
    let topic_id = Uuid::from_u128(7);
    apply(
        &image,
        &[
            MetadataRecord::Topic {
                name: TOPIC.to_owned(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                leader: replicas[0],
                replicas: replicas.to_vec(),
                isr: replicas.to_vec(),
                leader_epoch: 3,
                partition_epoch: 4,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        ],
    )
}

fn partition(image: &MetadataImage) -> &PartitionImage {
    &image.topics[TOPIC].partitions[&0]
}

fn request(target: Option<&[i32]>) -> ReassignmentRequest {
    ReassignmentRequest {
        topic: TOPIC.to_owned(),
        partition: 0,
        target: target.map(<[i32]>::to_vec),
    }
}

/// `image` after reassigning to `target` (`None`: cancel), which must be
/// accepted.
fn reassign(image: &MetadataImage, target: Option<&[i32]>) -> MetadataImage {
    let record = reassignment_record(image, NODE, &request(target)).expect("accepted");
    apply(image, &record.into_iter().collect::<Vec<_>>())
}

/// The partition leader's AlterPartition to `new_isr`, built on the
/// current state.
fn alter(image: &MetadataImage, new_isr: &[i32]) -> AlterPartitionRequest {
    let p = partition(image);
    AlterPartitionRequest {
        broker_id: p.leader,
        broker_epoch: -1,
        topic_id: image.topics[TOPIC].topic_id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: new_isr.to_vec(),
    }
}

fn isr_change(image: &MetadataImage, new_isr: &[i32]) -> (MetadataImage, AlterPartitionOutcome) {
    let (records, outcome) =
        alter_partition_records(image, NODE, &alter(image, new_isr)).expect("ISR change");
    (apply(image, &records), outcome)
}

#[test]
fn a_reassignment_adds_the_target_first_and_keeps_leader_and_isr() {
    let image = cluster(4, &[1, 2, 3]);
    let before = partition(&image).clone();
    let image = reassign(&image, Some(&[2, 3, 4]));
    let p = partition(&image);
    assert_eq!(p.replicas, [2, 3, 4, 1]);
    assert_eq!(
        (p.adding_replicas.as_slice(), p.removing_replicas.as_slice()),
        (&[4][..], &[1][..])
    );
    assert_eq!((p.leader, p.isr.as_slice()), (1, &[1, 2, 3][..]));
    assert_eq!(p.leader_epoch, before.leader_epoch);
    assert_eq!(p.partition_epoch, before.partition_epoch + 1);
    assert_eq!(p.target_replicas(), [2, 3, 4]);
    assert_eq!(p.original_replicas(), [2, 3, 1]);
}

#[test]
fn the_isr_change_that_brings_the_last_target_replica_in_completes_it() {
    let image = reassign(&cluster(4, &[1, 2, 3]), Some(&[2, 3, 4]));
    let before = partition(&image).clone();
    let (image, outcome) = isr_change(&image, &[1, 2, 3, 4]);
    let p = partition(&image);
    assert_eq!(p.replicas, [2, 3, 4]);
    assert_eq!(p.isr, [2, 3, 4]);
    assert!(!p.reassignment_in_progress());
    // The leader was removed: the first live target replica takes over,
    // with a new leader epoch, and the AlterPartition outcome says so.
    assert_eq!((p.leader, p.leader_epoch), (2, before.leader_epoch + 1));
    assert_eq!(p.partition_epoch, before.partition_epoch + 1);
    assert_eq!(
        outcome,
        AlterPartitionOutcome {
            leader: 2,
            leader_epoch: before.leader_epoch + 1,
            partition_epoch: before.partition_epoch + 1,
            isr: vec![2, 3, 4],
        }
    );
}

#[test]
fn an_isr_change_short_of_the_target_does_not_complete() {
    let image = reassign(&cluster(5, &[1, 2, 3]), Some(&[1, 4, 5]));
    let (image, _) = isr_change(&image, &[1, 2, 3, 4]);
    let p = partition(&image);
    assert_eq!(p.replicas, [1, 4, 5, 2, 3]);
    assert_eq!(
        (p.adding_replicas.as_slice(), p.removing_replicas.as_slice()),
        (&[4, 5][..], &[2, 3][..])
    );
    // A removing replica leaving the ISR changes nothing else either.
    let (image, _) = isr_change(&image, &[1, 3, 4]);
    assert!(partition(&image).reassignment_in_progress());
    let (image, _) = isr_change(&image, &[1, 3, 4, 5]);
    let p = partition(&image);
    assert_eq!(
        (p.replicas.as_slice(), p.isr.as_slice(), p.leader),
        (&[1, 4, 5][..], &[1, 4, 5][..], 1)
    );
    assert!(!p.reassignment_in_progress());
}

#[test]
fn a_fencing_move_completes_a_caught_up_reassignment() {
    // Target already in the ISR except that the ISR also holds a removing
    // replica; a move that rewrites the partition completes it.
    let image = reassign(&cluster(4, &[1, 2, 3]), Some(&[1, 2, 4]));
    let (image, _) = isr_change(&image, &[1, 2]);
    let (image, _) = isr_change(&image, &[1, 2, 4, 3]);
    // That expansion itself completed it (4 was the last target replica).
    let p = partition(&image);
    assert_eq!(
        (p.replicas.as_slice(), p.isr.as_slice()),
        (&[1, 2, 4][..], &[1, 2, 4][..])
    );

    // Now one that waits for a fenced target member: 4 falls out, the
    // leader is fenced, and the move to a new leader completes nothing
    // until 4 is back in the ISR.
    let image = reassign(&cluster(4, &[1, 2, 3]), Some(&[2, 3, 4]));
    let image = apply(&image, &fence_broker_records(&image, 1).expect("fence"));
    let p = partition(&image);
    assert_eq!((p.leader, p.isr.as_slice()), (2, &[2, 3][..]));
    assert!(p.reassignment_in_progress());
    let (image, _) = isr_change(&image, &[2, 3, 4]);
    let p = partition(&image);
    assert_eq!(
        (p.replicas.as_slice(), p.isr.as_slice(), p.leader),
        (&[2, 3, 4][..], &[2, 3, 4][..], 2)
    );
}

#[test]
fn shrinking_the_replication_factor_completes_at_once() {
    let image = reassign(&cluster(3, &[1, 2, 3]), Some(&[1, 2]));
    let p = partition(&image);
    assert_eq!(
        (p.replicas.as_slice(), p.isr.as_slice(), p.leader),
        (&[1, 2][..], &[1, 2][..], 1)
    );
    assert!(!p.reassignment_in_progress());
}

#[test]
fn growing_the_replication_factor_waits_for_every_new_replica() {
    let image = reassign(&cluster(4, &[1, 2]), Some(&[1, 2, 3, 4]));
    let p = partition(&image);
    assert_eq!(
        (p.replicas.as_slice(), p.adding_replicas.as_slice()),
        (&[1, 2, 3, 4][..], &[3, 4][..])
    );
    assert!(p.removing_replicas.is_empty());
    let (image, _) = isr_change(&image, &[1, 2, 3]);
    assert!(partition(&image).reassignment_in_progress());
    let (image, _) = isr_change(&image, &[1, 2, 3, 4]);
    let p = partition(&image);
    assert_eq!((p.replicas.as_slice(), p.isr.len()), (&[1, 2, 3, 4][..], 4));
    assert!(!p.reassignment_in_progress());
}

#[test]
fn a_new_target_replaces_the_one_in_progress_against_the_original_replicas() {
    let image = reassign(&cluster(5, &[1, 2, 3]), Some(&[2, 3, 4]));
    let (image, _) = isr_change(&image, &[1, 2, 3]);
    let image = reassign(&image, Some(&[1, 2, 5]));
    let p = partition(&image);
    // Original [1, 2, 3]: 4 is dropped (it never was a replica), 5 added,
    // 3 removed.
    assert_eq!(p.replicas, [1, 2, 5, 3]);
    assert_eq!(
        (p.adding_replicas.as_slice(), p.removing_replicas.as_slice()),
        (&[5][..], &[3][..])
    );
    // A target equal to the original replicas is a cancel.
    let image = reassign(&image, Some(&[1, 2, 3]));
    let p = partition(&image);
    assert_eq!(p.replicas, [1, 2, 3]);
    assert!(!p.reassignment_in_progress());
}

#[test]
fn cancelling_restores_the_original_replicas_and_moves_an_adding_leader() {
    let image = reassign(&cluster(5, &[1, 2, 3]), Some(&[4, 5, 2]));
    // 4 catches up, listed first, then the leader is fenced: 4 leads.
    let (image, _) = isr_change(&image, &[1, 4, 2, 3]);
    let image = apply(&image, &fence_broker_records(&image, 1).expect("fence"));
    let before = partition(&image).clone();
    assert_eq!((before.leader, before.isr.as_slice()), (4, &[4, 2, 3][..]));

    let image = reassign(&image, None);
    let p = partition(&image);
    // The current replicas ([4, 5, 2, 1, 3]) less the adding ones, in
    // their current order, as Kafka reverts: the original order is not
    // recorded.
    assert_eq!(p.replicas, [2, 1, 3]);
    assert!(!p.reassignment_in_progress());
    assert_eq!(p.isr, [2, 3]);
    assert_eq!((p.leader, p.leader_epoch), (2, before.leader_epoch + 1));
    assert_eq!(p.partition_epoch, before.partition_epoch + 1);

    // Nothing left to cancel.
    let refused = reassignment_record(&image, NODE, &request(None)).expect_err("none");
    assert_eq!(refused.code, code::NO_REASSIGNMENT_IN_PROGRESS);
}

#[test]
fn the_current_replicas_as_target_change_nothing() {
    let image = cluster(3, &[1, 2, 3]);
    assert_eq!(
        reassignment_record(&image, NODE, &request(Some(&[1, 2, 3]))).expect("ok"),
        None
    );
    // A reordering is a change (the preferred leader moves), not a
    // reassignment.
    let image = reassign(&image, Some(&[3, 1, 2]));
    let p = partition(&image);
    assert_eq!((p.replicas.as_slice(), p.leader), (&[3, 1, 2][..], 1));
    assert!(!p.reassignment_in_progress());
}

#[test]
fn bad_requests_get_kafkas_codes() {
    let image = cluster(3, &[1, 2, 3]);
    let cases: Vec<(&str, ReassignmentRequest, i16)> = vec![
        (
            "unknown topic",
            ReassignmentRequest {
                topic: "nope".to_owned(),
                ..request(Some(&[1]))
            },
            code::UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (
            "unknown partition",
            ReassignmentRequest {
                partition: 1,
                ..request(Some(&[1]))
            },
            code::UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (
            "empty",
            request(Some(&[])),
            code::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "repeated",
            request(Some(&[1, 2, 1])),
            code::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "unregistered",
            request(Some(&[1, 9])),
            code::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "cancel nothing",
            request(None),
            code::NO_REASSIGNMENT_IN_PROGRESS,
        ),
    ];
    for (what, req, expected) in cases {
        let err = reassignment_record(&image, NODE, &req).expect_err(what);
        assert_eq!(err.code, expected, "{what}: {}", err.message);
    }
    assert_eq!(code::INVALID_REPLICA_ASSIGNMENT, 39);
    assert_eq!(code::NO_REASSIGNMENT_IN_PROGRESS, 85);
}

#[test]
fn a_change_that_would_empty_the_isr_is_refused() {
    let image = reassign(&cluster(4, &[1, 2]), Some(&[3, 4]));
    // Only the adding replica 3 stays in sync (1 and 2 fenced).
    let (image, _) = isr_change(&image, &[1, 3]);
    let image = apply(&image, &fence_broker_records(&image, 1).expect("fence"));
    assert_eq!(partition(&image).isr, [3]);
    let refused = reassignment_record(&image, NODE, &request(None)).expect_err("empty ISR");
    assert_eq!(refused.code, code::INVALID_REPLICA_ASSIGNMENT);
}

#[test]
fn one_call_names_each_partition_once_and_lists_what_runs() {
    let image = cluster(4, &[1, 2, 3]);
    let (records, results) = reassignment_records(
        &image,
        NODE,
        &[
            request(Some(&[2, 3, 4])),
            request(None),
            request(Some(&[1])),
        ],
    );
    assert_eq!(records.len(), 1);
    let codes: Vec<Option<i16>> = results
        .iter()
        .map(|r| r.result.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(code::INVALID_REQUEST),
            Some(code::INVALID_REQUEST)
        ]
    );
    let image = apply(&image, &records);

    let all = ongoing_reassignments(&image, None);
    assert_eq!(
        all,
        [OngoingReassignment {
            topic: TOPIC.to_owned(),
            partition: 0,
            replicas: vec![2, 3, 4, 1],
            adding_replicas: vec![4],
            removing_replicas: vec![1],
        }]
    );
    let named = BTreeMap::from([(TOPIC.to_owned(), vec![0, 5])]);
    assert_eq!(ongoing_reassignments(&image, Some(&named)), all);
    let other = BTreeMap::from([(TOPIC.to_owned(), vec![1]), ("x".to_owned(), vec![0])]);
    assert!(ongoing_reassignments(&image, Some(&other)).is_empty());
    assert!(check_call_size(MAX_REASSIGNMENTS_PER_CALL).is_ok());
    assert_eq!(
        check_call_size(MAX_REASSIGNMENTS_PER_CALL + 1)
            .expect_err("too many")
            .code,
        code::INVALID_REQUEST
    );
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Reassign(Vec<i32>),
    Cancel,
    Expand(i32),
    Shrink(i32),
    Fence(i32),
    Unfence(i32),
}

/// Ops over brokers `1..=brokers`; targets of 1 to 4 of them.
fn op(brokers: i32) -> impl Strategy<Value = Op> {
    let broker = 1..=brokers;
    let most = (brokers as usize).min(4);
    prop_oneof![
        Just((1..=brokers).collect::<Vec<i32>>())
            .prop_shuffle()
            .prop_flat_map(move |all| (Just(all), 1..=most))
            .prop_map(|(all, n)| Op::Reassign(all[..n].to_vec())),
        Just(Op::Cancel),
        broker.clone().prop_map(Op::Expand),
        broker.clone().prop_map(Op::Expand),
        broker.clone().prop_map(Op::Shrink),
        broker.clone().prop_map(Op::Fence),
        broker.prop_map(Op::Unfence),
    ]
}

fn live(image: &MetadataImage, b: i32) -> bool {
    placement::is_live(image, NODE, b)
}

/// The records for `op`, if the controller accepts it.
fn step(image: &MetadataImage, op: &Op) -> Option<Vec<MetadataRecord>> {
    let p = partition(image);
    match op {
        Op::Reassign(target) => reassignment_record(image, NODE, &request(Some(target)))
            .ok()
            .map(|r| r.into_iter().collect()),
        Op::Cancel => reassignment_record(image, NODE, &request(None))
            .ok()
            .map(|r| r.into_iter().collect()),
        Op::Expand(b) | Op::Shrink(b) => {
            if p.leader == NO_LEADER {
                return None;
            }
            let mut isr = p.isr.clone();
            if matches!(op, Op::Expand(_)) {
                if !isr.contains(b) {
                    isr.push(*b);
                }
            } else {
                isr.retain(|x| x != b);
            }
            alter_partition_records(image, NODE, &alter(image, &isr))
                .ok()
                .map(|(records, _)| records)
        }
        Op::Fence(b) => fence_broker_records(image, *b).ok(),
        Op::Unfence(b) => unfence_broker_records(image, *b).ok(),
    }
}

fn check(image: &MetadataImage, target: Option<&Vec<i32>>) -> Result<(), TestCaseError> {
    let p = partition(image);
    let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
    prop_assert_eq!(
        replicas.len(),
        p.replicas.len(),
        "distinct replicas {:?}",
        p
    );
    prop_assert!(!p.isr.is_empty(), "empty ISR {:?}", p);
    prop_assert!(
        p.isr.iter().all(|b| replicas.contains(b)),
        "ISR outside replicas {:?}",
        p
    );
    prop_assert!(
        p.leader == NO_LEADER || (p.isr.contains(&p.leader) && live(image, p.leader)),
        "leader outside the live ISR {:?}",
        p
    );
    prop_assert!(
        p.leader != NO_LEADER || !p.isr.iter().any(|&b| live(image, b)),
        "leaderless with a live ISR member {:?}",
        p
    );
    prop_assert!(p.adding_replicas.iter().all(|b| replicas.contains(b)));
    prop_assert!(p.removing_replicas.iter().all(|b| replicas.contains(b)));
    prop_assert!(
        p.adding_replicas
            .iter()
            .all(|b| !p.removing_replicas.contains(b))
    );
    if let Some(target) = target {
        prop_assert!(
            target.iter().all(|b| replicas.contains(b)),
            "replicas {:?} lack target {:?}",
            p,
            target
        );
        prop_assert_eq!(&p.target_replicas(), target);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reassignments_keep_the_partition_invariants(
        (brokers, initial, ops) in (3..=5i32).prop_flat_map(|n| (
            Just(n),
            Just((1..=n).collect::<Vec<i32>>()).prop_shuffle(),
            proptest::collection::vec(op(n), 0..40),
        )),
        rf in 1..=3usize,
    ) {
        let mut image = cluster(brokers, &initial[..rf]);
        // The target of the reassignment in progress, as last requested.
        let mut target: Option<Vec<i32>> = None;
        for op in &ops {
            let Some(records) = step(&image, op) else { continue };
            let epoch_before = partition(&image).partition_epoch;
            image = apply(&image, &records);
            let wrote = partition(&image).partition_epoch != epoch_before;
            let p = partition(&image).clone();
            match op {
                Op::Reassign(t) if wrote => target = Some(t.clone()),
                Op::Cancel => target = None,
                _ => {}
            }
            if !p.reassignment_in_progress() {
                target = None;
            }
            check(&image, target.as_ref())?;
            if wrote && p.reassignment_in_progress() {
                // A change left it running: some target replica is out
                // of the ISR, or the leader must move and no target
                // replica is live to take over.
                let t = p.target_replicas();
                let caught_up = t.iter().all(|b| p.isr.contains(b));
                prop_assert!(
                    !caught_up || (!t.contains(&p.leader) && !t.iter().any(|&b| live(&image, b))),
                    "caught up but not completed: {:?}",
                    p
                );
            }
        }
        // Every reassignment finishes once its target replicas are back
        // and catch up.
        if let Some(t) = target {
            for &b in &t {
                if let Some(records) = step(&image, &Op::Unfence(b)) {
                    image = apply(&image, &records);
                }
            }
            for &b in &t {
                if !partition(&image).reassignment_in_progress() {
                    break;
                }
                if let Some(records) = step(&image, &Op::Expand(b)) {
                    image = apply(&image, &records);
                }
                check(&image, None)?;
            }
            let p = partition(&image);
            if p.leader != NO_LEADER {
                prop_assert!(!p.reassignment_in_progress(), "stuck: {:?}", p);
                prop_assert_eq!(&p.replicas, &t);
            }
        }
    }
}
