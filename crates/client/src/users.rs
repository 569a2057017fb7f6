//! SCRAM user administration (KIP-554): AlterUserScramCredentials and
//! DescribeUserScramCredentials, as `kafka-configs.sh --entity-type users
//! --add-config 'SCRAM-SHA-512=[...]'` uses them.
//!
//! The password never leaves this process: the client picks a random salt,
//! runs SCRAM's `Hi()` (PBKDF2) itself and sends only the salt, the
//! iteration count and the salted password, from which the broker derives
//! the keys it stores. The broker forwards the change to the active
//! controller, so any broker will do.

use sluice_auth::scram;
/// The SCRAM mechanisms and Kafka's iteration bounds, for callers that
/// check arguments before sending them.
pub use sluice_auth::scram::{MAX_ITERATIONS, MIN_ITERATIONS, Mechanism};
use sluice_protocol::messages::alter_user_scram_credentials::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};
use sluice_protocol::messages::describe_user_scram_credentials::{
    DescribeUserScramCredentialsRequest, UserName,
};

use crate::admin::Admin;
use crate::error::{ClientError, Result};

/// Kafka's default iteration count for a new SCRAM credential
/// (`kafka-configs.sh` and the AdminClient's `ScramCredentialInfo` users
/// usually pick it; it is also the broker's lowest accepted count).
pub const DEFAULT_ITERATIONS: i32 = scram::MIN_ITERATIONS;

/// One SCRAM credential as the broker describes it: no salt, no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// The mechanism, or `None` for a wire number this client does not know.
    pub mechanism: Option<Mechanism>,
    /// Kafka's wire number for the mechanism (1 SHA-256, 2 SHA-512).
    pub mechanism_type: i8,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// A user and its credentials, from DescribeUserScramCredentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUser {
    /// The user name (the principal `User:<name>`).
    pub name: String,
    /// One entry per mechanism the user has a credential for.
    pub credentials: Vec<ScramCredentialInfo>,
}

/// A credential to create or replace, before salting.
pub struct ScramUpsert<'a> {
    /// User name.
    pub name: &'a str,
    /// Mechanism.
    pub mechanism: Mechanism,
    /// PBKDF2 iterations (the broker accepts 4096..=16384, as Kafka).
    pub iterations: i32,
    /// The password; only its salted form is sent.
    pub password: &'a [u8],
}

impl std::fmt::Debug for ScramUpsert<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in a debug log.
        f.debug_struct("ScramUpsert")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The upsertion AlterUserScramCredentials carries for `upsert`, salted
/// with `salt`: Kafka's `SaltedPassword = Hi(password, salt, i)`.
fn salted_upsertion(upsert: &ScramUpsert<'_>, salt: Vec<u8>) -> Result<ScramCredentialUpsertion> {
    // The broker refuses counts outside its bounds with
    // UNACCEPTABLE_CREDENTIAL; a negative one cannot even be hashed here.
    let iterations = u32::try_from(upsert.iterations).map_err(|_| ClientError::Invalid {
        what: "SCRAM iterations",
        reason: format!("{} is negative", upsert.iterations),
    })?;
    let salted_password = upsert
        .mechanism
        .salted_password(upsert.password, &salt, iterations);
    Ok(ScramCredentialUpsertion {
        name: upsert.name.to_owned(),
        mechanism: upsert.mechanism.kafka_type(),
        iterations: upsert.iterations,
        salt: salt.into(),
        salted_password: salted_password.into(),
        ..Default::default()
    })
}

impl Admin {
    /// Creates or replaces SCRAM credentials and deletes others, in one
    /// request; fails with the first user the broker refused (its Kafka
    /// error code and message).
    pub async fn alter_user_scram_credentials(
        &self,
        upserts: &[ScramUpsert<'_>],
        deletions: &[(&str, Mechanism)],
    ) -> Result<()> {
        let mut upsertions = Vec::with_capacity(upserts.len());
        for u in upserts {
            let salt = scram::random_salt().map_err(|e| ClientError::Invalid {
                what: "SCRAM salt",
                reason: e.to_string(),
            })?;
            upsertions.push(salted_upsertion(u, salt)?);
        }
        let request = AlterUserScramCredentialsRequest {
            deletions: deletions
                .iter()
                .map(|(name, mechanism)| ScramCredentialDeletion {
                    name: (*name).to_owned(),
                    mechanism: mechanism.kafka_type(),
                    ..Default::default()
                })
                .collect(),
            upsertions,
            ..Default::default()
        };
        let (resp, _) = self
            .client()
            .send_any("alter user SCRAM credentials", &request, 0, 0)
            .await?;
        let mut answered = std::collections::HashSet::new();
        for r in resp.results {
            if r.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("user '{}'", r.user),
                    r.error_code,
                    r.error_message,
                ));
            }
            answered.insert(r.user);
        }
        // A user the broker did not answer for was not changed; saying
        // nothing would report success for it.
        let asked = upserts
            .iter()
            .map(|u| u.name)
            .chain(deletions.iter().map(|(name, _)| *name));
        for name in asked {
            if !answered.contains(name) {
                return Err(ClientError::Invalid {
                    what: "AlterUserScramCredentials response",
                    reason: format!("the broker did not answer for user '{name}'"),
                });
            }
        }
        Ok(())
    }

    /// The SCRAM users named (every user with a credential when `users`
    /// is empty). A named user without credentials fails the call with
    /// RESOURCE_NOT_FOUND, as the broker answers it.
    pub async fn describe_user_scram_credentials(&self, users: &[&str]) -> Result<Vec<ScramUser>> {
        let request = DescribeUserScramCredentialsRequest {
            // Null asks for every user (an empty list would too).
            users: (!users.is_empty()).then(|| {
                users
                    .iter()
                    .map(|n| UserName {
                        name: (*n).to_owned(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let (resp, _) = self
            .client()
            .send_any("describe user SCRAM credentials", &request, 0, 0)
            .await?;
        if resp.error_code != 0 {
            return Err(ClientError::kafka(
                "describe user SCRAM credentials",
                resp.error_code,
                resp.error_message,
            ));
        }
        let mut out = Vec::with_capacity(resp.results.len());
        for r in resp.results {
            if r.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("user '{}'", r.user),
                    r.error_code,
                    r.error_message,
                ));
            }
            out.push(ScramUser {
                name: r.user,
                credentials: r
                    .credential_infos
                    .into_iter()
                    .map(|c| ScramCredentialInfo {
                        mechanism: Mechanism::from_kafka_type(c.mechanism),
                        mechanism_type: c.mechanism,
                        iterations: c.iterations,
                    })
                    .collect(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_auth::scram::Credential;

    #[test]
    fn an_upsertion_carries_the_salted_password_not_the_password() {
        let password = b"alice-secret";
        let upsert = ScramUpsert {
            name: "alice",
            mechanism: Mechanism::Sha512,
            iterations: 4096,
            password,
        };
        let salt = vec![7u8; 32];
        let u = salted_upsertion(&upsert, salt.clone()).unwrap();
        assert_eq!(
            (u.name.as_str(), u.mechanism, u.iterations),
            ("alice", 2, 4096)
        );
        assert_eq!(u.salt.as_ref(), salt.as_slice());
        // What the broker derives from the upsertion verifies the password.
        let credential =
            Credential::from_salted_password(Mechanism::Sha512, &u.salt, &u.salted_password, 4096);
        assert!(credential.verify_password(Mechanism::Sha512, password));
        assert!(!credential.verify_password(Mechanism::Sha512, b"wrong"));
        // And no field holds the password itself.
        let raw = password.as_slice();
        assert!(!u.salted_password.windows(raw.len()).any(|w| w == raw));
        assert!(!format!("{upsert:?}").contains("alice-secret"));
    }

    #[test]
    fn a_negative_iteration_count_is_refused_before_hashing() {
        let upsert = ScramUpsert {
            name: "alice",
            mechanism: Mechanism::Sha256,
            iterations: -1,
            password: b"pw",
        };
        assert!(matches!(
            salted_upsertion(&upsert, vec![1; 32]),
            Err(ClientError::Invalid { .. })
        ));
    }
}
