//! SASL OAUTHBEARER (RFC 7628) with JWT bearer tokens (RFC 7519), as
//! Kafka's `OAuthBearerSaslServer` speaks it.
//!
//! The client's initial response is a GS2 header and key/value pairs:
//! `n,[a=authzid],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`
//! ([`parse_initial_response`], [`client_initial_response`]). The token is
//! a compact JWS: either unsecured (`alg: none`, accepted only when the
//! validator allows it, like Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler`)
//! or signed with a key from a static JWKS ([`Jwks`]). [`Validator::validate`]
//! checks the signature, `exp` (required), `nbf`/`iat` (if present), the
//! audience and issuer (if configured) and returns the principal named by
//! the configured claim (`sub` by default).
//!
//! On a refused token the server answers with the RFC 7628 error JSON
//! ([`SERVER_ERROR_RESPONSE`]) instead of failing at once; the client
//! acknowledges with [`CLIENT_ERROR_ACK`] and only then does the exchange
//! fail. This module does no I/O and reads no clock: callers pass `now`.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use crate::MAX_USER_NAME_BYTES;

/// The mechanism's SASL name.
pub const MECHANISM: &str = "OAUTHBEARER";

/// Longest bearer token accepted, in bytes. Real JWTs are a few hundred
/// bytes to a few KiB; the bound keeps base64 and JSON decoding of an
/// unauthenticated client's input small (the whole SASL frame is further
/// bounded by the broker's `MAX_SASL_RECEIVE_BYTES`).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Longest client initial response, in bytes: the token plus room for the
/// GS2 header, an authzid and a few SASL extensions.
pub const MAX_INITIAL_RESPONSE_BYTES: usize = MAX_TOKEN_BYTES + 4 * 1024;

/// Most key/value pairs (SASL extensions plus `auth`) in one initial
/// response: Kafka clients send a handful at most, and each costs a
/// duplicate check.
pub const MAX_KV_PAIRS: usize = 32;

/// Largest JWKS file read, in bytes: a key set is a few KiB; the bound
/// stops a wrong path (a log file, a device) from being slurped whole.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Most keys kept from a JWKS. A token without `kid` is tried against each
/// key of the right type, so the count bounds the work one token costs.
pub const MAX_JWKS_KEYS: usize = 64;

/// Largest JWT time (seconds since the epoch) accepted: year 9999. Keeps
/// the conversion to milliseconds far from overflow.
pub const MAX_NUMERIC_DATE_S: f64 = 253_402_300_799.0;

/// The server's answer to a refused token (RFC 7628 section 3.2.2), as
/// Kafka sends it.
pub const SERVER_ERROR_RESPONSE: &[u8] = br#"{"status":"invalid_token"}"#;

/// The client's answer to [`SERVER_ERROR_RESPONSE`] (a lone `\x01`), after
/// which the server fails the exchange.
pub const CLIENT_ERROR_ACK: &[u8] = b"\x01";

const KVSEP: u8 = 0x01;

/// A client initial response that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitialResponseError {
    /// Longer than [`MAX_INITIAL_RESPONSE_BYTES`].
    #[error("the OAUTHBEARER message is longer than {MAX_INITIAL_RESPONSE_BYTES} bytes")]
    TooLong,
    /// The GS2 header is not `n,[a=authzid],` (or `y,...`).
    #[error("malformed GS2 header: {0}")]
    Gs2Header(&'static str),
    /// The key/value part is not `\x01key=value...\x01\x01`.
    #[error("malformed key/value pairs: {0}")]
    KeyValue(&'static str),
    /// More than [`MAX_KV_PAIRS`] pairs.
    #[error("more than {MAX_KV_PAIRS} key/value pairs")]
    TooManyPairs,
    /// A key appears twice.
    #[error("key {0:?} appears twice")]
    DuplicateKey(String),
    /// No `auth` pair.
    #[error("no auth=Bearer <token> pair")]
    MissingAuth,
    /// `auth` is not `Bearer <token>` with a b64token.
    #[error("auth is not `Bearer <token>`: {0}")]
    BadAuth(&'static str),
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    #[error("the bearer token is longer than {MAX_TOKEN_BYTES} bytes")]
    TokenTooLong,
}

/// A parsed client initial response.
#[derive(Clone, PartialEq, Eq)]
pub struct InitialResponse {
    /// The authorization id from the GS2 header, if any (decoded).
    pub authzid: Option<String>,
    /// The bearer token.
    pub token: String,
    /// SASL extensions (RFC 7628 key/value pairs other than `auth`), in
    /// the order sent.
    pub extensions: Vec<(String, String)>,
}

impl std::fmt::Debug for InitialResponse {
    // The token is a credential: it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialResponse")
            .field("authzid", &self.authzid)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

/// Parses a client initial response strictly.
pub fn parse_initial_response(bytes: &[u8]) -> Result<InitialResponse, InitialResponseError> {
    use InitialResponseError as E;
    if bytes.len() > MAX_INITIAL_RESPONSE_BYTES {
        return Err(E::TooLong);
    }
    // gs2-header = gs2-cb-flag "," [gs2-authzid] ","; channel binding
    // ("p=") is not offered by this mechanism.
    let rest = match bytes {
        [b'n' | b'y', b',', rest @ ..] => rest,
        [b'p', ..] => return Err(E::Gs2Header("channel binding is not supported")),
        _ => return Err(E::Gs2Header("must start with `n,`")),
    };
    let comma = rest
        .iter()
        .position(|b| *b == b',')
        .ok_or(E::Gs2Header("no `,` after the authorization id"))?;
    let (authzid_field, rest) = (&rest[..comma], &rest[comma + 1..]);
    let authzid = if authzid_field.is_empty() {
        None
    } else {
        let name = authzid_field
            .strip_prefix(b"a=")
            .ok_or(E::Gs2Header("the authorization id must be `a=<name>`"))?;
        Some(decode_saslname(name)?)
    };
    // kvsep *kvpair kvsep, each kvpair ending in kvsep.
    let body = rest
        .strip_prefix(&[KVSEP])
        .ok_or(E::KeyValue("must start with \\x01"))?;
    let body = body
        .strip_suffix(&[KVSEP])
        .ok_or(E::KeyValue("must end with \\x01\\x01"))?;
    let mut token = None;
    let mut extensions = Vec::new();
    let mut seen = HashSet::new();
    if !body.is_empty() {
        let body = body
            .strip_suffix(&[KVSEP])
            .ok_or(E::KeyValue("must end with \\x01\\x01"))?;
        for (count, pair) in body.split(|b| *b == KVSEP).enumerate() {
            if count >= MAX_KV_PAIRS {
                return Err(E::TooManyPairs);
            }
            let eq = pair
                .iter()
                .position(|b| *b == b'=')
                .ok_or(E::KeyValue("a pair has no `=`"))?;
            let (key, value) = (&pair[..eq], &pair[eq + 1..]);
            // key = 1*(ALPHA); value = *(VCHAR / SP / HTAB / CR / LF)
            if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
                return Err(E::KeyValue("a key is not 1*ALPHA"));
            }
            if !value
                .iter()
                .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
            {
                return Err(E::KeyValue(
                    "a value has a byte outside VCHAR/SP/HTAB/CR/LF",
                ));
            }
            // Both checked ASCII above, so these never fail.
            let key = String::from_utf8_lossy(key).into_owned();
            let value = String::from_utf8_lossy(value).into_owned();
            if !seen.insert(key.clone()) {
                return Err(E::DuplicateKey(key));
            }
            if key == "auth" {
                token = Some(parse_auth(&value)?);
            } else {
                extensions.push((key, value));
            }
        }
    }
    Ok(InitialResponse {
        authzid,
        token: token.ok_or(E::MissingAuth)?,
        extensions,
    })
}

/// `Bearer <b64token>` (RFC 6750 section 2.1; the scheme is
/// case-insensitive).
fn parse_auth(value: &str) -> Result<String, InitialResponseError> {
    use InitialResponseError as E;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(E::BadAuth("no space after the scheme"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(E::BadAuth("the scheme is not Bearer"));
    }
    let token = token.trim_start_matches(' ');
    if token.len() > MAX_TOKEN_BYTES {
        return Err(E::TokenTooLong);
    }
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(E::BadAuth("the token is not a b64token"));
    }
    Ok(token.to_owned())
}

/// RFC 5801 saslname: UTF-8 without `,` and `=`, which appear as `=2C`
/// and `=3D`.
fn decode_saslname(name: &[u8]) -> Result<String, InitialResponseError> {
    use InitialResponseError as E;
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'=' => {
                match name.get(i + 1..i + 3) {
                    Some(b"2C") => out.push(b','),
                    Some(b"3D") => out.push(b'='),
                    _ => return Err(E::Gs2Header("bad `=` escape in the authorization id")),
                }
                i += 3;
            }
            0 => return Err(E::Gs2Header("NUL in the authorization id")),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if out.len() > MAX_USER_NAME_BYTES {
        return Err(E::Gs2Header("the authorization id is too long"));
    }
    String::from_utf8(out).map_err(|_| E::Gs2Header("the authorization id is not UTF-8"))
}

/// The client initial response carrying `token` (no authzid, no
/// extensions), as Kafka's clients send it.
pub fn client_initial_response(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// A token that is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// Not three base64url parts separated by `.`.
    #[error("not a compact JWS: {0}")]
    Compact(&'static str),
    /// A part is not unpadded base64url.
    #[error("the JWS {0} is not unpadded base64url")]
    Base64(&'static str),
    /// The header or claims are not a JSON object.
    #[error("the JWS {0} is not a JSON object")]
    Json(&'static str),
    /// A header parameter is missing or has the wrong type or value.
    #[error("bad JWS header: {0}")]
    Header(String),
    /// An unsecured token (`alg: none`) while they are not allowed.
    #[error("unsecured tokens (alg none) are not allowed")]
    UnsecuredNotAllowed,
    /// An algorithm this broker does not verify.
    #[error("unsupported JWS algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No JWKS key has the token's `kid` (or fits its algorithm).
    #[error("no key in the JWKS for kid {kid:?} and alg {alg}")]
    UnknownKey {
        /// The token's `kid`.
        kid: Option<String>,
        /// The token's `alg`.
        alg: String,
    },
    /// The signature does not verify.
    #[error("the JWS signature does not verify")]
    BadSignature,
    /// A claim is missing or has the wrong type.
    #[error("bad claim {claim:?}: {reason}")]
    Claim {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `exp` is in the past (beyond the clock skew).
    #[error("the token expired at {exp_s} (now {now_s}, clock skew {skew_s} s)")]
    Expired {
        /// `exp`, in seconds since the epoch.
        exp_s: i64,
        /// The validator's clock.
        now_s: i64,
        /// The allowed clock skew.
        skew_s: u64,
    },
    /// `nbf` is in the future (beyond the clock skew).
    #[error("the token is not valid before {nbf_s} (now {now_s})")]
    NotYetValid {
        /// `nbf`, in seconds since the epoch.
        nbf_s: i64,
        /// The validator's clock.
        now_s: i64,
    },
    /// `iat` is in the future (beyond the clock skew).
    #[error("the token was issued in the future ({iat_s}, now {now_s})")]
    IssuedInFuture {
        /// `iat`, in seconds since the epoch.
        iat_s: i64,
        /// The validator's clock.
        now_s: i64,
    },
    /// `aud` names none of the expected audiences.
    #[error("the token's audience is not one of {expected:?}")]
    Audience {
        /// The configured audiences.
        expected: Vec<String>,
    },
    /// `iss` is not the expected issuer.
    #[error("the token's issuer is not {expected:?}")]
    Issuer {
        /// The configured issuer.
        expected: String,
    },
}

/// A JWKS that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Larger than [`MAX_JWKS_BYTES`].
    #[error("the JWKS is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not JSON of the shape `{"keys": [...]}`.
    #[error("not a JWKS (`{{\"keys\": [...]}}`): {0}")]
    Shape(String),
    /// A key of a supported type with a bad field.
    #[error("key {index}: {reason}")]
    Key {
        /// The key's position in `keys`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than [`MAX_JWKS_KEYS`] usable keys.
    #[error("more than {MAX_JWKS_KEYS} usable keys")]
    TooManyKeys,
    /// No key this broker can verify with.
    #[error("no RSA or EC (P-256, P-384) signing key")]
    NoUsableKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// Modulus (big-endian, no leading zeros) and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed point `0x04 || x || y` on P-256.
    P256(Vec<u8>),
    /// An uncompressed point on P-384.
    P384(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Jwk {
    kid: Option<String>,
    /// The JWK's `alg`, if it pins one.
    alg: Option<String>,
    material: KeyMaterial,
}

/// Public keys from a static JSON Web Key Set (RFC 7517).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document. Keys of other types (`oct`, `OKP`), other
    /// curves, or with `use` other than `sig` are skipped; a supported key
    /// with a malformed field is an error.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, JwksError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| JwksError::Shape(e.to_string()))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::Shape("no `keys` array".to_owned()))?;
        let mut out = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let bad = |reason| JwksError::Key { index, reason };
            let key = key.as_object().ok_or(bad("not a JSON object"))?;
            if key.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
                continue;
            }
            let field = |name: &str| -> Result<Vec<u8>, JwksError> {
                let text = key
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or(bad("a required member is missing or not a string"))?;
                BASE64URL
                    .decode(text)
                    .map_err(|_| bad("a member is not unpadded base64url"))
            };
            let material = match key.get("kty").and_then(Value::as_str) {
                Some("RSA") => {
                    let n = strip_leading_zeros(field("n")?);
                    let e = strip_leading_zeros(field("e")?);
                    if n.is_empty() || e.is_empty() {
                        return Err(bad("RSA n or e is zero"));
                    }
                    KeyMaterial::Rsa { n, e }
                }
                Some("EC") => {
                    let (len, p384) = match key.get("crv").and_then(Value::as_str) {
                        Some("P-256") => (32, false),
                        Some("P-384") => (48, true),
                        _ => continue,
                    };
                    let (x, y) = (field("x")?, field("y")?);
                    if x.len() != len || y.len() != len {
                        return Err(bad("EC x or y has the wrong length for its curve"));
                    }
                    let mut point = Vec::with_capacity(1 + 2 * len);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    if p384 {
                        KeyMaterial::P384(point)
                    } else {
                        KeyMaterial::P256(point)
                    }
                }
                Some(_) => continue,
                None => return Err(bad("no `kty`")),
            };
            if out.len() >= MAX_JWKS_KEYS {
                return Err(JwksError::TooManyKeys);
            }
            let text = |name: &str| key.get(name).and_then(Value::as_str).map(str::to_owned);
            out.push(Jwk {
                kid: text("kid"),
                alg: text("alg"),
                material,
            });
        }
        if out.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Jwks { keys: out })
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// A signature algorithm this module verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
}

impl Alg {
    fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            _ => return None,
        })
    }

    /// Whether `signature` over `message` verifies with `key`; false for a
    /// key of another type.
    fn verify(self, key: &KeyMaterial, message: &[u8], sig: &[u8]) -> bool {
        match (self, key) {
            (Alg::Es256, KeyMaterial::P256(point)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (Alg::Es384, KeyMaterial::P384(point)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (_, KeyMaterial::Rsa { n, e }) => {
                let params: &signature::RsaParameters = match self {
                    Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    Alg::Es256 | Alg::Es384 => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }

    fn fits(self, key: &KeyMaterial) -> bool {
        matches!(
            (self, key),
            (Alg::Es256, KeyMaterial::P256(_))
                | (Alg::Es384, KeyMaterial::P384(_))
                | (
                    Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
                    KeyMaterial::Rsa { .. }
                )
        )
    }
}

/// How tokens are validated (the broker's `[sasl.oauthbearer]` section).
#[derive(Debug, Clone)]
pub struct Validator {
    /// Keys that signed tokens must verify against; empty accepts no
    /// signed token.
    pub jwks: Jwks,
    /// Accept unsecured tokens (`alg: none`): tests and development only.
    pub allow_unsecured: bool,
    /// If not empty, `aud` must name one of these.
    pub expected_audience: Vec<String>,
    /// If set, `iss` must equal it.
    pub expected_issuer: Option<String>,
    /// The claim holding the principal's name (Kafka's
    /// `sasl.oauthbearer.sub.claim.name`, default `sub`).
    pub sub_claim_name: String,
    /// Allowed difference between the issuer's clock and ours, in seconds
    /// (Kafka's `sasl.oauthbearer.clock.skew.seconds`, default 30).
    pub clock_skew_s: u64,
}

impl Default for Validator {
    fn default() -> Self {
        Validator {
            jwks: Jwks::default(),
            allow_unsecured: false,
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: "sub".to_owned(),
            clock_skew_s: 30,
        }
    }
}

/// A token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    /// The principal's name (the configured claim).
    pub principal: String,
    /// `exp`, in milliseconds since the epoch (bounds the session,
    /// KIP-368).
    pub expires_at_ms: i64,
}

impl Validator {
    /// Validates `token` at `now_ms` (milliseconds since the epoch).
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<ValidToken, TokenError> {
        use TokenError as E;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(E::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(E::Compact("it needs exactly three `.`-separated parts"));
        };
        let header = decode_object(header_b64, "header")?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| E::Header("`alg` is missing or not a string".to_owned()))?;
        if header.contains_key("crit") {
            // RFC 7515 4.1.11: extensions we do not understand must fail.
            return Err(E::Header("`crit` extensions are not supported".to_owned()));
        }
        if alg == "none" {
            if !self.allow_unsecured {
                return Err(E::UnsecuredNotAllowed);
            }
            if !sig_b64.is_empty() {
                return Err(E::Compact("an unsecured JWS has an empty signature"));
            }
        } else {
            let parsed =
                Alg::from_name(alg).ok_or_else(|| E::UnsupportedAlgorithm(alg.to_owned()))?;
            let sig = BASE64URL
                .decode(sig_b64)
                .map_err(|_| E::Base64("signature"))?;
            let kid = match header.get("kid") {
                None => None,
                Some(Value::String(k)) => Some(k.as_str()),
                Some(_) => return Err(E::Header("`kid` is not a string".to_owned())),
            };
            let signing_input = &token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
            let mut candidates = self
                .jwks
                .keys
                .iter()
                .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
                .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg))
                .filter(|k| parsed.fits(&k.material))
                .peekable();
            if candidates.peek().is_none() {
                return Err(E::UnknownKey {
                    kid: kid.map(str::to_owned),
                    alg: alg.to_owned(),
                });
            }
            if !candidates.any(|k| parsed.verify(&k.material, signing_input, &sig)) {
                return Err(E::BadSignature);
            }
        }
        let claims = decode_object(claims_b64, "claims")?;
        self.check_claims(&claims, now_ms)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<ValidToken, TokenError> {
        use TokenError as E;
        let skew_ms = i64::try_from(self.clock_skew_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let now_s = now_ms.div_euclid(1000);
        let exp_ms = numeric_date_ms(claims, "exp")?.ok_or_else(|| E::Claim {
            claim: "exp".to_owned(),
            reason: "required",
        })?;
        if exp_ms.saturating_add(skew_ms) <= now_ms {
            return Err(E::Expired {
                exp_s: exp_ms.div_euclid(1000),
                now_s,
                skew_s: self.clock_skew_s,
            });
        }
        if let Some(nbf_ms) = numeric_date_ms(claims, "nbf")?
            && nbf_ms > now_ms.saturating_add(skew_ms)
        {
            return Err(E::NotYetValid {
                nbf_s: nbf_ms.div_euclid(1000),
                now_s,
            });
        }
        if let Some(iat_ms) = numeric_date_ms(claims, "iat")?
            && iat_ms > now_ms.saturating_add(skew_ms)
        {
            return Err(E::IssuedInFuture {
                iat_s: iat_ms.div_euclid(1000),
                now_s,
            });
        }
        if !self.expected_audience.is_empty() {
            let named = match claims.get("aud") {
                Some(Value::String(a)) => self.expected_audience.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.expected_audience.iter().any(|e| e == a)),
                _ => false,
            };
            if !named {
                return Err(E::Audience {
                    expected: self.expected_audience.clone(),
                });
            }
        }
        if let Some(issuer) = &self.expected_issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(E::Issuer {
                expected: issuer.clone(),
            });
        }
        let bad = |reason| E::Claim {
            claim: self.sub_claim_name.clone(),
            reason,
        };
        let principal = claims
            .get(&self.sub_claim_name)
            .ok_or(bad("required"))?
            .as_str()
            .ok_or(bad("not a string"))?;
        if principal.trim().is_empty() {
            return Err(bad("empty"));
        }
        if principal.len() > MAX_USER_NAME_BYTES {
            return Err(bad("longer than the longest user name"));
        }
        Ok(ValidToken {
            principal: principal.to_owned(),
            expires_at_ms: exp_ms,
        })
    }
}

fn decode_object(part: &str, what: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = BASE64URL
        .decode(part)
        .map_err(|_| TokenError::Base64(what))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Json(what)),
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional) in
/// milliseconds; `None` if absent.
fn numeric_date_ms(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let bad = |reason| TokenError::Claim {
        claim: name.to_owned(),
        reason,
    };
    let seconds = value.as_f64().ok_or(bad("not a number"))?;
    if !seconds.is_finite() || !(0.0..=MAX_NUMERIC_DATE_S).contains(&seconds) {
        return Err(bad("out of range"));
    }
    // In range by the check above, so the cast is exact enough and cannot
    // overflow.
    Ok(Some((seconds * 1000.0) as i64))
}

#[cfg(test)]
mod tests;
