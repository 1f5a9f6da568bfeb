/*
 * OAuth endpoints around the gateway's tokens: JWKS, discovery,
 * introspection (RFC 7662) and revocation (RFC 7009).
 */

#ifndef _NGX_HTTP_HPKI_OAUTH_H_INCLUDED_
#define _NGX_HTTP_HPKI_OAUTH_H_INCLUDED_


#include "ngx_http_hpki_module.h"


ngx_int_t ngx_http_hpki_oauth_init(ngx_conf_t *cf,
    ngx_http_hpki_main_conf_t *hmcf);
ngx_int_t ngx_http_hpki_jwks_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_discovery_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_introspect_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_revoke_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_OAUTH_H_INCLUDED_ */
