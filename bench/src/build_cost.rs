//! `cargo relukko-bench --build-cost`: what adding relukko-test costs a
//! user's cold build, beside the crates it is compared with.
//!
//! Writes four new crates with one test each into a temporary folder and
//! times a cold `cargo test --no-run` of each, every build in its own fresh
//! target folder (the registry cache is shared, and fetching is done before
//! the clock starts, so downloads are not counted). The four builds run one
//! after the other in one run, so their ratios are comparable on a shared
//! machine; with `--rounds N` they run N times, in alternating order, and
//! the medians are reported. Our crates depend on this workspace's
//! `relukko-test` by path, and every crate starts from this workspace's
//! `Cargo.lock`, so the packages the four share are built at the same
//! versions.
//!
//! Not part of the default bench (and not run in CI's quick mode): it takes
//! minutes and a few GB of disk while it runs; each target folder is deleted
//! right after its build, the whole folder at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::stats::{median, round3};

pub const USAGE: &str = "\
cargo relukko-bench --build-cost [--json] [--offline] [--rounds N]

    --json      print one JSON object instead of the table
    --offline   build from the registry cache alone (it must hold every package)
    --rounds N  build the four crates N times, in alternating order (default 1)";

/// The longest one build may take before the bench gives up on it.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// One of the four crates.
#[derive(Debug, Clone, Copy)]
struct Subject {
    key: &'static str,
    label: &'static str,
    dev_dependencies: &'static str,
    test: &'static str,
}

const SUBJECTS: [Subject; 4] = [
    Subject {
        key: "serial_test",
        label: "serial_test 4 (file_locks), one #[file_serial] test",
        dev_dependencies: r#"serial_test = { version = "4", features = ["file_locks"] }"#,
        test: "#[test]\n#[serial_test::file_serial]\nfn one() {}\n",
    },
    Subject {
        key: "floor",
        label: "reqwest (json) + tokio + serde, one test",
        dev_dependencies: r#"reqwest = { version = "0.12", default-features = false, features = ["json"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
serde = { version = "1", features = ["derive"] }"#,
        test: r#"#[derive(serde::Serialize)]
struct Lock {
    name: &'static str,
}

#[tokio::test]
async fn one() {
    let request = reqwest::Client::new()
        .post("http://127.0.0.1:9/v1/locks/")
        .json(&Lock { name: "build-cost" })
        .build();
    assert!(request.is_ok());
}
"#,
    },
    Subject {
        key: "relukko_default",
        label: "relukko-test, default features, one #[locked] test",
        dev_dependencies: r#"relukko-test = { path = "@RELUKKO@" }"#,
        test: "#[test]\n#[relukko::locked(\"build-cost\")]\nfn one() {}\n",
    },
    Subject {
        key: "relukko_no_default",
        label: "relukko-test, default-features = false, one #[locked] test",
        dev_dependencies: r#"relukko-test = { path = "@RELUKKO@", default-features = false }"#,
        test: "#[test]\n#[relukko::locked(\"build-cost\")]\nfn one() {}\n",
    },
];

/// A ratio of median wall times and its target.
struct Ratio {
    key: &'static str,
    label: &'static str,
    over: &'static str,
    under: &'static str,
    target: f64,
}

const RATIOS: [Ratio; 2] = [
    Ratio {
        key: "default_over_floor",
        label: "relukko-test default / reqwest+tokio+serde",
        over: "relukko_default",
        under: "floor",
        target: 1.3,
    },
    Ratio {
        key: "no_default_over_serial_test",
        label: "relukko-test no-default / serial_test",
        over: "relukko_no_default",
        under: "serial_test",
        target: 2.0,
    },
];

/// One cold build.
#[derive(Debug, Clone, Copy)]
struct Build {
    wall_s: f64,
    crates: usize,
}

/// Parses the options after `--build-cost`, runs, prints.
pub fn main(args: &[String]) -> ExitCode {
    let (mut as_json, mut offline, mut rounds) = (false, false, 1usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--build-cost" => {}
            "--json" => as_json = true,
            "--offline" => offline = true,
            "--rounds" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if (1..=20).contains(&n) => rounds = n,
                _ => {
                    eprintln!("relukko-bench: --rounds takes a number from 1 to 20\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("relukko-bench: unknown argument {other:?} with --build-cost\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("relukko-build-cost-{}", std::process::id()));
    let result = run(&dir, offline, rounds);
    let _ = fs::remove_dir_all(&dir);
    match result {
        Ok(report) if as_json => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", table(&report));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relukko-bench: build cost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, offline: bool, rounds: usize) -> Result<Value, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace folder")?;
    let relukko = workspace.join("relukko-test");
    // Absent only if the bench was moved out of its workspace; then cargo
    // resolves afresh.
    let lock = fs::read_to_string(workspace.join("Cargo.lock")).ok();
    let load_before = load_average();
    let started = Instant::now();
    let mut crates = Vec::new();
    for s in &SUBJECTS {
        let root = dir.join(s.key);
        write_crate(&root, s, &relukko, lock.as_deref())?;
        eprint!("relukko-bench: fetching for {} ... ", s.key);
        cargo(&root, &["fetch"], offline)?;
        eprintln!("done");
        crates.push(root);
    }
    let mut builds: Vec<Vec<Build>> = vec![Vec::new(); SUBJECTS.len()];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..SUBJECTS.len()).collect()
        } else {
            (0..SUBJECTS.len()).rev().collect()
        };
        for i in order {
            eprint!(
                "relukko-bench: round {}/{rounds}: cold build of {} ... ",
                round + 1,
                SUBJECTS[i].key
            );
            let b = cold_build(&crates[i], offline)?;
            eprintln!("{:.1} s, {} crates", b.wall_s, b.crates);
            builds[i].push(b);
        }
    }
    let load_after = load_average();
    let mut rows = serde_json::Map::new();
    for (s, runs) in SUBJECTS.iter().zip(&builds) {
        let walls: Vec<f64> = runs.iter().map(|b| b.wall_s).collect();
        let counts: Vec<f64> = runs.iter().map(|b| b.crates as f64).collect();
        rows.insert(
            s.key.to_owned(),
            json!({
                "label": s.label,
                "wall_s": round3(median(&walls)),
                "crates_compiled": median(&counts) as usize,
                "wall_s_runs": walls.iter().map(|w| round3(*w)).collect::<Vec<_>>(),
            }),
        );
    }
    let mut ratios = serde_json::Map::new();
    for r in &RATIOS {
        let wall = |k: &str| rows[k]["wall_s"].as_f64().unwrap_or(0.0);
        let value = ratio(wall(r.over), wall(r.under));
        ratios.insert(
            r.key.to_owned(),
            json!({
                "label": r.label,
                "value": round3(value),
                "target": r.target,
                "meets": value > 0.0 && value <= r.target,
            }),
        );
    }
    let mut machine = crate::machine::machine();
    machine["load_average_before"] = json!(load_before);
    machine["load_average_after"] = json!(load_after);
    Ok(json!({
        "build_cost": rows,
        "ratios": ratios,
        "settings": {
            "command": "cargo test --no-run, cold: a fresh CARGO_TARGET_DIR per build, registry cache shared, fetched beforehand",
            "rounds": rounds,
            "offline": offline,
            "elapsed_s": round3(started.elapsed().as_secs_f64()),
            "machine": machine,
        },
    }))
}

/// `over / under`, or 0 when `under` was not measured.
fn ratio(over: f64, under: f64) -> f64 {
    if under > 0.0 { over / under } else { 0.0 }
}

fn write_crate(root: &Path, s: &Subject, relukko: &Path, lock: Option<&str>) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write the crate in {}: {e}", root.display());
    fs::create_dir_all(root.join("src")).map_err(err)?;
    fs::create_dir_all(root.join("tests")).map_err(err)?;
    // TOML basic strings take backslashes escaped (Windows paths).
    let relukko = relukko.to_string_lossy().replace('\\', "\\\\");
    let manifest = format!(
        "[package]\nname = \"build-cost-{}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         # Its own workspace, whatever folder it is in.\n[workspace]\n\n[dev-dependencies]\n{}\n",
        s.key.replace('_', "-"),
        s.dev_dependencies.replace("@RELUKKO@", &relukko)
    );
    fs::write(root.join("Cargo.toml"), manifest).map_err(err)?;
    fs::write(root.join("src/lib.rs"), "").map_err(err)?;
    fs::write(root.join("tests/one.rs"), s.test).map_err(err)?;
    if let Some(lock) = lock {
        fs::write(root.join("Cargo.lock"), lock).map_err(err)?;
    }
    Ok(())
}

/// `cargo test --no-run` into a fresh target folder, which is deleted after.
fn cold_build(root: &Path, offline: bool) -> Result<Build, String> {
    let target = root.join("target");
    let _ = fs::remove_dir_all(&target);
    let start = Instant::now();
    let stderr = cargo(root, &["test", "--no-run", "--offline"], offline);
    let wall_s = start.elapsed().as_secs_f64();
    let _ = fs::remove_dir_all(&target);
    Ok(Build {
        wall_s,
        crates: compiled(&stderr?),
    })
}

/// The number of `Compiling` lines: packages compiled, each counted once
/// whether or not it has a build script.
fn compiled(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling "))
        .count()
}

/// Runs cargo in `root` with its own target folder; its stderr, or an error
/// with the end of it.
fn cargo(root: &Path, args: &[&str], offline: bool) -> Result<String, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log: PathBuf = root.join("cargo.log");
    let file = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env("CARGO_TERM_COLOR", "never")
        // A compiler cache would make a cold build warm.
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    if offline && !args.contains(&"--offline") {
        cmd.arg("--offline");
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > BUILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`cargo {}` in {} took longer than {} s",
                    args.join(" "),
                    root.display(),
                    BUILD_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait for cargo: {e}")),
        }
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    if status.success() {
        Ok(text)
    } else {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "`cargo {}` in {} failed ({status}):\n{}",
            args.join(" "),
            root.display(),
            tail.join("\n")
        ))
    }
}

/// The 1-, 5- and 15-minute load averages (Linux), to judge a shared machine.
fn load_average() -> Option<[f64; 3]> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The table of the default output.
fn table(report: &Value) -> String {
    let mut t = String::new();
    t += &format!(
        "{:<60} {:>8} {:>7}\n{}\n",
        "cold `cargo test --no-run` of a new crate",
        "wall s",
        "crates",
        "-".repeat(77)
    );
    for s in &SUBJECTS {
        let row = &report["build_cost"][s.key];
        t += &format!(
            "{:<60} {:>8.1} {:>7}\n",
            s.label,
            row["wall_s"].as_f64().unwrap_or(0.0),
            row["crates_compiled"]
        );
    }
    t += &format!(
        "\n{:<44} {:>6}  {:<8} {}\n{}\n",
        "ratio of wall times",
        "value",
        "target",
        "verdict",
        "-".repeat(77)
    );
    for r in &RATIOS {
        let v = &report["ratios"][r.key];
        let meets = v["meets"].as_bool().unwrap_or(false);
        t += &format!(
            "{:<44} {:>6.2}  <= {:<5} {}\n",
            r.label,
            v["value"].as_f64().unwrap_or(0.0),
            r.target,
            if meets { "meets" } else { "MISSES" }
        );
    }
    t += &format!("\n  settings: {}\n", report["settings"]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_compiling_lines_once_each() {
        let log = "    Updating index\n   Compiling libc v0.2.1\n   Compiling serde v1.0.0\n\
                   warning: unused\n    Finished `test` profile\n  Executable tests/one.rs";
        assert_eq!(compiled(log), 2);
        assert_eq!(compiled(""), 0);
    }

    #[test]
    fn ratios_name_measured_subjects_and_guard_zero() {
        for r in &RATIOS {
            assert!(SUBJECTS.iter().any(|s| s.key == r.over));
            assert!(SUBJECTS.iter().any(|s| s.key == r.under));
        }
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(ratio(3.0, 0.0), 0.0);
    }

    #[test]
    fn writes_a_crate_of_its_own_workspace() {
        let dir =
            std::env::temp_dir().join(format!("relukko-build-cost-test-{}", std::process::id()));
        let s = &SUBJECTS[2];
        write_crate(&dir, s, Path::new("/x/relukko-test"), Some("lock")).unwrap();
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{manifest}");
        assert!(
            manifest.contains(r#"relukko-test = { path = "/x/relukko-test" }"#),
            "{manifest}"
        );
        assert_eq!(fs::read_to_string(dir.join("Cargo.lock")).unwrap(), "lock");
        assert!(
            fs::read_to_string(dir.join("tests/one.rs"))
                .unwrap()
                .contains("locked")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
