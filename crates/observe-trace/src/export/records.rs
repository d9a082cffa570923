//! Finished spans as the layers record them: small structs queued for the
//! export thread, which encodes them (`encode.rs`).

use std::{net::IpAddr, time::SystemTime};

use axum::extract::MatchedPath;
use http::{HeaderValue, Method, StatusCode, Uri, Version};

use crate::TraceContext;

/// A server span, as [`TraceLayer`](crate::TraceLayer) finishes it.
pub(crate) struct ServerRecord {
    pub(crate) context: TraceContext,
    pub(crate) method: Method,
    pub(crate) route: Option<MatchedPath>,
    pub(crate) uri: Uri,
    pub(crate) host: Option<HeaderValue>,
    pub(crate) local_port: Option<u16>,
    pub(crate) client_address: Option<IpAddr>,
    pub(crate) user_agent: Option<HeaderValue>,
    pub(crate) version: Version,
    pub(crate) request_id: Option<observe_request_id::RequestId>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// `None` when the client went away before the response.
    pub(crate) status: Option<StatusCode>,
    /// From the error layer's report, for 5xx.
    pub(crate) error_type: Option<String>,
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
