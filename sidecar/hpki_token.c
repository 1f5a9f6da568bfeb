/*
 * Verification of the gateway's access tokens: compact JWS, RS256 only.
 *
 * The signature is checked with OpenSSL (EVP_DigestVerify, SHA-256,
 * PKCS#1 v1.5) against public keys parsed once, at start; the header and
 * the claims are parsed with jansson (duplicate names refused).  libjwt
 * 1.10 is not used here: it takes the key as PEM bytes and parses them
 * on every call (~0.25 ms), and it trusts the header's alg.  The alg is
 * pinned to RS256 before any key is used, and every claim (iss, aud, exp,
 * nbf, sub, scope) is checked here.
 *
 * A token whose signature, alg, iss and aud are good is remembered by
 * the SHA-256 of its text in a small per-process LRU cache with its exp,
 * nbf, sub, scope and jti, for at most token_cache_ttl seconds (never
 * past exp + leeway: the same exp check runs on every use).  Repeated
 * requests with the same token then cost one hash and one lookup.  Only
 * tokens with a good signature enter the cache; sub and scope are
 * compared with the request on every use, hit or miss.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "hpki_core.h"
#include "hpki_token.h"


static hpki_token_entry_t *hpki_token_lookup(hpki_token_ctx_t *tc,
    const u_char *hash, uint64_t now);
static void hpki_token_insert(hpki_token_ctx_t *tc,
    const hpki_token_entry_t *e, uint64_t now);
static void hpki_token_unlink(hpki_token_ctx_t *tc, hpki_token_entry_t *e);
static int hpki_token_decode(hpki_token_ctx_t *tc, const char *tok,
    size_t len, hpki_token_entry_t *e, int64_t now);
static int hpki_token_check(const hpki_token_entry_t *e, const char *user,
    int64_t now, char *jti, size_t jti_size);
static int hpki_token_b64url(const char *in, size_t len, u_char **out,
    size_t *outlen);


static uint64_t
hpki_token_mono_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
hpki_token_init(hpki_token_ctx_t *tc, const hpki_conf_t *cf)
{
    int        i;
    u_char    *pem;
    size_t     pem_len;
    BIO       *bio;
    EVP_PKEY  *pk;

    memset(tc, 0, sizeof(*tc));
    tc->issuer = cf->token_issuer;
    tc->audience = cf->token_audience;
    tc->ttl = cf->token_cache_ttl > 0 ? (unsigned) cf->token_cache_ttl : 0;

    if (cf->ntoken_public_key == 0 || tc->issuer == NULL
        || tc->audience == NULL)
    {
        hpki_log(HPKI_LOG_ERROR, "token_public_key, token_issuer and "
                 "token_audience are required");
        return -1;
    }

    /* every key is parsed once, here; anything but RSA is refused */

    for (i = 0; i < cf->ntoken_public_key; i++) {
        if (hpki_read_file(cf->token_public_key[i], &pem, &pem_len) != 0) {
            hpki_log(HPKI_LOG_ERROR, "cannot read token_public_key \"%s\"",
                     cf->token_public_key[i]);
            return -1;
        }

        bio = BIO_new_mem_buf(pem, (int) pem_len);
        pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        free(pem);

        if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA
            || EVP_PKEY_get_bits(pk) < 2048)
        {
            EVP_PKEY_free(pk);
            hpki_log(HPKI_LOG_ERROR, "token_public_key \"%s\" is not a PEM "
                     "RSA public key of 2048 bits or more",
                     cf->token_public_key[i]);
            return -1;
        }

        tc->keys[tc->nkeys++] = pk;
    }

    if (tc->ttl > 0) {
        tc->entries = calloc(HPKI_TOKEN_CACHE_SIZE,
                             sizeof(hpki_token_entry_t));
        if (tc->entries == NULL) {
            return -1;
        }

        for (i = 0; i < HPKI_TOKEN_CACHE_SIZE; i++) {
            tc->entries[i].next = tc->free;
            tc->free = &tc->entries[i];
        }
    }

    return 0;
}


void
hpki_token_free(hpki_token_ctx_t *tc)
{
    int  i;

    for (i = 0; i < tc->nkeys; i++) {
        EVP_PKEY_free(tc->keys[i]);
    }

    tc->nkeys = 0;

    if (tc->entries != NULL) {
        OPENSSL_cleanse(tc->entries,
                        HPKI_TOKEN_CACHE_SIZE * sizeof(hpki_token_entry_t));
        free(tc->entries);
        tc->entries = NULL;
    }
}


/* 0: authorised for "user"; -1: not (the reason is logged, not the token) */

int
hpki_token_verify(hpki_token_ctx_t *tc, const u_char *token, size_t len,
    const char *user, char *jti, size_t jti_size)
{
    size_t               k;
    u_char               hash[32];
    int64_t              now;
    uint64_t             mono;
    struct timespec      ts;
    hpki_token_entry_t   tmp, *e;

    if (len == 0 || len > HPKI_TOKEN_MAX) {
        hpki_log(HPKI_LOG_INFO, "token refused: bad length");
        return -1;
    }

    for (k = 0; k < len; k++) {
        if (token[k] <= 0x20 || token[k] >= 0x7f) {
            hpki_log(HPKI_LOG_INFO, "token refused: not a compact JWS");
            return -1;
        }
    }

    memset(hash, 0, sizeof(hash));
    memset(&tmp, 0, sizeof(tmp));

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t) ts.tv_sec;
    mono = hpki_token_mono_ms();

    if (tc->entries != NULL) {
        SHA256(token, len, hash);

        e = hpki_token_lookup(tc, hash, mono);
        if (e != NULL) {
            tc->hits++;
            return hpki_token_check(e, user, now, jti, jti_size);
        }

        tc->misses++;
    }

    if (hpki_token_decode(tc, (const char *) token, len, &tmp, now) != 0) {
        return -1;
    }

    /* the signature is good and exp/nbf hold now: worth remembering */

    if (tc->entries != NULL) {
        memcpy(tmp.hash, hash, sizeof(hash));
        hpki_token_insert(tc, &tmp, mono);
    }

    return hpki_token_check(&tmp, user, now, jti, jti_size);
}


/* the per-use checks, the same for a cached and a fresh token */

static int
hpki_token_check(const hpki_token_entry_t *e, const char *user, int64_t now,
    char *jti, size_t jti_size)
{
    size_t  n;

    if (now > e->exp + HPKI_TOKEN_LEEWAY) {
        hpki_log(HPKI_LOG_INFO, "token refused: expired");
        return -1;
    }

    if (e->nbf != INT64_MIN && now + HPKI_TOKEN_LEEWAY < e->nbf) {
        hpki_log(HPKI_LOG_INFO, "token refused: not yet valid");
        return -1;
    }

    n = strlen(user);

    if (!e->sub_ok || e->sub_len != n || memcmp(e->sub, user, n) != 0) {
        hpki_log(HPKI_LOG_INFO, "token refused: subject is not the user");
        return -1;
    }

    if (!e->sign) {
        hpki_log(HPKI_LOG_INFO, "token refused: scope lacks \"sign\"");
        return -1;
    }

    n = strlen(e->jti);
    if (n >= jti_size) {
        n = jti_size - 1;
    }

    memcpy(jti, e->jti, n);
    jti[n] = '\0';
    return 0;
}


/*
 * Parses and verifies a compact JWS; on success e holds the claims.
 * Refuses (-1) a bad signature, an alg other than RS256, a "crit" header,
 * a wrong iss or aud, a missing or passed exp, a future nbf.
 */

static int
hpki_token_decode(hpki_token_ctx_t *tc, const char *tok, size_t len,
    hpki_token_entry_t *e, int64_t now)
{
    int           i, rc, ok;
    size_t        hlen, plen, slen, dlen, n, k;
    u_char       *hdr, *pay, *sig;
    json_t       *h, *c, *v, *a;
    const char   *p1, *p2, *s, *p;
    EVP_MD_CTX   *md;

    rc = -1;
    hdr = NULL;
    pay = NULL;
    sig = NULL;
    h = NULL;
    c = NULL;
    md = NULL;

    p1 = memchr(tok, '.', len);
    p2 = p1 ? memchr(p1 + 1, '.', len - (p1 + 1 - tok)) : NULL;

    if (p2 == NULL || memchr(p2 + 1, '.', len - (p2 + 1 - tok)) != NULL) {
        hpki_log(HPKI_LOG_INFO, "token refused: not a compact JWS");
        return -1;
    }

    if (hpki_token_b64url(tok, p1 - tok, &hdr, &hlen) != 0
        || hpki_token_b64url(p1 + 1, p2 - p1 - 1, &pay, &plen) != 0
        || hpki_token_b64url(p2 + 1, len - (p2 + 1 - tok), &sig, &slen) != 0)
    {
        hpki_log(HPKI_LOG_INFO, "token refused: bad base64url");
        goto done;
    }

    /* the header first: nothing but RS256 reaches a key */

    h = json_loadb((char *) hdr, hlen, JSON_REJECT_DUPLICATES, NULL);
    v = json_object_get(h, "alg");

    if (!json_is_object(h) || !json_is_string(v)
        || strcmp(json_string_value(v), "RS256") != 0
        || json_string_length(v) != 5)
    {
        hpki_log(HPKI_LOG_WARN, "token refused: alg is not RS256");
        goto done;
    }

    if (json_object_get(h, "crit") != NULL) {
        hpki_log(HPKI_LOG_INFO, "token refused: crit header");
        goto done;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        goto done;
    }

    ok = 0;
    dlen = p2 - tok;                    /* signing input: header.payload */

    for (i = 0; i < tc->nkeys && !ok; i++) {
        if ((size_t) EVP_PKEY_get_size(tc->keys[i]) != slen) {
            continue;
        }

        EVP_MD_CTX_reset(md);

        if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, tc->keys[i])
            == 1
            && EVP_DigestVerify(md, sig, slen, (const u_char *) tok, dlen)
               == 1)
        {
            ok = 1;
        }
    }

    if (!ok) {
        hpki_log(HPKI_LOG_INFO, "token refused: signature not verified");
        goto done;
    }

    c = json_loadb((char *) pay, plen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(c)) {
        hpki_log(HPKI_LOG_INFO, "token refused: no claims");
        goto done;
    }

    v = json_object_get(c, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), tc->issuer) != 0
        || json_string_length(v) != strlen(tc->issuer))
    {
        hpki_log(HPKI_LOG_INFO, "token refused: wrong issuer");
        goto done;
    }

    v = json_object_get(c, "aud");
    ok = 0;

    if (json_is_string(v)) {
        ok = strcmp(json_string_value(v), tc->audience) == 0
             && json_string_length(v) == strlen(tc->audience);

    } else if (json_is_array(v)) {
        json_array_foreach(v, k, a) {
            if (json_is_string(a)
                && strcmp(json_string_value(a), tc->audience) == 0
                && json_string_length(a) == strlen(tc->audience))
            {
                ok = 1;
            }
        }
    }

    if (!ok) {
        hpki_log(HPKI_LOG_INFO, "token refused: wrong audience");
        goto done;
    }

    v = json_object_get(c, "exp");
    if (!json_is_integer(v)) {
        hpki_log(HPKI_LOG_INFO, "token refused: no exp");
        goto done;
    }

    e->exp = (int64_t) json_integer_value(v);

    if (now > e->exp + HPKI_TOKEN_LEEWAY) {
        hpki_log(HPKI_LOG_INFO, "token refused: expired");
        goto done;
    }

    e->nbf = INT64_MIN;
    v = json_object_get(c, "nbf");

    if (v != NULL) {
        if (!json_is_integer(v)) {
            hpki_log(HPKI_LOG_INFO, "token refused: bad nbf");
            goto done;
        }

        e->nbf = (int64_t) json_integer_value(v);

        if (now + HPKI_TOKEN_LEEWAY < e->nbf) {
            hpki_log(HPKI_LOG_INFO, "token refused: not yet valid");
            goto done;
        }
    }

    /* sub: kept only if it could be a user id (length-checked: no NUL) */

    v = json_object_get(c, "sub");
    if (json_is_string(v) && json_string_length(v) <= HPKI_USER_MAX) {
        e->sub_len = json_string_length(v);
        memcpy(e->sub, json_string_value(v), e->sub_len);
        e->sub[e->sub_len] = '\0';
        e->sub_ok = memchr(e->sub, '\0', e->sub_len) == NULL;
    }

    /* scope: space-separated, "sign" must be one of the words */

    v = json_object_get(c, "scope");
    s = json_is_string(v) ? json_string_value(v) : "";

    for (p = s; *p; ) {
        while (*p == ' ') {
            p++;
        }
        n = strcspn(p, " ");
        if (n == 4 && strncmp(p, "sign", 4) == 0) {
            e->sign = 1;
        }
        p += n;
    }

    /* jti goes to the audit log: keep printable, bounded */

    v = json_object_get(c, "jti");
    s = json_is_string(v) ? json_string_value(v) : "-";

    for (k = 0; s[k] && k < HPKI_JTI_MAX; k++) {
        e->jti[k] = (s[k] > 0x20 && s[k] < 0x7f) ? s[k] : '?';
    }

    e->jti[k] = '\0';
    rc = 0;

done:

    EVP_MD_CTX_free(md);
    json_decref(h);
    json_decref(c);
    free(hdr);
    free(sig);

    if (pay != NULL) {
        OPENSSL_cleanse(pay, plen);
        free(pay);
    }

    return rc;
}


/* strict base64url without padding (RFC 7515 section 2) */

static int
hpki_token_b64url(const char *in, size_t len, u_char **out, size_t *outlen)
{
    int        v;
    size_t     i, n;
    u_char    *o;
    uint32_t   acc;

    if (len == 0 || len % 4 == 1) {
        return -1;
    }

    o = malloc(len * 3 / 4 + 1);
    if (o == NULL) {
        return -1;
    }

    acc = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        u_char  ch = (u_char) in[i];

        if (ch >= 'A' && ch <= 'Z') {
            v = ch - 'A';
        } else if (ch >= 'a' && ch <= 'z') {
            v = ch - 'a' + 26;
        } else if (ch >= '0' && ch <= '9') {
            v = ch - '0' + 52;
        } else if (ch == '-') {
            v = 62;
        } else if (ch == '_') {
            v = 63;
        } else {
            free(o);
            return -1;
        }

        acc = acc << 6 | (uint32_t) v;

        if (i % 4 == 3) {
            o[n++] = (u_char) (acc >> 16);
            o[n++] = (u_char) (acc >> 8);
            o[n++] = (u_char) acc;
            acc = 0;
        }
    }

    /* 2 or 3 trailing characters: 1 or 2 bytes, unused bits must be 0 */

    if (len % 4 == 2) {
        if (acc & 0xf) {
            free(o);
            return -1;
        }
        o[n++] = (u_char) (acc >> 4);

    } else if (len % 4 == 3) {
        if (acc & 0x3) {
            free(o);
            return -1;
        }
        o[n++] = (u_char) (acc >> 10);
        o[n++] = (u_char) (acc >> 2);
    }

    *out = o;
    *outlen = n;
    return 0;
}


/* the cache: a chained hash on the token's SHA-256, and an LRU list */

static hpki_token_entry_t *
hpki_token_lookup(hpki_token_ctx_t *tc, const u_char *hash, uint64_t now)
{
    uint32_t             b;
    hpki_token_entry_t  *e;

    b = (hash[0] | hash[1] << 8 | (uint32_t) hash[2] << 16)
        & (HPKI_TOKEN_CACHE_HASH - 1);

    for (e = tc->bucket[b]; e; e = e->hnext) {
        if (CRYPTO_memcmp(e->hash, hash, 32) != 0) {
            continue;
        }

        if (now >= e->until) {
            hpki_token_unlink(tc, e);       /* too old: verify again */
            return NULL;
        }

        if (e != tc->head) {                /* most recently used first */
            e->prev->next = e->next;
            if (e->next) {
                e->next->prev = e->prev;
            } else {
                tc->tail = e->prev;
            }
            e->prev = NULL;
            e->next = tc->head;
            tc->head->prev = e;
            tc->head = e;
        }

        return e;
    }

    return NULL;
}


static void
hpki_token_insert(hpki_token_ctx_t *tc, const hpki_token_entry_t *src,
    uint64_t now)
{
    uint32_t             b;
    hpki_token_entry_t  *e;

    if (tc->free == NULL) {
        hpki_token_unlink(tc, tc->tail);    /* evict the least recent */
    }

    e = tc->free;
    tc->free = e->next;

    *e = *src;
    e->until = now + 1000 * (uint64_t) tc->ttl;

    b = (e->hash[0] | e->hash[1] << 8 | (uint32_t) e->hash[2] << 16)
        & (HPKI_TOKEN_CACHE_HASH - 1);

    e->hnext = tc->bucket[b];
    tc->bucket[b] = e;

    e->prev = NULL;
    e->next = tc->head;
    if (tc->head) {
        tc->head->prev = e;
    } else {
        tc->tail = e;
    }
    tc->head = e;
}


static void
hpki_token_unlink(hpki_token_ctx_t *tc, hpki_token_entry_t *e)
{
    uint32_t              b;
    hpki_token_entry_t  **pp;

    b = (e->hash[0] | e->hash[1] << 8 | (uint32_t) e->hash[2] << 16)
        & (HPKI_TOKEN_CACHE_HASH - 1);

    for (pp = &tc->bucket[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    }

    if (e->prev) {
        e->prev->next = e->next;
    } else {
        tc->head = e->next;
    }

    if (e->next) {
        e->next->prev = e->prev;
    } else {
        tc->tail = e->prev;
    }

    OPENSSL_cleanse(e, sizeof(*e));
    e->next = tc->free;
    tc->free = e;
}
