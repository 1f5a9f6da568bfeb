/*
 * "hpki_lockout LIMIT WINDOW": misuse that only a holder of a genuine token
 * of the subject can commit counts against that subject in Redis
 * (hpki:fail:<sub>, INCR, expiring WINDOW after the first): a token
 * presented with another card than the one it is bound to, and a token
 * Redis no longer knows (revoked, replayed).  A forged token proves nothing
 * about its subject and never counts, so nobody can lock someone else out.
 * At LIMIT the subject's tokens and card logins are refused until the
 * window ends or an operator deletes the counter.
 */


#include "ngx_http_hpki_module.h"
#include "ngx_http_hpki_lockout.h"
#include "ngx_http_hpki_redis.h"


static void ngx_http_hpki_lockout_counted(ngx_http_request_t *r, void *data,
    redisReply *reply);


static const char  ngx_http_hpki_lockout_script[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
    "return n";


char *
ngx_http_hpki_lockout_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_hpki_main_conf_t  *hmcf = conf;

    time_t      window;
    ngx_int_t   limit;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        hmcf->lockout_limit = 0;
        return NGX_CONF_OK;
    }

    if (cf->args->nelts != 3) {
        return "takes LIMIT WINDOW, e.g. \"5 15m\", or \"off\"";
    }

    limit = ngx_atoi(value[1].data, value[1].len);
    window = ngx_parse_time(&value[2], 1);

    if (limit == NGX_ERROR || limit == 0 || window == (time_t) NGX_ERROR
        || window == 0)
    {
        return "takes LIMIT WINDOW, e.g. \"5 15m\", or \"off\"";
    }

    hmcf->lockout_limit = limit;
    hmcf->lockout_window = window;

    return NGX_CONF_OK;
}


/* counted in the background: the request's answer does not wait for it */

void
ngx_http_hpki_lockout_record(ngx_http_request_t *r, ngx_str_t *subject,
    const char *what)
{
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    if (hmcf->lockout_limit == 0 || subject->len == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "hpki: misuse of a token of \"%V\": %s", subject, what);

    (void) ngx_http_hpki_redis_command(r, ngx_http_hpki_lockout_counted,
                                       NULL, "EVAL %s 1 hpki:fail:%b %lld",
                                       ngx_http_hpki_lockout_script,
                                       subject->data, subject->len,
                                       (long long) hmcf->lockout_window);
}


static void
ngx_http_hpki_lockout_counted(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    return;
}


/* the counter as Redis returned it (string or nil) against the limit */

ngx_int_t
ngx_http_hpki_lockout_locked(ngx_http_request_t *r, redisReply *count)
{
    ngx_int_t                   n;
    ngx_http_hpki_main_conf_t  *hmcf;

    hmcf = ngx_http_get_module_main_conf(r, ngx_http_hpki_module);

    if (hmcf->lockout_limit == 0 || count == NULL
        || count->type != REDIS_REPLY_STRING)
    {
        return 0;
    }

    n = ngx_atoi((u_char *) count->str, count->len);

    return n != NGX_ERROR && (ngx_uint_t) n >= hmcf->lockout_limit;
}


/*
 * The reply of a script that stores a login's token unless its subject is
 * locked out: NGX_OK stored, NGX_DECLINED locked out, NGX_ERROR Redis
 * failed; logged either way.
 */

ngx_int_t
ngx_http_hpki_lockout_stored(ngx_http_request_t *r, redisReply *reply,
    ngx_str_t *subject)
{
    if (reply && reply->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->str, "locked") == 0)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "hpki: login of \"%V\" refused: locked out", subject);
        return NGX_DECLINED;
    }

    if (reply && reply->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->str, "ok") == 0)
    {
        return NGX_OK;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "hpki: redis: %*s", (size_t) reply->len, reply->str);
    }

    return NGX_ERROR;
}
