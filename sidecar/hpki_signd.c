/*
 * hpki-signd: the two-share RSA signing daemon (combiner process).
 *
 * The combiner owns the unix socket and a poll() loop.  For each SIGN
 * request it checks the token, pads and blinds every digest, and hands
 * one job per digest to a share-A worker and one to a share-B worker at
 * the same time.  The public key record is read for every request,
 * unless Redis tracks the copy last read and has not reported it changed
 * (server-assisted caching, for at most record_cache_ttl): with the
 * user's last record at hand the partials start first and any read runs
 * while they compute.  When both partials are back, and the record allows
 * it, it multiplies them, unblinds, checks s^e == EM with the public key
 * and only then replies.  Share workers are separate exec'd
 * processes (hpki_signd_worker.c); the combiner never opens a KEK.  A
 * thread of its own, at SCHED_IDLE, makes the blinding pairs.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <openssl/crypto.h>

#include "hpki_core.h"
#include "hpki_conf.h"
#include "hpki_frame.h"
#include "hpki_rsa.h"
#include "hpki_store.h"
#include "hpki_token.h"
#include "hpki_audit.h"
#include "hpki_signd.h"


#define HPKI_SIGND_MAX_CONNS        1024
#define HPKI_SIGND_MAX_WORKERS      64
#define HPKI_SIGND_REQUEST_TIMEOUT  30000       /* ms */
#define HPKI_SIGND_DRAIN_TIMEOUT    30000       /* ms */
#define HPKI_SIGND_RESPAWN_DELAY    1000        /* ms */
#define HPKI_SIGND_REQID_MAX        128
#define HPKI_SIGND_KEYS             64          /* public keys cached */
#define HPKI_SIGND_BLIND            16          /* pairs made at once */
#define HPKI_SIGND_BLIND_STOCK      32          /* pairs kept per key */
#define HPKI_SIGND_HINTS            256         /* users' last records */


typedef struct hpki_signd_conn_s    hpki_signd_conn_t;
typedef struct hpki_signd_req_s     hpki_signd_req_t;
typedef struct hpki_signd_job_s     hpki_signd_job_t;
typedef struct hpki_signd_worker_s  hpki_signd_worker_t;


struct hpki_signd_job_s {
    hpki_signd_req_t       *req;
    hpki_signd_job_t       *next;
    uint32_t                id;
    int                     index;          /* digest */
    int                     share;          /* 0: A, 1: B */
};


struct hpki_signd_req_s {
    hpki_signd_conn_t      *conn;           /* NULL once detached */
    int                     ndigests;
    int                     pending;        /* jobs not yet answered */
    int                     error;          /* first error code */
    const char             *message;
    int                     hash_alg;
    int                     sig_alg;
    size_t                  dlen;
    int                     k;              /* modulus bytes */
    uint64_t                deadline;
    RSA                    *pub;            /* the partials' key */
    BN_MONT_CTX            *mont;           /* its own: keys are evicted */
    unsigned long           version;        /* and share version */
    unsigned                restart:1;      /* the record read differs */
    hpki_key_record_t       rec;
    char                    user[HPKI_USER_MAX + 1];
    char                    jti[HPKI_JTI_MAX + 1];
    char                    request_id[HPKI_SIGND_REQID_MAX + 1];
    u_char                 *token;
    size_t                  token_len;
    u_char                  digest[HPKI_DIGESTS_MAX][64];
    u_char                 *em[HPKI_DIGESTS_MAX];
    BIGNUM                 *x[HPKI_DIGESTS_MAX];
    BIGNUM                 *rinv[HPKI_DIGESTS_MAX];
    BIGNUM                 *y[2][HPKI_DIGESTS_MAX];
    hpki_signd_job_t        jobs[2 * HPKI_DIGESTS_MAX];
};


struct hpki_signd_conn_s {
    int                     fd;
    hpki_buf_t              in;
    hpki_buf_t              out;
    hpki_signd_req_t       *req;
    hpki_signd_conn_t      *next;
    hpki_signd_conn_t      *prev;
    unsigned                eof:1;
    unsigned                closing:1;      /* close once out is flushed */
};


struct hpki_signd_worker_s {
    int                     share;
    int                     slot;
    pid_t                   pid;
    int                     fd;
    hpki_signd_job_t       *job;
    hpki_buf_t              in;
    uint64_t                spawned;
    uint64_t                respawn_at;     /* 0: running */
};


/*
 * A public key seen in a record, with what the combiner reuses for it:
 * the RSA object (OpenSSL caches its Montgomery form for the check of
 * every signature) and a stock of unused blinding pairs (r^e, r^-1), each
 * from its own random r, made a batch at a time with one inversion, and
 * each handed to exactly one digest.  Found by (n, e) from the record
 * read for every request, so a revoked or deleted key is still refused
 * at once; a new key for the same user simply gets another entry.
 *
 * The stock (a, ainv, npairs, want) is shared with the blinder thread
 * and guarded by blinder.lock; pub is set and cleared by the main thread
 * only, under the lock.
 */

typedef struct {
    RSA                    *pub;            /* NULL: free slot */
    BN_MONT_CTX            *mont;
    BIGNUM                 *a[HPKI_SIGND_BLIND_STOCK];      /* r^e R */
    BIGNUM                 *ainv[HPKI_SIGND_BLIND_STOCK];   /* r^-1 R^2 */
    int                     npairs;
    unsigned                want:1;         /* for the blinder */
    uint64_t                used;
} hpki_signd_key_t;


/*
 * The user's public record as last read: a request starts its partials
 * with its key and version at once and reads the record while they run
 * (see hpki_signd_sign()).  The record itself stands in for that read
 * only while it is cached: read while Redis tracked it (epoch is the
 * tracking's then, and still current), not reported changed since
 * (which clears epoch), and younger than record_cache_ttl.
 */

typedef struct {
    char                    user[HPKI_USER_MAX + 1];    /* "": free */
    hpki_key_record_t       rec;
    uint64_t                read_at;
    unsigned long           epoch;          /* 0: not cached */
} hpki_signd_hint_t;


/*
 * The blinder: a thread at SCHED_IDLE that restocks blinding pairs, woken
 * once the replies of a loop turn are out.  It runs on CPUs that would
 * otherwise idle and yields between the steps of a batch, so a request no
 * longer waits while a batch is made on a core that a partial needs.
 * Under full load it gets almost no CPU; a request that finds the stock
 * empty then makes a batch itself, as before.
 */

typedef struct {
    pthread_t               thread;
    pthread_mutex_t         lock;
    pthread_cond_t          cond;
    unsigned                running:1;
    unsigned                stop:1;
    unsigned                kick:1;         /* main thread: signal it */
} hpki_signd_blinder_t;


typedef struct {
    hpki_conf_t            *cf;
    char                    exe[PATH_MAX];
    char                    conf_path[PATH_MAX];
    int                     listen_fd;
    int                     signal_fd;
    int                     nworkers;
    int                     ncpus;          /* worker_cpu_affinity auto */
    int                     cpus[HPKI_SIGND_MAX_WORKERS];
    int                     stopping;
    uint64_t                stop_deadline;
    uint32_t                next_job;
    int                     nconns;
    hpki_signd_conn_t      *conns;
    hpki_signd_worker_t     workers[2][HPKI_SIGND_MAX_WORKERS];
    hpki_signd_job_t       *queue_head[2];
    hpki_signd_job_t       *queue_tail[2];
    hpki_token_ctx_t        token;
    hpki_audit_t            audit;
    redisContext           *redis;
    redisContext           *track;          /* its invalidations */
    unsigned long           track_epoch;    /* bumped when all are void */
    BN_CTX                 *bn;
    hpki_frame_t            frame;
    uint64_t                key_tick;
    hpki_signd_key_t        keys[HPKI_SIGND_KEYS];
    hpki_signd_blinder_t    blinder;
    hpki_signd_hint_t       hints[HPKI_SIGND_HINTS];
} hpki_signd_t;


static hpki_signd_t  hpki_signd;


static uint64_t hpki_signd_now(void);
static int hpki_signd_check_kek(const char *path);
static int hpki_signd_listen(hpki_signd_t *sd);
static int hpki_signd_spawn(hpki_signd_t *sd, hpki_signd_worker_t *w);
static void hpki_signd_worker_gone(hpki_signd_t *sd, hpki_signd_worker_t *w);
static void hpki_signd_worker_read(hpki_signd_t *sd, hpki_signd_worker_t *w);
static void hpki_signd_dispatch(hpki_signd_t *sd, int share);
static void hpki_signd_accept(hpki_signd_t *sd);
static void hpki_signd_conn_read(hpki_signd_t *sd, hpki_signd_conn_t *c);
static void hpki_signd_conn_write(hpki_signd_t *sd, hpki_signd_conn_t *c);
static void hpki_signd_conn_close(hpki_signd_t *sd, hpki_signd_conn_t *c);
static void hpki_signd_conn_process(hpki_signd_t *sd, hpki_signd_conn_t *c);
static void hpki_signd_sign(hpki_signd_t *sd, hpki_signd_conn_t *c,
    hpki_frame_t *f);
static void hpki_signd_job_done(hpki_signd_t *sd, hpki_signd_job_t *job,
    int code, const u_char *val, size_t len);
static void hpki_signd_finish(hpki_signd_t *sd, hpki_signd_req_t *req);
static void hpki_signd_reply_error(hpki_signd_conn_t *c, int code,
    const char *msg);
static void hpki_signd_audit(hpki_signd_t *sd, hpki_signd_req_t *req,
    const char *result);
static void hpki_signd_req_free(hpki_signd_req_t *req);
static int hpki_signd_record_load(hpki_signd_t *sd, hpki_signd_req_t *req,
    unsigned long *epoch);
static int hpki_signd_record_refused(int rc, const hpki_key_record_t *rec,
    const char **msg);
static void hpki_signd_record_check(hpki_signd_t *sd, hpki_signd_req_t *req,
    int local);
static int hpki_signd_start(hpki_signd_t *sd, hpki_signd_req_t *req,
    const BIGNUM *n, const BIGNUM *e, unsigned long version, int defer,
    const char **msg);
static int hpki_signd_local_share(hpki_signd_t *sd);
static void hpki_signd_req_reset(hpki_signd_req_t *req);
static redisContext *hpki_signd_redis(hpki_signd_t *sd,
    unsigned long *epoch);
static void hpki_signd_redis_drop(hpki_signd_t *sd);
static void hpki_signd_track_read(hpki_signd_t *sd);
static void hpki_signd_invalidate(void *data, const char *key, size_t len);
static int hpki_signd_record_cached(hpki_signd_t *sd, hpki_signd_req_t *req);
static hpki_signd_hint_t *hpki_signd_hint(hpki_signd_t *sd, const char *user);
static void hpki_signd_hint_set(hpki_signd_t *sd, const char *user,
    const hpki_key_record_t *rec, unsigned long epoch);
static hpki_signd_key_t *hpki_signd_key(hpki_signd_t *sd, const BIGNUM *n,
    const BIGNUM *e);
static void hpki_signd_key_free(hpki_signd_t *sd, hpki_signd_key_t *k);
static int hpki_signd_blind_take(hpki_signd_t *sd, hpki_signd_key_t *k,
    BIGNUM **a, BIGNUM **ainv);
static int hpki_signd_blind_pop(hpki_signd_t *sd, hpki_signd_key_t *k,
    BIGNUM **a, BIGNUM **ainv);
static int hpki_signd_blind_make(RSA *pub, BN_MONT_CTX *mont, BIGNUM **a,
    BIGNUM **ainv, int count, BN_CTX *ctx, void (*pause)(void));
static void hpki_signd_blinder_pause(void);
static void hpki_signd_blind_stock(hpki_signd_t *sd, hpki_signd_key_t *k,
    RSA *pub, BIGNUM **a, BIGNUM **ainv, int count);
static int hpki_signd_blinder_start(hpki_signd_t *sd);
static void hpki_signd_blinder_stop(hpki_signd_t *sd);
static void *hpki_signd_blinder(void *data);
static void hpki_signd_signals(hpki_signd_t *sd);
static void hpki_signd_timers(hpki_signd_t *sd);


static uint64_t
hpki_signd_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
hpki_signd_usage(void)
{
    fprintf(stderr, "usage: hpki-signd [-c FILE] [-t]\n"
            "  -c FILE  configuration (default $HPKI_SIGND_CONF or "
            "/etc/hpki/hpki-signd.conf)\n"
            "  -t       check the configuration and exit\n");
}


int
main(int argc, char **argv)
{
    int                   ch, test, share, i, s, nfds, idx, rc;
    long                  ncpu;
    ssize_t               n;
    sigset_t              mask;
    uint64_t              now, wait;
    const char           *file, *worker;
    hpki_signd_t         *sd;
    hpki_signd_conn_t    *c, *next;
    hpki_signd_worker_t  *w;
    static hpki_conf_t    cf;
    static struct pollfd  pfd[3 + 2 * HPKI_SIGND_MAX_WORKERS
                              + HPKI_SIGND_MAX_CONNS];
    static void          *ptr[3 + 2 * HPKI_SIGND_MAX_WORKERS
                              + HPKI_SIGND_MAX_CONNS];

    static const struct option  longopts[] = {
        { "worker", required_argument, NULL, 'W' },
        { NULL, 0, NULL, 0 }
    };

    sd = &hpki_signd;
    file = hpki_conf_default_file();
    worker = NULL;
    test = 0;
    hpki_log_role = "signd";

    while ((ch = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'W':
            worker = optarg;
            break;
        default:
            hpki_signd_usage();
            return 1;
        }
    }

    if (hpki_conf_load(&cf, file) != 0) {
        return 1;
    }

    hpki_log_level = cf.log_level;

    if (worker != NULL) {
        share = strcmp(worker, "a") == 0 ? 0 : strcmp(worker, "b") == 0 ? 1
                                                                         : -1;
        if (share < 0) {
            return 1;
        }
        return hpki_signd_worker_main(&cf, share);
    }

    /* combiner */

    memset(sd, 0, sizeof(*sd));
    sd->cf = &cf;
    sd->listen_fd = -1;
    sd->audit.fd = -1;

    hpki_harden_process();

    for (i = 0; i < 2; i++) {
        if (cf.store[i].kek == NULL || cf.store[i].redis == NULL) {
            hpki_log(HPKI_LOG_ERROR, "store_%c_redis and store_%c_kek are "
                     "required", 'a' + i, 'a' + i);
            return 1;
        }
        if (hpki_signd_check_kek(cf.store[i].kek) != 0) {
            return 1;
        }
    }

    if (hpki_token_init(&sd->token, &cf) != 0) {
        return 1;
    }

    if (cf.audit_log == NULL) {
        hpki_log(HPKI_LOG_ERROR, "audit_log is required");
        return 1;
    }

    if (test) {
        fprintf(stderr, "hpki-signd: configuration %s is ok\n", file);
        return 0;
    }

    if (hpki_audit_open(&sd->audit, cf.audit_log) != 0) {
        return 1;
    }

    n = readlink("/proc/self/exe", sd->exe, sizeof(sd->exe) - 1);
    if (n <= 0 || realpath(file, sd->conf_path) == NULL) {
        hpki_log(HPKI_LOG_ERROR, "cannot resolve own path or config path");
        return 1;
    }
    sd->exe[n] = '\0';

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    sd->nworkers = cf.workers ? cf.workers : (ncpu > 0 ? (int) ncpu : 1);
    if (sd->nworkers > HPKI_SIGND_MAX_WORKERS) {
        sd->nworkers = HPKI_SIGND_MAX_WORKERS;
    }

    sd->bn = BN_CTX_new();
    if (sd->bn == NULL) {
        return 1;
    }

    if (cf.worker_cpu_affinity) {
        cpu_set_t  set;

        if (sched_getaffinity(0, sizeof(set), &set) != 0) {
            hpki_log(HPKI_LOG_ERROR, "sched_getaffinity: %s",
                     strerror(errno));
            return 1;
        }

        for (i = 0; i < CPU_SETSIZE && sd->ncpus < HPKI_SIGND_MAX_WORKERS;
             i++)
        {
            if (CPU_ISSET(i, &set)) {
                sd->cpus[sd->ncpus++] = i;
            }
        }
    }

    /* SIGCHLD, SIGTERM, SIGINT via signalfd; workers get a clean mask */

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    sd->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sd->signal_fd == -1) {
        hpki_log(HPKI_LOG_ERROR, "signalfd: %s", strerror(errno));
        return 1;
    }

    if (hpki_signd_listen(sd) != 0 || hpki_signd_blinder_start(sd) != 0) {
        return 1;
    }

    for (s = 0; s < 2; s++) {
        for (i = 0; i < sd->nworkers; i++) {
            w = &sd->workers[s][i];
            w->share = s;
            w->slot = i;
            w->fd = -1;
            if (hpki_signd_spawn(sd, w) != 0) {
                return 1;
            }
        }
    }

    if (cf.pid_file != NULL) {
        FILE  *fp = fopen(cf.pid_file, "we");
        if (fp == NULL) {
            hpki_log(HPKI_LOG_ERROR, "cannot write pid_file \"%s\"",
                     cf.pid_file);
            return 1;
        }
        fprintf(fp, "%d\n", (int) getpid());
        fclose(fp);
    }

    hpki_log(HPKI_LOG_INFO, "listening on %s, %d worker(s) per share",
             cf.listen, sd->nworkers);

    for ( ;; ) {
        now = hpki_signd_now();

        if (sd->stopping) {
            if (sd->conns == NULL || now >= sd->stop_deadline) {
                break;
            }
        }

        nfds = 0;

        if (sd->listen_fd != -1) {
            pfd[nfds].fd = sd->listen_fd;
            pfd[nfds].events = POLLIN;
            ptr[nfds++] = NULL;
        }

        pfd[nfds].fd = sd->signal_fd;
        pfd[nfds].events = POLLIN;
        ptr[nfds++] = &sd->signal_fd;

        if (sd->track != NULL) {                /* before any request */
            pfd[nfds].fd = sd->track->fd;
            pfd[nfds].events = POLLIN;
            ptr[nfds++] = &sd->track;
        }

        wait = 1000;

        for (s = 0; s < 2; s++) {
            for (i = 0; i < sd->nworkers; i++) {
                w = &sd->workers[s][i];
                if (w->fd != -1) {
                    pfd[nfds].fd = w->fd;
                    pfd[nfds].events = POLLIN;
                    ptr[nfds++] = w;
                } else if (w->respawn_at > now && w->respawn_at - now < wait)
                {
                    wait = w->respawn_at - now;
                }
            }
        }

        for (c = sd->conns; c; c = c->next) {
            pfd[nfds].fd = c->fd;
            pfd[nfds].events = 0;
            if (c->req == NULL && !c->eof && !c->closing) {
                pfd[nfds].events |= POLLIN;
            }
            if (c->out.len > 0) {
                pfd[nfds].events |= POLLOUT;
            }
            if (pfd[nfds].events == 0) {
                pfd[nfds].fd = -1;      /* busy: do not spin on POLLHUP */
            }
            ptr[nfds++] = c;
        }

        rc = poll(pfd, nfds, (int) wait);
        if (rc < 0 && errno != EINTR) {
            hpki_log(HPKI_LOG_ERROR, "poll: %s", strerror(errno));
            break;
        }

        for (idx = 0; rc > 0 && idx < nfds; idx++) {
            if (pfd[idx].revents == 0) {
                continue;
            }

            if (ptr[idx] == NULL) {
                if (sd->listen_fd != -1) {
                    hpki_signd_accept(sd);
                }
                continue;
            }

            if (ptr[idx] == &sd->signal_fd) {
                hpki_signd_signals(sd);
                continue;
            }

            if (ptr[idx] == &sd->track) {
                hpki_signd_track_read(sd);
                continue;
            }

            if ((hpki_signd_worker_t *) ptr[idx] >= &sd->workers[0][0]
                && (hpki_signd_worker_t *) ptr[idx]
                   <= &sd->workers[1][HPKI_SIGND_MAX_WORKERS - 1])
            {
                w = ptr[idx];
                if (w->fd == pfd[idx].fd) {
                    hpki_signd_worker_read(sd, w);
                }
                continue;
            }

            c = ptr[idx];

            if (pfd[idx].revents & (POLLIN | POLLHUP | POLLERR)) {
                hpki_signd_conn_read(sd, c);
                /* c may be gone: it is only used via the list below */
            }
        }

        /* flush, close finished connections */

        for (c = sd->conns; c; c = next) {
            next = c->next;

            if (c->req == NULL && c->in.len > 0 && !c->closing) {
                hpki_signd_conn_process(sd, c);     /* pipelined requests */
            }

            if (c->out.len > 0) {
                hpki_signd_conn_write(sd, c);
            }

            if (c->out.len == 0 && c->req == NULL
                && (c->closing || c->eof || sd->stopping))
            {
                hpki_signd_conn_close(sd, c);
            }
        }

        hpki_signd_timers(sd);

        /* replies are out: now the blinder may take a CPU */

        if (sd->blinder.kick) {
            sd->blinder.kick = 0;
            pthread_mutex_lock(&sd->blinder.lock);
            pthread_cond_signal(&sd->blinder.cond);
            pthread_mutex_unlock(&sd->blinder.lock);
        }
    }

    hpki_log(HPKI_LOG_INFO, "exiting");

    hpki_signd_blinder_stop(sd);

    for (s = 0; s < 2; s++) {
        for (i = 0; i < sd->nworkers; i++) {
            w = &sd->workers[s][i];
            if (w->pid > 0) {
                kill(w->pid, SIGTERM);
            }
        }
    }

    for (s = 0; s < 2; s++) {
        for (i = 0; i < sd->nworkers; i++) {
            w = &sd->workers[s][i];
            if (w->pid > 0) {
                waitpid(w->pid, NULL, 0);
            }
        }
    }

    if (cf.pid_file != NULL) {
        unlink(cf.pid_file);
    }

    for (i = 0; i < HPKI_SIGND_KEYS; i++) {
        hpki_signd_key_free(sd, &sd->keys[i]);  /* wipes blinding pairs */
    }

    for (i = 0; i < HPKI_SIGND_HINTS; i++) {
        hpki_key_record_free(&sd->hints[i].rec);
    }

    hpki_signd_redis_drop(sd);

    hpki_audit_close(&sd->audit);
    return 0;
}


/* the combiner only stat()s the KEKs: a bad mode refuses to start */

static int
hpki_signd_check_kek(const char *path)
{
    struct stat  st;

    if (stat(path, &st) != 0) {
        hpki_log(HPKI_LOG_ERROR, "KEK \"%s\": %s", path, strerror(errno));
        return -1;
    }

    if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0600
        || st.st_size != HPKI_KEK_LEN)
    {
        hpki_log(HPKI_LOG_ERROR, "KEK \"%s\" must be a regular file of %d "
                 "bytes with mode 0600", path, HPKI_KEK_LEN);
        return -1;
    }

    return 0;
}


static int
hpki_signd_listen(hpki_signd_t *sd)
{
    int                 fd;
    struct sockaddr_un  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;

    if (strlen(sd->cf->listen) >= sizeof(sa.sun_path)) {
        hpki_log(HPKI_LOG_ERROR, "listen path too long");
        return -1;
    }

    strcpy(sa.sun_path, sd->cf->listen);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        hpki_log(HPKI_LOG_ERROR, "socket: %s", strerror(errno));
        return -1;
    }

    unlink(sa.sun_path);

    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || chmod(sa.sun_path, sd->cf->socket_mode) != 0
        || listen(fd, 128) != 0)
    {
        hpki_log(HPKI_LOG_ERROR, "listen on %s: %s", sa.sun_path,
                 strerror(errno));
        close(fd);
        return -1;
    }

    sd->listen_fd = fd;
    return 0;
}


static int
hpki_signd_spawn(hpki_signd_t *sd, hpki_signd_worker_t *w)
{
    int        sv[2];
    pid_t      pid;
    sigset_t   empty;
    cpu_set_t  cpu;
    char      *args[6];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        hpki_log(HPKI_LOG_ERROR, "socketpair: %s", strerror(errno));
        return -1;
    }

    pid = fork();
    if (pid == -1) {
        hpki_log(HPKI_LOG_ERROR, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }

    if (pid == 0) {
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        signal(SIGPIPE, SIG_DFL);

        if (dup2(sv[1], HPKI_SIGND_WORKER_FD) == -1) {
            _exit(2);
        }

        args[0] = "hpki-signd";
        args[1] = "-c";
        args[2] = sd->conf_path;
        args[3] = "--worker";
        args[4] = w->share == 0 ? "a" : "b";
        args[5] = NULL;

        execv(sd->exe, args);
        _exit(2);
    }

    close(sv[1]);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);

    /*
     * worker_cpu_affinity auto: slot i of pool A on the i-th CPU, of pool
     * B on the next one, so that the two partials of a signature, which
     * take slots of the same number when idle, never share a CPU
     */

    if (sd->ncpus > 0) {
        CPU_ZERO(&cpu);
        CPU_SET(sd->cpus[(w->slot + w->share) % sd->ncpus], &cpu);

        if (sched_setaffinity(pid, sizeof(cpu_set_t), &cpu) != 0) {
            hpki_log(HPKI_LOG_WARN, "share-%c worker %d: "
                     "sched_setaffinity: %s", 'a' + w->share, w->slot,
                     strerror(errno));
        }
    }

    w->pid = pid;
    w->fd = sv[0];
    w->job = NULL;
    w->in.len = 0;
    w->spawned = hpki_signd_now();
    w->respawn_at = 0;

    hpki_log(HPKI_LOG_INFO, "share-%c worker %d started, pid %d",
             'a' + w->share, w->slot, (int) pid);

    hpki_signd_dispatch(sd, w->share);
    return 0;
}


/* the worker's socket closed (it died or misbehaved) */

static void
hpki_signd_worker_gone(hpki_signd_t *sd, hpki_signd_worker_t *w)
{
    uint64_t           now;
    hpki_signd_job_t  *job;

    if (w->fd != -1) {
        close(w->fd);
        w->fd = -1;
    }

    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
    }

    now = hpki_signd_now();
    w->respawn_at = now - w->spawned < HPKI_SIGND_RESPAWN_DELAY
                    ? now + HPKI_SIGND_RESPAWN_DELAY : now;

    hpki_log(HPKI_LOG_ERROR, "share-%c worker %d (pid %d) is gone%s",
             'a' + w->share, w->slot, (int) w->pid,
             w->job ? ", failing its request" : "");

    job = w->job;
    w->job = NULL;

    if (job != NULL) {
        hpki_signd_job_done(sd, job, HPKI_E_UNAVAILABLE, NULL, 0);
    }
}


static void
hpki_signd_worker_read(hpki_signd_t *sd, hpki_signd_worker_t *w)
{
    int                  rc, code;
    ssize_t              n;
    uint32_t             id;
    hpki_frame_t        *f;
    hpki_signd_job_t    *job;
    const hpki_field_t  *fj, *fc, *fv;

    f = &sd->frame;

    for ( ;; ) {
        if (hpki_buf_reserve(&w->in, 4096) != 0) {
            hpki_signd_worker_gone(sd, w);
            return;
        }

        n = read(w->fd, w->in.data + w->in.len, 4096);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            hpki_signd_worker_gone(sd, w);
            return;
        }
        w->in.len += n;
    }

    for ( ;; ) {
        rc = hpki_frame_decode(w->in.data, w->in.len, f);
        if (rc == HPKI_FRAME_AGAIN) {
            break;
        }

        fj = rc == HPKI_FRAME_OK ? hpki_frame_field(f, HPKI_TAG_JOB) : NULL;
        id = (fj && fj->len == 4) ? hpki_get_u32(fj->data) : 0;
        job = w->job;

        if (fj == NULL || job == NULL || job->id != id) {
            hpki_log(HPKI_LOG_ERROR, "share-%c worker %d: unexpected reply",
                     'a' + w->share, w->slot);
            hpki_signd_worker_gone(sd, w);
            return;
        }

        w->job = NULL;

        if (f->type == HPKI_T_PARTIAL_OK
            && (fv = hpki_frame_field(f, HPKI_TAG_VALUE)) != NULL)
        {
            hpki_signd_job_done(sd, job, 0, fv->data, fv->len);

        } else {
            fc = hpki_frame_field(f, HPKI_TAG_CODE);
            code = (fc && fc->len == 2) ? (fc->data[0] << 8 | fc->data[1])
                                        : HPKI_E_INTERNAL;
            hpki_signd_job_done(sd, job, code ? code : HPKI_E_INTERNAL,
                                NULL, 0);
        }

        hpki_buf_consume(&w->in, f->size);
    }

    hpki_signd_dispatch(sd, w->share);
}


/* hands queued jobs of one share to idle workers */

static void
hpki_signd_dispatch(hpki_signd_t *sd, int share)
{
    int                   i;
    size_t                start, off;
    ssize_t               n;
    u_char                nbuf[HPKI_RSA_MAX_BYTES], xbuf[HPKI_RSA_MAX_BYTES];
    hpki_buf_t            out = { NULL, 0, 0 };
    const BIGNUM         *bn_n;
    hpki_signd_job_t     *job;
    hpki_signd_req_t     *req;
    hpki_signd_worker_t  *w;

    for (i = 0; i < sd->nworkers && sd->queue_head[share] != NULL; i++) {
        w = &sd->workers[share][i];
        if (w->fd == -1 || w->job != NULL) {
            continue;
        }

        job = sd->queue_head[share];
        sd->queue_head[share] = job->next;
        if (job->next == NULL) {
            sd->queue_tail[share] = NULL;
        }
        job->next = NULL;
        req = job->req;

        if (req->conn == NULL || req->error || req->restart) {
            hpki_signd_job_done(sd, job, HPKI_E_UNAVAILABLE, NULL, 0);
            i--;
            continue;
        }

        RSA_get0_key(req->pub, &bn_n, NULL, NULL);

        out.len = 0;
        start = hpki_frame_begin(&out, HPKI_T_PARTIAL);
        hpki_frame_add_u32(&out, HPKI_TAG_JOB, job->id);
        hpki_frame_add(&out, HPKI_TAG_USER, req->user, strlen(req->user));
        hpki_frame_add_u32(&out, HPKI_TAG_VERSION, (uint32_t) req->version);
        hpki_frame_add(&out, HPKI_TAG_TOKEN, req->token, req->token_len);
        BN_bn2binpad(bn_n, nbuf, req->k);
        BN_bn2binpad(req->x[job->index], xbuf, req->k);
        hpki_frame_add(&out, HPKI_TAG_MODULUS, nbuf, req->k);
        hpki_frame_add(&out, HPKI_TAG_VALUE, xbuf, req->k);

        if (hpki_frame_end(&out, start) != 0) {
            hpki_signd_job_done(sd, job, HPKI_E_INTERNAL, NULL, 0);
            i--;
            continue;
        }

        w->job = job;

        /* the worker is idle: its socket buffer takes the whole frame */

        for (off = 0; off < out.len; off += n) {
            n = write(w->fd, out.data + off, out.len - off);
            if (n < 0 && errno == EINTR) {
                n = 0;
                continue;
            }
            if (n <= 0) {
                hpki_signd_worker_gone(sd, w);
                break;
            }
        }
    }

    hpki_buf_free(&out);
}


static void
hpki_signd_accept(hpki_signd_t *sd)
{
    int                 fd, i, ok;
    socklen_t           len;
    struct ucred        cred;
    hpki_signd_conn_t  *c;
    hpki_buf_t          b = { NULL, 0, 0 };

    for ( ;; ) {
        fd = accept4(sd->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                hpki_log(HPKI_LOG_WARN, "accept: %s", strerror(errno));
            }
            break;
        }

        len = sizeof(cred);
        ok = 0;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            for (i = 0; i < sd->cf->nallow_uid; i++) {
                if (sd->cf->allow_uid[i] == cred.uid) {
                    ok = 1;
                }
            }
        }

        if (!ok || sd->nconns >= HPKI_SIGND_MAX_CONNS) {
            hpki_log(HPKI_LOG_WARN, "connection refused: %s",
                     ok ? "too many connections" : "peer uid not allowed");
            b.len = 0;
            hpki_frame_error(&b, ok ? HPKI_E_UNAVAILABLE : HPKI_E_FORBIDDEN,
                             ok ? "too many connections"
                                : "peer not allowed");
            if (write(fd, b.data, b.len) < 0) {
                /* ignore */
            }
            close(fd);
            continue;
        }

        c = calloc(1, sizeof(hpki_signd_conn_t));
        if (c == NULL) {
            close(fd);
            continue;
        }

        c->fd = fd;
        c->next = sd->conns;
        if (sd->conns) {
            sd->conns->prev = c;
        }
        sd->conns = c;
        sd->nconns++;
    }

    hpki_buf_free(&b);
}


static void
hpki_signd_conn_close(hpki_signd_t *sd, hpki_signd_conn_t *c)
{
    if (c->req != NULL) {
        c->req->conn = NULL;        /* freed when its last job returns */
        c->req = NULL;
    }

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        sd->conns = c->next;
    }

    if (c->next) {
        c->next->prev = c->prev;
    }

    close(c->fd);
    hpki_buf_free(&c->in);
    hpki_buf_free(&c->out);
    free(c);
    sd->nconns--;
}


static void
hpki_signd_conn_read(hpki_signd_t *sd, hpki_signd_conn_t *c)
{
    ssize_t  n;

    for ( ;; ) {
        if (c->eof || c->closing || c->req != NULL) {
            break;
        }

        /* never buffer more than one maximal frame plus a little */

        if (c->in.len >= HPKI_FRAME_HDR + HPKI_FRAME_MAX + 4096) {
            break;
        }

        if (hpki_buf_reserve(&c->in, 16384) != 0) {
            c->closing = 1;
            break;
        }

        n = read(c->fd, c->in.data + c->in.len, 16384);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n < 0) {
            c->eof = 1;
            c->in.len = 0;
            break;
        }
        if (n == 0) {
            c->eof = 1;
            break;
        }

        c->in.len += n;
        hpki_signd_conn_process(sd, c);
    }

    hpki_signd_conn_process(sd, c);
}


/* handles complete frames, one request at a time */

static void
hpki_signd_conn_process(hpki_signd_t *sd, hpki_signd_conn_t *c)
{
    int            rc;
    size_t         start;
    hpki_frame_t  *f;

    f = &sd->frame;

    while (c->req == NULL && !c->closing && c->in.len > 0) {
        rc = hpki_frame_decode(c->in.data, c->in.len, f);

        if (rc == HPKI_FRAME_AGAIN) {
            if (c->eof) {
                /* a truncated frame: still one reply */
                hpki_signd_reply_error(c, HPKI_E_BAD_FRAME,
                                       "truncated frame");
                c->closing = 1;
            }
            return;
        }

        if (rc == HPKI_FRAME_BAD) {
            hpki_log(HPKI_LOG_INFO, "bad frame, closing the connection");
            hpki_signd_reply_error(c, HPKI_E_BAD_FRAME, "bad frame");
            c->closing = 1;
            c->in.len = 0;
            return;
        }

        switch (f->type) {

        case HPKI_T_PING:
            start = hpki_frame_begin(&c->out, HPKI_T_PONG);
            hpki_frame_end(&c->out, start);
            break;

        case HPKI_T_SIGN:
            if (sd->stopping) {
                hpki_signd_reply_error(c, HPKI_E_UNAVAILABLE,
                                       "shutting down");
                break;
            }
            hpki_signd_sign(sd, c, f);
            break;

        default:
            hpki_signd_reply_error(c, HPKI_E_BAD_REQUEST,
                                   "unknown request type");
        }

        hpki_buf_consume(&c->in, f->size);
    }
}


static void
hpki_signd_conn_write(hpki_signd_t *sd, hpki_signd_conn_t *c)
{
    ssize_t  n;

    (void) sd;

    while (c->out.len > 0) {
        n = write(c->fd, c->out.data, c->out.len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            c->out.len = 0;
            c->closing = 1;
            return;
        }
        hpki_buf_consume(&c->out, n);
    }
}


static void
hpki_signd_reply_error(hpki_signd_conn_t *c, int code, const char *msg)
{
    hpki_frame_error(&c->out, (uint16_t) code, msg);
}


/* field parsing and authorisation; on success jobs are queued */

static void
hpki_signd_sign(hpki_signd_t *sd, hpki_signd_conn_t *c, hpki_frame_t *f)
{
    int                  i, j, code, rc, local;
    const char          *msg;
    unsigned long        epoch;
    hpki_signd_req_t    *req;
    hpki_signd_hint_t   *hint;
    const hpki_field_t  *fld;

    code = HPKI_E_BAD_REQUEST;
    msg = "bad request";

    req = calloc(1, sizeof(hpki_signd_req_t));
    if (req == NULL) {
        hpki_signd_reply_error(c, HPKI_E_INTERNAL, "out of memory");
        return;
    }

    req->conn = c;

    if (f->overflow) {
        msg = "too many fields";
        goto failed;
    }

    for (i = 0; i < (int) f->nfields; i++) {
        fld = &f->fields[i];

        switch (fld->tag) {

        case HPKI_TAG_TOKEN:
            if (req->token != NULL) {
                goto failed;
            }
            req->token = malloc(fld->len ? fld->len : 1);
            if (req->token == NULL) {
                goto failed;
            }
            memcpy(req->token, fld->data, fld->len);
            req->token_len = fld->len;
            break;

        case HPKI_TAG_USER:
            if (!hpki_user_valid((char *) fld->data, fld->len)) {
                msg = "bad user id";
                goto failed;
            }
            memcpy(req->user, fld->data, fld->len);
            req->user[fld->len] = '\0';
            break;

        case HPKI_TAG_HASH_ALG:
            if (fld->len != 1) {
                goto failed;
            }
            req->hash_alg = fld->data[0];
            break;

        case HPKI_TAG_SIG_ALG:
            if (fld->len != 1) {
                goto failed;
            }
            req->sig_alg = fld->data[0];
            break;

        case HPKI_TAG_DIGEST:
            if (req->ndigests == HPKI_DIGESTS_MAX) {
                msg = "too many digests";
                goto failed;
            }
            if (fld->len > 64) {
                msg = "bad digest length";
                goto failed;
            }
            if (req->ndigests > 0 && fld->len != req->dlen) {
                msg = "bad digest length";
                goto failed;
            }
            req->dlen = fld->len;
            memcpy(req->digest[req->ndigests++], fld->data, fld->len);
            break;

        case HPKI_TAG_REQUEST_ID:
            for (j = 0; j < fld->len && j < HPKI_SIGND_REQID_MAX; j++) {
                req->request_id[j] = (fld->data[j] > 0x20
                                      && fld->data[j] < 0x7f)
                                     ? fld->data[j] : '?';
            }
            req->request_id[j] = '\0';
            break;

        default:
            break;                  /* unknown tags are ignored */
        }
    }

    if (req->token == NULL || req->user[0] == '\0') {
        msg = "TOKEN and USER are required";
        goto failed;
    }

    if (hpki_rsa_md(req->hash_alg) == NULL) {
        msg = "bad HASH_ALG";
        goto failed;
    }

    if (req->sig_alg != HPKI_SIG_PKCS1 && req->sig_alg != HPKI_SIG_PSS) {
        msg = "bad SIG_ALG";
        goto failed;
    }

    if (req->ndigests == 0
        || req->dlen != (size_t) EVP_MD_get_size(hpki_rsa_md(req->hash_alg)))
    {
        msg = "DIGEST missing or of the wrong length";
        goto failed;
    }

    /* authorisation */

    if (hpki_token_verify(&sd->token, req->token, req->token_len, req->user,
                          req->jti, sizeof(req->jti)) != 0)
    {
        code = HPKI_E_UNAUTHORIZED;
        msg = "token not accepted";
        goto failed_audit;
    }

    /*
     * The public record is read for every request, unless Redis tracks
     * it and has not reported it changed (hpki_signd_record_cached()).
     * With the user's last record at hand the partials start at once and
     * the read runs while they compute: a record that turns out revoked,
     * missing or changed (refresh, new key) is acted upon before anything
     * is replied.
     */

    hint = hpki_signd_hint(sd, req->user);

    if (hint != NULL) {
        local = hpki_signd_local_share(sd);

        code = hpki_signd_start(sd, req, hint->rec.n, hint->rec.e,
                                hint->rec.version, local, &msg);
        if (code != 0) {
            goto failed_audit;
        }

        if (hpki_signd_record_cached(sd, req) == 0) {
            if (local >= 0) {
                hpki_signd_dispatch(sd, local);
            }
            return;
        }

        hpki_signd_record_check(sd, req, local);
        return;
    }

    rc = hpki_signd_record_load(sd, req, &epoch);

    code = hpki_signd_record_refused(rc, &req->rec, &msg);
    if (code != 0) {
        hpki_signd_hint_set(sd, req->user, NULL, 0);
        goto failed_audit;
    }

    code = hpki_signd_start(sd, req, req->rec.n, req->rec.e,
                            req->rec.version, -1, &msg);
    if (code != 0) {
        goto failed_audit;
    }

    hpki_signd_hint_set(sd, req->user, &req->rec, epoch);
    return;

failed_audit:

    req->error = code;
    hpki_signd_audit(sd, req, hpki_frame_code_name(code));

failed:

    hpki_log(HPKI_LOG_INFO, "sign request refused: %s (%s)",
             hpki_frame_code_name(code), msg);
    hpki_signd_reply_error(c, code, msg);
    hpki_signd_req_free(req);
}


/*
 * a connection that died with a Redis restart: once more, anew; *epoch
 * is the tracking epoch the read was made in (0: untracked)
 */

static int
hpki_signd_record_load(hpki_signd_t *sd, hpki_signd_req_t *req,
    unsigned long *epoch)
{
    int            rc, attempt;
    redisContext  *redis;

    rc = HPKI_STORE_ERROR;

    for (attempt = 0; attempt < 2; attempt++) {

        redis = hpki_signd_redis(sd, epoch);

        rc = redis ? hpki_key_record_load(redis, req->user, &req->rec)
                   : HPKI_STORE_ERROR;

        if (rc != HPKI_STORE_ERROR || redis == NULL || !redis->err) {
            break;
        }

        hpki_signd_redis_drop(sd);
    }

    if (rc == HPKI_STORE_ERROR && sd->redis != NULL && sd->redis->err) {
        hpki_signd_redis_drop(sd);
    }

    return rc;
}


static int
hpki_signd_record_refused(int rc, const hpki_key_record_t *rec,
    const char **msg)
{
    if (rc == HPKI_STORE_ERROR) {
        *msg = "key store unavailable";
        return HPKI_E_UNAVAILABLE;
    }

    if (rc == HPKI_STORE_MISSING || !rec->active || rec->cert == NULL) {
        *msg = "no active second certificate for the user";
        return HPKI_E_NO_KEY;
    }

    return 0;
}


/*
 * the record read while the partials run: a refusal is answered when
 * they are back, a different key or version starts them again.  The
 * jobs of share local (unless -1) are dispatched once the read is sent.
 */

static void
hpki_signd_record_check(hpki_signd_t *sd, hpki_signd_req_t *req, int local)
{
    int             rc, code, sent;
    const char     *msg;
    unsigned long   epoch;
    const BIGNUM   *n, *e;

    rc = HPKI_STORE_ERROR;
    epoch = 0;

    sent = sd->redis != NULL
           && hpki_signd_redis(sd, &epoch) != NULL
           && hpki_key_record_send(sd->redis, req->user) == 0;

    if (local >= 0) {
        hpki_signd_dispatch(sd, local);
    }

    if (sent) {
        rc = hpki_key_record_recv(sd->redis, req->user, &req->rec);
    }

    if (rc == HPKI_STORE_ERROR && (sd->redis == NULL || sd->redis->err)) {
        hpki_signd_redis_drop(sd);
        rc = hpki_signd_record_load(sd, req, &epoch);
    }

    code = hpki_signd_record_refused(rc, &req->rec, &msg);
    if (code != 0) {
        hpki_log(HPKI_LOG_INFO, "sign request refused: %s (%s)",
                 hpki_frame_code_name(code), msg);
        hpki_signd_hint_set(sd, req->user, NULL, 0);
        req->error = code;
        req->message = msg;
        return;
    }

    RSA_get0_key(req->pub, &n, &e, NULL);

    if (req->rec.version != req->version || BN_cmp(n, req->rec.n) != 0
        || BN_cmp(e, req->rec.e) != 0)
    {
        hpki_log(HPKI_LOG_INFO, "the key record of \"%s\" changed "
                 "(version %lu): partials again", req->user, req->rec.version);
        req->restart = 1;
    }

    hpki_signd_hint_set(sd, req->user, &req->rec, epoch);
}


/*
 * pads and blinds every digest with key (n, e) and queues the partials;
 * the jobs of share defer (unless -1) wait for the caller's dispatch
 */

static int
hpki_signd_start(hpki_signd_t *sd, hpki_signd_req_t *req, const BIGNUM *n,
    const BIGNUM *e, unsigned long version, int defer, const char **msg)
{
    int                i, d, nbits;
    BIGNUM            *a;
    hpki_signd_key_t  *key;
    hpki_signd_job_t  *job;

    nbits = BN_num_bits(n);
    key = NULL;

    if (nbits >= 2048 && nbits <= 8 * HPKI_RSA_MAX_BYTES) {
        key = hpki_signd_key(sd, n, e);
    }

    if (key == NULL) {
        *msg = "bad public key record";
        return HPKI_E_INTERNAL;
    }

    req->pub = key->pub;
    RSA_up_ref(req->pub);
    req->k = RSA_size(req->pub);

    req->mont = BN_MONT_CTX_new();
    if (req->mont == NULL || BN_MONT_CTX_copy(req->mont, key->mont) == NULL) {
        *msg = "out of memory";
        return HPKI_E_INTERNAL;
    }

    req->version = version;

    /* pad, then blind with a pair of the stock: x = EM * r^e mod n */

    for (d = 0; d < req->ndigests; d++) {
        req->em[d] = malloc(req->k);
        req->x[d] = BN_new();
        req->y[0][d] = BN_new();
        req->y[1][d] = BN_new();

        a = NULL;

        if (req->em[d] == NULL || req->x[d] == NULL
            || req->y[0][d] == NULL || req->y[1][d] == NULL
            || hpki_signd_blind_take(sd, key, &a, &req->rinv[d]) != 0
            || hpki_rsa_encode(req->pub, req->hash_alg, req->sig_alg,
                               req->digest[d], req->dlen, req->em[d]) != 0
            || hpki_rsa_blind(req->x[d], req->em[d], req->k, a, key->mont,
                              sd->bn) != 0)
        {
            BN_clear_free(a);
            *msg = "cannot encode the digest";
            return HPKI_E_INTERNAL;
        }

        BN_clear_free(a);                       /* used once */
    }

    /* one job per digest and share, both shares at once */

    req->deadline = hpki_signd_now() + HPKI_SIGND_REQUEST_TIMEOUT;
    req->conn->req = req;

    for (d = 0; d < req->ndigests; d++) {
        for (i = 0; i < 2; i++) {
            job = &req->jobs[2 * d + i];

            job->req = req;
            job->next = NULL;
            job->index = d;
            job->share = i;
            job->id = ++sd->next_job ? sd->next_job : ++sd->next_job;

            if (sd->queue_tail[i]) {
                sd->queue_tail[i]->next = job;
            } else {
                sd->queue_head[i] = job;
            }
            sd->queue_tail[i] = job;
            req->pending++;
        }
    }

    for (i = 0; i < 2; i++) {
        if (i != defer) {
            hpki_signd_dispatch(sd, i);
        }
    }

    return 0;
}


/*
 * With worker_cpu_affinity auto: the share whose next idle worker is
 * bound to the CPU this runs on, else -1.  That worker runs only once the
 * combiner waits, so the combiner hands it its job last, after the one
 * on another CPU and after sending the record read: both partials then
 * start at about the same time, while the combiner waits for the record.
 */

static int
hpki_signd_local_share(hpki_signd_t *sd)
{
    int                   cpu, s, i;
    hpki_signd_worker_t  *w;

    if (sd->ncpus < 2) {
        return -1;
    }

    cpu = sched_getcpu();

    for (s = 0; s < 2; s++) {
        for (i = 0; i < sd->nworkers; i++) {
            w = &sd->workers[s][i];

            if (w->fd != -1 && w->job == NULL) {
                if (sd->cpus[(i + s) % sd->ncpus] == cpu) {
                    return s;
                }
                break;
            }
        }
    }

    return -1;
}


/* what a start made: before the partials start again, and when done */

static void
hpki_signd_req_reset(hpki_signd_req_t *req)
{
    int  d;

    for (d = 0; d < HPKI_DIGESTS_MAX; d++) {
        free(req->em[d]);
        BN_free(req->x[d]);
        BN_clear_free(req->rinv[d]);
        BN_free(req->y[0][d]);
        BN_free(req->y[1][d]);
        req->em[d] = NULL;
        req->x[d] = NULL;
        req->rinv[d] = NULL;
        req->y[0][d] = NULL;
        req->y[1][d] = NULL;
    }

    RSA_free(req->pub);
    req->pub = NULL;
    BN_MONT_CTX_free(req->mont);
    req->mont = NULL;
    req->restart = 0;
    req->error = 0;
    req->message = NULL;
}


static hpki_signd_hint_t *
hpki_signd_hint_slot(hpki_signd_t *sd, const char *user)
{
    uint32_t       h;
    const u_char  *p;

    h = 2166136261u;                            /* FNV-1a */

    for (p = (const u_char *) user; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }

    return &sd->hints[h % HPKI_SIGND_HINTS];
}


static hpki_signd_hint_t *
hpki_signd_hint(hpki_signd_t *sd, const char *user)
{
    hpki_signd_hint_t  *h;

    h = hpki_signd_hint_slot(sd, user);

    return strcmp(h->user, user) == 0 && h->rec.n != NULL ? h : NULL;
}


/*
 * remembers the user's record, read in tracking epoch (0: untracked);
 * NULL forgets it.  A record that cannot be cached, of the key and
 * version already remembered, is not copied again: it is only a hint,
 * and without tracking this runs for every request.
 */

static void
hpki_signd_hint_set(hpki_signd_t *sd, const char *user,
    const hpki_key_record_t *rec, unsigned long epoch)
{
    hpki_signd_hint_t  *h;

    h = hpki_signd_hint_slot(sd, user);

    if (epoch != sd->track_epoch) {
        epoch = 0;
    }

    if (rec != NULL && epoch == 0 && strcmp(h->user, user) == 0
        && h->rec.n != NULL && h->rec.version == rec->version
        && BN_cmp(h->rec.n, rec->n) == 0 && BN_cmp(h->rec.e, rec->e) == 0)
    {
        h->epoch = 0;
        return;
    }

    hpki_key_record_free(&h->rec);
    memset(h, 0, sizeof(*h));

    if (rec == NULL || hpki_key_record_copy(&h->rec, rec) != 0) {
        return;
    }

    strcpy(h->user, user);
    h->read_at = hpki_signd_now();
    h->epoch = epoch;
}


/*
 * The connection for public records, made if there is none; with
 * record_cache_ttl, Redis is asked to track what it reads.  *epoch: the
 * tracking epoch of what is read now, 0 if untracked.
 */

static redisContext *
hpki_signd_redis(hpki_signd_t *sd, unsigned long *epoch)
{
    if (sd->redis == NULL) {
        sd->redis = hpki_redis_public(sd->cf);

        if (sd->redis != NULL && sd->cf->record_cache_ttl > 0) {
            sd->track = hpki_redis_track(sd->redis, sd->cf);
            sd->track_epoch++;
        }
    }

    *epoch = sd->track != NULL ? sd->track_epoch : 0;

    return sd->redis;
}


/* both connections go: whatever was cached is read again */

static void
hpki_signd_redis_drop(hpki_signd_t *sd)
{
    if (sd->redis != NULL) {
        redisFree(sd->redis);
        sd->redis = NULL;
    }

    if (sd->track != NULL) {
        redisFree(sd->track);
        sd->track = NULL;
    }

    sd->track_epoch++;
}


/* what Redis reported changed since the last call */

static void
hpki_signd_track_read(hpki_signd_t *sd)
{
    if (sd->track != NULL
        && hpki_redis_track_read(sd->track, hpki_signd_invalidate, sd) != 0)
    {
        hpki_log(HPKI_LOG_WARN, "redis: the tracking connection failed: "
                 "key records are read for every request until it is back");
        hpki_signd_redis_drop(sd);
    }
}


static void
hpki_signd_invalidate(void *data, const char *key, size_t len)
{
    char                 user[HPKI_USER_MAX + 1];
    hpki_signd_t        *sd;
    hpki_signd_hint_t   *h;

    static const char    prefix[] = "hpki:key:";

    sd = data;

    if (key == NULL) {
        sd->track_epoch++;                      /* a flush: all of them */
        return;
    }

    if (len <= sizeof(prefix) - 1
        || len - (sizeof(prefix) - 1) > HPKI_USER_MAX
        || memcmp(key, prefix, sizeof(prefix) - 1) != 0)
    {
        return;
    }

    key += sizeof(prefix) - 1;
    len -= sizeof(prefix) - 1;

    memcpy(user, key, len);
    user[len] = '\0';

    h = hpki_signd_hint(sd, user);
    if (h != NULL) {
        h->epoch = 0;
    }
}


/*
 * 0 and the record in req->rec if the one remembered may stand in for a
 * read: Redis tracks it and has reported no change (what it sent is read
 * first), and it is younger than record_cache_ttl
 */

static int
hpki_signd_record_cached(hpki_signd_t *sd, hpki_signd_req_t *req)
{
    hpki_signd_hint_t  *h;

    hpki_signd_track_read(sd);

    h = hpki_signd_hint(sd, req->user);

    if (sd->track == NULL || h == NULL || h->epoch != sd->track_epoch
        || hpki_signd_now() - h->read_at
           >= (uint64_t) sd->cf->record_cache_ttl * 1000
        || h->rec.version != req->version)
    {
        return -1;
    }

    return hpki_key_record_copy(&req->rec, &h->rec);
}


/* a worker answered (or failed) one job */

static void
hpki_signd_job_done(hpki_signd_t *sd, hpki_signd_job_t *job, int code,
    const u_char *val, size_t len)
{
    hpki_signd_req_t  *req;

    req = job->req;
    req->pending--;

    if (code == 0) {
        if (BN_bin2bn(val, (int) len, req->y[job->share][job->index])
            == NULL)
        {
            code = HPKI_E_INTERNAL;
        }
    }

    if (code != 0 && req->error == 0) {
        req->error = code;
        req->message = code == HPKI_E_UNAVAILABLE
                       ? "a share worker failed" : "a share holder refused";
    }

    if (req->pending > 0) {
        return;
    }

    if (req->conn == NULL) {
        hpki_signd_req_free(req);
        return;
    }

    if (req->restart) {
        hpki_signd_req_reset(req);

        code = hpki_signd_start(sd, req, req->rec.n, req->rec.e,
                                req->rec.version, -1, &req->message);
        if (code == 0) {
            return;
        }

        req->error = code;
    }

    hpki_signd_finish(sd, req);
}


static void
hpki_signd_finish(hpki_signd_t *sd, hpki_signd_req_t *req)
{
    int                 d;
    size_t              start, len;
    u_char             *sig;
    const char         *p, *q, *end;
    hpki_signd_conn_t  *c;

    c = req->conn;
    sig = NULL;

    if (req->error) {
        goto failed;
    }

    sig = malloc((size_t) req->k * req->ndigests);
    if (sig == NULL) {
        req->error = HPKI_E_INTERNAL;
        goto failed;
    }

    for (d = 0; d < req->ndigests; d++) {
        if (hpki_rsa_combine(req->pub, req->y[0][d], req->y[1][d],
                             req->rinv[d], req->mont, sig + d * req->k,
                             sd->bn) != 0)
        {
            req->error = HPKI_E_INTERNAL;
            goto failed;
        }

        if (hpki_rsa_verify(req->pub, sig + d * req->k, req->em[d]) != 0) {
            hpki_log(HPKI_LOG_ERROR, "ALARM combined signature for \"%s\" "
                     "(key %s version %lu) does not verify; withheld",
                     req->user, req->rec.kid, req->rec.version);
            req->error = HPKI_E_SIGN_FAILED;
            req->message = "signature check failed";
            goto failed;
        }
    }

    start = hpki_frame_begin(&c->out, HPKI_T_SIGN_OK);

    for (d = 0; d < req->ndigests; d++) {
        hpki_frame_add(&c->out, HPKI_TAG_SIGNATURE, sig + d * req->k,
                       req->k);
    }

    hpki_frame_add(&c->out, HPKI_TAG_CERT, req->rec.cert,
                   strlen(req->rec.cert));
    hpki_frame_add(&c->out, HPKI_TAG_KEY_ID, req->rec.kid,
                   strlen(req->rec.kid));

    /* CHAIN: one field per PEM certificate */

    for (p = req->rec.chain; p != NULL; p = end) {
        p = strstr(p, "-----BEGIN CERTIFICATE-----");
        if (p == NULL) {
            break;
        }
        q = strstr(p, "-----END CERTIFICATE-----");
        if (q == NULL) {
            break;
        }
        end = q + sizeof("-----END CERTIFICATE-----") - 1;
        if (*end == '\n') {
            end++;
        }
        len = end - p;
        hpki_frame_add(&c->out, HPKI_TAG_CHAIN, p, len);
    }

    if (hpki_frame_end(&c->out, start) != 0) {
        req->error = HPKI_E_INTERNAL;
        req->message = "reply too large";
        goto failed;
    }

    hpki_signd_audit(sd, req, "ok");
    goto done;

failed:

    hpki_signd_audit(sd, req, hpki_frame_code_name(req->error));
    hpki_signd_reply_error(c, req->error,
                           req->message ? req->message : "signing failed");

done:

    c->req = NULL;
    free(sig);
    hpki_signd_req_free(req);
}


static void
hpki_signd_audit(hpki_signd_t *sd, hpki_signd_req_t *req,
    const char *result)
{
    int               d;
    hpki_audit_rec_t  r;

    memset(&r, 0, sizeof(r));
    r.user = req->user;
    r.kid = req->rec.kid;
    r.version = req->rec.version;
    r.jti = req->jti;
    r.request_id = req->request_id;
    r.alg = hpki_rsa_alg_name(req->hash_alg, req->sig_alg);
    r.result = result;
    r.digest_len = req->dlen;

    for (d = 0; d < req->ndigests; d++) {
        r.digest = req->digest[d];
        if (hpki_audit_write(&sd->audit, &r) != 0) {
            hpki_log(HPKI_LOG_ERROR, "ALARM audit log write failed");
        }
    }
}


static void
hpki_signd_req_free(hpki_signd_req_t *req)
{
    hpki_signd_req_reset(req);
    hpki_key_record_free(&req->rec);

    if (req->token != NULL) {
        OPENSSL_cleanse(req->token, req->token_len);
        free(req->token);
    }

    free(req);
}


/* the cache entry of the record's public key, made if need be */

static hpki_signd_key_t *
hpki_signd_key(hpki_signd_t *sd, const BIGNUM *bn_n, const BIGNUM *bn_e)
{
    int                i;
    RSA               *pub;
    const BIGNUM      *n, *e;
    hpki_signd_key_t  *k, *lru;

    lru = NULL;

    for (i = 0; i < HPKI_SIGND_KEYS; i++) {
        k = &sd->keys[i];

        if (k->pub == NULL) {
            if (lru == NULL || lru->pub != NULL) {
                lru = k;
            }
            continue;
        }

        RSA_get0_key(k->pub, &n, &e, NULL);

        if (BN_cmp(n, bn_n) == 0 && BN_cmp(e, bn_e) == 0) {
            k->used = ++sd->key_tick;
            return k;
        }

        if (lru == NULL || (lru->pub != NULL && k->used < lru->used)) {
            lru = k;
        }
    }

    k = lru;
    hpki_signd_key_free(sd, k);

    pub = hpki_rsa_public(bn_n, bn_e);
    k->mont = BN_MONT_CTX_new();

    if (pub == NULL || k->mont == NULL
        || BN_MONT_CTX_set(k->mont, bn_n, sd->bn) != 1)
    {
        RSA_free(pub);
        hpki_signd_key_free(sd, k);
        return NULL;
    }

    pthread_mutex_lock(&sd->blinder.lock);
    k->pub = pub;
    pthread_mutex_unlock(&sd->blinder.lock);

    k->used = ++sd->key_tick;
    return k;
}


static void
hpki_signd_key_free(hpki_signd_t *sd, hpki_signd_key_t *k)
{
    int  i;

    pthread_mutex_lock(&sd->blinder.lock);

    for (i = 0; i < HPKI_SIGND_BLIND_STOCK; i++) {
        BN_clear_free(k->a[i]);
        BN_clear_free(k->ainv[i]);
    }

    RSA_free(k->pub);
    BN_MONT_CTX_free(k->mont);
    memset(k, 0, sizeof(*k));

    pthread_mutex_unlock(&sd->blinder.lock);
}


/*
 * takes one blinding pair of the key's stock; an empty stock is refilled
 * here with a batch (the blinder could not keep up, or the key is new)
 */

static int
hpki_signd_blind_take(hpki_signd_t *sd, hpki_signd_key_t *k, BIGNUM **a,
    BIGNUM **ainv)
{
    int      count;
    BIGNUM  *ba[HPKI_SIGND_BLIND], *bainv[HPKI_SIGND_BLIND];

    if (hpki_signd_blind_pop(sd, k, a, ainv) == 0) {
        return 0;
    }

    count = hpki_signd_blind_make(k->pub, k->mont, ba, bainv,
                                  HPKI_SIGND_BLIND, sd->bn, NULL);
    if (count > 0) {
        hpki_signd_blind_stock(sd, k, k->pub, ba, bainv, count);

        if (hpki_signd_blind_pop(sd, k, a, ainv) == 0) {
            return 0;
        }
    }

    hpki_log(HPKI_LOG_ERROR, "cannot make blinding factors");
    return -1;
}


/* one pair off the stock, -1 if it is empty; a low stock wants the blinder */

static int
hpki_signd_blind_pop(hpki_signd_t *sd, hpki_signd_key_t *k, BIGNUM **a,
    BIGNUM **ainv)
{
    int  rc;

    rc = -1;

    pthread_mutex_lock(&sd->blinder.lock);

    if (k->npairs > 0) {
        k->npairs--;
        *a = k->a[k->npairs];
        *ainv = k->ainv[k->npairs];
        k->a[k->npairs] = NULL;
        k->ainv[k->npairs] = NULL;

        if (!k->want
            && k->npairs <= HPKI_SIGND_BLIND_STOCK - HPKI_SIGND_BLIND)
        {
            k->want = 1;
            sd->blinder.kick = 1;
        }

        rc = 0;
    }

    pthread_mutex_unlock(&sd->blinder.lock);

    return rc;
}


/* a batch of pairs for pub; the count made, 0 if none */

static int
hpki_signd_blind_make(RSA *pub, BN_MONT_CTX *mont, BIGNUM **a,
    BIGNUM **ainv, int count, BN_CTX *ctx, void (*pause)(void))
{
    int            i, made;
    const BIGNUM  *n, *e;

    RSA_get0_key(pub, &n, &e, NULL);

    made = 0;

    for (i = 0; i < count; i++) {
        a[i] = BN_new();
        ainv[i] = BN_new();
    }

    for (i = 0; i < count; i++) {
        if (a[i] == NULL || ainv[i] == NULL) {
            goto done;
        }
    }

    /* an inversion fails only if an r shares a factor with n: draw again */

    for (i = 0; i < 2; i++) {
        if (hpki_rsa_blind_batch(n, e, mont, a, ainv, count, ctx, pause)
            == 0)
        {
            made = count;
            break;
        }
    }

done:

    if (made == 0) {
        for (i = 0; i < count; i++) {
            BN_clear_free(a[i]);
            BN_clear_free(ainv[i]);
        }
    }

    return made;
}


/* adds pairs made for pub to the key's stock, if it is still pub's */

static void
hpki_signd_blind_stock(hpki_signd_t *sd, hpki_signd_key_t *k, RSA *pub,
    BIGNUM **a, BIGNUM **ainv, int count)
{
    int  i;

    pthread_mutex_lock(&sd->blinder.lock);

    for (i = 0; i < count; i++) {
        if (k->pub == pub && k->npairs < HPKI_SIGND_BLIND_STOCK) {
            k->a[k->npairs] = a[i];
            k->ainv[k->npairs] = ainv[i];
            k->npairs++;

        } else {
            BN_clear_free(a[i]);
            BN_clear_free(ainv[i]);
        }
    }

    if (k->npairs > HPKI_SIGND_BLIND_STOCK - HPKI_SIGND_BLIND) {
        k->want = 0;
    }

    pthread_mutex_unlock(&sd->blinder.lock);
}


static int
hpki_signd_blinder_start(hpki_signd_t *sd)
{
    int  rc;

    if (pthread_mutex_init(&sd->blinder.lock, NULL) != 0
        || pthread_cond_init(&sd->blinder.cond, NULL) != 0)
    {
        hpki_log(HPKI_LOG_ERROR, "blinder: cannot initialise its lock");
        return -1;
    }

    rc = pthread_create(&sd->blinder.thread, NULL, hpki_signd_blinder, sd);
    if (rc != 0) {
        /* requests then make every batch themselves */
        hpki_log(HPKI_LOG_WARN, "blinder thread: %s", strerror(rc));
        return 0;
    }

    sd->blinder.running = 1;
    return 0;
}


static void
hpki_signd_blinder_stop(hpki_signd_t *sd)
{
    if (!sd->blinder.running) {
        return;
    }

    pthread_mutex_lock(&sd->blinder.lock);
    sd->blinder.stop = 1;
    pthread_cond_signal(&sd->blinder.cond);
    pthread_mutex_unlock(&sd->blinder.lock);

    pthread_join(sd->blinder.thread, NULL);
    sd->blinder.running = 0;
}


/*
 * between steps of a batch: SCHED_IDLE alone does not keep the blinder off
 * a busy CPU for long (EEVDF still gives it a whole slice now and then,
 * during a partial); yielding every step bounds that to one step
 */

static void
hpki_signd_blinder_pause(void)
{
    sched_yield();
}


static void *
hpki_signd_blinder(void *data)
{
    int                 i, count;
    RSA                *pub;
    BN_CTX             *ctx;
    BIGNUM             *a[HPKI_SIGND_BLIND], *ainv[HPKI_SIGND_BLIND];
    const BIGNUM       *n;
    BN_MONT_CTX        *mont;
    hpki_signd_t       *sd;
    hpki_signd_key_t   *k;
    struct sched_param  sp;

    sd = data;

    memset(&sp, 0, sizeof(sp));
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0) {
        hpki_log(HPKI_LOG_WARN, "blinder: SCHED_IDLE refused, it runs at "
                 "normal priority");
    }

    ctx = BN_CTX_new();
    mont = BN_MONT_CTX_new();

    pthread_mutex_lock(&sd->blinder.lock);

    while (ctx != NULL && mont != NULL) {

        k = NULL;

        for (i = 0; i < HPKI_SIGND_KEYS; i++) {
            if (sd->keys[i].want && sd->keys[i].pub != NULL) {
                k = &sd->keys[i];
                break;
            }
        }

        if (sd->blinder.stop) {
            break;
        }

        if (k == NULL) {
            pthread_cond_wait(&sd->blinder.cond, &sd->blinder.lock);
            continue;
        }

        pub = k->pub;
        RSA_up_ref(pub);
        count = HPKI_SIGND_BLIND_STOCK - k->npairs;
        if (count > HPKI_SIGND_BLIND) {
            count = HPKI_SIGND_BLIND;
        }

        pthread_mutex_unlock(&sd->blinder.lock);

        RSA_get0_key(pub, &n, NULL, NULL);

        if (BN_MONT_CTX_set(mont, n, ctx) == 1) {
            count = hpki_signd_blind_make(pub, mont, a, ainv, count, ctx,
                                          hpki_signd_blinder_pause);
        } else {
            count = 0;
        }

        if (count > 0) {
            hpki_signd_blind_stock(sd, k, pub, a, ainv, count);
        }

        RSA_free(pub);

        pthread_mutex_lock(&sd->blinder.lock);

        if (count == 0) {
            k->want = 0;        /* the next request makes its own batch */
        }
    }

    pthread_mutex_unlock(&sd->blinder.lock);

    BN_MONT_CTX_free(mont);
    BN_CTX_free(ctx);

    return NULL;
}


static void
hpki_signd_signals(hpki_signd_t *sd)
{
    int                       s, i, status;
    pid_t                     pid;
    struct signalfd_siginfo   si;
    hpki_signd_worker_t      *w;

    while (read(sd->signal_fd, &si, sizeof(si)) == sizeof(si)) {

        switch (si.ssi_signo) {

        case SIGTERM:
        case SIGINT:
            if (!sd->stopping) {
                hpki_log(HPKI_LOG_INFO, "signal %d: draining",
                         (int) si.ssi_signo);
                sd->stopping = 1;
                sd->stop_deadline = hpki_signd_now()
                                    + HPKI_SIGND_DRAIN_TIMEOUT;
                if (sd->listen_fd != -1) {
                    close(sd->listen_fd);
                    sd->listen_fd = -1;
                    unlink(sd->cf->listen);
                }
            }
            break;

        default:
            break;
        }
    }

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (s = 0; s < 2; s++) {
            for (i = 0; i < sd->nworkers; i++) {
                w = &sd->workers[s][i];
                if (w->pid != pid) {
                    continue;
                }
                w->pid = 0;
                if (w->fd != -1) {
                    hpki_signd_worker_gone(sd, w);
                }
            }
        }
    }
}


/* respawns, request deadlines */

static void
hpki_signd_timers(hpki_signd_t *sd)
{
    int                   s, i;
    uint64_t              now;
    hpki_signd_req_t     *req;
    hpki_signd_conn_t    *c;
    hpki_signd_worker_t  *w;

    now = hpki_signd_now();

    for (s = 0; s < 2; s++) {
        for (i = 0; i < sd->nworkers; i++) {
            w = &sd->workers[s][i];
            if (w->fd == -1 && w->pid == 0 && !sd->stopping
                && w->respawn_at <= now)
            {
                if (hpki_signd_spawn(sd, w) != 0) {
                    w->respawn_at = now + HPKI_SIGND_RESPAWN_DELAY;
                }
            }
        }
    }

    for (c = sd->conns; c; c = c->next) {
        req = c->req;
        if (req == NULL || req->deadline > now) {
            continue;
        }

        hpki_log(HPKI_LOG_ERROR, "request timed out waiting for workers");
        req->error = HPKI_E_UNAVAILABLE;
        req->message = "timed out";
        hpki_signd_audit(sd, req, "unavailable");
        hpki_signd_reply_error(c, HPKI_E_UNAVAILABLE, "timed out");
        req->conn = NULL;
        c->req = NULL;
    }
}
