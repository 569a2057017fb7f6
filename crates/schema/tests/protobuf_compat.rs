//! Protobuf compatibility, one row per Confluent rule plus the renumbering trap.

mod common;

use common::{Case, TransitiveCase, case, run, run_transitive};
use sluice_schema::CompatibilityLevel::{
    Backward, BackwardTransitive, Forward, Full, FullTransitive, None,
};
use sluice_schema::{ParsedSchema, Reference, SchemaError, SchemaType};

const BASE: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; }"#;
const FIELD_ADDED: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; bool c = 3; }"#;
const FIELD_REMOVED: &str = r#"syntax = "proto3"; package p; message M { string a = 1; }"#;
const RENAMED: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int32 bee = 2; }"#;
const RENUMBERED: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 3; }"#;
const B_INT64: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int64 b = 2; }"#;
const B_UINT64: &str = r#"syntax = "proto3"; package p; message M { string a = 1; uint64 b = 2; }"#;
const B_BOOL: &str = r#"syntax = "proto3"; package p; message M { string a = 1; bool b = 2; }"#;
const B_SINT32: &str = r#"syntax = "proto3"; package p; message M { string a = 1; sint32 b = 2; }"#;
const B_STRING: &str = r#"syntax = "proto3"; package p; message M { string a = 1; string b = 2; }"#;
const A_BYTES: &str = r#"syntax = "proto3"; package p; message M { bytes a = 1; int32 b = 2; }"#;
const FIXED32: &str = r#"syntax = "proto3"; package p; message M { fixed32 x = 1; }"#;
const SFIXED32: &str = r#"syntax = "proto3"; package p; message M { sfixed32 x = 1; }"#;
const FIXED64: &str = r#"syntax = "proto3"; package p; message M { fixed64 x = 1; }"#;
const FLOAT: &str = r#"syntax = "proto3"; package p; message M { float x = 1; }"#;
const DOUBLE: &str = r#"syntax = "proto3"; package p; message M { double x = 1; }"#;
const FIELD_OF_A: &str = r#"syntax = "proto3"; package p; message A { int32 v = 1; } message B { int32 v = 1; } message M { A x = 1; }"#;
const FIELD_OF_B: &str = r#"syntax = "proto3"; package p; message A { int32 v = 1; } message B { int32 v = 1; } message M { B x = 1; }"#;
const TWO_MESSAGES: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; } message N { int32 v = 1; }"#;
const WITH_ENUM: &str =
    r#"syntax = "proto3"; package p; enum E { E_ZERO = 0; E_ONE = 1; } message M { E e = 1; }"#;
const ENUM_VALUE_ADDED: &str = r#"syntax = "proto3"; package p; enum E { E_ZERO = 0; E_ONE = 1; E_TWO = 2; } message M { E e = 1; }"#;
const ENUM_VALUE_REMOVED: &str =
    r#"syntax = "proto3"; package p; enum E { E_ZERO = 0; } message M { E e = 1; }"#;
const ENUM_REMOVED: &str = r#"syntax = "proto3"; package p; message M { int32 e = 1; }"#;
const OTHER_PACKAGE: &str =
    r#"syntax = "proto3"; package q; message M { string a = 1; int32 b = 2; }"#;
const PROTO2: &str =
    r#"syntax = "proto2"; package p; message M { optional string a = 1; optional int32 b = 2; }"#;
const REPEATED: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; repeated int32 b = 2; }"#;
const WITH_ONEOF: &str = r#"syntax = "proto3"; package p; message M { string a = 1; oneof o { int32 b = 2; string c = 3; } }"#;
const BOTH_IN_EXISTING_ONEOF: &str = r#"syntax = "proto3"; package p; message M { oneof o { string a = 1; int32 b = 2; string c = 3; } }"#;
const ONE_IN_NEW_ONEOF: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; oneof o { int32 b = 2; } }"#;
const TWO_IN_NEW_ONEOF: &str =
    r#"syntax = "proto3"; package p; message M { oneof o { string a = 1; int32 b = 2; } }"#;
const ONEOF_FIELD_REMOVED: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; oneof o { int32 b = 2; } }"#;
const NEW_ONEOF_ADDED: &str = r#"syntax = "proto3"; package p; message M { string a = 1; int32 b = 2; oneof o { string c = 3; bool d = 4; } }"#;
const P2_OPTIONAL: &str = r#"syntax = "proto2"; package p; message M { optional string a = 1; }"#;
const P2_REQUIRED_ADDED: &str =
    r#"syntax = "proto2"; package p; message M { optional string a = 1; required int32 b = 2; }"#;
const P2_OPTIONAL_B: &str =
    r#"syntax = "proto2"; package p; message M { optional string a = 1; optional int32 b = 2; }"#;
const P2_REQUIRED_A: &str = r#"syntax = "proto2"; package p; message M { required string a = 1; }"#;
const NESTED: &str =
    r#"syntax = "proto3"; package p; message M { message In { int32 v = 1; } In in = 1; }"#;
const NESTED_CHANGED: &str =
    r#"syntax = "proto3"; package p; message M { message In { string v = 1; } In in = 1; }"#;
const MAP_INT32: &str = r#"syntax = "proto3"; package p; message M { map<string, int32> m = 1; }"#;
const MAP_INT64: &str = r#"syntax = "proto3"; package p; message M { map<string, int64> m = 1; }"#;
const MAP_STRING: &str =
    r#"syntax = "proto3"; package p; message M { map<string, string> m = 1; }"#;
const COMMENTED: &str = "// a comment\nsyntax = \"proto3\";\npackage p;\n/* block */\nmessage M {\n  string a = 1; // trailing\n  int32 b = 2;\n}\n";
const OPTIONAL_B: &str =
    r#"syntax = "proto3"; package p; message M { string a = 1; optional int32 b = 2; }"#;

const CASES: &[Case] = &[
    case("identical", BASE, BASE, FullTransitive, true),
    case("field added", BASE, FIELD_ADDED, Backward, true),
    case("field added, full", BASE, FIELD_ADDED, Full, true),
    case("field removed", BASE, FIELD_REMOVED, Backward, true),
    case("field removed, forward", BASE, FIELD_REMOVED, Forward, true),
    case("field renamed, same number", BASE, RENAMED, Full, true),
    case("field renumbered", BASE, RENUMBERED, Backward, false),
    case(
        "field renumbered, forward",
        BASE,
        RENUMBERED,
        Forward,
        false,
    ),
    case("int32 to int64", BASE, B_INT64, Backward, true),
    case("int32 to uint64", BASE, B_UINT64, Full, true),
    case("int32 to bool", BASE, B_BOOL, Backward, true),
    case("int32 to sint32", BASE, B_SINT32, Backward, false),
    case("int32 to string", BASE, B_STRING, Backward, false),
    case("string to bytes", BASE, A_BYTES, Full, true),
    case("fixed32 to sfixed32", FIXED32, SFIXED32, Full, true),
    case("fixed32 to fixed64", FIXED32, FIXED64, Backward, false),
    case("float to double", FLOAT, DOUBLE, Backward, false),
    case(
        "message field type changed",
        FIELD_OF_A,
        FIELD_OF_B,
        Backward,
        false,
    ),
    case("message added", BASE, TWO_MESSAGES, Backward, true),
    case("message removed", TWO_MESSAGES, BASE, Backward, false),
    case("enum value added", WITH_ENUM, ENUM_VALUE_ADDED, Full, true),
    case(
        "enum value removed",
        WITH_ENUM,
        ENUM_VALUE_REMOVED,
        Backward,
        true,
    ),
    case("enum removed", WITH_ENUM, ENUM_REMOVED, Backward, false),
    case("package changed", BASE, OTHER_PACKAGE, Backward, false),
    case("syntax changed", BASE, PROTO2, Backward, false),
    case("singular to repeated", BASE, REPEATED, Backward, false),
    case(
        "fields moved into existing oneof",
        WITH_ONEOF,
        BOTH_IN_EXISTING_ONEOF,
        Backward,
        false,
    ),
    case(
        "one field moved into new oneof",
        BASE,
        ONE_IN_NEW_ONEOF,
        Backward,
        true,
    ),
    case(
        "two fields moved into new oneof",
        BASE,
        TWO_IN_NEW_ONEOF,
        Backward,
        false,
    ),
    case(
        "oneof field removed",
        WITH_ONEOF,
        ONEOF_FIELD_REMOVED,
        Backward,
        false,
    ),
    case(
        "new oneof with new fields",
        BASE,
        NEW_ONEOF_ADDED,
        Full,
        true,
    ),
    case(
        "required field added",
        P2_OPTIONAL,
        P2_REQUIRED_ADDED,
        Backward,
        false,
    ),
    case(
        "required field removed",
        P2_REQUIRED_ADDED,
        P2_OPTIONAL,
        Backward,
        false,
    ),
    case(
        "optional made required",
        P2_OPTIONAL_B,
        P2_REQUIRED_ADDED,
        Backward,
        false,
    ),
    case(
        "required made optional",
        P2_REQUIRED_A,
        P2_OPTIONAL,
        Backward,
        false,
    ),
    case(
        "nested message field type changed",
        NESTED,
        NESTED_CHANGED,
        Backward,
        false,
    ),
    case(
        "map value int32 to int64",
        MAP_INT32,
        MAP_INT64,
        Backward,
        true,
    ),
    case(
        "map value int32 to string",
        MAP_INT32,
        MAP_STRING,
        Backward,
        false,
    ),
    case(
        "comments and layout only",
        BASE,
        COMMENTED,
        FullTransitive,
        true,
    ),
    case("proto3 optional added", BASE, OPTIONAL_B, Full, true),
    case("anything goes at NONE", BASE, OTHER_PACKAGE, None, true),
];

#[test]
fn protobuf_compatibility_table() {
    assert!(CASES.len() >= 30);
    run(SchemaType::Protobuf, CASES);
}

const TRANSITIVE: &[TransitiveCase] = &[
    // v2 drops field 2; v3 reuses number 2 for a string. Against v2 that is
    // an added field, against v1 an int32 read as a string.
    TransitiveCase {
        name: "field number reused with another type, latest only",
        versions: [BASE, FIELD_REMOVED, B_STRING],
        level: Backward,
        compatible: true,
    },
    TransitiveCase {
        name: "field number reused with another type, transitive",
        versions: [BASE, FIELD_REMOVED, B_STRING],
        level: BackwardTransitive,
        compatible: false,
    },
    TransitiveCase {
        name: "fields added one at a time, full transitive",
        versions: [FIELD_REMOVED, BASE, FIELD_ADDED],
        level: FullTransitive,
        compatible: true,
    },
];

#[test]
fn protobuf_transitive_levels_check_every_version() {
    run_transitive(SchemaType::Protobuf, TRANSITIVE);
}

#[test]
fn protobuf_identity_ignores_comments_and_layout() {
    let a = ParsedSchema::parse_standalone(SchemaType::Protobuf, BASE);
    let b = ParsedSchema::parse_standalone(SchemaType::Protobuf, COMMENTED);
    let c = ParsedSchema::parse_standalone(SchemaType::Protobuf, RENAMED);
    let canonical =
        |s: &Result<ParsedSchema, SchemaError>| s.as_ref().map(|s| s.canonical().to_owned()).ok();
    assert!(canonical(&a).is_some());
    assert_eq!(canonical(&a), canonical(&b));
    assert_ne!(canonical(&a), canonical(&c));
}

#[test]
fn protobuf_imports_resolve_through_references() {
    let refs = vec![Reference {
        name: "common/money.proto".to_owned(),
        schema_type: SchemaType::Protobuf,
        text: r#"syntax = "proto3"; package common; message Money { int64 cents = 1; }"#.to_owned(),
        references: Vec::new(),
    }];
    let text = r#"syntax = "proto3"; package p; import "common/money.proto"; import "google/protobuf/timestamp.proto"; message Order { common.Money total = 1; google.protobuf.Timestamp at = 2; }"#;
    let parsed = ParsedSchema::parse(
        SchemaType::Protobuf,
        text,
        &["common/money.proto".to_owned()],
        &refs,
    );
    assert!(parsed.is_ok(), "{parsed:?}");
    let missing = ParsedSchema::parse_standalone(SchemaType::Protobuf, text);
    assert!(
        matches!(missing, Err(SchemaError::InvalidProtobuf { .. })),
        "{missing:?}"
    );
}

#[test]
fn protobuf_syntax_errors_are_typed() {
    let bad = ParsedSchema::parse_standalone(SchemaType::Protobuf, "message M { int32 = ; }");
    assert!(matches!(bad, Err(SchemaError::InvalidProtobuf { .. })));
}

/// confluent-kafka's Python `ProtobufSerializer` registers the base64 of an
/// encoded `FileDescriptorProto` instead of `.proto` text; it parses, is the
/// same schema as the text it was compiled from, and serializes back.
#[test]
fn a_serialized_descriptor_is_the_same_schema_as_its_text() {
    let text = r#"syntax = "proto3"; package p; message User { string name = 1; int32 age = 2; }"#;
    let parsed = ParsedSchema::parse_standalone(SchemaType::Protobuf, text).expect("text");
    let serialized = parsed.protobuf_serialized().expect("protobuf");
    let again = ParsedSchema::parse_standalone(SchemaType::Protobuf, &serialized).expect("base64");
    assert_eq!(again.canonical(), parsed.canonical());
    assert_eq!(
        again.protobuf_serialized().as_deref(),
        Some(serialized.as_str())
    );
    // Base64 of bytes that are not a descriptor is refused, not accepted.
    assert!(ParsedSchema::parse_standalone(SchemaType::Protobuf, "AAAA////").is_err());
}
