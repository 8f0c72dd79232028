//! The house's floors, checked on every `make test`: this test reads every `crate::…` path in `src/` (unit tests
//! left out), builds the import graph of the crate's top-level modules, and fails when a module imports one on a
//! floor above its own, or one of its own floor that imports it back (a circle).
//!
//! The floors, bottom up (drawn in `docs/ARCHITECTURE.md`):
//! 0. **foundation**: the clock, metrics, settings, the database's repositories, the memory budget, rate limits,
//!    the encodings of outside input;
//! 1. **infrastructure**: the token (`hsm`), the audit chain, the notifications outbox, CMS SignedData;
//! 2. **domain**: accounts and authentication, billing, the CA, documents, the certificate lifecycle, the TSA;
//! 3. **interface**: the CSC API, the web platform, HTTP errors, the access log, start-up (the composition root)
//!    and the fuzzing entry points.
//!
//! The imports that break these rules today are listed in [`KNOWN`], each to be removed by the redesign of issue 15.
//! The list only shrinks: a new breach fails, and so does a listed one that is gone (take it off the list).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the crate, with its floor.
const FLOORS: &[(&str, u8)] = &[
    ("admission", 0),
    ("encoding", 0),
    ("clock", 0),
    ("config", 0),
    ("db", 0),
    ("metrics", 0),
    ("ratelimit", 0),
    ("audit", 1),
    ("cms", 1),
    ("hsm", 1),
    ("notify", 1),
    ("accounts", 2),
    ("auth", 2),
    ("billing", 2),
    ("ca", 2),
    ("documents", 2),
    ("lifecycle", 2),
    ("tsa", 2),
    ("access_log", 3),
    ("csc", 3),
    ("error", 3),
    ("fuzz_targets", 3),
    ("startup", 3),
    ("web", 3),
];

/// The breaches of today, `from -> to`: an import upwards, or one that closes a circle on the same floor.
const KNOWN: &[(&str, &str)] = &[
    // The application context (`startup::AppState`) taken by domain functions and the interface.
    ("accounts", "startup"),
    ("billing", "startup"),
    ("ca", "startup"),
    ("documents", "startup"),
    ("lifecycle", "startup"),
    ("tsa", "startup"),
    ("csc", "startup"),
    ("web", "startup"),
    ("access_log", "startup"),
    // Domain errors as HTTP errors (`error::ApiError`).
    ("accounts", "error"),
    ("billing", "error"),
    ("ca", "error"),
    ("documents", "error"),
    ("lifecycle", "error"),
    ("tsa", "error"),
    // Circles on the domain floor.
    ("accounts", "ca"),
    ("accounts", "lifecycle"),
    ("billing", "accounts"),
    ("billing", "lifecycle"),
    ("documents", "accounts"),
    ("documents", "ca"),
    ("documents", "tsa"),
    ("lifecycle", "accounts"),
    ("lifecycle", "billing"),
    ("lifecycle", "ca"),
    ("lifecycle", "documents"),
    ("tsa", "accounts"),
    ("tsa", "ca"),
    // Circles on the interface floor (start-up registers the routes that take its context).
    ("startup", "access_log"),
    ("startup", "csc"),
    ("startup", "web"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests (a `#[cfg(test)]` module, by convention at the end of the file).
fn without_unit_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod ").map_or(text, |at| &text[..at])
}

/// The top-level modules a file names through `crate::…`, grouped imports (`use crate::{a, b::c}`) included.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The import graph of the top-level modules: `from -> {to}`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let floors: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let module = first.trim_end_matches(".rs").to_owned();
        if matches!(module.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        assert!(
            floors.contains_key(module.as_str()),
            "src/{first} is a top-level module without a floor: add it to FLOORS in tests/api/architecture.rs"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let to = graph.entry(module.clone()).or_default();
        for name in named_modules(without_unit_tests(&text)) {
            if name != module && floors.contains_key(name.as_str()) {
                to.insert(name);
            }
        }
    }
    graph
}

/// Whether `to` reaches `from` in `graph` (so that `from -> to` closes a circle).
fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, to: &str, from: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![to.to_owned()];
    while let Some(m) = stack.pop() {
        if m == from {
            return true;
        }
        if seen.insert(m.clone()) {
            stack.extend(graph.get(&m).into_iter().flatten().cloned());
        }
    }
    false
}

#[test]
fn no_module_imports_one_above_its_floor_or_closes_a_circle_beyond_the_known_ones() {
    let floors: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let graph = import_graph();
    let known: BTreeSet<(String, String)> = KNOWN.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let mut breaches = BTreeSet::new();
    for (from, tos) in &graph {
        for to in tos {
            let (f, t) = (floors[from.as_str()], floors[to.as_str()]);
            if t > f || (t == f && reaches(&graph, to, from)) {
                breaches.insert((from.clone(), to.clone()));
            }
        }
    }
    let new: Vec<_> = breaches.difference(&known).collect();
    let gone: Vec<_> = known.difference(&breaches).collect();
    println!(
        "{} breaches of the floors, {} of them known",
        breaches.len(),
        known.len()
    );
    assert!(
        new.is_empty(),
        "imports that break the floors (see the module's text for where things go): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "these breaches are gone: take them off KNOWN in tests/api/architecture.rs: {gone:?}"
    );
}

#[test]
fn the_graph_reader_sees_plain_and_grouped_imports_and_skips_unit_tests() {
    let code = "use crate::db::{self, Db};\nuse crate::{clock::Clock, hsm};\nfn f() { crate::metrics::x(); }\n\
                #[cfg(test)]\nmod tests { use crate::web; }\n";
    let names = named_modules(without_unit_tests(code));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names, ["clock", "db", "hsm", "metrics"]);
    // And the real graph has what this file's text says of it.
    let graph = import_graph();
    assert!(graph["startup"].contains("web"));
    assert!(
        graph["db"].is_empty(),
        "the repositories import nothing of the crate: {:?}",
        graph["db"]
    );
}
