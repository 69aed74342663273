/*
 * ngx_http_maintenance_handlers.c: the content handlers "maintenance_health"
 * (for the load balancer) and "maintenance_status" (JSON and Prometheus).
 */

#include "ngx_http_maintenance_module.h"


/* bounds of one scope's JSON object, its strings escaped at worst 6x */
#define NGX_HTTP_MAINTENANCE_SCOPE_JSON                                     \
    (6 * (MIG_NAME_MAX + MIG_REASON_MAX + MIG_RELEASE_MAX + MIG_ACTOR_MAX)  \
     + 512)
#define NGX_HTTP_MAINTENANCE_SCOPE_PROM    (6 * (MIG_NAME_MAX + 96))
#define NGX_HTTP_MAINTENANCE_FIXED                                          \
    (4096 + 6 * 512 + 6 * NGX_HTTP_MAINTENANCE_STATE_ERR_LEN)
#define NGX_HTTP_MAINTENANCE_SENTINEL_OUT                                   \
    (1280 + 6 * (MIG_NAME_MAX + 3 * NGX_HTTP_MAINTENANCE_ADDR_LEN           \
                 + NGX_HTTP_MAINTENANCE_TRIED_LEN)                          \
     + NGX_HTTP_MAINTENANCE_SENTINELS_MAX                                   \
       * (MIG_NAME_MAX + NGX_SOCKADDR_STRLEN + 96))


static ngx_int_t ngx_http_maintenance_send_buf(ngx_http_request_t *r,
    ngx_buf_t *b);
static u_char *ngx_http_maintenance_json_str(u_char *p, u_char *s,
    size_t len);
static u_char *ngx_http_maintenance_status_json(ngx_http_request_t *r,
    u_char *p, ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_shctx_t *snap,
    ngx_http_maintenance_scope_sh_t *scopes);
static u_char *ngx_http_maintenance_status_prom(ngx_http_request_t *r,
    u_char *p, ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_shctx_t *snap,
    ngx_http_maintenance_scope_sh_t *scopes);
static u_char *ngx_http_maintenance_sentinel_json(u_char *p,
    ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_shctx_t *snap);
static u_char *ngx_http_maintenance_sentinel_prom(u_char *p,
    ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_shctx_t *snap);
static ngx_uint_t ngx_http_maintenance_sentinel_nlearned(
    ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_shctx_t *snap);


/*
 * maintenance_health: 200 while this node can serve, in maintenance or
 * not, so a fleet-wide maintenance does not make the balancer mark every
 * node down; "drain" answers 503 while the scope is on.
 */

ngx_int_t
ngx_http_maintenance_health_handler(ngx_http_request_t *r)
{
    u_char                            *p;
    ngx_buf_t                         *b;
    ngx_int_t                          rc;
    ngx_str_t                          value;
    ngx_uint_t                         on;
    ngx_atomic_uint_t                  epoch;
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_loc_conf_t   *mlcf;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maintenance_module);

    ssh = ngx_http_maintenance_scope_sh(mmcf, mlcf);

    on = ssh->on ? 1 : 0;
    epoch = ssh->epoch;

    b = ngx_create_temp_buf(r->pool, 64 + NGX_ATOMIC_T_LEN);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "maintenance=%s epoch=%uA\n",
                          on ? "on" : "off", epoch);

    if (on) {
        ngx_str_set(&value, "on");

    } else {
        ngx_str_set(&value, "off");
    }

    if (ngx_http_maintenance_add_header(r, "X-Maintenance", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = p;
    value.len = ngx_sprintf(p, "%uA", epoch) - p;

    if (ngx_http_maintenance_add_header(r, "X-Maintenance-Epoch", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&value, "no-store");

    if (ngx_http_maintenance_add_header(r, "Cache-Control", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (on && mlcf->health == NGX_HTTP_MAINTENANCE_HEALTH_DRAIN) {
        r->headers_out.status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else {
        r->headers_out.status = NGX_HTTP_OK;
    }

    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    return ngx_http_maintenance_send_buf(r, b);
}


/*
 * maintenance_status: what it prints is copied under the mutex (the
 * strings of a scope are written under it by worker 0), then formatted
 * unlocked: the zone's fields ahead of the slots, and of each scope of
 * this configuration its slot up to the state (Prometheus) or up to its
 * name (JSON, which prints the state) -- not the 64 slots (~60 KB).
 */

ngx_int_t
ngx_http_maintenance_status_handler(ngx_http_request_t *r)
{
    size_t                            size, len;
    ngx_buf_t                         *b;
    ngx_int_t                         rc;
    ngx_str_t                         format;
    ngx_uint_t                        i, prom;
    ngx_http_maintenance_shctx_t      *sh, *snap;
    ngx_http_maintenance_ctx_t        *ctx;
    ngx_http_maintenance_scope_sh_t   *scopes;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    prom = 0;

    if (ngx_http_arg(r, (u_char *) "format", sizeof("format") - 1, &format)
        == NGX_OK)
    {
        if (format.len == sizeof("prometheus") - 1
            && ngx_strncmp(format.data, "prometheus", format.len) == 0)
        {
            prom = 1;

        } else if (!(format.len == sizeof("json") - 1
                     && ngx_strncmp(format.data, "json", format.len) == 0))
        {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);
    ctx = mmcf->shm_zone->data;
    sh = ctx->sh;

    /* snap holds the fields ahead of the slots only: never its scopes[] */

    snap = ngx_palloc(r->pool, offsetof(ngx_http_maintenance_shctx_t, scopes));
    if (snap == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    scopes = ngx_palloc(r->pool, mmcf->scopes.nelts
                                 * sizeof(ngx_http_maintenance_scope_sh_t));
    if (scopes == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = prom ? offsetof(ngx_http_maintenance_scope_sh_t, state)
               : offsetof(ngx_http_maintenance_scope_sh_t, name);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_memcpy(snap, sh, offsetof(ngx_http_maintenance_shctx_t, scopes));

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        ngx_memcpy(&scopes[i], &sh->scopes[mmcf->slots[i]], len);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    size = NGX_HTTP_MAINTENANCE_FIXED
           + 6 * (mmcf->node_id.len + mmcf->prefix.len + mmcf->redis_addr.len)
           + NGX_HTTP_MAINTENANCE_SENTINEL_OUT
           + mmcf->scopes.nelts * (prom ? NGX_HTTP_MAINTENANCE_SCOPE_PROM
                                        : NGX_HTTP_MAINTENANCE_SCOPE_JSON);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (prom) {
        b->last = ngx_http_maintenance_status_prom(r, b->last, mmcf, snap,
                                                   scopes);
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");

    } else {
        b->last = ngx_http_maintenance_status_json(r, b->last, mmcf, snap,
                                                   scopes);
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;

    format.len = sizeof("no-store") - 1;
    format.data = (u_char *) "no-store";

    if (ngx_http_maintenance_add_header(r, "Cache-Control", &format)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_maintenance_send_buf(r, b);
}


static u_char *
ngx_http_maintenance_status_json(ngx_http_request_t *r, u_char *p,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_shctx_t *snap,
    ngx_http_maintenance_scope_sh_t *scopes)
{
    ngx_str_t                        *names;
    ngx_uint_t                        i;
    ngx_msec_int_t                    age;
    ngx_http_maintenance_scope_sh_t  *s;

    names = mmcf->scopes.elts;

    p = ngx_sprintf(p, "{\"version\":\"%s\",\"node\":", MIG_VERSION);
    p = ngx_http_maintenance_json_str(p, mmcf->node_id.data,
                                      mmcf->node_id.len);
    p = ngx_sprintf(p, ",\"pid\":%P,\"prefix\":", ngx_pid);
    p = ngx_http_maintenance_json_str(p, mmcf->prefix.data,
                                      mmcf->prefix.len);

    p = ngx_sprintf(p, ",\"redis\":{\"configured\":%s,\"addr\":",
                    mmcf->redis_addr.len ? "true" : "false");

    if (mmcf->sentinel_name.len) {
        /* through Sentinel: the master in use, if known */
        snap->master[NGX_HTTP_MAINTENANCE_ADDR_LEN - 1] = '\0';

        if (snap->master[0]) {
            p = ngx_http_maintenance_json_str(p, snap->master,
                                              ngx_strlen(snap->master));
        } else {
            p = ngx_cpymem(p, "null", 4);
        }

    } else if (mmcf->redis_addr.len) {
        p = ngx_http_maintenance_json_str(p, mmcf->redis_addr.data,
                                          mmcf->redis_addr.len);
    } else {
        p = ngx_cpymem(p, "null", 4);
    }

    p = ngx_sprintf(p, ",\"up\":%s},\"override\":%s,\"redis_failure\":\"%s\"",
                    snap->redis_up ? "true" : "false",
                    snap->override ? "true" : "false",
                    mmcf->redis_failure == NGX_HTTP_MAINTENANCE_FAIL_OPEN
                    ? "open"
                    : mmcf->redis_failure == NGX_HTTP_MAINTENANCE_FAIL_CLOSED
                      ? "closed" : "last");

    p = ngx_http_maintenance_sentinel_json(p, mmcf, snap);

    p = ngx_sprintf(p, ",\"state_file_last_error\":");

    if (snap->state_file_failing) {
        snap->state_file_error[NGX_HTTP_MAINTENANCE_STATE_ERR_LEN - 1] = '\0';
        p = ngx_http_maintenance_json_str(p, snap->state_file_error,
                                       ngx_strlen(snap->state_file_error));
    } else {
        p = ngx_cpymem(p, "null", 4);
    }

    if (snap->last_sync) {
        age = (ngx_msec_int_t) (ngx_current_msec - snap->last_sync);
        if (age < 0) {
            age = 0;
        }

        p = ngx_sprintf(p, ",\"last_sync\":%T,\"last_sync_age_ms\":%M",
                        snap->last_sync_time, (ngx_msec_t) age);

    } else {
        p = ngx_sprintf(p, ",\"last_sync\":null,\"last_sync_age_ms\":null");
    }

    p = ngx_sprintf(p, ",\"scopes\":{");

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        s = &scopes[i];

        if (i) {
            *p++ = ',';
        }

        p = ngx_http_maintenance_json_str(p, names[i].data, names[i].len);

        p = ngx_sprintf(p, ":{\"mode\":\"%s\",\"epoch\":%uA,"
                        "\"source\":\"%s\",\"seen\":%s,\"lost\":%s,"
                        "\"retry_after\":%uA",
                        s->on ? "on" : "off", s->epoch,
                        ngx_http_maintenance_source_str(s->source),
                        s->seen ? "true" : "false",
                        s->lost ? "true" : "false",
                        s->retry_after);

        if (s->seen) {
            s->state.reason[MIG_REASON_MAX] = '\0';
            s->state.release[MIG_RELEASE_MAX] = '\0';
            s->state.actor[MIG_ACTOR_MAX] = '\0';

            p = ngx_sprintf(p, ",\"state\":{\"mode\":\"%s\",\"epoch\":%uL,"
                            "\"since\":%L,\"reason\":",
                            mig_mode_str(s->state.mode),
                            (uint64_t) s->state.epoch,
                            (int64_t) s->state.since);
            p = ngx_http_maintenance_json_str(p, (u_char *) s->state.reason,
                                        ngx_strlen(s->state.reason));
            p = ngx_cpymem(p, ",\"release\":", sizeof(",\"release\":") - 1);
            p = ngx_http_maintenance_json_str(p, (u_char *) s->state.release,
                                        ngx_strlen(s->state.release));
            p = ngx_cpymem(p, ",\"actor\":", sizeof(",\"actor\":") - 1);
            p = ngx_http_maintenance_json_str(p, (u_char *) s->state.actor,
                                        ngx_strlen(s->state.actor));
            *p++ = '}';
        }

        *p++ = '}';
    }

    p = ngx_sprintf(p, "},\"counters\":{\"requests_gated\":%uA,"
                    "\"requests_bypassed\":%uA,\"requests_passed\":%uA,"
                    "\"polls\":%uA,\"events\":%uA,\"malformed\":%uA,"
                    "\"reconnects\":%uA,\"state_file_errors\":%uA}}\n",
                    snap->requests_gated, snap->requests_bypassed,
                    snap->requests_passed, snap->polls, snap->events,
                    snap->malformed, snap->reconnects,
                    snap->state_file_errors);

    return p;
}


static u_char *
ngx_http_maintenance_status_prom(ngx_http_request_t *r, u_char *p,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_shctx_t *snap,
    ngx_http_maintenance_scope_sh_t *scopes)
{
    ngx_str_t                        *names;
    ngx_uint_t                        i, j;
    ngx_msec_int_t                    age;
    ngx_http_maintenance_scope_sh_t  *s;

    /* scope names are [A-Za-z0-9_.-]: no label escaping needed */

    names = mmcf->scopes.elts;

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_mode 1 while the scope is in maintenance."
        "\n# TYPE nginx_maintenance_mode gauge\n");

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        p = ngx_sprintf(p, "nginx_maintenance_mode{scope=\"%V\"} %d\n",
                        &names[i], scopes[i].on ? 1 : 0);
    }

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_epoch Epoch of the served state.\n"
        "# TYPE nginx_maintenance_epoch gauge\n");

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        p = ngx_sprintf(p, "nginx_maintenance_epoch{scope=\"%V\"} %uA\n",
                        &names[i], scopes[i].epoch);
    }

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_source Where the served state came from."
        "\n# TYPE nginx_maintenance_source gauge\n");

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        s = &scopes[i];

        for (j = 0; j < NGX_HTTP_MAINTENANCE_NSOURCES; j++) {
            p = ngx_sprintf(p, "nginx_maintenance_source{scope=\"%V\","
                            "source=\"%s\"} %d\n", &names[i],
                            ngx_http_maintenance_source_str(j),
                            s->source == j ? 1 : 0);
        }
    }

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_state_lost 1 if Redis lost a state this "
        "node had seen.\n"
        "# TYPE nginx_maintenance_state_lost gauge\n");

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        p = ngx_sprintf(p, "nginx_maintenance_state_lost{scope=\"%V\"} %d"
                        "\n", &names[i], scopes[i].lost ? 1 : 0);
    }

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_redis_up 1 while the Redis link is up.\n"
        "# TYPE nginx_maintenance_redis_up gauge\n"
        "nginx_maintenance_redis_up %d\n"
        "# HELP nginx_maintenance_override 1 while the override file "
        "exists.\n"
        "# TYPE nginx_maintenance_override gauge\n"
        "nginx_maintenance_override %d\n",
        snap->redis_up ? 1 : 0, snap->override ? 1 : 0);

    p = ngx_http_maintenance_sentinel_prom(p, mmcf, snap);

    if (snap->last_sync) {
        age = (ngx_msec_int_t) (ngx_current_msec - snap->last_sync);
        if (age < 0) {
            age = 0;
        }

        p = ngx_sprintf(p,
            "# HELP nginx_maintenance_sync_age_seconds Time since the last "
            "full sync.\n"
            "# TYPE nginx_maintenance_sync_age_seconds gauge\n"
            "nginx_maintenance_sync_age_seconds %M.%03M\n",
            (ngx_msec_t) age / 1000, (ngx_msec_t) age % 1000);
    }

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_requests_total Requests in gated "
        "locations.\n"
        "# TYPE nginx_maintenance_requests_total counter\n"
        "nginx_maintenance_requests_total{result=\"gated\"} %uA\n"
        "nginx_maintenance_requests_total{result=\"bypassed\"} %uA\n"
        "nginx_maintenance_requests_total{result=\"passed\"} %uA\n"
        "# HELP nginx_maintenance_polls_total Polls of Redis.\n"
        "# TYPE nginx_maintenance_polls_total counter\n"
        "nginx_maintenance_polls_total %uA\n"
        "# HELP nginx_maintenance_events_total Events received.\n"
        "# TYPE nginx_maintenance_events_total counter\n"
        "nginx_maintenance_events_total %uA\n"
        "# HELP nginx_maintenance_malformed_total Malformed values "
        "ignored.\n"
        "# TYPE nginx_maintenance_malformed_total counter\n"
        "nginx_maintenance_malformed_total %uA\n"
        "# HELP nginx_maintenance_reconnects_total Redis reconnects.\n"
        "# TYPE nginx_maintenance_reconnects_total counter\n"
        "nginx_maintenance_reconnects_total %uA\n"
        "# HELP nginx_maintenance_state_file_errors_total Failed state "
        "file writes.\n"
        "# TYPE nginx_maintenance_state_file_errors_total counter\n"
        "nginx_maintenance_state_file_errors_total %uA\n"
        "# HELP nginx_maintenance_state_file_failing 1 while the last "
        "state file write failed.\n"
        "# TYPE nginx_maintenance_state_file_failing gauge\n"
        "nginx_maintenance_state_file_failing %d\n",
        snap->requests_gated, snap->requests_bypassed, snap->requests_passed,
        snap->polls, snap->events, snap->malformed, snap->reconnects,
        snap->state_file_errors, snap->state_file_failing ? 1 : 0);

    return p;
}


/*
 * maintenance_redis_sentinel: the master in use ("" unknown), whether a
 * sentinel answered last time, which one, or every one tried and why; the
 * one holding the +switch-master subscription ("" none); the
 * master changes seen and the time of the last (unix ms, 0 none)
 */

static u_char *
ngx_http_maintenance_sentinel_json(u_char *p,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_shctx_t *snap)
{
    u_char      addr[NGX_SOCKADDR_STRLEN];
    size_t      len;
    ngx_uint_t  i, n;

    if (mmcf->sentinel_name.len == 0) {
        return ngx_sprintf(p, ",\"sentinel\":{\"configured\":false}");
    }

    snap->master[NGX_HTTP_MAINTENANCE_ADDR_LEN - 1] = '\0';
    snap->sentinel[NGX_HTTP_MAINTENANCE_ADDR_LEN - 1] = '\0';
    snap->sentinel_tried[NGX_HTTP_MAINTENANCE_TRIED_LEN - 1] = '\0';
    snap->sentinel_sub[NGX_HTTP_MAINTENANCE_ADDR_LEN - 1] = '\0';

    p = ngx_sprintf(p, ",\"sentinel\":{\"configured\":true,\"name\":");
    p = ngx_http_maintenance_json_str(p, mmcf->sentinel_name.data,
                                      mmcf->sentinel_name.len);
    p = ngx_sprintf(p, ",\"master\":");
    p = ngx_http_maintenance_json_str(p, snap->master,
                                      ngx_strlen(snap->master));
    p = ngx_sprintf(p, ",\"reachable\":%s,\"in_use\":",
                    snap->sentinel_reachable ? "true" : "false");
    p = ngx_http_maintenance_json_str(p, snap->sentinel,
                                      ngx_strlen(snap->sentinel));
    p = ngx_sprintf(p, ",\"subscribed\":");
    p = ngx_http_maintenance_json_str(p, snap->sentinel_sub,
                                      ngx_strlen(snap->sentinel_sub));
    p = ngx_sprintf(p, ",\"tried\":");
    p = ngx_http_maintenance_json_str(p, snap->sentinel_tried,
                                      ngx_strlen(snap->sentinel_tried));

    p = ngx_sprintf(p, ",\"learned\":[");

    n = ngx_http_maintenance_sentinel_nlearned(mmcf, snap);

    for (i = 0; i < n; i++) {
        len = ngx_sock_ntop(&snap->learned[i].sockaddr, snap->learned_len[i],
                            addr, NGX_SOCKADDR_STRLEN, 1);
        p = ngx_sprintf(p, "%s\"%*s\"", i ? "," : "", len, addr);
    }

    return ngx_sprintf(p, "],\"failovers\":%uA,\"last_switch\":%uL}",
                       snap->failovers, snap->last_switch);
}


/* addresses are numeric ip:port: no label escaping needed */

static u_char *
ngx_http_maintenance_sentinel_prom(u_char *p,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_shctx_t *snap)
{
    u_char      addr[NGX_SOCKADDR_STRLEN];
    size_t      len;
    ngx_uint_t  i, n;

    if (mmcf->sentinel_name.len == 0) {
        return p;
    }

    snap->master[NGX_HTTP_MAINTENANCE_ADDR_LEN - 1] = '\0';

    n = ngx_http_maintenance_sentinel_nlearned(mmcf, snap);

    p = ngx_sprintf(p,
        "# HELP nginx_maintenance_sentinels_learned Sentinels learned from "
        "the sentinels' answers, asked too.\n"
        "# TYPE nginx_maintenance_sentinels_learned gauge\n"
        "nginx_maintenance_sentinels_learned{name=\"%V\"} %ui\n"
        "# HELP nginx_maintenance_sentinel_learned A sentinel learned.\n"
        "# TYPE nginx_maintenance_sentinel_learned gauge\n",
        &mmcf->sentinel_name, n);

    for (i = 0; i < n; i++) {
        len = ngx_sock_ntop(&snap->learned[i].sockaddr, snap->learned_len[i],
                            addr, NGX_SOCKADDR_STRLEN, 1);
        p = ngx_sprintf(p, "nginx_maintenance_sentinel_learned{name=\"%V\","
                        "addr=\"%*s\"} 1\n", &mmcf->sentinel_name, len, addr);
    }

    return ngx_sprintf(p,
        "# HELP nginx_maintenance_redis_master The master found through "
        "Sentinel.\n"
        "# TYPE nginx_maintenance_redis_master gauge\n"
        "nginx_maintenance_redis_master{name=\"%V\",addr=\"%s\"} 1\n"
        "# HELP nginx_maintenance_sentinel_reachable 1 if a sentinel "
        "answered last time.\n"
        "# TYPE nginx_maintenance_sentinel_reachable gauge\n"
        "nginx_maintenance_sentinel_reachable %d\n"
        "# HELP nginx_maintenance_sentinel_subscribed 1 if a sentinel "
        "holds the +switch-master subscription.\n"
        "# TYPE nginx_maintenance_sentinel_subscribed gauge\n"
        "nginx_maintenance_sentinel_subscribed %d\n"
        "# HELP nginx_maintenance_sentinel_failovers_total Master changes "
        "seen.\n"
        "# TYPE nginx_maintenance_sentinel_failovers_total counter\n"
        "nginx_maintenance_sentinel_failovers_total %uA\n"
        "# HELP nginx_maintenance_sentinel_last_switch_seconds Unix time of "
        "the last master change, 0 if none.\n"
        "# TYPE nginx_maintenance_sentinel_last_switch_seconds gauge\n"
        "nginx_maintenance_sentinel_last_switch_seconds %uL.%03uL\n",
        &mmcf->sentinel_name, snap->master,
        snap->sentinel_reachable ? 1 : 0, snap->sentinel_sub[0] ? 1 : 0,
        snap->failovers,
        snap->last_switch / 1000, snap->last_switch % 1000);
}


/* the sentinels worker 0 learned for this master, in the zone */

static ngx_uint_t
ngx_http_maintenance_sentinel_nlearned(ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_shctx_t *snap)
{
    ngx_uint_t  i, n;

    snap->learned_for[MIG_NAME_MAX] = '\0';

    if (ngx_strcmp(snap->learned_for, mmcf->sentinel_name.data) != 0) {
        return 0;
    }

    n = ngx_min(snap->nlearned, NGX_HTTP_MAINTENANCE_SENTINELS_MAX);

    for (i = 0; i < n; i++) {
        if (snap->learned_len[i] > (socklen_t) sizeof(ngx_sockaddr_t)) {
            return i;
        }
    }

    return n;
}


/*
 * A JSON string from bytes that came from the network (Redis): quotes,
 * backslashes and control bytes are escaped, valid UTF-8 is kept, and an
 * invalid byte becomes U+FFFD, so the document always parses.  At most 6
 * output bytes per input byte, plus the quotes.
 */

static u_char *
ngx_http_maintenance_json_str(u_char *p, u_char *s, size_t len)
{
    u_char    *last, *start;
    uint32_t   cp;

    static u_char  hex[] = "0123456789abcdef";

    last = s + len;

    *p++ = '"';

    while (s < last) {

        if (*s >= 0x80) {
            start = s;
            cp = ngx_utf8_decode(&s, last - s);

            if (cp > 0x10ffff) {
                p = ngx_cpymem(p, "\\ufffd", 6);
                s = start + 1;
                continue;
            }

            p = ngx_cpymem(p, start, s - start);
            continue;
        }

        if (*s == '"' || *s == '\\') {
            *p++ = '\\';
            *p++ = *s++;
            continue;
        }

        if (*s < 0x20 || *s == 0x7f) {
            *p++ = '\\';
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 0xf];
            s++;
            continue;
        }

        *p++ = *s++;
    }

    *p++ = '"';

    return p;
}


static ngx_int_t
ngx_http_maintenance_send_buf(ngx_http_request_t *r, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* a response header; key and value must outlive the request */

ngx_int_t
ngx_http_maintenance_add_header(ngx_http_request_t *r, const char *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}
