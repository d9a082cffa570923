//! Error capture for tower and axum services.
//!
//! - [`ErrorCaptureLayer`] sits innermost. A panic in a handler, sync or async,
//!   becomes a `500` [RFC 9457] `application/problem+json` response; the panic
//!   message stays in the logs and never reaches the client, and the server
//!   keeps serving. axum's plain-text rejections (bad JSON, bad path or query
//!   parameters, wrong content type) and the empty `404`/`405` of unmatched
//!   routes become problem+json too.
//! - [`AppError`] is the error handlers return: a status, a stable snake_case
//!   `error_type`, a public message, private context and a source chain.
//! - Every error response carries an [`ErrorReport`] in its response
//!   extensions, so the layers outside (request log, metrics) report each
//!   error once, with its context.
//!
//! Every problem body has `type`, `title`, `status`, `detail`, `instance`
//! (the request path), `error_type` and, when
//! [`RequestIdLayer`](observe_request_id::RequestIdLayer) runs outside this
//! layer, `request_id`:
//!
//! ```json
//! {"type":"about:blank","title":"Conflict","status":409,
//!  "detail":"a parse of this group is already running",
//!  "instance":"/api/v1/groups/1/parse","error_type":"duplicate_job",
//!  "request_id":"0190b6c5-7d1e-7c3a-9f0e-5b1a2c3d4e5f"}
//! ```
//!
//! # Example
//!
//! ```
//! use axum::{Router, http::StatusCode, routing::post};
//! use observe_errors::{AppError, ErrorCaptureLayer};
//! use observe_request_id::RequestIdLayer;
//!
//! async fn parse() -> Result<&'static str, AppError> {
//!     Err(AppError::new(
//!         StatusCode::CONFLICT,
//!         "duplicate_job",
//!         "a parse of this group is already running",
//!     )
//!     .with_context("group_id", 42))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/api/v1/groups/{group_id}/parse", post(parse))
//!     .layer(ErrorCaptureLayer::new())
//!     .layer(RequestIdLayer::new());
//! # let _ = app;
//! ```
//!
//! [RFC 9457]: https://www.rfc-editor.org/rfc/rfc9457

mod app_error;
mod capture;
mod problem;
mod report;

pub use app_error::AppError;
pub use capture::{ErrorCapture, ErrorCaptureLayer, ResponseBody, ResponseFuture};
pub use problem::{PROBLEM_JSON, Problem};
pub use report::ErrorReport;

/// The longest value a report's context keeps in its JSON (a panic's
/// backtrace, say), in bytes; longer ones are cut and end with
/// `…[truncated]`, so the context of one report stays one readable object.
pub const MAX_CONTEXT_VALUE_BYTES: usize = 2048;

/// The longest plain-text error body that is read to become a problem's
/// `detail`, in bytes. Longer bodies give a generic detail.
pub const MAX_PLAIN_ERROR_BODY: usize = 1024;
