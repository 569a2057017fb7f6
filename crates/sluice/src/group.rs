//! `sluice group ...`: list, describe (lag and members), reset-offsets, delete.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Subcommand};
use sluice_client::admin::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use sluice_client::{Admin, GroupDescription};

use crate::common::{CliError, ConnArgs, parse_datetime_ms, print_table};

/// Manage consumer groups.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List groups.
    List(ListArgs),
    /// Show a group's state, members and lag per partition.
    Describe(DescribeArgs),
    /// Move a group's committed offsets (the group must have no members).
    ResetOffsets(ResetArgs),
    /// Delete groups (they must have no members).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Group id.
    group: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])))]
struct ResetArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Group id.
    group: String,
    /// Topic to reset (default: every topic the group has offsets for).
    #[arg(long, short = 't')]
    topic: Option<String>,
    /// Only these partitions of --topic. Repeatable.
    #[arg(long, short = 'p', requires = "topic")]
    partition: Vec<i32>,
    /// Reset to the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// Reset to this offset (clamped to the log).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Reset to the first record at or after this time (RFC 3339 or ms).
    #[arg(long, value_parser = parse_datetime_ms, value_name = "TIME")]
    to_datetime: Option<i64>,
    /// Move by N (negative goes back), clamped to the log.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    shift_by: Option<i64>,
    /// Show the plan without committing it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Group ids.
    #[arg(required = true)]
    groups: Vec<String>,
}

/// Runs `sluice group`.
pub async fn run(args: GroupArgs) -> Result<(), CliError> {
    match args.command {
        GroupCommand::List(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            let groups = admin.list_groups().await?;
            if a.json {
                let v: Vec<_> = groups
                    .iter()
                    .map(|g| serde_json::json!({"group": g.group_id, "group_type": group_type(&g.group_type), "protocol_type": g.protocol_type, "state": g.state}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                let rows: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.group_id.clone(),
                            group_type(&g.group_type).to_owned(),
                            or_dash(&g.protocol_type),
                            g.state.clone(),
                        ]
                    })
                    .collect();
                print_table(&["GROUP", "GROUP-TYPE", "PROTOCOL-TYPE", "STATE"], &rows);
            }
        }
        GroupCommand::Describe(a) => describe(a).await?,
        GroupCommand::ResetOffsets(a) => reset(a).await?,
        GroupCommand::Delete(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            admin.delete_groups(&a.groups).await?;
            for g in &a.groups {
                println!("deleted group {g}");
            }
        }
    }
    Ok(())
}

async fn describe(a: DescribeArgs) -> Result<(), CliError> {
    let admin = Admin::new(a.conn.connect().await?);
    let desc = admin.describe_group(&a.group).await?;
    let committed = admin.committed_offsets(&a.group, None).await?;
    if desc.state == "Dead" && committed.is_empty() {
        return Err(CliError::Other(format!(
            "group '{}' does not exist",
            a.group
        )));
    }
    // Every partition with a commit or an assignment gets a row.
    let mut keys: BTreeSet<(String, i32)> = committed.keys().cloned().collect();
    for m in &desc.members {
        keys.extend(m.assignment.iter().cloned());
    }
    // Partitions of the same topics without a commit show as "-".
    let topics: BTreeSet<String> = keys.iter().map(|(t, _)| t.clone()).collect();
    for t in topics {
        if let Ok(info) = admin.describe_topic(&t).await {
            keys.extend(info.partitions.iter().map(|p| (t.clone(), p.partition)));
        }
    }
    let keys: Vec<_> = keys.into_iter().collect();
    let queries: Vec<_> = keys
        .iter()
        .map(|(t, p)| (t.clone(), *p, LATEST_TIMESTAMP))
        .collect();
    let ends = admin.list_offsets(&queries).await?;
    // Like Kafka's kafka-consumer-groups, a partition without a committed
    // offset lags by everything from its log start: that is what a
    // consumer starting there (auto.offset.reset=earliest) has to read.
    let uncommitted: Vec<_> = keys
        .iter()
        .filter(|k| !committed.contains_key(*k))
        .map(|(t, p)| (t.clone(), *p, EARLIEST_TIMESTAMP))
        .collect();
    let starts: BTreeMap<(String, i32), i64> = uncommitted
        .iter()
        .map(|(t, p, _)| (t.clone(), *p))
        .zip(admin.list_offsets(&uncommitted).await?)
        .collect();
    let owner = |key: &(String, i32)| desc.members.iter().find(|m| m.assignment.contains(key));
    let mut total_lag = 0i64;
    let rows: Vec<_> = keys
        .iter()
        .zip(&ends)
        .map(|(key, end)| {
            let current = committed.get(key).copied();
            let from = current.or_else(|| starts.get(key).copied()).unwrap_or(0);
            let lag = (end - from).max(0);
            total_lag += lag;
            (key, current, *end, lag, owner(key))
        })
        .collect();
    let group_type = admin
        .list_groups()
        .await
        .ok()
        .and_then(|groups| groups.into_iter().find(|g| g.group_id == desc.group_id))
        .map_or_else(
            || "classic".to_owned(),
            |g| group_type(&g.group_type).to_owned(),
        );
    if a.json {
        let v = serde_json::json!({
            "group": desc.group_id,
            "group_type": group_type,
            "protocol_type": desc.protocol_type,
            "state": desc.state,
            "protocol": desc.protocol,
            "members": desc.members.iter().map(|m| serde_json::json!({
                "member_id": m.member_id, "client_id": m.client_id, "host": m.client_host,
                "assignment": m.assignment.iter().map(|(t, p)| format!("{t}-{p}")).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "partitions": rows.iter().map(|(k, cur, end, lag, m)| serde_json::json!({
                "topic": k.0, "partition": k.1, "current_offset": cur, "log_end_offset": end,
                "lag": lag, "lag_from": if cur.is_some() { "committed_offset" } else { "log_start_offset" },
                "member_id": m.map(|m| m.member_id.clone()),
            })).collect::<Vec<_>>(),
            "total_lag": total_lag,
        });
        println!("{v}");
        return Ok(());
    }
    print_header(&desc, &group_type, total_lag);
    let table: Vec<_> = rows
        .iter()
        .map(|(k, cur, end, lag, m)| {
            vec![
                k.0.clone(),
                k.1.to_string(),
                cur.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                end.to_string(),
                lag.to_string(),
                m.map_or_else(|| "-".to_owned(), |m| m.member_id.clone()),
                m.map_or_else(|| "-".to_owned(), |m| m.client_host.clone()),
            ]
        })
        .collect();
    print_table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER-ID",
            "HOST",
        ],
        &table,
    );
    if rows.iter().any(|(_, cur, ..)| cur.is_none()) {
        println!();
        println!("CURRENT-OFFSET - : nothing committed; LAG counts from the log start offset");
    }
    Ok(())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-" } else { s }.to_owned()
}

/// A group type for display: ListGroups before v5 does not say, and
/// every group was classic then.
fn group_type(listed: &str) -> &str {
    if listed.is_empty() { "classic" } else { listed }
}

fn print_header(desc: &GroupDescription, group_type: &str, total_lag: i64) {
    println!("Group:         {}", desc.group_id);
    println!("Group type:    {group_type}");
    // Empty for a group that only holds offsets committed without joining.
    println!("Protocol type: {}", or_dash(&desc.protocol_type));
    println!("State:         {}", desc.state);
    if !desc.protocol.is_empty() {
        println!("Assignor:      {}", desc.protocol);
    }
    println!("Members:       {}", desc.members.len());
    for m in &desc.members {
        println!("  {} ({}, {})", m.member_id, m.client_id, m.client_host);
    }
    println!("Total lag:     {total_lag}");
    println!();
}

async fn reset(a: ResetArgs) -> Result<(), CliError> {
    let admin = Admin::new(a.conn.connect().await?);
    let desc = admin.describe_group(&a.group).await?;
    if !desc.members.is_empty() && !a.dry_run {
        return Err(CliError::Other(format!(
            "group '{}' has {} active member(s); stop them before resetting offsets",
            a.group,
            desc.members.len()
        )));
    }
    let committed = admin.committed_offsets(&a.group, None).await?;
    let keys: Vec<(String, i32)> = match &a.topic {
        Some(topic) => {
            let info = admin.describe_topic(topic).await?;
            info.partitions
                .iter()
                .map(|p| p.partition)
                .filter(|p| a.partition.is_empty() || a.partition.contains(p))
                .map(|p| (topic.clone(), p))
                .collect()
        }
        None => committed.keys().cloned().collect(),
    };
    if keys.is_empty() {
        return Err(CliError::Other(format!(
            "group '{}' has no committed offsets; name a --topic",
            a.group
        )));
    }
    let mut queries = Vec::new();
    for (t, p) in &keys {
        queries.push((t.clone(), *p, EARLIEST_TIMESTAMP));
        queries.push((t.clone(), *p, LATEST_TIMESTAMP));
    }
    let bounds = admin.list_offsets(&queries).await?;
    let by_time = match a.to_datetime {
        Some(ts) => {
            let q: Vec<_> = keys.iter().map(|(t, p)| (t.clone(), *p, ts)).collect();
            Some(admin.list_offsets(&q).await?)
        }
        None => None,
    };
    let mut plan: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut rows = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (start, end) = (bounds[2 * i], bounds[2 * i + 1]);
        let current = committed.get(key).copied();
        let target = if a.to_earliest {
            start
        } else if a.to_latest {
            end
        } else if let Some(o) = a.to_offset {
            o
        } else if let Some(found) = &by_time {
            // No record at or after the time: the end.
            if found[i] < 0 { end } else { found[i] }
        } else if let Some(n) = a.shift_by {
            current.unwrap_or(start) + n
        } else {
            return Err(CliError::Usage(
                "choose a --to-* or --shift-by target".to_owned(),
            ));
        };
        let target = target.clamp(start, end);
        plan.insert(key.clone(), target);
        rows.push(vec![
            key.0.clone(),
            key.1.to_string(),
            current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            target.to_string(),
        ]);
    }
    print_table(&["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], &rows);
    if a.dry_run {
        println!("(dry run: nothing committed)");
        return Ok(());
    }
    admin.alter_committed_offsets(&a.group, &plan).await?;
    println!("reset {} partition(s) of group {}", plan.len(), a.group);
    Ok(())
}
