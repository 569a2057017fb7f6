//! Request and response headers, and which header version each API uses.
//!
//! Header versions follow the body: a flexible (tagged-field) request uses
//! request header v2 and its response uses response header v1; otherwise
//! v1 / v0. Two exceptions: ControlledShutdown v0 uses request header v0,
//! and ApiVersions responses always use header v0 so that a client that
//! sent a version we do not know can still parse our error reply.

use bytes::{Bytes, BytesMut};

use crate::{ApiKey, DecodeError, EncodeError, codec};

/// Request header version for `api_key` at `api_version`: 0, 1 or 2.
pub fn request_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ControlledShutdown && api_version == 0 {
        return 0;
    }
    match api_key.request_flexible_from() {
        Some(flex) if api_version >= flex => 2,
        _ => 1,
    }
}

/// Response header version for `api_key` at `api_version`: 0 or 1.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        // Always v0: the client parses it before it knows our versions.
        return 0;
    }
    match api_key.response_flexible_from() {
        Some(flex) if api_version >= flex => 1,
        _ => 0,
    }
}

/// The request header. Unknown tagged fields (v2) are skipped on decode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// API key of the request (kept raw so unknown keys can be reported).
    pub request_api_key: i16,
    /// API version of the request.
    pub request_api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
    /// Client id (header v1+). Always a classic nullable string, even in v2.
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Reads the fixed 8-byte prefix: api key, api version, correlation id.
    pub(crate) fn decode_prefix(buf: &mut Bytes) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            request_api_key: codec::read_i16(buf)?,
            request_api_version: codec::read_i16(buf)?,
            correlation_id: codec::read_i32(buf)?,
            client_id: None,
        })
    }

    /// Reads what follows the prefix for `header_version`.
    pub(crate) fn decode_rest(
        &mut self,
        buf: &mut Bytes,
        header_version: i16,
    ) -> Result<(), DecodeError> {
        if header_version >= 1 {
            self.client_id = codec::read_nullable_string(buf, false, true)?;
        }
        if header_version >= 2 {
            skip_tagged_fields(buf)?;
        }
        Ok(())
    }

    /// Reads a whole header at `header_version`.
    pub fn decode(buf: &mut Bytes, header_version: i16) -> Result<Self, DecodeError> {
        let mut h = Self::decode_prefix(buf)?;
        h.decode_rest(buf, header_version)?;
        Ok(h)
    }

    /// Writes the header at `header_version`.
    pub fn encode(&self, buf: &mut BytesMut, header_version: i16) -> Result<(), EncodeError> {
        codec::write_i16(buf, self.request_api_key);
        codec::write_i16(buf, self.request_api_version);
        codec::write_i32(buf, self.correlation_id);
        if header_version >= 1 {
            match &self.client_id {
                Some(id) => codec::write_string(buf, id, false)?,
                None => codec::write_null_string(buf, false),
            }
        }
        if header_version >= 2 {
            codec::write_uvarint(buf, 0);
        }
        Ok(())
    }
}

/// The response header: the correlation id, plus empty tagged fields in v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseHeader {
    /// The request's correlation id.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Reads a response header at `header_version`.
    pub fn decode(buf: &mut Bytes, header_version: i16) -> Result<Self, DecodeError> {
        let correlation_id = codec::read_i32(buf)?;
        if header_version >= 1 {
            skip_tagged_fields(buf)?;
        }
        Ok(ResponseHeader { correlation_id })
    }

    /// Writes the header at `header_version`.
    pub fn encode(&self, buf: &mut BytesMut, header_version: i16) {
        codec::write_i32(buf, self.correlation_id);
        if header_version >= 1 {
            codec::write_uvarint(buf, 0);
        }
    }
}

fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), DecodeError> {
    let count = codec::read_uvarint(buf)?;
    for _ in 0..count {
        let _tag = codec::read_uvarint(buf)?;
        let size = codec::read_uvarint(buf)?;
        codec::take(buf, size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_response_header_is_always_v0() {
        for v in 0..=10 {
            assert_eq!(response_header_version(ApiKey::ApiVersions, v), 0);
        }
        assert_eq!(request_header_version(ApiKey::ApiVersions, 3), 2);
        assert_eq!(request_header_version(ApiKey::ApiVersions, 2), 1);
    }

    #[test]
    fn flexible_versions_use_newer_headers() {
        assert_eq!(request_header_version(ApiKey::Metadata, 8), 1);
        assert_eq!(request_header_version(ApiKey::Metadata, 9), 2);
        assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(request_header_version(ApiKey::Produce, 9), 2);
        assert_eq!(response_header_version(ApiKey::Fetch, 12), 1);
        assert_eq!(request_header_version(ApiKey::SaslHandshake, 1), 1);
        assert_eq!(request_header_version(ApiKey::ControlledShutdown, 0), 0);
    }

    #[test]
    fn request_header_round_trips_at_each_version() {
        let h = RequestHeader {
            request_api_key: 3,
            request_api_version: 12,
            correlation_id: 77,
            client_id: Some("rdkafka".into()),
        };
        for hv in 1..=2 {
            let mut b = BytesMut::new();
            h.encode(&mut b, hv).ok();
            let mut r = b.freeze();
            assert_eq!(RequestHeader::decode(&mut r, hv).ok(), Some(h.clone()));
            assert!(r.is_empty());
        }
    }
}
