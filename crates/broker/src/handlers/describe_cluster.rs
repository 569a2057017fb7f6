//! DescribeCluster (60): the cluster id, the controller and the live
//! brokers, as Metadata names them ([`super::cluster`]).

use std::future::Future;

use sluice_metadata::Controller;
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_cluster::{
    DescribeClusterBroker, DescribeClusterRequest, DescribeClusterResponse,
};

use super::{NodeInfo, RequestContext, cluster};
use crate::authz::Authorizer;
use sluice_metadata::acl::AclOperation;

/// Handles DescribeCluster: the brokers are `controller`'s image's live
/// brokers (this node alone when none is registered), and the controller
/// is this broker: in a cluster it forwards what needs the active
/// controller (KIP-590), as KRaft brokers do, so clients never wait on a
/// dead Raft leader during a failover.
pub fn handle(
    controller: &Controller,
    node: NodeInfo,
    authorizer: &Authorizer,
    ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeClusterRequest,
) -> impl Future<Output = DescribeClusterResponse> + Send + 'static {
    // Kafka: DESCRIBE on the cluster.
    if !authorizer.cluster(ctx, AclOperation::Describe) {
        return std::future::ready(DescribeClusterResponse {
            error_code: code::CLUSTER_AUTHORIZATION_FAILED,
            error_message: Some("DESCRIBE on the cluster is required".to_owned()),
            endpoint_type: request.endpoint_type,
            controller_id: -1,
            cluster_authorized_operations: i32::MIN,
            ..Default::default()
        });
    }
    let brokers = cluster::brokers(&controller.image(), &node)
        .into_iter()
        .map(|b| DescribeClusterBroker {
            broker_id: b.node_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect();
    // endpoint_type 1 = brokers; 2 = controllers. Every node is both until
    // controllers and brokers can be separate processes, so both get the
    // brokers.
    let response = DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        error_message: None,
        endpoint_type: request.endpoint_type,
        cluster_id: node.cluster_id,
        controller_id: node.node_id,
        brokers,
        cluster_authorized_operations: i32::MIN,
        ..Default::default()
    };
    std::future::ready(response)
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::testing;

    fn describe(node: &testing::Node, endpoint_type: i8) -> DescribeClusterResponse {
        let request = DescribeClusterRequest {
            endpoint_type,
            ..Default::default()
        };
        let header = testing::header(60, 1);
        handle(
            &node.controller,
            node.info(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            request,
        )
        .now_or_never()
        .expect("answers at once")
    }

    #[tokio::test]
    async fn a_node_with_no_registered_broker_is_the_only_broker_and_the_controller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let response = describe(&node, 2);
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(response.cluster_id, "test");
        assert_eq!(response.controller_id, testing::NODE_ID);
        assert_eq!(response.endpoint_type, 2);
        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id, b.host.as_str(), b.port))
            .collect();
        assert_eq!(brokers, [(testing::NODE_ID, "127.0.0.1", 9092)]);
    }

    #[tokio::test]
    async fn lists_the_live_brokers_of_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        testing::three_brokers(&node).await;
        let response = describe(&node, 1);
        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id, b.host.as_str(), b.port, b.rack.as_deref()))
            .collect();
        // Broker 4 is registered but fenced: not listed.
        assert_eq!(
            brokers,
            [
                (1, "host-1", 9001, Some("rack-1")),
                (2, "host-2", 9002, Some("rack-2")),
                (3, "host-3", 9003, None),
            ]
        );
        // A local metadata log has no quorum: this node is the controller.
        assert_eq!(response.controller_id, testing::NODE_ID);
    }

    #[tokio::test]
    async fn the_controller_clients_see_is_this_broker_which_forwards() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let controller = testing::controller_led_by(&node, 3);
        let header = testing::header(60, 0);
        let response = handle(
            &controller,
            node.info(),
            &testing::allow_all(),
            &testing::ctx(),
            &header,
            DescribeClusterRequest::default(),
        )
        .now_or_never()
        .expect("answers at once");
        assert_eq!(
            response.controller_id,
            testing::NODE_ID,
            "the quorum leader is node 3, but clients talk to this broker"
        );
    }
}
