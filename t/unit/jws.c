
/*
 * Unit tests of ngx_http_hpki_jws.c, TAP output.
 *
 *   unit-jws                     run the tests
 *   unit-jws --sign KEY          print a token signed with KEY (PEM)
 *   unit-jws --verify KEY TOKEN  print the claims of TOKEN, or "error: ..."
 *   unit-jws --kid KEY           print the default kid (RFC 7638 thumbprint)
 *   unit-jws --jwks KEY...       print the JWKS of the keys
 *
 * The modes are used by t/unit/jws.t for interoperability with openssl(1).
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "ngx_http_hpki_jws.h"
#include "tap.h"


static char  t_dir[] = "/tmp/hpki-unit-jws-XXXXXX";
static char  t_path[512];


static const char *
t_file(const char *name)
{
    snprintf(t_path, sizeof(t_path), "%s/%s", t_dir, name);
    return t_path;
}


static void
t_write_key(EVP_PKEY *pk, const char *name, int priv, const char *pass)
{
    FILE  *f;

    f = fopen(t_file(name), "w");
    if (f == NULL) {
        perror(t_path);
        exit(2);
    }

    if (priv) {
        PEM_write_PrivateKey(f, pk, pass ? EVP_aes_128_cbc() : NULL,
                             (unsigned char *) pass,
                             pass ? (int) strlen(pass) : 0, NULL, NULL);

    } else {
        PEM_write_PUBKEY(f, pk);
    }

    fclose(f);
}


static void
t_write_text(const char *name, const char *text)
{
    FILE  *f;

    f = fopen(t_file(name), "w");
    if (f == NULL) {
        perror(t_path);
        exit(2);
    }

    fputs(text, f);
    fclose(f);
}


/* a compact token from header and payload text, signed as told */

#define T_SIG_NONE     0
#define T_SIG_PKEY     1     /* RS256 / ES256 raw, as the key's type says */
#define T_SIG_PKEY_DER 2     /* ES256 with a DER signature (wrong) */
#define T_SIG_HMAC     3     /* HS256 */
#define T_SIG_BYTES    4     /* given bytes */

static char *
t_token(const char *hdr, const char *pay, int how, EVP_PKEY *pk,
    const void *secret, size_t slen)
{
    int                   n;
    char                 *t;
    size_t                len, siglen, max;
    EVP_MD_CTX           *md;
    ECDSA_SIG            *es;
    const BIGNUM         *r, *s;
    unsigned char         sig[1024];
    const unsigned char  *p;

    max = 3 * 4096;
    t = malloc(max);

    n = ngx_http_hpki_base64url_encode((const unsigned char *) hdr,
                                       strlen(hdr), t, max);
    len = n;
    t[len++] = '.';
    n = ngx_http_hpki_base64url_encode((const unsigned char *) pay,
                                       strlen(pay), t + len, max - len);
    len += n;

    siglen = 0;

    switch (how) {

    case T_SIG_PKEY:
    case T_SIG_PKEY_DER:
        md = EVP_MD_CTX_new();
        siglen = sizeof(sig);
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk);
        EVP_DigestSign(md, sig, &siglen, (unsigned char *) t, len);
        EVP_MD_CTX_free(md);

        if (how == T_SIG_PKEY && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
            p = sig;
            es = d2i_ECDSA_SIG(NULL, &p, (long) siglen);
            ECDSA_SIG_get0(es, &r, &s);
            BN_bn2binpad(r, sig, 32);
            BN_bn2binpad(s, sig + 32, 32);
            ECDSA_SIG_free(es);
            siglen = 64;
        }

        break;

    case T_SIG_HMAC:
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, slen,
                  (unsigned char *) t, len, sig, sizeof(sig), &siglen);
        break;

    case T_SIG_BYTES:
        memcpy(sig, secret, slen);
        siglen = slen;
        break;

    default:
        break;
    }

    t[len++] = '.';
    ngx_http_hpki_base64url_encode(sig, siglen, t + len, max - len);

    return t;
}


static json_t *
t_verify(const char *token, ngx_http_hpki_jws_key_t *keys, size_t n,
    const char **err)
{
    *err = NULL;
    return ngx_http_hpki_jws_verify(token, strlen(token), keys, n, err);
}


/* verify must fail; the error must be the expected one */

static void
t_refused(const char *token, ngx_http_hpki_jws_key_t *keys, size_t n,
    const char *expected, const char *name)
{
    json_t      *c;
    const char  *err;

    c = t_verify(token, keys, n, &err);

    t_ok(c == NULL && err != NULL
         && (expected == NULL || strcmp(err, expected) == 0),
         "%s: refused (%s)", name, err ? err : "no error");

    if (c != NULL) {
        json_decref(c);
    }
}


static void
t_base64url(void)
{
    int             n, bad;
    char            out[64];
    size_t          len, i;
    unsigned char   buf[64], in[64];
    unsigned int    seed;
    static const char  *vec[][2] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy" }
    };

    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        n = ngx_http_hpki_base64url_encode((unsigned char *) vec[i][0],
                                           strlen(vec[i][0]), out,
                                           sizeof(out));
        t_ok(n == (int) strlen(vec[i][1]) && strcmp(out, vec[i][1]) == 0,
             "base64url encode \"%s\" = \"%s\"", vec[i][0], out);

        n = ngx_http_hpki_base64url_decode(vec[i][1], strlen(vec[i][1]), buf,
                                           sizeof(buf));
        t_ok(n == (int) strlen(vec[i][0])
             && memcmp(buf, vec[i][0], n) == 0,
             "base64url decode \"%s\"", vec[i][1]);
    }

    in[0] = 0xfb;
    in[1] = 0xff;
    in[2] = 0xbf;
    n = ngx_http_hpki_base64url_encode(in, 3, out, sizeof(out));
    t_ok(n == 4 && strcmp(out, "-_-_") == 0, "URL alphabet: \"%s\"", out);

    t_ok(ngx_http_hpki_base64url_encode((unsigned char *) "foo", 3, out, 4)
         == -1, "encode: no room for NUL: -1");
    t_ok(ngx_http_hpki_base64url_encode((unsigned char *) "foo", 3, out, 5)
         == 4, "encode: exact room");

#define DEC(s)  ngx_http_hpki_base64url_decode(s, sizeof(s) - 1, buf,         \
                                               sizeof(buf))

    t_ok(DEC("Zg==") == -1, "decode refuses padding");
    t_ok(DEC("Z") == -1, "decode refuses length 1 mod 4");
    t_ok(DEC("Zh") == -1, "decode refuses non-zero trailing bits (2)");
    t_ok(DEC("Zm9") == -1, "decode refuses non-zero trailing bits (3)");
    t_ok(DEC("Zm8") == 2, "decode accepts zero trailing bits");
    t_ok(DEC("Zm9+") == -1, "decode refuses '+'");
    t_ok(DEC("Zm9/") == -1, "decode refuses '/'");
    t_ok(DEC("Zm 9v") == -1, "decode refuses space");
    t_ok(DEC("Zm9v\n") == -1, "decode refuses newline");
    t_ok(DEC("Zm\0v") == -1, "decode refuses NUL");

#undef DEC

    t_ok(ngx_http_hpki_base64url_decode("Zm9vYmFy", 8, buf, 5) == -1,
         "decode: output too small: -1");
    t_ok(ngx_http_hpki_base64url_decode("Zm9vYmFy", 8, buf, 6) == 6,
         "decode: exact output room");

    seed = 7;
    bad = 0;

    for (len = 0; len < 48; len++) {
        for (i = 0; i < len; i++) {
            in[i] = (unsigned char) rand_r(&seed);
        }

        n = ngx_http_hpki_base64url_encode(in, len, out, sizeof(out));

        if (n < 0 || (size_t) n != (4 * len + 2) / 3
            || ngx_http_hpki_base64url_decode(out, n, buf, sizeof(buf))
               != (int) len
            || memcmp(buf, in, len) != 0)
        {
            bad++;
        }
    }

    t_ok(bad == 0, "round trip of 0..47 random bytes");
}


static json_t *
t_claims(long now)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:[s],"
                     " s:s, s:{s:s}}",
                     "iss", "https://gw.example", "sub", "user-1",
                     "aud", "hpki", "iat", (json_int_t) now,
                     "nbf", (json_int_t) now, "exp", (json_int_t) now + 600,
                     "jti", "jti-1", "scope", "openid sign",
                     "amr", "hpki_card", "hpki_role", "Medical Doctor",
                     "cnf", "x5t#S256", "abc");
}


static void
t_jws(void)
{
    int                       n, bad;
    char                     *tok, *t2, *jwks, big[9000], kid64[65];
    size_t                    len, i;
    json_t                   *claims, *c, *h, *doc, *k0, *k1;
    const char               *err, *dot, *alpha;
    EVP_PKEY                 *rsa, *ec, *rsa1024, *ed, *p384;
    unsigned char             buf[1024], sig[64];
    ngx_http_hpki_jws_key_t   krsa, kec, krsa_pub, kec_pub, kx, keys[2];
    ngx_http_hpki_jws_key_t   kboth[2];
    const char               *rsa_pub_pem;
    FILE                     *f;
    char                      pem[4096];

    if (mkdtemp(t_dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }

    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");

    t_ok(rsa && ec && rsa1024 && ed && p384, "test keys generated");

    t_write_key(rsa, "rsa.pem", 1, NULL);
    t_write_key(rsa, "rsa.pub", 0, NULL);
    t_write_key(ec, "ec.pem", 1, NULL);
    t_write_key(ec, "ec.pub", 0, NULL);
    t_write_key(rsa1024, "rsa1024.pem", 1, NULL);
    t_write_key(ed, "ed25519.pem", 1, NULL);
    t_write_key(p384, "p384.pem", 1, NULL);
    t_write_key(rsa, "rsa-enc.pem", 1, "secret");
    t_write_text("garbage.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                 "-----END PRIVATE KEY-----\n");

    /* key loading */

    t_ok(ngx_http_hpki_jws_key_load(&krsa, t_file("rsa.pem"), "rsa-1") == 0
         && krsa.alg == NGX_HTTP_HPKI_JWS_RS256
         && strcmp(krsa.kid, "rsa-1") == 0, "RSA private key: RS256");
    t_ok(ngx_http_hpki_jws_key_load(&krsa_pub, t_file("rsa.pub"), "rsa-1")
         == 0 && krsa_pub.alg == NGX_HTTP_HPKI_JWS_RS256,
         "RSA public key: RS256");
    t_ok(ngx_http_hpki_jws_key_load(&kec, t_file("ec.pem"), "ec-1") == 0
         && kec.alg == NGX_HTTP_HPKI_JWS_ES256, "EC P-256 private key: ES256");
    t_ok(ngx_http_hpki_jws_key_load(&kec_pub, t_file("ec.pub"), "ec-1") == 0
         && kec_pub.alg == NGX_HTTP_HPKI_JWS_ES256, "EC P-256 public key");

    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa1024.pem"), "x") == -1
         && kx.pkey == NULL, "RSA-1024 refused");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("ed25519.pem"), "x") == -1,
         "Ed25519 refused");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("p384.pem"), "x") == -1,
         "EC P-384 refused");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa-enc.pem"), "x") == -1,
         "encrypted key refused (no prompt)");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("garbage.pem"), "x") == -1,
         "garbage PEM refused");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("missing.pem"), "x") == -1,
         "missing file refused");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa.pub"), "") == -1,
         "empty kid refused");
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa.pub"), "a b") == -1,
         "kid with a space refused");

    memset(kid64, 'k', 64);
    kid64[64] = '\0';
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa.pub"), kid64) == -1,
         "kid of 64 characters refused");
    kid64[63] = '\0';
    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa.pub"), kid64) == 0,
         "kid of 63 characters accepted");
    ngx_http_hpki_jws_key_free(&kx);

    t_ok(ngx_http_hpki_jws_key_load(&kx, t_file("rsa.pub"), NULL) == 0
         && strlen(kx.kid) == 43, "no kid: thumbprint kid \"%s\"", kx.kid);
    ngx_http_hpki_jws_key_free(&kx);

    ERR_clear_error();

    /* RS256 round trip */

    claims = t_claims(1700000000);

    tok = ngx_http_hpki_jws_sign(&krsa, claims);
    t_ok(tok != NULL, "RS256 sign");

    c = t_verify(tok, &krsa_pub, 1, &err);
    t_ok(c != NULL && json_equal(c, claims),
         "RS256 verify with the public key, claims equal");
    json_decref(c);

    c = t_verify(tok, &krsa, 1, &err);
    t_ok(c != NULL, "RS256 verify with the private key's public half");
    json_decref(c);

    dot = strchr(tok, '.');
    n = ngx_http_hpki_base64url_decode(tok, dot - tok, buf, sizeof(buf));
    h = n > 0 ? json_loadb((char *) buf, n, 0, NULL) : NULL;
    t_ok(h != NULL
         && strcmp(json_string_value(json_object_get(h, "alg")), "RS256")
            == 0
         && strcmp(json_string_value(json_object_get(h, "typ")), "JWT")
            == 0
         && strcmp(json_string_value(json_object_get(h, "kid")), "rsa-1")
            == 0
         && json_object_size(h) == 3, "RS256 header alg, typ, kid");
    json_decref(h);

    n = ngx_http_hpki_base64url_decode(strrchr(tok, '.') + 1,
                                       strlen(strrchr(tok, '.') + 1), buf,
                                       sizeof(buf));
    t_ok(n == 256, "RS256 signature is 256 bytes");

    /* tampering */

    t2 = strdup(tok);
    dot = strchr(t2, '.');
    t2[dot - t2 + 5] ^= 0x01;
    t_refused(t2, &krsa_pub, 1, "bad signature", "payload tampered");
    free(t2);

    t2 = strdup(tok);
    len = strlen(t2);
    t2[len - 10] = t2[len - 10] == 'A' ? 'B' : 'A';
    t_refused(t2, &krsa_pub, 1, "bad signature", "signature tampered");
    free(t2);

    t2 = strdup(tok);
    t2[strlen(t2) - 1] = '\0';
    t_refused(t2, &krsa_pub, 1, NULL, "signature truncated");
    free(t2);

    /* non-canonical last character of the signature (malleability) */

    t2 = strdup(tok);
    len = strlen(t2);
    alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    n = strchr(alpha, t2[len - 1]) - alpha;
    t2[len - 1] = alpha[n | 1];
    t_refused(t2, &krsa_pub, 1, "bad signature",
              "non-canonical base64url tail (unused bits set)");
    free(t2);

    t2 = malloc(strlen(tok) + 8);
    dot = strchr(tok, '.');
    memcpy(t2, tok, dot - tok);
    strcpy(t2 + (dot - tok), "=");
    strcat(t2, dot);
    t_refused(t2, &krsa_pub, 1, "bad header", "padding in the header");
    free(t2);

    t2 = strdup(tok);
    t2[3] = '+';
    t_refused(t2, &krsa_pub, 1, "bad header", "'+' in the header");
    free(t2);

    /* every single-bit change of the token is refused */

    bad = 0;
    len = strlen(tok);

    for (i = 0; i < len * 8; i++) {
        t2 = strdup(tok);
        t2[i / 8] ^= (char) (1 << (i % 8));

        c = ngx_http_hpki_jws_verify(t2, len, &krsa_pub, 1, &err);
        if (c != NULL) {
            bad++;
            json_decref(c);
        }

        free(t2);
    }

    t_ok(bad == 0, "all %zu single-bit changes refused", len * 8);

    /* wrong shapes */

    t_refused("", &krsa_pub, 1, "empty token", "empty token");
    t_refused("abc", &krsa_pub, 1, "malformed token", "one part");
    t_refused("abc.def", &krsa_pub, 1, "malformed token", "two parts");
    t_refused("a.b.c.d", &krsa_pub, 1, "malformed token", "four parts");

    t2 = malloc(strlen(tok) + 8);
    strcpy(t2, tok);
    strcat(t2, ".");
    t_refused(t2, &krsa_pub, 1, "malformed token", "trailing dot");
    free(t2);

    t2 = strdup(tok);
    *strrchr(t2, '.') = '\0';
    strcat(t2, ".");
    t_refused(t2, &krsa_pub, 1, "malformed token", "empty signature");
    free(t2);

    /* oversize */

    memset(big, 'A', sizeof(big));
    big[8193] = '\0';
    big[100] = '.';
    big[200] = '.';
    t_refused(big, &krsa_pub, 1, "token too long", "8193-byte token");

    c = ngx_http_hpki_jws_verify(tok, 8193, &krsa_pub, 1, &err);
    t_ok(c == NULL && strcmp(err, "token too long") == 0,
         "length over 8 KiB refused before reading");

    c = json_deep_copy(claims);
    memset(big, 'x', 7000);
    big[7000] = '\0';
    json_object_set_new(c, "pad", json_string(big));
    t2 = ngx_http_hpki_jws_sign(&krsa, c);
    t_ok(t2 == NULL, "sign refuses a token over 8 KiB");
    free(t2);
    json_decref(c);

    c = json_deep_copy(claims);
    big[5500] = '\0';
    json_object_set_new(c, "pad", json_string(big));
    t2 = ngx_http_hpki_jws_sign(&krsa, c);
    json_decref(c);
    c = t2 ? t_verify(t2, &krsa_pub, 1, &err) : NULL;
    t_ok(t2 != NULL && strlen(t2) <= 8192 && c != NULL,
         "token of %zu bytes round trip", t2 ? strlen(t2) : 0);
    json_decref(c);
    free(t2);

    free(tok);

    /* ES256 round trip */

    tok = ngx_http_hpki_jws_sign(&kec, claims);
    t_ok(tok != NULL, "ES256 sign");

    n = ngx_http_hpki_base64url_decode(strrchr(tok, '.') + 1,
                                       strlen(strrchr(tok, '.') + 1), buf,
                                       sizeof(buf));
    t_ok(n == 64, "ES256 signature is raw r||s, 64 bytes");

    c = t_verify(tok, &kec_pub, 1, &err);
    t_ok(c != NULL && json_equal(c, claims), "ES256 verify");
    json_decref(c);

    t2 = strdup(tok);
    dot = strchr(t2, '.');
    t2[dot - t2 + 5] ^= 0x01;
    t_refused(t2, &kec_pub, 1, "bad signature", "ES256 payload tampered");
    free(t2);

    t2 = t_token("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY_DER, ec, NULL, 0);
    t_refused(t2, &kec_pub, 1, "bad signature", "ES256 with DER signature");
    free(t2);

    memset(sig, 0, sizeof(sig));
    t2 = t_token("{\"alg\":\"ES256\",\"kid\":\"ec-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_BYTES, NULL, sig, 64);
    t_refused(t2, &kec_pub, 1, "bad signature", "ES256 r = s = 0");
    free(t2);

    free(tok);

    /* key selection */

    keys[0] = krsa_pub;
    keys[1] = kec_pub;

    tok = ngx_http_hpki_jws_sign(&kec, claims);
    c = t_verify(tok, keys, 2, &err);
    t_ok(c != NULL, "two keys: ES256 token selects the EC key by kid");
    json_decref(c);
    free(tok);

    tok = ngx_http_hpki_jws_sign(&krsa, claims);
    c = t_verify(tok, keys, 2, &err);
    t_ok(c != NULL, "two keys: RS256 token selects the RSA key by kid");
    json_decref(c);

    t_refused(tok, &kec_pub, 1, "unknown kid", "kid mismatch");
    free(tok);

    t2 = t_token("{\"alg\":\"RS256\"}", "{\"sub\":\"a\"}", T_SIG_PKEY, rsa,
                 NULL, 0);
    c = t_verify(t2, &krsa_pub, 1, &err);
    t_ok(c != NULL, "no kid, one key: accepted");
    json_decref(c);
    t_refused(t2, keys, 2, "no kid", "no kid, two keys");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\",\"kid\":7}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad kid", "kid not a string");
    free(t2);

    /* algorithm pinning */

    t2 = t_token("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_NONE, NULL, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "malformed token", "alg none, empty sig");
    free(t2);

    t2 = t_token("{\"alg\":\"none\",\"kid\":\"rsa-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_BYTES, NULL, "x", 1);
    t_refused(t2, &krsa_pub, 1, "alg not allowed", "alg none, some sig");
    free(t2);

    t2 = t_token("{\"alg\":\"None\"}", "{\"sub\":\"a\"}",
                 T_SIG_BYTES, NULL, "x", 1);
    t_refused(t2, &krsa_pub, 1, "alg not allowed", "alg None, no kid");
    free(t2);

    /* RS256 to HS256 confusion: the RSA public key PEM as HMAC secret */

    f = fopen(t_file("rsa.pub"), "r");
    n = fread(pem, 1, sizeof(pem) - 1, f);
    fclose(f);
    pem[n] = '\0';
    rsa_pub_pem = pem;

    t2 = t_token("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}",
                 "{\"sub\":\"admin\"}", T_SIG_HMAC, NULL, rsa_pub_pem,
                 strlen(rsa_pub_pem));
    t_refused(t2, &krsa_pub, 1, "alg not allowed",
              "HS256 keyed with the RSA public key PEM");
    free(t2);

    t2 = t_token("{\"alg\":\"HS256\"}", "{\"sub\":\"admin\"}", T_SIG_HMAC,
                 NULL, rsa_pub_pem, strlen(rsa_pub_pem));
    t_refused(t2, &krsa_pub, 1, "alg not allowed", "HS256, no kid, one key");
    free(t2);

    t2 = t_token("{\"alg\":\"ES256\",\"kid\":\"rsa-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY, ec, NULL, 0);
    t_refused(t2, keys, 2, "alg not allowed", "ES256 header on the RSA kid");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\",\"kid\":\"ec-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, keys, 2, "alg not allowed", "RS256 header on the EC kid");
    free(t2);

    t2 = t_token("{\"alg\":\"PS256\",\"kid\":\"rsa-1\"}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, keys, 2, "alg not allowed", "PS256");
    free(t2);

    t2 = t_token("{\"kid\":\"rsa-1\"}", "{\"sub\":\"a\"}", T_SIG_PKEY, rsa,
                 NULL, 0);
    t_refused(t2, keys, 2, "no alg", "no alg");
    free(t2);

    /* header and payload contents */

    t2 = t_token("{\"alg\":\"RS256\",\"alg\":\"RS256\"}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad header", "duplicate header member");
    free(t2);

    t2 = t_token("[\"RS256\"]", "{\"sub\":\"a\"}", T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad header", "header not an object");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\"", "{\"sub\":\"a\"}", T_SIG_PKEY, rsa,
                 NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad header", "header not JSON");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}",
                 "{\"sub\":\"a\"}", T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "unsupported crit header", "crit header");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\",\"typ\":\"JOSE+JSON\"}",
                 "{\"sub\":\"a\"}", T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad typ", "typ JOSE+JSON");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\",\"typ\":\"jwt\"}", "{\"sub\":\"a\"}",
                 T_SIG_PKEY, rsa, NULL, 0);
    c = t_verify(t2, &krsa_pub, 1, &err);
    t_ok(c != NULL, "typ \"jwt\" (case-insensitive) accepted");
    json_decref(c);
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\"}", "[1,2]", T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad claims",
              "signed payload not an object");
    free(t2);

    t2 = t_token("{\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"sub\":\"b\"}",
                 T_SIG_PKEY, rsa, NULL, 0);
    t_refused(t2, &krsa_pub, 1, "bad claims", "duplicate claim");
    free(t2);

    t_refused("e30.e30.AAAA", NULL, 0, "no keys", "no keys");

    /* JWKS */

    kboth[0] = krsa;
    kboth[1] = kec;

    jwks = ngx_http_hpki_jwks(kboth, 2);
    doc = jwks ? json_loads(jwks, 0, NULL) : NULL;
    k0 = json_array_get(json_object_get(doc, "keys"), 0);
    k1 = json_array_get(json_object_get(doc, "keys"), 1);

    t_ok(doc != NULL && json_array_size(json_object_get(doc, "keys")) == 2,
         "JWKS has two keys");

#define S(o, m)  (json_string_value(json_object_get(o, m))                    \
                  ? json_string_value(json_object_get(o, m)) : "")

    t_ok(strcmp(S(k0, "kty"), "RSA") == 0 && strcmp(S(k0, "alg"), "RS256") == 0
         && strcmp(S(k0, "use"), "sig") == 0
         && strcmp(S(k0, "kid"), "rsa-1") == 0
         && strcmp(S(k0, "e"), "AQAB") == 0
         && ngx_http_hpki_base64url_decode(S(k0, "n"), strlen(S(k0, "n")),
                                           buf, sizeof(buf)) == 256
         && buf[0] != 0 && json_object_get(k0, "d") == NULL,
         "JWKS RSA member: kty, alg, use, kid, e, 256-byte n, no d");

    t_ok(strcmp(S(k1, "kty"), "EC") == 0 && strcmp(S(k1, "alg"), "ES256") == 0
         && strcmp(S(k1, "crv"), "P-256") == 0
         && strcmp(S(k1, "kid"), "ec-1") == 0
         && ngx_http_hpki_base64url_decode(S(k1, "x"), strlen(S(k1, "x")),
                                           buf, sizeof(buf)) == 32
         && ngx_http_hpki_base64url_decode(S(k1, "y"), strlen(S(k1, "y")),
                                           buf, sizeof(buf)) == 32
         && json_object_get(k1, "d") == NULL,
         "JWKS EC member: kty, alg, crv, kid, 32-byte x and y, no d");

#undef S

    json_decref(doc);
    free(jwks);

    jwks = ngx_http_hpki_jwks(NULL, 0);
    t_is(jwks, "{\"keys\":[]}", "JWKS of no keys");
    free(jwks);

    /* sign refuses without a private key or with non-object claims */

    tok = ngx_http_hpki_jws_sign(&krsa_pub, claims);
    t_ok(tok == NULL, "sign with a public key: NULL");
    free(tok);

    c = json_string("x");
    tok = ngx_http_hpki_jws_sign(&krsa, c);
    t_ok(tok == NULL, "sign non-object claims: NULL");
    free(tok);
    json_decref(c);

    ERR_clear_error();

    json_decref(claims);

    ngx_http_hpki_jws_key_free(&krsa);
    ngx_http_hpki_jws_key_free(&krsa_pub);
    ngx_http_hpki_jws_key_free(&kec);
    ngx_http_hpki_jws_key_free(&kec_pub);

    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);

    for (i = 0; i < 1; i++) {
        static const char  *names[] = {
            "rsa.pem", "rsa.pub", "ec.pem", "ec.pub", "rsa1024.pem",
            "ed25519.pem", "p384.pem", "rsa-enc.pem", "garbage.pem"
        };
        size_t  j;

        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            unlink(t_file(names[j]));
        }
    }

    rmdir(t_dir);
}


/* the RFC 7638, 3.1 example key and thumbprint */

static void
t_thumbprint(void)
{
    int                       n;
    FILE                     *f;
    BIGNUM                   *bn_n, *bn_e;
    EVP_PKEY                 *pk;
    EVP_PKEY_CTX             *ctx;
    OSSL_PARAM               *params;
    OSSL_PARAM_BLD           *bld;
    unsigned char             buf[512];
    ngx_http_hpki_jws_key_t   k;
    static char               dir[] = "/tmp/hpki-unit-jwk-XXXXXX";
    char                      path[512];
    static const char        *n64 =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1R"
        "K7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9"
        "yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZg"
        "nYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6We"
        "Zu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDK"
        "gw";

    n = ngx_http_hpki_base64url_decode(n64, strlen(n64), buf, sizeof(buf));
    bn_n = BN_bin2bn(buf, n, NULL);
    bn_e = BN_new();
    BN_set_word(bn_e, 65537);

    bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e);
    params = OSSL_PARAM_BLD_to_param(bld);

    pk = NULL;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY_fromdata_init(ctx);
    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);

    mkdtemp(dir);
    snprintf(path, sizeof(path), "%s/rfc7638.pub", dir);
    f = fopen(path, "w");
    PEM_write_PUBKEY(f, pk);
    fclose(f);

    t_ok(ngx_http_hpki_jws_key_load(&k, path, NULL) == 0,
         "RFC 7638 example key loaded");
    t_is(k.kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
         "default kid is the RFC 7638 thumbprint");

    ngx_http_hpki_jws_key_free(&k);
    unlink(path);
    rmdir(dir);

    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
}


static void
t_check(void)
{
    int          rc;
    long         now;
    json_t      *c;
    const char  *err;
    static const char  *iss = "https://gw.example";

    now = 1700000000;

#define CHECK(c)  (err = NULL,                                                \
                   ngx_http_hpki_jwt_check(c, iss, "hpki", now, 60, &err))

#define REFUSED(mutate, expected, name)                                       \
    c = t_claims(now);                                                        \
    mutate;                                                                   \
    rc = CHECK(c);                                                            \
    t_ok(rc == -1 && err && strcmp(err, expected) == 0,                       \
         "%s: refused (%s)", name, err ? err : "accepted");                   \
    json_decref(c)

#define ACCEPTED(mutate, name)                                                \
    c = t_claims(now);                                                        \
    mutate;                                                                   \
    rc = CHECK(c);                                                            \
    t_ok(rc == 0, "%s: accepted%s%s", name, err ? " / " : "",                \
         err ? err : "");                                                     \
    json_decref(c)

    ACCEPTED((void) 0, "valid claims");

    REFUSED(json_object_set_new(c, "iss", json_string("https://evil")),
            "bad iss", "other iss");
    REFUSED(json_object_del(c, "iss"), "bad iss", "no iss");
    REFUSED(json_object_set_new(c, "iss", json_integer(1)), "bad iss",
            "iss not a string");

    REFUSED(json_object_set_new(c, "aud", json_string("other")), "bad aud",
            "other aud");
    REFUSED(json_object_del(c, "aud"), "bad aud", "no aud");
    ACCEPTED(json_object_set_new(c, "aud", json_pack("[s,s]", "x", "hpki")),
             "aud array containing hpki");
    REFUSED(json_object_set_new(c, "aud", json_pack("[s,s]", "x", "y")),
            "bad aud", "aud array without hpki");
    REFUSED(json_object_set_new(c, "aud", json_array()), "bad aud",
            "empty aud array");
    REFUSED(json_object_set_new(c, "aud", json_string("hpkix")), "bad aud",
            "aud with a suffix");

    REFUSED(json_object_set_new(c, "exp", json_integer(now - 61)),
            "token expired", "exp 61 s ago (leeway 60)");
    ACCEPTED(json_object_set_new(c, "exp", json_integer(now - 59)),
             "exp 59 s ago (leeway 60)");
    REFUSED(json_object_set_new(c, "exp", json_integer(now - 60)),
            "token expired", "exp exactly now - leeway");
    REFUSED(json_object_del(c, "exp"), "no exp", "no exp");
    REFUSED(json_object_set_new(c, "exp", json_string("9999999999")),
            "no exp", "exp a string");
    REFUSED(json_object_set_new(c, "exp", json_real(now + 100.5)),
            "no exp", "exp a real");

    REFUSED(json_object_set_new(c, "nbf", json_integer(now + 61)),
            "token not yet valid", "nbf in 61 s (leeway 60)");
    ACCEPTED(json_object_set_new(c, "nbf", json_integer(now + 60)),
             "nbf in 60 s (leeway 60)");
    ACCEPTED(json_object_del(c, "nbf"), "no nbf");
    REFUSED(json_object_set_new(c, "nbf", json_string("0")), "bad nbf",
            "nbf a string");

    REFUSED(json_object_del(c, "iat"), "no iat", "no iat");
    REFUSED(json_object_set_new(c, "iat", json_null()), "no iat",
            "iat null");
    REFUSED(json_object_set_new(c, "iat", json_integer(now + 3600)),
            "iat in the future", "iat an hour ahead");

    REFUSED(json_object_del(c, "sub"), "no sub", "no sub");
    REFUSED(json_object_set_new(c, "sub", json_string("")), "no sub",
            "empty sub");
    REFUSED(json_object_set_new(c, "sub", json_integer(5)), "no sub",
            "sub an integer");
    REFUSED(json_object_del(c, "jti"), "no jti", "no jti");
    REFUSED(json_object_set_new(c, "jti", json_string("")), "no jti",
            "empty jti");

    c = t_claims(now);
    t_ok(ngx_http_hpki_jwt_check(c, NULL, "hpki", now, 60, &err) == -1
         && ngx_http_hpki_jwt_check(c, iss, NULL, now, 60, &err) == -1,
         "NULL iss or aud: refused");
    t_ok(ngx_http_hpki_jwt_check(c, iss, "hpki", now + 700, 60, &err) == -1,
         "the same claims 700 s later: refused");
    json_decref(c);

    c = json_array();
    t_ok(ngx_http_hpki_jwt_check(c, iss, "hpki", now, 60, &err) == -1,
         "claims not an object: refused");
    json_decref(c);

#undef CHECK
#undef REFUSED
#undef ACCEPTED
}


/* command line modes for t/unit/jws.t */

static int
t_mode(int argc, char **argv)
{
    int                       i, rc;
    char                     *out;
    json_t                   *c;
    const char               *err;
    ngx_http_hpki_jws_key_t   k, keys[8];

    if (strcmp(argv[1], "--sign") == 0 && argc == 3) {
        if (ngx_http_hpki_jws_key_load(&k, argv[2], "interop") != 0) {
            return 2;
        }

        c = t_claims(1700000000);
        out = ngx_http_hpki_jws_sign(&k, c);
        json_decref(c);
        ngx_http_hpki_jws_key_free(&k);

        if (out == NULL) {
            return 2;
        }

        printf("%s\n", out);
        free(out);
        return 0;
    }

    if (strcmp(argv[1], "--verify") == 0 && argc == 4) {
        if (ngx_http_hpki_jws_key_load(&k, argv[2], NULL) != 0) {
            return 2;
        }

        c = ngx_http_hpki_jws_verify(argv[3], strlen(argv[3]), &k, 1, &err);
        ngx_http_hpki_jws_key_free(&k);

        if (c == NULL) {
            printf("error: %s\n", err);
            return 1;
        }

        out = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", out);
        free(out);
        json_decref(c);
        return 0;
    }

    if (strcmp(argv[1], "--kid") == 0 && argc == 3) {
        if (ngx_http_hpki_jws_key_load(&k, argv[2], NULL) != 0) {
            return 2;
        }

        printf("%s\n", k.kid);
        ngx_http_hpki_jws_key_free(&k);
        return 0;
    }

    if (strcmp(argv[1], "--jwks") == 0 && argc >= 3 && argc - 2 <= 8) {
        for (i = 2; i < argc; i++) {
            if (ngx_http_hpki_jws_key_load(&keys[i - 2], argv[i], NULL) != 0) {
                return 2;
            }
        }

        out = ngx_http_hpki_jwks(keys, argc - 2);
        rc = out ? 0 : 2;

        if (out) {
            printf("%s\n", out);
            free(out);
        }

        for (i = 2; i < argc; i++) {
            ngx_http_hpki_jws_key_free(&keys[i - 2]);
        }

        return rc;
    }

    fprintf(stderr, "usage: unit-jws [--sign KEY | --verify KEY TOKEN |"
            " --kid KEY | --jwks KEY...]\n");
    return 2;
}


int
main(int argc, char **argv)
{
    if (argc > 1) {
        return t_mode(argc, argv);
    }

    t_base64url();
    t_jws();
    t_thumbprint();
    t_check();

    printf("1..%d\n", t_num);

    return t_failed ? 1 : 0;
}
