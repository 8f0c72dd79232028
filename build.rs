//! Compiles pdf.js into the binary when `make web-vendor` has installed it (`src/web/vendor/node_modules`): sets
//! `cfg(pdfjs)`, and `web::signing::VENDOR` then serves it under `/static`. Without it (a fresh clone, no npm) the
//! build works and the signing page says previews are unavailable.

use std::path::Path;

const FILES: [&str; 2] = [
    "src/web/vendor/node_modules/pdfjs-dist/build/pdf.min.mjs",
    "src/web/vendor/node_modules/pdfjs-dist/build/pdf.worker.min.mjs",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pdfjs)");
    println!("cargo::rerun-if-changed=build.rs");
    // The directory always exists (package.json is committed): an install or removal under it is noticed.
    println!("cargo::rerun-if-changed=src/web/vendor");
    let present = FILES.iter().all(|f| Path::new(f).is_file());
    if present {
        for f in FILES {
            println!("cargo::rerun-if-changed={f}");
        }
        println!("cargo::rustc-cfg=pdfjs");
    } else {
        println!("cargo::warning=pdf.js is not installed (make web-vendor): the signing page will have no previews");
    }
}
