//! What the in-process tests of the HTTP app share: a broker on a
//! temporary directory, an [`AppState`] over it with nothing else
//! configured, and one call through the router as a client at an address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::Value;
use sluice_broker::Broker;
use sluice_broker::config::Config;
use tower::ServiceExt;

use crate::AppState;
use crate::auth::PeerAddr;

/// The largest response body a test reads.
const MAX_TEST_BODY: usize = 1 << 24;

/// A broker on a fresh temporary directory (kept alive by the returned
/// guard), with `tweak` applied to its default config first, advertising
/// 127.0.0.1:`port`.
pub(crate) fn temp_broker(
    tweak: impl FnOnce(&mut Config),
    port: u16,
) -> (tempfile::TempDir, Arc<Broker>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    tweak(&mut config);
    let broker =
        Broker::open(config, "test".to_owned(), ("127.0.0.1".to_owned(), port)).expect("broker");
    (dir, Arc::new(broker))
}

/// The app's state over `broker` with authentication off, no consumer
/// instances and an empty history; tests replace the fields they need.
pub(crate) fn app_state(broker: Arc<Broker>) -> AppState {
    AppState {
        broker,
        ready: Arc::default(),
        shutdown: sluice_runtime::CancellationToken::new(),
        security: None,
        login_limiter: Arc::default(),
        kv: Arc::new(crate::kv::PartitionIndexes::new(1 << 20)),
        consumers: Arc::default(),
        history: Arc::default(),
    }
}

/// One request through `app` from `peer`, with `headers` and a JSON body
/// sent as `content_type`; answers the status, the headers and the body
/// read as JSON (`Null` when it is not JSON).
pub(crate) async fn call(
    app: &Router,
    peer: &str,
    method: Method,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
    content_type: &str,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let body = match body {
        Some(v) => {
            request = request.header(header::CONTENT_TYPE, content_type);
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).expect("request");
    let peer: SocketAddr = peer.parse().expect("peer");
    request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_TEST_BODY)
        .await
        .expect("body");
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}
