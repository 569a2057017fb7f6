//! Feeds arbitrary OAUTHBEARER client messages and JWTs to `sluice-auth`'s
//! parser and validator. Nothing may panic; with unsecured tokens off, no
//! input may validate, since the only trusted key's private half was
//! thrown away when the harness was written; with them on, a token that
//! validates names a bounded, non-empty principal and is not expired.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_auth::oauthbearer::{
    Jwks, MAX_TOKEN_BYTES, Validator, client_initial_response, parse_initial_response,
};

/// A P-256 public key whose private key no longer exists.
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
"x":"gRxZ-thPGNb9TIC27gLtuSNx-3MjNSIPYXLwjRsMA2c",
"y":"LjUnye9ZG7T4wOPOyE-SFuwdhgCkcby1cfO7zFjWi6w"}]}"#;

/// The validators' clock: 2027-01-15, milliseconds since the epoch.
const NOW_MS: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(jwks) = Jwks::parse(JWKS.as_bytes()) else {
        panic!("the harness JWKS parses");
    };
    let signed_only = Validator {
        jwks,
        ..Validator::default()
    };
    let unsecured = Validator {
        allow_unsecured: true,
        ..signed_only.clone()
    };
    // Bit 0: the bytes are a whole client message; else the bytes are the
    // token itself, so mutations reach the JWT parser without framing.
    let token = if mode & 1 == 1 {
        match parse_initial_response(rest) {
            Ok(message) => {
                assert!(message.token.len() <= MAX_TOKEN_BYTES);
                let again = parse_initial_response(&client_initial_response(&message.token))
                    .map(|m| m.token);
                assert_eq!(again.as_deref(), Ok(message.token.as_str()), "token does not round-trip");
                message.token
            }
            Err(_) => return,
        }
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    assert!(
        signed_only.validate(&token, NOW_MS).is_err(),
        "a token validated without the trusted key's signature"
    );
    if let Ok(valid) = unsecured.validate(&token, NOW_MS) {
        assert!(!valid.principal.trim().is_empty() && valid.principal.len() <= 255);
        assert!(valid.expires_at_ms + 30_000 > NOW_MS, "an expired token validated");
    }
});
