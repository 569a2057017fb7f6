//! `sluice schema register|get|list|delete|check|config`: the schema
//! registry's REST API (Confluent's, on `schema_registry_listener`) from
//! the command line, as Confluent's `confluent schema-registry` commands
//! and `rpk registry` offer it.
//!
//! Every subcommand is one or two HTTP calls; what the registry answers is
//! printed as it comes (JSON with `--format json`, else a table or the
//! schema text), and a registry error is printed with its code and message
//! and exits 1.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::common::{CliError, http_json, percent_encode as encode, print_table};
use crate::output::{Format, print_data};

/// How long one registry call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Longest schema file read, in bytes: the registry refuses more than 1 MiB.
const MAX_SCHEMA_FILE_BYTES: u64 = 1024 * 1024;

/// Register, read, check and delete schemas in the schema registry.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The registry's `host:port` (the broker's `schema_registry_listener`).
    #[arg(
        long,
        global = true,
        env = "SLUICE_SCHEMA_REGISTRY",
        default_value = "127.0.0.1:8081",
        value_name = "HOST:PORT"
    )]
    registry: String,
    /// Print what the registry answers as JSON (the same as --format json).
    #[arg(long, global = true, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Register a schema under a subject; prints its id.
    Register(RegisterArgs),
    /// Print a subject's version (default: the latest), or a schema by id.
    #[command(disable_version_flag = true)]
    Get(GetArgs),
    /// List subjects, or one subject's versions.
    List(ListArgs),
    /// Delete a subject or one version (soft, or --permanent after a soft delete).
    #[command(disable_version_flag = true)]
    Delete(DeleteArgs),
    /// Check whether a schema could be registered under a subject.
    #[command(disable_version_flag = true)]
    Check(CheckArgs),
    /// Print or set the compatibility level, globally or for a subject.
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
struct SchemaSource {
    /// File holding the schema (`.avsc`, `.json`, `.proto`).
    #[arg(long, value_name = "FILE", conflicts_with = "schema")]
    file: Option<PathBuf>,
    /// The schema text itself.
    #[arg(long, value_name = "TEXT")]
    schema: Option<String>,
    /// AVRO, JSON or PROTOBUF (default: from the file's extension, else AVRO).
    #[arg(long = "type", value_name = "TYPE")]
    schema_type: Option<String>,
    /// A referenced schema, `name=subject:version` (repeatable).
    #[arg(long = "reference", value_name = "NAME=SUBJECT:VERSION")]
    references: Vec<String>,
}

#[derive(Debug, Args)]
struct RegisterArgs {
    /// The subject (TopicNameStrategy: `<topic>-value` or `<topic>-key`).
    subject: String,
    #[command(flatten)]
    source: SchemaSource,
    /// Store the normalised form.
    #[arg(long)]
    normalize: bool,
}

#[derive(Debug, Args)]
struct GetArgs {
    /// The subject (omit with --id).
    #[arg(required_unless_present = "id")]
    subject: Option<String>,
    /// The version: a number or `latest`.
    #[arg(
        long = "version",
        id = "subject_version",
        default_value = "latest",
        conflicts_with = "id"
    )]
    version: String,
    /// A global schema id instead of a subject.
    #[arg(long)]
    id: Option<i32>,
    /// Include soft-deleted versions.
    #[arg(long)]
    deleted: bool,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// List this subject's versions instead of the subjects.
    subject: Option<String>,
    /// Include soft-deleted subjects or versions.
    #[arg(long)]
    deleted: bool,
    /// Only subjects starting with this.
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    /// The subject.
    subject: String,
    /// Delete this version only (a number or `latest`).
    #[arg(long = "version", id = "subject_version")]
    version: Option<String>,
    /// Delete for good (the version or subject must be soft-deleted first).
    #[arg(long)]
    permanent: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The subject.
    subject: String,
    #[command(flatten)]
    source: SchemaSource,
    /// Check against this version only (default: what the level compares with).
    #[arg(long = "version", id = "subject_version")]
    version: Option<String>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// A subject (default: the global level).
    subject: Option<String>,
    /// Set the level: BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
    /// FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE.
    #[arg(long, value_name = "LEVEL")]
    set: Option<String>,
    /// Remove the subject's own level (it then follows the global one).
    #[arg(long, conflicts_with = "set", requires = "subject")]
    delete: bool,
}

/// Runs a `sluice schema` command.
pub async fn run(args: SchemaArgs) -> Result<(), CliError> {
    let format = if args.json { Format::Json } else { args.format };
    let client = Client {
        addr: args.registry.clone(),
        json: format != Format::Text,
        format,
    };
    match args.command {
        SchemaCommand::Register(a) => register(&client, a).await,
        SchemaCommand::Get(a) => get(&client, a).await,
        SchemaCommand::List(a) => list(&client, a).await,
        SchemaCommand::Delete(a) => delete(&client, a).await,
        SchemaCommand::Check(a) => check(&client, a).await,
        SchemaCommand::Config(a) => config(&client, a).await,
    }
}

struct Client {
    addr: String,
    /// Print the registry's answer (as JSON or YAML) instead of text.
    json: bool,
    format: Format,
}

impl Client {
    /// One call; a 2xx answer's JSON, else the registry's error as a CliError.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let body = body.map(|b| b.to_string());
        http_json(
            &self.addr,
            method,
            path,
            body.as_deref(),
            TIMEOUT,
            (
                "schema registry",
                "is the schema registry listening there? see --registry",
            ),
        )
        .await
    }

    fn print(&self, value: &Value) {
        print_data(self.format, value);
    }
}

fn schema_body(source: &SchemaSource) -> Result<Value, CliError> {
    let text = match (&source.file, &source.schema) {
        (Some(path), _) => {
            let meta =
                std::fs::metadata(path).map_err(CliError::io(format!("{}", path.display())))?;
            if meta.len() > MAX_SCHEMA_FILE_BYTES {
                return Err(CliError::Usage(format!(
                    "{} is {} bytes; the registry takes schemas of at most {MAX_SCHEMA_FILE_BYTES}",
                    path.display(),
                    meta.len()
                )));
            }
            std::fs::read_to_string(path).map_err(CliError::io(format!("{}", path.display())))?
        }
        (None, Some(text)) => text.clone(),
        (None, None) => {
            return Err(CliError::Usage(
                "give the schema with --file FILE or --schema TEXT".into(),
            ));
        }
    };
    let schema_type = match &source.schema_type {
        Some(t) => t.to_ascii_uppercase(),
        None => match source
            .file
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
        {
            Some("proto") => "PROTOBUF".to_owned(),
            Some("json") => "JSON".to_owned(),
            _ => "AVRO".to_owned(),
        },
    };
    let mut references = Vec::new();
    for r in &source.references {
        let parsed = r.split_once('=').and_then(|(name, rest)| {
            let (subject, version) = rest.rsplit_once(':')?;
            Some((name, subject, version.parse::<i32>().ok()?))
        });
        let Some((name, subject, version)) = parsed else {
            return Err(CliError::Usage(format!(
                "--reference {r:?}: expected NAME=SUBJECT:VERSION"
            )));
        };
        references.push(json!({"name": name, "subject": subject, "version": version}));
    }
    let mut body = json!({"schema": text, "schemaType": schema_type});
    if !references.is_empty() {
        body["references"] = Value::Array(references);
    }
    Ok(body)
}

async fn register(client: &Client, a: RegisterArgs) -> Result<(), CliError> {
    let body = schema_body(&a.source)?;
    let path = format!(
        "/subjects/{}/versions?normalize={}",
        encode(&a.subject),
        a.normalize
    );
    let answer = client.call("POST", &path, Some(body)).await?;
    if client.json {
        client.print(&answer);
    } else {
        println!("registered under {}: id {}", a.subject, answer["id"]);
    }
    Ok(())
}

async fn get(client: &Client, a: GetArgs) -> Result<(), CliError> {
    let answer = match (a.id, &a.subject) {
        (Some(id), _) => {
            client
                .call("GET", &format!("/schemas/ids/{id}"), None)
                .await?
        }
        (None, Some(subject)) => {
            let path = format!(
                "/subjects/{}/versions/{}?deleted={}",
                encode(subject),
                encode(&a.version),
                a.deleted
            );
            client.call("GET", &path, None).await?
        }
        (None, None) => return Err(CliError::Usage("give a subject or --id".into())),
    };
    if client.json {
        client.print(&answer);
        return Ok(());
    }
    if let Some(subject) = answer.get("subject").and_then(Value::as_str) {
        println!(
            "subject {subject} version {} id {} type {}",
            answer["version"],
            answer["id"],
            answer
                .get("schemaType")
                .and_then(Value::as_str)
                .unwrap_or("AVRO")
        );
    }
    println!("{}", answer["schema"].as_str().unwrap_or_default());
    Ok(())
}

async fn list(client: &Client, a: ListArgs) -> Result<(), CliError> {
    let answer = match &a.subject {
        Some(subject) => {
            let path = format!(
                "/subjects/{}/versions?deleted={}",
                encode(subject),
                a.deleted
            );
            client.call("GET", &path, None).await?
        }
        None => {
            let prefix = a.prefix.as_deref().map(encode).unwrap_or_default();
            let path = format!("/subjects?deleted={}&subjectPrefix={prefix}", a.deleted);
            client.call("GET", &path, None).await?
        }
    };
    if client.json {
        client.print(&answer);
        return Ok(());
    }
    let items = answer.as_array().cloned().unwrap_or_default();
    let header = if a.subject.is_some() {
        "VERSION"
    } else {
        "SUBJECT"
    };
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| vec![v.as_str().map_or_else(|| v.to_string(), str::to_owned)])
        .collect();
    print_table(&[header], &rows);
    Ok(())
}

async fn delete(client: &Client, a: DeleteArgs) -> Result<(), CliError> {
    let path = match &a.version {
        Some(v) => format!(
            "/subjects/{}/versions/{}?permanent={}",
            encode(&a.subject),
            encode(v),
            a.permanent
        ),
        None => format!("/subjects/{}?permanent={}", encode(&a.subject), a.permanent),
    };
    let answer = client.call("DELETE", &path, None).await?;
    if client.json {
        client.print(&answer);
    } else {
        let how = if a.permanent { "permanently" } else { "soft" };
        println!("deleted ({how}) {}: {answer}", a.subject);
    }
    Ok(())
}

async fn check(client: &Client, a: CheckArgs) -> Result<(), CliError> {
    let body = schema_body(&a.source)?;
    let path = match &a.version {
        Some(v) => format!(
            "/compatibility/subjects/{}/versions/{}?verbose=true",
            encode(&a.subject),
            encode(v)
        ),
        None => format!(
            "/compatibility/subjects/{}/versions?verbose=true",
            encode(&a.subject)
        ),
    };
    let answer = client.call("POST", &path, Some(body)).await?;
    if client.json {
        client.print(&answer);
    }
    if answer["is_compatible"].as_bool() == Some(true) {
        if !client.json {
            println!("compatible with {}", a.subject);
        }
        return Ok(());
    }
    let reasons: Vec<String> = answer["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Err(CliError::Other(format!(
        "incompatible with {}: {}",
        a.subject,
        reasons.join("; ")
    )))
}

async fn config(client: &Client, a: ConfigArgs) -> Result<(), CliError> {
    let path = match &a.subject {
        Some(s) => format!("/config/{}", encode(s)),
        None => "/config".to_owned(),
    };
    let answer = if let Some(level) = &a.set {
        client
            .call(
                "PUT",
                &path,
                Some(json!({"compatibility": level.to_ascii_uppercase()})),
            )
            .await?
    } else if a.delete {
        client.call("DELETE", &path, None).await?
    } else {
        let query = if a.subject.is_some() {
            "?defaultToGlobal=true"
        } else {
            ""
        };
        client.call("GET", &format!("{path}{query}"), None).await?
    };
    if client.json {
        client.print(&answer);
    } else {
        let level = answer
            .get("compatibilityLevel")
            .or_else(|| answer.get("compatibility"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        match (&a.subject, a.delete) {
            (Some(s), true) => println!("{s}: its own level ({level}) removed"),
            (Some(s), false) => println!("{s}: {level}"),
            (None, _) => println!("global: {level}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_percent_encoded_in_paths() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn references_and_types_come_from_the_arguments() {
        let source = SchemaSource {
            file: None,
            schema: Some("\"int\"".into()),
            schema_type: Some("json".into()),
            references: vec!["io.x.A=a-value:2".into()],
        };
        let body = schema_body(&source).expect("body");
        assert_eq!(body["schemaType"], "JSON");
        assert_eq!(
            body["references"],
            json!([{"name": "io.x.A", "subject": "a-value", "version": 2}])
        );
        let bad = SchemaSource {
            references: vec!["no-version".into()],
            ..source
        };
        assert!(matches!(schema_body(&bad), Err(CliError::Usage(_))));
    }
}
