/*
 * POST /hpki/verify.  CPU only and synchronous: the body is parsed, the
 * signature checked with the certificate's key and the certificate against
 * the trust store loaded at configuration time (hpki_verify_trust,
 * hpki_verify_crl).  No Redis, no sidecar, no file read per request.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_reply.h"
#include "ngx_http_hpki_verify.h"


static void ngx_http_hpki_verify_body(ngx_http_request_t *r);
static ngx_http_hpki_inspect_store_t *ngx_http_hpki_verify_load(
    ngx_conf_t *cf, ngx_http_hpki_verify_conf_t *conf);
static void ngx_http_hpki_verify_cleanup(void *data);


ngx_int_t
ngx_http_hpki_verify_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_http_hpki_ctx_t  *ctx;

    /* from here on, errors are JSON, a 405 included */

    ctx = ngx_http_hpki_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_HPKI_BODY_MAX) {
        return ngx_http_hpki_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "invalid_request",
                                   "the body is larger than 64 KiB");
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_hpki_verify_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_hpki_verify_body(ngx_http_request_t *r)
{
    int                            rc;
    json_t                        *answer;
    ngx_int_t                      nrc;
    ngx_str_t                      text;
    const char                    *err, *role;
    ngx_http_hpki_loc_conf_t      *hlcf;
    ngx_http_hpki_inspect_req_t    req;

    nrc = ngx_http_hpki_request_body(r, &text);

    if (nrc != NGX_OK) {
        ngx_http_finalize_request(r, nrc);
        return;
    }

    err = NULL;

    rc = ngx_http_hpki_inspect_parse((char *) text.data, text.len, &req,
                                     &err);

    if (rc == NGX_HTTP_HPKI_INSPECT_NOMEM) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc != 0) {
        ngx_http_finalize_request(r, ngx_http_hpki_fail(r,
                                  NGX_HTTP_BAD_REQUEST, "invalid_request",
                                  err));
        return;
    }

    hlcf = ngx_http_get_module_loc_conf(r, ngx_http_hpki_module);

    answer = ngx_http_hpki_inspect_verify(hlcf->verify.store, &req,
                                          ngx_time());

    ngx_http_hpki_inspect_req_free(&req);

    if (answer == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* who signed, not what: the digest is never logged */

    role = json_string_value(json_object_get(answer, "role"));

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "hpki: verify valid=%s role=\"%s\" serial=%s chain=\"%s\" "
                  "revocation=%s",
                  json_is_true(json_object_get(answer, "valid"))
                  ? "true" : "false",
                  role ? role : "-",
                  json_string_value(json_object_get(answer, "serial")),
                  json_string_value(json_object_get(answer, "chain")),
                  json_string_value(json_object_get(answer, "revocation")));

    nrc = ngx_http_hpki_send_json(r, NGX_HTTP_OK, answer);

    json_decref(answer);

    ngx_http_finalize_request(r, nrc);
}


/* configuration */

void
ngx_http_hpki_verify_create_conf(ngx_http_hpki_verify_conf_t *conf)
{
    conf->enable = NGX_CONF_UNSET;
    conf->trust = NGX_CONF_UNSET_PTR;
    conf->crl = NGX_CONF_UNSET_PTR;
    conf->store = NULL;
}


/*
 * The store is loaded once per distinct set of files: locations that
 * inherit hpki_verify_trust and hpki_verify_crl from the same server or
 * http block share the store of that block, loaded when the first of them
 * is merged.
 */

char *
ngx_http_hpki_verify_merge_conf(ngx_conf_t *cf,
    ngx_http_hpki_verify_conf_t *prev, ngx_http_hpki_verify_conf_t *conf)
{
    ngx_uint_t  inherited;

    /* the content handler itself is not inherited */

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = 0;
    }

    inherited = (conf->trust == NGX_CONF_UNSET_PTR
                 && conf->crl == NGX_CONF_UNSET_PTR);

    ngx_conf_merge_ptr_value(conf->trust, prev->trust, NULL);
    ngx_conf_merge_ptr_value(conf->crl, prev->crl, NULL);

    if (inherited) {
        conf->store = prev->store;
    }

    if (!conf->enable || conf->store) {
        return NGX_CONF_OK;
    }

    if (conf->trust == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"hpki_verify\" needs \"hpki_verify_trust\"");
        return NGX_CONF_ERROR;
    }

    if (inherited) {
        prev->store = ngx_http_hpki_verify_load(cf, prev);
        conf->store = prev->store;

    } else {
        conf->store = ngx_http_hpki_verify_load(cf, conf);
    }

    return conf->store ? NGX_CONF_OK : NGX_CONF_ERROR;
}


static ngx_http_hpki_inspect_store_t *
ngx_http_hpki_verify_load(ngx_conf_t *cf, ngx_http_hpki_verify_conf_t *conf)
{
    char                            err[NGX_MAX_ERROR_STR];
    size_t                          anchors, intermediates, crls;
    ngx_str_t                      *s;
    ngx_uint_t                      i, n, ncrl;
    const char                    **files, **crl_files;
    ngx_pool_cleanup_t             *cln;
    ngx_http_hpki_inspect_store_t  *st;

    n = conf->trust->nelts;
    ncrl = conf->crl ? conf->crl->nelts : 0;

    files = ngx_palloc(cf->temp_pool, (n + ncrl + 1) * sizeof(char *));
    if (files == NULL) {
        return NULL;
    }

    crl_files = files + n;

    s = conf->trust->elts;

    for (i = 0; i < n; i++) {
        files[i] = (const char *) s[i].data;
    }

    s = conf->crl ? conf->crl->elts : NULL;

    for (i = 0; i < ncrl; i++) {
        crl_files[i] = (const char *) s[i].data;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    st = ngx_http_hpki_inspect_store_load(files, n, crl_files, ncrl, err,
                                          sizeof(err));
    if (st == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "hpki_verify: %s",
                           err);
        return NULL;
    }

    cln->handler = ngx_http_hpki_verify_cleanup;
    cln->data = st;

    ngx_http_hpki_inspect_store_count(st, &anchors, &intermediates, &crls);

    if (anchors == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hpki_verify_trust: no self-signed root among "
                           "the certificates: nothing could verify");
        return NULL;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "hpki verify store: %uz anchors, %uz intermediates, "
                   "%uz CRLs", anchors, intermediates, crls);

    return st;
}


static void
ngx_http_hpki_verify_cleanup(void *data)
{
    ngx_http_hpki_inspect_store_free(data);
}


char *
ngx_http_hpki_verify(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_verify_conf_t  *vcf;
    ngx_http_core_loc_conf_t     *clcf;

    vcf = (ngx_http_hpki_verify_conf_t *) ((char *) conf + cmd->offset);

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (vcf->enable != NGX_CONF_UNSET || clcf->handler) {
        return "is duplicate, or the location has another handler";
    }

    vcf->enable = 1;
    clcf->handler = ngx_http_hpki_verify_handler;

    return NGX_CONF_OK;
}


char *
ngx_http_hpki_verify_files(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t     *value, *s;
    ngx_uint_t     i;
    ngx_array_t  **a;

    a = (ngx_array_t **) ((char *) conf + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];

        /* NUL-terminated, as the C core wants it */

        if (ngx_conf_full_name(cf->cycle, s, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
