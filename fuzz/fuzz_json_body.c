/*
 * libFuzzer target: the JSON body of POST /hpki/sign as the module reads
 * it: at most 64 KiB, json_loadb() with JSON_REJECT_DUPLICATES, then the
 * same shape checks (an object; "hash_alg" and "sig_alg" absent or a
 * string; "hashes" a non-empty array of strings).  The module's own
 * validation (ngx_http_hpki_sign_frame() in ngx_http_hpki_sign.c) needs an
 * ngx_http_request_t and nginx's ngx_decode_base64, so it is covered by the
 * integration tests instead (t/module/sign.t, docs/security.md); this
 * target is about jansson on hostile input with our flags, and re-dumping
 * what it accepted (the module builds replies with jansson too).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>


#define FUZZ_BODY_MAX  65536        /* the module's body limit */


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *text;
    size_t         i, n;
    json_t        *body, *v, *hashes, *again;
    json_error_t   jerr;

    if (size > FUZZ_BODY_MAX) {
        return 0;
    }

    body = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                      &jerr);
    if (body == NULL) {
        return 0;
    }

    if (json_is_object(body)) {
        v = json_object_get(body, "hash_alg");
        if (v != NULL && json_is_string(v)) {
            (void) strcmp(json_string_value(v), "sha256");
        }

        v = json_object_get(body, "sig_alg");
        if (v != NULL && json_is_string(v)) {
            (void) strcmp(json_string_value(v), "rsa-pkcs1");
        }

        hashes = json_object_get(body, "hashes");
        n = json_array_size(hashes);

        for (i = 0; i < n; i++) {
            v = json_array_get(hashes, i);
            if (v == NULL) {
                abort();
            }
            if (json_is_string(v)
                && strlen(json_string_value(v)) > json_string_length(v))
            {
                abort();
            }
        }
    }

    /* what was accepted dumps and parses back to an equal value */

    text = json_dumps(body, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL) {
        abort();
    }

    again = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (again == NULL || !json_equal(body, again)) {
        abort();
    }

    json_decref(again);
    free(text);
    json_decref(body);
    return 0;
}
