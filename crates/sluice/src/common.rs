//! What every CLI command shares: the bootstrap flag, the error type that
//! prints one line, the async runtime, and small parsers and formatters.

use std::time::Duration;

use clap::Args;
use sluice_client::{Client, ClientConfig, ClientError, Compression};

/// Connection flags shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long = "bootstrap-server",
        short = 'b',
        env = "SLUICE_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    pub bootstrap: String,
    /// Give up on a request after this long (e.g. 10s, 500ms).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
}

impl ConnArgs {
    /// Connects, with a short connect timeout so an unreachable broker
    /// fails in seconds rather than after every retry.
    pub async fn connect(&self) -> Result<Client, CliError> {
        let mut config = ClientConfig::new(&self.bootstrap);
        config.conn.client_id = "sluice-cli".to_owned();
        config.conn.connect_timeout = Duration::from_secs(5);
        config.conn.request_timeout = self.request_timeout;
        config.retries = 2;
        Ok(Client::connect(config).await?)
    }
}

/// A command failure: printed as one `error: ...` line, exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From the client library.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Local I/O (stdin, files, stdout).
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bad argument combination or value clap could not catch.
    #[error("{0}")]
    Usage(String),
    /// A task of ours panicked or was cancelled.
    #[error("{task} task failed: {source}")]
    Task {
        /// Which task.
        task: &'static str,
        /// What tokio reported.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Anything else worth one line (HTTP status, missing process...).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }
}

/// Runs an async command on a fresh runtime and maps the result to an exit code.
pub fn run<F>(fut: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parses `10s`, `500ms`, `2m` (humantime) or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("'{s}' is not a duration like 10s or 500ms: {e}"))
}

/// Parses a compression codec name.
pub fn parse_compression(s: &str) -> Result<Compression, String> {
    match s {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!(
            "'{other}' is not one of none, gzip, snappy, lz4, zstd"
        )),
    }
}

/// Parses `key=value`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not key=value")),
    }
}

/// Parses an RFC 3339 date-time (`2026-11-23T10:00:00Z`, seconds optional,
/// or a bare date) or a number of ms since the epoch, into ms since the epoch.
pub fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let candidates = [
        s.to_owned(),
        format!("{s}:00"),
        format!("{s}T00:00:00"),
        s.replace(' ', "T"),
    ];
    for c in candidates {
        let c = c.trim_end_matches('Z');
        if let Ok(t) = humantime::parse_rfc3339_weak(c) {
            return t
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .map_err(|_| format!("'{s}' is before 1970"));
        }
    }
    Err(format!(
        "'{s}' is not a date-time like 2026-11-23T10:00:00Z or ms since the epoch"
    ))
}

/// Formats ms since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    if ms < 0 {
        return "-".to_owned();
    }
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Human-readable byte count.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints rows as left-aligned columns under a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// A minimal HTTP/1.1 GET for the broker's own HTTP API (plain text, local).
/// Returns the body of a 2xx response.
pub async fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<String, CliError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(CliError::io(format!(
                "cannot connect to HTTP API at {addr}"
            )))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(CliError::io("HTTP request"))?;
        let mut raw = Vec::new();
        // Responses we read are small JSON documents; 16 MiB is far beyond any.
        (&mut stream)
            .take(16 * 1024 * 1024)
            .read_to_end(&mut raw)
            .await
            .map_err(CliError::io("HTTP response"))?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| CliError::Other(format!("malformed HTTP response from {addr}")))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if !(200..300).contains(&status) {
            return Err(CliError::Other(format!("HTTP {status} from {addr}{path}")));
        }
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("transfer-encoding:")
                && l.to_ascii_lowercase().contains("chunked")
        });
        Ok(if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        })
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| CliError::Other(format!("HTTP API at {addr} did not answer in {timeout:?}")))?
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_in_several_shapes() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_datetime_ms("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_datetime_ms("1234"), Ok(1234));
        assert!(parse_datetime_ms("yesterday-ish").is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
