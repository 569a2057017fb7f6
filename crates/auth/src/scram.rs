//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): credential
//! derivation, the server's state machine and the client's.
//!
//! A stored credential is Kafka's: salt, iteration count, `StoredKey` and
//! `ServerKey`; never the password. The server refuses channel binding
//! (`p=`), the reserved `m=` attribute and Kafka's delegation-token
//! extension (`tokenauth=true`), as no such tokens exist here.
//!
//! An unknown user is not told apart from a wrong password: the server
//! answers its first message with a salt and iteration count derived from
//! the name and a per-process secret ([`FakeCredentials`]), and the
//! exchange fails at the client's proof, as for a wrong password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::MAX_USER_NAME_BYTES;

/// Kafka's lowest accepted iteration count (its `ScramMechanism`
/// `minIterations`): fewer make the salted password cheap to brute-force.
pub const MIN_ITERATIONS: i32 = 4096;
/// Kafka's highest accepted iteration count: each login costs the broker
/// this many HMACs, so a higher count would let one credential make every
/// authentication attempt expensive.
pub const MAX_ITERATIONS: i32 = 16384;
/// Longest SCRAM message accepted, in bytes. A client-first message holds
/// a user name (≤ 255 bytes, escaped ≤ 765), a nonce and a few attributes;
/// 4 KiB leaves room for extensions without letting a client make the
/// broker scan or keep large inputs.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Random bytes in the server's part of the nonce (base64-encoded on the
/// wire). 18 bytes give 144 bits: no nonce is ever repeated.
const SERVER_NONCE_BYTES: usize = 18;
/// Bytes of salt generated for a new credential (Kafka's client
/// generates 32 random bytes... of which it uses a SecureRandom of the
/// hash's length; 32 bytes is far above what any attack could exploit).
pub const SALT_BYTES: usize = 32;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Mechanism {
    /// Every SCRAM mechanism, strongest first.
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha512, Mechanism::Sha256];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (exact, as SASL names are).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's wire number for the mechanism (`ScramMechanism` in the
    /// Alter/DescribeUserScramCredentials APIs): 1 is SHA-256, 2 SHA-512.
    pub fn kafka_type(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    /// The mechanism for Kafka's wire number; `None` for 0 (UNKNOWN) and
    /// anything else.
    pub fn from_kafka_type(t: i8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.kafka_type() == t)
    }

    /// Bytes of the hash output (and of the keys and proofs).
    pub fn hash_len(self) -> usize {
        match self {
            Mechanism::Sha256 => 32,
            Mechanism::Sha512 => 64,
        }
    }

    fn hmac(self, key: &[u8], data: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[&[u8]]) -> Vec<u8> {
            // An HMAC takes a key of any length; `new_from_slice` cannot fail.
            let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
                return Vec::new();
            };
            for d in data {
                mac.update(d);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Mechanism::Sha256 => run::<Hmac<Sha256>>(key, data),
            Mechanism::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's `Hi(password, salt, i)`: PBKDF2 with this hash's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash_len()];
        match self {
            Mechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            }
            Mechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
            }
        }
        out
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored SCRAM credential (Kafka's `ScramCredential`): enough to verify
/// a client's proof and sign the server's answer, not enough to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl std::fmt::Debug for Credential {
    // Keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The credential for a salted password (what
    /// AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Credential {
        let client_key = mechanism.hmac(salted_password, &[b"Client Key"]);
        Credential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, &[b"Server Key"]),
            iterations,
        }
    }

    /// The credential for `password` with `salt` and `iterations`.
    pub fn from_password(
        mechanism: Mechanism,
        password: &[u8],
        salt: &[u8],
        iterations: i32,
    ) -> Credential {
        let salted = mechanism.salted_password(password, salt, iterations.max(1) as u32);
        Credential::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// True if `password` is the one this credential was made from; the
    /// key comparison is constant-time. Used by PLAIN.
    pub fn verify_password(&self, mechanism: Mechanism, password: &[u8]) -> bool {
        let candidate = Credential::from_password(mechanism, password, &self.salt, self.iterations);
        bool::from(candidate.stored_key.ct_eq(&self.stored_key))
    }
}

/// A fresh random salt.
pub fn random_salt() -> Result<Vec<u8>, ScramError> {
    let mut salt = vec![0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|_| ScramError::NoRandomness)?;
    Ok(salt)
}

/// Stand-in credentials for users that do not exist, so that the server's
/// first answer looks the same for every name: a salt derived from the
/// name with a per-process secret (the same name always gets the same
/// salt, as a real user would), the common iteration count, and keys no
/// password matches.
#[derive(Clone)]
pub struct FakeCredentials {
    secret: [u8; 32],
}

impl std::fmt::Debug for FakeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeCredentials")
    }
}

impl FakeCredentials {
    /// Stand-ins keyed by a fresh random secret.
    pub fn random() -> Result<FakeCredentials, ScramError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| ScramError::NoRandomness)?;
        Ok(FakeCredentials { secret })
    }

    /// Stand-ins keyed by `secret` (tests).
    pub fn with_secret(secret: [u8; 32]) -> FakeCredentials {
        FakeCredentials { secret }
    }

    /// The stand-in credential for `user` under `mechanism`.
    pub fn credential(&self, mechanism: Mechanism, user: &str) -> Credential {
        let derive = |label: &[u8]| {
            let mut out = mechanism.hmac(
                &self.secret,
                &[label, mechanism.name().as_bytes(), b"\0", user.as_bytes()],
            );
            out.truncate(mechanism.hash_len());
            out
        };
        let mut salt = derive(b"salt");
        salt.truncate(SALT_BYTES);
        Credential {
            salt,
            stored_key: derive(b"stored"),
            server_key: derive(b"server"),
            iterations: MIN_ITERATIONS,
        }
    }
}

/// A SCRAM exchange that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message does not follow RFC 5802's grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// A message is longer than [`MAX_MESSAGE_BYTES`].
    #[error("SCRAM message of {0} bytes is above the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLong(usize),
    /// The client asked for something this server does not offer
    /// (channel binding, delegation tokens, `m=`).
    #[error("unsupported SCRAM feature: {0}")]
    Unsupported(&'static str),
    /// The nonce of the final message is not the one the server issued.
    #[error("the nonce does not match the server's")]
    NonceMismatch,
    /// The proof does not match the stored credential: wrong password or
    /// unknown user (deliberately not told apart).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The server's signature does not verify (client side): the server
    /// does not know the password.
    #[error("the server's signature does not verify")]
    BadServerSignature,
    /// The server sent an error (`e=`).
    #[error("the server refused: {0}")]
    ServerError(String),
    /// A message arrived in a state that does not expect it.
    #[error("unexpected SCRAM message in this state")]
    IllegalState,
    /// The system's random source failed.
    #[error("no randomness available for a nonce or salt")]
    NoRandomness,
    /// The server asked for an iteration count outside Kafka's bounds
    /// (client side): a hostile server could make the client spin.
    #[error("iteration count {0} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(i64),
}

/// Splits `msg` into `key=value` attributes, checking its size and UTF-8.
fn attributes(msg: &[u8]) -> Result<Vec<(u8, &str)>, ScramError> {
    if msg.len() > MAX_MESSAGE_BYTES {
        return Err(ScramError::TooLong(msg.len()));
    }
    let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    text.split(',')
        .map(|part| {
            let bytes = part.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                return Err(ScramError::Malformed("an attribute is not `a=value`"));
            }
            Ok((bytes[0], &part[2..]))
        })
        .collect()
}

/// Decodes RFC 5802's `saslname` (`=2C` is `,`, `=3D` is `=`).
fn decode_saslname(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    if out.len() > MAX_USER_NAME_BYTES {
        return Err(ScramError::Malformed("user name above 255 bytes"));
    }
    Ok(out)
}

/// Encodes a user name as RFC 5802's `saslname`.
fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A nonce is printable ASCII without `,` (RFC 5802 `printable`).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn random_nonce() -> Result<String, ScramError> {
    let mut bytes = [0u8; SERVER_NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| ScramError::NoRandomness)?;
    Ok(BASE64.encode(bytes))
}

/// What the server's first message answered from.
#[derive(Debug)]
struct FirstExchange {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    user: String,
    credential: Credential,
}

#[derive(Debug)]
enum ServerState {
    Initial,
    SentFirst(Box<FirstExchange>),
    Done,
}

/// The server side of one SCRAM exchange: client-first in, server-first
/// out; client-final in, server-final out and the authenticated user name.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: Mechanism,
    state: ServerState,
}

/// The parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The gs2 header as sent (`n,,` or `n,a=name,`), echoed in `c=`.
    pub gs2_header: String,
    /// The user name, unescaped.
    pub user: String,
    /// The client's nonce.
    pub nonce: String,
    /// The message after the gs2 header.
    pub bare: String,
}

/// Parses a client-first message.
pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    if msg.len() > MAX_MESSAGE_BYTES {
        return Err(ScramError::TooLong(msg.len()));
    }
    let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    // gs2-header: cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::Unsupported("channel binding")),
        _ => return Err(ScramError::Malformed("bad channel-binding flag")),
    }
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=")
                .ok_or(ScramError::Malformed("bad authzid"))?,
        )?),
    };
    // The user name and nonce are single-letter attributes; Kafka's
    // extensions after them (`tokenauth=true`) have longer keys.
    let mut parts = bare.splitn(3, ',');
    let head: String = [parts.next(), parts.next()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(",");
    let extensions = parts.next();
    let attrs = attributes(head.as_bytes())?;
    let mut it = attrs.iter();
    let (mut key, mut value) = *it.next().ok_or(ScramError::Malformed("empty message"))?;
    if key == b'm' {
        return Err(ScramError::Unsupported("mandatory extension `m`"));
    }
    if key != b'n' {
        return Err(ScramError::Malformed(
            "the user name (`n=`) must come first",
        ));
    }
    let user = decode_saslname(value)?;
    (key, value) = *it.next().ok_or(ScramError::Malformed("no nonce"))?;
    if key != b'r' || !valid_nonce(value) {
        return Err(ScramError::Malformed("bad or missing nonce (`r=`)"));
    }
    let nonce = value.to_owned();
    // Kafka's only extension is `tokenauth=true` (delegation tokens),
    // which this broker does not have; other extensions are ignored, as
    // RFC 5802 asks of unknown optional ones, but must be `key=value`.
    for ext in extensions.into_iter().flat_map(|e| e.split(',')) {
        let Some((key, value)) = ext.split_once('=') else {
            return Err(ScramError::Malformed("an extension is not `key=value`"));
        };
        if key.is_empty() {
            return Err(ScramError::Malformed("an extension is not `key=value`"));
        }
        if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
            return Err(ScramError::Unsupported("delegation tokens (`tokenauth`)"));
        }
    }
    if let Some(authzid) = authzid
        && authzid != user
    {
        // Kafka refuses an authorization id that differs from the user.
        return Err(ScramError::Unsupported(
            "an authorization id other than the user name",
        ));
    }
    Ok(ClientFirst {
        gs2_header: format!("{flag},{},", text.split(',').nth(1).unwrap_or_default()),
        user,
        nonce,
        bare: bare.to_owned(),
    })
}

impl ScramServer {
    /// A new exchange for `mechanism`.
    pub fn new(mechanism: Mechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: ServerState::Initial,
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Handles the client-first message; `lookup` gives the user's stored
    /// credential for this mechanism, and an unknown user gets `fake`'s
    /// stand-in. Returns the server-first message.
    pub fn client_first(
        &mut self,
        msg: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credential>,
        fake: &FakeCredentials,
    ) -> Result<Vec<u8>, ScramError> {
        self.client_first_with_nonce(msg, lookup, fake, &random_nonce()?)
    }

    /// [`ScramServer::client_first`] with the server's nonce part given
    /// (tests check against fixed vectors).
    pub fn client_first_with_nonce(
        &mut self,
        msg: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credential>,
        fake: &FakeCredentials,
        server_nonce: &str,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ServerState::Initial) {
            self.state = ServerState::Done;
            return Err(ScramError::IllegalState);
        }
        // Any failure ends the exchange.
        self.state = ServerState::Done;
        let first = parse_client_first(msg)?;
        if !valid_nonce(server_nonce) {
            return Err(ScramError::Malformed("bad server nonce"));
        }
        let credential =
            lookup(&first.user).unwrap_or_else(|| fake.credential(self.mechanism, &first.user));
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        self.state = ServerState::SentFirst(Box::new(FirstExchange {
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
            nonce,
            user: first.user,
            credential,
        }));
        Ok(server_first.into_bytes())
    }

    /// Handles the client-final message: verifies the proof and returns
    /// the authenticated user name and the server-final message.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let ServerState::SentFirst(first) = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(ScramError::IllegalState);
        };
        let attrs = attributes(msg)?;
        let text = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (Some(&(b'c', binding)), Some(&(b'r', nonce))) = (attrs.first(), attrs.get(1)) else {
            return Err(ScramError::Malformed(
                "the final message must start with `c=` and `r=`",
            ));
        };
        let Some(&(b'p', proof)) = attrs.last() else {
            return Err(ScramError::Malformed("the proof (`p=`) must come last"));
        };
        if attrs.len() < 3 {
            return Err(ScramError::Malformed("no proof"));
        }
        let binding = BASE64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("`c=` is not base64"))?;
        if binding != first.gs2_header.as_bytes() {
            return Err(ScramError::Malformed(
                "`c=` does not repeat the gs2 header of the first message",
            ));
        }
        // Kafka accepts a final nonce that ends with the combined one
        // (its ScramSaslServer checks `endsWith`), and librdkafka before
        // 2.2 sends the client's nonce twice (`r=<client><client><server>`);
        // the proof still covers the message as sent, so this accepts
        // nothing a client without the password could produce.
        if !nonce.ends_with(&first.nonce) || !valid_nonce(nonce) {
            return Err(ScramError::NonceMismatch);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("`p=` is not base64"))?;
        if proof.len() != self.mechanism.hash_len() {
            return Err(ScramError::Malformed("the proof has the wrong length"));
        }
        // The message without ",p=...": the proof is the last attribute.
        let without_proof = &text[..text.rfind(",p=").unwrap_or(text.len())];
        let auth_message = format!(
            "{},{},{without_proof}",
            first.client_first_bare, first.server_first
        );
        let credential = &first.credential;
        let client_signature = self
            .mechanism
            .hmac(&credential.stored_key, &[auth_message.as_bytes()]);
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let candidate = self.mechanism.hash(&client_key);
        if !bool::from(candidate.ct_eq(&credential.stored_key)) {
            return Err(ScramError::InvalidCredentials);
        }
        let server_signature = self
            .mechanism
            .hmac(&credential.server_key, &[auth_message.as_bytes()]);
        let server_final = format!("v={}", BASE64.encode(server_signature));
        Ok((first.user, server_final.into_bytes()))
    }
}

#[derive(Debug)]
enum ClientState {
    Initial,
    SentFirst { bare: String, nonce: String },
    SentFinal { server_signature: Vec<u8> },
    Done,
}

/// The client side of one SCRAM exchange.
pub struct ScramClient {
    mechanism: Mechanism,
    user: String,
    password: Vec<u8>,
    state: ClientState,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A new exchange logging in as `user` with `password`.
    pub fn new(mechanism: Mechanism, user: &str, password: &[u8]) -> ScramClient {
        ScramClient {
            mechanism,
            user: user.to_owned(),
            password: password.to_vec(),
            state: ClientState::Initial,
        }
    }

    /// The client-first message.
    pub fn client_first(&mut self) -> Result<Vec<u8>, ScramError> {
        self.client_first_with_nonce(&random_nonce()?)
    }

    /// [`ScramClient::client_first`] with a given nonce (tests).
    pub fn client_first_with_nonce(&mut self, nonce: &str) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ClientState::Initial) {
            return Err(ScramError::IllegalState);
        }
        let bare = format!("n={},r={nonce}", encode_saslname(&self.user));
        let message = format!("n,,{bare}");
        self.state = ClientState::SentFirst {
            bare,
            nonce: nonce.to_owned(),
        };
        Ok(message.into_bytes())
    }

    /// Handles the server-first message; returns the client-final one.
    pub fn server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let ClientState::SentFirst { bare, nonce } =
            std::mem::replace(&mut self.state, ClientState::Done)
        else {
            return Err(ScramError::IllegalState);
        };
        let attrs = attributes(msg)?;
        if let Some(&(b'e', error)) = attrs.first() {
            return Err(ScramError::ServerError(error.to_owned()));
        }
        let (Some(&(b'r', combined)), Some(&(b's', salt)), Some(&(b'i', iterations))) =
            (attrs.first(), attrs.get(1), attrs.get(2))
        else {
            return Err(ScramError::Malformed("server-first must be `r=,s=,i=`"));
        };
        if !combined.starts_with(&nonce) || combined.len() == nonce.len() || !valid_nonce(combined)
        {
            return Err(ScramError::NonceMismatch);
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| ScramError::Malformed("`s=` is not base64"))?;
        let iterations: i64 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("`i=` is not a number"))?;
        if !(i64::from(MIN_ITERATIONS)..=i64::from(MAX_ITERATIONS)).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let server_first =
            std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let salted = self
            .mechanism
            .salted_password(&self.password, &salt, iterations as u32);
        let without_proof = format!("c={},r={combined}", BASE64.encode(b"n,,"));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_key = self.mechanism.hmac(&salted, &[b"Client Key"]);
        let stored_key = self.mechanism.hash(&client_key);
        let client_signature = self.mechanism.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.mechanism.hmac(&salted, &[b"Server Key"]);
        let server_signature = self.mechanism.hmac(&server_key, &[auth_message.as_bytes()]);
        self.state = ClientState::SentFinal { server_signature };
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the
    /// credential.
    pub fn server_final(&mut self, msg: &[u8]) -> Result<(), ScramError> {
        let ClientState::SentFinal { server_signature } =
            std::mem::replace(&mut self.state, ClientState::Done)
        else {
            return Err(ScramError::IllegalState);
        };
        let attrs = attributes(msg)?;
        match attrs.first() {
            Some(&(b'e', error)) => Err(ScramError::ServerError(error.to_owned())),
            Some(&(b'v', signature)) => {
                let signature = BASE64
                    .decode(signature)
                    .map_err(|_| ScramError::Malformed("`v=` is not base64"))?;
                if bool::from(signature.ct_eq(&server_signature)) {
                    Ok(())
                } else {
                    Err(ScramError::BadServerSignature)
                }
            }
            _ => Err(ScramError::Malformed("server-final must be `v=` or `e=`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> FakeCredentials {
        FakeCredentials::with_secret([7; 32])
    }

    /// RFC 7677 section 3: user "user", password "pencil".
    const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const RFC7677_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677_credential() -> Credential {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        Credential::from_password(Mechanism::Sha256, b"pencil", &salt, 4096)
    }

    #[test]
    fn the_server_passes_the_rfc_7677_vector() {
        let mut server = ScramServer::new(Mechanism::Sha256);
        let first = server
            .client_first_with_nonce(
                RFC7677_CLIENT_FIRST.as_bytes(),
                |u| (u == "user").then(rfc7677_credential),
                &fake(),
                RFC7677_SERVER_NONCE,
            )
            .expect("first");
        assert_eq!(first, RFC7677_SERVER_FIRST.as_bytes());
        let (user, last) = server
            .client_final(RFC7677_CLIENT_FINAL.as_bytes())
            .expect("final");
        assert_eq!(user, "user");
        assert_eq!(last, RFC7677_SERVER_FINAL.as_bytes());
    }

    #[test]
    fn the_client_passes_the_rfc_7677_vector() {
        let mut client = ScramClient::new(Mechanism::Sha256, "user", b"pencil");
        let first = client
            .client_first_with_nonce("rOprNGfwEbeRWgbNEkqO")
            .expect("first");
        assert_eq!(first, RFC7677_CLIENT_FIRST.as_bytes());
        let last = client
            .server_first(RFC7677_SERVER_FIRST.as_bytes())
            .expect("final");
        assert_eq!(last, RFC7677_CLIENT_FINAL.as_bytes());
        client
            .server_final(RFC7677_SERVER_FINAL.as_bytes())
            .expect("server signature verifies");
    }

    /// SCRAM-SHA-512 has no RFC vector. These values were computed with
    /// Python's hashlib/hmac (an independent implementation), by this
    /// script, for user "user", password "pencil", the RFC 7677 salt and
    /// nonces, 4096 iterations:
    ///
    /// ```text
    /// import hashlib, hmac, base64
    /// salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    /// sp = hashlib.pbkdf2_hmac("sha512", b"pencil", salt, 4096)
    /// ck = hmac.new(sp, b"Client Key", "sha512").digest()
    /// sk = hashlib.sha512(ck).digest()
    /// svk = hmac.new(sp, b"Server Key", "sha512").digest()
    /// cfb = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    /// sf = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    /// cfw = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    /// am = (cfb + "," + sf + "," + cfw).encode()
    /// cs = hmac.new(sk, am, "sha512").digest()
    /// proof = bytes(a ^ b for a, b in zip(ck, cs))
    /// ss = hmac.new(svk, am, "sha512").digest()
    /// print(base64.b64encode(proof), base64.b64encode(ss))
    /// ```
    const SHA512_PROOF: &str =
        "gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
    const SHA512_SERVER_SIGNATURE: &str =
        "ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";

    #[test]
    fn sha512_matches_an_independently_computed_vector() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let credential = Credential::from_password(Mechanism::Sha512, b"pencil", &salt, 4096);
        let mut server = ScramServer::new(Mechanism::Sha512);
        server
            .client_first_with_nonce(
                RFC7677_CLIENT_FIRST.as_bytes(),
                |_| Some(credential.clone()),
                &fake(),
                RFC7677_SERVER_NONCE,
            )
            .expect("first");
        let client_final =
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={SHA512_PROOF}");
        let (_, last) = server
            .client_final(client_final.as_bytes())
            .expect("the vector's proof verifies");
        assert_eq!(last, format!("v={SHA512_SERVER_SIGNATURE}").as_bytes());
        let mut client = ScramClient::new(Mechanism::Sha512, "user", b"pencil");
        client
            .client_first_with_nonce("rOprNGfwEbeRWgbNEkqO")
            .expect("first");
        let ours = client
            .server_first(RFC7677_SERVER_FIRST.as_bytes())
            .expect("final");
        assert_eq!(ours, client_final.as_bytes());
    }

    fn exchange(
        mechanism: Mechanism,
        user: &str,
        password: &[u8],
        stored: Option<Credential>,
    ) -> Result<String, ScramError> {
        let mut client = ScramClient::new(mechanism, user, password);
        let mut server = ScramServer::new(mechanism);
        let first = client.client_first()?;
        let server_first = server.client_first(&first, |_| stored, &fake())?;
        let client_final = client.server_first(&server_first)?;
        let (name, server_final) = server.client_final(&client_final)?;
        client.server_final(&server_final)?;
        Ok(name)
    }

    #[test]
    fn a_client_and_server_agree_with_every_mechanism_and_odd_names() {
        for mechanism in Mechanism::ALL {
            for user in ["alice", "a,b=c", "ünï"] {
                let salt = random_salt().expect("salt");
                let credential = Credential::from_password(mechanism, b"secret", &salt, 4096);
                assert_eq!(
                    exchange(mechanism, user, b"secret", Some(credential)).as_deref(),
                    Ok(user)
                );
            }
        }
    }

    #[test]
    fn a_wrong_password_and_an_unknown_user_fail_the_same_way_at_the_proof() {
        let salt = random_salt().expect("salt");
        let credential = Credential::from_password(Mechanism::Sha512, b"secret", &salt, 4096);
        assert_eq!(
            exchange(Mechanism::Sha512, "alice", b"wrong", Some(credential)),
            Err(ScramError::InvalidCredentials)
        );
        assert_eq!(
            exchange(Mechanism::Sha512, "nobody", b"secret", None),
            Err(ScramError::InvalidCredentials)
        );
    }

    #[test]
    fn an_unknown_user_gets_a_stable_salt_and_the_common_iteration_count() {
        let answer = |user: &str| {
            let mut server = ScramServer::new(Mechanism::Sha256);
            let msg = format!("n,,n={user},r=abc");
            let first = server
                .client_first_with_nonce(msg.as_bytes(), |_| None, &fake(), "xyz")
                .expect("first");
            String::from_utf8(first).expect("utf8")
        };
        assert_eq!(answer("ghost"), answer("ghost"), "same name, same salt");
        assert_ne!(answer("ghost"), answer("other"));
        assert!(answer("ghost").ends_with(",i=4096"));
    }

    #[test]
    fn malformed_client_first_messages_are_refused() {
        let cases: &[(&[u8], ScramError)] = &[
            (b"", ScramError::Malformed("no gs2 header")),
            (
                b"n,,",
                ScramError::Malformed("an attribute is not `a=value`"),
            ),
            (
                b"x,,n=u,r=a",
                ScramError::Malformed("bad channel-binding flag"),
            ),
            (
                b"p=tls-unique,,n=u,r=a",
                ScramError::Unsupported("channel binding"),
            ),
            (b"n,b=u,n=u,r=a", ScramError::Malformed("bad authzid")),
            (
                b"n,a=other,n=u,r=a",
                ScramError::Unsupported("an authorization id other than the user name"),
            ),
            (
                b"n,,m=x,n=u,r=a",
                ScramError::Unsupported("mandatory extension `m`"),
            ),
            (
                b"n,,r=a,n=u",
                ScramError::Malformed("the user name (`n=`) must come first"),
            ),
            (b"n,,n=,r=a", ScramError::Malformed("empty user name")),
            (
                b"n,,n=a=b,r=a",
                ScramError::Malformed("bad escape in the user name"),
            ),
            (
                b"n,,n=a=2",
                ScramError::Malformed("bad escape in the user name"),
            ),
            (b"n,,n=u", ScramError::Malformed("no nonce")),
            (
                b"n,,n=u,s=a",
                ScramError::Malformed("bad or missing nonce (`r=`)"),
            ),
            (
                b"n,,n=u,r=",
                ScramError::Malformed("bad or missing nonce (`r=`)"),
            ),
            (
                b"n,,n=u,r=a\x7f",
                ScramError::Malformed("bad or missing nonce (`r=`)"),
            ),
            (b"n,,n=u,r=\xff", ScramError::Malformed("not UTF-8")),
            (
                b"n,,n=u,r=a,tokenauth=true",
                ScramError::Unsupported("delegation tokens (`tokenauth`)"),
            ),
            (
                b"n,,n=u,r=a,,",
                ScramError::Malformed("an extension is not `key=value`"),
            ),
        ];
        for (msg, expected) in cases {
            let mut server = ScramServer::new(Mechanism::Sha256);
            let got = server.client_first(msg, |_| None, &fake());
            assert_eq!(
                got.as_ref().err(),
                Some(expected),
                "{:?}",
                String::from_utf8_lossy(msg)
            );
            // A failed exchange is over.
            assert_eq!(
                server.client_final(b"c=biws,r=a,p=AA=="),
                Err(ScramError::IllegalState)
            );
        }
        let long = format!("n,,n=u,r={}", "a".repeat(MAX_MESSAGE_BYTES));
        let mut server = ScramServer::new(Mechanism::Sha256);
        assert!(matches!(
            server.client_first(long.as_bytes(), |_| None, &fake()),
            Err(ScramError::TooLong(_))
        ));
        let long_name = format!("n,,n={},r=a", "u".repeat(MAX_USER_NAME_BYTES + 1));
        assert_eq!(
            ScramServer::new(Mechanism::Sha256).client_first(
                long_name.as_bytes(),
                |_| None,
                &fake()
            ),
            Err(ScramError::Malformed("user name above 255 bytes"))
        );
    }

    #[test]
    fn a_final_nonce_with_the_client_nonce_repeated_is_accepted_as_kafka_does() {
        // librdkafka 2.0 (Debian's kcat) builds its final message like this.
        let mut client = ScramClient::new(Mechanism::Sha256, "user", b"pencil");
        client
            .client_first_with_nonce("rOprNGfwEbeRWgbNEkqO")
            .expect("first");
        let mut server = server_after_first();
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let salted = Mechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        let doubled = format!(
            "c=biws,r=rOprNGfwEbeRWgbNEkqO{}",
            "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
        );
        let auth_message =
            format!("n=user,r=rOprNGfwEbeRWgbNEkqO,{RFC7677_SERVER_FIRST},{doubled}");
        let client_key = Mechanism::Sha256.hmac(&salted, &[b"Client Key"]);
        let stored_key = Mechanism::Sha256.hash(&client_key);
        let signature = Mechanism::Sha256.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let message = format!("{doubled},p={}", BASE64.encode(proof));
        let (user, _) = server.client_final(message.as_bytes()).expect("accepted");
        assert_eq!(user, "user");
    }

    #[test]
    fn unknown_extensions_are_ignored() {
        let mut server = ScramServer::new(Mechanism::Sha256);
        let msg = b"n,,n=user,r=abc,ext=1,other=";
        let first = server
            .client_first_with_nonce(msg, |_| None, &fake(), "xyz")
            .expect("extensions other than tokenauth are ignored");
        assert!(first.starts_with(b"r=abcxyz,s="));
    }

    fn server_after_first() -> ScramServer {
        let mut server = ScramServer::new(Mechanism::Sha256);
        server
            .client_first_with_nonce(
                RFC7677_CLIENT_FIRST.as_bytes(),
                |_| Some(rfc7677_credential()),
                &fake(),
                RFC7677_SERVER_NONCE,
            )
            .expect("first");
        server
    }

    #[test]
    fn malformed_client_final_messages_are_refused() {
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let cases: Vec<(String, ScramError)> = vec![
            (
                String::new(),
                ScramError::Malformed("an attribute is not `a=value`"),
            ),
            (
                format!("r={nonce},c=biws,p={proof}"),
                ScramError::Malformed("the final message must start with `c=` and `r=`"),
            ),
            (
                format!("c=biws,r={nonce}"),
                ScramError::Malformed("the proof (`p=`) must come last"),
            ),
            (
                format!("c=biws,r={nonce},p={proof},x=1"),
                ScramError::Malformed("the proof (`p=`) must come last"),
            ),
            (
                format!("c=!!,r={nonce},p={proof}"),
                ScramError::Malformed("`c=` is not base64"),
            ),
            (
                format!("c=eSws,r={nonce},p={proof}"),
                ScramError::Malformed("`c=` does not repeat the gs2 header of the first message"),
            ),
            (
                format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,p={proof}"),
                ScramError::NonceMismatch,
            ),
            (
                format!("c=biws,r={nonce},p=!!"),
                ScramError::Malformed("`p=` is not base64"),
            ),
            (
                format!("c=biws,r={nonce},p=AAAA"),
                ScramError::Malformed("the proof has the wrong length"),
            ),
            (
                format!("c=biws,r={nonce},p=AHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
                ScramError::InvalidCredentials,
            ),
        ];
        for (msg, expected) in cases {
            let mut server = server_after_first();
            assert_eq!(
                server.client_final(msg.as_bytes()).err(),
                Some(expected),
                "{msg}"
            );
        }
        // Out of order: a final before a first, a second first, a replay.
        let mut server = ScramServer::new(Mechanism::Sha256);
        assert_eq!(
            server.client_final(RFC7677_CLIENT_FINAL.as_bytes()),
            Err(ScramError::IllegalState)
        );
        let mut server = server_after_first();
        assert_eq!(
            server.client_first(RFC7677_CLIENT_FIRST.as_bytes(), |_| None, &fake()),
            Err(ScramError::IllegalState)
        );
        let mut server = server_after_first();
        server
            .client_final(RFC7677_CLIENT_FINAL.as_bytes())
            .expect("final");
        assert_eq!(
            server.client_final(RFC7677_CLIENT_FINAL.as_bytes()),
            Err(ScramError::IllegalState)
        );
    }

    #[test]
    fn the_client_refuses_a_hostile_server() {
        let start = || {
            let mut c = ScramClient::new(Mechanism::Sha256, "user", b"pencil");
            c.client_first_with_nonce("abc").expect("first");
            c
        };
        assert_eq!(
            start().server_first(b"r=xyz,s=AAAA,i=4096"),
            Err(ScramError::NonceMismatch)
        );
        assert_eq!(
            start().server_first(b"r=abc,s=AAAA,i=4096"),
            Err(ScramError::NonceMismatch),
            "the server must add to the nonce"
        );
        assert_eq!(
            start().server_first(b"r=abcd,s=AAAA,i=2000000000"),
            Err(ScramError::Iterations(2_000_000_000))
        );
        assert_eq!(
            start().server_first(b"e=unknown-user"),
            Err(ScramError::ServerError("unknown-user".to_owned()))
        );
        let mut c = start();
        c.server_first(b"r=abcd,s=AAAA,i=4096").expect("final");
        assert_eq!(
            c.server_final(b"v=AAAA"),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn plain_verification_uses_the_stored_credential() {
        let salt = random_salt().expect("salt");
        let credential = Credential::from_password(Mechanism::Sha512, b"secret", &salt, 4096);
        assert!(credential.verify_password(Mechanism::Sha512, b"secret"));
        assert!(!credential.verify_password(Mechanism::Sha512, b"Secret"));
    }

    #[test]
    fn kafka_mechanism_numbers() {
        assert_eq!(Mechanism::from_kafka_type(1), Some(Mechanism::Sha256));
        assert_eq!(Mechanism::from_kafka_type(2), Some(Mechanism::Sha512));
        assert_eq!(Mechanism::from_kafka_type(0), None);
        assert_eq!(
            Mechanism::from_name("SCRAM-SHA-512"),
            Some(Mechanism::Sha512)
        );
        assert_eq!(Mechanism::from_name("scram-sha-512"), None);
    }
}
