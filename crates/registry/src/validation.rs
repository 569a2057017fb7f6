//! Broker-side schema validation: a topic can require that every record's
//! key and/or value carries a schema id registered under the subject the
//! topic's subject name strategy names. Confluent Server's topic configs:
//!
//! | config | values | default |
//! |---|---|---|
//! | `confluent.key.schema.validation` | `true`, `false` | `false` |
//! | `confluent.value.schema.validation` | `true`, `false` | `false` |
//! | `confluent.key.subject.name.strategy` | `io.confluent.kafka.serializers.subject.` + `TopicNameStrategy`, `RecordNameStrategy`, `TopicRecordNameStrategy` (the short names too) | TopicNameStrategy |
//! | `confluent.value.subject.name.strategy` | as above | TopicNameStrategy |
//!
//! A checked key or value must be in Confluent's wire format: magic byte 0,
//! a big-endian 4-byte schema id, then (Protobuf) the message indexes and
//! the data. The id must name a schema, and that schema must be a live
//! version of the subject: `<topic>-key`/`<topic>-value`, the schema's
//! record name, or `<topic>-<record name>`. A null key or value (a
//! tombstone) carries no data and passes. The data itself is not decoded:
//! that is the serializers' contract, and decoding every record would cost
//! the produce path far more than this check.

use std::collections::BTreeMap;

use sluice_schema::SchemaType;

use crate::state::State;

/// Topic config: check keys.
pub const KEY_VALIDATION: &str = "confluent.key.schema.validation";
/// Topic config: check values.
pub const VALUE_VALIDATION: &str = "confluent.value.schema.validation";
/// Topic config: how a key's subject is named.
pub const KEY_STRATEGY: &str = "confluent.key.subject.name.strategy";
/// Topic config: how a value's subject is named.
pub const VALUE_STRATEGY: &str = "confluent.value.subject.name.strategy";

/// Confluent's package for the strategy class names.
const STRATEGY_PACKAGE: &str = "io.confluent.kafka.serializers.subject.";

/// Every value the strategy configs accept (the topic config check holds
/// the list).
pub use sluice_metadata::topic_config::SUBJECT_NAME_STRATEGIES as STRATEGY_NAMES;

/// How a record's subject is named (Confluent's subject name strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectStrategy {
    /// `<topic>-key` or `<topic>-value`.
    #[default]
    TopicName,
    /// The schema's record name.
    RecordName,
    /// `<topic>-<record name>`.
    TopicRecordName,
}

impl SubjectStrategy {
    /// Parses a strategy config value (class name, with or without its package).
    pub fn parse(name: &str) -> Option<SubjectStrategy> {
        match name
            .trim()
            .strip_prefix(STRATEGY_PACKAGE)
            .unwrap_or(name.trim())
        {
            "TopicNameStrategy" => Some(SubjectStrategy::TopicName),
            "RecordNameStrategy" => Some(SubjectStrategy::RecordName),
            "TopicRecordNameStrategy" => Some(SubjectStrategy::TopicRecordName),
            _ => None,
        }
    }
}

/// Which part of a record is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The key.
    Key,
    /// The value.
    Value,
}

impl Field {
    fn as_str(self) -> &'static str {
        match self {
            Field::Key => "key",
            Field::Value => "value",
        }
    }
}

/// A topic's validation rules; `None` for a field that is not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicRules {
    /// How keys are checked.
    pub key: Option<SubjectStrategy>,
    /// How values are checked.
    pub value: Option<SubjectStrategy>,
}

impl TopicRules {
    /// The rules a topic's configs set; `None` when nothing is checked (the
    /// produce path then does no work for it).
    pub fn from_configs(configs: &BTreeMap<String, String>) -> Option<TopicRules> {
        let on = |name: &str| {
            configs
                .get(name)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        let strategy = |name: &str| {
            configs
                .get(name)
                .and_then(|v| SubjectStrategy::parse(v))
                .unwrap_or_default()
        };
        let rules = TopicRules {
            key: on(KEY_VALIDATION).then(|| strategy(KEY_STRATEGY)),
            value: on(VALUE_VALIDATION).then(|| strategy(VALUE_STRATEGY)),
        };
        (rules.key.is_some() || rules.value.is_some()).then_some(rules)
    }
}

/// Most bytes of Protobuf message indexes read from a payload.
const MAX_INDEX_BYTES: usize = 64;

/// Checks one key or value of a record produced to `topic`; `Err` says why
/// it is refused, for the record's KIP-467 error message.
pub(crate) fn check(
    state: &mut State,
    topic: &str,
    field: Field,
    strategy: SubjectStrategy,
    data: Option<&[u8]>,
) -> Result<(), String> {
    let Some(data) = data else { return Ok(()) };
    let what = field.as_str();
    let Some(id) = schema_id(data) else {
        return Err(format!(
            "the {what} is not in the schema registry's wire format (magic byte 0 and a 4-byte schema id)"
        ));
    };
    let schema = state
        .schema(id)
        .map_err(|_| format!("the {what}'s schema id {id} is not registered"))?;
    let subject = match strategy {
        SubjectStrategy::TopicName => format!("{topic}-{what}"),
        SubjectStrategy::RecordName | SubjectStrategy::TopicRecordName => {
            let indexes = if schema.schema_type == SchemaType::Protobuf {
                message_indexes(&data[5..])
                    .ok_or_else(|| format!("the {what}'s Protobuf message indexes are malformed"))?
                    .0
            } else {
                Vec::new()
            };
            let name = state
                .record_name(id, &indexes)
                .ok_or_else(|| format!("the {what}'s schema {id} has no record name"))?;
            if strategy == SubjectStrategy::RecordName {
                name
            } else {
                format!("{topic}-{name}")
            }
        }
    };
    if state.subject_holds(&subject, id) {
        Ok(())
    } else {
        Err(format!(
            "the {what}'s schema id {id} is not registered under subject {subject}"
        ))
    }
}

/// The schema id a key or value names, if it is in the wire format.
pub fn schema_id(data: &[u8]) -> Option<i32> {
    match data {
        [0, a, b, c, d, ..] => Some(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Confluent's Protobuf message indexes after the schema id: a zigzag
/// varint count, then that many zigzag varints; a count of 0 means the
/// first message (`[]`). Returns the indexes and the data after them.
pub(crate) fn message_indexes(mut data: &[u8]) -> Option<(Vec<i32>, &[u8])> {
    let count = read_zigzag(&mut data)?;
    let count = usize::try_from(count).ok()?;
    if count > MAX_INDEX_BYTES {
        return None;
    }
    let indexes = (0..count)
        .map(|_| read_zigzag(&mut data))
        .collect::<Option<Vec<i32>>>()?;
    Some((indexes, data))
}

fn read_zigzag(data: &mut &[u8]) -> Option<i32> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = data.split_first()?;
        *data = rest;
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            let decoded = (value >> 1) as i32 ^ -((value & 1) as i32);
            return Some(decoded);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_with_and_without_their_package() {
        for (name, expected) in [
            ("TopicNameStrategy", SubjectStrategy::TopicName),
            (
                "io.confluent.kafka.serializers.subject.RecordNameStrategy",
                SubjectStrategy::RecordName,
            ),
            ("TopicRecordNameStrategy", SubjectStrategy::TopicRecordName),
        ] {
            assert_eq!(SubjectStrategy::parse(name), Some(expected));
        }
        assert_eq!(SubjectStrategy::parse("MyStrategy"), None);
        for name in STRATEGY_NAMES {
            assert!(SubjectStrategy::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn rules_come_from_the_topic_configs() {
        let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(TopicRules::from_configs(&configs(&[])), None);
        assert_eq!(
            TopicRules::from_configs(&configs(&[(VALUE_VALIDATION, "false")])),
            None
        );
        assert_eq!(
            TopicRules::from_configs(&configs(&[
                (VALUE_VALIDATION, "true"),
                (VALUE_STRATEGY, "RecordNameStrategy")
            ])),
            Some(TopicRules {
                key: None,
                value: Some(SubjectStrategy::RecordName)
            })
        );
    }

    #[test]
    fn message_indexes_decode_confluents_encoding() {
        assert_eq!(message_indexes(&[0]), Some((vec![], &[][..])));
        // Count 2 (zigzag 4), then 1 (2) and 0 (0).
        assert_eq!(message_indexes(&[4, 2, 0]), Some((vec![1, 0], &[][..])));
        assert_eq!(message_indexes(&[]), None);
        assert_eq!(message_indexes(&[4, 2]), None);
        assert_eq!(message_indexes(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
        // A count past the bound is refused without reading on.
        assert_eq!(message_indexes(&[0xfe, 0x01]), None);
    }
}
