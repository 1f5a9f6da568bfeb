/*
 * Verification of the gateway's access tokens (RS256 JWT) inside
 * hpki-signd: the daemon does not trust the front end's word.
 *
 * Every process (the combiner and each share worker) verifies tokens
 * itself, with the public keys parsed once at start, and keeps its own
 * small cache of tokens whose signature it has verified.
 */

#ifndef HPKI_TOKEN_H
#define HPKI_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "hpki_conf.h"
#include "hpki_core.h"


#define HPKI_TOKEN_MAX          8192
#define HPKI_TOKEN_LEEWAY       60
#define HPKI_JTI_MAX            128

#define HPKI_TOKEN_CACHE_SIZE   1024        /* entries, LRU */
#define HPKI_TOKEN_CACHE_HASH   2048        /* buckets, a power of 2 */
#define HPKI_TOKEN_CACHE_TTL    60          /* s, at most, per entry */


typedef struct hpki_token_entry_s  hpki_token_entry_t;

/*
 * The claims of a token whose signature, alg, iss and aud have been
 * checked; exp, nbf, sub and scope are checked on every use.
 */

struct hpki_token_entry_s {
    u_char               hash[32];          /* SHA-256 of the token */
    int64_t              exp;
    int64_t              nbf;               /* INT64_MIN: none */
    uint64_t             until;             /* monotonic ms: drop after */
    size_t               sub_len;
    char                 sub[HPKI_USER_MAX + 1];
    unsigned             sub_ok:1;          /* a string, <= USER_MAX */
    unsigned             sign:1;            /* "sign" in scope */
    char                 jti[HPKI_JTI_MAX + 1];

    hpki_token_entry_t  *hnext;             /* bucket chain */
    hpki_token_entry_t  *prev;              /* LRU, most recent first */
    hpki_token_entry_t  *next;
};


typedef struct {
    EVP_PKEY            *keys[HPKI_CONF_MAX_KEYS];
    int                  nkeys;
    const char          *issuer;
    const char          *audience;

    hpki_token_entry_t  *entries;           /* HPKI_TOKEN_CACHE_SIZE */
    hpki_token_entry_t  *free;
    hpki_token_entry_t  *bucket[HPKI_TOKEN_CACHE_HASH];
    hpki_token_entry_t  *head;
    hpki_token_entry_t  *tail;
    unsigned             ttl;               /* s; 0: no cache */

    unsigned long        hits;
    unsigned long        misses;
} hpki_token_ctx_t;


int hpki_token_init(hpki_token_ctx_t *tc, const hpki_conf_t *cf);
void hpki_token_free(hpki_token_ctx_t *tc);
int hpki_token_verify(hpki_token_ctx_t *tc, const u_char *token,
    size_t len, const char *user, char *jti, size_t jti_size);

#endif /* HPKI_TOKEN_H */
