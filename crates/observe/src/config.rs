use std::{collections::HashMap, env, fmt, time::Duration};

/// A configuration value that does not parse, found by
/// [`init`](crate::ObservabilityBuilder::init).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(
        variable: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            variable,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// The variable (or builder setting) at fault.
    pub fn variable(&self) -> &str {
        self.variable
    }

    /// The value that did not parse.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={:?}: {}",
            self.variable, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// Where configuration variables come from.
#[derive(Debug, Clone, Default)]
pub(crate) enum Env {
    #[default]
    Process,
    Vars(HashMap<String, String>),
}

impl Env {
    /// The value of `name`, `None` when unset or empty.
    pub(crate) fn get(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let value = match self {
            Self::Process => match env::var(name) {
                Ok(value) => value,
                Err(env::VarError::NotPresent) => return Ok(None),
                Err(env::VarError::NotUnicode(raw)) => {
                    return Err(ConfigError::new(
                        name,
                        raw.to_string_lossy(),
                        "the value is not valid UTF-8",
                    ));
                }
            },
            Self::Vars(vars) => match vars.get(name) {
                Some(value) => value.clone(),
                None => return Ok(None),
            },
        };
        Ok(Some(value).filter(|value| !value.trim().is_empty()))
    }

    pub(crate) fn bool(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        self.get(name)?
            .map(|value| parse_bool(name, &value))
            .transpose()
    }

    /// A count above zero: the builder's `set` (named `setting`) or the
    /// variable `name`; zero or anything else is refused, naming which.
    pub(crate) fn positive_count(
        &self,
        setting: &'static str,
        set: Option<usize>,
        name: &'static str,
        what: &'static str,
    ) -> Result<Option<usize>, ConfigError> {
        let reason = || format!("expected a number of {what} above zero");
        match set {
            Some(0) => Err(ConfigError::new(setting, "0", reason())),
            Some(count) => Ok(Some(count)),
            None => match self.get(name)? {
                Some(value) => match value.trim().parse::<usize>() {
                    Ok(count) if count > 0 => Ok(Some(count)),
                    _ => Err(ConfigError::new(name, value, reason())),
                },
                None => Ok(None),
            },
        }
    }

    pub(crate) fn duration(&self, name: &'static str) -> Result<Option<Duration>, ConfigError> {
        self.get(name)?
            .map(|value| parse_duration(name, &value))
            .transpose()
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(name, value, "expected true or false")),
    }
}

/// `250ms`, `30s`, `2m`, `4h`, `1h 30m` (humantime's format) or a bare
/// number of seconds.
pub(crate) fn parse_duration(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let text = value.trim();
    if !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && let Ok(seconds) = text.parse()
    {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|_| {
        ConfigError::new(
            name,
            value,
            "expected a duration such as 500ms, 30s, 2m or 4h",
        )
    })
}

/// Registers a `{service}`-labelled counter in the metrics registry, with
/// its help text, at zero: a zero is a value alerts can rely on, a missing
/// series is not.
pub(crate) fn zeroed_counter(
    registry: &observe_metrics::Metrics,
    name: &'static str,
    service: &str,
    help: &'static str,
) -> metrics::Counter {
    static METADATA: metrics::Metadata<'static> =
        metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
    let recorder = registry.recorder();
    recorder.describe_counter(name.into(), Some(metrics::Unit::Count), help.into());
    let counter = recorder.register_counter(
        &metrics::Key::from_parts(
            name,
            vec![metrics::Label::new("service", service.to_owned())],
        ),
        &METADATA,
    );
    counter.increment(0);
    counter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("X", "500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("X", "30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("X", " 7 "), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("X", "2m"), Ok(Duration::from_secs(120)));
        let error = parse_duration("X", "soon").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"invalid X="soon": expected a duration such as 500ms, 30s, 2m or 4h"#
        );
        assert_eq!(parse_duration("X", "4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("X", "1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("X", "-1s").is_err());
        assert!(parse_duration("X", "").is_err());
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("X", "TRUE"), Ok(true));
        assert_eq!(parse_bool("X", "0"), Ok(false));
        assert_eq!(
            parse_bool("X", "maybe").unwrap_err().to_string(),
            r#"invalid X="maybe": expected true or false"#
        );
    }
}
