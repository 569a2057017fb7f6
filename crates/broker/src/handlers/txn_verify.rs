//! KIP-890 part 1 for writes that join a transaction: a transactional
//! batch (Produce), or a transaction's offsets (TxnOffsetCommit), is
//! accepted only if the producer's ongoing transaction includes the
//! partition. Otherwise a late or stray write would open a transaction no
//! coordinator will ever end, holding the partition's last stable offset
//! back forever.
//!
//! The transaction's coordinator decides. When it is this broker, the check
//! reads its last durable state without waiting; when it is another, the
//! check is an AddPartitionsToTxn v4 `verify_only` to it, as Kafka's
//! partition leaders send. A producer that already has an open transaction
//! on the partition at this epoch (its first write there was checked) needs
//! no second check, as in Kafka.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use sluice_coordinator::TransactionCoordinator;
use sluice_coordinator::txn::TxnError;
use sluice_coordinator::txn::state_log::{TRANSACTION_STATE_TOPIC, partition_for};
use sluice_metadata::MetadataImage;
use sluice_protocol::error::codes as code;

use crate::peers::Peers;

/// A write, as the check sees it.
#[derive(Debug, Clone)]
pub(crate) struct TxnWrite {
    /// The request's transactional id.
    pub transactional_id: Option<String>,
    /// The producer id of the batch (or request).
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The partition written.
    pub topic: String,
    /// Its index.
    pub partition: i32,
}

/// What the local step decided.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The write belongs to its transaction.
    Verified,
    /// Refused with a Produce error code and a message.
    Refused(i16, String),
    /// Broker `node` coordinates the transaction: ask it.
    AskCoordinator(i32),
}

/// Checks `write` with the coordinator on this broker, or names the broker
/// to ask.
pub(crate) fn verify_here(
    txn: &TransactionCoordinator,
    image: &MetadataImage,
    write: &TxnWrite,
) -> Verdict {
    let id = write
        .transactional_id
        .as_deref()
        .filter(|id| !id.is_empty());
    if let Some(id) = id {
        match txn.check_coordinator(id) {
            Ok(()) => {}
            Err(TxnError::NotCoordinator) => {
                let leader = image
                    .topics
                    .get(TRANSACTION_STATE_TOPIC)
                    .and_then(|t| t.partitions.get(&partition_for(id)))
                    .map_or(-1, |p| p.leader);
                return if leader >= 0 && leader != txn.node_id() {
                    Verdict::AskCoordinator(leader)
                } else {
                    Verdict::Refused(
                        code::NOT_ENOUGH_REPLICAS,
                        format!("the coordinator of transactional id {id:?} is not available"),
                    )
                };
            }
            Err(_) => {
                return Verdict::Refused(
                    code::NOT_ENOUGH_REPLICAS,
                    format!("the coordinator of transactional id {id:?} is loading"),
                );
            }
        }
    }
    match txn.verify_transactional_append(
        id,
        write.producer_id,
        write.producer_epoch,
        &write.topic,
        write.partition,
    ) {
        Ok(()) => Verdict::Verified,
        Err(e) => {
            tracing::info!(transactional_id = ?id, producer_id = write.producer_id, epoch = write.producer_epoch, partition = %format_args!("{}-{}", write.topic, write.partition), "transactional write refused: {e}");
            Verdict::Refused(e.code(), e.to_string())
        }
    }
}

/// Asks coordinator `node` about `write` (AddPartitionsToTxn v4
/// `verify_only`). The answer is mapped to the code Produce carries: the
/// coordinator's "not in the transaction" (TRANSACTION_ABORTABLE) is
/// INVALID_TXN_STATE, as the local check answers; a fenced epoch is
/// INVALID_PRODUCER_EPOCH; a coordinator that moved, is loading, is busy
/// completing, or cannot be reached is NOT_ENOUGH_REPLICAS, which every
/// producer retries (Kafka's conversion for produce).
pub(crate) async fn verify_remote(
    peers: &Peers,
    node: i32,
    write: &TxnWrite,
) -> Result<(), (i16, String)> {
    let id = write.transactional_id.as_deref().unwrap_or_default();
    let answer = peers
        .verify_in_transaction(
            node,
            id,
            write.producer_id,
            write.producer_epoch,
            &write.topic,
            write.partition,
        )
        .await;
    let c = match answer {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(
                node,
                transactional_id = id,
                "cannot verify a transactional write: {e}"
            );
            return Err((
                code::NOT_ENOUGH_REPLICAS,
                format!("the coordinator of transactional id {id:?} cannot be reached"),
            ));
        }
    };
    let what = || format!("{}-{}", write.topic, write.partition);
    if c != code::NONE {
        tracing::info!(node, transactional_id = id, producer_id = write.producer_id, epoch = write.producer_epoch, partition = %what(), code = c, "the transaction's coordinator refused a transactional write");
    }
    match c {
        code::NONE => Ok(()),
        code::TRANSACTION_ABORTABLE | code::INVALID_TXN_STATE => Err((
            code::INVALID_TXN_STATE,
            format!("{} is not part of an ongoing transaction", what()),
        )),
        code::PRODUCER_FENCED | code::INVALID_PRODUCER_EPOCH => Err((
            code::INVALID_PRODUCER_EPOCH,
            format!(
                "producer epoch {} is not the transaction's current epoch",
                write.producer_epoch
            ),
        )),
        code::INVALID_PRODUCER_ID_MAPPING => Err((
            code::INVALID_PRODUCER_ID_MAPPING,
            format!(
                "producer id {} has no transactional id {id:?}",
                write.producer_id
            ),
        )),
        other => Err((
            code::NOT_ENOUGH_REPLICAS,
            format!(
                "the coordinator could not verify {} (error {other})",
                what()
            ),
        )),
    }
}

/// Key of a producer's writes to one partition.
type ChainKey = (String, i32, i64);

/// Resolves when a queued write has been appended or refused.
type Turn = Shared<BoxFuture<'static, ()>>;

/// The last queued write of each chain: its link id, and its turn.
type Chains = HashMap<ChainKey, (u64, Turn)>;

/// Transactional batches waiting for their coordinator's answer before
/// they are appended, chained per partition and producer.
///
/// A producer pipelines its batches (sequence n, n+1, ...), and they must
/// reach the log in that order. The first batch of a transaction on a
/// partition whose coordinator is elsewhere waits for the answer; every
/// later batch of that producer to that partition queues behind it (even
/// one that, arriving after the first was appended, would need no check),
/// so none overtakes another. Other producers are not held up.
#[derive(Debug)]
pub struct Verifier {
    /// Connections to the coordinators.
    pub peers: Arc<Peers>,
    /// The coordinator on this broker.
    txn: Arc<TransactionCoordinator>,
    chains: Mutex<Chains>,
    next_link: AtomicU64,
}

/// One queued write's place in its chain: what it waits for, and how it
/// lets the next one go.
pub(crate) struct Link {
    verifier: Arc<Verifier>,
    key: ChainKey,
    id: u64,
    after: Option<Turn>,
    /// Dropped with the link: completes the chain's future for the next.
    _done: tokio::sync::oneshot::Sender<()>,
}

impl Verifier {
    /// A verifier asking `txn` here and other coordinators through `peers`.
    pub fn new(peers: Arc<Peers>, txn: Arc<TransactionCoordinator>) -> Verifier {
        Verifier {
            peers,
            txn,
            chains: Mutex::new(HashMap::new()),
            next_link: AtomicU64::new(0),
        }
    }

    fn chains(&self) -> std::sync::MutexGuard<'_, Chains> {
        self.chains.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The transaction coordinator on this broker.
    pub(crate) fn txn(&self) -> &TransactionCoordinator {
        &self.txn
    }

    /// Is a write of `producer_id` to `topic`-`partition` still queued?
    /// Then the next one must queue too.
    pub(crate) fn is_queued(&self, topic: &str, partition: i32, producer_id: i64) -> bool {
        self.chains()
            .contains_key(&(topic.to_owned(), partition, producer_id))
    }

    /// Queues a write of `producer_id` to `topic`-`partition` behind the
    /// ones already queued.
    pub(crate) fn enqueue(self: &Arc<Self>, topic: &str, partition: i32, producer_id: i64) -> Link {
        let key = (topic.to_owned(), partition, producer_id);
        let (done, rx) = tokio::sync::oneshot::channel::<()>();
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let finished: Turn = rx.map(|_| ()).boxed().shared();
        let after = self
            .chains()
            .insert(key.clone(), (id, finished))
            .map(|(_, previous)| previous);
        Link {
            verifier: Arc::clone(self),
            key,
            id,
            after,
            _done: done,
        }
    }
}

impl Link {
    /// Waits until the write queued before this one has been appended (or
    /// refused).
    /// Cancel-safe: a wait dropped half-way is resumed by the next call.
    pub(crate) async fn wait_turn(&mut self) {
        if let Some(after) = &self.after {
            after.clone().await;
        }
        self.after = None;
    }
}

/// Dropping a link (the write is appended or refused, or its task ended
/// any other way) lets the next write go; if none is queued behind it,
/// the chain ends.
impl Drop for Link {
    fn drop(&mut self) {
        let mut chains = self.verifier.chains();
        if chains.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            chains.remove(&self.key);
        }
        // `_done` drops after this, waking the next link.
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::testing;

    #[tokio::test]
    async fn a_producers_queued_writes_to_a_partition_go_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = testing::node_in(dir.path()).await;
        let verifier = &node.verifier;
        assert!(!verifier.is_queued("t", 0, 7));
        let mut first = verifier.enqueue("t", 0, 7);
        let mut second = verifier.enqueue("t", 0, 7);
        // Another producer, or another partition, is not held up.
        let mut other = verifier.enqueue("t", 0, 8);
        let mut elsewhere = verifier.enqueue("t", 1, 7);
        assert!(verifier.is_queued("t", 0, 7));
        first.wait_turn().await;
        other.wait_turn().await;
        elsewhere.wait_turn().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), second.wait_turn()).await;
        assert!(waiting.is_err(), "the second write waits for the first");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), second.wait_turn())
            .await
            .expect("the second write goes once the first is done");
        assert!(verifier.is_queued("t", 0, 7), "the second is still queued");
        drop(second);
        assert!(
            !verifier.is_queued("t", 0, 7),
            "the chain ends with its last write"
        );
        drop((other, elsewhere));
        assert!(!verifier.is_queued("t", 0, 8));
        assert!(!verifier.is_queued("t", 1, 7));
    }
}
