/*
 * A token is an RS256 or ES256 JWS signed with the gateway key.  Its state
 * lives in Redis under hpki:tok:<jti>: a protected request passes only if
 * the signature, the pinned algorithm, iss, aud, exp and nbf check out and
 * Redis still knows the token for the same subject.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_token.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_cert.h"
#include "ngx_http_hpki_cache.h"
#include "ngx_http_hpki_lockout.h"

#include <openssl/rand.h>
#include <openssl/sha.h>


static ngx_int_t ngx_http_hpki_auth_start(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx);
static ngx_int_t ngx_http_hpki_bearer(ngx_http_request_t *r,
    ngx_str_t *token);
static ngx_int_t ngx_http_hpki_identity_from_claims(ngx_http_request_t *r,
    json_t *claims, ngx_http_hpki_identity_t *id);
static ngx_int_t ngx_http_hpki_check_binding(ngx_http_request_t *r,
    ngx_http_hpki_identity_t *id);
static ngx_int_t ngx_http_hpki_check_role(ngx_http_request_t *r,
    ngx_http_hpki_identity_t *id);
static void ngx_http_hpki_auth_state(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_unauthorized(ngx_http_request_t *r,
    const char *error, const char *description);
static ngx_int_t ngx_http_hpki_claim_str(ngx_http_request_t *r,
    json_t *claims, const char *name, ngx_str_t *value);


ngx_int_t
ngx_http_hpki_auth_handler(ngx_http_request_t *r)
{
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    if (!hlcf->auth) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->auth_done) {
        return ctx->auth_status;
    }

    if (ctx->auth_pending) {
        return NGX_AGAIN;
    }

    return ngx_http_hpki_auth_start(r, ctx);
}


/*
 * The caller of a content handler behind "hpki_auth on": the context of a
 * token check that passed, or NULL (logged: the location has no check).
 */

ngx_http_hpki_ctx_t *
ngx_http_hpki_token_caller(ngx_http_request_t *r, const char *handler)
{
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx == NULL || !ctx->auth_done || ctx->auth_status != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: %s without a token check (\"hpki_auth on\")",
                      handler);
        return NULL;
    }

    return ctx;
}


/* the caller as the token check established it */

ngx_int_t
ngx_http_hpki_whoami_handler(ngx_http_request_t *r)
{
    json_t               *body;
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_hpki_token_caller(r, "hpki_whoami");
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_pack("{s:s%, s:s%, s:s%, s:s%, s:s%}",
                     "sub", ctx->id.subject.data, ctx->id.subject.len,
                     "role", ctx->id.role.data, ctx->id.role.len,
                     "auth_method", ctx->id.auth_method.data,
                     ctx->id.auth_method.len,
                     "scope", ctx->id.scope.data, ctx->id.scope.len,
                     "token_id", ctx->id.token_id.data,
                     ctx->id.token_id.len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}


static ngx_int_t
ngx_http_hpki_auth_start(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                  token;
    const char                *err;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    rc = ngx_http_hpki_bearer(r, &token);

    if (rc == NGX_DECLINED && hlcf->auth == NGX_HTTP_HPKI_AUTH_OPTIONAL) {
        ctx->auth_done = 1;
        ctx->auth_status = NGX_DECLINED;
        return NGX_DECLINED;
    }

    if (rc == NGX_DECLINED) {
        /* no credentials at all: a bare challenge (RFC 6750, 3.1) */
        return ngx_http_hpki_unauthorized(r, NULL,
                                          "a Bearer token is required");
    }

    if (rc != NGX_OK) {
        return ngx_http_hpki_unauthorized(r, "invalid_request",
                                          "malformed Authorization header");
    }

    ctx->id.token = token;

    SHA256(token.data, token.len, ctx->token_key);

    if (ngx_http_hpki_cache_lookup(r, ctx->token_key, &ctx->id) == NGX_OK) {

        /* verified, and confirmed by Redis less than "valid" ago */

        rc = ngx_http_hpki_check_binding(r, &ctx->id);

        if (rc == NGX_OK) {
            rc = ngx_http_hpki_check_role(r, &ctx->id);
        }

        ctx->auth_done = 1;
        ctx->auth_status = rc;

        return rc;
    }

    rc = ngx_http_hpki_token_verify(r, &token, &ctx->id, NULL, &err);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: token refused: %s", err);
        return ngx_http_hpki_unauthorized(r, "invalid_token", err);
    }

    rc = ngx_http_hpki_check_binding(r, &ctx->id);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the token's state, and its subject's misuse counter */

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_auth_state, ctx,
                                     "MGET hpki:tok:%b hpki:fail:%b",
                                     ctx->id.token_id.data,
                                     ctx->id.token_id.len,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    ctx->auth_pending = 1;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


static void
ngx_http_hpki_auth_state(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    ngx_int_t   rc;
    ngx_str_t   sub;

    ctx->auth_pending = 0;
    ctx->auth_done = 1;

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        rc = ngx_http_hpki_redis_string(r, reply->element[0], &sub);

    } else {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %*s", (size_t) reply->len,
                          reply->str);

        } else if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: unexpected reply type %d to MGET",
                          reply->type);
        }

        rc = NGX_ERROR;
    }

    if (rc != NGX_ERROR
        && ngx_http_hpki_lockout_locked(r, reply->element[1]))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: \"%V\" is locked out", &ctx->id.subject);

        ctx->auth_status = ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN,
                                               "access_denied",
                                               NGX_HTTP_HPKI_LOCKED);

    } else if (rc == NGX_ERROR) {
        /* fail closed */
        ctx->auth_status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else if (rc == NGX_OK
               && sub.len == ctx->id.subject.len
               && ngx_strncmp(sub.data, ctx->id.subject.data, sub.len) == 0)
    {
        ngx_http_hpki_cache_store(r, ctx->token_key, &ctx->id,
                                  ctx->id.expires);

        ctx->auth_status = ngx_http_hpki_check_role(r, &ctx->id);

    } else {
        ngx_http_hpki_lockout_record(r, &ctx->id.subject,
                                     "the token is revoked or unknown");

        ctx->auth_status = ngx_http_hpki_unauthorized(r, "invalid_token",
                                        "the token is revoked or unknown");
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * Signature with the pinned algorithm, iss, aud, exp, nbf, iat, and the
 * claims an identity needs.  NGX_OK fills id (and *claims, for the caller
 * to json_decref, if asked); otherwise *err says why.  Redis is not asked.
 */

ngx_int_t
ngx_http_hpki_token_verify(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_hpki_identity_t *id, json_t **claims, const char **err)
{
    json_t                     *c;
    ngx_int_t                   rc;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    c = ngx_http_hpki_jws_verify((char *) token->data, token->len,
                                 hmcf->keys, hmcf->nkeys, err);
    if (c == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_hpki_jwt_check(c, (char *) hmcf->issuer.data,
                                (char *) hmcf->audience.data, ngx_time(),
                                hmcf->leeway, err)
        != 0)
    {
        json_decref(c);
        return NGX_DECLINED;
    }

    rc = ngx_http_hpki_identity_from_claims(r, c, id);

    if (rc != NGX_OK || claims == NULL) {
        json_decref(c);
    }

    if (rc != NGX_OK) {
        *err = "the token lacks required claims";
        return rc;
    }

    id->token = *token;

    if (claims) {
        *claims = c;
    }

    return NGX_OK;
}


/* NGX_DECLINED: no Authorization header; NGX_ERROR: not a usable Bearer */

static ngx_int_t
ngx_http_hpki_bearer(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL) {
        return NGX_DECLINED;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (h->value.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(p, (u_char *) "Bearer ", sizeof("Bearer ") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof("Bearer ") - 1;

    while (p < last && *p == ' ') {
        p++;
    }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    if (p == last || last - p > NGX_HTTP_HPKI_TOKEN_MAX) {
        return NGX_ERROR;
    }

    token->data = p;
    token->len = last - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_claim_str(ngx_http_request_t *r, json_t *claims,
    const char *name, ngx_str_t *value)
{
    json_t  *v;

    v = json_object_get(claims, name);

    if (!json_is_string(v)) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    return ngx_http_hpki_pstrdup(r, value, json_string_value(v),
                                 json_string_length(v));
}


static ngx_int_t
ngx_http_hpki_identity_from_claims(ngx_http_request_t *r, json_t *claims,
    ngx_http_hpki_identity_t *id)
{
    json_t     *v;
    ngx_int_t   rc;

    /* NGX_DECLINED: claims missing or out of bounds; NGX_ERROR: memory */

    rc = ngx_http_hpki_claim_str(r, claims, "sub", &id->subject);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hpki_claim_str(r, claims, "jti", &id->token_id);
    if (rc != NGX_OK) {
        return rc;
    }

    if (id->subject.len == 0 || id->subject.len > NGX_HTTP_HPKI_ID_MAX
        || id->token_id.len == 0 || id->token_id.len > NGX_HTTP_HPKI_ID_MAX)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_hpki_claim_str(r, claims, "hpki_role", &id->role);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    rc = ngx_http_hpki_claim_str(r, claims, "scope", &id->scope);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    rc = ngx_http_hpki_claim_str(r, claims, "sid", &id->sid);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_str_null(&id->auth_method);

    v = json_object_get(claims, "amr");

    if (json_is_array(v) && json_array_size(v) > 0) {
        v = json_array_get(v, 0);

        if (json_is_string(v)
            && ngx_http_hpki_pstrdup(r, &id->auth_method,
                                     json_string_value(v),
                                     json_string_length(v))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* jwt_check made sure exp is an integer */
    id->expires = (time_t) json_integer_value(json_object_get(claims, "exp"));

    ngx_str_null(&id->x5t);

    v = json_object_get(claims, "cnf");

    if (json_is_object(v)) {
        rc = ngx_http_hpki_claim_str(r, v, "x5t#S256", &id->x5t);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * RFC 8705: a card-bound token may travel without a client certificate
 * (the EHR holds it), but never with a different one.
 */

static ngx_int_t
ngx_http_hpki_check_binding(ngx_http_request_t *r,
    ngx_http_hpki_identity_t *id)
{
#if (NGX_HTTP_SSL)
    X509    *cert;
    int      rc;
    char     x5t[NGX_HTTP_HPKI_X5T_LEN];

    if (id->x5t.len == 0 || r->connection->ssl == NULL) {
        return NGX_OK;
    }

    cert = SSL_get_peer_certificate(r->connection->ssl->connection);
    if (cert == NULL) {
        return NGX_OK;
    }

    rc = ngx_http_hpki_cert_x5t(cert, x5t, sizeof(x5t));

    X509_free(cert);

    if (rc == 0
        && ngx_strlen(x5t) == id->x5t.len
        && ngx_memcmp(x5t, id->x5t.data, id->x5t.len) == 0)
    {
        return NGX_OK;
    }

    ngx_http_hpki_lockout_record(r, &id->subject,
                                 "presented with another client certificate");

    return ngx_http_hpki_unauthorized(r, "invalid_token",
                        "the token is bound to another client certificate");
#else

    return NGX_OK;

#endif
}


/* authenticated; now whether this role may use the location */

static ngx_int_t
ngx_http_hpki_check_role(ngx_http_request_t *r, ngx_http_hpki_identity_t *id)
{
    if (ngx_http_hpki_role_allowed(r, &id->role)) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: role \"%V\" of \"%V\" is not allowed here",
                  &id->role, &id->subject);

    return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN, "access_denied",
                               "the holder's HPKI role is not allowed here");
}


/* a browser location sends the person to log in; an API answers 401 */

static ngx_int_t
ngx_http_hpki_unauthorized(ngx_http_request_t *r, const char *error,
    const char *description)
{
    u_char                    *p;
    size_t                     len;
    ngx_str_t                  url;
    ngx_table_elt_t           *h;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    if (hlcf->login_url) {
        if (ngx_http_complex_value(r, hlcf->login_url, &url) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Location");
        h->value = url;

        r->headers_out.location = h;

        return NGX_HTTP_MOVED_TEMPORARILY;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("Bearer realm=\"hpki\"") - 1;

    if (error) {
        len += sizeof(", error=\"\", error_description=\"\"") - 1
               + ngx_strlen(error) + ngx_strlen(description);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;

    p = ngx_cpymem(p, "Bearer realm=\"hpki\"",
                   sizeof("Bearer realm=\"hpki\"") - 1);

    if (error) {
        p = ngx_sprintf(p, ", error=\"%s\", error_description=\"%s\"",
                        error, description);
    }

    h->value.len = p - h->value.data;

    return ngx_http_hpki_error(r, NGX_HTTP_UNAUTHORIZED,
                               error ? error : "invalid_token", description);
}


ngx_int_t
ngx_http_hpki_token_has_scope(ngx_http_hpki_identity_t *id,
    const char *scope)
{
    size_t   len;
    u_char  *p, *last;

    len = ngx_strlen(scope);
    p = id->scope.data;
    last = p + id->scope.len;

    while (p < last) {
        if ((size_t) (last - p) >= len
            && ngx_strncmp(p, scope, len) == 0
            && (p + len == last || p[len] == ' '))
        {
            return 1;
        }

        p = ngx_strlchr(p, last, ' ');
        if (p == NULL) {
            break;
        }

        p++;
    }

    return 0;
}


ngx_int_t
ngx_http_hpki_token_issue(ngx_http_request_t *r,
    ngx_http_hpki_identity_t *id, ngx_str_t *token)
{
    char                       *jws;
    u_char                      rnd[16];
    char                        jti[32];
    time_t                      now;
    json_t                     *claims, *cnf;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    if (RAND_bytes(rnd, sizeof(rnd)) != 1
        || ngx_http_hpki_base64url_encode(rnd, sizeof(rnd), jti, sizeof(jti))
           < 0)
    {
        return NGX_ERROR;
    }

    now = ngx_time();

    claims = json_pack("{s:s%, s:s%, s:s%, s:I, s:I, s:I, s:s, s:s%, s:[s%]}",
                       "iss", hmcf->issuer.data, hmcf->issuer.len,
                       "sub", id->subject.data, id->subject.len,
                       "aud", hmcf->audience.data, hmcf->audience.len,
                       "iat", (json_int_t) now,
                       "nbf", (json_int_t) now,
                       "exp", (json_int_t) (now + hmcf->token_ttl),
                       "jti", jti,
                       "scope", id->scope.data, id->scope.len,
                       "amr", id->auth_method.data, id->auth_method.len);
    if (claims == NULL) {
        return NGX_ERROR;
    }

    if (id->role.len) {
        json_object_set_new(claims, "hpki_role",
                            json_stringn((char *) id->role.data,
                                         id->role.len));
    }

    if (id->sid.len) {
        json_object_set_new(claims, "sid",
                            json_stringn((char *) id->sid.data,
                                         id->sid.len));
    }

    if (id->x5t.len) {
        cnf = json_pack("{s:s%}", "x5t#S256", id->x5t.data, id->x5t.len);
        if (cnf == NULL) {
            json_decref(claims);
            return NGX_ERROR;
        }

        json_object_set_new(claims, "cnf", cnf);
    }

    jws = ngx_http_hpki_jws_sign(&hmcf->keys[0], claims);

    json_decref(claims);

    if (jws == NULL) {
        return NGX_ERROR;
    }

    token->len = ngx_strlen(jws);
    token->data = ngx_pnalloc(r->pool, token->len);
    if (token->data == NULL) {
        free(jws);
        return NGX_ERROR;
    }

    ngx_memcpy(token->data, jws, token->len);
    free(jws);

    id->token_id.len = ngx_strlen(jti);
    id->token_id.data = ngx_pnalloc(r->pool, id->token_id.len);
    if (id->token_id.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(id->token_id.data, jti, id->token_id.len);

    return NGX_OK;
}
