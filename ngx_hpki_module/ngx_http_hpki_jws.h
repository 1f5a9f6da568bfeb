
/*
 * Compact JWS (RS256, ES256) and JWT claim checks for the gateway's tokens.
 * Pure C on OpenSSL (libcrypto) and jansson; no nginx calls.  Keys are loaded
 * once (configuration time) and used many times.
 */


#ifndef _NGX_HTTP_HPKI_JWS_H_INCLUDED_
#define _NGX_HTTP_HPKI_JWS_H_INCLUDED_


#include <stddef.h>
#include <openssl/evp.h>
#include <jansson.h>


#define NGX_HTTP_HPKI_JWS_RS256      1
#define NGX_HTTP_HPKI_JWS_ES256      2

/* hard limits */
#define NGX_HTTP_HPKI_JWS_MAX_TOKEN  8192     /* compact token, bytes */
#define NGX_HTTP_HPKI_JWS_MAX_KEY    65536    /* PEM file, bytes */
#define NGX_HTTP_HPKI_JWS_MIN_RSA    2048     /* RSA modulus, bits */


typedef struct {
    EVP_PKEY  *pkey;
    char       kid[64];
    int        alg;          /* NGX_HTTP_HPKI_JWS_RS256 or _ES256 */
} ngx_http_hpki_jws_key_t;


/*
 * Loads a private or public key from a PEM file: RSA (>= 2048 bits) gives
 * RS256, EC P-256 gives ES256, anything else fails.  kid: 1-63 printable
 * ASCII characters, or NULL for the RFC 7638 JWK thumbprint (43 chars).
 * Returns 0 or -1; on success free with ngx_http_hpki_jws_key_free().
 */
int ngx_http_hpki_jws_key_load(ngx_http_hpki_jws_key_t *k,
    const char *pem_path, const char *kid);
void ngx_http_hpki_jws_key_free(ngx_http_hpki_jws_key_t *k);

/* "RS256", "ES256" or NULL */
const char *ngx_http_hpki_jws_alg_name(int alg);

/*
 * Signs claims (a JSON object) with a private key: header
 * {"alg","typ":"JWT","kid"}; ES256 signatures are raw r||s (64 bytes).
 * Returns a malloc()ed NUL-terminated compact token (caller free()s), or NULL.
 */
char *ngx_http_hpki_jws_sign(ngx_http_hpki_jws_key_t *k, json_t *claims);

/*
 * Verifies a compact token of at most NGX_HTTP_HPKI_JWS_MAX_TOKEN bytes:
 * exactly three non-empty base64url parts (strict: no padding, no other
 * characters, zero trailing bits); header a JSON object without "crit";
 * "typ", if present, "JWT"; key chosen by "kid", or the only key if the
 * header has no "kid"; header "alg" must equal that key's algorithm (so
 * "none", HS256 and any mismatch are refused).  Returns the claims object
 * (caller json_decref()s) or NULL with a short static string in *err.
 * Claims are not checked here: see ngx_http_hpki_jwt_check().
 */
json_t *ngx_http_hpki_jws_verify(const char *token, size_t len,
    ngx_http_hpki_jws_key_t *keys, size_t nkeys, const char **err);

/*
 * Checks claims: "iss" equals iss; "aud" equals aud or is an array holding
 * it; "exp" (integer) > now - leeway; "nbf" (integer, optional)
 * <= now + leeway; "iat" (integer) present and <= now + leeway; "sub" and
 * "jti" non-empty strings.  iss and aud must not be NULL.
 * Returns 0, or -1 with a short static string in *err.
 */
int ngx_http_hpki_jwt_check(json_t *claims, const char *iss, const char *aud,
    long now, long leeway, const char **err);

/*
 * JWKS document {"keys":[...]} (kty, use "sig", alg, kid, and RSA n/e or
 * EC crv/x/y) for the keys; malloc()ed text (caller free()s), or NULL.
 */
char *ngx_http_hpki_jwks(ngx_http_hpki_jws_key_t *keys, size_t n);

/*
 * base64url without padding.  encode: writes a NUL-terminated string,
 * returns its length, or -1 if size is too small (needs (4 * len + 2) / 3
 * + 1).  decode: strict (alphabet A-Z a-z 0-9 - _, no padding, length mod 4
 * != 1, unused trailing bits zero); returns the decoded length, or -1.
 */
int ngx_http_hpki_base64url_encode(const unsigned char *in, size_t len,
    char *out, size_t size);
int ngx_http_hpki_base64url_decode(const char *in, size_t len,
    unsigned char *out, size_t size);


#endif /* _NGX_HTTP_HPKI_JWS_H_INCLUDED_ */
