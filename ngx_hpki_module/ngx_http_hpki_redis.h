/*
 * Redis through hiredis' async API on nginx's event loop.
 */

#ifndef _NGX_HTTP_HPKI_REDIS_H_INCLUDED_
#define _NGX_HTTP_HPKI_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <hiredis/hiredis.h>


/*
 * Called exactly once per accepted command, never from inside
 * ngx_http_hpki_redis_command().  reply is NULL when Redis failed, was
 * disconnected or did not answer within hpki_redis_timeout.
 */
typedef void (*ngx_http_hpki_redis_handler_pt)(ngx_http_request_t *r,
    void *data, redisReply *reply);


/*
 * NGX_OK: the command is queued and the handler will run.
 * NGX_DECLINED: Redis is not connected; answer 503 at once.
 * NGX_ERROR: out of memory.
 */
ngx_int_t ngx_http_hpki_redis_command(ngx_http_request_t *r,
    ngx_http_hpki_redis_handler_pt handler, void *data, const char *format,
    ...);

/*
 * A GET's reply: NGX_OK with the string, NGX_DECLINED for nil (no such
 * key), NGX_ERROR for no reply, an error or another type (logged): the
 * store is broken, and the caller fails closed with 503.
 */
/*
 * A content handler's answer once it has asked Redis: NGX_DONE (the request
 * waits for the command's handler), or the status to answer now: 503 when
 * Redis is not connected, 500 when out of memory.
 */
ngx_int_t ngx_http_hpki_redis_wait(ngx_http_request_t *r, ngx_int_t rc);

ngx_int_t ngx_http_hpki_redis_string(ngx_http_request_t *r,
    redisReply *reply, ngx_str_t *value);

char *ngx_http_hpki_redis_parse_addr(ngx_conf_t *cf, ngx_str_t *addr);
ngx_int_t ngx_http_hpki_redis_init_process(ngx_cycle_t *cycle);
void ngx_http_hpki_redis_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_HPKI_REDIS_H_INCLUDED_ */
