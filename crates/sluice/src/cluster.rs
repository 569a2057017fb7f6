//! `sluice cluster`: the metadata quorum's members. Talks to a node's
//! controller listener (the controller protocol), so it works while no
//! Kafka listener can answer.
//!
//! - `status`: nodes, roles, the leader, term, log and applied indexes,
//!   and each node's lag as the leader sees it.
//! - `add-node ID`: promotes a learner (a node started with an id not in
//!   `cluster.voters`, which joined as a broker) to voter.
//! - `remove-node ID`: removes a node from the quorum.
//! - `decommission ID`: moves every replica off a broker, reporting
//!   progress until it holds none and is safe to stop; `recommission ID`
//!   brings it back into service.
//! - `balance status`: moves in flight and each broker's load.
//! - `info`: cluster id, controller, brokers and topics as the Kafka
//!   listener's metadata shows them (`rpk cluster info`, `kcat -L`); this
//!   one talks to `--bootstrap-server`, not the controller listener.

use std::sync::Arc;

use clap::{Args, Subcommand};
use sluice_broker::config::{ConfigLoader, SecurityProtocol};
use sluice_metadata::balance::BalanceStatus;
use sluice_metadata::controller::{ControllerCall, ControllerReply};
use sluice_quorum::wire::{ControlRequest, ControlResponse, Request};
use sluice_quorum::{ClientTransport, Peers, Quorum};

use crate::common::{CliError, ConnArgs, print_table};
use crate::output::OutputArgs;
use sluice_client::Admin;

/// Inspect and change the metadata quorum.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// A node's controller listener.
    #[arg(
        long,
        env = "SLUICE_CONTROLLER",
        default_value = "127.0.0.1:9093",
        value_name = "HOST:PORT",
        global = true
    )]
    controller: String,
    /// A node's config file: when its `controller_security_protocol` is
    /// SSL, the CLI connects over TLS with the `[tls]` certificate, key
    /// and CA it names.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Show the quorum: nodes, roles, leader, term, indexes and lag.
    Status {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Promote a learner (a broker-only node) to voter.
    AddNode {
        /// Its node id.
        id: u64,
    },
    /// Remove a node from the quorum.
    RemoveNode {
        /// Its node id.
        id: u64,
    },
    /// Move every replica off a broker; waits until it holds none.
    Decommission {
        /// Its node id.
        id: i32,
        /// Return once the decommission is recorded, without waiting.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting after this many seconds (the moves go on).
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
    /// Bring a decommissioned broker back into service.
    Recommission {
        /// Its node id.
        id: i32,
    },
    /// Cluster id, controller, brokers and topics (Kafka metadata).
    Info(Box<InfoArgs>),
    /// The automatic balancer.
    Balance {
        #[command(subcommand)]
        command: BalanceCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BalanceCommand {
    /// Moves in flight and each broker's replicas and leaders.
    Status {
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Flags for `sluice cluster info`.
#[derive(Debug, Args)]
struct InfoArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Include internal topics such as __consumer_offsets.
    #[arg(long)]
    internal: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// `sluice cluster info`: what a client's metadata says about the cluster.
async fn info(a: InfoArgs) -> Result<(), CliError> {
    let admin = Admin::new(a.conn.connect().await?);
    let (cluster_id, controller, mut brokers) = admin.describe_cluster().await?;
    brokers.sort_by_key(|b| b.node_id);
    let mut topics: Vec<_> = admin
        .list_topics()
        .await?
        .into_iter()
        .filter(|t| a.internal || !t.is_internal)
        .collect();
    topics.sort_by(|x, y| x.name.cmp(&y.name));
    let replicas =
        |t: &sluice_client::TopicInfo| t.partitions.first().map_or(0, |p| p.replicas.len());
    if a.out.is_data() {
        let v = serde_json::json!({
            "cluster_id": cluster_id,
            "controller_id": controller,
            "brokers": brokers.iter().map(|b| serde_json::json!({
                "node_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack,
            })).collect::<Vec<_>>(),
            "topics": topics.iter().map(|t| serde_json::json!({
                "name": t.name, "partitions": t.partitions.len(),
                "replication_factor": replicas(t), "internal": t.is_internal,
            })).collect::<Vec<_>>(),
        });
        a.out.print_pretty(&v);
        return Ok(());
    }
    println!("CLUSTER");
    println!("=======");
    println!("id:         {}", cluster_id.as_deref().unwrap_or("-"));
    println!("controller: {controller}");
    println!();
    println!("BROKERS");
    println!("=======");
    let rows: Vec<_> = brokers
        .iter()
        .map(|b| {
            let id = if b.node_id == controller {
                format!("{}*", b.node_id)
            } else {
                b.node_id.to_string()
            };
            vec![
                id,
                b.host.clone(),
                b.port.to_string(),
                b.rack.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    print_table(&["ID", "HOST", "PORT", "RACK"], &rows);
    println!();
    println!("TOPICS");
    println!("======");
    let rows: Vec<_> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                replicas(t).to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
    Ok(())
}

/// How often `decommission` checks progress while it waits.
const DECOMMISSION_POLL_MS: u64 = 1_000;

/// How the CLI reaches the controller listener: plain TCP, or TLS as the
/// `--config` file's `controller_security_protocol` says.
fn peers(config: Option<&std::path::Path>) -> Result<Peers, CliError> {
    let Some(path) = config else {
        return Ok(Peers::default());
    };
    let config = ConfigLoader::from_file(Some(path))
        .and_then(ConfigLoader::build)
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    if config.controller_security_protocol != SecurityProtocol::Ssl {
        return Ok(Peers::default());
    }
    let tls = sluice_broker::tls::inter_broker_client_config(&config.tls)
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
    Ok(Peers::new(ClientTransport::Tls(Arc::new(tls))))
}

async fn control(
    peers: &Peers,
    controller: &str,
    request: ControlRequest,
) -> Result<ControlResponse, CliError> {
    match Quorum::remote_control(peers, controller, request).await {
        Ok(ControlResponse::Refused { code, message }) => Err(CliError::Other(format!(
            "refused (Kafka error {code}): {message}"
        ))),
        Ok(answer) => Ok(answer),
        Err(e) => Err(CliError::Other(format!(
            "cannot reach the active controller through {controller}: {e}"
        ))),
    }
}

async fn decommission(
    peers: &Peers,
    controller: &str,
    id: i32,
    decommissioning: bool,
) -> Result<(), CliError> {
    let call = ControllerCall::DecommissionBroker {
        broker_id: id,
        decommissioning,
    };
    match control(peers, controller, ControlRequest::Controller(call)).await? {
        ControlResponse::Controller {
            reply: ControllerReply::DecommissionBroker(Ok(())),
            ..
        } => Ok(()),
        ControlResponse::Controller {
            reply: ControllerReply::DecommissionBroker(Err(e)),
            ..
        } => Err(CliError::Other(e.message)),
        other => Err(CliError::Other(format!("unexpected answer: {other:?}"))),
    }
}

async fn balance_status(peers: &Peers, controller: &str) -> Result<BalanceStatus, CliError> {
    match control(peers, controller, ControlRequest::BalanceStatus).await? {
        ControlResponse::BalanceStatus(status) => Ok(*status),
        other => Err(CliError::Other(format!("unexpected answer: {other:?}"))),
    }
}

fn print_balance(status: &BalanceStatus) {
    let eta = status
        .eta_s
        .map_or_else(|| "unknown".to_owned(), |s| format!("{s} s"));
    let rate = status
        .rate_bytes_per_s
        .map_or_else(|| "-".to_owned(), |r| format!("{r} B/s"));
    println!(
        "balancer: {}   moves in flight: {}   bytes left: {}   rate: {rate}   time left: {eta}",
        if status.enabled { "on" } else { "off" },
        status.moves.len(),
        status.bytes_left
    );
    println!(
        "{:>6}  {:>8}  {:>7}  {:>5}  STATE",
        "BROKER", "REPLICAS", "LEADERS", "DISK%"
    );
    for b in &status.brokers {
        let state = if b.drained {
            "decommissioned: safe to stop"
        } else if b.decommissioning {
            "decommissioning"
        } else if b.lost {
            "lost"
        } else {
            "in service"
        };
        let disk = b
            .disk_used_percent
            .map_or_else(|| "-".to_owned(), |d| d.to_string());
        println!(
            "{:>6}  {:>8}  {:>7}  {:>5}  {state}",
            b.broker_id, b.replicas, b.leaders, disk
        );
    }
    for m in &status.moves {
        let left = m
            .bytes_left
            .map_or_else(|| "?".to_owned(), |b| b.to_string());
        println!(
            "moving {}-{}: replicas {:?}, adding {:?}, removing {:?}, bytes left {left}",
            m.topic, m.partition, m.replicas, m.adding_replicas, m.removing_replicas
        );
    }
}

/// Runs `sluice cluster`.
pub async fn run(a: ClusterArgs) -> Result<(), CliError> {
    let peers = peers(a.config.as_deref())?;
    let peers = &peers;
    match a.command {
        ClusterCommand::Status { out } => {
            // Ask the node given, then the leader it names, whose view has
            // every node's lag.
            let mut status = Quorum::remote_status(peers, &a.controller)
                .await
                .map_err(CliError::Other)?;
            if let Some(addr) = status
                .leader
                .filter(|l| *l != status.node_id)
                .and_then(|l| status.nodes.iter().find(|n| n.id == l))
                .map(|n| n.addr.clone())
                && let Ok(from_leader) = Quorum::remote_status(peers, &addr).await
            {
                status = from_leader;
            }
            if out.is_data() {
                let value =
                    serde_json::to_value(&status).map_err(|e| CliError::Other(e.to_string()))?;
                out.print_pretty(&value);
                return Ok(());
            }
            let show = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
            println!(
                "leader: {}   term: {}   last log index: {}   applied: {}   snapshot: {}   (as node {} sees it)",
                status
                    .leader
                    .map_or_else(|| "none".to_owned(), |l| l.to_string()),
                status.term,
                show(status.last_log_index),
                show(status.applied_index),
                show(status.snapshot_index),
                status.node_id,
            );
            println!(
                "{:>6}  {:<8}  {:<24}  {:>8}  {:>6}",
                "NODE", "ROLE", "CONTROLLER", "MATCHED", "LAG"
            );
            for n in &status.nodes {
                let role = if Some(n.id) == status.leader {
                    "leader".to_owned()
                } else {
                    n.role.clone()
                };
                println!(
                    "{:>6}  {:<8}  {:<24}  {:>8}  {:>6}",
                    n.id,
                    role,
                    n.addr,
                    show(n.matched_index),
                    show(n.lag)
                );
            }
            Ok(())
        }
        ClusterCommand::Info(args) => info(*args).await,
        ClusterCommand::AddNode { id } => {
            Quorum::remote_membership(peers, &a.controller, Request::Promote { node_id: id })
                .await
                .map_err(|e| CliError::Other(format!("cannot add node {id} as a voter: {e}")))?;
            println!("node {id} is a voter");
            Ok(())
        }
        ClusterCommand::Decommission {
            id,
            no_wait,
            timeout_secs,
        } => {
            decommission(peers, &a.controller, id, true).await?;
            println!("broker {id} is decommissioning: its replicas move to other brokers");
            if no_wait {
                return Ok(());
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
            let mut last = None;
            loop {
                let status = balance_status(peers, &a.controller).await?;
                let Some(b) = status.brokers.iter().find(|b| b.broker_id == id) else {
                    return Err(CliError::Other(format!(
                        "broker {id} is no longer registered"
                    )));
                };
                if b.drained {
                    println!("broker {id} holds no replicas: it is safe to stop");
                    println!(
                        "(once stopped, `sluice cluster remove-node {id}` takes it out of the metadata quorum)"
                    );
                    return Ok(());
                }
                let progress = (b.replicas, status.moves.len());
                if last != Some(progress) {
                    let eta = status
                        .eta_s
                        .map_or_else(|| "unknown".to_owned(), |s| format!("{s} s"));
                    println!(
                        "broker {id}: {} replicas left, {} moves in flight, {} bytes to copy, time left {eta}",
                        progress.0, progress.1, status.bytes_left
                    );
                    last = Some(progress);
                }
                if std::time::Instant::now() > deadline {
                    return Err(CliError::Other(format!(
                        "broker {id} still holds {} replicas after {timeout_secs} s; the moves go on \
                         (`sluice cluster balance status` shows them)",
                        b.replicas
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(DECOMMISSION_POLL_MS)).await;
            }
        }
        ClusterCommand::Recommission { id } => {
            decommission(peers, &a.controller, id, false).await?;
            println!("broker {id} is back in service");
            Ok(())
        }
        ClusterCommand::Balance {
            command: BalanceCommand::Status { out },
        } => {
            let status = balance_status(peers, &a.controller).await?;
            if out.is_data() {
                let value =
                    serde_json::to_value(&status).map_err(|e| CliError::Other(e.to_string()))?;
                out.print_pretty(&value);
            } else {
                print_balance(&status);
            }
            Ok(())
        }
        ClusterCommand::RemoveNode { id } => {
            Quorum::remote_membership(peers, &a.controller, Request::Remove { node_id: id })
                .await
                .map_err(|e| CliError::Other(format!("cannot remove node {id}: {e}")))?;
            println!("node {id} is no longer a member of the quorum");
            Ok(())
        }
    }
}
