/*
 * libFuzzer target: ngx_http_hpki_jwt_check() on any JSON the claims
 * decoder accepts (json_loadb with JSON_REJECT_DUPLICATES, as
 * ngx_http_hpki_jws_verify does).  In the gateway only claims with a good
 * signature get here, but a key compromise or a bug upstream must still not
 * crash it.  Integers at the edges of "now" and "leeway" are checked for
 * overflow by UBSan (exp, nbf and iat are the token's, any JSON integer).
 */

#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "ngx_http_hpki_jws.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t        i;
    json_t       *claims;
    const char   *err;
    json_error_t  jerr;
    static const long  now[] = { 0, 1700000000, 4102444800L };

    claims = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                        &jerr);
    if (claims == NULL) {
        return 0;
    }

    for (i = 0; i < sizeof(now) / sizeof(now[0]); i++) {
        err = NULL;
        if (ngx_http_hpki_jwt_check(claims, "https://fuzz.example", "hpki",
                                    now[i], 60, &err) != 0
            && err == NULL)
        {
            abort();
        }
    }

    json_decref(claims);
    return 0;
}
