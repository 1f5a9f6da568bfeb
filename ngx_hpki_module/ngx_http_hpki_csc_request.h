/*
 * The request bodies of the CSC API v2 methods credentials/list,
 * credentials/info, credentials/authorize and signatures/signHash: JSON
 * text in, validated fields or the CSC error out.  Pure C on jansson and
 * OpenSSL (libcrypto); no nginx calls, so it can be unit-tested and fuzzed
 * (t/unit/csc.c, fuzz/fuzz_csc.c).  ngx_http_hpki_csc.c does the rest:
 * Redis, the SAD, hpki-signd.
 */


#ifndef _NGX_HTTP_HPKI_CSC_REQUEST_H_INCLUDED_
#define _NGX_HTTP_HPKI_CSC_REQUEST_H_INCLUDED_


#include <stddef.h>
#include <time.h>
#include <jansson.h>


/* the methods */
#define NGX_HTTP_HPKI_CSC_LIST          1
#define NGX_HTTP_HPKI_CSC_INFO          2
#define NGX_HTTP_HPKI_CSC_AUTHORIZE     3
#define NGX_HTTP_HPKI_CSC_SIGN          4

/* hard limits */
#define NGX_HTTP_HPKI_CSC_BODY_MAX      65536  /* request body, bytes */
#define NGX_HTTP_HPKI_CSC_HASHES_MAX    64     /* the sign protocol's */
#define NGX_HTTP_HPKI_CSC_DIGEST_MAX    64     /* SHA-512 */
#define NGX_HTTP_HPKI_CSC_SAD_MAX       128

/* hash algorithms and signature schemes: the sign protocol's numbers */
#define NGX_HTTP_HPKI_CSC_SHA256        1
#define NGX_HTTP_HPKI_CSC_SHA384        2
#define NGX_HTTP_HPKI_CSC_SHA512        3
#define NGX_HTTP_HPKI_CSC_PKCS1         1
#define NGX_HTTP_HPKI_CSC_PSS           2

/* "certificates" of credentials/list and /info */
#define NGX_HTTP_HPKI_CSC_CERTS_NONE    0
#define NGX_HTTP_HPKI_CSC_CERTS_SINGLE  1      /* the default */
#define NGX_HTTP_HPKI_CSC_CERTS_CHAIN   2

/* ngx_http_hpki_csc_parse() results */
#define NGX_HTTP_HPKI_CSC_OK            0
#define NGX_HTTP_HPKI_CSC_BAD           -1     /* a 400: error, description */
#define NGX_HTTP_HPKI_CSC_TOO_LARGE     -2     /* a 413 */
#define NGX_HTTP_HPKI_CSC_NOMEM         -3     /* a 500 */


typedef struct {
    const char                      *oid;
    int                              id;       /* NGX_HTTP_HPKI_CSC_SHA* */
    size_t                           len;      /* digest bytes */
} ngx_http_hpki_csc_hash_t;


/* a parsed request; the strings point into "body" */

typedef struct {
    int                              method;
    json_t                          *body;

    /* all but credentials/list */
    const char                      *credential_id;

    /* credentials/list and /info */
    int                              certificates;
    int                              cert_info;        /* "certInfo" true */
    int                              credential_info;  /* "credentialInfo" */

    /* credentials/authorize */
    json_int_t                       num_signatures;

    /* authorize with "hashes" (else hash_alg is NULL), and signHash */
    const ngx_http_hpki_csc_hash_t  *hash_alg;
    size_t                           ndigests;
    unsigned char                    digests[NGX_HTTP_HPKI_CSC_HASHES_MAX]
                                            [NGX_HTTP_HPKI_CSC_DIGEST_MAX];

    /*
     * authorize and signHash: the hashes as Redis keeps them, their base64
     * text space-separated ("" without hashes); malloc()ed
     */
    char                            *hash_list;
    size_t                           hash_list_len;

    /* signatures/signHash */
    int                              sig_alg;  /* NGX_HTTP_HPKI_CSC_PKCS1.. */
    const char                      *sad;
    size_t                           sad_len;
    time_t                           sad_expires;

    /* NGX_HTTP_HPKI_CSC_BAD: the CSC error and its description (static) */
    const char                      *error;
    const char                      *error_description;
} ngx_http_hpki_csc_req_t;


/*
 * The signature algorithm OIDs accepted by signHash, as /csc/v2/info and
 * credentials/info list them; NULL-terminated.  The first three imply
 * their hash (sha256/384/512WithRSAEncryption); rsaEncryption needs
 * hashAlgorithmOID, RSASSA-PSS needs signAlgoParams.
 */
extern const char  *ngx_http_hpki_csc_sign_algos[];


/*
 * Parses and checks the body of a method (NGX_HTTP_HPKI_CSC_LIST ...):
 * at most 64 KiB, a JSON object without duplicate keys, then what the CSC
 * API v2 specification asks of the method's parameters, with its wording
 * for the errors.  Hashes are standard base64 of the algorithm's digest
 * length, decoded as nginx's ngx_decode_base64() does; at most max_hashes
 * of them (1 to NGX_HTTP_HPKI_CSC_HASHES_MAX: hpki_sign_max_hashes) in one
 * request, and no more than numSignatures in authorize.  A SAD whose
 * expiry (the digits before its first ".") is not after "now" is refused.
 *
 * Returns NGX_HTTP_HPKI_CSC_OK with req filled (free it with
 * ngx_http_hpki_csc_req_free()), or NGX_HTTP_HPKI_CSC_BAD with req->error
 * and req->error_description set, or NGX_HTTP_HPKI_CSC_TOO_LARGE or
 * NGX_HTTP_HPKI_CSC_NOMEM; on failure nothing else is left in req.
 */
int ngx_http_hpki_csc_parse(int method, const char *text, size_t len,
    size_t max_hashes, time_t now, ngx_http_hpki_csc_req_t *req);
void ngx_http_hpki_csc_req_free(ngx_http_hpki_csc_req_t *req);


#endif /* _NGX_HTTP_HPKI_CSC_REQUEST_H_INCLUDED_ */
