//! [`ErrorCaptureLayer`]: panics and error responses to problem+json.
//!
//! What it does with each response of the inner service:
//!
//! | the inner service | the client gets |
//! | --- | --- |
//! | panics, in `call` or in its future | `500`, `error_type` `internal_error`, a generic detail; the report says `panic` with the message |
//! | returns an [`AppError`](crate::AppError) | its problem, rendered again with `instance` and `request_id` |
//! | answers `>= 400` with an empty or `text/plain` body (axum's rejections, unmatched routes, `405`) | problem+json; a `4xx` keeps the text as `detail`, a `5xx` gets a generic detail and the text goes to the report |
//! | anything else | the response as it was, body untouched |

mod body;
mod future;
mod layer;
mod location;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::ErrorCaptureLayer;
pub use service::ErrorCapture;

#[cfg(test)]
mod tests;
