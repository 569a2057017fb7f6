//! Broker status, liveness, readiness, metrics and the OpenAPI document.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Caller, Operation, Resource};
use super::error::{ApiResult, ErrorBody, HttpError};

/// `/health` and `/ready` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` while some log is offline.
    pub status: String,
    /// Partitions whose log refuses writes (`topic-partition`), plus
    /// `__cluster_metadata-0` if the metadata log does. Omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offline_partitions: Vec<String>,
}

/// Every offline log, by partition name.
fn offline_partitions(state: &AppState) -> Vec<String> {
    let mut out: Vec<String> = state
        .broker
        .replicas
        .offline()
        .iter()
        .map(ToString::to_string)
        .collect();
    if state.broker.metadata.is_offline() {
        out.push(sluice_metadata::METADATA_LOG_DIR.to_owned());
    }
    out
}

/// Liveness: the process is up and serving HTTP (200 even when degraded:
/// restarting does not fix a full disk). `status` is `degraded` and lists
/// the offline partitions while any log refuses writes.
#[utoipa::path(get, operation_id = "health", path = "/health", tag = "cluster",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health(State(state): State<AppState>) -> axum::Json<Health> {
    let offline_partitions = offline_partitions(&state);
    axum::Json(Health {
        status: if offline_partitions.is_empty() {
            "ok"
        } else {
            "degraded"
        }
        .to_owned(),
        offline_partitions,
    })
}

/// Readiness: logs are recovered, none is offline, and the Kafka listener
/// accepts connections. 503 before that, while any log is offline (a
/// failed write or fsync, a full disk), and once shutdown has begun.
#[utoipa::path(get, operation_id = "ready", path = "/ready", tag = "cluster",
    responses(
        (status = 200, description = "Ready for clients", body = Health),
        (status = 503, description = "Starting, shutting down, or a log is offline", body = ErrorBody),
    ))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    if !state.ready.load(Ordering::Acquire) || state.shutdown.is_cancelled() {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "the broker is starting or shutting down",
        ));
    }
    let offline = offline_partitions(&state);
    if !offline.is_empty() {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "LOGS_OFFLINE",
            format!(
                "{} log(s) offline (refusing writes): {}",
                offline.len(),
                offline.join(", ")
            ),
        ));
    }
    Ok(axum::Json(Health {
        status: "ok".to_owned(),
        offline_partitions: Vec::new(),
    }))
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "cluster",
    responses((status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    // The exposition names every topic and group, so with http_auth on a
    // scraper authenticates (basic or bearer) and needs DESCRIBE on the cluster.
    caller.require(Operation::Describe, Resource::Cluster)?;
    let lags: Vec<crate::metrics::GroupLag> = super::groups::all_lags(&state.broker)
        .into_iter()
        .map(|(group, topic, partition, lag)| crate::metrics::GroupLag {
            group,
            topic,
            partition,
            lag,
        })
        .collect();
    let text = crate::metrics::encode(&state.broker, &lags)
        .map_err(|e| HttpError::internal(format!("cannot encode metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, operation_id = "openapi", path = "/v1/openapi.json", tag = "cluster",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::OPENAPI_JSON.as_str(),
    )
        .into_response()
}

/// One broker of the cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerInfo {
    /// Broker id.
    pub node_id: i32,
    /// Advertised Kafka host.
    pub host: String,
    /// Advertised Kafka port.
    pub port: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// True for the active controller.
    pub is_controller: bool,
    /// A fenced broker leads nothing and is not shown to Kafka clients.
    pub fenced: bool,
}

/// A member of the metadata quorum.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuorumNode {
    /// Node id.
    pub id: i32,
    /// Controller listener address.
    pub addr: String,
    /// `voter` or `learner`.
    pub role: String,
    /// Last entry the leader knows it has (on the leader only).
    pub matched_index: Option<u64>,
    /// Entries it is behind the leader's log (on the leader only).
    pub lag: Option<u64>,
}

/// This node's view of the metadata quorum.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuorumInfo {
    /// `leader`, `follower`, `candidate` or `learner`.
    pub state: String,
    /// The Raft leader (the active controller).
    pub leader: Option<i32>,
    /// Current term.
    pub term: u64,
    /// Last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// Last entry applied to this node's image.
    pub applied_index: Option<u64>,
    /// Last entry this node's snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Members, voters first.
    pub nodes: Vec<QuorumNode>,
}

/// The metadata image this node serves from.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetadataInfo {
    /// How far the image has applied (next metadata offset or Raft index + 1).
    pub next_offset: i64,
    /// crc32c of the image's snapshot encoding: equal on nodes whose
    /// images agree.
    pub digest: String,
}

/// Cluster status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterStatus {
    /// Kafka cluster id.
    pub cluster_id: String,
    /// This broker's id.
    pub node_id: i32,
    /// Sluice version.
    pub version: String,
    /// Milliseconds since the broker started.
    pub uptime_ms: u64,
    /// Every registered broker (this one alone on a single node).
    pub brokers: Vec<BrokerInfo>,
    /// The active controller.
    pub controller_id: i32,
    /// The metadata quorum, when this node is part of one.
    pub quorum: Option<QuorumInfo>,
    /// The image this node serves.
    pub metadata: MetadataInfo,
    /// Topics, internal ones included.
    pub topic_count: usize,
    /// Partitions over all topics.
    pub partition_count: usize,
    /// Consumer groups known to the coordinator.
    pub group_count: usize,
    /// Sum of the partitions' log sizes on disk.
    pub total_size_bytes: u64,
    /// Sum over partitions of high watermark minus log start offset.
    pub total_messages: i64,
    /// Open Kafka connections.
    pub connections: i64,
    /// The HTTP listener address.
    pub http_listener: String,
    /// This broker's Kafka listeners as clients reach them.
    pub listeners: Vec<ListenerStatus>,
}

/// One Kafka listener of this broker.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListenerStatus {
    /// The listener's name.
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: String,
}

fn quorum_info(status: sluice_quorum::QuorumStatus) -> QuorumInfo {
    QuorumInfo {
        state: status.state,
        leader: status.leader,
        term: status.term,
        last_log_index: status.last_log_index,
        applied_index: status.applied_index,
        snapshot_index: status.snapshot_index,
        nodes: status
            .nodes
            .into_iter()
            .map(|n| QuorumNode {
                id: n.id,
                addr: n.addr,
                role: n.role,
                matched_index: n.matched_index,
                lag: n.lag,
            })
            .collect(),
    }
}

/// Broker status: identity, uptime and totals.
#[utoipa::path(get, operation_id = "cluster_status", path = "/v1/cluster", tag = "cluster",
    responses((status = 200, description = "Cluster status", body = ClusterStatus)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<ClusterStatus>> {
    caller.require(Operation::Describe, Resource::Cluster)?;
    let broker = &state.broker;
    let image = broker.metadata.image();
    let partitions = broker.replicas.all();
    let controller_id = broker
        .metadata
        .controller_id()
        .unwrap_or(broker.config.node_id);
    let brokers = if image.brokers.is_empty() {
        let advertised = broker.advertised.inter_broker();
        let (host, port) = (advertised.host.clone(), advertised.port);
        vec![BrokerInfo {
            node_id: broker.config.node_id,
            host,
            port,
            rack: broker.config.broker.rack.clone(),
            is_controller: true,
            fenced: false,
        }]
    } else {
        image
            .brokers
            .values()
            .map(|b| BrokerInfo {
                node_id: b.broker_id,
                host: b.host.clone(),
                port: u16::try_from(b.port).unwrap_or(0),
                rack: b.rack.clone(),
                is_controller: b.broker_id == controller_id,
                fenced: b.fenced,
            })
            .collect()
    };
    Ok(axum::Json(ClusterStatus {
        cluster_id: broker.cluster_id(),
        node_id: broker.config.node_id,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_ms: u64::try_from(broker.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        brokers,
        controller_id,
        quorum: broker.quorum.as_ref().map(|q| quorum_info(q.status())),
        metadata: MetadataInfo {
            next_offset: image.next_offset,
            digest: sluice_metadata::snapshot::image_digest(&image)
                .map_or_else(|e| format!("unencodable: {e}"), |d| format!("{d:08x}")),
        },
        topic_count: image.topics.len(),
        partition_count: image.topics.values().map(|t| t.partitions.len()).sum(),
        group_count: super::groups::group_count(broker),
        total_size_bytes: partitions.iter().map(|p| p.log().size_bytes()).sum(),
        total_messages: partitions
            .iter()
            .map(|p| (p.high_watermark() - p.log().log_start_offset()).max(0))
            .sum(),
        connections: sluice_metrics::global().connections.get(),
        http_listener: broker.config.http_listener.clone(),
        listeners: broker
            .advertised
            .listeners()
            .iter()
            .map(|l| ListenerStatus {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
                security_protocol: l.security_protocol.name().to_owned(),
            })
            .collect(),
    }))
}

/// One partition moving, as the balance status shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoveInfo {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Every replica while it moves: the target, then the leaving ones.
    pub replicas: Vec<i32>,
    /// Replicas catching up.
    pub adding_replicas: Vec<i32>,
    /// Replicas leaving once the adding ones are in sync.
    pub removing_replicas: Vec<i32>,
    /// The leader's log size, if reported.
    pub bytes_total: Option<u64>,
    /// What the new replicas still lack, if the leader reported its size.
    pub bytes_left: Option<u64>,
}

/// One broker's load, as the balancer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerLoad {
    /// Node id.
    pub node_id: i32,
    /// Replicas it holds or is receiving.
    pub replicas: usize,
    /// Partitions it leads.
    pub leaders: usize,
    /// Being decommissioned.
    pub decommissioning: bool,
    /// Decommissioned and holding no replica: safe to stop.
    pub drained: bool,
    /// Fenced longer than `balancer.lost_broker_timeout_ms`.
    pub lost: bool,
    /// Disk use from its last heartbeat, percent.
    pub disk_used_percent: Option<u8>,
}

/// The balancer's view: moves in flight and each broker's load.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceInfo {
    /// Whether automatic balancing runs (false on a single node).
    pub enabled: bool,
    /// Partitions moving now.
    pub moves: Vec<MoveInfo>,
    /// What the moves still have to copy, as far as reported.
    pub bytes_left: u64,
    /// The rate they copy at, once measured.
    pub rate_bytes_per_s: Option<u64>,
    /// Estimated seconds until they are done.
    pub eta_s: Option<u64>,
    /// Every registered broker.
    pub brokers: Vec<BrokerLoad>,
}

fn balance_info(status: sluice_metadata::balance::BalanceStatus) -> BalanceInfo {
    BalanceInfo {
        enabled: status.enabled,
        moves: status
            .moves
            .into_iter()
            .map(|m| MoveInfo {
                topic: m.topic,
                partition: m.partition,
                replicas: m.replicas,
                adding_replicas: m.adding_replicas,
                removing_replicas: m.removing_replicas,
                bytes_total: m.bytes_total,
                bytes_left: m.bytes_left,
            })
            .collect(),
        bytes_left: status.bytes_left,
        rate_bytes_per_s: status.rate_bytes_per_s,
        eta_s: status.eta_s,
        brokers: status
            .brokers
            .into_iter()
            .map(|b| BrokerLoad {
                node_id: b.broker_id,
                replicas: b.replicas,
                leaders: b.leaders,
                decommissioning: b.decommissioning,
                drained: b.drained,
                lost: b.lost,
                disk_used_percent: b.disk_used_percent,
            })
            .collect(),
    }
}

/// The balancer: partitions moving now and each broker's replicas,
/// leaders, disk use and decommission state, from the active controller.
#[utoipa::path(get, operation_id = "cluster_balance", path = "/v1/cluster/balance", tag = "cluster",
    responses((status = 200, description = "Balance status", body = BalanceInfo),
              (status = 503, description = "No active controller answered", body = ErrorBody)))]
pub async fn balance(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<BalanceInfo>> {
    caller.require(Operation::Describe, Resource::Cluster)?;
    use sluice_quorum::wire::{ControlRequest, ControlResponse};
    let Some(quorum) = state.broker.quorum.clone() else {
        // A single node has nothing to balance; its moves are operators'.
        let image = state.broker.metadata.image();
        return Ok(axum::Json(balance_info(sluice_metadata::balance::status(
            &image,
            false,
            &Default::default(),
            &Default::default(),
            None,
        ))));
    };
    match quorum.control(ControlRequest::BalanceStatus).await {
        Ok(ControlResponse::BalanceStatus(status)) => Ok(axum::Json(balance_info(*status))),
        Ok(ControlResponse::Refused { code, message }) => Err(HttpError::kafka(code, message)),
        Ok(other) => Err(HttpError::internal(format!(
            "the controller answered unexpectedly: {other:?}"
        ))),
        Err(e) => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NOT_CONTROLLER",
            e.message,
        )),
    }
}

/// Decommissions a broker: the balancer moves its replicas to other
/// brokers and places none on it; `GET /v1/cluster/balance` shows it
/// `drained` once it is safe to stop.
#[utoipa::path(post, operation_id = "decommission_broker",
    path = "/v1/cluster/brokers/{node_id}/decommission", tag = "cluster",
    params(("node_id" = i32, Path, description = "The broker")),
    responses((status = 202, description = "Decommissioning"),
              (status = 400, description = "It would leave no broker in service", body = ErrorBody),
              (status = 404, description = "No such broker", body = ErrorBody),
              (status = 503, description = "No active controller answered", body = ErrorBody)))]
pub async fn decommission(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(node_id): axum::extract::Path<i32>,
) -> ApiResult<StatusCode> {
    caller.require(Operation::Alter, Resource::Cluster)?;
    set_decommissioning(&state, node_id, true).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Brings a decommissioned broker back into service.
#[utoipa::path(delete, operation_id = "recommission_broker",
    path = "/v1/cluster/brokers/{node_id}/decommission", tag = "cluster",
    params(("node_id" = i32, Path, description = "The broker")),
    responses((status = 204, description = "Back in service"),
              (status = 404, description = "No such broker", body = ErrorBody),
              (status = 503, description = "No active controller answered", body = ErrorBody)))]
pub async fn recommission(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(node_id): axum::extract::Path<i32>,
) -> ApiResult<StatusCode> {
    caller.require(Operation::Alter, Resource::Cluster)?;
    set_decommissioning(&state, node_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_decommissioning(state: &AppState, node_id: i32, on: bool) -> ApiResult<()> {
    state
        .broker
        .controller
        .decommission_broker(node_id, on)
        .await
        .map_err(|e| HttpError::kafka(e.code, e.message))
}
