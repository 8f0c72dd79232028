//! One AFL++ harness for every target of `parafa::fuzz_targets`: `parafa-fuzz <target>` (see `make fuzz`).

fn main() {
    let Some(target) = std::env::args().nth(1) else {
        eprintln!("usage: parafa-fuzz <{}>", parafa::fuzz_targets::TARGETS.join("|"));
        std::process::exit(2);
    };
    if !parafa::fuzz_targets::TARGETS.contains(&target.as_str()) {
        eprintln!("no target {target}: one of {}", parafa::fuzz_targets::TARGETS.join(", "));
        std::process::exit(2);
    }
    let fixture = parafa::fuzz_targets::Fixture::new(
        include_bytes!("../anchors/root.der"),
        include_bytes!("../anchors/issuing.der"),
    )
    .expect("the anchors in fuzz/anchors are certificates");
    afl::fuzz!(|data: &[u8]| {
        parafa::fuzz_targets::run(&target, data, &fixture);
    });
}
