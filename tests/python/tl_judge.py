"""The outside judge of Parafa's trusted list (tests/api/trusted_list.rs): pyHanko 0.38's own trusted-list code.

    tl_judge.py TL_XML OPERATOR_CERT [PDF]

`trust_list_to_registry` parses the list (ETSI TS 119 612) and verifies its XAdES signature against the scheme
operator's certificate (signxml underneath); with a PDF, each of its signatures is validated with that registry as
the only source of trust (`TSPTrustManager`), and pyHanko's `QualificationAssessor` says what the signer's
certificate and the signature timestamp's TSA are. Prints one JSON object; exits 1 when the list is refused.
"""

import asyncio
import json
import sys

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.ades import ades_with_time_validation
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.policy_decl import (
    QualificationRequirements,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.qualified.eutl_parse import trust_list_to_registry
from pyhanko.sign.validation.qualified.tsp import TSPTrustManager
from pyhanko_certvalidator.authority import TrustedServiceType
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy


def status_json(qualification):
    if qualification is None:
        return None
    status = qualification.status
    sd = qualification.service_definition
    return {
        "qualified": status.qualified,
        "type": status.qc_type.name,
        "key": status.qc_key_security.name,
        "service": sd.base_info.service_name if sd else None,
        "service_type": sd.base_info.service_type if sd else None,
    }


async def judge_pdf(path, registry):
    spec = SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=TSPTrustManager(registry),
            revinfo_policy=CertRevTrustPolicy(NO_REVOCATION),
        ),
        qualification_requirements=QualificationRequirements(),
        ts_qualification_requirements=QualificationRequirements(
            permit_cert_types=None,
            require_service_type=TrustedServiceType.TIME_STAMPING_AUTHORITY,
        ),
    )
    out = []
    with open(path, "rb") as f:
        reader = PdfFileReader(f)
        for sig in reader.embedded_regular_signatures:
            result = await ades_with_time_validation(
                sig.signed_data, validation_spec=spec, raw_digest=sig.compute_digest()
            )
            status = result.api_status
            ts = getattr(status, "timestamp_validity", None)
            out.append(
                {
                    "field": sig.field_name,
                    "ades": str(result.ades_subindic),
                    "failure": result.failure_msg,
                    "signer": status_json(getattr(status, "qualification_result", None)),
                    "timestamp": status_json(getattr(ts, "qualification_result", None)) if ts else None,
                    "timestamp_trusted": bool(ts and ts.trusted),
                }
            )
    return out


def strict_parse(tl_xml):
    """The schema checks within reach, as an error message or None. No package carries the TS 119 612 XSD, so the
    list without its signature is read by the data classes pyHanko generated from that schema, failing on any
    element, attribute or value they do not know (names, namespaces, nesting, value types; not the order of
    siblings). Those classes predate EN 319 132's SigningCertificateV2, so the signature's QualifyingProperties
    are validated instead against the XAdES 1.3.2 (2016) XSD that signxml ships, with lxml."""
    import os

    import signxml
    from lxml import etree
    from pyhanko.generated.etsi import ts_119612
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.parsers.config import ParserConfig

    root = etree.fromstring(tl_xml.encode("utf-8"))
    ds = "{http://www.w3.org/2000/09/xmldsig#}"
    signature = root.find(f"{ds}Signature")
    if signature is None:
        return "the list has no signature"
    props = signature.find(f"{ds}Object/{{http://uri.etsi.org/01903/v1.3.2#}}QualifyingProperties")
    if props is None:
        return "the signature has no XAdES QualifyingProperties"
    xsd = os.path.join(os.path.dirname(signxml.__file__), "xades", "schemas", "XAdES01903v132-201601.xsd")
    schema = etree.XMLSchema(etree.parse(xsd))
    if not schema.validate(props):
        return f"XAdES: {schema.error_log.last_error}"
    root.remove(signature)
    tl_xml = etree.tostring(root, encoding="unicode")

    parser = XmlParser(
        config=ParserConfig(
            fail_on_unknown_properties=True,
            fail_on_unknown_attributes=True,
            fail_on_converter_warnings=True,
        )
    )
    try:
        parser.from_string(tl_xml, clazz=ts_119612.TrustServiceStatusList)
        return None
    except Exception as e:  # noqa: BLE001 -- any refusal is the answer
        return f"{type(e).__name__}: {e}"


def main():
    tl_path, cert_path = sys.argv[1], sys.argv[2]
    with open(tl_path, "r", encoding="utf-8") as f:
        tl_xml = f.read()
    operator = load_cert_from_pemder(cert_path)
    try:
        registry, errors = trust_list_to_registry(tl_xml, tlso_certs=[operator])
    except SignatureValidationError as e:
        print(json.dumps({"list_valid": False, "error": e.failure_message}))
        sys.exit(1)
    report = {
        "list_valid": True,
        "schema_error": strict_parse(tl_xml),
        "parse_errors": [str(e) for e in errors],
        "cas": [ca.name.human_friendly for ca in registry.known_certificate_authorities],
    }
    if len(sys.argv) > 3:
        report["signatures"] = asyncio.run(judge_pdf(sys.argv[3], registry))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
