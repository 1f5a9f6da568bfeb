/*
 * Two-share RSA (shared/domain/HPKI.md section 6).
 *
 * The private exponent d is split additively: d_A uniform in [0, lambda(n)),
 * d_B = d - d_A mod lambda(n).  A signature is s = EM^d_A * EM^d_B mod n;
 * the combiner blinds EM with r^e first so that neither share holder sees
 * what is signed.  Refresh adds r to one share and subtracts it from the
 * other over the integers, so shares may become negative.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "hpki_core.h"
#include "hpki_rsa.h"


#define HPKI_SEAL_FORMAT    1
#define HPKI_SEAL_IV        12
#define HPKI_SEAL_TAG       16
#define HPKI_SHARE_MAX      (HPKI_RSA_MAX_BYTES + 64)


int
hpki_share_nfp(const BIGNUM *n, u_char *fp)
{
    int     len;
    u_char  buf[HPKI_RSA_MAX_BYTES];

    len = BN_num_bytes(n);
    if (len > HPKI_RSA_MAX_BYTES || BN_bn2bin(n, buf) != len) {
        return -1;
    }

    return SHA256(buf, len, fp) != NULL ? 0 : -1;
}


const EVP_MD *
hpki_rsa_md(int hash_alg)
{
    switch (hash_alg) {
    case HPKI_HASH_SHA256:
        return EVP_sha256();
    case HPKI_HASH_SHA384:
        return EVP_sha384();
    case HPKI_HASH_SHA512:
        return EVP_sha512();
    }

    return NULL;
}


const char *
hpki_rsa_alg_name(int hash_alg, int sig_alg)
{
    static const char  *names[2][3] = {
        { "sha256-pkcs1", "sha384-pkcs1", "sha512-pkcs1" },
        { "sha256-pss", "sha384-pss", "sha512-pss" }
    };

    if (hash_alg < 1 || hash_alg > 3 || sig_alg < 1 || sig_alg > 2) {
        return "-";
    }

    return names[sig_alg - 1][hash_alg - 1];
}


RSA *
hpki_rsa_public(const BIGNUM *n, const BIGNUM *e)
{
    RSA     *rsa;
    BIGNUM  *n1, *e1;

    rsa = RSA_new();
    n1 = BN_dup(n);
    e1 = BN_dup(e);

    if (rsa == NULL || n1 == NULL || e1 == NULL
        || RSA_set0_key(rsa, n1, e1, NULL) != 1)
    {
        RSA_free(rsa);
        BN_free(n1);
        BN_free(e1);
        return NULL;
    }

    return rsa;
}


/*
 * EMSA-PKCS1-v1_5 (DigestInfo built by OpenSSL's X509_SIG) or EMSA-PSS
 * (MGF1 with the same hash, salt length = hash length, salt drawn here,
 * once).  em receives RSA_size(pub) bytes.
 */

int
hpki_rsa_encode(RSA *pub, int hash_alg, int sig_alg, const u_char *digest,
    size_t dlen, u_char *em)
{
    int            rc, k, dilen;
    u_char        *di;
    X509_SIG      *sig;
    X509_ALGOR    *alg;
    ASN1_OCTET_STRING *os;
    const EVP_MD  *md;

    rc = -1;
    di = NULL;
    sig = NULL;

    md = hpki_rsa_md(hash_alg);
    k = RSA_size(pub);

    if (md == NULL || dlen != (size_t) EVP_MD_get_size(md)) {
        return -1;
    }

    if (sig_alg == HPKI_SIG_PSS) {
        if (RSA_padding_add_PKCS1_PSS_mgf1(pub, em, digest, md, md,
                                           RSA_PSS_SALTLEN_DIGEST) != 1)
        {
            return -1;
        }
        return 0;
    }

    if (sig_alg != HPKI_SIG_PKCS1) {
        return -1;
    }

    sig = X509_SIG_new();
    if (sig == NULL) {
        goto done;
    }

    X509_SIG_getm(sig, &alg, &os);

    if (X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL,
                        NULL) != 1
        || ASN1_OCTET_STRING_set(os, digest, (int) dlen) != 1)
    {
        goto done;
    }

    dilen = i2d_X509_SIG(sig, &di);
    if (dilen <= 0) {
        goto done;
    }

    if (RSA_padding_add_PKCS1_type_1(em, k, di, dilen) != 1) {
        goto done;
    }

    rc = 0;

done:

    OPENSSL_free(di);
    X509_SIG_free(sig);
    return rc;
}


/*
 * count fresh blinding pairs (r_i^e, r_i^-1) mod n, each r_i drawn
 * independently, with one modular inversion for the whole batch
 * (Montgomery's trick: invert the product, then peel off one factor at a
 * time).  The pairs are as independent as count separate draws; each
 * must be used once.  They are returned in the forms that
 * hpki_rsa_blind() and hpki_rsa_combine() take, one Montgomery
 * multiplication each: a[i] = r_i^e * R, ainv[i] = r_i^-1 * R^2 mod n,
 * R that of mont.  a[] and ainv[] are allocated BIGNUMs.  pause, if not
 * NULL, is called between steps of at most one exponentiation or the
 * inversion.
 */

int
hpki_rsa_blind_batch(const BIGNUM *n, const BIGNUM *e, BN_MONT_CTX *mont,
    BIGNUM **a, BIGNUM **ainv, int count, BN_CTX *ctx, void (*pause)(void))
{
    int       i, rc;
    BIGNUM   *inv, *t;

    rc = -1;

    if (count < 1) {
        return -1;
    }

    BN_CTX_start(ctx);
    inv = BN_CTX_get(ctx);
    t = BN_CTX_get(ctx);

    if (t == NULL) {
        goto done;
    }

    /* a[i] = r_i, ainv[i] = r_0 * ... * r_i */

    for (i = 0; i < count; i++) {
        do {
            if (BN_priv_rand_range(a[i], n) != 1) {
                goto done;
            }
        } while (BN_is_zero(a[i]) || BN_is_one(a[i]));

        if (i == 0 ? BN_copy(ainv[0], a[0]) == NULL
                   : BN_mod_mul(ainv[i], ainv[i - 1], a[i], n, ctx) != 1)
        {
            goto done;
        }
    }

    if (pause != NULL) {
        pause();
    }

    /* one inversion; fails only if some r_i shares a factor with n */

    if (BN_mod_inverse(inv, ainv[count - 1], n, ctx) == NULL) {
        goto done;
    }

    if (pause != NULL) {
        pause();
    }

    for (i = count - 1; i > 0; i--) {
        if (BN_mod_mul(ainv[i], inv, ainv[i - 1], n, ctx) != 1
            || BN_mod_mul(inv, inv, a[i], n, ctx) != 1)
        {
            goto done;
        }
    }

    if (BN_copy(ainv[0], inv) == NULL) {
        goto done;
    }

    for (i = 0; i < count; i++) {
        if (BN_mod_exp_mont(t, a[i], e, n, ctx, mont) != 1
            || BN_to_montgomery(a[i], t, mont, ctx) != 1
            || BN_to_montgomery(t, ainv[i], mont, ctx) != 1
            || BN_to_montgomery(ainv[i], t, mont, ctx) != 1)
        {
            goto done;
        }

        if (pause != NULL) {
            pause();
        }
    }

    rc = 0;

done:

    if (t != NULL) {
        BN_clear(inv);
        BN_clear(t);
    }

    BN_CTX_end(ctx);
    return rc;
}


/*
 * y = x^share mod n, constant time in the share; a negative share
 * (after a refresh) exponentiates the inverse of x.
 */

int
hpki_rsa_partial(BIGNUM *y, const BIGNUM *x, const BIGNUM *share,
    const BIGNUM *n, BN_CTX *ctx)
{
    int       rc;
    BIGNUM   *base, *exp;

    rc = -1;

    BN_CTX_start(ctx);
    base = BN_CTX_get(ctx);
    exp = BN_CTX_get(ctx);

    if (exp == NULL || BN_copy(exp, share) == NULL) {
        goto done;
    }

    BN_set_negative(exp, 0);
    BN_set_flags(exp, BN_FLG_CONSTTIME);

    if (BN_is_negative(share)) {
        if (BN_mod_inverse(base, x, n, ctx) == NULL) {
            goto done;
        }

    } else if (BN_nnmod(base, x, n, ctx) != 1) {
        goto done;
    }

    if (BN_mod_exp_mont_consttime(y, base, exp, n, ctx, NULL) != 1) {
        goto done;
    }

    rc = 0;

done:

    if (exp != NULL) {
        BN_clear(exp);
    }

    BN_CTX_end(ctx);
    return rc;
}


/* x = EM * r^e mod n, a = r^e * R from hpki_rsa_blind_batch() */

int
hpki_rsa_blind(BIGNUM *x, const u_char *em, int k, const BIGNUM *a,
    BN_MONT_CTX *mont, BN_CTX *ctx)
{
    if (BN_bin2bn(em, k, x) == NULL
        || BN_mod_mul_montgomery(x, x, a, mont, ctx) != 1)
    {
        return -1;
    }

    return 0;
}


/*
 * sig = ya * yb * r^-1 mod n, left-padded to the modulus length; rinv is
 * r^-1 * R^2 from hpki_rsa_blind_batch(), so two Montgomery
 * multiplications do it
 */

int
hpki_rsa_combine(const RSA *pub, const BIGNUM *ya, const BIGNUM *yb,
    const BIGNUM *rinv, BN_MONT_CTX *mont, u_char *sig, BN_CTX *ctx)
{
    int             rc;
    BIGNUM         *s;
    const BIGNUM   *n;

    RSA_get0_key(pub, &n, NULL, NULL);

    if (BN_ucmp(ya, n) >= 0 || BN_ucmp(yb, n) >= 0) {
        return -1;
    }

    rc = -1;

    BN_CTX_start(ctx);
    s = BN_CTX_get(ctx);

    if (s == NULL
        || BN_mod_mul_montgomery(s, ya, yb, mont, ctx) != 1
        || BN_mod_mul_montgomery(s, s, rinv, mont, ctx) != 1
        || BN_bn2binpad(s, sig, RSA_size(pub)) != RSA_size(pub))
    {
        goto done;
    }

    rc = 0;

done:

    BN_CTX_end(ctx);
    return rc;
}


/* sig^e mod n == EM, by OpenSSL's RSA public operation */

int
hpki_rsa_verify(RSA *pub, const u_char *sig, const u_char *em)
{
    int     k, rc;
    u_char  out[HPKI_RSA_MAX_BYTES];

    k = RSA_size(pub);
    if (k > HPKI_RSA_MAX_BYTES) {
        return -1;
    }

    rc = RSA_public_decrypt(k, sig, out, pub, RSA_NO_PADDING);
    if (rc != k || CRYPTO_memcmp(out, em, k) != 0) {
        return -1;
    }

    return 0;
}


/*
 * d_A uniform in [0, lambda(n)), d_B = d - d_A mod lambda(n),
 * lambda(n) = lcm(p - 1, q - 1).  Temporaries are cleared.
 */

int
hpki_rsa_split(const RSA *key, BIGNUM *da, BIGNUM *db, BN_CTX *ctx)
{
    int             rc;
    BIGNUM         *p1, *q1, *g, *lambda;
    const BIGNUM   *d, *p, *q;

    rc = -1;

    RSA_get0_key(key, NULL, NULL, &d);
    RSA_get0_factors(key, &p, &q);

    if (d == NULL || p == NULL || q == NULL) {
        return -1;
    }

    BN_CTX_start(ctx);
    p1 = BN_CTX_get(ctx);
    q1 = BN_CTX_get(ctx);
    g = BN_CTX_get(ctx);
    lambda = BN_CTX_get(ctx);

    if (lambda == NULL
        || BN_sub(p1, p, BN_value_one()) != 1
        || BN_sub(q1, q, BN_value_one()) != 1
        || BN_gcd(g, p1, q1, ctx) != 1
        || BN_mul(lambda, p1, q1, ctx) != 1
        || BN_div(lambda, NULL, lambda, g, ctx) != 1
        || BN_priv_rand_range(da, lambda) != 1
        || BN_mod_sub(db, d, da, lambda, ctx) != 1)
    {
        goto done;
    }

    rc = 0;

done:

    if (lambda != NULL) {
        BN_clear(p1);
        BN_clear(q1);
        BN_clear(g);
        BN_clear(lambda);
    }

    BN_CTX_end(ctx);
    return rc;
}


/*
 * Proactive refresh without lambda: d_A' = d_A + r, d_B' = d_B - r over
 * the integers, r of random sign, (bits + HPKI_REFRESH_EXTRA) bits wide.
 */

int
hpki_rsa_refresh(BIGNUM *da, BIGNUM *db, int bits, BN_CTX *ctx)
{
    int      rc;
    u_char   sign;
    BIGNUM  *r;

    rc = -1;

    BN_CTX_start(ctx);
    r = BN_CTX_get(ctx);

    if (r == NULL
        || BN_priv_rand(r, bits + HPKI_REFRESH_EXTRA, BN_RAND_TOP_ANY,
                        BN_RAND_BOTTOM_ANY) != 1
        || RAND_priv_bytes(&sign, 1) != 1)
    {
        goto done;
    }

    BN_set_negative(r, sign & 1);

    if (BN_add(da, da, r) != 1 || BN_sub(db, db, r) != 1) {
        goto done;
    }

    rc = 0;

done:

    if (r != NULL) {
        BN_clear(r);
    }

    BN_CTX_end(ctx);
    return rc;
}


int
hpki_share_aad(char *buf, size_t size, const char *store, const char *user,
    unsigned long version)
{
    int  n;

    n = snprintf(buf, size, "%s|%s|%lu", store, user, version);
    return (n > 0 && (size_t) n < size) ? n : -1;
}


/*
 * blob = format:u8  iv[12]  AES-256-GCM(pt)  tag[16]
 * pt   = sign:u8  SHA-256(n)[32]  magnitude
 *
 * The modulus fingerprint stops a share holder from exponentiating
 * modulo anything but its own key's n (a tampered public record).
 */

int
hpki_share_seal(const u_char *kek, const char *aad, const BIGNUM *share,
    const BIGNUM *n, u_char **out, size_t *outlen)
{
    int              rc, len, mlen, nlen;
    u_char          *pt, *blob;
    EVP_CIPHER_CTX  *c;

    rc = -1;
    blob = NULL;

    mlen = BN_num_bytes(share);
    len = 1 + HPKI_SEAL_NFP + mlen;

    pt = OPENSSL_secure_malloc(len);
    c = EVP_CIPHER_CTX_new();
    blob = malloc(1 + HPKI_SEAL_IV + len + HPKI_SEAL_TAG);

    if (pt == NULL || c == NULL || blob == NULL) {
        goto done;
    }

    pt[0] = BN_is_negative(share) ? 1 : 0;
    if (hpki_share_nfp(n, pt + 1) != 0
        || BN_bn2bin(share, pt + 1 + HPKI_SEAL_NFP) != mlen)
    {
        goto done;
    }

    blob[0] = HPKI_SEAL_FORMAT;

    if (RAND_bytes(blob + 1, HPKI_SEAL_IV) != 1
        || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, HPKI_SEAL_IV,
                               NULL) != 1
        || EVP_EncryptInit_ex(c, NULL, NULL, kek, blob + 1) != 1
        || EVP_EncryptUpdate(c, NULL, &nlen, (const u_char *) aad,
                             (int) strlen(aad)) != 1
        || EVP_EncryptUpdate(c, blob + 1 + HPKI_SEAL_IV, &nlen, pt, len) != 1
        || nlen != len
        || EVP_EncryptFinal_ex(c, blob + 1 + HPKI_SEAL_IV + len, &nlen) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, HPKI_SEAL_TAG,
                               blob + 1 + HPKI_SEAL_IV + len) != 1)
    {
        goto done;
    }

    *out = blob;
    *outlen = 1 + HPKI_SEAL_IV + len + HPKI_SEAL_TAG;
    blob = NULL;
    rc = 0;

done:

    if (pt != NULL) {
        OPENSSL_secure_clear_free(pt, len);
    }

    EVP_CIPHER_CTX_free(c);
    free(blob);
    return rc;
}


/*
 * Returns -1 on any failure, including a wrong tag (tampering), and -2 if
 * the share does not belong to modulus n.
 */

int
hpki_share_open(const u_char *kek, const char *aad, const u_char *blob,
    size_t len, const BIGNUM *n, BIGNUM *share)
{
    int              rc, outl, clen;
    u_char          *pt, fp[HPKI_SEAL_NFP];
    const u_char    *ct;
    EVP_CIPHER_CTX  *c;

    rc = -1;
    pt = NULL;
    c = NULL;

    if (len < 1 + HPKI_SEAL_IV + 1 + HPKI_SEAL_NFP + HPKI_SEAL_TAG
        || len > 1 + HPKI_SEAL_IV + 1 + HPKI_SEAL_NFP + HPKI_SHARE_MAX
                 + HPKI_SEAL_TAG
        || blob[0] != HPKI_SEAL_FORMAT)
    {
        return -1;
    }

    ct = blob + 1 + HPKI_SEAL_IV;
    clen = (int) (len - 1 - HPKI_SEAL_IV - HPKI_SEAL_TAG);

    pt = OPENSSL_secure_malloc(clen);
    c = EVP_CIPHER_CTX_new();

    if (pt == NULL || c == NULL) {
        goto done;
    }

    if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, HPKI_SEAL_IV,
                               NULL) != 1
        || EVP_DecryptInit_ex(c, NULL, NULL, kek, blob + 1) != 1
        || EVP_DecryptUpdate(c, NULL, &outl, (const u_char *) aad,
                             (int) strlen(aad)) != 1
        || EVP_DecryptUpdate(c, pt, &outl, ct, clen) != 1
        || outl != clen
        || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, HPKI_SEAL_TAG,
                               (void *) (ct + clen)) != 1
        || EVP_DecryptFinal_ex(c, pt + outl, &outl) != 1)
    {
        goto done;
    }

    if (hpki_share_nfp(n, fp) != 0
        || CRYPTO_memcmp(fp, pt + 1, HPKI_SEAL_NFP) != 0)
    {
        rc = -2;
        goto done;
    }

    if (pt[0] > 1
        || BN_bin2bn(pt + 1 + HPKI_SEAL_NFP, clen - 1 - HPKI_SEAL_NFP, share)
           == NULL)
    {
        goto done;
    }

    BN_set_negative(share, pt[0]);
    rc = 0;

done:

    if (pt != NULL) {
        OPENSSL_secure_clear_free(pt, clen);
    }

    EVP_CIPHER_CTX_free(c);
    return rc;
}


/* a KEK file holds exactly 32 raw bytes and must be mode 0600 */

int
hpki_kek_load(const char *path, u_char *kek)
{
    int          fd, rc;
    u_char       extra;
    ssize_t      n;
    struct stat  st;

    rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        hpki_log(HPKI_LOG_ERROR, "cannot open KEK \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || (st.st_mode & 07777) != 0600)
    {
        hpki_log(HPKI_LOG_ERROR, "KEK \"%s\" must be a regular file with "
                 "mode 0600", path);
        goto done;
    }

    n = read(fd, kek, HPKI_KEK_LEN);
    if (n != HPKI_KEK_LEN || read(fd, &extra, 1) != 0) {
        hpki_log(HPKI_LOG_ERROR, "KEK \"%s\" must hold exactly %d bytes",
                 path, HPKI_KEK_LEN);
        OPENSSL_cleanse(kek, HPKI_KEK_LEN);
        goto done;
    }

    rc = 0;

done:

    close(fd);
    return rc;
}
