//! DeleteTopics (20).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::delete_topics::{
    DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
};

use super::RequestContext;
use sluice_metadata::Controller;

/// Handles DeleteTopics; v6 may name topics by id.
pub fn handle(
    controller: &Arc<Controller>,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: DeleteTopicsRequest,
) -> impl Future<Output = DeleteTopicsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let version = header.request_api_version;
    async move {
        let image = controller.image();
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
        let to_delete: Vec<String> = wanted.iter().filter_map(|(_, _, r)| r.clone()).collect();
        let mut results = controller.delete_topics(to_delete).await.into_iter();
        let responses = wanted
            .into_iter()
            .map(|(asked, asked_id, resolved)| match resolved {
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
                    Some(Err(e)) => DeletableTopicResult {
                        name: Some(name),
                        topic_id: asked_id,
                        error_code: e.code,
                        error_message: Some(e.message),
                        ..Default::default()
                    },
                    None => DeletableTopicResult {
                        name: Some(name),
                        error_code: code::UNKNOWN_SERVER_ERROR,
                        ..Default::default()
                    },
                },
            })
            .collect();
        DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses,
            ..Default::default()
        }
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
        handle(&node.controller, &testing::ctx(), &header, request)
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
