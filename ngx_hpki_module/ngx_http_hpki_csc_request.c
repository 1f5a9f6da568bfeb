/*
 * The CSC API v2 request bodies: parsing and validation, the pure C half
 * of ngx_http_hpki_csc.c (see ngx_http_hpki_csc_request.h).  No nginx
 * calls; where the module used nginx's helpers (ngx_decode_base64,
 * ngx_atotm) the same behaviour is written out here.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ngx_http_hpki_csc_request.h"


#define NGX_HTTP_HPKI_CSC_OID_RSA      "1.2.840.113549.1.1.1"
#define NGX_HTTP_HPKI_CSC_OID_RSA_PSS  "1.2.840.113549.1.1.10"

#define ngx_http_hpki_csc_base64_encoded_length(len)  (((len) + 2) / 3 * 4)
#define ngx_http_hpki_csc_base64_decoded_length(len)  (((len) + 3) / 4 * 3)

/* signAlgoParams: base64 of up to 512 bytes, 684 characters */
#define NGX_HTTP_HPKI_CSC_PSS_TEXT_MAX                                       \
    ngx_http_hpki_csc_base64_encoded_length(512)

#define NGX_HTTP_HPKI_CSC_TIME_MAX                                           \
    ((time_t) (sizeof(time_t) == 8 ? INT64_MAX : INT32_MAX))


static int ngx_http_hpki_csc_credential(ngx_http_hpki_csc_req_t *req);
static int ngx_http_hpki_csc_authorize(ngx_http_hpki_csc_req_t *req,
    size_t max_hashes);
static int ngx_http_hpki_csc_sign(ngx_http_hpki_csc_req_t *req,
    size_t max_hashes, time_t now);
static int ngx_http_hpki_csc_sign_algs(ngx_http_hpki_csc_req_t *req);
static int ngx_http_hpki_csc_pss_hash(json_t *params,
    const ngx_http_hpki_csc_hash_t **hash_alg);
static const ngx_http_hpki_csc_hash_t *ngx_http_hpki_csc_find_hash(
    json_t *oid);
static int ngx_http_hpki_csc_digests(ngx_http_hpki_csc_req_t *req,
    json_t *hashes, size_t max_hashes);
static int ngx_http_hpki_csc_hash_list(ngx_http_hpki_csc_req_t *req,
    json_t *hashes);
static int ngx_http_hpki_csc_decode_base64(const char *src, size_t len,
    unsigned char *dst, size_t size, size_t *dlen);
static time_t ngx_http_hpki_csc_atotm(const char *line, size_t n);
static int ngx_http_hpki_csc_bad(ngx_http_hpki_csc_req_t *req,
    const char *description);


static const ngx_http_hpki_csc_hash_t  ngx_http_hpki_csc_hashes[] = {
    { "2.16.840.1.101.3.4.2.1", NGX_HTTP_HPKI_CSC_SHA256, 32 },
    { "2.16.840.1.101.3.4.2.2", NGX_HTTP_HPKI_CSC_SHA384, 48 },
    { "2.16.840.1.101.3.4.2.3", NGX_HTTP_HPKI_CSC_SHA512, 64 },
    { NULL, 0, 0 }
};


/* the first three in the order of ngx_http_hpki_csc_hashes[] */

const char  *ngx_http_hpki_csc_sign_algos[] = {
    "1.2.840.113549.1.1.11",             /* sha256WithRSAEncryption */
    "1.2.840.113549.1.1.12",             /* sha384WithRSAEncryption */
    "1.2.840.113549.1.1.13",             /* sha512WithRSAEncryption */
    NGX_HTTP_HPKI_CSC_OID_RSA_PSS,
    NGX_HTTP_HPKI_CSC_OID_RSA,
    NULL
};


int
ngx_http_hpki_csc_parse(int method, const char *text, size_t len,
    size_t max_hashes, time_t now, ngx_http_hpki_csc_req_t *req)
{
    int            rc;
    json_t        *body;
    const char    *error, *description;
    json_error_t   jerr;

    memset(req, 0, sizeof(ngx_http_hpki_csc_req_t));

    req->method = method;

    if (len > NGX_HTTP_HPKI_CSC_BODY_MAX) {
        return NGX_HTTP_HPKI_CSC_TOO_LARGE;
    }

    if (max_hashes > NGX_HTTP_HPKI_CSC_HASHES_MAX) {
        max_hashes = NGX_HTTP_HPKI_CSC_HASHES_MAX;
    }

    body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        return ngx_http_hpki_csc_bad(req, "the body is not a JSON object");
    }

    req->body = body;

    switch (method) {

    case NGX_HTTP_HPKI_CSC_LIST:
    case NGX_HTTP_HPKI_CSC_INFO:
        rc = ngx_http_hpki_csc_credential(req);
        break;

    case NGX_HTTP_HPKI_CSC_AUTHORIZE:
        rc = ngx_http_hpki_csc_authorize(req, max_hashes);
        break;

    case NGX_HTTP_HPKI_CSC_SIGN:
        rc = ngx_http_hpki_csc_sign(req, max_hashes, now);
        break;

    default:
        rc = ngx_http_hpki_csc_bad(req, "no such CSC API method");
        break;
    }

    if (rc != NGX_HTTP_HPKI_CSC_OK) {
        error = req->error;
        description = req->error_description;

        ngx_http_hpki_csc_req_free(req);

        req->method = method;
        req->error = error;
        req->error_description = description;
    }

    return rc;
}


void
ngx_http_hpki_csc_req_free(ngx_http_hpki_csc_req_t *req)
{
    json_decref(req->body);
    free(req->hash_list);

    memset(req, 0, sizeof(ngx_http_hpki_csc_req_t));
}


/* credentials/list and credentials/info */

static int
ngx_http_hpki_csc_credential(ngx_http_hpki_csc_req_t *req)
{
    json_t      *v;
    const char  *s;

    if (req->method == NGX_HTTP_HPKI_CSC_LIST) {
        v = json_object_get(req->body, "userID");

        if (v && !json_is_null(v)) {
            return ngx_http_hpki_csc_bad(req,
                                         "userID parameter MUST be null");
        }

    } else {
        v = json_object_get(req->body, "credentialID");

        if (!json_is_string(v)) {
            return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) "
                                              "string parameter "
                                              "credentialID");
        }

        req->credential_id = json_string_value(v);
    }

    req->certificates = NGX_HTTP_HPKI_CSC_CERTS_SINGLE;

    v = json_object_get(req->body, "certificates");

    if (v) {
        s = json_is_string(v) ? json_string_value(v) : "";

        if (strcmp(s, "none") == 0) {
            req->certificates = NGX_HTTP_HPKI_CSC_CERTS_NONE;

        } else if (strcmp(s, "chain") == 0) {
            req->certificates = NGX_HTTP_HPKI_CSC_CERTS_CHAIN;

        } else if (strcmp(s, "single") != 0) {
            return ngx_http_hpki_csc_bad(req,
                                         "Invalid parameter certificates");
        }
    }

    req->cert_info = json_is_true(json_object_get(req->body, "certInfo"));
    req->credential_info = json_is_true(json_object_get(req->body,
                                                        "credentialInfo"));

    return NGX_HTTP_HPKI_CSC_OK;
}


/* credentials/authorize: numSignatures, optionally the hashes */

static int
ngx_http_hpki_csc_authorize(ngx_http_hpki_csc_req_t *req, size_t max_hashes)
{
    int      rc;
    json_t  *cred, *num, *hashes;

    cred = json_object_get(req->body, "credentialID");
    num = json_object_get(req->body, "numSignatures");
    hashes = json_object_get(req->body, "hashes");

    if (!json_is_string(cred)) {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) string "
                                          "parameter credentialID");
    }

    if (!json_is_integer(num)) {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) integer "
                                          "parameter numSignatures");
    }

    if (json_integer_value(num) < 1) {
        return ngx_http_hpki_csc_bad(req, "Invalid value for parameter "
                                          "numSignatures");
    }

    if (json_integer_value(num) > (json_int_t) max_hashes) {
        return ngx_http_hpki_csc_bad(req,
                                     "Numbers of signatures is too high");
    }

    req->credential_id = json_string_value(cred);
    req->num_signatures = json_integer_value(num);

    if (hashes) {
        req->hash_alg = ngx_http_hpki_csc_find_hash(
                            json_object_get(req->body, "hashAlgorithmOID"));
        if (req->hash_alg == NULL) {
            return ngx_http_hpki_csc_bad(req, "Invalid parameter "
                                              "hashAlgorithmOID");
        }

        rc = ngx_http_hpki_csc_digests(req, hashes, max_hashes);
        if (rc != NGX_HTTP_HPKI_CSC_OK) {
            return rc;
        }

        if (req->ndigests > (size_t) req->num_signatures) {
            return ngx_http_hpki_csc_bad(req, "more hashes than "
                                              "numSignatures");
        }
    }

    return ngx_http_hpki_csc_hash_list(req, hashes);
}


/* signatures/signHash */

static int
ngx_http_hpki_csc_sign(ngx_http_hpki_csc_req_t *req, size_t max_hashes,
    time_t now)
{
    int          rc;
    json_t      *cred, *sad, *hashes;
    const char  *dot;

    cred = json_object_get(req->body, "credentialID");
    sad = json_object_get(req->body, "SAD");
    hashes = json_object_get(req->body, "hashes");

    if (!json_is_string(cred)) {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) string "
                                          "parameter credentialID");
    }

    if (!json_is_string(sad) || json_string_length(sad) == 0
        || json_string_length(sad) > NGX_HTTP_HPKI_CSC_SAD_MAX)
    {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) string "
                                          "parameter SAD");
    }

    if (!json_is_array(hashes)) {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) array "
                                          "parameter hash");
    }

    if (json_array_size(hashes) == 0) {
        return ngx_http_hpki_csc_bad(req, "Empty hash array");
    }

    req->credential_id = json_string_value(cred);

    rc = ngx_http_hpki_csc_sign_algs(req);
    if (rc != NGX_HTTP_HPKI_CSC_OK) {
        return rc;
    }

    rc = ngx_http_hpki_csc_digests(req, hashes, max_hashes);
    if (rc != NGX_HTTP_HPKI_CSC_OK) {
        return rc;
    }

    /* "<expiry>.<random>": an expired SAD says so without Redis */

    req->sad = json_string_value(sad);
    req->sad_len = json_string_length(sad);

    dot = memchr(req->sad, '.', req->sad_len);

    req->sad_expires = dot ? ngx_http_hpki_csc_atotm(req->sad, dot - req->sad)
                           : -1;

    if (req->sad_expires == -1) {
        return ngx_http_hpki_csc_bad(req, "Invalid parameter SAD");
    }

    if (req->sad_expires <= now) {
        return ngx_http_hpki_csc_bad(req, "SAD expired");
    }

    return ngx_http_hpki_csc_hash_list(req, hashes);
}


/*
 * signAlgo: sha256/384/512WithRSAEncryption (the hash implied),
 * rsaEncryption with hashAlgorithmOID, or RSASSA-PSS whose signAlgoParams
 * must say what hpki-signd does: MGF1 with the same hash, salt length =
 * digest length, trailer 1.
 */

static int
ngx_http_hpki_csc_sign_algs(ngx_http_hpki_csc_req_t *req)
{
    json_t                          *algo, *hash_oid, *params;
    size_t                           i;
    const char                      *oid;
    const ngx_http_hpki_csc_hash_t  *pss_hash;

    algo = json_object_get(req->body, "signAlgo");
    hash_oid = json_object_get(req->body, "hashAlgorithmOID");

    if (!json_is_string(algo)) {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) string "
                                          "parameter signAlgo");
    }

    oid = json_string_value(algo);

    for (i = 0; i < 3; i++) {
        if (strcmp(oid, ngx_http_hpki_csc_sign_algos[i]) == 0) {
            req->hash_alg = &ngx_http_hpki_csc_hashes[i];
            req->sig_alg = NGX_HTTP_HPKI_CSC_PKCS1;
            return NGX_HTTP_HPKI_CSC_OK;
        }
    }

    if (strcmp(oid, NGX_HTTP_HPKI_CSC_OID_RSA) != 0
        && strcmp(oid, NGX_HTTP_HPKI_CSC_OID_RSA_PSS) != 0)
    {
        return ngx_http_hpki_csc_bad(req, "Invalid parameter signAlgo");
    }

    if (hash_oid) {
        req->hash_alg = ngx_http_hpki_csc_find_hash(hash_oid);
        if (req->hash_alg == NULL) {
            return ngx_http_hpki_csc_bad(req, "Invalid parameter "
                                              "hashAlgorithmOID");
        }
    }

    if (strcmp(oid, NGX_HTTP_HPKI_CSC_OID_RSA) == 0) {

        if (req->hash_alg == NULL) {
            return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) "
                                              "string parameter "
                                              "hashAlgorithmOID");
        }

        req->sig_alg = NGX_HTTP_HPKI_CSC_PKCS1;
        return NGX_HTTP_HPKI_CSC_OK;
    }

    params = json_object_get(req->body, "signAlgoParams");

    if (!json_is_string(params)) {
        return ngx_http_hpki_csc_bad(req, "Missing (or invalid type) string "
                                          "parameter signAlgoParams");
    }

    if (ngx_http_hpki_csc_pss_hash(params, &pss_hash) != 0
        || (req->hash_alg && req->hash_alg != pss_hash))
    {
        return ngx_http_hpki_csc_bad(req, "Invalid parameter signAlgoParams: "
                                          "RSASSA-PSS needs SHA-256/384/512, "
                                          "MGF1 with the same hash and a "
                                          "salt of the digest's length");
    }

    req->hash_alg = pss_hash;
    req->sig_alg = NGX_HTTP_HPKI_CSC_PSS;

    return NGX_HTTP_HPKI_CSC_OK;
}


/* base64 DER RSASSA-PSS-params (RFC 4055): 0 and the hash, or -1 */

static int
ngx_http_hpki_csc_pss_hash(json_t *params,
    const ngx_http_hpki_csc_hash_t **hash_alg)
{
    int                   rc, nid, mgf_nid;
    long                  salt;
    size_t                i, len, dlen;
    ASN1_TYPE            *param;
    X509_ALGOR           *mgf_hash;
    const char           *text;
    unsigned char         der[ngx_http_hpki_csc_base64_decoded_length(
                                  NGX_HTTP_HPKI_CSC_PSS_TEXT_MAX)];
    RSA_PSS_PARAMS       *pss;
    const unsigned char  *p;

    text = json_string_value(params);
    len = json_string_length(params);

    /*
     * 684 characters without "=" decode to 513 bytes: der holds what the
     * longest text accepted decodes to
     */

    if (len > NGX_HTTP_HPKI_CSC_PSS_TEXT_MAX) {
        return -1;
    }

    if (ngx_http_hpki_csc_decode_base64(text, len, der, sizeof(der), &dlen)
        != 0)
    {
        return -1;
    }

    p = der;
    pss = d2i_RSA_PSS_PARAMS(NULL, &p, (long) dlen);

    if (pss == NULL || p != der + dlen || pss->hashAlgorithm == NULL
        || pss->maskGenAlgorithm == NULL || pss->saltLength == NULL)
    {
        RSA_PSS_PARAMS_free(pss);
        ERR_clear_error();
        return -1;
    }

    rc = -1;
    mgf_hash = NULL;

    nid = OBJ_obj2nid(pss->hashAlgorithm->algorithm);
    salt = ASN1_INTEGER_get(pss->saltLength);

    if (OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1) {
        goto done;
    }

    param = pss->maskGenAlgorithm->parameter;

    if (param == NULL || param->type != V_ASN1_SEQUENCE) {
        goto done;
    }

    p = param->value.sequence->data;
    mgf_hash = d2i_X509_ALGOR(NULL, &p, param->value.sequence->length);

    if (mgf_hash == NULL) {
        goto done;
    }

    mgf_nid = OBJ_obj2nid(mgf_hash->algorithm);

    if (pss->trailerField && ASN1_INTEGER_get(pss->trailerField) != 1) {
        goto done;
    }

    for (i = 0; ngx_http_hpki_csc_hashes[i].oid; i++) {
        if (OBJ_txt2nid(ngx_http_hpki_csc_hashes[i].oid) == nid
            && nid == mgf_nid
            && salt == (long) ngx_http_hpki_csc_hashes[i].len)
        {
            *hash_alg = &ngx_http_hpki_csc_hashes[i];
            rc = 0;
            break;
        }
    }

done:

    X509_ALGOR_free(mgf_hash);
    RSA_PSS_PARAMS_free(pss);
    ERR_clear_error();

    return rc;
}


/* a hash algorithm by OID; NULL if absent, not a string or unknown */

static const ngx_http_hpki_csc_hash_t *
ngx_http_hpki_csc_find_hash(json_t *oid)
{
    const ngx_http_hpki_csc_hash_t  *h;

    if (!json_is_string(oid)) {
        return NULL;
    }

    for (h = ngx_http_hpki_csc_hashes; h->oid; h++) {
        if (strcmp(h->oid, json_string_value(oid)) == 0) {
            return h;
        }
    }

    return NULL;
}


/*
 * "hashes": 1 to max_hashes base64 digests of req->hash_alg's length,
 * decoded into req->digests.
 */

static int
ngx_http_hpki_csc_digests(ngx_http_hpki_csc_req_t *req, json_t *hashes,
    size_t max_hashes)
{
    size_t          i, n, len, dlen;
    json_t         *h;
    unsigned char   buf[ngx_http_hpki_csc_base64_decoded_length(
                        ngx_http_hpki_csc_base64_encoded_length(
                            NGX_HTTP_HPKI_CSC_DIGEST_MAX))];

    n = json_array_size(hashes);

    if (!json_is_array(hashes) || n == 0) {
        return ngx_http_hpki_csc_bad(req, "\"hashes\" must be a non-empty "
                                          "array of base64 digests");
    }

    if (n > max_hashes) {
        return ngx_http_hpki_csc_bad(req, "too many hashes in one request");
    }

    len = ngx_http_hpki_csc_base64_encoded_length(req->hash_alg->len);

    for (i = 0; i < n; i++) {
        h = json_array_get(hashes, i);

        if (!json_is_string(h) || json_string_length(h) != len
            || ngx_http_hpki_csc_decode_base64(json_string_value(h), len,
                                               buf, sizeof(buf), &dlen)
               != 0
            || dlen != req->hash_alg->len)
        {
            return ngx_http_hpki_csc_bad(req, "Invalid digest value length: "
                                              "each hash must be a base64 "
                                              "digest of the hash "
                                              "algorithm's length");
        }

        memcpy(req->digests[i], buf, dlen);
    }

    req->ndigests = n;

    return NGX_HTTP_HPKI_CSC_OK;
}


/* the hashes' base64 text, space-separated, for Redis */

static int
ngx_http_hpki_csc_hash_list(ngx_http_hpki_csc_req_t *req, json_t *hashes)
{
    char    *p;
    size_t   i, len;
    json_t  *h;

    len = 0;

    for (i = 0; i < json_array_size(hashes); i++) {
        len += json_string_length(json_array_get(hashes, i)) + 1;
    }

    req->hash_list = malloc(len + 1);
    if (req->hash_list == NULL) {
        return NGX_HTTP_HPKI_CSC_NOMEM;
    }

    p = req->hash_list;

    for (i = 0; i < json_array_size(hashes); i++) {
        h = json_array_get(hashes, i);

        if (i) {
            *p++ = ' ';
        }

        memcpy(p, json_string_value(h), json_string_length(h));
        p += json_string_length(h);
    }

    *p = '\0';

    req->hash_list_len = p - req->hash_list;

    return NGX_HTTP_HPKI_CSC_OK;
}


/*
 * Standard base64 as nginx's ngx_decode_base64() reads it: decoding stops
 * at the first "=" and what follows is not looked at; the trailing bits
 * are not checked.  -1 if not base64, or if the bytes would not fit in
 * "size" (callers size dst for the longest text they accept).
 */

static int
ngx_http_hpki_csc_decode_base64(const char *src, size_t len,
    unsigned char *dst, size_t size, size_t *dlen)
{
    size_t                n;
    unsigned char        *d;
    const unsigned char  *s;
    static const unsigned char  basis64[] = {
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 62, 77, 77, 77, 63,
        52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 77, 77, 77, 77, 77, 77,
        77,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
        15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 77, 77, 77, 77, 77,
        77, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 77, 77, 77, 77, 77,

        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
        77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77
    };

    s = (const unsigned char *) src;

    for (n = 0; n < len; n++) {
        if (s[n] == '=') {
            break;
        }

        if (basis64[s[n]] == 77) {
            return -1;
        }
    }

    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > size) {
        return -1;
    }

    d = dst;

    while (n > 3) {
        *d++ = (unsigned char) (basis64[s[0]] << 2 | basis64[s[1]] >> 4);
        *d++ = (unsigned char) (basis64[s[1]] << 4 | basis64[s[2]] >> 2);
        *d++ = (unsigned char) (basis64[s[2]] << 6 | basis64[s[3]]);

        s += 4;
        n -= 4;
    }

    if (n > 1) {
        *d++ = (unsigned char) (basis64[s[0]] << 2 | basis64[s[1]] >> 4);
    }

    if (n > 2) {
        *d++ = (unsigned char) (basis64[s[1]] << 4 | basis64[s[2]] >> 2);
    }

    *dlen = d - dst;

    return 0;
}


/* nginx's ngx_atotm(): n > 0 decimal digits up to time_t's maximum, or -1 */

static time_t
ngx_http_hpki_csc_atotm(const char *line, size_t n)
{
    time_t  value, cutoff, cutlim;

    if (n == 0) {
        return -1;
    }

    cutoff = NGX_HTTP_HPKI_CSC_TIME_MAX / 10;
    cutlim = NGX_HTTP_HPKI_CSC_TIME_MAX % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return -1;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return -1;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


/* CSC's 400: "invalid_request" with the specification's description */

static int
ngx_http_hpki_csc_bad(ngx_http_hpki_csc_req_t *req, const char *description)
{
    req->error = "invalid_request";
    req->error_description = description;

    return NGX_HTTP_HPKI_CSC_BAD;
}
