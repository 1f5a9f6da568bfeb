
/*
 * WebAuthn verification: clientDataJSON, authenticator data, COSE keys,
 * "none" and "packed" attestation (libcbor, OpenSSL), and assertions
 * (libfido2's fido_assert_verify).  Pure C: no nginx calls, so the file can
 * be unit-tested and fuzzed on its own.
 */


#ifndef _NGX_HTTP_HPKI_WEBAUTHN_H_INCLUDED_
#define _NGX_HTTP_HPKI_WEBAUTHN_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>


/* hard limits */
#define NGX_HTTP_HPKI_WEBAUTHN_CLIENT_DATA_MAX  4096
#define NGX_HTTP_HPKI_WEBAUTHN_AUTHDATA_MAX     8192
#define NGX_HTTP_HPKI_WEBAUTHN_OBJECT_MAX       16384   /* attestationObject */
#define NGX_HTTP_HPKI_WEBAUTHN_SIG_MAX          1024
#define NGX_HTTP_HPKI_WEBAUTHN_CRED_ID_MAX      1023    /* WebAuthn's own */
#define NGX_HTTP_HPKI_WEBAUTHN_CHALLENGE_MAX    128     /* base64url chars */
#define NGX_HTTP_HPKI_WEBAUTHN_ORIGIN_MAX       512

/* authenticator data flags */
#define NGX_HTTP_HPKI_WEBAUTHN_UP               0x01
#define NGX_HTTP_HPKI_WEBAUTHN_UV               0x04
#define NGX_HTTP_HPKI_WEBAUTHN_AT               0x40
#define NGX_HTTP_HPKI_WEBAUTHN_ED               0x80

/* COSE algorithms accepted */
#define NGX_HTTP_HPKI_WEBAUTHN_ES256            (-7)
#define NGX_HTTP_HPKI_WEBAUTHN_RS256            (-257)


typedef struct {
    char                 challenge[NGX_HTTP_HPKI_WEBAUTHN_CHALLENGE_MAX + 1];
    char                 origin[NGX_HTTP_HPKI_WEBAUTHN_ORIGIN_MAX + 1];
    unsigned char        hash[32];          /* SHA-256 of the JSON */
} ngx_http_hpki_webauthn_client_t;


typedef struct {
    unsigned char        rp_id_hash[32];
    unsigned             flags;
    uint32_t             sign_count;

    /* attested credential data (flag AT) */
    unsigned char        aaguid[16];
    const unsigned char *cred_id;           /* points into the input */
    size_t               cred_id_len;
    int                  alg;               /* COSE */
    EVP_PKEY            *key;
} ngx_http_hpki_webauthn_authdata_t;


typedef struct {
    ngx_http_hpki_webauthn_authdata_t  ad;
    char                               fmt[16];    /* "none", "packed" */
    unsigned                           attested:1; /* packed with x5c */
    unsigned char                     *authdata;   /* malloc()ed copy */
    size_t                             authdata_len;
} ngx_http_hpki_webauthn_attestation_t;


/*
 * Parses clientDataJSON: "type" must equal type ("webauthn.create" or
 * "webauthn.get"), "challenge" a base64url string, "origin" a string, and
 * "crossOrigin", if present, false.  Returns 0, or -1 with *err.
 */
int ngx_http_hpki_webauthn_client_data(const unsigned char *json, size_t len,
    const char *type, ngx_http_hpki_webauthn_client_t *cd, const char **err);

/*
 * Parses authenticator data: rpIdHash, flags, signCount and, with flag AT,
 * the attested credential data and its COSE key (EC2 P-256 with ES256, or
 * RSA >= 2048 bits with RS256).  Extensions (flag ED) must be a CBOR map;
 * nothing may follow.  Returns 0 (free with ..._authdata_free()), or -1
 * with *err.
 */
int ngx_http_hpki_webauthn_authdata(const unsigned char *p, size_t len,
    ngx_http_hpki_webauthn_authdata_t *ad, const char **err);
void ngx_http_hpki_webauthn_authdata_free(
    ngx_http_hpki_webauthn_authdata_t *ad);

/*
 * rpIdHash is SHA-256(rp_id), UP is set, and UV if uv_required.
 */
int ngx_http_hpki_webauthn_check(const ngx_http_hpki_webauthn_authdata_t *ad,
    const char *rp_id, int uv_required, const char **err);

/*
 * Parses an attestationObject {fmt, attStmt, authData}: the authenticator
 * data must carry a credential; fmt "none" has an empty attStmt, "packed"
 * a signature over authData || clientDataHash by the credential key (self
 * attestation) or by the first x5c certificate, whose profile is checked
 * (no chain to a vendor root is required: attestation identifies the
 * model, the HPKI identity comes from the enrolment).  Returns 0 (free
 * with ..._attestation_free()), or -1 with *err.
 */
int ngx_http_hpki_webauthn_attestation(const unsigned char *obj, size_t len,
    const unsigned char client_data_hash[32],
    ngx_http_hpki_webauthn_attestation_t *att, const char **err);
void ngx_http_hpki_webauthn_attestation_free(
    ngx_http_hpki_webauthn_attestation_t *att);

/*
 * Verifies an assertion with libfido2: rpIdHash, UP (and UV if
 * uv_required), and the signature over authData || SHA-256(clientDataJSON)
 * by the stored public key (DER SubjectPublicKeyInfo) of COSE algorithm
 * alg.  Returns 0 with the authenticator's signCount, or -1 with *err.
 */
int ngx_http_hpki_webauthn_assertion(const char *rp_id,
    const unsigned char *authdata, size_t authdata_len,
    const unsigned char *client_data, size_t client_data_len,
    const unsigned char *sig, size_t sig_len, int alg,
    const unsigned char *spki, size_t spki_len, int uv_required,
    uint32_t *sign_count, const char **err);


#endif /* _NGX_HTTP_HPKI_WEBAUTHN_H_INCLUDED_ */
