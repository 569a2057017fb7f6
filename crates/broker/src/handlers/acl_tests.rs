//! Authorization, per API family: the ACL APIs themselves, and for each
//! family a denied request gets Kafka's error code and changes nothing,
//! while the same request with the ACL granted goes through.

use std::sync::Arc;

use sluice_metadata::acl::{
    AclBinding, AclFilter, AclOperation as Op, AclPermission, PatternType, ResourceType,
};
use sluice_protocol::error::codes as code;

use super::RequestContext;
use crate::authz::Authorizer;
use crate::config::Config;
use crate::testing::{self, Node};

const ALICE: &str = "User:alice";

fn alice() -> RequestContext {
    testing::ctx_of(ALICE)
}

/// A node with the authorizer on, `admin` a super user.
async fn secured(dir: &std::path::Path) -> Node {
    let mut config = testing::authorizing_config();
    config.super_users = vec!["User:admin".to_owned()];
    testing::node_with(dir, config).await
}

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    operation: Op,
    permission: AclPermission,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation,
        permission,
    }
}

fn allow(resource_type: ResourceType, name: &str, operation: Op) -> AclBinding {
    acl(
        resource_type,
        name,
        PatternType::Literal,
        ALICE,
        operation,
        AclPermission::Allow,
    )
}

async fn grant(node: &Node, acls: &[AclBinding]) {
    node.controller
        .create_acls(acls.to_vec())
        .await
        .expect("commit ACLs");
}

mod authorizer {
    use super::*;

    #[tokio::test]
    async fn decisions_follow_acl_changes_through_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        let authz = &node.authorizer;
        assert!(!authz.topic(&alice(), Op::Read, "t"), "no ACL: denied");
        // Asked again: answered from the cache, still denied.
        assert!(!authz.topic(&alice(), Op::Read, "t"));
        grant(&node, &[allow(ResourceType::Topic, "t", Op::Read)]).await;
        assert!(authz.topic(&alice(), Op::Read, "t"), "the new ACL is seen");
        assert!(
            authz.topic(&alice(), Op::Describe, "t"),
            "READ implies DESCRIBE"
        );
        assert!(!authz.topic(&alice(), Op::Write, "t"));
        let deleted = node
            .controller
            .delete_acls(vec![AclFilter::any()])
            .await
            .expect("delete");
        assert_eq!(deleted[0].len(), 1);
        assert!(
            !authz.topic(&alice(), Op::Read, "t"),
            "the deletion is seen"
        );
    }

    #[tokio::test]
    async fn super_users_pass_and_allow_everyone_applies_only_where_no_acl_exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config: Config = testing::authorizing_config();
        config.super_users = vec!["User:admin".to_owned()];
        config.authorizer.allow_everyone_if_no_acl_found = true;
        let node = testing::node_with(dir.path(), config).await;
        let authz = &node.authorizer;
        let admin = testing::ctx_of("User:admin");
        let bob = testing::ctx_of("User:bob");
        assert!(authz.topic(&bob, Op::Write, "open"), "no ACL on the topic");
        grant(&node, &[allow(ResourceType::Topic, "guarded", Op::Read)]).await;
        assert!(authz.topic(&alice(), Op::Read, "guarded"));
        assert!(
            !authz.topic(&bob, Op::Read, "guarded"),
            "an ACL exists, not for bob"
        );
        assert!(authz.topic(&bob, Op::Read, "open"));
        let deny_admin = acl(
            ResourceType::Topic,
            "guarded",
            PatternType::Literal,
            "User:admin",
            Op::All,
            AclPermission::Deny,
        );
        grant(&node, &[deny_admin]).await;
        assert!(
            authz.topic(&admin, Op::Delete, "guarded"),
            "super users bypass ACLs"
        );
        assert!(authz.cluster(&admin, Op::Alter));
        assert!(authz.is_super_user(&admin) && !authz.is_super_user(&bob));
    }

    #[tokio::test]
    async fn the_host_of_an_acl_is_the_clients_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        let mut from_elsewhere = alice();
        from_elsewhere.peer = "10.1.2.3:5000".parse().expect("addr");
        let mut rule = allow(ResourceType::Topic, "t", Op::Read);
        rule.host = "127.0.0.1".to_owned();
        grant(&node, &[rule]).await;
        assert!(node.authorizer.topic(&alice(), Op::Read, "t"));
        assert!(!node.authorizer.topic(&from_elsewhere, Op::Read, "t"));
    }

    #[test]
    fn a_disabled_authorizer_allows_everything() {
        let authz = Authorizer::allow_all();
        assert!(!authz.is_enabled());
        assert!(authz.cluster(&alice(), Op::Alter));
        assert!(authz.topic(&alice(), Op::Delete, "__consumer_offsets"));
        assert!(authz.any_of_type(&alice(), Op::Write, ResourceType::Topic));
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        for i in 0..(crate::authz::DECISION_CACHE_ENTRIES + 10) {
            assert!(!node.authorizer.topic(&alice(), Op::Read, &format!("t{i}")));
        }
        assert!(node.authorizer.cached_decisions() <= crate::authz::DECISION_CACHE_ENTRIES);
    }
}

mod acl_apis {
    use sluice_protocol::messages::create_acls::{AclCreation, CreateAclsRequest};
    use sluice_protocol::messages::delete_acls::{DeleteAclsFilter, DeleteAclsRequest};
    use sluice_protocol::messages::describe_acls::DescribeAclsRequest;

    use super::super::{create_acls, delete_acls, describe_acls};
    use super::*;

    fn creation(rt: i8, name: &str, pattern: i8, principal: &str, op: i8, perm: i8) -> AclCreation {
        AclCreation {
            resource_type: rt,
            resource_name: name.to_owned(),
            resource_pattern_type: pattern,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation: op,
            permission_type: perm,
        }
    }

    async fn create(node: &Node, ctx: &RequestContext, creations: Vec<AclCreation>) -> Vec<i16> {
        create_acls::handle(
            &node.controller,
            &node.authorizer,
            ctx,
            &testing::header(30, 3),
            CreateAclsRequest { creations },
        )
        .await
        .results
        .into_iter()
        .map(|r| r.error_code)
        .collect()
    }

    fn describe_request(rt: i8, name: Option<&str>, pattern: i8) -> DescribeAclsRequest {
        DescribeAclsRequest {
            resource_type_filter: rt,
            resource_name_filter: name.map(str::to_owned),
            pattern_type_filter: pattern,
            principal_filter: None,
            host_filter: None,
            operation: 1,
            permission_type: 1,
        }
    }

    /// `(resource name, pattern type, principal, operation)` of every ACL listed.
    async fn describe(
        node: &Node,
        ctx: &RequestContext,
        request: DescribeAclsRequest,
    ) -> (i16, Vec<(String, i8, String, i8)>) {
        let response = describe_acls::handle(
            &node.image(),
            &node.authorizer,
            ctx,
            &testing::header(29, 3),
            request,
        )
        .await;
        let listed = response
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(|a| {
                    (
                        r.resource_name.clone(),
                        r.pattern_type,
                        a.principal.clone(),
                        a.operation,
                    )
                })
            })
            .collect();
        (response.error_code, listed)
    }

    #[tokio::test]
    async fn acls_round_trip_through_create_describe_and_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        let admin = testing::ctx_of("User:admin");
        let codes = create(
            &node,
            &admin,
            vec![
                creation(2, "orders", 3, ALICE, 3, 3),
                creation(2, "ord", 4, ALICE, 4, 3),
                creation(2, "*", 3, "User:bob", 8, 3),
                creation(2, "payments", 3, ALICE, 3, 3),
                creation(2, "bad", 2, ALICE, 3, 3), // MATCH is a filter only
                creation(2, "bad", 3, "alice", 3, 3), // no principal type
                creation(4, "kafka-cluster", 3, ALICE, 7, 3),
            ],
        )
        .await;
        assert_eq!(
            codes,
            [
                code::NONE,
                code::NONE,
                code::NONE,
                code::NONE,
                code::INVALID_REQUEST,
                code::INVALID_REQUEST,
                code::NONE
            ]
        );
        assert_eq!(node.image().acls.len(), 5);
        // Creating one again changes nothing (Kafka: no duplicates).
        assert_eq!(
            create(&node, &admin, vec![creation(2, "orders", 3, ALICE, 3, 3)]).await,
            [code::NONE]
        );
        assert_eq!(node.image().acls.len(), 5);

        // MATCH on a topic: its literal, wildcard and prefix ACLs.
        let (error, listed) = describe(&node, &admin, describe_request(2, Some("orders"), 2)).await;
        assert_eq!(error, code::NONE);
        let mut names: Vec<&str> = listed.iter().map(|l| l.0.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["*", "ord", "orders"]);
        // ANY: the exact name across pattern types.
        let (_, listed) = describe(&node, &admin, describe_request(2, Some("ord"), 1)).await;
        assert_eq!(listed, [("ord".to_owned(), 4, ALICE.to_owned(), 4)]);
        // Everything.
        let (_, listed) = describe(&node, &admin, describe_request(1, None, 1)).await;
        assert_eq!(listed.len(), 5);
        // A filter with an unknown code.
        let (error, _) = describe(&node, &admin, describe_request(0, None, 1)).await;
        assert_eq!(error, code::INVALID_REQUEST);

        // Delete with a MATCH filter on `orders`, and an invalid filter.
        let filter = |rt: i8, name: Option<&str>, pattern: i8| DeleteAclsFilter {
            resource_type_filter: rt,
            resource_name_filter: name.map(str::to_owned),
            pattern_type_filter: pattern,
            principal_filter: Some(ALICE.to_owned()),
            host_filter: None,
            operation: 1,
            permission_type: 1,
        };
        let response = delete_acls::handle(
            &node.controller,
            &node.authorizer,
            &admin,
            &testing::header(31, 3),
            DeleteAclsRequest {
                filters: vec![filter(2, Some("orders"), 2), filter(2, None, 9)],
            },
        )
        .await;
        let results = &response.filter_results;
        assert_eq!(results[0].error_code, code::NONE);
        let mut deleted: Vec<&str> = results[0]
            .matching_acls
            .iter()
            .map(|a| a.resource_name.as_str())
            .collect();
        deleted.sort_unstable();
        // bob's wildcard ACL is not alice's: kept.
        assert_eq!(deleted, ["ord", "orders"]);
        assert_eq!(results[1].error_code, code::INVALID_REQUEST);
        let (_, listed) = describe(&node, &admin, describe_request(1, None, 1)).await;
        let mut left: Vec<&str> = listed.iter().map(|l| l.0.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["*", "kafka-cluster", "payments"]);
    }

    #[tokio::test]
    async fn acl_apis_need_the_cluster_permissions_and_a_denied_create_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        let codes = create(&node, &alice(), vec![creation(2, "t", 3, ALICE, 3, 3)]).await;
        assert_eq!(codes, [code::CLUSTER_AUTHORIZATION_FAILED]);
        assert!(node.image().acls.is_empty());
        let (error, _) = describe(&node, &alice(), describe_request(1, None, 1)).await;
        assert_eq!(error, code::CLUSTER_AUTHORIZATION_FAILED);
        // ALTER on the cluster lets alice administer ACLs (and list them:
        // ALTER implies DESCRIBE).
        grant(
            &node,
            &[allow(ResourceType::Cluster, "kafka-cluster", Op::Alter)],
        )
        .await;
        let codes = create(&node, &alice(), vec![creation(2, "t", 3, ALICE, 3, 3)]).await;
        assert_eq!(codes, [code::NONE]);
        let (error, listed) = describe(&node, &alice(), describe_request(1, None, 1)).await;
        assert_eq!((error, listed.len()), (code::NONE, 2));
    }

    #[tokio::test]
    async fn without_an_authorizer_the_acl_apis_answer_security_disabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let codes = create(&node, &alice(), vec![creation(2, "t", 3, ALICE, 3, 3)]).await;
        assert_eq!(codes, [code::SECURITY_DISABLED]);
        assert!(node.image().acls.is_empty());
        let (error, _) = describe(&node, &alice(), describe_request(1, None, 1)).await;
        assert_eq!(error, code::SECURITY_DISABLED);
    }
}

mod topics {
    use sluice_protocol::messages::create_topics::{CreatableTopic, CreateTopicsRequest};
    use sluice_protocol::messages::delete_topics::DeleteTopicsRequest;
    use sluice_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
    use sluice_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
    use sluice_protocol::messages::produce::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };

    use super::super::{create_topics, delete_topics, fetch, metadata, produce};
    use super::*;

    fn produce_request(topic: &str, transactional_id: Option<&str>) -> ProduceRequest {
        ProduceRequest {
            transactional_id: transactional_id.map(str::to_owned),
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.to_owned(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: testing::batch(2),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    async fn produce_as(node: &Node, ctx: &RequestContext, request: ProduceRequest) -> i16 {
        let response = produce::handle(
            &node.replicas,
            &node.image(),
            &node.txn,
            &node.verifier,
            &node.authorizer,
            &node.registry,
            ctx,
            &testing::header(0, 9),
            request,
        )
        .await
        .expect("acks=-1 answers");
        response.responses[0].partition_responses[0].error_code
    }

    #[tokio::test]
    async fn produce_needs_write_on_the_topic_and_a_denied_one_appends_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        node.create_topic("t", 1).await;
        let log_end = || node.partition("t", 0).log().log_end_offset();
        assert_eq!(
            produce_as(&node, &alice(), produce_request("t", None)).await,
            code::TOPIC_AUTHORIZATION_FAILED
        );
        assert_eq!(log_end(), 0, "a denied produce appends nothing");
        grant(&node, &[allow(ResourceType::Topic, "t", Op::Read)]).await;
        assert_eq!(
            produce_as(&node, &alice(), produce_request("t", None)).await,
            code::TOPIC_AUTHORIZATION_FAILED,
            "READ does not grant WRITE"
        );
        assert_eq!(log_end(), 0);
        grant(&node, &[allow(ResourceType::Topic, "t", Op::Write)]).await;
        assert_eq!(
            produce_as(&node, &alice(), produce_request("t", None)).await,
            code::NONE
        );
        assert_eq!(log_end(), 2);
        // A transactional produce also needs WRITE on the transactional id.
        assert_eq!(
            produce_as(&node, &alice(), produce_request("t", Some("tx"))).await,
            code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        );
        assert_eq!(log_end(), 2);
    }

    #[tokio::test]
    async fn only_super_users_may_produce_to_internal_topics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        let everything = acl(
            ResourceType::Topic,
            "*",
            PatternType::Literal,
            ALICE,
            Op::All,
            AclPermission::Allow,
        );
        grant(&node, &[everything]).await;
        node.groups
            .ensure_offsets_topic()
            .await
            .expect("__consumer_offsets");
        let offsets = node.partition("__consumer_offsets", 0);
        let before = offsets.log().log_end_offset();
        assert_eq!(
            produce_as(&node, &alice(), produce_request("__consumer_offsets", None)).await,
            code::INVALID_TOPIC_EXCEPTION
        );
        assert_eq!(offsets.log().log_end_offset(), before);
    }

    fn fetch_request(topic: &str, replica_id: i32) -> FetchRequest {
        FetchRequest {
            replica_id,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: i32::MAX,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    async fn fetch_as(node: &Node, ctx: &RequestContext, request: FetchRequest) -> (i16, usize) {
        let response = fetch::handle(
            &node.replicas,
            &node.image(),
            node.config.limits.fetch_max_bytes,
            &Arc::default(),
            &node.authorizer,
            ctx,
            &testing::header(1, 12),
            request,
        )
        .await;
        let p = &response.responses[0].partitions[0];
        (p.error_code, p.records.len())
    }

    #[tokio::test]
    async fn fetch_needs_read_on_the_topic_and_followers_need_cluster_action() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        node.create_topic("t", 1).await;
        let admin = testing::ctx_of("User:admin");
        assert_eq!(
            produce_as(&node, &admin, produce_request("t", None)).await,
            code::NONE
        );
        let (error, bytes) = fetch_as(&node, &alice(), fetch_request("t", -1)).await;
        assert_eq!((error, bytes), (code::TOPIC_AUTHORIZATION_FAILED, 0));
        grant(&node, &[allow(ResourceType::Topic, "t", Op::Read)]).await;
        let (error, bytes) = fetch_as(&node, &alice(), fetch_request("t", -1)).await;
        assert_eq!(error, code::NONE);
        assert!(bytes > 0);
        // READ on the topic does not make alice a follower.
        let (error, bytes) = fetch_as(&node, &alice(), fetch_request("t", 2)).await;
        assert_eq!((error, bytes), (code::TOPIC_AUTHORIZATION_FAILED, 0));
    }

    async fn metadata_as(
        node: &Node,
        ctx: &RequestContext,
        topics: Option<&[&str]>,
        auto_create: bool,
    ) -> Vec<(String, i16)> {
        let request = MetadataRequest {
            topics: topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some((*n).to_owned()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: auto_create,
            ..Default::default()
        };
        metadata::handle(
            &node.controller,
            &node.replicas,
            node.info(),
            auto_create,
            &node.authorizer,
            ctx,
            &testing::header(3, 12),
            request,
        )
        .await
        .topics
        .into_iter()
        .map(|t| (t.name.unwrap_or_default(), t.error_code))
        .collect()
    }

    #[tokio::test]
    async fn metadata_hides_topics_and_auto_creation_needs_create() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        node.create_topic("seen", 1).await;
        node.create_topic("hidden", 1).await;
        grant(&node, &[allow(ResourceType::Topic, "seen", Op::Read)]).await;
        assert_eq!(
            metadata_as(&node, &alice(), None, false).await,
            [("seen".to_owned(), code::NONE)]
        );
        assert_eq!(
            metadata_as(&node, &alice(), Some(&["hidden", "seen", "missing"]), false).await,
            [
                ("hidden".to_owned(), code::TOPIC_AUTHORIZATION_FAILED),
                ("seen".to_owned(), code::NONE),
                ("missing".to_owned(), code::TOPIC_AUTHORIZATION_FAILED),
            ]
        );
        // DESCRIBE without CREATE: not created.
        grant(&node, &[allow(ResourceType::Topic, "new", Op::Describe)]).await;
        assert_eq!(
            metadata_as(&node, &alice(), Some(&["new"]), true).await,
            [("new".to_owned(), code::TOPIC_AUTHORIZATION_FAILED)]
        );
        assert!(!node.image().topics.contains_key("new"));
        grant(&node, &[allow(ResourceType::Topic, "new", Op::Create)]).await;
        assert_eq!(
            metadata_as(&node, &alice(), Some(&["new"]), true).await,
            [("new".to_owned(), code::NONE)]
        );
        assert!(node.image().topics.contains_key("new"));
    }

    #[tokio::test]
    async fn create_and_delete_topics_need_create_and_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        node.create_topic("keep", 1).await;
        let response = delete_topics::handle(
            &node.controller,
            &node.authorizer,
            crate::quota::MutationCharge::unbounded(),
            &alice(),
            &testing::header(20, 5),
            DeleteTopicsRequest {
                topic_names: vec!["keep".to_owned()],
                timeout_ms: 10_000,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            response.responses[0].error_code,
            code::TOPIC_AUTHORIZATION_FAILED
        );
        assert!(
            node.image().topics.contains_key("keep"),
            "a denied delete leaves the topic"
        );
        assert!(node.replicas.partition("keep", 0).is_some());

        let create = |names: &[&str]| CreateTopicsRequest {
            topics: names
                .iter()
                .map(|n| CreatableTopic {
                    name: (*n).to_owned(),
                    num_partitions: 1,
                    replication_factor: -1,
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 10_000,
            ..Default::default()
        };
        grant(&node, &[allow(ResourceType::Topic, "mine", Op::Create)]).await;
        let response = create_topics::handle(
            &node.controller,
            &node.config.log,
            &node.authorizer,
            crate::quota::MutationCharge::unbounded(),
            1,
            &alice(),
            &testing::header(19, 7),
            create(&["theirs", "mine"]),
        )
        .await;
        let codes: Vec<(String, i16)> = response
            .topics
            .into_iter()
            .map(|t| (t.name, t.error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("theirs".to_owned(), code::TOPIC_AUTHORIZATION_FAILED),
                ("mine".to_owned(), code::NONE)
            ]
        );
        assert!(!node.image().topics.contains_key("theirs"));
        assert!(node.image().topics.contains_key("mine"));
    }
}

mod groups {
    use sluice_protocol::messages::join_group::{JoinGroupRequest, JoinGroupRequestProtocol};
    use sluice_protocol::messages::list_groups::ListGroupsRequest;
    use sluice_protocol::messages::offset_commit::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };

    use super::super::{join_group, list_groups, offset_commit};
    use super::*;

    async fn join(node: &Node, ctx: &RequestContext, group: &str) -> i16 {
        let request = JoinGroupRequest {
            group_id: group.to_owned(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 30_000,
            member_id: String::new(),
            protocol_type: "consumer".to_owned(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".to_owned(),
                metadata: Default::default(),
            }],
            ..Default::default()
        };
        join_group::handle(
            &node.groups,
            &node.authorizer,
            ctx,
            &testing::header(11, 9),
            request,
        )
        .await
        .error_code
    }

    #[tokio::test]
    async fn joining_a_group_needs_read_on_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        assert_eq!(
            join(&node, &alice(), "g").await,
            code::GROUP_AUTHORIZATION_FAILED
        );
        assert!(
            node.groups.get("g").is_none(),
            "a denied join creates no group"
        );
        grant(&node, &[allow(ResourceType::Group, "g", Op::Read)]).await;
        // v4+: a new member is first given an id.
        assert_eq!(join(&node, &alice(), "g").await, code::MEMBER_ID_REQUIRED);
    }

    #[tokio::test]
    async fn offset_commit_needs_read_on_the_group_and_the_topic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        node.create_topic("t", 1).await;
        let commit = |ctx: RequestContext| {
            let request = OffsetCommitRequest {
                group_id: "g".to_owned(),
                generation_id_or_member_epoch: -1,
                member_id: String::new(),
                retention_time_ms: -1,
                topics: vec![OffsetCommitRequestTopic {
                    name: "t".to_owned(),
                    partitions: vec![OffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 7,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            };
            let groups = Arc::clone(&node.groups);
            let authorizer = Arc::clone(&node.authorizer);
            async move {
                offset_commit::handle(&groups, &authorizer, &ctx, &testing::header(8, 8), request)
                    .await
                    .topics[0]
                    .partitions[0]
                    .error_code
            }
        };
        let committed = || {
            node.groups
                .fetch_offsets("g", None)
                .into_iter()
                .flat_map(|(_, parts)| parts)
                .filter(|(_, v)| v.is_some())
                .count()
        };
        assert_eq!(commit(alice()).await, code::GROUP_AUTHORIZATION_FAILED);
        grant(&node, &[allow(ResourceType::Group, "g", Op::Read)]).await;
        assert_eq!(commit(alice()).await, code::TOPIC_AUTHORIZATION_FAILED);
        assert_eq!(committed(), 0, "nothing committed while denied");
        grant(&node, &[allow(ResourceType::Topic, "t", Op::Read)]).await;
        assert_eq!(commit(alice()).await, code::NONE);
        assert_eq!(committed(), 1);
    }

    #[tokio::test]
    async fn list_groups_shows_only_describable_groups_without_cluster_describe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        let admin = testing::ctx_of("User:admin");
        assert_eq!(join(&node, &admin, "mine").await, code::MEMBER_ID_REQUIRED);
        assert_eq!(
            join(&node, &admin, "theirs").await,
            code::MEMBER_ID_REQUIRED
        );
        let list = |ctx: RequestContext| {
            let response = futures::FutureExt::now_or_never(list_groups::handle(
                &node.groups,
                &node.authorizer,
                &ctx,
                &testing::header(16, 4),
                ListGroupsRequest::default(),
            ))
            .expect("ready");
            response
                .groups
                .into_iter()
                .map(|g| g.group_id)
                .collect::<Vec<_>>()
        };
        assert!(list(alice()).is_empty());
        grant(&node, &[allow(ResourceType::Group, "mine", Op::Describe)]).await;
        assert_eq!(list(alice()), ["mine"]);
        grant(
            &node,
            &[allow(ResourceType::Cluster, "kafka-cluster", Op::Describe)],
        )
        .await;
        assert_eq!(list(alice()), ["mine", "theirs"]);
    }
}

mod cluster_and_txn {
    use sluice_protocol::messages::describe_cluster::DescribeClusterRequest;
    use sluice_protocol::messages::describe_configs::{
        DescribeConfigsRequest, DescribeConfigsResource,
    };
    use sluice_protocol::messages::init_producer_id::InitProducerIdRequest;

    use super::super::{admin_configs, describe_cluster, init_producer_id};
    use super::*;

    #[tokio::test]
    async fn describe_cluster_and_broker_configs_need_cluster_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        node.create_topic("t", 1).await;
        let describe = |ctx: RequestContext| {
            futures::FutureExt::now_or_never(describe_cluster::handle(
                &node.controller,
                node.info(),
                &node.authorizer,
                &ctx,
                &testing::header(60, 1),
                DescribeClusterRequest::default(),
            ))
            .expect("ready")
            .error_code
        };
        assert_eq!(describe(alice()), code::CLUSTER_AUTHORIZATION_FAILED);
        let configs = |ctx: RequestContext| {
            let request = DescribeConfigsRequest {
                resources: vec![
                    DescribeConfigsResource {
                        resource_type: 2,
                        resource_name: "t".to_owned(),
                        configuration_keys: None,
                    },
                    DescribeConfigsResource {
                        resource_type: 4,
                        resource_name: "1".to_owned(),
                        configuration_keys: None,
                    },
                ],
                ..Default::default()
            };
            futures::FutureExt::now_or_never(admin_configs::describe(
                &node.image(),
                &node.config,
                &node.authorizer,
                &ctx,
                &testing::header(32, 4),
                request,
            ))
            .expect("ready")
            .results
            .into_iter()
            .map(|r| r.error_code)
            .collect::<Vec<_>>()
        };
        assert_eq!(
            configs(alice()),
            [
                code::TOPIC_AUTHORIZATION_FAILED,
                code::CLUSTER_AUTHORIZATION_FAILED
            ]
        );
        grant(
            &node,
            &[
                allow(ResourceType::Cluster, "kafka-cluster", Op::Describe),
                allow(ResourceType::Topic, "t", Op::AlterConfigs),
            ],
        )
        .await;
        assert_eq!(describe(alice()), code::NONE);
        // ALTER_CONFIGS implies DESCRIBE_CONFIGS on the topic; the broker
        // still needs DESCRIBE_CONFIGS on the cluster.
        assert_eq!(
            configs(alice()),
            [code::NONE, code::CLUSTER_AUTHORIZATION_FAILED]
        );
    }

    async fn init(node: &Node, ctx: &RequestContext, transactional_id: Option<&str>) -> i16 {
        init_producer_id::handle(
            &node.txn,
            &node.producer_ids,
            &node.authorizer,
            ctx,
            &testing::header(22, 4),
            InitProducerIdRequest {
                transactional_id: transactional_id.map(str::to_owned),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
        )
        .await
        .error_code
    }

    #[tokio::test]
    async fn init_producer_id_needs_write_on_the_transactional_id_or_some_topic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = secured(dir.path()).await;
        assert_eq!(
            init(&node, &alice(), None).await,
            code::CLUSTER_AUTHORIZATION_FAILED
        );
        assert_eq!(
            init(&node, &alice(), Some("tx")).await,
            code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        );
        assert!(
            node.txn.get("tx").is_none(),
            "a denied init creates no transaction"
        );
        // KIP-679: WRITE on any topic allows an idempotent producer.
        grant(&node, &[allow(ResourceType::Topic, "t", Op::Write)]).await;
        assert_eq!(init(&node, &alice(), None).await, code::NONE);
        grant(
            &node,
            &[allow(ResourceType::TransactionalId, "tx", Op::Write)],
        )
        .await;
        assert_eq!(init(&node, &alice(), Some("tx")).await, code::NONE);
    }
}
