//! Bodies crossing the gateway.
//!
//! [`RequestBody`] goes upstream: either buffered (small, replayable for a
//! retry) or streamed from the caller under the size cap. [`ResponseBody`]
//! goes back to the caller: relayed frame by frame as it arrives, counting
//! bytes, and settling the request (metrics, access log) exactly once when
//! it ends or is dropped, also when the caller goes away mid-stream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use blastdoor_meter::Meter;

use crate::contract::ResponseSample;
use crate::ctx::RequestCtx;
use crate::settle::Settler;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The caller sent more than the service's `max_request_body`.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    pub limit: u64,
}

/// Reading the caller's request body failed (the caller's fault, not the
/// upstream's).
#[derive(Debug, thiserror::Error)]
#[error("reading the request body failed: {0}")]
pub struct CallerBodyError(#[source] pub hyper::Error);

/// A request body on its way upstream.
#[derive(Debug)]
pub enum RequestBody {
    Buffered(Option<Bytes>),
    Streaming {
        inner: Incoming,
        limit: u64,
        seen: u64,
    },
}

impl RequestBody {
    pub fn empty() -> Self {
        RequestBody::Buffered(None)
    }

    /// A copy for another attempt, if the body can be replayed.
    pub fn replay(&self) -> Option<RequestBody> {
        match self {
            RequestBody::Buffered(b) => Some(RequestBody::Buffered(b.clone())),
            RequestBody::Streaming { .. } => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Buffered(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Streaming { inner, limit, seen } => {
                let frame = ready!(Pin::new(inner).poll_frame(cx));
                if let Some(Ok(f)) = &frame
                    && let Some(data) = f.data_ref()
                {
                    *seen += data.len() as u64;
                    if *seen > *limit {
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge { limit: *limit }))));
                    }
                }
                Poll::Ready(frame.map(|r| r.map_err(|e| Box::new(CallerBodyError(e)) as BoxError)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Buffered(b) => b.as_ref().is_none_or(Bytes::is_empty),
            RequestBody::Streaming { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Buffered(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestBody::Streaming { inner, .. } => inner.size_hint(),
        }
    }
}

/// An upstream response body as the pipeline hands it on.
#[derive(Debug)]
pub enum Relay {
    Stream(Incoming),
    Whole(Bytes),
}

/// The response relayed to the caller.
pub struct ResponseBody {
    inner: Inner,
    bytes_out: u64,
    settler: Option<(Settler, Box<RequestCtx>)>,
    /// Reads usage from the frames as they pass. Boxed: most services are
    /// not metered, and the body is moved around on every request.
    meter: Option<Box<Meter>>,
    /// Captures a sampled response to check it against the contract.
    sample: Option<Box<ResponseSample>>,
}

enum Inner {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("bytes_out", &self.bytes_out)
            .finish()
    }
}

impl ResponseBody {
    pub fn full(bytes: Bytes, settler: Settler, ctx: Box<RequestCtx>) -> Self {
        ResponseBody {
            inner: Inner::Full(Some(bytes)),
            bytes_out: 0,
            settler: Some((settler, ctx)),
            meter: None,
            sample: None,
        }
    }

    /// An upstream response: streamed on as it arrives, or already read
    /// whole (to meter it before the head is sent).
    pub fn relay(
        relay: Relay,
        settler: Settler,
        ctx: Box<RequestCtx>,
        meter: Option<Box<Meter>>,
    ) -> Self {
        let inner = match relay {
            Relay::Stream(body) => Inner::Upstream(body),
            Relay::Whole(bytes) => Inner::Full(Some(bytes)),
        };
        ResponseBody {
            inner,
            bytes_out: 0,
            settler: Some((settler, ctx)),
            meter,
            sample: None,
        }
    }

    /// Checks this response against the contract once it has ended.
    pub fn with_sample(mut self, sample: Option<Box<ResponseSample>>) -> Self {
        self.sample = sample;
        self
    }

    fn settle(&mut self, complete: bool) {
        if let (Some(sample), true) = (self.sample.take(), complete) {
            sample.judge();
        }
        if let Some((settler, ctx)) = self.settler.take() {
            let usage = self.meter.take().map(|m| m.finish());
            settler.settle(ctx, self.bytes_out, complete, usage);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = match &mut this.inner {
            Inner::Full(b) => b.take().map(|b| Ok(Frame::data(b))),
            Inner::Upstream(body) => ready!(Pin::new(body).poll_frame(cx))
                .map(|r| r.map_err(|e| Box::new(e) as BoxError)),
        };
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    this.bytes_out += data.len() as u64;
                    if let Some(meter) = &mut this.meter {
                        meter.feed(data);
                    }
                    if let Some(sample) = &mut this.sample {
                        sample.feed(data);
                    }
                }
            }
            Some(Err(_)) => this.settle(false),
            None => this.settle(true),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(b) => b.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Upstream(body) => body.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Dropped before the end means the caller went away or the
        // connection broke; hyper may also drop a body it knows is empty
        // without polling it, which is a complete response.
        let complete = self.is_end_stream();
        self.settle(complete);
    }
}
