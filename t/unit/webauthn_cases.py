#!/usr/bin/python3
"""Cases for build/t/unit-webauthn: WebAuthn inputs made here with the
software authenticator of the module tests (t/module/softauthn.py), each
with the verdict ngx_http_hpki_webauthn.c must reach.

    webauthn_cases.py CASES.json [CORPUS_DIR]

With CORPUS_DIR, also writes the inputs as a seed corpus for
fuzz/fuzz_webauthn.c (first byte: 0 clientDataJSON, 1 authenticator data,
2 attestationObject).
"""

import hashlib
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module"))

import cbor2                                              # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

import softauthn as sa                                    # noqa: E402

RP = "localhost"
ORIGIN = "https://localhost"
CHALLENGE = sa.b64url(b"\x01" * 32)


def rp_hash(rp=RP):
    return hashlib.sha256(rp.encode()).digest()


def authdata(key, alg, flags=sa.UP | sa.UV | sa.AT, rp=RP, count=0,
             cred_id=b"\x42" * 16, cose=None, tail=b""):
    ad = rp_hash(rp) + bytes([flags]) + struct.pack(">I", count)
    if flags & sa.AT:
        ad += (sa.AAGUID + struct.pack(">H", len(cred_id)) + cred_id
               + (cose if cose is not None else sa.cose_key(key, alg)))
    return ad + tail


def attestation(ad, fmt="none", stmt=None):
    return cbor2.dumps({"fmt": fmt, "attStmt": stmt or {}, "authData": ad})


def spki(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def main():
    cases = []
    es = ec.generate_private_key(ec.SECP256R1())
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cd_create = sa.client_data("webauthn.create", CHALLENGE, ORIGIN)
    cd_get = sa.client_data("webauthn.get", CHALLENGE, ORIGIN)
    cdh = hashlib.sha256(cd_create).digest()

    def att(name, obj, expect, uv=1, rp=RP):
        cases.append({"name": name, "op": "attestation",
                      "in": sa.b64url(obj), "cd": sa.b64url(cd_create),
                      "rp": rp, "uv": uv, "expect": expect})

    def cd(name, text, kind, expect):
        cases.append({"name": name, "op": "client_data",
                      "in": sa.b64url(text), "type": kind,
                      "expect": expect})

    def ad_case(name, ad, expect):
        cases.append({"name": name, "op": "authdata",
                      "in": sa.b64url(ad), "expect": expect})

    def assertion(name, ad, sig, key, alg, expect, uv=1, cdata=cd_get):
        cases.append({"name": name, "op": "assertion",
                      "in": sa.b64url(ad), "cd": sa.b64url(cdata),
                      "sig": sa.b64url(sig), "key": sa.b64url(spki(key)),
                      "alg": alg, "rp": RP, "uv": uv, "expect": expect})

    # attestation
    good = authdata(es, -7)
    att("none, ES256", attestation(good), "ok")
    att("none, ES256, another rpId", attestation(good), "another rpId",
        rp="evil.example")
    att("none without UV, UV required",
        attestation(authdata(es, -7, flags=sa.UP | sa.AT)), "not verified")
    att("none without UV, UV not required",
        attestation(authdata(es, -7, flags=sa.UP | sa.AT)), "ok", uv=0)
    att("none without UP",
        attestation(authdata(es, -7, flags=sa.UV | sa.AT)), "not present",
        uv=0)
    att("none with a statement", attestation(good, stmt={"alg": -7}),
        "empty attStmt")
    att("fmt tpm", attestation(good, fmt="tpm", stmt={"x": 1}),
        "unsupported attestation format")
    att("no credential (flag AT)",
        attestation(authdata(es, -7, flags=sa.UP | sa.UV)), "no credential")

    rgood = authdata(rs, -257)
    sig = sa.sign(rs, -257, rgood + cdh)
    att("packed self, RS256",
        attestation(rgood, "packed", {"alg": -257, "sig": sig}), "ok")
    att("packed self, bad signature",
        attestation(rgood, "packed",
                    {"alg": -257, "sig": sig[:-1] + bytes([sig[-1] ^ 1])}),
        "bad signature")
    att("packed self, alg differs",
        attestation(rgood, "packed", {"alg": -7, "sig": sig}),
        "alg differs")

    akey, der = sa.attestation_cert()
    x5c_sig = sa.sign(akey, -7, good + cdh)
    att("packed x5c", attestation(good, "packed",
                                  {"alg": -7, "sig": x5c_sig, "x5c": [der]}),
        "ok")
    att("packed x5c, alg RS256 with an EC certificate",
        attestation(good, "packed",
                    {"alg": -257, "sig": x5c_sig, "x5c": [der]}),
        "does not match")
    att("packed x5c, not a certificate",
        attestation(good, "packed",
                    {"alg": -7, "sig": x5c_sig, "x5c": [b"\x30\x03junk"]}),
        "not valid DER")
    att("packed x5c, aaguid differs",
        attestation(authdata(es, -7, cred_id=b"\x43" * 16).replace(
            sa.AAGUID, b"\x00" * 16), "packed",
            {"alg": -7, "sig": x5c_sig, "x5c": [der]}), "aaguid")

    # COSE keys
    pub = es.public_key().public_numbers()
    p384 = cbor2.dumps({1: 2, 3: -7, -1: 2, -2: pub.x.to_bytes(32, "big"),
                        -3: pub.y.to_bytes(32, "big")})
    att("ES256 key on another curve",
        attestation(authdata(es, -7, cose=p384)), "P-256")
    off = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: b"\x01" * 32,
                       -3: b"\x02" * 32})
    att("ES256 point not on the curve",
        attestation(authdata(es, -7, cose=off)), "invalid")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    att("RSA 1024", attestation(authdata(small, -257, cose=cbor2.dumps({
        1: 3, 3: -257,
        -1: small.public_key().public_numbers().n.to_bytes(128, "big"),
        -2: b"\x01\x00\x01"}))), "RSA 2048")
    att("EdDSA key", attestation(authdata(es, -7, cose=cbor2.dumps(
        {1: 1, 3: -8, -1: 6, -2: b"\x00" * 32}))), "ES256 (P-256) or RS256")

    # authenticator data
    ad_case("authenticator data, assertion shape",
            authdata(es, -7, flags=sa.UP | sa.UV, count=7), "ok")
    ad_case("too short", b"\x00" * 36, "too short")
    ad_case("trailing bytes", authdata(es, -7, tail=b"\x00"),
            "trailing bytes")
    ad_case("credential id truncated", good[:37 + 16 + 2 + 8],
            "truncated")
    ad_case("extensions flag without a map",
            authdata(es, -7, flags=sa.UP | sa.UV | 0x80), "not a CBOR map")
    ad_case("extensions as a map",
            authdata(es, -7, flags=sa.UP | sa.UV | 0x80,
                     tail=cbor2.dumps({"credProtect": 2})), "ok")

    # clientDataJSON
    cd("clientDataJSON, create", cd_create, "webauthn.create", "ok")
    cd("a get for a create", cd_get, "webauthn.create", "webauthn.create")
    cd("cross-origin", json.dumps({"type": "webauthn.get",
                                   "challenge": CHALLENGE,
                                   "origin": ORIGIN,
                                   "crossOrigin": True}).encode(),
       "webauthn.get", "cross-origin")
    cd("challenge not base64url",
       sa.client_data("webauthn.get", "a+b/c=", ORIGIN), "webauthn.get",
       "not base64url")
    cd("no origin", json.dumps({"type": "webauthn.get",
                                "challenge": CHALLENGE}).encode(),
       "webauthn.get", "origin")
    cd("origin with a line break (kept out of logs)",
       sa.client_data("webauthn.get", CHALLENGE, ORIGIN + "\nX"),
       "webauthn.get", "no valid origin")
    cd("not JSON", b"\xff\xfe{", "webauthn.get", "not a JSON object")
    cd("duplicate keys", b'{"type":"webauthn.get","type":"x"}',
       "webauthn.get", "not a JSON object")

    # assertions
    aad = authdata(es, -7, flags=sa.UP | sa.UV, count=9)
    asig = sa.sign(es, -7, aad + hashlib.sha256(cd_get).digest())
    assertion("assertion, ES256", aad, asig, es, -7, "ok 9")
    assertion("assertion, bad signature", aad,
              asig[:-1] + bytes([asig[-1] ^ 1]), es, -7, "does not verify")
    assertion("assertion, other client data", aad, asig, es, -7,
              "does not verify", cdata=cd_create)
    assertion("assertion, no UV", authdata(es, -7, flags=sa.UP, count=9),
              sa.sign(es, -7, authdata(es, -7, flags=sa.UP, count=9)
                      + hashlib.sha256(cd_get).digest()),
              es, -7, "does not verify")
    assertion("assertion, no UV, UV not required",
              authdata(es, -7, flags=sa.UP, count=9),
              sa.sign(es, -7, authdata(es, -7, flags=sa.UP, count=9)
                      + hashlib.sha256(cd_get).digest()),
              es, -7, "ok 9", uv=0)
    assertion("assertion, another rpId",
              authdata(es, -7, flags=sa.UP | sa.UV, rp="evil.example"),
              asig, es, -7, "does not verify")
    rad = authdata(rs, -257, flags=sa.UP | sa.UV, count=1)
    assertion("assertion, RS256", rad,
              sa.sign(rs, -257, rad + hashlib.sha256(cd_get).digest()),
              rs, -257, "ok 1")
    assertion("assertion, key of another alg", aad, asig, es, -257,
              "key is invalid")

    with open(sys.argv[1], "w") as f:
        json.dump(cases, f, indent=1)

    if len(sys.argv) > 2:
        ops = {"client_data": 0, "authdata": 1, "attestation": 2}
        os.makedirs(sys.argv[2], exist_ok=True)
        for i, c in enumerate(cases):
            if c["op"] in ops:
                with open(os.path.join(sys.argv[2], "seed-%02d" % i),
                          "wb") as f:
                    f.write(bytes([ops[c["op"]]]) + sa.unb64url(c["in"]))


if __name__ == "__main__":
    main()
