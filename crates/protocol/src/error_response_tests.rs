//! Tests of the generated error responses (`RequestBody::error_response`,
//! `ResponseBody::top_level_error`): they must be valid on the wire at every
//! version, and they must list exactly the items the request named.

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use crate::messages::{self as m, ApiKey, RequestBody, ResponseBody};
use crate::testgen::Gen;

/// UNSUPPORTED_VERSION, the code the broker uses most.
const CODE: i16 = crate::error::codes::UNSUPPORTED_VERSION;

/// Random requests tried per API and version; each one takes a different
/// shape (empty, null and populated arrays).
const SEEDS: u64 = 16;

/// Encodes `body` at `version` and decodes it back, as the broker receives it.
fn through_the_wire(body: &RequestBody, version: i16) -> RequestBody {
    let api = body.api_key();
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{} v{version} request encodes: {e}", api.name()));
    let mut bytes = buf.freeze();
    RequestBody::decode(api, &mut bytes, version)
        .unwrap_or_else(|e| panic!("{} v{version} request decodes: {e}", api.name()))
}

/// Encodes `response` at `version`, decodes it, and checks the decoded value
/// consumes every byte and re-encodes to the same bytes.
fn response_round_trip(response: &ResponseBody, version: i16) -> ResponseBody {
    let api = response.api_key();
    let mut buf = BytesMut::new();
    response
        .encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("{} v{version} error response encodes: {e}", api.name()));
    let bytes: Bytes = buf.freeze();
    let mut rd = bytes.clone();
    let decoded = ResponseBody::decode(api, &mut rd, version)
        .unwrap_or_else(|e| panic!("{} v{version} error response decodes: {e}", api.name()));
    assert!(rd.is_empty(), "{} v{version}: trailing bytes", api.name());
    let mut again = BytesMut::new();
    decoded
        .encode(&mut again, version)
        .unwrap_or_else(|e| panic!("{} v{version} re-encodes: {e}", api.name()));
    assert_eq!(
        again.freeze(),
        bytes,
        "{} v{version} re-encoding",
        api.name()
    );
    decoded
}

#[test]
fn every_error_response_round_trips_at_every_version_of_every_api() {
    for seed in 0..SEEDS {
        let mut g = Gen::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
        for &api in ApiKey::ALL {
            let (min, max) = api.supported_versions();
            for version in min..=max {
                let request = through_the_wire(&m::arbitrary_request(api, &mut g), version);
                for message in [None, Some("not here")] {
                    let mirrored = request.error_response(CODE, message);
                    assert_eq!(mirrored.api_key(), api);
                    response_round_trip(&mirrored, version);
                    let top = ResponseBody::top_level_error(api, CODE, message);
                    assert_eq!(top.api_key(), api);
                    response_round_trip(&top, version);
                }
            }
        }
    }
}

/// The error codes a response reports (`ErrorCodes`, the broker's errors
/// metric) are exactly the codes its error response was filled with: each
/// item the request named and the top-level code carry `CODE`, so every
/// code seen is `CODE`, and a response listing items reports at least one.
#[test]
fn error_codes_walk_every_code_of_every_response() {
    use crate::ErrorCodes;
    let mut g = Gen::new(0xE220);
    for &api in ApiKey::ALL {
        let (min, max) = api.supported_versions();
        for version in min..=max {
            let request = through_the_wire(&m::arbitrary_request(api, &mut g), version);
            let mut codes = Vec::new();
            request
                .error_response(CODE, None)
                .for_each_error_code(&mut |c| codes.push(c));
            assert!(
                codes.iter().all(|&c| c == CODE),
                "{} v{version}: {codes:?}",
                api.name()
            );
        }
    }
    // The walk reaches nested items: Produce's per-partition codes.
    let request = cases().remove(0).request;
    let mut codes = Vec::new();
    request
        .error_response(CODE, None)
        .for_each_error_code(&mut |c| codes.push(c));
    assert_eq!(codes, vec![CODE; TOPICS * PARTITIONS]);
}

/// Topics and partitions per topic in the mirroring tests.
const TOPICS: usize = 3;
const PARTITIONS: usize = 4;

fn topic_name(t: usize) -> String {
    format!("topic-{t}")
}

fn topic_id(t: usize) -> Uuid {
    Uuid::from_u128(0x5100_0000 + t as u128)
}

/// Partition indexes of topic `t`: distinct across topics, so a partition
/// carried under the wrong topic shows.
fn partition_indexes(t: usize) -> Vec<i32> {
    (0..PARTITIONS).map(|p| (10 * t + 3 * p) as i32).collect()
}

/// `(topic, partition)` for every partition a test request names.
fn named() -> Vec<(usize, i32)> {
    (0..TOPICS)
        .flat_map(|t| partition_indexes(t).into_iter().map(move |p| (t, p)))
        .collect()
}

/// One API's mirroring check: a request naming [`TOPICS`] x [`PARTITIONS`],
/// and how to read `(topic key, partition, error code)` out of its response.
struct Case {
    request: RequestBody,
    items: fn(&ResponseBody) -> Vec<(String, i32, i16)>,
    /// The topic key the response carries at a version (name or id).
    key: fn(usize, i16) -> String,
}

fn by_name(t: usize, _version: i16) -> String {
    topic_name(t)
}

fn cases() -> Vec<Case> {
    use m::*;
    vec![
        Case {
            request: RequestBody::Produce(ProduceRequest {
                acks: -1,
                topic_data: (0..TOPICS)
                    .map(|t| TopicProduceData {
                        name: topic_name(t),
                        partition_data: partition_indexes(t)
                            .into_iter()
                            .map(|index| PartitionProduceData {
                                index,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::Produce(r) => r
                    .responses
                    .iter()
                    .flat_map(|t| {
                        t.partition_responses
                            .iter()
                            .map(|p| (t.name.clone(), p.index, p.error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key: by_name,
        },
        Case {
            request: RequestBody::Fetch(FetchRequest {
                topics: (0..TOPICS)
                    .map(|t| m::fetch::FetchTopic {
                        topic: topic_name(t),
                        topic_id: topic_id(t),
                        partitions: partition_indexes(t)
                            .into_iter()
                            .map(|partition| m::fetch::FetchPartition {
                                partition,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::Fetch(r) => r
                    .responses
                    .iter()
                    .flat_map(|t| {
                        let key = format!("{}|{}", t.topic, t.topic_id);
                        t.partitions
                            .iter()
                            .map(move |p| (key.clone(), p.partition_index, p.error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            // Fetch v13+ names topics by id only.
            key: |t, version| {
                if version >= 13 {
                    format!("|{}", topic_id(t))
                } else {
                    format!("{}|{}", topic_name(t), Uuid::nil())
                }
            },
        },
        Case {
            request: RequestBody::ListOffsets(ListOffsetsRequest {
                topics: (0..TOPICS)
                    .map(|t| ListOffsetsTopic {
                        name: topic_name(t),
                        partitions: partition_indexes(t)
                            .into_iter()
                            .map(|partition_index| ListOffsetsPartition {
                                partition_index,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::ListOffsets(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key: by_name,
        },
        Case {
            request: RequestBody::OffsetCommit(OffsetCommitRequest {
                group_id: "g".to_owned(),
                topics: (0..TOPICS)
                    .map(|t| OffsetCommitRequestTopic {
                        name: topic_name(t),
                        partitions: partition_indexes(t)
                            .into_iter()
                            .map(|partition_index| OffsetCommitRequestPartition {
                                partition_index,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::OffsetCommit(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key: by_name,
        },
        // OffsetFetch v0-7 names one group's topics; v8+ a list of groups.
        // The request carries both shapes, so each version mirrors its own.
        Case {
            request: RequestBody::OffsetFetch(OffsetFetchRequest {
                group_id: "g".to_owned(),
                topics: Some(
                    (0..TOPICS)
                        .map(|t| OffsetFetchRequestTopic {
                            name: topic_name(t),
                            partition_indexes: partition_indexes(t),
                        })
                        .collect(),
                ),
                groups: vec![OffsetFetchRequestGroup {
                    group_id: "g".to_owned(),
                    topics: Some(
                        (0..TOPICS)
                            .map(|t| OffsetFetchRequestTopics {
                                name: topic_name(t),
                                partition_indexes: partition_indexes(t),
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::OffsetFetch(r) => {
                    let old = r.topics.iter().flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.error_code))
                    });
                    let new = r.groups.iter().flat_map(|g| &g.topics).flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.error_code))
                    });
                    old.chain(new).collect()
                }
                _ => Vec::new(),
            },
            key: by_name,
        },
        Case {
            request: RequestBody::DeleteRecords(DeleteRecordsRequest {
                topics: (0..TOPICS)
                    .map(|t| DeleteRecordsTopic {
                        name: topic_name(t),
                        partitions: partition_indexes(t)
                            .into_iter()
                            .map(|partition_index| DeleteRecordsPartition {
                                partition_index,
                                offset: 5,
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::DeleteRecords(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key: by_name,
        },
        Case {
            request: RequestBody::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                topics: (0..TOPICS)
                    .map(|t| OffsetForLeaderTopic {
                        topic: topic_name(t),
                        partitions: partition_indexes(t)
                            .into_iter()
                            .map(|partition| OffsetForLeaderPartition {
                                partition,
                                ..Default::default()
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            }),
            items: |r| match r {
                ResponseBody::OffsetForLeaderEpoch(r) => r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.topic.clone(), p.partition, p.error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key: by_name,
        },
        // AddPartitionsToTxn v0-3 carries one transaction's topics, v4+ a
        // list of transactions; the partitions are plain int32s.
        Case {
            request: {
                let topics: Vec<AddPartitionsToTxnTopic> = (0..TOPICS)
                    .map(|t| AddPartitionsToTxnTopic {
                        name: topic_name(t),
                        partitions: partition_indexes(t),
                    })
                    .collect();
                RequestBody::AddPartitionsToTxn(AddPartitionsToTxnRequest {
                    v3_and_below_transactional_id: "tx".to_owned(),
                    v3_and_below_topics: topics.clone(),
                    transactions: vec![AddPartitionsToTxnTransaction {
                        transactional_id: "tx".to_owned(),
                        topics,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
            items: |r| match r {
                ResponseBody::AddPartitionsToTxn(r) => r
                    .results_by_topic_v3_and_below
                    .iter()
                    .chain(
                        r.results_by_transaction
                            .iter()
                            .flat_map(|x| &x.topic_results),
                    )
                    .flat_map(|t| {
                        t.results_by_partition
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.partition_error_code))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key: by_name,
        },
    ]
}

#[test]
fn error_responses_list_exactly_the_named_topics_and_partitions_at_every_version() {
    for case in cases() {
        let api = case.request.api_key();
        let (min, max) = api.supported_versions();
        for version in min..=max {
            let request = through_the_wire(&case.request, version);
            let response = response_round_trip(&request.error_response(CODE, None), version);
            let got = (case.items)(&response);
            let want: Vec<(String, i32, i16)> = named()
                .into_iter()
                .map(|(t, p)| ((case.key)(t, version), p, CODE))
                .collect();
            assert_eq!(got.len(), TOPICS * PARTITIONS, "{} v{version}", api.name());
            assert_eq!(got, want, "{} v{version}", api.name());
        }
    }
}

#[test]
fn top_level_error_lists_no_items() {
    let request = cases().remove(0).request;
    let ResponseBody::Produce(mirrored) = request.error_response(CODE, None) else {
        panic!("expected a Produce response");
    };
    assert_eq!(mirrored.responses.len(), TOPICS);
    let ResponseBody::Metadata(top) = ResponseBody::top_level_error(ApiKey::Metadata, CODE, None)
    else {
        panic!("expected a Metadata response");
    };
    assert_eq!(top.error_code, CODE);
    assert!(top.topics.is_empty() && top.brokers.is_empty());
}

#[test]
fn error_fields_keys_and_kafka_error_values_are_filled() {
    use m::*;
    // Keys copied under another name (key=), elements of an int32 array
    // (mirror=...:Field), err= values, and the message where there is room.
    let request = RequestBody::FindCoordinator(FindCoordinatorRequest {
        coordinator_keys: vec!["a".to_owned(), "b".to_owned()],
        ..Default::default()
    });
    let ResponseBody::FindCoordinator(r) = request.error_response(CODE, Some("why")) else {
        panic!("expected a FindCoordinator response");
    };
    assert_eq!((r.error_code, r.node_id, r.port), (CODE, -1, -1));
    assert_eq!(r.error_message.as_deref(), Some("why"));
    let got: Vec<_> = r
        .coordinators
        .iter()
        .map(|c| {
            (
                c.key.as_str(),
                c.node_id,
                c.port,
                c.error_code,
                c.error_message.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", -1, -1, CODE, Some("why")),
            ("b", -1, -1, CODE, Some("why"))
        ]
    );

    let request = RequestBody::AlterReplicaLogDirs(AlterReplicaLogDirsRequest {
        dirs: vec![
            AlterReplicaLogDir {
                path: "/a".to_owned(),
                topics: vec![AlterReplicaLogDirTopic {
                    name: "x".to_owned(),
                    partitions: vec![1, 2],
                }],
            },
            AlterReplicaLogDir {
                path: "/b".to_owned(),
                topics: vec![AlterReplicaLogDirTopic {
                    name: "y".to_owned(),
                    partitions: vec![3],
                }],
            },
        ],
    });
    let ResponseBody::AlterReplicaLogDirs(r) = request.error_response(CODE, None) else {
        panic!("expected an AlterReplicaLogDirs response");
    };
    let got: Vec<_> = r
        .results
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic_name.as_str(), p.partition_index, p.error_code))
        })
        .collect();
    assert_eq!(got, vec![("x", 1, CODE), ("x", 2, CODE), ("y", 3, CODE)]);

    // Kafka answers AlterUserScramCredentials once per user.
    let request = RequestBody::AlterUserScramCredentials(AlterUserScramCredentialsRequest {
        deletions: vec![ScramCredentialDeletion {
            name: "u1".to_owned(),
            mechanism: 1,
        }],
        upsertions: vec![
            ScramCredentialUpsertion {
                name: "u1".to_owned(),
                ..Default::default()
            },
            ScramCredentialUpsertion {
                name: "u2".to_owned(),
                ..Default::default()
            },
        ],
    });
    let ResponseBody::AlterUserScramCredentials(r) = request.error_response(CODE, None) else {
        panic!("expected an AlterUserScramCredentials response");
    };
    let users: Vec<_> = r.results.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(users, vec!["u1", "u2"]);
}
