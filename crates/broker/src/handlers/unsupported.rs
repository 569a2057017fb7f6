//! APIs this broker decodes but does not serve. They are not advertised in
//! ApiVersions; a client that sends one anyway gets a well-formed response
//! at the request's version instead of a dropped connection (issue 3).
//! The same answer serves requests for served APIs at a version outside the
//! advertised range ([`reply_outside_advertised`]; below it is KIP-896).
//!
//! The answer mirrors the request: every topic, partition, group, resource
//! or transaction the request names comes back with an error, and any
//! top-level `error_code` is set too, so a client reports "not supported"
//! for each item rather than timing out or re-bootstrapping.
//!
//! This module holds only the policy: which code each API gets and whether
//! its items are listed ([`answer_for`]). The responses themselves come from
//! the codec, generated from the specs (`RequestBody::error_response` and
//! `ResponseBody::top_level_error`, docs/protocol.md "Error responses").
//!
//! Error codes:
//! - `UNSUPPORTED_VERSION` (35) for everything by default: it is Kafka's
//!   "this broker does not do that", and clients surface it as such.
//! - Inter-broker and controller (KRaft) APIs also get
//!   `UNSUPPORTED_VERSION`, not `CLUSTER_AUTHORIZATION_FAILED`: Sluice is a
//!   single broker with no controller quorum, and an authorization error
//!   would send an operator looking for ACLs that do not exist. Their
//!   responses carry only the top-level error, which Kafka's receivers
//!   check before any per-partition field.
//! - `SaslHandshake` gets `UNSUPPORTED_SASL_MECHANISM` (33) with an empty
//!   mechanism list, and `SaslAuthenticate` gets `ILLEGAL_SASL_STATE` (34),
//!   which is what Kafka answers to authentication without a handshake.
//!
//! The match in [`answer_for`] is exhaustive on purpose: a new API in the
//! spec set fails to compile here until someone decides its answer.
//! Requests routed to real handlers still have an arm, so a handler can be
//! removed (or not yet merged) without the API dropping connections.

use sluice_protocol::error::codes;
use sluice_protocol::messages::{self as m, ApiKey, RequestBody, RequestBody as B, ResponseBody};
use sluice_protocol::{BytesMut, Encode, EncodeError, RequestHeader};

use super::{Reply, RequestContext};

/// Answers a request for an API without a handler. Always answers, except
/// where Kafka itself sends nothing (Produce with acks=0).
pub fn reply(ctx: &RequestContext, header: &RequestHeader, body: RequestBody) -> Reply {
    let api = body.api_key();
    tracing::info!(
        peer = %ctx.peer,
        api = api.name(),
        version = header.request_api_version,
        correlation_id = header.correlation_id,
        "request for an API this broker does not serve; answering with an error"
    );
    let frame = error_response(body).and_then(|response| super::encode(header, &Body(response)));
    Box::pin(async move { frame })
}

/// Lets the dispatch enum go through the same framing path as a typed
/// response; [`ResponseBody::encode`] picks the variant's encoder.
pub(super) struct Body(pub(super) ResponseBody);

impl Encode for Body {
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
        self.0.encode(buf, version)
    }
}

/// The error response to `body`, built to be valid at any version of its
/// API (fields a version lacks are skipped by the encoder, so both the old
/// and the new shape of a response are filled from whichever the request
/// used). `None` when Kafka sends no response at all.
pub(crate) fn error_response(body: RequestBody) -> Option<ResponseBody> {
    let message = format!("Sluice does not support {}", body.api_key().name());
    error_response_with(body, message)
}

/// Answers a request for a served API at a version outside the range we
/// advertise: the same well-formed error response as for an unserved API,
/// with a message naming the served range. Such versions decode (the codec
/// is wider than what is served) but are not served: below the minimum
/// (KIP-896) their response shapes cannot carry what the handlers produce,
/// e.g. Fetch v2 cannot carry v2 record batches; above the maximum they
/// carry fields whose meaning the handlers do not implement.
pub fn reply_outside_advertised(
    ctx: &RequestContext,
    header: &RequestHeader,
    body: RequestBody,
    min_version: i16,
    max_version: i16,
) -> Reply {
    let api = body.api_key();
    let version = header.request_api_version;
    tracing::info!(
        peer = %ctx.peer,
        api = api.name(),
        version,
        min_version,
        max_version,
        correlation_id = header.correlation_id,
        "request outside the advertised versions; answering UNSUPPORTED_VERSION"
    );
    let message = format!(
        "{} v{version} is not supported; this broker serves v{min_version} to v{max_version}",
        api.name()
    );
    let frame = error_response_with(body, message)
        .and_then(|response| super::encode(header, &Body(response)));
    Box::pin(async move { frame })
}

/// [`error_response`] with a chosen message.
fn error_response_with(body: RequestBody, message: String) -> Option<ResponseBody> {
    // Kafka sends nothing at all to a Produce with acks=0, error or not.
    if let B::Produce(m::produce::ProduceRequest { acks: 0, .. }) = &body {
        return None;
    }
    let api = body.api_key();
    let answer = answer_for(api);
    let message = answer.message.unwrap_or(&message);
    Some(match answer.shape {
        Shape::Items => body.error_response(answer.code, Some(message)),
        Shape::TopLevel => ResponseBody::top_level_error(api, answer.code, Some(message)),
    })
}

/// What an API's error answer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Every item the request names, each with the error, plus the
    /// top-level error fields.
    Items,
    /// Only the top-level error fields.
    TopLevel,
}

/// The error answer for one API.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// The Kafka error code written into every error field.
    code: i16,
    /// What the response lists.
    shape: Shape,
    /// A message that replaces the generic "not supported" one.
    message: Option<&'static str>,
}

/// The error answer for `api`; see the module docs for why.
fn answer_for(api: ApiKey) -> Answer {
    use ApiKey as A;
    let unsupported = |shape| Answer {
        code: codes::UNSUPPORTED_VERSION,
        shape,
        message: None,
    };
    match api {
        A::SaslHandshake => Answer {
            code: codes::UNSUPPORTED_SASL_MECHANISM,
            shape: Shape::Items,
            message: None,
        },
        A::SaslAuthenticate => Answer {
            code: codes::ILLEGAL_SASL_STATE,
            shape: Shape::Items,
            message: Some("SASL is not enabled on this broker"),
        },
        // Inter-broker and controller (KRaft) APIs.
        A::LeaderAndIsr
        | A::StopReplica
        | A::UpdateMetadata
        | A::ControlledShutdown
        | A::Vote
        | A::BeginQuorumEpoch
        | A::EndQuorumEpoch
        | A::DescribeQuorum
        | A::AlterPartition
        | A::Envelope
        | A::FetchSnapshot
        | A::BrokerRegistration
        | A::BrokerHeartbeat
        | A::AllocateProducerIds
        | A::ControllerRegistration
        | A::AssignReplicasToDirs
        | A::AddRaftVoter
        | A::RemoveRaftVoter
        | A::UpdateRaftVoter => unsupported(Shape::TopLevel),
        // Data plane, groups, transactions, administration, security,
        // telemetry and share groups.
        A::Produce
        | A::Fetch
        | A::ListOffsets
        | A::Metadata
        | A::OffsetCommit
        | A::OffsetFetch
        | A::FindCoordinator
        | A::JoinGroup
        | A::Heartbeat
        | A::LeaveGroup
        | A::SyncGroup
        | A::DescribeGroups
        | A::ListGroups
        | A::ApiVersions
        | A::CreateTopics
        | A::DeleteTopics
        | A::DeleteRecords
        | A::InitProducerId
        | A::OffsetForLeaderEpoch
        | A::AddPartitionsToTxn
        | A::AddOffsetsToTxn
        | A::EndTxn
        | A::WriteTxnMarkers
        | A::TxnOffsetCommit
        | A::DescribeAcls
        | A::CreateAcls
        | A::DeleteAcls
        | A::DescribeConfigs
        | A::AlterConfigs
        | A::UnregisterBroker
        | A::AlterReplicaLogDirs
        | A::DescribeLogDirs
        | A::CreatePartitions
        | A::CreateDelegationToken
        | A::RenewDelegationToken
        | A::ExpireDelegationToken
        | A::DescribeDelegationToken
        | A::DeleteGroups
        | A::ElectLeaders
        | A::IncrementalAlterConfigs
        | A::AlterPartitionReassignments
        | A::ListPartitionReassignments
        | A::OffsetDelete
        | A::DescribeClientQuotas
        | A::AlterClientQuotas
        | A::DescribeUserScramCredentials
        | A::AlterUserScramCredentials
        | A::UpdateFeatures
        | A::DescribeCluster
        | A::DescribeProducers
        | A::DescribeTransactions
        | A::ListTransactions
        | A::ConsumerGroupHeartbeat
        | A::ConsumerGroupDescribe
        | A::GetTelemetrySubscriptions
        | A::PushTelemetry
        | A::ListClientMetricsResources
        | A::DescribeTopicPartitions
        | A::ShareGroupHeartbeat
        | A::ShareGroupDescribe
        | A::ShareFetch
        | A::ShareAcknowledge
        | A::InitializeShareGroupState
        | A::ReadShareGroupState
        | A::WriteShareGroupState
        | A::DeleteShareGroupState
        | A::ReadShareGroupStateSummary => unsupported(Shape::Items),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use sluice_protocol::{
        ApiKey, Bytes, ResponseHeader, SUPPORTED_VERSIONS, decode_request, request_header_version,
        response_header_version,
    };

    use super::*;
    use crate::Principal;

    /// A default request body for every API. The match is exhaustive, so a
    /// new API in the spec set must be added here too.
    macro_rules! default_request {
        ($api:expr; $($variant:ident),* $(,)?) => {
            match $api {
                $(ApiKey::$variant => B::$variant(Default::default()),)*
            }
        };
    }

    fn default_request(api: ApiKey) -> RequestBody {
        let body = default_request!(api;
            Produce, Fetch, ListOffsets, Metadata, LeaderAndIsr, StopReplica, UpdateMetadata,
            ControlledShutdown, OffsetCommit, OffsetFetch, FindCoordinator, JoinGroup, Heartbeat,
            LeaveGroup, SyncGroup, DescribeGroups, ListGroups, SaslHandshake, ApiVersions,
            CreateTopics, DeleteTopics, DeleteRecords, InitProducerId, OffsetForLeaderEpoch,
            AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, WriteTxnMarkers, TxnOffsetCommit,
            DescribeAcls, CreateAcls, DeleteAcls, DescribeConfigs, AlterConfigs,
            AlterReplicaLogDirs, DescribeLogDirs, SaslAuthenticate, CreatePartitions,
            CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken,
            DescribeDelegationToken, DeleteGroups, ElectLeaders, IncrementalAlterConfigs,
            AlterPartitionReassignments, ListPartitionReassignments, OffsetDelete,
            DescribeClientQuotas, AlterClientQuotas, DescribeUserScramCredentials,
            AlterUserScramCredentials, Vote, BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum,
            AlterPartition, UpdateFeatures, Envelope, FetchSnapshot, DescribeCluster,
            DescribeProducers, BrokerRegistration, BrokerHeartbeat, UnregisterBroker,
            DescribeTransactions, ListTransactions, AllocateProducerIds, ConsumerGroupHeartbeat,
            ConsumerGroupDescribe, ControllerRegistration, GetTelemetrySubscriptions,
            PushTelemetry, AssignReplicasToDirs, ListClientMetricsResources,
            DescribeTopicPartitions, ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch,
            ShareAcknowledge, AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter,
            InitializeShareGroupState, ReadShareGroupState, WriteShareGroupState,
            DeleteShareGroupState, ReadShareGroupStateSummary,
        );
        match body {
            // Produce's default acks is 0, which Kafka never answers.
            B::Produce(r) => B::Produce(m::produce::ProduceRequest { acks: -1, ..r }),
            other => other,
        }
    }

    /// The top-level `error_code` of responses that have one (at some
    /// version); `None` for responses whose errors are all per item.
    macro_rules! top_level_error {
        ($response:expr; $($variant:ident),* $(,)?) => {
            match $response {
                $(ResponseBody::$variant(r) => Some(r.error_code),)*
                _ => None,
            }
        };
    }

    fn top_level_error(response: &ResponseBody) -> Option<i16> {
        top_level_error!(response;
            Fetch, Metadata, LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown,
            OffsetFetch, FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ListGroups,
            SaslHandshake, ApiVersions, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
            EndTxn, DescribeAcls, DescribeLogDirs, SaslAuthenticate, CreateDelegationToken,
            RenewDelegationToken, ExpireDelegationToken, DescribeDelegationToken, ElectLeaders,
            AlterPartitionReassignments, ListPartitionReassignments, OffsetDelete,
            DescribeClientQuotas, DescribeUserScramCredentials, Vote, BeginQuorumEpoch,
            EndQuorumEpoch, DescribeQuorum, AlterPartition, UpdateFeatures, Envelope,
            FetchSnapshot, DescribeCluster, BrokerRegistration, BrokerHeartbeat,
            UnregisterBroker, ListTransactions, AllocateProducerIds, ConsumerGroupHeartbeat,
            ControllerRegistration, GetTelemetrySubscriptions, PushTelemetry,
            AssignReplicasToDirs, ListClientMetricsResources, ShareGroupHeartbeat, ShareFetch,
            ShareAcknowledge, AddRaftVoter, RemoveRaftVoter, UpdateRaftVoter,
        )
    }

    /// Whether the top-level error field exists at `version` (the spec
    /// files list these; every other top-level error exists at all versions).
    fn has_top_level_error(api: ApiKey, version: i16) -> bool {
        match api {
            ApiKey::Fetch => version >= 7,
            ApiKey::Metadata => version >= 13,
            ApiKey::OffsetFetch => (2..=7).contains(&version),
            ApiKey::FindCoordinator => version <= 3,
            ApiKey::AddPartitionsToTxn => version >= 4,
            ApiKey::DescribeLogDirs => version >= 3,
            ApiKey::ElectLeaders => version >= 1,
            _ => true,
        }
    }

    fn expected_code(api: ApiKey) -> i16 {
        match api {
            ApiKey::SaslHandshake => codes::UNSUPPORTED_SASL_MECHANISM,
            ApiKey::SaslAuthenticate => codes::ILLEGAL_SASL_STATE,
            _ => codes::UNSUPPORTED_VERSION,
        }
    }

    fn ctx() -> RequestContext {
        RequestContext {
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 9092)),
            principal: std::sync::Arc::new(Principal::anonymous()),
            listener: std::sync::Arc::from("PLAINTEXT"),
            throttle: Default::default(),
        }
    }

    /// Sends `body` through the wire at `version`: encodes the request,
    /// decodes it the way dispatch does, answers it, and decodes the
    /// response frame. `None` when the broker sends nothing.
    fn round_trip(body: RequestBody, version: i16) -> Option<ResponseBody> {
        round_trip_with(body, version, reply)
    }

    /// [`round_trip`] through a chosen answering function.
    fn round_trip_with(
        body: RequestBody,
        version: i16,
        answer: impl FnOnce(&RequestContext, &RequestHeader, RequestBody) -> Reply,
    ) -> Option<ResponseBody> {
        let api = body.api_key();
        let header = RequestHeader {
            request_api_key: api as i16,
            request_api_version: version,
            correlation_id: 4242,
            client_id: Some("unsupported-test".to_owned()),
        };
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, request_header_version(api, version))
            .expect("header encodes");
        body.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("{} v{version} request encodes: {e}", api.name()));
        let (header, body) = decode_request(buf.freeze())
            .unwrap_or_else(|e| panic!("{} v{version} request decodes: {e}", api.name()));

        let frame = futures::executor::block_on(answer(&ctx(), &header, body))?;
        let mut frame = Bytes::from(frame.to_contiguous().expect("frame"));
        let length = i32::from_be_bytes(frame[..4].try_into().expect("length prefix"));
        assert_eq!(
            length as usize,
            frame.len() - 4,
            "{} v{version} frame length",
            api.name()
        );
        let _ = frame.split_to(4);
        let response_header =
            ResponseHeader::decode(&mut frame, response_header_version(api, version))
                .expect("response header decodes");
        assert_eq!(response_header.correlation_id, 4242);
        let response = ResponseBody::decode(api, &mut frame, version)
            .unwrap_or_else(|e| panic!("{} v{version} response decodes: {e}", api.name()));
        assert!(
            frame.is_empty(),
            "{} v{version}: {} trailing bytes",
            api.name(),
            frame.len()
        );
        Some(response)
    }

    #[test]
    fn every_api_at_every_version_gets_a_well_formed_error() {
        for &(api, min_version, max_version) in SUPPORTED_VERSIONS {
            for version in min_version..=max_version {
                let response = round_trip(default_request(api), version)
                    .unwrap_or_else(|| panic!("{} v{version}: no response", api.name()));
                assert_eq!(response.api_key(), api);
                let code = top_level_error(&response);
                if has_top_level_error(api, version) {
                    if let Some(code) = code {
                        assert_eq!(code, expected_code(api), "{} v{version}", api.name());
                    }
                } else {
                    assert_eq!(
                        code,
                        Some(0),
                        "{} v{version} has no top-level error",
                        api.name()
                    );
                }
            }
        }
    }

    #[test]
    fn fetch_below_the_advertised_minimum_gets_unsupported_version_per_partition() {
        use m::fetch::{FetchPartition, FetchRequest, FetchTopic};
        let min = crate::handlers::api_versions::advertised_min(ApiKey::Fetch).expect("advertised");
        assert!(min > 2, "the test needs Fetch v2 to be below the minimum");
        let body = B::Fetch(FetchRequest {
            max_wait_ms: 500,
            topics: vec![FetchTopic {
                topic: "t".to_owned(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let answer = |ctx: &RequestContext, header: &RequestHeader, body| {
            reply_outside_advertised(ctx, header, body, min, i16::MAX)
        };
        let Some(ResponseBody::Fetch(r)) = round_trip_with(body, 2, answer) else {
            panic!("expected a Fetch response");
        };
        let partition = &r.responses[0].partitions[0];
        assert_eq!(partition.error_code, codes::UNSUPPORTED_VERSION);
        assert_eq!(r.responses[0].topic, "t");
    }

    #[test]
    fn advertised_minimums_are_versions_the_codec_decodes() {
        for (key, min, max) in crate::handlers::advertised_versions() {
            let api = ApiKey::try_from(key).expect("known api");
            let (codec_min, codec_max) = api.supported_versions();
            assert!(
                codec_min <= min && max <= codec_max,
                "{} advertises {min}-{max}, codec has {codec_min}-{codec_max}",
                api.name()
            );
        }
    }

    #[test]
    fn produce_with_acks_zero_gets_no_response() {
        let body = B::Produce(m::produce::ProduceRequest {
            acks: 0,
            ..Default::default()
        });
        assert!(round_trip(body, 9).is_none());
    }

    #[test]
    fn describe_acls_answers_with_a_top_level_error() {
        let Some(ResponseBody::DescribeAcls(r)) =
            round_trip(default_request(ApiKey::DescribeAcls), 2)
        else {
            panic!("expected a DescribeAcls response");
        };
        assert_eq!(r.error_code, codes::UNSUPPORTED_VERSION);
        assert!(r.error_message.is_some());
        assert!(r.resources.is_empty());
    }

    #[test]
    fn sasl_handshake_offers_no_mechanisms() {
        let body = B::SaslHandshake(m::sasl_handshake::SaslHandshakeRequest {
            mechanism: "PLAIN".to_owned(),
        });
        let Some(ResponseBody::SaslHandshake(r)) = round_trip(body, 1) else {
            panic!("expected a SaslHandshake response");
        };
        assert_eq!(r.error_code, codes::UNSUPPORTED_SASL_MECHANISM);
        assert!(r.mechanisms.is_empty());
    }

    #[test]
    fn offset_commit_errors_mirror_every_partition() {
        use m::offset_commit::{OffsetCommitRequest, OffsetCommitRequestPartition as P};
        let topic = |name: &str, partitions: &[i32]| m::offset_commit::OffsetCommitRequestTopic {
            name: name.to_owned(),
            partitions: partitions
                .iter()
                .map(|&partition_index| P {
                    partition_index,
                    ..Default::default()
                })
                .collect(),
        };
        for version in [2, 8, 9] {
            let body = B::OffsetCommit(OffsetCommitRequest {
                group_id: "g".to_owned(),
                topics: vec![topic("a", &[0, 1]), topic("b", &[7])],
                ..Default::default()
            });
            let Some(ResponseBody::OffsetCommit(r)) = round_trip(body, version) else {
                panic!("expected an OffsetCommit response");
            };
            let got: Vec<(String, i32, i16)> = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.clone(), p.partition_index, p.error_code))
                })
                .collect();
            let code = codes::UNSUPPORTED_VERSION;
            assert_eq!(
                got,
                vec![
                    ("a".to_owned(), 0, code),
                    ("a".to_owned(), 1, code),
                    ("b".to_owned(), 7, code)
                ],
                "v{version}"
            );
        }
    }

    #[test]
    fn offset_fetch_errors_mirror_both_request_shapes() {
        use m::offset_fetch::*;
        let code = codes::UNSUPPORTED_VERSION;
        let old = B::OffsetFetch(OffsetFetchRequest {
            group_id: "g".to_owned(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".to_owned(),
                partition_indexes: vec![3],
            }]),
            ..Default::default()
        });
        let Some(ResponseBody::OffsetFetch(r)) = round_trip(old, 7) else {
            panic!("expected an OffsetFetch response");
        };
        assert_eq!(r.error_code, code);
        assert_eq!(r.topics[0].name, "t");
        assert_eq!(r.topics[0].partitions[0].partition_index, 3);
        assert_eq!(r.topics[0].partitions[0].committed_offset, -1);
        assert_eq!(r.topics[0].partitions[0].error_code, code);

        let new = B::OffsetFetch(OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "g2".to_owned(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        });
        let Some(ResponseBody::OffsetFetch(r)) = round_trip(new, 9) else {
            panic!("expected an OffsetFetch response");
        };
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].group_id, "g2");
        assert_eq!(r.groups[0].error_code, code);
    }

    #[test]
    fn delete_topics_errors_mirror_names_and_ids() {
        use m::delete_topics::{DeleteTopicState, DeleteTopicsRequest};
        let by_name = B::DeleteTopics(DeleteTopicsRequest {
            topic_names: vec!["x".to_owned(), "y".to_owned()],
            ..Default::default()
        });
        let Some(ResponseBody::DeleteTopics(r)) = round_trip(by_name, 5) else {
            panic!("expected a DeleteTopics response");
        };
        let names: Vec<_> = r
            .responses
            .iter()
            .map(|t| (t.name.clone(), t.error_code))
            .collect();
        let code = codes::UNSUPPORTED_VERSION;
        assert_eq!(
            names,
            vec![(Some("x".to_owned()), code), (Some("y".to_owned()), code)]
        );

        let id = uuid::Uuid::from_u128(7);
        let by_id = B::DeleteTopics(DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: None,
                topic_id: id,
            }],
            ..Default::default()
        });
        let Some(ResponseBody::DeleteTopics(r)) = round_trip(by_id, 6) else {
            panic!("expected a DeleteTopics response");
        };
        assert_eq!(r.responses[0].topic_id, id);
        assert_eq!(r.responses[0].name, None);
        assert_eq!(r.responses[0].error_code, code);
    }

    #[test]
    fn find_coordinator_batched_keys_each_get_an_error() {
        let body = B::FindCoordinator(m::find_coordinator::FindCoordinatorRequest {
            coordinator_keys: vec!["g1".to_owned(), "g2".to_owned()],
            ..Default::default()
        });
        let Some(ResponseBody::FindCoordinator(r)) = round_trip(body, 4) else {
            panic!("expected a FindCoordinator response");
        };
        let keys: Vec<_> = r
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.error_code, c.node_id))
            .collect();
        let code = codes::UNSUPPORTED_VERSION;
        assert_eq!(keys, vec![("g1", code, -1), ("g2", code, -1)]);
    }

    #[test]
    fn describe_configs_errors_mirror_each_resource() {
        use m::describe_configs::{DescribeConfigsRequest, DescribeConfigsResource};
        let body = B::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "t".to_owned(),
                configuration_keys: None,
            }],
            ..Default::default()
        });
        let Some(ResponseBody::DescribeConfigs(r)) = round_trip(body, 4) else {
            panic!("expected a DescribeConfigs response");
        };
        assert_eq!(r.results.len(), 1);
        assert_eq!(
            (
                r.results[0].resource_type,
                r.results[0].resource_name.as_str()
            ),
            (2, "t")
        );
        assert_eq!(r.results[0].error_code, codes::UNSUPPORTED_VERSION);
    }

    #[test]
    fn add_partitions_to_txn_v3_errors_mirror_partitions() {
        use m::add_partitions_to_txn::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
        let body = B::AddPartitionsToTxn(AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: "tx".to_owned(),
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: "t".to_owned(),
                partitions: vec![0, 2],
            }],
            ..Default::default()
        });
        let Some(ResponseBody::AddPartitionsToTxn(r)) = round_trip(body, 0) else {
            panic!("expected an AddPartitionsToTxn response");
        };
        let topic = &r.results_by_topic_v3_and_below[0];
        assert_eq!(topic.name, "t");
        let partitions: Vec<_> = topic
            .results_by_partition
            .iter()
            .map(|p| (p.partition_index, p.partition_error_code))
            .collect();
        let code = codes::UNSUPPORTED_VERSION;
        assert_eq!(partitions, vec![(0, code), (2, code)]);
    }

    /// Encodes `body` at `version` as a request frame (header + body, no
    /// length prefix), as the connection hands it to dispatch.
    fn request_frame(body: &RequestBody, version: i16) -> Bytes {
        let api = body.api_key();
        let header = RequestHeader {
            request_api_key: api as i16,
            request_api_version: version,
            correlation_id: 4242,
            client_id: Some("unsupported-test".to_owned()),
        };
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, request_header_version(api, version))
            .expect("header encodes");
        body.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("{} v{version} request encodes: {e}", api.name()));
        buf.freeze()
    }

    /// Every version the codec decodes but we do not advertise, for every
    /// advertised API except ApiVersions (which keeps its own answer).
    fn unadvertised_versions() -> Vec<(ApiKey, i16, i16, i16)> {
        let mut out = Vec::new();
        for (key, min, max) in crate::handlers::advertised_versions() {
            let api = ApiKey::try_from(key).expect("known api");
            if api == ApiKey::ApiVersions {
                continue;
            }
            let (codec_min, codec_max) = api.supported_versions();
            for version in (codec_min..min).chain(max + 1..=codec_max) {
                out.push((api, version, min, max));
            }
        }
        out
    }

    #[tokio::test]
    async fn every_decodable_version_outside_the_advertised_range_is_unsupported_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::testing::broker_in(dir.path()).await;
        let cases = unadvertised_versions();
        // Today the codec reaches past our maximum for Produce (v12), Fetch
        // (v17), ListOffsets (v9-10) and Metadata (v13); the test must see one.
        assert!(
            cases.iter().any(|&(_, version, _, max)| version > max),
            "no API decodes above its advertised maximum; the test checks nothing above"
        );
        for (api, version, min, max) in cases {
            let body = default_request(api);
            let frame = request_frame(&body, version);
            let routed = crate::handlers::route_request(&broker, ctx(), frame.clone())
                .unwrap_or_else(|_| panic!("{} v{version} keeps the connection", api.name()));
            let routed = routed.await;
            let (header, decoded) = decode_request(frame).expect("decodes");
            let expected = reply_outside_advertised(&ctx(), &header, decoded, min, max).await;
            assert!(
                expected.is_some(),
                "{} v{version} gets an answer",
                api.name()
            );
            let contiguous = |f: Option<sluice_protocol::SplicedFrame>| {
                f.map(|f| f.to_contiguous().expect("frame"))
            };
            assert_eq!(
                contiguous(routed),
                contiguous(expected),
                "{} v{version} (advertised v{min}-v{max}) must get UNSUPPORTED_VERSION",
                api.name()
            );
        }
    }

    #[tokio::test]
    async fn list_offsets_above_the_advertised_maximum_gets_unsupported_version_per_partition() {
        use m::list_offsets::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::testing::broker_in(dir.path()).await;
        crate::testing::create_topic(&broker, "t", 1).await;
        let (_, max) = crate::handlers::api_versions::advertised_range(ApiKey::ListOffsets)
            .expect("advertised");
        let version = max + 1;
        assert!(
            version <= ApiKey::ListOffsets.supported_versions().1,
            "the test needs a ListOffsets version the codec decodes above the maximum"
        );
        let body = B::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: "t".to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let reply = crate::handlers::route_request(&broker, ctx(), request_frame(&body, version))
            .unwrap_or_else(|_| panic!("keeps the connection"));
        let mut frame = Bytes::from(
            reply
                .await
                .expect("an answer")
                .to_contiguous()
                .expect("frame"),
        );
        let _ = frame.split_to(4);
        let api = ApiKey::ListOffsets;
        ResponseHeader::decode(&mut frame, response_header_version(api, version))
            .expect("response header decodes");
        let Ok(ResponseBody::ListOffsets(r)) = ResponseBody::decode(api, &mut frame, version)
        else {
            panic!("expected a ListOffsets response");
        };
        let partition = &r.topics[0].partitions[0];
        assert_eq!(partition.error_code, codes::UNSUPPORTED_VERSION);
        assert_eq!(
            partition.offset, -1,
            "no offset is served at an unadvertised version"
        );
    }
    #[test]
    fn inter_broker_apis_answer_with_only_a_top_level_error() {
        // Vote names topics and partitions; a controller-less broker lists
        // none of them back, only the top-level error.
        let body = B::Vote(m::vote::VoteRequest {
            topics: vec![m::vote::TopicData {
                topic_name: "__cluster_metadata".to_owned(),
                partitions: vec![m::vote::PartitionData::default()],
            }],
            ..Default::default()
        });
        let Some(ResponseBody::Vote(r)) = round_trip(body, 1) else {
            panic!("expected a Vote response");
        };
        assert_eq!(r.error_code, codes::UNSUPPORTED_VERSION);
        assert!(r.topics.is_empty());
    }

    #[test]
    fn sasl_authenticate_without_a_handshake_is_an_illegal_sasl_state() {
        let Some(ResponseBody::SaslAuthenticate(r)) =
            round_trip(default_request(ApiKey::SaslAuthenticate), 2)
        else {
            panic!("expected a SaslAuthenticate response");
        };
        assert_eq!(r.error_code, codes::ILLEGAL_SASL_STATE);
        assert_eq!(
            r.error_message.as_deref(),
            Some("SASL is not enabled on this broker")
        );
    }
}
