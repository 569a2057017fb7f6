//! ACL administration (KIP-140): CreateAcls, DescribeAcls and DeleteAcls,
//! with Kafka's wire codes for resource, pattern, operation and permission
//! types. The broker forwards creates and deletes to the active controller,
//! so any broker will do.

use sluice_protocol::messages::create_acls::{AclCreation, CreateAclsRequest};
use sluice_protocol::messages::delete_acls::{DeleteAclsFilter, DeleteAclsRequest};
use sluice_protocol::messages::describe_acls::DescribeAclsRequest;

use crate::admin::Admin;
use crate::error::{ClientError, Result};

/// Versions of the ACL APIs this client speaks (Kafka 4 serves 1-3).
const ACL_API_MIN_VERSION: i16 = 1;
/// See [`ACL_API_MIN_VERSION`].
const ACL_API_MAX_VERSION: i16 = 3;

/// One ACL, every field concrete, in Kafka's wire codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// Kafka `ResourceType` code (2 topic, 3 group, 4 cluster, 5 transactional id).
    pub resource_type: i8,
    /// Resource name (`*` for all; `kafka-cluster` for the cluster).
    pub resource_name: String,
    /// Kafka `PatternType` code (3 literal, 4 prefixed).
    pub pattern_type: i8,
    /// `User:name`.
    pub principal: String,
    /// Client address or `*`.
    pub host: String,
    /// Kafka `AclOperation` code.
    pub operation: i8,
    /// Kafka `AclPermissionType` code (2 deny, 3 allow).
    pub permission: i8,
}

/// A pattern over ACLs; `None` and the ANY codes (1) match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilterSpec {
    /// Resource type code, or 1 (ANY).
    pub resource_type: i8,
    /// Resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// Pattern type code: 1 ANY, 2 MATCH, 3 LITERAL, 4 PREFIXED.
    pub pattern_type: i8,
    /// Principal, or `None` for any.
    pub principal: Option<String>,
    /// Host, or `None` for any.
    pub host: Option<String>,
    /// Operation code, or 1 (ANY).
    pub operation: i8,
    /// Permission code, or 1 (ANY).
    pub permission: i8,
}

fn refused(what: &str, code: i16, message: Option<String>) -> ClientError {
    ClientError::kafka(what.to_owned(), code, message)
}

impl Admin {
    /// Creates ACLs; fails on the first one refused.
    pub async fn create_acls(&self, acls: &[AclEntry]) -> Result<()> {
        let request = CreateAclsRequest {
            creations: acls
                .iter()
                .map(|a| AclCreation {
                    resource_type: a.resource_type,
                    resource_name: a.resource_name.clone(),
                    resource_pattern_type: a.pattern_type,
                    principal: a.principal.clone(),
                    host: a.host.clone(),
                    operation: a.operation,
                    permission_type: a.permission,
                })
                .collect(),
        };
        let (resp, _) = self
            .client()
            .send_any(
                "create ACLs",
                &request,
                ACL_API_MIN_VERSION,
                ACL_API_MAX_VERSION,
            )
            .await?;
        for r in resp.results {
            if r.error_code != 0 {
                return Err(refused("create ACL", r.error_code, r.error_message));
            }
        }
        Ok(())
    }

    /// The ACLs `filter` matches.
    pub async fn describe_acls(&self, filter: &AclFilterSpec) -> Result<Vec<AclEntry>> {
        let request = DescribeAclsRequest {
            resource_type_filter: filter.resource_type,
            resource_name_filter: filter.resource_name.clone(),
            pattern_type_filter: filter.pattern_type,
            principal_filter: filter.principal.clone(),
            host_filter: filter.host.clone(),
            operation: filter.operation,
            permission_type: filter.permission,
        };
        let (resp, _) = self
            .client()
            .send_any(
                "describe ACLs",
                &request,
                ACL_API_MIN_VERSION,
                ACL_API_MAX_VERSION,
            )
            .await?;
        if resp.error_code != 0 {
            return Err(refused(
                "describe ACLs",
                resp.error_code,
                resp.error_message,
            ));
        }
        Ok(resp
            .resources
            .into_iter()
            .flat_map(|r| {
                let (rt, name, pt) = (r.resource_type, r.resource_name, r.pattern_type);
                r.acls.into_iter().map(move |a| AclEntry {
                    resource_type: rt,
                    resource_name: name.clone(),
                    pattern_type: pt,
                    principal: a.principal,
                    host: a.host,
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect())
    }

    /// Deletes every ACL the filters match; returns the ACLs deleted.
    pub async fn delete_acls(&self, filters: &[AclFilterSpec]) -> Result<Vec<AclEntry>> {
        let request = DeleteAclsRequest {
            filters: filters
                .iter()
                .map(|f| DeleteAclsFilter {
                    resource_type_filter: f.resource_type,
                    resource_name_filter: f.resource_name.clone(),
                    pattern_type_filter: f.pattern_type,
                    principal_filter: f.principal.clone(),
                    host_filter: f.host.clone(),
                    operation: f.operation,
                    permission_type: f.permission,
                })
                .collect(),
        };
        let (resp, _) = self
            .client()
            .send_any(
                "delete ACLs",
                &request,
                ACL_API_MIN_VERSION,
                ACL_API_MAX_VERSION,
            )
            .await?;
        let mut deleted = Vec::new();
        for r in resp.filter_results {
            if r.error_code != 0 {
                return Err(refused("delete ACLs", r.error_code, r.error_message));
            }
            deleted.extend(r.matching_acls.into_iter().map(|a| AclEntry {
                resource_type: a.resource_type,
                resource_name: a.resource_name,
                pattern_type: a.pattern_type,
                principal: a.principal,
                host: a.host,
                operation: a.operation,
                permission: a.permission_type,
            }));
        }
        Ok(deleted)
    }
}
