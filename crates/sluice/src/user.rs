//! `sluice user create|list|delete`: SCRAM users through
//! AlterUserScramCredentials and DescribeUserScramCredentials, as
//! `kafka-configs.sh --entity-type users` manages them.
//!
//! The password is read from a file or stdin (never from an argument, which
//! the process list would show), salted and hashed here, and only the
//! salted form is sent. Nothing this command prints or logs holds a secret.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sluice_client::users::{DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS, Mechanism};
use sluice_client::{Admin, ScramUpsert};

use crate::common::{CliError, ConnArgs, print_table};
use crate::output::OutputArgs;

/// Longest password accepted, in bytes. Passwords are typed or generated
/// secrets far shorter than this; a bigger input is almost certainly the
/// wrong file (a key, a log), and reading it whole would be wasted memory.
const MAX_PASSWORD_BYTES: usize = 1024;

/// Manage SCRAM users (the principals `User:<name>` that SASL logs in).
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user, or change its password for the mechanism.
    Create(CreateArgs),
    /// List users with their mechanisms and iteration counts (no secrets).
    List(ListArgs),
    /// Delete a user's credentials (every mechanism unless one is named).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The user name.
    name: String,
    /// File holding the password (one trailing newline is ignored).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "password_stdin",
        conflicts_with = "password_stdin"
    )]
    password_file: Option<PathBuf>,
    /// Read the password from stdin (one trailing newline is ignored).
    #[arg(long)]
    password_stdin: bool,
    /// SCRAM-SHA-512 or SCRAM-SHA-256.
    #[arg(long, default_value = "SCRAM-SHA-512", value_parser = parse_mechanism, value_name = "MECHANISM")]
    mechanism: Mechanism,
    /// PBKDF2 iterations, 4096..=16384 (Kafka's bounds).
    #[arg(long, default_value_t = DEFAULT_ITERATIONS, value_name = "N")]
    iterations: i32,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Users to show (all users with credentials if none).
    names: Vec<String>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The user name.
    name: String,
    /// Delete only this mechanism's credential.
    #[arg(long, value_parser = parse_mechanism, value_name = "MECHANISM")]
    mechanism: Option<Mechanism>,
}

fn parse_mechanism(s: &str) -> Result<Mechanism, String> {
    Mechanism::from_name(&s.to_ascii_uppercase()).ok_or_else(|| {
        format!("'{s}' is not a SCRAM mechanism: use SCRAM-SHA-512 or SCRAM-SHA-256")
    })
}

/// Runs a `user` subcommand.
pub async fn run(args: UserArgs) -> Result<(), CliError> {
    match args.command {
        UserCommand::Create(a) => {
            check_iterations(a.iterations)?;
            let password = match &a.password_file {
                Some(path) => read_password(
                    std::fs::File::open(path)
                        .map_err(CliError::io(format!("reading {}", path.display())))?,
                    &path.display().to_string(),
                )?,
                None => read_password(std::io::stdin().lock(), "stdin")?,
            };
            let admin = Admin::new(a.conn.connect().await?);
            let upsert = ScramUpsert {
                name: &a.name,
                mechanism: a.mechanism,
                iterations: a.iterations,
                password: password.as_bytes(),
            };
            admin.alter_user_scram_credentials(&[upsert], &[]).await?;
            println!(
                "set {} credential of user {} ({} iterations)",
                a.mechanism, a.name, a.iterations
            );
        }
        UserCommand::List(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            let names: Vec<&str> = a.names.iter().map(String::as_str).collect();
            let mut users = admin.describe_user_scram_credentials(&names).await?;
            users.sort_by(|x, y| x.name.cmp(&y.name));
            if a.out.is_data() {
                let v: Vec<_> = users
                    .iter()
                    .map(|u| {
                        let credentials: Vec<_> = u
                            .credentials
                            .iter()
                            .map(|c| {
                                serde_json::json!({
                                    "mechanism": mechanism_label(c.mechanism, c.mechanism_type),
                                    "iterations": c.iterations,
                                })
                            })
                            .collect();
                        serde_json::json!({ "name": u.name, "credentials": credentials })
                    })
                    .collect();
                a.out.print(&serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .flat_map(|u| {
                        u.credentials.iter().map(|c| {
                            vec![
                                u.name.clone(),
                                mechanism_label(c.mechanism, c.mechanism_type),
                                c.iterations.to_string(),
                            ]
                        })
                    })
                    .collect();
                print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
            }
        }
        UserCommand::Delete(a) => {
            let admin = Admin::new(a.conn.connect().await?);
            let mechanisms: Vec<Mechanism> = match a.mechanism {
                Some(m) => vec![m],
                // Every mechanism the user has; an unknown user fails here
                // with the broker's RESOURCE_NOT_FOUND.
                None => admin
                    .describe_user_scram_credentials(&[a.name.as_str()])
                    .await?
                    .into_iter()
                    .flat_map(|u| u.credentials)
                    .filter_map(|c| c.mechanism)
                    .collect(),
            };
            if mechanisms.is_empty() {
                return Err(CliError::Other(format!(
                    "user {} has no SCRAM-SHA-256 or SCRAM-SHA-512 credential",
                    a.name
                )));
            }
            let deletions: Vec<(&str, Mechanism)> =
                mechanisms.iter().map(|&m| (a.name.as_str(), m)).collect();
            admin.alter_user_scram_credentials(&[], &deletions).await?;
            println!(
                "deleted {} credential{} of user {}",
                mechanisms
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                if mechanisms.len() == 1 { "" } else { "s" },
                a.name
            );
        }
    }
    Ok(())
}

fn mechanism_label(mechanism: Option<Mechanism>, wire: i8) -> String {
    match mechanism {
        Some(m) => m.name().to_owned(),
        None => format!("UNKNOWN({wire})"),
    }
}

/// Refuses iteration counts the broker would refuse (UNACCEPTABLE_CREDENTIAL)
/// before spending the local PBKDF2 time on them.
fn check_iterations(iterations: i32) -> Result<(), CliError> {
    if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--iterations {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}, the range Kafka accepts"
        )))
    }
}

/// The password in `input`: UTF-8, one trailing newline removed, not
/// empty, at most [`MAX_PASSWORD_BYTES`].
fn read_password(input: impl Read, source: &str) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    // One byte more than allowed tells "too long" from "exactly the limit".
    input
        .take(MAX_PASSWORD_BYTES as u64 + 2)
        .read_to_end(&mut bytes)
        .map_err(CliError::io(format!("reading {source}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Usage(format!("the password in {source} is not UTF-8")))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(CliError::Usage(format!(
            "the password in {source} is empty"
        )));
    }
    if text.len() > MAX_PASSWORD_BYTES {
        return Err(CliError::Usage(format!(
            "the password in {source} is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_loses_one_trailing_newline_only() {
        assert_eq!(
            read_password(&b"s3cret\n"[..], "f").expect("password"),
            "s3cret"
        );
        assert_eq!(
            read_password(&b"s3cret\r\n"[..], "f").expect("password"),
            "s3cret"
        );
        assert_eq!(
            read_password(&b" s3 \n\n"[..], "f").expect("password"),
            " s3 \n"
        );
    }

    #[test]
    fn an_empty_or_oversized_password_is_refused() {
        for input in [&b""[..], &b"\n"[..]] {
            let e = read_password(input, "pw.txt")
                .expect_err("refused")
                .to_string();
            assert!(e.contains("pw.txt") && e.contains("empty"), "{e}");
        }
        let max = vec![b'x'; MAX_PASSWORD_BYTES];
        assert!(read_password(&max[..], "f").is_ok());
        let long = vec![b'x'; MAX_PASSWORD_BYTES + 1];
        assert!(read_password(&long[..], "f").is_err());
    }

    #[test]
    fn iterations_outside_kafkas_bounds_are_refused() {
        assert!(check_iterations(4096).is_ok());
        assert!(check_iterations(16384).is_ok());
        assert!(check_iterations(4095).is_err());
        assert!(check_iterations(16385).is_err());
    }

    #[test]
    fn mechanisms_parse_by_sasl_name() {
        assert_eq!(parse_mechanism("SCRAM-SHA-256"), Ok(Mechanism::Sha256));
        assert_eq!(parse_mechanism("scram-sha-512"), Ok(Mechanism::Sha512));
        assert!(parse_mechanism("PLAIN").is_err());
    }
}
