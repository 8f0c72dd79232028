//! The privacy settings (product rules §9 and §14): how long each class of data is kept (`[retention]`) and the
//! limits of the contact form written without a login (`[contact]`).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The least retention of logs and the audit trail, in years (product rules §9: "logs ≥ 2 years").
pub const MIN_AUDIT_YEARS: i64 = 2;

/// How long each class of data is kept (`[retention]`); the daily retention run deletes or anonymises what is due,
/// except what a legal hold keeps. Years are counted from the record's last event (see `lifecycle::retention`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Financial records (orders, invoices with their buyer data, payments): 10 years (5 is also allowed by law).
    /// `PARAFA_RETENTION_FINANCIAL_YEARS`.
    pub financial_years: i64,
    /// Complaints and contact messages, with their answers: 3 years. `PARAFA_RETENTION_COMPLAINTS_YEARS`.
    pub complaints_years: i64,
    /// Logs and the audit trail: 2 years, never less (a lower value stops the start).
    /// `PARAFA_RETENTION_AUDIT_YEARS`.
    pub audit_years: i64,
    /// Identification evidence, signed issuance terms and certificates: this many years after the certificate's
    /// expiry (10). `PARAFA_RETENTION_EVIDENCE_YEARS_AFTER_EXPIRY`.
    pub evidence_years_after_expiry: i64,
    /// Whether the daily run is on (it always runs on `parafa admin retention run`). `PARAFA_RETENTION_ENABLED`.
    pub enabled: bool,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            financial_years: 10,
            complaints_years: 3,
            audit_years: MIN_AUDIT_YEARS,
            evidence_years_after_expiry: 10,
            enabled: true,
        }
    }
}

impl RetentionSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if self.audit_years < MIN_AUDIT_YEARS {
            return invalid(
                "retention.audit_years",
                format!(
                    "{} years: logs and the audit trail are kept at least {MIN_AUDIT_YEARS} years (product rules §9)",
                    self.audit_years
                ),
            );
        }
        if ![5, 10].contains(&self.financial_years) {
            return invalid(
                "retention.financial_years",
                format!(
                    "{} years: financial records are kept 5 or 10 years (product rules §9)",
                    self.financial_years
                ),
            );
        }
        if !(1..=100).contains(&self.complaints_years) || !(1..=100).contains(&self.evidence_years_after_expiry) {
            return invalid(
                "retention",
                "complaints_years and evidence_years_after_expiry must be between 1 and 100".into(),
            );
        }
        Ok(())
    }
}

/// The contact form written without a login (`[contact]`): the e-mailed code and the limits against floods.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContactSettings {
    /// How long the code e-mailed to the sender is valid, in minutes (10). `PARAFA_CONTACT_CODE_MINUTES`.
    pub code_minutes: i64,
    /// Wrong codes accepted before the message is dropped (5).
    pub code_attempts: i64,
    /// Messages (sent and confirmed) at most per sender address and window (5, as the logged-in form).
    pub per_address: i64,
    /// Messages at most per client address and window (10). `PARAFA_CONTACT_PER_CLIENT`.
    pub per_client: i64,
    /// The window of both limits, in seconds (an hour).
    pub window_secs: i64,
    /// A message older than this many days is shown first to operators, as late (30: the answer is due in 30 days,
    /// product rules §9).
    pub late_after_days: i64,
}

impl Default for ContactSettings {
    fn default() -> Self {
        ContactSettings {
            code_minutes: 10,
            code_attempts: 5,
            per_address: 5,
            per_client: 10,
            window_secs: 3600,
            late_after_days: 30,
        }
    }
}

impl ContactSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.code_minutes < 1
            || self.code_attempts < 1
            || self.per_address < 1
            || self.per_client < 1
            || self.window_secs < 1
            || self.late_after_days < 1
        {
            return Err(ConfigError::Invalid {
                name: "contact",
                reason: "every number must be at least 1".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_retention_below_two_years_is_refused() {
        let mut r = RetentionSettings::default();
        assert!(r.validate().is_ok());
        r.audit_years = 1;
        let e = r.validate().unwrap_err().to_string();
        assert!(
            e.contains("retention.audit_years") && e.contains("at least 2 years"),
            "{e}"
        );
        r.audit_years = 2;
        r.financial_years = 7;
        assert!(r.validate().is_err());
        r.financial_years = 5;
        assert!(r.validate().is_ok());
    }
}
