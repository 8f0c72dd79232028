//! The institutional and procurement channel (product rules §13), driven by operators.
//!
//! A public body orders from the procurement catalogue (CPV 79132100-9). An operator places the order for the
//! institution and its holder: the holder's account is created if the e-mail is new (invited, but the invitation
//! goes out only with the identification, see below), the order starts in `awaiting_documents` with
//! `channel = 'institutional'`, and the institution receives by e-mail the instructions and a link to its proforma.
//!
//! There is no video session: the holder is identified in person with the original document, or by courier with a
//! notarised or lawyer-attested sworn statement, and an operator records it (who, how, the document data with the
//! same checks as the video identification). Recording it completes the documents: the order is `accepted` (as
//! after a video verdict), its `due_by` is set the configured working days later (weekends and Romanian public holidays
//! not counted: [`add_working_days`]), and e-mails #1 (invitation, if
//! the account is not active) and #8 (configure the authorisation, if no pairing is active) go out — "within 5
//! working days of complete documents: e-mails 8 and 1".
//!
//! The holder then issues the certificate as any holder (first TOTP). There is no payment step: the invoice is
//! numbered right after issuance, in the same transaction, with the yearly counter of paid orders, due the
//! configured days later, and its link is e-mailed to the institution.

use serde::Deserialize;
use serde_json::{json, Value};

use super::identity::{banned_until, Document};
use super::LifecycleError;
use super::Services;
use crate::accounts::{audit, normalise_phone};
use crate::auth::tokens;
use crate::billing::orders::{self, OrderError};
use crate::billing::{OrderEvent, OrderKind, OrderState};
use crate::clock::{rfc3339, Clock};
use crate::db;
use crate::db::users::{self, Role, TotpStatus, TwoFactorSetting, User, UserStatus};
use crate::db::DbError;
use crate::i18n::Text;
use crate::notify::{self, Lang, Template};
use crate::text;

pub use crate::billing::CPV;

/// How an identification was made.
pub const METHODS: &[&str] = &["in_person", "courier_sworn_statement"];

/// The institution of an institutional order.
#[derive(Debug, Default, Deserialize)]
pub struct Institution {
    pub name: Option<String>,
    /// CUI/CIF.
    pub tax_id: Option<String>,
    /// One or more lines.
    pub address: Option<String>,
    /// Where the proforma and the invoice go.
    pub email: Option<String>,
    /// `ro` (default) or `en`: the language of its e-mails.
    pub lang: Option<String>,
}

/// The holder of an institutional order.
#[derive(Debug, Default, Deserialize)]
pub struct HolderData {
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub lang: Option<String>,
}

/// `POST /operator/institutional-orders`.
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    pub institution: Option<Institution>,
    pub holder: Option<HolderData>,
    pub package: Option<u8>,
    pub procurement_reference: Option<String>,
}

/// `POST /operator/institutional-orders/{id}/identity`.
#[derive(Debug, Deserialize)]
pub struct IdentityRecord {
    /// `in_person` or `courier_sworn_statement`.
    pub method: Option<String>,
    pub document: Option<Document>,
    pub note: Option<String>,
}

fn text(v: Option<String>, what: &str, max: usize) -> Result<String, LifecycleError> {
    let v = v
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| LifecycleError::Invalid(Text::new(format!("{what}_required"))))?;
    if v.chars().count() > max {
        return Err(LifecycleError::Invalid(
            text!("error.institutional.has_at_most_characters", what => Text::new(what.to_owned()), max),
        ));
    }
    Ok(v)
}

fn email_of(v: Option<String>, what: &str) -> Result<String, LifecycleError> {
    crate::encoding::email::canonical(&text(v, what, crate::encoding::email::MAX_LEN)?)
        .map_err(|_| LifecycleError::Invalid(Text::new(format!("{what}_not"))))
}

/// The Orthodox Easter Sunday of `year` (1900–2099), in the Gregorian calendar: Meeus's Julian-calendar algorithm,
/// moved 13 days on (the Julian calendar's lag over those two centuries). `None` outside those years.
pub fn orthodox_easter(year: i32) -> Option<time::Date> {
    if !(1900..=2099).contains(&year) {
        return None;
    }
    let a = year % 4;
    let b = year % 7;
    let c = year % 19;
    let d = (19 * c + 15) % 30;
    let e = (2 * a + 4 * b - d + 34) % 7;
    let month = (d + e + 114) / 31;
    let day = (d + e + 114) % 31 + 1;
    let julian = time::Date::from_calendar_date(year, time::Month::try_from(month as u8).ok()?, day as u8).ok()?;
    julian.checked_add(time::Duration::days(13))
}

/// Whether `date` is a Romanian public holiday (Codul muncii, art. 139): 1, 2, 6, 7 and 24 January, Orthodox Good
/// Friday, Easter Sunday and Monday, 1 May, 1 June, Orthodox Pentecost (Rusalii) Sunday and Monday, 15 August,
/// 30 November, 1 December, 25 and 26 December. The movable feasts are known for 1900–2099 only.
pub fn is_romanian_public_holiday(date: time::Date) -> bool {
    use time::Month::*;
    let fixed = matches!(
        (date.month(), date.day()),
        (January, 1 | 2 | 6 | 7 | 24) | (May, 1) | (June, 1) | (August, 15) | (November, 30) | (December, 1 | 25 | 26)
    );
    if fixed {
        return true;
    }
    let Some(easter) = orthodox_easter(date.year()) else {
        return false;
    };
    let offset = (date - easter).whole_days();
    // Good Friday, Easter Sunday and Monday, Pentecost Sunday and Monday.
    matches!(offset, -2 | 0 | 1 | 49 | 50)
}

/// Whether `date` is a working day: Monday to Friday and not a Romanian public holiday.
pub fn is_working_day(date: time::Date) -> bool {
    !matches!(date.weekday(), time::Weekday::Saturday | time::Weekday::Sunday) && !is_romanian_public_holiday(date)
}

/// The `n`th working day after `date` ([`is_working_day`]); `date` itself for `n <= 0`.
pub fn add_working_days_to_date(date: time::Date, n: i64) -> time::Date {
    let mut d = date;
    let mut left = n;
    while left > 0 {
        match d.next_day() {
            Some(next) => d = next,
            None => return d,
        }
        if is_working_day(d) {
            left -= 1;
        }
    }
    d
}

/// `start` plus `n` working days ([`add_working_days_to_date`] on the UTC date), at the same time of day.
pub fn add_working_days(start: i64, n: i64) -> i64 {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(start) else {
        return start;
    };
    let date = at.date();
    start + (add_working_days_to_date(date, n) - date).whole_days() * 86_400
}

fn link(state: &Services, token: &str, document: &str) -> String {
    format!("{}/api/v1/institutional/{token}/{document}", state.ca.public_base())
}

/// Places an institutional order for an institution and its holder (see the module's description).
pub async fn create(
    state: &Services,
    operator: &User,
    req: CreateRequest,
    client: &str,
) -> Result<InstitutionalOrder, LifecycleError> {
    let c = checked(state, req)?;
    let existing = users::by_email(&state.db, &c.email).await?;
    may_order(state, existing.as_ref(), &c.phone).await?;
    let now = state.clock.now();
    let rate = state.fx.rate(now).await;
    let vat = state.settings.billing.vat_basis_points;
    let price = crate::billing::price(c.package.net_price_eur_cents, 0, vat, &rate);
    let actor = format!("operator:{}", operator.id);
    let order_id = uuid::Uuid::now_v7().to_string();
    let placing = Placing {
        c: &c,
        existing: existing.as_ref(),
        order_id: &order_id,
        price: &price,
        actor: &actor,
        client,
        now,
    };
    for _ in 0..5 {
        let number = orders::registration_number(now);
        let Some(holder) = placing.try_number(state, &number).await? else {
            continue; // registration number taken: draw again
        };
        audit(
            &state.accounts(),
            &operator.id,
            "institutional.order.create",
            "ok",
            client,
            json!({ "order": number, "holder": holder, "new_account": existing.is_none(), "institution": c.tax_id }),
        )
        .await;
        return view(state, &order_id).await;
    }
    Err(LifecycleError::Conflict(crate::text!(
        "error.order.could_not_allocate_registration_number"
    )))
}

/// An institutional order's request, checked.
struct Checked {
    name: String,
    tax_id: String,
    address_lines: Vec<String>,
    inst_email: String,
    inst_lang: Lang,
    given_name: String,
    surname: String,
    email: String,
    phone: String,
    holder_lang: Lang,
    reference: String,
    package: crate::config::PackageSettings,
}

fn checked(state: &Services, req: CreateRequest) -> Result<Checked, LifecycleError> {
    let inst = req.institution.unwrap_or_default();
    let name = text(inst.name, "error.institutional.institution_name", 200)?;
    let tax_id = text(inst.tax_id, "error.institutional.institution_tax_id_cui", 20)?;
    if !orders::valid_cui(&tax_id) {
        return Err(LifecycleError::Invalid(crate::text!("error.order.tax_id_cui_cif_not")));
    }
    let address = text(inst.address, "error.institutional.institution_address", 500)?;
    let address_lines: Vec<String> = address
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if address_lines.len() > 4 {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.institutional.institution_address_has_at_most"
        )));
    }
    let h = req.holder.unwrap_or_default();
    Ok(Checked {
        inst_email: email_of(inst.email, "error.institutional.institution_e_mail_address")?,
        inst_lang: Lang::or_default(inst.lang.as_deref()),
        given_name: text(h.given_name, "error.institutional.holder_given_name", 100)?,
        surname: text(h.surname, "error.institutional.holder_surname", 100)?,
        email: email_of(h.email, "error.institutional.holder_e_mail_address")?,
        phone: normalise_phone(&text(h.phone, "error.institutional.holder_phone_number", 40)?)
            .map_err(|e| LifecycleError::Invalid(e.text()))?,
        holder_lang: Lang::or_default(h.lang.as_deref()),
        reference: text(
            req.procurement_reference,
            "error.institutional.procurement_reference",
            200,
        )?,
        package: req
            .package
            .and_then(|p| state.settings.package(p))
            .cloned()
            .ok_or_else(|| LifecycleError::Invalid(crate::text!("error.order.choose_package_1_2_or")))?,
        name,
        tax_id,
        address_lines,
    })
}

/// Whether the holder may be given this order: an existing account must be a holder's and not banned; a new one
/// may not take another person's phone number.
async fn may_order(state: &Services, existing: Option<&User>, phone: &str) -> Result<(), LifecycleError> {
    let Some(u) = existing else {
        if users::by_phone(&state.db, phone).await?.is_some() {
            // Another person's number: a conflict with the state (409), as at enrolment.
            return Err(LifecycleError::Conflict(crate::text!(
                "error.enrol.phone_number_cannot_used_each"
            )));
        }
        return Ok(());
    };
    if u.role != Role::Holder {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.institutional.e_mail_address_belongs_operator"
        )));
    }
    if let Some(until) = banned_until(state, &u.id).await? {
        return Err(LifecycleError::Forbidden(crate::text!(
            "error.identity.account_restricted_until",
            until = rfc3339(until)
        )));
    }
    Ok(())
}

/// An institutional order being placed.
struct Placing<'a> {
    c: &'a Checked,
    existing: Option<&'a User>,
    order_id: &'a str,
    price: &'a crate::billing::Price,
    actor: &'a str,
    client: &'a str,
    now: i64,
}

impl Placing<'_> {
    /// Places the order under the registration number `number` in one transaction (the holder's account if new,
    /// the order, the institution, the history, the proforma's e-mail); `None` when the number is taken. Returns
    /// the holder's id.
    async fn try_number(&self, state: &Services, number: &str) -> Result<Option<String>, LifecycleError> {
        let (c, now) = (self.c, self.now);
        let mut tx = state.db.writer().begin().await?;
        let holder = match self.existing {
            Some(u) => u.clone(),
            None => self.new_holder(&mut tx).await?,
        };
        let invoice = json!({
            "type": "company", "name": c.name, "tax_id": c.tax_id, "address_lines": c.address_lines,
            "email": c.inst_email, "lang": c.inst_lang.as_str(),
        });
        let acks = json!({
            "channel": "institutional", "procurement_reference": c.reference, "cpv": CPV,
            "placed_by": self.actor, "at": rfc3339(now), "client": self.client,
        });
        let row = orders::NewOrder {
            id: self.order_id,
            number,
            user_id: &holder.id,
            kind: OrderKind::New,
            package_id: i64::from(c.package.id),
            state: OrderState::AwaitingDocuments,
            price: &self.price.amounts,
            promo_code: None,
            invoice: &invoice.to_string(),
            acknowledgements: &acks.to_string(),
            credential_id: None,
            channel: "institutional",
            now,
        };
        match orders::insert(&mut tx, &row).await {
            Err(e) if DbError::is_unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let token = self.institution(&mut tx).await?;
        self.send_proforma(&mut tx, state, number, &holder, &token).await?;
        tx.commit().await?;
        Ok(Some(holder.id))
    }

    /// The holder's account, invited, when the e-mail address has none.
    async fn new_holder(&self, tx: &mut sqlx::AnyConnection) -> Result<User, LifecycleError> {
        let c = self.c;
        let u = User {
            id: uuid::Uuid::new_v4().to_string(),
            email: c.email.clone(),
            given_name: c.given_name.clone(),
            surname: c.surname.clone(),
            phone: c.phone.clone(),
            password_hash: String::new(),
            role: Role::Holder,
            status: UserStatus::Invited,
            two_factor: TwoFactorSetting::Pending,
            created_at: self.now,
            lang: c.holder_lang.as_str().into(),
            two_factor_postponed: None,
            two_factor_until: None,
        };
        users::insert(&mut *tx, &u).await?;
        Ok(u)
    }

    /// The institution of the order and its history's first row; returns the secret of the institution's link.
    async fn institution(&self, tx: &mut sqlx::AnyConnection) -> Result<String, LifecycleError> {
        let c = self.c;
        let (token, hash) = tokens::new_secret();
        let institution = db::institutional::NewInstitutional {
            order_id: self.order_id,
            name: &c.name,
            tax_id: &c.tax_id,
            address: &c.address_lines.join("\n"),
            email: &c.inst_email,
            procurement_reference: &c.reference,
            link_hash: &hash,
            created_by: self.actor,
        };
        db::institutional::insert(tx, &institution, self.now).await?;
        let note = format!("placed for {} ({})", c.name, c.reference);
        orders::record_history(
            tx,
            self.order_id,
            OrderState::AwaitingDocuments,
            self.actor,
            &note,
            self.now,
        )
        .await?;
        Ok(token)
    }

    /// The e-mail to the institution: its order, the proforma's link and how the holder is identified.
    async fn send_proforma(
        &self,
        tx: &mut sqlx::AnyConnection,
        state: &Services,
        number: &str,
        holder: &User,
        token: &str,
    ) -> Result<(), LifecycleError> {
        let c = self.c;
        let holder_name = format!("{} {}", holder.given_name, holder.surname);
        let amount = crate::billing::format_minor(self.price.amounts.total_ron_bani);
        let billing = &state.settings.billing;
        let proforma = Template::InstitutionalProforma {
            order: number,
            institution: &c.name,
            holder: &holder_name,
            reference: &c.reference,
            amount: &amount,
            link: &link(state, token, "proforma.pdf"),
            lead_days: billing.institutional_lead_working_days,
            payment_days: billing.institutional_payment_days,
        };
        let m = notify::email(
            &c.inst_email,
            c.inst_lang.as_str(),
            state.ca.public_base(),
            proforma,
            "institutional_proforma",
        );
        notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
        Ok(())
    }
}

/// An institutional order awaiting its holder's documents, not on hold, and its holder, not banned.
async fn awaiting_documents(state: &Services, order_id: &str) -> Result<(orders::OrderRow, User), LifecycleError> {
    let order = orders::order_row(state.db.writer(), order_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.order.no_such_order")))?;
    let stored = db::orders::get(&state.db, order_id, None).await?;
    if stored.is_none_or(|o| o.channel != "institutional") {
        return Err(LifecycleError::NotFound(crate::text!(
            "error.institutional.no_such_institutional_order"
        )));
    }
    if order.frozen {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.payment.order_on_hold_until_operator"
        )));
    }
    if order.state != OrderState::AwaitingDocuments {
        return Err(LifecycleError::Conflict(
            crate::text!("error.institutional.identification_recorded_while_order_awaits", state => crate::i18n::Text::state(order.state.as_str())),
        ));
    }
    let holder = users::by_id(&state.db, &order.user_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.identity.no_such_user")))?;
    if let Some(until) = banned_until(state, &holder.id).await? {
        return Err(LifecycleError::Forbidden(crate::text!(
            "error.identity.account_restricted_until",
            until = rfc3339(until)
        )));
    }
    Ok((order, holder))
}

/// Tells the holder their identity was recorded (an active account: log in to issue) and, without an
/// authenticator, how to set one up; an account still invited gets its invitation after the commit.
async fn tell_recorded(
    tx: &mut sqlx::AnyConnection,
    state: &Services,
    holder: &User,
    order: &str,
    active: bool,
) -> Result<(), LifecycleError> {
    let base = state.ca.public_base();
    if active {
        let link = format!("{base}/login");
        let accepted = Template::IdentityAccepted { order, link: &link };
        crate::notify::tell(tx, state.clock.as_ref(), base, holder, accepted, "identity_accepted").await?;
    }
    let paired = users::totp(&state.db, &holder.id)
        .await?
        .is_some_and(|p| p.status == TotpStatus::Active);
    if !paired {
        let link = format!("{base}/pairing");
        let configure = Template::ConfigureAuthorisation { link: &link };
        crate::notify::tell(
            tx,
            state.clock.as_ref(),
            base,
            holder,
            configure,
            "configure_authorisation",
        )
        .await?;
    }
    Ok(())
}

/// The operator records the identification of an institutional order's holder (see the module's description).
pub async fn record_identity(
    state: &Services,
    order_id: &str,
    req: IdentityRecord,
    operator: &User,
    client: &str,
) -> Result<InstitutionalOrder, LifecycleError> {
    let method = req.method.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if !METHODS.contains(&method.as_str()) {
        return Err(LifecycleError::Invalid(crate::text!(
            "error.institutional.method_must_in_person_or"
        )));
    }
    let note = req.note.map(|n| n.trim().to_owned()).unwrap_or_default();
    if note.chars().count() > 1000 {
        return Err(LifecycleError::Invalid(
            text!("error.institutional.has_at_most_characters", what => text!("error.institutional.note"), max = 1000),
        ));
    }
    let mut doc = req
        .document
        .ok_or_else(|| LifecycleError::Invalid(crate::text!("error.identity.document_data_required")))?;
    let (order, holder) = awaiting_documents(state, order_id).await?;
    let now = state.clock.now();
    doc.validate(&state.settings.lifecycle.identity_documents, now)?;
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&doc.given_name) {
        doc.given_name = Some(holder.given_name.clone());
    }
    if blank(&doc.surname) {
        doc.surname = Some(holder.surname.clone());
    }
    let (doc_key, personal_key) = (doc.key(), doc.personal_key());
    let others =
        db::identity::other_holders_of(state.db.writer(), &holder.id, &doc_key, personal_key.as_deref()).await?;
    if !others.is_empty() {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.institutional.identity_document_already_used_on"
        )));
    }
    let actor = format!("operator:{}", operator.id);
    let doc_json =
        serde_json::to_string(&doc).map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
    let due_by = add_working_days(now, state.settings.billing.institutional_lead_working_days);
    let how = if method == "in_person" {
        "identity recorded: in person, original document"
    } else {
        "identity recorded: by courier, sworn statement"
    };
    let mut tx = state.db.writer().begin().await?;
    if !orders::transition(&mut tx, order_id, OrderEvent::DocumentsRecorded, &actor, how, now).await? {
        return Err(LifecycleError::Conflict(crate::text!(
            "error.identity.order_changed_meanwhile"
        )));
    }
    let documents = db::institutional::Documents {
        method: &method,
        document: &doc_json,
        note: &note,
        recorded_by: &actor,
        due_by,
    };
    db::institutional::record_documents(&mut tx, order_id, &documents, now).await?;
    // An identification row as the video channel makes, accepted by this operator: duplicate documents on other
    // accounts are found the same way, and the identity is the certificate's subject.
    let session_id = uuid::Uuid::now_v7().to_string();
    let (_, unused_link) = tokens::new_secret();
    let recorded = db::identity::RecordedSession {
        id: &session_id,
        order_id,
        user_id: &holder.id,
        unused_link_hash: &unused_link,
        document: &doc_json,
        document_key: &doc_key,
        personal_key: personal_key.as_deref(),
        phone: &holder.phone,
        reason: &format!("{method}: {note}"),
        reviewer: &actor,
    };
    db::identity::create_recorded(&mut tx, &recorded, now).await?;
    let country = doc.country.clone().unwrap_or_default().trim().to_uppercase();
    let identity = db::identity::Identity {
        user_id: &holder.id,
        given_name: doc.given_name.as_deref().unwrap_or_default().trim(),
        surname: doc.surname.as_deref().unwrap_or_default().trim(),
        personal_number: doc.personal_number.as_deref().map(str::trim).filter(|p| !p.is_empty()),
        country: &country,
        document: &doc_json,
        phone: Some(&holder.phone),
        session_id: &session_id,
    };
    db::identity::record_identity(&mut tx, &identity, now).await?;
    let active = holder.status == UserStatus::Active;
    tell_recorded(&mut tx, state, &holder, &order.registration_number, active).await?;
    tx.commit().await?;
    if !active {
        // E-mail #1: the invitation, now that the documents are complete (its link's validity starts now).
        crate::accounts::enrolment::invite(&state.accounts(), &holder, Lang::or_default(Some(&holder.lang)), client)
            .await
            .map_err(|e| LifecycleError::Conflict(crate::text!("error.institutional.invitation_could_not_sent", e)))?;
    }
    audit(
        &state.accounts(),
        &holder.id,
        "institutional.identity.record",
        &method,
        &actor,
        json!({ "order": order.registration_number, "session": session_id, "due_by": rfc3339(due_by) }),
    )
    .await;
    view(state, order_id).await
}

/// `POST /operator/institutional-orders/{id}/cancel`.
#[derive(Debug, Deserialize)]
pub struct CancelRequest {
    pub reason: Option<String>,
}

/// The states in which an institutional order may be cancelled: nothing was issued yet (documents awaited, or
/// recorded and the holder has not issued).
pub const CANCELLABLE: [OrderState; 2] = [OrderState::AwaitingDocuments, OrderState::Accepted];

/// An operator cancels an institutional order, with a reason, only while nothing was issued: the order is
/// cancelled (a transition of the one table, recorded in its history with the reason), the institution's contact
/// is told by e-mail in the same transaction, and the cancellation is audited.
pub async fn cancel(
    state: &Services,
    order_id: &str,
    req: CancelRequest,
    operator: &User,
    client: &str,
) -> Result<InstitutionalOrder, LifecycleError> {
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if reason.is_empty() {
        return Err(LifecycleError::Invalid(text!(
            "error.institutional.cancel_reason_required"
        )));
    }
    if reason.chars().count() > 1000 {
        return Err(LifecycleError::Invalid(
            text!("error.institutional.has_at_most_characters", what => text!("error.institutional.reason"), max = 1000),
        ));
    }
    let now = state.clock.now();
    let actor = format!("operator:{}", operator.id);
    let mut tx = state.db.writer().begin().await?;
    let order = orders::order_row(&mut *tx, order_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(text!("error.institutional.no_such_institutional_order")))?;
    let Some(r) = db::institutional::to_invoice(&mut tx, order_id).await? else {
        // Not institutional, or invoiced: invoiced means issued. (The transaction holds SQLite's one writer.)
        tx.rollback().await?;
        let institutional = db::orders::get(&state.db, order_id, None)
            .await?
            .is_some_and(|o| o.channel == "institutional");
        return Err(if institutional {
            LifecycleError::Conflict(
                text!("error.institutional.cancel_only_before_issuance", state => Text::state(order.state.as_str())),
            )
        } else {
            LifecycleError::NotFound(text!("error.institutional.no_such_institutional_order"))
        });
    };
    // `Void` cancels from any state before issuance; the institutional channel only reaches these two.
    if !CANCELLABLE.contains(&order.state)
        || !orders::transition(
            &mut tx,
            order_id,
            OrderEvent::Void,
            &actor,
            &format!("cancelled by an operator: {reason}"),
            now,
        )
        .await?
    {
        return Err(LifecycleError::Conflict(
            text!("error.institutional.cancel_only_before_issuance", state => Text::state(order.state.as_str())),
        ));
    }
    let lang = serde_json::from_str::<Value>(&r.invoice)
        .ok()
        .and_then(|v| v["lang"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "ro".into());
    let m = notify::email(
        &r.institution_email,
        &lang,
        state.ca.public_base(),
        Template::InstitutionalCancelled {
            order: &r.registration_number,
            reason: &reason,
        },
        "institutional_cancelled",
    );
    notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
    let event = crate::audit::Event {
        actor: &actor,
        action: "institutional.order.cancel",
        target: order_id,
        outcome: "ok",
        client,
        details: json!({ "order": r.registration_number, "from": order.state.as_str(), "reason": reason }),
    };
    db::audit::insert(&mut *tx, &crate::audit::row(state.clock.as_ref(), &event)).await?;
    tx.commit().await?;
    view(state, order_id).await
}

/// Inside issuance's transaction: an institutional order is invoiced once its certificate is issued — the next
/// number of the year's counter, due the configured days later — and the institution gets the invoice's link (a
/// new one: the link is kept only as a hash). Web orders (invoiced at payment) are left alone.
pub async fn after_issuance(
    conn: &mut sqlx::AnyConnection,
    state: &Services,
    order_id: &str,
    now: i64,
) -> Result<(), LifecycleError> {
    let Some(r) = db::institutional::to_invoice(conn, order_id).await? else {
        return Ok(());
    };
    let number = crate::billing::payment::assign_invoice_number(conn, order_id, now).await?;
    let due = now + state.settings.billing.institutional_payment_days * 86_400;
    db::orders::set_invoiced(conn, order_id, now, due).await?;
    crate::billing::fiscal::keep_invoice_xml(conn, &state.settings, order_id).await?;
    let (token, hash) = tokens::new_secret();
    db::institutional::set_link_hash(conn, order_id, &hash).await?;
    let due_s = rfc3339(due)[..10].to_owned();
    orders::record_history(
        conn,
        order_id,
        OrderState::Fulfilled,
        "system",
        &format!("invoice {number} issued, due {due_s}"),
        now,
    )
    .await?;
    let order = r.registration_number;
    let lang = serde_json::from_str::<Value>(&r.invoice)
        .ok()
        .and_then(|v| v["lang"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "ro".into());
    let m = notify::email(
        &r.institution_email,
        &lang,
        state.ca.public_base(),
        Template::InstitutionalInvoice {
            order: &order,
            invoice: &number,
            amount: &crate::billing::format_minor(r.total_ron_bani),
            due: &due_s,
            link: &link(state, &token, "invoice.pdf"),
        },
        "institutional_invoice",
    );
    notify::enqueue(&mut *conn, state.clock.as_ref(), &m).await?;
    Ok(())
}

/// An institutional order as operators see it.
#[derive(Debug, serde::Serialize)]
pub struct InstitutionalOrder {
    pub id: String,
    pub registration_number: String,
    pub state: OrderState,
    pub channel: &'static str,
    pub package: i64,
    pub total_ron: String,
    pub invoice_number: Option<String>,
    /// When the certificate is due (working days after complete documents).
    pub due_by: Option<String>,
    pub due_by_unix: Option<i64>,
    /// Accepted and past its due date.
    pub late: bool,
    pub payment_due_at: Option<String>,
    pub created_at: String,
    pub created_at_unix: i64,
    pub institution: InstitutionView,
    pub procurement_reference: String,
    pub cpv: &'static str,
    pub holder: HolderView,
    pub identification: IdentificationView,
}

/// The institution of an institutional order, as operators see it.
#[derive(Debug, serde::Serialize)]
pub struct InstitutionView {
    pub name: String,
    pub tax_id: String,
    pub address: String,
    pub email: String,
}

/// The holder of an institutional order, as operators see it.
#[derive(Debug, serde::Serialize)]
pub struct HolderView {
    pub email: String,
    pub name: String,
    pub account_status: String,
}

/// How an institutional order's holder was identified, once recorded.
#[derive(Debug, serde::Serialize)]
pub struct IdentificationView {
    pub method: Option<String>,
    pub note: Option<String>,
    pub recorded_by: Option<String>,
    pub documents_complete_at: Option<String>,
}

/// The institutional orders as operators see them.
#[derive(Debug, serde::Serialize)]
pub struct InstitutionalOrders {
    pub orders: Vec<InstitutionalOrder>,
}

/// One institutional order as operators see it.
pub async fn view(state: &Services, order_id: &str) -> Result<InstitutionalOrder, LifecycleError> {
    let rows = listing(state, Some(order_id)).await?;
    rows.into_iter()
        .next()
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.institutional.no_such_institutional_order")))
}

/// The institutional orders, late ones first, then by due date, then the newest awaiting documents.
pub async fn list(state: &Services) -> Result<InstitutionalOrders, LifecycleError> {
    let mut orders = listing(state, None).await?;
    orders.sort_by_key(|o| (!o.late, o.due_by_unix.unwrap_or(i64::MAX), -o.created_at_unix));
    Ok(InstitutionalOrders { orders })
}

async fn listing(state: &Services, one: Option<&str>) -> Result<Vec<InstitutionalOrder>, LifecycleError> {
    let now = state.clock.now();
    let mut out = Vec::new();
    for r in db::institutional::lines(&state.db, one).await? {
        let order_state = orders::stored_state(&r.state)?;
        let late = r.due_by.is_some_and(|d| d < now) && order_state == OrderState::Accepted;
        out.push(InstitutionalOrder {
            id: r.id,
            registration_number: r.registration_number,
            state: order_state,
            channel: "institutional",
            package: r.package_id,
            total_ron: crate::billing::format_minor(r.total_ron_bani),
            invoice_number: r.invoice_number,
            due_by: r.due_by.map(rfc3339),
            due_by_unix: r.due_by,
            late,
            payment_due_at: r.payment_due_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            created_at_unix: r.created_at,
            institution: InstitutionView {
                name: r.institution_name,
                tax_id: r.institution_tax_id,
                address: r.institution_address,
                email: r.institution_email,
            },
            procurement_reference: r.procurement_reference,
            cpv: CPV,
            holder: HolderView {
                email: r.email,
                name: format!("{} {}", r.given_name, r.surname),
                account_status: r.account_status,
            },
            identification: IdentificationView {
                method: r.method,
                note: r.note,
                recorded_by: r.recorded_by,
                documents_complete_at: r.documents_complete_at.map(rfc3339),
            },
        });
    }
    Ok(out)
}

pub(super) fn pdf_error(e: OrderError) -> LifecycleError {
    match e {
        OrderError::NotFound => LifecycleError::NotFound(crate::text!("error.order.no_such_order")),
        OrderError::Db(d) => LifecycleError::Db(d),
        OrderError::Invalid(d) => LifecycleError::Invalid(d),
        OrderError::Forbidden(d) => LifecycleError::Forbidden(d),
        OrderError::Conflict(d) => LifecycleError::Conflict(d),
    }
}

/// The proforma (`proforma.pdf`) or the invoice (`invoice.pdf`) behind the institution's link.
pub async fn document_by_link(
    state: &Services,
    token: &str,
    document: &str,
) -> Result<(String, Vec<u8>), LifecycleError> {
    let proforma = match document {
        "proforma.pdf" => true,
        "invoice.pdf" => false,
        _ => {
            return Err(LifecycleError::NotFound(crate::text!(
                "error.institutional.no_such_document"
            )))
        }
    };
    let order_id = db::institutional::order_by_link(&state.db, &tokens::hash(token))
        .await?
        .ok_or_else(|| LifecycleError::NotFound(crate::text!("error.institutional.link_not_valid")))?;
    orders::order_pdf(&state.billing(), &order_id, None, proforma)
        .await
        .map_err(pdf_error)
}

#[cfg(test)]
mod tests {
    use super::{add_working_days, add_working_days_to_date, is_romanian_public_holiday, orthodox_easter};
    use time::macros::date;

    #[test]
    fn working_days_skip_the_weekend() {
        // Friday 2026-11-06 10:00 UTC + 5 working days = Friday 2026-11-13 10:00 UTC.
        let friday = 1_795_773_600 - 21 * 86_400;
        assert_eq!(add_working_days(friday, 5), friday + 7 * 86_400);
        // Monday + 5 = the next Monday; Saturday + 1 = Monday.
        assert_eq!(add_working_days(friday + 3 * 86_400, 5), friday + 10 * 86_400);
        assert_eq!(add_working_days(friday + 86_400, 1), friday + 3 * 86_400);
        assert_eq!(add_working_days(friday, 0), friday);
    }

    #[test]
    fn orthodox_easter_of_known_years() {
        for (year, easter) in [
            (2024, date!(2024 - 05 - 05)),
            (2025, date!(2025 - 04 - 20)),
            (2026, date!(2026 - 04 - 12)),
            (2027, date!(2027 - 05 - 02)),
            (2028, date!(2028 - 04 - 16)),
            (2023, date!(2023 - 04 - 16)),
            (2021, date!(2021 - 05 - 02)),
            (2010, date!(2010 - 04 - 04)),
        ] {
            assert_eq!(orthodox_easter(year), Some(easter), "{year}");
        }
        assert_eq!(orthodox_easter(1899), None);
        assert_eq!(orthodox_easter(2100), None);
    }

    #[test]
    fn romanian_public_holidays() {
        for d in [
            date!(2026 - 01 - 01),
            date!(2026 - 01 - 02),
            date!(2026 - 01 - 06),
            date!(2026 - 01 - 07),
            date!(2026 - 01 - 24),
            // Orthodox Good Friday, Easter Sunday and Monday 2026.
            date!(2026 - 04 - 10),
            date!(2026 - 04 - 12),
            date!(2026 - 04 - 13),
            date!(2026 - 05 - 01),
            date!(2026 - 06 - 01),
            // Rusalii 2026: Easter + 49 and 50 days.
            date!(2026 - 05 - 31),
            date!(2026 - 06 - 01),
            date!(2026 - 08 - 15),
            date!(2026 - 11 - 30),
            date!(2026 - 12 - 01),
            date!(2026 - 12 - 25),
            date!(2026 - 12 - 26),
            // 2027: Good Friday 30 April, Easter Monday 3 May, Rusalii 20 and 21 June.
            date!(2027 - 04 - 30),
            date!(2027 - 05 - 03),
            date!(2027 - 06 - 20),
            date!(2027 - 06 - 21),
            // 2024: Easter Monday 6 May, Rusalii Monday 24 June.
            date!(2024 - 05 - 06),
            date!(2024 - 06 - 24),
        ] {
            assert!(is_romanian_public_holiday(d), "{d} is a public holiday");
        }
        for d in [
            date!(2026 - 01 - 03),
            date!(2026 - 01 - 05),
            date!(2026 - 04 - 09),
            date!(2026 - 04 - 14),
            date!(2026 - 06 - 02),
            date!(2026 - 12 - 24),
            date!(2026 - 12 - 27),
            date!(2026 - 12 - 31),
            // Western Easter Monday 2026 (6 April) is not a holiday in Romania.
            date!(2026 - 04 - 06),
        ] {
            assert!(!is_romanian_public_holiday(d), "{d} is not a public holiday");
        }
    }

    #[test]
    fn working_days_skip_the_public_holidays() {
        // Thursday 24 December 2026 + 5: 25 (holiday), 26 (Saturday and holiday), 27 (Sunday) are skipped,
        // 28–31 December count four, 1 January 2027 (Friday, holiday) and the weekend are skipped: Monday 4 January.
        assert_eq!(
            add_working_days_to_date(date!(2026 - 12 - 24), 5),
            date!(2027 - 01 - 04)
        );
        assert_eq!(
            add_working_days_to_date(date!(2026 - 12 - 24), 1),
            date!(2026 - 12 - 28)
        );
        assert_eq!(
            add_working_days_to_date(date!(2026 - 12 - 31), 1),
            date!(2027 - 01 - 04)
        );
        // Thursday 29 April 2027: Good Friday, 1 May (Saturday), Easter Sunday and Monday are skipped.
        assert_eq!(
            add_working_days_to_date(date!(2027 - 04 - 29), 1),
            date!(2027 - 05 - 04)
        );
        assert_eq!(
            add_working_days_to_date(date!(2027 - 04 - 29), 5),
            date!(2027 - 05 - 10)
        );
        // Monday 5 January 2026: 6 and 7 January are holidays.
        assert_eq!(
            add_working_days_to_date(date!(2026 - 01 - 05), 1),
            date!(2026 - 01 - 08)
        );
        assert_eq!(
            add_working_days_to_date(date!(2026 - 12 - 24), 0),
            date!(2026 - 12 - 24)
        );
        // Friday 2026-11-27 + 5: Monday 30 November and Tuesday 1 December are holidays: Tuesday 8 December.
        assert_eq!(
            add_working_days_to_date(date!(2026 - 11 - 27), 5),
            date!(2026 - 12 - 08)
        );
        // Through the timestamps: Thursday 2026-12-24 10:00 UTC + 5 = Monday 2027-01-04 10:00 UTC.
        let start = time::macros::datetime!(2026-12-24 10:00 UTC).unix_timestamp();
        let due = time::macros::datetime!(2027-01-04 10:00 UTC).unix_timestamp();
        assert_eq!(add_working_days(start, 5), due);
    }
}
