//! Data to JSON and back with a schema (`ParsedSchema::decode`/`encode`):
//! round trips per type, agreement with `apache-avro`'s own encoder and
//! decoder, and hostile data that must cost only its budget.

// `apache-avro`'s one-call datum functions are deprecated in favour of
// builder types; as a reference implementation in a test they read best.
// A failed unwrap in a test is the failure report.
#![allow(deprecated, clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_schema::{CodecError, DecodeBudget, ParsedSchema, SchemaType};

fn avro(text: &str) -> ParsedSchema {
    ParsedSchema::parse_standalone(SchemaType::Avro, text).expect("schema parses")
}

fn budget() -> DecodeBudget {
    DecodeBudget::new(1_000_000)
}

const RICH: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "qty", "type": "int"},
    {"name": "ok", "type": "boolean"},
    {"name": "price", "type": "double"},
    {"name": "ratio", "type": "float"},
    {"name": "customer", "type": "string"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "raw", "type": "bytes"},
    {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "next", "type": ["null", "Order"], "default": null},
    {"name": "prev_state", "type": ["null", "State"], "default": null}
  ]
}"#;

fn rich_value() -> Value {
    json!({
        "id": 9_007_199_254_740_993_i64,
        "qty": -3,
        "ok": true,
        "price": 12.5,
        "ratio": 0.25,
        "customer": "Zoë",
        "note": "fragile",
        "raw": "\u{0}\u{ff}a",
        "state": "PAID",
        "tags": ["a", "b"],
        "attrs": {"x": 1, "y": -2},
        "hash": "abcd",
        "amount": "-12.34",
        "ref": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "day": 20000,
        "at": 1_700_000_000_000_i64,
        "next": {
            "id": 2, "qty": 0, "ok": false, "price": 0.0, "ratio": 1.0,
            "customer": "", "note": null, "raw": "", "state": "NEW", "tags": [],
            "attrs": {}, "hash": "wxyz", "amount": "0.00",
            "ref": "00000000-0000-0000-0000-000000000000", "day": 0, "at": 0,
            "next": null, "prev_state": null
        },
        "prev_state": "NEW"
    })
}

#[test]
fn avro_values_round_trip_through_json() {
    let schema = avro(RICH);
    let value = rich_value();
    let encoded = schema.encode(&value, None).expect("encodes");
    assert!(encoded.message_indexes.is_empty());
    let decoded = schema
        .decode(&encoded.data, &[], &mut budget())
        .expect("decodes");
    assert_eq!(decoded, value);
}

#[test]
fn avro_agrees_with_apache_avros_encoder_and_decoder() {
    let schema = avro(RICH);
    let reference = apache_avro::Schema::parse_str(RICH).expect("parses");
    let ours = schema.encode(&rich_value(), None).expect("encodes").data;
    // apache-avro reads what we write ...
    let read = apache_avro::from_avro_datum(&reference, &mut ours.as_slice(), None)
        .expect("apache-avro reads our encoding");
    let apache_avro::types::Value::Record(fields) = &read else {
        panic!("not a record: {read:?}");
    };
    assert_eq!(
        fields[0],
        (
            "id".into(),
            apache_avro::types::Value::Long(9_007_199_254_740_993)
        )
    );
    assert_eq!(
        fields[5],
        (
            "customer".into(),
            apache_avro::types::Value::String("Zoë".into())
        )
    );
    // ... and we read what it writes back to the same JSON (not compared
    // byte for byte: apache-avro writes map entries in hash order).
    let theirs = apache_avro::to_avro_datum(&reference, read).expect("apache-avro writes");
    assert_eq!(theirs.len(), ours.len());
    assert_eq!(
        schema.decode(&theirs, &[], &mut budget()).expect("decodes"),
        rich_value()
    );
}

#[test]
fn avro_unions_accept_the_wrapped_json_encoding() {
    let schema = avro(
        r#"["null", "long", "string", {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}]"#,
    );
    for (input, expected) in [
        (json!(null), json!(null)),
        (json!(5), json!(5)),
        (json!({"long": 5}), json!(5)),
        (json!("x"), json!("x")),
        (json!({"string": "x"}), json!("x")),
        (json!({"R": {"a": 1}}), json!({"a": 1})),
        (json!({"a": 1}), json!({"a": 1})),
    ] {
        let data = schema.encode(&input, None).expect("encodes").data;
        assert_eq!(
            schema.decode(&data, &[], &mut budget()).unwrap(),
            expected,
            "{input}"
        );
    }
    assert!(matches!(
        schema.encode(&json!(true), None),
        Err(CodecError::Mismatch { .. })
    ));
}

#[test]
fn avro_encoding_reports_where_a_value_does_not_fit() {
    let schema = avro(RICH);
    let mut value = rich_value();
    value["tags"][1] = json!(7);
    match schema.encode(&value, None) {
        Err(CodecError::Mismatch { path, .. }) => assert_eq!(path, "/tags/1"),
        other => panic!("{other:?}"),
    }
    let mut value = rich_value();
    value.as_object_mut().unwrap().remove("qty");
    match schema.encode(&value, None) {
        Err(CodecError::Mismatch { path, reason }) => {
            assert_eq!(path, "/qty");
            assert!(reason.contains("no default"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A missing field with a default takes it.
    let mut value = rich_value();
    value.as_object_mut().unwrap().remove("note");
    let data = schema.encode(&value, None).unwrap().data;
    assert_eq!(
        schema.decode(&data, &[], &mut budget()).unwrap()["note"],
        json!(null)
    );
    let mut value = rich_value();
    value["bogus"] = json!(1);
    assert!(matches!(
        schema.encode(&value, None),
        Err(CodecError::Mismatch { .. })
    ));
    value = rich_value();
    value["amount"] = json!("1.234");
    assert!(
        schema.encode(&value, None).is_err(),
        "scale 2 has no room for 3 digits"
    );
}

#[test]
fn hostile_avro_data_costs_only_its_budget() {
    let nulls = avro(r#"{"type": "array", "items": "null"}"#);
    // One block claiming 2^62 items of null: each item is free in the data.
    let mut data = Vec::new();
    let mut z = (1u64 << 62) << 1;
    while z >= 0x80 {
        data.push((z as u8) | 0x80);
        z >>= 7;
    }
    data.push(z as u8);
    data.push(0);
    let mut small = DecodeBudget::new(10_000);
    assert_eq!(
        nulls.decode(&data, &[], &mut small),
        Err(CodecError::BudgetExhausted { limit: 10_000 })
    );

    let strings = avro(r#""string""#);
    // A length far past the data, and a negative one.
    assert_eq!(
        strings.decode(&[0xfe, 0xff, 0xff, 0xff, 0x0f], &[], &mut budget()),
        Err(CodecError::Truncated)
    );
    assert!(matches!(
        strings.decode(&[0x01], &[], &mut budget()),
        Err(CodecError::Malformed(_))
    ));
    assert!(matches!(
        strings.decode(&[0x02, 0xff], &[], &mut budget()),
        Err(CodecError::Malformed(_))
    ));
    // Trailing bytes after a whole value.
    assert_eq!(
        strings.decode(&[0x02, b'a', 0], &[], &mut budget()),
        Err(CodecError::TrailingBytes(1))
    );
    // A varint that never ends.
    assert!(matches!(
        avro(r#""long""#).decode(&[0xff; 11], &[], &mut budget()),
        Err(CodecError::Malformed(_))
    ));

    // A recursive type nested as deep as the data says.
    let list = avro(
        r#"{"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}"#,
    );
    let deep = vec![2u8; 100_000];
    assert_eq!(
        list.decode(&deep, &[], &mut budget()),
        Err(CodecError::TooDeep)
    );
    let mut shallow = vec![2u8; 10];
    shallow.push(0);
    assert!(list.decode(&shallow, &[], &mut budget()).is_ok());
}

const PROTO: &str = r#"
syntax = "proto3";
package shop;
message Order {
  int64 id = 1;
  string customer_name = 2;
  repeated Line lines = 3;
  message Line { string sku = 1; int32 qty = 2; }
  Status status = 4;
}
message Status { bool paid = 1; }
enum Kind { KIND_UNSPECIFIED = 0; RETAIL = 1; }
"#;

#[test]
fn protobuf_messages_round_trip_through_canonical_json() {
    let schema = ParsedSchema::parse_standalone(SchemaType::Protobuf, PROTO).unwrap();
    let input = json!({"id": "42", "customer_name": "Ann", "lines": [{"sku": "a", "qty": 2}]});
    let encoded = schema.encode(&input, None).unwrap();
    assert_eq!(encoded.message_indexes, vec![0]);
    let decoded = schema.decode(&encoded.data, &[], &mut budget()).unwrap();
    assert_eq!(
        decoded,
        json!({"id": "42", "customerName": "Ann", "lines": [{"sku": "a", "qty": 2}]})
    );

    // A nested message by name gets its path of indexes; a second
    // top-level message its own.
    let line = schema
        .encode(&json!({"sku": "b"}), Some("shop.Order.Line"))
        .unwrap();
    assert_eq!(line.message_indexes, vec![0, 0]);
    assert_eq!(
        schema.decode(&line.data, &[0, 0], &mut budget()).unwrap(),
        json!({"sku": "b"})
    );
    let status = schema
        .encode(&json!({"paid": true}), Some("shop.Status"))
        .unwrap();
    assert_eq!(status.message_indexes, vec![1]);
    assert!(matches!(
        schema.encode(&json!({}), Some("shop.Nope")),
        Err(CodecError::NoSuchMessage(_))
    ));
    assert!(matches!(
        schema.encode(&json!({"nope": 1}), None),
        Err(CodecError::Mismatch { .. })
    ));
    assert!(matches!(
        schema.decode(&[0xff, 0xff], &[], &mut budget()),
        Err(CodecError::Malformed(_))
    ));
    assert!(matches!(
        schema.decode(&[], &[7], &mut budget()),
        Err(CodecError::NoSuchMessage(_))
    ));
}

#[test]
fn json_schema_data_is_json_text() {
    let schema = ParsedSchema::parse_standalone(
        SchemaType::Json,
        r#"{"type": "object", "properties": {"a": {"type": "integer"}}}"#,
    )
    .unwrap();
    let encoded = schema.encode(&json!({"a": 1}), None).unwrap();
    assert_eq!(encoded.data, br#"{"a":1}"#);
    assert_eq!(
        schema.decode(&encoded.data, &[], &mut budget()).unwrap(),
        json!({"a": 1})
    );
    assert!(matches!(
        schema.decode(b"{", &[], &mut budget()),
        Err(CodecError::Malformed(_))
    ));
    let mut tiny = DecodeBudget::new(3);
    assert!(matches!(
        schema.decode(&encoded.data, &[], &mut tiny),
        Err(CodecError::BudgetExhausted { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any value of a schema with every container kind survives encode
    /// then decode unchanged, and `apache-avro` reads the same bytes.
    #[test]
    fn any_avro_value_round_trips(
        a in any::<i32>(),
        b in ".{0,20}",
        c in proptest::collection::vec(any::<i64>(), 0..20),
        d in proptest::option::of(-1e12f64..1e12),
        e in proptest::collection::btree_map("[a-z]{1,5}", any::<bool>(), 0..5),
    ) {
        let text = r#"{"type": "record", "name": "P", "fields": [
            {"name": "a", "type": "int"},
            {"name": "b", "type": "string"},
            {"name": "c", "type": {"type": "array", "items": "long"}},
            {"name": "d", "type": ["null", "double"]},
            {"name": "e", "type": {"type": "map", "values": "boolean"}}
        ]}"#;
        let schema = avro(text);
        let value = json!({"a": a, "b": b, "c": c, "d": d, "e": e});
        let data = schema.encode(&value, None).unwrap().data;
        prop_assert_eq!(schema.decode(&data, &[], &mut budget()).unwrap(), value);
        let reference = apache_avro::Schema::parse_str(text).unwrap();
        prop_assert!(apache_avro::from_avro_datum(&reference, &mut data.as_slice(), None).is_ok());
    }
}
