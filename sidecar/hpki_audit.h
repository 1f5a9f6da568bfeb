/*
 * Append-only, hash-chained audit log: one line per signature.
 */

#ifndef HPKI_AUDIT_H
#define HPKI_AUDIT_H

#include <sys/types.h>


#define HPKI_AUDIT_LINE_MAX  2048


typedef struct {
    int     fd;
    char    prev[65];           /* hex SHA-256 of the previous line */
} hpki_audit_t;


typedef struct {
    const char     *user;
    const char     *kid;
    unsigned long   version;
    const char     *jti;
    const char     *request_id;
    const char     *alg;
    const u_char   *digest;
    size_t          digest_len;
    const char     *result;
} hpki_audit_rec_t;


int hpki_audit_open(hpki_audit_t *a, const char *path);
int hpki_audit_write(hpki_audit_t *a, const hpki_audit_rec_t *r);
void hpki_audit_close(hpki_audit_t *a);
long hpki_audit_verify(const char *path, long *bad_line);

#endif /* HPKI_AUDIT_H */
