//! Fuzzes request decoding: arbitrary bytes must never panic, abort or
//! allocate beyond their own size, and anything that decodes must re-encode
//! to bytes that decode back to the same encoding.
//!
//! The round trip compares encoded bytes, not decoded values: a float64
//! field can hold NaN, and NaN != NaN would make a value comparison fail on
//! a correct codec (the first version of this target stopped on exactly
//! that after a few seconds).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice_protocol::{RequestBody, decode_request};

fuzz_target!(|data: &[u8]| {
    let Ok((header, body)) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let version = header.request_api_version;
    let first = encode(&body, version);
    let mut rd = first.clone();
    let again = RequestBody::decode(body.api_key(), &mut rd, version).expect("re-encoded body decodes");
    assert!(rd.is_empty(), "re-encoded body left {} bytes unread", rd.len());
    assert_eq!(encode(&again, version), first, "encoding is not stable across a round trip");
});

fn encode(body: &RequestBody, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).expect("a decoded body re-encodes");
    buf.freeze()
}
