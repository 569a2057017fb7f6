//! Client errors, layered: transport (connect, I/O, framing), codec, then
//! Kafka error codes returned by the broker, then client-side usage errors.

use std::time::Duration;

use sluice_protocol::ApiKey;
use sluice_protocol::error::ErrorCode;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No bootstrap address answered.
    // The last error names its address: list the addresses only when
    // there were several, so a single one is said once.
    #[error("cannot reach any broker{}: {source}", tried(.addrs))]
    NoBrokerReachable {
        /// The addresses tried, comma-separated.
        addrs: String,
        /// The last connect error.
        #[source]
        source: Box<ClientError>,
    },
    /// A TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A TCP connect did not finish in time.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// host:port.
        addr: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// Reading or writing the socket failed, or the broker closed it.
    #[error("connection to {addr} failed: {source}")]
    Io {
        /// host:port.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The connection was closed while a request was outstanding.
    #[error("connection to {addr} closed")]
    Disconnected {
        /// host:port.
        addr: String,
    },
    /// No response arrived within the request timeout.
    #[error("{api:?} request to {addr} timed out after {timeout:?}")]
    RequestTimeout {
        /// The API.
        api: ApiKey,
        /// host:port.
        addr: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A response frame announced a length outside (0, limit].
    #[error("response frame from {addr} has bad length {length} (limit {limit})")]
    BadFrameLength {
        /// host:port.
        addr: String,
        /// The announced length.
        length: i64,
        /// Our limit.
        limit: usize,
    },
    /// The peer answered with HTTP: an HTTP listener, not a Kafka one.
    #[error("{addr} answered with HTTP")]
    HttpAnswer {
        /// host:port.
        addr: String,
    },
    /// A response could not be decoded.
    #[error("cannot decode {api:?} response: {source}")]
    Decode {
        /// The API.
        api: ApiKey,
        /// What went wrong.
        #[source]
        source: sluice_protocol::DecodeError,
    },
    /// A request could not be encoded.
    #[error("cannot encode {api:?} request: {source}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// What went wrong.
        #[source]
        source: sluice_protocol::EncodeError,
    },
    /// The broker and the client share no version of an API.
    #[error("broker {addr} does not support {api:?} (client needs v{client_min}-{client_max})")]
    UnsupportedApi {
        /// The API.
        api: ApiKey,
        /// host:port.
        addr: String,
        /// Lowest version we can speak.
        client_min: i16,
        /// Highest version we can speak.
        client_max: i16,
    },
    /// A Kafka error code from the broker.
    #[error("{context}: {} ({}){}", .code.name(), .code.code(), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// What was being done (topic, partition, group...).
        context: String,
        /// The error code.
        code: ErrorCode,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },
    /// The topic does not exist.
    #[error("topic '{topic}' does not exist")]
    UnknownTopic {
        /// Topic name.
        topic: String,
    },
    /// The partition does not exist.
    #[error("partition {partition} of topic '{topic}' does not exist (topic has {partitions})")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition asked for.
        partition: i32,
        /// How many the topic has.
        partitions: usize,
    },
    /// No leader is known for a partition after refreshing metadata.
    #[error("no leader for {topic}-{partition}")]
    NoLeader {
        /// Topic name.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A broker id named by metadata is not in the broker list.
    #[error("broker {node_id} is not in the cluster metadata")]
    UnknownBroker {
        /// Node id.
        node_id: i32,
    },
    /// Record batch encoding or decoding failed.
    #[error("record batch: {0}")]
    Records(#[from] sluice_records::RecordsError),
    /// An embedded consumer-protocol blob (subscription/assignment) was malformed.
    #[error("malformed consumer protocol {what}")]
    MalformedGroupData {
        /// Which blob.
        what: &'static str,
    },
    /// Bad configuration or usage.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The producer or consumer was closed.
    #[error("client is closed")]
    Closed,
    /// SASL authentication failed on this side: the broker's SCRAM
    /// messages do not verify, or the mechanism is unknown here. (A
    /// refusal by the broker is [`ClientError::Kafka`] with its code.)
    #[error("SASL authentication with {addr} failed: {reason}")]
    Sasl {
        /// host:port.
        addr: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// A Kafka error for `context`.
    pub fn kafka(context: impl Into<String>, code: i16, message: Option<String>) -> ClientError {
        ClientError::Kafka {
            context: context.into(),
            code: ErrorCode::from_code(code),
            message,
        }
    }

    /// The Kafka error code, if this is a broker error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when retrying (after a metadata refresh and a backoff) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ConnectTimeout { .. }
            | ClientError::Io { .. }
            | ClientError::Disconnected { .. }
            | ClientError::RequestTimeout { .. }
            | ClientError::NoLeader { .. }
            | ClientError::NoBrokerReachable { .. } => true,
            ClientError::Kafka { code, .. } => is_retriable_code(code.code()),
            _ => false,
        }
    }

    /// True when the error means our metadata is stale.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Kafka { code, .. } => matches!(code.code(), 3 | 5 | 6 | 74 | 75 | 100),
            ClientError::NoLeader { .. }
            | ClientError::Io { .. }
            | ClientError::Disconnected { .. }
            | ClientError::Connect { .. } => true,
            _ => false,
        }
    }
}

fn tried(addrs: &str) -> String {
    if addrs.contains(',') {
        format!(" (tried {addrs})")
    } else {
        String::new()
    }
}

/// Kafka's retriable error codes (the `RetriableException` subclasses).
pub fn is_retriable_code(code: i16) -> bool {
    sluice_protocol::error::ErrorCode::from_code(code).is_retriable()
}

/// Shorthand for results in this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_single_broker_is_named_once() {
        let err = ClientError::NoBrokerReachable {
            addrs: "127.0.0.1:1".to_owned(),
            source: Box::new(ClientError::Disconnected {
                addr: "127.0.0.1:1".to_owned(),
            }),
        };
        assert_eq!(
            err.to_string(),
            "cannot reach any broker: connection to 127.0.0.1:1 closed"
        );
        let err = ClientError::NoBrokerReachable {
            addrs: "a:1,b:2".to_owned(),
            source: Box::new(ClientError::Disconnected {
                addr: "b:2".to_owned(),
            }),
        };
        assert_eq!(
            err.to_string(),
            "cannot reach any broker (tried a:1,b:2): connection to b:2 closed"
        );
    }
}
