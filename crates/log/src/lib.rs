//! Durable segmented log: Kafka RecordBatch v2 segments with offset and time indexes.
