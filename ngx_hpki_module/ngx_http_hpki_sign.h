/*
 * Hash signing through hpki-signd, an nginx upstream (docs/protocol.md).
 */

#ifndef _NGX_HTTP_HPKI_SIGN_H_INCLUDED_
#define _NGX_HTTP_HPKI_SIGN_H_INCLUDED_


#include "ngx_http_hpki_module.h"


#define NGX_HTTP_HPKI_FRAME_MAX       65536
#define NGX_HTTP_HPKI_SIGN_HASHES     64      /* the protocol's limit */


ngx_int_t ngx_http_hpki_sign_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_SIGN_H_INCLUDED_ */
