//! Finished spans as the layers record them: small structs queued for the
//! export thread, which encodes them (`encode.rs`).

use std::{net::IpAddr, ops::Range, time::SystemTime};

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, StatusCode, Uri, Version};
use observe_request_id::RequestId;

use crate::TraceContext;

/// A server span, as [`TraceLayer`](crate::TraceLayer) finishes it.
pub(crate) struct ServerRecord {
    pub(crate) context: TraceContext,
    pub(crate) method: Method,
    pub(crate) route: Option<MatchedPath>,
    /// Path, scheme, host, user agent, request id and, for a 5xx, the
    /// error layer's type.
    pub(crate) texts: RequestTexts,
    pub(crate) local_port: Option<u16>,
    pub(crate) client_address: Option<IpAddr>,
    pub(crate) version: Version,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// `None` when the client went away before the response.
    pub(crate) status: Option<StatusCode>,
}

/// The text of a request a server span reports, copied out of the request
/// into one buffer that goes back and forth with its record (see
/// `SpanSink::server_record`).
///
/// The request's `Uri` and header values share the connection's read
/// buffer: held until the export, a second later, they would make hyper
/// allocate a new buffer for the connection's next requests and leave the
/// export thread to free the old one.
#[derive(Debug, Default)]
pub(crate) struct RequestTexts {
    text: String,
    path: Range<usize>,
    scheme: Option<Range<usize>>,
    host: Option<Range<usize>>,
    user_agent: Option<Range<usize>>,
    request_id: Option<Range<usize>>,
    error_type: Option<Range<usize>>,
}

impl RequestTexts {
    /// The texts of one request, in this buffer; `error_type` is the error
    /// layer's, for a 5xx.
    pub(crate) fn fill(
        &mut self,
        uri: &Uri,
        host: Option<&HeaderValue>,
        user_agent: Option<&HeaderValue>,
        request_id: Option<&RequestId>,
        error_type: Option<&str>,
    ) {
        self.text.clear();
        // One allocation for a new buffer (a lossy header may need more).
        let length = uri.path().len()
            + uri.scheme_str().map_or(0, str::len)
            + host.map_or(0, HeaderValue::len)
            + user_agent.map_or(0, HeaderValue::len)
            + request_id.map_or(0, |id| id.as_str().len())
            + error_type.map_or(0, str::len);
        self.text.reserve(length);
        self.path = self.push(uri.path());
        self.scheme = uri.scheme_str().map(|scheme| self.push(scheme));
        self.host = host.map(|host| self.push(&observe_core::header_text(host)));
        self.user_agent = user_agent.map(|agent| self.push(&observe_core::header_text(agent)));
        self.request_id = request_id.map(|id| self.push(id.as_str()));
        self.error_type = error_type.map(|error_type| self.push(error_type));
    }

    /// The texts of one request, in a new buffer.
    #[cfg(test)]
    pub(crate) fn of(
        uri: &Uri,
        host: Option<&HeaderValue>,
        user_agent: Option<&HeaderValue>,
        request_id: Option<&RequestId>,
        error_type: Option<&str>,
    ) -> Self {
        let mut texts = Self::default();
        texts.fill(uri, host, user_agent, request_id, error_type);
        texts
    }

    fn push(&mut self, text: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn get(&self, range: &Range<usize>) -> &str {
        self.text.get(range.clone()).unwrap_or_default()
    }

    /// The bytes kept for reuse.
    pub(crate) fn capacity(&self) -> usize {
        self.text.capacity()
    }

    pub(crate) fn path(&self) -> &str {
        self.get(&self.path)
    }

    /// The URI's scheme, when the request named one (absolute form).
    pub(crate) fn scheme(&self) -> Option<&str> {
        self.scheme.as_ref().map(|range| self.get(range))
    }

    /// The `Host` header, as text.
    pub(crate) fn host(&self) -> Option<&str> {
        self.host.as_ref().map(|range| self.get(range))
    }

    /// The `User-Agent` header, as text.
    pub(crate) fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_ref().map(|range| self.get(range))
    }

    /// The error layer's type of a 5xx.
    pub(crate) fn error_type(&self) -> Option<&str> {
        self.error_type.as_ref().map(|range| self.get(range))
    }

    pub(crate) fn request_id(&self) -> Option<&str> {
        self.request_id.as_ref().map(|range| self.get(range))
    }
}

/// An internal span, as [`in_span`](crate::in_span) finishes it.
pub(crate) struct InternalRecord {
    pub(crate) context: TraceContext,
    pub(crate) name: &'static str,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// Dropped before it finished.
    pub(crate) aborted: bool,
}

/// A client span, as [`ClientTraceLayer`](crate::ClientTraceLayer) finishes it.
pub(crate) struct ClientRecord {
    pub(crate) context: TraceContext,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) status: Option<StatusCode>,
    /// Set when the call failed without a response.
    pub(crate) error: Option<&'static str>,
}
