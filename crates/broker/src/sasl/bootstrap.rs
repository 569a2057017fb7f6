//! `[[sasl.bootstrap_users]]`: SCRAM users written at start-up, the way to
//! create the first admin user before any client can authenticate.
//!
//! A user is written only when it has no credential for its mechanism, so
//! a password changed later through AlterUserScramCredentials is not
//! reverted by the next restart. The write goes through the controller
//! like the API's (to the active controller in a cluster); the salt is
//! fresh and only the derived keys are stored.

use std::time::Duration;

use sluice_auth::scram::{Mechanism, random_salt};
use sluice_metadata::controller::ScramUpsertion;
use sluice_protocol::error::codes;

use crate::Broker;
use crate::config::ConfigError;

/// Attempts per user when the controller cannot be reached (an election
/// in progress right after a cluster starts); after that the failure is
/// logged and the broker serves anyway.
const ATTEMPTS: u32 = 10;
/// Wait between attempts; ten of them cover a few election timeouts.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// Why a bootstrap user was not written.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The password could not be read.
    #[error(transparent)]
    Password(#[from] ConfigError),
    /// No randomness for the salt.
    #[error("cannot generate a salt: {0}")]
    Salt(sluice_auth::scram::ScramError),
    /// The controller refused or could not be reached.
    #[error("user {user}: {message} (error {code})")]
    Refused {
        /// The user.
        user: String,
        /// Kafka error code.
        code: i16,
        /// Why.
        message: String,
    },
}

/// Writes every configured bootstrap user that has no credential for its
/// mechanism yet. Returns how many were written.
pub async fn write_bootstrap_users(broker: &Broker) -> Result<usize, BootstrapError> {
    let mut written = 0;
    for user in &broker.config.sasl.bootstrap_users {
        // Validated at start-up.
        let Some(mechanism) = Mechanism::from_name(&user.mechanism) else {
            continue;
        };
        if broker
            .controller
            .image()
            .scram_credential(&user.name, mechanism.kafka_type())
            .is_some()
        {
            tracing::debug!(user = %user.name, %mechanism, "bootstrap user exists; left as it is");
            continue;
        }
        let password = user.read_password()?;
        let salt = random_salt().map_err(BootstrapError::Salt)?;
        let salted_password =
            mechanism.salted_password(password.as_bytes(), &salt, user.iterations as u32);
        let upsertion = ScramUpsertion {
            name: user.name.clone(),
            mechanism: mechanism.kafka_type(),
            iterations: user.iterations,
            salt,
            salted_password,
        };
        let mut attempt = 1;
        loop {
            let results = broker
                .controller
                .alter_user_scram_credentials(Vec::new(), vec![upsertion.clone()])
                .await;
            match results.into_iter().next().map(|(_, r)| r) {
                Some(Ok(())) | None => break,
                Some(Err(e)) if attempt < ATTEMPTS && retriable(e.code) => {
                    tracing::info!(user = %user.name, attempt, "bootstrap user not written yet: {}", e.message);
                    attempt += 1;
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Some(Err(e)) => {
                    return Err(BootstrapError::Refused {
                        user: user.name.clone(),
                        code: e.code,
                        message: e.message,
                    });
                }
            }
        }
        tracing::info!(user = %user.name, %mechanism, "bootstrap SCRAM user written");
        written += 1;
    }
    Ok(written)
}

fn retriable(code: i16) -> bool {
    matches!(
        code,
        codes::NOT_CONTROLLER | codes::REQUEST_TIMED_OUT | codes::UNKNOWN_SERVER_ERROR
    ) || sluice_protocol::error::ErrorCode::from(code).is_retriable()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BootstrapUser;

    #[tokio::test]
    async fn bootstrap_users_are_written_once_and_not_reverted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let password_file = dir.path().join("pw");
        std::fs::write(&password_file, "from-file\n").expect("write");
        let mut config = crate::config::Config::default();
        config.sasl.bootstrap_users = vec![
            BootstrapUser {
                name: "admin".to_owned(),
                password: Some("admin-secret".to_owned()),
                password_file: None,
                mechanism: "SCRAM-SHA-512".to_owned(),
                iterations: 4096,
            },
            BootstrapUser {
                name: "filed".to_owned(),
                password: None,
                password_file: Some(password_file),
                mechanism: "SCRAM-SHA-256".to_owned(),
                iterations: 8192,
            },
        ];
        let broker = crate::testing::broker_with(dir.path(), config).await;
        assert_eq!(write_bootstrap_users(&broker).await.expect("written"), 2);
        let image = broker.controller.image();
        let admin = image.scram_credential("admin", 2).expect("admin").clone();
        let check = |user: &str, mechanism: Mechanism, password: &str| {
            let image = broker.controller.image();
            let c = image
                .scram_credential(user, mechanism.kafka_type())
                .expect("stored");
            sluice_auth::scram::Credential {
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            }
            .verify_password(mechanism, password.as_bytes())
        };
        assert!(check("admin", Mechanism::Sha512, "admin-secret"));
        assert!(
            check("filed", Mechanism::Sha256, "from-file"),
            "one trailing newline is not part of the password"
        );
        // A second start writes nothing: the stored credential stays.
        assert_eq!(
            write_bootstrap_users(&broker).await.expect("nothing to do"),
            0
        );
        assert_eq!(
            broker.controller.image().scram_credential("admin", 2),
            Some(&admin)
        );
    }
}
