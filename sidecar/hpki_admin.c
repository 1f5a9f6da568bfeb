/*
 * hpki-admin: users, split keys, certificates, phone enrolment codes,
 * FIDO credentials and the audit log.
 *
 *   hpki-admin [-c FILE] COMMAND ...   (see hpki_admin_usage())
 *
 * A key is generated (or imported) in memory, its private exponent split
 * into two shares, each share sealed under its own store's KEK and
 * written through that store's own Redis credentials; then d, p, q and
 * lambda are wiped.  Share versions make "key refresh" atomic: new shares
 * are written under version v+1 first, the public record then switches to
 * v+1 in one HSET, and only then are the version v shares deleted.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <jansson.h>
#include <png.h>
#include <qrencode.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hpki_core.h"
#include "hpki_conf.h"
#include "hpki_rsa.h"
#include "hpki_store.h"
#include "hpki_audit.h"
#include "ngx_http_hpki_inspect.h"
#include "ngx_http_hpki_cert.h"


#define HPKI_ADMIN_MAX_CA    32
#define HPKI_ADMIN_FILE_MAX  (1024 * 1024)

#define HPKI_ADMIN_ENROLL_ALPHABET    "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#define HPKI_ADMIN_ENROLL_ID_LEN      8
#define HPKI_ADMIN_ENROLL_SECRET_LEN  12
#define HPKI_ADMIN_ENROLL_CODE_LEN    (HPKI_ADMIN_ENROLL_ID_LEN + 1         \
                                       + HPKI_ADMIN_ENROLL_SECRET_LEN)
#define HPKI_ADMIN_ENROLL_TTL         900
#define HPKI_ADMIN_ENROLL_TTL_MIN     60
#define HPKI_ADMIN_ENROLL_TTL_MAX     86400
#define HPKI_ADMIN_ENROLL_TRIES       8
#define HPKI_ADMIN_ENROLL_URL_MAX     1024
#define HPKI_ADMIN_QR_MARGIN          4       /* quiet zone, in modules */
#define HPKI_ADMIN_PNG_SCALE          8       /* pixels a module */


typedef struct {
    hpki_conf_t     cf;
    redisContext   *pub;
    redisContext   *store[2];
    u_char         *kek[2];
    int             writes;
    int             crash_after;
    BN_CTX         *bn;

    /* options */
    const char     *id;
    const char     *user;
    const char     *cert;
    const char     *chain;
    const char     *name;
    const char     *key;
    const char     *subject;
    const char     *csr_out;
    const char     *file;
    int             bits;
    const char     *ca[HPKI_ADMIN_MAX_CA];       /* cert inspect --ca */
    size_t          nca;
    const char     *crl[HPKI_ADMIN_MAX_CA];      /* cert inspect --crl */
    size_t          ncrl;
    const char     *ttl;                         /* enroll-code */
    const char     *url;
    const char     *png;
    int             json;
    const char     *credential;                  /* fido delete */
} hpki_admin_t;


static int hpki_admin_connect_public(hpki_admin_t *a);
static int hpki_admin_connect_store(hpki_admin_t *a, int s);
static int hpki_admin_write(hpki_admin_t *a, redisContext *c,
    redisReply *r);


static void
hpki_admin_usage(void)
{
    fprintf(stderr,
"usage: hpki-admin [-c FILE] COMMAND [OPTIONS]\n"
"  user add --id ID --cert AUTH_CERT.pem [--name NAME]\n"
"  user link-cert --id ID --cert FILE\n"
"  user link-jpki --id ID --cert JPKI_AUTH_CERT.pem\n"
"  key generate --user ID [--bits 2048|3072|4096] [--subject /C=JP/CN=..]\n"
"               [--csr-out FILE]\n"
"  key import --user ID --key FILE [--subject DN] [--csr-out FILE]\n"
"  cert install --user ID --cert FILE [--chain FILE]\n"
"  cert inspect FILE [--ca PEM]... [--crl CRL]...   (no config needed)\n"
"  key show --user ID\n"
"  key list\n"
"  key revoke --user ID\n"
"  key delete --user ID\n"
"  key refresh --user ID\n"
"  audit verify [--file AUDIT_LOG]\n"
"  enroll-code --user ID [--ttl SECONDS] [--url BASE] [--png FILE] [--json]\n"
"  fido list --user ID [--json]\n"
"  fido delete --user ID --credential H\n"
"The configuration is -c FILE, $HPKI_SIGND_CONF or "
"/etc/hpki/hpki-signd.conf.\n");
}


static void
hpki_admin_ssl_error(const char *what)
{
    unsigned long  e;
    char           buf[256];

    e = ERR_get_error();
    ERR_error_string_n(e, buf, sizeof(buf));
    hpki_log(HPKI_LOG_ERROR, "%s: %s", what, e ? buf : "failed");
    ERR_clear_error();
}


static int
hpki_admin_connect_public(hpki_admin_t *a)
{
    if (a->pub == NULL) {
        a->pub = hpki_redis_public(&a->cf);
    }

    return a->pub ? 0 : -1;
}


/* a store: its own Redis credentials and its own KEK */

static int
hpki_admin_connect_store(hpki_admin_t *a, int s)
{
    hpki_conf_store_t  *st;

    st = &a->cf.store[s];

    if (a->store[s] != NULL) {
        return 0;
    }

    if (st->kek == NULL) {
        hpki_log(HPKI_LOG_ERROR, "store_%c_kek is not configured", 'a' + s);
        return -1;
    }

    a->kek[s] = OPENSSL_secure_malloc(HPKI_KEK_LEN);
    if (a->kek[s] == NULL || hpki_kek_load(st->kek, a->kek[s]) != 0) {
        return -1;
    }

    a->store[s] = hpki_redis_store(st);
    return a->store[s] ? 0 : -1;
}


/*
 * Every write to Redis goes through here; HPKI_ADMIN_CRASH_AFTER=N kills
 * the process right after the N-th write (fault injection for tests).
 */

static int
hpki_admin_write(hpki_admin_t *a, redisContext *c, redisReply *r)
{
    int  rc;

    rc = 0;

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        hpki_log(HPKI_LOG_ERROR, "redis write failed: %s",
                 r ? r->str : c->errstr);
        rc = -1;
    }

    if (r != NULL) {
        freeReplyObject(r);
    }

    if (rc == 0 && ++a->writes == a->crash_after) {
        hpki_log(HPKI_LOG_WARN, "HPKI_ADMIN_CRASH_AFTER=%d: killing myself",
                 a->crash_after);
        raise(SIGKILL);
    }

    return rc;
}


/* base64url without padding of SHA-256(DER) (RFC 8705 x5t#S256) */

static int
hpki_admin_x5t(X509 *x, char *out)
{
    int      len, i, n;
    u_char  *der, md[SHA256_DIGEST_LENGTH];
    char     b64[64];

    der = NULL;
    len = i2d_X509(x, &der);
    if (len <= 0) {
        return -1;
    }

    SHA256(der, len, md);
    OPENSSL_free(der);

    n = EVP_EncodeBlock((u_char *) b64, md, sizeof(md));

    for (i = 0; i < n && b64[i] != '='; i++) {
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    }

    out[i] = '\0';
    return 0;
}


static X509 *
hpki_admin_load_cert(const char *path)
{
    BIO   *bio;
    X509  *x;

    bio = BIO_new_file(path, "r");
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (x == NULL) {
        hpki_admin_ssl_error(path);
    }

    return x;
}


static int
hpki_admin_need(const char *v, const char *opt)
{
    if (v == NULL) {
        fprintf(stderr, "hpki-admin: %s is required\n", opt);
        return -1;
    }

    return 0;
}


static int
hpki_admin_check_user(const char *id)
{
    if (id == NULL || !hpki_user_valid(id, strlen(id))) {
        fprintf(stderr, "hpki-admin: user ids match [A-Za-z0-9._@-]{1,64}\n");
        return -1;
    }

    return 0;
}


/* 0 if hpki:user:<id> exists; otherwise says so, -1 */

static int
hpki_admin_user_exists(hpki_admin_t *a, const char *id)
{
    int          ok;
    redisReply  *r;

    r = redisCommand(a->pub, "EXISTS hpki:user:%s", id);

    ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;

    if (r) {
        freeReplyObject(r);
    }

    if (!ok) {
        hpki_log(HPKI_LOG_ERROR, "no user \"%s\"", id);
        return -1;
    }

    return 0;
}


/* 0 if the user exists and its status is "active"; otherwise says so, -1 */

static int
hpki_admin_user_active(hpki_admin_t *a, const char *id)
{
    int          ok;
    redisReply  *r;

    if (hpki_admin_user_exists(a, id) != 0) {
        return -1;
    }

    r = redisCommand(a->pub, "HGET hpki:user:%s status", id);

    ok = r != NULL && r->type == REDIS_REPLY_STRING
         && strcmp(r->str, "active") == 0;

    if (!ok) {
        hpki_log(HPKI_LOG_ERROR, "user \"%s\" is not active (status %s)",
                 id, r && r->type == REDIS_REPLY_STRING ? r->str : "unset");
    }

    if (r) {
        freeReplyObject(r);
    }

    return ok ? 0 : -1;
}


/* user add / user link-cert */

static int
hpki_admin_user(hpki_admin_t *a, int add)
{
    int          rc;
    char         x5t[64], now[32], role[NGX_HTTP_HPKI_HCROLE_MAX_ROLE + 1];
    X509        *x;
    redisReply  *r;

    rc = -1;

    if (hpki_admin_check_user(a->id) != 0
        || hpki_admin_need(a->cert, "--cert") != 0)
    {
        return -1;
    }

    x = hpki_admin_load_cert(a->cert);
    if (x == NULL || hpki_admin_x5t(x, x5t) != 0
        || hpki_admin_connect_public(a) != 0)
    {
        goto done;
    }

    if (add) {

        /* the qualification, for logins whose certificate has none */

        if (ngx_http_hpki_cert_role(x, role, sizeof(role)) != 0) {
            hpki_log(HPKI_LOG_WARN, "%s carries no hcRole: the user gets "
                     "no role for JPKI logins", a->cert);
            role[0] = '\0';
        }

        snprintf(now, sizeof(now), "%lld", (long long) time(NULL));
        r = redisCommand(a->pub, "HSET hpki:user:%s name %s status active "
                         "created %s role %s", a->id,
                         a->name ? a->name : a->id, now, role);
        if (hpki_admin_write(a, a->pub, r) != 0) {
            goto done;
        }

    } else {
        if (hpki_admin_user_exists(a, a->id) != 0) {
            goto done;
        }
    }

    r = redisCommand(a->pub, "SET hpki:cert:%s %s", x5t, a->id);
    if (hpki_admin_write(a, a->pub, r) != 0) {
        goto done;
    }

    printf("%s %s\n", a->id, x5t);
    rc = 0;

done:

    X509_free(x);
    return rc;
}


/*
 * user link-jpki: a My Number card's user-authentication certificate names
 * nobody, so it is linked to an HPKI identity by hand; a renewed card is
 * linked again, which drops the old link.  The signing certificate, which
 * carries the holder's home address, is refused.
 */

static int
hpki_admin_link_jpki(hpki_admin_t *a)
{
    int          rc, kind;
    char         x5t[64];
    X509        *x;
    redisReply  *r;

    rc = -1;

    if (hpki_admin_check_user(a->id) != 0
        || hpki_admin_need(a->cert, "--cert") != 0)
    {
        return -1;
    }

    x = hpki_admin_load_cert(a->cert);
    if (x == NULL || hpki_admin_x5t(x, x5t) != 0) {
        goto done;
    }

    kind = ngx_http_hpki_cert_kind(x);

    if (kind & NGX_HTTP_HPKI_CERT_JPKI_SIGN) {
        hpki_log(HPKI_LOG_ERROR, "%s is a JPKI signing certificate (it "
                 "carries the holder's home address): link the "
                 "user-authentication certificate", a->cert);
        goto done;
    }

    if (!(kind & NGX_HTTP_HPKI_CERT_JPKI_AUTH)) {
        hpki_log(HPKI_LOG_ERROR, "%s is not a JPKI user-authentication "
                 "certificate", a->cert);
        goto done;
    }

    if (hpki_admin_connect_public(a) != 0) {
        goto done;
    }

    if (hpki_admin_user_exists(a, a->id) != 0) {
        goto done;
    }

    /* a renewed card: the previous certificate's link goes */

    r = redisCommand(a->pub, "HGET hpki:user:%s jpki", a->id);

    if (r == NULL || (r->type != REDIS_REPLY_STRING
                      && r->type != REDIS_REPLY_NIL))
    {
        hpki_log(HPKI_LOG_ERROR, "cannot read the user record of \"%s\"",
                 a->id);
        if (r) {
            freeReplyObject(r);
        }
        goto done;
    }

    if (r->type == REDIS_REPLY_STRING && strcmp(r->str, x5t) != 0) {
        redisReply  *d;

        d = redisCommand(a->pub, "DEL hpki:jpki:%s", r->str);
        if (d) {
            freeReplyObject(d);
        }
    }

    freeReplyObject(r);

    r = redisCommand(a->pub, "SET hpki:jpki:%s %s", x5t, a->id);
    if (hpki_admin_write(a, a->pub, r) != 0) {
        goto done;
    }

    r = redisCommand(a->pub, "HSET hpki:user:%s jpki %s", a->id, x5t);
    if (hpki_admin_write(a, a->pub, r) != 0) {
        goto done;
    }

    printf("%s %s\n", a->id, x5t);
    rc = 0;

done:

    X509_free(x);
    return rc;
}


/* checks (m^da * m^db)^e == m for a random m: the shares make the key */

static int
hpki_admin_check_shares(hpki_admin_t *a, const BIGNUM *n, const BIGNUM *e,
    const BIGNUM *da, const BIGNUM *db)
{
    int      rc;
    BIGNUM  *m, *ya, *yb, *s;

    rc = -1;

    BN_CTX_start(a->bn);
    m = BN_CTX_get(a->bn);
    ya = BN_CTX_get(a->bn);
    yb = BN_CTX_get(a->bn);
    s = BN_CTX_get(a->bn);

    if (s == NULL
        || BN_rand_range(m, n) != 1
        || hpki_rsa_partial(ya, m, da, n, a->bn) != 0
        || hpki_rsa_partial(yb, m, db, n, a->bn) != 0
        || BN_mod_mul(s, ya, yb, n, a->bn) != 1
        || BN_mod_exp(s, s, e, n, a->bn) != 1
        || BN_cmp(s, m) != 0)
    {
        hpki_log(HPKI_LOG_ERROR, "the shares do not make the key");
        goto done;
    }

    rc = 0;

done:

    BN_CTX_end(a->bn);
    return rc;
}


/* seals and writes one share: hpki:{a,b}:<user>:<version> */

static int
hpki_admin_put_share(hpki_admin_t *a, int s, const char *user,
    unsigned long version, const BIGNUM *share, const BIGNUM *n)
{
    int          rc;
    char         key[160], aad[160];
    u_char      *blob;
    size_t       len;
    redisReply  *r;

    BIGNUM      *wrong;

    wrong = NULL;

    /* HPKI_ADMIN_FAULT_WRONG_SHARE_A: test hook, a valid but wrong share */

    if (s == 0 && getenv("HPKI_ADMIN_FAULT_WRONG_SHARE_A") != NULL) {
        wrong = BN_dup(share);
        if (wrong == NULL || BN_add_word(wrong, 1) != 1) {
            BN_clear_free(wrong);
            return -1;
        }
        share = wrong;
    }

    rc = hpki_share_key(key, sizeof(key), &a->cf.store[s], user, version)
         != 0
         || hpki_share_aad(aad, sizeof(aad), a->cf.store[s].name, user,
                           version) < 0
         || hpki_share_seal(a->kek[s], aad, share, n, &blob, &len) != 0;

    BN_clear_free(wrong);

    if (rc) {
        hpki_log(HPKI_LOG_ERROR, "cannot seal share %c", 'A' + s);
        return -1;
    }

    r = redisCommand(a->store[s], "SET %s %b", key, blob, len);
    free(blob);

    rc = hpki_admin_write(a, a->store[s], r);
    return rc;
}


static int
hpki_admin_get_share(hpki_admin_t *a, int s, const char *user,
    unsigned long version, const BIGNUM *n, BIGNUM *share)
{
    int          rc;
    char         key[160], aad[160];
    redisReply  *r;

    rc = -1;

    if (hpki_share_key(key, sizeof(key), &a->cf.store[s], user, version) != 0
        || hpki_share_aad(aad, sizeof(aad), a->cf.store[s].name, user,
                          version) < 0)
    {
        return -1;
    }

    r = redisCommand(a->store[s], "GET %s", key);

    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        hpki_log(HPKI_LOG_ERROR, "share %c of \"%s\" version %lu is missing",
                 'A' + s, user, version);
        goto done;
    }

    if (hpki_share_open(a->kek[s], aad, (u_char *) r->str, r->len, n, share)
        != 0)
    {
        hpki_log(HPKI_LOG_ERROR, "share %c of \"%s\" version %lu does not "
                 "open (corrupt, tampered, or another key)", 'A' + s, user,
                 version);
        goto done;
    }

    rc = 0;

done:

    if (r != NULL) {
        freeReplyObject(r);
    }

    return rc;
}


static int
hpki_admin_subject(X509_NAME *name, const char *dn, const char *user)
{
    char  *copy, *p, *next, *eq;
    int    rc;

    if (dn == NULL) {
        return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                   (const u_char *) user, -1, -1, 0) == 1 ? 0 : -1;
    }

    copy = strdup(dn);
    if (copy == NULL) {
        return -1;
    }

    rc = -1;
    p = copy;
    if (*p == '/') {
        p++;
    }

    for ( ; p && *p; p = next) {
        next = strchr(p, '/');
        if (next) {
            *next++ = '\0';
        }

        eq = strchr(p, '=');
        if (eq == NULL) {
            goto done;
        }
        *eq = '\0';

        if (X509_NAME_add_entry_by_txt(name, p, MBSTRING_UTF8,
                                       (u_char *) eq + 1, -1, -1, 0) != 1)
        {
            goto done;
        }
    }

    rc = 0;

done:

    if (rc != 0) {
        hpki_log(HPKI_LOG_ERROR, "bad subject \"%s\"", dn);
    }

    free(copy);
    return rc;
}


/* PKCS#10 CSR signed with the whole key (before it is wiped) */

static int
hpki_admin_csr(hpki_admin_t *a, EVP_PKEY *pk)
{
    int        rc;
    BIO       *out;
    X509_REQ  *req;

    rc = -1;
    out = NULL;

    req = X509_REQ_new();
    if (req == NULL
        || X509_REQ_set_version(req, 0) != 1
        || hpki_admin_subject(X509_REQ_get_subject_name(req), a->subject,
                              a->user) != 0
        || X509_REQ_set_pubkey(req, pk) != 1
        || X509_REQ_sign(req, pk, EVP_sha256()) <= 0)
    {
        hpki_admin_ssl_error("CSR");
        goto done;
    }

    out = a->csr_out ? BIO_new_file(a->csr_out, "w")
                     : BIO_new_fp(stdout, BIO_NOCLOSE);

    if (out == NULL || PEM_write_bio_X509_REQ(out, req) != 1) {
        hpki_admin_ssl_error("writing the CSR");
        goto done;
    }

    rc = 0;

done:

    BIO_free(out);
    X509_REQ_free(req);
    return rc;
}


/* key id: hex of the first 16 bytes of SHA-256(SubjectPublicKeyInfo) */

static int
hpki_admin_kid(EVP_PKEY *pk, char *kid)
{
    int      len;
    u_char  *der, md[SHA256_DIGEST_LENGTH];

    der = NULL;
    len = i2d_PUBKEY(pk, &der);
    if (len <= 0) {
        return -1;
    }

    SHA256(der, len, md);
    OPENSSL_free(der);
    hpki_hex(kid, md, 16);
    return 0;
}


static int
hpki_admin_no_pass(char *buf, int size, int rw, void *u)
{
    (void) buf;
    (void) size;
    (void) rw;
    (void) u;
    return -1;
}


/* key generate / key import: split, seal, write, CSR, wipe */

static int
hpki_admin_key_create(hpki_admin_t *a, int import)
{
    int             rc, bits;
    char            kid[33], *nhex, *ehex;
    BIO            *bio;
    RSA            *rsa;
    BIGNUM         *da, *db;
    EVP_PKEY       *pk;
    redisReply     *r;
    const BIGNUM   *n, *e;

    rc = -1;
    pk = NULL;
    rsa = NULL;
    nhex = NULL;
    ehex = NULL;
    da = BN_secure_new();
    db = BN_secure_new();

    if (da == NULL || db == NULL || hpki_admin_check_user(a->user) != 0) {
        goto done;
    }

    if (hpki_admin_connect_public(a) != 0
        || hpki_admin_connect_store(a, 0) != 0
        || hpki_admin_connect_store(a, 1) != 0)
    {
        goto done;
    }

    r = redisCommand(a->pub, "EXISTS hpki:key:%s", a->user);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer != 0) {
        hpki_log(HPKI_LOG_ERROR, "\"%s\" already has a key (key delete "
                 "first)", a->user);
        if (r) {
            freeReplyObject(r);
        }
        goto done;
    }
    freeReplyObject(r);

    if (import) {
        if (hpki_admin_need(a->key, "--key") != 0) {
            goto done;
        }
        bio = BIO_new_file(a->key, "r");
        pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, hpki_admin_no_pass,
                                           NULL)
                 : NULL;
        BIO_free(bio);

        if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
            hpki_admin_ssl_error("reading the RSA private key");
            goto done;
        }

    } else {
        if (a->bits != 2048 && a->bits != 3072 && a->bits != 4096) {
            hpki_log(HPKI_LOG_ERROR, "--bits must be 2048, 3072 or 4096");
            goto done;
        }
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) a->bits);
        if (pk == NULL) {
            hpki_admin_ssl_error("key generation");
            goto done;
        }
    }

    rsa = EVP_PKEY_get1_RSA(pk);
    if (rsa == NULL) {
        goto done;
    }

    RSA_get0_key(rsa, &n, &e, NULL);
    bits = BN_num_bits(n);

    if (bits < 2048 || bits > 8 * HPKI_RSA_MAX_BYTES) {
        hpki_log(HPKI_LOG_ERROR, "RSA keys of 2048 to 4096 bits only");
        goto done;
    }

    if (hpki_rsa_split(rsa, da, db, a->bn) != 0
        || hpki_admin_check_shares(a, n, e, da, db) != 0
        || hpki_admin_kid(pk, kid) != 0)
    {
        goto done;
    }

    /* CSR first, while the whole key still exists */

    if (!import || a->csr_out != NULL) {
        if (hpki_admin_csr(a, pk) != 0) {
            goto done;
        }
    }

    nhex = BN_bn2hex(n);
    ehex = BN_bn2hex(e);

    if (nhex == NULL || ehex == NULL
        || hpki_admin_put_share(a, 0, a->user, 1, da, n) != 0
        || hpki_admin_put_share(a, 1, a->user, 1, db, n) != 0)
    {
        goto done;
    }

    r = redisCommand(a->pub, "HSET hpki:key:%s kid %s bits %d n %s e %s "
                     "version 1 status active cert %s chain %s",
                     a->user, kid, bits, nhex, ehex, "", "");
    if (hpki_admin_write(a, a->pub, r) != 0) {
        goto done;
    }

    fprintf(stderr, "hpki-admin: %s key for \"%s\": kid %s, %d bits, "
            "shares written, private key wiped\n",
            import ? "imported" : "generated", a->user, kid, bits);
    rc = 0;

done:

    /* RSA_free / EVP_PKEY_free clear d, p, q with BN_clear_free */
    BN_clear_free(da);
    BN_clear_free(db);
    RSA_free(rsa);
    EVP_PKEY_free(pk);
    OPENSSL_free(nhex);
    OPENSSL_free(ehex);
    return rc;
}


static int
hpki_admin_load_record(hpki_admin_t *a, hpki_key_record_t *rec)
{
    int  rc;

    if (hpki_admin_check_user(a->user) != 0
        || hpki_admin_connect_public(a) != 0)
    {
        return -1;
    }

    rc = hpki_key_record_load(a->pub, a->user, rec);
    if (rc == HPKI_STORE_MISSING) {
        hpki_log(HPKI_LOG_ERROR, "no key for \"%s\"", a->user);
    }

    return rc == HPKI_STORE_OK ? 0 : -1;
}


/* cert install: public key must match, keyUsage must have nonRepudiation */

static int
hpki_admin_cert_install(hpki_admin_t *a)
{
    int                 rc;
    BIO                *mem, *bio;
    X509               *x, *cx;
    char               *pem, *chain;
    long                len, clen;
    EVP_PKEY           *pk;
    BIGNUM             *cn, *ce;
    redisReply         *r;
    hpki_key_record_t   rec;

    rc = -1;
    x = NULL;
    mem = NULL;
    cn = NULL;
    ce = NULL;
    memset(&rec, 0, sizeof(rec));

    if (hpki_admin_need(a->cert, "--cert") != 0
        || hpki_admin_load_record(a, &rec) != 0)
    {
        goto done;
    }

    x = hpki_admin_load_cert(a->cert);
    if (x == NULL) {
        goto done;
    }

    pk = X509_get0_pubkey(x);
    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA
        || EVP_PKEY_get_bn_param(pk, "n", &cn) != 1
        || EVP_PKEY_get_bn_param(pk, "e", &ce) != 1
        || BN_cmp(cn, rec.n) != 0 || BN_cmp(ce, rec.e) != 0)
    {
        hpki_log(HPKI_LOG_ERROR, "the certificate's public key is not the "
                 "key of \"%s\"", a->user);
        goto done;
    }

    if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE)
        || !(X509_get_key_usage(x) & KU_NON_REPUDIATION))
    {
        hpki_log(HPKI_LOG_ERROR, "not a signing certificate: keyUsage lacks "
                 "nonRepudiation");
        goto done;
    }

    mem = BIO_new(BIO_s_mem());
    if (mem == NULL || PEM_write_bio_X509(mem, x) != 1) {
        goto done;
    }
    len = BIO_get_mem_data(mem, &pem);

    /* chain: every certificate in the file, re-encoded */

    clen = 0;
    chain = "";

    if (a->chain != NULL) {
        bio = BIO_new_file(a->chain, "r");
        if (bio == NULL) {
            hpki_admin_ssl_error(a->chain);
            goto done;
        }
        while ((cx = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            PEM_write_bio_X509(mem, cx);
            X509_free(cx);
        }
        ERR_clear_error();
        BIO_free(bio);

        clen = BIO_get_mem_data(mem, &pem) - len;
        chain = pem + len;
    }

    r = redisCommand(a->pub, "HSET hpki:key:%s cert %b chain %b", a->user,
                     pem, (size_t) len, chain, (size_t) clen);
    if (hpki_admin_write(a, a->pub, r) != 0) {
        goto done;
    }

    fprintf(stderr, "hpki-admin: certificate installed for \"%s\"\n",
            a->user);
    rc = 0;

done:

    BN_free(cn);
    BN_free(ce);
    BIO_free(mem);
    X509_free(x);
    hpki_key_record_free(&rec);
    return rc;
}


static char *
hpki_admin_asn1_time(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm  tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return NULL;
    }

    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}


static json_t *
hpki_admin_cert_json(const char *pem)
{
    BIO     *bio;
    X509    *x;
    char    *s, nb[32], na[32];
    BIGNUM  *bn;
    json_t  *j;

    bio = BIO_new_mem_buf(pem, -1);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (x == NULL) {
        return json_null();
    }

    j = json_object();

    s = X509_NAME_oneline(X509_get_subject_name(x), NULL, 0);
    json_object_set_new(j, "subject", json_string(s ? s : ""));
    OPENSSL_free(s);

    s = X509_NAME_oneline(X509_get_issuer_name(x), NULL, 0);
    json_object_set_new(j, "issuer", json_string(s ? s : ""));
    OPENSSL_free(s);

    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    s = bn ? BN_bn2hex(bn) : NULL;
    json_object_set_new(j, "serial", json_string(s ? s : ""));
    OPENSSL_free(s);
    BN_free(bn);

    if (hpki_admin_asn1_time(X509_get0_notBefore(x), nb, sizeof(nb))) {
        json_object_set_new(j, "not_before", json_string(nb));
    }
    if (hpki_admin_asn1_time(X509_get0_notAfter(x), na, sizeof(na))) {
        json_object_set_new(j, "not_after", json_string(na));
    }

    X509_free(x);
    return j;
}


static int
hpki_admin_share_exists(hpki_admin_t *a, int s, unsigned long version)
{
    int          yes;
    char         key[160];
    redisReply  *r;

    if (a->store[s] == NULL) {
        a->store[s] = hpki_redis_store(&a->cf.store[s]);
        if (a->store[s] == NULL) {
            return 0;
        }
    }

    if (hpki_share_key(key, sizeof(key), &a->cf.store[s], a->user, version)
        != 0)
    {
        return 0;
    }

    r = redisCommand(a->store[s], "EXISTS %s", key);
    yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r) {
        freeReplyObject(r);
    }

    return yes;
}


/* key show: JSON, never share material */

static int
hpki_admin_key_show(hpki_admin_t *a)
{
    char               *s;
    json_t             *j, *sh;
    hpki_key_record_t   rec;

    if (hpki_admin_load_record(a, &rec) != 0) {
        return -1;
    }

    j = json_object();
    json_object_set_new(j, "user", json_string(a->user));
    json_object_set_new(j, "kid", json_string(rec.kid));
    json_object_set_new(j, "bits", json_integer(rec.bits));
    json_object_set_new(j, "version", json_integer(rec.version));
    json_object_set_new(j, "status",
                        json_string(rec.active ? "active" : "revoked"));

    sh = json_object();
    json_object_set_new(sh, "a", json_boolean(
                        hpki_admin_share_exists(a, 0, rec.version)));
    json_object_set_new(sh, "b", json_boolean(
                        hpki_admin_share_exists(a, 1, rec.version)));
    json_object_set_new(j, "shares", sh);

    json_object_set_new(j, "certificate",
                        rec.cert ? hpki_admin_cert_json(rec.cert)
                                 : json_null());

    s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(j);
    hpki_key_record_free(&rec);
    return 0;
}


static int
hpki_admin_key_list(hpki_admin_t *a)
{
    int                 rc;
    char               *cursor, *s;
    size_t              i;
    json_t             *arr, *o;
    redisReply         *r, *keys;
    hpki_key_record_t   rec;

    if (hpki_admin_connect_public(a) != 0) {
        return -1;
    }

    rc = -1;
    arr = json_array();
    cursor = strdup("0");

    do {
        r = redisCommand(a->pub, "SCAN %s MATCH hpki:key:* COUNT 500",
                         cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) {
                freeReplyObject(r);
            }
            goto done;
        }

        free(cursor);
        cursor = strdup(r->element[0]->str);
        keys = r->element[1];

        for (i = 0; i < keys->elements; i++) {
            const char *user = keys->element[i]->str + sizeof("hpki:key:") - 1;

            if (hpki_key_record_load(a->pub, user, &rec) != HPKI_STORE_OK) {
                continue;
            }

            o = json_object();
            json_object_set_new(o, "user", json_string(user));
            json_object_set_new(o, "kid", json_string(rec.kid));
            json_object_set_new(o, "bits", json_integer(rec.bits));
            json_object_set_new(o, "version", json_integer(rec.version));
            json_object_set_new(o, "status", json_string(
                                rec.active ? "active" : "revoked"));
            json_object_set_new(o, "certificate",
                                json_boolean(rec.cert != NULL));
            json_array_append_new(arr, o);
            hpki_key_record_free(&rec);
        }

        freeReplyObject(r);

    } while (cursor && strcmp(cursor, "0") != 0);

    s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    rc = 0;

done:

    free(cursor);
    json_decref(arr);
    return rc;
}


static int
hpki_admin_key_revoke(hpki_admin_t *a)
{
    redisReply         *r;
    hpki_key_record_t   rec;

    if (hpki_admin_load_record(a, &rec) != 0) {
        return -1;
    }

    hpki_key_record_free(&rec);

    r = redisCommand(a->pub, "HSET hpki:key:%s status revoked", a->user);
    if (hpki_admin_write(a, a->pub, r) != 0) {
        return -1;
    }

    fprintf(stderr, "hpki-admin: key of \"%s\" revoked\n", a->user);
    return 0;
}


/* deletes every share version of the user in store s except "keep" */

static int
hpki_admin_purge_shares(hpki_admin_t *a, int s, unsigned long keep)
{
    int          rc;
    char         pattern[160], keepkey[160], *cursor;
    size_t       i;
    redisReply  *r, *keys;

    rc = -1;
    snprintf(pattern, sizeof(pattern), "%s:%s:*", a->cf.store[s].prefix,
             a->user);
    keepkey[0] = '\0';
    if (keep) {
        hpki_share_key(keepkey, sizeof(keepkey), &a->cf.store[s], a->user,
                       keep);
    }

    cursor = strdup("0");

    do {
        r = redisCommand(a->store[s], "SCAN %s MATCH %s COUNT 500", cursor,
                         pattern);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) {
                freeReplyObject(r);
            }
            goto done;
        }

        free(cursor);
        cursor = strdup(r->element[0]->str);
        keys = r->element[1];

        for (i = 0; i < keys->elements; i++) {
            if (strcmp(keys->element[i]->str, keepkey) == 0) {
                continue;
            }
            if (hpki_admin_write(a, a->store[s],
                                 redisCommand(a->store[s], "DEL %s",
                                              keys->element[i]->str)) != 0)
            {
                freeReplyObject(r);
                goto done;
            }
        }

        freeReplyObject(r);

    } while (cursor && strcmp(cursor, "0") != 0);

    rc = 0;

done:

    free(cursor);
    return rc;
}


static int
hpki_admin_key_delete(hpki_admin_t *a)
{
    redisReply  *r;

    if (hpki_admin_check_user(a->user) != 0
        || hpki_admin_connect_public(a) != 0)
    {
        return -1;
    }

    a->store[0] = hpki_redis_store(&a->cf.store[0]);
    a->store[1] = hpki_redis_store(&a->cf.store[1]);

    if (a->store[0] == NULL || a->store[1] == NULL) {
        return -1;
    }

    /* the record first: from here on nothing signs with this key */

    r = redisCommand(a->pub, "DEL hpki:key:%s", a->user);
    if (hpki_admin_write(a, a->pub, r) != 0
        || hpki_admin_purge_shares(a, 0, 0) != 0
        || hpki_admin_purge_shares(a, 1, 0) != 0)
    {
        return -1;
    }

    fprintf(stderr, "hpki-admin: key and shares of \"%s\" deleted\n",
            a->user);
    return 0;
}


/*
 * key refresh: d_A' = d_A + r, d_B' = d_B - r.  Order of writes:
 * A(v+1), B(v+1), record version = v+1, then old versions deleted.
 * A crash anywhere leaves either v or v+1 complete and current.
 */

static int
hpki_admin_key_refresh(hpki_admin_t *a)
{
    int                 rc;
    char                ver[32];
    BIGNUM             *da, *db;
    redisReply         *r;
    unsigned long       v;
    hpki_key_record_t   rec;

    rc = -1;
    da = BN_secure_new();
    db = BN_secure_new();
    memset(&rec, 0, sizeof(rec));

    if (da == NULL || db == NULL
        || hpki_admin_load_record(a, &rec) != 0
        || hpki_admin_connect_store(a, 0) != 0
        || hpki_admin_connect_store(a, 1) != 0)
    {
        goto done;
    }

    v = rec.version;

    if (hpki_admin_get_share(a, 0, a->user, v, rec.n, da) != 0
        || hpki_admin_get_share(a, 1, a->user, v, rec.n, db) != 0
        || hpki_rsa_refresh(da, db, BN_num_bits(rec.n), a->bn) != 0
        || hpki_admin_check_shares(a, rec.n, rec.e, da, db) != 0)
    {
        goto done;
    }

    if (hpki_admin_put_share(a, 0, a->user, v + 1, da, rec.n) != 0
        || hpki_admin_put_share(a, 1, a->user, v + 1, db, rec.n) != 0)
    {
        goto done;
    }

    snprintf(ver, sizeof(ver), "%lu", v + 1);
    r = redisCommand(a->pub, "HSET hpki:key:%s version %s", a->user, ver);
    if (hpki_admin_write(a, a->pub, r) != 0) {
        goto done;
    }

    if (hpki_admin_purge_shares(a, 0, v + 1) != 0
        || hpki_admin_purge_shares(a, 1, v + 1) != 0)
    {
        goto done;
    }

    fprintf(stderr, "hpki-admin: shares of \"%s\" refreshed to version "
            "%lu\n", a->user, v + 1);
    rc = 0;

done:

    BN_clear_free(da);
    BN_clear_free(db);
    hpki_key_record_free(&rec);
    return rc;
}


/*
 * enroll-code: a one-time code for binding a phone (docs/fido.md).
 * "ABCD2345-EFGH6789JKLM": an 8-character id, a dash, a 12-character
 * secret.  Redis keeps only SHA-256 of the code, under hpki:enroll:<id>.
 */

static int
hpki_admin_enroll_ttl(const char *s, long *ttl)
{
    char  *end;
    long   v;

    if (s == NULL) {
        *ttl = HPKI_ADMIN_ENROLL_TTL;
        return 0;
    }

    errno = 0;
    v = strtol(s, &end, 10);

    if (errno != 0 || *s == '\0' || *end != '\0'
        || v < HPKI_ADMIN_ENROLL_TTL_MIN || v > HPKI_ADMIN_ENROLL_TTL_MAX)
    {
        fprintf(stderr, "hpki-admin: --ttl must be %d to %d seconds\n",
                HPKI_ADMIN_ENROLL_TTL_MIN, HPKI_ADMIN_ENROLL_TTL_MAX);
        return -1;
    }

    *ttl = v;
    return 0;
}


/* the enrolment page: --url, else enroll_url, else $HPKI_FIDO_ENROLL_URL */

static const char *
hpki_admin_enroll_base(hpki_admin_t *a)
{
    size_t       len;
    const char  *base, *from, *p;

    if (a->url != NULL) {
        base = a->url;
        from = "--url";

    } else if (a->cf.enroll_url != NULL) {
        base = a->cf.enroll_url;
        from = "enroll_url";

    } else {
        base = getenv("HPKI_FIDO_ENROLL_URL");
        from = "HPKI_FIDO_ENROLL_URL";

        if (base == NULL || base[0] == '\0') {
            fprintf(stderr, "hpki-admin: no enrolment URL: give --url BASE, "
                    "or set enroll_url in %s, or HPKI_FIDO_ENROLL_URL "
                    "(e.g. https://gateway.example/hpki/fido/)\n",
                    a->cf.file);
            return NULL;
        }
    }

    /* printed in JSON unescaped and put in the QR code: plain URL text */

    len = strlen(base);

    for (p = base; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '#' || *p == '"'
            || *p == '\\')
        {
            break;
        }
    }

    if (*p != '\0' || len > HPKI_ADMIN_ENROLL_URL_MAX
        || (strncmp(base, "https://", 8) != 0
            && strncmp(base, "http://", 7) != 0)
        || len == (size_t) (base[4] == 's' ? 8 : 7))
    {
        fprintf(stderr, "hpki-admin: %s: the enrolment URL must be an "
                "http(s) URL of at most %d printable ASCII characters, "
                "without spaces, quotes, backslashes or a fragment\n",
                from, HPKI_ADMIN_ENROLL_URL_MAX);
        return NULL;
    }

    return base;
}


/*
 * 20 characters from RAND_bytes: byte & 31 picks one of the 32 evenly.
 * HPKI_ADMIN_FAULT_ENROLL_ID (test hook) sets the id of the first try.
 */

static int
hpki_admin_enroll_make(char *code, int first)
{
    size_t       i, j;
    u_char       rnd[HPKI_ADMIN_ENROLL_ID_LEN + HPKI_ADMIN_ENROLL_SECRET_LEN];
    const char  *fault;

    static const char  alphabet[] = HPKI_ADMIN_ENROLL_ALPHABET;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        hpki_admin_ssl_error("RAND_bytes");
        return -1;
    }

    for (i = 0, j = 0; i < sizeof(rnd); i++) {
        if (i == HPKI_ADMIN_ENROLL_ID_LEN) {
            code[j++] = '-';
        }
        code[j++] = alphabet[rnd[i] & 31];
    }

    code[j] = '\0';
    OPENSSL_cleanse(rnd, sizeof(rnd));

    fault = getenv("HPKI_ADMIN_FAULT_ENROLL_ID");

    if (first && fault != NULL
        && strlen(fault) == HPKI_ADMIN_ENROLL_ID_LEN
        && strspn(fault, alphabet) == HPKI_ADMIN_ENROLL_ID_LEN)
    {
        memcpy(code, fault, HPKI_ADMIN_ENROLL_ID_LEN);
    }

    return 0;
}


/*
 * Stores hpki:enroll:<id> unless the id is taken: one script, so that a
 * collision never overwrites another enrolment.  1 stored, 0 taken,
 * -1 error.
 */

static const char  hpki_admin_enroll_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "redis.call('HSET', KEYS[1], 'user', ARGV[1], 'hash', ARGV[2], "
    "'fails', '0', 'created', ARGV[3], 'expires', ARGV[4]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[5]) "
    "return 1";


static int
hpki_admin_enroll_store(hpki_admin_t *a, const char *code, time_t created,
    long ttl)
{
    long long    n;
    char         hash[2 * SHA256_DIGEST_LENGTH + 1], cs[32], es[32], ts[32];
    u_char       md[SHA256_DIGEST_LENGTH];
    redisReply  *r;

    SHA256((const u_char *) code, HPKI_ADMIN_ENROLL_CODE_LEN, md);
    hpki_hex(hash, md, sizeof(md));

    snprintf(cs, sizeof(cs), "%lld", (long long) created);
    snprintf(es, sizeof(es), "%lld", (long long) created + ttl);
    snprintf(ts, sizeof(ts), "%ld", ttl);

    r = redisCommand(a->pub, "EVAL %s 1 hpki:enroll:%b %s %s %s %s %s",
                     hpki_admin_enroll_lua, code,
                     (size_t) HPKI_ADMIN_ENROLL_ID_LEN, a->user, hash, cs,
                     es, ts);

    OPENSSL_cleanse(md, sizeof(md));
    OPENSSL_cleanse(hash, sizeof(hash));

    n = (r != NULL && r->type == REDIS_REPLY_INTEGER) ? r->integer : -1;

    if (hpki_admin_write(a, a->pub, r) != 0) {
        return -1;
    }

    if (n != 0 && n != 1) {
        hpki_log(HPKI_LOG_ERROR, "unexpected reply storing the enrolment");
        return -1;
    }

    return (int) n;
}


static void
hpki_admin_rfc3339(time_t t, char *buf, size_t size)
{
    struct tm  tm;

    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


/* 1 if the module at (x, y) of the symbol with its quiet zone is dark */

static int
hpki_admin_qr_dark(const QRcode *qr, int x, int y)
{
    x -= HPKI_ADMIN_QR_MARGIN;
    y -= HPKI_ADMIN_QR_MARGIN;

    if (x < 0 || y < 0 || x >= qr->width || y >= qr->width) {
        return 0;
    }

    return qr->data[y * qr->width + x] & 1;
}


/*
 * The QR code as text: two modules a character cell, in UTF-8 half
 * blocks.  Light modules are drawn and dark ones left blank, as on a dark
 * terminal; on a terminal the colours are set too (white on black), so
 * that it also scans on a light one.
 */

static void
hpki_admin_qr_text(FILE *out, const QRcode *qr, int colour)
{
    int  x, y, size, top, bottom;

    static const char  *cell[4] = {
        " ",                /* both dark */
        "\xe2\x96\x84",     /* U+2584 lower half block: lower light */
        "\xe2\x96\x80",     /* U+2580 upper half block: upper light */
        "\xe2\x96\x88"      /* U+2588 full block: both light */
    };

    size = qr->width + 2 * HPKI_ADMIN_QR_MARGIN;

    for (y = 0; y < size; y += 2) {

        if (colour) {
            fputs("\033[40;97m", out);
        }

        for (x = 0; x < size; x++) {
            top = !hpki_admin_qr_dark(qr, x, y);

            /* an odd last row: the half below the symbol is blank */
            bottom = y + 1 < size ? !hpki_admin_qr_dark(qr, x, y + 1) : 0;

            fputs(cell[top << 1 | bottom], out);
        }

        if (colour) {
            fputs("\033[0m", out);
        }

        fputc('\n', out);
    }
}


static void
hpki_admin_png_rows(png_structp png, const QRcode *qr, u_char *row)
{
    int  x, y, i, size;

    size = qr->width + 2 * HPKI_ADMIN_QR_MARGIN;

    for (y = 0; y < size; y++) {
        for (x = 0; x < size; x++) {
            memset(row + x * HPKI_ADMIN_PNG_SCALE,
                   hpki_admin_qr_dark(qr, x, y) ? 0x00 : 0xff,
                   HPKI_ADMIN_PNG_SCALE);
        }

        for (i = 0; i < HPKI_ADMIN_PNG_SCALE; i++) {
            png_write_row(png, row);
        }
    }
}


/* 8-bit greyscale, HPKI_ADMIN_PNG_SCALE pixels a module */

static int
hpki_admin_png_write(FILE *f, const QRcode *qr)
{
    int          rc;
    u_char      *row;
    png_infop    info;
    png_uint_32  px;
    png_structp  png;

    px = (png_uint_32) (qr->width + 2 * HPKI_ADMIN_QR_MARGIN)
         * HPKI_ADMIN_PNG_SCALE;

    row = malloc(px);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    info = png ? png_create_info_struct(png) : NULL;

    if (row == NULL || info == NULL) {
        png_destroy_write_struct(&png, &info);
        free(row);
        return -1;
    }

    rc = -1;

    /* libpng's errors are printed on stderr and come back here */

    if (setjmp(png_jmpbuf(png)) != 0) {
        goto done;
    }

    png_init_io(png, f);
    png_set_IHDR(png, info, px, px, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    hpki_admin_png_rows(png, qr, row);
    png_write_end(png, NULL);

    rc = 0;

done:

    png_destroy_write_struct(&png, &info);
    OPENSSL_cleanse(row, px);
    free(row);
    return rc;
}


/* FILE.tmp (mode 0600: it holds the code), then renamed to FILE */

static int
hpki_admin_png(const QRcode *qr, const char *file)
{
    int      fd, rc;
    char    *tmp;
    FILE    *f;
    size_t   n;

    n = strlen(file) + sizeof(".tmp");
    tmp = malloc(n);
    if (tmp == NULL) {
        return -1;
    }

    snprintf(tmp, n, "%s.tmp", file);

    rc = -1;

    if (unlink(tmp) != 0 && errno != ENOENT) {
        hpki_log(HPKI_LOG_ERROR, "%s: %s", tmp, strerror(errno));
        goto done;
    }

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0600);
    if (fd == -1) {
        hpki_log(HPKI_LOG_ERROR, "%s: %s", tmp, strerror(errno));
        goto done;
    }

    f = fdopen(fd, "wb");
    if (f == NULL) {
        hpki_log(HPKI_LOG_ERROR, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }

    rc = hpki_admin_png_write(f, qr);

    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        hpki_log(HPKI_LOG_ERROR, "%s: %s", tmp, strerror(errno));
        rc = -1;
    }

    if (fclose(f) != 0) {
        rc = -1;
    }

    if (rc == 0 && rename(tmp, file) != 0) {
        hpki_log(HPKI_LOG_ERROR, "renaming %s to %s: %s", tmp, file,
                 strerror(errno));
        rc = -1;
    }

    if (rc != 0) {
        unlink(tmp);
    }

done:

    free(tmp);
    return rc;
}


static int
hpki_admin_enroll_code(hpki_admin_t *a)
{
    int          rc, stored, i;
    long         ttl;
    char         code[HPKI_ADMIN_ENROLL_CODE_LEN + 1], expires[32], *url;
    size_t       n;
    time_t       now;
    QRcode      *qr;
    redisReply  *r;
    const char  *base;

    if (hpki_admin_need(a->user, "--user") != 0
        || hpki_admin_check_user(a->user) != 0
        || hpki_admin_enroll_ttl(a->ttl, &ttl) != 0)
    {
        return -1;
    }

    base = hpki_admin_enroll_base(a);
    if (base == NULL) {
        return -1;
    }

    if (hpki_admin_connect_public(a) != 0
        || hpki_admin_user_active(a, a->user) != 0)
    {
        return -1;
    }

    rc = -1;
    url = NULL;
    qr = NULL;
    memset(code, 0, sizeof(code));

    now = time(NULL);
    stored = 0;

    for (i = 0; i < HPKI_ADMIN_ENROLL_TRIES && stored == 0; i++) {
        if (hpki_admin_enroll_make(code, i == 0) != 0) {
            goto done;
        }

        stored = hpki_admin_enroll_store(a, code, now, ttl);
        if (stored < 0) {
            goto done;
        }
    }

    if (stored != 1) {
        hpki_log(HPKI_LOG_ERROR, "no free enrolment id after %d tries", i);
        goto done;
    }

    /* from here on, a failure deletes the record: nobody saw the code */

    n = strlen(base) + sizeof("#code=") + HPKI_ADMIN_ENROLL_CODE_LEN;
    url = malloc(n);
    if (url == NULL) {
        goto drop;
    }

    snprintf(url, n, "%s#code=%s", base, code);

    qr = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (qr == NULL) {
        hpki_log(HPKI_LOG_ERROR, "cannot make the QR code: %s",
                 strerror(errno));
        goto drop;
    }

    if (a->png != NULL && hpki_admin_png(qr, a->png) != 0) {
        goto drop;
    }

    hpki_admin_rfc3339(now + ttl, expires, sizeof(expires));

    if (a->json) {
        /* code: the alphabet; url: checked to need no escaping */
        printf("{\"code\":\"%s\",\"url\":\"%s\",\"expires_at\":\"%s\"}\n",
               code, url, expires);

    } else {
        printf("user     %s\n"
               "code     %s\n"
               "url      %s\n"
               "expires  %s (in %ld s; one use)\n\n",
               a->user, code, url, expires, ttl);
        hpki_admin_qr_text(stdout, qr, isatty(STDOUT_FILENO));
    }

    if (fflush(stdout) != 0) {
        hpki_log(HPKI_LOG_ERROR, "writing the code: %s", strerror(errno));
        if (a->png != NULL) {
            unlink(a->png);
        }
        goto drop;
    }

    if (a->png != NULL) {
        fprintf(stderr, "hpki-admin: QR code written to %s (mode 0600: it "
                "holds the code)\n", a->png);
    }

    rc = 0;
    goto done;

drop:

    r = redisCommand(a->pub, "DEL hpki:enroll:%b", code,
                     (size_t) HPKI_ADMIN_ENROLL_ID_LEN);
    if (r != NULL) {
        freeReplyObject(r);
    }

done:

    OPENSSL_cleanse(code, sizeof(code));

    if (url != NULL) {
        OPENSSL_cleanse(url, n);
        free(url);
    }

    if (qr != NULL) {
        OPENSSL_cleanse(qr->data, (size_t) qr->width * qr->width);
        QRcode_free(qr);
    }

    return rc;
}


/*
 * fido list / fido delete: a holder's phones, hpki:fidouser:<user> (a set
 * of <h>) and hpki:fido:<h> (docs/fido.md), for an operator handling a
 * lost phone.
 */

/* <h>: base64url SHA-256 of the credential id, 43 characters */

static int
hpki_admin_fido_handle_valid(const char *h)
{
    size_t  i;

    for (i = 0; h[i]; i++) {
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z')
              || (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '_'))
        {
            break;
        }
    }

    if (h[i] != '\0' || i != 43) {
        fprintf(stderr, "hpki-admin: --credential takes a credential as "
                "\"fido list\" shows it (43 base64url characters)\n");
        return 0;
    }

    return 1;
}


/* unix seconds as RFC 3339; unset or "0": null; anything else as it is */

static json_t *
hpki_admin_fido_time(const char *v)
{
    char  buf[32];

    if (v == NULL || v[0] == '\0' || strcmp(v, "0") == 0) {
        return json_null();
    }

    if (strspn(v, "0123456789") == strlen(v) && strlen(v) < 16) {
        hpki_admin_rfc3339((time_t) strtoll(v, NULL, 10), buf, sizeof(buf));
        return json_string(buf);
    }

    return json_string(v);
}


static json_t *
hpki_admin_fido_number(const char *v)
{
    char       *end;
    long long   n;

    if (v == NULL || v[0] == '\0') {
        return json_null();
    }

    errno = 0;
    n = strtoll(v, &end, 10);

    return (errno == 0 && *end == '\0') ? json_integer(n) : json_string(v);
}


/* one credential from HGETALL hpki:fido:<h> */

static json_t *
hpki_admin_fido_json(const char *h, redisReply *r)
{
    size_t       i;
    json_t      *o;
    const char  *f, *v, *alg, *count, *fmt, *aaguid, *created, *used, *clone;

    o = json_object();
    json_object_set_new(o, "credential", json_string(h));

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        json_object_set_new(o, "missing", json_true());
        return o;
    }

    alg = count = fmt = aaguid = created = used = clone = NULL;

    for (i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || r->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        f = r->element[i]->str;
        v = r->element[i + 1]->str;

        if (strcmp(f, "alg") == 0) {
            alg = v;
        } else if (strcmp(f, "count") == 0) {
            count = v;
        } else if (strcmp(f, "fmt") == 0) {
            fmt = v;
        } else if (strcmp(f, "aaguid") == 0) {
            aaguid = v;
        } else if (strcmp(f, "created") == 0) {
            created = v;
        } else if (strcmp(f, "used") == 0) {
            used = v;
        } else if (strcmp(f, "clone") == 0) {
            clone = v;
        }
    }

    json_object_set_new(o, "alg", hpki_admin_fido_number(alg));
    json_object_set_new(o, "count", hpki_admin_fido_number(count));
    json_object_set_new(o, "fmt", fmt ? json_string(fmt) : json_null());
    json_object_set_new(o, "aaguid",
                        aaguid ? json_string(aaguid) : json_null());
    json_object_set_new(o, "created", hpki_admin_fido_time(created));
    json_object_set_new(o, "used", hpki_admin_fido_time(used));
    json_object_set_new(o, "clone", hpki_admin_fido_time(clone));

    return o;
}


static int
hpki_admin_fido_cmp(const void *x, const void *y)
{
    return strcmp(*(char * const *) x, *(char * const *) y);
}


static void
hpki_admin_fido_print(json_t *list)
{
    char         alg[16], count[24];
    size_t       i;
    json_t      *o, *v;
    const char  *created, *used, *clone;

    printf("%-43s  %-6s %6s  %-20s  %s\n", "CREDENTIAL", "ALG", "COUNT",
           "CREATED", "LAST USED");

    json_array_foreach(list, i, o) {

        if (json_object_get(o, "missing") != NULL) {
            printf("%-43s  (record missing: fido delete removes it from "
                   "the list)\n",
                   json_string_value(json_object_get(o, "credential")));
            continue;
        }

        v = json_object_get(o, "alg");
        if (json_is_integer(v) && json_integer_value(v) == -7) {
            snprintf(alg, sizeof(alg), "ES256");
        } else if (json_is_integer(v) && json_integer_value(v) == -257) {
            snprintf(alg, sizeof(alg), "RS256");
        } else if (json_is_integer(v)) {
            snprintf(alg, sizeof(alg), "%lld",
                     (long long) json_integer_value(v));
        } else {
            snprintf(alg, sizeof(alg), "?");
        }

        v = json_object_get(o, "count");
        if (json_is_integer(v)) {
            snprintf(count, sizeof(count), "%lld",
                     (long long) json_integer_value(v));
        } else {
            snprintf(count, sizeof(count), "?");
        }

        created = json_string_value(json_object_get(o, "created"));
        used = json_string_value(json_object_get(o, "used"));
        clone = json_string_value(json_object_get(o, "clone"));

        printf("%-43s  %-6s %6s  %-20s  %-*s",
               json_string_value(json_object_get(o, "credential")), alg,
               count, created ? created : "?", clone ? 20 : 0,
               used ? used : "never");

        if (clone != NULL) {
            printf("  CLONE SUSPECTED (signature counter went back, %s)",
                   clone);
        }

        printf("\n");
    }
}


static int
hpki_admin_fido_list(hpki_admin_t *a)
{
    int           rc;
    char         *s, **h;
    size_t        i, n;
    json_t       *list;
    redisReply   *set, *r;

    if (hpki_admin_need(a->user, "--user") != 0
        || hpki_admin_check_user(a->user) != 0
        || hpki_admin_connect_public(a) != 0
        || hpki_admin_user_exists(a, a->user) != 0)
    {
        return -1;
    }

    set = redisCommand(a->pub, "SMEMBERS hpki:fidouser:%s", a->user);

    if (set == NULL || set->type != REDIS_REPLY_ARRAY) {
        hpki_log(HPKI_LOG_ERROR, "cannot read the credentials of \"%s\": %s",
                 a->user, set && set->type == REDIS_REPLY_ERROR
                          ? set->str : a->pub->errstr);
        if (set) {
            freeReplyObject(set);
        }
        return -1;
    }

    rc = -1;
    list = json_array();
    n = set->elements;
    h = calloc(n ? n : 1, sizeof(char *));
    if (h == NULL) {
        goto done;
    }

    for (i = 0; i < n; i++) {
        h[i] = set->element[i]->str;
    }

    qsort(h, n, sizeof(char *), hpki_admin_fido_cmp);

    for (i = 0; i < n; i++) {
        r = redisCommand(a->pub, "HGETALL hpki:fido:%s", h[i]);

        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            hpki_log(HPKI_LOG_ERROR, "cannot read credential %s: %s", h[i],
                     r ? r->str : a->pub->errstr);
            if (r) {
                freeReplyObject(r);
            }
            goto done;
        }

        json_array_append_new(list, hpki_admin_fido_json(h[i], r));
        freeReplyObject(r);
    }

    if (a->json) {
        s = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s == NULL) {
            goto done;
        }
        printf("%s\n", s);
        free(s);

    } else if (n == 0) {
        printf("no FIDO credentials for \"%s\"\n", a->user);

    } else {
        hpki_admin_fido_print(list);
    }

    rc = 0;

done:

    free(h);
    json_decref(list);
    freeReplyObject(set);
    return rc;
}


/*
 * Deletes hpki:fido:<h> and its member of hpki:fidouser:<user> in one
 * script, only if the record is that user's.  1 deleted, 2 only a member
 * whose record had gone, 0 no such credential, -1 another user's.
 */

static const char  hpki_admin_fido_delete_lua[] =
    "local u = redis.call('HGET', KEYS[1], 'user') "
    "if not u then return redis.call('SREM', KEYS[2], ARGV[2]) * 2 end "
    "if u ~= ARGV[1] then return -1 end "
    "redis.call('DEL', KEYS[1]) "
    "redis.call('SREM', KEYS[2], ARGV[2]) "
    "return 1";


static int
hpki_admin_fido_delete(hpki_admin_t *a)
{
    long long    n;
    redisReply  *r;

    if (hpki_admin_need(a->user, "--user") != 0
        || hpki_admin_check_user(a->user) != 0
        || hpki_admin_need(a->credential, "--credential") != 0
        || !hpki_admin_fido_handle_valid(a->credential)
        || hpki_admin_connect_public(a) != 0
        || hpki_admin_user_exists(a, a->user) != 0)
    {
        return -1;
    }

    r = redisCommand(a->pub, "EVAL %s 2 hpki:fido:%s hpki:fidouser:%s %s %s",
                     hpki_admin_fido_delete_lua, a->credential, a->user,
                     a->user, a->credential);

    n = (r != NULL && r->type == REDIS_REPLY_INTEGER) ? r->integer : -2;

    if (hpki_admin_write(a, a->pub, r) != 0) {
        return -1;
    }

    switch (n) {

    case 1:
        fprintf(stderr, "hpki-admin: credential %s of \"%s\" deleted\n",
                a->credential, a->user);
        return 0;

    case 2:
        fprintf(stderr, "hpki-admin: credential %s had no record; removed "
                "from the list of \"%s\"\n", a->credential, a->user);
        return 0;

    case 0:
        hpki_log(HPKI_LOG_ERROR, "\"%s\" has no credential %s", a->user,
                 a->credential);
        return -1;

    case -1:
        hpki_log(HPKI_LOG_ERROR, "credential %s is not a credential of "
                 "\"%s\": not deleted", a->credential, a->user);
        return -1;

    default:
        hpki_log(HPKI_LOG_ERROR, "unexpected reply deleting the credential");
        return -1;
    }
}


static int
hpki_admin_audit_verify(hpki_admin_t *a)
{
    long         n, bad;
    const char  *path;

    path = a->file ? a->file : a->cf.audit_log;
    if (path == NULL) {
        fprintf(stderr, "hpki-admin: no audit_log configured\n");
        return -1;
    }

    n = hpki_audit_verify(path, &bad);
    if (n < 0) {
        if (bad == 0) {
            printf("audit: cannot read %s\n", path);
        } else {
            printf("audit: chain broken at line %ld of %s\n", bad, path);
        }
        return -1;
    }

    printf("audit: %ld lines, chain ok\n", n);
    return 0;
}


/*
 * "cert inspect FILE": what POST /hpki/verify would say of a certificate,
 * without a signature.  FILE is PEM (the certificate first, then any
 * intermediates) or DER; --ca names anchors and intermediates (PEM
 * bundles), --crl CRLs.  Offline: no configuration, Redis or share store.
 */

static int
hpki_admin_cert_inspect(hpki_admin_t *a, const char *file)
{
    int                             rc;
    char                            err[512], *text;
    FILE                           *f;
    X509                           *x;
    size_t                          n;
    json_t                         *o;
    unsigned char                  *data;
    STACK_OF(X509)                 *certs;
    ngx_http_hpki_inspect_store_t  *st;

    f = fopen(file, "rb");
    if (f == NULL) {
        hpki_log(HPKI_LOG_ERROR, "%s: %s", file, strerror(errno));
        return -1;
    }

    data = malloc(HPKI_ADMIN_FILE_MAX + 1);
    if (data == NULL) {
        fclose(f);
        return -1;
    }

    n = fread(data, 1, HPKI_ADMIN_FILE_MAX + 1, f);
    fclose(f);

    if (n > HPKI_ADMIN_FILE_MAX) {
        hpki_log(HPKI_LOG_ERROR, "%s: larger than 1 MiB", file);
        free(data);
        return -1;
    }

    certs = ngx_http_hpki_inspect_read_certs(data, n);
    free(data);

    if (certs == NULL) {
        hpki_log(HPKI_LOG_ERROR, "%s: no certificate (PEM or DER) in it",
                 file);
        return -1;
    }

    st = ngx_http_hpki_inspect_store_load(a->ca, a->nca, a->crl, a->ncrl,
                                          err, sizeof(err));
    if (st == NULL) {
        hpki_log(HPKI_LOG_ERROR, "%s", err);
        sk_X509_pop_free(certs, X509_free);
        return -1;
    }

    /* the rest of FILE: intermediates the chain may use, not trusted */

    x = sk_X509_shift(certs);

    o = ngx_http_hpki_inspect_cert(st, x, certs, time(NULL));
    text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;

    rc = -1;

    if (text) {
        printf("%s\n", text);
        rc = 0;
    }

    free(text);
    json_decref(o);
    X509_free(x);
    sk_X509_pop_free(certs, X509_free);
    ngx_http_hpki_inspect_store_free(st);

    return rc;
}


int
main(int argc, char **argv)
{
    int                  ch, rc;
    char                *e;
    const char          *conf, *cmd, *sub;
    static hpki_admin_t  a;

    static const struct option  longopts[] = {
        { "id", required_argument, NULL, 'i' },
        { "user", required_argument, NULL, 'u' },
        { "cert", required_argument, NULL, 'C' },
        { "chain", required_argument, NULL, 'H' },
        { "name", required_argument, NULL, 'n' },
        { "key", required_argument, NULL, 'k' },
        { "bits", required_argument, NULL, 'b' },
        { "subject", required_argument, NULL, 's' },
        { "csr-out", required_argument, NULL, 'o' },
        { "file", required_argument, NULL, 'f' },
        { "ca", required_argument, NULL, 'A' },
        { "crl", required_argument, NULL, 'R' },
        { "ttl", required_argument, NULL, 'T' },
        { "url", required_argument, NULL, 'U' },
        { "png", required_argument, NULL, 'P' },
        { "json", no_argument, NULL, 'J' },
        { "credential", required_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    hpki_log_role = "hpki-admin";
    conf = hpki_conf_default_file();
    a.bits = 2048;

    /* global options come before the command */

    while (argc > 1 && strcmp(argv[1], "-c") == 0 && argc > 2) {
        conf = argv[2];
        argc -= 2;
        argv += 2;
    }

    if (argc < 2 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "--help") == 0)
    {
        hpki_admin_usage();
        return argc < 2 ? 2 : 0;
    }

    cmd = argv[1];
    sub = (argc > 2 && argv[2][0] != '-') ? argv[2] : "";
    optind = sub[0] ? 3 : 2;

    while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': conf = optarg; break;
        case 'i': a.id = optarg; break;
        case 'u': a.user = optarg; break;
        case 'C': a.cert = optarg; break;
        case 'H': a.chain = optarg; break;
        case 'n': a.name = optarg; break;
        case 'k': a.key = optarg; break;
        case 's': a.subject = optarg; break;
        case 'o': a.csr_out = optarg; break;
        case 'f': a.file = optarg; break;
        case 'b': a.bits = atoi(optarg); break;
        case 'T': a.ttl = optarg; break;
        case 'U': a.url = optarg; break;
        case 'P': a.png = optarg; break;
        case 'J': a.json = 1; break;
        case 'K': a.credential = optarg; break;
        case 'A':
            if (a.nca == HPKI_ADMIN_MAX_CA) {
                hpki_log(HPKI_LOG_ERROR, "too many --ca");
                return 2;
            }
            a.ca[a.nca++] = optarg;
            break;
        case 'R':
            if (a.ncrl == HPKI_ADMIN_MAX_CA) {
                hpki_log(HPKI_LOG_ERROR, "too many --crl");
                return 2;
            }
            a.crl[a.ncrl++] = optarg;
            break;
        default:
            hpki_admin_usage();
            return 2;
        }
    }

    /* "cert inspect FILE": one operand, and offline */

    if (strcmp(cmd, "cert") == 0 && strcmp(sub, "inspect") == 0) {
        if (optind != argc - 1) {
            hpki_admin_usage();
            return 2;
        }

        return hpki_admin_cert_inspect(&a, argv[optind]) == 0 ? 0 : 1;
    }

    if (optind != argc) {
        hpki_admin_usage();
        return 2;
    }

    hpki_harden_process();

    if (hpki_conf_load(&a.cf, conf) != 0) {
        return 1;
    }

    hpki_log_level = a.cf.log_level < HPKI_LOG_WARN ? a.cf.log_level
                                                    : HPKI_LOG_WARN;

    if (CRYPTO_secure_malloc_init(1 << 16, 32) != 1) {
        hpki_log(HPKI_LOG_WARN, "no secure heap");
    }

    e = getenv("HPKI_ADMIN_CRASH_AFTER");
    a.crash_after = e ? atoi(e) : 0;
    a.bn = BN_CTX_secure_new();

    rc = -2;

    if (strcmp(cmd, "user") == 0) {
        if (strcmp(sub, "add") == 0) {
            rc = hpki_admin_user(&a, 1);
        } else if (strcmp(sub, "link-cert") == 0) {
            rc = hpki_admin_user(&a, 0);
        } else if (strcmp(sub, "link-jpki") == 0) {
            rc = hpki_admin_link_jpki(&a);
        }

    } else if (strcmp(cmd, "key") == 0) {
        if (strcmp(sub, "generate") == 0) {
            rc = hpki_admin_key_create(&a, 0);
        } else if (strcmp(sub, "import") == 0) {
            rc = hpki_admin_key_create(&a, 1);
        } else if (strcmp(sub, "show") == 0) {
            rc = hpki_admin_key_show(&a);
        } else if (strcmp(sub, "list") == 0) {
            rc = hpki_admin_key_list(&a);
        } else if (strcmp(sub, "revoke") == 0) {
            rc = hpki_admin_key_revoke(&a);
        } else if (strcmp(sub, "delete") == 0) {
            rc = hpki_admin_key_delete(&a);
        } else if (strcmp(sub, "refresh") == 0) {
            rc = hpki_admin_key_refresh(&a);
        }

    } else if (strcmp(cmd, "cert") == 0) {
        if (strcmp(sub, "install") == 0) {
            rc = hpki_admin_cert_install(&a);
        }

    } else if (strcmp(cmd, "audit") == 0) {
        if (strcmp(sub, "verify") == 0) {
            rc = hpki_admin_audit_verify(&a);
        }

    } else if (strcmp(cmd, "enroll-code") == 0) {
        if (sub[0] == '\0') {
            rc = hpki_admin_enroll_code(&a);
        }

    } else if (strcmp(cmd, "fido") == 0) {
        if (strcmp(sub, "list") == 0) {
            rc = hpki_admin_fido_list(&a);
        } else if (strcmp(sub, "delete") == 0) {
            rc = hpki_admin_fido_delete(&a);
        }
    }

    if (rc == -2) {
        hpki_admin_usage();
        return 2;
    }

    if (a.kek[0]) {
        OPENSSL_secure_clear_free(a.kek[0], HPKI_KEK_LEN);
    }
    if (a.kek[1]) {
        OPENSSL_secure_clear_free(a.kek[1], HPKI_KEK_LEN);
    }

    if (a.pub) {
        redisFree(a.pub);
    }
    if (a.store[0]) {
        redisFree(a.store[0]);
    }
    if (a.store[1]) {
        redisFree(a.store[1]);
    }

    return rc == 0 ? 0 : 1;
}
