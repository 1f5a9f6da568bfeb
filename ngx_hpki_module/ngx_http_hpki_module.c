/*
 * HPKI remote-signing gateway: directives, variables and wiring.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_redis.h"
#include "ngx_http_hpki_token.h"
#include "ngx_http_hpki_cache.h"
#include "ngx_http_hpki_oauth.h"
#include "ngx_http_hpki_csc.h"
#include "ngx_http_hpki_lockout.h"
#include "ngx_http_hpki_login.h"
#include "ngx_http_hpki_sign.h"
#include "ngx_http_hpki_oidc.h"


#define NGX_HTTP_HPKI_SIGN_BUFFER  (NGX_HTTP_HPKI_FRAME_MAX + 4)


static ngx_int_t ngx_http_hpki_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_hpki_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void *ngx_http_hpki_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_hpki_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_hpki_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_hpki_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_hpki_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hpki_token_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_hpki_free_keys(void *data);
static char *ngx_http_hpki_login_card(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hpki_sign_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hpki_sign_rate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_hpki_set_handler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_hpki_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_hpki_init_process(ngx_cycle_t *cycle);
static void ngx_http_hpki_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_hpki_auth_values[] = {
    { ngx_string("off"), NGX_HTTP_HPKI_AUTH_OFF },
    { ngx_string("on"), NGX_HTTP_HPKI_AUTH_ON },
    { ngx_string("optional"), NGX_HTTP_HPKI_AUTH_OPTIONAL },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_hpki_commands[] = {

    { ngx_string("hpki_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_hpki_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hpki_main_conf_t, redis),
      NULL },

    { ngx_string("hpki_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hpki_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("hpki_token_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_hpki_token_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_token_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_hpki_cache_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_lockout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_hpki_lockout_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_token_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hpki_main_conf_t, issuer),
      NULL },

    { ngx_string("hpki_token_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hpki_main_conf_t, audience),
      NULL },

    { ngx_string("hpki_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hpki_main_conf_t, token_ttl),
      NULL },

    { ngx_string("hpki_token_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_hpki_main_conf_t, leeway),
      NULL },

    { ngx_string("hpki_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, auth),
      &ngx_http_hpki_auth_values },

    { ngx_string("hpki_auth_login_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, login_url),
      NULL },

    { ngx_string("hpki_roles"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_str_array_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, roles),
      NULL },

    { ngx_string("hpki_login_card"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_login_card,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_login_card_handler },

    { ngx_string("hpki_login_jpki"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_login_card,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_login_jpki_handler },

    { ngx_string("hpki_cert_error"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_cert_error_handler },

    { ngx_string("hpki_whoami"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_whoami_handler },

    { ngx_string("hpki_jwks"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_jwks_handler },

    { ngx_string("hpki_discovery"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_discovery_handler },

    { ngx_string("hpki_introspect"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_introspect_handler },

    { ngx_string("hpki_revoke"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_revoke_handler },

    { ngx_string("hpki_oidc_clients"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_hpki_oidc_clients,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_oidc_authorize"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_hpki_oidc_authorize,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_oidc_method_url"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_hpki_oidc_method_url,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_oidc_token"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_oidc_token_handler },

    { ngx_string("hpki_oidc_userinfo"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_oidc_userinfo_handler },

    { ngx_string("hpki_oidc_logout"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_oidc_logout_handler },

    { ngx_string("hpki_sign_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_hpki_sign_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_sign_handler },

    { ngx_string("hpki_csc_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_hpki_sign_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_csc_handler },

    { ngx_string("hpki_csc_sad_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, sad_lifetime),
      NULL },

    { ngx_string("hpki_csc_info"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_set_handler,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_hpki_csc_info_handler },

    { ngx_string("hpki_sign_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, upstream.connect_timeout),
      NULL },

    { ngx_string("hpki_sign_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, upstream.read_timeout),
      NULL },

    { ngx_string("hpki_sign_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_hpki_sign_rate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_verify"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_hpki_verify,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, verify),
      NULL },

    { ngx_string("hpki_verify_trust"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_hpki_verify_files,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, verify.trust),
      NULL },

    { ngx_string("hpki_verify_crl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_hpki_verify_files,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, verify.crl),
      NULL },

    { ngx_string("hpki_sign_max_hashes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, max_hashes),
      NULL },

    { ngx_string("hpki_fido"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_hpki_fido,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_fido_rp_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, fido.rp_id),
      NULL },

    { ngx_string("hpki_fido_rp_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, fido.rp_name),
      NULL },

    { ngx_string("hpki_fido_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_hpki_fido_origin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("hpki_fido_user_verification"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, fido.uv),
      &ngx_http_hpki_fido_uv_values },

    { ngx_string("hpki_fido_attestation"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, fido.attestation),
      &ngx_http_hpki_fido_attestation_values },

    { ngx_string("hpki_fido_challenge_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_hpki_loc_conf_t, fido.challenge_ttl),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_hpki_module_ctx = {
    ngx_http_hpki_add_variables,           /* preconfiguration */
    ngx_http_hpki_init,                    /* postconfiguration */

    ngx_http_hpki_create_main_conf,        /* create main configuration */
    ngx_http_hpki_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_hpki_create_loc_conf,         /* create location configuration */
    ngx_http_hpki_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_hpki_module = {
    NGX_MODULE_V1,
    &ngx_http_hpki_module_ctx,             /* module context */
    ngx_http_hpki_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_hpki_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_hpki_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_hpki_vars[] = {

    { ngx_string("hpki_subject"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, subject), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("hpki_role"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, role), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hpki_auth_method"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, auth_method),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hpki_token_id"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, token_id), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("hpki_scope"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, scope), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("hpki_cert_serial"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, cert_serial),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("hpki_issuer"), NULL, ngx_http_hpki_variable,
      offsetof(ngx_http_hpki_identity_t, issuer), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

      ngx_http_null_variable
};


ngx_http_hpki_ctx_t *
ngx_http_hpki_get_ctx(ngx_http_request_t *r)
{
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_hpki_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        /* from here on, every error of this request is answered in JSON */
        ctx->json_errors = 1;

        ngx_http_set_ctx(r, ctx, ngx_http_hpki_module);
    }

    return ctx;
}


ngx_int_t
ngx_http_hpki_pstrdup(ngx_http_request_t *r, ngx_str_t *dst,
    const char *src, size_t len)
{
    dst->data = ngx_pnalloc(r->pool, len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->data[len] = '\0';
    dst->len = len;

    return NGX_OK;
}


/* roles are compared exactly, as HPKI writes them ("Medical Doctor") */

ngx_int_t
ngx_http_hpki_role_allowed(ngx_http_request_t *r, ngx_str_t *role)
{
    ngx_str_t                 *allowed;
    ngx_uint_t                 i;
    ngx_http_hpki_loc_conf_t  *hlcf;

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    if (hlcf->roles == NULL) {
        return 1;
    }

    allowed = hlcf->roles->elts;

    for (i = 0; i < hlcf->roles->nelts; i++) {
        if (allowed[i].len == role->len
            && ngx_strncmp(allowed[i].data, role->data, role->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_hpki_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_hpki_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_hpki_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t            *s;
    ngx_http_hpki_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_hpki_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) &ctx->id + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static void *
ngx_http_hpki_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hpki_main_conf_t));
    if (hmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     hmcf->redis = { 0, NULL };
     *     hmcf->issuer = { 0, NULL };
     *     hmcf->audience = { 0, NULL };
     *     hmcf->nkeys = 0;
     */

    hmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    hmcf->token_ttl = NGX_CONF_UNSET;
    hmcf->leeway = NGX_CONF_UNSET;

    return hmcf;
}


static char *
ngx_http_hpki_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_hpki_main_conf_t  *hmcf = conf;

    ngx_str_t  name = ngx_string("request_id");

    ngx_conf_init_msec_value(hmcf->redis_timeout, 1000);
    ngx_conf_init_value(hmcf->token_ttl, 18 * 60 * 60);
    ngx_conf_init_value(hmcf->leeway, 60);

    hmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (hmcf->request_id_index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_hpki_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_hpki_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_hpki_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->upstream.bufs.num = 0;
     *     conf->upstream.next_upstream = 0;
     *     conf->upstream.temp_path = NULL;
     */

    conf->auth = NGX_CONF_UNSET_UINT;
    conf->roles = NGX_CONF_UNSET_PTR;
    conf->login_url = NGX_CONF_UNSET_PTR;
    conf->login_card = NGX_CONF_UNSET;
    conf->max_hashes = NGX_CONF_UNSET_UINT;
    conf->rate = NGX_CONF_UNSET_UINT;
    conf->sad_lifetime = NGX_CONF_UNSET;

    ngx_http_hpki_verify_create_conf(&conf->verify);
    ngx_http_hpki_fido_create_conf(&conf->fido);

    conf->upstream.local = NGX_CONF_UNSET_PTR;
    conf->upstream.socket_keepalive = NGX_CONF_UNSET;
    conf->upstream.next_upstream_tries = NGX_CONF_UNSET_UINT;
    conf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.send_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.read_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.next_upstream_timeout = NGX_CONF_UNSET_MSEC;

    /* the hardcoded values: one frame in, one frame out, in memory */

    conf->upstream.buffer_size = NGX_HTTP_HPKI_SIGN_BUFFER;
    conf->upstream.cyclic_temp_file = 0;
    conf->upstream.buffering = 0;
    conf->upstream.ignore_client_abort = 0;
    conf->upstream.send_lowat = 0;
    conf->upstream.bufs.num = 0;
    conf->upstream.busy_buffers_size = 0;
    conf->upstream.max_temp_file_size = 0;
    conf->upstream.temp_file_write_size = 0;
    conf->upstream.intercept_errors = 1;
    conf->upstream.intercept_404 = 1;
    conf->upstream.pass_request_headers = 0;
    conf->upstream.pass_request_body = 0;
    conf->upstream.force_ranges = 1;

    return conf;
}


static char *
ngx_http_hpki_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_hpki_loc_conf_t *prev = parent;
    ngx_http_hpki_loc_conf_t *conf = child;

    ngx_http_hpki_main_conf_t  *hmcf;

    /* registering a device: a card-login token may stand in for a code */

    if (conf->auth == NGX_CONF_UNSET_UINT
        && (conf->fido.op == NGX_HTTP_HPKI_FIDO_REGISTER_OPTIONS
            || conf->fido.op == NGX_HTTP_HPKI_FIDO_REGISTER))
    {
        conf->auth = NGX_HTTP_HPKI_AUTH_OPTIONAL;
    }

    ngx_conf_merge_uint_value(conf->auth, prev->auth,
                              NGX_HTTP_HPKI_AUTH_OFF);
    ngx_conf_merge_ptr_value(conf->roles, prev->roles, NULL);
    ngx_conf_merge_ptr_value(conf->login_url, prev->login_url, NULL);
    ngx_conf_merge_value(conf->login_card, prev->login_card, 0);

    if (conf->auth || conf->login_card || conf->fido.op) {
        hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hpki_module);
        hmcf->tokens_used = 1;
    }

    if (conf->upstream.upstream && conf->auth != NGX_HTTP_HPKI_AUTH_ON) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hpki_sign_pass and hpki_csc_pass need "
                           "\"hpki_auth on\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_hpki_fido_merge_conf(cf, &prev->fido, &conf->fido)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->max_hashes, prev->max_hashes, 32);
    ngx_conf_merge_value(conf->sad_lifetime, prev->sad_lifetime, 300);

    if (conf->rate == NGX_CONF_UNSET_UINT) {
        conf->rate = (prev->rate == NGX_CONF_UNSET_UINT) ? 0 : prev->rate;
        conf->rate_window = prev->rate_window;
    }

    if (conf->max_hashes == 0
        || conf->max_hashes > NGX_HTTP_HPKI_SIGN_HASHES)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hpki_sign_max_hashes must be 1 to %d",
                           NGX_HTTP_HPKI_SIGN_HASHES);
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_ptr_value(conf->upstream.local, prev->upstream.local,
                             NULL);
    ngx_conf_merge_value(conf->upstream.socket_keepalive,
                         prev->upstream.socket_keepalive, 0);
    ngx_conf_merge_msec_value(conf->upstream.connect_timeout,
                              prev->upstream.connect_timeout, 1000);
    ngx_conf_merge_msec_value(conf->upstream.read_timeout,
                              prev->upstream.read_timeout, 10000);

    conf->upstream.send_timeout = conf->upstream.read_timeout;

    /* a sign that may have reached hpki-signd is never sent again */

    conf->upstream.next_upstream = NGX_CONF_BITMASK_SET
                                   |NGX_HTTP_UPSTREAM_FT_ERROR;
    conf->upstream.next_upstream_tries = 0;
    conf->upstream.next_upstream_timeout = 0;

    if (conf->upstream.upstream == NULL) {
        conf->upstream.upstream = prev->upstream.upstream;
    }

    if (ngx_http_hpki_verify_merge_conf(cf, &prev->verify, &conf->verify)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_hpki_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_main_conf_t  *hmcf = conf;

    ngx_str_t  *value;

    if (hmcf->redis.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    hmcf->redis = value[1];

    return ngx_http_hpki_redis_parse_addr(cf, &hmcf->redis);
}


static char *
ngx_http_hpki_token_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_main_conf_t  *hmcf = conf;

    char                 *kid;
    ngx_str_t            *value, path;
    ngx_pool_cleanup_t   *cln;

    value = cf->args->elts;

    if (hmcf->nkeys == NGX_HTTP_HPKI_MAX_KEYS) {
        return "is given too many times";
    }

    kid = "";

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "kid=", 4) != 0
            || value[2].len < 5 || value[2].len - 4 >= 64)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        kid = (char *) value[2].data + 4;
    }

    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (hmcf->nkeys == 0) {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_hpki_free_keys;
        cln->data = hmcf;
    }

    /* parsed once here; requests only use the loaded key */

    if (ngx_http_hpki_jws_key_load(&hmcf->keys[hmcf->nkeys],
                                   (char *) path.data, kid)
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot load token key \"%V\"", &path);
        return NGX_CONF_ERROR;
    }

    hmcf->nkeys++;

    return NGX_CONF_OK;
}


static void
ngx_http_hpki_free_keys(void *data)
{
    ngx_http_hpki_main_conf_t  *hmcf = data;

    ngx_uint_t  i;

    for (i = 0; i < hmcf->nkeys; i++) {
        ngx_http_hpki_jws_key_free(&hmcf->keys[i]);
    }
}


static char *
ngx_http_hpki_login_card(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (hlcf->login_card != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    hlcf->login_card = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (ngx_http_handler_pt) cmd->post;

    return NGX_CONF_OK;
}


/* "hpki_sign_rate 600r/m": signatures per user per minute (or "r/s") */

static char *
ngx_http_hpki_sign_rate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    u_char     *p;
    size_t      len;
    ngx_int_t   rate;
    ngx_str_t  *value;

    if (hlcf->rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        hlcf->rate = 0;
        return NGX_CONF_OK;
    }

    len = value[1].len;
    p = value[1].data + len - 3;

    if (len > 3 && ngx_strncmp(p, "r/s", 3) == 0) {
        hlcf->rate_window = 1;

    } else if (len > 3 && ngx_strncmp(p, "r/m", 3) == 0) {
        hlcf->rate_window = 60;

    } else {
        return "must be N r/s or N r/m, e.g. \"600r/m\"";
    }

    rate = ngx_atoi(value[1].data, len - 3);

    if (rate == NGX_ERROR || rate == 0) {
        return "must be N r/s or N r/m, e.g. \"600r/m\"";
    }

    hlcf->rate = rate;

    return NGX_CONF_OK;
}


/* a content handler directive: cmd->post is the handler */

static char *
ngx_http_hpki_set_handler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate, or the location has another handler";
    }

    clcf->handler = (ngx_http_handler_pt) cmd->post;

    return NGX_CONF_OK;
}


static char *
ngx_http_hpki_sign_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_loc_conf_t  *hlcf = conf;

    ngx_str_t                 *value;
    ngx_url_t                  u;
    ngx_http_core_loc_conf_t  *clcf;

    if (hlcf->upstream.upstream) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.no_resolve = 1;

    hlcf->upstream.upstream = ngx_http_upstream_add(cf, &u, 0);
    if (hlcf->upstream.upstream == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = (ngx_http_handler_pt) cmd->post;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_hpki_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_hpki_module);

    if (hmcf->oidc) {
        hmcf->tokens_used = 1;
    }

    if (hmcf->tokens_used
        && (hmcf->nkeys == 0 || hmcf->issuer.len == 0
            || hmcf->audience.len == 0 || hmcf->redis.len == 0))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "hpki: tokens are used, so \"hpki_token_key\", "
                      "\"hpki_token_issuer\", \"hpki_token_audience\" and "
                      "\"hpki_redis\" must be set in the http block");
        return NGX_ERROR;
    }

    if (ngx_http_hpki_oauth_init(cf, hmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_hpki_auth_handler;

    return ngx_http_hpki_reply_init(cf);
}


static ngx_int_t
ngx_http_hpki_init_process(ngx_cycle_t *cycle)
{
    return ngx_http_hpki_redis_init_process(cycle);
}


static void
ngx_http_hpki_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_hpki_sign_exit_process(cycle);
    ngx_http_hpki_redis_exit_process(cycle);
}
