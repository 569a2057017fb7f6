//! Produce (0): append producers' batches to partition logs.
//!
//! Appends happen when the request is dispatched, in request order, so two
//! pipelined produce requests on one connection land in the order they were
//! sent. The returned future waits for durability (group commit) and for
//! the high watermark, then builds the response. With acks=0 nothing is
//! sent back, but the data is still committed. The commits are started at
//! dispatch on their own tasks, so they finish even if the connection drops
//! the reply future.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use futures::future::join_all;
use sluice_log::{AppendInfo, LogError, ProducerError};
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::produce::{
    PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
};

use super::{RequestContext, now_ms};
use crate::Broker;
use crate::partition::Partition;

/// Oldest Produce version we accept; v0-2 use message formats 0 and 1,
/// which Kafka 4 also refuses while still advertising them.
const MIN_ACCEPTED_VERSION: i16 = 3;

/// One partition's outcome after the append step.
enum Appended {
    /// Appended; waiting to become durable.
    Ok(Arc<Partition>, AppendInfo),
    /// Refused before or during the append.
    Err(i16, Option<String>),
}

/// Handles Produce. Appends now; the future commits and answers.
pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    header: &RequestHeader,
    request: ProduceRequest,
) -> impl Future<Output = Option<ProduceResponse>> + Send + 'static {
    let version = header.request_api_version;
    let acks = request.acks;
    let transactional_id = request.transactional_id.clone();
    let now = now_ms();
    let mut topics: Vec<(String, Vec<(i32, Appended)>)> =
        Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let outcome = if version < MIN_ACCEPTED_VERSION {
                Appended::Err(
                    code::UNSUPPORTED_VERSION,
                    Some("Produce v0-2 are not supported; use v3+".into()),
                )
            } else if !matches!(acks, -1..=1) {
                Appended::Err(
                    code::INVALID_REQUIRED_ACKS,
                    Some(format!("acks must be -1, 0 or 1, got {acks}")),
                )
            } else if let Err(e) = verify_transactional(
                broker,
                transactional_id.as_deref(),
                &topic.name,
                p.index,
                &p.records,
            ) {
                Appended::Err(e.code(), Some(e.to_string()))
            } else {
                append_one(broker, &topic.name, p.index, p.records, now)
            };
            if let Appended::Err(error_code, message) = &outcome {
                tracing::debug!(
                    peer = %ctx.peer, topic = %topic.name, partition = p.index, error_code,
                    "produce refused: {}", message.as_deref().unwrap_or("")
                );
            }
            partitions.push((p.index, outcome));
        }
        topics.push((topic.name, partitions));
    }

    // Start every commit now, on its own task, rather than when the reply
    // is first polled: the connection may never poll it (a reply write to a
    // client that went away fails and drops the replies queued behind it),
    // and appended data must still become durable and visible. Partitions
    // commit concurrently; group commit merges their fsyncs.
    let commits: Vec<_> = topics
        .iter()
        .flat_map(|(_, ps)| ps.iter())
        .filter_map(|(_, outcome)| match outcome {
            Appended::Ok(partition, info) => Some(partition.commit(info.last_offset + 1)),
            Appended::Err(..) => None,
        })
        .collect();
    async move {
        let committed = join_all(commits).await;
        if acks == 0 {
            return None;
        }
        let mut commit_results = committed.into_iter();
        let responses = topics
            .into_iter()
            .map(|(name, partitions)| TopicProduceResponse {
                name,
                partition_responses: partitions
                    .into_iter()
                    .map(|(index, outcome)| match outcome {
                        Appended::Ok(partition, info) => match commit_results.next() {
                            Some(Ok(())) => PartitionProduceResponse {
                                index,
                                error_code: code::NONE,
                                base_offset: info.base_offset,
                                log_append_time_ms: info.log_append_time,
                                log_start_offset: partition.log().log_start_offset(),
                                ..Default::default()
                            },
                            Some(Err(e)) => error_response(index, storage_error(&partition, &e)),
                            None => error_response(index, (code::UNKNOWN_SERVER_ERROR, None)),
                        },
                        Appended::Err(error_code, message) => {
                            error_response(index, (error_code, message))
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        Some(ProduceResponse {
            responses,
            throttle_time_ms: 0,
            ..Default::default()
        })
    }
}

fn append_one(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: bytes::Bytes,
    now: i64,
) -> Appended {
    let Some(partition) = broker.replicas.partition(topic, index) else {
        return Appended::Err(
            code::UNKNOWN_TOPIC_OR_PARTITION,
            Some(format!("{topic}-{index} does not exist")),
        );
    };
    if records.is_empty() {
        return Appended::Err(code::INVALID_RECORD, Some("no record batch".into()));
    }
    // The log rewrites offsets and epochs in place, so it takes its own copy.
    match partition.append(BytesMut::from(records.as_ref()), now) {
        Ok(info) => Appended::Ok(partition, info),
        // A producer retry of a batch already in the log: Kafka answers
        // success with the original offsets, and so do we. The commit
        // step still waits until those offsets are durable and visible.
        Err(LogError::Producer(ProducerError::Duplicate {
            base_offset,
            last_offset,
        })) => {
            tracing::debug!(partition = %partition.tp, base_offset, "duplicate batch from an idempotent producer");
            let info = AppendInfo {
                base_offset,
                last_offset,
                log_append_time: -1,
                log_start_offset: partition.log().log_start_offset(),
                record_count: 0,
            };
            Appended::Ok(partition, info)
        }
        Err(e) => {
            let (error_code, message) = storage_error(&partition, &e);
            Appended::Err(error_code, message)
        }
    }
}

/// KIP-890 part 1: every transactional batch must belong to an ongoing
/// transaction of its producer that includes this partition (see
/// [`crate::txn::TransactionCoordinator::verify_transactional_append`]).
/// Framing errors are left to the append, which reports them.
fn verify_transactional(
    broker: &Broker,
    transactional_id: Option<&str>,
    topic: &str,
    index: i32,
    records: &[u8],
) -> Result<(), crate::txn::VerifyError> {
    for batch in sluice_records::Batches::without_crc(records) {
        let sluice_records::NextBatch::Complete { header, .. } = batch else {
            break;
        };
        if header.is_transactional() {
            broker.txn.verify_transactional_append(
                transactional_id,
                header.producer_id,
                header.producer_epoch,
                topic,
                index,
            )?;
        }
    }
    Ok(())
}

fn storage_error(partition: &Partition, e: &LogError) -> (i16, Option<String>) {
    let error_code = e.kafka_error_code();
    if error_code == code::KAFKA_STORAGE_ERROR {
        tracing::error!(partition = %partition.tp, "append failed: {e}");
    } else {
        tracing::info!(partition = %partition.tp, "batch refused: {e}");
    }
    (error_code, Some(e.to_string()))
}

fn error_response(
    index: i32,
    (error_code, error_message): (i16, Option<String>),
) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code,
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message,
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "produce_tests.rs"]
mod tests;
