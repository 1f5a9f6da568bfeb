/*
 * Unit tests of ngx_http_hpki_csc_request.c, TAP output: the CSC API v2
 * request bodies, each method's valid forms and every refusal with the
 * description a client gets.  "now" is 1700000000 and
 * hpki_sign_max_hashes 32 (its default) unless a test says otherwise.
 *
 *   unit-csc                     run the tests
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "ngx_http_hpki_csc_request.h"
#include "tap.h"


#define T_NOW        1700000000
#define T_MAX        32

#define T_LIST       NGX_HTTP_HPKI_CSC_LIST
#define T_INFO       NGX_HTTP_HPKI_CSC_INFO
#define T_AUTHORIZE  NGX_HTTP_HPKI_CSC_AUTHORIZE
#define T_SIGN       NGX_HTTP_HPKI_CSC_SIGN

#define T_OID256     "\"2.16.840.1.101.3.4.2.1\""
#define T_OID384     "\"2.16.840.1.101.3.4.2.2\""
#define T_OID512     "\"2.16.840.1.101.3.4.2.3\""

/* SHA-256/384/512 of "" and SHA-256 of "prescription", base64 */
#define T_H256       "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define T_H256B      "dYdow8omHYWF5rAV8zR2ANpJQHw88X8KFYxONIf3cvQ="
#define T_H384       "OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l" \
                     "+9Ua0vFImLlb"
#define T_H512       "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXy" \
                     "sP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="

/* RSASSA-PSS-params: SHA-256 or SHA-384, MGF1 with it, salt 32 or 48 */
#define T_PSS256     "\"MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgEFAKIDAgEg\""
#define T_PSS384     "\"MDSgDzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgIFAKIDAgEw\""
/* SHA-256 with trailerField 2; SHA-256 with salt 20; MGF1 with SHA-1 */
#define T_PSS_TR2    "\"MDmgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgEFAKIDAgEgowMCAQI=\""
#define T_PSS_SALT   "\"MDSgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglg" \
                     "hkgBZQMEAgEFAKIDAgEU\""
#define T_PSS_SHA1   "\"MDCgDzANBglghkgBZQMEAgEFAKEYMBYGCSqGSIb3DQEBCDAJBgUr" \
                     "DgMCGgUAogMCASA=\""

#define T_SAD        "\"4102444800.c2FkLXJhbmRvbS1ieXRlcw\""
#define T_SIGN_PRE   "{\"credentialID\":\"640f2a9c\",\"SAD\":" T_SAD ","

#define T_RSA        "\"1.2.840.113549.1.1.1\""
#define T_RSA_PSS    "\"1.2.840.113549.1.1.10\""
#define T_RSA256     "\"1.2.840.113549.1.1.11\""
#define T_RSA384     "\"1.2.840.113549.1.1.12\""
#define T_RSA512     "\"1.2.840.113549.1.1.13\""

#define T_DIGEST_LEN "Invalid digest value length: each hash must be a " \
                     "base64 digest of the hash algorithm's length"
#define T_PSS_BAD    "Invalid parameter signAlgoParams: RSASSA-PSS needs " \
                     "SHA-256/384/512, MGF1 with the same hash and a salt " \
                     "of the digest's length"


static ngx_http_hpki_csc_req_t  t_req;


/* parses "body" into t_req (freeing the last one) */

static int
t_parse_len(int method, const char *body, size_t len, size_t max_hashes)
{
    ngx_http_hpki_csc_req_free(&t_req);

    return ngx_http_hpki_csc_parse(method, body, len, max_hashes, T_NOW,
                                   &t_req);
}


static void
t_accept_max(int method, const char *body, size_t max_hashes,
    const char *name)
{
    int  rc;

    rc = t_parse_len(method, body, strlen(body), max_hashes);

    t_ok(rc == NGX_HTTP_HPKI_CSC_OK, "%s: accepted", name);

    if (rc != NGX_HTTP_HPKI_CSC_OK) {
        printf("#   refused (%d): %s\n", rc,
               t_req.error_description ? t_req.error_description : "-");
    }
}


static void
t_accept(int method, const char *body, const char *name)
{
    t_accept_max(method, body, T_MAX, name);
}


/* a 400 with exactly "description", and nothing left in t_req */

static void
t_refuse_max(int method, const char *body, size_t max_hashes,
    const char *description, const char *name)
{
    int   rc;
    char  what[256];

    rc = t_parse_len(method, body, strlen(body), max_hashes);

    snprintf(what, sizeof(what), "%s: refused", name);

    if (rc != NGX_HTTP_HPKI_CSC_BAD) {
        t_ok(0, "%s (result %d)", what, rc);
        return;
    }

    t_is(t_req.error_description, description, what);

    if (t_req.error == NULL || strcmp(t_req.error, "invalid_request") != 0
        || t_req.body != NULL || t_req.hash_list != NULL
        || t_req.credential_id != NULL || t_req.ndigests != 0)
    {
        t_ok(0, "%s: invalid_request, nothing left", name);
    }
}


static void
t_refuse(int method, const char *body, const char *description,
    const char *name)
{
    t_refuse_max(method, body, T_MAX, description, name);
}


/* the digest of "" (or of "prescription") with the named hash */

static int
t_digest_is(size_t i, const char *md_name, const char *text)
{
    unsigned int   len;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(text, strlen(text), md, &len, EVP_get_digestbyname(md_name),
                   NULL)
        != 1)
    {
        return 0;
    }

    return i < t_req.ndigests && t_req.hash_alg != NULL
           && t_req.hash_alg->len == len
           && memcmp(t_req.digests[i], md, len) == 0;
}


/* {"credentialID":...,"numSignatures":num,"hashes":[n x hash],...} */

static char *
t_hashes_body(const char *prefix, size_t n, const char *hash,
    const char *suffix)
{
    char    *body, *p;
    size_t   i;

    /* prefix, "hashes":[, n times ,"hash", ], suffix, NUL */

    body = malloc(strlen(prefix) + sizeof("\"hashes\":[") - 1
                  + n * (strlen(hash) + 3) + 1 + strlen(suffix) + 1);
    if (body == NULL) {
        exit(2);
    }

    p = body + sprintf(body, "%s\"hashes\":[", prefix);

    for (i = 0; i < n; i++) {
        p += sprintf(p, "%s\"%s\"", i ? "," : "", hash);
    }

    sprintf(p, "]%s", suffix);

    return body;
}


static void
t_common(void)
{
    int          m;
    size_t       len;
    char        *big, name[64];
    static const char *methods[] = { NULL, "list", "info", "authorize",
                                     "signHash" };

    for (m = T_LIST; m <= T_SIGN; m++) {
        snprintf(name, sizeof(name), "%s: empty body", methods[m]);
        t_refuse(m, "", "the body is not a JSON object", name);

        snprintf(name, sizeof(name), "%s: not JSON", methods[m]);
        t_refuse(m, "nope", "the body is not a JSON object", name);

        snprintf(name, sizeof(name), "%s: a JSON array", methods[m]);
        t_refuse(m, "[{}]", "the body is not a JSON object", name);

        snprintf(name, sizeof(name), "%s: duplicate keys", methods[m]);
        t_refuse(m, "{\"credentialID\":\"a\",\"credentialID\":\"a\"}",
                 "the body is not a JSON object", name);

        snprintf(name, sizeof(name), "%s: \\u0000 in a string", methods[m]);
        t_refuse(m, "{\"credentialID\":\"a\\u0000b\"}",
                 "the body is not a JSON object", name);

        snprintf(name, sizeof(name), "%s: a raw NUL byte", methods[m]);
        t_ok(t_parse_len(m, "{}\0", 3, T_MAX) == NGX_HTTP_HPKI_CSC_BAD,
             "%s: refused", name);

        snprintf(name, sizeof(name), "%s: a BOM", methods[m]);
        t_refuse(m, "\xef\xbb\xbf{}", "the body is not a JSON object", name);
    }

    /* 64 KiB exactly is read, one byte more is a 413 */

    len = NGX_HTTP_HPKI_CSC_BODY_MAX;
    big = malloc(len + 2);
    if (big == NULL) {
        exit(2);
    }

    memset(big, ' ', len + 1);
    memcpy(big, "{}", 2);

    t_ok(t_parse_len(T_LIST, big, len, T_MAX) == NGX_HTTP_HPKI_CSC_OK,
         "a body of 64 KiB: accepted");
    t_ok(t_parse_len(T_LIST, big, len + 1, T_MAX)
         == NGX_HTTP_HPKI_CSC_TOO_LARGE,
         "a body of 64 KiB + 1: too large (413)");
    t_ok(t_req.body == NULL && t_req.error == NULL,
         "too large: nothing parsed");

    free(big);

    t_refuse(0, "{}", "no such CSC API method", "method 0: refused");
    t_refuse(5, "{}", "no such CSC API method", "method 5: refused");
}


static void
t_list_info(void)
{
    t_accept(T_LIST, "{}", "list {}");
    t_ok(t_req.credential_id == NULL
         && t_req.certificates == NGX_HTTP_HPKI_CSC_CERTS_SINGLE
         && !t_req.cert_info && !t_req.credential_info,
         "list {}: single, no certInfo, no credentialInfo");

    t_accept(T_LIST, "{\"userID\":null,\"credentialInfo\":true,"
             "\"certificates\":\"chain\",\"certInfo\":true,\"maxResults\":5}",
             "list with every parameter");
    t_ok(t_req.certificates == NGX_HTTP_HPKI_CSC_CERTS_CHAIN
         && t_req.cert_info && t_req.credential_info,
         "list: chain, certInfo, credentialInfo");

    t_accept(T_LIST, "{\"certificates\":\"none\",\"credentialInfo\":1}",
             "list certificates none");
    t_ok(t_req.certificates == NGX_HTTP_HPKI_CSC_CERTS_NONE
         && !t_req.credential_info,
         "list: none; credentialInfo 1 is not true");

    t_accept(T_LIST, "{\"credentialID\":5}",
             "list ignores credentialID");

    t_refuse(T_LIST, "{\"userID\":\"someone-else\"}",
             "userID parameter MUST be null", "list userID a string");
    t_refuse(T_LIST, "{\"userID\":0}",
             "userID parameter MUST be null", "list userID 0");
    t_refuse(T_LIST, "{\"certificates\":\"all\"}",
             "Invalid parameter certificates", "list certificates all");
    t_refuse(T_LIST, "{\"certificates\":1}",
             "Invalid parameter certificates", "list certificates 1");
    t_refuse(T_LIST, "{\"certificates\":null}",
             "Invalid parameter certificates", "list certificates null");
    t_refuse(T_LIST, "{\"certificates\":\"Chain\"}",
             "Invalid parameter certificates", "list certificates Chain");

    t_accept(T_INFO, "{\"credentialID\":\"640f2a9c\",\"certificates\":"
             "\"single\",\"certInfo\":true}", "info");
    t_is(t_req.credential_id, "640f2a9c", "info: credentialID");
    t_ok(t_req.certificates == NGX_HTTP_HPKI_CSC_CERTS_SINGLE
         && t_req.cert_info, "info: single, certInfo");

    t_accept(T_INFO, "{\"credentialID\":\"\"}", "info with credentialID \"\"");

    t_refuse(T_INFO, "{}",
             "Missing (or invalid type) string parameter credentialID",
             "info without credentialID");
    t_refuse(T_INFO, "{\"credentialID\":640}",
             "Missing (or invalid type) string parameter credentialID",
             "info credentialID a number");
    t_refuse(T_INFO, "{\"credentialID\":null}",
             "Missing (or invalid type) string parameter credentialID",
             "info credentialID null");
    t_refuse(T_INFO, "{\"credentialID\":[\"640f2a9c\"]}",
             "Missing (or invalid type) string parameter credentialID",
             "info credentialID an array");
    t_refuse(T_INFO, "{\"credentialID\":\"640f2a9c\",\"certificates\":"
             "\"bogus\"}", "Invalid parameter certificates",
             "info certificates bogus");
    t_refuse(T_INFO, "{\"certificates\":\"bogus\"}",
             "Missing (or invalid type) string parameter credentialID",
             "info: credentialID is checked before certificates");
}


static void
t_authorize(void)
{
    char  *body;

    t_accept(T_AUTHORIZE, "{\"credentialID\":\"640f2a9c\","
             "\"numSignatures\":3}", "authorize for a count");
    t_ok(t_req.num_signatures == 3 && t_req.hash_alg == NULL
         && t_req.ndigests == 0, "authorize: 3, no hashes");
    t_is(t_req.hash_list, "", "authorize: the hash list is empty");
    t_is(t_req.credential_id, "640f2a9c", "authorize: credentialID");

    t_accept(T_AUTHORIZE, "{\"credentialID\":\"640f2a9c\","
             "\"numSignatures\":2,\"hashes\":[\"" T_H256 "\",\"" T_H256B
             "\"],\"hashAlgorithmOID\":" T_OID256 "}",
             "authorize bound to two SHA-256 hashes");
    t_ok(t_req.ndigests == 2 && t_digest_is(0, "sha256", "")
         && t_digest_is(1, "sha256", "prescription"),
         "authorize: the two digests decoded");
    t_is(t_req.hash_list, T_H256 " " T_H256B,
         "authorize: the hash list as Redis keeps it");
    t_is(t_req.hash_alg ? t_req.hash_alg->oid : NULL,
         "2.16.840.1.101.3.4.2.1", "authorize: the hash OID");

    t_accept(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H384 "\"],\"hashAlgorithmOID\":" T_OID384 "}",
             "authorize SHA-384");
    t_ok(t_digest_is(0, "sha384", ""), "authorize: SHA-384 digest");

    t_accept(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H512 "\"],\"hashAlgorithmOID\":" T_OID512 "}",
             "authorize SHA-512");
    t_ok(t_digest_is(0, "sha512", ""), "authorize: SHA-512 digest");

    t_accept(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":32}",
             "authorize 32 (the default maximum)");
    t_accept_max(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":64}",
                 64, "authorize 64 with hpki_sign_max_hashes 64");

    t_refuse(T_AUTHORIZE, "{\"numSignatures\":1}",
             "Missing (or invalid type) string parameter credentialID",
             "authorize without credentialID");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":true,\"numSignatures\":1}",
             "Missing (or invalid type) string parameter credentialID",
             "authorize credentialID true");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\"}",
             "Missing (or invalid type) integer parameter numSignatures",
             "authorize without numSignatures");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":\"1\"}",
             "Missing (or invalid type) integer parameter numSignatures",
             "authorize numSignatures a string");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1.0}",
             "Missing (or invalid type) integer parameter numSignatures",
             "authorize numSignatures 1.0");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":0}",
             "Invalid value for parameter numSignatures",
             "authorize numSignatures 0");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":-1}",
             "Invalid value for parameter numSignatures",
             "authorize numSignatures -1");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":33}",
             "Numbers of signatures is too high",
             "authorize numSignatures 33");
    t_refuse_max(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":65}",
                 1000, "Numbers of signatures is too high",
                 "authorize 65: over the protocol's 64 whatever the limit");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\","
             "\"numSignatures\":9223372036854775807}",
             "Numbers of signatures is too high",
             "authorize numSignatures 2^63-1");

    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H256 "\"]}",
             "Invalid parameter hashAlgorithmOID",
             "authorize hashes without hashAlgorithmOID");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H256 "\"],\"hashAlgorithmOID\":\"1.3.14.3.2."
             "26\"}", "Invalid parameter hashAlgorithmOID",
             "authorize hashAlgorithmOID SHA-1");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H256 "\"],\"hashAlgorithmOID\":256}",
             "Invalid parameter hashAlgorithmOID",
             "authorize hashAlgorithmOID a number");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":null,\"hashAlgorithmOID\":" T_OID256 "}",
             "\"hashes\" must be a non-empty array of base64 digests",
             "authorize hashes null");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":\"" T_H256 "\",\"hashAlgorithmOID\":" T_OID256 "}",
             "\"hashes\" must be a non-empty array of base64 digests",
             "authorize hashes a string");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[],\"hashAlgorithmOID\":" T_OID256 "}",
             "\"hashes\" must be a non-empty array of base64 digests",
             "authorize hashes []");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H256 "\",\"" T_H256B "\"],"
             "\"hashAlgorithmOID\":" T_OID256 "}",
             "more hashes than numSignatures",
             "authorize two hashes for one signature");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"" T_H384 "\"],\"hashAlgorithmOID\":" T_OID256 "}",
             T_DIGEST_LEN, "authorize a SHA-384 digest called SHA-256");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\"],"
             "\"hashAlgorithmOID\":" T_OID256 "}",
             T_DIGEST_LEN, "authorize a hash that is not base64");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"],"
             "\"hashAlgorithmOID\":" T_OID256 "}",
             T_DIGEST_LEN, "authorize 44 characters of 33 bytes");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[\"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\"],"
             "\"hashAlgorithmOID\":" T_OID256 "}",
             T_DIGEST_LEN, "authorize a base64url hash");
    t_refuse(T_AUTHORIZE, "{\"credentialID\":\"k\",\"numSignatures\":1,"
             "\"hashes\":[32],\"hashAlgorithmOID\":" T_OID256 "}",
             T_DIGEST_LEN, "authorize a hash that is a number");

    body = t_hashes_body("{\"credentialID\":\"k\",\"numSignatures\":32,"
                         "\"hashAlgorithmOID\":" T_OID256 ",", 33, T_H256,
                         "}");
    t_refuse(T_AUTHORIZE, body, "too many hashes in one request",
             "authorize 33 hashes");
    t_refuse_max(T_AUTHORIZE, body, 64, "more hashes than numSignatures",
                 "authorize 33 hashes for 32 with the limit at 64");
    free(body);
}


static void
t_sign(void)
{
    char    *body, *p, buf[1024], name[64];
    size_t   n;

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA256 "}", "signHash sha256WithRSAEncryption");
    t_ok(t_req.sig_alg == NGX_HTTP_HPKI_CSC_PKCS1
         && t_req.hash_alg && t_req.hash_alg->id == NGX_HTTP_HPKI_CSC_SHA256
         && t_digest_is(0, "sha256", ""), "signHash: PKCS#1, SHA-256, digest");
    t_is(t_req.sad, "4102444800.c2FkLXJhbmRvbS1ieXRlcw", "signHash: the SAD");
    t_ok(t_req.sad_expires == 4102444800 && t_req.sad_len == 33,
         "signHash: the SAD's expiry and length");
    t_is(t_req.hash_list, T_H256, "signHash: the hash list");
    t_is(t_req.credential_id, "640f2a9c", "signHash: credentialID");

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H384 "\"],"
             "\"signAlgo\":" T_RSA384 "}", "signHash sha384WithRSAEncryption");
    t_ok(t_req.hash_alg && t_req.hash_alg->id == NGX_HTTP_HPKI_CSC_SHA384
         && t_digest_is(0, "sha384", ""), "signHash: SHA-384");

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H512 "\"],"
             "\"signAlgo\":" T_RSA512 "}", "signHash sha512WithRSAEncryption");
    t_ok(t_req.hash_alg && t_req.hash_alg->id == NGX_HTTP_HPKI_CSC_SHA512
         && t_digest_is(0, "sha512", ""), "signHash: SHA-512");

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H512 "\"],"
             "\"signAlgo\":" T_RSA ",\"hashAlgorithmOID\":" T_OID512 "}",
             "signHash rsaEncryption with hashAlgorithmOID");
    t_ok(t_req.sig_alg == NGX_HTTP_HPKI_CSC_PKCS1
         && t_req.hash_alg && t_req.hash_alg->id == NGX_HTTP_HPKI_CSC_SHA512,
         "signHash: PKCS#1 with the OID's hash");

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\",\"" T_H256B
             "\"],\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS256
             "}", "signHash RSASSA-PSS SHA-256");
    t_ok(t_req.sig_alg == NGX_HTTP_HPKI_CSC_PSS && t_req.ndigests == 2
         && t_req.hash_alg && t_req.hash_alg->id == NGX_HTTP_HPKI_CSC_SHA256
         && t_digest_is(1, "sha256", "prescription"),
         "signHash: PSS, SHA-256 from signAlgoParams, two digests");

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H384 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS384
             ",\"hashAlgorithmOID\":" T_OID384 "}",
             "signHash RSASSA-PSS SHA-384 with the same hashAlgorithmOID");
    t_ok(t_req.sig_alg == NGX_HTTP_HPKI_CSC_PSS
         && t_req.hash_alg && t_req.hash_alg->id == NGX_HTTP_HPKI_CSC_SHA384,
         "signHash: PSS, SHA-384");

    /* behaviours kept from the module as it was */

    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA256 ",\"hashAlgorithmOID\":\"junk\"}",
             "signHash: a hash-implying signAlgo ignores hashAlgorithmOID");
    t_accept(T_SIGN, T_SIGN_PRE "\"hashes\":[\"z4PhNX7vuL3xVChQ1m2AB9Yg5AUL"
             "VxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=!\"],"
             "\"signAlgo\":" T_RSA512 "}",
             "signHash: base64 is read up to the first \"=\" (nginx's "
             "decoder)");
    t_ok(t_digest_is(0, "sha512", ""), "... and gives the same digest");
    t_accept(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"1700000001.a.b\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "signHash: the expiry is before the SAD's first \".\"");
    t_ok(t_req.sad_expires == 1700000001, "... 1700000001");

    body = t_hashes_body(T_SIGN_PRE "\"signAlgo\":" T_RSA256 ",", 64,
                         T_H256B, "}");
    t_accept_max(T_SIGN, body, 64, "signHash 64 hashes with the limit at 64");
    t_ok(t_req.ndigests == 64 && t_digest_is(63, "sha256", "prescription"),
         "signHash: 64 digests");
    t_refuse(T_SIGN, body, "too many hashes in one request",
             "signHash 64 hashes with the default limit");
    free(body);

    body = t_hashes_body(T_SIGN_PRE "\"signAlgo\":" T_RSA256 ",", 65,
                         T_H256B, "}");
    t_refuse_max(T_SIGN, body, 64, "too many hashes in one request",
                 "signHash 65 hashes");
    free(body);

    /* refusals, in the order they are checked */

    t_refuse(T_SIGN, "{\"SAD\":" T_SAD ",\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) string parameter credentialID",
             "signHash without credentialID");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) string parameter SAD",
             "signHash without SAD");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"\",\"hashes\":[\""
             T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) string parameter SAD",
             "signHash SAD \"\"");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":4102444800,"
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) string parameter SAD",
             "signHash SAD a number");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"4102444800."
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) string parameter SAD",
             "signHash SAD of 129 bytes");
    t_accept(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"4102444800."
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "signHash SAD of 128 bytes");
    t_refuse(T_SIGN, T_SIGN_PRE "\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) array parameter hash",
             "signHash without hashes");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":\"" T_H256 "\","
             "\"signAlgo\":" T_RSA256 "}",
             "Missing (or invalid type) array parameter hash",
             "signHash hashes a string");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[],\"signAlgo\":" T_RSA256 "}",
             "Empty hash array", "signHash hashes []");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"]}",
             "Missing (or invalid type) string parameter signAlgo",
             "signHash without signAlgo");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":11}",
             "Missing (or invalid type) string parameter signAlgo",
             "signHash signAlgo a number");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":\"1.2.3.4\"}", "Invalid parameter signAlgo",
             "signHash unknown signAlgo");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":\"1.2.840.10045.4.3.2\"}",
             "Invalid parameter signAlgo", "signHash ecdsa-with-SHA256");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA "}",
             "Missing (or invalid type) string parameter hashAlgorithmOID",
             "signHash rsaEncryption without hashAlgorithmOID");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA ",\"hashAlgorithmOID\":\"1.3.14.3.2.26\"}",
             "Invalid parameter hashAlgorithmOID",
             "signHash rsaEncryption with SHA-1");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"hashAlgorithmOID\":null}",
             "Invalid parameter hashAlgorithmOID",
             "signHash PSS with hashAlgorithmOID null");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS "}",
             "Missing (or invalid type) string parameter signAlgoParams",
             "signHash PSS without signAlgoParams");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":{}}",
             "Missing (or invalid type) string parameter signAlgoParams",
             "signHash PSS signAlgoParams an object");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":\"!!\"}",
             T_PSS_BAD, "signHash PSS signAlgoParams not base64");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":\"MAA=\"}",
             T_PSS_BAD, "signHash PSS signAlgoParams an empty SEQUENCE "
             "(SHA-1 defaults)");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS_TR2 "}",
             T_PSS_BAD, "signHash PSS trailerField 2");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS_SALT "}",
             T_PSS_BAD, "signHash PSS salt 20 with SHA-256");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS_SHA1 "}",
             T_PSS_BAD, "signHash PSS MGF1 with SHA-1");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS384
             ",\"hashAlgorithmOID\":" T_OID256 "}",
             T_PSS_BAD, "signHash PSS SHA-384 params, SHA-256 OID");

    /*
     * signAlgoParams of 684 characters without "=" are 513 bytes: they
     * once overflowed a 512-byte buffer (fuzz/regressions/csc/); 685 are
     * over the limit
     */

    for (n = 683; n <= 685; n++) {
        p = buf + sprintf(buf, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
                          "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":\"");
        memset(p, 'A', n);
        strcpy(p + n, "\"}");

        snprintf(name, sizeof(name), "signHash PSS signAlgoParams of %zu "
                 "characters", n);
        t_refuse(T_SIGN, buf, T_PSS_BAD, name);
    }
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA_PSS ",\"signAlgoParams\":" T_PSS384 "}",
             T_DIGEST_LEN, "signHash PSS SHA-384 with a SHA-256 digest");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H384 "\"],"
             "\"signAlgo\":" T_RSA256 "}",
             T_DIGEST_LEN, "signHash a digest of the wrong length");
    t_refuse(T_SIGN, T_SIGN_PRE "\"hashes\":[\"" T_H256 "\",null],"
             "\"signAlgo\":" T_RSA256 "}",
             T_DIGEST_LEN, "signHash a null among the hashes");

    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"4102444800\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Invalid parameter SAD", "signHash SAD without \".\"");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\".x\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Invalid parameter SAD", "signHash SAD without an expiry");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"41024448OO.x\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Invalid parameter SAD", "signHash SAD expiry not digits");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"-1.x\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "Invalid parameter SAD", "signHash SAD expiry -1");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":"
             "\"9223372036854775808.x\",\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA256 "}",
             "Invalid parameter SAD", "signHash SAD expiry 2^63");
    t_accept(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":"
             "\"9223372036854775807.x\",\"hashes\":[\"" T_H256 "\"],"
             "\"signAlgo\":" T_RSA256 "}", "signHash SAD expiry 2^63-1");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"1600000000.x\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "SAD expired", "signHash SAD expired");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"1700000000.x\","
             "\"hashes\":[\"" T_H256 "\"],\"signAlgo\":" T_RSA256 "}",
             "SAD expired", "signHash SAD expiring now");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"nodot\","
             "\"hashes\":[],\"signAlgo\":\"1.2.3.4\"}",
             "Empty hash array",
             "signHash: hashes are checked before signAlgo and the SAD's "
             "expiry");
    t_refuse(T_SIGN, "{\"credentialID\":\"k\",\"SAD\":\"1600000000.x\","
             "\"hashes\":[\"AAAA\"],\"signAlgo\":" T_RSA256 "}",
             T_DIGEST_LEN,
             "signHash: the digests are checked before the SAD's expiry");
}


int
main(void)
{
    t_common();
    t_list_info();
    t_authorize();
    t_sign();

    ngx_http_hpki_csc_req_free(&t_req);

    printf("1..%d\n", t_num);

    return t_failed ? 1 : 0;
}
