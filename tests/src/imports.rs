//! The graph of imports between the files of a crate, read from the source
//! text alone, and its circles.
//!
//! Nodes are the files of the module tree, found from the crate root through
//! its `mod` lines (with `#[path]`); test-only modules (`#[cfg(test)]`) are
//! left out: a test may reach any part of the crate. There is an edge
//! `A -> B` when code in `A` names something that `B` defines: a `use`
//! line, or a path in the code (`crate::..`, `super::..`, `self::..`, or a
//! child module's name), attribute arguments included. A path through a
//! re-export (`pub use`) is followed to the file that defines the item. A
//! `mod` line, and a module's `pub use` of its own sub-modules' items, are the
//! tree's wiring, not uses: a `mod.rs` that only declares and re-exports its
//! files is tied to none of them. Nor is a visibility (`pub(in crate::a)`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The files of one crate and the imports between them.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every file of the module tree, relative to the crate's folder.
    pub files: Vec<PathBuf>,
    /// `(from, to)` file indexes, with the names that tie them.
    pub edges: BTreeMap<(usize, usize), BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(&'static str),
    Other(char),
}

/// The file's tokens, without comments; string literals kept as one token.
fn lex(src: &str) -> Vec<Tok> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let string = |i: &mut usize, hashes: usize| -> String {
        // `*i` is just past the opening quote.
        let mut text = String::new();
        while *i < s.len() {
            if s[*i] == '\\' && hashes == 0 {
                *i += 2;
                continue;
            }
            if s[*i] == '"' && (0..hashes).all(|h| s.get(*i + 1 + h) == Some(&'#')) {
                *i += 1 + hashes;
                return text;
            }
            text.push(s[*i]);
            *i += 1;
        }
        text
    };
    while i < s.len() {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && s.get(i + 1) == Some(&'/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && s.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            out.push(Tok::Str(string(&mut i, 0)));
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if s.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < s.len() && s[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if s.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                i += 1;
            }
            let word: String = s[start..i].iter().collect();
            // Raw and byte strings: r"..", r#".."#, b"..", br#".."#.
            if matches!(word.as_str(), "r" | "b" | "br" | "c" | "cr")
                && matches!(s.get(i), Some('"') | Some('#'))
            {
                let mut hashes = 0;
                while s.get(i + hashes) == Some(&'#') {
                    hashes += 1;
                }
                if s.get(i + hashes) == Some(&'"') {
                    i += hashes + 1;
                    out.push(Tok::Str(string(&mut i, hashes)));
                    continue;
                }
                if word == "r" && hashes == 1 {
                    // r#ident
                    i += 1;
                    continue;
                }
            }
            out.push(Tok::Ident(word));
        } else if c.is_ascii_digit() {
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                i += 1;
            }
        } else if c == ':' && s.get(i + 1) == Some(&':') {
            out.push(Tok::Punct("::"));
            i += 2;
        } else {
            out.push(match c {
                '{' => Tok::Punct("{"),
                '}' => Tok::Punct("}"),
                ';' => Tok::Punct(";"),
                ',' => Tok::Punct(","),
                '*' => Tok::Punct("*"),
                '#' => Tok::Punct("#"),
                '[' => Tok::Punct("["),
                ']' => Tok::Punct("]"),
                other => Tok::Other(other),
            });
            i += 1;
        }
    }
    out
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(w)) => Some(w),
        _ => None,
    }
}

fn is(t: Option<&Tok>, p: &str) -> bool {
    matches!(t, Some(Tok::Punct(q)) if *q == p)
}

/// A path as written at some place of a file, with the module it is in.
#[derive(Debug)]
struct Mention {
    /// The module the path is written in (its absolute path).
    module: Vec<String>,
    segments: Vec<String>,
    glob: bool,
    /// In a `pub use` line: a re-export.
    public_use: bool,
    alias: Option<String>,
}

/// One loaded file.
#[derive(Debug)]
struct FileModule {
    /// Its absolute module path.
    module: Vec<String>,
    mentions: Vec<Mention>,
    /// Child modules (file or inline), by the module they are in.
    children: BTreeMap<Vec<String>, BTreeSet<String>>,
    /// `mod x;` lines: (name, `#[path]`) in the file's own module or an inline one.
    file_children: Vec<(Vec<String>, String, Option<String>)>,
    /// Inline modules (absolute paths).
    inline: Vec<Vec<String>>,
}

/// Reads one file's tokens: its `mod` items and its paths.
fn scan(module: &[String], toks: &[Tok]) -> FileModule {
    let mut f = FileModule {
        module: module.to_vec(),
        mentions: Vec::new(),
        children: BTreeMap::new(),
        file_children: Vec::new(),
        inline: Vec::new(),
    };
    // (module path, brace depth that closes it)
    let mut stack: Vec<(Vec<String>, usize)> = vec![(module.to_vec(), usize::MAX)];
    let mut depth = 0usize;
    let mut test_attr = false;
    let mut path_attr: Option<String> = None;
    let mut i = 0;
    // Children are known only once read: collect the names first.
    let mut pending_paths: Vec<(usize, Vec<String>)> = Vec::new();
    while i < toks.len() {
        let here = stack.last().unwrap().0.clone();
        match &toks[i] {
            Tok::Punct("#") => {
                // An attribute: #[...] or #![...]
                let mut j = i + 1;
                if matches!(toks.get(j), Some(Tok::Other('!'))) {
                    j += 1;
                }
                if is(toks.get(j), "[") {
                    let start = j;
                    let mut level = 0;
                    while j < toks.len() {
                        if is(toks.get(j), "[") {
                            level += 1;
                        } else if is(toks.get(j), "]") {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        j += 1;
                    }
                    let attr = &toks[start + 1..j];
                    if ident(attr.first()) == Some("cfg")
                        && attr.len() == 4
                        && ident(attr.get(2)) == Some("test")
                    {
                        test_attr = true;
                    }
                    if ident(attr.first()) == Some("path")
                        && let Some(Tok::Str(p)) = attr.get(2)
                    {
                        path_attr = Some(p.clone());
                    }
                    // Paths inside attributes (`#[error("..", crate::x::f(..))]`).
                    pending_paths.push((start + 1, here.clone()));
                    i = j + 1;
                    continue;
                }
                i += 1;
            }
            Tok::Ident(w) if w == "mod" => {
                let name = ident(toks.get(i + 1)).unwrap_or_default().to_owned();
                let test = std::mem::take(&mut test_attr);
                let path = path_attr.take();
                if is(toks.get(i + 2), ";") {
                    if !test {
                        f.children
                            .entry(here.clone())
                            .or_default()
                            .insert(name.clone());
                        f.file_children.push((here.clone(), name, path));
                    }
                    i += 3;
                } else if is(toks.get(i + 2), "{") {
                    if test {
                        // Skip the test module's body.
                        let mut level = 0;
                        let mut j = i + 2;
                        while j < toks.len() {
                            if is(toks.get(j), "{") {
                                level += 1;
                            } else if is(toks.get(j), "}") {
                                level -= 1;
                                if level == 0 {
                                    break;
                                }
                            }
                            j += 1;
                        }
                        i = j + 1;
                    } else {
                        f.children
                            .entry(here.clone())
                            .or_default()
                            .insert(name.clone());
                        let mut inner = here.clone();
                        inner.push(name);
                        f.inline.push(inner.clone());
                        depth += 1;
                        stack.push((inner, depth));
                        i += 3;
                    }
                } else {
                    i += 1;
                }
            }
            Tok::Ident(w) if w == "use" && !is(toks.get(i.wrapping_sub(1)), "::") => {
                // `pub use` or `pub(crate) use` (`pub(in a::b)` is not used here).
                let public = (i >= 1 && ident(toks.get(i - 1)) == Some("pub"))
                    || (i >= 4
                        && ident(toks.get(i - 4)) == Some("pub")
                        && matches!(toks.get(i - 3), Some(Tok::Other('('))));
                test_attr = false;
                let mut j = i + 1;
                let mut leaves = Vec::new();
                use_tree(toks, &mut j, Vec::new(), &mut leaves);
                for (segments, glob, alias) in leaves {
                    f.mentions.push(Mention {
                        module: here.clone(),
                        segments,
                        glob,
                        public_use: public,
                        alias,
                    });
                }
                while j < toks.len() && !is(toks.get(j), ";") {
                    j += 1;
                }
                i = j + 1;
            }
            Tok::Punct("{") => {
                depth += 1;
                i += 1;
            }
            Tok::Punct("}") => {
                if stack.last().is_some_and(|(_, d)| *d == depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
                test_attr = false;
                i += 1;
            }
            Tok::Ident(w) if !matches!(w.as_str(), "pub" | "crate" | "super" | "in") => {
                if !matches!(
                    w.as_str(),
                    "async" | "const" | "extern" | "unsafe" | "fn" | "struct" | "enum" | "impl"
                ) {
                    test_attr = false;
                }
                pending_paths.push((i, here.clone()));
                i += 1;
            }
            Tok::Punct(";") => {
                test_attr = false;
                i += 1;
            }
            _ => {
                if matches!(toks[i], Tok::Ident(_)) {
                    pending_paths.push((i, here.clone()));
                }
                i += 1;
            }
        }
    }
    // Paths in the code: `crate::..`, `super::..`, `self::..`, `child::..`.
    for (start, here) in pending_paths {
        let mut j = start;
        let end = toks.len();
        // In an attribute, look at every token up to its end.
        let in_attr = j > 0 && is(toks.get(j - 1), "[");
        loop {
            if j >= end {
                break;
            }
            let starts_path = match ident(toks.get(j)) {
                Some("crate" | "super" | "self") => true,
                Some(w) => f.children.get(&here).is_some_and(|c| c.contains(w)),
                None => false,
            } && is(toks.get(j + 1), "::")
                && !is(toks.get(j.wrapping_sub(1)), "::")
                && !matches!(toks.get(j.wrapping_sub(1)), Some(Tok::Other('.')))
                // `pub(in crate::a::b)` says who may see an item, it uses nothing.
                && ident(toks.get(j.wrapping_sub(1))) != Some("in");
            if starts_path {
                let mut segments = vec![ident(toks.get(j)).unwrap().to_owned()];
                let mut k = j + 1;
                while is(toks.get(k), "::") {
                    match ident(toks.get(k + 1)) {
                        Some(w) => segments.push(w.to_owned()),
                        None => break,
                    }
                    k += 2;
                }
                f.mentions.push(Mention {
                    module: here.clone(),
                    segments,
                    glob: false,
                    public_use: false,
                    alias: None,
                });
                j = k;
            } else {
                j += 1;
            }
            if !in_attr || is(toks.get(j), "]") {
                break;
            }
        }
    }
    f
}

/// Reads a use tree from `toks[*j]`, collecting its leaves as
/// `(segments, glob, alias)`.
fn use_tree(
    toks: &[Tok],
    j: &mut usize,
    prefix: Vec<String>,
    leaves: &mut Vec<(Vec<String>, bool, Option<String>)>,
) {
    let mut path = prefix;
    if is(toks.get(*j), "::") {
        // `use ::ext::..`: another crate.
        path.push(String::new());
        *j += 1;
    }
    loop {
        match toks.get(*j) {
            Some(Tok::Ident(w)) => {
                if w == "self" && !path.is_empty() {
                    // `{self, ..}`: the prefix itself.
                } else {
                    path.push(w.clone());
                }
                *j += 1;
                if is(toks.get(*j), "::") {
                    *j += 1;
                    continue;
                }
                let mut alias = None;
                if ident(toks.get(*j)) == Some("as") {
                    alias = ident(toks.get(*j + 1)).map(str::to_owned);
                    *j += 2;
                }
                leaves.push((path, false, alias));
                return;
            }
            Some(Tok::Punct("*")) => {
                *j += 1;
                leaves.push((path, true, None));
                return;
            }
            Some(Tok::Punct("{")) => {
                *j += 1;
                while !is(toks.get(*j), "}") && *j < toks.len() {
                    use_tree(toks, j, path.clone(), leaves);
                    if is(toks.get(*j), ",") {
                        *j += 1;
                    }
                }
                *j += 1;
                return;
            }
            _ => return,
        }
    }
}

/// Loads the module tree of the crate whose root file is `root` (relative
/// to `crate_dir`) and builds its graph.
pub fn crate_graph(crate_dir: &Path, root: &str) -> Graph {
    let mut loaded: Vec<(PathBuf, FileModule)> = Vec::new();
    // (file, module path, whether it is a mod-rs file)
    let mut queue = vec![(PathBuf::from(root), Vec::<String>::new())];
    while let Some((file, module)) = queue.pop() {
        let text = std::fs::read_to_string(crate_dir.join(&file))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let fm = scan(&module, &lex(&text));
        let name = file.file_name().unwrap().to_str().unwrap();
        let mod_rs = matches!(name, "lib.rs" | "main.rs" | "mod.rs") || module.is_empty();
        let dir = file.parent().unwrap().to_path_buf();
        for (owner, child, path) in &fm.file_children {
            let inline: Vec<&String> = owner[module.len()..].iter().collect();
            let mut base = dir.clone();
            if !mod_rs && path.is_none() {
                base.push(file.file_stem().unwrap());
            }
            for seg in &inline {
                base.push(seg);
            }
            let child_file = match path {
                Some(p) => base.join(p),
                None if crate_dir.join(base.join(format!("{child}.rs"))).exists() => {
                    base.join(format!("{child}.rs"))
                }
                None => base.join(child).join("mod.rs"),
            };
            let mut child_module = owner.clone();
            child_module.push(child.clone());
            queue.push((child_file, child_module));
        }
        loaded.push((file, fm));
    }
    loaded.sort_by(|a, b| a.0.cmp(&b.0));

    // Which file holds each module (inline modules are in their file).
    let mut holder: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut reexports: BTreeMap<(Vec<String>, String), Vec<String>> = BTreeMap::new();
    for (n, (_, fm)) in loaded.iter().enumerate() {
        holder.insert(fm.module.clone(), n);
        for m in &fm.inline {
            holder.insert(m.clone(), n);
        }
    }
    for (_, fm) in &loaded {
        for m in fm.mentions.iter().filter(|m| m.public_use && !m.glob) {
            if let Some(abs) = absolute(&m.module, &m.segments, &fm.children)
                && let Some(name) = m.alias.clone().or_else(|| abs.last().cloned())
            {
                reexports.insert((m.module.clone(), name), abs);
            }
        }
    }

    let mut graph = Graph {
        files: loaded.iter().map(|(p, _)| p.clone()).collect(),
        edges: BTreeMap::new(),
    };
    for (from, (_, fm)) in loaded.iter().enumerate() {
        for m in &fm.mentions {
            let Some(abs) = absolute(&m.module, &m.segments, &fm.children) else {
                continue;
            };
            // A module re-exporting its own sub-modules' items: wiring.
            if m.public_use && abs.len() > m.module.len() && abs.starts_with(&m.module) {
                continue;
            }
            let Some(to) = locate(&abs, &holder, &reexports, 0) else {
                continue;
            };
            if to != from {
                let name = if m.glob {
                    "*".to_owned()
                } else {
                    m.segments.last().cloned().unwrap_or_default()
                };
                graph.edges.entry((from, to)).or_default().insert(name);
            }
        }
    }
    graph
}

/// The absolute module path of `segments` written in module `here`; `None`
/// for another crate's path.
fn absolute(
    here: &[String],
    segments: &[String],
    children: &BTreeMap<Vec<String>, BTreeSet<String>>,
) -> Option<Vec<String>> {
    let mut rest = segments;
    let mut base: Vec<String> = match rest.first()?.as_str() {
        "crate" => {
            rest = &rest[1..];
            Vec::new()
        }
        "self" => {
            rest = &rest[1..];
            here.to_vec()
        }
        "super" => {
            let mut b = here.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                b.pop();
                rest = &rest[1..];
            }
            b
        }
        first if children.get(here).is_some_and(|c| c.contains(first)) => here.to_vec(),
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file that defines what `abs` names, following re-exports.
fn locate(
    abs: &[String],
    holder: &BTreeMap<Vec<String>, usize>,
    reexports: &BTreeMap<(Vec<String>, String), Vec<String>>,
    hops: usize,
) -> Option<usize> {
    let k = (0..=abs.len())
        .rev()
        .find(|&k| holder.contains_key(&abs[..k]))?;
    let module = &abs[..k];
    if let Some(name) = abs.get(k)
        && hops < 8
        && let Some(target) = reexports.get(&(module.to_vec(), name.clone()))
    {
        let mut next = target.clone();
        next.extend(abs[k + 1..].iter().cloned());
        if next != abs {
            return locate(&next, holder, reexports, hops + 1);
        }
    }
    holder.get(module).copied()
}

impl Graph {
    /// The circles: sets of two files or more that reach each other.
    pub fn circles(&self) -> Vec<Vec<usize>> {
        // Tarjan's strongly connected components.
        struct State<'a> {
            next: Vec<Vec<usize>>,
            index: Vec<Option<usize>>,
            low: Vec<usize>,
            on: Vec<bool>,
            stack: Vec<usize>,
            counter: usize,
            out: Vec<Vec<usize>>,
            _g: &'a Graph,
        }
        fn visit(s: &mut State<'_>, v: usize) {
            s.index[v] = Some(s.counter);
            s.low[v] = s.counter;
            s.counter += 1;
            s.stack.push(v);
            s.on[v] = true;
            for w in s.next[v].clone() {
                match s.index[w] {
                    None => {
                        visit(s, w);
                        s.low[v] = s.low[v].min(s.low[w]);
                    }
                    Some(iw) if s.on[w] => s.low[v] = s.low[v].min(iw),
                    _ => {}
                }
            }
            if Some(s.low[v]) == s.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    s.out.push(scc);
                }
            }
        }
        let n = self.files.len();
        let mut next = vec![Vec::new(); n];
        for &(a, b) in self.edges.keys() {
            next[a].push(b);
        }
        let mut s = State {
            next,
            index: vec![None; n],
            low: vec![0; n],
            on: vec![false; n],
            stack: Vec::new(),
            counter: 0,
            out: Vec::new(),
            _g: self,
        };
        for v in 0..n {
            if s.index[v].is_none() {
                visit(&mut s, v);
            }
        }
        s.out.sort();
        s.out
    }

    /// A circle as text: its files and what ties them.
    pub fn describe(&self, circle: &[usize]) -> String {
        let mut text = String::new();
        for ((a, b), names) in &self.edges {
            if circle.contains(a) && circle.contains(b) {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                text += &format!(
                    "  {} -> {}: {}\n",
                    self.files[*a].display(),
                    self.files[*b].display(),
                    names.join(", ")
                );
            }
        }
        text
    }
}
