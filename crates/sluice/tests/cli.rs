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

    let b = Broker::start();
    assert_one_line_error(
        b.cli().args(["produce", "nope", "--value", "x"]),
        "topic 'nope' does not exist",
    );
    assert_one_line_error(
        b.cli().args(["consume", "nope", "--count", "1"]),
        "topic 'nope' does not exist",
    );
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
