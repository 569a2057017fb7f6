//! The record set of a Fetch response: bytes in memory, or batches that
//! stay where they are stored until the response is written.
//!
//! A broker answering a Fetch need not copy the batches it serves through
//! user space: the connection can hand the stored bytes to the socket
//! itself (`sendfile`). [`Records::Deferred`] carries such a set through
//! the codec, which does no I/O of its own:
//! - [`crate::encode_response_spliced`] writes the length prefix and leaves
//!   a *splice* where the bytes go, for the writer to fill from the source;
//! - any other encoding asks the source to copy its bytes into the frame.
//!
//! Decoding always gives [`Records::Memory`].

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// Record batches held somewhere else (a segment file), of a known length.
pub trait RecordSource: fmt::Debug + Send + Sync + 'static {
    /// Bytes in the set.
    fn len(&self) -> usize;

    /// True for an empty set.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends exactly [`RecordSource::len`] bytes to `out` (the copy
    /// path), or fails without promising what `out` holds.
    fn copy_to(&self, out: &mut BytesMut) -> std::io::Result<()>;

    /// The concrete source, for a writer that knows how to send it without
    /// copying.
    fn as_any(&self) -> &dyn Any;
}

/// A `records` field of a response.
#[derive(Debug, Clone)]
pub enum Records {
    /// Batches in memory (what decoding gives).
    Memory(Bytes),
    /// Batches read from their source only when the response is written.
    Deferred(Arc<dyn RecordSource>),
}

impl Default for Records {
    fn default() -> Records {
        Records::Memory(Bytes::new())
    }
}

impl From<Bytes> for Records {
    fn from(bytes: Bytes) -> Records {
        Records::Memory(bytes)
    }
}

/// Two deferred sets are equal only when they are the same source.
impl PartialEq for Records {
    fn eq(&self, other: &Records) -> bool {
        match (self, other) {
            (Records::Memory(a), Records::Memory(b)) => a == b,
            (Records::Deferred(a), Records::Deferred(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Records {
    /// Bytes in the set.
    pub fn len(&self) -> usize {
        match self {
            Records::Memory(b) => b.len(),
            Records::Deferred(s) => s.len(),
        }
    }

    /// True for an empty set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, read from the source when deferred.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        match self {
            Records::Memory(b) => Ok(b.clone()),
            Records::Deferred(s) => {
                let mut out = BytesMut::with_capacity(s.len());
                s.copy_to(&mut out)?;
                Ok(out.freeze())
            }
        }
    }
}

/// Where a deferred record set goes in an encoded frame.
#[derive(Debug, Clone)]
pub struct Splice {
    /// Byte position in the frame's head: the set's bytes come before the
    /// head's byte at this position.
    pub at: usize,
    /// The set.
    pub source: Arc<dyn RecordSource>,
}

thread_local! {
    /// The splices of the frame being encoded by
    /// [`crate::encode_response_spliced`] on this thread; `None` outside
    /// it. Encoding is synchronous, so the collector cannot leak into
    /// another frame.
    static SPLICES: RefCell<Option<Vec<Splice>>> = const { RefCell::new(None) };
}

/// Runs `encode` with a splice collector: deferred record sets met while
/// it runs become splices instead of copies. Returns what `encode`
/// returned and the splices, in frame order.
pub(crate) fn collect_splices<T>(encode: impl FnOnce() -> T) -> (T, Vec<Splice>) {
    let previous = SPLICES.with(|s| s.borrow_mut().replace(Vec::new()));
    let value = encode();
    let splices = SPLICES.with(|s| std::mem::replace(&mut *s.borrow_mut(), previous));
    (value, splices.unwrap_or_default())
}

/// Records `source` as spliced at `at` if a collector runs; false when
/// the caller must copy the bytes instead.
pub(crate) fn splice(at: usize, source: &Arc<dyn RecordSource>) -> bool {
    SPLICES.with(|s| match s.borrow_mut().as_mut() {
        Some(splices) => {
            splices.push(Splice {
                at,
                source: Arc::clone(source),
            });
            true
        }
        None => false,
    })
}
