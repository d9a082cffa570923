//! The built-in checks. Disk and memory are always here; the others each
//! behind their feature, so only what is used is compiled.

mod disk;
#[cfg(feature = "http")]
mod http;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use disk::{DiskCheck, DiskReading};
#[cfg(feature = "http")]
pub use http::{HttpCheck, HttpCheckError};
pub use memory::{MemoryCheck, MemoryReading, MemorySource};
#[cfg(feature = "postgres")]
pub use postgres::PostgresCheck;
#[cfg(feature = "redis")]
pub use redis::RedisCheck;

/// `part / whole` in percent, two decimals, for details.
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}
