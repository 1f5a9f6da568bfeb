
/*
 * Unit tests of ngx_http_hpki_cert.c, TAP output.
 *
 *   unit-cert                 run the tests
 *   unit-cert --inspect FILE  print kind, role, x5t, serial, issuer of a PEM
 *                             certificate (used by t/unit/cert.t)
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ngx_http_hpki_cert.h"
#include "tap.h"


/* a small DER writer */

typedef struct {
    unsigned char  d[20000];
    size_t         n;
} t_buf_t;


static void
t_raw(t_buf_t *b, const void *p, size_t n)
{
    if (b->n + n > sizeof(b->d)) {
        fprintf(stderr, "test buffer overflow\n");
        exit(2);
    }

    memcpy(b->d + b->n, p, n);
    b->n += n;
}


static void
t_tlv(t_buf_t *b, int tag, const void *p, size_t n)
{
    unsigned char  h[6];
    size_t         hl;

    h[0] = (unsigned char) tag;

    if (n < 128) {
        h[1] = (unsigned char) n;
        hl = 2;

    } else if (n < 256) {
        h[1] = 0x81;
        h[2] = (unsigned char) n;
        hl = 3;

    } else {
        h[1] = 0x82;
        h[2] = (unsigned char) (n >> 8);
        h[3] = (unsigned char) n;
        hl = 4;
    }

    t_raw(b, h, hl);
    t_raw(b, p, n);
}


/* wrap: b = TAG { b } */

static void
t_wrap(t_buf_t *b, int tag)
{
    t_buf_t  *tmp;

    tmp = malloc(sizeof(t_buf_t));
    tmp->n = 0;
    t_tlv(tmp, tag, b->d, b->n);
    memcpy(b, tmp, sizeof(t_buf_t));
    free(tmp);
}


static const unsigned char  t_oid_hcrole[] = {
    0x06, 0x06, 0x28, 0x81, 0x85, 0x42, 0x00, 0x01
};

static const unsigned char  t_oid_scheme[] = {
    0x06, 0x0a, 0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x06, 0x01, 0x01
};

/* 1.2.392.100495.1.6.1.2: a different coding scheme */
static const unsigned char  t_oid_other_scheme[] = {
    0x06, 0x0a, 0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x06, 0x01, 0x02
};


/* HCActor { [0] { SET { [0] scheme, [1] value?, [2] text } } } */

static void
t_actor(t_buf_t *b, const unsigned char *scheme, size_t slen, int text_tag,
    const void *text, size_t tlen, const char *value)
{
    t_buf_t  set, f;

    set.n = 0;

    f.n = 0;
    t_raw(&f, scheme, slen);
    t_wrap(&f, 0xa0);
    t_raw(&set, f.d, f.n);

    if (value != NULL) {
        f.n = 0;
        t_tlv(&f, 0x12, value, strlen(value));
        t_wrap(&f, 0xa1);
        t_raw(&set, f.d, f.n);
    }

    f.n = 0;
    t_tlv(&f, text_tag, text, tlen);
    t_wrap(&f, 0xa2);
    t_raw(&set, f.d, f.n);

    t_wrap(&set, 0x31);
    t_wrap(&set, 0xa0);
    t_wrap(&set, 0x30);

    t_raw(b, set.d, set.n);
}


/* Attribute { hcRole, SET { actors } } or, quirk, SET { SET { actors } } */

static void
t_attr(t_buf_t *b, const t_buf_t *actors, int quirk)
{
    t_buf_t  a, v;

    v.n = 0;
    t_raw(&v, actors->d, actors->n);
    t_wrap(&v, 0x31);

    if (quirk) {
        t_wrap(&v, 0x31);
    }

    a.n = 0;
    t_raw(&a, t_oid_hcrole, sizeof(t_oid_hcrole));
    t_raw(&a, v.d, v.n);
    t_wrap(&a, 0x30);

    t_raw(b, a.d, a.n);
}


/* an unrelated attribute: dateOfBirth 1.3.6.1.5.5.7.9.1 */

static void
t_attr_other(t_buf_t *b, size_t pad)
{
    t_buf_t                     a, v;
    char                       *s;
    static const unsigned char  oid[] = {
        0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x09, 0x01
    };

    v.n = 0;

    if (pad == 0) {
        t_tlv(&v, 0x18, "19700101000000Z", 15);

    } else {
        s = malloc(pad);
        memset(s, 'x', pad);
        t_tlv(&v, 0x0c, s, pad);
        free(s);
    }

    t_wrap(&v, 0x31);

    a.n = 0;
    t_raw(&a, oid, sizeof(oid));
    t_raw(&a, v.d, v.n);
    t_wrap(&a, 0x30);

    t_raw(b, a.d, a.n);
}


static void
t_b64(t_buf_t *b, const char *text)
{
    int     n;
    size_t  len;

    len = strlen(text);
    b->n = 0;

    n = EVP_DecodeBlock(b->d, (const unsigned char *) text, (int) len);
    if (n < 0) {
        fprintf(stderr, "bad base64 in test\n");
        exit(2);
    }

    while (len && text[len - 1] == '=') {
        len--;
        n--;
    }

    b->n = n;
}


/* SEQUENCE OF { hcRole attribute with one actor } */

static void
t_ext1(t_buf_t *ext, const t_buf_t *actor, int quirk)
{
    ext->n = 0;
    t_attr(ext, actor, quirk);
    t_wrap(ext, 0x30);
}


static int
t_parse(const t_buf_t *b, char *role, size_t size)
{
    return ngx_http_hpki_hcrole_parse(b->d, b->n, role, size);
}


static const char  *t_vec_doctor =
    "MCSgIjEgoAwGCiqDCIaRDwEGAQGiEAwOTWVkaWNhbCBEb2N0b3I=";
static const char  *t_vec_pharmacist =
    "MCegJTEjoAwGCiqDCIaRDwEGAQGhBRIDMTIzogwMClBoYXJtYWNpc3Q=";


static void
t_hcrole(void)
{
    int            rc, bad, i, bit, crashes;
    char           role[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1];
    size_t         k, len;
    t_buf_t        actor, actors, ext, copy;
    unsigned int   seed;
    unsigned char  bmp[64], big[300];
    static const unsigned char  kanji_bmp[] = { 0x53, 0x3b, 0x5e, 0x2b };

    /* the HPKI.md test vectors, both shapes */

    t_b64(&actor, t_vec_doctor);

    t_ext1(&ext, &actor, 0);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0, "vector 1, standard shape: parsed");
    t_is(role, "Medical Doctor", "vector 1, standard shape: role");

    t_ext1(&ext, &actor, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0, "vector 1, extra SET shape: parsed");
    t_is(role, "Medical Doctor", "vector 1, extra SET shape: role");

    t_b64(&actor, t_vec_pharmacist);

    t_ext1(&ext, &actor, 0);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0, "vector 2 (with codeDataValue), standard shape: parsed");
    t_is(role, "Pharmacist", "vector 2, standard shape: role");

    t_ext1(&ext, &actor, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0, "vector 2, extra SET shape: parsed");
    t_is(role, "Pharmacist", "vector 2, extra SET shape: role");

    /* the bare HCActor alone is not an extension */

    rc = ngx_http_hpki_hcrole_parse(actor.d, actor.n, role, sizeof(role));
    t_ok(rc == -1 && role[0] == '\0', "bare HCActor refused");

    /* built actor equals the vector */

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "Pharmacist", 10, "123");
    t_ok(actors.n == actor.n && memcmp(actors.d, actor.d, actor.n) == 0,
         "test DER writer reproduces vector 2");

    /*
     * real shape: another attribute first, then hcRole with the extra SET,
     * an actor of another scheme before the HPKI one
     */

    actors.n = 0;
    t_actor(&actors, t_oid_other_scheme, sizeof(t_oid_other_scheme), 0x0c,
            "Other", 5, NULL);
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "Dentist", 7, NULL);
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "Pharmacist", 10, NULL);

    ext.n = 0;
    t_attr_other(&ext, 0);
    t_attr(&ext, &actors, 1);
    t_wrap(&ext, 0x30);

    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0, "real shape with other attribute and schemes: parsed");
    t_is(role, "Dentist", "first HCActor of the HPKI scheme wins");

    ext.n = 0;
    t_attr_other(&ext, 0);
    t_attr(&ext, &actors, 0);
    t_wrap(&ext, 0x30);

    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0 && strcmp(role, "Dentist") == 0,
         "same, standard shape");

    /* wrong coding scheme only */

    actors.n = 0;
    t_actor(&actors, t_oid_other_scheme, sizeof(t_oid_other_scheme), 0x0c,
            "Medical Doctor", 14, NULL);
    t_ext1(&ext, &actors, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == -1 && role[0] == '\0', "wrong coding scheme: -1");

    /* no hcRole attribute, empty SEQUENCE */

    ext.n = 0;
    t_attr_other(&ext, 0);
    t_wrap(&ext, 0x30);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "no hcRole attribute: -1");

    ext.n = 0;
    t_wrap(&ext, 0x30);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "empty SEQUENCE: -1");

    t_ok(ngx_http_hpki_hcrole_parse(NULL, 0, role, sizeof(role)) == -1,
         "NULL input: -1");

    /* DirectoryString choices */

    for (k = 0; k < 14; k++) {
        bmp[2 * k] = 0;
        bmp[2 * k + 1] = (unsigned char) "Medical Doctor"[k];
    }

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x1e, bmp, 28,
            NULL);
    t_ext1(&ext, &actors, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0, "BMPString role: parsed");
    t_is(role, "Medical Doctor", "BMPString role converted to UTF-8");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x1e, kanji_bmp,
            sizeof(kanji_bmp), NULL);
    t_ext1(&ext, &actors, 0);
    rc = t_parse(&ext, role, sizeof(role));
    t_is(rc == 0 ? role : NULL, "\xe5\x8c\xbb\xe5\xb8\xab",
         "BMPString kanji converted to UTF-8");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x1e, kanji_bmp, 3,
            NULL);
    t_ext1(&ext, &actors, 0);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "BMPString odd length: -1");

    bmp[0] = 0xd8;
    bmp[1] = 0x00;
    bmp[2] = 0xdc;
    bmp[3] = 0x00;
    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x1e, bmp, 4, NULL);
    t_ext1(&ext, &actors, 0);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1,
         "BMPString surrogates: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x13,
            "Medical Doctor", 14, NULL);
    t_ext1(&ext, &actors, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0 && strcmp(role, "Medical Doctor") == 0,
         "PrintableString role");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x14,
            "Medical Doctor", 14, NULL);
    t_ext1(&ext, &actors, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0 && strcmp(role, "Medical Doctor") == 0,
         "TeletexString role, ASCII");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x14,
            "Caf\xe9", 4, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1,
         "TeletexString with 8-bit byte: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x1c,
            "\0\0\0M\0\0\0D", 8, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "UniversalString: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x16,
            "Medical Doctor", 14, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "IA5String: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "Medical\nDoctor", 14, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "control character: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "Medical\0Doctor", 14, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "embedded NUL: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "Doctor\xc0\xaf", 8, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "overlong UTF-8: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c,
            "\xed\xa0\x80", 3, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "UTF-8 surrogate: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c, "", 0, NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "empty role: -1");

    /* role length limits */

    memset(big, 'A', sizeof(big));

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c, big, 128,
            NULL);
    t_ext1(&ext, &actors, 1);
    rc = t_parse(&ext, role, sizeof(role));
    t_ok(rc == 0 && strlen(role) == 128, "role of 128 bytes: accepted");

    t_ok(t_parse(&ext, role, 128) == -1 && role[0] == '\0',
         "role of 128 bytes into 128-byte buffer: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x0c, big, 129,
            NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "role of 129 bytes: -1");

    actors.n = 0;
    t_actor(&actors, t_oid_scheme, sizeof(t_oid_scheme), 0x1e, big, 260,
            NULL);
    t_ext1(&ext, &actors, 1);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1,
         "BMPString of 130 characters: -1");

    t_b64(&actor, t_vec_doctor);
    t_ext1(&ext, &actor, 1);
    t_ok(t_parse(&ext, role, 14) == -1, "output buffer too small: -1");
    t_ok(t_parse(&ext, role, 15) == 0, "output buffer just large enough");

    /* input size limit */

    ext.n = 0;
    t_attr_other(&ext, 8000);
    t_attr(&ext, &actor, 1);
    t_wrap(&ext, 0x30);
    t_ok(ext.n <= 8192 && t_parse(&ext, role, sizeof(role)) == 0,
         "input of %zu bytes: accepted", ext.n);

    ext.n = 0;
    t_attr_other(&ext, 8200);
    t_attr(&ext, &actor, 1);
    t_wrap(&ext, 0x30);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1,
         "input of %zu bytes (> 8 KiB): -1", ext.n);

    /* truncation: every proper prefix fails */

    t_b64(&actor, t_vec_pharmacist);
    t_ext1(&ext, &actor, 1);

    bad = 0;

    for (len = 0; len < ext.n; len++) {
        if (ngx_http_hpki_hcrole_parse(ext.d, len, role, sizeof(role)) != -1) {
            bad++;
        }
    }

    t_ok(bad == 0, "all %zu truncations: -1", ext.n);

    /* trailing garbage */

    copy = ext;
    copy.d[copy.n++] = 0x00;
    t_ok(t_parse(&copy, role, sizeof(role)) == -1,
         "trailing byte after the SEQUENCE: -1");

    /* overlong: outer length larger than the input */

    copy = ext;
    copy.d[1]++;
    t_ok(t_parse(&copy, role, sizeof(role)) == -1,
         "outer length one too large: -1");

    copy = ext;
    copy.d[3]++;
    t_ok(t_parse(&copy, role, sizeof(role)) == -1,
         "attribute length one too large: -1");

    copy = ext;
    copy.d[1]--;
    t_ok(t_parse(&copy, role, sizeof(role)) == -1,
         "outer length one too small: -1");

    /* non-minimal length: 30 81 xx for a short length */

    copy.n = 0;
    copy.d[0] = 0x30;
    copy.d[1] = 0x81;
    copy.d[2] = ext.d[1];
    copy.n = 3;
    t_raw(&copy, ext.d + 2, ext.n - 2);
    t_ok(t_parse(&copy, role, sizeof(role)) == -1,
         "non-minimal length encoding: -1");

    /* indefinite length (BER) */

    copy.n = 0;
    copy.d[0] = 0x30;
    copy.d[1] = 0x80;
    copy.n = 2;
    t_raw(&copy, ext.d + 2, ext.n - 2);
    copy.d[copy.n++] = 0;
    copy.d[copy.n++] = 0;
    t_ok(t_parse(&copy, role, sizeof(role)) == -1, "indefinite length: -1");

    /* values not a SET */

    copy = ext;
    for (k = 0; k + 1 < copy.n; k++) {
        if (copy.d[k] == 0x31) {
            copy.d[k] = 0x30;
            break;
        }
    }

    t_ok(t_parse(&copy, role, sizeof(role)) == -1,
         "attribute values not a SET: -1");

    /* a SET of SETs of SETs (two extra levels) */

    ext.n = 0;
    actors = actor;
    t_wrap(&actors, 0x31);
    t_attr(&ext, &actors, 1);
    t_wrap(&ext, 0x30);
    t_ok(t_parse(&ext, role, sizeof(role)) == -1, "two extra SET levels: -1");

    /* missing codeDataFreeText */

    {
        t_buf_t  f;

        f.n = 0;
        t_raw(&f, t_oid_scheme, sizeof(t_oid_scheme));
        t_wrap(&f, 0xa0);
        t_wrap(&f, 0x31);
        t_wrap(&f, 0xa0);
        t_wrap(&f, 0x30);
        t_ext1(&ext, &f, 1);
        t_ok(t_parse(&ext, role, sizeof(role)) == -1,
             "HCActor without codeDataFreeText: -1");
    }

    /* duplicated codeDataFreeText */

    {
        t_buf_t  f, g;

        f.n = 0;
        t_raw(&f, t_oid_scheme, sizeof(t_oid_scheme));
        t_wrap(&f, 0xa0);
        g.n = 0;
        t_tlv(&g, 0x0c, "Dentist", 7);
        t_wrap(&g, 0xa2);
        t_raw(&f, g.d, g.n);
        t_raw(&f, g.d, g.n);
        t_wrap(&f, 0x31);
        t_wrap(&f, 0xa0);
        t_wrap(&f, 0x30);
        t_ext1(&ext, &f, 1);
        t_ok(t_parse(&ext, role, sizeof(role)) == -1,
             "duplicated codeDataFreeText: -1");
    }

    /* bit flips of a valid input: never a crash, result always sane */

    t_b64(&actor, t_vec_doctor);
    t_ext1(&ext, &actor, 1);

    bad = 0;

    for (k = 0; k < ext.n; k++) {
        for (bit = 0; bit < 8; bit++) {
            copy = ext;
            copy.d[k] ^= (unsigned char) (1 << bit);
            memset(role, 'Z', sizeof(role));

            rc = t_parse(&copy, role, sizeof(role));

            if ((rc != 0 && rc != -1)
                || memchr(role, '\0', sizeof(role)) == NULL
                || (rc == -1 && role[0] != '\0'))
            {
                bad++;
            }
        }
    }

    t_ok(bad == 0, "%zu single-bit flips: sane results", ext.n * 8);

    /* random garbage, and garbage behind a valid-looking header */

    seed = 12345;
    crashes = 0;

    for (i = 0; i < 20000; i++) {
        len = rand_r(&seed) % 200;

        for (k = 0; k < len; k++) {
            copy.d[k] = (unsigned char) rand_r(&seed);
        }

        if (i % 2 && len > 2) {
            copy.d[0] = 0x30;
            copy.d[1] = (unsigned char) (len - 2);
        }

        copy.n = len;

        rc = t_parse(&copy, role, sizeof(role));
        if (rc != 0 && rc != -1) {
            crashes++;
        }
    }

    t_ok(crashes == 0, "20000 random inputs: 0 or -1");
}


/* certificates */

static EVP_PKEY  *t_key;


static X509 *
t_cert(const char *ku, const char *policies, const t_buf_t *sda,
    long serial)
{
    X509                *x;
    X509_NAME           *name;
    X509_EXTENSION      *ext;
    X509V3_CTX           ctx;
    CONF                *conf;
    ASN1_OCTET_STRING   *os;

    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);

    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
                               (unsigned char *) "JP", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (unsigned char *) "Test, Clinic", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (unsigned char *) "HPKI Test CA", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, t_key);

    /* certificatePolicies needs a (here empty) configuration database */
    conf = NCONF_new(NULL);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509V3_set_nconf(&ctx, conf);

    if (ku != NULL) {
        ext = X509V3_EXT_nconf_nid(conf, &ctx, NID_key_usage, ku);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }

    if (policies != NULL) {
        ext = X509V3_EXT_nconf_nid(conf, &ctx, NID_certificate_policies,
                                   policies);
        if (ext == NULL) {
            fprintf(stderr, "bad test policies \"%s\"\n", policies);
            exit(2);
        }

        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }

    if (sda != NULL) {
        os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, sda->d, (int) sda->n);
        ext = X509_EXTENSION_create_by_NID(NULL,
                                           NID_subject_directory_attributes,
                                           0, os);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
    }

    X509_sign(x, t_key, EVP_sha256());
    NCONF_free(conf);

    return x;
}


static void
t_certs(void)
{
    X509           *x;
    char            buf[512], exp[64];
    int             n;
    size_t          k;
    t_buf_t         actor, ext;
    unsigned int    mdlen;
    unsigned char  *der, *p, md[32];
    BIGNUM         *bn;

    t_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    t_ok(t_key != NULL, "test key generated");

#define KIND(ku, pol)  ({ int k_; x = t_cert(ku, pol, NULL, 1);              \
                          k_ = ngx_http_hpki_cert_kind(x); X509_free(x); k_; })

    t_ok(KIND("critical,nonRepudiation", "1.2.392.100495.1.5.1.1.0.1")
         == NGX_HTTP_HPKI_CERT_SIGN, "signing certificate: SIGN");
    t_ok(KIND("critical,digitalSignature", "1.2.392.100495.1.5.1.2.0.1")
         == NGX_HTTP_HPKI_CERT_AUTH, "authentication certificate: AUTH");
    t_ok(KIND("critical,digitalSignature,keyEncipherment",
              "1.2.392.100495.1.5.1.2.0.1")
         == NGX_HTTP_HPKI_CERT_AUTH, "auth certificate, more usages: AUTH");
    t_ok(KIND("critical,nonRepudiation", "1.2.392.100495.1.5.1.2.0.1") == 0,
         "nonRepudiation only, auth policy: not AUTH");
    t_ok(KIND("critical,nonRepudiation",
              "1.2.392.100495.1.5.1.1.0.1,1.2.392.100495.1.5.1.2.0.1")
         == NGX_HTTP_HPKI_CERT_SIGN,
         "nonRepudiation only, both policies: SIGN only");
    t_ok(KIND("critical,digitalSignature", "1.2.392.100495.1.5.1.1.0.1") == 0,
         "digitalSignature, signing policy: neither");
    t_ok(KIND("critical,digitalSignature,nonRepudiation",
              "1.2.392.100495.1.5.1.1.0.1,1.2.392.100495.1.5.1.2.0.1")
         == (NGX_HTTP_HPKI_CERT_AUTH | NGX_HTTP_HPKI_CERT_SIGN),
         "both usages and policies: AUTH|SIGN");
    t_ok(KIND("critical,digitalSignature", "1.2.392.200149.8.5.1.3")
         == NGX_HTTP_HPKI_CERT_JPKI_AUTH,
         "JPKI authentication policy: JPKI_AUTH only");
    t_ok(KIND("critical,digitalSignature,nonRepudiation",
              "1.2.392.200149.8.5.1.1")
         == NGX_HTTP_HPKI_CERT_JPKI_SIGN,
         "JPKI signing policy: JPKI_SIGN only");
    t_ok(KIND("critical,digitalSignature,nonRepudiation",
              "1.2.392.200149.8.5.1.3")
         == 0, "JPKI authentication policy with nonRepudiation: neither");
    t_ok(KIND("critical,digitalSignature", "1.2.392.100495.1.5.1.20") == 0,
         "sibling arc 1.2.392.100495.1.5.1.20: neither");
    t_ok(KIND("critical,digitalSignature", "1.2.392.100495.1.5.1") == 0,
         "parent arc 1.2.392.100495.1.5.1: neither");
    t_ok(KIND("critical,digitalSignature", "1.2.392.100495.1.5.1.2")
         == NGX_HTTP_HPKI_CERT_AUTH, "the arc itself: AUTH");
    t_ok(KIND("critical,digitalSignature", "1.2.392.100495.1.5.1.2.300.1")
         == NGX_HTTP_HPKI_CERT_AUTH, "multi-byte arc under it: AUTH");
    t_ok(KIND(NULL, "1.2.392.100495.1.5.1.2.0.1") == 0,
         "no keyUsage: neither");
    t_ok(KIND("critical,digitalSignature", NULL) == 0,
         "no policies: neither");
    t_ok(KIND("critical,keyCertSign,cRLSign", "1.2.392.100495.1.5.1.2.3.1")
         == 0, "CA-like keyUsage: neither");
    t_ok(ngx_http_hpki_cert_kind(NULL) == 0, "NULL certificate: 0");

#undef KIND

    /* role from a certificate */

    t_b64(&actor, t_vec_doctor);
    t_ext1(&ext, &actor, 1);

    x = t_cert("critical,digitalSignature", "1.2.392.100495.1.5.1.2.0.1",
               &ext, 0x01abcdef);

    t_ok(ngx_http_hpki_cert_role(x, buf, sizeof(buf)) == 0
         && strcmp(buf, "Medical Doctor") == 0, "role from a certificate");

    /* x5t#S256, computed independently */

    n = i2d_X509(x, NULL);
    der = malloc(n);
    p = der;
    i2d_X509(x, &p);
    EVP_Digest(der, n, md, &mdlen, EVP_sha256(), NULL);
    free(der);

    EVP_EncodeBlock((unsigned char *) exp, md, 32);
    for (k = 0; exp[k]; k++) {
        exp[k] = exp[k] == '+' ? '-' : exp[k] == '/' ? '_' : exp[k];
    }
    exp[43] = '\0';

    t_ok(ngx_http_hpki_cert_x5t(x, buf, sizeof(buf)) == 0, "x5t: 0");
    t_is(buf, exp, "x5t equals base64url(SHA-256(DER))");
    t_ok(strlen(buf) == 43, "x5t is 43 characters");
    t_ok(ngx_http_hpki_cert_x5t(x, buf, 43) == -1, "x5t, 43-byte buffer: -1");

    /* serial */

    t_ok(ngx_http_hpki_cert_serial_hex(x, buf, sizeof(buf)) == 0
         && strcmp(buf, "01ABCDEF") == 0, "serial 0x01abcdef: \"%s\"", buf);
    t_ok(ngx_http_hpki_cert_serial_hex(x, buf, 8) == -1,
         "serial, small buffer: -1");
    t_ok(ngx_http_hpki_cert_serial_hex(x, buf, 9) == 0,
         "serial, exact buffer: 0");

    /* issuer */

    t_ok(ngx_http_hpki_cert_issuer_text(x, buf, sizeof(buf)) == 0, "issuer");
    t_is(buf, "CN=HPKI Test CA,O=Test\\, Clinic,C=JP", "issuer RFC 2253");
    t_ok(ngx_http_hpki_cert_issuer_text(x, buf, 10) == -1 && buf[0] == '\0',
         "issuer, small buffer: -1");

    X509_free(x);

    /* no extension; duplicated extension; serial forms */

    x = t_cert("critical,digitalSignature", "1.2.392.100495.1.5.1.2.0.1",
               NULL, 0);
    t_ok(ngx_http_hpki_cert_role(x, buf, sizeof(buf)) == -1,
         "certificate without subjectDirectoryAttributes: -1");
    t_ok(ngx_http_hpki_cert_serial_hex(x, buf, sizeof(buf)) == 0
         && strcmp(buf, "00") == 0, "serial 0: \"%s\"", buf);
    X509_free(x);

    x = t_cert(NULL, NULL, &ext, -5);
    t_ok(ngx_http_hpki_cert_serial_hex(x, buf, sizeof(buf)) == 0
         && strcmp(buf, "-05") == 0, "serial -5: \"%s\"", buf);
    X509_free(x);

    x = t_cert(NULL, NULL, &ext, 1);
    {
        X509_EXTENSION     *e2;
        ASN1_OCTET_STRING  *os;

        os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, ext.d, (int) ext.n);
        e2 = X509_EXTENSION_create_by_NID(NULL,
                                          NID_subject_directory_attributes,
                                          0, os);
        X509_add_ext(x, e2, -1);
        X509_EXTENSION_free(e2);
        ASN1_OCTET_STRING_free(os);
    }
    t_ok(ngx_http_hpki_cert_role(x, buf, sizeof(buf)) == -1,
         "duplicated subjectDirectoryAttributes: -1");
    X509_free(x);

    x = t_cert(NULL, NULL, NULL, 1);
    bn = BN_new();
    BN_hex2bn(&bn, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    t_ok(ngx_http_hpki_cert_serial_hex(x, buf, sizeof(buf)) == 0
         && strcmp(buf, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF") == 0,
         "20-byte serial");
    X509_free(x);

    t_ok(ngx_http_hpki_cert_x5t(NULL, buf, sizeof(buf)) == -1
         && ngx_http_hpki_cert_role(NULL, buf, sizeof(buf)) == -1
         && ngx_http_hpki_cert_serial_hex(NULL, buf, sizeof(buf)) == -1
         && ngx_http_hpki_cert_issuer_text(NULL, buf, sizeof(buf)) == -1,
         "NULL certificate: -1 everywhere");

    EVP_PKEY_free(t_key);
}


static int
t_inspect(const char *path)
{
    FILE  *f;
    X509  *x;
    char   role[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1], x5t[64], serial[128],
           issuer[1024];

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return 2;
    }

    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);

    if (x == NULL) {
        fprintf(stderr, "%s: not a PEM certificate\n", path);
        return 2;
    }

    if (ngx_http_hpki_cert_role(x, role, sizeof(role)) != 0) {
        strcpy(role, "-");
    }

    if (ngx_http_hpki_cert_x5t(x, x5t, sizeof(x5t)) != 0
        || ngx_http_hpki_cert_serial_hex(x, serial, sizeof(serial)) != 0
        || ngx_http_hpki_cert_issuer_text(x, issuer, sizeof(issuer)) != 0)
    {
        X509_free(x);
        return 2;
    }

    printf("kind=%d\nrole=%s\nx5t=%s\nserial=%s\nissuer=%s\n",
           ngx_http_hpki_cert_kind(x), role, x5t, serial, issuer);

    X509_free(x);

    return 0;
}


int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--inspect") == 0) {
        return t_inspect(argv[2]);
    }

    t_hcrole();
    t_certs();

    printf("1..%d\n", t_num);

    return t_failed ? 1 : 0;
}
