/*
 * CSC API v2: info, credentials/list, credentials/info,
 * credentials/authorize and signatures/signHash.
 *
 * A user's credential is their second certificate's key; its credentialID
 * is the key id hpki-admin gave it (hpki:key:<sub> "kid").  The caller's
 * token is the service and user authorization (the daily login), so
 * authorize needs no further authentication object ("explicit" mode with
 * none).  A SAD is "<expiry>.<random>": Redis keeps it only as the SHA-256,
 * bound to the user, the credential, a count and optionally the hashes;
 * signHash consumes it atomically in one script, and the signatures come
 * from hpki-signd through the same upstream as /hpki/sign.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_csc.h"
#include "ngx_http_hpki_sign.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_cert.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>


#define NGX_HTTP_HPKI_CSC_LIST        1
#define NGX_HTTP_HPKI_CSC_INFO        2
#define NGX_HTTP_HPKI_CSC_AUTHORIZE   3
#define NGX_HTTP_HPKI_CSC_SIGN        4

#define NGX_HTTP_HPKI_SAD_MAX         128

#define NGX_HTTP_HPKI_OID_RSA         "1.2.840.113549.1.1.1"
#define NGX_HTTP_HPKI_OID_RSA_PSS     "1.2.840.113549.1.1.10"


typedef struct {
    ngx_str_t                    name;
    ngx_uint_t                   method;
} ngx_http_hpki_csc_method_t;


typedef struct {
    ngx_uint_t                   method;
    json_t                      *body;
    ngx_array_t                 *digests;
    ngx_http_hpki_alg_t         *hash_alg;
    ngx_uint_t                   sig_alg;
    ngx_str_t                    sad;
} ngx_http_hpki_csc_ctx_t;


static void ngx_http_hpki_csc_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_csc_credential(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx);
static void ngx_http_hpki_csc_record(ngx_http_request_t *r, void *data,
    redisReply *reply);
static json_t *ngx_http_hpki_csc_credential_info(ngx_http_request_t *r,
    json_t *body, redisReply *record);
static ngx_int_t ngx_http_hpki_csc_authorize(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx);
static void ngx_http_hpki_csc_authorized(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_csc_sign(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx);
static ngx_int_t ngx_http_hpki_csc_sign_algs(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx, json_t *body);
static ngx_int_t ngx_http_hpki_csc_pss_hash(json_t *params,
    ngx_http_hpki_alg_t **hash_alg);
static void ngx_http_hpki_csc_consumed(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_csc_sad_key(ngx_str_t *sad, u_char *key);
static ngx_int_t ngx_http_hpki_csc_hash_list(ngx_http_request_t *r,
    json_t *hashes, ngx_str_t *list);
static ngx_int_t ngx_http_hpki_csc_bad(ngx_http_request_t *r,
    const char *description);
static void ngx_http_hpki_csc_cleanup(void *data);


static ngx_http_hpki_csc_method_t  ngx_http_hpki_csc_methods[] = {
    { ngx_string("credentials/list"), NGX_HTTP_HPKI_CSC_LIST },
    { ngx_string("credentials/info"), NGX_HTTP_HPKI_CSC_INFO },
    { ngx_string("credentials/authorize"), NGX_HTTP_HPKI_CSC_AUTHORIZE },
    { ngx_string("signatures/signHash"), NGX_HTTP_HPKI_CSC_SIGN },
    { ngx_null_string, 0 }
};


static const char  *ngx_http_hpki_csc_algos[] = {
    "1.2.840.113549.1.1.11",             /* sha256WithRSAEncryption */
    "1.2.840.113549.1.1.12",             /* sha384WithRSAEncryption */
    "1.2.840.113549.1.1.13",             /* sha512WithRSAEncryption */
    NGX_HTTP_HPKI_OID_RSA_PSS,
    NGX_HTTP_HPKI_OID_RSA,
    NULL
};


/*
 * KEYS: hpki:key:<sub>, hpki:sad:<sha256>; ARGV: credentialID, sub,
 * numSignatures, hashes ("" or space-separated), hash OID, expiry.
 */

static const char  ngx_http_hpki_csc_authorize_script[] =
    "local k = redis.call('HMGET', KEYS[1], 'kid', 'status', 'cert') "
    "if not k[1] or k[1] ~= ARGV[1] then return 'credential' end "
    "if k[2] ~= 'active' or not k[3] or k[3] == '' then "
    "  return 'disabled' end "
    "redis.call('HSET', KEYS[2], 'sub', ARGV[2], 'cred', ARGV[1], "
    "  'left', ARGV[3], 'hashes', ARGV[4], 'alg', ARGV[5]) "
    "redis.call('EXPIREAT', KEYS[2], ARGV[6]) "
    "return 'ok'";


/*
 * KEYS: hpki:sad:<sha256>, rate key; ARGV: sub, credentialID, count,
 * hash OID, the request's hashes (space-separated), rate (0: none), window.
 */

static const char  ngx_http_hpki_csc_consume_script[] =
    "local s = redis.call('HMGET', KEYS[1], 'sub', 'cred', 'left', "
    "  'hashes', 'alg') "
    "if not s[1] or s[1] ~= ARGV[1] then return 'sad' end "
    "if s[2] ~= ARGV[2] then return 'credential' end "
    "local n = tonumber(ARGV[3]) "
    "if n > tonumber(s[3]) then return 'count' end "
    "if s[4] ~= '' then "
    "  if s[5] ~= ARGV[4] then return 'alg' end "
    "  local bound = ' ' .. s[4] .. ' ' "
    "  for h in string.gmatch(ARGV[5], '%S+') do "
    "    if not string.find(bound, ' ' .. h .. ' ', 1, true) then "
    "      return 'hash' end "
    "  end "
    "end "
    "if ARGV[6] ~= '0' then "
    "  local used = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "  if used + n > tonumber(ARGV[6]) then return 'rate' end "
    "  redis.call('INCRBY', KEYS[2], n) "
    "  redis.call('EXPIRE', KEYS[2], ARGV[7]) "
    "end "
    "if redis.call('HINCRBY', KEYS[1], 'left', -n) <= 0 then "
    "  redis.call('DEL', KEYS[1]) end "
    "return 'ok'";


/* POST /csc/v2/info: no authorization needed */

ngx_int_t
ngx_http_hpki_csc_info_handler(ngx_http_request_t *r)
{
    json_t                     *body, *algos;
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_hpki_main_conf_t  *hmcf;

    if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_GET))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (ngx_http_hpki_get_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    algos = json_array();
    if (algos == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; ngx_http_hpki_csc_algos[i]; i++) {
        json_array_append_new(algos, json_string(ngx_http_hpki_csc_algos[i]));
    }

    body = json_pack("{s:s, s:s, s:s%+, s:s, s:s, s:s, s:[s], s:s%,"
                     " s:b, s:[s,s,s,s], s:{s:o}, s:{s:[]}, s:[]}",
                     "specs", "2.0.0.0",
                     "name", "HPKI remote-signing gateway",
                     "logo", hmcf->issuer.data, hmcf->issuer.len,
                         "/favicon.ico",
                     "region", "JP",
                     "lang", "en-US",
                     "description", "Remote signing with HPKI second "
                                    "certificates held as two key shares",
                     "authType", "external",
                     "oauth2Issuer", hmcf->issuer.data, hmcf->issuer.len,
                     "asynchronousOperationMode", 0,
                     "methods", "credentials/list", "credentials/info",
                         "credentials/authorize", "signatures/signHash",
                     "signAlgorithms", "algos", algos,
                     "signature_formats", "formats",
                     "conformance_levels");
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}


/* every other method: behind hpki_auth, dispatched on the URI's tail */

ngx_int_t
ngx_http_hpki_csc_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_uint_t                   method;
    ngx_http_hpki_csc_ctx_t     *cctx;
    ngx_http_hpki_csc_method_t  *m;

    method = 0;

    for (m = ngx_http_hpki_csc_methods; m->name.len; m++) {
        if (r->uri.len >= m->name.len
            && ngx_strncmp(r->uri.data + r->uri.len - m->name.len,
                           m->name.data, m->name.len) == 0)
        {
            method = m->method;
            break;
        }
    }

    rc = ngx_http_hpki_sign_allowed(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (method == 0) {
        return ngx_http_hpki_error(r, NGX_HTTP_NOT_FOUND, "invalid_request",
                                   "no such CSC API method");
    }

    cctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_csc_ctx_t));
    if (cctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cctx->method = method;

    return ngx_http_hpki_read_body(r, cctx, ngx_http_hpki_csc_body);
}


static void
ngx_http_hpki_csc_body(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_pool_cleanup_t       *cln;
    ngx_http_hpki_ctx_t      *ctx;
    ngx_http_hpki_csc_ctx_t  *cctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    cctx = ctx->data;

    rc = ngx_http_hpki_json_body(r, &cctx->body);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(cctx->body);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_hpki_csc_cleanup;
    cln->data = cctx->body;

    switch (cctx->method) {

    case NGX_HTTP_HPKI_CSC_AUTHORIZE:
        rc = ngx_http_hpki_csc_authorize(r, cctx);
        break;

    case NGX_HTTP_HPKI_CSC_SIGN:
        rc = ngx_http_hpki_csc_sign(r, cctx);
        break;

    default:
        rc = ngx_http_hpki_csc_credential(r, cctx);
        break;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


/* credentials/list and credentials/info: the user's key record */

static ngx_int_t
ngx_http_hpki_csc_credential(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx)
{
    json_t               *v;
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (cctx->method == NGX_HTTP_HPKI_CSC_LIST) {
        v = json_object_get(cctx->body, "userID");

        if (v && !json_is_null(v)) {
            return ngx_http_hpki_csc_bad(r, "userID parameter MUST be null");
        }

    } else if (!json_is_string(json_object_get(cctx->body, "credentialID"))) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) string "
                                        "parameter credentialID");
    }

    v = json_object_get(cctx->body, "certificates");

    if (v && !(json_is_string(v)
               && (ngx_strcmp(json_string_value(v), "none") == 0
                   || ngx_strcmp(json_string_value(v), "single") == 0
                   || ngx_strcmp(json_string_value(v), "chain") == 0)))
    {
        return ngx_http_hpki_csc_bad(r, "Invalid parameter certificates");
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_csc_record, cctx,
                                     "HMGET hpki:key:%b kid status bits "
                                     "cert chain",
                                     ctx->id.subject.data,
                                     ctx->id.subject.len);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return (rc == NGX_OK) ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
}


static void
ngx_http_hpki_csc_record(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_csc_ctx_t  *cctx = data;

    json_t       *body, *info, *ids, *v;
    ngx_int_t     rc;
    redisReply   *kid;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 5)
    {
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    kid = reply->element[0];

    if (cctx->method == NGX_HTTP_HPKI_CSC_INFO) {
        v = json_object_get(cctx->body, "credentialID");

        if (kid->type != REDIS_REPLY_STRING
            || ngx_strcmp(json_string_value(v), kid->str) != 0)
        {
            ngx_http_finalize_request(r, ngx_http_hpki_csc_bad(r,
                                      "Invalid parameter credentialID"));
            return;
        }

        body = ngx_http_hpki_csc_credential_info(r, cctx->body, reply);

    } else {
        ids = json_array();
        body = json_pack("{s:o}", "credentialIDs", ids);

        if (body && kid->type == REDIS_REPLY_STRING) {
            json_array_append_new(ids, json_string(kid->str));

            if (json_is_true(json_object_get(cctx->body, "credentialInfo"))) {
                info = ngx_http_hpki_csc_credential_info(r, cctx->body,
                                                         reply);
                if (info == NULL) {
                    json_decref(body);
                    body = NULL;

                } else {
                    json_object_set_new(info, "credentialID",
                                        json_string(kid->str));
                    json_object_set_new(body, "credentialInfos",
                                        json_pack("[o]", info));
                }
            }
        }
    }

    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    ngx_http_finalize_request(r, rc);
}


static json_t *
ngx_http_hpki_csc_time(const ASN1_TIME *t)
{
    char       buf[32];
    struct tm  tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1
        || strftime(buf, sizeof(buf), "%Y%m%d%H%M%SZ", &tm) == 0)
    {
        return json_null();
    }

    return json_string(buf);
}


static json_t *
ngx_http_hpki_csc_dn(const X509_NAME *name)
{
    BIO     *bio;
    char    *p;
    long     len;
    json_t  *s;

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return NULL;
    }

    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);

    len = BIO_get_mem_data(bio, &p);
    s = json_stringn(p, len);

    BIO_free(bio);

    return s;
}


/* base64 DER of every certificate of a PEM text, appended to "out" */

static ngx_int_t
ngx_http_hpki_csc_certs(redisReply *pem, json_t *out, X509 **first)
{
    int            len;
    BIO           *bio;
    X509          *x;
    u_char        *der;
    ngx_str_t      src, dst;
    unsigned char *p;

    if (pem == NULL || pem->type != REDIS_REPLY_STRING || pem->len == 0) {
        return NGX_OK;
    }

    bio = BIO_new_mem_buf(pem->str, pem->len);
    if (bio == NULL) {
        return NGX_ERROR;
    }

    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {

        len = i2d_X509(x, NULL);
        der = (len > 0) ? OPENSSL_malloc(len) : NULL;

        if (der == NULL) {
            X509_free(x);
            break;
        }

        p = der;
        i2d_X509(x, &p);

        src.data = der;
        src.len = len;
        dst.len = ngx_base64_encoded_length(len);
        dst.data = OPENSSL_malloc(dst.len);

        if (dst.data) {
            ngx_encode_base64(&dst, &src);
            json_array_append_new(out, json_stringn((char *) dst.data,
                                                    dst.len));
            OPENSSL_free(dst.data);
        }

        OPENSSL_free(der);

        if (first && *first == NULL) {
            *first = x;

        } else {
            X509_free(x);
        }
    }

    ERR_clear_error();
    BIO_free(bio);

    return NGX_OK;
}


static json_t *
ngx_http_hpki_csc_credential_info(ngx_http_request_t *r, json_t *body,
    redisReply *record)
{
    char                      *serial;
    X509                      *cert;
    json_t                    *info, *certs, *algos, *c, *v;
    ngx_uint_t                 i, chain;
    redisReply                *status, *bits;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    status = record->element[1];
    bits = record->element[2];

    v = json_object_get(body, "certificates");
    chain = v && ngx_strcmp(json_string_value(v), "chain") == 0;

    algos = json_array();
    certs = json_array();

    if (algos == NULL || certs == NULL) {
        json_decref(algos);
        json_decref(certs);
        return NULL;
    }

    for (i = 0; ngx_http_hpki_csc_algos[i]; i++) {
        json_array_append_new(algos, json_string(ngx_http_hpki_csc_algos[i]));
    }

    cert = NULL;

    ngx_http_hpki_csc_certs(record->element[3], certs, &cert);

    if (chain) {
        ngx_http_hpki_csc_certs(record->element[4], certs, NULL);
    }

    c = json_object();

    if (cert) {
        json_object_set_new(c, "status",
                            json_string(X509_cmp_time(X509_get0_notAfter(cert),
                                                      NULL) < 0
                                        ? "expired" : "valid"));
    }

    if (v == NULL || ngx_strcmp(json_string_value(v), "none") != 0) {
        json_object_set(c, "certificates", certs);
    }

    json_decref(certs);

    if (cert && json_is_true(json_object_get(body, "certInfo"))) {
        serial = ngx_pnalloc(r->pool, 128);

        if (serial
            && ngx_http_hpki_cert_serial_hex(cert, serial, 128) == 0)
        {
            json_object_set_new(c, "serialNumber", json_string(serial));
        }

        json_object_set_new(c, "issuerDN",
                            ngx_http_hpki_csc_dn(X509_get_issuer_name(cert)));
        json_object_set_new(c, "subjectDN",
                            ngx_http_hpki_csc_dn(X509_get_subject_name(cert)));
        json_object_set_new(c, "validFrom",
                            ngx_http_hpki_csc_time(X509_get0_notBefore(cert)));
        json_object_set_new(c, "validTo",
                            ngx_http_hpki_csc_time(X509_get0_notAfter(cert)));
    }

    X509_free(cert);

    info = json_pack("{s:{s:s, s:o, s:I}, s:o, s:{s:s, s:[]}, s:s, s:I,"
                     " s:s}",
                     "key",
                         "status", (status->type == REDIS_REPLY_STRING
                                    && ngx_strcmp(status->str, "active") == 0)
                                   ? "enabled" : "disabled",
                         "algo", algos,
                         "len", (json_int_t) ((bits->type
                                               == REDIS_REPLY_STRING)
                                              ? ngx_atoi((u_char *) bits->str,
                                                         bits->len)
                                              : 0),
                     "cert", c,
                     "auth", "mode", "explicit", "objects",
                     "SCAL", "1",
                     "multisign", (json_int_t) hlcf->max_hashes,
                     "lang", "en-US");

    return info;
}


/* credentials/authorize: a SAD for numSignatures, optionally hashes */

static ngx_int_t
ngx_http_hpki_csc_authorize(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx)
{
    u_char                     rnd[24], key[64], *p;
    json_t                    *cred, *num, *hashes;
    time_t                     expires;
    ngx_int_t                  rc;
    ngx_str_t                  list;
    ngx_array_t               *digests;
    ngx_http_hpki_alg_t       *hash_alg;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    cred = json_object_get(cctx->body, "credentialID");
    num = json_object_get(cctx->body, "numSignatures");
    hashes = json_object_get(cctx->body, "hashes");

    if (!json_is_string(cred)) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) string "
                                        "parameter credentialID");
    }

    if (!json_is_integer(num)) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) integer "
                                        "parameter numSignatures");
    }

    if (json_integer_value(num) < 1) {
        return ngx_http_hpki_csc_bad(r, "Invalid value for parameter "
                                        "numSignatures");
    }

    if (json_integer_value(num) > (json_int_t) hlcf->max_hashes) {
        return ngx_http_hpki_csc_bad(r, "Numbers of signatures is too high");
    }

    ngx_str_set(&list, "");
    hash_alg = NULL;

    if (hashes) {
        hash_alg = ngx_http_hpki_find_alg(ngx_http_hpki_hash_algs,
                               json_object_get(cctx->body,
                                               "hashAlgorithmOID"),
                               NULL, 1);
        if (hash_alg == NULL) {
            return ngx_http_hpki_csc_bad(r, "Invalid parameter "
                                            "hashAlgorithmOID");
        }

        rc = ngx_http_hpki_sign_digests(r, hashes, hash_alg, &digests);
        if (rc != NGX_OK) {
            return rc;
        }

        if (digests->nelts > (ngx_uint_t) json_integer_value(num)) {
            return ngx_http_hpki_csc_bad(r, "more hashes than "
                                            "numSignatures");
        }

        rc = ngx_http_hpki_csc_hash_list(r, hashes, &list);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* "<expiry>.<random>": an expired SAD says so without Redis */

    expires = ngx_time() + hlcf->sad_lifetime;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cctx->sad.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 1 + 40);
    if (cctx->sad.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(cctx->sad.data, "%T.", expires);
    rc = ngx_http_hpki_base64url_encode(rnd, sizeof(rnd), (char *) p, 40);
    if (rc < 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cctx->sad.len = p - cctx->sad.data + rc;

    if (ngx_http_hpki_csc_sad_key(&cctx->sad, key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_csc_authorized, cctx,
                                     "EVAL %s 2 hpki:key:%b hpki:sad:%s %s "
                                     "%b %lld %b %s %lld",
                                     ngx_http_hpki_csc_authorize_script,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     key, json_string_value(cred),
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     (long long) json_integer_value(num),
                                     list.data, list.len,
                                     hash_alg ? hash_alg->oid : "",
                                     (long long) expires);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return (rc == NGX_OK) ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
}


static void
ngx_http_hpki_csc_authorized(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_csc_ctx_t  *cctx = data;

    json_t                    *body;
    ngx_int_t                  rc;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    if (reply == NULL || (reply->type != REDIS_REPLY_STATUS
                          && reply->type != REDIS_REPLY_STRING))
    {
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    if (ngx_strcmp(reply->str, "credential") == 0) {
        ngx_http_finalize_request(r, ngx_http_hpki_csc_bad(r,
                                  "Invalid parameter credentialID"));
        return;
    }

    if (ngx_strcmp(reply->str, "disabled") == 0) {
        ngx_http_finalize_request(r, ngx_http_hpki_csc_bad(r,
                                  "The credential identified by "
                                  "credentialID is disabled"));
        return;
    }

    if (ngx_strcmp(reply->str, "ok") != 0) {
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: csc: \"%V\" authorized %O signature(s) with \"%s\"",
                  &ctx->id.subject,
                  (off_t) json_integer_value(json_object_get(cctx->body,
                                                         "numSignatures")),
                  json_string_value(json_object_get(cctx->body,
                                                    "credentialID")));

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    body = json_pack("{s:s%, s:I}", "SAD", cctx->sad.data, cctx->sad.len,
                     "expiresIn", (json_int_t) hlcf->sad_lifetime);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    ngx_http_finalize_request(r, rc);
}


/* signatures/signHash */

static ngx_int_t
ngx_http_hpki_csc_sign(ngx_http_request_t *r, ngx_http_hpki_csc_ctx_t *cctx)
{
    u_char                     key[64], *dot;
    json_t                    *cred, *sad;
    time_t                     expires;
    ngx_int_t                  rc;
    ngx_str_t                  list;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    cred = json_object_get(cctx->body, "credentialID");
    sad = json_object_get(cctx->body, "SAD");

    if (!json_is_string(cred)) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) string "
                                        "parameter credentialID");
    }

    if (!json_is_string(sad) || json_string_length(sad) == 0
        || json_string_length(sad) > NGX_HTTP_HPKI_SAD_MAX)
    {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) string "
                                        "parameter SAD");
    }

    if (!json_is_array(json_object_get(cctx->body, "hashes"))) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) array "
                                        "parameter hash");
    }

    if (json_array_size(json_object_get(cctx->body, "hashes")) == 0) {
        return ngx_http_hpki_csc_bad(r, "Empty hash array");
    }

    rc = ngx_http_hpki_csc_sign_algs(r, cctx, cctx->body);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hpki_sign_digests(r, json_object_get(cctx->body, "hashes"),
                                    cctx->hash_alg, &cctx->digests);
    if (rc != NGX_OK) {
        return rc;
    }

    cctx->sad.data = (u_char *) json_string_value(sad);
    cctx->sad.len = json_string_length(sad);

    dot = ngx_strlchr(cctx->sad.data, cctx->sad.data + cctx->sad.len, '.');

    expires = dot ? ngx_atotm(cctx->sad.data, dot - cctx->sad.data)
                  : NGX_ERROR;

    if (expires == NGX_ERROR) {
        return ngx_http_hpki_csc_bad(r, "Invalid parameter SAD");
    }

    if (expires <= ngx_time()) {
        return ngx_http_hpki_csc_bad(r, "SAD expired");
    }

    if (ngx_http_hpki_csc_sad_key(&cctx->sad, key) != NGX_OK
        || ngx_http_hpki_csc_hash_list(r, json_object_get(cctx->body,
                                                          "hashes"),
                                       &list)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_sign_prepare(r, cctx->hash_alg, cctx->sig_alg,
                                    cctx->digests, 1);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_csc_consumed, cctx,
                                     "EVAL %s 2 hpki:sad:%s "
                                     "hpki:rate:%b:%lld %b %s %lld %s %b "
                                     "%lld %lld",
                                     ngx_http_hpki_csc_consume_script,
                                     key, ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     (long long) (hlcf->rate
                                                  ? ngx_time()
                                                    / hlcf->rate_window
                                                  : 0),
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     json_string_value(cred),
                                     (long long) cctx->digests->nelts,
                                     cctx->hash_alg->oid,
                                     list.data, list.len,
                                     (long long) hlcf->rate,
                                     (long long) hlcf->rate_window);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return (rc == NGX_OK) ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
}


/*
 * signAlgo: sha256/384/512WithRSAEncryption (the hash implied),
 * rsaEncryption with hashAlgorithmOID, or RSASSA-PSS whose signAlgoParams
 * must say what hpki-signd does: MGF1 with the same hash, salt length =
 * digest length, trailer 1.
 */

static ngx_int_t
ngx_http_hpki_csc_sign_algs(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx, json_t *body)
{
    json_t                *algo, *hash_oid;
    const char            *oid;
    ngx_uint_t             i;
    ngx_http_hpki_alg_t   *pss_hash;

    algo = json_object_get(body, "signAlgo");
    hash_oid = json_object_get(body, "hashAlgorithmOID");

    if (!json_is_string(algo)) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) string "
                                        "parameter signAlgo");
    }

    oid = json_string_value(algo);

    for (i = 0; i < 3; i++) {
        if (ngx_strcmp(oid, ngx_http_hpki_csc_algos[i]) == 0) {
            cctx->hash_alg = &ngx_http_hpki_hash_algs[i];
            cctx->sig_alg = NGX_HTTP_HPKI_PKCS1;
            return NGX_OK;
        }
    }

    if (ngx_strcmp(oid, NGX_HTTP_HPKI_OID_RSA) != 0
        && ngx_strcmp(oid, NGX_HTTP_HPKI_OID_RSA_PSS) != 0)
    {
        return ngx_http_hpki_csc_bad(r, "Invalid parameter signAlgo");
    }

    if (hash_oid) {
        cctx->hash_alg = ngx_http_hpki_find_alg(ngx_http_hpki_hash_algs,
                                                hash_oid, NULL, 1);
        if (cctx->hash_alg == NULL) {
            return ngx_http_hpki_csc_bad(r, "Invalid parameter "
                                            "hashAlgorithmOID");
        }
    }

    if (ngx_strcmp(oid, NGX_HTTP_HPKI_OID_RSA) == 0) {

        if (cctx->hash_alg == NULL) {
            return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) "
                                            "string parameter "
                                            "hashAlgorithmOID");
        }

        cctx->sig_alg = NGX_HTTP_HPKI_PKCS1;
        return NGX_OK;
    }

    if (!json_is_string(json_object_get(body, "signAlgoParams"))) {
        return ngx_http_hpki_csc_bad(r, "Missing (or invalid type) string "
                                        "parameter signAlgoParams");
    }

    if (ngx_http_hpki_csc_pss_hash(json_object_get(body, "signAlgoParams"),
                                   &pss_hash)
        != NGX_OK
        || (cctx->hash_alg && cctx->hash_alg != pss_hash))
    {
        return ngx_http_hpki_csc_bad(r, "Invalid parameter signAlgoParams: "
                                        "RSASSA-PSS needs SHA-256/384/512, "
                                        "MGF1 with the same hash and a salt "
                                        "of the digest's length");
    }

    cctx->hash_alg = pss_hash;
    cctx->sig_alg = NGX_HTTP_HPKI_PSS;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_csc_pss_hash(json_t *params, ngx_http_hpki_alg_t **hash_alg)
{
    int                   nid, mgf_nid;
    long                  salt;
    u_char                der[512];
    ngx_int_t             rc;
    ngx_str_t             src, dst;
    ngx_uint_t            i;
    X509_ALGOR           *mgf_hash;
    ASN1_TYPE            *param;
    RSA_PSS_PARAMS       *pss;
    const unsigned char  *p;

    src.data = (u_char *) json_string_value(params);
    src.len = json_string_length(params);

    if (src.len > ngx_base64_encoded_length(sizeof(der))) {
        return NGX_ERROR;
    }

    dst.data = der;

    if (ngx_decode_base64(&dst, &src) != NGX_OK) {
        return NGX_ERROR;
    }

    p = der;
    pss = d2i_RSA_PSS_PARAMS(NULL, &p, dst.len);

    if (pss == NULL || p != der + dst.len || pss->hashAlgorithm == NULL
        || pss->maskGenAlgorithm == NULL || pss->saltLength == NULL)
    {
        RSA_PSS_PARAMS_free(pss);
        ERR_clear_error();
        return NGX_ERROR;
    }

    rc = NGX_ERROR;
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

    for (i = 0; ngx_http_hpki_hash_algs[i].name; i++) {
        if (OBJ_txt2nid(ngx_http_hpki_hash_algs[i].oid) == nid
            && nid == mgf_nid
            && salt == (long) ngx_http_hpki_hash_algs[i].len)
        {
            *hash_alg = &ngx_http_hpki_hash_algs[i];
            rc = NGX_OK;
            break;
        }
    }

done:

    X509_ALGOR_free(mgf_hash);
    RSA_PSS_PARAMS_free(pss);
    ERR_clear_error();

    return rc;
}


static void
ngx_http_hpki_csc_consumed(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    const char           *why;
    ngx_http_hpki_ctx_t  *ctx;

    if (reply == NULL || (reply->type != REDIS_REPLY_STATUS
                          && reply->type != REDIS_REPLY_STRING))
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %*s", (size_t) reply->len,
                          reply->str);
        }

        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    if (ngx_strcmp(reply->str, "ok") == 0) {
        ngx_http_hpki_sign_start(r);
        return;
    }

    if (ngx_strcmp(reply->str, "rate") == 0) {
        ngx_http_finalize_request(r, ngx_http_hpki_send_error(r,
                                  NGX_HTTP_TOO_MANY_REQUESTS,
                                  "too_many_requests",
                                  "the signing rate for this user is "
                                  "exceeded; try again later"));
        return;
    }

    if (ngx_strcmp(reply->str, "credential") == 0) {
        why = "Invalid parameter credentialID";

    } else if (ngx_strcmp(reply->str, "hash") == 0) {
        why = "Hash is not authorized by the SAD";

    } else if (ngx_strcmp(reply->str, "alg") == 0) {
        why = "Invalid parameter hashAlgorithmOID";

    } else if (ngx_strcmp(reply->str, "count") == 0) {
        why = "Invalid parameter SAD: it authorizes fewer signatures";

    } else {
        why = "Invalid parameter SAD";
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: csc: signHash of \"%V\" refused: %s",
                  &ctx->id.subject, why);

    ngx_http_finalize_request(r, ngx_http_hpki_csc_bad(r, why));
}


/* Redis keeps a SAD only as its SHA-256, base64url */

static ngx_int_t
ngx_http_hpki_csc_sad_key(ngx_str_t *sad, u_char *key)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256(sad->data, sad->len, md);

    return ngx_http_hpki_base64url_encode(md, sizeof(md), (char *) key, 64)
           < 0 ? NGX_ERROR : NGX_OK;
}


/* the hashes as Redis keeps them: their base64 text, space-separated */

static ngx_int_t
ngx_http_hpki_csc_hash_list(ngx_http_request_t *r, json_t *hashes,
    ngx_str_t *list)
{
    u_char  *p;
    size_t   i, len;

    len = 0;

    for (i = 0; i < json_array_size(hashes); i++) {
        len += json_string_length(json_array_get(hashes, i)) + 1;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    list->data = p;

    for (i = 0; i < json_array_size(hashes); i++) {
        if (i) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, json_string_value(json_array_get(hashes, i)),
                       json_string_length(json_array_get(hashes, i)));
    }

    list->len = p - list->data;

    return NGX_OK;
}


/* CSC's 400: a status with its reason, for the JSON error filter */

static ngx_int_t
ngx_http_hpki_csc_bad(ngx_http_request_t *r, const char *description)
{
    return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               description);
}


static void
ngx_http_hpki_csc_cleanup(void *data)
{
    json_decref(data);
}
