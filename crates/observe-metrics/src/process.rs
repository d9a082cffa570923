//! Process metrics, read at each scrape and written straight into the
//! exposition: the `metrics` facade has no float counters, and CPU seconds
//! must not be rounded to whole seconds.

use std::fmt::Write;

/// One process metric.
struct Sample {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: f64,
}

/// Appends the process metrics to `text`. Whatever cannot be read (not Linux,
/// a restricted `/proc`) is left out rather than reported as zero.
pub(crate) fn render(text: &mut String) {
    for sample in read() {
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} ",
            name = sample.name,
            help = sample.help,
            kind = sample.kind,
        );
        if sample.value.is_infinite() {
            text.push_str("+Inf");
        } else {
            let _ = write!(text, "{}", sample.value);
        }
        text.push_str("\n\n");
    }
}

#[cfg(target_os = "linux")]
fn read() -> Vec<Sample> {
    use procfs::process::{LimitValue, Process};

    let mut samples = Vec::with_capacity(6);
    let Ok(process) = Process::myself() else {
        return samples;
    };
    if let Ok(stat) = process.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        samples.push(Sample {
            name: "process_cpu_seconds_total",
            kind: "counter",
            help: "Total user and system CPU time spent, in seconds.",
            value: (stat.utime + stat.stime) as f64 / ticks,
        });
        samples.push(Sample {
            name: "process_resident_memory_bytes",
            kind: "gauge",
            help: "Resident memory size, in bytes.",
            value: (stat.rss * procfs::page_size()) as f64,
        });
        if let Ok(boot) = procfs::boot_time_secs() {
            samples.push(Sample {
                name: "process_start_time_seconds",
                kind: "gauge",
                help: "Start time of the process since the Unix epoch, in seconds.",
                value: boot as f64 + stat.starttime as f64 / ticks,
            });
        }
        samples.push(Sample {
            name: "process_threads",
            kind: "gauge",
            help: "Number of OS threads in the process.",
            value: stat.num_threads as f64,
        });
    }
    if let Ok(open) = process.fd_count() {
        samples.push(Sample {
            name: "process_open_fds",
            kind: "gauge",
            help: "Number of open file descriptors.",
            value: open as f64,
        });
    }
    if let Ok(limits) = process.limits() {
        let max = match limits.max_open_files.soft_limit {
            LimitValue::Value(max) => max as f64,
            LimitValue::Unlimited => f64::INFINITY,
        };
        samples.push(Sample {
            name: "process_max_fds",
            kind: "gauge",
            help: "Maximum number of open file descriptors.",
            value: max,
        });
    }
    samples
}

#[cfg(not(target_os = "linux"))]
fn read() -> Vec<Sample> {
    Vec::new()
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> f64 {
        let prefix = format!("{name} ");
        let line = text.lines().find(|line| line.starts_with(&prefix)).unwrap();
        line[prefix.len()..].parse().unwrap()
    }

    #[test]
    fn every_process_metric_is_there_with_help_type_and_a_plausible_value() {
        let mut text = String::new();
        render(&mut text);
        for (name, kind) in [
            ("process_cpu_seconds_total", "counter"),
            ("process_resident_memory_bytes", "gauge"),
            ("process_open_fds", "gauge"),
            ("process_max_fds", "gauge"),
            ("process_start_time_seconds", "gauge"),
            ("process_threads", "gauge"),
        ] {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        assert!(value(&text, "process_resident_memory_bytes") > 1e6);
        assert!(value(&text, "process_open_fds") >= 3.0);
        assert!(value(&text, "process_max_fds") >= value(&text, "process_open_fds"));
        assert!(value(&text, "process_threads") >= 1.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value(&text, "process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 3600.0,
            "{started} vs {now}"
        );
    }
}
