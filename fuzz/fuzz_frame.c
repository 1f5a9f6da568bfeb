/*
 * libFuzzer target: hpki-signd's frame decoder, hpki_frame_decode(), on a
 * byte stream as a connection delivers it (nginx, or anything that passes
 * the peer uid check).  Several frames may follow each other.
 *
 * Checks beyond "no crash": a decoded frame lies inside the input, every
 * field lies inside the frame, and re-encoding the fields with the encoder
 * (hpki_frame_begin/add/end) gives the same bytes; every proper prefix of a
 * frame that decodes is "more bytes needed" (or, once the header is
 * there, the same verdict), never a different frame.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hpki_core.h"
#include "hpki_frame.h"


static hpki_frame_t  fuzz_f, fuzz_g;


static void
fuzz_one(const u_char *p, size_t len)
{
    int                  rc;
    size_t               i, k, start, cut[8];
    hpki_buf_t           b;
    const hpki_field_t  *fd;

    rc = hpki_frame_decode(p, len, &fuzz_f);

    if (rc != HPKI_FRAME_OK) {
        if (rc != HPKI_FRAME_AGAIN && rc != HPKI_FRAME_BAD) {
            abort();
        }
        return;
    }

    if (fuzz_f.size < HPKI_FRAME_HDR + 2 || fuzz_f.size > len
        || fuzz_f.size > HPKI_FRAME_HDR + HPKI_FRAME_MAX
        || fuzz_f.nfields > HPKI_FIELDS_MAX
        || (fuzz_f.overflow && fuzz_f.nfields != HPKI_FIELDS_MAX))
    {
        abort();
    }

    for (i = 0; i < fuzz_f.nfields; i++) {
        fd = &fuzz_f.fields[i];
        if (fd->data < p + HPKI_FRAME_HDR + 2 + 3
            || fd->data + fd->len > p + fuzz_f.size)
        {
            abort();
        }
    }

    /* the accessors agree with the field list */

    for (i = 0; i < fuzz_f.nfields; i++) {
        fd = hpki_frame_field(&fuzz_f, fuzz_f.fields[i].tag);
        if (fd == NULL || fd->tag != fuzz_f.fields[i].tag
            || hpki_frame_count(&fuzz_f, fd->tag) == 0)
        {
            abort();
        }
    }

    /* re-encode: the same bytes */

    if (!fuzz_f.overflow) {
        memset(&b, 0, sizeof(b));
        start = hpki_frame_begin(&b, fuzz_f.type);

        for (i = 0; i < fuzz_f.nfields; i++) {
            fd = &fuzz_f.fields[i];
            if (hpki_frame_add(&b, fd->tag, fd->data, fd->len) != 0) {
                abort();
            }
        }

        if (hpki_frame_end(&b, start) != 0 || b.len != fuzz_f.size
            || memcmp(b.data, p, b.len) != 0)
        {
            abort();
        }

        hpki_buf_free(&b);
    }

    /* prefixes: never a frame */

    cut[0] = 0;
    cut[1] = 1;
    cut[2] = HPKI_FRAME_HDR;
    cut[3] = HPKI_FRAME_HDR + 1;
    cut[4] = HPKI_FRAME_HDR + 2;
    cut[5] = fuzz_f.size / 2;
    cut[6] = fuzz_f.size - 1;
    cut[7] = fuzz_f.size - 1;

    for (k = 0; k < 8; k++) {
        if (cut[k] >= fuzz_f.size) {
            continue;
        }
        if (hpki_frame_decode(p, cut[k], &fuzz_g) != HPKI_FRAME_AGAIN) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      rc;
    u_char  *p;
    size_t   off;

    /* an exactly-sized heap copy, so that ASan sees any over-read */

    p = malloc(size ? size : 1);
    memcpy(p, data, size);

    /* a stream: decode frame after frame, as hpki-signd does */

    off = 0;

    for ( ;; ) {
        fuzz_one(p + off, size - off);

        rc = hpki_frame_decode(p + off, size - off, &fuzz_f);
        if (rc != HPKI_FRAME_OK) {
            break;
        }

        off += fuzz_f.size;
    }

    free(p);
    return 0;
}
