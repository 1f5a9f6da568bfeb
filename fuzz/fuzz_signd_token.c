/*
 * libFuzzer target: hpki-signd's own token check, hpki_token_verify()
 * (sidecar/hpki_token.c: its own base64url, JSON header and claims, RS256
 * only), on the TOKEN field of a SIGN frame.  A compromised nginx can send
 * anything there.  Fixed key fuzz/keys/rsa.pub, issuer
 * https://fuzz.example, audience hpki, user "doctor"; the token cache is on,
 * as in production.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hpki_core.h"
#include "hpki_conf.h"
#include "hpki_token.h"


static hpki_token_ctx_t  fuzz_tc;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hpki_conf_t  cf;

    (void) argc;
    (void) argv;

    hpki_log_level = getenv("FUZZ_VERBOSE") ? HPKI_LOG_DEBUG : -1;

    memset(&cf, 0, sizeof(cf));
    cf.token_public_key[0] = FUZZ_KEYS "/rsa.pub";
    cf.ntoken_public_key = 1;
    cf.token_issuer = "https://fuzz.example";
    cf.token_audience = "hpki";
    cf.token_cache_ttl = 60;

    if (hpki_token_init(&fuzz_tc, &cf) != 0) {
        abort();
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *tok;
    char     jti[HPKI_JTI_MAX + 1], small[4];

    tok = malloc(size ? size : 1);
    memcpy(tok, data, size);

    if (hpki_token_verify(&fuzz_tc, tok, size, "doctor", jti, sizeof(jti))
        == 0 && strnlen(jti, sizeof(jti)) == sizeof(jti))
    {
        abort();
    }

    /* again (a cache hit if it verified), into a small jti buffer */

    if (hpki_token_verify(&fuzz_tc, tok, size, "doctor", small, sizeof(small))
        == 0 && strnlen(small, sizeof(small)) == sizeof(small))
    {
        abort();
    }

    (void) hpki_token_verify(&fuzz_tc, tok, size, "", jti, sizeof(jti));

    free(tok);
    return 0;
}
