//! AlterClientQuotas and DescribeClientQuotas (KIP-546): client quotas are
//! metadata, validated and committed by the controller
//! ([`sluice_metadata::client_quota`]), read from the image. Alter runs on
//! the active controller (other brokers forward it, see `forward.rs`);
//! describe answers from this broker's image.

use std::future::Future;
use std::sync::Arc;

use sluice_metadata::client_quota::{FilterComponent, QuotaAlteration};
use sluice_metadata::{Controller, MetadataImage};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::alter_client_quotas::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, AlterClientQuotasResponseEntryData,
    EntityData as AlterEntity,
};
use sluice_protocol::messages::describe_client_quotas::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse, EntityData, EntryData, ValueData,
};

use super::RequestContext;

/// AlterClientQuotas: one result per entry, in request order, each naming
/// its entity as the request did.
pub fn alter(
    controller: &Arc<Controller>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: AlterClientQuotasRequest,
) -> impl Future<Output = AlterClientQuotasResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    async move {
        let entities: Vec<Vec<AlterEntity>> =
            request.entries.iter().map(|e| e.entity.clone()).collect();
        let alterations: Vec<QuotaAlteration> = request
            .entries
            .into_iter()
            .map(|e| QuotaAlteration {
                entity: e
                    .entity
                    .into_iter()
                    .map(|d| (d.entity_type, d.entity_name))
                    .collect(),
                ops: e
                    .ops
                    .into_iter()
                    .map(|op| (op.key, (!op.remove).then_some(op.value)))
                    .collect(),
            })
            .collect();
        let results = controller
            .alter_client_quotas(alterations, request.validate_only)
            .await;
        let entries = entities
            .into_iter()
            .zip(results)
            .map(|(entity, result)| {
                let (error_code, error_message) = match result {
                    Ok(()) => (code::NONE, None),
                    Err(e) => {
                        tracing::info!("AlterClientQuotas refused: {}", e.message);
                        (e.code, Some(e.message))
                    }
                };
                AlterClientQuotasResponseEntryData {
                    error_code,
                    error_message,
                    entity,
                }
            })
            .collect();
        AlterClientQuotasResponse {
            throttle_time_ms: 0,
            entries,
        }
    }
}

/// DescribeClientQuotas: the entities the filter selects with their
/// quotas, or a top-level error for a malformed filter.
pub fn describe(
    image: &MetadataImage,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeClientQuotasRequest,
) -> impl Future<Output = DescribeClientQuotasResponse> + Send + 'static {
    let components: Vec<FilterComponent> = request
        .components
        .into_iter()
        .map(|c| FilterComponent {
            entity_type: c.entity_type,
            match_type: c.match_type,
            name: c.r#match,
        })
        .collect();
    let response = match sluice_metadata::client_quota::describe(image, &components, request.strict)
    {
        Ok(selected) => DescribeClientQuotasResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            error_message: None,
            entries: Some(
                selected
                    .into_iter()
                    .map(|(entity, quotas)| EntryData {
                        entity: entity
                            .into_iter()
                            .map(|(entity_type, entity_name)| EntityData {
                                entity_type,
                                entity_name,
                            })
                            .collect(),
                        values: quotas
                            .into_iter()
                            .map(|(key, value)| ValueData { key, value })
                            .collect(),
                    })
                    .collect(),
            ),
        },
        // Kafka answers a bad filter with the error and no entries.
        Err(e) => DescribeClientQuotasResponse {
            throttle_time_ms: 0,
            error_code: e.code,
            error_message: Some(e.message),
            entries: None,
        },
    };
    async move { response }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::messages::alter_client_quotas::{EntryData as AlterEntry, OpData};
    use sluice_protocol::messages::describe_client_quotas::ComponentData;

    use super::*;
    use crate::testing;

    fn entity(t: &str, n: Option<&str>) -> AlterEntity {
        AlterEntity {
            entity_type: t.to_owned(),
            entity_name: n.map(str::to_owned),
        }
    }

    fn op(key: &str, value: f64, remove: bool) -> OpData {
        OpData {
            key: key.to_owned(),
            value,
            remove,
        }
    }

    async fn describe_with(
        controller: &Arc<Controller>,
        components: Vec<ComponentData>,
    ) -> DescribeClientQuotasResponse {
        let request = DescribeClientQuotasRequest {
            components,
            strict: false,
        };
        describe(
            &controller.image(),
            &testing::ctx(),
            &testing::header(48, 1),
            request,
        )
        .await
    }

    async fn alter_now(
        controller: &Arc<Controller>,
        entries: Vec<AlterEntry>,
        validate_only: bool,
    ) -> AlterClientQuotasResponse {
        let request = AlterClientQuotasRequest {
            entries,
            validate_only,
        };
        alter(
            controller,
            &testing::ctx(),
            &testing::header(49, 1),
            request,
        )
        .await
    }

    #[tokio::test]
    async fn altered_quotas_are_described_and_bad_entries_fail_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let controller = &node.controller;
        let slow = AlterEntry {
            entity: vec![entity("client-id", Some("slow"))],
            ops: vec![op("producer_byte_rate", 1024.0, false)],
        };
        let bad = AlterEntry {
            entity: vec![entity("client-id", Some("x"))],
            ops: vec![op("producer_byte_rate", 1.5, false)],
        };
        // validate_only commits nothing but reports the same errors.
        let dry = alter_now(controller, vec![slow.clone(), bad.clone()], true).await;
        assert_eq!(dry.entries[0].error_code, code::NONE);
        assert_eq!(dry.entries[1].error_code, code::INVALID_REQUEST);
        assert_eq!(
            describe_with(controller, vec![]).await.entries,
            Some(vec![])
        );

        let done = alter_now(controller, vec![slow, bad], false).await;
        assert_eq!(done.entries[0].error_code, code::NONE);
        assert_eq!(done.entries[0].error_message, None);
        assert_eq!(done.entries[1].error_code, code::INVALID_REQUEST);
        assert_eq!(done.entries[1].entity, vec![entity("client-id", Some("x"))]);
        let described = describe_with(controller, vec![])
            .await
            .entries
            .expect("entries");
        assert_eq!(described.len(), 1);
        assert_eq!(described[0].entity[0].entity_name.as_deref(), Some("slow"));
        assert_eq!(described[0].values[0].key, "producer_byte_rate");
        assert_eq!(described[0].values[0].value, 1024.0);

        // Removing the key removes the entity.
        let removal = AlterEntry {
            entity: vec![entity("client-id", Some("slow"))],
            ops: vec![op("producer_byte_rate", 0.0, true)],
        };
        let done = alter_now(controller, vec![removal], false).await;
        assert_eq!(done.entries[0].error_code, code::NONE);
        assert_eq!(
            describe_with(controller, vec![]).await.entries,
            Some(vec![])
        );
    }

    #[tokio::test]
    async fn a_malformed_filter_is_a_top_level_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let exact_without_name = ComponentData {
            entity_type: "user".to_owned(),
            match_type: 0,
            r#match: None,
        };
        let response = describe_with(&node.controller, vec![exact_without_name]).await;
        assert_eq!(response.error_code, code::INVALID_REQUEST);
        assert!(response.entries.is_none());
    }
}
