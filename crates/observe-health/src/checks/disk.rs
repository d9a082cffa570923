use std::{
    fmt, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    Check, CheckResult, DISK_CRITICAL_FREE_PERCENT, DISK_WARNING_FREE_PERCENT, Status, Usage,
    checks::percent, usage::ratio,
};

/// Free space on one filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskReading {
    /// Space an unprivileged process can still use.
    pub available_bytes: u64,
    /// The filesystem's size.
    pub total_bytes: u64,
}

type DiskReader = Arc<dyn Fn(&Path) -> io::Result<DiskReading> + Send + Sync>;

/// Free space of the filesystem that holds a path: `healthy` above 10% free,
/// `warning` above 5%, `critical` at 5% or less.
///
/// ```
/// use observe_health::{DiskCheck, Health};
///
/// let health = Health::builder().check("disk", DiskCheck::new("/")).build();
/// # let _ = health;
/// ```
#[derive(Clone)]
pub struct DiskCheck {
    path: PathBuf,
    warning_free_percent: u8,
    critical_free_percent: u8,
    reader: DiskReader,
}

impl DiskCheck {
    /// Checks the filesystem that holds `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            warning_free_percent: DISK_WARNING_FREE_PERCENT,
            critical_free_percent: DISK_CRITICAL_FREE_PERCENT,
            reader: Arc::new(read_disk),
        }
    }

    /// Free space at or below `warning` percent is a warning, at or below
    /// `critical` percent critical.
    pub fn thresholds(mut self, warning_free_percent: u8, critical_free_percent: u8) -> Self {
        self.warning_free_percent = warning_free_percent;
        self.critical_free_percent = critical_free_percent;
        self
    }

    /// Reads free space with `reader` instead of `statvfs`: for tests, and
    /// for storage the operating system does not see.
    pub fn with_reader(
        mut self,
        reader: impl Fn(&Path) -> io::Result<DiskReading> + Send + Sync + 'static,
    ) -> Self {
        self.reader = Arc::new(reader);
        self
    }

    /// The status of `reading` under this check's thresholds.
    pub fn status_for(&self, reading: DiskReading) -> Status {
        let available = u128::from(reading.available_bytes) * 100;
        let total = u128::from(reading.total_bytes);
        if available > total * u128::from(self.warning_free_percent) {
            Status::Healthy
        } else if available > total * u128::from(self.critical_free_percent) {
            Status::Warning
        } else {
            Status::Critical
        }
    }

    fn evaluate(&self, reading: io::Result<DiskReading>) -> CheckResult {
        let path = self.path.display().to_string();
        match reading {
            Ok(reading) if reading.total_bytes == 0 => {
                CheckResult::unhealthy("the filesystem reports a size of zero").detail("path", path)
            }
            Ok(reading) => CheckResult::new(self.status_for(reading))
                .usage(Usage::Disk {
                    path: path.clone(),
                    used_ratio: ratio(
                        reading.total_bytes.saturating_sub(reading.available_bytes),
                        reading.total_bytes,
                    ),
                })
                .detail("path", path)
                .detail("total_bytes", reading.total_bytes)
                .detail("available_bytes", reading.available_bytes)
                .detail(
                    "free_percent",
                    percent(reading.available_bytes, reading.total_bytes),
                ),
            Err(error) => CheckResult::unhealthy(format!("cannot read free space: {error}"))
                .detail("path", path),
        }
    }
}

impl Check for DiskCheck {
    async fn check(&self) -> CheckResult {
        let (path, reader) = (self.path.clone(), self.reader.clone());
        // A hung network mount must block a blocking thread, not the runtime.
        let reading = tokio::task::spawn_blocking(move || reader(&path))
            .await
            .unwrap_or_else(|error| Err(io::Error::other(error)));
        self.evaluate(reading)
    }
}

impl fmt::Debug for DiskCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskCheck")
            .field("path", &self.path)
            .field("warning_free_percent", &self.warning_free_percent)
            .field("critical_free_percent", &self.critical_free_percent)
            .finish_non_exhaustive()
    }
}

#[cfg(unix)]
fn read_disk(path: &Path) -> io::Result<DiskReading> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(DiskReading {
        available_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
    })
}

#[cfg(not(unix))]
fn read_disk(_path: &Path) -> io::Result<DiskReading> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "free space is read on Unix only; use DiskCheck::with_reader",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(available_bytes: u64) -> DiskReading {
        DiskReading {
            available_bytes,
            total_bytes: 1_000,
        }
    }

    #[tokio::test]
    async fn thresholds_at_each_boundary() {
        let cases = [
            (1_000, Status::Healthy),
            (101, Status::Healthy),
            (100, Status::Warning),
            (51, Status::Warning),
            (50, Status::Critical),
            (0, Status::Critical),
        ];
        for (available, expected) in cases {
            let check = DiskCheck::new("/data").with_reader(move |path| {
                assert_eq!(path, Path::new("/data"));
                Ok(reading(available))
            });
            let result = check.check().await;
            assert_eq!(result.status(), expected, "{available} of 1000 bytes free");
            assert_eq!(result.details()["available_bytes"], available);
            assert_eq!(result.details()["total_bytes"], 1_000);
            assert_eq!(result.details()["path"], "/data");
            assert_eq!(result.error_message(), None);
        }
    }

    #[tokio::test]
    async fn custom_thresholds_and_failures() {
        let check = DiskCheck::new("/").thresholds(50, 20);
        assert_eq!(check.status_for(reading(501)), Status::Healthy);
        assert_eq!(check.status_for(reading(500)), Status::Warning);
        assert_eq!(check.status_for(reading(200)), Status::Critical);

        let broken = DiskCheck::new("/gone")
            .with_reader(|_| Err(io::Error::new(io::ErrorKind::NotFound, "no such mount")));
        let result = broken.check().await;
        assert_eq!(result.status(), Status::Unhealthy);
        assert_eq!(
            result.error_message(),
            Some("cannot read free space: no such mount")
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_real_filesystem_is_read() {
        let result = DiskCheck::new(std::env::temp_dir()).check().await;
        let total = result.details()["total_bytes"].as_u64().unwrap();
        let available = result.details()["available_bytes"].as_u64().unwrap();
        assert!(total > 0 && available <= total, "{result:?}");
    }
}
