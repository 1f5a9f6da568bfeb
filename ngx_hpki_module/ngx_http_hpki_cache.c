/*
 * Verified tokens, shared by all workers: "hpki_token_cache SIZE [valid=T]".
 *
 * An entry holds what a successful check established (subject, role, ...)
 * under the SHA-256 of the token.  It is trusted for "valid" (1s by default)
 * after Redis last confirmed the token, and never past the token's exp, so
 * Redis stays the source of truth: a revocation made elsewhere takes effect
 * here within "valid", one made here at once.  Entries live in an rbtree
 * with an LRU queue; when the zone is full the oldest are dropped.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_cache.h"


#define NGX_HTTP_HPKI_CACHE_FIELDS  6


typedef struct {
    u_char                       color;
    u_char                       dummy;
    u_short                      len;         /* of data[] */
    ngx_queue_t                  queue;
    time_t                       exp;         /* the token's */
    ngx_msec_t                   confirmed;   /* by Redis, monotonic */
    u_char                       key[NGX_HTTP_HPKI_CACHE_KEY_LEN];
    u_char                       data[1];     /* length-prefixed fields */
} ngx_http_hpki_cache_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;       /* most recent first */
} ngx_http_hpki_cache_shctx_t;


typedef struct {
    ngx_http_hpki_cache_shctx_t *sh;
    ngx_slab_pool_t             *shpool;
    ngx_msec_t                   valid;
} ngx_http_hpki_cache_t;


static ngx_int_t ngx_http_hpki_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_hpki_cache_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_hpki_cache_node_t *ngx_http_hpki_cache_find(
    ngx_http_hpki_cache_t *cache, u_char *key);
static void ngx_http_hpki_cache_free(ngx_http_hpki_cache_t *cache,
    ngx_http_hpki_cache_node_t *cn);
static void ngx_http_hpki_cache_expire(ngx_http_hpki_cache_t *cache,
    ngx_uint_t n);
static ngx_str_t *ngx_http_hpki_cache_fields(ngx_http_hpki_identity_t *id,
    ngx_uint_t i);


static ngx_str_t  ngx_http_hpki_cache_name = ngx_string("hpki_token_cache");


char *
ngx_http_hpki_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_hpki_main_conf_t  *hmcf = conf;

    ssize_t                 size;
    ngx_str_t              *value, s;
    ngx_uint_t              i;
    ngx_msec_t              valid;
    ngx_shm_zone_t         *shm_zone;
    ngx_http_hpki_cache_t  *cache;

    if (hmcf->cache) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid cache size \"%V\" (at least %uzk)",
                           &value[1], 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    valid = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "valid=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            valid = ngx_parse_time(&s, 0);

            if (valid == (ngx_msec_t) NGX_ERROR || valid == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_hpki_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cache->valid = valid;

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_hpki_cache_name, size,
                                     &ngx_http_hpki_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_hpki_cache_init_zone;
    shm_zone->data = cache;

    hmcf->cache = cache;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_hpki_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_hpki_cache_t  *ocache = data;

    size_t                  len;
    ngx_http_hpki_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_hpki_cache_shctx_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_hpki_cache_rbtree_insert_value);

    ngx_queue_init(&cache->sh->queue);

    len = sizeof(" in hpki token cache \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in hpki token cache \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full cache only means more trips to Redis */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_hpki_cache_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_http_hpki_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_http_hpki_cache_node_t *) &node->color;
            cnt = (ngx_http_hpki_cache_node_t *) &temp->color;

            p = (ngx_memcmp(cn->key, cnt->key, NGX_HTTP_HPKI_CACHE_KEY_LEN)
                 < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_rbtree_key_t
ngx_http_hpki_cache_hash(u_char *key)
{
    ngx_rbtree_key_t  hash;

    /* the key is a SHA-256: any of its bytes are uniform already */

    ngx_memcpy(&hash, key, sizeof(ngx_rbtree_key_t));

    return hash;
}


static ngx_http_hpki_cache_node_t *
ngx_http_hpki_cache_find(ngx_http_hpki_cache_t *cache, u_char *key)
{
    ngx_int_t                    rc;
    ngx_rbtree_key_t             hash;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_hpki_cache_node_t  *cn;

    hash = ngx_http_hpki_cache_hash(key);

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_http_hpki_cache_node_t *) &node->color;

        rc = ngx_memcmp(key, cn->key, NGX_HTTP_HPKI_CACHE_KEY_LEN);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static ngx_str_t *
ngx_http_hpki_cache_fields(ngx_http_hpki_identity_t *id, ngx_uint_t i)
{
    switch (i) {
    case 0:
        return &id->subject;
    case 1:
        return &id->role;
    case 2:
        return &id->auth_method;
    case 3:
        return &id->scope;
    case 4:
        return &id->token_id;
    default:
        return &id->x5t;
    }
}


ngx_int_t
ngx_http_hpki_cache_lookup(ngx_http_request_t *r, u_char *key,
    ngx_http_hpki_identity_t *id)
{
    u_char                      *p, buf[NGX_HTTP_HPKI_CACHE_FIELDS * 256];
    size_t                       len;
    ngx_str_t                   *f;
    ngx_uint_t                   i;
    ngx_http_hpki_cache_t       *cache;
    ngx_http_hpki_main_conf_t   *hmcf;
    ngx_http_hpki_cache_node_t  *cn;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    cache = hmcf->cache;

    if (cache == NULL) {
        return NGX_DECLINED;
    }

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_hpki_cache_find(cache, key);

    if (cn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    if (cn->exp + hmcf->leeway <= ngx_time()) {
        ngx_http_hpki_cache_free(cache, cn);
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - cn->confirmed)
        >= (ngx_msec_int_t) cache->valid)
    {
        /* stale: Redis is asked again, which refreshes the entry */
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    len = cn->len;
    ngx_memcpy(buf, cn->data, len);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    /* decode outside the lock, into the request's pool */

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    ngx_memcpy(p, buf, len);

    for (i = 0; i < NGX_HTTP_HPKI_CACHE_FIELDS; i++) {
        f = ngx_http_hpki_cache_fields(id, i);
        f->len = *p++;
        f->data = p;
        p += f->len;
    }

    return NGX_OK;
}


void
ngx_http_hpki_cache_store(ngx_http_request_t *r, u_char *key,
    ngx_http_hpki_identity_t *id, time_t exp)
{
    u_char                      *p;
    size_t                       len, n;
    ngx_str_t                   *f;
    ngx_uint_t                   i;
    ngx_rbtree_node_t           *node;
    ngx_http_hpki_cache_t       *cache;
    ngx_http_hpki_main_conf_t   *hmcf;
    ngx_http_hpki_cache_node_t  *cn;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    cache = hmcf->cache;

    if (cache == NULL) {
        return;
    }

    len = 0;

    for (i = 0; i < NGX_HTTP_HPKI_CACHE_FIELDS; i++) {
        f = ngx_http_hpki_cache_fields(id, i);

        if (f->len > 255) {
            return;
        }

        len += 1 + f->len;
    }

    n = offsetof(ngx_rbtree_node_t, color)
        + offsetof(ngx_http_hpki_cache_node_t, data)
        + len;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_hpki_cache_find(cache, key);

    if (cn) {
        ngx_http_hpki_cache_free(cache, cn);
    }

    ngx_http_hpki_cache_expire(cache, 1);

    node = ngx_slab_alloc_locked(cache->shpool, n);

    if (node == NULL) {
        ngx_http_hpki_cache_expire(cache, 0);

        node = ngx_slab_alloc_locked(cache->shpool, n);
        if (node == NULL) {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return;
        }
    }

    cn = (ngx_http_hpki_cache_node_t *) &node->color;

    node->key = ngx_http_hpki_cache_hash(key);
    ngx_memcpy(cn->key, key, NGX_HTTP_HPKI_CACHE_KEY_LEN);
    cn->len = (u_short) len;
    cn->exp = exp;
    cn->confirmed = ngx_current_msec;

    p = cn->data;

    for (i = 0; i < NGX_HTTP_HPKI_CACHE_FIELDS; i++) {
        f = ngx_http_hpki_cache_fields(id, i);
        *p++ = (u_char) f->len;
        p = ngx_cpymem(p, f->data, f->len);
    }

    ngx_rbtree_insert(&cache->sh->rbtree, node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_hpki_cache_delete(ngx_http_request_t *r, u_char *key)
{
    ngx_http_hpki_cache_t       *cache;
    ngx_http_hpki_main_conf_t   *hmcf;
    ngx_http_hpki_cache_node_t  *cn;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);
    cache = hmcf->cache;

    if (cache == NULL) {
        return;
    }

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_hpki_cache_find(cache, key);

    if (cn) {
        ngx_http_hpki_cache_free(cache, cn);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


static void
ngx_http_hpki_cache_free(ngx_http_hpki_cache_t *cache,
    ngx_http_hpki_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, node);
    ngx_slab_free_locked(cache->shpool, node);
}


/*
 * n == 1: drop up to two entries past their token's exp from the LRU end;
 * n == 0: the zone is full, drop the least recently used regardless.
 */

static void
ngx_http_hpki_cache_expire(ngx_http_hpki_cache_t *cache, ngx_uint_t n)
{
    time_t                       now;
    ngx_queue_t                 *q;
    ngx_uint_t                   i;
    ngx_http_hpki_cache_node_t  *cn;

    now = ngx_time();

    for (i = 0; i < 3; i++) {

        if (ngx_queue_empty(&cache->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&cache->sh->queue);
        cn = ngx_queue_data(q, ngx_http_hpki_cache_node_t, queue);

        if (n && (cn->exp > now || i == 2)) {
            return;
        }

        ngx_http_hpki_cache_free(cache, cn);
    }
}
