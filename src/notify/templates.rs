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
    /// #6: the order was placed.
    OrderPlaced {
        order: &'a str,
        charge: &'a str,
        link: &'a str,
    },
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
    /// #11: a certificate was issued.
    CertificateIssued {
        serial: &'a str,
        valid_from: &'a str,
        valid_to: &'a str,
    },
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
}

/// A contact-form topic's name in a message.
fn topic_name(topic: &str, lang: Lang) -> &'static str {
    match (topic, lang) {
        ("data_change", Lang::Ro) => "modificarea datelor",
        ("data_change", Lang::En) => "data change",
        ("lost_email", Lang::Ro) => "e-mail pierdut",
        ("lost_email", Lang::En) => "lost e-mail",
        ("complaint", Lang::Ro) => "reclamație",
        ("complaint", Lang::En) => "complaint",
        (_, Lang::Ro) => "altele",
        (_, Lang::En) => "other",
    }
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
            (Template::OrderPlaced { order, charge, link }, Lang::Ro) => (
                format!("Comanda {order} a fost înregistrată"),
                format!(
                    "Bună ziua,\n\nComanda dvs. cu numărul {order} a fost înregistrată și așteaptă plata: {charge}.\nPlătiți la: {link}\n\nAți confirmat că ați citit termenii serviciului de semnătură la distanță și condițiile comenzii (atașate în cont), că plasarea comenzii vă obligă la plată și că pierdeți dreptul de retragere odată ce serviciul începe.\nMenționați numărul comenzii în orice mesaj către noi."
                ),
            ),
            (Template::OrderPlaced { order, charge, link }, Lang::En) => (
                format!("Order {order} was placed"),
                format!(
                    "Hello,\n\nYour order number {order} was placed and awaits payment: {charge}.\nPay at: {link}\n\nYou confirmed that you read the remote-signature terms and the order conditions (in your account), that placing the order obliges you to pay and that you lose the right of withdrawal once the service starts.\nQuote the order number in any message to us."
                ),
            ),
            (Template::IdentityAccepted { order, link }, Lang::Ro) => (
                format!("Identificarea pentru comanda {order} a fost acceptată"),
                format!(
                    "Bună ziua,\n\nIdentificarea dvs. pentru comanda {order} a fost acceptată. Autentificați-vă pentru a emite certificatul: {link}"
                ),
            ),
            (Template::IdentityAccepted { order, link }, Lang::En) => (
                format!("Your identification for order {order} was accepted"),
                format!("Hello,\n\nYour identification for order {order} was accepted. Log in to issue your certificate: {link}"),
            ),
            (Template::IdentityReturned { order, reason, link, hours }, Lang::Ro) => (
                format!("Comanda {order}: identificarea trebuie completată"),
                format!(
                    "Bună ziua,\n\nIdentificarea pentru comanda {order} a fost returnată pentru completare: {reason}.\nReluați-o cu linkul nou (valabil {hours} ore), fără o nouă plată:\n{link}"
                ),
            ),
            (Template::IdentityReturned { order, reason, link, hours }, Lang::En) => (
                format!("Order {order}: your identification needs completing"),
                format!(
                    "Hello,\n\nThe identification for order {order} was returned for completion: {reason}.\nResume it with the new link (valid {hours} hours), with no new payment:\n{link}"
                ),
            ),
            (Template::IdentityRejected { order, reason, resubmit_days, can_resubmit }, Lang::Ro) => (
                format!("Comanda {order}: identificarea a fost respinsă"),
                if *can_resubmit {
                    format!(
                        "Bună ziua,\n\nIdentificarea pentru comanda {order} a fost respinsă. Motiv: {reason}.\nO puteți retrimite din istoricul comenzilor (butonul „Retrimite”), gratuit în {resubmit_days} de zile calendaristice."
                    )
                } else {
                    format!(
                        "Bună ziua,\n\nIdentificarea pentru comanda {order} a fost respinsă definitiv. Motiv: {reason}."
                    )
                },
            ),
            (Template::IdentityRejected { order, reason, resubmit_days, can_resubmit }, Lang::En) => (
                format!("Order {order}: your identification was rejected"),
                if *can_resubmit {
                    format!(
                        "Hello,\n\nThe identification for order {order} was rejected. Reason: {reason}.\nYou can resubmit it from your order history (\"Resubmit\"), free of charge within {resubmit_days} calendar days."
                    )
                } else {
                    format!("Hello,\n\nThe identification for order {order} was rejected for good. Reason: {reason}.")
                },
            ),
            (Template::IdentityFrozen { order }, Lang::Ro) => (
                format!("Comanda {order} a fost suspendată"),
                format!(
                    "Bună ziua,\n\nDocumentul de identitate folosit pentru comanda {order} apare și în alt cont. Identificarea s-a oprit, iar comenzile în curs sunt suspendate până la decizia unui operator. Veți fi anunțat."
                ),
            ),
            (Template::IdentityFrozen { order }, Lang::En) => (
                format!("Order {order} is on hold"),
                format!(
                    "Hello,\n\nThe identity document used for order {order} also appears on another account. The identification has stopped and your pending orders are on hold until an operator decides. You will be told."
                ),
            ),
            (Template::Banned { reason, until }, Lang::Ro) => (
                "Contul Parafa a fost restricționat".to_owned(),
                format!(
                    "Bună ziua,\n\nIdentificarea a fost respinsă: {reason}. Comenzile în curs au fost anulate, iar contul nu poate plasa comenzi noi până la {until}."
                ),
            ),
            (Template::Banned { reason, until }, Lang::En) => (
                "Your Parafa account is restricted".to_owned(),
                format!(
                    "Hello,\n\nYour identification was rejected: {reason}. Your pending orders were cancelled and the account cannot place new orders until {until}."
                ),
            ),
            (Template::Refunded { order, amount, reason }, Lang::Ro) => (
                format!("Comanda {order} a fost rambursată"),
                format!(
                    "Bună ziua,\n\nComanda {order} nu mai poate fi onorată ({reason}). Suma de {amount} RON vă este returnată pe aceeași cale de plată. După expirarea certificatului puteți comanda unul nou."
                ),
            ),
            (Template::Refunded { order, amount, reason }, Lang::En) => (
                format!("Order {order} was refunded"),
                format!(
                    "Hello,\n\nOrder {order} can no longer be fulfilled ({reason}). {amount} RON are paid back the way you paid. After your certificate expires you can order a new one."
                ),
            ),
            (Template::RekeyReminder { expiry, deadline, link }, Lang::Ro) => (
                "Certificatul dvs. Parafa expiră în curând".to_owned(),
                format!(
                    "Bună ziua,\n\nCertificatul dvs. calificat expiră la {expiry}. Solicitați reînnoirea (o nouă pereche de chei) până la {deadline}: {link}\nSolicitările făcute târziu nu pot fi garantate."
                ),
            ),
            (Template::RekeyReminder { expiry, deadline, link }, Lang::En) => (
                "Your Parafa certificate expires soon".to_owned(),
                format!(
                    "Hello,\n\nYour qualified certificate expires on {expiry}. Ask for a rekey (a new key pair) by {deadline}: {link}\nLate requests cannot be guaranteed."
                ),
            ),
            (Template::RekeyApproved { order, issue_date }, Lang::Ro) => (
                format!("Comanda {order}: reînnoirea a fost aprobată"),
                format!(
                    "Bună ziua,\n\nCererea de reînnoire (comanda {order}) a fost aprobată. Noul certificat se emite automat la {issue_date} și este valabil de atunci."
                ),
            ),
            (Template::RekeyApproved { order, issue_date }, Lang::En) => (
                format!("Order {order}: your rekey was approved"),
                format!(
                    "Hello,\n\nYour rekey request (order {order}) was approved. The new certificate is issued automatically on {issue_date} and is valid from then."
                ),
            ),
            (Template::RekeyRejected { order, reason, deadline }, Lang::Ro) => (
                format!("Comanda {order}: reînnoirea a fost respinsă"),
                format!(
                    "Bună ziua,\n\nCererea de reînnoire (comanda {order}) a fost respinsă. Motiv: {reason}.\nCorectați datele și semnați din nou termenii, fără o nouă plată, până la {deadline}."
                ),
            ),
            (Template::RekeyRejected { order, reason, deadline }, Lang::En) => (
                format!("Order {order}: your rekey was rejected"),
                format!(
                    "Hello,\n\nYour rekey request (order {order}) was rejected. Reason: {reason}.\nCorrect the data and sign the terms again, with no new payment, by {deadline}."
                ),
            ),
            (Template::CertificateIssued { serial, valid_from, valid_to }, Lang::Ro) => (
                "Certificatul dvs. calificat a fost emis".to_owned(),
                format!(
                    "Bună ziua,\n\nCertificatul calificat cu seria {serial} a fost emis; este valabil de la {valid_from} până la {valid_to}.\nDacă folosiți certificatul la instituții (de exemplu ANAF), înregistrați-l din nou acolo."
                ),
            ),
            (Template::CertificateIssued { serial, valid_from, valid_to }, Lang::En) => (
                "Your qualified certificate was issued".to_owned(),
                format!(
                    "Hello,\n\nThe qualified certificate with serial {serial} was issued; it is valid from {valid_from} to {valid_to}.\nIf you use the certificate with institutions (the tax authority, for instance), register it there again."
                ),
            ),
            (Template::CertificateRevoked { serial, reason }, Lang::Ro) => (
                "Certificatul dvs. a fost revocat".to_owned(),
                format!(
                    "Bună ziua,\n\nCertificatul cu seria {serial} a fost revocat (motiv: {reason}). Nu mai poate semna, iar tranzacțiile rămase nu mai pot fi folosite."
                ),
            ),
            (Template::CertificateRevoked { serial, reason }, Lang::En) => (
                "Your certificate was revoked".to_owned(),
                format!(
                    "Hello,\n\nThe certificate with serial {serial} was revoked (reason: {reason}). It can no longer sign and the remaining transactions lapse."
                ),
            ),
            (Template::ContactReceived { number, topic, order, message, link }, Lang::Ro) => (
                format!("Am primit mesajul dvs. nr. {number}"),
                format!(
                    "Bună ziua,\n\nAm primit mesajul dvs. nr. {number} (subiect: {}{}). Vă răspundem prin e-mail; mesajele și răspunsurile sunt și în pagina de contact: {link}\nMenționați numărul {number} dacă ne scrieți din nou despre același subiect.\n\nMesajul dvs.:\n{message}",
                    topic_name(topic, Lang::Ro),
                    order.map(|o| format!(", comanda {o}")).unwrap_or_default()
                ),
            ),
            (Template::ContactReceived { number, topic, order, message, link }, Lang::En) => (
                format!("We received your message #{number}"),
                format!(
                    "Hello,\n\nWe received your message #{number} (topic: {}{}). We answer by e-mail; your messages and their answers are also on the contact page: {link}\nQuote the number {number} if you write to us again about the same matter.\n\nYour message:\n{message}",
                    topic_name(topic, Lang::En),
                    order.map(|o| format!(", order {o}")).unwrap_or_default()
                ),
            ),
            (Template::InstitutionalProforma { order, institution, holder, reference, amount, link, lead_days, payment_days }, Lang::Ro) => (
                format!("Comanda {order}: factura proformă și instrucțiuni"),
                format!(
                    "Bună ziua,\n\nAm înregistrat comanda {order} a instituției {institution} (referința achiziției: {reference}; cod CPV 79132100-9, servicii de certificare a semnăturii electronice) pentru titularul {holder}.\n\nFactura proformă ({amount} RON) se descarcă de aici:\n{link}\n\nIdentificarea titularului, în locul sesiunii video, se face:\n- la sediul nostru, personal, cu actul de identitate în original; sau\n- prin curier, cu o declarație pe propria răspundere legalizată la notar sau atestată de avocat și copia actului de identitate.\n\nDupă primirea documentelor complete, certificatul se emite în cel mult {lead_days} zile lucrătoare, la prima autorizare a titularului. Factura se emite după emiterea certificatului, cu plata în {payment_days} de zile.\nMenționați numărul comenzii în orice mesaj către noi."
                ),
            ),
            (Template::InstitutionalProforma { order, institution, holder, reference, amount, link, lead_days, payment_days }, Lang::En) => (
                format!("Order {order}: proforma invoice and instructions"),
                format!(
                    "Hello,\n\nWe registered order {order} of {institution} (procurement reference: {reference}; CPV code 79132100-9, electronic signature certification services) for the holder {holder}.\n\nDownload the proforma invoice ({amount} RON) here:\n{link}\n\nInstead of the video session, the holder is identified:\n- in person at our office, with the original identity document; or\n- by courier, with a sworn statement notarised or attested by a lawyer and a copy of the identity document.\n\nOnce the documents are complete, the certificate is issued within {lead_days} working days, at the holder's first authorisation. The invoice is issued after the certificate, payable within {payment_days} days.\nQuote the order number in any message to us."
                ),
            ),
            (Template::InstitutionalInvoice { order, invoice, amount, due, link }, Lang::Ro) => (
                format!("Factura {invoice} pentru comanda {order}"),
                format!(
                    "Bună ziua,\n\nCertificatul comenzii {order} a fost emis. Factura {invoice} ({amount} RON) are scadența {due} și se descarcă de aici:\n{link}\n\nMenționați numărul facturii la plată."
                ),
            ),
            (Template::InstitutionalInvoice { order, invoice, amount, due, link }, Lang::En) => (
                format!("Invoice {invoice} for order {order}"),
                format!(
                    "Hello,\n\nThe certificate of order {order} was issued. Invoice {invoice} ({amount} RON) is due on {due}; download it here:\n{link}\n\nQuote the invoice number with the payment."
                ),
            ),
            (Template::ContactAnswered { number, answer, link }, Lang::Ro) => (
                format!("Răspuns la mesajul dvs. nr. {number}"),
                format!(
                    "Bună ziua,\n\nRăspunsul nostru la mesajul dvs. nr. {number}:\n\n{answer}\n\nMesajul și răspunsul sunt și în pagina de contact: {link}"
                ),
            ),
            (Template::ContactAnswered { number, answer, link }, Lang::En) => (
                format!("Answer to your message #{number}"),
                format!(
                    "Hello,\n\nOur answer to your message #{number}:\n\n{answer}\n\nThe message and the answer are also on the contact page: {link}"
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
            Template::OrderPlaced {
                order: "O",
                charge: "C",
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
                serial: "S",
                valid_from: "F",
                valid_to: "T",
            },
            Template::CertificateRevoked {
                serial: "S",
                reason: "R",
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
        assert_eq!(Lang::parse(Some("en-GB")), Lang::En);
        assert_eq!(Lang::parse(None), Lang::Ro);
    }
}
