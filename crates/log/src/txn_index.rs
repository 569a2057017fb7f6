//! The aborted-transaction index of one segment (`<base>.txnindex`), in
//! Kafka's layout: a flat array of 34-byte entries, one per ABORT marker in
//! the segment, in marker order. `read_committed` fetches read it to learn
//! which transactions' records to drop.
//!
//! This module only encodes, decodes and checks entries; [`crate::segment`]
//! owns the file and [`crate::log`] decides when to write and read it. The
//! byte layout is in `docs/design.md` ("Transaction index").

use crate::producer_state::AbortedTxn;

/// Size of one `.txnindex` entry: version i16, producer id i64, first
/// offset i64, last offset i64, last stable offset i64.
pub const TXN_ENTRY_BYTES: usize = 34;

/// The only entry version written and accepted.
pub const TXN_ENTRY_VERSION: i16 = 0;

/// One aborted transaction as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnIndexEntry {
    /// The producer id of the aborted transaction.
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker (it lies in this entry's segment).
    pub last_offset: i64,
    /// The partition's last stable offset just after the marker (a lower
    /// bound of it when one append carried several batches). Every
    /// transaction starting below it was over by then, so a reader that
    /// meets an entry with `last_stable_offset >= upper` has seen every
    /// abort that can overlap `[.., upper)`.
    pub last_stable_offset: i64,
}

impl TxnIndexEntry {
    /// The (producer id, first offset, marker offset) Fetch needs.
    pub fn aborted(&self) -> AbortedTxn {
        AbortedTxn {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
        }
    }

    /// Appends the 34-byte big-endian encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&TXN_ENTRY_VERSION.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.first_offset.to_be_bytes());
        out.extend_from_slice(&self.last_offset.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.to_be_bytes());
    }

    /// Decodes one entry; `None` if it is not a version 0 entry.
    pub fn decode(b: &[u8; TXN_ENTRY_BYTES]) -> Option<TxnIndexEntry> {
        let i64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(x)
        };
        if i16::from_be_bytes([b[0], b[1]]) != TXN_ENTRY_VERSION {
            return None;
        }
        Some(TxnIndexEntry {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Why a `.txnindex` file was not accepted (it is then rebuilt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnIndexDamage {
    /// The size is not a whole number of entries.
    PartialEntry,
    /// Entry `index` has an unknown version, a marker outside the segment,
    /// a first offset after its marker, or a marker not after the previous one.
    BadEntry {
        /// Position of the entry in the file.
        index: usize,
    },
}

/// Decodes and checks a whole file's bytes for a segment covering offsets
/// `[base_offset, end_offset)`. Entries must be version 0, have their
/// marker inside the segment, `producer_id >= 0`, `first_offset <
/// last_offset` (a transaction has a data batch before its marker, which
/// also makes an all-zero entry invalid), and strictly increasing markers.
pub fn decode_all(
    bytes: &[u8],
    base_offset: i64,
    end_offset: i64,
) -> Result<Vec<TxnIndexEntry>, TxnIndexDamage> {
    if !bytes.len().is_multiple_of(TXN_ENTRY_BYTES) {
        return Err(TxnIndexDamage::PartialEntry);
    }
    let mut out: Vec<TxnIndexEntry> = Vec::with_capacity(bytes.len() / TXN_ENTRY_BYTES);
    for (index, chunk) in bytes.chunks_exact(TXN_ENTRY_BYTES).enumerate() {
        let mut raw = [0u8; TXN_ENTRY_BYTES];
        raw.copy_from_slice(chunk);
        let ok = TxnIndexEntry::decode(&raw).filter(|e| {
            e.producer_id >= 0
                && e.first_offset < e.last_offset
                && e.last_offset >= base_offset
                && e.last_offset < end_offset
                && out.last().is_none_or(|p| p.last_offset < e.last_offset)
        });
        match ok {
            Some(e) => out.push(e),
            None => return Err(TxnIndexDamage::BadEntry { index }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(last_offset: i64) -> TxnIndexEntry {
        TxnIndexEntry {
            producer_id: 7,
            first_offset: last_offset - 2,
            last_offset,
            last_stable_offset: last_offset + 1,
        }
    }

    #[test]
    fn entries_round_trip_in_34_bytes() {
        let mut bytes = Vec::new();
        entry(12).encode_into(&mut bytes);
        entry(20).encode_into(&mut bytes);
        assert_eq!(bytes.len(), 2 * TXN_ENTRY_BYTES);
        assert_eq!(&bytes[..2], &[0, 0], "version 0 first");
        assert_eq!(decode_all(&bytes, 10, 30), Ok(vec![entry(12), entry(20)]));
    }

    #[test]
    fn damaged_files_are_refused() {
        let mut bytes = Vec::new();
        entry(12).encode_into(&mut bytes);
        entry(20).encode_into(&mut bytes);
        assert_eq!(
            decode_all(&bytes[..40], 10, 30),
            Err(TxnIndexDamage::PartialEntry)
        );
        // The second marker lies past the segment's end.
        assert_eq!(
            decode_all(&bytes, 10, 20),
            Err(TxnIndexDamage::BadEntry { index: 1 })
        );
        let mut v1 = bytes.clone();
        v1[1] = 1;
        assert_eq!(
            decode_all(&v1, 10, 30),
            Err(TxnIndexDamage::BadEntry { index: 0 })
        );
        // Markers must increase.
        let mut swapped = Vec::new();
        entry(20).encode_into(&mut swapped);
        entry(12).encode_into(&mut swapped);
        assert_eq!(
            decode_all(&swapped, 10, 30),
            Err(TxnIndexDamage::BadEntry { index: 1 })
        );
    }
}
