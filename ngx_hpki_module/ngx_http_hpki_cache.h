/*
 * A cache of verified tokens in shared memory, across workers.
 */

#ifndef _NGX_HTTP_HPKI_CACHE_H_INCLUDED_
#define _NGX_HTTP_HPKI_CACHE_H_INCLUDED_


#include "ngx_http_hpki_module.h"


#define NGX_HTTP_HPKI_CACHE_KEY_LEN  32          /* SHA-256 of the token */


char *ngx_http_hpki_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* NGX_OK: a fresh entry filled id; NGX_DECLINED: verify and ask Redis */
ngx_int_t ngx_http_hpki_cache_lookup(ngx_http_request_t *r, u_char *key,
    ngx_http_hpki_identity_t *id);

/* after Redis confirmed the token; failure to store is not an error */
void ngx_http_hpki_cache_store(ngx_http_request_t *r, u_char *key,
    ngx_http_hpki_identity_t *id, time_t exp);

void ngx_http_hpki_cache_delete(ngx_http_request_t *r, u_char *key);


#endif /* _NGX_HTTP_HPKI_CACHE_H_INCLUDED_ */
