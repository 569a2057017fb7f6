//! Why a registry operation failed, with Confluent's error code and HTTP
//! status for each cause, so clients that switch on `error_code` (every
//! serializer does for 40401/40403) behave as they do against Confluent.

/// A registry error. The `Display` text is the `message` of the REST
/// answer and follows Confluent's wording where clients or people match it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402.
    #[error("Version {version} not found.")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for.
        version: i32,
    },
    /// 40403: no schema with this id.
    #[error("Schema {0} not found")]
    SchemaIdNotFound(i32),
    /// 40403: the subject has no version with this schema.
    #[error("Schema not found")]
    SchemaNotFound,
    /// 40404.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406.
    #[error(
        "Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// 40407.
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelNotConfigured(String),
    /// 40409.
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotConfigured(String),
    /// 409: the schema breaks the subject's compatibility level.
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        messages.join(", ")
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// One message per incompatibility.
        messages: Vec<String>,
    },
    /// 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 42203.
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel,
    /// 42204.
    #[error("Invalid mode. Valid values are READWRITE, READONLY, IMPORT")]
    InvalidMode,
    /// 42205: the mode forbids the operation.
    #[error("{0}")]
    OperationNotPermitted(String),
    /// 42206: other schemas reference the one being deleted.
    #[error(
        "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}."
    )]
    ReferenceExists {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// 42207: an import names an id that holds a different schema.
    #[error("Overwrite new schema with id {0} is not permitted.")]
    IdInUse(i32),
    /// 42208.
    #[error("Invalid subject: {0}")]
    InvalidSubject(String),
    /// 42210 (Sluice): a JSON value given to REST produce does not fit the
    /// schema it is to be encoded with.
    #[error("{0}")]
    InvalidData(String),
    /// 42299 (Sluice): a named bound of the registry was reached.
    #[error("{0}")]
    LimitReached(String),
    /// 50001: the `_schemas` log failed.
    #[error("Error in the backend data store: {0}")]
    Store(String),
    /// 50002.
    #[error("Operation timed out: {0}")]
    Timeout(String),
    /// 50004: this node cannot serve the request (it does not host
    /// `_schemas`, or cannot reach its leader).
    #[error("{0}")]
    Unavailable(String),
    /// 50004 unless forwarded: another node leads `_schemas-0` and takes
    /// the writes; the REST layer forwards the request there.
    #[error("node {leader} leads _schemas and takes the registry's writes")]
    NotLeader {
        /// The leader's node id.
        leader: i32,
    },
}

impl RegistryError {
    /// Confluent's `error_code`.
    pub fn error_code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaIdNotFound(_) | RegistryError::SchemaNotFound => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted { .. } => 40406,
            RegistryError::VersionNotSoftDeleted { .. } => 40407,
            RegistryError::SubjectLevelNotConfigured(_) => 40408,
            RegistryError::SubjectModeNotConfigured(_) => 40409,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel => 42203,
            RegistryError::InvalidMode => 42204,
            RegistryError::OperationNotPermitted(_) => 42205,
            RegistryError::ReferenceExists { .. } => 42206,
            RegistryError::IdInUse(_) => 42207,
            RegistryError::InvalidSubject(_) => 42208,
            RegistryError::InvalidData(_) => 42210,
            RegistryError::LimitReached(_) => 42299,
            RegistryError::Store(_) => 50001,
            RegistryError::Timeout(_) => 50002,
            RegistryError::Unavailable(_) | RegistryError::NotLeader { .. } => 50004,
        }
    }

    /// The HTTP status: the first three digits of the code, as Confluent
    /// does (40401 is a 404, 42201 a 422, 409 a 409).
    pub fn http_status(&self) -> u16 {
        let code = self.error_code();
        if code < 1000 {
            u16::try_from(code).unwrap_or(500)
        } else {
            u16::try_from(code / 100).unwrap_or(500)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_leading_digits_of_the_code() {
        assert_eq!(
            RegistryError::SubjectNotFound("s".into()).http_status(),
            404
        );
        assert_eq!(RegistryError::InvalidSchema("x".into()).http_status(), 422);
        let incompatible = RegistryError::Incompatible {
            subject: "s".into(),
            messages: vec!["a".into(), "b".into()],
        };
        assert_eq!(incompatible.http_status(), 409);
        assert_eq!(
            incompatible.to_string(),
            "Schema being registered is incompatible with an earlier schema for subject \"s\", details: [a, b]"
        );
        assert_eq!(RegistryError::Store("disk".into()).http_status(), 500);
        assert_eq!(
            RegistryError::ReferenceExists {
                subject: "s".into(),
                version: 2
            }
            .to_string(),
            "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=s,version=2}."
        );
    }
}
