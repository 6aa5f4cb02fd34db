//! Request bodies read as streams (`docker cp` into a container, `load`,
//! `import`, `build`, bundle import): a blocking reader for engine work,
//! and the rule that a body is read to its end before the answer goes out.
//!
//! Why: hyper closes a connection whose request body was not read to its
//! end once the answer is sent. A client still sending (a tar's padding
//! after its end-of-archive blocks, a compressed stream's bytes after its
//! frame, an archive refused on its first entry) then gets a broken pipe
//! or a reset instead of the answer (`docker cp` failed so in CI).
//!
//! The drain is bounded: after the work stopped reading, at most
//! [`DRAIN_LIMIT`] bytes within [`DRAIN_TIMEOUT`]; past either bound the
//! rest is left unread and hyper closes the connection, so a client that
//! keeps sending after an error cannot hold a thread for ever.

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures_util::stream::MapErr;
use futures_util::TryStreamExt;
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;

use super::ApiError;

/// Most bytes of a body read and thrown away after the work stopped
/// reading. A legitimate rest is a few blocks of padding; a refused
/// archive sent whole can be large, and up to this much of it still gets
/// its error answer; past it the client sees the connection close.
pub const DRAIN_LIMIT: u64 = 1 << 30;

/// Longest time spent draining one body, whatever the client's pace.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A body's bytes as an `AsyncRead`.
type Rest = StreamReader<MapErr<BodyDataStream, fn(axum::Error) -> std::io::Error>, Bytes>;

fn rest_of(body: Body) -> Rest {
    let to_io: fn(axum::Error) -> std::io::Error = std::io::Error::other;
    StreamReader::new(body.into_data_stream().map_err(to_io))
}

/// A request body as a blocking [`Read`] for engine work. Dropped, it
/// reads the rest of the body (within the module's bounds), so the answer
/// that follows does not cut the client off.
///
/// Create it on a blocking thread (inside `spawn_blocking`): its reads and
/// its drop block on the runtime, which must not happen in an async task.
pub struct BodyReader {
    rest: Rest,
    runtime: tokio::runtime::Handle,
}

impl BodyReader {
    /// Read `body`. Panics outside a tokio runtime's context (a
    /// `spawn_blocking` thread has one).
    pub fn new(body: Body) -> BodyReader {
        BodyReader {
            rest: rest_of(body),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.runtime.block_on(self.rest.read(buf))
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.runtime.block_on(drain_rest(&mut self.rest));
    }
}

/// `result`, after reading `body` to its end (within the module's bounds)
/// when it is an error: a request refused before its body was read still
/// gets its answer to a client that sends the body whole first.
pub async fn drain_on_error<T>(
    result: Result<T, ApiError>,
    body: &mut Body,
) -> Result<T, ApiError> {
    if result.is_err() {
        drain_rest(&mut rest_of(std::mem::take(body))).await;
    }
    result
}

/// How a drain ended.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// The body's end, after this many bytes.
    End(u64),
    /// The byte limit, with more to come.
    Limit,
    /// The time limit.
    Timeout,
    /// The client went away or broke the framing: nothing left to read.
    Failed,
}

/// Read and throw away what is left of a body, within the bounds.
async fn drain_rest(rest: &mut Rest) {
    match drain_within(rest, DRAIN_LIMIT, DRAIN_TIMEOUT).await {
        Drained::End(_) | Drained::Failed => {}
        gave_up => tracing::debug!(
            limit = DRAIN_LIMIT,
            timeout_secs = DRAIN_TIMEOUT.as_secs(),
            "stopped draining a request body: {gave_up:?}"
        ),
    }
}

async fn drain_within(rest: &mut Rest, limit: u64, timeout: Duration) -> Drained {
    // One byte over the limit tells a rest of exactly the limit from a longer one.
    let mut bounded = rest.take(limit + 1);
    let mut sink = tokio::io::sink();
    let copied = tokio::io::copy(&mut bounded, &mut sink);
    match tokio::time::timeout(timeout, copied).await {
        Ok(Ok(n)) if n > limit => Drained::Limit,
        Ok(Ok(n)) => Drained::End(n),
        Ok(Err(_)) => Drained::Failed,
        Err(_) => Drained::Timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of `chunks`, then (when `endless`) a stream that never ends.
    fn body(chunks: Vec<&'static [u8]>, endless: bool) -> Body {
        let head = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<Bytes, std::io::Error>(Bytes::from_static(c))),
        );
        if endless {
            use futures_util::StreamExt;
            Body::from_stream(head.chain(futures_util::stream::pending()))
        } else {
            Body::from_stream(head)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn dropping_the_reader_reads_the_rest() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = seen.clone();
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"head")),
            Ok(Bytes::from_static(b"padding")),
        ];
        let stream = futures_util::stream::iter(chunks).inspect_ok(move |c| {
            counted.fetch_add(c.len(), std::sync::atomic::Ordering::SeqCst);
        });
        let b = Body::from_stream(stream);
        let first = tokio::task::spawn_blocking(move || {
            let mut r = BodyReader::new(b);
            let mut buf = [0u8; 4];
            r.read_exact(&mut buf).unwrap();
            buf
        })
        .await
        .unwrap();
        assert_eq!(&first, b"head");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn an_error_drains_and_success_does_not() {
        let mut b = body(vec![b"abc", b"def"], false);
        let ok: Result<u8, ApiError> = Ok(1);
        assert_eq!(drain_on_error(ok, &mut b).await.unwrap(), 1);
        let left = axum::body::to_bytes(b, 64).await.unwrap();
        assert_eq!(&left[..], b"abcdef");

        let mut b = body(vec![b"abc", b"def"], false);
        let refused: Result<u8, ApiError> = Err(ApiError::bad_request("no"));
        assert!(drain_on_error(refused, &mut b).await.is_err());
        assert!(axum::body::to_bytes(b, 64).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn draining_stops_at_the_end_the_limit_or_the_timeout() {
        let forever = Duration::from_secs(3600);
        let mut r = rest_of(body(vec![b"abc", b"def"], false));
        assert_eq!(drain_within(&mut r, 6, forever).await, Drained::End(6));
        let mut r = rest_of(body(vec![b"abc", b"def", b"g"], false));
        assert_eq!(drain_within(&mut r, 6, forever).await, Drained::Limit);
        let mut r = rest_of(body(vec![b"abc"], true));
        let short = Duration::from_millis(50);
        assert_eq!(drain_within(&mut r, 6, short).await, Drained::Timeout);
    }
}
