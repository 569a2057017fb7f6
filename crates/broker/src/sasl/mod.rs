//! SASL authentication of one Kafka connection (Kafka's
//! `SaslServerAuthenticator`).
//!
//! On a SASL_PLAINTEXT (or SASL_SSL) listener the connection loop hands
//! every frame to its [`Session`] first. Before authentication only
//! ApiVersions, SaslHandshake and SaslAuthenticate are served; any other
//! request closes the connection. SaslHandshake picks a mechanism from
//! `sasl.enabled_mechanisms`; SaslAuthenticate (v0–v2) carries the
//! mechanism's tokens. A failure answers SASL_AUTHENTICATION_FAILED with a
//! message after `sasl.failed_authentication_delay_ms`, then closes the
//! connection. Success makes the connection's principal `User:<name>`.
//!
//! Re-authentication (KIP-368): with `sasl.connections_max_reauth_ms` set,
//! SaslAuthenticate v1+ tells the client how long its session lasts, and a
//! request other than SaslHandshake/SaslAuthenticate after that closes the
//! connection. An OAUTHBEARER session also ends when its token expires
//! (the lifetime is the smaller of the two, as in Kafka), even with
//! re-authentication off. A new SaslHandshake on an authenticated connection starts a
//! re-authentication, which must use the same mechanism and end with the
//! same user.
//!
//! Credentials: one user store, the SCRAM credentials in the metadata
//! image. SCRAM-SHA-256/512 check the client's proof against them; PLAIN
//! derives the salted password with the stored salt and iterations and
//! compares the stored key (SCRAM-SHA-512's credential first, then
//! SCRAM-SHA-256's). OAUTHBEARER needs no user store: the token's
//! signature (or, when allowed, an unsecured token) vouches for the
//! principal; a refused token is answered with RFC 7628's error JSON and
//! the exchange fails on the client's `\x01` that follows. The mechanisms
//! themselves live in `sluice-auth`.
//! This module owns the per-connection state and the Kafka framing; it
//! never touches the network.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_auth::oauthbearer::{self, Validator};
use sluice_auth::scram::{Credential, FakeCredentials, Mechanism, ScramError, ScramServer};
pub use sluice_auth::verified::{VERIFIED_PASSWORDS_MAX_ENTRIES, VerifiedPasswords};
use sluice_metadata::MetadataImage;
use sluice_protocol::error::codes;
use sluice_protocol::messages::sasl_authenticate::SaslAuthenticateResponse;
use sluice_protocol::messages::sasl_handshake::SaslHandshakeResponse;
use sluice_protocol::{
    ApiKey, Encode, RequestBody, RequestHeader, decode_request, encode_response,
    response_header_version,
};
use tokio::time::Instant;

use crate::config::{SaslConfig, SecurityProtocol};

pub mod bootstrap;

/// Largest frame accepted before a connection has authenticated (Kafka's
/// `sasl.server.max.receive.size`, 512 KiB): an unauthenticated client
/// cannot make the broker buffer a 100 MiB request. It bounds every SASL
/// token, which are a few hundred bytes for SCRAM and PLAIN.
pub const MAX_SASL_RECEIVE_BYTES: u32 = 512 * 1024;

/// True if connections of a listener with `protocol` must authenticate.
pub fn required(protocol: SecurityProtocol) -> bool {
    matches!(
        protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    )
}

/// A mechanism this broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN, checked against the SCRAM credentials.
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(Mechanism),
    /// OAUTHBEARER with a JWT (RFC 7628).
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism named `name`, if this broker has it.
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        match name {
            "PLAIN" => Some(SaslMechanism::Plain),
            oauthbearer::MECHANISM => Some(SaslMechanism::OAuthBearer),
            other => Mechanism::from_name(other).map(SaslMechanism::Scram),
        }
    }

    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
            SaslMechanism::OAuthBearer => oauthbearer::MECHANISM,
        }
    }
}

/// The credential a password is checked against (PLAIN, HTTP basic):
/// the user's SCRAM-SHA-512 one if it has it, else SCRAM-SHA-256.
fn stored_credential(image: &MetadataImage, user: &str) -> Option<(Mechanism, Credential)> {
    Mechanism::ALL.into_iter().find_map(|m| {
        image.scram_credential(user, m.kafka_type()).map(|c| {
            let credential = Credential {
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            };
            (m, credential)
        })
    })
}

/// What every SASL connection of a listener shares.
#[derive(Debug)]
pub struct SaslSettings {
    /// Enabled mechanisms, in the order SaslHandshake lists them.
    mechanisms: Vec<SaslMechanism>,
    /// Stand-in credentials for unknown users (a per-process secret).
    fake: FakeCredentials,
    /// `sasl.connections_max_reauth_ms`; 0 is off.
    reauth_ms: u64,
    /// `sasl.failed_authentication_delay_ms`.
    failed_delay: Duration,
    /// `sasl.handshake_timeout_ms`.
    handshake_timeout: Duration,
    /// `[sasl.oauthbearer]`: how OAUTHBEARER tokens are checked.
    oauth: Validator,
}

impl SaslSettings {
    /// Whether `password` is `user`'s, checked against the user's stored
    /// SCRAM credential (the first mechanism that has one) the way PLAIN
    /// and HTTP basic authentication check it. An unknown user costs the
    /// same key derivation as a known one, so the answer's timing does
    /// not tell whether the user exists.
    pub fn verify_password(&self, image: &MetadataImage, user: &str, password: &str) -> bool {
        match stored_credential(image, user) {
            Some((mechanism, c)) => c.verify_password(mechanism, password.as_bytes()),
            None => self.verify_unknown_user(user, password),
        }
    }

    /// [`SaslSettings::verify_password`], answered from `verified` when
    /// this password already passed against the user's *current*
    /// credential (HTTP basic sends it on every request). A changed or
    /// deleted credential never matches an old entry; an unknown user and
    /// a wrong password still cost the full derivation.
    pub fn verify_password_cached(
        &self,
        image: &MetadataImage,
        user: &str,
        password: &str,
        verified: &VerifiedPasswords,
    ) -> bool {
        match stored_credential(image, user) {
            Some((mechanism, c)) => verified.verify(user, password.as_bytes(), mechanism, &c),
            None => self.verify_unknown_user(user, password),
        }
    }

    /// The same derivation a known user costs, against the stand-in
    /// credential, so that timing does not tell the user does not exist.
    fn verify_unknown_user(&self, user: &str, password: &str) -> bool {
        let fake = self.fake.credential(Mechanism::Sha512, user);
        let _ = fake.verify_password(Mechanism::Sha512, password.as_bytes());
        false
    }

    /// Settings from the validated `[sasl]` section.
    pub fn from_config(config: &SaslConfig) -> SaslSettings {
        let fake = FakeCredentials::random().unwrap_or_else(|e| {
            // Without randomness the stand-ins are keyed by the clock: an
            // unknown user still fails like a wrong password, only the
            // salt becomes guessable. Logged, as it should never happen.
            tracing::error!("no randomness for SCRAM stand-in credentials: {e}");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let mut secret = [0u8; 32];
            secret[..16].copy_from_slice(&nanos.to_be_bytes());
            FakeCredentials::with_secret(secret)
        });
        SaslSettings {
            mechanisms: config
                .enabled_mechanisms
                .iter()
                .filter_map(|m| SaslMechanism::from_name(m))
                .collect(),
            fake,
            reauth_ms: config.connections_max_reauth_ms,
            failed_delay: Duration::from_millis(config.failed_authentication_delay_ms),
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            oauth: oauth_validator(config),
        }
    }
}

/// The OAUTHBEARER validator. Config validation already read the JWKS at
/// start-up; should a second read fail (the file vanished), signed tokens
/// are refused rather than the listener failing.
fn oauth_validator(config: &SaslConfig) -> Validator {
    config.oauthbearer.validator().unwrap_or_else(|e| {
        tracing::error!("OAUTHBEARER refuses every signed token: {e}");
        Validator {
            allow_unsecured: config.oauthbearer.allow_unsecured,
            expected_audience: config.oauthbearer.expected_audience.clone(),
            expected_issuer: config.oauthbearer.expected_issuer.clone(),
            sub_claim_name: config.oauthbearer.sub_claim_name.clone(),
            clock_skew_s: config.oauthbearer.clock_skew_s,
            ..Validator::default()
        }
    })
}

/// Milliseconds since the epoch by the wall clock, which token times
/// (`exp`, `nbf`, `iat`) are measured against.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why a SASL connection was closed.
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    /// A request other than ApiVersions/SaslHandshake/SaslAuthenticate
    /// before authentication.
    #[error("request for api key {api_key} before SASL authentication")]
    Unauthenticated {
        /// The request's API.
        api_key: i16,
    },
    /// The session expired (KIP-368) and the client sent a request instead
    /// of re-authenticating.
    #[error("SASL session expired without re-authentication (api key {api_key})")]
    SessionExpired {
        /// The request's API.
        api_key: i16,
    },
    /// A SASL request that does not decode.
    #[error("malformed SASL request: {0}")]
    Malformed(#[source] sluice_protocol::RequestDecodeError),
    /// Authentication did not finish within `sasl.handshake_timeout_ms`.
    #[error("no SASL authentication within {0:?}")]
    HandshakeTimeout(Duration),
}

/// What the connection does with a frame.
#[derive(Debug)]
pub enum Gate {
    /// Not the session's business: dispatch it as usual.
    Dispatch,
    /// Answer with `frame` after `delay`; with `close`, read nothing more
    /// and close the connection once it is written.
    Answer {
        /// The response frame (`None` only if it failed to encode, which
        /// closes the connection).
        frame: Option<BytesMut>,
        /// How long to hold the answer (failed authentications).
        delay: Duration,
        /// Close after the answer.
        close: bool,
    },
    /// Close at once, without an answer.
    Close(SaslError),
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake (before the first authentication, or on
    /// an authenticated connection, where one starts a re-authentication).
    Handshake,
    /// SaslHandshake chose a mechanism; its first token comes next.
    Authenticate(SaslMechanism),
    /// SCRAM's server-first was sent; the client-final comes next.
    ScramFinal(Box<ScramServer>),
    /// OAUTHBEARER refused the token and sent RFC 7628's error JSON; the
    /// client's `\x01` comes next, and the exchange fails with this
    /// message.
    OAuthFailed(String),
}

/// One connection's authentication state.
#[derive(Debug)]
pub struct Session {
    settings: Arc<SaslSettings>,
    state: State,
    /// The authenticated user, once there is one.
    user: Option<String>,
    /// The mechanism the user authenticated with (re-authentication must
    /// use it again).
    mechanism: Option<SaslMechanism>,
    /// When the session expires (KIP-368), if re-authentication is on.
    expires_at: Option<Instant>,
    /// Authentication must finish by then.
    handshake_deadline: Instant,
}

impl Session {
    /// A session for a connection accepted now.
    pub fn new(settings: Arc<SaslSettings>) -> Session {
        let handshake_deadline = Instant::now() + settings.handshake_timeout;
        Session {
            settings,
            state: State::Handshake,
            user: None,
            mechanism: None,
            expires_at: None,
            handshake_deadline,
        }
    }

    /// The authenticated user name.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// When the connection must be closed for not authenticating, while it
    /// has not.
    pub fn handshake_deadline(&self) -> Option<Instant> {
        self.user.is_none().then_some(self.handshake_deadline)
    }

    /// The timeout behind [`Session::handshake_deadline`].
    pub fn handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
    }

    /// Decides what happens to one request frame, at `now`.
    pub fn on_frame(&mut self, image: &MetadataImage, frame: &Bytes, now: Instant) -> Gate {
        let api_key = frame
            .get(..2)
            .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
        let sasl =
            api_key == ApiKey::SaslHandshake as i16 || api_key == ApiKey::SaslAuthenticate as i16;
        if !sasl {
            return match &self.user {
                None if api_key == ApiKey::ApiVersions as i16 => Gate::Dispatch,
                None => Gate::Close(SaslError::Unauthenticated { api_key }),
                Some(_) if self.expires_at.is_some_and(|at| now >= at) => {
                    Gate::Close(SaslError::SessionExpired { api_key })
                }
                Some(_) => Gate::Dispatch,
            };
        }
        let (header, body) = match decode_request(frame.clone()) {
            Ok(decoded) => decoded,
            Err(e) => return Gate::Close(SaslError::Malformed(e)),
        };
        match body {
            RequestBody::SaslHandshake(r) => self.handshake(&header, &r.mechanism),
            RequestBody::SaslAuthenticate(r) => {
                self.authenticate(image, &header, &r.auth_bytes, now)
            }
            // The api key said SASL; decoding cannot give another body.
            _ => Gate::Close(SaslError::Unauthenticated { api_key }),
        }
    }

    fn handshake(&mut self, header: &RequestHeader, requested: &str) -> Gate {
        let enabled: Vec<String> = self
            .settings
            .mechanisms
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let answer = |error_code: i16, close: bool| Gate::Answer {
            frame: encode(
                header,
                ApiKey::SaslHandshake,
                &SaslHandshakeResponse {
                    error_code,
                    mechanisms: enabled.clone(),
                },
            ),
            delay: Duration::ZERO,
            close,
        };
        if header.request_api_version < 1 {
            // v0 is followed by raw tokens without Kafka framing (before
            // KIP-152); Kafka 4 deprecates it and no current client sends it.
            tracing::info!("SaslHandshake v0 refused; clients must use v1");
            return answer(codes::UNSUPPORTED_VERSION, true);
        }
        if !matches!(self.state, State::Handshake) {
            tracing::info!("SaslHandshake in the middle of an authentication; closing");
            return answer(codes::ILLEGAL_SASL_STATE, true);
        }
        let chosen =
            SaslMechanism::from_name(requested).filter(|m| self.settings.mechanisms.contains(m));
        let Some(mechanism) = chosen else {
            tracing::info!(mechanism = requested, "SASL mechanism not enabled; closing");
            return answer(codes::UNSUPPORTED_SASL_MECHANISM, true);
        };
        if let Some(original) = self.mechanism
            && original != mechanism
        {
            // Kafka: re-authentication must use the original mechanism.
            tracing::info!(
                mechanism = requested,
                original = original.name(),
                "re-authentication with another mechanism; closing"
            );
            return answer(codes::UNSUPPORTED_SASL_MECHANISM, true);
        }
        self.state = State::Authenticate(mechanism);
        answer(codes::NONE, false)
    }

    fn authenticate(
        &mut self,
        image: &MetadataImage,
        header: &RequestHeader,
        token: &[u8],
        now: Instant,
    ) -> Gate {
        match std::mem::replace(&mut self.state, State::Handshake) {
            State::Handshake => {
                tracing::info!("SaslAuthenticate before SaslHandshake; closing");
                self.answer_error(
                    header,
                    codes::ILLEGAL_SASL_STATE,
                    "SaslAuthenticate before SaslHandshake".to_owned(),
                    Duration::ZERO,
                )
            }
            State::Authenticate(SaslMechanism::Plain) => match self.check_plain(image, token) {
                Ok(user) => {
                    self.succeed(header, SaslMechanism::Plain, user, Bytes::new(), now, None)
                }
                Err(message) => self.fail(header, message),
            },
            State::Authenticate(SaslMechanism::OAuthBearer) => self.oauthbearer(header, token, now),
            State::OAuthFailed(message) => {
                if token != oauthbearer::CLIENT_ERROR_ACK {
                    tracing::info!("OAUTHBEARER client answered the error with more than \\x01");
                }
                self.fail(header, message)
            }
            State::Authenticate(SaslMechanism::Scram(mechanism)) => {
                let mut server = ScramServer::new(mechanism);
                let lookup = |user: &str| {
                    image
                        .scram_credential(user, mechanism.kafka_type())
                        .map(|c| Credential {
                            salt: c.salt.clone(),
                            stored_key: c.stored_key.clone(),
                            server_key: c.server_key.clone(),
                            iterations: c.iterations,
                        })
                };
                match server.client_first(token, lookup, &self.settings.fake) {
                    Ok(server_first) => {
                        self.state = State::ScramFinal(Box::new(server));
                        self.answer_ok(header, Bytes::from(server_first), self.reauth_ms())
                    }
                    Err(e) => self.fail(header, scram_failure(mechanism, &e)),
                }
            }
            State::ScramFinal(mut server) => {
                let mechanism = server.mechanism();
                match server.client_final(token) {
                    Ok((user, server_final)) => self.succeed(
                        header,
                        SaslMechanism::Scram(mechanism),
                        user,
                        Bytes::from(server_final),
                        now,
                        None,
                    ),
                    Err(e) => self.fail(header, scram_failure(mechanism, &e)),
                }
            }
        }
    }

    /// PLAIN against the SCRAM store; an unknown user costs the same
    /// derivation as a known one.
    fn check_plain(&self, image: &MetadataImage, token: &[u8]) -> Result<String, String> {
        let message =
            sluice_auth::plain::parse(token).map_err(|e| format!("Authentication failed: {e}"))?;
        if self
            .settings
            .verify_password(image, &message.user, &message.password)
        {
            Ok(message.user)
        } else {
            Err("Authentication failed: Invalid username or password".to_owned())
        }
    }

    /// OAUTHBEARER's single client message (Kafka's
    /// `OAuthBearerSaslServer`): a malformed message or a mismatched
    /// authorization id fails at once; a refused token gets the RFC 7628
    /// error JSON and fails on the client's next message.
    fn oauthbearer(&mut self, header: &RequestHeader, token: &[u8], now: Instant) -> Gate {
        let message = match oauthbearer::parse_initial_response(token) {
            Ok(message) => message,
            Err(e) => {
                return self.fail(
                    header,
                    format!("Authentication failed: invalid OAUTHBEARER message: {e}"),
                );
            }
        };
        let now_ms = wall_clock_ms();
        match self.settings.oauth.validate(&message.token, now_ms) {
            Ok(valid) => {
                if let Some(authzid) = &message.authzid
                    && *authzid != valid.principal
                {
                    let message = format!(
                        "Authentication failed: Client requested an authorization id ({authzid}) that is different from the token's principal name ({})",
                        valid.principal
                    );
                    return self.fail(header, message);
                }
                let remaining_ms = valid.expires_at_ms.saturating_sub(now_ms);
                self.succeed(
                    header,
                    SaslMechanism::OAuthBearer,
                    valid.principal,
                    Bytes::new(),
                    now,
                    Some(remaining_ms),
                )
            }
            Err(e) => {
                tracing::info!("OAUTHBEARER token refused: {e}");
                self.state = State::OAuthFailed(format!(
                    "Authentication failed: OAUTHBEARER token refused: {e}"
                ));
                self.answer_ok(
                    header,
                    Bytes::from_static(oauthbearer::SERVER_ERROR_RESPONSE),
                    0,
                )
            }
        }
    }

    /// `sasl.connections_max_reauth_ms` as the wire's `session_lifetime_ms`.
    fn reauth_ms(&self) -> i64 {
        i64::try_from(self.settings.reauth_ms).unwrap_or(i64::MAX)
    }

    /// The session lifetime (KIP-368), as Kafka's
    /// `SaslServerAuthenticator` computes it: `connections_max_reauth_ms`,
    /// bounded by the time left on the credential (an OAUTHBEARER token's
    /// `exp`) when there is one, never below 0; `None` when neither
    /// applies (the session never expires).
    fn session_lifetime_ms(&self, credential_remaining_ms: Option<i64>) -> Option<i64> {
        let reauth_ms = (self.settings.reauth_ms > 0).then(|| self.reauth_ms());
        match (credential_remaining_ms, reauth_ms) {
            (None, reauth) => reauth,
            (Some(left), None) => Some(left.max(0)),
            (Some(left), Some(reauth)) => Some(left.min(reauth).max(0)),
        }
    }

    fn succeed(
        &mut self,
        header: &RequestHeader,
        mechanism: SaslMechanism,
        user: String,
        auth_bytes: Bytes,
        now: Instant,
        credential_remaining_ms: Option<i64>,
    ) -> Gate {
        if let Some(previous) = &self.user
            && *previous != user
        {
            // Kafka refuses a change of principal on re-authentication.
            let message = format!(
                "Cannot change principals during re-authentication from User:{previous} to User:{user}"
            );
            return self.fail(header, message);
        }
        if self.user.is_some() {
            // Once per session lifetime per connection: worth a line.
            tracing::info!(user = %user, mechanism = mechanism.name(), "SASL re-authentication succeeded");
        } else {
            tracing::debug!(user = %user, mechanism = mechanism.name(), "SASL authentication succeeded");
        }
        self.user = Some(user);
        self.mechanism = Some(mechanism);
        self.state = State::Handshake;
        let lifetime_ms = self.session_lifetime_ms(credential_remaining_ms);
        // A lifetime too far away for the clock is no expiry at all.
        self.expires_at = lifetime_ms
            .and_then(|ms| now.checked_add(Duration::from_millis(u64::try_from(ms).unwrap_or(0))));
        self.answer_ok(header, auth_bytes, lifetime_ms.unwrap_or(0))
    }

    fn answer_ok(
        &self,
        header: &RequestHeader,
        auth_bytes: Bytes,
        session_lifetime_ms: i64,
    ) -> Gate {
        Gate::Answer {
            frame: encode(
                header,
                ApiKey::SaslAuthenticate,
                &SaslAuthenticateResponse {
                    error_code: codes::NONE,
                    error_message: None,
                    auth_bytes,
                    // Only on the final answer does the lifetime count
                    // (Kafka sends `connections.max.reauth.ms` on the
                    // others; v1+ carries it).
                    session_lifetime_ms,
                    ..Default::default()
                },
            ),
            delay: Duration::ZERO,
            close: false,
        }
    }

    fn fail(&mut self, header: &RequestHeader, message: String) -> Gate {
        tracing::info!(user = ?self.user, "SASL authentication failed: {message}");
        let delay = self.settings.failed_delay;
        self.answer_error(header, codes::SASL_AUTHENTICATION_FAILED, message, delay)
    }

    fn answer_error(
        &mut self,
        header: &RequestHeader,
        error_code: i16,
        message: String,
        delay: Duration,
    ) -> Gate {
        self.state = State::Handshake;
        Gate::Answer {
            frame: encode(
                header,
                ApiKey::SaslAuthenticate,
                &SaslAuthenticateResponse {
                    error_code,
                    error_message: Some(message),
                    ..Default::default()
                },
            ),
            delay,
            close: true,
        }
    }
}

/// Kafka's messages: invalid credentials name the mechanism; anything else
/// says what was wrong with the message.
fn scram_failure(mechanism: Mechanism, error: &ScramError) -> String {
    match error {
        ScramError::InvalidCredentials => format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
        ),
        other => format!("Authentication failed: {other}"),
    }
}

fn encode<R: Encode>(header: &RequestHeader, api: ApiKey, response: &R) -> Option<BytesMut> {
    let version = header.request_api_version;
    let header_version = response_header_version(api, version);
    match encode_response(header.correlation_id, header_version, response, version) {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::error!(
                api = api.name(),
                version,
                "cannot encode SASL response: {e}"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
