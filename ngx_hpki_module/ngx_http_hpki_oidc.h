/*
 * OpenID Connect provider: clients, /hpki/authorize, /hpki/token,
 * /hpki/userinfo and /hpki/logout around the gateway's own logins.
 */

#ifndef _NGX_HTTP_HPKI_OIDC_H_INCLUDED_
#define _NGX_HTTP_HPKI_OIDC_H_INCLUDED_


#include "ngx_http_hpki_module.h"


char *ngx_http_hpki_oidc_clients(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_hpki_oidc_authorize(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_hpki_oidc_discovery(ngx_http_hpki_main_conf_t *hmcf,
    json_t *doc);

ngx_int_t ngx_http_hpki_oidc_authorize_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_oidc_resume(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_str_t *handle);
char *ngx_http_hpki_oidc_method_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_hpki_oidc_token_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_oidc_userinfo_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_oidc_logout_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_OIDC_H_INCLUDED_ */
