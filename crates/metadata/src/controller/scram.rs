//! SCRAM credentials (Kafka's `ScramControlManager`): validating an
//! AlterUserScramCredentials request against the image and turning it into
//! `UserScramCredential` / `RemoveUserScramCredential` records. Runs on the
//! active controller, wherever the request arrived.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_auth::scram::{Credential, MAX_ITERATIONS, MIN_ITERATIONS, Mechanism};
use sluice_protocol::error::codes as code;

use super::{Controller, ControllerCall, ControllerReply, unexpected_reply};
use crate::error::ApiError;
use crate::image::{MetadataImage, MetadataRecord};

/// Longest salt or salted password accepted, in bytes. Kafka's client
/// sends a salt of the hash's length and a salted password of the hash's
/// length (64 bytes at most); the bound keeps a record's fields within
/// the codec's 16-bit lengths and every user's credential small in memory.
pub const MAX_SCRAM_BYTES: usize = 1024;

/// One result per user named in an AlterUserScramCredentials request.
pub type UserResults = Vec<(String, Result<(), ApiError>)>;

/// One credential to remove (Kafka's `ScramCredentialDeletion`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramDeletion {
    /// The user.
    pub name: String,
    /// Kafka's mechanism number.
    pub mechanism: i8,
}

/// One credential to set (Kafka's `ScramCredentialUpsertion`).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramUpsertion {
    /// The user.
    pub name: String,
    /// Kafka's mechanism number.
    pub mechanism: i8,
    /// PBKDF2 iterations.
    pub iterations: i32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `Hi(password, salt, iterations)`; the controller derives the stored
    /// and server keys from it and keeps only those.
    pub salted_password: Vec<u8>,
}

impl std::fmt::Debug for ScramUpsertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUpsertion")
            .field("name", &self.name)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Kafka's per-user checks shared by deletions and upsertions.
fn validate_name_and_mechanism(name: &str, mechanism: i8) -> Result<Mechanism, ApiError> {
    if name.is_empty() {
        return Err(ApiError::new(
            code::UNACCEPTABLE_CREDENTIAL,
            "Username must not be empty",
        ));
    }
    if name.len() > sluice_auth::MAX_USER_NAME_BYTES {
        // Not a Kafka check: such a name could never log in (SASL bounds
        // names at 255 bytes), so storing it only wastes metadata.
        return Err(ApiError::new(
            code::UNACCEPTABLE_CREDENTIAL,
            format!(
                "Username must be at most {} bytes",
                sluice_auth::MAX_USER_NAME_BYTES
            ),
        ));
    }
    Mechanism::from_kafka_type(mechanism)
        .ok_or_else(|| ApiError::new(code::UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"))
}

fn validate_upsertion(u: &ScramUpsertion) -> Result<MetadataRecord, ApiError> {
    let mechanism = validate_name_and_mechanism(&u.name, u.mechanism)?;
    if u.iterations < MIN_ITERATIONS {
        return Err(ApiError::new(
            code::UNACCEPTABLE_CREDENTIAL,
            "Too few iterations",
        ));
    }
    if u.iterations > MAX_ITERATIONS {
        return Err(ApiError::new(
            code::UNACCEPTABLE_CREDENTIAL,
            "Too many iterations",
        ));
    }
    for (field, bytes) in [("salt", &u.salt), ("salted password", &u.salted_password)] {
        if bytes.is_empty() || bytes.len() > MAX_SCRAM_BYTES {
            return Err(ApiError::new(
                code::UNACCEPTABLE_CREDENTIAL,
                format!("The {field} must be 1 to {MAX_SCRAM_BYTES} bytes"),
            ));
        }
    }
    let credential =
        Credential::from_salted_password(mechanism, &u.salt, &u.salted_password, u.iterations);
    Ok(MetadataRecord::UserScramCredential {
        name: u.name.clone(),
        mechanism: u.mechanism,
        salt: credential.salt,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
        iterations: credential.iterations,
    })
}

/// Kafka's rules for one request: a user named twice (in either list) gets
/// DUPLICATE_RESOURCE and nothing of it is applied; each other user is
/// checked on its own. Returns one result per user in first-mention
/// order, and the records of the users that passed.
fn plan(
    image: &MetadataImage,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> (UserResults, Vec<MetadataRecord>) {
    let mut order: Vec<String> = Vec::new();
    let mut outcome: HashMap<String, Result<MetadataRecord, ApiError>> = HashMap::new();
    let duplicate = || {
        ApiError::new(
            code::DUPLICATE_RESOURCE,
            "A user credential cannot be altered twice in the same request",
        )
    };
    let checked = deletions
        .iter()
        .map(|d| {
            (
                &d.name,
                validate_name_and_mechanism(&d.name, d.mechanism).and_then(|_| {
                    if image.scram_credential(&d.name, d.mechanism).is_none() {
                        return Err(ApiError::new(
                            code::RESOURCE_NOT_FOUND,
                            "Attempt to delete a user credential that does not exist",
                        ));
                    }
                    Ok(MetadataRecord::RemoveUserScramCredential {
                        name: d.name.clone(),
                        mechanism: d.mechanism,
                    })
                }),
            )
        })
        .chain(upsertions.iter().map(|u| (&u.name, validate_upsertion(u))));
    for (name, result) in checked {
        match outcome.get_mut(name) {
            // A first error stands; a second mention of a user is a
            // duplicate either way.
            Some(Err(_)) => {}
            Some(previous) => *previous = Err(duplicate()),
            None => {
                order.push(name.clone());
                outcome.insert(name.clone(), result);
            }
        }
    }
    let mut results = Vec::with_capacity(order.len());
    let mut records = Vec::new();
    for name in order {
        match outcome.remove(&name) {
            Some(Ok(record)) => {
                records.push(record);
                results.push((name, Ok(())));
            }
            Some(Err(e)) => results.push((name, Err(e))),
            None => {}
        }
    }
    (results, records)
}

impl Controller {
    /// Kafka's AlterUserScramCredentials, on the active controller wherever
    /// the call came from: one result per user named, in first-mention
    /// order; the users that pass Kafka's checks are committed together.
    pub async fn alter_user_scram_credentials(
        self: &Arc<Self>,
        deletions: Vec<ScramDeletion>,
        upsertions: Vec<ScramUpsertion>,
    ) -> UserResults {
        if let Some(remote) = self.remote_if_not_active() {
            let names: Vec<String> = deletions
                .iter()
                .map(|d| d.name.clone())
                .chain(upsertions.iter().map(|u| u.name.clone()))
                .collect();
            let call = ControllerCall::AlterUserScramCredentials {
                deletions,
                upsertions,
            };
            let failed = |e: ApiError| {
                let mut seen = std::collections::HashSet::new();
                names
                    .iter()
                    .filter(|n| seen.insert((*n).clone()))
                    .map(|n| (n.clone(), Err(e.clone())))
                    .collect()
            };
            return match remote.call(call).await {
                Ok(ControllerReply::AlterUserScramCredentials(results)) => results,
                Ok(other) => failed(unexpected_reply(&other)),
                Err(e) => failed(e),
            };
        }
        self.alter_user_scram_credentials_here(deletions, upsertions)
            .await
    }

    pub(super) async fn alter_user_scram_credentials_here(
        self: &Arc<Self>,
        deletions: Vec<ScramDeletion>,
        upsertions: Vec<ScramUpsertion>,
    ) -> UserResults {
        let (mut results, records) = plan(&self.image(), &deletions, &upsertions);
        if records.is_empty() {
            return results;
        }
        // Planned again on the image the change commits against, so a
        // concurrent change (a deletion that already happened) cannot
        // make a record that does not apply.
        let committed = self
            .broker_change(move |image| {
                let (again, records) = plan(image, &deletions, &upsertions);
                match again.into_iter().find_map(|(_, r)| r.err()) {
                    Some(e) if records.is_empty() => Err(e),
                    _ => Ok(records),
                }
            })
            .await;
        if let Err(e) = committed {
            for (_, result) in &mut results {
                if result.is_ok() {
                    *result = Err(e.clone());
                }
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(name: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        ScramUpsertion {
            name: name.to_owned(),
            mechanism,
            iterations,
            salt: vec![1; 32],
            salted_password: vec![2; 64],
        }
    }

    fn delete(name: &str, mechanism: i8) -> ScramDeletion {
        ScramDeletion {
            name: name.to_owned(),
            mechanism,
        }
    }

    fn codes(results: &[(String, Result<(), ApiError>)]) -> Vec<(&str, i16)> {
        results
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref().map_or_else(|e| e.code, |()| 0)))
            .collect()
    }

    #[test]
    fn kafkas_checks_give_kafkas_codes() {
        let mut image = MetadataImage::default();
        let (_, records) = plan(&image, &[], &[upsert("alice", 2, 4096)]);
        for (i, r) in records.iter().enumerate() {
            image.apply(r, i as i64).expect("apply");
        }
        let (results, records) = plan(
            &image,
            &[
                delete("alice", 2),
                delete("bob", 2),
                delete("", 1),
                delete("carol", 0),
            ],
            &[
                upsert("dave", 1, 4095),
                upsert("erin", 1, 16385),
                upsert("frank", 3, 4096),
                upsert("grace", 1, 16384),
                upsert("bob", 1, 4096),
                upsert("heidi", 2, 8192),
                upsert("heidi", 1, 8192),
                ScramUpsertion {
                    salt: Vec::new(),
                    ..upsert("ivan", 1, 4096)
                },
            ],
        );
        assert_eq!(
            codes(&results),
            [
                ("alice", 0),
                ("bob", code::RESOURCE_NOT_FOUND),
                ("", code::UNACCEPTABLE_CREDENTIAL),
                ("carol", code::UNSUPPORTED_SASL_MECHANISM),
                ("dave", code::UNACCEPTABLE_CREDENTIAL),
                ("erin", code::UNACCEPTABLE_CREDENTIAL),
                ("frank", code::UNSUPPORTED_SASL_MECHANISM),
                ("grace", 0),
                ("heidi", code::DUPLICATE_RESOURCE),
                ("ivan", code::UNACCEPTABLE_CREDENTIAL),
            ]
        );
        // Only alice's removal and grace's credential are written.
        assert_eq!(records.len(), 2);
        assert!(
            matches!(&records[0], MetadataRecord::RemoveUserScramCredential { name, .. } if name == "alice")
        );
        assert!(
            matches!(&records[1], MetadataRecord::UserScramCredential { name, iterations: 16384, .. } if name == "grace")
        );
    }

    #[test]
    fn the_record_holds_the_derived_keys_not_the_salted_password() {
        let u = upsert("alice", 1, 4096);
        let MetadataRecord::UserScramCredential {
            stored_key,
            server_key,
            salt,
            ..
        } = validate_upsertion(&u).expect("valid")
        else {
            panic!("expected a credential record");
        };
        let expected =
            Credential::from_salted_password(Mechanism::Sha256, &u.salt, &u.salted_password, 4096);
        assert_eq!(
            (stored_key, server_key, salt),
            (
                expected.stored_key.clone(),
                expected.server_key,
                u.salt.clone()
            )
        );
        assert_ne!(expected.stored_key, u.salted_password);
    }

    #[tokio::test]
    async fn credentials_commit_apply_survive_a_snapshot_and_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = crate::log::LocalMetadataLog::open(dir.path()).expect("open");
        let controller = Arc::new(Controller::new(
            Arc::new(log),
            Vec::new(),
            super::super::ControllerConfig::default(),
        ));
        let results = controller
            .alter_user_scram_credentials(
                Vec::new(),
                vec![upsert("alice", 2, 4096), upsert("alice-256", 1, 8192)],
            )
            .await;
        assert_eq!(codes(&results), [("alice", 0), ("alice-256", 0)]);
        let image = controller.image();
        let stored = image.scram_credential("alice", 2).expect("committed");
        assert_eq!(stored.iterations, 4096);
        let snapshot = crate::snapshot::encode_snapshot(&image).expect("encode");
        let restored = crate::snapshot::decode_snapshot(&snapshot).expect("decode");
        assert_eq!(restored.scram_credentials, image.scram_credentials);

        let results = controller
            .alter_user_scram_credentials(vec![delete("alice", 2), delete("alice", 1)], Vec::new())
            .await;
        assert_eq!(codes(&results), [("alice", code::DUPLICATE_RESOURCE)]);
        let results = controller
            .alter_user_scram_credentials(vec![delete("alice", 2)], Vec::new())
            .await;
        assert_eq!(codes(&results), [("alice", 0)]);
        let image = controller.image();
        assert!(image.scram_credential("alice", 2).is_none());
        assert!(
            !image.scram_credentials.contains_key("alice"),
            "no empty map is kept"
        );
        assert!(image.scram_credential("alice-256", 1).is_some());
    }
}
