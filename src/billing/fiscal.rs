//! An order's fiscal documents (product rules §2): what its invoice, proforma and credit note say, read from the
//! order as stored; the e-Factura file of each, made once at issue and kept; and the credit note (storno) a refund
//! issues, numbered in its own gap-free series.
//!
//! Numbering: a credit note takes the next value of the counter row `credit-note-<year>` inside the refund's own
//! transaction, as an invoice takes `invoice-<year>` inside the payment's. The row is locked by the upsert until
//! the transaction ends, so two refunds (on one instance or two) are numbered one after the other, and a refund
//! that rolls back gives its number back: the series has no gaps and no duplicates. The year is Bucharest's.

use serde_json::Value;

use super::efactura;
use super::invoice::{bucharest_day, InvoiceData, InvoiceLine, Kind, Party, PaymentMethod, PostalAddress};
use crate::config::{BillingSettings, Settings};
use crate::db::{self, orders::Stored, DbError};

/// The seller, from the settings.
pub fn seller(b: &BillingSettings) -> Party {
    let county = efactura::county_code(&b.seller_county)
        .and_then(efactura::county_name)
        .unwrap_or(b.seller_county.as_str());
    let mut address = vec![
        b.seller_street.clone(),
        format!("{} {}, {county}", b.seller_postal_code, b.seller_city),
    ];
    if b.seller_country_code == "RO" {
        address.push("România".into());
    } else {
        address.push(b.seller_country_code.clone());
    }
    Party {
        name: b.seller_name.clone(),
        tax_id: Some(b.seller_tax_id.clone()).filter(|t| !t.is_empty()),
        trade_register: Some(b.seller_trade_register.clone()).filter(|t| !t.is_empty()),
        address,
        postal: PostalAddress {
            street: b.seller_street.clone(),
            city: b.seller_city.clone(),
            postal_code: b.seller_postal_code.clone(),
            county: b.seller_county.clone(),
            country: b.seller_country_code.clone(),
        },
        bank: Some(b.seller_bank.clone()).filter(|t| !t.is_empty()),
        iban: Some(b.seller_iban.clone()).filter(|t| !t.is_empty()),
    }
}

/// The buyer of an order's invoice data (JSON as stored): a name, a tax id for a company, and an address given by
/// its parts (a web order) or as lines (an institution's).
pub fn buyer(invoice: &str) -> Party {
    let inv: Value = serde_json::from_str(invoice).unwrap_or(Value::Null);
    let s = |k: &str| inv[k].as_str().unwrap_or_default().trim().to_owned();
    let (address, postal) = match inv["address_lines"].as_array() {
        Some(lines) => {
            let lines: Vec<String> = lines.iter().filter_map(Value::as_str).map(str::to_owned).collect();
            // Free lines: the street first, then the town; a line that names a county gives the county.
            let county = lines
                .iter()
                .flat_map(|l| l.split(',').map(str::trim).collect::<Vec<_>>())
                .find(|part| efactura::county_code(part).is_some())
                .unwrap_or_default()
                .to_owned();
            let postal = PostalAddress {
                street: lines.first().cloned().unwrap_or_default(),
                city: lines.get(1).cloned().unwrap_or_default(),
                postal_code: String::new(),
                county,
                country: "RO".into(),
            };
            (lines, postal)
        }
        None => {
            let mut street = format!("{} {}", s("street"), s("number"));
            for (label, key) in [("bl.", "building"), ("sc.", "entrance"), ("ap.", "apartment")] {
                let part = s(key);
                if !part.is_empty() && part != "-" {
                    street.push_str(&format!(", {label} {part}"));
                }
            }
            let lines = vec![
                street.clone(),
                format!("{} {}, {}", s("postal_code"), s("locality"), s("county")),
                s("country"),
            ];
            let postal = PostalAddress {
                street,
                city: s("locality"),
                postal_code: s("postal_code"),
                county: s("county"),
                country: s("country"),
            };
            (lines, postal)
        }
    };
    Party {
        name: s("name"),
        tax_id: inv["tax_id"].as_str().map(str::to_owned),
        address,
        postal,
        ..Party::default()
    }
}

/// The line of an order: the service, the kind of order and the package.
fn line(settings: &Settings, o: &Stored) -> InvoiceLine {
    let kind = match o.kind {
        db::orders::OrderKind::New => "certificat nou",
        db::orders::OrderKind::Rekey => "reînnoire cu cheie nouă",
        db::orders::OrderKind::Reissue => "reemitere",
    };
    let package = settings
        .package(u8::try_from(o.package_id).unwrap_or(0))
        .map(|p| {
            let years = crate::i18n::years(crate::i18n::Lang::Ro, i64::from(p.validity_years));
            format!("{}, {years}, {} de tranzacții", p.name_in("ro"), p.transactions)
        })
        .unwrap_or_else(|| format!("pachetul {}", o.package_id));
    InvoiceLine {
        description: format!("Semnătură electronică calificată la distanță, {kind}: {package}"),
        quantity: 1,
        unit_net_eur_cents: o.price.net_eur_cents,
    }
}

/// What an order's invoice (or proforma) says, from the order as stored.
pub fn invoice_data(settings: &Settings, o: &Stored, proforma: bool, notes: Vec<String>) -> InvoiceData {
    let issued_at = if proforma {
        o.created_at
    } else {
        o.invoiced_at.or(o.paid_at).unwrap_or(o.created_at)
    };
    let p = &o.price;
    InvoiceData {
        kind: if proforma { Kind::Proforma } else { Kind::Invoice },
        invoice_number: if proforma {
            o.registration_number.clone()
        } else {
            o.invoice_number.clone().unwrap_or_default()
        },
        issued_on: bucharest_day(issued_at),
        order_number: o.registration_number.clone(),
        seller: seller(&settings.billing),
        buyer: buyer(&o.invoice),
        lines: vec![line(settings, o)],
        discount_eur_cents: p.discount_eur_cents,
        vat_basis_points: p.vat_basis_points,
        vat_eur_cents: p.vat_eur_cents,
        gross_eur_cents: p.gross_eur_cents,
        ron_per_eur_1e4: p.ron_per_eur_1e4,
        rate_date: p.rate_date.clone(),
        total_ron_bani: p.total_ron_bani,
        payment_method: if o.channel == "institutional" {
            PaymentMethod::BankTransfer
        } else {
            PaymentMethod::Card
        },
        payment_reference: o.payment_ref.clone().unwrap_or_default(),
        due_on: o.payment_due_at.filter(|_| !proforma).map(bucharest_day),
        notes,
    }
}

/// What an order's credit note says: its invoice, reversed in full, on the day of the refund.
pub fn credit_note_data(settings: &Settings, o: &Stored, note: &db::orders::CreditNote) -> InvoiceData {
    let invoice = invoice_data(settings, o, false, Vec::new());
    InvoiceData {
        kind: Kind::CreditNote {
            invoice_number: note.invoice_number.clone(),
            invoice_date: invoice.issued_on.clone(),
        },
        invoice_number: note.number.clone(),
        issued_on: bucharest_day(note.issued_at),
        payment_method: PaymentMethod::CardRefund,
        payment_reference: note.refund_ref.clone(),
        due_on: None,
        ..invoice
    }
}

/// Inside the transaction that gave the order its invoice number (and, for an institution, its due date): makes
/// the invoice's e-Factura file and keeps it. A file that cannot be made is logged and left out, never a reason
/// to refuse a payment the gateway has taken.
pub async fn keep_invoice_xml(
    conn: &mut sqlx::AnyConnection,
    settings: &Settings,
    order_id: &str,
) -> Result<(), DbError> {
    let Some(o) = db::orders::get_with(&mut *conn, order_id, None).await? else {
        return Ok(());
    };
    if o.invoice_number.is_none() {
        return Ok(());
    }
    match efactura::to_ubl(&invoice_data(settings, &o, false, Vec::new())) {
        Ok(xml) => db::orders::set_efactura(conn, order_id, &xml).await,
        Err(e) => {
            tracing::error!(order = order_id, error = %e, "no e-Factura file for the invoice");
            Ok(())
        }
    }
}

/// Inside a refund's transaction: issues the order's credit note, the next number of the year's series, reversing
/// its invoice in full, with its e-Factura file. An order never invoiced gets none (there is nothing to reverse).
/// Returns the credit note's number.
pub async fn issue_credit_note(
    conn: &mut sqlx::AnyConnection,
    settings: &Settings,
    order_id: &str,
    refund_ref: &str,
    now: i64,
) -> Result<Option<String>, DbError> {
    let Some(o) = db::orders::get_with(&mut *conn, order_id, None).await? else {
        return Ok(None);
    };
    let Some(invoice_number) = o.invoice_number.clone() else {
        return Ok(None);
    };
    let year = bucharest_day(now)[..4].to_owned();
    let n = db::orders::next_in_sequence(conn, &format!("credit-note-{year}")).await?;
    let mut note = db::orders::CreditNote {
        number: format!("PRF-CN-{year}-{n:06}"),
        order_id: order_id.to_owned(),
        invoice_number,
        issued_at: now,
        amount_ron_bani: o.price.total_ron_bani,
        refund_ref: refund_ref.to_owned(),
        efactura_xml: None,
    };
    match efactura::to_ubl(&credit_note_data(settings, &o, &note)) {
        Ok(xml) => note.efactura_xml = Some(xml),
        Err(e) => tracing::error!(order = order_id, error = %e, "no e-Factura file for the credit note"),
    }
    db::orders::insert_credit_note(conn, &note).await?;
    Ok(Some(note.number))
}
