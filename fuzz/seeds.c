/*
 * Writes the seed corpora under fuzz/corpus/ (make fuzz-seeds; the output
 * is committed, so this runs only when the formats change):
 *
 *   seeds OUTDIR KEYDIR CERT.pem...
 *
 * Tokens are signed by the module's own signer (ngx_http_hpki_jws_sign)
 * with the test keys in KEYDIR, frames are built with hpki-signd's encoder,
 * and certificates (DER) and their subjectDirectoryAttributes contents
 * (the hcRole parser's input) come from the PEM files given (the demo PKI
 * and the real MHLW/MEDIS CA certificates).  The CSC bodies are written
 * last, so that adding them did not renumber the other seeds.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ngx_http_hpki_jws.h"
#include "hpki_core.h"
#include "hpki_frame.h"


static const char  *out;
static int          seq;


static void
put(const char *target, const char *name, const void *p, size_t len)
{
    char   path[4096];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s/%02d-%s", out, target, seq++, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}


static void
puts0(const char *target, const char *name, const char *s)
{
    put(target, name, s, strlen(s));
}


static char *
token(ngx_http_hpki_jws_key_t *k, const char *claims)
{
    char          *t;
    json_t        *c;
    json_error_t   err;

    c = json_loads(claims, 0, &err);
    if (c == NULL) {
        fprintf(stderr, "seeds: %s: %s\n", claims, err.text);
        exit(1);
    }
    t = ngx_http_hpki_jws_sign(k, c);
    json_decref(c);
    if (t == NULL) {
        fprintf(stderr, "seeds: cannot sign\n");
        exit(1);
    }
    return t;
}


static char *
b64url(const char *s)
{
    static char  buf[4096];

    if (ngx_http_hpki_base64url_encode((const unsigned char *) s, strlen(s),
                                       buf, sizeof(buf)) < 0)
    {
        exit(1);
    }
    return buf;
}


/* t with another header or payload (if not NULL), same signature */

static char *
splice(const char *t, const char *header, const char *payload)
{
    static char  buf[16384];
    char         h[4096], p[8192];
    const char  *d1, *d2;

    d1 = strchr(t, '.');
    d2 = strchr(d1 + 1, '.');

    snprintf(h, sizeof(h), "%.*s", (int) (d1 - t), t);
    snprintf(p, sizeof(p), "%.*s", (int) (d2 - d1 - 1), d1 + 1);

    if (header != NULL) {
        snprintf(h, sizeof(h), "%s", b64url(header));
    }
    if (payload != NULL) {
        snprintf(p, sizeof(p), "%s", b64url(payload));
    }

    snprintf(buf, sizeof(buf), "%s.%s.%s", h, p, d2 + 1);
    return buf;
}


#define CLAIMS_OK \
    "{\"iss\":\"https://fuzz.example\",\"sub\":\"doctor\",\"aud\":\"hpki\"," \
    "\"iat\":1699990000,\"nbf\":1699990000,\"exp\":4102444800," \
    "\"jti\":\"jti-1\",\"scope\":\"openid sign\",\"amr\":[\"hpki_card\"]," \
    "\"hpki_role\":\"Medical Doctor\"," \
    "\"cnf\":{\"x5t#S256\":\"2XlZ0VyqL1vVAzbWD7S9UvtZh5fGlEoQ4Lwbm4pn2xE\"}}"


static void
tokens(const char *keydir)
{
    char                     path[4096], *t;
    ngx_http_hpki_jws_key_t  rsa, ec, rsa_nokid;
    static const char *claims[] = {
        CLAIMS_OK,
        /* aud as an array, no nbf, no scope "sign" */
        "{\"iss\":\"https://fuzz.example\",\"sub\":\"doctor\","
        "\"aud\":[\"other\",\"hpki\"],\"iat\":1699990000,"
        "\"exp\":4102444800,\"jti\":\"jti-2\",\"scope\":\"openid\"}",
        /* expired */
        "{\"iss\":\"https://fuzz.example\",\"sub\":\"doctor\",\"aud\":\"hpki\","
        "\"iat\":1600000000,\"exp\":1600003600,\"jti\":\"jti-3\","
        "\"scope\":\"sign\"}",
        /* wrong issuer, float exp, huge nbf */
        "{\"iss\":\"https://evil.example\",\"sub\":\"doctor\",\"aud\":\"hpki\","
        "\"iat\":1699990000,\"exp\":4.1e9,\"nbf\":9223372036854775807,"
        "\"jti\":\"jti-4\"}",
        /* another subject */
        "{\"iss\":\"https://fuzz.example\",\"sub\":\"pharmacist\","
        "\"aud\":\"hpki\",\"iat\":1699990000,\"exp\":4102444800,"
        "\"jti\":\"jti-5\",\"scope\":\"sign openid\"}",
    };
    size_t  i;

    snprintf(path, sizeof(path), "%s/rsa.pem", keydir);
    if (ngx_http_hpki_jws_key_load(&rsa, path, "rsa-1") != 0
        || ngx_http_hpki_jws_key_load(&rsa_nokid, path, "x") != 0)
    {
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/ec.pem", keydir);
    if (ngx_http_hpki_jws_key_load(&ec, path, "ec-1") != 0) {
        exit(1);
    }

    for (i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        t = token(&rsa, claims[i]);
        puts0("jws", "rs256", t);
        puts0("signd_token", "rs256", t);
        free(t);

        t = token(&ec, claims[i]);
        puts0("jws", "es256", t);
        free(t);

        puts0("jwt_claims", "claims", claims[i]);
    }

    t = token(&rsa, CLAIMS_OK);

    /* the header without kid (single-key verification), same signature */
    puts0("jws", "nokid", splice(t, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                                 NULL));
    puts0("signd_token", "nokid",
          splice(t, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", NULL));

    /* alg confusion: none, HS256 (with any signature) */
    puts0("jws", "alg-none",
          splice(t, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}",
                 NULL));
    puts0("jws", "alg-hs256",
          splice(t, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa-1\"}",
                 NULL));
    puts0("signd_token", "alg-hs256",
          splice(t, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", NULL));
    puts0("jws", "crit",
          splice(t, "{\"alg\":\"RS256\",\"kid\":\"rsa-1\",\"crit\":[\"b64\"]}",
                 NULL));

    /* altered claims, same signature */
    puts0("jws", "altered",
          splice(t, NULL, "{\"iss\":\"https://fuzz.example\",\"sub\":"
                 "\"admin\",\"aud\":\"hpki\",\"iat\":1,\"exp\":4102444800,"
                 "\"jti\":\"x\"}"));
    puts0("signd_token", "altered",
          splice(t, NULL, "{\"iss\":\"https://fuzz.example\",\"sub\":"
                 "\"admin\",\"aud\":\"hpki\",\"iat\":1,\"exp\":4102444800,"
                 "\"jti\":\"x\",\"scope\":\"sign\"}"));
    free(t);

    puts0("jws", "two-parts", "eyJhbGciOiJSUzI1NiJ9.e30");
    puts0("jws", "padding", "eyJhbGciOiJSUzI1NiJ9=.e30=.AAAA");

    puts0("jwt_claims", "aud-array-int",
          "{\"iss\":\"https://fuzz.example\",\"aud\":[1,\"hpki\"],"
          "\"sub\":\"a\",\"jti\":\"b\",\"iat\":-9223372036854775808,"
          "\"exp\":9223372036854775807,\"nbf\":-1}");
    puts0("jwt_claims", "empty", "{}");

    ngx_http_hpki_jws_key_free(&rsa);
    ngx_http_hpki_jws_key_free(&rsa_nokid);
    ngx_http_hpki_jws_key_free(&ec);
}


static void
base64url(void)
{
    puts0("base64url", "empty", "");
    puts0("base64url", "one", "QQ");
    puts0("base64url", "two", "QUI");
    puts0("base64url", "three", "QUJD");
    puts0("base64url", "url-chars", "-_-_AAAA");
    puts0("base64url", "bad-bits", "QR");
    puts0("base64url", "padded", "QQ==");
    puts0("base64url", "std-alphabet", "+/+/");
    puts0("base64url", "len-mod-1", "QUJDR");
}


static void
frame_put(const char *name, hpki_buf_t *b)
{
    put("frame", name, b->data, b->len);
    b->len = 0;
}


static void
frames(void)
{
    size_t      s, i;
    hpki_buf_t  b;
    u_char      digest[64], bad[8];
    const char *tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkb2N0b3IifQ.c2ln";

    memset(&b, 0, sizeof(b));
    memset(digest, 0xab, sizeof(digest));

    s = hpki_frame_begin(&b, HPKI_T_SIGN);
    hpki_frame_add(&b, HPKI_TAG_TOKEN, tok, strlen(tok));
    hpki_frame_add(&b, HPKI_TAG_USER, "doctor", 6);
    hpki_frame_add_u8(&b, HPKI_TAG_HASH_ALG, 1);
    hpki_frame_add_u8(&b, HPKI_TAG_SIG_ALG, 1);
    hpki_frame_add(&b, HPKI_TAG_DIGEST, digest, 32);
    hpki_frame_add(&b, HPKI_TAG_DIGEST, digest, 32);
    hpki_frame_add(&b, HPKI_TAG_REQUEST_ID, "req-1", 5);
    hpki_frame_end(&b, s);
    frame_put("sign", &b);

    s = hpki_frame_begin(&b, HPKI_T_SIGN);
    hpki_frame_add(&b, HPKI_TAG_TOKEN, tok, strlen(tok));
    hpki_frame_add(&b, HPKI_TAG_USER, "doctor", 6);
    hpki_frame_add_u8(&b, HPKI_TAG_HASH_ALG, 3);
    hpki_frame_add_u8(&b, HPKI_TAG_SIG_ALG, 2);
    for (i = 0; i < HPKI_DIGESTS_MAX + 1; i++) {
        hpki_frame_add(&b, HPKI_TAG_DIGEST, digest, 64);
    }
    hpki_frame_end(&b, s);
    frame_put("sign-65-digests", &b);

    s = hpki_frame_begin(&b, HPKI_T_PING);
    hpki_frame_end(&b, s);
    s = hpki_frame_begin(&b, HPKI_T_PING);
    hpki_frame_end(&b, s);
    frame_put("two-pings", &b);

    s = hpki_frame_begin(&b, HPKI_T_PARTIAL);
    hpki_frame_add_u32(&b, HPKI_TAG_JOB, 7);
    hpki_frame_add(&b, HPKI_TAG_USER, "doctor", 6);
    hpki_frame_add_u32(&b, HPKI_TAG_VERSION, 1);
    hpki_frame_add(&b, HPKI_TAG_TOKEN, tok, strlen(tok));
    hpki_frame_add(&b, HPKI_TAG_MODULUS, digest, 64);
    hpki_frame_add(&b, HPKI_TAG_VALUE, digest, 64);
    hpki_frame_end(&b, s);
    frame_put("partial", &b);

    hpki_frame_error(&b, HPKI_E_UNAUTHORIZED, "token refused");
    frame_put("error", &b);

    s = hpki_frame_begin(&b, HPKI_T_SIGN_OK);
    hpki_frame_add(&b, HPKI_TAG_SIGNATURE, digest, 64);
    hpki_frame_add(&b, HPKI_TAG_CERT, "-----BEGIN CERTIFICATE-----\n", 28);
    hpki_frame_add(&b, HPKI_TAG_KEY_ID, "640f", 4);
    hpki_frame_end(&b, s);
    frame_put("sign-ok", &b);

    /* length 0x00010001 (over HPKI_FRAME_MAX), version 2, overrun */
    put("frame", "too-long", "\x00\x01\x00\x01\x01\x02", 6);
    put("frame", "version-2", "\x00\x00\x00\x02\x02\x02", 6);
    memcpy(bad, "\x00\x00\x00\x05\x01\x01\x01\xff\xff", 8);
    put("frame", "field-overrun", bad, 8);

    hpki_buf_free(&b);
}


static void
bodies(void)
{
    puts0("json_body", "sign",
          "{\"hashes\":[\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]}");
    puts0("json_body", "sign-all",
          "{\"hashes\":[\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\","
          "\"z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwv"
          "Y7kxvUdBeoGlODJ6+SfaPg==\"],\"hash_alg\":\"sha512\","
          "\"sig_alg\":\"rsa-pss\"}");
    puts0("json_body", "duplicate",
          "{\"hashes\":[],\"hashes\":[\"AA==\"]}");
    puts0("json_body", "wrong-types",
          "{\"hashes\":\"AA==\",\"hash_alg\":256,\"sig_alg\":null}");
    puts0("json_body", "deep", "[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]");
    puts0("json_body", "unicode", "{\"hashes\":[\"\\ud83d\\ude00\\u00e9\"]}");
}


/* CSC API v2 request bodies: valid and refused, for every method */

#define CSC_SHA256   "\"2.16.840.1.101.3.4.2.1\""
#define CSC_H256     "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\""
#define CSC_H256B    "\"dYdow8omHYWF5rAV8zR2ANpJQHw88X8KFYxONIf3cvQ=\""
#define CSC_H384     "\"OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l" \
                     "+9Ua0vFImLlb\""
#define CSC_H512     "\"z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXy" \
                     "sP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==\""
#define CSC_SIGN     "{\"credentialID\":\"640f2a9c\"," \
                     "\"SAD\":\"4102444800.c2FkLXJhbmRvbS1ieXRlcw\","
#define CSC_PSS256   "\"MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgEFAKIDAgEg\""
#define CSC_PSS384   "\"MDSgDzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgIFAKIDAgEw\""
#define CSC_PSS_TR2  "\"MDmgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgEFAKIDAgEgowMCAQI=\""


static void
csc(void)
{
    int    i;
    char   buf[8192], *p;

    puts0("csc", "list", "{}");
    puts0("csc", "list-all",
          "{\"userID\":null,\"credentialInfo\":true,\"certificates\":"
          "\"chain\",\"certInfo\":true,\"lang\":\"en-US\"}");
    puts0("csc", "list-userid", "{\"userID\":\"someone-else\"}");
    puts0("csc", "list-certificates-bad", "{\"certificates\":\"all\"}");
    puts0("csc", "list-certificates-none", "{\"certificates\":\"none\"}");

    puts0("csc", "info",
          "{\"credentialID\":\"640f2a9c\",\"certificates\":\"single\","
          "\"certInfo\":false}");
    puts0("csc", "info-id-number", "{\"credentialID\":640}");

    puts0("csc", "authorize-hashes",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":2,\"hashes\":["
          CSC_H256 "," CSC_H256B "],\"hashAlgorithmOID\":" CSC_SHA256 "}");
    puts0("csc", "authorize-count",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":3}");
    puts0("csc", "authorize-zero",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":0}");
    puts0("csc", "authorize-33",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":33}");
    puts0("csc", "authorize-more-hashes",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":1,\"hashes\":["
          CSC_H256 "," CSC_H256B "],\"hashAlgorithmOID\":" CSC_SHA256 "}");
    puts0("csc", "authorize-no-oid",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":1,\"hashes\":["
          CSC_H256 "]}");
    puts0("csc", "authorize-float",
          "{\"credentialID\":\"640f2a9c\",\"numSignatures\":1.0}");

    puts0("csc", "sign-sha256", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.11\"}");
    puts0("csc", "sign-sha384", CSC_SIGN "\"hashes\":[" CSC_H384 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.12\"}");
    puts0("csc", "sign-sha512", CSC_SIGN "\"hashes\":[" CSC_H512 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.13\"}");
    puts0("csc", "sign-rsa-oid", CSC_SIGN "\"hashes\":[" CSC_H256 ","
          CSC_H256B "],\"signAlgo\":\"1.2.840.113549.1.1.1\","
          "\"hashAlgorithmOID\":" CSC_SHA256 "}");
    puts0("csc", "sign-pss", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.10\",\"signAlgoParams\":"
          CSC_PSS256 "}");
    puts0("csc", "sign-pss-no-params", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.10\"}");
    puts0("csc", "sign-rsa-no-oid", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.1\"}");
    puts0("csc", "sign-algo-unknown", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.3.4\"}");
    puts0("csc", "sign-wrong-length", CSC_SIGN "\"hashes\":[" CSC_H384 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.11\"}");
    puts0("csc", "sign-empty", CSC_SIGN "\"hashes\":[],"
          "\"signAlgo\":\"1.2.840.113549.1.1.11\"}");
    puts0("csc", "sign-expired",
          "{\"credentialID\":\"640f2a9c\",\"SAD\":\"1600000000.eHl6\","
          "\"hashes\":[" CSC_H256 "],\"signAlgo\":\"1.2.840.113549.1.1.11\"}");
    puts0("csc", "sign-no-sad",
          "{\"credentialID\":\"640f2a9c\",\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.11\"}");
    puts0("csc", "sign-sad-no-dot",
          "{\"credentialID\":\"640f2a9c\",\"SAD\":\"4102444800\","
          "\"hashes\":[" CSC_H256 "],\"signAlgo\":\"1.2.840.113549.1.1.11\"}");
    puts0("csc", "sign-pss-sha384", CSC_SIGN "\"hashes\":[" CSC_H384 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.10\",\"signAlgoParams\":"
          CSC_PSS384 "}");
    puts0("csc", "sign-pss-other-hash", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.10\",\"signAlgoParams\":"
          CSC_PSS384 ",\"hashAlgorithmOID\":" CSC_SHA256 "}");
    puts0("csc", "sign-pss-trailer-2", CSC_SIGN "\"hashes\":[" CSC_H256 "],"
          "\"signAlgo\":\"1.2.840.113549.1.1.10\",\"signAlgoParams\":"
          CSC_PSS_TR2 "}");

    /* signAlgoParams just over its limit (512 bytes, 684 characters) */

    p = buf + sprintf(buf, CSC_SIGN "\"hashes\":[" CSC_H256 "],"
                      "\"signAlgo\":\"1.2.840.113549.1.1.10\","
                      "\"signAlgoParams\":\"");
    for (i = 0; i < 688; i++) {
        *p++ = 'A';
    }
    p += sprintf(p, "\"}");
    put("csc", "sign-pss-params-long", buf, p - buf);

    /* 33 hashes (over hpki_sign_max_hashes' default), 65 (over its max) */

    p = buf + sprintf(buf, "{\"credentialID\":\"640f2a9c\","
                      "\"numSignatures\":32,\"hashAlgorithmOID\":"
                      CSC_SHA256 ",\"hashes\":[");
    for (i = 0; i < 33; i++) {
        p += sprintf(p, "%s" CSC_H256, i ? "," : "");
    }
    p += sprintf(p, "]}");
    put("csc", "authorize-33-hashes", buf, p - buf);

    p = buf + sprintf(buf, CSC_SIGN "\"signAlgo\":\"1.2.840.113549.1.1.11\","
                      "\"hashes\":[");
    for (i = 0; i < 65; i++) {
        p += sprintf(p, "%s" CSC_H256B, i ? "," : "");
    }
    p += sprintf(p, "]}");
    put("csc", "sign-65-hashes", buf, p - buf);

    puts0("csc", "not-an-object", "[\"credentialID\"]");
    puts0("csc", "duplicate",
          "{\"credentialID\":\"a\",\"credentialID\":\"b\"}");
}


static void
certs(int argc, char **argv)
{
    int                   i, n, idx;
    FILE                 *f;
    X509                 *x;
    const char           *name;
    char                  base[256];
    unsigned char        *der;
    X509_EXTENSION       *ext;
    ASN1_OCTET_STRING    *data;
    static const char     doctor[] =
        "\x30\x24\xa0\x22\x31\x20\xa0\x0c\x06\x0a\x2a\x83\x08\x86\x91\x0f"
        "\x01\x06\x01\x01\xa2\x10\x0c\x0e" "Medical Doctor";

    for (i = 0; i < argc; i++) {
        f = fopen(argv[i], "r");
        if (f == NULL) {
            perror(argv[i]);
            exit(1);
        }
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (x == NULL) {
            continue;               /* a CRL or a key: not a seed */
        }

        name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        snprintf(base, sizeof(base), "%.*s.der", (int) strcspn(name, "."),
                 name);
        name = base;

        der = NULL;
        n = i2d_X509(x, &der);
        if (n <= 0) {
            exit(1);
        }
        put("cert", name, der, n);
        OPENSSL_free(der);

        idx = X509_get_ext_by_NID(x, NID_subject_directory_attributes, -1);
        if (idx >= 0) {
            ext = X509_get_ext(x, idx);
            data = X509_EXTENSION_get_data(ext);
            put("hcrole", name, ASN1_STRING_get0_data(data),
                ASN1_STRING_length(data));
        }

        X509_free(x);
    }

    /* HPKI.md's bare HCActor vector, and wrapped as an extension would be */
    put("hcrole", "hcactor-doctor", doctor, sizeof(doctor) - 1);
}


int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: seeds OUTDIR KEYDIR [CERT.pem...]\n");
        return 2;
    }

    out = argv[1];

    tokens(argv[2]);
    base64url();
    frames();
    bodies();
    certs(argc - 3, argv + 3);
    csc();

    return 0;
}
