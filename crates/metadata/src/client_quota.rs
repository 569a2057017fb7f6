//! Client quotas as metadata (Kafka's KIP-13, KIP-55, KIP-124, KIP-546):
//! which entities may carry which quota keys, how an AlterClientQuotas
//! entry becomes [`MetadataRecord::ClientQuota`] records, how a
//! DescribeClientQuotas filter selects entities, and which entity's quota
//! applies to a (user, client id) pair.
//!
//! This module is pure: it reads an image and returns records or answers.
//! Metering and throttling are the broker's (`sluice_broker::quota`).

use std::collections::BTreeMap;

use sluice_protocol::error::codes as code;

use crate::error::ApiError;
use crate::image::{MetadataImage, MetadataRecord};

/// Entity type of a user principal's name (Kafka's `ClientQuotaEntity.USER`).
pub const USER: &str = "user";
/// Entity type of a client id.
pub const CLIENT_ID: &str = "client-id";
/// Entity type of a client IP address (connection creation rate only).
pub const IP: &str = "ip";

/// Bytes/s a (user, client id) may produce.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes/s a (user, client id) may fetch.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percentage of one request handler thread's time per quota window.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Partition mutations/s in CreateTopics, CreatePartitions, DeleteTopics
/// (KIP-599).
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
/// New connections/s from one IP (KIP-612).
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

pub use crate::image::QuotaEntity;

/// One entity's quotas, by key.
pub type QuotaValues = BTreeMap<String, f64>;

/// Kafka's DescribeClientQuotas match types (KIP-546).
pub const MATCH_TYPE_EXACT: i8 = 0;
/// Matches the default entity of the type.
pub const MATCH_TYPE_DEFAULT: i8 = 1;
/// Matches any entity of the type.
pub const MATCH_TYPE_SPECIFIED: i8 = 2;

/// How a key's value must look (Kafka's `QuotaConfigs` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    /// A whole number (rates in bytes/s, connections/s).
    Long,
    /// Any number.
    Double,
}

/// Keys valid on user and client-id entities, in Kafka's order.
const CLIENT_KEYS: &[(&str, ValueType)] = &[
    (PRODUCER_BYTE_RATE, ValueType::Long),
    (CONSUMER_BYTE_RATE, ValueType::Long),
    (REQUEST_PERCENTAGE, ValueType::Double),
    (CONTROLLER_MUTATION_RATE, ValueType::Double),
];

/// Keys valid on ip entities.
const IP_KEYS: &[(&str, ValueType)] = &[(CONNECTION_CREATION_RATE, ValueType::Long)];

/// One entity's changes in an AlterClientQuotas request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuotaAlteration {
    /// The entity as the request names it (order and duplicates kept, so
    /// validation can refuse duplicates).
    pub entity: Vec<(String, Option<String>)>,
    /// `(key, value)`; `None` removes the key.
    pub ops: Vec<(String, Option<f64>)>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(code::INVALID_REQUEST, message)
}

/// The entity sorted by type, or INVALID_REQUEST as Kafka's controller
/// words it: empty, a type twice, an unknown type, an empty name.
pub fn validate_entity(entity: &[(String, Option<String>)]) -> Result<QuotaEntity, ApiError> {
    if entity.is_empty() {
        return Err(invalid("Invalid empty client quota entity"));
    }
    let mut sorted: QuotaEntity = Vec::with_capacity(entity.len());
    for (entity_type, name) in entity {
        if sorted.iter().any(|(t, _)| t == entity_type) {
            return Err(invalid(format!(
                "Invalid client quota entity, duplicate entity entry {entity_type}"
            )));
        }
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return Err(invalid(format!(
                "Unhandled client quota entity type: {entity_type}"
            )));
        }
        if name.as_deref() == Some("") {
            return Err(invalid(format!("Empty {entity_type} not supported")));
        }
        sorted.push((entity_type.clone(), name.clone()));
    }
    sorted.sort();
    Ok(sorted)
}

/// The keys `entity` (validated) may carry: user and/or client-id take the
/// client keys, ip alone takes the connection rate, anything else mixed
/// with ip is refused.
fn keys_for(entity: &QuotaEntity) -> Result<&'static [(&'static str, ValueType)], ApiError> {
    let has = |t: &str| entity.iter().any(|(et, _)| et == t);
    match (has(USER), has(CLIENT_ID), has(IP)) {
        (true, _, false) | (false, true, false) => Ok(CLIENT_KEYS),
        (false, false, true) => {
            let ip = entity.iter().find_map(|(t, n)| (t == IP).then_some(n));
            match ip {
                Some(Some(addr)) if addr.parse::<std::net::IpAddr>().is_err() => Err(invalid(
                    format!("{addr} is not a valid IP or resolvable host."),
                )),
                _ => Ok(IP_KEYS),
            }
        }
        _ => Err(invalid("Invalid quota entity combination")),
    }
}

/// Checks one value: a known key for the entity, a finite positive number,
/// whole where Kafka's type is a long.
fn validate_value(keys: &[(&str, ValueType)], key: &str, value: f64) -> Result<(), ApiError> {
    let Some(&(_, value_type)) = keys.iter().find(|(k, _)| *k == key) else {
        return Err(invalid(format!("Invalid configuration key {key}")));
    };
    // Kafka's own check is only the type; a zero, negative or infinite
    // quota would throttle forever or divide by zero in the throttle time,
    // so Sluice refuses it as the ZooKeeper-era brokers did.
    if !value.is_finite() || value <= 0.0 {
        return Err(invalid(format!(
            "Configuration {key} must be a positive number, not {value}"
        )));
    }
    // Kafka's tolerance for a double that stands for a long.
    const EPSILON: f64 = 1e-6;
    if value_type == ValueType::Long && ((value + EPSILON).trunc() - value).abs() > EPSILON {
        return Err(invalid(format!("Configuration {key} must be a Long value")));
    }
    Ok(())
}

/// The records one alteration makes against `image`: only keys whose value
/// changes (a removal of an absent key makes none). Any invalid op refuses
/// the whole entity, so an entry applies entirely or not at all.
fn records_for(
    image: &MetadataImage,
    alteration: &QuotaAlteration,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let entity = validate_entity(&alteration.entity)?;
    let keys = keys_for(&entity)?;
    let current = image.client_quotas.get(&entity);
    let mut seen: Vec<&str> = Vec::with_capacity(alteration.ops.len());
    let mut records = Vec::new();
    for (key, value) in &alteration.ops {
        if seen.contains(&key.as_str()) {
            return Err(invalid(format!(
                "Duplicate quota key {key} not updating quota for this entity"
            )));
        }
        seen.push(key);
        let now = current.and_then(|c| c.get(key)).copied();
        match value {
            None => {
                if !keys.iter().any(|(k, _)| k == key) {
                    return Err(invalid(format!("Invalid configuration key {key}")));
                }
                if now.is_some() {
                    records.push(MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: key.clone(),
                        value: None,
                    });
                }
            }
            Some(v) => {
                validate_value(keys, key, *v)?;
                if now != Some(*v) {
                    records.push(MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: key.clone(),
                        value: Some(*v),
                    });
                }
            }
        }
    }
    Ok(records)
}

/// Validates every entry of an AlterClientQuotas request against `image`:
/// per entry, its records or its error. An entity named twice is refused
/// the second time (Kafka: "Ignoring duplicate entity").
pub fn alterations(
    image: &MetadataImage,
    entries: &[QuotaAlteration],
) -> Vec<Result<Vec<MetadataRecord>, ApiError>> {
    let mut seen: Vec<QuotaEntity> = Vec::with_capacity(entries.len());
    entries
        .iter()
        .map(|entry| {
            if let Ok(entity) = validate_entity(&entry.entity) {
                if seen.contains(&entity) {
                    return Err(invalid(format!("Ignoring duplicate entity {entity:?}")));
                }
                seen.push(entity);
            }
            records_for(image, entry)
        })
        .collect()
}

/// One component of a DescribeClientQuotas filter, as the request has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterComponent {
    /// The entity type.
    pub entity_type: String,
    /// [`MATCH_TYPE_EXACT`], [`MATCH_TYPE_DEFAULT`] or [`MATCH_TYPE_SPECIFIED`].
    pub match_type: i8,
    /// The name, for an exact match only.
    pub name: Option<String>,
}

/// The entities of `image` a DescribeClientQuotas filter selects, with
/// their quotas, in entity order. Each component must hold for the entity
/// (exact name, default, or any name of the type); with `strict`, the
/// entity has no other types. A malformed filter is INVALID_REQUEST, an
/// unknown entity type UNSUPPORTED_VERSION (Kafka's answers).
pub fn describe(
    image: &MetadataImage,
    components: &[FilterComponent],
    strict: bool,
) -> Result<Vec<(QuotaEntity, QuotaValues)>, ApiError> {
    // (type, Some(name) exact / None default, or any) per component.
    let mut wanted: Vec<(&str, Option<Option<&str>>)> = Vec::with_capacity(components.len());
    for c in components {
        let t = c.entity_type.as_str();
        if t.is_empty() {
            return Err(invalid("Invalid empty entity type."));
        }
        if wanted.iter().any(|(w, _)| *w == t) {
            return Err(invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            )));
        }
        if ![USER, CLIENT_ID, IP].contains(&t) {
            return Err(ApiError::new(
                code::UNSUPPORTED_VERSION,
                format!("Unsupported entity type {t}"),
            ));
        }
        let name = c.name.as_deref();
        let matcher = match c.match_type {
            MATCH_TYPE_EXACT => match name {
                Some(n) => Some(Some(n)),
                None => {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                    ));
                }
            },
            MATCH_TYPE_DEFAULT if name.is_none() => Some(None),
            MATCH_TYPE_SPECIFIED if name.is_none() => None,
            MATCH_TYPE_DEFAULT | MATCH_TYPE_SPECIFIED => {
                return Err(invalid(format!(
                    "Request specified match type {}, but also specified a match string.",
                    c.match_type
                )));
            }
            other => return Err(invalid(format!("Unknown match type {other}"))),
        };
        wanted.push((t, matcher));
    }
    let has = |t: &str| wanted.iter().any(|(w, _)| *w == t);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component.",
        ));
    }
    let selected = image
        .client_quotas
        .iter()
        .filter(|(entity, _)| {
            let all_hold = wanted.iter().all(|(t, matcher)| {
                entity
                    .iter()
                    .find(|(et, _)| et == t)
                    .is_some_and(|(_, name)| match matcher {
                        Some(want) => name.as_deref() == *want,
                        None => true,
                    })
            });
            all_hold && (!strict || entity.len() == wanted.len())
        })
        .map(|(entity, quotas)| (entity.clone(), quotas.clone()))
        .collect();
    Ok(selected)
}

/// The quota that applies to `user` with `client_id` for `key`, and the
/// entity it was set on, by Kafka's precedence (KIP-55): the most specific
/// entity first, user before client id, a named entity before its default.
pub fn resolve<'a>(
    image: &'a MetadataImage,
    user: &str,
    client_id: &str,
    key: &str,
) -> Option<(f64, &'a QuotaEntity)> {
    if image.client_quotas.is_empty() {
        return None;
    }
    let u = |n: Option<&str>| (USER.to_owned(), n.map(str::to_owned));
    let c = |n: Option<&str>| (CLIENT_ID.to_owned(), n.map(str::to_owned));
    // Sorted by type: "client-id" < "user".
    let order: [QuotaEntity; 8] = [
        vec![c(Some(client_id)), u(Some(user))],
        vec![c(None), u(Some(user))],
        vec![u(Some(user))],
        vec![c(Some(client_id)), u(None)],
        vec![c(None), u(None)],
        vec![u(None)],
        vec![c(Some(client_id))],
        vec![c(None)],
    ];
    order.iter().find_map(|entity| {
        image
            .client_quotas
            .get_key_value(entity)
            .and_then(|(e, quotas)| quotas.get(key).map(|v| (*v, e)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(parts: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        parts
            .iter()
            .map(|(t, n)| ((*t).to_owned(), n.map(str::to_owned)))
            .collect()
    }

    fn set(image: &mut MetadataImage, parts: &[(&str, Option<&str>)], key: &str, value: f64) {
        let mut entity = ent(parts);
        entity.sort();
        image
            .apply(
                &MetadataRecord::ClientQuota {
                    entity,
                    key: key.to_owned(),
                    value: Some(value),
                },
                0,
            )
            .expect("applies");
    }

    fn alter(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> QuotaAlteration {
        QuotaAlteration {
            entity: ent(entity),
            ops: ops.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }

    fn error_of(image: &MetadataImage, a: QuotaAlteration) -> ApiError {
        alterations(image, &[a])
            .pop()
            .expect("one result")
            .expect_err("refused")
    }

    #[test]
    fn precedence_follows_kafkas_eight_levels() {
        // Each level is added from least to most specific; after each, the
        // new level wins for (alice, app).
        let levels: [&[(&str, Option<&str>)]; 8] = [
            &[(CLIENT_ID, None)],
            &[(CLIENT_ID, Some("app"))],
            &[(USER, None)],
            &[(USER, None), (CLIENT_ID, None)],
            &[(USER, None), (CLIENT_ID, Some("app"))],
            &[(USER, Some("alice"))],
            &[(USER, Some("alice")), (CLIENT_ID, None)],
            &[(USER, Some("alice")), (CLIENT_ID, Some("app"))],
        ];
        let mut image = MetadataImage::default();
        assert!(resolve(&image, "alice", "app", PRODUCER_BYTE_RATE).is_none());
        for (i, level) in levels.iter().enumerate() {
            set(
                &mut image,
                level,
                PRODUCER_BYTE_RATE,
                (i + 1) as f64 * 100.0,
            );
            let (value, entity) =
                resolve(&image, "alice", "app", PRODUCER_BYTE_RATE).expect("a quota applies");
            assert_eq!(value, (i + 1) as f64 * 100.0, "level {i} wins");
            let mut want = ent(level);
            want.sort();
            assert_eq!(*entity, want);
        }
        // Another user with another client id falls back to the defaults.
        let (value, _) = resolve(&image, "bob", "other", PRODUCER_BYTE_RATE).expect("applies");
        assert_eq!(value, 400.0, "/users/<default>/clients/<default>");
        let (value, _) = resolve(&image, "bob", "app", PRODUCER_BYTE_RATE).expect("applies");
        assert_eq!(value, 500.0, "/users/<default>/clients/app");
        // Keys resolve independently: a consumer rate set only on the
        // client-id default applies although user entities exist.
        set(&mut image, &[(CLIENT_ID, None)], CONSUMER_BYTE_RATE, 7.0);
        assert_eq!(
            resolve(&image, "alice", "app", CONSUMER_BYTE_RATE).map(|(v, _)| v),
            Some(7.0)
        );
    }

    #[test]
    fn alterations_are_validated_as_kafka_does() {
        let image = MetadataImage::default();
        let cases = [
            (alter(&[], &[(PRODUCER_BYTE_RATE, Some(1.0))]), "empty"),
            (
                alter(&[(USER, Some("a")), (USER, Some("b"))], &[]),
                "duplicate entity entry",
            ),
            (alter(&[("group", Some("g"))], &[]), "Unhandled"),
            (alter(&[(USER, Some(""))], &[]), "Empty user"),
            (alter(&[(USER, Some("a")), (IP, None)], &[]), "combination"),
            (alter(&[(IP, Some("not an ip"))], &[]), "not a valid IP"),
            (
                alter(&[(USER, Some("a"))], &[("bogus", Some(1.0))]),
                "Invalid configuration key bogus",
            ),
            (
                alter(&[(IP, None)], &[(PRODUCER_BYTE_RATE, Some(1.0))]),
                "Invalid configuration key producer_byte_rate",
            ),
            (
                alter(
                    &[(CLIENT_ID, Some("c"))],
                    &[(CONNECTION_CREATION_RATE, Some(1.0))],
                ),
                "Invalid configuration key",
            ),
            (
                alter(
                    &[(CLIENT_ID, Some("c"))],
                    &[(PRODUCER_BYTE_RATE, Some(1.5))],
                ),
                "must be a Long value",
            ),
            (
                alter(
                    &[(CLIENT_ID, Some("c"))],
                    &[(PRODUCER_BYTE_RATE, Some(0.0))],
                ),
                "positive",
            ),
            (
                alter(
                    &[(CLIENT_ID, Some("c"))],
                    &[(REQUEST_PERCENTAGE, Some(f64::NAN))],
                ),
                "positive",
            ),
            (
                alter(
                    &[(CLIENT_ID, Some("c"))],
                    &[(PRODUCER_BYTE_RATE, Some(1.0)), (PRODUCER_BYTE_RATE, None)],
                ),
                "Duplicate quota key",
            ),
        ];
        for (a, words) in cases {
            let e = error_of(&image, a.clone());
            assert_eq!(e.code, code::INVALID_REQUEST, "{a:?}");
            assert!(e.message.contains(words), "{a:?}: {}", e.message);
        }
        // A double key takes fractions; a long key takes whole doubles.
        let ok = alterations(
            &image,
            &[alter(
                &[(USER, Some("a")), (CLIENT_ID, None)],
                &[
                    (REQUEST_PERCENTAGE, Some(12.5)),
                    (PRODUCER_BYTE_RATE, Some(1024.0)),
                ],
            )],
        );
        assert_eq!(ok[0].as_ref().expect("valid").len(), 2);
        // The same entity twice in one request: the second is refused.
        let twice = alterations(
            &image,
            &[
                alter(&[(USER, Some("a"))], &[(PRODUCER_BYTE_RATE, Some(1.0))]),
                alter(&[(USER, Some("a"))], &[(CONSUMER_BYTE_RATE, Some(1.0))]),
            ],
        );
        assert!(twice[0].is_ok());
        assert!(
            twice[1]
                .as_ref()
                .is_err_and(|e| e.message.contains("duplicate entity"))
        );
    }

    #[test]
    fn only_changes_make_records_and_removal_empties_the_entity() {
        let mut image = MetadataImage::default();
        set(
            &mut image,
            &[(CLIENT_ID, Some("c"))],
            PRODUCER_BYTE_RATE,
            100.0,
        );
        let a = |ops: &[(&str, Option<f64>)]| {
            alterations(&image, &[alter(&[(CLIENT_ID, Some("c"))], ops)])
                .pop()
                .expect("one")
                .expect("valid")
        };
        assert!(
            a(&[(PRODUCER_BYTE_RATE, Some(100.0))]).is_empty(),
            "unchanged"
        );
        assert!(
            a(&[(CONSUMER_BYTE_RATE, None)]).is_empty(),
            "absent key removed"
        );
        let removal = a(&[(PRODUCER_BYTE_RATE, None)]);
        assert_eq!(removal.len(), 1);
        image.apply(&removal[0], 1).expect("applies");
        assert!(image.client_quotas.is_empty(), "no empty entity is kept");
    }

    #[test]
    fn describe_filters_by_match_type_and_strictness() {
        let mut image = MetadataImage::default();
        set(
            &mut image,
            &[(USER, Some("alice"))],
            PRODUCER_BYTE_RATE,
            1.0,
        );
        set(&mut image, &[(USER, None)], PRODUCER_BYTE_RATE, 2.0);
        set(
            &mut image,
            &[(USER, Some("alice")), (CLIENT_ID, Some("app"))],
            PRODUCER_BYTE_RATE,
            3.0,
        );
        set(&mut image, &[(CLIENT_ID, None)], PRODUCER_BYTE_RATE, 4.0);
        set(
            &mut image,
            &[(IP, Some("10.0.0.1"))],
            CONNECTION_CREATION_RATE,
            5.0,
        );
        let f = |t: &str, m: i8, n: Option<&str>| FilterComponent {
            entity_type: t.to_owned(),
            match_type: m,
            name: n.map(str::to_owned),
        };
        let values = |components: &[FilterComponent], strict: bool| -> Vec<f64> {
            let mut v: Vec<f64> = describe(&image, components, strict)
                .expect("valid filter")
                .iter()
                .flat_map(|(_, q)| q.values().copied())
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        assert_eq!(values(&[], false), [1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(values(&[], true).is_empty());
        let exact_alice = f(USER, MATCH_TYPE_EXACT, Some("alice"));
        assert_eq!(
            values(std::slice::from_ref(&exact_alice), false),
            [1.0, 3.0]
        );
        assert_eq!(values(std::slice::from_ref(&exact_alice), true), [1.0]);
        assert_eq!(values(&[f(USER, MATCH_TYPE_DEFAULT, None)], true), [2.0]);
        assert_eq!(
            values(&[f(USER, MATCH_TYPE_SPECIFIED, None)], true),
            [1.0, 2.0]
        );
        assert_eq!(
            values(
                &[
                    f(USER, MATCH_TYPE_SPECIFIED, None),
                    f(CLIENT_ID, MATCH_TYPE_SPECIFIED, None)
                ],
                true
            ),
            [3.0]
        );
        assert_eq!(
            values(&[f(CLIENT_ID, MATCH_TYPE_DEFAULT, None)], false),
            [4.0]
        );
        assert_eq!(values(&[f(IP, MATCH_TYPE_SPECIFIED, None)], false), [5.0]);

        let refused = |components: &[FilterComponent]| {
            describe(&image, components, false).expect_err("refused")
        };
        assert_eq!(
            refused(&[f(USER, MATCH_TYPE_EXACT, None)]).code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refused(&[f(USER, MATCH_TYPE_DEFAULT, Some("x"))]).code,
            code::INVALID_REQUEST
        );
        assert_eq!(refused(&[f(USER, 9, None)]).code, code::INVALID_REQUEST);
        assert_eq!(
            refused(&[exact_alice.clone(), exact_alice]).code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refused(&[
                f(IP, MATCH_TYPE_SPECIFIED, None),
                f(USER, MATCH_TYPE_SPECIFIED, None)
            ])
            .code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refused(&[f("", MATCH_TYPE_SPECIFIED, None)]).code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            refused(&[f("group", MATCH_TYPE_SPECIFIED, None)]).code,
            code::UNSUPPORTED_VERSION
        );
    }
}
