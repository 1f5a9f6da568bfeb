/*
 * hpki-signd.conf parser: one directive per line, "name value...",
 * '#' starts a comment.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hpki_core.h"
#include "hpki_conf.h"


#define HPKI_CONF_MAX_ARGS  (HPKI_CONF_MAX_UIDS + 1)


static int hpki_conf_set_str(char **slot, int argc, char **argv);
static int hpki_conf_directive(hpki_conf_t *cf, int argc, char **argv);


const char *
hpki_conf_default_file(void)
{
    const char  *p;

    p = getenv("HPKI_SIGND_CONF");
    return p ? p : "/etc/hpki/hpki-signd.conf";
}


static int
hpki_conf_set_str(char **slot, int argc, char **argv)
{
    if (argc != 2) {
        return -1;
    }

    free(*slot);
    *slot = strdup(argv[1]);
    return *slot ? 0 : -1;
}


static int
hpki_conf_parse_int(const char *s, long min, long max, int base, long *out)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, base);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max) {
        return -1;
    }

    *out = v;
    return 0;
}


static int
hpki_conf_directive(hpki_conf_t *cf, int argc, char **argv)
{
    int                 i;
    long                v;
    const char         *name, *d;
    hpki_conf_store_t  *st;

    name = argv[0];

    if (strcmp(name, "listen") == 0) {
        return hpki_conf_set_str(&cf->listen, argc, argv);
    }

    if (strcmp(name, "socket_mode") == 0) {
        if (argc != 2 || hpki_conf_parse_int(argv[1], 0, 0777, 8, &v) != 0) {
            return -1;
        }
        cf->socket_mode = (mode_t) v;
        return 0;
    }

    if (strcmp(name, "allow_uid") == 0) {
        if (argc < 2) {
            return -1;
        }
        for (i = 1; i < argc; i++) {
            if (cf->nallow_uid == HPKI_CONF_MAX_UIDS
                || hpki_conf_parse_int(argv[i], 0, 0x7fffffff, 10, &v) != 0)
            {
                return -1;
            }
            cf->allow_uid[cf->nallow_uid++] = (uid_t) v;
        }
        return 0;
    }

    if (strcmp(name, "pid_file") == 0) {
        return hpki_conf_set_str(&cf->pid_file, argc, argv);
    }

    if (strcmp(name, "workers") == 0) {
        if (argc != 2 || hpki_conf_parse_int(argv[1], 0, 64, 10, &v) != 0) {
            return -1;
        }
        cf->workers = (int) v;
        return 0;
    }

    if (strcmp(name, "worker_cpu_affinity") == 0) {
        if (argc != 2) {
            return -1;
        }
        if (strcmp(argv[1], "auto") == 0) {
            cf->worker_cpu_affinity = 1;
        } else if (strcmp(argv[1], "off") == 0) {
            cf->worker_cpu_affinity = 0;
        } else {
            return -1;
        }
        return 0;
    }

    if (strcmp(name, "redis") == 0) {
        return hpki_conf_set_str(&cf->redis, argc, argv);
    }

    if (strcmp(name, "redis_user") == 0) {
        return hpki_conf_set_str(&cf->redis_user, argc, argv);
    }

    if (strcmp(name, "redis_password_file") == 0) {
        return hpki_conf_set_str(&cf->redis_password_file, argc, argv);
    }

    if (strncmp(name, "store_a_", 8) == 0 || strncmp(name, "store_b_", 8) == 0)
    {
        st = &cf->store[name[6] == 'a' ? 0 : 1];
        d = name + 8;

        if (strcmp(d, "redis") == 0) {
            return hpki_conf_set_str(&st->redis, argc, argv);
        }
        if (strcmp(d, "user") == 0) {
            return hpki_conf_set_str(&st->user, argc, argv);
        }
        if (strcmp(d, "password_file") == 0) {
            return hpki_conf_set_str(&st->password_file, argc, argv);
        }
        if (strcmp(d, "kek") == 0) {
            return hpki_conf_set_str(&st->kek, argc, argv);
        }
        return -1;
    }

    if (strcmp(name, "token_public_key") == 0) {
        if (argc != 2 || cf->ntoken_public_key == HPKI_CONF_MAX_KEYS) {
            return -1;
        }
        cf->token_public_key[cf->ntoken_public_key] = strdup(argv[1]);
        if (cf->token_public_key[cf->ntoken_public_key] == NULL) {
            return -1;
        }
        cf->ntoken_public_key++;
        return 0;
    }

    if (strcmp(name, "token_issuer") == 0) {
        return hpki_conf_set_str(&cf->token_issuer, argc, argv);
    }

    if (strcmp(name, "token_audience") == 0) {
        return hpki_conf_set_str(&cf->token_audience, argc, argv);
    }

    if (strcmp(name, "token_cache_ttl") == 0
        || strcmp(name, "share_cache_ttl") == 0
        || strcmp(name, "record_cache_ttl") == 0)
    {
        if (argc != 2 || hpki_conf_parse_int(argv[1], 0, 60, 10, &v) != 0) {
            return -1;
        }
        if (name[0] == 't') {
            cf->token_cache_ttl = (int) v;
        } else if (name[0] == 's') {
            cf->share_cache_ttl = (int) v;
        } else {
            cf->record_cache_ttl = (int) v;
        }
        return 0;
    }

    if (strcmp(name, "audit_log") == 0) {
        return hpki_conf_set_str(&cf->audit_log, argc, argv);
    }

    if (strcmp(name, "enroll_url") == 0) {
        return hpki_conf_set_str(&cf->enroll_url, argc, argv);
    }

    if (strcmp(name, "log_level") == 0) {
        if (argc != 2 || (i = hpki_log_level_parse(argv[1])) < 0) {
            return -1;
        }
        cf->log_level = i;
        return 0;
    }

    return -1;
}


int
hpki_conf_load(hpki_conf_t *cf, const char *file)
{
    int     argc, lineno, rc;
    char    line[4096], *p, *argv[HPKI_CONF_MAX_ARGS];
    FILE   *fp;

    memset(cf, 0, sizeof(*cf));
    cf->socket_mode = 0660;
    cf->workers = 0;
    cf->log_level = HPKI_LOG_INFO;
    cf->token_cache_ttl = 60;
    cf->share_cache_ttl = 60;
    cf->record_cache_ttl = 1;
    cf->store[0].name = "store-a";
    cf->store[0].prefix = "hpki:a";
    cf->store[1].name = "store-b";
    cf->store[1].prefix = "hpki:b";
    cf->file = strdup(file);

    fp = fopen(file, "re");
    if (fp == NULL) {
        hpki_log(HPKI_LOG_ERROR, "cannot open config \"%s\": %s", file,
                 strerror(errno));
        return -1;
    }

    rc = -1;
    lineno = 0;

    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;

        p = strchr(line, '#');
        if (p != NULL) {
            *p = '\0';
        }

        argc = 0;
        p = line;

        for ( ;; ) {
            while (*p && isspace((u_char) *p)) {
                p++;
            }
            if (*p == '\0') {
                break;
            }
            if (argc == HPKI_CONF_MAX_ARGS) {
                goto bad;
            }
            argv[argc++] = p;
            while (*p && !isspace((u_char) *p)) {
                p++;
            }
            if (*p) {
                *p++ = '\0';
            }
        }

        if (argc == 0) {
            continue;
        }

        if (hpki_conf_directive(cf, argc, argv) != 0) {
            goto bad;
        }
    }

    if (cf->listen == NULL || cf->redis == NULL) {
        hpki_log(HPKI_LOG_ERROR, "%s: \"listen\" and \"redis\" are required",
                 file);
        goto done;
    }

    if (cf->nallow_uid == 0) {
        cf->allow_uid[cf->nallow_uid++] = getuid();
    }

    rc = 0;
    goto done;

bad:

    hpki_log(HPKI_LOG_ERROR, "%s:%d: invalid directive \"%s\"", file, lineno,
             argc ? argv[0] : "");

done:

    fclose(fp);
    return rc;
}


void
hpki_conf_free(hpki_conf_t *cf)
{
    int  i;

    free(cf->file);
    free(cf->listen);
    free(cf->pid_file);
    free(cf->redis);
    free(cf->redis_user);
    free(cf->redis_password_file);

    for (i = 0; i < 2; i++) {
        free(cf->store[i].redis);
        free(cf->store[i].user);
        free(cf->store[i].password_file);
        free(cf->store[i].kek);
    }

    for (i = 0; i < cf->ntoken_public_key; i++) {
        free(cf->token_public_key[i]);
    }

    free(cf->token_issuer);
    free(cf->token_audience);
    free(cf->audit_log);
    free(cf->enroll_url);
}
