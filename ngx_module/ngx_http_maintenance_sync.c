/*
 * ngx_http_maintenance_sync.c: worker 0's view of the scopes: reads states
 * from Redis, decides what each scope serves and writes it into the zone.
 */

#include "ngx_http_maintenance_module.h"
#include "ngx_http_maintenance_reply.h"


/* privdata of an HGETALL: scope index << 1 | part of a full poll round */
#define NGX_HTTP_MAINTENANCE_ROUND           1


static void ngx_http_maintenance_tick(ngx_event_t *ev);
static void ngx_http_maintenance_stop(ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_link_ready(
    ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_cmd_closed(
    ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_cmd_down(ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_event(ngx_http_maintenance_sync_t *sync,
    const char *scope, uint64_t epoch);

static void ngx_http_maintenance_poll(ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_read_scope(ngx_http_maintenance_sync_t *sync,
    ngx_uint_t i, ngx_uint_t round);
static void ngx_http_maintenance_state_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data);
static void ngx_http_maintenance_state_reply(
    ngx_http_maintenance_sync_t *sync, ngx_http_maintenance_sync_scope_t *s,
    ngx_int_t rc, mig_state_t *st, const char *err);
static void ngx_http_maintenance_state_good(
    ngx_http_maintenance_sync_t *sync, ngx_http_maintenance_sync_scope_t *s,
    mig_state_t *st);
static void ngx_http_maintenance_state_missing(
    ngx_http_maintenance_sync_t *sync, ngx_http_maintenance_sync_scope_t *s);
static void ngx_http_maintenance_state_malformed(
    ngx_http_maintenance_sync_t *sync, ngx_http_maintenance_sync_scope_t *s,
    const char *reason);
static ngx_uint_t ngx_http_maintenance_apply(
    ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_set_redis_up(
    ngx_http_maintenance_sync_t *sync, ngx_uint_t up, ngx_uint_t synced);


/* worker 0 only; NULL in every other process */
static ngx_http_maintenance_sync_t  *ngx_http_maintenance_sync;


/*
 * Only worker 0 talks to Redis and writes the zone: one writer means no
 * ordering between writers, and one pair of connections per node.  nginx
 * respawns a dead worker with its number, so a crashed worker 0 comes back
 * as worker 0 and takes over where the zone says it was.
 */

ngx_int_t
ngx_http_maintenance_sync_init_worker(ngx_cycle_t *cycle)
{
    size_t                             len;
    ngx_uint_t                         i;
    ngx_str_t                          *name;
    ngx_http_maintenance_shctx_t       *sh;
    ngx_http_maintenance_sync_t        *sync;
    ngx_http_maintenance_ctx_t         *shctx;
    ngx_http_maintenance_scope_sh_t    *ssh;
    ngx_http_maintenance_main_conf_t   *mmcf;
    ngx_http_maintenance_sync_scope_t  *s;

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_maintenance_module);
    if (mmcf == NULL || mmcf->shm_zone == NULL || mmcf->slots == NULL) {
        return NGX_OK;
    }

    shctx = mmcf->shm_zone->data;
    sh = shctx->sh;

    sync = ngx_pcalloc(cycle->pool, sizeof(ngx_http_maintenance_sync_t));
    if (sync == NULL) {
        return NGX_ERROR;
    }

    sync->mmcf = mmcf;
    sync->sh = sh;
    sync->shpool = shctx->shpool;
    sync->log = cycle->log;

    sync->nscopes = mmcf->scopes.nelts;

    len = sync->nscopes * sizeof(ngx_http_maintenance_sync_scope_t);

    sync->scopes = ngx_pcalloc(cycle->pool, len);
    if (sync->scopes == NULL) {
        return NGX_ERROR;
    }

    if (mig_key_events(sync->events_key, MIG_KEY_MAX,
                       (char *) mmcf->prefix.data) < 0
        || mig_key_edges(sync->edges_key, MIG_KEY_MAX,
                         (char *) mmcf->prefix.data) < 0
        || mig_key_edge(sync->edge_key, MIG_KEY_MAX,
                        (char *) mmcf->prefix.data,
                        (char *) mmcf->node_id.data) < 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "maintenance: key prefix or node id too long");
        return NGX_ERROR;
    }

    /*
     * The zone is the memory of a respawned worker 0 and of a reload: the
     * master filled it from the state file on a cold start.
     */

    name = mmcf->scopes.elts;

    ngx_shmtx_lock(&sync->shpool->mutex);

    /*
     * A reload or a respawn: if the worker 0 before us had lost Redis, the
     * failure policy goes on ruling until we sync (no flicker to the last
     * state and back).  A cold start gets the grace of one connect.
     */

    if (mmcf->redis_addr.len && sh->owner_pid != 0 && !sh->redis_up) {
        sync->down = 1;
    }

    sh->owner_pid = ngx_pid;

    for (i = 0; i < sync->nscopes; i++) {
        s = &sync->scopes[i];
        ssh = &sh->scopes[mmcf->slots[i]];

        s->name = name[i];
        s->slot = mmcf->slots[i];

        if (mig_key_state(s->key, MIG_KEY_MAX, (char *) mmcf->prefix.data,
                          (char *) name[i].data) < 0)
        {
            ngx_shmtx_unlock(&sync->shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "maintenance: key for scope \"%V\" too long",
                          &name[i]);
            return NGX_ERROR;
        }

        if (ssh->seen) {
            s->base = ssh->state;
            s->have = 1;
            s->base_source = NGX_HTTP_MAINTENANCE_SRC_REDIS;

            if (ssh->source == NGX_HTTP_MAINTENANCE_SRC_STATE_FILE) {
                s->base_source = NGX_HTTP_MAINTENANCE_SRC_STATE_FILE;
            }
        }

        s->lost = ssh->lost;
        s->on = ssh->on;
        s->epoch = ssh->epoch;
        s->retry_after = (uint32_t) ssh->retry_after;
        s->source = ssh->source;
    }

    ngx_shmtx_unlock(&sync->shpool->mutex);

    /* after owner_pid: an old worker 0's write can no longer land */

    if (ngx_http_maintenance_state_file_init(sync, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    sync->link_ready = ngx_http_maintenance_link_ready;
    sync->cmd_closed = ngx_http_maintenance_cmd_closed;
    sync->cmd_down = ngx_http_maintenance_cmd_down;
    sync->event = ngx_http_maintenance_event;

    if (ngx_http_maintenance_link_init(&sync->cmd, sync, "command",
                                       NGX_HTTP_MAINTENANCE_LINK_CMD)
        != NGX_OK
        || ngx_http_maintenance_link_init(&sync->sub, sync, "subscriber",
                                          NGX_HTTP_MAINTENANCE_LINK_SUB)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_maintenance_sync = sync;

    /* every timer is cancelable: a graceful shutdown does not wait */

    sync->tick.handler = ngx_http_maintenance_tick;
    sync->tick.data = sync;
    sync->tick.log = cycle->log;
    sync->tick.cancelable = 1;

    ngx_http_maintenance_check_override(sync);
    (void) ngx_http_maintenance_apply(sync);

    if (mmcf->redis_addr.len) {
        ngx_http_maintenance_link_start(&sync->cmd);
        ngx_http_maintenance_link_start(&sync->sub);
    }

    ngx_add_timer(&sync->tick, mmcf->poll);

    return NGX_OK;
}


void
ngx_http_maintenance_sync_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = ngx_http_maintenance_sync;

    if (sync == NULL) {
        return;
    }

    ngx_http_maintenance_stop(sync);

    ngx_http_maintenance_state_file_exit(sync);

    ngx_http_maintenance_sync = NULL;
}


/*
 * Lets go of everything: hiredis closes its sockets (no "open socket left"
 * at exit), timers are removed.  No reconnect after this.
 */

static void
ngx_http_maintenance_stop(ngx_http_maintenance_sync_t *sync)
{
    sync->exiting = 1;

    if (sync->tick.timer_set) {
        ngx_del_timer(&sync->tick);
    }

    ngx_http_maintenance_link_stop(&sync->cmd);
    ngx_http_maintenance_link_stop(&sync->sub);
}


static void
ngx_http_maintenance_tick(ngx_event_t *ev)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit || sync->exiting
        || sync->sh->owner_pid != ngx_pid)
    {
        /* an old worker 0 after a reload: the new one owns the zone */
        ngx_http_maintenance_stop(sync);
        return;
    }

    ngx_http_maintenance_check_override(sync);

    if (sync->cmd.ready && sync->round == 0) {
        ngx_http_maintenance_poll(sync);
    }

    if (ngx_http_maintenance_apply(sync)) {
        ngx_http_maintenance_heartbeat(sync);
    }

    if (sync->state_dirty) {
        (void) ngx_http_maintenance_state_file_write(sync);
    }

    ngx_add_timer(&sync->tick, sync->mmcf->poll);
}


/* the hooks the links call up through */

static void
ngx_http_maintenance_link_ready(ngx_http_maintenance_sync_t *sync)
{
    /*
     * A new command link reads everything; so does a new subscriber: events
     * published while it was away are lost.
     */

    if (sync->cmd.ready && sync->round == 0) {
        ngx_http_maintenance_poll(sync);
    }
}


static void
ngx_http_maintenance_cmd_closed(ngx_http_maintenance_sync_t *sync)
{
    ngx_uint_t  i;

    sync->round = 0;

    for (i = 0; i < sync->nscopes; i++) {
        sync->scopes[i].reading = 0;
        sync->scopes[i].again = 0;
    }

    ngx_http_maintenance_set_redis_up(sync, 0, 0);
}


static void
ngx_http_maintenance_cmd_down(ngx_http_maintenance_sync_t *sync)
{
    if (!sync->down) {
        sync->down = 1;
        (void) ngx_http_maintenance_apply(sync);
    }
}


static void
ngx_http_maintenance_event(ngx_http_maintenance_sync_t *sync,
    const char *scope, uint64_t epoch)
{
    ngx_uint_t  i;

    for (i = 0; i < sync->nscopes; i++) {
        if (ngx_strcmp(sync->scopes[i].name.data, scope) != 0) {
            continue;
        }

        if (sync->scopes[i].reading) {
            sync->scopes[i].again = 1;

        } else {
            ngx_http_maintenance_read_scope(sync, i, 0);
        }

        return;
    }
}


/* reading states */

static void
ngx_http_maintenance_poll(ngx_http_maintenance_sync_t *sync)
{
    ngx_uint_t  i;

    if (sync->nscopes == 0) {
        return;
    }

    sync->round = sync->nscopes;

    for (i = 0; i < sync->nscopes; i++) {
        ngx_http_maintenance_read_scope(sync, i, 1);
    }
}


static void
ngx_http_maintenance_read_scope(ngx_http_maintenance_sync_t *sync,
    ngx_uint_t i, ngx_uint_t round)
{
    size_t       lens[2];
    const char  *argv[2];

    if (!sync->cmd.ready) {
        return;
    }

    argv[0] = "HGETALL";
    lens[0] = 7;
    argv[1] = sync->scopes[i].key;
    lens[1] = ngx_strlen(sync->scopes[i].key);

    if (ngx_http_maintenance_link_send(&sync->cmd,
            ngx_http_maintenance_state_cb,
            (void *) (uintptr_t) ((i << 1)
                                  | (round ? NGX_HTTP_MAINTENANCE_ROUND : 0)),
            2, argv, lens)
        != NGX_OK)
    {
        if (round && sync->round) {
            sync->round--;
        }

        return;
    }

    if (!round) {
        sync->scopes[i].reading = 1;
        sync->scopes[i].again = 0;
    }
}


static void
ngx_http_maintenance_state_cb(ngx_http_maintenance_redis_t *rc,
    redisReply *reply, void *data)
{
    char                          err[160];
    uintptr_t                     d;
    ngx_int_t                     rv;
    ngx_uint_t                    i, round;
    mig_state_t                   st;
    ngx_http_maintenance_link_t  *link;
    ngx_http_maintenance_sync_t  *sync;

    link = rc->data;
    sync = link->sync;
    d = (uintptr_t) data;
    i = d >> 1;
    round = d & NGX_HTTP_MAINTENANCE_ROUND;

    if (!link->ready || i >= sync->nscopes) {
        return;
    }

    /* an error about the server: the link starts over, with backoff */

    rv = ngx_http_maintenance_reply_state(reply, &st, err, sizeof(err));

    if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
        ngx_http_maintenance_link_refused(link, "HGETALL", reply);
        return;
    }

    ngx_http_maintenance_state_reply(sync, &sync->scopes[i], rv, &st, err);

    if (!round) {
        /* an event: serve the change at once, tell the fleet at once */
        if (ngx_http_maintenance_apply(sync)) {
            ngx_http_maintenance_heartbeat(sync);
        }

        sync->scopes[i].reading = 0;

        if (sync->scopes[i].again) {
            ngx_http_maintenance_read_scope(sync, i, 0);
        }

        return;
    }

    if (sync->round == 0 || --sync->round) {
        return;
    }

    /* a full poll finished */

    sync->synced = 1;
    sync->down = 0;
    ngx_http_maintenance_link_up(link);     /* logged before status says up */
    ngx_http_maintenance_set_redis_up(sync, 1, 1);
    (void) ngx_atomic_fetch_add(&sync->sh->polls, 1);

    (void) ngx_http_maintenance_apply(sync);
    ngx_http_maintenance_heartbeat(sync);

    if (sync->state_dirty) {
        (void) ngx_http_maintenance_state_file_write(sync);
    }
}


/*
 * HGETALL's reply, decoded by ngx_http_maintenance_reply_state(): the whole
 * record is accepted or the last good state is kept.
 */

static void
ngx_http_maintenance_state_reply(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_sync_scope_t *s, ngx_int_t rc, mig_state_t *st,
    const char *err)
{
    switch (rc) {

    case NGX_HTTP_MAINTENANCE_REPLY_OK:
        ngx_http_maintenance_state_good(sync, s, st);
        return;

    case NGX_HTTP_MAINTENANCE_REPLY_MISSING:
        ngx_http_maintenance_state_missing(sync, s);
        return;

    default: /* NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE */
        ngx_http_maintenance_state_malformed(sync, s, err);
        return;
    }
}


static void
ngx_http_maintenance_state_good(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_sync_scope_t *s, mig_state_t *st)
{
    if (s->malformed) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: scope \"%V\": the state in %s is valid "
                      "again", &s->name, s->key);
        s->malformed = 0;
    }

    if (s->lost) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: scope \"%V\": %s is back (mode %s, "
                      "epoch %uL)", &s->name, s->key, mig_mode_str(st->mode),
                      st->epoch);
        s->lost = 0;
        s->zone_dirty = 1;
    }

    if (!s->have
        || s->base_source != NGX_HTTP_MAINTENANCE_SRC_REDIS
        || s->base.mode != st->mode
        || s->base.epoch != st->epoch
        || s->base.retry_after != st->retry_after)
    {
        sync->state_dirty = 1;
    }

    if (!s->have || ngx_memcmp(&s->base, st, sizeof(mig_state_t)) != 0) {
        s->zone_dirty = 1;
    }

    s->base = *st;
    s->have = 1;
    s->base_source = NGX_HTTP_MAINTENANCE_SRC_REDIS;
}


/*
 * A missing key reads as off only to a node that never saw a state.  After
 * one was seen, Redis lost its data (a restart without persistence, a
 * flush): keep serving what we had until someone writes a state again.
 */

static void
ngx_http_maintenance_state_missing(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_sync_scope_t *s)
{
    if (!s->have || s->lost) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                  "maintenance: scope \"%V\": %s is gone from redis (lost "
                  "data?); keeping mode %s, epoch %uL until a state is "
                  "written again", &s->name, s->key,
                  mig_mode_str(s->base.mode), s->base.epoch);

    s->lost = 1;
    s->zone_dirty = 1;
}


static void
ngx_http_maintenance_state_malformed(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_sync_scope_t *s, const char *reason)
{
    char  why[160];

    if (s->malformed) {
        return;
    }

    ngx_cpystrn((u_char *) why, (u_char *) reason, sizeof(why));
    ngx_http_maintenance_printable(why);

    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                  "maintenance: scope \"%V\": malformed state in %s, "
                  "keeping the last good one (mode %s, epoch %uL): %s",
                  &s->name, s->key,
                  s->have ? mig_mode_str(s->base.mode) : "off",
                  s->have ? s->base.epoch : (uint64_t) 0, why);

    s->malformed = 1;
    (void) ngx_atomic_fetch_add(&sync->sh->malformed, 1);
}


/*
 * What each scope serves, in order: the override file; while Redis is
 * unreachable, maintenance_redis_failure; else the last good state.
 * Writes changes into the zone; returns whether anything served changed.
 */

static ngx_uint_t
ngx_http_maintenance_apply(ngx_http_maintenance_sync_t *sync)
{
    uint32_t                            retry;
    uint64_t                            epoch;
    ngx_uint_t                          i, on, source, changed, locked;
    ngx_http_maintenance_scope_sh_t    *ssh;
    ngx_http_maintenance_main_conf_t   *mmcf;
    ngx_http_maintenance_sync_scope_t  *s;

    mmcf = sync->mmcf;
    changed = 0;
    locked = 0;

    for (i = 0; i < sync->nscopes; i++) {
        s = &sync->scopes[i];

        epoch = s->have ? s->base.epoch : 0;
        retry = s->have ? s->base.retry_after : 0;

        if (sync->override) {
            on = 1;
            source = NGX_HTTP_MAINTENANCE_SRC_OVERRIDE;

        } else if (sync->down
                   && mmcf->redis_failure == NGX_HTTP_MAINTENANCE_FAIL_OPEN)
        {
            on = 0;
            source = NGX_HTTP_MAINTENANCE_SRC_DEFAULT;

        } else if (sync->down
                   && mmcf->redis_failure == NGX_HTTP_MAINTENANCE_FAIL_CLOSED)
        {
            on = 1;
            source = NGX_HTTP_MAINTENANCE_SRC_DEFAULT;

        } else if (s->have) {
            on = (s->base.mode == MIG_MODE_ON);
            source = s->base_source;

        } else {
            on = 0;
            source = NGX_HTTP_MAINTENANCE_SRC_DEFAULT;
        }

        if (on == s->on && epoch == s->epoch && retry == s->retry_after
            && source == s->source && !s->zone_dirty)
        {
            continue;
        }

        if (!locked) {
            ngx_shmtx_lock(&sync->shpool->mutex);
            locked = 1;

            if (sync->sh->owner_pid != ngx_pid) {
                /* replaced by a reload: the zone is the new worker 0's */
                ngx_shmtx_unlock(&sync->shpool->mutex);
                return 0;
            }
        }

        ssh = &sync->sh->scopes[s->slot];

        ssh->on = on;
        ssh->epoch = (ngx_atomic_uint_t) epoch;
        ssh->retry_after = retry;
        ssh->source = source;

        if (s->zone_dirty) {
            if (s->have) {
                ssh->state = s->base;
                ssh->seen = 1;
            }

            ssh->lost = s->lost;
            s->zone_dirty = 0;
        }

        if (on == s->on && epoch == s->epoch && retry == s->retry_after
            && source == s->source)
        {
            continue;
        }

        if (on != s->on || epoch != s->epoch) {
            ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                          "maintenance: scope \"%V\" %s (epoch %uL, source "
                          "%s)", &s->name,
                          on ? "in maintenance" : "open", epoch,
                          ngx_http_maintenance_source_str(source));
        }

        s->on = on;
        s->epoch = epoch;
        s->retry_after = retry;
        s->source = source;
        changed = 1;
    }

    if (locked) {
        ngx_shmtx_unlock(&sync->shpool->mutex);
    }

    /* a new state is on disk as soon as it is served */

    if (sync->state_dirty) {
        (void) ngx_http_maintenance_state_file_write(sync);
    }

    return changed;
}


static void
ngx_http_maintenance_set_redis_up(ngx_http_maintenance_sync_t *sync,
    ngx_uint_t up, ngx_uint_t synced)
{
    ngx_shmtx_lock(&sync->shpool->mutex);

    sync->sh->redis_up = up;

    if (synced) {
        sync->sh->last_sync = ngx_current_msec;
        sync->sh->last_sync_time = ngx_time();
    }

    ngx_shmtx_unlock(&sync->shpool->mutex);

    if (!up) {
        sync->synced = 0;
    }
}


/* text from the network goes into the log with control bytes replaced */
