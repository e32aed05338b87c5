//! Durations, times and lock holders as people read them, in errors and on
//! stderr.

pub(crate) mod progress;
pub(crate) mod stderr;

use std::time::Duration;

#[cfg(feature = "relukko")]
use time::OffsetDateTime;

#[cfg(feature = "relukko")]
use relukko_protocol::Lock;

/// A duration as people read it: `450ms`, `3.2s`, `1m 05s`, `2h 03m`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", ms / 60_000, (ms / 1_000) % 60)
    } else {
        format!("{}h {:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A wall-clock time as people read it: RFC 3339 UTC, whole seconds.
#[cfg(feature = "relukko")]
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    relukko_protocol::format_timestamp(t)
}

/// Who holds `l`, for errors and progress lines:
/// `"<creator> since <created_at> until <expires_at>"`, or, once its expiry
/// has passed (a holder killed, say),
/// `"<creator> since <created_at>, expired 12s ago; the server frees it after its grace period"`.
/// Times are whole seconds in UTC ([`when`]),
/// like every time this crate shows people.
#[cfg(feature = "relukko")]
pub fn holder(l: &Lock) -> String {
    holder_at(l, OffsetDateTime::now_utc())
}

#[cfg(feature = "relukko")]
fn holder_at(l: &Lock, now: time::OffsetDateTime) -> String {
    let creator = l
        .creator
        .as_deref()
        .map(relukko_protocol::token::creator_without_token)
        .filter(|c| !c.is_empty())
        .unwrap_or("an unnamed creator");
    let since = when(l.created_at);
    if l.expires_at > now {
        return format!("{creator} since {since} until {}", when(l.expires_at));
    }
    let ago: Duration = (now - l.expires_at).try_into().unwrap_or_default();
    format!(
        "{creator} since {since}, expired {} ago; the server frees it after its grace period",
        duration(Duration::from_secs(ago.as_secs()))
    )
}

/// Now, as people read it: RFC 3339 UTC, whole seconds, like [`when`]
/// (through humantime, which a build without the `relukko` feature has
/// anyway, rather than the `time` crate).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Rounds a waited time to milliseconds for error messages.
pub(crate) fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64)
}

/// Who holds each of `names` (`texts`, one per name, in order): the text
/// alone for one name, `name: text; name: text` for several.
pub(crate) fn holders(names: &[String], texts: Vec<String>) -> String {
    if names.len() == 1 {
        return texts.into_iter().next().unwrap_or_default();
    }
    names
        .iter()
        .zip(texts)
        .map(|(n, t)| format!("{n}: {t}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What is waited for, for messages: the name, or `any of a, b` for a pool.
pub(crate) fn what(names: &[String]) -> String {
    match names {
        [one] => one.clone(),
        many => format!("any of {}", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(duration(Duration::from_millis(450)), "450ms");
        assert_eq!(duration(Duration::from_millis(3_240)), "3.2s");
        assert_eq!(duration(Duration::from_secs(65)), "1m 05s");
        assert_eq!(duration(Duration::from_secs(7_380)), "2h 03m");
    }

    #[test]
    fn now_is_whole_seconds_utc() {
        let t = now();
        assert_eq!(t.len(), "2024-10-31T20:04:43Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        #[cfg(feature = "relukko")]
        {
            // The same form as the server's times (`when`), a moment apart.
            let parsed =
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .unwrap();
            assert_eq!(when(parsed), t);
        }
    }

    #[cfg(feature = "relukko")]
    #[test]
    fn holders_are_described_without_token_in_whole_seconds() {
        let now = time::macros::datetime!(2024-10-31 20:05:00 UTC);
        let mut l = Lock::dummy();
        l.creator = Some("ci-7 [rl:0123456789abcdef0123456789abcdef]".into());
        l.created_at = time::macros::datetime!(2024-10-31 20:04:43.9313 UTC);
        l.expires_at = time::macros::datetime!(2024-10-31 22:05:43.123456 +01:00);
        assert_eq!(
            holder_at(&l, now),
            "ci-7 since 2024-10-31T20:04:43Z until 2024-10-31T21:05:43Z"
        );
        l.creator = None;
        assert!(holder_at(&l, now).starts_with("an unnamed creator since"));
    }

    #[cfg(feature = "relukko")]
    #[test]
    fn a_passed_expiry_is_not_shown_as_until() {
        let now = time::macros::datetime!(2024-10-31 20:05:00 UTC);
        let mut l = Lock::dummy();
        l.creator = Some("killed@host".into());
        l.created_at = time::macros::datetime!(2024-10-31 20:04:00 UTC);
        l.expires_at = time::macros::datetime!(2024-10-31 20:04:47.6 UTC);
        assert_eq!(
            holder_at(&l, now),
            "killed@host since 2024-10-31T20:04:00Z, expired 12.0s ago; \
             the server frees it after its grace period"
        );
    }

    #[cfg(feature = "relukko")]
    #[test]
    fn when_is_whole_seconds_utc() {
        let t = time::macros::datetime!(2024-10-31 22:04:43.9313 +02:00);
        assert_eq!(when(t), "2024-10-31T20:04:43Z");
    }
}
