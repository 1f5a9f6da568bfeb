/*
 * Redis access (blocking hiredis) for hpki-signd and hpki-admin.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/crypto.h>

#include "hpki_core.h"
#include "hpki_store.h"


#define HPKI_REDIS_TIMEOUT_MS   2000


/* addr: "host:port" or "unix:/path" */

redisContext *
hpki_redis_connect(const char *addr, const char *user,
    const char *password_file)
{
    char            host[256], *colon, *pw;
    size_t          pwlen;
    redisReply     *r;
    redisContext   *c;
    struct timeval  tv;

    tv.tv_sec = HPKI_REDIS_TIMEOUT_MS / 1000;
    tv.tv_usec = (HPKI_REDIS_TIMEOUT_MS % 1000) * 1000;
    pw = NULL;

    if (strncmp(addr, "unix:", 5) == 0) {
        c = redisConnectUnixWithTimeout(addr + 5, tv);

    } else {
        if (strlen(addr) >= sizeof(host)) {
            return NULL;
        }
        strcpy(host, addr);
        colon = strrchr(host, ':');
        if (colon == NULL) {
            hpki_log(HPKI_LOG_ERROR, "bad redis address \"%s\"", addr);
            return NULL;
        }
        *colon = '\0';
        c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    }

    if (c == NULL || c->err) {
        hpki_log(HPKI_LOG_ERROR, "redis %s: %s", addr,
                 c ? c->errstr : "out of memory");
        goto failed;
    }

    redisSetTimeout(c, tv);

    if (password_file == NULL) {
        return c;
    }

    if (hpki_read_file(password_file, (u_char **) &pw, &pwlen) != 0) {
        hpki_log(HPKI_LOG_ERROR, "cannot read redis password file \"%s\"",
                 password_file);
        goto failed;
    }

    while (pwlen > 0 && (pw[pwlen - 1] == '\n' || pw[pwlen - 1] == '\r')) {
        pw[--pwlen] = '\0';
    }

    if (user != NULL) {
        r = redisCommand(c, "AUTH %s %b", user, pw, pwlen);
    } else {
        r = redisCommand(c, "AUTH %b", pw, pwlen);
    }

    OPENSSL_cleanse(pw, pwlen);
    free(pw);

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        hpki_log(HPKI_LOG_ERROR, "redis %s: AUTH as \"%s\" failed", addr,
                 user ? user : "default");
        if (r != NULL) {
            freeReplyObject(r);
        }
        goto failed;
    }

    freeReplyObject(r);
    return c;

failed:

    if (c != NULL) {
        redisFree(c);
    }

    return NULL;
}


redisContext *
hpki_redis_public(const hpki_conf_t *cf)
{
    return hpki_redis_connect(cf->redis, cf->redis_user,
                              cf->redis_password_file);
}


redisContext *
hpki_redis_store(const hpki_conf_store_t *st)
{
    if (st->redis == NULL) {
        hpki_log(HPKI_LOG_ERROR, "%s: no redis endpoint configured",
                 st->name);
        return NULL;
    }

    return hpki_redis_connect(st->redis, st->user, st->password_file);
}


int
hpki_share_key(char *buf, size_t size, const hpki_conf_store_t *st,
    const char *user, unsigned long version)
{
    int  n;

    n = snprintf(buf, size, "%s:%s:%lu", st->prefix, user, version);
    return (n > 0 && (size_t) n < size) ? 0 : -1;
}


static char *
hpki_strndup(const char *p, size_t n)
{
    char  *s;

    s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }

    return s;
}


int
hpki_key_record_load(redisContext *c, const char *user,
    hpki_key_record_t *rec)
{
    memset(rec, 0, sizeof(*rec));

    if (hpki_key_record_send(c, user) != 0) {
        hpki_log(HPKI_LOG_ERROR, "redis: %s", c->errstr);
        return HPKI_STORE_ERROR;
    }

    return hpki_key_record_recv(c, user, rec);
}


/* HGETALL hpki:key:<user>, sent without waiting for the reply */

int
hpki_key_record_send(redisContext *c, const char *user)
{
    int  done;

    if (redisAppendCommand(c, "HGETALL hpki:key:%s", user) != REDIS_OK) {
        return -1;
    }

    do {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return -1;
        }
    } while (!done);

    return 0;
}


/* the reply to hpki_key_record_send() */

int
hpki_key_record_recv(redisContext *c, const char *user,
    hpki_key_record_t *rec)
{
    int          rc;
    size_t       i;
    void        *reply;
    redisReply  *r, *k, *v;

    memset(rec, 0, sizeof(*rec));
    rc = HPKI_STORE_ERROR;

    if (redisGetReply(c, &reply) != REDIS_OK || reply == NULL) {
        hpki_log(HPKI_LOG_ERROR, "redis: %s", c->errstr);
        return HPKI_STORE_ERROR;
    }

    r = reply;

    if (r->type != REDIS_REPLY_ARRAY) {
        hpki_log(HPKI_LOG_ERROR, "redis: HGETALL hpki:key:%s failed", user);
        goto done;
    }

    if (r->elements == 0) {
        rc = HPKI_STORE_MISSING;
        goto done;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = r->element[i];
        v = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (strcmp(k->str, "kid") == 0 && v->len <= HPKI_KID_MAX) {
            memcpy(rec->kid, v->str, v->len);
            rec->kid[v->len] = '\0';

        } else if (strcmp(k->str, "bits") == 0) {
            rec->bits = atoi(v->str);

        } else if (strcmp(k->str, "n") == 0) {
            BN_hex2bn(&rec->n, v->str);

        } else if (strcmp(k->str, "e") == 0) {
            BN_hex2bn(&rec->e, v->str);

        } else if (strcmp(k->str, "version") == 0) {
            rec->version = strtoul(v->str, NULL, 10);

        } else if (strcmp(k->str, "status") == 0) {
            rec->active = strcmp(v->str, "active") == 0;

        } else if (strcmp(k->str, "cert") == 0 && v->len > 0) {
            rec->cert = hpki_strndup(v->str, v->len);

        } else if (strcmp(k->str, "chain") == 0 && v->len > 0) {
            rec->chain = hpki_strndup(v->str, v->len);
        }
    }

    if (rec->n == NULL || rec->e == NULL || rec->version == 0) {
        hpki_log(HPKI_LOG_ERROR, "hpki:key:%s is incomplete", user);
        goto done;
    }

    rc = HPKI_STORE_OK;

done:

    freeReplyObject(r);

    if (rc != HPKI_STORE_OK) {
        hpki_key_record_free(rec);
    }

    return rc;
}


/* a deep copy; on failure dst holds nothing */

int
hpki_key_record_copy(hpki_key_record_t *dst, const hpki_key_record_t *src)
{
    *dst = *src;

    dst->n = BN_dup(src->n);
    dst->e = BN_dup(src->e);
    dst->cert = src->cert ? strdup(src->cert) : NULL;
    dst->chain = src->chain ? strdup(src->chain) : NULL;

    if (dst->n == NULL || dst->e == NULL
        || (src->cert != NULL && dst->cert == NULL)
        || (src->chain != NULL && dst->chain == NULL))
    {
        hpki_key_record_free(dst);
        return -1;
    }

    return 0;
}


void
hpki_key_record_free(hpki_key_record_t *rec)
{
    BN_free(rec->n);
    BN_free(rec->e);
    free(rec->cert);
    free(rec->chain);
    rec->n = NULL;
    rec->e = NULL;
    rec->cert = NULL;
    rec->chain = NULL;
}


/*
 * Server-assisted caching (Redis 6 and later): a second connection,
 * subscribed to __redis__:invalidate, to which Redis reports every change
 * of a key that rc has read since tracking was turned on for rc.  NULL,
 * and nothing tracked, if Redis or its ACL refuses.
 */

redisContext *
hpki_redis_track(redisContext *rc, const hpki_conf_t *cf)
{
    long long      id;
    redisReply    *r;
    redisContext  *track;

    track = hpki_redis_public(cf);
    if (track == NULL) {
        return NULL;
    }

    r = redisCommand(track, "CLIENT ID");
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        goto refused;
    }

    id = r->integer;
    freeReplyObject(r);

    r = redisCommand(track, "SUBSCRIBE __redis__:invalidate");
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        goto refused;
    }

    freeReplyObject(r);

    r = redisCommand(rc, "CLIENT TRACKING on REDIRECT %lld", id);
    if (r == NULL || r->type != REDIS_REPLY_STATUS) {
        goto refused;
    }

    freeReplyObject(r);
    return track;

refused:

    hpki_log(HPKI_LOG_WARN, "redis: no tracking of key records (%s): "
             "each is read for every request",
             r && r->type == REDIS_REPLY_ERROR ? r->str
             : rc->err ? rc->errstr : track->errstr);

    if (r != NULL) {
        freeReplyObject(r);
    }

    redisFree(track);
    return NULL;
}


/*
 * What the tracking connection has received, without waiting: fn(data,
 * key, len) for each key changed, with key NULL for all of them (a flush).
 * -1 once the connection is closed or broken: from then on nothing is
 * reported, so nothing read before may be trusted.
 */

int
hpki_redis_track_read(redisContext *track, hpki_redis_invalidate_pt fn,
    void *data)
{
    char         buf[4096];
    void        *reply;
    size_t       i;
    ssize_t      n;
    redisReply  *r, *keys;

    for ( ;; ) {
        n = recv(track->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n > 0) {
            if (redisReaderFeed(track->reader, buf, n) != REDIS_OK) {
                return -1;
            }
            continue;
        }

        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }

        return -1;
    }

    for ( ;; ) {
        if (redisReaderGetReply(track->reader, &reply) != REDIS_OK) {
            return -1;
        }

        if (reply == NULL) {
            return 0;
        }

        r = reply;

        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
            && r->element[0]->type == REDIS_REPLY_STRING
            && strcmp(r->element[0]->str, "message") == 0)
        {
            keys = r->element[2];

            if (keys->type == REDIS_REPLY_ARRAY) {
                for (i = 0; i < keys->elements; i++) {
                    if (keys->element[i]->type == REDIS_REPLY_STRING) {
                        fn(data, keys->element[i]->str,
                           keys->element[i]->len);
                    }
                }

            } else {
                fn(data, NULL, 0);
            }
        }

        freeReplyObject(r);
    }
}
