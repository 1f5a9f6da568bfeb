/*
 * Unit tests of ngx_http_hpki_inspect.c, TAP output.  The certificates and
 * CRLs are made here with OpenSSL: a root, a signing CA under it, HPKI
 * signing and authentication end entities, a rogue root.
 *
 *   unit-inspect [--pki DIR]      run the tests; DIR holds the real MHLW
 *                                 root and MEDIS CAs (shared/pki)
 *   unit-inspect --parse FILE     parse a /hpki/verify body; prints "ok"
 *                                 or the error (for fuzzers and the .t)
 *   unit-inspect --inspect FILE [--ca FILE]... [--crl FILE]...
 *                                 print ngx_http_hpki_inspect_cert()'s JSON
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/conf.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ngx_http_hpki_cert.h"
#include "ngx_http_hpki_inspect.h"
#include "tap.h"


static char  t_dir[] = "/tmp/unit-inspect-XXXXXX";


static void
t_die(const char *what)
{
    fprintf(stderr, "unit-inspect: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}


/* JSON helpers */

static const char *
t_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}


static char *
t_dump(json_t *v)
{
    static char  buf[8192];
    char        *s;

    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
    free(s);

    return buf;
}


/* certificates */

/*
 * hcRole attribute values as DER (HPKI.md, vector 1 "Medical Doctor" and
 * vector 2 "Pharmacist" with a codeDataValue), in a subjectDirectoryAttributes
 * SEQUENCE: field shape (values = SET { SET OF HCActor }) and standard.
 */

static const char  t_hcactor_doctor[] =
    "3024a0223120a00c060a2a830886910f01060101a2100c0e4d65646963616c"
    "20446f63746f72";

static const char  t_hcactor_pharmacist[] =
    "3027a0253123a00c060a2a830886910f01060101a1051203313233a20c0c0a50"
    "6861726d6163697374";


typedef struct {
    unsigned char  d[512];
    size_t         n;
} t_der_t;


static void
t_hex(t_der_t *b, const char *hex)
{
    unsigned int  v;

    while (hex[0] && hex[1]) {
        if (sscanf(hex, "%2x", &v) != 1 || b->n == sizeof(b->d)) {
            t_die("bad hex");
        }

        b->d[b->n++] = (unsigned char) v;
        hex += 2;
    }
}


static void
t_wrap(t_der_t *b, unsigned char tag)
{
    if (b->n > 127 || b->n + 2 > sizeof(b->d)) {
        t_die("t_wrap: too long");
    }

    memmove(b->d + 2, b->d, b->n);
    b->d[0] = tag;
    b->d[1] = (unsigned char) b->n;
    b->n += 2;
}


/* SEQUENCE { SEQUENCE { OID 1.0.17090.0.1, SET { [SET {] HCActor [}] } } } */

static void
t_sda(t_der_t *out, const char *hcactor, int field)
{
    t_der_t  v, a;

    memset(&v, 0, sizeof(v));
    t_hex(&v, hcactor);

    if (field) {
        t_wrap(&v, 0x31);
    }

    t_wrap(&v, 0x31);

    memset(&a, 0, sizeof(a));
    t_hex(&a, "0606288185420001");
    memcpy(a.d + a.n, v.d, v.n);
    a.n += v.n;
    t_wrap(&a, 0x30);
    t_wrap(&a, 0x30);

    *out = a;
}


static EVP_PKEY *
t_rsa(void)
{
    EVP_PKEY  *k;

    k = EVP_RSA_gen(2048);
    if (k == NULL) {
        t_die("EVP_RSA_gen");
    }

    return k;
}


static void
t_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX       ctx;
    X509_EXTENSION  *e;
    static CONF     *conf;

    /* certificatePolicies is parsed through a (here empty) config */

    if (conf == NULL) {
        conf = NCONF_new(NULL);
    }

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509V3_set_nconf(&ctx, conf);

    e = X509V3_EXT_nconf_nid(conf, &ctx, nid, value);
    if (e == NULL || !X509_add_ext(x, e, -1)) {
        t_die(value);
    }

    X509_EXTENSION_free(e);
}


typedef struct {
    const char    *cn;
    long           serial;
    long           from;          /* seconds from now */
    long           to;
    const char    *ku;            /* keyUsage value, NULL: CA */
    const char    *policy;
    const char    *hcactor;       /* NULL: no hcRole */
    int            field;         /* extra SET level */
} t_cert_conf_t;


static X509 *
t_cert(t_cert_conf_t *c, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey)
{
    X509               *x;
    t_der_t             sda;
    X509_NAME          *name;
    ASN1_OCTET_STRING  *os;
    X509_EXTENSION     *e;

    x = X509_new();
    if (x == NULL) {
        t_die("X509_new");
    }

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), c->serial);
    X509_gmtime_adj(X509_getm_notBefore(x), c->from);
    X509_gmtime_adj(X509_getm_notAfter(x), c->to);

    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
                               (unsigned char *) "JP", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (unsigned char *) "Unit Test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (unsigned char *) c->cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);

    X509_set_pubkey(x, key);

    t_ext(x, issuer, NID_subject_key_identifier, "hash");

    if (issuer) {
        t_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    }

    if (c->ku == NULL) {
        t_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        t_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");

    } else {
        t_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        t_ext(x, issuer, NID_key_usage, c->ku);
    }

    if (c->policy) {
        t_ext(x, issuer, NID_certificate_policies, c->policy);
    }

    if (c->hcactor) {
        t_sda(&sda, c->hcactor, c->field);

        os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, sda.d, (int) sda.n);
        e = X509_EXTENSION_create_by_NID(NULL, NID_subject_directory_attributes,
                                         0, os);
        if (e == NULL || !X509_add_ext(x, e, -1)) {
            t_die("subjectDirectoryAttributes");
        }

        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
    }

    if (!X509_sign(x, ikey ? ikey : key, EVP_sha256())) {
        t_die("X509_sign");
    }

    return x;
}


static X509_CRL *
t_crl(X509 *ca, EVP_PKEY *key, X509 **revoked, int n, long from, long to)
{
    int            i;
    X509_CRL      *crl;
    ASN1_TIME     *t;
    X509_REVOKED  *r;

    crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));

    t = X509_gmtime_adj(NULL, from);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_free(t);

    t = X509_gmtime_adj(NULL, to);
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_TIME_free(t);

    for (i = 0; i < n; i++) {
        r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked[i]));
        t = X509_gmtime_adj(NULL, -3600);
        X509_REVOKED_set_revocationDate(r, t);
        ASN1_TIME_free(t);
        X509_CRL_add0_revoked(crl, r);
    }

    X509_CRL_sort(crl);

    if (!X509_CRL_sign(crl, key, EVP_sha256())) {
        t_die("X509_CRL_sign");
    }

    return crl;
}


static char *
t_path(const char *name)
{
    static char  buf[8][256];
    static int   i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", t_dir, name);

    return buf[i];
}


static void
t_write_certs(const char *name, X509 **x, int n)
{
    int    i;
    FILE  *f;

    f = fopen(t_path(name), "w");
    if (f == NULL) {
        t_die(name);
    }

    for (i = 0; i < n; i++) {
        PEM_write_X509(f, x[i]);
    }

    fclose(f);
}


static void
t_write_crls(const char *name, X509_CRL **crl, int n)
{
    int    i;
    FILE  *f;

    f = fopen(t_path(name), "w");
    if (f == NULL) {
        t_die(name);
    }

    for (i = 0; i < n; i++) {
        PEM_write_X509_CRL(f, crl[i]);
    }

    fclose(f);
}


static ngx_http_hpki_inspect_store_t *
t_store(const char *ca1, const char *ca2, const char *crl1, const char *crl2)
{
    char                           err[512];
    size_t                         n, ncrl;
    const char                    *cas[2], *crls[2];
    ngx_http_hpki_inspect_store_t *st;

    n = 0;
    ncrl = 0;

    if (ca1) {
        cas[n++] = ca1;
    }

    if (ca2) {
        cas[n++] = ca2;
    }

    if (crl1) {
        crls[ncrl++] = crl1;
    }

    if (crl2) {
        crls[ncrl++] = crl2;
    }

    st = ngx_http_hpki_inspect_store_load(cas, n, crls, ncrl, err,
                                          sizeof(err));
    if (st == NULL) {
        printf("# store: %s\n", err);
    }

    return st;
}


/* signatures */

static size_t
t_sign(EVP_PKEY *key, int alg, int pss, int saltlen,
    const unsigned char *digest, size_t dlen, unsigned char *sig)
{
    size_t         slen;
    const EVP_MD  *md;
    EVP_PKEY_CTX  *ctx;

    md = alg == NGX_HTTP_HPKI_INSPECT_SHA256 ? EVP_sha256()
         : alg == NGX_HTTP_HPKI_INSPECT_SHA384 ? EVP_sha384() : EVP_sha512();

    ctx = EVP_PKEY_CTX_new(key, NULL);
    slen = 1024;

    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1
        || EVP_PKEY_CTX_set_signature_md(ctx, md) != 1
        || EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING
                                                 : RSA_PKCS1_PADDING)
           != 1
        || (pss && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) != 1)
        || (pss && EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, saltlen) != 1)
        || EVP_PKEY_sign(ctx, sig, &slen, digest, dlen) != 1)
    {
        t_die("EVP_PKEY_sign");
    }

    EVP_PKEY_CTX_free(ctx);

    return slen;
}


static char *
t_b64(const unsigned char *d, size_t n)
{
    static char  buf[4][4096];
    static int   i;

    i = (i + 1) % 4;
    EVP_EncodeBlock((unsigned char *) buf[i], d, (int) n);

    return buf[i];
}


static char *
t_pem(X509 *x)
{
    static char  buf[8192];
    BIO         *b;
    char        *p;
    long         n;

    b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    n = BIO_get_mem_data(b, &p);
    snprintf(buf, sizeof(buf), "%.*s", (int) n, p);
    BIO_free(b);

    return buf;
}


static char *
t_der_b64(X509 *x, int lines)
{
    static char     buf[8192];
    unsigned char  *der, tmp[6000];
    char           *o;
    int             n, i;

    der = NULL;
    n = i2d_X509(x, &der);
    EVP_EncodeBlock(tmp, der, n);
    OPENSSL_free(der);

    if (!lines) {
        snprintf(buf, sizeof(buf), "%s", tmp);
        return buf;
    }

    o = buf;

    for (i = 0; tmp[i]; i++) {
        if (i && i % 64 == 0) {
            *o++ = '\r';
            *o++ = '\n';
        }

        *o++ = (char) tmp[i];
    }

    *o = '\0';

    return buf;
}


/* a verify body with the given members (NULL: left out) */

static char *
t_body(const char *hash, const char *alg, const char *sig_alg,
    const char *sig, const char *cert)
{
    json_t      *o;
    static char *s;

    free(s);

    o = json_object();

    if (hash) {
        json_object_set_new(o, "hash", json_string(hash));
    }

    if (alg) {
        json_object_set_new(o, "hash_alg", json_string(alg));
    }

    if (sig_alg) {
        json_object_set_new(o, "sig_alg", json_string(sig_alg));
    }

    if (sig) {
        json_object_set_new(o, "signature", json_string(sig));
    }

    if (cert) {
        json_object_set_new(o, "certificate", json_string(cert));
    }

    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);

    return s;
}


static const char *
t_parse_err(const char *body)
{
    int                           rc;
    const char                   *err;
    ngx_http_hpki_inspect_req_t   req;

    err = NULL;
    rc = ngx_http_hpki_inspect_parse(body, strlen(body), &req, &err);

    if (rc == 0) {
        ngx_http_hpki_inspect_req_free(&req);
        return "ok";
    }

    if (req.cert != NULL || req.sig != NULL || req.chain != NULL) {
        return "req not emptied on failure";
    }

    return err ? err : "no error string";
}


/* verify a PKCS#1 v1.5 SHA-256 signature */

static json_t *
t_verify(ngx_http_hpki_inspect_store_t *st, X509 *cert,
    const unsigned char *digest, unsigned char *sig, size_t slen, time_t now)
{
    ngx_http_hpki_inspect_req_t  req;

    memset(&req, 0, sizeof(req));

    req.cert = cert;
    req.hash_alg = NGX_HTTP_HPKI_INSPECT_SHA256;
    memcpy(req.digest, digest, 32);
    req.dlen = 32;
    req.sig = sig;
    req.slen = slen;

    return ngx_http_hpki_inspect_verify(st, &req, now);
}


/* the modes for the .t wrapper and fuzzers */

static int
t_mode_parse(const char *file)
{
    int                           rc;
    FILE                         *f;
    char                         *buf;
    size_t                        n;
    const char                   *err;
    ngx_http_hpki_inspect_req_t   req;

    buf = malloc(1 << 20);
    f = fopen(file, "rb");

    if (buf == NULL || f == NULL) {
        return 2;
    }

    n = fread(buf, 1, 1 << 20, f);
    fclose(f);

    rc = ngx_http_hpki_inspect_parse(buf, n, &req, &err);

    if (rc == 0) {
        printf("ok hash_alg=%d pss=%d dlen=%zu slen=%zu chain=%d\n",
               req.hash_alg, req.pss, req.dlen, req.slen,
               sk_X509_num(req.chain));
        ngx_http_hpki_inspect_req_free(&req);

    } else {
        printf("error %d: %s\n", rc, rc == NGX_HTTP_HPKI_INSPECT_BAD ? err
                                                                   : "nomem");
    }

    free(buf);

    return 0;
}


static int
t_mode_inspect(int argc, char **argv)
{
    int                             i;
    char                            err[512], *s;
    FILE                           *f;
    size_t                          n, ncas, ncrls;
    json_t                         *o;
    const char                     *cas[16], *crls[16];
    unsigned char                  *buf;
    STACK_OF(X509)                 *certs;
    ngx_http_hpki_inspect_store_t  *st;

    ncas = 0;
    ncrls = 0;

    for (i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ca") == 0 && ncas < 16) {
            cas[ncas++] = argv[i + 1];

        } else if (strcmp(argv[i], "--crl") == 0 && ncrls < 16) {
            crls[ncrls++] = argv[i + 1];

        } else {
            fprintf(stderr, "bad argument %s\n", argv[i]);
            return 2;
        }
    }

    st = ngx_http_hpki_inspect_store_load(cas, ncas, crls, ncrls, err,
                                          sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    buf = malloc(1 << 20);
    f = fopen(argv[2], "rb");

    if (buf == NULL || f == NULL) {
        return 2;
    }

    n = fread(buf, 1, 1 << 20, f);
    fclose(f);

    certs = ngx_http_hpki_inspect_read_certs(buf, n);
    free(buf);

    if (certs == NULL) {
        fprintf(stderr, "%s: no certificate\n", argv[2]);
        return 1;
    }

    o = ngx_http_hpki_inspect_cert(st, sk_X509_value(certs, 0), NULL,
                                   time(NULL));
    s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);

    free(s);
    json_decref(o);
    sk_X509_pop_free(certs, X509_free);
    ngx_http_hpki_inspect_store_free(st);

    return 0;
}


int
main(int argc, char **argv)
{
    int                             a, p, rc;
    char                            pki[512], *bundle;
    char                            buf[70000];
    time_t                          now;
    json_t                         *o, *ku;
    X509                           *root, *ca, *rogue, *sign, *std, *auth;
    X509                           *norole, *expired, *revoked, *rogue_ee;
    X509                           *eccert, *both, *x[4];
    size_t                          n1, n2, n3, slen, dlen;
    EVP_PKEY                       *kroot, *kca, *krogue, *kee, *kec;
    X509_CRL                       *crl_ca, *crl_root, *crl_old, *crls[2];
    unsigned char                   digest[64], sig[1024];
    const char                     *alg_name;
    STACK_OF(X509)                 *extra;
    ngx_http_hpki_inspect_req_t     req;
    ngx_http_hpki_inspect_store_t  *st, *st_crl, *st_crl1, *st_root;
    ngx_http_hpki_inspect_store_t  *st_old, *st_real;

    t_cert_conf_t  c_root = { "Unit Root CA", 1, -86400, 86400 * 3650,
                              NULL, NULL, NULL, 0 };
    t_cert_conf_t  c_ca = { "Unit-SignCA-forNonRepudiation", 2, -86400,
                            86400 * 3650, NULL,
                            "1.2.392.100495.1.5.1.1.3.1", NULL, 0 };
    t_cert_conf_t  c_rogue = { "Unit-SignCA-forNonRepudiation", 3, -86400,
                               86400 * 3650, NULL, NULL, NULL, 0 };
    t_cert_conf_t  c_sign = { "TARO YAMADA", 0x00C0FFEE, -3600,
                              86400 * 1826, "critical,nonRepudiation",
                              "critical,1.2.392.100495.1.5.1.1.0.1",
                              t_hcactor_doctor, 1 };
    t_cert_conf_t  c_std = { "HANAKO SUZUKI", 0x10, -3600, 86400 * 1826,
                             "critical,nonRepudiation",
                             "1.2.392.100495.1.5.1.1.0.1",
                             t_hcactor_pharmacist, 0 };
    t_cert_conf_t  c_auth = { "TARO YAMADA", 0x11, -3600, 86400 * 1826,
                              "critical,digitalSignature",
                              "1.2.392.100495.1.5.1.2.0.1",
                              t_hcactor_doctor, 1 };
    t_cert_conf_t  c_norole = { "NO ROLE", 0x12, -3600, 86400 * 1826,
                                "critical,nonRepudiation",
                                "1.2.392.100495.1.5.1.1.0.1", NULL, 0 };
    t_cert_conf_t  c_expired = { "OLD DOCTOR", 0x13, -86400 * 800,
                                 -86400 * 400, "critical,nonRepudiation",
                                 "1.2.392.100495.1.5.1.1.0.1",
                                 t_hcactor_doctor, 1 };
    t_cert_conf_t  c_revoked = { "REVOKED DOCTOR", 0x14, -3600, 86400 * 1826,
                                 "critical,nonRepudiation",
                                 "1.2.392.100495.1.5.1.1.0.1",
                                 t_hcactor_doctor, 1 };
    t_cert_conf_t  c_rogue_ee = { "TARO YAMADA", 0x15, -3600, 86400 * 1826,
                                  "critical,nonRepudiation",
                                  "1.2.392.100495.1.5.1.1.0.1",
                                  t_hcactor_doctor, 1 };
    t_cert_conf_t  c_ec = { "EC DOCTOR", 0x16, -3600, 86400 * 1826,
                            "critical,nonRepudiation",
                            "1.2.392.100495.1.5.1.1.0.1",
                            t_hcactor_doctor, 1 };
    t_cert_conf_t  c_both = { "BOTH", 0x17, -3600, 86400 * 1826,
                              "critical,digitalSignature,nonRepudiation",
                              "1.2.392.100495.1.5.1.1.0.1,"
                              "1.2.392.100495.1.5.1.2.0.1",
                              t_hcactor_doctor, 1 };

    if (argc == 3 && strcmp(argv[1], "--parse") == 0) {
        return t_mode_parse(argv[2]);
    }

    if (argc >= 3 && strcmp(argv[1], "--inspect") == 0) {
        return t_mode_inspect(argc, argv);
    }

    pki[0] = '\0';

    if (argc == 3 && strcmp(argv[1], "--pki") == 0) {
        snprintf(pki, sizeof(pki), "%s", argv[2]);
    }

    if (mkdtemp(t_dir) == NULL) {
        t_die("mkdtemp");
    }

    now = time(NULL);

    kroot = t_rsa();
    kca = t_rsa();
    krogue = t_rsa();
    kee = t_rsa();
    kec = EVP_EC_gen("P-256");

    root = t_cert(&c_root, kroot, NULL, NULL);
    ca = t_cert(&c_ca, kca, root, kroot);
    rogue = t_cert(&c_rogue, krogue, NULL, NULL);
    sign = t_cert(&c_sign, kee, ca, kca);
    std = t_cert(&c_std, kee, ca, kca);
    auth = t_cert(&c_auth, kee, ca, kca);
    norole = t_cert(&c_norole, kee, ca, kca);
    expired = t_cert(&c_expired, kee, ca, kca);
    revoked = t_cert(&c_revoked, kee, ca, kca);
    rogue_ee = t_cert(&c_rogue_ee, kee, rogue, krogue);
    eccert = t_cert(&c_ec, kec, ca, kca);
    both = t_cert(&c_both, kee, ca, kca);

    crl_ca = t_crl(ca, kca, &revoked, 1, -3600, 86400 * 30);
    crl_root = t_crl(root, kroot, NULL, 0, -3600, 86400 * 30);
    crl_old = t_crl(ca, kca, &revoked, 1, -86400 * 60, -86400 * 30);

    x[0] = root;
    x[1] = ca;
    t_write_certs("bundle.pem", x, 2);
    t_write_certs("root.pem", &root, 1);
    t_write_certs("ca.pem", &ca, 1);
    t_write_certs("sign.pem", &sign, 1);
    crls[0] = crl_ca;
    crls[1] = crl_root;
    t_write_crls("crls.pem", crls, 2);
    t_write_crls("crl-ca.pem", &crl_ca, 1);
    t_write_crls("crl-old.pem", &crl_old, 1);
    t_write_crls("crl-root.pem", &crl_root, 1);

    /* --- the store ------------------------------------------------------ */

    st = t_store(t_path("bundle.pem"), NULL, NULL, NULL);
    t_ok(st != NULL, "store: a PEM bundle of root + intermediate loads");
    ngx_http_hpki_inspect_store_count(st, &n1, &n2, &n3);
    t_ok(n1 == 1 && n2 == 1 && n3 == 0,
         "store: 1 anchor, 1 intermediate, no CRL (%zu %zu %zu)", n1, n2, n3);

    st_root = t_store(t_path("root.pem"), NULL, NULL, NULL);
    t_ok(st_root != NULL, "store: the root alone");

    st_crl = t_store(t_path("root.pem"), t_path("ca.pem"), t_path("crls.pem"),
                     NULL);
    t_ok(st_crl != NULL, "store: two files and a CRL bundle");
    ngx_http_hpki_inspect_store_count(st_crl, &n1, &n2, &n3);
    t_ok(n1 == 1 && n2 == 1 && n3 == 2, "store: 2 CRLs");

    st_crl1 = t_store(t_path("bundle.pem"), NULL, t_path("crl-ca.pem"), NULL);
    t_ok(st_crl1 != NULL, "store: the signing CA's CRL only");

    st_old = t_store(t_path("bundle.pem"), NULL, t_path("crl-old.pem"),
                     t_path("crl-root.pem"));
    t_ok(st_old != NULL, "store: an out-of-date CRL loads");

    t_ok(t_store(t_path("sign.pem"), NULL, NULL, NULL) == NULL,
         "store: an end-entity certificate is refused as a CA");
    t_ok(t_store(t_path("nonexistent.pem"), NULL, NULL, NULL) == NULL,
         "store: a missing file is refused");
    t_ok(t_store(t_path("crls.pem"), NULL, NULL, NULL) == NULL,
         "store: a CRL file given as certificates is refused");
    t_ok(t_store(t_path("root.pem"), NULL, t_path("crl-ca.pem"), NULL)
         == NULL, "store: a CRL from a CA not configured is refused");
    t_ok(t_store(t_path("bundle.pem"), NULL, t_path("root.pem"), NULL)
         == NULL, "store: a certificate file given as a CRL is refused");

    if (st == NULL || st_root == NULL || st_crl == NULL || st_crl1 == NULL
        || st_old == NULL)
    {
        t_die("stores");
    }

    /* --- inspection ------------------------------------------------------ */

    o = ngx_http_hpki_inspect_cert(st, sign, NULL, now);
    t_ok(o != NULL, "inspect: signing certificate");
    t_is(t_str(o, "role"), "Medical Doctor", "inspect: hcRole, field shape");
    t_is(t_str(o, "chain"), "ok", "inspect: chain ok");
    t_is(t_str(o, "kind"), "signing", "inspect: kind signing");
    t_is(t_str(o, "revocation"), "unknown", "inspect: no CRL: unknown");
    t_is(t_str(o, "serial"), "C0FFEE", "inspect: serial in hex");
    t_is(t_str(o, "subject"), "CN=TARO YAMADA,O=Unit Test,C=JP",
         "inspect: subject RFC 2253");
    t_is(t_str(o, "issuer"), "CN=Unit-SignCA-forNonRepudiation,O=Unit Test,"
         "C=JP", "inspect: issuer RFC 2253");
    ku = json_object_get(o, "key_usage");
    t_is(t_dump(ku), "[\"nonRepudiation\"]", "inspect: key_usage");
    t_ok(t_str(o, "not_before") && strlen(t_str(o, "not_before")) == 20
         && t_str(o, "not_before")[10] == 'T'
         && t_str(o, "not_before")[19] == 'Z',
         "inspect: not_before ISO 8601 UTC (%s)", t_str(o, "not_before"));
    t_ok(t_str(o, "not_after") && t_str(o, "not_after")[19] == 'Z',
         "inspect: not_after ISO 8601 UTC");
    t_ok(json_object_size(o) == 10, "inspect: ten members: %s", t_dump(o));
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, std, NULL, now);
    t_is(t_str(o, "role"), "Pharmacist",
         "inspect: hcRole, standard shape with codeDataValue");
    t_is(t_str(o, "kind"), "signing", "inspect: standard shape: signing");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, auth, NULL, now);
    t_is(t_str(o, "kind"), "authentication", "inspect: authentication kind");
    t_is(t_dump(json_object_get(o, "key_usage")), "[\"digitalSignature\"]",
         "inspect: authentication key_usage");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, norole, NULL, now);
    t_ok(json_is_null(json_object_get(o, "role")), "inspect: no hcRole: null");
    t_is(t_str(o, "chain"), "ok", "inspect: no hcRole: chain still ok");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, both, NULL, now);
    t_is(t_str(o, "kind"), "other",
         "inspect: both signing and authentication: other");
    t_is(t_dump(json_object_get(o, "key_usage")),
         "[\"digitalSignature\",\"nonRepudiation\"]",
         "inspect: two key usages");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, ca, NULL, now);
    t_is(t_str(o, "kind"), "other", "inspect: a CA is other");
    t_is(t_str(o, "chain"), "ok", "inspect: the CA chains to the root");
    t_is(t_dump(json_object_get(o, "key_usage")),
         "[\"keyCertSign\",\"cRLSign\"]", "inspect: CA key_usage");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, rogue_ee, NULL, now);
    t_is(t_str(o, "chain"), "unable to get local issuer certificate",
         "inspect: a rogue CA of the same name is not the issuer (AKID)");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_root, rogue_ee, NULL, now);
    t_is(t_str(o, "chain"), "unable to get local issuer certificate",
         "inspect: unknown CA");
    t_is(t_str(o, "revocation"), "unknown", "inspect: unknown CA: unknown");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_root, sign, NULL, now);
    t_is(t_str(o, "chain"), "unable to get local issuer certificate",
         "inspect: intermediate neither configured nor sent");
    json_decref(o);

    extra = sk_X509_new_null();
    sk_X509_push(extra, ca);
    o = ngx_http_hpki_inspect_cert(st_root, sign, extra, now);
    t_is(t_str(o, "chain"), "ok", "inspect: intermediate sent with it");
    json_decref(o);
    sk_X509_free(extra);

    o = ngx_http_hpki_inspect_cert(st, expired, NULL, now);
    t_is(t_str(o, "chain"), "certificate has expired", "inspect: expired");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st, sign, NULL, now - 86400 * 2);
    t_is(t_str(o, "chain"), "certificate is not yet valid",
         "inspect: checked at the time given");
    json_decref(o);

    /* --- revocation -------------------------------------------------- */

    o = ngx_http_hpki_inspect_cert(st_crl, sign, NULL, now);
    t_is(t_str(o, "chain"), "ok", "CRL: chain ok");
    t_is(t_str(o, "revocation"), "good", "CRL: not listed: good");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_crl, revoked, NULL, now);
    t_is(t_str(o, "chain"), "certificate revoked", "CRL: chain: revoked");
    t_is(t_str(o, "revocation"), "revoked", "CRL: listed: revoked");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_crl1, sign, NULL, now);
    t_is(t_str(o, "chain"), "unable to get certificate CRL",
         "CRL: the intermediate needs the root's CRL too (CRL_CHECK_ALL)");
    t_is(t_str(o, "revocation"), "good", "CRL: the leaf's own CRL: good");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_old, revoked, NULL, now);
    t_is(t_str(o, "chain"), "CRL has expired", "CRL: out of date: chain");
    t_is(t_str(o, "revocation"), "unknown",
         "CRL: out of date: unknown, even if listed there");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_crl, rogue_ee, NULL, now);
    t_is(t_str(o, "revocation"), "unknown",
         "CRL: rogue issuer's key does not verify the real CRL: unknown");
    json_decref(o);

    o = ngx_http_hpki_inspect_cert(st_crl, root, NULL, now);
    t_is(t_str(o, "chain"), "ok", "CRL: the root itself needs no CRL");
    t_is(t_str(o, "revocation"), "unknown", "CRL: a root: unknown");
    json_decref(o);

    /* --- signatures ----------------------------------------------------- */

    for (a = NGX_HTTP_HPKI_INSPECT_SHA256; a <= NGX_HTTP_HPKI_INSPECT_SHA512;
         a++)
    {
        dlen = a == 1 ? 32 : a == 2 ? 48 : 64;
        alg_name = a == 1 ? "sha256" : a == 2 ? "sha384" : "sha512";

        for (p = 0; p < 2; p++) {
            memset(digest, 0x40 + a, sizeof(digest));
            slen = t_sign(kee, a, p, (int) dlen, digest, dlen, sig);

            t_ok(ngx_http_hpki_inspect_verify_sig(sign, a, p, digest, dlen,
                                                  sig, slen) == 1,
                 "sig: %s %s verifies", alg_name, p ? "pss" : "pkcs1");

            t_ok(ngx_http_hpki_inspect_verify_sig(sign, a, !p, digest, dlen,
                                                  sig, slen) == 0,
                 "sig: %s %s: not as %s", alg_name, p ? "pss" : "pkcs1",
                 p ? "pkcs1" : "pss");

            sig[slen / 2] ^= 0x01;
            t_ok(ngx_http_hpki_inspect_verify_sig(sign, a, p, digest, dlen,
                                                  sig, slen) == 0,
                 "sig: %s %s: one bit flipped: invalid", alg_name,
                 p ? "pss" : "pkcs1");
            sig[slen / 2] ^= 0x01;

            digest[0] ^= 0x80;
            t_ok(ngx_http_hpki_inspect_verify_sig(sign, a, p, digest, dlen,
                                                  sig, slen) == 0,
                 "sig: %s %s: other digest: invalid", alg_name,
                 p ? "pss" : "pkcs1");
            digest[0] ^= 0x80;

            t_ok(ngx_http_hpki_inspect_verify_sig(rogue, a, p, digest, dlen,
                                                  sig, slen) == 0,
                 "sig: %s %s: another key: invalid", alg_name,
                 p ? "pss" : "pkcs1");

            t_ok(ngx_http_hpki_inspect_verify_sig(sign, a, p, digest, dlen,
                                                  sig, slen - 1) == 0,
                 "sig: %s %s: truncated: invalid", alg_name,
                 p ? "pss" : "pkcs1");
        }
    }

    memset(digest, 0x33, sizeof(digest));
    slen = t_sign(kee, NGX_HTTP_HPKI_INSPECT_SHA256, 1, RSA_PSS_SALTLEN_MAX,
                  digest, 32, sig);
    t_ok(ngx_http_hpki_inspect_verify_sig(sign, NGX_HTTP_HPKI_INSPECT_SHA256,
                                          1, digest, 32, sig, slen) == 0,
         "sig: pss with a maximal salt is refused (salt = digest length)");

    slen = t_sign(kee, NGX_HTTP_HPKI_INSPECT_SHA256, 0, 0, digest, 32, sig);
    t_ok(ngx_http_hpki_inspect_verify_sig(sign, NGX_HTTP_HPKI_INSPECT_SHA256,
                                          0, digest, 48, sig, slen)
         == NGX_HTTP_HPKI_INSPECT_ERROR,
         "sig: digest length not the hash's: error");
    t_ok(ngx_http_hpki_inspect_verify_sig(sign, 7, 0, digest, 32, sig, slen)
         == NGX_HTTP_HPKI_INSPECT_ERROR, "sig: unknown hash: error");
    t_ok(ngx_http_hpki_inspect_verify_sig(eccert,
                                          NGX_HTTP_HPKI_INSPECT_SHA256, 0,
                                          digest, 32, sig, slen)
         == NGX_HTTP_HPKI_INSPECT_NOT_RSA,
         "sig: an ECDSA certificate: not RSA");

    /* --- the request body ----------------------------------------------- */

    slen = t_sign(kee, NGX_HTTP_HPKI_INSPECT_SHA256, 0, 0, digest, 32, sig);

    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, t_b64(sig, slen),
                            t_pem(sign))), "ok", "parse: PEM certificate");
    t_is(t_parse_err(t_body(t_b64(digest, 32), "sha256", "rsa-pkcs1",
                            t_b64(sig, slen), t_der_b64(sign, 0))), "ok",
         "parse: base64 DER certificate");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, t_b64(sig, slen),
                            t_der_b64(sign, 1))), "ok",
         "parse: base64 DER with CRLF line breaks");
    t_is(t_parse_err(t_body(t_b64(digest, 48), "sha384", "rsa-pss",
                            t_b64(sig, slen), t_pem(sign))), "ok",
         "parse: sha384 rsa-pss");

    t_is(t_parse_err("hello"), "the body is not a JSON object",
         "parse: not JSON");
    t_is(t_parse_err("[1]"), "the body is not a JSON object",
         "parse: an array");
    t_is(t_parse_err("{\"hash\":\"a\",\"hash\":\"b\"}"),
         "the body is not a JSON object", "parse: duplicate members");
    t_is(t_parse_err(t_body(NULL, NULL, NULL, t_b64(sig, slen), t_pem(sign))),
         "\"hash\" is required: the base64 digest that was signed",
         "parse: no hash");
    t_is(t_parse_err(t_body("!!!!", NULL, NULL, t_b64(sig, slen),
                            t_pem(sign))),
         "\"hash\" is not a base64 digest", "parse: hash not base64");
    t_is(t_parse_err(t_body(t_b64(digest, 20), NULL, NULL, t_b64(sig, slen),
                            t_pem(sign))),
         "\"hash\" must be as long as hash_alg's digests (32 bytes for "
         "sha256, 48 for sha384, 64 for sha512)", "parse: 20-byte hash");
    t_is(t_parse_err(t_body(t_b64(digest, 32), "sha512", NULL,
                            t_b64(sig, slen), t_pem(sign))),
         "\"hash\" must be as long as hash_alg's digests (32 bytes for "
         "sha256, 48 for sha384, 64 for sha512)",
         "parse: SHA-256 digest called sha512");
    t_is(t_parse_err(t_body(t_b64(digest, 64), NULL, NULL,
                            t_b64(sig, slen), t_pem(sign))),
         "\"hash\" must be as long as hash_alg's digests (32 bytes for "
         "sha256, 48 for sha384, 64 for sha512)",
         "parse: 64 bytes with the default sha256");
    t_is(t_parse_err(t_body(t_b64(digest, 32), "md5", NULL, t_b64(sig, slen),
                            t_pem(sign))),
         "\"hash_alg\" must be sha256, sha384 or sha512",
         "parse: unknown hash_alg");
    t_is(t_parse_err("{\"hash_alg\":256}"),
         "\"hash_alg\" must be sha256, sha384 or sha512",
         "parse: hash_alg not a string");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, "ecdsa",
                            t_b64(sig, slen), t_pem(sign))),
         "\"sig_alg\" must be rsa-pkcs1 or rsa-pss", "parse: unknown sig_alg");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, NULL,
                            t_pem(sign))),
         "\"signature\" is required: the base64 signature value",
         "parse: no signature");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, "", t_pem(sign))),
         "\"signature\" is required: the base64 signature value",
         "parse: empty signature");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, "QUJD-_==",
                            t_pem(sign))),
         "\"signature\" is not valid base64",
         "parse: base64url signature refused");

    memset(buf, 'A', 1500);
    buf[1500] = '\0';
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, buf, t_pem(sign))),
         "\"signature\" is longer than any RSA signature accepted "
         "(1024 bytes)", "parse: 1500-character signature");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, t_b64(sig, slen),
                            NULL)),
         "\"certificate\" is required: PEM or base64 DER",
         "parse: no certificate");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, t_b64(sig, slen),
                            "-----BEGIN CERTIFICATE-----\nAAAA\n"
                            "-----END CERTIFICATE-----\n")),
         "\"certificate\" is not a PEM or base64 DER X.509 certificate (at "
         "most 8 intermediates may follow it)", "parse: broken PEM");
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, t_b64(sig, slen),
                            t_b64(digest, 32))),
         "\"certificate\" is not a PEM or base64 DER X.509 certificate (at "
         "most 8 intermediates may follow it)", "parse: base64 non-DER");

    memset(buf, 'A', 16388);
    buf[16388] = '\0';
    t_is(t_parse_err(t_body(t_b64(digest, 32), NULL, NULL, t_b64(sig, slen),
                            buf)),
         "\"certificate\" is larger than 16 KiB", "parse: 16 KiB certificate");

    memset(buf, ' ', sizeof(buf));
    buf[0] = '{';
    buf[65537] = '}';
    buf[65538] = '\0';
    t_is(t_parse_err(buf), "the body is larger than 64 KiB",
         "parse: body over 64 KiB");

    /* base64 strictness, through "hash" */

    t_is(t_parse_err("{\"hash\":\"YQ\"}"), "\"hash\" is not a base64 digest",
         "base64: padding required");
    t_is(t_parse_err("{\"hash\":\"YR==\"}"), "\"hash\" is not a base64 digest",
         "base64: non-zero unused bits");
    t_is(t_parse_err("{\"hash\":\"Y===\"}"), "\"hash\" is not a base64 digest",
         "base64: three pads");
    t_is(t_parse_err("{\"hash\":\"YQ==YQ==\"}"),
         "\"hash\" is not a base64 digest", "base64: data after padding");
    t_is(t_parse_err("{\"hash\":\"YW Jj\"}"),
         "\"hash\" is not a base64 digest", "base64: a space in hash");

    /* PEM chain in "certificate", and "chain" */

    bundle = malloc(16384);
    snprintf(bundle, 16384, "%s", t_pem(sign));
    snprintf(bundle + strlen(bundle), 16384 - strlen(bundle), "%s",
             t_pem(ca));

    rc = ngx_http_hpki_inspect_parse(t_body(t_b64(digest, 32), NULL, NULL,
                                            t_b64(sig, slen), bundle),
                                     strlen(t_body(t_b64(digest, 32), NULL,
                                                   NULL, t_b64(sig, slen),
                                                   bundle)),
                                     &req, &alg_name);
    t_ok(rc == 0 && req.cert && sk_X509_num(req.chain) == 1
         && X509_cmp(req.cert, sign) == 0
         && X509_cmp(sk_X509_value(req.chain, 0), ca) == 0,
         "parse: leaf then intermediate in one PEM");

    o = ngx_http_hpki_inspect_verify(st_root, &req, now);
    t_ok(json_is_true(json_object_get(o, "valid")),
         "verify: valid with the intermediate sent: %s", t_dump(o));
    json_decref(o);
    ngx_http_hpki_inspect_req_free(&req);

    snprintf(buf, sizeof(buf), "{\"hash\":\"%s\",\"signature\":\"%s\","
             "\"certificate\":\"%s\",\"chain\":[\"%s\"]}", t_b64(digest, 32),
             t_b64(sig, slen), t_der_b64(sign, 0), t_der_b64(ca, 0));
    rc = ngx_http_hpki_inspect_parse(buf, strlen(buf), &req, &alg_name);
    t_ok(rc == 0 && sk_X509_num(req.chain) == 1, "parse: \"chain\" array");
    ngx_http_hpki_inspect_req_free(&req);

    snprintf(buf, sizeof(buf), "{\"hash\":\"%s\",\"signature\":\"%s\","
             "\"certificate\":\"%s\",\"chain\":\"%s\"}", t_b64(digest, 32),
             t_b64(sig, slen), t_der_b64(sign, 0), t_der_b64(ca, 0));
    t_is(t_parse_err(buf), "\"chain\" must be an array of at most 8 "
         "certificates", "parse: \"chain\" not an array");

    free(bundle);

    /* --- the verify answer ---------------------------------------------- */


    o = t_verify(st, sign, digest, sig, slen, now);
    t_ok(json_is_true(json_object_get(o, "valid")),
         "verify: doctor's signing certificate: valid");
    t_is(t_dump(json_object_get(o, "reasons")), "[]", "verify: no reasons");
    t_is(t_str(o, "role"), "Medical Doctor", "verify: role");
    t_ok(json_object_size(o) == 12, "verify: twelve members");
    t_is(json_object_iter_key(json_object_iter(o)), "valid",
         "verify: \"valid\" comes first");
    json_decref(o);

    sig[3] ^= 0x10;
    o = t_verify(st, sign, digest, sig, slen, now);
    t_ok(json_is_false(json_object_get(o, "valid")), "verify: tampered: "
         "invalid");
    t_is(t_dump(json_object_get(o, "reasons")),
         "[\"the signature does not verify with the certificate's key\"]",
         "verify: tampered: the reason");
    t_is(t_str(o, "chain"), "ok", "verify: tampered: chain still ok");
    json_decref(o);
    sig[3] ^= 0x10;

    o = t_verify(st, auth, digest, sig, slen, now);
    t_ok(json_is_false(json_object_get(o, "valid")),
         "verify: an authentication certificate: invalid");
    t_is(t_dump(json_object_get(o, "reasons")),
         "[\"the certificate is not an HPKI signing certificate\"]",
         "verify: authentication: the reason");
    json_decref(o);

    o = t_verify(st, norole, digest, sig, slen, now);
    t_is(t_dump(json_object_get(o, "reasons")),
         "[\"the certificate has no hcRole\"]", "verify: no hcRole: invalid");
    json_decref(o);

    o = t_verify(st_crl, revoked, digest, sig, slen, now);
    t_is(t_dump(json_object_get(o, "reasons")),
         "[\"the certificate does not chain to a trust anchor (see "
         "\\\"chain\\\")\",\"the certificate is revoked\"]",
         "verify: revoked: chain and revocation");
    json_decref(o);

    o = t_verify(st_crl, sign, digest, sig, slen, now);
    t_ok(json_is_true(json_object_get(o, "valid")), "verify: with CRLs, "
         "good: valid");
    t_is(t_str(o, "revocation"), "good", "verify: revocation good");
    json_decref(o);

    o = t_verify(st, expired, digest, sig, slen, now);
    t_ok(json_is_false(json_object_get(o, "valid")), "verify: expired: "
         "invalid");
    json_decref(o);

    o = t_verify(st, rogue_ee, digest, sig, slen, now);
    t_ok(json_is_false(json_object_get(o, "valid")), "verify: rogue CA: "
         "invalid");
    json_decref(o);

    o = t_verify(st, eccert, digest, sig, slen, now);
    t_is(t_dump(json_object_get(o, "reasons")),
         "[\"the certificate's key is not an RSA key (HPKI keys are)\"]",
         "verify: ECDSA key: refused with a clear reason");
    json_decref(o);

    /* --- the real MHLW root and MEDIS CAs ------------------------------- */

    if (pki[0] == '\0' || access(pki, R_OK) != 0) {
        for (a = 0; a < 5; a++) {
            printf("ok %d # skip no shared/pki\n", ++t_num);
        }

    } else {
        char  f1[600], f2[600], f3[600], f4[600];

        snprintf(f1, sizeof(f1), "%s/mhlw_hpki_root_ca_v2.pem", pki);
        snprintf(f2, sizeof(f2), "%s/medis_sign_ca.pem", pki);
        snprintf(f3, sizeof(f3), "%s/medis_auth_ca.pem", pki);
        snprintf(f4, sizeof(f4), "%s/medis_sign_ca.pem", pki);

        st_real = t_store(f1, f2, NULL, NULL);
        t_ok(st_real != NULL, "real: MHLW root + MEDIS signing CA load");

        if (st_real) {
            ngx_http_hpki_inspect_store_count(st_real, &n1, &n2, &n3);
            t_ok(n1 == 1 && n2 == 1, "real: the root is the anchor, MEDIS "
                 "an intermediate");
        }

        {
            FILE            *f;
            size_t           n;
            unsigned char   *d;
            STACK_OF(X509)  *cs;

            d = malloc(65536);
            f = fopen(f4, "rb");
            n = f ? fread(d, 1, 65536, f) : 0;

            if (f) {
                fclose(f);
            }

            cs = ngx_http_hpki_inspect_read_certs(d, n);
            free(d);

            o = st_real && cs ? ngx_http_hpki_inspect_cert(st_real,
                                                  sk_X509_value(cs, 0), NULL,
                                                  now)
                              : NULL;
            t_is(t_str(o, "chain"), "ok",
                 "real: MEDIS signing CA chains to the MHLW root");
            t_is(t_str(o, "kind"), "other", "real: a CA is not a signer");
            printf("# %s\n", t_dump(o));
            json_decref(o);
            sk_X509_pop_free(cs, X509_free);
        }

        ngx_http_hpki_inspect_store_free(st_real);

        st_real = t_store(f3, f1, NULL, NULL);
        t_ok(st_real != NULL, "real: MEDIS authentication CA before the "
             "root in the list");
        ngx_http_hpki_inspect_store_free(st_real);
    }

    /* --- done ------------------------------------------------------------ */

    ngx_http_hpki_inspect_store_free(st);
    ngx_http_hpki_inspect_store_free(st_root);
    ngx_http_hpki_inspect_store_free(st_crl);
    ngx_http_hpki_inspect_store_free(st_crl1);
    ngx_http_hpki_inspect_store_free(st_old);

    X509_free(root);
    X509_free(ca);
    X509_free(rogue);
    X509_free(sign);
    X509_free(std);
    X509_free(auth);
    X509_free(norole);
    X509_free(expired);
    X509_free(revoked);
    X509_free(rogue_ee);
    X509_free(eccert);
    X509_free(both);
    X509_CRL_free(crl_ca);
    X509_CRL_free(crl_root);
    X509_CRL_free(crl_old);
    EVP_PKEY_free(kroot);
    EVP_PKEY_free(kca);
    EVP_PKEY_free(krogue);
    EVP_PKEY_free(kee);
    EVP_PKEY_free(kec);

    {
        const char  *names[] = { "bundle.pem", "root.pem", "ca.pem",
                                 "sign.pem", "crls.pem", "crl-ca.pem",
                                 "crl-old.pem", "crl-root.pem", NULL };
        const char **nm;

        for (nm = names; *nm; nm++) {
            unlink(t_path(*nm));
        }

        rmdir(t_dir);
    }

    printf("1..%d\n", t_num);

    return t_failed ? 1 : 0;
}
