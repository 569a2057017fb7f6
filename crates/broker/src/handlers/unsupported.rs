//! APIs this broker decodes but does not serve yet. They are not
//! advertised in ApiVersions; a client that sends one anyway gets a
//! well-formed answer where the response carries a top-level error, and a
//! closed connection with a log line otherwise.

use sluice_protocol::RequestHeader;
use sluice_protocol::messages::RequestBody;

use super::{Reply, RequestContext};
use crate::server::ConnectionError;

/// Answers (or refuses) a request for an API without a handler.
pub fn reply(
    ctx: &RequestContext,
    header: &RequestHeader,
    body: RequestBody,
) -> Result<Reply, ConnectionError> {
    let _ = body;
    tracing::warn!(
        peer = %ctx.peer,
        api_key = header.request_api_key,
        version = header.request_api_version,
        "request for an API this broker does not serve yet; closing the connection"
    );
    Err(ConnectionError::Request(format!(
        "API {} is not supported",
        header.request_api_key
    )))
}
