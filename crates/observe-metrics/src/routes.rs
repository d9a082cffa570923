//! The HTTP series, kept in atomics this crate owns and written into the
//! scrape by [`RouteTable::render`].
//!
//! They are the hot path: every request touches them. Through the `metrics`
//! facade each update is a dynamic call into a generational handle (two
//! atomic operations for a counter, a compare-and-swap loop for a gauge, an
//! append to a sample list for a histogram); here a request costs five
//! uncontended atomic additions and no lock, no allocation and no hashing
//! beyond finding its route. Everything else (`errors_total`,
//! `active_connections`, the application's own metrics) goes through the
//! `metrics-exporter-prometheus` recorder, and both render in one scrape.
//!
//! Routes live in a fixed open-addressed table of write-once slots: a lookup
//! is a hash of the route template and one or two atomic loads. A router has
//! a bounded number of routes; past [`ROUTE_SLOTS`] they go to a locked map.

use std::{
    collections::HashMap,
    fmt::Write,
    hash::BuildHasher,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{
            AtomicI64, AtomicU16, AtomicU64,
            Ordering::{AcqRel, Acquire, Relaxed},
        },
    },
};

use metrics::{Gauge, Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::PrometheusRecorder;
use observe_errors::ErrorReport;

use crate::{
    UNMATCHED_ENDPOINT,
    naming::{ACTIVE_CONNECTIONS, ERRORS_TOTAL, METHODS, Naming, REQUESTS_TOTAL},
    red::{RedWindow, Totals},
};

pub(crate) static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Route slots of the lock-free table.
const ROUTE_SLOTS: usize = 1024;

/// Status slots per method and route: a route rarely answers more than a
/// handful of statuses. Further ones go to a locked list.
const STATUS_SLOTS: usize = 8;

const REQUESTS_HELP: &str = "HTTP requests finished, by method, route template and status code.";
const DURATION_HELP: &str = "Time from receiving an HTTP request to its response head, in seconds.";
const IN_FLIGHT_HELP: &str = "HTTP requests being handled now.";

/// What every route records into, and the registry around it.
pub(crate) struct Sink {
    pub(crate) recorder: Arc<PrometheusRecorder>,
    pub(crate) naming: Naming,
    pub(crate) service: SharedString,
    /// Bucket upper bounds in nanoseconds, for recording.
    bounds: Box<[u64]>,
    /// The same as `le` label values, for rendering.
    bound_labels: Box<[String]>,
}

impl Sink {
    pub(crate) fn new(
        recorder: Arc<PrometheusRecorder>,
        naming: Naming,
        service: String,
        buckets: &[f64],
    ) -> Self {
        recorder.describe_counter(
            ERRORS_TOTAL.into(),
            Some(Unit::Count),
            "Errors reported by the service (handler errors, rejections and panics), by type."
                .into(),
        );
        recorder.describe_gauge(
            ACTIVE_CONNECTIONS.into(),
            Some(Unit::Count),
            "Open TCP connections to the HTTP server.".into(),
        );
        Self {
            recorder,
            naming,
            service: service.into(),
            bounds: buckets
                .iter()
                .map(|seconds| (seconds * 1e9).round() as u64)
                .collect(),
            bound_labels: buckets.iter().map(|seconds| seconds.to_string()).collect(),
        }
    }

    pub(crate) fn bucket_count(&self) -> usize {
        self.bounds.len() + 1
    }

    pub(crate) fn bounds_seconds(&self) -> impl Iterator<Item = f64> + '_ {
        self.bounds.iter().map(|nanos| *nanos as f64 / 1e9)
    }

    pub(crate) fn active_connections(&self) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_static_name(ACTIVE_CONNECTIONS), &METADATA)
    }

    #[cold]
    fn count_error(&self, report: &ErrorReport) {
        let labels = vec![
            Label::new("error_type", report.error_type().to_owned()),
            Label::new("service", self.service.clone()),
        ];
        self.recorder
            .register_counter(&Key::from_parts(ERRORS_TOTAL, labels), &METADATA)
            .increment(1);
    }
}

/// Every route's series.
pub(crate) struct RouteTable {
    slots: Box<[OnceLock<Arc<Endpoint>>]>,
    overflow: Mutex<HashMap<Box<str>, Arc<Endpoint>>>,
    unmatched: Arc<Endpoint>,
    sink: Arc<Sink>,
    pub(crate) red: RedWindow,
}

impl RouteTable {
    pub(crate) fn new(sink: Arc<Sink>) -> Self {
        let red = RedWindow::new(sink.bucket_count());
        Self {
            slots: (0..ROUTE_SLOTS).map(|_| OnceLock::new()).collect(),
            overflow: Mutex::default(),
            unmatched: Arc::new(Endpoint::new(UNMATCHED_ENDPOINT, &sink)),
            sink,
            red,
        }
    }

    pub(crate) fn sink(&self) -> &Arc<Sink> {
        &self.sink
    }

    /// The series of a route template, `None` for unmatched requests.
    pub(crate) fn endpoint(&self, route: Option<&str>) -> Arc<Endpoint> {
        let Some(route) = route else {
            return self.unmatched.clone();
        };
        let start = foldhash::fast::FixedState::default().hash_one(route) as usize;
        for probe in 0..ROUTE_SLOTS {
            let slot = &self.slots[(start + probe) % ROUTE_SLOTS];
            let endpoint = match slot.get() {
                Some(endpoint) => endpoint,
                None => slot.get_or_init(|| Arc::new(Endpoint::new(route, &self.sink))),
            };
            if &*endpoint.route == route {
                return endpoint.clone();
            }
        }
        self.overflowed(route)
    }

    #[cold]
    fn overflowed(&self, route: &str) -> Arc<Endpoint> {
        let mut overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        overflow
            .entry(route.into())
            .or_insert_with(|| Arc::new(Endpoint::new(route, &self.sink)))
            .clone()
    }

    fn for_each_endpoint(&self, mut f: impl FnMut(&Endpoint)) {
        f(&self.unmatched);
        for endpoint in self.slots.iter().filter_map(OnceLock::get) {
            f(endpoint);
        }
        let overflow = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        for endpoint in overflow.values() {
            f(endpoint);
        }
    }

    /// Every series' sum so far, for the RED window.
    pub(crate) fn totals(&self) -> Totals {
        let mut totals = Totals::new(self.sink.bucket_count());
        let naming = self.sink.naming;
        self.for_each_endpoint(|endpoint| {
            for series in endpoint.methods.iter().filter_map(OnceLock::get) {
                if let Some(cells) = &series.duration {
                    cells.add_to(&mut totals);
                }
                series.for_each_status(|status, cell| {
                    let requests = match (naming, &cell.duration) {
                        (Naming::OtelSemconv, Some(cells)) => cells.add_to(&mut totals),
                        _ => cell.requests.load(Relaxed),
                    };
                    totals.requests += requests;
                    if status >= 500 {
                        totals.errors += requests;
                    }
                });
            }
        });
        totals
    }

    /// Writes the HTTP series in the Prometheus text format.
    pub(crate) fn render(&self, text: &mut String) {
        let names = self.sink.naming.names();
        let mut family = Family::new(text);
        if self.sink.naming == Naming::Prometheus {
            family.start(REQUESTS_TOTAL, "counter", REQUESTS_HELP);
            self.for_each_endpoint(|endpoint| {
                endpoint.for_each_method(|method, series| {
                    series.for_each_status(|status, cell| {
                        family.sample(
                            REQUESTS_TOTAL,
                            &[(names.method, method), (names.route, &endpoint.label)],
                            Some((names.status, status)),
                            cell.requests.load(Relaxed),
                        );
                    });
                });
            });
        }
        family.start(names.duration, "histogram", DURATION_HELP);
        self.for_each_endpoint(|endpoint| {
            endpoint.for_each_method(|method, series| {
                let labels = [
                    (names.method, method),
                    (names.route, endpoint.label.as_str()),
                ];
                if let Some(cells) = &series.duration {
                    family.histogram(names.duration, &labels, None, cells, &self.sink);
                }
                series.for_each_status(|status, cell| {
                    if let Some(cells) = &cell.duration {
                        family.histogram(
                            names.duration,
                            &labels,
                            Some((names.status, status)),
                            cells,
                            &self.sink,
                        );
                    }
                });
            });
        });
        family.start(names.in_flight, "gauge", IN_FLIGHT_HELP);
        self.for_each_endpoint(|endpoint| {
            endpoint.for_each_method(|method, series| {
                family.sample(
                    names.in_flight,
                    &[(names.method, method), (names.route, &endpoint.label)],
                    None,
                    series.in_flight.load(Relaxed),
                );
            });
        });
    }
}

/// One route template's series, per method.
pub(crate) struct Endpoint {
    route: Box<str>,
    /// The route escaped as a label value.
    label: String,
    methods: [OnceLock<MethodSeries>; METHODS.len()],
    sink: Arc<Sink>,
}

struct MethodSeries {
    in_flight: AtomicI64,
    /// The duration histogram when it is not labelled by status.
    duration: Option<Cells>,
    statuses: [StatusCell; STATUS_SLOTS],
    more_statuses: Mutex<Vec<Arc<StatusCell>>>,
}

struct StatusCell {
    /// The status this cell counts, 0 while free.
    status: AtomicU16,
    requests: AtomicU64,
    /// The duration histogram when it is labelled by status.
    duration: Option<Cells>,
}

/// A histogram: counts per bucket (the last one past every bound) and the
/// sum of the observations in nanoseconds.
struct Cells {
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Endpoint {
    fn new(route: &str, sink: &Arc<Sink>) -> Self {
        Self {
            route: route.into(),
            label: escape_label(route),
            methods: std::array::from_fn(|_| OnceLock::new()),
            sink: sink.clone(),
        }
    }

    /// A request has started.
    pub(crate) fn start(&self, method: usize) {
        self.series(method).in_flight.fetch_add(1, Relaxed);
    }

    /// A request has finished, or was dropped unfinished, after `nanos`.
    pub(crate) fn finish(
        &self,
        method: usize,
        status: u16,
        nanos: u64,
        report: Option<&ErrorReport>,
    ) {
        let series = self.series(method);
        series.in_flight.fetch_sub(1, Relaxed);
        let bucket = self
            .sink
            .bounds
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(self.sink.bounds.len());
        if let Some(cells) = &series.duration {
            cells.record(bucket, nanos);
        }
        match series.status_cell(status) {
            Some(cell) => cell.record(bucket, nanos),
            None => self.more_status(series, status).record(bucket, nanos),
        }
        if let Some(report) = report {
            self.sink.count_error(report);
        }
    }

    fn series(&self, method: usize) -> &MethodSeries {
        self.methods[method].get_or_init(|| MethodSeries::new(&self.sink))
    }

    #[cold]
    fn more_status(&self, series: &MethodSeries, status: u16) -> Arc<StatusCell> {
        let mut more = series
            .more_statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = more.iter().find(|cell| cell.status.load(Relaxed) == status) {
            return cell.clone();
        }
        let cell = Arc::new(StatusCell::new(&self.sink));
        cell.status.store(status, Relaxed);
        more.push(cell.clone());
        cell
    }

    fn for_each_method(&self, mut f: impl FnMut(&'static str, &MethodSeries)) {
        for (method, series) in METHODS.iter().zip(&self.methods) {
            if let Some(series) = series.get() {
                f(method, series);
            }
        }
    }
}

impl MethodSeries {
    fn new(sink: &Sink) -> Self {
        Self {
            in_flight: AtomicI64::new(0),
            duration: (sink.naming == Naming::Prometheus).then(|| Cells::new(sink)),
            statuses: std::array::from_fn(|_| StatusCell::new(sink)),
            more_statuses: Mutex::default(),
        }
    }

    /// The cell of `status`, claiming a free one the first time.
    fn status_cell(&self, status: u16) -> Option<&StatusCell> {
        for cell in &self.statuses {
            let mut held = cell.status.load(Acquire);
            if held == 0 {
                held = match cell.status.compare_exchange(0, status, AcqRel, Acquire) {
                    Ok(_) => status,
                    Err(other) => other,
                };
            }
            if held == status {
                return Some(cell);
            }
        }
        None
    }

    fn for_each_status(&self, mut f: impl FnMut(u16, &StatusCell)) {
        for cell in &self.statuses {
            match cell.status.load(Acquire) {
                0 => break,
                status => f(status, cell),
            }
        }
        let more = self
            .more_statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for cell in more.iter() {
            f(cell.status.load(Relaxed), cell);
        }
    }
}

impl StatusCell {
    fn new(sink: &Sink) -> Self {
        Self {
            status: AtomicU16::new(0),
            requests: AtomicU64::new(0),
            duration: (sink.naming == Naming::OtelSemconv).then(|| Cells::new(sink)),
        }
    }

    fn record(&self, bucket: usize, nanos: u64) {
        match &self.duration {
            Some(cells) => cells.record(bucket, nanos),
            None => {
                self.requests.fetch_add(1, Relaxed);
            }
        }
    }
}

impl Cells {
    fn new(sink: &Sink) -> Self {
        Self {
            buckets: (0..sink.bucket_count())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn record(&self, bucket: usize, nanos: u64) {
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Adds the bucket counts to `totals`, and the durations' sum; returns
    /// the count.
    fn add_to(&self, totals: &mut Totals) -> u64 {
        totals.duration_nanos = totals
            .duration_nanos
            .wrapping_add(self.sum_nanos.load(Relaxed));
        let sums = &mut totals.buckets;
        let mut total = 0;
        for (sum, bucket) in sums.iter_mut().zip(&self.buckets) {
            let count = bucket.load(Relaxed);
            *sum += count;
            total += count;
        }
        total
    }
}

/// Writes metric families in the Prometheus text format.
struct Family<'a> {
    text: &'a mut String,
}

impl<'a> Family<'a> {
    fn new(text: &'a mut String) -> Self {
        Self { text }
    }

    fn start(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = write!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    fn labels(&mut self, labels: &[(&str, &str)], status: Option<(&str, u16)>) {
        self.text.push('{');
        for (index, (key, value)) in labels.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{key}=\"{value}\"");
        }
        if let Some((key, status)) = status {
            let _ = write!(self.text, ",{key}=\"{status}\"");
        }
    }

    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        status: Option<(&str, u16)>,
        value: impl std::fmt::Display,
    ) {
        self.text.push_str(name);
        self.labels(labels, status);
        let _ = writeln!(self.text, "}} {value}");
    }

    fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        status: Option<(&str, u16)>,
        cells: &Cells,
        sink: &Sink,
    ) {
        let mut cumulative = 0;
        for (index, bucket) in cells.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = sink.bound_labels.get(index).map_or("+Inf", String::as_str);
            let _ = write!(self.text, "{name}_bucket");
            self.labels(labels, status);
            let _ = writeln!(self.text, ",le=\"{le}\"}} {cumulative}");
        }
        let sum = cells.sum_nanos.load(Relaxed) as f64 / 1e9;
        let _ = write!(self.text, "{name}_sum");
        self.labels(labels, status);
        let _ = writeln!(self.text, "}} {sum}");
        let _ = write!(self.text, "{name}_count");
        self.labels(labels, status);
        let _ = writeln!(self.text, "}} {cumulative}");
    }
}

/// A label value as the text format needs it: backslash, double quote and
/// line feed escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    #[test]
    fn counts_stay_exact_under_concurrent_requests_and_scrapes() {
        const THREADS: u64 = 4;
        const EACH: u64 = 100_000;
        let metrics = Metrics::new();
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let metrics = &metrics;
                scope.spawn(move || {
                    let endpoint = metrics.routes().endpoint(Some("/api/{id}"));
                    for i in 0..EACH {
                        endpoint.start(0);
                        let status = if (i + thread) % 10 == 0 { 500 } else { 200 };
                        endpoint.finish(0, status, i % 2_000_000, None);
                    }
                });
            }
            // Scrapes and RED totals while the requests are being recorded.
            for _ in 0..20 {
                let _ = metrics.render();
                let _ = metrics.routes().totals();
            }
        });
        let text = metrics.render();
        let line = |series: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(series))
                .unwrap_or_else(|| panic!("no {series} in {text}"))
                .to_owned()
        };
        let total = THREADS * EACH;
        assert_eq!(
            line(r#"http_requests_total{method="GET",endpoint="/api/{id}",status_code="200"} "#),
            (total - total / 10).to_string()
        );
        assert_eq!(
            line(r#"http_requests_total{method="GET",endpoint="/api/{id}",status_code="500"} "#),
            (total / 10).to_string()
        );
        assert_eq!(
            line(r#"http_request_duration_seconds_count{method="GET",endpoint="/api/{id}"} "#),
            total.to_string()
        );
        assert_eq!(
            line(r#"http_requests_in_flight{method="GET",endpoint="/api/{id}"} "#),
            "0"
        );
        let totals = metrics.routes().totals();
        assert_eq!((totals.requests, totals.errors), (total, total / 10));
        assert_eq!(totals.buckets.iter().sum::<u64>(), total);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"/a"b\c"#), r#"/a\"b\\c"#);
        assert_eq!(escape_label("/a\nb"), "/a\\nb");
        assert_eq!(escape_label("/api/v1/{id}"), "/api/v1/{id}");
    }
}
