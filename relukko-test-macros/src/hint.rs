//! The attribute's vocabulary for error messages: its options, an example
//! of each, and typo suggestions.

use relukko_protocol::vars::edit_distance_within;

/// Every option, for "unknown option" messages and typo suggestions.
pub(crate) const OPTIONS: [&str; 5] = ["timeout", "lease", "creator", "crate", "any_of"];

/// The example shown for `key` in "needs a value" / "takes a string" messages.
pub(crate) fn example(key: &str) -> &'static str {
    match key {
        "timeout" => "`timeout = \"10m\"`",
        "lease" => "`lease = \"60s\"`",
        "creator" => "`creator = \"nightly-hil\"`",
        "crate" => "`crate = my_relukko`",
        _ => "`any_of(\"rig-1\", \"rig-2\")`",
    }
}

/// `s` in double quotes, escaped like a Rust string literal.
pub(crate) fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// " (did you mean `timeout`?)" for a near miss of a known option, or for a
/// word other tools use for it (`wait`, `ttl`, `owner`, ...).
pub(crate) fn did_you_mean(key: &str) -> String {
    synonym(key)
        .or_else(|| {
            OPTIONS
                .iter()
                .filter_map(|o| Some((edit_distance_within(&key.to_ascii_lowercase(), o, 2)?, *o)))
                .min()
                .map(|(_, o)| o)
        })
        .map(|o| format!(" (did you mean `{o}`?)"))
        .unwrap_or_default()
}

/// The option meant by a word other lock tools use: the Python client's
/// `max_run_time`, serial_test's `timeout_ms`, a cache's `ttl`, ...
fn synonym(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let option = match key.as_str() {
        "wait" | "max_wait" | "wait_timeout" | "max_run_time" | "timeout_ms" | "deadline"
        | "wait_for" | "patience" => "timeout",
        "ttl" | "lease_time" | "lease_duration" | "expire" | "expires" | "expiry"
        | "keep_alive" | "keepalive" | "heartbeat" | "hold" => "lease",
        "owner" | "holder" | "user" | "who" | "by" | "created_by" => "creator",
        "krate" | "crate_path" | "path" | "relukko" => "crate",
        "pool" | "one_of" | "oneof" | "anyof" | "any" | "either" => "any_of",
        _ => return None,
    };
    Some(option)
}

/// Words people try for the resource name (`name = "rig"`): names are
/// positional string literals instead.
pub(crate) fn is_name_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "name" | "names" | "resource" | "resources" | "lock" | "locks" | "lock_name" | "key"
    )
}
