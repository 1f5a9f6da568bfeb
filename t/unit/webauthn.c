
/*
 * Unit tests of ngx_http_hpki_webauthn.c, TAP output.
 *
 *   unit-webauthn CASES.json
 *
 * The cases (inputs and the verdict each must reach) are made by
 * t/unit/webauthn_cases.py with a software authenticator; t/unit/webauthn.t
 * runs both.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "ngx_http_hpki_jws.h"
#include "ngx_http_hpki_webauthn.h"
#include "tap.h"


#define BUF_MAX  32768


static int
decode(json_t *c, const char *name, unsigned char *buf, size_t *len)
{
    int          n;
    const char  *s;

    s = json_string_value(json_object_get(c, name));
    if (s == NULL) {
        return -1;
    }

    n = ngx_http_hpki_base64url_decode(s, strlen(s), buf, BUF_MAX);
    if (n < 0) {
        return -1;
    }

    *len = (size_t) n;

    return 0;
}


/* runs one case; the verdict ("ok", "ok <count>" or the error) in out */

static void
run(json_t *c, char *out, size_t size)
{
    int                                    uv;
    size_t                                 len, cd_len, sig_len, key_len;
    uint32_t                               count;
    const char                            *op, *err;
    unsigned char                          cd_hash[32];
    static unsigned char                   in[BUF_MAX], cd[BUF_MAX],
                                           sig[BUF_MAX], key[BUF_MAX];
    ngx_http_hpki_webauthn_client_t        client;
    ngx_http_hpki_webauthn_authdata_t      ad;
    ngx_http_hpki_webauthn_attestation_t   att;

    op = json_string_value(json_object_get(c, "op"));
    uv = (int) json_integer_value(json_object_get(c, "uv"));
    err = NULL;

    if (op == NULL || decode(c, "in", in, &len) != 0) {
        snprintf(out, size, "bad case");
        return;
    }

    if (strcmp(op, "client_data") == 0) {
        if (ngx_http_hpki_webauthn_client_data(in, len,
                json_string_value(json_object_get(c, "type")), &client, &err)
            == 0)
        {
            snprintf(out, size, "ok");
            return;
        }

    } else if (strcmp(op, "authdata") == 0) {
        if (ngx_http_hpki_webauthn_authdata(in, len, &ad, &err) == 0) {
            ngx_http_hpki_webauthn_authdata_free(&ad);
            snprintf(out, size, "ok");
            return;
        }

    } else if (strcmp(op, "attestation") == 0) {
        if (decode(c, "cd", cd, &cd_len) != 0) {
            snprintf(out, size, "bad case");
            return;
        }

        SHA256(cd, cd_len, cd_hash);

        if (ngx_http_hpki_webauthn_attestation(in, len, cd_hash, &att, &err)
            == 0)
        {
            if (ngx_http_hpki_webauthn_check(&att.ad,
                    json_string_value(json_object_get(c, "rp")), uv, &err)
                == 0)
            {
                err = NULL;
                snprintf(out, size, "ok");
            }

            ngx_http_hpki_webauthn_attestation_free(&att);

            if (err == NULL) {
                return;
            }
        }

    } else if (strcmp(op, "assertion") == 0) {
        if (decode(c, "cd", cd, &cd_len) != 0
            || decode(c, "sig", sig, &sig_len) != 0
            || decode(c, "key", key, &key_len) != 0)
        {
            snprintf(out, size, "bad case");
            return;
        }

        if (ngx_http_hpki_webauthn_assertion(
                json_string_value(json_object_get(c, "rp")), in, len, cd,
                cd_len, sig, sig_len,
                (int) json_integer_value(json_object_get(c, "alg")), key,
                key_len, uv, &count, &err)
            == 0)
        {
            snprintf(out, size, "ok %u", (unsigned) count);
            return;
        }
    }

    snprintf(out, size, "%s", err ? err : "(no reason)");
}


int
main(int argc, char **argv)
{
    char          verdict[256];
    size_t        i;
    json_t       *cases, *c;
    const char   *expect;
    json_error_t  jerr;

    if (argc != 2) {
        fprintf(stderr, "usage: unit-webauthn CASES.json\n");
        return 2;
    }

    cases = json_load_file(argv[1], 0, &jerr);
    if (!json_is_array(cases)) {
        fprintf(stderr, "%s: %s\n", argv[1], jerr.text);
        return 2;
    }

    json_array_foreach(cases, i, c) {
        expect = json_string_value(json_object_get(c, "expect"));
        run(c, verdict, sizeof(verdict));

        t_ok(expect != NULL
           && (strncmp(expect, "ok", 2) == 0 ? strcmp(verdict, expect) == 0
                                             : strstr(verdict, expect) != NULL),
           "%s: %s", json_string_value(json_object_get(c, "name")),
           verdict);
    }

    json_decref(cases);

    printf("1..%d\n", t_num);

    return t_failed ? 1 : 0;
}
