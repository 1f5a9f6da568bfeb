/*
 * hpki-signd wire protocol (docs/protocol.md): frame codec.
 *
 *   frame = length:u32be  version:u8  type:u8  field*
 *   field = tag:u8  len:u16be  value[len]
 */

#include <string.h>

#include "hpki_frame.h"


static const char  *hpki_frame_codes[] = {
    "ok", "bad_frame", "bad_request", "unauthorized", "forbidden",
    "no_key", "sign_failed", "unavailable", "internal"
};


uint32_t
hpki_get_u32(const u_char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


/*
 * Decodes the frame at the start of p.  HPKI_FRAME_AGAIN: more bytes are
 * needed; HPKI_FRAME_BAD: the stream is out of sync (bad length, version
 * or field overrun), reply bad_frame and close.  A bad length or version
 * is reported as soon as the header bytes are present.
 */

int
hpki_frame_decode(const u_char *p, size_t len, hpki_frame_t *f)
{
    size_t     flen, off, end;
    uint16_t   vlen;

    f->nfields = 0;
    f->overflow = 0;

    if (len < HPKI_FRAME_HDR) {
        return HPKI_FRAME_AGAIN;
    }

    flen = hpki_get_u32(p);
    if (flen < 2 || flen > HPKI_FRAME_MAX) {
        return HPKI_FRAME_BAD;
    }

    if (len >= HPKI_FRAME_HDR + 1 && p[HPKI_FRAME_HDR] != HPKI_PROTO_VERSION) {
        return HPKI_FRAME_BAD;
    }

    if (len < HPKI_FRAME_HDR + flen) {
        return HPKI_FRAME_AGAIN;
    }

    f->type = p[HPKI_FRAME_HDR + 1];
    f->size = HPKI_FRAME_HDR + flen;

    off = HPKI_FRAME_HDR + 2;
    end = f->size;

    while (off < end) {
        if (end - off < 3) {
            return HPKI_FRAME_BAD;
        }

        vlen = (uint16_t) ((p[off + 1] << 8) | p[off + 2]);
        if (end - off - 3 < vlen) {
            return HPKI_FRAME_BAD;
        }

        if (f->nfields < HPKI_FIELDS_MAX) {
            f->fields[f->nfields].tag = p[off];
            f->fields[f->nfields].len = vlen;
            f->fields[f->nfields].data = p + off + 3;
            f->nfields++;

        } else {
            f->overflow = 1;
        }

        off += 3 + vlen;
    }

    return HPKI_FRAME_OK;
}


const hpki_field_t *
hpki_frame_field(const hpki_frame_t *f, uint8_t tag)
{
    size_t  i;

    for (i = 0; i < f->nfields; i++) {
        if (f->fields[i].tag == tag) {
            return &f->fields[i];
        }
    }

    return NULL;
}


size_t
hpki_frame_count(const hpki_frame_t *f, uint8_t tag)
{
    size_t  i, n;

    n = 0;
    for (i = 0; i < f->nfields; i++) {
        if (f->fields[i].tag == tag) {
            n++;
        }
    }

    return n;
}


/* returns the frame's start offset, for hpki_frame_end() */

size_t
hpki_frame_begin(hpki_buf_t *b, uint8_t type)
{
    size_t  start;
    u_char  hdr[6] = { 0, 0, 0, 0, HPKI_PROTO_VERSION, 0 };

    start = b->len;
    hdr[5] = type;

    if (hpki_buf_append(b, hdr, sizeof(hdr)) != 0) {
        return (size_t) -1;
    }

    return start;
}


int
hpki_frame_add(hpki_buf_t *b, uint8_t tag, const void *p, size_t len)
{
    u_char  hdr[3];

    if (len > 0xffff) {
        return -1;
    }

    hdr[0] = tag;
    hdr[1] = (u_char) (len >> 8);
    hdr[2] = (u_char) len;

    if (hpki_buf_append(b, hdr, 3) != 0
        || hpki_buf_append(b, p, len) != 0)
    {
        return -1;
    }

    return 0;
}


int
hpki_frame_add_u8(hpki_buf_t *b, uint8_t tag, uint8_t v)
{
    return hpki_frame_add(b, tag, &v, 1);
}


int
hpki_frame_add_u16(hpki_buf_t *b, uint8_t tag, uint16_t v)
{
    u_char  p[2];

    p[0] = (u_char) (v >> 8);
    p[1] = (u_char) v;
    return hpki_frame_add(b, tag, p, 2);
}


int
hpki_frame_add_u32(hpki_buf_t *b, uint8_t tag, uint32_t v)
{
    u_char  p[4];

    p[0] = (u_char) (v >> 24);
    p[1] = (u_char) (v >> 16);
    p[2] = (u_char) (v >> 8);
    p[3] = (u_char) v;
    return hpki_frame_add(b, tag, p, 4);
}


/* patches the length; fails (and drops the frame) if it is too large */

int
hpki_frame_end(hpki_buf_t *b, size_t start)
{
    size_t  flen;

    if (start == (size_t) -1 || start + HPKI_FRAME_HDR > b->len) {
        return -1;
    }

    flen = b->len - start - HPKI_FRAME_HDR;
    if (flen > HPKI_FRAME_MAX) {
        b->len = start;
        return -1;
    }

    b->data[start] = (u_char) (flen >> 24);
    b->data[start + 1] = (u_char) (flen >> 16);
    b->data[start + 2] = (u_char) (flen >> 8);
    b->data[start + 3] = (u_char) flen;
    return 0;
}


int
hpki_frame_error(hpki_buf_t *b, uint16_t code, const char *msg)
{
    size_t  start;

    start = hpki_frame_begin(b, HPKI_T_ERROR);
    if (hpki_frame_add_u16(b, HPKI_TAG_CODE, code) != 0
        || hpki_frame_add(b, HPKI_TAG_MESSAGE, msg, strlen(msg)) != 0)
    {
        return -1;
    }

    return hpki_frame_end(b, start);
}


const char *
hpki_frame_code_name(unsigned code)
{
    if (code < sizeof(hpki_frame_codes) / sizeof(hpki_frame_codes[0])) {
        return hpki_frame_codes[code];
    }

    return "unknown";
}
