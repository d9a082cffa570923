//! The handles of every series, registered once and found again without a
//! lock or an allocation.
//!
//! Endpoints live in a copy-on-write map: a request reads it with one atomic
//! load, and a route seen for the first time copies it (a router has a bounded
//! number of routes, so this happens a bounded number of times). Each endpoint
//! keeps one slot per method, and each method a short copy-on-write list of the
//! statuses it has answered.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Instant,
};

use arc_swap::ArcSwap;
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::PrometheusRecorder;
use observe_errors::ErrorReport;

use crate::{
    UNMATCHED_ENDPOINT,
    naming::{ACTIVE_CONNECTIONS, ERRORS_TOTAL, METHODS, Naming, REQUESTS_TOTAL},
    red::RedWindow,
};

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// What every endpoint records into.
pub(crate) struct Sink {
    pub(crate) recorder: Arc<PrometheusRecorder>,
    pub(crate) naming: Naming,
    pub(crate) service: SharedString,
    pub(crate) red: RedWindow,
}

impl Sink {
    pub(crate) fn new(recorder: Arc<PrometheusRecorder>, naming: Naming, service: String) -> Self {
        let sink = Self {
            recorder,
            naming,
            service: service.into(),
            red: RedWindow::new(),
        };
        sink.describe();
        sink
    }

    fn describe(&self) {
        let names = self.naming.names();
        let recorder = &self.recorder;
        if self.naming == Naming::Prometheus {
            recorder.describe_counter(
                REQUESTS_TOTAL.into(),
                Some(Unit::Count),
                "HTTP requests finished, by method, route template and status code.".into(),
            );
        }
        recorder.describe_histogram(
            names.duration.into(),
            Some(Unit::Seconds),
            "Time from receiving an HTTP request to its response head, in seconds.".into(),
        );
        recorder.describe_gauge(
            names.in_flight.into(),
            Some(Unit::Count),
            "HTTP requests being handled now.".into(),
        );
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

/// Every endpoint's series.
pub(crate) struct RouteTable {
    endpoints: ArcSwap<HashMap<Box<str>, Arc<Endpoint>>>,
    unmatched: Arc<Endpoint>,
    sink: Arc<Sink>,
}

impl RouteTable {
    pub(crate) fn new(sink: Arc<Sink>) -> Self {
        Self {
            endpoints: ArcSwap::default(),
            unmatched: Arc::new(Endpoint::new(UNMATCHED_ENDPOINT, sink.clone())),
            sink,
        }
    }

    pub(crate) fn sink(&self) -> &Arc<Sink> {
        &self.sink
    }

    /// The endpoint of a route template, `None` for unmatched requests.
    pub(crate) fn endpoint(&self, route: Option<&str>) -> Arc<Endpoint> {
        let Some(route) = route else {
            return self.unmatched.clone();
        };
        if let Some(endpoint) = self.endpoints.load().get(route) {
            return endpoint.clone();
        }
        self.add(route)
    }

    #[cold]
    fn add(&self, route: &str) -> Arc<Endpoint> {
        let mut added = None;
        self.endpoints.rcu(|endpoints| {
            let mut endpoints = HashMap::clone(endpoints);
            let endpoint = endpoints
                .entry(route.into())
                .or_insert_with(|| Arc::new(Endpoint::new(route, self.sink.clone())))
                .clone();
            added = Some(endpoint);
            endpoints
        });
        added.unwrap_or_else(|| Arc::new(Endpoint::new(route, self.sink.clone())))
    }
}

/// One route template's series, per method.
pub(crate) struct Endpoint {
    route: SharedString,
    methods: [OnceLock<MethodSeries>; METHODS.len()],
    sink: Arc<Sink>,
}

struct MethodSeries {
    in_flight: Gauge,
    /// The duration histogram when it is not labelled by status.
    duration: Option<Histogram>,
    statuses: ArcSwap<Vec<(u16, StatusSeries)>>,
}

#[derive(Clone)]
struct StatusSeries {
    requests: Option<Counter>,
    /// The duration histogram when it is labelled by status.
    duration: Option<Histogram>,
}

impl StatusSeries {
    fn record(&self, seconds: f64) {
        if let Some(counter) = &self.requests {
            counter.increment(1);
        }
        if let Some(histogram) = &self.duration {
            histogram.record(seconds);
        }
    }
}

impl Endpoint {
    fn new(route: &str, sink: Arc<Sink>) -> Self {
        Self {
            route: route.to_owned().into(),
            methods: std::array::from_fn(|_| OnceLock::new()),
            sink,
        }
    }

    /// A request has started.
    pub(crate) fn start(&self, method: usize) {
        self.series(method).in_flight.increment(1.0);
    }

    /// A request has finished, or was dropped unfinished.
    pub(crate) fn finish(
        &self,
        method: usize,
        status: u16,
        started: Instant,
        report: Option<&ErrorReport>,
    ) {
        let finished = Instant::now();
        let duration = finished.saturating_duration_since(started);
        let series = self.series(method);
        series.in_flight.decrement(1.0);
        let seconds = duration.as_secs_f64();
        if let Some(histogram) = &series.duration {
            histogram.record(seconds);
        }
        let statuses = series.statuses.load();
        match statuses.iter().find(|(code, _)| *code == status) {
            Some((_, known)) => known.record(seconds),
            None => {
                drop(statuses);
                self.add_status(method, series, status).record(seconds);
            }
        }
        self.sink.red.record(finished, duration, status >= 500);
        if let Some(report) = report {
            self.sink.count_error(report);
        }
    }

    fn series(&self, method: usize) -> &MethodSeries {
        self.methods[method].get_or_init(|| self.register(method))
    }

    #[cold]
    fn register(&self, method: usize) -> MethodSeries {
        let sink = &self.sink;
        let names = sink.naming.names();
        let labels = self.labels(method, None);
        let in_flight = sink
            .recorder
            .register_gauge(&Key::from_parts(names.in_flight, labels.clone()), &METADATA);
        let duration = (sink.naming == Naming::Prometheus).then(|| {
            sink.recorder
                .register_histogram(&Key::from_parts(names.duration, labels), &METADATA)
        });
        MethodSeries {
            in_flight,
            duration,
            statuses: ArcSwap::default(),
        }
    }

    #[cold]
    fn add_status(&self, method: usize, series: &MethodSeries, status: u16) -> StatusSeries {
        let sink = &self.sink;
        let names = sink.naming.names();
        let labels = self.labels(method, Some(status));
        let made = match sink.naming {
            Naming::Prometheus => StatusSeries {
                requests: Some(
                    sink.recorder
                        .register_counter(&Key::from_parts(REQUESTS_TOTAL, labels), &METADATA),
                ),
                duration: None,
            },
            Naming::OtelSemconv => StatusSeries {
                requests: None,
                duration: Some(
                    sink.recorder
                        .register_histogram(&Key::from_parts(names.duration, labels), &METADATA),
                ),
            },
        };
        series.statuses.rcu(|statuses| {
            let mut statuses = Vec::clone(statuses);
            if !statuses.iter().any(|(code, _)| *code == status) {
                statuses.push((status, made.clone()));
            }
            statuses
        });
        made
    }

    fn labels(&self, method: usize, status: Option<u16>) -> Vec<Label> {
        let names = self.sink.naming.names();
        let mut labels = vec![
            Label::from_static_parts(names.method, METHODS[method]),
            Label::new(names.route, self.route.clone()),
        ];
        if let Some(status) = status {
            labels.push(Label::new(names.status, status.to_string()));
        }
        labels
    }
}
