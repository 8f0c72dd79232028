//! The signing workers: a few threads that sign in the token for the async server, fed by one queue.
//!
//! A signature is a blocking PKCS#11 call. Handing each one to tokio's blocking pool starts or wakes a thread per
//! request and lets dozens of them queue on the session pool's lock under load; here a fixed set of threads, one
//! per session, take requests from one queue in turn and answer each through its own channel. A thread that finds
//! more work queued goes on without sleeping, so under load the token is kept busy with few thread switches.
//!
//! Each request names a key and its digests; they are signed one after another by one thread, in order.

use std::sync::{Arc, OnceLock};

use super::{Hsm, HsmError, SignMechanism};

/// One request: sign `digests` with the key `key_id`.
struct Job {
    key_id: Vec<u8>,
    mechanism: SignMechanism,
    digests: Vec<Vec<u8>>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<u8>>, HsmError>>,
}

/// The queue of the signing threads, started on first use.
pub(super) struct Workers {
    queue: OnceLock<flume::Sender<Job>>,
}

impl Workers {
    pub(super) fn new() -> Workers {
        Workers { queue: OnceLock::new() }
    }
}

impl Hsm {
    /// Signs each digest with the private key `key_id` on one of the signing threads, as [`Hsm::sign_digest`]
    /// does; the signatures in the digests' order. The threads (one per session) start on the first call.
    pub async fn sign_digests(
        self: &Arc<Self>,
        key_id: &[u8],
        mechanism: SignMechanism,
        digests: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, HsmError> {
        let queue = self.workers.queue.get_or_init(|| start(self.clone()));
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            key_id: key_id.to_vec(),
            mechanism,
            digests,
            reply,
        };
        queue
            .send(job)
            .map_err(|_| HsmError::Unavailable("the signing threads have stopped".into()))?;
        answer
            .await
            .map_err(|_| HsmError::Unavailable("a signing thread stopped before it answered".into()))?
    }
}

/// Starts one signing thread per session. The threads hold the token only through `hsm` and end when the last
/// sender is gone, which is when the token is dropped.
fn start(hsm: Arc<Hsm>) -> flume::Sender<Job> {
    let (tx, rx) = flume::unbounded::<Job>();
    for n in 0..hsm.session_count() {
        let rx = rx.clone();
        // The threads keep a weak handle: the queue lives in the token, so a strong one would keep it alive forever.
        let hsm = Arc::downgrade(&hsm);
        std::thread::Builder::new()
            .name(format!("hsm-sign-{n}"))
            .spawn(move || {
                yield_to_the_ledger();
                while let Ok(job) = rx.recv() {
                    let Some(hsm) = hsm.upgrade() else { break };
                    let signed = job
                        .digests
                        .iter()
                        .map(|d| hsm.sign_digest(&job.key_id, job.mechanism, d))
                        .collect();
                    // The caller may have gone (its request cancelled): the signatures are then discarded.
                    let _ = job.reply.send(signed);
                }
            })
            .expect("start a signing thread");
    }
    tx
}

/// How much lower than the server's other threads the signing threads run (Linux `nice`, per thread).
const SIGNING_NICENESS: i32 = 5;

/// Lowers the calling signing thread's priority. With the token in the process (SoftHSM2), signing is most of the
/// server's CPU and the signing threads always have work under load; the ledger, which commits every signature in
/// one group at a time, then waited behind them in the run queue at each of its statements, and a group took
/// several times its work. Lower, the signing threads get every cycle the rest leaves, and the ledger and the HTTP
/// workers run when they wake. Raising a priority needs a privilege; lowering one does not. Best effort: a refusal
/// changes nothing else.
fn yield_to_the_ledger() {
    // `setpriority(PRIO_PROCESS, 0, n)`: on Linux, niceness is per thread and 0 names the calling one.
    let _ = rustix::process::setpriority_process(None, SIGNING_NICENESS);
}
