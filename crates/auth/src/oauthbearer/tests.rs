use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::json;

use super::*;

/// A throwaway 2048-bit RSA key (PKCS#1 DER) made with
/// `openssl genpkey -algorithm RSA` and `openssl rsa -outform DER -traditional` for these tests only
/// (ring cannot generate RSA keys).
const RSA_PKCS1: &[u8] = include_bytes!("test_rsa2048.der");

/// Now, in milliseconds since the epoch, for every test.
const NOW_MS: i64 = 1_800_000_000_000;
const NOW_S: i64 = NOW_MS / 1000;

fn b64(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

fn claims(exp_s: i64) -> Value {
    json!({"sub": "alice", "exp": exp_s, "iat": NOW_S - 10})
}

fn unsecured(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims.to_string().as_bytes())
    )
}

struct Rsa(RsaKeyPair);

impl Rsa {
    fn new() -> Rsa {
        Rsa(RsaKeyPair::from_der(RSA_PKCS1).expect("test key parses"))
    }

    fn jwk(&self, kid: &str) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(self.0.public());
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64(&public.n),
            "e": b64(&public.e),
        })
    }

    fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("signs");
        format!("{input}.{}", b64(&sig))
    }
}

struct Ec(EcdsaKeyPair);

impl Ec {
    fn new() -> Ec {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generates");
        Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .expect("parses"),
        )
    }

    fn jwk(&self, kid: &str) -> Value {
        let point = self.0.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        })
    }

    fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .0
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signs");
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

fn validator(keys: &[Value]) -> Validator {
    let jwks = json!({ "keys": keys }).to_string();
    Validator {
        jwks: Jwks::parse(jwks.as_bytes()).expect("JWKS parses"),
        ..Validator::default()
    }
}

fn unsecured_validator() -> Validator {
    Validator {
        allow_unsecured: true,
        ..Validator::default()
    }
}

// ---- the client initial response ----

#[test]
fn initial_response_round_trips_the_token() {
    let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.";
    let parsed = parse_initial_response(&client_initial_response(token)).expect("parses");
    assert_eq!(parsed.token, token);
    assert_eq!(parsed.authzid, None);
    assert!(parsed.extensions.is_empty());
}

#[test]
fn initial_response_keeps_authzid_and_extensions() {
    let msg = b"n,a=al=2Cice=3D,\x01auth=bearer abc.def.ghi\x01traceId=42 x\x01\x01";
    let parsed = parse_initial_response(msg).expect("parses");
    assert_eq!(parsed.authzid.as_deref(), Some("al,ice="));
    assert_eq!(parsed.token, "abc.def.ghi");
    assert_eq!(
        parsed.extensions,
        vec![("traceId".to_owned(), "42 x".to_owned())]
    );
}

#[test]
fn malformed_gs2_headers_are_refused() {
    for msg in [
        &b""[..],
        b"x,,\x01auth=Bearer t\x01\x01",
        b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
        b"n\x01auth=Bearer t\x01\x01",
        b"n,b=alice,\x01auth=Bearer t\x01\x01",
        b"n,a=al=2,\x01auth=Bearer t\x01\x01",
        b"n,a=alice",
    ] {
        assert!(
            matches!(
                parse_initial_response(msg),
                Err(InitialResponseError::Gs2Header(_))
            ),
            "{msg:?}"
        );
    }
}

#[test]
fn malformed_key_values_are_refused() {
    for msg in [
        &b"n,,auth=Bearer t\x01\x01"[..],
        b"n,,\x01auth=Bearer t\x01",
        b"n,,\x01auth=Bearer t",
        b"n,,\x01authBearer t\x01\x01",
        b"n,,\x01au th=Bearer t\x01\x01",
        b"n,,\x01auth=Bearer t\x01x=\x00\x01\x01",
        b"n,,\x01=v\x01auth=Bearer t\x01\x01",
    ] {
        assert!(
            matches!(
                parse_initial_response(msg),
                Err(InitialResponseError::KeyValue(_))
            ),
            "{msg:?}"
        );
    }
}

#[test]
fn missing_or_bad_auth_is_refused() {
    assert_eq!(
        parse_initial_response(b"n,,\x01\x01"),
        Err(InitialResponseError::MissingAuth)
    );
    assert_eq!(
        parse_initial_response(b"n,,\x01host=x\x01\x01"),
        Err(InitialResponseError::MissingAuth)
    );
    for auth in [
        "Basic abc",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a=b",
        "Bearer ===",
    ] {
        let msg = format!("n,,\x01auth={auth}\x01\x01");
        assert!(
            matches!(
                parse_initial_response(msg.as_bytes()),
                Err(InitialResponseError::BadAuth(_))
            ),
            "{auth}"
        );
    }
    assert_eq!(
        parse_initial_response(b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01"),
        Err(InitialResponseError::DuplicateKey("auth".to_owned()))
    );
}

#[test]
fn oversize_messages_and_tokens_are_refused() {
    let token = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(
        parse_initial_response(&client_initial_response(&token)),
        Err(InitialResponseError::TokenTooLong)
    );
    let huge = vec![b'a'; MAX_INITIAL_RESPONSE_BYTES + 1];
    assert_eq!(
        parse_initial_response(&huge),
        Err(InitialResponseError::TooLong)
    );
    let many: String = (0..=MAX_KV_PAIRS)
        .map(|i| format!("k{}=v\x01", "x".repeat(i)))
        .collect::<String>()
        .replace(|c: char| c.is_ascii_digit(), "");
    let msg = format!("n,,\x01auth=Bearer t\x01{many}\x01");
    assert_eq!(
        parse_initial_response(msg.as_bytes()),
        Err(InitialResponseError::TooManyPairs)
    );
    assert_eq!(
        unsecured_validator().validate(&"a".repeat(MAX_TOKEN_BYTES + 1), NOW_MS),
        Err(TokenError::TooLong)
    );
}

// ---- unsecured tokens ----

#[test]
fn unsecured_token_is_accepted_only_when_allowed() {
    let token = unsecured(&claims(NOW_S + 3600));
    let valid = unsecured_validator()
        .validate(&token, NOW_MS)
        .expect("accepted");
    assert_eq!(valid.principal, "alice");
    assert_eq!(valid.expires_at_ms, (NOW_S + 3600) * 1000);
    assert_eq!(
        Validator::default().validate(&token, NOW_MS),
        Err(TokenError::UnsecuredNotAllowed)
    );
    // Even with a JWKS, alg none stays refused unless allowed.
    assert_eq!(
        validator(&[Ec::new().jwk("k")]).validate(&token, NOW_MS),
        Err(TokenError::UnsecuredNotAllowed)
    );
}

#[test]
fn unsecured_token_with_a_signature_is_refused() {
    let token = format!("{}AAAA", unsecured(&claims(NOW_S + 3600)));
    assert!(matches!(
        unsecured_validator().validate(&token, NOW_MS),
        Err(TokenError::Compact(_))
    ));
}

#[test]
fn malformed_compact_serialisations_are_refused() {
    let v = unsecured_validator();
    let good_claims = b64(claims(NOW_S + 60).to_string().as_bytes());
    let none = b64(br#"{"alg":"none"}"#);
    assert!(matches!(
        v.validate("abc", NOW_MS),
        Err(TokenError::Compact(_))
    ));
    assert!(matches!(
        v.validate("a.b.c.d", NOW_MS),
        Err(TokenError::Compact(_))
    ));
    assert_eq!(
        v.validate(&format!("@@.{good_claims}."), NOW_MS),
        Err(TokenError::Base64("header"))
    );
    // Padded base64url is not the JWS encoding.
    assert_eq!(
        v.validate(&format!("{none}.{good_claims}=."), NOW_MS),
        Err(TokenError::Base64("claims"))
    );
    assert_eq!(
        v.validate(&format!("{}.{good_claims}.", b64(b"{not json")), NOW_MS),
        Err(TokenError::Json("header"))
    );
    assert_eq!(
        v.validate(&format!("{}.{good_claims}.", b64(b"[1]")), NOW_MS),
        Err(TokenError::Json("header"))
    );
    assert_eq!(
        v.validate(&format!("{none}.{}.", b64(b"\"str\"")), NOW_MS),
        Err(TokenError::Json("claims"))
    );
    assert!(matches!(
        v.validate(&format!("{}.{good_claims}.", b64(b"{}")), NOW_MS),
        Err(TokenError::Header(_))
    ));
    assert!(matches!(
        v.validate(
            &format!("{}.{good_claims}.", b64(br#"{"alg":"none","crit":["x"]}"#)),
            NOW_MS
        ),
        Err(TokenError::Header(_))
    ));
}

// ---- claims ----

#[test]
fn expired_tokens_are_refused_beyond_the_clock_skew() {
    let v = unsecured_validator();
    // Within the 30 s skew: accepted.
    assert!(v.validate(&unsecured(&claims(NOW_S - 20)), NOW_MS).is_ok());
    assert_eq!(
        v.validate(&unsecured(&claims(NOW_S - 31)), NOW_MS),
        Err(TokenError::Expired {
            exp_s: NOW_S - 31,
            now_s: NOW_S,
            skew_s: 30
        })
    );
    let strict = Validator {
        clock_skew_s: 0,
        ..unsecured_validator()
    };
    assert!(matches!(
        strict.validate(&unsecured(&claims(NOW_S - 1)), NOW_MS),
        Err(TokenError::Expired { .. })
    ));
}

#[test]
fn exp_is_required_and_numeric() {
    let v = unsecured_validator();
    for bad in [
        json!({"sub": "alice"}),
        json!({"sub": "alice", "exp": "soon"}),
        json!({"sub": "alice", "exp": -5}),
        json!({"sub": "alice", "exp": 1e300}),
    ] {
        assert!(
            matches!(
                v.validate(&unsecured(&bad), NOW_MS),
                Err(TokenError::Claim { ref claim, .. }) if claim == "exp"
            ),
            "{bad}"
        );
    }
    // NumericDate may be fractional.
    let fractional = json!({"sub": "alice", "exp": (NOW_S + 10) as f64 + 0.5});
    assert_eq!(
        v.validate(&unsecured(&fractional), NOW_MS)
            .expect("accepted")
            .expires_at_ms,
        (NOW_S + 10) * 1000 + 500
    );
}

#[test]
fn nbf_and_iat_in_the_future_are_refused() {
    let v = unsecured_validator();
    let nbf = json!({"sub": "alice", "exp": NOW_S + 600, "nbf": NOW_S + 120});
    assert!(matches!(
        v.validate(&unsecured(&nbf), NOW_MS),
        Err(TokenError::NotYetValid { .. })
    ));
    let nbf_in_skew = json!({"sub": "alice", "exp": NOW_S + 600, "nbf": NOW_S + 10});
    assert!(v.validate(&unsecured(&nbf_in_skew), NOW_MS).is_ok());
    let iat = json!({"sub": "alice", "exp": NOW_S + 600, "iat": NOW_S + 120});
    assert!(matches!(
        v.validate(&unsecured(&iat), NOW_MS),
        Err(TokenError::IssuedInFuture { .. })
    ));
}

#[test]
fn audience_and_issuer_are_checked_when_configured() {
    let v = Validator {
        expected_audience: vec!["sluice".to_owned(), "kafka".to_owned()],
        expected_issuer: Some("https://issuer".to_owned()),
        ..unsecured_validator()
    };
    let base = |aud: Value, iss: &str| {
        unsecured(&json!({"sub": "alice", "exp": NOW_S + 60, "aud": aud, "iss": iss}))
    };
    assert!(
        v.validate(&base(json!("kafka"), "https://issuer"), NOW_MS)
            .is_ok()
    );
    assert!(
        v.validate(&base(json!(["x", "sluice"]), "https://issuer"), NOW_MS)
            .is_ok()
    );
    assert!(matches!(
        v.validate(&base(json!("other"), "https://issuer"), NOW_MS),
        Err(TokenError::Audience { .. })
    ));
    assert!(matches!(
        v.validate(&base(json!(["x", 5]), "https://issuer"), NOW_MS),
        Err(TokenError::Audience { .. })
    ));
    let no_aud = unsecured(&json!({"sub": "alice", "exp": NOW_S + 60, "iss": "https://issuer"}));
    assert!(matches!(
        v.validate(&no_aud, NOW_MS),
        Err(TokenError::Audience { .. })
    ));
    assert!(matches!(
        v.validate(&base(json!("kafka"), "https://evil"), NOW_MS),
        Err(TokenError::Issuer { .. })
    ));
}

#[test]
fn the_principal_comes_from_the_configured_claim() {
    let token = unsecured(&json!({"sub": "alice", "client_id": "svc-1", "exp": NOW_S + 60}));
    let v = Validator {
        sub_claim_name: "client_id".to_owned(),
        ..unsecured_validator()
    };
    assert_eq!(v.validate(&token, NOW_MS).expect("ok").principal, "svc-1");
    let v = Validator {
        sub_claim_name: "azp".to_owned(),
        ..unsecured_validator()
    };
    assert!(matches!(
        v.validate(&token, NOW_MS),
        Err(TokenError::Claim { ref claim, reason: "required" }) if claim == "azp"
    ));
    for sub in [
        json!(""),
        json!(7),
        json!("x".repeat(MAX_USER_NAME_BYTES + 1)),
    ] {
        let token = unsecured(&json!({"sub": sub, "exp": NOW_S + 60}));
        assert!(matches!(
            unsecured_validator().validate(&token, NOW_MS),
            Err(TokenError::Claim { .. })
        ));
    }
}

// ---- signed tokens ----

#[test]
fn rs256_and_es256_tokens_verify_against_the_jwks() {
    let (rsa, ec) = (Rsa::new(), Ec::new());
    let v = validator(&[rsa.jwk("r1"), ec.jwk("e1")]);
    let c = claims(NOW_S + 600);
    assert_eq!(
        v.validate(&rsa.sign(Some("r1"), &c), NOW_MS)
            .expect("RS256 ok")
            .principal,
        "alice"
    );
    assert!(v.validate(&ec.sign("e1", &c), NOW_MS).is_ok());
    // No kid: every key of the right type is tried.
    assert!(v.validate(&rsa.sign(None, &c), NOW_MS).is_ok());
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let v = validator(&[Ec::new().jwk("k1")]);
    let other = Ec::new();
    assert_eq!(
        v.validate(&other.sign("k1", &claims(NOW_S + 600)), NOW_MS),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn an_unknown_kid_is_refused() {
    let ec = Ec::new();
    let v = validator(&[ec.jwk("k1")]);
    assert_eq!(
        v.validate(&ec.sign("k2", &claims(NOW_S + 600)), NOW_MS),
        Err(TokenError::UnknownKey {
            kid: Some("k2".to_owned()),
            alg: "ES256".to_owned()
        })
    );
    // RS256 against a JWKS with only an EC key: no key fits.
    assert!(matches!(
        v.validate(&Rsa::new().sign(None, &claims(NOW_S + 600)), NOW_MS),
        Err(TokenError::UnknownKey { kid: None, .. })
    ));
}

#[test]
fn tampered_claims_break_the_signature() {
    let rsa = Rsa::new();
    let v = validator(&[rsa.jwk("r1")]);
    let token = rsa.sign(Some("r1"), &claims(NOW_S + 600));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(json!({"sub": "admin", "exp": NOW_S + 600})
            .to_string()
            .as_bytes()),
        parts[2]
    );
    assert_eq!(v.validate(&forged, NOW_MS), Err(TokenError::BadSignature));
    // Re-labelled as unsecured: refused since unsecured is off.
    let downgraded = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
    assert_eq!(
        v.validate(&downgraded, NOW_MS),
        Err(TokenError::UnsecuredNotAllowed)
    );
    // HS256 (a shared secret) is not verified here.
    let hs = format!("{}.{}.{}", b64(br#"{"alg":"HS256"}"#), parts[1], parts[2]);
    assert_eq!(
        v.validate(&hs, NOW_MS),
        Err(TokenError::UnsupportedAlgorithm("HS256".to_owned()))
    );
}

#[test]
fn a_signed_but_expired_token_is_refused() {
    let ec = Ec::new();
    let v = validator(&[ec.jwk("k")]);
    assert!(matches!(
        v.validate(&ec.sign("k", &claims(NOW_S - 3600)), NOW_MS),
        Err(TokenError::Expired { .. })
    ));
}

// ---- JWKS ----

#[test]
fn jwks_skips_foreign_keys_and_refuses_broken_ones() {
    let ec = Ec::new();
    let jwks = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ec.jwk("k"),
    ]});
    assert_eq!(
        Jwks::parse(jwks.to_string().as_bytes())
            .expect("parses")
            .len(),
        1
    );
    for (bad, want) in [
        (json!({"nokeys": []}), "shape"),
        (json!({"keys": []}), "none"),
        (
            json!({"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}),
            "key",
        ),
        (
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}),
            "key",
        ),
        (json!({"keys": [{"n": "AQAB"}]}), "key"),
    ] {
        let got = Jwks::parse(bad.to_string().as_bytes());
        let ok = match want {
            "shape" => matches!(got, Err(JwksError::Shape(_))),
            "none" => matches!(got, Err(JwksError::NoUsableKey)),
            _ => matches!(got, Err(JwksError::Key { index: 0, .. })),
        };
        assert!(ok, "{bad}: {got:?}");
    }
    assert!(matches!(Jwks::parse(b"not json"), Err(JwksError::Shape(_))));
    let many: Vec<Value> = (0..=MAX_JWKS_KEYS)
        .map(|i| ec.jwk(&i.to_string()))
        .collect();
    assert_eq!(
        Jwks::parse(json!({ "keys": many }).to_string().as_bytes()),
        Err(JwksError::TooManyKeys)
    );
}

#[test]
fn a_jwk_pinned_to_another_alg_is_not_used() {
    let rsa = Rsa::new();
    let mut jwk = rsa.jwk("r");
    jwk["alg"] = json!("PS256");
    let v = validator(&[jwk]);
    assert!(matches!(
        v.validate(&rsa.sign(Some("r"), &claims(NOW_S + 60)), NOW_MS),
        Err(TokenError::UnknownKey { .. })
    ));
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_initial_responses_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_initial_response(&bytes);
            let mut framed = b"n,,\x01auth=Bearer ".to_vec();
            framed.extend_from_slice(&bytes);
            framed.extend_from_slice(b"\x01\x01");
            let _ = parse_initial_response(&framed);
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in "[A-Za-z0-9_.=-]{0,300}", exp in any::<i64>()) {
            let v = Validator { allow_unsecured: true, ..validator(&[Ec::new().jwk("k")]) };
            let _ = v.validate(&token, NOW_MS);
            // Well-formed framing around arbitrary claims.
            let claims = format!("{{\"sub\":\"a\",\"exp\":{exp}}}");
            let _ = v.validate(&unsecured(&serde_json::from_str(&claims).unwrap_or(Value::Null)), NOW_MS);
        }

        #[test]
        fn arbitrary_jwks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Jwks::parse(&bytes);
        }

        #[test]
        fn a_successful_validation_names_the_signed_subject(sub in "[a-z]{1,20}", ttl_s in 31i64..100_000) {
            let ec = Ec::new();
            let v = validator(&[ec.jwk("k")]);
            let token = ec.sign("k", &json!({"sub": sub, "exp": NOW_S + ttl_s}));
            prop_assert_eq!(v.validate(&token, NOW_MS).map(|t| t.principal), Ok(sub));
        }
    }
}
