//! Writing off the request path: a bounded queue to one writer thread.
//!
//! A thread that logs formats its line and hands it over; the writer thread
//! does every `write` and `flush`. When the queue is full the line is dropped
//! and counted (or, in lossless mode, the logging thread waits). After a run
//! of drops, once the writer has caught up, it writes one warning that says
//! how many lines were lost.
//!
//! The writer is not woken for each line: waking a sleeping thread is a
//! system call, about a microsecond, which would be most of a request line's
//! cost. It drains the queue every [`WRITER_POLL_INTERVAL`] instead, and is
//! woken early only when the queue is full or a flush asks for it. A line
//! reaches its output at most that interval after it was logged.
//!
//! Lines travel in buffers that go round: the writer hands each emptied
//! buffer back ([`SPARE_LINE_BUFFERS`] at most), and a logging thread copies
//! its next line into one. Allocating a line on one thread and freeing it on
//! another makes the allocator shuttle memory between them and give pages
//! back to the system that the next lines fault in again.

mod rolling;

use std::{
    io::{self, Write},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError},
    },
    thread::{self, Thread},
    time::{Duration, Instant},
};

use crossbeam_queue::ArrayQueue;

pub(crate) use rolling::RollingFile;
pub use rolling::{FileOutput, Rotation};

/// How long [`LogHandle::flush`] waits for room in a full queue between tries.
const FLUSH_RETRY: Duration = Duration::from_millis(1);

/// How often the writer thread looks at the queue when nobody wakes it.
pub const WRITER_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How many emptied line buffers wait for reuse at most: more than the lines
/// one [`WRITER_POLL_INTERVAL`] brings at 50,000 lines a second.
pub const SPARE_LINE_BUFFERS: usize = 1024;

/// Buffers that grew past this (a line with a long error context) are freed,
/// not kept for reuse, so the spares hold at most 4 MiB.
pub const MAX_SPARE_LINE_BYTES: usize = 4096;

/// What the writer thread writes to.
pub(crate) enum Destination {
    Stdout(io::BufWriter<io::Stdout>),
    File(RollingFile),
    Writer(Box<dyn Write + Send>),
}

impl Destination {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Destination::Stdout(out) => out.write_all(line),
            Destination::File(file) => file.write_line(line),
            Destination::Writer(out) => out.write_all(line),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Destination::Stdout(out) => out.flush(),
            Destination::File(file) => file.flush(),
            Destination::Writer(out) => out.flush(),
        }
    }
}

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Counters shared by the loggers, the writer and the handles.
struct Shared {
    /// Emptied line buffers, back from the writer.
    spare: ArrayQueue<Vec<u8>>,
    dropped: AtomicU64,
    /// Dropped since the last summary warning.
    unreported: AtomicU64,
    written: AtomicU64,
    write_errors: AtomicU64,
    dropped_counter: Option<metrics::Counter>,
}

/// The sending side, owned by the subscriber layer.
#[derive(Clone)]
pub(crate) struct Sink {
    sender: SyncSender<Message>,
    lossless: bool,
    shared: Arc<Shared>,
    writer: Thread,
}

impl Sink {
    /// Queues one finished line (with its newline).
    pub(crate) fn send(&self, line: &[u8]) {
        let mut buffer = self.shared.spare.pop().unwrap_or_default();
        buffer.extend_from_slice(line);
        match self.sender.try_send(Message::Line(buffer)) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => self.full(message),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    #[cold]
    #[inline(never)]
    fn full(&self, message: Message) {
        self.writer.unpark();
        if self.lossless {
            // Only fails once the writer thread is gone: nothing to write to.
            let _ = self.sender.send(message);
            return;
        }
        self.shared.dropped.fetch_add(1, Relaxed);
        self.shared.unreported.fetch_add(1, Relaxed);
        if let Some(counter) = &self.shared.dropped_counter {
            counter.increment(1);
        }
    }
}

/// A handle on the log writer: its counters, and a flush for shutdown.
/// Cheap to clone.
#[derive(Clone)]
pub struct LogHandle {
    sink: Sink,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle")
            .field("lossless", &self.sink.lossless)
            .field("dropped_lines", &self.dropped_lines())
            .field("written_lines", &self.written_lines())
            .finish()
    }
}

/// [`LogHandle::flush`] gave up before the writer caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushTimeout;

impl std::fmt::Display for FlushTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the log writer did not catch up before the flush timeout")
    }
}

impl std::error::Error for FlushTimeout {}

impl LogHandle {
    /// Lines dropped because the queue was full, since start. The same count
    /// as the `log_lines_dropped_total` metric.
    pub fn dropped_lines(&self) -> u64 {
        self.sink.shared.dropped.load(Relaxed)
    }

    /// Lines written out, since start (a line going to stdout and a file
    /// counts once).
    pub fn written_lines(&self) -> u64 {
        self.sink.shared.written.load(Relaxed)
    }

    /// Writes that failed (a full disk, a closed pipe), since start.
    pub fn write_errors(&self) -> u64 {
        self.sink.shared.write_errors.load(Relaxed)
    }

    /// Whether a full queue makes loggers wait instead of dropping lines.
    pub fn is_lossless(&self) -> bool {
        self.sink.lossless
    }

    /// Waits until every line accepted before this call is written and
    /// flushed, for at most `timeout`. Call it at shutdown;
    /// [`Observability::serve`](https://docs.rs/observe) does.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushTimeout> {
        let deadline = Instant::now() + timeout;
        let (done, flushed) = mpsc::sync_channel(1);
        let mut message = Message::Flush(done);
        loop {
            let sent = self.sink.sender.try_send(message);
            self.sink.writer.unpark();
            match sent {
                Ok(()) => break,
                // The writer is gone: nothing is left to flush.
                Err(TrySendError::Disconnected(_)) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(FlushTimeout);
                    }
                    message = back;
                    thread::sleep(FLUSH_RETRY);
                }
            }
        }
        match flushed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(FlushTimeout),
        }
    }
}

/// Starts the writer thread. `summary` formats the warning about dropped
/// lines.
pub(crate) fn start(
    destinations: Vec<Destination>,
    capacity: usize,
    lossless: bool,
    dropped_counter: Option<metrics::Counter>,
    summary: Box<dyn Fn(u64) -> Vec<u8> + Send>,
) -> io::Result<LogHandle> {
    let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
    let shared = Arc::new(Shared {
        spare: ArrayQueue::new(SPARE_LINE_BUFFERS),
        dropped: AtomicU64::new(0),
        unreported: AtomicU64::new(0),
        written: AtomicU64::new(0),
        write_errors: AtomicU64::new(0),
        dropped_counter,
    });
    let writer = Writer {
        destinations,
        shared: shared.clone(),
        summary,
    };
    let writer = thread::Builder::new()
        .name("observe-log-writer".to_owned())
        .spawn(move || writer.run(receiver))?
        .thread()
        .clone();
    Ok(LogHandle {
        sink: Sink {
            sender,
            lossless,
            shared,
            writer,
        },
    })
}

impl LogHandle {
    pub(crate) fn sink(&self) -> Sink {
        self.sink.clone()
    }
}

struct Writer {
    destinations: Vec<Destination>,
    shared: Arc<Shared>,
    summary: Box<dyn Fn(u64) -> Vec<u8> + Send>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Message>) {
        loop {
            // Everything queued goes out before one flush.
            let mut wrote = false;
            let disconnected = loop {
                match receiver.try_recv() {
                    Ok(message) => {
                        self.handle(message);
                        wrote = true;
                    }
                    Err(TryRecvError::Empty) => break false,
                    // Every sender is gone: nothing more will come.
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if wrote || disconnected {
                self.report_drops();
                self.flush();
            }
            if disconnected {
                return;
            }
            thread::park_timeout(WRITER_POLL_INTERVAL);
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Line(mut line) => {
                self.write(&line);
                if line.capacity() <= MAX_SPARE_LINE_BYTES {
                    line.clear();
                    // A full stock of spares frees this one instead.
                    let _ = self.shared.spare.push(line);
                }
            }
            Message::Flush(done) => {
                self.report_drops();
                self.flush();
                let _ = done.try_send(());
            }
        }
    }

    fn write(&mut self, line: &[u8]) {
        let mut failed = false;
        for destination in &mut self.destinations {
            failed |= destination.write_line(line).is_err();
        }
        if failed {
            self.shared.write_errors.fetch_add(1, Relaxed);
        } else {
            self.shared.written.fetch_add(1, Relaxed);
        }
    }

    fn report_drops(&mut self) {
        let dropped = self.shared.unreported.swap(0, Relaxed);
        if dropped > 0 {
            let line = (self.summary)(dropped);
            for destination in &mut self.destinations {
                let _ = destination.write_line(&line);
            }
        }
    }

    fn flush(&mut self) {
        for destination in &mut self.destinations {
            if destination.flush().is_err() {
                self.shared.write_errors.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex, PoisonError};

    use super::*;

    /// Whether the gate is open, and what went through.
    type GateState = (Mutex<(bool, Vec<u8>)>, Condvar);

    /// A writer that holds every write until opened, and keeps what it got.
    #[derive(Clone, Default)]
    struct Gate {
        state: Arc<GateState>,
    }

    impl Gate {
        fn open(&self) {
            let (lock, opened) = &*self.state;
            lock.lock().unwrap_or_else(PoisonError::into_inner).0 = true;
            opened.notify_all();
        }

        fn text(&self) -> String {
            let (lock, _) = &*self.state;
            String::from_utf8_lossy(&lock.lock().unwrap_or_else(PoisonError::into_inner).1)
                .into_owned()
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, opened) = &*self.state;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !state.0 {
                state = opened.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            state.1.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn summary(dropped: u64) -> Vec<u8> {
        format!("dropped {dropped}\n").into_bytes()
    }

    /// A writer over a closed gate.
    fn gated(capacity: usize, lossless: bool) -> (Gate, LogHandle) {
        let gate = Gate::default();
        let handle = start(
            vec![Destination::Writer(Box::new(gate.clone()))],
            capacity,
            lossless,
            None,
            Box::new(summary),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        (gate, handle)
    }

    #[test]
    fn a_full_queue_drops_counts_and_reports_once() {
        let (gate, handle) = gated(4, false);
        let sink = handle.sink();
        for line in 0..100 {
            sink.send(format!("{line}\n").as_bytes());
        }
        // The writer holds at most one line in hand and four queued.
        let dropped = handle.dropped_lines();
        assert!((95..=96).contains(&dropped), "{dropped}");
        gate.open();
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        let text = gate.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, 100 - dropped + 1, "{text}");
        assert_eq!(lines.last(), Some(&format!("dropped {dropped}").as_str()));
        assert_eq!(handle.written_lines(), 100 - dropped);
        // Writing resumed: no second summary for the same drops.
        sink.send(b"later\n");
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        assert_eq!(gate.text().matches("dropped").count(), 1);
    }

    #[test]
    fn line_buffers_go_back_to_the_loggers_and_long_ones_are_freed() {
        let (gate, handle) = gated(64, false);
        gate.open();
        let sink = handle.sink();
        let spare = || sink.shared.spare.len();
        for line in 0..10 {
            sink.send(format!("{line}\n").as_bytes());
        }
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        assert_eq!(spare(), 10);
        // The next line travels in one of them.
        sink.send(b"again\n");
        assert_eq!(spare(), 9);
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        assert_eq!(spare(), 10);
        // A line longer than a spare may be leaves its buffer to the allocator.
        let long = vec![b'x'; MAX_SPARE_LINE_BYTES + 1];
        sink.send(&long);
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        assert_eq!(spare(), 9);
        let text = gate.text();
        assert_eq!(text.len(), 20 + 6 + MAX_SPARE_LINE_BYTES + 1);
        assert!(text.starts_with("0\n1\n") && text.contains("9\nagain\nxx"));
        assert_eq!(handle.written_lines(), 12);
    }

    #[test]
    fn lossless_mode_waits_instead_of_dropping() {
        let (gate, handle) = gated(2, true);
        let sink = handle.sink();
        let logger = thread::spawn(move || {
            for line in 0..1000 {
                sink.send(format!("{line}\n").as_bytes());
            }
        });
        thread::sleep(Duration::from_millis(50));
        assert!(!logger.is_finished());
        gate.open();
        logger
            .join()
            .unwrap_or_else(|_| panic!("the logger panicked"));
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        let expected: String = (0..1000).map(|line| format!("{line}\n")).collect();
        assert_eq!(gate.text(), expected);
        assert_eq!(handle.dropped_lines(), 0);
        assert_eq!(handle.written_lines(), 1000);
    }

    #[test]
    fn flush_gives_up_on_a_stalled_writer() {
        let (gate, handle) = gated(1, false);
        handle.sink().send(b"stuck\n");
        // Let the writer take the first line and block on it.
        thread::sleep(Duration::from_millis(50));
        handle.sink().send(b"queued\n");
        let started = Instant::now();
        assert_eq!(handle.flush(Duration::from_millis(100)), Err(FlushTimeout));
        assert!(started.elapsed() < Duration::from_secs(5));
        gate.open();
        assert_eq!(handle.flush(Duration::from_secs(5)), Ok(()));
        assert_eq!(gate.text(), "stuck\nqueued\n");
    }
}
