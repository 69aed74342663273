/*
 * ngx_http_maintenance_set_redis.c: the directives maintenance_redis and
 * maintenance_redis_sentinel: where worker 0 finds Redis, and how it logs in.
 */

#include "ngx_http_maintenance_module.h"


static char *ngx_http_maintenance_redis_params(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_uint_t first);
static ngx_int_t ngx_http_maintenance_redis_param(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_str_t *value);


/*
 * maintenance_redis ADDR [db=N] [user=NAME] [password_file=PATH]
 *     [timeout=TIME]
 *
 * A numeric address goes into redis_host as text.  A host name is kept in
 * redis_name for ngx_http_maintenance_resolve_conf() (postconfiguration,
 * once "resolver" is known): resolved by worker 0 on each connect with
 * it, at load without it; worker 0 never does a blocking DNS lookup.
 */

char *
ngx_http_maintenance_set_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maintenance_main_conf_t *mmcf = conf;

    ngx_str_t   *value;
    ngx_url_t    u;

    if (mmcf->sentinel_name.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: \"maintenance_redis\" and "
                           "\"maintenance_redis_sentinel\" (line %ui) "
                           "cannot both be set: keep one", mmcf->redis_line);
        return NGX_CONF_ERROR;
    }

    if (mmcf->redis_addr.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mmcf->redis_addr = value[1];
    mmcf->redis_line = cf->conf_file->line;

    if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        mmcf->redis_unix.data = value[1].data + 5;
        mmcf->redis_unix.len = value[1].len - 5;

        if (mmcf->redis_unix.len == 0 || mmcf->redis_unix.data[0] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: \"%V\" needs an absolute path "
                               "after \"unix:\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        ngx_str_set(&mmcf->redis_host, "");

    } else {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[1];
        u.default_port = 6379;
        u.no_resolve = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            if (u.err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maintenance: %s in \"%V\"",
                                   u.err, &value[1]);
            }

            return NGX_CONF_ERROR;
        }

        if (u.host.len == 0 || u.uri.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: invalid Redis address \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        mmcf->redis_port = u.port;

        if (u.naddrs == 0) {
            mmcf->redis_name = u.host;
            mmcf->redis_file = cf->conf_file->file.name;
            mmcf->redis_line = cf->conf_file->line;

        } else if (ngx_http_maintenance_resolve_text(cf->pool,
                                                     u.addrs[0].sockaddr,
                                                     u.addrs[0].socklen,
                                                     &mmcf->redis_host)
                   != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_maintenance_redis_params(cf, mmcf, 2);
}


/*
 * maintenance_redis_sentinel NAME ADDR [ADDR ...] [db=N] [user=NAME]
 *     [password_file=PATH] [timeout=TIME] [sentinel_password_file=PATH]
 *
 * A sentinel's name is kept as maintenance_redis keeps one: worker 0
 * resolves it on each connect with "resolver", it is resolved at load
 * without; the addresses sentinels give at run time are numeric.
 */

char *
ngx_http_maintenance_set_redis_sentinel(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maintenance_main_conf_t *mmcf = conf;

    char                                   err[128];
    ngx_str_t                             *value;
    ngx_url_t                              u;
    ngx_uint_t                             i, k;
    ngx_http_maintenance_sentinel_conf_t  *sc;

    if (mmcf->sentinel_name.data) {
        return "is duplicate";
    }

    if (mmcf->redis_addr.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: \"maintenance_redis_sentinel\" and "
                           "\"maintenance_redis\" (line %ui) cannot both be "
                           "set: keep one", mmcf->redis_line);
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (mig_name_valid((char *) value[1].data, value[1].len, err, sizeof(err))
        != MIG_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: invalid master name \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    mmcf->sentinel_name = value[1];
    mmcf->redis_addr = value[1];
    ngx_str_set(&mmcf->redis_host, "");
    mmcf->redis_file = cf->conf_file->file.name;
    mmcf->redis_line = cf->conf_file->line;

    mmcf->sentinels = ngx_array_create(cf->pool,
                                NGX_HTTP_MAINTENANCE_SENTINELS_CONF,
                                sizeof(ngx_http_maintenance_sentinel_conf_t));
    if (mmcf->sentinels == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')) {
            break;
        }

        if (ngx_strncmp(value[i].data, "unix:", 5) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: invalid sentinel address "
                               "\"%V\": use host:port", &value[i]);
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[i];
        u.default_port = 26379;
        u.no_resolve = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: invalid sentinel address "
                               "\"%V\": %s", &value[i],
                               u.err ? u.err : "cannot parse it");
            return NGX_CONF_ERROR;
        }

        if (u.host.len == 0 || u.uri.len
            || u.host.len > NGX_HTTP_MAINTENANCE_RESOLVE_NAME)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: invalid sentinel address "
                               "\"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (mmcf->sentinels->nelts == NGX_HTTP_MAINTENANCE_SENTINELS_CONF) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: more than %d sentinel "
                               "addresses (at \"%V\")",
                               NGX_HTTP_MAINTENANCE_SENTINELS_CONF,
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        /*
         * a name is kept for postconfiguration, once "resolver" is known:
         * resolved by worker 0 on each connect with it, at load without it
         */

        if (u.naddrs == 0) {
            sc = ngx_array_push(mmcf->sentinels);
            if (sc == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(sc, sizeof(ngx_http_maintenance_sentinel_conf_t));
            sc->host = u.host;
            sc->port = u.port;
            sc->text = value[i];
            continue;
        }

        /* a numeric address, once */

        sc = mmcf->sentinels->elts;

        for (k = 0; k < mmcf->sentinels->nelts; k++) {
            if (sc[k].host.len == 0
                && ngx_cmp_sockaddr(sc[k].addr.sockaddr, sc[k].addr.socklen,
                                    u.addrs[0].sockaddr,
                                    u.addrs[0].socklen, 1)
                   == NGX_OK)
            {
                break;
            }
        }

        if (k < mmcf->sentinels->nelts) {
            continue;
        }

        sc = ngx_array_push(mmcf->sentinels);
        if (sc == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(sc, sizeof(ngx_http_maintenance_sentinel_conf_t));
        sc->addr = u.addrs[0];
        sc->port = u.port;
        sc->text = value[i];
    }

    if (mmcf->sentinels->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: \"%V\" needs at least one sentinel "
                           "address (host:port) after the master name \"%V\"",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    return ngx_http_maintenance_redis_params(cf, mmcf, i);
}


/* the name=value parameters of both directives, from args[first] on */

static char *
ngx_http_maintenance_redis_params(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_uint_t first)
{
    ngx_int_t    rc;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = first; i < cf->args->nelts; i++) {
        rc = ngx_http_maintenance_redis_param(cf, mmcf, &value[i]);

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: invalid parameter \"%V\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A parameter of maintenance_redis and maintenance_redis_sentinel
 * (sentinel_password_file= of the latter only): NGX_DECLINED: unknown or
 * invalid (the caller names it)
 */

static ngx_int_t
ngx_http_maintenance_redis_param(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_str_t *value)
{
    size_t      skip;
    ngx_int_t   n;
    ngx_str_t   s, path, *secret;

    if (ngx_strncmp(value->data, "db=", 3) == 0) {
        n = ngx_atoi(value->data + 3, value->len - 3);
        if (n == NGX_ERROR || n > 65535) {
            return NGX_DECLINED;
        }

        mmcf->redis_db = n;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "user=", 5) == 0) {
        mmcf->redis_user.data = value->data + 5;
        mmcf->redis_user.len = value->len - 5;

        return mmcf->redis_user.len ? NGX_OK : NGX_DECLINED;
    }

    if (ngx_strncmp(value->data, "timeout=", 8) == 0) {
        s.data = value->data + 8;
        s.len = value->len - 8;

        n = ngx_parse_time(&s, 0);
        if (n == NGX_ERROR || n == 0) {
            return NGX_DECLINED;
        }

        mmcf->redis_timeout = (ngx_msec_t) n;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "password_file=", 14) == 0) {
        secret = &mmcf->redis_password;
        skip = 14;

    } else if (mmcf->sentinel_name.data
               && ngx_strncmp(value->data, "sentinel_password_file=", 23)
                  == 0)
    {
        secret = &mmcf->sentinel_password;
        skip = 23;

    } else {
        return NGX_DECLINED;
    }

    path.data = value->data + skip;
    path.len = value->len - skip;

    if (path.len == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_maintenance_set_secret_file(cf, &path, secret);
}
