//! Schemas that name other schemas, and the bounded walk that collects them.
//!
//! Confluent stores `references: [{name, subject, version}]` beside a
//! schema. The name is what the schema text uses: an Avro full type name,
//! a JSON Schema `$ref` URL, a Protobuf import path. Turning a subject and
//! version into text is the storage layer's job, so this crate asks the
//! caller through [`References`].

use std::collections::{BTreeMap, HashSet};

use crate::{MAX_REFERENCES, MAX_SCHEMA_BYTES, MAX_TOTAL_BYTES, SchemaError, SchemaType};

/// One referenced schema, resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The name the referring schema uses for it.
    pub name: String,
    /// Its type; it must match the referring schema's.
    pub schema_type: SchemaType,
    /// Its text.
    pub text: String,
    /// The names it references in turn.
    pub references: Vec<String>,
}

/// Resolves a reference name to a schema. The storage layer implements it
/// over the `_schemas` topic; tests use a map.
pub trait References {
    /// The schema registered under `name`, or `None` when there is none.
    fn resolve(&self, name: &str) -> Option<Reference>;
}

/// A resolver that knows no schema, for schemas without references.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReferences;

impl References for NoReferences {
    fn resolve(&self, _name: &str) -> Option<Reference> {
        None
    }
}

impl References for BTreeMap<String, Reference> {
    fn resolve(&self, name: &str) -> Option<Reference> {
        self.get(name).cloned()
    }
}

impl References for [Reference] {
    fn resolve(&self, name: &str) -> Option<Reference> {
        self.iter().find(|r| r.name == name).cloned()
    }
}

impl References for Vec<Reference> {
    fn resolve(&self, name: &str) -> Option<Reference> {
        self.as_slice().resolve(name)
    }
}

/// Collects the transitive references of a schema of type `schema_type`
/// whose text is `root_bytes` long and which names `names`, dependencies
/// first, each once. Refuses a cycle, an unknown name, a type mismatch,
/// more than [`MAX_REFERENCES`] schemas and more than [`MAX_TOTAL_BYTES`].
pub(crate) fn collect(
    schema_type: SchemaType,
    root_bytes: usize,
    names: &[String],
    resolver: &dyn References,
) -> Result<Vec<Reference>, SchemaError> {
    let mut walk = Walk {
        schema_type,
        resolver,
        total_bytes: root_bytes,
        on_path: Vec::new(),
        done: HashSet::new(),
        ordered: Vec::new(),
    };
    for name in names {
        walk.visit(name)?;
    }
    Ok(walk.ordered)
}

/// State of the depth-first walk. Its recursion depth is bounded by
/// [`MAX_REFERENCES`], because every level adds a distinct name to
/// `on_path` and the walk stops once that many names are seen.
struct Walk<'a> {
    schema_type: SchemaType,
    resolver: &'a dyn References,
    total_bytes: usize,
    /// Names being resolved, root-most first: meeting one again is a cycle.
    on_path: Vec<String>,
    /// Names already resolved, so a diamond is visited once.
    done: HashSet<String>,
    /// Resolved references, dependencies before their dependants.
    ordered: Vec<Reference>,
}

impl Walk<'_> {
    fn visit(&mut self, name: &str) -> Result<(), SchemaError> {
        if self.on_path.iter().any(|n| n == name) {
            return Err(SchemaError::ReferenceCycle {
                name: name.to_owned(),
            });
        }
        if self.done.contains(name) {
            return Ok(());
        }
        if self.done.len() + self.on_path.len() >= MAX_REFERENCES {
            return Err(SchemaError::TooManyReferences {
                limit: MAX_REFERENCES,
            });
        }
        let reference =
            self.resolver
                .resolve(name)
                .ok_or_else(|| SchemaError::ReferenceNotFound {
                    name: name.to_owned(),
                })?;
        if reference.schema_type != self.schema_type {
            return Err(SchemaError::ReferenceTypeMismatch {
                name: name.to_owned(),
                expected: self.schema_type,
                found: reference.schema_type,
            });
        }
        if reference.text.len() > MAX_SCHEMA_BYTES {
            return Err(SchemaError::TooLarge {
                bytes: reference.text.len(),
                limit: MAX_SCHEMA_BYTES,
            });
        }
        self.total_bytes += reference.text.len();
        if self.total_bytes > MAX_TOTAL_BYTES {
            return Err(SchemaError::TotalTooLarge {
                bytes: self.total_bytes,
                limit: MAX_TOTAL_BYTES,
            });
        }
        self.on_path.push(name.to_owned());
        for inner in &reference.references {
            self.visit(inner)?;
        }
        self.on_path.pop();
        self.done.insert(name.to_owned());
        self.ordered.push(reference);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, refs: &[&str]) -> Reference {
        Reference {
            name: name.to_owned(),
            schema_type: SchemaType::Json,
            text: "{}".to_owned(),
            references: refs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn dependencies_come_first_and_diamonds_once() {
        let refs = vec![
            reference("a", &["b", "c"]),
            reference("b", &["d"]),
            reference("c", &["d"]),
            reference("d", &[]),
        ];
        let got = collect(SchemaType::Json, 2, &["a".to_owned()], &refs).ok();
        let names: Vec<_> = got
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["d", "b", "c", "a"]);
    }

    #[test]
    fn a_cycle_is_a_typed_error() {
        let refs = vec![reference("a", &["b"]), reference("b", &["a"])];
        assert!(matches!(
            collect(SchemaType::Json, 2, &["a".to_owned()], &refs),
            Err(SchemaError::ReferenceCycle { .. })
        ));
        let self_loop = vec![reference("a", &["a"])];
        assert!(matches!(
            collect(SchemaType::Json, 2, &["a".to_owned()], &self_loop),
            Err(SchemaError::ReferenceCycle { .. })
        ));
    }

    #[test]
    fn a_long_chain_stops_at_the_limit() {
        let refs: Vec<_> = (0..1000)
            .map(|i| Reference {
                references: vec![format!("r{}", i + 1)],
                ..reference(&format!("r{i}"), &[])
            })
            .collect();
        assert!(matches!(
            collect(SchemaType::Json, 2, &["r0".to_owned()], &refs),
            Err(SchemaError::TooManyReferences { .. })
        ));
    }

    #[test]
    fn unknown_and_mistyped_references_are_refused() {
        assert!(matches!(
            collect(SchemaType::Json, 2, &["x".to_owned()], &NoReferences),
            Err(SchemaError::ReferenceNotFound { .. })
        ));
        let refs = vec![reference("a", &[])];
        assert!(matches!(
            collect(SchemaType::Avro, 2, &["a".to_owned()], &refs),
            Err(SchemaError::ReferenceTypeMismatch { .. })
        ));
    }
}
