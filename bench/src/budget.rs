//! The time a phase of the bench may take, cut from the global deadline.

use std::time::{Duration, Instant};

/// Time left for a phase (and for the whole run).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    end: Instant,
}

impl Budget {
    pub fn new(d: Duration) -> Budget {
        Budget {
            end: Instant::now() + d,
        }
    }
    /// A part of this budget: at most `max` from now.
    pub fn sub(&self, max: Duration) -> Budget {
        Budget {
            end: self.end.min(Instant::now() + max),
        }
    }
    pub fn left(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }
    pub fn over(&self) -> bool {
        self.left().is_zero()
    }
}
