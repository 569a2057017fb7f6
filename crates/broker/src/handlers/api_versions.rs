//! ApiVersions (18): which APIs and versions this broker serves.

use std::future::Future;

use bytes::BytesMut;
use sluice_protocol::error::codes::UNSUPPORTED_VERSION;
use sluice_protocol::messages::api_versions::{
    ApiVersion, ApiVersionsRequest, ApiVersionsResponse,
};
use sluice_protocol::{ApiKey, RequestDecodeError, RequestHeader, encode_response};

use super::RequestContext;

/// What we advertise, as (api, min, max). Minimums stay where clients'
/// feature detection expects them even where older versions are refused:
/// Kafka 4.0 advertises Produce from v0 but rejects v0-2, because older
/// librdkafka turns features off when an advertised minimum rises.
const ADVERTISED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    // Broker to broker: a transaction coordinator's markers (Kafka 4 serves v1 only).
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    // SASL (crate::sasl): served by the connection on SASL listeners;
    // a PLAINTEXT listener answers that it offers no mechanism. v0 of
    // SaslHandshake is advertised as Kafka does, but refused.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // Kafka 4 (KIP-896) serves the ACL APIs from v1.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// The advertised (api key, min, max) triples.
pub fn advertised_versions() -> impl Iterator<Item = (i16, i16, i16)> {
    ADVERTISED
        .iter()
        .map(|&(key, min, max)| (key as i16, min, max))
}

/// The lowest version we advertise for `api`, if we advertise it at all.
#[cfg(test)]
pub(crate) fn advertised_min(api: ApiKey) -> Option<i16> {
    advertised_range(api).map(|(min, _)| min)
}

/// The `(min, max)` versions we advertise for `api`, if we advertise it at all.
pub(crate) fn advertised_range(api: ApiKey) -> Option<(i16, i16)> {
    ADVERTISED
        .iter()
        .find(|&&(key, _, _)| key == api)
        .map(|&(_, min, max)| (min, max))
}

fn response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: advertised_versions()
            .map(|(api_key, min_version, max_version)| ApiVersion {
                api_key,
                min_version,
                max_version,
                ..Default::default()
            })
            .collect(),
        throttle_time_ms: 0,
        ..Default::default()
    }
}

/// Handles ApiVersions at a version we know.
pub fn handle(
    _ctx: &RequestContext,
    _header: &RequestHeader,
    _request: ApiVersionsRequest,
) -> impl Future<Output = ApiVersionsResponse> + Send + 'static {
    std::future::ready(response(0))
}

/// Kafka's answer to ApiVersions at a version it does not know: a v0 body
/// with UNSUPPORTED_VERSION and the full list, so the client can retry at a
/// version we support. The response header is v0, as for every ApiVersions.
pub(crate) fn unsupported_version_reply(error: &RequestDecodeError) -> Option<BytesMut> {
    let RequestDecodeError::UnsupportedVersion {
        api_key: ApiKey::ApiVersions,
        header,
    } = error
    else {
        return None;
    };
    encode_response(header.correlation_id, 0, &response(UNSUPPORTED_VERSION), 0).ok()
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::testing;

    #[test]
    fn lists_every_advertised_api_with_its_range() {
        let header = testing::header(18, 3);
        let response = handle(&testing::ctx(), &header, ApiVersionsRequest::default())
            .now_or_never()
            .expect("answers at once");
        assert_eq!(response.error_code, 0);
        assert_eq!(response.api_keys.len(), ADVERTISED.len());
        let produce = response
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::Produce as i16)
            .expect("Produce advertised");
        assert_eq!((produce.min_version, produce.max_version), (0, 11));
        assert!(
            response
                .api_keys
                .iter()
                .all(|k| k.min_version <= k.max_version)
        );
        assert_eq!(advertised_range(ApiKey::Fetch), Some((4, 16)));
        assert_eq!(advertised_range(ApiKey::SaslHandshake), Some((0, 1)));
    }

    #[test]
    fn an_unknown_api_versions_version_gets_a_v0_answer_and_other_errors_none() {
        let header = RequestHeader {
            request_api_key: ApiKey::ApiVersions as i16,
            request_api_version: 99,
            correlation_id: 5,
            client_id: None,
        };
        let error = RequestDecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            header: header.clone(),
        };
        let frame = unsupported_version_reply(&error).expect("answered");
        // Length, correlation id, then (v0 body) UNSUPPORTED_VERSION.
        assert_eq!(frame[4..8], 5i32.to_be_bytes());
        assert_eq!(frame[8..10], UNSUPPORTED_VERSION.to_be_bytes());
        let other = RequestDecodeError::UnsupportedVersion {
            api_key: ApiKey::Fetch,
            header,
        };
        assert!(unsupported_version_reply(&other).is_none());
    }
}
