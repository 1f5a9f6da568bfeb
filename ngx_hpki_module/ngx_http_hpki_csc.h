/*
 * The Cloud Signature Consortium API v2 (remote signing of hashes).
 */

#ifndef _NGX_HTTP_HPKI_CSC_H_INCLUDED_
#define _NGX_HTTP_HPKI_CSC_H_INCLUDED_


#include "ngx_http_hpki_module.h"


ngx_int_t ngx_http_hpki_csc_info_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_csc_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_CSC_H_INCLUDED_ */
