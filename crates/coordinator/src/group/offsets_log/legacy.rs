//! The JSON records Sluice wrote to `__consumer_offsets` before it used
//! Kafka's schemas. They are read on replay forever (a data directory may
//! hold them until compaction exists) and never written; the writer is kept
//! for tests only, to build such a data directory.
//!
//! - key `{"offset":{"group":g,"topic":t,"partition":p}}`, value
//!   `{"offset","leader_epoch","metadata","commit_timestamp_ms"}`;
//! - key `{"group":{"group":g}}`, value `{"group_type","protocol_type",
//!   "generation","protocol","leader","state_timestamp_ms","members":[..]}`
//!   with each member's subscription and assignment in lower-case hex;
//! - a null value is a tombstone, as now.

use bytes::Bytes;
use serde::Deserialize;

use super::{GroupValue, MemberValue, OffsetValue, Replayed};
use crate::coordinator_record::RecordError;

/// A legacy key, externally tagged.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct Offset {
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    commit_timestamp_ms: i64,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    subscription: String,
    assignment: String,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct Group {
    group_type: String,
    protocol_type: Option<String>,
    generation: i32,
    protocol: Option<String>,
    leader: Option<String>,
    state_timestamp_ms: i64,
    members: Vec<Member>,
}

/// Decodes a legacy JSON record.
pub(super) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Replayed, RecordError> {
    Ok(match serde_json::from_slice(key)? {
        Key::Offset {
            group,
            topic,
            partition,
        } => Replayed::Offset {
            group,
            topic,
            partition,
            value: value
                .map(serde_json::from_slice::<Offset>)
                .transpose()?
                .map(|o| OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata,
                    commit_timestamp_ms: o.commit_timestamp_ms,
                }),
        },
        Key::Group { group } => Replayed::Group {
            group,
            value: value
                .map(serde_json::from_slice::<Group>)
                .transpose()?
                .map(group_value)
                .transpose()?,
        },
    })
}

fn group_value(g: Group) -> Result<GroupValue, RecordError> {
    let members = g
        .members
        .into_iter()
        .map(|m| {
            Ok(MemberValue {
                subscription: unhex(&m.subscription)?,
                assignment: unhex(&m.assignment)?,
                member_id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
            })
        })
        .collect::<Result<Vec<_>, RecordError>>()?;
    Ok(GroupValue {
        group_type: g.group_type,
        protocol_type: g.protocol_type,
        generation: g.generation,
        protocol: g.protocol,
        leader: g.leader,
        state_timestamp_ms: g.state_timestamp_ms,
        members,
    })
}

/// Parses the lower-case hex the legacy format used for opaque bytes.
fn unhex(s: &str) -> Result<Bytes, RecordError> {
    let bad = || RecordError::Invalid {
        record: "legacy group metadata",
        reason: "member bytes are not lower-case hex".to_owned(),
    };
    if !s.len().is_multiple_of(2) {
        return Err(bad());
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Bytes::from)
        .ok_or_else(bad)
}

/// The legacy writer, to build data directories as older Sluice left them.
#[cfg(test)]
pub mod writer {
    use super::*;
    use crate::group::offsets_log::LogRecord;

    fn json<T: serde::Serialize>(v: &T) -> Bytes {
        Bytes::from(serde_json::to_vec(v).expect("plain structs serialize"))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// An offset commit (or tombstone) as older Sluice wrote it.
    pub fn offset(
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<&OffsetValue>,
    ) -> LogRecord {
        LogRecord {
            key: json(&Key::Offset {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition,
            }),
            value: value.map(|v| {
                json(&Offset {
                    offset: v.offset,
                    leader_epoch: v.leader_epoch,
                    metadata: v.metadata.clone(),
                    commit_timestamp_ms: v.commit_timestamp_ms,
                })
            }),
        }
    }

    /// Group metadata (or its tombstone) as older Sluice wrote it.
    pub fn group(group: &str, value: Option<&GroupValue>) -> LogRecord {
        LogRecord {
            key: json(&Key::Group {
                group: group.to_owned(),
            }),
            value: value.map(|g| {
                json(&Group {
                    group_type: g.group_type.clone(),
                    protocol_type: g.protocol_type.clone(),
                    generation: g.generation,
                    protocol: g.protocol.clone(),
                    leader: g.leader.clone(),
                    state_timestamp_ms: g.state_timestamp_ms,
                    members: g
                        .members
                        .iter()
                        .map(|m| Member {
                            member_id: m.member_id.clone(),
                            instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            session_timeout_ms: m.session_timeout_ms,
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            subscription: hex(&m.subscription),
                            assignment: hex(&m.assignment),
                        })
                        .collect(),
                })
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn legacy_json_as_older_sluice_wrote_it_decodes() {
        // Bytes exactly as the JSON encoder before Kafka's formats wrote them.
        let key = br#"{"offset":{"group":"g","topic":"t","partition":7}}"#;
        let value = br#"{"offset":42,"leader_epoch":3,"metadata":"meta","commit_timestamp_ms":1}"#;
        assert_eq!(
            decode(key, Some(value)).unwrap(),
            Replayed::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: Some(OffsetValue {
                    offset: 42,
                    leader_epoch: 3,
                    metadata: "meta".into(),
                    commit_timestamp_ms: 1
                })
            }
        );
        assert_eq!(
            decode(br#"{"group":{"group":"g"}}"#, None).unwrap(),
            Replayed::Group {
                group: "g".into(),
                value: None
            }
        );
        let group = br#"{"group_type":"classic","protocol_type":"consumer","generation":4,"protocol":"range","leader":"m","state_timestamp_ms":9,"members":[{"member_id":"m","instance_id":null,"client_id":"c","client_host":"/h","session_timeout_ms":10,"rebalance_timeout_ms":20,"subscription":"00ab","assignment":"ff"}]}"#;
        let Replayed::Group { value: Some(g), .. } =
            decode(br#"{"group":{"group":"g"}}"#, Some(group)).unwrap()
        else {
            panic!("not a group");
        };
        assert_eq!(g.members[0].subscription, Bytes::from_static(&[0, 0xab]));
        assert_eq!(g.members[0].assignment, Bytes::from_static(&[0xff]));
        assert!(decode(b"{\"nope\":{}}", None).is_err());
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }
}
