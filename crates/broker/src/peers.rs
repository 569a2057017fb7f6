//! Requests this broker sends to the other brokers for transactions: the
//! coordinator's WriteTxnMarkers to partition leaders, and the KIP-890
//! check a partition leader makes with a transaction's coordinator
//! (AddPartitionsToTxn v4, `verify_only`).
//!
//! One connection per peer, opened on first use from the address in the
//! metadata image and dropped when it fails (the next request reconnects,
//! to wherever the image says the peer is by then). Requests on one
//! connection are pipelined; replication's fetchers keep their own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sluice_client::conn::{ConnOptions, Connection};
use sluice_coordinator::txn::markers::{Marker, MarkerSender, SendResult, TopicPartition};
use sluice_metadata::{MetadataImage, MetadataLog};
use sluice_protocol::Request;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
};
use sluice_protocol::messages::write_txn_markers::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};

/// Time allowed to connect to a peer (and exchange ApiVersions): a dead
/// peer is found out this fast, and the caller retries.
const PEER_CONNECT_TIMEOUT_MS: u64 = 2_000;

/// Time allowed for one peer request. Markers wait for the leader's ISR
/// (up to its own 30 s commit bound), so this is a little longer.
const PEER_REQUEST_TIMEOUT_MS: u64 = 35_000;

/// WriteTxnMarkers version sent: v1 (flexible) exists on every Kafka
/// version that has the API's current fields; Sluice answers 0-1.
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

/// AddPartitionsToTxn version for verification: v4 is the first that
/// batches transactions and carries `verify_only` (KIP-890).
const VERIFY_ADD_PARTITIONS_VERSION: i16 = 4;

/// Why a request to a peer failed (the caller retries or answers a
/// retriable code).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The metadata names no such broker (fenced and unregistered, or not
    /// yet registered).
    #[error("broker {0} is not in the metadata")]
    Unknown(i32),
    /// Connecting or the request itself failed.
    #[error("request to broker {node} failed: {source}")]
    Client {
        /// The peer.
        node: i32,
        /// What went wrong.
        #[source]
        source: sluice_client::ClientError,
    },
}

/// Connections to the other brokers, for the transaction requests.
#[derive(Debug)]
pub struct Peers {
    node_id: i32,
    metadata: Arc<dyn MetadataLog>,
    conns: tokio::sync::Mutex<HashMap<i32, Arc<Connection>>>,
    /// TLS towards the other brokers' inter-broker listener, when it is
    /// SSL; `None` is PLAINTEXT.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Peers {
    /// Peers of broker `node_id`, addressed through `metadata`.
    pub fn new(node_id: i32, metadata: Arc<dyn MetadataLog>) -> Peers {
        Peers {
            node_id,
            metadata,
            conns: tokio::sync::Mutex::new(HashMap::new()),
            tls: None,
        }
    }

    /// These peers reached over TLS with `tls` (an SSL inter-broker
    /// listener).
    pub fn with_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> Peers {
        self.tls = tls;
        self
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    async fn connection(&self, node: i32) -> Result<Arc<Connection>, PeerError> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(&node).filter(|c| !c.is_dead()) {
            return Ok(Arc::clone(c));
        }
        conns.remove(&node);
        let address = self
            .metadata
            .image()
            .brokers
            .get(&node)
            .map(|b| format!("{}:{}", b.host, b.port))
            .ok_or(PeerError::Unknown(node))?;
        let options = ConnOptions {
            client_id: format!("sluice-broker-{}", self.node_id),
            connect_timeout: Duration::from_millis(PEER_CONNECT_TIMEOUT_MS),
            request_timeout: Duration::from_millis(PEER_REQUEST_TIMEOUT_MS),
            tls: self.tls.clone(),
            ..ConnOptions::default()
        };
        let conn = Arc::new(
            Connection::connect(&address, options)
                .await
                .map_err(|source| PeerError::Client { node, source })?,
        );
        conns.insert(node, Arc::clone(&conn));
        Ok(conn)
    }

    /// Sends `request` at `version` to broker `node`.
    pub async fn send<R: Request>(
        &self,
        node: i32,
        request: &R,
        version: i16,
    ) -> Result<R::Response, PeerError> {
        let conn = self.connection(node).await?;
        let result = conn.send_at(request, version).await;
        if result.is_err() {
            // A timeout leaves the connection open but suspect (the answer
            // may still come, out of step): the next request opens a new
            // one, to wherever the metadata says the peer is by then.
            let mut conns = self.conns.lock().await;
            if conns.get(&node).is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                conns.remove(&node);
            }
        }
        result.map_err(|source| PeerError::Client { node, source })
    }

    /// Asks the coordinator `node` whether producer `producer_id` at
    /// `producer_epoch` of `transactional_id` has `topic`-`partition` in its
    /// ongoing transaction (KIP-890). Returns the partition's code: NONE if
    /// it has, another Kafka code if not, or the request's failure.
    pub async fn verify_in_transaction(
        &self,
        node: i32,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<i16, PeerError> {
        let request = AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: transactional_id.to_owned(),
                producer_id,
                producer_epoch,
                verify_only: true,
                topics: vec![AddPartitionsToTxnTopic {
                    name: topic.to_owned(),
                    partitions: vec![partition],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let response: AddPartitionsToTxnResponse = self
            .send(node, &request, VERIFY_ADD_PARTITIONS_VERSION)
            .await?;
        if response.error_code != code::NONE {
            return Ok(response.error_code);
        }
        Ok(response
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .find(|p| p.partition_index == partition)
            .map_or(code::UNKNOWN_SERVER_ERROR, |p| p.partition_error_code))
    }
}

impl MarkerSender for Peers {
    fn send(
        &self,
        node_id: i32,
        marker: Marker,
        partitions: Vec<TopicPartition>,
    ) -> Pin<Box<dyn Future<Output = SendResult> + Send + '_>> {
        Box::pin(async move {
            let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
            for (topic, index) in &partitions {
                match topics.iter_mut().find(|t| &t.name == topic) {
                    Some(t) => t.partition_indexes.push(*index),
                    None => topics.push(WritableTxnMarkerTopic {
                        name: topic.clone(),
                        partition_indexes: vec![*index],
                        ..Default::default()
                    }),
                }
            }
            let request = WriteTxnMarkersRequest {
                markers: vec![WritableTxnMarker {
                    producer_id: marker.producer_id,
                    producer_epoch: marker.producer_epoch,
                    transaction_result: marker.commit,
                    topics,
                    coordinator_epoch: marker.coordinator_epoch,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let response = Peers::send(self, node_id, &request, WRITE_TXN_MARKERS_VERSION)
                .await
                .map_err(|e| e.to_string())?;
            Ok(response
                .markers
                .into_iter()
                .filter(|m| m.producer_id == marker.producer_id)
                .flat_map(|m| m.topics)
                .flat_map(|t| {
                    let name = t.name;
                    t.partitions
                        .into_iter()
                        .map(move |p| ((name.clone(), p.partition_index), p.error_code))
                })
                .collect())
        })
    }
}
