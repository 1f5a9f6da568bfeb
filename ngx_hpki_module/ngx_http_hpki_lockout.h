/*
 * Per-subject lockout after repeated token misuse.
 */

#ifndef _NGX_HTTP_HPKI_LOCKOUT_H_INCLUDED_
#define _NGX_HTTP_HPKI_LOCKOUT_H_INCLUDED_


#include "ngx_http_hpki_module.h"
#include <hiredis/hiredis.h>


#define NGX_HTTP_HPKI_LOCKED                                                  \
    "the account is locked after repeated token misuse; ask the operator"


char *ngx_http_hpki_lockout_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_hpki_lockout_record(ngx_http_request_t *r,
    ngx_str_t *subject, const char *what);
ngx_int_t ngx_http_hpki_lockout_locked(ngx_http_request_t *r,
    redisReply *count);
ngx_int_t ngx_http_hpki_lockout_stored(ngx_http_request_t *r,
    redisReply *reply, ngx_str_t *subject);


#endif /* _NGX_HTTP_HPKI_LOCKOUT_H_INCLUDED_ */
