//! DeleteTopics (20).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::delete_topics::{
    DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
};

use super::RequestContext;
use crate::authz::Authorizer;
use crate::quota::MutationCharge;
use sluice_metadata::Controller;
use sluice_metadata::acl::AclOperation;

/// Handles DeleteTopics; v6 may name topics by id. Each topic's
/// partitions are charged to `mutations` (KIP-599) in request order.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    mutations: MutationCharge,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: DeleteTopicsRequest,
) -> impl Future<Output = DeleteTopicsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let version = header.request_api_version;
    // Checked now, against the image topic ids resolve in (Kafka: DELETE
    // on each topic; a denied one is TOPIC_AUTHORIZATION_FAILED).
    let image = controller.image();
    let may_delete = |name: &str| authorizer.topic(ctx, AclOperation::Delete, name);
    let denied: std::collections::HashSet<String> = if version >= 6 {
        request
            .topics
            .iter()
            .filter_map(|t| match &t.name {
                Some(n) => Some(n.clone()),
                None => image.topic_by_id(&t.topic_id).map(|ti| ti.name.clone()),
            })
            .filter(|n| !may_delete(n))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .filter(|n| !may_delete(n))
            .cloned()
            .collect()
    };
    // KIP-599: a topic over the controller mutation quota is not deleted
    // (strict versions) and says THROTTLING_QUOTA_EXCEEDED; one that then
    // fails gives its partitions back.
    let named: Vec<String> = if version >= 6 {
        request
            .topics
            .iter()
            .filter_map(|t| match &t.name {
                Some(n) => Some(n.clone()),
                None => image.topic_by_id(&t.topic_id).map(|ti| ti.name.clone()),
            })
            .collect()
    } else {
        request.topic_names.clone()
    };
    let mut partitions_asked: HashMap<String, i32> = HashMap::new();
    let mut throttled: std::collections::HashSet<String> = Default::default();
    for name in named.into_iter().filter(|n| !denied.contains(n)) {
        let Some(topic) = image.topics.get(&name) else {
            continue;
        };
        let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        match mutations.request(partitions) {
            Ok(()) => {
                partitions_asked.insert(name, partitions);
            }
            Err(_) => {
                throttled.insert(name);
            }
        }
    }
    async move {
        // (name as asked, resolved name) pairs.
        let wanted: Vec<(Option<String>, uuid::Uuid, Option<String>)> = if version >= 6 {
            request
                .topics
                .into_iter()
                .map(|t| {
                    let resolved = match &t.name {
                        Some(n) => Some(n.clone()),
                        None => image.topic_by_id(&t.topic_id).map(|ti| ti.name.clone()),
                    };
                    (t.name, t.topic_id, resolved)
                })
                .collect()
        } else {
            request
                .topic_names
                .into_iter()
                .map(|n| (Some(n.clone()), uuid::Uuid::nil(), Some(n)))
                .collect()
        };
        let to_delete: Vec<String> = wanted
            .iter()
            .filter_map(|(_, _, r)| r.clone())
            .filter(|n| !denied.contains(n) && !throttled.contains(n))
            .collect();
        let mut results = controller.delete_topics(to_delete).await.into_iter();
        let responses = wanted
            .into_iter()
            .map(|(asked, asked_id, resolved)| match resolved {
                Some(name) if denied.contains(&name) => DeletableTopicResult {
                    error_message: Some(format!("DELETE on topic {name} is required")),
                    name: Some(name),
                    topic_id: asked_id,
                    error_code: code::TOPIC_AUTHORIZATION_FAILED,
                    ..Default::default()
                },
                Some(name) if throttled.contains(&name) => DeletableTopicResult {
                    name: Some(name),
                    topic_id: asked_id,
                    error_code: code::THROTTLING_QUOTA_EXCEEDED,
                    error_message: Some(crate::quota::THROTTLING_QUOTA_EXCEEDED_MESSAGE.to_owned()),
                    ..Default::default()
                },
                None => DeletableTopicResult {
                    name: asked,
                    topic_id: asked_id,
                    error_code: code::UNKNOWN_TOPIC_ID,
                    error_message: Some(format!("no topic with id {asked_id}")),
                    ..Default::default()
                },
                Some(name) => match results.next() {
                    Some(Ok(topic_id)) => DeletableTopicResult {
                        name: Some(name),
                        topic_id,
                        error_code: code::NONE,
                        ..Default::default()
                    },
                    Some(Err(e)) => {
                        mutations.give_back(partitions_asked.remove(&name).unwrap_or(0));
                        DeletableTopicResult {
                            name: Some(name),
                            topic_id: asked_id,
                            error_code: e.code,
                            error_message: Some(e.message),
                            ..Default::default()
                        }
                    }
                    None => DeletableTopicResult {
                        name: Some(name),
                        error_code: code::UNKNOWN_SERVER_ERROR,
                        ..Default::default()
                    },
                },
            })
            .collect();
        let response = DeleteTopicsResponse {
            throttle_time_ms: mutations.throttle_time_ms(),
            responses,
            ..Default::default()
        };
        mutations.enforce().await;
        response
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::delete_topics::DeleteTopicState;

    use super::*;
    use crate::testing::{self, Node};

    async fn delete(
        node: &Node,
        version: i16,
        request: DeleteTopicsRequest,
    ) -> Vec<DeletableTopicResult> {
        let header = testing::header(20, version);
        handle(
            &node.controller,
            &testing::allow_all(),
            MutationCharge::unbounded(),
            &testing::ctx(),
            &header,
            request,
        )
        .await
        .responses
    }

    #[tokio::test]
    async fn deletes_by_name_and_stops_hosting_the_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("a", 2).await;
        let topic_id = node.image().topics["a"].topic_id;
        let request = DeleteTopicsRequest {
            topic_names: vec!["a".to_owned(), "missing".to_owned()],
            timeout_ms: 10_000,
            ..Default::default()
        };
        let results = delete(&node, 5, request).await;
        assert_eq!(results[0].name.as_deref(), Some("a"));
        assert_eq!(results[0].error_code, code::NONE);
        assert_eq!(results[0].topic_id, topic_id);
        assert_eq!(results[1].name.as_deref(), Some("missing"));
        assert_eq!(results[1].error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert!(!node.image().topics.contains_key("a"));
        assert!(node.replicas.partition("a", 0).is_none());
    }

    #[tokio::test]
    async fn v6_deletes_by_id_and_reports_an_unknown_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        node.create_topic("a", 1).await;
        let topic_id = node.image().topics["a"].topic_id;
        let unknown = uuid::Uuid::from_u128(77);
        let request = DeleteTopicsRequest {
            topics: vec![
                DeleteTopicState {
                    name: None,
                    topic_id,
                },
                DeleteTopicState {
                    name: None,
                    topic_id: unknown,
                },
            ],
            timeout_ms: 10_000,
            ..Default::default()
        };
        let results = delete(&node, 6, request).await;
        assert_eq!(results[0].name.as_deref(), Some("a"));
        assert_eq!(results[0].error_code, code::NONE);
        assert_eq!(results[1].name, None);
        assert_eq!(results[1].topic_id, unknown);
        assert_eq!(results[1].error_code, code::UNKNOWN_TOPIC_ID);
        assert!(node.image().topics.is_empty());
    }
}
