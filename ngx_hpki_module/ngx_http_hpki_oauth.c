/*
 * The documents (JWKS, discovery) are made once at start.  Introspection
 * and revocation take "token=..." form bodies as their RFCs say; who may
 * call them is the location's business (allow/deny, auth_basic, mTLS).
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_oauth.h"
#include "ngx_http_hpki_token.h"
#include "ngx_http_hpki_cache.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_oidc.h"

#include <openssl/sha.h>


typedef struct {
    json_t                      *claims;     /* introspection only */
    ngx_uint_t                   revoke;     /* unsigned:1 */
} ngx_http_hpki_oauth_ctx_t;


static ngx_int_t ngx_http_hpki_send_document(ngx_http_request_t *r,
    ngx_str_t *doc);
static ngx_int_t ngx_http_hpki_oauth_start(ngx_http_request_t *r,
    ngx_uint_t revoke);
static void ngx_http_hpki_oauth_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_form_token(ngx_http_request_t *r,
    ngx_str_t *token);
static void ngx_http_hpki_oauth_state(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_introspect_reply(ngx_http_request_t *r,
    json_t *claims);
static ngx_int_t ngx_http_hpki_revoked_reply(ngx_http_request_t *r);
static void ngx_http_hpki_oauth_cleanup(void *data);


ngx_int_t
ngx_http_hpki_oauth_init(ngx_conf_t *cf, ngx_http_hpki_main_conf_t *hmcf)
{
    char        *text;
    json_t      *doc, *algs;
    ngx_int_t    rc;
    ngx_str_t   *iss;
    ngx_uint_t   i;

    if (hmcf->nkeys == 0 || hmcf->issuer.len == 0) {
        return NGX_OK;
    }

    text = ngx_http_hpki_jwks(hmcf->keys, hmcf->nkeys);
    if (text == NULL) {
        return NGX_ERROR;
    }

    hmcf->jwks.len = ngx_strlen(text);
    hmcf->jwks.data = ngx_pstrdup(cf->pool,
                                  &(ngx_str_t) { hmcf->jwks.len,
                                                 (u_char *) text });
    free(text);

    if (hmcf->jwks.data == NULL) {
        return NGX_ERROR;
    }

    algs = json_array();
    if (algs == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < hmcf->nkeys; i++) {
        json_array_append_new(algs, json_string(
                              ngx_http_hpki_jws_alg_name(hmcf->keys[i].alg)));
    }

    iss = &hmcf->issuer;

    doc = json_pack("{s:s%, s:s%+, s:s%+, s:s%+, s:[s,s], s:[s], s:o}",
                    "issuer", iss->data, iss->len,
                    "jwks_uri", iss->data, iss->len,
                        "/.well-known/jwks.json",
                    "introspection_endpoint", iss->data, iss->len,
                        "/hpki/introspect",
                    "revocation_endpoint", iss->data, iss->len,
                        "/hpki/revoke",
                    "scopes_supported", "openid", "sign",
                    "token_endpoint_auth_methods_supported", "none",
                    "id_token_signing_alg_values_supported", algs);
    if (doc == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hpki_oidc_discovery(hmcf, doc) != NGX_OK) {
        json_decref(doc);
        return NGX_ERROR;
    }

    rc = ngx_http_hpki_json_text(cf->pool, doc, &hmcf->discovery);

    json_decref(doc);

    return rc;
}


ngx_int_t
ngx_http_hpki_jwks_handler(ngx_http_request_t *r)
{
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    return ngx_http_hpki_send_document(r, &hmcf->jwks);
}


ngx_int_t
ngx_http_hpki_discovery_handler(ngx_http_request_t *r)
{
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    return ngx_http_hpki_send_document(r, &hmcf->discovery);
}


static ngx_int_t
ngx_http_hpki_send_document(ngx_http_request_t *r, ngx_str_t *doc)
{
    ngx_int_t             rc;
    ngx_buf_t            *b;
    ngx_chain_t           out;
    ngx_table_elt_t      *h;
    ngx_http_hpki_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (doc->len == 0) {
        return ngx_http_hpki_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                   "no token key or issuer is configured");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "max-age=300");

    ctx->own_reply = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = doc->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = doc->data;
    b->last = doc->data + doc->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_hpki_introspect_handler(ngx_http_request_t *r)
{
    return ngx_http_hpki_oauth_start(r, 0);
}


ngx_int_t
ngx_http_hpki_revoke_handler(ngx_http_request_t *r)
{
    return ngx_http_hpki_oauth_start(r, 1);
}


static ngx_int_t
ngx_http_hpki_oauth_start(ngx_http_request_t *r, ngx_uint_t revoke)
{
    ngx_http_hpki_oauth_ctx_t  *octx;

    octx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_oauth_ctx_t));
    if (octx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    octx->revoke = revoke;

    return ngx_http_hpki_read_body(r, octx, ngx_http_hpki_oauth_body);
}


static void
ngx_http_hpki_oauth_body(ngx_http_request_t *r)
{
    json_t                     *claims;
    ngx_int_t                   rc;
    ngx_str_t                   token;
    const char                 *err;
    ngx_pool_cleanup_t         *cln;
    ngx_http_hpki_ctx_t        *ctx;
    ngx_http_hpki_oauth_ctx_t  *octx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    octx = ctx->data;

    rc = ngx_http_hpki_form_token(r, &token);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    claims = NULL;

    rc = ngx_http_hpki_token_verify(r, &token, &ctx->id,
                                    octx->revoke ? NULL : &claims, &err);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: %s of an invalid token: %s",
                      octx->revoke ? "revocation" : "introspection", err);

        /* RFC 7009, 2.2: an invalid token is not an error to revoke */
        ngx_http_finalize_request(r, octx->revoke
                                     ? ngx_http_hpki_revoked_reply(r)
                                     : ngx_http_hpki_introspect_reply(r,
                                                                      NULL));
        return;
    }

    if (claims) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            json_decref(claims);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        cln->handler = ngx_http_hpki_oauth_cleanup;
        cln->data = claims;
        octx->claims = claims;
    }

    if (octx->revoke) {
        SHA256(token.data, token.len, ctx->token_key);
        ngx_http_hpki_cache_delete(r, ctx->token_key);

        rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oauth_state, ctx,
                                         "DEL hpki:tok:%b",
                                         ctx->id.token_id.data,
                                         ctx->id.token_id.len);
    } else {
        rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oauth_state, ctx,
                                         "GET hpki:tok:%b",
                                         ctx->id.token_id.data,
                                         ctx->id.token_id.len);
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
    }
}


static void
ngx_http_hpki_oauth_state(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t        *ctx = data;

    ngx_int_t                   rc;
    ngx_str_t                   sub;
    ngx_http_hpki_oauth_ctx_t  *octx;

    octx = ctx->data;

    if (octx->revoke) {
        rc = (reply && reply->type == REDIS_REPLY_INTEGER) ? NGX_OK
                                                            : NGX_ERROR;
    } else {
        rc = ngx_http_hpki_redis_string(r, reply, &sub);
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    if (octx->revoke) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: token %V of \"%V\" revoked",
                      &ctx->id.token_id, &ctx->id.subject);

        ngx_http_finalize_request(r, ngx_http_hpki_revoked_reply(r));
        return;
    }

    if (rc == NGX_OK
        && sub.len == ctx->id.subject.len
        && ngx_strncmp(sub.data, ctx->id.subject.data, sub.len) == 0)
    {
        ngx_http_finalize_request(r,
                          ngx_http_hpki_introspect_reply(r, octx->claims));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_hpki_introspect_reply(r, NULL));
}


/* RFC 7009, 2.2: 200 with an empty object, whatever the token was */

static ngx_int_t
ngx_http_hpki_revoked_reply(ngx_http_request_t *r)
{
    json_t     *body;
    ngx_int_t   rc;

    body = json_object();
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}


/* RFC 7662, 2.2: the token's claims and "active", or only active: false */

static ngx_int_t
ngx_http_hpki_introspect_reply(ngx_http_request_t *r, json_t *claims)
{
    json_t     *body;
    ngx_int_t   rc;

    if (claims == NULL) {
        body = json_pack("{s:b}", "active", 0);

    } else {
        body = json_deep_copy(claims);

        if (body) {
            json_object_set_new(body, "active", json_true());
            json_object_set_new(body, "token_type", json_string("Bearer"));
        }
    }

    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}


/* "token" of an application/x-www-form-urlencoded body */

static ngx_int_t
ngx_http_hpki_form_token(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char     *p, *last, *start, *end, *src, *dst;
    ngx_int_t   rc;
    ngx_str_t   body;

    rc = ngx_http_hpki_request_body(r, &body);
    if (rc != NGX_OK) {
        return rc;
    }

    p = body.data;
    last = p + body.len;

    while (p < last) {
        start = p;

        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        p = end + 1;

        if (end - start <= 6 || ngx_strncmp(start, "token=", 6) != 0) {
            continue;
        }

        start += 6;

        if (end - start > NGX_HTTP_HPKI_TOKEN_MAX) {
            break;
        }

        /* in place: the unescaped value is never longer */

        src = start;
        dst = start;
        ngx_unescape_uri(&dst, &src, end - start, 0);

        token->data = start;
        token->len = dst - start;

        return NGX_OK;
    }

    return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "the body must be token=<access token>, "
                               "form-encoded");
}


static void
ngx_http_hpki_oauth_cleanup(void *data)
{
    json_decref(data);
}
