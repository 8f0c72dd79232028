"""Schemathesis hooks for tests/api/contract.rs (loaded through SCHEMATHESIS_HOOKS).

POST /pki/ocsp and POST /tsa take DER bodies under their own media types (RFC 6960 application/ocsp-request,
RFC 3161 application/timestamp-query), which schemathesis has no serializer for: they are sent as the raw bytes
generated for their `type: string, format: binary` schema, as application/octet-stream bodies are.
"""

import schemathesis

schemathesis.serializer.alias(["application/ocsp-request", "application/timestamp-query"], "application/octet-stream")
