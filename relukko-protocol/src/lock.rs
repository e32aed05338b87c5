//! The lock object of the Relukko protocol.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A lock as the Relukko server stores it.
///
/// Round-trips the server's JSON exactly: timestamps are parsed from any
/// RFC 3339 form and written back as RFC 3339 (UTC with `Z` when the offset is
/// zero, trailing zeros of the fraction trimmed).
///
/// ```
/// let json = r#"{"id":"950daa20-a814-451e-9407-ec496cf9c136","lock_name":"hil-rig-3",
///   "creator":"ci-runner-7","ip":"10.89.0.6","expires_at":"2024-10-31T20:14:43.9313Z",
///   "created_at":"2024-10-31T20:04:43.9313+00:00","updated_at":"2024-10-31T20:04:43.9313Z"}"#;
/// let lock: relukko_protocol::Lock = serde_json::from_str(json).unwrap();
/// assert_eq!(lock.lock_name, "hil-rig-3");
/// assert_eq!(lock.expires_at - lock.created_at, time::Duration::minutes(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lock {
    /// Chosen by the server.
    pub id: Uuid,
    /// The thing that is locked; unique among existing locks, case-sensitive.
    pub lock_name: String,
    /// Free text saying who holds the lock; informational only.
    pub creator: Option<String>,
    /// The client address as the server saw it.
    pub ip: Option<String>,
    /// When the lock stops being valid unless it is extended.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When the lock was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the lock was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Lock {
    /// The fixed lock that upstream's skip switch (`RELUKKO_TRUST_ME_IT_IS_LOCKED`)
    /// answers without asking any server.
    pub fn dummy() -> Self {
        Lock {
            id: Uuid::nil(),
            lock_name: "WE TRUST YOU".to_owned(),
            creator: Some("Dummy Dummy".to_owned()),
            ip: Some("0.0.0.0".to_owned()),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// Formats a timestamp the way the protocol wants it: RFC 3339 in UTC with `Z`,
/// at most microsecond precision.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .expect("a truncated nanosecond is in range");
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of a UTC time cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_exactly() {
        let json = r#"{"id":"950daa20-a814-451e-9407-ec496cf9c136","lock_name":"a","creator":null,"ip":"10.89.0.6","expires_at":"2024-10-31T20:14:43.9313Z","created_at":"2024-10-31T20:04:43.9313Z","updated_at":"2024-10-31T20:04:43Z"}"#;
        let lock: Lock = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&lock).unwrap(), json);
    }

    #[test]
    fn other_offsets_are_accepted() {
        let json = r#"{"id":"950daa20-a814-451e-9407-ec496cf9c136","lock_name":"a","creator":"c","ip":null,"expires_at":"2024-10-31T22:14:43.9313+02:00","created_at":"2024-10-31T20:04:43.9313+00:00","updated_at":"2024-10-31T20:04:43.123456Z"}"#;
        let lock: Lock = serde_json::from_str(json).unwrap();
        assert_eq!(
            lock.expires_at - lock.created_at,
            time::Duration::minutes(10)
        );
    }

    #[test]
    fn format_trims_to_microseconds_with_z() {
        let t = time::macros::datetime!(2024-10-31 20:04:43.931300789 +01:00);
        assert_eq!(format_timestamp(t), "2024-10-31T19:04:43.9313Z");
    }
}
