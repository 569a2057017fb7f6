//! Feeds arbitrary bytes to what a node decodes from its peers: a
//! controller-protocol frame body (requests and responses) and a metadata
//! snapshot as a leader sends it. Nothing may panic or allocate from an
//! unchecked length; a request that decodes must encode and decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_quorum::state_machine::decode_snapshot_file;
use sluice_quorum::wire::{PROTOCOL_VERSION, Request, Response, decode_body};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_body::<Request>(data) {
        let mut again = PROTOCOL_VERSION.to_be_bytes().to_vec();
        again.extend(postcard::to_stdvec(&request).expect("a decoded request encodes"));
        assert!(decode_body::<Request>(&again).is_ok());
    }
    let _ = decode_body::<Response>(data);
    let _ = decode_snapshot_file(data);
});
