//! Bodies the cache hands on as they stream (over `max_body_size`, slow to end, written to a
//! store's file as they go, or served from one), keeping their length: the one the origin
//! announced, or the stored body's. reqwest's `Response::content_length` reads the body's
//! size hint, which a stream has none of: such a response reported no length where the
//! origin's did (a download's progress bar, a buffer sized beforehand).
//!
//! The end of these streams does work: the body is stored, or its file's check runs, when
//! the stream ends. A reader that knows the length may stop at the last byte without asking
//! for the end (hyper writing the body on with that length does), so the last bytes are
//! handed on only once the stream has ended: after the body is stored, and, when it fails
//! its check, not at all (the error comes instead).
//!
//! A leaf: calls nothing else in the crate.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use http_body::{Frame, SizeHint};

/// A body streaming `stream`, whose length is `length` when known (the origin's announced
/// length, read with its head: later, a body's hint counts only what is left). Read past
/// its end, it stays ended.
pub(crate) fn streamed<S, E>(stream: S, length: Option<u64>) -> reqwest::Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let stream = stream.fuse();
    match length {
        None => reqwest::Body::wrap_stream(stream),
        Some(remaining) => reqwest::Body::wrap(Sized {
            // A mutex only to be `Sync`, as reqwest asks: the body is polled through `&mut`,
            // which reaches its stream without locking.
            stream: Mutex::new(stream.boxed()),
            remaining,
            last: None,
        }),
    }
}

/// A stream as a body of a known length.
struct Sized<E> {
    /// Fused: read past its end, it stays ended.
    stream: Mutex<BoxStream<'static, Result<Bytes, E>>>,
    /// Bytes not yet handed on (the held last chunk's included).
    remaining: u64,
    /// The chunk that reaches the length, held until the stream ends.
    last: Option<Bytes>,
}

impl<E> http_body::Body for Sized<E> {
    type Data = Bytes;
    type Error = E;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, E>>> {
        let this = self.get_mut();
        let stream = this
            .stream
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            match stream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(error))) => {
                    // The body failed after its last bytes (a file failing its check): the
                    // error in their place, so that no reader takes the body for whole.
                    this.last = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    let last = this.last.take();
                    this.remaining = 0;
                    return Poll::Ready(last.map(|chunk| Ok(Frame::data(chunk))));
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    // More than the length after the held chunk: that one goes on.
                    if let Some(held) = this.last.replace(chunk) {
                        this.remaining = this.remaining.saturating_sub(held.len() as u64);
                        return Poll::Ready(Some(Ok(Frame::data(held))));
                    }
                    let len = this.last.as_ref().map_or(0, |c| c.len() as u64);
                    if len < this.remaining {
                        this.remaining -= len;
                        let chunk = this.last.take();
                        return Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))));
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use http_body::Body as _;

    use super::*;

    fn frame_of(body: &mut Sized<std::io::Error>) -> Option<Result<Bytes, std::io::Error>> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(frame) => frame.map(|f| f.map(|f| f.into_data().unwrap_or_default())),
            Poll::Pending => panic!("the test's streams are ready"),
        }
    }

    /// `pieces`, then a stream end that sets `ended` (where the tee stores its body).
    fn sized(
        pieces: Vec<Result<&'static [u8], std::io::Error>>,
        ended: &Arc<AtomicBool>,
    ) -> Sized<std::io::Error> {
        let ended = Arc::clone(ended);
        let end = futures_util::stream::poll_fn(move |_| {
            ended.store(true, Ordering::SeqCst);
            Poll::Ready(None)
        });
        let pieces = pieces.into_iter().map(|p| p.map(Bytes::from_static));
        let stream = futures_util::stream::iter(pieces).chain(end);
        Sized {
            stream: Mutex::new(stream.fuse().boxed()),
            remaining: 4,
            last: None,
        }
    }

    /// A reader that stops at the length has still made the stream end: the last bytes come
    /// after it (hyper writing a body of a known length on stops there, and the tee stored
    /// nothing).
    #[test]
    fn the_last_bytes_come_once_the_stream_ended() {
        let ended = Arc::new(AtomicBool::new(false));
        let mut body = sized(vec![Ok(b"ab"), Ok(b"cd")], &ended);
        assert_eq!(body.size_hint().exact(), Some(4));
        assert_eq!(frame_of(&mut body).unwrap().unwrap(), "ab");
        assert!(!ended.load(Ordering::SeqCst));
        assert_eq!(body.size_hint().exact(), Some(2));
        assert_eq!(frame_of(&mut body).unwrap().unwrap(), "cd");
        assert!(ended.load(Ordering::SeqCst), "ended before the last bytes");
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(frame_of(&mut body).is_none());
        assert!(
            frame_of(&mut body).is_none(),
            "read past its end, it stays ended"
        );
    }

    /// A failure after the last bytes (a body file failing its check) comes in their place.
    #[test]
    fn a_failure_after_the_last_bytes_replaces_them() {
        let ended = Arc::new(AtomicBool::new(false));
        let failed = std::io::Error::other("failed its check");
        let mut body = sized(vec![Ok(b"ab"), Ok(b"cd"), Err(failed)], &ended);
        assert_eq!(frame_of(&mut body).unwrap().unwrap(), "ab");
        assert!(frame_of(&mut body).unwrap().is_err(), "the error, not cd");
    }
}
