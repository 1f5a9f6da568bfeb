/*
 * Append-only, hash-chained audit log.
 *
 *   TIME user=U kid=K ver=V jti=J req=R alg=A digest=HEX result=RES prev=H
 *
 * H is the hex SHA-256 of the previous line (without its newline); the
 * first line carries 64 zeros.  Each line is one write() on an O_APPEND
 * descriptor.  Values are restricted to printable characters without
 * spaces, so a line cannot be forged by a crafted request id.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "hpki_core.h"
#include "hpki_audit.h"


#define HPKI_AUDIT_ZERO \
    "0000000000000000000000000000000000000000000000000000000000000000"


static void
hpki_audit_hash(const char *line, size_t len, char *out)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256((const u_char *) line, len, md);
    hpki_hex(out, md, sizeof(md));
}


/* copies s into p with anything outside 0x21..0x7e replaced by '?' */

static size_t
hpki_audit_value(char *p, size_t room, const char *s, size_t max)
{
    size_t  i;

    if (s == NULL || *s == '\0') {
        s = "-";
    }

    for (i = 0; s[i] && i < max && i + 1 < room; i++) {
        p[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
    }

    return i;
}


int
hpki_audit_open(hpki_audit_t *a, const char *path)
{
    int      fd;
    char     tail[HPKI_AUDIT_LINE_MAX + 2], *p, *end;
    off_t    size, off;
    ssize_t  n;

    a->fd = -1;
    memcpy(a->prev, HPKI_AUDIT_ZERO, 65);

    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1) {
        hpki_log(HPKI_LOG_ERROR, "cannot open audit log \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    size = lseek(fd, 0, SEEK_END);
    if (size > 0) {
        off = size > (off_t) sizeof(tail) - 1 ? size - (off_t) sizeof(tail) + 1
                                               : 0;
        n = pread(fd, tail, size - off, off);
        if (n != size - off) {
            hpki_log(HPKI_LOG_ERROR, "cannot read audit log \"%s\"", path);
            close(fd);
            return -1;
        }

        end = tail + n;
        if (end > tail && end[-1] == '\n') {
            end--;
        }
        *end = '\0';

        p = memrchr(tail, '\n', end - tail);
        p = p ? p + 1 : tail;

        hpki_audit_hash(p, end - p, a->prev);
    }

    a->fd = fd;
    return 0;
}


int
hpki_audit_write(hpki_audit_t *a, const hpki_audit_rec_t *r)
{
    char             line[HPKI_AUDIT_LINE_MAX], hex[2 * 64 + 1], ts[40];
    size_t           n;
    struct tm        tm;
    struct timespec  now;

    if (a->fd == -1) {
        return -1;
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);

    if (r->digest_len > 64) {
        return -1;
    }
    hpki_hex(hex, r->digest, r->digest_len);

#define HPKI_AUDIT_KV(key, val, max)                                         \
    n += snprintf(line + n, sizeof(line) - n, " " key "=");                  \
    n += hpki_audit_value(line + n, sizeof(line) - n, val, max);

    n = snprintf(line, sizeof(line), "%s", ts);
    HPKI_AUDIT_KV("user", r->user, 64);
    HPKI_AUDIT_KV("kid", r->kid, 64);
    n += snprintf(line + n, sizeof(line) - n, " ver=%lu", r->version);
    HPKI_AUDIT_KV("jti", r->jti, 128);
    HPKI_AUDIT_KV("req", r->request_id, 128);
    HPKI_AUDIT_KV("alg", r->alg, 32);
    HPKI_AUDIT_KV("digest", r->digest_len ? hex : "-", 128);
    HPKI_AUDIT_KV("result", r->result, 32);
    n += snprintf(line + n, sizeof(line) - n, " prev=%s", a->prev);

#undef HPKI_AUDIT_KV

    if (n + 1 >= sizeof(line)) {
        return -1;
    }

    hpki_audit_hash(line, n, a->prev);
    line[n++] = '\n';

    if (write(a->fd, line, n) != (ssize_t) n) {
        hpki_log(HPKI_LOG_ERROR, "audit log write failed: %s",
                 strerror(errno));
        return -1;
    }

    return 0;
}


void
hpki_audit_close(hpki_audit_t *a)
{
    if (a->fd != -1) {
        close(a->fd);
        a->fd = -1;
    }
}


/*
 * Returns the number of lines if the chain holds, -1 otherwise with
 * *bad_line set to the first line that does not follow (0: unreadable).
 */

long
hpki_audit_verify(const char *path, long *bad_line)
{
    char     prev[65], *line, *p;
    long     lineno;
    size_t   cap;
    ssize_t  len;
    FILE    *fp;

    *bad_line = 0;
    line = NULL;
    cap = 0;
    lineno = 0;
    memcpy(prev, HPKI_AUDIT_ZERO, 65);

    fp = fopen(path, "re");
    if (fp == NULL) {
        return -1;
    }

    while ((len = getline(&line, &cap, fp)) != -1) {
        lineno++;

        if (len == 0 || line[len - 1] != '\n') {
            goto bad;
        }
        line[--len] = '\0';

        p = strstr(line, " prev=");
        if (p == NULL || strlen(p + 6) != 64 || strcmp(p + 6, prev) != 0) {
            goto bad;
        }

        hpki_audit_hash(line, len, prev);
    }

    free(line);
    fclose(fp);
    return lineno;

bad:

    *bad_line = lineno;
    free(line);
    fclose(fp);
    return -1;
}
