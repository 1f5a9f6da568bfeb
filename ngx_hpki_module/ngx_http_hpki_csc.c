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
 * from hpki-signd through the same upstream as /hpki/sign.  The request
 * bodies are parsed and checked by ngx_http_hpki_csc_request.c (pure C).
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_csc.h"
#include "ngx_http_hpki_sign.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_cert.h"
#include "ngx_http_hpki_csc_request.h"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


typedef struct {
    ngx_str_t                    name;
    ngx_uint_t                   method;
} ngx_http_hpki_csc_method_t;


typedef struct {
    ngx_uint_t                   method;
    ngx_http_hpki_csc_req_t      req;          /* the parsed body */
    ngx_str_t                    sad;          /* authorize: the new one */
} ngx_http_hpki_csc_ctx_t;


static void ngx_http_hpki_csc_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_csc_credential(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx);
static void ngx_http_hpki_csc_record(ngx_http_request_t *r, void *data,
    redisReply *reply);
static json_t *ngx_http_hpki_csc_credential_info(ngx_http_request_t *r,
    ngx_http_hpki_csc_req_t *req, redisReply *record);
static ngx_int_t ngx_http_hpki_csc_authorize(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx);
static void ngx_http_hpki_csc_authorized(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_csc_sign(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx);
static ngx_int_t ngx_http_hpki_csc_digest_array(ngx_http_request_t *r,
    ngx_http_hpki_csc_req_t *req, ngx_http_hpki_alg_t **hash_alg,
    ngx_array_t **digests);
static void ngx_http_hpki_csc_consumed(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_csc_sad_key(ngx_str_t *sad, u_char *key);
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

    for (i = 0; ngx_http_hpki_csc_sign_algos[i]; i++) {
        json_array_append_new(algos,
                              json_string(ngx_http_hpki_csc_sign_algos[i]));
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
    int                        rc;
    ngx_int_t                  status;
    ngx_str_t                  text;
    ngx_pool_cleanup_t        *cln;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_csc_ctx_t   *cctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    cctx = ctx->data;

    status = ngx_http_hpki_request_body(r, &text);
    if (status != NGX_OK) {
        ngx_http_finalize_request(r, status);
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_hpki_csc_cleanup;
    cln->data = &cctx->req;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    rc = ngx_http_hpki_csc_parse(cctx->method, (char *) text.data, text.len,
                                 hlcf->max_hashes, ngx_time(), &cctx->req);

    switch (rc) {

    case NGX_HTTP_HPKI_CSC_OK:
        break;

    case NGX_HTTP_HPKI_CSC_BAD:
        ngx_http_finalize_request(r, ngx_http_hpki_error(r,
                                  NGX_HTTP_BAD_REQUEST, cctx->req.error,
                                  cctx->req.error_description));
        return;

    case NGX_HTTP_HPKI_CSC_TOO_LARGE:
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        return;

    default:
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    switch (cctx->method) {

    case NGX_HTTP_HPKI_CSC_AUTHORIZE:
        status = ngx_http_hpki_csc_authorize(r, cctx);
        break;

    case NGX_HTTP_HPKI_CSC_SIGN:
        status = ngx_http_hpki_csc_sign(r, cctx);
        break;

    default:
        status = ngx_http_hpki_csc_credential(r, cctx);
        break;
    }

    if (status != NGX_OK) {
        ngx_http_finalize_request(r, status);
    }
}


/* credentials/list and credentials/info: the user's key record */

static ngx_int_t
ngx_http_hpki_csc_credential(ngx_http_request_t *r,
    ngx_http_hpki_csc_ctx_t *cctx)
{
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

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

    json_t       *body, *info, *ids;
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
        if (kid->type != REDIS_REPLY_STRING
            || ngx_strcmp(cctx->req.credential_id, kid->str) != 0)
        {
            ngx_http_finalize_request(r, ngx_http_hpki_csc_bad(r,
                                      "Invalid parameter credentialID"));
            return;
        }

        body = ngx_http_hpki_csc_credential_info(r, &cctx->req, reply);

    } else {
        ids = json_array();
        body = json_pack("{s:o}", "credentialIDs", ids);

        if (body && kid->type == REDIS_REPLY_STRING) {
            json_array_append_new(ids, json_string(kid->str));

            if (cctx->req.credential_info) {
                info = ngx_http_hpki_csc_credential_info(r, &cctx->req,
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
ngx_http_hpki_csc_credential_info(ngx_http_request_t *r,
    ngx_http_hpki_csc_req_t *req, redisReply *record)
{
    char                      *serial;
    X509                      *cert;
    json_t                    *info, *certs, *algos, *c;
    ngx_uint_t                 i;
    redisReply                *status, *bits;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    status = record->element[1];
    bits = record->element[2];

    algos = json_array();
    certs = json_array();

    if (algos == NULL || certs == NULL) {
        json_decref(algos);
        json_decref(certs);
        return NULL;
    }

    for (i = 0; ngx_http_hpki_csc_sign_algos[i]; i++) {
        json_array_append_new(algos,
                              json_string(ngx_http_hpki_csc_sign_algos[i]));
    }

    cert = NULL;

    ngx_http_hpki_csc_certs(record->element[3], certs, &cert);

    if (req->certificates == NGX_HTTP_HPKI_CSC_CERTS_CHAIN) {
        ngx_http_hpki_csc_certs(record->element[4], certs, NULL);
    }

    c = json_object();

    if (cert) {
        json_object_set_new(c, "status",
                            json_string(X509_cmp_time(X509_get0_notAfter(cert),
                                                      NULL) < 0
                                        ? "expired" : "valid"));
    }

    if (req->certificates != NGX_HTTP_HPKI_CSC_CERTS_NONE) {
        json_object_set(c, "certificates", certs);
    }

    json_decref(certs);

    if (cert && req->cert_info) {
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
    time_t                     expires;
    ngx_int_t                  rc;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_csc_req_t   *req;
    ngx_http_hpki_loc_conf_t  *hlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    req = &cctx->req;

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
                                     key, req->credential_id,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     (long long) req->num_signatures,
                                     req->hash_list, req->hash_list_len,
                                     req->hash_alg ? req->hash_alg->oid : "",
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
                  (off_t) cctx->req.num_signatures,
                  cctx->req.credential_id);

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
    u_char                     key[64];
    ngx_int_t                  rc;
    ngx_str_t                  sad;
    ngx_array_t               *digests;
    ngx_http_hpki_alg_t       *hash_alg;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_csc_req_t   *req;
    ngx_http_hpki_loc_conf_t  *hlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    req = &cctx->req;

    sad.data = (u_char *) req->sad;
    sad.len = req->sad_len;

    if (ngx_http_hpki_csc_sad_key(&sad, key) != NGX_OK
        || ngx_http_hpki_csc_digest_array(r, req, &hash_alg, &digests)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_sign_prepare(r, hash_alg,
                                    (req->sig_alg == NGX_HTTP_HPKI_CSC_PSS)
                                    ? NGX_HTTP_HPKI_PSS : NGX_HTTP_HPKI_PKCS1,
                                    digests, 1);
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
                                     req->credential_id,
                                     (long long) req->ndigests,
                                     req->hash_alg->oid,
                                     req->hash_list, req->hash_list_len,
                                     (long long) hlcf->rate,
                                     (long long) hlcf->rate_window);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return (rc == NGX_OK) ? NGX_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
}


/* the parsed digests and hash algorithm as the sign upstream takes them */

static ngx_int_t
ngx_http_hpki_csc_digest_array(ngx_http_request_t *r,
    ngx_http_hpki_csc_req_t *req, ngx_http_hpki_alg_t **hash_alg,
    ngx_array_t **digests)
{
    size_t                i;
    ngx_str_t            *d;
    ngx_array_t          *a;
    ngx_http_hpki_alg_t  *alg;

    for (alg = ngx_http_hpki_hash_algs; alg->name; alg++) {
        if (alg->id == (ngx_uint_t) req->hash_alg->id) {
            break;
        }
    }

    if (alg->name == NULL) {
        return NGX_ERROR;
    }

    a = ngx_array_create(r->pool, req->ndigests, sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < req->ndigests; i++) {
        d = ngx_array_push(a);
        if (d == NULL) {
            return NGX_ERROR;
        }

        d->data = req->digests[i];
        d->len = req->hash_alg->len;
    }

    *hash_alg = alg;
    *digests = a;

    return NGX_OK;
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
    ngx_http_hpki_csc_req_free(data);
}
