//! CreateAcls (30): ALTER on the cluster; runs on the active controller
//! (forwarded there whole, like Kafka), which commits one record per new
//! ACL.

use std::future::Future;
use std::sync::Arc;

use sluice_metadata::Controller;
use sluice_metadata::acl::{AclBinding, AclOperation};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::create_acls::{
    AclCreationResult, CreateAclsRequest, CreateAclsResponse,
};

use super::RequestContext;
use crate::authz::{self, Authorizer};

/// Kafka's message when no authorizer is configured.
pub(crate) const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// Handles CreateAcls: one result per creation, in order. Valid creations
/// commit together; invalid ones get INVALID_REQUEST with the reason.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: CreateAclsRequest,
) -> impl Future<Output = CreateAclsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let refused = if !authorizer.is_enabled() {
        Some((code::SECURITY_DISABLED, NO_AUTHORIZER.to_owned()))
    } else if let Err(c) = authz::check_cluster(authorizer, ctx, AclOperation::Alter) {
        Some((
            c,
            "ALTER on the cluster is required to create ACLs".to_owned(),
        ))
    } else {
        None
    };
    let parsed: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|e| e.to_string())
        })
        .collect();
    async move {
        let result = |error_code, error_message| AclCreationResult {
            error_code,
            error_message,
            ..Default::default()
        };
        if let Some((error_code, message)) = refused {
            return CreateAclsResponse {
                results: parsed
                    .iter()
                    .map(|_| result(error_code, Some(message.clone())))
                    .collect(),
                ..Default::default()
            };
        }
        let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
        let committed = controller.create_acls(valid).await;
        let results = parsed
            .into_iter()
            .map(|p| match (p, &committed) {
                (Err(reason), _) => result(code::INVALID_REQUEST, Some(reason)),
                (Ok(_), Ok(())) => result(code::NONE, None),
                (Ok(_), Err(e)) => result(e.code, Some(e.message.clone())),
            })
            .collect();
        CreateAclsResponse {
            results,
            ..Default::default()
        }
    }
}
