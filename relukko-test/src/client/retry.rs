//! Backoff policies: capped exponential delays with full jitter.
//!
//! Pure arithmetic (the random draw is passed in), so it is unit tested
//! without sleeping.

use std::time::Duration;

/// How the client retries a request that failed for a reason worth retrying
/// (transport errors, timeouts and 5xx answers; never 4xx, nor what a retry
/// cannot change: a connection refused on a loopback address, where nothing
/// listens, or a host name that does not resolve).
///
/// Attempt `n` (counting from 0) waits a random time in
/// `[0, min(max_delay, first_delay * factor^n)]` ("full jitter") before the next
/// try. At most `max_tries` attempts are made in all, and never past the
/// caller's deadline.
///
/// ```
/// use std::time::Duration;
/// let policy = relukko::RetryPolicy::default()
///     .first_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(1))
///     .max_tries(5);
/// assert_eq!(policy.cap(0), Duration::from_millis(50));
/// assert_eq!(policy.cap(10), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    first_delay: Duration,
    factor: f64,
    max_delay: Duration,
    max_tries: u32,
}

impl Default for RetryPolicy {
    /// 100 ms first delay, factor 2, at most 2 s between tries, 10 tries: long
    /// enough to ride out a server restart, short enough for tests.
    fn default() -> Self {
        RetryPolicy {
            first_delay: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(2),
            max_tries: 10,
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt only.
    pub fn never() -> Self {
        RetryPolicy::default().max_tries(1)
    }

    /// The cap of the first delay.
    pub fn first_delay(mut self, d: Duration) -> Self {
        self.first_delay = d;
        self
    }

    /// How much the cap grows per attempt (at least 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The largest delay between two tries.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The most attempts in all, the first included (at least 1).
    pub fn max_tries(mut self, n: u32) -> Self {
        self.max_tries = n.max(1);
        self
    }

    /// The most attempts in all.
    pub fn tries(&self) -> u32 {
        self.max_tries
    }

    /// The upper bound of the delay after failed attempt `attempt` (from 0).
    pub fn cap(&self, attempt: u32) -> Duration {
        exp_cap(self.first_delay, self.factor, self.max_delay, attempt)
    }

    /// The delay after failed attempt `attempt`, for a uniform draw `unit` in `[0, 1)`.
    pub(crate) fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        full_jitter(self.cap(attempt), unit)
    }

    /// The delay after failed attempt `attempt`, drawn at random.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, fastrand::f64())
    }
}

/// `min(max, first * factor^attempt)` without overflow.
pub(crate) fn exp_cap(first: Duration, factor: f64, max: Duration, attempt: u32) -> Duration {
    let grown = first.as_secs_f64() * factor.powi(attempt.min(64) as i32);
    if !grown.is_finite() || grown >= max.as_secs_f64() {
        max
    } else {
        Duration::from_secs_f64(grown).min(max)
    }
}

/// A uniform point in `[0, cap]` for `unit` in `[0, 1)`.
pub(crate) fn full_jitter(cap: Duration, unit: f64) -> Duration {
    cap.mul_f64(unit.clamp(0.0, 1.0))
}

/// The jittered timer of a waiter: it re-polls after a random time whose cap
/// grows from `first` to `max`, so that a lock is found free soon after its
/// release even with no WebSocket, without hammering the server.
#[derive(Debug, Clone)]
pub(crate) struct PollTimer {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl PollTimer {
    /// The cap starts at a twentieth of `max` (50 ms for the default 1 s).
    pub(crate) fn new(max: Duration) -> Self {
        PollTimer {
            first: max / 20,
            max,
            attempt: 0,
        }
    }

    /// The next sleep, for a uniform draw `unit` in `[0, 1)`. Never below a
    /// twentieth of the cap, so a run of small draws cannot make a busy loop.
    pub(crate) fn next_with(&mut self, unit: f64) -> Duration {
        let cap = exp_cap(self.first, 2.0, self.max, self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        full_jitter(cap, unit).max(cap / 20)
    }

    /// The next sleep, drawn at random.
    pub(crate) fn next(&mut self) -> Duration {
        self.next_with(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn caps_grow_exponentially_and_stop_at_max() {
        let p = RetryPolicy::default();
        let caps: Vec<_> = (0..7).map(|n| p.cap(n)).collect();
        assert_eq!(
            caps,
            [
                MS(100),
                MS(200),
                MS(400),
                MS(800),
                MS(1600),
                MS(2000),
                MS(2000)
            ]
        );
        assert_eq!(p.cap(u32::MAX), MS(2000), "no overflow on huge attempts");
    }

    #[test]
    fn full_jitter_spans_zero_to_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_with(3, 0.0), Duration::ZERO);
        assert_eq!(p.delay_with(3, 0.5), MS(400));
        assert!(p.delay_with(3, 0.999_999) <= MS(800));
        for _ in 0..100 {
            assert!(p.delay(2) <= MS(400));
        }
    }

    #[test]
    fn settings_are_clamped_to_sane_values() {
        let p = RetryPolicy::default().max_tries(0).factor(0.5);
        assert_eq!(p.tries(), 1);
        assert_eq!(p.cap(5), MS(100), "factor below 1 is taken as 1");
        assert_eq!(RetryPolicy::default().factor(f64::NAN).cap(3), MS(100));
        assert_eq!(RetryPolicy::never().tries(), 1);
        // Finite, but past what a Duration holds: the cap is the max.
        assert_eq!(RetryPolicy::default().factor(1e6).cap(10), MS(2000));
    }

    #[test]
    fn poll_timer_grows_to_its_max_with_a_floor() {
        let mut t = PollTimer::new(Duration::from_secs(1));
        assert_eq!(t.next_with(1.0), MS(50));
        assert_eq!(t.next_with(1.0), MS(100));
        for _ in 0..10 {
            t.next_with(0.5);
        }
        assert_eq!(t.next_with(1.0), Duration::from_secs(1));
        assert_eq!(t.next_with(0.0), MS(50), "floor is a twentieth of the cap");
        let mut long = PollTimer::new(Duration::from_secs(3600));
        assert_eq!(
            long.next_with(0.0),
            Duration::from_secs(9),
            "a long cap means long naps from the start"
        );
    }

    /// The setters reach the caps, and the random draws are not all zero:
    /// retries and polls really pause (a zero delay would hammer the server).
    #[test]
    fn setters_and_random_draws_shape_the_delays() {
        let p = RetryPolicy::default()
            .first_delay(MS(50))
            .factor(3.0)
            .max_delay(MS(1000))
            .max_tries(4);
        let caps: Vec<_> = (0..4).map(|n| p.cap(n)).collect();
        assert_eq!(caps, [MS(50), MS(150), MS(450), MS(1000)]);
        assert_eq!(p.tries(), 4);
        // A draw is 0 with probability 2^-53: 100 zeros mean no draw at all.
        assert!((0..100).any(|_| p.delay(1) > Duration::ZERO));
        let mut t = PollTimer::new(Duration::from_secs(1));
        assert!(
            t.next() >= MS(2),
            "never below a twentieth of the 50 ms cap"
        );
    }
}
