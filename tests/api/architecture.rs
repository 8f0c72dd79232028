//! The house's floors, checked on every `make test`: this test reads every `crate::…` path in `src/` (unit tests
//! left out), builds the import graph of the crate's top-level modules, and fails when a module imports one on a
//! floor above its own, or one of its own floor that imports it back (a circle).
//!
//! The floors, bottom up (drawn in `docs/ARCHITECTURE.md`):
//! 0. **foundation**: the clock, metrics, settings, the texts in both languages (`i18n`), the database's
//!    repositories, the memory budget, rate limits, the encodings of outside input;
//! 1. **infrastructure**: the token (`hsm`), the audit chain, the notifications outbox, CMS SignedData, the PDF
//!    reader and writer (`pdf`);
//! 2. **domain**: accounts and authentication, billing, the CA, documents, the certificate lifecycle, the TSA;
//! 3. **interface**: the CSC API, the web platform, each area's HTTP handlers (`<area>/routes.rs`, a node of its
//!    own), the application context handlers receive (`app`), HTTP errors, the access log, start-up (the
//!    composition root) and the fuzzing entry points.
//!
//! A path counts by its `crate::…` form: a module imported by name and then used as `ca::routes::…` counts as `ca`.
//!
//! Within the domain floor the areas build on one another without a circle: the lifecycle orchestrates accounts,
//! billing and documents; documents build on the CA and the TSA; accounts on authentication.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the crate, with its floor.
const FLOORS: &[(&str, u8)] = &[
    ("admission", 0),
    ("encoding", 0),
    ("i18n", 0),
    ("clock", 0),
    ("config", 0),
    ("db", 0),
    ("metrics", 0),
    ("ratelimit", 0),
    ("audit", 1),
    ("cms", 1),
    ("hsm", 1),
    ("notify", 1),
    ("pdf", 1),
    ("legal", 1),
    ("accounts", 2),
    ("auth", 2),
    ("billing", 2),
    ("ca", 2),
    ("documents", 2),
    ("lifecycle", 2),
    ("oauth", 2),
    ("signing", 2),
    ("trust", 2),
    ("tsa", 2),
    ("access_log", 3),
    ("app", 3),
    ("csc", 3),
    ("error", 3),
    ("fuzz_targets", 3),
    ("startup", 3),
    ("web", 3),
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

/// An identifier at the start of `text`.
fn ident(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The paths a file names through `crate::…` (grouped imports, `use crate::{a, b::c}`, included), each cut to its
/// first two segments: `ca::routes`, `db::credentials`, `clock`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let two_segments = |text: &str| -> Option<String> {
        let first = ident(text.trim_start());
        if first.is_empty() {
            return None;
        }
        let after = &text.trim_start()[first.len()..];
        match after.strip_prefix("::").map(ident) {
            Some(second) if !second.is_empty() => Some(format!("{first}::{second}")),
            _ => Some(first),
        }
    };
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            names.extend(group[..end].split(',').filter_map(two_segments));
        } else {
            names.extend(two_segments(rest));
        }
    }
    names
}

/// The node of the graph a module path belongs to: an area's HTTP handlers (`ca::routes`, on the interface floor)
/// or a top-level module.
fn node_of(path: &str, routes: &BTreeSet<String>) -> String {
    if routes.contains(path) {
        return path.to_owned();
    }
    path.split("::").next().unwrap_or(path).to_owned()
}

/// The floor of a node: an area's `routes` are on the interface floor.
fn floor_of(node: &str) -> u8 {
    if node.ends_with("::routes") {
        return 3;
    }
    FLOORS
        .iter()
        .find(|(m, _)| *m == node)
        .map(|(_, f)| *f)
        .expect("a module with a floor")
}

/// The import graph of the top-level modules, each area's `routes.rs` apart: `from -> {to}`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let floors: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let module_path = |file: &Path| -> String {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.join("::")
    };
    let routes: BTreeSet<String> = files
        .iter()
        .map(|f| module_path(f))
        .filter(|m| m.matches("::").count() == 1 && m.ends_with("::routes"))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let path = module_path(file);
        let top = path.split("::").next().unwrap().to_owned();
        if matches!(top.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        assert!(
            floors.contains_key(top.as_str()),
            "src/{top} is a top-level module without a floor: add it to FLOORS in tests/api/architecture.rs"
        );
        let from = node_of(&path, &routes);
        let text = std::fs::read_to_string(file).unwrap();
        let to = graph.entry(from.clone()).or_default();
        for name in named_modules(without_unit_tests(&text)) {
            let node = node_of(&name, &routes);
            if node != from && (floors.contains_key(node.as_str()) || routes.contains(&node)) {
                to.insert(node);
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
fn no_module_imports_one_above_its_floor_or_closes_a_circle() {
    let graph = import_graph();
    let mut breaches = BTreeSet::new();
    for (from, tos) in &graph {
        for to in tos {
            let (f, t) = (floor_of(from), floor_of(to));
            if t > f || (t == f && reaches(&graph, to, from)) {
                breaches.insert((from.clone(), to.clone()));
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "imports that break the floors, `from -> to` (see the module's text and docs/ARCHITECTURE.md for where \
         things go): {breaches:?}"
    );
}

#[test]
fn the_graph_reader_sees_plain_and_grouped_imports_and_skips_unit_tests() {
    let code = "use crate::db::{self, Db};\nuse crate::{clock::Clock, hsm};\nfn f() { crate::metrics::x(); }\n\
                #[cfg(test)]\nmod tests { use crate::web; }\n";
    let names = named_modules(without_unit_tests(code));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(names, ["clock::Clock", "db", "hsm", "metrics::x"]);
    // And the real graph has what this file's text says of it.
    let graph = import_graph();
    assert!(graph["startup"].contains("web"));
    assert!(graph["lifecycle"].contains("billing") && !graph["billing"].contains("lifecycle"));
    assert!(
        graph["ca::routes"].contains("app"),
        "an area's handlers are a node of their own"
    );
    assert!(
        graph["db"].is_empty(),
        "the repositories import nothing of the crate: {:?}",
        graph["db"]
    );
}
