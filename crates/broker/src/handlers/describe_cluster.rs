//! DescribeCluster (60).

use std::future::Future;
use std::sync::Arc;

use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::describe_cluster::{
    DescribeClusterBroker, DescribeClusterRequest, DescribeClusterResponse,
};

use super::RequestContext;
use crate::Broker;

/// Handles DescribeCluster.
pub fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _header: &RequestHeader,
    request: DescribeClusterRequest,
) -> impl Future<Output = DescribeClusterResponse> + Send + 'static {
    let (host, port) = broker.advertised.clone();
    let node_id = broker.config.node_id;
    // endpoint_type 1 = brokers; 2 = controllers, which are the same node here.
    let response = DescribeClusterResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        error_message: None,
        endpoint_type: request.endpoint_type,
        cluster_id: broker.cluster_id.clone(),
        controller_id: node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: node_id,
            host,
            port: i32::from(port),
            rack: None,
            ..Default::default()
        }],
        cluster_authorized_operations: i32::MIN,
        ..Default::default()
    };
    std::future::ready(response)
}
