//! The `sluice` binary: one command-line entry point for the broker and
//! the CLI tools. Each subcommand lives in its own module: `serve` wires the
//! broker's crates together; `topic`, `produce`, `consume`, `group`,
//! `status`/`stop`, `bench` and `kv` are clients. Client commands print one `error: ...` line and exit 1 on
//! failure; they never panic on a bad broker, topic or argument.

mod acl;
mod bench;
mod chart;
mod cluster;
mod common;
mod consume;
mod group;
mod input_format;
mod kv;
mod offset_spec;
mod output;
mod produce;
mod profile;
mod profile_store;
mod quota;
mod schema;
mod serve;
mod status;
mod tls;
mod topic;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sluice_broker::config::{ConfigLoader, Source};

/// Sluice: a Kafka-compatible streaming platform in one binary.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (embedded single-node defaults: ./data, 127.0.0.1:9092).
    Serve(ServeArgs),
    /// Show a broker's id, version, uptime, listeners, counts and disk use.
    Status(status::StatusArgs),
    /// Ask a running broker to shut down cleanly (pid from its data dir).
    Stop(status::StopArgs),
    /// Create, list, describe, alter, grow and delete topics.
    Topic(topic::TopicArgs),
    /// Write records from stdin, a file, or --value.
    Produce(produce::ProduceArgs),
    /// Read records; follows new ones like `tail -f` unless told to stop.
    Consume(consume::ConsumeArgs),
    /// List, describe (lag), reset offsets of, and delete consumer groups.
    Group(group::GroupArgs),
    /// Measure produce, consume and end-to-end throughput and latency.
    Bench(bench::BenchArgs),
    /// Show the metadata quorum; add (promote) and remove nodes.
    Cluster(cluster::ClusterArgs),
    /// Generate a throwaway test CA and certificates (tests, quick starts).
    Tls(tls::TlsArgs),
    /// Create, list and delete ACLs (Kafka's kafka-acls.sh).
    Acl(acl::AclArgs),
    /// Set, list and delete client quotas (byte and request rates).
    Quota(quota::QuotaArgs),
    /// Create, list and delete SCRAM users (SASL logins).
    User(user::UserArgs),
    /// Register, read, check and delete schemas in the schema registry.
    Schema(schema::SchemaArgs),
    /// Read a compacted topic as a table: a key's latest value, live keys.
    Kv(kv::KvArgs),
    /// Named connection settings (brokers, SASL) like rpk's profiles.
    Profile(profile::ProfileArgs),
    /// Print a shell completion script: `source <(sluice completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Flags for `sluice serve`. Each flag overrides the config file and the
/// `SLUICE_*` environment.
#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML config file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (config key `data_dir`, env SLUICE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
    /// Kafka listener host:port (config key `kafka_listener`, env SLUICE_KAFKA_LISTENER).
    #[arg(long, value_name = "ADDR")]
    kafka_listener: Option<String>,
    /// HTTP listener host:port (config key `http_listener`, env SLUICE_HTTP_LISTENER).
    #[arg(long, value_name = "ADDR")]
    http_listener: Option<String>,
    /// Schema registry listener host:port, empty for none (config key
    /// `schema_registry_listener`, env SLUICE_SCHEMA_REGISTRY_LISTENER).
    #[arg(long, value_name = "ADDR")]
    schema_registry_listener: Option<String>,
    /// Node id (config key `node_id`, env SLUICE_NODE_ID).
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
    /// Set any config key, e.g. `--set log.segment_bytes=1048576`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    init_tracing(if serving { "info" } else { "warn" });
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Status(args) => common::run(status::status(args)),
        Command::Stop(args) => common::run(status::stop(args)),
        Command::Topic(args) => common::run(topic::run(args)),
        Command::Produce(args) => common::run(produce::run(args)),
        Command::Consume(args) => common::run(consume::run(args)),
        Command::Group(args) => common::run(group::run(args)),
        Command::Bench(args) => common::run(bench::run(args)),
        Command::Cluster(args) => common::run(cluster::run(args)),
        Command::Tls(args) => common::run(tls::run(args)),
        Command::Acl(args) => common::run(acl::run(args)),
        Command::Quota(args) => common::run(quota::run(args)),
        Command::User(args) => common::run(user::run(args)),
        Command::Schema(args) => common::run(schema::run(args)),
        Command::Kv(args) => common::run(kv::run(args)),
        Command::Profile(args) => common::run(profile::run(args)),
        Command::Completion { shell } => completion(shell),
    }
}

/// Writes the completion script for `shell` to stdout. The script is built
/// in memory first so a closed pipe is an error line, not a panic.
fn completion(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the completion script: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    // openraft narrates every election and replication step at info, and
    // logs expected races at start-up (votes crossing) as warnings; its
    // errors still show. `SLUICE_LOG=openraft=info` brings the rest back.
    let filter = EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},openraft=error")));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut config = match load_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let nofile = raise_nofile_limit();
    if config.log.max_open_files == 0 {
        config.log.max_open_files = sluice_broker::config::derive_max_open_files(nofile);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr; a log line with the same text would print
            // it twice to anyone reading the terminal or the journal.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The soft RLIMIT_NOFILE to ask for, given the current soft and hard
/// limits: the hard limit, the most an unprivileged process may have, and
/// never less than it has already.
fn target_nofile_limit(soft: u64, hard: u64) -> u64 {
    soft.max(hard)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, logs both values, and
/// returns the limit now in force. Every partition's active segment and
/// every connection needs descriptors; distributions default the soft limit
/// to 1024 while the hard limit is often far higher.
fn raise_nofile_limit() -> u64 {
    let resource = rlimit::Resource::NOFILE;
    let (soft, hard) = match rlimit::getrlimit(resource) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!("cannot read RLIMIT_NOFILE: {e}; assuming 1024");
            return 1024;
        }
    };
    let target = target_nofile_limit(soft, hard);
    if target == soft {
        tracing::info!(soft, hard, "RLIMIT_NOFILE already at its hard limit");
        return soft;
    }
    match rlimit::setrlimit(resource, target, hard) {
        Ok(()) => {
            tracing::info!(before = soft, after = target, hard, "raised RLIMIT_NOFILE");
            target
        }
        Err(e) => {
            tracing::warn!(soft, hard, "cannot raise RLIMIT_NOFILE: {e}");
            soft
        }
    }
}

fn load_config(
    args: &ServeArgs,
) -> Result<sluice_broker::config::Config, Box<dyn std::error::Error>> {
    let mut loader = ConfigLoader::from_file(args.config.as_deref())?;
    loader.apply_env(std::env::vars())?;
    let flags = [
        ("data_dir", &args.data_dir),
        ("kafka_listener", &args.kafka_listener),
        ("http_listener", &args.http_listener),
        ("schema_registry_listener", &args.schema_registry_listener),
        ("node_id", &args.node_id),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            // Paths and addresses are strings; quote them so TOML never
            // reads `127.0.0.1:9092` as something else.
            let raw = if key == "node_id" {
                value.clone()
            } else {
                toml_string(value)
            };
            loader.set(key, &raw, Source::Flag)?;
        }
    }
    for spec in &args.overrides {
        loader.apply_override(spec)?;
    }
    Ok(loader.build()?)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}; only Ctrl-C will stop the broker");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sluice serve` refuses `SLUICE_*` variables that name no config key,
    /// so every variable a client command reads must be on the list of
    /// other tools' variables, or setting it in a shell would stop the
    /// broker started from that shell.
    #[test]
    fn every_environment_variable_the_cli_reads_is_accepted_by_serve() {
        fn walk(cmd: &clap::Command, found: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if let Some(env) = arg.get_env() {
                    found.push(env.to_string_lossy().into_owned());
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, found);
            }
        }
        let mut found = Vec::new();
        walk(&<Cli as clap::CommandFactory>::command(), &mut found);
        found.sort();
        found.dedup();
        assert!(found.contains(&"SLUICE_PROFILE".to_owned()), "{found:?}");
        let config_keys = ["SLUICE_DATA_DIR"];
        for name in found {
            assert!(
                config_keys.contains(&name.as_str())
                    || sluice_broker::config::OTHER_SLUICE_VARS.contains(&name.as_str()),
                "{name} is read by the CLI but refused by `sluice serve`"
            );
        }
    }

    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
        assert_eq!(target_nofile_limit(1024, 524_288), 524_288);
        assert_eq!(target_nofile_limit(20_000, 20_000), 20_000);
        // Never lowered, even if the values are odd.
        assert_eq!(target_nofile_limit(4096, 1024), 4096);
    }

    #[test]
    fn raising_the_limit_leaves_soft_at_hard() {
        let after = raise_nofile_limit();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        assert_eq!((after, soft), (hard, hard));
    }
}
