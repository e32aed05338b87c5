//! Parse and validate every form of `#[locked(...)]`, and every error: its
//! message and the token it points at.

use super::*;
use relukko_protocol::vars::edit_distance_within;

fn tokens(src: &str) -> TokenStream {
    // Test inputs are hand-written, valid token streams.
    src.parse().expect("valid tokens")
}

fn ok(src: &str) -> Config {
    parse(tokens(src)).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// The message, and the source text of the span it points at.
fn err(src: &str) -> (String, String) {
    let e = parse(tokens(src)).expect_err(src);
    let text = e.span().source_text().unwrap_or_default();
    (e.to_string(), text)
}

fn names(c: &Config) -> Vec<String> {
    c.names.iter().map(LitStr::value).collect()
}

#[test]
fn no_arguments_derives_a_name() {
    // `#[locked]` and `#[locked()]` both hand the macro no tokens at all (the
    // parentheses are the attribute's own); `locked_forms.rs` compiles both.
    let c = ok("");
    assert!(c.names.is_empty() && !c.any_of);
    assert!(c.timeout.is_none() && c.lease.is_none() && c.creator.is_none());
    assert!(c.krate.is_none());
}

#[test]
fn one_and_several_names() {
    assert_eq!(names(&ok(r#""hil-rig-3""#)), ["hil-rig-3"]);
    let c = ok(r#""b", "a", "c","#);
    assert_eq!(
        names(&c),
        ["b", "a", "c"],
        "kept as written; the runtime sorts"
    );
    assert!(!c.any_of);
}

#[test]
fn pool() {
    let c = ok(r#"any_of("rig-1", "rig-2", "rig-3")"#);
    assert_eq!(names(&c), ["rig-1", "rig-2", "rig-3"]);
    assert!(c.any_of);
    let c = ok(r#"any_of("a", "b",), timeout = "1m""#);
    assert_eq!(names(&c), ["a", "b"]);
    assert_eq!(c.timeout, Some(Duration::from_secs(60)));
}

#[test]
fn all_options() {
    let c = ok(r#""a", timeout = "10m", lease = "90", creator = "ci-hil", crate = ::my::relukko"#);
    assert_eq!(c.timeout, Some(Duration::from_secs(600)));
    assert_eq!(c.lease, Some(Duration::from_secs(90)));
    assert_eq!(
        c.creator.as_ref().map(LitStr::value).as_deref(),
        Some("ci-hil")
    );
    let krate = c.krate.as_ref().map(|p| quote::quote!(#p).to_string());
    assert_eq!(krate.as_deref(), Some(":: my :: relukko"));
    // Options alone (derived name), any order, `crate = crate` inside relukko itself.
    let c = ok(r#"crate = crate, lease = "2s", timeout = "1h 30m""#);
    assert!(c.names.is_empty());
    assert_eq!(c.lease, Some(MIN_LEASE));
    assert_eq!(c.timeout, Some(Duration::from_secs(5400)));
    assert!(c.krate.is_some());
    assert!(format!("{c:?}").contains("krate: Some(\"crate\")"));
}

#[test]
fn bad_names() {
    let (msg, at) = err(r#""a", """#);
    assert!(msg.starts_with("resource name is empty;"), "{msg}");
    assert_eq!(at, r#""""#);
    let (msg, at) = err(r#""  ""#);
    assert!(msg.starts_with("resource name is empty;"), "{msg}");
    assert_eq!(at, r#""  ""#);
    let (msg, _) = err(r#"" a""#);
    assert!(
        msg.contains("leading or trailing whitespace; write `\"a\"`"),
        "{msg}"
    );
    let (msg, at) = err("42");
    assert_eq!(
        msg,
        "a resource name must be a string literal; write it in double quotes: `\"42\"`"
    );
    assert_eq!(at, "42");
    let (msg, at) = err("'x'");
    assert!(msg.ends_with("`\"x\"`"), "{msg}");
    assert_eq!(at, "'x'");
    let (msg, at) = err(r#""a", b"bytes""#);
    assert!(msg.contains("as a plain string"), "{msg}");
    assert_eq!(at, r#"b"bytes""#);
    let (msg, at) = err(r#""a", RIG"#);
    assert!(
        msg.starts_with("`RIG` is neither a resource name nor an option:"),
        "{msg}"
    );
    assert!(
        msg.ends_with("(constants cannot be used), like `\"RIG\"`"),
        "{msg}"
    );
    assert_eq!(at, "RIG");
    let (msg, at) = err(r#""a", "b", "a""#);
    assert_eq!(
        msg,
        "resource `\"a\"` is named twice; name each resource once"
    );
    let e = parse(tokens(r#""a", "b", "a""#)).unwrap_err();
    assert_eq!(e.span().start().column, 10, "the second \"a\"");
    assert_eq!(at, r#""a""#);
    let (msg, at) = err(r#""a" "b""#);
    assert!(msg.starts_with("expected `,` between arguments"), "{msg}");
    assert_eq!(at, r#""b""#);
    let (msg, at) = err(r#""a", &x"#);
    assert!(
        msg.starts_with("expected a resource name or an option; valid are"),
        "{msg}"
    );
    assert_eq!(at, "&");
}

#[test]
fn names_before_options() {
    let (msg, at) = err(r#"timeout = "1m", "a""#);
    assert_eq!(
        msg,
        "resource names come before options: move `\"a\"` before `timeout = ...`"
    );
    assert_eq!(at, r#""a""#);
    let (msg, at) = err(r#"lease = "5s", any_of("a", "b")"#);
    assert!(
        msg.contains("move `any_of(...)` before `lease = ...`"),
        "{msg}"
    );
    assert_eq!(at, "any_of");
}

#[test]
fn bad_pools() {
    let (msg, at) = err(r#"any_of("a")"#);
    assert!(msg.starts_with("a pool of one: `any_of(\"a\")`"), "{msg}");
    assert!(msg.contains("write `#[locked(\"a\")]`"), "{msg}");
    assert_eq!(at, r#""a""#);
    let (msg, at) = err("any_of()");
    assert!(msg.starts_with("`any_of()` is empty;"), "{msg}");
    assert_eq!(at, "()");
    let (msg, at) = err(r#""x", any_of("a", "b")"#);
    assert!(
        msg.starts_with("`any_of(...)` cannot be mixed with plain resource names"),
        "{msg}"
    );
    assert_eq!(at, "any_of");
    let (msg, at) = err(r#"any_of("a", "b"), "x""#);
    assert!(msg.starts_with("`any_of(...)` cannot be mixed"), "{msg}");
    assert_eq!(at, r#""x""#);
    let (msg, at) = err(r#"any_of("a", "b"), any_of("c", "d")"#);
    assert!(msg.starts_with("`any_of` is given twice"), "{msg}");
    assert_eq!(at, "any_of");
    let e = parse(tokens(r#"any_of("a", "b"), any_of("c", "d")"#)).unwrap_err();
    assert_eq!(e.span().start().column, 18, "the second any_of");
    let (msg, at) = err(r#"any_of("a", "a")"#);
    assert!(msg.starts_with("resource `\"a\"` is named twice"), "{msg}");
    assert_eq!(at, r#""a""#);
    let (msg, at) = err(r#"any_of("a", rig)"#);
    assert!(
        msg.starts_with("expected a resource name in double quotes"),
        "{msg}"
    );
    assert_eq!(at, "rig");
    let (msg, at) = err("any_of");
    assert_eq!(
        msg,
        "`any_of` needs a list: write `any_of(\"rig-1\", \"rig-2\")`"
    );
    assert_eq!(at, "any_of");
    let (msg, _) = err(r#"any_of = "a""#);
    assert!(msg.starts_with("`any_of` takes a list, not `=`"), "{msg}");
    let (msg, at) = err(r#"one_of("a", "b")"#);
    assert!(
        msg.starts_with("unknown `one_of(...)`; the only `name(...)` form is"),
        "{msg}"
    );
    assert!(msg.ends_with("(did you mean `any_of`?)"), "{msg}");
    assert_eq!(at, "one_of");
}

#[test]
fn bad_options() {
    let (msg, at) = err(r#""a", timout = "1m""#);
    assert_eq!(
        msg,
        "unknown option `timout` (did you mean `timeout`?); the options are `timeout = \"10m\"`, \
         `lease = \"60s\"`, `creator = \"...\"` and `crate = path`, after the resource names \
         (`\"rig\"`, or a pool `any_of(\"rig-1\", \"rig-2\")`)"
    );
    assert_eq!(at, "timout");
    let (msg, _) = err(r#"color = "red""#);
    assert!(
        msg.starts_with("unknown option `color`; the options"),
        "{msg}"
    );
    let (msg, at) = err(r#""a", timeout = "1m", timeout = "2m""#);
    assert_eq!(msg, "`timeout` is given twice; keep one");
    assert_eq!(at, "timeout");
    let e = parse(tokens(r#""a", timeout = "1m", timeout = "2m""#)).unwrap_err();
    assert_eq!(e.span().start().column, 21, "the second timeout");
    for (src, expect, token) in [
        (
            "timeout",
            "`timeout` needs a value: write `timeout = \"10m\"`",
            "timeout",
        ),
        (
            "lease =",
            "`lease =` needs a value, like `lease = \"60s\"`",
            "=",
        ),
        (
            "creator = , \"a\"",
            "`creator =` needs a value, like `creator = \"nightly-hil\"`",
            "=",
        ),
        (
            "timeout(\"1m\")",
            "unknown `timeout(...)`; `timeout` is an option: write `timeout = ...`, like `timeout = \"10m\"`",
            "timeout",
        ),
    ] {
        let (msg, at) = err(src);
        assert_eq!(msg, expect, "{src}");
        assert_eq!(at, token, "{src}");
    }
}

#[test]
fn bad_durations() {
    let (msg, at) = err(r#"timeout = "ten minutes""#);
    assert!(
        msg.starts_with("`timeout = \"ten minutes\"` is not a duration ("),
        "{msg}"
    );
    assert!(
        msg.ends_with("like \"30s\", \"10m\" or \"1h 30m\" (a bare number means seconds)"),
        "{msg}"
    );
    assert_eq!(at, r#""ten minutes""#);
    let (msg, at) = err(r#"lease = "0s""#);
    assert!(
        msg.starts_with("`lease` must be longer than zero;"),
        "{msg}"
    );
    assert_eq!(at, r#""0s""#);
    let (msg, at) = err(r#"lease = "1999ms""#);
    assert!(
        msg.starts_with("`lease = \"1999ms\"` is too short: heartbeats go out every third"),
        "{msg}"
    );
    assert!(msg.contains("at least 2s"), "{msg}");
    assert_eq!(at, r#""1999ms""#);
    let (msg, at) = err("timeout = 90");
    assert_eq!(
        msg,
        "`timeout` takes a string: write `timeout = \"90s\"` (or \"10m\", \"1h 30m\")"
    );
    assert_eq!(at, "90");
    let (msg, at) = err("creator = 7");
    assert_eq!(
        msg,
        "`creator` takes a string: write `creator = \"nightly-hil\"`"
    );
    assert_eq!(at, "7");
    let (msg, at) = err(r#"creator = " ""#);
    assert!(msg.starts_with("`creator` is empty;"), "{msg}");
    assert_eq!(at, r#"" ""#);
}

#[test]
fn bad_crate_paths() {
    let (msg, at) = err(r#"crate = "my_relukko""#);
    assert_eq!(
        msg,
        "`crate` takes a path, not a string; write `crate = my_relukko`"
    );
    assert_eq!(at, r#""my_relukko""#);
    let (msg, _) = err(r#"crate = "not a path""#);
    assert!(
        msg.ends_with("write `crate = my_relukko` (the name you gave the dependency)"),
        "{msg}"
    );
    let (msg, at) = err("crate = 42");
    assert!(
        msg.starts_with("`crate` takes a path to relukko-test"),
        "{msg}"
    );
    assert_eq!(at, "42");
    let (msg, at) = err("crate = a::b c");
    assert!(msg.starts_with("expected `,` between arguments"), "{msg}");
    assert_eq!(at, "c");
}

#[test]
fn typo_distance() {
    let d = |a, b| edit_distance_within(a, b, 9);
    assert_eq!(d("timeout", "timeout"), Some(0));
    assert_eq!(d("timout", "timeout"), Some(1));
    assert_eq!(d("leas", "lease"), Some(1));
    assert_eq!(d("", "crate"), Some(5));
    assert_eq!(did_you_mean("zzzzzz"), "");
    assert_eq!(did_you_mean("creater"), " (did you mean `creator`?)");
}

#[test]
fn synonyms_and_name_keys() {
    assert_eq!(did_you_mean("max_run_time"), " (did you mean `timeout`?)");
    assert_eq!(did_you_mean("TTL"), " (did you mean `lease`?)");
    assert_eq!(did_you_mean("Timeout"), " (did you mean `timeout`?)");
    let (msg, at) = err(r#""a", wait = "10m""#);
    assert!(
        msg.starts_with("unknown option `wait` (did you mean `timeout`?);"),
        "{msg}"
    );
    assert_eq!(at, "wait");
    let (msg, at) = err(r#"name = "hil-rig-3""#);
    assert!(
        msg.starts_with(
            "`name` is not an option: resource names are plain string literals, written \
             first; write `#[locked(\"hil-rig-3\")]`"
        ),
        "{msg}"
    );
    assert_eq!(at, "name");
}

#[test]
fn colon_instead_of_equals() {
    let (msg, at) = err(r#""a", timeout: "10m""#);
    assert_eq!(msg, "options take `=`, not `:`; write `timeout = \"10m\"`");
    assert_eq!(at, ":");
    let (msg, _) = err(r#""a", timout: "10m""#);
    assert!(
        msg.starts_with(
            "options take `=`, not `:`, and `timout` is not an option (did you mean `timeout`?);"
        ),
        "{msg}"
    );
}

/// A runtime's options (`flavor`, `worker_threads`, ...) are not ours: the
/// message says where they go.
#[test]
fn runtime_options_point_to_the_runtime_attribute() {
    for key in ["flavor", "worker_threads", "start_paused"] {
        let (msg, at) = err(&format!(r#""rig", {key} = "x""#));
        assert!(
            msg.starts_with(&format!(
                "unknown option `{key}`: the runtime is not chosen here"
            )),
            "{msg}"
        );
        assert!(
            msg.contains("write `#[relukko::locked(...)]` above the runtime's own attribute"),
            "{msg}"
        );
        assert_eq!(at, key);
    }
}
