//! The refresh token in the OS keyring through the freedesktop Secret Service (GNOME Keyring, KWallet, KeePassXC)
//! on the session bus: one item in the default collection, found by its attributes (`application` parafa-token,
//! the server, the client id). The secret travels encrypted between the service and this process (the
//! Secret Service's `dh-ietf1024-sha256-aes128-cbc-pkcs7` session).
//!
//! A locked collection is never unlocked from here: that would open the desktop's unlock prompt from a background
//! agent. The holder unlocks the keyring (logging in to the desktop does) and tries again.

use std::collections::HashMap;

use secret_service::blocking::{Collection, SecretService};
use secret_service::EncryptionType;

/// The `application` attribute of the item.
const APPLICATION: &str = "parafa-token";

/// What went wrong with the keyring, in words.
pub type Error = String;

fn attributes<'a>(server: &'a str, client_id: &'a str) -> HashMap<&'a str, &'a str> {
    HashMap::from([
        ("application", APPLICATION),
        ("server", server),
        ("client_id", client_id),
    ])
}

/// The item's label, as the keyring's own tools (Seahorse, `secret-tool`) show it.
pub fn label(server: &str) -> String {
    format!("Parafa desktop token: {server}")
}

fn connect() -> Result<SecretService<'static>, Error> {
    SecretService::connect(EncryptionType::Dh).map_err(|e| format!("no Secret Service on the session bus: {e}"))
}

fn unlocked<'a>(ss: &'a SecretService<'a>) -> Result<Collection<'a>, Error> {
    let c = ss
        .get_default_collection()
        .map_err(|e| format!("the Secret Service has no default collection: {e}"))?;
    if c.is_locked().map_err(|e| e.to_string())? {
        return Err("the keyring is locked: unlock it (log in to the desktop session) and try again".into());
    }
    Ok(c)
}

/// Whether a Secret Service runs with its default collection unlocked (else why not).
pub fn available() -> Result<(), Error> {
    // Without a session bus there is nothing to ask (and nothing to wait for).
    let runtime_bus = std::env::var_os("XDG_RUNTIME_DIR").map(|d| std::path::Path::new(&d).join("bus"));
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() && !runtime_bus.is_some_and(|b| b.exists()) {
        return Err("no session bus".into());
    }
    let ss = connect()?;
    unlocked(&ss).map(|_| ())
}

/// Stores (or replaces) the refresh token of this login.
pub fn put(server: &str, client_id: &str, token: &str) -> Result<(), Error> {
    let ss = connect()?;
    let c = unlocked(&ss)?;
    c.create_item(
        &label(server),
        attributes(server, client_id),
        token.as_bytes(),
        true,
        "text/plain",
    )
    .map(|_| ())
    .map_err(|e| format!("storing the login in the keyring: {e}"))
}

/// The refresh token of this login.
pub fn get(server: &str, client_id: &str) -> Result<String, Error> {
    let ss = connect()?;
    let c = unlocked(&ss)?;
    let items = c
        .search_items(attributes(server, client_id))
        .map_err(|e| format!("searching the keyring: {e}"))?;
    let item = items
        .first()
        .ok_or_else(|| format!("the keyring has no login for {server}: run `parafa-token login` again"))?;
    let secret = item
        .get_secret()
        .map_err(|e| format!("reading the login from the keyring: {e}"))?;
    String::from_utf8(secret).map_err(|_| "the keyring's login is not text".into())
}

/// Deletes this login's item (nothing to do when there is none).
pub fn delete(server: &str, client_id: &str) -> Result<(), Error> {
    let ss = connect()?;
    let c = unlocked(&ss)?;
    for item in c
        .search_items(attributes(server, client_id))
        .map_err(|e| format!("searching the keyring: {e}"))?
    {
        item.delete()
            .map_err(|e| format!("deleting the login from the keyring: {e}"))?;
    }
    Ok(())
}
