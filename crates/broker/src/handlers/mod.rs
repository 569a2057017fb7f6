//! Request handlers, one file per Kafka API.
//!
//! [`dispatch`] decodes a frame and routes it. Each handler is a plain
//! function called at dispatch time, in request order, that returns a
//! future for the rest of its work. Work that must happen in request order
//! (produce appends) runs in the function body; waiting (fsync, long poll)
//! happens in the future. The connection writes the futures' responses in
//! request order.
//!
//! A handler receives only the handles it uses: hosted partitions
//! ([`ReplicaManager`](sluice_replica::ReplicaManager)), a metadata image,
//! the [`Controller`](sluice_metadata::Controller) for admin changes, a
//! coordinator, and the few config values it reads. Only [`dispatch`] sees
//! the whole [`Broker`], so a handler can be tested against the pieces it
//! names, without a network or a broker.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod admin_configs;
mod api_versions;
mod cluster;
mod consumer_group_describe;
mod consumer_group_heartbeat;
#[cfg(test)]
mod coordinator_tests;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_groups;
mod describe_producers;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod forward;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;
mod txn_verify;
mod unregister_broker;
mod unsupported;
mod write_txn_markers;

pub use txn_verify::Verifier;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_protocol::error::codes;
use sluice_protocol::messages::{RequestBody, ResponseBody};
use sluice_protocol::{
    ApiKey, Encode, RequestDecodeError, RequestHeader, decode_request, encode_response,
    response_header_version,
};

use crate::{Broker, Principal};

pub use api_versions::advertised_versions;
pub use produce::check_client_batches;

/// A response frame in the making; `None` means "send nothing" (acks=0).
pub type Reply = Pin<Box<dyn Future<Output = Option<BytesMut>> + Send>>;

/// Who is asking, and from where. Every request carries a principal.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// The authenticated principal (`User:ANONYMOUS` until SASL exists);
    /// shared by every request of the connection.
    pub principal: Arc<Principal>,
    /// The listener the request arrived on, named as Kafka names listeners
    /// (`PLAINTEXT` until TLS and SASL listeners exist); ACLs and quotas
    /// will key on it.
    pub listener: Arc<str>,
}

/// This broker as clients address it: what Metadata, FindCoordinator and
/// DescribeCluster name as the leader, coordinator and controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `node.id`.
    pub node_id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: u16,
    /// The cluster id.
    pub cluster_id: String,
}

/// Decodes one frame and starts its handler, timing it for the metrics. An
/// error closes the connection.
pub fn dispatch(
    broker: &Broker,
    ctx: RequestContext,
    frame: Bytes,
) -> Result<Reply, RequestDecodeError> {
    // The API key is the header's first field; reading it here keeps the
    // metrics hook out of every return path below.
    let api_key = frame
        .get(..2)
        .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
    let request_bytes = frame.len();
    let started = std::time::Instant::now();
    let reply = route_request(broker, ctx, frame)?;
    Ok(Box::pin(async move {
        let response = reply.await;
        let response_bytes = response.as_ref().map_or(0, |r| r.len());
        sluice_metrics::request_done(api_key, started.elapsed(), request_bytes, response_bytes);
        response
    }))
}

/// Decodes one frame and starts its handler.
fn route_request(
    broker: &Broker,
    ctx: RequestContext,
    frame: Bytes,
) -> Result<Reply, RequestDecodeError> {
    // Kept for forwarding: the controller gets the frame as it came.
    let original = frame.clone();
    let (header, body) = match decode_request(frame) {
        Ok(decoded) => decoded,
        Err(e) => return undecodable(&ctx, e),
    };
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    tracing::trace!(peer = %ctx.peer, api_key = header.request_api_key, version, correlation_id, "request");

    // Only advertised versions are served. Kafka 4 (KIP-896) refuses
    // versions below its minimum instead of serving them with response
    // shapes that cannot carry today's data. Versions above our maximum
    // decode (the codec follows newer specs) but their fields have not been
    // implemented, so serving them would answer with a meaning we do not
    // keep; Kafka closes the connection there, we answer UNSUPPORTED_VERSION
    // and keep it open. ApiVersions keeps its own answer (a v0 response
    // listing our versions), which clients rely on to negotiate.
    if let Some((min, max)) = api_versions::advertised_range(body.api_key())
        && !(min..=max).contains(&version)
        && body.api_key() != ApiKey::ApiVersions
    {
        return Ok(unsupported::reply_outside_advertised(
            &ctx, &header, body, min, max,
        ));
    }

    // Metadata changes run on the active controller; another broker
    // forwards them there.
    if let Some(quorum) = forward::must_forward(broker, header.request_api_key) {
        return Ok(forward::forward(quorum, &ctx, header, body, original));
    }

    // The only place that sees the whole `Broker`: each handler gets the
    // narrow handles it uses, so its signature says what it may touch.
    let b = broker;
    macro_rules! route {
        (
            $($variant:ident($req:ident) => $call:expr),* $(,)?;
            detached: $($dvariant:ident($dreq:ident) => $dcall:expr),* $(,)?
        ) => {
            match body {
                RequestBody::Produce(request) => {
                    let future = produce::handle(
                        &b.replicas, &b.metadata.image(), &b.txn, &b.verifier, &ctx, &header,
                        request,
                    );
                    let header = header.clone();
                    Ok(Box::pin(async move {
                        let response = future.await?;
                        encode(&header, &response)
                    }))
                }
                $(RequestBody::$variant($req) => Ok(respond(&header, $call)),)*
                $(RequestBody::$dvariant($dreq) => Ok(respond_detached(&header, $dcall)),)*
                other => Ok(unsupported::reply(&ctx, &header, other)),
            }
        };
    }
    route! {
        ApiVersions(r) => api_versions::handle(&ctx, &header, r),
        Metadata(r) => metadata::handle(
            &b.controller, &b.replicas, node_info(b), b.config.topics.auto_create,
            &ctx, &header, r,
        ),
        Fetch(r) => fetch::handle(
            &b.replicas, &b.metadata.image(), b.config.limits.fetch_max_bytes,
            &ctx, &header, r,
        ),
        ListOffsets(r) => list_offsets::handle(&b.replicas, &b.metadata.image(), &ctx, &header, r),
        DescribeConfigs(r) => admin_configs::describe(&b.metadata.image(), &b.config, &ctx, &header, r),
        DescribeCluster(r) => describe_cluster::handle(&b.controller, node_info(b), &ctx, &header, r),
        OffsetForLeaderEpoch(r) => offset_for_leader_epoch::handle(
            &b.replicas, &b.metadata.image(), &ctx, &header, r,
        ),
        FindCoordinator(r) => find_coordinator::handle(
            &b.groups, &b.txn, &b.metadata, node_info(b), &ctx, &header, r,
        ),
        JoinGroup(r) => join_group::handle(&b.groups, &ctx, &header, r),
        SyncGroup(r) => sync_group::handle(&b.groups, &ctx, &header, r),
        Heartbeat(r) => heartbeat::handle(&b.groups, &ctx, &header, r),
        LeaveGroup(r) => leave_group::handle(&b.groups, &ctx, &header, r),
        // Appends, then fsyncs and applies on its own task (group coordinator),
        // so pipelined commits keep their order.
        OffsetCommit(r) => offset_commit::handle(&b.groups, &ctx, &header, r),
        OffsetFetch(r) => offset_fetch::handle(&b.groups, &ctx, &header, r),
        OffsetDelete(r) => offset_delete::handle(&b.groups, &ctx, &header, r),
        ListGroups(r) => list_groups::handle(&b.groups, &ctx, &header, r),
        DescribeGroups(r) => describe_groups::handle(&b.groups, &ctx, &header, r),
        DeleteGroups(r) => delete_groups::handle(&b.groups, &ctx, &header, r),
        ConsumerGroupHeartbeat(r) => consumer_group_heartbeat::handle(&b.groups, &ctx, &header, r),
        ConsumerGroupDescribe(r) => consumer_group_describe::handle(
            &b.groups, &b.metadata.image(), &ctx, &header, r,
        ),
        TxnOffsetCommit(r) => txn_offset_commit::handle(
            &b.verifier, &b.groups, b.metadata.image(), &ctx, &header, r,
        ),
        DescribeTransactions(r) => describe_transactions::handle(&b.txn, &ctx, &header, r),
        ListTransactions(r) => list_transactions::handle(&b.txn, &ctx, &header, r),
        DescribeProducers(r) => describe_producers::handle(
            &b.replicas, &b.metadata.image(), &ctx, &header, r,
        );
        // Multi-step changes to durable state (metadata log, transaction
        // state, markers): each must run to the end once started, or it
        // leaves a record in a log that the in-memory state never applied.
        detached:
        CreateTopics(r) => create_topics::handle(&b.controller, &b.config.log, &ctx, &header, r),
        DeleteTopics(r) => delete_topics::handle(&b.controller, &ctx, &header, r),
        CreatePartitions(r) => create_partitions::handle(&b.controller, &ctx, &header, r),
        DeleteRecords(r) => delete_records::handle(
            &b.replicas, &b.metadata.image(), &ctx, &header, r,
        ),
        AlterConfigs(r) => admin_configs::alter(&b.controller, &ctx, &header, r),
        IncrementalAlterConfigs(r) => admin_configs::incremental_alter(&b.controller, &ctx, &header, r),
        UnregisterBroker(r) => unregister_broker::handle(&b.controller, &ctx, &header, r),
        InitProducerId(r) => init_producer_id::handle(&b.txn, &b.producer_ids, &ctx, &header, r),
        AddPartitionsToTxn(r) => add_partitions_to_txn::handle(&b.txn, b.metadata.image(), &ctx, &header, r),
        AddOffsetsToTxn(r) => add_offsets_to_txn::handle(&b.txn, &ctx, &header, r),
        EndTxn(r) => end_txn::handle(&b.txn, &ctx, &header, r),
        WriteTxnMarkers(r) => write_txn_markers::handle(&b.replicas, &b.groups, &ctx, &header, r),
    }
}

/// This broker as clients address it, for the handlers that name it.
fn node_info(broker: &Broker) -> NodeInfo {
    NodeInfo {
        node_id: broker.config.node_id,
        host: broker.advertised.0.clone(),
        port: broker.advertised.1,
        cluster_id: broker.cluster_id(),
    }
}

/// Wraps a handler's future into a reply that encodes its response.
fn respond<R, F>(header: &RequestHeader, future: F) -> Reply
where
    R: Encode + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    let header = header.clone();
    Box::pin(async move {
        let response = future.await;
        encode(&header, &response)
    })
}

/// Like [`respond`], but the handler's future runs on its own task, started
/// now, and finishes even if the connection drops the reply (a failed write
/// to a client that went away drops every reply queued behind it).
fn respond_detached<R, F>(header: &RequestHeader, future: F) -> Reply
where
    R: Encode + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    let header = header.clone();
    let task = sluice_runtime::spawn_detached("kafka-request", future);
    Box::pin(async move {
        match task.await {
            Ok(response) => encode(&header, &response),
            // A panicking handler is a bug, logged and counted by the
            // runtime; the connection closes (no reply).
            Err(_) => None,
        }
    })
}

/// Encodes a response for `header`'s API and version. A response that
/// cannot be encoded is a bug in a handler (a value the version cannot
/// carry): it is logged, and the client gets the API's top-level
/// UNKNOWN_SERVER_ERROR instead. An API whose response has no top-level
/// error (Produce, ListOffsets, …) cannot say that, so the request gets no
/// reply and the connection closes.
fn encode<R: Encode>(header: &RequestHeader, response: &R) -> Option<BytesMut> {
    let version = header.request_api_version;
    let Ok(api_key) = ApiKey::try_from(header.request_api_key) else {
        return None;
    };
    let header_version = response_header_version(api_key, version);
    match encode_response(header.correlation_id, header_version, response, version) {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::error!(
                api_key = header.request_api_key,
                version,
                correlation_id = header.correlation_id,
                "cannot encode response: {e}"
            );
            encode_server_error(header, api_key, header_version)
        }
    }
}

/// The request's own error response (every item it names, with `code`),
/// encoded for its version; for a request that could not be served at all.
pub(crate) fn encode_error_response(
    header: &RequestHeader,
    body: RequestBody,
    code: i16,
    message: &str,
) -> Option<BytesMut> {
    encode(
        header,
        &unsupported::Body(body.error_response(code, Some(message))),
    )
}

/// The API's response with only its top-level error set to
/// UNKNOWN_SERVER_ERROR, or `None` if the response has nowhere to carry it
/// (it would encode the same as a success with nothing in it).
fn encode_server_error(
    header: &RequestHeader,
    api_key: ApiKey,
    header_version: i16,
) -> Option<BytesMut> {
    let version = header.request_api_version;
    let frame = |code, message| {
        let body = unsupported::Body(ResponseBody::top_level_error(api_key, code, message));
        encode_response(header.correlation_id, header_version, &body, version).ok()
    };
    let failed = frame(
        codes::UNKNOWN_SERVER_ERROR,
        Some("the broker could not encode its response"),
    )?;
    let empty = frame(codes::NONE, None)?;
    (failed != empty).then_some(failed)
}

/// A frame that did not decode. ApiVersions with an unknown version gets
/// Kafka's v0 answer so the client can retry; everything else closes the
/// connection with a log line naming what was wrong.
fn undecodable(
    ctx: &RequestContext,
    error: RequestDecodeError,
) -> Result<Reply, RequestDecodeError> {
    if let Some(reply) = api_versions::unsupported_version_reply(&error) {
        tracing::info!(peer = %ctx.peer, "ApiVersions at an unsupported version; answering with v0 UNSUPPORTED_VERSION");
        return Ok(Box::pin(async move { Some(reply) }));
    }
    tracing::warn!(peer = %ctx.peer, "malformed or unsupported request: {error}");
    Err(error)
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    sluice_metadata::now_ms()
}

#[cfg(test)]
mod tests {
    use bytes::Buf;
    use sluice_protocol::messages::find_coordinator::FindCoordinatorResponse;
    use sluice_protocol::{Decode, RequestHeader};

    use super::*;

    fn header(api_key: ApiKey, version: i16) -> RequestHeader {
        RequestHeader {
            request_api_key: api_key as i16,
            request_api_version: version,
            correlation_id: 7,
            client_id: None,
        }
    }

    #[test]
    fn an_unencodable_response_becomes_the_apis_top_level_server_error() {
        let h = header(ApiKey::FindCoordinator, 1);
        let header_version = response_header_version(ApiKey::FindCoordinator, 1);
        let mut frame = encode_server_error(&h, ApiKey::FindCoordinator, header_version)
            .expect("FindCoordinator v1 has a top-level error code")
            .freeze();
        frame.advance(4); // length
        assert_eq!(frame.get_i32(), 7, "correlation id");
        let body = FindCoordinatorResponse::decode(&mut frame, 1).expect("decodes");
        assert_eq!(body.error_code, codes::UNKNOWN_SERVER_ERROR);
        assert_eq!(
            body.error_message.as_deref(),
            Some("the broker could not encode its response")
        );
    }

    #[test]
    fn an_api_without_a_top_level_error_gets_no_substitute_answer() {
        for (api, version) in [(ApiKey::Produce, 9), (ApiKey::CreateTopics, 4)] {
            let header_version = response_header_version(api, version);
            assert!(
                encode_server_error(&header(api, version), api, header_version).is_none(),
                "{api:?} v{version} would look like an empty success"
            );
        }
    }
}
