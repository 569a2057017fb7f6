//! The classic consumer protocol's embedded blobs (subscription and
//! assignment, version 0) and the range assignor.
//!
//! These blobs travel opaque inside JoinGroup/SyncGroup; Java clients,
//! librdkafka and we all read the same layout:
//!
//! ```text
//! Subscription: version int16, topics [string], user_data nullable bytes
//! Assignment:   version int16, [topic string, partitions [int32]], user_data nullable bytes
//! ```
//! Later versions append fields, which a reader skips.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ClientError, Result};

/// Protocol type of consumer groups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The one assignor we implement (also Java's and librdkafka's default first choice).
pub const RANGE_ASSIGNOR: &str = "range";

/// Most topics or partitions one blob may list; more is a corrupt count.
const MAX_BLOB_ITEMS: usize = 1 << 20;

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn get_i16(buf: &mut Bytes, what: &'static str) -> Result<i16> {
    if buf.remaining() < 2 {
        return Err(ClientError::MalformedGroupData { what });
    }
    Ok(buf.get_i16())
}

fn get_i32(buf: &mut Bytes, what: &'static str) -> Result<i32> {
    if buf.remaining() < 4 {
        return Err(ClientError::MalformedGroupData { what });
    }
    Ok(buf.get_i32())
}

fn get_count(buf: &mut Bytes, what: &'static str, min_item: usize) -> Result<usize> {
    let n = get_i32(buf, what)?;
    let n = usize::try_from(n.max(0)).map_err(|_| ClientError::MalformedGroupData { what })?;
    if n > MAX_BLOB_ITEMS || n * min_item > buf.remaining() {
        return Err(ClientError::MalformedGroupData { what });
    }
    Ok(n)
}

fn get_str(buf: &mut Bytes, what: &'static str) -> Result<String> {
    let len = get_i16(buf, what)?;
    let len = usize::try_from(len).map_err(|_| ClientError::MalformedGroupData { what })?;
    if buf.remaining() < len {
        return Err(ClientError::MalformedGroupData { what });
    }
    String::from_utf8(buf.split_to(len).to_vec())
        .map_err(|_| ClientError::MalformedGroupData { what })
}

/// Encodes a v0 subscription.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        put_str(&mut buf, t);
    }
    buf.put_i32(-1);
    buf.freeze()
}

/// Decodes the topics of a subscription (any version).
pub fn decode_subscription(mut buf: Bytes) -> Result<Vec<String>> {
    const WHAT: &str = "subscription";
    get_i16(&mut buf, WHAT)?;
    let n = get_count(&mut buf, WHAT, 2)?;
    (0..n).map(|_| get_str(&mut buf, WHAT)).collect()
}

/// Encodes a v0 assignment.
pub fn encode_assignment(assignment: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(assignment.len() as i32);
    for (topic, partitions) in assignment {
        put_str(&mut buf, topic);
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(*p);
        }
    }
    buf.put_i32(-1);
    buf.freeze()
}

/// Decodes an assignment (any version); an empty blob is no assignment.
pub fn decode_assignment(mut buf: Bytes) -> Result<Vec<(String, i32)>> {
    const WHAT: &str = "assignment";
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    get_i16(&mut buf, WHAT)?;
    let topics = get_count(&mut buf, WHAT, 6)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = get_str(&mut buf, WHAT)?;
        let n = get_count(&mut buf, WHAT, 4)?;
        for _ in 0..n {
            out.push((topic.clone(), get_i32(&mut buf, WHAT)?));
        }
    }
    Ok(out)
}

/// Kafka's range assignor: per topic, members subscribed to it (sorted by
/// id) get contiguous ranges; the first `partitions % members` get one extra.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut result: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let per = count / n;
        let extra = count % n;
        for (i, member) in members.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if len == 0 {
                continue;
            }
            if let Some(m) = result.get_mut(*member) {
                m.insert(topic.clone(), (start..start + len).collect());
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_assignment_round_trip() {
        let topics = vec!["a".to_owned(), "orders".to_owned()];
        assert_eq!(
            decode_subscription(encode_subscription(&topics)).ok(),
            Some(topics)
        );
        let mut a = BTreeMap::new();
        a.insert("orders".to_owned(), vec![0, 2]);
        let decoded = decode_assignment(encode_assignment(&a)).ok();
        assert_eq!(
            decoded,
            Some(vec![("orders".to_owned(), 0), ("orders".to_owned(), 2)])
        );
    }

    #[test]
    fn a_huge_count_in_a_blob_is_an_error_not_an_allocation() {
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        buf.put_i32(i32::MAX);
        assert!(decode_subscription(buf.clone().freeze()).is_err());
        assert!(decode_assignment(buf.freeze()).is_err());
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let mut subs = BTreeMap::new();
        subs.insert("m1".to_owned(), vec!["t".to_owned()]);
        subs.insert("m2".to_owned(), vec!["t".to_owned()]);
        let mut counts = BTreeMap::new();
        counts.insert("t".to_owned(), 3);
        let a = range_assign(&subs, &counts);
        assert_eq!(a["m1"]["t"], vec![0, 1]);
        assert_eq!(a["m2"]["t"], vec![2]);
    }
}
