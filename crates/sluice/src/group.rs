//! `sluice group ...`: list, describe (lag and members), reset-offsets,
//! seek (rpk's form of a reset), offset-delete, delete.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Subcommand};
use sluice_client::admin::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use sluice_client::{Admin, GroupDescription};

use crate::common::{CliError, ConnArgs, parse_datetime_ms, print_table};
use crate::output::OutputArgs;

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
    /// Move a group's committed offsets like `rpk group seek`: `--to
    /// start|end|OFFSET|@TIME` (the group must have no members).
    Seek(SeekArgs),
    /// Delete a group's committed offsets for a topic (Kafka's
    /// OffsetDelete; the group must not be consuming the topic).
    OffsetDelete(OffsetDeleteArgs),
    /// Delete groups (they must have no members).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct SeekArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Group id.
    group: String,
    /// Where to: `start`, `end`, an offset, or `@TIME` (RFC 3339 or ms
    /// since the epoch; the first record at or after it).
    #[arg(long, value_parser = parse_seek_target, value_name = "WHERE")]
    to: Target,
    /// Only these topics (default: every topic the group has offsets
    /// for). Repeatable or comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "TOPIC")]
    topics: Vec<String>,
    /// Show the plan without committing it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct OffsetDeleteArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Group id.
    group: String,
    /// `TOPIC` (every partition) or `TOPIC:P1,P2`.
    #[arg(value_parser = parse_topic_partitions, value_name = "TOPIC[:PARTITIONS]")]
    topic: (String, Vec<i32>),
}

/// Where a reset or seek moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// An offset, clamped to the log.
    Offset(i64),
    /// The first record at or after ms since the epoch (the end if none).
    Time(i64),
    /// The committed offset (else the log start) plus N, clamped.
    Shift(i64),
}

fn parse_seek_target(s: &str) -> Result<Target, String> {
    match s {
        "start" | "beginning" | "earliest" => Ok(Target::Earliest),
        "end" | "latest" => Ok(Target::Latest),
        _ => {
            if let Some(time) = s.strip_prefix('@') {
                return parse_datetime_ms(time).map(Target::Time);
            }
            s.parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .map(Target::Offset)
                .ok_or_else(|| format!("'{s}' is not start, end, an offset or @TIME"))
        }
    }
}

fn parse_topic_partitions(s: &str) -> Result<(String, Vec<i32>), String> {
    // Kafka topic names cannot hold ':', so the first one splits.
    let Some((topic, list)) = s.split_once(':') else {
        return Ok((s.to_owned(), Vec::new()));
    };
    let partitions = list
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| format!("'{p}' in '{s}' is not a partition"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if topic.is_empty() {
        return Err(format!("'{s}' names no topic"));
    }
    Ok((topic.to_owned(), partitions))
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Group id.
    group: String,
    #[command(flatten)]
    out: OutputArgs,
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
            if a.out.is_data() {
                let v: Vec<_> = groups
                    .iter()
                    .map(|g| serde_json::json!({"group": g.group_id, "group_type": group_type(&g.group_type), "protocol_type": g.protocol_type, "state": g.state}))
                    .collect();
                a.out.print(&serde_json::Value::Array(v));
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
        GroupCommand::ResetOffsets(a) => {
            let target = if a.to_earliest {
                Target::Earliest
            } else if a.to_latest {
                Target::Latest
            } else if let Some(o) = a.to_offset {
                Target::Offset(o)
            } else if let Some(ts) = a.to_datetime {
                Target::Time(ts)
            } else if let Some(n) = a.shift_by {
                Target::Shift(n)
            } else {
                return Err(CliError::Usage(
                    "choose a --to-* or --shift-by target".to_owned(),
                ));
            };
            let admin = Admin::new(a.conn.connect().await?);
            let topics: Vec<String> = a.topic.into_iter().collect();
            reset(&admin, &a.group, &topics, &a.partition, target, a.dry_run).await?;
        }
        GroupCommand::Seek(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            reset(&admin, &a.group, &a.topics, &[], a.to, a.dry_run).await?;
        }
        GroupCommand::OffsetDelete(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            let (topic, mut partitions) = a.topic;
            if partitions.is_empty() {
                let info = admin.describe_topic(&topic).await?;
                partitions = info.partitions.iter().map(|p| p.partition).collect();
            }
            admin
                .delete_committed_offsets(&a.group, &topic, &partitions)
                .await?;
            println!(
                "deleted offsets of group {} for {} partition(s) of {topic}",
                a.group,
                partitions.len()
            );
        }
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
    if a.out.is_data() {
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
        a.out.print(&v);
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

/// Moves `group`'s committed offsets for `topics` (all partitions, or
/// those in `partitions`; every topic with a commit when `topics` is
/// empty) to `target`, printing the plan.
async fn reset(
    admin: &Admin,
    group: &str,
    topics: &[String],
    partitions: &[i32],
    target: Target,
    dry_run: bool,
) -> Result<(), CliError> {
    let desc = admin.describe_group(group).await?;
    if !desc.members.is_empty() && !dry_run {
        return Err(CliError::Other(format!(
            "group '{group}' has {} active member(s); stop them before resetting offsets",
            desc.members.len()
        )));
    }
    let committed = admin.committed_offsets(group, None).await?;
    let mut keys: Vec<(String, i32)> = Vec::new();
    for topic in topics {
        let info = admin.describe_topic(topic).await?;
        keys.extend(
            info.partitions
                .iter()
                .map(|p| p.partition)
                .filter(|p| partitions.is_empty() || partitions.contains(p))
                .map(|p| (topic.clone(), p)),
        );
    }
    if topics.is_empty() {
        keys = committed.keys().cloned().collect();
    }
    if keys.is_empty() {
        return Err(CliError::Other(format!(
            "group '{group}' has no committed offsets; name a topic"
        )));
    }
    let mut queries = Vec::new();
    for (t, p) in &keys {
        queries.push((t.clone(), *p, EARLIEST_TIMESTAMP));
        queries.push((t.clone(), *p, LATEST_TIMESTAMP));
    }
    let bounds = admin.list_offsets(&queries).await?;
    let by_time = match target {
        Target::Time(ts) => {
            let q: Vec<_> = keys.iter().map(|(t, p)| (t.clone(), *p, ts)).collect();
            Some(admin.list_offsets(&q).await?)
        }
        _ => None,
    };
    let mut plan: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut rows = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (start, end) = (bounds[2 * i], bounds[2 * i + 1]);
        let current = committed.get(key).copied();
        let offset = match (target, &by_time) {
            (Target::Earliest, _) => start,
            (Target::Latest, _) => end,
            (Target::Offset(o), _) => o,
            // No record at or after the time: the end.
            (Target::Time(_), Some(found)) if found[i] >= 0 => found[i],
            (Target::Time(_), _) => end,
            (Target::Shift(n), _) => current.unwrap_or(start).saturating_add(n),
        };
        let new_offset = offset.clamp(start, end);
        plan.insert(key.clone(), new_offset);
        rows.push(vec![
            key.0.clone(),
            key.1.to_string(),
            current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            new_offset.to_string(),
        ]);
    }
    print_table(&["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], &rows);
    if dry_run {
        println!("(dry run: nothing committed)");
        return Ok(());
    }
    admin.alter_committed_offsets(group, &plan).await?;
    println!("reset {} partition(s) of group {group}", plan.len());
    Ok(())
}
