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
