//! The alert state machine, with Prometheus's and Alertmanager's semantics:
//! `for`, `keep_firing_for`, fingerprints, grouping, repeat interval and
//! inhibition. It is pure: [`Engine::evaluate`] takes the time and the
//! inputs and returns what changed and what to send, so tests drive it with
//! a clock of their own.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    time::{Duration, SystemTime},
};

use crate::{
    HISTORY_LEN, Labels,
    labels::{fingerprint, selector},
    rule::{Inputs, Rule, Sample, Severity},
};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    /// The condition holds, not yet for `for`.
    Pending,
    /// The condition has held for `for`.
    Firing,
    /// It fired and the condition stopped.
    Resolved,
    /// It was pending and the condition stopped before it fired; only in
    /// [`Transition`]s.
    Inactive,
}

impl AlertState {
    /// `pending`, `firing`, `resolved` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Inactive => "inactive",
        }
    }
}

/// An alert: one rule's condition for one set of labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The labels' fingerprint, as Alertmanager computes it.
    pub fingerprint: u64,
    /// `alertname`, `severity`, `service`, `environment`, the rule's own
    /// labels and those of the value (`check`, `path`, `component`).
    pub labels: Labels,
    /// `summary`, `description` (with the value and threshold),
    /// `runbook_url` and the rule's own.
    pub annotations: Labels,
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// Since when the condition holds (Prometheus's `activeAt`).
    pub active_at: SystemTime,
    /// When it started firing.
    pub fired_at: Option<SystemTime>,
    /// When it resolved.
    pub resolved_at: Option<SystemTime>,
    /// The latest value.
    pub value: f64,
    /// The value as annotations write it (`12.50%`, `2.345s`).
    pub value_text: String,
    /// The rule's threshold.
    pub threshold: f64,
    /// The name of what is measured, for notifications.
    pub metric: String,
    /// The rule's severity.
    pub severity: Severity,
    /// Suppressed by a firing critical alert with the same `service` and
    /// `component`: shown, not notified.
    pub inhibited: bool,
    last_true: SystemTime,
    seen: u64,
    rule: usize,
}

impl Alert {
    /// The `alertname` label.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// One change of one alert's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// When.
    pub at: SystemTime,
    /// The alert's name.
    pub alertname: String,
    /// The alert's fingerprint.
    pub fingerprint: u64,
    /// The state entered.
    pub state: AlertState,
    /// The rule's severity.
    pub severity: Severity,
    /// The value at the time.
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// The alert's labels.
    pub labels: Labels,
}

/// One notification for a group of alerts, as Alertmanager would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNotification {
    /// `{}:{alertname="..."}`, Alertmanager's group key.
    pub group_key: String,
    /// The labels the group is made by.
    pub group_labels: Labels,
    /// `Firing` while any alert of the group fires, else `Resolved`.
    pub status: AlertState,
    /// The group's firing alerts and those resolved since the last
    /// notification.
    pub alerts: Vec<Alert>,
}

/// What one evaluation changed and what it sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Alerts that changed state.
    pub transitions: Vec<Transition>,
    /// Notifications for webhooks, Slack and Discord.
    pub notifications: Vec<GroupNotification>,
    /// For Alertmanager: every firing alert and those just resolved, when
    /// something changed or the resend interval has passed.
    pub alertmanager: Option<Vec<Alert>>,
}

/// What the engine needs besides its rules.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) service: String,
    pub(crate) environment: String,
    pub(crate) window: Duration,
    pub(crate) for_duration: Duration,
    pub(crate) keep_firing_for: Duration,
    pub(crate) repeat_interval: Duration,
    pub(crate) group_by: Vec<String>,
    pub(crate) inhibit_equal: Vec<String>,
    pub(crate) runbook_url: String,
    pub(crate) alertmanager_resend: Option<Duration>,
}

#[derive(Debug, Default)]
struct Group {
    notified: HashSet<u64>,
    last_sent: Option<SystemTime>,
}

/// The rules and the state of their alerts.
#[derive(Debug)]
pub struct Engine {
    settings: Settings,
    rules: Vec<Rule>,
    alerts: HashMap<u64, Alert>,
    groups: HashMap<String, Group>,
    history: VecDeque<Transition>,
    alertmanager_sent: Option<SystemTime>,
    generation: u64,
    samples: Vec<Sample>,
}

impl Engine {
    pub(crate) fn new(settings: Settings, rules: Vec<Rule>) -> Self {
        Self {
            settings,
            rules,
            alerts: HashMap::new(),
            groups: HashMap::new(),
            history: VecDeque::new(),
            alertmanager_sent: None,
            generation: 0,
            samples: Vec::new(),
        }
    }

    /// The rules evaluated.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Pending and firing alerts, by name then fingerprint.
    pub fn active(&self) -> Vec<&Alert> {
        let mut alerts: Vec<&Alert> = self.alerts.values().collect();
        alerts.sort_by(|a, b| (a.name(), a.fingerprint).cmp(&(b.name(), b.fingerprint)));
        alerts
    }

    /// The last [`HISTORY_LEN`] transitions, oldest first.
    pub fn history(&self) -> impl ExactSizeIterator<Item = &Transition> {
        self.history.iter()
    }

    /// Evaluates every rule at `now` over `inputs`.
    pub fn evaluate(&mut self, now: SystemTime, inputs: &Inputs<'_>) -> Evaluation {
        self.generation += 1;
        let mut evaluation = Evaluation::default();
        let mut samples = std::mem::take(&mut self.samples);
        for index in 0..self.rules.len() {
            samples.clear();
            self.rules[index].samples(inputs, &mut samples);
            for sample in samples.drain(..) {
                self.observe(index, sample, now, &mut evaluation.transitions);
            }
        }
        self.samples = samples;
        self.expire(now, &mut evaluation.transitions);
        self.inhibit();
        evaluation.notifications = self.notifications(now);
        evaluation.alertmanager = self.alertmanager_batch(now, &evaluation.transitions);
        self.alerts
            .retain(|_, alert| alert.state != AlertState::Resolved);
        for transition in &evaluation.transitions {
            if self.history.len() == HISTORY_LEN {
                self.history.pop_front();
            }
            self.history.push_back(transition.clone());
        }
        evaluation
    }

    fn labels(&self, rule: &Rule, sample: &Sample) -> Labels {
        let mut labels = rule.labels.clone();
        for (name, value) in &sample.labels {
            labels.insert((*name).to_owned(), value.clone());
        }
        if let Some(component) = rule.component(sample) {
            labels.entry("component".to_owned()).or_insert(component);
        }
        labels.insert("alertname".to_owned(), rule.name().to_owned());
        labels.insert("severity".to_owned(), rule.severity.as_str().to_owned());
        labels.insert("service".to_owned(), self.settings.service.clone());
        labels.insert("environment".to_owned(), self.settings.environment.clone());
        labels
    }

    fn annotations(&self, rule: &Rule, labels: &Labels, sample: &Sample) -> Labels {
        let value = rule.unit.format(sample.value);
        let threshold = rule.unit.format(rule.threshold);
        let window = humantime::format_duration(self.settings.window).to_string();
        let fill = |text: &str| {
            let mut text = text
                .replace("{value}", &value)
                .replace("{threshold}", &threshold)
                .replace("{window}", &window);
            for (name, note) in &sample.notes {
                text = text.replace(&format!("{{{name}}}"), note);
            }
            if text.contains('{') {
                for (name, label) in labels {
                    text = text.replace(&format!("{{{name}}}"), label);
                }
            }
            text
        };
        let mut annotations: Labels = rule
            .annotations
            .iter()
            .map(|(name, text)| (name.clone(), fill(text)))
            .collect();
        annotations
            .entry("summary".to_owned())
            .or_insert_with(|| format!("{} is {value} (threshold {threshold})", rule.name()));
        annotations
            .entry("runbook_url".to_owned())
            .or_insert_with(|| {
                self.settings
                    .runbook_url
                    .replace("{alertname}", rule.name())
            });
        annotations
    }

    fn observe(
        &mut self,
        index: usize,
        sample: Sample,
        now: SystemTime,
        transitions: &mut Vec<Transition>,
    ) {
        let rule = &self.rules[index];
        let holds = rule.comparison.holds(sample.value, rule.threshold);
        let labels = self.labels(rule, &sample);
        let fingerprint = fingerprint(&labels);
        if !holds {
            // Not active: only a value to report if it resolves now.
            if let Some(alert) = self.alerts.get_mut(&fingerprint) {
                alert.value = sample.value;
                alert.value_text = rule.unit.format(sample.value);
            }
            return;
        }
        let for_duration = rule.for_duration.unwrap_or(self.settings.for_duration);
        // Annotations and the value's text change only with the value (or
        // a note, such as a check's status).
        let unchanged = self.alerts.get(&fingerprint).is_some_and(|alert| {
            alert.seen != 0 && alert.value == sample.value && sample.notes.is_empty()
        });
        let rendered = (!unchanged).then(|| {
            (
                self.annotations(rule, &labels, &sample),
                rule.unit.format(sample.value),
            )
        });
        let generation = self.generation;
        let alert = self.alerts.entry(fingerprint).or_insert_with(|| Alert {
            fingerprint,
            labels,
            annotations: Labels::new(),
            state: AlertState::Pending,
            active_at: now,
            fired_at: None,
            resolved_at: None,
            value: sample.value,
            value_text: String::new(),
            threshold: rule.threshold,
            metric: rule.metric.clone(),
            severity: rule.severity,
            inhibited: false,
            last_true: now,
            seen: 0,
            rule: index,
        });
        let new = alert.seen == 0;
        alert.seen = generation;
        alert.last_true = now;
        alert.value = sample.value;
        if let Some((annotations, value_text)) = rendered {
            alert.annotations = annotations;
            alert.value_text = value_text;
        }
        if alert.state == AlertState::Pending
            && now.duration_since(alert.active_at).unwrap_or_default() >= for_duration
        {
            alert.state = AlertState::Firing;
            alert.fired_at = Some(now);
            transitions.push(transition(alert, now));
        } else if new {
            transitions.push(transition(alert, now));
        }
    }

    /// Alerts whose condition did not hold in this evaluation.
    fn expire(&mut self, now: SystemTime, transitions: &mut Vec<Transition>) {
        let generation = self.generation;
        let mut inactive = Vec::new();
        for alert in self.alerts.values_mut() {
            if alert.seen == generation {
                continue;
            }
            match alert.state {
                AlertState::Pending => {
                    alert.state = AlertState::Inactive;
                    transitions.push(transition(alert, now));
                    inactive.push(alert.fingerprint);
                }
                AlertState::Firing => {
                    let keep = self.rules[alert.rule]
                        .keep_firing_for
                        .unwrap_or(self.settings.keep_firing_for);
                    if now.duration_since(alert.last_true).unwrap_or_default() < keep {
                        continue;
                    }
                    alert.state = AlertState::Resolved;
                    alert.resolved_at = Some(now);
                    transitions.push(transition(alert, now));
                }
                AlertState::Resolved | AlertState::Inactive => {}
            }
        }
        for fingerprint in inactive {
            self.alerts.remove(&fingerprint);
        }
    }

    /// Marks warning alerts that a firing critical alert with the same
    /// `inhibit_equal` labels suppresses.
    fn inhibit(&mut self) {
        let equal = &self.settings.inhibit_equal;
        let key = |alert: &Alert| -> Vec<Option<String>> {
            equal
                .iter()
                .map(|name| alert.labels.get(name).cloned())
                .collect()
        };
        let sources: HashSet<Vec<Option<String>>> = self
            .alerts
            .values()
            .filter(|alert| {
                alert.state == AlertState::Firing && alert.severity == Severity::Critical
            })
            .map(key)
            .collect();
        for alert in self.alerts.values_mut() {
            alert.inhibited = alert.severity == Severity::Warning && sources.contains(&key(alert));
        }
    }

    fn notifications(&mut self, now: SystemTime) -> Vec<GroupNotification> {
        struct Members<'a> {
            labels: Labels,
            firing: Vec<&'a Alert>,
            inhibited: Vec<u64>,
            resolved: Vec<&'a Alert>,
        }
        let mut members: BTreeMap<String, Members<'_>> = BTreeMap::new();
        for alert in self.alerts.values() {
            if alert.state == AlertState::Pending {
                continue;
            }
            let labels: Labels = self
                .settings
                .group_by
                .iter()
                .filter_map(|name| Some((name.clone(), alert.labels.get(name)?.clone())))
                .collect();
            let key = format!("{{}}:{}", selector(&labels));
            let group = members.entry(key).or_insert_with(|| Members {
                labels,
                firing: Vec::new(),
                inhibited: Vec::new(),
                resolved: Vec::new(),
            });
            match (alert.state, alert.inhibited) {
                (AlertState::Firing, false) => group.firing.push(alert),
                (AlertState::Firing, true) => group.inhibited.push(alert.fingerprint),
                _ => group.resolved.push(alert),
            }
        }
        let mut notifications = Vec::new();
        for (key, mut group) in members {
            let state = self.groups.entry(key.clone()).or_default();
            let news = group
                .firing
                .iter()
                .any(|alert| !state.notified.contains(&alert.fingerprint));
            group
                .resolved
                .retain(|alert| state.notified.contains(&alert.fingerprint));
            let due = !group.firing.is_empty()
                && state.last_sent.is_none_or(|sent| {
                    now.duration_since(sent).unwrap_or_default() >= self.settings.repeat_interval
                });
            if news || !group.resolved.is_empty() || due {
                group.firing.sort_by_key(|alert| alert.fingerprint);
                group.resolved.sort_by_key(|alert| alert.fingerprint);
                notifications.push(GroupNotification {
                    group_key: key.clone(),
                    group_labels: group.labels,
                    status: if group.firing.is_empty() {
                        AlertState::Resolved
                    } else {
                        AlertState::Firing
                    },
                    alerts: group
                        .firing
                        .iter()
                        .chain(&group.resolved)
                        .map(|alert| (*alert).clone())
                        .collect(),
                });
                state.last_sent = Some(now);
                // Inhibited alerts that were notified stay so: they resolve
                // with a notification, and return without a duplicate.
                state
                    .notified
                    .retain(|fingerprint| group.inhibited.contains(fingerprint));
                state
                    .notified
                    .extend(group.firing.iter().map(|alert| alert.fingerprint));
            }
            for alert in &group.resolved {
                state.notified.remove(&alert.fingerprint);
            }
        }
        let alerts = &self.alerts;
        self.groups.retain(|_, group| {
            group.notified.retain(|fingerprint| {
                alerts
                    .get(fingerprint)
                    .is_some_and(|alert| alert.state == AlertState::Firing)
            });
            !group.notified.is_empty()
        });
        notifications
    }

    fn alertmanager_batch(
        &mut self,
        now: SystemTime,
        transitions: &[Transition],
    ) -> Option<Vec<Alert>> {
        let resend = self.settings.alertmanager_resend?;
        let changed = transitions.iter().any(|transition| {
            matches!(transition.state, AlertState::Firing | AlertState::Resolved)
        });
        let firing = self
            .alerts
            .values()
            .any(|alert| alert.state == AlertState::Firing);
        let due = firing
            && self
                .alertmanager_sent
                .is_none_or(|sent| now.duration_since(sent).unwrap_or_default() >= resend);
        if !changed && !due {
            return None;
        }
        self.alertmanager_sent = Some(now);
        let mut batch: Vec<Alert> = self
            .alerts
            .values()
            .filter(|alert| matches!(alert.state, AlertState::Firing | AlertState::Resolved))
            .cloned()
            .collect();
        batch.sort_by_key(|alert| alert.fingerprint);
        Some(batch)
    }
}

fn transition(alert: &Alert, at: SystemTime) -> Transition {
    Transition {
        at,
        alertname: alert.name().to_owned(),
        fingerprint: alert.fingerprint,
        state: alert.state,
        severity: alert.severity,
        value: alert.value,
        threshold: alert.threshold,
        labels: alert.labels.clone(),
    }
}

#[cfg(test)]
mod tests;
