/*
 * Access tokens: issuing them and checking them on protected locations.
 */

#ifndef _NGX_HTTP_HPKI_TOKEN_H_INCLUDED_
#define _NGX_HTTP_HPKI_TOKEN_H_INCLUDED_


#include "ngx_http_hpki_module.h"


ngx_int_t ngx_http_hpki_auth_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_whoami_handler(ngx_http_request_t *r);
ngx_http_hpki_ctx_t *ngx_http_hpki_token_caller(ngx_http_request_t *r,
    const char *handler);
ngx_int_t ngx_http_hpki_token_verify(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_hpki_identity_t *id, json_t **claims, const char **err);
ngx_int_t ngx_http_hpki_token_issue(ngx_http_request_t *r,
    ngx_http_hpki_identity_t *id, ngx_str_t *token);
ngx_int_t ngx_http_hpki_token_has_scope(ngx_http_hpki_identity_t *id,
    const char *scope);


#endif /* _NGX_HTTP_HPKI_TOKEN_H_INCLUDED_ */
