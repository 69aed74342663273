/*
 * ngx_http_maintenance_sentinel_sub.c: the +switch-master subscription,
 * on one sentinel at a time, pinged, moved to the next one on failure.
 */

#include "ngx_http_maintenance_sentinel_int.h"
#include "ngx_http_maintenance_reply.h"


static void ngx_http_maintenance_sentinel_sub_resolved(
    ngx_http_maintenance_resolve_t *rs);
static void ngx_http_maintenance_sentinel_sub_open(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa, socklen_t len);
static void ngx_http_maintenance_sentinel_sub_failed(
    ngx_http_maintenance_sentinel_t *sn, const char *why);
static void ngx_http_maintenance_sentinel_switch(
    ngx_http_maintenance_sentinel_t *sn, redisReply *msg);
static void ngx_http_maintenance_sentinel_cancel(
    ngx_http_maintenance_sentinel_t *sn);


void
ngx_http_maintenance_sentinel_sub_start(ngx_http_maintenance_sentinel_t *sn)
{
    ngx_http_maintenance_sentinel_addr_t  *a;

    sn->sub_idx %= sn->n;
    a = &sn->addrs[sn->sub_idx];

    sn->sub_ready = 0;

    if (!sn->sub_ever && sn->sub_fails == 0) {
        /* a worker 0 starting: not its predecessor's subscription */
        ngx_http_maintenance_sentinel_zone_sub(sn, (u_char *) "");
    }

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

    if (ngx_http_maintenance_sentinel_auth(sn, &sn->sub,
                                        ngx_http_maintenance_sentinel_sub_cb)
        != NGX_OK)
    {
        goto failed;
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

void
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
        ngx_http_maintenance_sentinel_zone_sub(sn,
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
            sn->discover(sn);
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
    char            ip[NGX_HTTP_MAINTENANCE_RESOLVE_NAME + 1];
    socklen_t       len;
    ngx_sockaddr_t  sa;

    rc = ngx_http_maintenance_switch_master_parse(msg->str, msg->len,
                                                  (char *) sn->name.data,
                                                  ip, sizeof(ip), &port);
    if (rc == 0) {
        return;   /* another master's */
    }

    if (rc > 0
        && ngx_http_maintenance_sentinel_parse(sn, ip, port, &sa, &len)
           != NGX_OK
        && ngx_http_maintenance_sentinel_host_name(ip))
    {
        /* a host name (resolve-hostnames): the discovery resolves it */
        ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                      "maintenance: sentinel %s: +switch-master to host "
                      "name \"%s\"; asking the sentinels",
                      sn->addrs[sn->sub_idx].text, ip);

        ngx_http_maintenance_sentinel_cancel(sn);

        sn->resume = 0;
        sn->role_logged = 0;
        sn->stale = 1;
        sn->good = sn->sub_idx;
        sn->discover(sn);
        return;
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

    ngx_http_maintenance_sentinel_cancel(sn);

    sn->resume = 0;
    sn->role_logged = 0;

    ngx_http_maintenance_sentinel_set_master(sn, &sa.sockaddr, len,
                                             sn->sub_idx,
                                             "+switch-master from sentinel");

    sn->resolved(sn, NGX_OK, NULL);
}


/* a discovery running now could name the old master: it is dropped */

static void
ngx_http_maintenance_sentinel_cancel(ngx_http_maintenance_sentinel_t *sn)
{
    if (!sn->querying) {
        return;
    }

    sn->querying = 0;

    if (sn->step.posted) {
        ngx_delete_posted_event(&sn->step);
    }

    ngx_http_maintenance_resolve_cancel(&sn->query_rs);
    ngx_http_maintenance_resolve_cancel(&sn->cand_rs);
    ngx_http_maintenance_redis_close(&sn->query, "cancelled");
}


void
ngx_http_maintenance_sentinel_sub_closed(ngx_http_maintenance_redis_t *rc,
    const char *why)
{
    ngx_http_maintenance_sentinel_t  *sn = rc->data;

    ngx_uint_t  ready;

    ready = sn->sub_ready;
    sn->sub_ready = 0;

    if (sn->ping.timer_set) {
        ngx_del_timer(&sn->ping);
    }

    if (ngx_http_maintenance_sentinel_exiting(sn)) {
        return;
    }

    if (ready) {
        ngx_http_maintenance_sentinel_zone_sub(sn, (u_char *) "");
    }

    ngx_http_maintenance_sentinel_sub_failed(sn, why);
}


/*
 * Logged once until subscribed again.  As Redis's guidelines for Sentinel
 * clients say, the next sentinel is tried at once (each attempt is bounded
 * by the timeout), and only after a whole round failed, after a backoff:
 * dead sentinels ahead of a live one cost their timeouts, no more.  When
 * every sentinel failed in a row, none is reachable.
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

    if (sn->sub_fails % sn->n) {
        /* the round goes on: from the event loop, not recursively */
        ngx_add_timer(&sn->sub_timer, 0);
        return;
    }

    wait = sn->sub_backoff / 2
           + (ngx_msec_t) ngx_random() % (sn->sub_backoff / 2 + 1);

    ngx_add_timer(&sn->sub_timer, ngx_max(wait, 1));

    sn->sub_backoff = ngx_min(sn->sub_backoff * 2,
                              NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MAX);
}


void
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

void
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
