//! Fuzzes request decoding: arbitrary bytes must never panic, abort or
//! allocate beyond their own size, and anything that decodes must re-encode
//! and decode back to the same value.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice_protocol::{RequestBody, decode_request};

fuzz_target!(|data: &[u8]| {
    let Ok((header, body)) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).expect("a decoded body re-encodes");
    let mut rd = buf.freeze();
    let again = RequestBody::decode(body.api_key(), &mut rd, version).expect("re-encoded body decodes");
    assert_eq!(again, body);
    assert!(rd.is_empty());
});
