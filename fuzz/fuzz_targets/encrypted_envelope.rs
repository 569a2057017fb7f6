//! The encryption-at-rest envelope decoder against hostile stored bytes.
//!
//! Mode byte, bit 0: the input is stored bytes as they are, handed to
//! `decrypt_batches` (framing garbage, forged envelopes, bad key ids).
//! Otherwise: the rest becomes a record value, is sealed with a known key,
//! and the byte at a fuzzer-chosen position is XORed with a fuzzer-chosen
//! mask before opening. Either way: no panic; an `Ok` result is only whole,
//! CRC-valid plain batches without the envelope bit; a sealed batch opens
//! to exactly the original, or (after a change) to an error — never to
//! different bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_log::encryption::{ATTR_ENCRYPTED, decrypt_batches};
use sluice_log::Keyring;
use sluice_records::{BatchBuilder, BatchHeader, NewRecord};

/// Inputs past this are cut: the decoder's cost is linear, and framing and
/// tag checks show up in a few batches.
const MAX_INPUT_BYTES: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let rest = &rest[..rest.len().min(MAX_INPUT_BYTES)];
    let keyring = Keyring::new(vec![(1, [7; 32]), (2, [9; 32])], 1).expect("keyring");
    if mode & 1 == 1 {
        if let Ok(out) = decrypt_batches(Some(&keyring), Bytes::copy_from_slice(rest)) {
            check_plain(&out);
        }
        return;
    }
    let Some((&mask, rest)) = rest.split_first() else { return };
    let Some((&at, value)) = rest.split_first() else { return };
    let plain = BatchBuilder::new()
        .record(NewRecord { value: Some(Bytes::copy_from_slice(value)), timestamp_ms: 1, ..NewRecord::default() })
        .build()
        .expect("valid batch");
    let mut sealed = Vec::new();
    keyring.encrypt_batch(&plain, &mut sealed).expect("seal");
    let position = usize::from(at) * sealed.len() / 256;
    sealed[position] ^= mask;
    match decrypt_batches(Some(&keyring), Bytes::from(sealed)) {
        Ok(out) => {
            check_plain(&out);
            // Only the stored CRC (bytes 17..21) is outside the tag: it is
            // recomputed on open, so a change there opens to the original.
            assert!(mask == 0 || (17..21).contains(&position), "changed byte {position} opened");
            assert_eq!(&out[..], &plain[..], "opened to different bytes");
        }
        Err(_) => assert!(mask != 0, "an untouched envelope failed to open"),
    }
});

/// `out` is whole batches end to end, none of them an envelope; a batch
/// opened from an envelope also carries a valid CRC (checked by the caller
/// against the original in the sealing mode).
fn check_plain(out: &[u8]) {
    let mut pos = 0;
    while pos < out.len() {
        let header = BatchHeader::parse(&out[pos..]).expect("a whole header");
        assert_eq!(header.attributes & ATTR_ENCRYPTED, 0, "an envelope was passed through");
        let size = header.total_size();
        assert!(size >= 61 && pos + size <= out.len(), "a partial batch at {pos}");
        pos += size;
    }
}
