//! `sluice acl ...`: create, list and delete ACLs through Kafka's ACL APIs,
//! with `kafka-acls.sh`'s option names (`--allow-principal`, `--operation`,
//! `--topic`, `--group`, `--cluster`, `--transactional-id`,
//! `--resource-pattern-type`, `--host`).

use clap::{Args, Subcommand};
use sluice_client::Admin;
use sluice_client::acl::{AclEntry, AclFilterSpec};
use sluice_metadata::acl::{
    AclOperation, AclPermission, CLUSTER_RESOURCE_NAME, PatternType, ResourceType,
};

use crate::common::{CliError, ConnArgs, print_table};
use crate::output::OutputArgs;

/// Manage ACLs (needs ALTER on the cluster to change them, DESCRIBE to list).
#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Create ACLs: every principal x operation x resource given.
    Create(CreateArgs),
    /// List the ACLs matching the resources given (all of them by default).
    List(FilterArgs),
    /// Delete the ACLs matching the filter given.
    Delete(FilterArgs),
}

/// The resources an ACL command names.
#[derive(Debug, Clone, Args)]
struct Resources {
    /// A topic (`*` for all). Repeatable.
    #[arg(long)]
    topic: Vec<String>,
    /// A consumer group (`*` for all). Repeatable.
    #[arg(long)]
    group: Vec<String>,
    /// A transactional id (`*` for all). Repeatable.
    #[arg(long = "transactional-id")]
    transactional_id: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
}

impl Resources {
    fn list(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_owned()));
        }
        out
    }
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    resources: Resources,
    /// Principal to allow (`User:alice`, `User:*`). Repeatable.
    #[arg(long = "allow-principal")]
    allow_principal: Vec<String>,
    /// Principal to deny. Repeatable.
    #[arg(long = "deny-principal")]
    deny_principal: Vec<String>,
    /// Operation (read, write, create, delete, alter, describe, all,
    /// cluster-action, describe-configs, alter-configs, idempotent-write).
    /// Repeatable.
    #[arg(long, required = true, value_parser = parse_operation)]
    operation: Vec<AclOperation>,
    /// literal or prefixed.
    #[arg(long = "resource-pattern-type", default_value = "literal", value_parser = parse_pattern)]
    resource_pattern_type: PatternType,
    /// Client address the ACL applies to (`*`: any).
    #[arg(long, default_value = "*")]
    host: String,
}

#[derive(Debug, Args)]
struct FilterArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    resources: Resources,
    /// any, match (every ACL that applies to the named resource), literal
    /// or prefixed.
    #[arg(long = "resource-pattern-type", default_value = "any", value_parser = parse_pattern)]
    resource_pattern_type: PatternType,
    /// Only ACLs of this principal (compared exactly).
    #[arg(long)]
    principal: Option<String>,
    /// Only ACLs for this operation.
    #[arg(long, value_parser = parse_operation)]
    operation: Option<AclOperation>,
    #[command(flatten)]
    out: OutputArgs,
}

fn parse_operation(s: &str) -> Result<AclOperation, String> {
    AclOperation::parse(s).ok_or_else(|| format!("unknown operation `{s}`"))
}

fn parse_pattern(s: &str) -> Result<PatternType, String> {
    PatternType::parse(s).ok_or_else(|| format!("unknown pattern type `{s}`"))
}

/// Runs `sluice acl ...`.
pub async fn run(args: AclArgs) -> Result<(), CliError> {
    match args.command {
        AclCommand::Create(a) => create(a).await,
        AclCommand::List(a) => list(a).await,
        AclCommand::Delete(a) => delete(a).await,
    }
}

async fn create(a: CreateArgs) -> Result<(), CliError> {
    let resources = a.resources.list();
    if resources.is_empty() {
        return Err(CliError::Usage(
            "name a resource: --topic, --group, --transactional-id or --cluster".into(),
        ));
    }
    if a.allow_principal.is_empty() && a.deny_principal.is_empty() {
        return Err(CliError::Usage(
            "name a principal: --allow-principal or --deny-principal".into(),
        ));
    }
    let principals = a
        .allow_principal
        .iter()
        .map(|p| (p, AclPermission::Allow))
        .chain(a.deny_principal.iter().map(|p| (p, AclPermission::Deny)));
    let mut acls = Vec::new();
    for (principal, permission) in principals {
        for (resource_type, name) in &resources {
            for operation in &a.operation {
                acls.push(AclEntry {
                    resource_type: resource_type.code(),
                    resource_name: name.clone(),
                    pattern_type: a.resource_pattern_type.code(),
                    principal: principal.clone(),
                    host: a.host.clone(),
                    operation: operation.code(),
                    permission: permission.code(),
                });
            }
        }
    }
    let admin = Admin::new(a.conn.connect().await?);
    admin.create_acls(&acls).await?;
    println!("created {} ACL(s)", acls.len());
    Ok(())
}

/// One filter per resource named, or one for everything.
fn filters(a: &FilterArgs) -> Vec<AclFilterSpec> {
    let base = AclFilterSpec {
        resource_type: ResourceType::Any.code(),
        resource_name: None,
        pattern_type: a.resource_pattern_type.code(),
        principal: a.principal.clone(),
        host: None,
        operation: a.operation.unwrap_or(AclOperation::Any).code(),
        permission: AclPermission::Any.code(),
    };
    let resources = a.resources.list();
    if resources.is_empty() {
        return vec![base];
    }
    resources
        .into_iter()
        .map(|(resource_type, name)| AclFilterSpec {
            resource_type: resource_type.code(),
            resource_name: Some(name),
            ..base.clone()
        })
        .collect()
}

fn name_of<T>(code: i8, parse: fn(i8) -> Option<T>, name: fn(T) -> &'static str) -> String {
    parse(code).map_or_else(|| format!("UNKNOWN({code})"), |v| name(v).to_owned())
}

fn print(acls: &[AclEntry], out: &OutputArgs) {
    let row = |a: &AclEntry| {
        [
            name_of(a.resource_type, ResourceType::from_code, ResourceType::name),
            a.resource_name.clone(),
            name_of(a.pattern_type, PatternType::from_code, PatternType::name),
            a.principal.clone(),
            a.host.clone(),
            name_of(a.operation, AclOperation::from_code, AclOperation::name),
            name_of(a.permission, AclPermission::from_code, AclPermission::name),
        ]
    };
    if out.is_data() {
        let keys = [
            "resource_type",
            "resource_name",
            "pattern_type",
            "principal",
            "host",
            "operation",
            "permission",
        ];
        let v: Vec<serde_json::Value> = acls
            .iter()
            .map(|a| {
                let fields = keys
                    .iter()
                    .zip(row(a))
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v)));
                serde_json::Value::Object(fields.collect())
            })
            .collect();
        out.print(&serde_json::Value::Array(v));
        return;
    }
    let rows: Vec<Vec<String>> = acls.iter().map(|a| row(a).to_vec()).collect();
    print_table(
        &[
            "RESOURCE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    );
}

async fn list(a: FilterArgs) -> Result<(), CliError> {
    let admin = Admin::new(a.conn.connect().await?);
    let mut acls = Vec::new();
    for filter in filters(&a) {
        acls.extend(admin.describe_acls(&filter).await?);
    }
    print(&acls, &a.out);
    Ok(())
}

async fn delete(a: FilterArgs) -> Result<(), CliError> {
    let admin = Admin::new(a.conn.connect().await?);
    let deleted = admin.delete_acls(&filters(&a)).await?;
    print(&deleted, &a.out);
    Ok(())
}
