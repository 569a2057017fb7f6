//! `sluice profile ...`: named connection settings like rpk's profiles,
//! kept in `$XDG_CONFIG_HOME/sluice/profiles.toml` (else
//! `~/.config/sluice/profiles.toml`). The current profile gives every
//! client command its brokers, SASL and TLS settings when the command line
//! does not; `-X key=value` overrides single settings. Passwords and keys
//! are never stored: a profile names the files that hold them.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::common::CliError;
use crate::output::OutputArgs;
use crate::profile_store::{Profile, load, profiles_path, save};

/// Longest profile name.
const MAX_PROFILE_NAME_CHARS: usize = 64;

/// Manage CLI profiles.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[command(subcommand)]
    command: ProfileCommand,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Create (or replace) a profile and make it the current one.
    Create(CreateArgs),
    /// Make a profile the current one.
    Use {
        /// Profile name.
        name: String,
    },
    /// List profiles; the current one is marked `*`.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a profile.
    Delete {
        /// Profile name.
        name: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Profile name (letters, digits, `.`, `_`, `-`).
    name: String,
    /// Bootstrap servers, comma-separated host:port.
    #[arg(long, short = 'b', value_name = "HOST:PORT")]
    brokers: String,
    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, value_name = "MECHANISM")]
    sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, value_name = "NAME")]
    sasl_username: Option<String>,
    /// File holding the SASL password (the password itself is not stored).
    #[arg(long, value_name = "FILE")]
    sasl_password_file: Option<PathBuf>,
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, value_parser = crate::common::parse_security_protocol, value_name = "PROTOCOL")]
    security_protocol: Option<sluice_broker::config::SecurityProtocol>,
    /// PEM file of the CAs that signed the brokers' certificates.
    #[arg(long, value_name = "FILE")]
    tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of `--tls-cert-file` (only its path is stored).
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
}

/// `path` made absolute against the current directory, so a profile's
/// files are found whichever directory a later command runs in.
fn absolute(path: Option<PathBuf>) -> Result<Option<PathBuf>, CliError> {
    path.map(|p| {
        std::path::absolute(&p).map_err(CliError::io(format!("resolving {}", p.display())))
    })
    .transpose()
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_PROFILE_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "'{name}' is not a profile name (1 to {MAX_PROFILE_NAME_CHARS} letters, digits, '.', '_', '-')"
        )))
    }
}

/// Runs `sluice profile`.
pub async fn run(args: ProfileArgs) -> Result<(), CliError> {
    let path = profiles_path()?;
    let mut file = load(&path)?;
    match args.command {
        ProfileCommand::Create(a) => {
            check_name(&a.name)?;
            file.profiles.insert(
                a.name.clone(),
                Profile {
                    brokers: a.brokers,
                    sasl_mechanism: a.sasl_mechanism,
                    sasl_username: a.sasl_username,
                    sasl_password_file: absolute(a.sasl_password_file)?,
                    security_protocol: a.security_protocol.map(|p| p.name().to_owned()),
                    tls_ca_file: absolute(a.tls_ca_file)?,
                    tls_cert_file: absolute(a.tls_cert_file)?,
                    tls_key_file: absolute(a.tls_key_file)?,
                },
            );
            file.current = Some(a.name.clone());
            save(&path, &file)?;
            println!("created profile {} and made it current", a.name);
        }
        ProfileCommand::Use { name } => {
            if !file.profiles.contains_key(&name) {
                return Err(CliError::Usage(format!("no profile '{name}'")));
            }
            file.current = Some(name.clone());
            save(&path, &file)?;
            println!("using profile {name}");
        }
        ProfileCommand::Delete { name } => {
            if file.profiles.remove(&name).is_none() {
                return Err(CliError::Usage(format!("no profile '{name}'")));
            }
            if file.current.as_deref() == Some(name.as_str()) {
                file.current = None;
            }
            save(&path, &file)?;
            println!("deleted profile {name}");
        }
        ProfileCommand::List { out } => {
            if out.is_data() {
                let v = serde_json::json!({
                    "current": file.current,
                    "profiles": file.profiles,
                });
                out.print(&v);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = file
                .profiles
                .iter()
                .map(|(name, p)| {
                    let mark = if file.current.as_deref() == Some(name.as_str()) {
                        "*"
                    } else {
                        ""
                    };
                    vec![
                        format!("{name}{mark}"),
                        p.brokers.clone(),
                        p.security_protocol
                            .clone()
                            .unwrap_or_else(|| "-".to_owned()),
                        p.sasl_mechanism.clone().unwrap_or_else(|| "-".to_owned()),
                        p.sasl_username.clone().unwrap_or_else(|| "-".to_owned()),
                    ]
                })
                .collect();
            crate::common::print_table(&["NAME", "BROKERS", "PROTOCOL", "SASL", "USER"], &rows);
        }
    }
    Ok(())
}
