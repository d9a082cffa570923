use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    Check, CheckResult, MEMORY_CRITICAL_PERCENT, MEMORY_WARNING_PERCENT, Status, Usage,
    checks::percent, usage::ratio,
};

/// Where a [`MemoryReading`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySource {
    /// The cgroup v2 limit of the process (a container's limit).
    Cgroup,
    /// The host's memory (`/proc/meminfo`).
    Host,
}

impl MemorySource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cgroup => "cgroup",
            Self::Host => "host",
        }
    }
}

/// Memory in use against the limit that applies, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReading {
    /// In use: the cgroup's working set (`memory.current` less reclaimable
    /// `inactive_file`, as the kubelet counts it), or the host's total less
    /// `MemAvailable`.
    pub used_bytes: u64,
    /// The cgroup's `memory.max` (the smallest on the way to the root), or
    /// the host's total.
    pub limit_bytes: u64,
    /// Which of the two.
    pub source: MemorySource,
}

type MemoryReader = Arc<dyn Fn() -> io::Result<MemoryReading> + Send + Sync>;

/// Memory in use: `healthy` under 80% of the limit, `warning` under 90%,
/// `critical` from 90%. Inside a container with a cgroup v2 memory limit the
/// limit is the container's, not the host's.
#[derive(Clone)]
pub struct MemoryCheck {
    warning_percent: u8,
    critical_percent: u8,
    reader: MemoryReader,
}

impl MemoryCheck {
    /// Checks the memory of this process's cgroup, or of the host.
    pub fn new() -> Self {
        Self {
            warning_percent: MEMORY_WARNING_PERCENT,
            critical_percent: MEMORY_CRITICAL_PERCENT,
            reader: Arc::new(read_memory),
        }
    }

    /// Use at or above `warning` percent is a warning, at or above `critical`
    /// percent critical.
    pub fn thresholds(mut self, warning_percent: u8, critical_percent: u8) -> Self {
        self.warning_percent = warning_percent;
        self.critical_percent = critical_percent;
        self
    }

    /// Reads memory with `reader` instead of the cgroup and `/proc`: for
    /// tests, and for platforms without them.
    pub fn with_reader(
        mut self,
        reader: impl Fn() -> io::Result<MemoryReading> + Send + Sync + 'static,
    ) -> Self {
        self.reader = Arc::new(reader);
        self
    }

    /// The status of `reading` under this check's thresholds.
    pub fn status_for(&self, reading: MemoryReading) -> Status {
        let used = u128::from(reading.used_bytes) * 100;
        let limit = u128::from(reading.limit_bytes);
        if used < limit * u128::from(self.warning_percent) {
            Status::Healthy
        } else if used < limit * u128::from(self.critical_percent) {
            Status::Warning
        } else {
            Status::Critical
        }
    }

    fn evaluate(&self, reading: io::Result<MemoryReading>) -> CheckResult {
        match reading {
            Ok(reading) if reading.limit_bytes == 0 => {
                CheckResult::unhealthy("the memory limit reads as zero")
            }
            Ok(reading) => CheckResult::new(self.status_for(reading))
                .usage(Usage::Memory {
                    used_ratio: ratio(reading.used_bytes, reading.limit_bytes),
                })
                .detail("source", reading.source.as_str())
                .detail("used_bytes", reading.used_bytes)
                .detail("limit_bytes", reading.limit_bytes)
                .detail(
                    "used_percent",
                    percent(reading.used_bytes, reading.limit_bytes),
                ),
            Err(error) => CheckResult::unhealthy(format!("cannot read memory use: {error}")),
        }
    }
}

impl Default for MemoryCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl Check for MemoryCheck {
    async fn check(&self) -> CheckResult {
        self.evaluate((self.reader)())
    }
}

impl fmt::Debug for MemoryCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCheck")
            .field("warning_percent", &self.warning_percent)
            .field("critical_percent", &self.critical_percent)
            .finish_non_exhaustive()
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn read_memory() -> io::Result<MemoryReading> {
    let host = parse_meminfo(&fs::read_to_string("/proc/meminfo")?)?;
    let own_cgroup = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_v2_path(&text));
    let cgroup = match own_cgroup {
        Some(path) => cgroup_reading(Path::new(CGROUP_ROOT), &path)?,
        None => None,
    };
    Ok(match cgroup {
        // A limit above the host's memory is no limit.
        Some(cgroup) if cgroup.limit_bytes < host.limit_bytes => cgroup,
        _ => host,
    })
}

/// The process's cgroup v2 path, from `/proc/self/cgroup` (`0::/path`).
fn cgroup_v2_path(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
}

/// The working set and the tightest `memory.max` from the process's cgroup up
/// to the root; `None` when no cgroup on the way sets a limit.
fn cgroup_reading(root: &Path, own: &str) -> io::Result<Option<MemoryReading>> {
    let own_dir = root.join(own.trim_start_matches('/'));
    let mut limit: Option<u64> = None;
    let mut dir: PathBuf = own_dir.clone();
    loop {
        if let Ok(text) = fs::read_to_string(dir.join("memory.max"))
            && let Ok(value) = text.trim().parse::<u64>()
        {
            limit = Some(limit.map_or(value, |limit| limit.min(value)));
        }
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            break;
        }
    }
    let Some(limit_bytes) = limit else {
        return Ok(None);
    };
    let current = parse_u64(&fs::read_to_string(own_dir.join("memory.current"))?)?;
    let inactive_file = fs::read_to_string(own_dir.join("memory.stat"))
        .ok()
        .and_then(|stat| stat_value(&stat, "inactive_file"))
        .unwrap_or(0);
    Ok(Some(MemoryReading {
        used_bytes: current.saturating_sub(inactive_file),
        limit_bytes,
        source: MemorySource::Cgroup,
    }))
}

fn parse_meminfo(text: &str) -> io::Result<MemoryReading> {
    let kib = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib.saturating_mul(1024))
    };
    let (Some(total), Some(available)) = (kib("MemTotal"), kib("MemAvailable")) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "/proc/meminfo has no MemTotal or MemAvailable",
        ));
    };
    Ok(MemoryReading {
        used_bytes: total.saturating_sub(available),
        limit_bytes: total,
        source: MemorySource::Host,
    })
}

fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

fn parse_u64(text: &str) -> io::Result<u64> {
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a number: {text:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(used_bytes: u64) -> MemoryReading {
        MemoryReading {
            used_bytes,
            limit_bytes: 1_000,
            source: MemorySource::Cgroup,
        }
    }

    #[tokio::test]
    async fn thresholds_at_each_boundary() {
        let cases = [
            (0, Status::Healthy),
            (799, Status::Healthy),
            (800, Status::Warning),
            (899, Status::Warning),
            (900, Status::Critical),
            (1_200, Status::Critical),
        ];
        for (bytes, expected) in cases {
            let result = MemoryCheck::new()
                .with_reader(move || Ok(used(bytes)))
                .check()
                .await;
            assert_eq!(result.status(), expected, "{bytes} of 1000 bytes used");
            assert_eq!(result.details()["used_bytes"], bytes);
            assert_eq!(result.details()["limit_bytes"], 1_000);
            assert_eq!(result.details()["source"], "cgroup");
        }
        let custom = MemoryCheck::new().thresholds(50, 60);
        assert_eq!(custom.status_for(used(499)), Status::Healthy);
        assert_eq!(custom.status_for(used(500)), Status::Warning);
        assert_eq!(custom.status_for(used(600)), Status::Critical);
    }

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n";
        let reading = parse_meminfo(text).unwrap();
        assert_eq!(reading.limit_bytes, 16_000_000 * 1024);
        assert_eq!(reading.used_bytes, 12_000_000 * 1024);
        assert_eq!(reading.source, MemorySource::Host);
        assert!(parse_meminfo("MemTotal: 1 kB\n").is_err());
    }

    #[test]
    fn cgroup_limit_is_the_tightest_on_the_way_to_the_root() {
        let root =
            std::env::temp_dir().join(format!("observe-health-cgroup-{}", std::process::id()));
        let own = root.join("kubepods/pod1/app");
        fs::create_dir_all(&own).unwrap();
        fs::write(root.join("kubepods/memory.max"), "4000\n").unwrap();
        fs::write(root.join("kubepods/pod1/memory.max"), "2000\n").unwrap();
        fs::write(own.join("memory.max"), "max\n").unwrap();
        fs::write(own.join("memory.current"), "1500\n").unwrap();
        fs::write(
            own.join("memory.stat"),
            "anon 1000\ninactive_file 300\nactive_file 200\n",
        )
        .unwrap();

        let path = cgroup_v2_path("12:cpu:/old\n0::/kubepods/pod1/app\n").unwrap();
        let reading = cgroup_reading(&root, &path).unwrap().unwrap();
        assert_eq!(
            reading,
            MemoryReading {
                used_bytes: 1_200,
                limit_bytes: 2_000,
                source: MemorySource::Cgroup
            }
        );

        fs::write(root.join("kubepods/memory.max"), "max\n").unwrap();
        fs::write(root.join("kubepods/pod1/memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_reading(&root, &path).unwrap(), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_real_reading_is_sane() {
        let reading = read_memory().unwrap();
        assert!(
            reading.limit_bytes > 0 && reading.used_bytes <= reading.limit_bytes,
            "{reading:?}"
        );
    }
}
