//! The layout of the library crates: no import circle between their files
//! (see `relukko_e2e::imports` for what counts as an import), and
//! `docs/ARCHITECTURE.md` describing every file of the tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use relukko_e2e::imports::{Graph, crate_graph};
use relukko_e2e::temp::TempDir;

/// Every crate root whose files are checked: (crate folder, root file).
const ROOTS: [(&str, &str); 6] = [
    ("relukko-test", "src/lib.rs"),
    ("relukko-test", "src/bin/relukko-server.rs"),
    ("relukko-test", "src/bin/relukko.rs"),
    ("relukko-test-macros", "src/lib.rs"),
    ("bench", "src/main.rs"),
    ("bench", "src/torture/main.rs"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn circles_of(graph: &Graph, crate_dir: &str) -> Vec<String> {
    graph
        .circles()
        .iter()
        .map(|c| {
            let files: Vec<String> = c
                .iter()
                .map(|&f| format!("{crate_dir}/{}", graph.files[f].display()))
                .collect();
            format!("{}\n{}", files.join(" <-> "), graph.describe(c))
        })
        .collect()
}

#[test]
fn no_import_circle_between_files() {
    let mut found = Vec::new();
    for (dir, root) in ROOTS {
        let graph = crate_graph(&workspace().join(dir), root);
        assert!(
            graph.files.len() > 1 || root.contains("bin"),
            "{dir}: no files read"
        );
        found.extend(circles_of(&graph, dir));
    }
    assert!(
        found.is_empty(),
        "import circles between files (a file that names something another defines imports it):\n{}",
        found.join("\n")
    );
}

/// The checker itself finds a circle, follows re-exports, and does not take
/// a folder's `mod.rs` re-exporting its files for an import of them.
#[test]
fn the_checker_sees_circles_through_re_exports() {
    let dir = TempDir::new("imports-check");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("shop")).unwrap();
    let write = |file: &str, text: &str| std::fs::write(src.join(file), text).unwrap();
    write(
        "lib.rs",
        "mod shop;\nmod price;\npub use shop::Cart;\n#[cfg(test)]\nmod tests;\n",
    );
    write(
        "shop/mod.rs",
        "mod cart;\nmod till;\npub use cart::Cart;\npub(crate) use till::Till;\n",
    );
    write(
        "shop/cart.rs",
        "//! use crate::price::Nope;\npub struct Cart(super::Till);\nconst S: &str = \"crate::price::X\";\n",
    );
    write("shop/till.rs", "pub struct Till;\n");
    write("tests.rs", "use crate::price::Price;\n");
    write(
        "price.rs",
        "#[derive(Debug)]\npub struct Price;\nfn f() { let _ = crate::Cart; }\n",
    );
    let graph = crate_graph(dir.path(), "src/lib.rs");
    let names: BTreeSet<String> = graph
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(
            [
                "src/lib.rs",
                "src/price.rs",
                "src/shop/cart.rs",
                "src/shop/mod.rs",
                "src/shop/till.rs"
            ]
            .map(String::from)
        ),
        "the test module is left out"
    );
    // cart -> till through the re-export in shop/mod.rs; price -> cart
    // through the crate root's; nothing from comments or strings; no circle.
    let edges: BTreeSet<(String, String)> = graph
        .edges
        .keys()
        .map(|&(a, b)| {
            (
                graph.files[a].display().to_string(),
                graph.files[b].display().to_string(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        BTreeSet::from([
            ("src/price.rs".into(), "src/shop/cart.rs".into()),
            ("src/shop/cart.rs".into(), "src/shop/till.rs".into()),
        ])
    );
    assert!(graph.circles().is_empty());

    // Now the till names the price, and the price the cart: a circle.
    write(
        "shop/till.rs",
        "use crate::price::Price;\npub struct Till(Price);\n",
    );
    let graph = crate_graph(dir.path(), "src/lib.rs");
    let circles = circles_of(&graph, "x");
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert!(
        circles[0].contains("x/src/price.rs <-> x/src/shop/cart.rs <-> x/src/shop/till.rs"),
        "{}",
        circles[0]
    );
}

/// The tree in `docs/ARCHITECTURE.md` (the indented block under "## The
/// tree") lists exactly the files of the module trees.
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
    for (dir, root) in ROOTS {
        for f in crate_graph(&workspace().join(dir), root).files {
            files.insert(format!("{dir}/{}", f.display()));
        }
    }
    let missing: Vec<_> = files.difference(&described).collect();
    let stale: Vec<_> = described.difference(&files).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md is out of date: not described {missing:?}; no such file {stale:?}"
    );
}
