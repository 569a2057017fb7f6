//! Kafka RecordBatch v2: header parsing, CRC-32C, the record codec, compression, and a batch builder.
