"""An outside judge of CAdES `.p7s` files (EN 319 122-1 baseline levels), for tests/api/sign_doc.rs.

`structure P7S [CONTENT]` decodes the file with pyasn1-modules' RFC 5652 module (RFC 5940 for OCSP responses in
SignedData.crls, RFC 5126 for the ETSI attributes) and prints JSON: what SignedData.certificates and .crls hold,
the signer's unsigned attributes, and, for an archive-time-stamp-v3 (B-LTA), whether its ats-hash-index-v3 and its
message imprint are what EN 319 122-1 §5.5.2/§5.5.3 make of the file (recomputed here, independently of Parafa).
CONTENT is the signed document of a detached signature.

`validate P7S ROOT [CONTENT]` has pyHanko validate the signature with only what the file carries: the trust anchor
ROOT, the certificates, CRLs and OCSP responses of SignedData, no fetching, revocation checking hard-fail (a
certificate without revocation data in the file fails). The signature timestamp is validated with it, and the
archive timestamp too when there is one.

`drop-crl P7S OUT` writes the file less the first CRL of SignedData.crls, re-encoded (what a careless archive would
do to a B-LTA file: the archive timestamp no longer covers what the file holds).

PARAFA_JUDGE_AT (Unix seconds) sets the validation time, else now."""
import asyncio
import datetime
import hashlib
import json
import os
import sys

from pyasn1.codec.der import decoder as der_decoder, encoder as der_encoder
from pyasn1.type import namedtype, univ
from pyasn1_modules import rfc3161, rfc5126, rfc5280, rfc5652, rfc5940, rfc6960

ID_RI_OCSP_RESPONSE = rfc5940.id_ri_ocsp_response
ID_AA_ETS_ARCHIVE_TIMESTAMP_V3 = univ.ObjectIdentifier("0.4.0.1733.2.4")
ID_AA_ATS_HASH_INDEX_V3 = univ.ObjectIdentifier("0.4.0.19122.1.5")
HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


class ATSHashIndexV3(univ.Sequence):
    """EN 319 122-1 Annex D (no DEFAULT on hashIndAlgorithm)."""
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("hashIndAlgorithm", rfc5280.AlgorithmIdentifier()),
        namedtype.NamedType("certificatesHashIndex", univ.SequenceOf(componentType=univ.OctetString())),
        namedtype.NamedType("crlsHashIndex", univ.SequenceOf(componentType=univ.OctetString())),
        namedtype.NamedType("unsignedAttrValuesHashIndex", univ.SequenceOf(componentType=univ.OctetString())),
    )


def decode(der, spec):
    value, rest = der_decoder.decode(der, asn1Spec=spec)
    if rest:
        raise ValueError(f"{len(rest)} bytes after the {type(spec).__name__}")
    return value


def signed_data_of(der):
    info = decode(der, rfc5652.ContentInfo())
    if info["contentType"] != rfc5652.id_signedData:
        raise ValueError(f"not a SignedData: {info['contentType']}")
    return decode(bytes(info["content"]), rfc5652.SignedData())


def digest(name, data):
    return hashlib.new(name, data).digest()


def unsigned_attrs(signer):
    attrs = signer["unsignedAttrs"]
    return list(attrs) if attrs.isValue else []


def archive_check(sd, signer, ats, content):
    """Recomputes the ats-hash-index-v3 and the message imprint of one archive-time-stamp-v3 (EN 319 122-1)."""
    token = signed_data_of(der_encoder.encode(ats))
    tst_info = decode(bytes(token["encapContentInfo"]["eContent"]), rfc3161.TSTInfo())
    hash_name = HASHES[str(tst_info["messageImprint"]["hashAlgorithm"]["algorithm"])]
    token_signer = token["signerInfos"][0]
    indexes = [a for a in unsigned_attrs(token_signer) if a["attrType"] == ID_AA_ATS_HASH_INDEX_V3]
    if len(indexes) != 1 or len(indexes[0]["attrValues"]) != 1:
        return {"hash_index": False, "imprint": False, "why": "not exactly one ats-hash-index-v3 value"}
    index_der = der_encoder.encode(indexes[0]["attrValues"][0])
    index = decode(index_der, ATSHashIndexV3())

    # §5.5.2: one hash per CertificateChoices, per RevocationInfoChoice, and per value of every unsigned attribute
    # (attrType || value) as they were when the archive timestamp was asked for: all but the archive timestamp.
    certs = [digest(hash_name, der_encoder.encode(c)) for c in sd["certificates"]] if sd["certificates"].isValue else []
    crls = [digest(hash_name, der_encoder.encode(c)) for c in sd["crls"]] if sd["crls"].isValue else []
    values = []
    for a in unsigned_attrs(signer):
        if a["attrType"] == ID_AA_ETS_ARCHIVE_TIMESTAMP_V3:
            continue
        for v in a["attrValues"]:
            values.append(digest(hash_name, der_encoder.encode(a["attrType"]) + der_encoder.encode(v)))
    same_algorithm = str(index["hashIndAlgorithm"]["algorithm"]) == str(
        tst_info["messageImprint"]["hashAlgorithm"]["algorithm"])
    listed = lambda field: sorted(bytes(h) for h in index[field])
    hash_index = same_algorithm and (listed("certificatesHashIndex"), listed("crlsHashIndex"),
                                     listed("unsignedAttrValuesHashIndex")) == (
        sorted(certs), sorted(crls), sorted(values))

    # §5.5.3: eContentType || hash of the signed content || the SignerInfo's version, sid, digestAlgorithm,
    # signedAttrs, signatureAlgorithm, signature || the ATSHashIndexV3.
    econtent = sd["encapContentInfo"]["eContent"]
    data = bytes(econtent) if econtent.isValue else content
    fields = b"".join(der_encoder.encode(signer[f]) for f in (
        "version", "sid", "digestAlgorithm", "signedAttrs", "signatureAlgorithm", "signature"))
    imprint_input = (der_encoder.encode(sd["encapContentInfo"]["eContentType"]) + digest(hash_name, data)
                     + fields + index_der)
    imprint = digest(hash_name, imprint_input)
    return {
        "hash_index": hash_index,
        "imprint": imprint == bytes(tst_info["messageImprint"]["hashedMessage"]),
        "entries": [len(index["certificatesHashIndex"]), len(index["crlsHashIndex"]),
                    len(index["unsignedAttrValuesHashIndex"])],
        "imprint_hex": imprint.hex(),
        "hash": hash_name,
    }


def structure(p7s, content=None):
    with open(p7s, "rb") as f:
        der = f.read()
    sd = signed_data_of(der)
    signer = sd["signerInfos"][0]
    crls, ocsps = 0, 0
    for choice in (sd["crls"] if sd["crls"].isValue else []):
        if choice.getName() == "crl":
            crls += 1
        elif choice["other"]["otherRevInfoFormat"] == ID_RI_OCSP_RESPONSE:
            response = decode(der_encoder.encode(choice["other"]["otherRevInfo"]), rfc6960.OCSPResponse())
            if int(response["responseStatus"]) == 0:
                ocsps += 1
    attrs = unsigned_attrs(signer)
    oids = [str(a["attrType"]) for a in attrs]
    report = {
        "version": int(sd["version"]),
        "certificates": len(sd["certificates"]) if sd["certificates"].isValue else 0,
        "crls": crls,
        "ocsp_responses": ocsps,
        "unsigned": oids,
        "certificate_values": str(rfc5126.id_aa_ets_certValues) in oids,
        "revocation_values": str(rfc5126.id_aa_ets_revocationValues) in oids,
        "archive_timestamps": [],
    }
    for a in attrs:
        if a["attrType"] == rfc5126.id_aa_ets_revocationValues:
            # RFC 5126's module is EXPLICIT TAGS: a value that does not decode under it is not a RevocationValues.
            for v in a["attrValues"]:
                try:
                    decode(der_encoder.encode(v), rfc5126.RevocationValues())
                except Exception as e:
                    sys.exit(f"revocation-values does not decode under RFC 5126's module: {str(e)[:200]}")
        if a["attrType"] == ID_AA_ETS_ARCHIVE_TIMESTAMP_V3:
            for v in a["attrValues"]:
                ats = decode(der_encoder.encode(v), rfc5126.ArchiveTimeStampToken())
                report["archive_timestamps"].append(archive_check(sd, signer, ats, content))
    print(json.dumps(report))


def moment():
    at = os.environ.get("PARAFA_JUDGE_AT")
    return datetime.datetime.fromtimestamp(int(at), tz=datetime.timezone.utc) if at else None


def validate(p7s, root, content=None):
    from asn1crypto import cms
    from pyhanko.keys import load_cert_from_pemder
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms, validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus
    from pyhanko_certvalidator import ValidationContext

    with open(p7s, "rb") as f:
        der = f.read()
    signed_data = cms.ContentInfo.load(der)["content"]
    certs = [c.chosen for c in signed_data["certificates"] if c.name == "certificate"]
    crls, ocsps = [], []
    for choice in signed_data["crls"] or []:
        if choice.name == "crl":
            crls.append(choice.chosen)
        elif choice.chosen["other_rev_info_format"].dotted == str(ID_RI_OCSP_RESPONSE):
            ocsps.append(choice.chosen["other_rev_info"])
    vc = ValidationContext(trust_roots=[load_cert_from_pemder(root)], other_certs=certs, crls=crls, ocsps=ocsps,
                           allow_fetching=False, revocation_mode="hard-fail", moment=moment())
    if content is None:
        data = signed_data["encap_content_info"]["content"].native
        signed_data["encap_content_info"] = {"content_type": "data"}
    else:
        with open(content, "rb") as f:
            data = f.read()
    status = asyncio.run(async_validate_detached_cms(data, signed_data, signer_validation_context=vc,
                                                     ts_validation_context=vc))
    ts = getattr(status, "timestamp_validity", None)
    report = {
        "intact": status.intact, "valid": status.valid, "trusted": status.trusted,
        "signature_timestamp": ts is not None and ts.intact and ts.valid and ts.trusted,
        "archive_timestamps": [],
    }
    # The archive timestamps: pyHanko checks the token's signature and trust against the imprint recomputed above.
    sd = signed_data_of(der)
    signer = sd["signerInfos"][0]
    for a in unsigned_attrs(signer):
        if a["attrType"] != ID_AA_ETS_ARCHIVE_TIMESTAMP_V3:
            continue
        for v in a["attrValues"]:
            ats = decode(der_encoder.encode(v), rfc5126.ArchiveTimeStampToken())
            expected = bytes.fromhex(archive_check(sd, signer, ats, data)["imprint_hex"])
            token = cms.ContentInfo.load(der_encoder.encode(ats))["content"]
            status = TimestampSignatureStatus(**asyncio.run(validate_tst_signed_data(token, vc, lambda _a: expected)))
            report["archive_timestamps"].append(status.intact and status.valid and status.trusted)
    print(json.dumps(report))


def drop_crl(p7s, out):
    with open(p7s, "rb") as f:
        sd = signed_data_of(f.read())
    crls = sd["crls"]
    kept = [c for i, c in enumerate(crls) if i != 0]
    crls.clear()
    for c in kept:
        crls.append(c)
    info = rfc5652.ContentInfo()
    info["contentType"] = rfc5652.id_signedData
    info["content"] = univ.Any(der_encoder.encode(sd))
    with open(out, "wb") as f:
        f.write(der_encoder.encode(info))
    print(json.dumps({"crls_left": len(kept)}))


if sys.argv[1] == "structure":
    structure(sys.argv[2], open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None)
elif sys.argv[1] == "drop-crl":
    drop_crl(sys.argv[2], sys.argv[3])
elif sys.argv[1] == "validate":
    validate(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
else:
    sys.exit(f"unknown command {sys.argv[1]}")
