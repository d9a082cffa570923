//! Which traces are recorded: `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.

use std::fmt;

use opentelemetry::trace::TraceId;

/// A sampler, as the OpenTelemetry specification names them.
///
/// The decision for a trace id is the SDK's (`TraceIdRatioBased` looks at the
/// low 63 bits of the trace id), so a trace is sampled or not the same way
/// by every service of any language.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// `always_on`: every trace.
    AlwaysOn,
    /// `always_off`: none.
    AlwaysOff,
    /// `traceidratio`: this share of traces, decided by the trace id.
    TraceIdRatio(f64),
    /// `parentbased_*`: a caller's decision when there is a caller, this one
    /// for root spans. `parentbased_always_on` is the default.
    ParentBased(Root),
}

/// The root sampler of [`Sampler::ParentBased`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Root {
    /// Every new trace.
    AlwaysOn,
    /// No new trace.
    AlwaysOff,
    /// This share of new traces.
    TraceIdRatio(f64),
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::ParentBased(Root::AlwaysOn)
    }
}

/// A sampler that does not parse; says which variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSampler {
    /// `OTEL_TRACES_SAMPLER` or `OTEL_TRACES_SAMPLER_ARG`.
    pub variable: &'static str,
    /// What it held.
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl fmt::Display for InvalidSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}",
            self.variable, self.value, self.reason
        )
    }
}

impl std::error::Error for InvalidSampler {}

impl Sampler {
    /// From `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; no sampler
    /// variable gives the default, `parentbased_always_on`.
    pub fn from_env_values(
        sampler: Option<&str>,
        argument: Option<&str>,
    ) -> Result<Self, InvalidSampler> {
        let ratio = || -> Result<f64, InvalidSampler> {
            match argument.map(str::trim) {
                None | Some("") => Ok(1.0),
                Some(text) => match text.parse::<f64>() {
                    Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
                    _ => Err(InvalidSampler {
                        variable: "OTEL_TRACES_SAMPLER_ARG",
                        value: text.to_owned(),
                        reason: "expected a ratio from 0 to 1, such as 0.25",
                    }),
                },
            }
        };
        let Some(name) = sampler.map(str::trim).filter(|name| !name.is_empty()) else {
            return Ok(Self::default());
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
            "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
            "parentbased_traceidratio" => Sampler::ParentBased(Root::TraceIdRatio(ratio()?)),
            _ => {
                return Err(InvalidSampler {
                    variable: "OTEL_TRACES_SAMPLER",
                    value: name.to_owned(),
                    reason: "expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
                });
            }
        })
    }

    /// Whether a span of `trace_id` is sampled, given the caller's decision
    /// when there is a caller.
    pub fn should_sample(&self, parent_sampled: Option<bool>, trace_id: TraceId) -> bool {
        match *self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(ratio) => by_ratio(ratio, trace_id),
            Sampler::ParentBased(root) => match (parent_sampled, root) {
                (Some(sampled), _) => sampled,
                (None, Root::AlwaysOn) => true,
                (None, Root::AlwaysOff) => false,
                (None, Root::TraceIdRatio(ratio)) => by_ratio(ratio, trace_id),
            },
        }
    }

    /// The same sampler for the OpenTelemetry SDK, which samples the spans
    /// made from `tracing` spans.
    pub(crate) fn to_sdk(self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler as Sdk;
        match self {
            Sampler::AlwaysOn => Sdk::AlwaysOn,
            Sampler::AlwaysOff => Sdk::AlwaysOff,
            Sampler::TraceIdRatio(ratio) => Sdk::TraceIdRatioBased(ratio),
            Sampler::ParentBased(root) => Sdk::ParentBased(Box::new(match root {
                Root::AlwaysOn => Sdk::AlwaysOn,
                Root::AlwaysOff => Sdk::AlwaysOff,
                Root::TraceIdRatio(ratio) => Sdk::TraceIdRatioBased(ratio),
            })),
        }
    }
}

/// The SDK's `TraceIdRatioBased` rule.
fn by_ratio(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::SpanKind;
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

    use super::*;
    use crate::context::new_trace_id;

    #[test]
    fn names_and_arguments_parse() {
        let parse = |name, arg| Sampler::from_env_values(name, arg);
        assert_eq!(parse(None, None), Ok(Sampler::ParentBased(Root::AlwaysOn)));
        assert_eq!(parse(Some("always_off"), None), Ok(Sampler::AlwaysOff));
        assert_eq!(parse(Some("ALWAYS_ON"), None), Ok(Sampler::AlwaysOn));
        assert_eq!(
            parse(Some("traceidratio"), Some("0.25")),
            Ok(Sampler::TraceIdRatio(0.25))
        );
        assert_eq!(
            parse(Some("parentbased_traceidratio"), None),
            Ok(Sampler::ParentBased(Root::TraceIdRatio(1.0)))
        );
        assert_eq!(
            parse(Some("parentbased_always_off"), None),
            Ok(Sampler::ParentBased(Root::AlwaysOff))
        );
        let error = parse(Some("sometimes"), None).unwrap_err();
        assert_eq!(error.variable, "OTEL_TRACES_SAMPLER");
        let error = parse(Some("traceidratio"), Some("1.5")).unwrap_err();
        assert_eq!(error.variable, "OTEL_TRACES_SAMPLER_ARG");
        assert_eq!(error.value, "1.5");
    }

    #[test]
    fn ratio_decisions_match_the_sdk() {
        for ratio in [0.0, 0.1, 0.5, 0.9, 1.0] {
            let sdk = Sampler::TraceIdRatio(ratio).to_sdk();
            let mut sampled = 0;
            for _ in 0..2000 {
                let trace_id = new_trace_id();
                let ours = Sampler::TraceIdRatio(ratio).should_sample(None, trace_id);
                let theirs = sdk
                    .should_sample(None, trace_id, "x", &SpanKind::Server, &[], &[])
                    .decision
                    == SamplingDecision::RecordAndSample;
                assert_eq!(ours, theirs, "ratio {ratio}");
                sampled += usize::from(ours);
            }
            let share = sampled as f64 / 2000.0;
            assert!((share - ratio).abs() < 0.06, "ratio {ratio}: {share}");
        }
    }

    #[test]
    fn parent_based_follows_the_caller() {
        let trace_id = new_trace_id();
        let sampler = Sampler::ParentBased(Root::AlwaysOff);
        assert!(sampler.should_sample(Some(true), trace_id));
        assert!(!sampler.should_sample(Some(false), trace_id));
        assert!(!sampler.should_sample(None, trace_id));
        assert!(Sampler::ParentBased(Root::AlwaysOn).should_sample(None, trace_id));
        assert!(!Sampler::AlwaysOff.should_sample(Some(true), trace_id));
        assert!(Sampler::AlwaysOn.should_sample(Some(false), trace_id));
    }
}
