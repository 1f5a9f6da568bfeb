/*
 * libFuzzer target: ngx_http_hpki_csc_parse() (ngx_http_hpki_csc_request.c),
 * the CSC API v2 request bodies as POST /csc/v2/<method> reads them.  Every
 * input is given to all four methods (credentials/list, credentials/info,
 * credentials/authorize, signatures/signHash) with hpki_sign_max_hashes at
 * its default (32), and to authorize and signHash again at its maximum (64).
 * "now" is fixed, so a SAD "<expiry>.<random>" expires before 1700000000.
 *
 * Checks beyond "no crash": a refusal is a 400 with "invalid_request" and a
 * description and leaves nothing behind, or a 413 only above 64 KiB; an
 * acceptance has every field within its documented limits, and each digest
 * is what its base64 text says.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ngx_http_hpki_csc_request.h"


#define FUZZ_NOW  1700000000


static void
fuzz_check_refusal(int rc, size_t size, ngx_http_hpki_csc_req_t *req)
{
    if (rc == NGX_HTTP_HPKI_CSC_TOO_LARGE) {
        if (size <= NGX_HTTP_HPKI_CSC_BODY_MAX) {
            abort();
        }

    } else if (rc == NGX_HTTP_HPKI_CSC_BAD) {
        if (req->error == NULL || strcmp(req->error, "invalid_request") != 0
            || req->error_description == NULL
            || req->error_description[0] == '\0')
        {
            abort();
        }

    } else {
        /* NOMEM, or anything else: not at these sizes */
        abort();
    }

    if (req->body != NULL || req->hash_list != NULL
        || req->credential_id != NULL || req->hash_alg != NULL
        || req->ndigests != 0 || req->sad != NULL)
    {
        abort();
    }
}


/* the digests, their base64 text in hash_list, the hash algorithm */

static void
fuzz_check_digests(ngx_http_hpki_csc_req_t *req, size_t max_hashes)
{
    size_t          i, enc, exact;
    const char     *text;
    unsigned char   b64[NGX_HTTP_HPKI_CSC_DIGEST_MAX * 2];

    if (req->hash_alg == NULL) {
        abort();
    }

    if (!((req->hash_alg->id == NGX_HTTP_HPKI_CSC_SHA256
           && req->hash_alg->len == 32)
          || (req->hash_alg->id == NGX_HTTP_HPKI_CSC_SHA384
              && req->hash_alg->len == 48)
          || (req->hash_alg->id == NGX_HTTP_HPKI_CSC_SHA512
              && req->hash_alg->len == 64)))
    {
        abort();
    }

    if (req->ndigests == 0 || req->ndigests > max_hashes) {
        abort();
    }

    /* "h1 h2 ...": each exactly the base64 length of a digest */

    enc = (req->hash_alg->len + 2) / 3 * 4;

    if (req->hash_list == NULL
        || req->hash_list_len != req->ndigests * (enc + 1) - 1
        || strlen(req->hash_list) != req->hash_list_len)
    {
        abort();
    }

    /* the characters that carry only digest bits are the canonical ones */

    exact = req->hash_alg->len * 8 / 6;

    for (i = 0; i < req->ndigests; i++) {
        text = req->hash_list + i * (enc + 1);

        if (i > 0 && text[-1] != ' ') {
            abort();
        }

        if (EVP_EncodeBlock(b64, req->digests[i], (int) req->hash_alg->len)
            != (int) enc
            || memcmp(b64, text, exact) != 0)
        {
            abort();
        }
    }
}


static void
fuzz_check_acceptance(int method, ngx_http_hpki_csc_req_t *req,
    size_t max_hashes)
{
    const char  *dot, *p;

    if (req->method != method || !json_is_object(req->body)
        || req->error != NULL || req->error_description != NULL)
    {
        abort();
    }

    switch (method) {

    case NGX_HTTP_HPKI_CSC_LIST:
    case NGX_HTTP_HPKI_CSC_INFO:
        if ((method == NGX_HTTP_HPKI_CSC_LIST) != (req->credential_id == NULL)
            || req->certificates < NGX_HTTP_HPKI_CSC_CERTS_NONE
            || req->certificates > NGX_HTTP_HPKI_CSC_CERTS_CHAIN
            || (req->cert_info != 0 && req->cert_info != 1)
            || (req->credential_info != 0 && req->credential_info != 1))
        {
            abort();
        }

        if (req->credential_id
            && strcmp(req->credential_id,
                      json_string_value(json_object_get(req->body,
                                                        "credentialID")))
               != 0)
        {
            abort();
        }

        if (req->hash_list != NULL || req->ndigests != 0) {
            abort();
        }

        break;

    case NGX_HTTP_HPKI_CSC_AUTHORIZE:
        if (req->credential_id == NULL || req->num_signatures < 1
            || req->num_signatures > (json_int_t) max_hashes
            || req->hash_list == NULL)
        {
            abort();
        }

        if (req->hash_alg == NULL) {
            if (req->ndigests != 0 || req->hash_list_len != 0
                || req->hash_list[0] != '\0'
                || json_object_get(req->body, "hashes") != NULL)
            {
                abort();
            }

            break;
        }

        fuzz_check_digests(req, max_hashes);

        if (req->ndigests > (size_t) req->num_signatures) {
            abort();
        }

        break;

    case NGX_HTTP_HPKI_CSC_SIGN:
        if (req->credential_id == NULL
            || (req->sig_alg != NGX_HTTP_HPKI_CSC_PKCS1
                && req->sig_alg != NGX_HTTP_HPKI_CSC_PSS))
        {
            abort();
        }

        fuzz_check_digests(req, max_hashes);

        /* the SAD: 1 to 128 bytes, "<digits>.", an expiry after now */

        if (req->sad == NULL || req->sad_len == 0
            || req->sad_len > NGX_HTTP_HPKI_CSC_SAD_MAX
            || req->sad_expires <= FUZZ_NOW)
        {
            abort();
        }

        dot = memchr(req->sad, '.', req->sad_len);
        if (dot == NULL || dot == req->sad) {
            abort();
        }

        for (p = req->sad; p < dot; p++) {
            if (*p < '0' || *p > '9') {
                abort();
            }
        }

        break;

    default:
        abort();
    }
}


static void
fuzz_parse(int method, const uint8_t *data, size_t size, size_t max_hashes)
{
    int                      rc;
    ngx_http_hpki_csc_req_t  req;

    rc = ngx_http_hpki_csc_parse(method, (const char *) data, size,
                                 max_hashes, FUZZ_NOW, &req);

    if (rc == NGX_HTTP_HPKI_CSC_OK) {
        fuzz_check_acceptance(method, &req, max_hashes);

    } else {
        fuzz_check_refusal(rc, size, &req);
    }

    ngx_http_hpki_csc_req_free(&req);

    /* freeing twice is harmless: nothing is left to free */
    ngx_http_hpki_csc_req_free(&req);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_parse(NGX_HTTP_HPKI_CSC_LIST, data, size, 32);
    fuzz_parse(NGX_HTTP_HPKI_CSC_INFO, data, size, 32);
    fuzz_parse(NGX_HTTP_HPKI_CSC_AUTHORIZE, data, size, 32);
    fuzz_parse(NGX_HTTP_HPKI_CSC_SIGN, data, size, 32);

    fuzz_parse(NGX_HTTP_HPKI_CSC_AUTHORIZE, data, size,
               NGX_HTTP_HPKI_CSC_HASHES_MAX);
    fuzz_parse(NGX_HTTP_HPKI_CSC_SIGN, data, size,
               NGX_HTTP_HPKI_CSC_HASHES_MAX);

    return 0;
}
