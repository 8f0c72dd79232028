//! `parafa-token install` / `uninstall`: registers the PKCS#11 module with p11-kit for this user
//! (`$XDG_CONFIG_HOME/pkcs11/modules/parafa.module`, else `~/.config/pkcs11/modules/…`, see pkcs11.conf(5)), and
//! says how to add it by hand where p11-kit is not used.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// The module's file name.
pub const MODULE_NAME: &str = "libparafa_pkcs11.so";

/// The p11-kit module file's name (the module's name in `p11-kit list-modules`).
const CONFIG_NAME: &str = "parafa.module";

/// `$XDG_CONFIG_HOME/pkcs11/modules`, else `$HOME/.config/pkcs11/modules`.
fn modules_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?,
        )
        .join(".config"),
    };
    Ok(base.join("pkcs11").join("modules"))
}

/// The module beside this program (a build tree, or a package that installs both in one place), else where a
/// Debian-style package puts PKCS#11 modules.
fn default_module() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(MODULE_NAME)))
        .filter(|p| p.is_file());
    beside.unwrap_or_else(|| {
        PathBuf::from(format!(
            "/usr/lib/{}-linux-gnu/pkcs11/{MODULE_NAME}",
            std::env::consts::ARCH
        ))
    })
}

/// The p11-kit module file's text.
pub fn module_config(module: &Path) -> String {
    format!(
        "# Parafa's desktop virtual token, written by `parafa-token install`.\nmodule: {}\ncritical: no\n",
        module.display()
    )
}

/// `install`.
pub fn install(module: Option<PathBuf>) -> Result<()> {
    let module = module.unwrap_or_else(default_module);
    if !module.is_file() {
        bail!(
            "{} does not exist: build it (`cargo build -p parafa-pkcs11`) or give its path with --module",
            module.display()
        );
    }
    let module = fs::canonicalize(&module).with_context(|| format!("resolving {}", module.display()))?;
    let dir = modules_dir()?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join(CONFIG_NAME);
    let tmp = dir.join(format!(".{CONFIG_NAME}.{}", std::process::id()));
    fs::write(&tmp, module_config(&module)).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
    let so = module.display();
    println!("installed: {}", file.display());
    println!("module: {so}");
    println!(
        "\nApplications that load PKCS#11 modules through p11-kit (p11-kit-proxy.so, GnuTLS) now see the token; \
         `p11-kit list-modules` lists it as \"parafa\".\n\
         Elsewhere, add the module by hand:\n\
         - an NSS database (Firefox's profile, Chromium's ~/.pki/nssdb, Thunderbird):\n    \
           modutil -dbdir sql:$HOME/.pki/nssdb -add \"Parafa\" -libfile {so}\n\
         - Java (SunPKCS11), a pkcs11.cfg with:\n    name = Parafa\n    library = {so}\n\
         - Okular: Settings > Configure Backends > PDF: the signature backend NSS, with the NSS database above;\n\
         - LibreOffice: Tools > Options > LibreOffice > Security > Certificate: the NSS database above."
    );
    Ok(())
}

/// `uninstall`.
pub fn uninstall() -> Result<()> {
    let file = modules_dir()?.join(CONFIG_NAME);
    match fs::remove_file(&file) {
        Ok(()) => println!("removed: {}", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("not installed: no {}", file.display()),
        Err(e) => return Err(e).with_context(|| format!("removing {}", file.display())),
    }
    println!("A module added by hand (modutil, pkcs11.cfg) stays: remove it there.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_file_names_the_module_and_is_not_critical() {
        let text = module_config(Path::new("/opt/parafa/libparafa_pkcs11.so"));
        assert!(
            text.lines().any(|l| l == "module: /opt/parafa/libparafa_pkcs11.so"),
            "{text}"
        );
        assert!(text.lines().any(|l| l == "critical: no"), "{text}");
    }
}
