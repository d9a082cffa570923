//! Request ids for tower and axum services.
//!
//! [`RequestIdLayer`] gives every request an id and makes sure the response
//! carries it:
//!
//! - an incoming `x-request-id` is kept when it is one header of 1 to 128
//!   visible ASCII characters (`0x21..=0x7E`); anything else (empty, too long,
//!   spaces, control characters, non-ASCII, several headers) is replaced by a
//!   fresh id and never echoed;
//! - fresh ids are UUID v7 (time-ordered), made by a [`MakeRequestId`] you can
//!   replace;
//! - the id goes into the request extensions as a [`RequestId`], is scoped as a
//!   task-local for the handler's future ([`current`]), and is set on every
//!   response the inner service returns.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use observe_request_id::{RequestId, RequestIdLayer};
//!
//! async fn handler(id: RequestId) -> String {
//!     format!("your request id is {id}")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(RequestIdLayer::new());
//! # let _ = app;
//! ```
//!
//! Deep inside a handler, the id is at hand without passing it along, for
//! instance to put it on an outgoing call:
//!
//! ```
//! use http::HeaderMap;
//!
//! fn outgoing_headers() -> HeaderMap {
//!     let mut headers = HeaderMap::new();
//!     observe_request_id::propagate_current(&mut headers);
//!     headers
//! }
//! # let _ = outgoing_headers();
//! ```

mod id;
mod layer;
mod make;
mod scope;
mod v7;

pub use id::{InvalidRequestId, RequestId, propagate_current};
pub use layer::{RequestIdLayer, RequestIdService, ResponseFuture, ResponseHeader};
pub use make::{MakeRequestId, MakeUuidV7};
pub use observe_core::TraceIds;
pub use scope::{Scoped, current, scope};

use http::HeaderName;

/// The header that carries the id unless [`RequestIdLayer::header_name`] says otherwise.
pub const DEFAULT_HEADER_NAME: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id that is kept, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;
