/*
 * ngx_http_maintenance_link.c: worker 0's two Redis links (command and
 * subscriber): connect, AUTH/SELECT, SUBSCRIBE, timeouts and backoff.
 */

#include "ngx_http_maintenance_module.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_MAINTENANCE_BACKOFF_MIN     100
#define NGX_HTTP_MAINTENANCE_BACKOFF_MAX     5000

/* what a link last logged, so that each transition is logged once */
#define NGX_HTTP_MAINTENANCE_LOGGED_NONE     0
#define NGX_HTTP_MAINTENANCE_LOGGED_UP       1
#define NGX_HTTP_MAINTENANCE_LOGGED_DOWN     2


static void ngx_http_maintenance_keepalive(ngx_socket_t fd);
static void ngx_http_maintenance_link_failed(
    ngx_http_maintenance_link_t *link, const char *why);
static void ngx_http_maintenance_link_closed(void *data,
    const struct redisAsyncContext *ac);
static void ngx_http_maintenance_link_ready(ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_link_timeout(ngx_event_t *ev);
static void ngx_http_maintenance_link_reconnect(ngx_event_t *ev);
static void ngx_http_maintenance_connect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_maintenance_handshake_cb(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_maintenance_subscribe(ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_message_cb(redisAsyncContext *ac, void *r,
    void *privdata);


void
ngx_http_maintenance_link_init(ngx_http_maintenance_link_t *link,
    ngx_http_maintenance_sync_t *sync, const char *name, ngx_uint_t kind)
{
    link->sync = sync;
    link->name = name;
    link->kind = kind;
    link->backoff = NGX_HTTP_MAINTENANCE_BACKOFF_MIN;

    /* every timer is cancelable: a graceful shutdown does not wait */

    link->timeout.handler = ngx_http_maintenance_link_timeout;
    link->timeout.data = link;
    link->timeout.log = sync->log;
    link->timeout.cancelable = 1;

    link->reconnect.handler = ngx_http_maintenance_link_reconnect;
    link->reconnect.data = link;
    link->reconnect.log = sync->log;
    link->reconnect.cancelable = 1;
}


/* for good: no reconnect after this (sync->exiting is set) */

void
ngx_http_maintenance_link_stop(ngx_http_maintenance_link_t *link)
{
    if (link->reconnect.timer_set) {
        ngx_del_timer(&link->reconnect);
    }

    ngx_http_maintenance_link_drop(link);

    if (link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }
}


void
ngx_http_maintenance_link_connect(ngx_http_maintenance_link_t *link)
{
    char                              *why;
    redisAsyncContext                 *ac;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = link->sync->mmcf;

    link->timed_out = 0;
    link->pending = 0;
    link->ready = 0;

    /*
     * Non-blocking: the address is numeric (resolved at configuration
     * load), so hiredis does no DNS lookup and connect() returns at once.
     */

    if (mmcf->redis_unix.len) {
        ac = redisAsyncConnectUnix((char *) mmcf->redis_unix.data);

    } else {
        ac = redisAsyncConnect((char *) mmcf->redis_host.data,
                               (int) mmcf->redis_port);
    }

    if (ac == NULL) {
        ngx_http_maintenance_link_failed(link, "out of memory");
        return;
    }

    if (ac->err) {
        why = ac->errstr;
        ngx_http_maintenance_link_failed(link, why);
        redisAsyncFree(ac);
        return;
    }

    if (ngx_http_maintenance_redis_attach(ac, link->sync->log,
                                          ngx_http_maintenance_link_closed,
                                          link)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_maintenance_link_failed(link, "no free nginx connection");
        return;
    }

    ac->data = link;
    link->ac = ac;

    if (mmcf->redis_unix.len == 0) {
        ngx_http_maintenance_keepalive(ac->c.fd);
    }

    ngx_add_timer(&link->timeout, mmcf->redis_timeout);

    /* asks for the write event that tells the connect finished */
    (void) redisAsyncSetConnectCallback(ac, ngx_http_maintenance_connect_cb);
}


/*
 * The subscriber idles for hours: a NAT or firewall that forgets the
 * connection would silently end pub/sub (polls would go on).  TCP
 * keepalive finds out in about 90 s and the link starts over.  Best
 * effort: a failure changes nothing else.
 */

static void
ngx_http_maintenance_keepalive(ngx_socket_t fd)
{
    int  on, idle, intvl, cnt;

    on = 1;
    idle = 60;
    intvl = 10;
    cnt = 3;

    (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(int));

#if (NGX_HAVE_KEEPALIVE_TUNABLE)
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(int));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(int));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(int));
#else
    (void) idle;
    (void) intvl;
    (void) cnt;
#endif
}


/* a connect that never got a context: log once, try again later */

static void
ngx_http_maintenance_link_failed(ngx_http_maintenance_link_t *link,
    const char *why)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    if (link->logged != NGX_HTTP_MAINTENANCE_LOGGED_DOWN) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V down: %s; "
                      "retrying", link->name, &sync->mmcf->redis_addr, why);
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD) {
        sync->cmd_down(sync);
    }

    if (!sync->exiting && !link->reconnect.timer_set) {
        ngx_add_timer(&link->reconnect, link->backoff);
        link->backoff = ngx_min(link->backoff * 2,
                                ngx_min(sync->mmcf->poll,
                                        NGX_HTTP_MAINTENANCE_BACKOFF_MAX));
        link->backoff = ngx_max(link->backoff,
                                NGX_HTTP_MAINTENANCE_BACKOFF_MIN);
    }
}


/*
 * Frees the context.  Inside one of this context's reply callbacks hiredis
 * defers the free until the callback returns; either way the adapter's
 * cleanup calls link_closed() exactly once.  No new command is sent on a
 * dropped link.
 */

void
ngx_http_maintenance_link_drop(ngx_http_maintenance_link_t *link)
{
    redisAsyncContext  *ac;

    ac = link->ac;

    if (ac == NULL) {
        return;
    }

    link->ready = 0;

    if (ac->c.flags & REDIS_FREEING) {
        return;
    }

    redisAsyncFree(ac);
}


/* from the adapter's cleanup: the context is being freed, for any reason */

static void
ngx_http_maintenance_link_closed(void *data,
    const struct redisAsyncContext *ac)
{
    ngx_http_maintenance_link_t  *link = data;

    const char                   *why;
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    link->ac = NULL;
    link->ready = 0;
    link->pending = 0;

    if (link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }

    if (sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        /* the zone is the next worker 0's now */
        sync->exiting = 1;
        return;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD) {
        sync->cmd_closed(sync);
    }

    if (link->timed_out) {
        why = "timed out";

    } else if (ac->err && ac->errstr && ac->errstr[0]) {
        why = ac->errstr;

    } else {
        why = "connection closed";
    }

    ngx_http_maintenance_link_failed(link, why);

}


static void
ngx_http_maintenance_link_ready(ngx_http_maintenance_link_t *link)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    link->ready = 1;
    link->refused = 0;
    link->backoff = NGX_HTTP_MAINTENANCE_BACKOFF_MIN;

    if (link->pending == 0 && link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }

    if (link->logged != NGX_HTTP_MAINTENANCE_LOGGED_UP) {
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "maintenance: redis %s link to %V up%s", link->name,
                      &sync->mmcf->redis_addr,
                      link->ever_up ? " again" : "");
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_UP;
    }

    if (link->ever_up) {
        (void) ngx_atomic_fetch_add(&sync->sh->reconnects, 1);
    }

    link->ever_up = 1;

    /*
     * A new command link reads everything; so does a new subscriber: events
     * published while it was away are lost.
     */

    sync->link_up(sync);
}


static void
ngx_http_maintenance_link_timeout(ngx_event_t *ev)
{
    ngx_http_maintenance_link_t  *link;
    ngx_http_maintenance_sync_t  *sync;

    link = ev->data;
    sync = link->sync;

    link->timed_out = 1;
    ngx_http_maintenance_link_drop(link);

    /*
     * A command that timed out means the server (or the path to it) is
     * gone: the idle subscriber would not notice, so it goes too.
     */

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD && sync->sub.ac) {
        sync->sub.timed_out = 1;
        ngx_http_maintenance_link_drop(&sync->sub);
    }
}


static void
ngx_http_maintenance_link_reconnect(ngx_event_t *ev)
{
    ngx_http_maintenance_link_t  *link;

    link = ev->data;

    if (link->sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (link->ac == NULL) {
        ngx_http_maintenance_link_connect(link);
    }
}


/* every command goes through here: counts replies due, arms the timeout */

ngx_int_t
ngx_http_maintenance_link_send(ngx_http_maintenance_link_t *link,
    ngx_http_maintenance_reply_pt fn, void *privdata, int argc,
    const char **argv, const size_t *argvlen)
{
    if (link->ac == NULL) {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(link->ac, fn, privdata, argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    link->pending++;

    if (!link->timeout.timer_set) {
        ngx_add_timer(&link->timeout, link->sync->mmcf->redis_timeout);
    }

    return NGX_OK;
}


/* a reply arrived: the deadline moves on, or goes when nothing is due */

void
ngx_http_maintenance_link_reply(ngx_http_maintenance_link_t *link)
{
    if (link->pending) {
        link->pending--;
    }

    if (link->pending == 0) {
        if (link->timeout.timer_set) {
            ngx_del_timer(&link->timeout);
        }

    } else {
        ngx_add_timer(&link->timeout, link->sync->mmcf->redis_timeout);
    }
}


/*
 * hiredis 0.14 calls this outside its callback guard: freeing the context
 * here would be a use after free in the caller.  On failure hiredis frees
 * the context itself right after (link_closed follows).
 */

static void
ngx_http_maintenance_connect_cb(const redisAsyncContext *cac, int status)
{
    int                                n;
    size_t                             lens[3];
    const char                        *argv[3];
    u_char                             db[NGX_INT_T_LEN];
    ngx_http_maintenance_link_t       *link;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (status != REDIS_OK) {
        return;
    }

    link = cac->data;
    mmcf = link->sync->mmcf;

    /* the password goes on the wire only: never in a log line */

    if (mmcf->redis_password.len) {
        n = 0;
        argv[n] = "AUTH";
        lens[n++] = 4;

        if (mmcf->redis_user.len) {
            argv[n] = (char *) mmcf->redis_user.data;
            lens[n++] = mmcf->redis_user.len;
        }

        argv[n] = (char *) mmcf->redis_password.data;
        lens[n++] = mmcf->redis_password.len;

        (void) ngx_http_maintenance_link_send(link,
                                              ngx_http_maintenance_handshake_cb,
                                              (void *) "AUTH", n, argv, lens);
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD && mmcf->redis_db > 0) {
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = (char *) db;
        lens[1] = ngx_sprintf(db, "%i", mmcf->redis_db) - db;

        (void) ngx_http_maintenance_link_send(link,
                                              ngx_http_maintenance_handshake_cb,
                                              (void *) "SELECT", 2, argv,
                                              lens);
    }

    if (link->pending) {
        return;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_SUB) {
        ngx_http_maintenance_subscribe(link);

    } else {
        ngx_http_maintenance_link_ready(link);
    }
}


static void
ngx_http_maintenance_handshake_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                          msg[128];
    redisReply                   *reply = r;
    ngx_http_maintenance_link_t  *link;

    if (reply == NULL) {
        /* the context is being freed */
        return;
    }

    link = ac->data;

    ngx_http_maintenance_link_reply(link);

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!link->refused) {
            ngx_cpystrn((u_char *) msg, (u_char *) reply->str, sizeof(msg));
            ngx_http_maintenance_printable(msg);

            ngx_log_error(NGX_LOG_ERR, link->sync->log, 0,
                          "maintenance: redis %s link to %V: %s refused: %s",
                          link->name, &link->sync->mmcf->redis_addr,
                          (char *) privdata, msg);
            link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
            link->refused = 1;
        }

        ngx_http_maintenance_link_drop(link);
        return;
    }

    if (link->pending) {
        return;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_SUB) {
        ngx_http_maintenance_subscribe(link);

    } else {
        ngx_http_maintenance_link_ready(link);
    }
}


static void
ngx_http_maintenance_subscribe(ngx_http_maintenance_link_t *link)
{
    size_t       lens[2];
    const char  *argv[2];

    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    argv[1] = link->sync->events_key;
    lens[1] = ngx_strlen(link->sync->events_key);

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_message_cb,
                                          NULL, 2, argv, lens);
}


/* the subscription's callback: its confirmation, then every message */

static void
ngx_http_maintenance_message_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                               scope[MIG_NAME_MAX + 1];
    uint64_t                           epoch;
    redisReply                        *reply = r, *kind, *msg;
    ngx_http_maintenance_link_t       *link;
    ngx_http_maintenance_sync_t       *sync;

    if (reply == NULL) {
        return;
    }

    link = ac->data;
    sync = link->sync;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind = reply->element[0];

    if (kind->len == 9 && ngx_strncasecmp((u_char *) kind->str,
                                          (u_char *) "subscribe", 9) == 0)
    {
        ngx_http_maintenance_link_reply(link);
        ngx_http_maintenance_link_ready(link);
        return;
    }

    if (kind->len != 7 || ngx_strncasecmp((u_char *) kind->str,
                                          (u_char *) "message", 7) != 0)
    {
        return;
    }

    msg = reply->element[2];

    if (msg->type != REDIS_REPLY_STRING || !link->ready) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sync->sh->events, 1);

    /* a bad event is only a hint lost: the next poll reads the state */

    if (mig_event_parse(msg->str, msg->len, scope, sizeof(scope), &epoch,
                        NULL, 0)
        != MIG_OK)
    {
        return;
    }

    sync->event(sync, scope, epoch);
}


/* reading states */


void
ngx_http_maintenance_printable(char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((u_char) *s < 0x20 || (u_char) *s == 0x7f) {
            *s = '?';
        }
    }
}
