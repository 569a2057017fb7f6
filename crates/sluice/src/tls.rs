//! `sluice tls`: a throwaway certificate authority for tests and quick
//! starts. `gen-ca` writes a CA certificate and key; `gen-cert` issues a
//! server or client certificate signed by it. The keys are written
//! unencrypted; for production use an organisation's own CA.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::common::CliError;

/// File names inside a CA directory.
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";

/// How long generated certificates are valid: long enough for any test or
/// demo, and short enough that a forgotten one expires.
const VALIDITY_DAYS: i64 = 365;

/// Arguments of `sluice tls`.
#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Create a throwaway CA for tests and quick starts (DIR/ca.pem and
    /// DIR/ca.key, key unencrypted). Not for production.
    GenCa {
        /// Directory to write ca.pem and ca.key into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Sluice test CA")]
        name: String,
    },
    /// Issue a certificate signed by a `gen-ca` CA: DIR/NAME.pem and
    /// DIR/NAME.key (key unencrypted). For tests and quick starts.
    GenCert {
        /// The CA directory written by `gen-ca`.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The certificate's common name (CN); also the file name.
        #[arg(long, value_name = "CN")]
        name: String,
        /// Directory to write the certificate and key into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A client certificate (for mTLS) instead of a server one.
        #[arg(long)]
        client: bool,
        /// Subject alternative names (DNS names or IP addresses) for a
        /// server certificate; default `localhost` and `127.0.0.1`.
        /// Repeatable.
        #[arg(long = "san", value_name = "NAME")]
        sans: Vec<String>,
        /// Organisational unit (OU) in the subject, e.g. for principal
        /// mapping rules.
        #[arg(long, value_name = "OU")]
        ou: Option<String>,
    },
}

/// Runs `sluice tls`.
pub async fn run(args: TlsArgs) -> Result<(), CliError> {
    match args.command {
        TlsCommand::GenCa { out, name } => gen_ca(&out, &name),
        TlsCommand::GenCert {
            ca,
            name,
            out,
            client,
            sans,
            ou,
        } => gen_cert(&ca, &name, &out, client, sans, ou.as_deref()),
    }
}

fn rcgen_error(context: &str, e: rcgen::Error) -> CliError {
    CliError::Usage(format!("{context}: {e}"))
}

fn write(path: &Path, contents: &str) -> Result<(), CliError> {
    std::fs::write(path, contents).map_err(|source| CliError::Io {
        context: format!("cannot write {}", path.display()),
        source,
    })
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        context: format!("cannot read {}", path.display()),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        context: format!("cannot create {}", dir.display()),
        source,
    })
}

fn validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(VALIDITY_DAYS as u64 * 86_400)).into();
}

fn gen_ca(out: &Path, name: &str) -> Result<(), CliError> {
    create_dir(out)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params);
    let key = KeyPair::generate().map_err(|e| rcgen_error("cannot generate a key", e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| rcgen_error("cannot sign the CA", e))?;
    write(&out.join(CA_CERT), &cert.pem())?;
    write(&out.join(CA_KEY), &key.serialize_pem())?;
    println!(
        "wrote {} and {} (a throwaway test CA; not for production)",
        out.join(CA_CERT).display(),
        out.join(CA_KEY).display()
    );
    Ok(())
}

fn gen_cert(
    ca_dir: &Path,
    name: &str,
    out: &Path,
    client: bool,
    sans: Vec<String>,
    ou: Option<&str>,
) -> Result<(), CliError> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(CliError::Usage(format!(
            "--name {name:?} must be a plain name: it is also the file name"
        )));
    }
    create_dir(out)?;
    let ca_key = KeyPair::from_pem(&read(&ca_dir.join(CA_KEY))?)
        .map_err(|e| rcgen_error("cannot read the CA key", e))?;
    let ca_params = CertificateParams::from_ca_cert_pem(&read(&ca_dir.join(CA_CERT))?)
        .map_err(|e| rcgen_error("cannot read the CA certificate", e))?;
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| rcgen_error("cannot load the CA", e))?;
    let sans = if sans.is_empty() && !client {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        sans
    };
    let mut params = CertificateParams::new(sans).map_err(|e| rcgen_error("bad --san", e))?;
    let mut dn = DistinguishedName::new();
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = if client {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        // A broker's certificate also serves as its client certificate
        // towards other brokers' SSL listeners.
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    };
    validity(&mut params);
    let key = KeyPair::generate().map_err(|e| rcgen_error("cannot generate a key", e))?;
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(|e| rcgen_error("cannot sign the certificate", e))?;
    let cert_path = out.join(format!("{name}.pem"));
    let key_path = out.join(format!("{name}.key"));
    write(&cert_path, &cert.pem())?;
    write(&key_path, &key.serialize_pem())?;
    println!(
        "wrote {} and {} (signed by the test CA in {})",
        cert_path.display(),
        key_path.display(),
        ca_dir.display()
    );
    Ok(())
}
