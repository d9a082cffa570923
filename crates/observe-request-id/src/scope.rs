//! The current request id, scoped to the polls of a request's future.
//!
//! A thread-local slot that a future fills while it is polled and empties
//! when the poll returns, even by a panic. It is what `tokio::task_local!`
//! does, with a `Cell` in place of a `RefCell`: nothing to borrow-check, two
//! moves per poll.

use std::{
    cell::Cell,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;

use crate::RequestId;

thread_local! {
    static CURRENT: Cell<Option<RequestId>> = const { Cell::new(None) };
}

/// The id of the request whose future is being polled, if any.
///
/// [`RequestIdLayer`](crate::RequestIdLayer) sets it while the inner
/// service's response future is polled, which is where axum handlers and
/// everything they `.await` run. A task spawned with `tokio::spawn` does not
/// inherit it: wrap the task's future in [`scope`].
pub fn current() -> Option<RequestId> {
    CURRENT
        .try_with(|slot| {
            let id = slot.take();
            let copy = id.clone();
            slot.set(id);
            copy
        })
        .ok()
        .flatten()
}

/// Runs `future` with `id` as the [`current`] request id, for work spawned
/// off a request.
///
/// ```
/// # async fn demo() {
/// if let Some(id) = observe_request_id::current() {
///     tokio::spawn(observe_request_id::scope(id, async {
///         assert!(observe_request_id::current().is_some());
///     }));
/// }
/// # }
/// ```
pub fn scope<F: Future>(id: RequestId, future: F) -> Scoped<F> {
    Scoped {
        future,
        id: Some(id),
    }
}

pin_project! {
    /// A future that runs with a [`current`] request id; from [`scope`].
    pub struct Scoped<F> {
        #[pin]
        future: F,
        id: Option<RequestId>,
    }
}

impl<F> Scoped<F> {
    /// The id, once the future has been polled to completion (or before it
    /// is polled), for the response header.
    pub fn take_id(self: Pin<&mut Self>) -> Option<RequestId> {
        self.project().id.take()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = Entered::new(this.id);
        this.future.poll(cx)
    }
}

/// Swaps the id into the slot, and back out when dropped.
struct Entered<'a> {
    /// Holds what the slot held before, until the id comes back.
    held: &'a mut Option<RequestId>,
}

impl<'a> Entered<'a> {
    fn new(held: &'a mut Option<RequestId>) -> Self {
        // During thread teardown the slot is gone: poll without an id.
        let _ = CURRENT.try_with(|slot| *held = slot.replace(held.take()));
        Self { held }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|slot| *self.held = slot.replace(self.held.take()));
    }
}

#[cfg(test)]
mod tests {
    use std::{future::poll_fn, panic::AssertUnwindSafe};

    use super::*;

    fn id(text: &str) -> RequestId {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn set_while_polled_and_restored_after() {
        assert!(current().is_none());
        let seen = scope(id("outer"), async {
            let outer = current();
            let inner = scope(id("inner"), async { current() }).await;
            (outer, inner, current())
        })
        .await;
        assert_eq!(seen.0.unwrap().as_str(), "outer");
        assert_eq!(seen.1.unwrap().as_str(), "inner");
        assert_eq!(seen.2.unwrap().as_str(), "outer");
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn not_visible_between_polls() {
        let mut polls = 0;
        let mut future = Box::pin(scope(
            id("between"),
            poll_fn(move |cx| {
                polls += 1;
                assert_eq!(current().unwrap().as_str(), "between");
                if polls < 3 {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                } else {
                    Poll::Ready(polls)
                }
            }),
        ));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert!(current().is_none());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(3));
        assert!(current().is_none());
        assert_eq!(future.as_mut().take_id().unwrap().as_str(), "between");
    }

    #[test]
    fn a_panic_inside_restores_the_slot() {
        let mut future = Box::pin(scope(id("doomed"), async {
            panic!("inside the scope");
        }));
        let waker = futures_util::task::noop_waker();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            future.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        assert!(outcome.is_err());
        assert!(current().is_none());
    }
}
