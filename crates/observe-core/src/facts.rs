//! What a request is, taken once before it moves on.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath};
use http::{
    HeaderValue, Method, Request, Uri, Version,
    header::{HOST, USER_AGENT},
};

use crate::{RequestStart, UNMATCHED_ENDPOINT};

/// The facts of a request every signal reports: taken once, when the
/// request arrives, by [`RequestFacts::of`], and read by the metrics, the
/// request log line and the server span when the request ends.
///
/// Taking them clones a few shared handles (the URI, the route template,
/// two header values), never the text.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// The method.
    pub method: Method,
    /// The route template axum matched, `None` for an unmatched request.
    pub route: Option<MatchedPath>,
    /// The target as received; its query may hold secrets, so signals
    /// redact it before writing it.
    pub uri: Uri,
    /// The HTTP version.
    pub version: Version,
    /// The `Host` header.
    pub host: Option<HeaderValue>,
    /// The `User-Agent` header.
    pub user_agent: Option<HeaderValue>,
    /// The connection's peer, from axum's `ConnectInfo<SocketAddr>`.
    pub peer: Option<SocketAddr>,
    /// When the request started (see [`RequestStart::of`]).
    pub start: RequestStart,
}

impl RequestFacts {
    /// The facts of `request`, with the start it carries or now (left in it
    /// for the layers inside).
    pub fn of<B>(request: &mut Request<B>) -> Self {
        let start = RequestStart::of(request);
        Self::new(request, start)
    }

    /// The facts of `request`, which started at `start`.
    pub fn new<B>(request: &Request<B>, start: RequestStart) -> Self {
        let extensions = request.extensions();
        let headers = request.headers();
        Self {
            method: request.method().clone(),
            route: extensions.get::<MatchedPath>().cloned(),
            uri: request.uri().clone(),
            version: request.version(),
            host: headers.get(HOST).cloned(),
            user_agent: headers.get(USER_AGENT).cloned(),
            peer: extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0),
            start,
        }
    }

    /// The route template, or [`UNMATCHED_ENDPOINT`].
    pub fn endpoint(&self) -> &str {
        self.route
            .as_ref()
            .map_or(UNMATCHED_ENDPOINT, MatchedPath::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;

    #[test]
    fn facts_of_a_request() {
        let peer = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 50_000));
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/groups/42?token=x")
            .header(HOST, "api.example")
            .header(USER_AGENT, "curl/8")
            .extension(ConnectInfo(peer))
            .body(())
            .unwrap_or_default();
        let facts = RequestFacts::of(&mut request);
        assert_eq!(facts.method, Method::POST);
        assert_eq!(facts.uri, "/groups/42?token=x");
        assert_eq!(facts.version, Version::HTTP_11);
        assert_eq!(
            facts.host.as_ref().map(HeaderValue::as_bytes),
            Some(&b"api.example"[..])
        );
        assert_eq!(
            facts.user_agent.as_ref().map(HeaderValue::as_bytes),
            Some(&b"curl/8"[..])
        );
        assert_eq!(facts.peer, Some(peer));
        assert_eq!(facts.endpoint(), UNMATCHED_ENDPOINT);
        // The start is left for the layers inside.
        let inner = RequestStart::of(&mut request);
        assert_eq!(inner.instant(), facts.start.instant());
    }
}
