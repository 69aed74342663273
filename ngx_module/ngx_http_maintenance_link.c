/*
 * ngx_http_maintenance_link.c: worker 0's two Redis links (command and
 * subscriber): connect, AUTH/SELECT, SUBSCRIBE, backoff, what is logged.
 */

#include "ngx_http_maintenance_module.h"
#include "ngx_http_maintenance_reply.h"


#define NGX_HTTP_MAINTENANCE_BACKOFF_MIN     100
#define NGX_HTTP_MAINTENANCE_BACKOFF_MAX     5000

/* a link down this long is logged again, once: an outage, not a blip */
#define NGX_HTTP_MAINTENANCE_DOWN_LONG       10000

/* what a link last logged, so that each transition is logged once */
#define NGX_HTTP_MAINTENANCE_LOGGED_NONE     0
#define NGX_HTTP_MAINTENANCE_LOGGED_UP       1
#define NGX_HTTP_MAINTENANCE_LOGGED_DOWN     2


static void ngx_http_maintenance_link_connect(
    ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_link_resolved(
    ngx_http_maintenance_resolve_t *rs);
static void ngx_http_maintenance_link_open(
    ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_link_failed(
    ngx_http_maintenance_link_t *link, const char *why,
    ngx_uint_t established);
static void ngx_http_maintenance_link_closed(ngx_http_maintenance_redis_t *rc,
    const char *why);
static void ngx_http_maintenance_link_reconnect(ngx_event_t *ev);
static void ngx_http_maintenance_link_wait(ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_handshake_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);
static void ngx_http_maintenance_message_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data);


ngx_int_t
ngx_http_maintenance_link_init(ngx_http_maintenance_link_t *link,
    ngx_http_maintenance_sync_t *sync, const char *name, ngx_uint_t kind)
{
    ngx_str_t                          host;
    ngx_addr_t                         addr;
    struct sockaddr_un                *saun;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = sync->mmcf;

    link->sync = sync;
    link->name = name;
    link->kind = kind;

    /* a respawned or reloaded worker 0 goes on where the last one was */
    link->backoff = sync->sh->backoff[kind];
    link->backoff = ngx_max(link->backoff, NGX_HTTP_MAINTENANCE_BACKOFF_MIN);
    link->backoff = ngx_min(link->backoff, NGX_HTTP_MAINTENANCE_BACKOFF_MAX);

    link->reconnect.handler = ngx_http_maintenance_link_reconnect;
    link->reconnect.data = link;
    link->reconnect.log = sync->log;
    link->reconnect.cancelable = 1;   /* graceful shutdown does not wait */

    link->redis.log = sync->log;
    link->redis.timeout = mmcf->redis_timeout;
    link->redis.closed = ngx_http_maintenance_link_closed;
    link->redis.data = link;

    if (kind == NGX_HTTP_MAINTENANCE_LINK_SUB) {
        link->redis.push = ngx_http_maintenance_message_cb;
    }

    if (mmcf->redis_addr.len == 0) {
        return NGX_OK;
    }

    if (mmcf->redis_name.len) {
        /* a name and a resolver: the address comes on each connect */
        return NGX_OK;
    }

    /* the address is numeric (resolved at configuration load): no DNS */

    if (mmcf->redis_unix.len) {
        if (mmcf->redis_unix.len >= sizeof(saun->sun_path)) {
            ngx_log_error(NGX_LOG_EMERG, sync->log, 0,
                          "maintenance: unix socket path \"%V\" too long",
                          &mmcf->redis_unix);
            return NGX_ERROR;
        }

        saun = ngx_pcalloc(ngx_cycle->pool, sizeof(struct sockaddr_un));
        if (saun == NULL) {
            return NGX_ERROR;
        }

        saun->sun_family = AF_UNIX;
        ngx_memcpy(saun->sun_path, mmcf->redis_unix.data,
                   mmcf->redis_unix.len);

        link->redis.sockaddr = (struct sockaddr *) saun;
        link->redis.socklen = sizeof(struct sockaddr_un);

        return NGX_OK;
    }

    host = mmcf->redis_host;

    if (ngx_parse_addr(ngx_cycle->pool, &addr, host.data, host.len)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, sync->log, 0,
                      "maintenance: invalid Redis address \"%V\"",
                      &mmcf->redis_addr);
        return NGX_ERROR;
    }

    ngx_inet_set_port(addr.sockaddr, mmcf->redis_port);

    link->redis.sockaddr = addr.sockaddr;
    link->redis.socklen = addr.socklen;

    return NGX_OK;
}


/*
 * The first connect: at once, unless the worker 0 before us was backing
 * off (a crash loop must not turn into a connect loop).
 */

void
ngx_http_maintenance_link_start(ngx_http_maintenance_link_t *link)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    if (link->backoff > NGX_HTTP_MAINTENANCE_BACKOFF_MIN) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V down: it failed "
                      "in the previous worker; retrying with backoff",
                      link->name, &sync->mmcf->redis_addr);
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
        link->down_since = ngx_current_msec ? ngx_current_msec : 1;

        if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD) {
            sync->cmd_down(sync);
        }

        ngx_http_maintenance_link_wait(link);
        return;
    }

    ngx_http_maintenance_link_connect(link);
}


/*
 * The first good reply on a connection (a full poll on the command link,
 * the confirmation on the subscriber): only now is the link up, and the
 * backoff starts over.  A server that accepts and then fails (hung,
 * loading, refusing) keeps backing off.
 */

void
ngx_http_maintenance_link_up(ngx_http_maintenance_link_t *link)
{
    ngx_uint_t                    level, again;
    ngx_http_maintenance_sync_t  *sync;

    if (link->up || link->redis.c == NULL) {
        return;
    }

    sync = link->sync;

    link->up = 1;
    link->refused = 0;
    link->bad = 0;
    link->unresolved = 0;
    link->down_since = 0;
    link->down_long = 0;
    link->backoff = NGX_HTTP_MAINTENANCE_BACKOFF_MIN;
    sync->sh->backoff[link->kind] = link->backoff;

    /*
     * "up again" after "down" is an error-level line: at Debian's default
     * level an operator who saw "down" must see it end
     */

    if (link->logged != NGX_HTTP_MAINTENANCE_LOGGED_UP) {
        again = (link->logged == NGX_HTTP_MAINTENANCE_LOGGED_DOWN);
        level = again ? NGX_LOG_ERR : NGX_LOG_NOTICE;

        ngx_log_error(level, sync->log, 0,
                      "maintenance: redis %s link to %V up%s",
                      link->name, &sync->mmcf->redis_addr,
                      again ? " again" : "");
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_UP;
    }

    link->ever_up = 1;
}


/* closes the connection; link_closed() follows at once */

void
ngx_http_maintenance_link_drop(ngx_http_maintenance_link_t *link,
    const char *why)
{
    link->ready = 0;

    ngx_http_maintenance_redis_close(&link->redis, why);
}


/*
 * A reply of a shape we did not ask for: counted, logged once until the
 * link is up again, and the connection goes (what follows on it cannot be
 * trusted).  The served state is untouched.
 */

void
ngx_http_maintenance_link_malformed(ngx_http_maintenance_link_t *link,
    const char *what)
{
    char                          why[160];
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    (void) ngx_atomic_fetch_add(&sync->sh->malformed, 1);

    (void) ngx_snprintf((u_char *) why, sizeof(why) - 1, "malformed reply: "
                        "%s%Z", what);

    if (!link->bad) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V: %s; the last good "
                      "state is kept, reconnecting", link->name,
                      &sync->mmcf->redis_addr, why);
        link->bad = 1;
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
    }

    ngx_http_maintenance_link_drop(link, why);
}


/*
 * An error reply about the server (NOAUTH, LOADING, BUSY, a wrong
 * password): logged once, the link starts over with backoff.
 */

void
ngx_http_maintenance_link_refused(ngx_http_maintenance_link_t *link,
    const char *cmd, redisReply *reply)
{
    char                          msg[128], why[160];
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    ngx_cpystrn((u_char *) msg, (u_char *) reply->str,
                ngx_min(sizeof(msg), reply->len + 1));
    ngx_http_maintenance_printable(msg);

    (void) ngx_snprintf((u_char *) why, sizeof(why) - 1, "%s refused: %s%Z",
                        cmd, msg);

    if (!link->refused) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V: %s", link->name,
                      &sync->mmcf->redis_addr, why);
        link->refused = 1;
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
    }

    ngx_http_maintenance_link_drop(link, why);
}


/* for good: no reconnect after this (sync->exiting is set) */

void
ngx_http_maintenance_link_stop(ngx_http_maintenance_link_t *link)
{
    if (link->reconnect.timer_set) {
        ngx_del_timer(&link->reconnect);
    }

    ngx_http_maintenance_resolve_cancel(&link->resolve);

    link->ready = 0;

    ngx_http_maintenance_redis_free(&link->redis);
}


ngx_int_t
ngx_http_maintenance_link_send(ngx_http_maintenance_link_t *link,
    ngx_http_maintenance_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    if (link->redis.c == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_maintenance_redis_send(&link->redis, handler, data, argc,
                                           argv, argvlen);
}


/*
 * A Redis name (with a resolver) is resolved again on each connect, on the
 * event loop: a DNS-based failover needs no reload.  A resolver error or
 * timeout is a failed connect: logged once, backoff, the failure policy.
 */

static void
ngx_http_maintenance_link_connect(ngx_http_maintenance_link_t *link)
{
    ngx_http_maintenance_sync_t       *sync;
    ngx_http_maintenance_main_conf_t  *mmcf;

    sync = link->sync;
    mmcf = sync->mmcf;

    if (mmcf->redis_name.len == 0) {
        ngx_http_maintenance_link_open(link);
        return;
    }

    if (link->resolve.ctx) {
        return;
    }

    link->ready = 0;
    link->up = 0;

    if (ngx_http_maintenance_resolve(&link->resolve, sync, &mmcf->redis_name,
                                     mmcf->redis_port,
                                     ngx_http_maintenance_link_resolved,
                                     link)
        != NGX_OK)
    {
        ngx_http_maintenance_link_failed(link, link->resolve.err, 0);
    }
}


static void
ngx_http_maintenance_link_resolved(ngx_http_maintenance_resolve_t *rs)
{
    ngx_http_maintenance_link_t  *link = rs->data;

    u_char                        text[NGX_SOCKADDR_STRLEN], more[64];
    size_t                        len;
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    if (sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (rs->state != NGX_OK) {
        /* "down" names the first failure; a resolver failure, once more */

        if (link->logged == NGX_HTTP_MAINTENANCE_LOGGED_DOWN
            && !link->unresolved)
        {
            ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                          "maintenance: redis %s link to %V: %s; retrying",
                          link->name, &sync->mmcf->redis_addr, rs->err);
        }

        link->unresolved = 1;

        ngx_http_maintenance_link_failed(link, rs->err, 0);
        return;
    }

    link->redis.sockaddr = ngx_http_maintenance_resolve_next(rs,
                                                      &link->redis.socklen);

    len = ngx_sock_ntop(link->redis.sockaddr, link->redis.socklen, text,
                        NGX_SOCKADDR_STRLEN, 1);

    /* both links resolve the name: the change is logged once */

    if (len != sync->resolved_len
        || ngx_memcmp(text, sync->resolved, len) != 0)
    {
        more[0] = '\0';

        if (rs->naddrs > 1) {
            (void) ngx_snprintf(more, sizeof(more) - 1,
                                " (one of %ui addresses, tried in turn)%Z",
                                rs->naddrs);
        }

        if (sync->resolved_len == 0) {
            ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                          "maintenance: redis name %V resolves to %*s%s",
                          &sync->mmcf->redis_name, len, text, more);

        } else {
            ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                          "maintenance: redis name %V now resolves to %*s, "
                          "was %*s%s", &sync->mmcf->redis_name, len, text,
                          sync->resolved_len, sync->resolved, more);
        }

        ngx_memcpy(sync->resolved, text, len);
        sync->resolved_len = len;
    }

    ngx_http_maintenance_link_open(link);
}


/*
 * Connects and pipelines the handshake: AUTH, SELECT, then SUBSCRIBE (the
 * subscriber) or the first poll (the command link, through link_ready).
 * Everything waits in the output buffer until the connect completes.
 */

static void
ngx_http_maintenance_link_open(ngx_http_maintenance_link_t *link)
{
    int                                n;
    size_t                             lens[3];
    const char                        *argv[3];
    u_char                             db[NGX_INT_T_LEN];
    ngx_http_maintenance_sync_t       *sync;
    ngx_http_maintenance_main_conf_t  *mmcf;

    sync = link->sync;
    mmcf = sync->mmcf;

    link->ready = 0;
    link->up = 0;

    if (ngx_http_maintenance_redis_connect(&link->redis) != NGX_OK) {
        ngx_http_maintenance_link_failed(link, link->redis.why, 0);
        return;
    }

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

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_SUB) {
        argv[0] = "SUBSCRIBE";
        lens[0] = 9;
        argv[1] = sync->events_key;
        lens[1] = ngx_strlen(sync->events_key);

        (void) ngx_http_maintenance_link_send(link,
                                              ngx_http_maintenance_message_cb,
                                              link, 2, argv, lens);
        return;
    }

    link->ready = 1;
    sync->link_ready(sync);
}


/*
 * Logs the failure once, hands the command link to the failure policy and
 * waits.  A connect that failed outright (refused: Redis is restarting)
 * retries within a poll interval; a server that took the connection and
 * then failed us backs off up to 5 s.
 */

static void
ngx_http_maintenance_link_failed(ngx_http_maintenance_link_t *link,
    const char *why, ngx_uint_t established)
{
    ngx_msec_t                    cap;
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    if (link->logged != NGX_HTTP_MAINTENANCE_LOGGED_DOWN) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V down: %s; "
                      "retrying", link->name, &sync->mmcf->redis_addr, why);
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
    }

    if (link->down_since == 0) {
        link->down_since = ngx_current_msec ? ngx_current_msec : 1;

    } else if (!link->down_long
               && ngx_current_msec - link->down_since
                  >= NGX_HTTP_MAINTENANCE_DOWN_LONG)
    {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V unreachable for "
                      "%M s: %s", link->name, &sync->mmcf->redis_addr,
                      (ngx_current_msec - link->down_since) / 1000, why);
        link->down_long = 1;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD) {
        sync->cmd_down(sync);
    }

    if (sync->exiting || link->reconnect.timer_set) {
        return;
    }

    ngx_http_maintenance_link_wait(link);

    cap = established ? NGX_HTTP_MAINTENANCE_BACKOFF_MAX
                      : ngx_min(sync->mmcf->poll,
                                NGX_HTTP_MAINTENANCE_BACKOFF_MAX);
    cap = ngx_max(cap, NGX_HTTP_MAINTENANCE_BACKOFF_MIN);

    if (link->backoff < cap) {
        link->backoff = ngx_min(link->backoff * 2, cap);
    }

    sync->sh->backoff[link->kind] = link->backoff;
}


/* the connection is gone, for whatever reason: from redis_close() */

static void
ngx_http_maintenance_link_closed(ngx_http_maintenance_redis_t *rc,
    const char *why)
{
    ngx_http_maintenance_link_t  *link = rc->data;

    ngx_uint_t                    established;
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    link->ready = 0;

    if (sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        /* the zone is the next worker 0's now */
        sync->exiting = 1;
        return;
    }

    if (rc->malformed) {
        (void) ngx_atomic_fetch_add(&sync->sh->malformed, 1);

        if (!link->bad) {
            ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                          "maintenance: redis %s link to %V: %s; the last "
                          "good state is kept, reconnecting", link->name,
                          &sync->mmcf->redis_addr, why);
            link->bad = 1;
            link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
        }
    }

    /* a link that was up starts its backoff over; one that never was not */
    established = rc->connected && !link->up;

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD) {
        sync->cmd_closed(sync);

        /*
         * A command that timed out means the server (or the path to it) is
         * gone: the idle subscriber would not notice, so it goes too.
         */

        if (rc->timedout && sync->sub.redis.c) {
            sync->sub.redis.timedout = 1;
            ngx_http_maintenance_link_drop(&sync->sub, "timed out");
        }
    }

    ngx_http_maintenance_link_failed(link, why, established);
}


static void
ngx_http_maintenance_link_reconnect(ngx_event_t *ev)
{
    ngx_http_maintenance_link_t  *link;

    link = ev->data;

    if (link->sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (link->redis.c == NULL) {
        (void) ngx_atomic_fetch_add(&link->sync->sh->reconnects, 1);
        ngx_http_maintenance_link_connect(link);
    }
}


/* the next attempt after the backoff, with jitter: [backoff/2, backoff] */

static void
ngx_http_maintenance_link_wait(ngx_http_maintenance_link_t *link)
{
    ngx_msec_t  wait;

    wait = link->backoff / 2
           + (ngx_msec_t) ngx_random() % (link->backoff / 2 + 1);

    ngx_add_timer(&link->reconnect, ngx_max(wait, 1));
}


static void
ngx_http_maintenance_handshake_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_link_t  *link = rc->data;

    switch (ngx_http_maintenance_reply_handshake(reply)) {

    case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
        ngx_http_maintenance_link_refused(link, data, reply);
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_MALFORMED:
        ngx_http_maintenance_link_malformed(link, data);
        return;
    }
}


/*
 * The subscription's replies: its confirmation, then every message.  Each
 * must be ["subscribe", channel, count] or ["message", channel, payload].
 */

static void
ngx_http_maintenance_message_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_link_t  *link = rc->data;

    char                          scope[MIG_NAME_MAX + 1];
    uint64_t                      epoch;
    const char                   *why;
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    switch (ngx_http_maintenance_reply_pubsub(reply, link->ready, scope,
                                              sizeof(scope), &epoch, &why))
    {
    case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
        ngx_http_maintenance_link_refused(link, "SUBSCRIBE", reply);
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED:
        link->ready = 1;
        ngx_http_maintenance_link_up(link);

        /* events published while the subscriber was away are lost */
        sync->link_ready(sync);
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_EVENT:
        (void) ngx_atomic_fetch_add(&sync->sh->events, 1);
        sync->event(sync, scope, epoch);
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_NOEVENT:
        /* a bad event is only a hint lost: the next poll reads the state */
        (void) ngx_atomic_fetch_add(&sync->sh->events, 1);
        return;

    default: /* NGX_HTTP_MAINTENANCE_REPLY_MALFORMED */
        ngx_http_maintenance_link_malformed(link, why);
        return;
    }
}
