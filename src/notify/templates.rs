//! The messages of product rules §12, in Romanian and English: plain text, short, with the automated-e-mail footer.

use serde::Serialize;

pub use crate::i18n::Lang;

/// What to say: each variant is the `mail.<variant>` texts of the dictionaries (`src/i18n/messages.*.toml`),
/// rendered over its fields.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Template<'a> {
    /// #1: enrolment → invitation link.
    Invitation {
        name: &'a str,
        link: &'a str,
        valid_hours: i64,
        /// The trust documents' base URL (`…/legal`): the terms, the user guide and the privacy notice.
        docs: &'a str,
    },
    /// #1, for an e-mail that already has an account: the owner is told, the caller learns nothing.
    AlreadyEnrolled {
        login_link: &'a str,
        recovery_link: &'a str,
    },
    /// #2, #3: a one-time code by SMS.
    SmsCode {
        code: &'a str,
        minutes: i64,
        purpose: CodePurpose,
    },
    /// #13: the e-mail code that starts a phone change.
    PhoneChangeEmailCode { code: &'a str, minutes: i64 },
    /// #13: the phone number was changed.
    PhoneChanged { phone_tail: &'a str },
    /// #13: password recovery link.
    PasswordRecovery { link: &'a str, valid_minutes: i64 },
    /// The password was changed (security notice).
    PasswordChanged,
    /// §6: the code that confirms a new e-mail address, sent to that address.
    EmailChangeCode { code: &'a str, minutes: i64 },
    /// §6: to the old address: the account's e-mail was changed (the new one masked), with the contact link.
    EmailChanged { new_address: &'a str, contact: &'a str },
    /// #8: configure the authorisation mechanism (2FA postponed).
    ConfigureAuthorisation { link: &'a str },
    /// #6: the order was placed.
    OrderPlaced {
        order: &'a str,
        charge: &'a str,
        link: &'a str,
        /// The trust documents' base URL (`…/legal`), and the versions of the terms and of the order conditions
        /// the ticks accepted: the e-mail links to exactly those (as PDFs).
        docs: &'a str,
        terms_version: &'a str,
        conditions_version: &'a str,
    },
    /// #6: the payment arrived and the order is under way; the order note, the order conditions and the terms
    /// come attached (laid out by billing when the payment is recorded).
    OrderAccepted {
        order: &'a str,
        /// The amount paid, as the holder reads it (`233,80 RON`).
        paid: &'a str,
        /// When, in Bucharest time.
        paid_on: &'a str,
        /// The order's page, where identification starts.
        link: &'a str,
    },
    /// #4: the session code a video identification asks the holder to read from their phone.
    IdentificationSmsCode { code: &'a str },
    /// #5: identification accepted.
    IdentityAccepted { order: &'a str, link: &'a str },
    /// #5, #7: returned for completion (an interrupted session, or a fix needed), with a new link.
    IdentityReturned {
        order: &'a str,
        reason: &'a str,
        link: &'a str,
        hours: i64,
    },
    /// #5: identification rejected, with how to resubmit.
    IdentityRejected {
        order: &'a str,
        reason: &'a str,
        resubmit_days: i64,
        can_resubmit: bool,
    },
    /// #14: identification stopped (the same document on another account) until an operator decides.
    IdentityFrozen { order: &'a str },
    /// #14: fake data: pending orders cancelled and a ban.
    Banned { reason: &'a str, until: &'a str },
    /// #12 (and a final rejection): the order is refunded.
    Refunded {
        order: &'a str,
        amount: &'a str,
        reason: &'a str,
    },
    /// #9: the certificate expires soon.
    RekeyReminder {
        expiry: &'a str,
        deadline: &'a str,
        link: &'a str,
    },
    /// #10: rekey approved, with the successor's issue date.
    RekeyApproved { order: &'a str, issue_date: &'a str },
    /// #10: rekey rejected, with the reason and the limit.
    RekeyRejected {
        order: &'a str,
        reason: &'a str,
        deadline: &'a str,
    },
    /// #11: a certificate was issued, for an order (its registration number).
    CertificateIssued {
        order: &'a str,
        serial: &'a str,
        valid_from: &'a str,
        valid_to: &'a str,
    },
    /// §6: an operator corrected the holder's identity data (the fields, the reason); it applies to future
    /// certificates, and `certificates` valid ones keep their data.
    IdentityCorrected {
        fields: &'a str,
        reason: &'a str,
        certificates: i64,
    },
    /// An operator cleared the holder's authorisation lock (five wrong codes), with the reason.
    TotpUnlocked { reason: &'a str },
    /// #14: a certificate was revoked.
    CertificateRevoked { serial: &'a str, reason: &'a str },
    /// §14: the copy of a contact-form message, with its number (`topic` is one of `accounts::contact::TOPICS`).
    ContactReceived {
        number: i64,
        topic: &'a str,
        order: Option<&'a str>,
        message: &'a str,
        link: &'a str,
    },
    /// §13: to an institution: its order, the proforma and how the holder is identified.
    InstitutionalProforma {
        order: &'a str,
        institution: &'a str,
        holder: &'a str,
        reference: &'a str,
        amount: &'a str,
        link: &'a str,
        lead_days: i64,
        payment_days: i64,
    },
    /// §13: to an institution: an operator cancelled its order before issuance, with the reason.
    InstitutionalCancelled { order: &'a str, reason: &'a str },
    /// §13: to an institution: the invoice, issued after the certificate, with its due date.
    InstitutionalInvoice {
        order: &'a str,
        invoice: &'a str,
        amount: &'a str,
        due: &'a str,
        link: &'a str,
    },
    /// §14: an operator answered a contact-form message.
    ContactAnswered {
        number: i64,
        answer: &'a str,
        link: &'a str,
    },
    /// §14: the code that records a contact message written without a login.
    ContactCode { code: &'a str, minutes: i64 },
}

/// Why an SMS code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CodePurpose {
    Activation,
    Pairing,
    PasswordRecovery,
    PhoneChange,
}

impl Template<'_> {
    /// Subject (empty for SMS) and body; an e-mail ends with the automated-e-mail footer.
    pub fn render(&self, lang: Lang, contact_url: &str) -> (String, String) {
        let ctx = minijinja::Value::from_serialize(self);
        let kind = ctx
            .get_attr("kind")
            .ok()
            .and_then(|k| k.as_str().map(str::to_owned))
            .unwrap_or_default();
        let subject = crate::i18n::render(lang, &format!("mail.{kind}.subject"), &ctx);
        let body = crate::i18n::render(lang, &format!("mail.{kind}.body"), &ctx);
        if subject.is_empty() {
            return (subject, body);
        }
        let footer = crate::i18n::render(lang, "mail.footer", &minijinja::context! { contact_url });
        (subject, body + &footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_exists_in_both_languages_and_emails_carry_the_footer() {
        let samples = [
            Template::Invitation {
                name: "Ana",
                link: "L",
                valid_hours: 72,
                docs: "D",
            },
            Template::AlreadyEnrolled {
                login_link: "L",
                recovery_link: "R",
            },
            Template::PhoneChangeEmailCode {
                code: "123456",
                minutes: 5,
            },
            Template::PhoneChanged { phone_tail: "78" },
            Template::PasswordRecovery {
                link: "L",
                valid_minutes: 60,
            },
            Template::PasswordChanged,
            Template::EmailChangeCode {
                code: "123456",
                minutes: 5,
            },
            Template::EmailChanged {
                new_address: "a…@example.ro",
                contact: "C",
            },
            Template::ConfigureAuthorisation { link: "L" },
            Template::OrderPlaced {
                order: "O",
                charge: "C",
                link: "L",
                docs: "D",
                terms_version: "V1",
                conditions_version: "V2",
            },
            Template::OrderAccepted {
                order: "O",
                paid: "P",
                paid_on: "D",
                link: "L",
            },
            Template::IdentityAccepted { order: "O", link: "L" },
            Template::IdentityReturned {
                order: "O",
                reason: "R",
                link: "L",
                hours: 24,
            },
            Template::IdentityRejected {
                order: "O",
                reason: "R",
                resubmit_days: 30,
                can_resubmit: true,
            },
            Template::IdentityRejected {
                order: "O",
                reason: "R",
                resubmit_days: 30,
                can_resubmit: false,
            },
            Template::IdentityFrozen { order: "O" },
            Template::Banned {
                reason: "R",
                until: "U",
            },
            Template::Refunded {
                order: "O",
                amount: "1.00",
                reason: "R",
            },
            Template::RekeyReminder {
                expiry: "E",
                deadline: "D",
                link: "L",
            },
            Template::RekeyApproved {
                order: "O",
                issue_date: "D",
            },
            Template::RekeyRejected {
                order: "O",
                reason: "R",
                deadline: "D",
            },
            Template::CertificateIssued {
                order: "O",
                serial: "S",
                valid_from: "F",
                valid_to: "T",
            },
            Template::CertificateRevoked {
                serial: "S",
                reason: "R",
            },
            Template::TotpUnlocked { reason: "R" },
            Template::IdentityCorrected {
                fields: "given_name",
                reason: "R",
                certificates: 1,
            },
            Template::ContactReceived {
                number: 7,
                topic: "complaint",
                order: Some("O"),
                message: "M",
                link: "L",
            },
            Template::ContactAnswered {
                number: 7,
                answer: "A",
                link: "L",
            },
            Template::InstitutionalCancelled {
                order: "O",
                reason: "R",
            },
            Template::ContactCode {
                code: "123456",
                minutes: 10,
            },
            Template::InstitutionalProforma {
                order: "O",
                institution: "I",
                holder: "H",
                reference: "R",
                amount: "1.00",
                link: "L",
                lead_days: 5,
                payment_days: 30,
            },
            Template::InstitutionalInvoice {
                order: "O",
                invoice: "N",
                amount: "1.00",
                due: "D",
                link: "L",
            },
        ];
        let mut more = samples.to_vec();
        more.push(Template::IdentificationSmsCode { code: "482913" });
        for purpose in [
            CodePurpose::Activation,
            CodePurpose::Pairing,
            CodePurpose::PasswordRecovery,
            CodePurpose::PhoneChange,
        ] {
            more.push(Template::SmsCode {
                code: "123456",
                minutes: 10,
                purpose,
            });
        }
        for can_resubmit in [true, false] {
            more.push(Template::IdentityRejected {
                order: "O",
                reason: "R \"q\" {{ x }}",
                resubmit_days: 30,
                can_resubmit,
            });
        }
        for (topic, order) in [
            ("data_change", Some("PRF-1")),
            ("lost_email", None),
            ("complaint", None),
            ("zzz", Some("O")),
        ] {
            more.push(Template::ContactReceived {
                number: 12,
                topic,
                order,
                message: "line1\nline2 {% if %}",
                link: "L",
            });
        }
        for t in &more {
            for lang in [Lang::Ro, Lang::En] {
                let (subject, body) = t.render(lang, "C");
                assert!(
                    !body.starts_with("mail.") && !subject.starts_with("mail."),
                    "{t:?} {lang:?}"
                );
            }
        }
        // What a person wrote is text, never a template; the topic outside the list is "other".
        let (_, body) = more.last().unwrap().render(Lang::En, "C");
        assert!(
            body.contains("(topic: other, order O)") && body.contains("line1\nline2 {% if %}"),
            "{body}"
        );
        let (_, body) = more[more.len() - 5].render(Lang::Ro, "C");
        assert!(body.ends_with("respinsă definitiv. Motiv: R \"q\" {{ x }}.\n\n--\nAcesta este un e-mail automat, vă rugăm să nu răspundeți. Pentru întrebări folosiți formularul de contact: C"), "{body}");
        for t in &samples {
            let (ro_s, ro) = t.render(Lang::Ro, "C");
            let (en_s, en) = t.render(Lang::En, "C");
            assert!(!ro_s.is_empty() && !en_s.is_empty() && ro != en);
            assert!(ro.contains("e-mail automat") && en.contains("automated e-mail"));
            assert!(ro.ends_with("formularul de contact: C") && en.ends_with("the contact form: C"));
        }
        let (s, sms) = Template::SmsCode {
            code: "123456",
            minutes: 10,
            purpose: CodePurpose::Activation,
        }
        .render(Lang::Ro, "C");
        assert!(s.is_empty() && sms.contains("123456") && sms.contains("10 minute"));
        assert_eq!(Lang::or_default(Some("en-GB")), Lang::En);
        assert_eq!(Lang::or_default(None), Lang::Ro);
    }
}
