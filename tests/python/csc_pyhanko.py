#!/usr/bin/env python3
"""pyHanko as the outside judge of Parafa's CSC v1 API (driven by tests/api/pyhanko.rs).

Makes a one-page PDF with pyHanko's own writer, signs it as a PAdES signature with
``pyhanko.sign.signers.csc_signer.CSCSigner`` through ``<base>/csc/v1`` (credentials/info, then per signature
credentials/authorize with the hash and a fresh TOTP code, then signatures/signHash), writes the signed PDF and
validates it with pyHanko against the given root CA, fetching nothing.

Every authorisation first moves the server's clock on by one TOTP step (30 s, in the clock-offset file the test
server reads), because the server takes each code only for a time step later than the last one used.

On success it prints one line per signed file, ``signed <path> <mechanism> <md>``, and ``signatures <n>`` (and the
CSC requests it made on standard error); on any failure it exits non-zero with a message and those requests.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import io
import json
import struct
import sys
import time
from pathlib import Path

import aiohttp
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationInfo,
    CSCAuthorizationManager,
    CSCServiceSessionInfo,
    CSCSigner,
    fetch_certs_in_csc_credential,
)
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

TOTP_STEP = 30


class Failure(Exception):
    """A check that failed: the message says what and why."""


def totp(secret_b32: str, unix_time: int) -> str:
    """RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, base32 secret."""
    secret_b32 = secret_b32.strip().replace(" ", "").upper()
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", unix_time // TOTP_STEP), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


class ServerClock:
    """The test server's clock: real time plus the offset in the clock file."""

    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> int:
        return int(self.path.read_text().strip())

    def advance(self, secs: int) -> None:
        self.path.write_text(str(self.offset() + secs))

    def now(self) -> int:
        return int(time.time()) + self.offset()


class Trace:
    """Every request pyHanko's aiohttp session makes: method, URL, JSON body, status, and the answer of a failure
    (pyHanko itself never reads an error body)."""

    def __init__(self):
        self.calls = []

    def config(self) -> aiohttp.TraceConfig:
        tc = aiohttp.TraceConfig()

        async def on_start(_session, ctx, params):
            ctx.call = {"method": params.method, "url": str(params.url), "body": b""}
            self.calls.append(ctx.call)

        async def on_chunk(_session, ctx, params):
            ctx.call["body"] += params.chunk

        async def on_end(_session, ctx, params):
            ctx.call["status"] = params.response.status
            if params.response.status >= 300:
                try:
                    ctx.call["answer"] = (await params.response.read()).decode("utf-8", "replace")
                except Exception as e:  # noqa: BLE001 - only for the report
                    ctx.call["answer"] = f"<unreadable: {e}>"

        tc.on_request_start.append(on_start)
        tc.on_request_chunk_sent.append(on_chunk)
        tc.on_request_end.append(on_end)
        return tc

    def bodies(self, endpoint: str) -> list:
        out = []
        for c in self.calls:
            if c["url"].endswith(endpoint):
                out.append(json.loads(c["body"] or b"null"))
        return out

    def report(self) -> str:
        lines = []
        for c in self.calls:
            body = c["body"].decode("utf-8", "replace")
            if len(body) > 400:
                body = body[:400] + "…"
            line = f"  {c['method']} {c['url']} -> {c.get('status', 'no answer')}\n    sent: {body}"
            if "answer" in c:
                line += f"\n    answer: {c['answer']}"
            lines.append(line)
        return "\n".join(lines) or "  (no requests)"


class TotpAuthorizationManager(CSCAuthorizationManager):
    """Authorises each signature with a fresh TOTP code in `OTP` and the exact hashes in `hash` (SCAL 2)."""

    def __init__(self, session_info, credential_info, http, secret, clock):
        super().__init__(session_info, credential_info)
        self.http = http
        self.secret = secret
        self.clock = clock
        self.authorisations = 0

    async def authorize_signature(self, hash_b64s: list) -> CSCAuthorizationInfo:
        # The next code of the authenticator app: a time step after the last one the server took.
        self.clock.advance(TOTP_STEP)
        code = totp(self.secret, self.clock.now())
        body = self.format_csc_auth_request(hash_b64s=hash_b64s, otp=code, description="pyHanko end-to-end test")
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self.http.post(url, headers=self.auth_headers, json=body) as resp:
            if resp.status != 200:
                raise SigningError(f"credentials/authorize answered {resp.status}: {await resp.text()}")
            data = await resp.json()
        self.authorisations += 1
        return self.parse_csc_auth_response(data)


def unsigned_pdf() -> bytes:
    """A one-page PDF with a line of text, made with pyHanko's writer."""
    w = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): w.add_object(font)})}
    )
    text = b"BT /F1 18 Tf 72 720 Td (Parafa end-to-end test: signed by pyHanko) Tj ET"
    content = generic.StreamObject(stream_data=text)
    w.insert_page(PageObject(contents=w.add_object(content), media_box=[0, 0, 595, 842], resources=resources))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


async def sign_one(args, http, session_info, cred_info, clock, pss: bool, out: Path) -> None:
    auth = TotpAuthorizationManager(session_info, cred_info, http, args.totp_secret, clock)
    signer = CSCSigner(http, auth_manager=auth, prefer_pss=pss)
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="Parafa end-to-end test",
        location="Bucharest",
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(unsigned_pdf()))
    signed = io.BytesIO()
    timestamper = None
    if args.tsa_user:
        # PAdES B-T: the signature timestamp from Parafa's POST /tsa, which is paid: HTTP Basic with the holder's
        # e-mail and password, as pyHanko's HTTPTimeStamper sends to any TSA that asks.
        from pyhanko.sign.timestamps import HTTPTimeStamper

        timestamper = HTTPTimeStamper(args.base.rstrip("/") + "/tsa", auth=(args.tsa_user, args.tsa_password))
    try:
        await signers.async_sign_pdf(writer, meta, signer=signer, timestamper=timestamper, output=signed)
    except Exception as e:
        cause = f" (cause: {e.__cause__!r})" if e.__cause__ else ""
        raise Failure(f"pyHanko could not sign{' with RSA-PSS' if pss else ''}: {e!r}{cause}") from e
    if auth.authorisations != 1:
        raise Failure(f"expected exactly one credentials/authorize call, pyHanko made {auth.authorisations}")
    out.write_bytes(signed.getvalue())


def validate(path: Path, root, pss: bool, key: str, timestamped: bool) -> str:
    data = path.read_bytes()
    reader = PdfFileReader(io.BytesIO(data))
    sigs = reader.embedded_signatures
    if len(sigs) != 1:
        raise Failure(f"{path}: expected one signature, found {len(sigs)}")
    sig = sigs[0]
    subfilter = sig.sig_object.get("/SubFilter")
    if subfilter != "/ETSI.CAdES.detached":
        raise Failure(f"{path}: /SubFilter is {subfilter}, not /ETSI.CAdES.detached (PAdES)")
    vc = ValidationContext(trust_roots=[root], allow_fetching=False)
    status = validate_pdf_signature(sig, vc)
    summary = status.pretty_print_details()
    problems = []
    if not status.intact:
        problems.append("not intact (the signed digest does not match the document)")
    if not status.valid:
        problems.append("not valid (the signature value does not verify)")
    if not status.trusted:
        problems.append(f"not trusted to our root ({status.trust_problem_indic})")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        problems.append(f"does not cover the whole file ({status.coverage})")
    if not status.bottom_line:
        problems.append("bottom line is not OK")
    if timestamped:
        ts = status.timestamp_validity
        if ts is None or not (ts.intact and ts.valid and ts.trusted):
            problems.append(f"the signature timestamp is missing or not trusted to our root ({ts})")
    expected = "rsassa_pss" if pss else ("sha256_rsa" if key == "rsa" else "sha256_ecdsa")
    if status.pkcs7_signature_mechanism != expected:
        problems.append(f"mechanism is {status.pkcs7_signature_mechanism}, expected {expected}")
    if status.md_algorithm != "sha256":
        problems.append(f"digest is {status.md_algorithm}, expected sha256")
    if problems:
        raise Failure(f"{path}: pyHanko's validation failed: {'; '.join(problems)}\n{summary}")
    return f"{status.pkcs7_signature_mechanism} {status.md_algorithm}"


def check_requests(trace: Trace, signatures: int) -> None:
    """What pyHanko sent: hash-bound authorisations with the code in OTP, signHash with the same hashes."""
    auths = trace.bodies("/csc/v1/credentials/authorize")
    signs = trace.bodies("/csc/v1/signatures/signHash")
    if len(auths) != signatures or len(signs) != signatures:
        raise Failure(f"expected {signatures} authorize and signHash calls, saw {len(auths)} and {len(signs)}")
    for a, s in zip(auths, signs):
        if not a.get("hash") or a.get("numSignatures") != len(a["hash"]) or not a.get("OTP"):
            raise Failure(f"credentials/authorize lacked hash, numSignatures or OTP: {a}")
        if s.get("hash") != a["hash"]:
            raise Failure(f"signHash hashes {s.get('hash')} differ from the authorised {a['hash']}")


async def sign_all(args) -> list:
    """Signs one PDF per run (PKCS#1 v1.5 or ECDSA, then RSASSA-PSS when asked); returns [(pss, path)]."""
    clock = ServerClock(Path(args.clock_file))
    out_dir = Path(args.out_dir)
    trace = Trace()
    session_info = CSCServiceSessionInfo(
        service_url=args.base.rstrip("/"),
        credential_id=args.credential_id,
        oauth_token=args.token,
        api_ver="v1",
    )
    runs = [(False, out_dir / f"signed-{args.key}.pdf")]
    if args.pss:
        runs.append((True, out_dir / f"signed-{args.key}-pss.pdf"))
    async with aiohttp.ClientSession(trace_configs=[trace.config()]) as http:
        try:
            cred_info = await fetch_certs_in_csc_credential(http, session_info)
            if not cred_info.hash_pinning_required:
                raise Failure("credentials/info did not say SCAL 2: pyHanko would not pin hashes")
            for pss, out in runs:
                await sign_one(args, http, session_info, cred_info, clock, pss, out)
            check_requests(trace, len(runs))
        except (Failure, SigningError, aiohttp.ClientError) as e:
            raise Failure(f"{e}\nCSC requests made:\n{trace.report()}") from e
    print(f"CSC requests made:\n{trace.report()}", file=sys.stderr, flush=True)
    return runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True, help="the server, http://127.0.0.1:PORT (the API is <base>/csc/v1)")
    p.add_argument("--token", required=True, help="CSC bearer token from auth/login")
    p.add_argument("--credential-id", required=True)
    p.add_argument("--totp-secret", required=True, help="base32 TOTP secret of the holder")
    p.add_argument("--clock-file", required=True, help="the server's clock-offset file (PARAFA_TEST_CLOCK_FILE)")
    p.add_argument("--root", required=True, help="root CA certificate (PEM) to trust")
    p.add_argument("--out-dir", required=True, help="where the signed PDFs go")
    p.add_argument("--key", choices=["rsa", "ecdsa"], required=True, help="the credential's key type")
    p.add_argument("--pss", action="store_true", help="also sign with RSASSA-PSS (prefer_pss=True)")
    p.add_argument("--tsa-user", help="B-T: the e-mail that authenticates to <base>/tsa (HTTP Basic)")
    p.add_argument("--tsa-password", help="B-T: its password")
    args = p.parse_args()
    try:
        runs = asyncio.run(sign_all(args))
        # validate_pdf_signature runs its own event loop: validate after signing's loop has closed.
        root = load_cert_from_pemder(args.root)
        for pss, out in runs:
            print(f"signed {out} {validate(out, root, pss, args.key, bool(args.tsa_user))}", flush=True)
        print(f"signatures {len(runs)}", flush=True)
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
