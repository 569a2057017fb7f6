//! What handlers tell clients about the cluster: the brokers they can
//! reach, the controller, and where a partition's leader is when this
//! broker is not it (KIP-951). Everything comes from the metadata image;
//! nothing here touches partition data.

use std::collections::BTreeMap;

use sluice_metadata::MetadataImage;
use sluice_replica::ReplicaManager;

use super::NodeInfo;

/// A broker as clients address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Its node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// The brokers clients see: the image's live (registered, unfenced)
/// brokers. An image with no registered broker at all (a single node whose
/// data predates registration, or a bare test node) lists this node alone.
pub(crate) fn brokers(image: &MetadataImage, node: &NodeInfo) -> Vec<Endpoint> {
    if image.brokers.is_empty() {
        return vec![Endpoint {
            node_id: node.node_id,
            host: node.host.clone(),
            port: i32::from(node.port),
            rack: None,
        }];
    }
    image
        .live_brokers()
        .filter_map(|b| endpoint(b, &node.listener))
        .collect()
}

/// Broker `b` as clients of `listener` reach it; `None` (left out, as
/// Kafka does) when it has no such listener.
fn endpoint(b: &sluice_metadata::BrokerImage, listener: &str) -> Option<Endpoint> {
    let (host, port) = b.endpoint_for(listener)?;
    Some(Endpoint {
        node_id: b.broker_id,
        host: host.to_owned(),
        port,
        rack: b.rack.clone(),
    })
}

/// The brokers Metadata lists: every registered broker, fenced ones too
/// (Redpanda lists every member likewise; Kafka's KRaft lists only the
/// unfenced). A fenced broker leads nothing and coordinates nothing, so
/// clients have no reason to connect to it; but librdkafka (2.10 and
/// later) tears down its handle for a broker that leaves Metadata, and a
/// transactional producer whose cached group coordinator was that broker
/// then waits forever in send_offsets_to_transaction (librdkafka#5511):
/// still listed, the handle keeps retrying its connection, and each failed
/// attempt makes the client look the coordinator up again.
pub(crate) fn metadata_brokers(image: &MetadataImage, node: &NodeInfo) -> Vec<Endpoint> {
    if image.brokers.is_empty() {
        return brokers(image, node);
    }
    image
        .brokers
        .values()
        .filter_map(|b| endpoint(b, &node.listener))
        .collect()
}

/// True if broker `id` can serve clients as far as the image knows:
/// registered and unfenced, or any id when no broker is registered (a
/// single node before registration, which is every replica there is).
pub(crate) fn is_live(image: &MetadataImage, id: i32) -> bool {
    image.brokers.is_empty() || image.brokers.get(&id).is_some_and(|b| !b.fenced)
}

/// KIP-951's hints for partitions refused with NOT_LEADER_OR_FOLLOWER (and
/// in Fetch FENCED_LEADER_EPOCH): each partition's current leader and
/// epoch, and the endpoints of the live leaders named, so a client can go
/// there without a Metadata round trip.
#[derive(Debug, Default)]
pub(crate) struct LeaderHints {
    endpoints: BTreeMap<i32, Endpoint>,
    /// The listener the request arrived on: leaders are named by their
    /// endpoint there.
    listener: String,
}

impl LeaderHints {
    /// Hints for a request that arrived on `listener`.
    pub(crate) fn for_listener(listener: &str) -> LeaderHints {
        LeaderHints {
            endpoints: BTreeMap::new(),
            listener: listener.to_owned(),
        }
    }

    /// The current leader and epoch of `topic`-`index` (Kafka's
    /// `KafkaApis.getCurrentLeader`): the hosted partition's, else the
    /// image's, else (-1, -1). Remembers the leader's endpoint if it is a
    /// live broker.
    pub(crate) fn leader_of(
        &mut self,
        replicas: &ReplicaManager,
        image: &MetadataImage,
        topic: &str,
        index: i32,
    ) -> (i32, i32) {
        let (leader, leader_epoch) = match replicas.partition(topic, index) {
            // Suspended, this node's view of who leads is stale: naming
            // itself would send the client straight back (KIP-951 clients
            // apply the hint instead of refreshing their metadata).
            Some(hosted) if hosted.is_leader() && replicas.leadership_suspended() => (-1, -1),
            Some(hosted) => hosted.leadership(),
            None => image
                .topics
                .get(topic)
                .and_then(|t| t.partitions.get(&index))
                .map_or((-1, -1), |p| (p.leader, p.leader_epoch)),
        };
        if let Some(b) = image.brokers.get(&leader).filter(|b| !b.fenced)
            && !self.endpoints.contains_key(&leader)
            && let Some(endpoint) = endpoint(b, &self.listener)
        {
            self.endpoints.insert(leader, endpoint);
        }
        (leader, leader_epoch)
    }

    /// The endpoints remembered, by node id.
    pub(crate) fn into_endpoints(self) -> impl Iterator<Item = Endpoint> {
        self.endpoints.into_values()
    }
}
