//! `sluice cluster`: the metadata quorum's members. Talks to a node's
//! controller listener (the controller protocol), so it works while no
//! Kafka listener can answer.
//!
//! - `status`: nodes, roles, the leader, term, log and applied indexes,
//!   and each node's lag as the leader sees it.
//! - `add-node ID`: promotes a learner (a node started with an id not in
//!   `cluster.voters`, which joined as a broker) to voter.
//! - `remove-node ID`: removes a node from the quorum.

use clap::{Args, Subcommand};
use sluice_quorum::Quorum;
use sluice_quorum::wire::Request;

use crate::common::CliError;

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
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Show the quorum: nodes, roles, leader, term, indexes and lag.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
}

/// Runs `sluice cluster`.
pub async fn run(a: ClusterArgs) -> Result<(), CliError> {
    match a.command {
        ClusterCommand::Status { json } => {
            // Ask the node given, then the leader it names, whose view has
            // every node's lag.
            let mut status = Quorum::remote_status(&a.controller)
                .await
                .map_err(CliError::Other)?;
            if let Some(addr) = status
                .leader
                .filter(|l| *l != status.node_id)
                .and_then(|l| status.nodes.iter().find(|n| n.id == l))
                .map(|n| n.addr.clone())
                && let Ok(from_leader) = Quorum::remote_status(&addr).await
            {
                status = from_leader;
            }
            if json {
                let text = serde_json::to_string_pretty(&status)
                    .map_err(|e| CliError::Other(e.to_string()))?;
                println!("{text}");
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
        ClusterCommand::AddNode { id } => {
            Quorum::remote_membership(&a.controller, Request::Promote { node_id: id })
                .await
                .map_err(|e| CliError::Other(format!("cannot add node {id} as a voter: {e}")))?;
            println!("node {id} is a voter");
            Ok(())
        }
        ClusterCommand::RemoveNode { id } => {
            Quorum::remote_membership(&a.controller, Request::Remove { node_id: id })
                .await
                .map_err(|e| CliError::Other(format!("cannot remove node {id}: {e}")))?;
            println!("node {id} is no longer a member of the quorum");
            Ok(())
        }
    }
}
