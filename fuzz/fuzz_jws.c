/*
 * libFuzzer target: ngx_http_hpki_jws_verify() on a Bearer token (outside
 * input, at most 8 KiB), with fixed keys: the RS256 key "rsa-1" and the
 * ES256 key "ec-1" (kid chosen by the header), and the RS256 key alone
 * (header without kid).  Claims that verify go through
 * ngx_http_hpki_jwt_check().  The keys are fuzz/keys/ (test keys only);
 * the seeds are tokens they signed (fuzz/seeds.c).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_hpki_jws.h"


static ngx_http_hpki_jws_key_t  fuzz_keys[2];
static ngx_http_hpki_jws_key_t  fuzz_rsa_only[1];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    if (ngx_http_hpki_jws_key_load(&fuzz_keys[0], FUZZ_KEYS "/rsa.pub",
                                   "rsa-1") != 0
        || ngx_http_hpki_jws_key_load(&fuzz_keys[1], FUZZ_KEYS "/ec.pub",
                                      "ec-1") != 0
        || ngx_http_hpki_jws_key_load(&fuzz_rsa_only[0], FUZZ_KEYS "/rsa.pub",
                                      "rsa-1") != 0)
    {
        abort();
    }

    return 0;
}


static void
fuzz_check(json_t *claims)
{
    const char  *err;

    if (claims == NULL) {
        return;
    }

    if (!json_is_object(claims)) {
        abort();
    }

    err = NULL;
    if (ngx_http_hpki_jwt_check(claims, "https://fuzz.example", "hpki",
                                1700000000, 60, &err) != 0
        && err == NULL)
    {
        abort();
    }

    json_decref(claims);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *tok;
    const char  *err;

    /* an exactly-sized copy, not NUL-terminated: the API takes a length */

    tok = malloc(size ? size : 1);
    memcpy(tok, data, size);

    err = NULL;
    fuzz_check(ngx_http_hpki_jws_verify(tok, size, fuzz_keys, 2, &err));

    err = NULL;
    fuzz_check(ngx_http_hpki_jws_verify(tok, size, fuzz_rsa_only, 1, &err));

    fuzz_check(ngx_http_hpki_jws_verify(tok, size, fuzz_keys, 2, NULL));

    free(tok);
    return 0;
}
