//! Delivery: what each receiver is sent, and how.
//!
//! Every notifier has a bounded queue and a task of its own. Evaluation
//! only puts a ready body on the queue (or counts it dropped when the queue
//! is full), so a receiver that hangs, refuses or fails delays neither
//! requests nor the next evaluation. A task sends one body at a time: one
//! attempt lasts at most [`NOTIFY_TIMEOUT`](crate::NOTIFY_TIMEOUT); `5xx`,
//! `429` (after its `Retry-After`, or Discord's `retry_after`) and
//! connection errors are retried with exponential backoff and jitter up to
//! [`NOTIFY_ATTEMPTS`](crate::NOTIFY_ATTEMPTS) attempts; other statuses are
//! not. Each outcome is counted in
//! `alert_notifications_total{notifier, outcome}`: `sent`, `failed` (given
//! up or refused) or `dropped` (queue full).
//!
//! Receiver URLs hold secrets (Slack's and Discord's webhook URLs are
//! credentials): they appear in no log line, metric or error.

mod payload;

use std::{
    collections::hash_map::RandomState,
    fmt,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use tokio::sync::mpsc;

pub(crate) use payload::{Context, alertmanager_body, group_bodies};

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifierKind {
    /// Any receiver written for Alertmanager's webhook: the version 4
    /// payload, exactly.
    Webhook,
    /// A Slack incoming webhook: an attachment per alert, coloured.
    Slack,
    /// A Discord webhook: an embed per alert.
    Discord,
    /// Alertmanager's `POST /api/v2/alerts`: firing alerts re-sent while
    /// they fire, `endsAt` on resolve. Alertmanager then deduplicates the
    /// replicas, silences and routes.
    Alertmanager,
}

impl NotifierKind {
    /// `webhook`, `slack`, `discord` or `alertmanager`: the `notifier` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Alertmanager => "alertmanager",
        }
    }
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub(crate) attempts: u32,
    pub(crate) timeout: Duration,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Failed,
    Dropped,
}

impl Outcome {
    const ALL: [Self; 3] = [Self::Sent, Self::Failed, Self::Dropped];

    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Dropped => "dropped",
        }
    }
}

/// Counters of one notifier's outcomes.
#[derive(Clone)]
struct Counters {
    sent: metrics::Counter,
    failed: metrics::Counter,
    dropped: metrics::Counter,
}

impl Counters {
    fn new(kind: NotifierKind, recorder: Option<&(dyn metrics::Recorder + Send + Sync)>) -> Self {
        let register = || {
            metrics::describe_counter!(
                "alert_notifications_total",
                metrics::Unit::Count,
                "Alert notifications by notifier and outcome: sent, failed (given up or refused), dropped (queue full)."
            );
            let [sent, failed, dropped] = Outcome::ALL.map(|outcome| {
                let counter = metrics::counter!(
                    "alert_notifications_total",
                    "notifier" => kind.as_str(),
                    "outcome" => outcome.as_str()
                );
                counter.increment(0);
                counter
            });
            Self {
                sent,
                failed,
                dropped,
            }
        };
        match recorder {
            Some(recorder) => metrics::with_local_recorder(recorder, register),
            None => register(),
        }
    }

    fn count(&self, outcome: Outcome) {
        match outcome {
            Outcome::Sent => self.sent.increment(1),
            Outcome::Failed => self.failed.increment(1),
            Outcome::Dropped => self.dropped.increment(1),
        }
    }
}

/// One configured receiver: its queue, and the task draining it once
/// started.
pub(crate) struct Channel {
    pub(crate) kind: NotifierKind,
    queue: mpsc::Sender<Bytes>,
    pending: Mutex<Option<Worker>>,
    counters: Counters,
}

struct Worker {
    url: reqwest::Url,
    client: reqwest::Client,
    queue: mpsc::Receiver<Bytes>,
    policy: RetryPolicy,
    counters: Counters,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it is a credential.
        f.debug_struct("Channel")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Channel {
    pub(crate) fn new(
        kind: NotifierKind,
        url: reqwest::Url,
        client: reqwest::Client,
        policy: RetryPolicy,
        capacity: usize,
        recorder: Option<&(dyn metrics::Recorder + Send + Sync)>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let counters = Counters::new(kind, recorder);
        Self {
            kind,
            queue: sender,
            pending: Mutex::new(Some(Worker {
                url,
                client,
                queue: receiver,
                policy,
                counters: counters.clone(),
            })),
            counters,
        }
    }

    /// Starts the delivery task on the current runtime, once.
    pub(crate) fn start(&self) {
        let worker = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            tokio::spawn(worker.run(self.kind));
        }
    }

    /// Queues `body`; a full queue drops and counts it.
    pub(crate) fn send(&self, body: Bytes) {
        if self.queue.try_send(body).is_err() {
            self.counters.count(Outcome::Dropped);
            tracing::warn!(
                target: "observe_alerts",
                notifier = self.kind.as_str(),
                "alert notification dropped: the notifier's queue is full"
            );
        }
    }
}

impl Worker {
    async fn run(mut self, kind: NotifierKind) {
        while let Some(body) = self.queue.recv().await {
            let outcome = self.deliver(kind, body).await;
            self.counters.count(outcome);
        }
    }

    async fn deliver(&self, kind: NotifierKind, body: Bytes) -> Outcome {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .post(self.url.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .timeout(self.policy.timeout)
                .body(body.clone())
                .send()
                .await;
            let (retry_after, error) = match sent {
                Ok(response) if response.status().is_success() => return Outcome::Sent,
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let retryable =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !retryable {
                        tracing::warn!(
                            target: "observe_alerts",
                            notifier = kind.as_str(),
                            status = status.as_u16(),
                            "alert notification refused by the receiver"
                        );
                        return Outcome::Failed;
                    }
                    let retry_after = if status == StatusCode::TOO_MANY_REQUESTS {
                        let body = response.bytes().await.unwrap_or_default();
                        retry_after(&headers, &body, SystemTime::now())
                    } else {
                        None
                    };
                    (retry_after, format!("status {}", status.as_u16()))
                }
                // Without the URL: it is a credential.
                Err(error) => (None, error.without_url().to_string()),
            };
            if attempt >= self.policy.attempts {
                tracing::warn!(
                    target: "observe_alerts",
                    notifier = kind.as_str(),
                    attempts = attempt,
                    error,
                    "alert notification given up"
                );
                return Outcome::Failed;
            }
            let delay = retry_after
                .unwrap_or_else(|| backoff(self.policy.backoff, attempt))
                .min(self.policy.max_backoff);
            tracing::debug!(
                target: "observe_alerts",
                notifier = kind.as_str(),
                attempt,
                error,
                delay_ms = delay.as_millis() as u64,
                "alert notification failed, retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// The delay before attempt `attempt + 1`: `base` doubled per attempt,
/// with jitter between half and all of it, so replicas do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let full = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let random = RandomState::new().build_hasher().finish();
    let share = 0.5 + (random % 1_000) as f64 / 2_000.0;
    full.mul_f64(share)
}

/// How long a `429` asks to wait: `Retry-After` in seconds or as an HTTP
/// date, or Discord's `retry_after` (seconds, fractional) in the body.
fn retry_after(headers: &HeaderMap, body: &[u8], now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
    {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<f64>()
            && seconds.is_finite()
            && seconds >= 0.0
        {
            return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(at.duration_since(now).unwrap_or_default());
        }
    }
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let seconds = body.get("retry_after")?.as_f64()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// A shared, cheap handle on every channel.
pub(crate) type Channels = Arc<[Channel]>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_as_a_date_and_in_discords_body() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_478);
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, http::HeaderValue::from_static("2"));
        assert_eq!(
            retry_after(&headers, b"", now),
            Some(Duration::from_secs(2))
        );
        headers.insert(
            header::RETRY_AFTER,
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers, b"", now),
            Some(Duration::from_secs(2))
        );
        let empty = HeaderMap::new();
        assert_eq!(
            retry_after(
                &empty,
                br#"{"message":"You are being rate limited.","retry_after":0.25,"global":false}"#,
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&empty, b"not json", now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..=4 {
            let full = base * (1 << (attempt - 1));
            let delay = backoff(base, attempt);
            assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
        }
    }
}
