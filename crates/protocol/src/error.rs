//! Kafka's protocol error codes (the `error_code` fields), up to Kafka 4.0.
//!
//! Numbers are Kafka's and are never reused or renumbered. Handlers map
//! internal errors onto these per item; the codec itself never produces them.

/// A Kafka protocol error code. Unknown numbers are kept in [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `UNKNOWN_SERVER_ERROR` (-1).
    UnknownServerError,
    /// `NONE` (0).
    None,
    /// `OFFSET_OUT_OF_RANGE` (1).
    OffsetOutOfRange,
    /// `CORRUPT_MESSAGE` (2).
    CorruptMessage,
    /// `UNKNOWN_TOPIC_OR_PARTITION` (3).
    UnknownTopicOrPartition,
    /// `INVALID_FETCH_SIZE` (4).
    InvalidFetchSize,
    /// `LEADER_NOT_AVAILABLE` (5).
    LeaderNotAvailable,
    /// `NOT_LEADER_OR_FOLLOWER` (6).
    NotLeaderOrFollower,
    /// `REQUEST_TIMED_OUT` (7).
    RequestTimedOut,
    /// `BROKER_NOT_AVAILABLE` (8).
    BrokerNotAvailable,
    /// `REPLICA_NOT_AVAILABLE` (9).
    ReplicaNotAvailable,
    /// `MESSAGE_TOO_LARGE` (10).
    MessageTooLarge,
    /// `STALE_CONTROLLER_EPOCH` (11).
    StaleControllerEpoch,
    /// `OFFSET_METADATA_TOO_LARGE` (12).
    OffsetMetadataTooLarge,
    /// `NETWORK_EXCEPTION` (13).
    NetworkException,
    /// `COORDINATOR_LOAD_IN_PROGRESS` (14).
    CoordinatorLoadInProgress,
    /// `COORDINATOR_NOT_AVAILABLE` (15).
    CoordinatorNotAvailable,
    /// `NOT_COORDINATOR` (16).
    NotCoordinator,
    /// `INVALID_TOPIC_EXCEPTION` (17).
    InvalidTopicException,
    /// `RECORD_LIST_TOO_LARGE` (18).
    RecordListTooLarge,
    /// `NOT_ENOUGH_REPLICAS` (19).
    NotEnoughReplicas,
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (20).
    NotEnoughReplicasAfterAppend,
    /// `INVALID_REQUIRED_ACKS` (21).
    InvalidRequiredAcks,
    /// `ILLEGAL_GENERATION` (22).
    IllegalGeneration,
    /// `INCONSISTENT_GROUP_PROTOCOL` (23).
    InconsistentGroupProtocol,
    /// `INVALID_GROUP_ID` (24).
    InvalidGroupId,
    /// `UNKNOWN_MEMBER_ID` (25).
    UnknownMemberId,
    /// `INVALID_SESSION_TIMEOUT` (26).
    InvalidSessionTimeout,
    /// `REBALANCE_IN_PROGRESS` (27).
    RebalanceInProgress,
    /// `INVALID_COMMIT_OFFSET_SIZE` (28).
    InvalidCommitOffsetSize,
    /// `TOPIC_AUTHORIZATION_FAILED` (29).
    TopicAuthorizationFailed,
    /// `GROUP_AUTHORIZATION_FAILED` (30).
    GroupAuthorizationFailed,
    /// `CLUSTER_AUTHORIZATION_FAILED` (31).
    ClusterAuthorizationFailed,
    /// `INVALID_TIMESTAMP` (32).
    InvalidTimestamp,
    /// `UNSUPPORTED_SASL_MECHANISM` (33).
    UnsupportedSaslMechanism,
    /// `ILLEGAL_SASL_STATE` (34).
    IllegalSaslState,
    /// `UNSUPPORTED_VERSION` (35).
    UnsupportedVersion,
    /// `TOPIC_ALREADY_EXISTS` (36).
    TopicAlreadyExists,
    /// `INVALID_PARTITIONS` (37).
    InvalidPartitions,
    /// `INVALID_REPLICATION_FACTOR` (38).
    InvalidReplicationFactor,
    /// `INVALID_REPLICA_ASSIGNMENT` (39).
    InvalidReplicaAssignment,
    /// `INVALID_CONFIG` (40).
    InvalidConfig,
    /// `NOT_CONTROLLER` (41).
    NotController,
    /// `INVALID_REQUEST` (42).
    InvalidRequest,
    /// `UNSUPPORTED_FOR_MESSAGE_FORMAT` (43).
    UnsupportedForMessageFormat,
    /// `POLICY_VIOLATION` (44).
    PolicyViolation,
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    OutOfOrderSequenceNumber,
    /// `DUPLICATE_SEQUENCE_NUMBER` (46).
    DuplicateSequenceNumber,
    /// `INVALID_PRODUCER_EPOCH` (47).
    InvalidProducerEpoch,
    /// `INVALID_TXN_STATE` (48).
    InvalidTxnState,
    /// `INVALID_PRODUCER_ID_MAPPING` (49).
    InvalidProducerIdMapping,
    /// `INVALID_TRANSACTION_TIMEOUT` (50).
    InvalidTransactionTimeout,
    /// `CONCURRENT_TRANSACTIONS` (51).
    ConcurrentTransactions,
    /// `TRANSACTION_COORDINATOR_FENCED` (52).
    TransactionCoordinatorFenced,
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (53).
    TransactionalIdAuthorizationFailed,
    /// `SECURITY_DISABLED` (54).
    SecurityDisabled,
    /// `OPERATION_NOT_ATTEMPTED` (55).
    OperationNotAttempted,
    /// `KAFKA_STORAGE_ERROR` (56).
    KafkaStorageError,
    /// `LOG_DIR_NOT_FOUND` (57).
    LogDirNotFound,
    /// `SASL_AUTHENTICATION_FAILED` (58).
    SaslAuthenticationFailed,
    /// `UNKNOWN_PRODUCER_ID` (59).
    UnknownProducerId,
    /// `REASSIGNMENT_IN_PROGRESS` (60).
    ReassignmentInProgress,
    /// `DELEGATION_TOKEN_AUTH_DISABLED` (61).
    DelegationTokenAuthDisabled,
    /// `DELEGATION_TOKEN_NOT_FOUND` (62).
    DelegationTokenNotFound,
    /// `DELEGATION_TOKEN_OWNER_MISMATCH` (63).
    DelegationTokenOwnerMismatch,
    /// `DELEGATION_TOKEN_REQUEST_NOT_ALLOWED` (64).
    DelegationTokenRequestNotAllowed,
    /// `DELEGATION_TOKEN_AUTHORIZATION_FAILED` (65).
    DelegationTokenAuthorizationFailed,
    /// `DELEGATION_TOKEN_EXPIRED` (66).
    DelegationTokenExpired,
    /// `INVALID_PRINCIPAL_TYPE` (67).
    InvalidPrincipalType,
    /// `NON_EMPTY_GROUP` (68).
    NonEmptyGroup,
    /// `GROUP_ID_NOT_FOUND` (69).
    GroupIdNotFound,
    /// `FETCH_SESSION_ID_NOT_FOUND` (70).
    FetchSessionIdNotFound,
    /// `INVALID_FETCH_SESSION_EPOCH` (71).
    InvalidFetchSessionEpoch,
    /// `LISTENER_NOT_FOUND` (72).
    ListenerNotFound,
    /// `TOPIC_DELETION_DISABLED` (73).
    TopicDeletionDisabled,
    /// `FENCED_LEADER_EPOCH` (74).
    FencedLeaderEpoch,
    /// `UNKNOWN_LEADER_EPOCH` (75).
    UnknownLeaderEpoch,
    /// `UNSUPPORTED_COMPRESSION_TYPE` (76).
    UnsupportedCompressionType,
    /// `STALE_BROKER_EPOCH` (77).
    StaleBrokerEpoch,
    /// `OFFSET_NOT_AVAILABLE` (78).
    OffsetNotAvailable,
    /// `MEMBER_ID_REQUIRED` (79).
    MemberIdRequired,
    /// `PREFERRED_LEADER_NOT_AVAILABLE` (80).
    PreferredLeaderNotAvailable,
    /// `GROUP_MAX_SIZE_REACHED` (81).
    GroupMaxSizeReached,
    /// `FENCED_INSTANCE_ID` (82).
    FencedInstanceId,
    /// `ELIGIBLE_LEADERS_NOT_AVAILABLE` (83).
    EligibleLeadersNotAvailable,
    /// `ELECTION_NOT_NEEDED` (84).
    ElectionNotNeeded,
    /// `NO_REASSIGNMENT_IN_PROGRESS` (85).
    NoReassignmentInProgress,
    /// `GROUP_SUBSCRIBED_TO_TOPIC` (86).
    GroupSubscribedToTopic,
    /// `INVALID_RECORD` (87).
    InvalidRecord,
    /// `UNSTABLE_OFFSET_COMMIT` (88).
    UnstableOffsetCommit,
    /// `THROTTLING_QUOTA_EXCEEDED` (89).
    ThrottlingQuotaExceeded,
    /// `PRODUCER_FENCED` (90).
    ProducerFenced,
    /// `RESOURCE_NOT_FOUND` (91).
    ResourceNotFound,
    /// `DUPLICATE_RESOURCE` (92).
    DuplicateResource,
    /// `UNACCEPTABLE_CREDENTIAL` (93).
    UnacceptableCredential,
    /// `INCONSISTENT_VOTER_SET` (94).
    InconsistentVoterSet,
    /// `INVALID_UPDATE_VERSION` (95).
    InvalidUpdateVersion,
    /// `FEATURE_UPDATE_FAILED` (96).
    FeatureUpdateFailed,
    /// `PRINCIPAL_DESERIALIZATION_FAILURE` (97).
    PrincipalDeserializationFailure,
    /// `SNAPSHOT_NOT_FOUND` (98).
    SnapshotNotFound,
    /// `POSITION_OUT_OF_RANGE` (99).
    PositionOutOfRange,
    /// `UNKNOWN_TOPIC_ID` (100).
    UnknownTopicId,
    /// `DUPLICATE_BROKER_REGISTRATION` (101).
    DuplicateBrokerRegistration,
    /// `BROKER_ID_NOT_REGISTERED` (102).
    BrokerIdNotRegistered,
    /// `INCONSISTENT_TOPIC_ID` (103).
    InconsistentTopicId,
    /// `INCONSISTENT_CLUSTER_ID` (104).
    InconsistentClusterId,
    /// `TRANSACTIONAL_ID_NOT_FOUND` (105).
    TransactionalIdNotFound,
    /// `FETCH_SESSION_TOPIC_ID_ERROR` (106).
    FetchSessionTopicIdError,
    /// `INELIGIBLE_REPLICA` (107).
    IneligibleReplica,
    /// `NEW_LEADER_ELECTED` (108).
    NewLeaderElected,
    /// `OFFSET_MOVED_TO_TIERED_STORAGE` (109).
    OffsetMovedToTieredStorage,
    /// `FENCED_MEMBER_EPOCH` (110).
    FencedMemberEpoch,
    /// `UNRELEASED_INSTANCE_ID` (111).
    UnreleasedInstanceId,
    /// `UNSUPPORTED_ASSIGNOR` (112).
    UnsupportedAssignor,
    /// `STALE_MEMBER_EPOCH` (113).
    StaleMemberEpoch,
    /// `MISMATCHED_ENDPOINT_TYPE` (114).
    MismatchedEndpointType,
    /// `UNSUPPORTED_ENDPOINT_TYPE` (115).
    UnsupportedEndpointType,
    /// `UNKNOWN_CONTROLLER_ID` (116).
    UnknownControllerId,
    /// `UNKNOWN_SUBSCRIPTION_ID` (117).
    UnknownSubscriptionId,
    /// `TELEMETRY_TOO_LARGE` (118).
    TelemetryTooLarge,
    /// `INVALID_REGISTRATION` (119).
    InvalidRegistration,
    /// `TRANSACTION_ABORTABLE` (120).
    TransactionAbortable,
    /// `INVALID_RECORD_STATE` (121).
    InvalidRecordState,
    /// `SHARE_SESSION_NOT_FOUND` (122).
    ShareSessionNotFound,
    /// `INVALID_SHARE_SESSION_EPOCH` (123).
    InvalidShareSessionEpoch,
    /// `FENCED_STATE_EPOCH` (124).
    FencedStateEpoch,
    /// `INVALID_VOTER_KEY` (125).
    InvalidVoterKey,
    /// `DUPLICATE_VOTER` (126).
    DuplicateVoter,
    /// `VOTER_NOT_FOUND` (127).
    VoterNotFound,
    /// `INVALID_REGULAR_EXPRESSION` (128).
    InvalidRegularExpression,
    /// `REBOOTSTRAP_REQUIRED` (129).
    RebootstrapRequired,
    /// A code this list does not name (newer Kafka).
    Other(i16),
}

impl ErrorCode {
    /// The wire value.
    pub const fn code(self) -> i16 {
        match self {
            ErrorCode::UnknownServerError => -1,
            ErrorCode::None => 0,
            ErrorCode::OffsetOutOfRange => 1,
            ErrorCode::CorruptMessage => 2,
            ErrorCode::UnknownTopicOrPartition => 3,
            ErrorCode::InvalidFetchSize => 4,
            ErrorCode::LeaderNotAvailable => 5,
            ErrorCode::NotLeaderOrFollower => 6,
            ErrorCode::RequestTimedOut => 7,
            ErrorCode::BrokerNotAvailable => 8,
            ErrorCode::ReplicaNotAvailable => 9,
            ErrorCode::MessageTooLarge => 10,
            ErrorCode::StaleControllerEpoch => 11,
            ErrorCode::OffsetMetadataTooLarge => 12,
            ErrorCode::NetworkException => 13,
            ErrorCode::CoordinatorLoadInProgress => 14,
            ErrorCode::CoordinatorNotAvailable => 15,
            ErrorCode::NotCoordinator => 16,
            ErrorCode::InvalidTopicException => 17,
            ErrorCode::RecordListTooLarge => 18,
            ErrorCode::NotEnoughReplicas => 19,
            ErrorCode::NotEnoughReplicasAfterAppend => 20,
            ErrorCode::InvalidRequiredAcks => 21,
            ErrorCode::IllegalGeneration => 22,
            ErrorCode::InconsistentGroupProtocol => 23,
            ErrorCode::InvalidGroupId => 24,
            ErrorCode::UnknownMemberId => 25,
            ErrorCode::InvalidSessionTimeout => 26,
            ErrorCode::RebalanceInProgress => 27,
            ErrorCode::InvalidCommitOffsetSize => 28,
            ErrorCode::TopicAuthorizationFailed => 29,
            ErrorCode::GroupAuthorizationFailed => 30,
            ErrorCode::ClusterAuthorizationFailed => 31,
            ErrorCode::InvalidTimestamp => 32,
            ErrorCode::UnsupportedSaslMechanism => 33,
            ErrorCode::IllegalSaslState => 34,
            ErrorCode::UnsupportedVersion => 35,
            ErrorCode::TopicAlreadyExists => 36,
            ErrorCode::InvalidPartitions => 37,
            ErrorCode::InvalidReplicationFactor => 38,
            ErrorCode::InvalidReplicaAssignment => 39,
            ErrorCode::InvalidConfig => 40,
            ErrorCode::NotController => 41,
            ErrorCode::InvalidRequest => 42,
            ErrorCode::UnsupportedForMessageFormat => 43,
            ErrorCode::PolicyViolation => 44,
            ErrorCode::OutOfOrderSequenceNumber => 45,
            ErrorCode::DuplicateSequenceNumber => 46,
            ErrorCode::InvalidProducerEpoch => 47,
            ErrorCode::InvalidTxnState => 48,
            ErrorCode::InvalidProducerIdMapping => 49,
            ErrorCode::InvalidTransactionTimeout => 50,
            ErrorCode::ConcurrentTransactions => 51,
            ErrorCode::TransactionCoordinatorFenced => 52,
            ErrorCode::TransactionalIdAuthorizationFailed => 53,
            ErrorCode::SecurityDisabled => 54,
            ErrorCode::OperationNotAttempted => 55,
            ErrorCode::KafkaStorageError => 56,
            ErrorCode::LogDirNotFound => 57,
            ErrorCode::SaslAuthenticationFailed => 58,
            ErrorCode::UnknownProducerId => 59,
            ErrorCode::ReassignmentInProgress => 60,
            ErrorCode::DelegationTokenAuthDisabled => 61,
            ErrorCode::DelegationTokenNotFound => 62,
            ErrorCode::DelegationTokenOwnerMismatch => 63,
            ErrorCode::DelegationTokenRequestNotAllowed => 64,
            ErrorCode::DelegationTokenAuthorizationFailed => 65,
            ErrorCode::DelegationTokenExpired => 66,
            ErrorCode::InvalidPrincipalType => 67,
            ErrorCode::NonEmptyGroup => 68,
            ErrorCode::GroupIdNotFound => 69,
            ErrorCode::FetchSessionIdNotFound => 70,
            ErrorCode::InvalidFetchSessionEpoch => 71,
            ErrorCode::ListenerNotFound => 72,
            ErrorCode::TopicDeletionDisabled => 73,
            ErrorCode::FencedLeaderEpoch => 74,
            ErrorCode::UnknownLeaderEpoch => 75,
            ErrorCode::UnsupportedCompressionType => 76,
            ErrorCode::StaleBrokerEpoch => 77,
            ErrorCode::OffsetNotAvailable => 78,
            ErrorCode::MemberIdRequired => 79,
            ErrorCode::PreferredLeaderNotAvailable => 80,
            ErrorCode::GroupMaxSizeReached => 81,
            ErrorCode::FencedInstanceId => 82,
            ErrorCode::EligibleLeadersNotAvailable => 83,
            ErrorCode::ElectionNotNeeded => 84,
            ErrorCode::NoReassignmentInProgress => 85,
            ErrorCode::GroupSubscribedToTopic => 86,
            ErrorCode::InvalidRecord => 87,
            ErrorCode::UnstableOffsetCommit => 88,
            ErrorCode::ThrottlingQuotaExceeded => 89,
            ErrorCode::ProducerFenced => 90,
            ErrorCode::ResourceNotFound => 91,
            ErrorCode::DuplicateResource => 92,
            ErrorCode::UnacceptableCredential => 93,
            ErrorCode::InconsistentVoterSet => 94,
            ErrorCode::InvalidUpdateVersion => 95,
            ErrorCode::FeatureUpdateFailed => 96,
            ErrorCode::PrincipalDeserializationFailure => 97,
            ErrorCode::SnapshotNotFound => 98,
            ErrorCode::PositionOutOfRange => 99,
            ErrorCode::UnknownTopicId => 100,
            ErrorCode::DuplicateBrokerRegistration => 101,
            ErrorCode::BrokerIdNotRegistered => 102,
            ErrorCode::InconsistentTopicId => 103,
            ErrorCode::InconsistentClusterId => 104,
            ErrorCode::TransactionalIdNotFound => 105,
            ErrorCode::FetchSessionTopicIdError => 106,
            ErrorCode::IneligibleReplica => 107,
            ErrorCode::NewLeaderElected => 108,
            ErrorCode::OffsetMovedToTieredStorage => 109,
            ErrorCode::FencedMemberEpoch => 110,
            ErrorCode::UnreleasedInstanceId => 111,
            ErrorCode::UnsupportedAssignor => 112,
            ErrorCode::StaleMemberEpoch => 113,
            ErrorCode::MismatchedEndpointType => 114,
            ErrorCode::UnsupportedEndpointType => 115,
            ErrorCode::UnknownControllerId => 116,
            ErrorCode::UnknownSubscriptionId => 117,
            ErrorCode::TelemetryTooLarge => 118,
            ErrorCode::InvalidRegistration => 119,
            ErrorCode::TransactionAbortable => 120,
            ErrorCode::InvalidRecordState => 121,
            ErrorCode::ShareSessionNotFound => 122,
            ErrorCode::InvalidShareSessionEpoch => 123,
            ErrorCode::FencedStateEpoch => 124,
            ErrorCode::InvalidVoterKey => 125,
            ErrorCode::DuplicateVoter => 126,
            ErrorCode::VoterNotFound => 127,
            ErrorCode::InvalidRegularExpression => 128,
            ErrorCode::RebootstrapRequired => 129,
            ErrorCode::Other(c) => c,
        }
    }

    /// The error for a wire value.
    pub const fn from_code(code: i16) -> Self {
        match code {
            -1 => ErrorCode::UnknownServerError,
            0 => ErrorCode::None,
            1 => ErrorCode::OffsetOutOfRange,
            2 => ErrorCode::CorruptMessage,
            3 => ErrorCode::UnknownTopicOrPartition,
            4 => ErrorCode::InvalidFetchSize,
            5 => ErrorCode::LeaderNotAvailable,
            6 => ErrorCode::NotLeaderOrFollower,
            7 => ErrorCode::RequestTimedOut,
            8 => ErrorCode::BrokerNotAvailable,
            9 => ErrorCode::ReplicaNotAvailable,
            10 => ErrorCode::MessageTooLarge,
            11 => ErrorCode::StaleControllerEpoch,
            12 => ErrorCode::OffsetMetadataTooLarge,
            13 => ErrorCode::NetworkException,
            14 => ErrorCode::CoordinatorLoadInProgress,
            15 => ErrorCode::CoordinatorNotAvailable,
            16 => ErrorCode::NotCoordinator,
            17 => ErrorCode::InvalidTopicException,
            18 => ErrorCode::RecordListTooLarge,
            19 => ErrorCode::NotEnoughReplicas,
            20 => ErrorCode::NotEnoughReplicasAfterAppend,
            21 => ErrorCode::InvalidRequiredAcks,
            22 => ErrorCode::IllegalGeneration,
            23 => ErrorCode::InconsistentGroupProtocol,
            24 => ErrorCode::InvalidGroupId,
            25 => ErrorCode::UnknownMemberId,
            26 => ErrorCode::InvalidSessionTimeout,
            27 => ErrorCode::RebalanceInProgress,
            28 => ErrorCode::InvalidCommitOffsetSize,
            29 => ErrorCode::TopicAuthorizationFailed,
            30 => ErrorCode::GroupAuthorizationFailed,
            31 => ErrorCode::ClusterAuthorizationFailed,
            32 => ErrorCode::InvalidTimestamp,
            33 => ErrorCode::UnsupportedSaslMechanism,
            34 => ErrorCode::IllegalSaslState,
            35 => ErrorCode::UnsupportedVersion,
            36 => ErrorCode::TopicAlreadyExists,
            37 => ErrorCode::InvalidPartitions,
            38 => ErrorCode::InvalidReplicationFactor,
            39 => ErrorCode::InvalidReplicaAssignment,
            40 => ErrorCode::InvalidConfig,
            41 => ErrorCode::NotController,
            42 => ErrorCode::InvalidRequest,
            43 => ErrorCode::UnsupportedForMessageFormat,
            44 => ErrorCode::PolicyViolation,
            45 => ErrorCode::OutOfOrderSequenceNumber,
            46 => ErrorCode::DuplicateSequenceNumber,
            47 => ErrorCode::InvalidProducerEpoch,
            48 => ErrorCode::InvalidTxnState,
            49 => ErrorCode::InvalidProducerIdMapping,
            50 => ErrorCode::InvalidTransactionTimeout,
            51 => ErrorCode::ConcurrentTransactions,
            52 => ErrorCode::TransactionCoordinatorFenced,
            53 => ErrorCode::TransactionalIdAuthorizationFailed,
            54 => ErrorCode::SecurityDisabled,
            55 => ErrorCode::OperationNotAttempted,
            56 => ErrorCode::KafkaStorageError,
            57 => ErrorCode::LogDirNotFound,
            58 => ErrorCode::SaslAuthenticationFailed,
            59 => ErrorCode::UnknownProducerId,
            60 => ErrorCode::ReassignmentInProgress,
            61 => ErrorCode::DelegationTokenAuthDisabled,
            62 => ErrorCode::DelegationTokenNotFound,
            63 => ErrorCode::DelegationTokenOwnerMismatch,
            64 => ErrorCode::DelegationTokenRequestNotAllowed,
            65 => ErrorCode::DelegationTokenAuthorizationFailed,
            66 => ErrorCode::DelegationTokenExpired,
            67 => ErrorCode::InvalidPrincipalType,
            68 => ErrorCode::NonEmptyGroup,
            69 => ErrorCode::GroupIdNotFound,
            70 => ErrorCode::FetchSessionIdNotFound,
            71 => ErrorCode::InvalidFetchSessionEpoch,
            72 => ErrorCode::ListenerNotFound,
            73 => ErrorCode::TopicDeletionDisabled,
            74 => ErrorCode::FencedLeaderEpoch,
            75 => ErrorCode::UnknownLeaderEpoch,
            76 => ErrorCode::UnsupportedCompressionType,
            77 => ErrorCode::StaleBrokerEpoch,
            78 => ErrorCode::OffsetNotAvailable,
            79 => ErrorCode::MemberIdRequired,
            80 => ErrorCode::PreferredLeaderNotAvailable,
            81 => ErrorCode::GroupMaxSizeReached,
            82 => ErrorCode::FencedInstanceId,
            83 => ErrorCode::EligibleLeadersNotAvailable,
            84 => ErrorCode::ElectionNotNeeded,
            85 => ErrorCode::NoReassignmentInProgress,
            86 => ErrorCode::GroupSubscribedToTopic,
            87 => ErrorCode::InvalidRecord,
            88 => ErrorCode::UnstableOffsetCommit,
            89 => ErrorCode::ThrottlingQuotaExceeded,
            90 => ErrorCode::ProducerFenced,
            91 => ErrorCode::ResourceNotFound,
            92 => ErrorCode::DuplicateResource,
            93 => ErrorCode::UnacceptableCredential,
            94 => ErrorCode::InconsistentVoterSet,
            95 => ErrorCode::InvalidUpdateVersion,
            96 => ErrorCode::FeatureUpdateFailed,
            97 => ErrorCode::PrincipalDeserializationFailure,
            98 => ErrorCode::SnapshotNotFound,
            99 => ErrorCode::PositionOutOfRange,
            100 => ErrorCode::UnknownTopicId,
            101 => ErrorCode::DuplicateBrokerRegistration,
            102 => ErrorCode::BrokerIdNotRegistered,
            103 => ErrorCode::InconsistentTopicId,
            104 => ErrorCode::InconsistentClusterId,
            105 => ErrorCode::TransactionalIdNotFound,
            106 => ErrorCode::FetchSessionTopicIdError,
            107 => ErrorCode::IneligibleReplica,
            108 => ErrorCode::NewLeaderElected,
            109 => ErrorCode::OffsetMovedToTieredStorage,
            110 => ErrorCode::FencedMemberEpoch,
            111 => ErrorCode::UnreleasedInstanceId,
            112 => ErrorCode::UnsupportedAssignor,
            113 => ErrorCode::StaleMemberEpoch,
            114 => ErrorCode::MismatchedEndpointType,
            115 => ErrorCode::UnsupportedEndpointType,
            116 => ErrorCode::UnknownControllerId,
            117 => ErrorCode::UnknownSubscriptionId,
            118 => ErrorCode::TelemetryTooLarge,
            119 => ErrorCode::InvalidRegistration,
            120 => ErrorCode::TransactionAbortable,
            121 => ErrorCode::InvalidRecordState,
            122 => ErrorCode::ShareSessionNotFound,
            123 => ErrorCode::InvalidShareSessionEpoch,
            124 => ErrorCode::FencedStateEpoch,
            125 => ErrorCode::InvalidVoterKey,
            126 => ErrorCode::DuplicateVoter,
            127 => ErrorCode::VoterNotFound,
            128 => ErrorCode::InvalidRegularExpression,
            129 => ErrorCode::RebootstrapRequired,
            other => ErrorCode::Other(other),
        }
    }

    /// Kafka's upper-case name, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::UnknownServerError => "UNKNOWN_SERVER_ERROR",
            ErrorCode::None => "NONE",
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::CorruptMessage => "CORRUPT_MESSAGE",
            ErrorCode::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorCode::InvalidFetchSize => "INVALID_FETCH_SIZE",
            ErrorCode::LeaderNotAvailable => "LEADER_NOT_AVAILABLE",
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::RequestTimedOut => "REQUEST_TIMED_OUT",
            ErrorCode::BrokerNotAvailable => "BROKER_NOT_AVAILABLE",
            ErrorCode::ReplicaNotAvailable => "REPLICA_NOT_AVAILABLE",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::StaleControllerEpoch => "STALE_CONTROLLER_EPOCH",
            ErrorCode::OffsetMetadataTooLarge => "OFFSET_METADATA_TOO_LARGE",
            ErrorCode::NetworkException => "NETWORK_EXCEPTION",
            ErrorCode::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            ErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorCode::NotCoordinator => "NOT_COORDINATOR",
            ErrorCode::InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
            ErrorCode::RecordListTooLarge => "RECORD_LIST_TOO_LARGE",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            ErrorCode::InvalidRequiredAcks => "INVALID_REQUIRED_ACKS",
            ErrorCode::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorCode::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorCode::InvalidGroupId => "INVALID_GROUP_ID",
            ErrorCode::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorCode::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            ErrorCode::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            ErrorCode::InvalidCommitOffsetSize => "INVALID_COMMIT_OFFSET_SIZE",
            ErrorCode::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
            ErrorCode::GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED",
            ErrorCode::ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED",
            ErrorCode::InvalidTimestamp => "INVALID_TIMESTAMP",
            ErrorCode::UnsupportedSaslMechanism => "UNSUPPORTED_SASL_MECHANISM",
            ErrorCode::IllegalSaslState => "ILLEGAL_SASL_STATE",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            ErrorCode::InvalidPartitions => "INVALID_PARTITIONS",
            ErrorCode::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            ErrorCode::InvalidReplicaAssignment => "INVALID_REPLICA_ASSIGNMENT",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::NotController => "NOT_CONTROLLER",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::UnsupportedForMessageFormat => "UNSUPPORTED_FOR_MESSAGE_FORMAT",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ErrorCode::DuplicateSequenceNumber => "DUPLICATE_SEQUENCE_NUMBER",
            ErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorCode::InvalidTxnState => "INVALID_TXN_STATE",
            ErrorCode::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            ErrorCode::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            ErrorCode::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            ErrorCode::TransactionCoordinatorFenced => "TRANSACTION_COORDINATOR_FENCED",
            ErrorCode::TransactionalIdAuthorizationFailed => {
                "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
            }
            ErrorCode::SecurityDisabled => "SECURITY_DISABLED",
            ErrorCode::OperationNotAttempted => "OPERATION_NOT_ATTEMPTED",
            ErrorCode::KafkaStorageError => "KAFKA_STORAGE_ERROR",
            ErrorCode::LogDirNotFound => "LOG_DIR_NOT_FOUND",
            ErrorCode::SaslAuthenticationFailed => "SASL_AUTHENTICATION_FAILED",
            ErrorCode::UnknownProducerId => "UNKNOWN_PRODUCER_ID",
            ErrorCode::ReassignmentInProgress => "REASSIGNMENT_IN_PROGRESS",
            ErrorCode::DelegationTokenAuthDisabled => "DELEGATION_TOKEN_AUTH_DISABLED",
            ErrorCode::DelegationTokenNotFound => "DELEGATION_TOKEN_NOT_FOUND",
            ErrorCode::DelegationTokenOwnerMismatch => "DELEGATION_TOKEN_OWNER_MISMATCH",
            ErrorCode::DelegationTokenRequestNotAllowed => "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
            ErrorCode::DelegationTokenAuthorizationFailed => {
                "DELEGATION_TOKEN_AUTHORIZATION_FAILED"
            }
            ErrorCode::DelegationTokenExpired => "DELEGATION_TOKEN_EXPIRED",
            ErrorCode::InvalidPrincipalType => "INVALID_PRINCIPAL_TYPE",
            ErrorCode::NonEmptyGroup => "NON_EMPTY_GROUP",
            ErrorCode::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
            ErrorCode::FetchSessionIdNotFound => "FETCH_SESSION_ID_NOT_FOUND",
            ErrorCode::InvalidFetchSessionEpoch => "INVALID_FETCH_SESSION_EPOCH",
            ErrorCode::ListenerNotFound => "LISTENER_NOT_FOUND",
            ErrorCode::TopicDeletionDisabled => "TOPIC_DELETION_DISABLED",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::UnsupportedCompressionType => "UNSUPPORTED_COMPRESSION_TYPE",
            ErrorCode::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            ErrorCode::OffsetNotAvailable => "OFFSET_NOT_AVAILABLE",
            ErrorCode::MemberIdRequired => "MEMBER_ID_REQUIRED",
            ErrorCode::PreferredLeaderNotAvailable => "PREFERRED_LEADER_NOT_AVAILABLE",
            ErrorCode::GroupMaxSizeReached => "GROUP_MAX_SIZE_REACHED",
            ErrorCode::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorCode::EligibleLeadersNotAvailable => "ELIGIBLE_LEADERS_NOT_AVAILABLE",
            ErrorCode::ElectionNotNeeded => "ELECTION_NOT_NEEDED",
            ErrorCode::NoReassignmentInProgress => "NO_REASSIGNMENT_IN_PROGRESS",
            ErrorCode::GroupSubscribedToTopic => "GROUP_SUBSCRIBED_TO_TOPIC",
            ErrorCode::InvalidRecord => "INVALID_RECORD",
            ErrorCode::UnstableOffsetCommit => "UNSTABLE_OFFSET_COMMIT",
            ErrorCode::ThrottlingQuotaExceeded => "THROTTLING_QUOTA_EXCEEDED",
            ErrorCode::ProducerFenced => "PRODUCER_FENCED",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::DuplicateResource => "DUPLICATE_RESOURCE",
            ErrorCode::UnacceptableCredential => "UNACCEPTABLE_CREDENTIAL",
            ErrorCode::InconsistentVoterSet => "INCONSISTENT_VOTER_SET",
            ErrorCode::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            ErrorCode::FeatureUpdateFailed => "FEATURE_UPDATE_FAILED",
            ErrorCode::PrincipalDeserializationFailure => "PRINCIPAL_DESERIALIZATION_FAILURE",
            ErrorCode::SnapshotNotFound => "SNAPSHOT_NOT_FOUND",
            ErrorCode::PositionOutOfRange => "POSITION_OUT_OF_RANGE",
            ErrorCode::UnknownTopicId => "UNKNOWN_TOPIC_ID",
            ErrorCode::DuplicateBrokerRegistration => "DUPLICATE_BROKER_REGISTRATION",
            ErrorCode::BrokerIdNotRegistered => "BROKER_ID_NOT_REGISTERED",
            ErrorCode::InconsistentTopicId => "INCONSISTENT_TOPIC_ID",
            ErrorCode::InconsistentClusterId => "INCONSISTENT_CLUSTER_ID",
            ErrorCode::TransactionalIdNotFound => "TRANSACTIONAL_ID_NOT_FOUND",
            ErrorCode::FetchSessionTopicIdError => "FETCH_SESSION_TOPIC_ID_ERROR",
            ErrorCode::IneligibleReplica => "INELIGIBLE_REPLICA",
            ErrorCode::NewLeaderElected => "NEW_LEADER_ELECTED",
            ErrorCode::OffsetMovedToTieredStorage => "OFFSET_MOVED_TO_TIERED_STORAGE",
            ErrorCode::FencedMemberEpoch => "FENCED_MEMBER_EPOCH",
            ErrorCode::UnreleasedInstanceId => "UNRELEASED_INSTANCE_ID",
            ErrorCode::UnsupportedAssignor => "UNSUPPORTED_ASSIGNOR",
            ErrorCode::StaleMemberEpoch => "STALE_MEMBER_EPOCH",
            ErrorCode::MismatchedEndpointType => "MISMATCHED_ENDPOINT_TYPE",
            ErrorCode::UnsupportedEndpointType => "UNSUPPORTED_ENDPOINT_TYPE",
            ErrorCode::UnknownControllerId => "UNKNOWN_CONTROLLER_ID",
            ErrorCode::UnknownSubscriptionId => "UNKNOWN_SUBSCRIPTION_ID",
            ErrorCode::TelemetryTooLarge => "TELEMETRY_TOO_LARGE",
            ErrorCode::InvalidRegistration => "INVALID_REGISTRATION",
            ErrorCode::TransactionAbortable => "TRANSACTION_ABORTABLE",
            ErrorCode::InvalidRecordState => "INVALID_RECORD_STATE",
            ErrorCode::ShareSessionNotFound => "SHARE_SESSION_NOT_FOUND",
            ErrorCode::InvalidShareSessionEpoch => "INVALID_SHARE_SESSION_EPOCH",
            ErrorCode::FencedStateEpoch => "FENCED_STATE_EPOCH",
            ErrorCode::InvalidVoterKey => "INVALID_VOTER_KEY",
            ErrorCode::DuplicateVoter => "DUPLICATE_VOTER",
            ErrorCode::VoterNotFound => "VOTER_NOT_FOUND",
            ErrorCode::InvalidRegularExpression => "INVALID_REGULAR_EXPRESSION",
            ErrorCode::RebootstrapRequired => "REBOOTSTRAP_REQUIRED",
            ErrorCode::Other(_) => "UNKNOWN",
        }
    }
}

impl From<ErrorCode> for i16 {
    fn from(e: ErrorCode) -> i16 {
        e.code()
    }
}

impl From<i16> for ErrorCode {
    fn from(c: i16) -> Self {
        ErrorCode::from_code(c)
    }
}

/// The same codes as plain `i16` constants, for writing straight into `error_code` fields.
pub mod codes {
    /// `UNKNOWN_SERVER_ERROR`.
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// `NONE`.
    pub const NONE: i16 = 0;
    /// `OFFSET_OUT_OF_RANGE`.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// `CORRUPT_MESSAGE`.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// `UNKNOWN_TOPIC_OR_PARTITION`.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// `INVALID_FETCH_SIZE`.
    pub const INVALID_FETCH_SIZE: i16 = 4;
    /// `LEADER_NOT_AVAILABLE`.
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    /// `NOT_LEADER_OR_FOLLOWER`.
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// `REQUEST_TIMED_OUT`.
    pub const REQUEST_TIMED_OUT: i16 = 7;
    /// `BROKER_NOT_AVAILABLE`.
    pub const BROKER_NOT_AVAILABLE: i16 = 8;
    /// `REPLICA_NOT_AVAILABLE`.
    pub const REPLICA_NOT_AVAILABLE: i16 = 9;
    /// `MESSAGE_TOO_LARGE`.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// `STALE_CONTROLLER_EPOCH`.
    pub const STALE_CONTROLLER_EPOCH: i16 = 11;
    /// `OFFSET_METADATA_TOO_LARGE`.
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    /// `NETWORK_EXCEPTION`.
    pub const NETWORK_EXCEPTION: i16 = 13;
    /// `COORDINATOR_LOAD_IN_PROGRESS`.
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// `COORDINATOR_NOT_AVAILABLE`.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// `NOT_COORDINATOR`.
    pub const NOT_COORDINATOR: i16 = 16;
    /// `INVALID_TOPIC_EXCEPTION`.
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    /// `RECORD_LIST_TOO_LARGE`.
    pub const RECORD_LIST_TOO_LARGE: i16 = 18;
    /// `NOT_ENOUGH_REPLICAS`.
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND`.
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    /// `INVALID_REQUIRED_ACKS`.
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    /// `ILLEGAL_GENERATION`.
    pub const ILLEGAL_GENERATION: i16 = 22;
    /// `INCONSISTENT_GROUP_PROTOCOL`.
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    /// `INVALID_GROUP_ID`.
    pub const INVALID_GROUP_ID: i16 = 24;
    /// `UNKNOWN_MEMBER_ID`.
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    /// `INVALID_SESSION_TIMEOUT`.
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    /// `REBALANCE_IN_PROGRESS`.
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    /// `INVALID_COMMIT_OFFSET_SIZE`.
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
    /// `TOPIC_AUTHORIZATION_FAILED`.
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    /// `GROUP_AUTHORIZATION_FAILED`.
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    /// `CLUSTER_AUTHORIZATION_FAILED`.
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    /// `INVALID_TIMESTAMP`.
    pub const INVALID_TIMESTAMP: i16 = 32;
    /// `UNSUPPORTED_SASL_MECHANISM`.
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    /// `ILLEGAL_SASL_STATE`.
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    /// `UNSUPPORTED_VERSION`.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// `TOPIC_ALREADY_EXISTS`.
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// `INVALID_PARTITIONS`.
    pub const INVALID_PARTITIONS: i16 = 37;
    /// `INVALID_REPLICATION_FACTOR`.
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// `INVALID_REPLICA_ASSIGNMENT`.
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    /// `INVALID_CONFIG`.
    pub const INVALID_CONFIG: i16 = 40;
    /// `NOT_CONTROLLER`.
    pub const NOT_CONTROLLER: i16 = 41;
    /// `INVALID_REQUEST`.
    pub const INVALID_REQUEST: i16 = 42;
    /// `UNSUPPORTED_FOR_MESSAGE_FORMAT`.
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    /// `POLICY_VIOLATION`.
    pub const POLICY_VIOLATION: i16 = 44;
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    /// `DUPLICATE_SEQUENCE_NUMBER`.
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    /// `INVALID_PRODUCER_EPOCH`.
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    /// `INVALID_TXN_STATE`.
    pub const INVALID_TXN_STATE: i16 = 48;
    /// `INVALID_PRODUCER_ID_MAPPING`.
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    /// `INVALID_TRANSACTION_TIMEOUT`.
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    /// `CONCURRENT_TRANSACTIONS`.
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    /// `TRANSACTION_COORDINATOR_FENCED`.
    pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`.
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    /// `SECURITY_DISABLED`.
    pub const SECURITY_DISABLED: i16 = 54;
    /// `OPERATION_NOT_ATTEMPTED`.
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    /// `KAFKA_STORAGE_ERROR`.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// `LOG_DIR_NOT_FOUND`.
    pub const LOG_DIR_NOT_FOUND: i16 = 57;
    /// `SASL_AUTHENTICATION_FAILED`.
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    /// `UNKNOWN_PRODUCER_ID`.
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
    /// `REASSIGNMENT_IN_PROGRESS`.
    pub const REASSIGNMENT_IN_PROGRESS: i16 = 60;
    /// `DELEGATION_TOKEN_AUTH_DISABLED`.
    pub const DELEGATION_TOKEN_AUTH_DISABLED: i16 = 61;
    /// `DELEGATION_TOKEN_NOT_FOUND`.
    pub const DELEGATION_TOKEN_NOT_FOUND: i16 = 62;
    /// `DELEGATION_TOKEN_OWNER_MISMATCH`.
    pub const DELEGATION_TOKEN_OWNER_MISMATCH: i16 = 63;
    /// `DELEGATION_TOKEN_REQUEST_NOT_ALLOWED`.
    pub const DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: i16 = 64;
    /// `DELEGATION_TOKEN_AUTHORIZATION_FAILED`.
    pub const DELEGATION_TOKEN_AUTHORIZATION_FAILED: i16 = 65;
    /// `DELEGATION_TOKEN_EXPIRED`.
    pub const DELEGATION_TOKEN_EXPIRED: i16 = 66;
    /// `INVALID_PRINCIPAL_TYPE`.
    pub const INVALID_PRINCIPAL_TYPE: i16 = 67;
    /// `NON_EMPTY_GROUP`.
    pub const NON_EMPTY_GROUP: i16 = 68;
    /// `GROUP_ID_NOT_FOUND`.
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    /// `FETCH_SESSION_ID_NOT_FOUND`.
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    /// `INVALID_FETCH_SESSION_EPOCH`.
    pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    /// `LISTENER_NOT_FOUND`.
    pub const LISTENER_NOT_FOUND: i16 = 72;
    /// `TOPIC_DELETION_DISABLED`.
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    /// `FENCED_LEADER_EPOCH`.
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// `UNKNOWN_LEADER_EPOCH`.
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    /// `UNSUPPORTED_COMPRESSION_TYPE`.
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    /// `STALE_BROKER_EPOCH`.
    pub const STALE_BROKER_EPOCH: i16 = 77;
    /// `OFFSET_NOT_AVAILABLE`.
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
    /// `MEMBER_ID_REQUIRED`.
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    /// `PREFERRED_LEADER_NOT_AVAILABLE`.
    pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
    /// `GROUP_MAX_SIZE_REACHED`.
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    /// `FENCED_INSTANCE_ID`.
    pub const FENCED_INSTANCE_ID: i16 = 82;
    /// `ELIGIBLE_LEADERS_NOT_AVAILABLE`.
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
    /// `ELECTION_NOT_NEEDED`.
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    /// `NO_REASSIGNMENT_IN_PROGRESS`.
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    /// `GROUP_SUBSCRIBED_TO_TOPIC`.
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    /// `INVALID_RECORD`.
    pub const INVALID_RECORD: i16 = 87;
    /// `UNSTABLE_OFFSET_COMMIT`.
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    /// `THROTTLING_QUOTA_EXCEEDED`.
    pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
    /// `PRODUCER_FENCED`.
    pub const PRODUCER_FENCED: i16 = 90;
    /// `RESOURCE_NOT_FOUND`.
    pub const RESOURCE_NOT_FOUND: i16 = 91;
    /// `DUPLICATE_RESOURCE`.
    pub const DUPLICATE_RESOURCE: i16 = 92;
    /// `UNACCEPTABLE_CREDENTIAL`.
    pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
    /// `INCONSISTENT_VOTER_SET`.
    pub const INCONSISTENT_VOTER_SET: i16 = 94;
    /// `INVALID_UPDATE_VERSION`.
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    /// `FEATURE_UPDATE_FAILED`.
    pub const FEATURE_UPDATE_FAILED: i16 = 96;
    /// `PRINCIPAL_DESERIALIZATION_FAILURE`.
    pub const PRINCIPAL_DESERIALIZATION_FAILURE: i16 = 97;
    /// `SNAPSHOT_NOT_FOUND`.
    pub const SNAPSHOT_NOT_FOUND: i16 = 98;
    /// `POSITION_OUT_OF_RANGE`.
    pub const POSITION_OUT_OF_RANGE: i16 = 99;
    /// `UNKNOWN_TOPIC_ID`.
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    /// `DUPLICATE_BROKER_REGISTRATION`.
    pub const DUPLICATE_BROKER_REGISTRATION: i16 = 101;
    /// `BROKER_ID_NOT_REGISTERED`.
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    /// `INCONSISTENT_TOPIC_ID`.
    pub const INCONSISTENT_TOPIC_ID: i16 = 103;
    /// `INCONSISTENT_CLUSTER_ID`.
    pub const INCONSISTENT_CLUSTER_ID: i16 = 104;
    /// `TRANSACTIONAL_ID_NOT_FOUND`.
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    /// `FETCH_SESSION_TOPIC_ID_ERROR`.
    pub const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;
    /// `INELIGIBLE_REPLICA`.
    pub const INELIGIBLE_REPLICA: i16 = 107;
    /// `NEW_LEADER_ELECTED`.
    pub const NEW_LEADER_ELECTED: i16 = 108;
    /// `OFFSET_MOVED_TO_TIERED_STORAGE`.
    pub const OFFSET_MOVED_TO_TIERED_STORAGE: i16 = 109;
    /// `FENCED_MEMBER_EPOCH`.
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    /// `UNRELEASED_INSTANCE_ID`.
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    /// `UNSUPPORTED_ASSIGNOR`.
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    /// `STALE_MEMBER_EPOCH`.
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    /// `MISMATCHED_ENDPOINT_TYPE`.
    pub const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
    /// `UNSUPPORTED_ENDPOINT_TYPE`.
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
    /// `UNKNOWN_CONTROLLER_ID`.
    pub const UNKNOWN_CONTROLLER_ID: i16 = 116;
    /// `UNKNOWN_SUBSCRIPTION_ID`.
    pub const UNKNOWN_SUBSCRIPTION_ID: i16 = 117;
    /// `TELEMETRY_TOO_LARGE`.
    pub const TELEMETRY_TOO_LARGE: i16 = 118;
    /// `INVALID_REGISTRATION`.
    pub const INVALID_REGISTRATION: i16 = 119;
    /// `TRANSACTION_ABORTABLE`.
    pub const TRANSACTION_ABORTABLE: i16 = 120;
    /// `INVALID_RECORD_STATE`.
    pub const INVALID_RECORD_STATE: i16 = 121;
    /// `SHARE_SESSION_NOT_FOUND`.
    pub const SHARE_SESSION_NOT_FOUND: i16 = 122;
    /// `INVALID_SHARE_SESSION_EPOCH`.
    pub const INVALID_SHARE_SESSION_EPOCH: i16 = 123;
    /// `FENCED_STATE_EPOCH`.
    pub const FENCED_STATE_EPOCH: i16 = 124;
    /// `INVALID_VOTER_KEY`.
    pub const INVALID_VOTER_KEY: i16 = 125;
    /// `DUPLICATE_VOTER`.
    pub const DUPLICATE_VOTER: i16 = 126;
    /// `VOTER_NOT_FOUND`.
    pub const VOTER_NOT_FOUND: i16 = 127;
    /// `INVALID_REGULAR_EXPRESSION`.
    pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
    /// `REBOOTSTRAP_REQUIRED`.
    pub const REBOOTSTRAP_REQUIRED: i16 = 129;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_round_trips_through_its_number() {
        for c in -1i16..=129 {
            let e = ErrorCode::from_code(c);
            assert_eq!(e.code(), c);
            assert!(!matches!(e, ErrorCode::Other(_)), "code {c} has no name");
        }
        assert_eq!(ErrorCode::from_code(500), ErrorCode::Other(500));
        assert_eq!(codes::UNSUPPORTED_VERSION, 35);
        assert_eq!(
            ErrorCode::UnknownTopicOrPartition.name(),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
    }
}
