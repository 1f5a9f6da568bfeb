/*
 * Unit test: hpki-signd's token verification (EVP, keys parsed once) and
 * its per-process cache of verified tokens.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "hpki_core.h"
#include "hpki_token.h"
#include "signd_tap.h"


static EVP_PKEY  *signd_key;


static void
signd_b64url(const u_char *in, size_t len, char *out)
{
    int     n;
    char   *p;

    n = EVP_EncodeBlock((u_char *) out, in, (int) len);
    out[n] = '\0';

    for (p = out; *p; p++) {
        if (*p == '+') {
            *p = '-';
        } else if (*p == '/') {
            *p = '_';
        } else if (*p == '=') {
            *p = '\0';
            break;
        }
    }
}


/* header and payload JSON in, compact JWS out; alg "RS256" signs */

static char *
signd_jws(const char *header, const char *payload, const char *how)
{
    char        *out, *p;
    u_char       sig[512];
    size_t       slen;
    unsigned     hlen;
    EVP_MD_CTX  *md;

    out = malloc(8192);
    signd_b64url((const u_char *) header, strlen(header), out);
    p = out + strlen(out);
    *p++ = '.';
    signd_b64url((const u_char *) payload, strlen(payload), p);

    slen = 0;

    if (strcmp(how, "rs256") == 0) {
        md = EVP_MD_CTX_new();
        slen = sizeof(sig);
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signd_key);
        EVP_DigestSign(md, sig, &slen, (u_char *) out, strlen(out));
        EVP_MD_CTX_free(md);

    } else if (strcmp(how, "hs256") == 0) {
        HMAC(EVP_sha256(), "secret", 6, (u_char *) out, strlen(out), sig,
             &hlen);
        slen = hlen;
    }

    p = out + strlen(out);
    *p++ = '.';
    *p = '\0';

    if (slen > 0) {
        signd_b64url(sig, slen, p);
    }

    return out;
}


static char *
signd_token(const char *sub, const char *scope, long exp, const char *jti)
{
    char  payload[1024];

    snprintf(payload, sizeof(payload),
             "{\"iss\":\"https://gw\",\"aud\":\"hpki\",\"sub\":\"%s\","
             "\"scope\":\"%s\",\"exp\":%ld,\"jti\":\"%s\"}",
             sub, scope, exp, jti);

    return signd_jws("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload, "rs256");
}


static int
signd_verify(hpki_token_ctx_t *tc, const char *tok, const char *user,
    char *jti)
{
    return hpki_token_verify(tc, (const u_char *) tok, strlen(tok), user,
                             jti, HPKI_JTI_MAX + 1);
}


static int
signd_cached(hpki_token_ctx_t *tc)
{
    int                  n;
    hpki_token_entry_t  *e;

    n = 0;
    for (e = tc->head; e; e = e->next) {
        n++;
    }

    return n;
}


static hpki_token_entry_t *
signd_entry(hpki_token_ctx_t *tc, const char *jti)
{
    hpki_token_entry_t  *e;

    for (e = tc->head; e; e = e->next) {
        if (strcmp(e->jti, jti) == 0) {
            return e;
        }
    }

    return NULL;
}


int
main(void)
{
    int                i, rc, n;
    char               path[] = "/tmp/signd_token_XXXXXX";
    char               jti[HPKI_JTI_MAX + 1], id[32], *tok, *t2, *first;
    long               now;
    FILE              *fp;
    unsigned long      misses;
    hpki_conf_t        cf;
    hpki_token_ctx_t   tc;

    hpki_log_level = -1;                        /* quiet */
    now = (long) time(NULL);

    signd_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    close(mkstemp(path));
    fp = fopen(path, "w");
    PEM_write_PUBKEY(fp, signd_key);
    fclose(fp);

    memset(&cf, 0, sizeof(cf));
    cf.token_public_key[0] = path;
    cf.ntoken_public_key = 1;
    cf.token_issuer = "https://gw";
    cf.token_audience = "hpki";
    cf.token_cache_ttl = 60;

    ok(hpki_token_init(&tc, &cf) == 0, "init: key parsed once");
    unlink(path);

    /* a good token: verified once, then served from the cache */

    tok = signd_token("doctor1", "openid sign", now + 3600, "j-1");
    ok(signd_verify(&tc, tok, "doctor1", jti) == 0, "good token accepted");
    ok(strcmp(jti, "j-1") == 0, "jti returned");
    ok(tc.misses == 1 && tc.hits == 0, "first use verifies (miss)");
    ok(signd_verify(&tc, tok, "doctor1", jti) == 0 && tc.hits == 1,
       "second use is a cache hit");
    ok(strcmp(jti, "j-1") == 0, "jti from the cache");

    /* the per-use checks still run on a hit */

    ok(signd_verify(&tc, tok, "doctor2", jti) != 0 && tc.hits == 2,
       "cached token for another user: refused");
    ok(signd_verify(&tc, tok, "doctor", jti) != 0,
       "cached token for a prefix of the user: refused");

    t2 = signd_token("doctor1", "openid", now + 3600, "j-2");
    ok(signd_verify(&tc, t2, "doctor1", jti) != 0, "no sign scope: refused");
    ok(signd_verify(&tc, t2, "doctor1", jti) != 0,
       "no sign scope, cached: refused");
    free(t2);

    /* exp is checked on every use: an entry past exp + leeway is refused */

    signd_entry(&tc, "j-1")->exp = now - HPKI_TOKEN_LEEWAY - 5;
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0,
       "cached token now past exp + leeway: refused");

    /* an entry older than the TTL is verified again */

    signd_entry(&tc, "j-1")->exp = now + 3600;
    misses = tc.misses;
    signd_entry(&tc, "j-1")->until = 0;
    ok(signd_verify(&tc, tok, "doctor1", jti) == 0 && tc.misses == misses + 1,
       "entry older than the TTL: verified again");
    free(tok);

    /* tokens refused before or at the signature never enter the cache */

    tok = signd_token("doctor1", "sign", now - HPKI_TOKEN_LEEWAY - 10, "j-3");
    n = signd_cached(&tc);
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0, "expired: refused");
    ok(signd_cached(&tc) == n, "expired: not cached");
    free(tok);

    tok = signd_jws("{\"alg\":\"HS256\"}",
                    "{\"iss\":\"https://gw\",\"aud\":\"hpki\","
                    "\"sub\":\"doctor1\",\"scope\":\"sign\","
                    "\"exp\":9999999999}", "hs256");
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0, "HS256 refused");
    free(tok);

    tok = signd_jws("{\"alg\":\"none\"}",
                    "{\"iss\":\"https://gw\",\"aud\":\"hpki\","
                    "\"sub\":\"doctor1\",\"scope\":\"sign\","
                    "\"exp\":9999999999}", "none");
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0, "alg none refused");
    free(tok);

    tok = signd_jws("{\"alg\":\"RS256\",\"crit\":[\"x\"]}",
                    "{\"iss\":\"https://gw\",\"aud\":\"hpki\","
                    "\"sub\":\"doctor1\",\"scope\":\"sign\","
                    "\"exp\":9999999999}", "rs256");
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0, "crit header refused");
    free(tok);

    tok = signd_jws("{\"alg\":\"RS256\"}",
                    "{\"iss\":\"https://gw\",\"aud\":\"hpki\","
                    "\"sub\":\"doctor2\",\"sub\":\"doctor1\","
                    "\"scope\":\"sign\",\"exp\":9999999999}", "rs256");
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0,
       "duplicate claim refused");
    free(tok);

    tok = signd_jws("{\"alg\":\"RS256\"}",
                    "{\"iss\":\"https://gw\",\"aud\":\"hpki\","
                    "\"sub\":\"doctor1\\u0000x\",\"scope\":\"sign\","
                    "\"exp\":9999999999}", "rs256");
    ok(signd_verify(&tc, tok, "doctor1", jti) != 0,
       "sub with an embedded NUL refused");
    free(tok);

    tok = signd_jws("{\"alg\":\"RS256\"}",
                    "{\"iss\":\"https://gw\",\"aud\":[\"x\",\"hpki\"],"
                    "\"sub\":\"doctor1\",\"scope\":\"sign\","
                    "\"exp\":9999999999}", "rs256");
    ok(signd_verify(&tc, tok, "doctor1", jti) == 0,
       "audience array accepted");
    ok(strcmp(jti, "-") == 0, "no jti: \"-\"");

    /* one changed character of the payload: refused, every time */

    t2 = strdup(tok);
    t2[strchr(t2, '.') - t2 + 3] ^= 1;
    misses = tc.misses;
    rc = signd_verify(&tc, t2, "doctor1", jti);
    ok(rc != 0, "tampered payload refused");
    ok(signd_verify(&tc, t2, "doctor1", jti) != 0
       && tc.misses == misses + 2, "tampered payload refused again, uncached");

    /* base64url padding or foreign characters */

    t2 = realloc(t2, strlen(tok) + 2);
    strcpy(t2, tok);
    strcat(t2, "=");
    ok(signd_verify(&tc, t2, "doctor1", jti) != 0, "padding '=' refused");
    free(t2);
    free(tok);

    /* the cache is bounded: the least recently used entry goes first */

    first = signd_token("doctor1", "sign", now + 3600, "first");
    ok(signd_verify(&tc, first, "doctor1", jti) == 0, "first of many");

    for (i = 0; i < HPKI_TOKEN_CACHE_SIZE + 50; i++) {
        snprintf(id, sizeof(id), "many-%d", i);
        tok = signd_token("doctor1", "sign", now + 3600, id);
        rc = signd_verify(&tc, tok, "doctor1", jti);
        free(tok);
        if (rc != 0) {
            break;
        }
    }

    ok(i == HPKI_TOKEN_CACHE_SIZE + 50, "%d more tokens accepted", i);
    ok(signd_cached(&tc) == HPKI_TOKEN_CACHE_SIZE, "cache holds %d entries",
       signd_cached(&tc));

    misses = tc.misses;
    ok(signd_verify(&tc, first, "doctor1", jti) == 0
       && tc.misses == misses + 1, "evicted token verified again");
    free(first);

    /* token_cache_ttl 0: no cache */

    hpki_token_free(&tc);
    cf.token_cache_ttl = 0;
    cf.token_public_key[0] = path;
    fp = fopen(path, "w");
    PEM_write_PUBKEY(fp, signd_key);
    fclose(fp);
    ok(hpki_token_init(&tc, &cf) == 0, "init without a cache");
    unlink(path);
    tok = signd_token("doctor1", "sign", now + 3600, "j-9");
    ok(signd_verify(&tc, tok, "doctor1", jti) == 0
       && signd_verify(&tc, tok, "doctor1", jti) == 0 && tc.hits == 0,
       "without a cache every use verifies");
    free(tok);
    hpki_token_free(&tc);

    EVP_PKEY_free(signd_key);
    return done_testing();
}
