/*
 * hpki-signd.conf parser, shared by hpki-signd and hpki-admin.
 */

#ifndef HPKI_CONF_H
#define HPKI_CONF_H

#include <sys/types.h>


#define HPKI_CONF_MAX_UIDS  16
#define HPKI_CONF_MAX_KEYS  8


typedef struct {
    char   *name;               /* "store-a" / "store-b"; AAD prefix */
    char   *prefix;             /* "hpki:a" / "hpki:b" */
    char   *redis;
    char   *user;
    char   *password_file;
    char   *kek;
} hpki_conf_store_t;


typedef struct {
    char               *file;

    char               *listen;
    mode_t              socket_mode;
    uid_t               allow_uid[HPKI_CONF_MAX_UIDS];
    int                 nallow_uid;
    char               *pid_file;
    int                 workers;
    int                 worker_cpu_affinity;    /* 1: auto */

    char               *redis;
    char               *redis_user;
    char               *redis_password_file;

    hpki_conf_store_t   store[2];

    char               *token_public_key[HPKI_CONF_MAX_KEYS];
    int                 ntoken_public_key;
    char               *token_issuer;
    char               *token_audience;
    int                 token_cache_ttl;    /* s, 0..60; 0: off */
    int                 share_cache_ttl;    /* s, 0..60; 0: off */
    int                 record_cache_ttl;   /* s, 0..60; 0: off */

    char               *audit_log;
    int                 log_level;

    char               *enroll_url;     /* hpki-admin enroll-code: base URL */
} hpki_conf_t;


int hpki_conf_load(hpki_conf_t *cf, const char *file);
void hpki_conf_free(hpki_conf_t *cf);
const char *hpki_conf_default_file(void);

#endif /* HPKI_CONF_H */
