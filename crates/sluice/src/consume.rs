//! `sluice consume TOPIC...`: read records, follow like `tail -f` by default.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use sluice_client::{Admin, Client, Consumer, ConsumerConfig, ConsumerRecord, Offset};
use tokio::signal::unix::{SignalKind, signal};

use crate::common::{CliError, ConnArgs, format_ms, parse_datetime_ms};
use crate::offset_spec::{self, OffsetSpec, Start, Stop, parse_offset_spec};

/// Most topics one `--regex` consume may match; each costs a metadata
/// entry and a fetch slot per partition.
const MAX_REGEX_TOPICS: usize = 1000;

/// Read records from topics.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topics to read (regular expressions with --regex).
    #[arg(required = true, value_name = "TOPIC")]
    topics: Vec<String>,
    /// Read every topic whose name matches one of the TOPIC expressions
    /// (Rust regex syntax, unanchored: use `^orders-.*$`).
    #[arg(long, short = 'r')]
    regex: bool,
    /// Start at the beginning of each partition.
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Where to start, and for a range where to stop (end exclusive, never
    /// past the end seen at start): `beginning`, `end`, `stored` (the
    /// group's committed offset), `N`, `+N` (N after the start), `-N` (the
    /// last N of each partition), `A:B`, `A:`, `:B`, `A:end`, `@TIME`,
    /// `@T1:@T2`, `@TIME:end`, kcat's `s@TIME` and `e@TIME` (TIME is RFC 3339
    /// or ms since the epoch).
    #[arg(long, short = 'o', conflicts_with = "timestamp", value_parser = parse_offset_spec, allow_hyphen_values = true, value_name = "OFFSET")]
    offset: Option<OffsetSpec>,
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
    /// Stop at the end of the partitions as seen at start instead of
    /// waiting for more. Without an offset this reads from the beginning
    /// (from the committed offsets with --group), as kcat and rpk do.
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

impl ConsumeArgs {
    /// The `-o` spec, with the other start flags and `--no-follow` folded in.
    fn spec(&self) -> OffsetSpec {
        let mut spec = if let Some(spec) = self.offset {
            spec
        } else if let Some(ts) = self.timestamp {
            OffsetSpec::from(Start::Time(ts))
        } else if self.group.is_some() {
            // With a group, --from-beginning only applies where nothing
            // is committed yet (Kafka's auto.offset.reset=earliest).
            OffsetSpec::from(Start::Stored)
        } else if self.from_beginning || self.no_follow {
            OffsetSpec::from(Start::Beginning)
        } else {
            OffsetSpec::from(Start::End)
        };
        if self.no_follow && spec.stop == Stop::Never {
            spec.stop = Stop::CurrentEnd;
        }
        spec
    }
}

/// How often a following `--regex` consume looks for new topics that
/// match (a metadata refresh; Kafka's pattern subscriptions pick up new
/// topics the same way, on their metadata refresh).
const REGEX_REFRESH: Duration = Duration::from_secs(5);

/// The `--regex` expressions, compiled.
fn topic_patterns(a: &ConsumeArgs) -> Result<Vec<regex::Regex>, CliError> {
    a.topics
        .iter()
        .map(|p| {
            regex::Regex::new(p).map_err(|e| {
                // The parser's message draws a caret under the error over
                // several lines; errors here are one line.
                let why = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                CliError::Usage(format!("--regex: '{p}' is not a regular expression: {why}"))
            })
        })
        .collect()
}

/// Every topic matching one of `patterns`, sorted, at most
/// [`MAX_REGEX_TOPICS`].
async fn matching_topics(
    client: &Client,
    patterns: &[regex::Regex],
) -> Result<Vec<String>, CliError> {
    let topics = Admin::new(client.clone()).list_topics().await?;
    let mut names: Vec<String> = topics
        .into_iter()
        .map(|t| t.name)
        .filter(|n| patterns.iter().any(|p| p.is_match(n)))
        .collect();
    names.sort();
    if names.len() > MAX_REGEX_TOPICS {
        return Err(CliError::Usage(format!(
            "{} topics match; at most {MAX_REGEX_TOPICS} can be consumed at once",
            names.len()
        )));
    }
    Ok(names)
}

/// The topics to read: the names given, or with `--regex` every topic
/// matching one of the expressions.
async fn topic_names(client: &Client, a: &ConsumeArgs) -> Result<Vec<String>, CliError> {
    if !a.regex {
        let mut names: Vec<String> = Vec::new();
        for t in &a.topics {
            if !names.contains(t) {
                names.push(t.clone());
            }
        }
        return Ok(names);
    }
    let names = matching_topics(client, &topic_patterns(a)?).await?;
    if names.is_empty() {
        return Err(CliError::Usage(format!(
            "no topic matches {}",
            a.topics.join(" or ")
        )));
    }
    Ok(names)
}

/// The partitions of `name` to read: all of them, or those of `-p` (each
/// must exist).
async fn partitions_of(
    client: &Client,
    name: &str,
    only: &[i32],
) -> Result<Vec<(String, i32)>, CliError> {
    let topic = client
        .topic(name)
        .await
        .map_err(crate::common::with_create_hint)?;
    for p in only {
        if !topic.partitions.iter().any(|x| x.partition == *p) {
            return Err(sluice_client::ClientError::UnknownPartition {
                topic: name.to_owned(),
                partition: *p,
                partitions: topic.partitions.len(),
            }
            .into());
        }
    }
    Ok(if only.is_empty() {
        topic
            .partitions
            .iter()
            .map(|p| (name.to_owned(), p.partition))
            .collect()
    } else {
        only.iter().map(|p| (name.to_owned(), *p)).collect()
    })
}

/// A following `--regex` consume's look for new matching topics: adds
/// them to the group subscription, or to the manual assignment from their
/// beginning (a topic created after the consume started is read whole).
/// Returns how many topics were added.
async fn follow_new_topics(
    client: &Client,
    consumer: &mut Consumer,
    patterns: &[regex::Regex],
    topics: &mut Vec<String>,
    only: &[i32],
    use_membership: bool,
) -> Result<usize, CliError> {
    let found = matching_topics(client, patterns).await?;
    let new: Vec<String> = found.into_iter().filter(|t| !topics.contains(t)).collect();
    if new.is_empty() {
        return Ok(0);
    }
    let mut parts = Vec::new();
    for name in &new {
        // With -p, a new topic without those partitions is left out.
        match partitions_of(client, name, only).await {
            Ok(p) => parts.extend(p),
            Err(_) if !only.is_empty() => continue,
            Err(e) => return Err(e),
        }
    }
    topics.extend(new.iter().cloned());
    if use_membership {
        consumer.update_subscription(topics).await?;
    } else {
        let start: Vec<_> = parts
            .into_iter()
            .map(|(t, p)| (t, p, Offset::Earliest))
            .collect();
        consumer.extend_assignment(&start).await?;
    }
    Ok(new.len())
}

/// Runs `sluice consume`.
pub async fn run(a: ConsumeArgs) -> Result<(), CliError> {
    let spec = a.spec();
    if spec.start == Start::Stored && a.group.is_none() {
        return Err(CliError::Usage(
            "-o stored needs a group (--group)".to_owned(),
        ));
    }
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
    let mut topics = topic_names(&client, &a).await?;
    let mut partitions: Vec<(String, i32)> = Vec::new();
    for name in &topics {
        partitions.extend(partitions_of(&client, name, &a.partition).await?);
    }
    let bounds = offset_spec::resolve(&client, spec, &partitions).await?;
    // Offset to stop before, per partition, for ranges and --no-follow.
    let ends: BTreeMap<(String, i32), i64> = partitions
        .iter()
        .zip(&bounds)
        .filter_map(|(key, b)| b.end.map(|end| (key.clone(), end)))
        .collect();
    let mut consumer = Consumer::new(
        client.clone(),
        ConsumerConfig {
            group_id: a.group.clone(),
            auto_offset_reset: if a.from_beginning || a.no_follow {
                Offset::Earliest
            } else {
                Offset::Latest
            },
            ..Default::default()
        },
    );
    let use_membership = a.group.is_some() && a.partition.is_empty() && spec.start == Start::Stored;
    if use_membership {
        consumer.subscribe(&topics).await?;
    } else {
        let parts: Vec<_> = partitions
            .iter()
            .zip(&bounds)
            .map(|((t, p), b)| (t.clone(), *p, b.start))
            .collect();
        consumer.assign(&parts).await?;
    }
    let formatter = Formatter::parse(&a.format, a.json_encoding);
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    // Offsets to commit: one past the last record printed, per partition.
    let mut to_commit: BTreeMap<(String, i32), i64> = BTreeMap::new();
    // A following --regex consume also reads topics created later.
    let patterns = if a.regex && ends.is_empty() {
        topic_patterns(&a)?
    } else {
        Vec::new()
    };
    let mut refreshed = Instant::now();
    let result = loop {
        if a.count.is_some_and(|n| printed >= n) {
            break Ok(());
        }
        if !patterns.is_empty() && refreshed.elapsed() >= REGEX_REFRESH {
            refreshed = Instant::now();
            follow_new_topics(
                &client,
                &mut consumer,
                &patterns,
                &mut topics,
                &a.partition,
                use_membership,
            )
            .await?;
        }
        if !ends.is_empty() && stop_finished(&mut consumer, &ends, use_membership).await? {
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
            let key = (r.topic.clone(), r.partition);
            if ends.get(&key).is_some_and(|end| r.offset >= *end) {
                continue;
            }
            if formatter.write(&mut out, r).is_err() {
                broken_pipe = true;
                break;
            }
            printed += 1;
            to_commit.insert(key, r.offset + 1);
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
    };
    if printed == 0 && a.no_follow && spec.start == Start::End {
        eprintln!(
            "note: nothing printed: -o end starts after the last record and --no-follow stops there"
        );
    }
    consumer.close().await?;
    result
}

/// Whether every partition with an end has reached it. Finished partitions
/// are dropped from a manual assignment so they are not fetched past their
/// end; a group member keeps what the group gave it.
async fn stop_finished(
    consumer: &mut Consumer,
    ends: &BTreeMap<(String, i32), i64>,
    use_membership: bool,
) -> Result<bool, CliError> {
    let finished = |key: &(String, i32), pos: &i64| ends.get(key).is_some_and(|end| pos >= end);
    let positions = consumer.positions();
    if positions.iter().all(|(k, pos)| finished(k, pos)) {
        return Ok(true);
    }
    if !use_membership && positions.iter().any(|(k, pos)| finished(k, pos)) {
        let remaining: Vec<_> = positions
            .iter()
            .filter(|(k, pos)| !finished(k, pos))
            .map(|((t, p), pos)| (t.clone(), *p, Offset::At(*pos)))
            .collect();
        consumer.assign(&remaining).await?;
    }
    Ok(false)
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
