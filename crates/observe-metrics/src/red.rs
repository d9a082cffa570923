//! The rolling RED window: rate, errors and duration over the last minutes,
//! kept in process so alerting can read it without a Prometheus.
//!
//! Requests pay nothing for it: once a second the registry's ticker sums the
//! cumulative HTTP series into a [`Totals`] and keeps the last five minutes of
//! them. A window is the difference between the totals now and those of its
//! start, and its quantiles are read off the histogram buckets by linear
//! interpolation, as Prometheus's `histogram_quantile` does, so they agree
//! with the dashboards built on the same buckets.

use std::{
    collections::VecDeque,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How much history is kept: five minutes.
pub(crate) const HISTORY: Duration = Duration::from_secs(300);

/// Request rate, error rate and duration quantiles over a recent window, from
/// [`Metrics::red`](crate::Metrics::red).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedSnapshot {
    /// The window these figures cover: shorter than asked while the process
    /// is younger than the window.
    pub window: Duration,
    /// Requests finished in the window (aborted ones included).
    pub requests: u64,
    /// Of those, the ones answered with a 5xx status.
    pub errors: u64,
    /// Requests per second.
    pub request_rate: f64,
    /// `errors / requests`, 0 without requests.
    pub error_rate: f64,
    /// Mean duration: the histogram's sum over its count, as
    /// `rate(_sum) / rate(_count)` gives it; zero without requests.
    pub mean: Duration,
    /// Median duration, estimated from the histogram buckets; zero without
    /// requests.
    pub p50: Duration,
    /// 95th percentile duration.
    pub p95: Duration,
    /// 99th percentile duration.
    pub p99: Duration,
}

/// Cumulative counts of every HTTP series at one moment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Duration bucket counts, not cumulative; the last is past every bound.
    pub(crate) buckets: Vec<u64>,
    /// The sum of every duration observed, in nanoseconds.
    pub(crate) duration_nanos: u64,
}

impl Totals {
    pub(crate) fn new(buckets: usize) -> Self {
        Self {
            requests: 0,
            errors: 0,
            buckets: vec![0; buckets],
            duration_nanos: 0,
        }
    }

    fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            duration_nanos: self.duration_nanos.wrapping_sub(earlier.duration_nanos),
        }
    }
}

pub(crate) struct RedWindow {
    history: Mutex<VecDeque<(Instant, Totals)>>,
}

impl RedWindow {
    pub(crate) fn new(buckets: usize) -> Self {
        Self {
            history: Mutex::new(VecDeque::from([(Instant::now(), Totals::new(buckets))])),
        }
    }

    /// Keeps `totals`, taken `at`; forgets what is older than the history.
    pub(crate) fn tick(&self, at: Instant, totals: Totals) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.push_back((at, totals));
        while history.len() > 2
            && history
                .get(1)
                .is_some_and(|(second, _)| at.saturating_duration_since(*second) >= HISTORY)
        {
            history.pop_front();
        }
    }

    /// The window ending `now`, with `totals` the counts at `now`.
    pub(crate) fn snapshot(
        &self,
        now: Instant,
        totals: &Totals,
        window: Duration,
        bounds: impl Iterator<Item = f64>,
    ) -> RedSnapshot {
        let window = window.min(HISTORY);
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // The oldest totals inside the window; the oldest of all when the
        // process is younger than the window.
        let start = history
            .iter()
            .find(|(at, _)| now.saturating_duration_since(*at) <= window)
            .or_else(|| history.back());
        let Some((started, earlier)) = start else {
            return RedSnapshot::empty(window);
        };
        let covered = now
            .saturating_duration_since(*started)
            .max(Duration::from_millis(1));
        let delta = totals.since(earlier);
        drop(history);
        let bounds: Vec<f64> = bounds.collect();
        summarize(&delta, covered, &bounds)
    }

    /// The last `span` in steps of `step`, oldest first: the figures of each
    /// step, the last one ending `now` with `totals`.
    pub(crate) fn series(
        &self,
        now: Instant,
        totals: &Totals,
        span: Duration,
        step: Duration,
        bounds: impl Iterator<Item = f64>,
    ) -> Vec<RedPoint> {
        let bounds: Vec<f64> = bounds.collect();
        let step = step.max(RED_STEP_MIN);
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // Step boundaries walking back from now, each at the newest tick
        // not after it.
        let mut marks: Vec<(Instant, &Totals)> = vec![(now, totals)];
        let mut boundary = now;
        while now.saturating_duration_since(boundary) + step <= span.min(HISTORY) {
            boundary = match boundary.checked_sub(step) {
                Some(earlier) => earlier,
                None => break,
            };
            // Younger than the span: the last step starts at the oldest tick.
            let Some((at, tick)) = history
                .iter()
                .rev()
                .find(|(at, _)| *at <= boundary)
                .or_else(|| history.front())
            else {
                break;
            };
            if marks.last().is_some_and(|(last, _)| *last == *at) {
                break;
            }
            marks.push((*at, tick));
        }
        marks
            .windows(2)
            .rev()
            .map(|pair| {
                let ((later_at, later), (earlier_at, earlier)) = (pair[0], pair[1]);
                let covered = later_at
                    .saturating_duration_since(earlier_at)
                    .max(Duration::from_millis(1));
                RedPoint {
                    ago: now.saturating_duration_since(later_at),
                    red: summarize(&later.since(earlier), covered, &bounds),
                }
            })
            .collect()
    }
}

/// The shortest step of a series: the tick.
const RED_STEP_MIN: Duration = Duration::from_secs(1);

/// One step of [`Metrics::red_series`](crate::Metrics::red_series).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedPoint {
    /// How long before now the step ended.
    pub ago: Duration,
    /// Its figures.
    pub red: RedSnapshot,
}

fn summarize(delta: &Totals, covered: Duration, bounds: &[f64]) -> RedSnapshot {
    RedSnapshot {
        window: covered,
        requests: delta.requests,
        errors: delta.errors,
        request_rate: delta.requests as f64 / covered.as_secs_f64(),
        error_rate: if delta.requests == 0 {
            0.0
        } else {
            delta.errors as f64 / delta.requests as f64
        },
        mean: Duration::from_nanos(
            delta
                .duration_nanos
                .checked_div(delta.buckets.iter().sum())
                .unwrap_or(0),
        ),
        p50: quantile(&delta.buckets, bounds, 0.50),
        p95: quantile(&delta.buckets, bounds, 0.95),
        p99: quantile(&delta.buckets, bounds, 0.99),
    }
}

impl RedSnapshot {
    fn empty(window: Duration) -> Self {
        Self {
            window,
            requests: 0,
            errors: 0,
            request_rate: 0.0,
            error_rate: 0.0,
            mean: Duration::ZERO,
            p50: Duration::ZERO,
            p95: Duration::ZERO,
            p99: Duration::ZERO,
        }
    }
}

/// The `q` quantile of bucket counts with upper `bounds` (seconds), by linear
/// interpolation inside the bucket; observations past the last bound are
/// reported as the last bound, as `histogram_quantile` does.
fn quantile(buckets: &[u64], bounds: &[f64], q: f64) -> Duration {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return Duration::ZERO;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (index, count) in buckets.iter().enumerate() {
        let through = below + count;
        if through as f64 >= rank && *count > 0 {
            let Some(upper) = bounds.get(index) else {
                break;
            };
            let lower = if index == 0 { 0.0 } else { bounds[index - 1] };
            let within = (rank - below as f64) / *count as f64;
            return Duration::from_secs_f64(lower + (upper - lower) * within);
        }
        below = through;
    }
    Duration::from_secs_f64(bounds.last().copied().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

    fn totals(requests: u64, errors: u64, buckets: [u64; 5]) -> Totals {
        Totals {
            requests,
            errors,
            buckets: buckets.to_vec(),
            // 5 ms a request.
            duration_nanos: requests * 5_000_000,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_buckets_as_prometheus_does() {
        // 100 requests: 50 up to 10 ms, 40 up to 100 ms, 10 up to 1 s.
        let buckets = [50, 40, 10, 0, 0];
        let close = |d: Duration, secs: f64| (d.as_secs_f64() - secs).abs() < 1e-9;
        assert!(close(quantile(&buckets, &BOUNDS, 0.5), 0.01));
        // Rank 95: the fifth of ten in (0.1, 1].
        assert!(close(quantile(&buckets, &BOUNDS, 0.95), 0.1 + 0.9 * 0.5));
        assert!(close(quantile(&buckets, &BOUNDS, 0.25), 0.005));
        // Past the last bound: the last bound.
        assert!(close(quantile(&[0, 0, 0, 0, 3], &BOUNDS, 0.99), 10.0));
        assert_eq!(quantile(&[0; 5], &BOUNDS, 0.99), Duration::ZERO);
    }

    #[test]
    fn a_window_is_the_difference_since_its_start() {
        let window = RedWindow::new(5);
        let start = window.history.lock().unwrap()[0].0;
        window.tick(
            start + Duration::from_secs(10),
            totals(100, 1, [90, 10, 0, 0, 0]),
        );
        window.tick(
            start + Duration::from_secs(200),
            totals(300, 11, [280, 20, 0, 0, 0]),
        );
        let now = start + Duration::from_secs(250);
        let current = totals(400, 21, [380, 20, 0, 0, 0]);

        // The last minute starts at the tick of second 200.
        let minute = window.snapshot(now, &current, Duration::from_secs(60), BOUNDS.into_iter());
        assert_eq!((minute.requests, minute.errors), (100, 10));
        assert_eq!(minute.window, Duration::from_secs(50));
        assert_eq!(minute.request_rate, 2.0);
        assert_eq!(minute.error_rate, 0.1);
        assert_eq!(minute.mean, Duration::from_millis(5));

        // Five minutes reach back to the start.
        let five = window.snapshot(now, &current, Duration::from_secs(300), BOUNDS.into_iter());
        assert_eq!((five.requests, five.errors), (400, 21));
        assert_eq!(five.window, Duration::from_secs(250));
        assert!(five.p99 > Duration::from_millis(10) && five.p99 <= Duration::from_millis(100));
    }

    #[test]
    fn a_series_has_a_point_per_step_with_its_own_figures() {
        let window = RedWindow::new(5);
        let start = window.history.lock().unwrap()[0].0;
        // 10 requests a second for 60 s, the last 20 s with 2 errors a second.
        for second in 1..=60u64 {
            let errors = second.saturating_sub(40) * 2;
            window.tick(
                start + Duration::from_secs(second),
                totals(second * 10, errors, [second * 10, 0, 0, 0, 0]),
            );
        }
        let now = start + Duration::from_secs(60);
        let current = totals(600, 40, [600, 0, 0, 0, 0]);
        let series = window.series(
            now,
            &current,
            Duration::from_secs(60),
            Duration::from_secs(10),
            BOUNDS.into_iter(),
        );
        assert_eq!(series.len(), 6);
        let agos: Vec<u64> = series.iter().map(|point| point.ago.as_secs()).collect();
        assert_eq!(agos, [50, 40, 30, 20, 10, 0]);
        assert!(series.iter().all(|point| point.red.requests == 100));
        assert!(series.iter().all(|point| point.red.request_rate == 10.0));
        let errors: Vec<u64> = series.iter().map(|point| point.red.errors).collect();
        assert_eq!(errors, [0, 0, 0, 0, 20, 20]);
        assert_eq!(series[5].red.error_rate, 0.2);

        // Five seconds old: one step, from the start.
        let young = RedWindow::new(5);
        let start = young.history.lock().unwrap()[0].0;
        let now = start + Duration::from_secs(5);
        let series = young.series(
            now,
            &totals(50, 0, [50, 0, 0, 0, 0]),
            Duration::from_secs(60),
            Duration::from_secs(10),
            BOUNDS.into_iter(),
        );
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].red.requests, 50);
        assert_eq!(series[0].red.request_rate, 10.0);
    }

    #[test]
    fn history_older_than_five_minutes_is_dropped() {
        let window = RedWindow::new(5);
        let start = window.history.lock().unwrap()[0].0;
        for second in 1..=700 {
            window.tick(
                start + Duration::from_secs(second),
                totals(second, 0, [second, 0, 0, 0, 0]),
            );
        }
        let history = window.history.lock().unwrap();
        assert!(history.len() <= 302, "{}", history.len());
        let oldest = history[0].0;
        assert!(start + Duration::from_secs(700) - oldest <= HISTORY + Duration::from_secs(1));
    }
}
