//! How full a resource is, as a check measured it: memory, a filesystem, a
//! connection pool. The runner publishes each as a gauge
//! (`memory_used_ratio`, `disk_used_ratio{path}`,
//! `db_pool_utilization_ratio{check}`) and alert rules read the same value
//! from the report, so in-process alerts and Prometheus rules compare the
//! same number with the same threshold.

/// A used share, from 0 to 1, of a resource a check looked at.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Usage {
    /// Memory in use against the limit that applies: `memory_used_ratio`.
    Memory {
        /// In use / limit.
        used_ratio: f64,
    },
    /// A filesystem's used space: `disk_used_ratio{path}`.
    Disk {
        /// The path the check looks at.
        path: String,
        /// (total - available) / total.
        used_ratio: f64,
    },
    /// A database connection pool's connections in use against its
    /// maximum: `db_pool_utilization_ratio{check}`.
    Pool {
        /// Connections in use.
        in_use: u32,
        /// The pool's maximum.
        max: u32,
    },
}

impl Usage {
    /// A pool's usage; a maximum of zero reads as fully used.
    pub fn pool(in_use: u32, max: u32) -> Self {
        Self::Pool { in_use, max }
    }

    /// The used share, 0 to 1.
    pub fn used_ratio(&self) -> f64 {
        match self {
            Self::Memory { used_ratio } | Self::Disk { used_ratio, .. } => *used_ratio,
            Self::Pool { in_use, max } => {
                if *max == 0 {
                    1.0
                } else {
                    f64::from(*in_use) / f64::from(*max)
                }
            }
        }
    }
}

/// `part / whole`, 0 when there is no whole.
pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 / whole as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(Usage::pool(8, 10).used_ratio(), 0.8);
        assert_eq!(Usage::pool(0, 0).used_ratio(), 1.0);
        assert_eq!(Usage::Memory { used_ratio: 0.25 }.used_ratio(), 0.25);
        assert_eq!(ratio(1, 4), 0.25);
        assert_eq!(ratio(1, 0), 0.0);
    }
}
