//! Feeds arbitrary bytes to the SASL token and frame parsers: PLAIN
//! messages, and SaslHandshake / SaslAuthenticate request bodies at every
//! version. Nothing may panic or allocate from an unchecked length; a body
//! that decodes must encode and decode to the same value.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice_protocol::messages::sasl_authenticate::SaslAuthenticateRequest;
use sluice_protocol::messages::sasl_handshake::SaslHandshakeRequest;
use sluice_protocol::{Decode, Encode};

fn round_trip<T: Decode + Encode + PartialEq + std::fmt::Debug>(data: &[u8], version: i16) {
    let mut bytes = Bytes::copy_from_slice(data);
    if let Ok(value) = T::decode(&mut bytes, version) {
        let mut out = BytesMut::new();
        value.encode(&mut out, version).expect("a decoded body encodes");
        let again = T::decode(&mut out.freeze(), version).expect("an encoded body decodes");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = sluice_auth::plain::parse(data) {
        assert!(!message.user.is_empty() && !message.password.is_empty());
        assert!(message.user.len() <= sluice_auth::plain::MAX_FIELD_BYTES);
    }
    for version in 0..=2 {
        round_trip::<SaslAuthenticateRequest>(data, version);
    }
    for version in 0..=1 {
        round_trip::<SaslHandshakeRequest>(data, version);
    }
});
