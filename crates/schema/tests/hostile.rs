//! Hostile input: every bound answers with its typed error, quickly, and
//! random text never panics.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice_schema::{
    CompatibilityLevel, MAX_DEFINITIONS, MAX_FIELDS, MAX_NESTING_DEPTH, MAX_SCHEMA_BYTES,
    ParsedSchema, Reference, SchemaError, SchemaType, check,
};

const ALL_TYPES: [SchemaType; 3] = [SchemaType::Avro, SchemaType::Json, SchemaType::Protobuf];

fn parse(schema_type: SchemaType, text: &str) -> Result<ParsedSchema, SchemaError> {
    ParsedSchema::parse_standalone(schema_type, text)
}

#[test]
fn a_schema_over_one_mebibyte_is_too_large() {
    let huge = format!(
        "{{\"type\":\"string\",\"doc\":\"{}\"}}",
        "x".repeat(MAX_SCHEMA_BYTES)
    );
    for t in ALL_TYPES {
        assert!(
            matches!(parse(t, &huge), Err(SchemaError::TooLarge { .. })),
            "{t}"
        );
    }
}

#[test]
fn ten_thousand_nested_json_arrays_are_too_deep() {
    let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for t in [SchemaType::Avro, SchemaType::Json] {
        assert!(
            matches!(parse(t, &text), Err(SchemaError::TooDeep { .. })),
            "{t}"
        );
    }
}

#[test]
fn ten_thousand_nested_avro_arrays_and_records_are_too_deep() {
    let arrays = format!(
        "{}\"int\"{}",
        r#"{"type":"array","items":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    assert!(matches!(
        parse(SchemaType::Avro, &arrays),
        Err(SchemaError::TooDeep { .. })
    ));
    // Built linearly; names need not be unique, the depth scan runs first.
    let records = format!(
        "{}\"int\"{}",
        r#"{"type":"record","name":"R","fields":[{"name":"f","type":"#.repeat(10_000),
        "}]}".repeat(10_000)
    );
    assert!(matches!(
        parse(SchemaType::Avro, &records),
        Err(SchemaError::TooDeep { .. })
    ));
}

#[test]
fn ten_thousand_nested_json_schemas_are_too_deep() {
    let text = format!(
        "{}{{}}{}",
        r#"{"items":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    assert!(matches!(
        parse(SchemaType::Json, &text),
        Err(SchemaError::TooDeep { .. })
    ));
}

#[test]
fn ten_thousand_nested_protobuf_messages_are_too_deep() {
    let text = format!(
        "syntax = \"proto3\";{}{}",
        (0..10_000)
            .map(|i| format!("message M{i} {{"))
            .collect::<String>(),
        "}".repeat(10_000)
    );
    assert!(matches!(
        parse(SchemaType::Protobuf, &text),
        Err(SchemaError::TooDeep { .. })
    ));
}

#[test]
fn nesting_just_inside_the_limit_parses() {
    // Each Avro record level costs three brackets.
    let mut records = String::from("\"int\"");
    for i in 0..(MAX_NESTING_DEPTH / 3) {
        records = format!(
            r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":{records}}}]}}"#
        );
    }
    assert!(parse(SchemaType::Avro, &records).is_ok());
    // protox refuses messages nested more than 31 deep itself (as protoc
    // does), with a parse error; our bracket bound sits above that.
    let nested = |depth: usize| {
        format!(
            "syntax = \"proto3\";{}{}",
            (0..depth)
                .map(|i| format!("message M{i} {{"))
                .collect::<String>(),
            "}".repeat(depth)
        )
    };
    assert!(parse(SchemaType::Protobuf, &nested(31)).is_ok());
    assert!(matches!(
        parse(SchemaType::Protobuf, &nested(MAX_NESTING_DEPTH)),
        Err(SchemaError::InvalidProtobuf { .. })
    ));
}

#[test]
fn too_many_fields_is_a_typed_error() {
    let n = MAX_FIELDS + 1;
    let json_props: Vec<String> = (0..n).map(|i| format!("\"p{i}\":{{}}")).collect();
    let json = format!("{{\"properties\":{{{}}}}}", json_props.join(","));
    assert!(matches!(
        parse(SchemaType::Json, &json),
        Err(SchemaError::TooManyFields { .. })
    ));

    let avro_fields: Vec<String> = (0..n)
        .map(|i| format!("{{\"name\":\"f{i}\",\"type\":\"int\"}}"))
        .collect();
    let avro = format!(
        "{{\"type\":\"record\",\"name\":\"R\",\"fields\":[{}]}}",
        avro_fields.join(",")
    );
    assert!(matches!(
        parse(SchemaType::Avro, &avro),
        Err(SchemaError::TooManyFields { .. })
    ));

    let proto_fields: String = (1..=n).map(|i| format!("int32 f{i} = {i};")).collect();
    let proto = format!("syntax = \"proto3\"; message M {{ {proto_fields} }}");
    assert!(matches!(
        parse(SchemaType::Protobuf, &proto),
        Err(SchemaError::TooManyFields { .. })
    ));
}

#[test]
fn too_many_named_types_is_a_typed_error() {
    let n = MAX_DEFINITIONS + 1;
    let messages: String = (0..n).map(|i| format!("message M{i} {{}}")).collect();
    let proto = format!("syntax = \"proto3\"; {messages}");
    assert!(matches!(
        parse(SchemaType::Protobuf, &proto),
        Err(SchemaError::TooManyDefinitions { .. })
    ));

    let enums: Vec<String> = (0..n)
        .map(|i| format!("{{\"name\":\"f{i}\",\"type\":{{\"type\":\"enum\",\"name\":\"E{i}\",\"symbols\":[\"A\"]}}}}"))
        .collect();
    let avro = format!(
        "{{\"type\":\"record\",\"name\":\"R\",\"fields\":[{}]}}",
        enums.join(",")
    );
    assert!(matches!(
        parse(SchemaType::Avro, &avro),
        Err(SchemaError::TooManyDefinitions { .. })
    ));
}

#[test]
fn a_union_wider_than_the_limit_is_a_typed_error() {
    let branches: Vec<String> = (0..=sluice_schema::MAX_UNION_BRANCHES)
        .map(|i| format!("{{\"type\":\"record\",\"name\":\"R{i}\",\"fields\":[]}}"))
        .collect();
    let text = format!("[{}]", branches.join(","));
    assert!(matches!(
        parse(SchemaType::Avro, &text),
        Err(SchemaError::TooManyUnionBranches { .. })
    ));
}

fn cyclic(schema_type: SchemaType, a_text: &str, b_text: &str) -> BTreeMap<String, Reference> {
    let mut refs = BTreeMap::new();
    for (name, text, next) in [("a", a_text, "b"), ("b", b_text, "a")] {
        refs.insert(
            name.to_owned(),
            Reference {
                name: name.to_owned(),
                schema_type,
                text: text.to_owned(),
                references: vec![next.to_owned()],
            },
        );
    }
    refs
}

#[test]
fn a_reference_cycle_is_a_typed_error() {
    let cases = [
        (SchemaType::Json, "{}", "{}", "{}"),
        (
            SchemaType::Avro,
            r#"{"type":"record","name":"A","fields":[]}"#,
            r#"{"type":"record","name":"B","fields":[]}"#,
            r#""string""#,
        ),
        (
            SchemaType::Protobuf,
            "syntax = \"proto3\"; import \"b\";",
            "syntax = \"proto3\"; import \"a\";",
            "syntax = \"proto3\"; import \"a\";",
        ),
    ];
    for (t, a, b, root) in cases {
        let refs = cyclic(t, a, b);
        let got = ParsedSchema::parse(t, root, &["a".to_owned()], &refs);
        assert!(
            matches!(got, Err(SchemaError::ReferenceCycle { .. })),
            "{t}: {got:?}"
        );
    }
}

#[test]
fn avro_named_types_resolve_through_references() {
    let mut refs = BTreeMap::new();
    refs.insert(
        "com.acme.Address".to_owned(),
        Reference {
            name: "com.acme.Address".to_owned(),
            schema_type: SchemaType::Avro,
            text: r#"{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"city","type":"string"}]}"#
                .to_owned(),
            references: Vec::new(),
        },
    );
    let text = r#"{"type":"record","name":"Customer","namespace":"com.acme","fields":[{"name":"home","type":"com.acme.Address"}]}"#;
    let parsed = ParsedSchema::parse(
        SchemaType::Avro,
        text,
        &["com.acme.Address".to_owned()],
        &refs,
    );
    assert!(parsed.is_ok(), "{parsed:?}");
    let missing = ParsedSchema::parse_standalone(SchemaType::Avro, text);
    assert!(
        matches!(missing, Err(SchemaError::InvalidAvro { .. })),
        "{missing:?}"
    );
}

#[test]
fn huge_enums_compare_in_linear_time() {
    let values: Vec<String> = (0..50_000).map(|i| format!("\"v{i}\"")).collect();
    let old = format!("{{\"enum\":[{}]}}", values.join(","));
    let new = format!("{{\"enum\":[{}]}}", values[1..].join(","));
    let (old, new) = match (parse(SchemaType::Json, &old), parse(SchemaType::Json, &new)) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => panic!("enums do not parse: {:?} {:?}", o.err(), n.err()),
    };
    let verdict = check(CompatibilityLevel::Backward, &new, &[old]);
    assert!(matches!(verdict, Err(ref p) if p.len() == 1), "{verdict:?}");
}

#[test]
fn many_removed_properties_against_a_large_content_model_stay_bounded() {
    // Each property the writer has and the reader lacks is compared with the
    // reader's additionalProperties schema: a quadratic walk without the
    // comparison budget.
    let big_model: Vec<String> = (0..9_000)
        .map(|i| format!("\"q{i}\":{{\"type\":\"string\"}}"))
        .collect();
    let reader = format!(
        "{{\"type\":\"object\",\"additionalProperties\":{{\"type\":\"object\",\"properties\":{{{}}}}}}}",
        big_model.join(",")
    );
    let removed: Vec<String> = (0..9_000).map(|i| format!("\"p{i}\":{{}}")).collect();
    let writer = format!(
        "{{\"type\":\"object\",\"properties\":{{{}}}}}",
        removed.join(",")
    );
    let (writer, reader) = match (
        parse(SchemaType::Json, &writer),
        parse(SchemaType::Json, &reader),
    ) {
        (Ok(w), Ok(r)) => (w, r),
        (w, r) => panic!("schemas do not parse: {:?} {:?}", w.err(), r.err()),
    };
    let problems = reader.can_read(&writer);
    assert!(!problems.is_empty());
    assert!(
        problems.len() <= sluice_schema::MAX_MESSAGES,
        "{}",
        problems.len()
    );
    assert!(
        problems
            .iter()
            .all(|p| p.chars().count() <= sluice_schema::MAX_MESSAGE_CHARS + 3)
    );
}

/// Random JSON Schema documents built from the keywords the checker knows
/// and a few it does not.
fn json_schema() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(json!(true)),
        Just(json!(false)),
        Just(json!({})),
        Just(json!({"type": "string", "maxLength": 5})),
        Just(json!({"type": ["integer", "null"], "minimum": 1})),
        Just(json!({"type": "number", "exclusiveMaximum": true, "maximum": 3})),
        Just(json!({"enum": ["a", 1, null]})),
        Just(json!({"const": "x"})),
        Just(json!({"$ref": "#/definitions/x"})),
        Just(json!({"multipleOf": 0})),
        Just(json!({"required": ["a", 3]})),
        Just(json!({"type": 7, "items": []})),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            proptest::collection::btree_map("[a-c]", inner.clone(), 0..4).prop_map(|props| {
                let mut map = serde_json::Map::new();
                map.insert("properties".to_owned(), Value::Object(props.into_iter().collect()));
                Value::Object(map)
            }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({
                "type": "object", "additionalProperties": a, "properties": {"a": b}, "required": ["a"]
            })),
            inner.clone().prop_map(|i| json!({"type": "array", "items": i})),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"anyOf": [a, b]})),
            inner.prop_map(|i| json!({"definitions": {"x": i}})),
        ]
    })
}

proptest! {
    #[test]
    fn random_json_schema_pairs_never_panic(a in json_schema(), b in json_schema()) {
        let (a, b) = (
            parse(SchemaType::Json, &a.to_string()),
            parse(SchemaType::Json, &b.to_string()),
        );
        if let (Ok(a), Ok(b)) = (a, b) {
            // A schema always reads its own data.
            prop_assert!(a.can_read(&a).is_empty(), "{:?}", a.can_read(&a));
            for level in CompatibilityLevel::ALL {
                let _ = check(level, &a, std::slice::from_ref(&b));
            }
        }
    }

    #[test]
    fn random_json_ish_text_never_panics(text in r#"[\[\]{}":,a-z0-9 .\-]{0,200}"#) {
        for t in ALL_TYPES {
            let _ = parse(t, &text);
        }
    }

    #[test]
    fn random_avro_ish_schemas_never_panic(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(r#"{"type":"record","name":"R","fields":["#),
                Just(r#"{"name":"f","type":"#),
                Just(r#"{"type":"array","items":"#),
                Just(r#"{"type":"enum","name":"E","symbols":["A","B"]}"#),
                Just(r#"["null","int"]"#),
                Just(r#""long""#),
                Just(r#""R""#),
                Just("}"),
                Just("]"),
                Just(","),
                Just(r#","default":null"#),
            ],
            0..40,
        ),
        other in proptest::collection::vec(any::<bool>(), 0..4),
    ) {
        let text: String = parts.concat();
        let parsed = parse(SchemaType::Avro, &text);
        if let Ok(schema) = parsed {
            prop_assert!(schema.can_read(&schema).is_empty(), "{:?}", schema.can_read(&schema));
            let base = parse(SchemaType::Avro, r#"{"type":"record","name":"R","fields":[]}"#);
            if let Ok(base) = base {
                for level in CompatibilityLevel::ALL.into_iter().take(other.len() + 1) {
                    let _ = check(level, &schema, std::slice::from_ref(&base));
                    let _ = check(level, &base, std::slice::from_ref(&schema));
                }
            }
        }
    }

    #[test]
    fn random_protobuf_ish_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("syntax = \"proto3\";"),
                Just("syntax = \"proto2\";"),
                Just("package p;"),
                Just("message M {"),
                Just("enum E { Z = 0; }"),
                Just("oneof o {"),
                Just("int32 a = 1;"),
                Just("repeated string b = 2;"),
                Just("map<string, M> m = 3;"),
                Just("optional E e = 4;"),
                Just("import \"x.proto\";"),
                Just("}"),
                Just("{"),
                Just("/*"),
                Just("\""),
            ],
            0..30,
        ),
    ) {
        let text: String = parts.concat();
        if let Ok(schema) = parse(SchemaType::Protobuf, &text) {
            prop_assert!(schema.can_read(&schema).is_empty(), "{:?}", schema.can_read(&schema));
        }
    }
}
