/*
 * hpki-signd share worker: one process per pool slot, exec'd by the
 * combiner with "--worker a|b" and the combiner's socket on fd 3.
 *
 * A share-A worker reads only KEK A and only store A (its own Redis
 * connection and ACL user); share B likewise.  It checks the caller's
 * token itself, so a compromised combiner cannot make it sign for another
 * user, and computes x^share mod n in constant time.
 *
 * Decrypted shares are kept in the locked secure heap, keyed by (user,
 * version), for at most share_cache_ttl seconds after they were read: a
 * job for a version the worker does not hold reads the store again (a
 * refresh moves the version; the older share is then wiped).  At most
 * HPKI_SHARE_CACHE_MAX shares are held; the least recently used is wiped
 * first; all are wiped on exit.  Whether a key may sign at all (revoked,
 * deleted) is decided by the combiner from the public record on every
 * request.
 */

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "hpki_core.h"
#include "hpki_frame.h"
#include "hpki_rsa.h"
#include "hpki_store.h"
#include "hpki_token.h"
#include "hpki_signd.h"


#define HPKI_SHARE_CACHE_MAX    64
#define HPKI_SECURE_HEAP        (1 << 18)   /* shares, KEK, BN_CTX */
#define HPKI_SECURE_HEAP_MIN    (1 << 16)


typedef struct {
    char                 user[HPKI_USER_MAX + 1];
    unsigned long        version;
    u_char               nfp[HPKI_SEAL_NFP];    /* SHA-256(n), checked */
    BIGNUM              *share;                 /* secure heap; NULL: free */
    uint64_t             until;                 /* monotonic ms */
    uint64_t             used;                  /* LRU stamp */
} hpki_signd_share_t;


typedef struct {
    hpki_conf_t         *cf;
    hpki_conf_store_t   *store;
    u_char              *kek;
    redisContext        *redis;
    hpki_token_ctx_t     token;
    BN_CTX              *bn;
    hpki_buf_t           in;
    hpki_buf_t           out;
    int                  ncache;                /* 0: no share cache */
    uint64_t             ttl;                   /* ms */
    uint64_t             tick;
    hpki_signd_share_t   cache[HPKI_SHARE_CACHE_MAX];
} hpki_signd_worker_t;


static volatile sig_atomic_t  hpki_signd_worker_stop;


static int hpki_signd_worker_handle(hpki_signd_worker_t *w,
    hpki_frame_t *f);
static int hpki_signd_worker_partial(hpki_signd_worker_t *w,
    hpki_frame_t *f, BIGNUM *y, const char **msg);
static int hpki_signd_worker_write(hpki_signd_worker_t *w);
static BIGNUM *hpki_signd_worker_share(hpki_signd_worker_t *w,
    const char *user, unsigned long version, const BIGNUM *n, int *code,
    const char **msg);
static void hpki_signd_worker_evict(hpki_signd_share_t *e);


static void
hpki_signd_worker_signal(int signo)
{
    (void) signo;
    hpki_signd_worker_stop = 1;

    /* a read() already waiting returns 0 at once (async-signal-safe) */
    shutdown(HPKI_SIGND_WORKER_FD, SHUT_RD);
}


static uint64_t
hpki_signd_worker_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
hpki_signd_worker_main(hpki_conf_t *cf, int share)
{
    int                   rc, i;
    ssize_t               n;
    struct pollfd         pfd;
    hpki_frame_t         *f;
    struct sigaction      sa;
    struct sched_param    sp;
    static hpki_signd_worker_t  w;

    memset(&w, 0, sizeof(w));
    w.cf = cf;
    w.store = &cf->store[share];
    hpki_log_role = share == 0 ? "signd-a" : "signd-b";

    hpki_harden_process();

    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        hpki_log(HPKI_LOG_WARN, "mlockall failed: %s (shares still live in "
                 "the locked secure heap)", strerror(errno));
    }

    /*
     * SCHED_BATCH: a worker woken with a job does not preempt the
     * combiner, which would otherwise wait a whole partial, runnable,
     * before it could hand the other share its job
     */

    memset(&sp, 0, sizeof(sp));
    if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0) {
        hpki_log(HPKI_LOG_WARN, "SCHED_BATCH refused: %s", strerror(errno));
    }

    /* SIGTERM (the combiner stopping) ends the loop: shares are wiped */

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = hpki_signd_worker_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /*
     * The secure heap is mmap'd, mlock'd and excluded from core dumps; it
     * holds the KEK, the cached shares and the BN_CTX.  If the larger heap
     * cannot be locked (RLIMIT_MEMLOCK), fall back to the small one and
     * cache fewer shares.
     */

    w.ncache = HPKI_SHARE_CACHE_MAX;

    if (CRYPTO_secure_malloc_init(HPKI_SECURE_HEAP, 32) != 1) {
        CRYPTO_secure_malloc_done();
        w.ncache = 4;

        if (CRYPTO_secure_malloc_init(HPKI_SECURE_HEAP_MIN, 32) != 1) {
            hpki_log(HPKI_LOG_ERROR, "cannot create the secure heap");
            return 2;
        }
    }

    w.ttl = 1000 * (uint64_t) cf->share_cache_ttl;
    if (w.ttl == 0) {
        w.ncache = 0;
    }

    w.kek = OPENSSL_secure_malloc(HPKI_KEK_LEN);
    f = malloc(sizeof(hpki_frame_t));
    w.bn = BN_CTX_secure_new();

    if (w.kek == NULL || f == NULL || w.bn == NULL) {
        return 2;
    }

    if (w.store->kek == NULL
        || hpki_kek_load(w.store->kek, w.kek) != 0
        || hpki_token_init(&w.token, cf) != 0)
    {
        return 2;
    }

    w.redis = hpki_redis_store(w.store);

    hpki_log(HPKI_LOG_DEBUG, "%s worker ready", w.store->name);

    rc = 0;

    while (!hpki_signd_worker_stop) {
        if (hpki_buf_reserve(&w.in, 16384) != 0) {
            rc = 2;
            break;
        }

        /*
         * wait in poll() for POLLIN only: a read() that blocks is also
         * woken each time the combiner reads this worker's answer
         */

        pfd.fd = HPKI_SIGND_WORKER_FD;
        pfd.events = POLLIN;

        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = 2;
            break;
        }

        n = read(HPKI_SIGND_WORKER_FD, w.in.data + w.in.len, 16384);
        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;                  /* the combiner is gone */
        }

        w.in.len += n;

        for ( ;; ) {
            n = hpki_frame_decode(w.in.data, w.in.len, f);

            if (n == HPKI_FRAME_AGAIN) {
                break;
            }

            if (n == HPKI_FRAME_BAD) {
                hpki_log(HPKI_LOG_ERROR, "bad frame from the combiner");
                rc = 2;
                goto done;
            }

            if (hpki_signd_worker_handle(&w, f) != 0) {
                rc = 2;
                goto done;
            }

            hpki_buf_consume(&w.in, f->size);
        }
    }

done:

    for (i = 0; i < HPKI_SHARE_CACHE_MAX; i++) {
        hpki_signd_worker_evict(&w.cache[i]);
    }

    OPENSSL_secure_clear_free(w.kek, HPKI_KEK_LEN);
    BN_CTX_free(w.bn);
    if (w.redis) {
        redisFree(w.redis);
    }
    free(f);
    return rc;
}


static int
hpki_signd_worker_handle(hpki_signd_worker_t *w, hpki_frame_t *f)
{
    int                  code, len;
    size_t               start;
    u_char               val[HPKI_RSA_MAX_BYTES];
    BIGNUM              *y;
    const char          *msg;
    const hpki_field_t  *job;

    job = hpki_frame_field(f, HPKI_TAG_JOB);
    if (f->type != HPKI_T_PARTIAL || job == NULL || job->len != 4) {
        hpki_log(HPKI_LOG_ERROR, "unexpected frame from the combiner");
        return -1;
    }

    msg = "internal error";
    y = BN_new();

    code = y ? hpki_signd_worker_partial(w, f, y, &msg) : HPKI_E_INTERNAL;

    w->out.len = 0;

    if (code == 0) {
        len = BN_num_bytes(y);
        if (len > HPKI_RSA_MAX_BYTES || BN_bn2bin(y, val) != len) {
            code = HPKI_E_INTERNAL;
        }
    }

    if (code == 0) {
        start = hpki_frame_begin(&w->out, HPKI_T_PARTIAL_OK);
        hpki_frame_add(&w->out, HPKI_TAG_JOB, job->data, 4);
        hpki_frame_add(&w->out, HPKI_TAG_VALUE, val, len);

    } else {
        start = hpki_frame_begin(&w->out, HPKI_T_ERROR);
        hpki_frame_add(&w->out, HPKI_TAG_JOB, job->data, 4);
        hpki_frame_add_u16(&w->out, HPKI_TAG_CODE, (uint16_t) code);
        hpki_frame_add(&w->out, HPKI_TAG_MESSAGE, msg, strlen(msg));
    }

    BN_free(y);

    if (hpki_frame_end(&w->out, start) != 0) {
        return -1;
    }

    return hpki_signd_worker_write(w);
}


/* returns 0 or an error code, *msg says why (no secrets) */

static int
hpki_signd_worker_partial(hpki_signd_worker_t *w, hpki_frame_t *f,
    BIGNUM *y, const char **msg)
{
    int                  code;
    char                 user[HPKI_USER_MAX + 1];
    char                 jti[HPKI_JTI_MAX + 1];
    BIGNUM              *n, *x, *share;
    unsigned long        version;
    const hpki_field_t  *fu, *fv, *fn, *fx, *ft;

    code = HPKI_E_INTERNAL;
    share = NULL;

    fu = hpki_frame_field(f, HPKI_TAG_USER);
    fv = hpki_frame_field(f, HPKI_TAG_VERSION);
    fn = hpki_frame_field(f, HPKI_TAG_MODULUS);
    fx = hpki_frame_field(f, HPKI_TAG_VALUE);
    ft = hpki_frame_field(f, HPKI_TAG_TOKEN);

    if (fu == NULL || fv == NULL || fn == NULL || fx == NULL || ft == NULL
        || fv->len != 4 || !hpki_user_valid((char *) fu->data, fu->len)
        || fn->len > HPKI_RSA_MAX_BYTES || fx->len > fn->len)
    {
        *msg = "bad partial request";
        return HPKI_E_BAD_REQUEST;
    }

    memcpy(user, fu->data, fu->len);
    user[fu->len] = '\0';
    version = hpki_get_u32(fv->data);

    /* the share holder checks the authorisation itself */

    if (hpki_token_verify(&w->token, ft->data, ft->len, user, jti,
                          sizeof(jti)) != 0)
    {
        *msg = "token not accepted by the share holder";
        return HPKI_E_UNAUTHORIZED;
    }

    BN_CTX_start(w->bn);
    n = BN_CTX_get(w->bn);
    x = BN_CTX_get(w->bn);

    if (x == NULL
        || BN_bin2bn(fn->data, fn->len, n) == NULL
        || BN_bin2bn(fx->data, fx->len, x) == NULL)
    {
        goto done;
    }

    if (!BN_is_odd(n) || BN_num_bits(n) < 1024 || BN_cmp(x, n) >= 0) {
        *msg = "bad partial request";
        code = HPKI_E_BAD_REQUEST;
        goto done;
    }

    share = hpki_signd_worker_share(w, user, version, n, &code, msg);
    if (share == NULL) {
        goto done;
    }

    if (hpki_rsa_partial(y, x, share, n, w->bn) != 0) {
        code = HPKI_E_INTERNAL;
        goto done;
    }

    code = 0;

done:

    /* an uncached share (share_cache_ttl 0) is wiped at once */

    if (share != NULL && w->ncache == 0) {
        BN_clear_free(share);
    }

    BN_CTX_end(w->bn);
    return code;
}


/*
 * The share of (user, version) for modulus n: from the cache, or read from
 * the store, opened and (if caching) kept.  A cached share is used only if
 * n is the modulus it was sealed with, as for a fresh one.  NULL: *code
 * and *msg say why.
 */

static BIGNUM *
hpki_signd_worker_share(hpki_signd_worker_t *w, const char *user,
    unsigned long version, const BIGNUM *n, int *code, const char **msg)
{
    int                  i, rc, attempt;
    char                 key[160], aad[160];
    u_char               nfp[HPKI_SEAL_NFP];
    BIGNUM              *share;
    uint64_t             now;
    redisReply          *r;
    hpki_signd_share_t  *e, *slot;

    *code = HPKI_E_INTERNAL;
    now = hpki_signd_worker_now();
    slot = NULL;

    if (hpki_share_nfp(n, nfp) != 0) {
        return NULL;
    }

    for (i = 0; i < w->ncache; i++) {
        e = &w->cache[i];

        if (e->share != NULL && now >= e->until) {
            hpki_signd_worker_evict(e);         /* too old: read again */
        }

        if (e->share == NULL || strcmp(e->user, user) != 0) {
            continue;
        }

        if (e->version != version) {
            hpki_signd_worker_evict(e);         /* another version */
            slot = e;
            continue;
        }

        if (CRYPTO_memcmp(e->nfp, nfp, HPKI_SEAL_NFP) != 0) {
            /*
             * Another modulus: a new key under the same user and version
             * (delete, then generate), or a tampered record.  The store
             * decides: the share is read and its sealed n checked again.
             */
            hpki_signd_worker_evict(e);
            slot = e;
            break;
        }

        e->used = ++w->tick;
        return e->share;
    }

    /* read and open the share */

    if (hpki_share_key(key, sizeof(key), w->store, user, version) != 0
        || hpki_share_aad(aad, sizeof(aad), w->store->name, user, version)
           < 0)
    {
        return NULL;
    }

    /* a connection that died with a Redis restart: once more, anew */

    for (attempt = 0; attempt < 2; attempt++) {

        if (w->redis == NULL) {
            w->redis = hpki_redis_store(w->store);
        }

        r = w->redis ? redisCommand(w->redis, "GET %s", key) : NULL;

        if (r != NULL || w->redis == NULL) {
            break;
        }

        redisFree(w->redis);
        w->redis = NULL;
    }

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        hpki_log(HPKI_LOG_ERROR, "%s: cannot read the share store",
                 w->store->name);
        if (r == NULL && w->redis != NULL) {
            redisFree(w->redis);
            w->redis = NULL;
        }
        if (r != NULL) {
            freeReplyObject(r);
        }
        *msg = "share store unavailable";
        *code = HPKI_E_UNAVAILABLE;
        return NULL;
    }

    if (r->type != REDIS_REPLY_STRING) {
        hpki_log(HPKI_LOG_WARN, "%s: no share for \"%s\" version %lu",
                 w->store->name, user, version);
        freeReplyObject(r);
        *msg = "no share";
        *code = HPKI_E_NO_KEY;
        return NULL;
    }

    /* a cache slot: the user's old version, a free one, or the LRU one */

    for (i = 0; slot == NULL && i < w->ncache; i++) {
        if (w->cache[i].share == NULL) {
            slot = &w->cache[i];
        }
    }

    if (slot == NULL) {
        for (i = 0; i < w->ncache; i++) {
            if (slot == NULL || w->cache[i].used < slot->used) {
                slot = &w->cache[i];
            }
        }
    }

    if (slot != NULL) {
        hpki_signd_worker_evict(slot);
    }

    share = BN_secure_new();

    rc = share ? hpki_share_open(w->kek, aad, (u_char *) r->str, r->len, n,
                                 share)
               : -1;

    freeReplyObject(r);

    if (share == NULL) {
        return NULL;
    }

    if (rc != 0) {
        hpki_log(HPKI_LOG_ERROR, "ALARM %s: share for \"%s\" version %lu %s",
                 w->store->name, user, version,
                 rc == -2 ? "belongs to another modulus"
                          : "fails authentication (corrupt or tampered)");
        BN_clear_free(share);
        *msg = "share unusable";
        *code = HPKI_E_SIGN_FAILED;
        return NULL;
    }

    if (slot == NULL) {
        return share;                   /* no cache: the caller wipes it */
    }

    memcpy(slot->user, user, strlen(user) + 1);
    slot->version = version;
    memcpy(slot->nfp, nfp, HPKI_SEAL_NFP);
    slot->share = share;
    slot->until = now + w->ttl;
    slot->used = ++w->tick;

    hpki_log(HPKI_LOG_DEBUG, "%s: share for \"%s\" version %lu loaded",
             w->store->name, user, version);

    return share;
}


static void
hpki_signd_worker_evict(hpki_signd_share_t *e)
{
    if (e->share != NULL) {
        BN_clear_free(e->share);
    }

    OPENSSL_cleanse(e, sizeof(*e));
}


static int
hpki_signd_worker_write(hpki_signd_worker_t *w)
{
    size_t   off;
    ssize_t  n;

    for (off = 0; off < w->out.len; off += n) {
        n = write(HPKI_SIGND_WORKER_FD, w->out.data + off, w->out.len - off);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            return -1;
        }
    }

    w->out.len = 0;
    return 0;
}
