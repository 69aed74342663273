/*
 * ngx_http_maintenance_resolve.c: Redis host names, resolved by nginx's
 * resolver on the event loop (worker 0), or once at load without one.
 */

#include "ngx_http_maintenance_module.h"


static void ngx_http_maintenance_resolve_handler(ngx_resolver_ctx_t *ctx);
static ngx_uint_t ngx_http_maintenance_resolve_numeric(
    ngx_http_maintenance_resolve_t *rs);


/*
 * NGX_OK: the handler runs once, maybe before this returns.  NGX_ERROR:
 * nothing started, rs->err says why, the handler does not run.  The name
 * is copied: the caller's host need not outlive the call.
 */

ngx_int_t
ngx_http_maintenance_resolve(ngx_http_maintenance_resolve_t *rs,
    ngx_http_maintenance_sync_t *sync, ngx_str_t *host, in_port_t port,
    ngx_http_maintenance_resolve_pt handler, void *data)
{
    ngx_str_t                          name;
    ngx_resolver_ctx_t                *ctx;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = sync->mmcf;

    ngx_http_maintenance_resolve_cancel(rs);

    rs->handler = handler;
    rs->data = data;
    rs->port = port;
    rs->state = NGX_ERROR;
    rs->naddrs = 0;
    rs->err[0] = '\0';

    if (host->len == 0 || host->len > NGX_HTTP_MAINTENANCE_RESOLVE_NAME) {
        (void) ngx_snprintf((u_char *) rs->err, sizeof(rs->err) - 1,
                            "invalid host name \"%*s\"%Z",
                            ngx_min(host->len, 64), host->data);
        return NGX_ERROR;
    }

    /* ngx_resolve_name() lowercases the name in place: our copy */
    ngx_memcpy(rs->name, host->data, host->len);
    rs->name[host->len] = '\0';
    rs->name_len = host->len;

    if (ngx_http_maintenance_resolve_numeric(rs)) {
        rs->state = NGX_OK;
        rs->handler(rs);
        return NGX_OK;
    }

    name.data = rs->name;
    name.len = rs->name_len;

    if (mmcf->resolver == NULL) {
        (void) ngx_snprintf((u_char *) rs->err, sizeof(rs->err) - 1,
                            "no resolver defined to resolve %V%Z", &name);
        return NGX_ERROR;
    }

    ctx = ngx_resolve_start(mmcf->resolver, NULL);

    if (ctx == NULL || ctx == NGX_NO_RESOLVER) {
        (void) ngx_snprintf((u_char *) rs->err, sizeof(rs->err) - 1,
                            "%V could not be resolved (%s)%Z", &name,
                            ctx ? "no resolver" : "out of memory");
        return NGX_ERROR;
    }

    ctx->name = name;
    ctx->handler = ngx_http_maintenance_resolve_handler;
    ctx->data = rs;
    ctx->timeout = ngx_min(mmcf->resolver_timeout, mmcf->redis_timeout);

    if (rs->timeout) {
        ctx->timeout = ngx_min(ctx->timeout, rs->timeout);
    }

    ctx->cancelable = 1;              /* graceful shutdown does not wait */

    /* before: a cached answer calls the handler from ngx_resolve_name() */
    rs->ctx = ctx;

    if (ngx_resolve_name(ctx) != NGX_OK) {
        /* ctx is freed */
        rs->ctx = NULL;
        (void) ngx_snprintf((u_char *) rs->err, sizeof(rs->err) - 1,
                            "%V could not be resolved (out of memory)%Z",
                            &name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* no handler call after this */

void
ngx_http_maintenance_resolve_cancel(ngx_http_maintenance_resolve_t *rs)
{
    ngx_resolver_ctx_t  *ctx;

    ctx = rs->ctx;

    if (ctx == NULL) {
        return;
    }

    rs->ctx = NULL;

    ngx_resolve_name_done(ctx);
}


/*
 * The answer's addresses in turn: the one after the address picked last
 * if it is still in the answer (that one failed, or its connection did),
 * else the first.  The result stays valid until the next call.
 */

struct sockaddr *
ngx_http_maintenance_resolve_next(ngx_http_maintenance_resolve_t *rs,
    socklen_t *socklen)
{
    ngx_uint_t  i, j;

    if (rs->naddrs == 0) {
        return NULL;
    }

    i = 0;

    if (rs->cur_len) {
        for (j = 0; j < rs->naddrs; j++) {
            if (ngx_cmp_sockaddr(&rs->addrs[j].sockaddr, rs->socklens[j],
                                 &rs->cur.sockaddr, rs->cur_len, 1)
                == NGX_OK)
            {
                i = (j + 1) % rs->naddrs;
                break;
            }
        }
    }

    ngx_memcpy(&rs->cur, &rs->addrs[i], rs->socklens[i]);
    rs->cur_len = rs->socklens[i];

    *socklen = rs->cur_len;

    return &rs->cur.sockaddr;
}


/*
 * Postconfiguration, after the servers are merged (the http level has a
 * resolver then, a dummy one without addresses if none was configured).
 * A name without a resolver is resolved here, once, as nginx resolves
 * proxy_pass: the links will not follow it, and the operator is told.
 */

ngx_int_t
ngx_http_maintenance_resolve_conf(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    ngx_url_t                  u;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->resolver && clcf->resolver->connections.nelts) {
        mmcf->resolver = clcf->resolver;
    }

    mmcf->resolver_timeout = (clcf->resolver_timeout == NGX_CONF_UNSET_MSEC)
                             ? 30000 : clcf->resolver_timeout;

    if (ngx_http_maintenance_resolve_sentinels(cf, mmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (mmcf->redis_name.len == 0 || mmcf->resolver) {
        return NGX_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.host = mmcf->redis_name;
    u.port = mmcf->redis_port;

    if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "maintenance: %s in \"%V\" in %V:%ui",
                      u.err ? u.err : "host not found", &mmcf->redis_addr,
                      &mmcf->redis_file, mmcf->redis_line);
        return NGX_ERROR;
    }

    if (ngx_http_maintenance_resolve_text(cf->pool, u.addrs[0].sockaddr,
                                          u.addrs[0].socklen,
                                          &mmcf->redis_host)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_NOTICE, cf->log, 0,
                  "maintenance: \"%V\" is resolved once, at load, to %V: "
                  "the Redis links will not follow DNS changes without "
                  "\"resolver\" at http level", &mmcf->redis_name,
                  &mmcf->redis_host);

    ngx_str_null(&mmcf->redis_name);

    return NGX_OK;
}


/*
 * maintenance_redis_sentinel without a resolver: every name is resolved
 * here, once, each of its addresses a sentinel (each address once), and
 * the operator is told.  With one, worker 0 resolves the names.
 */

ngx_int_t
ngx_http_maintenance_resolve_sentinels(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    ngx_url_t                              u;
    ngx_uint_t                             i, j, k, names;
    ngx_array_t                           *all;
    ngx_http_maintenance_sentinel_conf_t  *sc, *a;

    if (mmcf->sentinels == NULL || mmcf->resolver) {
        return NGX_OK;
    }

    sc = mmcf->sentinels->elts;
    names = 0;

    for (i = 0; i < mmcf->sentinels->nelts; i++) {
        names += sc[i].host.len ? 1 : 0;
    }

    if (names == 0) {
        return NGX_OK;
    }

    all = ngx_array_create(cf->pool, NGX_HTTP_MAINTENANCE_SENTINELS_CONF,
                           sizeof(ngx_http_maintenance_sentinel_conf_t));
    if (all == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < mmcf->sentinels->nelts; i++) {

        ngx_memzero(&u, sizeof(ngx_url_t));

        if (sc[i].host.len) {
            u.host = sc[i].host;
            u.port = sc[i].port;

            if (ngx_inet_resolve_host(cf->pool, &u) != NGX_OK
                || u.naddrs == 0)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "maintenance: %s in \"%V\" in %V:%ui",
                              u.err ? u.err : "host not found", &sc[i].text,
                              &mmcf->redis_file, mmcf->redis_line);
                return NGX_ERROR;
            }

            ngx_log_error(NGX_LOG_NOTICE, cf->log, 0,
                          "maintenance: sentinel \"%V\" is resolved once, "
                          "at load, to %V%s: the sentinel connections will "
                          "not follow DNS changes without \"resolver\" at "
                          "http level", &sc[i].host, &u.addrs[0].name,
                          u.naddrs > 1 ? " and more" : "");

        } else {
            u.addrs = &sc[i].addr;
            u.naddrs = 1;
        }

        for (j = 0; j < u.naddrs; j++) {
            a = all->elts;

            for (k = 0; k < all->nelts; k++) {
                if (ngx_cmp_sockaddr(a[k].addr.sockaddr, a[k].addr.socklen,
                                     u.addrs[j].sockaddr,
                                     u.addrs[j].socklen, 1)
                    == NGX_OK)
                {
                    break;
                }
            }

            if (k < all->nelts) {
                continue;
            }

            if (all->nelts == NGX_HTTP_MAINTENANCE_SENTINELS_CONF) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "maintenance: more than %d sentinel addresses "
                              "(at \"%V\") in %V:%ui",
                              NGX_HTTP_MAINTENANCE_SENTINELS_CONF,
                              &sc[i].text, &mmcf->redis_file,
                              mmcf->redis_line);
                return NGX_ERROR;
            }

            a = ngx_array_push(all);
            if (a == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(a, sizeof(ngx_http_maintenance_sentinel_conf_t));
            a->addr = u.addrs[j];
            a->port = sc[i].port;
            a->text = sc[i].text;
        }
    }

    mmcf->sentinels = all;

    return NGX_OK;
}


ngx_int_t
ngx_http_maintenance_resolve_text(ngx_pool_t *pool, struct sockaddr *sa,
    socklen_t socklen, ngx_str_t *text)
{
    u_char  *p;
    size_t   len;

    p = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sock_ntop(sa, socklen, p, NGX_SOCKADDR_STRLEN, 0);

    if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }

    p[len] = '\0';

    text->data = p;
    text->len = len;

    return NGX_OK;
}


/*
 * From nginx's resolver: the answer is copied (the resolver frees it after
 * this returns), the context goes, and only then the caller's handler
 * runs: it may resolve again or cancel.
 */

static void
ngx_http_maintenance_resolve_handler(ngx_resolver_ctx_t *ctx)
{
    ngx_http_maintenance_resolve_t  *rs = ctx->data;

    ngx_uint_t                       i, n;

    rs->ctx = NULL;
    n = 0;

    if (ctx->state == NGX_OK) {
        for (i = 0; i < ctx->naddrs; i++) {
            if (n == NGX_HTTP_MAINTENANCE_RESOLVE_ADDRS) {
                break;
            }

            if (ctx->addrs[i].socklen > (socklen_t) sizeof(ngx_sockaddr_t)) {
                continue;
            }

            ngx_memcpy(&rs->addrs[n], ctx->addrs[i].sockaddr,
                       ctx->addrs[i].socklen);
            rs->socklens[n] = ctx->addrs[i].socklen;
            ngx_inet_set_port(&rs->addrs[n].sockaddr, rs->port);
            n++;
        }

        rs->naddrs = n;
        rs->state = n ? NGX_OK : NGX_ERROR;

        if (n == 0) {
            (void) ngx_snprintf((u_char *) rs->err, sizeof(rs->err) - 1,
                                "%s could not be resolved (no address)%Z",
                                rs->name);
        }

    } else {
        rs->state = NGX_ERROR;

        (void) ngx_snprintf((u_char *) rs->err, sizeof(rs->err) - 1,
                            "%s could not be resolved (%i: %s)%Z", rs->name,
                            ctx->state, ngx_resolver_strerror(ctx->state));
    }

    ngx_resolve_name_done(ctx);

    rs->handler(rs);
}


/* an IPv4 or IPv6 literal answers without the resolver ("[::1]" too) */

static ngx_uint_t
ngx_http_maintenance_resolve_numeric(ngx_http_maintenance_resolve_t *rs)
{
    u_char               *p;
    size_t                len;
    in_addr_t             addr;
    struct sockaddr_in   *sin;
#if (NGX_HAVE_INET6)
    u_char                addr6[16];
    struct sockaddr_in6  *sin6;
#endif

    p = rs->name;
    len = rs->name_len;

    addr = ngx_inet_addr(p, len);

    if (addr != INADDR_NONE) {
        sin = &rs->addrs[0].sockaddr_in;
        ngx_memzero(sin, sizeof(struct sockaddr_in));
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = addr;
        sin->sin_port = htons(rs->port);
        rs->socklens[0] = sizeof(struct sockaddr_in);
        rs->naddrs = 1;
        return 1;
    }

#if (NGX_HAVE_INET6)

    if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }

    if (ngx_inet6_addr(p, len, addr6) == NGX_OK) {
        sin6 = &rs->addrs[0].sockaddr_in6;
        ngx_memzero(sin6, sizeof(struct sockaddr_in6));
        sin6->sin6_family = AF_INET6;
        ngx_memcpy(sin6->sin6_addr.s6_addr, addr6, 16);
        sin6->sin6_port = htons(rs->port);
        rs->socklens[0] = sizeof(struct sockaddr_in6);
        rs->naddrs = 1;
        return 1;
    }

#endif

    return 0;
}
