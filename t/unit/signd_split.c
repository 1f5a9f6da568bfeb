/*
 * Unit tests for the two-share RSA math: a split-key signature equals the
 * whole-key signature byte for byte (PKCS#1 v1.5), PSS verifies, refresh
 * keeps the key, sealed shares open only with the right KEK, AAD and n,
 * and a wrong share is caught by the verification step.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "hpki_rsa.h"
#include "signd_tap.h"


static BN_CTX  *bn;


/* split-key sign: pad, blind, two partials, combine; 0 if verified */

static int
split_sign(RSA *pub, const BIGNUM *da, const BIGNUM *db, int hash_alg,
    int sig_alg, const u_char *dg, size_t dlen, u_char *sig)
{
    int            rc;
    u_char         em[HPKI_RSA_MAX_BYTES];
    BIGNUM        *x, *a, *rinv, *ya, *yb;
    BN_MONT_CTX   *mont;
    const BIGNUM  *n, *e;

    rc = -1;
    RSA_get0_key(pub, &n, &e, NULL);
    x = BN_new();
    a = BN_new();
    rinv = BN_new();
    ya = BN_new();
    yb = BN_new();
    mont = BN_MONT_CTX_new();

    /* blinded as hpki-signd does: x = EM * r^e, with a pair of a batch */

    if (BN_MONT_CTX_set(mont, n, bn) == 1
        && hpki_rsa_encode(pub, hash_alg, sig_alg, dg, dlen, em) == 0
        && hpki_rsa_blind_batch(n, e, mont, &a, &rinv, 1, bn, NULL) == 0
        && hpki_rsa_blind(x, em, RSA_size(pub), a, mont, bn) == 0
        && hpki_rsa_partial(ya, x, da, n, bn) == 0
        && hpki_rsa_partial(yb, x, db, n, bn) == 0
        && hpki_rsa_combine(pub, ya, yb, rinv, mont, sig, bn) == 0
        && hpki_rsa_verify(pub, sig, em) == 0)
    {
        rc = 0;
    }

    BN_MONT_CTX_free(mont);
    BN_free(x);
    BN_free(a);
    BN_free(rinv);
    BN_free(ya);
    BN_free(yb);
    return rc;
}


static int
whole_sign(EVP_PKEY *pk, int hash_alg, const u_char *dg, size_t dlen,
    u_char *sig, size_t *slen)
{
    int            rc;
    EVP_PKEY_CTX  *c;

    c = EVP_PKEY_CTX_new(pk, NULL);
    rc = c && EVP_PKEY_sign_init(c) == 1
         && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1
         && EVP_PKEY_CTX_set_signature_md(c, hpki_rsa_md(hash_alg)) == 1
         && EVP_PKEY_sign(c, sig, slen, dg, dlen) == 1;
    EVP_PKEY_CTX_free(c);
    return rc ? 0 : -1;
}


static int
pss_verify(EVP_PKEY *pk, int hash_alg, const u_char *dg, size_t dlen,
    const u_char *sig, size_t slen)
{
    int            rc;
    EVP_PKEY_CTX  *c;

    c = EVP_PKEY_CTX_new(pk, NULL);
    rc = c && EVP_PKEY_verify_init(c) == 1
         && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) == 1
         && EVP_PKEY_CTX_set_signature_md(c, hpki_rsa_md(hash_alg)) == 1
         && EVP_PKEY_verify(c, sig, slen, dg, dlen) == 1;
    EVP_PKEY_CTX_free(c);
    return rc ? 0 : -1;
}


static void
test_key(int bits, int rounds)
{
    int             h, i, k, same, okpss, okref;
    u_char          dg[64], s1[HPKI_RSA_MAX_BYTES], s2[HPKI_RSA_MAX_BYTES];
    size_t          slen, dlen;
    RSA            *rsa, *pub;
    BIGNUM         *da, *db, *neg;
    EVP_PKEY       *pk;
    const BIGNUM   *n, *e;

    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) bits);
    rsa = EVP_PKEY_get1_RSA(pk);
    RSA_get0_key(rsa, &n, &e, NULL);
    pub = hpki_rsa_public(n, e);
    k = RSA_size(pub);
    da = BN_new();
    db = BN_new();

    ok(hpki_rsa_split(rsa, da, db, bn) == 0, "RSA-%d split", bits);
    ok(BN_num_bits(da) > bits - 16 && BN_num_bits(db) > bits - 16,
       "RSA-%d shares are full length (%d, %d bits)", bits,
       BN_num_bits(da), BN_num_bits(db));

    for (h = HPKI_HASH_SHA256; h <= HPKI_HASH_SHA512; h++) {
        dlen = EVP_MD_get_size(hpki_rsa_md(h));
        same = 1;
        okpss = 1;

        for (i = 0; i < rounds; i++) {
            RAND_bytes(dg, dlen);
            slen = sizeof(s2);
            if (split_sign(pub, da, db, h, HPKI_SIG_PKCS1, dg, dlen, s1) != 0
                || whole_sign(pk, h, dg, dlen, s2, &slen) != 0
                || slen != (size_t) k || memcmp(s1, s2, k) != 0)
            {
                same = 0;
            }

            if (split_sign(pub, da, db, h, HPKI_SIG_PSS, dg, dlen, s1) != 0
                || pss_verify(pk, h, dg, dlen, s1, k) != 0)
            {
                okpss = 0;
            }
        }

        ok(same, "RSA-%d %s: split PKCS#1 v1.5 == whole-key signature "
           "(%d digests)", bits, EVP_MD_get0_name(hpki_rsa_md(h)), rounds);
        ok(okpss, "RSA-%d %s: split PSS verifies", bits,
           EVP_MD_get0_name(hpki_rsa_md(h)));
    }

    /* refresh twice (shares may go negative), still the same signature */

    okref = hpki_rsa_refresh(da, db, bits, bn) == 0
            && hpki_rsa_refresh(da, db, bits, bn) == 0;
    RAND_bytes(dg, 32);
    slen = sizeof(s2);
    ok(okref && (BN_is_negative(da) || BN_is_negative(db))
       && split_sign(pub, da, db, 1, 1, dg, 32, s1) == 0
       && whole_sign(pk, 1, dg, 32, s2, &slen) == 0
       && memcmp(s1, s2, k) == 0,
       "RSA-%d refreshed shares (one negative) sign identically", bits);

    /* batch blinding: a[i] * ainv[i]^e = 1, fresh r_i, signature as before */

    {
        int           j, good, fresh;
        BIGNUM       *a[16], *ai[16], *t, *u;
        BN_MONT_CTX  *mont;
        u_char        em[HPKI_RSA_MAX_BYTES];

        mont = BN_MONT_CTX_new();
        t = BN_new();
        u = BN_new();
        BN_MONT_CTX_set(mont, n, bn);

        for (j = 0; j < 16; j++) {
            a[j] = BN_new();
            ai[j] = BN_new();
        }

        good = hpki_rsa_blind_batch(n, e, mont, a, ai, 16, bn, NULL) == 0;
        fresh = 1;

        /* a = r^e * R, ai = r^-1 * R^2: (r^-1)^e * r^e == 1 */

        for (j = 0; good && j < 16; j++) {
            good = BN_from_montgomery(u, ai[j], mont, bn) == 1
                   && BN_from_montgomery(u, u, mont, bn) == 1
                   && BN_mod_exp(t, u, e, n, bn) == 1
                   && BN_from_montgomery(u, a[j], mont, bn) == 1
                   && BN_mod_mul(t, t, u, n, bn) == 1 && BN_is_one(t);
            if (j > 0 && BN_cmp(ai[j], ai[j - 1]) == 0) {
                fresh = 0;
            }
        }

        ok(good, "RSA-%d batch blinding: every (r^e, r^-1) pair matches",
           bits);
        ok(fresh, "RSA-%d batch blinding: the pairs differ", bits);

        RAND_bytes(dg, 32);
        slen = sizeof(s2);
        hpki_rsa_encode(pub, 1, 1, dg, 32, em);
        good = hpki_rsa_blind(t, em, k, a[7], mont, bn) == 0;
        {
            BIGNUM  *ya = BN_new(), *yb = BN_new();

            good = good && hpki_rsa_partial(ya, t, da, n, bn) == 0
                   && hpki_rsa_partial(yb, t, db, n, bn) == 0
                   && hpki_rsa_combine(pub, ya, yb, ai[7], mont, s1, bn) == 0
                   && whole_sign(pk, 1, dg, 32, s2, &slen) == 0
                   && memcmp(s1, s2, k) == 0;
            BN_free(ya);
            BN_free(yb);
        }
        ok(good, "RSA-%d signature blinded by a batch pair == whole-key",
           bits);

        for (j = 0; j < 16; j++) {
            BN_free(a[j]);
            BN_free(ai[j]);
        }

        BN_free(t);
        BN_free(u);
        BN_MONT_CTX_free(mont);
    }

    /* a wrong share: the combiner's check refuses the result */

    neg = BN_dup(da);
    BN_add_word(neg, 2);
    ok(split_sign(pub, neg, db, 1, 1, dg, 32, s1) != 0,
       "RSA-%d wrong share fails verification", bits);
    BN_free(neg);

    BN_free(da);
    BN_free(db);
    RSA_free(pub);
    RSA_free(rsa);
    EVP_PKEY_free(pk);
}


static void
test_seal(void)
{
    u_char    kek[32], kek2[32], *blob;
    size_t    len;
    BIGNUM   *s, *out, *n, *n2;
    char      aad[64];

    RAND_bytes(kek, 32);
    RAND_bytes(kek2, 32);
    s = BN_new();
    out = BN_new();
    n = BN_new();
    n2 = BN_new();
    BN_rand(s, 2100, 0, 0);
    BN_set_negative(s, 1);
    BN_rand(n, 2048, 0, 1);
    BN_rand(n2, 2048, 0, 1);

    hpki_share_aad(aad, sizeof(aad), "store-a", "doctor1", 3);
    ok(strcmp(aad, "store-a|doctor1|3") == 0, "AAD format");

    ok(hpki_share_seal(kek, aad, s, n, &blob, &len) == 0, "seal");
    ok(hpki_share_open(kek, aad, blob, len, n, out) == 0
       && BN_cmp(s, out) == 0, "open gives back the (negative) share");
    ok(hpki_share_open(kek2, aad, blob, len, n, out) == -1, "wrong KEK");
    ok(hpki_share_open(kek, "store-b|doctor1|3", blob, len, n, out) == -1,
       "wrong store in AAD");
    ok(hpki_share_open(kek, "store-a|doctor1|4", blob, len, n, out) == -1,
       "wrong version in AAD");
    ok(hpki_share_open(kek, aad, blob, len, n2, out) == -2,
       "another modulus is refused");
    blob[len / 2] ^= 0x01;
    ok(hpki_share_open(kek, aad, blob, len, n, out) == -1,
       "one flipped bit is caught");

    free(blob);
    BN_free(s);
    BN_free(out);
    BN_free(n);
    BN_free(n2);
}


int
main(int argc, char **argv)
{
    bn = BN_CTX_new();

    test_seal();
    test_key(2048, 8);

    /* 3072 and 4096 are slow to generate; "quick" skips them */
    if (argc < 2 || strcmp(argv[1], "quick") != 0) {
        test_key(3072, 2);
        test_key(4096, 2);
    }

    BN_CTX_free(bn);
    return done_testing();
}
