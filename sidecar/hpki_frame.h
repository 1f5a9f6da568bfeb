/*
 * hpki-signd wire protocol (docs/protocol.md): frame codec.
 */

#ifndef HPKI_FRAME_H
#define HPKI_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hpki_core.h"


#define HPKI_FRAME_MAX          65536
#define HPKI_FRAME_HDR          4
#define HPKI_PROTO_VERSION      1
#define HPKI_FIELDS_MAX         256
#define HPKI_DIGESTS_MAX        64

/* types */
#define HPKI_T_SIGN             0x01
#define HPKI_T_PING             0x02
#define HPKI_T_PARTIAL          0x40    /* combiner -> share worker */
#define HPKI_T_SIGN_OK          0x81
#define HPKI_T_PONG             0x82
#define HPKI_T_PARTIAL_OK       0xC0    /* share worker -> combiner */
#define HPKI_T_ERROR            0xFF

/* tags */
#define HPKI_TAG_TOKEN          0x01
#define HPKI_TAG_USER           0x02
#define HPKI_TAG_HASH_ALG       0x03
#define HPKI_TAG_SIG_ALG        0x04
#define HPKI_TAG_DIGEST         0x05
#define HPKI_TAG_REQUEST_ID     0x06
#define HPKI_TAG_SIGNATURE      0x10
#define HPKI_TAG_CERT           0x11
#define HPKI_TAG_KEY_ID         0x12
#define HPKI_TAG_CHAIN          0x13
#define HPKI_TAG_CODE           0x20
#define HPKI_TAG_MESSAGE        0x21
/* internal (combiner <-> share workers) */
#define HPKI_TAG_JOB            0x30    /* u32 */
#define HPKI_TAG_VERSION        0x31    /* u32 */
#define HPKI_TAG_MODULUS        0x32
#define HPKI_TAG_VALUE          0x33

/* error codes */
#define HPKI_E_BAD_FRAME        1
#define HPKI_E_BAD_REQUEST      2
#define HPKI_E_UNAUTHORIZED     3
#define HPKI_E_FORBIDDEN        4
#define HPKI_E_NO_KEY           5
#define HPKI_E_SIGN_FAILED      6
#define HPKI_E_UNAVAILABLE      7
#define HPKI_E_INTERNAL         8

/* decoder results */
#define HPKI_FRAME_OK           0
#define HPKI_FRAME_AGAIN        1
#define HPKI_FRAME_BAD          (-1)


typedef struct {
    uint8_t         tag;
    uint16_t        len;
    const u_char   *data;
} hpki_field_t;


typedef struct {
    uint8_t         type;
    size_t          size;           /* whole frame, header included */
    size_t          nfields;
    unsigned        overflow:1;     /* more than HPKI_FIELDS_MAX fields */
    hpki_field_t    fields[HPKI_FIELDS_MAX];
} hpki_frame_t;


int hpki_frame_decode(const u_char *p, size_t len, hpki_frame_t *f);
const hpki_field_t *hpki_frame_field(const hpki_frame_t *f, uint8_t tag);
size_t hpki_frame_count(const hpki_frame_t *f, uint8_t tag);

size_t hpki_frame_begin(hpki_buf_t *b, uint8_t type);
int hpki_frame_add(hpki_buf_t *b, uint8_t tag, const void *p, size_t len);
int hpki_frame_add_u8(hpki_buf_t *b, uint8_t tag, uint8_t v);
int hpki_frame_add_u16(hpki_buf_t *b, uint8_t tag, uint16_t v);
int hpki_frame_add_u32(hpki_buf_t *b, uint8_t tag, uint32_t v);
int hpki_frame_end(hpki_buf_t *b, size_t start);
int hpki_frame_error(hpki_buf_t *b, uint16_t code, const char *msg);
const char *hpki_frame_code_name(unsigned code);

uint32_t hpki_get_u32(const u_char *p);

#endif /* HPKI_FRAME_H */
