//! Placement and fencing, as pure functions of an image: unit tests of each
//! rule, and a property test of the invariants over random sequences of
//! registrations, fencing, unfencing, removals and topic creations.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

/// This node's id in the tests (the bootstrap broker).
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

fn registration(broker_id: i32, rack: Option<&str>) -> BrokerRegistration {
    BrokerRegistration {
        broker_id,
        incarnation_id: Uuid::new_v4(),
        host: format!("b{broker_id}.example"),
        port: 9092,
        rack: rack.map(str::to_owned),
        endpoints: Vec::new(),
    }
}

/// `image` with `ids` registered and unfenced.
fn with_live(image: &MetadataImage, ids: &[(i32, Option<&str>)]) -> MetadataImage {
    let mut image = image.clone();
    for &(id, rack) in ids {
        let registered =
            register_broker_records(&image, &registration(id, rack)).expect("register");
        image = apply(&image, &registered.records);
        image = apply(
            &image,
            &unfence_broker_records(&image, id).expect("unfence"),
        );
    }
    image
}

/// `image` plus topic `name` with `partitions` placed with `rf` replicas.
fn with_topic(image: &MetadataImage, name: &str, partitions: i32, rf: i16) -> MetadataImage {
    let topic_id = Uuid::new_v4();
    let placed = place_new_partitions(image, NODE, 0..partitions, rf, seed_of(topic_id, 0), None)
        .expect("placed");
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id,
    }];
    records.extend((0..).zip(&placed).map(|(i, p)| p.record(topic_id, i)));
    apply(image, &records)
}

/// `image` plus a topic with one partition of the given replicas, leader and ISR.
fn with_partition(
    image: &MetadataImage,
    name: &str,
    leader: i32,
    replicas: &[i32],
    isr: &[i32],
) -> MetadataImage {
    let topic_id = Uuid::new_v4();
    apply(
        image,
        &[
            MetadataRecord::Topic {
                name: name.to_owned(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                leader,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                leader_epoch: 5,
                partition_epoch: 9,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        ],
    )
}

fn partition<'a>(image: &'a MetadataImage, name: &str) -> &'a PartitionImage {
    &image.topics[name].partitions[&0]
}

fn brokers(ids: &[(i32, Option<&str>)]) -> Vec<UsableBroker> {
    ids.iter()
        .map(|&(id, rack)| UsableBroker {
            id,
            rack: rack.map(str::to_owned),
        })
        .collect()
}

#[test]
fn with_no_registered_broker_this_node_alone_is_live() {
    let empty = MetadataImage::default();
    assert_eq!(usable_brokers(&empty, NODE), brokers(&[(NODE, None)]));
    assert!(is_live(&empty, NODE, NODE) && !is_live(&empty, NODE, 2));
    let placed = place_new_partitions(&empty, NODE, 0..3, 1, 7, None).expect("placed");
    assert!(
        placed
            .iter()
            .all(|p| p.replicas == [NODE] && p.leader == NODE)
    );

    // The first registration ends the rule: a registered broker starts
    // fenced, so nobody is live until one is unfenced.
    let registered = register_broker_records(&empty, &registration(2, None)).expect("register");
    let image = apply(&empty, &registered.records);
    assert!(usable_brokers(&image, NODE).is_empty());
    let refused = place_new_partitions(&image, NODE, 0..1, 1, 7, None).expect_err("nobody live");
    assert_eq!(refused.code, code::INVALID_REPLICATION_FACTOR);
    assert_eq!(
        refused.message,
        "Replication factor: 1 larger than available brokers: 0."
    );
}

#[test]
fn leaders_spread_evenly_and_replicas_are_distinct() {
    let live = brokers(&[
        (1, None),
        (2, None),
        (3, None),
        (4, None),
        (5, None),
        (6, None),
    ]);
    for seed in [0, 1, 17, u64::MAX, 0xdead_beef_0000_0003] {
        let placed = place_replicas(&live, 0..12, 3, seed, None).expect("placed");
        let mut leads = BTreeMap::new();
        for replicas in &placed {
            assert_eq!(replicas.len(), 3);
            assert_eq!(
                replicas.iter().collect::<BTreeSet<_>>().len(),
                3,
                "{replicas:?}"
            );
            *leads.entry(replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(leads.len(), 6, "seed {seed}: every broker leads: {leads:?}");
        assert!(leads.values().all(|&n| n == 2), "seed {seed}: {leads:?}");
    }
}

#[test]
fn replicas_land_on_distinct_racks_while_racks_last() {
    let live = brokers(&[
        (1, Some("a")),
        (2, Some("a")),
        (3, Some("b")),
        (4, Some("b")),
        (5, Some("c")),
        (6, Some("c")),
    ]);
    let rack_of = |id: i32| {
        live.iter()
            .find(|b| b.id == id)
            .and_then(|b| b.rack.clone())
    };
    for seed in 0..20 {
        for (rf, racks) in [(2, 2), (3, 3), (4, 3), (6, 3)] {
            let placed = place_replicas(&live, 0..9, rf, seed, None).expect("placed");
            for replicas in &placed {
                let distinct_brokers = replicas.iter().collect::<BTreeSet<_>>().len();
                assert_eq!(distinct_brokers, rf as usize, "{replicas:?}");
                let used: BTreeSet<_> = replicas.iter().map(|&b| rack_of(b)).collect();
                assert_eq!(used.len(), racks, "rf {rf} seed {seed}: {replicas:?}");
            }
        }
    }
}

#[test]
fn uneven_racks_still_place_distinct_brokers() {
    // One big rack and one small one: three replicas cannot all be on
    // different racks, but they are on different brokers and both racks.
    let live = brokers(&[
        (1, Some("big")),
        (2, Some("big")),
        (3, Some("big")),
        (4, Some("small")),
    ]);
    for seed in 0..20 {
        for replicas in place_replicas(&live, 0..8, 3, seed, None).expect("placed") {
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
            assert!(
                replicas.contains(&4),
                "the small rack holds a replica: {replicas:?}"
            );
        }
    }
}

#[test]
fn a_placement_is_deterministic_for_its_seed() {
    let live = brokers(&[(1, None), (2, None), (3, None), (4, None)]);
    let once = place_replicas(&live, 0..8, 2, 42, None).expect("placed");
    assert_eq!(
        once,
        place_replicas(&live, 0..8, 2, 42, None).expect("placed")
    );
    let starts: BTreeSet<i32> = (0..16)
        .map(|seed| place_replicas(&live, 0..1, 1, seed, None).expect("placed")[0][0])
        .collect();
    assert!(
        starts.len() > 1,
        "different seeds start on different brokers"
    );
}

#[test]
fn added_partitions_continue_the_round_robin_from_partition_zero() {
    let live = brokers(&[(1, None), (2, None), (3, None)]);
    let all = place_replicas(&live, 0..6, 1, 99, None).expect("placed");
    let anchor = all[0][0];
    let added = place_replicas(&live, 3..6, 1, 12345, Some(anchor)).expect("placed");
    assert_eq!(added, all[3..].to_vec());
}

#[test]
fn replication_factors_outside_one_to_live_brokers_are_refused_as_kafka_does() {
    let live = brokers(&[(1, None)]);
    let refused = place_replicas(&live, 0..1, 3, 0, None).expect_err("too few brokers");
    assert_eq!(refused.code, code::INVALID_REPLICATION_FACTOR);
    assert_eq!(
        refused.message,
        "Replication factor: 3 larger than available brokers: 1."
    );
    for rf in [0, -2] {
        let refused = place_replicas(&live, 0..1, rf, 0, None).expect_err("below one");
        assert_eq!(refused.code, code::INVALID_REPLICATION_FACTOR);
    }
}

#[test]
fn manual_assignments_are_checked_as_kafka_checks_them() {
    let image = with_live(
        &MetadataImage::default(),
        &[(1, None), (2, None), (3, None)],
    );
    let check =
        |replicas: &[i32], rf: Option<usize>| check_manual_assignment(&image, NODE, replicas, rf);
    assert!(check(&[3, 1], None).is_ok());
    assert!(check(&[3, 1], Some(2)).is_ok());
    for (replicas, rf, says) in [
        (&[][..], None, "empty replica list"),
        (
            &[1, 9][..],
            None,
            "broker 9, but no such broker is registered",
        ),
        (&[2, 1, 2][..], None, "the broker 2 more than once"),
        (&[1, 2][..], Some(3), "a partition with 2 replica(s)"),
    ] {
        let refused = check(replicas, rf).expect_err(says);
        assert_eq!(refused.code, code::INVALID_REPLICA_ASSIGNMENT);
        assert!(refused.message.contains(says), "{}", refused.message);
    }
    // With no broker registered, only this node may be named.
    let empty = MetadataImage::default();
    assert!(check_manual_assignment(&empty, NODE, &[NODE], None).is_ok());
    assert!(check_manual_assignment(&empty, NODE, &[NODE + 1], None).is_err());
}

#[test]
fn a_manual_partition_is_led_by_its_first_live_replica() {
    let image = with_live(&MetadataImage::default(), &[(1, None), (2, None)]);
    let image = apply(&image, &fence_broker_records(&image, 1).expect("fence"));
    let p = NewPartition::led_by_first_live(&image, NODE, vec![1, 2]).expect("2 is live");
    assert_eq!(p.leader, 2);
    assert!(NewPartition::led_by_first_live(&image, NODE, vec![1]).is_none());
}

#[test]
fn registration_epochs_count_registrations_of_an_id_and_a_retry_writes_nothing() {
    let empty = MetadataImage::default();
    let first = registration(3, Some("r1"));
    let registered = register_broker_records(&empty, &first).expect("register");
    assert_eq!(registered.epoch, 1);
    let image = apply(&empty, &registered.records);
    let broker = &image.brokers[&3];
    assert!(broker.fenced, "a registered broker starts fenced");
    assert_eq!((broker.epoch, broker.rack.as_deref()), (1, Some("r1")));

    let retry = register_broker_records(&image, &first).expect("retry");
    assert_eq!(
        retry,
        Registered {
            epoch: 1,
            records: Vec::new()
        }
    );

    let restarted = registration(3, Some("r1"));
    let again = register_broker_records(&image, &restarted).expect("restart");
    assert_eq!(again.epoch, 2);
    assert_eq!(
        apply(&image, &again.records).brokers[&3].incarnation_id,
        restarted.incarnation_id
    );
}

#[test]
fn registrations_with_bad_fields_are_refused() {
    let image = MetadataImage::default();
    let mut bad = vec![];
    for change in [
        (|r: &mut BrokerRegistration| r.broker_id = -1) as fn(&mut BrokerRegistration),
        |r| r.host.clear(),
        |r| r.host = "h".repeat(MAX_BROKER_HOST_LEN + 1),
        |r| r.port = 0,
        |r| r.port = 65_536,
        |r| r.rack = Some(String::new()),
        |r| r.rack = Some("r".repeat(MAX_BROKER_RACK_LEN + 1)),
    ] {
        let mut r = registration(2, None);
        change(&mut r);
        bad.push(
            register_broker_records(&image, &r)
                .expect_err("refused")
                .code,
        );
    }
    assert!(bad.iter().all(|&c| c == code::INVALID_REQUEST), "{bad:?}");
}

#[test]
fn a_re_registering_leader_loses_its_partitions_until_unfenced() {
    let image = with_live(&MetadataImage::default(), &[(1, None), (2, None)]);
    let image = with_partition(&image, "t", 1, &[1], &[1]);
    let restarted = register_broker_records(&image, &registration(1, None)).expect("register");
    let image = apply(&image, &restarted.records);
    let p = partition(&image, "t");
    assert_eq!(
        (p.leader, p.isr.as_slice(), p.leader_epoch),
        (NO_LEADER, &[1][..], 6)
    );
    let image = apply(&image, &unfence_broker_records(&image, 1).expect("unfence"));
    let p = partition(&image, "t");
    assert_eq!((p.leader, p.leader_epoch), (1, 7));
}

#[test]
fn the_first_registration_ends_the_bootstrap_nodes_leadership() {
    // Partitions from a data directory written before registrations: led
    // by this node, which is no longer live once any broker registers.
    let image = with_topic(&MetadataImage::default(), "old", 2, 1);
    assert!(
        image.topics["old"]
            .partitions
            .values()
            .all(|p| p.leader == NODE)
    );
    let image = with_live(&image, &[(2, None)]);
    for p in image.topics["old"].partitions.values() {
        assert_eq!((p.leader, p.isr.as_slice()), (NO_LEADER, &[NODE][..]));
    }
    // When this node registers and is unfenced, it leads them again.
    let image = with_live(&image, &[(NODE, None)]);
    assert!(
        image.topics["old"]
            .partitions
            .values()
            .all(|p| p.leader == NODE && p.leader_epoch == 2)
    );
}

#[test]
fn fencing_moves_leadership_to_a_live_isr_member_and_drops_the_broker_from_isrs() {
    let image = with_live(
        &MetadataImage::default(),
        &[(1, None), (2, None), (3, None)],
    );
    let image = with_partition(&image, "led", 1, &[1, 2, 3], &[1, 2, 3]);
    let image = with_partition(&image, "follows", 2, &[2, 1], &[2, 1]);
    let image = with_partition(&image, "alone", 1, &[1, 2], &[1]);
    let image = with_partition(&image, "other", 3, &[3], &[3]);
    let records = fence_broker_records(&image, 1).expect("fence");
    assert_eq!(
        records[0],
        MetadataRecord::FenceBroker {
            broker_id: 1,
            fenced: true
        }
    );
    let fenced = apply(&image, &records);
    assert!(fenced.brokers[&1].fenced);
    let p = partition(&fenced, "led");
    assert_eq!(
        (p.leader, p.isr.as_slice(), p.leader_epoch),
        (2, &[2, 3][..], 6)
    );
    let p = partition(&fenced, "follows");
    assert_eq!(
        (p.leader, p.isr.as_slice(), p.leader_epoch),
        (2, &[2][..], 5),
        "no leader change, no new epoch"
    );
    let p = partition(&fenced, "alone");
    assert_eq!(
        (p.leader, p.isr.as_slice(), p.leader_epoch),
        (NO_LEADER, &[1][..], 6),
        "the last ISR member stays"
    );
    assert_eq!(partition(&fenced, "other"), partition(&image, "other"));
    assert_eq!(
        records.len(),
        4,
        "one record per changed partition: {records:?}"
    );

    assert!(
        fence_broker_records(&fenced, 1).expect("again").is_empty(),
        "already fenced"
    );
    let unknown = fence_broker_records(&fenced, 9).expect_err("unknown");
    assert_eq!(unknown.code, code::BROKER_ID_NOT_REGISTERED);

    // Unfencing gives back only the leaderless partitions it is in sync for.
    let records = unfence_broker_records(&fenced, 1).expect("unfence");
    assert_eq!(
        records[0],
        MetadataRecord::FenceBroker {
            broker_id: 1,
            fenced: false
        }
    );
    let back = apply(&fenced, &records);
    let p = partition(&back, "alone");
    assert_eq!((p.leader, p.leader_epoch), (1, 7));
    assert_eq!(
        partition(&back, "led").leader,
        2,
        "leadership does not move back"
    );
    assert_eq!(records.len(), 2);
    assert!(
        unfence_broker_records(&back, 1).expect("again").is_empty(),
        "already unfenced"
    );
}

#[test]
fn unregistering_fences_then_removes_the_broker() {
    let image = with_live(&MetadataImage::default(), &[(1, None), (2, None)]);
    let image = with_partition(&image, "t", 1, &[1, 2], &[1, 2]);
    let records = unregister_broker_records(&image, 1).expect("unregister");
    assert_eq!(
        records.last(),
        Some(&MetadataRecord::UnregisterBroker { broker_id: 1 })
    );
    let gone = apply(&image, &records);
    assert!(!gone.brokers.contains_key(&1));
    let p = partition(&gone, "t");
    assert_eq!(
        (p.leader, p.isr.as_slice(), p.replicas.as_slice()),
        (2, &[2][..], &[1, 2][..])
    );
    let unknown = unregister_broker_records(&gone, 1).expect_err("unknown");
    assert_eq!(unknown.code, code::BROKER_ID_NOT_REGISTERED);
    let last = unregister_broker_records(&gone, 2).expect_err("the last broker");
    assert_eq!(last.code, code::INVALID_REQUEST);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    /// Register the broker; `restart` picks a new incarnation.
    Register {
        id: i32,
        rack: u8,
        restart: bool,
    },
    Fence(i32),
    Unfence(i32),
    Unregister(i32),
    CreateTopic {
        partitions: i32,
        rf: i16,
        seed: u64,
    },
    AddPartitions {
        topic: usize,
        more: i32,
        seed: u64,
    },
    /// The leader of a partition asks for the replicas picked by `mask`
    /// (bit i: replica i) as its ISR; `stale` builds it on the previous
    /// partition epoch.
    AlterIsr {
        topic: usize,
        partition: i32,
        mask: u8,
        stale: bool,
    },
    /// Sets (or resets) `unclean.leader.election.enable` on a topic, as the
    /// controller's config change does.
    SetUnclean {
        topic: usize,
        on: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..5i32;
    prop_oneof![
        1 => (id.clone(), 0..3u8, any::<bool>()).prop_map(|(id, rack, restart)| Op::Register {
            id,
            rack,
            restart
        }),
        2 => id.clone().prop_map(Op::Fence),
        2 => id.clone().prop_map(Op::Unfence),
        1 => id.prop_map(Op::Unregister),
        1 => (1..6i32, 1..4i16, any::<u64>()).prop_map(|(partitions, rf, seed)| Op::CreateTopic {
            partitions,
            rf,
            seed
        }),
        1 => (0..8usize, 1..4i32, any::<u64>()).prop_map(|(topic, more, seed)| Op::AddPartitions {
            topic,
            more,
            seed
        }),
        1 => (0..8usize, 0..4i32, any::<u8>(), any::<bool>()).prop_map(
            |(topic, partition, mask, stale)| Op::AlterIsr {
                topic,
                partition,
                mask,
                stale
            }
        ),
        1 => (0..8usize, any::<bool>()).prop_map(|(topic, on)| Op::SetUnclean { topic, on }),
    ]
}

/// Runs `op` against `image`; `incarnations` remembers each id's current
/// incarnation so a non-restart registration is a retry. Returns the
/// records and, for a placement, the replicas it chose.
fn run(
    image: &MetadataImage,
    op: &Op,
    incarnations: &mut BTreeMap<i32, Uuid>,
) -> Vec<MetadataRecord> {
    match *op {
        Op::Register { id, rack, restart } => {
            let incarnation = *incarnations.entry(id).or_insert_with(Uuid::new_v4);
            let incarnation = if restart { Uuid::new_v4() } else { incarnation };
            incarnations.insert(id, incarnation);
            let registered = register_broker_records(
                image,
                &BrokerRegistration {
                    broker_id: id,
                    incarnation_id: incarnation,
                    host: "h".to_owned(),
                    port: 9092,
                    rack: Some(format!("rack{rack}")),
                    endpoints: Vec::new(),
                },
            )
            .expect("valid registration");
            if let Some(b) = image.brokers.get(&id) {
                let expected = if b.incarnation_id == incarnation {
                    b.epoch
                } else {
                    b.epoch + 1
                };
                assert_eq!(registered.epoch, expected);
            }
            registered.records
        }
        Op::Fence(id) => fence_broker_records(image, id).unwrap_or_default(),
        Op::Unfence(id) => unfence_broker_records(image, id).unwrap_or_default(),
        Op::Unregister(id) => unregister_broker_records(image, id).unwrap_or_default(),
        Op::CreateTopic {
            partitions,
            rf,
            seed,
        } => {
            let live = usable_brokers(image, NODE);
            match place_new_partitions(image, NODE, 0..partitions, rf, seed, None) {
                Ok(placed) => {
                    let topic_id = Uuid::new_v4();
                    let mut records = vec![MetadataRecord::Topic {
                        name: topic_id.to_string(),
                        topic_id,
                    }];
                    records.extend((0..).zip(&placed).map(|(i, p)| p.record(topic_id, i)));
                    check_placed(&live, &placed);
                    records
                }
                Err(e) => {
                    assert_eq!(e.code, code::INVALID_REPLICATION_FACTOR);
                    assert!(rf as usize > live.len());
                    Vec::new()
                }
            }
        }
        Op::AddPartitions { topic, more, seed } => {
            let Some(t) = image.topics.values().nth(topic) else {
                return Vec::new();
            };
            let current = t.partitions.len() as i32;
            let first = &t.partitions[&0];
            let rf = first.replicas.len() as i16;
            let live = usable_brokers(image, NODE);
            match place_new_partitions(
                image,
                NODE,
                current..current + more,
                rf,
                seed,
                first.replicas.first().copied(),
            ) {
                Ok(placed) => {
                    check_placed(&live, &placed);
                    (current..)
                        .zip(&placed)
                        .map(|(i, p)| p.record(t.topic_id, i))
                        .collect()
                }
                Err(_) => {
                    assert!(rf as usize > live.len());
                    Vec::new()
                }
            }
        }
        Op::AlterIsr {
            topic,
            partition,
            mask,
            stale,
        } => {
            let Some(t) = image.topics.values().nth(topic) else {
                return Vec::new();
            };
            let Some(p) = t.partitions.get(&partition) else {
                return Vec::new();
            };
            let new_isr: Vec<i32> = (0..)
                .zip(&p.replicas)
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, &b)| b)
                .collect();
            let request = AlterPartitionRequest {
                broker_id: p.leader,
                broker_epoch: -1,
                topic_id: t.topic_id,
                partition,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch - i32::from(stale),
                new_isr: new_isr.clone(),
            };
            match alter_partition_records(image, NODE, &request) {
                Ok((records, outcome)) => {
                    assert!(!stale, "a stale partition epoch commits nothing");
                    assert_eq!(
                        outcome.isr.iter().collect::<BTreeSet<_>>(),
                        new_isr.iter().collect::<BTreeSet<_>>()
                    );
                    assert_eq!(
                        (outcome.leader, outcome.leader_epoch),
                        (p.leader, p.leader_epoch)
                    );
                    records
                }
                Err(e) => {
                    let valid = !stale
                        && p.leader != NO_LEADER
                        && new_isr.contains(&p.leader)
                        && new_isr.iter().all(|&b| is_live(image, NODE, b));
                    assert!(!valid, "a valid request refused: {e:?} {request:?}");
                    Vec::new()
                }
            }
        }
        Op::SetUnclean { topic, on } => {
            let Some(t) = image.topics.values().nth(topic) else {
                return Vec::new();
            };
            let mut configs = t.configs.clone();
            if on {
                configs.insert(UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(), "true".to_owned());
            } else {
                configs.remove(UNCLEAN_LEADER_ELECTION_ENABLE);
            }
            let mut records = vec![MetadataRecord::TopicConfig {
                topic_id: t.topic_id,
                name: UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(),
                value: on.then(|| "true".to_owned()),
            }];
            records.extend(unclean_election_records(image, NODE, t.topic_id, &configs));
            records
        }
    }
}

/// Applies one change record by record, checking each `partition` record
/// against the partition as it stands just before it: a new partition
/// starts at partition epoch 0 with its live replicas in sync, and every
/// later record carries the partition epoch plus one.
fn apply_checked(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
    let mut next = image.clone();
    for record in records {
        if let MetadataRecord::Partition {
            topic_id,
            partition,
            replicas,
            isr,
            partition_epoch,
            ..
        } = record
        {
            let at = format!("{record:?}");
            match next
                .topic_by_id(topic_id)
                .and_then(|t| t.partitions.get(partition))
            {
                Some(old) => assert_eq!(*partition_epoch, old.partition_epoch + 1, "{at}"),
                None => {
                    assert_eq!(*partition_epoch, 0, "{at}");
                    let live: Vec<i32> = replicas
                        .iter()
                        .copied()
                        .filter(|&b| is_live(&next, NODE, b))
                        .collect();
                    assert_eq!(isr, &live, "{at}");
                }
            }
        }
        next = apply(&next, std::slice::from_ref(record));
    }
    next
}

/// Automatic placement uses only live brokers, distinct per partition, led
/// by the first.
fn check_placed(live: &[UsableBroker], placed: &[NewPartition]) {
    for p in placed {
        assert!(
            p.replicas.iter().all(|r| live.iter().any(|b| b.id == *r)),
            "{p:?} on {live:?}"
        );
        assert_eq!(
            p.replicas.iter().collect::<BTreeSet<_>>().len(),
            p.replicas.len()
        );
        assert_eq!(p.leader, p.replicas[0]);
    }
}

/// The invariants every image reached must keep, and what must not go
/// backwards from `before` to `after`.
fn check_invariants(before: &MetadataImage, after: &MetadataImage) {
    for topic in after.topics.values() {
        for (index, p) in &topic.partitions {
            let at = format!("{}-{index}: {p:?}", topic.name);
            assert_eq!(
                p.replicas.iter().collect::<BTreeSet<_>>().len(),
                p.replicas.len(),
                "{at}"
            );
            assert!(
                !p.isr.is_empty() && p.isr.iter().all(|b| p.replicas.contains(b)),
                "{at}"
            );
            assert_eq!(
                p.isr.iter().collect::<BTreeSet<_>>().len(),
                p.isr.len(),
                "{at}"
            );
            if p.leader == NO_LEADER {
                assert!(
                    !p.isr.iter().any(|&b| is_live(after, NODE, b)),
                    "a live ISR member would lead: {at}"
                );
                if unclean_election_enabled(&topic.configs) {
                    assert!(
                        !p.replicas.iter().any(|&b| is_live(after, NODE, b)),
                        "a live replica would lead uncleanly: {at}"
                    );
                }
            } else {
                assert!(
                    p.isr.contains(&p.leader) && is_live(after, NODE, p.leader),
                    "{at}"
                );
            }
            if let Some(old) = before
                .topics
                .get(&topic.name)
                .and_then(|t| t.partitions.get(index))
            {
                assert!(p.leader_epoch >= old.leader_epoch, "{at}");
                if p.leader != old.leader {
                    assert_eq!(p.leader_epoch, old.leader_epoch + 1, "{at}");
                }
            }
        }
    }
    for (id, b) in &after.brokers {
        if let Some(old) = before.brokers.get(id) {
            assert!(b.epoch >= old.epoch, "broker {id}");
        }
    }
}

proptest! {
    #[test]
    fn any_sequence_of_broker_and_topic_changes_keeps_the_invariants(
        ops in proptest::collection::vec(op(), 1..40),
        start_with_brokers in any::<bool>(),
    ) {
        // Half the runs start from the bootstrap rule, half with four live
        // brokers, so replicated topics and their failures come early.
        let mut image = MetadataImage::default();
        if start_with_brokers {
            image = with_live(&image, &[(0, None), (1, None), (2, None), (3, None)]);
        }
        let mut incarnations = BTreeMap::new();
        for op in &ops {
            let records = run(&image, op, &mut incarnations);
            let next = apply_checked(&image, &records);
            check_invariants(&image, &next);
            image = next;
        }
    }
}

#[test]
fn a_new_partition_is_in_sync_on_its_live_replicas() {
    let image = with_live(
        &MetadataImage::default(),
        &[(1, None), (2, None), (3, None)],
    );
    let placed = place_new_partitions(&image, NODE, 0..4, 3, 11, None).expect("placed");
    for p in &placed {
        assert_eq!(p.isr, p.replicas, "every placed replica is live: {p:?}");
    }
    let topic_id = Uuid::from_u128(7);
    assert_eq!(
        placed[0].record(topic_id, 0),
        MetadataRecord::Partition {
            topic_id,
            partition: 0,
            leader: placed[0].replicas[0],
            replicas: placed[0].replicas.clone(),
            isr: placed[0].replicas.clone(),
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    );

    // A manual assignment naming a fenced and an unregistered-then-gone
    // broker: only the live replicas start in sync.
    let image = with_live(&image, &[(4, None)]);
    let image = apply(&image, &fence_broker_records(&image, 1).expect("fence"));
    let p = NewPartition::led_by_first_live(&image, NODE, vec![1, 3, 4, 2]).expect("live");
    assert_eq!((p.leader, p.isr.as_slice()), (3, &[3, 4, 2][..]));
    // The bootstrap rule: this node alone is live, so alone in sync.
    let p = NewPartition::led_by_first_live(&MetadataImage::default(), NODE, vec![NODE])
        .expect("bootstrap");
    assert_eq!(p.isr, [NODE]);
}

/// Three live brokers (epoch 1 each), broker 4 registered but fenced, and
/// topic `t`: leader 1, replicas [1, 2, 3, 4], ISR [1, 2], leader epoch 5,
/// partition epoch 9.
fn alter_setup() -> (MetadataImage, Uuid) {
    let image = with_live(
        &MetadataImage::default(),
        &[(1, None), (2, None), (3, None), (4, None)],
    );
    let image = apply(&image, &fence_broker_records(&image, 4).expect("fence"));
    let image = with_partition(&image, "t", 1, &[1, 2, 3, 4], &[1, 2]);
    let topic_id = image.topics["t"].topic_id;
    (image, topic_id)
}

fn alter(topic_id: Uuid, new_isr: &[i32]) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: 1,
        topic_id,
        partition: 0,
        leader_epoch: 5,
        partition_epoch: 9,
        new_isr: new_isr.to_vec(),
    }
}

#[test]
fn alter_partition_expands_and_shrinks_the_isr_bumping_only_the_partition_epoch() {
    let (image, topic_id) = alter_setup();
    let (records, outcome) =
        alter_partition_records(&image, NODE, &alter(topic_id, &[1, 2, 3])).expect("expand");
    assert_eq!(
        outcome,
        AlterPartitionOutcome {
            leader: 1,
            leader_epoch: 5,
            partition_epoch: 10,
            isr: vec![1, 2, 3],
        }
    );
    assert_eq!(
        records,
        [MetadataRecord::Partition {
            topic_id,
            partition: 0,
            leader: 1,
            replicas: vec![1, 2, 3, 4],
            isr: vec![1, 2, 3],
            leader_epoch: 5,
            partition_epoch: 10,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }]
    );
    let expanded = apply(&image, &records);

    // The next change is built on the committed partition epoch; broker
    // epoch -1 skips the broker epoch check.
    let shrink = AlterPartitionRequest {
        broker_epoch: -1,
        partition_epoch: 10,
        ..alter(topic_id, &[1])
    };
    let (records, outcome) = alter_partition_records(&expanded, NODE, &shrink).expect("shrink");
    assert_eq!(
        (outcome.isr.as_slice(), outcome.partition_epoch),
        (&[1][..], 11)
    );
    let shrunk = apply(&expanded, &records);
    let p = partition(&shrunk, "t");
    assert_eq!(
        (
            p.leader,
            p.isr.as_slice(),
            p.leader_epoch,
            p.partition_epoch
        ),
        (1, &[1][..], 5, 11)
    );

    // The ISR it already has (in any order): nothing to commit, the
    // current state back.
    let (records, outcome) =
        alter_partition_records(&image, NODE, &alter(topic_id, &[2, 1])).expect("same ISR");
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(
        outcome,
        AlterPartitionOutcome {
            leader: 1,
            leader_epoch: 5,
            partition_epoch: 9,
            isr: vec![1, 2],
        }
    );
}

#[test]
fn of_two_alter_partitions_built_on_one_partition_epoch_only_the_first_commits() {
    let (image, topic_id) = alter_setup();
    let (first, _) =
        alter_partition_records(&image, NODE, &alter(topic_id, &[1, 2, 3])).expect("first");
    let after = apply(&image, &first);
    let refused =
        alter_partition_records(&after, NODE, &alter(topic_id, &[1])).expect_err("second");
    assert_eq!(
        refused.code,
        code::INVALID_UPDATE_VERSION,
        "{}",
        refused.message
    );
}

#[test]
fn alter_partition_refusals_carry_kafkas_codes() {
    let (image, topic_id) = alter_setup();
    // Broker 9 is a replica but was never registered.
    let image = with_partition(&image, "ghost", 1, &[1, 9], &[1]);
    let ghost = image.topics["ghost"].topic_id;
    let cases: Vec<(&str, AlterPartitionRequest, i16)> = vec![
        (
            "stale broker epoch",
            AlterPartitionRequest {
                broker_epoch: 2,
                ..alter(topic_id, &[1])
            },
            code::STALE_BROKER_EPOCH,
        ),
        (
            "unregistered requester",
            AlterPartitionRequest {
                broker_id: 9,
                ..alter(topic_id, &[1])
            },
            code::STALE_BROKER_EPOCH,
        ),
        (
            "unknown topic id",
            alter(Uuid::from_u128(404), &[1]),
            code::UNKNOWN_TOPIC_ID,
        ),
        (
            "unknown partition",
            AlterPartitionRequest {
                partition: 1,
                ..alter(topic_id, &[1])
            },
            code::UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (
            "newer leader epoch",
            AlterPartitionRequest {
                leader_epoch: 6,
                ..alter(topic_id, &[1])
            },
            code::NOT_CONTROLLER,
        ),
        (
            "newer partition epoch",
            AlterPartitionRequest {
                partition_epoch: 10,
                ..alter(topic_id, &[1])
            },
            code::NOT_CONTROLLER,
        ),
        (
            "older leader epoch",
            AlterPartitionRequest {
                leader_epoch: 4,
                ..alter(topic_id, &[1])
            },
            code::FENCED_LEADER_EPOCH,
        ),
        (
            "not the leader",
            AlterPartitionRequest {
                broker_id: 2,
                ..alter(topic_id, &[2])
            },
            code::INVALID_REQUEST,
        ),
        (
            "older partition epoch",
            AlterPartitionRequest {
                partition_epoch: 8,
                ..alter(topic_id, &[1])
            },
            code::INVALID_UPDATE_VERSION,
        ),
        ("empty ISR", alter(topic_id, &[]), code::INVALID_REQUEST),
        (
            "not a replica",
            alter(topic_id, &[1, 5]),
            code::INVALID_REQUEST,
        ),
        (
            "a member twice",
            alter(topic_id, &[1, 2, 2]),
            code::INVALID_REQUEST,
        ),
        (
            "without the leader",
            alter(topic_id, &[2, 3]),
            code::INVALID_REQUEST,
        ),
        (
            "a fenced member",
            alter(topic_id, &[1, 4]),
            code::INELIGIBLE_REPLICA,
        ),
        (
            "an unregistered member",
            alter(ghost, &[1, 9]),
            code::INELIGIBLE_REPLICA,
        ),
    ];
    for (what, request, expected) in cases {
        let refused = alter_partition_records(&image, NODE, &request).expect_err(what);
        assert_eq!(refused.code, expected, "{what}: {}", refused.message);
    }
}

#[test]
fn unclean_election_is_off_by_default_and_elects_a_live_replica_when_on() {
    let image = with_live(
        &MetadataImage::default(),
        &[(1, None), (2, None), (3, None)],
    );
    let image = with_partition(&image, "clean", 1, &[1, 2, 3], &[1]);
    let image = with_partition(&image, "unclean", 1, &[1, 2, 3], &[1]);
    let unclean_id = image.topics["unclean"].topic_id;
    let image = apply(
        &image,
        &[MetadataRecord::TopicConfig {
            topic_id: unclean_id,
            name: UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(),
            value: Some("TRUE".to_owned()),
        }],
    );
    let fenced = apply(&image, &fence_broker_records(&image, 1).expect("fence"));
    let p = partition(&fenced, "clean");
    assert_eq!(
        (
            p.leader,
            p.isr.as_slice(),
            p.leader_epoch,
            p.partition_epoch
        ),
        (NO_LEADER, &[1][..], 6, 10),
        "without the config the partition waits for its last ISR member"
    );
    let p = partition(&fenced, "unclean");
    assert_eq!(
        (
            p.leader,
            p.isr.as_slice(),
            p.leader_epoch,
            p.partition_epoch
        ),
        (2, &[2][..], 6, 10),
        "the first live replica leads alone"
    );

    // Turning the config on for the waiting topic elects at once.
    let clean_id = fenced.topics["clean"].topic_id;
    let on = BTreeMap::from([(UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(), "true".to_owned())]);
    assert!(unclean_election_records(&fenced, NODE, clean_id, &BTreeMap::new()).is_empty());
    let records = unclean_election_records(&fenced, NODE, clean_id, &on);
    let elected = apply(&fenced, &records);
    let p = partition(&elected, "clean");
    assert_eq!(
        (
            p.leader,
            p.isr.as_slice(),
            p.leader_epoch,
            p.partition_epoch
        ),
        (2, &[2][..], 7, 11)
    );

    // With every replica down, nobody leads either way; the first replica
    // back leads the unclean topic.
    let down = apply(&image, &fence_broker_records(&image, 1).expect("fence 1"));
    let down = apply(&down, &fence_broker_records(&down, 2).expect("fence 2"));
    let down = apply(&down, &fence_broker_records(&down, 3).expect("fence 3"));
    assert_eq!(partition(&down, "unclean").leader, NO_LEADER);
    let back = apply(&down, &unfence_broker_records(&down, 3).expect("unfence"));
    let p = partition(&back, "unclean");
    assert_eq!((p.leader, p.isr.as_slice()), (3, &[3][..]));
    assert_eq!(partition(&back, "clean").leader, NO_LEADER);
}

#[test]
fn every_leadership_record_bumps_the_partition_epoch() {
    let image = with_live(&MetadataImage::default(), &[(1, None), (2, None)]);
    let image = with_partition(&image, "t", 1, &[1, 2], &[1, 2]);
    // ISR change only (2 leaves), leader kept: epoch 9 -> 10.
    let image = apply(&image, &fence_broker_records(&image, 2).expect("fence"));
    let p = partition(&image, "t");
    assert_eq!((p.leader_epoch, p.partition_epoch), (5, 10));
    // Leader change: 10 -> 11.
    let image = apply(&image, &unfence_broker_records(&image, 2).expect("unfence"));
    assert_eq!(
        partition(&image, "t").partition_epoch,
        10,
        "nothing changed"
    );
    let image = apply(
        &image,
        &unregister_broker_records(&image, 1).expect("unregister"),
    );
    let p = partition(&image, "t");
    assert_eq!(
        (p.leader, p.leader_epoch, p.partition_epoch),
        (NO_LEADER, 6, 11)
    );
}
