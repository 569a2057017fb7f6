//! End-to-end CLI tests: each starts the real `sluice serve` on free ports
//! in a temp dir, waits for its Kafka port, and drives it with the CLI.

#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;

/// A broker must accept connections within this long (debug build, 2 cores).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

struct Broker {
    child: Child,
    dir: tempfile::TempDir,
    bootstrap: String,
    http: String,
    registry: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// A broker with extra `serve` arguments (e.g. `--set key=value`).
    fn start_with(extra: &[&str]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let registry = format!("127.0.0.1:{}", free_port());
        let child = Command::new(cargo_bin("sluice"))
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--kafka-listener", &bootstrap, "--http-listener", &http])
            .args(["--schema-registry-listener", &registry])
            .args(["--node-id", "1"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let broker = Broker {
            child,
            dir,
            bootstrap,
            http,
            registry,
        };
        broker.wait_ready();
        broker
    }

    /// Waits for the Kafka, HTTP and registry ports to accept a connection (not a fixed sleep:
    /// each attempt is a real connect, retried until the deadline).
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        // The Kafka socket is bound before the HTTP and registry listeners
        // start, so wait for each of them.
        for addr in [&self.bootstrap, &self.http, &self.registry] {
            while TcpStream::connect(addr).is_err() {
                assert!(Instant::now() < deadline, "broker did not start");
                std::thread::yield_now();
            }
        }
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// A `sluice` command pointed at this broker.
    fn cli(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("sluice").unwrap();
        cmd.env("SLUICE_BOOTSTRAP", &self.bootstrap)
            .env("SLUICE_HTTP", &self.http)
            .env("SLUICE_SCHEMA_REGISTRY", &self.registry)
            .env_remove("SLUICE_LOG")
            .timeout(Duration::from_secs(60));
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cli().args(args).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    }

    /// Produces `n` records `{prefix}0`, `{prefix}1`, ... to one partition,
    /// one per stdin line.
    fn produce_lines(&self, topic: &str, partition: i32, prefix: &str, n: usize) {
        let lines: String = (0..n).map(|i| format!("{prefix}{i}\n")).collect();
        self.cli()
            .args(["produce", topic, "--partition", &partition.to_string()])
            .write_stdin(lines)
            .assert()
            .success();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lag_of(describe: &str, topic: &str, partition: i32) -> (String, String) {
    for line in describe.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 5 && cols[0] == topic && cols[1] == partition.to_string() {
            return (cols[2].to_owned(), cols[4].to_owned());
        }
    }
    panic!("no row for {topic}-{partition} in:\n{describe}");
}

#[test]
fn create_produce_consume_round_trip() {
    let b = Broker::start();
    let out = b.run(&["topic", "create", "orders", "--partitions", "3"]);
    assert!(out.contains("created topic orders"), "{out}");
    let lines: String = (1..=500).map(|i| format!("{i}\n")).collect();
    b.cli()
        .args(["produce", "orders"])
        .write_stdin(lines)
        .assert()
        .success();
    let out = b.run(&["consume", "orders", "--from-beginning", "--count", "500"]);
    let mut got: Vec<i32> = out.lines().map(|l| l.parse().unwrap()).collect();
    got.sort();
    assert_eq!(got, (1..=500).collect::<Vec<_>>());

    // Keys, headers and an explicit partition survive the round trip.
    let out = b.run(&[
        "produce",
        "orders",
        "--value",
        "hello",
        "--key",
        "k1",
        "--header",
        "h=v",
        "--partition",
        "2",
        "--print-offset",
    ]);
    assert!(out.starts_with("partition=2 offset="), "{out}");
    let out = b.run(&[
        "consume",
        "orders",
        "--partition",
        "2",
        "--offset",
        "earliest",
        "--no-follow",
        "--format",
        "%p|%k|%v|%h\\n",
    ]);
    assert!(out.lines().any(|l| l == "2|k1|hello|h=v"), "{out}");

    // Describe shows offsets summing to what was written.
    let json = b.run(&["topic", "describe", "orders", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let total: i64 = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["log_end_offset"].as_i64().unwrap() - p["log_start_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 501);
    let list = b.run(&["topic", "list"]);
    assert!(list.lines().any(|l| l.starts_with("orders ")), "{list}");
}

#[test]
fn keyed_records_land_on_the_murmur2_partition_and_json_output_parses() {
    let b = Broker::start();
    b.run(&["topic", "create", "keyed", "--partitions", "4"]);
    // toPositive(murmur2("foobar")) % 4 with murmur2("foobar") = -790332482.
    let expected = ((-790332482i32) & 0x7fff_ffff) % 4;
    let out = b.run(&[
        "produce",
        "keyed",
        "--key",
        "foobar",
        "--value",
        "x",
        "--print-offset",
    ]);
    assert!(out.starts_with(&format!("partition={expected} ")), "{out}");
    let out = b.run(&[
        "consume",
        "keyed",
        "--from-beginning",
        "--count",
        "1",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["key"], "foobar");
    assert_eq!(v["partition"], expected);
}

#[test]
fn group_describe_shows_lag_and_reset_offsets_moves_the_group() {
    let b = Broker::start();
    b.run(&["topic", "create", "billing-in", "--partitions", "1"]);
    let lines: String = (1..=50).map(|i| format!("m{i}\n")).collect();
    b.cli()
        .args(["produce", "billing-in"])
        .write_stdin(lines)
        .assert()
        .success();
    let out = b.run(&[
        "consume",
        "billing-in",
        "--group",
        "billing",
        "--from-beginning",
        "--count",
        "20",
    ]);
    assert_eq!(out.lines().count(), 20);

    let describe = b.run(&["group", "describe", "billing"]);
    assert_eq!(
        lag_of(&describe, "billing-in", 0),
        ("20".to_owned(), "30".to_owned())
    );
    assert!(b.run(&["group", "list"]).contains("billing"));

    // The group resumes where it committed.
    let out = b.run(&[
        "consume",
        "billing-in",
        "--group",
        "billing",
        "--count",
        "5",
    ]);
    assert_eq!(out.lines().next(), Some("m21"));

    let dry = b.run(&[
        "group",
        "reset-offsets",
        "billing",
        "--topic",
        "billing-in",
        "--to-earliest",
        "--dry-run",
    ]);
    assert!(dry.contains("dry run"), "{dry}");
    let describe = b.run(&["group", "describe", "billing"]);
    assert_eq!(lag_of(&describe, "billing-in", 0).0, "25");

    b.run(&[
        "group",
        "reset-offsets",
        "billing",
        "--topic",
        "billing-in",
        "--to-earliest",
    ]);
    let describe = b.run(&["group", "describe", "billing"]);
    assert_eq!(
        lag_of(&describe, "billing-in", 0),
        ("0".to_owned(), "50".to_owned())
    );

    b.run(&[
        "group",
        "reset-offsets",
        "billing",
        "--topic",
        "billing-in",
        "--to-offset",
        "40",
    ]);
    b.run(&[
        "group",
        "reset-offsets",
        "billing",
        "--topic",
        "billing-in",
        "--shift-by",
        "-15",
    ]);
    let describe = b.run(&["group", "describe", "billing"]);
    assert_eq!(
        lag_of(&describe, "billing-in", 0),
        ("25".to_owned(), "25".to_owned())
    );

    b.run(&[
        "group",
        "reset-offsets",
        "billing",
        "--topic",
        "billing-in",
        "--to-latest",
    ]);
    let describe = b.run(&["group", "describe", "billing"]);
    assert_eq!(
        lag_of(&describe, "billing-in", 0),
        ("50".to_owned(), "0".to_owned())
    );

    b.run(&["group", "delete", "billing"]);
    assert!(!b.run(&["group", "list"]).contains("billing"));
}

#[test]
fn bench_batches_of_large_records_stay_under_the_brokers_message_limit() {
    // 1,000 records (the default --batch-size) of 10 KiB would be a 10 MB
    // batch, which the broker refuses (max.message.bytes is 1 MiB): the
    // producer seals batches at 1 MB, as librdkafka's batch.size does.
    let b = Broker::start();
    let out = b.run(&[
        "bench",
        "produce",
        "--topic",
        "large",
        "--partitions",
        "1",
        "--messages",
        "500",
        "--message-size",
        "10240",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["messages"].as_u64(), Some(500), "{out}");
}

#[test]
fn bench_e2e_over_many_partitions_delivers_every_record() {
    // 300 partitions and batches of at most 3 records: batches are sealed
    // both when full and when their linger expires, interleaved across
    // partitions (the producer keeps linger deadlines in opening order).
    // Every record must arrive, and each partition's offsets must cover
    // exactly what was sent to it.
    let b = Broker::start();
    let out = b.run(&[
        "bench",
        "e2e",
        "--topic",
        "wide",
        "--partitions",
        "300",
        "--messages",
        "3000",
        "--message-size",
        "64",
        "--batch-size",
        "3",
        "--linger",
        "2ms",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["messages"], 3000, "{out}");
    let describe = b.run(&["topic", "describe", "wide"]);
    let ends: u64 = describe
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // PARTITION LEADER REPLICAS ISR LOG-START LOG-END SIZE
            cols.first()?.parse::<u32>().ok()?;
            cols.get(5)?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(ends, 3000, "{describe}");
}

#[test]
fn bench_runs_and_reports_sane_numbers() {
    let b = Broker::start();
    let csv = b.dir.path().join("bench.csv");
    let out = b.run(&[
        "bench",
        "produce",
        "--topic",
        "load",
        "--duration",
        "2s",
        "--message-size",
        "256",
        "--batch-size",
        "100",
        "--json",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = |k: &str| {
        v[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {out}"))
    };
    assert!(f("messages_per_sec") > 0.0, "{out}");
    assert!(f("mb_per_sec") > 0.0, "{out}");
    assert!(f("latency_ms_p50") <= f("latency_ms_p99"), "{out}");
    assert!(f("latency_ms_p99") <= f("latency_ms_max"), "{out}");
    let csv = std::fs::read_to_string(csv).unwrap();
    assert!(csv.starts_with("elapsed_s,messages_per_sec"), "{csv}");
    assert!(csv.lines().count() >= 2, "{csv}");

    let out = b.run(&[
        "bench",
        "e2e",
        "--topic",
        "load2",
        "--messages",
        "2000",
        "--message-size",
        "128",
        "--batch-size",
        "100",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["messages"], 2000, "{out}");
    assert!(v["latency_ms_p50"].as_f64().unwrap() <= v["latency_ms_max"].as_f64().unwrap());
}

/// Runs `sluice bench ARGS --json`: the parsed report and stderr.
fn bench_json(b: &Broker, args: &[&str]) -> (serde_json::Value, String) {
    let out = b
        .cli()
        .arg("bench")
        .args(args)
        .arg("--json")
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (v, stderr)
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The data rows of a bench CSV as (elapsed_s, messages_per_sec).
fn csv_rows(path: &std::path::Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("elapsed_s,messages_per_sec"),
        "{text}"
    );
    lines
        .map(|l| {
            let cols: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            (cols[0], cols[1])
        })
        .collect()
}

#[test]
fn bench_rate_holds_the_target_load_and_reports_percentiles() {
    let b = Broker::start();
    let csv = b.dir.path().join("paced.csv");
    let png = b.dir.path().join("paced.png");
    let (v, stderr) = bench_json(
        &b,
        &[
            "produce",
            "--topic",
            "paced",
            "--rate",
            "2000",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--message-size",
            "100",
            "--csv",
            csv.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ],
    );
    assert_eq!(v["target_messages_per_sec"], 2000.0, "{v}");
    assert_eq!(v["warmup_s"], 0.5, "{v}");
    let rate = num(&v, "messages_per_sec");
    assert!((1500.0..=2500.0).contains(&rate), "{v}");
    let elapsed = num(&v, "elapsed_s");
    assert!((2.0..3.0).contains(&elapsed), "{v}");
    let percentiles = [
        "latency_ms_p50",
        "latency_ms_p99",
        "latency_ms_p999",
        "latency_ms_max",
    ]
    .map(|k| num(&v, k));
    assert!(percentiles.is_sorted(), "{v}");

    // One row per full second of the window: no partial-second dip at the end.
    let rows = csv_rows(&csv);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1.0, 2.0],
        "{rows:?}"
    );
    // The series accounts for the headline: its full seconds average to
    // the measured rate (a stall on this shared machine may move records
    // from one second to the next, so single rows are not held to the
    // target; the whole run is, above).
    let mean = rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
    assert!(
        (mean - rate).abs() <= rate * 0.1,
        "rows {rows:?} against {rate}/s"
    );
    assert!(
        stderr.contains(&format!("wrote {}", csv.display())),
        "{stderr}"
    );
    // The chart needs a system font; without one it is a warning.
    let png_line = format!("wrote {}", png.display());
    assert!(
        (stderr.contains(&png_line) && png.exists())
            || stderr.contains("not written: no TrueType font"),
        "{stderr}"
    );
}

#[test]
fn bench_e2e_paces_by_bytes_and_honours_acks_all() {
    let b = Broker::start();
    // 100 kB/s of 100-byte values is 1000 records/s.
    let (v, _) = bench_json(
        &b,
        &[
            "e2e",
            "--topic",
            "e2e-paced",
            "--rate",
            "100kB",
            "--message-size",
            "100",
            "--messages",
            "1000",
            "--acks",
            "all",
        ],
    );
    assert_eq!(v["acks"], "all", "{v}");
    assert_eq!(v["messages"], 1000, "{v}");
    assert_eq!(v["target_messages_per_sec"], 1000.0, "{v}");
    // The last of 1000 records at 1000/s is due 0.999 s after the first.
    assert!(num(&v, "elapsed_s") >= 0.9, "not paced: {v}");

    // acks=all really reaches the broker: a topic that wants two in-sync
    // replicas of its one refuses it, while acks=1 goes through.
    b.run(&[
        "topic",
        "create",
        "strict",
        "--partitions",
        "1",
        "--config",
        "min.insync.replicas=2",
    ]);
    let (v, _) = bench_json(
        &b,
        &[
            "e2e", "--topic", "strict", "-n", "100", "-s", "64", "--acks", "1",
        ],
    );
    assert_eq!(v["messages"], 100, "{v}");
    assert_one_line_error(
        b.cli().args([
            "bench", "e2e", "--topic", "strict", "-n", "100", "-s", "64", "--acks", "all", "--json",
        ]),
        "NOT_ENOUGH_REPLICAS",
    );
}

#[test]
fn bench_warmup_is_left_out_of_the_counts() {
    let b = Broker::start();
    // 3000 records at 2000/s: about the first 1000 fall in the warm-up.
    let (v, _) = bench_json(
        &b,
        &[
            "produce",
            "--topic",
            "warm",
            "--rate",
            "2000",
            "--messages",
            "3000",
            "--warmup",
            "500ms",
            "--message-size",
            "100",
        ],
    );
    assert_eq!(v["warmup_s"], 0.5, "{v}");
    let measured = v["messages"].as_u64().unwrap();
    assert!((1500..=2500).contains(&measured), "{v}");

    // A warm-up longer than the run leaves nothing measured, and says so.
    let (v, stderr) = bench_json(
        &b,
        &[
            "produce",
            "--topic",
            "warm",
            "--messages",
            "200",
            "--warmup",
            "30s",
            "--message-size",
            "100",
        ],
    );
    assert_eq!(v["messages"], 0, "{v}");
    assert!(stderr.contains("warning: nothing was measured"), "{stderr}");
}

#[test]
fn bench_duration_stops_at_the_deadline_and_reports_the_window() {
    let b = Broker::start();
    let started = Instant::now();
    let (v, _) = bench_json(
        &b,
        &[
            "e2e",
            "--topic",
            "timed",
            "--duration",
            "2s",
            "--message-size",
            "256",
            "--batch-size",
            "100",
        ],
    );
    let wall = started.elapsed();
    // 1 s of default warm-up, 2 s measured, then only setup and close.
    assert!(wall < Duration::from_secs(6), "took {wall:?}: {v}");
    assert_eq!(v["warmup_s"], 1.0, "{v}");
    let elapsed = num(&v, "elapsed_s");
    assert!((2.0..3.0).contains(&elapsed), "{v}");
    assert!(num(&v, "messages") > 0.0, "{v}");
}

#[test]
fn bench_warns_instead_of_writing_an_empty_chart() {
    let b = Broker::start();
    let csv = b.dir.path().join("short.csv");
    let png = b.dir.path().join("short.png");
    let (v, stderr) = bench_json(
        &b,
        &[
            "consume",
            "--topic",
            "short",
            "--messages",
            "500",
            "--message-size",
            "64",
            "--csv",
            csv.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ],
    );
    assert_eq!(v["mode"], "consume", "{v}");
    assert!(
        stderr.contains("warning:") && stderr.contains("fewer than the 2"),
        "{stderr}"
    );
    assert!(!png.exists(), "an empty chart was written");
    assert!(
        stderr.contains(&format!("wrote {}", csv.display())),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("wrote {}", png.display())),
        "{stderr}"
    );
}

#[test]
fn status_reports_the_broker_and_stop_shuts_it_down() {
    let mut b = Broker::start();
    b.run(&["topic", "create", "s1", "--partitions", "2"]);
    let data_dir = b.data_dir();
    let out = b.run(&["status", "--data-dir", data_dir.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["node_id"], 1, "{out}");
    assert_eq!(v["partitions"], 2, "{out}");
    assert_eq!(v["pid"], b.child.id(), "{out}");
    assert!(v["disk_bytes"].as_u64().unwrap() > 0, "{out}");

    let out = b.run(&["stop", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(out.contains("stopped"), "{out}");
    let status = b.child.wait().unwrap();
    assert!(
        status.success(),
        "broker exit status after SIGTERM: {status}"
    );
    // A second stop finds nothing to stop and says so.
    assert_one_line_error(
        b.cli()
            .args(["stop", "--data-dir", data_dir.to_str().unwrap()]),
        "no broker is running",
    );
}

/// Runs the CLI and checks for exactly one `error:` line, no panic text.
fn assert_one_line_error(cmd: &mut assert_cmd::Command, needle: &str) {
    let out = cmd.assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(needle), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn errors_are_one_clear_line_without_panics() {
    // Unreachable broker: nothing listens on a freshly freed port.
    let dead = format!("127.0.0.1:{}", free_port());
    for args in [
        vec!["topic", "list"],
        vec!["produce", "t", "--value", "x"],
        vec!["consume", "t", "--count", "1"],
        vec!["group", "list"],
        vec!["status"],
    ] {
        let mut cmd = assert_cmd::Command::cargo_bin("sluice").unwrap();
        cmd.env("SLUICE_BOOTSTRAP", &dead).args(&args);
        assert_one_line_error(&mut cmd, "cannot reach any broker");
    }
    // Each piece of context once: the address is not repeated.
    let out = assert_cmd::Command::cargo_bin("sluice")
        .unwrap()
        .env("SLUICE_BOOTSTRAP", &dead)
        .args(["topic", "list"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.matches(dead.as_str()).count(), 1, "{stderr}");

    // Without auto-creation a missing topic is an error that says how to
    // create it (with it, `produce` creates the topic: see
    // `produce_asks_the_broker_to_auto_create_a_missing_topic`).
    let b = Broker::start_with(&["--set", "topics.auto_create=false"]);
    assert_one_line_error(
        b.cli().args(["produce", "nope", "--value", "x"]),
        "topic 'nope' does not exist; create it with: sluice topic create nope",
    );
    assert_one_line_error(
        b.cli().args(["consume", "nope", "--count", "1"]),
        "topic 'nope' does not exist; create it with: sluice topic create nope",
    );
    // -b pointed at the HTTP port: a hint, not "bad length 1213486160".
    for args in [vec!["topic", "list"], vec!["produce", "t", "--value", "x"]] {
        assert_one_line_error(
            b.cli().args(&args).args(["-b", &b.http]),
            &format!(
                "{} answered with HTTP; -b needs the Kafka listener (default 127.0.0.1:9092)",
                b.http
            ),
        );
    }
    assert_one_line_error(
        b.cli().args(["topic", "describe", "nope"]),
        "does not exist",
    );
    b.run(&["topic", "create", "dup"]);
    assert_one_line_error(
        b.cli().args(["topic", "create", "dup"]),
        "TOPIC_ALREADY_EXISTS",
    );
    assert_one_line_error(
        b.cli()
            .args(["consume", "dup", "--partition", "7", "--count", "1"]),
        "partition 7",
    );

    // Bad arguments are clap usage errors (exit 2), not panics.
    let out = b
        .cli()
        .args(["produce", "dup", "--acks", "7"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("acks") && !stderr.contains("panicked"),
        "{stderr}"
    );
    b.cli()
        .args(["bench", "produce", "--duration", "soon"])
        .assert()
        .code(2);
    for bad in ["fast", "10Mb", "0", "1e6", "20k"] {
        let out = b
            .cli()
            .args(["bench", "produce", "--rate", bad])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("not a rate") && !stderr.contains("panicked"),
            "{bad}: {stderr}"
        );
    }
    assert_one_line_error(
        b.cli().args(["bench", "consume", "--rate", "100"]),
        "--rate paces producers",
    );
    assert_one_line_error(
        b.cli().args(["bench", "produce", "--rate", "10B"]),
        "records/s of 1024-byte values",
    );
}

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["status"],
        &["stop"],
        &["topic"],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "describe"],
        &["topic", "alter-config"],
        &["topic", "add-partitions"],
        &["topic", "delete"],
        &["produce"],
        &["consume"],
        &["group"],
        &["group", "list"],
        &["group", "describe"],
        &["group", "reset-offsets"],
        &["group", "delete"],
        &["bench"],
        &["bench", "produce"],
        &["bench", "consume"],
        &["bench", "e2e"],
        &["schema"],
        &["schema", "register"],
        &["schema", "get"],
        &["schema", "list"],
        &["schema", "delete"],
        &["schema", "check"],
        &["schema", "config"],
    ];
    for c in commands {
        let mut cmd = assert_cmd::Command::cargo_bin("sluice").unwrap();
        let out = cmd.args(*c).arg("--help").assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(text.contains("Usage:"), "{c:?}: {text}");
    }
}

#[test]
fn topic_alter_config_and_add_partitions() {
    let b = Broker::start();
    b.run(&[
        "topic",
        "create",
        "cfg",
        "--partitions",
        "1",
        "--config",
        "retention.ms=123456",
    ]);
    let json = b.run(&["topic", "describe", "cfg", "--json"]);
    assert!(json.contains("\"retention.ms\":\"123456\""), "{json}");
    b.run(&[
        "topic",
        "alter-config",
        "cfg",
        "--set",
        "retention.ms=654321",
    ]);
    let json = b.run(&["topic", "describe", "cfg", "--json"]);
    assert!(json.contains("\"retention.ms\":\"654321\""), "{json}");
    b.run(&["topic", "add-partitions", "cfg", "--partitions", "3"]);
    let json = b.run(&["topic", "describe", "cfg", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["partitions"].as_array().unwrap().len(), 3);
    b.run(&["topic", "delete", "cfg"]);
    assert!(!b.run(&["topic", "list"]).contains("cfg"));
}

#[test]
fn schema_commands_register_check_configure_and_delete() {
    let b = Broker::start();
    let user = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}"#;
    let out = b.run(&["schema", "register", "users-value", "--schema", user]);
    assert!(out.contains("registered under users-value: id 1"), "{out}");
    let out = b.run(&["schema", "get", "users-value"]);
    assert!(
        out.contains("version 1 id 1 type AVRO") && out.contains("\"User\""),
        "{out}"
    );
    let out = b.run(&["schema", "get", "--id", "1", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["schema"].as_str(), Some(user));
    // The same answer as YAML: the schema text is one quoted scalar.
    let yaml = b.run(&["schema", "get", "--id", "1", "--format", "yaml"]);
    let quoted = serde_json::Value::String(user.to_owned()).to_string();
    assert!(
        yaml.lines().any(|l| l == format!("schema: {quoted}")),
        "{yaml}"
    );

    // A field without a default breaks BACKWARD: check says so and exits 1.
    let bad = r#"{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}"#;
    let out = b
        .cli()
        .args(["schema", "check", "users-value", "--schema", bad])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("incompatible with users-value") && err.contains("age"),
        "{err}"
    );
    let out = b.run(&["schema", "config", "users-value", "--set", "none"]);
    assert!(out.contains("users-value: NONE"), "{out}");
    let out = b.run(&["schema", "check", "users-value", "--schema", bad]);
    assert!(out.contains("compatible with users-value"), "{out}");
    let out = b.run(&["schema", "config"]);
    assert!(out.contains("global: BACKWARD"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("reading.proto");
    std::fs::write(
        &proto,
        "syntax = \"proto3\";\nmessage Reading { double v = 1; }\n",
    )
    .unwrap();
    let out = b.run(&[
        "schema",
        "register",
        "readings-value",
        "--file",
        proto.to_str().unwrap(),
    ]);
    assert!(out.contains("id 2"), "{out}");
    let out = b.run(&["schema", "list"]);
    assert!(
        out.contains("readings-value") && out.contains("users-value"),
        "{out}"
    );

    let out = b.run(&["schema", "delete", "readings-value"]);
    assert!(out.contains("deleted (soft) readings-value: [1]"), "{out}");
    let out = b.run(&["schema", "list"]);
    assert!(!out.contains("readings-value"), "{out}");
    let out = b.run(&["schema", "list", "--deleted"]);
    assert!(out.contains("readings-value"), "{out}");

    // Registry errors come back with Confluent's code and message.
    let out = b
        .cli()
        .args(["schema", "get", "nope-value"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("40401") && err.contains("nope-value"), "{err}");
}

#[test]
fn produce_asks_the_broker_to_auto_create_a_missing_topic() {
    let b = Broker::start();
    b.cli()
        .args(["produce", "newtopic"])
        .write_stdin("hi\n")
        .assert()
        .success();
    let out = b.run(&["consume", "newtopic", "--from-beginning", "--count", "1"]);
    assert_eq!(out, "hi\n");
    // Created with the broker's defaults (topics.num_partitions = 1).
    let describe = b.run(&["topic", "describe", "newtopic", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&describe).unwrap();
    assert_eq!(v["partitions"].as_array().unwrap().len(), 1, "{describe}");
    // Consuming never creates a topic.
    assert_one_line_error(
        b.cli().args(["consume", "other", "--count", "1"]),
        "create it with: sluice topic create other",
    );
}

#[test]
fn status_and_topic_describe_ask_the_http_api_of_the_broker_given_with_b() {
    let a = Broker::start();
    let other = Broker::start();
    a.run(&["topic", "create", "mine", "--partitions", "2"]);
    a.run(&["produce", "mine", "--value", "x", "--partition", "0"]);
    // Without --http-server the broker says where its HTTP API is.
    let out = a
        .cli()
        .env_remove("SLUICE_HTTP")
        .args(["status", "--json"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["http_listener"], a.http.as_str(), "{stdout}");
    assert!(v["uptime_ms"].as_u64().is_some(), "{stdout}");
    let out = a
        .cli()
        .env_remove("SLUICE_HTTP")
        .args(["topic", "describe", "mine", "--json"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        v["partitions"][0]["size_bytes"].as_u64().unwrap() > 0,
        "{stdout}"
    );
    // Another cluster's HTTP API is refused, not mixed in.
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["topic", "describe", "mine"],
    ] {
        assert_one_line_error(
            a.cli().args(&args).args(["--http-server", &other.http]),
            &format!("--http-server {} is the HTTP API of cluster", other.http),
        );
    }
}

#[test]
fn sigterm_on_a_group_consumer_commits_leaves_the_group_and_exits_0() {
    use std::io::BufRead;
    let b = Broker::start();
    b.run(&["topic", "create", "events", "--partitions", "1"]);
    b.run(&["produce", "events", "--value", "e1", "--value", "e2"]);
    let mut child = Command::new(cargo_bin("sluice"))
        .args(["consume", "events", "-g", "readers", "--from-beginning"])
        .env("SLUICE_BOOTSTRAP", &b.bootstrap)
        .env_remove("SLUICE_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Both records printed: the consumer joined, read and committed.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "e1");
    assert_eq!(lines.next().unwrap().unwrap(), "e2");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
    // It left the group: the group is Empty now, not after the session
    // timeout, so offsets can be reset at once.
    let describe = b.run(&["group", "describe", "readers"]);
    assert!(describe.contains("State:         Empty"), "{describe}");
    // Both types, each named: the group's (KIP-848) and the protocol's.
    assert!(describe.contains("Group type:    classic"), "{describe}");
    assert!(describe.contains("Protocol type: consumer"), "{describe}");
    assert_eq!(lag_of(&describe, "events", 0).0, "2");
    let out = b.run(&[
        "group",
        "reset-offsets",
        "readers",
        "--topic",
        "events",
        "--to-earliest",
    ]);
    assert!(out.contains("reset 1 partition(s)"), "{out}");
}

#[test]
fn group_describe_counts_uncommitted_partitions_from_the_log_start_and_names_both_types() {
    let b = Broker::start();
    b.run(&["topic", "create", "split", "--partitions", "2"]);
    b.produce_lines("split", 0, "a", 10);
    b.produce_lines("split", 1, "b", 5);
    // Commits for partition 0 only.
    let out = b.run(&[
        "consume",
        "split",
        "-g",
        "half",
        "-p",
        "0",
        "--from-beginning",
        "--count",
        "4",
    ]);
    assert_eq!(out.lines().count(), 4);
    let describe = b.run(&["group", "describe", "half"]);
    assert_eq!(
        lag_of(&describe, "split", 0),
        ("4".to_owned(), "6".to_owned())
    );
    assert_eq!(
        lag_of(&describe, "split", 1),
        ("-".to_owned(), "5".to_owned()),
        "{describe}"
    );
    assert!(describe.contains("Total lag:     11"), "{describe}");
    assert!(
        describe.contains("LAG counts from the log start offset"),
        "{describe}"
    );
    // Offsets committed without joining: a classic group with no
    // protocol type.
    assert!(describe.contains("Group type:    classic"), "{describe}");
    assert!(describe.contains("Protocol type: -"), "{describe}");
    let json = b.run(&["group", "describe", "half", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total_lag"], 11, "{json}");
    assert_eq!(v["partitions"][1]["lag_from"], "log_start_offset", "{json}");
    assert_eq!(v["group_type"], "classic", "{json}");
    let list = b.run(&["group", "list"]);
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("half"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["half", "classic", "-", "Empty"], "{list}");
}

#[test]
fn a_record_over_the_size_limit_is_reported_with_each_context_once() {
    let b = Broker::start_with(&["--set", "log.message_max_bytes=1000"]);
    b.run(&["topic", "create", "users", "--partitions", "1"]);
    let big = "x".repeat(5000);
    let out = b
        .cli()
        .args(["produce", "users", "--value", &big])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: produce to users-0: MESSAGE_TOO_LARGE (10)"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("produce to users-0").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("MESSAGE_TOO_LARGE").count(), 1, "{stderr}");
}

/// Runs `sluice serve` in a fresh data dir with `args` and `env`, expects
/// it to fail, and returns its stderr.
fn serve_failure(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("sluice").unwrap();
    cmd.args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--http-listener",
            &format!("127.0.0.1:{}", free_port()),
            "--schema-registry-listener",
            "",
        ])
        .args(args)
        .env_remove("SLUICE_LOG")
        .timeout(Duration::from_secs(60));
    if !args.contains(&"--kafka-listener") {
        cmd.args(["--kafka-listener", &format!("127.0.0.1:{}", free_port())]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.assert().failure();
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

#[test]
fn serve_explains_bad_config_once_and_refuses_unknown_sluice_variables() {
    let stderr = serve_failure(&["--set", "log.retention_ms=abc"], &[]);
    assert_eq!(
        stderr.trim_end(),
        "error: invalid value for `log.retention_ms`: \"abc\" is not an integer"
    );
    let stderr = serve_failure(&[], &[("SLUICE_LOG_RETENTION_MSS", "1000")]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("SLUICE_LOG_RETENTION_MSS")
            && stderr.contains("did you mean `log.retention_ms` (SLUICE_LOG_RETENTION_MS)"),
        "{stderr}"
    );
    // A failure after start-up (the Kafka port is taken) prints once.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = serve_failure(&["--kafka-listener", &addr], &[]);
    assert!(stderr.contains(&addr), "{stderr}");
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
}

/// Runs the CLI and checks that argument parsing refused it with `needle`.
fn assert_usage_error(cmd: &mut assert_cmd::Command, needle: &str) {
    let out = cmd.assert().failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `(partition, offset)` pairs from `-F '%p %o\n'` output, sorted.
fn partition_offsets(out: &str) -> Vec<(i32, i64)> {
    let mut got: Vec<(i32, i64)> = out
        .lines()
        .map(|l| {
            let (p, o) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    got.sort();
    got
}

#[test]
fn consume_offsets_take_kcat_and_rpk_forms() {
    let b = Broker::start();
    b.run(&["topic", "create", "forms", "--partitions", "2"]);
    b.produce_lines("forms", 0, "a", 10);
    b.produce_lines("forms", 1, "b", 5);
    let consume = |args: &[&str]| {
        let mut all = vec!["consume", "forms", "-F", "%p %o\\n"];
        all.extend_from_slice(args);
        partition_offsets(&b.run(&all))
    };
    let range = |p: i32, r: std::ops::Range<i64>| r.map(move |o| (p, o));

    // -e without an offset starts at the beginning, as kcat and rpk do.
    let all: Vec<_> = range(0, 0..10).chain(range(1, 0..5)).collect();
    assert_eq!(consume(&["-e"]), all);
    assert_eq!(consume(&["-o", "beginning", "-e"]), all);
    // -N: the last N of each partition.
    let last3: Vec<_> = range(0, 7..10).chain(range(1, 2..5)).collect();
    assert_eq!(consume(&["-o", "-3", "-e"]), last3);
    // +N: N after the log start, capped at the end.
    assert_eq!(
        consume(&["-o", "+8", "-e"]),
        range(0, 8..10).collect::<Vec<_>>()
    );
    // A range ends before B and exits by itself, capped at the end.
    assert_eq!(
        consume(&["-o", "2:5", "-p", "0"]),
        range(0, 2..5).collect::<Vec<_>>()
    );
    assert_eq!(
        consume(&["-o", "3:100", "-p", "1"]),
        range(1, 3..5).collect::<Vec<_>>()
    );
    assert_eq!(
        consume(&["-o", ":2"]),
        range(0, 0..2).chain(range(1, 0..2)).collect::<Vec<_>>()
    );
    assert_eq!(consume(&["-o", "4:end", "-p", "1"]), vec![(1, 4)]);
    // An exact offset with -e.
    assert_eq!(consume(&["-o", "9", "-p", "0", "-e"]), vec![(0, 9)]);
    // `end` with -e prints nothing and says why on stderr.
    let out = b
        .cli()
        .args(["consume", "forms", "-o", "end", "-e"])
        .assert()
        .success();
    assert!(out.get_output().stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("nothing printed"), "{stderr}");
    // `stored` reads the group's committed offsets.
    b.run(&["consume", "forms", "-g", "g1", "-o", "2:4", "-p", "0"]);
    assert_eq!(
        consume(&["-g", "g1", "-o", "stored", "-p", "0", "-e"]),
        range(0, 4..10).collect::<Vec<_>>()
    );
    assert_one_line_error(
        b.cli().args(["consume", "forms", "-o", "stored"]),
        "needs a group",
    );
    assert_usage_error(
        b.cli().args(["consume", "forms", "-o", "5:2"]),
        "must be after",
    );

    // Timestamps: @T1:@T2 is [T1, T2) by record time, via ListOffsets.
    b.run(&["topic", "create", "times", "--partitions", "1"]);
    for i in 0..5 {
        b.run(&["produce", "times", "--value", &format!("t{i}")]);
    }
    let times: Vec<(i64, i64)> = b
        .run(&["consume", "times", "-e", "-F", "%o %T\\n"])
        .lines()
        .map(|l| {
            let (o, t) = l.split_once(' ').unwrap();
            (o.parse().unwrap(), t.parse().unwrap())
        })
        .collect();
    assert_eq!(times.len(), 5);
    let (t1, t2) = (times[1].1, times[3].1);
    assert!(
        t2 > t1,
        "separate produce runs get later timestamps: {times:?}"
    );
    let expected: Vec<i64> = times
        .iter()
        .filter(|(_, t)| *t >= t1 && *t < t2)
        .map(|(o, _)| *o)
        .collect();
    let offsets = |spec: &str, follow: bool| -> Vec<i64> {
        let mut args = vec!["consume", "times", "-F", "%o\\n", "-o", spec];
        if !follow {
            args.push("-e");
        }
        b.run(&args).lines().map(|l| l.parse().unwrap()).collect()
    };
    assert_eq!(offsets(&format!("@{t1}:@{t2}"), true), expected);
    let from_t2: Vec<i64> = times
        .iter()
        .filter(|(_, t)| *t >= t2)
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(offsets(&format!("@{t2}"), false), from_t2);
    assert_eq!(offsets(&format!("@{t2}:end"), true), from_t2);
}

#[test]
fn consume_reads_several_topics_and_regex_matches() {
    let b = Broker::start();
    for t in ["orders-eu", "orders-us", "audit"] {
        b.run(&["topic", "create", t, "--partitions", "1"]);
        b.run(&["produce", t, "--value", &format!("v-{t}")]);
    }
    let lines = |args: &[&str]| {
        let mut all = vec!["consume", "-e", "-F", "%t %v\\n"];
        all.extend_from_slice(args);
        let mut got: Vec<String> = b.run(&all).lines().map(str::to_owned).collect();
        got.sort();
        got
    };
    assert_eq!(
        lines(&["orders-eu", "audit"]),
        ["audit v-audit", "orders-eu v-orders-eu"]
    );
    let orders = ["orders-eu v-orders-eu", "orders-us v-orders-us"];
    assert_eq!(lines(&["-r", "^orders-"]), orders);
    assert_eq!(lines(&["--regex", "eu$", "rs-us$"]), orders);
    // With a group the matched topics are subscribed together.
    assert_eq!(lines(&["-r", "^orders-", "-g", "rx"]), orders);
    let describe = b.run(&["group", "describe", "rx"]);
    assert_eq!(lag_of(&describe, "orders-us", 0).0, "1", "{describe}");
    assert_one_line_error(
        b.cli().args(["consume", "-r", "^nothing-", "-e"]),
        "no topic matches",
    );
    assert_one_line_error(
        b.cli().args(["consume", "-r", "(", "-e"]),
        "regular expression",
    );
}

/// A following `--regex` consume reads topics created after it started:
/// without a group from their beginning, with a group after the member
/// rejoins over the new subscription.
#[test]
fn a_following_regex_consume_picks_up_topics_created_later() {
    use std::io::BufRead;
    use std::sync::mpsc;
    let b = Broker::start();
    for (prefix, extra) in [
        ("solo", &["--from-beginning"][..]),
        ("grp", &["-g", "live-readers", "--from-beginning"][..]),
    ] {
        let first = format!("{prefix}-a");
        b.run(&["topic", "create", &first, "--partitions", "1"]);
        b.run(&["produce", &first, "--value", "a1"]);
        let pattern = format!("^{prefix}-");
        let mut args = vec!["consume", "-r", &pattern, "-F", "%t %v\\n"];
        args.extend_from_slice(extra);
        let mut child = Command::new(cargo_bin("sluice"))
            .args(&args)
            .env("SLUICE_BOOTSTRAP", &b.bootstrap)
            .env_remove("SLUICE_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let next = || rx.recv_timeout(Duration::from_secs(30)).ok();
        assert_eq!(next(), Some(format!("{first} a1")), "{args:?}");
        // A topic created after the start, and records written at once:
        // nothing is missed while the consume finds the topic.
        let topic = format!("{prefix}-b");
        b.run(&["topic", "create", &topic, "--partitions", "2"]);
        b.run(&["produce", &topic, "--partition", "0", "--value", "n0"]);
        b.run(&["produce", &topic, "--partition", "1", "--value", "n1"]);
        let mut got = vec![next(), next()];
        got.sort();
        assert_eq!(
            got,
            [Some(format!("{topic} n0")), Some(format!("{topic} n1"))],
            "{args:?}"
        );
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}

#[test]
fn produce_parses_keys_headers_and_tombstones_from_lines() {
    let b = Broker::start();
    b.run(&["topic", "create", "kv", "--partitions", "1"]);
    // kcat's -K and -Z: key before the first ':', empty means null.
    b.cli()
        .args(["produce", "kv", "-K", ":", "-Z"])
        .write_stdin("a:1\nb:\n:3\nplain\n")
        .assert()
        .success();
    let json: Vec<serde_json::Value> = b
        .run(&["consume", "kv", "-e", "-F", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json.len(), 4);
    assert_eq!(
        (json[0]["key"].as_str(), json[0]["value"].as_str()),
        (Some("a"), Some("1"))
    );
    assert_eq!(json[1]["key"].as_str(), Some("b"));
    assert!(json[1]["value"].is_null(), "tombstone: {}", json[1]);
    assert!(json[2]["key"].is_null(), "empty key is null: {}", json[2]);
    assert_eq!(json[2]["value"].as_str(), Some("3"));
    assert!(json[3]["key"].is_null());
    assert_eq!(json[3]["value"].as_str(), Some("plain"));
    // Without -Z an empty value stays an empty value.
    b.run(&["produce", "kv", "--value", ""]);
    let last = b.run(&["consume", "kv", "-o", "-1", "-e", "-F", "json"]);
    let last: serde_json::Value = serde_json::from_str(last.trim()).unwrap();
    assert_eq!(last["value"].as_str(), Some(""), "{last}");

    // rpk-style --format with headers, plus -H for every record.
    b.run(&["topic", "create", "fmt", "--partitions", "2"]);
    b.cli()
        .args([
            "produce",
            "fmt",
            "-H",
            "src=cli",
            "--format",
            "%p %H %h{%k=%v;}%k %v\\n",
        ])
        .write_stdin("1 2 trace=abc;n=1;user-1 hello world\n0 0 user-2 bye\n")
        .assert()
        .success();
    let out = b.run(&["consume", "fmt", "-e", "-F", "%p|%k|%v|%h\\n"]);
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    assert_eq!(
        got,
        [
            "0|user-2|bye|src=cli",
            "1|user-1|hello world|src=cli,trace=abc,n=1"
        ]
    );
    let mut bad = b.cli();
    bad.args(["produce", "fmt", "--format", "%k %v\\n"])
        .write_stdin("ok line\nnodelimiter\n");
    assert_one_line_error(&mut bad, "input line 2 does not match --format");
    assert_usage_error(
        b.cli().args(["produce", "fmt", "--format", "%k%v"]),
        "delimiter between two fields",
    );
}

#[test]
fn cluster_info_group_seek_offset_delete_and_delete_records() {
    let b = Broker::start();
    b.run(&["topic", "create", "ops", "--partitions", "2"]);
    b.produce_lines("ops", 0, "", 10);
    b.cli()
        .args(["produce", "ops", "-p", "1"])
        .write_stdin("a\nb\nc\nd\n")
        .assert()
        .success();

    // cluster info: like rpk cluster info / kcat -L, from Kafka metadata.
    let port = b.bootstrap.rsplit(':').next().unwrap().to_owned();
    let text = b.run(&["cluster", "info"]);
    assert!(text.contains("controller: 1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1*", "127.0.0.1", &port, "-"]),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["ops", "2", "1"]),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&b.run(&["cluster", "info", "--json"])).unwrap();
    assert_eq!(json["controller_id"], 1);
    assert_eq!(json["brokers"][0]["port"].to_string(), port);
    assert!(
        json["cluster_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{json}"
    );
    assert_eq!(json["topics"][0]["name"], "ops");
    assert_eq!(json["topics"][0]["partitions"], 2);

    // --format text|json|yaml on the data commands; --json stays.
    let yaml = b.run(&["cluster", "info", "--format", "yaml"]);
    assert!(yaml.lines().any(|l| l == "controller_id: 1"), "{yaml}");
    assert!(
        yaml.contains("  - internal: false\n    name: \"ops\"\n    partitions: 2\n"),
        "{yaml}"
    );
    let yaml = b.run(&["topic", "list", "--format", "yaml"]);
    assert!(
        yaml.starts_with("- internal: false\n  name: \"ops\"\n  partitions: 2\n"),
        "{yaml}"
    );
    assert_eq!(
        b.run(&["topic", "list", "--format", "json"]),
        b.run(&["topic", "list", "--json"])
    );
    let yaml = b.run(&["status", "--format", "yaml"]);
    assert!(yaml.lines().any(|l| l == "node_id: 1"), "{yaml}");
    let yaml = b.run(&["topic", "describe", "ops", "--format", "yaml"]);
    assert!(yaml.contains("name: \"ops\""), "{yaml}");
    assert_usage_error(
        b.cli()
            .args(["topic", "list", "--json", "--format", "yaml"]),
        "cannot be used with",
    );

    // group seek: start, an offset (clamped to the log), end, @TIME.
    b.run(&["consume", "ops", "-g", "sk", "-e"]);
    let current = |p: i32| lag_of(&b.run(&["group", "describe", "sk"]), "ops", p).0;
    assert_eq!((current(0), current(1)), ("10".to_owned(), "4".to_owned()));
    b.run(&["group", "seek", "sk", "--to", "start"]);
    assert_eq!((current(0), current(1)), ("0".to_owned(), "0".to_owned()));
    b.run(&["group", "seek", "sk", "--to", "3", "--topics", "ops"]);
    assert_eq!((current(0), current(1)), ("3".to_owned(), "3".to_owned()));
    b.run(&["group", "seek", "sk", "--to", "7"]);
    assert_eq!((current(0), current(1)), ("7".to_owned(), "4".to_owned()));
    b.run(&["group", "seek", "sk", "--to", "@0"]);
    assert_eq!((current(0), current(1)), ("0".to_owned(), "0".to_owned()));
    b.run(&["group", "seek", "sk", "--to", "@9999999999999"]);
    assert_eq!((current(0), current(1)), ("10".to_owned(), "4".to_owned()));
    let yaml = b.run(&["group", "describe", "sk", "--format", "yaml"]);
    assert!(yaml.lines().any(|l| l == "group: \"sk\""), "{yaml}");
    assert!(
        b.run(&["group", "list", "--format", "yaml"])
            .contains("- group: \"sk\"")
    );
    let dry = b.run(&["group", "seek", "sk", "--to", "start", "--dry-run"]);
    assert!(dry.contains("dry run"), "{dry}");
    assert_eq!(current(0), "10", "a dry run commits nothing");
    assert_usage_error(
        b.cli().args(["group", "seek", "sk", "--to", "soon"]),
        "not start, end",
    );

    // offset-delete: one partition, then the rest of the topic.
    let out = b.run(&["group", "offset-delete", "sk", "ops:1"]);
    assert!(out.contains("1 partition(s) of ops"), "{out}");
    assert_eq!((current(0), current(1)), ("10".to_owned(), "-".to_owned()));
    b.run(&["group", "offset-delete", "sk", "ops"]);
    let describe = b.cli().args(["group", "describe", "sk"]).assert();
    let text = String::from_utf8_lossy(&describe.get_output().stdout).into_owned();
    assert!(!text.lines().any(|l| l.starts_with("ops ")), "{text}");
    assert_usage_error(
        b.cli().args(["group", "offset-delete", "sk", "ops:x"]),
        "not a partition",
    );

    // delete-records: the log start moves; reads begin there.
    let out = b.run(&["topic", "delete-records", "ops", "-p", "0", "--before", "4"]);
    assert!(out.contains("partition 0: log start offset now 4"), "{out}");
    let offsets: Vec<i64> = b
        .run(&["consume", "ops", "-p", "0", "-e", "-F", "%o\\n"])
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(offsets, (4..10).collect::<Vec<_>>());
    let out = b.run(&[
        "topic",
        "delete-records",
        "ops",
        "-p",
        "1",
        "--before",
        "end",
    ]);
    assert!(out.contains("partition 1: log start offset now 4"), "{out}");
    assert!(b.run(&["consume", "ops", "-p", "1", "-e"]).is_empty());
    assert_one_line_error(
        b.cli().args([
            "topic",
            "delete-records",
            "ops",
            "-p",
            "0",
            "--before",
            "100",
        ]),
        "OFFSET_OUT_OF_RANGE",
    );
    assert_one_line_error(
        b.cli()
            .args(["topic", "delete-records", "ops", "-p", "7", "--before", "1"]),
        "partition",
    );
}

#[test]
fn profiles_give_commands_their_brokers_and_x_overrides_them() {
    let b = Broker::start();
    let config = tempfile::tempdir().unwrap();
    // A command that finds its brokers only through the profile.
    let cli = || {
        let mut cmd = b.cli();
        cmd.env_remove("SLUICE_BOOTSTRAP")
            .env_remove("SLUICE_PROFILE")
            .env("XDG_CONFIG_HOME", config.path());
        cmd
    };
    let run = |args: &[&str]| {
        let out = cli().args(args).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let out = run(&["profile", "create", "dev", "-b", &b.bootstrap]);
    assert!(out.contains("created profile dev"), "{out}");
    let file = std::fs::read_to_string(config.path().join("sluice/profiles.toml")).unwrap();
    assert!(file.contains("current = \"dev\""), "{file}");
    run(&["topic", "create", "via-profile"]);
    assert!(run(&["topic", "list"]).contains("via-profile"));

    // A second profile pointing nowhere becomes current; -X and --profile
    // override it.
    let nowhere = format!("127.0.0.1:{}", free_port());
    run(&["profile", "create", "gone", "-b", &nowhere]);
    assert_one_line_error(cli().args(["topic", "list"]), "connect");
    let x = format!("brokers={}", b.bootstrap);
    assert!(run(&["topic", "list", "-X", &x]).contains("via-profile"));
    assert!(run(&["topic", "list", "--profile", "dev"]).contains("via-profile"));
    assert!(run(&["topic", "list", "-b", &b.bootstrap]).contains("via-profile"));
    let list = run(&["profile", "list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().take(2).eq(["gone*", nowhere.as_str()])),
        "{list}"
    );
    run(&["profile", "use", "dev"]);
    assert!(run(&["topic", "list"]).contains("via-profile"));
    let json: serde_json::Value =
        serde_json::from_str(&run(&["profile", "list", "--format", "json"])).unwrap();
    assert_eq!(json["current"], "dev");
    assert_eq!(json["profiles"]["gone"]["brokers"], nowhere.as_str());
    run(&["profile", "delete", "gone"]);
    assert_one_line_error(cli().args(["profile", "use", "gone"]), "no profile 'gone'");
    assert_one_line_error(
        cli().args(["topic", "list", "--profile", "gone"]),
        "no profile 'gone'",
    );
    assert_one_line_error(cli().args(["topic", "list", "-X", "nope=1"]), "unknown key");
    assert_one_line_error(
        cli().args(["profile", "create", "a/b", "-b", "x:1"]),
        "not a profile name",
    );
}

#[test]
fn completion_scripts_name_the_subcommands_for_each_shell() {
    let script = |shell: &str| {
        let out = assert_cmd::Command::cargo_bin("sluice")
            .unwrap()
            .args(["completion", shell])
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let bash = script("bash");
    assert!(bash.contains("complete -F _sluice"), "{bash}");
    for word in [
        "consume",
        "produce",
        "profile",
        "delete-records",
        "offset-delete",
    ] {
        assert!(bash.contains(word), "bash script lacks {word}");
    }
    assert!(script("zsh").starts_with("#compdef sluice"));
    assert!(script("fish").contains("complete -c sluice"));
    // bash -n parses the script without running it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.bash");
    std::fs::write(&path, &bash).unwrap();
    let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(status.success(), "bash -n rejected the script");
    assert_usage_error(
        assert_cmd::Command::cargo_bin("sluice")
            .unwrap()
            .args(["completion", "tcsh"]),
        "invalid value",
    );
}
