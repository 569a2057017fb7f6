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

#[cfg(test)]
mod acl_tests;
mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod admin_configs;
mod alter_partition_reassignments;
mod api_versions;
mod client_quotas;
mod cluster;
mod consumer_group_describe;
mod consumer_group_heartbeat;
#[cfg(test)]
mod coordinator_tests;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_cluster;
mod describe_groups;
mod describe_producers;
mod describe_transactions;
mod elect_leaders;
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
mod list_partition_reassignments;
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
mod user_scram_credentials;
mod write_txn_markers;

pub use txn_verify::Verifier;

use std::future::Future;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_protocol::error::codes;
use sluice_protocol::messages::{RequestBody, ResponseBody};
use sluice_protocol::{
    ApiKey, Encode, ErrorCodes, RequestDecodeError, RequestHeader, SplicedFrame, decode_request,
    encode_response, encode_response_spliced, response_header_version,
};

use crate::{Broker, quota};

pub use admin_configs::broker_configs;
pub use api_versions::advertised_versions;
pub use fetch::from_follower as fetch_from_follower;
pub use produce::check_client_batches;

pub use crate::context::{Reply, RequestContext};

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
    /// The listener the request arrived on: every broker is named by its
    /// endpoint on this listener (Kafka's rule), and a broker without one
    /// is left out.
    pub listener: String,
}

/// Decodes one frame and starts its handler, timing it for the metrics. An
/// error closes the connection. For frames that did not wait (forwarded,
/// benches); the connection loop uses [`dispatch_read_at`].
pub fn dispatch(
    broker: &Broker,
    ctx: RequestContext,
    frame: Bytes,
) -> Result<Reply, RequestDecodeError> {
    dispatch_read_at(broker, ctx, frame, std::time::Instant::now())
}

/// [`dispatch`] of a frame fully read at `read_at`: the time since then is
/// the request's queue time (Kafka's RequestQueueTimeMs).
pub fn dispatch_read_at(
    broker: &Broker,
    ctx: RequestContext,
    frame: Bytes,
    read_at: std::time::Instant,
) -> Result<Reply, RequestDecodeError> {
    // The API key is the header's first field; reading it here keeps the
    // metrics hook out of every return path below.
    let api_key = frame
        .get(..2)
        .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
    let request_bytes = frame.len();
    let started = std::time::Instant::now();
    sluice_metrics::request_dequeued(api_key, started.saturating_duration_since(read_at));
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
    // Handler time at dispatch counts toward the request quota.
    let sync_started = std::time::Instant::now();
    // Kept for forwarding: the controller gets the frame as it came.
    let original = frame.clone();
    let request_bytes = frame.len();
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

    // Cluster-wide admin APIs whose handlers check nothing per item: the
    // whole request needs one operation on the cluster (Kafka's rules).
    if let Some(operation) = cluster_operation(body.api_key())
        && !broker.authorizer.cluster(&ctx, operation)
    {
        tracing::debug!(peer = %ctx.peer, principal = %ctx.principal.name, api_key = header.request_api_key, "cluster operation denied");
        let reply = encode_error_response(
            &header,
            body,
            codes::CLUSTER_AUTHORIZATION_FAILED,
            "the principal may not do this on the cluster",
        );
        return Ok(Box::pin(async move { reply }));
    }

    // Metadata changes run on the active controller; another broker
    // forwards them there.
    if let Some(quorum) = forward::must_forward(broker, header.request_api_key) {
        return Ok(forward::forward(quorum, &ctx, header, body, original));
    }

    // Client quotas (crate::quota): every request's handler time is
    // charged to its (user, client id) unless it is replication or
    // inter-broker traffic, which Kafka exempts.
    let request_charge = if exempt_from_request_quota(&ctx, &body, version) {
        None
    } else {
        quota::Charge::new(
            &broker.quotas,
            broker.metadata.image(),
            quota::QuotaType::Request,
            &ctx,
            &header,
        )
    };

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
                    // The records are the last holders of the frame's
                    // buffer: the log can then take it over instead of
                    // copying (see `produce::append_one`).
                    drop(original);
                    let image = b.metadata.image();
                    let future = produce::handle(
                        &b.replicas, &image, &b.txn, &b.verifier, &b.authorizer, &b.registry,
                        &ctx, &header, request,
                    );
                    let charge = quota::Charge::new(
                        &b.quotas, image, quota::QuotaType::Produce, &ctx, &header,
                    );
                    // Charged and muted at dispatch, before the next frame
                    // is read: with requests pipelined, charging when the
                    // append completes would let every request already read
                    // through before the first throttle took hold. (Kafka
                    // charges after the append, but reads one request at a
                    // time.) acks=0 has no response but is muted all the same.
                    let throttle = charge.as_ref().map_or(Duration::ZERO, |c| {
                        let throttle = c.record(request_bytes as f64);
                        c.mute(throttle);
                        throttle
                    });
                    let header = header.clone();
                    Ok(Box::pin(async move {
                        let mut response = future.await?;
                        count_errors(&header, &response);
                        response.throttle_time_ms = quota::throttle_time_ms(throttle);
                        let frame = encode(&header, &response);
                        if let Some(charge) = charge {
                            charge.hold_back(throttle).await;
                        }
                        frame
                    }))
                }
                RequestBody::Fetch(request) => {
                    let image = b.metadata.image();
                    // A consumer's fetch quota (crate::quota::ConsumerFetch)
                    // caps the response and throttles it; followers have none.
                    let quota = quota::ConsumerFetch::new(
                        &b.quotas, &image, &ctx, &header, fetch::from_follower(&request, version),
                    );
                    let max_bytes = quota.max_bytes(b.config.limits.fetch_max_bytes);
                    // KIP-227: an incremental fetch reads every partition of
                    // its session; the response keeps only what changed.
                    let sessions = std::sync::Arc::clone(&b.fetch_sessions);
                    let (future, ticket) =
                        match sessions.begin(&ctx.principal.name, version, request) {
                            Ok((request, ticket)) => {
                                let future = fetch::handle(
                                    &b.replicas, &image, max_bytes, &b.throttles,
                                    &b.authorizer, &ctx, &header, request,
                                );
                                (futures::future::Either::Left(future), Some(ticket))
                            }
                            Err(error_code) => {
                                let response = sluice_protocol::messages::fetch::FetchResponse {
                                    error_code,
                                    ..Default::default()
                                };
                                (futures::future::Either::Right(std::future::ready(response)), None)
                            }
                        };
                    let header = header.clone();
                    Ok(Box::pin(async move {
                        let mut response = future.await;
                        let mut sent = ticket.map(|t| sessions.finish(t, &mut response));
                        count_errors(&header, &response);
                        let frame = quota
                            .answer(response, |r| encode(&header, r), |r| {
                                if let Some(sent) = sent.take() {
                                    sessions.throttled(sent, r);
                                }
                            })
                            .await;
                        if let Some(sent) = sent {
                            sessions.commit(sent);
                        }
                        frame
                    }))
                }
                $(RequestBody::$variant($req) => Ok(respond(&header, $call)),)*
                $(RequestBody::$dvariant($dreq) => Ok(respond_detached(&header, $dcall)),)*
                other => Ok(unsupported::reply(&ctx, &header, other)),
            }
        };
    }
    let routed: Result<Reply, RequestDecodeError> = route! {
        ApiVersions(r) => api_versions::handle(&ctx, &header, r),
        Metadata(r) => metadata::handle(
            &b.controller, &b.replicas, node_info(b, &ctx.listener), b.config.topics.auto_create,
            &b.authorizer, &ctx, &header, r,
        ),
        ListOffsets(r) => list_offsets::handle(
            &b.replicas, &b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        DescribeConfigs(r) => admin_configs::describe(
            &b.metadata.image(), &b.config, &b.authorizer, &ctx, &header, r,
        ),
        DescribeCluster(r) => describe_cluster::handle(
            &b.controller, node_info(b, &ctx.listener), &b.authorizer, &ctx, &header, r,
        ),
        OffsetForLeaderEpoch(r) => offset_for_leader_epoch::handle(
            &b.replicas, &b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        FindCoordinator(r) => find_coordinator::handle(
            &b.groups, &b.txn, &b.metadata, node_info(b, &ctx.listener), &b.authorizer, &ctx, &header, r,
        ),
        JoinGroup(r) => join_group::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        SyncGroup(r) => sync_group::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        Heartbeat(r) => heartbeat::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        LeaveGroup(r) => leave_group::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        // Appends, then fsyncs and applies on its own task (group coordinator),
        // so pipelined commits keep their order.
        OffsetCommit(r) => offset_commit::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        OffsetFetch(r) => offset_fetch::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        OffsetDelete(r) => offset_delete::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        ListGroups(r) => list_groups::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        DescribeGroups(r) => describe_groups::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        DeleteGroups(r) => delete_groups::handle(&b.groups, &b.authorizer, &ctx, &header, r),
        ConsumerGroupHeartbeat(r) => consumer_group_heartbeat::handle(
            &b.groups, &b.authorizer, &ctx, &header, r,
        ),
        ConsumerGroupDescribe(r) => consumer_group_describe::handle(
            &b.groups, &b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        TxnOffsetCommit(r) => txn_offset_commit::handle(
            &b.verifier, &b.groups, b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        DescribeTransactions(r) => describe_transactions::handle(
            &b.txn, &b.authorizer, &ctx, &header, r,
        ),
        ListTransactions(r) => list_transactions::handle(&b.txn, &b.authorizer, &ctx, &header, r),
        DescribeProducers(r) => describe_producers::handle(
            &b.replicas, &b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        ListPartitionReassignments(r) => list_partition_reassignments::handle(
            &b.controller, &b.authorizer, &ctx, &header, r,
        ),
        DescribeUserScramCredentials(r) => user_scram_credentials::describe(
            &b.controller, &ctx, &header, r,
        ),
        DescribeAcls(r) => describe_acls::handle(&b.metadata.image(), &b.authorizer, &ctx, &header, r),
        DescribeClientQuotas(r) => client_quotas::describe(&b.metadata.image(), &ctx, &header, r);
        // Multi-step changes to durable state (metadata log, transaction
        // state, markers): each must run to the end once started, or it
        // leaves a record in a log that the in-memory state never applied.
        detached:
        // KIP-599: strict (THROTTLING_QUOTA_EXCEEDED) from CreateTopics v6,
        // DeleteTopics v5, CreatePartitions v3.
        CreateTopics(r) => create_topics::handle(
            &b.controller, &b.config.log, &b.authorizer,
            quota::MutationCharge::new(&b.quotas, b.metadata.image(), &ctx, &header, 6),
            b.config.topics.num_partitions,
            &ctx, &header, r,
        ),
        DeleteTopics(r) => delete_topics::handle(
            &b.controller, &b.authorizer,
            quota::MutationCharge::new(&b.quotas, b.metadata.image(), &ctx, &header, 5),
            &ctx, &header, r,
        ),
        CreatePartitions(r) => create_partitions::handle(
            &b.controller, &b.authorizer,
            quota::MutationCharge::new(&b.quotas, b.metadata.image(), &ctx, &header, 3),
            &ctx, &header, r,
        ),
        DeleteRecords(r) => delete_records::handle(
            &b.replicas, &b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        AlterConfigs(r) => admin_configs::alter(&b.controller, &b.authorizer, &ctx, &header, r),
        IncrementalAlterConfigs(r) => admin_configs::incremental_alter(
            &b.controller, &b.authorizer, &ctx, &header, r,
        ),
        UnregisterBroker(r) => unregister_broker::handle(
            &b.controller, &b.authorizer, &ctx, &header, r,
        ),
        // These run on the active controller through the controller's own
        // call (not frame forwarding), like the changes a broker makes itself.
        AlterPartitionReassignments(r) => alter_partition_reassignments::handle(
            &b.controller, &b.authorizer, &ctx, &header, r,
        ),
        ElectLeaders(r) => elect_leaders::handle(&b.controller, &b.authorizer, &ctx, &header, r),
        AlterUserScramCredentials(r) => user_scram_credentials::alter(
            &b.controller, &ctx, &header, r,
        ),
        InitProducerId(r) => init_producer_id::handle(
            &b.txn, &b.producer_ids, &b.authorizer, &ctx, &header, r,
        ),
        AddPartitionsToTxn(r) => add_partitions_to_txn::handle(
            &b.txn, b.metadata.image(), &b.authorizer, &ctx, &header, r,
        ),
        AddOffsetsToTxn(r) => add_offsets_to_txn::handle(&b.txn, &b.authorizer, &ctx, &header, r),
        EndTxn(r) => end_txn::handle(&b.txn, &b.authorizer, &ctx, &header, r),
        WriteTxnMarkers(r) => write_txn_markers::handle(
            &b.replicas, &b.groups, &b.authorizer, &ctx, &header, r,
        ),
        CreateAcls(r) => create_acls::handle(&b.controller, &b.authorizer, &ctx, &header, r),
        DeleteAcls(r) => delete_acls::handle(&b.controller, &b.authorizer, &ctx, &header, r),
        AlterClientQuotas(r) => client_quotas::alter(&b.controller, &ctx, &header, r),
    };
    match request_charge {
        Some(charge) => routed.map(|reply| charge.time_request(reply, sync_started.elapsed())),
        None => routed,
    }
}

/// The cluster operation an API needs as a whole, for the APIs whose
/// handlers have no finer check: SCRAM credentials (ALTER/DESCRIBE) and
/// client quotas (ALTER_CONFIGS/DESCRIBE_CONFIGS), as Kafka authorizes them.
fn cluster_operation(api: ApiKey) -> Option<sluice_metadata::acl::AclOperation> {
    use sluice_metadata::acl::AclOperation;
    match api {
        ApiKey::AlterUserScramCredentials => Some(AclOperation::Alter),
        ApiKey::DescribeUserScramCredentials => Some(AclOperation::Describe),
        ApiKey::AlterClientQuotas => Some(AclOperation::AlterConfigs),
        ApiKey::DescribeClientQuotas => Some(AclOperation::DescribeConfigs),
        _ => None,
    }
}

/// This broker as clients of `listener` address it, for the handlers
/// that name it. A request always arrives on one of the broker's own
/// listeners; an unknown name (none today) falls back to the inter-broker
/// endpoint.
fn node_info(broker: &Broker, listener: &str) -> NodeInfo {
    let endpoint = broker
        .advertised
        .get(listener)
        .unwrap_or_else(|| broker.advertised.inter_broker());
    NodeInfo {
        node_id: broker.config.node_id,
        host: endpoint.host.clone(),
        port: endpoint.port,
        cluster_id: broker.cluster_id(),
        listener: listener.to_owned(),
    }
}

/// Wraps a handler's future into a reply that encodes its response.
fn respond<R, F>(header: &RequestHeader, future: F) -> Reply
where
    R: Encode + ErrorCodes + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    let header = header.clone();
    Box::pin(async move {
        let response = future.await;
        count_errors(&header, &response);
        encode(&header, &response)
    })
}

/// Counts `response`'s error codes, top-level and per item, by API
/// (`sluice_kafka_errors_total`, Kafka's ErrorsPerSec).
fn count_errors(header: &RequestHeader, response: &impl ErrorCodes) {
    let mut tally = sluice_metrics::ErrorTally::default();
    response.for_each_error_code(&mut |code| tally.add(code));
    tally.record(header.request_api_key);
}

/// Like [`respond`], but the handler's future runs on its own task, started
/// now, and finishes even if the connection drops the reply (a failed write
/// to a client that went away drops every reply queued behind it).
fn respond_detached<R, F>(header: &RequestHeader, future: F) -> Reply
where
    R: Encode + ErrorCodes + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    let header = header.clone();
    let task = sluice_runtime::spawn_detached("kafka-request", future);
    Box::pin(async move {
        match task.await {
            Ok(response) => {
                count_errors(&header, &response);
                encode(&header, &response)
            }
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
fn encode<R: Encode>(header: &RequestHeader, response: &R) -> Option<SplicedFrame> {
    let version = header.request_api_version;
    let Ok(api_key) = ApiKey::try_from(header.request_api_key) else {
        return None;
    };
    let header_version = response_header_version(api_key, version);
    // A Fetch's deferred record sets become splices the connection sends
    // from their segment files; other responses have none.
    match encode_response_spliced(header.correlation_id, header_version, response, version) {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::error!(
                api_key = header.request_api_key,
                version,
                correlation_id = header.correlation_id,
                "cannot encode response: {e}"
            );
            encode_server_error(header, api_key, header_version).map(SplicedFrame::from)
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
) -> Option<SplicedFrame> {
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
        return Ok(Box::pin(async move { Some(reply.into()) }));
    }
    tracing::warn!(peer = %ctx.peer, "malformed or unsupported request: {error}");
    Err(error)
}

/// Groups `(topic, item)` pairs into one entry per run of the same topic,
/// in order: the per-topic lists Kafka's responses carry, built from the
/// per-partition results the controller returns.
pub(crate) fn by_topic<T>(items: impl IntoIterator<Item = (String, T)>) -> Vec<(String, Vec<T>)> {
    let mut grouped: Vec<(String, Vec<T>)> = Vec::new();
    for (topic, item) in items {
        match grouped.last_mut() {
            Some((last, list)) if *last == topic => list.push(item),
            _ => grouped.push((topic, vec![item])),
        }
    }
    grouped
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    sluice_metadata::now_ms()
}

/// Requests Kafka does not charge to a request quota: replication and
/// inter-broker traffic (a follower's Fetch, transaction markers), and
/// requests another broker forwarded to the controller (charged, if at
/// all, where the client sent them).
fn exempt_from_request_quota(
    ctx: &crate::context::RequestContext,
    body: &sluice_protocol::RequestBody,
    version: i16,
) -> bool {
    use sluice_protocol::RequestBody;
    match body {
        RequestBody::Fetch(fetch) => fetch::from_follower(fetch, version),
        RequestBody::WriteTxnMarkers(_) => true,
        _ => &*ctx.listener == crate::context::FORWARDED_LISTENER,
    }
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
    fn by_topic_groups_runs_of_the_same_topic_in_order() {
        let items = [("a", 0), ("a", 1), ("b", 0), ("a", 2)].map(|(t, p)| (t.to_owned(), p));
        assert_eq!(
            by_topic(items),
            [
                ("a".to_owned(), vec![0, 1]),
                ("b".to_owned(), vec![0]),
                ("a".to_owned(), vec![2])
            ]
        );
        assert!(by_topic(Vec::<(String, i32)>::new()).is_empty());
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
