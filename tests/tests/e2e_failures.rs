//! What a locked test does when things go wrong: its body panics, the wait
//! times out, someone deletes its lock, the server is down, a setting is bad;
//! and the skip switch. Each case runs a worker test of this binary in a child
//! process with its own environment (env vars are process-wide).

use std::time::Duration;

use relukko::{LockOptions, Locker, locked};
use relukko_e2e::history::{History, WORKER_VAR, fresh_dir, output_text, worker};
use relukko_e2e::setup::{client, rt};
use relukko_e2e::temp::TempDir;
use relukko_server::TestServer;

fn is_worker() -> bool {
    History::from_env().is_some()
}

fn enter(resource: &str, who: &str) {
    if let Some(h) = History::from_env() {
        h.enter(resource, who);
    }
}

#[test]
#[locked("e2e-panic")]
#[ignore = "a worker: its driver runs it"]
fn panic_a_panics() {
    if is_worker() {
        panic!("boom on purpose");
    }
}

#[test]
#[locked("e2e-panic", timeout = "5s")]
#[ignore = "a worker: its driver runs it"]
fn panic_b_follows() {
    enter("e2e-panic", "panic_b_follows");
}

#[test]
#[locked("e2e-timeout", timeout = "4s")]
#[ignore = "a worker: its driver runs it"]
fn timeout_worker() {
    enter("e2e-timeout", "timeout_worker");
}

#[locked("e2e-timeout", timeout = "4s")]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn timeout_worker_async() {
    enter("e2e-timeout", "timeout_worker_async");
}

/// `tests/tests/e2e_failures.rs:<line>:1`: where the `#[locked]` attribute
/// of the function declared by `header` is, the location a failure of that
/// test must point at.
fn location_of(header: &str) -> String {
    let lines: Vec<&str> = include_str!("e2e_failures.rs").lines().collect();
    let f = lines
        .iter()
        .position(|l| l.starts_with(header))
        .expect("the function is in this file");
    let attr = (0..f)
        .rev()
        .find(|&i| lines[i].starts_with("#[locked("))
        .expect("the function has a #[locked] attribute");
    format!("tests/tests/e2e_failures.rs:{}:1", attr + 1)
}

/// Asserts that a failure of worker test `name` (declared by `header`) points
/// at its `#[locked]` line: the panic location the harness shows, for sync
/// and async tests alike (an async one once pointed at the runtime's
/// runner.rs).
fn assert_points_at_the_test(text: &str, name: &str, header: &str) {
    let at = location_of(header);
    assert!(
        text.contains(&format!("panicked at {at}")),
        "{name}: {text}"
    );
    assert!(
        !panics_in_the_library(text),
        "{name}: the failure points into the library: {text}"
    );
}

/// Whether a "panicked at" line of `text` names a file of the library (a
/// backtrace may name them, the location must not).
fn panics_in_the_library(text: &str) -> bool {
    text.lines()
        .filter_map(|l| l.split_once("panicked at ").map(|(_, at)| at))
        .any(|at| at.contains("relukko-test/src/") || at.contains("runner.rs"))
}

#[locked("e2e-panic-async")]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn panic_async_worker() {
    if is_worker() {
        tokio::task::yield_now().await;
        panic!("async boom on purpose");
    }
}

/// An async test's own panic is shown where it happened, in the test's
/// file, not in the runtime that runs its body.
#[test]
fn an_async_panic_points_at_the_test() {
    let (out, _history) = run("panic_async_worker", &local_env("panic-async").0);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    let lines: Vec<&str> = include_str!("e2e_failures.rs").lines().collect();
    let line = lines
        .iter()
        .position(|l| {
            l.trim_start()
                .starts_with("panic!(\"async boom on purpose\")")
        })
        .expect("the panic is in this file");
    let column = lines[line].find("panic!").unwrap() + 1;
    let at = format!("tests/tests/e2e_failures.rs:{}:{column}", line + 1);
    assert!(text.contains(&format!("panicked at {at}")), "{text}");
    assert!(text.contains("async boom on purpose"), "{text}");
    assert!(!panics_in_the_library(&text), "{text}");
}

#[locked("e2e-lost", lease = "3s")]
#[test]
#[ignore = "a worker: its driver runs it"]
fn lost_worker(lease: relukko::Lease) {
    if !is_worker() {
        return;
    }
    enter("e2e-lost", "lost_worker");
    for _ in 0..300 {
        if lease.state() == relukko::LeaseState::Lost {
            return; // the runtime fails the test after the body
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[locked("e2e-lost-async", lease = "3s")]
#[tokio::test]
#[ignore = "a worker: its driver runs it"]
async fn lost_worker_async(lease: relukko::Lease) {
    if !is_worker() {
        return;
    }
    enter("e2e-lost-async", "lost_worker_async");
    let err = tokio::time::timeout(Duration::from_secs(30), lease.lost())
        .await
        .expect("lost in time");
    eprintln!("lost() resolved: {err}");
}

#[test]
#[locked("e2e-plain", timeout = "3s")]
#[ignore = "a worker: its driver runs it"]
fn plain_worker() {
    enter("e2e-plain", "plain_worker");
}

/// Fails through `?` in a worker with a bad setting: the harness prints the
/// error's `Debug`, which must read like its message.
#[test]
#[ignore = "a worker: its driver runs it"]
fn result_worker() -> relukko::Result<()> {
    if is_worker() {
        relukko::lock_blocking("e2e-result")?.release_blocking()?;
    }
    Ok(())
}

#[test]
#[locked("e2e-plain-again", timeout = "3s")]
#[ignore = "a worker: its driver runs it"]
fn plain_worker_again() {
    enter("e2e-plain-again", "plain_worker_again");
    // Reads the environment again: still said only once.
    let _ = Locker::from_env();
}

#[test]
#[locked("e2e-env")]
#[ignore = "a worker: its driver runs it"]
fn env_worker() {
    enter("e2e-env", "env_worker");
}

#[test]
#[locked("e2e-env-attr", creator = "from the attribute")]
#[ignore = "a worker: its driver runs it"]
fn env_creator_worker() {
    enter("e2e-env-attr", "env_creator_worker");
}

fn server_env(server: &TestServer) -> Vec<(&'static str, String)> {
    vec![
        ("RELUKKO_URL", server.base_url().to_owned()),
        ("RELUKKO_API_KEY", server.api_key().to_owned()),
    ]
}

/// Runs worker test `name` (exactly) with `env` plus a fresh history.
fn run(name: &str, env: &[(&str, String)]) -> (std::process::Output, History) {
    let history = History::create(name);
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker(name, true, 1, &env).output().expect("run worker");
    (out, history)
}

fn local_env(tag: &str) -> (Vec<(&'static str, String)>, TempDir) {
    let dir = fresh_dir(tag);
    (vec![("RELUKKO_LOCAL_DIR", dir.display().to_string())], dir)
}

/// The seconds in "`head`timed out after N.Ns, ..." in `text`.
fn timed_out_after(text: &str, head: &str) -> f64 {
    let head = format!("{head}timed out after ");
    let at = text
        .find(&head)
        .unwrap_or_else(|| panic!("no {head:?}: {text}"));
    let rest = &text[at + head.len()..];
    let end = rest.find("s, ").unwrap_or_else(|| panic!("{text}"));
    rest[..end]
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `panic_a_panics` then `panic_b_follows` in one process, one thread: the
/// second gets the lock, so the panicking test released it.
fn panicking_test_releases(env: &[(&str, String)]) {
    let history = History::create("panic");
    let mut env = env.to_vec();
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker("panic_", false, 1, &env)
        .output()
        .expect("run workers");
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("boom on purpose"), "{text}");
    // In this order (libtest runs tests by name on one thread): the second
    // test got the lock the first one held when it panicked.
    let a = text.find("test panic_a_panics ... FAILED");
    let b = text.find("test panic_b_follows ... ok");
    assert!(
        a.is_some() && b.is_some() && a < b,
        "the panicking test must run first: {text}"
    );
    assert_eq!(history.summary().entries, 1, "{text}");
}

#[test]
fn local_panicking_test_releases() {
    panicking_test_releases(&local_env("panic").0);
}

#[test]
fn relukko_panicking_test_releases() {
    let server = TestServer::start();
    panicking_test_releases(&server_env(&server));
}

/// The driver holds the resource; the workers (sync, then async) time out
/// with the promised message, pointing at their `#[locked]` line.
fn timeout_names_resource_holder_and_wait(locker: Locker, env: &[(&str, String)]) {
    let held = locker
        .creator("the e2e driver")
        .lock_blocking("e2e-timeout")
        .unwrap();
    for (name, header) in [
        ("timeout_worker", "fn timeout_worker()"),
        ("timeout_worker_async", "async fn timeout_worker_async()"),
    ] {
        let (out, history) = run(name, env);
        let text = output_text(&out);
        assert!(!out.status.success(), "{text}");
        // The resource once: no "waiting for e2e-timeout" repeating it.
        let waited = timed_out_after(
            &text,
            &format!("relukko: test e2e_failures::{name} could not lock e2e-timeout: "),
        );
        // Not before its 4 s timeout; how much later depends on the load.
        assert!(waited >= 4.0, "gave up early, after {waited} s: {text}");
        assert!(!text.contains("waiting for e2e-timeout"), "{text}");
        assert!(text.contains("s, held by the e2e driver"), "{text}");
        assert_points_at_the_test(&text, name, header);
        // The progress line, on stderr (not captured by the harness).
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("relukko: test e2e_failures::{name} waiting "))
                && stderr.contains("for e2e-timeout")
                && stderr.contains(", held by the e2e driver"),
            "{text}"
        );
        assert_eq!(
            history.summary().entries,
            0,
            "the body must not run: {text}"
        );
    }
    held.release_blocking().unwrap();
}

#[test]
fn local_timeout_fails_with_resource_holder_and_wait() {
    let (env, dir) = local_env("timeout");
    timeout_names_resource_holder_and_wait(Locker::local(dir.path()), &env);
}

#[test]
fn relukko_timeout_fails_with_resource_holder_and_wait() {
    let server = TestServer::start();
    timeout_names_resource_holder_and_wait(Locker::relukko(client(&server)), &server_env(&server));
}

/// Deletes `resource` behind the worker's back once it holds it; the worker
/// test fails with the lost message.
fn deleted_lock_fails_the_test(name: &str, header: &str, resource: &str) {
    let server = TestServer::start();
    let history = History::create(name);
    let mut env = server_env(&server);
    env.push((WORKER_VAR, history.path().display().to_string()));
    let child = worker(name, true, 1, &env).spawn().expect("spawn worker");
    assert!(
        history.wait_for_entries(1, Duration::from_secs(60)),
        "the worker never held {resource}"
    );
    let c = client(&server);
    rt().block_on(async {
        let lock = c
            .holder(resource)
            .await
            .unwrap()
            .expect("the worker holds it");
        c.delete(lock.id).await.unwrap();
    });
    let out = child.wait_with_output().unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "lost its lock while it ran: {resource}: deleted by someone else"
        )),
        "{text}"
    );
    // Said on stderr when it happened, not only when the body ended.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "relukko: lost {resource} while test e2e_failures::{name} runs: deleted by someone else"
        )) && stderr.contains("; the test will fail when its body ends\n"),
        "{text}"
    );
    assert_points_at_the_test(&text, name, header);
}

#[test]
fn relukko_lock_deleted_mid_test_fails_it() {
    deleted_lock_fails_the_test("lost_worker", "fn lost_worker(", "e2e-lost");
}

#[test]
fn relukko_lock_deleted_mid_async_test_fails_it_and_lost_resolves() {
    deleted_lock_fails_the_test(
        "lost_worker_async",
        "async fn lost_worker_async(",
        "e2e-lost-async",
    );
}

#[test]
fn server_down_fails_clearly_and_never_falls_back_to_local() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut env, _dir) = local_env("down");
    env.push(("RELUKKO_URL", format!("http://127.0.0.1:{port}")));
    let (out, history) = run("plain_worker", &env);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("could not lock e2e-plain"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    // Nothing listens on a port of this machine: said at once, with what to check.
    assert!(
        text.contains("not retried: nothing listens on that port of this machine")
            && text.contains("relukko health")
            && text.contains("HTTPS_PROXY"),
        "{text}"
    );
    assert_eq!(
        history.summary().entries,
        0,
        "the body ran without the lock: {text}"
    );
}

/// With the server down, the first test spends the retry budget; the next
/// one of the process fails at once with the same cause.
#[test]
fn server_down_later_tests_fail_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut env, _dir) = local_env("down-twice");
    env.push(("RELUKKO_URL", format!("http://127.0.0.1:{port}")));
    let history = History::create("down-twice");
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker("plain_worker", false, 1, &env)
        .output()
        .expect("run workers");
    let text = output_text(&out);
    assert!(text.contains("0 passed; 2 failed"), "{text}");
    assert_eq!(
        text.matches(&format!(
            "could not lock e2e-plain: cannot reach http://127.0.0.1:{port}/"
        ))
        .count()
            + text
                .matches(&format!(
                    "could not lock e2e-plain-again: cannot reach http://127.0.0.1:{port}/"
                ))
                .count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.matches("(not tried again: this process found the server unreachable")
            .count(),
        1,
        "{text}"
    );
    assert_eq!(history.summary().entries, 0, "{text}");
}

#[test]
fn bad_settings_fail_naming_the_variable() {
    for (var, value) in [
        ("RELUKKO_LEASE", "junk"),
        ("RELUKKO_TIMEOUT", ""),
        ("RELUKKO_URL", "ftp://x"),
        // Upstream would skip locking for these: refused, not taken as "off".
        ("RELUKKO_TRUST_ME_IT_IS_LOCKED", "0"),
        ("RELUKKO_TRUST_ME_IT_IS_LOCKED", "false"),
    ] {
        let (mut env, _dir) = local_env("bad");
        env.push((var, value.to_owned()));
        let (out, history) = run("plain_worker", &env);
        let text = output_text(&out);
        assert!(!out.status.success(), "{var}={value:?}: {text}");
        assert!(text.contains(var), "{var}={value:?}: {text}");
        if var == "RELUKKO_TRUST_ME_IT_IS_LOCKED" {
            assert!(
                text.contains("unset it to lock, or set it to 1 to skip"),
                "{text}"
            );
        }
        assert_eq!(history.summary().entries, 0, "{text}");
    }
}

#[test]
fn a_returned_error_prints_its_message() {
    let (mut env, _dir) = local_env("debug");
    env.push(("RELUKKO_TIMEOUT", "abc".to_owned()));
    let (out, _history) = run("result_worker", &env);
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Error: invalid setting RELUKKO_TIMEOUT: \"abc\" is not a duration"),
        "{text}"
    );
    assert!(!text.contains("Config {"), "{text}");
}

/// Misspelt settings (`RELUKKO_LAESE`, `RELUKKO_TIEMOUT`) are not read;
/// stderr names the real variable, once per process, and the tests run.
#[test]
fn misspelt_variables_are_named_once() {
    let (mut env, _dir) = local_env("typo");
    env.push(("RELUKKO_LAESE", "15s".to_owned()));
    env.push(("RELUKKO_TIEMOUT", "90s".to_owned()));
    let history = History::create("typo");
    env.push((WORKER_VAR, history.path().display().to_string()));
    let out = worker("plain_worker", false, 1, &env)
        .output()
        .expect("run workers");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(history.summary().entries, 2, "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (bad, meant) in [
        ("RELUKKO_LAESE", "RELUKKO_LEASE"),
        ("RELUKKO_TIEMOUT", "RELUKKO_TIMEOUT"),
    ] {
        let line = format!(
            "relukko: the environment has {bad}, which relukko does not read: did you mean {meant}? (it is ignored)\n"
        );
        assert_eq!(stderr.matches(&line).count(), 1, "{bad}: {text}");
    }
}

/// A misspelt server URL (`RELUKO_URL`, `RELUKKO_ULR`) with no real one:
/// the tests meant to lock on a server, so locking only this machine's files
/// would let another machine hold the resource too. Every lock fails, naming
/// the variable and the fix, and no body runs.
#[test]
fn a_misspelt_server_url_fails_every_lock() {
    for bad in ["RELUKO_URL", "RELUKKO_ULR"] {
        let (mut env, _dir) = local_env("typo-url");
        env.push((bad, "http://127.0.0.1:9".to_owned()));
        let history = History::create("typo-url");
        env.push((WORKER_VAR, history.path().display().to_string()));
        let out = worker("plain_worker", false, 1, &env)
            .output()
            .expect("run workers");
        let text = output_text(&out);
        assert!(!out.status.success(), "{bad}: {text}");
        assert_eq!(history.summary().entries, 0, "{bad}: {text}");
        let want = format!(
            "invalid setting {bad}: is set, but relukko reads RELUKKO_URL: without it every test would lock files"
        );
        assert!(text.contains(&want), "{bad}: {text}");
    }
}

#[test]
fn skip_switch_makes_no_request_and_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = [
        ("RELUKKO_TRUST_ME_IT_IS_LOCKED", "yes".to_owned()),
        ("RELUKKO_URL", format!("http://127.0.0.1:{port}")),
    ];
    let (out, history) = run("plain_worker", &env);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("locking is skipped"),
        "{text}"
    );
    assert_eq!(history.summary().entries, 1, "{text}");
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "the skip switch made a connection"
    );
}

/// The holder text of a lock, as the server recorded it.
fn creator_of(lock: &relukko::Lock) -> &str {
    relukko::creator_without_token(lock.creator.as_deref().unwrap_or_default())
}

/// `RELUKKO_LOCK_PREFIX`, `RELUKKO_CREATOR`, `creator = "..."` and
/// `RELUKKO_TIMEOUT` reach the server from a `#[locked]` test in a child
/// process.
#[test]
fn relukko_settings_reach_the_server_from_a_locked_test() {
    let server = TestServer::start();
    let rt = rt();
    let mut ws = rt
        .block_on(relukko_e2e::raw::ws_connect(
            server.base_url(),
            Some(server.api_key()),
        ))
        .unwrap();
    let mut env = server_env(&server);
    env.extend([
        ("RELUKKO_LOCK_PREFIX", "team-a/".to_owned()),
        ("RELUKKO_CREATOR", "nightly HIL".to_owned()),
        ("RELUKKO_TIMEOUT", "2s".to_owned()),
    ]);

    let (out, history) = run("env_worker", &env);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(history.summary().entries, 1, "{text}");
    let (kind, lock) = rt.block_on(relukko_e2e::raw::next_event_for(&mut ws, "team-a/e2e-env"));
    assert_eq!(kind, "created", "locked under the prefixed name");
    assert_eq!(creator_of(&lock), "nightly HIL");

    let (out, _) = run("env_creator_worker", &env);
    assert!(out.status.success(), "{}", output_text(&out));
    let (kind, lock) = rt.block_on(relukko_e2e::raw::next_event_for(
        &mut ws,
        "team-a/e2e-env-attr",
    ));
    assert_eq!(kind, "created");
    assert_eq!(
        creator_of(&lock),
        "from the attribute",
        "the attribute wins"
    );

    // Held by the driver (under the prefixed name): the worker gives up
    // after RELUKKO_TIMEOUT, not after the default 10 minutes.
    let held = Locker::relukko(client(&server))
        .creator("the e2e driver")
        .lock_blocking("team-a/e2e-env")
        .unwrap();
    let history = History::create("env-timeout");
    env.push((WORKER_VAR, history.path().display().to_string()));
    let mut child = worker("env_worker", true, 1, &env)
        .spawn()
        .expect("spawn worker");
    let until = std::time::Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("RELUKKO_TIMEOUT=2s was not used: still waiting after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    let waited = timed_out_after(&text, "could not lock e2e-env: ");
    assert!((2.0..60.0).contains(&waited), "waited {waited} s: {text}");
    assert!(text.contains("held by the e2e driver"), "{text}");
    assert_eq!(history.summary().entries, 0, "{text}");
    held.release_blocking().unwrap();
}

#[test]
fn relukko_server_sees_who_holds_it() {
    let server = TestServer::start();
    let c = client(&server);
    let lease = Locker::relukko(c.clone())
        .lock_blocking(LockOptions::new("e2e-creator").timeout(Duration::from_secs(30)))
        .unwrap();
    let lock = rt()
        .block_on(c.holder("e2e-creator"))
        .unwrap()
        .expect("held");
    let creator = relukko::creator_without_token(lock.creator.as_deref().unwrap()).to_owned();
    assert!(
        creator.contains('@') && creator.contains(&format!("pid={}", std::process::id())),
        "{creator}"
    );
    lease.release_blocking().unwrap();
}
