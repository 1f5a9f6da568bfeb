/*
 * JSON replies.  Handlers answer with ngx_http_hpki_send_json() or
 * ngx_http_hpki_send_error().  Errors that nginx itself produces in an HPKI
 * location (an access-phase 401, a dead sidecar's 502, a 413) pass through
 * the filters below, which replace the HTML page with the same JSON shape
 * and report any upstream fault as 503.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_reply.h"


typedef struct {
    ngx_uint_t                   status;
    const char                  *error;
    const char                  *description;
} ngx_http_hpki_error_map_t;


static ngx_int_t ngx_http_hpki_error_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_error_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_http_hpki_error_map_t  ngx_http_hpki_errors[] = {
    { NGX_HTTP_BAD_REQUEST, "invalid_request", "the request is malformed" },
    { NGX_HTTP_UNAUTHORIZED, "invalid_token",
      "a valid access token is required" },
    { NGX_HTTP_FORBIDDEN, "access_denied", "access is denied" },
    { NGX_HTTP_NOT_FOUND, "not_found", "no such resource" },
    { NGX_HTTP_NOT_ALLOWED, "invalid_request", "method not allowed" },
    { NGX_HTTP_REQUEST_TIME_OUT, "invalid_request",
      "the request was not received in time" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "invalid_request",
      "the request body is too large" },
    { NGX_HTTP_TOO_MANY_REQUESTS, "too_many_requests",
      "too many requests" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "server_error",
      "internal server error" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
      "a backing service is unavailable, try again later" },
    { 0, "server_error", "the request failed" }
};


/* compact JSON text, in the pool */

ngx_int_t
ngx_http_hpki_json_text(ngx_pool_t *pool, json_t *json, ngx_str_t *text)
{
    size_t  len;

    len = json_dumpb(json, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    text->data = ngx_pnalloc(pool, len);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    text->len = json_dumpb(json, (char *) text->data, len, JSON_COMPACT);

    return NGX_OK;
}


/*
 * One encoding pass into a stack buffer when the reply fits it, two
 * otherwise; the pool buffer is of the exact size (a larger one would be
 * a malloc() per reply).
 */

ngx_int_t
ngx_http_hpki_json_buf(ngx_http_request_t *r, json_t *body, ngx_buf_t **bp)
{
    size_t      len;
    u_char      guess[NGX_HTTP_HPKI_JSON_GUESS];
    ngx_buf_t  *b;

    len = json_dumpb(body, (char *) guess, sizeof(guess), JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (len <= sizeof(guess)) {
        b->last = ngx_cpymem(b->pos, guess, len);

    } else {
        if (json_dumpb(body, (char *) b->pos, len, JSON_COMPACT) != len) {
            return NGX_ERROR;
        }

        b->last += len;
    }

    *b->last++ = LF;

    *bp = b;

    return NGX_OK;
}


ngx_int_t
ngx_http_hpki_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_int_t             rc;
    ngx_buf_t            *b;
    ngx_chain_t           out;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->own_reply = 1;

    if (ngx_http_hpki_json_buf(r, body, &b) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_hpki_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description)
{
    json_t     *body;
    ngx_int_t   rc;

    body = json_pack("{s:s, s:s}", "error", error,
                     "error_description", description);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_send_json(r, status, body);

    json_decref(body);

    return rc;
}


/*
 * An error status whose JSON body the error filter writes: usable where a
 * handler must return a status rather than send (the access phase).
 */

ngx_int_t
ngx_http_hpki_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description)
{
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx) {
        ctx->error = error;
        ctx->error_description = description;
    }

    return status;
}


/* the same, for a request already suspended (body read or Redis reply) */

ngx_int_t
ngx_http_hpki_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description)
{
    ngx_uint_t  level;

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) ? NGX_LOG_ERR
                                                       : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0, "hpki: %ui %s: %s",
                  status, error, description);

    return ngx_http_hpki_send_error(r, status, error, description);
}


/* finalizes a suspended request with 503: Redis failed, fail closed */

void
ngx_http_hpki_unavailable(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_hpki_fail(r,
                              NGX_HTTP_SERVICE_UNAVAILABLE,
                              "temporarily_unavailable",
                              "the token store is unavailable"));
}


/*
 * The start of a POST endpoint: its state (ready before the read, whose
 * handler may run at once) in ctx->data, then the body, read into
 * "handler".  What a content handler returns.
 */

ngx_int_t
ngx_http_hpki_read_body(ngx_http_request_t *r, void *data,
    ngx_http_client_body_handler_pt handler)
{
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = data;

    rc = ngx_http_read_client_request_body(r, handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * The request body as one buffer.  A body that nginx spilled to a temporary
 * file is refused rather than read back: no file reads on the request path.
 */

ngx_int_t
ngx_http_hpki_request_body(ngx_http_request_t *r, ngx_str_t *text)
{
    u_char       *p;
    size_t        len;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request",
                                   "a JSON body is required");
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file || len + (b->last - b->pos) > NGX_HTTP_HPKI_BODY_MAX) {
            return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        }

        len += b->last - b->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text->data = p;
    text->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_error_header_filter(ngx_http_request_t *r)
{
    json_t                     *body;
    ngx_buf_t                  *b;
    ngx_uint_t                  status;
    ngx_http_hpki_ctx_t        *ctx;
    ngx_http_hpki_error_map_t  *e;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx == NULL || !ctx->json_errors || ctx->own_reply
        || r->headers_out.status < NGX_HTTP_BAD_REQUEST)
    {
        return ngx_http_next_header_filter(r);
    }

    status = r->headers_out.status;

    if (status == NGX_HTTP_BAD_GATEWAY
        || status == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        /* the sidecar is down, slow or broken: fail closed, clearly */
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    for (e = ngx_http_hpki_errors; e->status; e++) {
        if (e->status == status) {
            break;
        }
    }

    /* a reason the handler gave outweighs the generic one */

    if (ctx->error && status == r->headers_out.status) {
        body = json_pack("{s:s, s:s}", "error", ctx->error,
                         "error_description", ctx->error_description);

    } else {
        body = json_pack("{s:s, s:s}", "error", e->error,
                         "error_description", e->description);
    }

    if (body == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hpki_json_buf(r, body, &b) != NGX_OK) {
        json_decref(body);
        return NGX_ERROR;
    }

    json_decref(body);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ctx->error_body = b;

    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;
    r->headers_out.content_length_n = b->last - b->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_hpki_error_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t           out, *cl;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx == NULL || ctx->error_body == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* swallow nginx's error page, send ours once */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->error_sent) {
        return NGX_OK;
    }

    ctx->error_sent = 1;

    out.buf = ctx->error_body;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


ngx_int_t
ngx_http_hpki_reply_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_hpki_error_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_hpki_error_body_filter;

    return NGX_OK;
}
