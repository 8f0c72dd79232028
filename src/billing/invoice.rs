//! The fiscal documents of an order (product rules §2) as PDFs: the invoice, an institutional order's proforma and
//! the credit note (storno) of a refund. One A4 page, Romanian labels with the English beside them, DejaVu Sans
//! embedded (`crate::legal::font`: every ă â î ș ț survives printing and copying), the seller's registration data,
//! and the amounts in RON at the rate of the payment day with its source and date, the EUR equivalent beside them.
//! [`render`] is a pure function of data the caller read from the database: the same data give the same bytes.
//!
//! The RON amounts are derived once, by [`ron_amounts`], for the PDF and the e-Factura XML alike: each line at the
//! rate, the taxable amount at the rate, and the VAT as what is left of the RON total the holder paid, so that the
//! document adds up to the amount actually paid.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream, StringFormat};

use super::format_minor;
use crate::legal::font::{Embedded, Face, Shaped};

/// One line of the invoice: an item of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: i64,
    pub unit_net_eur_cents: i64,
}

/// An address by its parts, as the e-Factura file needs them (the printed lines are [`Party::address`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostalAddress {
    /// Street, number, building, entrance, apartment.
    pub street: String,
    pub city: String,
    pub postal_code: String,
    /// The county as written (`Cluj`, `București`) or its ISO 3166-2:RO code (`RO-CJ`).
    pub county: String,
    /// The country: an ISO 3166-1 alpha-2 code, or its name as typed (`România`).
    pub country: String,
}

/// The seller or the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Party {
    pub name: String,
    /// CUI/CIF of a company or sole trader (with `RO` when registered for VAT); `None` for a natural person.
    pub tax_id: Option<String>,
    /// The trade register number ("Nr. Reg. Com.", e.g. `J12/1234/2020`) of a company.
    pub trade_register: Option<String>,
    /// The address as printed, one line each.
    pub address: Vec<String>,
    pub postal: PostalAddress,
    pub bank: Option<String>,
    pub iban: Option<String>,
}

/// Which document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Invoice,
    /// An institutional order's proforma (§13): titled proforma, numbered by the order, an amount to pay.
    Proforma,
    /// The credit note (storno) of a refund, reversing the invoice named here in full.
    CreditNote {
        invoice_number: String,
        /// `YYYY-MM-DD`.
        invoice_date: String,
    },
}

/// How the amount was paid (or, for a credit note, paid back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    /// Online, through the card gateway.
    Card,
    /// An institution's bank transfer.
    BankTransfer,
    /// Paid back to the card through the gateway.
    CardRefund,
}

impl PaymentMethod {
    fn label(self) -> &'static str {
        match self {
            PaymentMethod::Card => "Card bancar, plată online / Card, paid online",
            PaymentMethod::BankTransfer => "Ordin de plată / Bank transfer",
            PaymentMethod::CardRefund => "Rambursare pe card / Refund to the card",
        }
    }

    /// UNCL 4461: 48 bank card, 42 payment to a bank account.
    pub fn uncl4461(self) -> &'static str {
        match self {
            PaymentMethod::Card | PaymentMethod::CardRefund => "48",
            PaymentMethod::BankTransfer => "42",
        }
    }
}

/// Everything printed on the document, as stored with the order. Money is in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceData {
    pub kind: Kind,
    /// The document's number, e.g. "PRF-INV-2026-000042" (series "PRF-INV-2026", number "000042"); a credit
    /// note's own; a proforma's is the order's registration number.
    pub invoice_number: String,
    /// `YYYY-MM-DD`, the day in Bucharest.
    pub issued_on: String,
    /// The order's registration number, e.g. "PRF-2026-ABCD-EFGH".
    pub order_number: String,
    pub seller: Party,
    pub buyer: Party,
    pub lines: Vec<InvoiceLine>,
    pub discount_eur_cents: i64,
    /// 2100 = 21 %.
    pub vat_basis_points: i64,
    pub vat_eur_cents: i64,
    pub gross_eur_cents: i64,
    /// RON per EUR × 10 000: 5.0377 is 50377.
    pub ron_per_eur_1e4: i64,
    /// `YYYY-MM-DD` of the central bank's rate; anything else (the configured rate, stored as `fallback`) is
    /// printed as the rate used on the day of issue.
    pub rate_date: String,
    /// What was paid, in bani.
    pub total_ron_bani: i64,
    pub payment_method: PaymentMethod,
    /// The payment gateway and its event id, or the refund's reference (empty: no payment yet, left out).
    pub payment_reference: String,
    /// An invoice paid after issuance (institutional orders): its due date, `YYYY-MM-DD`.
    pub due_on: Option<String>,
    /// Lines printed under the totals (the procurement reference, the CPV code, instructions).
    pub notes: Vec<String>,
}

impl InvoiceData {
    /// The series and the number within it: "PRF-INV-2026-000042" is ("PRF-INV-2026", "000042").
    pub fn series_and_number(&self) -> (&str, &str) {
        self.invoice_number
            .rsplit_once('-')
            .unwrap_or(("", self.invoice_number.as_str()))
    }

    /// The central bank's date of the rate, when the rate is the central bank's.
    pub fn bnr_rate_date(&self) -> Option<&str> {
        is_iso_date(&self.rate_date).then_some(self.rate_date.as_str())
    }
}

/// The document's amounts in RON (bani), all non-negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RonAmounts {
    /// Each line's unit price at the rate.
    pub unit_prices: Vec<i64>,
    /// Each line's amount (quantity × unit price).
    pub lines: Vec<i64>,
    /// The sum of the lines.
    pub net: i64,
    pub discount: i64,
    /// Net minus discount: the VAT's base.
    pub taxable: i64,
    pub vat: i64,
    /// Taxable plus VAT: the amount paid.
    pub total: i64,
}

/// Why a document could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error("the invoice has no lines")]
    NoLines,
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error(
        "the amounts do not add up: net {net} - discount {discount} + VAT {vat} is not the gross {gross} (euro cents)"
    )]
    Totals {
        net: i64,
        discount: i64,
        vat: i64,
        gross: i64,
    },
    #[error("the invoice does not fit on one page (too many lines or address lines)")]
    DoesNotFitOnePage,
    #[error("cannot build the invoice PDF: {0}")]
    Pdf(#[from] lopdf::Error),
    #[error("cannot write the invoice PDF: {0}")]
    Io(#[from] std::io::Error),
}

/// Amounts above this (100 million EUR or RON, in minor units) are refused: they would not fit their column.
const MAX_AMOUNT_MINOR: i64 = 9_999_999_999;
/// The largest quantity of one line, for the same reason.
const MAX_QUANTITY: i64 = 999_999;

// A4 in points, and the printable area.
const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
/// The body stops above this; the footer sits below it.
const BOTTOM: f32 = 80.0;
const FOOTER_Y: f32 = 52.0;

// Columns: the two party blocks, and the lines table (description left-aligned, numbers right-aligned).
const PARTY_WIDTH: f32 = 240.0;
const BUYER_X: f32 = 305.0;
const DESCRIPTION_WIDTH: f32 = 215.0;
const QTY_RIGHT: f32 = 310.0;
const UNIT_RIGHT: f32 = 420.0;
const SUMMARY_LABEL_X: f32 = 250.0;
const SUMMARY_LABEL_WIDTH: f32 = 205.0;

const BODY_SIZE: f32 = 9.0;
const SMALL_SIZE: f32 = 7.0;
const LINE: f32 = 13.0;

/// The RON amounts of a document (see the module's note on rounding); `None` when they cannot add up (a total
/// below its taxable amount).
pub fn ron_amounts(data: &InvoiceData) -> Option<RonAmounts> {
    let rate = data.ron_per_eur_1e4;
    let at_rate = |eur_cents: i64| super::mul_div_round(eur_cents, rate, 10_000);
    let unit_prices: Vec<i64> = data.lines.iter().map(|l| at_rate(l.unit_net_eur_cents)).collect();
    let lines: Vec<i64> = data
        .lines
        .iter()
        .zip(&unit_prices)
        .map(|(l, unit)| l.quantity * unit)
        .collect();
    let net: i64 = lines.iter().sum();
    let taxable = if data.discount_eur_cents == 0 {
        net
    } else {
        let net_eur: i64 = data.lines.iter().map(|l| l.quantity * l.unit_net_eur_cents).sum();
        at_rate(net_eur - data.discount_eur_cents).min(net)
    };
    let total = data.total_ron_bani;
    (total >= taxable).then(|| RonAmounts {
        unit_prices,
        lines,
        net,
        discount: net - taxable,
        taxable,
        vat: total - taxable,
        total,
    })
}

/// Renders the document as a one-page PDF.
pub fn render(data: &InvoiceData) -> Result<Vec<u8>, InvoiceError> {
    let ron = check(data)?;
    let page = layout(data, &ron)?;

    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let [regular_id, bold_id] = page.fonts.write(&mut doc);
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { resource(Face::Regular) => regular_id, resource(Face::Bold) => bold_id },
    });
    let content = Content {
        operations: page.operations,
    }
    .encode()?;
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), PAGE_WIDTH.into(), PAGE_HEIGHT.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    let title = match data.kind {
        Kind::Proforma => format!("Factură proformă / Proforma invoice {}", data.order_number),
        Kind::Invoice => format!("Factură / Invoice {}", data.invoice_number),
        Kind::CreditNote { .. } => format!("Factură de stornare / Credit note {}", data.invoice_number),
    };
    let info_id = doc.add_object(dictionary! {
        "Title" => text_string(&title),
        "Producer" => text_string("Parafa"),
    });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set("Info", info_id);
    doc.compress();

    let mut out = Vec::new();
    doc.save_to(&mut out)?;
    Ok(out)
}

/// Refuses data that would print a wrong or garbled document; returns its RON amounts.
fn check(data: &InvoiceData) -> Result<RonAmounts, InvoiceError> {
    if data.lines.is_empty() {
        return Err(InvoiceError::NoLines);
    }
    let mut net: i64 = 0;
    for line in &data.lines {
        in_range("quantity", line.quantity, 1, MAX_QUANTITY)?;
        in_range("unit net price", line.unit_net_eur_cents, 0, MAX_AMOUNT_MINOR)?;
        // Both factors are bounded above, so the product cannot overflow.
        let line_net = in_range(
            "line net amount",
            line.quantity * line.unit_net_eur_cents,
            0,
            MAX_AMOUNT_MINOR,
        )?;
        net = in_range("net total", net.saturating_add(line_net), 0, MAX_AMOUNT_MINOR)?;
    }
    in_range("discount", data.discount_eur_cents, 0, net)?;
    in_range("VAT rate (basis points)", data.vat_basis_points, 0, 10_000)?;
    in_range("VAT", data.vat_eur_cents, 0, MAX_AMOUNT_MINOR)?;
    in_range("gross total", data.gross_eur_cents, 0, MAX_AMOUNT_MINOR)?;
    in_range("exchange rate", data.ron_per_eur_1e4, 1, MAX_AMOUNT_MINOR)?;
    in_range("total in RON", data.total_ron_bani, 0, MAX_AMOUNT_MINOR)?;
    if net - data.discount_eur_cents + data.vat_eur_cents != data.gross_eur_cents {
        return Err(InvoiceError::Totals {
            net,
            discount: data.discount_eur_cents,
            vat: data.vat_eur_cents,
            gross: data.gross_eur_cents,
        });
    }
    let ron = ron_amounts(data).ok_or(InvoiceError::OutOfRange {
        field: "total in RON (below its taxable amount)",
        value: data.total_ron_bani,
        min: 0,
        max: MAX_AMOUNT_MINOR,
    })?;
    in_range("net total in RON", ron.net, 0, MAX_AMOUNT_MINOR)?;
    Ok(ron)
}

fn in_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<i64, InvoiceError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(InvoiceError::OutOfRange { field, value, min, max })
    }
}

/// The page's content: a cursor walks down the page and refuses to pass the bottom margin.
fn layout(data: &InvoiceData, ron: &RonAmounts) -> Result<Page, InvoiceError> {
    let mut page = Page::new();
    let full = RIGHT - LEFT;
    // A credit note reverses the invoice: its quantities and amounts are negative.
    let sign = if matches!(data.kind, Kind::CreditNote { .. }) {
        -1
    } else {
        1
    };
    let money = |minor: i64| signed(sign * minor);

    let title = match data.kind {
        Kind::Proforma => "PROFORMA · Factură proformă / Proforma invoice",
        Kind::Invoice => "FACTURĂ / Invoice",
        Kind::CreditNote { .. } => "FACTURĂ DE STORNARE / Credit note",
    };
    page.text(Face::Bold, 16.0, LEFT, title, full);
    page.down(24.0)?;
    let mut header: Vec<(&str, String)> = Vec::new();
    if data.kind == Kind::Proforma {
        header.push(("Nr. proformă / Proforma no.", data.order_number.clone()));
    } else {
        header.push(("Seria / Series", data.series_and_number().0.to_owned()));
        header.push(("Nr. / No.", data.invoice_number.clone()));
    }
    header.push(("Data emiterii / Date of issue", data.issued_on.clone()));
    header.push(("Nr. comandă / Order no.", data.order_number.clone()));
    if let Some(due) = &data.due_on {
        header.push(("Scadența / Due date", due.clone()));
    }
    if let Kind::CreditNote {
        invoice_number,
        invoice_date,
    } = &data.kind
    {
        let (series, number) = invoice_number.rsplit_once('-').unwrap_or(("", invoice_number.as_str()));
        header.push((
            "Stornează factura / Reverses invoice",
            format!("seria {series} nr. {number} din {invoice_date} ({invoice_number})"),
        ));
    }
    for (label, value) in header {
        page.text(Face::Regular, BODY_SIZE, LEFT, label, 170.0);
        page.text(Face::Bold, BODY_SIZE, LEFT + 175.0, &value, full - 175.0);
        page.down(LINE)?;
    }

    page.down(LINE)?;
    let top = page.y;
    let seller_bottom = page.party(LEFT, "Furnizor / Seller", &data.seller)?;
    page.y = top;
    let buyer_bottom = page.party(BUYER_X, "Cumpărător / Buyer", &data.buyer)?;
    page.y = seller_bottom.min(buyer_bottom);

    page.down(LINE)?;
    page.text(Face::Bold, BODY_SIZE, LEFT, "Denumire", DESCRIPTION_WIDTH);
    page.number(Face::Bold, BODY_SIZE, QTY_RIGHT, "Cant.");
    page.number(Face::Bold, BODY_SIZE, UNIT_RIGHT, "Preț unitar RON");
    page.number(Face::Bold, BODY_SIZE, RIGHT, "Valoare RON");
    page.down(10.0)?;
    page.text(Face::Regular, SMALL_SIZE, LEFT, "Description", DESCRIPTION_WIDTH);
    page.number(Face::Regular, SMALL_SIZE, QTY_RIGHT, "Qty");
    page.number(Face::Regular, SMALL_SIZE, UNIT_RIGHT, "Unit price RON");
    page.number(Face::Regular, SMALL_SIZE, RIGHT, "Amount RON");
    page.rule(page.y - 4.0);
    page.down(LINE + 4.0)?;
    for (i, line) in data.lines.iter().enumerate() {
        page.text(Face::Regular, BODY_SIZE, LEFT, &line.description, DESCRIPTION_WIDTH);
        page.number(Face::Regular, BODY_SIZE, QTY_RIGHT, &(sign * line.quantity).to_string());
        page.number(Face::Regular, BODY_SIZE, UNIT_RIGHT, &format_minor(ron.unit_prices[i]));
        page.number(Face::Regular, BODY_SIZE, RIGHT, &money(ron.lines[i]));
        page.down(10.0)?;
        page.text(
            Face::Regular,
            SMALL_SIZE,
            LEFT,
            &format!(
                "preț unitar / unit price {} EUR fără TVA / net",
                format_minor(line.unit_net_eur_cents)
            ),
            DESCRIPTION_WIDTH,
        );
        page.down(LINE)?;
    }
    page.rule(page.y + LINE - 4.0);
    page.down(6.0)?;

    let mut summary = vec![(
        Face::Regular,
        "Total fără TVA / Net total RON".to_owned(),
        money(ron.net),
    )];
    if ron.discount > 0 {
        summary.push((
            Face::Regular,
            "Reducere / Discount RON".to_owned(),
            money(-ron.discount),
        ));
        summary.push((
            Face::Regular,
            "Bază de impozitare / Taxable amount RON".to_owned(),
            money(ron.taxable),
        ));
    }
    let vat = percent(data.vat_basis_points);
    summary.push((Face::Regular, format!("TVA / VAT {vat} RON"), money(ron.vat)));
    summary.push((
        Face::Bold,
        match (&data.kind, &data.due_on) {
            (Kind::Proforma, _) => "Total de plată / Total to pay RON",
            (Kind::CreditNote { .. }, _) => "Total stornat / Total reversed RON",
            (Kind::Invoice, Some(_)) => "Total de plată / Total due RON",
            (Kind::Invoice, None) => "Total plătit / Total paid RON",
        }
        .to_owned(),
        money(ron.total),
    ));
    for (face, label, value) in summary {
        page.text(face, BODY_SIZE, SUMMARY_LABEL_X, &label, SUMMARY_LABEL_WIDTH);
        page.number(face, BODY_SIZE, RIGHT, &value);
        page.down(LINE)?;
    }

    page.down(4.0)?;
    let rate = rate(data.ron_per_eur_1e4);
    let rate_line = match data.bnr_rate_date() {
        Some(day) => format!("Curs BNR din {day} / NBR reference rate of {day}: 1 EUR = {rate} RON"),
        None => format!(
            "Curs de schimb utilizat la {d} / Exchange rate used on {d}: 1 EUR = {rate} RON",
            d = data.issued_on
        ),
    };
    page.text(Face::Regular, BODY_SIZE, LEFT, &rate_line, full);
    page.down(LINE)?;
    let discount = if data.discount_eur_cents > 0 {
        format!(", reducere / discount {} EUR", money(-data.discount_eur_cents))
    } else {
        String::new()
    };
    page.text(
        Face::Regular,
        BODY_SIZE,
        LEFT,
        &format!(
            "Echivalent / Equivalent: fără TVA / net {} EUR{discount}, TVA / VAT {vat} {} EUR, total {} EUR",
            money(data.lines.iter().map(|l| l.quantity * l.unit_net_eur_cents).sum()),
            money(data.vat_eur_cents),
            money(data.gross_eur_cents),
        ),
        full,
    );
    page.down(LINE + 4.0)?;
    page.text(
        Face::Regular,
        BODY_SIZE,
        LEFT,
        &format!("Modalitate de plată / Payment method: {}", data.payment_method.label()),
        full,
    );
    if !data.payment_reference.is_empty() {
        page.down(LINE)?;
        let label = if data.payment_method == PaymentMethod::CardRefund {
            "Referința rambursării / Refund reference"
        } else {
            "Referința plății / Payment reference"
        };
        page.text(
            Face::Regular,
            BODY_SIZE,
            LEFT,
            &format!("{label}: {}", data.payment_reference),
            full,
        );
    }
    for note in &data.notes {
        page.down(LINE)?;
        page.text(Face::Regular, BODY_SIZE, LEFT, note, full);
    }

    page.y = FOOTER_Y;
    let footer = match data.kind {
        Kind::Proforma => {
            "Proforma nu este factură fiscală. / A proforma is not a fiscal invoice. Document generat automat."
                .to_owned()
        }
        _ => "Factura circulă fără semnătură și ștampilă (art. 319 alin. (29) din Legea nr. 227/2015 privind Codul \
              fiscal). / Valid without signature or stamp."
            .to_owned(),
    };
    page.text(Face::Regular, SMALL_SIZE, LEFT, &footer, full);
    page.y -= 10.0;
    let seller = &data.seller;
    let identity = [
        Some(seller.name.clone()),
        seller.tax_id.as_ref().map(|t| format!("CUI/CIF {t}")),
        seller.trade_register.as_ref().map(|t| format!("Nr. Reg. Com. {t}")),
        Some(seller.address.join(", ")),
    ];
    let identity: Vec<String> = identity.into_iter().flatten().filter(|s| !s.is_empty()).collect();
    page.text(Face::Regular, SMALL_SIZE, LEFT, &identity.join(" · "), full);
    Ok(page)
}

/// Minor units with a minus sign when negative: `-233.80`.
fn signed(minor: i64) -> String {
    if minor < 0 {
        format!("-{}", format_minor(-minor))
    } else {
        format_minor(minor)
    }
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// The calendar day of a Unix time in Bucharest (EET, and EEST from the last Sunday of March to the last Sunday of
/// October, 01:00 UTC both), as `YYYY-MM-DD`: the day an invoice is dated.
pub fn bucharest_day(unix: i64) -> String {
    use time::{Date, Month, OffsetDateTime, Weekday};
    let Ok(utc) = OffsetDateTime::from_unix_timestamp(unix) else {
        return String::new();
    };
    let last_sunday = |month: Month, days: u8| {
        Date::from_calendar_date(utc.year(), month, days)
            .map(|mut d| {
                while d.weekday() != Weekday::Sunday {
                    d = d.previous_day().unwrap_or(d);
                }
                d.midnight().assume_utc().unix_timestamp() + 3600
            })
            .unwrap_or(0)
    };
    let summer = (last_sunday(Month::March, 31)..last_sunday(Month::October, 31)).contains(&unix);
    let local = utc + time::Duration::hours(if summer { 3 } else { 2 });
    let d = local.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Basis points as a percentage: 1900 → "19%", 2150 → "21.5%".
fn percent(basis_points: i64) -> String {
    let (whole, fraction) = (basis_points / 100, basis_points % 100);
    match fraction {
        0 => format!("{whole}%"),
        f if f % 10 == 0 => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    }
}

/// A rate × 10 000 as `5.0377`.
fn rate(ron_per_eur_1e4: i64) -> String {
    format!("{}.{:04}", ron_per_eur_1e4 / 10_000, ron_per_eur_1e4 % 10_000)
}

/// A PDF text string (document Info) as UTF-16BE with its byte order mark, so it keeps every character.
fn text_string(text: &str) -> Object {
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    Object::String(bytes, StringFormat::Hexadecimal)
}

fn resource(face: Face) -> &'static str {
    match face {
        Face::Regular => "F1",
        Face::Bold => "F2",
    }
}

/// Operations of the page, the fonts' glyphs it used, and the baseline of the next line of text.
struct Page {
    operations: Vec<Operation>,
    fonts: Embedded,
    y: f32,
}

impl Page {
    fn new() -> Page {
        Page {
            operations: Vec::new(),
            fonts: Embedded::default(),
            y: 790.0,
        }
    }

    /// Moves down by `dy`; fails once the cursor is below the bottom margin.
    fn down(&mut self, dy: f32) -> Result<(), InvoiceError> {
        self.y -= dy;
        if self.y < BOTTOM {
            return Err(InvoiceError::DoesNotFitOnePage);
        }
        Ok(())
    }

    /// Left-aligned text at `x` on the current line, cut to `max_width` points.
    fn text(&mut self, face: Face, size: f32, x: f32, text: &str, max_width: f32) {
        let shaped = fit(face, size, text, max_width);
        self.show(face, size, x, shaped);
    }

    /// Right-aligned text ending at `right` on the current line (numbers and column headers, which are short).
    fn number(&mut self, face: Face, size: f32, right: f32, text: &str) {
        let shaped = Shaped::new(face, text);
        let x = right - shaped.width(face, size);
        self.show(face, size, x, shaped);
    }

    fn show(&mut self, face: Face, size: f32, x: f32, shaped: Shaped) {
        self.fonts.record(face, &shaped);
        self.operations.extend([
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec![resource(face).into(), size.into()]),
            Operation::new("Td", vec![x.into(), self.y.into()]),
            Operation::new("Tj", vec![shaped.operand()]),
            Operation::new("ET", vec![]),
        ]);
    }

    /// A thin horizontal rule across the body at height `y`.
    fn rule(&mut self, y: f32) {
        self.operations.extend([
            Operation::new("w", vec![0.5.into()]),
            Operation::new("m", vec![LEFT.into(), y.into()]),
            Operation::new("l", vec![RIGHT.into(), y.into()]),
            Operation::new("S", vec![]),
        ]);
    }

    /// A party block at `x`: heading, name, its registration data when present, address lines, bank; returns the
    /// cursor below it.
    fn party(&mut self, x: f32, heading: &str, party: &Party) -> Result<f32, InvoiceError> {
        self.text(Face::Bold, BODY_SIZE, x, heading, PARTY_WIDTH);
        self.down(LINE)?;
        self.text(Face::Bold, BODY_SIZE, x, &party.name, PARTY_WIDTH);
        self.down(LINE)?;
        let mut lines = Vec::new();
        if let Some(tax_id) = &party.tax_id {
            lines.push(format!("CUI/CIF / Tax id: {tax_id}"));
        }
        if let Some(register) = &party.trade_register {
            lines.push(format!("Nr. Reg. Com. / Trade register: {register}"));
        }
        lines.extend(party.address.iter().cloned());
        if let Some(bank) = &party.bank {
            lines.push(format!("Banca / Bank: {bank}"));
        }
        if let Some(iban) = &party.iban {
            lines.push(format!("IBAN: {iban}"));
        }
        for line in lines {
            self.text(Face::Regular, BODY_SIZE, x, &line, PARTY_WIDTH);
            self.down(LINE)?;
        }
        Ok(self.y)
    }
}

/// Cuts text to `max_width` points, ending it with "..." when something was cut.
fn fit(face: Face, size: f32, text: &str, max_width: f32) -> Shaped {
    let shaped = Shaped::new(face, text);
    if shaped.width(face, size) <= max_width {
        return shaped;
    }
    let dots = Shaped::new(face, "...");
    let room = max_width - dots.width(face, size);
    let mut width = 0.0;
    let keep = shaped
        .glyphs
        .iter()
        .take_while(|&&(g, _)| {
            width += face.advance(g) * size / 1000.0;
            width <= room
        })
        .count();
    let mut glyphs = shaped.glyphs[..keep].to_vec();
    glyphs.extend(dots.glyphs);
    Shaped { glyphs }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::Command;

    use super::*;

    pub(crate) fn guide_example() -> InvoiceData {
        InvoiceData {
            kind: Kind::Invoice,
            invoice_number: "PRF-INV-2026-000042".into(),
            issued_on: "2026-11-25".into(),
            order_number: "PRF-2026-ABCD-EFGH".into(),
            seller: Party {
                name: "Parafa Servicii de Încredere SRL".into(),
                tax_id: Some("RO40000001".into()),
                trade_register: Some("J40/1234/2020".into()),
                address: vec![
                    "Strada Aviatorilor 1".into(),
                    "București, Sector 1".into(),
                    "România".into(),
                ],
                postal: PostalAddress {
                    street: "Strada Aviatorilor 1".into(),
                    city: "Sector 1".into(),
                    postal_code: "011851".into(),
                    county: "București".into(),
                    country: "RO".into(),
                },
                bank: Some("Banca Transilvania".into()),
                iban: Some("RO49AAAA1B31007593840000".into()),
            },
            buyer: Party {
                name: "Ștefan Pătrașcu".into(),
                tax_id: None,
                trade_register: None,
                address: vec![
                    "Str. Mărășești nr. 7, bl. A, sc. 2, ap. 14".into(),
                    "700001 Iași, județul Iași".into(),
                    "România".into(),
                ],
                postal: PostalAddress {
                    street: "Str. Mărășești nr. 7, bl. A, sc. 2, ap. 14".into(),
                    city: "Iași".into(),
                    postal_code: "700001".into(),
                    county: "Iași".into(),
                    country: "RO".into(),
                },
                bank: None,
                iban: None,
            },
            lines: vec![InvoiceLine {
                description: "Pachet 1: certificat calificat, 1 an, 200 tranzacții".into(),
                quantity: 1,
                unit_net_eur_cents: 3900,
            }],
            discount_eur_cents: 0,
            vat_basis_points: 1900,
            vat_eur_cents: 741,
            gross_eur_cents: 4641,
            ron_per_eur_1e4: 50377,
            rate_date: "2025-03-14".into(),
            total_ron_bani: 23380,
            payment_method: PaymentMethod::Card,
            payment_reference: "sandbox:evt_01JCK3W9".into(),
            due_on: None,
            notes: Vec::new(),
        }
    }

    fn pdf_file(pdf: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".pdf").tempfile().expect("temp file");
        file.write_all(pdf).expect("write the PDF");
        file
    }

    /// Runs a poppler tool on the PDF; a missing tool fails the test rather than skipping the check.
    fn poppler(tool: &str, options: &[&str], pdf: &[u8], after_file: &[&str]) -> String {
        let file = pdf_file(pdf);
        let output = Command::new(tool)
            .args(options)
            .arg(file.path())
            .args(after_file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{tool}` ({e}): install poppler-utils (make deps-test)"));
        assert!(
            output.status.success(),
            "{tool} rejected the invoice PDF: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("poppler prints UTF-8")
    }

    fn pdftotext(pdf: &[u8]) -> String {
        poppler("pdftotext", &["-layout"], pdf, &["-"])
    }

    fn pdfinfo(pdf: &[u8]) -> String {
        poppler("pdfinfo", &[], pdf, &[])
    }

    fn info_field<'a>(info: &'a str, key: &str) -> &'a str {
        info.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
            .map(str::trim)
            .unwrap_or_else(|| panic!("pdfinfo printed no {key}:\n{info}"))
    }

    #[test]
    fn the_guides_example_shows_romanian_labels_diacritics_and_ron_totals_to_pdftotext() {
        let pdf = render(&guide_example()).unwrap();
        let text = pdftotext(&pdf);
        for expected in [
            "FACTURĂ / Invoice",
            "Seria / Series",
            "PRF-INV-2026",
            "Nr. / No.",
            "PRF-INV-2026-000042",
            "2026-11-25",
            "PRF-2026-ABCD-EFGH",
            "Furnizor / Seller",
            "Cumpărător / Buyer",
            "Parafa Servicii de Încredere SRL",
            "CUI/CIF / Tax id: RO40000001",
            "Nr. Reg. Com. / Trade register: J40/1234/2020",
            "IBAN: RO49AAAA1B31007593840000",
            "București, Sector 1",
            "Ștefan Pătrașcu",
            "Str. Mărășești nr. 7, bl. A, sc. 2, ap. 14",
            "700001 Iași, județul Iași",
            "Pachet 1: certificat calificat, 1 an, 200 tranzacții",
            "196.47",
            "TVA / VAT 19% RON",
            "37.33",
            "233.80",
            "Curs BNR din 2025-03-14",
            "1 EUR = 5.0377 RON",
            "46.41 EUR",
            "sandbox:evt_01JCK3W9",
            "Card bancar, plată online",
            "Legea nr. 227/2015",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
        assert!(
            !text.contains("Reducere"),
            "no discount line without a discount:\n{text}"
        );
        assert!(!text.contains("fallback"), "{text}");
        // The natural person has no tax id line: only the seller's.
        assert_eq!(text.matches("Tax id:").count(), 1, "{text}");
    }

    #[test]
    fn the_configured_rate_is_printed_as_the_rate_used_on_the_day_of_issue() {
        let mut data = guide_example();
        data.rate_date = "fallback".into();
        let text = pdftotext(&render(&data).unwrap());
        assert!(
            text.contains(
                "Curs de schimb utilizat la 2026-11-25 / Exchange rate used on 2026-11-25: 1 EUR = 5.0377 RON"
            ),
            "{text}"
        );
        assert!(!text.contains("fallback") && !text.contains("BNR"), "{text}");
    }

    #[test]
    fn a_credit_note_reverses_its_invoice_with_negative_amounts() {
        let mut data = guide_example();
        data.kind = Kind::CreditNote {
            invoice_number: "PRF-INV-2026-000042".into(),
            invoice_date: "2026-11-25".into(),
        };
        data.invoice_number = "PRF-CN-2026-000007".into();
        data.issued_on = "2026-12-02".into();
        data.payment_method = PaymentMethod::CardRefund;
        data.payment_reference = "sandbox-refund-x".into();
        let pdf = render(&data).unwrap();
        let text = pdftotext(&pdf);
        for expected in [
            "FACTURĂ DE STORNARE / Credit note",
            "PRF-CN-2026-000007",
            "Stornează factura / Reverses invoice",
            "seria PRF-INV-2026 nr. 000042 din 2026-11-25",
            "-196.47",
            "-37.33",
            "-233.80",
            "Total stornat",
            "Referința rambursării / Refund reference: sandbox-refund-x",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
        assert_eq!(
            info_field(&pdfinfo(&pdf), "Title"),
            "Factură de stornare / Credit note PRF-CN-2026-000007"
        );
    }

    #[test]
    fn pdfinfo_reads_one_a4_page_with_title_producer_and_embedded_fonts() {
        let pdf = render(&guide_example()).unwrap();
        let info = pdfinfo(&pdf);
        assert_eq!(info_field(&info, "Pages"), "1", "{info}");
        assert!(info_field(&info, "Page size").contains("(A4)"), "{info}");
        assert_eq!(info_field(&info, "Producer"), "Parafa", "{info}");
        assert_eq!(
            info_field(&info, "Title"),
            "Factură / Invoice PRF-INV-2026-000042",
            "{info}"
        );
        let fonts = poppler("pdffonts", &[], &pdf, &[]);
        let embedded: Vec<&str> = fonts.lines().filter(|l| l.starts_with("DejaVuSans")).collect();
        assert_eq!(embedded.len(), 2, "{fonts}");
        for line in embedded {
            assert!(line.contains("CID TrueType") && line.contains(" yes "), "{fonts}");
        }
    }

    #[test]
    fn a_company_buyer_and_a_discount_show_in_ron() {
        let mut data = guide_example();
        data.buyer = Party {
            name: "Îngrijire Müller & Frères SRL".into(),
            tax_id: Some("RO12345678".into()),
            trade_register: Some("J08/55/2019".into()),
            address: vec!["Bd. Ştefan cel Mare 3, Braşov".into()],
            ..Party::default()
        };
        data.discount_eur_cents = 390;
        data.vat_eur_cents = 667;
        data.gross_eur_cents = 3900 - 390 + 667;
        data.total_ron_bani = 21042;
        let ron = ron_amounts(&data).unwrap();
        // 39.00 and 35.10 EUR at 5.0377: 196.47 and 176.82 RON; the VAT is the rest of the 210.42 paid.
        assert_eq!(
            (ron.net, ron.discount, ron.taxable, ron.vat, ron.total),
            (19647, 1965, 17682, 3360, 21042)
        );
        let text = pdftotext(&render(&data).unwrap());
        for expected in [
            "CUI/CIF / Tax id: RO12345678",
            "Îngrijire Müller & Frères SRL",
            "Bd. Ştefan cel Mare 3, Braşov",
            "Reducere / Discount RON",
            "-19.65",
            "176.82",
            "33.60",
            "210.42",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
    }

    #[test]
    fn parentheses_and_backslashes_do_not_break_the_pdf() {
        let mut data = guide_example();
        data.lines[0].description = r"Package (2 years) \ promo :) ( C:\dir\".into();
        data.buyer.name = r"A\B (C))".into();
        data.payment_reference = r"sandbox (evt\42".into();
        let pdf = render(&data).unwrap();
        let text = pdftotext(&pdf);
        for expected in [
            r"Package (2 years) \ promo :) ( C:\dir\",
            r"A\B (C))",
            r"sandbox (evt\42",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
        assert!(text.contains("233.80"), "{text}");
        assert_eq!(info_field(&pdfinfo(&pdf), "Pages"), "1");
    }

    #[test]
    fn a_long_description_is_cut_to_its_column() {
        let mut data = guide_example();
        data.lines[0].description = "Qualified certificate with a very long description ".repeat(8);
        let text = pdftotext(&render(&data).unwrap());
        let row = text
            .lines()
            .find(|l| l.contains("Qualified certificate"))
            .unwrap_or_else(|| panic!("no row:\n{text}"));
        assert!(row.contains("..."), "{row}");
        assert!(
            row.trim_end().ends_with("196.47"),
            "the amounts stay in their columns: {row}"
        );
        let cut = fit(Face::Regular, BODY_SIZE, &data.lines[0].description, DESCRIPTION_WIDTH);
        assert!(cut.width(Face::Regular, BODY_SIZE) <= DESCRIPTION_WIDTH);
    }

    #[test]
    fn documents_are_dated_by_the_day_in_bucharest() {
        // 2026-11-24 22:30 UTC is already the 25th in Bucharest (UTC+2); 2026-07-31 21:30 UTC is 1 August (UTC+3).
        assert_eq!(bucharest_day(1_795_559_400), "2026-11-25");
        assert_eq!(bucharest_day(1_785_533_400), "2026-08-01");
        assert_eq!(bucharest_day(1_785_529_800), "2026-07-31");
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render(&guide_example()).unwrap(), render(&guide_example()).unwrap());
    }

    #[test]
    fn amounts_that_do_not_add_up_are_refused() {
        let mut data = guide_example();
        data.gross_eur_cents = 4640;
        assert!(matches!(render(&data), Err(InvoiceError::Totals { gross: 4640, .. })));
        let mut data = guide_example();
        data.lines[0].quantity = 0;
        assert!(matches!(
            render(&data),
            Err(InvoiceError::OutOfRange { field: "quantity", .. })
        ));
        let mut data = guide_example();
        data.lines.clear();
        assert!(matches!(render(&data), Err(InvoiceError::NoLines)));
    }

    #[test]
    fn an_invoice_longer_than_one_page_is_refused() {
        let mut data = guide_example();
        data.lines = vec![data.lines[0].clone(); 60];
        data.vat_eur_cents = 60 * 741;
        data.gross_eur_cents = 60 * 4641;
        data.total_ron_bani = 60 * 23380;
        assert!(matches!(render(&data), Err(InvoiceError::DoesNotFitOnePage)));
        let mut data = guide_example();
        data.buyer.address = vec!["line".into(); 100];
        assert!(matches!(render(&data), Err(InvoiceError::DoesNotFitOnePage)));
    }
}
