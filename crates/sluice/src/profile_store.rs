//! The CLI's profiles file: where it lives, reading it (bounded) and
//! writing it (temporary file, then rename). `profile.rs` holds the
//! commands; `common.rs` asks [`active`] for the settings a client command
//! falls back on. This module uses neither.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Largest profiles file read; it holds a few lines per profile.
const MAX_PROFILES_FILE_BYTES: u64 = 1024 * 1024;

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
    /// Kafka's `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT,
    /// SASL_SSL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_protocol: Option<String>,
    /// PEM file of the CAs trusted for the brokers' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file` (the path only, never the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
}

/// The profiles file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProfilesFile {
    /// The profile client commands use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Reading or writing the profiles file failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No directory to keep the file in.
    #[error("cannot find the profiles file: neither XDG_CONFIG_HOME nor HOME is set")]
    NoHome,
    /// The disk said no.
    #[error("{context} {path}: {source}", path = path.display())]
    Io {
        /// What we were doing.
        context: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is over [`MAX_PROFILES_FILE_BYTES`].
    #[error("{} is over {MAX_PROFILES_FILE_BYTES} bytes", path.display())]
    TooLarge {
        /// Which file.
        path: PathBuf,
    },
    /// The file is not the TOML we write.
    #[error("{}: {message}", path.display())]
    Parse {
        /// Which file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// The profiles could not be written as TOML.
    #[error("cannot write the profiles: {0}")]
    Encode(#[from] toml::ser::Error),
    /// A profile asked for by name is not in the file.
    #[error("no profile '{name}' in {} (see sluice profile list)", path.display())]
    Unknown {
        /// The name asked for.
        name: String,
        /// Which file.
        path: PathBuf,
    },
}

/// Where the profiles live.
pub fn profiles_path() -> Result<PathBuf, ProfileError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => return Err(ProfileError::NoHome),
        },
    };
    Ok(base.join("sluice").join("profiles.toml"))
}

/// Reads the profiles file; a missing file holds no profiles.
pub fn load(path: &Path) -> Result<ProfilesFile, ProfileError> {
    use std::io::Read;
    let io = |context: &'static str| {
        move |source| ProfileError::Io {
            context,
            path: path.to_owned(),
            source,
        }
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfilesFile::default()),
        Err(e) => return Err(io("reading")(e)),
    };
    let mut text = String::new();
    file.take(MAX_PROFILES_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io("reading"))?;
    if text.len() as u64 > MAX_PROFILES_FILE_BYTES {
        return Err(ProfileError::TooLarge {
            path: path.to_owned(),
        });
    }
    toml::from_str(&text).map_err(|e| ProfileError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

/// Writes to a temporary file and renames it into place, so a crash never
/// leaves a half-written profiles file.
pub fn save(path: &Path, file: &ProfilesFile) -> Result<(), ProfileError> {
    let text = toml::to_string(file)?;
    let io = |context: &'static str, at: &Path| {
        let at = at.to_owned();
        move |source| ProfileError::Io {
            context,
            path: at,
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into place", path))
}

/// The profile client commands use: `name` if given, else the current
/// one; `None` when there is no profile to use.
pub fn active(name: Option<&str>) -> Result<Option<Profile>, ProfileError> {
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
        None => Err(ProfileError::Unknown { name, path }),
    }
}
