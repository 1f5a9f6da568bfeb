/*
 * libFuzzer target: ngx_http_hpki_hcrole_parse(), the hcRole parser, on the
 * DER contents of a subjectDirectoryAttributes extension (client
 * certificates come from anyone who can open a TLS connection).
 *
 * Checks beyond "no crash": on success the role is NUL-terminated, shorter
 * than the buffer and the documented limit, and has no control characters.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_hpki_cert.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t  i, n;
    char    role[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1];
    char    small[8];

    memset(role, 0x5a, sizeof(role));

    if (ngx_http_hpki_hcrole_parse(data, size, role, sizeof(role)) == 0) {
        n = strnlen(role, sizeof(role));
        if (n == sizeof(role) || n > NGX_HTTP_HPKI_HCROLE_MAX_ROLE) {
            abort();
        }
        for (i = 0; i < n; i++) {
            if ((unsigned char) role[i] < 0x20 || role[i] == 0x7f) {
                abort();
            }
        }
    }

    /* a buffer too small for most roles must fail cleanly, not overrun */

    if (ngx_http_hpki_hcrole_parse(data, size, small, sizeof(small)) == 0
        && strnlen(small, sizeof(small)) == sizeof(small))
    {
        abort();
    }

    return 0;
}
