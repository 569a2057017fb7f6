//! Confluent's compatibility levels over a subject's version history.

use std::fmt;
use std::str::FromStr;

use crate::{ParsedSchema, SchemaError};

/// How a new schema must relate to a subject's earlier versions. Names and
/// meanings are Confluent's; the default is `BACKWARD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompatibilityLevel {
    /// The new schema reads data written with the latest version.
    #[default]
    Backward,
    /// The new schema reads data written with every earlier version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every earlier version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
    /// No check.
    None,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
        CompatibilityLevel::None,
    ];

    /// The name Confluent's REST API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
            CompatibilityLevel::None => "NONE",
        }
    }

    /// Whether the level compares with every earlier version, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl FromStr for CompatibilityLevel {
    type Err = SchemaError;

    fn from_str(name: &str) -> Result<CompatibilityLevel, SchemaError> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == name)
            .ok_or_else(|| SchemaError::UnknownCompatibilityLevel {
                name: name.chars().take(64).collect(),
            })
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks `new` against a subject's `existing` versions, oldest first, at
/// `level`. Non-transitive levels compare with the latest version only.
/// On failure, returns one message per incompatibility, each naming the
/// version (1-based position in `existing`) and the direction.
pub fn check<S: AsRef<ParsedSchema>>(
    level: CompatibilityLevel,
    new: &ParsedSchema,
    existing: &[S],
) -> Result<(), Vec<String>> {
    let compared = if level.is_transitive() {
        existing
    } else {
        existing
            .len()
            .checked_sub(1)
            .map_or(&[][..], |i| &existing[i..])
    };
    let first_version = existing.len() - compared.len() + 1;
    let mut problems = Vec::new();
    for (offset, old) in compared.iter().enumerate() {
        let old = old.as_ref();
        let version = first_version + offset;
        if level.backward() {
            for p in new.can_read(old) {
                problems.push(format!("new schema cannot read version {version}: {p}"));
            }
        }
        if level.forward() {
            for p in old.can_read(new) {
                problems.push(format!("version {version} cannot read the new schema: {p}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchemaType;

    fn json(text: &str) -> Option<ParsedSchema> {
        ParsedSchema::parse_standalone(SchemaType::Json, text).ok()
    }

    #[test]
    fn the_first_version_is_always_compatible() {
        let Some(new) = json(r#"{"type":"string"}"#) else {
            panic!("schema does not parse");
        };
        for level in CompatibilityLevel::ALL {
            assert!(check::<ParsedSchema>(level, &new, &[]).is_ok());
        }
    }

    #[test]
    fn a_changed_schema_type_is_incompatible_unless_none() {
        let (Some(old), Ok(new)) = (
            json(r#"{"type":"string"}"#),
            ParsedSchema::parse_standalone(SchemaType::Avro, r#""string""#),
        ) else {
            panic!("schemas do not parse");
        };
        let verdict = check(
            CompatibilityLevel::Backward,
            &new,
            std::slice::from_ref(&old),
        );
        assert!(matches!(verdict, Err(ref p) if p[0].contains("schema type changed")));
        assert!(check(CompatibilityLevel::None, &new, &[old]).is_ok());
    }

    #[test]
    fn messages_name_the_version_and_the_direction() {
        let (Some(v1), Some(v2), Some(new)) = (
            json(r#"{"type":"integer"}"#),
            json(r#"{"type":"number"}"#),
            json(r#"{"type":"number"}"#),
        ) else {
            panic!("schemas do not parse");
        };
        let verdict = check(CompatibilityLevel::FullTransitive, &new, &[v1, v2]);
        let Err(problems) = verdict else {
            panic!("v1 cannot read numbers");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("version 1 cannot read the new schema"));
    }

    #[test]
    fn level_names_round_trip_and_default_is_backward() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(
                level.as_str().parse::<CompatibilityLevel>().ok(),
                Some(level)
            );
        }
        assert_eq!(CompatibilityLevel::default(), CompatibilityLevel::Backward);
        assert!(matches!(
            "backward".parse::<CompatibilityLevel>(),
            Err(SchemaError::UnknownCompatibilityLevel { .. })
        ));
    }
}
