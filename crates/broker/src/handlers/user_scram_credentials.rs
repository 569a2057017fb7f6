//! AlterUserScramCredentials (51) and DescribeUserScramCredentials (50):
//! SCRAM users, stored as metadata records (never the password).
//!
//! Alter runs on the active controller through the controller's own call
//! ([`Controller::alter_user_scram_credentials`]), which applies Kafka's
//! checks and answers one result per user. Describe reads this node's
//! image, as Kafka brokers answer from their metadata cache.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use sluice_metadata::Controller;
use sluice_metadata::controller::{ScramDeletion, ScramUpsertion};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::alter_user_scram_credentials::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    AlterUserScramCredentialsResult,
};
use sluice_protocol::messages::describe_user_scram_credentials::{
    CredentialInfo, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    DescribeUserScramCredentialsResult,
};

use super::RequestContext;

/// Handles AlterUserScramCredentials.
pub fn alter(
    controller: &Arc<Controller>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: AlterUserScramCredentialsRequest,
) -> impl Future<Output = AlterUserScramCredentialsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let deletions = request
        .deletions
        .into_iter()
        .map(|d| ScramDeletion {
            name: d.name,
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions = request
        .upsertions
        .into_iter()
        .map(|u| ScramUpsertion {
            name: u.name,
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    async move {
        let results = controller
            .alter_user_scram_credentials(deletions, upsertions)
            .await;
        AlterUserScramCredentialsResponse {
            throttle_time_ms: 0,
            results: results
                .into_iter()
                .map(|(user, result)| {
                    let (error_code, error_message) = match result {
                        Ok(()) => (code::NONE, None),
                        Err(e) => (e.code, Some(e.message)),
                    };
                    AlterUserScramCredentialsResult {
                        user,
                        error_code,
                        error_message,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// Handles DescribeUserScramCredentials: every user with a credential
/// when `users` is null or empty; otherwise each named user, with
/// RESOURCE_NOT_FOUND for one without credentials and DUPLICATE_RESOURCE
/// for one named twice (Kafka's rules). Only mechanisms and iteration
/// counts are listed, never salts or keys.
pub fn describe(
    controller: &Controller,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeUserScramCredentialsRequest,
) -> impl Future<Output = DescribeUserScramCredentialsResponse> + Send + 'static {
    let image = controller.image();
    let infos = |user: &str| -> Vec<CredentialInfo> {
        image
            .scram_credentials
            .get(user)
            .map(|by_mechanism| {
                by_mechanism
                    .iter()
                    .map(|(&mechanism, c)| CredentialInfo {
                        mechanism,
                        iterations: c.iterations,
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let found = |user: &str| DescribeUserScramCredentialsResult {
        user: user.to_owned(),
        error_code: code::NONE,
        error_message: None,
        credential_infos: infos(user),
        ..Default::default()
    };
    let refused = |user: &str, error_code: i16, message: &str| DescribeUserScramCredentialsResult {
        user: user.to_owned(),
        error_code,
        error_message: Some(message.to_owned()),
        credential_infos: Vec::new(),
        ..Default::default()
    };
    let results = match request.users.filter(|u| !u.is_empty()) {
        None => image
            .scram_credentials
            .keys()
            .map(|user| found(user))
            .collect(),
        Some(users) => {
            let mut seen = HashSet::new();
            let duplicated: HashSet<&str> = users
                .iter()
                .filter(|u| !seen.insert(u.name.as_str()))
                .map(|u| u.name.as_str())
                .collect();
            let mut answered = HashSet::new();
            users
                .iter()
                .filter(|u| answered.insert(u.name.as_str()))
                .map(|u| {
                    let name = u.name.as_str();
                    if duplicated.contains(name) {
                        refused(
                            name,
                            code::DUPLICATE_RESOURCE,
                            "Cannot describe SCRAM credentials for the same user twice in a single request",
                        )
                    } else if image.scram_credentials.contains_key(name) {
                        found(name)
                    } else {
                        refused(
                            name,
                            code::RESOURCE_NOT_FOUND,
                            "Attempt to describe a user credential that does not exist",
                        )
                    }
                })
                .collect()
        }
    };
    std::future::ready(DescribeUserScramCredentialsResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        error_message: None,
        results,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use sluice_protocol::messages::alter_user_scram_credentials::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use sluice_protocol::messages::describe_user_scram_credentials::UserName;

    use super::*;
    use crate::testing;

    fn upsertion(name: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion {
            name: name.to_owned(),
            mechanism,
            iterations,
            salt: vec![3; 32].into(),
            salted_password: vec![4; 64].into(),
            ..Default::default()
        }
    }

    /// (user, error code, (mechanism, iterations) per credential).
    type Described = Vec<(String, i16, Vec<(i8, i32)>)>;

    fn describe_users(controller: &Controller, users: Option<&[&str]>) -> Described {
        let request = DescribeUserScramCredentialsRequest {
            users: users.map(|u| {
                u.iter()
                    .map(|n| UserName {
                        name: (*n).to_owned(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let response = describe(
            controller,
            &testing::ctx(),
            &testing::header(50, 0),
            request,
        )
        .now_or_never()
        .expect("answers at once");
        response
            .results
            .into_iter()
            .map(|r| {
                (
                    r.user,
                    r.error_code,
                    r.credential_infos
                        .iter()
                        .map(|c| (c.mechanism, c.iterations))
                        .collect(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn users_are_created_described_and_deleted_with_kafkas_codes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = testing::broker_in(dir.path()).await;
        let controller = &broker.controller;
        let request = AlterUserScramCredentialsRequest {
            deletions: vec![ScramCredentialDeletion {
                name: "ghost".to_owned(),
                mechanism: 1,
                ..Default::default()
            }],
            upsertions: vec![
                upsertion("alice", 2, 8192),
                upsertion("bob", 1, 4096),
                upsertion("weak", 1, 100),
            ],
            ..Default::default()
        };
        let response = alter(
            controller,
            &testing::ctx(),
            &testing::header(51, 0),
            request,
        )
        .await;
        let codes: Vec<(&str, i16)> = response
            .results
            .iter()
            .map(|r| (r.user.as_str(), r.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("ghost", code::RESOURCE_NOT_FOUND),
                ("alice", code::NONE),
                ("bob", code::NONE),
                ("weak", code::UNACCEPTABLE_CREDENTIAL),
            ]
        );
        assert_eq!(
            describe_users(controller, None),
            [
                ("alice".to_owned(), 0, vec![(2, 8192)]),
                ("bob".to_owned(), 0, vec![(1, 4096)]),
            ]
        );
        assert_eq!(
            describe_users(controller, Some(&["bob", "nobody", "alice", "alice"])),
            [
                ("bob".to_owned(), 0, vec![(1, 4096)]),
                ("nobody".to_owned(), code::RESOURCE_NOT_FOUND, vec![]),
                ("alice".to_owned(), code::DUPLICATE_RESOURCE, vec![]),
            ]
        );
        let request = AlterUserScramCredentialsRequest {
            deletions: vec![ScramCredentialDeletion {
                name: "alice".to_owned(),
                mechanism: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let response = alter(
            controller,
            &testing::ctx(),
            &testing::header(51, 0),
            request,
        )
        .await;
        assert_eq!(response.results[0].error_code, code::NONE);
        assert_eq!(
            describe_users(controller, Some(&[])),
            [("bob".to_owned(), 0, vec![(1, 4096)])],
            "an empty list describes everyone"
        );
    }
}
