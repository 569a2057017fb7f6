//! Protobuf: compiling `.proto` text with `protox` and Confluent's reading
//! rules over `prost-reflect` descriptors.
//!
//! Messages and enums are matched by full name, fields by number (the wire
//! identity). A reader can read a writer's data unless:
//! - the `syntax` or the `package` changed;
//! - a message or enum of the writer is missing from the reader;
//! - a field with the same number changed to a type with another wire
//!   encoding. Compatible groups: `int32`/`uint32`/`int64`/`uint64`/`bool`
//!   (varint), `sint32`/`sint64` (zigzag), `fixed32`/`sfixed32`,
//!   `fixed64`/`sfixed64`, `string`/`bytes`; a message or enum field must
//!   keep its type's full name;
//! - a field changed between singular and `repeated`, or `required` was
//!   added or removed (proto2), or a `required` field was added or removed;
//! - a field moved out of a `oneof`, into a `oneof` the writer already had,
//!   or several fields moved into one new `oneof`; or a `oneof` lost a
//!   field;
//! - a field kept its name but changed its number. Confluent sees a removal
//!   and an addition and accepts it; we refuse it, because data written
//!   under the old number silently vanishes for the new reader. This is the
//!   one rule stricter than Confluent.
//!
//! Adding or removing optional fields, messages and enum values (enum
//! values are open in proto3, and Confluent accepts these changes) and
//! renaming a field that keeps its number are compatible. Custom options,
//! services and reserved ranges are not compared.

use std::collections::{BTreeMap, HashMap};

use prost_reflect::prost::Message as _;
use prost_reflect::{
    Cardinality, DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor,
};
use protox::file::{File, FileResolver, GoogleFileResolver};

use crate::bounds::check_proto_depth;
use crate::references::Reference;
use crate::{MAX_DEFINITIONS, MAX_FIELDS, SchemaError};

/// The file name the root schema compiles under. References are imported
/// by their own names, which cannot collide with it in practice.
const ROOT_FILE: &str = "__sluice_schema_root.proto";

/// A compiled Protobuf schema.
#[derive(Debug, Clone)]
pub(crate) struct ProtobufSchema {
    pool: DescriptorPool,
}

/// Serves the root text and its references to `protox`, and Google's
/// well-known types for imports of `google/protobuf/...`.
/// `protox` wants a `'static` resolver, so it owns copies of the texts
/// (bounded by `MAX_TOTAL_BYTES`).
struct Sources {
    texts: HashMap<String, String>,
    google: GoogleFileResolver,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.texts.get(name) {
            Some(text) => match serialized_descriptor(text) {
                Some(mut proto) => {
                    // Imported under the name the referrer uses, whatever
                    // name the client gave the file.
                    proto.name = Some(name.to_owned());
                    Ok(File::from_file_descriptor_proto(proto))
                }
                None => File::from_source(name, text),
            },
            None => self.google.open_file(name),
        }
    }
}

/// A schema sent in Confluent's "serialized" form: the standard base64 of
/// an encoded `FileDescriptorProto`, which is what confluent-kafka's Python
/// `ProtobufSerializer` registers. `None` for `.proto` text (which is never
/// valid base64: it has spaces, quotes or semicolons).
fn serialized_descriptor(text: &str) -> Option<prost_reflect::prost_types::FileDescriptorProto> {
    use base64::Engine as _;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

impl ProtobufSchema {
    /// Compiles `text` with its references available as imports.
    pub(crate) fn parse(text: &str, refs: &[Reference]) -> Result<ProtobufSchema, SchemaError> {
        check_proto_depth(text)?;
        for r in refs {
            check_proto_depth(&r.text)?;
        }
        let mut texts: HashMap<String, String> = refs
            .iter()
            .map(|r| (r.name.clone(), r.text.clone()))
            .collect();
        texts.insert(ROOT_FILE.to_owned(), text.to_owned());
        let sources = Sources {
            texts,
            google: GoogleFileResolver::new(),
        };
        let mut compiler = protox::Compiler::with_file_resolver(sources);
        compiler.include_source_info(false);
        compiler
            .open_file(ROOT_FILE)
            .map_err(|e| SchemaError::InvalidProtobuf {
                reason: e.to_string(),
            })?;
        let pool = compiler.descriptor_pool();
        let fields: usize = pool.all_messages().map(|m| m.fields().len()).sum();
        if fields > MAX_FIELDS {
            return Err(SchemaError::TooManyFields {
                count: fields,
                limit: MAX_FIELDS,
            });
        }
        let definitions = pool.all_messages().len() + pool.all_enums().len();
        if definitions > MAX_DEFINITIONS {
            return Err(SchemaError::TooManyDefinitions {
                count: definitions,
                limit: MAX_DEFINITIONS,
            });
        }
        Ok(ProtobufSchema { pool })
    }

    /// The full name of the message at `indexes` in the root file: the
    /// first index picks a top-level message, each next one a message
    /// nested in it (Confluent's message indexes); empty means the first
    /// message.
    pub(crate) fn message_name(&self, indexes: &[i32]) -> Option<String> {
        let file = self.pool.get_file_by_name(ROOT_FILE)?;
        let mut path = indexes.iter();
        let first = usize::try_from(*path.next().unwrap_or(&0)).ok()?;
        let mut message = file.messages().nth(first)?;
        for index in path {
            let child = message
                .child_messages()
                .nth(usize::try_from(*index).ok()?)?;
            message = child;
        }
        Some(message.full_name().to_owned())
    }

    /// The compiled descriptors.
    pub(crate) fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The root file's descriptor.
    pub(crate) fn root_file(&self) -> Option<prost_reflect::FileDescriptor> {
        self.pool.get_file_by_name(ROOT_FILE)
    }

    /// The root file's encoded descriptor in base64 (Confluent's
    /// `format=serialized`), named as the client named it when it sent one.
    pub(crate) fn serialized(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.root_descriptor())
    }

    /// Hex of the root file's encoded descriptor: independent of comments,
    /// whitespace and formatting.
    pub(crate) fn canonical(&self) -> String {
        self.root_descriptor()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The root file's `FileDescriptorProto`, encoded, without source info
    /// (comment and position records would make layout part of the
    /// identity).
    fn root_descriptor(&self) -> Vec<u8> {
        self.pool
            .get_file_by_name(ROOT_FILE)
            .map(|f| {
                let mut proto = f.file_descriptor_proto().clone();
                proto.source_code_info = None;
                proto.encode_to_vec()
            })
            .unwrap_or_default()
    }

    /// Messages and enums of the root file (nested ones included), by full
    /// name. Types of referenced files are checked where a field uses them.
    fn types(
        &self,
    ) -> (
        BTreeMap<String, MessageDescriptor>,
        BTreeMap<String, EnumDescriptor>,
    ) {
        let mut messages = BTreeMap::new();
        let mut enums = BTreeMap::new();
        if let Some(file) = self.pool.get_file_by_name(ROOT_FILE) {
            let mut stack: Vec<MessageDescriptor> = file.messages().collect();
            enums.extend(file.enums().map(|e| (e.full_name().to_owned(), e)));
            // An explicit stack: nesting is bounded, but a loop costs nothing.
            while let Some(m) = stack.pop() {
                if m.is_map_entry() {
                    continue;
                }
                stack.extend(m.child_messages());
                enums.extend(m.child_enums().map(|e| (e.full_name().to_owned(), e)));
                messages.insert(m.full_name().to_owned(), m);
            }
        }
        (messages, enums)
    }
}

/// Why `reader` cannot read data written with `writer`; empty when it can.
pub(crate) fn can_read(writer: &ProtobufSchema, reader: &ProtobufSchema) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(wf), Some(rf)) = (
        writer.pool.get_file_by_name(ROOT_FILE),
        reader.pool.get_file_by_name(ROOT_FILE),
    ) else {
        return vec!["schema has no root file".to_owned()];
    };
    if wf.syntax() != rf.syntax() {
        out.push(format!(
            "syntax changed from {:?} to {:?}",
            wf.syntax(),
            rf.syntax()
        ));
    }
    if wf.package_name() != rf.package_name() {
        out.push(format!(
            "package changed from {:?} to {:?}",
            wf.package_name(),
            rf.package_name()
        ));
    }
    let (w_messages, w_enums) = writer.types();
    let (r_messages, r_enums) = reader.types();
    for name in w_enums.keys() {
        if !r_enums.contains_key(name) {
            out.push(format!("enum {name} was removed"));
        }
    }
    for (name, w) in &w_messages {
        match r_messages.get(name) {
            Some(r) => compare_message(w, r, &mut out),
            None => out.push(format!("message {name} was removed")),
        }
    }
    out
}

fn compare_message(w: &MessageDescriptor, r: &MessageDescriptor, out: &mut Vec<String>) {
    let name = w.full_name();
    let r_by_number: HashMap<u32, FieldDescriptor> = r.fields().map(|f| (f.number(), f)).collect();
    let w_by_number: HashMap<u32, FieldDescriptor> = w.fields().map(|f| (f.number(), f)).collect();
    // Fields that move from outside any oneof into a oneof new to the
    // reader, counted per oneof: one is compatible, several are not.
    let mut moved_into_new_oneof: BTreeMap<String, usize> = BTreeMap::new();
    let w_oneofs: Vec<String> = w
        .oneofs()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_owned())
        .collect();
    for wfield in w.fields() {
        let at = format!("{name}.{} (#{})", wfield.name(), wfield.number());
        let Some(rfield) = r_by_number.get(&wfield.number()) else {
            if wfield.cardinality() == Cardinality::Required {
                out.push(format!("{at}: required field was removed"));
            }
            if let Some(o) = real_oneof(&wfield)
                && r.oneofs().any(|ro| ro.name() == o)
            {
                out.push(format!("{at}: field was removed from oneof {o}"));
            }
            if let Some(renumbered) = r.get_field_by_name(wfield.name()) {
                out.push(format!(
                    "{at}: field was renumbered to #{}",
                    renumbered.number()
                ));
            }
            continue;
        };
        if let Some(problem) = kind_change(&wfield, rfield) {
            out.push(format!("{at}: {problem}"));
        }
        match (real_oneof(&wfield), real_oneof(rfield)) {
            (None, None) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, Some(b)) if !w_oneofs.contains(&b) => {
                *moved_into_new_oneof.entry(b).or_default() += 1
            }
            (None, Some(b)) => out.push(format!("{at}: field moved into existing oneof {b}")),
            (Some(a), None) => out.push(format!("{at}: field moved out of oneof {a}")),
            (Some(a), Some(b)) => out.push(format!("{at}: field moved from oneof {a} to {b}")),
        }
    }
    for (oneof, count) in moved_into_new_oneof {
        if count > 1 {
            out.push(format!(
                "{name}: {count} existing fields moved into new oneof {oneof}"
            ));
        }
    }
    for rfield in r.fields() {
        if !w_by_number.contains_key(&rfield.number())
            && rfield.cardinality() == Cardinality::Required
        {
            out.push(format!(
                "{name}.{} (#{}): required field was added",
                rfield.name(),
                rfield.number()
            ));
        }
    }
}

/// The name of the `oneof` a field belongs to, ignoring the synthetic ones
/// proto3 `optional` creates.
fn real_oneof(field: &FieldDescriptor) -> Option<String> {
    field
        .containing_oneof()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_owned())
}

/// The wire-encoding group of a scalar kind; kinds in one group read each
/// other's bytes.
fn wire_group(kind: &Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool => "varint",
        Kind::Sint32 | Kind::Sint64 => "zigzag varint",
        Kind::Fixed32 | Kind::Sfixed32 => "fixed32",
        Kind::Fixed64 | Kind::Sfixed64 => "fixed64",
        Kind::String | Kind::Bytes => "length-delimited bytes",
        Kind::Float => "float",
        Kind::Double => "double",
        Kind::Message(_) | Kind::Enum(_) => return None,
    })
}

/// Why the reader's field cannot read what the writer's field wrote.
fn kind_change(w: &FieldDescriptor, r: &FieldDescriptor) -> Option<String> {
    let (wk, rk) = (w.kind(), r.kind());
    let type_ok = match (&wk, &rk) {
        // Map entry types keep their name when their value type changes, so
        // they are compared by their key and value fields instead.
        (Kind::Message(a), Kind::Message(b)) if a.is_map_entry() && b.is_map_entry() => {
            map_entries_match(a, b)
        }
        (Kind::Message(a), Kind::Message(b)) => a.full_name() == b.full_name(),
        (Kind::Enum(a), Kind::Enum(b)) => a.full_name() == b.full_name(),
        _ => matches!((wire_group(&wk), wire_group(&rk)), (Some(a), Some(b)) if a == b),
    };
    if !type_ok {
        return Some(format!(
            "type changed from {} to {}",
            kind_name(&wk),
            kind_name(&rk)
        ));
    }
    if w.cardinality() != r.cardinality() {
        let (wc, rc) = (w.cardinality(), r.cardinality());
        let repeated = |c| c == Cardinality::Repeated;
        let required = |c| c == Cardinality::Required;
        if repeated(wc) != repeated(rc) || required(wc) != required(rc) {
            return Some(format!("label changed from {wc:?} to {rc:?}"));
        }
    }
    None
}

/// Two map entry types match when their key and value fields match.
fn map_entries_match(a: &MessageDescriptor, b: &MessageDescriptor) -> bool {
    let same = |n: u32| match (a.get_field(n), b.get_field(n)) {
        (Some(x), Some(y)) => kind_change(&x, &y).is_none(),
        _ => false,
    };
    same(1) && same(2)
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => format!("{other:?}").to_lowercase(),
    }
}
