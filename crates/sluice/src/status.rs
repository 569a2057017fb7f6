//! `sluice status` and `sluice stop`.
//!
//! There is no status API in the Kafka protocol, so `status` combines
//! DescribeCluster, Metadata and ListGroups with the broker's HTTP API
//! (`/v1/cluster`, when reachable) and the local data directory (when given).
//! `stop` finds the broker through the pid in `<data_dir>/.lock`, sends
//! SIGTERM, and waits for the broker to release the directory lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use sluice_client::Admin;

use crate::common::{CliError, ConnArgs, human_bytes, parse_duration};

/// Show the broker's identity, listeners, counts and disk use.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The HTTP API of the broker named by -b (for version, uptime and
    /// sizes); refused if it belongs to another broker. Default: the
    /// address that broker reports.
    #[arg(long, env = "SLUICE_HTTP", value_name = "HOST:PORT")]
    http_server: Option<String>,
    /// Local data directory of the broker (for pid and disk use).
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Ask a running broker to shut down cleanly.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The broker's data directory (its `.lock` holds the pid).
    #[arg(
        long,
        env = "SLUICE_DATA_DIR",
        default_value = "./data",
        value_name = "DIR"
    )]
    data_dir: PathBuf,
    /// How long to wait for the broker to exit.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
}

/// Runs `sluice status`.
pub async fn status(a: StatusArgs) -> Result<(), CliError> {
    let client = a.conn.connect().await?;
    let broker_http = crate::common::broker_http(&client, a.http_server.as_deref()).await?;
    let admin = Admin::new(client);
    let (cluster_id, controller, brokers) = admin.describe_cluster().await?;
    let topics = admin.list_topics().await?;
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let groups = admin.list_groups().await.ok().map(|g| g.len());
    let http_addr = broker_http.as_ref().map(|h| h.addr.clone());
    let http: Option<serde_json::Value> = broker_http.map(|h| h.cluster);
    let h = |k: &str| http.as_ref().and_then(|v| v.get(k)).cloned();
    let local = a.data_dir.as_deref().map(local_info);
    let node_id = h("node_id")
        .and_then(|v| v.as_i64())
        .or_else(|| local.as_ref().and_then(|l| l.node_id))
        .or_else(|| (brokers.len() == 1).then(|| i64::from(brokers[0].node_id)));
    let version = h("version").and_then(|v| v.as_str().map(str::to_owned));
    let uptime_ms = h("uptime_ms").and_then(|v| v.as_u64());
    let disk = local
        .as_ref()
        .map(|l| l.disk_bytes)
        .or_else(|| h("total_size_bytes").and_then(|v| v.as_u64()));
    // Every named listener of this broker when its HTTP API says (as
    // `NAME://host:port (PROTOCOL)`), else the brokers Metadata lists.
    let named: Option<Vec<String>> = h("listeners").and_then(|v| {
        v.as_array().map(|ls| {
            ls.iter()
                .map(|l| {
                    let s = |k: &str| l.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
                    let port = l.get("port").and_then(|v| v.as_u64()).unwrap_or(0);
                    format!(
                        "{}://{}:{port} ({})",
                        s("name"),
                        s("host"),
                        s("security_protocol")
                    )
                })
                .collect()
        })
    });
    let listeners: Vec<String> =
        named.unwrap_or_else(|| brokers.iter().map(|b| b.addr()).collect());
    if a.json {
        let v = serde_json::json!({
            "cluster_id": cluster_id,
            "node_id": node_id,
            "controller_id": controller,
            "version": version,
            "uptime_ms": uptime_ms,
            "kafka_listeners": listeners,
            "http_listener": http_addr,
            "data_dir": a.data_dir.as_ref().map(|d| d.display().to_string()),
            "pid": local.as_ref().and_then(|l| l.pid),
            "topics": topics.iter().filter(|t| !t.is_internal).count(),
            "partitions": partitions,
            "groups": groups,
            "disk_bytes": disk,
        });
        println!("{v}");
        return Ok(());
    }
    let or_unknown = |s: Option<String>| s.unwrap_or_else(|| "unknown".to_owned());
    println!(
        "Broker id:   {}",
        or_unknown(node_id.map(|n| n.to_string()))
    );
    println!("Cluster id:  {}", or_unknown(cluster_id));
    println!(
        "Version:     {}",
        version.unwrap_or_else(|| format!("unknown (CLI is {})", env!("CARGO_PKG_VERSION")))
    );
    println!(
        "Uptime:      {}",
        or_unknown(
            uptime_ms
                .map(|ms| humantime::format_duration(Duration::from_secs(ms / 1000)).to_string())
        )
    );
    println!("Kafka:       {}", listeners.join(", "));
    if let Some(addr) = &http_addr {
        println!("HTTP:        {addr}");
    }
    if let Some(d) = &a.data_dir {
        println!("Data dir:    {}", d.display());
        if let Some(pid) = local.as_ref().and_then(|l| l.pid) {
            println!("Pid:         {pid}");
        }
    }
    println!(
        "Topics:      {}",
        topics.iter().filter(|t| !t.is_internal).count()
    );
    println!("Partitions:  {partitions}");
    println!("Groups:      {}", or_unknown(groups.map(|g| g.to_string())));
    println!("Disk use:    {}", or_unknown(disk.map(human_bytes)));
    Ok(())
}

struct LocalInfo {
    pid: Option<u32>,
    node_id: Option<i64>,
    disk_bytes: u64,
}

fn local_info(dir: &Path) -> LocalInfo {
    let pid = read_pid(dir);
    let node_id = std::fs::read_to_string(dir.join("meta.properties"))
        .ok()
        .and_then(|text| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == "node.id")
                .and_then(|(_, v)| v.trim().parse().ok())
        });
    LocalInfo {
        pid,
        node_id,
        disk_bytes: dir_size(dir, 0),
    }
}

/// Directory nesting we follow when summing sizes (data dir, topic dirs,
/// metadata subdirs); deeper trees are not ours.
const MAX_DIR_DEPTH: usize = 4;

fn dir_size(dir: &Path, depth: usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() && depth < MAX_DIR_DEPTH {
            total += dir_size(&e.path(), depth + 1);
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(".lock"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Runs `sluice stop`.
pub async fn stop(a: StopArgs) -> Result<(), CliError> {
    let lock_path = a.data_dir.join(".lock");
    let lock = File::open(&lock_path).map_err(|e| {
        CliError::Other(format!(
            "no broker data directory at {} ({e})",
            a.data_dir.display()
        ))
    })?;
    // The broker holds an exclusive flock for its whole life: if we can take
    // it, nobody is running there.
    match lock.try_lock_shared() {
        Ok(()) => {
            return Err(CliError::Other(format!(
                "no broker is running on {}",
                a.data_dir.display()
            )));
        }
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(CliError::io(format!(
                "cannot check {}",
                lock_path.display()
            ))(e));
        }
    }
    let pid = read_pid(&a.data_dir).ok_or_else(|| {
        CliError::Other(format!("{} does not contain a pid", lock_path.display()))
    })?;
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .map_err(CliError::io("cannot run kill"))?;
    if !status.success() {
        return Err(CliError::Other(format!(
            "could not signal broker pid {pid}"
        )));
    }
    eprintln!("sent SIGTERM to broker pid {pid}; waiting for it to exit");
    // Waiting for the lock is waiting for the exit: the kernel drops the
    // flock when the broker's process ends.
    // A plain thread, not spawn_blocking: on timeout the process exits
    // without waiting for it.
    let (tx, waiter) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lock.lock_shared());
    });
    match tokio::time::timeout(a.timeout, waiter).await {
        Ok(Ok(Ok(()))) => {
            println!("broker pid {pid} stopped");
            Ok(())
        }
        Ok(Ok(Err(e))) => Err(CliError::io("waiting for the broker to exit")(e)),
        Ok(Err(_)) => Err(CliError::Other("waiting for the broker failed".to_owned())),
        Err(_) => Err(CliError::Other(format!(
            "broker pid {pid} did not exit within {:?}",
            a.timeout
        ))),
    }
}
