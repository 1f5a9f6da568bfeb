
/*
 * WebAuthn verification: see ngx_http_hpki_webauthn.h.
 */


#include <string.h>

#include <cbor.h>
#include <fido.h>
#include <fido/es256.h>
#include <fido/rs256.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ngx_http_hpki_webauthn.h"


/* id-fido-gen-ce-aaguid */
#define NGX_HTTP_HPKI_WEBAUTHN_AAGUID_OID  "1.3.6.1.4.1.45724.1.1.4"

#define NGX_HTTP_HPKI_WEBAUTHN_COSE_KTY    1
#define NGX_HTTP_HPKI_WEBAUTHN_COSE_ALG    3
#define NGX_HTTP_HPKI_WEBAUTHN_COSE_EC2    2
#define NGX_HTTP_HPKI_WEBAUTHN_COSE_RSA    3
#define NGX_HTTP_HPKI_WEBAUTHN_COSE_P256   1

#define NGX_HTTP_HPKI_WEBAUTHN_CBOR_DEPTH  8


static cbor_item_t *ngx_http_hpki_webauthn_cbor_load(const unsigned char *p,
    size_t len, size_t *read);
static int ngx_http_hpki_webauthn_cbor_int(cbor_item_t *item, int64_t *v);
static cbor_item_t *ngx_http_hpki_webauthn_map_int(cbor_item_t *map,
    int64_t key);
static cbor_item_t *ngx_http_hpki_webauthn_map_text(cbor_item_t *map,
    const char *key);
static int ngx_http_hpki_webauthn_bytes(cbor_item_t *item,
    const unsigned char **p, size_t *len);
static EVP_PKEY *ngx_http_hpki_webauthn_cose_key(cbor_item_t *map, int *alg,
    const char **err);
static EVP_PKEY *ngx_http_hpki_webauthn_ec_key(const unsigned char *x,
    const unsigned char *y);
static EVP_PKEY *ngx_http_hpki_webauthn_rsa_key(const unsigned char *n,
    size_t n_len, const unsigned char *e, size_t e_len);
static int ngx_http_hpki_webauthn_packed(cbor_item_t *stmt,
    ngx_http_hpki_webauthn_attestation_t *att,
    const unsigned char client_data_hash[32], const char **err);
static int ngx_http_hpki_webauthn_attestation_cert(X509 *x,
    const unsigned char aaguid[16], const char **err);
static int ngx_http_hpki_webauthn_verify(EVP_PKEY *key, int alg,
    const unsigned char *tbs1, size_t len1, const unsigned char *tbs2,
    size_t len2, const unsigned char *sig, size_t sig_len);


int
ngx_http_hpki_webauthn_client_data(const unsigned char *json, size_t len,
    const char *type, ngx_http_hpki_webauthn_client_t *cd, const char **err)
{
    size_t        n, i;
    json_t       *root, *v;
    const char   *s;
    json_error_t  e;

    memset(cd, 0, sizeof(*cd));

    if (len == 0 || len > NGX_HTTP_HPKI_WEBAUTHN_CLIENT_DATA_MAX) {
        *err = "clientDataJSON is empty or too long";
        return -1;
    }

    root = json_loadb((const char *) json, len, JSON_REJECT_DUPLICATES, &e);

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        *err = "clientDataJSON is not a JSON object";
        return -1;
    }

    *err = NULL;

    v = json_object_get(root, "type");
    s = json_string_value(v);

    if (s == NULL || strcmp(s, type) != 0) {
        *err = (strcmp(type, "webauthn.create") == 0)
               ? "clientDataJSON type must be \"webauthn.create\""
               : "clientDataJSON type must be \"webauthn.get\"";
        goto done;
    }

    v = json_object_get(root, "challenge");
    s = json_string_value(v);
    n = json_string_length(v);

    if (s == NULL || n == 0 || n > NGX_HTTP_HPKI_WEBAUTHN_CHALLENGE_MAX) {
        *err = "clientDataJSON has no valid challenge";
        goto done;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
        {
            *err = "clientDataJSON challenge is not base64url";
            goto done;
        }
    }

    memcpy(cd->challenge, s, n);

    v = json_object_get(root, "origin");
    s = json_string_value(v);
    n = json_string_length(v);

    if (s == NULL || n == 0 || n > NGX_HTTP_HPKI_WEBAUTHN_ORIGIN_MAX) {
        *err = "clientDataJSON has no valid origin";
        goto done;
    }

    /* an origin is printable ASCII (IDNs come as punycode): safe to log */

    for (i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\') {
            *err = "clientDataJSON has no valid origin";
            goto done;
        }
    }

    memcpy(cd->origin, s, n);

    v = json_object_get(root, "crossOrigin");

    if (v != NULL && !json_is_false(v)) {
        *err = "a cross-origin ceremony is not accepted";
        goto done;
    }

    SHA256(json, len, cd->hash);

done:

    json_decref(root);

    return (*err == NULL) ? 0 : -1;
}


int
ngx_http_hpki_webauthn_authdata(const unsigned char *p, size_t len,
    ngx_http_hpki_webauthn_authdata_t *ad, const char **err)
{
    size_t                n;
    cbor_item_t          *item;
    const unsigned char  *end;

    memset(ad, 0, sizeof(*ad));

    if (len < 37 || len > NGX_HTTP_HPKI_WEBAUTHN_AUTHDATA_MAX) {
        *err = "authenticator data is too short or too long";
        return -1;
    }

    end = p + len;

    memcpy(ad->rp_id_hash, p, 32);
    ad->flags = p[32];
    ad->sign_count = ((uint32_t) p[33] << 24) | ((uint32_t) p[34] << 16)
                     | ((uint32_t) p[35] << 8) | p[36];
    p += 37;

    if (ad->flags & NGX_HTTP_HPKI_WEBAUTHN_AT) {

        if (end - p < 18) {
            *err = "attested credential data is truncated";
            return -1;
        }

        memcpy(ad->aaguid, p, 16);
        n = ((size_t) p[16] << 8) | p[17];
        p += 18;

        if (n == 0 || n > NGX_HTTP_HPKI_WEBAUTHN_CRED_ID_MAX
            || (size_t) (end - p) < n)
        {
            *err = "the credential id is empty, too long or truncated";
            return -1;
        }

        ad->cred_id = p;
        ad->cred_id_len = n;
        p += n;

        item = ngx_http_hpki_webauthn_cbor_load(p, end - p, &n);

        if (item == NULL) {
            *err = "the credential public key is not valid CBOR";
            return -1;
        }

        ad->key = ngx_http_hpki_webauthn_cose_key(item, &ad->alg, err);

        cbor_decref(&item);

        if (ad->key == NULL) {
            return -1;
        }

        p += n;
    }

    if (ad->flags & NGX_HTTP_HPKI_WEBAUTHN_ED) {

        item = (p < end) ? ngx_http_hpki_webauthn_cbor_load(p, end - p, &n)
                         : NULL;

        if (item == NULL || !cbor_isa_map(item)) {
            if (item) {
                cbor_decref(&item);
            }

            *err = "the authenticator extensions are not a CBOR map";
            goto failed;
        }

        cbor_decref(&item);
        p += n;
    }

    if (p != end) {
        *err = "authenticator data has trailing bytes";
        goto failed;
    }

    return 0;

failed:

    ngx_http_hpki_webauthn_authdata_free(ad);

    return -1;
}


void
ngx_http_hpki_webauthn_authdata_free(ngx_http_hpki_webauthn_authdata_t *ad)
{
    EVP_PKEY_free(ad->key);
    ad->key = NULL;
}


int
ngx_http_hpki_webauthn_check(const ngx_http_hpki_webauthn_authdata_t *ad,
    const char *rp_id, int uv_required, const char **err)
{
    unsigned char  hash[32];

    SHA256((const unsigned char *) rp_id, strlen(rp_id), hash);

    if (CRYPTO_memcmp(hash, ad->rp_id_hash, 32) != 0) {
        *err = "the authenticator data is for another rpId";
        return -1;
    }

    if (!(ad->flags & NGX_HTTP_HPKI_WEBAUTHN_UP)) {
        *err = "the user was not present (flag UP)";
        return -1;
    }

    if (uv_required && !(ad->flags & NGX_HTTP_HPKI_WEBAUTHN_UV)) {
        *err = "the user was not verified (flag UV): biometrics or a PIN "
               "is required";
        return -1;
    }

    return 0;
}


int
ngx_http_hpki_webauthn_attestation(const unsigned char *obj, size_t len,
    const unsigned char client_data_hash[32],
    ngx_http_hpki_webauthn_attestation_t *att, const char **err)
{
    size_t                n;
    cbor_item_t          *root, *fmt, *stmt, *authdata;
    const unsigned char  *p;

    memset(att, 0, sizeof(*att));

    if (len == 0 || len > NGX_HTTP_HPKI_WEBAUTHN_OBJECT_MAX) {
        *err = "attestationObject is empty or too long";
        return -1;
    }

    root = ngx_http_hpki_webauthn_cbor_load(obj, len, &n);

    if (root == NULL || n != len || !cbor_isa_map(root)) {
        *err = "attestationObject is not a CBOR map";
        goto failed;
    }

    fmt = ngx_http_hpki_webauthn_map_text(root, "fmt");
    stmt = ngx_http_hpki_webauthn_map_text(root, "attStmt");
    authdata = ngx_http_hpki_webauthn_map_text(root, "authData");

    if (fmt == NULL || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt)
        || stmt == NULL || !cbor_isa_map(stmt)
        || ngx_http_hpki_webauthn_bytes(authdata, &p, &n) != 0)
    {
        *err = "attestationObject needs fmt, attStmt and authData";
        goto failed;
    }

    if (cbor_string_length(fmt) >= sizeof(att->fmt)) {
        *err = "unsupported attestation format: only \"none\" and "
               "\"packed\" are accepted";
        goto failed;
    }

    memcpy(att->fmt, cbor_string_handle(fmt), cbor_string_length(fmt));

    att->authdata = malloc(n);
    if (att->authdata == NULL) {
        *err = "out of memory";
        goto failed;
    }

    memcpy(att->authdata, p, n);
    att->authdata_len = n;

    if (ngx_http_hpki_webauthn_authdata(att->authdata, n, &att->ad, err) != 0)
    {
        goto failed;
    }

    if (att->ad.key == NULL) {
        *err = "the authenticator data carries no credential (flag AT)";
        goto failed;
    }

    if (strcmp(att->fmt, "none") == 0) {

        if (cbor_map_size(stmt) != 0) {
            *err = "attestation \"none\" must have an empty attStmt";
            goto failed;
        }

    } else if (strcmp(att->fmt, "packed") == 0) {

        if (ngx_http_hpki_webauthn_packed(stmt, att, client_data_hash, err)
            != 0)
        {
            goto failed;
        }

    } else {
        *err = "unsupported attestation format: only \"none\" and "
               "\"packed\" are accepted";
        goto failed;
    }

    cbor_decref(&root);

    return 0;

failed:

    if (root) {
        cbor_decref(&root);
    }

    ngx_http_hpki_webauthn_attestation_free(att);

    return -1;
}


void
ngx_http_hpki_webauthn_attestation_free(
    ngx_http_hpki_webauthn_attestation_t *att)
{
    ngx_http_hpki_webauthn_authdata_free(&att->ad);
    free(att->authdata);
    att->authdata = NULL;
}


/* packed attestation (WebAuthn 8.2): self, or by an x5c certificate */

static int
ngx_http_hpki_webauthn_packed(cbor_item_t *stmt,
    ngx_http_hpki_webauthn_attestation_t *att,
    const unsigned char client_data_hash[32], const char **err)
{
    int                   rc, key_type;
    X509                 *x;
    size_t                sig_len, der_len;
    int64_t               alg;
    EVP_PKEY             *key;
    cbor_item_t          *v, *x5c, **certs;
    const unsigned char  *sig, *der;

    v = ngx_http_hpki_webauthn_map_text(stmt, "alg");

    if (v == NULL || ngx_http_hpki_webauthn_cbor_int(v, &alg) != 0
        || (alg != NGX_HTTP_HPKI_WEBAUTHN_ES256
            && alg != NGX_HTTP_HPKI_WEBAUTHN_RS256))
    {
        *err = "packed attestation: alg must be ES256 or RS256";
        return -1;
    }

    v = ngx_http_hpki_webauthn_map_text(stmt, "sig");

    if (ngx_http_hpki_webauthn_bytes(v, &sig, &sig_len) != 0
        || sig_len == 0 || sig_len > NGX_HTTP_HPKI_WEBAUTHN_SIG_MAX)
    {
        *err = "packed attestation: sig is missing";
        return -1;
    }

    if (cbor_map_size(stmt) != 2 && cbor_map_size(stmt) != 3) {
        *err = "packed attestation: unexpected attStmt members";
        return -1;
    }

    x5c = ngx_http_hpki_webauthn_map_text(stmt, "x5c");

    if (x5c == NULL) {

        if (cbor_map_size(stmt) != 2) {
            *err = "packed attestation: unexpected attStmt members";
            return -1;
        }

        if (alg != att->ad.alg) {
            *err = "packed self attestation: alg differs from the "
                   "credential's";
            return -1;
        }

        if (ngx_http_hpki_webauthn_verify(att->ad.key, (int) alg,
                                          att->authdata, att->authdata_len,
                                          client_data_hash, 32, sig, sig_len)
            != 0)
        {
            *err = "packed self attestation: bad signature";
            return -1;
        }

        return 0;
    }

    if (!cbor_isa_array(x5c) || !cbor_array_is_definite(x5c)
        || cbor_array_size(x5c) == 0 || cbor_array_size(x5c) > 8)
    {
        *err = "packed attestation: x5c must be 1 to 8 certificates";
        return -1;
    }

    certs = cbor_array_handle(x5c);

    if (ngx_http_hpki_webauthn_bytes(certs[0], &der, &der_len) != 0) {
        *err = "packed attestation: x5c holds no certificate";
        return -1;
    }

    x = d2i_X509(NULL, &der, (long) der_len);

    if (x == NULL) {
        *err = "packed attestation: the certificate is not valid DER";
        return -1;
    }

    rc = -1;

    if (ngx_http_hpki_webauthn_attestation_cert(x, att->ad.aaguid, err) != 0)
    {
        goto done;
    }

    key = X509_get0_pubkey(x);
    key_type = key ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;

    if ((alg == NGX_HTTP_HPKI_WEBAUTHN_ES256 && key_type != EVP_PKEY_EC)
        || (alg == NGX_HTTP_HPKI_WEBAUTHN_RS256 && key_type != EVP_PKEY_RSA))
    {
        *err = "packed attestation: alg does not match the certificate's "
               "key";
        goto done;
    }

    if (ngx_http_hpki_webauthn_verify(key, (int) alg, att->authdata,
                                      att->authdata_len, client_data_hash, 32,
                                      sig, sig_len)
        != 0)
    {
        *err = "packed attestation: bad signature";
        goto done;
    }

    att->attested = 1;
    rc = 0;

done:

    X509_free(x);

    return rc;
}


/* the attestation certificate requirements of WebAuthn 8.2.1 */

static int
ngx_http_hpki_webauthn_attestation_cert(X509 *x,
    const unsigned char aaguid[16], const char **err)
{
    int                    i, n;
    char                   ou[64];
    ASN1_OBJECT           *oid;
    X509_EXTENSION        *ext;
    ASN1_OCTET_STRING     *outer, *inner;
    const unsigned char   *p;

    if (X509_get_version(x) != X509_VERSION_3) {
        *err = "packed attestation: the certificate is not version 3";
        return -1;
    }

    if (X509_check_ca(x) != 0) {
        *err = "packed attestation: the certificate is a CA";
        return -1;
    }

    n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
                                  NID_organizationalUnitName, ou, sizeof(ou));

    if (n <= 0 || strcmp(ou, "Authenticator Attestation") != 0) {
        *err = "packed attestation: the certificate's OU must be "
               "\"Authenticator Attestation\"";
        return -1;
    }

    oid = OBJ_txt2obj(NGX_HTTP_HPKI_WEBAUTHN_AAGUID_OID, 1);
    if (oid == NULL) {
        *err = "out of memory";
        return -1;
    }

    i = X509_get_ext_by_OBJ(x, oid, -1);

    ASN1_OBJECT_free(oid);

    if (i < 0) {
        return 0;
    }

    ext = X509_get_ext(x, i);

    if (X509_EXTENSION_get_critical(ext)) {
        *err = "packed attestation: the aaguid extension is critical";
        return -1;
    }

    outer = X509_EXTENSION_get_data(ext);
    p = ASN1_STRING_get0_data(outer);

    inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(outer));

    if (inner == NULL || ASN1_STRING_length(inner) != 16
        || memcmp(ASN1_STRING_get0_data(inner), aaguid, 16) != 0)
    {
        ASN1_OCTET_STRING_free(inner);
        *err = "packed attestation: the certificate's aaguid differs from "
               "the authenticator data's";
        return -1;
    }

    ASN1_OCTET_STRING_free(inner);

    return 0;
}


static int
ngx_http_hpki_webauthn_verify(EVP_PKEY *key, int alg,
    const unsigned char *tbs1, size_t len1, const unsigned char *tbs2,
    size_t len2, const unsigned char *sig, size_t sig_len)
{
    int          rc;
    EVP_MD_CTX  *md;

    (void) alg;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return -1;
    }

    rc = (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1
          && EVP_DigestVerifyUpdate(md, tbs1, len1) == 1
          && EVP_DigestVerifyUpdate(md, tbs2, len2) == 1
          && EVP_DigestVerifyFinal(md, sig, sig_len) == 1)
         ? 0 : -1;

    EVP_MD_CTX_free(md);

    return rc;
}


int
ngx_http_hpki_webauthn_assertion(const char *rp_id,
    const unsigned char *authdata, size_t authdata_len,
    const unsigned char *client_data, size_t client_data_len,
    const unsigned char *sig, size_t sig_len, int alg,
    const unsigned char *spki, size_t spki_len, int uv_required,
    uint32_t *sign_count, const char **err)
{
    int              rc;
    void            *pk;
    EVP_PKEY        *key;
    es256_pk_t      *es;
    rs256_pk_t      *rs;
    fido_assert_t   *a;

    key = d2i_PUBKEY(NULL, &spki, (long) spki_len);
    if (key == NULL) {
        *err = "the stored credential key is invalid";
        return -1;
    }

    es = NULL;
    rs = NULL;
    pk = NULL;

    if (alg == NGX_HTTP_HPKI_WEBAUTHN_ES256) {
        es = es256_pk_new();
        if (es && es256_pk_from_EVP_PKEY(es, key) == FIDO_OK) {
            pk = es;
        }

    } else if (alg == NGX_HTTP_HPKI_WEBAUTHN_RS256) {
        rs = rs256_pk_new();
        if (rs && rs256_pk_from_EVP_PKEY(rs, key) == FIDO_OK) {
            pk = rs;
        }
    }

    EVP_PKEY_free(key);

    rc = -1;
    a = NULL;

    if (pk == NULL) {
        *err = "the stored credential key is invalid";
        goto done;
    }

    a = fido_assert_new();
    if (a == NULL) {
        *err = "out of memory";
        goto done;
    }

    if (fido_assert_set_rp(a, rp_id) != FIDO_OK
        || fido_assert_set_clientdata(a, client_data, client_data_len)
           != FIDO_OK
        || fido_assert_set_count(a, 1) != FIDO_OK
        || fido_assert_set_up(a, FIDO_OPT_TRUE) != FIDO_OK
        || fido_assert_set_uv(a, uv_required ? FIDO_OPT_TRUE : FIDO_OPT_OMIT)
           != FIDO_OK)
    {
        *err = "out of memory";
        goto done;
    }

    if (fido_assert_set_authdata_raw(a, 0, authdata, authdata_len)
        != FIDO_OK)
    {
        *err = "the authenticator data is malformed";
        goto done;
    }

    if (fido_assert_set_sig(a, 0, sig, sig_len) != FIDO_OK) {
        *err = "the signature is malformed";
        goto done;
    }

    if (fido_assert_verify(a, 0, alg, pk) != FIDO_OK) {
        *err = "the assertion signature does not verify";
        goto done;
    }

    *sign_count = fido_assert_sigcount(a, 0);
    rc = 0;

done:

    fido_assert_free(&a);
    es256_pk_free(&es);
    rs256_pk_free(&rs);

    return rc;
}


/* COSE_Key (RFC 9053): EC2 P-256 with ES256, RSA 2048 with RS256 */

static EVP_PKEY *
ngx_http_hpki_webauthn_cose_key(cbor_item_t *map, int *alg,
    const char **err)
{
    size_t                x_len, y_len, n_len, e_len;
    int64_t               kty, a, crv;
    cbor_item_t          *v;
    EVP_PKEY             *key;
    const unsigned char  *x, *y, *n, *e;

    if (!cbor_isa_map(map) || !cbor_map_is_definite(map)
        || cbor_map_size(map) > 16)
    {
        *err = "the credential public key is not a COSE_Key map";
        return NULL;
    }

    v = ngx_http_hpki_webauthn_map_int(map, NGX_HTTP_HPKI_WEBAUTHN_COSE_KTY);

    if (v == NULL || ngx_http_hpki_webauthn_cbor_int(v, &kty) != 0) {
        *err = "the credential public key has no kty";
        return NULL;
    }

    v = ngx_http_hpki_webauthn_map_int(map, NGX_HTTP_HPKI_WEBAUTHN_COSE_ALG);

    if (v == NULL || ngx_http_hpki_webauthn_cbor_int(v, &a) != 0) {
        *err = "the credential public key has no alg";
        return NULL;
    }

    key = NULL;

    if (kty == NGX_HTTP_HPKI_WEBAUTHN_COSE_EC2
        && a == NGX_HTTP_HPKI_WEBAUTHN_ES256)
    {
        v = ngx_http_hpki_webauthn_map_int(map, -1);

        if (v == NULL || ngx_http_hpki_webauthn_cbor_int(v, &crv) != 0
            || crv != NGX_HTTP_HPKI_WEBAUTHN_COSE_P256)
        {
            *err = "an ES256 credential key must be on P-256";
            return NULL;
        }

        if (ngx_http_hpki_webauthn_bytes(
                ngx_http_hpki_webauthn_map_int(map, -2), &x, &x_len) != 0
            || ngx_http_hpki_webauthn_bytes(
                   ngx_http_hpki_webauthn_map_int(map, -3), &y, &y_len) != 0
            || x_len != 32 || y_len != 32)
        {
            *err = "an ES256 credential key needs 32-byte x and y";
            return NULL;
        }

        key = ngx_http_hpki_webauthn_ec_key(x, y);

    } else if (kty == NGX_HTTP_HPKI_WEBAUTHN_COSE_RSA
               && a == NGX_HTTP_HPKI_WEBAUTHN_RS256)
    {
        if (ngx_http_hpki_webauthn_bytes(
                ngx_http_hpki_webauthn_map_int(map, -1), &n, &n_len) != 0
            || ngx_http_hpki_webauthn_bytes(
                   ngx_http_hpki_webauthn_map_int(map, -2), &e, &e_len) != 0
            || n_len != 256 || e_len == 0 || e_len > 3)
        {
            *err = "an RS256 credential key must be RSA 2048 with an "
                   "exponent of at most 3 bytes";
            return NULL;
        }

        key = ngx_http_hpki_webauthn_rsa_key(n, n_len, e, e_len);

    } else {
        *err = "the credential key must be ES256 (P-256) or RS256";
        return NULL;
    }

    if (key == NULL) {
        *err = "the credential public key is invalid";
        return NULL;
    }

    *alg = (int) a;

    return key;
}


static EVP_PKEY *
ngx_http_hpki_webauthn_ec_key(const unsigned char *x, const unsigned char *y)
{
    EVP_PKEY        *key;
    OSSL_PARAM       params[3];
    EVP_PKEY_CTX    *ctx;
    unsigned char    point[65];

    point[0] = 0x04;
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *) "prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  point, sizeof(point));
    params[2] = OSSL_PARAM_construct_end();

    key = NULL;

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        EVP_PKEY_free(key);
        key = NULL;
    }

    EVP_PKEY_CTX_free(ctx);

    return key;
}


static EVP_PKEY *
ngx_http_hpki_webauthn_rsa_key(const unsigned char *n, size_t n_len,
    const unsigned char *e, size_t e_len)
{
    BIGNUM           *bn, *be;
    EVP_PKEY         *key;
    OSSL_PARAM       *params;
    EVP_PKEY_CTX     *ctx;
    OSSL_PARAM_BLD   *bld;

    key = NULL;
    params = NULL;
    ctx = NULL;

    bn = BN_bin2bn(n, (int) n_len, NULL);
    be = BN_bin2bn(e, (int) e_len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (bn == NULL || be == NULL || bld == NULL
        || BN_num_bits(bn) != 2048 || !BN_is_odd(be) || BN_is_one(be))
    {
        goto done;
    }

    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
    {
        goto done;
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        EVP_PKEY_free(key);
        key = NULL;
    }

done:

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);

    return key;
}


/*
 * libcbor's cbor_load() allocates what a map or array header declares
 * before it reads the items, so 5 bytes can ask for gigabytes.  This scan,
 * on libcbor's streaming decoder, allocates nothing and admits one item
 * only if every declared count fits in the bytes left, nesting is at most
 * NGX_HTTP_HPKI_WEBAUTHN_CBOR_DEPTH, and nothing is indefinite or tagged
 * (WebAuthn's CBOR is CTAP2 canonical); then cbor_load() parses it.
 */

typedef struct {
    size_t       left;                 /* input bytes after this header */
    size_t       depth;
    size_t       items[NGX_HTTP_HPKI_WEBAUTHN_CBOR_DEPTH + 1];
    unsigned     bad:1;
    unsigned     done:1;
} ngx_http_hpki_webauthn_scan_t;


static void
ngx_http_hpki_webauthn_scan_item(ngx_http_hpki_webauthn_scan_t *s)
{
    while (s->depth > 0) {
        if (--s->items[s->depth] > 0) {
            return;
        }

        s->depth--;
    }

    s->done = 1;
}


static void
ngx_http_hpki_webauthn_scan_open(ngx_http_hpki_webauthn_scan_t *s,
    size_t n)
{
    if (n > s->left || s->depth == NGX_HTTP_HPKI_WEBAUTHN_CBOR_DEPTH) {
        s->bad = 1;
        return;
    }

    if (n == 0) {
        ngx_http_hpki_webauthn_scan_item(s);
        return;
    }

    /* the collection counts as an item of its parent once it is read */

    s->items[++s->depth] = n;
}


static void
ngx_http_hpki_webauthn_scan_array(void *ctx, size_t n)
{
    ngx_http_hpki_webauthn_scan_open(ctx, n);
}


static void
ngx_http_hpki_webauthn_scan_map(void *ctx, size_t n)
{
    ngx_http_hpki_webauthn_scan_open(ctx, n > SIZE_MAX / 2 ? SIZE_MAX : 2 * n);
}


static void
ngx_http_hpki_webauthn_scan_u8(void *ctx, uint8_t v)
{
    (void) v;

    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_u16(void *ctx, uint16_t v)
{
    (void) v;

    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_u32(void *ctx, uint32_t v)
{
    (void) v;

    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_u64(void *ctx, uint64_t v)
{
    (void) v;

    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_string(void *ctx, cbor_data p, size_t n)
{
    (void) p; (void) n;

    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_simple(void *ctx)
{
    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_bool(void *ctx, bool v)
{
    (void) v;

    ngx_http_hpki_webauthn_scan_item(ctx);
}


static void
ngx_http_hpki_webauthn_scan_refuse(void *ctx)
{
    ((ngx_http_hpki_webauthn_scan_t *) ctx)->bad = 1;
}


static void
ngx_http_hpki_webauthn_scan_tag(void *ctx, uint64_t v)
{
    (void) v;

    ((ngx_http_hpki_webauthn_scan_t *) ctx)->bad = 1;
}


static void
ngx_http_hpki_webauthn_scan_float(void *ctx, float v)
{
    (void) v;

    ((ngx_http_hpki_webauthn_scan_t *) ctx)->bad = 1;
}


static void
ngx_http_hpki_webauthn_scan_double(void *ctx, double v)
{
    (void) v;

    ((ngx_http_hpki_webauthn_scan_t *) ctx)->bad = 1;
}


static const struct cbor_callbacks  ngx_http_hpki_webauthn_scan_callbacks = {
    .uint8 = ngx_http_hpki_webauthn_scan_u8,
    .uint16 = ngx_http_hpki_webauthn_scan_u16,
    .uint32 = ngx_http_hpki_webauthn_scan_u32,
    .uint64 = ngx_http_hpki_webauthn_scan_u64,
    .negint8 = ngx_http_hpki_webauthn_scan_u8,
    .negint16 = ngx_http_hpki_webauthn_scan_u16,
    .negint32 = ngx_http_hpki_webauthn_scan_u32,
    .negint64 = ngx_http_hpki_webauthn_scan_u64,
    .byte_string = ngx_http_hpki_webauthn_scan_string,
    .string = ngx_http_hpki_webauthn_scan_string,
    .byte_string_start = ngx_http_hpki_webauthn_scan_refuse,
    .string_start = ngx_http_hpki_webauthn_scan_refuse,
    .indef_array_start = ngx_http_hpki_webauthn_scan_refuse,
    .array_start = ngx_http_hpki_webauthn_scan_array,
    .indef_map_start = ngx_http_hpki_webauthn_scan_refuse,
    .map_start = ngx_http_hpki_webauthn_scan_map,
    .tag = ngx_http_hpki_webauthn_scan_tag,
    .float2 = ngx_http_hpki_webauthn_scan_float,
    .float4 = ngx_http_hpki_webauthn_scan_float,
    .float8 = ngx_http_hpki_webauthn_scan_double,
    .undefined = ngx_http_hpki_webauthn_scan_simple,
    .null = ngx_http_hpki_webauthn_scan_simple,
    .boolean = ngx_http_hpki_webauthn_scan_bool,
    .indef_break = ngx_http_hpki_webauthn_scan_refuse,
};


/* one CBOR item from p: the item (cbor_decref() it) and its length */

static cbor_item_t *
ngx_http_hpki_webauthn_cbor_load(const unsigned char *p, size_t len,
    size_t *read)
{
    size_t                          off;
    cbor_item_t                    *item;
    struct cbor_load_result         res;
    struct cbor_decoder_result      dr;
    ngx_http_hpki_webauthn_scan_t   s;

    memset(&s, 0, sizeof(s));
    off = 0;

    while (!s.done && !s.bad && off < len) {
        s.left = len - off;
        dr = cbor_stream_decode(p + off, len - off,
                                &ngx_http_hpki_webauthn_scan_callbacks, &s);

        if (dr.status != CBOR_DECODER_FINISHED || dr.read == 0) {
            return NULL;
        }

        off += dr.read;
    }

    if (!s.done || s.bad) {
        return NULL;
    }

    item = cbor_load(p, off, &res);

    if (item == NULL || res.error.code != CBOR_ERR_NONE || res.read != off) {
        if (item) {
            cbor_decref(&item);
        }

        return NULL;
    }

    *read = off;

    return item;
}


/* CBOR helpers: definite items only */

static int
ngx_http_hpki_webauthn_cbor_int(cbor_item_t *item, int64_t *v)
{
    uint64_t  u;

    if (cbor_isa_uint(item)) {
        u = cbor_get_int(item);

        if (u > INT32_MAX) {
            return -1;
        }

        *v = (int64_t) u;
        return 0;
    }

    if (cbor_isa_negint(item)) {
        u = cbor_get_int(item);

        if (u > INT32_MAX) {
            return -1;
        }

        *v = -1 - (int64_t) u;
        return 0;
    }

    return -1;
}


static cbor_item_t *
ngx_http_hpki_webauthn_map_int(cbor_item_t *map, int64_t key)
{
    size_t             i, n;
    int64_t            k;
    struct cbor_pair  *pairs;

    if (!cbor_map_is_definite(map)) {
        return NULL;
    }

    n = cbor_map_size(map);
    pairs = cbor_map_handle(map);

    for (i = 0; i < n; i++) {
        if (ngx_http_hpki_webauthn_cbor_int(pairs[i].key, &k) == 0
            && k == key)
        {
            return pairs[i].value;
        }
    }

    return NULL;
}


static cbor_item_t *
ngx_http_hpki_webauthn_map_text(cbor_item_t *map, const char *key)
{
    size_t             i, n, len;
    struct cbor_pair  *pairs;

    if (!cbor_map_is_definite(map)) {
        return NULL;
    }

    len = strlen(key);
    n = cbor_map_size(map);
    pairs = cbor_map_handle(map);

    for (i = 0; i < n; i++) {
        if (cbor_isa_string(pairs[i].key)
            && cbor_string_is_definite(pairs[i].key)
            && cbor_string_length(pairs[i].key) == len
            && memcmp(cbor_string_handle(pairs[i].key), key, len) == 0)
        {
            return pairs[i].value;
        }
    }

    return NULL;
}


static int
ngx_http_hpki_webauthn_bytes(cbor_item_t *item, const unsigned char **p,
    size_t *len)
{
    if (item == NULL || !cbor_isa_bytestring(item)
        || !cbor_bytestring_is_definite(item))
    {
        return -1;
    }

    *p = cbor_bytestring_handle(item);
    *len = cbor_bytestring_length(item);

    return (*p != NULL || *len == 0) ? 0 : -1;
}
