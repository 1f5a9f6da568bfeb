/*
 * Certificate inspection and signature verification for the receiving side
 * (a pharmacy checking that a *doctor* signed a prescription): the core of
 * POST /hpki/verify and of "hpki-admin cert inspect".  Pure C on OpenSSL
 * (libcrypto) and jansson; no nginx calls, so it can be unit-tested, fuzzed
 * and linked into hpki-admin.
 *
 * Nothing here reads a file on the request path: the trust store is loaded
 * once (ngx_http_hpki_inspect_store_load) and then only read, so one store
 * may serve every request of a process.
 */


#ifndef _NGX_HTTP_HPKI_INSPECT_H_INCLUDED_
#define _NGX_HTTP_HPKI_INSPECT_H_INCLUDED_


#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>
#include <jansson.h>


/* hash algorithms (the same numbers as the sign protocol's) */
#define NGX_HTTP_HPKI_INSPECT_SHA256       1
#define NGX_HTTP_HPKI_INSPECT_SHA384       2
#define NGX_HTTP_HPKI_INSPECT_SHA512       3

/* hard limits */
#define NGX_HTTP_HPKI_INSPECT_BODY_MAX     65536  /* request body, bytes */
#define NGX_HTTP_HPKI_INSPECT_CERT_MAX     16384  /* "certificate" text */
#define NGX_HTTP_HPKI_INSPECT_CHAIN_MAX    8      /* extra certificates */
#define NGX_HTTP_HPKI_INSPECT_SIG_MAX      1024   /* RSA-8192 */
#define NGX_HTTP_HPKI_INSPECT_DIGEST_MAX   64
#define NGX_HTTP_HPKI_INSPECT_FILE_CERTS   64     /* certificates per file */

/* ngx_http_hpki_inspect_verify_sig() results besides 1 and 0 */
#define NGX_HTTP_HPKI_INSPECT_ERROR        -1     /* bad arguments */
#define NGX_HTTP_HPKI_INSPECT_NOT_RSA      -2     /* the key is not RSA */

/* ngx_http_hpki_inspect_parse() results besides 0 */
#define NGX_HTTP_HPKI_INSPECT_BAD          -1     /* *err says why: a 400 */
#define NGX_HTTP_HPKI_INSPECT_NOMEM        -2     /* a 500 */


typedef struct ngx_http_hpki_inspect_store_s  ngx_http_hpki_inspect_store_t;


/* a parsed POST /hpki/verify body */

typedef struct {
    int                          hash_alg;      /* NGX_HTTP_HPKI_INSPECT_SHA* */
    int                          pss;           /* sig_alg "rsa-pss" */
    unsigned char                digest[NGX_HTTP_HPKI_INSPECT_DIGEST_MAX];
    size_t                       dlen;
    unsigned char               *sig;           /* malloc()ed */
    size_t                       slen;
    X509                        *cert;          /* the signer's */
    STACK_OF(X509)              *chain;         /* more sent: untrusted */
} ngx_http_hpki_inspect_req_t;


/*
 * The trust store.  Each of ca_files is a PEM bundle (one or more
 * certificates) or one DER certificate; every certificate must be a CA.
 * Self-signed ones become trust anchors, the others intermediates that
 * chains may use but that are not trusted by themselves.  Each of crl_files
 * is a PEM bundle of CRLs or one DER CRL; each CRL must be issued by one of
 * the CA certificates (checked here, signature included).  With any CRL,
 * every certificate of a chain below its anchor must be covered by a CRL
 * (X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL), else the chain fails
 * with "unable to get certificate CRL".
 *
 * Returns NULL with a reason in err (NUL-terminated, cut to size) on
 * failure.  n == 0 gives an empty store: every chain fails.
 */
ngx_http_hpki_inspect_store_t *ngx_http_hpki_inspect_store_load(
    const char **ca_files, size_t n, const char **crl_files, size_t ncrl,
    char *err, size_t size);
void ngx_http_hpki_inspect_store_free(ngx_http_hpki_inspect_store_t *st);

/* trust anchors, intermediates and CRLs loaded (for logs and tests) */
void ngx_http_hpki_inspect_store_count(ngx_http_hpki_inspect_store_t *st,
    size_t *anchors, size_t *intermediates, size_t *crls);


/*
 * What a certificate is, checked against the store at time "now", with
 * "extra" (may be NULL) as further untrusted intermediates:
 *
 *   {"role": "Medical Doctor" | null,           hcRole
 *    "subject": "...", "issuer": "...",         RFC 2253
 *    "serial": "0123AB",                        hex, as $ssl_client_serial
 *    "not_before": "2024-04-01T00:00:00Z", "not_after": "...",
 *    "chain": "ok" | OpenSSL's reason, e.g. "certificate has expired",
 *    "key_usage": ["nonRepudiation", ...],
 *    "kind": "signing" | "authentication" | "other",
 *    "revocation": "good" | "revoked" | "unknown"}
 *
 * kind: "signing" for an HPKI signing certificate (keyUsage nonRepudiation
 * and a policy under 1.2.392.100495.1.5.1.1), "authentication" for an HPKI
 * authentication one (digitalSignature, 1.2.392.100495.1.5.1.2), "other"
 * for anything else, CA certificates and certificates that claim both.
 *
 * revocation: "unknown" without CRLs, or when the issuer is not known, or
 * no CRL of the store is the issuer's current one (right name, signature by
 * the issuer's key, within thisUpdate..nextUpdate); "revoked" when that CRL
 * lists the certificate; "good" when it does not.
 *
 * NULL only when out of memory.
 */
json_t *ngx_http_hpki_inspect_cert(ngx_http_hpki_inspect_store_t *st,
    X509 *cert, STACK_OF(X509) *extra, time_t now);


/*
 * Verifies an RSA signature of a digest with the certificate's public key:
 * PKCS#1 v1.5 (DigestInfo of hash_alg), or with pss set RSASSA-PSS with
 * MGF1 of the same hash and a salt exactly as long as the digest (as
 * /hpki/sign makes them; other salt lengths are refused, not guessed).
 * dlen must be hash_alg's digest length.
 *
 * 1: valid; 0: invalid; NGX_HTTP_HPKI_INSPECT_NOT_RSA: the certificate's
 * key is not an RSA key (HPKI keys are; ECDSA and RSA-PSS-only keys are
 * refused); NGX_HTTP_HPKI_INSPECT_ERROR: bad arguments.
 */
int ngx_http_hpki_inspect_verify_sig(X509 *cert, int hash_alg, int pss,
    const unsigned char *digest, size_t dlen, const unsigned char *sig,
    size_t slen);


/*
 * Parses a POST /hpki/verify body (at most 64 KiB):
 *
 *   {"hash": BASE64,             the digest that was signed
 *    "hash_alg": "sha256",       sha256 (default) | sha384 | sha512
 *    "sig_alg": "rsa-pkcs1",     rsa-pkcs1 (default) | rsa-pss
 *    "signature": BASE64,
 *    "certificate": TEXT,        PEM (the signer's first, then any
 *                                intermediates) or base64 DER; <= 16 KiB
 *    "chain": [TEXT, ...]}       optional: more intermediates (<= 8), as
 *                                /hpki/sign returns them
 *
 * Base64 is the standard alphabet with padding ("=") required; base64 DER
 * may contain line breaks.  Unknown members are ignored.
 *
 * Returns 0 with req filled (free with ngx_http_hpki_inspect_req_free), or
 * NGX_HTTP_HPKI_INSPECT_BAD with a static English reason in *err, or
 * NGX_HTTP_HPKI_INSPECT_NOMEM.  req is left empty on failure.
 */
int ngx_http_hpki_inspect_parse(const char *body, size_t len,
    ngx_http_hpki_inspect_req_t *req, const char **err);
void ngx_http_hpki_inspect_req_free(ngx_http_hpki_inspect_req_t *req);


/*
 * The answer of POST /hpki/verify: ngx_http_hpki_inspect_cert()'s object
 * preceded by
 *
 *   "valid": true | false,
 *   "reasons": [...]            what failed, empty when valid
 *
 * valid is true only if the signature verifies, the chain is "ok", the
 * certificate is an HPKI signing certificate ("kind": "signing") with an
 * hcRole, and it is not revoked ("unknown" passes: configure CRLs to rule
 * it out).  NULL only when out of memory.
 */
json_t *ngx_http_hpki_inspect_verify(ngx_http_hpki_inspect_store_t *st,
    ngx_http_hpki_inspect_req_t *req, time_t now);


/* certificates from PEM (several) or DER (one) bytes; NULL if none */
STACK_OF(X509) *ngx_http_hpki_inspect_read_certs(const unsigned char *data,
    size_t len);


#endif /* _NGX_HTTP_HPKI_INSPECT_H_INCLUDED_ */
