//! First-start provisioning of a SoftHSM2 token under the data directory, and the PINs that open it.

use std::io::Write;
use std::path::{Path, PathBuf};

use cryptoki::context::Pkcs11;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::HsmError;
use crate::config::Settings;

/// Name of the PIN file under the data directory.
pub const SECRETS_FILE: &str = "hsm-secrets.toml";

/// The token's PINs: from the settings, or generated once into a 0600 file under the data directory.
pub struct HsmSecrets {
    user_pin: SecretString,
    so_pin: SecretString,
}

#[derive(Serialize, Deserialize)]
struct SecretsFile {
    user_pin: String,
    so_pin: String,
}

impl HsmSecrets {
    /// PINs from the settings when given; otherwise read from, or generated into, `<data_dir>/hsm-secrets.toml`.
    pub fn load_or_create(settings: &Settings) -> Result<HsmSecrets, HsmError> {
        if let Some(user) = &settings.hsm.user_pin {
            let so = settings.hsm.so_pin.clone().unwrap_or_else(|| user.clone());
            return Ok(HsmSecrets {
                user_pin: user.clone(),
                so_pin: so,
            });
        }
        let path = settings.data_dir.join(SECRETS_FILE);
        let err =
            |what: &str, e: &dyn std::fmt::Display| HsmError::Provision(format!("{what} {}: {e}", path.display()));
        if !path.exists() {
            if !settings.manages_softhsm() {
                return Err(HsmError::Provision(
                    "hsm.user_pin is required for an HSM that Parafa does not manage".into(),
                ));
            }
            let file = SecretsFile {
                user_pin: random_pin(),
                so_pin: random_pin(),
            };
            let text = toml::to_string(&file).map_err(|e| err("cannot encode", &e))?;
            write_private(&path, text.as_bytes()).map_err(|e| err("cannot write", &e))?;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| err("cannot read", &e))?;
        let file: SecretsFile = toml::from_str(&text).map_err(|e| err("cannot parse", &e))?;
        Ok(HsmSecrets {
            user_pin: file.user_pin.into(),
            so_pin: file.so_pin.into(),
        })
    }

    pub(super) fn user_pin(&self) -> SecretString {
        self.user_pin.expose_secret().to_owned().into()
    }
}

fn random_pin() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates `path` with mode 0600 (never readable by others, not even for an instant) and writes `data`.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// When Parafa manages SoftHSM2: writes `<data_dir>/softhsm2.conf` and `<data_dir>/tokens/` if missing, and points
/// `SOFTHSM2_CONF` at them. SoftHSM2 reads that variable once, at `C_Initialize`, so this must run before the HSM
/// is opened and while the process has a single thread (it sets an environment variable).
pub fn prepare_softhsm(settings: &Settings) -> Result<Option<PathBuf>, HsmError> {
    if !settings.manages_softhsm() {
        return Ok(None);
    }
    let err = |e: std::io::Error| HsmError::Provision(format!("cannot prepare {}: {e}", settings.data_dir.display()));
    std::fs::create_dir_all(&settings.data_dir).map_err(err)?;
    let data_dir = std::fs::canonicalize(&settings.data_dir).map_err(err)?;
    let tokens = data_dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(err)?;
    let conf = data_dir.join("softhsm2.conf");
    if !conf.exists() {
        let text = format!(
            "# Written by Parafa on first start. SoftHSM2 reads it through SOFTHSM2_CONF.\n\
             directories.tokendir = {}\n\
             objectstore.backend = file\n\
             log.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        );
        std::fs::write(&conf, text).map_err(err)?;
    }
    std::env::set_var("SOFTHSM2_CONF", &conf);
    Ok(Some(conf))
}

/// The slot holding the initialised token with this label.
pub(super) fn find_token(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, HsmError> {
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(HsmError::ck("C_GetSlotList"))?
    {
        let info = ctx.get_token_info(slot).map_err(HsmError::ck("C_GetTokenInfo"))?;
        if info.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Initialises a new SoftHSM2 token with this label and sets its user PIN.
pub(super) fn create_token(ctx: &Pkcs11, label: &str, secrets: &HsmSecrets) -> Result<Slot, HsmError> {
    let free = ctx
        .get_slots_with_token()
        .map_err(HsmError::ck("C_GetSlotList"))?
        .into_iter()
        .find(|s| ctx.get_token_info(*s).map(|i| !i.token_initialized()).unwrap_or(false))
        .ok_or_else(|| HsmError::Provision("no free slot to create the token in".into()))?;
    ctx.init_token(free, &secrets.so_pin, label)
        .map_err(HsmError::ck("C_InitToken"))?;
    // SoftHSM2 renumbers its slots once a token is initialised: find ours again by its label.
    let slot = find_token(ctx, label)?
        .ok_or_else(|| HsmError::Provision(format!("token {label:?} not found after C_InitToken")))?;
    let session = ctx.open_rw_session(slot).map_err(HsmError::ck("C_OpenSession"))?;
    session
        .login(UserType::So, Some(&secrets.so_pin))
        .map_err(HsmError::ck("C_Login(SO)"))?;
    session.init_pin(&secrets.user_pin).map_err(HsmError::ck("C_InitPIN"))?;
    session.logout().map_err(HsmError::ck("C_Logout"))?;
    tracing::info!(token = label, "created the HSM token");
    Ok(slot)
}
