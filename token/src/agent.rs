//! `parafa-token agent`: the one process per user that holds the login and makes the CSC calls for the PKCS#11
//! module (`docs/TOKEN.md`), as ssh-agent holds keys.
//!
//! - **One per user.** The socket is `parafa_token_proto::socket_path()`; an exclusive `flock` on `<socket>.lock`,
//!   held for the agent's life, makes a second agent (two modules starting one at once) exit at once. The lock's
//!   holder removes a stale socket file (an agent that was killed) before it binds.
//! - **The user's only.** The socket's directory is 0700 (the agent refuses one that others may write), the socket
//!   0600 (created under umask 077), and each connection's peer uid (`SO_PEERCRED`) must be the agent's.
//! - **One request per connection**, a thread each; a sign request may wait minutes for the holder's code.
//! - **The login.** The agent is the one user of the refresh token while it runs: it refreshes under a mutex and
//!   the store's lock ([`crate::session`]), keeps the access token in memory until it expires, and caches
//!   `credentials/list` for [`CACHE_TTL`] (dropped after each signature and on `Reload`).
//! - **The end.** After `--idle` seconds without a request, and after `Logout`, it removes its socket and exits.
//!
//! `agent --daemon` starts the agent detached (its own session, stdio to `agent.log` beside the socket), waits
//! until it answers and exits 0; it exits 0 at once when an agent already answers.

use std::fs;
use std::io::{BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use parafa_token_proto::{self as proto, ErrorKind, Request, Response, SignRequest, VERSION};
use secrecy::{ExposeSecret, SecretString};

use crate::csc::{self, Listing};
use crate::prompt::{self, Prompt, PromptError};
use crate::session::{Failure, Session};
use crate::store;

/// How long `credentials/list` is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// How many codes the prompt asks for one signature before it gives up.
pub const TRIES: usize = 3;

/// How long a connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `--daemon` waits for the agent to answer.
const START_TIMEOUT: Duration = Duration::from_secs(9);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One line of the agent's log (stderr): never a code, a SAD or a token.
macro_rules! log {
    ($($t:tt)*) => {{
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        eprintln!("parafa-token agent [{}] {secs}: {}", std::process::id(), format_args!($($t)*));
    }};
}

/// When the last request ended, and how many are under way.
struct Activity {
    last: Instant,
    active: usize,
}

/// The running agent.
struct Agent {
    session: Session,
    cache: Mutex<Option<(Instant, Listing)>>,
    /// One prompt window at a time.
    prompting: Mutex<()>,
    activity: Mutex<Activity>,
    socket: PathBuf,
    /// The socket file's (device, inode) as bound, so that only this agent's socket is removed at the end.
    bound: (u64, u64),
}

/// `parafa-token agent`: serves until idle or logged out. `idle` zero: never idle out.
pub fn run(idle: Duration) -> Result<()> {
    let socket = proto::socket_path();
    let dir = socket_dir(&socket)?;
    prepare_dir(&dir)?;
    let Some(_instance) = single_instance(&socket)? else {
        log!("another agent answers on {}; exiting", socket.display());
        return Ok(());
    };
    // A socket file left by an agent that was killed: the lock says no agent listens on it.
    match fs::symlink_metadata(&socket) {
        Ok(m) if m.file_type().is_socket() => {
            fs::remove_file(&socket).with_context(|| format!("removing the stale {}", socket.display()))?
        }
        Ok(_) => bail!(
            "{} exists and is not a socket: refusing to replace it",
            socket.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", socket.display())),
    }
    // umask 077 while binding: the socket is never reachable by others, not even for an instant.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let bound = UnixListener::bind(&socket);
    rustix::process::umask(old);
    let listener = bound.with_context(|| format!("listening on {}", socket.display()))?;
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600))?;
    let m = fs::symlink_metadata(&socket)?;
    let agent = Arc::new(Agent {
        session: Session::new()?,
        cache: Mutex::new(None),
        prompting: Mutex::new(()),
        activity: Mutex::new(Activity {
            last: Instant::now(),
            active: 0,
        }),
        socket: socket.clone(),
        bound: (m.dev(), m.ino()),
    });
    log!("listening on {} (idle {} s)", socket.display(), idle.as_secs());
    if !idle.is_zero() {
        let a = agent.clone();
        std::thread::spawn(move || a.watch_idle(idle));
    }
    let me = rustix::process::geteuid();
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log!("accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        match rustix::net::sockopt::socket_peercred(&stream) {
            Ok(cred) if cred.uid == me => {}
            Ok(cred) => {
                log!("refused a connection from uid {}", cred.uid.as_raw());
                continue;
            }
            Err(e) => {
                log!("refused a connection whose peer is unknown: {e}");
                continue;
            }
        }
        let a = agent.clone();
        std::thread::spawn(move || a.serve(stream));
    }
    Ok(())
}

fn socket_dir(socket: &Path) -> Result<PathBuf> {
    socket
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", socket.display()))
}

/// The socket's directory: created 0700 when missing; refused when someone else owns it or others may write in it.
fn prepare_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let m = fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if m.uid() != rustix::process::geteuid().as_raw() {
        bail!(
            "{} belongs to another user: refusing to put the agent's socket there",
            dir.display()
        );
    }
    if m.mode() & 0o022 != 0 {
        bail!(
            "others may write in {} (mode {:o}): refusing to put the agent's socket there",
            dir.display(),
            m.mode() & 0o777
        );
    }
    Ok(())
}

/// Takes the single-instance lock; `None` when another agent holds it and answers. A lock that stays taken while
/// nobody answers (an agent on its way out) is waited for a little.
fn single_instance(socket: &Path) -> Result<Option<fs::File>> {
    let path = PathBuf::from(format!("{}.lock", socket.display()));
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                if ping(socket).is_some() || Instant::now() >= deadline {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
}

/// The pid of the agent answering on `socket`, if one does.
pub fn ping(socket: &Path) -> Option<u32> {
    match proto::call(socket, &Request::Ping { version: VERSION }, Duration::from_secs(5)) {
        Ok(Response::Pong { pid }) => Some(pid),
        _ => None,
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

impl From<Failure> for Response {
    fn from(f: Failure) -> Response {
        error(f.kind, f.message)
    }
}

impl Agent {
    fn watch_idle(&self, idle: Duration) {
        loop {
            let wait = {
                let a = lock(&self.activity);
                let since = a.last.elapsed();
                if a.active == 0 && since >= idle {
                    log!("idle for {} s: exiting", since.as_secs());
                    // The activity lock stays held: no request begins while the agent goes.
                    self.remove_socket();
                    std::process::exit(0);
                }
                idle.saturating_sub(since).max(Duration::from_millis(200))
            };
            std::thread::sleep(wait.min(Duration::from_secs(5)));
        }
    }

    /// Removes the socket file if it is still the one this agent bound.
    fn remove_socket(&self) {
        if let Ok(m) = fs::symlink_metadata(&self.socket) {
            if (m.dev(), m.ino()) == self.bound {
                let _ = fs::remove_file(&self.socket);
            }
        }
    }

    fn serve(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let request: Request = match proto::read_line(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = proto::write_line(
                    &mut &stream,
                    &error(ErrorKind::Protocol, format!("not a request of this agent: {e}")),
                );
                return;
            }
        };
        {
            let mut a = lock(&self.activity);
            a.active += 1;
        }
        let logout = matches!(request, Request::Logout { .. });
        let response = self.answer(request);
        let mut w = &stream;
        let _ = proto::write_line(&mut w, &response).and_then(|()| w.flush());
        {
            let mut a = lock(&self.activity);
            a.active -= 1;
            a.last = Instant::now();
        }
        if logout {
            log!("logged out: exiting");
            let _held = lock(&self.activity);
            self.remove_socket();
            std::process::exit(0);
        }
    }

    fn answer(&self, request: Request) -> Response {
        let version = match &request {
            Request::Token { version }
            | Request::Ping { version }
            | Request::Status { version }
            | Request::Logout { version }
            | Request::Reload { version } => *version,
            Request::Sign(s) => s.version,
        };
        if version != VERSION {
            return error(
                ErrorKind::Protocol,
                format!("this agent speaks version {VERSION}, the request {version}: update both"),
            );
        }
        match request {
            Request::Ping { .. } => Response::Pong {
                pid: std::process::id(),
            },
            Request::Token { .. } => match self.listing(false) {
                Ok(l) => Response::Token {
                    account: Some(l.account),
                },
                Err(f) if f.no_login => Response::Token { account: None },
                Err(f) => {
                    log!("token: {:?}: {}", f.kind, f.message);
                    f.into()
                }
            },
            Request::Status { .. } => match self.listing(false) {
                Ok(l) => Response::Status(status_of(Some(l))),
                Err(f) if f.no_login => Response::Status(status_of(None)),
                Err(f) => f.into(),
            },
            Request::Reload { .. } => {
                self.forget();
                Response::Done {
                    message: "the agent will read the new login".into(),
                }
            }
            Request::Logout { .. } => {
                self.forget();
                let r = self.session.logout();
                self.forget();
                match r {
                    Ok(message) => Response::Done { message },
                    Err(f) => f.into(),
                }
            }
            Request::Sign(req) => {
                let (app, cred) = (prompt::one_line(&req.app, 100), req.credential.clone());
                let r = self.sign(req);
                // What the server counts changed (or may have): the next Token reads it again.
                *lock(&self.cache) = None;
                match r {
                    Ok(signature) => {
                        log!("signed for {app} with {cred}");
                        Response::Signature { signature }
                    }
                    Err(f) => {
                        log!("sign for {app} with {cred}: {:?}: {}", f.kind, f.message);
                        f.into()
                    }
                }
            }
        }
    }

    fn forget(&self) {
        self.session.forget();
        *lock(&self.cache) = None;
    }

    /// `credentials/list`, reused for [`CACHE_TTL`] unless `fresh`.
    fn listing(&self, fresh: bool) -> Result<Listing, Failure> {
        let mut cache = lock(&self.cache);
        if let Some((at, l)) = cache.as_ref() {
            if !fresh && at.elapsed() < CACHE_TTL {
                return Ok(l.clone());
            }
        }
        let l = csc::list(&self.session)?;
        *cache = Some((Instant::now(), l.clone()));
        Ok(l)
    }

    fn sign(&self, req: SignRequest) -> Result<String, Failure> {
        let digest = base64::engine::general_purpose::STANDARD
            .decode(&req.hash)
            .ok()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| Failure::new(ErrorKind::Invalid, "the digest is not base64"))?;
        let listing = match self.listing(false) {
            Ok(l) if l.find(&req.credential).is_some() => l,
            // A credential issued since the list was read.
            Ok(_) => self.listing(true)?,
            Err(f) => return Err(f),
        };
        let (cred, cert) = listing.find(&req.credential).ok_or_else(|| {
            Failure::new(
                ErrorKind::Invalid,
                format!("the account has no credential {}", req.credential),
            )
        })?;
        let refusal = cannot_sign(cred);
        // An empty code (a context login without a PIN, as on a protected authentication path) asks the holder.
        let code = req
            .code
            .clone()
            .map(|c| prompt::normalise(&SecretString::from(c)))
            .filter(|c| !c.expose_secret().is_empty());
        let Some(code) = code else {
            let description = prompt::Description {
                app: &req.app,
                holder: cert.map_or(listing.account.label.as_str(), |c| c.holder.as_str()),
                serial: cert.map_or("", |c| c.serial.as_str()),
                purpose: req.purpose.as_deref(),
                hash_name: prompt::hash_name(&req.hash_algo),
                digest: &digest,
                transactions_left: cred.transactions_left,
            }
            .to_string();
            return self.sign_prompting(&req, &description, refusal);
        };
        if let Some(why) = refusal {
            return Err(Failure::new(ErrorKind::Refused, why));
        }
        let sad = csc::authorize(&self.session, &req, &code)?;
        csc::sign_hash(&self.session, &req, &sad)
    }

    /// Asks the holder for the code (at most [`TRIES`] times), then signs; refusals a code cannot fix are shown.
    fn sign_prompting(&self, req: &SignRequest, description: &str, refusal: Option<String>) -> Result<String, Failure> {
        let prompt = Prompt::find().map_err(|why| Failure::new(ErrorKind::NoPrompt, why))?;
        let _one_window = lock(&self.prompting);
        let tell = |f: Failure| {
            if let Err(e) = prompt.tell(&f.message) {
                log!("could not show the refusal: {e:?}");
            }
            f
        };
        if let Some(why) = refusal {
            return Err(tell(Failure::new(ErrorKind::Refused, why)));
        }
        let mut said: Option<String> = None;
        let mut last = Failure::new(ErrorKind::PinIncorrect, "no code was typed");
        for attempt in 1..=TRIES {
            let code = match prompt.ask(description, said.as_deref()) {
                Ok(c) => prompt::normalise(&c),
                Err(PromptError::Cancelled) => {
                    return Err(Failure::new(ErrorKind::Cancelled, "the holder cancelled the prompt"))
                }
                Err(PromptError::Broken(why)) => {
                    return Err(Failure::new(ErrorKind::NoPrompt, format!("the prompt failed: {why}")))
                }
            };
            let next = if attempt < TRIES {
                format!(" Try {} of {TRIES}.", attempt + 1)
            } else {
                String::new()
            };
            if code.expose_secret().is_empty() {
                said = Some(format!("Type the code from your authenticator app.{next}"));
                continue;
            }
            match csc::authorize(&self.session, req, &code) {
                Ok(sad) => {
                    return csc::sign_hash(&self.session, req, &sad).map_err(|f| {
                        if f.kind == ErrorKind::Refused {
                            tell(f)
                        } else {
                            f
                        }
                    })
                }
                Err(f) if f.kind == ErrorKind::PinIncorrect => {
                    said = Some(format!("{}.{next}", prompt::one_line(&f.message, 300)));
                    last = f;
                }
                Err(f) if matches!(f.kind, ErrorKind::Refused | ErrorKind::PinLocked) => return Err(tell(f)),
                Err(f) => return Err(f),
            }
        }
        Err(Failure::new(
            ErrorKind::PinIncorrect,
            format!("{TRIES} codes were refused; the last: {}", last.message),
        ))
    }
}

/// Why a credential cannot sign, as the list shows it (the server says the same when asked); the certificate's
/// state first, as it says more than the key's.
fn cannot_sign(c: &proto::Credential) -> Option<String> {
    let why = match c.cert_status.as_str() {
        "valid" if c.key_status == "enabled" => return None,
        "valid" => "This key is disabled and cannot sign. Please contact an administrator.",
        "expired" => "Your certificate has expired. Please contact an administrator.",
        "revoked" => "Your certificate has been revoked and can no longer sign. Please contact an administrator.",
        "suspended" => {
            "Your certificate is suspended and cannot sign until it is reinstated. Please contact an administrator."
        }
        other => return Some(format!("Your certificate cannot sign (status {other}).")),
    };
    Some(why.to_owned())
}

/// What `status` shows, from a listing (`None`: nobody is logged in).
pub fn status_of(listing: Option<Listing>) -> proto::Status {
    match listing {
        Some(l) => proto::Status {
            store: store::describe(),
            client_id: Some(l.client_id),
            account: Some(l.account),
            certificates: l.certificates,
        },
        None => proto::Status {
            store: store::describe(),
            client_id: None,
            account: None,
            certificates: Vec::new(),
        },
    }
}

/// `parafa-token agent --daemon`.
pub fn daemon(idle: u64) -> Result<()> {
    let socket = proto::socket_path();
    if ping(&socket).is_some() {
        return Ok(());
    }
    let dir = socket_dir(&socket)?;
    prepare_dir(&dir)?;
    let log_path = dir.join("agent.log");
    let exe = std::env::current_exe().context("finding this program")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = Command::new(&exe);
        cmd.args(["agent", "--idle", &idle.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent; the agent leaves the
        // caller's session so that it outlives the terminal or the application that started it.
        unsafe {
            cmd.pre_exec(|| rustix::process::setsid().map(|_| ()).map_err(std::io::Error::from));
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", exe.display()))?;
        loop {
            if ping(&socket).is_some() {
                return Ok(());
            }
            if let Some(status) = child.try_wait()? {
                if ping(&socket).is_some() {
                    return Ok(());
                }
                if !status.success() {
                    bail!("the agent failed to start ({status}): see {}", log_path.display());
                }
                // It gave way to an agent on its way out: start another.
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the agent did not answer on {} within {} s: see {}",
                    socket.display(),
                    START_TIMEOUT.as_secs(),
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if Instant::now() >= deadline {
            bail!("no agent answers on {}: see {}", socket.display(), log_path.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
