//! `sluice consume TOPIC`: read records, follow like `tail -f` by default.

use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use sluice_client::{Consumer, ConsumerConfig, ConsumerRecord, Offset};
use tokio::signal::unix::{SignalKind, signal};

use crate::common::{CliError, ConnArgs, format_ms, parse_datetime_ms};

/// Read records from a topic.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to read.
    topic: String,
    /// Start at the beginning of each partition.
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Start at this offset (a number, `earliest` or `latest`).
    #[arg(long, short = 'o', conflicts_with = "timestamp", value_parser = parse_offset)]
    offset: Option<Offset>,
    /// Start at the first record at or after this time (RFC 3339 or ms since the epoch).
    #[arg(long, value_parser = parse_datetime_ms, value_name = "TIME")]
    timestamp: Option<i64>,
    /// Read only these partitions. Repeatable.
    #[arg(long, short = 'p')]
    partition: Vec<i32>,
    /// Consume as a member of this group and commit what was printed.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Stop at the end of the partitions instead of waiting for more.
    #[arg(long, short = 'e')]
    no_follow: bool,
    /// Output: `text` (value only), `json`, or a template such as
    /// '%p:%o %k=%v\n' with %t topic, %p partition, %o offset, %k key,
    /// %v value, %h headers, %T timestamp (ms), %d timestamp (RFC 3339).
    #[arg(long, short = 'F', default_value = "text")]
    format: String,
    /// How `-F json` writes keys, values and header values: `auto` writes
    /// UTF-8 as text and anything else as base64 with a `key_encoding`
    /// (`value_encoding`) field set to `base64`; `base64` writes every one
    /// as base64 with its encoding field. Bytes are never replaced.
    #[arg(long, default_value = "auto", value_parser = parse_json_encoding, value_name = "ENCODING")]
    json_encoding: JsonEncoding,
}

/// How `-F json` represents bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonEncoding {
    /// UTF-8 as text, other bytes as base64 (marked).
    Auto,
    /// Always base64 (marked).
    Base64,
}

fn parse_json_encoding(s: &str) -> Result<JsonEncoding, String> {
    match s {
        "auto" => Ok(JsonEncoding::Auto),
        "base64" => Ok(JsonEncoding::Base64),
        other => Err(format!("'{other}' is not auto or base64")),
    }
}

/// Adds `bytes` to a JSON object under `field`: text when `encoding`
/// allows and the bytes are UTF-8, else base64 with `{field}_encoding`
/// saying so. Null stays null.
fn put_bytes(
    object: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
    bytes: Option<&[u8]>,
    encoding: JsonEncoding,
) {
    use base64::Engine;
    use serde_json::Value;
    let Some(bytes) = bytes else {
        object.insert(field.to_owned(), Value::Null);
        return;
    };
    let text = match encoding {
        JsonEncoding::Auto => std::str::from_utf8(bytes).ok(),
        JsonEncoding::Base64 => None,
    };
    match text {
        Some(text) => {
            object.insert(field.to_owned(), Value::from(text));
        }
        None => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            object.insert(field.to_owned(), Value::from(encoded));
            object.insert(format!("{field}_encoding"), Value::from("base64"));
        }
    }
}

fn parse_offset(s: &str) -> Result<Offset, String> {
    match s {
        "earliest" | "beginning" => Ok(Offset::Earliest),
        "latest" | "end" => Ok(Offset::Latest),
        n => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Offset::At)
            .ok_or_else(|| format!("'{n}' is not an offset (a number >= 0, earliest or latest)")),
    }
}

/// Runs `sluice consume`.
pub async fn run(a: ConsumeArgs) -> Result<(), CliError> {
    // With a group, --from-beginning only applies where nothing is
    // committed yet (Kafka's auto.offset.reset=earliest).
    let start = if let Some(o) = a.offset {
        o
    } else if let Some(ts) = a.timestamp {
        Offset::Timestamp(ts)
    } else if a.group.is_some() {
        Offset::Committed
    } else if a.from_beginning {
        Offset::Earliest
    } else {
        Offset::Latest
    };
    // Listen before joining anything: a SIGINT or SIGTERM from here on
    // ends the loop below, which commits what was printed and leaves the
    // group, so the group is Empty at once (not after the session
    // timeout) and the exit status is 0.
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(CliError::io(format!("cannot listen for {name}")))
    };
    let mut sigint = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut sigterm = listen(SignalKind::terminate(), "SIGTERM")?;
    let client = a.conn.connect().await?;
    let topic = client
        .topic(&a.topic)
        .await
        .map_err(crate::common::with_create_hint)?;
    for p in &a.partition {
        if !topic.partitions.iter().any(|x| x.partition == *p) {
            return Err(sluice_client::ClientError::UnknownPartition {
                topic: a.topic.clone(),
                partition: *p,
                partitions: topic.partitions.len(),
            }
            .into());
        }
    }
    let mut consumer = Consumer::new(
        client,
        ConsumerConfig {
            group_id: a.group.clone(),
            auto_offset_reset: if a.from_beginning {
                Offset::Earliest
            } else {
                Offset::Latest
            },
            ..Default::default()
        },
    );
    let partitions: Vec<i32> = if a.partition.is_empty() {
        topic.partitions.iter().map(|p| p.partition).collect()
    } else {
        a.partition.clone()
    };
    let use_membership = a.group.is_some() && a.partition.is_empty() && start == Offset::Committed;
    if use_membership {
        consumer.subscribe(std::slice::from_ref(&a.topic)).await?;
    } else {
        let parts: Vec<_> = partitions
            .iter()
            .map(|p| (a.topic.clone(), *p, start))
            .collect();
        consumer.assign(&parts).await?;
    }
    let formatter = Formatter::parse(&a.format, a.json_encoding);
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    // Offsets to commit: one past the last record printed, per partition.
    let mut to_commit: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut end_offsets: Option<BTreeMap<(String, i32), i64>> = None;
    let result = loop {
        if a.count.is_some_and(|n| printed >= n) {
            break Ok(());
        }
        let records = tokio::select! {
            r = consumer.poll() => r?,
            _ = sigint.recv() => break Ok(()),
            _ = sigterm.recv() => break Ok(()),
        };
        let mut out = stdout.lock();
        let mut broken_pipe = false;
        for r in &records {
            if a.count.is_some_and(|n| printed >= n) {
                break;
            }
            if formatter.write(&mut out, r).is_err() {
                broken_pipe = true;
                break;
            }
            printed += 1;
            to_commit.insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        if out.flush().is_err() {
            broken_pipe = true;
        }
        drop(out);
        if a.group.is_some() && !to_commit.is_empty() {
            consumer.commit_offsets(&to_commit).await?;
            to_commit.clear();
        }
        if broken_pipe {
            break Ok(());
        }
        if a.no_follow && records.is_empty() {
            // Stop once every partition reached the end seen at start.
            let ends = match &end_offsets {
                Some(e) => e.clone(),
                None => {
                    let mut e = BTreeMap::new();
                    for key in consumer.positions().keys() {
                        if let Some(hw) = consumer.high_watermark(&key.0, key.1) {
                            e.insert(key.clone(), hw);
                        }
                    }
                    end_offsets = Some(e.clone());
                    e
                }
            };
            let done = consumer
                .positions()
                .iter()
                .all(|(k, pos)| ends.get(k).is_none_or(|end| pos >= end));
            if done {
                break Ok(());
            }
        }
    };
    consumer.close().await?;
    result
}

enum Piece {
    Literal(String),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Headers,
    TimestampMs,
    Date,
}

/// How records are printed.
enum Formatter {
    Text,
    Json(JsonEncoding),
    Template(Vec<Piece>),
}

impl Formatter {
    fn parse(spec: &str, encoding: JsonEncoding) -> Formatter {
        match spec {
            "text" => return Formatter::Text,
            "json" => return Formatter::Json(encoding),
            _ => {}
        }
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = spec.chars().peekable();
        while let Some(c) = chars.next() {
            let piece = match (c, chars.peek().copied()) {
                ('%', Some(n)) => {
                    let p = match n {
                        't' => Some(Piece::Topic),
                        'p' => Some(Piece::Partition),
                        'o' => Some(Piece::Offset),
                        'k' => Some(Piece::Key),
                        'v' => Some(Piece::Value),
                        'h' => Some(Piece::Headers),
                        'T' => Some(Piece::TimestampMs),
                        'd' => Some(Piece::Date),
                        '%' => {
                            lit.push('%');
                            None
                        }
                        _ => {
                            lit.push('%');
                            lit.push(n);
                            None
                        }
                    };
                    chars.next();
                    p
                }
                ('\\', Some(n)) => {
                    chars.next();
                    lit.push(match n {
                        'n' => '\n',
                        't' => '\t',
                        '\\' => '\\',
                        other => other,
                    });
                    None
                }
                _ => {
                    lit.push(c);
                    None
                }
            };
            if let Some(p) = piece {
                if !lit.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                }
                pieces.push(p);
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Formatter::Template(pieces)
    }

    fn write(&self, out: &mut impl Write, r: &ConsumerRecord) -> std::io::Result<()> {
        match self {
            Formatter::Text => {
                out.write_all(r.value.as_deref().unwrap_or_default())?;
                out.write_all(b"\n")
            }
            Formatter::Json(encoding) => {
                let headers: Vec<_> = r
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let mut h = serde_json::Map::new();
                        h.insert("key".to_owned(), serde_json::Value::from(k.as_str()));
                        put_bytes(&mut h, "value", v.as_deref(), *encoding);
                        serde_json::Value::Object(h)
                    })
                    .collect();
                let mut v = serde_json::Map::new();
                v.insert("topic".to_owned(), r.topic.as_str().into());
                v.insert("partition".to_owned(), r.partition.into());
                v.insert("offset".to_owned(), r.offset.into());
                v.insert("timestamp".to_owned(), r.timestamp_ms.into());
                put_bytes(&mut v, "key", r.key.as_deref(), *encoding);
                put_bytes(&mut v, "value", r.value.as_deref(), *encoding);
                v.insert("headers".to_owned(), headers.into());
                writeln!(out, "{}", serde_json::Value::Object(v))
            }
            Formatter::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Literal(s) => out.write_all(s.as_bytes())?,
                        Piece::Topic => out.write_all(r.topic.as_bytes())?,
                        Piece::Partition => write!(out, "{}", r.partition)?,
                        Piece::Offset => write!(out, "{}", r.offset)?,
                        Piece::Key => out.write_all(r.key.as_deref().unwrap_or_default())?,
                        Piece::Value => out.write_all(r.value.as_deref().unwrap_or_default())?,
                        Piece::Headers => {
                            for (i, (k, v)) in r.headers.iter().enumerate() {
                                if i > 0 {
                                    out.write_all(b",")?;
                                }
                                out.write_all(k.as_bytes())?;
                                out.write_all(b"=")?;
                                out.write_all(v.as_deref().unwrap_or_default())?;
                            }
                        }
                        Piece::TimestampMs => write!(out, "{}", r.timestamp_ms)?,
                        Piece::Date => out.write_all(format_ms(r.timestamp_ms).as_bytes())?,
                    }
                }
                Ok(())
            }
        }
    }
}
