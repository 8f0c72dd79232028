//! The messages of product rules §12, in Romanian and English: plain text, short, with the automated-e-mail footer.

/// A message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ro,
    En,
}

impl Lang {
    /// `ro` or `en` (anything else: Romanian, the default).
    pub fn parse(s: Option<&str>) -> Lang {
        match s.map(|s| s.trim().to_ascii_lowercase()) {
            Some(s) if s.starts_with("en") => Lang::En,
            _ => Lang::Ro,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ro => "ro",
            Lang::En => "en",
        }
    }
}

/// What to say.
#[derive(Debug, Clone)]
pub enum Template<'a> {
    /// #1: enrolment → invitation link.
    Invitation {
        name: &'a str,
        link: &'a str,
        valid_hours: i64,
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
    /// #8: configure the authorisation mechanism (2FA postponed).
    ConfigureAuthorisation { link: &'a str },
}

/// Why an SMS code was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    Activation,
    Pairing,
    PasswordRecovery,
    PhoneChange,
}

impl Template<'_> {
    /// Subject (empty for SMS) and body.
    pub fn render(&self, lang: Lang, contact_url: &str) -> (String, String) {
        let footer = match lang {
            Lang::Ro => format!(
                "\n\n--\nAcesta este un e-mail automat, vă rugăm să nu răspundeți. Pentru întrebări folosiți formularul de contact: {contact_url}"
            ),
            Lang::En => format!(
                "\n\n--\nThis is an automated e-mail, please do not reply. For questions use the contact form: {contact_url}"
            ),
        };
        let (subject, body) = match (self, lang) {
            (Template::Invitation { name, link, valid_hours }, Lang::Ro) => (
                "Invitație de activare a contului Parafa".to_owned(),
                format!(
                    "Bună ziua, {name},\n\nAți solicitat crearea unui cont Parafa. Pentru activare deschideți linkul de mai jos (valabil {valid_hours} ore, o singură dată):\n{link}\n\nÎnainte de activare citiți termenii și condițiile, ghidul de utilizare și nota de informare privind prelucrarea datelor personale; aplicația desktop (tokenul virtual) se descarcă din contul dvs.\n\nDacă nu dvs. ați făcut această solicitare, ignorați acest mesaj."
                ),
            ),
            (Template::Invitation { name, link, valid_hours }, Lang::En) => (
                "Your Parafa account activation invitation".to_owned(),
                format!(
                    "Hello {name},\n\nYou asked for a Parafa account. To activate it, open the link below (valid {valid_hours} hours, once):\n{link}\n\nBefore activating, read the terms and conditions, the user guide and the privacy notice; the desktop app (virtual token) is downloaded from your account.\n\nIf this was not you, ignore this message."
                ),
            ),
            (Template::AlreadyEnrolled { login_link, recovery_link }, Lang::Ro) => (
                "Aveți deja un cont Parafa".to_owned(),
                format!(
                    "Bună ziua,\n\nCineva (probabil dvs.) a încercat să creeze un cont Parafa cu această adresă de e-mail. Aveți deja un cont: autentificați-vă la {login_link}, iar dacă nu vă mai amintiți parola, recuperați-o la {recovery_link}.\n\nDacă nu dvs. ați făcut această încercare, ignorați acest mesaj."
                ),
            ),
            (Template::AlreadyEnrolled { login_link, recovery_link }, Lang::En) => (
                "You already have a Parafa account".to_owned(),
                format!(
                    "Hello,\n\nSomeone (probably you) tried to create a Parafa account with this e-mail address. You already have an account: log in at {login_link}, or recover your password at {recovery_link}.\n\nIf this was not you, ignore this message."
                ),
            ),
            (Template::SmsCode { code, minutes, purpose }, Lang::Ro) => {
                let what = match purpose {
                    CodePurpose::Activation => "activarea contului",
                    CodePurpose::Pairing => "configurarea autorizării",
                    CodePurpose::PasswordRecovery => "recuperarea parolei",
                    CodePurpose::PhoneChange => "schimbarea numărului de telefon",
                };
                (
                    String::new(),
                    format!("Parafa: codul pentru {what} este {code}. Valabil {minutes} minute. Nu îl comunicați nimănui."),
                )
            }
            (Template::SmsCode { code, minutes, purpose }, Lang::En) => {
                let what = match purpose {
                    CodePurpose::Activation => "account activation",
                    CodePurpose::Pairing => "authorisation set-up",
                    CodePurpose::PasswordRecovery => "password recovery",
                    CodePurpose::PhoneChange => "phone number change",
                };
                (
                    String::new(),
                    format!("Parafa: your {what} code is {code}. Valid {minutes} minutes. Do not share it."),
                )
            }
            (Template::PhoneChangeEmailCode { code, minutes }, Lang::Ro) => (
                "Codul pentru schimbarea numărului de telefon".to_owned(),
                format!(
                    "Bună ziua,\n\nCodul pentru schimbarea numărului de telefon asociat contului Parafa este {code}. Este valabil {minutes} minute.\n\nDacă nu dvs. ați cerut schimbarea, schimbați-vă parola."
                ),
            ),
            (Template::PhoneChangeEmailCode { code, minutes }, Lang::En) => (
                "Your phone number change code".to_owned(),
                format!(
                    "Hello,\n\nThe code to change the phone number of your Parafa account is {code}. It is valid {minutes} minutes.\n\nIf you did not ask for this change, change your password."
                ),
            ),
            (Template::PhoneChanged { phone_tail }, Lang::Ro) => (
                "Numărul de telefon a fost schimbat".to_owned(),
                format!(
                    "Bună ziua,\n\nNumărul de telefon al contului Parafa a fost schimbat (se termină în {phone_tail}). Ați fost deconectat de pe toate dispozitivele.\n\nDacă nu dvs. ați făcut schimbarea, contactați-ne imediat."
                ),
            ),
            (Template::PhoneChanged { phone_tail }, Lang::En) => (
                "Your phone number was changed".to_owned(),
                format!(
                    "Hello,\n\nThe phone number of your Parafa account was changed (it ends in {phone_tail}). You were logged out everywhere.\n\nIf this was not you, contact us at once."
                ),
            ),
            (Template::PasswordRecovery { link, valid_minutes }, Lang::Ro) => (
                "Recuperarea parolei Parafa".to_owned(),
                format!(
                    "Bună ziua,\n\nPentru a alege o parolă nouă deschideți linkul (valabil {valid_minutes} minute, o singură dată):\n{link}\nVeți primi apoi un cod prin SMS.\n\nDacă nu dvs. ați cerut recuperarea, ignorați acest mesaj; parola rămâne neschimbată."
                ),
            ),
            (Template::PasswordRecovery { link, valid_minutes }, Lang::En) => (
                "Recover your Parafa password".to_owned(),
                format!(
                    "Hello,\n\nTo choose a new password, open the link (valid {valid_minutes} minutes, once):\n{link}\nYou will then receive a code by SMS.\n\nIf you did not ask for this, ignore this message; your password stays unchanged."
                ),
            ),
            (Template::PasswordChanged, Lang::Ro) => (
                "Parola contului Parafa a fost schimbată".to_owned(),
                "Bună ziua,\n\nParola contului Parafa a fost schimbată și sesiunile deschise au fost închise.\n\nDacă nu dvs. ați făcut schimbarea, recuperați-vă parola și contactați-ne.".to_owned(),
            ),
            (Template::PasswordChanged, Lang::En) => (
                "Your Parafa password was changed".to_owned(),
                "Hello,\n\nThe password of your Parafa account was changed and the open sessions were closed.\n\nIf this was not you, recover your password and contact us.".to_owned(),
            ),
            (Template::ConfigureAuthorisation { link }, Lang::Ro) => (
                "Configurați mecanismul de autorizare".to_owned(),
                format!(
                    "Bună ziua,\n\nPentru a putea semna, configurați mecanismul de autorizare: instalați o aplicație de autentificare (Authenticator) pe telefon și urmați pașii de la:\n{link}"
                ),
            ),
            (Template::ConfigureAuthorisation { link }, Lang::En) => (
                "Configure the authorisation mechanism".to_owned(),
                format!(
                    "Hello,\n\nTo be able to sign, configure the authorisation mechanism: install an authenticator app on your phone and follow the steps at:\n{link}"
                ),
            ),
        };
        if subject.is_empty() {
            (subject, body)
        } else {
            (subject, body + &footer)
        }
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
            Template::ConfigureAuthorisation { link: "L" },
        ];
        for t in &samples {
            let (ro_s, ro) = t.render(Lang::Ro, "C");
            let (en_s, en) = t.render(Lang::En, "C");
            assert!(!ro_s.is_empty() && !en_s.is_empty() && ro != en);
            assert!(ro.contains("e-mail automat") && en.contains("automated e-mail"));
        }
        let (s, sms) = Template::SmsCode {
            code: "123456",
            minutes: 10,
            purpose: CodePurpose::Activation,
        }
        .render(Lang::Ro, "C");
        assert!(s.is_empty() && sms.contains("123456") && sms.contains("10 minute"));
        assert_eq!(Lang::parse(Some("en-GB")), Lang::En);
        assert_eq!(Lang::parse(None), Lang::Ro);
    }
}
