use std::time::SystemTime;

use http::Request;

use crate::RequestId;

/// Makes the id of a request that brought no valid one.
///
/// ```
/// use http::Request;
/// use observe_request_id::{MakeRequestId, RequestId, RequestIdLayer};
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
///
/// #[derive(Clone, Default)]
/// struct Counter(Arc<AtomicU64>);
///
/// impl MakeRequestId for Counter {
///     fn make_request_id<B>(&mut self, _request: &Request<B>) -> RequestId {
///         let n = self.0.fetch_add(1, Ordering::Relaxed);
///         format!("req-{n}").parse().expect("ascii digits are a valid id")
///     }
/// }
///
/// let layer = RequestIdLayer::new().make_request_id(Counter::default());
/// # let _ = layer;
/// ```
pub trait MakeRequestId: Clone {
    /// Makes an id for `request`.
    fn make_request_id<B>(&mut self, request: &Request<B>) -> RequestId;

    /// Makes an id for `request`, which arrived at `arrived` by a clock a
    /// layer outside has already read (observe's facade layer passes its
    /// start). The default ignores the time and calls
    /// [`make_request_id`](Self::make_request_id); [`MakeUuidV7`] takes its
    /// timestamp from it instead of reading the clock again.
    fn make_request_id_at<B>(&mut self, request: &Request<B>, arrived: SystemTime) -> RequestId {
        let _ = arrived;
        self.make_request_id(request)
    }
}

/// Makes UUID v7 ids: time-ordered, so they sort and index well. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> RequestId {
        RequestId::new_v7()
    }

    fn make_request_id_at<B>(&mut self, _request: &Request<B>, arrived: SystemTime) -> RequestId {
        RequestId::from_uuid(crate::v7::v7_at(arrived))
    }
}
