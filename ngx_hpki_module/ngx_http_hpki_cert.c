
/*
 * HPKI certificate helpers.  Pure C on OpenSSL: no nginx calls.
 *
 * The hcRole parser walks DER with ASN1_get_object() and accepts only
 * definite, minimal lengths that fit their parent exactly; OIDs are compared
 * by their DER contents, never decoded.
 */


#include <string.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "ngx_http_hpki_cert.h"
#include "ngx_http_hpki_jws.h"


typedef struct {
    const unsigned char  *data;      /* contents */
    size_t                len;
    int                   tag;
    int                   cls;       /* V_ASN1_UNIVERSAL, ... */
    int                   cons;      /* constructed */
} ngx_http_hpki_tlv_t;


typedef struct {
    char                 *role;
    size_t                size;
    int                   found;
} ngx_http_hpki_role_ctx_t;


static int ngx_http_hpki_tlv_next(const unsigned char **pos,
    const unsigned char *end, ngx_http_hpki_tlv_t *t);
static int ngx_http_hpki_tlv_expect(const unsigned char **pos,
    const unsigned char *end, int cls, int tag, int cons,
    ngx_http_hpki_tlv_t *t);
static int ngx_http_hpki_tlv_only(const unsigned char *data, size_t len,
    ngx_http_hpki_tlv_t *t);
static int ngx_http_hpki_oid_eq(ngx_http_hpki_tlv_t *t,
    const unsigned char *oid, size_t len);
static int ngx_http_hpki_hcrole_values(const unsigned char *p,
    const unsigned char *end, ngx_http_hpki_role_ctx_t *ctx);
static int ngx_http_hpki_hcrole_actor(ngx_http_hpki_tlv_t *actor,
    ngx_http_hpki_role_ctx_t *ctx);
static int ngx_http_hpki_hcrole_text(ngx_http_hpki_tlv_t *t, char *out,
    size_t size);
static int ngx_http_hpki_utf8_valid(const unsigned char *s, size_t len);
static int ngx_http_hpki_oid_under(const ASN1_OBJECT *obj,
    const unsigned char *arc, size_t len);


/* DER contents of the OIDs used here */

/* 1.0.17090.0.1, the hcRole attribute type */
static const unsigned char  ngx_http_hpki_oid_hcrole[] = {
    0x28, 0x81, 0x85, 0x42, 0x00, 0x01
};

/* 1.2.392.100495.1.6.1.1, the HPKI coding scheme of roles */
static const unsigned char  ngx_http_hpki_oid_scheme[] = {
    0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x06, 0x01, 0x01
};

/* 1.2.392.100495.1.5.1.1, signing (non-repudiation) policies */
static const unsigned char  ngx_http_hpki_oid_policy_sign[] = {
    0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x05, 0x01, 0x01
};

/* 1.2.392.100495.1.5.1.2, authentication policies */
static const unsigned char  ngx_http_hpki_oid_policy_auth[] = {
    0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x05, 0x01, 0x02
};

/* 1.2.392.200149.8.5.1.3, JPKI user authentication (no personal data) */
static const unsigned char  ngx_http_hpki_oid_jpki_auth[] = {
    0x2a, 0x83, 0x08, 0x8c, 0x9b, 0x55, 0x08, 0x05, 0x01, 0x03
};

/* 1.2.392.200149.8.5.1.1, JPKI signing (name, birth date, home address) */
static const unsigned char  ngx_http_hpki_oid_jpki_sign[] = {
    0x2a, 0x83, 0x08, 0x8c, 0x9b, 0x55, 0x08, 0x05, 0x01, 0x01
};


int
ngx_http_hpki_hcrole_parse(const unsigned char *der, size_t len, char *role,
    size_t size)
{
    int                        rc;
    const unsigned char       *p, *end, *q, *qend, *a, *aend;
    ngx_http_hpki_tlv_t        seq, attr, type, values;
    ngx_http_hpki_role_ctx_t   ctx;

    if (role == NULL || size == 0) {
        return -1;
    }

    role[0] = '\0';

    if (der == NULL || len == 0 || len > NGX_HTTP_HPKI_HCROLE_MAX_INPUT) {
        return -1;
    }

    ctx.role = role;
    ctx.size = size;
    ctx.found = 0;

    rc = -1;

    ERR_set_mark();

    p = der;
    end = der + len;

    /* SEQUENCE OF Attribute, spanning the whole input */

    if (ngx_http_hpki_tlv_expect(&p, end, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE,
                                 1, &seq)
        != 0
        || p != end)
    {
        goto done;
    }

    q = seq.data;
    qend = seq.data + seq.len;

    while (q < qend) {

        /* Attribute ::= SEQUENCE { type OID, values SET } */

        if (ngx_http_hpki_tlv_expect(&q, qend, V_ASN1_UNIVERSAL,
                                     V_ASN1_SEQUENCE, 1, &attr)
            != 0)
        {
            goto done;
        }

        a = attr.data;
        aend = attr.data + attr.len;

        if (ngx_http_hpki_tlv_expect(&a, aend, V_ASN1_UNIVERSAL,
                                     V_ASN1_OBJECT, 0, &type)
            != 0
            || ngx_http_hpki_tlv_expect(&a, aend, V_ASN1_UNIVERSAL,
                                        V_ASN1_SET, 1, &values)
               != 0
            || a != aend)
        {
            goto done;
        }

        if (!ngx_http_hpki_oid_eq(&type, ngx_http_hpki_oid_hcrole,
                                  sizeof(ngx_http_hpki_oid_hcrole)))
        {
            continue;
        }

        if (ngx_http_hpki_hcrole_values(values.data,
                                        values.data + values.len, &ctx)
            != 0)
        {
            goto done;
        }
    }

    rc = ctx.found ? 0 : -1;

done:

    if (rc != 0) {
        role[0] = '\0';
    }

    ERR_pop_to_mark();

    return rc;
}


/*
 * values: SET OF HCActor, or the field shape SET { SET OF HCActor };
 * 0 if well formed (ctx->found tells whether a role was taken), -1 if not
 */

static int
ngx_http_hpki_hcrole_values(const unsigned char *p, const unsigned char *end,
    ngx_http_hpki_role_ctx_t *ctx)
{
    const unsigned char  *q, *qend;
    ngx_http_hpki_tlv_t   t, actor;

    while (p < end) {

        if (ngx_http_hpki_tlv_next(&p, end, &t) != 0
            || t.cls != V_ASN1_UNIVERSAL || !t.cons)
        {
            return -1;
        }

        if (t.tag == V_ASN1_SEQUENCE) {
            if (ngx_http_hpki_hcrole_actor(&t, ctx) != 0) {
                return -1;
            }

            continue;
        }

        if (t.tag != V_ASN1_SET) {
            return -1;
        }

        /* the extra SET level seen in the field */

        q = t.data;
        qend = t.data + t.len;

        while (q < qend) {
            if (ngx_http_hpki_tlv_expect(&q, qend, V_ASN1_UNIVERSAL,
                                         V_ASN1_SEQUENCE, 1, &actor)
                != 0
                || ngx_http_hpki_hcrole_actor(&actor, ctx) != 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


/*
 * HCActor ::= SEQUENCE { codedData [0] EXPLICIT CodedData,
 *                        regionalHCActorData [1] ... OPTIONAL }
 * CodedData ::= SET { codingSchemeReference [0] EXPLICIT OID,
 *                     codeDataValue [1] EXPLICIT NumericString OPTIONAL,
 *                     codeDataFreeText [2] EXPLICIT DirectoryString }
 */

static int
ngx_http_hpki_hcrole_actor(ngx_http_hpki_tlv_t *actor,
    ngx_http_hpki_role_ctx_t *ctx)
{
    int                   seen;
    char                  buf[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1];
    const unsigned char  *p, *end, *q, *qend;
    ngx_http_hpki_tlv_t   t, set, field, scheme, value, text;

    memset(&scheme, 0, sizeof(ngx_http_hpki_tlv_t));
    memset(&text, 0, sizeof(ngx_http_hpki_tlv_t));

    p = actor->data;
    end = actor->data + actor->len;

    if (ngx_http_hpki_tlv_expect(&p, end, V_ASN1_CONTEXT_SPECIFIC, 0, 1, &t)
        != 0
        || ngx_http_hpki_tlv_only(t.data, t.len, &set) != 0
        || set.cls != V_ASN1_UNIVERSAL || set.tag != V_ASN1_SET || !set.cons)
    {
        return -1;
    }

    if (p < end) {
        /* regionalHCActorData, not used in Japan: framing only */

        if (ngx_http_hpki_tlv_next(&p, end, &t) != 0
            || t.cls != V_ASN1_CONTEXT_SPECIFIC || t.tag != 1)
        {
            return -1;
        }
    }

    if (p != end) {
        return -1;
    }

    seen = 0;
    q = set.data;
    qend = set.data + set.len;

    while (q < qend) {

        if (ngx_http_hpki_tlv_next(&q, qend, &field) != 0
            || field.cls != V_ASN1_CONTEXT_SPECIFIC || !field.cons
            || field.tag > 2
            || (seen & (1 << field.tag)))
        {
            return -1;
        }

        seen |= 1 << field.tag;

        switch (field.tag) {

        case 0:
            if (ngx_http_hpki_tlv_only(field.data, field.len, &scheme) != 0
                || scheme.cls != V_ASN1_UNIVERSAL
                || scheme.tag != V_ASN1_OBJECT || scheme.cons
                || scheme.len == 0)
            {
                return -1;
            }

            break;

        case 1:
            if (ngx_http_hpki_tlv_only(field.data, field.len, &value) != 0
                || value.cls != V_ASN1_UNIVERSAL
                || value.tag != V_ASN1_NUMERICSTRING || value.cons)
            {
                return -1;
            }

            break;

        default: /* 2 */
            if (ngx_http_hpki_tlv_only(field.data, field.len, &text) != 0
                || text.cls != V_ASN1_UNIVERSAL || text.cons)
            {
                return -1;
            }

            break;
        }
    }

    if ((seen & 0x05) != 0x05) {
        return -1;
    }

    if (!ngx_http_hpki_oid_eq(&scheme, ngx_http_hpki_oid_scheme,
                              sizeof(ngx_http_hpki_oid_scheme)))
    {
        return 0;
    }

    if (ngx_http_hpki_hcrole_text(&text, buf, sizeof(buf)) != 0) {
        return -1;
    }

    if (ctx->found) {
        return 0;
    }

    if (strlen(buf) >= ctx->size) {
        return -1;
    }

    memcpy(ctx->role, buf, strlen(buf) + 1);
    ctx->found = 1;

    return 0;
}


/* DirectoryString to NUL-terminated UTF-8, at most MAX_ROLE bytes */

static int
ngx_http_hpki_hcrole_text(ngx_http_hpki_tlv_t *t, char *out, size_t size)
{
    size_t          i, n;
    unsigned int    c;
    unsigned char  *o;

    o = (unsigned char *) out;
    n = 0;

    switch (t->tag) {

    case V_ASN1_UTF8STRING:
        if (t->len >= size) {
            return -1;
        }

        memcpy(o, t->data, t->len);
        n = t->len;
        break;

    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_T61STRING:
        /* ASCII only: TeletexString is not Latin-1 */

        if (t->len >= size) {
            return -1;
        }

        for (i = 0; i < t->len; i++) {
            if (t->data[i] >= 0x80) {
                return -1;
            }

            o[n++] = t->data[i];
        }

        break;

    case V_ASN1_BMPSTRING:
        if (t->len % 2) {
            return -1;
        }

        for (i = 0; i < t->len; i += 2) {
            c = (t->data[i] << 8) | t->data[i + 1];

            if (c >= 0xd800 && c <= 0xdfff) {
                return -1;
            }

            if (n + 3 >= size) {
                return -1;
            }

            if (c < 0x80) {
                o[n++] = (unsigned char) c;

            } else if (c < 0x800) {
                o[n++] = (unsigned char) (0xc0 | (c >> 6));
                o[n++] = (unsigned char) (0x80 | (c & 0x3f));

            } else {
                o[n++] = (unsigned char) (0xe0 | (c >> 12));
                o[n++] = (unsigned char) (0x80 | ((c >> 6) & 0x3f));
                o[n++] = (unsigned char) (0x80 | (c & 0x3f));
            }
        }

        break;

    default:
        /* UniversalString and anything else */
        return -1;
    }

    if (n == 0 || n > NGX_HTTP_HPKI_HCROLE_MAX_ROLE
        || !ngx_http_hpki_utf8_valid(o, n))
    {
        return -1;
    }

    o[n] = '\0';

    return 0;
}


/*
 * well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) without
 * control characters (C0, DEL, C1) and without NUL
 */

static int
ngx_http_hpki_utf8_valid(const unsigned char *s, size_t len)
{
    size_t        i, k, n;
    unsigned int  c, min;

    for (i = 0; i < len; i += n) {
        c = s[i];

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return 0;
            }

            n = 1;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 2;
            c &= 0x1f;
            min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            c &= 0x0f;
            min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            c &= 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (s[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)
            || (c >= 0x80 && c <= 0x9f))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * one DER TLV at *pos, within end: definite, minimal length, low tag
 * number; on success *pos moves past it
 */

static int
ngx_http_hpki_tlv_next(const unsigned char **pos, const unsigned char *end,
    ngx_http_hpki_tlv_t *t)
{
    int                   rc, tag, cls;
    long                  len;
    size_t                hlen, n;
    const unsigned char  *p;

    p = *pos;

    if (p >= end) {
        return -1;
    }

    rc = ASN1_get_object(&p, &len, &tag, &cls, (long) (end - *pos));

    if (rc & 0x80) {
        return -1;
    }

    if (rc & 0x01) {
        /* indefinite length is BER, not DER */
        return -1;
    }

    if (tag >= 31 || len < 0 || p > end || (size_t) len > (size_t) (end - p)) {
        return -1;
    }

    /* minimal header: one tag octet and the shortest length form */

    hlen = 2;

    if (len >= 128) {
        for (n = (size_t) len; n; n >>= 8) {
            hlen++;
        }
    }

    if ((size_t) (p - *pos) != hlen) {
        return -1;
    }

    t->data = p;
    t->len = (size_t) len;
    t->tag = tag;
    t->cls = cls;
    t->cons = (rc & V_ASN1_CONSTRUCTED) ? 1 : 0;

    *pos = p + len;

    return 0;
}


static int
ngx_http_hpki_tlv_expect(const unsigned char **pos, const unsigned char *end,
    int cls, int tag, int cons, ngx_http_hpki_tlv_t *t)
{
    if (ngx_http_hpki_tlv_next(pos, end, t) != 0) {
        return -1;
    }

    if (t->cls != cls || t->tag != tag || t->cons != cons) {
        return -1;
    }

    return 0;
}


/* exactly one TLV spanning data..data+len (an EXPLICIT tag's contents) */

static int
ngx_http_hpki_tlv_only(const unsigned char *data, size_t len,
    ngx_http_hpki_tlv_t *t)
{
    const unsigned char  *p;

    p = data;

    if (ngx_http_hpki_tlv_next(&p, data + len, t) != 0 || p != data + len) {
        return -1;
    }

    return 0;
}


static int
ngx_http_hpki_oid_eq(ngx_http_hpki_tlv_t *t, const unsigned char *oid,
    size_t len)
{
    return t->len == len && memcmp(t->data, oid, len) == 0;
}


int
ngx_http_hpki_cert_role(X509 *x, char *role, size_t size)
{
    int                  idx;
    X509_EXTENSION      *ext;
    ASN1_OCTET_STRING   *data;

    if (role == NULL || size == 0) {
        return -1;
    }

    role[0] = '\0';

    if (x == NULL) {
        return -1;
    }

    idx = X509_get_ext_by_NID(x, NID_subject_directory_attributes, -1);
    if (idx < 0) {
        return -1;
    }

    if (X509_get_ext_by_NID(x, NID_subject_directory_attributes, idx) >= 0) {
        /* duplicated extension */
        return -1;
    }

    ext = X509_get_ext(x, idx);
    if (ext == NULL) {
        return -1;
    }

    data = X509_EXTENSION_get_data(ext);
    if (data == NULL || ASN1_STRING_length(data) <= 0) {
        return -1;
    }

    return ngx_http_hpki_hcrole_parse(ASN1_STRING_get0_data(data),
                                      (size_t) ASN1_STRING_length(data),
                                      role, size);
}


int
ngx_http_hpki_cert_kind(X509 *x)
{
    int                   i, crit, kind, auth, sign, jauth, jsign;
    uint32_t              flags, ku;
    POLICYINFO           *pi;
    CERTIFICATEPOLICIES  *pols;

    if (x == NULL) {
        return 0;
    }

    ERR_set_mark();

    flags = X509_get_extension_flags(x);

    if ((flags & EXFLAG_INVALID) || !(flags & EXFLAG_KUSAGE)) {
        ERR_pop_to_mark();
        return 0;
    }

    ku = X509_get_key_usage(x);

    pols = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL);
    if (pols == NULL) {
        ERR_pop_to_mark();
        return 0;
    }

    auth = 0;
    sign = 0;
    jauth = 0;
    jsign = 0;

    for (i = 0; i < sk_POLICYINFO_num(pols); i++) {
        pi = sk_POLICYINFO_value(pols, i);

        jauth |= ngx_http_hpki_oid_under(pi->policyid,
                                     ngx_http_hpki_oid_jpki_auth,
                                     sizeof(ngx_http_hpki_oid_jpki_auth));
        jsign |= ngx_http_hpki_oid_under(pi->policyid,
                                     ngx_http_hpki_oid_jpki_sign,
                                     sizeof(ngx_http_hpki_oid_jpki_sign));

        if (ngx_http_hpki_oid_under(pi->policyid,
                                    ngx_http_hpki_oid_policy_auth,
                                    sizeof(ngx_http_hpki_oid_policy_auth)))
        {
            auth = 1;
        }

        if (ngx_http_hpki_oid_under(pi->policyid,
                                    ngx_http_hpki_oid_policy_sign,
                                    sizeof(ngx_http_hpki_oid_policy_sign)))
        {
            sign = 1;
        }
    }

    CERTIFICATEPOLICIES_free(pols);

    ERR_pop_to_mark();

    kind = 0;

    if (auth && (ku & KU_DIGITAL_SIGNATURE)) {
        kind |= NGX_HTTP_HPKI_CERT_AUTH;
    }

    if (sign && (ku & KU_NON_REPUDIATION)) {
        kind |= NGX_HTTP_HPKI_CERT_SIGN;
    }

    if (jauth && (ku & KU_DIGITAL_SIGNATURE) && !(ku & KU_NON_REPUDIATION)) {
        kind |= NGX_HTTP_HPKI_CERT_JPKI_AUTH;
    }

    if (jsign) {
        kind |= NGX_HTTP_HPKI_CERT_JPKI_SIGN;
    }

    return kind;
}


/*
 * obj is the arc or under it: the arc's DER contents are a prefix; as the
 * last octet of a DER arc has bit 8 clear, a prefix ends on an arc boundary
 */

static int
ngx_http_hpki_oid_under(const ASN1_OBJECT *obj, const unsigned char *arc,
    size_t len)
{
    size_t                n;
    const unsigned char  *data;

    if (obj == NULL) {
        return 0;
    }

    data = OBJ_get0_data(obj);
    n = OBJ_length(obj);

    return data != NULL && n >= len && memcmp(data, arc, len) == 0;
}


int
ngx_http_hpki_cert_x5t(X509 *x, char *out, size_t size)
{
    unsigned int   n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (out == NULL || size < NGX_HTTP_HPKI_X5T_LEN) {
        return -1;
    }

    out[0] = '\0';

    if (x == NULL || !X509_digest(x, EVP_sha256(), md, &n) || n != 32) {
        return -1;
    }

    if (ngx_http_hpki_base64url_encode(md, n, out, size) != 43) {
        out[0] = '\0';
        return -1;
    }

    return 0;
}


int
ngx_http_hpki_cert_serial_hex(X509 *x, char *out, size_t size)
{
    int                    neg, len, i;
    size_t                 n;
    const unsigned char   *data;
    const ASN1_INTEGER    *serial;
    static const char      hex[] = "0123456789ABCDEF";

    if (out == NULL || size == 0) {
        return -1;
    }

    out[0] = '\0';

    if (x == NULL) {
        return -1;
    }

    serial = X509_get0_serialNumber(x);
    if (serial == NULL) {
        return -1;
    }

    neg = (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER);
    data = ASN1_STRING_get0_data(serial);
    len = ASN1_STRING_length(serial);

    if (len < 0 || (len > 0 && data == NULL)) {
        return -1;
    }

    n = (size_t) neg + (len ? 2 * (size_t) len : 2);

    if (n >= size) {
        return -1;
    }

    n = 0;

    if (neg) {
        out[n++] = '-';
    }

    if (len == 0) {
        out[n++] = '0';
        out[n++] = '0';
    }

    for (i = 0; i < len; i++) {
        out[n++] = hex[data[i] >> 4];
        out[n++] = hex[data[i] & 0x0f];
    }

    out[n] = '\0';

    return 0;
}


int
ngx_http_hpki_cert_issuer_text(X509 *x, char *out, size_t size)
{
    int    rc;
    long   n;
    BIO   *bio;
    char  *data;

    if (out == NULL || size == 0) {
        return -1;
    }

    out[0] = '\0';

    if (x == NULL) {
        return -1;
    }

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return -1;
    }

    rc = -1;

    if (X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253)
        < 0)
    {
        goto done;
    }

    n = BIO_get_mem_data(bio, &data);

    if (n < 0 || (size_t) n >= size || (n > 0 && data == NULL)
        || (n > 0 && memchr(data, '\0', (size_t) n) != NULL))
    {
        goto done;
    }

    memcpy(out, data, (size_t) n);
    out[n] = '\0';

    rc = 0;

done:

    BIO_free(bio);

    return rc;
}
