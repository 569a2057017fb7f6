//! The HTTP listener: the REST API under `/v1`, its OpenAPI document,
//! `/metrics`, `/health`, `/ready`, and the web console at `/`.
//!
//! Everything it serves is broker state (the metadata image, partitions,
//! the group coordinator) reached through the same handles the Kafka
//! handlers use: topic changes go through [`sluice_metadata::Controller`],
//! produce through `Partition::append` + `commit`, reads through
//! `Partition::read`. It must not hold broker locks across an `.await`, and
//! never validates anything the controller already validates.
//!
//! Layout:
//! - [`error`]: the `{error_code, message}` body and extractors that use it.
//! - [`auth`]: `http_auth`: credentials, bearer tokens, per-route ACL checks.
//! - [`cluster`]: `/health`, `/ready`, `/metrics`, `/v1/cluster`.
//! - [`topics`]: topic list, create, describe, alter configs, delete.
//! - [`configs`]: topic and broker configs with their defaults.
//! - [`records`]: produce and read records of a partition.
//! - [`browse`]: read a whole topic, merged by timestamp and filtered.
//! - [`tail`]: live tail over Server-Sent Events.
//! - [`kv`]: the key-value view of compacted topics, served from the
//!   indexes of [`kv_index`].
//! - [`groups`]: consumer groups, lag and offset resets.
//! - [`consumers`]: consumer instances in Confluent REST Proxy v2's shape
//!   (`/consumers/...`), members of groups on behalf of HTTP clients.
//! - [`history`]: recent throughput for the console's charts.
//! - [`console`]: the embedded web console.
//! - [`listener`]: the TCP listener that bounds open connections.
//! - [`metrics`]: the `/metrics` exposition.
//! - [`registry`]: the schema registry's REST API (Confluent's), on its
//!   own listener.
//!
//! The OpenAPI document is built by utoipa from the same `routes!` calls
//! that register the handlers, so a route cannot exist without its spec
//! entry (the console's static files are the only routes outside it).

pub mod auth;
pub mod broker_security;
pub mod browse;
pub mod cluster;
pub mod configs;
pub mod console;
pub mod consumers;
pub mod error;
pub mod groups;
pub mod history;
pub mod kv;
pub mod kv_index;
pub mod listener;
pub mod metrics;
pub mod records;
pub mod registry;
pub mod tail;
#[cfg(test)]
mod test_support;
pub mod topics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use sluice_runtime::CancellationToken;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use error::HttpError;
use sluice_broker::Broker;

/// Largest request body accepted (a produce of many records). Bounded so a
/// client cannot make the broker buffer an arbitrary body; Kafka's own
/// `message.max.bytes` still bounds each batch built from it.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long in-flight HTTP requests get at shutdown; live tails end at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The broker.
    pub broker: Arc<Broker>,
    /// True once logs are recovered and the Kafka listener is accepting;
    /// false again when shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// The process's shutdown signal; live tails end when it fires.
    pub shutdown: CancellationToken,
    /// Password checks and ACL decisions; `None` when `http_auth` is off
    /// (every request is `User:ANONYMOUS` and allowed).
    pub security: Option<Arc<dyn auth::HttpSecurity>>,
    /// Failed logins per client address ([`auth::FAILED_LOGIN_BURST`]).
    pub login_limiter: Arc<auth::FailedLoginLimiter>,
    /// The key-value view's indexes, under `kv.index_max_bytes`.
    pub kv: Arc<kv::PartitionIndexes>,
    /// REST Proxy consumer instances, at most
    /// [`consumers::MAX_CONSUMER_INSTANCES`].
    pub consumers: Arc<consumers::Instances>,
    /// Recent throughput samples (`/v1/metrics/history`), filled by the
    /// HTTP listener's sampler task.
    pub history: Arc<history::History>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice HTTP API",
        description = "Topics, records, live tail, consumer groups and cluster status for \
                       clients that do not speak the Kafka protocol. Errors are \
                       `{error_code, message}` with a matching HTTP status."
    ),
    tags(
        (name = "cluster", description = "Broker status, health and metrics"),
        (name = "topics", description = "Create, describe, configure and delete topics"),
        (name = "records", description = "Produce, read and tail records"),
        (name = "groups", description = "Consumer groups, lag and offset resets"),
        (name = "auth", description = "The caller, and bearer tokens (with `http_auth` on)"),
        (name = "consumers", description = "Consumer group members for HTTP clients, in Confluent REST Proxy v2's shape"),
    )
)]
struct ApiDoc;

/// The API routes, each registered together with its OpenAPI operation.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(cluster::health))
        .routes(routes!(cluster::ready))
        .routes(routes!(cluster::metrics))
        .routes(routes!(cluster::openapi_json))
        .routes(routes!(cluster::status))
        .routes(routes!(cluster::balance))
        .routes(routes!(cluster::decommission, cluster::recommission))
        .routes(routes!(history::history))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::describe, topics::delete))
        .routes(routes!(topics::alter_configs))
        .routes(routes!(configs::topic_configs))
        .routes(routes!(configs::broker_configs))
        .routes(routes!(topics::add_partitions))
        .routes(routes!(records::produce, browse::read_topic))
        .routes(routes!(records::read, records::delete_records))
        .routes(routes!(tail::tail_partition))
        .routes(routes!(tail::tail_topic))
        .routes(routes!(kv::get_key))
        .routes(routes!(kv::list_keys))
        .routes(routes!(groups::list))
        .routes(routes!(groups::describe, groups::delete))
        .routes(routes!(groups::reset_offsets))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(auth::whoami))
        .routes(routes!(consumers::create))
        .routes(routes!(consumers::delete))
        .routes(routes!(consumers::subscribe, consumers::subscription))
        .routes(routes!(consumers::assignments))
        .routes(routes!(consumers::records))
        .routes(routes!(consumers::commit, consumers::committed))
}

/// The OpenAPI document as JSON, built once from [`api_router`].
pub static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    let mut doc = api_router().into_openapi();
    document_security(&mut doc);
    doc.to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot render spec: {e}\"}}"))
});

/// Adds `http_auth` to the document: the basic and bearer schemes, and on
/// every operation outside [`auth::is_open_path`] the requirement and its
/// 401/403/429 answers (which apply only with `http_auth` on).
fn document_security(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if auth::is_open_path(path) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            op.security = Some(vec![
                SecurityRequirement::new("basic", Vec::<String>::new()),
                SecurityRequirement::new("bearer", Vec::<String>::new()),
            ]);
            let responses = &mut op.responses.responses;
            for (status, description) in [
                (
                    "401",
                    "With http_auth on: no, bad, expired or revoked credentials",
                ),
                ("403", "With http_auth on: the ACLs do not allow it"),
                (
                    "429",
                    "With http_auth on: too many failed logins from this address",
                ),
            ] {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let (api, _spec) = api_router().split_for_parts();
    api.merge(console::router())
        .nest("/v1/registry", registry::nested(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(record_metrics))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> HttpError {
    HttpError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Counts requests and their latency by route template, so `/v1/topics/a`
/// and `/v1/topics/b` share one label set.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    // Methods outside the standard set share one label, so a client cannot
    // grow the label sets with made-up methods.
    let method = match *request.method() {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD => request.method().as_str(),
        _ => "OTHER",
    };
    let route = format!("{method} {route}");
    let started = Instant::now();
    let response = next.run(request).await;
    sluice_metrics::http_request_done(route, started.elapsed());
    response
}

/// A running HTTP listener.
#[derive(Debug)]
pub struct HttpServer {
    /// The address it is bound to.
    pub local_addr: std::net::SocketAddr,
    ready: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Marks the broker ready (`/ready` answers 200).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Waits for the server to stop after shutdown was signalled, at most
    /// [`SHUTDOWN_GRACE`].
    pub async fn join(self) {
        self.set_ready(false);
        let task = self.task;
        tokio::pin!(task);
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // The server's own failures are logged inside the task; a
                // panic is a bug, reported here.
                tracing::error!(task = "http-server", "task failed: {e}");
                if e.is_panic() {
                    sluice_metrics::task_panicked("http-server");
                }
            }
            Err(_) => {
                tracing::warn!("http requests still busy after {SHUTDOWN_GRACE:?}; dropping them");
                task.abort();
            }
        }
    }
}

/// Why the HTTP listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `http_listener` is not an address.
    #[error(transparent)]
    Config(#[from] sluice_broker::config::ConfigError),
    /// `http_auth.enabled` without the broker security that checks
    /// passwords and ACLs.
    #[error(
        "http_auth.enabled = true requires SASL/SCRAM users and the ACL authorizer to check HTTP credentials against, and this broker has none configured; set http_auth.enabled = false"
    )]
    AuthUnavailable,
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// `http_tls` is on but the `[tls]` files do not load.
    #[error("http_tls: {0}")]
    Tls(#[from] sluice_broker::tls::TlsError),
}

/// Binds `broker.config.http_listener` and serves until `shutdown` is
/// cancelled. `security` checks credentials and ACLs; it must be `Some`
/// when `http_auth.enabled` is set.
pub async fn start(
    broker: &Arc<Broker>,
    security: Option<Arc<dyn auth::HttpSecurity>>,
    shutdown: CancellationToken,
) -> Result<HttpServer, StartError> {
    let addr = broker.config.http_addr()?;
    let ready = Arc::new(AtomicBool::new(false));
    let state = app_state(broker, security, &ready, &shutdown)?;
    tokio::spawn(Arc::clone(&state.history).run(shutdown.clone()));
    let (local_addr, task) = serve(broker, addr, app(state), shutdown, "http").await?;
    Ok(HttpServer {
        local_addr,
        ready,
        task,
    })
}

/// Binds `schema_registry_listener` and serves the schema registry's REST
/// API there until `shutdown`; `None` when the listener is off. TLS and
/// authentication follow `http_tls` and `http_auth`, as on the HTTP API.
pub async fn start_registry(
    broker: &Arc<Broker>,
    security: Option<Arc<dyn auth::HttpSecurity>>,
    shutdown: CancellationToken,
) -> Result<Option<HttpServer>, StartError> {
    let Some(addr) = broker.config.schema_registry_addr()? else {
        return Ok(None);
    };
    let ready = Arc::new(AtomicBool::new(true));
    let state = app_state(broker, security, &ready, &shutdown)?;
    let (local_addr, task) = serve(
        broker,
        addr,
        registry::app(state),
        shutdown,
        "schema registry",
    )
    .await?;
    Ok(Some(HttpServer {
        local_addr,
        ready,
        task,
    }))
}

/// The handlers' state for a listener of `broker`. With `http_auth` off
/// there are no checks at all, so the security is dropped even if given;
/// on without it would serve an API nobody can log in to.
fn app_state(
    broker: &Arc<Broker>,
    security: Option<Arc<dyn auth::HttpSecurity>>,
    ready: &Arc<AtomicBool>,
    shutdown: &CancellationToken,
) -> Result<AppState, StartError> {
    let security = match (broker.config.http_auth.enabled, security) {
        (false, _) => None,
        (true, None) => return Err(StartError::AuthUnavailable),
        (true, Some(s)) => Some(s),
    };
    Ok(AppState {
        broker: Arc::clone(broker),
        ready: Arc::clone(ready),
        shutdown: shutdown.clone(),
        security,
        login_limiter: Arc::default(),
        kv: Arc::new(kv::PartitionIndexes::new(
            usize::try_from(broker.config.kv.index_max_bytes).unwrap_or(usize::MAX),
        )),
        consumers: Arc::default(),
        history: Arc::default(),
    })
}

/// Binds `addr` and serves `app` on it (over the `[tls]` certificate when
/// `http_tls` is on) until `shutdown`, with at most
/// [`listener::MAX_HTTP_CONNECTIONS`] connections open.
async fn serve(
    broker: &Arc<Broker>,
    addr: std::net::SocketAddr,
    app: Router,
    shutdown: CancellationToken,
    what: &'static str,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), StartError> {
    let bind_error = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let app = app.into_make_service_with_connect_info::<auth::PeerAddr>();
    // `http_tls`: the `[tls]` certificate, reloaded as the Kafka
    // listeners' is; browsers and curl are not asked for certificates.
    let tls = if broker.config.http_tls {
        let tls = Arc::new(sluice_broker::tls::ServerTls::load_with(
            &broker.config.tls,
            sluice_broker::config::ClientAuth::None,
        )?);
        tokio::spawn(Arc::clone(&tls).run_reload(shutdown.clone()));
        Some(tls)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let task = tokio::spawn(async move {
        let shutdown = shutdown.cancelled_owned();
        let served = match tls {
            Some(tls) => {
                match listener::TlsBoundedListener::new(
                    listener,
                    listener::MAX_HTTP_CONNECTIONS,
                    tls,
                ) {
                    Ok(listener) => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(shutdown)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            None => {
                let listener =
                    listener::BoundedListener::new(listener, listener::MAX_HTTP_CONNECTIONS);
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!("{what} listener failed: {e}");
        }
    });
    tracing::info!(listener = %local_addr, scheme, "{what} listener up");
    Ok((local_addr, task))
}

/// Turns "this topic/partition does not exist" into a 404.
pub(crate) fn unknown_partition(topic: &str, partition: i32) -> HttpError {
    HttpError::kafka(
        sluice_protocol::error::codes::UNKNOWN_TOPIC_OR_PARTITION,
        format!("partition {partition} of topic `{topic}` does not exist"),
    )
}

/// The partition if this broker leads it. One led elsewhere (in a
/// cluster) is a 503 naming the leader, so a client retries there; only
/// the leader takes writes and serves reads, as over the Kafka protocol.
pub(crate) fn led_partition(
    broker: &sluice_broker::Broker,
    topic: &str,
    partition: i32,
) -> Result<std::sync::Arc<sluice_replica::Partition>, HttpError> {
    let image = broker.metadata.image();
    broker
        .replicas
        .leader_partition(&image, topic, partition, -1, true)
        .map_err(|e| match e {
            sluice_replica::LeaderError::UnknownTopicOrPartition => unknown_partition(topic, partition),
            other => {
                let leader = image
                    .topics
                    .get(topic)
                    .and_then(|t| t.partitions.get(&partition))
                    .map_or(-1, |p| p.leader);
                HttpError::kafka(
                    sluice_protocol::error::codes::NOT_LEADER_OR_FOLLOWER,
                    format!(
                        "partition {partition} of topic `{topic}` is led by broker {leader}, not this one ({other})"
                    ),
                )
            }
        })
}

/// Turns "this topic does not exist" into a 404.
pub(crate) fn unknown_topic(topic: &str) -> HttpError {
    HttpError::kafka(
        sluice_protocol::error::codes::UNKNOWN_TOPIC_OR_PARTITION,
        format!("topic `{topic}` does not exist"),
    )
}

/// Runs blocking disk work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    // A panic is logged and counted by the runtime; the client gets a 500.
    sluice_runtime::blocking("http-worker", f)
        .await
        .map_err(|e| HttpError::internal(format!("worker task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// axum panics at router construction on overlapping routes; this
    /// builds the whole router (API and console) the way `app` does.
    #[test]
    fn router_builds_without_overlapping_routes() {
        let (api, spec) = api_router().split_for_parts();
        let _app: Router<AppState> = api.merge(console::router());
        assert!(!spec.paths.paths.is_empty());
    }

    #[test]
    fn openapi_has_every_route_with_unique_operation_ids_and_error_bodies() {
        let spec: serde_json::Value = match serde_json::from_str(&OPENAPI_JSON) {
            Ok(v) => v,
            Err(e) => panic!("spec is not JSON: {e}"),
        };
        let paths = spec["paths"].as_object().cloned().unwrap_or_default();
        let mut ids = std::collections::BTreeSet::new();
        let mut operations = 0;
        for (path, item) in &paths {
            for (method, op) in item.as_object().cloned().unwrap_or_default() {
                operations += 1;
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                assert!(ids.insert(id.clone()), "operationId {id} is repeated");
                for (status, response) in op["responses"].as_object().cloned().unwrap_or_default() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema.as_str(),
                            Some("#/components/schemas/ErrorBody"),
                            "{method} {path} {status} must document the error body"
                        );
                    }
                }
            }
        }
        // /health /ready /metrics /v1/openapi.json /v1/cluster, the
        // balance status, decommission and recommission, broker configs,
        // the metrics history, 7 topic operations (topic configs with
        // defaults), 6 record operations, 2 key-value operations, 4 group
        // operations, 3 token operations, whoami and 8 consumer instance
        // operations.
        assert_eq!(operations, 41, "{paths:#?}");
        // Every operation but the open ones names the auth schemes.
        let secured = paths
            .iter()
            .flat_map(|(path, item)| {
                let open = auth::is_open_path(path);
                item.as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_values()
                    .map(move |op| (open, op["security"].is_array()))
            })
            .filter(|&(open, secured)| open != secured)
            .count();
        assert_eq!(
            secured, operations,
            "open operations unsecured, the rest secured"
        );
        assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    }

    /// `http_auth` on with nothing to check credentials against would serve
    /// an API nobody can use (or, worse, be mistaken for a protected one).
    #[tokio::test]
    async fn http_auth_without_a_security_implementation_refuses_to_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = sluice_broker::config::Config {
            data_dir: dir.path().to_owned(),
            http_listener: "127.0.0.1:0".to_owned(),
            ..Default::default()
        };
        config.http_auth.enabled = true;
        let broker = Arc::new(
            Broker::open(config, "test".to_owned(), ("127.0.0.1".to_owned(), 9092))
                .expect("broker"),
        );
        let shutdown = CancellationToken::new();
        let refused = start(&broker, None, shutdown.clone()).await;
        assert!(
            matches!(refused, Err(StartError::AuthUnavailable)),
            "{refused:?}"
        );
        let message = StartError::AuthUnavailable.to_string();
        assert!(message.contains("http_auth.enabled"), "{message}");
    }

    #[test]
    fn kafka_errors_map_to_http_statuses() {
        use sluice_protocol::error::codes as code;
        let status = |c| HttpError::kafka(c, "x").status;
        assert_eq!(
            status(code::UNKNOWN_TOPIC_OR_PARTITION),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status(code::TOPIC_ALREADY_EXISTS), StatusCode::CONFLICT);
        assert_eq!(status(code::INVALID_CONFIG), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(code::OFFSET_OUT_OF_RANGE),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(
            status(code::MESSAGE_TOO_LARGE),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(code::BROKER_ID_NOT_REGISTERED),
            StatusCode::NOT_FOUND
        );
        let e = HttpError::kafka(code::UNKNOWN_TOPIC_OR_PARTITION, "gone");
        assert_eq!(e.body.error_code, "UNKNOWN_TOPIC_OR_PARTITION");
    }
}
