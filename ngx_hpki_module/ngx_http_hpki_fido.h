/*
 * Smartphone binding and FIDO (WebAuthn) login.
 */

#ifndef _NGX_HTTP_HPKI_FIDO_H_INCLUDED_
#define _NGX_HTTP_HPKI_FIDO_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_HPKI_FIDO_REGISTER_OPTIONS  1    /* hpki_fido ... */
#define NGX_HTTP_HPKI_FIDO_REGISTER          2
#define NGX_HTTP_HPKI_FIDO_LOGIN_OPTIONS     3
#define NGX_HTTP_HPKI_FIDO_LOGIN             4

#define NGX_HTTP_HPKI_FIDO_UV_REQUIRED     0
#define NGX_HTTP_HPKI_FIDO_UV_PREFERRED    1
#define NGX_HTTP_HPKI_FIDO_UV_DISCOURAGED  2


typedef struct {
    ngx_uint_t                   op;              /* hpki_fido, not merged */
    ngx_str_t                    rp_id;
    ngx_str_t                    rp_name;
    ngx_array_t                 *origins;         /* of ngx_str_t */
    ngx_uint_t                   uv;
    ngx_uint_t                   attestation;     /* ask for "direct" */
    time_t                       challenge_ttl;
} ngx_http_hpki_fido_conf_t;


void ngx_http_hpki_fido_create_conf(ngx_http_hpki_fido_conf_t *conf);
char *ngx_http_hpki_fido_merge_conf(ngx_conf_t *cf,
    ngx_http_hpki_fido_conf_t *prev, ngx_http_hpki_fido_conf_t *conf);
char *ngx_http_hpki_fido(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_hpki_fido_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


extern ngx_conf_enum_t  ngx_http_hpki_fido_uv_values[];
extern ngx_conf_enum_t  ngx_http_hpki_fido_attestation_values[];


#endif /* _NGX_HTTP_HPKI_FIDO_H_INCLUDED_ */
