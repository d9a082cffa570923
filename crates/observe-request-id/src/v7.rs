//! UUID v7 generation without a process-wide lock.
//!
//! `uuid::Uuid::now_v7` keeps its counter behind one global mutex and draws
//! from a cryptographic generator; on the request path that is about 95 ns
//! and a point of contention between worker threads. Here every thread keeps
//! its own millisecond and counter, and draws from fastrand's thread-local
//! wyrand, seeded from the OS. Request ids need to be unique and time-ordered, not
//! unguessable, so a fast generator with 74 random-or-counter bits per id is
//! the right trade (RFC 9562 §6.2, method 1: a 42-bit counter seeded at random
//! each millisecond, then 32 random bits).

use std::{
    cell::Cell,
    time::{SystemTime, UNIX_EPOCH},
};

use uuid::Uuid;

/// The counter's width, and the mask that keeps its top bit clear at each
/// reseed so it can count at least 2^41 ids within one millisecond.
const COUNTER_BITS: u32 = 42;
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;
const RESEED_MASK: u64 = COUNTER_MAX >> 1;

struct State {
    millis: Cell<u64>,
    counter: Cell<u64>,
}

thread_local! {
    static STATE: State = const {
        State {
            millis: Cell::new(0),
            counter: Cell::new(0),
        }
    };
}

impl State {
    fn next(&self, now_millis: u64) -> Uuid {
        let random = fastrand::u64(..);
        let last = self.millis.get();
        let (millis, counter) = if now_millis > last {
            (now_millis, random & RESEED_MASK)
        } else {
            // Same millisecond, or the clock stepped back: stay ordered.
            let next = self.counter.get() + 1;
            if next > COUNTER_MAX {
                (last + 1, random & RESEED_MASK)
            } else {
                (last, next)
            }
        };
        self.millis.set(millis);
        self.counter.set(counter);
        let tail = fastrand::u32(..);
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        // version 7, then the counter's top 12 bits (rand_a)
        let high = (0x7000 | (counter >> 30)) as u16;
        bytes[6..8].copy_from_slice(&high.to_be_bytes());
        // variant 0b10, then the counter's low 30 bits and 32 random bits (rand_b)
        let low = (0b10 << 62) | ((counter & ((1 << 30) - 1)) << 32) | u64::from(tail);
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        Uuid::from_bytes(bytes)
    }
}

/// A fresh UUID v7, ordered after every earlier one made on this thread.
pub(crate) fn now_v7() -> Uuid {
    v7_at(SystemTime::now())
}

/// A fresh UUID v7 for `now`, a clock reading the caller already has;
/// ordered after every earlier one made on this thread.
pub(crate) fn v7_at(now: SystemTime) -> Uuid {
    let now_millis = unix_millis(now);
    STATE.with(|state| state.next(now_millis))
}

/// Milliseconds since the Unix epoch; 0 before it.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The millisecond a v7 id carries.
#[cfg(test)]
pub(crate) fn millis_of(id: &Uuid) -> u64 {
    let (seconds, nanos) = id.get_timestamp().map_or((0, 0), |time| time.to_unix());
    seconds * 1000 + u64::from(nanos) / 1_000_000
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_v7_rfc_variant_and_carry_the_time() {
        let before = unix_millis(SystemTime::now());
        let id = now_v7();
        let after = unix_millis(SystemTime::now());
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        let millis = millis_of(&id);
        assert!(
            (before..=after + 1).contains(&millis),
            "{before} <= {millis} <= {after}"
        );
    }

    #[test]
    fn ids_are_strictly_increasing_and_unique_on_one_thread() {
        let ids: Vec<Uuid> = (0..100_000).map(|_| now_v7()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn an_id_for_a_given_time_carries_that_millisecond() {
        // Ahead of any id this thread made, which it would stay after.
        let at = SystemTime::now() + std::time::Duration::from_secs(3600);
        let id = v7_at(at);
        assert_eq!(millis_of(&id), unix_millis(at));
        assert_eq!(id.get_version_num(), 7);
    }

    #[test]
    fn clock_going_back_keeps_order() {
        let state = State {
            millis: Cell::new(0),
            counter: Cell::new(0),
        };
        let first = state.next(2_000);
        let second = state.next(1_000);
        let third = state.next(2_000);
        assert!(first < second && second < third);
    }

    #[test]
    fn counter_overflow_moves_to_the_next_millisecond() {
        let state = State {
            millis: Cell::new(5_000),
            counter: Cell::new(COUNTER_MAX),
        };
        assert_eq!(millis_of(&state.next(5_000)), 5_001);
    }

    #[test]
    fn threads_do_not_collide() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..20_000).map(|_| now_v7()).collect::<Vec<_>>()))
            .collect();
        let mut all = HashSet::new();
        for handle in handles {
            for id in handle.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len(), 80_000);
    }
}
