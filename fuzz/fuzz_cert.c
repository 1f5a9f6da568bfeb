/*
 * libFuzzer target: the whole-certificate helpers of ngx_http_hpki_cert.c
 * (role, kind, x5t#S256, serial, issuer) on any X509 that d2i_X509 accepts.
 * nginx hands the module the client certificate after its own chain check,
 * but the check may be "optional_no_ca", so any parsable certificate can
 * arrive.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "ngx_http_hpki_cert.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   kind;
    X509                 *x;
    char                  role[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1];
    char                  x5t[NGX_HTTP_HPKI_X5T_LEN];
    char                  serial[128], tiny[4];
    char                  issuer[1024];
    const unsigned char  *p;

    p = data;
    x = d2i_X509(NULL, &p, (long) size);
    if (x == NULL) {
        return 0;
    }

    if (ngx_http_hpki_cert_role(x, role, sizeof(role)) == 0
        && strnlen(role, sizeof(role)) == sizeof(role))
    {
        abort();
    }

    kind = ngx_http_hpki_cert_kind(x);
    if (kind & ~(NGX_HTTP_HPKI_CERT_AUTH | NGX_HTTP_HPKI_CERT_SIGN
                 | NGX_HTTP_HPKI_CERT_JPKI_AUTH
                 | NGX_HTTP_HPKI_CERT_JPKI_SIGN))
    {
        abort();
    }

    if (ngx_http_hpki_cert_x5t(x, x5t, sizeof(x5t)) == 0
        && strlen(x5t) != NGX_HTTP_HPKI_X5T_LEN - 1)
    {
        abort();
    }

    if (ngx_http_hpki_cert_serial_hex(x, serial, sizeof(serial)) == 0
        && strnlen(serial, sizeof(serial)) == sizeof(serial))
    {
        abort();
    }

    if (ngx_http_hpki_cert_serial_hex(x, tiny, sizeof(tiny)) == 0
        && strnlen(tiny, sizeof(tiny)) == sizeof(tiny))
    {
        abort();
    }

    if (ngx_http_hpki_cert_issuer_text(x, issuer, sizeof(issuer)) == 0
        && strnlen(issuer, sizeof(issuer)) == sizeof(issuer))
    {
        abort();
    }

    if (ngx_http_hpki_cert_issuer_text(x, tiny, sizeof(tiny)) == 0
        && strnlen(tiny, sizeof(tiny)) == sizeof(tiny))
    {
        abort();
    }

    X509_free(x);
    return 0;
}
