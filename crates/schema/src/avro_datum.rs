//! Avro binary data to JSON and back, for the console's message browser and
//! REST produce and read.
//!
//! Written here rather than taken from `apache-avro`'s datum reader because
//! that reader trusts the data's block counts: an array of `null` items
//! costs no bytes per item, so a few bytes claiming billions of items make
//! it allocate without bound (its `max_allocation_bytes` caps one
//! allocation, not the sum). This reader charges every value it produces to
//! a [`DecodeBudget`] and nests at most [`MAX_DATUM_DEPTH`] levels, so a
//! hostile payload costs at most the budget.
//!
//! The JSON form: records are objects, unions are their branch's value
//! unwrapped (as Confluent's Python deserializer returns them), `bytes` and
//! `fixed` are strings of code points U+0000 to U+00FF (Avro's JSON
//! encoding), decimals are strings (`"12.34"`, exact), a duration is
//! `{"months", "days", "milliseconds"}`, other logical types are their
//! underlying number or string, and non-finite floats are the strings
//! `"NaN"`, `"Infinity"` and `"-Infinity"`. Encoding accepts that form, and
//! also a union value wrapped Avro-style as `{"<branch type>": value}`.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, UnionSchema, UuidSchema};
use serde_json::{Map, Value};

use crate::codec::{CodecError, DecodeBudget, MAX_DATUM_DEPTH};

/// The pattern of every schema written as an Avro `long`: the type itself
/// and its logical types.
macro_rules! long_types {
    () => {
        Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
    };
}

/// Named types by full name, to follow `Schema::Ref`.
pub(crate) type Names<'a> = HashMap<String, &'a Schema>;

/// Every named type `schema` and the schemas it references define, by
/// full name.
pub(crate) fn names<'a>(schema: &'a Schema, referenced: &'a [Schema]) -> Names<'a> {
    let mut names = Names::new();
    for s in referenced.iter().chain(std::iter::once(schema)) {
        collect_names(s, &mut names);
    }
    names
}

/// Collects the named types defined in `schema` into `names`. The walk
/// stops at references, so it is linear in the schema.
fn collect_names<'a>(schema: &'a Schema, names: &mut Names<'a>) {
    let mut add = |name: &Name| {
        names.insert(name.fullname(None), schema);
    };
    match schema {
        Schema::Record(r) => {
            add(&r.name);
            for field in &r.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => add(&e.name),
        Schema::Fixed(f) | Schema::Duration(f) => add(&f.name),
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                add(&f.name);
            }
        }
        Schema::Uuid(UuidSchema::Fixed(f)) => add(&f.name),
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_names(v, names);
            }
        }
        _ => {}
    }
}

/// Decodes one datum of `schema` that fills `data` exactly.
pub(crate) fn decode(
    schema: &Schema,
    names: &Names<'_>,
    data: &[u8],
    budget: &mut DecodeBudget,
) -> Result<Value, CodecError> {
    let mut reader = Reader {
        data,
        names,
        budget,
    };
    let value = reader.read(schema, 0)?;
    if reader.data.is_empty() {
        Ok(value)
    } else {
        Err(CodecError::TrailingBytes(reader.data.len()))
    }
}

struct Reader<'d, 'n, 'b> {
    data: &'d [u8],
    names: &'n Names<'n>,
    budget: &'b mut DecodeBudget,
}

impl<'n> Reader<'_, 'n, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if n > self.data.len() {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn long(&mut self) -> Result<i64, CodecError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first().ok_or(CodecError::Truncated)?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(CodecError::Malformed("varint longer than 10 bytes".into()))
    }

    fn int(&mut self) -> Result<i32, CodecError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| CodecError::Malformed(format!("int {v} out of range")))
    }

    /// A length or count that must fit in what is left of the data.
    fn length(&mut self) -> Result<usize, CodecError> {
        let n = self.long()?;
        let n = usize::try_from(n)
            .map_err(|_| CodecError::Malformed(format!("negative length {n}")))?;
        if n > self.data.len() {
            return Err(CodecError::Truncated);
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&[u8], CodecError> {
        let n = self.length()?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CodecError::Malformed("string is not UTF-8".into()))
    }

    fn fixed_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads the block counts of an array or map, calling `item` for each
    /// item; every item is charged to the budget before it is read, so a
    /// block of free items (nulls) cannot run forever.
    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.long()?; // the block's size in bytes, for skipping
            }
            for _ in 0..count.unsigned_abs() {
                self.budget.charge(1)?;
                item(self)?;
            }
        }
    }

    fn read(&mut self, schema: &Schema, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DATUM_DEPTH {
            return Err(CodecError::TooDeep);
        }
        self.budget.charge(1)?;
        let depth = depth + 1;
        Ok(match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => match self.take(1)? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                other => {
                    return Err(CodecError::Malformed(format!("boolean byte {other:?}")));
                }
            },
            Schema::Int | Schema::Date | Schema::TimeMillis => Value::from(self.int()?),
            long_types!() => Value::from(self.long()?),
            Schema::Float => float_json(f64::from(f32::from_le_bytes(self.fixed_array()?))),
            Schema::Double => float_json(f64::from_le_bytes(self.fixed_array()?)),
            Schema::Bytes | Schema::BigDecimal => Value::String(latin1(self.bytes()?)),
            Schema::String | Schema::Uuid(UuidSchema::String) => Value::String(self.string()?),
            Schema::Uuid(UuidSchema::Bytes) => Value::String(uuid_text(self.bytes()?)?),
            Schema::Uuid(UuidSchema::Fixed(_)) => Value::String(uuid_text(self.take(16)?)?),
            Schema::Fixed(f) => Value::String(latin1(self.take(f.size)?)),
            Schema::Decimal(d) => {
                let unscaled = match &d.inner {
                    InnerDecimalSchema::Bytes => self.bytes()?,
                    InnerDecimalSchema::Fixed(f) => self.take(f.size)?,
                };
                Value::String(decimal_text(unscaled, d.scale)?)
            }
            Schema::Duration(_) => {
                let field = |b: &[u8]| {
                    u32::from_le_bytes(b.try_into().unwrap_or([0; 4])) // exact 4-byte chunks
                };
                let bytes: [u8; 12] = self.fixed_array()?;
                let mut out = Map::new();
                out.insert("months".into(), field(&bytes[0..4]).into());
                out.insert("days".into(), field(&bytes[4..8]).into());
                out.insert("milliseconds".into(), field(&bytes[8..12]).into());
                Value::Object(out)
            }
            Schema::Enum(e) => {
                let index = self.int()?;
                let symbol = usize::try_from(index)
                    .ok()
                    .and_then(|i| e.symbols.get(i))
                    .ok_or_else(|| {
                        CodecError::Malformed(format!("enum index {index} out of range"))
                    })?;
                Value::String(symbol.clone())
            }
            Schema::Record(r) => {
                let mut out = Map::new();
                for field in &r.fields {
                    let value = self.read(&field.schema, depth)?;
                    out.insert(field.name.clone(), value);
                }
                Value::Object(out)
            }
            Schema::Array(a) => {
                let mut out = Vec::new();
                self.blocks(|r| {
                    out.push(r.read(&a.items, depth)?);
                    Ok(())
                })?;
                Value::Array(out)
            }
            Schema::Map(m) => {
                let mut out = Map::new();
                self.blocks(|r| {
                    let key = r.string()?;
                    let value = r.read(&m.types, depth)?;
                    out.insert(key, value);
                    Ok(())
                })?;
                Value::Object(out)
            }
            Schema::Union(u) => {
                let index = self.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| {
                        CodecError::Malformed(format!("union index {index} out of range"))
                    })?;
                self.read(branch, depth)?
            }
            Schema::Ref { name } => {
                let target = self.resolve(name)?;
                self.read(target, depth)?
            }
        })
    }

    fn resolve(&self, name: &Name) -> Result<&'n Schema, CodecError> {
        let full = name.fullname(None);
        self.names
            .get(&full)
            .copied()
            .ok_or(CodecError::UnknownType(full))
    }
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::from("NaN")
    } else if f.is_infinite() {
        Value::from(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// Avro's JSON encoding of bytes: each byte one code point.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn uuid_text(bytes: &[u8]) -> Result<String, CodecError> {
    if bytes.len() != 16 {
        return Err(CodecError::Malformed(format!(
            "uuid of {} bytes, not 16",
            bytes.len()
        )));
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Most bytes of a decimal's unscaled value shown exactly: an `i128`.
const MAX_DECIMAL_BYTES: usize = 16;

/// A decimal's text from its big-endian two's-complement unscaled value.
fn decimal_text(unscaled: &[u8], scale: usize) -> Result<String, CodecError> {
    if unscaled.len() > MAX_DECIMAL_BYTES {
        return Err(CodecError::Malformed(format!(
            "decimal of {} bytes; at most {MAX_DECIMAL_BYTES} are shown",
            unscaled.len()
        )));
    }
    let negative = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    let mut buf = [if negative { 0xff } else { 0 }; 16];
    buf[16 - unscaled.len()..].copy_from_slice(unscaled);
    let value = i128::from_be_bytes(buf);
    let digits = value.unsigned_abs().to_string();
    let sign = if value < 0 { "-" } else { "" };
    if scale == 0 {
        return Ok(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Ok(format!("{sign}{int}.{frac}"))
}

/// Encodes `value` as one datum of `schema`.
pub(crate) fn encode(
    schema: &Schema,
    names: &Names<'_>,
    value: &Value,
) -> Result<Vec<u8>, CodecError> {
    let mut writer = Writer {
        out: Vec::new(),
        names,
        path: Vec::new(),
    };
    writer.write(schema, value, 0)?;
    Ok(writer.out)
}

struct Writer<'n> {
    out: Vec<u8>,
    names: &'n Names<'n>,
    /// Where in the value we are, for error messages.
    path: Vec<String>,
}

impl Writer<'_> {
    fn mismatch(&self, reason: impl Into<String>) -> CodecError {
        CodecError::Mismatch {
            path: format!("/{}", self.path.join("/")),
            reason: reason.into(),
        }
    }

    fn long(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.long(b.len() as i64);
        self.out.extend_from_slice(b);
    }

    fn integer(&self, value: &Value) -> Result<i64, CodecError> {
        value
            .as_i64()
            .ok_or_else(|| self.mismatch(format!("expected an integer, got {value}")))
    }

    fn float(&self, value: &Value) -> Result<f64, CodecError> {
        match value {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| self.mismatch("number out of range")),
            Value::String(s) if s == "NaN" => Ok(f64::NAN),
            Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
            Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(self.mismatch(format!("expected a number, got {value}"))),
        }
    }

    fn text<'v>(&self, value: &'v Value) -> Result<&'v str, CodecError> {
        value
            .as_str()
            .ok_or_else(|| self.mismatch(format!("expected a string, got {value}")))
    }

    /// Bytes from Avro's JSON encoding (code points up to U+00FF).
    fn latin1(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        self.text(value)?
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c)).map_err(|_| {
                    self.mismatch(format!("bytes hold code points up to U+00FF, not {c:?}"))
                })
            })
            .collect()
    }

    fn write(&mut self, schema: &Schema, value: &Value, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DATUM_DEPTH {
            return Err(CodecError::TooDeep);
        }
        let depth = depth + 1;
        match schema {
            Schema::Null => {
                if !value.is_null() {
                    return Err(self.mismatch(format!("expected null, got {value}")));
                }
            }
            Schema::Boolean => {
                let b = value
                    .as_bool()
                    .ok_or_else(|| self.mismatch(format!("expected a boolean, got {value}")))?;
                self.out.push(u8::from(b));
            }
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                let v = self.integer(value)?;
                let v =
                    i32::try_from(v).map_err(|_| self.mismatch(format!("{v} is not an int")))?;
                self.long(i64::from(v));
            }
            long_types!() => {
                let v = self.integer(value)?;
                self.long(v);
            }
            Schema::Float => {
                let f = self.float(value)? as f32;
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            Schema::Double => {
                let f = self.float(value)?;
                self.out.extend_from_slice(&f.to_le_bytes());
            }
            Schema::Bytes | Schema::BigDecimal => {
                let b = self.latin1(value)?;
                self.bytes(&b);
            }
            Schema::String | Schema::Uuid(UuidSchema::String) => {
                let s = self.text(value)?;
                self.bytes(s.as_bytes());
            }
            Schema::Uuid(UuidSchema::Bytes) => {
                let b = self.uuid_bytes(value)?;
                self.bytes(&b);
            }
            Schema::Uuid(UuidSchema::Fixed(_)) => {
                let b = self.uuid_bytes(value)?;
                self.out.extend_from_slice(&b);
            }
            Schema::Fixed(f) => {
                let b = self.latin1(value)?;
                if b.len() != f.size {
                    return Err(self.mismatch(format!(
                        "fixed {} holds {} bytes, got {}",
                        f.name.fullname(None),
                        f.size,
                        b.len()
                    )));
                }
                self.out.extend_from_slice(&b);
            }
            Schema::Decimal(d) => {
                let unscaled = self.decimal_unscaled(value, d.scale)?;
                match &d.inner {
                    InnerDecimalSchema::Bytes => {
                        let b = minimal_twos_complement(unscaled);
                        self.bytes(&b);
                    }
                    InnerDecimalSchema::Fixed(f) => {
                        let full = unscaled.to_be_bytes();
                        let minimal = minimal_twos_complement(unscaled);
                        if minimal.len() > f.size {
                            return Err(
                                self.mismatch(format!("decimal does not fit in {} bytes", f.size))
                            );
                        }
                        let fill = if unscaled < 0 { 0xff } else { 0 };
                        let pad = f.size.saturating_sub(full.len());
                        self.out.extend(std::iter::repeat_n(fill, pad));
                        self.out
                            .extend_from_slice(&full[full.len().saturating_sub(f.size)..]);
                    }
                }
            }
            Schema::Duration(_) => {
                let Value::Object(map) = value else {
                    return Err(self.mismatch("a duration is {months, days, milliseconds}"));
                };
                for part in ["months", "days", "milliseconds"] {
                    let v = map.get(part).and_then(Value::as_u64).unwrap_or(0);
                    let v = u32::try_from(v)
                        .map_err(|_| self.mismatch(format!("{part} {v} out of range")))?;
                    self.out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Schema::Enum(e) => {
                let s = self.text(value)?;
                let index = e.symbols.iter().position(|x| x == s).ok_or_else(|| {
                    self.mismatch(format!(
                        "{s:?} is not a symbol of enum {}",
                        e.name.fullname(None)
                    ))
                })?;
                self.long(index as i64);
            }
            Schema::Record(r) => {
                let Value::Object(map) = value else {
                    return Err(self.mismatch(format!(
                        "expected an object for record {}, got {value}",
                        r.name.fullname(None)
                    )));
                };
                if let Some(unknown) = map.keys().find(|k| !r.lookup.contains_key(*k)) {
                    return Err(self.mismatch(format!(
                        "record {} has no field {unknown:?}",
                        r.name.fullname(None)
                    )));
                }
                for field in &r.fields {
                    self.path.push(field.name.clone());
                    let v = match (map.get(&field.name), &field.default) {
                        (Some(v), _) => v,
                        (None, Some(default)) => default,
                        (None, None) => {
                            return Err(self.mismatch("missing, and the field has no default"));
                        }
                    };
                    self.write(&field.schema, v, depth)?;
                    self.path.pop();
                }
            }
            Schema::Array(a) => {
                let Value::Array(items) = value else {
                    return Err(self.mismatch(format!("expected an array, got {value}")));
                };
                if !items.is_empty() {
                    self.long(items.len() as i64);
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(i.to_string());
                        self.write(&a.items, item, depth)?;
                        self.path.pop();
                    }
                }
                self.long(0);
            }
            Schema::Map(m) => {
                let Value::Object(map) = value else {
                    return Err(self.mismatch(format!("expected an object, got {value}")));
                };
                if !map.is_empty() {
                    self.long(map.len() as i64);
                    for (k, v) in map {
                        self.bytes(k.as_bytes());
                        self.path.push(k.clone());
                        self.write(&m.types, v, depth)?;
                        self.path.pop();
                    }
                }
                self.long(0);
            }
            Schema::Union(u) => {
                let (index, inner) = self.union_branch(u, value)?;
                self.long(index as i64);
                let branch = &u.variants()[index];
                self.write(branch, inner, depth)?;
            }
            Schema::Ref { name } => {
                let full = name.fullname(None);
                let target = self
                    .names
                    .get(&full)
                    .copied()
                    .ok_or(CodecError::UnknownType(full))?;
                self.write(target, value, depth)?;
            }
        }
        Ok(())
    }

    fn uuid_bytes(&self, value: &Value) -> Result<[u8; 16], CodecError> {
        let s = self.text(value)?;
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        let bad = || self.mismatch(format!("{s:?} is not a UUID"));
        if hex.len() != 32 {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(out)
    }

    /// A decimal given as a JSON number or a string, scaled to an integer;
    /// refused when it has more fractional digits than `scale`.
    fn decimal_unscaled(&self, value: &Value, scale: usize) -> Result<i128, CodecError> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(self.mismatch(format!("expected a decimal, got {value}"))),
        };
        let bad = || self.mismatch(format!("{text:?} is not a decimal with scale {scale}"));
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > scale {
            return Err(bad());
        }
        let all = format!("{int}{frac:0<scale$}");
        let magnitude: i128 = if all.is_empty() {
            0
        } else {
            all.parse().map_err(|_| bad())?
        };
        Ok(if negative { -magnitude } else { magnitude })
    }

    /// The branch a JSON value goes to: `null` to the null branch, a
    /// one-key object naming a branch to that branch (Avro's JSON
    /// encoding), else the first branch whose kind fits the value.
    fn union_branch<'v>(
        &self,
        union: &UnionSchema,
        value: &'v Value,
    ) -> Result<(usize, &'v Value), CodecError> {
        let variants = union.variants();
        if let Value::Object(map) = value
            && map.len() == 1
            && let Some((key, inner)) = map.iter().next()
            && let Some(i) = variants
                .iter()
                .position(|v| branch_names(v).iter().any(|n| n == key))
        {
            return Ok((i, inner));
        }
        variants
            .iter()
            .position(|v| self.fits(v, value))
            .map(|i| (i, value))
            .ok_or_else(|| self.mismatch(format!("no union branch takes {value}")))
    }

    /// Whether `value` has the JSON kind `schema` takes (a shallow test: it
    /// picks a union branch, and the write that follows checks the rest).
    fn fits(&self, schema: &Schema, value: &Value) -> bool {
        match (schema, value) {
            (Schema::Null, Value::Null) => true,
            (Schema::Boolean, Value::Bool(_)) => true,
            (Schema::Int | Schema::Date | Schema::TimeMillis, Value::Number(n)) => {
                n.as_i64().is_some_and(|v| i32::try_from(v).is_ok())
            }
            (long_types!(), Value::Number(n)) => n.is_i64(),
            (Schema::Float | Schema::Double | Schema::Decimal(_), Value::Number(_)) => true,
            (
                Schema::String | Schema::Bytes | Schema::Uuid(_) | Schema::Decimal(_),
                Value::String(_),
            ) => true,
            (Schema::Fixed(f), Value::String(s)) => s.chars().count() == f.size,
            (Schema::Enum(e), Value::String(s)) => e.symbols.contains(s),
            (Schema::Array(_), Value::Array(_)) => true,
            (Schema::Map(_) | Schema::Record(_) | Schema::Duration(_), Value::Object(_)) => true,
            (Schema::Ref { name }, _) => self
                .names
                .get(&name.fullname(None))
                .is_some_and(|s| !matches!(s, Schema::Ref { .. }) && self.fits(s, value)),
            _ => false,
        }
    }
}

/// The names a union branch goes by in Avro's JSON encoding: its type name
/// (`"string"`, `"array"`), or a named type's full and short names.
fn branch_names(schema: &Schema) -> Vec<String> {
    let named = |n: &Name| vec![n.fullname(None), n.name().to_owned()];
    match schema {
        Schema::Record(r) => named(&r.name),
        Schema::Enum(e) => named(&e.name),
        Schema::Fixed(f) | Schema::Duration(f) => named(&f.name),
        Schema::Ref { name } => named(name),
        Schema::Null => vec!["null".into()],
        Schema::Boolean => vec!["boolean".into()],
        Schema::Int => vec!["int".into()],
        Schema::Long => vec!["long".into()],
        Schema::Float => vec!["float".into()],
        Schema::Double => vec!["double".into()],
        Schema::Bytes => vec!["bytes".into()],
        Schema::String => vec!["string".into()],
        Schema::Array(_) => vec!["array".into()],
        Schema::Map(_) => vec!["map".into()],
        _ => Vec::new(),
    }
}

/// The shortest big-endian two's-complement bytes of `v` (at least one).
fn minimal_twos_complement(v: i128) -> Vec<u8> {
    let full = v.to_be_bytes();
    let mut start = 0;
    while start < full.len() - 1 {
        let (b, next) = (full[start], full[start + 1]);
        let redundant = (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    full[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_exactly_and_round_trip() {
        for (bytes, scale, text) in [
            (vec![0x04, 0xd2], 2, "12.34"),
            (vec![0xfb, 0x2e], 2, "-12.34"),
            (vec![0x05], 3, "0.005"),
            (vec![0x00], 0, "0"),
        ] {
            assert_eq!(decimal_text(&bytes, scale).as_deref(), Ok(text));
        }
        assert_eq!(minimal_twos_complement(1234), vec![0x04, 0xd2]);
        assert_eq!(minimal_twos_complement(-1234), vec![0xfb, 0x2e]);
        assert_eq!(minimal_twos_complement(128), vec![0x00, 0x80]);
        assert_eq!(minimal_twos_complement(-1), vec![0xff]);
    }
}
