//! The registry's rules over a [`State`], and the whole registry over a real
//! metadata log, controller and replica manager in a temp dir.

use std::sync::Arc;

use sluice_schema::{CompatibilityLevel, SchemaType};

use super::*;
use crate::state::{Record, parse_level};

const USER_V1: &str =
    r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;
/// Adds a field with a default: backward compatible.
const USER_V2: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":0}]}"#;
/// Adds a field without a default: not backward compatible.
const USER_BAD: &str = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"email","type":"string"}]}"#;

fn avro(text: &str) -> NewSchema {
    NewSchema {
        schema_type: SchemaType::Avro,
        text: text.to_owned(),
        references: Vec::new(),
    }
}

fn apply_all(state: &mut State, records: &[Record]) {
    for (key, value) in records {
        state.apply(key, value.as_deref());
    }
}

/// Registers through the plan, as the registry does; returns the id.
fn register(state: &mut State, subject: &str, schema: &NewSchema) -> Result<i32, RegistryError> {
    register_with(state, subject, schema, RegisterOptions::default())
}

fn register_with(
    state: &mut State,
    subject: &str,
    schema: &NewSchema,
    options: RegisterOptions,
) -> Result<i32, RegistryError> {
    match state.plan_register(subject, schema, options)? {
        RegisterPlan::Existing(id) => Ok(id),
        RegisterPlan::Write { id, records } => {
            apply_all(state, &records);
            Ok(id)
        }
    }
}

fn delete_version(
    state: &mut State,
    subject: &str,
    version: i32,
    permanent: bool,
) -> Result<i32, RegistryError> {
    let (v, records) =
        state.plan_delete_version(subject, VersionSpec::Number(version), permanent)?;
    apply_all(state, &records);
    Ok(v)
}

fn delete_subject(
    state: &mut State,
    subject: &str,
    permanent: bool,
) -> Result<Vec<i32>, RegistryError> {
    let (versions, records) = state.plan_delete_subject(subject, permanent)?;
    apply_all(state, &records);
    Ok(versions)
}

#[test]
fn ids_are_global_by_content_and_versions_count_per_subject() {
    let mut s = State::new();
    assert_eq!(register(&mut s, "a-value", &avro(USER_V1)), Ok(1));
    // The same schema again, with other whitespace: the same id, no new version.
    let spaced = USER_V1.replace(',', " , ");
    assert_eq!(register(&mut s, "a-value", &avro(&spaced)), Ok(1));
    assert_eq!(s.versions("a-value", false), Ok(vec![1]));
    assert_eq!(register(&mut s, "a-value", &avro(USER_V2)), Ok(2));
    // Another subject with a known schema reuses its id, at version 1.
    assert_eq!(register(&mut s, "b-value", &avro(USER_V2)), Ok(2));
    let b = s.version("b-value", VersionSpec::Latest, false).expect("b");
    assert_eq!((b.version, b.id), (1, 2));
    assert_eq!(s.subjects(false, ""), vec!["a-value", "b-value"]);
    assert_eq!(s.subjects(false, "b"), vec!["b-value"]);
    assert_eq!(
        s.versions_of_id(2, false).expect("id 2"),
        vec![("a-value".to_owned(), 2), ("b-value".to_owned(), 1)]
    );
}

#[test]
fn an_incompatible_schema_is_refused_with_the_reason_and_none_lets_it_through() {
    let mut s = State::new();
    register(&mut s, "t-value", &avro(USER_V1)).expect("v1");
    let err = register(&mut s, "t-value", &avro(USER_BAD)).expect_err("incompatible");
    assert_eq!(err.error_code(), 409);
    assert!(err.to_string().contains("email"), "{err}");
    // The check endpoint agrees, without writing.
    let check = s
        .check_compatibility("t-value", &avro(USER_BAD), Some(VersionSpec::Latest))
        .expect("check");
    assert!(!check.is_compatible && !check.messages.is_empty());
    let records = s
        .plan_set_level(Some("t-value"), Some(CompatibilityLevel::None))
        .expect("level");
    apply_all(&mut s, &records);
    assert_eq!(register(&mut s, "t-value", &avro(USER_BAD)), Ok(2));
    assert_eq!(s.level(None, false), Ok(CompatibilityLevel::Backward));
    assert_eq!(
        s.level(Some("t-value"), false),
        Ok(CompatibilityLevel::None)
    );
    assert_eq!(
        s.level(Some("other"), false).map_err(|e| e.error_code()),
        Err(40408)
    );
    assert_eq!(
        s.level(Some("other"), true),
        Ok(CompatibilityLevel::Backward)
    );
}

#[test]
fn deletes_go_soft_then_permanent_with_confluents_codes() {
    let mut s = State::new();
    register(&mut s, "d", &avro(USER_V1)).expect("v1");
    register(&mut s, "d", &avro(USER_V2)).expect("v2");
    let code = |r: Result<i32, RegistryError>| r.map_err(|e| e.error_code());
    assert_eq!(code(delete_version(&mut s, "d", 1, true)), Err(40407));
    assert_eq!(code(delete_version(&mut s, "d", 1, false)), Ok(1));
    assert_eq!(code(delete_version(&mut s, "d", 1, false)), Err(40402));
    assert_eq!(s.versions("d", false), Ok(vec![2]));
    assert_eq!(s.versions("d", true), Ok(vec![1, 2]));
    let deleted = s
        .version("d", VersionSpec::Number(1), true)
        .expect("deleted");
    assert!(deleted.deleted);
    assert_eq!(code(delete_version(&mut s, "d", 1, true)), Ok(1));
    assert_eq!(s.versions("d", true), Ok(vec![2]));

    assert_eq!(
        delete_subject(&mut s, "d", true).map_err(|e| e.error_code()),
        Err(40405)
    );
    assert_eq!(delete_subject(&mut s, "d", false), Ok(vec![2]));
    assert_eq!(
        delete_subject(&mut s, "d", false).map_err(|e| e.error_code()),
        Err(40404)
    );
    assert_eq!(
        s.versions("d", false).map_err(|e| e.error_code()),
        Err(40401)
    );
    assert_eq!(s.subjects(true, ""), vec!["d"]);
    assert_eq!(delete_subject(&mut s, "d", true), Ok(vec![2]));
    assert!(s.subjects(true, "").is_empty());
    assert_eq!(
        s.schema(2).map_err(|e| e.error_code()),
        Err(40403),
        "a schema no version holds is gone"
    );
}

#[test]
fn ids_are_never_reused_after_a_permanent_delete() {
    let mut s = State::new();
    assert_eq!(register(&mut s, "x", &avro(USER_V1)), Ok(1));
    delete_subject(&mut s, "x", false).expect("soft");
    delete_subject(&mut s, "x", true).expect("hard");
    assert_eq!(register(&mut s, "y", &avro(r#""string""#)), Ok(2));
    // The deleted content comes back under a new id.
    assert_eq!(register(&mut s, "x", &avro(USER_V1)), Ok(3));
    // A soft-deleted schema registered again keeps its id, as a new version.
    delete_version(&mut s, "x", 1, false).expect("soft");
    assert_eq!(register(&mut s, "x", &avro(USER_V1)), Ok(3));
    assert_eq!(s.versions("x", true), Ok(vec![1, 2]));
}

#[test]
fn references_resolve_and_protect_what_they_reference() {
    let mut s = State::new();
    let address = r#"{"type":"record","name":"Address","namespace":"io.x","fields":[{"name":"city","type":"string"}]}"#;
    register(&mut s, "address", &avro(address)).expect("address");
    let person = NewSchema {
        schema_type: SchemaType::Avro,
        text: r#"{"type":"record","name":"Person","namespace":"io.x","fields":[{"name":"home","type":"io.x.Address"}]}"#.into(),
        references: vec![SchemaReference {
            name: "io.x.Address".into(),
            subject: "address".into(),
            version: 1,
        }],
    };
    assert_eq!(register(&mut s, "person", &person), Ok(2));
    assert_eq!(s.referenced_by("address", 1), vec![2]);
    assert_eq!(
        delete_version(&mut s, "address", 1, false).map_err(|e| e.error_code()),
        Err(42206)
    );
    let dangling = NewSchema {
        references: vec![SchemaReference {
            name: "io.x.Address".into(),
            subject: "address".into(),
            version: 9,
        }],
        ..person.clone()
    };
    assert_eq!(
        register(&mut s, "person2", &dangling).map_err(|e| e.error_code()),
        Err(42201)
    );
}

#[test]
fn modes_gate_writes_and_import_keeps_the_given_id_and_version() {
    let mut s = State::new();
    let records = s
        .plan_set_mode(None, Some(Mode::Import), false)
        .expect("empty");
    apply_all(&mut s, &records);
    let options = RegisterOptions {
        id: Some(100),
        version: Some(5),
        ..RegisterOptions::default()
    };
    assert_eq!(
        register_with(&mut s, "imp", &avro(USER_V1), options),
        Ok(100)
    );
    let v = s
        .version("imp", VersionSpec::Latest, false)
        .expect("imported");
    assert_eq!((v.id, v.version), (100, 5));
    // The id holds other content: refused.
    assert_eq!(
        register_with(&mut s, "imp2", &avro(USER_V2), options).map_err(|e| e.error_code()),
        Err(42207)
    );
    // IMPORT over a non-empty registry needs force.
    assert_eq!(
        s.plan_set_mode(None, Some(Mode::Import), false)
            .map_err(|e| e.error_code()),
        Err(42205)
    );
    let records = s
        .plan_set_mode(None, Some(Mode::ReadOnly), false)
        .expect("ro");
    apply_all(&mut s, &records);
    assert_eq!(
        register(&mut s, "imp", &avro(USER_V2)).map_err(|e| e.error_code()),
        Err(42205)
    );
    let records = s
        .plan_set_mode(None, Some(Mode::ReadWrite), false)
        .expect("rw");
    apply_all(&mut s, &records);
    // New ids continue above the imported one.
    assert_eq!(register(&mut s, "imp", &avro(USER_V2)), Ok(101));
    assert_eq!(
        register_with(&mut s, "imp", &avro(r#""int""#), options).map_err(|e| e.error_code()),
        Err(42205),
        "ids are given only in IMPORT mode"
    );
}

#[test]
fn lookup_finds_a_version_by_content() {
    let mut s = State::new();
    register(&mut s, "l", &avro(USER_V1)).expect("v1");
    register(&mut s, "l", &avro(USER_V2)).expect("v2");
    let found = s
        .lookup("l", &avro(&USER_V1.replace(':', " : ")), false)
        .expect("found");
    assert_eq!((found.version, found.id), (1, 1));
    assert_eq!(
        s.lookup("l", &avro(r#""int""#), false)
            .map_err(|e| e.error_code()),
        Err(40403)
    );
    assert_eq!(
        s.lookup("nope", &avro(USER_V1), false)
            .map_err(|e| e.error_code()),
        Err(40401)
    );
    assert_eq!(
        s.lookup("l", &avro("{not json"), false)
            .map_err(|e| e.error_code()),
        Err(42201)
    );
}

#[test]
fn records_that_break_an_invariant_are_skipped() {
    let mut s = State::new();
    let key = Key::Schema {
        subject: "s".into(),
        version: 1,
    };
    // Garbage, a value for another key, a bad id, an unknown type.
    for value in [
        &b"not json"[..],
        br#"{"subject":"other","version":1,"id":1,"schema":"\"int\""}"#,
        br#"{"subject":"s","version":1,"id":0,"schema":"\"int\""}"#,
        br#"{"subject":"s","version":1,"id":1,"schemaType":"XML","schema":"<a/>"}"#,
    ] {
        s.apply(&key, Some(value));
    }
    assert!(s.subjects(true, "").is_empty());
    s.apply(
        &Key::Config { subject: None },
        Some(br#"{"compatibilityLevel":"SIDEWAYS"}"#),
    );
    assert_eq!(s.level(None, false), Ok(CompatibilityLevel::Backward));
    // A tombstone for something unknown is a no-op.
    s.apply(&key, None);
    assert_eq!(register(&mut s, "s", &avro(r#""int""#)), Ok(1));
}

#[test]
fn names_and_versions_are_checked() {
    assert_eq!(VersionSpec::parse("latest"), Ok(VersionSpec::Latest));
    assert_eq!(VersionSpec::parse("-1"), Ok(VersionSpec::Latest));
    assert_eq!(VersionSpec::parse("7"), Ok(VersionSpec::Number(7)));
    for bad in ["0", "-2", "x", "99999999999"] {
        assert_eq!(
            VersionSpec::parse(bad).map_err(|e| e.error_code()),
            Err(42202),
            "{bad}"
        );
    }
    assert_eq!(
        parse_level("full_transitive"),
        Ok(CompatibilityLevel::FullTransitive)
    );
    assert_eq!(
        parse_level("sideways").map_err(|e| e.error_code()),
        Err(42203)
    );
    assert_eq!(Mode::parse("readonly"), Ok(Mode::ReadOnly));
    let mut s = State::new();
    for bad in [
        String::new(),
        "a\nb".into(),
        "x".repeat(state::MAX_SUBJECT_BYTES + 1),
    ] {
        assert_eq!(
            register(&mut s, &bad, &avro(USER_V1)).map_err(|e| e.error_code()),
            Err(42208)
        );
    }
}

// -- the registry over a real partition ----------------------------------

mod node {
    use std::path::Path;
    use std::sync::Arc;

    use sluice_metadata::controller::ControllerConfig;
    use sluice_metadata::{Controller, LocalMetadataLog, MetadataListener, MetadataLog};
    use sluice_replica::ReplicaManager;

    use crate::Registry;

    pub const NODE_ID: i32 = 1;

    /// A single node over `dir`: metadata log, controller, replicas, registry.
    pub fn registry_in(dir: &Path) -> (Arc<Registry>, Arc<ReplicaManager>) {
        let metadata = Arc::new(LocalMetadataLog::open(dir).expect("metadata"));
        let log_defaults = sluice_metadata::config::LogDefaults::default();
        let replicas = Arc::new(ReplicaManager::new(dir, log_defaults.clone(), NODE_ID));
        replicas
            .sync_with(&metadata.image(), true)
            .expect("replicas");
        let controller = Arc::new(Controller::new(
            Arc::clone(&metadata) as Arc<dyn MetadataLog>,
            vec![Arc::clone(&replicas) as Arc<dyn MetadataListener>],
            ControllerConfig {
                node_id: NODE_ID,
                topics: Default::default(),
                log: log_defaults,
                internal_topics: Default::default(),
            },
        ));
        (Registry::new(controller, Arc::clone(&replicas)), replicas)
    }
}

async fn register_in(
    registry: &Arc<Registry>,
    subject: &str,
    text: &str,
) -> Result<i32, RegistryError> {
    registry
        .register(subject.to_owned(), avro(text), RegisterOptions::default())
        .await
}

#[tokio::test]
async fn writes_land_in_schemas_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (registry, replicas) = node::registry_in(dir.path());
        // Reads before any write: an empty registry, no topic created.
        let subjects = registry.read(|s| Ok(s.subjects(true, ""))).await;
        assert_eq!(subjects, Ok(Vec::new()));
        assert!(replicas.partition(SCHEMAS_TOPIC, 0).is_none());

        assert_eq!(register_in(&registry, "orders-value", USER_V1).await, Ok(1));
        // Read-your-writes: the answer came after the record was applied.
        let latest = registry
            .read(|s| s.version("orders-value", VersionSpec::Latest, false))
            .await
            .expect("latest");
        assert_eq!((latest.id, latest.version), (1, 1));
        assert_eq!(register_in(&registry, "orders-value", USER_V2).await, Ok(2));
        assert_eq!(
            register_in(&registry, "orders-value", USER_BAD)
                .await
                .map_err(|e| e.error_code()),
            Err(409)
        );
        // The already-registered answer writes nothing.
        let partition = replicas.partition(SCHEMAS_TOPIC, 0).expect("hosted");
        let end = partition.log().log_end_offset();
        assert_eq!(register_in(&registry, "orders-value", USER_V1).await, Ok(1));
        assert_eq!(partition.log().log_end_offset(), end);
        registry
            .write(|s| {
                let (v, records) =
                    s.plan_delete_version("orders-value", VersionSpec::Number(1), false)?;
                Ok((v, records))
            })
            .await
            .expect("soft delete");
        replicas.flush_all().expect("flush");
    }
    // A new process over the same data dir replays `_schemas`.
    let (registry, _replicas) = node::registry_in(dir.path());
    let versions = registry.read(|s| s.versions("orders-value", true)).await;
    assert_eq!(versions, Ok(vec![1, 2]));
    let live = registry.read(|s| s.versions("orders-value", false)).await;
    assert_eq!(live, Ok(vec![2]));
    let schema = registry.read(|s| s.schema(2)).await.expect("id 2");
    assert_eq!(schema.text, USER_V2);
    // Ids continue after the replayed ones.
    assert_eq!(register_in(&registry, "other", r#""string""#).await, Ok(3));
}

#[tokio::test]
async fn records_are_written_in_confluents_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (registry, replicas) = node::registry_in(dir.path());
    register_in(&registry, "fmt-value", r#""string""#)
        .await
        .expect("register");
    let partition: Arc<sluice_replica::Partition> =
        replicas.partition(SCHEMAS_TOPIC, 0).expect("hosted");
    let read = partition
        .log()
        .read(0, 1 << 20, partition.high_watermark())
        .expect("read");
    let bytes = read.to_bytes().expect("bytes");
    let batch = match sluice_records::Batches::new(&bytes).next() {
        Some(sluice_records::NextBatch::Complete {
            position, header, ..
        }) => bytes.slice(position..position + header.total_size()),
        other => panic!("no batch: {other:?}"),
    };
    let records = sluice_records::decode_records(&batch).expect("decode");
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].key.as_deref(),
        Some(&br#"{"keytype":"SCHEMA","subject":"fmt-value","version":1,"magic":1}"#[..])
    );
    let value: serde_json::Value =
        serde_json::from_slice(records[0].value.as_deref().expect("value")).expect("json");
    assert_eq!(
        value,
        serde_json::json!({"subject":"fmt-value","version":1,"id":1,"schema":"\"string\"","deleted":false})
    );
}

fn record(value: Option<Vec<u8>>) -> sluice_records::Record {
    sluice_records::Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: None,
        value: value.map(bytes::Bytes::from),
        headers: Vec::new(),
    }
}

fn framed(id: i32, rest: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(rest);
    out
}

#[tokio::test]
async fn validation_checks_the_magic_byte_the_id_and_the_subject_of_each_strategy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (registry, _replicas) = node::registry_in(dir.path());
    let by_topic = register_in(&registry, "orders-value", USER_V1)
        .await
        .expect("topic");
    let by_record = register_in(
        &registry,
        "User",
        r#"{"type":"record","name":"User","fields":[{"name":"x","type":"long"}]}"#,
    )
    .await
    .expect("record");
    let topic_rules = TopicRules {
        key: None,
        value: Some(SubjectStrategy::TopicName),
    };
    let records = [
        record(Some(framed(by_topic, b"data"))),
        record(None),
        record(Some(b"plain text".to_vec())),
        record(Some(framed(999, b""))),
        record(Some(framed(by_record, b""))),
        record(Some(vec![0, 0, 0])),
    ];
    let refused = registry.validate_records("orders", topic_rules, &records);
    let indexes: Vec<i32> = refused.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![2, 3, 4, 5], "{refused:?}");
    assert!(refused[0].1.contains("wire format"), "{refused:?}");
    assert!(
        refused[1].1.contains("999 is not registered"),
        "{refused:?}"
    );
    assert!(refused[2].1.contains("subject orders-value"), "{refused:?}");

    let record_rules = TopicRules {
        key: None,
        value: Some(SubjectStrategy::RecordName),
    };
    let ok = [record(Some(framed(by_record, b"")))];
    assert!(
        registry
            .validate_records("any", record_rules, &ok)
            .is_empty()
    );
    let refused =
        registry.validate_records("any", record_rules, &[record(Some(framed(by_topic, b"")))]);
    assert!(refused[0].1.contains("subject User"), "{refused:?}");

    // Keys are checked the same way when asked.
    let key_rules = TopicRules {
        key: Some(SubjectStrategy::TopicName),
        value: None,
    };
    let mut keyed = record(None);
    keyed.key = Some(bytes::Bytes::from_static(b"k"));
    let refused = registry.validate_records("orders", key_rules, &[keyed]);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].1.contains("the key"), "{refused:?}");
}

fn record_schema(name: &str) -> NewSchema {
    avro(&format!(
        r#"{{"type":"record","name":"{name}","fields":[{{"name":"x","type":"int"}}]}}"#
    ))
}

/// A state with `limits` and compatibility NONE, so any schema may follow
/// any other.
fn limited(limits: crate::state::Limits) -> State {
    let mut s = State::with_limits(limits);
    let records = s
        .plan_set_level(None, Some(CompatibilityLevel::None))
        .expect("a level");
    apply_all(&mut s, &records);
    s
}

fn is_limit(result: Result<i32, RegistryError>) -> bool {
    matches!(&result, Err(e @ RegistryError::LimitReached(_)) if e.error_code() == 42299)
}

#[test]
fn each_count_bound_refuses_with_42299_and_frees_room_on_permanent_delete() {
    use crate::state::Limits;
    let none = RegisterOptions::default();

    // Subjects.
    let open = Limits {
        subjects: 3,
        ..Limits::default()
    };
    let mut s = limited(open);
    for i in 0..3 {
        register(&mut s, &format!("s{i}-value"), &record_schema("A")).expect("room");
    }
    assert!(is_limit(register(&mut s, "s3-value", &record_schema("A"))));
    // An existing subject still takes new versions.
    register_with(&mut s, "s0-value", &record_schema("B"), none).expect("an existing subject");
    delete_subject(&mut s, "s1-value", false).expect("soft");
    assert!(
        is_limit(register(&mut s, "s3-value", &record_schema("A"))),
        "a soft-deleted subject still counts"
    );
    delete_subject(&mut s, "s1-value", true).expect("permanent");
    register(&mut s, "s3-value", &record_schema("A")).expect("room after a permanent delete");

    // Versions per subject (soft-deleted ones count).
    let open = Limits {
        versions_per_subject: 2,
        ..Limits::default()
    };
    let mut s = limited(open);
    register(&mut s, "v-value", &record_schema("A")).expect("v1");
    register(&mut s, "v-value", &record_schema("B")).expect("v2");
    assert!(is_limit(register(&mut s, "v-value", &record_schema("C"))));
    delete_version(&mut s, "v-value", 1, false).expect("soft");
    assert!(is_limit(register(&mut s, "v-value", &record_schema("C"))));
    delete_version(&mut s, "v-value", 1, true).expect("permanent");
    register(&mut s, "v-value", &record_schema("C")).expect("room again");

    // Schemas (distinct contents) and their text.
    let open = Limits {
        schemas: 2,
        ..Limits::default()
    };
    let mut s = limited(open);
    register(&mut s, "a-value", &record_schema("A")).expect("1");
    register(&mut s, "b-value", &record_schema("B")).expect("2");
    assert!(is_limit(register(&mut s, "c-value", &record_schema("C"))));
    // The same content under another subject needs no new id.
    register(&mut s, "c-value", &record_schema("A")).expect("an existing id");

    let open = Limits {
        schema_text_bytes: record_schema("A").text.len() * 2,
        ..Limits::default()
    };
    let mut s = limited(open);
    register(&mut s, "a-value", &record_schema("A")).expect("1");
    register(&mut s, "b-value", &record_schema("B")).expect("2");
    assert!(is_limit(register(&mut s, "c-value", &record_schema("C"))));
}

#[test]
fn a_replay_past_a_bound_skips_the_records_beyond_it() {
    use crate::state::Limits;
    // Records another tool wrote to `_schemas` past our bound: applied up to
    // the bound, the rest skipped (and logged), never a crash.
    let mut source = State::new();
    let mut records = Vec::new();
    for i in 0..5 {
        let name = format!("R{i}");
        match source
            .plan_register(
                &format!("s{i}-value"),
                &record_schema(&name),
                RegisterOptions::default(),
            )
            .expect("plans")
        {
            RegisterPlan::Write { records: r, .. } => {
                apply_all(&mut source, &r);
                records.extend(r);
            }
            RegisterPlan::Existing(_) => panic!("new content"),
        }
    }
    let open = Limits {
        schemas: 3,
        ..Limits::default()
    };
    let mut replayed = limited(open);
    apply_all(&mut replayed, &records);
    assert_eq!(replayed.schemas().count(), 3);
    assert_eq!(replayed.subjects(false, "").len(), 3);
}
