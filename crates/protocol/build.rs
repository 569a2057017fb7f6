//! Code generator for the Kafka message types.
//!
//! Reads every `spec/*.spec` file (our own terse format, documented in
//! `docs/protocol.md`) and writes `$OUT_DIR/messages.rs`: one module per API
//! with plain structs, their `Default` (Kafka's field defaults), and
//! version-aware encode/decode. It also writes the `ApiKey` enum, the header
//! version tables, the `RequestBody`/`ResponseBody` dispatch enums, and each
//! API's error responses (`error_response`, `top_level_error`; the mirroring
//! rules and the `mirror=`/`key=`/`err=`/`unique=` annotations are in
//! `docs/protocol.md`).
//!
//! From `spec/errors.txt` it writes `$OUT_DIR/errors.rs`: every form of the
//! Kafka error-code table, included by `src/error.rs`.
//!
//! The generator is deliberately simple string building: the output is
//! checked by the compiler, by clippy and by the round-trip tests, and a
//! malformed spec line stops the build with a message naming file and line.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// An inclusive version range; `None` means "no versions".
#[derive(Clone, Copy, Debug, PartialEq)]
struct Versions(Option<(i16, i16)>);

impl Versions {
    fn parse(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(Versions(None));
        }
        if let Some(lo) = s.strip_suffix('+') {
            let lo: i16 = lo.parse().map_err(|_| format!("bad version range {s}"))?;
            return Ok(Versions(Some((lo, i16::MAX))));
        }
        if let Some((lo, hi)) = s.split_once('-') {
            let lo: i16 = lo.parse().map_err(|_| format!("bad version range {s}"))?;
            let hi: i16 = hi.parse().map_err(|_| format!("bad version range {s}"))?;
            return Ok(Versions(Some((lo, hi))));
        }
        let v: i16 = s.parse().map_err(|_| format!("bad version range {s}"))?;
        Ok(Versions(Some((v, v))))
    }

    fn intersect(self, other: Versions) -> Versions {
        match (self.0, other.0) {
            (Some((a, b)), Some((c, d))) => {
                let lo = a.max(c);
                let hi = b.min(d);
                if lo <= hi {
                    Versions(Some((lo, hi)))
                } else {
                    Versions(None)
                }
            }
            _ => Versions(None),
        }
    }

    fn is_empty(self) -> bool {
        self.0.is_none()
    }

    /// Rust condition on `version` that selects `self` within `within` (the
    /// message's valid range). `None` = always true, `Some("false")` = never.
    fn cond(self, within: Versions) -> Option<String> {
        let me = self.intersect(within);
        let Some((lo, hi)) = me.0 else {
            return Some("false".to_string());
        };
        let Some((wlo, whi)) = within.0 else {
            return Some("false".to_string());
        };
        match (lo <= wlo, hi >= whi) {
            (true, true) => None,
            (false, true) => Some(format!("version >= {lo}")),
            (true, false) => Some(format!("version <= {hi}")),
            (false, false) if lo == hi => Some(format!("version == {lo}")),
            (false, false) => Some(format!("({lo}..={hi}).contains(&version)")),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    F64,
    Str,
    Bytes,
    Records,
    /// `filerecords`: a response's record set, which the broker may send
    /// straight from a segment file ([`Records`](crate::Records)).
    FileRecords,
    Uuid,
    Struct(String),
    Array(Box<Ty>),
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty_raw: String,
    versions: Versions,
    nullable: Versions,
    tag: Option<u32>,
    tagged: Versions,
    default: Option<String>,
    /// `mirror=`: the request array(s) this response array mirrors in an
    /// error response (see `gen_error_response`).
    mirror: Option<String>,
    /// `key=`: the request item field this response field copies in an
    /// error response, when the names differ or the name is not a usual key.
    key: Option<String>,
    /// `err=`: this field's value in an error response (`code`, `message`
    /// or a literal).
    err: Option<String>,
    /// `unique=`: drop mirrored items whose value of this field repeats.
    unique: Option<String>,
    children: Vec<Field>,
    line: usize,
}

#[derive(Debug)]
struct Message {
    kind: String,
    name: String,
    api_key: i16,
    valid: Versions,
    flexible: Versions,
    fields: Vec<Field>,
    commons: Vec<(String, Vec<Field>)>,
}

#[derive(Debug)]
struct Api {
    module: String,
    request: Message,
    response: Message,
}

fn main() {
    let manifest = PathBuf::from(env_or_die("CARGO_MANIFEST_DIR"));
    let spec_dir = manifest.join("spec");
    println!("cargo:rerun-if-changed=spec");
    println!("cargo:rerun-if-changed=build.rs");
    let mut apis = Vec::new();
    let mut entries: Vec<PathBuf> = match fs::read_dir(&spec_dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => die(&format!("cannot read {}: {e}", spec_dir.display())),
    };
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("spec") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        match parse_file(&path) {
            Ok(api) => apis.push(api),
            Err(e) => die(&format!("{}: {e}", path.display())),
        }
    }
    apis.sort_by_key(|a| a.request.api_key);
    let out = PathBuf::from(env_or_die("OUT_DIR"));
    let code = match generate(&apis) {
        Ok(c) => c,
        Err(e) => die(&e),
    };
    if let Err(e) = fs::write(out.join("messages.rs"), code) {
        die(&format!("cannot write messages.rs: {e}"));
    }

    let errors_path = spec_dir.join("errors.txt");
    println!("cargo:rerun-if-changed={}", errors_path.display());
    let errors = match fs::read_to_string(&errors_path)
        .map_err(|e| e.to_string())
        .and_then(|text| parse_errors(&text))
    {
        Ok(rows) => generate_errors(&rows),
        Err(e) => die(&format!("{}: {e}", errors_path.display())),
    };
    if let Err(e) = fs::write(out.join("errors.rs"), errors) {
        die(&format!("cannot write errors.rs: {e}"));
    }
}

// ---------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------

/// One row of `spec/errors.txt`.
struct ErrorRow {
    code: i16,
    name: String,
    retriable: bool,
}

/// Reads `spec/errors.txt` and rejects anything that would make two forms of
/// the table disagree: a repeated number or name, or a name that is not
/// Kafka's SHOUTY_SNAKE_CASE.
fn parse_errors(text: &str) -> Result<Vec<ErrorRow>, String> {
    let mut rows: Vec<ErrorRow> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        let [code, name, retriable] = toks[..] else {
            return Err(format!("line {line_no}: expected `number NAME yes|no`"));
        };
        let code: i16 = code
            .parse()
            .map_err(|_| format!("line {line_no}: bad number {code}"))?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("line {line_no}: bad name {name}"));
        }
        let retriable = match retriable {
            "yes" => true,
            "no" => false,
            other => {
                return Err(format!(
                    "line {line_no}: retriable must be yes or no, not {other}"
                ));
            }
        };
        if let Some(dup) = rows.iter().find(|r| r.code == code || r.name == name) {
            return Err(format!(
                "line {line_no}: {name} ({code}) repeats {} ({})",
                dup.name, dup.code
            ));
        }
        rows.push(ErrorRow {
            code,
            name: name.to_string(),
            retriable,
        });
    }
    Ok(rows)
}

/// `NOT_LEADER_OR_FOLLOWER` -> `NotLeaderOrFollower`.
fn error_variant(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// Every form of the error table: the enum, its conversions, and the `codes`
/// constants. Included by `src/error.rs`.
fn generate_errors(rows: &[ErrorRow]) -> String {
    let mut out = String::new();
    out.push_str("// @generated by crates/protocol/build.rs from crates/protocol/spec/errors.txt. Do not edit.\n\n");
    out.push_str("/// A Kafka protocol error code. Unknown numbers are kept in [`ErrorCode::Other`].\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum ErrorCode {\n");
    for r in rows {
        let retriable = if r.retriable { ", retriable" } else { "" };
        let _ = writeln!(
            out,
            "    /// `{}` ({}{retriable}).\n    {},",
            r.name,
            r.code,
            error_variant(&r.name)
        );
    }
    out.push_str("    /// A code this table does not name (newer Kafka).\n    Other(i16),\n}\n\n");

    out.push_str("impl ErrorCode {\n");
    let _ = writeln!(
        out,
        "    /// Every named code, in table order.\n    pub const ALL: &'static [ErrorCode] = &[{}];\n",
        rows.iter()
            .map(|r| format!("ErrorCode::{}", error_variant(&r.name)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let arms = |f: &dyn Fn(&ErrorRow) -> String| -> String {
        rows.iter()
            .map(|r| format!("            {}\n", f(r)))
            .collect()
    };
    let _ = write!(
        out,
        "    /// The wire value.\n    pub const fn code(self) -> i16 {{\n        match self {{\n{}            ErrorCode::Other(c) => c,\n        }}\n    }}\n\n",
        arms(&|r| format!("ErrorCode::{} => {},", error_variant(&r.name), r.code))
    );
    let _ = write!(
        out,
        "    /// The error for a wire value.\n    pub const fn from_code(code: i16) -> Self {{\n        match code {{\n{}            other => ErrorCode::Other(other),\n        }}\n    }}\n\n",
        arms(&|r| format!("{} => ErrorCode::{},", r.code, error_variant(&r.name)))
    );
    let _ = write!(
        out,
        "    /// Kafka's name for the code (`UNKNOWN_TOPIC_OR_PARTITION`); `UNKNOWN` for [`ErrorCode::Other`].\n    pub const fn name(self) -> &'static str {{\n        match self {{\n{}            ErrorCode::Other(_) => \"UNKNOWN\",\n        }}\n    }}\n\n",
        arms(&|r| format!("ErrorCode::{} => \"{}\",", error_variant(&r.name), r.name))
    );
    let _ = write!(
        out,
        "    /// The code Kafka calls `name`, if this table has it.\n    pub fn from_name(name: &str) -> Option<Self> {{\n        match name {{\n{}            _ => None,\n        }}\n    }}\n\n",
        arms(&|r| format!(
            "\"{}\" => Some(ErrorCode::{}),",
            r.name,
            error_variant(&r.name)
        ))
    );
    let retriable: Vec<String> = rows
        .iter()
        .filter(|r| r.retriable)
        .map(|r| format!("ErrorCode::{}", error_variant(&r.name)))
        .collect();
    let _ = write!(
        out,
        "    /// Whether Kafka's client retries on this error (its exception is a `RetriableException`). Unknown codes are not retriable.\n    pub const fn is_retriable(self) -> bool {{\n        matches!(self, {})\n    }}\n}}\n\n",
        retriable.join(" | ")
    );

    out.push_str("/// The same codes as plain `i16` constants, for writing straight into `error_code` fields.\npub mod codes {\n");
    for r in rows {
        let _ = writeln!(
            out,
            "    /// `{}`.\n    pub const {}: i16 = {};",
            r.name, r.name, r.code
        );
    }
    out.push_str("}\n");
    out
}

fn env_or_die(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| die(&format!("{k} not set")))
}

fn die(msg: &str) -> ! {
    eprintln!("sluice-protocol build.rs: {msg}");
    std::process::exit(1);
}

fn parse_file(path: &Path) -> Result<Api, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let module = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("bad file name")?
        .to_string();
    let mut messages: Vec<Message> = Vec::new();
    // Stack of (depth, field path) for nesting; we rebuild via indices.
    let mut current: Option<(usize, bool)> = None; // (message index, in common)
    let mut stack: Vec<usize> = Vec::new(); // depth of each open field level
    let _ = &mut stack;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent % 2 != 0 {
            return Err(format!("line {line_no}: odd indentation"));
        }
        let depth = indent / 2;
        let toks: Vec<&str> = line.split_whitespace().collect();
        if depth == 0 {
            let kv = keyvals(&toks[2..], line_no)?;
            match toks[0] {
                "request" | "response" => {
                    let get = |k: &str| {
                        kv.get(k)
                            .cloned()
                            .ok_or(format!("line {line_no}: missing {k}="))
                    };
                    messages.push(Message {
                        kind: toks[0].to_string(),
                        name: toks
                            .get(1)
                            .ok_or(format!("line {line_no}: missing name"))?
                            .to_string(),
                        api_key: get("key")?
                            .parse()
                            .map_err(|_| format!("line {line_no}: bad key"))?,
                        valid: Versions::parse(&get("v")?)?,
                        flexible: Versions::parse(&get("flex")?)?,
                        fields: Vec::new(),
                        commons: Vec::new(),
                    });
                    current = Some((messages.len() - 1, false));
                }
                "common" => {
                    let idx = messages
                        .len()
                        .checked_sub(1)
                        .ok_or("common before message")?;
                    messages[idx]
                        .commons
                        .push((toks[1].to_string(), Vec::new()));
                    current = Some((idx, true));
                }
                other => return Err(format!("line {line_no}: unknown block {other}")),
            }
            continue;
        }
        let (idx, in_common) = current.ok_or(format!("line {line_no}: field outside block"))?;
        let field = parse_field(&toks, line_no)?;
        let msg = &mut messages[idx];
        let top: &mut Vec<Field> = if in_common {
            &mut msg.commons.last_mut().ok_or("no common")?.1
        } else {
            &mut msg.fields
        };
        let mut level = top;
        for _ in 1..depth {
            level = &mut level
                .last_mut()
                .ok_or(format!("line {line_no}: indentation without parent"))?
                .children;
        }
        level.push(field);
    }
    let mut it = messages.into_iter();
    let request = it.next().ok_or("no request")?;
    let response = it.next().ok_or("no response")?;
    if request.kind != "request" || response.kind != "response" {
        return Err("expected request then response".into());
    }
    Ok(Api {
        module,
        request,
        response,
    })
}

fn keyvals(toks: &[&str], line_no: usize) -> Result<HashMap<String, String>, String> {
    let mut m = HashMap::new();
    for t in toks {
        let (k, v) = t
            .split_once('=')
            .ok_or(format!("line {line_no}: expected key=value, got {t}"))?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

fn parse_field(toks: &[&str], line_no: usize) -> Result<Field, String> {
    if toks.len() < 3 {
        return Err(format!("line {line_no}: field needs name, type, v="));
    }
    let kv = keyvals(&toks[2..], line_no)?;
    const FIELD_KEYS: &[&str] = &[
        "v", "null", "tag", "tv", "default", "mirror", "key", "err", "unique",
    ];
    if let Some(k) = kv.keys().find(|k| !FIELD_KEYS.contains(&k.as_str())) {
        return Err(format!("line {line_no}: unknown attribute {k}="));
    }
    let versions = Versions::parse(kv.get("v").ok_or(format!("line {line_no}: missing v="))?)?;
    let nullable = match kv.get("null") {
        Some(s) => Versions::parse(s)?,
        None => Versions(None),
    };
    let tag = match kv.get("tag") {
        Some(s) => Some(
            s.parse::<u32>()
                .map_err(|_| format!("line {line_no}: bad tag"))?,
        ),
        None => None,
    };
    let tagged = match kv.get("tv") {
        Some(s) => Versions::parse(s)?,
        None => Versions(None),
    };
    Ok(Field {
        name: toks[0].to_string(),
        ty_raw: toks[1].to_string(),
        versions,
        nullable,
        tag,
        tagged,
        default: kv.get("default").cloned(),
        mirror: kv.get("mirror").cloned(),
        key: kv.get("key").cloned(),
        err: kv.get("err").cloned(),
        unique: kv.get("unique").cloned(),
        children: Vec::new(),
        line: line_no,
    })
}

// ---------------------------------------------------------------------------
// Naming
// ---------------------------------------------------------------------------

fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn field_ident(name: &str) -> String {
    let s = snake(name);
    const KEYWORDS: &[&str] = &[
        "type", "match", "ref", "mod", "fn", "impl", "loop", "move", "self", "struct", "trait",
        "use", "where", "async", "await", "dyn", "enum", "crate", "box", "in", "let", "static",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

const RESERVED_TYPE_NAMES: &[&str] = &[
    "Bytes",
    "BytesMut",
    "Uuid",
    "String",
    "Vec",
    "Option",
    "Result",
    "Encode",
    "Decode",
    "EncodeError",
    "DecodeError",
    "Default",
    "Request",
    "ApiKey",
];

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

/// One struct to emit, with the message context it is coded under.
struct StructDef {
    name: String,
    fields: Vec<(Field, Ty)>,
    valid: Versions,
    flexible: Versions,
    top_level: bool,
}

fn parse_ty(raw: &str, field: &Field, names: &HashMap<String, String>) -> Result<Ty, String> {
    if let Some(inner) = raw.strip_prefix("[]") {
        return Ok(Ty::Array(Box::new(parse_ty(inner, field, names)?)));
    }
    Ok(match raw {
        "bool" => Ty::Bool,
        "int8" => Ty::I8,
        "int16" => Ty::I16,
        "int32" => Ty::I32,
        "int64" => Ty::I64,
        "uint16" => Ty::U16,
        "uint32" => Ty::U32,
        "float64" => Ty::F64,
        "string" => Ty::Str,
        "bytes" => Ty::Bytes,
        "records" => Ty::Records,
        "filerecords" => Ty::FileRecords,
        "uuid" => Ty::Uuid,
        other => Ty::Struct(
            names
                .get(other)
                .cloned()
                .ok_or(format!("line {}: unknown type {other}", field.line))?,
        ),
    })
}

fn struct_type_name(raw: &str) -> Option<&str> {
    let base = raw.trim_start_matches("[]");
    match base {
        "bool" | "int8" | "int16" | "int32" | "int64" | "uint16" | "uint32" | "float64"
        | "string" | "bytes" | "records" | "filerecords" | "uuid" => None,
        other => Some(other),
    }
}

fn signature(fields: &[Field], out: &mut String) {
    for f in fields {
        let _ = write!(
            out,
            "{} {} {:?} {:?} {:?} {:?} {:?}[",
            f.name, f.ty_raw, f.versions, f.nullable, f.tag, f.tagged, f.default
        );
        signature(&f.children, out);
        out.push(']');
    }
}

/// Collects the structs of one message into `defs`, renaming nested types
/// whose name another message of the same module already uses differently.
/// Returns the message's type names: spec name -> Rust name.
fn collect_message(
    msg: &Message,
    defs: &mut Vec<StructDef>,
    taken: &mut HashMap<String, String>,
) -> Result<HashMap<String, String>, String> {
    let ctx_sig = format!("{:?}{:?}", msg.valid, msg.flexible);
    // Resolve names for commons first so fields can refer to them.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut pending: Vec<(String, Vec<Field>)> = Vec::new();
    for (cname, cfields) in &msg.commons {
        let mut sig = ctx_sig.clone();
        signature(cfields, &mut sig);
        let final_name = claim_name(cname, &msg.name, &sig, taken)?;
        names.insert(cname.clone(), final_name.clone());
        pending.push((final_name, cfields.clone()));
    }
    // Walk inline definitions.
    fn walk(
        fields: &[Field],
        msg: &Message,
        ctx_sig: &str,
        names: &mut HashMap<String, String>,
        taken: &mut HashMap<String, String>,
        pending: &mut Vec<(String, Vec<Field>)>,
    ) -> Result<(), String> {
        for f in fields {
            if f.children.is_empty() {
                continue;
            }
            let tname = struct_type_name(&f.ty_raw)
                .ok_or(format!("line {}: primitive with children", f.line))?;
            let mut sig = ctx_sig.to_string();
            signature(&f.children, &mut sig);
            let final_name = claim_name(tname, &msg.name, &sig, taken)?;
            names.insert(tname.to_string(), final_name.clone());
            pending.push((final_name, f.children.clone()));
            walk(&f.children, msg, ctx_sig, names, taken, pending)?;
        }
        Ok(())
    }
    walk(&msg.fields, msg, &ctx_sig, &mut names, taken, &mut pending)?;

    // Now that every nested name is known, type the fields. Inline types
    // shadow by name within one message, which Kafka's specs never rely on.
    let type_fields = |fields: &[Field]| -> Result<Vec<(Field, Ty)>, String> {
        fields
            .iter()
            .map(|f| Ok((f.clone(), parse_ty(&f.ty_raw, f, &names)?)))
            .collect()
    };
    defs.push(StructDef {
        name: msg.name.clone(),
        fields: type_fields(&msg.fields)?,
        valid: msg.valid,
        flexible: msg.flexible,
        top_level: true,
    });
    let mut seen = std::collections::HashSet::new();
    for (name, fields) in pending {
        if !seen.insert(name.clone()) || defs.iter().any(|d| d.name == name) {
            continue;
        }
        defs.push(StructDef {
            name,
            fields: type_fields(&fields)?,
            valid: msg.valid,
            flexible: msg.flexible,
            top_level: false,
        });
    }
    Ok(names)
}

fn claim_name(
    wanted: &str,
    msg_name: &str,
    sig: &str,
    taken: &mut HashMap<String, String>,
) -> Result<String, String> {
    if RESERVED_TYPE_NAMES.contains(&wanted) {
        let alt = format!("{msg_name}{wanted}");
        return claim_name(&alt, msg_name, sig, taken);
    }
    match taken.get(wanted) {
        None => {
            taken.insert(wanted.to_string(), sig.to_string());
            Ok(wanted.to_string())
        }
        Some(existing) if existing == sig => Ok(wanted.to_string()),
        Some(_) => {
            let alt = format!("{msg_name}{wanted}");
            if alt == wanted {
                return Err(format!("type name {wanted} defined twice"));
            }
            claim_name(&alt, msg_name, sig, taken)
        }
    }
}

fn rust_ty(ty: &Ty, nullable: bool) -> String {
    let base = match ty {
        Ty::Bool => "bool".to_string(),
        Ty::I8 => "i8".to_string(),
        Ty::I16 => "i16".to_string(),
        Ty::I32 => "i32".to_string(),
        Ty::I64 => "i64".to_string(),
        Ty::U16 => "u16".to_string(),
        Ty::U32 => "u32".to_string(),
        Ty::F64 => "f64".to_string(),
        Ty::Str => "String".to_string(),
        Ty::Bytes | Ty::Records => "Bytes".to_string(),
        Ty::FileRecords => "crate::Records".to_string(),
        Ty::Uuid => "Uuid".to_string(),
        Ty::Struct(n) => n.clone(),
        Ty::Array(e) => format!("Vec<{}>", rust_ty(e, false)),
    };
    if nullable && !matches!(ty, Ty::Records | Ty::FileRecords) {
        format!("Option<{base}>")
    } else {
        base
    }
}

fn is_nullable(f: &Field, ty: &Ty) -> bool {
    !matches!(ty, Ty::Records | Ty::FileRecords) && !f.nullable.intersect(f.versions).is_empty()
}

fn default_expr(f: &Field, ty: &Ty) -> String {
    let nullable = is_nullable(f, ty);
    let d = f.default.as_deref();
    if nullable && d == Some("null") {
        return "None".to_string();
    }
    let base = match ty {
        Ty::Bool => (d == Some("true")).to_string(),
        Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 | Ty::U16 | Ty::U32 => d.unwrap_or("0").to_string(),
        Ty::F64 => {
            let v = d.unwrap_or("0");
            if v.contains('.') {
                v.to_string()
            } else {
                format!("{v}.0")
            }
        }
        Ty::Str => match d {
            Some(s) if s != "\"\"" && s != "null" => format!("String::from({s:?})"),
            _ => "String::new()".to_string(),
        },
        Ty::Bytes | Ty::Records => "Bytes::new()".to_string(),
        Ty::FileRecords => "crate::Records::default()".to_string(),
        Ty::Uuid => "Uuid::nil()".to_string(),
        Ty::Struct(n) => format!("{n}::default()"),
        Ty::Array(_) => "Vec::new()".to_string(),
    };
    if nullable {
        format!("Some({base})")
    } else {
        base
    }
}

fn fixed_size(ty: &Ty) -> Option<usize> {
    match ty {
        Ty::Bool | Ty::I8 => Some(1),
        Ty::I16 | Ty::U16 => Some(2),
        Ty::I32 | Ty::U32 => Some(4),
        Ty::I64 | Ty::F64 => Some(8),
        Ty::Uuid => Some(16),
        _ => None,
    }
}

/// Smallest number of wire bytes a value of `ty` can take.
fn min_size_expr(ty: &Ty) -> String {
    if let Some(n) = fixed_size(ty) {
        return n.to_string();
    }
    match ty {
        Ty::Str => "if flexible { 1 } else { 2 }".to_string(),
        Ty::Bytes | Ty::Records | Ty::FileRecords | Ty::Array(_) => {
            "if flexible { 1 } else { 4 }".to_string()
        }
        Ty::Struct(n) => format!("{n}::min_wire_size(version)"),
        _ => "1".to_string(),
    }
}

/// Code that encodes `x` (an expression of type `&T`) as a non-null value.
fn encode_value(ty: &Ty, x: &str, depth: usize) -> String {
    match ty {
        Ty::Bool => format!("codec::write_bool(buf, *{x});"),
        Ty::I8 => format!("codec::write_i8(buf, *{x});"),
        Ty::I16 => format!("codec::write_i16(buf, *{x});"),
        Ty::I32 => format!("codec::write_i32(buf, *{x});"),
        Ty::I64 => format!("codec::write_i64(buf, *{x});"),
        Ty::U16 => format!("codec::write_u16(buf, *{x});"),
        Ty::U32 => format!("codec::write_u32(buf, *{x});"),
        Ty::F64 => format!("codec::write_f64(buf, *{x});"),
        Ty::Str => format!("codec::write_string(buf, {x}, flexible)?;"),
        Ty::Bytes | Ty::Records => format!("codec::write_bytes(buf, {x}, flexible)?;"),
        Ty::FileRecords => format!("codec::write_records(buf, {x}, flexible)?;"),
        Ty::Uuid => format!("codec::write_uuid(buf, {x});"),
        Ty::Struct(_) => format!("{x}.encode_inner(buf, version)?;"),
        Ty::Array(e) => {
            let item = format!("item{depth}");
            format!(
                "codec::write_array_len(buf, {x}.len(), flexible)?; for {item} in {x}.iter() {{ {} }}",
                encode_value(e, &item, depth + 1)
            )
        }
    }
}

/// Code that encodes the empty/default non-null value of `ty`, used when a
/// field holds `None` in a version where the wire type is not nullable.
fn encode_empty(ty: &Ty) -> String {
    match ty {
        Ty::Str => "codec::write_string(buf, \"\", flexible)?;".to_string(),
        Ty::Bytes | Ty::Records | Ty::FileRecords => {
            "codec::write_bytes(buf, &[], flexible)?;".to_string()
        }
        Ty::Array(_) => "codec::write_array_len(buf, 0, flexible)?;".to_string(),
        Ty::Struct(n) => format!("{n}::default().encode_inner(buf, version)?;"),
        _ => String::new(),
    }
}

fn encode_null(ty: &Ty) -> String {
    match ty {
        Ty::Str => "codec::write_null_string(buf, flexible);".to_string(),
        Ty::Bytes => "codec::write_null_bytes(buf, flexible);".to_string(),
        Ty::Array(_) => "codec::write_null_array(buf, flexible);".to_string(),
        Ty::Struct(_) => "codec::write_i8(buf, -1);".to_string(),
        _ => String::new(),
    }
}

/// Code encoding field `f` from `access` (a place expression).
fn encode_field(f: &Field, ty: &Ty, access: &str, valid: Versions) -> String {
    if !is_nullable(f, ty) {
        if fixed_size(ty).is_some() {
            return encode_value(ty, &format!("&{access}"), 0).replace("*&", "");
        }
        return format!("{{ let x = &{access}; {} }}", encode_value(ty, "x", 0));
    }
    let null_cond = f.nullable.cond(valid.intersect(f.versions));
    let is_struct = matches!(ty, Ty::Struct(_));
    let some_branch = {
        let body = encode_value(ty, "x", 0);
        if is_struct {
            match &null_cond {
                None => format!("codec::write_i8(buf, 1); {body}"),
                Some(c) => format!("if {c} {{ codec::write_i8(buf, 1); }} {body}"),
            }
        } else {
            body
        }
    };
    let none_branch = match &null_cond {
        None => encode_null(ty),
        Some(c) => format!(
            "if {c} {{ {} }} else {{ {} }}",
            encode_null(ty),
            encode_empty(ty)
        ),
    };
    format!("match &{access} {{ Some(x) => {{ {some_branch} }} None => {{ {none_branch} }} }}")
}

/// Expression decoding a non-null value of `ty`.
fn decode_value(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "codec::read_bool(buf)?".to_string(),
        Ty::I8 => "codec::read_i8(buf)?".to_string(),
        Ty::I16 => "codec::read_i16(buf)?".to_string(),
        Ty::I32 => "codec::read_i32(buf)?".to_string(),
        Ty::I64 => "codec::read_i64(buf)?".to_string(),
        Ty::U16 => "codec::read_u16(buf)?".to_string(),
        Ty::U32 => "codec::read_u32(buf)?".to_string(),
        Ty::F64 => "codec::read_f64(buf)?".to_string(),
        Ty::Str => "codec::read_string(buf, flexible)?".to_string(),
        Ty::Bytes => "codec::read_bytes(buf, flexible)?".to_string(),
        // Records are nullable on the wire; null is read as empty because
        // the log and the broker treat both the same.
        Ty::Records => {
            "codec::read_nullable_bytes(buf, flexible, true)?.unwrap_or_default()".to_string()
        }
        Ty::FileRecords => {
            "crate::Records::from(codec::read_nullable_bytes(buf, flexible, true)?.unwrap_or_default())".to_string()
        }
        Ty::Uuid => "codec::read_uuid(buf)?".to_string(),
        Ty::Struct(n) => format!("{n}::decode_inner(buf, version)?"),
        Ty::Array(e) => format!(
            "{{ let n = codec::read_array_len(buf, flexible, {})?; let mut v = Vec::with_capacity(codec::prealloc(n)); for _ in 0..n {{ v.push({}); }} v }}",
            min_size_expr(e),
            decode_value(e)
        ),
    }
}

fn decode_field(f: &Field, ty: &Ty, valid: Versions) -> String {
    if !is_nullable(f, ty) {
        return decode_value(ty);
    }
    let null_cond = f
        .nullable
        .cond(valid.intersect(f.versions))
        .unwrap_or_else(|| "true".to_string());
    match ty {
        Ty::Str => format!("codec::read_nullable_string(buf, flexible, {null_cond})?"),
        Ty::Bytes => format!("codec::read_nullable_bytes(buf, flexible, {null_cond})?"),
        Ty::Array(e) => format!(
            "match codec::read_nullable_array_len(buf, flexible, {}, {null_cond})? {{ None => None, Some(n) => {{ let mut v = Vec::with_capacity(codec::prealloc(n)); for _ in 0..n {{ v.push({}); }} Some(v) }} }}",
            min_size_expr(e),
            decode_value(e)
        ),
        Ty::Struct(n) => format!(
            "if {null_cond} {{ if codec::read_i8(buf)? < 0 {{ None }} else {{ Some({n}::decode_inner(buf, version)?) }} }} else {{ Some({n}::decode_inner(buf, version)?) }}"
        ),
        _ => decode_value(ty),
    }
}

fn wrap_cond(cond: &Option<String>, body: &str) -> String {
    match cond {
        None => body.to_string(),
        Some(c) if c == "false" => String::new(),
        Some(c) => format!("if {c} {{ {body} }}"),
    }
}

fn versions_doc(v: Versions) -> String {
    match v.0 {
        None => "none".to_string(),
        Some((lo, i16::MAX)) => format!("{lo}+"),
        Some((lo, hi)) if lo == hi => format!("{lo}"),
        Some((lo, hi)) => format!("{lo}-{hi}"),
    }
}

fn gen_struct(d: &StructDef, out: &mut String) {
    let valid = d.valid;
    let flex_cond = d.flexible.cond(valid);
    let flexible_expr = match &flex_cond {
        None => "true".to_string(),
        Some(c) => c.clone(),
    };
    // Struct definition.
    if d.top_level {
        let _ = writeln!(
            out,
            "/// Kafka `{}`, versions {} (flexible {}).",
            d.name,
            versions_doc(valid),
            versions_doc(d.flexible)
        );
    } else {
        let _ = writeln!(out, "/// Kafka nested struct `{}`.", d.name);
    }
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq)]\npub struct {} {{",
        d.name
    );
    for (f, ty) in &d.fields {
        let tag_doc = match f.tag {
            Some(t) => format!(", tagged (tag {t}) in {}", versions_doc(f.tagged)),
            None => String::new(),
        };
        let null_doc = if is_nullable(f, ty) {
            format!(", nullable in {}", versions_doc(f.nullable))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    /// `{}`: versions {}{null_doc}{tag_doc}.\n    pub {}: {},",
            f.name,
            versions_doc(f.versions),
            field_ident(&f.name),
            rust_ty(ty, is_nullable(f, ty))
        );
    }
    let _ = writeln!(out, "}}\n");
    // Default = Kafka's declared defaults.
    let _ = writeln!(
        out,
        "impl Default for {} {{\n    fn default() -> Self {{\n        Self {{",
        d.name
    );
    for (f, ty) in &d.fields {
        let _ = writeln!(
            out,
            "            {}: {},",
            field_ident(&f.name),
            default_expr(f, ty)
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");

    // Partition fields into regular and tagged (per version).
    let _ = writeln!(out, "impl {} {{", d.name);
    // min_wire_size
    let _ = writeln!(
        out,
        "    /// Fewest bytes one encoded value can occupy at `version`; bounds array counts.\n    pub(crate) fn min_wire_size(version: i16) -> usize {{\n        let flexible = {flexible_expr};\n        let mut n = 0usize;"
    );
    for (f, ty) in &d.fields {
        let regular = regular_versions(f);
        let cond = regular.cond(valid);
        let size = if is_nullable(f, ty) && matches!(ty, Ty::Struct(_)) {
            "1".to_string()
        } else {
            min_size_expr(ty)
        };
        let s = wrap_cond(&cond, &format!("n += {size};"));
        if !s.is_empty() {
            let _ = writeln!(out, "        {s}");
        }
    }
    let _ = writeln!(
        out,
        "        if flexible {{ n += 1; }}\n        n\n    }}\n"
    );

    // encode_inner
    let _ = writeln!(
        out,
        "    /// Writes this struct at `version` without any version-range check.\n    pub(crate) fn encode_inner(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {{\n        let flexible = {flexible_expr};"
    );
    for (f, ty) in &d.fields {
        let cond = regular_versions(f).cond(valid);
        let body = encode_field(f, ty, &format!("self.{}", field_ident(&f.name)), valid);
        let s = wrap_cond(&cond, &body);
        if !s.is_empty() {
            let _ = writeln!(out, "        {s}");
        }
    }
    let mut tagged: Vec<&(Field, Ty)> = d.fields.iter().filter(|(f, _)| f.tag.is_some()).collect();
    tagged.sort_by_key(|(f, _)| f.tag);
    let _ = writeln!(
        out,
        "        if flexible {{\n            let mut tagged_count = 0u32;"
    );
    for (f, ty) in &tagged {
        let _ = writeln!(
            out,
            "            let default_{}: {} = {};",
            snake(&f.name),
            rust_ty(ty, is_nullable(f, ty)),
            default_expr(f, ty)
        );
    }
    for (f, ty) in &tagged {
        let cond = f.tagged.intersect(f.versions).cond(valid);
        let ident = field_ident(&f.name);
        let _ = ty;
        let test = format!(
            "if self.{ident} != default_{} {{ tagged_count += 1; }}",
            snake(&f.name)
        );
        let s = wrap_cond(&cond, &test);
        if !s.is_empty() {
            let _ = writeln!(out, "            {s}");
        }
    }
    let _ = writeln!(out, "            codec::write_uvarint(buf, tagged_count);");
    for (f, ty) in &tagged {
        let cond = f.tagged.intersect(f.versions).cond(valid);
        let ident = field_ident(&f.name);
        let tag = f.tag.unwrap_or_default();
        let enc = encode_field(f, ty, &format!("self.{ident}"), valid);
        // Only non-default values go on the wire: old librdkafka rejects
        // ApiVersions responses that carry default-valued tagged fields.
        let body = format!(
            "if self.{ident} != default_{} {{ codec::write_uvarint(buf, {tag}); let mut field_buf = BytesMut::new(); {{ let buf = &mut field_buf; {enc} }} codec::write_uvarint_len(buf, field_buf.len())?; buf.extend_from_slice(&field_buf); }}",
            snake(&f.name)
        );
        let s = wrap_cond(&cond, &body);
        if !s.is_empty() {
            let _ = writeln!(out, "            {s}");
        }
    }
    let _ = writeln!(out, "        }}\n        Ok(())\n    }}\n");

    // decode_inner
    let _ = writeln!(
        out,
        "    /// Reads this struct at `version` without any version-range check.\n    pub(crate) fn decode_inner(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{\n        let flexible = {flexible_expr};\n        let mut value = Self::default();"
    );
    for (f, ty) in &d.fields {
        let cond = regular_versions(f).cond(valid);
        let body = format!(
            "value.{} = {};",
            field_ident(&f.name),
            decode_field(f, ty, valid)
        );
        let s = wrap_cond(&cond, &body);
        if !s.is_empty() {
            let _ = writeln!(out, "        {s}");
        }
    }
    let _ = writeln!(
        out,
        "        if flexible {{\n            let count = codec::read_uvarint(buf)?;\n            for _ in 0..count {{\n                let tag = codec::read_uvarint(buf)?;\n                let size = codec::read_uvarint(buf)?;\n                let mut field_buf = codec::take(buf, size)?;\n                #[allow(clippy::match_single_binding)]\n                match tag {{"
    );
    for (f, ty) in &tagged {
        let cond = f.tagged.intersect(f.versions).cond(valid);
        if cond.as_deref() == Some("false") {
            continue;
        }
        let guard = match &cond {
            None => String::new(),
            Some(c) => format!(" if {c}"),
        };
        let _ = writeln!(
            out,
            "                    {}{guard} => {{ let buf = &mut field_buf; value.{} = {}; }}",
            f.tag.unwrap_or_default(),
            field_ident(&f.name),
            decode_field(f, ty, valid)
        );
    }
    let _ = writeln!(
        out,
        "                    // Unknown tags are skipped: their bytes were already taken.\n                    _ => {{ let _ = &mut field_buf; }}\n                }}\n            }}\n        }}\n        Ok(value)\n    }}\n}}\n"
    );

    if d.top_level {
        let (lo, hi) = valid.0.unwrap_or((0, -1));
        let _ = writeln!(
            out,
            "impl Encode for {n} {{\n    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {{\n        if !({lo}..={hi}).contains(&version) {{ return Err(EncodeError::UnsupportedVersion {{ message: \"{n}\", version }}); }}\n        self.encode_inner(buf, version)\n    }}\n}}\n",
            n = d.name
        );
        let _ = writeln!(
            out,
            "impl Decode for {n} {{\n    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{\n        if !({lo}..={hi}).contains(&version) {{ return Err(DecodeError::UnsupportedVersion {{ message: \"{n}\", version }}); }}\n        Self::decode_inner(buf, version)\n    }}\n}}\n",
            n = d.name
        );
    }
    // Test-only random value generator.
    let _ = writeln!(
        out,
        "#[cfg(test)]\nimpl crate::testgen::Arbitrary for {} {{\n    fn arbitrary(g: &mut crate::testgen::Gen) -> Self {{\n        Self {{",
        d.name
    );
    for (f, _) in &d.fields {
        let _ = writeln!(
            out,
            "            {}: crate::testgen::Arbitrary::arbitrary(g),",
            field_ident(&f.name)
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
}

/// Versions in which `f` is a regular (not tagged) field.
fn regular_versions(f: &Field) -> Versions {
    if f.tag.is_none() {
        return f.versions;
    }
    // A tagged field is regular only in versions outside its tagged range;
    // Kafka's specs never use that, so treat it as tagged-only.
    Versions(None)
}

fn variant_name(msg_name: &str, suffix: &str) -> String {
    msg_name
        .strip_suffix(suffix)
        .unwrap_or(msg_name)
        .to_string()
}

// ---------------------------------------------------------------------------
// Error responses
// ---------------------------------------------------------------------------

/// A field with its Rust type and, for a struct or an array of structs, the
/// struct's own fields resolved (inline or `common`).
struct Node {
    field: Field,
    ty: Ty,
    children: Vec<Node>,
}

/// Deepest struct nesting the resolver follows. Kafka's messages nest a
/// handful of levels; anything deeper is a cycle among `common` structs.
const MAX_NESTING: usize = 16;

/// Response fields that name the item they belong to. In an error response
/// each is copied from the same-named field of the request item being
/// mirrored; a key with another name (or not in this list) needs `key=`.
const KEY_FIELDS: &[&str] = &[
    "Name",
    "Topic",
    "TopicId",
    "TopicName",
    "Index",
    "Partition",
    "PartitionIndex",
    "PartitionId",
    "GroupId",
    "MemberId",
    "GroupInstanceId",
    "TransactionalId",
    "ProducerId",
    "ResourceType",
    "ResourceName",
    "Feature",
];

fn resolve(
    msg: &Message,
    fields: &[Field],
    names: &HashMap<String, String>,
    depth: usize,
) -> Result<Vec<Node>, String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "{}: structs nest deeper than {MAX_NESTING}",
            msg.name
        ));
    }
    fields
        .iter()
        .map(|f| {
            let ty = parse_ty(&f.ty_raw, f, names)?;
            let children = if !f.children.is_empty() {
                resolve(msg, &f.children, names, depth + 1)?
            } else if let Some(raw) = struct_type_name(&f.ty_raw) {
                let (_, common) = msg
                    .commons
                    .iter()
                    .find(|(n, _)| n == raw)
                    .ok_or(format!("line {}: no struct {raw}", f.line))?;
                resolve(msg, common, names, depth + 1)?
            } else {
                Vec::new()
            };
            Ok(Node {
                field: f.clone(),
                ty,
                children,
            })
        })
        .collect()
}

/// Whether `n` is an error-code field: `ErrorCode int16`, or `err=code`.
fn is_error_code(n: &Node) -> bool {
    match n.field.err.as_deref() {
        Some(v) => v == "code",
        None => n.field.name == "ErrorCode" && n.ty == Ty::I16,
    }
}

/// Whether a struct with these fields carries an error code, itself or in
/// anything nested inside it. Only such items are worth mirroring.
fn carries_error(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .any(|n| is_error_code(n) || carries_error(&n.children))
}

/// What a response struct in an error response is built from.
enum Source<'a> {
    /// Nothing: only the error fields are set.
    Nothing,
    /// The request itself (`self`): its arrays are mirrored, keys are not copied.
    Request(&'a [Node]),
    /// One request item, bound to the closure variable `var` (a reference).
    Item { fields: &'a [Node], var: String },
    /// One element of a request array of primitives, bound to `var` (a
    /// reference); it is copied into the response field named `into`.
    Element { ty: Ty, var: String, into: String },
}

/// The value of field `n` in an error response, if it is an error field.
fn error_value(n: &Node) -> Result<Option<String>, String> {
    let line = n.field.line;
    let nullable = is_nullable(&n.field, &n.ty);
    let message = || {
        if n.ty != Ty::Str {
            return Err(format!("line {line}: err=message on a non-string field"));
        }
        Ok(Some(if nullable {
            "message.map(str::to_owned)".to_string()
        } else {
            "message.unwrap_or_default().to_owned()".to_string()
        }))
    };
    match n.field.err.as_deref() {
        Some("code") if n.ty == Ty::I16 => Ok(Some("code".to_string())),
        Some("code") => Err(format!("line {line}: err=code on a non-int16 field")),
        Some("message") => message(),
        Some(literal) => {
            let ok = match n.ty {
                Ty::Bool => literal == "true" || literal == "false",
                Ty::I8 | Ty::I16 | Ty::I32 | Ty::I64 | Ty::U16 | Ty::U32 => {
                    literal.parse::<i64>().is_ok()
                }
                _ => false,
            };
            if !ok || nullable {
                return Err(format!(
                    "line {line}: err={literal} must be a plain number or bool for this field"
                ));
            }
            Ok(Some(literal.to_string()))
        }
        None if is_error_code(n) => Ok(Some("code".to_string())),
        None if n.field.name == "ErrorMessage" && n.ty == Ty::Str => message(),
        None => Ok(None),
    }
}

/// `copy` or `clone` (whichever suits `ty`) adapted from a source of
/// nullability `from_null` to a field of nullability `to_null`.
fn convert(copy: &str, clone: &str, ty: &Ty, from_null: bool, to_null: bool) -> String {
    let v = if fixed_size(ty).is_some() {
        copy
    } else {
        clone
    };
    match (from_null, to_null) {
        (false, true) => format!("Some({v})"),
        (true, false) => format!("{v}.unwrap_or_default()"),
        _ => v.to_string(),
    }
}

/// The value of key field `n` copied from the request item, if `n` is a key.
fn copied_key(n: &Node, src: &Source) -> Result<Option<String>, String> {
    let line = n.field.line;
    let to_null = is_nullable(&n.field, &n.ty);
    match src {
        Source::Element { ty, var, into } if *into == n.field.name => {
            if *ty != n.ty {
                return Err(format!(
                    "line {line}: {into} cannot hold the mirrored array's elements ({ty:?})"
                ));
            }
            Ok(Some(convert(
                &format!("*{var}"),
                &format!("{var}.clone()"),
                ty,
                false,
                to_null,
            )))
        }
        Source::Item { fields, var } => {
            let wanted = match &n.field.key {
                Some(k) => k.as_str(),
                None if KEY_FIELDS.contains(&n.field.name.as_str()) => n.field.name.as_str(),
                None => return Ok(None),
            };
            let found = fields.iter().find(|f| f.field.name == wanted);
            let Some(s) = found.filter(|s| s.ty == n.ty) else {
                if n.field.key.is_some() {
                    return Err(format!(
                        "line {line}: key={wanted}: the request item has no {wanted} of this type"
                    ));
                }
                return Ok(None);
            };
            let place = format!("{var}.{}", field_ident(&s.field.name));
            Ok(Some(convert(
                &place,
                &format!("{place}.clone()"),
                &n.ty,
                is_nullable(&s.field, &s.ty),
                to_null,
            )))
        }
        _ => Ok(None),
    }
}

/// The value of array field `n` mirrored from request arrays, if `n` mirrors
/// any: the arrays `mirror=` names, or else a same-named request array of
/// structs when `n`'s items carry an error code.
fn mirrored_array(n: &Node, src: &Source, depth: usize) -> Result<Option<String>, String> {
    let line = n.field.line;
    if n.field.unique.is_some() && n.field.mirror.is_none() {
        return Err(format!("line {line}: unique= needs mirror="));
    }
    let Ty::Array(elem) = &n.ty else {
        if n.field.mirror.is_some() {
            return Err(format!(
                "line {line}: mirror= on a field that is not an array"
            ));
        }
        return Ok(None);
    };
    let Ty::Struct(item_type) = elem.as_ref() else {
        if n.field.mirror.is_some() {
            return Err(format!("line {line}: mirror= on an array of primitives"));
        }
        return Ok(None);
    };
    let (request_fields, base) = match src {
        Source::Request(fields) => (*fields, "self".to_string()),
        Source::Item { fields, var } => (*fields, var.clone()),
        _ => return Ok(None),
    };
    let spec = match &n.field.mirror {
        Some(m) => m.clone(),
        None => {
            let same = request_fields.iter().any(|f| {
                f.field.name == n.field.name
                    && matches!(&f.ty, Ty::Array(e) if matches!(e.as_ref(), Ty::Struct(_)))
            });
            if !same || !carries_error(&n.children) {
                return Ok(None);
            }
            n.field.name.clone()
        }
    };
    let var = format!("item{depth}");
    let mut parts = Vec::new();
    for source in spec.split('+') {
        let (path, into) = match source.split_once(':') {
            Some((p, i)) => (p, Some(i)),
            None => (source, None),
        };
        let mut fields = request_fields;
        let mut iter = String::new();
        let mut last: Option<&Node> = None;
        for (i, seg) in path.split('.').enumerate() {
            let f = fields
                .iter()
                .find(|f| f.field.name == seg && matches!(f.ty, Ty::Array(_)))
                .ok_or(format!(
                    "line {line}: mirror={spec}: the request has no array {seg} here"
                ))?;
            let ident = field_ident(seg);
            let flatten = if is_nullable(&f.field, &f.ty) {
                ".flatten()"
            } else {
                ""
            };
            iter = if i == 0 {
                format!("{base}.{ident}.iter(){flatten}")
            } else {
                let outer = format!("outer{depth}_{i}");
                format!("{iter}.flat_map(|{outer}| {outer}.{ident}.iter(){flatten})")
            };
            fields = &f.children;
            last = Some(f);
        }
        let Some(Ty::Array(source_elem)) = last.map(|l| &l.ty) else {
            return Err(format!("line {line}: mirror={spec}: empty source"));
        };
        let inner = match (source_elem.as_ref(), into) {
            (Ty::Struct(_), None) => Source::Item {
                fields,
                var: var.clone(),
            },
            (Ty::Struct(_), Some(_)) => {
                return Err(format!(
                    "line {line}: mirror={spec}: `:field` is only for arrays of primitives"
                ));
            }
            (Ty::Array(_), _) | (_, None) => {
                return Err(format!(
                    "line {line}: mirror={spec}: an array of primitives needs `:Field` to say where each element goes"
                ));
            }
            (prim, Some(into)) => {
                if !n.children.iter().any(|c| c.field.name == into) {
                    return Err(format!(
                        "line {line}: mirror={spec}: the response item has no {into}"
                    ));
                }
                Source::Element {
                    ty: prim.clone(),
                    var: var.clone(),
                    into: into.to_string(),
                }
            }
        };
        let body = build_struct(&n.children, item_type, &inner, depth + 1)?;
        parts.push(format!("{iter}.map(|{var}| {body})"));
    }
    let mut expr = parts
        .iter()
        .skip(1)
        .fold(parts[0].clone(), |acc, p| format!("{acc}.chain({p})"));
    expr = format!("{expr}.collect::<Vec<{item_type}>>()");
    if let Some(unique) = &n.field.unique {
        if !n.children.iter().any(|c| c.field.name == *unique) {
            return Err(format!(
                "line {line}: unique={unique}: the response item has no {unique}"
            ));
        }
        // A set, not a scan of what was kept: requests can name many items.
        expr = format!(
            "{{ let mut seen = std::collections::HashSet::new(); let mut items = {expr}; items.retain(|item| seen.insert(item.{}.clone())); items }}",
            field_ident(unique)
        );
    }
    if is_nullable(&n.field, &n.ty) {
        expr = format!("Some({expr})");
    }
    Ok(Some(expr))
}

/// An expression building response struct `type_name` for an error response.
fn build_struct(
    nodes: &[Node],
    type_name: &str,
    src: &Source,
    depth: usize,
) -> Result<String, String> {
    let mut sets = Vec::new();
    for n in nodes {
        let value = match error_value(n)? {
            Some(v) => Some(v),
            None => match copied_key(n, src)? {
                Some(v) => Some(v),
                None => mirrored_array(n, src, depth)?,
            },
        };
        if let Some(v) = value {
            sets.push(format!("{}: {v}", field_ident(&n.field.name)));
        }
    }
    if sets.len() < nodes.len() {
        sets.push("..Default::default()".to_string());
    }
    Ok(format!("{type_name} {{ {} }}", sets.join(", ")))
}

/// `error_response` on the request and `top_level_error` on the response
/// of one API.
fn gen_error_response(
    api: &Api,
    request: &[Node],
    response: &[Node],
    out: &mut String,
) -> Result<(), String> {
    let rq = &api.request.name;
    let rs = &api.response.name;
    let mirrored = build_struct(response, rs, &Source::Request(request), 0)?;
    let top_only = build_struct(response, rs, &Source::Nothing, 0)?;
    let _ = writeln!(
        out,
        "impl {rq} {{\n    /// The response reporting error `code` (and `message`, where the response has room) for this request: every `error_code` and `error_message` is set, the response lists each topic, partition, group or other item this request names with its key and the error, and every other field keeps Kafka's default. See docs/protocol.md, \"Error responses\".\n    pub fn error_response(&self, code: i16, message: Option<&str>) -> {rs} {{\n        {mirrored}\n    }}\n}}\n"
    );
    let _ = writeln!(
        out,
        "impl {rs} {{\n    /// A response carrying error `code` (and `message`, where there is room) in its top-level error fields only, listing no items.\n    pub fn top_level_error(code: i16, message: Option<&str>) -> Self {{\n        {top_only}\n    }}\n}}\n"
    );
    Ok(())
}

/// True when `nodes` or anything nested in them has an `ErrorCode`.
fn has_error_code(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .any(|n| is_error_code(n) || has_error_code(&n.children))
}

/// Statements calling `f` with each `ErrorCode` under `nodes` of the
/// struct at `path`, descending into nested structs and arrays of structs.
fn error_code_walk(nodes: &[Node], path: &str, depth: usize, out: &mut String) {
    for n in nodes {
        let access = format!("{path}.{}", field_ident(&n.field.name));
        if is_error_code(n) {
            let _ = write!(out, "f({access}); ");
            continue;
        }
        if !has_error_code(&n.children) {
            continue;
        }
        let item = format!("x{depth}");
        let mut inner = String::new();
        error_code_walk(&n.children, &item, depth + 1, &mut inner);
        let nullable = is_nullable(&n.field, &n.ty);
        match (&n.ty, nullable) {
            (Ty::Array(_), false) => {
                let _ = write!(out, "for {item} in {access}.iter() {{ {inner}}} ");
            }
            (Ty::Array(_), true) => {
                let _ = write!(out, "for {item} in {access}.iter().flatten() {{ {inner}}} ");
            }
            (Ty::Struct(_), false) => {
                let _ = write!(out, "{{ let {item} = &{access}; {inner}}} ");
            }
            (Ty::Struct(_), true) => {
                let _ = write!(out, "if let Some({item}) = &{access} {{ {inner}}} ");
            }
            _ => {}
        }
    }
}

/// `ErrorCodes` for one API's response: Kafka counts a response's errors
/// (its `errorCounts`) over the top-level code and every item's code.
fn gen_error_codes(api: &Api, response: &[Node], out: &mut String) {
    let mut body = String::new();
    error_code_walk(response, "self", 0, &mut body);
    let _ = writeln!(
        out,
        "impl crate::ErrorCodes for {} {{\n    fn for_each_error_code(&self, f: &mut dyn FnMut(i16)) {{\n        let _ = &f;\n        {body}\n    }}\n}}\n",
        api.response.name
    );
}

fn generate(apis: &[Api]) -> Result<String, String> {
    let mut out = String::new();
    out.push_str("// @generated by crates/protocol/build.rs from crates/protocol/spec/*.spec. Do not edit.\n\n");
    out.push_str(
        "use crate::{Decode, DecodeError, Encode, EncodeError};\nuse bytes::{Bytes, BytesMut};\n\n",
    );
    // Module name -> exported type names (for the re-export list).
    let mut exports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for api in apis {
        let mut defs = Vec::new();
        let mut taken = HashMap::new();
        taken.insert(api.request.name.clone(), "top".to_string());
        taken.insert(api.response.name.clone(), "top".to_string());
        let request_names = collect_message(&api.request, &mut defs, &mut taken)?;
        let response_names = collect_message(&api.response, &mut defs, &mut taken)?;
        let _ = writeln!(
            out,
            "/// Messages of the {} API (key {}).\n#[allow(dead_code, unused_imports, unused_variables, unused_mut, clippy::needless_borrow, clippy::collapsible_if, clippy::single_match, clippy::match_single_binding, clippy::field_reassign_with_default, clippy::derivable_impls, clippy::needless_update)]\npub mod {} {{\n    use crate::codec;\n    use crate::{{Decode, DecodeError, Encode, EncodeError}};\n    use bytes::{{Bytes, BytesMut}};\n    use uuid::Uuid;\n",
            variant_name(&api.request.name, "Request"),
            api.request.api_key,
            api.module
        );
        for d in &defs {
            gen_struct(d, &mut out);
            exports
                .entry(api.module.clone())
                .or_default()
                .push(d.name.clone());
        }
        let rq = &api.request;
        let (lo, hi) = rq.valid.0.unwrap_or((0, -1));
        let _ = writeln!(
            out,
            "impl crate::Request for {} {{\n    const API_KEY: crate::ApiKey = crate::ApiKey::{};\n    const MIN_VERSION: i16 = {lo};\n    const MAX_VERSION: i16 = {hi};\n    type Response = {};\n}}\n",
            rq.name,
            variant_name(&rq.name, "Request"),
            api.response.name
        );
        let request_tree = resolve(&api.request, &api.request.fields, &request_names, 0)
            .map_err(|e| format!("{}: {e}", api.module))?;
        let response_tree = resolve(&api.response, &api.response.fields, &response_names, 0)
            .map_err(|e| format!("{}: {e}", api.module))?;
        gen_error_response(api, &request_tree, &response_tree, &mut out)
            .map_err(|e| format!("{}.spec: {e}", api.module))?;
        gen_error_codes(api, &response_tree, &mut out);
        let _ = writeln!(out, "}}\n");
    }
    // Re-exports: every name that is unique across modules.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for names in exports.values() {
        for n in names {
            *counts.entry(n.as_str()).or_default() += 1;
        }
    }
    for (module, names) in &exports {
        let unique: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| counts.get(n) == Some(&1))
            .collect();
        let _ = writeln!(out, "pub use {module}::{{{}}};", unique.join(", "));
    }
    out.push('\n');

    // ApiKey enum and tables.
    let _ = writeln!(
        out,
        "/// Every Kafka API key this codec knows, with Kafka's numeric value.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[repr(i16)]\npub enum ApiKey {{"
    );
    for api in apis {
        let _ = writeln!(
            out,
            "    /// {} (key {}).\n    {} = {},",
            variant_name(&api.request.name, "Request"),
            api.request.api_key,
            variant_name(&api.request.name, "Request"),
            api.request.api_key
        );
    }
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(
        out,
        "impl TryFrom<i16> for ApiKey {{\n    type Error = i16;\n    fn try_from(key: i16) -> Result<Self, i16> {{\n        match key {{"
    );
    for api in apis {
        let _ = writeln!(
            out,
            "            {} => Ok(ApiKey::{}),",
            api.request.api_key,
            variant_name(&api.request.name, "Request")
        );
    }
    let _ = writeln!(
        out,
        "            other => Err(other),\n        }}\n    }}\n}}\n"
    );
    let _ = writeln!(
        out,
        "impl ApiKey {{\n    /// Every API key, in numeric order.\n    pub const ALL: &'static [ApiKey] = &[{}];\n",
        apis.iter()
            .map(|a| format!("ApiKey::{}", variant_name(&a.request.name, "Request")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "    /// Kafka's name for this API.\n    pub fn name(self) -> &'static str {{\n        match self {{"
    );
    for api in apis {
        let v = variant_name(&api.request.name, "Request");
        let _ = writeln!(out, "            ApiKey::{v} => \"{v}\",");
    }
    let _ = writeln!(out, "        }}\n    }}\n");
    for (fname, doc, pick) in [
        (
            "request_flexible_from",
            "First flexible request version, or `None` if the request is never flexible.",
            0,
        ),
        (
            "response_flexible_from",
            "First flexible response version, or `None` if the response is never flexible.",
            1,
        ),
    ] {
        let _ = writeln!(
            out,
            "    /// {doc}\n    pub fn {fname}(self) -> Option<i16> {{\n        match self {{"
        );
        for api in apis {
            let m = if pick == 0 {
                &api.request
            } else {
                &api.response
            };
            let v = match m.flexible.0 {
                Some((lo, _)) => format!("Some({lo})"),
                None => "None".to_string(),
            };
            let _ = writeln!(
                out,
                "            ApiKey::{} => {v},",
                variant_name(&api.request.name, "Request")
            );
        }
        let _ = writeln!(out, "        }}\n    }}\n");
    }
    let _ = writeln!(
        out,
        "    /// Versions the codec can decode and encode, `(min, max)`.\n    pub fn supported_versions(self) -> (i16, i16) {{\n        match self {{"
    );
    for api in apis {
        let (lo, hi) = api.request.valid.0.unwrap_or((0, -1));
        let _ = writeln!(
            out,
            "            ApiKey::{} => ({lo}, {hi}),",
            variant_name(&api.request.name, "Request")
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
    let _ = writeln!(
        out,
        "/// The `(api_key, min, max)` version ranges this codec can decode; the broker chooses what to advertise.\npub const SUPPORTED_VERSIONS: &[(ApiKey, i16, i16)] = &[{}];\n",
        apis.iter()
            .map(|a| {
                let (lo, hi) = a.request.valid.0.unwrap_or((0, -1));
                format!(
                    "(ApiKey::{}, {lo}, {hi})",
                    variant_name(&a.request.name, "Request")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Dispatch enums.
    for (enum_name, suffix, pick) in [
        ("RequestBody", "Request", 0),
        ("ResponseBody", "Response", 1),
    ] {
        let _ = writeln!(
            out,
            "/// Any decoded {} body, tagged by API.\n#[derive(Debug, Clone, PartialEq)]\n#[allow(clippy::large_enum_variant)]\npub enum {enum_name} {{",
            suffix.to_lowercase()
        );
        for api in apis {
            let m = if pick == 0 {
                &api.request
            } else {
                &api.response
            };
            let _ = writeln!(
                out,
                "    /// {}.\n    {}({}::{}),",
                m.name,
                variant_name(&api.request.name, "Request"),
                api.module,
                m.name
            );
        }
        let _ = writeln!(out, "}}\n");
        let _ = writeln!(
            out,
            "impl {enum_name} {{\n    /// The API this body belongs to.\n    pub fn api_key(&self) -> ApiKey {{\n        match self {{"
        );
        for api in apis {
            let v = variant_name(&api.request.name, "Request");
            let _ = writeln!(out, "            {enum_name}::{v}(_) => ApiKey::{v},");
        }
        let _ = writeln!(out, "        }}\n    }}\n");
        let _ = writeln!(
            out,
            "    /// Decodes a body of API `api_key` at `version`.\n    pub fn decode(api_key: ApiKey, buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{\n        Ok(match api_key {{"
        );
        for api in apis {
            let v = variant_name(&api.request.name, "Request");
            let m = if pick == 0 {
                &api.request
            } else {
                &api.response
            };
            let _ = writeln!(
                out,
                "            ApiKey::{v} => {enum_name}::{v}(<{}::{} as Decode>::decode(buf, version)?),",
                api.module, m.name
            );
        }
        let _ = writeln!(out, "        }})\n    }}\n");
        let _ = writeln!(
            out,
            "    /// Encodes the body at `version`.\n    pub fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {{\n        match self {{"
        );
        for api in apis {
            let v = variant_name(&api.request.name, "Request");
            let _ = writeln!(
                out,
                "            {enum_name}::{v}(body) => body.encode(buf, version),"
            );
        }
        let _ = writeln!(out, "        }}\n    }}\n}}\n");
    }

    // Error responses through the dispatch enums.
    let _ = writeln!(
        out,
        "impl RequestBody {{\n    /// The response reporting error `code` (and `message`) for this request, mirroring every item it names; see each request's `error_response`.\n    pub fn error_response(&self, code: i16, message: Option<&str>) -> ResponseBody {{\n        match self {{"
    );
    for api in apis {
        let v = variant_name(&api.request.name, "Request");
        let _ = writeln!(
            out,
            "            RequestBody::{v}(r) => ResponseBody::{v}(r.error_response(code, message)),"
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
    let _ = writeln!(
        out,
        "impl ResponseBody {{\n    /// A response of API `api` carrying error `code` (and `message`) in its top-level error fields only; see each response's `top_level_error`.\n    pub fn top_level_error(api: ApiKey, code: i16, message: Option<&str>) -> ResponseBody {{\n        match api {{"
    );
    for api in apis {
        let v = variant_name(&api.request.name, "Request");
        let _ = writeln!(
            out,
            "            ApiKey::{v} => ResponseBody::{v}({}::{}::top_level_error(code, message)),",
            api.module, api.response.name
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");

    let _ = writeln!(
        out,
        "impl crate::ErrorCodes for ResponseBody {{\n    fn for_each_error_code(&self, f: &mut dyn FnMut(i16)) {{\n        match self {{"
    );
    for api in apis {
        let v = variant_name(&api.request.name, "Request");
        let _ = writeln!(
            out,
            "            ResponseBody::{v}(r) => r.for_each_error_code(f),"
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");

    // Test registry: every message with its version range.
    let _ = writeln!(
        out,
        "/// Every message type with its versions and a round-trip check, for tests.\n#[cfg(test)]\npub(crate) fn all_message_roundtrips() -> Vec<(&'static str, i16, i16, crate::testgen::RoundtripFn)> {{\n    vec!["
    );
    for api in apis {
        for m in [&api.request, &api.response] {
            let (lo, hi) = m.valid.0.unwrap_or((0, -1));
            let _ = writeln!(
                out,
                "        (\"{}\", {lo}, {hi}, crate::testgen::roundtrip::<{}::{}>),",
                m.name, api.module, m.name
            );
        }
    }
    let _ = writeln!(out, "    ]\n}}");

    // Test registry: a random request of any API.
    let _ = writeln!(
        out,
        "\n/// A random request body of API `api`, for tests.\n#[cfg(test)]\npub(crate) fn arbitrary_request(api: ApiKey, g: &mut crate::testgen::Gen) -> RequestBody {{\n    match api {{"
    );
    for api in apis {
        let v = variant_name(&api.request.name, "Request");
        let _ = writeln!(
            out,
            "        ApiKey::{v} => RequestBody::{v}(crate::testgen::Arbitrary::arbitrary(g)),"
        );
    }
    let _ = writeln!(out, "    }}\n}}");
    Ok(out)
}
