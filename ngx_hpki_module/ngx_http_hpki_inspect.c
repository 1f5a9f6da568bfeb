/*
 * Certificate inspection and signature verification for the receiving side:
 * the pure C core of POST /hpki/verify and "hpki-admin cert inspect"
 * (see ngx_http_hpki_inspect.h).  No nginx calls.
 */


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ngx_http_hpki_cert.h"
#include "ngx_http_hpki_inspect.h"


#define NGX_HTTP_HPKI_INSPECT_FILE_MAX  (4 * 1024 * 1024)
#define NGX_HTTP_HPKI_INSPECT_NAME_MAX  4096


struct ngx_http_hpki_inspect_store_s {
    X509_STORE                  *store;         /* anchors and CRLs */
    STACK_OF(X509)              *untrusted;     /* intermediates */
    STACK_OF(X509)              *cas;           /* all, for CRL issuers */
    STACK_OF(X509_CRL)          *crls;
    size_t                       nanchors;
};


typedef struct {
    const char                  *name;
    int                          id;
    size_t                       len;
} ngx_http_hpki_inspect_alg_t;


typedef struct {
    uint32_t                     bit;
    const char                  *name;
} ngx_http_hpki_inspect_ku_t;


static const EVP_MD *ngx_http_hpki_inspect_md(int hash_alg);
static unsigned char *ngx_http_hpki_inspect_read_file(const char *path,
    size_t *len, char *err, size_t size);
static STACK_OF(X509_CRL) *ngx_http_hpki_inspect_read_crls(
    const unsigned char *data, size_t len);
static int ngx_http_hpki_inspect_add_cas(ngx_http_hpki_inspect_store_t *st,
    const char *path, char *err, size_t size);
static int ngx_http_hpki_inspect_add_crls(ngx_http_hpki_inspect_store_t *st,
    const char *path, char *err, size_t size);
static json_t *ngx_http_hpki_inspect_name(X509_NAME *name);
static json_t *ngx_http_hpki_inspect_time(const ASN1_TIME *t);
static json_t *ngx_http_hpki_inspect_key_usage(X509 *x);
static const char *ngx_http_hpki_inspect_kind(X509 *x);
static const char *ngx_http_hpki_inspect_revocation(
    ngx_http_hpki_inspect_store_t *st, X509 *x, X509 *issuer, time_t now);
static int ngx_http_hpki_inspect_base64(const char *in, size_t len,
    unsigned char *out, size_t size, size_t *outlen, int skip_space);
static int ngx_http_hpki_inspect_cert_text(const char *text, size_t len,
    STACK_OF(X509) *out, size_t max);
static int ngx_http_hpki_inspect_is_pem(const unsigned char *data,
    size_t len);


static ngx_http_hpki_inspect_alg_t  ngx_http_hpki_inspect_hash_algs[] = {
    { "sha256", NGX_HTTP_HPKI_INSPECT_SHA256, 32 },
    { "sha384", NGX_HTTP_HPKI_INSPECT_SHA384, 48 },
    { "sha512", NGX_HTTP_HPKI_INSPECT_SHA512, 64 },
    { NULL, 0, 0 }
};


static ngx_http_hpki_inspect_ku_t  ngx_http_hpki_inspect_kus[] = {
    { KU_DIGITAL_SIGNATURE, "digitalSignature" },
    { KU_NON_REPUDIATION, "nonRepudiation" },
    { KU_KEY_ENCIPHERMENT, "keyEncipherment" },
    { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
    { KU_KEY_AGREEMENT, "keyAgreement" },
    { KU_KEY_CERT_SIGN, "keyCertSign" },
    { KU_CRL_SIGN, "cRLSign" },
    { KU_ENCIPHER_ONLY, "encipherOnly" },
    { KU_DECIPHER_ONLY, "decipherOnly" },
    { 0, NULL }
};


/* the trust store */

ngx_http_hpki_inspect_store_t *
ngx_http_hpki_inspect_store_load(const char **ca_files, size_t n,
    const char **crl_files, size_t ncrl, char *err, size_t size)
{
    size_t                          i;
    ngx_http_hpki_inspect_store_t  *st;

    if (err && size) {
        err[0] = '\0';
    }

    st = calloc(1, sizeof(ngx_http_hpki_inspect_store_t));
    if (st == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    st->store = X509_STORE_new();
    st->untrusted = sk_X509_new_null();
    st->cas = sk_X509_new_null();
    st->crls = sk_X509_CRL_new_null();

    if (st->store == NULL || st->untrusted == NULL || st->cas == NULL
        || st->crls == NULL)
    {
        snprintf(err, size, "out of memory");
        goto failed;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_hpki_inspect_add_cas(st, ca_files[i], err, size) != 0) {
            goto failed;
        }
    }

    for (i = 0; i < ncrl; i++) {
        if (ngx_http_hpki_inspect_add_crls(st, crl_files[i], err, size)
            != 0)
        {
            goto failed;
        }
    }

    if (sk_X509_CRL_num(st->crls) > 0
        && X509_STORE_set_flags(st->store, X509_V_FLAG_CRL_CHECK
                                           |X509_V_FLAG_CRL_CHECK_ALL)
           != 1)
    {
        snprintf(err, size, "cannot enable CRL checks");
        goto failed;
    }

    ERR_clear_error();

    return st;

failed:

    ERR_clear_error();
    ngx_http_hpki_inspect_store_free(st);

    return NULL;
}


void
ngx_http_hpki_inspect_store_free(ngx_http_hpki_inspect_store_t *st)
{
    if (st == NULL) {
        return;
    }

    X509_STORE_free(st->store);
    sk_X509_pop_free(st->untrusted, X509_free);
    sk_X509_pop_free(st->cas, X509_free);
    sk_X509_CRL_pop_free(st->crls, X509_CRL_free);
    free(st);
}


void
ngx_http_hpki_inspect_store_count(ngx_http_hpki_inspect_store_t *st,
    size_t *anchors, size_t *intermediates, size_t *crls)
{
    *anchors = st ? st->nanchors : 0;
    *intermediates = st ? (size_t) sk_X509_num(st->untrusted) : 0;
    *crls = st ? (size_t) sk_X509_CRL_num(st->crls) : 0;
}


static int
ngx_http_hpki_inspect_add_cas(ngx_http_hpki_inspect_store_t *st,
    const char *path, char *err, size_t size)
{
    int              i, rc;
    X509            *x;
    size_t           len;
    unsigned char   *data;
    STACK_OF(X509)  *certs;

    data = ngx_http_hpki_inspect_read_file(path, &len, err, size);
    if (data == NULL) {
        return -1;
    }

    certs = ngx_http_hpki_inspect_read_certs(data, len);

    free(data);

    if (certs == NULL) {
        snprintf(err, size, "%s: no certificate (PEM or DER) in it", path);
        return -1;
    }

    rc = -1;

    for (i = 0; i < sk_X509_num(certs); i++) {
        x = sk_X509_value(certs, i);

        if (X509_check_ca(x) < 1) {
            snprintf(err, size, "%s: certificate %d is not a CA certificate",
                     path, i + 1);
            goto done;
        }

        if (X509_get_extension_flags(x) & EXFLAG_SS) {
            /* self-signed: a trust anchor */

            if (X509_STORE_add_cert(st->store, x) != 1) {
                snprintf(err, size, "%s: cannot add certificate %d", path,
                         i + 1);
                goto done;
            }

            st->nanchors++;

        } else {
            if (!X509_up_ref(x) || !sk_X509_push(st->untrusted, x)) {
                snprintf(err, size, "out of memory");
                goto done;
            }
        }

        if (!X509_up_ref(x) || !sk_X509_push(st->cas, x)) {
            snprintf(err, size, "out of memory");
            goto done;
        }
    }

    rc = 0;

done:

    sk_X509_pop_free(certs, X509_free);

    return rc;
}


static int
ngx_http_hpki_inspect_add_crls(ngx_http_hpki_inspect_store_t *st,
    const char *path, char *err, size_t size)
{
    int                  i, j, rc, found;
    X509                *ca;
    size_t               len;
    X509_CRL            *crl;
    unsigned char       *data;
    STACK_OF(X509_CRL)  *crls;

    data = ngx_http_hpki_inspect_read_file(path, &len, err, size);
    if (data == NULL) {
        return -1;
    }

    crls = ngx_http_hpki_inspect_read_crls(data, len);

    free(data);

    if (crls == NULL) {
        snprintf(err, size, "%s: no CRL (PEM or DER) in it", path);
        return -1;
    }

    rc = -1;

    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        crl = sk_X509_CRL_value(crls, i);

        /* a CRL must come from a configured CA: catches a wrong file now */

        found = 0;

        for (j = 0; j < sk_X509_num(st->cas); j++) {
            ca = sk_X509_value(st->cas, j);

            if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
                              X509_get_subject_name(ca))
                == 0
                && X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
            {
                found = 1;
                break;
            }
        }

        ERR_clear_error();

        if (!found) {
            snprintf(err, size, "%s: CRL %d is not signed by any of the "
                     "trusted CA certificates", path, i + 1);
            goto done;
        }

        if (X509_STORE_add_crl(st->store, crl) != 1
            || !X509_CRL_up_ref(crl)
            || !sk_X509_CRL_push(st->crls, crl))
        {
            snprintf(err, size, "%s: cannot add CRL %d", path, i + 1);
            goto done;
        }
    }

    rc = 0;

done:

    sk_X509_CRL_pop_free(crls, X509_CRL_free);

    return rc;
}


static unsigned char *
ngx_http_hpki_inspect_read_file(const char *path, size_t *len, char *err,
    size_t size)
{
    FILE           *f;
    size_t          n, cap;
    unsigned char  *data, *p;

    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, size, "%s: cannot open", path);
        return NULL;
    }

    cap = 65536;
    n = 0;

    data = malloc(cap);
    if (data == NULL) {
        fclose(f);
        snprintf(err, size, "out of memory");
        return NULL;
    }

    for ( ;; ) {
        if (n == cap) {
            if (cap >= NGX_HTTP_HPKI_INSPECT_FILE_MAX) {
                snprintf(err, size, "%s: larger than %d bytes", path,
                         NGX_HTTP_HPKI_INSPECT_FILE_MAX);
                goto failed;
            }

            p = realloc(data, cap * 2);
            if (p == NULL) {
                snprintf(err, size, "out of memory");
                goto failed;
            }

            data = p;
            cap *= 2;
        }

        n += fread(data + n, 1, cap - n, f);

        if (ferror(f)) {
            snprintf(err, size, "%s: read error", path);
            goto failed;
        }

        if (feof(f)) {
            break;
        }
    }

    fclose(f);

    *len = n;

    return data;

failed:

    fclose(f);
    free(data);

    return NULL;
}


/* PEM text contains "-----BEGIN"; DER never starts with '-' */

static int
ngx_http_hpki_inspect_is_pem(const unsigned char *data, size_t len)
{
    size_t  i;

    for (i = 0; i + 10 <= len; i++) {
        if (data[i] == '-' && memcmp(data + i, "-----BEGIN", 10) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * PEM: every CERTIFICATE block, in order, at most
 * NGX_HTTP_HPKI_INSPECT_FILE_CERTS, and nothing broken after the last one;
 * text between blocks is ignored, as openssl(1) does.  Otherwise one DER
 * certificate with no trailing bytes.
 */

STACK_OF(X509) *
ngx_http_hpki_inspect_read_certs(const unsigned char *data, size_t len)
{
    X509                 *x;
    BIO                  *bio;
    unsigned long         e = 0;
    STACK_OF(X509)       *certs;
    const unsigned char  *p;

    if (data == NULL || len == 0 || len > INT32_MAX) {
        return NULL;
    }

    certs = sk_X509_new_null();
    if (certs == NULL) {
        return NULL;
    }

    ERR_set_mark();

    if (!ngx_http_hpki_inspect_is_pem(data, len)) {
        p = data;
        x = d2i_X509(NULL, &p, (long) len);

        if (x == NULL || p != data + len || !sk_X509_push(certs, x)) {
            X509_free(x);
            goto failed;
        }

        ERR_pop_to_mark();

        return certs;
    }

    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        goto failed;
    }

    for ( ;; ) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x == NULL) {
            e = ERR_peek_last_error();
            break;
        }

        if (sk_X509_num(certs) == NGX_HTTP_HPKI_INSPECT_FILE_CERTS
            || !sk_X509_push(certs, x))
        {
            X509_free(x);
            BIO_free(bio);
            goto failed;
        }
    }

    BIO_free(bio);

    /* the loop must have ended at the end of the text, not on an error */

    if (sk_X509_num(certs) == 0 || ERR_GET_LIB(e) != ERR_LIB_PEM
        || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
    {
        goto failed;
    }

    ERR_pop_to_mark();

    return certs;

failed:

    ERR_pop_to_mark();
    sk_X509_pop_free(certs, X509_free);

    return NULL;
}


static STACK_OF(X509_CRL) *
ngx_http_hpki_inspect_read_crls(const unsigned char *data, size_t len)
{
    BIO                  *bio;
    X509_CRL             *crl;
    unsigned long         e = 0;
    STACK_OF(X509_CRL)   *crls;
    const unsigned char  *p;

    if (len == 0 || len > INT32_MAX) {
        return NULL;
    }

    crls = sk_X509_CRL_new_null();
    if (crls == NULL) {
        return NULL;
    }

    ERR_set_mark();

    if (!ngx_http_hpki_inspect_is_pem(data, len)) {
        p = data;
        crl = d2i_X509_CRL(NULL, &p, (long) len);

        if (crl == NULL || p != data + len || !sk_X509_CRL_push(crls, crl)) {
            X509_CRL_free(crl);
            goto failed;
        }

        ERR_pop_to_mark();

        return crls;
    }

    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        goto failed;
    }

    for ( ;; ) {
        crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);

        if (crl == NULL) {
            e = ERR_peek_last_error();
            break;
        }

        if (!sk_X509_CRL_push(crls, crl)) {
            X509_CRL_free(crl);
            BIO_free(bio);
            goto failed;
        }
    }

    BIO_free(bio);

    if (sk_X509_CRL_num(crls) == 0 || ERR_GET_LIB(e) != ERR_LIB_PEM
        || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
    {
        goto failed;
    }

    ERR_pop_to_mark();

    return crls;

failed:

    ERR_pop_to_mark();
    sk_X509_CRL_pop_free(crls, X509_CRL_free);

    return NULL;
}


/* inspection */

json_t *
ngx_http_hpki_inspect_cert(ngx_http_hpki_inspect_store_t *st, X509 *cert,
    STACK_OF(X509) *extra, time_t now)
{
    int              i, ok;
    X509            *issuer;
    char             role[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1];
    char             serial[2 * 64 + 2];
    json_t          *o;
    const char      *chain;
    X509_STORE_CTX  *ctx;
    STACK_OF(X509)  *untrusted, *built;

    if (st == NULL || cert == NULL) {
        return NULL;
    }

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    ctx = NULL;
    untrusted = NULL;

    if (ngx_http_hpki_cert_role(cert, role, sizeof(role)) == 0) {
        ok = json_object_set_new(o, "role", json_string(role));

    } else {
        ok = json_object_set_new(o, "role", json_null());
    }

    if (ngx_http_hpki_cert_serial_hex(cert, serial, sizeof(serial)) != 0) {
        serial[0] = '\0';
    }

    ok |= json_object_set_new(o, "subject",
                       ngx_http_hpki_inspect_name(X509_get_subject_name(cert)));
    ok |= json_object_set_new(o, "issuer",
                        ngx_http_hpki_inspect_name(X509_get_issuer_name(cert)));
    ok |= json_object_set_new(o, "serial", json_string(serial));
    ok |= json_object_set_new(o, "not_before",
                    ngx_http_hpki_inspect_time(X509_get0_notBefore(cert)));
    ok |= json_object_set_new(o, "not_after",
                    ngx_http_hpki_inspect_time(X509_get0_notAfter(cert)));

    if (ok != 0) {
        goto failed;
    }

    /* the chain: the store's intermediates, then those sent */

    untrusted = sk_X509_dup(st->untrusted);
    if (untrusted == NULL) {
        goto failed;
    }

    for (i = 0; extra && i < sk_X509_num(extra); i++) {
        if (!sk_X509_push(untrusted, sk_X509_value(extra, i))) {
            goto failed;
        }
    }

    ctx = X509_STORE_CTX_new();
    if (ctx == NULL
        || X509_STORE_CTX_init(ctx, st->store, cert, untrusted) != 1)
    {
        goto failed;
    }

    X509_STORE_CTX_set_time(ctx, 0, now);

    if (X509_verify_cert(ctx) == 1) {
        chain = "ok";

    } else {
        chain = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    }

    /* the issuer as found, for the CRL: trusted or not, chain[1] */

    built = X509_STORE_CTX_get0_chain(ctx);
    issuer = (built && sk_X509_num(built) >= 2) ? sk_X509_value(built, 1)
                                                : NULL;

    ok = json_object_set_new(o, "chain", json_string(chain));
    ok |= json_object_set_new(o, "key_usage",
                              ngx_http_hpki_inspect_key_usage(cert));
    ok |= json_object_set_new(o, "kind",
                              json_string(ngx_http_hpki_inspect_kind(cert)));
    ok |= json_object_set_new(o, "revocation",
                json_string(ngx_http_hpki_inspect_revocation(st, cert, issuer,
                                                            now)));

    if (ok != 0) {
        goto failed;
    }

    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    ERR_clear_error();

    return o;

failed:

    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    ERR_clear_error();
    json_decref(o);

    return NULL;
}


static json_t *
ngx_http_hpki_inspect_name(X509_NAME *name)
{
    BIO     *bio;
    long     n;
    char    *data;
    json_t  *s;

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return NULL;
    }

    s = NULL;

    /* RFC 2253, as $ssl_client_s_dn: non-ASCII and controls are escaped */

    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(bio, &data);

        if (n >= 0 && n <= NGX_HTTP_HPKI_INSPECT_NAME_MAX) {
            s = json_stringn(n ? data : "", (size_t) n);
        }
    }

    BIO_free(bio);

    return s;
}


static json_t *
ngx_http_hpki_inspect_time(const ASN1_TIME *t)
{
    char       buf[32];
    struct tm  tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1
        || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        return json_null();
    }

    return json_string(buf);
}


static json_t *
ngx_http_hpki_inspect_key_usage(X509 *x)
{
    uint32_t                     ku;
    json_t                      *a;
    ngx_http_hpki_inspect_ku_t  *k;

    a = json_array();
    if (a == NULL) {
        return NULL;
    }

    if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE)) {
        return a;
    }

    ku = X509_get_key_usage(x);

    for (k = ngx_http_hpki_inspect_kus; k->name; k++) {
        if ((ku & k->bit)
            && json_array_append_new(a, json_string(k->name)) != 0)
        {
            json_decref(a);
            return NULL;
        }
    }

    return a;
}


static const char *
ngx_http_hpki_inspect_kind(X509 *x)
{
    int  kind;

    /* a CA certificate is neither, whatever its policies say */

    if (X509_check_ca(x) != 0) {
        return "other";
    }

    kind = ngx_http_hpki_cert_kind(x);

    if (kind == NGX_HTTP_HPKI_CERT_SIGN) {
        return "signing";
    }

    if (kind == NGX_HTTP_HPKI_CERT_AUTH) {
        return "authentication";
    }

    return "other";
}


/*
 * Revocation of the certificate itself, independent of how far
 * X509_verify_cert() got: a CRL counts only if its issuer name is the
 * issuer's subject, its signature verifies with the issuer's key, and it is
 * current.  Every such CRL is consulted; one listing is enough.
 */

static const char *
ngx_http_hpki_inspect_revocation(ngx_http_hpki_inspect_store_t *st, X509 *x,
    X509 *issuer, time_t now)
{
    int                i, found, revoked;
    X509_CRL          *crl;
    EVP_PKEY          *pkey;
    X509_REVOKED      *rev;
    const ASN1_TIME   *next;

    if (sk_X509_CRL_num(st->crls) == 0 || issuer == NULL) {
        return "unknown";
    }

    pkey = X509_get0_pubkey(issuer);
    if (pkey == NULL) {
        return "unknown";
    }

    found = 0;
    revoked = 0;

    for (i = 0; i < sk_X509_CRL_num(st->crls); i++) {
        crl = sk_X509_CRL_value(st->crls, i);

        if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
                          X509_get_subject_name(issuer))
            != 0
            || X509_CRL_verify(crl, pkey) != 1)
        {
            continue;
        }

        if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &now) >= 0) {
            continue;   /* not yet valid (or unreadable) */
        }

        next = X509_CRL_get0_nextUpdate(crl);

        if (next && X509_cmp_time(next, &now) <= 0) {
            continue;   /* out of date */
        }

        found = 1;

        rev = NULL;

        if (X509_CRL_get0_by_cert(crl, &rev, x) == 1) {
            revoked = 1;
        }
    }

    ERR_clear_error();

    return revoked ? "revoked" : (found ? "good" : "unknown");
}


/* signatures */

static const EVP_MD *
ngx_http_hpki_inspect_md(int hash_alg)
{
    switch (hash_alg) {

    case NGX_HTTP_HPKI_INSPECT_SHA256:
        return EVP_sha256();

    case NGX_HTTP_HPKI_INSPECT_SHA384:
        return EVP_sha384();

    case NGX_HTTP_HPKI_INSPECT_SHA512:
        return EVP_sha512();

    default:
        return NULL;
    }
}


int
ngx_http_hpki_inspect_verify_sig(X509 *cert, int hash_alg, int pss,
    const unsigned char *digest, size_t dlen, const unsigned char *sig,
    size_t slen)
{
    int            rc;
    EVP_PKEY      *pkey;
    const EVP_MD  *md;
    EVP_PKEY_CTX  *pctx;

    md = ngx_http_hpki_inspect_md(hash_alg);

    if (cert == NULL || md == NULL || digest == NULL || sig == NULL
        || slen == 0 || dlen != (size_t) EVP_MD_get_size(md))
    {
        return NGX_HTTP_HPKI_INSPECT_ERROR;
    }

    pkey = X509_get0_pubkey(cert);

    if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        ERR_clear_error();
        return NGX_HTTP_HPKI_INSPECT_NOT_RSA;
    }

    pctx = EVP_PKEY_CTX_new(pkey, NULL);
    if (pctx == NULL) {
        return NGX_HTTP_HPKI_INSPECT_ERROR;
    }

    rc = 0;

    if (EVP_PKEY_verify_init(pctx) != 1
        || EVP_PKEY_CTX_set_signature_md(pctx, md) != 1)
    {
        goto done;
    }

    if (pss) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, (int) dlen) != 1)
        {
            goto done;
        }

    } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        goto done;
    }

    rc = (EVP_PKEY_verify(pctx, sig, slen, digest, dlen) == 1);

done:

    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();

    return rc;
}


/* the request body */

void
ngx_http_hpki_inspect_req_free(ngx_http_hpki_inspect_req_t *req)
{
    free(req->sig);
    X509_free(req->cert);
    sk_X509_pop_free(req->chain, X509_free);
    memset(req, 0, sizeof(ngx_http_hpki_inspect_req_t));
}


int
ngx_http_hpki_inspect_parse(const char *body, size_t len,
    ngx_http_hpki_inspect_req_t *req, const char **err)
{
    int                           rc;
    json_t                       *root, *v, *e;
    size_t                        i, n, slen;
    const char                   *s;
    json_error_t                  jerr;
    STACK_OF(X509)               *certs;
    ngx_http_hpki_inspect_alg_t  *alg;
    unsigned char                 buf[NGX_HTTP_HPKI_INSPECT_DIGEST_MAX + 3];

    memset(req, 0, sizeof(ngx_http_hpki_inspect_req_t));

    if (len > NGX_HTTP_HPKI_INSPECT_BODY_MAX) {
        *err = "the body is larger than 64 KiB";
        return NGX_HTTP_HPKI_INSPECT_BAD;
    }

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        *err = "the body is not a JSON object";
        return NGX_HTTP_HPKI_INSPECT_BAD;
    }

    rc = NGX_HTTP_HPKI_INSPECT_BAD;
    certs = NULL;

    /* hash_alg and sig_alg first: the digest's length depends on them */

    alg = &ngx_http_hpki_inspect_hash_algs[0];

    v = json_object_get(root, "hash_alg");

    if (v) {
        s = json_string_value(v);

        for (alg = ngx_http_hpki_inspect_hash_algs; alg->name; alg++) {
            if (s && strcmp(s, alg->name) == 0) {
                break;
            }
        }

        if (alg->name == NULL) {
            *err = "\"hash_alg\" must be sha256, sha384 or sha512";
            goto done;
        }
    }

    req->hash_alg = alg->id;

    v = json_object_get(root, "sig_alg");

    if (v) {
        s = json_string_value(v);

        if (s && strcmp(s, "rsa-pss") == 0) {
            req->pss = 1;

        } else if (s == NULL || strcmp(s, "rsa-pkcs1") != 0) {
            *err = "\"sig_alg\" must be rsa-pkcs1 or rsa-pss";
            goto done;
        }
    }

    /* hash */

    v = json_object_get(root, "hash");

    if (!json_is_string(v)) {
        *err = "\"hash\" is required: the base64 digest that was signed";
        goto done;
    }

    if (json_string_length(v) > 4 * sizeof(buf) / 3
        || ngx_http_hpki_inspect_base64(json_string_value(v),
                                        json_string_length(v), buf,
                                        sizeof(buf), &n, 0)
           != 0)
    {
        *err = "\"hash\" is not a base64 digest";
        goto done;
    }

    if (n != alg->len) {
        *err = "\"hash\" must be as long as hash_alg's digests (32 bytes "
               "for sha256, 48 for sha384, 64 for sha512)";
        goto done;
    }

    memcpy(req->digest, buf, n);
    req->dlen = n;

    /* signature */

    v = json_object_get(root, "signature");

    if (!json_is_string(v) || json_string_length(v) == 0) {
        *err = "\"signature\" is required: the base64 signature value";
        goto done;
    }

    slen = json_string_length(v);

    if (slen > (NGX_HTTP_HPKI_INSPECT_SIG_MAX + 2) / 3 * 4) {
        *err = "\"signature\" is longer than any RSA signature accepted "
               "(1024 bytes)";
        goto done;
    }

    req->sig = malloc(slen / 4 * 3 + 3);
    if (req->sig == NULL) {
        rc = NGX_HTTP_HPKI_INSPECT_NOMEM;
        goto done;
    }

    if (ngx_http_hpki_inspect_base64(json_string_value(v), slen, req->sig,
                                     slen / 4 * 3 + 3, &req->slen, 0)
        != 0
        || req->slen == 0)
    {
        *err = "\"signature\" is not valid base64";
        goto done;
    }

    /* certificate, then any intermediates */

    v = json_object_get(root, "certificate");

    if (!json_is_string(v) || json_string_length(v) == 0) {
        *err = "\"certificate\" is required: PEM or base64 DER";
        goto done;
    }

    if (json_string_length(v) > NGX_HTTP_HPKI_INSPECT_CERT_MAX) {
        *err = "\"certificate\" is larger than 16 KiB";
        goto done;
    }

    certs = sk_X509_new_null();
    if (certs == NULL) {
        rc = NGX_HTTP_HPKI_INSPECT_NOMEM;
        goto done;
    }

    if (ngx_http_hpki_inspect_cert_text(json_string_value(v),
                                        json_string_length(v), certs,
                                        NGX_HTTP_HPKI_INSPECT_CHAIN_MAX + 1)
        != 0)
    {
        *err = "\"certificate\" is not a PEM or base64 DER X.509 "
               "certificate (at most 8 intermediates may follow it)";
        goto done;
    }

    v = json_object_get(root, "chain");

    if (v && !json_is_null(v)) {
        if (!json_is_array(v)
            || json_array_size(v) > NGX_HTTP_HPKI_INSPECT_CHAIN_MAX)
        {
            *err = "\"chain\" must be an array of at most 8 certificates";
            goto done;
        }

        json_array_foreach(v, i, e) {
            if (!json_is_string(e)
                || json_string_length(e) > NGX_HTTP_HPKI_INSPECT_CERT_MAX
                || ngx_http_hpki_inspect_cert_text(json_string_value(e),
                                          json_string_length(e), certs,
                                          NGX_HTTP_HPKI_INSPECT_CHAIN_MAX + 1)
                   != 0)
            {
                *err = "each \"chain\" entry must be a PEM or base64 DER "
                       "certificate of at most 16 KiB, at most 8 in all";
                goto done;
            }
        }
    }

    req->cert = sk_X509_shift(certs);

    req->chain = certs;
    certs = NULL;

    rc = 0;

done:

    json_decref(root);
    sk_X509_pop_free(certs, X509_free);

    if (rc != 0) {
        ngx_http_hpki_inspect_req_free(req);
    }

    ERR_clear_error();

    return rc;
}


/* PEM (any number) or base64 DER (one) certificates appended to "out" */

static int
ngx_http_hpki_inspect_cert_text(const char *text, size_t len,
    STACK_OF(X509) *out, size_t max)
{
    int              i, rc;
    size_t           n;
    unsigned char   *der;
    STACK_OF(X509)  *certs;

    if (memchr(text, '\0', len) != NULL) {
        return -1;
    }

    if (ngx_http_hpki_inspect_is_pem((const unsigned char *) text, len)) {
        certs = ngx_http_hpki_inspect_read_certs((const unsigned char *) text,
                                                 len);

    } else {
        der = malloc(len / 4 * 3 + 3);
        if (der == NULL) {
            return -1;
        }

        certs = NULL;

        if (ngx_http_hpki_inspect_base64(text, len, der, len / 4 * 3 + 3, &n,
                                         1)
            == 0
            && n > 0)
        {
            certs = ngx_http_hpki_inspect_read_certs(der, n);
        }

        free(der);
    }

    if (certs == NULL) {
        return -1;
    }

    rc = 0;

    for (i = 0; i < sk_X509_num(certs); i++) {
        if ((size_t) sk_X509_num(out) >= max
            || !sk_X509_push(out, sk_X509_value(certs, i)))
        {
            rc = -1;
            break;
        }

        sk_X509_set(certs, i, NULL);
    }

    sk_X509_pop_free(certs, X509_free);

    return rc;
}


/*
 * Standard base64 (RFC 4648 section 4) with padding; strict: no other
 * characters, padding only at the end, unused bits zero.  With skip_space,
 * spaces, tabs and line breaks are ignored (base64 DER pasted from a file).
 */

static int
ngx_http_hpki_inspect_base64(const char *in, size_t len, unsigned char *out,
    size_t size, size_t *outlen, int skip_space)
{
    int             v, pad;
    size_t          i, n, q;
    unsigned int    acc;
    unsigned char   c;

    n = 0;
    q = 0;
    acc = 0;
    pad = 0;

    for (i = 0; i < len; i++) {
        c = (unsigned char) in[i];

        if (skip_space
            && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
        {
            continue;
        }

        if (c == '=') {
            /* "xx==" or "xxx=" only */

            if (q < 2) {
                return -1;
            }

            pad++;
            q++;

            if (q == 4) {
                if (pad == 2 && (acc & 0x0f)) {
                    return -1;
                }

                if (pad == 1 && (acc & 0x03)) {
                    return -1;
                }

                if (n + (3 - (size_t) pad) > size) {
                    return -1;
                }

                if (pad == 2) {
                    out[n++] = (unsigned char) (acc >> 4);

                } else {
                    out[n++] = (unsigned char) (acc >> 10);
                    out[n++] = (unsigned char) (acc >> 2);
                }

                q = 0;
                acc = 0;
                /* pad stays > 0: nothing may follow */
            }

            continue;
        }

        if (pad) {
            return -1;
        }

        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;

        } else if (c == '+') {
            v = 62;

        } else if (c == '/') {
            v = 63;

        } else {
            return -1;
        }

        acc = (acc << 6) | (unsigned int) v;
        q++;

        if (q == 4) {
            if (n + 3 > size) {
                return -1;
            }

            out[n++] = (unsigned char) (acc >> 16);
            out[n++] = (unsigned char) (acc >> 8);
            out[n++] = (unsigned char) acc;

            q = 0;
            acc = 0;
        }
    }

    if (q != 0) {
        return -1;
    }

    *outlen = n;

    return 0;
}


/* the answer of POST /hpki/verify */

json_t *
ngx_http_hpki_inspect_verify(ngx_http_hpki_inspect_store_t *st,
    ngx_http_hpki_inspect_req_t *req, time_t now)
{
    int          sig, valid, ok;
    json_t      *o, *info, *reasons;
    const char  *s;

    info = ngx_http_hpki_inspect_cert(st, req->cert, req->chain, now);
    if (info == NULL) {
        return NULL;
    }

    o = json_object();
    reasons = json_array();

    if (o == NULL || reasons == NULL) {
        goto failed;
    }

    ok = 0;

    sig = ngx_http_hpki_inspect_verify_sig(req->cert, req->hash_alg, req->pss,
                                           req->digest, req->dlen, req->sig,
                                           req->slen);

    if (sig == NGX_HTTP_HPKI_INSPECT_NOT_RSA) {
        ok |= json_array_append_new(reasons, json_string(
                  "the certificate's key is not an RSA key (HPKI keys are)"));

    } else if (sig != 1) {
        ok |= json_array_append_new(reasons, json_string(
                  "the signature does not verify with the certificate's key"));
    }

    s = json_string_value(json_object_get(info, "chain"));

    if (s == NULL || strcmp(s, "ok") != 0) {
        ok |= json_array_append_new(reasons, json_string(
                  "the certificate does not chain to a trust anchor "
                  "(see \"chain\")"));
    }

    s = json_string_value(json_object_get(info, "kind"));

    if (s == NULL || strcmp(s, "signing") != 0) {
        ok |= json_array_append_new(reasons, json_string(
                  "the certificate is not an HPKI signing certificate"));
    }

    if (!json_is_string(json_object_get(info, "role"))) {
        ok |= json_array_append_new(reasons, json_string(
                  "the certificate has no hcRole"));
    }

    s = json_string_value(json_object_get(info, "revocation"));

    if (s == NULL || strcmp(s, "revoked") == 0) {
        ok |= json_array_append_new(reasons, json_string(
                  "the certificate is revoked"));
    }

    valid = (json_array_size(reasons) == 0);

    ok |= json_object_set_new(o, "valid", json_boolean(valid));
    ok |= json_object_set_new(o, "reasons", reasons);
    reasons = NULL;
    ok |= json_object_update(o, info);

    if (ok != 0) {
        goto failed;
    }

    json_decref(info);

    return o;

failed:

    json_decref(reasons);
    json_decref(info);
    json_decref(o);

    return NULL;
}
