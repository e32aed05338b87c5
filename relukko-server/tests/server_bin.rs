//! The `relukko-server` binary as a user runs it: settings, start-up, one log
//! line per request, refusal without a key, clean exit on SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use relukko_e2e::child::{get, start, wait_exit};

/// The server binary with none of the caller's `RELUKKO_*` settings.
fn command() -> std::process::Command {
    relukko_e2e::child::command(env!("CARGO_BIN_EXE_relukko-server"))
}

#[test]
fn serves_logs_and_stops_cleanly_on_sigterm() {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "bin-secret-key")
        .env("RELUKKO_BIND_PORT", "0");
    let mut server = start(cmd);
    assert!(
        server.addr.ip().is_loopback(),
        "default bind is 127.0.0.1: {}",
        server.addr
    );

    let (status, _) = get(server.addr, "/healthchecker", None);
    assert_eq!(status, 200);
    let (status, body) = get(server.addr, "/v1/locks/", Some("bin-secret-key"));
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, body) = get(server.addr, "/v1/locks/", None);
    assert_eq!(status, 401, "{body}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = wait_exit(&mut server.child);
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    let log = server.final_stderr();
    assert!(log.contains("GET /healthchecker 200"), "{log}");
    assert!(log.contains("GET /v1/locks/ 401"), "{log}");
    assert!(
        !log.contains("bin-secret-key"),
        "the key leaked into the log: {log}"
    );
}

#[test]
fn stops_cleanly_on_ctrl_c() {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "k").args(["--port", "0"]);
    let mut server = start(cmd);
    // Right after the listening line: the handlers are already in place.
    let sent = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let exit = wait_exit(&mut server.child);
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn flags_override_the_environment() {
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "k")
        .env("RELUKKO_BIND_PORT", "not a port") // never read: the flag wins
        .env("RELUKKO_LOG", "debug")
        .args([
            "--bind",
            "127.0.0.1",
            "--port=0",
            "--grace",
            "1s",
            "--cleanup-interval",
            "200ms",
        ]);
    let server = start(cmd);
    let (status, _) = get(server.addr, "/healthchecker", None);
    assert_eq!(status, 200);
}

#[test]
fn refuses_to_start_without_a_key() {
    let output = command().env("RELUKKO_BIND_PORT", "0").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RELUKKO_API_KEY is not set"), "{stderr}");
    assert!(output.stdout.is_empty(), "it must not claim to listen");

    let output = command().env("RELUKKO_API_KEY", "").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("RELUKKO_API_KEY"));
}

#[test]
fn bad_settings_exit_2_naming_the_setting() {
    /// Arguments, environment, and the setting the message must name.
    type Case = (
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 5] = [
        (&["--port", "99999"], &[], "--port"),
        (&["--grace", "soon"], &[], "--grace"),
        (&["--what"], &[], "--what"),
        (
            &[],
            &[("RELUKKO_CLEANUP_INTERVAL", "often")],
            "RELUKKO_CLEANUP_INTERVAL",
        ),
        (&[], &[("RELUKKO_LOG", "loud")], "RELUKKO_LOG"),
    ];
    for (args, env, named) in cases {
        let output = command()
            .env("RELUKKO_API_KEY", "k")
            .env("RELUKKO_BIND_PORT", "0")
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?} {env:?}: {stderr}");
    }
}

#[test]
fn help_explains_the_settings() {
    let output = command().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "RELUKKO_API_KEY",
        "RELUKKO_BIND_ADDR",
        "RELUKKO_BIND_PORT",
        "--grace",
        "--cleanup-interval",
        "RELUKKO_LOG",
    ] {
        assert!(help.contains(word), "{word} missing from --help");
    }
}

/// `RELUKKO_BIND_ADDR`, `--grace` and `--cleanup-interval` act on the server:
/// it listens where it was told, and an expired lock goes after the short
/// grace, at the next short pass (the defaults would keep it for minutes).
#[test]
fn bind_address_grace_and_cleanup_interval_act_on_the_server() {
    // 127.0.0.2 is loopback too on Linux (all of 127/8 is), and not the default.
    let bind = if cfg!(target_os = "linux") {
        "127.0.0.2"
    } else {
        "127.0.0.1"
    };
    let mut cmd = command();
    cmd.env("RELUKKO_API_KEY", "k")
        .env("RELUKKO_BIND_ADDR", bind)
        .args([
            "--port",
            "0",
            "--grace",
            "1s",
            "--cleanup-interval",
            "100ms",
        ]);
    let server = start(cmd);
    assert_eq!(server.addr.ip().to_string(), bind);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let c = relukko::Client::builder(format!("http://{}", server.addr))
        .api_key("k")
        .websocket(false)
        .build()
        .unwrap();
    rt.block_on(async {
        let lock = c
            .create("bin-expiry", None)
            .await
            .unwrap()
            .lock()
            .expect("free");
        c.keep_alive_for(lock.id, Duration::from_secs(1))
            .await
            .unwrap();
        let set = Instant::now();
        // Expires about 1 s from now (the server keeps whole seconds), then
        // lingers for the 1 s grace.
        while c.holder("bin-expiry").await.unwrap().is_some() {
            assert!(
                set.elapsed() < Duration::from_secs(25),
                "still there: --grace or --cleanup-interval was not used"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let gone = set.elapsed();
        assert!(
            gone >= Duration::from_millis(900),
            "removed {gone:?} after: before its expiry plus grace"
        );
    });
}
