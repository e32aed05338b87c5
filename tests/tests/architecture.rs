//! The layout of the packages: in `relukko-test`, each layer (a folder, or a
//! file at the root) uses only the layers below it; and
//! `docs/ARCHITECTURE.md` describes every file of every package.
//!
//! Files of one module may use each other (the module is the unit); what is
//! checked is the direction between modules. The compiler enforces what it
//! can (`pub(crate)`, `pub(super)`, the package split); this test the rest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use relukko_e2e::temp::TempDir;

/// The layers of `relukko-test/src`, top down. A module may use those of
/// later entries; the shared ground (the last entry) may also use itself.
const LAYERS: [&[&str]; 7] = [
    &["runner"],
    &["locker"],
    &["lease"],
    &["backend"],
    &["settings"],
    &["client"],
    &["courtesy", "report", "rt", "error"],
];

/// The crate root's re-exports, by the module that defines them.
const ROOT_NAMES: [(&str, &str); 17] = [
    ("Error", "error"),
    ("Result", "error"),
    ("LockOptions", "locker"),
    ("Locker", "locker"),
    ("lock", "locker"),
    ("lock_blocking", "locker"),
    ("Lease", "lease"),
    ("LeaseState", "backend"),
    ("Client", "client"),
    ("ClientBuilder", "client"),
    ("ClientSettings", "client"),
    ("AcquireOptions", "client"),
    ("Create", "client"),
    ("RetryPolicy", "client"),
    ("WaitProgress", "client"),
    ("creator_without_token", "client"),
    ("test_support", "ground"),
];

/// The packages whose files `docs/ARCHITECTURE.md` describes.
const PACKAGES: [&str; 6] = [
    "relukko-protocol",
    "relukko-test",
    "relukko-test-macros",
    "relukko-server",
    "relukko-cli",
    "bench",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The layer index of a module, `None` for names outside the table (the
/// protocol's `Lock`, the macro).
fn layer(module: &str) -> Option<usize> {
    let module = ROOT_NAMES
        .iter()
        .find(|(name, _)| *name == module)
        .map_or(module, |(_, m)| m);
    if module == "ground" {
        return Some(LAYERS.len() - 1);
    }
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The code of a file without comments, strings and its inline test module.
fn code_of(text: &str) -> String {
    let text = text.split("\n#[cfg(test)]\nmod tests").next().unwrap();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// Each `crate::NAME` a piece of code names (also inside `use crate::{..}`
/// groups), leaving out re-exports (`pub use`, `pub(crate) use`): a
/// re-export hands a name on, it does not use it.
fn names_used(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for statement in code.split_inclusive([';', '{', '}']) {
        let s = statement.trim_start();
        if s.starts_with("pub use") || s.starts_with("pub(crate) use") {
            continue;
        }
        for (i, _) in statement.match_indices("crate::") {
            let rest = &statement[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    // `use crate::{a, b::c}`: the group spans the split on `{`, so read it
    // whole.
    let mut rest = code;
    while let Some(i) = rest.find("use crate::{") {
        let before = rest[..i].trim_end();
        let group = &rest[i + "use crate::{".len()..];
        let end = group.find("};").unwrap_or(group.len());
        if !(before.ends_with("pub") || before.ends_with("pub(crate)")) {
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
        rest = &group[end..];
    }
    found
}

/// Every `.rs` file below `dir`, relative to `base`.
fn rust_files(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(base, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(base).unwrap().to_path_buf());
        }
    }
}

/// Test-only files: unit tests in files of their own and their helpers.
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name == "test_support.rs"
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The arrows of `src` that run back up, as `file -> module (name)`.
fn upward_arrows(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, src, &mut files);
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let top = file
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" {
            continue; // the crate root declares and re-exports every layer
        }
        let own = layer(top).unwrap_or_else(|| panic!("{top} is in no layer of LAYERS"));
        let code = code_of(&std::fs::read_to_string(src.join(file)).unwrap());
        for name in names_used(&code) {
            // Every layer but the ground is one module, which may use itself.
            let Some(to) = layer(&name) else { continue };
            if to < own {
                found.push(format!("{} -> {name}", file.display()));
            }
        }
    }
    found
}

#[test]
fn each_layer_of_the_runtime_uses_only_the_layers_below() {
    let src = workspace().join("relukko-test/src");
    let found = upward_arrows(&src);
    assert!(
        found.is_empty(),
        "arrows that run back up (see LAYERS and docs/ARCHITECTURE.md):\n{}",
        found.join("\n")
    );
}

/// The check itself: an arrow up is found, in a path or a `use` group, but
/// not in a comment, a string, a re-export or the inline test module.
#[test]
fn the_layer_check_sees_an_arrow_up() {
    let dir = TempDir::new("layers-check");
    let src = dir.path();
    std::fs::create_dir_all(src.join("client")).unwrap();
    std::fs::create_dir_all(src.join("backend")).unwrap();
    let write = |file: &str, text: &str| std::fs::write(src.join(file), text).unwrap();
    write("lib.rs", "mod client;\nmod backend;\n");
    write("backend/mod.rs", "use crate::client::Client;\n");
    write(
        "client/mod.rs",
        "//! crate::locker::Locker\nconst S: &str = \"crate::lease\";\n\
         pub use crate::settings::ClientSettings;\n\
         #[cfg(test)]\nmod tests {\n    use crate::Locker;\n}\n",
    );
    assert_eq!(upward_arrows(src), Vec::<String>::new());
    write(
        "client/calls.rs",
        "use crate::{\n    error::Error,\n    backend::Held,\n};\n",
    );
    assert_eq!(upward_arrows(src), ["client/calls.rs -> backend"]);
    write(
        "client/calls.rs",
        "fn f() { let _ = crate::Lease::name; }\n",
    );
    assert_eq!(upward_arrows(src), ["client/calls.rs -> Lease"]);
}

/// The tree in `docs/ARCHITECTURE.md` (the indented block under "## The
/// tree") lists exactly the source files of the packages (tests left out).
#[test]
fn the_architecture_doc_names_every_file() {
    let doc = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let block = doc
        .split("## The tree")
        .nth(1)
        .and_then(|rest| rest.split("```text").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ARCHITECTURE.md has a ```text block under \"## The tree\"");
    // Each line: two spaces of indent per level, a name (`dir/` or
    // `file.rs`), then what it holds.
    let mut described = BTreeSet::new();
    let mut folders: Vec<String> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        let name = line.split_whitespace().next().unwrap();
        assert!(indent % 2 == 0, "odd indent: {line:?}");
        folders.truncate(indent / 2);
        if name.ends_with('/') {
            folders.push(name.to_owned());
        } else {
            assert!(
                line.trim_start().len() > name.len() + 3,
                "say what {name} holds: {line:?}"
            );
            described.insert(format!("{}{name}", folders.concat()));
        }
    }
    let mut files = BTreeSet::new();
    for package in PACKAGES {
        let dir = workspace().join(package);
        let mut found = Vec::new();
        rust_files(&dir, &dir.join("src"), &mut found);
        for f in found.iter().filter(|f| !is_test_file(f)) {
            files.insert(format!("{package}/{}", f.display()));
        }
    }
    let missing: Vec<_> = files.difference(&described).collect();
    let stale: Vec<_> = described.difference(&files).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md is out of date: not described {missing:?}; no such file {stale:?}"
    );
}
