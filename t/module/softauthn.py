#!/usr/bin/python3
"""A software WebAuthn authenticator and client for the FIDO tests.

It answers the gateway's options with RegistrationResponseJSON or
AuthenticationResponseJSON, as a browser's credential.toJSON() would, and
can be told to get one thing wrong (origin, rpId, signature, counter,
flags, type, challenge) so that each refusal can be tested.  Its key and
counter live in a JSON state file.

    softauthn.py create STATE OPTIONS_JSON ORIGIN [--alg -7|-257]
        [--fmt none|packed|packed-x5c] [--rp-id ID] [--no-uv] [--type T]
        [--challenge C] [--bad-sig]
    softauthn.py get STATE OPTIONS_JSON ORIGIN [--rp-id ID] [--no-uv]
        [--counter N] [--bad-sig] [--type T] [--challenge C]
        [--user-handle H]
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import struct
import sys

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

UP, UV, AT = 0x01, 0x04, 0x40
AAGUID = bytes.fromhex("6e70686b692d746573742d617574686e")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_key(state):
    return serialization.load_pem_private_key(state["key"].encode(), None)


def sign(key, alg, data):
    if alg == -7:
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def cose_key(key, alg):
    pub = key.public_key().public_numbers()
    if alg == -7:
        return cbor2.dumps({1: 2, 3: -7, -1: 1,
                            -2: pub.x.to_bytes(32, "big"),
                            -3: pub.y.to_bytes(32, "big")})
    return cbor2.dumps({1: 3, 3: -257,
                        -1: pub.n.to_bytes(256, "big"),
                        -2: pub.e.to_bytes(3, "big")})


def client_data(kind, challenge, origin):
    return json.dumps({"type": kind, "challenge": challenge,
                       "origin": origin, "crossOrigin": False},
                      separators=(",", ":")).encode()


def attestation_cert():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HPKI test vendor"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME,
                           "Authenticator Attestation"),
        x509.NameAttribute(NameOID.COMMON_NAME, "softauthn"),
    ])
    now = datetime.datetime.utcnow()
    aaguid_ext = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4"),
        b"\x04\x10" + AAGUID)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(aaguid_ext, critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER)


def create(args, options):
    alg = args.alg
    if alg == -7:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    cred_id = os.urandom(32)
    rp_id = args.rp_id or options["rp"]["id"]
    challenge = args.challenge or options["challenge"]
    cd = client_data(args.type or "webauthn.create", challenge, args.origin)

    flags = UP | AT | (0 if args.no_uv else UV)
    auth_data = (hashlib.sha256(rp_id.encode()).digest()
                 + bytes([flags]) + struct.pack(">I", 0)
                 + AAGUID + struct.pack(">H", len(cred_id)) + cred_id
                 + cose_key(key, alg))

    tbs = auth_data + hashlib.sha256(cd).digest()
    if args.fmt == "none":
        fmt, stmt = "none", {}
    elif args.fmt == "packed":
        sig = sign(key, alg, tbs)
        if args.bad_sig:
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        fmt, stmt = "packed", {"alg": alg, "sig": sig}
    else:
        akey, der = attestation_cert()
        sig = sign(akey, -7, tbs)
        if args.bad_sig:
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        fmt, stmt = "packed", {"alg": -7, "sig": sig, "x5c": [der]}

    obj = cbor2.dumps({"fmt": fmt, "attStmt": stmt, "authData": auth_data})

    state = {
        "key": key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode(),
        "alg": alg,
        "id": b64url(cred_id),
        "user": options["user"]["id"],
        "counter": 0,
    }
    with open(args.state, "w") as f:
        json.dump(state, f)

    return {
        "id": b64url(cred_id),
        "rawId": b64url(cred_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64url(cd),
            "attestationObject": b64url(obj),
            "transports": ["internal"],
        },
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
    }


def get(args, options):
    with open(args.state) as f:
        state = json.load(f)

    key = load_key(state)
    rp_id = args.rp_id or options["rpId"]
    challenge = args.challenge or options["challenge"]
    cd = client_data(args.type or "webauthn.get", challenge, args.origin)

    counter = args.counter if args.counter is not None \
        else state["counter"] + 1
    flags = UP | (0 if args.no_uv else UV)
    auth_data = (hashlib.sha256(rp_id.encode()).digest()
                 + bytes([flags]) + struct.pack(">I", counter))

    sig = sign(key, state["alg"], auth_data + hashlib.sha256(cd).digest())
    if args.bad_sig:
        sig = sig[:-1] + bytes([sig[-1] ^ 1])

    state["counter"] = max(state["counter"], counter)
    with open(args.state, "w") as f:
        json.dump(state, f)

    return {
        "id": state["id"],
        "rawId": state["id"],
        "type": "public-key",
        "response": {
            "clientDataJSON": b64url(cd),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(sig),
            "userHandle": args.user_handle or state["user"],
        },
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["create", "get"])
    p.add_argument("state")
    p.add_argument("options")
    p.add_argument("origin")
    p.add_argument("--alg", type=int, default=-7, choices=[-7, -257])
    p.add_argument("--fmt", default="none",
                   choices=["none", "packed", "packed-x5c"])
    p.add_argument("--rp-id")
    p.add_argument("--no-uv", action="store_true")
    p.add_argument("--bad-sig", action="store_true")
    p.add_argument("--counter", type=int)
    p.add_argument("--type")
    p.add_argument("--challenge")
    p.add_argument("--user-handle")
    args = p.parse_args()

    options = json.loads(args.options)
    out = create(args, options) if args.op == "create" else get(args, options)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
