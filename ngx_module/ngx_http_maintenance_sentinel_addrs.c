/*
 * ngx_http_maintenance_sentinel_addrs.c: the sentinels (configured,
 * learned, a name's answer) and the master, and their record in the zone.
 */

#include "ngx_http_maintenance_sentinel_int.h"


static ngx_uint_t ngx_http_maintenance_sentinel_known(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa, socklen_t len);
static ngx_uint_t ngx_http_maintenance_sentinel_reported(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t i);
static ngx_uint_t ngx_http_maintenance_sentinel_in_use(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t i);
static void ngx_http_maintenance_sentinel_drop(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t i, const char *why);
static void ngx_http_maintenance_sentinel_shift(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t *idx, ngx_uint_t i);


/*
 * A master from a discovery or a +switch-master: a change (not the first
 * master this worker sees, unless the zone knew another) is a failover.
 */

void
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

ngx_int_t
ngx_http_maintenance_sentinel_add(ngx_http_maintenance_sentinel_t *sn,
    struct sockaddr *sa, socklen_t len)
{
    ngx_http_maintenance_sentinel_addr_t  *a;

    if (ngx_http_maintenance_sentinel_known(sn, sa, len)
        || sn->n == NGX_HTTP_MAINTENANCE_SENTINELS_MAX
        || len > sizeof(ngx_sockaddr_t))
    {
        return NGX_DECLINED;
    }

    a = &sn->addrs[sn->n++];

    ngx_memzero(a, sizeof(ngx_http_maintenance_sentinel_addr_t));
    ngx_memcpy(&a->sockaddr, sa, len);
    a->socklen = len;

    len = ngx_sock_ntop(sa, len, a->text, NGX_HTTP_MAINTENANCE_ADDR_LEN - 1,
                        1);
    a->text[len] = '\0';

    return NGX_OK;
}


/*
 * The "sentinels" answer (sn->peers) of the sentinel asked now: a
 * sentinel not known yet is learned.  A full list makes room for it: the
 * oldest learned one the answer does not list goes (not when the answer
 * itself did not fit: it may list them all).
 */

void
ngx_http_maintenance_sentinel_learn(ngx_http_maintenance_sentinel_t *sn)
{
    ngx_uint_t  i, j, changed;

    changed = 0;

    for (j = 0; j < sn->npeers; j++) {

        if (ngx_http_maintenance_sentinel_known(sn, &sn->peers[j].sockaddr,
                                                sn->peerlens[j]))
        {
            continue;
        }

        if (sn->n == NGX_HTTP_MAINTENANCE_SENTINELS_MAX) {
            if (sn->peers_overflow) {
                break;
            }

            for (i = sn->nconf; i < sn->n; i++) {
                if (!ngx_http_maintenance_sentinel_reported(sn, i)
                    && !ngx_http_maintenance_sentinel_in_use(sn, i))
                {
                    break;
                }
            }

            if (i == sn->n) {
                break;
            }

            ngx_http_maintenance_sentinel_drop(sn, i, "to make room, not "
                                               "listed");
            changed = 1;
        }

        if (ngx_http_maintenance_sentinel_add(sn, &sn->peers[j].sockaddr,
                                              sn->peerlens[j])
            == NGX_OK)
        {
            ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                          "maintenance: sentinel %s learned, listed by "
                          "sentinel %s", sn->addrs[sn->n - 1].text,
                          sn->addrs[sn->peers_from].text);
            changed = 1;
        }
    }

    if (changed) {
        ngx_http_maintenance_sentinel_learned(sn, 1);
    }
}


/*
 * The learned sentinels follow the answer of the sentinel whose master is
 * confirmed (by ROLE, now or before): a learned one it does not list is
 * dropped (removed, moved, SENTINEL RESET), unless in use.  The
 * configured ones are always kept.  An empty answer drops nothing: a
 * sentinel just reset lists no other until their hello messages (2 s).
 */

void
ngx_http_maintenance_sentinel_follow(ngx_http_maintenance_sentinel_t *sn)
{
    ngx_uint_t  i, changed;

    if (!sn->peers_valid || !sn->confirmed || sn->peers_from != sn->from) {
        return;
    }

    sn->peers_valid = 0;

    if (sn->peers_overflow || sn->npeers == 0) {
        return;
    }

    changed = 0;

    for (i = sn->nconf; i < sn->n; /* void */) {

        if (ngx_http_maintenance_sentinel_reported(sn, i)
            || ngx_http_maintenance_sentinel_in_use(sn, i))
        {
            i++;
            continue;
        }

        ngx_http_maintenance_sentinel_drop(sn, i, "not listed");
        changed = 1;
    }

    if (changed) {
        ngx_http_maintenance_sentinel_learned(sn, 1);
    }
}


/*
 * Known: the address of a sentinel in the list, numeric or a name's that
 * answered last (that sentinel, asked by name, not twice a round; once
 * the name moves, the old address may be learned)
 */

static ngx_uint_t
ngx_http_maintenance_sentinel_known(ngx_http_maintenance_sentinel_t *sn,
    struct sockaddr *sa, socklen_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < sn->n; i++) {
        if (sn->addrs[i].socklen
            && ngx_cmp_sockaddr(sa, len, &sn->addrs[i].sockaddr.sockaddr,
                                sn->addrs[i].socklen, 1)
               == NGX_OK)
        {
            return 1;
        }
    }

    return 0;
}


/* in the answer kept, or the sentinel that gave it */

static ngx_uint_t
ngx_http_maintenance_sentinel_reported(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t i)
{
    ngx_uint_t                             j;
    ngx_http_maintenance_sentinel_addr_t  *a;

    if (i == sn->peers_from) {
        return 1;
    }

    a = &sn->addrs[i];

    for (j = 0; j < sn->npeers; j++) {
        if (ngx_cmp_sockaddr(&sn->peers[j].sockaddr, sn->peerlens[j],
                             &a->sockaddr.sockaddr, a->socklen, 1)
            == NGX_OK)
        {
            return 1;
        }
    }

    return 0;
}


/* the master's sentinel, the one asked now, the subscription's */

static ngx_uint_t
ngx_http_maintenance_sentinel_in_use(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t i)
{
    return (sn->known && i == sn->from)
           || (sn->querying && i == sn->cur)
           || ((sn->sub.c || sn->sub_rs.ctx) && i == sn->sub_idx);
}


/*
 * A learned sentinel out of the list (logged: a change of the set); the
 * indexes into the list move with it, one on a dropped entry goes to the
 * next
 */

static void
ngx_http_maintenance_sentinel_drop(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t i, const char *why)
{
    ngx_log_error(NGX_LOG_NOTICE, sn->log, 0,
                  "maintenance: sentinel %s dropped: %s by sentinel %s",
                  sn->addrs[i].text, why, sn->addrs[sn->peers_from].text);

    ngx_memmove(&sn->addrs[i], &sn->addrs[i + 1],
                (sn->n - i - 1) * sizeof(ngx_http_maintenance_sentinel_addr_t));
    sn->n--;

    ngx_http_maintenance_sentinel_shift(sn, &sn->good, i);
    ngx_http_maintenance_sentinel_shift(sn, &sn->from, i);
    ngx_http_maintenance_sentinel_shift(sn, &sn->cur, i);
    ngx_http_maintenance_sentinel_shift(sn, &sn->sub_idx, i);
    ngx_http_maintenance_sentinel_shift(sn, &sn->peers_from, i);
}


static void
ngx_http_maintenance_sentinel_shift(ngx_http_maintenance_sentinel_t *sn,
    ngx_uint_t *idx, ngx_uint_t i)
{
    if (*idx > i) {
        (*idx)--;

    } else if (*idx == i && *idx >= sn->n) {
        *idx = 0;
    }
}


/*
 * The sentinels learned, kept in the zone for the next worker 0 of this
 * master (save), or taken from it at start; never the configured ones.
 */

void
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
                        NGX_HTTP_MAINTENANCE_SENTINELS_MAX);

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
        n = ngx_min(sh->nlearned, NGX_HTTP_MAINTENANCE_SENTINELS_MAX);

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

ngx_int_t
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


/* a DNS host name (letters, digits, "-", "_", "."), not an address */

ngx_uint_t
ngx_http_maintenance_sentinel_host_name(const char *s)
{
    u_char  c;
    size_t  i;

    for (i = 0; s[i]; i++) {
        c = (u_char) (s[i] | 0x20);

        if (i == NGX_HTTP_MAINTENANCE_RESOLVE_NAME
            || !((c >= 'a' && c <= 'z') || (s[i] >= '0' && s[i] <= '9')
                 || s[i] == '-' || s[i] == '_' || s[i] == '.'))
        {
            return 0;
        }
    }

    return i > 0;
}


/*
 * The address of a name to connect to: the one that answered last if the
 * name still has it, else the next of the answer (the resolver rotates
 * them).  A change of the answer is logged at notice, once.
 */

struct sockaddr *
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

ngx_int_t
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


/*
 * Status in the zone: whether the last contact with a sentinel worked,
 * the sentinel in use, or every one tried and why
 */

void
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

void
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


/* the sentinel holding the +switch-master subscription ("" none) */

void
ngx_http_maintenance_sentinel_zone_sub(ngx_http_maintenance_sentinel_t *sn,
    u_char *text)
{
    ngx_http_maintenance_sync_t   *sync;
    ngx_http_maintenance_shctx_t  *sh;

    sync = sn->sync;
    sh = sync->sh;

    ngx_shmtx_lock(&sync->shpool->mutex);

    if (sh->owner_pid == ngx_pid) {
        (void) ngx_cpystrn(sh->sentinel_sub, text,
                           NGX_HTTP_MAINTENANCE_ADDR_LEN);
    }

    ngx_shmtx_unlock(&sync->shpool->mutex);
}


ngx_uint_t
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


/*
 * AUTH queued first on a new connection to a sentinel, when the sentinels
 * have a password (the query and the subscription alike); the password
 * goes on the wire only, never in a log line
 */

ngx_int_t
ngx_http_maintenance_sentinel_auth(ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_redis_t *rc,
    ngx_http_maintenance_redis_reply_pt handler)
{
    size_t       lens[2];
    const char  *argv[2];

    if (sn->password.len == 0) {
        return NGX_OK;
    }

    argv[0] = "AUTH";
    lens[0] = 4;
    argv[1] = (char *) sn->password.data;
    lens[1] = sn->password.len;

    return ngx_http_maintenance_redis_send(rc, handler, sn, 2, argv, lens);
}
