//! Fetch (1): serve stored batches, long-polling until `min_bytes` arrive.
//!
//! Batches go from the segment files into the response unchanged. A
//! response holds at most the smaller of the request's `max_bytes` and the
//! broker's `limits.fetch_max_bytes`, and each partition at most its
//! `partition_max_bytes`, except that the first batch of the first non-empty
//! partition is returned whole (KIP-74) so a consumer always progresses. The
//! `records` field is never null (librdkafka rejects a -1 length). Waiting
//! is driven by the partitions' high-watermark notifications, never by
//! polling on a timer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use sluice_log::LogError;
use sluice_protocol::RequestHeader;
use sluice_protocol::error::codes as code;
use sluice_protocol::messages::fetch::{
    FetchRequest, FetchResponse, FetchableTopicResponse, PartitionData,
};
use uuid::Uuid;

use super::RequestContext;
use sluice_metadata::MetadataImage;
use sluice_replica::{Partition, ReplicaManager};

/// Longest long-poll we honour, whatever the client asks: a bound on how
/// long a request can pin its connection's response queue.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// One partition the request asked for.
struct Wanted {
    partition_index: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    /// The hosted partition, or the error to report.
    target: Result<Arc<Partition>, i16>,
}

struct WantedTopic {
    name: String,
    topic_id: Uuid,
    partitions: Vec<Wanted>,
}

/// Handles Fetch: topics resolve through `image`, partitions through
/// `replicas`; a response carries at most `fetch_max_bytes` of records
/// (past KIP-74's first batch).
pub fn handle(
    replicas: &ReplicaManager,
    image: &MetadataImage,
    fetch_max_bytes: u32,
    _ctx: &RequestContext,
    header: &RequestHeader,
    request: FetchRequest,
) -> impl Future<Output = FetchResponse> + Send + 'static {
    let version = header.request_api_version;
    let topics: Vec<WantedTopic> = request
        .topics
        .into_iter()
        .map(|t| {
            // v13+ names topics by id only.
            let name = if version >= 13 {
                image.topic_by_id(&t.topic_id).map(|ti| ti.name.clone())
            } else {
                Some(t.topic.clone())
            };
            let topic_error = if version >= 13 {
                code::UNKNOWN_TOPIC_ID
            } else {
                code::UNKNOWN_TOPIC_OR_PARTITION
            };
            let topic_id = name
                .as_ref()
                .and_then(|n| image.topics.get(n))
                .map_or(t.topic_id, |ti| ti.topic_id);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| Wanted {
                    partition_index: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                    target: match &name {
                        Some(n) => replicas
                            .partition(n, p.partition)
                            .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION),
                        None => Err(topic_error),
                    },
                })
                .collect();
            WantedTopic {
                name: name.unwrap_or(t.topic),
                topic_id,
                partitions,
            }
        })
        .collect();
    // The broker's cap bounds the response whatever the client asks for
    // (Kafka's fetch.max.bytes); KIP-74's first batch is still returned whole.
    let max_bytes = (request.max_bytes.max(0) as usize).min(fetch_max_bytes as usize);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    // isolation_level 1 (read_committed): stop at the last stable offset
    // and list the aborted transactions in the returned range.
    let read_committed = request.isolation_level == 1;

    async move {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            // Register for wake-ups before reading, so an append between the
            // read and the wait is not missed.
            let live: Vec<Arc<Partition>> = topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .filter_map(|w| w.target.as_ref().ok().cloned())
                .collect();
            let mut waits: Vec<_> = live.iter().map(|p| Box::pin(p.hw_advanced())).collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            let (response, bytes, any_error) =
                read_all(&topics, max_bytes, version, read_committed);
            let now = tokio::time::Instant::now();
            if bytes >= min_bytes || any_error || now >= deadline || waits.is_empty() {
                return response;
            }
            tokio::select! {
                _ = select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// Reads every wanted partition once. Returns the response, the bytes of
/// records in it, and whether any partition carries an error (which ends a
/// long poll at once, as in Kafka).
fn read_all(
    topics: &[WantedTopic],
    max_bytes: usize,
    version: i16,
    read_committed: bool,
) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let responses = topics
        .iter()
        .map(|t| FetchableTopicResponse {
            topic: if version < 13 {
                t.name.clone()
            } else {
                String::new()
            },
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|w| {
                    let data = read_partition(
                        w,
                        max_bytes.saturating_sub(total),
                        total == 0,
                        read_committed,
                    );
                    total += data.records.len();
                    any_error |= data.error_code != code::NONE;
                    data
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let response = FetchResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        session_id: 0,
        responses,
        ..Default::default()
    };
    (response, total, any_error)
}

fn read_partition(w: &Wanted, budget: usize, first: bool, read_committed: bool) -> PartitionData {
    let empty = |error_code: i16| PartitionData {
        partition_index: w.partition_index,
        error_code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        records: Bytes::new(),
        ..Default::default()
    };
    let partition = match &w.target {
        Ok(p) => p,
        Err(error_code) => return empty(*error_code),
    };
    let high_watermark = partition.high_watermark();
    let log_start_offset = partition.log().log_start_offset();
    let last_stable_offset = partition.last_stable_offset();
    let mut data = PartitionData {
        high_watermark,
        last_stable_offset,
        log_start_offset,
        ..empty(code::NONE)
    };
    // KIP-74: the first batch of the response is returned even when it is
    // larger than the limits, so a consumer can always make progress.
    // Past the first batch, a partition gets only what fits both its own
    // partition_max_bytes and what is left of the request's max_bytes.
    let limit_bytes = (w.partition_max_bytes.max(0) as usize).min(budget);
    if limit_bytes == 0 && !first {
        return data;
    }
    let limit = u32::try_from(limit_bytes.max(1)).unwrap_or(u32::MAX);
    let max_offset = if read_committed {
        last_stable_offset
    } else {
        high_watermark
    };
    let read = partition
        .log()
        .read(w.fetch_offset, limit, max_offset)
        .and_then(|r| {
            r.to_bytes().map_err(|source| LogError::Io {
                op: "read",
                path: partition.log().dir().to_owned(),
                source,
            })
        });
    match read {
        Ok(bytes) => {
            // The log always returns at least one whole batch; outside
            // KIP-74's first-batch exception, one that overshoots the limit
            // is left for the next fetch.
            if !first && bytes.len() > limit_bytes {
                return data;
            }
            if read_committed {
                match partition.aborted_transactions(w.fetch_offset, &bytes) {
                    Ok(aborted) => data.aborted_transactions = Some(aborted),
                    Err(e) => {
                        // Records without their aborted list would show a
                        // read_committed consumer aborted data: send none.
                        tracing::error!(partition = %partition.tp, offset = w.fetch_offset, "cannot read the transaction index: {e}");
                        data.error_code = e.kafka_error_code();
                        return data;
                    }
                }
            }
            sluice_metrics::fetched(&partition.tp.topic, bytes.len());
            data.records = bytes;
        }
        Err(e) => {
            let error_code = e.kafka_error_code();
            if error_code != code::OFFSET_OUT_OF_RANGE {
                tracing::error!(partition = %partition.tp, offset = w.fetch_offset, "fetch read failed: {e}");
            }
            data.error_code = error_code;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::messages::fetch::{FetchPartition, FetchTopic};

    use super::*;
    use crate::{Broker, testing};

    const CAP: u32 = 4096;

    async fn broker_with_cap(dir: &std::path::Path) -> Arc<Broker> {
        let mut config = crate::config::Config::default();
        config.limits.fetch_max_bytes = CAP;
        testing::broker_with(dir, config).await
    }

    /// Appends `batches` batches of one `value_bytes` record to `topic`-`p`.
    async fn fill(broker: &Arc<Broker>, topic: &str, p: i32, batches: usize, value_bytes: usize) {
        let partition = broker.replicas.partition(topic, p).expect("partition");
        for _ in 0..batches {
            let batch = testing::batch_with_value(&vec![b'x'; value_bytes]);
            let info = partition
                .append(BytesMut::from(batch.as_ref()), testing::now_ms())
                .expect("append");
            partition
                .commit(info.last_offset + 1)
                .await
                .expect("commit");
        }
    }

    /// A Fetch v12 asking for everything, from offset 0 of each partition.
    fn fetch_everything(topic: &str, partitions: i32) -> (RequestHeader, FetchRequest) {
        let header = RequestHeader {
            request_api_key: 1,
            request_api_version: 12,
            correlation_id: 1,
            client_id: None,
        };
        let request = FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: i32::MAX,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                partitions: (0..partitions)
                    .map(|p| FetchPartition {
                        partition: p,
                        fetch_offset: 0,
                        partition_max_bytes: i32::MAX,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        (header, request)
    }

    fn record_bytes(response: &FetchResponse) -> Vec<usize> {
        response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.records.len()))
            .collect()
    }

    #[tokio::test]
    async fn fetch_response_is_capped_by_fetch_max_bytes_whatever_the_client_asks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_cap(dir.path()).await;
        testing::create_topic(&broker, "t", 3).await;
        for p in 0..3 {
            fill(&broker, "t", p, 20, 500).await; // about 11 KB per partition
        }
        let (header, request) = fetch_everything("t", 3);
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            broker.config.limits.fetch_max_bytes,
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let sizes = record_bytes(&response);
        let total: usize = sizes.iter().sum();
        assert!(total > 0, "something is returned");
        assert!(
            total <= CAP as usize,
            "response carries {total} record bytes, above the {CAP}-byte cap: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn first_batch_is_returned_whole_even_above_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_cap(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        fill(&broker, "t", 0, 3, 3 * CAP as usize).await;
        fill(&broker, "t", 1, 3, 100).await;
        let (header, request) = fetch_everything("t", 2);
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            broker.config.limits.fetch_max_bytes,
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let sizes = record_bytes(&response);
        // Exactly one oversized batch from partition 0; nothing else fits.
        assert!(sizes[0] > 3 * CAP as usize, "{sizes:?}");
        assert!(
            sizes[0] < 4 * CAP as usize,
            "only the first batch: {sizes:?}"
        );
        assert_eq!(sizes[1], 0, "{sizes:?}");
    }

    #[tokio::test]
    async fn partition_max_bytes_limits_each_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = broker_with_cap(dir.path()).await;
        testing::create_topic(&broker, "t", 2).await;
        for p in 0..2 {
            fill(&broker, "t", p, 10, 200).await;
        }
        let (header, mut request) = fetch_everything("t", 2);
        for p in &mut request.topics[0].partitions {
            p.partition_max_bytes = 1000;
        }
        let response = handle(
            &broker.replicas,
            &broker.metadata.image(),
            broker.config.limits.fetch_max_bytes,
            &testing::ctx(),
            &header,
            request,
        )
        .await;
        let sizes = record_bytes(&response);
        assert!(sizes.iter().all(|&s| s > 0 && s <= 1000), "{sizes:?}");
    }
}
