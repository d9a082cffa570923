//! Export off the request path: finished spans go into a bounded queue; one
//! thread batches them and sends them with the OTLP exporter.
//!
//! A request pays for a `try_send` of a small record: the span is encoded
//! straight into the OTLP protobuf request on the exporter thread
//! (`encode.rs`), and sent over gRPC or HTTP (`transport.rs`). As
//! with the log writer, the exporter thread is not woken per span (a wake-up
//! is a system call): it drains the queue every [`EXPORT_INTERVAL`], and
//! early when a full batch ([`MAX_BATCH`]) waits or a flush asks: the rest
//! of the queue is room for the spans that come while it is sent. A
//! collector that is down, slow or refusing costs requests nothing: when the
//! queue is full, spans are dropped and counted, and one warning says so
//! until an export succeeds again.

mod config;
mod encode;
mod http_client;
mod logs;
mod processor;
mod records;
mod transport;

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError},
    },
    thread::{self, Thread},
    time::{Duration, Instant},
};

use crossbeam_queue::ArrayQueue;
use opentelemetry_sdk::trace::SpanData;
use prost::Message as _;

pub use config::{ExportConfig, InvalidExportConfig, Protocol};
pub(crate) use logs::OtlpLogLayer;
pub(crate) use processor::QueueProcessor;
pub(crate) use records::{ClientRecord, InternalRecord, ServerRecord};

/// How often the exporter thread sends what has queued up.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Spans in one export request at most (the specification's default).
pub const MAX_BATCH: usize = 512;

/// Spans that may wait for export (the specification's default).
pub const DEFAULT_QUEUE_CAPACITY: usize = 2048;

/// Exported server span records kept for reuse at most (fewer when the queue
/// is shorter): each keeps its buffer of request texts, so a steady stream
/// of requests allocates none. Each spare is a few hundred bytes and at most
/// [`MAX_SPARE_TEXT_BYTES`] of text: after a burst, with the default queue
/// (2,048 spares), at most about 5 MiB stay kept.
pub const MAX_SPARE_SERVER_RECORDS: usize = 4096;

/// A server record whose texts grew past this (a very long path or user
/// agent) is freed rather than kept for reuse.
pub const MAX_SPARE_TEXT_BYTES: usize = 2048;

/// How long one export may take before it counts as failed.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`TraceHandle::shutdown`] waits by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The name of the counter of dropped spans.
pub const DROPPED_SPANS_METRIC: &str = "otel_spans_dropped_total";

/// The name of the counter of dropped log records (`OBSERVE_LOG_OTLP`).
pub const DROPPED_LOGS_METRIC: &str = "otel_logs_dropped_total";

pub(crate) enum Item {
    Server(Box<ServerRecord>),
    Client(Box<ClientRecord>),
    Internal(Box<InternalRecord>),
    Sdk(Box<SpanData>),
    Log(Box<logs::LogItem>),
    Flush(SyncSender<()>),
}

struct Shared {
    /// Server records the exporter is done with, for the next requests.
    spare_servers: ArrayQueue<Box<ServerRecord>>,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed_exports: AtomicU64,
    queued: AtomicUsize,
    /// The queue length at which the exporter is woken: a full batch, or
    /// half a queue shorter than two batches.
    wake_at: usize,
    stopped: AtomicBool,
    dropped_counter: Option<metrics::Counter>,
    logs_dropped: AtomicU64,
    logs_exported: AtomicU64,
    logs_dropped_counter: Option<metrics::Counter>,
    /// Where the exporter's own warnings go: the service's subscriber, held
    /// weakly (it holds this pipeline).
    log: OnceLock<tracing::dispatcher::WeakDispatch>,
}

impl Shared {
    fn new(
        capacity: usize,
        dropped_counter: Option<metrics::Counter>,
        logs_dropped_counter: Option<metrics::Counter>,
    ) -> Self {
        Self {
            spare_servers: ArrayQueue::new(capacity.min(MAX_SPARE_SERVER_RECORDS)),
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failed_exports: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            wake_at: (capacity / 2).clamp(1, MAX_BATCH),
            stopped: AtomicBool::new(false),
            dropped_counter,
            logs_dropped: AtomicU64::new(0),
            logs_exported: AtomicU64::new(0),
            logs_dropped_counter,
            log: OnceLock::new(),
        }
    }

    /// Keeps an encoded server record for the next request, unless its texts
    /// grew too long or there are spares enough (then it is freed).
    fn recycle(&self, mut record: Box<ServerRecord>) {
        if record.texts.capacity() <= MAX_SPARE_TEXT_BYTES {
            // A spare holds nothing shared: not the sink (which holds this
            // queue: a cycle), not a caller's `tracestate`.
            record.context.sink = None;
            record.context.passed = None;
            let _ = self.spare_servers.push(record);
        }
    }
}

/// Where the layers put finished spans.
///
/// One reference count to clone: each request's span and trace context hold
/// one.
#[derive(Clone)]
pub(crate) struct SpanSink(Arc<Channel>);

/// The queue to the exporter thread, and what both ends count.
pub(crate) struct Channel {
    sender: SyncSender<Item>,
    shared: Arc<Shared>,
    exporter: Thread,
}

impl std::ops::Deref for SpanSink {
    type Target = Channel;

    fn deref(&self) -> &Channel {
        &self.0
    }
}

impl SpanSink {
    pub(crate) fn send(&self, item: Item) {
        if !self.enqueue(item) {
            self.drop_spans(1);
        }
    }

    /// A server record the exporter is done with, when there is one: filling
    /// it (and its texts' buffer) allocates nothing.
    pub(crate) fn spare_server_record(&self) -> Option<Box<ServerRecord>> {
        self.shared.spare_servers.pop()
    }

    /// A sink with no exporter behind it: the test takes the items.
    #[cfg(test)]
    pub(crate) fn unstarted(capacity: usize) -> (Self, Receiver<Item>) {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let sink = Self(Arc::new(Channel {
            sender,
            shared: Arc::new(Shared::new(capacity, None, None)),
            exporter: thread::current(),
        }));
        (sink, receiver)
    }

    /// What the exporter does with a server record once it is encoded.
    #[cfg(test)]
    pub(crate) fn recycle(&self, record: Box<ServerRecord>) {
        self.shared.recycle(record);
    }

    /// Queues a log record; a full queue drops and counts it as a record.
    pub(crate) fn send_log(&self, item: Item) {
        if !self.enqueue(item) {
            self.shared.drop_logs(1);
        }
    }

    /// Queues `item`, waking the exporter when a full batch waits;
    /// `false` when it did not fit (the caller counts what it lost).
    fn enqueue(&self, item: Item) -> bool {
        let queued = self.shared.queued.fetch_add(1, Relaxed) + 1;
        match self.sender.try_send(item) {
            Ok(()) => {
                if queued == self.shared.wake_at {
                    self.exporter.unpark();
                }
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Relaxed);
                self.exporter.unpark();
                false
            }
        }
    }

    #[cold]
    fn drop_spans(&self, count: u64) {
        self.shared.dropped.fetch_add(count, Relaxed);
        if let Some(counter) = &self.shared.dropped_counter {
            counter.increment(count);
        }
    }
}

impl Shared {
    #[cold]
    fn drop_logs(&self, count: u64) {
        self.logs_dropped.fetch_add(count, Relaxed);
        if let Some(counter) = &self.logs_dropped_counter {
            counter.increment(count);
        }
    }
}

/// The export pipeline's handle: counts, flush and shutdown. Cheap to clone.
#[derive(Clone)]
pub struct TraceHandle {
    sink: SpanSink,
}

impl std::fmt::Debug for TraceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceHandle")
            .field("exported_spans", &self.exported_spans())
            .field("dropped_spans", &self.dropped_spans())
            .finish()
    }
}

/// The exporter did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportTimeout;

impl std::fmt::Display for ExportTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("span export did not finish before the timeout")
    }
}

impl std::error::Error for ExportTimeout {}

impl TraceHandle {
    /// Spans dropped (queue full, or their export failed), since start. The
    /// same count as `otel_spans_dropped_total`.
    pub fn dropped_spans(&self) -> u64 {
        self.sink.shared.dropped.load(Relaxed)
    }

    /// Spans the collector accepted, since start.
    pub fn exported_spans(&self) -> u64 {
        self.sink.shared.exported.load(Relaxed)
    }

    /// Log records dropped (queue full, or their export failed), since
    /// start: `otel_logs_dropped_total`.
    pub fn dropped_log_records(&self) -> u64 {
        self.sink.shared.logs_dropped.load(Relaxed)
    }

    /// Log records the collector accepted, since start.
    pub fn exported_log_records(&self) -> u64 {
        self.sink.shared.logs_exported.load(Relaxed)
    }

    /// Export requests that failed or timed out, since start.
    pub fn failed_exports(&self) -> u64 {
        self.sink.shared.failed_exports.load(Relaxed)
    }

    /// Exports every span finished before this call, waiting at most
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), ExportTimeout> {
        let deadline = Instant::now() + timeout;
        let (done, flushed) = mpsc::sync_channel(1);
        let mut item = Item::Flush(done);
        loop {
            let sent = self.sink.sender.try_send(item);
            self.sink.exporter.unpark();
            match sent {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(ExportTimeout);
                    }
                    item = back;
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
        match flushed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => Ok(()),
            Err(RecvTimeoutError::Timeout) => Err(ExportTimeout),
        }
    }

    /// [`flush`](Self::flush)es, then stops exporting: spans finished later
    /// are dropped. For the end of the process.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), ExportTimeout> {
        let flushed = self.flush(timeout);
        self.sink.shared.stopped.store(true, Relaxed);
        self.sink.exporter.unpark();
        flushed
    }

    pub(crate) fn sink(&self) -> SpanSink {
        self.sink.clone()
    }

    /// Sends the exporter's own warnings (a failing collector) to
    /// `dispatch` rather than the global subscriber.
    pub fn log_to(&self, dispatch: &tracing::Dispatch) {
        let _ = self.sink.shared.log.set(dispatch.downgrade());
    }
}

/// Starts the exporter thread; the transport is built on it, inside its
/// runtime (tonic's channel needs one).
pub(crate) fn start(
    config: ExportConfig,
    resource: opentelemetry_sdk::Resource,
    dropped_counter: Option<metrics::Counter>,
    logs_dropped_counter: Option<metrics::Counter>,
) -> std::io::Result<TraceHandle> {
    let capacity = config.queue_capacity.max(2);
    let (sender, receiver) = mpsc::sync_channel(capacity);
    let shared = Arc::new(Shared::new(capacity, dropped_counter, logs_dropped_counter));
    let worker = Worker {
        shared: shared.clone(),
        config,
        resource,
        warned: false,
    };
    let exporter = thread::Builder::new()
        .name("observe-trace-export".to_owned())
        .spawn(move || worker.run(receiver))?
        .thread()
        .clone();
    Ok(TraceHandle {
        sink: SpanSink(Arc::new(Channel {
            sender,
            shared,
            exporter,
        })),
    })
}

struct Worker {
    shared: Arc<Shared>,
    config: ExportConfig,
    resource: opentelemetry_sdk::Resource,
    /// Whether the current run of failures has been warned about.
    warned: bool,
}

impl Worker {
    fn run(mut self, receiver: Receiver<Item>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "cannot start the span exporter's runtime; no spans will be exported");
                return;
            }
        };
        // The exporter's own HTTP and gRPC machinery logs and opens spans;
        // none of it may turn into spans to export.
        let quiet = tracing::Dispatch::none();
        let log_resource = logs::proto_resource(&self.resource);
        // Made at the first export, inside the runtime.
        let mut transport: Option<transport::Transport> = None;
        let mut log_batch = Vec::new();
        let mut batch = encode::TraceBatch::new(&self.resource);
        let mut flushes = Vec::new();
        loop {
            let disconnected = loop {
                match receiver.try_recv() {
                    Ok(Item::Flush(done)) => flushes.push(done),
                    Ok(Item::Log(record)) => {
                        self.shared.queued.fetch_sub(1, Relaxed);
                        if self.shared.stopped.load(Relaxed) {
                            self.shared.drop_logs(1);
                            continue;
                        }
                        log_batch.push(*record);
                        if log_batch.len() == MAX_BATCH {
                            let records = std::mem::take(&mut log_batch);
                            self.export_logs(
                                &runtime,
                                &quiet,
                                &mut transport,
                                &log_resource,
                                records,
                            );
                        }
                    }
                    Ok(item) => {
                        self.shared.queued.fetch_sub(1, Relaxed);
                        if self.shared.stopped.load(Relaxed) {
                            self.drop_spans(1);
                            continue;
                        }
                        if let Some(record) = batch.push(item) {
                            self.shared.recycle(record);
                        }
                        if batch.len() == MAX_BATCH {
                            self.export(&runtime, &quiet, &mut transport, &mut batch);
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if !batch.is_empty() {
                self.export(&runtime, &quiet, &mut transport, &mut batch);
            }
            if !log_batch.is_empty() {
                let records = std::mem::take(&mut log_batch);
                self.export_logs(&runtime, &quiet, &mut transport, &log_resource, records);
            }
            for done in flushes.drain(..) {
                let _ = done.try_send(());
            }
            if disconnected {
                return;
            }
            thread::park_timeout(EXPORT_INTERVAL);
        }
    }

    fn export(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        quiet: &tracing::Dispatch,
        transport: &mut Option<transport::Transport>,
        batch: &mut encode::TraceBatch,
    ) {
        let count = batch.len() as u64;
        let body = batch.take_request();
        match self.send(runtime, quiet, transport, transport::Signal::Traces, body) {
            Ok(()) => {
                self.shared.exported.fetch_add(count, Relaxed);
                if self.warned {
                    self.warned = false;
                    self.log(|| {
                        tracing::info!(endpoint = %self.config.endpoint, "span export works again");
                    });
                }
            }
            Err(error) => self.failed(transport::Signal::Traces, count, &error),
        }
    }

    /// Sends one encoded request within the export timeout, making the
    /// transport first if need be.
    fn send(
        &self,
        runtime: &tokio::runtime::Runtime,
        quiet: &tracing::Dispatch,
        transport: &mut Option<transport::Transport>,
        signal: transport::Signal,
        body: bytes::Bytes,
    ) -> Result<(), String> {
        let timeout = self.config.timeout;
        tracing::dispatcher::with_default(quiet, || {
            let _runtime = runtime.enter();
            let transport = match transport {
                Some(transport) => transport,
                None => transport.insert(transport::Transport::new(&self.config)?),
            };
            runtime.block_on(async {
                tokio::time::timeout(timeout, transport.send(signal, body))
                    .await
                    .unwrap_or_else(|_| Err("timed out".to_owned()))
            })
        })
    }

    fn export_logs(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        quiet: &tracing::Dispatch,
        transport: &mut Option<transport::Transport>,
        resource: &opentelemetry_proto::tonic::resource::v1::Resource,
        records: Vec<logs::LogItem>,
    ) {
        let count = records.len() as u64;
        let body = bytes::Bytes::from(logs::request(resource, records).encode_to_vec());
        let outcome = self.send(runtime, quiet, transport, transport::Signal::Logs, body);
        match outcome {
            Ok(()) => {
                self.shared.logs_exported.fetch_add(count, Relaxed);
            }
            Err(error) => self.failed(transport::Signal::Logs, count, &error),
        }
    }

    /// Drops and counts what a failed export carried; warns once per run
    /// of failures.
    fn failed(&mut self, signal: transport::Signal, count: u64, error: &str) {
        self.shared.failed_exports.fetch_add(1, Relaxed);
        match signal {
            transport::Signal::Traces => self.drop_spans(count),
            transport::Signal::Logs => self.shared.drop_logs(count),
        }
        if !self.warned {
            self.warned = true;
            self.log(|| match signal {
                transport::Signal::Traces => tracing::warn!(
                    endpoint = %self.config.endpoint,
                    error,
                    dropped_spans = count,
                    "span export failed; spans are dropped and counted in otel_spans_dropped_total until it works again"
                ),
                transport::Signal::Logs => tracing::warn!(
                    endpoint = %self.config.endpoint,
                    error,
                    dropped_log_records = count,
                    "log export failed; records are dropped and counted in otel_logs_dropped_total until it works again"
                ),
            });
        }
    }

    fn log(&self, event: impl FnOnce()) {
        match self
            .shared
            .log
            .get()
            .and_then(tracing::dispatcher::WeakDispatch::upgrade)
        {
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, event),
            None => event(),
        }
    }

    fn drop_spans(&self, count: u64) {
        self.shared.dropped.fetch_add(count, Relaxed);
        if let Some(counter) = &self.shared.dropped_counter {
            counter.increment(count);
        }
    }
}
