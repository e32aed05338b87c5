//! Pieces of error messages: examples per option and typo suggestions.

use crate::config::OPTIONS;

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

/// " (did you mean `timeout`?)" for a near miss of a known option.
pub(crate) fn did_you_mean(key: &str) -> String {
    OPTIONS
        .iter()
        .map(|o| (edit_distance(key, o), o))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, o)| format!(" (did you mean `{o}`?)"))
        .unwrap_or_default()
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
