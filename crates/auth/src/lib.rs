//! SASL mechanisms shared by the broker (server side) and Sluice's own
//! client (client side): SCRAM-SHA-256/512 (RFC 5802, RFC 7677) and PLAIN
//! (RFC 4616), and a bounded memory of successful password checks
//! ([`verified`]) for callers that see the same password on every request.
//!
//! This crate owns message parsing, the SCRAM state machines and credential
//! derivation. It does no I/O and knows nothing about Kafka frames or the
//! metadata log: the broker feeds it SaslAuthenticate tokens and a lookup
//! of stored credentials; the client feeds it the broker's answers. It
//! lives in its own crate so both `sluice-broker` and `sluice-client` use
//! the same code without a dependency between them.

pub mod oauthbearer;
pub mod plain;
pub mod scram;
pub mod verified;

/// Longest user name accepted by any mechanism, in bytes. RFC 4616 bounds
/// PLAIN's fields at 255 octets; SCRAM user names get the same bound so a
/// name cannot be used to make the broker hash or store large inputs.
pub const MAX_USER_NAME_BYTES: usize = 255;
