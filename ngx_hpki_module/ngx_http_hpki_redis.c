/*
 * One persistent Redis connection per worker.  hiredis' fd is wrapped in an
 * ngx_connection_t and its add/del read/write hooks become nginx events.
 * hiredis 0.14 has no async timeouts, so every command carries an nginx
 * timer; a command that times out resets the connection (replies are FIFO,
 * so nothing behind it can arrive either), every other pending command then
 * fails at once, and the connection comes back with backoff.
 *
 * One command is in flight per connection; the others wait their turn (on
 * their timers).  RESP replies carry no request id, so with several in
 * flight a reply injected into the stream would shift every later reply
 * onto the wrong request.  With one, and the next sent only after the
 * current read is processed, an injected reply has no command to land on:
 * the reader refuses it and the connection is dropped.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_redis.h"

#include <hiredis/async.h>


#define NGX_HTTP_HPKI_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_HPKI_REDIS_BACKOFF_MAX  5000


typedef struct {
    ngx_http_request_t              *request;   /* NULL once detached */
    ngx_http_hpki_redis_handler_pt   handler;
    void                            *data;
    ngx_event_t                      timer;
    ngx_pool_cleanup_t              *cleanup;
    ngx_queue_t                      queue;     /* while waiting */
    char                            *packed;    /* RESP, until sent */
    int                              packed_len;
    unsigned                         waiting:1;
} ngx_http_hpki_redis_cmd_t;


typedef struct {
    redisAsyncContext               *ac;
    ngx_uint_t                       sent;       /* commands on this ac */
    ngx_uint_t                       replies;    /* top-level replies read */
    ngx_uint_t                       unsolicited;  /* unsigned:1 */
    ngx_uint_t                       inflight;   /* unsigned:1 */
    ngx_queue_t                      waiting;
    ngx_event_t                      send;       /* posted: the next one */
    ngx_uint_t                       connected;  /* unsigned:1 */
    ngx_uint_t                       exiting;    /* unsigned:1 */
    ngx_msec_t                       backoff;
    ngx_event_t                      reconnect;
    ngx_log_t                       *log;
    ngx_str_t                        addr;       /* for log messages */
    char                            *host;       /* or unix socket path */
    ngx_int_t                        port;       /* 0: unix socket */
    ngx_http_hpki_main_conf_t       *hmcf;
} ngx_http_hpki_redis_t;


static ngx_int_t ngx_http_hpki_redis_split_addr(ngx_http_hpki_redis_t *rd,
    ngx_pool_t *pool);
static void ngx_http_hpki_redis_connect(ngx_http_hpki_redis_t *rd);
static void ngx_http_hpki_redis_schedule(ngx_http_hpki_redis_t *rd);
static void ngx_http_hpki_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_hpki_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_hpki_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_hpki_redis_reset(ngx_http_hpki_redis_t *rd);
static void ngx_http_hpki_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_http_hpki_redis_send(ngx_event_t *ev);
static void ngx_http_hpki_redis_fail(ngx_http_hpki_redis_cmd_t *cmd);
static void ngx_http_hpki_redis_free_cmd(ngx_http_hpki_redis_cmd_t *cmd);
static void ngx_http_hpki_redis_timeout(ngx_event_t *ev);
static void ngx_http_hpki_redis_detach(void *data);
static void ngx_http_hpki_redis_read_handler(ngx_event_t *ev);
static void ngx_http_hpki_redis_write_handler(ngx_event_t *ev);
static void ngx_http_hpki_redis_add_read(void *privdata);
static void ngx_http_hpki_redis_del_read(void *privdata);
static void ngx_http_hpki_redis_add_write(void *privdata);
static void ngx_http_hpki_redis_del_write(void *privdata);
static void ngx_http_hpki_redis_cleanup(void *privdata);
static ngx_int_t ngx_http_hpki_redis_expected(const redisReadTask *task);
static void *ngx_http_hpki_redis_create_string(const redisReadTask *task,
    char *str, size_t len);
static void *ngx_http_hpki_redis_create_array(const redisReadTask *task,
    int elements);
static void *ngx_http_hpki_redis_create_integer(const redisReadTask *task,
    long long value);
static void *ngx_http_hpki_redis_create_nil(const redisReadTask *task);


static ngx_http_hpki_redis_t  ngx_http_hpki_redis;

/* hiredis' own reply constructors, and ours around them */
static redisReplyObjectFunctions  *ngx_http_hpki_redis_default_fn;

static redisReplyObjectFunctions  ngx_http_hpki_redis_fn = {
    ngx_http_hpki_redis_create_string,
    ngx_http_hpki_redis_create_array,
    ngx_http_hpki_redis_create_integer,
    ngx_http_hpki_redis_create_nil,
    NULL
};


char *
ngx_http_hpki_redis_parse_addr(ngx_conf_t *cf, ngx_str_t *addr)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *addr;
    u.default_port = 6379;
    u.no_resolve = 0;

    /* resolved here, in the master: workers never do DNS */

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s in \"%V\"",
                           u.err ? u.err : "invalid address", addr);
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" has no address",
                           addr);
        return NGX_CONF_ERROR;
    }

    /* keep the first address as text, in a form hiredis takes */

    *addr = u.addrs[0].name;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_hpki_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_hpki_redis_t      *rd;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_hpki_module);

    if (hmcf == NULL || hmcf->redis.len == 0) {
        return NGX_OK;
    }

    rd = &ngx_http_hpki_redis;

    ngx_memzero(rd, sizeof(ngx_http_hpki_redis_t));

    rd->log = cycle->log;
    rd->hmcf = hmcf;
    rd->addr = hmcf->redis;
    rd->backoff = NGX_HTTP_HPKI_REDIS_BACKOFF_MIN;

    ngx_queue_init(&rd->waiting);

    rd->send.handler = ngx_http_hpki_redis_send;
    rd->send.data = rd;
    rd->send.log = cycle->log;

    rd->reconnect.handler = ngx_http_hpki_redis_reconnect_handler;
    rd->reconnect.data = rd;
    rd->reconnect.log = cycle->log;
    rd->reconnect.cancelable = 1;

    if (ngx_http_hpki_redis_split_addr(rd, cycle->pool) != NGX_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "hpki: invalid redis address \"%V\"", &rd->addr);
        return NGX_ERROR;
    }

    ngx_http_hpki_redis_connect(rd);

    return NGX_OK;
}


void
ngx_http_hpki_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_hpki_redis_t  *rd;

    rd = &ngx_http_hpki_redis;
    rd->exiting = 1;

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    if (rd->send.posted) {
        ngx_delete_posted_event(&rd->send);
    }

    ngx_http_hpki_redis_reset(rd);
}


static ngx_int_t
ngx_http_hpki_redis_split_addr(ngx_http_hpki_redis_t *rd, ngx_pool_t *pool)
{
    u_char  *p, *host;

    host = ngx_pnalloc(pool, rd->addr.len + 1);
    if (host == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(host, rd->addr.data, rd->addr.len);
    *p = '\0';

    if (ngx_strncmp(host, "unix:", 5) == 0) {
        rd->host = (char *) host + 5;
        rd->port = 0;
        return NGX_OK;
    }

    /* nginx's own text form: "1.2.3.4:6379" or "[::1]:6379" */

    while (p > host && *p != ':') {
        p--;
    }

    *p++ = '\0';
    rd->port = ngx_atoi(p, ngx_strlen(p));

    if (host[0] == '[') {
        host++;
        host[ngx_strlen(host) - 1] = '\0';
    }

    rd->host = (char *) host;

    return rd->port == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


static void
ngx_http_hpki_redis_connect(ngx_http_hpki_redis_t *rd)
{
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    if (rd->port == 0) {
        ac = redisAsyncConnectUnix(rd->host);

    } else {
        ac = redisAsyncConnect(rd->host, (int) rd->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "hpki: redis %V: out of memory", &rd->addr);
        ngx_http_hpki_redis_schedule(rd);
        return;
    }

    if (ac->err) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "hpki: redis %V: connect failed: %s",
                      &rd->addr, ac->errstr);
        redisAsyncFree(ac);
        ngx_http_hpki_redis_schedule(rd);
        return;
    }

    c = ngx_get_connection(ac->c.fd, rd->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_hpki_redis_schedule(rd);
        return;
    }

    c->data = rd;
    c->read->handler = ngx_http_hpki_redis_read_handler;
    c->write->handler = ngx_http_hpki_redis_write_handler;
    c->read->log = rd->log;
    c->write->log = rd->log;

    ac->data = rd;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_hpki_redis_add_read;
    ac->ev.delRead = ngx_http_hpki_redis_del_read;
    ac->ev.addWrite = ngx_http_hpki_redis_add_write;
    ac->ev.delWrite = ngx_http_hpki_redis_del_write;
    ac->ev.cleanup = ngx_http_hpki_redis_cleanup;

    /*
     * hiredis 0.14 asserts, killing the worker, on a reply that no command
     * waits for; the reader refuses one instead, which hiredis treats as a
     * read error: the connection is dropped and comes back.
     */

    if (ngx_http_hpki_redis_default_fn == NULL) {
        ngx_http_hpki_redis_default_fn = ac->c.reader->fn;
        ngx_http_hpki_redis_fn.freeObject =
                                   ngx_http_hpki_redis_default_fn->freeObject;
    }

    ac->c.reader->fn = &ngx_http_hpki_redis_fn;

    rd->sent = 0;
    rd->replies = 0;
    rd->unsolicited = 0;

    redisAsyncSetConnectCallback(ac, ngx_http_hpki_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_http_hpki_redis_disconnected);

    rd->ac = ac;

    /* a non-blocking connect completes when the socket turns writable */

    ngx_http_hpki_redis_add_write(c);
}


static void
ngx_http_hpki_redis_schedule(ngx_http_hpki_redis_t *rd)
{
    if (rd->exiting || ngx_exiting || ngx_terminate
        || rd->reconnect.timer_set)
    {
        return;
    }

    ngx_add_timer(&rd->reconnect, rd->backoff);

    rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_HPKI_REDIS_BACKOFF_MAX);
}


static void
ngx_http_hpki_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_hpki_redis_t  *rd = ev->data;

    if (rd->ac == NULL) {
        ngx_http_hpki_redis_connect(rd);
    }
}


static void
ngx_http_hpki_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_hpki_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "hpki: redis %V: connect failed: %s",
                      &rd->addr, ac->errstr);

        /* hiredis frees the context after this callback */
        rd->ac = NULL;
        rd->connected = 0;
        rd->inflight = 0;

        if (!ngx_queue_empty(&rd->waiting)) {
            ngx_post_event(&rd->send, &ngx_posted_events);
        }

        ngx_http_hpki_redis_schedule(rd);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, rd->log, 0, "hpki: redis %V: connected",
                  &rd->addr);

    rd->connected = 1;
    rd->backoff = NGX_HTTP_HPKI_REDIS_BACKOFF_MIN;
}


static void
ngx_http_hpki_redis_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_http_hpki_redis_t  *rd = ac->data;

    if (rd->unsolicited) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "hpki: redis %V: a reply no command asked for, "
                      "reconnecting", &rd->addr);

    } else if (status != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "hpki: redis %V: connection lost: %s",
                      &rd->addr, ac->errstr);
    }

    if (rd->ac == ac) {
        rd->ac = NULL;
    }

    rd->connected = 0;
    rd->inflight = 0;

    if (!ngx_queue_empty(&rd->waiting)) {
        ngx_post_event(&rd->send, &ngx_posted_events);
    }

    ngx_http_hpki_redis_schedule(rd);
}


/* drop the connection: every pending command fails with a NULL reply */

static void
ngx_http_hpki_redis_reset(ngx_http_hpki_redis_t *rd)
{
    ngx_queue_t                *q;
    redisAsyncContext          *ac;
    ngx_http_hpki_redis_cmd_t  *cmd;

    ac = rd->ac;

    /* commands issued by the failing requests must not reach this ac */

    rd->ac = NULL;
    rd->connected = 0;
    rd->inflight = 0;

    if (ac) {
        redisAsyncFree(ac);
        ngx_http_hpki_redis_schedule(rd);
    }

    while (!ngx_queue_empty(&rd->waiting)) {
        q = ngx_queue_head(&rd->waiting);
        cmd = ngx_queue_data(q, ngx_http_hpki_redis_cmd_t, queue);
        ngx_http_hpki_redis_fail(cmd);
    }
}


ngx_int_t
ngx_http_hpki_redis_command(ngx_http_request_t *r,
    ngx_http_hpki_redis_handler_pt handler, void *data, const char *format,
    ...)
{
    int                         rc;
    va_list                     args;
    ngx_pool_cleanup_t         *cln;
    ngx_http_hpki_redis_t      *rd;
    ngx_http_hpki_redis_cmd_t  *cmd;

    rd = &ngx_http_hpki_redis;

    if (rd->ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: redis %V is not connected", &rd->addr);
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cmd = ngx_calloc(sizeof(ngx_http_hpki_redis_cmd_t), r->connection->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->request = r;
    cmd->handler = handler;
    cmd->data = data;
    cmd->cleanup = cln;

    cmd->timer.handler = ngx_http_hpki_redis_timeout;
    cmd->timer.data = cmd;
    cmd->timer.log = r->connection->log;

    va_start(args, format);
    rc = redisvFormatCommand(&cmd->packed, format, args);
    va_end(args);

    if (rc < 0) {
        ngx_free(cmd);
        return NGX_ERROR;
    }

    cmd->packed_len = rc;
    cmd->waiting = 1;
    ngx_queue_insert_tail(&rd->waiting, &cmd->queue);

    /* sent from a posted event: never from within this call */

    ngx_post_event(&rd->send, &ngx_posted_events);

    cln->handler = ngx_http_hpki_redis_detach;
    cln->data = cmd;

    ngx_add_timer(&cmd->timer, rd->hmcf->redis_timeout);

    return NGX_OK;
}


ngx_int_t
ngx_http_hpki_redis_wait(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    r->main->count++;
    r->read_event_handler = ngx_http_test_reading;

    return NGX_DONE;
}


ngx_int_t
ngx_http_hpki_redis_string(ngx_http_request_t *r, redisReply *reply,
    ngx_str_t *value)
{
    if (reply == NULL) {
        return NGX_ERROR;
    }

    switch (reply->type) {

    case REDIS_REPLY_STRING:
        value->data = (u_char *) reply->str;
        value->len = reply->len;
        return NGX_OK;

    case REDIS_REPLY_NIL:
        return NGX_DECLINED;

    case REDIS_REPLY_ERROR:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: redis %V: %*s", &ngx_http_hpki_redis.addr,
                      (size_t) reply->len, reply->str);
        return NGX_ERROR;

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: redis %V: unexpected reply type %d",
                      &ngx_http_hpki_redis.addr, reply->type);
        return NGX_ERROR;
    }
}


static void
ngx_http_hpki_redis_send(ngx_event_t *ev)
{
    ngx_http_hpki_redis_t  *rd = ev->data;

    int                         rc;
    ngx_queue_t                *q;
    ngx_http_hpki_redis_cmd_t  *cmd;

    while (!rd->inflight && !ngx_queue_empty(&rd->waiting)) {

        q = ngx_queue_head(&rd->waiting);
        cmd = ngx_queue_data(q, ngx_http_hpki_redis_cmd_t, queue);

        if (rd->ac == NULL) {
            ngx_http_hpki_redis_fail(cmd);
            continue;
        }

        ngx_queue_remove(&cmd->queue);
        cmd->waiting = 0;

        rc = redisAsyncFormattedCommand(rd->ac, ngx_http_hpki_redis_reply,
                                        cmd, cmd->packed, cmd->packed_len);

        redisFreeCommand(cmd->packed);
        cmd->packed = NULL;

        if (rc != REDIS_OK) {
            ngx_http_hpki_redis_fail(cmd);
            continue;
        }

        rd->sent++;
        rd->inflight = 1;
    }
}


/* a command that was never sent: its handler gets no reply */

static void
ngx_http_hpki_redis_fail(ngx_http_hpki_redis_cmd_t *cmd)
{
    void                            *data;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_hpki_redis_handler_pt   handler;

    r = cmd->request;
    handler = cmd->handler;
    data = cmd->data;

    if (r) {
        cmd->cleanup->handler = NULL;
    }

    ngx_http_hpki_redis_free_cmd(cmd);

    if (r) {
        c = r->connection;
        handler(r, data, NULL);
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_hpki_redis_free_cmd(ngx_http_hpki_redis_cmd_t *cmd)
{
    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    if (cmd->waiting) {
        ngx_queue_remove(&cmd->queue);
    }

    if (cmd->packed) {
        redisFreeCommand(cmd->packed);
    }

    ngx_free(cmd);
}


static void
ngx_http_hpki_redis_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    ngx_http_hpki_redis_cmd_t  *cmd = privdata;

    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_hpki_redis_t      *rd;

    rd = &ngx_http_hpki_redis;
    r = cmd->request;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    if (r) {
        cmd->cleanup->handler = NULL;
    }

    /* the next one goes after this read is done: see the top */

    rd->inflight = 0;

    if (!ngx_queue_empty(&rd->waiting)) {
        ngx_post_event(&rd->send, &ngx_posted_events);
    }

    if (r && reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: redis %V: no reply: %s", &rd->addr,
                      ac->errstr[0] ? ac->errstr : "connection closed");
    }

    if (r) {
        c = r->connection;
        cmd->handler(r, cmd->data, reply);
        ngx_http_run_posted_requests(c);
    }

    ngx_free(cmd);
}


static void
ngx_http_hpki_redis_timeout(ngx_event_t *ev)
{
    ngx_http_hpki_redis_cmd_t  *cmd = ev->data;

    void                            *data;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_hpki_redis_t           *rd;
    ngx_http_hpki_redis_handler_pt   handler;

    rd = &ngx_http_hpki_redis;

    if (cmd->waiting) {
        /* never sent: the command in flight is slow, its timer resets */

        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "hpki: redis %V timed out waiting its turn",
                      &rd->addr);

        ngx_http_hpki_redis_fail(cmd);
        return;
    }

    r = cmd->request;
    handler = cmd->handler;
    data = cmd->data;
    c = r->connection;

    cmd->request = NULL;
    cmd->cleanup->handler = NULL;

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "hpki: redis %V timed out, reconnecting", &rd->addr);

    /* cmd is freed by the reset, through its reply callback */

    ngx_http_hpki_redis_reset(rd);

    handler(r, data, NULL);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_hpki_redis_detach(void *data)
{
    ngx_http_hpki_redis_cmd_t  *cmd = data;

    /*
     * The request is gone; the command is still sent (a write such as the
     * misuse counter must reach Redis), its reply is dropped.
     */

    cmd->request = NULL;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }
}


static void
ngx_http_hpki_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_http_hpki_redis_t  *rd = c->data;

    if (rd->ac == NULL || rd->ac->ev.data != c) {
        return;
    }

    /* may free the context and c with it: touch neither afterwards */

    redisAsyncHandleRead(rd->ac);
}


static void
ngx_http_hpki_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c = ev->data;
    ngx_http_hpki_redis_t  *rd = c->data;

    if (rd->ac == NULL || rd->ac->ev.data != c) {
        return;
    }

    redisAsyncHandleWrite(rd->ac);
}


static ngx_uint_t
ngx_http_hpki_redis_event_flags(void)
{
    /* hiredis reads once per call: level-triggered where the OS has it */

    if (ngx_event_flags & (NGX_USE_LEVEL_EVENT|NGX_USE_EPOLL_EVENT)) {
        return NGX_LEVEL_EVENT;
    }

    return NGX_CLEAR_EVENT;
}


static void
ngx_http_hpki_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT,
                          ngx_http_hpki_redis_event_flags())
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "hpki: redis: cannot add read event");
        }
    }
}


static void
ngx_http_hpki_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_hpki_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT,
                          ngx_http_hpki_redis_event_flags())
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "hpki: redis: cannot add write event");
        }
    }
}


static void
ngx_http_hpki_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis closes the fd right after this: release the nginx side first */

static void
ngx_http_hpki_redis_cleanup(void *privdata)
{
    ngx_connection_t  *c = privdata;

    ngx_http_hpki_redis_del_read(c);
    ngx_http_hpki_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
}


static ngx_int_t
ngx_http_hpki_redis_expected(const redisReadTask *task)
{
    ngx_http_hpki_redis_t  *rd;

    if (task->parent) {
        return 1;
    }

    rd = &ngx_http_hpki_redis;

    if (rd->replies < rd->sent) {
        rd->replies++;
        return 1;
    }

    rd->unsolicited = 1;

    return 0;
}


static void *
ngx_http_hpki_redis_create_string(const redisReadTask *task, char *str,
    size_t len)
{
    if (!ngx_http_hpki_redis_expected(task)) {
        return NULL;
    }

    return ngx_http_hpki_redis_default_fn->createString(task, str, len);
}


static void *
ngx_http_hpki_redis_create_array(const redisReadTask *task, int elements)
{
    if (!ngx_http_hpki_redis_expected(task)) {
        return NULL;
    }

    return ngx_http_hpki_redis_default_fn->createArray(task, elements);
}


static void *
ngx_http_hpki_redis_create_integer(const redisReadTask *task,
    long long value)
{
    if (!ngx_http_hpki_redis_expected(task)) {
        return NULL;
    }

    return ngx_http_hpki_redis_default_fn->createInteger(task, value);
}


static void *
ngx_http_hpki_redis_create_nil(const redisReadTask *task)
{
    if (!ngx_http_hpki_redis_expected(task)) {
        return NULL;
    }

    return ngx_http_hpki_redis_default_fn->createNil(task);
}
