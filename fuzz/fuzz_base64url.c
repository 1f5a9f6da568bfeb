/*
 * libFuzzer target: ngx_http_hpki_base64url_decode() (strict) and
 * _encode(): whatever decodes must encode back to the same text, and
 * decoding must never write past the size it was given.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_hpki_jws.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             n, m, k;
    char           *in, *enc;
    unsigned char  *out, *exact;

    if (size > 16384) {
        return 0;
    }

    /* an exactly-sized heap copy, so that ASan sees any over-read */

    in = malloc(size ? size : 1);
    memcpy(in, data, size);

    out = malloc(size + 1);
    n = ngx_http_hpki_base64url_decode(in, size, out, size + 1);

    if (n >= 0) {
        if ((size_t) n > size) {
            abort();
        }

        enc = malloc((4 * (size_t) n + 2) / 3 + 1);
        m = ngx_http_hpki_base64url_encode(out, n, enc,
                                           (4 * (size_t) n + 2) / 3 + 1);
        if (m < 0 || (size_t) m != size || memcmp(enc, in, size) != 0) {
            abort();
        }
        free(enc);

        /* into a buffer of exactly the decoded length, and one too short */

        exact = malloc(n ? n : 1);
        k = ngx_http_hpki_base64url_decode(in, size, exact, n);
        if (k != n || memcmp(exact, out, n) != 0) {
            abort();
        }
        if (n > 0 && ngx_http_hpki_base64url_decode(in, size, exact, n - 1)
                     != -1)
        {
            abort();
        }
        free(exact);
    }

    /* encode the raw input: must decode back to it */

    enc = malloc((4 * size + 2) / 3 + 1);
    m = ngx_http_hpki_base64url_encode(data, size, enc, (4 * size + 2) / 3 + 1);
    if (m < 0) {
        abort();
    }
    n = ngx_http_hpki_base64url_decode(enc, m, out, size + 1);
    if (n < 0 || (size_t) n != size || memcmp(out, data, size) != 0) {
        abort();
    }
    if (size > 0 && ngx_http_hpki_base64url_encode(data, size, enc, m) != -1) {
        abort();
    }

    free(enc);
    free(out);
    free(in);
    return 0;
}
