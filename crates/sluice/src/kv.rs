//! `sluice kv get|list`: the key-value view of a compacted topic from the
//! command line, through the broker's HTTP API (`/v1/topics/{t}/keys`).
//!
//! `get` prints the key's latest value as text (base64 when it is not
//! UTF-8) and exits 1 when the key is absent or tombstoned; `list` prints
//! one `key<TAB>partition<TAB>offset` line per live key, following the
//! API's pages up to `--limit` keys. `--json` prints what the API answers.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::common::{CliError, http_json, percent_encode};
use crate::output::{Format, print_data};

/// How long one HTTP call may take: a first lookup builds the partition's
/// index, which reads its whole log.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Keys one page asks for: the API's largest page.
const PAGE_KEYS: usize = 1_000;

/// Read a compacted topic as a table: a key's latest value, the live keys.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// Broker HTTP API.
    #[arg(
        long,
        global = true,
        env = "SLUICE_HTTP",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    http_server: String,
    /// Print what the API answers as JSON (the same as --format json).
    #[arg(long, global = true, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(Debug, Subcommand)]
enum KvCommand {
    /// Print a key's latest value (exit 1 when absent or tombstoned).
    Get(GetArgs),
    /// List live keys in byte order: key, partition, offset.
    List(ListArgs),
}

#[derive(Debug, Args)]
struct GetArgs {
    /// The topic (its cleanup.policy must include compact).
    topic: String,
    /// The key, as text (or base64 with --base64).
    key: String,
    /// Look only in this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// The key is standard base64 of its bytes.
    #[arg(long)]
    base64: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// The topic (its cleanup.policy must include compact).
    topic: String,
    /// Only keys starting with this text.
    #[arg(long)]
    prefix: Option<String>,
    /// Most keys to print.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// Runs `sluice kv`.
pub async fn run(a: KvArgs) -> Result<(), CliError> {
    match a.command {
        KvCommand::Get(ref g) => get(&a, g).await,
        KvCommand::List(ref l) => list(&a, l).await,
    }
}

/// One GET; a 2xx answer's JSON, else the API's error as a CliError.
async fn call(a: &KvArgs, path: &str) -> Result<Value, CliError> {
    http_json(
        &a.http_server,
        "GET",
        path,
        None,
        TIMEOUT,
        (
            "HTTP API",
            "is the broker's HTTP API there? see --http-server",
        ),
    )
    .await
}

impl KvArgs {
    /// JSON or YAML when asked for, `None` for text.
    fn data_format(&self) -> Option<Format> {
        match (self.json, self.format) {
            (true, _) => Some(Format::Json),
            (false, Format::Text) => None,
            (false, format) => Some(format),
        }
    }
}

async fn get(a: &KvArgs, g: &GetArgs) -> Result<(), CliError> {
    let mut path = format!(
        "/v1/topics/{}/keys/{}?key_encoding={}",
        percent_encode(&g.topic),
        percent_encode(&g.key),
        if g.base64 { "base64" } else { "text" }
    );
    if let Some(p) = g.partition {
        path.push_str(&format!("&partition={p}"));
    }
    let record = call(a, &path).await?;
    if let Some(format) = a.data_format() {
        print_data(format, &record);
        return Ok(());
    }
    let text = |name: &str| record.get(name).and_then(Value::as_str);
    println!(
        "{}",
        text("value").or_else(|| text("value_base64")).unwrap_or("")
    );
    Ok(())
}

async fn list(a: &KvArgs, l: &ListArgs) -> Result<(), CliError> {
    if l.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".to_owned()));
    }
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    let mut elsewhere = Value::Array(Vec::new());
    while keys.len() < l.limit {
        let mut path = format!(
            "/v1/topics/{}/keys?limit={}",
            percent_encode(&l.topic),
            (l.limit - keys.len()).min(PAGE_KEYS)
        );
        if let Some(prefix) = &l.prefix {
            path.push_str(&format!("&prefix={}", percent_encode(prefix)));
        }
        if let Some(after) = &after {
            path.push_str(&format!("&after={}", percent_encode(after)));
        }
        let page = call(a, &path).await?;
        elsewhere = page
            .get("partitions_elsewhere")
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(Value::Array(page_keys)) = page.get("keys") {
            keys.extend(page_keys.iter().cloned());
        }
        match page.get("next_after").and_then(Value::as_str) {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    if let Some(format) = a.data_format() {
        let out = serde_json::json!({
            "topic": l.topic,
            "keys": keys,
            "partitions_elsewhere": elsewhere,
        });
        print_data(format, &out);
        return Ok(());
    }
    for k in &keys {
        let text = |name: &str| k.get(name).and_then(Value::as_str);
        let key = text("key")
            .map(str::to_owned)
            .or_else(|| text("key_base64").map(|b| format!("base64:{b}")))
            .unwrap_or_default();
        let number = |name: &str| k.get(name).and_then(Value::as_i64).unwrap_or(-1);
        println!("{key}\t{}\t{}", number("partition"), number("offset"));
    }
    Ok(())
}
