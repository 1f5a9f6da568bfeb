#!/usr/bin/python3
"""An OpenID Connect relying party built on Debian's python3-authlib and
python3-requests, driven by t/module/oidc.t: the authorization code flow
with PKCE S256 against the gateway, the card's client certificate presented
on the authorize request, the ID token validated against the JWKS, userinfo,
refresh-token rotation and a parallel double refresh.

    oidc_rp.py CONFIG.json    prints one JSON object of results

CONFIG: issuer, ca, cert, key, client_id, client_secret or private_key
(PEM file, for private_key_jwt), auth_method, redirect_uri, scope,
authorize_endpoint (to use another server's), refresh (bool).
Nothing here serves redirect_uri: redirects are not followed, the Location
header is read instead.
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oauth2.rfc7523 import PrivateKeyJWT


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    out = {}
    # requests lets the environment outvote Session.verify: trust our CA
    os.environ["REQUESTS_CA_BUNDLE"] = cfg["ca"]
    try:
        flow(cfg, out)
    except Exception as e:                      # reported, not raised
        out["exception"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))


def session(cfg, meta, **kw):
    method = cfg.get("auth_method", "client_secret_basic")
    secret = cfg.get("client_secret")
    if method == "private_key_jwt":
        with open(cfg["private_key"]) as f:
            secret = f.read()
    s = OAuth2Session(cfg["client_id"], secret,
                      scope=cfg.get("scope", "openid sign"),
                      redirect_uri=cfg["redirect_uri"],
                      code_challenge_method="S256",
                      token_endpoint_auth_method=method, **kw)
    if method == "private_key_jwt":
        s.register_client_auth_method(
            PrivateKeyJWT(meta["token_endpoint"], alg="RS256"))
    s.verify = cfg["ca"]
    return s


def fido_login(cfg, page, out):
    """The FIDO page's part: a WebAuthn login (t/module/softauthn.py as the
    phone) carrying the handle from the fragment; the gateway answers where
    the browser goes next."""
    fido = cfg["fido"]
    handle = page.split("#login=", 1)[1]

    def login():
        base = cfg["issuer"]
        opts = requests.post(base + "/hpki/fido/login/options", json={},
                             verify=cfg["ca"]).json()
        cred = json.loads(subprocess.run(
            ["/usr/bin/python3", fido["softauthn"], "get", fido["state"],
             json.dumps(opts), fido["origin"]],
            check=True, capture_output=True).stdout)
        return requests.post(base + "/hpki/fido/login", verify=cfg["ca"],
                             json={"credential": cred, "login": handle})

    r = login()
    out["fido_status"] = r.status_code
    out["fido_answer"] = r.json()
    if fido.get("replay"):
        again = login()
        out["fido_replay_status"] = again.status_code
        out["fido_replay_answer"] = again.json()
    return r.json().get("redirect_to", "")


def flow(cfg, out):
    ca = cfg["ca"]
    meta = requests.get(cfg["issuer"] + "/.well-known/openid-configuration",
                        verify=ca).json()
    out["discovery"] = meta
    jwks = requests.get(meta["jwks_uri"], verify=ca).json()
    keys = JsonWebKey.import_key_set(jwks)

    s = session(cfg, meta)
    verifier = generate_token(64)
    nonce = secrets.token_urlsafe(16)
    endpoint = cfg.get("authorize_endpoint") or meta["authorization_endpoint"]
    extra = {}
    if cfg.get("acr_values"):
        extra["acr_values"] = cfg["acr_values"]
    url, state = s.create_authorization_url(endpoint, nonce=nonce,
                                            prompt="login",
                                            code_verifier=verifier, **extra)
    out["authorize_url"] = url

    # the browser's part: the card answers the TLS client-certificate request
    r = requests.get(url, cert=(cfg["cert"], cfg["key"]), verify=ca,
                     allow_redirects=False)
    out["authorize_status"] = r.status_code
    location = r.headers.get("Location", "")
    if cfg.get("fido") and "#login=" in location:
        out["fido_page"] = location
        location = fido_login(cfg, location, out)
    out["location"] = location
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    out["state_ok"] = q.get("state") == state
    out["redirect_ok"] = location.startswith(cfg["redirect_uri"] + "?")
    if "code" not in q:
        out["authorize_error"] = q
        return

    token = s.fetch_token(meta["token_endpoint"],
                          authorization_response=location,
                          code_verifier=verifier)
    out["token"] = dict(token)

    claims = jwt.decode(token["id_token"], keys, claims_options={
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": cfg["client_id"]},
        "nonce": {"essential": True, "value": nonce},
        "exp": {"essential": True},
        "auth_time": {"essential": True},
    })
    claims.validate(leeway=60)
    out["id_token_valid"] = True
    out["id_claims"] = dict(claims)

    r = requests.get(meta["userinfo_endpoint"], verify=ca, headers={
        "Authorization": "Bearer " + token["access_token"]})
    out["userinfo_status"] = r.status_code
    out["userinfo"] = r.json()

    if not cfg.get("refresh"):
        return

    old = token["refresh_token"]
    new = s.refresh_token(meta["token_endpoint"], refresh_token=old)
    out["refreshed"] = dict(new)
    out["rotated"] = new.get("refresh_token") not in (None, old)

    # the old refresh token, once more: refused
    r = requests.post(meta["token_endpoint"], verify=ca,
                      auth=(cfg["client_id"], cfg["client_secret"]),
                      data={"grant_type": "refresh_token",
                            "refresh_token": old})
    out["old_refresh_status"] = r.status_code
    out["old_refresh_error"] = r.json().get("error")

    # two refreshes with one token at the same moment: exactly one wins
    results = []
    barrier = threading.Barrier(2)

    def refresh():
        barrier.wait()
        r = requests.post(meta["token_endpoint"], verify=ca,
                          auth=(cfg["client_id"], cfg["client_secret"]),
                          data={"grant_type": "refresh_token",
                                "refresh_token": new["refresh_token"]})
        results.append(r.status_code)

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["parallel_statuses"] = sorted(results)


if __name__ == "__main__":
    main()
