//! Bodies the cache hands on as they stream (over `max_body_size`, slow to end, written to a
//! store's file as they go, or served from one), keeping their length: the one the origin
//! announced, or the stored body's. reqwest's
//! `Response::content_length` reads the body's size hint, which a stream has none of: such a
//! response reported no length where the origin's did (a download's progress bar, a buffer
//! sized beforehand).
//!
//! A leaf: calls nothing else in the crate.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use http_body::{Frame, SizeHint};

/// The length of a body of which `read` was read and `rest` goes on: the length the
/// response announced, when it did (not when reqwest decodes a compressed body, which it
/// reports without one).
pub(crate) fn length(read: &[Bytes], rest: &reqwest::Response) -> Option<u64> {
    let read: u64 = read.iter().map(|chunk| chunk.len() as u64).sum();
    rest.content_length()?.checked_add(read)
}

/// A body streaming `stream`, whose length is `length` when known.
pub(crate) fn streamed<S, E>(stream: S, length: Option<u64>) -> reqwest::Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    match length {
        None => reqwest::Body::wrap_stream(stream),
        Some(remaining) => reqwest::Body::wrap(Sized {
            // A mutex only to be `Sync`, as reqwest asks: the body is polled through `&mut`,
            // which reaches its stream without locking.
            stream: Mutex::new(stream.boxed()),
            remaining,
        }),
    }
}

/// A stream as a body of a known length.
struct Sized<E> {
    stream: Mutex<BoxStream<'static, Result<Bytes, E>>>,
    /// Bytes not yet handed on.
    remaining: u64,
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
        match stream.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => {
                this.remaining = 0;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
