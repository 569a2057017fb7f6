//! Authentication and authorization of the HTTP API and console.
//!
//! With `http_auth.enabled`, every request outside [`is_open_path`] must
//! carry `Authorization: Basic` (a SCRAM user's name and password, checked
//! by [`HttpSecurity::verify_password`]) or `Authorization: Bearer` (a token
//! from `POST /v1/auth/tokens`, checked here against the hashes in the
//! metadata image). [`authenticate`] turns the header into a [`Caller`]
//! request extension; each handler then asks [`Caller::require`] (or
//! [`Caller::allowed`] to filter a listing) for the Kafka operation the
//! route stands for, so the HTTP API applies the same ACLs as the Kafka
//! listener. With `http_auth` off the caller is `User:ANONYMOUS` and every
//! check passes: the API behaves as it did before.
//!
//! This module owns the HTTP side only. Credentials and ACLs live behind
//! [`HttpSecurity`], implemented by the broker's SASL/SCRAM store and ACL
//! authorizer; it must not read either directly.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_metadata::HttpTokenImage;
use sluice_protocol::error::codes as code;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiResult, ErrorBody, HttpError, Json, Path};

/// An authenticated principal, in Kafka's `Type:name` form (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpPrincipal(pub String);

impl HttpPrincipal {
    /// Kafka's unauthenticated principal, the caller when `http_auth` is off.
    pub fn anonymous() -> HttpPrincipal {
        HttpPrincipal("User:ANONYMOUS".to_owned())
    }

    /// The principal as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Kafka ACL operation, by Kafka's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// READ: consume a topic, use a group.
    Read,
    /// WRITE: produce to a topic.
    Write,
    /// CREATE: create topics (on the cluster or the topic).
    Create,
    /// DELETE: delete a topic.
    Delete,
    /// ALTER: add partitions; cluster-wide changes (decommission, tokens).
    Alter,
    /// DESCRIBE: see that a topic or group exists, cluster status.
    Describe,
    /// DESCRIBE_CONFIGS: read a topic's configs.
    DescribeConfigs,
    /// ALTER_CONFIGS: change a topic's configs.
    AlterConfigs,
}

/// A Kafka ACL resource, by Kafka's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource<'a> {
    /// TOPIC with its name.
    Topic(&'a str),
    /// GROUP with its id.
    Group(&'a str),
    /// CLUSTER (Kafka names it `kafka-cluster`).
    Cluster,
}

/// What the HTTP layer needs from the broker's security: password checks
/// and ACL decisions. Implemented by the broker over its SCRAM credentials
/// and ACL authorizer; `None` in [`AppState::security`] means `http_auth`
/// is off.
pub trait HttpSecurity: Send + Sync + std::fmt::Debug {
    /// Checks a user name and password (HTTP basic); `Some(principal)`
    /// (`User:<name>`) if they match a stored credential. Must take the same
    /// time for an unknown user as for a wrong password.
    fn verify_password(&self, user: &str, password: &str) -> Option<HttpPrincipal>;

    /// Whether `principal` connecting from `host` may do `operation` on
    /// `resource`, with Kafka's ACL semantics (deny wins, implied
    /// operations, super users, `allow.everyone.if.no.acl.found`).
    fn authorize(
        &self,
        principal: &HttpPrincipal,
        host: IpAddr,
        operation: Operation,
        resource: Resource<'_>,
    ) -> bool;
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `http_auth` is off: everyone is `User:ANONYMOUS`.
    None,
    /// HTTP basic against the SCRAM users.
    Basic,
    /// A bearer token.
    Bearer {
        /// The token's id.
        token_id: String,
        /// When it stops working (ms since the epoch).
        expires_ms: i64,
    },
}

/// The authenticated caller of one request, put there by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: HttpPrincipal,
    /// The client's address, for host-based ACLs.
    pub host: IpAddr,
    /// How they proved it.
    pub method: AuthMethod,
    /// The decisions; `None` with `http_auth` off (everything is allowed).
    security: Option<Arc<dyn HttpSecurity>>,
}

impl Caller {
    /// The caller when `http_auth` is off.
    fn anonymous(host: IpAddr) -> Caller {
        Caller {
            principal: HttpPrincipal::anonymous(),
            host,
            method: AuthMethod::None,
            security: None,
        }
    }

    /// Whether the caller may do `operation` on `resource`.
    pub fn allowed(&self, operation: Operation, resource: Resource<'_>) -> bool {
        match &self.security {
            None => true,
            Some(s) => s.authorize(&self.principal, self.host, operation, resource),
        }
    }

    /// `Ok` if the caller may do `operation` on `resource`, else a 403 with
    /// Kafka's code for the resource type.
    pub fn require(&self, operation: Operation, resource: Resource<'_>) -> ApiResult<()> {
        if self.allowed(operation, resource) {
            return Ok(());
        }
        Err(forbidden(&self.principal, operation, resource))
    }
}

/// A 403 naming what was refused, with Kafka's error code.
fn forbidden(principal: &HttpPrincipal, operation: Operation, resource: Resource<'_>) -> HttpError {
    let (kafka_code, what) = match resource {
        Resource::Topic(t) => (code::TOPIC_AUTHORIZATION_FAILED, format!("topic `{t}`")),
        Resource::Group(g) => (code::GROUP_AUTHORIZATION_FAILED, format!("group `{g}`")),
        Resource::Cluster => (code::CLUSTER_AUTHORIZATION_FAILED, "the cluster".to_owned()),
    };
    HttpError::kafka(
        kafka_code,
        format!("{} may not {operation:?} on {what}", principal.as_str()),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, HttpError> {
        // [`authenticate`] runs on every route, so a missing caller is a
        // route wired outside it: refuse rather than run unauthenticated.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| HttpError::internal("request reached a handler without authentication"))
    }
}

/// The client address of an HTTP connection, recorded at accept (axum's
/// `ConnectInfo` for our [`crate::listener::BoundedListener`] and its TLS
/// form).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, crate::listener::BoundedListener>> for PeerAddr {
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, crate::listener::BoundedListener>,
    ) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl Connected<axum::serve::IncomingStream<'_, crate::listener::TlsBoundedListener>> for PeerAddr {
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, crate::listener::TlsBoundedListener>,
    ) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Paths served without credentials even with `http_auth` on: probes
/// (`/health`, `/ready`; an orchestrator has no credentials), the OpenAPI
/// document (the same text ships with every binary; it names no topic),
/// and the console's static files (the login page must load).
pub fn is_open_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/health" | "/ready" | "/v1/openapi.json" | "/favicon.ico"
    ) || path.starts_with("/console/")
}

/// Failed logins one client address may make in a burst before it must
/// wait. Small: a person mistyping a password a few times is not slowed,
/// but a guesser gets [`FAILED_LOGIN_REFILL`] per guess, so the endpoint
/// cannot try SCRAM passwords at line rate.
pub const FAILED_LOGIN_BURST: u32 = 10;

/// One more failed login is allowed per address this often.
pub const FAILED_LOGIN_REFILL: Duration = Duration::from_secs(1);

/// Client addresses whose failures are tracked one by one; past this many,
/// new addresses share one bucket, so a flood of addresses cannot grow the
/// map (or reset their own buckets by crowding others out).
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// A token bucket of failed logins per client address.
#[derive(Debug, Default)]
pub struct FailedLoginLimiter {
    /// Buckets by address; `None` is the shared overflow bucket. A std
    /// mutex: held for a map lookup, never across an `.await`.
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failed attempts still allowed right now.
    tokens: u32,
    /// When the last token was added (or the bucket was made).
    refilled: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let refill_ms = FAILED_LOGIN_REFILL.as_millis().max(1);
        let earned = now.saturating_duration_since(self.refilled).as_millis() / refill_ms;
        if earned == 0 {
            return;
        }
        let earned_u32 = u32::try_from(earned).unwrap_or(u32::MAX);
        self.tokens = self
            .tokens
            .saturating_add(earned_u32)
            .min(FAILED_LOGIN_BURST);
        if self.tokens == FAILED_LOGIN_BURST {
            self.refilled = now;
        } else {
            // Keep the fraction of a refill period already waited.
            self.refilled += FAILED_LOGIN_REFILL * earned_u32;
        }
    }
}

impl FailedLoginLimiter {
    /// `Err(wait)` if `ip` has used up its failed attempts and must wait
    /// `wait` before trying again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.lock();
        let key = Self::key(&buckets, ip);
        let Some(bucket) = buckets.get_mut(&key) else {
            return Ok(());
        };
        bucket.refill(now);
        if bucket.tokens > 0 {
            return Ok(());
        }
        Err(FAILED_LOGIN_REFILL.saturating_sub(now.saturating_duration_since(bucket.refilled)))
    }

    /// Counts one failed attempt from `ip`.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut buckets = self.lock();
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&Some(ip)) {
            // Full buckets hold nothing worth keeping.
            buckets.retain(|_, b| {
                b.refill(now);
                b.tokens < FAILED_LOGIN_BURST
            });
        }
        let key = Self::key(&buckets, ip);
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: FAILED_LOGIN_BURST,
            refilled: now,
        });
        bucket.refill(now);
        bucket.tokens = bucket.tokens.saturating_sub(1);
    }

    fn key(buckets: &HashMap<Option<IpAddr>, Bucket>, ip: IpAddr) -> Option<IpAddr> {
        if buckets.contains_key(&Some(ip)) || buckets.len() < MAX_TRACKED_CLIENTS {
            Some(ip)
        } else {
            None
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Bucket>> {
        // A panic while holding it leaves only counters behind; keep going.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `error_code` of a request without credentials.
const AUTHENTICATION_REQUIRED: &str = "AUTHENTICATION_REQUIRED";
/// The `error_code` of credentials that do not check out.
const AUTHENTICATION_FAILED: &str = "AUTHENTICATION_FAILED";
/// The `error_code` of a client over its failed-login budget.
const TOO_MANY_FAILED_LOGINS: &str = "TOO_MANY_FAILED_LOGINS";

/// A 401 with the challenge clients expect. `challenge` false leaves out
/// `WWW-Authenticate`, for the console's own calls (marked
/// `X-Requested-With: XMLHttpRequest`): with it, browsers pop up their own
/// password dialog over the console's login page.
fn unauthorized(realm: &str, challenge: bool, error_code: &str, message: &str) -> Response {
    let mut response =
        HttpError::new(StatusCode::UNAUTHORIZED, error_code, message).into_response();
    // The realm is validated at start-up as printable ASCII without quotes.
    let value = HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""));
    if let (true, Ok(value)) = (challenge, value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The middleware: puts a [`Caller`] on every request, or answers 401/429
/// itself. Runs before routing decides anything, so unknown paths need
/// credentials too (no probing for routes).
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let host = request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    let Some(security) = state.security.clone() else {
        request.extensions_mut().insert(Caller::anonymous(host));
        return next.run(request).await;
    };
    if is_open_path(request.uri().path()) {
        return next.run(request).await;
    }
    let realm = state.broker.config.http_auth.realm.clone();
    let challenge = request
        .headers()
        .get("x-requested-with")
        .is_none_or(|v| !v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"));
    let Some(credentials) = request.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            &realm,
            challenge,
            AUTHENTICATION_REQUIRED,
            "this API needs HTTP basic credentials or a bearer token",
        );
    };
    let credentials = credentials.to_str().unwrap_or_default().to_owned();
    if let Err(wait) = state.login_limiter.check(host, Instant::now()) {
        let mut response = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            TOO_MANY_FAILED_LOGINS,
            format!(
                "too many failed logins from {host}; try again in {} ms",
                wait.as_millis()
            ),
        )
        .into_response();
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        return response;
    }
    let outcome = match parse_authorization(&credentials) {
        Some(Credentials::Basic { user, password }) => {
            let s = Arc::clone(&security);
            // SCRAM's key derivation is deliberately slow: off the async workers.
            sluice_runtime::blocking("http-login", move || s.verify_password(&user, &password))
                .await
                .ok()
                .flatten()
                .map(|principal| (principal, AuthMethod::Basic))
        }
        Some(Credentials::Bearer(token)) => bearer(&state, &token),
        None => None,
    };
    let Some((principal, method)) = outcome else {
        state.login_limiter.record_failure(host, Instant::now());
        // One message for an unknown user, a wrong password, a bad, revoked
        // or expired token: nothing tells a guesser which part was wrong.
        return unauthorized(
            &realm,
            challenge,
            AUTHENTICATION_FAILED,
            "authentication failed",
        );
    };
    request.extensions_mut().insert(Caller {
        principal,
        host,
        method,
        security: Some(security),
    });
    next.run(request).await
}

/// Credentials from an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Longest `Authorization` value examined; hyper already bounds headers, this
/// keeps base64 decoding of a hostile value small.
const MAX_AUTHORIZATION_BYTES: usize = 4096;

fn parse_authorization(value: &str) -> Option<Credentials> {
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Credentials::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Bearer(rest.to_owned()));
    }
    None
}

/// Bytes of a token's secret: 256 bits from the OS's random source.
pub const TOKEN_SECRET_BYTES: usize = 32;

/// Checks a bearer token `<id>.<secret>` against the image: the secret's
/// SHA-256 must equal the stored hash (compared in constant time) and the
/// token must not have expired.
fn bearer(state: &AppState, token: &str) -> Option<(HttpPrincipal, AuthMethod)> {
    let (id, secret) = token.split_once('.')?;
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let image = state.broker.metadata.image();
    let stored = image.http_tokens.get(id);
    // An unknown id compares against zeros, so it costs what a known one does.
    let expected = stored.map_or([0u8; 32], |t| t.sha256);
    let matches: bool = hash.ct_eq(&expected).into();
    let stored = stored.filter(|_| matches)?;
    if stored.expires_ms <= now_ms() {
        return None;
    }
    Some((
        HttpPrincipal(stored.principal.clone()),
        AuthMethod::Bearer {
            token_id: stored.id.clone(),
            expires_ms: stored.expires_ms,
        },
    ))
}

/// A token to create.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Whom the token authenticates as; the caller when absent. Another
    /// principal needs ALTER on the cluster.
    #[schema(example = "User:alice")]
    pub principal: Option<String>,
    /// How long it lasts; `http_auth.token_max_lifetime_ms` when absent or
    /// not positive, and never longer than that (as Kafka's delegation
    /// tokens).
    pub lifetime_ms: Option<i64>,
}

/// A created token. `token` is shown this once: only its hash is kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Id, for listing and revoking.
    pub token_id: String,
    /// The bearer token to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Whom it authenticates as.
    pub principal: String,
    /// When it stops working (ms since the epoch).
    pub expires_ms: i64,
}

/// A token in a listing (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    /// Id.
    pub token_id: String,
    /// Whom it authenticates as.
    pub principal: String,
    /// When it was created (ms since the epoch).
    pub created_ms: i64,
    /// When it stops working (ms since the epoch).
    pub expires_ms: i64,
    /// True once `expires_ms` has passed (it stays listed until revoked).
    pub expired: bool,
}

/// Token listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Tokens by id.
    pub tokens: Vec<TokenInfo>,
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The principal, e.g. `User:alice` (`User:ANONYMOUS` with auth off).
    pub principal: String,
    /// `none` (http_auth off), `basic` or `bearer`.
    pub auth_method: String,
    /// Whether `http_auth` is on.
    pub auth_enabled: bool,
    /// With `bearer`: the token's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// With `bearer`: when the token expires (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

/// Principals look like Kafka's `Type:name`.
fn valid_principal(p: &str) -> bool {
    p.split_once(':')
        .is_some_and(|(t, n)| !t.is_empty() && !n.is_empty() && !p.chars().any(char::is_control))
}

fn tokens_disabled() -> HttpError {
    HttpError::kafka(
        code::DELEGATION_TOKEN_AUTH_DISABLED,
        "bearer tokens need http_auth.enabled = true",
    )
}

/// Creates a bearer token.
#[utoipa::path(post, operation_id = "create_token", path = "/v1/auth/tokens", tag = "auth",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
        (status = 400, description = "Bad principal, or http_auth is off", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "A token for another principal without ALTER on the cluster, or a request authenticated by a token", body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    if state.security.is_none() {
        return Err(tokens_disabled());
    }
    // Kafka's rule for delegation tokens: a token cannot mint tokens, so a
    // stolen one cannot outlive its own expiry.
    if matches!(caller.method, AuthMethod::Bearer { .. }) {
        return Err(HttpError::kafka(
            code::DELEGATION_TOKEN_REQUEST_NOT_ALLOWED,
            "a request authenticated by a bearer token cannot create tokens; use basic credentials",
        ));
    }
    let principal = request
        .principal
        .unwrap_or_else(|| caller.principal.as_str().to_owned());
    if !valid_principal(&principal) {
        return Err(HttpError::bad_request(format!(
            "principal {principal:?} is not `Type:name`"
        )));
    }
    if principal != caller.principal.as_str() {
        caller.require(Operation::Alter, Resource::Cluster)?;
    }
    let max_ms =
        i64::try_from(state.broker.config.http_auth.token_max_lifetime_ms).unwrap_or(i64::MAX);
    let lifetime_ms = match request.lifetime_ms {
        Some(ms) if ms > 0 => ms.min(max_ms),
        _ => max_ms,
    };
    let mut secret_bytes = [0u8; TOKEN_SECRET_BYTES];
    getrandom::fill(&mut secret_bytes)
        .map_err(|e| HttpError::internal(format!("no randomness for a token: {e}")))?;
    let secret = URL_SAFE_NO_PAD.encode(secret_bytes);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let created_ms = now_ms();
    let token = HttpTokenImage {
        id: id.clone(),
        principal: principal.clone(),
        sha256: Sha256::digest(secret.as_bytes()).into(),
        created_ms,
        expires_ms: created_ms.saturating_add(lifetime_ms),
    };
    let expires_ms = token.expires_ms;
    state.broker.controller.create_http_token(token).await?;
    tracing::info!(token_id = %id, %principal, by = %caller.principal.as_str(), expires_ms, "http token created");
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            token: format!("{id}.{secret}"),
            token_id: id,
            principal,
            expires_ms,
        }),
    ))
}

/// Lists bearer tokens: every token with DESCRIBE on the cluster, else the
/// caller's own.
#[utoipa::path(get, operation_id = "list_tokens", path = "/v1/auth/tokens", tag = "auth",
    responses(
        (status = 200, description = "Tokens (never their secrets)", body = TokenList),
        (status = 400, description = "http_auth is off", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
    ))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<TokenList>> {
    if state.security.is_none() {
        return Err(tokens_disabled());
    }
    let all = caller.allowed(Operation::Describe, Resource::Cluster);
    let now = now_ms();
    let image = state.broker.metadata.image();
    let tokens = image
        .http_tokens
        .values()
        .filter(|t| all || t.principal == caller.principal.as_str())
        .map(|t| TokenInfo {
            token_id: t.id.clone(),
            principal: t.principal.clone(),
            created_ms: t.created_ms,
            expires_ms: t.expires_ms,
            expired: t.expires_ms <= now,
        })
        .collect();
    Ok(axum::Json(TokenList { tokens }))
}

/// Revokes a bearer token: the caller's own, or any with ALTER on the
/// cluster.
#[utoipa::path(delete, operation_id = "revoke_token", path = "/v1/auth/tokens/{token_id}", tag = "auth",
    params(("token_id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked; it authenticates no more"),
        (status = 400, description = "http_auth is off", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Another principal's token without ALTER on the cluster", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.security.is_none() {
        return Err(tokens_disabled());
    }
    let owner = state
        .broker
        .metadata
        .image()
        .http_tokens
        .get(&token_id)
        .map(|t| t.principal.clone());
    if owner.as_deref() != Some(caller.principal.as_str()) {
        // Unknown ids too: only an admin learns whether an id exists.
        caller.require(Operation::Alter, Resource::Cluster)?;
    }
    state
        .broker
        .controller
        .remove_http_token(token_id.clone())
        .await?;
    tracing::info!(%token_id, by = %caller.principal.as_str(), "http token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's principal and how it authenticated.
#[utoipa::path(get, operation_id = "whoami", path = "/v1/auth/whoami", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
    ))]
pub async fn whoami(State(state): State<AppState>, caller: Caller) -> axum::Json<WhoAmI> {
    let (auth_method, token_id, expires_ms) = match caller.method {
        AuthMethod::None => ("none", None, None),
        AuthMethod::Basic => ("basic", None, None),
        AuthMethod::Bearer {
            token_id,
            expires_ms,
        } => ("bearer", Some(token_id), Some(expires_ms)),
    };
    axum::Json(WhoAmI {
        principal: caller.principal.0,
        auth_method: auth_method.to_owned(),
        auth_enabled: state.security.is_some(),
        token_id,
        expires_ms,
    })
}

#[cfg(test)]
mod tests {
    //! The HTTP layer against a test double of [`HttpSecurity`] (users and an
    //! allow-list); the real SCRAM store and ACL authorizer are tested
    //! where they live and end to end after they are wired in.

    use std::collections::{HashMap, HashSet};

    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap, Method};
    use serde_json::{Value, json};
    use sluice_broker::Broker;
    use tower::ServiceExt;

    use super::*;
    use crate::test_support;

    /// Users with passwords and an allow-list of (principal, operation,
    /// resource) triples. Tests only.
    #[derive(Debug, Default)]
    struct TestSecurity {
        users: HashMap<String, String>,
        allowed: Mutex<HashSet<(String, Operation, String)>>,
    }

    fn resource_key(resource: Resource<'_>) -> String {
        match resource {
            Resource::Topic(t) => format!("topic:{t}"),
            Resource::Group(g) => format!("group:{g}"),
            Resource::Cluster => "cluster".to_owned(),
        }
    }

    impl TestSecurity {
        fn with_users(users: &[(&str, &str)]) -> TestSecurity {
            TestSecurity {
                users: users
                    .iter()
                    .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                    .collect(),
                allowed: Mutex::default(),
            }
        }

        fn allow(&self, principal: &str, operation: Operation, resource: Resource<'_>) {
            self.allowed.lock().expect("lock").insert((
                principal.to_owned(),
                operation,
                resource_key(resource),
            ));
        }
    }

    impl HttpSecurity for TestSecurity {
        fn verify_password(&self, user: &str, password: &str) -> Option<HttpPrincipal> {
            (self.users.get(user).map(String::as_str) == Some(password))
                .then(|| HttpPrincipal(format!("User:{user}")))
        }

        fn authorize(
            &self,
            principal: &HttpPrincipal,
            _host: IpAddr,
            operation: Operation,
            resource: Resource<'_>,
        ) -> bool {
            self.allowed.lock().expect("lock").contains(&(
                principal.0.clone(),
                operation,
                resource_key(resource),
            ))
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        broker: Arc<Broker>,
        security: Arc<TestSecurity>,
        app: Router,
    }

    fn fixture_with(security: Option<TestSecurity>) -> Fixture {
        let has_security = security.is_some();
        let (dir, broker) =
            test_support::temp_broker(|config| config.http_auth.enabled = has_security, 9092);
        let security = Arc::new(security.unwrap_or_default());
        let state = AppState {
            security: has_security.then(|| Arc::clone(&security) as Arc<dyn HttpSecurity>),
            ..test_support::app_state(Arc::clone(&broker))
        };
        Fixture {
            _dir: dir,
            broker,
            security,
            app: crate::app(state),
        }
    }

    fn fixture() -> Fixture {
        fixture_with(Some(TestSecurity::with_users(&[
            ("admin", "admin-secret"),
            ("alice", "alice-secret"),
        ])))
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
    }

    const CLIENT: &str = "192.0.2.7:40000";

    impl Fixture {
        async fn call_from(
            &self,
            peer: &str,
            method: Method,
            uri: &str,
            auth: Option<&str>,
            body: Option<Value>,
        ) -> (StatusCode, HeaderMap, Value) {
            let auth: Vec<_> = auth
                .map(|a| (header::AUTHORIZATION, a))
                .into_iter()
                .collect();
            test_support::call(
                &self.app,
                peer,
                method,
                uri,
                &auth,
                "application/json",
                body,
            )
            .await
        }

        async fn call(
            &self,
            method: Method,
            uri: &str,
            auth: Option<&str>,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            let (status, _, value) = self.call_from(CLIENT, method, uri, auth, body).await;
            (status, value)
        }

        async fn create_topic(&self, name: &str) {
            let admin = basic("admin", "admin-secret");
            self.security
                .allow("User:admin", Operation::Create, Resource::Cluster);
            let (status, body) = self
                .call(
                    Method::POST,
                    "/v1/topics",
                    Some(&admin),
                    Some(json!({"name": name, "partitions": 1})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }

    #[tokio::test]
    async fn missing_or_wrong_credentials_are_401_with_a_basic_challenge() {
        let f = fixture();
        for auth in [
            None,
            Some(basic("alice", "wrong")),
            Some(basic("mallory", "alice-secret")),
            Some("Basic !!!not-base64".to_owned()),
            Some("Digest whatever".to_owned()),
            Some("Bearer nodot".to_owned()),
        ] {
            let (status, headers, body) = f
                .call_from(CLIENT, Method::GET, "/v1/topics", auth.as_deref(), None)
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(
                headers
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok()),
                Some("Basic realm=\"sluice\", charset=\"UTF-8\""),
                "{auth:?}"
            );
            let expected = if auth.is_none() {
                AUTHENTICATION_REQUIRED
            } else {
                AUTHENTICATION_FAILED
            };
            assert_eq!(body["error_code"], expected, "{auth:?}");
        }
        // An unknown user and a wrong password get the same answer.
        let (_, unknown) = f
            .call(Method::GET, "/v1/topics", Some(&basic("nobody", "x")), None)
            .await;
        let (_, wrong) = f
            .call(Method::GET, "/v1/topics", Some(&basic("alice", "x")), None)
            .await;
        assert_eq!(unknown, wrong);
        // Unknown routes need credentials too: no probing for routes.
        let (status, _) = f.call(Method::GET, "/v1/nothing-here", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // The console's calls get no challenge (no browser password dialog).
        let mut request = Request::builder()
            .uri("/v1/topics")
            .header("x-requested-with", "XMLHttpRequest")
            .body(Body::empty())
            .expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(PeerAddr(CLIENT.parse().expect("addr"))));
        let response = f.app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn probes_openapi_and_console_files_stay_open() {
        let f = fixture();
        for path in ["/health", "/v1/openapi.json", "/", "/console/console.js"] {
            let (status, _) = f.call(Method::GET, path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        // Not ready yet: 503, not 401.
        let (status, _) = f.call(Method::GET, "/ready", None, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        // Metrics name every topic and group: credentials and DESCRIBE cluster.
        let alice = basic("alice", "alice-secret");
        let (status, _) = f.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = f.call(Method::GET, "/metrics", Some(&alice), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error_code"], "CLUSTER_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Describe, Resource::Cluster);
        let (status, _, _) = f
            .call_from(CLIENT, Method::GET, "/metrics", Some(&alice), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn auth_off_keeps_the_api_open_to_anonymous() {
        let f = fixture_with(None);
        let (status, body) = f
            .call(
                Method::POST,
                "/v1/topics",
                None,
                Some(json!({"name": "open", "partitions": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = f.call(Method::GET, "/v1/topics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["topics"][0]["name"], "open");
        assert!(body["topics"][0].get("configs_hidden").is_none());
        for path in ["/v1/cluster", "/metrics", "/v1/groups", "/v1/topics/open"] {
            let (status, _) = f.call(Method::GET, path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        // A header is ignored, not checked, with auth off.
        let (status, _) = f
            .call(Method::GET, "/v1/topics", Some(&basic("x", "y")), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = f.call(Method::GET, "/v1/auth/whoami", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"principal": "User:ANONYMOUS", "auth_method": "none", "auth_enabled": false})
        );
        let (status, body) = f.call(Method::GET, "/v1/auth/tokens", None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_code"], "DELEGATION_TOKEN_AUTH_DISABLED");
    }

    /// The key-value view needs READ on the topic, checked before the
    /// topic's existence or policy, like the REST read.
    #[tokio::test]
    async fn key_value_routes_need_read_and_a_compacted_topic() {
        let f = fixture();
        let admin = basic("admin", "admin-secret");
        f.security
            .allow("User:admin", Operation::Create, Resource::Cluster);
        for (name, configs) in [
            ("table", json!({"cleanup.policy": "compact"})),
            ("plain", json!({})),
        ] {
            let body = json!({"name": name, "partitions": 2, "configs": configs});
            let (status, out) = f
                .call(Method::POST, "/v1/topics", Some(&admin), Some(body))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{out}");
        }
        f.security
            .allow("User:admin", Operation::Write, Resource::Topic("table"));
        let records = json!({"records": [
            {"key": "user/1", "value": "old"},
            {"key": "user/1", "value": "new"},
            {"key": "user/2", "value": "x"},
        ]});
        let (status, out) = f
            .call(
                Method::POST,
                "/v1/topics/table/records",
                Some(&admin),
                Some(records),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");

        let alice = basic("alice", "alice-secret");
        let a = Some(alice.as_str());
        let get = "/v1/topics/table/keys/user%2F1";
        for uri in [
            get,
            "/v1/topics/table/keys",
            "/v1/topics/no-such-topic/keys",
        ] {
            let (status, err) = f.call(Method::GET, uri, a, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {err}");
            assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
        }
        for topic in ["table", "plain"] {
            f.security
                .allow("User:alice", Operation::Read, Resource::Topic(topic));
        }
        let (status, record) = f.call(Method::GET, get, a, None).await;
        assert_eq!(status, StatusCode::OK, "{record}");
        assert_eq!(record["topic"], "table");
        assert_eq!(record["key"], "user/1");
        assert_eq!(record["value"], "\"new\"");
        let (status, list) = f
            .call(Method::GET, "/v1/topics/table/keys?prefix=user", a, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let keys: Vec<&str> = list["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["key"].as_str())
            .collect();
        assert_eq!(keys, ["user/1", "user/2"]);
        let (status, err) = f.call(Method::GET, "/v1/topics/plain/keys", a, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error_code"], "TOPIC_NOT_COMPACTED");
        let (status, err) = f
            .call(Method::GET, "/v1/topics/table/keys/nobody", a, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(err["error_code"], "KEY_NOT_FOUND");
    }

    #[tokio::test]
    async fn topic_routes_need_their_kafka_operations() {
        let f = fixture();
        let alice = basic("alice", "alice-secret");
        let a = Some(alice.as_str());
        // Create: 403 without CREATE on the cluster or the topic.
        let body = json!({"name": "orders", "partitions": 1});
        let (status, err) = f
            .call(Method::POST, "/v1/topics", a, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
        assert!(
            f.broker.metadata.image().topics.is_empty(),
            "nothing created"
        );
        f.security
            .allow("User:alice", Operation::Create, Resource::Topic("orders"));
        let (status, _) = f.call(Method::POST, "/v1/topics", a, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
        f.create_topic("secret").await;

        // Listing shows only what alice may DESCRIBE.
        let (_, list) = f.call(Method::GET, "/v1/topics", a, None).await;
        assert_eq!(list["topics"].as_array().map(Vec::len), Some(0), "{list}");
        f.security
            .allow("User:alice", Operation::Describe, Resource::Topic("orders"));
        let (_, list) = f.call(Method::GET, "/v1/topics", a, None).await;
        let names: Vec<&str> = list["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["orders"]);

        // Describe: DESCRIBE, checked before existence; configs need DESCRIBE_CONFIGS.
        for topic in ["secret", "no-such-topic"] {
            let (status, err) = f
                .call(Method::GET, &format!("/v1/topics/{topic}"), a, None)
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{topic}");
            assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
        }
        let (status, d) = f.call(Method::GET, "/v1/topics/orders", a, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(d["configs_hidden"], true);
        f.security.allow(
            "User:alice",
            Operation::DescribeConfigs,
            Resource::Topic("orders"),
        );
        let (_, d) = f.call(Method::GET, "/v1/topics/orders", a, None).await;
        assert!(d.get("configs_hidden").is_none(), "{d}");

        // The live tail needs READ; refused before anything is streamed.
        let (status, err) = f.call(Method::GET, "/v1/topics/orders/tail", a, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");

        // Alter configs, add partitions, produce, read.
        let cases: [(Method, &str, Option<Value>, Operation); 4] = [
            (
                Method::PATCH,
                "/v1/topics/orders/configs",
                Some(json!({"set": {"retention.ms": "1000"}})),
                Operation::AlterConfigs,
            ),
            (
                Method::POST,
                "/v1/topics/orders/partitions",
                Some(json!({"count": 2})),
                Operation::Alter,
            ),
            (
                Method::POST,
                "/v1/topics/orders/records",
                Some(json!({"records": [{"value": "aGk="}]})),
                Operation::Write,
            ),
            (
                Method::GET,
                "/v1/topics/orders/partitions/0/records?first=1",
                None,
                Operation::Read,
            ),
        ];
        for (method, uri, body, operation) in cases {
            let (status, err) = f.call(method.clone(), uri, a, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {err}");
            assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
            f.security
                .allow("User:alice", operation, Resource::Topic("orders"));
            let (status, out) = f.call(method.clone(), uri, a, body).await;
            assert!(
                status.is_success(),
                "{method} {uri} once allowed: {status} {out}"
            );
        }

        // With READ the tail streams (only the status is read: it never ends).
        let mut request = Request::builder()
            .uri("/v1/topics/orders/tail")
            .header(header::AUTHORIZATION, &alice)
            .body(Body::empty())
            .expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(PeerAddr(CLIENT.parse().expect("addr"))));
        let response = f.app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        drop(response);

        let (status, err) = f.call(Method::DELETE, "/v1/topics/orders", a, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Delete, Resource::Topic("orders"));
        let (status, _) = f.call(Method::DELETE, "/v1/topics/orders", a, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(!f.broker.metadata.image().topics.contains_key("orders"));
    }

    #[tokio::test]
    async fn group_and_cluster_routes_need_their_kafka_operations() {
        let f = fixture();
        let alice = basic("alice", "alice-secret");
        let a = Some(alice.as_str());
        f.create_topic("t").await;
        let (status, err) = f.call(Method::GET, "/v1/groups/g1", a, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "GROUP_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Describe, Resource::Group("g1"));
        let (status, _) = f.call(Method::GET, "/v1/groups/g1", a, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "allowed, and there is none");

        // Reset offsets: READ on the group and on the topic.
        let reset = json!({"topic": "t", "to": "earliest"});
        let (status, err) = f
            .call(
                Method::POST,
                "/v1/groups/g1/offsets/reset",
                a,
                Some(reset.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "GROUP_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Read, Resource::Group("g1"));
        let (status, err) = f
            .call(
                Method::POST,
                "/v1/groups/g1/offsets/reset",
                a,
                Some(reset.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Read, Resource::Topic("t"));
        let (status, _) = f
            .call(Method::POST, "/v1/groups/g1/offsets/reset", a, Some(reset))
            .await;
        assert_ne!(status, StatusCode::FORBIDDEN);

        // Cluster status and balance: DESCRIBE; (de|re)commission: ALTER.
        for path in ["/v1/cluster", "/v1/cluster/balance"] {
            let (status, err) = f.call(Method::GET, path, a, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(err["error_code"], "CLUSTER_AUTHORIZATION_FAILED");
        }
        f.security
            .allow("User:alice", Operation::Describe, Resource::Cluster);
        for path in ["/v1/cluster", "/v1/cluster/balance"] {
            let (status, _) = f.call(Method::GET, path, a, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        let uri = "/v1/cluster/brokers/1/decommission";
        for method in [Method::POST, Method::DELETE] {
            let (status, err) = f.call(method.clone(), uri, a, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
            assert_eq!(err["error_code"], "CLUSTER_AUTHORIZATION_FAILED");
        }
        f.security
            .allow("User:alice", Operation::Alter, Resource::Cluster);
        let (status, _) = f.call(Method::DELETE, uri, a, None).await;
        assert_ne!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn delete_group_and_delete_records_need_delete() {
        let f = fixture();
        let alice = basic("alice", "alice-secret");
        let a = Some(alice.as_str());
        f.create_topic("t").await;
        f.security
            .allow("User:alice", Operation::Write, Resource::Topic("t"));
        let records = json!({"records": [{"value": 1}, {"value": 2}, {"value": 3}]});
        let (status, _) = f
            .call(Method::POST, "/v1/topics/t/records", a, Some(records))
            .await;
        assert_eq!(status, StatusCode::OK);

        // DeleteRecords: DELETE on the topic.
        let uri = "/v1/topics/t/partitions/0/records?before=2";
        let (status, err) = f.call(Method::DELETE, uri, a, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
        assert_eq!(err["error_code"], "TOPIC_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Delete, Resource::Topic("t"));
        let (status, out) = f.call(Method::DELETE, uri, a, None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            (
                out["log_start_offset"].as_i64(),
                out["high_watermark"].as_i64()
            ),
            (Some(2), Some(3))
        );
        let partition = f.broker.replicas.partition("t", 0).expect("hosted");
        assert_eq!(partition.log().log_start_offset(), 2);
        for (before, status, code) in [
            (
                "9",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "OFFSET_OUT_OF_RANGE",
            ),
            (
                "-1",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "OFFSET_OUT_OF_RANGE",
            ),
            ("soon", StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        ] {
            let uri = format!("/v1/topics/t/partitions/0/records?before={before}");
            let (got, err) = f.call(Method::DELETE, &uri, a, None).await;
            assert_eq!(
                (got, err["error_code"].as_str()),
                (status, Some(code)),
                "{before}: {err}"
            );
        }
        assert_eq!(
            partition.log().log_start_offset(),
            2,
            "refusals delete nothing"
        );
        let (status, out) = f
            .call(
                Method::DELETE,
                "/v1/topics/t/partitions/0/records?before=end",
                a,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["log_start_offset"], 3);
        let (status, err) = f
            .call(
                Method::DELETE,
                "/v1/topics/t/partitions/4/records?before=end",
                a,
                None,
            )
            .await;
        assert_eq!(
            (status, err["error_code"].as_str()),
            (StatusCode::NOT_FOUND, Some("UNKNOWN_TOPIC_OR_PARTITION"))
        );

        // DeleteGroups: DELETE on the group; an empty group goes with its offsets.
        f.broker
            .load_coordinators(&sluice_runtime::Tasks::new())
            .await
            .expect("load coordinators");
        let who = sluice_coordinator::group::CommitIdentity {
            member_id: String::new(),
            instance_id: None,
            generation_or_epoch: -1,
        };
        let offsets = vec![sluice_coordinator::group::OffsetToCommit {
            topic: "t".to_owned(),
            partition: 0,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }];
        f.broker
            .groups
            .commit_offsets("g1", &who, offsets)
            .await
            .expect("commit");
        let (status, err) = f.call(Method::DELETE, "/v1/groups/g1", a, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "GROUP_AUTHORIZATION_FAILED");
        f.security
            .allow("User:alice", Operation::Delete, Resource::Group("g1"));
        let (status, _) = f.call(Method::DELETE, "/v1/groups/g1", a, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(f.broker.groups.get("g1").is_none());
        let (status, err) = f.call(Method::DELETE, "/v1/groups/g1", a, None).await;
        assert_eq!(
            (status, err["error_code"].as_str()),
            (StatusCode::NOT_FOUND, Some("GROUP_ID_NOT_FOUND"))
        );
    }

    #[tokio::test]
    async fn consumer_instance_routes_need_read_on_the_group() {
        let f = fixture();
        let alice = basic("alice", "alice-secret");
        let a = Some(alice.as_str());
        let instance = "/consumers/g1/instances/i1";
        let cases: [(Method, String, Option<Value>); 8] = [
            (
                Method::POST,
                "/consumers/g1".to_owned(),
                Some(json!({"name": "i1"})),
            ),
            (Method::DELETE, instance.to_owned(), None),
            (
                Method::POST,
                format!("{instance}/subscription"),
                Some(json!({"topics": ["t"]})),
            ),
            (Method::GET, format!("{instance}/subscription"), None),
            (Method::GET, format!("{instance}/assignments"), None),
            (Method::GET, format!("{instance}/records"), None),
            (Method::POST, format!("{instance}/offsets"), None),
            (Method::GET, format!("{instance}/offsets"), None),
        ];
        for (method, uri, body) in &cases {
            let (status, err) = f.call(method.clone(), uri, a, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {err}");
            assert_eq!(err["error_code"], "GROUP_AUTHORIZATION_FAILED");
        }
        f.security
            .allow("User:alice", Operation::Read, Resource::Group("g1"));
        // Allowed now: the instance routes reach the instance lookup.
        for (method, uri, body) in cases.into_iter().skip(1) {
            let (status, err) = f.call(method.clone(), &uri, a, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {err}");
            assert_eq!(err["error_code"], "CONSUMER_INSTANCE_NOT_FOUND");
        }
    }

    #[tokio::test]
    async fn tokens_are_created_listed_used_and_revoked() {
        let f = fixture();
        let alice = basic("alice", "alice-secret");
        let (status, created) = f
            .call(
                Method::POST,
                "/v1/auth/tokens",
                Some(&alice),
                Some(json!({"lifetime_ms": 60_000})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["principal"], "User:alice");
        let token = created["token"].as_str().expect("token").to_owned();
        let id = created["token_id"].as_str().expect("id").to_owned();
        let bearer = format!("Bearer {token}");

        // Only the hash is in the metadata, never the secret.
        let image = f.broker.metadata.image();
        let stored = &image.http_tokens[&id];
        let secret = token.split_once('.').expect("id.secret").1;
        assert_eq!(secret.len(), 43, "256 bits in unpadded base64url");
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        assert_eq!(stored.sha256, hash);
        let record = sluice_metadata::codec::encode(&sluice_metadata::MetadataRecord::HttpToken(
            stored.clone(),
        ))
        .expect("encode");
        assert!(
            !record.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is not in the record"
        );
        let now = now_ms();
        assert!(stored.expires_ms > now && stored.expires_ms <= now + 60_000);

        // The token authenticates as alice.
        let (status, me) = f
            .call(Method::GET, "/v1/auth/whoami", Some(&bearer), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["principal"], "User:alice");
        assert_eq!(me["auth_method"], "bearer");
        assert_eq!(me["token_id"], id.as_str());

        // A token cannot mint tokens (Kafka's rule for delegation tokens).
        let (status, err) = f
            .call(
                Method::POST,
                "/v1/auth/tokens",
                Some(&bearer),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(err["error_code"], "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED");

        // A wrong secret with a real id is refused.
        let forged = format!("Bearer {id}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        let (status, _) = f
            .call(Method::GET, "/v1/auth/whoami", Some(&forged), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Alice sees her own token; not another principal's without DESCRIBE cluster.
        let admin = basic("admin", "admin-secret");
        let (status, other) = f
            .call(
                Method::POST,
                "/v1/auth/tokens",
                Some(&alice),
                Some(json!({"principal": "User:admin"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{other}");
        assert_eq!(other["error_code"], "CLUSTER_AUTHORIZATION_FAILED");
        f.security
            .allow("User:admin", Operation::Alter, Resource::Cluster);
        let (status, for_bob) = f
            .call(
                Method::POST,
                "/v1/auth/tokens",
                Some(&admin),
                Some(json!({"principal": "User:bob", "lifetime_ms": i64::MAX})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // Cut to http_auth.token_max_lifetime_ms.
        let max = i64::try_from(f.broker.config.http_auth.token_max_lifetime_ms).expect("fits");
        assert!(for_bob["expires_ms"].as_i64().expect("ms") <= now_ms() + max);
        let bob_id = for_bob["token_id"].as_str().expect("id").to_owned();
        let (_, mine) = f
            .call(Method::GET, "/v1/auth/tokens", Some(&alice), None)
            .await;
        let ids: Vec<&str> = mine["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["token_id"].as_str())
            .collect();
        assert_eq!(ids, [id.as_str()]);
        assert!(mine["tokens"][0].get("token").is_none(), "never the secret");
        f.security
            .allow("User:admin", Operation::Describe, Resource::Cluster);
        let (_, all) = f
            .call(Method::GET, "/v1/auth/tokens", Some(&admin), None)
            .await;
        assert_eq!(all["tokens"].as_array().map(Vec::len), Some(2));

        // Alice cannot revoke bob's; she can revoke her own.
        let (status, _) = f
            .call(
                Method::DELETE,
                &format!("/v1/auth/tokens/{bob_id}"),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = f
            .call(
                Method::DELETE,
                &format!("/v1/auth/tokens/{id}"),
                Some(&bearer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = f
            .call(Method::GET, "/v1/auth/whoami", Some(&bearer), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
        let (status, err) = f
            .call(
                Method::DELETE,
                &format!("/v1/auth/tokens/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(err["error_code"], "DELEGATION_TOKEN_NOT_FOUND");
        let (status, _) = f
            .call(
                Method::DELETE,
                &format!("/v1/auth/tokens/{bob_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let f = fixture();
        let secret = "s3cret";
        let token = HttpTokenImage {
            id: "old".to_owned(),
            principal: "User:alice".to_owned(),
            sha256: Sha256::digest(secret.as_bytes()).into(),
            created_ms: 0,
            expires_ms: now_ms() - 1,
        };
        f.broker
            .controller
            .create_http_token(token.clone())
            .await
            .expect("stored");
        let (status, body) = f
            .call(
                Method::GET,
                "/v1/auth/whoami",
                Some("Bearer old.s3cret"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error_code"], AUTHENTICATION_FAILED);
        // The same token unexpired works, so the refusal was the expiry.
        f.broker
            .controller
            .create_http_token(HttpTokenImage {
                id: "new".to_owned(),
                expires_ms: now_ms() + 60_000,
                ..token
            })
            .await
            .expect("stored");
        let (status, _) = f
            .call(
                Method::GET,
                "/v1/auth/whoami",
                Some("Bearer new.s3cret"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn failed_logins_from_one_address_are_bounded() {
        let f = fixture();
        let wrong = basic("alice", "guess");
        let right = basic("alice", "alice-secret");
        for _ in 0..FAILED_LOGIN_BURST {
            let (status, _, _) = f
                .call_from(CLIENT, Method::GET, "/v1/auth/whoami", Some(&wrong), None)
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        // Out of attempts: even the right password waits, so guessing
        // cannot run faster than the refill.
        let (status, headers, body) = f
            .call_from(CLIENT, Method::GET, "/v1/auth/whoami", Some(&right), None)
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error_code"], TOO_MANY_FAILED_LOGINS);
        assert!(headers.contains_key(header::RETRY_AFTER));
        // Another address is not affected.
        let (status, _, _) = f
            .call_from(
                "192.0.2.8:1",
                Method::GET,
                "/v1/auth/whoami",
                Some(&right),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn the_failed_login_bucket_refills_one_attempt_per_period() {
        let limiter = FailedLoginLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..FAILED_LOGIN_BURST {
            assert!(limiter.check(ip, t0).is_ok());
            limiter.record_failure(ip, t0);
        }
        assert!(limiter.check(ip, t0).is_err());
        let later = t0 + FAILED_LOGIN_REFILL;
        assert!(limiter.check(ip, later).is_ok(), "one attempt back");
        limiter.record_failure(ip, later);
        assert!(limiter.check(ip, later).is_err());
        assert!(
            limiter
                .check(ip, later + FAILED_LOGIN_REFILL * FAILED_LOGIN_BURST)
                .is_ok()
        );
    }

    #[test]
    fn past_the_tracked_addresses_new_ones_share_one_bucket() {
        let limiter = FailedLoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_CLIENTS {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(u128::try_from(i).expect("fits")));
            limiter.record_failure(ip, t0);
        }
        let newcomer = |n: u32| IpAddr::V4(Ipv4Addr::from(n));
        for n in 0..FAILED_LOGIN_BURST {
            limiter.record_failure(newcomer(n), t0);
        }
        assert!(
            limiter.check(newcomer(999), t0).is_err(),
            "shared overflow bucket"
        );
        assert!(limiter.lock().len() <= MAX_TRACKED_CLIENTS + 1);
    }

    #[test]
    fn authorization_headers_parse_strictly() {
        assert_eq!(
            parse_authorization(&basic("a:b", "c")),
            // The first colon splits: RFC 7617 forbids one in the user id.
            Some(Credentials::Basic {
                user: "a".to_owned(),
                password: "b:c".to_owned()
            })
        );
        assert_eq!(
            parse_authorization("bearer abc.def"),
            Some(Credentials::Bearer("abc.def".to_owned()))
        );
        assert_eq!(parse_authorization("Basic"), None);
        assert_eq!(parse_authorization(&"Bearer x".repeat(1000)), None);
        assert!(valid_principal("User:alice"));
        assert!(!valid_principal("alice"));
        assert!(!valid_principal("User:"));
    }
}
