//! The registry's contents: what replaying `_schemas` up to some offset
//! yields, and the rules that turn a request into the records to append.
//!
//! Pure: no I/O. [`State::apply`] takes one record, the query methods
//! answer reads, and the `plan_*` methods check a write against the current
//! contents and return the records that make it, without changing
//! anything. The caller appends those records and applies them back from
//! the log, so the log is the only source of truth and every node that
//! replays it reaches the same contents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use sluice_schema::{CompatibilityLevel, ParsedSchema, Reference, SchemaType};

use crate::error::RegistryError;
use crate::format::{
    ConfigValue, DeleteSubjectValue, Key, ModeValue, SchemaReference, SchemaValue, decode_value,
    json_bytes,
};

/// Most schema ids the registry holds. Each costs its text and, once used
/// in a check, its parsed form.
pub const MAX_SCHEMAS: usize = 100_000;
/// Most bytes of schema text the registry holds over all ids.
pub const MAX_SCHEMA_TEXT_BYTES: usize = 512 * 1024 * 1024;
/// Most subjects.
pub const MAX_SUBJECTS: usize = 100_000;
/// Most versions one subject keeps (soft-deleted ones count).
pub const MAX_VERSIONS_PER_SUBJECT: usize = 10_000;
/// Longest subject name in bytes: room for a TopicRecordNameStrategy
/// subject (a topic name, a dash and a fully qualified record name).
pub const MAX_SUBJECT_BYTES: usize = 1024;
/// Most references one request may list directly (the schema crate bounds
/// the transitive walk).
pub const MAX_DIRECT_REFERENCES: usize = sluice_schema::MAX_REFERENCES;

/// The registry's count and size bounds. [`Limits::default`] holds the
/// named constants; tests lower them to reach each bound quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// [`MAX_SCHEMAS`].
    pub schemas: usize,
    /// [`MAX_SCHEMA_TEXT_BYTES`].
    pub schema_text_bytes: usize,
    /// [`MAX_SUBJECTS`].
    pub subjects: usize,
    /// [`MAX_VERSIONS_PER_SUBJECT`].
    pub versions_per_subject: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            schemas: MAX_SCHEMAS,
            schema_text_bytes: MAX_SCHEMA_TEXT_BYTES,
            subjects: MAX_SUBJECTS,
            versions_per_subject: MAX_VERSIONS_PER_SUBJECT,
        }
    }
}

/// A registry mode, Confluent's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Reads and writes.
    #[default]
    ReadWrite,
    /// Reads only.
    ReadOnly,
    /// Writes keep the ids and versions the client names (migrations).
    Import,
}

impl Mode {
    /// Confluent's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::Import => "IMPORT",
        }
    }

    /// Parses a mode name, any case.
    pub fn parse(name: &str) -> Result<Mode, RegistryError> {
        match name.to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Mode::ReadWrite),
            "READONLY" | "READONLY_OVERRIDE" => Ok(Mode::ReadOnly),
            "IMPORT" => Ok(Mode::Import),
            _ => Err(RegistryError::InvalidMode),
        }
    }
}

/// Parses a compatibility level name, any case.
pub fn parse_level(name: &str) -> Result<CompatibilityLevel, RegistryError> {
    name.to_ascii_uppercase()
        .parse()
        .map_err(|_| RegistryError::InvalidCompatibilityLevel)
}

/// One schema as registered: the content behind an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSchema {
    /// Its type.
    pub schema_type: SchemaType,
    /// The text as registered.
    pub text: String,
    /// The schemas it references.
    pub references: Vec<SchemaReference>,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VersionEntry {
    id: i32,
    deleted: bool,
}

/// A version as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version.
    pub version: i32,
    /// The global id.
    pub id: i32,
    /// The schema.
    pub schema: Arc<StoredSchema>,
    /// Soft-deleted.
    pub deleted: bool,
}

/// Which version a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest one (`latest` or `-1`).
    Latest,
    /// A version number.
    Number(i32),
}

impl VersionSpec {
    /// Parses a version path segment: `latest`, `-1`, or 1..=i32::MAX.
    pub fn parse(text: &str) -> Result<VersionSpec, RegistryError> {
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionSpec::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(VersionSpec::Latest),
            Ok(v) if v >= 1 => Ok(VersionSpec::Number(v)),
            _ => Err(RegistryError::InvalidVersion(text.to_owned())),
        }
    }
}

/// A schema a client sends (register, lookup, compatibility check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchema {
    /// Its type.
    pub schema_type: SchemaType,
    /// Its text.
    pub text: String,
    /// The schemas it references.
    pub references: Vec<SchemaReference>,
}

/// What a register request asks for beyond the schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegisterOptions {
    /// Store the normalised text (Avro, JSON Schema).
    pub normalize: bool,
    /// IMPORT mode: the id to use.
    pub id: Option<i32>,
    /// IMPORT mode: the version to use.
    pub version: Option<i32>,
}

/// A record to append: a key and its value (`None`: a tombstone).
pub type Record = (Key, Option<Vec<u8>>);

/// What a register needs: nothing (already registered) or records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterPlan {
    /// The subject already has this schema: its id.
    Existing(i32),
    /// Append these records; the schema gets `id`.
    Write {
        /// The id the schema gets.
        id: i32,
        /// The records.
        records: Vec<Record>,
    },
}

/// The result of a compatibility check request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityResult {
    /// Whether the schema is compatible.
    pub is_compatible: bool,
    /// Why not, one message per problem.
    pub messages: Vec<String>,
}

/// The canonical identity of a schema, for "is it already registered".
type ContentKey = (SchemaType, String, Vec<SchemaReference>);

/// The registry's contents.
#[derive(Debug, Default)]
pub struct State {
    schemas: BTreeMap<i32, Arc<StoredSchema>>,
    subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    global_level: Option<CompatibilityLevel>,
    levels: BTreeMap<String, CompatibilityLevel>,
    global_mode: Option<Mode>,
    modes: BTreeMap<String, Mode>,
    /// The highest id ever applied, deleted or not: new ids go above it.
    max_id: i32,
    text_bytes: usize,
    /// Parsed forms, filled on first use. A stored schema that no longer
    /// parses (written by another tool) is remembered as `None`.
    parsed: HashMap<i32, Option<Arc<ParsedSchema>>>,
    /// Canonical identity → id, for every id in `parsed`.
    canonical: HashMap<ContentKey, i32>,
    limits: Limits,
}

impl State {
    /// An empty registry.
    pub fn new() -> State {
        State::default()
    }

    /// An empty registry with other bounds than the named constants.
    pub fn with_limits(limits: Limits) -> State {
        State {
            limits,
            ..State::default()
        }
    }

    // -- replay ----------------------------------------------------------

    /// Applies one `_schemas` record. Records that break an invariant (a
    /// value that names another key, an unknown type, a bound) are logged
    /// and skipped: anyone can produce to `_schemas`, and a bad record must
    /// cost only itself.
    pub fn apply(&mut self, key: &Key, value: Option<&[u8]>) {
        match (key, value) {
            (Key::Schema { subject, version }, Some(value)) => {
                match decode_value::<SchemaValue>(value) {
                    Ok(v) => self.apply_schema(subject, *version, v),
                    Err(e) => tracing::warn!(subject, version, "skipping _schemas record: {e}"),
                }
            }
            (Key::Schema { subject, version }, None) => self.remove_version(subject, *version),
            (Key::Config { subject }, value) => {
                let level = match value.map(decode_value::<ConfigValue>) {
                    None => None,
                    Some(Ok(v)) => match parse_level(&v.compatibility_level) {
                        Ok(level) => Some(level),
                        Err(_) => {
                            tracing::warn!(
                                level = v.compatibility_level,
                                "skipping _schemas config record with an unknown level"
                            );
                            return;
                        }
                    },
                    Some(Err(e)) => {
                        tracing::warn!("skipping _schemas config record: {e}");
                        return;
                    }
                };
                match subject {
                    None => self.global_level = level,
                    Some(s) => set_or_clear(&mut self.levels, s, level),
                }
            }
            (Key::Mode { subject }, value) => {
                let mode = match value.map(decode_value::<ModeValue>) {
                    None => None,
                    Some(Ok(v)) => match Mode::parse(&v.mode) {
                        Ok(mode) => Some(mode),
                        Err(_) => {
                            tracing::warn!(mode = v.mode, "skipping _schemas mode record");
                            return;
                        }
                    },
                    Some(Err(e)) => {
                        tracing::warn!("skipping _schemas mode record: {e}");
                        return;
                    }
                };
                match subject {
                    None => self.global_mode = mode,
                    Some(s) => set_or_clear(&mut self.modes, s, mode),
                }
            }
            (Key::DeleteSubject { subject }, Some(value)) => {
                match decode_value::<DeleteSubjectValue>(value) {
                    Ok(v) => {
                        if let Some(versions) = self.subjects.get_mut(subject) {
                            for (_, entry) in versions.range_mut(..=v.version) {
                                entry.deleted = true;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(subject, "skipping _schemas record: {e}"),
                }
            }
            (Key::DeleteSubject { .. }, None) | (Key::Ignored, _) => {}
        }
    }

    fn apply_schema(&mut self, subject: &str, version: i32, v: SchemaValue) {
        if v.subject != subject || v.version != version || v.id < 1 || version < 1 {
            tracing::warn!(
                subject,
                version,
                id = v.id,
                "skipping _schemas record whose value does not match its key"
            );
            return;
        }
        let schema_type = match v.schema_type() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(subject, version, "skipping _schemas record: {e}");
                return;
            }
        };
        let is_new_subject = !self.subjects.contains_key(subject);
        let versions_full = self.subjects.get(subject).is_some_and(|vs| {
            vs.len() >= self.limits.versions_per_subject && !vs.contains_key(&version)
        });
        if (is_new_subject && self.subjects.len() >= self.limits.subjects) || versions_full {
            tracing::error!(
                subject,
                version,
                "skipping _schemas record: the registry's subject or version bound is reached"
            );
            return;
        }
        if !self.schemas.contains_key(&v.id) {
            if self.schemas.len() >= self.limits.schemas
                || self.text_bytes + v.schema.len() > self.limits.schema_text_bytes
            {
                tracing::error!(
                    id = v.id,
                    "skipping _schemas record: the registry's schema bound is reached"
                );
                return;
            }
            self.text_bytes += v.schema.len();
            self.schemas.insert(
                v.id,
                Arc::new(StoredSchema {
                    schema_type,
                    text: v.schema,
                    references: v.references,
                }),
            );
        }
        self.max_id = self.max_id.max(v.id);
        self.subjects.entry(subject.to_owned()).or_default().insert(
            version,
            VersionEntry {
                id: v.id,
                deleted: v.deleted,
            },
        );
    }

    fn remove_version(&mut self, subject: &str, version: i32) {
        let Some(versions) = self.subjects.get_mut(subject) else {
            return;
        };
        let Some(entry) = versions.remove(&version) else {
            return;
        };
        if versions.is_empty() {
            self.subjects.remove(subject);
        }
        let still_used = self
            .subjects
            .values()
            .any(|vs| vs.values().any(|e| e.id == entry.id));
        if !still_used && let Some(schema) = self.schemas.remove(&entry.id) {
            self.text_bytes -= schema.text.len();
            if let Some(Some(parsed)) = self.parsed.remove(&entry.id) {
                self.canonical.remove(&content_key(&schema, &parsed));
            }
        }
    }

    // -- reads -----------------------------------------------------------

    /// Subjects with at least one live version (or any version, with
    /// `deleted`), starting with `prefix`.
    pub fn subjects(&self, deleted: bool, prefix: &str) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(s, vs)| s.starts_with(prefix) && vs.values().any(|e| deleted || !e.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The versions of `subject`: live ones, or all with `deleted`.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let versions: Vec<i32> = self
            .subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, e)| deleted || !e.deleted)
                    .map(|(v, _)| *v)
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Ok(versions)
    }

    /// One version of `subject`; a soft-deleted one only with `deleted`.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let versions = self
            .subjects
            .get(subject)
            .filter(|vs| vs.values().any(|e| deleted || !e.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        let found = match spec {
            VersionSpec::Latest => versions.iter().rev().find(|(_, e)| deleted || !e.deleted),
            VersionSpec::Number(v) => versions
                .get_key_value(&v)
                .filter(|(_, e)| deleted || !e.deleted),
        };
        let (version, entry) = found.ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_owned(),
            version: match spec {
                VersionSpec::Latest => -1,
                VersionSpec::Number(v) => v,
            },
        })?;
        self.subject_version(subject, *version, *entry)
    }

    fn subject_version(
        &self,
        subject: &str,
        version: i32,
        entry: VersionEntry,
    ) -> Result<SubjectVersion, RegistryError> {
        let schema = self.schemas.get(&entry.id).ok_or_else(|| {
            RegistryError::Store(format!(
                "subject {subject} version {version} names schema {} which is not stored",
                entry.id
            ))
        })?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version,
            id: entry.id,
            schema: Arc::clone(schema),
            deleted: entry.deleted,
        })
    }

    /// The schema with global id `id`.
    pub fn schema(&self, id: i32) -> Result<Arc<StoredSchema>, RegistryError> {
        self.schemas
            .get(&id)
            .cloned()
            .ok_or(RegistryError::SchemaIdNotFound(id))
    }

    /// Schema `id` as Confluent's `format` query asks for it: `serialized`
    /// turns a Protobuf schema into the base64 of its encoded descriptor
    /// (what confluent-kafka's Python deserializer reads); anything else
    /// is the text as registered.
    pub fn schema_in_format(
        &mut self,
        id: i32,
        format: Option<&str>,
    ) -> Result<Arc<StoredSchema>, RegistryError> {
        let stored = self.schema(id)?;
        if stored.schema_type != SchemaType::Protobuf || format != Some("serialized") {
            return Ok(stored);
        }
        let serialized = self.parsed_of(id)?.protobuf_serialized();
        Ok(match serialized {
            Some(text) if text != stored.text => Arc::new(StoredSchema {
                text,
                ..(*stored).clone()
            }),
            _ => stored,
        })
    }

    /// The record name of schema `id` (see
    /// [`sluice_schema::ParsedSchema::record_name`]).
    pub fn record_name(&mut self, id: i32, message_indexes: &[i32]) -> Option<String> {
        self.parsed_of(id).ok()?.record_name(message_indexes)
    }

    /// Every stored schema id with its schema, in id order.
    pub fn schemas(&self) -> impl Iterator<Item = (i32, &Arc<StoredSchema>)> {
        self.schemas.iter().map(|(id, s)| (*id, s))
    }

    /// Whether a live version of `subject` holds schema `id`: the
    /// validation check, a lookup in one subject rather than a walk over all.
    pub fn subject_holds(&self, subject: &str, id: i32) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|vs| vs.values().any(|e| e.id == id && !e.deleted))
    }

    /// The (subject, version) pairs that hold schema `id`.
    pub fn versions_of_id(
        &self,
        id: i32,
        deleted: bool,
    ) -> Result<Vec<(String, i32)>, RegistryError> {
        if !self.schemas.contains_key(&id) {
            return Err(RegistryError::SchemaIdNotFound(id));
        }
        Ok(self
            .subjects
            .iter()
            .flat_map(|(s, vs)| {
                vs.iter()
                    .filter(move |(_, e)| e.id == id && (deleted || !e.deleted))
                    .map(move |(v, _)| (s.clone(), *v))
            })
            .collect())
    }

    /// Ids of the live schemas that reference `subject` version `version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let live: BTreeSet<i32> = self
            .subjects
            .values()
            .flat_map(|vs| vs.values().filter(|e| !e.deleted).map(|e| e.id))
            .collect();
        live.into_iter()
            .filter(|id| {
                self.schemas[id]
                    .references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version)
            })
            .collect()
    }

    /// The compatibility level of `subject` (`None`: the global one). For a
    /// subject, without a level of its own: the global one when
    /// `default_to_global`, else 40408.
    pub fn level(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<CompatibilityLevel, RegistryError> {
        let global = self.global_level.unwrap_or_default();
        match subject {
            None => Ok(global),
            Some(s) => match self.levels.get(s) {
                Some(level) => Ok(*level),
                None if default_to_global => Ok(global),
                None => Err(RegistryError::SubjectLevelNotConfigured(s.to_owned())),
            },
        }
    }

    /// The mode of `subject` (`None`: the global one), like [`State::level`].
    pub fn mode(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Mode, RegistryError> {
        let global = self.global_mode.unwrap_or_default();
        match subject {
            None => Ok(global),
            Some(s) => match self.modes.get(s) {
                Some(mode) => Ok(*mode),
                None if default_to_global => Ok(global),
                None => Err(RegistryError::SubjectModeNotConfigured(s.to_owned())),
            },
        }
    }

    /// The version of `subject` that holds `schema` (a soft-deleted one
    /// only with `deleted`).
    pub fn lookup(
        &mut self,
        subject: &str,
        schema: &NewSchema,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        if !self
            .subjects
            .get(subject)
            .is_some_and(|vs| vs.values().any(|e| deleted || !e.deleted))
        {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        let parsed = self.parse_new(schema)?;
        let key = (
            schema.schema_type,
            parsed.canonical().to_owned(),
            schema.references.clone(),
        );
        match self.find_in_subject(subject, &key, deleted) {
            Some((version, entry)) => self.subject_version(subject, version, entry),
            None => Err(RegistryError::SchemaNotFound),
        }
    }

    // -- writes ----------------------------------------------------------

    /// Checks a register of `schema` under `subject` and returns what it
    /// takes: Confluent's rules (see `docs/design.md`, "Schema registry").
    pub fn plan_register(
        &mut self,
        subject: &str,
        schema: &NewSchema,
        options: RegisterOptions,
    ) -> Result<RegisterPlan, RegistryError> {
        check_subject(subject)?;
        let mode = self.mode(Some(subject), true)?;
        match mode {
            Mode::ReadOnly => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is in read-only mode"
                )));
            }
            Mode::ReadWrite if options.id.is_some() || options.version.is_some() => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is not in import mode; a schema id or version may be given only in IMPORT mode"
                )));
            }
            _ => {}
        }
        let parsed = self.parse_new(schema)?;
        let key = (
            schema.schema_type,
            parsed.canonical().to_owned(),
            schema.references.clone(),
        );
        if options.id.is_none()
            && options.version.is_none()
            && let Some((_, entry)) = self.find_in_subject(subject, &key, false)
        {
            return Ok(RegisterPlan::Existing(entry.id));
        }
        if mode != Mode::Import {
            let level = self.level(Some(subject), true)?;
            let existing = self.live_parsed(subject)?;
            sluice_schema::check(level, &parsed, &existing).map_err(|messages| {
                RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    messages,
                }
            })?;
        }
        let id = match options.id {
            Some(id) if id < 1 => {
                return Err(RegistryError::InvalidSchema(format!(
                    "schema id {id} is not positive"
                )));
            }
            Some(id) => {
                if self.schemas.contains_key(&id) && self.canonical_id(id).as_ref() != Some(&key) {
                    return Err(RegistryError::IdInUse(id));
                }
                id
            }
            None => {
                self.parse_all();
                match self.canonical.get(&key) {
                    Some(id) => *id,
                    None => self.max_id.checked_add(1).ok_or_else(|| {
                        RegistryError::LimitReached("schema ids are exhausted".into())
                    })?,
                }
            }
        };
        let versions = self.subjects.get(subject);
        let version = match options.version {
            Some(v) if v < 1 => return Err(RegistryError::InvalidVersion(v.to_string())),
            Some(v) => {
                if versions.is_some_and(|vs| vs.contains_key(&v)) {
                    return Err(RegistryError::OperationNotPermitted(format!(
                        "Subject {subject} already has a version {v}"
                    )));
                }
                v
            }
            None => versions
                .and_then(|vs| vs.keys().next_back().copied())
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| RegistryError::LimitReached("versions are exhausted".into()))?,
        };
        self.check_room(subject, id, &schema.text)?;
        let text = if options.normalize {
            normalized_text(schema, &parsed)
        } else {
            schema.text.clone()
        };
        let value = SchemaValue {
            subject: subject.to_owned(),
            version,
            id,
            schema_type: (schema.schema_type != SchemaType::Avro)
                .then(|| schema.schema_type.as_str().to_owned()),
            references: schema.references.clone(),
            schema: text,
            deleted: false,
        };
        Ok(RegisterPlan::Write {
            id,
            records: vec![(
                Key::Schema {
                    subject: subject.to_owned(),
                    version,
                },
                Some(json_bytes(&value)),
            )],
        })
    }

    fn check_room(&self, subject: &str, id: i32, text: &str) -> Result<(), RegistryError> {
        let limits = self.limits;
        match self.subjects.get(subject) {
            None if self.subjects.len() >= limits.subjects => {
                return Err(RegistryError::LimitReached(format!(
                    "the registry holds {} subjects, its limit",
                    limits.subjects
                )));
            }
            Some(vs) if vs.len() >= limits.versions_per_subject => {
                return Err(RegistryError::LimitReached(format!(
                    "subject {subject} holds {} versions, the limit; delete some permanently",
                    limits.versions_per_subject
                )));
            }
            _ => {}
        }
        if !self.schemas.contains_key(&id)
            && (self.schemas.len() >= limits.schemas
                || self.text_bytes + text.len() > limits.schema_text_bytes)
        {
            return Err(RegistryError::LimitReached(format!(
                "the registry holds {} schemas of {} bytes; its limits are {} schemas and {} bytes",
                self.schemas.len(),
                self.text_bytes,
                limits.schemas,
                limits.schema_text_bytes
            )));
        }
        Ok(())
    }

    /// Checks a delete of one version and returns the record that makes it.
    pub fn plan_delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<(i32, Vec<Record>), RegistryError> {
        self.check_writable(subject)?;
        // `latest` names the newest live version; a permanent delete names
        // a soft-deleted one, so it looks at every version.
        let found = self.version(subject, spec, permanent)?;
        let version = found.version;
        if permanent && !found.deleted {
            return Err(RegistryError::VersionNotSoftDeleted {
                subject: subject.to_owned(),
                version,
            });
        }
        if !permanent && found.deleted {
            return Err(RegistryError::VersionSoftDeleted {
                subject: subject.to_owned(),
                version,
            });
        }
        if !self.referenced_by(subject, version).is_empty() {
            return Err(RegistryError::ReferenceExists {
                subject: subject.to_owned(),
                version,
            });
        }
        let record = if permanent {
            (
                Key::Schema {
                    subject: subject.to_owned(),
                    version,
                },
                None,
            )
        } else {
            schema_record(&found, true)
        };
        Ok((version, vec![record]))
    }

    /// Checks a delete of a whole subject and returns the versions it
    /// deletes and the records that make it.
    pub fn plan_delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<(Vec<i32>, Vec<Record>), RegistryError> {
        self.check_writable(subject)?;
        let versions = self
            .subjects
            .get(subject)
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_owned()))?;
        let all_deleted = versions.values().all(|e| e.deleted);
        if permanent && !all_deleted {
            return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
        }
        if !permanent && all_deleted {
            return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
        }
        for (version, entry) in versions {
            if !entry.deleted && !self.referenced_by(subject, *version).is_empty() {
                return Err(RegistryError::ReferenceExists {
                    subject: subject.to_owned(),
                    version: *version,
                });
            }
        }
        let mut deleted = Vec::new();
        let mut records = Vec::new();
        for (version, entry) in versions {
            let key = Key::Schema {
                subject: subject.to_owned(),
                version: *version,
            };
            if permanent {
                deleted.push(*version);
                records.push((key, None));
            } else if !entry.deleted {
                deleted.push(*version);
                records.push(schema_record(
                    &self.subject_version(subject, *version, *entry)?,
                    true,
                ));
            }
        }
        if permanent {
            // Confluent drops a subject's own level and mode with it.
            let subject = Some(subject.to_owned());
            if self
                .levels
                .contains_key(subject.as_deref().unwrap_or_default())
            {
                records.push((
                    Key::Config {
                        subject: subject.clone(),
                    },
                    None,
                ));
            }
            if self
                .modes
                .contains_key(subject.as_deref().unwrap_or_default())
            {
                records.push((Key::Mode { subject }, None));
            }
        }
        Ok((deleted, records))
    }

    /// The record that sets (`Some`) or clears the level of `subject`
    /// (`None`: the global one).
    pub fn plan_set_level(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
    ) -> Result<Vec<Record>, RegistryError> {
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let value = level.map(|l| {
            json_bytes(&ConfigValue {
                compatibility_level: l.as_str().to_owned(),
            })
        });
        Ok(vec![(
            Key::Config {
                subject: subject.map(str::to_owned),
            },
            value,
        )])
    }

    /// The record that sets (`Some`) or clears the mode of `subject`
    /// (`None`: the global one). IMPORT needs an empty registry (or
    /// subject) unless `force`.
    pub fn plan_set_mode(
        &self,
        subject: Option<&str>,
        mode: Option<Mode>,
        force: bool,
    ) -> Result<Vec<Record>, RegistryError> {
        if let Some(s) = subject {
            check_subject(s)?;
        }
        if mode == Some(Mode::Import) && !force {
            let has_schemas = match subject {
                None => !self.subjects.is_empty(),
                Some(s) => self.subjects.contains_key(s),
            };
            if has_schemas {
                return Err(RegistryError::OperationNotPermitted(
                    "Cannot import since found existing subjects".into(),
                ));
            }
        }
        let value = mode.map(|m| {
            json_bytes(&ModeValue {
                mode: m.as_str().to_owned(),
            })
        });
        Ok(vec![(
            Key::Mode {
                subject: subject.map(str::to_owned),
            },
            value,
        )])
    }

    /// Whether `schema` could be registered under `subject` as far as
    /// compatibility goes: against `version` only, or (`None`) against the
    /// versions the subject's level compares with.
    pub fn check_compatibility(
        &mut self,
        subject: &str,
        schema: &NewSchema,
        version: Option<VersionSpec>,
    ) -> Result<CompatibilityResult, RegistryError> {
        let parsed = self.parse_new(schema)?;
        let level = self.level(Some(subject), true)?;
        let existing = match version {
            None => self.live_parsed(subject)?,
            Some(spec) => match self.version(subject, spec, false) {
                Ok(found) => vec![self.parsed_of(found.id)?],
                // Checking against the latest version of a subject that
                // has none: nothing to be incompatible with.
                Err(RegistryError::SubjectNotFound(_)) if spec == VersionSpec::Latest => Vec::new(),
                Err(e) => return Err(e),
            },
        };
        let level = match (version, level) {
            // Against one named version, the transitive levels mean their
            // plain direction.
            (Some(_), CompatibilityLevel::BackwardTransitive) => CompatibilityLevel::Backward,
            (Some(_), CompatibilityLevel::ForwardTransitive) => CompatibilityLevel::Forward,
            (Some(_), CompatibilityLevel::FullTransitive) => CompatibilityLevel::Full,
            (_, level) => level,
        };
        Ok(match sluice_schema::check(level, &parsed, &existing) {
            Ok(()) => CompatibilityResult {
                is_compatible: true,
                messages: Vec::new(),
            },
            Err(messages) => CompatibilityResult {
                is_compatible: false,
                messages,
            },
        })
    }

    /// Refuses writes to a subject in READONLY mode.
    pub fn check_writable(&self, subject: &str) -> Result<(), RegistryError> {
        if self.mode(Some(subject), true)? == Mode::ReadOnly {
            return Err(RegistryError::OperationNotPermitted(format!(
                "Subject {subject} is in read-only mode"
            )));
        }
        Ok(())
    }

    // -- parsing ---------------------------------------------------------

    /// Parses a schema a client sent, its references resolved from the
    /// registry.
    fn parse_new(&self, schema: &NewSchema) -> Result<Arc<ParsedSchema>, RegistryError> {
        if schema.references.len() > MAX_DIRECT_REFERENCES {
            return Err(RegistryError::InvalidSchema(format!(
                "more than {MAX_DIRECT_REFERENCES} references"
            )));
        }
        let resolver = self.resolver(&schema.references)?;
        let names: Vec<String> = schema.references.iter().map(|r| r.name.clone()).collect();
        ParsedSchema::parse(schema.schema_type, &schema.text, &names, &resolver)
            .map(Arc::new)
            .map_err(|e| RegistryError::InvalidSchema(e.to_string()))
    }

    /// Every schema reachable from `references`, by the name its referrer
    /// uses, at most [`sluice_schema::MAX_REFERENCES`] of them.
    fn resolver(
        &self,
        references: &[SchemaReference],
    ) -> Result<BTreeMap<String, Reference>, RegistryError> {
        let mut resolved = BTreeMap::new();
        let mut queue: Vec<SchemaReference> = references.to_vec();
        while let Some(r) = queue.pop() {
            if resolved.contains_key(&r.name) {
                continue;
            }
            if resolved.len() >= sluice_schema::MAX_REFERENCES {
                return Err(RegistryError::InvalidSchema(format!(
                    "more than {} schemas referenced",
                    sluice_schema::MAX_REFERENCES
                )));
            }
            let spec = if r.version == -1 {
                VersionSpec::Latest
            } else {
                VersionSpec::Number(r.version)
            };
            let found = self.version(&r.subject, spec, true).map_err(|_| {
                RegistryError::InvalidSchema(format!(
                    "reference {:?} names subject {:?} version {}, which is not registered",
                    r.name, r.subject, r.version
                ))
            })?;
            queue.extend(found.schema.references.iter().cloned());
            resolved.insert(
                r.name.clone(),
                Reference {
                    name: r.name,
                    schema_type: found.schema.schema_type,
                    text: found.schema.text.clone(),
                    references: found
                        .schema
                        .references
                        .iter()
                        .map(|r| r.name.clone())
                        .collect(),
                },
            );
        }
        Ok(resolved)
    }

    /// The parsed form of stored schema `id`, parsed on first use.
    /// Schema `id` parsed (parsed once, then kept).
    pub fn parsed(&mut self, id: i32) -> Result<Arc<ParsedSchema>, RegistryError> {
        self.parsed_of(id)
    }

    fn parsed_of(&mut self, id: i32) -> Result<Arc<ParsedSchema>, RegistryError> {
        if let Some(cached) = self.parsed.get(&id) {
            return cached.clone().ok_or_else(|| unparsable(id));
        }
        let stored = self.schema(id)?;
        let parsed = self
            .parse_new(&NewSchema {
                schema_type: stored.schema_type,
                text: stored.text.clone(),
                references: stored.references.clone(),
            })
            .map_err(|e| {
                tracing::warn!(id, "stored schema does not parse: {e}");
                e
            })
            .ok();
        if let Some(p) = &parsed {
            self.canonical.entry(content_key(&stored, p)).or_insert(id);
        }
        self.parsed.insert(id, parsed.clone());
        parsed.ok_or_else(|| unparsable(id))
    }

    fn canonical_id(&mut self, id: i32) -> Option<ContentKey> {
        let stored = self.schemas.get(&id).cloned()?;
        let parsed = self.parsed_of(id).ok()?;
        Some(content_key(&stored, &parsed))
    }

    /// Parses every stored schema not parsed yet, so [`State::canonical`]
    /// covers them all.
    fn parse_all(&mut self) {
        let ids: Vec<i32> = self
            .schemas
            .keys()
            .filter(|id| !self.parsed.contains_key(id))
            .copied()
            .collect();
        for id in ids {
            let _ = self.parsed_of(id);
        }
    }

    /// The live versions of `subject`, oldest first, parsed.
    fn live_parsed(&mut self, subject: &str) -> Result<Vec<Arc<ParsedSchema>>, RegistryError> {
        let ids: Vec<i32> = self
            .subjects
            .get(subject)
            .map(|vs| vs.values().filter(|e| !e.deleted).map(|e| e.id).collect())
            .unwrap_or_default();
        ids.into_iter().map(|id| self.parsed_of(id)).collect()
    }

    /// The newest version of `subject` whose schema has identity `key`.
    fn find_in_subject(
        &mut self,
        subject: &str,
        key: &ContentKey,
        deleted: bool,
    ) -> Option<(i32, VersionEntry)> {
        let candidates: Vec<(i32, VersionEntry)> = self
            .subjects
            .get(subject)?
            .iter()
            .rev()
            .filter(|(_, e)| deleted || !e.deleted)
            .map(|(v, e)| (*v, *e))
            .collect();
        candidates
            .into_iter()
            .find(|(_, e)| self.canonical_id(e.id).as_ref() == Some(key))
    }
}

fn unparsable(id: i32) -> RegistryError {
    RegistryError::Store(format!("stored schema {id} no longer parses"))
}

fn content_key(stored: &StoredSchema, parsed: &ParsedSchema) -> ContentKey {
    (
        stored.schema_type,
        parsed.canonical().to_owned(),
        stored.references.clone(),
    )
}

/// The text `normalize=true` stores: the canonical form for Avro and JSON
/// Schema, the text as sent for Protobuf (whose canonical form is a
/// descriptor, not `.proto` text).
fn normalized_text(schema: &NewSchema, parsed: &ParsedSchema) -> String {
    match schema.schema_type {
        SchemaType::Avro | SchemaType::Json => parsed.canonical().to_owned(),
        SchemaType::Protobuf => schema.text.clone(),
    }
}

fn schema_record(found: &SubjectVersion, deleted: bool) -> Record {
    let value = SchemaValue {
        subject: found.subject.clone(),
        version: found.version,
        id: found.id,
        schema_type: (found.schema.schema_type != SchemaType::Avro)
            .then(|| found.schema.schema_type.as_str().to_owned()),
        references: found.schema.references.clone(),
        schema: found.schema.text.clone(),
        deleted,
    };
    (
        Key::Schema {
            subject: found.subject.clone(),
            version: found.version,
        },
        Some(json_bytes(&value)),
    )
}

fn set_or_clear<T>(map: &mut BTreeMap<String, T>, key: &str, value: Option<T>) {
    match value {
        Some(v) => {
            map.insert(key.to_owned(), v);
        }
        None => {
            map.remove(key);
        }
    }
}

/// A subject name must be non-empty, at most [`MAX_SUBJECT_BYTES`], and
/// free of control characters (it is logged and shown in the console).
pub fn check_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.is_empty() {
        return Err(RegistryError::InvalidSubject("the subject is empty".into()));
    }
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(RegistryError::InvalidSubject(format!(
            "the subject is {} bytes, more than the limit of {MAX_SUBJECT_BYTES}",
            subject.len()
        )));
    }
    if subject.chars().any(char::is_control) {
        return Err(RegistryError::InvalidSubject(
            "the subject contains control characters".into(),
        ));
    }
    Ok(())
}
