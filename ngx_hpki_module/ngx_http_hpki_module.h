/*
 * HPKI remote-signing gateway: shared configuration and request state.
 */

#ifndef _NGX_HTTP_HPKI_MODULE_H_INCLUDED_
#define _NGX_HTTP_HPKI_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hpki_jws.h"
#include "ngx_http_hpki_verify.h"
#include "ngx_http_hpki_fido.h"


#define NGX_HTTP_HPKI_TOKEN_MAX      8192
#define NGX_HTTP_HPKI_ID_MAX         64
#define NGX_HTTP_HPKI_MAX_KEYS       4


typedef struct {
    ngx_str_t                    redis;          /* "host:port", "unix:/p" */
    ngx_msec_t                   redis_timeout;

    ngx_http_hpki_jws_key_t      keys[NGX_HTTP_HPKI_MAX_KEYS];
    ngx_uint_t                   nkeys;          /* keys[0] signs */
    ngx_str_t                    issuer;
    ngx_str_t                    audience;
    time_t                       token_ttl;
    time_t                       leeway;

    void                        *cache;          /* hpki_token_cache */
    ngx_uint_t                   lockout_limit;  /* 0: off */
    time_t                       lockout_window;
    ngx_str_t                    jwks;           /* made at start */
    ngx_str_t                    discovery;
    void                        *oidc;           /* hpki_oidc_clients */

    ngx_int_t                    request_id_index;
    ngx_uint_t                   tokens_used;    /* unsigned:1 */
} ngx_http_hpki_main_conf_t;


#define NGX_HTTP_HPKI_AUTH_OFF       0
#define NGX_HTTP_HPKI_AUTH_ON        1
#define NGX_HTTP_HPKI_AUTH_OPTIONAL  2   /* checked only if presented */


typedef struct {
    ngx_uint_t                   auth;
    ngx_array_t                 *roles;          /* of ngx_str_t */
    ngx_http_complex_value_t    *login_url;      /* browsers: 302 not 401 */
    ngx_flag_t                   login_card;
    ngx_uint_t                   oidc_login;     /* hpki_oidc_authorize */
    ngx_str_t                    oidc_method_url[4];  /* by LOGIN_* */
    ngx_uint_t                   max_hashes;
    time_t                       sad_lifetime;   /* CSC */
    ngx_uint_t                   rate;           /* signatures per window */
    time_t                       rate_window;
    ngx_http_upstream_conf_t     upstream;
    ngx_http_hpki_verify_conf_t  verify;         /* hpki_verify* */
    ngx_http_hpki_fido_conf_t    fido;           /* hpki_fido* */
} ngx_http_hpki_loc_conf_t;


/* the caller as established by a token or a client certificate */

typedef struct {
    ngx_str_t                    subject;
    ngx_str_t                    name;           /* FIDO login's answer */
    ngx_str_t                    role;
    ngx_str_t                    auth_method;
    ngx_str_t                    token_id;
    ngx_str_t                    token;          /* raw bearer token */
    ngx_str_t                    scope;
    ngx_str_t                    cert_serial;
    ngx_str_t                    issuer;
    ngx_str_t                    x5t;            /* the card's, or cnf's */
    ngx_str_t                    sid;            /* OIDC login session */
    time_t                       expires;        /* the token's exp */
} ngx_http_hpki_identity_t;


typedef struct {
    ngx_http_hpki_identity_t     id;

    u_char                       token_key[32];   /* SHA-256 of the token */

    unsigned                     auth_done:1;     /* token check finished */
    unsigned                     auth_pending:1;  /* waiting for Redis */
    ngx_int_t                    auth_status;     /* NGX_OK or HTTP error */

    unsigned                     json_errors:1;   /* errors become JSON */
    unsigned                     own_reply:1;     /* a handler's answer */
    unsigned                     error_sent:1;
    unsigned                     redirect_json:1; /* answer {"redirect_to"} */
    ngx_buf_t                   *error_body;
    const char                  *error;           /* for the error filter */
    const char                  *error_description;

    void                        *login;           /* login in progress */
    void                        *data;            /* handler's own state */
} ngx_http_hpki_ctx_t;


ngx_http_hpki_ctx_t *ngx_http_hpki_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_pstrdup(ngx_http_request_t *r, ngx_str_t *dst,
    const char *src, size_t len);
ngx_int_t ngx_http_hpki_role_allowed(ngx_http_request_t *r,
    ngx_str_t *role);


extern ngx_module_t  ngx_http_hpki_module;


#endif /* _NGX_HTTP_HPKI_MODULE_H_INCLUDED_ */
