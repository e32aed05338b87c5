//! The server's clock: times in UTC at the protocol's precision.

use time::OffsetDateTime;

/// Now, in UTC, cut to microseconds: what is stored is exactly what is answered.
pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// A time in UTC cut to microseconds, the protocol's precision.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    // Cannot fail: a truncated nanosecond stays below 1e9.
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_cut_to_microseconds_in_utc() {
        let t = now();
        assert_eq!(t.nanosecond() % 1_000, 0);
        assert_eq!(t.offset(), time::UtcOffset::UTC);
    }
}
