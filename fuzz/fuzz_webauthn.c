
/*
 * libFuzzer target: the WebAuthn parsers of ngx_http_hpki_webauthn.c.
 * The first byte chooses: 0 clientDataJSON, 1 authenticator data,
 * 2 attestationObject (then the rpId and flag checks).  Seeds:
 * t/unit/webauthn_cases.py.
 */


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ngx_http_hpki_webauthn.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char                            *err;
    unsigned char                          hash[32];
    ngx_http_hpki_webauthn_client_t        cd;
    ngx_http_hpki_webauthn_authdata_t      ad;
    ngx_http_hpki_webauthn_attestation_t   att;

    if (size < 1) {
        return 0;
    }

    switch (data[0] % 3) {

    case 0:
        if (ngx_http_hpki_webauthn_client_data(data + 1, size - 1,
                                               "webauthn.get", &cd, &err)
            == 0)
        {
            /* what the module uses: bounded, NUL-terminated */
            if (strlen(cd.challenge) > NGX_HTTP_HPKI_WEBAUTHN_CHALLENGE_MAX
                || strlen(cd.origin) > NGX_HTTP_HPKI_WEBAUTHN_ORIGIN_MAX)
            {
                __builtin_trap();
            }
        }
        break;

    case 1:
        if (ngx_http_hpki_webauthn_authdata(data + 1, size - 1, &ad, &err)
            == 0)
        {
            if (ad.key != NULL
                && (ad.cred_id_len == 0
                    || ad.cred_id < data + 1
                    || ad.cred_id + ad.cred_id_len > data + size))
            {
                __builtin_trap();
            }

            (void) ngx_http_hpki_webauthn_check(&ad, "localhost", 1, &err);
            ngx_http_hpki_webauthn_authdata_free(&ad);
        }
        break;

    default:
        memset(hash, 0x5a, sizeof(hash));

        if (ngx_http_hpki_webauthn_attestation(data + 1, size - 1, hash,
                                               &att, &err)
            == 0)
        {
            if (att.ad.key == NULL) {
                __builtin_trap();
            }

            (void) ngx_http_hpki_webauthn_check(&att.ad, "localhost", 1,
                                                &err);
            ngx_http_hpki_webauthn_attestation_free(&att);
        }
        break;
    }

    return 0;
}
