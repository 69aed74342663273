/*
 * ngx_http_maintenance_sentinel.c: worker 0 finds the Redis master through
 * Redis Sentinel and follows it (+switch-master), as Redis's client
 * guidelines for Sentinel describe.
 */

#include "ngx_http_maintenance_module.h"
#include "ngx_http_maintenance_reply.h"

#include <hiredis/hiredis.h>


/* a sentinel is asked with a short timeout: the next one may answer */
#define NGX_HTTP_MAINTENANCE_SENTINEL_TIMEOUT  1000

/* the +switch-master subscription is pinged: a hung sentinel is noticed */
#define NGX_HTTP_MAINTENANCE_SENTINEL_PING     1000

#define NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MIN  100
#define NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MAX  5000


/*
 * A sentinel: numeric, or a configured name resolved on each connect
 * (with "resolver"); then sockaddr is the address of it that answered
 * last (socklen 0: none yet), tried first while the name still has it.
 */
typedef struct {
    ngx_sockaddr_t                     sockaddr;
    socklen_t                          socklen;
    u_char                             text[NGX_HTTP_MAINTENANCE_ADDR_LEN];
    ngx_str_t                          host;     /* len 0: numeric */
    in_port_t                          port;
    ngx_uint_t                         unresolved; /* a failure logged */
    u_char                             resolved[NGX_SOCKADDR_STRLEN];
    size_t                             resolved_len; /* last logged */
    uint32_t                           answer;   /* its addresses, in any
                                                    order, last logged */
} ngx_http_maintenance_sentinel_addr_t;


struct ngx_http_maintenance_sentinel_s {
    ngx_http_maintenance_sync_t       *sync;
    ngx_log_t                         *log;
    ngx_str_t                          name;     /* the master's */
    ngx_str_t                          password; /* of the sentinels */
    ngx_pool_t                        *pool;     /* for ngx_parse_addr() */

    /* configured first (never dropped), then learned, bounded */
    ngx_http_maintenance_sentinel_addr_t  addrs[
                                          NGX_HTTP_MAINTENANCE_SENTINELS_MAX];
    ngx_uint_t                         n;
    ngx_uint_t                         nconf;    /* configured */
    ngx_uint_t                         good;     /* answered last: asked
                                                    first */

    /*
     * A discovery: each sentinel in turn, from "good", on a short-lived
     * connection, until one names a master.  After a ROLE check refused
     * that master the discovery resumes at the next sentinel ("resume"),
     * so a stale sentinel is asked once per round, not in a loop.
     */
    ngx_http_maintenance_redis_t       query;
    ngx_event_t                        step;     /* posted: the next one */
    ngx_uint_t                         querying;
    ngx_uint_t                         cur;
    ngx_uint_t                         tried;
    ngx_uint_t                         found;    /* cur named a master */
    ngx_uint_t                         noted;    /* cur's failure noted */
    ngx_http_maintenance_resolve_t     query_rs; /* cur, a name */
    ngx_uint_t                         qleft;    /* its addresses not
                                                    asked yet this round */
    ngx_sockaddr_t                     qaddr;    /* the one asked */
    socklen_t                          qaddrlen;
    u_char                             qtext[NGX_HTTP_MAINTENANCE_ADDR_LEN
                                             + NGX_SOCKADDR_STRLEN + 4];
    ngx_sockaddr_t                     cand;
    socklen_t                          candlen;
    u_char                             why[NGX_HTTP_MAINTENANCE_TRIED_LEN];
    size_t                             whylen;
    ngx_uint_t                         failed_logged;

    /* the master: from a discovery or a +switch-master */
    ngx_sockaddr_t                     master;
    socklen_t                          masterlen;
    ngx_uint_t                         known;
    ngx_uint_t                         confirmed; /* by ROLE */
    ngx_uint_t                         stale;    /* rediscover first */
    ngx_uint_t                         resume;
    ngx_uint_t                         from;     /* the sentinel it came
                                                    from */
    ngx_uint_t                         role_logged;
    ngx_str_t                          text;     /* for the links' logs */
    u_char                             text_buf[NGX_HTTP_MAINTENANCE_ADDR_LEN
                                                + MIG_NAME_MAX + 32];

    /* one +switch-master subscription, on one sentinel at a time */
    ngx_http_maintenance_redis_t       sub;
    ngx_uint_t                         sub_idx;
    ngx_http_maintenance_resolve_t     sub_rs;   /* sub_idx, a name */
    ngx_sockaddr_t                     sub_addr;
    ngx_uint_t                         sub_ready;
    ngx_uint_t                         sub_fails; /* in a row */
    ngx_uint_t                         sub_down_logged;
    ngx_uint_t                         sub_ever;
    ngx_msec_t                         sub_backoff;
    ngx_event_t                        sub_timer;
    ngx_event_t                        ping;
    u_char                             sub_why[NGX_HTTP_MAINTENANCE_TRIED_LEN];
    size_t                             sub_whylen;

    ngx_http_maintenance_resolved_pt   resolved;
    ngx_event_t                        notify;   /* posted: "resolved" */
    ngx_uint_t                         exiting;
};


static void ngx_http_maintenance_sentinel_round(
    ngx_http_maintenance_sentinel_t *sn);
static void ngx_http_maintenance_sentinel_ask(
    ngx_http_maintenance_sentinel_t *sn);
static void ngx_http_maintenance_sentinel_query_resolved(
    ngx_http_maintenance_resolve_t *rs);
static void ngx_http_maintenance_sentinel_ask_at(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa, socklen_t len);
static void ngx_http_maintenance_sentinel_step(ngx_event_t *ev);
static void ngx_http_maintenance_sentinel_notify(ngx_event_t *ev);
static void ngx_http_maintenance_sentinel_note(
    ngx_http_maintenance_sentinel_t *sn, const char *fmt, ...);
static void ngx_http_maintenance_sentinel_auth_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);
static void ngx_http_maintenance_sentinel_addr_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);
static void ngx_http_maintenance_sentinel_peers_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);
static void ngx_http_maintenance_sentinel_query_closed(
    ngx_http_maintenance_redis_t *rc, const char *why);
static void ngx_http_maintenance_sentinel_done(
    ngx_http_maintenance_sentinel_t *sn, ngx_int_t rc);
static void ngx_http_maintenance_sentinel_set_master(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa,
    socklen_t len, ngx_uint_t from, const char *how);
static ngx_int_t ngx_http_maintenance_sentinel_add(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa,
    socklen_t len);
static void ngx_http_maintenance_sentinel_learned(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t save);
static ngx_int_t ngx_http_maintenance_sentinel_parse(
    ngx_http_maintenance_sentinel_t *sn, const char *ip, int port,
    ngx_sockaddr_t *sa, socklen_t *socklen);

static void ngx_http_maintenance_sentinel_sub_start(
    ngx_http_maintenance_sentinel_t *sn);
static void ngx_http_maintenance_sentinel_sub_resolved(
    ngx_http_maintenance_resolve_t *rs);
static void ngx_http_maintenance_sentinel_sub_open(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa, socklen_t len);
static struct sockaddr *ngx_http_maintenance_sentinel_pick(
    ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_sentinel_addr_t *a,
    ngx_http_maintenance_resolve_t *rs, socklen_t *socklen);
static ngx_int_t ngx_http_maintenance_sentinel_unresolved(
    ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_sentinel_addr_t *a,
    ngx_http_maintenance_resolve_t *rs);
static void ngx_http_maintenance_sentinel_sub_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);
static void ngx_http_maintenance_sentinel_sub_closed(
    ngx_http_maintenance_redis_t *rc, const char *why);
static void ngx_http_maintenance_sentinel_sub_failed(
    ngx_http_maintenance_sentinel_t *sn, const char *why);
static void ngx_http_maintenance_sentinel_sub_reconnect(ngx_event_t *ev);
static void ngx_http_maintenance_sentinel_ping(ngx_event_t *ev);
static void ngx_http_maintenance_sentinel_switch(
    ngx_http_maintenance_sentinel_t *sn, redisReply *msg);

static void ngx_http_maintenance_sentinel_zone(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t reachable, u_char *text);
static void ngx_http_maintenance_sentinel_zone_master(
    ngx_http_maintenance_sentinel_t *sn);
static ngx_uint_t ngx_http_maintenance_sentinel_exiting(
    ngx_http_maintenance_sentinel_t *sn);


ngx_http_maintenance_sentinel_t *
ngx_http_maintenance_sentinel_create(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_resolved_pt resolved)
{
    ngx_uint_t                             i;
    ngx_msec_t                             timeout;
    ngx_http_maintenance_sentinel_t       *sn;
    ngx_http_maintenance_main_conf_t      *mmcf;
    ngx_http_maintenance_sentinel_conf_t  *sc;
    ngx_http_maintenance_sentinel_addr_t  *a;

    mmcf = sync->mmcf;

    sn = ngx_pcalloc(ngx_cycle->pool, sizeof(ngx_http_maintenance_sentinel_t));
    if (sn == NULL) {
        return NULL;
    }

    sn->sync = sync;
    sn->log = sync->log;
    sn->name = mmcf->sentinel_name;
    sn->password = mmcf->sentinel_password;
    sn->resolved = resolved;

    sn->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, sync->log);
    if (sn->pool == NULL) {
        return NULL;
    }

    /*
     * numeric (a name without resolver was resolved at load), or a name
     * the resolver answers for on each connect: no blocking DNS here
     */

    sc = mmcf->sentinels->elts;

    for (i = 0; i < mmcf->sentinels->nelts; i++) {
        if (sc[i].host.len == 0) {
            (void) ngx_http_maintenance_sentinel_add(sn, sc[i].addr.sockaddr,
                                                     sc[i].addr.socklen);
            continue;
        }

        if (sn->n == NGX_HTTP_MAINTENANCE_SENTINELS_MAX) {
            break;
        }

        a = &sn->addrs[sn->n++];

        a->host = sc[i].host;
        a->port = sc[i].port;
        (void) ngx_snprintf(a->text, NGX_HTTP_MAINTENANCE_ADDR_LEN - 1,
                            "%V:%d%Z", &sc[i].host, (int) sc[i].port);
    }

    sn->nconf = sn->n;

    ngx_http_maintenance_sentinel_learned(sn, 0);

    timeout = ngx_min(mmcf->redis_timeout,
                      NGX_HTTP_MAINTENANCE_SENTINEL_TIMEOUT);

    sn->query.log = sync->log;
    sn->query.timeout = timeout;
    sn->query.closed = ngx_http_maintenance_sentinel_query_closed;
    sn->query.data = sn;

    /* a name's resolution is bounded as a sentinel's answer is */
    sn->query_rs.timeout = timeout;
    sn->sub_rs.timeout = timeout;

    sn->sub.log = sync->log;
    sn->sub.timeout = timeout;
    sn->sub.closed = ngx_http_maintenance_sentinel_sub_closed;
    sn->sub.push = ngx_http_maintenance_sentinel_sub_cb;
    sn->sub.data = sn;
    sn->sub_backoff = NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MIN;

    sn->step.handler = ngx_http_maintenance_sentinel_step;
    sn->step.data = sn;
    sn->step.log = sync->log;

    sn->notify.handler = ngx_http_maintenance_sentinel_notify;
    sn->notify.data = sn;
    sn->notify.log = sync->log;

    sn->sub_timer.handler = ngx_http_maintenance_sentinel_sub_reconnect;
    sn->sub_timer.data = sn;
    sn->sub_timer.log = sync->log;
    sn->sub_timer.cancelable = 1;

    sn->ping.handler = ngx_http_maintenance_sentinel_ping;
    sn->ping.data = sn;
    sn->ping.log = sync->log;
    sn->ping.cancelable = 1;

    sn->text.data = sn->text_buf;
    sn->text.len = ngx_sprintf(sn->text_buf, "%V (no master known yet)",
                               &sn->name)
                   - sn->text_buf;

    return sn;
}


/*
 * The master to connect to (NGX_OK), or NGX_AGAIN: a discovery runs, or
 * (confirmed) the command link has not confirmed it with ROLE yet, and the
 * "resolved" hook follows.  A link asks before each connect.
 */

ngx_int_t
ngx_http_maintenance_sentinel_master(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t confirmed, struct sockaddr **sockaddr, socklen_t *socklen)
{
    if (sn->known && !sn->stale) {
        if (confirmed && !sn->confirmed) {
            return NGX_AGAIN;
        }

        *sockaddr = &sn->master.sockaddr;
        *socklen = sn->masterlen;
        return NGX_OK;
    }

    if (!sn->querying) {
        ngx_http_maintenance_sentinel_round(sn);
    }

    return NGX_AGAIN;
}


ngx_str_t *
ngx_http_maintenance_sentinel_addr(ngx_http_maintenance_sentinel_t *sn)
{
    return &sn->text;
}


ngx_http_maintenance_sync_t *
ngx_http_maintenance_sentinel_sync(ngx_http_maintenance_sentinel_t *sn)
{
    return sn->sync;
}


/* a link failed: the master is asked for again before the next connect */

void
ngx_http_maintenance_sentinel_stale(ngx_http_maintenance_sentinel_t *sn)
{
    sn->stale = 1;
}


/*
 * The command link's ROLE says the address a sentinel gave is no master
 * (a replica, a sentinel): that sentinel is stale or lied.  Logged once
 * until a master is confirmed; the discovery resumes at the next sentinel.
 */

void
ngx_http_maintenance_sentinel_not_master(ngx_http_maintenance_sentinel_t *sn,
    const char *role)
{
    u_char  addr[NGX_SOCKADDR_STRLEN];
    size_t  len;

    len = ngx_sock_ntop(&sn->master.sockaddr, sn->masterlen, addr,
                        NGX_SOCKADDR_STRLEN, 1);

    if (!sn->role_logged) {
        ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                      "maintenance: sentinel: %*s, named by sentinel %s as "
                      "the master of \"%V\", answers ROLE \"%s\"; asking the "
                      "next sentinel", len, addr, sn->addrs[sn->from].text,
                      &sn->name, role);
        sn->role_logged = 1;
    }

    sn->stale = 1;
    sn->resume = 1;

    /* the subscription does not stay on a sentinel that named a replica */

    if (sn->sub.c && sn->sub_idx == sn->from) {
        ngx_http_maintenance_redis_close(&sn->sub, "it named a replica as "
                                                   "the master");
    }
}


/* confirmed by the command link's ROLE */

void
ngx_http_maintenance_sentinel_confirmed(ngx_http_maintenance_sentinel_t *sn)
{
    sn->role_logged = 0;
    sn->resume = 0;

    ngx_http_maintenance_sentinel_zone_master(sn);

    if (!sn->confirmed) {
        /* the subscriber link waits for this */
        sn->confirmed = 1;
        ngx_post_event(&sn->notify, &ngx_posted_events);
    }
}


void
ngx_http_maintenance_sentinel_stop(ngx_http_maintenance_sentinel_t *sn)
{
    sn->exiting = 1;

    if (sn->step.posted) {
        ngx_delete_posted_event(&sn->step);
    }

    if (sn->notify.posted) {
        ngx_delete_posted_event(&sn->notify);
    }

    if (sn->sub_timer.timer_set) {
        ngx_del_timer(&sn->sub_timer);
    }

    if (sn->ping.timer_set) {
        ngx_del_timer(&sn->ping);
    }

    /* no resolver callback after this */
    ngx_http_maintenance_resolve_cancel(&sn->query_rs);
    ngx_http_maintenance_resolve_cancel(&sn->sub_rs);

    ngx_http_maintenance_redis_free(&sn->query);
    ngx_http_maintenance_redis_free(&sn->sub);

    if (sn->pool) {
        ngx_destroy_pool(sn->pool);
        sn->pool = NULL;
    }
}


/* discovery */

static void
ngx_http_maintenance_sentinel_round(ngx_http_maintenance_sentinel_t *sn)
{
    sn->querying = 1;

    if (sn->resume) {
        /* every sentinel of this round asked: it fails, from the loop */
        if (sn->tried >= sn->n) {
            sn->found = 0;
            sn->noted = 1;
            ngx_post_event(&sn->step, &ngx_posted_events);
            return;
        }

        sn->cur = (sn->from + 1) % sn->n;

    } else {
        sn->resume = 0;
        sn->tried = 0;
        sn->whylen = 0;
        sn->cur = sn->good % sn->n;
    }

    ngx_http_maintenance_sentinel_ask(sn);
}


/*
 * Asks sentinel "cur"; a name is resolved first, and each of its
 * addresses is a sentinel of this round (ask_at from the step).  A
 * resolver error or timeout is that sentinel failing.
 */

static void
ngx_http_maintenance_sentinel_ask(ngx_http_maintenance_sentinel_t *sn)
{
    ngx_http_maintenance_sentinel_addr_t  *a;

    if (sn->tried >= sn->n) {
        ngx_http_maintenance_sentinel_done(sn, NGX_ERROR);
        return;
    }

    sn->tried++;
    sn->found = 0;
    sn->noted = 0;
    sn->qleft = 0;

    a = &sn->addrs[sn->cur];

    (void) ngx_cpystrn(sn->qtext, a->text, sizeof(sn->qtext));

    if (a->host.len == 0) {
        ngx_http_maintenance_sentinel_ask_at(sn, &a->sockaddr.sockaddr,
                                             a->socklen);
        return;
    }

    /* the handler may run before this returns (a cached answer) */

    if (ngx_http_maintenance_resolve(&sn->query_rs, sn->sync, &a->host,
                               a->port,
                               ngx_http_maintenance_sentinel_query_resolved,
                               sn)
        != NGX_OK)
    {
        (void) ngx_http_maintenance_sentinel_unresolved(sn, a,
                                                        &sn->query_rs);
        ngx_http_maintenance_sentinel_note(sn, "%s", sn->query_rs.err);
        ngx_post_event(&sn->step, &ngx_posted_events);
    }
}


static void
ngx_http_maintenance_sentinel_query_resolved(
    ngx_http_maintenance_resolve_t *rs)
{
    ngx_http_maintenance_sentinel_t  *sn = rs->data;

    socklen_t                              len;
    struct sockaddr                       *sa;
    ngx_http_maintenance_sentinel_addr_t  *a;

    if (!sn->querying || ngx_http_maintenance_sentinel_exiting(sn)) {
        return;
    }

    a = &sn->addrs[sn->cur];

    if (ngx_http_maintenance_sentinel_unresolved(sn, a, rs) != NGX_OK) {
        ngx_http_maintenance_sentinel_note(sn, "%s", rs->err);
        ngx_post_event(&sn->step, &ngx_posted_events);
        return;
    }

    sa = ngx_http_maintenance_sentinel_pick(sn, a, rs, &len);
    sn->qleft = rs->naddrs - 1;

    ngx_http_maintenance_sentinel_ask_at(sn, sa, len);
}


/*
 * Asks one address, pipelined: [AUTH], get-master-addr-by-name, and
 * "sentinels" (the others it knows, added to the list).
 */

static void
ngx_http_maintenance_sentinel_ask_at(ngx_http_maintenance_sentinel_t *sn,
    struct sockaddr *sa, socklen_t len)
{
    u_char                                *p;
    size_t                                 lens[3];
    const char                            *argv[3];
    ngx_http_maintenance_sentinel_addr_t  *a;

    a = &sn->addrs[sn->cur];

    ngx_memcpy(&sn->qaddr, sa, len);
    sn->qaddrlen = len;
    sn->noted = 0;

    if (a->host.len) {
        /* "name:port (ip:port)" in the list of the round */
        p = ngx_snprintf(sn->qtext, sizeof(sn->qtext) - 1, "%s (", a->text);
        p += ngx_sock_ntop(sa, len, p, NGX_SOCKADDR_STRLEN, 1);
        *p++ = ')';
        *p = '\0';
    }

    sn->query.sockaddr = &sn->qaddr.sockaddr;
    sn->query.socklen = sn->qaddrlen;

    if (ngx_http_maintenance_redis_connect(&sn->query) != NGX_OK) {
        ngx_http_maintenance_sentinel_note(sn, "%s", sn->query.why);
        ngx_post_event(&sn->step, &ngx_posted_events);
        return;
    }

    /* the password goes on the wire only: never in a log line */

    if (sn->password.len) {
        argv[0] = "AUTH";
        lens[0] = 4;
        argv[1] = (char *) sn->password.data;
        lens[1] = sn->password.len;

        if (ngx_http_maintenance_redis_send(&sn->query,
                                       ngx_http_maintenance_sentinel_auth_cb,
                                       sn, 2, argv, lens)
            != NGX_OK)
        {
            goto failed;
        }
    }

    argv[0] = "SENTINEL";
    lens[0] = 8;
    argv[1] = "get-master-addr-by-name";
    lens[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (char *) sn->name.data;
    lens[2] = sn->name.len;

    if (ngx_http_maintenance_redis_send(&sn->query,
                                       ngx_http_maintenance_sentinel_addr_cb,
                                       sn, 3, argv, lens)
        != NGX_OK)
    {
        goto failed;
    }

    argv[1] = "sentinels";
    lens[1] = sizeof("sentinels") - 1;

    if (ngx_http_maintenance_redis_send(&sn->query,
                                       ngx_http_maintenance_sentinel_peers_cb,
                                       sn, 3, argv, lens)
        == NGX_OK)
    {
        return;
    }

failed:

    /* nothing would be due on the connection: it would never end */
    ngx_http_maintenance_redis_close(&sn->query, "out of memory");
}


/* after a sentinel's connection is gone: a master, or the next sentinel */

static void
ngx_http_maintenance_sentinel_step(ngx_event_t *ev)
{
    socklen_t                         len;
    struct sockaddr                  *sa;
    ngx_http_maintenance_sentinel_t  *sn;

    sn = ev->data;

    if (!sn->querying || ngx_http_maintenance_sentinel_exiting(sn)) {
        return;
    }

    if (sn->found) {
        ngx_http_maintenance_sentinel_done(sn, NGX_OK);
        return;
    }

    /* the next address of a name, in this round (the answer is kept) */

    if (sn->qleft && sn->addrs[sn->cur].host.len
        && sn->query_rs.ctx == NULL && sn->query_rs.naddrs)
    {
        sn->qleft--;
        sa = ngx_http_maintenance_resolve_next(&sn->query_rs, &len);
        ngx_http_maintenance_sentinel_ask_at(sn, sa, len);
        return;
    }

    sn->cur = (sn->cur + 1) % sn->n;

    ngx_http_maintenance_sentinel_ask(sn);
}


static void
ngx_http_maintenance_sentinel_notify(ngx_event_t *ev)
{
    ngx_http_maintenance_sentinel_t  *sn;

    sn = ev->data;

    if (ngx_http_maintenance_sentinel_exiting(sn)) {
        return;
    }

    sn->resolved(sn, NGX_OK, NULL);
}


/* "ip:port: why" of sentinel "cur" into the list of the round */

static void
ngx_http_maintenance_sentinel_note(ngx_http_maintenance_sentinel_t *sn,
    const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   args;

    if (sn->noted) {
        return;
    }

    sn->noted = 1;

    p = sn->why + sn->whylen;
    last = sn->why + sizeof(sn->why) - 1;

    if (sn->whylen) {
        p = ngx_slprintf(p, last, ", ");
    }

    p = ngx_slprintf(p, last, "%s: ", sn->qtext);

    va_start(args, fmt);
    p = ngx_vslprintf(p, last, fmt, args);
    va_end(args);

    *p = '\0';
    sn->whylen = p - sn->why;

    ngx_http_maintenance_printable((char *) sn->why);
}


static void
ngx_http_maintenance_sentinel_auth_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_sentinel_t  *sn = data;

    char  msg[128];

    switch (ngx_http_maintenance_reply_handshake(reply)) {

    case NGX_HTTP_MAINTENANCE_REPLY_OK:
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
        (void) ngx_http_maintenance_reply_cstr(reply, msg, sizeof(msg));
        ngx_http_maintenance_sentinel_note(sn, "AUTH refused: %s", msg);
        break;

    default:
        ngx_http_maintenance_sentinel_note(sn, "malformed reply to AUTH");
        break;
    }

    ngx_http_maintenance_redis_close(rc, "refused");
}


static void
ngx_http_maintenance_sentinel_addr_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_sentinel_t  *sn = data;

    int    port;
    char   ip[NGX_HTTP_MAINTENANCE_IP_LEN], msg[128];

    if (reply->type == REDIS_REPLY_ERROR) {
        (void) ngx_http_maintenance_reply_cstr(reply, msg, sizeof(msg));
        ngx_http_maintenance_sentinel_note(sn, "SENTINEL refused: %s", msg);
        ngx_http_maintenance_redis_close(rc, "refused");
        return;
    }

    switch (ngx_http_maintenance_reply_master_addr(reply, ip, sizeof(ip),
                                                   &port))
    {
    case 0:
        break;

    case 1:
        ngx_http_maintenance_sentinel_note(sn, "does not know \"%V\"",
                                           &sn->name);
        ngx_http_maintenance_redis_close(rc, "unknown master");
        return;

    default:
        ngx_http_maintenance_sentinel_note(sn, "malformed reply to "
                                           "get-master-addr-by-name");
        ngx_http_maintenance_redis_close(rc, "malformed");
        return;
    }

    /* a host name (resolve-hostnames yes) is not resolved in worker 0 */

    if (ngx_http_maintenance_sentinel_parse(sn, ip, port, &sn->cand,
                                            &sn->candlen)
        != NGX_OK)
    {
        ngx_http_maintenance_sentinel_note(sn, "master \"%s\" is not a "
                                           "numeric address", ip);
        ngx_http_maintenance_redis_close(rc, "not numeric");
        return;
    }

    sn->found = 1;
}


/* the other sentinels of this master: added, never needed */

static void
ngx_http_maintenance_sentinel_peers_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_sentinel_t  *sn = data;

    int             port;
    char            ip[NGX_HTTP_MAINTENANCE_IP_LEN];
    size_t          i;
    socklen_t       len;
    ngx_uint_t      added;
    ngx_sockaddr_t  sa;

    added = 0;

    if (reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            if (ngx_http_maintenance_reply_sentinel(reply->element[i], ip,
                                                    sizeof(ip), &port)
                != 0)
            {
                continue;
            }

            if (ngx_http_maintenance_sentinel_parse(sn, ip, port, &sa, &len)
                != NGX_OK)
            {
                continue;
            }

            if (ngx_http_maintenance_sentinel_add(sn, &sa.sockaddr, len)
                == NGX_OK)
            {
                added = 1;
            }
        }
    }

    if (added) {
        ngx_http_maintenance_sentinel_learned(sn, 1);
    }

    ngx_http_maintenance_redis_close(rc, "done");
}


static void
ngx_http_maintenance_sentinel_query_closed(ngx_http_maintenance_redis_t *rc,
    const char *why)
{
    ngx_http_maintenance_sentinel_t  *sn = rc->data;

    if (!sn->querying || ngx_http_maintenance_sentinel_exiting(sn)) {
        return;
    }

    if (!sn->found) {
        ngx_http_maintenance_sentinel_note(sn, "%s", why);
    }

    /* from the event loop: this may run inside the query's read handler */
    ngx_post_event(&sn->step, &ngx_posted_events);
}


/* the end of a discovery: the master, or every sentinel failed */

static void
ngx_http_maintenance_sentinel_done(ngx_http_maintenance_sentinel_t *sn,
    ngx_int_t rc)
{
    sn->querying = 0;

    if (rc == NGX_OK) {
        sn->good = sn->cur;

        if (sn->addrs[sn->cur].host.len) {
            ngx_memcpy(&sn->addrs[sn->cur].sockaddr, &sn->qaddr,
                       sn->qaddrlen);
            sn->addrs[sn->cur].socklen = sn->qaddrlen;
        }

        if (sn->failed_logged) {
            ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                          "maintenance: sentinel %s answers again",
                          sn->addrs[sn->cur].text);
            sn->failed_logged = 0;
        }

        ngx_http_maintenance_sentinel_set_master(sn, &sn->cand.sockaddr,
                                                 sn->candlen, sn->cur,
                                                 "named by sentinel");

        if (sn->sub.c == NULL && !sn->sub_timer.timer_set
            && sn->sub_rs.ctx == NULL)
        {
            sn->sub_idx = sn->cur;
            ngx_http_maintenance_sentinel_sub_start(sn);
        }

        sn->resolved(sn, NGX_OK, NULL);
        return;
    }

    sn->resume = 0;
    sn->stale = 1;

    if (!sn->failed_logged) {
        ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                      "maintenance: sentinel: no sentinel names the master "
                      "of \"%V\" (%s); retrying", &sn->name, sn->why);
        sn->failed_logged = 1;
    }

    ngx_http_maintenance_sentinel_zone(sn, 0, sn->why);

    sn->resolved(sn, NGX_ERROR, "no sentinel names the master");
}


/*
 * A master from a discovery or a +switch-master: a change (not the first
 * master this worker sees, unless the zone knew another) is a failover.
 */

static void
ngx_http_maintenance_sentinel_set_master(ngx_http_maintenance_sentinel_t *sn,
    struct sockaddr *sa, socklen_t len, ngx_uint_t from, const char *how)
{
    u_char      addr[NGX_SOCKADDR_STRLEN];
    size_t      n;
    ngx_uint_t  changed;

    changed = !sn->known
              || ngx_cmp_sockaddr(sa, len, &sn->master.sockaddr,
                                  sn->masterlen, 1)
                 != NGX_OK;

    if (changed) {
        sn->confirmed = 0;
    }

    ngx_memcpy(&sn->master, sa, len);
    sn->masterlen = len;
    sn->known = 1;
    sn->stale = 0;
    sn->from = from;

    n = ngx_sock_ntop(sa, len, addr, NGX_SOCKADDR_STRLEN, 1);

    if (changed) {
        sn->text.len = ngx_snprintf(sn->text_buf, sizeof(sn->text_buf),
                                    "%*s (%V)", n, addr, &sn->name)
                       - sn->text_buf;

        ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                      "maintenance: sentinel: master of \"%V\" is %*s, %s "
                      "%s", &sn->name, n, addr, how, sn->addrs[from].text);
    }

    ngx_http_maintenance_sentinel_zone(sn, 1, sn->addrs[from].text);
}


/* a new address: a sentinel learned from another, bounded */

static ngx_int_t
ngx_http_maintenance_sentinel_add(ngx_http_maintenance_sentinel_t *sn,
    struct sockaddr *sa, socklen_t len)
{
    ngx_uint_t                             i;
    ngx_http_maintenance_sentinel_addr_t  *a;

    /*
     * a name's address that answered last is that sentinel: asked by name,
     * not twice a round (once the name moves, it may be learned)
     */

    for (i = 0; i < sn->n; i++) {
        if (sn->addrs[i].socklen == 0) {
            continue;
        }

        if (ngx_cmp_sockaddr(sa, len, &sn->addrs[i].sockaddr.sockaddr,
                             sn->addrs[i].socklen, 1)
            == NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    if (sn->n == NGX_HTTP_MAINTENANCE_SENTINELS_MAX
        || len > sizeof(ngx_sockaddr_t))
    {
        return NGX_DECLINED;
    }

    a = &sn->addrs[sn->n++];

    ngx_memcpy(&a->sockaddr, sa, len);
    a->socklen = len;

    len = ngx_sock_ntop(sa, len, a->text, NGX_HTTP_MAINTENANCE_ADDR_LEN - 1,
                        1);
    a->text[len] = '\0';

    return NGX_OK;
}


/*
 * The sentinels learned, kept in the zone for the next worker 0 of this
 * master (save), or taken from it at start; never the configured ones.
 */

static void
ngx_http_maintenance_sentinel_learned(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t save)
{
    ngx_uint_t                     i, n;
    ngx_http_maintenance_sync_t   *sync;
    ngx_http_maintenance_shctx_t  *sh;

    sync = sn->sync;
    sh = sync->sh;

    ngx_shmtx_lock(&sync->shpool->mutex);

    if (save) {
        if (sh->owner_pid == ngx_pid) {
            n = ngx_min(sn->n - sn->nconf,
                        NGX_HTTP_MAINTENANCE_SENTINELS_CONF);

            for (i = 0; i < n; i++) {
                ngx_memcpy(&sh->learned[i], &sn->addrs[sn->nconf + i].sockaddr,
                           sizeof(ngx_sockaddr_t));
                sh->learned_len[i] = sn->addrs[sn->nconf + i].socklen;
            }

            sh->nlearned = n;
            (void) ngx_cpystrn(sh->learned_for, sn->name.data,
                               MIG_NAME_MAX + 1);
        }

    } else if (ngx_strcmp(sh->learned_for, sn->name.data) == 0) {
        n = ngx_min(sh->nlearned, NGX_HTTP_MAINTENANCE_SENTINELS_CONF);

        for (i = 0; i < n; i++) {
            (void) ngx_http_maintenance_sentinel_add(sn,
                                                   &sh->learned[i].sockaddr,
                                                   sh->learned_len[i]);
        }
    }

    ngx_shmtx_unlock(&sync->shpool->mutex);
}


/*
 * "ip" and port from a sentinel: numeric only (ngx_parse_addr), into the
 * caller's storage; the pool is reset, nothing stays allocated per reply
 */

static ngx_int_t
ngx_http_maintenance_sentinel_parse(ngx_http_maintenance_sentinel_t *sn,
    const char *ip, int port, ngx_sockaddr_t *sa, socklen_t *socklen)
{
    ngx_int_t   rc;
    ngx_addr_t  a;

    rc = ngx_parse_addr(sn->pool, &a, (u_char *) ip, ngx_strlen(ip));

    if (rc == NGX_OK && a.socklen <= (socklen_t) sizeof(ngx_sockaddr_t)) {
        ngx_memcpy(sa, a.sockaddr, a.socklen);
        *socklen = a.socklen;
        ngx_inet_set_port(&sa->sockaddr, (in_port_t) port);

    } else {
        rc = NGX_ERROR;
    }

    ngx_reset_pool(sn->pool);

    return rc;
}


/*
 * The address of a name to connect to: the one that answered last if the
 * name still has it, else the next of the answer (the resolver rotates
 * them).  A change of the answer is logged at notice, once.
 */

static struct sockaddr *
ngx_http_maintenance_sentinel_pick(ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_sentinel_addr_t *a,
    ngx_http_maintenance_resolve_t *rs, socklen_t *socklen)
{
    u_char           text[NGX_SOCKADDR_STRLEN], more[64];
    size_t           len;
    uint32_t         answer;
    ngx_uint_t       i;
    struct sockaddr *sa;

    sa = NULL;
    answer = rs->naddrs;

    for (i = 0; i < rs->naddrs; i++) {
        /* a sum: the same addresses in another order are no change */
        answer += ngx_crc32_short((u_char *) &rs->addrs[i], rs->socklens[i]);

        if (sa == NULL && a->socklen
            && ngx_cmp_sockaddr(&rs->addrs[i].sockaddr, rs->socklens[i],
                                &a->sockaddr.sockaddr, a->socklen, 1)
               == NGX_OK)
        {
            /* _next() goes on after this one (rs->cur is its state) */
            ngx_memcpy(&rs->cur, &rs->addrs[i], rs->socklens[i]);
            rs->cur_len = rs->socklens[i];

            sa = &rs->cur.sockaddr;
            *socklen = rs->cur_len;
        }
    }

    if (sa == NULL) {
        rs->cur_len = 0;
        sa = ngx_http_maintenance_resolve_next(rs, socklen);
    }

    if (a->resolved_len && answer == a->answer) {
        return sa;
    }

    a->answer = answer;

    len = ngx_sock_ntop(sa, *socklen, text, NGX_SOCKADDR_STRLEN, 1);

    more[0] = '\0';

    if (rs->naddrs > 1) {
        (void) ngx_snprintf(more, sizeof(more) - 1,
                            " (one of %ui addresses, each asked)%Z",
                            rs->naddrs);
    }

    if (a->resolved_len == 0) {
        ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                      "maintenance: sentinel name %V resolves to %*s%s",
                      &a->host, len, text, more);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                      "maintenance: sentinel name %V now resolves to %*s, "
                      "was %*s%s", &a->host, len, text, a->resolved_len,
                      a->resolved, more);
    }

    ngx_memcpy(a->resolved, text, len);
    a->resolved_len = len;

    return sa;
}


/*
 * NGX_OK: the name resolved.  Else its failure is logged once until it
 * resolves again (the query and the subscription share the entry).
 */

static ngx_int_t
ngx_http_maintenance_sentinel_unresolved(ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_sentinel_addr_t *a,
    ngx_http_maintenance_resolve_t *rs)
{
    if (rs->state == NGX_OK && rs->naddrs) {
        a->unresolved = 0;
        return NGX_OK;
    }

    if (!a->unresolved) {
        ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                      "maintenance: sentinel %s: %s; asking the next "
                      "sentinel", a->text, rs->err);
        a->unresolved = 1;
        a->resolved_len = 0;      /* "resolves to" when it is back */
    }

    return NGX_ERROR;
}


/* the +switch-master subscription */

static void
ngx_http_maintenance_sentinel_sub_start(ngx_http_maintenance_sentinel_t *sn)
{
    ngx_http_maintenance_sentinel_addr_t  *a;

    sn->sub_idx %= sn->n;
    a = &sn->addrs[sn->sub_idx];

    sn->sub_ready = 0;

    if (a->host.len == 0) {
        ngx_http_maintenance_sentinel_sub_open(sn, &a->sockaddr.sockaddr,
                                               a->socklen);
        return;
    }

    if (ngx_http_maintenance_resolve(&sn->sub_rs, sn->sync, &a->host, a->port,
                                     ngx_http_maintenance_sentinel_sub_resolved,
                                     sn)
        != NGX_OK)
    {
        (void) ngx_http_maintenance_sentinel_unresolved(sn, a, &sn->sub_rs);
        ngx_http_maintenance_sentinel_sub_failed(sn, sn->sub_rs.err);
    }
}


static void
ngx_http_maintenance_sentinel_sub_resolved(ngx_http_maintenance_resolve_t *rs)
{
    ngx_http_maintenance_sentinel_t  *sn = rs->data;

    socklen_t                              len;
    struct sockaddr                       *sa;
    ngx_http_maintenance_sentinel_addr_t  *a;

    if (ngx_http_maintenance_sentinel_exiting(sn) || sn->sub.c) {
        return;
    }

    a = &sn->addrs[sn->sub_idx];

    if (ngx_http_maintenance_sentinel_unresolved(sn, a, rs) != NGX_OK) {
        ngx_http_maintenance_sentinel_sub_failed(sn, rs->err);
        return;
    }

    sa = ngx_http_maintenance_sentinel_pick(sn, a, rs, &len);

    ngx_http_maintenance_sentinel_sub_open(sn, sa, len);
}


static void
ngx_http_maintenance_sentinel_sub_open(ngx_http_maintenance_sentinel_t *sn,
    struct sockaddr *sa, socklen_t len)
{
    size_t       lens[2];
    const char  *argv[2];

    ngx_memcpy(&sn->sub_addr, sa, len);
    sn->sub.sockaddr = &sn->sub_addr.sockaddr;
    sn->sub.socklen = len;

    if (ngx_http_maintenance_redis_connect(&sn->sub) != NGX_OK) {
        ngx_http_maintenance_sentinel_sub_failed(sn, sn->sub.why);
        return;
    }

    if (sn->password.len) {
        argv[0] = "AUTH";
        lens[0] = 4;
        argv[1] = (char *) sn->password.data;
        lens[1] = sn->password.len;

        if (ngx_http_maintenance_redis_send(&sn->sub,
                                        ngx_http_maintenance_sentinel_sub_cb,
                                        sn, 2, argv, lens)
            != NGX_OK)
        {
            goto failed;
        }
    }

    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    argv[1] = "+switch-master";
    lens[1] = sizeof("+switch-master") - 1;

    if (ngx_http_maintenance_redis_send(&sn->sub,
                                        ngx_http_maintenance_sentinel_sub_cb,
                                        sn, 2, argv, lens)
        == NGX_OK)
    {
        return;
    }

failed:

    ngx_http_maintenance_redis_close(&sn->sub, "out of memory");
}


/*
 * Everything the subscription receives, queued or pushed alike (a message
 * may come where the reply to a PING is due): +OK of AUTH, the
 * confirmation, messages, pongs.  Anything else closes the connection.
 */

static void
ngx_http_maintenance_sentinel_sub_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_sentinel_t  *sn = rc->data;

    int          rv;
    char         msg[128], why[160];
    const char  *malformed;

    rv = ngx_http_maintenance_reply_switch_sub(reply, sn->sub_ready,
                                               &malformed);

    if (rv == NGX_HTTP_MAINTENANCE_REPLY_OK) {
        return;
    }

    if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
        (void) ngx_http_maintenance_reply_cstr(reply, msg, sizeof(msg));
        (void) ngx_snprintf((u_char *) why, sizeof(why) - 1, "refused: %s%Z",
                            msg);
        ngx_http_maintenance_redis_close(rc, why);
        return;
    }

    if (rv == NGX_HTTP_MAINTENANCE_REPLY_MALFORMED) {
        ngx_http_maintenance_redis_close(rc, malformed);
        return;
    }

    if (rv == NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED) {
        sn->sub_ready = 1;
        sn->sub_fails = 0;
        sn->sub_whylen = 0;
        sn->sub_backoff = NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MIN;

        if (sn->sub_down_logged) {
            ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                          "maintenance: sentinel subscriber to %s up again",
                          sn->addrs[sn->sub_idx].text);
            sn->sub_down_logged = 0;

        } else if (!sn->sub_ever) {
            ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                          "maintenance: sentinel subscriber to %s up",
                          sn->addrs[sn->sub_idx].text);
        }

        ngx_http_maintenance_sentinel_zone(sn, 1,
                                           sn->addrs[sn->sub_idx].text);

        ngx_add_timer(&sn->ping, NGX_HTTP_MAINTENANCE_SENTINEL_PING);

        /*
         * A +switch-master sent while we were away is lost: ask again,
         * this sentinel first (it answers, and the one asked first before
         * may be the stale one); the links move only if the master changed.
         */

        if (sn->sub_ever && !sn->querying) {
            sn->resume = 0;
            sn->good = sn->sub_idx;
            ngx_http_maintenance_sentinel_round(sn);
        }

        sn->sub_ever = 1;
        return;
    }

    /* EVENT: a +switch-master message */

    ngx_http_maintenance_sentinel_switch(sn, reply->element[2]);
}


/* "+switch-master": "name oldip oldport newip newport" */

static void
ngx_http_maintenance_sentinel_switch(ngx_http_maintenance_sentinel_t *sn,
    redisReply *msg)
{
    int             rc, port;
    char            ip[NGX_HTTP_MAINTENANCE_IP_LEN];
    socklen_t       len;
    ngx_sockaddr_t  sa;

    rc = ngx_http_maintenance_switch_master_parse(msg->str, msg->len,
                                                  (char *) sn->name.data,
                                                  ip, sizeof(ip), &port);
    if (rc == 0) {
        return;   /* another master's */
    }

    if (rc < 0
        || ngx_http_maintenance_sentinel_parse(sn, ip, port, &sa, &len)
           != NGX_OK)
    {
        /* the links find the master by discovery at their next error */
        ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                      "maintenance: sentinel %s: malformed +switch-master "
                      "message ignored", sn->addrs[sn->sub_idx].text);
        sn->stale = 1;
        return;
    }

    if (sn->known
        && ngx_cmp_sockaddr(&sa.sockaddr, len, &sn->master.sockaddr,
                            sn->masterlen, 1)
           == NGX_OK)
    {
        return;
    }

    /* a discovery running now could name the old master: it is dropped */

    if (sn->querying) {
        sn->querying = 0;

        if (sn->step.posted) {
            ngx_delete_posted_event(&sn->step);
        }

        ngx_http_maintenance_resolve_cancel(&sn->query_rs);
        ngx_http_maintenance_redis_close(&sn->query, "cancelled");
    }

    sn->resume = 0;
    sn->role_logged = 0;

    ngx_http_maintenance_sentinel_set_master(sn, &sa.sockaddr, len,
                                             sn->sub_idx,
                                             "+switch-master from sentinel");

    sn->resolved(sn, NGX_OK, NULL);
}


static void
ngx_http_maintenance_sentinel_sub_closed(ngx_http_maintenance_redis_t *rc,
    const char *why)
{
    ngx_http_maintenance_sentinel_t  *sn = rc->data;

    sn->sub_ready = 0;

    if (sn->ping.timer_set) {
        ngx_del_timer(&sn->ping);
    }

    if (ngx_http_maintenance_sentinel_exiting(sn)) {
        return;
    }

    ngx_http_maintenance_sentinel_sub_failed(sn, why);
}


/*
 * Logged once until subscribed again; the next sentinel is tried after a
 * backoff.  When every sentinel failed in a row, none is reachable.
 */

static void
ngx_http_maintenance_sentinel_sub_failed(ngx_http_maintenance_sentinel_t *sn,
    const char *why)
{
    u_char      *p, *last;
    ngx_msec_t   wait;

    if (!sn->sub_down_logged) {
        ngx_log_error(NGX_LOG_ERR, sn->log, 0,
                      "maintenance: sentinel subscriber to %s down: %s; "
                      "trying the next sentinel", sn->addrs[sn->sub_idx].text,
                      why);
        sn->sub_down_logged = 1;
    }

    if (sn->sub_fails < sn->n) {
        p = sn->sub_why + sn->sub_whylen;
        last = sn->sub_why + sizeof(sn->sub_why) - 1;

        p = ngx_slprintf(p, last, "%s%s: %s", sn->sub_whylen ? ", " : "",
                         sn->addrs[sn->sub_idx].text, why);
        *p = '\0';
        sn->sub_whylen = p - sn->sub_why;
        ngx_http_maintenance_printable((char *) sn->sub_why);
    }

    if (++sn->sub_fails == sn->n && !sn->querying) {
        ngx_http_maintenance_sentinel_zone(sn, 0, sn->sub_why);
    }

    sn->sub_idx = (sn->sub_idx + 1) % sn->n;

    wait = sn->sub_backoff / 2
           + (ngx_msec_t) ngx_random() % (sn->sub_backoff / 2 + 1);

    ngx_add_timer(&sn->sub_timer, ngx_max(wait, 1));

    sn->sub_backoff = ngx_min(sn->sub_backoff * 2,
                              NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MAX);
}


static void
ngx_http_maintenance_sentinel_sub_reconnect(ngx_event_t *ev)
{
    ngx_http_maintenance_sentinel_t  *sn;

    sn = ev->data;

    if (ngx_http_maintenance_sentinel_exiting(sn) || sn->sub.c
        || sn->sub_rs.ctx)
    {
        return;
    }

    ngx_http_maintenance_sentinel_sub_start(sn);
}


/* an idle subscription to a hung sentinel would never fail on its own */

static void
ngx_http_maintenance_sentinel_ping(ngx_event_t *ev)
{
    size_t                            lens[1];
    const char                       *argv[1];
    ngx_http_maintenance_sentinel_t  *sn;

    sn = ev->data;

    if (ngx_http_maintenance_sentinel_exiting(sn) || !sn->sub_ready) {
        return;
    }

    if (sn->sub.n == 0) {
        argv[0] = "PING";
        lens[0] = 4;

        (void) ngx_http_maintenance_redis_send(&sn->sub,
                                        ngx_http_maintenance_sentinel_sub_cb,
                                        sn, 1, argv, lens);
    }

    ngx_add_timer(&sn->ping, NGX_HTTP_MAINTENANCE_SENTINEL_PING);
}


/*
 * Status in the zone: whether the last contact with a sentinel worked,
 * the sentinel in use, or every one tried and why
 */

static void
ngx_http_maintenance_sentinel_zone(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t reachable, u_char *text)
{
    ngx_http_maintenance_sync_t   *sync;
    ngx_http_maintenance_shctx_t  *sh;

    sync = sn->sync;
    sh = sync->sh;

    ngx_shmtx_lock(&sync->shpool->mutex);

    if (sh->owner_pid == ngx_pid) {
        sh->sentinel_reachable = reachable;

        if (reachable) {
            sh->sentinel_tried[0] = '\0';
            (void) ngx_cpystrn(sh->sentinel, text,
                               NGX_HTTP_MAINTENANCE_ADDR_LEN);

        } else {
            sh->sentinel[0] = '\0';
            (void) ngx_cpystrn(sh->sentinel_tried, text,
                               NGX_HTTP_MAINTENANCE_TRIED_LEN);
        }
    }

    /* else replaced by a reload: the zone is the new worker 0's */

    ngx_shmtx_unlock(&sync->shpool->mutex);
}


/*
 * The master as confirmed by ROLE, into the zone.  Another master than
 * the zone's (this worker's or the one before it) is a failover; the
 * first master ever known is not one.
 */

static void
ngx_http_maintenance_sentinel_zone_master(ngx_http_maintenance_sentinel_t *sn)
{
    u_char                         addr[NGX_HTTP_MAINTENANCE_ADDR_LEN];
    size_t                         len;
    ngx_time_t                    *tp;
    ngx_http_maintenance_sync_t   *sync;
    ngx_http_maintenance_shctx_t  *sh;

    sync = sn->sync;
    sh = sync->sh;

    len = ngx_sock_ntop(&sn->master.sockaddr, sn->masterlen, addr,
                        NGX_HTTP_MAINTENANCE_ADDR_LEN - 1, 1);
    addr[len] = '\0';

    ngx_shmtx_lock(&sync->shpool->mutex);

    if (sh->owner_pid == ngx_pid && ngx_strcmp(addr, sh->master) != 0) {

        if (sh->master[0]) {
            (void) ngx_atomic_fetch_add(&sh->failovers, 1);

            tp = ngx_timeofday();
            sh->last_switch = (uint64_t) tp->sec * 1000 + tp->msec;
        }

        ngx_memcpy(sh->master, addr, len + 1);
    }

    ngx_shmtx_unlock(&sync->shpool->mutex);
}


static ngx_uint_t
ngx_http_maintenance_sentinel_exiting(ngx_http_maintenance_sentinel_t *sn)
{
    if (sn->exiting || sn->sync->exiting || ngx_exiting || ngx_terminate
        || ngx_quit)
    {
        sn->exiting = 1;
        return 1;
    }

    return 0;
}
