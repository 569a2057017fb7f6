//! Tests of the Produce handler: commits that outlive their reply, and
//! KIP-890 verification of transactional batches.

mod dropped_reply {
    use std::time::Duration;

    use futures::FutureExt;
    use sluice_protocol::messages::produce::{PartitionProduceData, TopicProduceData};

    use super::super::*;
    use crate::testing;

    fn produce(topic: &str, partition: i32, acks: i16) -> (RequestHeader, ProduceRequest) {
        let header = RequestHeader {
            request_api_key: 0,
            request_api_version: 9,
            correlation_id: 7,
            client_id: None,
        };
        let request = ProduceRequest {
            acks,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: testing::batch(3),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        (header, request)
    }

    /// Waits (bounded) until `partition`'s high watermark reaches `offset`.
    async fn wait_for_high_watermark(partition: &Partition, offset: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let advanced = partition.hw_advanced();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            if partition.high_watermark() >= offset {
                return;
            }
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                panic!(
                    "{}: high watermark stuck at {} below {offset}",
                    partition.tp,
                    partition.high_watermark()
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appended_data_becomes_visible_when_the_reply_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        testing::create_topic(&broker, "t", 3).await;
        // Partition 0: the connection never polls the reply (a write of an
        // earlier reply failed). Partition 1: polled once (fsync under way),
        // then dropped. Partition 2: acks=0, dropped unpolled.
        for (partition, acks, poll_once) in [(0, 1, false), (1, -1, true), (2, 0, false)] {
            let (header, request) = produce("t", partition, acks);
            let mut reply = Box::pin(handle(
                &broker.replicas,
                &broker.metadata.image(),
                &broker.txn,
                &broker.verifier,
                &testing::allow_all(),
                &broker.registry,
                &testing::ctx(),
                &header,
                request,
            ));
            if poll_once {
                let _ = (&mut reply).now_or_never();
            }
            drop(reply);
            let p = broker
                .replicas
                .partition("t", partition)
                .expect("partition");
            assert_eq!(p.log().log_end_offset(), 3, "appended at dispatch");
            wait_for_high_watermark(&p, 3).await;
        }
    }
}

mod verification {
    use sluice_protocol::messages::produce::{PartitionProduceData, TopicProduceData};

    use super::super::*;
    use crate::testing;

    fn transactional_produce(
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        sequence: i32,
    ) -> (RequestHeader, ProduceRequest) {
        let batch = testing::transactional_batch(producer_id, producer_epoch, sequence);
        let header = RequestHeader {
            request_api_key: 0,
            request_api_version: 9,
            correlation_id: 1,
            client_id: None,
        };
        let request = ProduceRequest {
            transactional_id: Some(transactional_id.to_owned()),
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "t".to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: batch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        (header, request)
    }

    fn error_code(response: &ProduceResponse) -> i16 {
        response.responses[0].partition_responses[0].error_code
    }

    #[tokio::test]
    async fn a_transactional_batch_for_a_partition_not_in_the_transaction_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        testing::create_topic(&broker, "t", 1).await;
        let (pid, epoch) = broker
            .txn
            .init_producer_id("tx", 60_000, None)
            .await
            .expect("init");
        let partition = broker.replicas.partition("t", 0).expect("partition");

        // Without AddPartitionsToTxn: refused, nothing appended, and the
        // last stable offset is not held back.
        let (header, request) = transactional_produce("tx", pid, epoch, 0);
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            &broker.txn,
            &broker.verifier,
            &testing::allow_all(),
            &broker.registry,
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .expect("acks=-1 answers");
        assert_eq!(error_code(&response), code::INVALID_TXN_STATE);
        assert_eq!(partition.log().log_end_offset(), 0);
        assert_eq!(partition.log().first_unstable_offset(), None);

        // After AddPartitionsToTxn the same batch is appended.
        broker
            .txn
            .add_to_txn("tx", pid, epoch, &[("t".to_owned(), 0)], None)
            .await
            .expect("add");
        let (header, request) = transactional_produce("tx", pid, epoch, 0);
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            &broker.txn,
            &broker.verifier,
            &testing::allow_all(),
            &broker.registry,
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .expect("acks=-1 answers");
        assert_eq!(error_code(&response), code::NONE);
        assert_eq!(partition.log().log_end_offset(), 1);
    }
}

mod record_shape {
    //! Kafka's `ProduceRequest.validateRecords`: one whole v2 batch per
    //! partition, or INVALID_RECORD before anything is appended.

    use bytes::{Bytes, BytesMut};
    use sluice_protocol::messages::produce::{PartitionProduceData, TopicProduceData};

    use super::super::*;
    use crate::{Broker, testing};

    /// Produces `records` to t-0 and, in the same request, one good batch
    /// to t-1; returns both partitions' responses.
    async fn produce_next_to_a_good_batch(
        broker: &Arc<Broker>,
        version: i16,
        records: Bytes,
    ) -> (PartitionProduceResponse, PartitionProduceResponse) {
        let header = RequestHeader {
            request_api_key: 0,
            request_api_version: version,
            correlation_id: 3,
            client_id: None,
        };
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "t".to_owned(),
                partition_data: vec![
                    PartitionProduceData {
                        index: 0,
                        records,
                        ..Default::default()
                    },
                    PartitionProduceData {
                        index: 1,
                        records: testing::batch(1),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            &broker.txn,
            &broker.verifier,
            &testing::allow_all(),
            &broker.registry,
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .expect("acks=-1 answers");
        let mut partitions = response.responses[0].partition_responses.clone();
        assert_eq!(partitions.len(), 2);
        let second = partitions.pop().expect("t-1");
        let first = partitions.pop().expect("t-0");
        (first, second)
    }

    fn two_batches() -> Bytes {
        let mut records = BytesMut::from(testing::batch(2).as_ref());
        records.extend_from_slice(&testing::batch(3));
        records.freeze()
    }

    /// A whole legacy (magic 1) message: offset, size, crc, magic 1,
    /// attributes, timestamp, null key, value "v".
    fn legacy_message() -> Bytes {
        let mut m = Vec::new();
        m.extend_from_slice(&0i64.to_be_bytes());
        let body_len: i32 = 4 + 1 + 1 + 8 + 4 + 4 + 1;
        m.extend_from_slice(&body_len.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.push(1);
        m.push(0);
        m.extend_from_slice(&0i64.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.extend_from_slice(&1i32.to_be_bytes());
        m.push(b'v');
        Bytes::from(m)
    }

    #[tokio::test]
    async fn two_batches_for_one_partition_are_invalid_record_and_nothing_is_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        for version in [3, 8, 11] {
            let (refused, good) =
                produce_next_to_a_good_batch(&broker, version, two_batches()).await;
            assert_eq!(refused.error_code, code::INVALID_RECORD, "v{version}");
            assert_eq!(refused.base_offset, -1);
            assert_eq!(
                refused.error_message.as_deref(),
                Some(
                    format!(
                        "Produce requests with version {version} are only allowed to contain \
                         exactly one record batch per partition"
                    )
                    .as_str()
                ),
                "v{version}"
            );
            assert_eq!(
                good.error_code,
                code::NONE,
                "the other partition is appended"
            );
        }
        let refused = broker.replicas.partition("t", 0).expect("t-0");
        assert_eq!(refused.log().log_end_offset(), 0, "nothing was appended");
        assert_eq!(refused.high_watermark(), 0);
        let good = broker.replicas.partition("t", 1).expect("t-1");
        assert_eq!(good.log().log_end_offset(), 3);
    }

    #[tokio::test]
    async fn no_whole_batch_or_a_legacy_message_is_invalid_record_with_kafkas_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        let batch = testing::batch(2);
        let cases = [
            (
                Bytes::new(),
                "must have at least one record batch per partition",
            ),
            (
                batch.slice(..batch.len() - 1),
                "must have at least one record batch per partition",
            ),
            (
                legacy_message(),
                "are only allowed to contain record batches with magic version 2",
            ),
        ];
        for (records, wording) in cases {
            let (refused, good) = produce_next_to_a_good_batch(&broker, 9, records).await;
            assert_eq!(refused.error_code, code::INVALID_RECORD, "{wording}");
            assert_eq!(
                refused.error_message,
                Some(format!("Produce requests with version 9 {wording}"))
            );
            assert_eq!(good.error_code, code::NONE);
        }
        let refused = broker.replicas.partition("t", 0).expect("t-0");
        assert_eq!(refused.log().log_end_offset(), 0, "nothing was appended");
    }

    #[tokio::test]
    async fn zstd_before_v7_is_reported_before_the_batch_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        let zstd = sluice_records::BatchBuilder::new()
            .compression(sluice_records::Compression::Zstd)
            .record(sluice_records::NewRecord {
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: vec![],
                timestamp_ms: testing::now_ms(),
            })
            .build()
            .expect("zstd batch");
        let mut records = zstd.clone();
        records.extend_from_slice(&zstd);
        let (refused, _) = produce_next_to_a_good_batch(&broker, 6, records.freeze()).await;
        assert_eq!(refused.error_code, code::UNSUPPORTED_COMPRESSION_TYPE);
    }
}

mod outcomes {
    //! Produce against the pieces it is given (partitions and the
    //! transaction coordinator), without a broker: offsets, per-partition
    //! errors, acks, and idempotent retries.

    use bytes::Bytes;
    use sluice_protocol::messages::produce::{PartitionProduceData, TopicProduceData};

    use super::super::*;
    use crate::testing::{self, Node};

    /// A Produce at `version` with `acks` of `records` to each (topic, partition).
    fn request(acks: i16, parts: &[(&str, i32, Bytes)]) -> ProduceRequest {
        ProduceRequest {
            acks,
            timeout_ms: 10_000,
            topic_data: parts
                .iter()
                .map(|(topic, index, records)| TopicProduceData {
                    name: (*topic).to_owned(),
                    partition_data: vec![PartitionProduceData {
                        index: *index,
                        records: records.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    async fn produce(
        node: &Node,
        version: i16,
        request: ProduceRequest,
    ) -> Option<ProduceResponse> {
        let header = testing::header(0, version);
        handle(
            &node.replicas,
            &node.image(),
            &node.txn,
            &node.verifier,
            &testing::allow_all(),
            &node.registry,
            &testing::ctx(),
            &header,
            request,
        )
        .await
    }

    /// The partition responses, in request order.
    fn partitions(response: &ProduceResponse) -> Vec<PartitionProduceResponse> {
        response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().cloned())
            .collect()
    }

    #[tokio::test]
    async fn successive_produces_get_successive_base_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        for expected_base in [0, 3, 6] {
            let response = produce(&node, 9, request(-1, &[("t", 0, testing::batch(3))]))
                .await
                .expect("acks=-1 answers");
            let p = &partitions(&response)[0];
            assert_eq!(p.error_code, code::NONE);
            assert_eq!(p.base_offset, expected_base);
            assert_eq!(p.log_start_offset, 0);
            assert_eq!(p.log_append_time_ms, -1, "CreateTime topic");
        }
        let partition = node.partition("t", 0);
        assert_eq!(partition.log().log_end_offset(), 9);
        assert_eq!(
            partition.high_watermark(),
            9,
            "acks=-1 answers after the commit"
        );
    }

    #[tokio::test]
    async fn an_unknown_partition_fails_alone_and_the_rest_is_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let response = produce(
            &node,
            9,
            request(
                1,
                &[
                    ("missing", 0, testing::batch(1)),
                    ("t", 7, testing::batch(1)),
                    ("t", 0, testing::batch(2)),
                ],
            ),
        )
        .await
        .expect("acks=1 answers");
        let ps = partitions(&response);
        assert_eq!(ps.len(), 3);
        for p in &ps[..2] {
            assert_eq!(p.error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
            assert_eq!(p.base_offset, -1);
            assert_eq!(p.log_start_offset, -1);
            assert!(p.error_message.is_some());
        }
        assert_eq!(ps[2].error_code, code::NONE);
        assert_eq!(ps[2].base_offset, 0);
        assert_eq!(node.partition("t", 0).log().log_end_offset(), 2);
    }

    #[tokio::test]
    async fn invalid_acks_and_old_versions_are_refused_before_anything_is_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let response = produce(&node, 9, request(2, &[("t", 0, testing::batch(1))]))
            .await
            .expect("acks=2 still answers");
        assert_eq!(
            partitions(&response)[0].error_code,
            code::INVALID_REQUIRED_ACKS
        );
        let response = produce(&node, 2, request(1, &[("t", 0, testing::batch(1))]))
            .await
            .expect("answers");
        assert_eq!(
            partitions(&response)[0].error_code,
            code::UNSUPPORTED_VERSION
        );
        assert_eq!(node.partition("t", 0).log().log_end_offset(), 0);
    }

    #[tokio::test]
    async fn acks_zero_answers_nothing_but_the_data_is_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let response = produce(&node, 9, request(0, &[("t", 0, testing::batch(4))])).await;
        assert!(response.is_none(), "acks=0 sends no response");
        let partition = node.partition("t", 0);
        assert_eq!(partition.log().log_end_offset(), 4);
        assert_eq!(
            partition.high_watermark(),
            4,
            "the reply resolves after the commit"
        );
    }

    #[tokio::test]
    async fn an_idempotent_retry_answers_the_original_offset_and_appends_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let idempotent = |sequence: i32| {
            sluice_records::BatchBuilder::new()
                .producer(4000, 0, sequence)
                .record(sluice_records::NewRecord {
                    key: None,
                    value: Some(Bytes::from_static(b"once")),
                    headers: vec![],
                    timestamp_ms: testing::now_ms(),
                })
                .build()
                .expect("batch")
                .freeze()
        };
        produce(&node, 9, request(-1, &[("t", 0, testing::batch(2))])).await;
        let first = produce(&node, 9, request(-1, &[("t", 0, idempotent(0))]))
            .await
            .expect("answers");
        assert_eq!(partitions(&first)[0].base_offset, 2);
        let retry = produce(&node, 9, request(-1, &[("t", 0, idempotent(0))]))
            .await
            .expect("answers");
        let p = &partitions(&retry)[0];
        assert_eq!(p.error_code, code::NONE, "a duplicate is a success");
        assert_eq!(p.base_offset, 2, "with the original offset");
        assert_eq!(node.partition("t", 0).log().log_end_offset(), 3);
        // A gap in the sequence is refused.
        let gap = produce(&node, 9, request(-1, &[("t", 0, idempotent(5))]))
            .await
            .expect("answers");
        assert_eq!(
            partitions(&gap)[0].error_code,
            code::OUT_OF_ORDER_SEQUENCE_NUMBER
        );
        assert_eq!(node.partition("t", 0).log().log_end_offset(), 3);
    }

    #[tokio::test]
    async fn a_transactional_batch_without_a_transactional_id_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("t", 1).await;
        let batch = testing::transactional_batch(5000, 0, 0);
        let response = produce(&node, 9, request(-1, &[("t", 0, batch)]))
            .await
            .expect("answers");
        let p = &partitions(&response)[0];
        // No transactional id maps to this producer (KIP-890).
        assert_eq!(p.error_code, code::INVALID_PRODUCER_ID_MAPPING);
        assert_eq!(node.partition("t", 0).log().log_end_offset(), 0);
    }
}

mod cluster {
    //! Produce in a cluster: only the leader appends; from v10 a refusal
    //! names the current leader and its endpoint (KIP-951).

    use sluice_protocol::messages::produce::{PartitionProduceData, TopicProduceData};

    use super::super::*;
    use crate::testing::{self, Node, SPREAD};

    /// Produces one batch to each of `partitions` of [`SPREAD`] at `version`.
    async fn produce_spread(node: &Node, version: i16, partitions: &[i32]) -> ProduceResponse {
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: SPREAD.to_owned(),
                partition_data: partitions
                    .iter()
                    .map(|&index| PartitionProduceData {
                        index,
                        records: testing::batch(1),
                    })
                    .collect(),
            }],
            ..Default::default()
        };
        let header = testing::header(0, version);
        handle(
            &node.replicas,
            &node.image(),
            &node.txn,
            &node.verifier,
            &testing::allow_all(),
            &node.registry,
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .expect("acks=-1 answers")
    }

    /// (partition, error code, hinted leader, hinted epoch) per partition.
    fn leader_hints(response: &ProduceResponse) -> Vec<(i32, i16, i32, i32)> {
        response.responses[0]
            .partition_responses
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.error_code,
                    p.current_leader.leader_id,
                    p.current_leader.leader_epoch,
                )
            })
            .collect()
    }

    async fn cluster_node(dir: &std::path::Path) -> Node {
        let node = testing::node_in(dir).await;
        testing::three_brokers(&node).await;
        testing::spread_topic(&node).await;
        node
    }

    #[tokio::test]
    async fn only_the_leader_appends_and_v10_names_the_current_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = cluster_node(dir.path()).await;
        let response = produce_spread(&node, 11, &[0, 1, 2, 3, 4, 5, 9]).await;
        let got = leader_hints(&response);
        assert_eq!(
            got,
            [
                (0, code::NONE, -1, -1),
                // A follower here: its leader (2) and epoch, as it knows them.
                (1, code::NOT_LEADER_OR_FOLLOWER, 2, 5),
                // Led by 3, not hosted here: from the image.
                (2, code::NOT_LEADER_OR_FOLLOWER, 3, 7),
                // No leader at all.
                (3, code::NOT_LEADER_OR_FOLLOWER, -1, 2),
                // Led by fenced 4, and by unregistered 9.
                (4, code::NOT_LEADER_OR_FOLLOWER, 4, 1),
                (5, code::NOT_LEADER_OR_FOLLOWER, 9, 4),
                (9, code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
            ]
        );
        // Endpoints of the live leaders named, once each; none for the
        // fenced or unregistered ones.
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
        assert_eq!(node.partition(SPREAD, 0).log().log_end_offset(), 1);
        assert_eq!(
            node.partition(SPREAD, 1).log().log_end_offset(),
            0,
            "a follower appended a client's batch"
        );
    }

    /// While this node's leadership is suspended, a partition it leads is
    /// refused without naming itself (the client must look elsewhere);
    /// resumed, it appends again.
    #[tokio::test]
    async fn a_suspended_leader_refuses_and_names_no_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = cluster_node(dir.path()).await;
        node.replicas.suspend_leadership(true);
        let response = produce_spread(&node, 11, &[0, 1]).await;
        let got = leader_hints(&response);
        assert_eq!(
            got,
            [
                (0, code::NOT_LEADER_OR_FOLLOWER, -1, -1),
                (1, code::NOT_LEADER_OR_FOLLOWER, 2, 5),
            ]
        );
        assert_eq!(node.partition(SPREAD, 0).log().log_end_offset(), 0);
        node.replicas.suspend_leadership(false);
        let response = produce_spread(&node, 11, &[0]).await;
        assert_eq!(
            response.responses[0].partition_responses[0].error_code,
            code::NONE
        );
        assert_eq!(node.partition(SPREAD, 0).log().log_end_offset(), 1);
    }

    #[tokio::test]
    async fn before_v10_the_refusal_carries_no_leader_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = cluster_node(dir.path()).await;
        let response = produce_spread(&node, 9, &[1, 2]).await;
        for p in &response.responses[0].partition_responses {
            assert_eq!(p.error_code, code::NOT_LEADER_OR_FOLLOWER);
            assert_eq!(p.current_leader, LeaderIdAndEpoch::default());
        }
        assert!(response.node_endpoints.is_empty());
    }

    #[tokio::test]
    async fn the_leader_hints_reach_the_wire_at_v10_and_not_at_v9() {
        use sluice_protocol::{Decode, Encode};
        let dir = tempfile::tempdir().expect("tempdir");
        let node = cluster_node(dir.path()).await;
        let response = produce_spread(&node, 10, &[2]).await;
        for (version, hinted) in [(10, true), (9, false)] {
            let mut bytes = bytes::BytesMut::new();
            response.encode(&mut bytes, version).expect("encodes");
            let decoded = ProduceResponse::decode(&mut bytes.freeze(), version).expect("decodes");
            let p = &decoded.responses[0].partition_responses[0];
            assert_eq!(p.current_leader.leader_id == 3, hinted, "v{version}");
            assert_eq!(decoded.node_endpoints.len() == 1, hinted, "v{version}");
        }
    }
}

mod schema_validation {
    //! `confluent.value.schema.validation`: a batch with one record that
    //! does not carry a schema id registered under the topic's subject is
    //! refused whole, with a KIP-467 record error naming that record.

    use bytes::Bytes;
    use sluice_metadata::controller::NewTopic;
    use sluice_protocol::messages::produce::{PartitionProduceData, TopicProduceData};
    use sluice_registry::{RegisterOptions, SchemaType};

    use super::super::*;
    use crate::{Broker, testing};

    fn framed(id: i32, data: &[u8]) -> Bytes {
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(data);
        Bytes::from(out)
    }

    fn batch(values: &[Bytes]) -> Bytes {
        let mut builder = sluice_records::BatchBuilder::new();
        for v in values {
            builder = builder.record(sluice_records::NewRecord {
                key: None,
                value: Some(v.clone()),
                headers: vec![],
                timestamp_ms: sluice_metadata::now_ms(),
            });
        }
        builder.build().expect("batch").freeze()
    }

    async fn produce(broker: &Arc<Broker>, records: Bytes) -> PartitionProduceResponse {
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: "checked".to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            &broker.txn,
            &broker.verifier,
            &testing::allow_all(),
            &broker.registry,
            &testing::ctx(),
            &testing::header(0, 11),
            request,
        )
        .await
        .expect("acks=-1 answers");
        response.responses[0].partition_responses[0].clone()
    }

    #[tokio::test]
    async fn one_unregistered_record_refuses_the_batch_with_its_record_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        let topic = NewTopic {
            name: "checked".to_owned(),
            num_partitions: 1,
            replication_factor: -1,
            configs: vec![(
                "confluent.value.schema.validation".to_owned(),
                Some("true".to_owned()),
            )],
            assignments: Vec::new(),
        };
        let created = broker.controller.create_topics(vec![topic], false).await;
        assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
        let schema = sluice_registry::NewSchema {
            schema_type: SchemaType::Avro,
            text: r#""string""#.to_owned(),
            references: Vec::new(),
        };
        let id = broker
            .registry
            .register(
                "checked-value".to_owned(),
                schema,
                RegisterOptions::default(),
            )
            .await
            .expect("registered");

        let refused = produce(
            &broker,
            batch(&[
                framed(id, b"\x02a"),
                Bytes::from_static(b"raw"),
                framed(id, b"\x02b"),
            ]),
        )
        .await;
        assert_eq!(refused.error_code, code::INVALID_RECORD);
        let errors: Vec<i32> = refused
            .record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect();
        assert_eq!(errors, vec![1], "{refused:?}");
        assert!(
            refused.record_errors[0]
                .batch_index_error_message
                .as_deref()
                .is_some_and(|m| m.contains("wire format")),
            "{refused:?}"
        );
        let partition = broker.replicas.partition("checked", 0).expect("hosted");
        assert_eq!(
            partition.log().log_end_offset(),
            0,
            "nothing of the batch is appended"
        );

        let accepted = produce(
            &broker,
            batch(&[framed(id, b"\x02a"), framed(id, b"\x02b")]),
        )
        .await;
        assert_eq!(accepted.error_code, code::NONE, "{accepted:?}");
        assert_eq!(partition.log().log_end_offset(), 2);
    }
}
