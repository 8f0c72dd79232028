//! `parafa admin holder create`: an active holder with a TOTP pairing, a key in the HSM, a qualified certificate
//! for the package's validity and the package's quota.

use std::sync::Arc;

use secrecy::SecretString;

use super::LifecycleError;
use crate::audit;
use crate::auth::{password, totp};
use crate::ca::{Ca, HolderSubject};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::users::{Role, TotpStatus, TwoFactorSetting, User, UserStatus};
use crate::db::{self, Db};
use crate::hsm::{Hsm, KeySpec};
use crate::i18n::Text;

/// What the operator asks for.
#[derive(Debug, Clone)]
pub struct HolderRequest {
    pub email: String,
    pub given_name: String,
    pub surname: String,
    pub phone: String,
    pub password: SecretString,
    pub package: u8,
    pub key: KeySpec,
    /// Whether login asks for the TOTP code (signature authorisation always does).
    pub two_factor: bool,
    /// serialNumber of the subject (a semantics identifier such as `PNORO-…`); Parafa's own id when absent.
    pub id_number: Option<String>,
    pub pseudonym: Option<String>,
    pub country: String,
    pub role: Role,
    /// Whether to issue a certificate now (false: an account with its TOTP pairing, ready to order one).
    pub certificate: bool,
}

/// The created holder, with the TOTP secret shown this once.
pub struct ReadyHolder {
    pub user_id: String,
    /// Empty without a certificate.
    pub credential_id: String,
    pub cert_serial: String,
    pub not_after: i64,
    pub transactions: i64,
    pub otpauth_uri: SecretString,
    pub secret_base32: SecretString,
}

impl HolderRequest {
    fn validate(&self, settings: &Settings) -> Result<(), LifecycleError> {
        let bad = |m: Text| Err(LifecycleError::Invalid(m));
        if crate::encoding::email::canonical(&self.email).is_err() {
            return bad(crate::text!("error.holders.e_mail_address_not_valid"));
        }
        if self.given_name.trim().is_empty() || self.surname.trim().is_empty() {
            return bad(crate::text!("error.holders.given_name_and_surname_required"));
        }
        let phone_digits = self.phone.trim_start_matches('+');
        if !self.phone.starts_with('+') || phone_digits.len() < 8 || !phone_digits.chars().all(|c| c.is_ascii_digit()) {
            return bad(crate::text!("error.holders.phone_number_must_have_country"));
        }
        if settings.package(self.package).is_none() {
            return bad(crate::text!("error.holders.unknown_package_choose_1_2"));
        }
        Ok(())
    }
}

/// Creates the holder. The HSM work (seed, key pair, certificate) is done first; then one database transaction
/// stores the user, the pairing, the certificate, the credential, the quota and the audit row, so a failure leaves
/// no half-made holder (a key generated for a holder that could not be stored is destroyed).
pub async fn create_ready_holder(
    db: &Db,
    hsm: &Arc<Hsm>,
    ca: &Arc<Ca>,
    settings: &Settings,
    clock: &dyn Clock,
    req: HolderRequest,
    actor: &str,
) -> Result<ReadyHolder, LifecycleError> {
    req.validate(settings)?;
    let email = crate::encoding::email::canonical(&req.email)
        .map_err(|_| LifecycleError::Invalid(crate::text!("error.holders.e_mail_address_not_valid")))?;
    if db::users::by_email(db, &email).await?.is_some() {
        return Err(LifecycleError::EmailTaken(email));
    }
    let package = settings
        .package(req.package)
        .cloned()
        .ok_or_else(|| LifecycleError::Invalid(crate::text!("error.holders.unknown_package")))?;

    let pw = req.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&pw, password::MIN_LENGTH))
        .await
        .map_err(|e| LifecycleError::Task(e.to_string()))??;

    let now = clock.now();
    let user_id = uuid::Uuid::new_v4().to_string();
    let credential_id = uuid::Uuid::new_v4().to_string();
    let not_after = add_years(now, package.validity_years);
    let subject = HolderSubject {
        given_name: req.given_name.trim().to_owned(),
        surname: req.surname.trim().to_owned(),
        country: req.country.clone(),
        serial_number: req
            .id_number
            .clone()
            .unwrap_or_else(|| format!("PARAFA-{}", &user_id.replace('-', "")[..16].to_uppercase())),
        pseudonym: req.pseudonym.clone(),
        email: Some(email.clone()),
    };

    let (h, c) = (hsm.clone(), ca.clone());
    let (uid, cid, account, spec) = (user_id.clone(), credential_id.clone(), email.clone(), req.key);
    let with_certificate = req.certificate;
    let (pairing, issued) = tokio::task::spawn_blocking(move || {
        let pairing = totp::new_pairing(&h, &uid, "Parafa", &account, TotpStatus::Active)?;
        if !with_certificate {
            return Ok::<_, LifecycleError>((pairing, None));
        }
        let label = format!("holder {account}");
        let spki = h.generate_key_pair(spec, cid.as_bytes(), &label)?;
        let issued = c
            .issue_holder(&h, &subject, &spki, now - 60, not_after)
            .inspect_err(|_| {
                let _ = h.destroy_key_pair(cid.as_bytes());
            })?;
        Ok::<_, LifecycleError>((pairing, Some(issued)))
    })
    .await
    .map_err(|e| LifecycleError::Task(e.to_string()))??;

    let user = User {
        id: user_id.clone(),
        email: email.clone(),
        given_name: req.given_name.trim().to_owned(),
        surname: req.surname.trim().to_owned(),
        phone: req.phone.clone(),
        password_hash,
        role: req.role,
        status: UserStatus::Active,
        two_factor: if req.two_factor {
            TwoFactorSetting::On
        } else {
            TwoFactorSetting::Off
        },
        created_at: now,
        lang: "ro".into(),
        two_factor_postponed: None,
        two_factor_until: None,
    };
    let stored = store(
        db,
        clock,
        &user,
        &pairing.row,
        &credential_id,
        req.key,
        issued.as_ref(),
        &package,
        actor,
    )
    .await;
    if let Err(e) = stored {
        if issued.is_none() {
            return Err(e);
        }
        let h = hsm.clone();
        let cid = credential_id.clone();
        let _ = tokio::task::spawn_blocking(move || h.destroy_key_pair(cid.as_bytes())).await;
        return Err(match e {
            LifecycleError::Db(db::DbError::Conflict(_)) => LifecycleError::EmailTaken(email),
            other => other,
        });
    }
    Ok(ReadyHolder {
        user_id,
        credential_id: if issued.is_some() { credential_id } else { String::new() },
        cert_serial: issued.as_ref().map(|i| i.serial.clone()).unwrap_or_default(),
        not_after: if issued.is_some() { not_after } else { 0 },
        transactions: if issued.is_some() { package.transactions } else { 0 },
        otpauth_uri: pairing.otpauth_uri,
        secret_base32: pairing.secret_base32,
    })
}

#[allow(clippy::too_many_arguments)]
async fn store(
    db: &Db,
    clock: &dyn Clock,
    user: &User,
    pairing: &db::users::TotpPairing,
    credential_id: &str,
    key: KeySpec,
    issued: Option<&crate::ca::Issued>,
    package: &crate::config::PackageSettings,
    actor: &str,
) -> Result<(), LifecycleError> {
    let now = user.created_at;
    let mut tx = db.writer().begin().await?;
    db::users::insert(&mut *tx, user).await?;
    db::users::insert_totp(&mut *tx, pairing, now).await?;
    if let Some(issued) = issued {
        super::issuance::insert_credential_rows(&mut tx, user, credential_id, key, issued, package, now).await?;
    }
    let event = audit::Event {
        actor,
        action: if user.role == Role::Operator {
            "operator.create"
        } else {
            "holder.create"
        },
        target: &user.id,
        outcome: "ok",
        client: "cli",
        details: serde_json::json!({
            "credential_id": credential_id,
            "certificate_serial": issued.map(|i| i.serial.clone()),
            "package": package.id,
            "key": key.as_str(),
        }),
    };
    db::audit::insert(&mut *tx, &audit::row(clock, &event)).await?;
    tx.commit().await?;
    Ok(())
}

/// `secs` plus whole calendar years (29 February falls back to 28 February).
pub fn add_years(secs: i64, years: u32) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return secs + i64::from(years) * 365 * 86_400;
    };
    let year = t.year() + years as i32;
    t.replace_year(year)
        .or_else(|_| (t - time::Duration::days(1)).replace_year(year))
        .map(|t| t.unix_timestamp())
        .unwrap_or(secs + i64::from(years) * 365 * 86_400)
}

#[cfg(test)]
mod tests {
    use super::add_years;

    #[test]
    fn years_are_calendar_years() {
        // 2024-02-29 + 1 year = 2025-02-28; 2025-03-01 + 2 years = 2027-03-01.
        assert_eq!(add_years(1_709_164_800, 1), 1_740_700_800);
        assert_eq!(add_years(1_740_787_200, 2), 1_803_859_200);
    }
}
