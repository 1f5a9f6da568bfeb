/*
 * Hash signing through hpki-signd, an nginx upstream (docs/protocol.md),
 * shared by the native API and the CSC API.
 */

#ifndef _NGX_HTTP_HPKI_SIGN_H_INCLUDED_
#define _NGX_HTTP_HPKI_SIGN_H_INCLUDED_


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_redis.h"
#include <jansson.h>


#define NGX_HTTP_HPKI_FRAME_MAX       65536
#define NGX_HTTP_HPKI_SIGN_HASHES     64      /* the protocol's limit */

/* the protocol's algorithm ids */
#define NGX_HTTP_HPKI_SHA256          1
#define NGX_HTTP_HPKI_SHA384          2
#define NGX_HTTP_HPKI_SHA512          3
#define NGX_HTTP_HPKI_PKCS1           1
#define NGX_HTTP_HPKI_PSS             2


typedef struct {
    const char                  *name;
    const char                  *oid;
    ngx_uint_t                   id;
    size_t                       len;
} ngx_http_hpki_alg_t;


typedef struct {
    ngx_buf_t                   *frame;
    ngx_uint_t                   nhashes;
    const char                  *hash_alg;
    ngx_uint_t                   csc;          /* unsigned:1 */
    ngx_chain_t                 *reply;
    size_t                       reply_frame;  /* its frame's size */
} ngx_http_hpki_sign_ctx_t;


extern ngx_http_hpki_alg_t  ngx_http_hpki_hash_algs[];


ngx_int_t ngx_http_hpki_sign_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_sign_allowed(ngx_http_request_t *r);
ngx_int_t ngx_http_hpki_json_body(ngx_http_request_t *r, json_t **body);
ngx_http_hpki_alg_t *ngx_http_hpki_find_alg(ngx_http_hpki_alg_t *algs,
    json_t *v, const char *dflt, ngx_uint_t by_oid);
ngx_int_t ngx_http_hpki_sign_digests(ngx_http_request_t *r, json_t *hashes,
    ngx_http_hpki_alg_t *hash_alg, ngx_array_t **digests);
ngx_int_t ngx_http_hpki_sign_prepare(ngx_http_request_t *r,
    ngx_http_hpki_alg_t *hash_alg, ngx_uint_t sig_alg, ngx_array_t *digests,
    ngx_uint_t csc);
ngx_int_t ngx_http_hpki_sign_rate_limit(ngx_http_request_t *r, ngx_uint_t n,
    ngx_http_hpki_redis_handler_pt handler);
ngx_int_t ngx_http_hpki_sign_rate_verdict(ngx_http_request_t *r,
    redisReply *reply);
void ngx_http_hpki_sign_start(ngx_http_request_t *r);
void ngx_http_hpki_sign_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_HPKI_SIGN_H_INCLUDED_ */
