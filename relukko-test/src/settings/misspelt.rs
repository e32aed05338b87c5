//! Misspelt settings: `RELUKO_URL` or `RELUKKO_ULR` is not read, so the local
//! backend is chosen silently and the tests lock nothing on the server. When
//! the environment has a variable that looks like one of ours but is not,
//! one line on stderr names the nearest real one, once per process.

use std::sync::{Once, OnceLock};

use relukko_protocol::vars::edit_distance_within;

/// Every variable this crate reads or sets (client, locking, server binary,
/// command line).
pub(crate) const KNOWN: [&str; crate::settings::vars::ALL.len()] = crate::settings::vars::ALL;

/// The most edits (insert, delete, substitute, swap two neighbours) between
/// a misspelling and the name meant.
const MAX_EDITS: usize = 2;

/// Says once per process which variables of the environment look like
/// misspellings of ours.
pub(crate) fn warn_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (bad, meant) in in_env() {
            crate::report::stderr::line(&format!(
                "the environment has {bad}, which relukko does not read: \
                 did you mean {meant}? (it is ignored)"
            ));
        }
    });
}

/// [`misspellings`] of the process environment, found once per process
/// (every fresh test process pays for it).
pub(crate) fn in_env() -> &'static [(String, &'static str)] {
    static FOUND: OnceLock<Vec<(String, &'static str)>> = OnceLock::new();
    FOUND
        .get_or_init(|| misspellings(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok())))
}

/// `(name, nearest known name)` for each name that is not ours but within
/// [`MAX_EDITS`] of one (ignoring case: `relukko_url` is not `RELUKKO_URL`
/// to the environment).
pub(crate) fn misspellings(names: impl IntoIterator<Item = String>) -> Vec<(String, &'static str)> {
    let mut found: Vec<(String, &'static str)> = names
        .into_iter()
        .filter(|n| !KNOWN.contains(&n.as_str()))
        .filter_map(|n| {
            let upper = n.to_ascii_uppercase();
            let (_, meant) = KNOWN
                .iter()
                .filter_map(|k| Some((edit_distance_within(&upper, k, MAX_EDITS)?, *k)))
                .min()?;
            Some((n, meant))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str]) -> Vec<(String, &'static str)> {
        misspellings(names.iter().map(|n| n.to_string()))
    }

    #[test]
    fn every_known_name_is_short_enough_for_the_distance() {
        assert!(KNOWN.iter().all(|k| k.len() < 40));
    }

    #[test]
    fn near_misses_name_the_real_variable() {
        assert_eq!(
            check(&[
                "RELUKO_URL",
                "RELUKKO_ULR",
                "relukko_timeout",
                "RELUKKO_API_KEYS",
                "RELLUKO_LEASE",
            ]),
            [
                ("RELLUKO_LEASE".to_owned(), "RELUKKO_LEASE"),
                ("RELUKKO_API_KEYS".to_owned(), "RELUKKO_API_KEY"),
                ("RELUKKO_ULR".to_owned(), "RELUKKO_URL"),
                ("RELUKO_URL".to_owned(), "RELUKKO_URL"),
                ("relukko_timeout".to_owned(), "RELUKKO_TIMEOUT"),
            ]
        );
    }

    #[test]
    fn every_variable_named_in_the_source_is_known() {
        // A new setting spelt out in a message or a test but missing from
        // `vars::ALL` would be called a misspelling of its neighbour.
        let misspelt = ["RELUKKO_SIGNAL", "RELUKKO_DBS", "RELUKKO_PASWORD"];
        let mut deliberate = vec![
            "RELUKKO_",
            "RELUKKO_ULR",
            "RELUKKO_BASE_ULR",
            "RELUKKO_LAESE",
            "RELUKKO_API_KEYS",
            "RELUKKO_E2E_WORKER",
        ];
        deliberate.extend(misspelt);
        // This package and, in the workspace, the others that read or set
        // our variables (a packaged crate has only its own sources).
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stack: Vec<std::path::PathBuf> = [
            "src",
            "../relukko-protocol/src",
            "../relukko-server/src",
            "../relukko-cli/src",
        ]
        .iter()
        .map(|p| here.join(p))
        .filter(|p| p.is_dir())
        .collect();
        let mut seen = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (i, _) in text.match_indices("\"RELUKKO_") {
                    let name: String = text[i + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    seen += 1;
                    assert!(
                        KNOWN.contains(&name.as_str()) || deliberate.contains(&name.as_str()),
                        "{name} in {} is not in vars::ALL",
                        path.display()
                    );
                }
            }
        }
        assert!(seen > 20, "only {seen} variable names found in the source");
        for name in misspelt {
            assert_eq!(check(&[name]).len(), 1, "{name}");
        }
    }

    #[test]
    fn real_and_unrelated_names_are_quiet() {
        let mut names: Vec<&str> = KNOWN.to_vec();
        names.extend([
            "PATH",
            "HOME",
            "RUST_LOG",
            "RELUKKO_E2E_WORKER",
            "CARGO_PKG_NAME",
        ]);
        assert_eq!(check(&names), []);
    }
}
