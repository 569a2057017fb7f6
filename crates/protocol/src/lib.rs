//! Sans-io Kafka wire codec: request/response types, headers, and framing. No I/O lives here.
