//! The module's one state, behind one mutex: whether it is initialized (and in which process), the token as the
//! agent last described it, the sessions and their operations.
//!
//! The lock is held for bookkeeping only, never while the agent is asked: a signature waits minutes for the
//! holder's code, and other threads (a browser's) go on meanwhile. After `fork()` the child finds the parent's pid
//! here and is treated as not initialized: it starts afresh with `C_Initialize`, as PKCS#11 asks of it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki_sys::*;

use crate::agent;
use crate::ffi::{Result, Rv};
use crate::mechanism::Hasher;
use crate::sign::SignOp;
use crate::token::TokenView;

/// The one slot, the agent's account. A constant, so that applications that remember a slot find it again.
pub const SLOT_ID: CK_SLOT_ID = 1;

/// How long an answer of the agent about the token is used before asking again.
const TOKEN_TTL: Duration = Duration::from_secs(3);

static STATE: Mutex<Option<Module>> = Mutex::new(None);

/// What the agent last said about the token.
#[derive(Debug, Clone)]
pub enum Presence {
    Present(Arc<TokenView>),
    /// The agent answered: nobody is logged in.
    Absent,
    /// No agent answered (and none could be started).
    Unreachable,
}

impl Presence {
    pub fn view(&self) -> Option<&Arc<TokenView>> {
        match self {
            Presence::Present(v) => Some(v),
            Presence::Absent | Presence::Unreachable => None,
        }
    }
}

/// The initialized module.
pub struct Module {
    pid: u32,
    presence: Option<(Instant, Presence)>,
    sessions: BTreeMap<CK_SESSION_HANDLE, Session>,
    next_session: CK_SESSION_HANDLE,
    /// `C_Login(CKU_USER)` was called (shared by the application's sessions, as PKCS#11 says).
    pub user_logged_in: bool,
}

/// One session.
pub struct Session {
    /// Opened with `CKF_RW_SESSION` (pkcs11-tool's `--test` asks for it); nothing can be written in it all the same.
    pub rw: bool,
    /// The token as it was when the session opened, refreshed by `C_FindObjectsInit` while the account is the same.
    pub view: Arc<TokenView>,
    pub find: Option<VecDeque<CK_OBJECT_HANDLE>>,
    pub digest: Option<Digesting>,
    pub sign: Option<SignOp>,
}

/// A digest operation; `multi` once `C_DigestUpdate` was called (then `C_Digest` may no longer end it).
pub struct Digesting {
    pub hasher: Hasher,
    pub multi: bool,
}

impl Module {
    pub fn session(&mut self, handle: CK_SESSION_HANDLE) -> Result<&mut Session> {
        self.sessions.get_mut(&handle).ok_or(Rv(CKR_SESSION_HANDLE_INVALID))
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn rw_session_count(&self) -> usize {
        self.sessions.values().filter(|s| s.rw).count()
    }

    pub fn open_session(&mut self, view: Arc<TokenView>, rw: bool) -> CK_SESSION_HANDLE {
        // Handles count up from 1 and are not reused while the module lives (wrapping after 2^64 sessions).
        while self.next_session == CK_INVALID_HANDLE || self.sessions.contains_key(&self.next_session) {
            self.next_session = self.next_session.wrapping_add(1);
        }
        let handle = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        self.sessions.insert(
            handle,
            Session {
                rw,
                view,
                find: None,
                digest: None,
                sign: None,
            },
        );
        handle
    }

    pub fn close_session(&mut self, handle: CK_SESSION_HANDLE) -> Result<()> {
        self.sessions.remove(&handle).ok_or(Rv(CKR_SESSION_HANDLE_INVALID))?;
        if self.sessions.is_empty() {
            // Closing the last session logs the user out (PKCS#11 2.40 §5.6, C_CloseSession).
            self.user_logged_in = false;
        }
        Ok(())
    }

    pub fn close_all_sessions(&mut self) {
        self.sessions.clear();
        self.user_logged_in = false;
    }

    /// Takes a fresh answer of the agent. When the account changed or is gone, the sessions end (their objects
    /// belonged to another account); when the agent merely did not answer, they stay with what they saw.
    fn install(&mut self, presence: Presence) {
        let old = self.presence.take().map(|(_, p)| p);
        let account_changed = match (&old, &presence) {
            (Some(Presence::Present(a)), Presence::Present(b)) => !a.same_account(b),
            (Some(Presence::Present(_)), Presence::Absent) => true,
            _ => false,
        };
        if account_changed {
            self.close_all_sessions();
        }
        self.presence = Some((Instant::now(), presence));
    }

    fn fresh_presence(&self) -> Option<Presence> {
        match &self.presence {
            Some((at, p)) if at.elapsed() < TOKEN_TTL => Some(p.clone()),
            _ => None,
        }
    }
}

fn lock() -> MutexGuard<'static, Option<Module>> {
    // A panic while the lock was held (caught at the entry point) leaves bookkeeping that is still consistent:
    // every change is one assignment. Carry on rather than fail every later call.
    STATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `C_Initialize`: `CKR_CRYPTOKI_ALREADY_INITIALIZED` twice in one process; a forked child starts afresh.
pub fn initialize() -> Result<()> {
    let mut state = lock();
    if state.as_ref().is_some_and(|m| m.pid == std::process::id()) {
        return Err(Rv(CKR_CRYPTOKI_ALREADY_INITIALIZED));
    }
    *state = Some(Module {
        pid: std::process::id(),
        presence: None,
        sessions: BTreeMap::new(),
        next_session: 1,
        user_logged_in: false,
    });
    Ok(())
}

/// `C_Finalize`: drops everything.
pub fn finalize() -> Result<()> {
    let mut state = lock();
    current(&mut state)?;
    *state = None;
    Ok(())
}

/// Runs `f` on the initialized module, under the lock.
pub fn with<R>(f: impl FnOnce(&mut Module) -> Result<R>) -> Result<R> {
    let mut state = lock();
    f(current(&mut state)?)
}

fn current(state: &mut Option<Module>) -> Result<&mut Module> {
    if state.as_ref().is_some_and(|m| m.pid != std::process::id()) {
        // The parent's state, inherited through fork(): not this process's to use.
        *state = None;
    }
    state.as_mut().ok_or(Rv(CKR_CRYPTOKI_NOT_INITIALIZED))
}

/// The token now: the last answer while it is fresh, else the agent's (asked without the lock held).
pub fn presence() -> Result<Presence> {
    if let Some(p) = with(|m| Ok(m.fresh_presence()))? {
        return Ok(p);
    }
    let presence = match agent::token() {
        Ok(Some(account)) => Presence::Present(Arc::new(TokenView::new(&account))),
        Ok(None) => Presence::Absent,
        Err(e) => {
            crate::debug(&format!("the token is not there: {e}"));
            Presence::Unreachable
        }
    };
    with(|m| {
        m.install(presence.clone());
        Ok(presence)
    })
}

/// The token's view, or `CKR_TOKEN_NOT_PRESENT`.
pub fn present_view() -> Result<Arc<TokenView>> {
    presence()?.view().cloned().ok_or(Rv(CKR_TOKEN_NOT_PRESENT))
}

/// Checks a slot id (there is one slot).
pub fn check_slot(slot: CK_SLOT_ID) -> Result<()> {
    if slot == SLOT_ID {
        Ok(())
    } else {
        Err(Rv(CKR_SLOT_ID_INVALID))
    }
}
