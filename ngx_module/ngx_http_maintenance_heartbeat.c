/*
 * ngx_http_maintenance_heartbeat.c: worker 0 tells the fleet what it serves:
 * the hash P:edge:<node> and its score in P:edges.
 */

#include "ngx_http_maintenance_module.h"
#include "ngx_http_maintenance_reply.h"


#define NGX_HTTP_MAINTENANCE_EDGE_TTL_MIN    10     /* seconds */

/* heartbeat: MULTI DEL HSET EXPIRE ZADD EXEC; HSET has 2 args per scope */
#define NGX_HTTP_MAINTENANCE_HB_ARGS                                          \
    (2 + 2 * NGX_HTTP_MAINTENANCE_MAX_SCOPES + 6)


static void ngx_http_maintenance_heartbeat_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);


/*
 * One transaction: the edge hash is replaced whole (a scope dropped from
 * the configuration disappears from it) and expires unless refreshed.
 */

void
ngx_http_maintenance_heartbeat(ngx_http_maintenance_sync_t *sync)
{
    int                                 n;
    char                                vals[NGX_HTTP_MAINTENANCE_MAX_SCOPES]
                                            [MIG_EDGE_VALUE_MAX];
    u_char                              ms[NGX_INT64_LEN + 1];
    u_char                              pid[NGX_INT64_LEN + 1];
    u_char                              ttl[NGX_INT64_LEN + 1];
    size_t                              ms_len, pid_len, ttl_len;
    size_t                              lens[NGX_HTTP_MAINTENANCE_HB_ARGS];
    uint64_t                            now;
    ngx_uint_t                          i;
    ngx_msec_t                          secs;
    ngx_time_t                         *tp;
    const char                         *argv[NGX_HTTP_MAINTENANCE_HB_ARGS];
    ngx_http_maintenance_link_t        *link;
    ngx_http_maintenance_sync_scope_t  *s;

    link = &sync->cmd;

    /*
     * all six commands or none: a MULTI whose EXEC could not be queued
     * would leave the server queueing the polls that follow
     */

    if (!link->ready
        || link->redis.n + 6 > NGX_HTTP_MAINTENANCE_REDIS_QUEUE)
    {
        return;
    }

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;

    /* the edge hash outlives three missed heartbeats, at least 10 s */
    secs = 3 * sync->mmcf->poll / 1000 + 1;
    secs = ngx_max(secs, NGX_HTTP_MAINTENANCE_EDGE_TTL_MIN);

    ms_len = ngx_sprintf(ms, "%uL", now) - ms;
    pid_len = ngx_sprintf(pid, "%P", ngx_pid) - pid;
    ttl_len = ngx_sprintf(ttl, "%M", secs) - ttl;

    argv[0] = "MULTI";
    lens[0] = 5;

    if (ngx_http_maintenance_link_send(link,
                                       ngx_http_maintenance_heartbeat_cb,
                                       NULL, 1, argv, lens)
        != NGX_OK)
    {
        return;
    }

    argv[0] = "DEL";
    lens[0] = 3;
    argv[1] = sync->edge_key;
    lens[1] = ngx_strlen(sync->edge_key);

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_heartbeat_cb,
                                          NULL, 2, argv, lens);

    n = 2;
    argv[0] = "HSET";
    lens[0] = 4;
    argv[1] = sync->edge_key;
    lens[1] = ngx_strlen(sync->edge_key);

    for (i = 0; i < sync->nscopes && i < NGX_HTTP_MAINTENANCE_MAX_SCOPES; i++)
    {
        s = &sync->scopes[i];

        if (mig_edge_value_format(vals[i], MIG_EDGE_VALUE_MAX,
                                  s->on ? MIG_MODE_ON : MIG_MODE_OFF,
                                  s->epoch)
            < 0)
        {
            continue;
        }

        argv[n] = (char *) s->name.data;
        lens[n++] = s->name.len;
        argv[n] = vals[i];
        lens[n++] = ngx_strlen(vals[i]);
    }

    argv[n] = "seen_ms";
    lens[n++] = 7;
    argv[n] = (char *) ms;
    lens[n++] = ms_len;
    argv[n] = "version";
    lens[n++] = 7;
    argv[n] = MIG_VERSION;
    lens[n++] = sizeof(MIG_VERSION) - 1;
    argv[n] = "pid";
    lens[n++] = 3;
    argv[n] = (char *) pid;
    lens[n++] = pid_len;

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_heartbeat_cb,
                                          NULL, n, argv, lens);

    argv[0] = "EXPIRE";
    lens[0] = 6;
    argv[1] = sync->edge_key;
    lens[1] = ngx_strlen(sync->edge_key);
    argv[2] = (char *) ttl;
    lens[2] = ttl_len;

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_heartbeat_cb,
                                          NULL, 3, argv, lens);

    argv[0] = "ZADD";
    lens[0] = 4;
    argv[1] = sync->edges_key;
    lens[1] = ngx_strlen(sync->edges_key);
    argv[2] = (char *) ms;
    lens[2] = ms_len;
    argv[3] = (char *) sync->mmcf->node_id.data;
    lens[3] = sync->mmcf->node_id.len;

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_heartbeat_cb,
                                          NULL, 4, argv, lens);

    argv[0] = "EXEC";
    lens[0] = 4;

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_heartbeat_cb,
                                          (void *) 1, 1, argv, lens);
}


/*
 * MULTI and each queued command answer a status, EXEC an array of the
 * results (nil: the transaction was aborted).  An error is a refusal of the
 * heartbeat (logged once, the link stays); another shape is malformed.
 */

static void
ngx_http_maintenance_heartbeat_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    char                          msg[128];
    const char                   *why;
    const redisReply             *bad;
    ngx_http_maintenance_link_t  *link;
    ngx_http_maintenance_sync_t  *sync;

    link = rc->data;
    sync = link->sync;

    switch (ngx_http_maintenance_reply_heartbeat(reply, data != NULL, &bad,
                                                 &why))
    {
    case NGX_HTTP_MAINTENANCE_REPLY_MALFORMED:
        ngx_http_maintenance_link_malformed(link, why);
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_OK:
        if (data) {
            sync->hb_err = 0;
        }

        return;
    }

    if (!sync->hb_err) {
        if (bad) {
            ngx_cpystrn((u_char *) msg, (u_char *) bad->str,
                        ngx_min(sizeof(msg), bad->len + 1));
            ngx_http_maintenance_printable(msg);
            why = msg;
        }

        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: heartbeat into %s refused: %s",
                      sync->edge_key, why);
        sync->hb_err = 1;
    }
}
