//! The rolling RED window: rate, errors and duration over the last minutes,
//! kept in process so alerting can read it without a Prometheus.
//!
//! One slot per second for [`SLOTS`] seconds. Each slot counts requests, server
//! errors and durations in log-linear buckets (eight per power of two of
//! microseconds, so a quantile is within about 6% of the true value). A
//! request costs three relaxed atomic increments; a slot is reset by the first
//! request of its new second, and a request racing that reset may be lost,
//! which an estimate can afford.

use std::{
    sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

/// Seconds of history: five minutes.
const SLOTS: usize = 300;
/// Buckets per power of two.
const SUB_BUCKETS: usize = 8;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Powers of two of microseconds covered: up to 2^28 µs, about 4.5 minutes.
const OCTAVES: usize = 28;
const BUCKETS: usize = OCTAVES * SUB_BUCKETS;

/// Request rate, error rate and duration quantiles over a recent window, from
/// [`Metrics::red`](crate::Metrics::red).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedSnapshot {
    /// The window these figures cover (shorter than asked while the process
    /// is younger than the window).
    pub window: Duration,
    /// Requests finished in the window.
    pub requests: u64,
    /// Of those, the ones answered with a 5xx status.
    pub errors: u64,
    /// Requests per second.
    pub request_rate: f64,
    /// `errors / requests`, 0 without requests.
    pub error_rate: f64,
    /// Median duration, zero without requests.
    pub p50: Duration,
    /// 95th percentile duration.
    pub p95: Duration,
    /// 99th percentile duration.
    pub p99: Duration,
}

pub(crate) struct RedWindow {
    started: Instant,
    slots: Box<[Slot]>,
}

struct Slot {
    /// The second (since `started`) this slot counts, plus one; 0 is unused.
    second: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    durations: [AtomicU32; BUCKETS],
}

impl RedWindow {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            slots: (0..SLOTS)
                .map(|_| Slot {
                    second: AtomicU64::new(0),
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    durations: std::array::from_fn(|_| AtomicU32::new(0)),
                })
                .collect(),
        }
    }

    pub(crate) fn record(&self, finished: Instant, duration: Duration, server_error: bool) {
        let second = finished.saturating_duration_since(self.started).as_secs() + 1;
        let slot = &self.slots[(second % SLOTS as u64) as usize];
        let seen = slot.second.load(Relaxed);
        if seen != second {
            // Only a later second takes the slot over, and only once.
            if seen > second
                || slot
                    .second
                    .compare_exchange(seen, second, Relaxed, Relaxed)
                    .is_err()
            {
                if slot.second.load(Relaxed) != second {
                    return;
                }
            } else {
                slot.reset();
            }
        }
        slot.requests.fetch_add(1, Relaxed);
        if server_error {
            slot.errors.fetch_add(1, Relaxed);
        }
        slot.durations[bucket_of(duration)].fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, window: Duration) -> RedSnapshot {
        self.snapshot_at(Instant::now(), window)
    }

    fn snapshot_at(&self, now: Instant, window: Duration) -> RedSnapshot {
        let elapsed = now.saturating_duration_since(self.started);
        let current = elapsed.as_secs() + 1;
        let seconds = window.as_secs().clamp(1, SLOTS as u64).min(current);
        let first = current + 1 - seconds;
        let mut requests = 0;
        let mut errors = 0;
        let mut durations = [0u64; BUCKETS];
        for second in first..=current {
            let slot = &self.slots[(second % SLOTS as u64) as usize];
            if slot.second.load(Relaxed) != second {
                continue;
            }
            requests += slot.requests.load(Relaxed);
            errors += slot.errors.load(Relaxed);
            for (sum, count) in durations.iter_mut().zip(&slot.durations) {
                *sum += u64::from(count.load(Relaxed));
            }
        }
        // The current second is only partly over.
        let covered =
            Duration::from_secs(seconds - 1) + Duration::from_nanos(elapsed.subsec_nanos().into());
        let covered = covered.max(Duration::from_millis(1));
        let total: u64 = durations.iter().sum();
        RedSnapshot {
            window: covered,
            requests,
            errors,
            request_rate: requests as f64 / covered.as_secs_f64(),
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            p50: quantile(&durations, total, 0.50),
            p95: quantile(&durations, total, 0.95),
            p99: quantile(&durations, total, 0.99),
        }
    }
}

impl Slot {
    fn reset(&self) {
        self.requests.store(0, Relaxed);
        self.errors.store(0, Relaxed);
        for count in &self.durations {
            count.store(0, Relaxed);
        }
    }
}

/// The bucket of a duration: exact below `SUB_BUCKETS` µs, then eight per
/// power of two.
fn bucket_of(duration: Duration) -> usize {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    if micros < SUB_BUCKETS as u64 {
        return micros as usize;
    }
    let octave = 63 - micros.leading_zeros();
    let sub = (micros >> (octave - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    let index = (octave - SUB_BITS + 1) as usize * SUB_BUCKETS + sub;
    index.min(BUCKETS - 1)
}

/// The midpoint of a bucket, in microseconds.
fn bucket_midpoint(index: usize) -> f64 {
    if index < SUB_BUCKETS {
        return index as f64 + 0.5;
    }
    let octave = (index / SUB_BUCKETS) as u32 - 1 + SUB_BITS;
    let sub = (index % SUB_BUCKETS) as u64;
    let width = 1u64 << (octave - SUB_BITS);
    let low = (1u64 << octave) + sub * width;
    low as f64 + width as f64 / 2.0
}

fn quantile(durations: &[u64; BUCKETS], total: u64, q: f64) -> Duration {
    if total == 0 {
        return Duration::ZERO;
    }
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, count) in durations.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Duration::from_secs_f64(bucket_midpoint(index) / 1e6);
        }
    }
    Duration::from_secs_f64(bucket_midpoint(BUCKETS - 1) / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_within_six_percent() {
        let mut last = 0;
        for micros in 1..2_000_000u64 {
            let index = bucket_of(Duration::from_micros(micros));
            assert!(index >= last, "{micros}");
            last = index;
            let mid = bucket_midpoint(index);
            let error = (mid - micros as f64).abs() / micros as f64;
            assert!(
                error <= 0.0625 || micros < SUB_BUCKETS as u64,
                "{micros}: {mid}"
            );
        }
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
    }

    #[test]
    fn counts_rates_and_quantiles_over_the_window() {
        let window = RedWindow::new();
        let start = window.started;
        // 100 requests in second 0 and 100 in second 59: 1 ms each, 5 of them
        // 5xx taking 100 ms.
        for second in [0u64, 59] {
            let at = start + Duration::from_secs(second) + Duration::from_millis(10);
            for i in 0..100 {
                let (duration, error) = if i < 5 {
                    (Duration::from_millis(100), true)
                } else {
                    (Duration::from_millis(1), false)
                };
                window.record(at, duration, error);
            }
        }
        let now = start + Duration::from_millis(59_500);
        let minute = window.snapshot_at(now, Duration::from_secs(60));
        assert_eq!(minute.requests, 200);
        assert_eq!(minute.errors, 10);
        assert_eq!(minute.error_rate, 0.05);
        assert!((minute.request_rate - 200.0 / 59.5).abs() < 1e-9);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        assert!((ms(minute.p50) - 1.0).abs() < 0.07, "{:?}", minute.p50);
        assert!((ms(minute.p95) - 1.0).abs() < 0.07, "{:?}", minute.p95);
        assert!((ms(minute.p99) - 100.0).abs() < 7.0, "{:?}", minute.p99);

        // The last 10 seconds hold only the second batch.
        let recent = window.snapshot_at(now, Duration::from_secs(10));
        assert_eq!(recent.requests, 100);
        assert_eq!(recent.errors, 5);
    }

    #[test]
    fn old_seconds_leave_the_window_and_their_slots_are_reused() {
        let window = RedWindow::new();
        let start = window.started;
        window.record(start, Duration::from_millis(2), false);
        // Five minutes later the same slot counts a new second.
        let later = start + Duration::from_secs(SLOTS as u64);
        window.record(later, Duration::from_millis(2), true);
        let five = window.snapshot_at(later, Duration::from_secs(300));
        assert_eq!((five.requests, five.errors), (1, 1));
        // A late writer for the old second does not count in the new one.
        window.record(start, Duration::from_millis(2), false);
        let five = window.snapshot_at(later, Duration::from_secs(300));
        assert_eq!((five.requests, five.errors), (1, 1));
    }

    #[test]
    fn an_idle_window_is_all_zero() {
        let window = RedWindow::new();
        let snapshot = window.snapshot(Duration::from_secs(60));
        assert_eq!(snapshot.requests, 0);
        assert_eq!(snapshot.error_rate, 0.0);
        assert_eq!(snapshot.p99, Duration::ZERO);
    }
}
