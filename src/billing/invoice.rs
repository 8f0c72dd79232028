//! The invoice PDF of a paid order (product rules §2): one A4 page in the standard Helvetica fonts, rendered from
//! data the caller read from the database. [`render`] is a pure function: the same data gives the same bytes.
//!
//! The fonts are the standard Type1 Helvetica and Helvetica-Bold, not embedded, with WinAnsiEncoding. Romanian
//! â î Â Î exist in WinAnsi; ă ș ț Ă Ș Ț (cedilla forms included) do not and are written as a t s A S T, and any
//! other character outside WinAnsi as a close ASCII letter or `?`.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream, StringFormat};

use super::format_minor;

/// One line of the invoice: an item of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: i64,
    pub unit_net_eur_cents: i64,
}

/// The seller or the buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    /// CUI/CIF of a company or sole trader; `None` for a natural person.
    pub tax_id: Option<String>,
    pub address: Vec<String>,
}

/// Everything printed on the invoice, as stored with the paid order. Money is in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceData {
    /// e.g. "PRF-INV-2026-000042".
    pub invoice_number: String,
    /// e.g. "2026-11-25".
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
    pub rate_date: String,
    /// What was paid, in bani.
    pub total_ron_bani: i64,
    /// The payment gateway and its event id (empty: no payment yet, the line is left out).
    pub payment_reference: String,
    /// A proforma (institutional orders, §13): titled PROFORMA, no invoice number, an amount to pay.
    pub proforma: bool,
    /// An invoice paid after issuance (institutional orders): its due date, e.g. "2026-12-25".
    pub due_on: Option<String>,
    /// Lines printed under the totals (the procurement reference, the CPV code, instructions).
    pub notes: Vec<String>,
}

/// Why an invoice could not be rendered.
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
const BOTTOM: f32 = 70.0;
const FOOTER_Y: f32 = 40.0;

// Columns: the two party blocks, and the lines table (description left-aligned, numbers right-aligned).
const PARTY_WIDTH: f32 = 235.0;
const BUYER_X: f32 = 310.0;
const DESCRIPTION_WIDTH: f32 = 250.0;
const QTY_RIGHT: f32 = 350.0;
const UNIT_RIGHT: f32 = 450.0;
const SUMMARY_LABEL_X: f32 = 300.0;
const SUMMARY_LABEL_WIDTH: f32 = 150.0;

const BODY_SIZE: f32 = 10.0;
const SMALL_SIZE: f32 = 8.0;
const LINE: f32 = 14.0;

/// Renders the invoice as a one-page PDF.
pub fn render(data: &InvoiceData) -> Result<Vec<u8>, InvoiceError> {
    let net_total = check(data)?;
    let operations = layout(data, net_total)?;

    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let regular_id = doc.add_object(font_dictionary("Helvetica"));
    let bold_id = doc.add_object(font_dictionary("Helvetica-Bold"));
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { Font::Regular.resource() => regular_id, Font::Bold.resource() => bold_id },
    });
    let content = Content { operations }.encode()?;
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
    let info_id = doc.add_object(dictionary! {
        "Title" => text_string(&if data.proforma {
            format!("Proformă / Proforma {}", data.order_number)
        } else {
            format!("Factură / Invoice {}", data.invoice_number)
        }),
        "Producer" => text_string("Parafa"),
    });
    doc.trailer.set("Root", catalog_id);
    doc.trailer.set("Info", info_id);
    doc.compress();

    let mut out = Vec::new();
    doc.save_to(&mut out)?;
    Ok(out)
}

/// Refuses data that would print a wrong or garbled invoice; returns the net total of the lines.
fn check(data: &InvoiceData) -> Result<i64, InvoiceError> {
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
    Ok(net)
}

fn in_range(field: &'static str, value: i64, min: i64, max: i64) -> Result<i64, InvoiceError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(InvoiceError::OutOfRange { field, value, min, max })
    }
}

/// The page's content: a cursor walks down the page and refuses to pass the bottom margin.
fn layout(data: &InvoiceData, net_total: i64) -> Result<Vec<Operation>, InvoiceError> {
    let mut page = Page::new();
    let full = RIGHT - LEFT;

    let title = if data.proforma {
        "PROFORMA - Factură proformă / Proforma invoice"
    } else {
        "Factură / Invoice"
    };
    page.text(Font::Bold, 18.0, LEFT, title, full);
    page.down(26.0)?;
    let mut header = Vec::new();
    if !data.proforma {
        header.push(("Invoice number", &data.invoice_number));
    }
    header.push(("Date of issue", &data.issued_on));
    header.push(("Order registration number", &data.order_number));
    if let Some(due) = &data.due_on {
        header.push(("Due date", due));
    }
    for (label, value) in header {
        page.text(Font::Regular, BODY_SIZE, LEFT, label, 140.0);
        page.text(Font::Bold, BODY_SIZE, LEFT + 150.0, value, full - 150.0);
        page.down(LINE)?;
    }

    page.down(LINE)?;
    let top = page.y;
    let seller_bottom = page.party(LEFT, "Seller", &data.seller)?;
    page.y = top;
    let buyer_bottom = page.party(BUYER_X, "Buyer", &data.buyer)?;
    page.y = seller_bottom.min(buyer_bottom);

    page.down(LINE)?;
    page.text(Font::Bold, BODY_SIZE, LEFT, "Description", DESCRIPTION_WIDTH);
    page.number(Font::Bold, QTY_RIGHT, "Qty");
    page.number(Font::Bold, UNIT_RIGHT, "Unit net EUR");
    page.number(Font::Bold, RIGHT, "Net EUR");
    page.rule(page.y - 4.0);
    page.down(LINE + 4.0)?;
    for line in &data.lines {
        page.text(Font::Regular, BODY_SIZE, LEFT, &line.description, DESCRIPTION_WIDTH);
        page.number(Font::Regular, QTY_RIGHT, &line.quantity.to_string());
        page.number(Font::Regular, UNIT_RIGHT, &format_minor(line.unit_net_eur_cents));
        page.number(
            Font::Regular,
            RIGHT,
            &format_minor(line.quantity * line.unit_net_eur_cents),
        );
        page.down(LINE)?;
    }
    page.rule(page.y + LINE - 4.0);
    page.down(6.0)?;

    let mut summary = vec![(Font::Regular, "Net total EUR".to_owned(), format_minor(net_total))];
    if data.discount_eur_cents > 0 {
        summary.push((
            Font::Regular,
            "Discount EUR".to_owned(),
            format!("-{}", format_minor(data.discount_eur_cents)),
        ));
    }
    summary.push((
        Font::Regular,
        format!("VAT {} EUR", percent(data.vat_basis_points)),
        format_minor(data.vat_eur_cents),
    ));
    summary.push((
        Font::Bold,
        "Total EUR (VAT included)".to_owned(),
        format_minor(data.gross_eur_cents),
    ));
    summary.push((
        Font::Regular,
        format!("Exchange rate of {}", data.rate_date),
        format!("1 EUR = {} RON", rate(data.ron_per_eur_1e4)),
    ));
    summary.push((
        Font::Bold,
        if data.proforma {
            "Total to pay RON".to_owned()
        } else if data.due_on.is_some() {
            "Total due RON".to_owned()
        } else {
            "Total paid RON".to_owned()
        },
        format_minor(data.total_ron_bani),
    ));
    for (font, label, value) in summary {
        page.text(font, BODY_SIZE, SUMMARY_LABEL_X, &label, SUMMARY_LABEL_WIDTH);
        page.number(font, RIGHT, &value);
        page.down(LINE)?;
    }

    if !data.payment_reference.is_empty() {
        page.down(LINE)?;
        page.text(
            Font::Regular,
            BODY_SIZE,
            LEFT,
            &format!("Payment reference: {}", data.payment_reference),
            full,
        );
    }
    for note in &data.notes {
        page.down(LINE)?;
        page.text(Font::Regular, BODY_SIZE, LEFT, note, full);
    }

    page.y = FOOTER_Y;
    let footer = match (&data.due_on, data.proforma) {
        (_, true) => "Proforma: not a fiscal invoice. Automated document.".to_owned(),
        (Some(due), false) => format!("Payment by bank transfer, due by {due}. Automated document."),
        (None, false) => "Paid online. Automated document.".to_owned(),
    };
    page.text(Font::Regular, SMALL_SIZE, LEFT, &footer, full);
    Ok(page.operations)
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

fn font_dictionary(base_font: &str) -> lopdf::Dictionary {
    dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => base_font,
        "Encoding" => "WinAnsiEncoding",
    }
}

/// A PDF text string (document Info) as UTF-16BE with its byte order mark, so it keeps every character.
fn text_string(text: &str) -> Object {
    let mut bytes = vec![0xFE, 0xFF];
    bytes.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    Object::String(bytes, StringFormat::Hexadecimal)
}

#[derive(Debug, Clone, Copy)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
        }
    }

    /// Advance width of one WinAnsi byte in thousandths of the font size: exact for ASCII (the Adobe AFM metrics),
    /// an upper bound for the rest, so that text measured with it never runs past its column.
    fn width(self, byte: u8) -> u32 {
        match byte {
            32..=126 => {
                let table = match self {
                    Font::Regular => &HELVETICA_ASCII,
                    Font::Bold => &HELVETICA_BOLD_ASCII,
                };
                u32::from(table[usize::from(byte - 32)])
            }
            0xC6 => 1000,       // Æ
            0xE6 => 889,        // æ
            0xC0..=0xDE => 778, // capitals with accents
            0xDF..=0xFF => 611, // small letters with accents
            _ => 1000,          // punctuation and symbols: € … ‰ ™ — Œ and the like
        }
    }

    fn text_width(self, bytes: &[u8], size: f32) -> f32 {
        bytes.iter().map(|&b| self.width(b)).sum::<u32>() as f32 * size / 1000.0
    }
}

#[rustfmt::skip]
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space … /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0 … ?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @ … O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P … _
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // ` … o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,      // p … ~
];

#[rustfmt::skip]
const HELVETICA_BOLD_ASCII: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // space … /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // 0 … ?
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // @ … O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // P … _
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // ` … o
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,      // p … ~
];

/// Operations of the page and the baseline of the next line of text.
struct Page {
    operations: Vec<Operation>,
    y: f32,
}

impl Page {
    fn new() -> Page {
        Page {
            operations: Vec::new(),
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
    fn text(&mut self, font: Font, size: f32, x: f32, text: &str, max_width: f32) {
        let bytes = fit(win_ansi(text), font, size, max_width);
        self.show(font, size, x, bytes);
    }

    /// Right-aligned text ending at `right` on the current line (numbers and column headers, which are short).
    fn number(&mut self, font: Font, right: f32, text: &str) {
        let bytes = win_ansi(text);
        let x = right - font.text_width(&bytes, BODY_SIZE);
        self.show(font, BODY_SIZE, x, bytes);
    }

    fn show(&mut self, font: Font, size: f32, x: f32, bytes: Vec<u8>) {
        // lopdf's writer escapes `\` and any unbalanced `(` or `)` of a literal string (balanced ones are legal
        // unescaped, PDF 32000-1 §7.3.4.2), so the bytes go in raw: escaping them here would escape them twice.
        self.operations.extend([
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec![font.resource().into(), size.into()]),
            Operation::new("Td", vec![x.into(), self.y.into()]),
            Operation::new("Tj", vec![Object::String(bytes, StringFormat::Literal)]),
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

    /// A party block at `x`: heading, name, tax id when present, address lines; returns the cursor below it.
    fn party(&mut self, x: f32, heading: &str, party: &Party) -> Result<f32, InvoiceError> {
        self.text(Font::Bold, BODY_SIZE, x, heading, PARTY_WIDTH);
        self.down(LINE)?;
        self.text(Font::Bold, BODY_SIZE, x, &party.name, PARTY_WIDTH);
        self.down(LINE)?;
        if let Some(tax_id) = &party.tax_id {
            self.text(Font::Regular, BODY_SIZE, x, &format!("Tax id: {tax_id}"), PARTY_WIDTH);
            self.down(LINE)?;
        }
        for line in &party.address {
            self.text(Font::Regular, BODY_SIZE, x, line, PARTY_WIDTH);
            self.down(LINE)?;
        }
        Ok(self.y)
    }
}

/// Cuts WinAnsi text to `max_width` points, ending it with "..." when something was cut.
fn fit(mut bytes: Vec<u8>, font: Font, size: f32, max_width: f32) -> Vec<u8> {
    if font.text_width(&bytes, size) <= max_width {
        return bytes;
    }
    let room = max_width - font.text_width(b"...", size);
    let mut width = 0.0;
    let keep = bytes
        .iter()
        .take_while(|&&b| {
            width += font.width(b) as f32 * size / 1000.0;
            width <= room
        })
        .count();
    bytes.truncate(keep);
    bytes.extend_from_slice(b"...");
    bytes
}

/// Text as WinAnsiEncoding bytes: characters of WinAnsi as themselves, the rest as a close ASCII letter or `?`,
/// combining marks dropped (a decomposed "ș" is an "s"), control characters as spaces.
fn win_ansi(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if let Some(byte) = win_ansi_byte(c) {
            out.push(byte);
        } else if ('\u{300}'..='\u{36F}').contains(&c) {
            continue;
        } else if c.is_control() {
            out.push(b' ');
        } else {
            out.push(ascii_fallback(c));
        }
    }
    out
}

fn win_ansi_byte(c: char) -> Option<u8> {
    match u32::from(c) {
        code @ (0x20..=0x7E | 0xA0..=0xFF) => u8::try_from(code).ok(),
        _ => CP1252_80_9F
            .iter()
            .position(|&slot| slot == Some(c))
            .and_then(|i| u8::try_from(0x80 + i).ok()),
    }
}

/// WinAnsi's bytes 0x80–0x9F (the Windows-1252 ones); `None` where it has no character.
const CP1252_80_9F: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201C}'),
    Some('\u{201D}'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The base letters of Latin Extended-A, U+0100–U+017F (ă ş ţ and their neighbours); the few of that block that
/// WinAnsi has (Œ œ Š š Ÿ Ž ž) never get here.
const LATIN_EXTENDED_A: &[u8; 128] = b"AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIiIiJjKkkLlLlLlLlLlNnNnNnnNnOoOoOoOoRrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";

fn ascii_fallback(c: char) -> u8 {
    match c {
        '\u{100}'..='\u{17F}' => LATIN_EXTENDED_A[(u32::from(c) - 0x100) as usize],
        'Ș' => b'S',
        'ș' => b's',
        'Ț' => b'T',
        'ț' => b't',
        '\u{2010}'..='\u{2012}' | '\u{2212}' => b'-',
        '\u{2000}'..='\u{200A}' | '\u{202F}' => b' ',
        _ => b'?',
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::Command;

    use super::*;

    fn guide_example() -> InvoiceData {
        InvoiceData {
            invoice_number: "PRF-INV-2026-000042".into(),
            issued_on: "2026-11-25".into(),
            order_number: "PRF-2026-ABCD-EFGH".into(),
            seller: Party {
                name: "Parafa Trust Services SRL".into(),
                tax_id: Some("RO40000001".into()),
                address: vec![
                    "Strada Aviatorilor 1".into(),
                    "București, Sector 1".into(),
                    "România".into(),
                ],
            },
            buyer: Party {
                name: "Ștefan Pătrașcu".into(),
                tax_id: None,
                address: vec![
                    "Str. Mărășești nr. 7, bl. A, sc. 2, ap. 14".into(),
                    "Iași, județul Iași, 700001".into(),
                    "România".into(),
                ],
            },
            lines: vec![InvoiceLine {
                description: "Package 1: qualified certificate, 1 year, 200 transactions".into(),
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
            payment_reference: "sandbox evt_01JCK3W9".into(),
            proforma: false,
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
    fn the_guides_example_shows_numbers_parties_and_totals_to_pdftotext() {
        let pdf = render(&guide_example()).unwrap();
        let text = pdftotext(&pdf);
        for expected in [
            "Factura / Invoice",
            "PRF-INV-2026-000042",
            "2026-11-25",
            "PRF-2026-ABCD-EFGH",
            "Parafa Trust Services SRL",
            "Tax id: RO40000001",
            "Stefan Patrascu",
            "Str. Marasesti nr. 7, bl. A, sc. 2, ap. 14",
            "Iasi, judetul Iasi, 700001",
            "Package 1: qualified certificate, 1 year, 200 transactions",
            "39.00",
            "VAT 19% EUR",
            "7.41",
            "46.41",
            "1 EUR = 5.0377 RON",
            "2025-03-14",
            "233.80",
            "sandbox evt_01JCK3W9",
            "Paid online. Automated document.",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
        }
        assert!(
            !text.contains("Discount"),
            "no discount line without a discount:\n{text}"
        );
        // The natural person has no tax id line: only the seller's.
        assert_eq!(text.matches("Tax id:").count(), 1, "{text}");
        assert!(text.contains("România"), "â î are WinAnsi and kept:\n{text}");
    }

    #[test]
    fn pdfinfo_reads_one_a4_page_with_title_and_producer() {
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
    }

    #[test]
    fn a_company_buyer_shows_its_tax_id_and_its_winansi_letters() {
        let mut data = guide_example();
        data.buyer = Party {
            name: "Îngrijire Müller & Frères SRL".into(),
            tax_id: Some("RO12345678".into()),
            address: vec!["Bd. Ştefan cel Mare 3, Brașov".into()],
        };
        data.discount_eur_cents = 390;
        data.vat_eur_cents = 667;
        data.gross_eur_cents = 3900 - 390 + 667;
        data.total_ron_bani = 21042;
        let text = pdftotext(&render(&data).unwrap());
        for expected in [
            "Tax id: RO12345678",
            "Îngrijire Müller & Frères SRL",
            "Bd. Stefan cel Mare 3, Brasov",
            "Discount EUR",
            "-3.90",
            "41.77",
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

        let content = Content {
            operations: vec![Operation::new(
                "Tj",
                vec![Object::String(win_ansi(r"a\b) (c"), StringFormat::Literal)],
            )],
        }
        .encode()
        .unwrap();
        assert_eq!(content, br"(a\\b\) \(c) Tj".to_vec());
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
            row.trim_end().ends_with("39.00"),
            "the amounts stay in their columns: {row}"
        );
        let cut = fit(
            win_ansi(&data.lines[0].description),
            Font::Regular,
            BODY_SIZE,
            DESCRIPTION_WIDTH,
        );
        assert!(Font::Regular.text_width(&cut, BODY_SIZE) <= DESCRIPTION_WIDTH);
    }

    #[test]
    fn romanian_letters_outside_winansi_map_to_ascii_and_the_rest_encode_as_winansi() {
        assert_eq!(win_ansi("ȘșŞşȚțŢţĂă"), b"SsSsTtTtAa");
        assert_eq!(win_ansi("ÂâÎî"), [0xC2, 0xE2, 0xCE, 0xEE]);
        assert_eq!(
            win_ansi("é ü € – ’"),
            [0xE9, b' ', 0xFC, b' ', 0x80, b' ', 0x96, b' ', 0x92]
        );
        assert_eq!(win_ansi("ŁódźΩ漢"), b"L\xF3dz??");
        assert_eq!(win_ansi("s\u{326}t\u{326}\ta\u{306}"), b"st a");
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
        assert!(matches!(render(&data), Err(InvoiceError::DoesNotFitOnePage)));
        let mut data = guide_example();
        data.buyer.address = vec!["line".into(); 100];
        assert!(matches!(render(&data), Err(InvoiceError::DoesNotFitOnePage)));
    }
}
