//! Capturing what observe logs: a writer that keeps every byte, a writer
//! that stalls until released, and a runtime whose threads all log through
//! one subscriber.

use std::{
    io,
    sync::{Arc, Condvar, Mutex, PoisonError},
};

use serde_json::Value;

/// A log destination that keeps every byte written to it.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written, as text (invalid UTF-8 would show as U+FFFD, and
    /// then fail [`lines`](Self::lines)).
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8(bytes.clone()).expect("log output is valid UTF-8")
    }

    /// Every line parsed as one JSON object; panics on any line that is not.
    pub fn lines(&self) -> Vec<Value> {
        let text = self.text();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "a partial last line"
        );
        text.lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not one JSON object ({error}): {line}"));
                assert!(value.is_object(), "not an object: {line}");
                value
            })
            .collect()
    }

    /// The request lines (target `observe_log::request`).
    pub fn request_lines(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line["target"] == observe::logging::LINE_TARGET)
            .collect()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A log destination that blocks every write until [`open`](Self::open)ed:
/// a stalled disk or a full pipe.
#[derive(Clone, Default)]
pub struct StalledWriter {
    state: Arc<(Mutex<bool>, Condvar)>,
    /// What got through.
    pub buffer: LogBuffer,
}

impl StalledWriter {
    /// Lets writes through, now and from now on.
    pub fn open(&self) {
        let (open, opened) = &*self.state;
        *open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        opened.notify_all();
    }
}

impl io::Write for StalledWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (open, opened) = &*self.state;
        let mut is_open = open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*is_open {
            is_open = opened.wait(is_open).unwrap_or_else(PoisonError::into_inner);
        }
        drop(is_open);
        self.buffer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A two-worker runtime where every thread, and the caller of
/// [`block_on`](LoggedRuntime::block_on), logs through one subscriber: for
/// tests that cannot own the global one.
pub struct LoggedRuntime {
    runtime: tokio::runtime::Runtime,
    dispatch: tracing::Dispatch,
}

impl LoggedRuntime {
    /// Runs `future` to completion with the subscriber on this thread too.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        tracing::dispatcher::with_default(&self.dispatch, || self.runtime.block_on(future))
    }
}

/// A [`LoggedRuntime`] logging through `dispatch`.
pub fn runtime_with(dispatch: &tracing::Dispatch) -> LoggedRuntime {
    let for_workers = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // The runtime's threads live as long as it does; so does this.
            std::mem::forget(tracing::dispatcher::set_default(&for_workers));
        })
        .build()
        .expect("a runtime");
    LoggedRuntime {
        runtime,
        dispatch: dispatch.clone(),
    }
}

/// The keys of a JSON object line, in the order they are written.
pub fn keys_in_order(line: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(line).expect("a JSON line");
    let mut keys: Vec<(usize, String)> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(|key| {
            let quoted = format!("\"{key}\":");
            let at = line.find(&quoted).expect("the key as written");
            (at, key.clone())
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, key)| key).collect()
}

impl LogBuffer {
    /// The raw text of the one line with `"request_id":"<id>"` (or the ECS
    /// `"http.request.id"`) and target the request log.
    pub fn raw_request_line(&self, request_id: &str) -> String {
        let text = self.text();
        let found: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.contains(observe::logging::LINE_TARGET)
                    && (line.contains(&format!("\"request_id\":\"{request_id}\""))
                        || line.contains(&format!("\"http.request.id\":\"{request_id}\"")))
            })
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].to_owned()
    }
}

/// A log destination that takes `delay` over every write: a slow disk.
#[derive(Clone)]
pub struct SlowWriter {
    /// How long each write takes.
    pub delay: std::time::Duration,
    /// What was written.
    pub buffer: LogBuffer,
}

impl io::Write for SlowWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(self.delay);
        self.buffer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
