//! The session's decisions, driven by encoded request frames.

use bytes::Buf;
use sluice_auth::scram::{Credential, Mechanism, ScramClient};
use sluice_metadata::{MetadataImage, MetadataRecord};
use sluice_protocol::messages::api_versions::ApiVersionsRequest;
use sluice_protocol::messages::metadata::MetadataRequest;
use sluice_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
use sluice_protocol::messages::sasl_handshake::SaslHandshakeRequest;
use sluice_protocol::{Decode, ResponseHeader, encode_request};

use super::*;

fn settings(reauth_ms: u64) -> Arc<SaslSettings> {
    let config = SaslConfig {
        connections_max_reauth_ms: reauth_ms,
        enabled_mechanisms: vec!["SCRAM-SHA-512".to_owned(), "PLAIN".to_owned()],
        ..SaslConfig::default()
    };
    Arc::new(SaslSettings::from_config(&config))
}

/// An image with `alice` / `secret` and `bob` / `hunter2` (SCRAM-SHA-512).
fn image() -> MetadataImage {
    let record = |name: &str, password: &[u8]| {
        let c = Credential::from_password(Mechanism::Sha512, password, b"salt-salt", 4096);
        MetadataRecord::UserScramCredential {
            name: name.to_owned(),
            mechanism: Mechanism::Sha512.kafka_type(),
            salt: c.salt,
            stored_key: c.stored_key,
            server_key: c.server_key,
            iterations: c.iterations,
        }
    };
    MetadataImage::default()
        .with_change(
            &[record("alice", b"secret"), record("bob", b"hunter2")],
            0,
            2,
        )
        .expect("apply")
}

fn request<R: sluice_protocol::Request>(api: ApiKey, version: i16, body: &R) -> Bytes {
    let header = RequestHeader {
        request_api_key: api as i16,
        request_api_version: version,
        correlation_id: 3,
        client_id: Some("t".to_owned()),
    };
    let mut frame = encode_request(&header, body).expect("encode").freeze();
    frame.advance(4);
    frame
}

fn handshake(mechanism: &str) -> Bytes {
    request(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest {
            mechanism: mechanism.to_owned(),
            ..Default::default()
        },
    )
}

fn token(bytes: &[u8]) -> Bytes {
    request(
        ApiKey::SaslAuthenticate,
        1,
        &SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(bytes),
            ..Default::default()
        },
    )
}

fn metadata() -> Bytes {
    request(ApiKey::Metadata, 4, &MetadataRequest::default())
}

/// The answer's frame decoded as SaslAuthenticate v1, with the delay and
/// whether the connection closes.
fn authenticate_answer(gate: Gate) -> (SaslAuthenticateResponse, Duration, bool) {
    let Gate::Answer {
        frame,
        delay,
        close,
    } = gate
    else {
        panic!("expected an answer, got {gate:?}");
    };
    let mut frame = frame.expect("encoded").freeze();
    frame.advance(4);
    ResponseHeader::decode(&mut frame, 0).expect("header");
    let response = SaslAuthenticateResponse::decode(&mut frame, 1).expect("body");
    (response, delay, close)
}

fn handshake_answer(gate: Gate) -> (i16, Vec<String>, bool) {
    let Gate::Answer { frame, close, .. } = gate else {
        panic!("expected an answer, got {gate:?}");
    };
    let mut frame = frame.expect("encoded").freeze();
    frame.advance(4);
    ResponseHeader::decode(&mut frame, 0).expect("header");
    let response = SaslHandshakeResponse::decode(&mut frame, 1).expect("body");
    (response.error_code, response.mechanisms, close)
}

/// Runs a whole SCRAM-SHA-512 login; returns the final answer.
fn scram_login(
    session: &mut Session,
    image: &MetadataImage,
    user: &str,
    password: &[u8],
    now: Instant,
) -> SaslAuthenticateResponse {
    let (code, _, close) =
        handshake_answer(session.on_frame(image, &handshake("SCRAM-SHA-512"), now));
    assert_eq!((code, close), (0, false));
    let mut client = ScramClient::new(Mechanism::Sha512, user, password);
    let first = client.client_first().expect("first");
    let (response, _, close) = authenticate_answer(session.on_frame(image, &token(&first), now));
    assert_eq!((response.error_code, close), (0, false), "{response:?}");
    let last = client.server_first(&response.auth_bytes).expect("final");
    let (response, _, _) = authenticate_answer(session.on_frame(image, &token(&last), now));
    if response.error_code == 0 {
        client
            .server_final(&response.auth_bytes)
            .expect("the broker proves it knows the credential");
    }
    response
}

#[test]
fn only_api_versions_and_sasl_are_served_before_authentication() {
    let mut session = Session::new(settings(0));
    let image = image();
    let now = Instant::now();
    let versions = request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(matches!(
        session.on_frame(&image, &versions, now),
        Gate::Dispatch
    ));
    assert!(matches!(
        session.on_frame(&image, &metadata(), now),
        Gate::Close(SaslError::Unauthenticated { api_key: 3 })
    ));
    assert!(session.handshake_deadline().is_some());
}

#[test]
fn a_scram_login_sets_the_user_and_opens_every_api() {
    let mut session = Session::new(settings(0));
    let image = image();
    let now = Instant::now();
    let response = scram_login(&mut session, &image, "alice", b"secret", now);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.session_lifetime_ms, 0, "re-authentication is off");
    assert_eq!(session.user(), Some("alice"));
    assert!(session.handshake_deadline().is_none());
    assert!(matches!(
        session.on_frame(&image, &metadata(), now),
        Gate::Dispatch
    ));
}

#[test]
fn wrong_passwords_and_unknown_users_fail_alike_after_the_delay_and_close() {
    let image = image();
    let now = Instant::now();
    for (user, password) in [("alice", &b"wrong"[..]), ("nobody", &b"secret"[..])] {
        let mut session = Session::new(settings(0));
        let (code, _, _) =
            handshake_answer(session.on_frame(&image, &handshake("SCRAM-SHA-512"), now));
        assert_eq!(code, 0);
        let mut client = ScramClient::new(Mechanism::Sha512, user, password);
        let first = client.client_first().expect("first");
        let (response, _, _) = authenticate_answer(session.on_frame(&image, &token(&first), now));
        assert_eq!(
            response.error_code, 0,
            "an unknown user is not told apart at the first message"
        );
        let last = client.server_first(&response.auth_bytes).expect("final");
        let (response, delay, close) =
            authenticate_answer(session.on_frame(&image, &token(&last), now));
        assert_eq!(response.error_code, codes::SASL_AUTHENTICATION_FAILED);
        assert_eq!(
            response.error_message.as_deref(),
            Some(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
            )
        );
        assert_eq!(delay, Duration::from_millis(100));
        assert!(close);
        assert_eq!(session.user(), None);
    }
}

#[test]
fn plain_checks_the_scram_store() {
    let image = image();
    let now = Instant::now();
    let mut session = Session::new(settings(0));
    handshake_answer(session.on_frame(&image, &handshake("PLAIN"), now));
    let (response, _, close) =
        authenticate_answer(session.on_frame(&image, &token(b"\0bob\0hunter2"), now));
    assert_eq!((response.error_code, close), (0, false));
    assert_eq!(session.user(), Some("bob"));
    for bad in [&b"\0bob\0hunter3"[..], b"\0nobody\0hunter2", b"garbage"] {
        let mut session = Session::new(settings(0));
        handshake_answer(session.on_frame(&image, &handshake("PLAIN"), now));
        let (response, _, close) = authenticate_answer(session.on_frame(&image, &token(bad), now));
        assert_eq!(
            (response.error_code, close),
            (codes::SASL_AUTHENTICATION_FAILED, true)
        );
        assert!(
            response
                .error_message
                .is_some_and(|m| m.starts_with("Authentication failed"))
        );
    }
}

#[test]
fn out_of_order_and_unknown_mechanisms_are_refused_and_close() {
    let image = image();
    let now = Instant::now();
    let mut session = Session::new(settings(0));
    let (response, _, close) =
        authenticate_answer(session.on_frame(&image, &token(b"n,,n=a,r=b"), now));
    assert_eq!(
        (response.error_code, close),
        (codes::ILLEGAL_SASL_STATE, true)
    );

    let mut session = Session::new(settings(0));
    let (code, mechanisms, close) =
        handshake_answer(session.on_frame(&image, &handshake("SCRAM-SHA-256"), now));
    assert_eq!(
        (code, close),
        (codes::UNSUPPORTED_SASL_MECHANISM, true),
        "not enabled here"
    );
    assert_eq!(mechanisms, ["SCRAM-SHA-512", "PLAIN"]);

    let mut session = Session::new(settings(0));
    handshake_answer(session.on_frame(&image, &handshake("PLAIN"), now));
    let (code, _, close) = handshake_answer(session.on_frame(&image, &handshake("PLAIN"), now));
    assert_eq!(
        (code, close),
        (codes::ILLEGAL_SASL_STATE, true),
        "a second handshake mid-exchange"
    );

    let mut session = Session::new(settings(0));
    let v0 = request(
        ApiKey::SaslHandshake,
        0,
        &SaslHandshakeRequest {
            mechanism: "PLAIN".to_owned(),
            ..Default::default()
        },
    );
    let Gate::Answer { close, .. } = session.on_frame(&image, &v0, now) else {
        panic!("v0 is answered");
    };
    assert!(close, "v0 (raw tokens) is refused");

    let mut session = Session::new(settings(0));
    let garbage = Bytes::from_static(&[0, 36, 0, 1, 0, 0, 0, 1, 0xff]);
    assert!(matches!(
        session.on_frame(&image, &garbage, now),
        Gate::Close(SaslError::Malformed(_))
    ));
}

#[test]
fn an_expired_session_closes_on_the_next_request_and_reauthentication_renews_it() {
    let image = image();
    let start = Instant::now();
    let mut session = Session::new(settings(1_000));
    let response = scram_login(&mut session, &image, "alice", b"secret", start);
    assert_eq!(response.session_lifetime_ms, 1_000);
    let before = start + Duration::from_millis(999);
    assert!(matches!(
        session.on_frame(&image, &metadata(), before),
        Gate::Dispatch
    ));
    // Re-authenticating as the same user renews the session.
    let response = scram_login(&mut session, &image, "alice", b"secret", before);
    assert_eq!(response.error_code, 0);
    let later = before + Duration::from_millis(999);
    assert!(matches!(
        session.on_frame(&image, &metadata(), later),
        Gate::Dispatch
    ));
    // Past the renewed lifetime, a request closes the connection.
    let expired = later + Duration::from_millis(1);
    assert!(matches!(
        session.on_frame(&image, &metadata(), expired),
        Gate::Close(SaslError::SessionExpired { .. })
    ));
}

#[test]
fn reauthentication_cannot_change_the_principal_or_the_mechanism() {
    let image = image();
    let now = Instant::now();
    let mut session = Session::new(settings(60_000));
    scram_login(&mut session, &image, "alice", b"secret", now);
    let response = scram_login(&mut session, &image, "bob", b"hunter2", now);
    assert_eq!(response.error_code, codes::SASL_AUTHENTICATION_FAILED);
    assert!(
        response
            .error_message
            .is_some_and(|m| m.contains("Cannot change principals"))
    );
    assert_eq!(session.user(), Some("alice"));

    let mut session = Session::new(settings(60_000));
    scram_login(&mut session, &image, "alice", b"secret", now);
    let (code, _, close) = handshake_answer(session.on_frame(&image, &handshake("PLAIN"), now));
    assert_eq!((code, close), (codes::UNSUPPORTED_SASL_MECHANISM, true));
}

/// The image after `alice`'s SCRAM-SHA-512 credential is replaced (a
/// password change through AlterUserScramCredentials) or removed.
fn image_with_alice(image: &MetadataImage, password: Option<&[u8]>) -> MetadataImage {
    let record = match password {
        Some(password) => {
            let c = Credential::from_password(Mechanism::Sha512, password, b"new-salt", 4096);
            MetadataRecord::UserScramCredential {
                name: "alice".to_owned(),
                mechanism: Mechanism::Sha512.kafka_type(),
                salt: c.salt,
                stored_key: c.stored_key,
                server_key: c.server_key,
                iterations: c.iterations,
            }
        }
        None => MetadataRecord::RemoveUserScramCredential {
            name: "alice".to_owned(),
            mechanism: Mechanism::Sha512.kafka_type(),
        },
    };
    let at = image.next_offset;
    image.with_change(&[record], at, at + 1).expect("apply")
}

#[test]
fn cached_password_checks_follow_credential_changes_and_deletions() {
    let settings = settings(0);
    let verified = VerifiedPasswords::with_key([9; 32], 4);
    let image = image();
    let check = |image: &MetadataImage, user: &str, password: &str| {
        settings.verify_password_cached(image, user, password, &verified)
    };
    assert!(check(&image, "alice", "secret"));
    assert_eq!(verified.len(), 1, "a success is remembered");
    assert!(check(&image, "alice", "secret"));
    assert_eq!(verified.len(), 1, "the second check found it");
    // Failures and unknown users are not remembered.
    assert!(!check(&image, "alice", "wrong"));
    assert!(!check(&image, "nobody", "secret"));
    assert_eq!(verified.len(), 1);
    // A password change: the old password fails at once, the new passes.
    let changed = image_with_alice(&image, Some(b"new-secret"));
    assert!(!check(&changed, "alice", "secret"));
    assert!(check(&changed, "alice", "new-secret"));
    // Deleted: neither passes, though both were remembered.
    let deleted = image_with_alice(&changed, None);
    assert!(!check(&deleted, "alice", "new-secret"));
    assert!(!check(&deleted, "alice", "secret"));
    // The uncached check agrees everywhere.
    assert!(settings.verify_password(&image, "alice", "secret"));
    assert!(!settings.verify_password(&changed, "alice", "secret"));
    assert!(!settings.verify_password(&deleted, "alice", "new-secret"));
}

// ---- OAUTHBEARER ----

fn oauth_settings(reauth_ms: u64, allow_unsecured: bool) -> Arc<SaslSettings> {
    let mut config = SaslConfig {
        connections_max_reauth_ms: reauth_ms,
        enabled_mechanisms: vec!["OAUTHBEARER".to_owned(), "PLAIN".to_owned()],
        ..SaslConfig::default()
    };
    config.oauthbearer.allow_unsecured = allow_unsecured;
    Arc::new(SaslSettings::from_config(&config))
}

/// An unsecured JWT for `sub` expiring `exp_in_s` seconds from now (wall
/// clock), inside an RFC 7628 initial response with `authzid`.
fn oauth_message(sub: &str, exp_in_s: i64, authzid: Option<&str>) -> Vec<u8> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = wall_clock_ms() / 1000 + exp_in_s;
    let jwt = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"sub":"{sub}","exp":{exp}}}"#))
    );
    let gs2 = authzid.map_or(String::new(), |a| format!("a={a}"));
    format!("n,{gs2},\x01auth=Bearer {jwt}\x01\x01").into_bytes()
}

/// Handshake plus the initial response; the answer to the latter.
fn oauth_login(
    session: &mut Session,
    message: &[u8],
    now: Instant,
) -> (SaslAuthenticateResponse, Duration, bool) {
    let image = image();
    let (code, _, close) =
        handshake_answer(session.on_frame(&image, &handshake("OAUTHBEARER"), now));
    assert_eq!((code, close), (codes::NONE, false));
    authenticate_answer(session.on_frame(&image, &token(message), now))
}

#[test]
fn an_oauthbearer_session_ends_when_its_token_expires_even_without_reauth() {
    let now = Instant::now();
    let mut session = Session::new(oauth_settings(0, true));
    let (response, _, close) = oauth_login(&mut session, &oauth_message("alice", 60, None), now);
    assert_eq!((response.error_code, close), (codes::NONE, false));
    assert_eq!(session.user(), Some("alice"));
    assert!(response.auth_bytes.is_empty());
    // The lifetime is what is left of the token (a little under 60 s).
    let lifetime = response.session_lifetime_ms;
    assert!((55_000..=60_000).contains(&lifetime), "{lifetime}");
    let image = image();
    assert!(matches!(
        session.on_frame(&image, &metadata(), now + Duration::from_millis(50_000)),
        Gate::Dispatch
    ));
    assert!(matches!(
        session.on_frame(&image, &metadata(), now + Duration::from_millis(60_001)),
        Gate::Close(SaslError::SessionExpired { .. })
    ));
}

#[test]
fn the_oauthbearer_session_lifetime_is_the_smaller_of_reauth_and_token_expiry() {
    let now = Instant::now();
    let mut session = Session::new(oauth_settings(10_000, true));
    let (response, _, _) = oauth_login(&mut session, &oauth_message("alice", 3600, None), now);
    assert_eq!(response.session_lifetime_ms, 10_000);
    let mut session = Session::new(oauth_settings(3_600_000, true));
    let (response, _, _) = oauth_login(&mut session, &oauth_message("alice", 60, None), now);
    assert!(
        (55_000..=60_000).contains(&response.session_lifetime_ms),
        "{}",
        response.session_lifetime_ms
    );
    // Other mechanisms keep connections_max_reauth_ms.
    let mut session = Session::new(settings(0));
    let response = scram_login(&mut session, &image(), "alice", b"secret", now);
    assert_eq!(response.session_lifetime_ms, 0);
}

#[test]
fn a_refused_token_gets_the_rfc7628_error_then_fails_on_the_clients_ack() {
    let now = Instant::now();
    for (settings, message, reason) in [
        // Expired beyond the 30 s skew.
        (
            oauth_settings(0, true),
            oauth_message("alice", -3600, None),
            "expired",
        ),
        // Unsecured while not allowed.
        (
            oauth_settings(0, false),
            oauth_message("alice", 60, None),
            "unsecured",
        ),
    ] {
        let mut session = Session::new(settings);
        let (response, delay, close) = oauth_login(&mut session, &message, now);
        assert_eq!((response.error_code, close), (codes::NONE, false));
        assert_eq!(delay, Duration::ZERO);
        assert_eq!(&response.auth_bytes[..], oauthbearer::SERVER_ERROR_RESPONSE);
        assert_eq!(response.session_lifetime_ms, 0);
        assert_eq!(session.user(), None);
        // Nothing but the ack is served meanwhile.
        let image = image();
        let (response, _, close) =
            authenticate_answer(session.on_frame(&image, &token(b"\x01"), now));
        assert_eq!(response.error_code, codes::SASL_AUTHENTICATION_FAILED);
        assert!(close);
        let text = response.error_message.unwrap_or_default();
        assert!(text.contains(reason), "{text}");
        assert_eq!(session.user(), None);
    }
}

#[test]
fn a_malformed_oauthbearer_message_or_foreign_authzid_fails_at_once() {
    let now = Instant::now();
    for (message, reason) in [
        (
            b"n,,\x01auth=Basic abc\x01\x01".to_vec(),
            "invalid OAUTHBEARER message",
        ),
        (b"garbage".to_vec(), "invalid OAUTHBEARER message"),
        (oauth_message("alice", 60, Some("bob")), "authorization id"),
    ] {
        let mut session = Session::new(oauth_settings(0, true));
        let (response, _, close) = oauth_login(&mut session, &message, now);
        assert_eq!(response.error_code, codes::SASL_AUTHENTICATION_FAILED);
        assert!(close);
        let text = response.error_message.unwrap_or_default();
        assert!(text.contains(reason), "{text}");
    }
    // An authzid naming the token's own principal is fine.
    let mut session = Session::new(oauth_settings(0, true));
    let (response, _, _) = oauth_login(
        &mut session,
        &oauth_message("alice", 60, Some("alice")),
        now,
    );
    assert_eq!(response.error_code, codes::NONE);
}

#[test]
fn oauthbearer_reauthentication_cannot_change_the_principal() {
    let now = Instant::now();
    let mut session = Session::new(oauth_settings(60_000, true));
    oauth_login(&mut session, &oauth_message("alice", 600, None), now);
    let (response, _, close) = oauth_login(&mut session, &oauth_message("bob", 600, None), now);
    assert_eq!(response.error_code, codes::SASL_AUTHENTICATION_FAILED);
    assert!(close);
    assert_eq!(session.user(), Some("alice"));
}
