//! The holder's code for one signature, asked through a pinentry program (the Assuan protocol of GnuPG's
//! `pinentry-gnome3`, `-qt`, `-gtk-2`), when the application did not give one with
//! `C_Login(CKU_CONTEXT_SPECIFIC, code)`.
//!
//! The program is `$PARAFA_TOKEN_PINENTRY`, else the first of [`PROGRAMS`] on `PATH` when a display is set
//! (`DISPLAY` or `WAYLAND_DISPLAY`); none: the signature is refused with `no_prompt`. The window names the
//! application, the credential (holder and certificate serial) and the digest, so that the holder sees what the
//! code will allow.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// The environment variable naming the pinentry program.
pub const PINENTRY_ENV: &str = "PARAFA_TOKEN_PINENTRY";

/// The graphical pinentry programs tried in turn when a display is set.
pub const PROGRAMS: [&str; 3] = ["pinentry-gnome3", "pinentry-qt", "pinentry-gtk-2"];

/// Assuan lines are at most 1000 bytes (the pinentry crate refuses longer ones); what we write stays well below.
const MAX_TEXT: usize = 900;

/// What went wrong with the prompt.
#[derive(Debug)]
pub enum PromptError {
    /// The holder pressed Cancel (or closed the window).
    Cancelled,
    /// The program failed or could not be run.
    Broken(String),
}

/// A pinentry program to ask with.
#[derive(Debug, Clone)]
pub struct Prompt {
    program: PathBuf,
}

impl Prompt {
    /// The program to ask with, or why there is none.
    pub fn find() -> Result<Prompt, String> {
        if let Some(p) = std::env::var_os(PINENTRY_ENV).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            let found = if p.components().count() > 1 {
                Some(p.clone()).filter(|p| executable(p))
            } else {
                on_path(&p.to_string_lossy())
            };
            return found
                .map(|program| Prompt { program })
                .ok_or_else(|| format!("{PINENTRY_ENV} names {}, which is not a program", p.display()));
        }
        let display = ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
        if !display {
            return Err(
                "a code is needed and there is no display to ask it on: give it in the application (the key's \
                 context login) or sign from a desktop session"
                    .into(),
            );
        }
        PROGRAMS
            .iter()
            .find_map(|name| on_path(name))
            .map(|program| Prompt { program })
            .ok_or_else(|| {
                format!(
                    "a code is needed and no prompt program was found ({}; or set {PINENTRY_ENV})",
                    PROGRAMS.join(", ")
                )
            })
    }

    /// Asks for the code, with `error` above the field when the previous one was refused.
    pub fn ask(&self, description: &str, error: Option<&str>) -> Result<SecretString, PromptError> {
        let mut input = pinentry::PassphraseInput::with_binary(&self.program)
            .ok_or_else(|| PromptError::Broken(format!("{} cannot be run", self.program.display())))?;
        let description = clip(description);
        let error = error.map(clip);
        input
            .with_title("Parafa: sign with your key")
            .with_description(&description)
            .with_prompt("Code:")
            .with_ok("Sign")
            .with_timeout(120);
        if let Some(e) = &error {
            input.with_error(e);
        }
        match input.interact() {
            Ok(code) => Ok(code),
            Err(pinentry::Error::Cancelled) => Err(PromptError::Cancelled),
            Err(pinentry::Error::Timeout) => Err(PromptError::Cancelled),
            Err(e) => Err(PromptError::Broken(e.to_string())),
        }
    }

    /// Tells the holder why a signature was refused (a window with one button).
    pub fn tell(&self, message: &str) -> Result<(), PromptError> {
        let mut dialog = pinentry::MessageDialog::with_binary(&self.program)
            .ok_or_else(|| PromptError::Broken(format!("{} cannot be run", self.program.display())))?;
        dialog
            .with_title("Parafa: signature refused")
            .with_timeout(120)
            .show_message(&clip(message))
            .map_err(|e| PromptError::Broken(e.to_string()))
    }
}

/// A code as the holder typed it: spaces (a "123 456" grouping) dropped.
pub fn normalise(code: &SecretString) -> SecretString {
    SecretString::from(
        code.expose_secret()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>(),
    )
}

/// What the window says: the application, the credential, the purpose when known, the digest and its algorithm,
/// and the transactions left when known.
pub struct Description<'a> {
    pub app: &'a str,
    pub holder: &'a str,
    pub serial: &'a str,
    pub purpose: Option<&'a str>,
    pub hash_name: &'a str,
    pub digest: &'a [u8],
    pub transactions_left: Option<i64>,
}

impl std::fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} asks to sign with your Parafa key.", one_line(self.app, 100))?;
        writeln!(
            f,
            "Key: {}, certificate {}",
            one_line(self.holder, 100),
            one_line(self.serial, 64)
        )?;
        if let Some(p) = self.purpose {
            writeln!(f, "For: {}", one_line(p, 100))?;
        }
        writeln!(f, "Digest ({}): {}", self.hash_name, hex::encode(self.digest))?;
        if let Some(n) = self.transactions_left {
            writeln!(f, "Transactions left in your packages: {n}")?;
        }
        write!(f, "Type the code from your authenticator app to sign this once.")
    }
}

/// A text from outside (an application's name, a server's message) made one short line: control characters and
/// `%` (which Assuan would escape, lengthening the line) replaced, cut at `max` bytes on a character boundary.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_control() || c == '%' { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// A whole text cut to what one Assuan line carries.
fn clip(s: &str) -> String {
    let s = s.replace('%', " ");
    // Newlines become three bytes (`%0A`) on the wire.
    let mut out = String::new();
    let mut len = 0;
    for c in s.chars() {
        let n = if c == '\n' || c == '\r' { 3 } else { c.len_utf8() };
        if len + n > MAX_TEXT {
            out.push('…');
            break;
        }
        len += n;
        out.push(c);
    }
    out
}

/// The name of a hash algorithm's OID.
pub fn hash_name(oid: &str) -> &str {
    match oid {
        "2.16.840.1.101.3.4.2.1" => "SHA-256",
        "2.16.840.1.101.3.4.2.2" => "SHA-384",
        "2.16.840.1.101.3.4.2.3" => "SHA-512",
        "1.3.14.3.2.26" => "SHA-1",
        other => other,
    }
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A program's path on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_the_app_the_key_and_the_digest_and_fits_one_line() {
        let d = Description {
            app: "pkcs11-tool (4242)",
            holder: "Ana Maria Popescu",
            serial: "0A1B2C",
            purpose: None,
            hash_name: hash_name("2.16.840.1.101.3.4.2.1"),
            digest: &[0xab; 32],
            transactions_left: Some(7),
        }
        .to_string();
        assert!(d.contains("pkcs11-tool (4242) asks"), "{d}");
        assert!(d.contains("Ana Maria Popescu, certificate 0A1B2C"), "{d}");
        assert!(d.contains(&format!("Digest (SHA-256): {}", "ab".repeat(32))), "{d}");
        assert!(d.contains("Transactions left in your packages: 7"), "{d}");

        let long = "x%\n".repeat(1000);
        let d = Description {
            app: &long,
            holder: &long,
            serial: &long,
            purpose: Some(&long),
            hash_name: "SHA-512",
            digest: &[1; 64],
            transactions_left: None,
        }
        .to_string();
        let wire = clip(&d).replace('\n', "%0A");
        assert!(wire.len() < 1000, "{}", wire.len());
        assert!(!one_line(&long, 50).contains(['%', '\n']));
    }
}
