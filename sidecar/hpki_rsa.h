/*
 * Two-share RSA (shared/domain/HPKI.md section 6): padding, blinding,
 * partial exponentiation, split and refresh of the private exponent,
 * and sealing of shares under a key-encryption key.  OpenSSL only.
 */

#ifndef HPKI_RSA_H
#define HPKI_RSA_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>


#define HPKI_HASH_SHA256    1
#define HPKI_HASH_SHA384    2
#define HPKI_HASH_SHA512    3

#define HPKI_SIG_PKCS1      1
#define HPKI_SIG_PSS        2

#define HPKI_KEK_LEN        32
#define HPKI_RSA_MAX_BYTES  512     /* RSA-4096 */
#define HPKI_REFRESH_EXTRA  128     /* refresh mask: modulus bits + this */
#define HPKI_SEAL_NFP       32      /* SHA-256(n) sealed with a share */


const EVP_MD *hpki_rsa_md(int hash_alg);
const char *hpki_rsa_alg_name(int hash_alg, int sig_alg);

RSA *hpki_rsa_public(const BIGNUM *n, const BIGNUM *e);

int hpki_rsa_encode(RSA *pub, int hash_alg, int sig_alg,
    const u_char *digest, size_t dlen, u_char *em);
int hpki_rsa_blind_batch(const BIGNUM *n, const BIGNUM *e,
    BN_MONT_CTX *mont, BIGNUM **a, BIGNUM **ainv, int count, BN_CTX *ctx,
    void (*pause)(void));
int hpki_rsa_blind(BIGNUM *x, const u_char *em, int k, const BIGNUM *a,
    BN_MONT_CTX *mont, BN_CTX *ctx);
int hpki_rsa_partial(BIGNUM *y, const BIGNUM *x, const BIGNUM *share,
    const BIGNUM *n, BN_CTX *ctx);
int hpki_rsa_combine(const RSA *pub, const BIGNUM *ya, const BIGNUM *yb,
    const BIGNUM *rinv, BN_MONT_CTX *mont, u_char *sig, BN_CTX *ctx);
int hpki_rsa_verify(RSA *pub, const u_char *sig, const u_char *em);

int hpki_rsa_split(const RSA *key, BIGNUM *da, BIGNUM *db, BN_CTX *ctx);
int hpki_rsa_refresh(BIGNUM *da, BIGNUM *db, int bits, BN_CTX *ctx);

int hpki_share_aad(char *buf, size_t size, const char *store,
    const char *user, unsigned long version);
int hpki_share_seal(const u_char *kek, const char *aad, const BIGNUM *share,
    const BIGNUM *n, u_char **out, size_t *outlen);
int hpki_share_nfp(const BIGNUM *n, u_char *fp);
int hpki_share_open(const u_char *kek, const char *aad, const u_char *blob,
    size_t len, const BIGNUM *n, BIGNUM *share);
int hpki_kek_load(const char *path, u_char *kek);

#endif /* HPKI_RSA_H */
