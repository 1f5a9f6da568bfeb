
/*
 * HPKI certificate helpers: hcRole, certificate kind, x5t#S256, serial and
 * issuer text.  Pure C on OpenSSL (libcrypto); no nginx calls, so the file
 * can be unit-tested and fuzzed on its own.
 */


#ifndef _NGX_HTTP_HPKI_CERT_H_INCLUDED_
#define _NGX_HTTP_HPKI_CERT_H_INCLUDED_


#include <stddef.h>
#include <openssl/x509.h>


/* hard limits */
#define NGX_HTTP_HPKI_HCROLE_MAX_INPUT  8192   /* extension contents, bytes */
#define NGX_HTTP_HPKI_HCROLE_MAX_ROLE   128    /* role, UTF-8 bytes, no NUL */

/* ngx_http_hpki_cert_kind() bits */
#define NGX_HTTP_HPKI_CERT_AUTH         0x01   /* digitalSignature + 5.1.2 */
#define NGX_HTTP_HPKI_CERT_SIGN         0x02   /* nonRepudiation + 5.1.1 */
#define NGX_HTTP_HPKI_CERT_JPKI_AUTH    0x04   /* JPKI user authentication */
#define NGX_HTTP_HPKI_CERT_JPKI_SIGN    0x08   /* JPKI signing: never login */

/* 43 base64url characters + NUL */
#define NGX_HTTP_HPKI_X5T_LEN           44


/*
 * Parses the DER contents of a subjectDirectoryAttributes extension
 * (SEQUENCE OF Attribute), finds the hcRole attribute (1.0.17090.0.1), whose
 * values may be a SET OF HCActor or the field shape SET { SET OF HCActor },
 * and copies to "role" the codeDataFreeText of the first HCActor whose
 * codingSchemeReference is 1.2.392.100495.1.6.1.1, as NUL-terminated UTF-8
 * (UTF8String, PrintableString, BMPString, and ASCII-only TeletexString;
 * UniversalString is refused; control characters are refused).
 * Returns 0, or -1 if absent, malformed, longer than the limits or "size".
 */
int ngx_http_hpki_hcrole_parse(const unsigned char *der, size_t len,
    char *role, size_t size);

/* hcRole of a certificate: 0 or -1 (no or duplicated extension, bad role) */
int ngx_http_hpki_cert_role(X509 *x, char *role, size_t size);

/*
 * NGX_HTTP_HPKI_CERT_AUTH if keyUsage has digitalSignature and a certificate
 * policy is 1.2.392.100495.1.5.1.2 or under it; NGX_HTTP_HPKI_CERT_SIGN if
 * keyUsage has nonRepudiation and a policy is 1.2.392.100495.1.5.1.1 or under
 * it; NGX_HTTP_HPKI_CERT_JPKI_AUTH for a My Number card's user
 * authentication certificate (policy 1.2.392.200149.8.5.1.3, digitalSignature
 * without nonRepudiation), NGX_HTTP_HPKI_CERT_JPKI_SIGN for its signing one
 * (1.2.392.200149.8.5.1.1, which carries the holder's home address); 0 if
 * none, if keyUsage is absent or the extensions are invalid.
 */
int ngx_http_hpki_cert_kind(X509 *x);

/* base64url SHA-256 of the DER (RFC 8705 x5t#S256); 43 chars, size >= 44 */
int ngx_http_hpki_cert_x5t(X509 *x, char *out, size_t size);

/*
 * Serial number as uppercase hex, two digits per byte, "-" if negative,
 * "00" for zero (as nginx's $ssl_client_serial); 0 or -1 if it does not fit.
 */
int ngx_http_hpki_cert_serial_hex(X509 *x, char *out, size_t size);

/* issuer DN, RFC 2253 one-line (as nginx's $ssl_client_i_dn); 0 or -1 */
int ngx_http_hpki_cert_issuer_text(X509 *x, char *out, size_t size);


#endif /* _NGX_HTTP_HPKI_CERT_H_INCLUDED_ */
