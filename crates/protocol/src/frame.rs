//! Whole-frame helpers: split a request frame into header and body, and
//! build a length-prefixed response frame.
//!
//! The caller (the broker) owns the socket, reads the 4-byte length prefix,
//! enforces its own frame-size limit, and passes the bytes after the prefix
//! here. Nothing in this module performs I/O.

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{RequestHeader, ResponseHeader, request_header_version};
use crate::{ApiKey, DecodeError, Encode, EncodeError, Request, RequestBody};

/// The frame length announced by a 4-byte big-endian prefix. The broker
/// checks it against its limit; a negative value is a protocol error.
pub fn frame_length(prefix: [u8; 4]) -> i32 {
    i32::from_be_bytes(prefix)
}

/// Why a request frame could not be decoded. Every variant except
/// [`RequestDecodeError::Header`] carries the header (or its fixed prefix)
/// so the broker can log the correlation id or answer with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestDecodeError {
    /// Not even the header could be read: close the connection.
    #[error("unreadable request header: {0}")]
    Header(#[source] DecodeError),
    /// The API key is not one the codec knows.
    #[error("unknown api key {} (correlation id {})", .header.request_api_key, .header.correlation_id)]
    UnknownApiKey {
        /// Fixed header prefix; `client_id` is `None` because the header
        /// version of an unknown API cannot be known.
        header: RequestHeader,
    },
    /// The API is known but not at this version.
    #[error("unsupported version {} of api key {} (correlation id {})", .header.request_api_version, .header.request_api_key, .header.correlation_id)]
    UnsupportedVersion {
        /// The header; `client_id` is filled in when it could be read.
        header: RequestHeader,
        /// The API.
        api_key: ApiKey,
    },
    /// The header was fine but the body was malformed.
    #[error("malformed {:?} v{} body (correlation id {}): {source}", .api_key, .header.request_api_version, .header.correlation_id)]
    Body {
        /// The full header.
        header: RequestHeader,
        /// The API.
        api_key: ApiKey,
        /// What went wrong.
        #[source]
        source: DecodeError,
    },
}

impl RequestDecodeError {
    /// The header, when one could be read.
    pub fn header(&self) -> Option<&RequestHeader> {
        match self {
            RequestDecodeError::Header(_) => None,
            RequestDecodeError::UnknownApiKey { header }
            | RequestDecodeError::UnsupportedVersion { header, .. }
            | RequestDecodeError::Body { header, .. } => Some(header),
        }
    }
}

/// Decodes a request frame (the bytes after the 4-byte length prefix).
///
/// Trailing bytes after the body are ignored, as Kafka does, so newer
/// clients adding fields at the end stay compatible.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, RequestBody), RequestDecodeError> {
    let mut buf = frame;
    let mut header = RequestHeader::decode_prefix(&mut buf).map_err(RequestDecodeError::Header)?;
    let Ok(api_key) = ApiKey::try_from(header.request_api_key) else {
        return Err(RequestDecodeError::UnknownApiKey { header });
    };
    let version = header.request_api_version;
    let (min, max) = api_key.supported_versions();
    if !(min..=max).contains(&version) {
        // Client id sits at the same offset in header v1 and v2, so it can
        // be read even for an unknown version; failure here is not fatal.
        let mut rest = buf.clone();
        if let Ok(Some(id)) = crate::codec::read_nullable_string(&mut rest, false, true) {
            header.client_id = Some(id);
        }
        return Err(RequestDecodeError::UnsupportedVersion { header, api_key });
    }
    header
        .decode_rest(&mut buf, request_header_version(api_key, version))
        .map_err(RequestDecodeError::Header)?;
    match RequestBody::decode(api_key, &mut buf, version) {
        Ok(body) => Ok((header, body)),
        Err(source) => Err(RequestDecodeError::Body {
            header,
            api_key,
            source,
        }),
    }
}

/// Encodes a full response frame, 4-byte length prefix included.
pub fn encode_response<R: Encode>(
    correlation_id: i32,
    header_version: i16,
    body: &R,
    version: i16,
) -> Result<BytesMut, EncodeError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader { correlation_id }.encode(&mut buf, header_version);
    body.encode(&mut buf, version)?;
    patch_length_with(buf, 0)
}

/// A response frame whose deferred record sets were left out: the bytes of
/// the frame are `head` with each splice's source inserted at its
/// position. The length prefix counts them all.
#[derive(Debug)]
pub struct SplicedFrame {
    /// The frame without the spliced record sets.
    pub head: BytesMut,
    /// Where the record sets go, in frame order.
    pub splices: Vec<crate::Splice>,
}

impl SplicedFrame {
    /// Bytes of the whole frame, length prefix included.
    pub fn len(&self) -> usize {
        self.head.len() + self.splices.iter().map(|s| s.source.len()).sum::<usize>()
    }

    /// True when the frame has no bytes (never, for an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in one buffer, each splice's source copied in (for
    /// a frame that is not written to a socket: forwarded, or in tests).
    pub fn to_contiguous(&self) -> std::io::Result<BytesMut> {
        let mut out = BytesMut::with_capacity(self.len());
        let mut written = 0;
        for splice in &self.splices {
            out.extend_from_slice(&self.head[written..splice.at]);
            written = splice.at;
            splice.source.copy_to(&mut out)?;
        }
        out.extend_from_slice(&self.head[written..]);
        Ok(out)
    }
}

impl From<BytesMut> for SplicedFrame {
    fn from(head: BytesMut) -> SplicedFrame {
        SplicedFrame {
            head,
            splices: Vec::new(),
        }
    }
}

/// [`encode_response`], leaving every deferred record set out of the
/// bytes as a splice for the writer to send from its source.
pub fn encode_response_spliced<R: Encode>(
    correlation_id: i32,
    header_version: i16,
    body: &R,
    version: i16,
) -> Result<SplicedFrame, EncodeError> {
    let mut head = BytesMut::with_capacity(64);
    head.put_i32(0);
    ResponseHeader { correlation_id }.encode(&mut head, header_version);
    let (encoded, splices) = crate::records::collect_splices(|| body.encode(&mut head, version));
    encoded?;
    let spliced: usize = splices.iter().map(|s| s.source.len()).sum();
    let head = patch_length_with(head, spliced)?;
    Ok(SplicedFrame { head, splices })
}

/// Encodes a full request frame, 4-byte length prefix included, using the
/// header's api version and the matching header version. For clients/tests.
pub fn encode_request<R: Request>(
    header: &RequestHeader,
    body: &R,
) -> Result<BytesMut, EncodeError> {
    let version = header.request_api_version;
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    header.encode(&mut buf, request_header_version(R::API_KEY, version))?;
    body.encode(&mut buf, version)?;
    patch_length_with(buf, 0)
}

/// Writes the frame's length prefix: the bytes of `buf` after the prefix,
/// plus `spliced` bytes sent apart from it.
fn patch_length_with(mut buf: BytesMut, spliced: usize) -> Result<BytesMut, EncodeError> {
    let len = buf.len() - 4 + spliced;
    let len_i32 = i32::try_from(len).map_err(|_| EncodeError::TooLong {
        what: "frame",
        length: len,
    })?;
    buf[..4].copy_from_slice(&len_i32.to_be_bytes());
    Ok(buf)
}
