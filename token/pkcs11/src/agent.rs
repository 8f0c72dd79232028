//! Talking to the agent (`parafa-token agent`): one request per connection on the user's socket. When nobody
//! answers, the module starts the agent as the contract says (`<agent> agent --daemon`, which returns once the
//! socket answers) and asks once more.

use std::ffi::CStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cryptoki_sys::*;
use parafa_token_proto::{self as proto, Account, ErrorKind, Request, Response, SignRequest, TalkError};

use crate::ffi::Rv;

/// How long the module waits for the token's description (the agent may have to ask the server first).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a signature may take: the holder reads the prompt and types the code.
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `<agent> agent --daemon` may take to have an agent answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// After a start that did not help, the module does not try again for this long (each slot query would wait).
const START_BACKOFF: Duration = Duration::from_secs(10);

/// The time of the last start that left no agent answering.
static FAILED_START: Mutex<Option<Instant>> = Mutex::new(None);

/// Why the agent gave no useful answer.
#[derive(Debug)]
pub enum Failure {
    /// No agent answers, even after trying to start one.
    NoAgent,
    /// The connection broke or the answer made no sense (the agent died mid-request, another version).
    Broken(String),
    /// The agent refused or failed.
    Refused(ErrorKind, String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoAgent => write!(f, "no agent answers"),
            Failure::Broken(why) => write!(f, "the agent's answer broke off: {why}"),
            Failure::Refused(kind, message) => write!(f, "the agent refused ({kind:?}): {message}"),
        }
    }
}

impl Failure {
    /// The PKCS#11 return value for a failed signature (the mapping token/proto documents).
    pub fn sign_rv(&self) -> Rv {
        Rv(match self {
            Failure::NoAgent | Failure::Broken(_) => CKR_DEVICE_ERROR,
            Failure::Refused(kind, _) => match kind {
                ErrorKind::NotLoggedIn | ErrorKind::NoPrompt => CKR_USER_NOT_LOGGED_IN,
                ErrorKind::PinIncorrect => CKR_PIN_INCORRECT,
                ErrorKind::PinLocked => CKR_PIN_LOCKED,
                ErrorKind::Cancelled => CKR_FUNCTION_CANCELED,
                ErrorKind::Refused => CKR_KEY_FUNCTION_NOT_PERMITTED,
                // The module checked the mechanism and the digest's length before asking: what is left is an
                // argument the agent or the server would not take.
                ErrorKind::Invalid => CKR_ARGUMENTS_BAD,
                ErrorKind::Unavailable | ErrorKind::Protocol => CKR_DEVICE_ERROR,
            },
        })
    }
}

/// The logged-in account, `None` when nobody is logged in.
pub fn token() -> Result<Option<Account>, Failure> {
    let request = Request::Token {
        version: proto::VERSION,
    };
    match call(&request, TOKEN_TIMEOUT)? {
        Response::Token { account } => Ok(account),
        Response::Error {
            kind: ErrorKind::NotLoggedIn,
            ..
        } => Ok(None),
        Response::Error { kind, message } => Err(Failure::Refused(kind, message)),
        _ => Err(Failure::Broken("an answer that is not the token".into())),
    }
}

/// One signature: the server's bytes (PKCS#1 or PSS bytes, DER ECDSA-Sig-Value).
pub fn sign(request: SignRequest) -> Result<Vec<u8>, Failure> {
    use base64::Engine;
    use secrecy::zeroize::Zeroize;
    let mut request = Request::Sign(request);
    let answer = call(&request, SIGN_TIMEOUT);
    if let Request::Sign(SignRequest { code: Some(code), .. }) = &mut request {
        code.zeroize();
    }
    match answer? {
        Response::Signature { signature } => base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| Failure::Broken("a signature that is not base64".into())),
        Response::Error { kind, message } => Err(Failure::Refused(kind, message)),
        _ => Err(Failure::Broken("an answer that is not a signature".into())),
    }
}

/// Who asks, for the holder's prompt: the process's name and id.
pub fn application() -> String {
    let name = std::fs::read_to_string("/proc/self/comm")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| "an application".into());
    format!("{name} ({})", std::process::id())
}

fn call(request: &Request, timeout: Duration) -> Result<Response, Failure> {
    let socket = proto::socket_path();
    match proto::call(&socket, request, timeout) {
        Ok(r) => return Ok(r),
        Err(TalkError::Broken(why)) => return Err(Failure::Broken(why)),
        Err(TalkError::NoAgent(e)) => crate::debug(&format!("no agent at {}: {e}", socket.display())),
    }
    if !start() {
        return Err(Failure::NoAgent);
    }
    proto::call(&socket, request, timeout).map_err(|e| match e {
        TalkError::NoAgent(_) => {
            remember_failed_start();
            Failure::NoAgent
        }
        TalkError::Broken(why) => Failure::Broken(why),
    })
}

/// Runs `<agent> agent --daemon` and waits for it to exit (at most [`START_TIMEOUT`]); `true` when it said it
/// started an agent. No thread: the module polls the child.
fn start() -> bool {
    let recently_failed = FAILED_START
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some_and(|t| t.elapsed() < START_BACKOFF);
    if recently_failed {
        return false;
    }
    let program = agent_program();
    crate::debug(&format!("starting {} agent --daemon", program.display()));
    let child = Command::new(&program)
        .args(["agent", "--daemon"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            crate::debug(&format!("cannot run {}: {e}", program.display()));
            remember_failed_start();
            return false;
        }
    };
    let began = Instant::now();
    let ok = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            // The application reaps its children itself (SIGCHLD ignored): the exit status is lost; ask the socket.
            Err(_) => break true,
            Ok(None) if began.elapsed() > START_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if !ok {
        remember_failed_start();
    }
    ok
}

fn remember_failed_start() {
    *FAILED_START.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
}

/// `$PARAFA_TOKEN_AGENT`, else `parafa-token` beside this module, else `parafa-token` on the PATH.
fn agent_program() -> PathBuf {
    if let Some(p) = std::env::var_os(proto::AGENT_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(beside) = module_dir().map(|d| d.join("parafa-token")).filter(|p| p.is_file()) {
        return beside;
    }
    PathBuf::from("parafa-token")
}

/// The directory of the loaded module (dladdr on one of its own functions).
fn module_dir() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: Dl_info is plain pointers; all-null is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let here = module_dir as *const () as *const libc::c_void;
    // SAFETY: `here` is an address inside this module; `info` is a valid place for the answer.
    if unsafe { libc::dladdr(here, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr gives a NUL-terminated path that lives as long as the module is loaded.
    let path = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes()));
    path.parent().map(|p| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map_to_the_documented_return_values() {
        let rv = |kind| Failure::Refused(kind, String::new()).sign_rv().0;
        assert_eq!(rv(ErrorKind::PinIncorrect), CKR_PIN_INCORRECT);
        assert_eq!(rv(ErrorKind::PinLocked), CKR_PIN_LOCKED);
        assert_eq!(rv(ErrorKind::Cancelled), CKR_FUNCTION_CANCELED);
        assert_eq!(rv(ErrorKind::NoPrompt), CKR_USER_NOT_LOGGED_IN);
        assert_eq!(rv(ErrorKind::NotLoggedIn), CKR_USER_NOT_LOGGED_IN);
        assert_eq!(rv(ErrorKind::Refused), CKR_KEY_FUNCTION_NOT_PERMITTED);
        assert_eq!(rv(ErrorKind::Unavailable), CKR_DEVICE_ERROR);
        assert_eq!(Failure::Broken("gone".into()).sign_rv().0, CKR_DEVICE_ERROR);
    }

    #[test]
    fn the_application_is_named_with_its_pid() {
        let app = application();
        assert!(app.ends_with(&format!("({})", std::process::id())), "{app}");
    }
}
