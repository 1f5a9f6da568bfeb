/*
 * Verification of the gateway's access tokens with libjwt 1.10.
 *
 * libjwt 1.10 trusts the header's "alg" (a PEM public key given to an
 * HS256 token is used as the HMAC secret), so the algorithm is pinned to
 * RS256 after decoding, and the claims (iss, aud, exp, nbf, sub, scope)
 * are checked here: libjwt 1.10 checks none of them.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "hpki_core.h"
#include "hpki_token.h"


static int hpki_token_claims(const hpki_token_ctx_t *tc, json_t *claims,
    const char *user, char *jti, size_t jti_size);


int
hpki_token_init(hpki_token_ctx_t *tc, const hpki_conf_t *cf)
{
    int        i;
    BIO       *bio;
    EVP_PKEY  *pk;

    memset(tc, 0, sizeof(*tc));
    tc->issuer = cf->token_issuer;
    tc->audience = cf->token_audience;

    if (cf->ntoken_public_key == 0 || tc->issuer == NULL
        || tc->audience == NULL)
    {
        hpki_log(HPKI_LOG_ERROR, "token_public_key, token_issuer and "
                 "token_audience are required");
        return -1;
    }

    for (i = 0; i < cf->ntoken_public_key; i++) {
        if (hpki_read_file(cf->token_public_key[i], &tc->pem[i],
                           &tc->pem_len[i]) != 0)
        {
            hpki_log(HPKI_LOG_ERROR, "cannot read token_public_key \"%s\"",
                     cf->token_public_key[i]);
            return -1;
        }

        tc->nkeys++;

        /* reject anything that is not a PEM RSA public key up front */

        bio = BIO_new_mem_buf(tc->pem[i], (int) tc->pem_len[i]);
        pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);

        if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
            EVP_PKEY_free(pk);
            hpki_log(HPKI_LOG_ERROR, "token_public_key \"%s\" is not a PEM "
                     "RSA public key", cf->token_public_key[i]);
            return -1;
        }

        EVP_PKEY_free(pk);
    }

    return 0;
}


void
hpki_token_free(hpki_token_ctx_t *tc)
{
    int  i;

    for (i = 0; i < tc->nkeys; i++) {
        free(tc->pem[i]);
    }

    tc->nkeys = 0;
}


/* 0: authorised for "user"; -1: not (the reason is logged, not the token) */

int
hpki_token_verify(const hpki_token_ctx_t *tc, const u_char *token,
    size_t len, const char *user, char *jti, size_t jti_size)
{
    int      i, rc;
    char    *tok, *grants;
    size_t   k;
    jwt_t   *jwt;
    json_t  *claims;

    rc = -1;
    jwt = NULL;
    grants = NULL;
    claims = NULL;

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

    tok = malloc(len + 1);
    if (tok == NULL) {
        return -1;
    }

    memcpy(tok, token, len);
    tok[len] = '\0';

    for (i = 0; i < tc->nkeys; i++) {
        if (jwt_decode(&jwt, tok, tc->pem[i], (int) tc->pem_len[i]) == 0) {
            break;
        }
        jwt = NULL;
    }

    if (jwt == NULL) {
        hpki_log(HPKI_LOG_INFO, "token refused: signature not verified");
        goto done;
    }

    if (jwt_get_alg(jwt) != JWT_ALG_RS256) {
        hpki_log(HPKI_LOG_WARN, "token refused: alg is not RS256");
        goto done;
    }

    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? json_loads(grants, 0, NULL) : NULL;

    if (!json_is_object(claims)) {
        hpki_log(HPKI_LOG_INFO, "token refused: no claims");
        goto done;
    }

    rc = hpki_token_claims(tc, claims, user, jti, jti_size);

done:

    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    OPENSSL_cleanse(tok, len);
    free(tok);
    return rc;
}


static int
hpki_token_claims(const hpki_token_ctx_t *tc, json_t *claims,
    const char *user, char *jti, size_t jti_size)
{
    size_t           i, n;
    json_t          *v, *a;
    const char      *s, *p;
    json_int_t       exp, nbf;
    struct timespec  now;

    clock_gettime(CLOCK_REALTIME, &now);

    v = json_object_get(claims, "iss");
    if (!json_is_string(v) || strcmp(json_string_value(v), tc->issuer) != 0) {
        hpki_log(HPKI_LOG_INFO, "token refused: wrong issuer");
        return -1;
    }

    v = json_object_get(claims, "aud");
    n = 0;

    if (json_is_string(v)) {
        n = strcmp(json_string_value(v), tc->audience) == 0;

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, a) {
            if (json_is_string(a)
                && strcmp(json_string_value(a), tc->audience) == 0)
            {
                n = 1;
            }
        }
    }

    if (n == 0) {
        hpki_log(HPKI_LOG_INFO, "token refused: wrong audience");
        return -1;
    }

    v = json_object_get(claims, "exp");
    if (!json_is_integer(v)) {
        hpki_log(HPKI_LOG_INFO, "token refused: no exp");
        return -1;
    }

    exp = json_integer_value(v);
    if ((json_int_t) now.tv_sec > exp + HPKI_TOKEN_LEEWAY) {
        hpki_log(HPKI_LOG_INFO, "token refused: expired");
        return -1;
    }

    v = json_object_get(claims, "nbf");
    if (v != NULL) {
        if (!json_is_integer(v)) {
            hpki_log(HPKI_LOG_INFO, "token refused: bad nbf");
            return -1;
        }
        nbf = json_integer_value(v);
        if ((json_int_t) now.tv_sec + HPKI_TOKEN_LEEWAY < nbf) {
            hpki_log(HPKI_LOG_INFO, "token refused: not yet valid");
            return -1;
        }
    }

    v = json_object_get(claims, "sub");
    if (!json_is_string(v) || strcmp(json_string_value(v), user) != 0) {
        hpki_log(HPKI_LOG_INFO, "token refused: subject is not the user");
        return -1;
    }

    v = json_object_get(claims, "scope");
    s = json_is_string(v) ? json_string_value(v) : "";
    n = 0;

    for (p = s; *p; ) {
        while (*p == ' ') {
            p++;
        }
        i = strcspn(p, " ");
        if (i == 4 && strncmp(p, "sign", 4) == 0) {
            n = 1;
        }
        p += i;
    }

    if (n == 0) {
        hpki_log(HPKI_LOG_INFO, "token refused: scope lacks \"sign\"");
        return -1;
    }

    /* jti goes to the audit log: keep printable, bounded */

    v = json_object_get(claims, "jti");
    s = json_is_string(v) ? json_string_value(v) : "-";

    for (i = 0; s[i] && i + 1 < jti_size; i++) {
        jti[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
    }

    jti[i] = '\0';
    return 0;
}
