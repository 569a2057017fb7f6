//! Avro compatibility, one row per rule of Avro schema resolution.

mod common;

use common::{Case, TransitiveCase, case, run, run_transitive};
use sluice_schema::CompatibilityLevel::{
    Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None,
};
use sluice_schema::{ParsedSchema, SchemaType};

const A_INT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
const A_LONG: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
const A_FLOAT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"float"}]}"#;
const A_DOUBLE: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"double"}]}"#;
const A_STRING: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
const A_BYTES: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"bytes"}]}"#;
const A_B: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#;
const A_B_DEFAULT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}"#;
const A_OPT_B: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":["null","string"],"default":null}]}"#;
const A_NULLABLE: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","int"]}]}"#;
const A_NULL_INT_STRING: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","int","string"]}]}"#;
const RENAMED_WITH_ALIAS: &str =
    r#"{"type":"record","name":"R","fields":[{"name":"z","type":"int","aliases":["a"]}]}"#;
const RENAMED: &str = r#"{"type":"record","name":"R","fields":[{"name":"z","type":"int"}]}"#;
const OTHER_NAME: &str = r#"{"type":"record","name":"S","fields":[{"name":"a","type":"int"}]}"#;
const E_AB: &str = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
const E_ABC: &str = r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#;
const E_A: &str = r#"{"type":"enum","name":"E","symbols":["A"]}"#;
const E_A_DEFAULT: &str = r#"{"type":"enum","name":"E","symbols":["A"],"default":"A"}"#;
const ARRAY_INT: &str = r#"{"type":"array","items":"int"}"#;
const ARRAY_LONG: &str = r#"{"type":"array","items":"long"}"#;
const MAP_LONG: &str = r#"{"type":"map","values":"long"}"#;
const MAP_INT: &str = r#"{"type":"map","values":"int"}"#;
const FIXED_4: &str = r#"{"type":"fixed","name":"F","size":4}"#;
const FIXED_8: &str = r#"{"type":"fixed","name":"F","size":8}"#;
const NESTED: &str = r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[{"name":"a","type":"int"}]}}]}"#;
const NESTED_ADDED: &str = r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}}]}"#;
const DECIMAL_10_2: &str = r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#;
const DECIMAL_12_2: &str = r#"{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}"#;

const LIST: &str = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}"#;
const LIST_WITH_DEFAULT: &str = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null},{"name":"w","type":"int","default":0}]}"#;
const LIST_OF_STRINGS: &str = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"string"},{"name":"next","type":["null","Node"],"default":null}]}"#;

const RECORD_RENAMED_WITH_ALIAS: &str =
    r#"{"type":"record","name":"S","aliases":["R"],"fields":[{"name":"a","type":"int"}]}"#;
const ENUM_RENAMED_WITH_ALIAS: &str =
    r#"{"type":"enum","name":"F","aliases":["E"],"symbols":["A","B"]}"#;
const NS_A: &str =
    r#"{"type":"record","name":"R","namespace":"a","fields":[{"name":"a","type":"int"}]}"#;
const NS_B_ALIAS: &str = r#"{"type":"record","name":"S","namespace":"b","aliases":["a.R"],"fields":[{"name":"a","type":"int"}]}"#;
const NESTED_RENAMED: &str = r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"J","aliases":["I"],"fields":[{"name":"a","type":"int"}]}}]}"#;

const CASES: &[Case] = &[
    case("identical", A_INT, A_INT, FullTransitive, true),
    case("field added without default", A_INT, A_B, Backward, false),
    case(
        "field added with default",
        A_INT,
        A_B_DEFAULT,
        Backward,
        true,
    ),
    case(
        "field added without default, forward",
        A_INT,
        A_B,
        Forward,
        true,
    ),
    case(
        "field added with default, full",
        A_INT,
        A_B_DEFAULT,
        Full,
        true,
    ),
    case("field added without default, full", A_INT, A_B, Full, false),
    case(
        "optional union field added, full",
        A_INT,
        A_OPT_B,
        Full,
        true,
    ),
    case("field removed", A_B, A_INT, Backward, true),
    case(
        "field without default removed, forward",
        A_B,
        A_INT,
        Forward,
        false,
    ),
    case(
        "field with default removed, forward",
        A_B_DEFAULT,
        A_INT,
        Forward,
        true,
    ),
    case("int promoted to long", A_INT, A_LONG, Backward, true),
    case(
        "int promoted to long, forward",
        A_INT,
        A_LONG,
        Forward,
        false,
    ),
    case("long narrowed to int", A_LONG, A_INT, Backward, false),
    case("int promoted to double", A_INT, A_DOUBLE, Backward, true),
    case(
        "float promoted to double",
        A_FLOAT,
        A_DOUBLE,
        Backward,
        true,
    ),
    case(
        "double narrowed to float",
        A_DOUBLE,
        A_FLOAT,
        Backward,
        false,
    ),
    case("long promoted to float", A_LONG, A_FLOAT, Backward, true),
    case("string read as bytes", A_STRING, A_BYTES, Full, true),
    case("int changed to string", A_INT, A_STRING, Backward, false),
    case("enum symbol added", E_AB, E_ABC, Backward, true),
    case("enum symbol added, forward", E_AB, E_ABC, Forward, false),
    case("enum symbol removed", E_AB, E_A, Backward, false),
    case(
        "enum symbol removed, reader default",
        E_AB,
        E_A_DEFAULT,
        Backward,
        true,
    ),
    case(
        "int widened to nullable union",
        A_INT,
        A_NULLABLE,
        Backward,
        true,
    ),
    case(
        "nullable union narrowed to int",
        A_NULLABLE,
        A_INT,
        Backward,
        false,
    ),
    case(
        "union branch added",
        A_NULLABLE,
        A_NULL_INT_STRING,
        Backward,
        true,
    ),
    case(
        "union branch added, forward",
        A_NULLABLE,
        A_NULL_INT_STRING,
        Forward,
        false,
    ),
    case(
        "field renamed with alias",
        A_INT,
        RENAMED_WITH_ALIAS,
        Backward,
        true,
    ),
    case(
        "field renamed without alias",
        A_INT,
        RENAMED,
        Backward,
        false,
    ),
    case("record renamed", A_INT, OTHER_NAME, Backward, false),
    case(
        "array items promoted",
        ARRAY_INT,
        ARRAY_LONG,
        Backward,
        true,
    ),
    case(
        "array items narrowed, forward",
        ARRAY_INT,
        ARRAY_LONG,
        Forward,
        false,
    ),
    case("map values narrowed", MAP_LONG, MAP_INT, Backward, false),
    case("fixed size changed", FIXED_4, FIXED_8, Backward, false),
    case(
        "nested record field added",
        NESTED,
        NESTED_ADDED,
        Backward,
        false,
    ),
    case(
        "nested record field added, forward",
        NESTED,
        NESTED_ADDED,
        Forward,
        true,
    ),
    case(
        "decimal precision changed",
        DECIMAL_10_2,
        DECIMAL_12_2,
        Backward,
        false,
    ),
    case(
        "record changed to string",
        A_INT,
        r#""string""#,
        Backward,
        false,
    ),
    case("anything goes at NONE", A_INT, r#""string""#, None, true),
    case(
        "recursive type, field added with default",
        LIST,
        LIST_WITH_DEFAULT,
        Full,
        true,
    ),
    case(
        "recursive type, field type changed",
        LIST,
        LIST_OF_STRINGS,
        Backward,
        false,
    ),
    case(
        "record renamed with alias",
        A_INT,
        RECORD_RENAMED_WITH_ALIAS,
        Backward,
        true,
    ),
    case(
        "record renamed with alias, forward",
        A_INT,
        RECORD_RENAMED_WITH_ALIAS,
        Forward,
        false,
    ),
    case(
        "enum renamed with alias",
        E_AB,
        ENUM_RENAMED_WITH_ALIAS,
        Backward,
        true,
    ),
    case(
        "record moved namespace with full alias",
        NS_A,
        NS_B_ALIAS,
        Backward,
        true,
    ),
    case(
        "nested record renamed with alias",
        NESTED,
        NESTED_RENAMED,
        Backward,
        true,
    ),
    case(
        "field added with default, forward transitive",
        A_INT,
        A_B_DEFAULT,
        ForwardTransitive,
        true,
    ),
    case(
        "field added without default, backward transitive",
        A_INT,
        A_B,
        BackwardTransitive,
        false,
    ),
];

#[test]
fn avro_compatibility_table() {
    assert!(CASES.len() >= 30);
    run(SchemaType::Avro, CASES);
}

const V1_B_STRING: &str = A_B;
const V3_B_INT: &str = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#;

const TRANSITIVE: &[TransitiveCase] = &[
    // b is dropped, then comes back as an int: each step reads the one before,
    // but v3 cannot read v1's string b.
    TransitiveCase {
        name: "field dropped and re-added with another type, latest only",
        versions: [V1_B_STRING, A_INT, V3_B_INT],
        level: Backward,
        compatible: true,
    },
    TransitiveCase {
        name: "field dropped and re-added with another type, transitive",
        versions: [V1_B_STRING, A_INT, V3_B_INT],
        level: BackwardTransitive,
        compatible: false,
    },
    TransitiveCase {
        name: "field dropped and re-added with another type, full transitive",
        versions: [V1_B_STRING, A_INT, V3_B_INT],
        level: FullTransitive,
        compatible: false,
    },
    TransitiveCase {
        name: "defaults added one at a time, full transitive",
        versions: [A_INT, A_B_DEFAULT, A_B_DEFAULT],
        level: FullTransitive,
        compatible: true,
    },
];

#[test]
fn avro_transitive_levels_check_every_version() {
    run_transitive(SchemaType::Avro, TRANSITIVE);
}

#[test]
fn avro_identity_keeps_defaults_but_ignores_layout() {
    let parse = |t| ParsedSchema::parse_standalone(SchemaType::Avro, t).ok();
    let (a, b, c) = (
        parse(A_B),
        parse(A_B_DEFAULT),
        parse(
            "{ \"type\" : \"record\", \"name\":\"R\",\n \"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}]}",
        ),
    );
    let canonical = |s: &Option<ParsedSchema>| s.as_ref().map(|s| s.canonical().to_owned());
    assert_ne!(canonical(&a), canonical(&b));
    assert_eq!(canonical(&a), canonical(&c));
    assert_eq!(
        a.as_ref()
            .and_then(ParsedSchema::avro_parsing_canonical_form),
        b.as_ref()
            .and_then(ParsedSchema::avro_parsing_canonical_form)
    );
}
