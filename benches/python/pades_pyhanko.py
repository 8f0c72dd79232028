"""The pyHanko side of `cargo bench --bench documents`: what a user would otherwise run on their own machine.

  make-pdf OUT BYTES PAGES SEED    a valid PDF of about BYTES bytes: PAGES pages, each with a line of text and an
                                   incompressible RGB image (a scan, in effect)
  selfsign MODULE TOKEN PIN LABEL OUT
                                   a self-signed certificate (DER) for the token's key LABEL, signed on the token
  worker MODULE TOKEN PIN          a signing worker: one PKCS#11 session, commands as JSON lines on stdin (below)
  check PDF AT ROOT...             pyHanko's verdict on a signed PDF as of the Unix time AT, as JSON (trusting the
                                   ROOT certificates)

The worker reads one JSON command per line, {"key": LABEL, "pdf": PATH, "tsa": URL|null, "tsa_auth": [EMAIL, PASSWORD],
"secs": S, "out": PATH|null},
signs the file once (untimed: loads the key and, for B-T, fetches the timestamper's size estimate), writing that
output to "out" when given, prints {"ready": true}, waits for a line "go", then signs the same file again and again
for S seconds, in memory, and prints {"count": N, "secs": ELAPSED}. Each signature is PAdES B-B (no timestamp) or,
with "tsa", B-T (a signature timestamp from that RFC 3161 URL): an incremental update of the unsigned file, keys and
signing on the token through PKCS#11 (pyHanko's PKCS11Signer), sequentially in this process.
"""
import hashlib
import io
import json
import logging
import random
import sys
import time


def make_pdf(out, size, pages, seed):
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    rng = random.Random(seed)
    w = PdfFileWriter()
    font = w.add_object(generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Font"),
        generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
        generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
    }))
    # Each page's image takes an equal share of the size (minus a little for the structure), as RGB samples.
    per_page = max(3 * 16, (size - 1200 - 400 * pages) // pages)
    side = max(4, int((per_page / 3) ** 0.5))
    for i in range(pages):
        height = max(1, per_page // (3 * side))
        samples = rng.randbytes(3 * side * height)
        image = w.add_object(generic.StreamObject({
            generic.NameObject("/Type"): generic.NameObject("/XObject"),
            generic.NameObject("/Subtype"): generic.NameObject("/Image"),
            generic.NameObject("/Width"): generic.NumberObject(side),
            generic.NameObject("/Height"): generic.NumberObject(height),
            generic.NameObject("/ColorSpace"): generic.NameObject("/DeviceRGB"),
            generic.NameObject("/BitsPerComponent"): generic.NumberObject(8),
        }, stream_data=samples))
        text = f"BT /F1 18 Tf 72 770 Td (Contract page {i + 1} of {pages}) Tj ET q 451 0 0 600 72 120 cm /Im1 Do Q"
        contents = w.add_object(generic.StreamObject(stream_data=text.encode()))
        resources = generic.DictionaryObject({
            generic.NameObject("/Font"): generic.DictionaryObject({generic.NameObject("/F1"): font}),
            generic.NameObject("/XObject"): generic.DictionaryObject({generic.NameObject("/Im1"): image}),
        })
        w.insert_page(PageObject(contents=contents, media_box=(0, 0, 595, 842), resources=resources))
    buf = io.BytesIO()
    w.write(buf)
    with open(out, "wb") as f:
        f.write(buf.getvalue())


def open_session(module, token, pin):
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import open_pkcs11_session

    return open_pkcs11_session(module, token_criteria=TokenCriteria(label=token), user_pin=pin)


def selfsign(module, token, pin, label, out):
    """A self-signed certificate for the key pair LABEL, its signature made on the token."""
    from datetime import datetime, timedelta, timezone

    from asn1crypto import keys, x509
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature
    from pkcs11.util.rsa import encode_rsa_public_key

    session = open_session(module, token, pin)
    public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
    private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
    if public.key_type == KeyType.RSA:
        spki = keys.PublicKeyInfo({
            "algorithm": {"algorithm": "rsa"},
            "public_key": keys.RSAPublicKey.load(encode_rsa_public_key(public)),
        })
        algo, mechanism = "sha256_rsa", Mechanism.SHA256_RSA_PKCS
    else:
        spki = keys.PublicKeyInfo.load(encode_ec_public_key(public))
        # SoftHSM2 2.6 offers raw ECDSA only: the digest is made here.
        algo, mechanism = "sha256_ecdsa", Mechanism.ECDSA
    name = x509.Name.build({"common_name": f"pyHanko bench {label}", "organization_name": "Parafa bench",
                            "country_name": "RO"})
    now = datetime.now(timezone.utc).replace(microsecond=0)
    tbs = x509.TbsCertificate({
        "version": "v3",
        "serial_number": random.getrandbits(63),
        "signature": {"algorithm": algo},
        "issuer": name,
        "validity": {"not_before": x509.Time({"utc_time": now - timedelta(days=1)}),
                     "not_after": x509.Time({"utc_time": now + timedelta(days=3650)})},
        "subject": name,
        "subject_public_key_info": spki,
        "extensions": [
            {"extn_id": "key_usage", "critical": True,
             "extn_value": x509.KeyUsage({"digital_signature", "non_repudiation"})},
        ],
    })
    if public.key_type == KeyType.RSA:
        signature = private.sign(tbs.dump(), mechanism=mechanism)
    else:
        signature = encode_ecdsa_signature(private.sign(hashlib.sha256(tbs.dump()).digest(), mechanism=mechanism))
    cert = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": {"algorithm": algo},
                             "signature_value": signature})
    with open(out, "wb") as f:
        f.write(cert.dump())
    session.close()


def worker(module, token, pin):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.pkcs11 import PKCS11Signer
    from pyhanko.sign.timestamps import HTTPTimeStamper

    session = open_session(module, token, pin)
    # The bench waits for this line: a process that could not open the token (seen when eight start at once) is
    # started again.
    print(json.dumps({"started": True}), flush=True)
    signer_of = {}
    meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=SigSeedSubFilter.PADES,
                                        md_algorithm="sha256")

    def sign_once(data, signer, stamper):
        out = io.BytesIO()
        signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)), meta, signer=signer, timestamper=stamper,
                         output=out)
        return out.getvalue()

    for line in sys.stdin:
        cmd = json.loads(line)
        label = cmd["key"]
        # SoftHSM2 2.6 has no CKM_ECDSA_SHA256: for an EC key pyHanko hashes and asks for raw ECDSA (its documented
        # option for such tokens, `--raw-mechanism` on its command line).
        raw = label.startswith("p256") or label.startswith("ec")

        def new_signer():
            return PKCS11Signer(session, key_label=label, cert_label=label, use_raw_mechanism=raw)

        if label not in signer_of:
            signer_of[label] = new_signer()
        stamper = None
        if cmd.get("tsa"):
            # A timestamper for each measurement (its untimed first signature makes pyHanko's size estimate, a real
            # timestamp). POST /tsa is paid: the timestamper sends the bench account's CSC bearer token
            # (HTTPTimeStamper's extra headers), fresh for each round.
            bearer = cmd.get("tsa_bearer")
            headers = {"Authorization": "Bearer " + bearer} if bearer else None
            stamper = HTTPTimeStamper(cmd["tsa"], headers=headers)
        # A raw-mechanism signer reused for timestamped signatures builds deeper ASN.1 at each one (py-spy: its size
        # estimate dumping ever more nested SETs; seconds per signature after a few dozen): those get a fresh
        # signer each time, as a user signing one file after another would.
        fresh = raw and stamper is not None

        def signer():
            return new_signer() if fresh else signer_of[label]

        with open(cmd["pdf"], "rb") as f:
            data = f.read()
        first = sign_once(data, signer(), stamper)
        if cmd.get("out"):
            with open(cmd["out"], "wb") as f:
                f.write(first)
        print(json.dumps({"ready": True}), flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        count = 0
        start = time.perf_counter()
        deadline = start + float(cmd["secs"])
        while time.perf_counter() < deadline:
            sign_once(data, signer(), stamper)
            count += 1
        print(json.dumps({"count": count, "secs": time.perf_counter() - start}), flush=True)


def check(pdf, at, roots):
    from datetime import datetime, timezone

    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    trust = [load_cert_from_pemder(r) for r in roots]
    with open(pdf, "rb") as f:
        reader = PdfFileReader(io.BytesIO(f.read()))
    report = []
    for sig in reader.embedded_signatures:
        # As of the server's time: the bench moves the server's clock ahead (fresh TOTP codes), and the holders'
        # certificates issued meanwhile are valid from then on.
        vc = ValidationContext(trust_roots=trust, allow_fetching=False,
                               moment=datetime.fromtimestamp(int(at), timezone.utc))
        status = validate_pdf_signature(sig, vc)
        ts = getattr(status, "timestamp_validity", None)
        report.append({
            "intact": status.intact,
            "valid": status.valid,
            "trusted": status.trusted,
            "coverage": status.coverage.name,
            "signature_timestamp": ts is not None and ts.intact and ts.valid,
            "signature_timestamp_trusted": ts is not None and ts.trusted,
        })
    print(json.dumps({"signatures": report}))


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    what, args = sys.argv[1], sys.argv[2:]
    if what == "make-pdf":
        make_pdf(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif what == "selfsign":
        selfsign(*args[:5])
    elif what == "worker":
        worker(*args[:3])
    elif what == "check":
        check(args[0], args[1], args[2:])
    else:
        sys.exit(f"unknown command {what}")
