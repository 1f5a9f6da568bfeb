/*
 * JSON replies and the filter that turns every error in an HPKI location
 * into a JSON body.
 */

#ifndef _NGX_HTTP_HPKI_REPLY_H_INCLUDED_
#define _NGX_HTTP_HPKI_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>


#define NGX_HTTP_HPKI_BODY_MAX  65536


/* the stack buffer of an encoding: a signing reply with a chain fits */
#define NGX_HTTP_HPKI_JSON_GUESS  8192


ngx_int_t ngx_http_hpki_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_http_hpki_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description);
ngx_int_t ngx_http_hpki_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description);
ngx_int_t ngx_http_hpki_fail(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *description);
void ngx_http_hpki_unavailable(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_json_text(ngx_pool_t *pool, json_t *json,
    ngx_str_t *text);
ngx_int_t ngx_http_hpki_json_buf(ngx_http_request_t *r, json_t *body,
    ngx_buf_t **bp);
ngx_int_t ngx_http_hpki_read_body(ngx_http_request_t *r, void *data,
    ngx_http_client_body_handler_pt handler);
ngx_int_t ngx_http_hpki_request_body(ngx_http_request_t *r,
    ngx_str_t *text);
ngx_int_t ngx_http_hpki_reply_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_HPKI_REPLY_H_INCLUDED_ */
