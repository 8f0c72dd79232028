//! Packages, prices and orders (product rules §1, §2). Money is integer minor units (euro cents, bani), rates are
//! integers scaled by 10 000, percentages basis points; every rounding is half away from zero, once per step, as
//! the guide's example does it: net → VAT → gross EUR → RON.

pub mod anaf;
pub mod efactura;
pub mod fiscal;
pub mod fx;
pub mod invoice;
pub mod notice;
pub mod orders;
pub mod payment;
pub mod routes;

use std::sync::Arc;

use serde::Serialize;

pub use crate::db::orders::{OrderEvent, OrderKind, OrderState};

use crate::ca::Ca;
use crate::clock::SystemClock;
use crate::config::{PackageSettings, Settings};
use crate::db::Db;

/// The procurement catalogue's code of the service (on an institutional order's proforma and invoice).
pub const CPV: &str = "79132100-9";

/// What billing uses: the application context's part it needs, handed in by the handlers (`state.billing()`)
/// and by the lifecycle (`lifecycle::Services::billing`). Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Arc<SystemClock>,
    /// The EUR→RON rate source.
    pub fx: Arc<fx::Fx>,
    /// The CA, for the public base address of payment links.
    pub ca: Arc<Ca>,
    /// The trust documents' PDFs (attached to the order-accepted e-mail).
    pub legal_pdfs: Arc<crate::legal::PdfCache>,
}

/// `a × b / d`, rounded half away from zero (all operands non-negative).
fn mul_div_round(a: i64, b: i64, d: i64) -> i64 {
    (a * b + d / 2) / d
}

/// A price in EUR and RON: the amounts stored with an order, and the line that says them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Price {
    #[serde(flatten)]
    pub amounts: crate::db::orders::PriceColumns,
    /// "Pay 233.80 RON (46.41 EUR)".
    pub label: String,
}

impl Price {
    /// Stored amounts, with their label.
    pub fn of(amounts: crate::db::orders::PriceColumns) -> Price {
        let label = format!(
            "Pay {} RON ({} EUR)",
            format_minor(amounts.total_ron_bani),
            format_minor(amounts.gross_eur_cents)
        );
        Price { amounts, label }
    }
}

/// Cents (or bani) as `46.41`.
pub fn format_minor(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// The price of a net amount after a discount, with VAT, in EUR and in RON at `rate`.
pub fn price(net_eur_cents: i64, discount_eur_cents: i64, vat_basis_points: i64, rate: &fx::Rate) -> Price {
    let taxable = (net_eur_cents - discount_eur_cents).max(0);
    let vat = mul_div_round(taxable, vat_basis_points, 10_000);
    let gross = taxable + vat;
    let ron = mul_div_round(gross, rate.ron_per_eur_1e4, 10_000);
    Price::of(crate::db::orders::PriceColumns {
        net_eur_cents,
        discount_eur_cents: net_eur_cents - taxable,
        vat_basis_points,
        vat_eur_cents: vat,
        gross_eur_cents: gross,
        ron_per_eur_1e4: rate.ron_per_eur_1e4,
        rate_date: rate.date.clone(),
        total_ron_bani: ron,
    })
}

/// A package as `GET /packages` shows it.
#[derive(Debug, Serialize)]
pub struct PackageOffer {
    pub id: u8,
    pub name: String,
    /// The name on Romanian pages.
    pub name_ro: String,
    pub validity_years: u32,
    pub transactions: i64,
    pub price: Price,
}

/// The packages with their prices at `rate`.
pub fn offers(packages: &[PackageSettings], vat_basis_points: i64, rate: &fx::Rate) -> Vec<PackageOffer> {
    packages
        .iter()
        .map(|p| PackageOffer {
            id: p.id,
            name: p.name.clone(),
            name_ro: p.name_in("ro").to_owned(),
            validity_years: p.validity_years,
            transactions: p.transactions,
            price: price(p.net_price_eur_cents, 0, vat_basis_points, rate),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_example_39_eur_with_19_percent_at_5_0377_is_233_80_ron() {
        let rate = fx::Rate {
            ron_per_eur_1e4: 50377,
            date: "2025-03-14".into(),
        };
        let p = price(3900, 0, 1900, &rate);
        assert_eq!(p.amounts.vat_eur_cents, 741);
        assert_eq!(p.amounts.gross_eur_cents, 4641);
        assert_eq!(p.amounts.total_ron_bani, 23380);
        assert_eq!(p.label, "Pay 233.80 RON (46.41 EUR)");
    }

    #[test]
    fn the_default_vat_is_applied_and_discounts_never_go_below_zero() {
        let rate = fx::Rate {
            ron_per_eur_1e4: 50000,
            date: "d".into(),
        };
        let p = price(5900, 0, 2100, &rate);
        assert_eq!(
            (
                p.amounts.vat_eur_cents,
                p.amounts.gross_eur_cents,
                p.amounts.total_ron_bani
            ),
            (1239, 7139, 35695)
        );
        let p = price(3900, 5000, 2100, &rate);
        assert_eq!((p.amounts.discount_eur_cents, p.amounts.gross_eur_cents), (3900, 0));
        assert_eq!(format_minor(5), "0.05");
    }
}
