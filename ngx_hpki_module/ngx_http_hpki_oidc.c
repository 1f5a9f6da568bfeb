/*
 * An OpenID Connect provider around the gateway's certificate logins.
 *
 * /hpki/authorize authenticates the person exactly as the card (or JPKI)
 * login does, on the TLS server that asks for that card, and stores a
 * single-use authorization code in Redis (hpki:code:<sha256>, 60 s).
 * /hpki/token authenticates the client (client_secret_basic,
 * client_secret_post, private_key_jwt, or none with PKCE), redeems the code
 * or rotates a refresh token in one Redis script each, and answers the
 * gateway's usual access token, a refresh token and an ID token.  The
 * tokens of one login share a session id (sid); hpki:sid:<sid> is the set
 * of their Redis keys, which a replayed code or /hpki/logout deletes.
 *
 * Clients come from a JSON file read at configuration time, so "nginx -s
 * reload" reloads them.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_oidc.h"
#include "ngx_http_hpki_login.h"
#include "ngx_http_hpki_token.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_lockout.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


#define NGX_HTTP_HPKI_OIDC_AUTH_BASIC    1
#define NGX_HTTP_HPKI_OIDC_AUTH_POST     2
#define NGX_HTTP_HPKI_OIDC_AUTH_JWT      3
#define NGX_HTTP_HPKI_OIDC_AUTH_NONE     4

#define NGX_HTTP_HPKI_OIDC_LOGIN_CARD    0x01
#define NGX_HTTP_HPKI_OIDC_LOGIN_JPKI    0x02
#define NGX_HTTP_HPKI_OIDC_LOGIN_FIDO    0x04

#define NGX_HTTP_HPKI_OIDC_GRANT_CODE    1
#define NGX_HTTP_HPKI_OIDC_GRANT_REFRESH 2

#define NGX_HTTP_HPKI_OIDC_CODE_TTL      60
#define NGX_HTTP_HPKI_OIDC_PENDING_TTL   300      /* at the FIDO page */
#define NGX_HTTP_HPKI_OIDC_USED_TTL      600      /* replays detected */
#define NGX_HTTP_HPKI_OIDC_ID_TTL        3600
#define NGX_HTTP_HPKI_OIDC_ASSERTION_TTL 3600     /* private_key_jwt */
#define NGX_HTTP_HPKI_OIDC_ARG_MAX       2048
#define NGX_HTTP_HPKI_OIDC_PARAMS        16
#define NGX_HTTP_HPKI_OIDC_RECORD_MAX    8192
#define NGX_HTTP_HPKI_OIDC_FILE_MAX      (1024 * 1024)
#define NGX_HTTP_HPKI_OIDC_CLIENTS_MAX   1024
#define NGX_HTTP_HPKI_OIDC_URIS_MAX      16
#define NGX_HTTP_HPKI_OIDC_HASH_LEN      43       /* base64url SHA-256 */


typedef struct {
    ngx_str_t                    id;
    u_char                       secret[SHA256_DIGEST_LENGTH];
    ngx_uint_t                   auth;
    ngx_uint_t                   logins;
    ngx_uint_t                   first_login;    /* the client's default */
    ngx_array_t                  redirect_uris;   /* of ngx_str_t */
    ngx_array_t                  logout_uris;
    ngx_array_t                  scopes;
    ngx_http_hpki_jws_key_t      keys[NGX_HTTP_HPKI_MAX_KEYS];
    ngx_uint_t                   nkeys;
} ngx_http_hpki_oidc_client_t;


typedef struct {
    ngx_array_t                  clients;  /* of ngx_http_hpki_oidc_client_t */
} ngx_http_hpki_oidc_conf_t;


typedef struct {
    ngx_uint_t                   login;       /* NGX_HTTP_HPKI_LOGIN_* */
    ngx_uint_t                   bit;         /* NGX_HTTP_HPKI_OIDC_LOGIN_* */
    const char                  *name;        /* clients file, amr */
    const char                  *acr;
} ngx_http_hpki_oidc_method_t;


typedef struct {
    ngx_http_hpki_oidc_client_t *client;
    ngx_uint_t                   grant;
    ngx_uint_t                   basic;       /* unsigned:1 */

    ngx_str_t                    redirect_uri;
    ngx_str_t                    state;
    ngx_str_t                    nonce;
    ngx_str_t                    challenge;
    ngx_str_t                    scope;
    time_t                       auth_time;

    ngx_str_t                    name[NGX_HTTP_HPKI_OIDC_PARAMS];
    ngx_str_t                    value[NGX_HTTP_HPKI_OIDC_PARAMS];
    ngx_uint_t                   nparams;

    ngx_str_t                    code;
    ngx_str_t                    code_key;
    ngx_str_t                    refresh;
    ngx_str_t                    refresh_key;
    ngx_str_t                    id_token;
} ngx_http_hpki_oidc_ctx_t;


static ngx_int_t ngx_http_hpki_oidc_load_client(ngx_conf_t *cf,
    json_t *in, ngx_http_hpki_oidc_client_t *cl);
static ngx_int_t ngx_http_hpki_oidc_strings(ngx_conf_t *cf, json_t *in,
    ngx_array_t *a, ngx_uint_t uris);
static ngx_int_t ngx_http_hpki_oidc_jwk(json_t *jwk,
    ngx_http_hpki_jws_key_t *k);
static void ngx_http_hpki_oidc_free_keys(void *data);
static ngx_int_t ngx_http_hpki_oidc_client_dup(ngx_http_hpki_oidc_conf_t *oc,
    ngx_http_hpki_oidc_client_t *cl);
static ngx_http_hpki_oidc_client_t *ngx_http_hpki_oidc_client(
    ngx_http_request_t *r, ngx_str_t *id);
static ngx_int_t ngx_http_hpki_oidc_listed(ngx_array_t *a, ngx_str_t *s);
static ngx_int_t ngx_http_hpki_oidc_has_word(ngx_str_t *list,
    const char *word);
static ngx_int_t ngx_http_hpki_oidc_unescape(ngx_http_request_t *r,
    u_char *p, size_t len, ngx_str_t *value);
static ngx_int_t ngx_http_hpki_oidc_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_hpki_oidc_form(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx);
static ngx_str_t *ngx_http_hpki_oidc_param(ngx_http_hpki_oidc_ctx_t *octx,
    const char *name);
static ngx_int_t ngx_http_hpki_oidc_hash(ngx_http_request_t *r,
    const char *prefix, ngx_str_t *in, ngx_str_t *out);
static ngx_int_t ngx_http_hpki_oidc_random(ngx_http_request_t *r,
    ngx_str_t *out);
static ngx_int_t ngx_http_hpki_oidc_redirect(ngx_http_request_t *r,
    ngx_str_t *base, ngx_str_t *params, ngx_uint_t n);
static ngx_int_t ngx_http_hpki_oidc_redirect_error(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, const char *error, const char *desc);
static void ngx_http_hpki_oidc_authenticated(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_int_t rc, const char *error,
    const char *desc);
static void ngx_http_hpki_oidc_code_stored(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_oidc_token_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_hpki_oidc_client_auth(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, ngx_str_t *jti_key, time_t *jti_ttl,
    const char **desc);
static ngx_int_t ngx_http_hpki_oidc_assertion(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, ngx_str_t *assertion,
    ngx_str_t *jti_key, time_t *jti_ttl, const char **desc);
static void ngx_http_hpki_oidc_jti_stored(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_oidc_grant(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx);
static void ngx_http_hpki_oidc_redeemed(ngx_http_request_t *r, void *data,
    redisReply *reply);
static void ngx_http_hpki_oidc_rotated(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_oidc_record(ngx_http_request_t *r,
    redisReply *reply, json_t **record);
static ngx_int_t ngx_http_hpki_oidc_record_id(ngx_http_request_t *r,
    json_t *rec, ngx_http_hpki_identity_t *id,
    ngx_http_hpki_oidc_ctx_t *octx);
static void ngx_http_hpki_oidc_issue(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx);
static ngx_int_t ngx_http_hpki_oidc_id_token(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_http_hpki_oidc_ctx_t *octx);
static void ngx_http_hpki_oidc_stored(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_oidc_token_reply(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_http_hpki_oidc_ctx_t *octx);
static void ngx_http_hpki_oidc_finalize(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, const char *desc);
static void ngx_http_hpki_oidc_userinfo_name(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_oidc_logged_out(ngx_http_request_t *r,
    void *data, redisReply *reply);
static const char *ngx_http_hpki_oidc_acr(ngx_str_t *amr);
static ngx_http_hpki_oidc_method_t *ngx_http_hpki_oidc_method_by_name(
    const char *name);
static ngx_http_hpki_oidc_method_t *ngx_http_hpki_oidc_method_by_login(
    ngx_uint_t login);
static ngx_http_hpki_oidc_method_t *ngx_http_hpki_oidc_select(
    ngx_http_hpki_oidc_client_t *cl, ngx_str_t *acr_values,
    ngx_uint_t native);
static ngx_int_t ngx_http_hpki_oidc_elsewhere(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, ngx_http_hpki_oidc_method_t *m,
    ngx_str_t *url);
static void ngx_http_hpki_oidc_pending_stored(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_hpki_oidc_resumed(ngx_http_request_t *r, void *data,
    redisReply *reply);
static ngx_int_t ngx_http_hpki_oidc_b64url_char(u_char ch);
static void ngx_http_hpki_oidc_json_cleanup(void *data);


/* the login methods: how clients, acr_values and the amr claim name them */

static ngx_http_hpki_oidc_method_t  ngx_http_hpki_oidc_methods[] = {
    { NGX_HTTP_HPKI_LOGIN_CARD, NGX_HTTP_HPKI_OIDC_LOGIN_CARD, "hpki_card",
      "urn:hpki:card" },
    { NGX_HTTP_HPKI_LOGIN_JPKI, NGX_HTTP_HPKI_OIDC_LOGIN_JPKI, "jpki",
      "urn:hpki:jpki" },
    { NGX_HTTP_HPKI_LOGIN_FIDO, NGX_HTTP_HPKI_OIDC_LOGIN_FIDO, "fido",
      "urn:hpki:fido" },
    { 0, 0, NULL, NULL }
};


/*
 * KEYS: hpki:code:<h>, hpki:fail:<sub>; ARGV: record, ttl, lockout limit.
 * A locked-out subject gets no code.
 */

static const char  ngx_http_hpki_oidc_code_script[] =
    "if ARGV[3] ~= '0' and "
    "   tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) "
    "then return 'locked' end "
    "redis.call('HSET', KEYS[1], 'data', ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[2]) "
    "return 'ok'";


/*
 * KEYS: hpki:code:<h>; ARGV: the new session id, how long a used code is
 * remembered.  The first redemption marks the code used by that session;
 * any later one (RFC 6749, 4.1.2) marks it replayed and deletes every
 * token of that session.
 */

static const char  ngx_http_hpki_oidc_redeem_script[] =
    "local d = redis.call('HGET', KEYS[1], 'data') "
    "if not d then return {'invalid'} end "
    "local used = redis.call('HGET', KEYS[1], 'used') "
    "if used then "
    "  redis.call('HSET', KEYS[1], 'replayed', '1') "
    "  local s = 'hpki:sid:' .. used "
    "  local m = redis.call('SMEMBERS', s) "
    "  for i = 1, #m do redis.call('DEL', m[i]) end "
    "  redis.call('DEL', s) "
    "  return {'replayed'} "
    "end "
    "redis.call('HSET', KEYS[1], 'used', ARGV[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[2]) "
    "return {'ok', d}";


/*
 * KEYS: the presented refresh token's key, the new one's; ARGV: client id.
 * Single-flight: the old token is deleted and its successor stored in one
 * step, so of parallel refreshes with one token exactly one succeeds.  The
 * successor keeps the old one's expiry (the day's authentication).
 */

static const char  ngx_http_hpki_oidc_rotate_script[] =
    "local d = redis.call('GET', KEYS[1]) "
    "if not d then return {'invalid'} end "
    "local c = cjson.decode(d) "
    "if c.c ~= ARGV[1] then return {'invalid'} end "
    "local ttl = redis.call('TTL', KEYS[1]) "
    "if ttl < 1 then ttl = 1 end "
    "redis.call('DEL', KEYS[1]) "
    "redis.call('SET', KEYS[2], d, 'EX', ttl) "
    "local s = 'hpki:sid:' .. c.sid "
    "redis.call('SREM', s, KEYS[1]) "
    "redis.call('SADD', s, KEYS[2]) "
    "return {'ok', d}";


/*
 * KEYS: hpki:tok:<jti>, hpki:sid:<sid>, hpki:rt:<h>, hpki:code:<h> (or
 * "hpki:code:-"); ARGV: sub, ttl, refresh record ("" for none), its ttl,
 * "1" if the session must still exist (a refresh after logout fails).
 */

static const char  ngx_http_hpki_oidc_store_script[] =
    "if redis.call('HGET', KEYS[4], 'replayed') then return 'replayed' end "
    "if ARGV[5] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then "
    "  return 'gone' end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "redis.call('SADD', KEYS[2], KEYS[1]) "
    "if ARGV[3] ~= '' then "
    "  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4]) "
    "  redis.call('SADD', KEYS[2], KEYS[3]) "
    "end "
    "redis.call('EXPIRE', KEYS[2], ARGV[2]) "
    "return 'ok'";


/* KEYS: hpki:sid:<sid>; every token of the session goes */

static const char  ngx_http_hpki_oidc_logout_script[] =
    "local m = redis.call('SMEMBERS', KEYS[1]) "
    "for i = 1, #m do redis.call('DEL', m[i]) end "
    "redis.call('DEL', KEYS[1]) "
    "return #m";


/* --- configuration ------------------------------------------------------- */


char *
ngx_http_hpki_oidc_clients(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_main_conf_t  *hmcf = conf;

    size_t                        i;
    json_t                       *root, *list;
    ngx_str_t                    *value, path;
    ngx_file_info_t               fi;
    json_error_t                  err;
    ngx_pool_cleanup_t           *cln;
    ngx_http_hpki_oidc_conf_t    *oc;
    ngx_http_hpki_oidc_client_t  *cl;

    if (hmcf->oidc) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(path.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_file_info_n " \"%V\" failed", &path);
        return NGX_CONF_ERROR;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_HPKI_OIDC_FILE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is larger than 1 MiB", &path);
        return NGX_CONF_ERROR;
    }

    oc = ngx_pcalloc(cf->pool, sizeof(ngx_http_hpki_oidc_conf_t));
    if (oc == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&oc->clients, cf->pool, 4,
                       sizeof(ngx_http_hpki_oidc_client_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_hpki_oidc_free_keys;
    cln->data = oc;

    root = json_load_file((char *) path.data, JSON_REJECT_DUPLICATES, &err);
    if (root == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\", line %d: %s", &path, err.line, err.text);
        return NGX_CONF_ERROR;
    }

    list = json_is_object(root) ? json_object_get(root, "clients") : root;

    if (!json_is_array(list)
        || json_array_size(list) > NGX_HTTP_HPKI_OIDC_CLIENTS_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be {\"clients\": [...]} with at "
                           "most %d clients", &path,
                           NGX_HTTP_HPKI_OIDC_CLIENTS_MAX);
        json_decref(root);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < json_array_size(list); i++) {
        cl = ngx_array_push(&oc->clients);
        if (cl == NULL) {
            json_decref(root);
            return NGX_CONF_ERROR;
        }

        ngx_memzero(cl, sizeof(ngx_http_hpki_oidc_client_t));

        if (ngx_http_hpki_oidc_load_client(cf, json_array_get(list, i), cl)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "in \"%V\", client #%uz", &path, i + 1);
            json_decref(root);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_hpki_oidc_client_dup(oc, cl)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "in \"%V\": client_id \"%V\" is duplicate",
                               &path, &cl->id);
            json_decref(root);
            return NGX_CONF_ERROR;
        }
    }

    json_decref(root);

    hmcf->oidc = oc;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_hpki_oidc_load_client(ngx_conf_t *cf, json_t *in,
    ngx_http_hpki_oidc_client_t *cl)
{
    size_t                        i;
    json_t                       *v, *keys;
    ngx_int_t                     rc;
    const char                   *method, *login;
    ngx_http_hpki_oidc_method_t  *m;

    if (!json_is_object(in)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "a client is an object");
        return NGX_ERROR;
    }

    v = json_object_get(in, "client_id");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > NGX_HTTP_HPKI_ID_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"client_id\" must be 1 to %d characters",
                           NGX_HTTP_HPKI_ID_MAX);
        return NGX_ERROR;
    }

    /* NUL-terminated: ngx_http_hpki_jwt_check() takes it as iss */

    cl->id.len = json_string_length(v);
    cl->id.data = ngx_pnalloc(cf->pool, cl->id.len + 1);
    if (cl->id.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(cl->id.data, json_string_value(v), cl->id.len + 1);

    v = json_object_get(in, "token_endpoint_auth_method");
    method = json_is_string(v) ? json_string_value(v)
                               : "client_secret_basic";

    if (ngx_strcmp(method, "client_secret_basic") == 0) {
        cl->auth = NGX_HTTP_HPKI_OIDC_AUTH_BASIC;

    } else if (ngx_strcmp(method, "client_secret_post") == 0) {
        cl->auth = NGX_HTTP_HPKI_OIDC_AUTH_POST;

    } else if (ngx_strcmp(method, "private_key_jwt") == 0) {
        cl->auth = NGX_HTTP_HPKI_OIDC_AUTH_JWT;

    } else if (ngx_strcmp(method, "none") == 0) {
        cl->auth = NGX_HTTP_HPKI_OIDC_AUTH_NONE;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown token_endpoint_auth_method \"%s\"",
                           method);
        return NGX_ERROR;
    }

    v = json_object_get(in, "client_secret");

    if (cl->auth == NGX_HTTP_HPKI_OIDC_AUTH_BASIC
        || cl->auth == NGX_HTTP_HPKI_OIDC_AUTH_POST)
    {
        if (!json_is_string(v) || json_string_length(v) < 16
            || json_string_length(v) > 512)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"client_secret\" of 16 to 512 characters "
                               "is required");
            return NGX_ERROR;
        }

        /* only its hash is kept; compared in constant time */
        SHA256((u_char *) json_string_value(v), json_string_length(v),
               cl->secret);

    } else if (v) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"client_secret\" given to a client that does "
                           "not use one");
        return NGX_ERROR;
    }

    if (cl->auth == NGX_HTTP_HPKI_OIDC_AUTH_JWT) {
        v = json_object_get(in, "jwks");
        keys = json_is_object(v) ? json_object_get(v, "keys") : NULL;

        if (!json_is_array(keys) || json_array_size(keys) == 0
            || json_array_size(keys) > NGX_HTTP_HPKI_MAX_KEYS)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "private_key_jwt needs \"jwks\": {\"keys\": "
                               "[...]} with 1 to %d keys",
                               NGX_HTTP_HPKI_MAX_KEYS);
            return NGX_ERROR;
        }

        for (i = 0; i < json_array_size(keys); i++) {
            if (ngx_http_hpki_oidc_jwk(json_array_get(keys, i),
                                       &cl->keys[i])
                != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"jwks\" key #%uz is not an RSA "
                                   "(>= 2048 bits) public JWK with n, e",
                                   i + 1);
                return NGX_ERROR;
            }

            cl->nkeys++;
        }
    }

    if (ngx_array_init(&cl->redirect_uris, cf->pool, 2, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&cl->logout_uris, cf->pool, 1, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&cl->scopes, cf->pool, 2, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_hpki_oidc_strings(cf, json_object_get(in, "redirect_uris"),
                                   &cl->redirect_uris, 1)
        != NGX_OK
        || cl->redirect_uris.nelts == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"redirect_uris\" must list 1 to %d absolute "
                           "https (or loopback http) URIs without fragment",
                           NGX_HTTP_HPKI_OIDC_URIS_MAX);
        return NGX_ERROR;
    }

    v = json_object_get(in, "post_logout_redirect_uris");

    if (v && ngx_http_hpki_oidc_strings(cf, v, &cl->logout_uris, 1)
             != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"post_logout_redirect_uris\" as "
                           "\"redirect_uris\"");
        return NGX_ERROR;
    }

    v = json_object_get(in, "scopes");

    if (v == NULL) {
        v = json_pack("[s,s]", "openid", "sign");
        if (v == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_hpki_oidc_strings(cf, v, &cl->scopes, 0);
        json_decref(v);

    } else {
        rc = ngx_http_hpki_oidc_strings(cf, v, &cl->scopes, 0);
    }

    if (rc != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"scopes\" must be a list of scope names");
        return NGX_ERROR;
    }

    /* "login": one method or a list of them */

    v = json_object_get(in, "login");

    if (json_is_string(v)) {
        v = json_pack("[O]", v);

    } else if (json_is_array(v)) {
        json_incref(v);

    } else {
        v = NULL;
    }

    if (v == NULL || json_array_size(v) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"login\" must be \"hpki_card\", \"jpki\", "
                           "\"fido\" or a list of them");
        json_decref(v);
        return NGX_ERROR;
    }

    for (i = 0; i < json_array_size(v); i++) {
        login = json_string_value(json_array_get(v, i));

        m = login ? ngx_http_hpki_oidc_method_by_name(login) : NULL;

        if (m) {
            cl->logins |= m->bit;

            if (cl->first_login == 0) {
                cl->first_login = m->login;
            }

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown \"login\" method");
            json_decref(v);
            return NGX_ERROR;
        }
    }

    json_decref(v);

    return NGX_OK;
}


/* a JSON list of strings; uris: absolute, https or loopback, no fragment */

static ngx_int_t
ngx_http_hpki_oidc_strings(ngx_conf_t *cf, json_t *in, ngx_array_t *a,
    ngx_uint_t uris)
{
    size_t       i, len;
    json_t      *v;
    ngx_str_t   *s;
    const char  *p;

    if (!json_is_array(in) || json_array_size(in) > NGX_HTTP_HPKI_OIDC_URIS_MAX)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < json_array_size(in); i++) {
        v = json_array_get(in, i);

        if (!json_is_string(v)) {
            return NGX_ERROR;
        }

        p = json_string_value(v);
        len = json_string_length(v);

        if (len == 0 || len > NGX_HTTP_HPKI_OIDC_ARG_MAX / 2
            || ngx_strlchr((u_char *) p, (u_char *) p + len, ' '))
        {
            return NGX_ERROR;
        }

        if (uris
            && (ngx_strlchr((u_char *) p, (u_char *) p + len, '#')
                || (ngx_strncmp(p, "https://", 8) != 0
                    && ngx_strncmp(p, "http://127.0.0.1", 16) != 0
                    && ngx_strncmp(p, "http://localhost", 16) != 0
                    && ngx_strncmp(p, "http://[::1]", 12) != 0)))
        {
            return NGX_ERROR;
        }

        s = ngx_array_push(a);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->len = len;
        s->data = ngx_pnalloc(cf->pool, len + 1);
        if (s->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(s->data, p, len + 1);
    }

    return NGX_OK;
}


/* an RSA public JWK (kty, n, e, optional kid) as a verification key */

static ngx_int_t
ngx_http_hpki_oidc_jwk(json_t *jwk, ngx_http_hpki_jws_key_t *k)
{
    int              nlen, elen, ok;
    BIGNUM          *n, *e;
    json_t          *v;
    const char      *kty, *kid, *sn, *se;
    EVP_PKEY_CTX    *pctx;
    OSSL_PARAM      *params;
    unsigned char    buf[1024];
    OSSL_PARAM_BLD  *bld;

    ngx_memzero(k, sizeof(ngx_http_hpki_jws_key_t));

    kty = json_string_value(json_object_get(jwk, "kty"));
    sn = json_string_value(json_object_get(jwk, "n"));
    se = json_string_value(json_object_get(jwk, "e"));
    v = json_object_get(jwk, "kid");
    kid = json_is_string(v) ? json_string_value(v) : "";

    if (kty == NULL || ngx_strcmp(kty, "RSA") != 0 || sn == NULL
        || se == NULL || ngx_strlen(kid) >= sizeof(k->kid))
    {
        return NGX_ERROR;
    }

    n = NULL;
    e = NULL;
    bld = NULL;
    params = NULL;
    pctx = NULL;
    ok = 0;

    nlen = ngx_http_hpki_base64url_decode(sn, ngx_strlen(sn), buf,
                                          sizeof(buf));
    if (nlen < 256) {
        goto done;
    }

    n = BN_bin2bn(buf, nlen, NULL);

    elen = ngx_http_hpki_base64url_decode(se, ngx_strlen(se), buf, 8);
    if (elen <= 0) {
        goto done;
    }

    e = BN_bin2bn(buf, elen, NULL);

    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    {
        goto done;
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);

    if (params == NULL || pctx == NULL
        || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &k->pkey, EVP_PKEY_PUBLIC_KEY, params)
           <= 0
        || EVP_PKEY_get_bits(k->pkey) < NGX_HTTP_HPKI_JWS_MIN_RSA)
    {
        goto done;
    }

    k->alg = NGX_HTTP_HPKI_JWS_RS256;
    ngx_cpystrn((u_char *) k->kid, (u_char *) kid, sizeof(k->kid));
    ok = 1;

done:

    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);

    if (!ok && k->pkey) {
        EVP_PKEY_free(k->pkey);
        k->pkey = NULL;
    }

    return ok ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_hpki_oidc_free_keys(void *data)
{
    ngx_http_hpki_oidc_conf_t  *oc = data;

    ngx_uint_t                    i, j;
    ngx_http_hpki_oidc_client_t  *cl;

    cl = oc->clients.elts;

    for (i = 0; i < oc->clients.nelts; i++) {
        for (j = 0; j < NGX_HTTP_HPKI_MAX_KEYS; j++) {
            if (cl[i].keys[j].pkey) {
                EVP_PKEY_free(cl[i].keys[j].pkey);
                cl[i].keys[j].pkey = NULL;
            }
        }
    }
}


static ngx_int_t
ngx_http_hpki_oidc_client_dup(ngx_http_hpki_oidc_conf_t *oc,
    ngx_http_hpki_oidc_client_t *cl)
{
    ngx_uint_t                    i;
    ngx_http_hpki_oidc_client_t  *c;

    c = oc->clients.elts;

    for (i = 0; i < oc->clients.nelts; i++) {
        if (&c[i] != cl && c[i].id.len == cl->id.len
            && ngx_strncmp(c[i].id.data, cl->id.data, cl->id.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* "hpki_oidc_authorize [hpki_card | jpki];" */

char *
ngx_http_hpki_oidc_authorize(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (hlcf->oidc_login) {
        return "is duplicate";
    }

    value = cf->args->elts;
    hlcf->oidc_login = NGX_HTTP_HPKI_LOGIN_CARD;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "jpki") == 0) {
            hlcf->oidc_login = NGX_HTTP_HPKI_LOGIN_JPKI;

        } else if (ngx_strcmp(value[1].data, "hpki_card") != 0) {
            return "takes \"hpki_card\" (the default) or \"jpki\"";
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_hpki_oidc_authorize_handler;

    return NGX_CONF_OK;
}


/* the provider's part of the discovery document */

ngx_int_t
ngx_http_hpki_oidc_discovery(ngx_http_hpki_main_conf_t *hmcf, json_t *doc)
{
    json_t     *v;
    ngx_str_t  *iss;

    if (hmcf->oidc == NULL) {
        return NGX_OK;
    }

    iss = &hmcf->issuer;

    v = json_pack("{s:s%+, s:s%+, s:s%+, s:s%+, s:[s], s:[s], "
                  "s:[s,s], s:[s], s:[s,s,s,s], s:[s], s:[s,s,s], "
                  "s:[s,s,s,s,s,s,s,s,s,s,s,s,s], s:b, s:[s,s]}",
                  "authorization_endpoint", iss->data, iss->len,
                      "/hpki/authorize",
                  "token_endpoint", iss->data, iss->len, "/hpki/token",
                  "userinfo_endpoint", iss->data, iss->len,
                      "/hpki/userinfo",
                  "end_session_endpoint", iss->data, iss->len,
                      "/hpki/logout",
                  "response_types_supported", "code",
                  "response_modes_supported", "query",
                  "grant_types_supported", "authorization_code",
                      "refresh_token",
                  "code_challenge_methods_supported", "S256",
                  "token_endpoint_auth_methods_supported",
                      "client_secret_basic", "client_secret_post",
                      "private_key_jwt", "none",
                  "token_endpoint_auth_signing_alg_values_supported",
                      "RS256",
                  "acr_values_supported", "urn:hpki:card", "urn:hpki:jpki",
                      "urn:hpki:fido",
                  "claims_supported", "iss", "sub", "aud", "exp", "iat",
                      "auth_time", "nonce", "amr", "acr", "sid",
                      "hpki_role", "name", "azp",
                  "claims_parameter_supported", 0,
                  "prompt_values_supported", "login", "none");
    if (v == NULL) {
        return NGX_ERROR;
    }

    json_object_set_new(v, "subject_types_supported",
                        json_pack("[s]", "public"));

    if (json_object_update(doc, v) != 0) {
        json_decref(v);
        return NGX_ERROR;
    }

    json_decref(v);

    return NGX_OK;
}


/* --- helpers ------------------------------------------------------------- */


static ngx_http_hpki_oidc_client_t *
ngx_http_hpki_oidc_client(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_uint_t                    i;
    ngx_http_hpki_oidc_conf_t    *oc;
    ngx_http_hpki_main_conf_t    *hmcf;
    ngx_http_hpki_oidc_client_t  *cl;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    oc = hmcf->oidc;

    if (oc == NULL || id->len == 0) {
        return NULL;
    }

    cl = oc->clients.elts;

    for (i = 0; i < oc->clients.nelts; i++) {
        if (cl[i].id.len == id->len
            && ngx_strncmp(cl[i].id.data, id->data, id->len) == 0)
        {
            return &cl[i];
        }
    }

    return NULL;
}


/* exact match, as OpenID Connect requires of redirect URIs */

static ngx_int_t
ngx_http_hpki_oidc_listed(ngx_array_t *a, ngx_str_t *s)
{
    ngx_uint_t   i;
    ngx_str_t   *e;

    e = a->elts;

    for (i = 0; i < a->nelts; i++) {
        if (e[i].len == s->len && ngx_strncmp(e[i].data, s->data, s->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* a space-separated list holds word */

static ngx_int_t
ngx_http_hpki_oidc_has_word(ngx_str_t *list, const char *word)
{
    ngx_http_hpki_identity_t  id;

    id.scope = *list;

    return ngx_http_hpki_token_has_scope(&id, word);
}


/* form and query values: '+' is a space, then %XX; bounded */

static ngx_int_t
ngx_http_hpki_oidc_unescape(ngx_http_request_t *r, u_char *p, size_t len,
    ngx_str_t *value)
{
    u_char  *dst, *src;
    size_t   i;

    if (len > NGX_HTTP_HPKI_OIDC_ARG_MAX) {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        value->data[i] = (p[i] == '+') ? ' ' : p[i];
    }

    dst = value->data;
    src = value->data;
    ngx_unescape_uri(&dst, &src, len, 0);

    value->len = dst - value->data;
    value->data[value->len] = '\0';

    /* no control characters in any parameter this provider takes */

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < 0x20 || value->data[i] == 0x7f) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* NGX_OK, NGX_DECLINED (absent, too long or malformed), NGX_ERROR */

static ngx_int_t
ngx_http_hpki_oidc_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_str_t  raw;

    ngx_str_null(value);

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_hpki_oidc_unescape(r, raw.data, raw.len, value);
}


/* an application/x-www-form-urlencoded body: at most 16 distinct names */

static ngx_int_t
ngx_http_hpki_oidc_form(ngx_http_request_t *r, ngx_http_hpki_oidc_ctx_t *octx)
{
    u_char      *p, *last, *end, *eq;
    ngx_int_t    rc;
    ngx_str_t    body, name;
    ngx_uint_t   i;

    rc = ngx_http_hpki_request_body(r, &body);
    if (rc != NGX_OK) {
        return rc;
    }

    p = body.data;
    last = p + body.len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        if (end == p) {
            p = end + 1;
            continue;
        }

        if (octx->nparams == NGX_HTTP_HPKI_OIDC_PARAMS) {
            return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request",
                                       "too many parameters");
        }

        eq = ngx_strlchr(p, end, '=');
        if (eq == NULL) {
            eq = end;
        }

        rc = ngx_http_hpki_oidc_unescape(r, p, eq - p, &name);

        if (rc == NGX_OK) {
            octx->name[octx->nparams] = name;
            rc = ngx_http_hpki_oidc_unescape(r, eq + (eq < end),
                                             end - eq - (eq < end),
                                             &octx->value[octx->nparams]);
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request",
                                       "a parameter is too long or "
                                       "malformed");
        }

        /* RFC 6749, 3.1: no parameter more than once */

        for (i = 0; i < octx->nparams; i++) {
            if (octx->name[i].len == name.len
                && ngx_strncmp(octx->name[i].data, name.data, name.len) == 0)
            {
                return ngx_http_hpki_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_request",
                                           "a parameter is repeated");
            }
        }

        octx->nparams++;
        p = end + 1;
    }

    return NGX_OK;
}


static ngx_str_t *
ngx_http_hpki_oidc_param(ngx_http_hpki_oidc_ctx_t *octx, const char *name)
{
    size_t      len;
    ngx_uint_t  i;

    len = ngx_strlen(name);

    for (i = 0; i < octx->nparams; i++) {
        if (octx->name[i].len == len
            && ngx_strncmp(octx->name[i].data, name, len) == 0
            && octx->value[i].len)
        {
            return &octx->value[i];
        }
    }

    return NULL;
}


/* prefix + base64url(SHA-256(in)): Redis keys never hold the secret */

static ngx_int_t
ngx_http_hpki_oidc_hash(ngx_http_request_t *r, const char *prefix,
    ngx_str_t *in, ngx_str_t *out)
{
    size_t   len;
    u_char   md[SHA256_DIGEST_LENGTH];

    len = ngx_strlen(prefix);

    out->data = ngx_pnalloc(r->pool, len + NGX_HTTP_HPKI_OIDC_HASH_LEN + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    SHA256(in->data, in->len, md);

    ngx_memcpy(out->data, prefix, len);

    if (ngx_http_hpki_base64url_encode(md, sizeof(md),
                                       (char *) out->data + len,
                                       NGX_HTTP_HPKI_OIDC_HASH_LEN + 1)
        < 0)
    {
        return NGX_ERROR;
    }

    out->len = len + NGX_HTTP_HPKI_OIDC_HASH_LEN;

    return NGX_OK;
}


/* 256 random bits, base64url */

static ngx_int_t
ngx_http_hpki_oidc_random(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char  rnd[32];

    out->data = ngx_pnalloc(r->pool, NGX_HTTP_HPKI_OIDC_HASH_LEN + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    if (RAND_bytes(rnd, sizeof(rnd)) != 1
        || ngx_http_hpki_base64url_encode(rnd, sizeof(rnd),
                                          (char *) out->data,
                                          NGX_HTTP_HPKI_OIDC_HASH_LEN + 1)
           < 0)
    {
        return NGX_ERROR;
    }

    out->len = NGX_HTTP_HPKI_OIDC_HASH_LEN;

    return NGX_OK;
}


/*
 * 302 to base?name=value&... (params: n pairs; empty values left out), or
 * {"redirect_to": ...} for the FIDO page (ctx->redirect_json).
 */

static ngx_int_t
ngx_http_hpki_oidc_redirect(ngx_http_request_t *r, ngx_str_t *base,
    ngx_str_t *params, ngx_uint_t n)
{
    u_char               *p, sep;
    size_t                len;
    json_t               *body;
    ngx_int_t             rc;
    ngx_str_t             url;
    ngx_uint_t            i;
    ngx_table_elt_t      *h;
    ngx_http_hpki_ctx_t  *ctx;

    len = base->len;

    for (i = 0; i < 2 * n; i += 2) {
        if (params[i + 1].len) {
            len += 2 + params[i].len + params[i + 1].len
                   + 2 * ngx_escape_uri(NULL, params[i + 1].data,
                                        params[i + 1].len,
                                        NGX_ESCAPE_URI_COMPONENT);
        }
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    url.data = p;

    p = ngx_cpymem(p, base->data, base->len);
    sep = ngx_strlchr(base->data, base->data + base->len, '?') ? '&' : '?';

    for (i = 0; i < 2 * n; i += 2) {
        if (params[i + 1].len == 0) {
            continue;
        }

        *p++ = sep;
        sep = '&';
        p = ngx_cpymem(p, params[i].data, params[i].len);
        *p++ = '=';
        p = (u_char *) ngx_escape_uri(p, params[i + 1].data,
                                      params[i + 1].len,
                                      NGX_ESCAPE_URI_COMPONENT);
    }

    url.len = p - url.data;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx && ctx->redirect_json) {

        /* the FIDO page follows it: a fetch() cannot see a 302 */

        body = json_pack("{s:s%}", "redirect_to", url.data, url.len);
        if (body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

        json_decref(body);

        return rc;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value = url;

    ngx_http_clear_location(r);
    r->headers_out.location = h;

    return NGX_HTTP_MOVED_TEMPORARILY;
}


/* RFC 6749, 4.1.2.1: once the redirect URI is known good, errors go there */

static ngx_int_t
ngx_http_hpki_oidc_redirect_error(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, const char *error, const char *desc)
{
    ngx_str_t                   params[8];
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: authorize for \"%V\" refused: %s: %s",
                  &octx->client->id, error, desc);

    ngx_str_set(&params[0], "error");
    params[1].data = (u_char *) error;
    params[1].len = ngx_strlen(error);
    ngx_str_set(&params[2], "error_description");
    params[3].data = (u_char *) desc;
    params[3].len = ngx_strlen(desc);
    ngx_str_set(&params[4], "state");
    params[5] = octx->state;
    ngx_str_set(&params[6], "iss");
    params[7] = hmcf->issuer;

    return ngx_http_hpki_oidc_redirect(r, &octx->redirect_uri, params, 4);
}


static const char *
ngx_http_hpki_oidc_acr(ngx_str_t *amr)
{
    ngx_http_hpki_oidc_method_t  *m;

    for (m = ngx_http_hpki_oidc_methods; m->name; m++) {
        if (amr->len == ngx_strlen(m->name)
            && ngx_strncmp(amr->data, m->name, amr->len) == 0)
        {
            return m->acr;
        }
    }

    return "urn:hpki:card";
}


static ngx_http_hpki_oidc_method_t *
ngx_http_hpki_oidc_method_by_name(const char *name)
{
    ngx_http_hpki_oidc_method_t  *m;

    for (m = ngx_http_hpki_oidc_methods; m->name; m++) {
        if (ngx_strcmp(name, m->name) == 0) {
            return m;
        }
    }

    return NULL;
}


static ngx_http_hpki_oidc_method_t *
ngx_http_hpki_oidc_method_by_login(ngx_uint_t login)
{
    ngx_http_hpki_oidc_method_t  *m;

    for (m = ngx_http_hpki_oidc_methods; m->name; m++) {
        if (m->login == login) {
            return m;
        }
    }

    return NULL;
}


/*
 * Which method logs this person in: the first of acr_values the client
 * may use; else this endpoint's own method if the client may use it (so a
 * request sent on to another endpoint never comes back); else the first
 * method the client lists.  NULL: acr_values names none the client may
 * use.
 */

static ngx_http_hpki_oidc_method_t *
ngx_http_hpki_oidc_select(ngx_http_hpki_oidc_client_t *cl,
    ngx_str_t *acr_values, ngx_uint_t native)
{
    u_char                       *p, *end, *word;
    ngx_http_hpki_oidc_method_t  *m;

    if (acr_values->len) {
        p = acr_values->data;
        end = p + acr_values->len;

        while (p < end) {
            word = p;

            while (p < end && *p != ' ') {
                p++;
            }

            for (m = ngx_http_hpki_oidc_methods; m->name; m++) {
                if ((cl->logins & m->bit)
                    && (size_t) (p - word) == ngx_strlen(m->acr)
                    && ngx_strncmp(word, m->acr, p - word) == 0)
                {
                    return m;
                }
            }

            p++;
        }

        return NULL;
    }

    m = ngx_http_hpki_oidc_method_by_login(native);

    if (m && (cl->logins & m->bit)) {
        return m;
    }

    return ngx_http_hpki_oidc_method_by_login(cl->first_login);
}


/*
 * The client logs in with a method another endpoint or page offers: the
 * card endpoints get the request as it is; the FIDO page gets a handle to
 * the request, kept in Redis (hpki:authz:<sha256>) until the login resumes
 * it (ngx_http_hpki_oidc_resume()).
 */

static ngx_int_t
ngx_http_hpki_oidc_elsewhere(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, ngx_http_hpki_oidc_method_t *m,
    ngx_str_t *url)
{
    u_char           *p;
    json_t           *rec;
    ngx_int_t         rc;
    ngx_str_t         record;
    ngx_table_elt_t  *h;

    if (m->login != NGX_HTTP_HPKI_LOGIN_FIDO) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_pnalloc(r->pool, url->len + 1 + r->args.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Location");
        h->value.data = p;

        p = ngx_cpymem(p, url->data, url->len);
        *p++ = ngx_strlchr(url->data, url->data + url->len, '?') ? '&' : '?';
        p = ngx_cpymem(p, r->args.data, r->args.len);
        h->value.len = p - h->value.data;

        ngx_http_clear_location(r);
        r->headers_out.location = h;

        return NGX_HTTP_MOVED_TEMPORARILY;
    }

    if (octx->nonce.data == NULL) {
        ngx_str_set(&octx->nonce, "");
    }

    if (octx->challenge.data == NULL) {
        ngx_str_set(&octx->challenge, "");
    }

    if (octx->state.data == NULL) {
        ngx_str_set(&octx->state, "");
    }

    if (ngx_http_hpki_oidc_random(r, &octx->code) != NGX_OK
        || ngx_http_hpki_oidc_hash(r, "hpki:authz:", &octx->code,
                                   &octx->code_key)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rec = json_pack("{s:s%, s:s%, s:s%, s:s%, s:s%, s:s%}",
                    "c", octx->client->id.data, octx->client->id.len,
                    "r", octx->redirect_uri.data, octx->redirect_uri.len,
                    "state", octx->state.data, octx->state.len,
                    "nonce", octx->nonce.data, octx->nonce.len,
                    "cc", octx->challenge.data, octx->challenge.len,
                    "scope", octx->scope.data, octx->scope.len);
    if (rec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_json_text(r->pool, rec, &record);

    json_decref(rec);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    octx->refresh = *url;      /* the page, for pending_stored() */

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_pending_stored,
                                     octx, "SET %b %b EX %d",
                                     octx->code_key.data, octx->code_key.len,
                                     record.data, record.len,
                                     NGX_HTTP_HPKI_OIDC_PENDING_TTL);

    rc = ngx_http_hpki_redis_wait(r, rc);

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        return ngx_http_hpki_fail(r, rc, "temporarily_unavailable",
                                  "the token store is unavailable");
    }

    return rc;
}


/* the FIDO page, with the handle in the fragment (never sent to a server) */

static void
ngx_http_hpki_oidc_pending_stored(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    u_char                    *p;
    ngx_table_elt_t           *h;
    ngx_http_hpki_oidc_ctx_t  *octx = data;

    if (reply == NULL || reply->type != REDIS_REPLY_STATUS) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    h = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, octx->refresh.len + sizeof("#login=") - 1
                             + octx->code.len);

    if (h == NULL || p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Location");
    h->value.data = p;

    p = ngx_cpymem(p, octx->refresh.data, octx->refresh.len);
    p = ngx_cpymem(p, "#login=", sizeof("#login=") - 1);
    p = ngx_cpymem(p, octx->code.data, octx->code.len);
    h->value.len = p - h->value.data;

    ngx_http_clear_location(r);
    r->headers_out.location = h;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: authorize for \"%V\": sent to the FIDO page",
                  &octx->client->id);

    ngx_http_finalize_request(r, NGX_HTTP_MOVED_TEMPORARILY);
}


/*
 * A FIDO login made on the page for a pending authorization: the request
 * taken from Redis, then a code issued as after a card login, and the
 * redirect answered as {"redirect_to"} for the page to follow.  ctx->id is
 * the person.  NGX_OK: the request is finalized later.
 */

ngx_int_t
ngx_http_hpki_oidc_resume(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx,
    ngx_str_t *handle)
{
    ngx_int_t                  rc;
    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_oidc_ctx_t));
    if (octx == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hpki_oidc_hash(r, "hpki:authz:", handle, &octx->code_key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->data = octx;
    ctx->redirect_json = 1;

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_resumed, ctx,
                                     "GETDEL %b", octx->code_key.data,
                                     octx->code_key.len);

    return (rc == NGX_OK) ? NGX_OK
           : (rc == NGX_DECLINED) ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_ERROR;
}


static void
ngx_http_hpki_oidc_resumed(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    json_t                    *rec;
    ngx_int_t                  rc;
    ngx_str_t                  text, id, *fields[5];
    ngx_uint_t                 i;
    const char                *names[5] = { "r", "state", "nonce", "cc",
                                            "scope" };
    ngx_http_hpki_ctx_t       *ctx = data;
    ngx_http_hpki_oidc_ctx_t  *octx;
    ngx_pool_cleanup_t        *cln;

    octx = ctx->data;

    rc = ngx_http_hpki_redis_string(r, reply, &text);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    rec = (rc == NGX_OK) ? json_loadb((char *) text.data, text.len, 0, NULL)
                         : NULL;

    if (rec == NULL) {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "the authorization request is unknown, "
                                    "expired or already used: start again "
                                    "from the application");
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(rec);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_hpki_oidc_json_cleanup;
    cln->data = rec;

    id.data = (u_char *) json_string_value(json_object_get(rec, "c"));
    id.len = json_string_length(json_object_get(rec, "c"));

    fields[0] = &octx->redirect_uri;
    fields[1] = &octx->state;
    fields[2] = &octx->nonce;
    fields[3] = &octx->challenge;
    fields[4] = &octx->scope;

    for (i = 0; i < 5; i++) {
        fields[i]->data = (u_char *) json_string_value(
                                         json_object_get(rec, names[i]));
        fields[i]->len = json_string_length(json_object_get(rec, names[i]));
    }

    /* the client as configured now: a reload may have changed it */

    octx->client = id.data ? ngx_http_hpki_oidc_client(r, &id) : NULL;

    if (octx->client == NULL || octx->redirect_uri.data == NULL
        || !ngx_http_hpki_oidc_listed(&octx->client->redirect_uris,
                                      &octx->redirect_uri))
    {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid_request",
                                    "the client or its redirect_uri is no "
                                    "longer registered");
        return;
    }

    if (!(octx->client->logins & NGX_HTTP_HPKI_OIDC_LOGIN_FIDO)) {
        ngx_http_finalize_request(r, ngx_http_hpki_oidc_redirect_error(r,
                                  octx, "access_denied",
                                  "this client does not log in with FIDO"));
        return;
    }

    ngx_http_hpki_oidc_authenticated(r, ctx, NGX_OK, NULL, NULL);
}


/* "hpki_oidc_method_url hpki_card | jpki | fido URL;" */

char *
ngx_http_hpki_oidc_method_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    ngx_str_t                    *value;
    ngx_http_hpki_oidc_method_t  *m;

    value = cf->args->elts;

    m = ngx_http_hpki_oidc_method_by_name((char *) value[1].data);

    if (m == NULL) {
        return "takes hpki_card, jpki or fido, then a URL";
    }

    if (hlcf->oidc_method_url[m->login].len) {
        return "is duplicate";
    }

    if (value[2].len == 0 || ngx_strlchr(value[2].data,
                                         value[2].data + value[2].len, '#'))
    {
        return "needs a URL without a fragment";
    }

    hlcf->oidc_method_url[m->login] = value[2];

    return NGX_CONF_OK;
}


/* A-Z a-z 0-9 - _ */

static ngx_int_t
ngx_http_hpki_oidc_b64url_char(u_char ch)
{
    u_char  c;

    c = (u_char) (ch | 0x20);

    return (ch >= '0' && ch <= '9') || (c >= 'a' && c <= 'z') || ch == '-'
           || ch == '_';
}


static void
ngx_http_hpki_oidc_finalize(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *desc)
{
    ngx_http_finalize_request(r, ngx_http_hpki_fail(r, status, error, desc));
}


static void
ngx_http_hpki_oidc_json_cleanup(void *data)
{
    json_decref(data);
}


/* --- /hpki/authorize ----------------------------------------------------- */


ngx_int_t
ngx_http_hpki_oidc_authorize_handler(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_str_t                     client_id, response_type, method, prompt;
    ngx_str_t                     acr_values;
    ngx_uint_t                    i;
    const char                   *error, *desc;
    ngx_http_hpki_oidc_method_t  *m;
    ngx_http_hpki_ctx_t          *ctx;
    ngx_http_hpki_loc_conf_t     *hlcf;
    ngx_http_hpki_oidc_ctx_t     *octx;
    ngx_http_hpki_oidc_client_t  *cl;

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* not HEAD: a code would be made and never seen */

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    octx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_oidc_ctx_t));
    if (octx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = octx;

    /* until the redirect URI is known good, errors are answered here */

    if (ngx_http_hpki_oidc_arg(r, "client_id", &client_id) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "redirect_uri", &octx->redirect_uri)
           == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cl = ngx_http_hpki_oidc_client(r, &client_id);

    if (cl == NULL) {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "unknown client_id");
    }

    octx->client = cl;

    if (!ngx_http_hpki_oidc_listed(&cl->redirect_uris, &octx->redirect_uri))
    {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "redirect_uri is missing or not "
                                  "registered for this client (exact "
                                  "match)");
    }

    if (ngx_http_hpki_oidc_arg(r, "state", &octx->state) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "response_type", &response_type)
           == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "scope", &octx->scope) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "nonce", &octx->nonce) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "code_challenge", &octx->challenge)
           == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "code_challenge_method", &method)
           == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "prompt", &prompt) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "acr_values", &acr_values) == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (octx->state.len > 512 || octx->nonce.len > 255) {
        ngx_str_null(&octx->state);
        return ngx_http_hpki_oidc_redirect_error(r, octx, "invalid_request",
                                   "state (512) or nonce (255) too long");
    }

    if (response_type.len != 4
        || ngx_strncmp(response_type.data, "code", 4) != 0)
    {
        return ngx_http_hpki_oidc_redirect_error(r, octx,
                                   "unsupported_response_type",
                                   "only response_type=code is supported");
    }

    if (!ngx_http_hpki_oidc_has_word(&octx->scope, "openid")) {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "invalid_scope",
                                   "scope must contain openid");
    }

    for (p = octx->scope.data; p < octx->scope.data + octx->scope.len; ) {
        ngx_str_t  word;

        word.data = p;

        while (p < octx->scope.data + octx->scope.len && *p != ' ') {
            p++;
        }

        word.len = p - word.data;
        p++;

        if (word.len && !ngx_http_hpki_oidc_listed(&cl->scopes, &word)) {
            return ngx_http_hpki_oidc_redirect_error(r, octx,
                                   "invalid_scope",
                                   "a scope is not allowed for this client");
        }
    }

    if (method.len
        && (method.len != 4 || ngx_strncmp(method.data, "S256", 4) != 0))
    {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "invalid_request",
                                   "code_challenge_method must be S256");
    }

    if (octx->challenge.len && method.len == 0) {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "invalid_request",
                                   "code_challenge_method=S256 is required "
                                   "(plain is not supported)");
    }

    if (octx->challenge.len
        && (octx->challenge.len != NGX_HTTP_HPKI_OIDC_HASH_LEN))
    {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "invalid_request",
                                   "code_challenge must be a base64url "
                                   "SHA-256 (43 characters)");
    }

    if (cl->auth == NGX_HTTP_HPKI_OIDC_AUTH_NONE && octx->challenge.len == 0)
    {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "invalid_request",
                                   "a public client must use PKCE "
                                   "(code_challenge, S256)");
    }

    /* there is no session here to reuse: every authorization is a login */

    if (ngx_http_hpki_oidc_has_word(&prompt, "none")) {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "login_required",
                                   "every authorization presents the "
                                   "card: prompt=none cannot be honoured");
    }

    /* the method: acr_values, then the client's (docs/module.md) */

    m = ngx_http_hpki_oidc_select(cl, &acr_values, hlcf->oidc_login);

    if (m == NULL) {
        return ngx_http_hpki_oidc_redirect_error(r, octx, "access_denied",
                                   "acr_values names no login method this "
                                   "client may use");
    }

    for (i = 0; i < octx->challenge.len; i++) {
        if (!ngx_http_hpki_oidc_b64url_char(octx->challenge.data[i])) {
            return ngx_http_hpki_oidc_redirect_error(r, octx,
                                   "invalid_request",
                                   "code_challenge must be base64url");
        }
    }

    /* another method: its endpoint or page (hpki_oidc_method_url) */

    if (m->login != hlcf->oidc_login) {

        if (hlcf->oidc_method_url[m->login].len == 0) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "hpki: authorize: client \"%V\" logs in with %s, "
                          "and no hpki_oidc_method_url says where",
                          &cl->id, m->name);

            return ngx_http_hpki_oidc_redirect_error(r, octx,
                                   "access_denied",
                                   "this endpoint does not offer the "
                                   "client's login method");
        }

        return ngx_http_hpki_oidc_elsewhere(r, octx, m,
                                            &hlcf->oidc_method_url[m->login]);
    }

    /* the card (or My Number card) on this very request */

    rc = ngx_http_hpki_login_authenticate(r, hlcf->oidc_login,
                                          ngx_http_hpki_oidc_authenticated,
                                          &error, &desc);
    if (rc == NGX_DONE) {
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        return ngx_http_hpki_fail(r, rc, error, desc);
    }

    return ngx_http_hpki_oidc_redirect_error(r, octx, "access_denied", desc);
}


static void
ngx_http_hpki_oidc_authenticated(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_int_t rc, const char *error,
    const char *desc)
{
    json_t                     *rec;
    ngx_str_t                   record;
    ngx_http_hpki_oidc_ctx_t   *octx;
    ngx_http_hpki_main_conf_t  *hmcf;

    octx = ctx->data;
    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    if (rc == NGX_HTTP_SERVICE_UNAVAILABLE) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, ngx_http_hpki_oidc_redirect_error(r,
                                  octx, "access_denied", desc));
        return;
    }

    /* jansson refuses NULL strings, even of length 0 */

    if (octx->nonce.data == NULL) {
        ngx_str_set(&octx->nonce, "");
    }

    if (octx->challenge.data == NULL) {
        ngx_str_set(&octx->challenge, "");
    }

    if (ctx->id.role.data == NULL) {
        ngx_str_set(&ctx->id.role, "");
    }

    if (ctx->id.x5t.data == NULL) {
        ngx_str_set(&ctx->id.x5t, "");      /* FIDO: no certificate */
    }

    if (ngx_http_hpki_oidc_random(r, &octx->code) != NGX_OK
        || ngx_http_hpki_oidc_hash(r, "hpki:code:", &octx->code,
                                   &octx->code_key)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rec = json_pack("{s:s%, s:s%, s:s%, s:s%, s:s%, s:s%, s:s%, s:I, "
                    "s:s%, s:s%}",
                    "c", octx->client->id.data, octx->client->id.len,
                    "r", octx->redirect_uri.data, octx->redirect_uri.len,
                    "sub", ctx->id.subject.data, ctx->id.subject.len,
                    "role", ctx->id.role.data, ctx->id.role.len,
                    "amr", ctx->id.auth_method.data,
                    ctx->id.auth_method.len,
                    "nonce", octx->nonce.data, octx->nonce.len,
                    "cc", octx->challenge.data, octx->challenge.len,
                    "at", (json_int_t) ngx_time(),
                    "scope", octx->scope.data, octx->scope.len,
                    "x5t", ctx->id.x5t.data, ctx->id.x5t.len);
    if (rec == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_json_text(r->pool, rec, &record);

    json_decref(rec);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_code_stored, ctx,
                                     "EVAL %s 2 %b hpki:fail:%b %b %d %d",
                                     ngx_http_hpki_oidc_code_script,
                                     octx->code_key.data, octx->code_key.len,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     record.data, record.len,
                                     NGX_HTTP_HPKI_OIDC_CODE_TTL,
                                     (int) hmcf->lockout_limit);
    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


static void
ngx_http_hpki_oidc_code_stored(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    ngx_int_t                   rc;
    ngx_str_t                   params[6];
    ngx_http_hpki_oidc_ctx_t   *octx;
    ngx_http_hpki_main_conf_t  *hmcf;

    octx = ctx->data;
    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    rc = ngx_http_hpki_lockout_stored(r, reply, &ctx->id.subject);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_hpki_oidc_redirect_error(r,
                                  octx, "access_denied",
                                  NGX_HTTP_HPKI_LOCKED));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: %V login for client \"%V\": user \"%V\" role "
                  "\"%V\", code issued", &ctx->id.auth_method,
                  &octx->client->id, &ctx->id.subject, &ctx->id.role);

    ngx_str_set(&params[0], "code");
    params[1] = octx->code;
    ngx_str_set(&params[2], "state");
    params[3] = octx->state;
    ngx_str_set(&params[4], "iss");
    params[5] = hmcf->issuer;

    ngx_http_finalize_request(r, ngx_http_hpki_oidc_redirect(r,
                              &octx->redirect_uri, params, 3));
}


/* --- /hpki/token --------------------------------------------------------- */


ngx_int_t
ngx_http_hpki_oidc_token_handler(ngx_http_request_t *r)
{
    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_oidc_ctx_t));
    if (octx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_hpki_read_body(r, octx, ngx_http_hpki_oidc_token_body);
}


static void
ngx_http_hpki_oidc_token_body(ngx_http_request_t *r)
{
    time_t                     jti_ttl;
    ngx_int_t                  rc;
    ngx_str_t                  jti_key, *grant;
    const char                *desc;
    ngx_table_elt_t           *h;
    ngx_http_hpki_ctx_t       *ctx;
    ngx_http_hpki_oidc_ctx_t  *octx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);
    octx = ctx->data;

    rc = ngx_http_hpki_oidc_form(r, octx);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    grant = ngx_http_hpki_oidc_param(octx, "grant_type");

    if (grant && grant->len == sizeof("authorization_code") - 1
        && ngx_strncmp(grant->data, "authorization_code", grant->len) == 0)
    {
        octx->grant = NGX_HTTP_HPKI_OIDC_GRANT_CODE;

    } else if (grant && grant->len == sizeof("refresh_token") - 1
               && ngx_strncmp(grant->data, "refresh_token", grant->len) == 0)
    {
        octx->grant = NGX_HTTP_HPKI_OIDC_GRANT_REFRESH;

    } else {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST,
                                    grant ? "unsupported_grant_type"
                                          : "invalid_request",
                                    "grant_type must be authorization_code "
                                    "or refresh_token");
        return;
    }

    ngx_str_null(&jti_key);
    jti_ttl = 0;

    rc = ngx_http_hpki_oidc_client_auth(r, octx, &jti_key, &jti_ttl, &desc);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        if (octx->basic) {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "WWW-Authenticate");
            ngx_str_set(&h->value, "Basic realm=\"hpki\"");
        }

        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_UNAUTHORIZED,
                                    "invalid_client", desc);
        return;
    }

    if (jti_key.len == 0) {
        ngx_http_hpki_oidc_grant(r, ctx);
        return;
    }

    /* private_key_jwt: each assertion once (RFC 7523, 3) */

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_jti_stored, ctx,
                                     "SET %b 1 NX EX %d",
                                     jti_key.data, jti_key.len,
                                     (int) jti_ttl);
    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


/*
 * The client, by exactly one of: HTTP Basic, client_secret in the body,
 * a client_assertion, or only client_id (public clients).  NGX_OK with
 * octx->client; NGX_DECLINED with *desc (401 invalid_client); NGX_ERROR.
 * For private_key_jwt, *jti_key is the assertion's replay key.
 */

static ngx_int_t
ngx_http_hpki_oidc_client_auth(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, ngx_str_t *jti_key, time_t *jti_ttl,
    const char **desc)
{
    u_char                       *colon, md[SHA256_DIGEST_LENGTH];
    ngx_int_t                     rc;
    ngx_str_t                     id, secret, enc, dec, *v, *assertion;
    ngx_str_t                    *type, *form_id;
    ngx_uint_t                    method, methods;
    ngx_table_elt_t              *h;
    ngx_http_hpki_oidc_client_t  *cl;

    h = r->headers_in.authorization;
    form_id = ngx_http_hpki_oidc_param(octx, "client_id");
    v = ngx_http_hpki_oidc_param(octx, "client_secret");
    assertion = ngx_http_hpki_oidc_param(octx, "client_assertion");
    type = ngx_http_hpki_oidc_param(octx, "client_assertion_type");

    ngx_str_null(&id);
    ngx_str_null(&secret);

    methods = 0;
    method = NGX_HTTP_HPKI_OIDC_AUTH_NONE;

    if (h && h->value.len > 6
        && ngx_strncasecmp(h->value.data, (u_char *) "Basic ", 6) == 0)
    {
        octx->basic = 1;
        methods++;
        method = NGX_HTTP_HPKI_OIDC_AUTH_BASIC;

        enc.data = h->value.data + 6;
        enc.len = h->value.len - 6;

        if (enc.len > 2 * NGX_HTTP_HPKI_OIDC_ARG_MAX) {
            *desc = "malformed HTTP Basic credentials";
            return NGX_DECLINED;
        }

        dec.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(enc.len));
        if (dec.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(&dec, &enc) != NGX_OK) {
            *desc = "malformed HTTP Basic credentials";
            return NGX_DECLINED;
        }

        colon = ngx_strlchr(dec.data, dec.data + dec.len, ':');
        if (colon == NULL) {
            *desc = "malformed HTTP Basic credentials";
            return NGX_DECLINED;
        }

        /* RFC 6749, 2.3.1: both parts are form-urlencoded */

        rc = ngx_http_hpki_oidc_unescape(r, dec.data, colon - dec.data, &id);

        if (rc == NGX_OK) {
            rc = ngx_http_hpki_oidc_unescape(r, colon + 1,
                                             dec.data + dec.len - colon - 1,
                                             &secret);
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK) {
            *desc = "malformed HTTP Basic credentials";
            return NGX_DECLINED;
        }
    }

    if (v) {
        methods++;
        method = NGX_HTTP_HPKI_OIDC_AUTH_POST;
        secret = *v;
    }

    if (assertion || type) {
        methods++;
        method = NGX_HTTP_HPKI_OIDC_AUTH_JWT;
    }

    if (methods > 1) {
        *desc = "use exactly one client authentication method";
        return NGX_DECLINED;
    }

    if (method == NGX_HTTP_HPKI_OIDC_AUTH_JWT) {
        return ngx_http_hpki_oidc_assertion(r, octx, assertion, jti_key,
                                            jti_ttl, desc);
    }

    if (method != NGX_HTTP_HPKI_OIDC_AUTH_BASIC) {
        if (form_id == NULL) {
            *desc = "client authentication is required";
            return NGX_DECLINED;
        }

        id = *form_id;

    } else if (form_id
               && (form_id->len != id.len
                   || ngx_strncmp(form_id->data, id.data, id.len) != 0))
    {
        *desc = "client_id does not match the authenticated client";
        return NGX_DECLINED;
    }

    cl = ngx_http_hpki_oidc_client(r, &id);

    if (cl == NULL) {
        *desc = "unknown client";
        return NGX_DECLINED;
    }

    if (cl->auth != method) {
        *desc = "not this client's token_endpoint_auth_method";
        return NGX_DECLINED;
    }

    if (method != NGX_HTTP_HPKI_OIDC_AUTH_NONE) {
        SHA256(secret.data, secret.len, md);

        if (CRYPTO_memcmp(md, cl->secret, sizeof(md)) != 0) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "hpki: token endpoint: wrong secret for client "
                          "\"%V\"", &cl->id);
            *desc = "client authentication failed";
            return NGX_DECLINED;
        }
    }

    octx->client = cl;

    return NGX_OK;
}


/* RFC 7523: iss = sub = client_id, aud the token endpoint or issuer */

static ngx_int_t
ngx_http_hpki_oidc_assertion(ngx_http_request_t *r,
    ngx_http_hpki_oidc_ctx_t *octx, ngx_str_t *assertion,
    ngx_str_t *jti_key, time_t *jti_ttl, const char **desc)
{
    int                           len;
    u_char                       *dot1, *dot2, *end, buf[4096];
    json_t                       *claims, *v;
    time_t                        now, exp;
    ngx_str_t                    *type, *form_id, id, jti, aud;
    const char                   *err;
    ngx_http_hpki_main_conf_t    *hmcf;
    ngx_http_hpki_oidc_client_t  *cl;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    type = ngx_http_hpki_oidc_param(octx, "client_assertion_type");

    *desc = "invalid client assertion";

    if (type == NULL || assertion == NULL
        || type->len != sizeof("urn:ietf:params:oauth:client-assertion-type:"
                               "jwt-bearer") - 1
        || ngx_strncmp(type->data, "urn:ietf:params:oauth:client-assertion-"
                       "type:jwt-bearer", type->len) != 0)
    {
        *desc = "client_assertion_type must be jwt-bearer";
        return NGX_DECLINED;
    }

    /* which client: sub of the (not yet verified) claims */

    end = assertion->data + assertion->len;
    dot1 = ngx_strlchr(assertion->data, end, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, end, '.') : NULL;

    if (dot2 == NULL) {
        return NGX_DECLINED;
    }

    len = ngx_http_hpki_base64url_decode((char *) dot1 + 1, dot2 - dot1 - 1,
                                         buf, sizeof(buf));
    if (len <= 0) {
        return NGX_DECLINED;
    }

    claims = json_loadb((char *) buf, len, JSON_REJECT_DUPLICATES, NULL);
    v = json_object_get(claims, "sub");

    if (!json_is_string(v) || json_string_length(v) > NGX_HTTP_HPKI_ID_MAX) {
        json_decref(claims);
        return NGX_DECLINED;
    }

    id.data = (u_char *) json_string_value(v);
    id.len = json_string_length(v);

    cl = ngx_http_hpki_oidc_client(r, &id);
    json_decref(claims);

    if (cl == NULL || cl->auth != NGX_HTTP_HPKI_OIDC_AUTH_JWT) {
        *desc = "unknown client, or not a private_key_jwt client";
        return NGX_DECLINED;
    }

    form_id = ngx_http_hpki_oidc_param(octx, "client_id");

    if (form_id && (form_id->len != cl->id.len
                    || ngx_strncmp(form_id->data, cl->id.data, cl->id.len)
                       != 0))
    {
        *desc = "client_id does not match the assertion";
        return NGX_DECLINED;
    }

    claims = ngx_http_hpki_jws_verify((char *) assertion->data,
                                      assertion->len, cl->keys, cl->nkeys,
                                      &err);
    if (claims == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: client assertion of \"%V\": %s", &cl->id, err);
        return NGX_DECLINED;
    }

    now = ngx_time();

    /* the audience: the token endpoint's URL, or the issuer */

    aud.len = hmcf->issuer.len + sizeof("/hpki/token") - 1;
    aud.data = ngx_pnalloc(r->pool, aud.len + 1);
    if (aud.data == NULL) {
        json_decref(claims);
        return NGX_ERROR;
    }

    ngx_sprintf(aud.data, "%V/hpki/token%Z", &hmcf->issuer);

    if ((ngx_http_hpki_jwt_check(claims, (char *) cl->id.data,
                                 (char *) aud.data, now, hmcf->leeway, &err)
         != 0
         && ngx_http_hpki_jwt_check(claims, (char *) cl->id.data,
                                    (char *) hmcf->issuer.data, now,
                                    hmcf->leeway, &err)
            != 0))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: client assertion of \"%V\": %s", &cl->id, err);
        json_decref(claims);
        return NGX_DECLINED;
    }

    v = json_object_get(claims, "sub");
    exp = (time_t) json_integer_value(json_object_get(claims, "exp"));

    if (json_string_length(v) != cl->id.len
        || ngx_strncmp(json_string_value(v), cl->id.data, cl->id.len) != 0
        || exp > now + NGX_HTTP_HPKI_OIDC_ASSERTION_TTL)
    {
        json_decref(claims);
        *desc = "the assertion's sub must be the client_id, and it may "
                "live at most an hour";
        return NGX_DECLINED;
    }

    /* the replay key: the client and its jti */

    v = json_object_get(claims, "jti");

    if (json_string_length(v) > NGX_HTTP_HPKI_OIDC_ARG_MAX) {
        json_decref(claims);
        return NGX_DECLINED;
    }

    jti.len = cl->id.len + 1 + json_string_length(v);
    jti.data = ngx_pnalloc(r->pool, jti.len);
    if (jti.data == NULL) {
        json_decref(claims);
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(jti.data, cl->id.data, cl->id.len), " ", 1);
    ngx_memcpy(jti.data + cl->id.len + 1, json_string_value(v),
               json_string_length(v));

    if (ngx_http_hpki_oidc_hash(r, "hpki:jti:", &jti, jti_key) != NGX_OK) {
        json_decref(claims);
        return NGX_ERROR;
    }

    json_decref(claims);

    *jti_ttl = exp - now + hmcf->leeway;
    if (*jti_ttl < 1) {
        *jti_ttl = 1;
    }

    octx->client = cl;

    return NGX_OK;
}


static void
ngx_http_hpki_oidc_jti_stored(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    if (reply->type != REDIS_REPLY_STATUS) {
        /* nil: SET NX found it */
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_UNAUTHORIZED,
                                    "invalid_client",
                                    "the client assertion was used before");
        return;
    }

    ngx_http_hpki_oidc_grant(r, ctx);
}


static void
ngx_http_hpki_oidc_grant(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_str_t                 *code, *refresh, old_key;
    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ctx->data;

    if (octx->grant == NGX_HTTP_HPKI_OIDC_GRANT_CODE) {
        code = ngx_http_hpki_oidc_param(octx, "code");

        if (code == NULL || code->len != NGX_HTTP_HPKI_OIDC_HASH_LEN) {
            ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_grant",
                                        "the code is missing or malformed");
            return;
        }

        if (ngx_http_hpki_oidc_hash(r, "hpki:code:", code, &octx->code_key)
            != NGX_OK
            || ngx_http_hpki_oidc_random(r, &ctx->id.sid) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_redeemed, ctx,
                                         "EVAL %s 1 %b %b %d",
                                         ngx_http_hpki_oidc_redeem_script,
                                         octx->code_key.data,
                                         octx->code_key.len,
                                         ctx->id.sid.data, ctx->id.sid.len,
                                         NGX_HTTP_HPKI_OIDC_USED_TTL);
        if (rc != NGX_OK) {
            ngx_http_hpki_unavailable(r);
        }

        return;
    }

    refresh = ngx_http_hpki_oidc_param(octx, "refresh_token");

    if (refresh == NULL || refresh->len != NGX_HTTP_HPKI_OIDC_HASH_LEN) {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "the refresh token is missing or "
                                    "malformed");
        return;
    }

    if (ngx_http_hpki_oidc_hash(r, "hpki:rt:", refresh, &old_key) != NGX_OK
        || ngx_http_hpki_oidc_random(r, &octx->refresh) != NGX_OK
        || ngx_http_hpki_oidc_hash(r, "hpki:rt:", &octx->refresh,
                                   &octx->refresh_key)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_rotated, ctx,
                                     "EVAL %s 2 %b %b %b",
                                     ngx_http_hpki_oidc_rotate_script,
                                     old_key.data, old_key.len,
                                     octx->refresh_key.data,
                                     octx->refresh_key.len,
                                     octx->client->id.data,
                                     octx->client->id.len);
    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


/* {'ok', record}: NGX_OK; {'invalid'} or {'replayed'}: NGX_DECLINED */

static ngx_int_t
ngx_http_hpki_oidc_record(ngx_http_request_t *r, redisReply *reply,
    json_t **record)
{
    redisReply          *st, *d;
    ngx_pool_cleanup_t  *cln;

    *record = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 1 || reply->elements > 2)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %*s", (size_t) reply->len,
                          reply->str);
        }

        return NGX_ERROR;
    }

    st = reply->element[0];

    if (st->type != REDIS_REPLY_STRING) {
        return NGX_ERROR;
    }

    if (ngx_strcmp(st->str, "ok") != 0 || reply->elements != 2) {
        return NGX_DECLINED;
    }

    d = reply->element[1];

    if (d->type != REDIS_REPLY_STRING
        || d->len > NGX_HTTP_HPKI_OIDC_RECORD_MAX)
    {
        return NGX_ERROR;
    }

    *record = json_loadb(d->str, d->len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(*record)) {
        json_decref(*record);
        *record = NULL;
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(*record);
        *record = NULL;
        return NGX_ERROR;
    }

    cln->handler = ngx_http_hpki_oidc_json_cleanup;
    cln->data = *record;

    return NGX_OK;
}


/* the person of a code or refresh record */

static ngx_int_t
ngx_http_hpki_oidc_record_id(ngx_http_request_t *r, json_t *rec,
    ngx_http_hpki_identity_t *id, ngx_http_hpki_oidc_ctx_t *octx)
{
    size_t       i;
    json_t      *v;
    ngx_str_t   *dst[7];
    const char  *names[7] = { "sub", "role", "amr", "scope", "x5t", "nonce",
                              "sid" };

    dst[0] = &id->subject;
    dst[1] = &id->role;
    dst[2] = &id->auth_method;
    dst[3] = &id->scope;
    dst[4] = &id->x5t;
    dst[5] = &octx->nonce;
    dst[6] = &id->sid;

    for (i = 0; i < 7; i++) {
        v = json_object_get(rec, names[i]);

        if (v == NULL && i >= 5) {
            continue;               /* a refresh record has no nonce, ... */
        }

        if (!json_is_string(v) || json_string_length(v) > 1024) {
            return NGX_DECLINED;
        }

        if (ngx_http_hpki_pstrdup(r, dst[i], json_string_value(v),
                                  json_string_length(v))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    v = json_object_get(rec, "at");
    if (!json_is_integer(v) || id->subject.len == 0) {
        return NGX_DECLINED;
    }

    octx->auth_time = (time_t) json_integer_value(v);

    return NGX_OK;
}


static void
ngx_http_hpki_oidc_redeemed(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    u_char                     md[SHA256_DIGEST_LENGTH];
    char                       b64[NGX_HTTP_HPKI_OIDC_HASH_LEN + 1];
    json_t                    *rec;
    ngx_int_t                  rc;
    ngx_str_t                 *redirect_uri, *verifier, cc, c, ru, sid;
    ngx_uint_t                 i;
    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ctx->data;

    rc = ngx_http_hpki_oidc_record(r, reply, &rec);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    if (rc == NGX_DECLINED) {
        if (reply->element[0]->len == 8
            && ngx_strncmp(reply->element[0]->str, "replayed", 8) == 0)
        {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "hpki: client \"%V\" presented a used code: the "
                          "tokens issued from it are revoked",
                          &octx->client->id);
        }

        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "the code is invalid, expired or was "
                                    "used before");
        return;
    }

    c.data = (u_char *) json_string_value(json_object_get(rec, "c"));
    c.len = json_string_length(json_object_get(rec, "c"));
    ru.data = (u_char *) json_string_value(json_object_get(rec, "r"));
    ru.len = json_string_length(json_object_get(rec, "r"));
    cc.data = (u_char *) json_string_value(json_object_get(rec, "cc"));
    cc.len = json_string_length(json_object_get(rec, "cc"));

    redirect_uri = ngx_http_hpki_oidc_param(octx, "redirect_uri");
    verifier = ngx_http_hpki_oidc_param(octx, "code_verifier");

    if (c.data == NULL || c.len != octx->client->id.len
        || ngx_strncmp(c.data, octx->client->id.data, c.len) != 0)
    {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "the code was issued to another client");
        return;
    }

    if (redirect_uri == NULL || ru.data == NULL
        || redirect_uri->len != ru.len
        || ngx_strncmp(redirect_uri->data, ru.data, ru.len) != 0)
    {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "redirect_uri differs from the "
                                    "authorization request's");
        return;
    }

    /* RFC 7636, 4.6: BASE64URL(SHA256(code_verifier)) == code_challenge */

    if (cc.len) {
        if (verifier == NULL || verifier->len < 43 || verifier->len > 128) {
            ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_grant",
                                        "code_verifier (43 to 128 "
                                        "characters) is required");
            return;
        }

        for (i = 0; i < verifier->len; i++) {
            u_char  ch = verifier->data[i];

            if (!ngx_http_hpki_oidc_b64url_char(ch) && ch != '.' && ch != '~')
            {
                break;
            }
        }

        SHA256(verifier->data, verifier->len, md);

        if (i != verifier->len
            || ngx_http_hpki_base64url_encode(md, sizeof(md), b64,
                                              sizeof(b64)) < 0
            || cc.len != NGX_HTTP_HPKI_OIDC_HASH_LEN
            || CRYPTO_memcmp(b64, cc.data, cc.len) != 0)
        {
            ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST,
                                        "invalid_grant",
                                        "code_verifier does not match the "
                                        "code_challenge");
            return;
        }

    } else if (verifier) {
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "code_verifier without a "
                                    "code_challenge");
        return;
    }

    sid = ctx->id.sid;

    rc = ngx_http_hpki_oidc_record_id(r, rec, &ctx->id, octx);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->id.sid = sid;

    /* a new refresh token for the new session */

    if (ngx_http_hpki_oidc_random(r, &octx->refresh) != NGX_OK
        || ngx_http_hpki_oidc_hash(r, "hpki:rt:", &octx->refresh,
                                   &octx->refresh_key)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_hpki_oidc_issue(r, ctx);
}


static void
ngx_http_hpki_oidc_rotated(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    json_t                    *rec;
    ngx_int_t                  rc;
    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ctx->data;

    rc = ngx_http_hpki_oidc_record(r, reply, &rec);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "hpki: client \"%V\": refresh token invalid, expired "
                      "or already used", &octx->client->id);

        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "the refresh token is invalid, expired "
                                    "or was used before");
        return;
    }

    rc = ngx_http_hpki_oidc_record_id(r, rec, &ctx->id, octx);

    if (rc != NGX_OK || ctx->id.sid.len == 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_hpki_oidc_issue(r, ctx);
}


/* the access token and ID token, stored with the session in one step */

static void
ngx_http_hpki_oidc_issue(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx)
{
    json_t                     *rec;
    time_t                      rt_ttl;
    ngx_int_t                   rc;
    ngx_str_t                   record, code_key;
    ngx_http_hpki_oidc_ctx_t   *octx;
    ngx_http_hpki_main_conf_t  *hmcf;

    octx = ctx->data;
    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    if (ngx_http_hpki_token_issue(r, &ctx->id, &ctx->id.token) != NGX_OK
        || ngx_http_hpki_oidc_id_token(r, ctx, octx) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* refresh tokens last until the day's authentication expires */

    rt_ttl = octx->auth_time + hmcf->token_ttl - ngx_time();
    if (rt_ttl < 1) {
        rt_ttl = 1;
    }

    ngx_str_set(&record, "");
    ngx_str_set(&code_key, "hpki:code:-");

    if (octx->grant == NGX_HTTP_HPKI_OIDC_GRANT_CODE) {
        code_key = octx->code_key;

        rec = json_pack("{s:s%, s:s%, s:s%, s:s%, s:I, s:s%, s:s%, s:s%}",
                        "c", octx->client->id.data, octx->client->id.len,
                        "sub", ctx->id.subject.data, ctx->id.subject.len,
                        "role", ctx->id.role.data, ctx->id.role.len,
                        "amr", ctx->id.auth_method.data,
                        ctx->id.auth_method.len,
                        "at", (json_int_t) octx->auth_time,
                        "scope", ctx->id.scope.data, ctx->id.scope.len,
                        "x5t", ctx->id.x5t.data, ctx->id.x5t.len,
                        "sid", ctx->id.sid.data, ctx->id.sid.len);
        if (rec == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rc = ngx_http_hpki_json_text(r->pool, rec, &record);

        json_decref(rec);

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_stored, ctx,
                                     "EVAL %s 4 hpki:tok:%b hpki:sid:%b %b "
                                     "%b %b %lld %b %lld %s",
                                     ngx_http_hpki_oidc_store_script,
                                     ctx->id.token_id.data,
                                     ctx->id.token_id.len,
                                     ctx->id.sid.data, ctx->id.sid.len,
                                     octx->refresh_key.data,
                                     octx->refresh_key.len,
                                     code_key.data, code_key.len,
                                     ctx->id.subject.data,
                                     ctx->id.subject.len,
                                     (long long) hmcf->token_ttl,
                                     record.data, record.len,
                                     (long long) rt_ttl,
                                     octx->grant
                                     == NGX_HTTP_HPKI_OIDC_GRANT_REFRESH
                                     ? "1" : "0");
    if (rc != NGX_OK) {
        ngx_http_hpki_unavailable(r);
    }
}


static ngx_int_t
ngx_http_hpki_oidc_id_token(ngx_http_request_t *r, ngx_http_hpki_ctx_t *ctx,
    ngx_http_hpki_oidc_ctx_t *octx)
{
    char                       *jws;
    time_t                      now;
    json_t                     *claims;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    now = ngx_time();

    claims = json_pack("{s:s%, s:s%, s:s%, s:s%, s:I, s:I, s:I, s:[s%], "
                       "s:s, s:s%}",
                       "iss", hmcf->issuer.data, hmcf->issuer.len,
                       "sub", ctx->id.subject.data, ctx->id.subject.len,
                       "aud", octx->client->id.data, octx->client->id.len,
                       "azp", octx->client->id.data, octx->client->id.len,
                       "iat", (json_int_t) now,
                       "exp", (json_int_t) (now + NGX_HTTP_HPKI_OIDC_ID_TTL),
                       "auth_time", (json_int_t) octx->auth_time,
                       "amr", ctx->id.auth_method.data,
                       ctx->id.auth_method.len,
                       "acr", ngx_http_hpki_oidc_acr(&ctx->id.auth_method),
                       "sid", ctx->id.sid.data, ctx->id.sid.len);
    if (claims == NULL) {
        return NGX_ERROR;
    }

    if (octx->nonce.len) {
        json_object_set_new(claims, "nonce",
                            json_stringn((char *) octx->nonce.data,
                                         octx->nonce.len));
    }

    if (ctx->id.role.len) {
        json_object_set_new(claims, "hpki_role",
                            json_stringn((char *) ctx->id.role.data,
                                         ctx->id.role.len));
    }

    jws = ngx_http_hpki_jws_sign(&hmcf->keys[0], claims);
    json_decref(claims);

    if (jws == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_hpki_pstrdup(r, &octx->id_token, jws, ngx_strlen(jws))
        != NGX_OK)
    {
        free(jws);
        return NGX_ERROR;
    }

    free(jws);

    return NGX_OK;
}


static void
ngx_http_hpki_oidc_stored(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ctx->data;

    if (reply && reply->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->str, "ok") != 0)
    {
        /* "replayed" (the code, meanwhile) or "gone" (logged out) */
        ngx_http_hpki_oidc_finalize(r, NGX_HTTP_BAD_REQUEST, "invalid_grant",
                                    "the grant was revoked");
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %*s", (size_t) reply->len,
                          reply->str);
        }

        ngx_http_hpki_unavailable(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: oidc %s for client \"%V\": user \"%V\" token %V "
                  "session %V",
                  octx->grant == NGX_HTTP_HPKI_OIDC_GRANT_CODE
                  ? "code" : "refresh", &octx->client->id,
                  &ctx->id.subject, &ctx->id.token_id, &ctx->id.sid);

    ngx_http_finalize_request(r, ngx_http_hpki_oidc_token_reply(r, ctx,
                                                                octx));
}


static ngx_int_t
ngx_http_hpki_oidc_token_reply(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_http_hpki_oidc_ctx_t *octx)
{
    json_t                     *body;
    ngx_int_t                   rc;
    ngx_table_elt_t            *h;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    body = json_pack("{s:s%, s:s, s:I, s:s%, s:s%, s:s%}",
                     "access_token", ctx->id.token.data, ctx->id.token.len,
                     "token_type", "Bearer",
                     "expires_in", (json_int_t) hmcf->token_ttl,
                     "refresh_token", octx->refresh.data, octx->refresh.len,
                     "id_token", octx->id_token.data, octx->id_token.len,
                     "scope", ctx->id.scope.data, ctx->id.scope.len);
    if (body == NULL) {
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

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Pragma");
    ngx_str_set(&h->value, "no-cache");

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);

    json_decref(body);

    return rc;
}


/* --- /hpki/userinfo ------------------------------------------------------ */


ngx_int_t
ngx_http_hpki_oidc_userinfo_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_hpki_token_caller(r, "hpki_oidc_userinfo");
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_hpki_token_has_scope(&ctx->id, "openid")) {
        return ngx_http_hpki_send_error(r, NGX_HTTP_FORBIDDEN,
                                        "insufficient_scope",
                                        "the token lacks the openid scope");
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_userinfo_name,
                                     ctx, "HGET hpki:user:%b name",
                                     ctx->id.subject.data,
                                     ctx->id.subject.len);

    return ngx_http_hpki_redis_wait(r, rc);
}


static void
ngx_http_hpki_oidc_userinfo_name(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    json_t     *body;
    ngx_int_t   rc;
    ngx_str_t   name;

    rc = ngx_http_hpki_redis_string(r, reply, &name);

    if (rc == NGX_ERROR) {
        ngx_http_hpki_unavailable(r);
        return;
    }

    body = json_pack("{s:s%, s:s%, s:[s%]}",
                     "sub", ctx->id.subject.data, ctx->id.subject.len,
                     "hpki_role", ctx->id.role.data ? ctx->id.role.data
                                                    : (u_char *) "",
                     ctx->id.role.len,
                     "amr", ctx->id.auth_method.data
                            ? ctx->id.auth_method.data : (u_char *) "",
                     ctx->id.auth_method.len);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_OK && name.len && name.len <= 1024) {
        json_object_set_new(body, "name",
                            json_stringn((char *) name.data, name.len));
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);
    json_decref(body);

    ngx_http_finalize_request(r, rc);
}


/* --- /hpki/logout -------------------------------------------------------- */


ngx_int_t
ngx_http_hpki_oidc_logout_handler(ngx_http_request_t *r)
{
    json_t                       *claims, *v;
    ngx_int_t                     rc;
    ngx_str_t                     hint, client_id, aud, sid;
    const char                   *err;
    ngx_http_hpki_ctx_t          *ctx;
    ngx_http_hpki_oidc_ctx_t     *octx;
    ngx_pool_cleanup_t           *cln;
    ngx_http_hpki_main_conf_t    *hmcf;
    ngx_http_hpki_oidc_client_t  *cl;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    octx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_oidc_ctx_t));
    if (octx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = octx;

    if (ngx_http_hpki_oidc_arg(r, "id_token_hint", &hint) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "client_id", &client_id) == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "post_logout_redirect_uri",
                                  &octx->redirect_uri)
           == NGX_ERROR
        || ngx_http_hpki_oidc_arg(r, "state", &octx->state) == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (hint.len == 0) {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "id_token_hint is required: it names the "
                                  "session to end");
    }

    /* one of ours, signed by a gateway key; an expired one is a fine hint */

    claims = ngx_http_hpki_jws_verify((char *) hint.data, hint.len,
                                      hmcf->keys, hmcf->nkeys, &err);
    if (claims == NULL) {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "id_token_hint is not an ID token of "
                                  "this provider");
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(claims);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_hpki_oidc_json_cleanup;
    cln->data = claims;

    v = json_object_get(claims, "iss");

    if (!json_is_string(v) || json_string_length(v) != hmcf->issuer.len
        || ngx_strncmp(json_string_value(v), hmcf->issuer.data,
                       hmcf->issuer.len) != 0)
    {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "id_token_hint is not an ID token of "
                                  "this provider");
    }

    v = json_object_get(claims, "aud");
    aud.data = (u_char *) json_string_value(v);
    aud.len = json_string_length(v);

    v = json_object_get(claims, "sid");
    sid.data = (u_char *) json_string_value(v);
    sid.len = json_string_length(v);

    cl = aud.data ? ngx_http_hpki_oidc_client(r, &aud) : NULL;

    if (cl == NULL || sid.data == NULL
        || sid.len != NGX_HTTP_HPKI_OIDC_HASH_LEN)
    {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "id_token_hint names no client or session "
                                  "of this provider");
    }

    if (client_id.len
        && (client_id.len != cl->id.len
            || ngx_strncmp(client_id.data, cl->id.data, cl->id.len) != 0))
    {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "client_id is not the ID token's "
                                  "audience");
    }

    if (octx->redirect_uri.len
        && !ngx_http_hpki_oidc_listed(&cl->logout_uris, &octx->redirect_uri))
    {
        return ngx_http_hpki_fail(r, NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  "post_logout_redirect_uri is not "
                                  "registered for this client");
    }

    octx->client = cl;

    if (ngx_http_hpki_pstrdup(r, &ctx->id.sid, (char *) sid.data, sid.len)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_hpki_redis_command(r, ngx_http_hpki_oidc_logged_out, ctx,
                                     "EVAL %s 1 hpki:sid:%b",
                                     ngx_http_hpki_oidc_logout_script,
                                     ctx->id.sid.data, ctx->id.sid.len);

    return ngx_http_hpki_redis_wait(r, rc);
}


static void
ngx_http_hpki_oidc_logged_out(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_hpki_ctx_t  *ctx = data;

    json_t                    *body;
    ngx_int_t                  rc;
    ngx_str_t                  params[2];
    ngx_http_hpki_oidc_ctx_t  *octx;

    octx = ctx->data;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "hpki: redis: %*s", (size_t) reply->len,
                          reply->str);
        }

        ngx_http_hpki_unavailable(r);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: logout of session %V (client \"%V\"): %lld tokens "
                  "revoked", &ctx->id.sid, &octx->client->id,
                  reply->integer);

    if (octx->redirect_uri.len) {
        ngx_str_set(&params[0], "state");
        params[1] = octx->state;

        ngx_http_finalize_request(r, ngx_http_hpki_oidc_redirect(r,
                                  &octx->redirect_uri, params, 1));
        return;
    }

    body = json_pack("{s:b, s:I}", "logged_out", 1,
                     "revoked", (json_int_t) reply->integer);
    if (body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, body);
    json_decref(body);

    ngx_http_finalize_request(r, rc);
}
