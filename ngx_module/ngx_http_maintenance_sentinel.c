/*
 * ngx_http_maintenance_sentinel.c: worker 0 finds the Redis master through
 * Redis Sentinel, a discovery over the sentinels, and follows it
 * (+switch-master: _sub.c), as Redis's client guidelines for Sentinel
 * describe.
 */

#include "ngx_http_maintenance_sentinel_int.h"
#include "ngx_http_maintenance_reply.h"


static void ngx_http_maintenance_sentinel_round(
    ngx_http_maintenance_sentinel_t *sn);
static void ngx_http_maintenance_sentinel_ask(
    ngx_http_maintenance_sentinel_t *sn);
static void ngx_http_maintenance_sentinel_query_resolved(
    ngx_http_maintenance_resolve_t *rs);
static void ngx_http_maintenance_sentinel_ask_at(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa, socklen_t len);
static void ngx_http_maintenance_sentinel_step(ngx_event_t *ev);
static void ngx_http_maintenance_sentinel_cand_resolve(
    ngx_http_maintenance_sentinel_t *sn);
static void ngx_http_maintenance_sentinel_cand_resolved(
    ngx_http_maintenance_resolve_t *rs);
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
    sn->discover = ngx_http_maintenance_sentinel_round;

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
    sn->cand_rs.timeout = timeout;

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

    ngx_http_maintenance_sentinel_follow(sn);
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
    ngx_http_maintenance_resolve_cancel(&sn->cand_rs);

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
    sn->peers_valid = 0;
    sn->cand_named = 0;

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

    if (ngx_http_maintenance_sentinel_auth(sn, &sn->query,
                                       ngx_http_maintenance_sentinel_auth_cb)
        != NGX_OK)
    {
        goto failed;
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
        if (sn->cand_named) {
            ngx_http_maintenance_sentinel_cand_resolve(sn);
            return;
        }

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


/*
 * The master named by host name: resolved on the event loop with
 * "resolver" (never a blocking lookup in worker 0).  Without it, or when
 * the name does not resolve, this sentinel fails and the next is asked.
 */

static void
ngx_http_maintenance_sentinel_cand_resolve(ngx_http_maintenance_sentinel_t *sn)
{
    ngx_str_t  host;

    host.data = sn->cand_host;
    host.len = ngx_strlen(sn->cand_host);

    if (sn->sync->mmcf->resolver == NULL) {
        ngx_http_maintenance_sentinel_note(sn, "master \"%V\" is a host "
                                "name: set \"resolver\" in http{} to "
                                "resolve it (or announce IP addresses: "
                                "resolve-hostnames no on the sentinels)",
                                &host);
        goto failed;
    }

    /* the handler may run before this returns (a cached answer) */

    if (ngx_http_maintenance_resolve(&sn->cand_rs, sn->sync, &host,
                                sn->cand_port,
                                ngx_http_maintenance_sentinel_cand_resolved,
                                sn)
        == NGX_OK)
    {
        return;
    }

    ngx_http_maintenance_sentinel_note(sn, "master \"%V\" (a host name, "
                                       "resolve-hostnames): %s", &host,
                                       sn->cand_rs.err);

failed:

    sn->found = 0;
    sn->cand_named = 0;
    ngx_post_event(&sn->step, &ngx_posted_events);
}


static void
ngx_http_maintenance_sentinel_cand_resolved(ngx_http_maintenance_resolve_t *rs)
{
    ngx_http_maintenance_sentinel_t  *sn = rs->data;

    u_char            text[NGX_SOCKADDR_STRLEN],
                      now[sizeof(sn->cand_logged)];
    size_t            len;
    socklen_t         socklen;
    struct sockaddr  *sa;

    if (!sn->querying || !sn->cand_named
        || ngx_http_maintenance_sentinel_exiting(sn))
    {
        return;
    }

    sn->cand_named = 0;

    if (rs->state != NGX_OK || rs->naddrs == 0) {
        ngx_http_maintenance_sentinel_note(sn, "master \"%s\" (a host name, "
                                           "resolve-hostnames): %s",
                                           sn->cand_host, rs->err);
        sn->found = 0;
        ngx_post_event(&sn->step, &ngx_posted_events);
        return;
    }

    /* the first address: a master is one server */
    rs->cur_len = 0;
    sa = ngx_http_maintenance_resolve_next(rs, &socklen);

    ngx_memcpy(&sn->cand, sa, socklen);
    sn->candlen = socklen;

    len = ngx_sock_ntop(sa, socklen, text, NGX_SOCKADDR_STRLEN, 1);

    /* once per name and address: discoveries repeat during an outage */
    (void) ngx_snprintf(now, sizeof(now) - 1, "%s %*s%Z", sn->cand_host, len,
                        text);

    if (ngx_strcmp(now, sn->cand_logged) != 0) {
        ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                      "maintenance: sentinel: master \"%s\" resolves to "
                      "%*s", sn->cand_host, len, text);
        ngx_memcpy(sn->cand_logged, now, sizeof(now));
    }

    ngx_http_maintenance_sentinel_done(sn, NGX_OK);
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
    char   ip[NGX_HTTP_MAINTENANCE_RESOLVE_NAME + 1], msg[128];

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

    /* a host name (resolve-hostnames yes): resolved after this reply */

    if (ngx_http_maintenance_sentinel_parse(sn, ip, port, &sn->cand,
                                            &sn->candlen)
        != NGX_OK)
    {
        if (!ngx_http_maintenance_sentinel_host_name(ip)) {
            ngx_http_maintenance_sentinel_note(sn, "master \"%s\" is not "
                                               "an address", ip);
            ngx_http_maintenance_redis_close(rc, "not an address");
            return;
        }

        (void) ngx_cpystrn(sn->cand_host, (u_char *) ip,
                           sizeof(sn->cand_host));
        sn->cand_port = (in_port_t) port;
        sn->cand_named = 1;
    }

    sn->found = 1;
}


/*
 * The other sentinels of this master: learned now, and kept to drop the
 * learned ones it does not list once its master is confirmed
 */

static void
ngx_http_maintenance_sentinel_peers_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    ngx_http_maintenance_sentinel_t  *sn = data;

    int         port;
    char        ip[NGX_HTTP_MAINTENANCE_IP_LEN];
    size_t      i;
    ngx_uint_t  n;

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_maintenance_redis_close(rc, "done");
        return;
    }

    n = 0;
    sn->peers_overflow = 0;

    for (i = 0; i < reply->elements; i++) {
        if (ngx_http_maintenance_reply_sentinel(reply->element[i], ip,
                                                sizeof(ip), &port)
            != 0)
        {
            continue;
        }

        if (n == NGX_HTTP_MAINTENANCE_SENTINELS_MAX) {
            sn->peers_overflow = 1;
            break;
        }

        if (ngx_http_maintenance_sentinel_parse(sn, ip, port, &sn->peers[n],
                                                &sn->peerlens[n])
            == NGX_OK)
        {
            n++;
        }
    }

    sn->npeers = n;
    sn->peers_from = sn->cur;
    sn->peers_valid = 1;

    ngx_http_maintenance_sentinel_learn(sn);

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

        /* the master unchanged, confirmed before: its list is followed */
        ngx_http_maintenance_sentinel_follow(sn);

        /*
         * a subscription waiting (in a round or its backoff) goes to the
         * sentinel that just answered, now
         */

        if (sn->sub.c == NULL && sn->sub_rs.ctx == NULL) {
            if (sn->sub_timer.timer_set) {
                ngx_del_timer(&sn->sub_timer);
            }

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
