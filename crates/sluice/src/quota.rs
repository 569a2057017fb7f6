//! `sluice quota set|list|delete`: client quotas through AlterClientQuotas
//! and DescribeClientQuotas, with `kafka-configs.sh`'s words: an entity is
//! one or two `--entity-type users|clients|ips`, each with an
//! `--entity-name` (in order) or, for the last one, `--entity-default`.

use clap::{Args, Subcommand};
use sluice_client::{Admin, QuotaEntity, QuotaMatch};

use crate::common::{CliError, ConnArgs, print_table};
use crate::output::OutputArgs;

/// Manage client quotas.
#[derive(Debug, Args)]
pub struct QuotaArgs {
    #[command(subcommand)]
    command: QuotaCommand,
}

#[derive(Debug, Subcommand)]
enum QuotaCommand {
    /// Set quotas on an entity, e.g. `--entity-type clients --entity-name
    /// slow --add-config producer_byte_rate=1048576`.
    Set(SetArgs),
    /// List quotas (all, or those of the entities named).
    List(ListArgs),
    /// Remove quotas from an entity (the keys named, or all of them).
    Delete(DeleteArgs),
}

/// Which entity, as `kafka-configs.sh` names it.
#[derive(Debug, Args)]
struct EntityArgs {
    /// `users`, `clients` or `ips`. Repeatable (users with clients).
    #[arg(long = "entity-type", value_name = "TYPE")]
    types: Vec<String>,
    /// The entity's name, one per --entity-type, in order.
    #[arg(long = "entity-name", value_name = "NAME")]
    names: Vec<String>,
    /// The last --entity-type without a name is its default entity.
    #[arg(long = "entity-default")]
    default: bool,
}

#[derive(Debug, Args)]
struct SetArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    entity: EntityArgs,
    /// `key=value[,key=value]`: producer_byte_rate, consumer_byte_rate,
    /// request_percentage, controller_mutation_rate (users, clients),
    /// connection_creation_rate (ips).
    #[arg(long = "add-config", value_name = "KEY=VALUE,...", required = true)]
    add_config: Vec<String>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    entity: EntityArgs,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    entity: EntityArgs,
    /// Keys to remove, comma-separated; every key of the entity if absent.
    #[arg(long = "delete-config", value_name = "KEY,...")]
    delete_config: Vec<String>,
}

/// Runs a `quota` subcommand.
pub async fn run(args: QuotaArgs) -> Result<(), CliError> {
    match args.command {
        QuotaCommand::Set(a) => {
            let entity = exact_entity(&a.entity)?;
            let ops = parse_configs(&a.add_config)?;
            let admin = Admin::new(a.conn.connect().await?);
            admin.alter_client_quotas(&entity, &ops).await?;
            println!("set {} on {}", describe_ops(&ops), entity_label(&entity));
        }
        QuotaCommand::Delete(a) => {
            let entity = exact_entity(&a.entity)?;
            let admin = Admin::new(a.conn.connect().await?);
            let keys: Vec<String> = if a.delete_config.is_empty() {
                let filter = filter_of(&a.entity)?;
                admin
                    .describe_client_quotas(&filter, true)
                    .await?
                    .into_iter()
                    .filter(|(e, _)| same_entity(e, &entity))
                    .flat_map(|(_, values)| values.into_iter().map(|(k, _)| k))
                    .collect()
            } else {
                a.delete_config
                    .iter()
                    .flat_map(|s| s.split(','))
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                    .collect()
            };
            if keys.is_empty() {
                println!("no quotas on {}", entity_label(&entity));
                return Ok(());
            }
            let ops: Vec<(String, Option<f64>)> = keys.into_iter().map(|k| (k, None)).collect();
            admin.alter_client_quotas(&entity, &ops).await?;
            println!(
                "removed {} from {}",
                ops.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                entity_label(&entity)
            );
        }
        QuotaCommand::List(a) => {
            let filter = filter_of(&a.entity)?;
            let admin = Admin::new(a.conn.connect().await?);
            let mut entries = admin.describe_client_quotas(&filter, false).await?;
            entries.sort_by(|x, y| x.0.cmp(&y.0));
            if a.out.is_data() {
                let v: Vec<_> = entries
                    .iter()
                    .map(|(entity, values)| {
                        let entity: serde_json::Map<String, serde_json::Value> = entity
                            .iter()
                            .map(|(t, n)| (t.clone(), serde_json::json!(n)))
                            .collect();
                        let values: serde_json::Map<String, serde_json::Value> = values
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                            .collect();
                        serde_json::json!({ "entity": entity, "quotas": values })
                    })
                    .collect();
                a.out.print(&serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .flat_map(|(entity, values)| {
                        values
                            .iter()
                            .map(|(k, v)| vec![entity_label(entity), k.clone(), format_value(*v)])
                    })
                    .collect();
                print_table(&["ENTITY", "QUOTA", "VALUE"], &rows);
            }
        }
    }
    Ok(())
}

/// Kafka's quota entity type for a `kafka-configs.sh` entity type.
fn entity_type(cli: &str) -> Result<&'static str, CliError> {
    match cli {
        "users" | "user" => Ok("user"),
        "clients" | "client" | "client-id" => Ok("client-id"),
        "ips" | "ip" => Ok("ip"),
        other => Err(CliError::Usage(format!(
            "unknown --entity-type {other}; use users, clients or ips"
        ))),
    }
}

/// The entity's `(type, name)` pairs; names pair with types in order, and
/// `--entity-default` gives the one left over its default.
fn entity_parts(args: &EntityArgs) -> Result<Vec<(&'static str, Option<String>)>, CliError> {
    if args.names.len() > args.types.len() {
        return Err(CliError::Usage(
            "more --entity-name than --entity-type".to_owned(),
        ));
    }
    let unnamed = args.types.len() - args.names.len();
    if args.default && unnamed != 1 {
        return Err(CliError::Usage(
            "--entity-default needs exactly one --entity-type without an --entity-name".to_owned(),
        ));
    }
    args.types
        .iter()
        .enumerate()
        .map(|(i, t)| Ok((entity_type(t)?, args.names.get(i).cloned())))
        .collect()
}

/// The one entity `set` and `delete` act on: every type named or default.
fn exact_entity(args: &EntityArgs) -> Result<QuotaEntity, CliError> {
    if args.types.is_empty() {
        return Err(CliError::Usage(
            "name the entity: --entity-type users|clients|ips with --entity-name N or --entity-default"
                .to_owned(),
        ));
    }
    if args.types.len() != args.names.len() + usize::from(args.default) {
        return Err(CliError::Usage(
            "each --entity-type needs an --entity-name, or --entity-default for the last"
                .to_owned(),
        ));
    }
    Ok(entity_parts(args)?
        .into_iter()
        .map(|(t, n)| (t.to_owned(), n))
        .collect())
}

/// The DescribeClientQuotas filter for `list`: a named type matches that
/// name, the defaulted one its default, a bare one any name.
fn filter_of(args: &EntityArgs) -> Result<Vec<(String, QuotaMatch)>, CliError> {
    let parts = entity_parts(args)?;
    let last = parts.len().saturating_sub(1);
    Ok(parts
        .into_iter()
        .enumerate()
        .map(|(i, (t, n))| {
            let m = match n {
                Some(n) => QuotaMatch::Exact(n),
                None if args.default && i == last => QuotaMatch::Default,
                None => QuotaMatch::Any,
            };
            (t.to_owned(), m)
        })
        .collect())
}

/// `key=value[,key=value]` lists, numbers checked here so a typo fails
/// before anything is sent.
fn parse_configs(specs: &[String]) -> Result<Vec<(String, Option<f64>)>, CliError> {
    let mut ops = Vec::new();
    for pair in specs.iter().flat_map(|s| s.split(',')) {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("`{pair}` is not KEY=VALUE")))?;
        let value: f64 = v
            .trim()
            .parse()
            .map_err(|_| CliError::Usage(format!("`{v}` is not a number (in `{pair}`)")))?;
        ops.push((k.trim().to_owned(), Some(value)));
    }
    if ops.is_empty() {
        return Err(CliError::Usage(
            "--add-config names no KEY=VALUE".to_owned(),
        ));
    }
    Ok(ops)
}

fn same_entity(a: &QuotaEntity, b: &QuotaEntity) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.sort();
    b.sort();
    a == b
}

/// `user=alice,client-id=<default>`.
fn entity_label(entity: &QuotaEntity) -> String {
    entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(",")
}

fn describe_ops(ops: &[(String, Option<f64>)]) -> String {
    ops.iter()
        .map(|(k, v)| format!("{k}={}", v.map_or_else(String::new, format_value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whole numbers without a fraction (byte rates), others as they are.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(types: &[&str], names: &[&str], default: bool) -> EntityArgs {
        EntityArgs {
            types: types.iter().map(|s| (*s).to_owned()).collect(),
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            default,
        }
    }

    #[test]
    fn entities_pair_names_with_types_and_default_the_last() {
        let e = exact_entity(&args(&["users", "clients"], &["alice"], true)).expect("valid");
        assert_eq!(
            e,
            vec![
                ("user".to_owned(), Some("alice".to_owned())),
                ("client-id".to_owned(), None)
            ]
        );
        assert!(exact_entity(&args(&["clients"], &[], false)).is_err());
        assert!(exact_entity(&args(&["groups"], &["g"], false)).is_err());
        assert!(exact_entity(&args(&[], &[], false)).is_err());
        let f = filter_of(&args(&["users", "clients"], &["alice"], false)).expect("valid");
        assert_eq!(f[1], ("client-id".to_owned(), QuotaMatch::Any));
    }

    #[test]
    fn configs_parse_as_numbers() {
        let ops = parse_configs(&["producer_byte_rate=1024,request_percentage=12.5".to_owned()])
            .expect("valid");
        assert_eq!(
            ops,
            vec![
                ("producer_byte_rate".to_owned(), Some(1024.0)),
                ("request_percentage".to_owned(), Some(12.5))
            ]
        );
        assert!(parse_configs(&["producer_byte_rate=fast".to_owned()]).is_err());
        assert!(parse_configs(&["producer_byte_rate".to_owned()]).is_err());
        assert_eq!(format_value(1024.0), "1024");
        assert_eq!(format_value(12.5), "12.5");
    }
}
