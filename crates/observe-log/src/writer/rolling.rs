//! A log file that rotates by time and by size and keeps a bounded number of
//! old files.
//!
//! `tracing-appender` rotates by time only (tokio-rs/tracing#858), so this is
//! our own, small and tested. The active file always has the configured name
//! (`app.log`), which `tail -F` and log shippers follow; a rotated file is
//! renamed to `app.2026-11-25T21.0003.log` (the UTC hour of its last period
//! and a sequence number), so names sort by age.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Write},
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::time::hour_stamp;

/// Buffered bytes before a write reaches the file.
const FILE_BUFFER: usize = 64 * 1024;

/// When a file is closed and a new one begun, besides size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// Only by size, if a size is set.
    Never,
    /// At every full UTC hour.
    Hourly,
    /// At UTC midnight.
    Daily,
}

impl Rotation {
    fn seconds(self) -> Option<u64> {
        match self {
            Rotation::Never => None,
            Rotation::Hourly => Some(3600),
            Rotation::Daily => Some(86_400),
        }
    }
}

impl std::str::FromStr for Rotation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "never" | "none" => Ok(Rotation::Never),
            "hourly" => Ok(Rotation::Hourly),
            "daily" => Ok(Rotation::Daily),
            _ => Err("expected daily, hourly or never".to_owned()),
        }
    }
}

/// Where and how [`Logging`](crate::Logging) writes a file.
///
/// ```
/// use observe_log::{FileOutput, Rotation};
///
/// let file = FileOutput::new("/var/log/vk-parser/app.log")
///     .rotation(Rotation::Daily)
///     .max_bytes(100 * 1024 * 1024)
///     .max_files(14);
/// # let _ = file;
/// ```
#[derive(Debug, Clone)]
pub struct FileOutput {
    pub(crate) path: PathBuf,
    pub(crate) rotation: Rotation,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) max_files: usize,
}

impl FileOutput {
    /// A file at `path`, rotated daily, [`DEFAULT_MAX_FILES`](crate::DEFAULT_MAX_FILES)
    /// old files kept, no size limit.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            rotation: Rotation::Daily,
            max_bytes: None,
            max_files: crate::DEFAULT_MAX_FILES,
        }
    }

    /// When to rotate by time.
    pub fn rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Rotates before a line would take the file past `max_bytes`.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes.max(1));
        self
    }

    /// How many rotated files to keep; older ones are deleted. `0` keeps none.
    pub fn max_files(mut self, max_files: usize) -> Self {
        self.max_files = max_files;
        self
    }

    /// The path of the active file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub(crate) fn open(self) -> io::Result<RollingFile> {
        RollingFile::open(self, SystemTime::now)
    }
}

/// The open file; written by the writer thread only.
pub(crate) struct RollingFile {
    config: FileOutput,
    directory: PathBuf,
    stem: String,
    extension: String,
    file: BufWriter<File>,
    size: u64,
    /// When the current time period ends, if rotating by time.
    period_end: Option<u64>,
    sequence: u32,
    clock: fn() -> SystemTime,
}

impl RollingFile {
    pub(crate) fn open(config: FileOutput, clock: fn() -> SystemTime) -> io::Result<Self> {
        let directory = match config.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&directory)?;
        let name = config
            .path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the log file path must end in a UTF-8 file name",
                )
            })?;
        let (stem, extension) = match name.rsplit_once('.') {
            Some((stem, extension)) if !stem.is_empty() => (stem.to_owned(), extension.to_owned()),
            _ => (name.to_owned(), String::new()),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)?;
        let size = file.metadata()?.len();
        let now = clock();
        let mut rolling = Self {
            period_end: None,
            config,
            directory,
            stem,
            extension,
            file: BufWriter::with_capacity(FILE_BUFFER, file),
            size,
            sequence: 0,
            clock,
        };
        rolling.period_end = rolling.next_period_end(now);
        rolling.sequence = rolling.rotated_files()?.len() as u32;
        Ok(rolling)
    }

    fn next_period_end(&self, now: SystemTime) -> Option<u64> {
        let period = self.config.rotation.seconds()?;
        let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Some((seconds / period + 1) * period)
    }

    /// Writes one whole line, rotating first if it is due.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let len = line.len() as u64;
        let over_size = self
            .config
            .max_bytes
            .is_some_and(|max| self.size > 0 && self.size + len > max);
        let over_time = self.period_end.is_some_and(|end| {
            (self.clock)()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                >= end
        });
        if over_size || over_time {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let now = (self.clock)();
        // A file rotated by time is stamped with the period it holds, even
        // when the first line of a later one finds it hours after the end.
        let closed_at = match self.period_end {
            Some(end) if now >= UNIX_EPOCH + Duration::from_secs(end) => {
                UNIX_EPOCH + Duration::from_secs(end - 1)
            }
            _ => now,
        };
        let stamp = hour_stamp(closed_at);
        let stamp = std::str::from_utf8(&stamp).unwrap_or("unknown");
        self.sequence = self.sequence.wrapping_add(1);
        let mut rotated = format!("{}.{stamp}.{:04}", self.stem, self.sequence % 10_000);
        if !self.extension.is_empty() {
            rotated.push('.');
            rotated.push_str(&self.extension);
        }
        fs::rename(&self.config.path, self.directory.join(rotated))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.path)?;
        self.file = BufWriter::with_capacity(FILE_BUFFER, file);
        self.size = 0;
        self.period_end = self.next_period_end(now);
        self.prune()
    }

    /// Rotated files of this log, oldest first.
    fn rotated_files(&self) -> io::Result<Vec<PathBuf>> {
        let prefix = format!("{}.", self.stem);
        let suffix = if self.extension.is_empty() {
            String::new()
        } else {
            format!(".{}", self.extension)
        };
        let active = self.config.path.file_name();
        let mut files: Vec<PathBuf> = fs::read_dir(&self.directory)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                    return false;
                };
                Some(path.file_name()) != Some(active)
                    && name.starts_with(&prefix)
                    && name.ends_with(&suffix)
                    && is_rotated_middle(&name[prefix.len()..name.len() - suffix.len()])
            })
            .collect();
        // The stamp sorts by time; within an hour the sequence breaks ties.
        files.sort();
        Ok(files)
    }

    fn prune(&self) -> io::Result<()> {
        let files = self.rotated_files()?;
        let excess = files.len().saturating_sub(self.config.max_files);
        for old in &files[..excess] {
            fs::remove_file(old)?;
        }
        Ok(())
    }

    #[cfg(test)]
    fn path(&self) -> &std::path::Path {
        &self.config.path
    }
}

/// `2026-11-25T21.0003`: what sits between stem and extension in a rotated name.
fn is_rotated_middle(middle: &str) -> bool {
    let bytes = middle.as_bytes();
    bytes.len() == 18
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b'.'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| matches!(index, 4 | 7 | 10 | 13) || byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use std::path::Path;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("observe-log-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_default();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn rotates_by_size_and_keeps_max_files() -> io::Result<()> {
        let dir = temp_dir("size");
        let config = FileOutput::new(dir.join("app.log"))
            .rotation(Rotation::Never)
            .max_bytes(20)
            .max_files(2);
        let mut file = RollingFile::open(config, SystemTime::now)?;
        for line in 0..10 {
            // Each line is 10 bytes: two fit in a file.
            file.write_line(format!("line {line:03}\n").as_bytes())?;
        }
        file.flush()?;
        let names = names(&dir);
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[2], "app.log");
        assert!(
            names[..2]
                .iter()
                .all(|name| name.starts_with("app.") && name.ends_with(".log"))
        );
        assert_eq!(read(file.path()), "line 008\nline 009\n");
        assert_eq!(read(&dir.join(&names[1])), "line 006\nline 007\n");
        assert_eq!(read(&dir.join(&names[0])), "line 004\nline 005\n");
        // A line longer than the limit still goes out whole, in a file of its own.
        file.write_line(&[b'x'; 50])?;
        file.write_line(b"after\n")?;
        file.flush()?;
        assert_eq!(read(file.path()), "after\n");
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    // One clock per test: tests run in parallel.
    static HOURLY_NOW: AtomicU64 = AtomicU64::new(0);
    static DAILY_NOW: AtomicU64 = AtomicU64::new(0);

    fn hourly_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(HOURLY_NOW.load(Relaxed))
    }

    fn daily_clock() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(DAILY_NOW.load(Relaxed))
    }

    #[test]
    fn rotates_by_time_with_the_period_in_the_name() -> io::Result<()> {
        let dir = temp_dir("time");
        // 2025-11-25T21:59:58Z
        HOURLY_NOW.store(1_764_107_998, Relaxed);
        let config = FileOutput::new(dir.join("app.log"))
            .rotation(Rotation::Hourly)
            .max_files(1);
        let mut file = RollingFile::open(config, hourly_clock)?;
        file.write_line(b"21h\n")?;
        HOURLY_NOW.store(1_764_108_000, Relaxed); // 22:00:00
        file.write_line(b"22h a\n")?;
        HOURLY_NOW.store(1_764_111_599, Relaxed); // 22:59:59, same period
        file.write_line(b"22h b\n")?;
        file.flush()?;
        assert_eq!(names(&dir), ["app.2025-11-25T21.0001.log", "app.log"]);
        assert_eq!(read(&dir.join("app.2025-11-25T21.0001.log")), "21h\n");
        assert_eq!(read(file.path()), "22h a\n22h b\n");
        // Next day, hours later: one rotation; retention keeps only the newest.
        HOURLY_NOW.store(1_764_151_200, Relaxed); // 2025-11-26T10:00:00
        file.write_line(b"next\n")?;
        file.flush()?;
        assert_eq!(names(&dir), ["app.2025-11-25T22.0002.log", "app.log"]);
        assert_eq!(
            read(&dir.join("app.2025-11-25T22.0002.log")),
            "22h a\n22h b\n"
        );
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn daily_rotation_waits_for_midnight_and_unrelated_files_stay() -> io::Result<()> {
        let dir = temp_dir("daily");
        fs::write(dir.join("app.notes.log"), "keep")?;
        fs::write(dir.join("other.log"), "keep")?;
        DAILY_NOW.store(1_764_107_998, Relaxed);
        let config = FileOutput::new(dir.join("app.log"))
            .rotation(Rotation::Daily)
            .max_files(0);
        let mut file = RollingFile::open(config, daily_clock)?;
        file.write_line(b"a\n")?;
        DAILY_NOW.store(1_764_111_600, Relaxed); // 23:00, same day
        file.write_line(b"b\n")?;
        DAILY_NOW.store(1_764_115_200, Relaxed); // midnight
        file.write_line(b"c\n")?;
        file.flush()?;
        // max_files(0): the rotated file is deleted at once.
        assert_eq!(names(&dir), ["app.log", "app.notes.log", "other.log"]);
        assert_eq!(read(file.path()), "c\n");
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn rotation_names_parse() {
        assert_eq!("Daily".parse(), Ok(Rotation::Daily));
        assert_eq!(" hourly ".parse(), Ok(Rotation::Hourly));
        assert_eq!("never".parse(), Ok(Rotation::Never));
        assert!("weekly".parse::<Rotation>().is_err());
        assert!(is_rotated_middle("2026-11-25T21.0003"));
        assert!(!is_rotated_middle("notes"));
    }
}
