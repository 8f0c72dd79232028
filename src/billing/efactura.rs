//! e-Factura: an invoice or a credit note as UBL 2.1 XML under the Romanian CIUS (RO_CIUS 1.0.1 over EN 16931),
//! the file the tax authority's system (ANAF SPV) takes. Built with `quick-xml`'s writer, which escapes every text
//! and attribute value, from the same [`InvoiceData`] and RON amounts ([`ron_amounts`]) as the PDF, so the two never
//! disagree. The file is made once, when the document is issued, and kept as made (`orders.efactura_xml`,
//! `credit_notes.efactura_xml`).
//!
//! Choices where the norm leaves room:
//! - an invoice is an `Invoice` with type code 380; a credit note a `CreditNote` with 381, its amounts positive
//!   (the document type is what reverses them, EN 16931 §6.4; negative amounts in a 381 would undo the reversal),
//!   with a `BillingReference` to the invoice's number and date;
//! - a card payment is already made at issue: `PrepaidAmount` is the total and `PayableAmount` zero; an
//!   institution's invoice (paid by transfer later) has the whole total payable, with the seller's IBAN;
//! - the county is an ISO 3166-2:RO code where the stored county names one ([`county_code`]), and a Bucharest
//!   address's city is its sector (`SECTOR1`..`SECTOR6`) when the address names it (BR-RO-100, BR-RO-110);
//! - a natural person buyer, whose personal numeric code Parafa never asks for, is identified by thirteen zeros,
//!   as ANAF's guidance for buyers without a CNP has it.

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::format_minor;
use super::invoice::{ron_amounts, InvoiceData, Kind, Party, PaymentMethod};

/// RO_CIUS's customization identifier (BT-24).
pub const CUSTOMIZATION_ID: &str = "urn:cen.eu:en16931:2017#compliant#urn:efactura.mfinante.ro:CIUS-RO:1.0.1";
const NS_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const NS_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const NS_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const NS_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
/// The buyer identifier of a natural person whose CNP is not known.
const NO_CNP: &str = "0000000000000";

/// Why no e-Factura file could be made.
#[derive(Debug, thiserror::Error)]
pub enum EfacturaError {
    #[error("a proforma is not a fiscal document and has no e-Factura file")]
    Proforma,
    #[error("the RON amounts do not add up (a total below its taxable amount)")]
    Amounts,
    #[error("cannot write the XML: {0}")]
    Xml(#[from] io::Error),
}

/// The UBL 2.1 XML of an invoice or a credit note.
pub fn to_ubl(data: &InvoiceData) -> Result<String, EfacturaError> {
    let credited = match &data.kind {
        Kind::Proforma => return Err(EfacturaError::Proforma),
        Kind::Invoice => None,
        Kind::CreditNote {
            invoice_number,
            invoice_date,
        } => Some((invoice_number.as_str(), invoice_date.as_str())),
    };
    let ron = ron_amounts(data).ok_or(EfacturaError::Amounts)?;
    let (root, ns, type_element, type_code, line_element, quantity_element) = match credited {
        None => (
            "Invoice",
            NS_INVOICE,
            "cbc:InvoiceTypeCode",
            "380",
            "cac:InvoiceLine",
            "cbc:InvoicedQuantity",
        ),
        Some(_) => (
            "CreditNote",
            NS_CREDIT_NOTE,
            "cbc:CreditNoteTypeCode",
            "381",
            "cac:CreditNoteLine",
            "cbc:CreditedQuantity",
        ),
    };
    let category = Category::of(data.vat_basis_points);
    let prepaid = match (data.payment_method, credited) {
        (PaymentMethod::Card, None) if data.due_on.is_none() => ron.total,
        _ => 0,
    };

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element(root)
        .with_attributes([("xmlns", ns), ("xmlns:cac", NS_CAC), ("xmlns:cbc", NS_CBC)])
        .write_inner_content(|w| {
            leaf(w, "cbc:CustomizationID", CUSTOMIZATION_ID)?;
            leaf(w, "cbc:ID", &data.invoice_number)?;
            leaf(w, "cbc:IssueDate", &data.issued_on)?;
            if let (None, Some(due)) = (credited, &data.due_on) {
                leaf(w, "cbc:DueDate", due)?;
            }
            leaf(w, type_element, type_code)?;
            leaf(w, "cbc:DocumentCurrencyCode", "RON")?;
            w.create_element("cac:OrderReference")
                .write_inner_content(|w| leaf(w, "cbc:ID", &data.order_number))?;
            if let Some((number, date)) = credited {
                w.create_element("cac:BillingReference").write_inner_content(|w| {
                    w.create_element("cac:InvoiceDocumentReference")
                        .write_inner_content(|w| {
                            leaf(w, "cbc:ID", number)?;
                            leaf(w, "cbc:IssueDate", date)
                        })
                        .map(|_| ())
                })?;
            }
            party(w, "cac:AccountingSupplierParty", &data.seller, true)?;
            party(w, "cac:AccountingCustomerParty", &data.buyer, false)?;
            w.create_element("cac:PaymentMeans").write_inner_content(|w| {
                leaf(w, "cbc:PaymentMeansCode", data.payment_method.uncl4461())?;
                if !data.payment_reference.is_empty() {
                    leaf(w, "cbc:PaymentID", &data.payment_reference)?;
                }
                if let (PaymentMethod::BankTransfer, Some(iban)) = (data.payment_method, &data.seller.iban) {
                    w.create_element("cac:PayeeFinancialAccount")
                        .write_inner_content(|w| leaf(w, "cbc:ID", &iban.replace(' ', "")))?;
                }
                Ok(())
            })?;
            if ron.discount > 0 {
                w.create_element("cac:AllowanceCharge").write_inner_content(|w| {
                    leaf(w, "cbc:ChargeIndicator", "false")?;
                    leaf(w, "cbc:AllowanceChargeReason", "Reducere / Discount")?;
                    amount(w, "cbc:Amount", ron.discount)?;
                    category.write(w, "cac:TaxCategory", data.vat_basis_points)
                })?;
            }
            w.create_element("cac:TaxTotal").write_inner_content(|w| {
                amount(w, "cbc:TaxAmount", ron.vat)?;
                w.create_element("cac:TaxSubtotal")
                    .write_inner_content(|w| {
                        amount(w, "cbc:TaxableAmount", ron.taxable)?;
                        amount(w, "cbc:TaxAmount", ron.vat)?;
                        category.write(w, "cac:TaxCategory", data.vat_basis_points)
                    })
                    .map(|_| ())
            })?;
            w.create_element("cac:LegalMonetaryTotal").write_inner_content(|w| {
                amount(w, "cbc:LineExtensionAmount", ron.net)?;
                amount(w, "cbc:TaxExclusiveAmount", ron.taxable)?;
                amount(w, "cbc:TaxInclusiveAmount", ron.total)?;
                if ron.discount > 0 {
                    amount(w, "cbc:AllowanceTotalAmount", ron.discount)?;
                }
                if prepaid > 0 {
                    amount(w, "cbc:PrepaidAmount", prepaid)?;
                }
                amount(w, "cbc:PayableAmount", ron.total - prepaid)
            })?;
            for (i, line) in data.lines.iter().enumerate() {
                w.create_element(line_element).write_inner_content(|w| {
                    leaf(w, "cbc:ID", &(i + 1).to_string())?;
                    w.create_element(quantity_element)
                        .with_attribute(("unitCode", "C62"))
                        .write_text_content(BytesText::new(&line.quantity.to_string()))?;
                    amount(w, "cbc:LineExtensionAmount", ron.lines[i])?;
                    w.create_element("cac:Item").write_inner_content(|w| {
                        leaf(w, "cbc:Name", &cut(&line.description, 100))?;
                        category.write(w, "cac:ClassifiedTaxCategory", data.vat_basis_points)
                    })?;
                    w.create_element("cac:Price")
                        .write_inner_content(|w| amount(w, "cbc:PriceAmount", ron.unit_prices[i]))?;
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    String::from_utf8(w.into_inner()).map_err(|e| EfacturaError::Xml(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// The VAT category (UNCL 5305): standard rate, or zero rated.
#[derive(Clone, Copy)]
enum Category {
    Standard,
    Zero,
}

impl Category {
    fn of(vat_basis_points: i64) -> Category {
        if vat_basis_points > 0 {
            Category::Standard
        } else {
            Category::Zero
        }
    }

    fn write(self, w: &mut Writer<Vec<u8>>, element: &str, vat_basis_points: i64) -> io::Result<()> {
        w.create_element(element).write_inner_content(|w| {
            leaf(
                w,
                "cbc:ID",
                match self {
                    Category::Standard => "S",
                    Category::Zero => "Z",
                },
            )?;
            leaf(w, "cbc:Percent", &format_minor(vat_basis_points))?;
            vat_scheme(w)
        })?;
        Ok(())
    }
}

fn vat_scheme(w: &mut Writer<Vec<u8>>) -> io::Result<()> {
    w.create_element("cac:TaxScheme")
        .write_inner_content(|w| leaf(w, "cbc:ID", "VAT"))?;
    Ok(())
}

fn leaf(w: &mut Writer<Vec<u8>>, element: &str, text: &str) -> io::Result<()> {
    w.create_element(element).write_text_content(BytesText::new(text))?;
    Ok(())
}

fn amount(w: &mut Writer<Vec<u8>>, element: &str, bani: i64) -> io::Result<()> {
    w.create_element(element)
        .with_attribute(("currencyID", "RON"))
        .write_text_content(BytesText::new(&format_minor(bani)))?;
    Ok(())
}

/// At most `max` characters (RO_CIUS limits names and addresses).
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A party: its address by parts, its VAT id when it has one, its legal name and registration.
fn party(w: &mut Writer<Vec<u8>>, element: &str, p: &Party, seller: bool) -> io::Result<()> {
    w.create_element(element).write_inner_content(|w| {
        w.create_element("cac:Party")
            .write_inner_content(|w| {
                let a = &p.postal;
                let country = country_code(&a.country);
                let county = county_code(&a.county);
                w.create_element("cac:PostalAddress").write_inner_content(|w| {
                    leaf(w, "cbc:StreetName", &cut(&a.street, 150))?;
                    let city = match county {
                        Some("RO-B") => bucharest_sector(&a.city).unwrap_or_else(|| cut(&a.city, 50)),
                        _ => cut(&a.city, 50),
                    };
                    leaf(w, "cbc:CityName", &city)?;
                    if !a.postal_code.is_empty() {
                        leaf(w, "cbc:PostalZone", &cut(&a.postal_code, 20))?;
                    }
                    match county {
                        Some(code) => leaf(w, "cbc:CountrySubentity", code)?,
                        None if !a.county.is_empty() => leaf(w, "cbc:CountrySubentity", &cut(&a.county, 50))?,
                        None => {}
                    }
                    if let Some(code) = &country {
                        w.create_element("cac:Country")
                            .write_inner_content(|w| leaf(w, "cbc:IdentificationCode", code))?;
                    }
                    Ok(())
                })?;
                let tax_id = p.tax_id.as_deref().map(|t| t.replace(' ', "").to_ascii_uppercase());
                let vat_id = tax_id.as_deref().filter(|t| t.starts_with("RO"));
                if let Some(vat_id) = vat_id {
                    w.create_element("cac:PartyTaxScheme").write_inner_content(|w| {
                        leaf(w, "cbc:CompanyID", vat_id)?;
                        vat_scheme(w)
                    })?;
                }
                w.create_element("cac:PartyLegalEntity").write_inner_content(|w| {
                    leaf(w, "cbc:RegistrationName", &cut(&p.name, 200))?;
                    let registration = if seller {
                        p.trade_register.clone().or_else(|| tax_id.clone())
                    } else {
                        match &tax_id {
                            Some(t) => Some(t.trim_start_matches("RO").to_owned()),
                            None => Some(NO_CNP.to_owned()),
                        }
                    };
                    if let Some(id) = registration {
                        leaf(w, "cbc:CompanyID", &id)?;
                    }
                    Ok(())
                })?;
                Ok(())
            })
            .map(|_| ())
    })?;
    Ok(())
}

/// A country's ISO 3166-1 alpha-2 code from a code or a name as a holder typed it (the order form's default is
/// Romania); `None` for a name not known here.
pub fn country_code(country: &str) -> Option<String> {
    let key = fold(country);
    let known = [
        ("romania", "RO"),
        ("republica moldova", "MD"),
        ("moldova", "MD"),
        ("germania", "DE"),
        ("germany", "DE"),
        ("franta", "FR"),
        ("france", "FR"),
        ("italia", "IT"),
        ("italy", "IT"),
        ("spania", "ES"),
        ("spain", "ES"),
        ("ungaria", "HU"),
        ("hungary", "HU"),
        ("bulgaria", "BG"),
        ("austria", "AT"),
        ("belgia", "BE"),
        ("belgium", "BE"),
        ("olanda", "NL"),
        ("tarile de jos", "NL"),
        ("netherlands", "NL"),
    ];
    if let Some((_, code)) = known.iter().find(|(name, _)| *name == key) {
        return Some((*code).to_owned());
    }
    (country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic())).then(|| country.to_ascii_uppercase())
}

/// A Romanian county's ISO 3166-2:RO code, from its code or its name (with or without diacritics, "județul" and
/// "municipiul" left out); `None` for anything else.
pub fn county_code(county: &str) -> Option<&'static str> {
    let key = fold(county);
    let key = key
        .trim_start_matches("judetul ")
        .trim_start_matches("jud. ")
        .trim_start_matches("municipiul ")
        .trim();
    COUNTIES
        .iter()
        .find(|(code, name)| fold(code) == key || fold(name) == key)
        .map(|(code, _)| *code)
}

/// A county's name, from its ISO 3166-2:RO code.
pub fn county_name(code: &str) -> Option<&'static str> {
    COUNTIES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name)
}

/// "Sector 3", "sectorul 3", "București, Sector 3" → `SECTOR3`.
fn bucharest_sector(city: &str) -> Option<String> {
    let key = fold(city);
    let at = key.find("sector")?;
    let digit = key[at..].chars().find(|c| c.is_ascii_digit())?;
    ('1'..='6').contains(&digit).then(|| format!("SECTOR{digit}"))
}

/// Lower case, Romanian diacritics (both comma and cedilla forms) as plain letters, spaces collapsed.
fn fold(text: &str) -> String {
    let plain: String = text
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'ă' | 'â' => 'a',
            'î' => 'i',
            'ș' | 'ş' => 's',
            'ț' | 'ţ' => 't',
            '-' => ' ',
            c => c,
        })
        .collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// ISO 3166-2:RO: the 41 counties and Bucharest, with their names.
const COUNTIES: [(&str, &str); 42] = [
    ("RO-AB", "Alba"),
    ("RO-AR", "Arad"),
    ("RO-AG", "Argeș"),
    ("RO-BC", "Bacău"),
    ("RO-BH", "Bihor"),
    ("RO-BN", "Bistrița-Năsăud"),
    ("RO-BT", "Botoșani"),
    ("RO-BV", "Brașov"),
    ("RO-BR", "Brăila"),
    ("RO-B", "București"),
    ("RO-BZ", "Buzău"),
    ("RO-CS", "Caraș-Severin"),
    ("RO-CL", "Călărași"),
    ("RO-CJ", "Cluj"),
    ("RO-CT", "Constanța"),
    ("RO-CV", "Covasna"),
    ("RO-DB", "Dâmbovița"),
    ("RO-DJ", "Dolj"),
    ("RO-GL", "Galați"),
    ("RO-GR", "Giurgiu"),
    ("RO-GJ", "Gorj"),
    ("RO-HR", "Harghita"),
    ("RO-HD", "Hunedoara"),
    ("RO-IL", "Ialomița"),
    ("RO-IS", "Iași"),
    ("RO-IF", "Ilfov"),
    ("RO-MM", "Maramureș"),
    ("RO-MH", "Mehedinți"),
    ("RO-MS", "Mureș"),
    ("RO-NT", "Neamț"),
    ("RO-OT", "Olt"),
    ("RO-PH", "Prahova"),
    ("RO-SM", "Satu Mare"),
    ("RO-SJ", "Sălaj"),
    ("RO-SB", "Sibiu"),
    ("RO-SV", "Suceava"),
    ("RO-TR", "Teleorman"),
    ("RO-TM", "Timiș"),
    ("RO-TL", "Tulcea"),
    ("RO-VS", "Vaslui"),
    ("RO-VL", "Vâlcea"),
    ("RO-VN", "Vrancea"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::invoice::{InvoiceLine, PostalAddress};

    fn example() -> InvoiceData {
        InvoiceData {
            kind: Kind::Invoice,
            invoice_number: "PRF-INV-2026-000042".into(),
            issued_on: "2026-11-25".into(),
            order_number: "PRF-2026-ABCD-EFGH".into(),
            seller: Party {
                name: "Parafa & Fiii <SRL>".into(),
                tax_id: Some("RO14399840".into()),
                trade_register: Some("J12/0000/2026".into()),
                address: vec![],
                postal: PostalAddress {
                    street: "Strada Exemplului 1".into(),
                    city: "Cluj-Napoca".into(),
                    postal_code: "400000".into(),
                    county: "RO-CJ".into(),
                    country: "RO".into(),
                },
                bank: None,
                iban: Some("RO49 AAAA 1B31 0075 9384 0000".into()),
            },
            buyer: Party {
                name: "Ștefan Pătrașcu".into(),
                postal: PostalAddress {
                    street: "Str. Mărășești 7".into(),
                    city: "București, Sector 3".into(),
                    postal_code: "030000".into(),
                    county: "Municipiul București".into(),
                    country: "România".into(),
                },
                ..Party::default()
            },
            lines: vec![InvoiceLine {
                description: "Pachet 1".into(),
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
            payment_reference: "sandbox:evt".into(),
            due_on: None,
            notes: vec![],
        }
    }

    #[test]
    fn an_invoice_carries_the_cius_ro_header_escaped_names_and_totals_that_add_up() {
        let xml = to_ubl(&example()).unwrap();
        for expected in [
            "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"",
            "<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:efactura.mfinante.ro:CIUS-RO:1.0.1</cbc:CustomizationID>",
            "<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>",
            "<cbc:DocumentCurrencyCode>RON</cbc:DocumentCurrencyCode>",
            "<cbc:RegistrationName>Parafa &amp; Fiii &lt;SRL&gt;</cbc:RegistrationName>",
            "<cbc:CountrySubentity>RO-CJ</cbc:CountrySubentity>",
            "<cbc:CountrySubentity>RO-B</cbc:CountrySubentity>",
            "<cbc:CityName>SECTOR3</cbc:CityName>",
            "<cbc:CompanyID>0000000000000</cbc:CompanyID>",
            "<cbc:TaxAmount currencyID=\"RON\">37.33</cbc:TaxAmount>",
            "<cbc:TaxExclusiveAmount currencyID=\"RON\">196.47</cbc:TaxExclusiveAmount>",
            "<cbc:TaxInclusiveAmount currencyID=\"RON\">233.80</cbc:TaxInclusiveAmount>",
            "<cbc:PrepaidAmount currencyID=\"RON\">233.80</cbc:PrepaidAmount>",
            "<cbc:PayableAmount currencyID=\"RON\">0.00</cbc:PayableAmount>",
        ] {
            assert!(xml.contains(expected), "{expected} missing from:\n{xml}");
        }
    }

    #[test]
    fn a_credit_note_is_a_381_creditnote_referring_to_its_invoice() {
        let mut data = example();
        data.kind = Kind::CreditNote {
            invoice_number: "PRF-INV-2026-000042".into(),
            invoice_date: "2026-11-25".into(),
        };
        data.invoice_number = "PRF-CN-2026-000001".into();
        data.payment_method = PaymentMethod::CardRefund;
        let xml = to_ubl(&data).unwrap();
        for expected in [
            "<CreditNote xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2\"",
            "<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>",
            "<cac:InvoiceDocumentReference>",
            "<cbc:ID>PRF-INV-2026-000042</cbc:ID>",
            "<cbc:CreditedQuantity unitCode=\"C62\">1</cbc:CreditedQuantity>",
            "<cbc:PayableAmount currencyID=\"RON\">233.80</cbc:PayableAmount>",
        ] {
            assert!(xml.contains(expected), "{expected} missing from:\n{xml}");
        }
        data.kind = Kind::Proforma;
        assert!(matches!(to_ubl(&data), Err(EfacturaError::Proforma)));
    }

    #[test]
    fn counties_and_countries_are_coded_from_what_holders_type() {
        assert_eq!(county_code("Cluj"), Some("RO-CJ"));
        assert_eq!(county_code("județul Bistrița-Năsăud"), Some("RO-BN"));
        assert_eq!(county_code("Caraş-Severin"), Some("RO-CS"));
        assert_eq!(county_code("Municipiul București"), Some("RO-B"));
        assert_eq!(county_code("ro-is"), Some("RO-IS"));
        assert_eq!(county_code("Bavaria"), None);
        assert_eq!(country_code("România").as_deref(), Some("RO"));
        assert_eq!(country_code("de").as_deref(), Some("DE"));
        assert_eq!(country_code("Atlantis"), None);
        assert_eq!(bucharest_sector("Sectorul 6").as_deref(), Some("SECTOR6"));
        assert_eq!(bucharest_sector("București"), None);
    }
}
