//! `sluice bench produce|consume|e2e`: throughput and latency against a
//! running broker, with a progress bar, a JSON summary, and optional CSV and
//! PNG time series.
//!
//! Latency means:
//! - produce: send → acknowledgement, per record;
//! - consume: one fetch round trip (poll), per poll;
//! - e2e: the producer's send time (first 8 bytes of the value, µs since the
//!   epoch) → the moment a consumer in the same process decodes the record.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Subcommand};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_client::{
    Acks, Admin, Client, ClientConfig, Compression, Consumer, ConsumerConfig, NewTopic, Offset,
    Producer, ProducerConfig, ProducerRecord,
};
use tokio::sync::mpsc;

use crate::chart::Sample;
use crate::common::{CliError, ConnArgs, parse_compression, parse_duration};

/// Latency histogram range: 1 µs to 10 minutes, 3 significant digits.
const HIST_MAX_US: u64 = 600_000_000;
/// Period of the time series written to CSV/PNG.
const SAMPLE_PERIOD: Duration = Duration::from_secs(1);
/// Records between a producer task and its acknowledgement collector.
const ACK_QUEUE_DEPTH: usize = 65_536;

/// Measure throughput and latency.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Produce as fast as possible; latency is send → ack.
    Produce(BenchOpts),
    /// Consume from the beginning (filling the topic first if short); latency is per fetch.
    Consume(BenchOpts),
    /// Produce and consume at once; latency is send → consumed.
    E2e(BenchOpts),
}

#[derive(Debug, Clone, Args)]
struct BenchOpts {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic (created with --partitions if missing).
    #[arg(long, short = 't', default_value = "sluice-bench")]
    topic: String,
    /// Messages in total (ignored with --duration).
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    /// Run for this long instead of a message count (e.g. 30s).
    #[arg(long, short = 'd', value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Bytes per message value.
    #[arg(long, short = 's', default_value_t = 1024)]
    message_size: usize,
    /// Concurrent producers.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Concurrent consumers.
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Partitions when the topic is created.
    #[arg(long, short = 'p', default_value_t = 3)]
    partitions: i32,
    /// Replication factor when the topic is created (-1: the broker's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    replication_factor: i16,
    /// `min.insync.replicas` of the topic when it is created.
    #[arg(long)]
    min_insync_replicas: Option<u16>,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// How long a batch waits to fill.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    linger: Duration,
    /// Compression: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    acks: Acks,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Write a per-second time series (throughput, latency) as CSV.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Draw the time series as a PNG chart.
    #[arg(long, value_name = "PATH")]
    png: Option<PathBuf>,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse::<Acks>().map_err(|e| e.to_string())
}

/// Shared counters and histograms of one run.
struct Stats {
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Whole-run latency, µs. Std mutex: recorded in short sections, no await.
    total: Mutex<Histogram<u64>>,
    /// Latency since the last sample.
    interval: Mutex<Histogram<u64>>,
}

impl Stats {
    fn new() -> Result<Stats, CliError> {
        let h = || {
            Histogram::<u64>::new_with_bounds(1, HIST_MAX_US, 3)
                .map_err(|e| CliError::Other(format!("histogram: {e}")))
        };
        Ok(Stats {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            total: Mutex::new(h()?),
            interval: Mutex::new(h()?),
        })
    }

    fn record_latency(&self, us: u64) {
        let us = us.clamp(1, HIST_MAX_US);
        if let Ok(mut h) = self.total.lock() {
            let _ = h.record(us);
        }
        if let Ok(mut h) = self.interval.lock() {
            let _ = h.record(us);
        }
    }

    fn count(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The final summary.
#[derive(Debug, Clone, serde::Serialize)]
struct Report {
    mode: &'static str,
    topic: String,
    messages: u64,
    bytes: u64,
    message_size: usize,
    batch_size: usize,
    linger_ms: u64,
    acks: &'static str,
    compression: &'static str,
    producers: usize,
    consumers: usize,
    elapsed_s: f64,
    messages_per_sec: f64,
    mb_per_sec: f64,
    latency_ms_p50: f64,
    latency_ms_p90: f64,
    latency_ms_p99: f64,
    latency_ms_p999: f64,
    latency_ms_max: f64,
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn acks_name(a: Acks) -> &'static str {
    match a {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

/// Runs `sluice bench`.
pub async fn run(args: BenchArgs) -> Result<(), CliError> {
    let (mode, opts) = match args.command {
        BenchCommand::Produce(o) => ("produce", o),
        BenchCommand::Consume(o) => ("consume", o),
        BenchCommand::E2e(o) => ("e2e", o),
    };
    if opts.message_size < 8 && mode == "e2e" {
        return Err(CliError::Usage(
            "e2e needs --message-size >= 8 (it carries a timestamp)".to_owned(),
        ));
    }
    if opts.producers == 0 || opts.consumers == 0 || opts.batch_size == 0 {
        return Err(CliError::Usage(
            "--producers, --consumers and --batch-size must be >= 1".to_owned(),
        ));
    }
    let client = opts.conn.connect().await?;
    ensure_topic(&client, &opts).await?;
    let stats = Arc::new(Stats::new()?);
    let total = opts.duration.map_or(opts.messages, |_| u64::MAX);
    let bar = progress_bar(&opts, total);
    let stop = Arc::new(AtomicBool::new(false));
    if mode == "consume" {
        prefill(&opts).await?;
    }
    let started = Instant::now();
    let sampler = tokio::spawn(sample_loop(
        stats.clone(),
        bar.clone(),
        stop.clone(),
        started,
        opts.duration.is_some(),
    ));
    let result = match mode {
        "produce" => run_producers(&opts, stats.clone(), total, true).await,
        "consume" => run_consumers(&opts, stats.clone(), total).await,
        _ => run_e2e(&opts, stats.clone(), total).await,
    };
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Release);
    let samples = sampler.await;
    bar.finish_and_clear();
    result?;
    // A sampler that panicked is a bug, not "no samples".
    let samples = samples.map_err(|source| CliError::Task {
        task: "sampler",
        source,
    })?;
    let report = make_report(mode, &opts, &stats, elapsed);
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_report(&report);
    }
    if let Some(path) = &opts.csv {
        write_csv(path, &samples)?;
    }
    if let Some(path) = &opts.png
        && let Err(e) = crate::chart::draw(path, mode, &samples)
    {
        eprintln!("warning: chart not written: {e}");
    }
    Ok(())
}

fn progress_bar(opts: &BenchOpts, total: u64) -> ProgressBar {
    let bar = if opts.json {
        ProgressBar::hidden()
    } else if let Some(d) = opts.duration {
        ProgressBar::new(d.as_secs().max(1))
    } else {
        ProgressBar::new(total)
    };
    let template = if opts.duration.is_some() {
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len}s {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} msgs {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

async fn ensure_topic(client: &Client, opts: &BenchOpts) -> Result<(), CliError> {
    if client.topic(&opts.topic).await.is_ok() {
        return Ok(());
    }
    let admin = Admin::new(client.clone());
    match admin
        .create_topics(&[NewTopic {
            name: opts.topic.clone(),
            partitions: opts.partitions,
            replication_factor: opts.replication_factor,
            configs: opts
                .min_insync_replicas
                .map(|n| ("min.insync.replicas".to_owned(), n.to_string()))
                .into_iter()
                .collect(),
        }])
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.code().map(|c| c.code()) == Some(36) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A client with its own connections, so concurrent producers and
/// consumers do not share one socket.
async fn own_client(opts: &BenchOpts) -> Result<Client, CliError> {
    let mut config = ClientConfig::new(&opts.conn.bootstrap);
    config.conn.client_id = "sluice-bench".to_owned();
    config.conn.request_timeout = opts.conn.request_timeout;
    config.conn.sasl = opts.conn.sasl()?;
    Ok(Client::connect(config).await?)
}

fn producer_config(opts: &BenchOpts) -> ProducerConfig {
    ProducerConfig {
        acks: opts.acks,
        linger: opts.linger,
        batch_max_records: Some(opts.batch_size),
        // The record count seals batches; the byte limit only guards memory.
        batch_size_bytes: opts.batch_size * (opts.message_size + 64) * 2,
        compression: opts.compression,
        max_in_flight: 5,
        ..Default::default()
    }
}

/// Fills the topic up to `--messages` records for the consume bench.
async fn prefill(opts: &BenchOpts) -> Result<(), CliError> {
    let client = own_client(opts).await?;
    let topic = client.topic(&opts.topic).await?;
    let queries: Vec<_> = topic
        .partitions
        .iter()
        .flat_map(|p| {
            [
                (
                    opts.topic.clone(),
                    p.partition,
                    sluice_client::admin::EARLIEST_TIMESTAMP,
                ),
                (
                    opts.topic.clone(),
                    p.partition,
                    sluice_client::admin::LATEST_TIMESTAMP,
                ),
            ]
        })
        .collect();
    let offsets = sluice_client::admin::list_offsets(&client, &queries).await?;
    let have: i64 = offsets.chunks(2).map(|c| c[1] - c[0]).sum();
    let want = match opts.duration {
        // For a timed consume, keep a generous backlog.
        Some(_) => opts.messages.max(1_000_000),
        None => opts.messages,
    };
    let missing = want.saturating_sub(have.max(0) as u64);
    if missing > 0 {
        if !opts.json {
            eprintln!("filling {} with {missing} messages first", opts.topic);
        }
        let scratch = Arc::new(Stats::new()?);
        let mut o = opts.clone();
        o.duration = None;
        run_producers(&o, scratch, missing, false).await?;
    }
    Ok(())
}

fn payload(size: usize, stamp: bool) -> Bytes {
    let mut v: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    if stamp && size >= 8 {
        v[..8].copy_from_slice(&micros_now().to_be_bytes());
    }
    Bytes::from(v)
}

async fn run_producers(
    opts: &BenchOpts,
    stats: Arc<Stats>,
    total: u64,
    measure: bool,
) -> Result<(), CliError> {
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let sent = Arc::new(AtomicU64::new(0));
    let template = payload(opts.message_size, false);
    let mut tasks = Vec::new();
    for _ in 0..opts.producers {
        let client = own_client(opts).await?;
        let producer = Producer::new(client, producer_config(opts)).await?;
        let (opts, stats, sent, template) =
            (opts.clone(), stats.clone(), sent.clone(), template.clone());
        tasks.push(tokio::spawn(async move {
            let (tx, rx) = mpsc::channel(ACK_QUEUE_DEPTH);
            let collector = tokio::spawn(collect_acks(
                rx,
                stats.clone(),
                opts.message_size as u64,
                measure,
            ));
            let stamp = opts.message_size >= 8;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if sent.fetch_add(1, Ordering::Relaxed) >= total {
                    break;
                }
                let value = if stamp {
                    let mut v = template.to_vec();
                    v[..8].copy_from_slice(&micros_now().to_be_bytes());
                    Bytes::from(v)
                } else {
                    template.clone()
                };
                let record = ProducerRecord {
                    topic: opts.topic.clone(),
                    value: Some(value),
                    ..Default::default()
                };
                let t0 = Instant::now();
                let fut = producer.send(record).await?;
                if tx.send((fut, t0)).await.is_err() {
                    break;
                }
            }
            drop(tx);
            producer.close().await?;
            collector.await.map_err(|source| CliError::Task {
                task: "ack collector",
                source,
            })?
        }));
    }
    for t in tasks {
        t.await.map_err(|source| CliError::Task {
            task: "producer",
            source,
        })??;
    }
    Ok(())
}

async fn collect_acks(
    mut rx: mpsc::Receiver<(sluice_client::DeliveryFuture, Instant)>,
    stats: Arc<Stats>,
    size: u64,
    measure: bool,
) -> Result<(), CliError> {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            item = rx.recv(), if open => match item {
                Some((fut, t0)) => pending.push(async move { (fut.await, t0) }),
                None => open = false,
            },
            Some((result, t0)) = pending.next(), if !pending.is_empty() => {
                result?;
                if measure {
                    stats.record_latency(t0.elapsed().as_micros() as u64);
                    stats.count(1, size);
                }
            }
            else => break,
        }
    }
    Ok(())
}

async fn run_consumers(opts: &BenchOpts, stats: Arc<Stats>, total: u64) -> Result<(), CliError> {
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let client = own_client(opts).await?;
    let topic = client.topic(&opts.topic).await?;
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..opts.consumers {
        let parts: Vec<_> = topic
            .partitions
            .iter()
            .filter(|p| p.partition as usize % opts.consumers == c)
            .map(|p| (opts.topic.clone(), p.partition, Offset::Earliest))
            .collect();
        if parts.is_empty() {
            continue;
        }
        let client = own_client(opts).await?;
        let mut consumer = Consumer::new(
            client,
            ConsumerConfig {
                max_wait: Duration::from_millis(100),
                ..Default::default()
            },
        );
        consumer.assign(&parts).await?;
        let (stats, received) = (stats.clone(), received.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if received.load(Ordering::Relaxed) >= total
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return Ok::<(), CliError>(());
                }
                let t0 = Instant::now();
                let records = consumer.poll().await?;
                let poll_us = t0.elapsed().as_micros() as u64;
                if records.is_empty() {
                    continue;
                }
                let bytes: u64 = records
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
                    .sum();
                stats.record_latency(poll_us);
                stats.count(records.len() as u64, bytes);
                received.fetch_add(records.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|source| CliError::Task {
            task: "consumer",
            source,
        })??;
    }
    Ok(())
}

async fn run_e2e(opts: &BenchOpts, stats: Arc<Stats>, total: u64) -> Result<(), CliError> {
    // Consumers start at the end before anything is produced, then both run.
    // The consumer side gets a grace period past the producers' deadline.
    let mut o = opts.clone();
    o.duration = opts.duration.map(|d| d + Duration::from_secs(5));
    let consumers = Consumers::start(&o, stats, total).await?;
    let scratch = Arc::new(Stats::new()?);
    run_producers(opts, scratch, total, false).await?;
    consumers.finish().await
}

struct Consumers {
    task: tokio::task::JoinHandle<Result<(), CliError>>,
}

impl Consumers {
    async fn start(opts: &BenchOpts, stats: Arc<Stats>, total: u64) -> Result<Consumers, CliError> {
        // Resolve "latest" now so records produced from here on are all seen.
        let client = own_client(opts).await?;
        let topic = client.topic(&opts.topic).await?;
        let queries: Vec<_> = topic
            .partitions
            .iter()
            .map(|p| {
                (
                    opts.topic.clone(),
                    p.partition,
                    sluice_client::admin::LATEST_TIMESTAMP,
                )
            })
            .collect();
        let ends = sluice_client::admin::list_offsets(&client, &queries).await?;
        let opts = opts.clone();
        let task = tokio::spawn(async move { run_consumers_at(&opts, stats, total, &ends).await });
        Ok(Consumers { task })
    }

    async fn finish(self) -> Result<(), CliError> {
        self.task.await.map_err(|source| CliError::Task {
            task: "consumer",
            source,
        })?
    }
}

async fn run_consumers_at(
    opts: &BenchOpts,
    stats: Arc<Stats>,
    total: u64,
    ends: &[i64],
) -> Result<(), CliError> {
    // Partition i starts at ends[i], the end before producing began.
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let client = own_client(opts).await?;
    let topic = client.topic(&opts.topic).await?;
    let mut consumer = Consumer::new(
        client,
        ConsumerConfig {
            max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    );
    let parts: Vec<_> = topic
        .partitions
        .iter()
        .zip(ends)
        .map(|(p, end)| (opts.topic.clone(), p.partition, Offset::At(*end)))
        .collect();
    consumer.assign(&parts).await?;
    let mut received = 0u64;
    while received < total && deadline.is_none_or(|d| Instant::now() < d) {
        let records = consumer.poll().await?;
        let now = micros_now();
        let mut bytes = 0;
        for r in &records {
            let v = r.value.as_deref().unwrap_or_default();
            bytes += v.len() as u64;
            if v.len() >= 8 {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&v[..8]);
                stats.record_latency(now.saturating_sub(u64::from_be_bytes(ts)));
            }
        }
        stats.count(records.len() as u64, bytes);
        received += records.len() as u64;
    }
    Ok(())
}

async fn sample_loop(
    stats: Arc<Stats>,
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    started: Instant,
    timed: bool,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(SAMPLE_PERIOD);
    ticker.tick().await;
    let mut last_messages = 0u64;
    let mut last_bytes = 0u64;
    let mut last = Instant::now();
    loop {
        ticker.tick().await;
        let messages = stats.messages.load(Ordering::Relaxed);
        let bytes = stats.bytes.load(Ordering::Relaxed);
        let dt = last.elapsed().as_secs_f64().max(1e-9);
        last = Instant::now();
        let (p50, p99, max) = match stats.interval.lock() {
            Ok(mut h) => {
                let r = (
                    ms(h.value_at_quantile(0.5)),
                    ms(h.value_at_quantile(0.99)),
                    ms(h.max()),
                );
                h.reset();
                r
            }
            Err(_) => (0.0, 0.0, 0.0),
        };
        let rate = (messages - last_messages) as f64 / dt;
        let mbps = (bytes - last_bytes) as f64 / dt / (1024.0 * 1024.0);
        samples.push(Sample {
            elapsed_s: started.elapsed().as_secs_f64(),
            messages_per_sec: rate,
            mb_per_sec: mbps,
            latency_ms_p50: p50,
            latency_ms_p99: p99,
            latency_ms_max: max,
        });
        last_messages = messages;
        last_bytes = bytes;
        if timed {
            bar.set_position(started.elapsed().as_secs());
        } else {
            bar.set_position(messages);
        }
        bar.set_message(format!("{rate:.0} msg/s  {mbps:.1} MB/s  p99 {p99:.2} ms"));
        if stop.load(Ordering::Acquire) {
            return samples;
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn make_report(mode: &'static str, opts: &BenchOpts, stats: &Stats, elapsed: Duration) -> Report {
    let messages = stats.messages.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let q = |h: &Histogram<u64>, q: f64| {
        if h.is_empty() {
            0.0
        } else {
            ms(h.value_at_quantile(q))
        }
    };
    let (p50, p90, p99, p999, max) = match stats.total.lock() {
        Ok(h) => (
            q(&h, 0.5),
            q(&h, 0.9),
            q(&h, 0.99),
            q(&h, 0.999),
            if h.is_empty() { 0.0 } else { ms(h.max()) },
        ),
        Err(_) => (0.0, 0.0, 0.0, 0.0, 0.0),
    };
    Report {
        mode,
        topic: opts.topic.clone(),
        messages,
        bytes,
        message_size: opts.message_size,
        batch_size: opts.batch_size,
        linger_ms: opts.linger.as_millis() as u64,
        acks: acks_name(opts.acks),
        compression: opts.compression.name(),
        producers: opts.producers,
        consumers: opts.consumers,
        elapsed_s: secs,
        messages_per_sec: messages as f64 / secs,
        mb_per_sec: bytes as f64 / secs / (1024.0 * 1024.0),
        latency_ms_p50: p50,
        latency_ms_p90: p90,
        latency_ms_p99: p99,
        latency_ms_p999: p999,
        latency_ms_max: max,
    }
}

fn print_report(r: &Report) {
    println!(
        "{}: {} messages ({:.1} MB) in {:.2}s",
        r.mode,
        r.messages,
        r.bytes as f64 / (1024.0 * 1024.0),
        r.elapsed_s
    );
    println!(
        "throughput: {:.0} msgs/s, {:.2} MB/s",
        r.messages_per_sec, r.mb_per_sec
    );
    let what = match r.mode {
        "produce" => "send→ack",
        "consume" => "per fetch",
        _ => "end-to-end",
    };
    println!(
        "latency ({what}) ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        r.latency_ms_p50, r.latency_ms_p90, r.latency_ms_p99, r.latency_ms_p999, r.latency_ms_max
    );
}

fn write_csv(path: &std::path::Path, samples: &[Sample]) -> Result<(), CliError> {
    let mut text = String::from(
        "elapsed_s,messages_per_sec,mb_per_sec,latency_ms_p50,latency_ms_p99,latency_ms_max\n",
    );
    for s in samples {
        text.push_str(&format!(
            "{:.3},{:.1},{:.3},{:.3},{:.3},{:.3}\n",
            s.elapsed_s,
            s.messages_per_sec,
            s.mb_per_sec,
            s.latency_ms_p50,
            s.latency_ms_p99,
            s.latency_ms_max
        ));
    }
    std::fs::write(path, text).map_err(CliError::io(format!("cannot write {}", path.display())))
}
