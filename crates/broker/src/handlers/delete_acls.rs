//! DeleteAcls (31): ALTER on the cluster; runs on the active controller
//! (forwarded there whole), which deletes every ACL the filters match in
//! one commit.

use std::future::Future;
use std::sync::Arc;

use sluice_metadata::Controller;
use sluice_metadata::acl::{AclFilter, AclOperation};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::delete_acls::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsRequest, DeleteAclsResponse,
};

use super::RequestContext;
use super::create_acls::NO_AUTHORIZER;
use crate::authz::{self, Authorizer};

/// Handles DeleteAcls: one result per filter, listing the ACLs it deleted.
/// A filter with an unknown code gets INVALID_REQUEST and deletes nothing;
/// the others still apply.
pub fn handle(
    controller: &Arc<Controller>,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DeleteAclsRequest,
) -> impl Future<Output = DeleteAclsResponse> + Send + 'static {
    let controller = Arc::clone(controller);
    let refused = if !authorizer.is_enabled() {
        Some((code::SECURITY_DISABLED, NO_AUTHORIZER.to_owned()))
    } else if let Err(c) = authz::check_cluster(authorizer, ctx, AclOperation::Alter) {
        Some((
            c,
            "ALTER on the cluster is required to delete ACLs".to_owned(),
        ))
    } else {
        None
    };
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
            .map_err(|e| e.to_string())
        })
        .collect();
    async move {
        let failed = |error_code, message: String| DeleteAclsFilterResult {
            error_code,
            error_message: Some(message),
            ..Default::default()
        };
        if let Some((error_code, message)) = refused {
            return DeleteAclsResponse {
                filter_results: parsed
                    .iter()
                    .map(|_| failed(error_code, message.clone()))
                    .collect(),
                ..Default::default()
            };
        }
        let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
        let deleted = controller.delete_acls(valid).await;
        let mut deleted_lists = match &deleted {
            Ok(lists) => lists.clone().into_iter(),
            Err(_) => Vec::new().into_iter(),
        };
        let filter_results = parsed
            .into_iter()
            .map(|p| match (p, &deleted) {
                (Err(reason), _) => failed(code::INVALID_REQUEST, reason),
                (Ok(_), Err(e)) => failed(e.code, e.message.clone()),
                (Ok(_), Ok(_)) => DeleteAclsFilterResult {
                    matching_acls: deleted_lists
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|acl| DeleteAclsMatchingAcl {
                            error_code: code::NONE,
                            resource_type: acl.resource_type.code(),
                            resource_name: acl.resource_name,
                            pattern_type: acl.pattern_type.code(),
                            principal: acl.principal,
                            host: acl.host,
                            operation: acl.operation.code(),
                            permission_type: acl.permission.code(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            })
            .collect();
        DeleteAclsResponse {
            filter_results,
            ..Default::default()
        }
    }
}
