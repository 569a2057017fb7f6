//! `sluice profile ...`: named connection settings like rpk's profiles,
//! kept in `$XDG_CONFIG_HOME/sluice/profiles.toml` (else
//! `~/.config/sluice/profiles.toml`). The current profile gives every
//! client command its brokers and SASL settings when the command line does
//! not; `-X key=value` overrides single settings. Passwords are never
//! stored: a profile names a password file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::common::CliError;
use crate::output::OutputArgs;

/// Largest profiles file read; it holds a few lines per profile.
const MAX_PROFILES_FILE_BYTES: u64 = 1024 * 1024;
/// Longest profile name.
const MAX_PROFILE_NAME_CHARS: usize = 64;

/// One profile's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Bootstrap servers, comma-separated host:port.
    pub brokers: String,
    /// SASL mechanism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_username: Option<String>,
    /// File holding the SASL password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_password_file: Option<PathBuf>,
}

/// The profiles file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ProfilesFile {
    /// The profile client commands use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

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
}

/// Where the profiles live.
pub fn profiles_path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(CliError::Other(
                    "cannot find the profiles file: neither XDG_CONFIG_HOME nor HOME is set"
                        .to_owned(),
                ));
            }
        },
    };
    Ok(base.join("sluice").join("profiles.toml"))
}

fn load(path: &Path) -> Result<ProfilesFile, CliError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfilesFile::default()),
        Err(e) => return Err(CliError::io(format!("reading {}", path.display()))(e)),
    };
    let mut text = String::new();
    file.take(MAX_PROFILES_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(CliError::io(format!("reading {}", path.display())))?;
    if text.len() as u64 > MAX_PROFILES_FILE_BYTES {
        return Err(CliError::Other(format!(
            "{} is over {MAX_PROFILES_FILE_BYTES} bytes",
            path.display()
        )));
    }
    toml::from_str(&text).map_err(|e| {
        let why = e.message().to_owned();
        CliError::Other(format!("{}: {why}", path.display()))
    })
}

/// Writes to a temporary file and renames it into place, so a crash never
/// leaves a half-written profiles file.
fn save(path: &Path, file: &ProfilesFile) -> Result<(), CliError> {
    let text = toml::to_string(file).map_err(|e| CliError::Other(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(CliError::io(format!("creating {}", dir.display())))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(CliError::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(CliError::io(format!("renaming to {}", path.display())))
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

/// The profile client commands use: `name` if given, else the current
/// one; `None` when there is no profile to use.
pub fn active(name: Option<&str>) -> Result<Option<Profile>, CliError> {
    let path = match (name, profiles_path()) {
        (_, Ok(path)) => path,
        // No home to look in: only a profile asked for by name is an error.
        (None, Err(_)) => return Ok(None),
        (Some(_), Err(e)) => return Err(e),
    };
    let file = load(&path)?;
    let Some(name) = name.map(str::to_owned).or(file.current.clone()) else {
        return Ok(None);
    };
    match file.profiles.get(&name) {
        Some(p) => Ok(Some(p.clone())),
        None => Err(CliError::Usage(format!(
            "no profile '{name}' in {} (see sluice profile list)",
            path.display()
        ))),
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
                    sasl_password_file: a.sasl_password_file,
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
                        p.sasl_mechanism.clone().unwrap_or_else(|| "-".to_owned()),
                        p.sasl_username.clone().unwrap_or_else(|| "-".to_owned()),
                    ]
                })
                .collect();
            crate::common::print_table(&["NAME", "BROKERS", "SASL", "USER"], &rows);
        }
    }
    Ok(())
}
