//! Replays every seed and every finding of the fuzzers (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`, kept
//! by `make fuzz`) through the same entry points the fuzzers run (`parafa::fuzz_targets`): a file that once crashed
//! or hung a parser must now come back from it. Each target must have seeds, so an emptied corpus fails too.

use std::path::{Path, PathBuf};

use parafa::fuzz_targets::{self, Fixture, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_every_finding_of_the_fuzzers_is_survived() {
    let dir = fuzz_dir();
    let fixture = Fixture::new(
        &std::fs::read(dir.join("anchors/root.der")).expect("root anchor"),
        &std::fs::read(dir.join("anchors/issuing.der")).expect("issuing anchor"),
    )
    .expect("anchors");
    for target in TARGETS {
        let seeds = files_in(&dir.join("seeds").join(target));
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} has no seed");
        let findings = files_in(&dir.join("regressions").join(target));
        for file in seeds.iter().chain(&findings) {
            let data = std::fs::read(file).expect("read");
            eprintln!("{target}: {}", file.display());
            assert!(fuzz_targets::run(target, &data, &fixture), "no target {target}");
        }
    }
}

#[test]
fn the_verify_target_reads_the_seeds_signatures_to_the_end() {
    // The seeds are worth fuzzing from only if they reach the deep end: the signed seeds verify against the
    // anchors the fuzzer uses.
    let dir = fuzz_dir();
    let fixture = Fixture::new(
        &std::fs::read(dir.join("anchors/root.der")).expect("root anchor"),
        &std::fs::read(dir.join("anchors/issuing.der")).expect("issuing anchor"),
    )
    .expect("anchors");
    let limits = parafa::documents::verify::Limits::default();
    for name in ["signed.pdf", "enveloping.p7s"] {
        let file = std::fs::read(dir.join("seeds/verify").join(name)).expect("seed");
        let report = parafa::documents::verify::analyse(&file, None, &fixture.anchors, &limits, 1_800_000_000)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!report.signatures.is_empty(), "{name}: no signature found");
        for sig in &report.signatures {
            assert!(sig.signer.is_some(), "{name}: a signature without its signer");
            assert!(sig.intact && sig.signature_verifies && sig.trusted, "{name}: {sig:?}");
        }
    }
}
