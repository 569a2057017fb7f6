//! Kafka's access control lists: the model (resource patterns, operations,
//! permissions), the filters CreateAcls, DescribeAcls and DeleteAcls use,
//! and the ACL set the metadata image holds with the index authorization
//! looks up.
//!
//! The rules follow Kafka's standard authorizer (KIP-11, KIP-290):
//! - an ACL applies to a resource when its pattern is LITERAL with the
//!   resource's name or the wildcard `*`, or PREFIXED with a prefix of the
//!   name;
//! - it applies to a principal when it names it or `User:*`, and to a host
//!   when it names the client's address or `*`;
//! - a matching DENY for the operation (or ALL) wins over every ALLOW;
//! - an ALLOW grants its operation, ALL grants everything, READ, WRITE,
//!   DELETE and ALTER also grant DESCRIBE, ALTER_CONFIGS also grants
//!   DESCRIBE_CONFIGS;
//! - a resource no ACL applies to (for any principal) is open only when
//!   `allow.everyone.if.no.acl.found` is set.
//!
//! Super users are the broker's business (config), not this module's.
//! This module does no I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// The name of the one CLUSTER resource, as Kafka names it.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// A LITERAL resource name that matches every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host that matches every client address.
pub const WILDCARD_HOST: &str = "*";
/// Longest resource name, principal or host an ACL may carry: the
/// metadata record stores each with a 16-bit length.
pub const MAX_ACL_FIELD_BYTES: usize = u16::MAX as usize;

macro_rules! kafka_enum {
    (
        $(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// The value for a wire code; `None` for a code Kafka does not
            /// define (Kafka reads those as UNKNOWN).
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name for it (`kafka-acls.sh` and AdminClient spell
            /// it this way).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// The value named `text` (case-insensitive, `-` or `_`).
            pub fn parse(text: &str) -> Option<$name> {
                let wanted = text.trim().replace('-', "_").to_ascii_uppercase();
                [$($name::$variant,)*].into_iter().find(|v| v.name() == wanted)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum! {
    /// Kafka's `ResourceType`.
    ResourceType {
        /// Filters only: any type.
        Any = 1 => "ANY",
        /// A topic.
        Topic = 2 => "TOPIC",
        /// A consumer group.
        Group = 3 => "GROUP",
        /// The cluster (one resource, `kafka-cluster`).
        Cluster = 4 => "CLUSTER",
        /// A transactional id.
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        /// A delegation token (stored; Sluice issues none).
        DelegationToken = 6 => "DELEGATION_TOKEN",
        /// A user (stored; Sluice has no user-scoped operations to check).
        User = 7 => "USER",
    }
}

kafka_enum! {
    /// Kafka's `PatternType`.
    PatternType {
        /// Filters only: any pattern type, names compared exactly.
        Any = 1 => "ANY",
        /// Filters only: every pattern that would apply to the named resource.
        Match = 2 => "MATCH",
        /// The name exactly (or `*`).
        Literal = 3 => "LITERAL",
        /// Every name starting with the pattern's name.
        Prefixed = 4 => "PREFIXED",
    }
}

kafka_enum! {
    /// Kafka's `AclOperation`.
    AclOperation {
        /// Filters only: any operation.
        Any = 1 => "ANY",
        /// Every operation.
        All = 2 => "ALL",
        /// Read (consume, join a group).
        Read = 3 => "READ",
        /// Write (produce, transactions).
        Write = 4 => "WRITE",
        /// Create topics.
        Create = 5 => "CREATE",
        /// Delete topics, records, groups.
        Delete = 6 => "DELETE",
        /// Alter (partitions, the cluster, ACLs).
        Alter = 7 => "ALTER",
        /// Describe.
        Describe = 8 => "DESCRIBE",
        /// Broker-to-broker actions (replication, transaction markers).
        ClusterAction = 9 => "CLUSTER_ACTION",
        /// Describe configs.
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        /// Alter configs.
        AlterConfigs = 11 => "ALTER_CONFIGS",
        /// Idempotent produce (Kafka 2.x; WRITE on a topic suffices since 3.0).
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        /// Create delegation tokens.
        CreateTokens = 13 => "CREATE_TOKENS",
        /// Describe delegation tokens.
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
        /// Two-phase commit (KIP-939).
        TwoPhaseCommit = 15 => "TWO_PHASE_COMMIT",
    }
}

kafka_enum! {
    /// Kafka's `AclPermissionType`.
    AclPermission {
        /// Filters only: either.
        Any = 1 => "ANY",
        /// Refuse.
        Deny = 2 => "DENY",
        /// Grant.
        Allow = 3 => "ALLOW",
    }
}

impl AclOperation {
    /// True if an ALLOW for `self` grants `wanted` (Kafka's implied
    /// operations).
    pub fn allows(self, wanted: AclOperation) -> bool {
        self == wanted
            || self == AclOperation::All
            || (wanted == AclOperation::Describe
                && matches!(
                    self,
                    AclOperation::Read
                        | AclOperation::Write
                        | AclOperation::Delete
                        | AclOperation::Alter
                ))
            || (wanted == AclOperation::DescribeConfigs && self == AclOperation::AlterConfigs)
    }

    /// True if a DENY for `self` refuses `wanted`: only the operation
    /// itself or ALL (a denied READ still lets DESCRIBE through).
    pub fn denies(self, wanted: AclOperation) -> bool {
        self == wanted || self == AclOperation::All
    }
}

/// One ACL: who may (or may not) do what to which resources, from where.
/// Every field is concrete (no ANY or MATCH).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The resources' type.
    pub resource_type: ResourceType,
    /// The literal name, `*`, or the prefix.
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`, or `User:*`.
    pub principal: String,
    /// A client IP address, or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// ALLOW or DENY.
    pub permission: AclPermission,
}

/// Why an ACL cannot be created; Kafka answers each with INVALID_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A code Kafka does not define, or a filter-only value (ANY, MATCH).
    #[error("invalid {field}: {value}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// The code or value given.
        value: String,
    },
    /// The resource name is empty.
    #[error("the resource name must not be empty")]
    EmptyResourceName,
    /// A CLUSTER ACL not on `kafka-cluster`.
    #[error("the only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}")]
    ClusterName,
    /// The principal is not `Type:name`.
    #[error("invalid principal `{0}`: expected Type:name, e.g. User:alice")]
    Principal(String),
    /// A field longer than a record can hold.
    #[error("{0} is longer than {MAX_ACL_FIELD_BYTES} bytes")]
    TooLong(&'static str),
}

/// Checks a principal string the way Kafka parses one: `Type:name` with a
/// non-empty type and name.
pub fn validate_principal(principal: &str) -> Result<(), AclError> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(AclError::Principal(principal.to_owned())),
    }
}

impl AclBinding {
    /// An ACL from CreateAcls' wire codes, validated as Kafka validates a
    /// new ACL: every type concrete and known, a non-empty name
    /// (`kafka-cluster` for CLUSTER), a `Type:name` principal.
    pub fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, AclError> {
        let invalid = |field: &'static str, code: i8| AclError::InvalidValue {
            field,
            value: code.to_string(),
        };
        let resource_type = ResourceType::from_code(resource_type)
            .filter(|t| *t != ResourceType::Any)
            .ok_or_else(|| invalid("resource type", resource_type))?;
        let pattern_type = PatternType::from_code(pattern_type)
            .filter(|p| matches!(p, PatternType::Literal | PatternType::Prefixed))
            .ok_or_else(|| invalid("pattern type", pattern_type))?;
        let operation = AclOperation::from_code(operation)
            .filter(|o| *o != AclOperation::Any)
            .ok_or_else(|| invalid("operation", operation))?;
        let permission = AclPermission::from_code(permission)
            .filter(|p| *p != AclPermission::Any)
            .ok_or_else(|| invalid("permission type", permission))?;
        let binding = AclBinding {
            resource_type,
            resource_name: resource_name.to_owned(),
            pattern_type,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation,
            permission,
        };
        binding.validate()?;
        Ok(binding)
    }

    /// The checks of [`AclBinding::from_wire`] that concern the strings.
    pub fn validate(&self) -> Result<(), AclError> {
        if self.resource_name.is_empty() {
            return Err(AclError::EmptyResourceName);
        }
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return Err(AclError::ClusterName);
        }
        validate_principal(&self.principal)?;
        for (field, value) in [
            ("resource name", &self.resource_name),
            ("principal", &self.principal),
            ("host", &self.host),
        ] {
            if value.len() > MAX_ACL_FIELD_BYTES {
                return Err(AclError::TooLong(field));
            }
        }
        if self.host.is_empty() {
            return Err(AclError::InvalidValue {
                field: "host",
                value: String::new(),
            });
        }
        Ok(())
    }
}

/// A pattern over ACLs (DescribeAcls, DeleteAcls): `None` strings and ANY
/// codes match everything; MATCH selects the ACLs that apply to a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// ANY or a type.
    pub resource_type: ResourceType,
    /// A name, or `None` for any.
    pub resource_name: Option<String>,
    /// ANY, MATCH, LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// A principal (compared exactly), or `None` for any.
    pub principal: Option<String>,
    /// A host (compared exactly), or `None` for any.
    pub host: Option<String>,
    /// ANY or an operation (compared exactly).
    pub operation: AclOperation,
    /// ANY or a permission.
    pub permission: AclPermission,
}

impl AclFilter {
    /// The filter that matches every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// A filter from the wire; a code Kafka does not define is an error
    /// (Kafka reads it as UNKNOWN and refuses the filter).
    pub fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, AclError> {
        let invalid = |field: &'static str, code: i8| AclError::InvalidValue {
            field,
            value: code.to_string(),
        };
        Ok(AclFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| invalid("resource type filter", resource_type))?,
            resource_name: resource_name.map(str::to_owned),
            pattern_type: PatternType::from_code(pattern_type)
                .ok_or_else(|| invalid("pattern type filter", pattern_type))?,
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: AclOperation::from_code(operation)
                .ok_or_else(|| invalid("operation filter", operation))?,
            permission: AclPermission::from_code(permission)
                .ok_or_else(|| invalid("permission type filter", permission))?,
        })
    }

    /// True if `acl` matches, with Kafka's resource pattern filter rules:
    /// ANY compares names exactly across pattern types, MATCH takes every
    /// pattern that applies to the named resource (literal, `*`, prefixes),
    /// LITERAL and PREFIXED compare type and name exactly. The principal,
    /// host, operation and permission compare exactly (no wildcards, no
    /// implied operations).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let name_matches = match &self.resource_name {
            None => true,
            Some(name) => {
                if self.pattern_type != PatternType::Match {
                    *name == acl.resource_name
                } else {
                    match acl.pattern_type {
                        PatternType::Literal => {
                            *name == acl.resource_name || acl.resource_name == WILDCARD_RESOURCE
                        }
                        PatternType::Prefixed => name.starts_with(&acl.resource_name),
                        PatternType::Any | PatternType::Match => false,
                    }
                }
            }
        };
        name_matches
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == AclPermission::Any || self.permission == acl.permission)
    }
}

/// Bumped on every change to any [`AclSet`] in this process, so a cache
/// keyed on [`AclSet::generation`] can never mistake one set for another.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// Every ACL the metadata holds, by id, with an index by resource for
/// authorization. Two sets are equal when they hold the same ACLs.
#[derive(Debug, Clone, Default)]
pub struct AclSet {
    /// The ACLs by record id (ordered, so snapshots are deterministic).
    by_id: BTreeMap<Uuid, AclBinding>,
    /// Ids by (resource type, pattern type, name): the lookup
    /// authorization does per resource name and per prefix of it.
    index: HashMap<(ResourceType, PatternType), HashMap<String, Vec<Uuid>>>,
    /// Changes with every mutation (process-local, not replicated).
    generation: u64,
}

impl PartialEq for AclSet {
    fn eq(&self, other: &AclSet) -> bool {
        self.by_id == other.by_id
    }
}

/// The outcome of looking a request up in the ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclDecision {
    /// A matching DENY.
    Denied,
    /// A matching ALLOW and no matching DENY.
    Allowed,
    /// ACLs apply to the resource, none of them grants this request.
    NoMatchingAllow,
    /// No ACL applies to the resource at all (for any principal).
    NoAcls,
}

impl AclSet {
    /// True if there are no ACLs.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// How many ACLs there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Changes whenever the set does: what an authorization cache keys on.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every ACL with its id, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &AclBinding)> {
        self.by_id.iter()
    }

    /// The id of an ACL equal to `acl`, if the set holds one.
    pub fn find(&self, acl: &AclBinding) -> Option<Uuid> {
        self.index
            .get(&(acl.resource_type, acl.pattern_type))?
            .get(&acl.resource_name)?
            .iter()
            .copied()
            .find(|id| self.by_id.get(id) == Some(acl))
    }

    /// Adds `acl` under `id`; false if the id is taken.
    pub fn insert(&mut self, id: Uuid, acl: AclBinding) -> bool {
        if self.by_id.contains_key(&id) {
            return false;
        }
        self.index
            .entry((acl.resource_type, acl.pattern_type))
            .or_default()
            .entry(acl.resource_name.clone())
            .or_default()
            .push(id);
        self.by_id.insert(id, acl);
        self.bump();
        true
    }

    /// Removes the ACL `id`; false if there is none.
    pub fn remove(&mut self, id: &Uuid) -> bool {
        let Some(acl) = self.by_id.remove(id) else {
            return false;
        };
        let key = (acl.resource_type, acl.pattern_type);
        if let Some(names) = self.index.get_mut(&key) {
            if let Some(ids) = names.get_mut(&acl.resource_name) {
                ids.retain(|i| i != id);
                if ids.is_empty() {
                    names.remove(&acl.resource_name);
                }
            }
            if names.is_empty() {
                self.index.remove(&key);
            }
        }
        self.bump();
        true
    }

    fn bump(&mut self) {
        self.generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
    }

    /// The ACLs `filter` matches, with their ids.
    pub fn matching<'a>(
        &'a self,
        filter: &'a AclFilter,
    ) -> impl Iterator<Item = (&'a Uuid, &'a AclBinding)> + 'a {
        self.by_id
            .iter()
            .filter(move |(_, acl)| filter.matches(acl))
    }

    /// The ACLs whose pattern applies to the resource `(resource_type,
    /// name)`: LITERAL on the name or `*`, PREFIXED on any prefix of it.
    /// One hash lookup per prefix length, never a scan of the set.
    fn applying<'a>(
        &'a self,
        resource_type: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let literal = [name, WILDCARD_RESOURCE]
            .into_iter()
            // The wildcard resource looked up once even when it is the name.
            .take(if name == WILDCARD_RESOURCE { 1 } else { 2 })
            .map(move |n| (PatternType::Literal, n));
        // No prefix lookups at all while no PREFIXED ACL of this type exists.
        let has_prefixed = self
            .index
            .contains_key(&(resource_type, PatternType::Prefixed));
        let prefixed = name
            .char_indices()
            .take_while(move |_| has_prefixed)
            .map(|(i, c)| &name[..i + c.len_utf8()])
            .map(|n| (PatternType::Prefixed, n));
        literal
            .chain(prefixed)
            .filter_map(move |(pattern, n)| self.index.get(&(resource_type, pattern))?.get(n))
            .flatten()
            .filter_map(|id| self.by_id.get(id))
    }

    /// Looks up whether `principal` (`Type:name`) connecting from `host`
    /// may do `operation` on `(resource_type, name)`: deny wins, then
    /// allow (with implied operations), then whether any ACL applied to
    /// the resource at all.
    pub fn decide(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> AclDecision {
        let mut any = false;
        let mut allowed = false;
        for acl in self.applying(resource_type, name) {
            any = true;
            let applies = (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
                && (acl.host == WILDCARD_HOST || acl.host == host);
            if !applies {
                continue;
            }
            match acl.permission {
                AclPermission::Deny if acl.operation.denies(operation) => {
                    return AclDecision::Denied;
                }
                AclPermission::Allow if acl.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        match (allowed, any) {
            (true, _) => AclDecision::Allowed,
            (false, true) => AclDecision::NoMatchingAllow,
            (false, false) => AclDecision::NoAcls,
        }
    }

    /// True if `principal` from `host` may do `operation` on at least one
    /// resource of `resource_type` (Kafka's `authorizeByResourceType`, used
    /// where a request names no resource: an idempotent InitProducerId
    /// needs WRITE on some topic). An ALLOW counts unless a DENY covers
    /// everything it grants: a literal `*` deny, the same literal name, or
    /// a deny prefix of the allowed name.
    pub fn allows_some(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        allow_everyone_if_no_acl_found: bool,
    ) -> bool {
        let applies = |acl: &AclBinding| {
            acl.resource_type == resource_type
                && (acl.principal == principal || acl.principal == WILDCARD_PRINCIPAL)
                && (acl.host == WILDCARD_HOST || acl.host == host)
        };
        let denies: Vec<&AclBinding> = self
            .by_id
            .values()
            .filter(|a| {
                applies(a) && a.permission == AclPermission::Deny && a.operation.denies(operation)
            })
            .collect();
        let covered = |allow: &AclBinding| {
            denies.iter().any(|d| match d.pattern_type {
                PatternType::Literal => {
                    d.resource_name == WILDCARD_RESOURCE
                        || (allow.pattern_type == PatternType::Literal
                            && d.resource_name == allow.resource_name)
                }
                PatternType::Prefixed => allow.resource_name.starts_with(&d.resource_name),
                PatternType::Any | PatternType::Match => false,
            })
        };
        let granted = self.by_id.values().any(|a| {
            applies(a)
                && a.permission == AclPermission::Allow
                && a.operation.allows(operation)
                && !covered(a)
        });
        granted
            || (allow_everyone_if_no_acl_found
                && !self
                    .by_id
                    .values()
                    .any(|a| a.resource_type == resource_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        host: &str,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.to_owned(),
            pattern_type,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation,
            permission,
        }
    }

    fn allow_topic(name: &str, pattern: PatternType, op: AclOperation) -> AclBinding {
        acl(
            ResourceType::Topic,
            name,
            pattern,
            "User:alice",
            "*",
            op,
            AclPermission::Allow,
        )
    }

    fn set(acls: &[AclBinding]) -> AclSet {
        let mut s = AclSet::default();
        for (i, a) in acls.iter().enumerate() {
            assert!(s.insert(Uuid::from_u128(i as u128 + 1), a.clone()));
        }
        s
    }

    fn topic(s: &AclSet, principal: &str, host: &str, op: AclOperation, name: &str) -> AclDecision {
        s.decide(principal, host, op, ResourceType::Topic, name)
    }

    use AclOperation as Op;
    use PatternType as P;

    #[test]
    fn literal_prefixed_and_wildcard_patterns_apply_to_the_names_they_cover() {
        let s = set(&[allow_topic("orders", P::Literal, Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "1.2.3.4", Op::Read, "orders"),
            AclDecision::Allowed
        );
        assert_eq!(
            topic(&s, "User:alice", "1.2.3.4", Op::Read, "orders2"),
            AclDecision::NoAcls
        );
        assert_eq!(
            topic(&s, "User:alice", "1.2.3.4", Op::Read, "order"),
            AclDecision::NoAcls
        );

        let s = set(&[allow_topic("ord", P::Prefixed, Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "orders"),
            AclDecision::Allowed
        );
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "ord"),
            AclDecision::Allowed
        );
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "or"),
            AclDecision::NoAcls
        );
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "xorders"),
            AclDecision::NoAcls
        );

        let s = set(&[allow_topic("*", P::Literal, Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "anything"),
            AclDecision::Allowed
        );
        // A prefixed `*` is a prefix of names starting with `*` only.
        let s = set(&[allow_topic("*", P::Prefixed, Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "anything"),
            AclDecision::NoAcls
        );
        // Another resource type is another namespace.
        let s = set(&[allow_topic("orders", P::Literal, Op::Read)]);
        assert_eq!(
            s.decide("User:alice", "h", Op::Read, ResourceType::Group, "orders"),
            AclDecision::NoAcls
        );
    }

    #[test]
    fn a_prefix_that_splits_a_multibyte_character_is_looked_up_safely() {
        let s = set(&[allow_topic("é", P::Prefixed, Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "éa"),
            AclDecision::Allowed
        );
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "aé"),
            AclDecision::NoAcls
        );
    }

    #[test]
    fn implied_operations_follow_kafka() {
        for granted in [Op::Read, Op::Write, Op::Delete, Op::Alter] {
            let s = set(&[allow_topic("t", P::Literal, granted)]);
            assert_eq!(
                topic(&s, "User:alice", "h", Op::Describe, "t"),
                AclDecision::Allowed,
                "{granted} implies DESCRIBE"
            );
        }
        for not_implying in [
            Op::Create,
            Op::DescribeConfigs,
            Op::AlterConfigs,
            Op::ClusterAction,
        ] {
            let s = set(&[allow_topic("t", P::Literal, not_implying)]);
            assert_eq!(
                topic(&s, "User:alice", "h", Op::Describe, "t"),
                AclDecision::NoMatchingAllow,
                "{not_implying}"
            );
        }
        let s = set(&[allow_topic("t", P::Literal, Op::AlterConfigs)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::DescribeConfigs, "t"),
            AclDecision::Allowed
        );
        let s = set(&[allow_topic("t", P::Literal, Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Write, "t"),
            AclDecision::NoMatchingAllow
        );
        let s = set(&[allow_topic("t", P::Literal, Op::All)]);
        for op in [
            Op::Read,
            Op::Write,
            Op::Create,
            Op::Delete,
            Op::Alter,
            Op::Describe,
            Op::DescribeConfigs,
            Op::AlterConfigs,
        ] {
            assert_eq!(
                topic(&s, "User:alice", "h", op, "t"),
                AclDecision::Allowed,
                "ALL grants {op}"
            );
        }
    }

    #[test]
    fn deny_wins_over_every_allow_but_denies_only_its_own_operation() {
        let deny = |op| {
            acl(
                ResourceType::Topic,
                "t",
                P::Literal,
                "User:alice",
                "*",
                op,
                AclPermission::Deny,
            )
        };
        let s = set(&[allow_topic("*", P::Literal, Op::All), deny(Op::Write)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Write, "t"),
            AclDecision::Denied
        );
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "t"),
            AclDecision::Allowed
        );
        // A denied READ does not deny the DESCRIBE it would imply.
        let s = set(&[allow_topic("t", P::Literal, Op::Describe), deny(Op::Read)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Describe, "t"),
            AclDecision::Allowed
        );
        // A denied ALL denies everything, a wildcard-principal deny too.
        let s = set(&[allow_topic("t", P::Literal, Op::Read), deny(Op::All)]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Describe, "t"),
            AclDecision::Denied
        );
        let everyone = acl(
            ResourceType::Topic,
            "t",
            P::Prefixed,
            "User:*",
            "*",
            Op::Read,
            AclPermission::Deny,
        );
        let s = set(&[allow_topic("t", P::Literal, Op::Read), everyone]);
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "t"),
            AclDecision::Denied
        );
    }

    #[test]
    fn principals_and_hosts_match_exactly_or_by_wildcard() {
        let s = set(&[acl(
            ResourceType::Topic,
            "t",
            P::Literal,
            "User:alice",
            "10.0.0.1",
            Op::Read,
            AclPermission::Allow,
        )]);
        assert_eq!(
            topic(&s, "User:alice", "10.0.0.1", Op::Read, "t"),
            AclDecision::Allowed
        );
        assert_eq!(
            topic(&s, "User:alice", "10.0.0.2", Op::Read, "t"),
            AclDecision::NoMatchingAllow
        );
        assert_eq!(
            topic(&s, "User:bob", "10.0.0.1", Op::Read, "t"),
            AclDecision::NoMatchingAllow
        );
        assert_eq!(
            topic(&s, "Group:alice", "10.0.0.1", Op::Read, "t"),
            AclDecision::NoMatchingAllow
        );
        let s = set(&[acl(
            ResourceType::Topic,
            "t",
            P::Literal,
            "User:*",
            "*",
            Op::Read,
            AclPermission::Allow,
        )]);
        assert_eq!(
            topic(&s, "User:bob", "10.9.9.9", Op::Read, "t"),
            AclDecision::Allowed
        );
    }

    #[test]
    fn allows_some_finds_a_grant_not_covered_by_a_deny() {
        let s = set(&[allow_topic("a", P::Literal, Op::Write)]);
        assert!(s.allows_some("User:alice", "h", Op::Write, ResourceType::Topic, false));
        assert!(!s.allows_some("User:bob", "h", Op::Write, ResourceType::Topic, false));
        assert!(!s.allows_some("User:alice", "h", Op::Write, ResourceType::Group, false));
        let deny_all = acl(
            ResourceType::Topic,
            "*",
            P::Literal,
            "User:alice",
            "*",
            Op::Write,
            AclPermission::Deny,
        );
        let s = set(&[allow_topic("a", P::Literal, Op::Write), deny_all]);
        assert!(!s.allows_some("User:alice", "h", Op::Write, ResourceType::Topic, false));
        let deny_prefix = acl(
            ResourceType::Topic,
            "a",
            P::Prefixed,
            "User:alice",
            "*",
            Op::Write,
            AclPermission::Deny,
        );
        let s = set(&[
            allow_topic("ab", P::Prefixed, Op::Write),
            deny_prefix.clone(),
        ]);
        assert!(!s.allows_some("User:alice", "h", Op::Write, ResourceType::Topic, false));
        let s = set(&[allow_topic("b", P::Literal, Op::Write), deny_prefix]);
        assert!(s.allows_some("User:alice", "h", Op::Write, ResourceType::Topic, false));
        assert!(AclSet::default().allows_some("User:x", "h", Op::Write, ResourceType::Topic, true));
        assert!(!AclSet::default().allows_some(
            "User:x",
            "h",
            Op::Write,
            ResourceType::Topic,
            false
        ));
    }

    #[test]
    fn new_acls_are_validated_as_kafka_validates_them() {
        let ok = AclBinding::from_wire(2, "t", 3, "User:a", "*", 3, 3).expect("valid");
        assert_eq!(ok.operation, Op::Read);
        let bad = [
            (0, "t", 3, "User:a", 3, 3), // UNKNOWN resource type
            (1, "t", 3, "User:a", 3, 3), // ANY resource type
            (2, "t", 1, "User:a", 3, 3), // ANY pattern
            (2, "t", 2, "User:a", 3, 3), // MATCH pattern
            (2, "t", 9, "User:a", 3, 3), // unknown pattern
            (2, "t", 3, "User:a", 1, 3), // ANY operation
            (2, "t", 3, "User:a", 0, 3), // UNKNOWN operation
            (2, "t", 3, "User:a", 3, 1), // ANY permission
            (2, "", 3, "User:a", 3, 3),  // empty name
            (4, "c", 3, "User:a", 3, 3), // cluster not kafka-cluster
            (2, "t", 3, "alice", 3, 3),  // principal without a type
            (2, "t", 3, "User:", 3, 3),  // principal without a name
        ];
        for (rt, name, pt, principal, op, perm) in bad {
            assert!(
                AclBinding::from_wire(rt, name, pt, principal, "*", op, perm).is_err(),
                "{rt} {name} {pt} {principal} {op} {perm}"
            );
        }
        assert!(AclBinding::from_wire(4, "kafka-cluster", 3, "User:a", "*", 7, 3).is_ok());
        assert!(AclBinding::from_wire(2, &"x".repeat(70_000), 3, "User:a", "*", 3, 3).is_err());
    }

    #[test]
    fn filters_follow_kafka_any_and_match_semantics() {
        let literal = allow_topic("orders", P::Literal, Op::Read);
        let wildcard = allow_topic("*", P::Literal, Op::Read);
        let prefixed = allow_topic("ord", P::Prefixed, Op::Read);
        let other = allow_topic("payments", P::Literal, Op::Read);
        let named = |pattern_type, name: &str| AclFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some(name.to_owned()),
            pattern_type,
            ..AclFilter::any()
        };
        let hits = |f: &AclFilter| [&literal, &wildcard, &prefixed, &other].map(|a| f.matches(a));
        assert_eq!(hits(&named(P::Match, "orders")), [true, true, true, false]);
        assert_eq!(hits(&named(P::Any, "orders")), [true, false, false, false]);
        assert_eq!(hits(&named(P::Any, "ord")), [false, false, true, false]);
        assert_eq!(
            hits(&named(P::Literal, "orders")),
            [true, false, false, false]
        );
        assert_eq!(hits(&named(P::Literal, "*")), [false, true, false, false]);
        assert_eq!(
            hits(&named(P::Prefixed, "ord")),
            [false, false, true, false]
        );
        assert_eq!(
            hits(&named(P::Prefixed, "orders")),
            [false, false, false, false]
        );
        assert_eq!(hits(&AclFilter::any()), [true; 4]);
        let by_type = AclFilter {
            pattern_type: P::Prefixed,
            ..AclFilter::any()
        };
        assert_eq!(hits(&by_type), [false, false, true, false]);
        let group = AclFilter {
            resource_type: ResourceType::Group,
            ..AclFilter::any()
        };
        assert_eq!(hits(&group), [false; 4]);
        // Principal, host, operation and permission compare exactly.
        let wild_principal = AclFilter {
            principal: Some("User:*".into()),
            ..AclFilter::any()
        };
        assert_eq!(hits(&wild_principal), [false; 4]);
        let alice_read = AclFilter {
            principal: Some("User:alice".into()),
            operation: Op::Read,
            ..AclFilter::any()
        };
        assert_eq!(hits(&alice_read), [true; 4]);
        let describe = AclFilter {
            operation: Op::Describe,
            ..AclFilter::any()
        };
        assert_eq!(hits(&describe), [false; 4]);
        let deny = AclFilter {
            permission: AclPermission::Deny,
            ..AclFilter::any()
        };
        assert_eq!(hits(&deny), [false; 4]);
        let host = AclFilter {
            host: Some("1.2.3.4".into()),
            ..AclFilter::any()
        };
        assert_eq!(hits(&host), [false; 4]);
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
        assert!(AclFilter::from_wire(1, None, 1, None, None, 1, 1).is_ok());
    }

    #[test]
    fn the_generation_changes_with_every_change_and_equality_ignores_it() {
        let mut s = AclSet::default();
        let g0 = s.generation();
        assert!(s.insert(Uuid::from_u128(1), allow_topic("t", P::Literal, Op::Read)));
        let g1 = s.generation();
        assert_ne!(g0, g1);
        assert!(!s.insert(Uuid::from_u128(1), allow_topic("u", P::Literal, Op::Read)));
        assert_eq!(
            s.find(&allow_topic("t", P::Literal, Op::Read)),
            Some(Uuid::from_u128(1))
        );
        let copy = set(&[allow_topic("t", P::Literal, Op::Read)]);
        assert_eq!(s, copy);
        assert!(s.remove(&Uuid::from_u128(1)));
        assert_ne!(s.generation(), g1);
        assert!(!s.remove(&Uuid::from_u128(1)));
        assert!(s.is_empty());
        assert_eq!(
            topic(&s, "User:alice", "h", Op::Read, "t"),
            AclDecision::NoAcls
        );
    }

    #[test]
    fn names_parse_in_kafka_spellings() {
        assert_eq!(
            AclOperation::parse("describe-configs"),
            Some(Op::DescribeConfigs)
        );
        assert_eq!(AclOperation::parse("Read"), Some(Op::Read));
        assert_eq!(
            ResourceType::parse("transactional_id"),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(PatternType::parse("PREFIXED"), Some(P::Prefixed));
        assert_eq!(AclOperation::parse("fly"), None);
    }
}
