//! Where the login is kept: `$XDG_CONFIG_HOME/parafa-token/account.json` (else `~/.config/parafa-token/…`), a file
//! only its owner may read or write (0600, in a 0700 directory), holding the server's URL, the client id and the
//! refresh token. The access token is never stored: each command gets a fresh one.
//!
//! Refresh tokens rotate, and a reused one ends the grant: whoever refreshes reads the token, uses it and writes the
//! next one back while holding [`lock`] (an exclusive `flock` on a file beside the account), so that the agent and a
//! command running without it (`status`, `logout`, `login`) never both use one token.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

/// The file's name in the directory.
const FILE: &str = "account.json";

/// The lock file's name in the directory.
const LOCK: &str = "lock";

/// One logged-in account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// The server's base URL (the OAuth issuer).
    pub server: String,
    /// The public client the operator registered for the desktop app.
    pub client_id: String,
    /// The current refresh token (it rotates: each use gives the next one).
    pub refresh_token: String,
}

/// The directory of the file: `$XDG_CONFIG_HOME/parafa-token`, else `$HOME/.config/parafa-token`.
pub fn dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("parafa-token"))
}

/// The file's path.
pub fn path() -> Result<PathBuf> {
    Ok(dir()?.join(FILE))
}

/// Held while the stored refresh token is read, used and replaced: an exclusive `flock` on `lock` in [`dir`],
/// released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct Lock {
    _file: fs::File,
}

/// Waits for the store's lock.
pub fn lock() -> Result<Lock> {
    let d = create_dir()?;
    let p = d.join(LOCK);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", p.display()))?;
    Ok(Lock { _file: file })
}

/// What `status` says about where the login is kept.
pub fn describe() -> String {
    match path() {
        Ok(p) => format!("file {} (readable by you only)", p.display()),
        Err(e) => format!("file (unknown place: {e})"),
    }
}

fn create_dir() -> Result<PathBuf> {
    let d = dir()?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// The stored account, `None` when not logged in.
pub fn load() -> Result<Option<Account>> {
    let p = path()?;
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not a parafa-token account file", p.display()))
}

/// Stores the account: written to a new 0600 file beside the old one, then renamed over it, so that a crash leaves
/// the old refresh token or the new one, never half a file. The caller holds [`lock`].
pub fn save(account: &Account, _held: &Lock) -> Result<()> {
    let d = create_dir()?;
    let tmp = d.join(format!(".{FILE}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    // The mode given at creation is masked by the umask; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(serde_json::to_string_pretty(account)?.as_bytes())?;
    f.sync_all()?;
    drop(f);
    let p = d.join(FILE);
    fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// Deletes the file (nothing to do when there is none). The caller holds [`lock`].
pub fn remove(_held: &Lock) -> Result<()> {
    let p = path()?;
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting {}", p.display())),
    }
}
