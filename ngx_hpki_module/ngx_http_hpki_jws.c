
/*
 * Compact JWS (RS256, ES256) and JWT claim checks.  Pure C on OpenSSL and
 * jansson: no nginx calls.
 *
 * The verifier pins the algorithm to the key: the header's "alg" must name
 * the algorithm of the key that "kid" selects, so a token cannot choose
 * "none" or HS256 (RFC 8725, 2.1 and 3.1).
 */


#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ngx_http_hpki_jws.h"


/* raw ES256 signature: r || s */
#define NGX_HTTP_HPKI_JWS_ES256_SIG  64

/* largest RSA signature accepted: 8192-bit modulus */
#define NGX_HTTP_HPKI_JWS_MAX_SIG    1024


static int ngx_http_hpki_jws_no_password(char *buf, int size, int rwflag,
    void *data);
static int ngx_http_hpki_jws_check_key(ngx_http_hpki_jws_key_t *k);
static int ngx_http_hpki_jws_jwk_members(ngx_http_hpki_jws_key_t *k,
    json_t *jwk);
static int ngx_http_hpki_jws_set_bn(json_t *jwk, const char *name,
    const BIGNUM *bn, int pad);
static int ngx_http_hpki_jws_thumbprint(ngx_http_hpki_jws_key_t *k,
    char *out, size_t size);
static char *ngx_http_hpki_jws_dump(json_t *json, size_t *len);
static int ngx_http_hpki_jws_raw_to_der(const unsigned char *raw,
    unsigned char *der, size_t size);
static int ngx_http_hpki_jws_der_to_raw(const unsigned char *der, size_t len,
    unsigned char *raw);
static json_t *ngx_http_hpki_jws_decode_json(const char *in, size_t len,
    unsigned char *buf, size_t size);
static int ngx_http_hpki_b64url_value(int c);


static const char  ngx_http_hpki_b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


int
ngx_http_hpki_jws_key_load(ngx_http_hpki_jws_key_t *k, const char *pem_path,
    const char *kid)
{
    int             rc, n;
    size_t          i, len;
    BIO            *file, *mem;
    unsigned char  *buf;

    if (k == NULL) {
        return -1;
    }

    k->pkey = NULL;
    k->kid[0] = '\0';
    k->alg = 0;

    if (pem_path == NULL) {
        return -1;
    }

    if (kid != NULL) {
        len = strlen(kid);

        if (len == 0 || len >= sizeof(k->kid)) {
            return -1;
        }

        for (i = 0; i < len; i++) {
            if (kid[i] <= 0x20 || kid[i] >= 0x7f) {
                return -1;
            }
        }
    }

    buf = malloc(NGX_HTTP_HPKI_JWS_MAX_KEY + 1);
    if (buf == NULL) {
        return -1;
    }

    rc = -1;
    len = 0;
    mem = NULL;

    file = BIO_new_file(pem_path, "rb");
    if (file == NULL) {
        goto done;
    }

    while (len <= NGX_HTTP_HPKI_JWS_MAX_KEY) {
        n = BIO_read(file, buf + len, NGX_HTTP_HPKI_JWS_MAX_KEY + 1 - len);
        if (n <= 0) {
            break;
        }

        len += n;
    }

    BIO_free(file);

    if (len == 0 || len > NGX_HTTP_HPKI_JWS_MAX_KEY) {
        goto done;
    }

    mem = BIO_new_mem_buf(buf, (int) len);
    if (mem == NULL) {
        goto done;
    }

    /* a private key, else a public key; encrypted keys are refused */

    ERR_set_mark();

    k->pkey = PEM_read_bio_PrivateKey(mem, NULL,
                                      ngx_http_hpki_jws_no_password, NULL);

    if (k->pkey == NULL) {
        ERR_pop_to_mark();

        if (BIO_reset(mem) != 1) {
            goto done;
        }

        k->pkey = PEM_read_bio_PUBKEY(mem, NULL,
                                      ngx_http_hpki_jws_no_password, NULL);
        if (k->pkey == NULL) {
            goto done;
        }

    } else {
        ERR_clear_last_mark();
    }

    if (ngx_http_hpki_jws_check_key(k) != 0) {
        goto done;
    }

    if (kid != NULL) {
        memcpy(k->kid, kid, strlen(kid) + 1);

    } else if (ngx_http_hpki_jws_thumbprint(k, k->kid, sizeof(k->kid)) != 0) {
        goto done;
    }

    rc = 0;

done:

    BIO_free(mem);
    OPENSSL_cleanse(buf, NGX_HTTP_HPKI_JWS_MAX_KEY + 1);
    free(buf);

    if (rc != 0) {
        ngx_http_hpki_jws_key_free(k);
    }

    return rc;
}


void
ngx_http_hpki_jws_key_free(ngx_http_hpki_jws_key_t *k)
{
    if (k == NULL) {
        return;
    }

    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
    k->kid[0] = '\0';
    k->alg = 0;
}


static int
ngx_http_hpki_jws_no_password(char *buf, int size, int rwflag, void *data)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) data;

    return -1;
}


/* RSA >= 2048 bits: RS256; EC P-256: ES256; anything else is refused */

static int
ngx_http_hpki_jws_check_key(ngx_http_hpki_jws_key_t *k)
{
    char    group[64];
    size_t  len;

    switch (EVP_PKEY_get_base_id(k->pkey)) {

    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(k->pkey) < NGX_HTTP_HPKI_JWS_MIN_RSA
            || EVP_PKEY_get_size(k->pkey) > NGX_HTTP_HPKI_JWS_MAX_SIG)
        {
            return -1;
        }

        k->alg = NGX_HTTP_HPKI_JWS_RS256;
        return 0;

    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_group_name(k->pkey, group, sizeof(group), &len)) {
            return -1;
        }

        if (strcmp(group, SN_X9_62_prime256v1) != 0
            && strcmp(group, "P-256") != 0)
        {
            return -1;
        }

        k->alg = NGX_HTTP_HPKI_JWS_ES256;
        return 0;

    default:
        return -1;
    }
}


const char *
ngx_http_hpki_jws_alg_name(int alg)
{
    switch (alg) {

    case NGX_HTTP_HPKI_JWS_RS256:
        return "RS256";

    case NGX_HTTP_HPKI_JWS_ES256:
        return "ES256";

    default:
        return NULL;
    }
}


char *
ngx_http_hpki_jws_sign(ngx_http_hpki_jws_key_t *k, json_t *claims)
{
    int             n;
    char           *h, *p, *token;
    size_t          hlen, plen, siglen, len, max, off;
    json_t         *header;
    const char     *alg;
    EVP_MD_CTX     *md;
    unsigned char  *sig;
    unsigned char   raw[NGX_HTTP_HPKI_JWS_ES256_SIG];

    if (k == NULL || k->pkey == NULL || !json_is_object(claims)) {
        return NULL;
    }

    alg = ngx_http_hpki_jws_alg_name(k->alg);
    if (alg == NULL) {
        return NULL;
    }

    header = json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT",
                       "kid", k->kid);
    if (header == NULL) {
        return NULL;
    }

    h = ngx_http_hpki_jws_dump(header, &hlen);
    json_decref(header);

    p = ngx_http_hpki_jws_dump(claims, &plen);

    token = NULL;
    sig = NULL;
    md = NULL;

    if (h == NULL || p == NULL) {
        goto failed;
    }

    if (hlen > NGX_HTTP_HPKI_JWS_MAX_TOKEN
        || plen > NGX_HTTP_HPKI_JWS_MAX_TOKEN)
    {
        goto failed;
    }

    max = (4 * hlen + 2) / 3 + 1 + (4 * plen + 2) / 3 + 1
          + (4 * NGX_HTTP_HPKI_JWS_MAX_SIG + 2) / 3 + 1;

    token = malloc(max);
    sig = malloc(NGX_HTTP_HPKI_JWS_MAX_SIG);

    if (token == NULL || sig == NULL) {
        goto failed;
    }

    n = ngx_http_hpki_base64url_encode((unsigned char *) h, hlen, token, max);
    if (n < 0) {
        goto failed;
    }

    off = n;
    token[off++] = '.';

    n = ngx_http_hpki_base64url_encode((unsigned char *) p, plen,
                                       token + off, max - off);
    if (n < 0) {
        goto failed;
    }

    off += n;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        goto failed;
    }

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1
        || EVP_DigestSign(md, NULL, &siglen, (unsigned char *) token, off)
           != 1
        || siglen > NGX_HTTP_HPKI_JWS_MAX_SIG
        || EVP_DigestSign(md, sig, &siglen, (unsigned char *) token, off)
           != 1)
    {
        goto failed;
    }

    len = siglen;

    if (k->alg == NGX_HTTP_HPKI_JWS_ES256) {
        if (ngx_http_hpki_jws_der_to_raw(sig, siglen, raw) != 0) {
            goto failed;
        }

        memcpy(sig, raw, sizeof(raw));
        len = sizeof(raw);
    }

    token[off++] = '.';

    n = ngx_http_hpki_base64url_encode(sig, len, token + off, max - off);
    if (n < 0) {
        goto failed;
    }

    if (off + n > NGX_HTTP_HPKI_JWS_MAX_TOKEN) {
        /* the verifier would refuse it */
        goto failed;
    }

    EVP_MD_CTX_free(md);
    free(sig);
    free(h);
    free(p);

    return token;

failed:

    EVP_MD_CTX_free(md);
    free(sig);
    free(token);
    free(h);
    free(p);

    return NULL;
}


json_t *
ngx_http_hpki_jws_verify(const char *token, size_t len,
    ngx_http_hpki_jws_key_t *keys, size_t nkeys, const char **err)
{
    int                       n;
    size_t                    i, hlen, plen, slen, derlen;
    json_t                   *header, *claims, *v;
    const char               *dot1, *dot2, *kid, *alg, *e;
    EVP_MD_CTX               *md;
    unsigned char             buf[NGX_HTTP_HPKI_JWS_MAX_TOKEN];
    unsigned char             sig[NGX_HTTP_HPKI_JWS_MAX_SIG];
    unsigned char             der[NGX_HTTP_HPKI_JWS_ES256_SIG + 16];
    const unsigned char      *s;
    ngx_http_hpki_jws_key_t  *k;

    if (err == NULL) {
        err = &e;
    }

    if (token == NULL || len == 0) {
        *err = "empty token";
        return NULL;
    }

    if (len > NGX_HTTP_HPKI_JWS_MAX_TOKEN) {
        *err = "token too long";
        return NULL;
    }

    if (keys == NULL || nkeys == 0) {
        *err = "no keys";
        return NULL;
    }

    /* header.payload.signature, all non-empty */

    dot1 = memchr(token, '.', len);
    if (dot1 == NULL) {
        *err = "malformed token";
        return NULL;
    }

    dot2 = memchr(dot1 + 1, '.', len - (dot1 + 1 - token));
    if (dot2 == NULL
        || memchr(dot2 + 1, '.', len - (dot2 + 1 - token)) != NULL)
    {
        *err = "malformed token";
        return NULL;
    }

    hlen = dot1 - token;
    plen = dot2 - dot1 - 1;
    slen = len - (dot2 + 1 - token);

    if (hlen == 0 || plen == 0 || slen == 0) {
        *err = "malformed token";
        return NULL;
    }

    /* header */

    header = ngx_http_hpki_jws_decode_json(token, hlen, buf, sizeof(buf));
    if (header == NULL) {
        *err = "bad header";
        return NULL;
    }

    claims = NULL;
    md = NULL;

    if (json_object_get(header, "crit") != NULL) {
        *err = "unsupported crit header";
        goto failed;
    }

    v = json_object_get(header, "typ");
    if (v != NULL
        && (!json_is_string(v) || strcasecmp(json_string_value(v), "JWT")))
    {
        *err = "bad typ";
        goto failed;
    }

    v = json_object_get(header, "alg");
    if (!json_is_string(v)) {
        *err = "no alg";
        goto failed;
    }

    alg = json_string_value(v);

    k = NULL;
    v = json_object_get(header, "kid");

    if (v != NULL) {
        if (!json_is_string(v)) {
            *err = "bad kid";
            goto failed;
        }

        kid = json_string_value(v);

        for (i = 0; i < nkeys; i++) {
            if (keys[i].pkey != NULL && strcmp(keys[i].kid, kid) == 0) {
                k = &keys[i];
                break;
            }
        }

        if (k == NULL) {
            *err = "unknown kid";
            goto failed;
        }

    } else {
        if (nkeys != 1 || keys[0].pkey == NULL) {
            *err = "no kid";
            goto failed;
        }

        k = &keys[0];
    }

    /* the algorithm is the key's, never the token's */

    if (ngx_http_hpki_jws_alg_name(k->alg) == NULL
        || strcmp(alg, ngx_http_hpki_jws_alg_name(k->alg)) != 0)
    {
        *err = "alg not allowed";
        goto failed;
    }

    /* signature */

    n = ngx_http_hpki_base64url_decode(dot2 + 1, slen, sig, sizeof(sig));
    if (n <= 0) {
        *err = "bad signature";
        goto failed;
    }

    s = sig;
    derlen = n;

    if (k->alg == NGX_HTTP_HPKI_JWS_ES256) {
        if (n != NGX_HTTP_HPKI_JWS_ES256_SIG) {
            *err = "bad signature";
            goto failed;
        }

        n = ngx_http_hpki_jws_raw_to_der(sig, der, sizeof(der));
        if (n <= 0) {
            *err = "bad signature";
            goto failed;
        }

        s = der;
        derlen = n;

    } else if (n != EVP_PKEY_get_size(k->pkey)) {
        *err = "bad signature";
        goto failed;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        *err = "out of memory";
        goto failed;
    }

    ERR_set_mark();

    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1
        || EVP_DigestVerify(md, s, derlen, (const unsigned char *) token,
                            dot2 - token)
           != 1)
    {
        ERR_pop_to_mark();
        *err = "bad signature";
        goto failed;
    }

    ERR_pop_to_mark();

    /* claims */

    claims = ngx_http_hpki_jws_decode_json(dot1 + 1, plen, buf, sizeof(buf));
    if (claims == NULL) {
        *err = "bad claims";
        goto failed;
    }

    EVP_MD_CTX_free(md);
    json_decref(header);

    return claims;

failed:

    EVP_MD_CTX_free(md);
    json_decref(header);

    return NULL;
}


/* base64url JSON object, no duplicate names */

static json_t *
ngx_http_hpki_jws_decode_json(const char *in, size_t len, unsigned char *buf,
    size_t size)
{
    int            n;
    json_t        *json;
    json_error_t   error;

    n = ngx_http_hpki_base64url_decode(in, len, buf, size);
    if (n <= 0) {
        return NULL;
    }

    json = json_loadb((const char *) buf, n, JSON_REJECT_DUPLICATES, &error);
    if (json == NULL) {
        return NULL;
    }

    if (!json_is_object(json)) {
        json_decref(json);
        return NULL;
    }

    return json;
}


int
ngx_http_hpki_jwt_check(json_t *claims, const char *iss, const char *aud,
    long now, long leeway, const char **err)
{
    size_t       i;
    json_t      *v, *a;
    const char  *e;

    if (err == NULL) {
        err = &e;
    }

    if (!json_is_object(claims)) {
        *err = "claims not an object";
        return -1;
    }

    if (iss == NULL || aud == NULL) {
        *err = "no issuer or audience configured";
        return -1;
    }

    if (leeway < 0) {
        leeway = 0;
    }

    v = json_object_get(claims, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), iss) != 0) {
        *err = "bad iss";
        return -1;
    }

    v = json_object_get(claims, "aud");

    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), aud) != 0) {
            *err = "bad aud";
            return -1;
        }

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, a) {
            if (json_is_string(a) && strcmp(json_string_value(a), aud) == 0)
            {
                break;
            }
        }

        if (i == json_array_size(v)) {
            *err = "bad aud";
            return -1;
        }

    } else {
        *err = "bad aud";
        return -1;
    }

    v = json_object_get(claims, "exp");
    if (!json_is_integer(v)) {
        *err = "no exp";
        return -1;
    }

    if (json_integer_value(v) <= (json_int_t) now - leeway) {
        *err = "token expired";
        return -1;
    }

    v = json_object_get(claims, "nbf");
    if (v != NULL) {
        if (!json_is_integer(v)) {
            *err = "bad nbf";
            return -1;
        }

        if (json_integer_value(v) > (json_int_t) now + leeway) {
            *err = "token not yet valid";
            return -1;
        }
    }

    v = json_object_get(claims, "iat");
    if (!json_is_integer(v)) {
        *err = "no iat";
        return -1;
    }

    if (json_integer_value(v) > (json_int_t) now + leeway) {
        *err = "iat in the future";
        return -1;
    }

    v = json_object_get(claims, "sub");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        *err = "no sub";
        return -1;
    }

    v = json_object_get(claims, "jti");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        *err = "no jti";
        return -1;
    }

    return 0;
}


char *
ngx_http_hpki_jwks(ngx_http_hpki_jws_key_t *keys, size_t n)
{
    char    *text;
    size_t   i, len;
    json_t  *doc, *arr, *jwk;

    if (keys == NULL && n != 0) {
        return NULL;
    }

    arr = json_array();
    doc = json_object();

    if (arr == NULL || doc == NULL) {
        json_decref(arr);
        json_decref(doc);
        return NULL;
    }

    text = NULL;

    if (json_object_set_new(doc, "keys", arr) != 0) {
        json_decref(arr);
        goto done;
    }

    for (i = 0; i < n; i++) {
        jwk = json_object();
        if (jwk == NULL || json_array_append_new(arr, jwk) != 0) {
            goto done;
        }

        if (ngx_http_hpki_jws_jwk_members(&keys[i], jwk) != 0
            || json_object_set_new(jwk, "use", json_string("sig")) != 0
            || json_object_set_new(jwk, "alg",
                   json_string(ngx_http_hpki_jws_alg_name(keys[i].alg)))
               != 0
            || json_object_set_new(jwk, "kid", json_string(keys[i].kid))
               != 0)
        {
            goto done;
        }
    }

    text = ngx_http_hpki_jws_dump(doc, &len);

done:

    json_decref(doc);

    return text;
}


/* kty and the public key members (RFC 7518, 6.2.1 and 6.3.1) */

static int
ngx_http_hpki_jws_jwk_members(ngx_http_hpki_jws_key_t *k, json_t *jwk)
{
    int      rc;
    BIGNUM  *a, *b;

    if (k == NULL || k->pkey == NULL) {
        return -1;
    }

    a = NULL;
    b = NULL;
    rc = -1;

    switch (k->alg) {

    case NGX_HTTP_HPKI_JWS_RS256:
        if (!EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, &a)
            || !EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &b))
        {
            break;
        }

        if (json_object_set_new(jwk, "kty", json_string("RSA")) != 0
            || ngx_http_hpki_jws_set_bn(jwk, "n", a, 0) != 0
            || ngx_http_hpki_jws_set_bn(jwk, "e", b, 0) != 0)
        {
            break;
        }

        rc = 0;
        break;

    case NGX_HTTP_HPKI_JWS_ES256:
        if (!EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a)
            || !EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b))
        {
            break;
        }

        if (json_object_set_new(jwk, "kty", json_string("EC")) != 0
            || json_object_set_new(jwk, "crv", json_string("P-256")) != 0
            || ngx_http_hpki_jws_set_bn(jwk, "x", a, 32) != 0
            || ngx_http_hpki_jws_set_bn(jwk, "y", b, 32) != 0)
        {
            break;
        }

        rc = 0;
        break;

    default:
        break;
    }

    BN_free(a);
    BN_free(b);

    return rc;
}


/* unsigned big-endian, minimal (pad == 0) or left-padded to pad bytes */

static int
ngx_http_hpki_jws_set_bn(json_t *jwk, const char *name, const BIGNUM *bn,
    int pad)
{
    int            n;
    char           text[(4 * NGX_HTTP_HPKI_JWS_MAX_SIG + 2) / 3 + 1];
    unsigned char  bin[NGX_HTTP_HPKI_JWS_MAX_SIG];

    if (BN_num_bytes(bn) > (int) sizeof(bin) || BN_num_bytes(bn) == 0) {
        return -1;
    }

    if (pad) {
        n = BN_bn2binpad(bn, bin, pad);

    } else {
        n = BN_bn2bin(bn, bin);
    }

    if (n <= 0
        || ngx_http_hpki_base64url_encode(bin, n, text, sizeof(text)) < 0)
    {
        return -1;
    }

    return json_object_set_new(jwk, name, json_string(text));
}


/* RFC 7638 JWK thumbprint, SHA-256, base64url */

static int
ngx_http_hpki_jws_thumbprint(ngx_http_hpki_jws_key_t *k, char *out,
    size_t size)
{
    int            rc;
    char          *text;
    size_t         len;
    json_t        *jwk;
    unsigned int   mdlen;
    unsigned char  md[EVP_MAX_MD_SIZE];

    jwk = json_object();
    if (jwk == NULL) {
        return -1;
    }

    rc = -1;
    text = NULL;

    if (ngx_http_hpki_jws_jwk_members(k, jwk) != 0) {
        goto done;
    }

    /* required members only, sorted, no white space */

    text = ngx_http_hpki_jws_dump(jwk, &len);
    if (text == NULL) {
        goto done;
    }

    if (!EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL)) {
        goto done;
    }

    if (ngx_http_hpki_base64url_encode(md, mdlen, out, size) < 0) {
        goto done;
    }

    rc = 0;

done:

    free(text);
    json_decref(jwk);

    return rc;
}


/* compact, sorted JSON text in malloc()ed memory */

static char *
ngx_http_hpki_jws_dump(json_t *json, size_t *len)
{
    char    *text;
    size_t   n;

    n = json_dumpb(json, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
    if (n == 0) {
        return NULL;
    }

    text = malloc(n + 1);
    if (text == NULL) {
        return NULL;
    }

    if (json_dumpb(json, text, n, JSON_COMPACT | JSON_SORT_KEYS) != n) {
        free(text);
        return NULL;
    }

    text[n] = '\0';
    *len = n;

    return text;
}


/* raw r || s (32 + 32) to a DER ECDSA-Sig-Value */

static int
ngx_http_hpki_jws_raw_to_der(const unsigned char *raw, unsigned char *der,
    size_t size)
{
    int             n;
    BIGNUM         *r, *s;
    ECDSA_SIG      *sig;
    unsigned char  *p;

    r = BN_bin2bn(raw, 32, NULL);
    s = BN_bin2bn(raw + 32, 32, NULL);
    sig = ECDSA_SIG_new();

    if (r == NULL || s == NULL || sig == NULL) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return -1;
    }

    /* sig owns r and s now */
    ECDSA_SIG_set0(sig, r, s);

    n = i2d_ECDSA_SIG(sig, NULL);

    if (n <= 0 || (size_t) n > size) {
        ECDSA_SIG_free(sig);
        return -1;
    }

    p = der;
    n = i2d_ECDSA_SIG(sig, &p);

    ECDSA_SIG_free(sig);

    return n;
}


/* DER ECDSA-Sig-Value to raw r || s (32 + 32) */

static int
ngx_http_hpki_jws_der_to_raw(const unsigned char *der, size_t len,
    unsigned char *raw)
{
    int                   rc;
    ECDSA_SIG            *sig;
    const BIGNUM         *r, *s;
    const unsigned char  *p;

    p = der;

    sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
    if (sig == NULL) {
        return -1;
    }

    ECDSA_SIG_get0(sig, &r, &s);

    rc = (BN_bn2binpad(r, raw, 32) == 32
          && BN_bn2binpad(s, raw + 32, 32) == 32) ? 0 : -1;

    ECDSA_SIG_free(sig);

    return rc;
}


int
ngx_http_hpki_base64url_encode(const unsigned char *in, size_t len, char *out,
    size_t size)
{
    size_t        i, n;
    unsigned int  v;

    if (out == NULL || (in == NULL && len != 0)
        || len > (size_t) INT_MAX / 4)
    {
        return -1;
    }

    n = (4 * len + 2) / 3;

    if (n >= size) {
        return -1;
    }

    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];

        out[n++] = ngx_http_hpki_b64url[(v >> 18) & 0x3f];
        out[n++] = ngx_http_hpki_b64url[(v >> 12) & 0x3f];
        out[n++] = ngx_http_hpki_b64url[(v >> 6) & 0x3f];
        out[n++] = ngx_http_hpki_b64url[v & 0x3f];
    }

    if (len - i == 1) {
        v = in[i] << 16;

        out[n++] = ngx_http_hpki_b64url[(v >> 18) & 0x3f];
        out[n++] = ngx_http_hpki_b64url[(v >> 12) & 0x3f];

    } else if (len - i == 2) {
        v = (in[i] << 16) | (in[i + 1] << 8);

        out[n++] = ngx_http_hpki_b64url[(v >> 18) & 0x3f];
        out[n++] = ngx_http_hpki_b64url[(v >> 12) & 0x3f];
        out[n++] = ngx_http_hpki_b64url[(v >> 6) & 0x3f];
    }

    out[n] = '\0';

    return (int) n;
}


int
ngx_http_hpki_base64url_decode(const char *in, size_t len, unsigned char *out,
    size_t size)
{
    int           c;
    size_t        i, n, rest;
    unsigned int  v;

    if (out == NULL || (in == NULL && len != 0)
        || len > (size_t) INT_MAX || len % 4 == 1)
    {
        return -1;
    }

    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > size) {
        return -1;
    }

    n = 0;
    v = 0;

    for (i = 0; i < len; i++) {
        c = ngx_http_hpki_b64url_value((unsigned char) in[i]);
        if (c < 0) {
            return -1;
        }

        v = (v << 6) | c;

        if (i % 4 == 3) {
            out[n++] = (unsigned char) (v >> 16);
            out[n++] = (unsigned char) (v >> 8);
            out[n++] = (unsigned char) v;
            v = 0;
        }
    }

    rest = len % 4;

    if (rest == 2) {
        /* 12 bits, 8 used */

        if (v & 0x0f) {
            return -1;
        }

        out[n++] = (unsigned char) (v >> 4);

    } else if (rest == 3) {
        /* 18 bits, 16 used */

        if (v & 0x03) {
            return -1;
        }

        out[n++] = (unsigned char) (v >> 10);
        out[n++] = (unsigned char) (v >> 2);
    }

    return (int) n;
}


static int
ngx_http_hpki_b64url_value(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}
