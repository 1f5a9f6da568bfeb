/*
 * Logins that end in an access token.
 */

#ifndef _NGX_HTTP_HPKI_LOGIN_H_INCLUDED_
#define _NGX_HTTP_HPKI_LOGIN_H_INCLUDED_


#include "ngx_http_hpki_module.h"


#define NGX_HTTP_HPKI_LOGIN_CARD  1
#define NGX_HTTP_HPKI_LOGIN_JPKI  2
#define NGX_HTTP_HPKI_LOGIN_FIDO  3


/* rc: NGX_OK (ctx->id is the person) or an HTTP status, error, desc */
typedef void (*ngx_http_hpki_login_done_pt)(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx, ngx_int_t rc, const char *error,
    const char *desc);


ngx_int_t ngx_http_hpki_login_authenticate(ngx_http_request_t *r,
    ngx_uint_t method, ngx_http_hpki_login_done_pt done, const char **error,
    const char **desc);
void ngx_http_hpki_login_issue(ngx_http_request_t *r,
    ngx_http_hpki_ctx_t *ctx);
ngx_int_t ngx_http_hpki_login_card_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_login_jpki_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_cert_error_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_LOGIN_H_INCLUDED_ */
