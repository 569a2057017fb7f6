//! JSON Schema compatibility, one row per Confluent rule.

mod common;

use common::{Case, TransitiveCase, case, run, run_transitive};
use sluice_schema::CompatibilityLevel::{
    Backward, BackwardTransitive, Forward, Full, FullTransitive, None,
};
use sluice_schema::{ParsedSchema, SchemaType};

const OPEN_A: &str = r#"{"type":"object","properties":{"a":{"type":"string"}}}"#;
const OPEN_AB: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}"#;
const OPEN_AB_ANY: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{}}}"#;
const CLOSED_A: &str =
    r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}"#;
const CLOSED_AB: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":false}"#;
const PARTIAL_A: &str = r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"string"}}"#;
const PARTIAL_AB: &str = r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":{"type":"string"}}"#;
const REQ_A: &str = r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}"#;
const NUMBER: &str = r#"{"type":"number"}"#;
const INTEGER: &str = r#"{"type":"integer"}"#;
const STRING: &str = r#"{"type":"string"}"#;
const STRING_OR_NULL: &str = r#"{"type":["string","null"]}"#;
const ENUM_AB: &str = r#"{"type":"string","enum":["a","b"]}"#;
const ENUM_ABC: &str = r#"{"type":"string","enum":["a","b","c"]}"#;
const MAXLEN_5: &str = r#"{"type":"string","maxLength":5}"#;
const MAXLEN_10: &str = r#"{"type":"string","maxLength":10}"#;
const MIN_0: &str = r#"{"type":"number","minimum":0}"#;
const MIN_5: &str = r#"{"type":"number","minimum":5}"#;
const ITEMS_3: &str = r#"{"type":"array","items":{"type":"string"},"maxItems":3}"#;
const ITEMS_5: &str = r#"{"type":"array","items":{"type":"string"},"maxItems":5}"#;
const ITEMS_INT: &str = r#"{"type":"array","items":{"type":"integer"}}"#;
const ITEMS_NUM: &str = r#"{"type":"array","items":{"type":"number"}}"#;
const PATTERN: &str = r#"{"type":"string","pattern":"^[a-z]+$"}"#;
const DESCRIBED: &str = r#"{"type":"string","description":"a name","title":"Name"}"#;
const ANY_OF_1: &str = r#"{"anyOf":[{"type":"string"}]}"#;
const ANY_OF_2: &str = r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#;
const REF_X: &str = r##"{"$ref":"#/definitions/X","definitions":{"X":{"type":"string"}}}"##;
const REF_Y: &str = r##"{"$ref":"#/definitions/Y","definitions":{"Y":{"type":"string"}}}"##;
const NESTED_NUM: &str = r#"{"type":"object","properties":{"o":{"type":"object","properties":{"n":{"type":"number"}}}}}"#;
const NESTED_INT: &str = r#"{"type":"object","properties":{"o":{"type":"object","properties":{"n":{"type":"integer"}}}}}"#;

const CASES: &[Case] = &[
    case("identical", OPEN_AB, OPEN_AB, FullTransitive, true),
    case(
        "property added to open model",
        OPEN_A,
        OPEN_AB,
        Backward,
        false,
    ),
    case(
        "unconstrained property added to open model",
        OPEN_A,
        OPEN_AB_ANY,
        Backward,
        true,
    ),
    case(
        "property added to closed model",
        CLOSED_A,
        CLOSED_AB,
        Backward,
        true,
    ),
    case(
        "property added to closed model, forward",
        CLOSED_A,
        CLOSED_AB,
        Forward,
        false,
    ),
    case(
        "property removed from open model",
        OPEN_AB,
        OPEN_A,
        Backward,
        true,
    ),
    case(
        "property removed from closed model",
        CLOSED_AB,
        CLOSED_A,
        Backward,
        false,
    ),
    case(
        "property added covered by partially open model",
        PARTIAL_A,
        PARTIAL_AB,
        Backward,
        true,
    ),
    case(
        "property removed covered by partially open model",
        PARTIAL_AB,
        PARTIAL_A,
        Backward,
        true,
    ),
    case("open model closed", OPEN_A, CLOSED_A, Backward, false),
    case("closed model opened", CLOSED_A, OPEN_A, Backward, true),
    case(
        "closed model opened, forward",
        CLOSED_A,
        OPEN_A,
        Forward,
        false,
    ),
    case("required property added", OPEN_A, REQ_A, Backward, false),
    case("required property removed", REQ_A, OPEN_A, Backward, true),
    case(
        "required property removed, forward",
        REQ_A,
        OPEN_A,
        Forward,
        false,
    ),
    case(
        "number narrowed to integer",
        NUMBER,
        INTEGER,
        Backward,
        false,
    ),
    case("integer widened to number", INTEGER, NUMBER, Backward, true),
    case(
        "integer widened to number, forward",
        INTEGER,
        NUMBER,
        Forward,
        false,
    ),
    case(
        "string widened to string or null",
        STRING,
        STRING_OR_NULL,
        Backward,
        true,
    ),
    case(
        "string or null narrowed to string",
        STRING_OR_NULL,
        STRING,
        Backward,
        false,
    ),
    case(
        "string changed to integer",
        STRING,
        INTEGER,
        Backward,
        false,
    ),
    case("enum extended", ENUM_AB, ENUM_ABC, Backward, true),
    case("enum narrowed", ENUM_ABC, ENUM_AB, Backward, false),
    case("enum added", STRING, ENUM_AB, Backward, false),
    case("enum removed", ENUM_AB, STRING, Backward, true),
    case("maxLength added", STRING, MAXLEN_5, Backward, false),
    case("maxLength increased", MAXLEN_5, MAXLEN_10, Backward, true),
    case("maxLength decreased", MAXLEN_10, MAXLEN_5, Backward, false),
    case("maxLength removed", MAXLEN_5, STRING, Backward, true),
    case("minimum increased", MIN_0, MIN_5, Backward, false),
    case("minimum decreased", MIN_5, MIN_0, Backward, true),
    case("maxItems decreased", ITEMS_5, ITEMS_3, Backward, false),
    case("maxItems increased, full", ITEMS_3, ITEMS_5, Full, false),
    case("items narrowed", ITEMS_NUM, ITEMS_INT, Backward, false),
    case("items widened", ITEMS_INT, ITEMS_NUM, Backward, true),
    case("pattern added", STRING, PATTERN, Backward, false),
    case("annotations changed, full", STRING, DESCRIBED, Full, true),
    case(
        "anyOf changed is not analysed",
        ANY_OF_1,
        ANY_OF_2,
        Backward,
        false,
    ),
    case("$ref changed", REF_X, REF_Y, Backward, false),
    case(
        "nested property narrowed",
        NESTED_NUM,
        NESTED_INT,
        Backward,
        false,
    ),
    case(
        "nested property widened",
        NESTED_INT,
        NESTED_NUM,
        Backward,
        true,
    ),
    case("reader true reads anything", STRING, "true", Backward, true),
    case(
        "reader false reads nothing",
        STRING,
        "false",
        Backward,
        false,
    ),
    case("anything goes at NONE", STRING, INTEGER, None, true),
    case(
        "draft 4 exclusiveMaximum added",
        r#"{"type":"number","maximum":5}"#,
        r#"{"type":"number","maximum":5,"exclusiveMaximum":true}"#,
        Backward,
        false,
    ),
    case(
        "multipleOf loosened",
        r#"{"type":"number","multipleOf":4}"#,
        r#"{"type":"number","multipleOf":2}"#,
        Backward,
        true,
    ),
    case(
        "multipleOf tightened",
        r#"{"type":"number","multipleOf":2}"#,
        r#"{"type":"number","multipleOf":4}"#,
        Backward,
        false,
    ),
    case(
        "uniqueItems added",
        ITEMS_INT,
        r#"{"type":"array","items":{"type":"integer"},"uniqueItems":true}"#,
        Backward,
        false,
    ),
];

#[test]
fn json_compatibility_table() {
    assert!(CASES.len() >= 30);
    run(SchemaType::Json, CASES);
}

const TRANSITIVE: &[TransitiveCase] = &[
    // v3 adds b as an integer, which v2's additionalProperties already
    // allowed, so v3 reads v2's data; but v1 wrote b as a string.
    TransitiveCase {
        name: "property re-added with another type, latest only",
        versions: [
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":{"type":"integer"}}"#,
        ],
        level: Backward,
        compatible: true,
    },
    TransitiveCase {
        name: "property re-added with another type, transitive",
        versions: [
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":{"type":"integer"}}"#,
            r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":{"type":"integer"}}"#,
        ],
        level: BackwardTransitive,
        compatible: false,
    },
    TransitiveCase {
        name: "widening twice is fine transitively",
        versions: [INTEGER, NUMBER, r#"{"type":["number","string"]}"#],
        level: BackwardTransitive,
        compatible: true,
    },
];

#[test]
fn json_transitive_levels_check_every_version() {
    run_transitive(SchemaType::Json, TRANSITIVE);
}

#[test]
fn json_identity_sorts_keys_and_ignores_layout() {
    let a =
        ParsedSchema::parse_standalone(SchemaType::Json, r#"{"type":"string", "maxLength": 3}"#);
    let b =
        ParsedSchema::parse_standalone(SchemaType::Json, "{\n\"maxLength\":3,\"type\":\"string\"}");
    assert_eq!(
        a.as_ref().map(ParsedSchema::canonical).ok(),
        b.as_ref().map(ParsedSchema::canonical).ok()
    );
    assert_eq!(
        a.as_ref().map(ParsedSchema::canonical).ok(),
        Some(r#"{"maxLength":3,"type":"string"}"#)
    );
}

#[test]
fn json_schema_must_be_an_object_or_a_boolean() {
    for text in ["1", "\"s\"", "[]", "null"] {
        assert!(matches!(
            ParsedSchema::parse_standalone(SchemaType::Json, text),
            Err(sluice_schema::SchemaError::InvalidJsonSchema { .. })
        ));
    }
    assert!(matches!(
        ParsedSchema::parse_standalone(SchemaType::Json, "{"),
        Err(sluice_schema::SchemaError::InvalidJson { .. })
    ));
}
