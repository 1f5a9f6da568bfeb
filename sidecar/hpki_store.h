/*
 * Redis access (blocking hiredis): connections with ACL users, the public
 * key record hpki:key:<id> and the share keys hpki:{a,b}:<id>:<version>.
 */

#ifndef HPKI_STORE_H
#define HPKI_STORE_H

#include <hiredis/hiredis.h>
#include <openssl/bn.h>

#include "hpki_conf.h"


#define HPKI_KID_MAX    64

#define HPKI_STORE_OK       0
#define HPKI_STORE_MISSING  1
#define HPKI_STORE_ERROR    (-1)


typedef struct {
    char            kid[HPKI_KID_MAX + 1];
    int             bits;
    BIGNUM         *n;
    BIGNUM         *e;
    unsigned long   version;
    int             active;
    char           *cert;           /* PEM or NULL */
    char           *chain;          /* PEM or NULL */
} hpki_key_record_t;


redisContext *hpki_redis_connect(const char *addr, const char *user,
    const char *password_file);
redisContext *hpki_redis_public(const hpki_conf_t *cf);
redisContext *hpki_redis_store(const hpki_conf_store_t *st);

int hpki_key_record_load(redisContext *rc, const char *user,
    hpki_key_record_t *rec);
int hpki_key_record_send(redisContext *rc, const char *user);
int hpki_key_record_recv(redisContext *rc, const char *user,
    hpki_key_record_t *rec);
int hpki_key_record_copy(hpki_key_record_t *dst,
    const hpki_key_record_t *src);
void hpki_key_record_free(hpki_key_record_t *rec);

typedef void (*hpki_redis_invalidate_pt)(void *data, const char *key,
    size_t len);

redisContext *hpki_redis_track(redisContext *rc, const hpki_conf_t *cf);
int hpki_redis_track_read(redisContext *track, hpki_redis_invalidate_pt fn,
    void *data);

int hpki_share_key(char *buf, size_t size, const hpki_conf_store_t *st,
    const char *user, unsigned long version);

#endif /* HPKI_STORE_H */
