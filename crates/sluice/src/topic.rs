//! `sluice topic ...`: create, list, describe, alter-config, add-partitions, delete.

use std::time::Duration;

use clap::{Args, Subcommand};
use sluice_client::admin::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use sluice_client::{Admin, ConfigOp, NewTopic};

use crate::common::{CliError, ConnArgs, human_bytes, parse_key_value, print_table};

/// Manage topics.
#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics.
    List(ListArgs),
    /// Show a topic's partitions (leader, replicas, offsets, size) and configs.
    Describe(DescribeArgs),
    /// Set or reset topic configs.
    AlterConfig(AlterArgs),
    /// Grow a topic to more partitions.
    AddPartitions(AddPartitionsArgs),
    /// Delete topics.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic name.
    name: String,
    /// Number of partitions.
    #[arg(long, short = 'p', default_value_t = 1)]
    partitions: i32,
    /// Replication factor (-1: broker default).
    #[arg(long, short = 'r', default_value_t = -1)]
    replication_factor: i16,
    /// Topic config, e.g. `--config retention.ms=60000`. Repeatable.
    #[arg(long = "config", short = 'c', value_parser = parse_key_value, value_name = "KEY=VALUE")]
    configs: Vec<(String, String)>,
    /// Succeed if the topic already exists.
    #[arg(long)]
    if_not_exists: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Include internal topics such as __consumer_offsets.
    #[arg(long)]
    internal: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic name.
    name: String,
    /// The HTTP API of the broker named by -b, for partition sizes;
    /// refused if it belongs to another broker. Default: the address that
    /// broker reports.
    #[arg(long, env = "SLUICE_HTTP", value_name = "HOST:PORT")]
    http_server: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AlterArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic name.
    name: String,
    /// Set a config. Repeatable.
    #[arg(long = "set", value_parser = parse_key_value, value_name = "KEY=VALUE")]
    set: Vec<(String, String)>,
    /// Reset a config to its default. Repeatable.
    #[arg(long = "delete", value_name = "KEY")]
    delete: Vec<String>,
}

#[derive(Debug, Args)]
struct AddPartitionsArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic name.
    name: String,
    /// New total partition count.
    #[arg(long, short = 'p')]
    partitions: i32,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Topic names.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Runs `sluice topic`.
pub async fn run(args: TopicArgs) -> Result<(), CliError> {
    match args.command {
        TopicCommand::Create(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            let result = admin
                .create_topics(&[NewTopic {
                    name: a.name.clone(),
                    partitions: a.partitions,
                    replication_factor: a.replication_factor,
                    configs: a.configs,
                }])
                .await;
            match result {
                Ok(()) => println!(
                    "created topic {} with {} partition(s)",
                    a.name, a.partitions
                ),
                // TOPIC_ALREADY_EXISTS (36)
                Err(e) if a.if_not_exists && e.code().map(|c| c.code()) == Some(36) => {
                    println!("topic {} already exists", a.name)
                }
                Err(e) => return Err(e.into()),
            }
        }
        TopicCommand::List(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            let topics: Vec<_> = admin
                .list_topics()
                .await?
                .into_iter()
                .filter(|t| a.internal || !t.is_internal)
                .collect();
            if a.json {
                let v: Vec<_> = topics
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "name": t.name,
                            "topic_id": t.topic_id.to_string(),
                            "partitions": t.partitions.len(),
                            "replication_factor": t.partitions.first().map_or(0, |p| p.replicas.len()),
                            "internal": t.is_internal,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = topics
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.partitions.len().to_string(),
                            t.partitions
                                .first()
                                .map_or(0, |p| p.replicas.len())
                                .to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
            }
        }
        TopicCommand::Describe(a) => describe(a).await?,
        TopicCommand::AlterConfig(a) => {
            if a.set.is_empty() && a.delete.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give --set KEY=VALUE or --delete KEY".to_owned(),
                ));
            }
            let admin = Admin::new(a.conn.connect().await?);
            admin.describe_topic(&a.name).await?;
            let mut ops: Vec<ConfigOp> = a
                .set
                .into_iter()
                .map(|(k, v)| ConfigOp::Set(k, v))
                .collect();
            ops.extend(a.delete.into_iter().map(ConfigOp::Delete));
            admin.alter_topic_config(&a.name, &ops).await?;
            println!("updated {} config(s) of topic {}", ops.len(), a.name);
        }
        TopicCommand::AddPartitions(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            admin.describe_topic(&a.name).await?;
            admin.create_partitions(&a.name, a.partitions).await?;
            println!("topic {} now has {} partitions", a.name, a.partitions);
        }
        TopicCommand::Delete(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            for name in &a.names {
                admin.describe_topic(name).await?;
            }
            admin.delete_topics(&a.names).await?;
            for name in &a.names {
                println!("deleted topic {name}");
            }
        }
    }
    Ok(())
}

async fn describe(a: DescribeArgs) -> Result<(), CliError> {
    let client = a.conn.connect().await?;
    let http = crate::common::broker_http(&client, a.http_server.as_deref()).await?;
    let admin = Admin::new(client);
    let topic = admin.describe_topic(&a.name).await?;
    let mut queries = Vec::new();
    for p in &topic.partitions {
        queries.push((topic.name.clone(), p.partition, EARLIEST_TIMESTAMP));
        queries.push((topic.name.clone(), p.partition, LATEST_TIMESTAMP));
    }
    let offsets = admin.list_offsets(&queries).await?;
    let stats = match &http {
        Some(http) => partition_stats(&http.addr, &a.name).await,
        None => None,
    };
    let configs = admin
        .describe_topic_config(&a.name)
        .await
        .unwrap_or_default();
    let partitions: Vec<_> = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let stats = stats
                .as_ref()
                .and_then(|s| s.iter().find(|(n, _)| *n == p.partition).map(|(_, s)| *s));
            (p, offsets[2 * i], offsets[2 * i + 1], stats)
        })
        .collect();
    if a.json {
        let v = serde_json::json!({
            "name": topic.name,
            "topic_id": topic.topic_id.to_string(),
            "internal": topic.is_internal,
            "partitions": partitions.iter().map(|(p, start, end, stats)| serde_json::json!({
                "partition": p.partition,
                "leader": p.leader_id,
                "replicas": p.replicas,
                "isr": p.isr,
                "log_start_offset": start,
                "log_end_offset": end,
                "size_bytes": stats.map(|s| s.size_bytes),
                "dirty_ratio": stats.and_then(|s| s.dirty_ratio),
            })).collect::<Vec<_>>(),
            "configs": configs.iter().filter(|c| !c.is_default).map(|c| (c.name.clone(), c.value.clone())).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{v}");
        return Ok(());
    }
    println!("Topic:      {}", topic.name);
    println!("Topic ID:   {}", topic.topic_id);
    println!("Partitions: {}", topic.partitions.len());
    let overrides: Vec<_> = configs.iter().filter(|c| !c.is_default).collect();
    if !overrides.is_empty() {
        println!("Configs:");
        for c in overrides {
            println!(
                "  {}={}",
                c.name,
                c.value.as_deref().unwrap_or("<sensitive>")
            );
        }
    }
    println!();
    // Compacted topics show how dirty each partition is.
    let compacted = partitions
        .iter()
        .any(|(.., stats)| stats.is_some_and(|s| s.dirty_ratio.is_some()));
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|(p, start, end, stats)| {
            let mut row = vec![
                p.partition.to_string(),
                p.leader_id.to_string(),
                format!("{:?}", p.replicas),
                format!("{:?}", p.isr),
                start.to_string(),
                end.to_string(),
                stats.map_or_else(|| "-".to_owned(), |s| human_bytes(s.size_bytes)),
            ];
            if compacted {
                row.push(
                    stats
                        .and_then(|s| s.dirty_ratio)
                        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0)),
                );
            }
            row
        })
        .collect();
    let mut headers = vec![
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START",
        "LOG-END",
        "SIZE",
    ];
    if compacted {
        headers.push("DIRTY");
    }
    print_table(&headers, &rows);
    Ok(())
}

/// What the broker's HTTP API adds about a partition.
#[derive(Debug, Clone, Copy)]
struct PartitionStats {
    size_bytes: u64,
    /// Of a compacted partition: dirty over cleanable bytes.
    dirty_ratio: Option<f64>,
}

/// Partition sizes and dirty ratios from the broker's HTTP API, if it answers.
async fn partition_stats(http: &str, topic: &str) -> Option<Vec<(i32, PartitionStats)>> {
    let body =
        crate::common::http_get(http, &format!("/v1/topics/{topic}"), Duration::from_secs(2))
            .await
            .ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let parts = v.get("partitions")?.as_array()?;
    Some(
        parts
            .iter()
            .filter_map(|p| {
                Some((
                    i32::try_from(p.get("partition")?.as_i64()?).ok()?,
                    PartitionStats {
                        size_bytes: p.get("size_bytes")?.as_u64()?,
                        dirty_ratio: p.get("dirty_ratio").and_then(serde_json::Value::as_f64),
                    },
                ))
            })
            .collect(),
    )
}
