/*
 * hpki-signd share worker: one process per pool slot, exec'd by the
 * combiner with "--worker a|b" and the combiner's socket on fd 3.
 *
 * A share-A worker reads only KEK A and only store A (its own Redis
 * connection and ACL user); share B likewise.  It checks the caller's
 * token itself, so a compromised combiner cannot make it sign for another
 * user, decrypts its share into locked memory, computes x^share mod n in
 * constant time, wipes the share and answers.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "hpki_core.h"
#include "hpki_frame.h"
#include "hpki_rsa.h"
#include "hpki_store.h"
#include "hpki_token.h"
#include "hpki_signd.h"


typedef struct {
    hpki_conf_t         *cf;
    hpki_conf_store_t   *store;
    u_char              *kek;
    redisContext        *redis;
    hpki_token_ctx_t     token;
    BN_CTX              *bn;
    hpki_buf_t           in;
    hpki_buf_t           out;
} hpki_signd_worker_t;


static int hpki_signd_worker_handle(hpki_signd_worker_t *w,
    hpki_frame_t *f);
static int hpki_signd_worker_partial(hpki_signd_worker_t *w,
    hpki_frame_t *f, BIGNUM *y, const char **msg);
static int hpki_signd_worker_write(hpki_signd_worker_t *w);


int
hpki_signd_worker_main(hpki_conf_t *cf, int share)
{
    int                   rc;
    ssize_t               n;
    hpki_frame_t         *f;
    hpki_signd_worker_t   w;

    memset(&w, 0, sizeof(w));
    w.cf = cf;
    w.store = &cf->store[share];
    hpki_log_role = share == 0 ? "signd-a" : "signd-b";

    hpki_harden_process();

    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        hpki_log(HPKI_LOG_WARN, "mlockall failed: %s (shares still live in "
                 "the locked secure heap)", strerror(errno));
    }

    if (CRYPTO_secure_malloc_init(1 << 16, 32) != 1) {
        hpki_log(HPKI_LOG_ERROR, "cannot create the secure heap");
        return 2;
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

    for ( ;; ) {
        if (hpki_buf_reserve(&w.in, 16384) != 0) {
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
    int                  code, rc;
    char                 user[HPKI_USER_MAX + 1], key[160], aad[160];
    char                 jti[HPKI_JTI_MAX + 1];
    BIGNUM              *n, *x, *share;
    redisReply          *r;
    unsigned long        version;
    const hpki_field_t  *fu, *fv, *fn, *fx, *ft;

    code = HPKI_E_INTERNAL;
    r = NULL;

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
    share = BN_CTX_get(w->bn);

    if (share == NULL
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

    if (hpki_share_key(key, sizeof(key), w->store, user, version) != 0
        || hpki_share_aad(aad, sizeof(aad), w->store->name, user, version)
           < 0)
    {
        goto done;
    }

    if (w->redis == NULL) {
        w->redis = hpki_redis_store(w->store);
    }

    r = w->redis ? redisCommand(w->redis, "GET %s", key) : NULL;

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        hpki_log(HPKI_LOG_ERROR, "%s: cannot read the share store",
                 w->store->name);
        if (r == NULL && w->redis != NULL) {
            redisFree(w->redis);
            w->redis = NULL;
        }
        *msg = "share store unavailable";
        code = HPKI_E_UNAVAILABLE;
        goto done;
    }

    if (r->type != REDIS_REPLY_STRING) {
        hpki_log(HPKI_LOG_WARN, "%s: no share for \"%s\" version %lu",
                 w->store->name, user, version);
        *msg = "no share";
        code = HPKI_E_NO_KEY;
        goto done;
    }

    rc = hpki_share_open(w->kek, aad, (u_char *) r->str, r->len, n, share);

    if (rc != 0) {
        hpki_log(HPKI_LOG_ERROR, "ALARM %s: share for \"%s\" version %lu %s",
                 w->store->name, user, version,
                 rc == -2 ? "belongs to another modulus"
                          : "fails authentication (corrupt or tampered)");
        *msg = "share unusable";
        code = HPKI_E_SIGN_FAILED;
        goto done;
    }

    if (hpki_rsa_partial(y, x, share, n, w->bn) != 0) {
        goto done;
    }

    code = 0;

done:

    if (share != NULL) {
        BN_clear(share);
    }

    if (r != NULL) {
        freeReplyObject(r);
    }

    BN_CTX_end(w->bn);
    return code;
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
