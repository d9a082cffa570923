//! [`MetricsLayer`]: RED metrics for every request, by route template.

mod future;
mod layer;
mod recording;
mod service;

pub use future::ResponseFuture;
pub use layer::MetricsLayer;
pub use recording::RequestRecording;
pub use service::MetricsService;

#[cfg(test)]
mod tests;
