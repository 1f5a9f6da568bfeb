/*
 * Smartphone binding and FIDO (WebAuthn) login, in WebAuthn Level 3's JSON
 * forms (docs/fido.md):
 *
 *   register/options  {"enrollment_code"} or a card-login token
 *   register          {"enrollment_code", "credential"}
 *   login/options     {} or {"user"}
 *   login             {"credential"}, answered as the card login
 *
 * Challenges are 32 bytes from RAND_bytes, kept in Redis as
 * hpki:chal:<sha256> for hpki_fido_challenge_ttl and taken with GETDEL, so
 * each is used once.  Enrolment codes (hpki:enroll:<id>, written by
 * hpki-admin enroll-code) are stored hashed; five wrong codes lock one.
 * Every check that touches Redis is one script, so it is atomic.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_fido.h"
#include "ngx_http_hpki_webauthn.h"
#include "ngx_http_hpki_login.h"
#include "ngx_http_hpki_oidc.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_sign.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


#define NGX_HTTP_HPKI_FIDO_CODE_ID_LEN       8
#define NGX_HTTP_HPKI_FIDO_CODE_LEN          21     /* id '-' 12 secret */
#define NGX_HTTP_HPKI_FIDO_CODE_TRIES        5
#define NGX_HTTP_HPKI_FIDO_CHALLENGE_LEN     32
#define NGX_HTTP_HPKI_FIDO_HASH_LEN          43     /* base64url SHA-256 */
#define NGX_HTTP_HPKI_FIDO_CREDS_MAX         16     /* per user */

#define NGX_HTTP_HPKI_FIDO_B64_MAX(n)        (((n) * 4 + 2) / 3 + 1)


typedef struct {
    ngx_uint_t                            op;
    json_t                               *body;

    /* the person: by enrolment code, card-login token or credential */
    unsigned                              by_code:1;
    u_char                                code_id[
                                              NGX_HTTP_HPKI_FIDO_CODE_ID_LEN];
    u_char                                code_hash[SHA256_DIGEST_LENGTH * 2];
    ngx_str_t                             user;
    ngx_str_t                             name;

    ngx_str_t                             challenge;      /* base64url */
    u_char                                challenge_key[
                                              NGX_HTTP_HPKI_FIDO_HASH_LEN];
    json_t                               *exclude;        /* credential ids */

    /* the ceremony's result */
    ngx_http_hpki_webauthn_client_t       cd;
    ngx_http_hpki_webauthn_attestation_t  att;
    ngx_str_t                             client_data;
    ngx_str_t                             authdata;
    ngx_str_t                             sig;
    ngx_str_t                             user_handle;    /* base64url */
    ngx_str_t                             cred_id;        /* base64url */
    u_char                                cred_key[NGX_HTTP_HPKI_FIDO_HASH_LEN];
    ngx_str_t                             stored_key;     /* base64 SPKI */
    ngx_str_t                             login;          /* OIDC handle */
    uint32_t                              sign_count;
} ngx_http_hpki_fido_ctx_t;


static ngx_int_t ngx_http_hpki_fido_handler(ngx_http_request_t *r);
static void ngx_http_hpki_fido_body(ngx_http_request_t *r);
static void ngx_http_hpki_fido_cleanup(void *data);
static ngx_int_t ngx_http_hpki_fido_person(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx);
static ngx_int_t ngx_http_hpki_fido_code(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx, json_t *v);
static void ngx_http_hpki_fido_code_checked(ngx_http_request_t *r,
    void *data, redisReply *reply);
static ngx_int_t ngx_http_hpki_fido_code_verdict(ngx_http_request_t *r,
    redisReply *reply, ngx_str_t *user);
static ngx_int_t ngx_http_hpki_fido_lookup_user(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx);
static void ngx_http_hpki_fido_user_found(ngx_http_request_t *r,
    void *data, redisReply *reply);
static ngx_int_t ngx_http_hpki_fido_new_challenge(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx);
static void ngx_http_hpki_fido_challenge_stored(ngx_http_request_t *r,
    void *data, redisReply *reply);
static ngx_int_t ngx_http_hpki_fido_options(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx);
static ngx_int_t ngx_http_hpki_fido_credential(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx, const char *type);
static ngx_int_t ngx_http_hpki_fido_field(ngx_http_request_t *r,
    json_t *obj, const char *name, size_t max, ngx_uint_t optional,
    ngx_str_t *out);
static void ngx_http_hpki_fido_register_challenge(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_fido_registered(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_fido_login_fetched(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_fido_counted(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_fido_take_challenge(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx);
static ngx_int_t ngx_http_hpki_fido_asked(ngx_int_t rc);
static ngx_int_t ngx_http_hpki_fido_reply_string(redisReply *reply,
    size_t i, ngx_str_t *s);
static ngx_int_t ngx_http_hpki_fido_hash_key(const u_char *data, size_t len,
    u_char *key);
static ngx_int_t ngx_http_hpki_fido_origin_allowed(ngx_http_request_t *r,
    const char *origin);
static ngx_int_t ngx_http_hpki_fido_valid_user(ngx_str_t *user);
static ngx_int_t ngx_http_hpki_fido_refuse(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx, ngx_uint_t status, const char *error,
    const char *desc);
static void ngx_http_hpki_fido_finish(ngx_http_request_t *r, ngx_int_t rc);


ngx_conf_enum_t  ngx_http_hpki_fido_uv_values[] = {
    { ngx_string("required"), NGX_HTTP_HPKI_FIDO_UV_REQUIRED },
    { ngx_string("preferred"), NGX_HTTP_HPKI_FIDO_UV_PREFERRED },
    { ngx_string("discouraged"), NGX_HTTP_HPKI_FIDO_UV_DISCOURAGED },
    { ngx_null_string, 0 }
};


ngx_conf_enum_t  ngx_http_hpki_fido_attestation_values[] = {
    { ngx_string("none"), 0 },
    { ngx_string("direct"), 1 },
    { ngx_null_string, 0 }
};


static const char  *ngx_http_hpki_fido_uv_names[] = {
    "required", "preferred", "discouraged"
};


/*
 * KEYS: hpki:enroll:<id>; ARGV: the code's hash, "1" to use it up.
 * Answers {"ok", user}, {"wrong", tries left}, {"locked"} or {"unknown"}.
 */

#define NGX_HTTP_HPKI_FIDO_CODE_CHECK                                        \
    "local e = redis.call('HMGET', KEYS[1], 'user', 'hash', 'fails') "       \
    "if not e[1] then return {'unknown'} end "                               \
    "local fails = tonumber(e[3] or '0') "                                   \
    "if fails >= 5 then return {'locked'} end "                              \
    "if e[2] ~= ARGV[1] then "                                               \
    "  fails = redis.call('HINCRBY', KEYS[1], 'fails', 1) "                  \
    "  if fails >= 5 then return {'locked'} end "                            \
    "  return {'wrong', tostring(5 - fails)} "                               \
    "end "

static const char  ngx_http_hpki_fido_code_script[] =
    NGX_HTTP_HPKI_FIDO_CODE_CHECK
    "return {'ok', e[1]}";


/*
 * KEYS: hpki:user:<id>, hpki:fidouser:<id>; ARGV: a new user handle.
 * Answers {name, status, role, user handle, credential id...}, or {} for an
 * unknown user.  The user handle (WebAuthn user.id) is random, made once
 * per user: it must not identify the person (WebAuthn 14.6.1).
 */

static const char  ngx_http_hpki_fido_user_script[] =
    "local u = redis.call('HMGET', KEYS[1], 'name', 'status', 'role', "
    "  'webauthn') "
    "if not u[2] then return {} end "
    "if not u[4] then "
    "  u[4] = ARGV[1] "
    "  redis.call('HSET', KEYS[1], 'webauthn', u[4]) "
    "end "
    "local r = {u[1] or '', u[2], u[3] or '', u[4]} "
    "for _, h in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
    "  local id = redis.call('HGET', 'hpki:fido:' .. h, 'id') "
    "  if id then r[#r + 1] = id end "
    "end "
    "return r";


/*
 * Registration, after the ceremony verified.  KEYS: hpki:enroll:<id> (or
 * hpki:tok:<jti> for a card-login token), hpki:fido:<h>,
 * hpki:fidouser:<user>, hpki:user:<user>.  ARGV: code hash (or ""), user,
 * then the credential's id, alg, key, count, fmt, aaguid, now.
 */

static const char  ngx_http_hpki_fido_register_script[] =
    "if ARGV[1] ~= '' then "
    NGX_HTTP_HPKI_FIDO_CODE_CHECK
    "  if e[1] ~= ARGV[2] then return {'unknown'} end "
    "elseif redis.call('GET', KEYS[1]) ~= ARGV[2] then "
    "  return {'revoked'} "
    "end "
    "if redis.call('HGET', KEYS[4], 'status') ~= 'active' then "
    "  return {'disabled'} end "
    "if redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end "
    "if redis.call('SCARD', KEYS[3]) >= 16 then return {'full'} end "
    "if ARGV[1] ~= '' then redis.call('DEL', KEYS[1]) end "
    "redis.call('HSET', KEYS[2], 'user', ARGV[2], 'id', ARGV[3], "
    "  'alg', ARGV[4], 'key', ARGV[5], 'count', ARGV[6], 'fmt', ARGV[7], "
    "  'aaguid', ARGV[8], 'created', ARGV[9]) "
    "redis.call('SADD', KEYS[3], string.sub(KEYS[2], 11)) "
    "return {'ok'}";


/*
 * Login: the challenge taken and the credential and its user read at once.
 * KEYS: hpki:chal:<h>, hpki:fido:<h>.  Answers {challenge record, user,
 * alg, key, count, clone, status, role, name, user handle}; missing ones
 * are nil.
 */

static const char  ngx_http_hpki_fido_login_script[] =
    "local c = redis.call('GETDEL', KEYS[1]) "
    "local f = redis.call('HMGET', KEYS[2], 'user', 'alg', 'key', 'count', "
    "  'clone') "
    "local u = {false, false, false, false} "
    "if f[1] then "
    "  u = redis.call('HMGET', 'hpki:user:' .. f[1], 'status', 'role', "
    "    'name', 'webauthn') "
    "end "
    "return {c, f[1], f[2], f[3], f[4], f[5], u[1], u[2], u[3], u[4]}";


/*
 * The signature counter (WebAuthn 7.2, step 21): it must grow unless the
 * authenticator keeps none (both 0).  A regression suspends the
 * credential.  KEYS: hpki:fido:<h>; ARGV: the new count, now.
 */

static const char  ngx_http_hpki_fido_count_script[] =
    "local f = redis.call('HMGET', KEYS[1], 'count', 'clone') "
    "if not f[1] then return 'gone' end "
    "if f[2] then return 'clone' end "
    "local old, new = tonumber(f[1]), tonumber(ARGV[1]) "
    "if (old ~= 0 or new ~= 0) and new <= old then "
    "  redis.call('HSET', KEYS[1], 'clone', ARGV[2]) "
    "  return 'clone' "
    "end "
    "redis.call('HSET', KEYS[1], 'count', ARGV[1], 'used', ARGV[2]) "
    "return 'ok'";


/* --- configuration ------------------------------------------------------ */


void
ngx_http_hpki_fido_create_conf(ngx_http_hpki_fido_conf_t *conf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     conf->op = 0;
     *     conf->rp_id = { 0, NULL };
     *     conf->rp_name = { 0, NULL };
     */

    conf->origins = NGX_CONF_UNSET_PTR;
    conf->uv = NGX_CONF_UNSET_UINT;
    conf->attestation = NGX_CONF_UNSET_UINT;
    conf->challenge_ttl = NGX_CONF_UNSET;
}


char *
ngx_http_hpki_fido_merge_conf(ngx_conf_t *cf, ngx_http_hpki_fido_conf_t *prev,
    ngx_http_hpki_fido_conf_t *conf)
{
    size_t       len;
    u_char      *host, *end;
    ngx_str_t   *origin;
    ngx_uint_t   i;

    ngx_conf_merge_str_value(conf->rp_id, prev->rp_id, "");
    ngx_conf_merge_str_value(conf->rp_name, prev->rp_name, "HPKI gateway");
    ngx_conf_merge_ptr_value(conf->origins, prev->origins, NULL);
    ngx_conf_merge_uint_value(conf->uv, prev->uv,
                              NGX_HTTP_HPKI_FIDO_UV_REQUIRED);
    ngx_conf_merge_uint_value(conf->attestation, prev->attestation, 0);
    ngx_conf_merge_value(conf->challenge_ttl, prev->challenge_ttl, 120);

    if (conf->challenge_ttl < 10 || conf->challenge_ttl > 600) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hpki_fido_challenge_ttl must be 10s to 10m");
        return NGX_CONF_ERROR;
    }

    if (conf->origins) {
        origin = conf->origins->elts;

        for (i = 0; i < conf->origins->nelts; i++) {
            if (ngx_strncmp(origin[i].data, "https://", 8) != 0
                && !(ngx_strncmp(origin[i].data, "http://localhost", 16) == 0
                     && (origin[i].len == 16 || origin[i].data[16] == ':')))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "hpki_fido_origin \"%V\" must be https "
                                   "(or http://localhost, for tests)",
                                   &origin[i]);
                return NGX_CONF_ERROR;
            }

            /* a browser accepts an rp id that is the host or a parent */

            host = (u_char *) ngx_strstr(origin[i].data, "://") + 3;
            end = ngx_strlchr(host, origin[i].data + origin[i].len, ':');
            len = (end ? end : origin[i].data + origin[i].len) - host;

            if (conf->rp_id.len
                && !(len == conf->rp_id.len
                     && ngx_strncasecmp(host, conf->rp_id.data, len) == 0)
                && !(len > conf->rp_id.len
                     && host[len - conf->rp_id.len - 1] == '.'
                     && ngx_strncasecmp(host + len - conf->rp_id.len,
                                        conf->rp_id.data, conf->rp_id.len)
                        == 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "hpki_fido_origin \"%V\" is not on "
                                   "hpki_fido_rp_id \"%V\" or a subdomain "
                                   "of it", &origin[i], &conf->rp_id);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (conf->op && (conf->rp_id.len == 0 || conf->origins == NULL)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hpki_fido needs hpki_fido_rp_id and "
                           "hpki_fido_origin");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "hpki_fido_origin ORIGIN ...;": each as the browser reports it */

char *
ngx_http_hpki_fido_origin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (hlcf->fido.origins == NGX_CONF_UNSET_PTR) {
        hlcf->fido.origins = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (hlcf->fido.origins == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0 || value[i].data[value[i].len - 1] == '/') {
            return "takes origins: scheme://host[:port], no path";
        }

        o = ngx_array_push(hlcf->fido.origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


/* "hpki_fido register_options | register | login_options | login;" */

char *
ngx_http_hpki_fido(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (hlcf->fido.op) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "register_options") == 0) {
        hlcf->fido.op = NGX_HTTP_HPKI_FIDO_REGISTER_OPTIONS;

    } else if (ngx_strcmp(value[1].data, "register") == 0) {
        hlcf->fido.op = NGX_HTTP_HPKI_FIDO_REGISTER;

    } else if (ngx_strcmp(value[1].data, "login_options") == 0) {
        hlcf->fido.op = NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS;

    } else if (ngx_strcmp(value[1].data, "login") == 0) {
        hlcf->fido.op = NGX_HTTP_HPKI_FIDO_LOGIN;

    } else {
        return "takes register_options, register, login_options or login";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate, or the location has another handler";
    }

    clcf->handler = ngx_http_hpki_fido_handler;

    return NGX_CONF_OK;
}


/* --- the request -------------------------------------------------------- */


static ngx_int_t
ngx_http_hpki_fido_handler(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_hpki_loc_conf_t  *hlcf;
    ngx_http_hpki_fido_ctx_t  *fctx;

    if (ngx_http_hpki_get_ctx(r) == NULL) {     /* errors in JSON */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    fctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_fido_ctx_t));
    if (fctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    fctx->op = hlcf->fido.op;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_hpki_fido_cleanup;
    cln->data = fctx;

    return ngx_http_hpki_read_body(r, fctx, ngx_http_hpki_fido_body);
}


static void
ngx_http_hpki_fido_cleanup(void *data)
{
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    json_decref(fctx->body);
    json_decref(fctx->exclude);
    ngx_http_hpki_webauthn_attestation_free(&fctx->att);
}


static void
ngx_http_hpki_fido_body(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_fido_ctx_t  *fctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    fctx = ctx->data;

    /* login/options may come with no body at all */

    if (fctx->op == NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS
        && r->headers_in.content_length_n <= 0 && !r->headers_in.chunked)
    {
        fctx->body = json_object();
        rc = fctx->body ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        rc = ngx_http_hpki_json_body(r, &fctx->body);
    }

    if (rc != NGX_OK) {
        ngx_http_hpki_fido_finish(r, rc);
        return;
    }

    switch (fctx->op) {

    case NGX_HTTP_HPKI_FIDO_REGISTER_OPTIONS:
        rc = ngx_http_hpki_fido_person(r, fctx);
        break;

    case NGX_HTTP_HPKI_FIDO_REGISTER:
        rc = ngx_http_hpki_fido_credential(r, fctx, "webauthn.create");

        if (rc == NGX_OK) {
            rc = ngx_http_hpki_fido_person(r, fctx);
        }

        break;

    case NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS:
        rc = ngx_http_hpki_fido_field(r, fctx->body, "user",
                                      NGX_HTTP_HPKI_ID_MAX, 1, &fctx->user);
        if (rc != NGX_OK) {
            break;
        }

        if (fctx->user.len == 0) {
            rc = ngx_http_hpki_fido_new_challenge(r, fctx);
            break;
        }

        if (!ngx_http_hpki_fido_valid_user(&fctx->user)) {
            rc = ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request",
                                     "user must match [A-Za-z0-9._@-]{1,64}");
            break;
        }

        rc = ngx_http_hpki_fido_lookup_user(r, fctx);
        break;

    default: /* NGX_HTTP_HPKI_FIDO_LOGIN */
        rc = ngx_http_hpki_fido_credential(r, fctx, "webauthn.get");

        if (rc != NGX_OK) {
            break;
        }

        /* "login": an OpenID Connect authorization waiting for this */

        rc = ngx_http_hpki_fido_field(r, fctx->body, "login", 64, 1,
                                      &fctx->login);
        if (rc != NGX_OK) {
            break;
        }

        rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_login_fetched,
                                         fctx,
                                         "EVAL %s 2 hpki:chal:%b hpki:fido:%b",
                                         ngx_http_hpki_fido_login_script,
                                         fctx->challenge_key,
                                         (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN,
                                         fctx->cred_key,
                                         (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN);
        rc = ngx_http_hpki_fido_asked(rc);
        break;
    }

    if (rc == NGX_DONE) {
        return;
    }

    ngx_http_hpki_fido_finish(r, rc);
}


/*
 * Registration: who is registering.  An enrolment code, checked (and
 * counted when wrong) in Redis, or the card-login token the access phase
 * checked.
 */

static ngx_int_t
ngx_http_hpki_fido_person(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx)
{
    json_t               *code;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    code = json_object_get(fctx->body, "enrollment_code");

    if (code) {
        return ngx_http_hpki_fido_code(r, fctx, code);
    }

    if (!ctx->auth_done || ctx->auth_status != NGX_OK) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "an enrollment_code, or a card-login "
                                   "token, is required");
    }

    if (ctx->id.auth_method.len != 9
        || ngx_strncmp(ctx->id.auth_method.data, "hpki_card", 9) != 0)
    {
        return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN, "access_denied",
                                   "only a token from an HPKI card login "
                                   "can register a device");
    }

    fctx->user = ctx->id.subject;

    if (fctx->op == NGX_HTTP_HPKI_FIDO_REGISTER_OPTIONS) {
        return ngx_http_hpki_fido_lookup_user(r, fctx);
    }

    return ngx_http_hpki_fido_take_challenge(r, fctx);
}


/*
 * "ABCD2345-EFGH6789JKLM": read case-insensitively, spaces ignored; the
 * hash is of the canonical form, as hpki-admin stored it.
 */

static ngx_int_t
ngx_http_hpki_fido_code(ngx_http_request_t *r, ngx_http_hpki_fido_ctx_t *fctx,
    json_t *v)
{
    u_char       c, code[NGX_HTTP_HPKI_FIDO_CODE_LEN];
    u_char       hash[SHA256_DIGEST_LENGTH];
    size_t       i, n, len;
    ngx_int_t    rc;
    const char  *s;

    s = json_string_value(v);
    len = json_string_length(v);
    n = 0;

    for (i = 0; s && i < len && i < 64; i++) {
        c = s[i];

        if (c == ' ') {
            continue;
        }

        if (c >= 'a' && c <= 'z') {
            c -= 'a' - 'A';
        }

        if (n == NGX_HTTP_HPKI_FIDO_CODE_LEN
            || !((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '9')
                 || (c == '-' && n == NGX_HTTP_HPKI_FIDO_CODE_ID_LEN)))
        {
            break;
        }

        code[n++] = c;
    }

    if (s == NULL || i != len || n != NGX_HTTP_HPKI_FIDO_CODE_LEN
        || code[NGX_HTTP_HPKI_FIDO_CODE_ID_LEN] != '-')
    {
        OPENSSL_cleanse(code, sizeof(code));
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "enrollment_code is not a code of the "
                                   "form XXXXXXXX-XXXXXXXXXXXX");
    }

    SHA256(code, n, hash);
    ngx_hex_dump(fctx->code_hash, hash, sizeof(hash));
    ngx_memcpy(fctx->code_id, code, NGX_HTTP_HPKI_FIDO_CODE_ID_LEN);
    fctx->by_code = 1;

    OPENSSL_cleanse(code, sizeof(code));
    OPENSSL_cleanse(hash, sizeof(hash));

    if (fctx->op == NGX_HTTP_HPKI_FIDO_REGISTER) {
        return ngx_http_hpki_fido_take_challenge(r, fctx);
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_code_checked,
                                     fctx, "EVAL %s 1 hpki:enroll:%b %b",
                                     ngx_http_hpki_fido_code_script,
                                     fctx->code_id,
                                     (size_t) NGX_HTTP_HPKI_FIDO_CODE_ID_LEN,
                                     fctx->code_hash,
                                     sizeof(fctx->code_hash));

    return ngx_http_hpki_fido_asked(rc);
}


static void
ngx_http_hpki_fido_code_checked(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_int_t                  rc;
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    rc = ngx_http_hpki_fido_code_verdict(r, reply, &fctx->user);

    if (rc == NGX_OK) {
        rc = ngx_http_hpki_fido_lookup_user(r, fctx);
    }

    if (rc != NGX_DONE) {
        ngx_http_hpki_fido_finish(r, rc);
    }
}


/* the answer of a script that checked an enrolment code */

static ngx_int_t
ngx_http_hpki_fido_code_verdict(ngx_http_request_t *r, redisReply *reply,
    ngx_str_t *user)
{
    u_char     *p, *desc;
    ngx_str_t   verdict, value;

    if (ngx_http_hpki_fido_reply_string(reply, 0, &verdict) != NGX_OK) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (verdict.len == 2 && ngx_strncmp(verdict.data, "ok", 2) == 0) {

        if (user == NULL) {
            return NGX_OK;
        }

        if (ngx_http_hpki_fido_reply_string(reply, 1, &value) != NGX_OK
            || ngx_http_hpki_pstrdup(r, user, (char *) value.data, value.len)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_OK;
    }

    if (verdict.len == 5 && ngx_strncmp(verdict.data, "wrong", 5) == 0) {

        if (ngx_http_hpki_fido_reply_string(reply, 1, &value) != NGX_OK) {
            value.len = 0;
        }

        /* the error filter reads the reason later: not on the stack */

        desc = ngx_pnalloc(r->pool, 128);
        if (desc == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_snprintf(desc, 127, "the enrolment code is wrong (%V more "
                         "attempts before the enrolment locks)", &value);
        *p = '\0';

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: wrong enrolment code");

        return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN, "access_denied",
                                   (char *) desc);
    }

    if (verdict.len == 6 && ngx_strncmp(verdict.data, "locked", 6) == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: enrolment locked after %d wrong codes",
                      NGX_HTTP_HPKI_FIDO_CODE_TRIES);

        return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN, "access_denied",
                                   "this enrolment is locked after 5 wrong "
                                   "codes: ask the registration desk for a "
                                   "new code");
    }

    return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN, "access_denied",
                               "unknown or expired enrolment code");
}


/* the user's name and status, and the credentials already registered */

static ngx_int_t
ngx_http_hpki_fido_lookup_user(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx)
{
    u_char     raw[32];
    char       handle[NGX_HTTP_HPKI_FIDO_B64_MAX(sizeof(raw))];
    ngx_int_t  rc;

    if (RAND_bytes(raw, sizeof(raw)) != 1
        || ngx_http_hpki_base64url_encode(raw, sizeof(raw), handle,
                                          sizeof(handle))
           < 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_user_found, fctx,
                                     "EVAL %s 2 hpki:user:%b hpki:fidouser:%b "
                                     "%s",
                                     ngx_http_hpki_fido_user_script,
                                     fctx->user.data, fctx->user.len,
                                     fctx->user.data, fctx->user.len, handle);

    return ngx_http_hpki_fido_asked(rc);
}


static void
ngx_http_hpki_fido_user_found(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    size_t                     i;
    ngx_int_t                  rc;
    ngx_str_t                  status, id, handle;
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    fctx->exclude = json_array();
    if (fctx->exclude == NULL) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (reply->elements >= 4) {
        for (i = 4; i < reply->elements && i < 4 + NGX_HTTP_HPKI_FIDO_CREDS_MAX;
             i++)
        {
            if (ngx_http_hpki_fido_reply_string(reply, i, &id) == NGX_OK
                && json_array_append_new(fctx->exclude,
                       json_pack("{s:s, s:s%}", "type", "public-key",
                                 "id", id.data, id.len))
                   != 0)
            {
                ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }
    }

    if (fctx->op == NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS) {

        /* an unknown user gets options too: nothing tells who exists */

        rc = ngx_http_hpki_fido_new_challenge(r, fctx);

        if (rc != NGX_DONE) {
            ngx_http_hpki_fido_finish(r, rc);
        }

        return;
    }

    if (reply->elements < 4
        || ngx_http_hpki_fido_reply_string(reply, 1, &status) != NGX_OK
        || ngx_http_hpki_fido_reply_string(reply, 3, &handle) != NGX_OK
        || status.len != 6 || ngx_strncmp(status.data, "active", 6) != 0)
    {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_error(r,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the user is unknown or disabled"));
        return;
    }

    if (ngx_http_hpki_fido_reply_string(reply, 0, &fctx->name) != NGX_OK
        || fctx->name.len == 0)
    {
        fctx->name = fctx->user;

    } else if (ngx_http_hpki_pstrdup(r, &fctx->name, (char *) fctx->name.data,
                                     fctx->name.len)
               != NGX_OK)
    {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_hpki_pstrdup(r, &fctx->user_handle, (char *) handle.data,
                              handle.len)
        != NGX_OK)
    {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_fido_new_challenge(r, fctx);

    if (rc != NGX_DONE) {
        ngx_http_hpki_fido_finish(r, rc);
    }
}


/* a challenge from the CSPRNG, and what it was issued for, in Redis */

static ngx_int_t
ngx_http_hpki_fido_new_challenge(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx)
{
    u_char                     raw[NGX_HTTP_HPKI_FIDO_CHALLENGE_LEN];
    json_t                    *rec;
    ngx_int_t                  rc;
    ngx_str_t                  record;
    const char                *purpose;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    fctx->challenge.data = ngx_pnalloc(r->pool,
                               NGX_HTTP_HPKI_FIDO_B64_MAX(sizeof(raw)));
    if (fctx->challenge.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "hpki: RAND_bytes() failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    fctx->challenge.len = ngx_http_hpki_base64url_encode(raw, sizeof(raw),
                              (char *) fctx->challenge.data,
                              NGX_HTTP_HPKI_FIDO_B64_MAX(sizeof(raw)));

    if (ngx_http_hpki_fido_hash_key(fctx->challenge.data, fctx->challenge.len,
                                    fctx->challenge_key)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    purpose = (fctx->op == NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS) ? "login"
                                                             : "register";

    /* "e": the enrolment it was issued under; "t": the card-login token */

    rec = json_pack("{s:s, s:s%, s:s%, s:s%}",
                    "p", purpose,
                    "u", fctx->user.data ? (char *) fctx->user.data : "",
                    fctx->user.len,
                    "e", fctx->code_id,
                    (size_t) (fctx->by_code ? NGX_HTTP_HPKI_FIDO_CODE_ID_LEN
                                            : 0),
                    "t", ctx->id.token_id.data
                         ? (char *) ctx->id.token_id.data : "",
                    fctx->by_code ? 0 : ctx->id.token_id.len);
    if (rec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_json_text(r->pool, rec, &record);

    json_decref(rec);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_challenge_stored,
                                     fctx, "SET hpki:chal:%b %b EX %d NX",
                                     fctx->challenge_key,
                                     (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN,
                                     record.data, record.len,
                                     (int) hlcf->fido.challenge_ttl);

    return ngx_http_hpki_fido_asked(rc);
}


static void
ngx_http_hpki_fido_challenge_stored(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    if (reply == NULL || reply->type != REDIS_REPLY_STATUS) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_options(r, fctx));
}


/* PublicKeyCredentialCreationOptionsJSON or ...RequestOptionsJSON */

static ngx_int_t
ngx_http_hpki_fido_options(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx)
{
    json_t                    *options, *exclude;
    ngx_int_t                  rc;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    exclude = fctx->exclude ? json_incref(fctx->exclude) : json_array();

    if (fctx->op == NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS) {
        options = json_pack("{s:s%, s:I, s:s%, s:o, s:s}",
                            "challenge", fctx->challenge.data,
                            fctx->challenge.len,
                            "timeout",
                            (json_int_t) hlcf->fido.challenge_ttl * 1000,
                            "rpId", hlcf->fido.rp_id.data,
                            hlcf->fido.rp_id.len,
                            "allowCredentials", exclude,
                            "userVerification",
                            ngx_http_hpki_fido_uv_names[hlcf->fido.uv]);

    } else {
        options = json_pack("{s:{s:s%, s:s%}, s:{s:s%, s:s%, s:s%}, s:s%, "
                            "s:[{s:s, s:i}, {s:s, s:i}], s:I, s:o, "
                            "s:{s:s, s:b, s:s}, s:s}",
                            "rp",
                            "id", hlcf->fido.rp_id.data, hlcf->fido.rp_id.len,
                            "name", hlcf->fido.rp_name.data,
                            hlcf->fido.rp_name.len,
                            "user",
                            "id", fctx->user_handle.data,
                            fctx->user_handle.len,
                            "name", fctx->user.data, fctx->user.len,
                            "displayName", fctx->name.data, fctx->name.len,
                            "challenge", fctx->challenge.data,
                            fctx->challenge.len,
                            "pubKeyCredParams",
                            "type", "public-key",
                            "alg", NGX_HTTP_HPKI_WEBAUTHN_ES256,
                            "type", "public-key",
                            "alg", NGX_HTTP_HPKI_WEBAUTHN_RS256,
                            "timeout",
                            (json_int_t) hlcf->fido.challenge_ttl * 1000,
                            "excludeCredentials", exclude,
                            "authenticatorSelection",
                            "residentKey", "required",
                            "requireResidentKey", 1,
                            "userVerification",
                            ngx_http_hpki_fido_uv_names[hlcf->fido.uv],
                            "attestation",
                            hlcf->fido.attestation ? "direct" : "none");
    }

    if (options == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, options);

    json_decref(options);

    return rc;
}


/*
 * RegistrationResponseJSON or AuthenticationResponseJSON: the fields
 * decoded, clientDataJSON checked (type, origin), and the Redis keys of
 * the challenge and the credential made.
 */

static ngx_int_t
ngx_http_hpki_fido_credential(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx, const char *type)
{
    u_char       *p;
    json_t       *cred, *response;
    ngx_int_t     rc;
    ngx_str_t     raw_id, kind, b64;
    const char   *err;

    cred = json_object_get(fctx->body, "credential");
    response = json_object_get(cred, "response");

    if (!json_is_object(cred) || !json_is_object(response)) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "credential must be a "
                                   "PublicKeyCredential's toJSON() object");
    }

    rc = ngx_http_hpki_fido_field(r, cred, "id",
                          NGX_HTTP_HPKI_FIDO_B64_MAX(
                              NGX_HTTP_HPKI_WEBAUTHN_CRED_ID_MAX),
                          0, &fctx->cred_id);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hpki_fido_field(r, cred, "rawId",
                          NGX_HTTP_HPKI_FIDO_B64_MAX(
                              NGX_HTTP_HPKI_WEBAUTHN_CRED_ID_MAX),
                          0, &raw_id);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_hpki_fido_field(r, cred, "type", 16, 0, &kind);
    if (rc != NGX_OK) {
        return rc;
    }

    if (kind.len != 10 || ngx_strncmp(kind.data, "public-key", 10) != 0) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "credential type must be \"public-key\"");
    }

    if (raw_id.len != fctx->cred_id.len
        || ngx_strncmp(raw_id.data, fctx->cred_id.data, raw_id.len) != 0)
    {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "credential id and rawId differ");
    }

    /* the binary fields, base64url */

    p = ngx_pnalloc(r->pool, NGX_HTTP_HPKI_WEBAUTHN_CRED_ID_MAX);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_base64url_decode((char *) raw_id.data, raw_id.len, p,
                                        NGX_HTTP_HPKI_WEBAUTHN_CRED_ID_MAX);
    if (rc <= 0) {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   "credential rawId is not base64url");
    }

    raw_id.data = p;
    raw_id.len = rc;

    if (ngx_http_hpki_fido_hash_key(raw_id.data, raw_id.len, fctx->cred_key)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    {
        struct {
            const char  *name;
            size_t       max;
            ngx_str_t   *out;
        } fields[] = {
            { "clientDataJSON", NGX_HTTP_HPKI_WEBAUTHN_CLIENT_DATA_MAX,
              &fctx->client_data },
            { "attestationObject", NGX_HTTP_HPKI_WEBAUTHN_OBJECT_MAX,
              &fctx->authdata },
            { "authenticatorData", NGX_HTTP_HPKI_WEBAUTHN_AUTHDATA_MAX,
              &fctx->authdata },
            { "signature", NGX_HTTP_HPKI_WEBAUTHN_SIG_MAX, &fctx->sig },
        };
        ngx_uint_t  i, register_op;

        /* registration: fields 0 and 1; login: 0, 2 and 3 */

        register_op = (fctx->op == NGX_HTTP_HPKI_FIDO_REGISTER);

        for (i = 0; i < (register_op ? 2 : 4); i++) {

            if (i == 1 && !register_op) {
                continue;
            }

            rc = ngx_http_hpki_fido_field(r, response, fields[i].name,
                                          NGX_HTTP_HPKI_FIDO_B64_MAX(
                                              fields[i].max),
                                          0, &b64);
            if (rc != NGX_OK) {
                return rc;
            }

            p = ngx_pnalloc(r->pool, fields[i].max);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            rc = ngx_http_hpki_base64url_decode((char *) b64.data, b64.len, p,
                                                fields[i].max);
            if (rc <= 0) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "hpki: fido: response.%s is not base64url",
                              fields[i].name);

                return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_request",
                                           "a credential response field is "
                                           "not base64url, or too long");
            }

            fields[i].out->data = p;
            fields[i].out->len = rc;
        }
    }

    /* login: the user handle, base64url as the options gave it */

    if (fctx->op == NGX_HTTP_HPKI_FIDO_LOGIN) {
        rc = ngx_http_hpki_fido_field(r, response, "userHandle", 64, 1,
                                      &fctx->user_handle);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ngx_http_hpki_webauthn_client_data(fctx->client_data.data,
                                           fctx->client_data.len, type,
                                           &fctx->cd, &err)
        != 0)
    {
        return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                   err);
    }

    if (!ngx_http_hpki_fido_origin_allowed(r, fctx->cd.origin)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: fido: origin \"%s\" refused", fctx->cd.origin);

        return ngx_http_hpki_error(r, NGX_HTTP_FORBIDDEN, "access_denied",
                                   "the ceremony's origin is not allowed "
                                   "here");
    }

    return ngx_http_hpki_fido_hash_key((u_char *) fctx->cd.challenge,
                                       ngx_strlen(fctx->cd.challenge),
                                       fctx->challenge_key) == NGX_OK
           ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* a string member: NGX_OK (empty if optional and absent or null) */

static ngx_int_t
ngx_http_hpki_fido_field(ngx_http_request_t *r, json_t *obj,
    const char *name, size_t max, ngx_uint_t optional, ngx_str_t *out)
{
    json_t  *v;
    u_char  *desc, *p;

    v = json_object_get(obj, name);

    if (optional && (v == NULL || json_is_null(v))) {
        ngx_str_null(out);
        return NGX_OK;
    }

    if (json_is_string(v) && json_string_length(v) > 0
        && json_string_length(v) <= max)
    {
        out->data = (u_char *) json_string_value(v);
        out->len = json_string_length(v);
        return NGX_OK;
    }

    desc = ngx_pnalloc(r->pool, 128);
    if (desc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_snprintf(desc, 127, "%s must be a non-empty string of at most "
                     "%uz characters", name, max);
    *p = '\0';

    return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               (char *) desc);
}


/* registration: the challenge taken, then the attestation verified */

static void
ngx_http_hpki_fido_register_challenge(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    char                          aaguid[33], alg[8], count[16], now[24];
    u_char                       *der, *p;
    u_char                        id_key[NGX_HTTP_HPKI_FIDO_HASH_LEN];
    json_t                       *rec;
    ngx_int_t                     rc;
    ngx_str_t                     text, key, expected, vouch, who, hash;
    const char                   *err;
    ngx_http_hpki_ctx_t          *ctx;
    ngx_http_hpki_loc_conf_t     *hlcf;
    ngx_http_hpki_fido_ctx_t     *fctx = data;
    ngx_http_hpki_webauthn_authdata_t  *ad;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    rc = ngx_http_hpki_redis_string(r, reply, &text);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    rec = (rc == NGX_OK) ? json_loadb((char *) text.data, text.len, 0, NULL)
                         : NULL;

    /* issued for a registration, under this code or this token */

    if (fctx->by_code) {
        expected.data = fctx->code_id;
        expected.len = NGX_HTTP_HPKI_FIDO_CODE_ID_LEN;

    } else {
        expected = ctx->id.token_id;
    }

    if (rec == NULL
        || !json_is_string(json_object_get(rec, "p"))
        || ngx_strcmp(json_string_value(json_object_get(rec, "p")),
                      "register") != 0
        || !json_is_string(json_object_get(rec, fctx->by_code ? "e" : "t"))
        || json_string_length(json_object_get(rec, fctx->by_code ? "e" : "t"))
           != expected.len
        || ngx_strncmp(json_string_value(
                           json_object_get(rec, fctx->by_code ? "e" : "t")),
                       expected.data, expected.len) != 0)
    {
        json_decref(rec);
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the challenge is unknown, expired, "
                                  "already used or was issued for another "
                                  "registration"));
        return;
    }

    if (fctx->by_code) {
        text.data = (u_char *) json_string_value(json_object_get(rec, "u"));
        text.len = json_string_length(json_object_get(rec, "u"));

        if (text.data == NULL || text.len == 0
            || ngx_http_hpki_pstrdup(r, &fctx->user, (char *) text.data,
                                     text.len)
               != NGX_OK)
        {
            json_decref(rec);
            ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    json_decref(rec);

    /* the attestation object, then the authenticator data it carries */

    if (ngx_http_hpki_webauthn_attestation(fctx->authdata.data,
                                           fctx->authdata.len, fctx->cd.hash,
                                           &fctx->att, &err)
        != 0
        || ngx_http_hpki_webauthn_check(&fctx->att.ad,
                                        (char *) hlcf->fido.rp_id.data,
                                        hlcf->fido.uv
                                        == NGX_HTTP_HPKI_FIDO_UV_REQUIRED,
                                        &err)
           != 0)
    {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied", err));
        return;
    }

    ad = &fctx->att.ad;

    if (ngx_http_hpki_fido_hash_key(ad->cred_id, ad->cred_id_len, id_key)
        != NGX_OK
        || ngx_memcmp(id_key, fctx->cred_key, NGX_HTTP_HPKI_FIDO_HASH_LEN)
           != 0)
    {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "the credential id differs from the "
                                  "authenticator data's"));
        return;
    }

    /* the public key, as SubjectPublicKeyInfo DER in base64 */

    rc = i2d_PUBKEY(ad->key, NULL);

    der = (rc > 0) ? ngx_pnalloc(r->pool, rc) : NULL;
    key.data = der ? ngx_pnalloc(r->pool, ngx_base64_encoded_length(rc))
                   : NULL;

    if (key.data == NULL) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = der;
    text.len = i2d_PUBKEY(ad->key, &p);
    text.data = der;

    ngx_encode_base64(&key, &text);

    ngx_hex_dump((u_char *) aaguid, ad->aaguid, 16)[0] = '\0';
    ngx_sprintf((u_char *) alg, "%d%Z", ad->alg);
    ngx_sprintf((u_char *) count, "%uD%Z", ad->sign_count);
    ngx_sprintf((u_char *) now, "%T%Z", ngx_time());

    /* who vouches: the enrolment (used up by the script) or the token */

    if (fctx->by_code) {
        ngx_str_set(&vouch, "hpki:enroll:");
        who.data = fctx->code_id;
        who.len = NGX_HTTP_HPKI_FIDO_CODE_ID_LEN;
        hash.data = fctx->code_hash;
        hash.len = sizeof(fctx->code_hash);

    } else {
        ngx_str_set(&vouch, "hpki:tok:");
        who = ctx->id.token_id;
        ngx_str_set(&hash, "");
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_registered, fctx,
                                     "EVAL %s 4 %b%b hpki:fido:%b "
                                     "hpki:fidouser:%b hpki:user:%b "
                                     "%b %b %b %s %b %s %s %s %s",
                                     ngx_http_hpki_fido_register_script,
                                     vouch.data, vouch.len, who.data, who.len,
                                     fctx->cred_key,
                                     (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN,
                                     fctx->user.data, fctx->user.len,
                                     fctx->user.data, fctx->user.len,
                                     hash.data, hash.len,
                                     fctx->user.data, fctx->user.len,
                                     fctx->cred_id.data, fctx->cred_id.len,
                                     alg, key.data, key.len, count,
                                     fctx->att.fmt, aaguid, now);

    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


static void
ngx_http_hpki_fido_registered(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    json_t                    *body;
    ngx_int_t                  rc;
    ngx_str_t                  verdict;
    const char                *desc;
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    if (ngx_http_hpki_fido_reply_string(reply, 0, &verdict) != NGX_OK) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    if (verdict.len == 2 && ngx_strncmp(verdict.data, "ok", 2) == 0) {

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "hpki: fido: user \"%V\" registered credential %*s "
                      "(%s, %s)", &fctx->user,
                      (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN, fctx->cred_key,
                      fctx->att.ad.alg == NGX_HTTP_HPKI_WEBAUTHN_ES256
                      ? "ES256" : "RS256", fctx->att.fmt);

        body = json_pack("{s:b, s:s%, s:s%}",
                         "registered", 1,
                         "credential_id", fctx->cred_id.data,
                         fctx->cred_id.len,
                         "user", fctx->user.data, fctx->user.len);
        if (body == NULL) {
            ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

        json_decref(body);

        ngx_http_hpki_fido_finish(r, rc);
        return;
    }

    if (verdict.len == 7 && ngx_strncmp(verdict.data, "revoked", 7) == 0) {
        desc = "the card-login token was revoked";

    } else if (verdict.len == 8
               && ngx_strncmp(verdict.data, "disabled", 8) == 0)
    {
        desc = "the user is unknown or disabled";

    } else if (verdict.len == 6
               && ngx_strncmp(verdict.data, "exists", 6) == 0)
    {
        desc = "this credential is already registered";

    } else if (verdict.len == 4 && ngx_strncmp(verdict.data, "full", 4) == 0)
    {
        desc = "the user has 16 devices registered: an operator removes "
               "one with \"hpki-admin fido delete\"";

    } else {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_code_verdict(r, reply,
                                                                     NULL));
        return;
    }

    ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                              NGX_HTTP_FORBIDDEN, "access_denied", desc));
}


/* login: the challenge taken, the credential read; then the assertion */

static void
ngx_http_hpki_fido_login_fetched(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    char                      *s;
    u_char                    *spki;
    json_t                    *rec, *v;
    ngx_int_t                  rc, alg;
    ngx_str_t                  f[10], expected;
    ngx_uint_t                 i;
    const char                *err;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_loc_conf_t  *hlcf;
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    /* record, user, alg, key, count, clone, status, role, name, handle */

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 10)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %s", reply->str);
        }

        ngx_http_hpki_fido_finish(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    for (i = 0; i < 10; i++) {
        if (ngx_http_hpki_fido_reply_string(reply, i, &f[i]) != NGX_OK) {
            ngx_str_null(&f[i]);
        }
    }

    rec = f[0].len ? json_loadb((char *) f[0].data, f[0].len, 0, NULL) : NULL;
    s = (char *) json_string_value(json_object_get(rec, "p"));

    if (s == NULL || ngx_strcmp(s, "login") != 0) {
        json_decref(rec);
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the challenge is unknown, expired or "
                                  "already used"));
        return;
    }

    /* options for one user: that user's credential only */

    v = json_object_get(rec, "u");
    expected.data = (u_char *) json_string_value(v);
    expected.len = json_string_length(v);

    rc = (f[1].len == 0) ? NGX_DECLINED
         : (expected.len
            && (expected.len != f[1].len
                || ngx_strncmp(expected.data, f[1].data, f[1].len) != 0))
           ? NGX_ABORT : NGX_OK;

    json_decref(rec);

    if (rc == NGX_DECLINED) {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "unknown credential: register this "
                                  "device first"));
        return;
    }

    if (rc == NGX_ABORT
        || (fctx->user_handle.len
            && (fctx->user_handle.len != f[9].len
                || ngx_strncmp(fctx->user_handle.data, f[9].data, f[9].len)
                   != 0)))
    {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the credential does not belong to this "
                                  "user"));
        return;
    }

    if (ngx_http_hpki_pstrdup(r, &fctx->user, (char *) f[1].data, f[1].len)
        != NGX_OK)
    {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (f[5].len) {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "this credential is suspended as a "
                                  "possible clone: ask an operator"));
        return;
    }

    if (f[6].len != 6 || ngx_strncmp(f[6].data, "active", 6) != 0) {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the user is unknown or disabled"));
        return;
    }

    if (f[7].len == 0) {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "no HPKI role is recorded for this user: "
                                  "an operator adds the user again with "
                                  "their HPKI card certificate"));
        return;
    }

    /* the stored key, and the assertion verified with libfido2 */

    if (f[2].len == 2 && ngx_strncmp(f[2].data, "-7", 2) == 0) {
        alg = NGX_HTTP_HPKI_WEBAUTHN_ES256;

    } else if (f[2].len == 4 && ngx_strncmp(f[2].data, "-257", 4) == 0) {
        alg = NGX_HTTP_HPKI_WEBAUTHN_RS256;

    } else {
        alg = 0;
    }

    fctx->stored_key.len = ngx_base64_decoded_length(f[3].len);
    spki = ngx_pnalloc(r->pool, fctx->stored_key.len + 1);

    if (spki == NULL) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    fctx->stored_key.data = spki;

    if (ngx_decode_base64(&fctx->stored_key, &f[3]) != NGX_OK) {
        fctx->stored_key.len = 0;
    }

    if (ngx_http_hpki_webauthn_assertion((char *) hlcf->fido.rp_id.data,
                                         fctx->authdata.data,
                                         fctx->authdata.len,
                                         fctx->client_data.data,
                                         fctx->client_data.len,
                                         fctx->sig.data, fctx->sig.len,
                                         (int) alg, fctx->stored_key.data,
                                         fctx->stored_key.len,
                                         hlcf->fido.uv
                                         == NGX_HTTP_HPKI_FIDO_UV_REQUIRED,
                                         &fctx->sign_count, &err)
        != 0)
    {
        /* the rpId and flags first, for a clear reason */

        ngx_http_hpki_webauthn_authdata_t  ad;

        if (ngx_http_hpki_webauthn_authdata(fctx->authdata.data,
                                            fctx->authdata.len, &ad, &err)
            == 0)
        {
            if (ngx_http_hpki_webauthn_check(&ad,
                                             (char *) hlcf->fido.rp_id.data,
                                             hlcf->fido.uv
                                             == NGX_HTTP_HPKI_FIDO_UV_REQUIRED,
                                             &err)
                == 0)
            {
                err = "the assertion signature does not verify";
            }

            ngx_http_hpki_webauthn_authdata_free(&ad);
        }

        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied", err));
        return;
    }

    /* the identity the token will carry */

    ctx->id.subject = fctx->user;
    ngx_str_set(&ctx->id.auth_method, "fido");
    ngx_str_set(&ctx->id.scope, "openid sign");

    if (ngx_http_hpki_pstrdup(r, &ctx->id.role, (char *) f[7].data, f[7].len)
        != NGX_OK
        || ngx_http_hpki_pstrdup(r, &ctx->id.name,
                                 (char *) (f[8].len ? f[8].data
                                                    : fctx->user.data),
                                 f[8].len ? f[8].len : fctx->user.len)
           != NGX_OK)
    {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!ngx_http_hpki_role_allowed(r, &ctx->id.role)) {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the holder's HPKI role is not allowed "
                                  "here"));
        return;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_counted, fctx,
                                     "EVAL %s 1 hpki:fido:%b %u %lld",
                                     ngx_http_hpki_fido_count_script,
                                     fctx->cred_key,
                                     (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN,
                                     (unsigned int) fctx->sign_count,
                                     (long long) ngx_time());
    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


static void
ngx_http_hpki_fido_counted(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_int_t                  rc;
    ngx_str_t                  verdict;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_fido_ctx_t  *fctx = data;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    rc = ngx_http_hpki_redis_string(r, reply, &verdict);

    if (rc != NGX_OK) {
        ngx_http_hpki_fido_finish(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        return;
    }

    if (verdict.len == 5 && ngx_strncmp(verdict.data, "clone", 5) == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: fido: signature counter of user \"%V\"'s "
                      "credential %*s went backwards (now %uD): possible "
                      "cloned authenticator, credential suspended",
                      &fctx->user, (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN,
                      fctx->cred_key, fctx->sign_count);

        ngx_http_hpki_fido_finish(r, ngx_http_hpki_error(r,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "the signature counter went backwards: "
                                  "this may be a cloned authenticator, and "
                                  "the credential is suspended"));
        return;
    }

    if (verdict.len != 2 || ngx_strncmp(verdict.data, "ok", 2) != 0) {
        ngx_http_hpki_fido_finish(r, ngx_http_hpki_fido_refuse(r, fctx,
                                  NGX_HTTP_FORBIDDEN, "access_denied",
                                  "unknown credential: register this "
                                  "device first"));
        return;
    }

    if (fctx->login.len) {
        rc = ngx_http_hpki_oidc_resume(r, ctx, &fctx->login);

        if (rc != NGX_OK) {
            ngx_http_hpki_fido_finish(r, rc == NGX_HTTP_SERVICE_UNAVAILABLE
                                         ? rc
                                         : NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    /* the same token as the card login, then the same answer */

    ngx_http_hpki_login_issue(r, ctx);
}


/* --- helpers ------------------------------------------------------------ */


/* registration: the challenge, taken from Redis (used once) */

static ngx_int_t
ngx_http_hpki_fido_take_challenge(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx)
{
    ngx_int_t  rc;

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_fido_register_challenge,
                                     fctx, "GETDEL hpki:chal:%b",
                                     fctx->challenge_key,
                                     (size_t) NGX_HTTP_HPKI_FIDO_HASH_LEN);

    return ngx_http_hpki_fido_asked(rc);
}


/* what ngx_http_hpki_redis_command() returned, as the handlers return it */

static ngx_int_t
ngx_http_hpki_fido_asked(ngx_int_t rc)
{
    if (rc == NGX_OK) {
        return NGX_DONE;
    }

    return (rc == NGX_DECLINED) ? NGX_HTTP_SERVICE_UNAVAILABLE
                                : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_hpki_fido_reply_string(redisReply *reply, size_t i, ngx_str_t *s)
{
    redisReply  *e;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || i >= reply->elements)
    {
        return NGX_ERROR;
    }

    e = reply->element[i];

    if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) {
        return NGX_DECLINED;
    }

    s->data = (u_char *) e->str;
    s->len = e->len;

    return NGX_OK;
}


/* base64url SHA-256: the Redis key part of a challenge or credential */

static ngx_int_t
ngx_http_hpki_fido_hash_key(const u_char *data, size_t len, u_char *key)
{
    u_char  hash[SHA256_DIGEST_LENGTH];
    char    b64[NGX_HTTP_HPKI_FIDO_HASH_LEN + 1];

    SHA256(data, len, hash);

    if (ngx_http_hpki_base64url_encode(hash, sizeof(hash), b64, sizeof(b64))
        != NGX_HTTP_HPKI_FIDO_HASH_LEN)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(key, b64, NGX_HTTP_HPKI_FIDO_HASH_LEN);

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_fido_origin_allowed(ngx_http_request_t *r, const char *origin)
{
    size_t                     len;
    ngx_str_t                 *o;
    ngx_uint_t                 i;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    len = ngx_strlen(origin);
    o = hlcf->fido.origins->elts;

    for (i = 0; i < hlcf->fido.origins->nelts; i++) {
        if (o[i].len == len && ngx_strncmp(o[i].data, origin, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_hpki_fido_valid_user(ngx_str_t *user)
{
    u_char      c;
    ngx_uint_t  i;

    if (user->len == 0 || user->len > NGX_HTTP_HPKI_ID_MAX) {
        return 0;
    }

    for (i = 0; i < user->len; i++) {
        c = user->data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@'
              || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* a refused ceremony, logged without any of its bytes */

static ngx_int_t
ngx_http_hpki_fido_refuse(ngx_http_request_t *r,
    ngx_http_hpki_fido_ctx_t *fctx, ngx_uint_t status, const char *error,
    const char *desc)
{
    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "hpki: fido %s refused%s%V: %s",
                  (fctx->op == NGX_HTTP_HPKI_FIDO_REGISTER) ? "registration"
                                                             : "login",
                  fctx->user.len ? " for user " : "", &fctx->user, desc);

    return ngx_http_hpki_error(r, status, error, desc);
}


static void
ngx_http_hpki_fido_finish(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    ngx_http_finalize_request(r, rc);
}
