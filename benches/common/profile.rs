//! Where the CPU goes during a timed section, by layer: `perf record` samples the whole machine on the CPU clock
//! (every sample is 1/`FREQ` s of one core's time) with DWARF call chains; each sample of the server process is given
//! to the first frame, from the leaf up, that belongs to a layer (HTTP, JSON, DB, HSM, audit, …), so a `memcpy`
//! called by the JSON parser counts as JSON. Kernel samples are split by what the kernel was doing (network,
//! hand-offs between threads, files, memory, polling). Samples of the load generator (this process), of PostgreSQL's
//! processes and idle time are counted beside.
//!
//! Functions inlined into their caller count as the caller's layer (`perf script --no-inline`: resolving inlined
//! frames takes minutes); the split is of the server's own CPU, measured here, not of the wall time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::note;

/// Samples per second per core.
pub const FREQ: u32 = 499;

/// A `perf record` running over the whole machine.
pub struct Profile {
    child: Child,
    path: PathBuf,
    started: Instant,
}

/// The layers of the server, in the order the report prints them. A sample goes to the first frame from the leaf
/// that matches one of [`RULES`]; a sample whose chain matches none goes to `runtime`, `alloc`, `copies` or `other`
/// by its leaf (every thread's chain ends in the runtime's or the thread's start, so the runtime is only the leaf's).
pub const LAYERS: [&str; 16] = [
    "http",
    "json",
    "db",
    "hsm",
    "audit",
    "parafa",
    "metrics_logs",
    "runtime",
    "alloc",
    "copies",
    "other",
    "kernel_network",
    "kernel_handoffs",
    "kernel_files",
    "kernel_memory",
    "kernel_other",
];

/// What each layer means, for the report.
pub fn layer_meaning(layer: &str) -> &'static str {
    match layer {
        "http" => "actix-web / actix-http: parsing, routing, middleware, writing the answer",
        "json" => "serde_json / serde: request and answer bodies",
        "db" => "sqlx and SQLite (PostgreSQL's own processes are counted apart)",
        "hsm" => "cryptoki, the PKCS#11 module (SoftHSM2 + its OpenSSL): the token's own work",
        "audit" => "the audit trail: recording and sealing",
        "parafa" => "Parafa's own code outside the layers above (handlers, ledger, caches)",
        "metrics_logs" => "prometheus metrics and tracing",
        "runtime" => "tokio / actix runtimes, channels, thread parking, with no layer above them",
        "alloc" => "malloc / free with no layer above them in the chain",
        "copies" => "memcpy / memmove / memset with no layer above them",
        "other" => "anything else in user space",
        "kernel_network" => "kernel: loopback TCP (send, receive, softirq)",
        "kernel_handoffs" => "kernel: futex wake-ups and context switches between threads",
        "kernel_files" => "kernel: file reads, writes and syncs (SQLite's WAL)",
        "kernel_memory" => "kernel: page faults, mmap / munmap",
        "kernel_other" => "kernel: anything else (epoll, timers, syscall entry)",
        _ => "",
    }
}

/// User-space rules: (layer, symbol or object substrings). Checked in this order at each frame.
const RULES: [(&str, &[&str]); 7] = [
    ("audit", &["parafa::audit::", "parafa::db::audit::"]),
    (
        "hsm",
        &[
            "softhsm",
            "libcrypto",
            "cryptoki::",
            "cryptoki_sys",
            "parafa::hsm::",
            "SoftHSM",
            "OSSL",
            "ossl_",
        ],
    ),
    (
        "db",
        &[
            "sqlx",
            "sqlite3",
            "libsqlite3",
            "parafa::db::",
            "tokio_postgres",
            "postgres_protocol",
        ],
    ),
    ("json", &["serde_json::", "serde::de", "serde::ser", "serde_core::"]),
    (
        "metrics_logs",
        &["prometheus::", "tracing::", "tracing_core::", "tracing_subscriber::"],
    ),
    (
        "http",
        &[
            "actix_http::",
            "actix_web::",
            "actix_server::",
            "actix_router::",
            "httparse::",
            "http::header",
            "h2::",
        ],
    ),
    ("parafa", &["parafa::"]),
];

/// The runtime's frames, recognised at the leaf only.
const RUNTIME: [&str; 8] = [
    "tokio::",
    "actix_rt::",
    "futures_",
    "crossbeam",
    "parking_lot",
    "flume::",
    "pthread_",
    "std::sys::",
];

/// Kernel rules: (layer, function substrings), checked over the whole kernel part of the chain in this order.
const KERNEL_RULES: [(&str, &[&str]); 4] = [
    (
        "kernel_network",
        &[
            "tcp_",
            "sock_",
            "inet_",
            "net_rx",
            "__netif",
            "ip_finish",
            "skb_",
            "loopback",
            "sys_sendto",
            "sys_recvfrom",
        ],
    ),
    (
        "kernel_files",
        &[
            "ext4",
            "xfs_",
            "jbd2",
            "fsync",
            "filemap",
            "vfs_read",
            "vfs_write",
            "shmem_",
            "pwrite",
            "pread",
        ],
    ),
    (
        "kernel_memory",
        &[
            "page_fault",
            "do_anonymous",
            "mmap",
            "munmap",
            "madvise",
            "clear_page",
            "handle_mm_fault",
        ],
    ),
    (
        "kernel_handoffs",
        &[
            "futex",
            "schedule",
            "finish_task_switch",
            "__switch_to",
            "try_to_wake_up",
            "ttwu",
        ],
    ),
];

impl Profile {
    /// Starts sampling, writing under `dir`; `None` (with a note) when `perf` is missing or refused.
    pub fn start(dir: &Path, tag: &str) -> Option<Profile> {
        static RECORDINGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let n = RECORDINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("perf-{n}-{tag}.data"));
        let child = Command::new("perf")
            .args([
                "record",
                "-a",
                "-e",
                "cpu-clock",
                "-F",
                &FREQ.to_string(),
                "--call-graph",
                "dwarf,8192",
                "-o",
            ])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => {
                // perf needs a moment to open its events on every core.
                std::thread::sleep(std::time::Duration::from_millis(500));
                Some(Profile {
                    child,
                    path,
                    started: Instant::now(),
                })
            }
            Err(e) => {
                note(format!("perf not available ({e}): no CPU split by layer"));
                None
            }
        }
    }

    /// Stops sampling and splits the samples; `None` (with a note) when perf failed.
    pub fn finish(mut self, server_pid: u32) -> Option<Split> {
        let secs = self.started.elapsed().as_secs_f64();
        // SIGINT makes perf write its header and exit.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().ok()?;
        if !self.path.exists() {
            note(format!("perf record left no data ({status}): no CPU split by layer"));
            return None;
        }
        let t = Instant::now();
        let out = Command::new("perf")
            .args(["script", "--no-inline", "-F", "comm,pid,tid,ip,sym,dso", "-i"])
            .arg(&self.path)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        // `PARAFA_BENCH_PERF_DIR` keeps the recording there, to look further (`perf report -i …`).
        match std::env::var_os("PARAFA_BENCH_PERF_DIR") {
            Some(dir) => {
                let kept = Path::new(&dir).join(self.path.file_name().unwrap_or_default());
                if std::fs::rename(&self.path, &kept).is_err() {
                    let _ = std::fs::copy(&self.path, &kept);
                    let _ = std::fs::remove_file(&self.path);
                }
                note(format!("perf recording kept: {}", kept.display()));
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        let split = Split::parse(
            &String::from_utf8_lossy(&out.stdout),
            server_pid,
            std::process::id(),
            secs,
        );
        note(format!(
            "perf: {} samples over {secs:.1} s, read in {:.1} s",
            split.total,
            t.elapsed().as_secs_f64()
        ));
        Some(split)
    }
}

/// Samples by process and layer.
#[derive(Default)]
pub struct Split {
    /// Samples of the server by layer.
    pub server: BTreeMap<&'static str, u64>,
    pub server_total: u64,
    /// Samples of the server by thread name (digits dropped: `hsm-sign-0` and `hsm-sign-1` are one).
    pub threads: BTreeMap<String, u64>,
    /// Samples of this process (the load generator).
    pub client: u64,
    /// Samples of PostgreSQL's processes.
    pub postgres: u64,
    pub idle: u64,
    pub total: u64,
    pub secs: f64,
}

impl Split {
    fn parse(text: &str, server_pid: u32, client_pid: u32, secs: f64) -> Split {
        let mut split = Split {
            secs,
            ..Split::default()
        };
        for sample in text.split("\n\n") {
            let mut lines = sample.lines().filter(|l| !l.trim().is_empty());
            let Some(header) = lines.next() else { continue };
            let Some(pid_tid) = header.split_whitespace().last() else {
                continue;
            };
            let pid: u32 = pid_tid
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(u32::MAX);
            split.total += 1;
            let comm = header.trim_start();
            let thread: String = header[..header.len() - pid_tid.len()]
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
                .trim()
                .to_owned();
            if pid == 0 {
                split.idle += 1;
            } else if pid == server_pid {
                split.server_total += 1;
                *split.threads.entry(thread).or_default() += 1;
                let frames: Vec<(&str, &str)> = lines.filter_map(frame).collect();
                *split.server.entry(layer(&frames)).or_default() += 1;
            } else if pid == client_pid {
                split.client += 1;
            } else if comm.starts_with("postgres") {
                split.postgres += 1;
            }
        }
        split
    }

    /// CPU milliseconds per unit of work (`units` of them done while sampling) for `samples` samples.
    pub fn ms_per(&self, samples: u64, units: usize) -> f64 {
        samples as f64 / FREQ as f64 * 1000.0 / units.max(1) as f64
    }

    /// The server's samples of one layer.
    pub fn layer(&self, layer: &str) -> u64 {
        self.server.get(layer).copied().unwrap_or(0)
    }

    /// The server's threads by share of its samples, largest first: `name 37%, …`.
    pub fn thread_shares(&self) -> String {
        let mut t: Vec<(&String, &u64)> = self.threads.iter().collect();
        t.sort_by(|a, b| b.1.cmp(a.1));
        t.iter()
            .map(|(name, n)| format!("{name} {:.0}%", **n as f64 * 100.0 / self.server_total.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The server's kernel samples, all kinds.
    pub fn kernel(&self) -> u64 {
        LAYERS
            .iter()
            .filter(|l| l.starts_with("kernel_"))
            .map(|l| self.layer(l))
            .sum()
    }
}

/// One frame of `perf script`: `<address> <symbol> (<object>)` → (symbol, object).
fn frame(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    let (_, rest) = line.split_once(' ')?;
    let (sym, dso) = rest.rsplit_once(" (")?;
    Some((sym.trim(), dso.trim_end_matches(')')))
}

/// The layer of one sample's chain, leaf first.
fn layer(frames: &[(&str, &str)]) -> &'static str {
    let Some(&(leaf, leaf_dso)) = frames.first() else {
        return "other";
    };
    if leaf_dso.contains("kernel") {
        let kernel: Vec<&str> = frames
            .iter()
            .take_while(|(_, d)| d.contains("kernel"))
            .map(|(s, _)| *s)
            .collect();
        for (name, needles) in KERNEL_RULES {
            if kernel.iter().any(|s| needles.iter().any(|n| s.contains(n))) {
                return name;
            }
        }
        return "kernel_other";
    }
    for &(sym, dso) in frames {
        if dso.contains("kernel") {
            continue;
        }
        for (name, needles) in RULES {
            if needles.iter().any(|n| sym.contains(n) || dso.contains(n)) {
                return name;
            }
        }
    }
    if ["malloc", "free", "realloc", "calloc", "_int_", "tcache"]
        .iter()
        .any(|n| leaf.contains(n))
    {
        "alloc"
    } else if ["memcpy", "memmove", "memset"].iter().any(|n| leaf.contains(n)) {
        "copies"
    } else if RUNTIME.iter().any(|n| leaf.contains(n)) {
        "runtime"
    } else {
        "other"
    }
}
