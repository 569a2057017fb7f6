//! Fetch responses sent from the segment files without copying through
//! user space, as Kafka does (`FileRecords.writeTo`, `sendfile`).
//!
//! The fetch handler answers each partition of a plain (not encrypted)
//! log with [`SegmentRecords`]: the file ranges its read planned, not the
//! bytes. The frame is encoded around them
//! ([`sluice_protocol::encode_response_spliced`]), and the connection
//! writes the head's pieces and the ranges in turn ([`write_frame`]). A
//! plain TCP connection hands each range to the kernel (`sendfile`: page
//! cache to socket); TLS and in-memory streams read it and write it
//! ([`FrameWriter::send_file`]'s default).
//!
//! A range is whole batches below the high watermark when it was planned;
//! the handle keeps a segment deleted by retention or replaced by the
//! cleaner readable. A file cut shorter meanwhile (a follower truncating
//! after a leader change) ends the write early: that is an error, and the
//! connection closes rather than send a frame shorter than its length.

use std::any::Any;
use std::fs::File;
use std::future::Future;
use std::os::unix::fs::FileExt;

use bytes::BytesMut;
use sluice_log::FileSlice;
use sluice_protocol::{RecordSource, SplicedFrame};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Largest piece of a range read into memory at once on the copy path.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

/// A partition's fetched batches as ranges of its segment files.
#[derive(Debug)]
pub struct SegmentRecords {
    slices: Vec<FileSlice>,
    len: usize,
}

impl SegmentRecords {
    /// The batches in `slices`, in order.
    pub fn new(slices: Vec<FileSlice>) -> SegmentRecords {
        let len = slices.iter().map(|s| s.len() as usize).sum();
        SegmentRecords { slices, len }
    }

    /// The ranges, in order.
    pub fn slices(&self) -> &[FileSlice] {
        &self.slices
    }
}

impl RecordSource for SegmentRecords {
    fn len(&self) -> usize {
        self.len
    }

    fn copy_to(&self, out: &mut BytesMut) -> std::io::Result<()> {
        out.reserve(self.len);
        self.slices.iter().try_for_each(|s| s.read_into(out))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A connection's write side, which may send file ranges itself.
pub trait FrameWriter: AsyncWrite + Unpin + Send {
    /// Writes `len` bytes of `file` from `position`. By default they are
    /// read into memory a chunk at a time and written.
    fn send_file<'a>(
        &'a mut self,
        file: &'a File,
        position: u64,
        len: u64,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a {
        async move {
            let mut buf = vec![0u8; COPY_CHUNK_BYTES.min(len as usize)];
            let mut done = 0u64;
            while done < len {
                let n = (len - done).min(buf.len() as u64) as usize;
                file.read_exact_at(&mut buf[..n], position + done)?;
                self.write_all(&buf[..n]).await?;
                done += n as u64;
            }
            Ok(())
        }
    }
}

/// Plain TCP: the kernel moves the bytes from the page cache to the socket.
impl FrameWriter for tokio::net::tcp::OwnedWriteHalf {
    async fn send_file(&mut self, file: &File, position: u64, len: u64) -> std::io::Result<()> {
        let stream: &tokio::net::TcpStream = self.as_ref();
        let end = position + len;
        let mut offset = position;
        while offset < end {
            stream.writable().await?;
            let count = usize::try_from(end - offset).unwrap_or(usize::MAX);
            let sent = stream.try_io(tokio::io::Interest::WRITABLE, || {
                rustix::fs::sendfile(stream, file, Some(&mut offset), count)
                    .map_err(std::io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "segment file ends at {offset}, inside a fetched range that ends at {end} (truncated since the read)"
                        ),
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<T: AsyncWrite + Send> FrameWriter for tokio::io::WriteHalf<T> {}

impl FrameWriter for tokio::io::DuplexStream {}

impl FrameWriter for tokio::io::Sink {}

/// Writes `frame`: the head's pieces, each splice's ranges between them.
pub async fn write_frame<W: FrameWriter>(
    writer: &mut W,
    frame: &SplicedFrame,
) -> std::io::Result<()> {
    let mut written = 0;
    for splice in &frame.splices {
        writer.write_all(&frame.head[written..splice.at]).await?;
        written = splice.at;
        let Some(records) = splice.source.as_any().downcast_ref::<SegmentRecords>() else {
            // Another source: its own copy.
            let mut bytes = BytesMut::with_capacity(splice.source.len());
            splice.source.copy_to(&mut bytes)?;
            writer.write_all(&bytes).await?;
            continue;
        };
        for s in records.slices() {
            writer
                .send_file(s.file(), s.position(), u64::from(s.len()))
                .await?;
        }
    }
    writer.write_all(&frame.head[written..]).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use sluice_log::{Log, LogConfig};
    use sluice_protocol::messages::fetch::{FetchResponse, FetchableTopicResponse, PartitionData};
    use sluice_protocol::{Records, encode_response, encode_response_spliced};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A log of `batches` batches of three records.
    fn log_with(dir: &std::path::Path, batches: usize) -> Log {
        let log = Log::open(dir, LogConfig::default()).expect("open");
        for _ in 0..batches {
            let batch = BytesMut::from(&crate::testing::batch(3)[..]);
            log.append(batch, 0, sluice_metadata::now_ms())
                .expect("append");
        }
        log
    }

    /// A Fetch v12 response with the deferred `records` in partition 0 and
    /// records in memory in partition 1, so the frame has head bytes on
    /// both sides of the splice.
    fn response(records: Records) -> FetchResponse {
        let partition = |index, records| PartitionData {
            partition_index: index,
            high_watermark: 15,
            records,
            ..Default::default()
        };
        FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".to_owned(),
                partitions: vec![
                    partition(0, records),
                    partition(1, Records::from(crate::testing::batch(2))),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Both ends of a loopback TCP connection: the broker's write half and
    /// the client's stream.
    async fn tcp_pair() -> (tokio::net::tcp::OwnedWriteHalf, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let (_read, write) = server.into_split();
        (write, client)
    }

    async fn send_over_tcp(frame: &SplicedFrame) -> (std::io::Result<()>, Vec<u8>) {
        let (mut write, mut client) = tcp_pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let _ = client.read_to_end(&mut got).await;
            got
        });
        let sent = write_frame(&mut write, frame).await;
        drop(write);
        (sent, reader.await.expect("reader"))
    }

    #[tokio::test]
    async fn a_frame_sent_from_the_segment_file_is_byte_for_byte_the_copied_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_with(dir.path(), 5);
        let read = log.read(0, u32::MAX, i64::MAX).expect("read");
        let source = Arc::new(SegmentRecords::new(read.slices));
        let stored = Records::Deferred(source.clone()).to_bytes().expect("copy");
        assert_eq!(stored.len(), log.size_bytes() as usize, "the whole log");
        let fetch = response(Records::Deferred(source));

        let copied = encode_response(7, 1, &fetch, 12).expect("encode");
        let spliced = encode_response_spliced(7, 1, &fetch, 12).expect("encode");
        assert_eq!(spliced.splices.len(), 1);
        assert_eq!(spliced.len(), copied.len());
        assert!(spliced.head.len() + stored.len() == copied.len());

        // Plain TCP: sendfile.
        let (sent, got) = send_over_tcp(&spliced).await;
        sent.expect("sent");
        assert_eq!(got, copied[..]);

        // The copy path, as TLS and in-memory streams take it.
        let (mut ours, mut theirs) = tokio::io::duplex(1 << 20);
        write_frame(&mut ours, &spliced).await.expect("sent");
        drop(ours);
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, copied[..]);
    }

    #[tokio::test]
    async fn a_segment_cut_short_after_the_read_fails_the_write_instead_of_sending_less() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log_with(dir.path(), 4);
        let read = log.read(0, u32::MAX, i64::MAX).expect("read");
        let fetch = response(Records::Deferred(Arc::new(SegmentRecords::new(
            read.slices,
        ))));
        let spliced = encode_response_spliced(7, 1, &fetch, 12).expect("encode");
        // Cut the segment after the first batch, as a truncation would.
        let segment = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .expect("segment");
        let first = crate::testing::batch(3).len() as u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .and_then(|f| f.set_len(first))
            .expect("truncate");

        let (sent, got) = send_over_tcp(&spliced).await;
        let error = sent.expect_err("a short range is an error");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{error}");
        assert!(got.len() < spliced.len(), "the frame was not completed");

        let mut sink = tokio::io::sink();
        let error = write_frame(&mut sink, &spliced)
            .await
            .expect_err("the copy path fails too");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{error}");
    }
}
