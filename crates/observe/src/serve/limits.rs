//! How long [`serve`](crate::Observability::serve) waits for slow clients and
//! how many connections it holds open.

use std::time::Duration;

use crate::config::{ConfigError, Env};

/// How long a client may take to send a request head, from the moment the
/// connection is accepted or the first byte of a later request arrives.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a kept-alive connection may stay silent between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request body may go without a byte while the service reads it;
/// then the service's read fails and the request is answered `408`.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// File descriptors kept back from the connection limit for everything
/// else the process opens (log files, database connections, sockets to
/// collectors): a tenth of the limit, and at least this many.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 64;

/// The limits `serve` enforces, after the builder and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// See [`BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// Open connections at most; one more is accepted and closed at once,
    /// and counted. Default: the process's file limit less
    /// [`RESERVED_FILE_DESCRIPTORS`] (or a tenth of it).
    pub max_connections: usize,
}

/// The builder's settings, before the environment fills the gaps.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerOptions {
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) body_read_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
}

impl ServerOptions {
    pub(crate) fn build(&self, env: &Env) -> Result<ServerLimits, ConfigError> {
        let header_read_timeout = positive(
            "OBSERVE_HEADER_READ_TIMEOUT",
            self.header_read_timeout,
            env,
            HEADER_READ_TIMEOUT,
        )?;
        let idle_timeout = positive("OBSERVE_IDLE_TIMEOUT", self.idle_timeout, env, IDLE_TIMEOUT)?;
        let body_read_timeout = positive(
            "OBSERVE_BODY_READ_TIMEOUT",
            self.body_read_timeout,
            env,
            BODY_READ_TIMEOUT,
        )?;
        let max_connections = env
            .positive_count(
                "max_connections",
                self.max_connections,
                "OBSERVE_MAX_CONNECTIONS",
                "connections",
            )?
            .unwrap_or_else(|| connections_for(open_file_limit()));
        Ok(ServerLimits {
            header_read_timeout,
            idle_timeout,
            body_read_timeout,
            max_connections,
        })
    }
}

fn positive(
    variable: &'static str,
    set: Option<Duration>,
    env: &Env,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let (variable, value) = match set {
        Some(value) => (variable, value),
        None => match env.duration(variable)? {
            Some(value) => (variable, value),
            None => return Ok(default),
        },
    };
    if value.is_zero() {
        return Err(ConfigError::new(
            variable,
            "0",
            "a timeout must be above zero",
        ));
    }
    Ok(value)
}

/// The soft `RLIMIT_NOFILE`, `None` where it cannot be read or is unlimited.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection limit for a file limit: what is left after the reserve.
fn connections_for(file_limit: Option<u64>) -> usize {
    // Unlimited or unknown: a bound still, so memory stays bounded too.
    const WITHOUT_FILE_LIMIT: u64 = 65_536;
    let limit = file_limit.unwrap_or(WITHOUT_FILE_LIMIT);
    let reserved = (limit / 10).max(RESERVED_FILE_DESCRIPTORS);
    usize::try_from(limit.saturating_sub(reserved).max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::Vars(
            vars.iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn defaults_and_the_file_limit() {
        let limits = ServerOptions::default().build(&env(&[])).unwrap();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(30));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.body_read_timeout, Duration::from_secs(60));
        assert_eq!(limits.max_connections, connections_for(open_file_limit()));
        assert_eq!(connections_for(Some(1024)), 922);
        assert_eq!(connections_for(Some(256)), 192);
        assert_eq!(connections_for(Some(10)), 1);
        assert_eq!(connections_for(None), 58_983);
    }

    #[test]
    fn environment_and_builder() {
        let from_env = ServerOptions::default()
            .build(&env(&[
                ("OBSERVE_HEADER_READ_TIMEOUT", "5s"),
                ("OBSERVE_IDLE_TIMEOUT", "90s"),
                ("OBSERVE_BODY_READ_TIMEOUT", "750ms"),
                ("OBSERVE_MAX_CONNECTIONS", "100"),
            ]))
            .unwrap();
        assert_eq!(
            from_env,
            ServerLimits {
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(90),
                body_read_timeout: Duration::from_millis(750),
                max_connections: 100,
            }
        );
        let set = ServerOptions {
            idle_timeout: Some(Duration::from_secs(1)),
            max_connections: Some(3),
            ..ServerOptions::default()
        }
        .build(&env(&[
            ("OBSERVE_IDLE_TIMEOUT", "90s"),
            ("OBSERVE_MAX_CONNECTIONS", "100"),
        ]))
        .unwrap();
        assert_eq!(set.idle_timeout, Duration::from_secs(1));
        assert_eq!(set.max_connections, 3);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (variable, value) in [
            ("OBSERVE_HEADER_READ_TIMEOUT", "soon"),
            ("OBSERVE_HEADER_READ_TIMEOUT", "0s"),
            ("OBSERVE_IDLE_TIMEOUT", "-1"),
            ("OBSERVE_BODY_READ_TIMEOUT", "0"),
            ("OBSERVE_MAX_CONNECTIONS", "0"),
            ("OBSERVE_MAX_CONNECTIONS", "many"),
        ] {
            let error = ServerOptions::default()
                .build(&env(&[(variable, value)]))
                .unwrap_err();
            assert_eq!(error.variable(), variable, "{value}");
        }
        let error = ServerOptions {
            max_connections: Some(0),
            ..ServerOptions::default()
        }
        .build(&env(&[]))
        .unwrap_err();
        assert_eq!(error.variable(), "max_connections");
    }
}
