/*
 * Logins that end in an access token.
 */

#ifndef _NGX_HTTP_HPKI_LOGIN_H_INCLUDED_
#define _NGX_HTTP_HPKI_LOGIN_H_INCLUDED_


#include "ngx_http_hpki_module.h"


ngx_int_t ngx_http_hpki_login_card_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_login_jpki_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_cert_error_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_LOGIN_H_INCLUDED_ */
