//! Writes the workspace's `README.md` to `$OUT_DIR/README.md` with, in front
//! of each Rust block, the lines it needs to compile as a doc test, as hidden
//! (`# `) lines; `src/lib.rs` runs that copy as doc tests.
//!
//! The README itself carries no hidden lines, so it reads cleanly on a forge,
//! and every one of its Rust blocks is still compiled, and run. Doc tests drop
//! `#[test]` functions without compiling them, so in a block that declares
//! test functions (and no `main`), `#[test]` and `#[tokio::test]` are made to
//! mean `#[relukko::locked]`, which checks the attribute and compiles the body;
//! so does `#[relukko::test]` (which adds a `#[test]` of its own).

use std::path::PathBuf;

fn main() {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    println!("cargo:rerun-if-changed={}", readme.display());
    let text = std::fs::read_to_string(&readme).expect("read README.md");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("README.md");
    std::fs::write(out, with_hidden_lines(&text)).expect("write README.md");
}

/// The README with the hidden lines each Rust block needs.
fn with_hidden_lines(readme: &str) -> String {
    let mut out = String::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        if !line.trim_start().starts_with("```rust") {
            continue;
        }
        let mut block = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        out.push_str(&prelude(&block));
        out.push_str(&block);
        out.push_str("```\n");
    }
    out
}

/// The hidden lines for one block.
fn prelude(block: &str) -> String {
    let mut lines = Vec::new();
    if !block.contains("fn main") {
        if block.contains("#[tokio::test]") {
            lines.push("mod tokio { pub use ::tokio::*; pub use relukko::locked as test; }");
        }
        if block.contains("#[test]") {
            lines.push("use relukko::locked as test;");
        }
        if block.contains("#[relukko::test") {
            lines.push("mod relukko { pub use ::relukko::*; pub use ::relukko::locked as test; }");
        }
    }
    lines.iter().map(|l| format!("# {l}\n")).collect()
}
