/*
 * Logins by TLS client certificate, verified by nginx against
 * ssl_client_certificate (ssl_verify_client optional_no_ca; the reason of a
 * failed verification is returned here).
 *
 * HPKI card: an HPKI authentication certificate with an hcRole, the role
 * read from it.  My Number card (JPKI): the user-authentication certificate
 * only, never the signing one (it carries the holder's home address); it
 * carries no name, so it counts only once an operator has linked it to an
 * HPKI identity, whose recorded role the token then carries.
 *
 * Redis maps the certificate's x5t#S256 to the user id; the token issued
 * is bound to the certificate (RFC 8705).
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_login.h"
#include "ngx_http_hpki_token.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_cert.h"
#include "ngx_http_hpki_lockout.h"


typedef struct {
    ngx_str_t                    name;        /* amr, $hpki_auth_method */
    const char                  *what;        /* for log lines */
    const char                  *map;         /* certificate -> user id */
    int                          kind;        /* the certificate required */
    const char                  *wrong_kind;
    const char                  *unlinked;
} ngx_http_hpki_login_method_t;


typedef struct {
    ngx_http_hpki_login_method_t  *method;
    ngx_http_hpki_login_done_pt    done;
} ngx_http_hpki_login_state_t;


static ngx_int_t ngx_http_hpki_login(ngx_http_request_t *r,
    ngx_uint_t method);
static void ngx_http_hpki_login_done(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_int_t rc, const char *error,
    const char *desc);
static void ngx_http_hpki_login_finish(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_int_t rc, const char *error,
    const char *desc);
static ngx_int_t ngx_http_hpki_login_identity(ngx_http_request_t *r,
    ngx_http_hpki_login_method_t *method, ngx_http_hpki_identity_t *id,
    const char **error, const char **desc);
static void ngx_http_hpki_login_user(ngx_http_request_t *r, void *data,
    redisReply *reply);
static void ngx_http_hpki_login_role(ngx_http_request_t *r, void *data,
    redisReply *reply);
static void ngx_http_hpki_login_stored(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_login_reply(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx);


static ngx_http_hpki_login_method_t  ngx_http_hpki_login_card_method = {
    ngx_string("hpki_card"),
    "card",
    "hpki:cert:",
    NGX_HTTP_HPKI_CERT_AUTH,
    "not an HPKI authentication certificate",
    "this card is not registered with the gateway"
};


static ngx_http_hpki_login_method_t  ngx_http_hpki_login_jpki_method = {
    ngx_string("jpki"),
    "JPKI",
    "hpki:jpki:",
    NGX_HTTP_HPKI_CERT_JPKI_AUTH,
    "not a JPKI user-authentication certificate",
    "this My Number card is not linked to an HPKI identity: an operator "
    "links it with \"hpki-admin user link-jpki\", and again after each "
    "card renewal"
};


/*
 * KEYS: hpki:tok:<jti>, hpki:fail:<sub>; ARGV: sub, ttl, lockout limit
 * (0: off).  A locked-out subject gets no token.
 */

static const char  ngx_http_hpki_login_script[] =
    "if ARGV[3] ~= '0' and "
    "   tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) "
    "then return 'locked' end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "return 'ok'";


ngx_int_t
ngx_http_hpki_login_card_handler(ngx_http_request_t *r)
{
    return ngx_http_hpki_login(r, NGX_HTTP_HPKI_LOGIN_CARD);
}


ngx_int_t
ngx_http_hpki_login_jpki_handler(ngx_http_request_t *r)
{
    return ngx_http_hpki_login(r, NGX_HTTP_HPKI_LOGIN_JPKI);
}


static ngx_int_t
ngx_http_hpki_login(ngx_http_request_t *r, ngx_uint_t method)
{
    ngx_int_t             rc;
    const char           *error, *desc;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hpki_login_authenticate(r, method, ngx_http_hpki_login_done,
                                          &error, &desc);

    if (rc == NGX_DONE || rc == NGX_ERROR) {
        return rc == NGX_DONE ? NGX_DONE : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hpki_send_error(r, rc, error, desc);
}


/*
 * Who presents the client certificate of this request: the certificate
 * checks, then Redis maps it to a user (and, for JPKI, the user to a
 * role).  NGX_DONE: Redis was asked, the request is suspended and done()
 * runs with NGX_OK (ctx->id filled) or an HTTP status; NGX_ERROR; or an
 * HTTP status with *error and *desc, nothing sent.
 */

ngx_int_t
ngx_http_hpki_login_authenticate(ngx_http_request_t *r, ngx_uint_t method,
    ngx_http_hpki_login_done_pt done, const char **error, const char **desc)
{
    ngx_int_t                     rc;
    ngx_http_hpki_ctx_t          *ctx;
    ngx_http_hpki_login_state_t  *ls;

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ls = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_login_state_t));
    if (ls == NULL) {
        return NGX_ERROR;
    }

    ls->method = (method == NGX_HTTP_HPKI_LOGIN_JPKI)
                 ? &ngx_http_hpki_login_jpki_method
                 : &ngx_http_hpki_login_card_method;
    ls->done = done;
    ctx->login = ls;

    rc = ngx_http_hpki_login_identity(r, ls->method, &ctx->id, error, desc);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: %s login refused: %s", ls->method->what, *desc);
        return rc;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_login_user, ctx,
                                     "GET %s%b", ls->method->map,
                                     ctx->id.x5t.data, ctx->id.x5t.len);

    rc = ngx_http_hpki_redis_wait(r, rc);

    if (rc == NGX_HTTP_INTERNAL_SERVER_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        *error = "temporarily_unavailable";
        *desc = "the token store is unavailable";
    }

    return rc;
}


static void
ngx_http_hpki_login_done(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx,
    ngx_int_t rc, const char *error, const char *desc)
{
    if (rc == NGX_OK) {
        ngx_http_hpki_login_issue(r, ctx);
        return;
    }

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_hpki_send_error(r, rc, error,
                                                          desc));
}


/* the end of the Redis part of an authentication */

static void
ngx_http_hpki_login_finish(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx,
    ngx_int_t rc, const char *error, const char *desc)
{
    ngx_http_hpki_login_state_t  *ls;

    ls = ctx->login;

    ls->done(r, ctx, rc, error, desc);
}


/* NGX_OK, NGX_ERROR, or an HTTP status with *error and *desc set */

static ngx_int_t
ngx_http_hpki_login_identity(ngx_http_request_t *r,
    ngx_http_hpki_login_method_t *method, ngx_http_hpki_identity_t *id,
    const char **error, const char **desc)
{
#if (NGX_HTTP_SSL)
    int          kind;
    X509        *cert;
    long         verify;
    char         buf[512];
    ngx_int_t    rc;

    *error = "invalid_client";

    if (r->connection->ssl == NULL) {
        *desc = "a card certificate over TLS is required";
        return NGX_HTTP_UNAUTHORIZED;
    }

    cert = SSL_get_peer_certificate(r->connection->ssl->connection);
    if (cert == NULL) {
        *desc = "no client certificate was presented";
        return NGX_HTTP_UNAUTHORIZED;
    }

    verify = SSL_get_verify_result(r->connection->ssl->connection);

    if (verify != X509_V_OK) {
        X509_free(cert);
        *desc = X509_verify_cert_error_string(verify);
        return NGX_HTTP_UNAUTHORIZED;
    }

    *error = "access_denied";
    rc = NGX_HTTP_FORBIDDEN;

    kind = ngx_http_hpki_cert_kind(cert);

    if (kind & NGX_HTTP_HPKI_CERT_JPKI_SIGN) {
        *desc = "a JPKI signing certificate carries the holder's name, "
                "birth date and home address and is never accepted for "
                "login: use the user-authentication certificate";
        goto done;
    }

    if (!(kind & method->kind)) {
        *desc = method->wrong_kind;
        goto done;
    }

    if (method == &ngx_http_hpki_login_card_method) {

        /* the qualification is on the card; JPKI's comes with the link */

        if (ngx_http_hpki_cert_role(cert, buf, sizeof(buf)) != 0) {
            *desc = "the certificate carries no hcRole";
            goto done;
        }

        if (ngx_http_hpki_pstrdup(r, &id->role, buf, ngx_strlen(buf))
            != NGX_OK)
        {
            rc = NGX_ERROR;
            goto done;
        }

        if (!ngx_http_hpki_role_allowed(r, &id->role)) {
            *desc = "the card's HPKI role is not allowed here";
            goto done;
        }
    }

    rc = NGX_ERROR;

    if (ngx_http_hpki_cert_x5t(cert, buf, sizeof(buf)) != 0
        || ngx_http_hpki_pstrdup(r, &id->x5t, buf, ngx_strlen(buf)) != NGX_OK
        || ngx_http_hpki_cert_serial_hex(cert, buf, sizeof(buf)) != 0
        || ngx_http_hpki_pstrdup(r, &id->cert_serial, buf, ngx_strlen(buf))
           != NGX_OK
        || ngx_http_hpki_cert_issuer_text(cert, buf, sizeof(buf)) != 0
        || ngx_http_hpki_pstrdup(r, &id->issuer, buf, ngx_strlen(buf))
           != NGX_OK)
    {
        goto done;
    }

    id->auth_method = method->name;
    ngx_str_set(&id->scope, "openid sign");

    rc = NGX_OK;

done:

    X509_free(cert);

    return rc;

#else

    *error = "server_error";
    *desc = "built without TLS";

    return NGX_HTTP_INTERNAL_SERVER_ERROR;

#endif
}


static void
ngx_http_hpki_login_user(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_int_t                      rc;
    ngx_str_t                      user;
    ngx_http_hpki_ctx_t           *ctx = data;
    ngx_http_hpki_login_method_t  *method;

    method = ((ngx_http_hpki_login_state_t *) ctx->login)->method;

    rc = ngx_http_hpki_redis_string(r, reply, &user);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_login_finish(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NULL, NULL);
        return;
    }

    if (rc == NGX_DECLINED || user.len == 0
        || user.len > NGX_HTTP_HPKI_ID_MAX)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: %s login refused: certificate %V of %V is "
                      "not linked to a user", method->what,
                      &ctx->id.cert_serial, &ctx->id.issuer);

        ngx_http_hpki_login_finish(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "access_denied", method->unlinked);
        return;
    }

    if (ngx_http_hpki_pstrdup(r, &ctx->id.subject, (char *) user.data,
                              user.len)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->id.role.len) {
        ngx_http_hpki_login_finish(r, ctx, NGX_OK, NULL, NULL);
        return;
    }

    /* JPKI: the role hpki-admin recorded from the HPKI card */

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_login_role, ctx,
                                     "HGET hpki:user:%b role",
                                     ctx->id.subject.data,
                                     ctx->id.subject.len);
    if (rc != NGX_OK) {
        ngx_http_hpki_login_finish(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NULL, NULL);
    }
}


static void
ngx_http_hpki_login_role(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_int_t             rc;
    ngx_str_t             role;
    ngx_http_hpki_ctx_t  *ctx = data;

    rc = ngx_http_hpki_redis_string(r, reply, &role);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_login_finish(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NULL, NULL);
        return;
    }

    if (rc == NGX_DECLINED || role.len == 0) {
        ngx_http_hpki_login_finish(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "access_denied",
                                   "no HPKI role is recorded for this user: "
                                   "an operator adds the user again with "
                                   "their HPKI card certificate");
        return;
    }

    if (ngx_http_hpki_pstrdup(r, &ctx->id.role, (char *) role.data, role.len)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!ngx_http_hpki_role_allowed(r, &ctx->id.role)) {
        ngx_http_hpki_login_finish(r, ctx, NGX_HTTP_FORBIDDEN,
                                   "access_denied",
                                   "the holder's HPKI role is not allowed "
                                   "here");
        return;
    }

    ngx_http_hpki_login_finish(r, ctx, NGX_OK, NULL, NULL);
}


/*
 * The token, and its state stored unless the subject is locked out; then
 * the answer.  ctx->id is the authenticated person.
 */

void
ngx_http_hpki_login_issue(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    if (ngx_http_hpki_token_issue(r, &ctx->id, &ctx->id.token) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_login_stored, ctx,
                                     "EVAL %s 2 hpki:tok:%b hpki:fail:%b "
                                     "%b %lld %lld",
                                     ngx_http_hpki_login_script,
                                     ctx->id.token_id.data,
                                     ctx->id.token_id.len,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     (long long) hmcf->token_ttl,
                                     (long long) hmcf->lockout_limit);
    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


static void
ngx_http_hpki_login_stored(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx = data;

    rc = ngx_http_hpki_lockout_stored(r, reply, &ctx->id.subject);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_hpki_send_error(r,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  NGX_HTTP_HPKI_LOCKED));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: %V login: user \"%V\" role \"%V\" token %V",
                  &ctx->id.auth_method, &ctx->id.subject, &ctx->id.role,
                  &ctx->id.token_id);

    ngx_http_finalize_request(r, ngx_http_hpki_login_reply(r, ctx));
}


/*
 * The target of "error_page 495 = @...": nginx refuses a client certificate
 * that failed verification (expired, revoked, wrong purpose) before any
 * phase runs; this says why, in JSON.
 */

ngx_int_t
ngx_http_hpki_cert_error_handler(ngx_http_request_t *r)
{
    const char  *desc;

    if (ngx_http_hpki_get_ctx(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    desc = "the client certificate was refused";

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        long  verify;

        verify = SSL_get_verify_result(r->connection->ssl->connection);

        if (verify != X509_V_OK) {
            desc = X509_verify_cert_error_string(verify);
        }
    }
#endif

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: client certificate refused: %s", desc);

    return ngx_http_hpki_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                    "invalid_client", desc);
}


static ngx_int_t
ngx_http_hpki_login_reply(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx)
{
    json_t                     *body;
    ngx_int_t                   rc;
    ngx_table_elt_t            *h;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    body = json_pack("{s:s%, s:s, s:I, s:s%}",
                     "access_token", ctx->id.token.data, ctx->id.token.len,
                     "token_type", "Bearer",
                     "expires_in", (json_int_t) hmcf->token_ttl,
                     "scope", ctx->id.scope.data, ctx->id.scope.len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* FIDO: who logged in, for the page (a card shows it on its face) */

    if (ctx->id.name.len
        && json_object_set_new(body, "user",
                               json_pack("{s:s%, s:s%, s:s%}",
                                         "id", ctx->id.subject.data,
                                         ctx->id.subject.len,
                                         "name", ctx->id.name.data,
                                         ctx->id.name.len,
                                         "role", ctx->id.role.data,
                                         ctx->id.role.len))
           != 0)
    {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}
