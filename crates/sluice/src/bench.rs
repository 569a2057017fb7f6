//! `sluice bench produce|consume|e2e`: throughput and latency against a
//! running broker, with a progress bar, a JSON summary, and optional CSV and
//! PNG time series.
//!
//! Latency means:
//! - produce: send → acknowledgement, per record;
//! - consume: one fetch round trip (poll), per poll;
//! - e2e: the producer's send time (first 8 bytes of the value, µs since the
//!   epoch) → the moment a consumer in the same process decodes the record.
//!
//! With `--rate` the "send time" is when the record was *scheduled* to be
//! sent, so time a producer spends behind schedule counts as latency
//! (coordinated omission). Only completions inside the measured window
//! count, see [`measure`]: setup, the warm-up and the drain after a
//! `--duration` deadline are left out of every number.

mod measure;
mod rate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use sluice_client::{
    Acks, Admin, Client, ClientConfig, Compression, Consumer, ConsumerConfig, DeliveryFuture,
    NewTopic, NullKeys, Offset, Producer, ProducerConfig, ProducerRecord,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::chart::Sample;
use crate::common::{CliError, ConnArgs, parse_compression, parse_duration};
use measure::{SAMPLE_PERIOD, Stats, Summary, Window, ms};
use rate::{MAX_RECORDS_PER_SEC, MIN_RECORDS_PER_SEC, Rate, Schedule};

/// Largest batch the bench producer builds, in bytes (librdkafka's
/// default `batch.size`), so batches of large records fit the broker's
/// default `max.message.bytes`.
const MAX_BATCH_BYTES: usize = 1_000_000;
/// Records between a producer task and its acknowledgement collector; never
/// fills, since a producer holds at most `MAX_UNACKED_RECORDS` unacknowledged.
const ACK_QUEUE_DEPTH: usize = 65_536;
/// Value bytes one producer may have sent but not yet had acknowledged
/// (Kafka's `buffer.memory` default). Without a bound, a producer running
/// flat out queues far ahead of the broker: memory grows, latency measures
/// the queue, and a `--duration` run drains for seconds past its deadline.
const UNACKED_BYTES: usize = 32 * 1024 * 1024;
/// Unacknowledged records per producer whatever the value size, the same
/// bound for tiny values.
const MAX_UNACKED_RECORDS: usize = ACK_QUEUE_DEPTH;
/// The warm-up of a `--duration` run when `--warmup` is not given: long
/// enough for connections, leader caches and the first batches to settle.
const DEFAULT_TIMED_WARMUP: Duration = Duration::from_secs(1);
/// Longest `--duration` or `--warmup`: far beyond any benchmark, and it
/// keeps `Instant` arithmetic from overflowing.
const MAX_PHASE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most `--producers` or `--consumers`: each has its own connections, and
/// beyond this the bench measures its own scheduling, not the broker.
const MAX_CLIENTS: usize = 256;
/// A time series needs at least two points to draw a line.
const MIN_SERIES_SAMPLES: usize = 2;
/// How often the progress bar updates.
const PROGRESS_PERIOD: Duration = Duration::from_millis(500);
/// How long a bench consumer's fetch waits for data: short, so a consumer
/// notices the deadline soon after it passes.
const CONSUMER_MAX_WAIT: Duration = Duration::from_millis(100);
/// How long e2e consumers may take, after the last record is acknowledged,
/// to read the rest of a `--messages` run: far above any healthy end-to-end
/// latency, so running out means records went missing.
const E2E_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per MiB, the unit of the `mb_per_sec` figures.
const MIB: f64 = 1024.0 * 1024.0;

/// Measure throughput and latency.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Produce as fast as possible, or at --rate; latency is send → ack.
    Produce(BenchOpts),
    /// Consume from the beginning (filling the topic first if short); latency is per fetch.
    Consume(BenchOpts),
    /// Produce (with --acks) and consume at once; latency is send → consumed.
    E2e(BenchOpts),
}

#[derive(Debug, Clone, Args)]
struct BenchOpts {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic (created with --partitions if missing).
    #[arg(long, short = 't', default_value = "sluice-bench")]
    topic: String,
    /// Messages in total, warm-up included (ignored with --duration).
    #[arg(long, short = 'n', default_value_t = 100_000)]
    messages: u64,
    /// Measure for this long instead of a message count (e.g. 30s). The
    /// warm-up comes first, so the run takes --warmup plus this.
    #[arg(long, short = 'd', value_parser = parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Run this long before measuring; nothing completed during the warm-up
    /// counts in the throughput, the percentiles or the time series.
    /// Default: 1s with --duration, 0 with --messages.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    warmup: Option<Duration>,
    /// Hold a fixed load instead of sending as fast as possible: records
    /// per second in total (20000), or value bytes per second with a unit
    /// (100MB, 20MiB; B, kB, MB, GB are powers of 1000, KiB, MiB, GiB of
    /// 1024; a trailing /s is allowed). Shared evenly by --producers.
    /// Latency counts from each record's scheduled send time, so a
    /// producer that falls behind shows it. Not for `bench consume`.
    #[arg(long, value_parser = rate::parse_rate, value_name = "RATE")]
    rate: Option<Rate>,
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
    /// How records (all without a key) are spread over partitions:
    /// `sticky` fills a batch for one partition, then moves on (the Java
    /// client's default); `round-robin` moves every record, so with many
    /// partitions every batch holds one record (the worst case).
    #[arg(long, default_value = "sticky", value_parser = parse_partitioner)]
    partitioner: NullKeys,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = parse_acks)]
    acks: Acks,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Write the measured window as CSV, one row per full second (seconds
    /// counted from the end of the warm-up).
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Draw the same time series as a PNG chart.
    #[arg(long, value_name = "PATH")]
    png: Option<PathBuf>,
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse::<Acks>().map_err(|e| e.to_string())
}

/// Which bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Produce,
    Consume,
    E2e,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::E2e => "e2e",
        }
    }
}

/// What one run does, checked from the flags before anything connects.
#[derive(Debug, Clone, Copy)]
struct Plan {
    mode: Mode,
    /// Records to complete; unbounded for a `--duration` run.
    total: u64,
    warmup: Duration,
    duration: Option<Duration>,
    /// Records per second across all producers, when `--rate` paces them.
    rate_per_sec: Option<f64>,
}

impl Plan {
    fn new(mode: Mode, opts: &BenchOpts) -> Result<Plan, CliError> {
        let usage = |text: String| Err(CliError::Usage(text));
        if opts.message_size < 8 && mode == Mode::E2e {
            return usage("e2e needs --message-size >= 8 (it carries a timestamp)".to_owned());
        }
        if opts.producers == 0 || opts.consumers == 0 || opts.batch_size == 0 {
            return usage("--producers, --consumers and --batch-size must be >= 1".to_owned());
        }
        if opts.producers > MAX_CLIENTS || opts.consumers > MAX_CLIENTS {
            return usage(format!(
                "--producers and --consumers must be at most {MAX_CLIENTS}"
            ));
        }
        if opts.duration.is_none() && opts.messages == 0 {
            return usage("--messages must be >= 1".to_owned());
        }
        if opts.duration.is_some_and(|d| d.is_zero()) {
            return usage("--duration must be above zero".to_owned());
        }
        for (flag, phase) in [("--duration", opts.duration), ("--warmup", opts.warmup)] {
            if phase.is_some_and(|d| d > MAX_PHASE) {
                return usage(format!("{flag} must be at most {}", fmt_secs(MAX_PHASE)));
            }
        }
        let rate_per_sec = match opts.rate {
            None => None,
            Some(_) if mode == Mode::Consume => {
                return usage(
                    "--rate paces producers: use it with bench produce or bench e2e".to_owned(),
                );
            }
            Some(rate) => {
                let per_sec = rate.records_per_sec(opts.message_size);
                if !(MIN_RECORDS_PER_SEC..=MAX_RECORDS_PER_SEC).contains(&per_sec) {
                    return usage(format!(
                        "--rate comes to {per_sec:.3} records/s of {}-byte values; it must be \
                         between {MIN_RECORDS_PER_SEC} and {MAX_RECORDS_PER_SEC:e} records/s",
                        opts.message_size
                    ));
                }
                Some(per_sec)
            }
        };
        let default_warmup = match opts.duration {
            Some(_) => DEFAULT_TIMED_WARMUP,
            None => Duration::ZERO,
        };
        Ok(Plan {
            mode,
            total: opts.duration.map_or(opts.messages, |_| u64::MAX),
            warmup: opts.warmup.unwrap_or(default_warmup),
            duration: opts.duration,
            rate_per_sec,
        })
    }

    /// Phases starting now, once every client is connected.
    fn window(&self) -> Window {
        Window::starting_now(self.warmup, self.duration)
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
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
    partitioner: &'static str,
    producers: usize,
    consumers: usize,
    /// Warm-up before the measured window, excluded from every figure.
    warmup_s: f64,
    /// `--rate` in records per second, if set.
    target_messages_per_sec: Option<f64>,
    /// `--rate` in MiB of values per second, if set.
    target_mb_per_sec: Option<f64>,
    /// Length of the measured window.
    elapsed_s: f64,
    messages_per_sec: f64,
    mb_per_sec: f64,
    latency_ms_p50: f64,
    latency_ms_p90: f64,
    latency_ms_p99: f64,
    latency_ms_p999: f64,
    latency_ms_max: f64,
}

fn parse_partitioner(s: &str) -> Result<NullKeys, String> {
    match s {
        "sticky" => Ok(NullKeys::Sticky),
        "round-robin" => Ok(NullKeys::RoundRobin),
        other => Err(format!("'{other}' is not one of sticky, round-robin")),
    }
}

fn partitioner_name(p: NullKeys) -> &'static str {
    match p {
        NullKeys::Sticky => "sticky",
        NullKeys::RoundRobin => "round-robin",
    }
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
        BenchCommand::Produce(o) => (Mode::Produce, o),
        BenchCommand::Consume(o) => (Mode::Consume, o),
        BenchCommand::E2e(o) => (Mode::E2e, o),
    };
    let plan = Plan::new(mode, &opts)?;
    let client = opts.conn.connect().await?;
    ensure_topic(&client, &opts).await?;
    let summary = match mode {
        Mode::Produce => bench_produce(&opts, &plan).await?,
        Mode::Consume => {
            prefill(&opts).await?;
            bench_consume(&opts, &plan).await?
        }
        Mode::E2e => bench_e2e(&opts, &plan).await?,
    };
    let report = make_report(&opts, &plan, &summary);
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_report(&report);
    }
    if summary.messages == 0 {
        let why = if plan.warmup.is_zero() {
            String::new()
        } else {
            format!(
                ": the {:.1}s warm-up took the whole run (shorten --warmup or raise --messages)",
                plan.warmup.as_secs_f64()
            )
        };
        eprintln!("warning: nothing was measured{why}");
    }
    write_series(&opts, &plan, &summary)
}

/// A progress bar over the whole run (warm-up included), fed by a task
/// that reads the shared counters.
struct Progress {
    bar: ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(opts: &BenchOpts, plan: &Plan, stats: Arc<Stats>) -> Progress {
        // A timed run counts seconds, capped at its length; a count run
        // counts completed messages, capped at the count.
        let timed_len_s = plan
            .duration
            .map(|d| ((plan.warmup + d).as_secs_f64().ceil() as u64).max(1));
        let bar = if opts.json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(timed_len_s.unwrap_or(plan.total))
        };
        let template = if timed_len_s.is_some() {
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len}s {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} msgs {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let task = (!bar.is_hidden())
            .then(|| tokio::spawn(show_progress(bar.clone(), stats, plan.total, timed_len_s)));
        Progress { bar, task }
    }

    fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
        }
        self.bar.finish_and_clear();
    }
}

async fn show_progress(bar: ProgressBar, stats: Arc<Stats>, total: u64, timed_len_s: Option<u64>) {
    let window = stats.window();
    let mut ticker = tokio::time::interval(PROGRESS_PERIOD);
    let (mut last_at, mut last_messages, mut last_bytes) = (Instant::now(), 0, 0);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let (messages, bytes) = stats.progress();
        let dt = (now - last_at).as_secs_f64().max(1e-3);
        let rate = messages.saturating_sub(last_messages) as f64 / dt;
        let mibps = bytes.saturating_sub(last_bytes) as f64 / dt / MIB;
        (last_at, last_messages, last_bytes) = (now, messages, bytes);
        bar.set_position(match timed_len_s {
            Some(len) => (now - window.start).as_secs().min(len),
            None => messages.min(total),
        });
        let phase = if now < window.warmup_end {
            "warm-up  "
        } else {
            ""
        };
        bar.set_message(format!("{phase}{rate:.0} msg/s  {mibps:.1} MiB/s"));
    }
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
    let mut config = ClientConfig::new(&opts.conn.bootstrap()?);
    config.conn.client_id = "sluice-bench".to_owned();
    config.conn.request_timeout = opts.conn.request_timeout;
    config.conn.sasl = opts.conn.sasl()?;
    config.conn.tls = opts.conn.tls()?;
    let tls = config.conn.tls.is_some();
    Client::connect(config)
        .await
        .map_err(|e| crate::common::with_listener_hint(e, tls))
}

fn producer_config(opts: &BenchOpts) -> ProducerConfig {
    ProducerConfig {
        acks: opts.acks,
        linger: opts.linger,
        batch_max_records: Some(opts.batch_size),
        // The record count seals batches, and so does librdkafka's default
        // `batch.size`: a batch of large records must stay under the
        // broker's `max.message.bytes` (1 MiB by default).
        batch_size_bytes: (opts.batch_size * (opts.message_size + 64)).min(MAX_BATCH_BYTES),
        compression: opts.compression,
        max_in_flight: 5,
        null_keys: opts.partitioner,
        ..Default::default()
    }
}

/// `--producers` producers, each on its own client.
async fn connect_producers(opts: &BenchOpts) -> Result<Vec<Producer>, CliError> {
    let mut producers = Vec::with_capacity(opts.producers);
    for _ in 0..opts.producers {
        let client = own_client(opts).await?;
        producers.push(Producer::new(client, producer_config(opts)).await?);
    }
    Ok(producers)
}

/// What the producers of one run send, and where they report.
#[derive(Clone)]
struct SendJob {
    topic: String,
    /// Every value, before e2e stamps its first 8 bytes.
    template: Bytes,
    /// e2e: the first 8 bytes of each value carry its send time.
    stamp: bool,
    /// Records to send across all producers.
    total: u64,
    window: Window,
    /// Records per second across all producers, if paced.
    rate_per_sec: Option<f64>,
    /// Where acknowledgements count; `None` when another side measures
    /// (e2e) or nothing does (prefill).
    stats: Option<Arc<Stats>>,
    /// Unacknowledged records one producer may hold.
    unacked_limit: usize,
}

impl SendJob {
    fn new(opts: &BenchOpts, plan: &Plan, window: Window, stats: Option<Arc<Stats>>) -> SendJob {
        let bytes_bound = UNACKED_BYTES / opts.message_size.max(1);
        SendJob {
            topic: opts.topic.clone(),
            template: payload(opts.message_size),
            stamp: plan.mode == Mode::E2e,
            total: plan.total,
            window,
            rate_per_sec: plan.rate_per_sec,
            stats,
            // At least a batch, so batches can fill whatever the value size.
            unacked_limit: bytes_bound.clamp(
                opts.batch_size.min(MAX_UNACKED_RECORDS),
                MAX_UNACKED_RECORDS,
            ),
        }
    }
}

/// One record sent and not yet acknowledged.
struct Unacked {
    delivery: DeliveryFuture,
    /// When it was due: the scheduled time with `--rate`, else when the
    /// producer reached it.
    due: Instant,
    /// Returned when the acknowledgement arrives.
    permit: OwnedSemaphorePermit,
}

fn payload(size: usize) -> Bytes {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

async fn bench_produce(opts: &BenchOpts, plan: &Plan) -> Result<Summary, CliError> {
    let producers = connect_producers(opts).await?;
    let stats = Arc::new(Stats::new(plan.window())?);
    let progress = Progress::start(opts, plan, stats.clone());
    let job = SendJob::new(opts, plan, stats.window(), Some(stats.clone()));
    let result = run_producers(producers, job).await;
    progress.finish();
    result?;
    Ok(stats.summary(Instant::now()))
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
        let plan = Plan {
            mode: Mode::Produce,
            total: missing,
            warmup: Duration::ZERO,
            duration: None,
            rate_per_sec: None,
        };
        let producers = connect_producers(opts).await?;
        run_producers(producers, SendJob::new(opts, &plan, plan.window(), None)).await?;
    }
    Ok(())
}

/// Runs every producer to the end of `job`; the first failure wins and
/// stops the others.
async fn run_producers(producers: Vec<Producer>, job: SendJob) -> Result<(), CliError> {
    let sent = Arc::new(AtomicU64::new(0));
    let count = producers.len().max(1) as f64;
    let mut tasks = JoinSet::new();
    for (i, producer) in producers.into_iter().enumerate() {
        let schedule = job.rate_per_sec.map(|rate| {
            // Producer i starts i/rate after the first, so together they
            // send one evenly spaced stream at `rate`.
            let offset = Duration::try_from_secs_f64(i as f64 / rate).unwrap_or_default();
            Schedule::new(job.window.start + offset, rate / count)
        });
        tasks.spawn(produce_one(producer, job.clone(), sent.clone(), schedule));
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|source| CliError::Task {
            task: "producer",
            source,
        })??;
    }
    Ok(())
}

async fn produce_one(
    producer: Producer,
    job: SendJob,
    sent: Arc<AtomicU64>,
    schedule: Option<Schedule>,
) -> Result<(), CliError> {
    let (tx, rx) = mpsc::channel(ACK_QUEUE_DEPTH);
    let collector = tokio::spawn(collect_acks(
        rx,
        job.stats.clone(),
        job.template.len() as u64,
    ));
    let sending = send_until_done(&producer, &job, &sent, schedule, tx).await;
    let closed = producer.close().await;
    let collected = collector.await.map_err(|source| CliError::Task {
        task: "ack collector",
        source,
    })?;
    // A refused acknowledgement (NOT_ENOUGH_REPLICAS, say) is the cause of
    // whatever failed after it, so it is reported first.
    collected?;
    sending?;
    Ok(closed?)
}

/// Sends until the count is reached or the deadline passes, each record at
/// its scheduled time when paced. Ends early, without error, when the
/// collector has stopped (it failed, and reports why).
async fn send_until_done(
    producer: &Producer,
    job: &SendJob,
    sent: &AtomicU64,
    mut schedule: Option<Schedule>,
    tx: mpsc::Sender<Unacked>,
) -> Result<(), CliError> {
    let unacked = Arc::new(Semaphore::new(job.unacked_limit));
    loop {
        let due = match schedule.as_mut() {
            Some(s) => match s.next_due() {
                Some(due) => due,
                None => return Ok(()),
            },
            None => Instant::now(),
        };
        if job.window.deadline.is_some_and(|d| due >= d) {
            return Ok(());
        }
        if sent.fetch_add(1, Ordering::Relaxed) >= job.total {
            return Ok(());
        }
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let Ok(permit) = unacked.clone().acquire_owned().await else {
            return Ok(());
        };
        // Behind schedule or held up by unacknowledged records: still stop
        // at the deadline.
        if job.window.is_over(Instant::now()) {
            return Ok(());
        }
        let value = if job.stamp {
            let mut v = job.template.to_vec();
            v[..8].copy_from_slice(&job.window.epoch_us(due).to_be_bytes());
            Bytes::from(v)
        } else {
            job.template.clone()
        };
        let record = ProducerRecord {
            topic: job.topic.clone(),
            value: Some(value),
            ..Default::default()
        };
        let delivery = producer.send(record).await?;
        let unacked = Unacked {
            delivery,
            due,
            permit,
        };
        if tx.send(unacked).await.is_err() {
            return Ok(());
        }
    }
}

async fn collect_acks(
    mut rx: mpsc::Receiver<Unacked>,
    stats: Option<Arc<Stats>>,
    size: u64,
) -> Result<(), CliError> {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            item = rx.recv(), if open => match item {
                Some(u) => pending.push(async move {
                    let result = u.delivery.await;
                    drop(u.permit);
                    (result, u.due)
                }),
                None => open = false,
            },
            Some((result, due)) = pending.next(), if !pending.is_empty() => {
                result?;
                if let Some(stats) = &stats {
                    let now = Instant::now();
                    let latency_us = now.saturating_duration_since(due).as_micros() as u64;
                    stats.complete(now, 1, size, [latency_us]);
                }
            }
            else => break,
        }
    }
    Ok(())
}

/// Consumers over the topic's partitions, split round-robin, each assigned
/// before the run starts: from the beginning, or from the current end so
/// that an e2e run sees every record it produces and nothing older.
async fn connect_consumers(opts: &BenchOpts, from_end: bool) -> Result<Vec<Consumer>, CliError> {
    let client = own_client(opts).await?;
    let topic = client.topic(&opts.topic).await?;
    let starts: Vec<Offset> = if from_end {
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
        sluice_client::admin::list_offsets(&client, &queries)
            .await?
            .into_iter()
            .map(Offset::At)
            .collect()
    } else {
        vec![Offset::Earliest; topic.partitions.len()]
    };
    let mut consumers = Vec::new();
    for c in 0..opts.consumers {
        let parts: Vec<_> = topic
            .partitions
            .iter()
            .zip(&starts)
            .filter(|(p, _)| p.partition as usize % opts.consumers == c)
            .map(|(p, start)| (opts.topic.clone(), p.partition, *start))
            .collect();
        if parts.is_empty() {
            continue;
        }
        let mut consumer = Consumer::new(
            own_client(opts).await?,
            ConsumerConfig {
                max_wait: CONSUMER_MAX_WAIT,
                ..Default::default()
            },
        );
        consumer.assign(&parts).await?;
        consumers.push(consumer);
    }
    Ok(consumers)
}

/// How a consumer turns what it fetched into latencies.
#[derive(Debug, Clone, Copy)]
enum ConsumeLatency {
    /// One fetch round trip per poll (`bench consume`).
    PerFetch,
    /// Each record's stamped send time → now (`bench e2e`).
    SinceStamp,
}

/// What the consumers of one run read, and where they report.
#[derive(Clone)]
struct ConsumeJob {
    /// Records to read across all consumers.
    total: u64,
    latency: ConsumeLatency,
    stats: Arc<Stats>,
    /// Records read so far, across consumers.
    received: Arc<AtomicU64>,
}

fn spawn_consumers(consumers: Vec<Consumer>, job: &ConsumeJob) -> JoinSet<Result<(), CliError>> {
    let mut tasks = JoinSet::new();
    for consumer in consumers {
        tasks.spawn(consume_one(consumer, job.clone()));
    }
    tasks
}

/// Waits for every consumer; the first failure wins and stops the others.
async fn join_consumers(tasks: &mut JoinSet<Result<(), CliError>>) -> Result<(), CliError> {
    while let Some(done) = tasks.join_next().await {
        done.map_err(|source| CliError::Task {
            task: "consumer",
            source,
        })??;
    }
    Ok(())
}

async fn consume_one(mut consumer: Consumer, job: ConsumeJob) -> Result<(), CliError> {
    let window = job.stats.window();
    loop {
        if job.received.load(Ordering::Relaxed) >= job.total || window.is_over(Instant::now()) {
            return Ok(());
        }
        let t0 = Instant::now();
        let records = consumer.poll().await?;
        let at = Instant::now();
        if records.is_empty() {
            continue;
        }
        let count = records.len() as u64;
        let bytes: u64 = records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
            .sum();
        job.received.fetch_add(count, Ordering::Relaxed);
        match job.latency {
            ConsumeLatency::PerFetch => {
                let poll_us = (at - t0).as_micros() as u64;
                job.stats.complete(at, count, bytes, [poll_us]);
            }
            ConsumeLatency::SinceStamp => {
                let now_us = window.epoch_us(at);
                let latencies = records
                    .iter()
                    .filter_map(|r| stamp_of(r.value.as_deref()?))
                    .map(|sent_us| now_us.saturating_sub(sent_us));
                job.stats.complete(at, count, bytes, latencies);
            }
        }
    }
}

/// The send time an e2e producer wrote into the first 8 bytes of a value.
fn stamp_of(value: &[u8]) -> Option<u64> {
    let head: [u8; 8] = value.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

async fn bench_consume(opts: &BenchOpts, plan: &Plan) -> Result<Summary, CliError> {
    let consumers = connect_consumers(opts, false).await?;
    let stats = Arc::new(Stats::new(plan.window())?);
    let progress = Progress::start(opts, plan, stats.clone());
    let job = ConsumeJob {
        total: plan.total,
        latency: ConsumeLatency::PerFetch,
        stats: stats.clone(),
        received: Arc::new(AtomicU64::new(0)),
    };
    let result = join_consumers(&mut spawn_consumers(consumers, &job)).await;
    progress.finish();
    result?;
    Ok(stats.summary(Instant::now()))
}

/// Consumers start at the end before anything is produced, then both run.
/// A `--duration` run stops both sides at the deadline (what is consumed
/// after it would not count); a `--messages` run waits, bounded, for the
/// consumers to read every record the producers had acknowledged.
async fn bench_e2e(opts: &BenchOpts, plan: &Plan) -> Result<Summary, CliError> {
    let consumers = connect_consumers(opts, true).await?;
    let producers = connect_producers(opts).await?;
    let stats = Arc::new(Stats::new(plan.window())?);
    let progress = Progress::start(opts, plan, stats.clone());
    let job = ConsumeJob {
        total: plan.total,
        latency: ConsumeLatency::SinceStamp,
        stats: stats.clone(),
        received: Arc::new(AtomicU64::new(0)),
    };
    // Dropped on an early return, which aborts the consumers.
    let mut consuming = spawn_consumers(consumers, &job);
    let result = async {
        // The consumers measure; the producers only send.
        run_producers(producers, SendJob::new(opts, plan, stats.window(), None)).await?;
        match tokio::time::timeout(E2E_DRAIN_TIMEOUT, join_consumers(&mut consuming)).await {
            Ok(consumed) => consumed,
            Err(_) => Err(CliError::Other(format!(
                "e2e: consumed {} of {} records in the {}s after the last was acknowledged",
                job.received.load(Ordering::Relaxed),
                plan.total,
                E2E_DRAIN_TIMEOUT.as_secs()
            ))),
        }
    }
    .await;
    progress.finish();
    result?;
    Ok(stats.summary(Instant::now()))
}

fn make_report(opts: &BenchOpts, plan: &Plan, summary: &Summary) -> Report {
    let secs = summary.elapsed.as_secs_f64();
    let per_sec = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    let [p50, p90, p99, p999, max] = summary.latency_us.map(ms);
    Report {
        mode: plan.mode.name(),
        topic: opts.topic.clone(),
        messages: summary.messages,
        bytes: summary.bytes,
        message_size: opts.message_size,
        batch_size: opts.batch_size,
        linger_ms: opts.linger.as_millis() as u64,
        acks: acks_name(opts.acks),
        compression: opts.compression.name(),
        partitioner: partitioner_name(opts.partitioner),
        producers: opts.producers,
        consumers: opts.consumers,
        warmup_s: plan.warmup.as_secs_f64(),
        target_messages_per_sec: plan.rate_per_sec,
        target_mb_per_sec: plan
            .rate_per_sec
            .map(|r| r * opts.message_size as f64 / MIB),
        elapsed_s: secs,
        messages_per_sec: per_sec(summary.messages as f64),
        mb_per_sec: per_sec(summary.bytes as f64) / MIB,
        latency_ms_p50: p50,
        latency_ms_p90: p90,
        latency_ms_p99: p99,
        latency_ms_p999: p999,
        latency_ms_max: max,
    }
}

fn print_report(r: &Report) {
    let warmup = if r.warmup_s > 0.0 {
        format!(" (after a {:.1}s warm-up)", r.warmup_s)
    } else {
        String::new()
    };
    println!(
        "{}: {} messages ({:.1} MiB) in {:.2}s{warmup}",
        r.mode,
        r.messages,
        r.bytes as f64 / MIB,
        r.elapsed_s
    );
    if let (Some(msgs), Some(mibs)) = (r.target_messages_per_sec, r.target_mb_per_sec) {
        println!("target:     {msgs:.0} msgs/s, {mibs:.2} MiB/s");
    }
    println!(
        "throughput: {:.0} msgs/s, {:.2} MiB/s",
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

/// Writes `--csv` and `--png`, saying on stderr what was written (stdout
/// may be JSON) and warning when the window is too short for a series.
fn write_series(opts: &BenchOpts, plan: &Plan, summary: &Summary) -> Result<(), CliError> {
    if opts.csv.is_none() && opts.png.is_none() {
        return Ok(());
    }
    let samples = &summary.samples;
    let too_few = samples.len() < MIN_SERIES_SAMPLES;
    if too_few {
        eprintln!(
            "warning: the {:.2}s measured window holds {} full {}s sample(s), fewer than the \
             {MIN_SERIES_SAMPLES} a time series needs; measure longer (--duration)",
            summary.elapsed.as_secs_f64(),
            samples.len(),
            SAMPLE_PERIOD.as_secs()
        );
    }
    if let Some(path) = &opts.csv {
        write_csv(path, samples)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &opts.png {
        if too_few {
            eprintln!(
                "warning: chart {} not written: too few samples",
                path.display()
            );
        } else {
            match crate::chart::draw(path, plan.mode.name(), samples) {
                Ok(()) => eprintln!("wrote {}", path.display()),
                Err(e) => eprintln!("warning: chart {} not written: {e}", path.display()),
            }
        }
    }
    Ok(())
}

fn write_csv(path: &Path, samples: &[Sample]) -> Result<(), CliError> {
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
