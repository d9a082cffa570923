//! Where a panic happened, and its backtrace when `RUST_BACKTRACE` asks for
//! one. The payload that `catch_unwind` returns holds the message only; the
//! location is seen by the panic hook, on the panicking thread, just before
//! the unwind reaches our `catch_unwind`.
//!
//! Inside a layer built with `print_panics(false)` the hook does not call
//! the one before it either (the default prints the panic to stderr): the
//! request's one report is the whole account, so a JSON log stream gets no
//! raw lines.

use std::{
    backtrace::{Backtrace, BacktraceStatus},
    cell::{Cell, RefCell},
    panic,
    sync::Once,
};

/// What the hook saw of the last panic on this thread.
#[derive(Debug, Default)]
pub(super) struct PanicSite {
    pub(super) location: Option<String>,
    pub(super) backtrace: Option<String>,
}

thread_local! {
    static LAST_PANIC: RefCell<PanicSite> = RefCell::new(PanicSite::default());
    /// Polls and calls under way in layers that keep panics off stderr.
    static QUIET: Cell<u32> = const { Cell::new(0) };
}

static INSTALL: Once = Once::new();

/// Adds a step to the panic hook that remembers the location (and the
/// backtrace, when enabled), then calls the hook that was there before
/// unless a quiet layer is catching. Once per process; hooks set later by
/// the application replace it.
pub(super) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info.location().map(|location| {
                format!(
                    "{}:{}:{}",
                    location.file(),
                    location.line(),
                    location.column()
                )
            });
            let quiet = QUIET.try_with(Cell::get).unwrap_or(0) > 0;
            let backtrace = quiet
                .then(Backtrace::capture)
                .filter(|trace| trace.status() == BacktraceStatus::Captured)
                .map(|trace| trace.to_string());
            let _ = LAST_PANIC.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = PanicSite {
                        location,
                        backtrace,
                    };
                }
            });
            if !quiet {
                previous(info);
            }
        }));
    });
}

/// What the hook saw of the last panic on this thread, once.
pub(super) fn take() -> PanicSite {
    LAST_PANIC
        .try_with(|last| {
            last.try_borrow_mut()
                .map(|mut last| std::mem::take(&mut *last))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// While it lives (and `quiet` is set), panics on this thread are not
/// printed by the previous hook.
pub(super) struct Quiet(bool);

impl Quiet {
    pub(super) fn new(quiet: bool) -> Self {
        if quiet {
            let _ = QUIET.try_with(|depth| depth.set(depth.get() + 1));
        }
        Self(quiet)
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        if self.0 {
            let _ = QUIET.try_with(|depth| depth.set(depth.get().saturating_sub(1)));
        }
    }
}
