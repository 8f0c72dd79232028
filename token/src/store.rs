//! Where the login is kept: `$XDG_CONFIG_HOME/parafa-token/account.json` (else `~/.config/parafa-token/…`), a file
//! only its owner may read or write (0600, in a 0700 directory), holding the server's URL and the client id; the
//! refresh token is in the OS keyring through the Secret Service ([`crate::keyring`]) when one ran at login with
//! its default collection unlocked, else in the same file. `PARAFA_TOKEN_STORE=file|secret-service` chooses. The
//! access token is never stored.
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

/// The environment variable that chooses where a login's refresh token goes: `file`, `secret-service`, or `auto`
/// (the default: the Secret Service when one runs unlocked, else the file).
pub const STORE_ENV: &str = "PARAFA_TOKEN_STORE";

/// Where a login's refresh token is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The OS keyring, through the Secret Service.
    SecretService,
    /// The account file itself.
    #[default]
    File,
}

/// One logged-in account.
#[derive(Debug, Clone)]
pub struct Account {
    /// The server's base URL (the OAuth issuer).
    pub server: String,
    /// The public client the operator registered for the desktop app.
    pub client_id: String,
    /// The current refresh token (it rotates: each use gives the next one).
    pub refresh_token: String,
    /// Where the refresh token is kept.
    pub kind: Kind,
}

/// The account file.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    server: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "is_file")]
    store: Kind,
}

fn is_file(k: &Kind) -> bool {
    *k == Kind::File
}

/// Where a new login goes ([`STORE_ENV`]).
pub fn choose() -> Result<Kind> {
    match std::env::var(STORE_ENV).unwrap_or_default().as_str() {
        "file" => Ok(Kind::File),
        "secret-service" => crate::keyring::available()
            .map(|()| Kind::SecretService)
            .map_err(|why| anyhow!("{STORE_ENV}=secret-service, but {why}")),
        "" | "auto" => Ok(if crate::keyring::available().is_ok() {
            Kind::SecretService
        } else {
            Kind::File
        }),
        other => Err(anyhow!("{STORE_ENV}={other}: file, secret-service or auto")),
    }
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

/// What `status` says about where the login is kept (or would go).
pub fn describe() -> String {
    let file = || match path() {
        Ok(p) => format!("file {} (readable by you only)", p.display()),
        Err(e) => format!("file (unknown place: {e})"),
    };
    match read() {
        Ok(Some(s)) if s.store == Kind::SecretService => format!(
            "Secret Service (the item \"{}\" in the default collection)",
            crate::keyring::label(&s.server)
        ),
        Ok(Some(_)) => file(),
        Ok(None) => match choose() {
            Ok(Kind::SecretService) => "none yet (a login goes to the Secret Service)".into(),
            Ok(Kind::File) => format!("none yet (a login goes to the {})", file()),
            Err(e) => format!("none yet ({e})"),
        },
        Err(e) => format!("unreadable: {e:#}"),
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

/// The account file, `None` when not logged in.
fn read() -> Result<Option<Stored>> {
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

/// The stored account, `None` when not logged in.
pub fn load() -> Result<Option<Account>> {
    let Some(s) = read()? else { return Ok(None) };
    let refresh_token = match s.store {
        Kind::File => s
            .refresh_token
            .ok_or_else(|| anyhow!("{} holds no refresh token", path().unwrap_or_default().display()))?,
        Kind::SecretService => crate::keyring::get(&s.server, &s.client_id).map_err(|why| anyhow!(why))?,
    };
    Ok(Some(Account {
        server: s.server,
        client_id: s.client_id,
        refresh_token,
        kind: s.store,
    }))
}

/// Stores the account: the refresh token in the keyring (or the file), and the file written to a new 0600 file
/// beside the old one, then renamed over it, so that a crash leaves the old refresh token or the new one, never
/// half a file. The caller holds [`lock`].
pub fn save(account: &Account, _held: &Lock) -> Result<()> {
    let stored = Stored {
        server: account.server.clone(),
        client_id: account.client_id.clone(),
        refresh_token: (account.kind == Kind::File).then(|| account.refresh_token.clone()),
        store: account.kind,
    };
    if account.kind == Kind::SecretService {
        crate::keyring::put(&account.server, &account.client_id, &account.refresh_token).map_err(|why| anyhow!(why))?;
    }
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
    f.write_all(serde_json::to_string_pretty(&stored)?.as_bytes())?;
    f.sync_all()?;
    drop(f);
    let p = d.join(FILE);
    fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// Deletes the login: the keyring's item, then the file (nothing to do when there is none). The caller holds
/// [`lock`].
pub fn remove(_held: &Lock) -> Result<()> {
    let keyring = match read() {
        Ok(Some(s)) if s.store == Kind::SecretService => crate::keyring::delete(&s.server, &s.client_id),
        _ => Ok(()),
    };
    let p = path()?;
    match fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("deleting {}", p.display())),
    }
    keyring.map_err(|why| anyhow!("{} was deleted, but not the keyring's item: {why}", p.display()))
}
