//! The authorizer: may this request's principal, from its host, do an
//! operation on a resource? Kafka's standard authorizer over the ACLs the
//! metadata image holds ([`sluice_metadata::acl`]), plus `super_users` and
//! `authorizer.allow_everyone_if_no_acl_found` from the config.
//!
//! Handlers call it at dispatch time, each with Kafka's rule for its API
//! (which operation on which resource, which error code); nothing here
//! knows about APIs. Decisions are cached per ACL generation, so the
//! produce path pays one hash lookup, not an ACL walk.
//!
//! With `authorizer.enabled = false` (the default) every check passes
//! without touching the image, as in Kafka without `authorizer.class.name`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use sluice_metadata::MetadataLog;
use sluice_metadata::acl::{
    AclDecision, AclOperation, AclSet, CLUSTER_RESOURCE_NAME, ResourceType,
};
use sluice_protocol::error::codes;

use crate::Principal;
use crate::config::{AuthorizerConfig, Config};
use crate::context::RequestContext;

/// Most decisions the cache holds. Each is a few dozen bytes plus the
/// resource name; 16,384 covers every (principal, topic, operation) a busy
/// broker sees between ACL changes, and a full cache is simply cleared
/// (the next lookups walk the index again), so a client naming endless
/// topics cannot grow memory.
pub const DECISION_CACHE_ENTRIES: usize = 16_384;

/// Checks requests against the ACLs. One per broker, shared by every
/// connection.
#[derive(Debug)]
pub struct Authorizer {
    /// `authorizer.enabled`.
    enabled: bool,
    /// `authorizer.allow_everyone_if_no_acl_found`.
    allow_everyone_if_no_acl_found: bool,
    /// `super_users`, as `Type:name` strings.
    super_users: HashSet<String>,
    /// Where the current ACLs are: the metadata image (`None` only for
    /// [`Authorizer::allow_all`], which never looks).
    metadata: Option<Arc<dyn MetadataLog>>,
    /// Cached decisions for one ACL generation. A std mutex held only for
    /// a hash lookup or insert, never across an `.await`.
    cache: Mutex<DecisionCache>,
}

/// Decisions for the ACL set of one generation.
#[derive(Debug, Default)]
struct DecisionCache {
    /// The [`AclSet::generation`] the decisions were made against.
    generation: u64,
    /// Decisions by the hash of their key; the key is kept to rule out a
    /// hash collision.
    decisions: HashMap<u64, (CacheKey, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    principal_type: String,
    principal_name: String,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
    name: String,
}

/// The key's hash, computed from borrowed parts so a cache hit allocates
/// nothing. Must hash the fields in [`CacheKey`]'s order.
fn key_hash(
    principal: &Principal,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &str,
) -> u64 {
    let mut h = DefaultHasher::new();
    principal.principal_type.hash(&mut h);
    principal.name.hash(&mut h);
    host.hash(&mut h);
    operation.hash(&mut h);
    resource_type.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

impl Authorizer {
    /// The authorizer the config describes, reading ACLs from `metadata`.
    pub fn new(config: &Config, metadata: Arc<dyn MetadataLog>) -> Authorizer {
        Authorizer::with(&config.authorizer, &config.super_users, metadata)
    }

    /// The authorizer for `authorizer` and `super_users`.
    pub fn with(
        authorizer: &AuthorizerConfig,
        super_users: &[String],
        metadata: Arc<dyn MetadataLog>,
    ) -> Authorizer {
        Authorizer {
            enabled: authorizer.enabled,
            allow_everyone_if_no_acl_found: authorizer.allow_everyone_if_no_acl_found,
            super_users: super_users.iter().cloned().collect(),
            metadata: Some(metadata),
            cache: Mutex::new(DecisionCache::default()),
        }
    }

    /// An authorizer that allows everything (`authorizer.enabled = false`).
    pub fn allow_all() -> Authorizer {
        Authorizer {
            enabled: false,
            allow_everyone_if_no_acl_found: false,
            super_users: HashSet::new(),
            metadata: None,
            cache: Mutex::new(DecisionCache::default()),
        }
    }

    /// The current ACLs.
    fn acls(&self) -> Arc<AclSet> {
        self.metadata
            .as_ref()
            .map_or_else(Arc::default, |m| Arc::clone(&m.image().acls))
    }

    /// True when ACLs are checked. When false the ACL APIs answer
    /// SECURITY_DISABLED, as Kafka does without an authorizer.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// True if the request's principal is in `super_users`.
    pub fn is_super_user(&self, ctx: &RequestContext) -> bool {
        let p = &ctx.principal;
        // Compared without building the `Type:name` string per request.
        self.super_users.iter().any(|s| {
            s.split_once(':')
                .is_some_and(|(t, n)| t == p.principal_type && n == p.name)
        })
    }

    /// May the request's principal do `operation` on the resource?
    pub fn authorize(
        &self,
        ctx: &RequestContext,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.is_super_user(ctx) {
            return true;
        }
        let acls = self.acls();
        let host = ctx.peer.ip();
        let hash = key_hash(&ctx.principal, host, operation, resource_type, name);
        let hit = |cache: &DecisionCache| {
            let (key, allowed) = cache.decisions.get(&hash)?;
            (key.principal_type == ctx.principal.principal_type
                && key.principal_name == ctx.principal.name
                && key.host == host
                && key.operation == operation
                && key.resource_type == resource_type
                && key.name == name)
                .then_some(*allowed)
        };
        if let Ok(cache) = self.cache.lock()
            && cache.generation == acls.generation()
            && let Some(allowed) = hit(&cache)
        {
            return allowed;
        }
        let allowed = self.decide(&acls, &ctx.principal, host, operation, resource_type, name);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.generation != acls.generation()
                || cache.decisions.len() >= DECISION_CACHE_ENTRIES
            {
                cache.decisions.clear();
                cache.generation = acls.generation();
            }
            let key = CacheKey {
                principal_type: ctx.principal.principal_type.clone(),
                principal_name: ctx.principal.name.clone(),
                host,
                operation,
                resource_type,
                name: name.to_owned(),
            };
            cache.decisions.insert(hash, (key, allowed));
        }
        allowed
    }

    /// The uncached decision.
    fn decide(
        &self,
        acls: &AclSet,
        principal: &Principal,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let principal = format!("{}:{}", principal.principal_type, principal.name);
        let host = host.to_string();
        let decision = acls.decide(&principal, &host, operation, resource_type, name);
        let allowed = match decision {
            AclDecision::Allowed => true,
            AclDecision::Denied | AclDecision::NoMatchingAllow => false,
            AclDecision::NoAcls => self.allow_everyone_if_no_acl_found,
        };
        if !allowed {
            tracing::debug!(%principal, %host, %operation, %resource_type, name, ?decision, "denied");
        }
        allowed
    }

    /// How many decisions the cache holds now (for tests and metrics).
    pub fn cached_decisions(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.decisions.len())
    }

    /// [`Authorizer::authorize`] on a topic.
    pub fn topic(&self, ctx: &RequestContext, operation: AclOperation, topic: &str) -> bool {
        self.authorize(ctx, operation, ResourceType::Topic, topic)
    }

    /// [`Authorizer::authorize`] on a consumer group.
    pub fn group(&self, ctx: &RequestContext, operation: AclOperation, group: &str) -> bool {
        self.authorize(ctx, operation, ResourceType::Group, group)
    }

    /// [`Authorizer::authorize`] on a transactional id.
    pub fn transactional_id(
        &self,
        ctx: &RequestContext,
        operation: AclOperation,
        id: &str,
    ) -> bool {
        self.authorize(ctx, operation, ResourceType::TransactionalId, id)
    }

    /// [`Authorizer::authorize`] on the cluster.
    pub fn cluster(&self, ctx: &RequestContext, operation: AclOperation) -> bool {
        self.authorize(ctx, operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// True if the principal may do `operation` on at least one resource
    /// of `resource_type` (Kafka's `authorizeByResourceType`). Not cached:
    /// only InitProducerId without a transactional id asks.
    pub fn any_of_type(
        &self,
        ctx: &RequestContext,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.enabled || self.is_super_user(ctx) {
            return true;
        }
        let acls = self.acls();
        let principal = format!("{}:{}", ctx.principal.principal_type, ctx.principal.name);
        acls.allows_some(
            &principal,
            &ctx.peer.ip().to_string(),
            operation,
            resource_type,
            self.allow_everyone_if_no_acl_found,
        )
    }
}

/// CLUSTER_AUTHORIZATION_FAILED unless the principal may do `operation` on
/// the cluster: the check for APIs that act on the whole cluster (ACLs,
/// SCRAM credentials, client quotas, reassignments). A handler returns the
/// code in its response's error field(s).
pub fn check_cluster(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    operation: AclOperation,
) -> Result<(), i16> {
    if authorizer.cluster(ctx, operation) {
        Ok(())
    } else {
        Err(codes::CLUSTER_AUTHORIZATION_FAILED)
    }
}

/// TOPIC_AUTHORIZATION_FAILED unless the principal may do `operation` on
/// `topic`.
pub fn check_topic(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    operation: AclOperation,
    topic: &str,
) -> Result<(), i16> {
    if authorizer.topic(ctx, operation, topic) {
        Ok(())
    } else {
        Err(codes::TOPIC_AUTHORIZATION_FAILED)
    }
}

/// GROUP_AUTHORIZATION_FAILED unless the principal may do `operation` on
/// `group`.
pub fn check_group(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    operation: AclOperation,
    group: &str,
) -> Result<(), i16> {
    if authorizer.group(ctx, operation, group) {
        Ok(())
    } else {
        Err(codes::GROUP_AUTHORIZATION_FAILED)
    }
}

/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED unless the principal may do
/// `operation` on the transactional id.
pub fn check_transactional_id(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    operation: AclOperation,
    id: &str,
) -> Result<(), i16> {
    if authorizer.transactional_id(ctx, operation, id) {
        Ok(())
    } else {
        Err(codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    }
}
