//! The logging part of the configuration: builder settings over `OBSERVE_LOG_*`.

use std::{
    fmt,
    io::{self, Write},
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use observe_log::{
    FileOutput, Format, Logging, Redaction, RequestLogLayer, Rotation, Schema, TrustedProxy,
};

use crate::{
    ConfigError,
    config::Env,
    defaults::{LOG_MAX_FILES, LOG_QUEUE_CAPACITY},
};

/// Where lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogOutput {
    /// Standard output only.
    Stdout,
    /// The log file only.
    File,
    /// Both.
    Both,
}

impl std::str::FromStr for LogOutput {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "stdout" => Ok(LogOutput::Stdout),
            "file" => Ok(LogOutput::File),
            "both" => Ok(LogOutput::Both),
            _ => Err("expected stdout, file or both".to_owned()),
        }
    }
}

/// A writer the builder can clone: only the writer thread writes to it.
#[derive(Clone)]
pub(crate) struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl SharedWriter {
    pub(crate) fn new(writer: impl Write + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(writer))))
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

impl fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedWriter")
    }
}

/// What the builder's log setters hold; `None` defers to the environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogOptions {
    pub(crate) format: Option<Format>,
    pub(crate) schema: Option<Schema>,
    pub(crate) file: Option<FileOutput>,
    pub(crate) output: Option<LogOutput>,
    pub(crate) writer: Option<SharedWriter>,
    pub(crate) lossless: Option<bool>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) redaction: Option<Redaction>,
    pub(crate) redact_values: Vec<String>,
    pub(crate) exclude_paths: Option<Vec<String>>,
    pub(crate) trusted_proxies: Option<Vec<TrustedProxy>>,
    pub(crate) levels: Option<[tracing::Level; 3]>,
}

/// The checked logging configuration.
pub(crate) struct LogSetup {
    pub(crate) logging: Logging,
    pub(crate) request_log: RequestLogLayer,
}

impl LogOptions {
    pub(crate) fn build(
        self,
        env: &Env,
        service: &str,
        environment: &str,
        registry: &observe_metrics::Metrics,
    ) -> Result<LogSetup, ConfigError> {
        let mut builder = Logging::builder(service).environment(environment);

        if let Some(format) = or_env(self.format, env, "OBSERVE_LOG_FORMAT")? {
            builder = builder.format(format);
        }
        if let Some(schema) = or_env(self.schema, env, "OBSERVE_LOG_SCHEMA")? {
            builder = builder.schema(schema);
        }

        let file = match self.file {
            Some(file) => Some(file),
            None => match env.get("OBSERVE_LOG_FILE")? {
                Some(path) if !path.trim().is_empty() => Some(file_from_env(env, path)?),
                _ => None,
            },
        };
        let output = match or_env(self.output, env, "OBSERVE_LOG_OUTPUT")? {
            Some(output) => output,
            None if file.is_some() => LogOutput::File,
            None => LogOutput::Stdout,
        };
        let file_path = file
            .as_ref()
            .map(|file| file.path().display().to_string())
            .unwrap_or_default();
        let file = match (output, file) {
            (LogOutput::Stdout, _) => None,
            (LogOutput::File | LogOutput::Both, Some(file)) => Some(file),
            (LogOutput::File | LogOutput::Both, None) => {
                return Err(ConfigError::new(
                    "OBSERVE_LOG_OUTPUT",
                    format!("{output:?}").to_ascii_lowercase(),
                    "a file output needs OBSERVE_LOG_FILE (or the log_file setter)",
                ));
            }
        };
        builder = builder.stdout(output != LogOutput::File);
        if let Some(file) = file {
            builder = builder.file(file);
        }
        if let Some(writer) = self.writer {
            // A writer stands in for stdout (tests, pipes); a file stays.
            builder = builder.writer(writer);
        }

        let lossless = match self.lossless {
            Some(lossless) => lossless,
            None => env.bool("OBSERVE_LOG_LOSSLESS")?.unwrap_or(false),
        };
        let queue_capacity = env
            .positive_count(
                "log_queue_capacity",
                self.queue_capacity,
                "OBSERVE_LOG_QUEUE_CAPACITY",
                "lines",
            )?
            .unwrap_or(LOG_QUEUE_CAPACITY);
        builder = builder.lossless(lossless).queue_capacity(queue_capacity);

        let redaction = match self.redaction {
            Some(redaction) => redaction,
            None => match env.get("OBSERVE_LOG_REDACT")? {
                Some(names) => names
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .fold(Redaction::new(), |redaction, name| redaction.header(name)),
                None => Redaction::new(),
            },
        };
        let redaction = self
            .redact_values
            .iter()
            .fold(redaction, |redaction, secret| redaction.value(secret));
        builder = builder.redaction(redaction.clone());

        let counter = crate::config::zeroed_counter(
            registry,
            observe_log::DROPPED_LINES_METRIC,
            service,
            "Log lines dropped because the log queue was full.",
        );
        builder = builder.dropped_counter(counter);

        let logging = builder.build().map_err(|error| {
            ConfigError::new(
                "OBSERVE_LOG_FILE",
                file_path,
                format!("the log writer could not start: {error}"),
            )
        })?;

        let mut request_log = RequestLogLayer::new().redaction(redaction);
        let exclude = match self.exclude_paths {
            Some(paths) => Some(paths),
            None => env.get("OBSERVE_LOG_EXCLUDE_PATHS")?.map(|paths| {
                paths
                    .split(',')
                    .map(str::trim)
                    .filter(|path| !path.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        };
        if let Some(exclude) = exclude {
            request_log = request_log.exclude_paths(exclude);
        }
        let trusted = match self.trusted_proxies {
            Some(trusted) => trusted,
            None => match env.get("OBSERVE_LOG_TRUSTED_PROXIES")? {
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|proxy| !proxy.is_empty())
                    .map(|proxy| {
                        proxy.parse::<TrustedProxy>().map_err(|error| {
                            ConfigError::new(
                                "OBSERVE_LOG_TRUSTED_PROXIES",
                                list.clone(),
                                error.to_string(),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
        };
        request_log = request_log.trusted_proxies(trusted);
        if let Some([success, client_error, server_error]) = self.levels {
            request_log = request_log.levels(success, client_error, server_error);
        }
        Ok(LogSetup {
            logging,
            request_log,
        })
    }
}

/// The builder's value, or the variable's, parsed.
fn or_env<T>(value: Option<T>, env: &Env, name: &'static str) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr<Err = String>,
{
    if value.is_some() {
        return Ok(value);
    }
    env.get(name)?
        .map(|text| T::from_str(&text).map_err(|reason| ConfigError::new(name, text, reason)))
        .transpose()
}

fn file_from_env(env: &Env, path: String) -> Result<FileOutput, ConfigError> {
    let mut file = FileOutput::new(PathBuf::from(path)).max_files(LOG_MAX_FILES);
    if let Some(rotation) = or_env::<Rotation>(None, env, "OBSERVE_LOG_ROTATION")? {
        file = file.rotation(rotation);
    }
    if let Some(value) = env.get("OBSERVE_LOG_MAX_BYTES")? {
        let bytes = parse_bytes(&value).ok_or_else(|| {
            ConfigError::new(
                "OBSERVE_LOG_MAX_BYTES",
                value.clone(),
                "expected a size such as 104857600, 100MB or 512KiB",
            )
        })?;
        file = file.max_bytes(bytes);
    }
    if let Some(value) = env.get("OBSERVE_LOG_MAX_FILES")? {
        let count = value.trim().parse::<usize>().map_err(|_| {
            ConfigError::new(
                "OBSERVE_LOG_MAX_FILES",
                value.clone(),
                "expected how many rotated files to keep, such as 7",
            )
        })?;
        file = file.max_files(count);
    }
    Ok(file)
}

/// `1048576`, `512KiB`, `100MB`, `1GiB` (bytesize's format: `KB`/`MB`/`GB`
/// are powers of ten, `KiB`/`MiB`/`GiB` of two); zero is no size.
fn parse_bytes(text: &str) -> Option<u64> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .ok()
        .map(|size| size.as_u64())
        .filter(|bytes| *bytes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1048576"), Some(1_048_576));
        assert_eq!(parse_bytes("100MB"), Some(100_000_000));
        assert_eq!(parse_bytes("100MiB"), Some(100 << 20));
        assert_eq!(parse_bytes("512 KiB"), Some(512 << 10));
        assert_eq!(parse_bytes("1.5GiB"), Some(3 << 29));
        for bad in ["", "0", "0MB", "MB", "-1", "1.5XB", "ten"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
