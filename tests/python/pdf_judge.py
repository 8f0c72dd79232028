"""Makes a small multi-page PDF (`make OUT PAGES [xfa]`, xfa: with an XFA form) or a form with an empty signature
field (`form OUT`), judges a signed one (`judge PDF ROOT…`) or a .p7s (`cms P7S ROOT [CONTENT]`) with pyHanko, says
what version and /ID pyHanko reads (`meta PDF`) or which signature fields it finds (`fields PDF`), or updates a signed
PDF incrementally with pyHanko's writer (`update IN OUT content|annotation`: a page's content drawn over, or a text
annotation added): JSON on standard output with, per signature, its field, intact/valid/trusted/coverage, whether it
carries a signature timestamp, whether it is a document timestamp, and whether the file has a DSS with certificates,
CRLs and OCSPs."""
import datetime
import io
import json
import os
import sys

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter, PageObject
from pyhanko.pdf_utils import generic
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext


def make(out, pages, xfa=False):
    w = pages_writer(pages)
    if xfa:
        # A "smart" form: an AcroForm carrying an XFA stream.
        packet = w.add_object(generic.StreamObject(stream_data=b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'/>"))
        w.root[generic.NameObject("/AcroForm")] = generic.DictionaryObject({
            generic.NameObject("/Fields"): generic.ArrayObject(),
            generic.NameObject("/XFA"): packet,
        })
    buf = io.BytesIO()
    w.write(buf)
    with open(out, "wb") as f:
        f.write(buf.getvalue())


def pages_writer(pages):
    """A writer holding `pages` pages of text."""
    w = PdfFileWriter()
    font = generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Font"),
        generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
        generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
    })
    for i in range(pages):
        stream = generic.StreamObject(stream_data=f"BT /F1 24 Tf 72 700 Td (Contract page {i + 1}) Tj ET".encode())
        resources = generic.DictionaryObject({
            generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): w.add_object(font)}),
        })
        page = PageObject(contents=w.add_object(stream), media_box=(0, 0, 595, 842), resources=resources)
        w.insert_page(page)
    return w


def form(out):
    """Two pages with a text field `Name` on page 2, then, by an incremental update as `pyhanko sign addfields
    --field 1/100,100,300,150/Sig1` makes it, an empty signature field `Sig1` on page 1 in [100 100 300 150]."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    n = generic.NameObject
    w = pages_writer(2)
    page, _ = w.find_page_for_modification(1)
    text = w.add_object(generic.DictionaryObject({
        n("/Type"): n("/Annot"), n("/Subtype"): n("/Widget"), n("/FT"): n("/Tx"),
        n("/T"): generic.TextStringObject("Name"), n("/F"): generic.NumberObject(4), n("/P"): page,
        n("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (100, 700, 300, 720)]),
    }))
    page.get_object()[n("/Annots")] = generic.ArrayObject([text])
    w.root[n("/AcroForm")] = w.add_object(generic.DictionaryObject({n("/Fields"): generic.ArrayObject([text])}))
    buf = io.BytesIO()
    w.write(buf)
    update = IncrementalPdfFileWriter(io.BytesIO(buf.getvalue()))
    append_signature_field(update, SigFieldSpec("Sig1", on_page=0, box=(100, 100, 300, 150)))
    with open(out, "wb") as f:
        update.write(f)


def fields(pdf):
    """The signature fields pyHanko finds, with whether each is filled, and the widget annotations of each page."""
    from pyhanko.sign.fields import enumerate_sig_fields

    with open(pdf, "rb") as f:
        reader = PdfFileReader(io.BytesIO(f.read()))
    widgets = []
    for i in range(int(reader.root["/Pages"]["/Count"])):
        page = reader.find_page_for_modification(i)[0].get_object()
        widgets.append(sum(1 for a in page.get("/Annots", []) if a.get_object().get("/Subtype") == "/Widget"))
    print(json.dumps({
        "signature_fields": [{"name": name, "filled": value is not None}
                             for name, value, _ in enumerate_sig_fields(reader)],
        "widgets_per_page": widgets,
    }))


def moment():
    """The validation time: PARAFA_JUDGE_AT (Unix seconds, the server's test clock) if set, else now."""
    at = os.environ.get("PARAFA_JUDGE_AT")
    return datetime.datetime.fromtimestamp(int(at), tz=datetime.timezone.utc) if at else None


def widget_page(reader, field_name):
    """The index of the page whose annotations hold the field `field_name`, or None."""
    count = int(reader.root["/Pages"]["/Count"])
    for i in range(count):
        page = reader.find_page_for_modification(i)[0].get_object()
        for annot in page.get("/Annots", []):
            annot = annot.get_object()
            if annot.get("/T") == field_name or annot.get("/Parent", {}).get("/T") == field_name:
                return i
    return None


def judge(pdf, roots):
    trust = [load_cert_from_pemder(r) for r in roots]
    with open(pdf, "rb") as f:
        reader = PdfFileReader(io.BytesIO(f.read()))
    report = {"signatures": [], "dss": None}
    for sig in reader.embedded_signatures:
        vc = ValidationContext(trust_roots=trust, allow_fetching=False, moment=moment())
        doc_ts = sig.sig_object_type == "/DocTimeStamp"
        status = validate_pdf_timestamp(sig, validation_context=vc) if doc_ts else validate_pdf_signature(sig, vc)
        report["signatures"].append({
            "field": sig.field_name,
            "document_timestamp": doc_ts,
            "intact": status.intact,
            "valid": status.valid,
            "trusted": status.trusted,
            "coverage": status.coverage.name,
            # Where the signature's widget sits: 0-based page index and /Rect (None, [] when it has none).
            "page": widget_page(reader, sig.field_name),
            "rect": [float(v) for v in sig.sig_field.get("/Rect", [])],
            # The signature timestamp, validated by pyHanko against the same roots (None: there is none).
            "signature_timestamp": (not doc_ts) and getattr(status, "timestamp_validity", None) is not None
            and status.timestamp_validity.intact and status.timestamp_validity.valid,
            # pyHanko's difference analysis: how far the later revisions go, and whether the document allows it.
            "modification_level": getattr(getattr(status, "modification_level", None), "name", None),
            "docmdp_ok": getattr(status, "docmdp_ok", None),
            "bottom_line": getattr(status, "bottom_line", None),
        })
    dss = reader.root.get_value_as_reference("/DSS", optional=True)
    if dss is not None:
        dss = dss.get_object()
        report["dss"] = {k[1:]: len(dss[k]) for k in ("/Certs", "/CRLs", "/OCSPs") if k in dss}
    print(json.dumps(report))


def judge_cms(p7s, root, content=None):
    """pyHanko's view of a .p7s: enclosed content unless `content` (a detached signature's file) is given."""
    import asyncio
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    with open(p7s, "rb") as f:
        info = cms.ContentInfo.load(f.read())
    signed_data = info["content"]
    if content is None:
        # Enclosed content: validated as the detached signature of those bytes (what it signs is the same; pyHanko's
        # detached validator also checks the signature timestamp).
        data = signed_data["encap_content_info"]["content"].native
        signed_data["encap_content_info"] = {"content_type": "data"}
    else:
        with open(content, "rb") as f:
            data = f.read()
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(root)], allow_fetching=False)
    status = asyncio.run(async_validate_detached_cms(data, signed_data, signer_validation_context=vc,
                                                     ts_validation_context=vc))
    ts = getattr(status, "timestamp_validity", None)
    print(json.dumps({
        "intact": status.intact, "valid": status.valid, "trusted": status.trusted,
        "signature_timestamp": ts is not None and ts.intact and ts.valid and ts.trusted,
    }))


def meta(pdf):
    """The header's version, the catalog's /Version and the trailer's /ID (hex) of the file's last revision."""
    with open(pdf, "rb") as f:
        reader = PdfFileReader(io.BytesIO(f.read()))
    version = reader.root.get("/Version")
    print(json.dumps({
        "header": "%d.%d" % reader.input_version,
        "catalog": str(version)[1:] if version is not None else None,
        "id": [bytes(x).hex() for x in (reader.trailer["/ID"] if "/ID" in reader.trailer else [])],
    }))


def update(src, out, what):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    with open(src, "rb") as f:
        w = IncrementalPdfFileWriter(io.BytesIO(f.read()))
    if what == "content":
        stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 650 Td (PAID IN FULL) Tj ET")
        w.add_stream_to_page(0, w.add_object(stream))
    else:
        page_ref, _ = w.find_page_for_modification(0)
        page = page_ref.get_object()
        annot = w.add_object(generic.DictionaryObject({
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/Text"),
            generic.NameObject("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (10, 10, 30, 30)]),
            generic.NameObject("/Contents"): generic.TextStringObject("A reviewer's note"),
        }))
        annots = page.get("/Annots", generic.ArrayObject())
        annots.append(annot)
        page[generic.NameObject("/Annots")] = annots
        w.update_container(page)
    buf = io.BytesIO()
    w.write(buf)
    with open(out, "wb") as f:
        f.write(buf.getvalue())


if sys.argv[1] == "make":
    make(sys.argv[2], int(sys.argv[3]), xfa="xfa" in sys.argv[4:])
elif sys.argv[1] == "update":
    update(sys.argv[2], sys.argv[3], sys.argv[4])
elif sys.argv[1] == "form":
    form(sys.argv[2])
elif sys.argv[1] == "fields":
    fields(sys.argv[2])
elif sys.argv[1] == "meta":
    meta(sys.argv[2])
elif sys.argv[1] == "cms":
    judge_cms(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
else:
    judge(sys.argv[2], sys.argv[3:])
