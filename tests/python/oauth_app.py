#!/usr/bin/env python3
"""A third-party application that signs through Parafa without ever seeing the holder's password (issue 16),
written with Authlib's OAuth 2.0 client (driven by tests/api/oauth.rs).

It is a native app in the RFC 8252 way: a public client that listens on a loopback port for the redirect. It builds
the authorization URL with PKCE (S256) with Authlib, hands it to the holder's browser (headless Chromium driven by
tests/e2e/oauth.mjs: login, TOTP, the consent page, Allow), receives the code on its loopback redirect, and lets
Authlib check the state and exchange the code. Then, by the scope asked:

- ``service``: prints the token (``token <json>``), which the test hands to pyHanko's CSC signer;
- ``credential`` (scope parameters) or ``rar`` (RFC 9396 authorization_details): the approval is bound to the
  SHA-256 of ``--document``; it signs that digest through signatures/signHash with the token alone (no SAD) and
  prints ``signature <base64>`` for the test to verify with openssl.

On any failure it exits non-zero with a message.
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

SHA256_OID = "2.16.840.1.101.3.4.2.1"
SHA256_RSA = "1.2.840.113549.1.1.11"


class Callback(http.server.BaseHTTPRequestHandler):
    """The loopback redirect: keeps the URL the browser was sent to."""

    received = None

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        # Only the redirect: the browser asks for /favicon.ico afterwards.
        if self.path.startswith("/callback?"):
            Callback.received = f"http://127.0.0.1:{self.server.server_port}{self.path}"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"You can close this window and return to the application.")

    def log_message(self, *_args):
        pass


def browser(url: str, args) -> None:
    """The holder's browser: logs in, allows on the consent page, follows the redirect to our loopback port."""
    env = dict(os.environ, OAUTH_URL=url)
    out = subprocess.run(["node", args.browser_script], env=env, capture_output=True, text=True, timeout=120)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"the browser failed:\n{out.stdout}\n{out.stderr}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--mode", choices=["service", "credential", "rar"], required=True)
    p.add_argument("--credential-id")
    p.add_argument("--document", help="the file whose SHA-256 the credential token may sign")
    p.add_argument("--browser-script", required=True)
    args = p.parse_args()

    server = http.server.HTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{server.server_port}/callback"

    extra = {}
    scope = "service"
    digest = None
    if args.mode != "service":
        digest = hashlib.sha256(Path(args.document).read_bytes()).digest()
        b64 = base64.b64encode(digest).decode()
        if args.mode == "credential":
            scope = "credential"
            extra = {
                "credentialID": args.credential_id,
                "numSignatures": "1",
                "hashes": b64,
                "hashAlgorithmOID": SHA256_OID,
            }
        else:
            scope = None
            extra = {
                "authorization_details": json.dumps(
                    [
                        {
                            "type": "credential",
                            "credentialID": args.credential_id,
                            "hashAlgorithmOID": SHA256_OID,
                            "documentDigests": [{"hash": b64, "label": Path(args.document).name}],
                        }
                    ]
                )
            }

    client = OAuth2Session(
        client_id=args.client_id,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    url, state = client.create_authorization_url(
        f"{args.base}/oauth2/authorize", code_verifier=verifier, lang="en", **extra
    )
    browser(url, args)
    server.shutdown()
    if not Callback.received:
        raise SystemExit("the browser never came back to the redirect URI")
    if "error=" in Callback.received:
        raise SystemExit(f"the authorization server refused: {Callback.received}")
    # Authlib checks the state against the one it made, and sends the verifier.
    token = client.fetch_token(
        f"{args.base}/oauth2/token",
        authorization_response=Callback.received,
        code_verifier=verifier,
        state=state,
    )
    if token.get("token_type") != "Bearer" or token.get("scope") != ("service" if args.mode == "service" else "credential"):
        raise SystemExit(f"unexpected token response: {token}")
    if args.mode == "service":
        print("token " + json.dumps(token))
        return 0

    r = requests.post(
        f"{args.base}/csc/v2/signatures/signHash",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        json={
            "credentialID": args.credential_id,
            "hashes": [base64.b64encode(digest).decode()],
            "hashAlgorithmOID": SHA256_OID,
            "signAlgo": SHA256_RSA,
        },
        timeout=60,
    )
    if r.status_code != 200:
        raise SystemExit(f"signHash with the credential token: {r.status_code} {r.text}")
    print("signature " + r.json()["signatures"][0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
