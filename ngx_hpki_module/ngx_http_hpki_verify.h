/*
 * POST /hpki/verify: signature, chain, HPKI signing certificate with an
 * hcRole, and CRL, for the receiving side (ngx_http_hpki_inspect.h does
 * the work; this is the nginx side).
 */

#ifndef _NGX_HTTP_HPKI_VERIFY_H_INCLUDED_
#define _NGX_HTTP_HPKI_VERIFY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_hpki_inspect.h"


/* a member of ngx_http_hpki_loc_conf_t ("verify") */

typedef struct {
    ngx_flag_t                       enable;   /* hpki_verify */
    ngx_array_t                     *trust;    /* of ngx_str_t, full paths */
    ngx_array_t                     *crl;      /* of ngx_str_t, full paths */
    ngx_http_hpki_inspect_store_t   *store;    /* loaded at merge, shared */
} ngx_http_hpki_verify_conf_t;


void ngx_http_hpki_verify_create_conf(ngx_http_hpki_verify_conf_t *conf);
char *ngx_http_hpki_verify_merge_conf(ngx_conf_t *cf,
    ngx_http_hpki_verify_conf_t *prev, ngx_http_hpki_verify_conf_t *conf);

/* "hpki_verify": cmd->offset is the loc conf's ngx_http_hpki_verify_conf_t */
char *ngx_http_hpki_verify(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* "hpki_verify_trust FILE ..." and "hpki_verify_crl FILE ...": cmd->offset
 * is the ngx_array_t * to add the files' full paths to */
char *ngx_http_hpki_verify_files(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_hpki_verify_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_HPKI_VERIFY_H_INCLUDED_ */
