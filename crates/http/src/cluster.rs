//! Broker status, liveness, readiness, metrics and the OpenAPI document.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
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
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
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
pub async fn status(State(state): State<AppState>) -> axum::Json<ClusterStatus> {
    let broker = &state.broker;
    let image = broker.metadata.image();
    let partitions = broker.replicas.all();
    let controller_id = broker
        .metadata
        .controller_id()
        .unwrap_or(broker.config.node_id);
    let brokers = if image.brokers.is_empty() {
        let (host, port) = broker.advertised.clone();
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
    axum::Json(ClusterStatus {
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
    })
}
