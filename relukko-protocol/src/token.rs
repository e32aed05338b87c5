//! The creator token: `[rl:<32 hex digits>]` appended to the creator of each
//! create, so a lock whose answer was lost is recognised as our own.

use uuid::Uuid;

use crate::Lock;

/// A fresh creator token, `[rl:<32 hex digits>]`.
pub fn new_token() -> String {
    format!("[rl:{}]", Uuid::new_v4().simple())
}

/// The creator text sent for one call: `"<creator> <token>"`, or the token alone.
pub fn with_token(creator: Option<&str>, token: &str) -> String {
    match creator {
        Some(c) if !c.is_empty() => format!("{c} {token}"),
        _ => token.to_owned(),
    }
}

/// The creator as the user wrote it: `creator` without the `[rl:<token>]`
/// that this client appends to recognise its own locks.
///
/// ```
/// assert_eq!(relukko_protocol::token::creator_without_token("ci-7 [rl:0123456789abcdef0123456789abcdef]"), "ci-7");
/// assert_eq!(relukko_protocol::token::creator_without_token("someone else"), "someone else");
/// ```
pub fn creator_without_token(creator: &str) -> &str {
    let Some(start) = creator.rfind("[rl:") else {
        return creator;
    };
    let tail = &creator[start + 4..];
    let is_token = tail.len() == 33
        && tail.ends_with(']')
        && tail[..32].bytes().all(|b| b.is_ascii_hexdigit());
    if is_token {
        creator[..start].trim_end()
    } else {
        creator
    }
}

/// Whether `lock` is the lock on `name` that a create carrying `token` made.
pub fn is_own(lock: &Lock, name: &str, token: &str) -> bool {
    lock.lock_name == name && lock.creator.as_deref().is_some_and(|c| c.ends_with(token))
}
