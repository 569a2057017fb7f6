//! DescribeCluster (60).

use std::future::Future;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_cluster::{
    DescribeClusterBroker, DescribeClusterRequest, DescribeClusterResponse,
};

use super::{NodeInfo, RequestContext};

/// Handles DescribeCluster: this node is the whole cluster.
pub fn handle(
    node: NodeInfo,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeClusterRequest,
) -> impl Future<Output = DescribeClusterResponse> + Send + 'static {
    let node_id = node.node_id;
    // endpoint_type 1 = brokers; 2 = controllers, which are the same node here.
    let response = DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        error_message: None,
        endpoint_type: request.endpoint_type,
        cluster_id: node.cluster_id,
        controller_id: node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: node_id,
            host: node.host,
            port: i32::from(node.port),
            rack: None,
            ..Default::default()
        }],
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

    #[test]
    fn this_node_is_the_only_broker_and_the_controller() {
        let node = NodeInfo {
            node_id: 7,
            host: "kafka.example".to_owned(),
            port: 19092,
            cluster_id: "c-1".to_owned(),
        };
        let request = DescribeClusterRequest {
            endpoint_type: 2,
            ..Default::default()
        };
        let header = testing::header(60, 1);
        let response = handle(node, &testing::ctx(), &header, request)
            .now_or_never()
            .expect("answers at once");
        assert_eq!(response.error_code, code::NONE);
        assert_eq!(response.cluster_id, "c-1");
        assert_eq!(response.controller_id, 7);
        assert_eq!(response.endpoint_type, 2);
        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id, b.host.as_str(), b.port))
            .collect();
        assert_eq!(brokers, [(7, "kafka.example", 19092)]);
    }
}
