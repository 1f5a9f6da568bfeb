/*
 * POST /hpki/sign.  The JSON body becomes one SIGN frame for hpki-signd;
 * its one reply frame becomes the JSON answer.  The sidecar re-checks the
 * caller's token itself, so nginx cannot be used as a signing oracle.
 * The CSC API (ngx_http_hpki_csc.c) uses the same path.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_sign.h"
#include "ngx_http_hpki_token.h"
#include "ngx_http_hpki_reply.h"


#define NGX_HTTP_HPKI_FRAME_VERSION   1

#define NGX_HTTP_HPKI_SIGN            0x01
#define NGX_HTTP_HPKI_SIGN_OK         0x81
#define NGX_HTTP_HPKI_ERROR           0xff

#define NGX_HTTP_HPKI_TAG_TOKEN       0x01
#define NGX_HTTP_HPKI_TAG_USER        0x02
#define NGX_HTTP_HPKI_TAG_HASH_ALG    0x03
#define NGX_HTTP_HPKI_TAG_SIG_ALG     0x04
#define NGX_HTTP_HPKI_TAG_DIGEST      0x05
#define NGX_HTTP_HPKI_TAG_REQUEST_ID  0x06
#define NGX_HTTP_HPKI_TAG_SIGNATURE   0x10
#define NGX_HTTP_HPKI_TAG_CERT        0x11
#define NGX_HTTP_HPKI_TAG_KEY_ID      0x12
#define NGX_HTTP_HPKI_TAG_CHAIN       0x13
#define NGX_HTTP_HPKI_TAG_CODE        0x20
#define NGX_HTTP_HPKI_TAG_MESSAGE     0x21


typedef struct {
    ngx_uint_t                   status;
    const char                  *error;
} ngx_http_hpki_sign_error_t;


static void ngx_http_hpki_sign_body(ngx_http_request_t *r);
static void ngx_http_hpki_sign_rated(ngx_http_request_t *r, void *data,
    redisReply *reply);
static u_char *ngx_http_hpki_put_field(u_char *p, ngx_uint_t tag,
    const u_char *value, size_t len);
static ngx_int_t ngx_http_hpki_sign_create_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_sign_reinit_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_sign_process_header(ngx_http_request_t *r);
static ngx_uint_t ngx_http_hpki_sign_ascii(u_char *p, size_t len);
static ngx_int_t ngx_http_hpki_sign_pem(ngx_http_request_t *r, u_char *p,
    size_t len, ngx_str_t *json);
static ngx_int_t ngx_http_hpki_sign_reply_buf(ngx_http_request_t *r,
    json_t *body, ngx_str_t *cert, ngx_array_t *chain, ngx_buf_t **bp);
static ngx_int_t ngx_http_hpki_sign_reply(ngx_http_request_t *r,
    ngx_http_hpki_sign_ctx_t *sctx, ngx_uint_t type, u_char *p, u_char *last);
static ngx_int_t ngx_http_hpki_sign_filter_init(void *data);
static ngx_int_t ngx_http_hpki_sign_filter(void *data, ssize_t bytes);
static void ngx_http_hpki_sign_abort_request(ngx_http_request_t *r);
static void ngx_http_hpki_sign_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc);


/*
 * The JSON strings (quotes included, as jansson encodes them) of the last
 * PEMs seen in signing replies, per worker: a signer's certificate and
 * chain come back with every signature, and escaping these kilobytes
 * again each time was most of the cost of a reply.
 */

#define NGX_HTTP_HPKI_PEM_CACHE  16

typedef struct {
    u_char                      *pem;       /* NULL: free */
    size_t                       pem_len;
    u_char                      *json;
    size_t                       json_len;
    ngx_uint_t                   used;
} ngx_http_hpki_pem_json_t;


static ngx_http_hpki_pem_json_t  ngx_http_hpki_pems[NGX_HTTP_HPKI_PEM_CACHE];
static ngx_uint_t                ngx_http_hpki_pems_tick;


ngx_http_hpki_alg_t  ngx_http_hpki_hash_algs[] = {
    { "sha256", "2.16.840.1.101.3.4.2.1", NGX_HTTP_HPKI_SHA256, 32 },
    { "sha384", "2.16.840.1.101.3.4.2.2", NGX_HTTP_HPKI_SHA384, 48 },
    { "sha512", "2.16.840.1.101.3.4.2.3", NGX_HTTP_HPKI_SHA512, 64 },
    { NULL, NULL, 0, 0 }
};


static ngx_http_hpki_alg_t  ngx_http_hpki_sig_algs[] = {
    { "rsa-pkcs1", NULL, NGX_HTTP_HPKI_PKCS1, 0 },
    { "rsa-pss", NULL, NGX_HTTP_HPKI_PSS, 0 },
    { NULL, NULL, 0, 0 }
};


/* docs/protocol.md, "Error codes" */

static ngx_http_hpki_sign_error_t  ngx_http_hpki_sign_errors[] = {
    { NGX_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable" },
    { NGX_HTTP_BAD_REQUEST, "invalid_request" },
    { NGX_HTTP_UNAUTHORIZED, "invalid_token" },
    { NGX_HTTP_FORBIDDEN, "access_denied" },
    { NGX_HTTP_FORBIDDEN, "no_certificate" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "signing_failed" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "server_error" }
};


/*
 * Within the user's signature budget of the current window, take n from
 * it: 1, or 0 when it would go over (nothing is taken then).
 */

static const char  ngx_http_hpki_rate_script[] =
    "local used = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end "
    "redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "return 1";


/* what both signing APIs check before reading a body */

ngx_int_t
ngx_http_hpki_sign_allowed(ngx_http_request_t *r)
{
    ngx_http_hpki_ctx_t  *ctx;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    /* made first: its errors are JSON */

    if (ngx_http_hpki_get_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_http_hpki_token_caller(r, "a signing location");
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_hpki_token_has_scope(&ctx->id, "sign")) {
        return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN,
                                   "insufficient_scope",
                                   "the token lacks the \"sign\" scope");
    }

    if (r->headers_in.content_length_n > NGX_HTTP_HPKI_BODY_MAX) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_hpki_sign_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_hpki_sign_allowed(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_hpki_sign_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* the request body as a JSON object, or an HTTP status (reason set) */

ngx_int_t
ngx_http_hpki_json_body(ngx_http_request_t *r, json_t **body)
{
    json_t        *json;
    ngx_int_t      rc;
    ngx_str_t      text;
    json_error_t   jerr;

    rc = ngx_http_hpki_request_body(r, &text);
    if (rc != NGX_OK) {
        return rc;
    }

    json = json_loadb((char *) text.data, text.len, JSON_REJECT_DUPLICATES,
                      &jerr);

    if (json == NULL || !json_is_object(json)) {
        json_decref(json);
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "the body is not a JSON object");
    }

    *body = json;

    return NGX_OK;
}


static void
ngx_http_hpki_sign_body(ngx_http_request_t *r)
{
    json_t               *body;
    ngx_int_t             rc;
    ngx_array_t          *digests;
    ngx_http_hpki_alg_t  *hash_alg, *sig_alg;

    rc = ngx_http_hpki_json_body(r, &body);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    hash_alg = ngx_http_hpki_find_alg(ngx_http_hpki_hash_algs,
                                      json_object_get(body, "hash_alg"),
                                      "sha256", 0);
    sig_alg = ngx_http_hpki_find_alg(ngx_http_hpki_sig_algs,
                                     json_object_get(body, "sig_alg"),
                                     "rsa-pkcs1", 0);

    if (hash_alg == NULL) {
        rc = ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                          "\"hash_alg\" must be sha256, sha384 or sha512");

    } else if (sig_alg == NULL) {
        rc = ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                 "\"sig_alg\" must be rsa-pkcs1 or rsa-pss");

    } else {
        rc = ngx_http_hpki_sign_digests(r, json_object_get(body, "hashes"),
                                        hash_alg, &digests);
    }

    json_decref(body);

    if (rc == NGX_OK) {
        rc = ngx_http_hpki_sign_prepare(r, hash_alg, sig_alg->id, digests, 0);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_hpki_sign_rate_limit(r, digests->nelts,
                                           ngx_http_hpki_sign_rated);
        if (rc == NGX_DECLINED) {
            /* no limit configured */
            ngx_http_hpki_sign_start(r);
            return;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * NGX_OK: Redis was asked and handler will run; NGX_DECLINED: no limit is
 * configured; otherwise an HTTP status.
 */

ngx_int_t
ngx_http_hpki_sign_rate_limit(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_hpki_redis_handler_pt handler)
{
    ngx_int_t                  rc;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    if (hlcf->rate == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    rc = ngx_http_hpki_redis_command(r, handler, ctx,
                                     "EVAL %s 1 hpki:rate:%b:%lld %lld %lld "
                                     "%lld",
                                     ngx_http_hpki_rate_script,
                                     ctx->id.subject.data, ctx->id.subject.len,
                                     (long long) (ngx_time()
                                                  / hlcf->rate_window),
                                     (long long) n, (long long) hlcf->rate,
                                     (long long) hlcf->rate_window);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    return NGX_OK;
}


static void
ngx_http_hpki_sign_rated(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_int_t  rc;

    rc = ngx_http_hpki_sign_rate_verdict(r, reply);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_hpki_sign_start(r);
}


/* NGX_OK within the rate, or the HTTP status to finalize with */

ngx_int_t
ngx_http_hpki_sign_rate_verdict(ngx_http_request_t *r, redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %*s", (size_t) reply->len,
                          reply->str);
        }

        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (reply->integer == 1) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "hpki: \"%V\" is over the signing rate", &ctx->id.subject);

    return ngx_http_hpki_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                               "too_many_requests",
                               "the signing rate for this user is exceeded; "
                               "try again later");
}


/* an algorithm by our name, or (CSC) by OID; v NULL takes the default */

ngx_http_hpki_alg_t *
ngx_http_hpki_find_alg(ngx_http_hpki_alg_t *algs, json_t *v,
    const char *dflt, ngx_uint_t by_oid)
{
    const char  *name, *key;

    if (v == NULL) {
        name = dflt;

    } else if (json_is_string(v)) {
        name = json_string_value(v);

    } else {
        return NULL;
    }

    if (name == NULL) {
        return NULL;
    }

    for ( /* void */ ; algs->name; algs++) {
        key = by_oid ? algs->oid : algs->name;

        if (key && ngx_strcmp(key, name) == 0) {
            return algs;
        }
    }

    return NULL;
}


/*
 * "hashes": 1 to hpki_sign_max_hashes base64 digests of the algorithm's
 * length, decoded into an array of ngx_str_t; or an HTTP status.
 */

ngx_int_t
ngx_http_hpki_sign_digests(ngx_http_request_t *r, json_t *hashes,
    ngx_http_hpki_alg_t *hash_alg, ngx_array_t **digests)
{
    size_t                     i, n;
    json_t                    *h;
    ngx_str_t                  src, *dst;
    ngx_array_t               *a;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    n = json_array_size(hashes);

    if (!json_is_array(hashes) || n == 0) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "\"hashes\" must be a non-empty array "
                                   "of base64 digests");
    }

    if (n > hlcf->max_hashes) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "too many hashes in one request");
    }

    a = ngx_array_create(r->pool, n, sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        h = json_array_get(hashes, i);

        if (!json_is_string(h)
            || json_string_length(h)
               != ngx_base64_encoded_length(hash_alg->len))
        {
            goto invalid;
        }

        src.data = (u_char *) json_string_value(h);
        src.len = json_string_length(h);

        dst = ngx_array_push(a);
        if (dst == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        dst->data = ngx_pnalloc(r->pool, hash_alg->len + 2);
        if (dst->data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_decode_base64(dst, &src) != NGX_OK
            || dst->len != hash_alg->len)
        {
            goto invalid;
        }
    }

    *digests = a;

    return NGX_OK;

invalid:

    return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "Invalid digest value length: each hash must "
                               "be a base64 digest of the hash algorithm's "
                               "length");
}


/* the SIGN frame for hpki-signd, kept in the request's sign context */

ngx_int_t
ngx_http_hpki_sign_prepare(ngx_http_request_t *r,
    ngx_http_hpki_alg_t *hash_alg, ngx_uint_t sig_alg, ngx_array_t *digests,
    ngx_uint_t csc)
{
    u_char                     *p, *start, alg;
    size_t                      len;
    ngx_str_t                  *d;
    ngx_buf_t                  *b;
    ngx_uint_t                  i;
    ngx_http_hpki_ctx_t        *ctx;
    ngx_http_variable_value_t  *vv;
    ngx_http_hpki_sign_ctx_t   *sctx;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    vv = ngx_http_get_indexed_variable(r, hmcf->request_id_index);

    d = digests->elts;

    len = 4 + 2
          + 3 + ctx->id.token.len
          + 3 + ctx->id.subject.len
          + 3 + 1
          + 3 + 1
          + digests->nelts * (3 + hash_alg->len)
          + 3 + ((vv && !vv->not_found) ? vv->len : 0);

    if (len > NGX_HTTP_HPKI_FRAME_MAX) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "the request is too large");
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    start = b->pos;
    p = start + 4;

    *p++ = NGX_HTTP_HPKI_FRAME_VERSION;
    *p++ = NGX_HTTP_HPKI_SIGN;

    p = ngx_http_hpki_put_field(p, NGX_HTTP_HPKI_TAG_TOKEN,
                                ctx->id.token.data, ctx->id.token.len);
    p = ngx_http_hpki_put_field(p, NGX_HTTP_HPKI_TAG_USER,
                                ctx->id.subject.data, ctx->id.subject.len);

    alg = (u_char) hash_alg->id;
    p = ngx_http_hpki_put_field(p, NGX_HTTP_HPKI_TAG_HASH_ALG, &alg, 1);

    alg = (u_char) sig_alg;
    p = ngx_http_hpki_put_field(p, NGX_HTTP_HPKI_TAG_SIG_ALG, &alg, 1);

    for (i = 0; i < digests->nelts; i++) {
        p = ngx_http_hpki_put_field(p, NGX_HTTP_HPKI_TAG_DIGEST, d[i].data,
                                    d[i].len);
    }

    if (vv && !vv->not_found) {
        p = ngx_http_hpki_put_field(p, NGX_HTTP_HPKI_TAG_REQUEST_ID,
                                    vv->data, vv->len);
    }

    len = p - start - 4;

    start[0] = (u_char) (len >> 24);
    start[1] = (u_char) (len >> 16);
    start[2] = (u_char) (len >> 8);
    start[3] = (u_char) len;

    b->last = p;

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_sign_ctx_t));
    if (sctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sctx->frame = b;
    sctx->nhashes = digests->nelts;
    sctx->hash_alg = hash_alg->name;
    sctx->csc = csc;

    ctx->data = sctx;

    return NGX_OK;
}


/* from a body or Redis handler: hand the prepared frame to hpki-signd */

void
ngx_http_hpki_sign_start(ngx_http_request_t *r)
{
    ngx_http_upstream_t       *u;
    ngx_http_hpki_loc_conf_t  *hlcf;

    if (ngx_http_upstream_create(r) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    u = r->upstream;

    ngx_str_set(&u->schema, "hpki-signd://");
    u->output.tag = (ngx_buf_tag_t) &ngx_http_hpki_module;
    u->conf = &hlcf->upstream;

    u->create_request = ngx_http_hpki_sign_create_request;
    u->reinit_request = ngx_http_hpki_sign_reinit_request;
    u->process_header = ngx_http_hpki_sign_process_header;
    u->abort_request = ngx_http_hpki_sign_abort_request;
    u->finalize_request = ngx_http_hpki_sign_finalize_request;

    ngx_http_upstream_init(r);
}


static u_char *
ngx_http_hpki_put_field(u_char *p, ngx_uint_t tag, const u_char *value,
    size_t len)
{
    *p++ = (u_char) tag;
    *p++ = (u_char) (len >> 8);
    *p++ = (u_char) len;

    return ngx_cpymem(p, value, len);
}


static ngx_int_t
ngx_http_hpki_sign_create_request(ngx_http_request_t *r)
{
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_sign_ctx_t  *sctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    sctx = ctx->data;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    /* a fresh buf each time: a retry resends the whole frame */

    b->memory = 1;
    b->pos = sctx->frame->pos;
    b->last = sctx->frame->last;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    r->upstream->request_bufs = cl;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_sign_reinit_request(ngx_http_request_t *r)
{
    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_sign_process_header(ngx_http_request_t *r)
{
    u_char                    *p;
    size_t                     len;
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_http_upstream_t       *u;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_sign_ctx_t  *sctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    sctx = ctx->data;

    u = r->upstream;
    b = &u->buffer;
    p = b->pos;

    if (b->last - p < 4) {
        return NGX_AGAIN;
    }

    len = ((size_t) p[0] << 24) | ((size_t) p[1] << 16)
          | ((size_t) p[2] << 8) | p[3];

    if (len < 2 || len > NGX_HTTP_HPKI_FRAME_MAX
        || (size_t) (b->end - b->start) < len + 4)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: hpki-signd sent a frame of invalid length %uz",
                      len);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if ((size_t) (b->last - p) < len + 4) {
        return NGX_AGAIN;
    }

    if (p[4] != NGX_HTTP_HPKI_FRAME_VERSION) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: hpki-signd sent frame version %d", p[4]);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    rc = ngx_http_hpki_sign_reply(r, sctx, p[5], p + 6, p + 4 + len);
    if (rc != NGX_OK) {
        return rc;
    }

    /*
     * The frame stays in the buffer, as if it were body bytes read with
     * the header: nginx then sends the header and the JSON that replaces
     * the frame (ngx_http_hpki_sign_filter()) in one write.  One request,
     * one reply: anything more means the stream is off.
     */

    sctx->reply_frame = 4 + len;
    u->keepalive = (p + 4 + len == b->last);

    u->input_filter_init = ngx_http_hpki_sign_filter_init;
    u->input_filter = ngx_http_hpki_sign_filter;
    u->input_filter_ctx = r;

    ctx->own_reply = 1;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_hpki_sign_ascii(u_char *p, size_t len)
{
    u_char  *last;

    for (last = p + len; p < last; p++) {
        if (*p == '\0' || *p >= 0x80) {
            return 0;
        }
    }

    return 1;
}


/* the JSON string of an ASCII PEM, in the request's pool */

static ngx_int_t
ngx_http_hpki_sign_pem(ngx_http_request_t *r, u_char *p, size_t len,
    ngx_str_t *json)
{
    size_t                     n;
    json_t                    *v;
    ngx_uint_t                 i;
    ngx_http_hpki_pem_json_t  *e, *lru;

    lru = &ngx_http_hpki_pems[0];

    for (i = 0; i < NGX_HTTP_HPKI_PEM_CACHE; i++) {
        e = &ngx_http_hpki_pems[i];

        if (e->pem != NULL && e->pem_len == len
            && ngx_memcmp(e->pem, p, len) == 0)
        {
            goto found;
        }

        if (e->used < lru->used) {
            lru = e;
        }
    }

    /* PEM is ASCII: json_stringn_nocheck() need not validate UTF-8 */

    if (!ngx_http_hpki_sign_ascii(p, len)) {
        return NGX_DECLINED;
    }

    v = json_stringn_nocheck((char *) p, len);
    if (v == NULL) {
        return NGX_ERROR;
    }

    e = lru;
    ngx_free(e->pem);
    e->pem = NULL;

    n = json_dumpb(v, NULL, 0, JSON_ENCODE_ANY);

    if (n != 0) {
        e->pem = ngx_alloc(len + n, r->connection->log);
    }

    if (e->pem == NULL
        || json_dumpb(v, (char *) e->pem + len, n, JSON_ENCODE_ANY) != n)
    {
        json_decref(v);
        ngx_free(e->pem);
        e->pem = NULL;
        return NGX_ERROR;
    }

    json_decref(v);

    ngx_memcpy(e->pem, p, len);
    e->pem_len = len;
    e->json = e->pem + len;
    e->json_len = n;

found:

    e->used = ++ngx_http_hpki_pems_tick;

    json->data = ngx_pnalloc(r->pool, e->json_len);
    if (json->data == NULL) {
        return NGX_ERROR;
    }

    json->len = e->json_len;
    ngx_memcpy(json->data, e->json, e->json_len);

    return NGX_OK;
}


/* the kept PEMs go before the module is unloaded */

void
ngx_http_hpki_sign_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_HPKI_PEM_CACHE; i++) {
        ngx_free(ngx_http_hpki_pems[i].pem);
        ngx_http_hpki_pems[i].pem = NULL;
    }
}


/*
 * {"certificate":...,"chain":[...],...}: the PEMs as ngx_http_hpki_sign_pem()
 * encoded them, then the members of body, all JSON from jansson
 */

static ngx_int_t
ngx_http_hpki_sign_reply_buf(ngx_http_request_t *r, json_t *body,
    ngx_str_t *cert, ngx_array_t *chain, ngx_buf_t **bp)
{
    u_char      *p;
    size_t       len, n;
    u_char       guess[NGX_HTTP_HPKI_JSON_GUESS];
    ngx_buf_t   *b;
    ngx_str_t   *pem;
    ngx_uint_t   i;

    static const char  cert_name[] = "{\"certificate\":";
    static const char  chain_name[] = ",\"chain\":[";

    n = json_dumpb(body, (char *) guess, sizeof(guess),
                   JSON_COMPACT | JSON_EMBED);
    if (n == 0) {
        return NGX_ERROR;
    }

    pem = chain->elts;

    len = sizeof(cert_name) - 1 + cert->len + sizeof(chain_name) - 1
          + sizeof("],}\n") - 1 + n;

    for (i = 0; i < chain->nelts; i++) {
        len += pem[i].len + 1;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(b->last, cert_name, sizeof(cert_name) - 1);
    p = ngx_cpymem(p, cert->data, cert->len);
    p = ngx_cpymem(p, chain_name, sizeof(chain_name) - 1);

    for (i = 0; i < chain->nelts; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, pem[i].data, pem[i].len);
    }

    *p++ = ']';
    *p++ = ',';

    if (n <= sizeof(guess)) {
        p = ngx_cpymem(p, guess, n);

    } else if (json_dumpb(body, (char *) p, n, JSON_COMPACT | JSON_EMBED)
               != n)
    {
        return NGX_ERROR;

    } else {
        p += n;
    }

    *p++ = '}';
    *p++ = LF;

    b->last = p;
    *bp = b;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_sign_reply(ngx_http_request_t *r,
    ngx_http_hpki_sign_ctx_t *sctx, ngx_uint_t type, u_char *p, u_char *last)
{
    size_t                       len;
    json_t                      *body, *sigs, *v;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_str_t                    src, dst, cert, *pem;
    ngx_uint_t                   tag, code, status, level;
    ngx_array_t                 *chain;
    ngx_chain_t                 *cl;
    ngx_http_upstream_t         *u;
    ngx_http_hpki_ctx_t         *ctx;
    ngx_http_hpki_sign_error_t  *e;

    if (type != NGX_HTTP_HPKI_SIGN_OK && type != NGX_HTTP_HPKI_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: hpki-signd sent frame type 0x%xi", type);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    body = json_object();
    sigs = json_array();
    chain = ngx_array_create(r->pool, 2, sizeof(ngx_str_t));
    ngx_str_null(&cert);

    if (body == NULL || sigs == NULL || chain == NULL) {
        goto failed;
    }

    code = 0;

    while (p < last) {

        if (last - p < 3 || (size_t) (last - p - 3) < (size_t) (p[1] << 8
                                                                | p[2]))
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: hpki-signd sent a truncated field");
            goto invalid;
        }

        tag = p[0];
        len = (p[1] << 8) | p[2];
        p += 3;

        switch (tag) {

        case NGX_HTTP_HPKI_TAG_SIGNATURE:
            src.data = p;
            src.len = len;
            dst.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(len));
            if (dst.data == NULL) {
                goto failed;
            }

            ngx_encode_base64(&dst, &src);
            v = json_stringn((char *) dst.data, dst.len);
            if (v == NULL || json_array_append_new(sigs, v) != 0) {
                goto failed;
            }
            break;

        case NGX_HTTP_HPKI_TAG_CERT:
        case NGX_HTTP_HPKI_TAG_CHAIN:
            pem = (tag == NGX_HTTP_HPKI_TAG_CERT) ? &cert
                                                  : ngx_array_push(chain);
            if (pem == NULL) {
                goto failed;
            }

            rc = ngx_http_hpki_sign_pem(r, p, len, pem);
            if (rc == NGX_DECLINED) {
                goto invalid;
            }

            if (rc != NGX_OK) {
                goto failed;
            }
            break;

        case NGX_HTTP_HPKI_TAG_KEY_ID:
            v = json_stringn((char *) p, len);
            if (v == NULL || json_object_set_new(body, "key_id", v)) {
                goto invalid;
            }
            break;

        case NGX_HTTP_HPKI_TAG_CODE:
            if (len != 2) {
                goto invalid;
            }

            code = (p[0] << 8) | p[1];
            break;

        case NGX_HTTP_HPKI_TAG_MESSAGE:
            v = json_stringn((char *) p, len);
            if (v == NULL
                || json_object_set_new(body, "error_description", v))
            {
                goto invalid;
            }
            break;

        default:
            break;
        }

        p += len;
    }

    u = r->upstream;

    if (type == NGX_HTTP_HPKI_SIGN_OK) {

        if (json_array_size(sigs) != sctx->nhashes || cert.len == 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: hpki-signd sent %uz signatures for %ui "
                          "hashes", json_array_size(sigs), sctx->nhashes);
            goto invalid;
        }

        if (sctx->csc) {
            /* CSC signatures/signHash: the signatures alone */
            json_object_clear(body);
        }

        json_object_set(body, "signatures", sigs);
        status = NGX_HTTP_OK;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: signed %ui %s hash(es) for \"%V\" token %V",
                      sctx->nhashes, sctx->hash_alg, &ctx->id.subject,
                      &ctx->id.token_id);

    } else {

        if (code >= sizeof(ngx_http_hpki_sign_errors)
                    / sizeof(ngx_http_hpki_sign_errors[0]))
        {
            code = 0;
        }

        e = &ngx_http_hpki_sign_errors[code];
        status = e->status;

        json_object_set_new(body, "error", json_string(e->error));

        if (json_object_get(body, "error_description") == NULL) {
            json_object_set_new(body, "error_description",
                                json_string("hpki-signd refused the request"));
        }

        json_object_del(body, "key_id");

        level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                           : NGX_LOG_INFO;

        ngx_log_error(level, r->connection->log, 0,
                      "hpki: hpki-signd refused to sign for \"%V\": %s (%ui)",
                      &ctx->id.subject, e->error, code);
    }

    rc = (status == NGX_HTTP_OK && !sctx->csc)
         ? ngx_http_hpki_sign_reply_buf(r, body, &cert, chain, &b)
         : ngx_http_hpki_json_buf(r, body, &b);

    if (rc != NGX_OK) {
        goto failed;
    }

    json_decref(sigs);
    json_decref(body);

    b->tag = u->output.tag;
    b->flush = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    sctx->reply = cl;

    u->headers_in.status_n = status;
    u->headers_in.content_length_n = b->last - b->pos;

    if (u->state) {
        u->state->status = status;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    return NGX_OK;

invalid:

    json_decref(sigs);
    json_decref(body);

    return NGX_HTTP_UPSTREAM_INVALID_HEADER;

failed:

    json_decref(sigs);
    json_decref(body);

    return NGX_ERROR;
}


/* the whole reply was read with the header: its frame is all the "body" */

static ngx_int_t
ngx_http_hpki_sign_filter_init(void *data)
{
    ngx_http_request_t        *r = data;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_sign_ctx_t  *sctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    sctx = ctx->data;

    r->upstream->length = sctx->reply_frame;

    return NGX_OK;
}


/* the frame's bytes are taken, the JSON made of it goes out instead */

static ngx_int_t
ngx_http_hpki_sign_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t        *r = data;
    ngx_http_upstream_t       *u;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_sign_ctx_t  *sctx;

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    sctx = ctx->data;

    u->buffer.last += bytes;

    if (u->length > 0) {
        u->out_bufs = sctx->reply;
        bytes -= u->length;
    }

    if (bytes > 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: hpki-signd sent %z bytes after its reply", bytes);
        u->keepalive = 0;
    }

    u->length = 0;

    return NGX_OK;
}


static void
ngx_http_hpki_sign_abort_request(ngx_http_request_t *r)
{
    return;
}


static void
ngx_http_hpki_sign_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    return;
}
