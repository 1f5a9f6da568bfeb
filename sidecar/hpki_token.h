/*
 * Verification of the gateway's access tokens (RS256 JWT) inside
 * hpki-signd: the daemon does not trust the front end's word.
 */

#ifndef HPKI_TOKEN_H
#define HPKI_TOKEN_H

#include <stddef.h>
#include <sys/types.h>

#include "hpki_conf.h"


#define HPKI_TOKEN_MAX      8192
#define HPKI_TOKEN_LEEWAY   60
#define HPKI_JTI_MAX        128


typedef struct {
    u_char      *pem[HPKI_CONF_MAX_KEYS];
    size_t       pem_len[HPKI_CONF_MAX_KEYS];
    int          nkeys;
    const char  *issuer;
    const char  *audience;
} hpki_token_ctx_t;


int hpki_token_init(hpki_token_ctx_t *tc, const hpki_conf_t *cf);
void hpki_token_free(hpki_token_ctx_t *tc);
int hpki_token_verify(const hpki_token_ctx_t *tc, const u_char *token,
    size_t len, const char *user, char *jti, size_t jti_size);

#endif /* HPKI_TOKEN_H */
