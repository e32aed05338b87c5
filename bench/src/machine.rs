//! What the figures were measured on: CPUs, kernel, OS, compiler.

use serde_json::json;

/// What the figures were measured on.
pub(crate) fn machine() -> serde_json::Value {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .ok();
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    });
    // Cheap (tens of milliseconds) and telling; absent if rustc is not on PATH.
    let rustc =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    json!({"nproc": nproc, "cpu": cpu, "kernel": kernel, "os": std::env::consts::OS, "rustc": rustc})
}
