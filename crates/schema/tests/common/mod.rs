//! Shared helpers for the compatibility tables.

#![allow(dead_code)]

use sluice_schema::{CompatibilityLevel, ParsedSchema, SchemaType, check};

/// One row: an old and a new schema, a level, and whether the registry
/// must accept the new schema.
#[derive(Debug)]
pub struct Case {
    pub name: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub level: CompatibilityLevel,
    pub compatible: bool,
}

/// A row, in the tables' compact form.
pub const fn case(
    name: &'static str,
    old: &'static str,
    new: &'static str,
    level: CompatibilityLevel,
    compatible: bool,
) -> Case {
    Case {
        name,
        old,
        new,
        level,
        compatible,
    }
}

/// Three versions (oldest first, the last one new), a level, and the verdict.
#[derive(Debug)]
pub struct TransitiveCase {
    pub name: &'static str,
    pub versions: [&'static str; 3],
    pub level: CompatibilityLevel,
    pub compatible: bool,
}

fn parse(schema_type: SchemaType, case: &str, text: &str) -> ParsedSchema {
    match ParsedSchema::parse_standalone(schema_type, text) {
        Ok(s) => s,
        Err(e) => panic!("{case}: schema does not parse: {e}\n{text}"),
    }
}

/// Runs every row and reports all failures at once, so one broken rule
/// does not hide the others.
pub fn run(schema_type: SchemaType, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let old = parse(schema_type, case.name, case.old);
        let new = parse(schema_type, case.name, case.new);
        let verdict = check(case.level, &new, std::slice::from_ref(&old));
        if verdict.is_ok() != case.compatible {
            failures.push(format!(
                "{} ({}): expected compatible={}, got {:?}",
                case.name, case.level, case.compatible, verdict
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs transitive rows: the first two versions are registered, the third
/// is new.
pub fn run_transitive(schema_type: SchemaType, cases: &[TransitiveCase]) {
    let mut failures = Vec::new();
    for case in cases {
        let [v1, v2, v3] = case.versions.map(|t| parse(schema_type, case.name, t));
        let verdict = check(case.level, &v3, &[v1, v2]);
        if verdict.is_ok() != case.compatible {
            failures.push(format!(
                "{} ({}): expected compatible={}, got {:?}",
                case.name, case.level, case.compatible, verdict
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
