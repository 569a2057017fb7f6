//! DescribeAcls (29): DESCRIBE on the cluster; lists the ACLs a filter
//! matches, grouped by resource pattern as Kafka groups them.

use std::collections::BTreeMap;
use std::future::Future;

use sluice_metadata::MetadataImage;
use sluice_metadata::acl::{AclFilter, AclOperation};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_acls::{
    AclDescription, DescribeAclsRequest, DescribeAclsResource, DescribeAclsResponse,
};

use super::RequestContext;
use super::create_acls::NO_AUTHORIZER;
use crate::authz::{self, Authorizer};

/// Handles DescribeAcls against `image`.
pub fn handle(
    image: &MetadataImage,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeAclsRequest,
) -> impl Future<Output = DescribeAclsResponse> + Send + 'static {
    let response = describe(image, authorizer, ctx, &request);
    async move { response }
}

fn describe(
    image: &MetadataImage,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    request: &DescribeAclsRequest,
) -> DescribeAclsResponse {
    let error = |error_code, message: String| DescribeAclsResponse {
        error_code,
        error_message: Some(message),
        ..Default::default()
    };
    if !authorizer.is_enabled() {
        return error(code::SECURITY_DISABLED, NO_AUTHORIZER.to_owned());
    }
    if let Err(c) = authz::check_cluster(authorizer, ctx, AclOperation::Describe) {
        return error(
            c,
            "DESCRIBE on the cluster is required to list ACLs".to_owned(),
        );
    }
    let filter = match AclFilter::from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return error(code::INVALID_REQUEST, e.to_string()),
    };
    let mut by_pattern: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for (_, acl) in image.acls.matching(&filter) {
        by_pattern
            .entry((
                acl.resource_type.code(),
                acl.resource_name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(AclDescription {
                principal: acl.principal.clone(),
                host: acl.host.clone(),
                operation: acl.operation.code(),
                permission_type: acl.permission.code(),
                ..Default::default()
            });
    }
    DescribeAclsResponse {
        resources: by_pattern
            .into_iter()
            .map(
                |((resource_type, resource_name, pattern_type), acls)| DescribeAclsResource {
                    resource_type,
                    resource_name,
                    pattern_type,
                    acls,
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    }
}
