/*
 * hpki-signd / hpki-admin: shared small utilities (logging, buffers).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "hpki_core.h"


int          hpki_log_level = HPKI_LOG_INFO;
const char  *hpki_log_role = "hpki";

static const char  *hpki_log_names[] = { "error", "warn", "info", "debug" };


void
hpki_log(int level, const char *fmt, ...)
{
    char             line[1024], ts[32];
    size_t           n;
    va_list          ap;
    struct tm        tm;
    struct timespec  now;

    if (level > hpki_log_level) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);

    n = snprintf(line, sizeof(line), "%s [%s] %s[%d]: ", ts,
                 hpki_log_names[level], hpki_log_role, (int) getpid());

    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);

    n = strlen(line);
    line[n++] = '\n';

    if (write(STDERR_FILENO, line, n) < 0) {
        /* nothing sensible to do */
    }
}


int
hpki_log_level_parse(const char *s)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strcmp(s, hpki_log_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


int
hpki_buf_reserve(hpki_buf_t *b, size_t more)
{
    size_t   cap;
    u_char  *p;

    if (b->len + more <= b->cap) {
        return 0;
    }

    cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more) {
        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->cap = cap;
    return 0;
}


int
hpki_buf_append(hpki_buf_t *b, const void *p, size_t n)
{
    if (hpki_buf_reserve(b, n) != 0) {
        return -1;
    }

    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}


void
hpki_buf_consume(hpki_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }

    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}


void
hpki_buf_free(hpki_buf_t *b)
{
    if (b->data != NULL) {
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
    }

    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


/* user ids match [A-Za-z0-9._@-]{1,64} */

int
hpki_user_valid(const char *s, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > HPKI_USER_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_'
              || c == '@' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


void
hpki_hex(char *out, const u_char *p, size_t n)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 0x0f];
    }

    out[2 * n] = '\0';
}


int
hpki_read_file(const char *path, u_char **out, size_t *len)
{
    int          fd, rc;
    ssize_t      n;
    hpki_buf_t   b = { NULL, 0, 0 };

    rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }

    for ( ;; ) {
        if (hpki_buf_reserve(&b, 4096 + 1) != 0) {
            goto done;
        }

        n = read(fd, b.data + b.len, 4096);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            goto done;
        }

        if (n == 0) {
            break;
        }

        b.len += n;
    }

    if (hpki_buf_reserve(&b, 1) != 0) {
        goto done;
    }

    b.data[b.len] = '\0';
    *out = b.data;
    *len = b.len;
    b.data = NULL;
    rc = 0;

done:

    close(fd);
    hpki_buf_free(&b);
    return rc;
}


/* no core dumps, no ptrace */

void
hpki_harden_process(void)
{
    struct rlimit  rl = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        hpki_log(HPKI_LOG_WARN, "setrlimit(RLIMIT_CORE) failed: %s",
                 strerror(errno));
    }

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        hpki_log(HPKI_LOG_WARN, "prctl(PR_SET_DUMPABLE) failed: %s",
                 strerror(errno));
    }
}
