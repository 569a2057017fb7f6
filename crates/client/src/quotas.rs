//! Client quota administration (AlterClientQuotas, DescribeClientQuotas;
//! KIP-546), as `kafka-configs.sh --entity-type users|clients` uses it.

use sluice_protocol::messages::alter_client_quotas::{
    AlterClientQuotasRequest, EntityData as AlterEntity, EntryData as AlterEntry, OpData,
};
use sluice_protocol::messages::describe_client_quotas::{
    ComponentData, DescribeClientQuotasRequest,
};

use crate::admin::Admin;
use crate::error::{ClientError, Result};

/// A quota entity: `(entity type, name)` pairs; a `None` name is the
/// type's default entity.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// How a DescribeClientQuotas filter component matches names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// Exactly this name.
    Exact(String),
    /// The default entity of the type.
    Default,
    /// Any entity of the type.
    Any,
}

impl Admin {
    /// Sets (`Some`) or removes (`None`) quota keys on one entity.
    pub async fn alter_client_quotas(
        &self,
        entity: &QuotaEntity,
        ops: &[(String, Option<f64>)],
    ) -> Result<()> {
        let request = AlterClientQuotasRequest {
            entries: vec![AlterEntry {
                entity: entity
                    .iter()
                    .map(|(t, n)| AlterEntity {
                        entity_type: t.clone(),
                        entity_name: n.clone(),
                    })
                    .collect(),
                ops: ops
                    .iter()
                    .map(|(key, value)| OpData {
                        key: key.clone(),
                        value: value.unwrap_or(0.0),
                        remove: value.is_none(),
                    })
                    .collect(),
            }],
            validate_only: false,
        };
        let (resp, _) = self
            .client()
            .send_any("alter client quotas", &request, 0, 1)
            .await?;
        for e in resp.entries {
            if e.error_code != 0 {
                return Err(ClientError::kafka(
                    "alter client quotas".to_owned(),
                    e.error_code,
                    e.error_message,
                ));
            }
        }
        Ok(())
    }

    /// The entities a filter selects, with their quotas; `strict` leaves
    /// out entities with types the filter does not name.
    pub async fn describe_client_quotas(
        &self,
        filter: &[(String, QuotaMatch)],
        strict: bool,
    ) -> Result<Vec<(QuotaEntity, Vec<(String, f64)>)>> {
        let request = DescribeClientQuotasRequest {
            components: filter
                .iter()
                .map(|(t, m)| {
                    let (match_type, name) = match m {
                        QuotaMatch::Exact(n) => (0, Some(n.clone())),
                        QuotaMatch::Default => (1, None),
                        QuotaMatch::Any => (2, None),
                    };
                    ComponentData {
                        entity_type: t.clone(),
                        match_type,
                        r#match: name,
                    }
                })
                .collect(),
            strict,
        };
        let (resp, _) = self
            .client()
            .send_any("describe client quotas", &request, 0, 1)
            .await?;
        if resp.error_code != 0 {
            return Err(ClientError::kafka(
                "describe client quotas".to_owned(),
                resp.error_code,
                resp.error_message,
            ));
        }
        Ok(resp
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                (
                    e.entity
                        .into_iter()
                        .map(|d| (d.entity_type, d.entity_name))
                        .collect(),
                    e.values.into_iter().map(|v| (v.key, v.value)).collect(),
                )
            })
            .collect())
    }
}
