/*
 * Unit tests for the hpki-signd frame codec (docs/protocol.md).
 */

#include <stdlib.h>
#include <string.h>

#include "hpki_frame.h"
#include "signd_tap.h"


static hpki_frame_t  f;


static size_t
put_hdr(u_char *p, uint32_t len, uint8_t version, uint8_t type)
{
    p[0] = len >> 24;
    p[1] = len >> 16;
    p[2] = len >> 8;
    p[3] = len;
    p[4] = version;
    p[5] = type;
    return 6;
}


int
main(void)
{
    int          rc;
    size_t       i, start;
    u_char       buf[HPKI_FRAME_MAX + 16];
    hpki_buf_t   b = { NULL, 0, 0 };
    const hpki_field_t  *fld;

    /* encode a SIGN frame, decode it back */

    start = hpki_frame_begin(&b, HPKI_T_SIGN);
    hpki_frame_add(&b, HPKI_TAG_USER, "doctor1", 7);
    hpki_frame_add_u8(&b, HPKI_TAG_HASH_ALG, 1);
    hpki_frame_add(&b, HPKI_TAG_DIGEST, "0123456789abcdef0123456789abcdef",
                   32);
    hpki_frame_add(&b, HPKI_TAG_DIGEST, "fedcba9876543210fedcba9876543210",
                   32);
    hpki_frame_add(&b, 0x7e, "unknown", 7);
    ok(hpki_frame_end(&b, start) == 0, "encode");
    ok(b.len == 6 + 10 + 4 + 35 + 35 + 10, "encoded length %zu", b.len);

    rc = hpki_frame_decode(b.data, b.len, &f);
    ok(rc == HPKI_FRAME_OK, "decode ok");
    ok(f.type == HPKI_T_SIGN && f.size == b.len, "type and size");
    ok(f.nfields == 5, "five fields");
    fld = hpki_frame_field(&f, HPKI_TAG_USER);
    ok(fld && fld->len == 7 && memcmp(fld->data, "doctor1", 7) == 0,
       "USER field");
    ok(hpki_frame_count(&f, HPKI_TAG_DIGEST) == 2, "two DIGEST fields");
    ok(hpki_frame_field(&f, HPKI_TAG_TOKEN) == NULL, "no TOKEN");

    /* every proper prefix needs more bytes */

    for (i = 0, rc = HPKI_FRAME_AGAIN; i < b.len; i++) {
        if (hpki_frame_decode(b.data, i, &f) != HPKI_FRAME_AGAIN) {
            rc = HPKI_FRAME_BAD;
        }
    }
    ok(rc == HPKI_FRAME_AGAIN, "every truncation asks for more");

    /* two frames back to back: the first is decoded alone */

    memcpy(buf, b.data, b.len);
    memcpy(buf + b.len, b.data, b.len);
    ok(hpki_frame_decode(buf, 2 * b.len, &f) == HPKI_FRAME_OK
       && f.size == b.len, "pipelined frames decode one at a time");

    /* lengths */

    put_hdr(buf, 0, 1, HPKI_T_PING);
    ok(hpki_frame_decode(buf, 4, &f) == HPKI_FRAME_BAD, "length 0 is bad");
    put_hdr(buf, 1, 1, HPKI_T_PING);
    ok(hpki_frame_decode(buf, 4, &f) == HPKI_FRAME_BAD, "length 1 is bad");
    put_hdr(buf, 2, 1, HPKI_T_PING);
    ok(hpki_frame_decode(buf, 6, &f) == HPKI_FRAME_OK && f.nfields == 0,
       "PING with length 2");
    put_hdr(buf, HPKI_FRAME_MAX + 1, 1, HPKI_T_SIGN);
    ok(hpki_frame_decode(buf, 4, &f) == HPKI_FRAME_BAD,
       "length max+1 is bad from the header alone");
    put_hdr(buf, 0xffffffff, 1, HPKI_T_SIGN);
    ok(hpki_frame_decode(buf, 4, &f) == HPKI_FRAME_BAD, "length 2^32-1");

    /* exactly the maximum: one field of 65536 - 2 - 3 bytes */

    put_hdr(buf, HPKI_FRAME_MAX, 1, HPKI_T_SIGN);
    buf[6] = 0x7f;
    buf[7] = (HPKI_FRAME_MAX - 5) >> 8;
    buf[8] = (u_char) (HPKI_FRAME_MAX - 5);
    ok(hpki_frame_decode(buf, HPKI_FRAME_HDR + HPKI_FRAME_MAX, &f)
       == HPKI_FRAME_OK && f.nfields == 1, "maximal frame accepted");

    /* version */

    put_hdr(buf, 2, 2, HPKI_T_PING);
    ok(hpki_frame_decode(buf, 5, &f) == HPKI_FRAME_BAD,
       "version 2 is bad as soon as it is read");

    /* field overruns */

    put_hdr(buf, 2 + 3 + 4, 1, HPKI_T_SIGN);
    buf[6] = HPKI_TAG_USER;
    buf[7] = 0;
    buf[8] = 5;                                 /* 5 > 4 bytes left */
    memcpy(buf + 9, "abcd", 4);
    ok(hpki_frame_decode(buf, 13, &f) == HPKI_FRAME_BAD,
       "field longer than the body");

    put_hdr(buf, 2 + 2, 1, HPKI_T_SIGN);
    buf[6] = HPKI_TAG_USER;
    buf[7] = 0;
    ok(hpki_frame_decode(buf, 8, &f) == HPKI_FRAME_BAD,
       "truncated field header");

    /* too many fields: decoded, flagged */

    b.len = 0;
    start = hpki_frame_begin(&b, HPKI_T_SIGN);
    for (i = 0; i < HPKI_FIELDS_MAX + 5; i++) {
        hpki_frame_add(&b, 0x7f, "", 0);
    }
    hpki_frame_end(&b, start);
    ok(hpki_frame_decode(b.data, b.len, &f) == HPKI_FRAME_OK && f.overflow,
       "field overflow flagged");

    /* encoder refuses a frame above the maximum */

    b.len = 0;
    start = hpki_frame_begin(&b, HPKI_T_SIGN_OK);
    memset(buf, 'x', 60000);
    hpki_frame_add(&b, HPKI_TAG_CERT, buf, 60000);
    hpki_frame_add(&b, HPKI_TAG_CERT, buf, 6000);
    ok(hpki_frame_end(&b, start) != 0 && b.len == 0,
       "oversized reply refused by the encoder");

    /* ERROR frame */

    b.len = 0;
    ok(hpki_frame_error(&b, HPKI_E_NO_KEY, "no key") == 0, "error frame");
    rc = hpki_frame_decode(b.data, b.len, &f);
    fld = hpki_frame_field(&f, HPKI_TAG_CODE);
    ok(rc == HPKI_FRAME_OK && f.type == HPKI_T_ERROR && fld
       && fld->len == 2 && fld->data[1] == HPKI_E_NO_KEY, "error code");
    ok(strcmp(hpki_frame_code_name(HPKI_E_SIGN_FAILED), "sign_failed") == 0,
       "code names");

    /* random garbage never crashes and never reads past the buffer */

    srand(1);
    for (i = 0, rc = 0; i < 20000; i++) {
        size_t  n = rand() % 64, j;
        u_char *g = malloc(n ? n : 1);

        for (j = 0; j < n; j++) {
            g[j] = rand();
        }
        if (n >= 4 && (rand() & 1)) {
            g[0] = g[1] = 0;
            if (n >= 5) {
                g[4] = 1;
            }
        }
        if (hpki_frame_decode(g, n, &f) == HPKI_FRAME_OK && f.size > n) {
            rc = 1;
        }
        free(g);
    }
    ok(rc == 0, "random input: decoded frames stay inside the buffer");

    hpki_buf_free(&b);
    return done_testing();
}
