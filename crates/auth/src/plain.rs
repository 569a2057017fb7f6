//! SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.
//!
//! The broker checks the password against the user's stored SCRAM
//! credential (one user store for every mechanism): see
//! [`crate::scram::Credential::verify_password`].

use crate::MAX_USER_NAME_BYTES;

/// Longest PLAIN field, in bytes (RFC 4616 bounds each field at 255
/// octets; the password gets the same bound so the broker never hashes a
/// large input).
pub const MAX_FIELD_BYTES: usize = 255;

/// A PLAIN message.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// The user name (authentication identity).
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A PLAIN message that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    /// Not three NUL-separated fields.
    #[error("a PLAIN message has three fields separated by NUL")]
    Fields,
    /// A field is not UTF-8.
    #[error("a PLAIN field is not UTF-8")]
    NotUtf8,
    /// The user name or password is empty.
    #[error("empty user name or password")]
    Empty,
    /// A field is longer than [`MAX_FIELD_BYTES`].
    #[error("a PLAIN field is longer than {MAX_FIELD_BYTES} bytes")]
    TooLong,
    /// The authorization id differs from the user (Kafka refuses it).
    #[error("the authorization id must be empty or the user name")]
    Authzid,
}

/// Parses a PLAIN message.
pub fn parse(token: &[u8]) -> Result<PlainMessage, PlainError> {
    let mut fields = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::Fields);
    };
    for field in [authzid, user, password] {
        if field.len() > MAX_FIELD_BYTES.max(MAX_USER_NAME_BYTES) {
            return Err(PlainError::TooLong);
        }
    }
    let text = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| PlainError::NotUtf8)
    };
    let (authzid, user, password) = (text(authzid)?, text(user)?, text(password)?);
    if user.is_empty() || password.is_empty() {
        return Err(PlainError::Empty);
    }
    if !authzid.is_empty() && authzid != user {
        return Err(PlainError::Authzid);
    }
    Ok(PlainMessage { user, password })
}

/// The PLAIN message logging in as `user` (client side).
pub fn encode(user: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_an_authzid() {
        let m = parse(b"\0alice\0secret").expect("parse");
        assert_eq!((m.user.as_str(), m.password.as_str()), ("alice", "secret"));
        assert_eq!(parse(b"alice\0alice\0secret").expect("parse").user, "alice");
        assert_eq!(parse(&encode("bob", "pw")).expect("parse").user, "bob");
    }

    #[test]
    fn malformed_messages_are_refused() {
        let long = vec![b'a'; MAX_FIELD_BYTES + 1];
        let mut too_long = b"\0u\0".to_vec();
        too_long.extend_from_slice(&long);
        let cases: &[(&[u8], PlainError)] = &[
            (b"", PlainError::Fields),
            (b"alice", PlainError::Fields),
            (b"\0alice", PlainError::Fields),
            (b"\0alice\0pw\0", PlainError::Fields),
            (b"\0\0pw", PlainError::Empty),
            (b"\0alice\0", PlainError::Empty),
            (b"\0al\xffice\0pw", PlainError::NotUtf8),
            (b"bob\0alice\0pw", PlainError::Authzid),
            (&too_long, PlainError::TooLong),
        ];
        for (token, expected) in cases {
            assert_eq!(parse(token).as_ref().err(), Some(expected), "{token:?}");
        }
    }
}
