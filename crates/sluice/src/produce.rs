//! `sluice produce TOPIC`: records from stdin lines, `--value`, or a file.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use sluice_client::{Acks, Compression, DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::common::{CliError, ConnArgs, parse_compression, parse_duration, parse_key_value};

/// Deliveries awaited in order before more are queued; bounds memory when
/// piping a large file while keeping printed offsets in input order.
const MAX_OUTSTANDING: usize = 10_000;

/// Write records to a topic.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic to write to.
    topic: String,
    /// Send this value instead of reading input. Repeatable: one record each.
    #[arg(long, short = 'v', value_name = "VALUE")]
    value: Vec<String>,
    /// Key for every record (with --value or line input).
    #[arg(long, short = 'k', value_name = "KEY")]
    key: Option<String>,
    /// Header for every record. Repeatable; order is kept.
    #[arg(long = "header", short = 'H', value_parser = parse_key_value, value_name = "KEY=VALUE")]
    headers: Vec<(String, String)>,
    /// Read records from this file (one per line) instead of stdin.
    #[arg(long, short = 'f', value_name = "PATH")]
    file: Option<PathBuf>,
    /// Split each input line into key and value at the first SEP.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Write to this partition (default: by key, round-robin without key).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Compression: none, gzip, snappy, lz4, zstd.
    #[arg(long, short = 'z', default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: Acks,
    /// How long to wait to fill a batch.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    linger: Duration,
    /// Batch size in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    batch_size: usize,
    /// Use an idempotent producer (needs --acks all).
    #[arg(long)]
    idempotent: bool,
    /// Print `partition offset` for every record written.
    #[arg(long, visible_alias = "print-offsets")]
    print_offset: bool,
    /// Print nothing on success.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse::<Acks>().map_err(|e| e.to_string())
}

/// Runs `sluice produce`.
pub async fn run(a: ProduceArgs) -> Result<(), CliError> {
    if a.partition.is_some_and(|p| p < 0) {
        return Err(CliError::Usage("--partition must be >= 0".to_owned()));
    }
    if !a.value.is_empty() && a.file.is_some() {
        return Err(CliError::Usage(
            "give either --value or --file, not both".to_owned(),
        ));
    }
    let client = a.conn.connect().await?;
    // Ask for the topic as Kafka producers do, so a broker with
    // `topics.auto_create` creates it; fail before reading any input if
    // it still does not exist.
    client
        .topic_for_produce(&a.topic)
        .await
        .map_err(crate::common::with_create_hint)?;
    let producer = Producer::new(
        client,
        ProducerConfig {
            acks: a.acks,
            linger: a.linger,
            batch_size_bytes: a.batch_size,
            compression: a.compression,
            idempotent: a.idempotent,
            ..Default::default()
        },
    )
    .await?;
    let headers: Vec<(String, Option<Bytes>)> = a
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
        .collect();
    let make = |key: Option<Bytes>, value: Bytes| ProducerRecord {
        topic: a.topic.clone(),
        partition: a.partition,
        key: key.or_else(|| a.key.clone().map(Bytes::from)),
        value: Some(value),
        headers: headers.clone(),
        timestamp_ms: None,
    };
    let mut out = Output {
        pending: VecDeque::new(),
        print: a.print_offset,
        stdout: std::io::stdout(),
        count: 0,
    };
    if !a.value.is_empty() {
        for v in &a.value {
            let fut = producer.send(make(None, Bytes::from(v.clone()))).await?;
            out.push(fut).await?;
        }
    } else {
        let input: Box<dyn AsyncRead + Unpin + Send> = match &a.file {
            Some(path) => Box::new(
                tokio::fs::File::open(path)
                    .await
                    .map_err(CliError::io(format!("cannot open {}", path.display())))?,
            ),
            None => Box::new(tokio::io::stdin()),
        };
        let mut lines = BufReader::new(input).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(CliError::io("cannot read input"))?
        {
            let (key, value) = match &a.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(Bytes::from(k.to_owned())), Bytes::from(v.to_owned())),
                    None => (None, Bytes::from(line)),
                },
                None => (None, Bytes::from(line)),
            };
            let fut = producer.send(make(key, value)).await?;
            out.push(fut).await?;
        }
    }
    producer.flush().await?;
    out.drain().await?;
    producer.close().await?;
    if !a.quiet && !a.print_offset {
        eprintln!("produced {} record(s) to {}", out.count, a.topic);
    }
    Ok(())
}

struct Output {
    pending: VecDeque<DeliveryFuture>,
    print: bool,
    stdout: std::io::Stdout,
    count: u64,
}

impl Output {
    async fn push(&mut self, fut: DeliveryFuture) -> Result<(), CliError> {
        self.pending.push_back(fut);
        while self.pending.len() > MAX_OUTSTANDING {
            self.complete_one().await?;
        }
        Ok(())
    }

    async fn complete_one(&mut self) -> Result<(), CliError> {
        if let Some(fut) = self.pending.pop_front() {
            let md = fut.await?;
            self.count += 1;
            if self.print {
                let mut w = self.stdout.lock();
                if writeln!(w, "partition={} offset={}", md.partition, md.offset).is_err() {
                    self.print = false;
                }
            }
        }
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), CliError> {
        while !self.pending.is_empty() {
            self.complete_one().await?;
        }
        Ok(())
    }
}
