/*
 * hpki-signd-bench: load generator for hpki-signd, in the style of
 * gokeyless' bench.  Each of -c threads keeps one connection and sends
 * SIGN requests (one digest) back to back for -d seconds; it prints
 * signatures/s and p50/p99 latency, then, as the ceiling, the same two
 * partial exponentiations done in-process with a fresh key of the same
 * size: sequentially on one core, and on every core at once.
 *
 *   hpki-signd-bench -s SOCKET -u USER -t TOKEN_FILE [-c 4] [-d 10]
 *                    [-a sha256|sha384|sha512] [-p] [-b BITS]
 *   hpki-signd-bench -C [-d 3] [-b 2048]      (the ceiling alone)
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/rand.h>

#include "hpki_core.h"
#include "hpki_frame.h"
#include "hpki_rsa.h"


#define HPKI_BENCH_MAX_SAMPLES  (1 << 20)


typedef struct {
    pthread_t      tid;
    int            fd;
    double        *lat;
    size_t         n;
    size_t         errors;
    int            bits;
} hpki_bench_thread_t;


static const char   *hpki_bench_socket;
static const char   *hpki_bench_user;
static u_char       *hpki_bench_token;
static size_t        hpki_bench_token_len;
static int           hpki_bench_hash = 1;
static int           hpki_bench_sig = 1;
static double        hpki_bench_until;


static double
hpki_bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static int
hpki_bench_connect(void)
{
    int                 fd;
    struct sockaddr_un  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", hpki_bench_socket);

    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        perror(hpki_bench_socket);
        exit(1);
    }

    return fd;
}


static int
hpki_bench_io(int fd, hpki_buf_t *req, u_char *reply, size_t size,
    hpki_frame_t *f)
{
    size_t   got, need;
    ssize_t  n;

    if (write(fd, req->data, req->len) != (ssize_t) req->len) {
        return -1;
    }

    got = 0;
    need = 4;

    for ( ;; ) {
        if (got >= 4) {
            need = 4 + hpki_get_u32(reply);
            if (need > size) {
                return -1;
            }
        }
        if (got >= need && got >= 4) {
            break;
        }
        n = read(fd, reply + got, need - got);
        if (n <= 0) {
            return -1;
        }
        got += n;
    }

    return hpki_frame_decode(reply, got, f) == HPKI_FRAME_OK ? 0 : -1;
}


static void *
hpki_bench_run(void *arg)
{
    size_t                start, dlen;
    double                t0;
    u_char                digest[64], *reply;
    hpki_buf_t            req = { NULL, 0, 0 };
    hpki_frame_t         *f;
    hpki_bench_thread_t  *th;
    const hpki_field_t   *sig;

    th = arg;
    f = malloc(sizeof(*f));
    reply = malloc(HPKI_FRAME_MAX + 4);
    dlen = EVP_MD_get_size(hpki_rsa_md(hpki_bench_hash));
    th->fd = hpki_bench_connect();

    while (hpki_bench_now() < hpki_bench_until
           && th->n < HPKI_BENCH_MAX_SAMPLES)
    {
        RAND_bytes(digest, dlen);
        req.len = 0;
        start = hpki_frame_begin(&req, HPKI_T_SIGN);
        hpki_frame_add(&req, HPKI_TAG_TOKEN, hpki_bench_token,
                       hpki_bench_token_len);
        hpki_frame_add(&req, HPKI_TAG_USER, hpki_bench_user,
                       strlen(hpki_bench_user));
        hpki_frame_add_u8(&req, HPKI_TAG_HASH_ALG, hpki_bench_hash);
        hpki_frame_add_u8(&req, HPKI_TAG_SIG_ALG, hpki_bench_sig);
        hpki_frame_add(&req, HPKI_TAG_DIGEST, digest, dlen);
        hpki_frame_add(&req, HPKI_TAG_REQUEST_ID, "bench", 5);
        hpki_frame_end(&req, start);

        t0 = hpki_bench_now();

        if (hpki_bench_io(th->fd, &req, reply, HPKI_FRAME_MAX + 4, f) != 0) {
            fprintf(stderr, "hpki-signd-bench: connection failed\n");
            exit(1);
        }

        sig = hpki_frame_field(f, HPKI_TAG_SIGNATURE);
        if (f->type != HPKI_T_SIGN_OK || sig == NULL) {
            th->errors++;
            continue;
        }

        th->bits = sig->len * 8;
        th->lat[th->n++] = hpki_bench_now() - t0;
    }

    close(th->fd);
    free(f);
    free(reply);
    hpki_buf_free(&req);
    return NULL;
}


static int
hpki_bench_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


/* in-process: the two partial exponentiations of one signature */

typedef struct {
    pthread_t   tid;
    BIGNUM     *n, *da, *db;
    double      secs;
    long        count;
} hpki_bench_ceiling_t;


static void *
hpki_bench_partials(void *arg)
{
    double                 t0;
    BIGNUM                *x, *ya, *yb;
    BN_CTX                *ctx;
    hpki_bench_ceiling_t  *c;

    c = arg;
    ctx = BN_CTX_new();
    x = BN_new();
    ya = BN_new();
    yb = BN_new();
    c->count = 0;
    t0 = hpki_bench_now();

    while (hpki_bench_now() - t0 < c->secs) {
        BN_rand_range(x, c->n);
        hpki_rsa_partial(ya, x, c->da, c->n, ctx);
        hpki_rsa_partial(yb, x, c->db, c->n, ctx);
        c->count++;
    }

    c->secs = hpki_bench_now() - t0;
    BN_free(x);
    BN_free(ya);
    BN_free(yb);
    BN_CTX_free(ctx);
    return NULL;
}


/*
 * the ceiling: a fresh key of the same size, split the same way, its two
 * partials in-process, sequentially on one core (one: seconds per pair)
 * and on every core at once (par: pairs per second)
 */

static void
hpki_bench_ceiling(int bits, int secs, double *one, double *par, int *ncpu)
{
    int                    i;
    RSA                   *rsa;
    BIGNUM                *da, *db;
    BN_CTX                *ctx;
    EVP_PKEY              *pk;
    const BIGNUM          *n;
    hpki_bench_ceiling_t   c[64];

    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) bits);
    rsa = EVP_PKEY_get1_RSA(pk);
    ctx = BN_CTX_new();
    da = BN_new();
    db = BN_new();
    RSA_get0_key(rsa, &n, NULL, NULL);
    hpki_rsa_split(rsa, da, db, ctx);

    c[0].n = (BIGNUM *) n;
    c[0].da = da;
    c[0].db = db;
    c[0].secs = secs;
    hpki_bench_partials(&c[0]);
    *one = c[0].secs / c[0].count;

    *ncpu = (int) sysconf(_SC_NPROCESSORS_ONLN);
    *ncpu = *ncpu < 1 ? 1 : *ncpu > 64 ? 64 : *ncpu;

    for (i = 0; i < *ncpu; i++) {
        c[i] = c[0];
        c[i].secs = secs;
        pthread_create(&c[i].tid, NULL, hpki_bench_partials, &c[i]);
    }

    *par = 0;
    for (i = 0; i < *ncpu; i++) {
        pthread_join(c[i].tid, NULL);
        *par += c[i].count / c[i].secs;
    }

    BN_clear_free(da);
    BN_clear_free(db);
    BN_CTX_free(ctx);
    RSA_free(rsa);
    EVP_PKEY_free(pk);
}


int
main(int argc, char **argv)
{
    int                    ch, conc, secs, bits, pss, i, ncpu, only;
    char                  *alg;
    size_t                 total, errors, k;
    double                *all, t0, elapsed, one, rate, par;
    const char            *token_file;
    hpki_bench_thread_t   *th;

    conc = 4;
    secs = 10;
    bits = 0;
    pss = 0;
    alg = "sha256";
    token_file = NULL;
    only = 0;

    while ((ch = getopt(argc, argv, "s:u:t:c:d:a:b:pC")) != -1) {
        switch (ch) {
        case 's': hpki_bench_socket = optarg; break;
        case 'u': hpki_bench_user = optarg; break;
        case 't': token_file = optarg; break;
        case 'c': conc = atoi(optarg); break;
        case 'd': secs = atoi(optarg); break;
        case 'a': alg = optarg; break;
        case 'b': bits = atoi(optarg); break;
        case 'p': pss = 1; break;
        case 'C': only = 1; break;
        default:
            fprintf(stderr, "usage: hpki-signd-bench -s SOCKET -u USER "
                    "-t TOKEN_FILE [-c CONCURRENCY] [-d SECONDS]\n"
                    "       [-a sha256|sha384|sha512] [-p (PSS)] "
                    "[-b BITS (ceiling key size)]\n"
                    "       hpki-signd-bench -C [-d SECONDS] [-b BITS]\n");
            return 2;
        }
    }

    if (only) {
        if (secs < 1 || (bits != 0 && (bits < 1024 || bits > 8192))) {
            fprintf(stderr, "hpki-signd-bench: bad -d or -b\n");
            return 2;
        }

        hpki_bench_ceiling(bits ? bits : 2048, secs, &one, &par, &ncpu);
        printf("ceiling:  two partial modexps in-process: %.2f ms sequential "
               "(%.1f/s on one core), %.1f/s on %d cores\n",
               1e3 * one, 1 / one, par, ncpu);
        return 0;
    }

    if (hpki_bench_socket == NULL || hpki_bench_user == NULL
        || token_file == NULL || conc < 1 || conc > 256 || secs < 1)
    {
        fprintf(stderr, "hpki-signd-bench: -s, -u and -t are required\n");
        return 2;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);   /* lines as they come (bench.pl) */

    hpki_bench_hash = strcmp(alg, "sha384") == 0 ? 2
                      : strcmp(alg, "sha512") == 0 ? 3 : 1;
    hpki_bench_sig = pss ? HPKI_SIG_PSS : HPKI_SIG_PKCS1;

    if (hpki_read_file(token_file, &hpki_bench_token,
                       &hpki_bench_token_len) != 0)
    {
        perror(token_file);
        return 1;
    }

    while (hpki_bench_token_len > 0
           && (hpki_bench_token[hpki_bench_token_len - 1] == '\n'
               || hpki_bench_token[hpki_bench_token_len - 1] == '\r'))
    {
        hpki_bench_token_len--;
    }

    /* the daemon */

    th = calloc(conc, sizeof(*th));
    hpki_bench_until = hpki_bench_now() + secs;
    t0 = hpki_bench_now();

    for (i = 0; i < conc; i++) {
        th[i].lat = malloc(HPKI_BENCH_MAX_SAMPLES * sizeof(double));
        pthread_create(&th[i].tid, NULL, hpki_bench_run, &th[i]);
    }

    total = 0;
    errors = 0;
    for (i = 0; i < conc; i++) {
        pthread_join(th[i].tid, NULL);
        total += th[i].n;
        errors += th[i].errors;
        if (th[i].bits) {
            bits = bits ? bits : th[i].bits;
        }
    }

    elapsed = hpki_bench_now() - t0;

    all = malloc((total + 1) * sizeof(double));
    for (i = 0, k = 0; i < conc; i++) {
        memcpy(all + k, th[i].lat, th[i].n * sizeof(double));
        k += th[i].n;
    }
    qsort(all, total, sizeof(double), hpki_bench_cmp);

    if (total == 0) {
        fprintf(stderr, "hpki-signd-bench: no signature (%zu errors)\n",
                errors);
        return 1;
    }

    rate = total / elapsed;
    printf("daemon:   RSA-%d %s-%s concurrency %d, %d s: %zu signatures, "
           "%zu errors\n", bits, alg, pss ? "pss" : "pkcs1", conc, secs,
           total, errors);
    printf("          %.1f signatures/s, latency p50 %.2f ms, p99 %.2f ms\n",
           rate, 1e3 * all[total / 2], 1e3 * all[(size_t) (total * 0.99)]);

    hpki_bench_ceiling(bits, secs < 3 ? secs : 3, &one, &par, &ncpu);

    printf("ceiling:  two partial modexps in-process: %.2f ms sequential "
           "(%.1f/s on one core), %.1f/s on %d cores\n",
           1e3 * one, 1 / one, par, ncpu);
    printf("ratios:   throughput / one-core ceiling %.2f, / %d-core ceiling "
           "%.2f; p50 latency / sequential two-modexp time %.2f\n",
           rate * one, ncpu, rate / par, all[total / 2] / one);

    return 0;
}
