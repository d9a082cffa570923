//! Where a panic happened. The payload that `catch_unwind` returns holds the
//! message only; the location is seen by the panic hook, on the panicking
//! thread, just before the unwind reaches our `catch_unwind`.

use std::{cell::RefCell, panic, sync::Once};

thread_local! {
    static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Adds a step to the panic hook that remembers the location, then calls the
/// hook that was there before (the default one prints to stderr). Once per
/// process; hooks set later by the application replace it.
pub(super) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(location) = info.location() {
                let location = format!(
                    "{}:{}:{}",
                    location.file(),
                    location.line(),
                    location.column()
                );
                let _ = LAST_PANIC_LOCATION.try_with(|last| {
                    if let Ok(mut last) = last.try_borrow_mut() {
                        *last = Some(location);
                    }
                });
            }
            previous(info);
        }));
    });
}

/// The location of the last panic on this thread, once.
pub(super) fn take() -> Option<String> {
    LAST_PANIC_LOCATION
        .try_with(|last| last.try_borrow_mut().ok()?.take())
        .ok()
        .flatten()
}
