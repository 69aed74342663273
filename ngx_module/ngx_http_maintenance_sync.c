/*
 * ngx_http_maintenance_sync.c: worker 0's link to Redis (hiredis async on
 * nginx's event loop), the override file and the state file.
 */

#include "ngx_http_maintenance_module.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_MAINTENANCE_BACKOFF_MIN     100
#define NGX_HTTP_MAINTENANCE_BACKOFF_MAX     5000
#define NGX_HTTP_MAINTENANCE_FIELDS_MAX      64     /* pairs in a state hash */
#define NGX_HTTP_MAINTENANCE_STATE_FILE_MAX  65536
#define NGX_HTTP_MAINTENANCE_EDGE_TTL_MIN    10     /* seconds */

#define NGX_HTTP_MAINTENANCE_LINK_CMD        0
#define NGX_HTTP_MAINTENANCE_LINK_SUB        1

/* what a link last logged, so that each transition is logged once */
#define NGX_HTTP_MAINTENANCE_LOGGED_NONE     0
#define NGX_HTTP_MAINTENANCE_LOGGED_UP       1
#define NGX_HTTP_MAINTENANCE_LOGGED_DOWN     2

/* privdata of an HGETALL: scope index << 1 | part of a full poll round */
#define NGX_HTTP_MAINTENANCE_ROUND           1

/* heartbeat: MULTI DEL HSET EXPIRE ZADD EXEC; HSET has 2 args per scope */
#define NGX_HTTP_MAINTENANCE_HB_ARGS                                          \
    (2 + 2 * NGX_HTTP_MAINTENANCE_MAX_SCOPES + 6)


typedef struct ngx_http_maintenance_sync_s  ngx_http_maintenance_sync_t;


/* one hiredis connection; worker 0's, from cycle->pool */
typedef struct {
    redisAsyncContext                 *ac;       /* NULL: not connected */
    ngx_http_maintenance_sync_t       *sync;
    const char                        *name;     /* for logs */
    ngx_uint_t                         kind;     /* LINK_CMD, LINK_SUB */
    ngx_uint_t                         ready;    /* authenticated (cmd),
                                                    subscribed (sub) */
    ngx_uint_t                         pending;  /* replies awaited */
    ngx_uint_t                         logged;   /* LOGGED_ */
    ngx_uint_t                         refused;  /* AUTH/SELECT refusal
                                                    logged (a different
                                                    story from "down") */
    ngx_uint_t                         ever_up;
    ngx_uint_t                         timed_out;
    ngx_msec_t                         backoff;
    ngx_event_t                        timeout;  /* connect and command */
    ngx_event_t                        reconnect;
} ngx_http_maintenance_link_t;


/* a configured scope as worker 0 sees it */
typedef struct {
    ngx_str_t                          name;     /* NUL-terminated */
    ngx_uint_t                         slot;     /* in sh->scopes */
    char                               key[MIG_KEY_MAX];

    /* base: the last good state, from Redis or from the state file */
    mig_state_t                        base;
    ngx_uint_t                         have;     /* base is set */
    ngx_uint_t                         base_source;
    ngx_uint_t                         lost;     /* key gone after seen */
    ngx_uint_t                         malformed; /* error logged */
    ngx_uint_t                         zone_dirty; /* base, lost to write */

    /*
     * An event read in flight, and whether more events came meanwhile: a
     * burst of events costs two reads per scope, not one per event.
     */
    ngx_uint_t                         reading;
    ngx_uint_t                         again;

    /* what is served, as last written into the zone */
    ngx_uint_t                         on;
    uint64_t                           epoch;
    uint32_t                           retry_after;
    ngx_uint_t                         source;
} ngx_http_maintenance_sync_scope_t;


struct ngx_http_maintenance_sync_s {
    ngx_http_maintenance_main_conf_t  *mmcf;
    ngx_http_maintenance_sh_t         *sh;
    ngx_slab_pool_t                   *shpool;
    ngx_log_t                         *log;

    ngx_event_t                        tick;     /* poll interval */
    ngx_http_maintenance_link_t        cmd;
    ngx_http_maintenance_link_t        sub;

    ngx_uint_t                         nscopes;
    ngx_http_maintenance_sync_scope_t *scopes;

    char                               events_key[MIG_KEY_MAX];
    char                               edges_key[MIG_KEY_MAX];
    char                               edge_key[MIG_KEY_MAX];
    u_char                            *state_tmp; /* temp file name */

    ngx_uint_t                         round;    /* HGETALLs of the running
                                                    full poll still due */
    ngx_uint_t                         synced;   /* a full poll finished on
                                                    this cmd connection */
    ngx_uint_t                         down;     /* the cmd link failed and
                                                    has not synced since:
                                                    the failure policy
                                                    rules */
    ngx_uint_t                         override;
    ngx_uint_t                         override_err;
    ngx_uint_t                         state_dirty;
    ngx_uint_t                         state_err;
    ngx_uint_t                         hb_err;
    ngx_uint_t                         cmd_err;
    ngx_uint_t                         exiting;
};


static void ngx_http_maintenance_tick(ngx_event_t *ev);
static void ngx_http_maintenance_stop(ngx_http_maintenance_sync_t *sync);

static void ngx_http_maintenance_link_connect(
    ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_keepalive(ngx_socket_t fd);
static void ngx_http_maintenance_link_failed(
    ngx_http_maintenance_link_t *link, const char *why);
static void ngx_http_maintenance_link_drop(ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_link_closed(void *data,
    const struct redisAsyncContext *ac);
static void ngx_http_maintenance_link_ready(ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_link_timeout(ngx_event_t *ev);
static void ngx_http_maintenance_link_reconnect(ngx_event_t *ev);
static ngx_int_t ngx_http_maintenance_link_send(
    ngx_http_maintenance_link_t *link, redisCallbackFn *fn, void *privdata,
    int argc, const char **argv, const size_t *argvlen);
static void ngx_http_maintenance_link_reply(ngx_http_maintenance_link_t *link);

static void ngx_http_maintenance_connect_cb(const redisAsyncContext *ac,
    int status);
static void ngx_http_maintenance_handshake_cb(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_maintenance_subscribe(ngx_http_maintenance_link_t *link);
static void ngx_http_maintenance_message_cb(redisAsyncContext *ac, void *r,
    void *privdata);

static void ngx_http_maintenance_poll(ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_read_scope(ngx_http_maintenance_sync_t *sync,
    ngx_uint_t i, ngx_uint_t round);
static void ngx_http_maintenance_state_cb(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_maintenance_state_reply(
    ngx_http_maintenance_sync_t *sync, ngx_http_maintenance_sync_scope_t *s,
    redisReply *reply);
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
static void ngx_http_maintenance_heartbeat(ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_heartbeat_cb(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_maintenance_check_override(
    ngx_http_maintenance_sync_t *sync);
static void ngx_http_maintenance_set_redis_up(
    ngx_http_maintenance_sync_t *sync, ngx_uint_t up, ngx_uint_t synced);
static ngx_int_t ngx_http_maintenance_state_file_write(
    ngx_http_maintenance_sync_t *sync);
static ngx_int_t ngx_http_maintenance_state_file_line(
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_sh_t *sh,
    u_char *p, size_t len, ngx_log_t *log);
static const char *ngx_http_maintenance_source_name(ngx_uint_t source);
static void ngx_http_maintenance_printable(char *s);


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
    size_t                              len;
    ngx_uint_t                          i;
    ngx_str_t                          *name;
    ngx_http_maintenance_sh_t          *sh;
    ngx_http_maintenance_link_t        *link;
    ngx_http_maintenance_sync_t        *sync;
    ngx_http_maintenance_shctx_t       *shctx;
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

    if (mmcf->state_file.len) {
        len = mmcf->state_file.len + sizeof(".tmp.") - 1 + NGX_INT64_LEN + 1;

        sync->state_tmp = ngx_pnalloc(cycle->pool, len);
        if (sync->state_tmp == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_snprintf(sync->state_tmp, len, "%V.tmp.%P%Z",
                            &mmcf->state_file, ngx_pid);
    }

    sync->cmd.sync = sync;
    sync->cmd.name = "command";
    sync->cmd.kind = NGX_HTTP_MAINTENANCE_LINK_CMD;

    sync->sub.sync = sync;
    sync->sub.name = "subscriber";
    sync->sub.kind = NGX_HTTP_MAINTENANCE_LINK_SUB;

    ngx_http_maintenance_sync = sync;

    /* every timer is cancelable: a graceful shutdown does not wait */

    sync->tick.handler = ngx_http_maintenance_tick;
    sync->tick.data = sync;
    sync->tick.log = cycle->log;
    sync->tick.cancelable = 1;

    for (i = 0; i < 2; i++) {
        link = (i == 0) ? &sync->cmd : &sync->sub;

        link->backoff = NGX_HTTP_MAINTENANCE_BACKOFF_MIN;

        link->timeout.handler = ngx_http_maintenance_link_timeout;
        link->timeout.data = link;
        link->timeout.log = cycle->log;
        link->timeout.cancelable = 1;

        link->reconnect.handler = ngx_http_maintenance_link_reconnect;
        link->reconnect.data = link;
        link->reconnect.log = cycle->log;
        link->reconnect.cancelable = 1;
    }

    ngx_http_maintenance_check_override(sync);
    (void) ngx_http_maintenance_apply(sync);

    if (mmcf->redis_addr.len) {
        ngx_http_maintenance_link_connect(&sync->cmd);
        ngx_http_maintenance_link_connect(&sync->sub);
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

    if (sync->state_dirty) {
        (void) ngx_http_maintenance_state_file_write(sync);
    }

    ngx_http_maintenance_sync = NULL;
}


/*
 * Lets go of everything: hiredis closes its sockets (no "open socket left"
 * at exit), timers are removed.  No reconnect after this.
 */

static void
ngx_http_maintenance_stop(ngx_http_maintenance_sync_t *sync)
{
    ngx_uint_t                    i;
    ngx_http_maintenance_link_t  *link;

    sync->exiting = 1;

    if (sync->tick.timer_set) {
        ngx_del_timer(&sync->tick);
    }

    for (i = 0; i < 2; i++) {
        link = (i == 0) ? &sync->cmd : &sync->sub;

        if (link->reconnect.timer_set) {
            ngx_del_timer(&link->reconnect);
        }

        ngx_http_maintenance_link_drop(link);

        if (link->timeout.timer_set) {
            ngx_del_timer(&link->timeout);
        }
    }
}


static void
ngx_http_maintenance_tick(ngx_event_t *ev)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit || sync->exiting) {
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


/* links */

static void
ngx_http_maintenance_link_connect(ngx_http_maintenance_link_t *link)
{
    char                              *why;
    redisAsyncContext                 *ac;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = link->sync->mmcf;

    link->timed_out = 0;
    link->pending = 0;
    link->ready = 0;

    /*
     * Non-blocking: the address is numeric (resolved at configuration
     * load), so hiredis does no DNS lookup and connect() returns at once.
     */

    if (mmcf->redis_unix.len) {
        ac = redisAsyncConnectUnix((char *) mmcf->redis_unix.data);

    } else {
        ac = redisAsyncConnect((char *) mmcf->redis_host.data,
                               (int) mmcf->redis_port);
    }

    if (ac == NULL) {
        ngx_http_maintenance_link_failed(link, "out of memory");
        return;
    }

    if (ac->err) {
        why = ac->errstr;
        ngx_http_maintenance_link_failed(link, why);
        redisAsyncFree(ac);
        return;
    }

    if (ngx_http_maintenance_redis_attach(ac, link->sync->log,
                                          ngx_http_maintenance_link_closed,
                                          link)
        != NGX_OK)
    {
        redisAsyncFree(ac);
        ngx_http_maintenance_link_failed(link, "no free nginx connection");
        return;
    }

    ac->data = link;
    link->ac = ac;

    if (mmcf->redis_unix.len == 0) {
        ngx_http_maintenance_keepalive(ac->c.fd);
    }

    ngx_add_timer(&link->timeout, mmcf->redis_timeout);

    /* asks for the write event that tells the connect finished */
    (void) redisAsyncSetConnectCallback(ac, ngx_http_maintenance_connect_cb);
}


/*
 * The subscriber idles for hours: a NAT or firewall that forgets the
 * connection would silently end pub/sub (polls would go on).  TCP
 * keepalive finds out in about 90 s and the link starts over.  Best
 * effort: a failure changes nothing else.
 */

static void
ngx_http_maintenance_keepalive(ngx_socket_t fd)
{
    int  on, idle, intvl, cnt;

    on = 1;
    idle = 60;
    intvl = 10;
    cnt = 3;

    (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(int));

#if (NGX_HAVE_KEEPALIVE_TUNABLE)
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(int));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(int));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(int));
#else
    (void) idle;
    (void) intvl;
    (void) cnt;
#endif
}


/* a connect that never got a context: log once, try again later */

static void
ngx_http_maintenance_link_failed(ngx_http_maintenance_link_t *link,
    const char *why)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    if (link->logged != NGX_HTTP_MAINTENANCE_LOGGED_DOWN) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: redis %s link to %V down: %s; "
                      "retrying", link->name, &sync->mmcf->redis_addr, why);
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD && !sync->down) {
        sync->down = 1;
        (void) ngx_http_maintenance_apply(sync);
    }

    if (!sync->exiting && !link->reconnect.timer_set) {
        ngx_add_timer(&link->reconnect, link->backoff);
        link->backoff = ngx_min(link->backoff * 2,
                                ngx_min(sync->mmcf->poll,
                                        NGX_HTTP_MAINTENANCE_BACKOFF_MAX));
        link->backoff = ngx_max(link->backoff,
                                NGX_HTTP_MAINTENANCE_BACKOFF_MIN);
    }
}


/*
 * Frees the context.  Inside one of this context's reply callbacks hiredis
 * defers the free until the callback returns; either way the adapter's
 * cleanup calls link_closed() exactly once.  No new command is sent on a
 * dropped link.
 */

static void
ngx_http_maintenance_link_drop(ngx_http_maintenance_link_t *link)
{
    redisAsyncContext  *ac;

    ac = link->ac;

    if (ac == NULL) {
        return;
    }

    link->ready = 0;

    if (ac->c.flags & REDIS_FREEING) {
        return;
    }

    redisAsyncFree(ac);
}


/* from the adapter's cleanup: the context is being freed, for any reason */

static void
ngx_http_maintenance_link_closed(void *data,
    const struct redisAsyncContext *ac)
{
    ngx_http_maintenance_link_t  *link = data;

    const char                   *why;
    ngx_uint_t                    i;
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    link->ac = NULL;
    link->ready = 0;
    link->pending = 0;

    if (link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }

    if (sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        /* the zone is the next worker 0's now */
        sync->exiting = 1;
        return;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD) {
        sync->round = 0;

        for (i = 0; i < sync->nscopes; i++) {
            sync->scopes[i].reading = 0;
            sync->scopes[i].again = 0;
        }

        ngx_http_maintenance_set_redis_up(sync, 0, 0);
    }

    if (link->timed_out) {
        why = "timed out";

    } else if (ac->err && ac->errstr && ac->errstr[0]) {
        why = ac->errstr;

    } else {
        why = "connection closed";
    }

    ngx_http_maintenance_link_failed(link, why);

}


static void
ngx_http_maintenance_link_ready(ngx_http_maintenance_link_t *link)
{
    ngx_http_maintenance_sync_t  *sync;

    sync = link->sync;

    link->ready = 1;
    link->refused = 0;
    link->backoff = NGX_HTTP_MAINTENANCE_BACKOFF_MIN;

    if (link->pending == 0 && link->timeout.timer_set) {
        ngx_del_timer(&link->timeout);
    }

    if (link->logged != NGX_HTTP_MAINTENANCE_LOGGED_UP) {
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "maintenance: redis %s link to %V up%s", link->name,
                      &sync->mmcf->redis_addr,
                      link->ever_up ? " again" : "");
        link->logged = NGX_HTTP_MAINTENANCE_LOGGED_UP;
    }

    if (link->ever_up) {
        (void) ngx_atomic_fetch_add(&sync->sh->reconnects, 1);
    }

    link->ever_up = 1;

    /*
     * A new command link reads everything; so does a new subscriber: events
     * published while it was away are lost.
     */

    if (sync->cmd.ready && sync->round == 0) {
        ngx_http_maintenance_poll(sync);
    }
}


static void
ngx_http_maintenance_link_timeout(ngx_event_t *ev)
{
    ngx_http_maintenance_link_t  *link;
    ngx_http_maintenance_sync_t  *sync;

    link = ev->data;
    sync = link->sync;

    link->timed_out = 1;
    ngx_http_maintenance_link_drop(link);

    /*
     * A command that timed out means the server (or the path to it) is
     * gone: the idle subscriber would not notice, so it goes too.
     */

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_CMD && sync->sub.ac) {
        sync->sub.timed_out = 1;
        ngx_http_maintenance_link_drop(&sync->sub);
    }
}


static void
ngx_http_maintenance_link_reconnect(ngx_event_t *ev)
{
    ngx_http_maintenance_link_t  *link;

    link = ev->data;

    if (link->sync->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (link->ac == NULL) {
        ngx_http_maintenance_link_connect(link);
    }
}


/* every command goes through here: counts replies due, arms the timeout */

static ngx_int_t
ngx_http_maintenance_link_send(ngx_http_maintenance_link_t *link,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen)
{
    if (link->ac == NULL) {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(link->ac, fn, privdata, argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    link->pending++;

    if (!link->timeout.timer_set) {
        ngx_add_timer(&link->timeout, link->sync->mmcf->redis_timeout);
    }

    return NGX_OK;
}


/* a reply arrived: the deadline moves on, or goes when nothing is due */

static void
ngx_http_maintenance_link_reply(ngx_http_maintenance_link_t *link)
{
    if (link->pending) {
        link->pending--;
    }

    if (link->pending == 0) {
        if (link->timeout.timer_set) {
            ngx_del_timer(&link->timeout);
        }

    } else {
        ngx_add_timer(&link->timeout, link->sync->mmcf->redis_timeout);
    }
}


/*
 * hiredis 0.14 calls this outside its callback guard: freeing the context
 * here would be a use after free in the caller.  On failure hiredis frees
 * the context itself right after (link_closed follows).
 */

static void
ngx_http_maintenance_connect_cb(const redisAsyncContext *cac, int status)
{
    int                                n;
    size_t                             lens[3];
    const char                        *argv[3];
    u_char                             db[NGX_INT_T_LEN];
    ngx_http_maintenance_link_t       *link;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (status != REDIS_OK) {
        return;
    }

    link = cac->data;
    mmcf = link->sync->mmcf;

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

    if (link->pending) {
        return;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_SUB) {
        ngx_http_maintenance_subscribe(link);

    } else {
        ngx_http_maintenance_link_ready(link);
    }
}


static void
ngx_http_maintenance_handshake_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                          msg[128];
    redisReply                   *reply = r;
    ngx_http_maintenance_link_t  *link;

    if (reply == NULL) {
        /* the context is being freed */
        return;
    }

    link = ac->data;

    ngx_http_maintenance_link_reply(link);

    if (reply->type == REDIS_REPLY_ERROR) {
        if (!link->refused) {
            ngx_cpystrn((u_char *) msg, (u_char *) reply->str, sizeof(msg));
            ngx_http_maintenance_printable(msg);

            ngx_log_error(NGX_LOG_ERR, link->sync->log, 0,
                          "maintenance: redis %s link to %V: %s refused: %s",
                          link->name, &link->sync->mmcf->redis_addr,
                          (char *) privdata, msg);
            link->logged = NGX_HTTP_MAINTENANCE_LOGGED_DOWN;
            link->refused = 1;
        }

        ngx_http_maintenance_link_drop(link);
        return;
    }

    if (link->pending) {
        return;
    }

    if (link->kind == NGX_HTTP_MAINTENANCE_LINK_SUB) {
        ngx_http_maintenance_subscribe(link);

    } else {
        ngx_http_maintenance_link_ready(link);
    }
}


static void
ngx_http_maintenance_subscribe(ngx_http_maintenance_link_t *link)
{
    size_t       lens[2];
    const char  *argv[2];

    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    argv[1] = link->sync->events_key;
    lens[1] = ngx_strlen(link->sync->events_key);

    (void) ngx_http_maintenance_link_send(link,
                                          ngx_http_maintenance_message_cb,
                                          NULL, 2, argv, lens);
}


/* the subscription's callback: its confirmation, then every message */

static void
ngx_http_maintenance_message_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                               scope[MIG_NAME_MAX + 1];
    uint64_t                           epoch;
    ngx_uint_t                         i;
    redisReply                        *reply = r, *kind, *msg;
    ngx_http_maintenance_link_t       *link;
    ngx_http_maintenance_sync_t       *sync;

    if (reply == NULL) {
        return;
    }

    link = ac->data;
    sync = link->sync;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind = reply->element[0];

    if (kind->len == 9 && ngx_strncasecmp((u_char *) kind->str,
                                          (u_char *) "subscribe", 9) == 0)
    {
        ngx_http_maintenance_link_reply(link);
        ngx_http_maintenance_link_ready(link);
        return;
    }

    if (kind->len != 7 || ngx_strncasecmp((u_char *) kind->str,
                                          (u_char *) "message", 7) != 0)
    {
        return;
    }

    msg = reply->element[2];

    if (msg->type != REDIS_REPLY_STRING || !link->ready) {
        return;
    }

    (void) ngx_atomic_fetch_add(&sync->sh->events, 1);

    /* a bad event is only a hint lost: the next poll reads the state */

    if (mig_event_parse(msg->str, msg->len, scope, sizeof(scope), &epoch,
                        NULL, 0)
        != MIG_OK)
    {
        return;
    }

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
ngx_http_maintenance_state_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                          msg[128];
    uintptr_t                     data;
    ngx_uint_t                    i, round;
    redisReply                   *reply = r;
    ngx_http_maintenance_link_t  *link;
    ngx_http_maintenance_sync_t  *sync;

    if (reply == NULL) {
        return;
    }

    link = ac->data;
    sync = link->sync;
    data = (uintptr_t) privdata;
    i = data >> 1;
    round = data & NGX_HTTP_MAINTENANCE_ROUND;

    ngx_http_maintenance_link_reply(link);

    if (!link->ready || i >= sync->nscopes) {
        return;
    }

    /*
     * WRONGTYPE is about the key (a malformed state); any other error
     * (NOAUTH, LOADING, ...) is about the server: the link starts over.
     */

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "WRONGTYPE", 9) != 0)
    {
        if (!sync->cmd_err) {
            ngx_cpystrn((u_char *) msg, (u_char *) reply->str, sizeof(msg));
            ngx_http_maintenance_printable(msg);

            ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                          "maintenance: redis refused HGETALL %s: %s",
                          sync->scopes[i].key, msg);
            sync->cmd_err = 1;
        }

        ngx_http_maintenance_link_drop(link);
        return;
    }

    sync->cmd_err = 0;

    ngx_http_maintenance_state_reply(sync, &sync->scopes[i], reply);

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
    ngx_http_maintenance_set_redis_up(sync, 1, 1);
    (void) ngx_atomic_fetch_add(&sync->sh->polls, 1);

    (void) ngx_http_maintenance_apply(sync);
    ngx_http_maintenance_heartbeat(sync);

    if (sync->state_dirty) {
        (void) ngx_http_maintenance_state_file_write(sync);
    }
}


/*
 * Decodes HGETALL's reply with the shared codec.  Values are data from the
 * network: the whole record is accepted or the last good state is kept.
 */

static void
ngx_http_maintenance_state_reply(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_sync_scope_t *s, redisReply *reply)
{
    char          err[160];
    size_t        i;
    redisReply   *f, *v;
    mig_state_t   st;

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_cpystrn((u_char *) err, (u_char *) reply->str, sizeof(err));
        ngx_http_maintenance_state_malformed(sync, s, err);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_maintenance_state_malformed(sync, s, "not a hash");
        return;
    }

    if (reply->elements == 0) {
        ngx_http_maintenance_state_missing(sync, s);
        return;
    }

    if (reply->elements % 2
        || reply->elements > 2 * NGX_HTTP_MAINTENANCE_FIELDS_MAX)
    {
        ngx_http_maintenance_state_malformed(sync, s,
                                             "too many fields in the hash");
        return;
    }

    mig_state_init(&st);

    for (i = 0; i < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            ngx_http_maintenance_state_malformed(sync, s,
                                                 "a field is not a string");
            return;
        }

        if (mig_state_field(&st, f->str, f->len, v->str, v->len, err,
                            sizeof(err))
            != MIG_OK)
        {
            ngx_http_maintenance_state_malformed(sync, s, err);
            return;
        }
    }

    if (mig_state_finish(&st, err, sizeof(err)) != MIG_OK) {
        ngx_http_maintenance_state_malformed(sync, s, err);
        return;
    }

    ngx_http_maintenance_state_good(sync, s, &st);
}


static void
ngx_http_maintenance_state_good(ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_sync_scope_t *s, mig_state_t *st)
{
    if (s->malformed) {
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "maintenance: scope \"%V\": the state in %s is valid "
                      "again", &s->name, s->key);
        s->malformed = 0;
    }

    if (s->lost) {
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
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

    ngx_log_error(NGX_LOG_WARN, sync->log, 0,
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
                          ngx_http_maintenance_source_name(source));
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

    return changed;
}


/*
 * One transaction: the edge hash is replaced whole (a scope dropped from
 * the configuration disappears from it) and expires unless refreshed.
 */

static void
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

    if (!link->ready) {
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


static void
ngx_http_maintenance_heartbeat_cb(redisAsyncContext *ac, void *r,
    void *privdata)
{
    char                          msg[128];
    size_t                        i;
    redisReply                   *reply = r, *bad;
    ngx_http_maintenance_link_t  *link;
    ngx_http_maintenance_sync_t  *sync;

    if (reply == NULL) {
        return;
    }

    link = ac->data;
    sync = link->sync;

    ngx_http_maintenance_link_reply(link);

    bad = NULL;

    if (reply->type == REDIS_REPLY_ERROR) {
        bad = reply;

    } else if (privdata && reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type == REDIS_REPLY_ERROR) {
                bad = reply->element[i];
                break;
            }
        }
    }

    if (bad == NULL) {
        if (privdata) {
            sync->hb_err = 0;
        }

        return;
    }

    if (!sync->hb_err) {
        ngx_cpystrn((u_char *) msg, (u_char *) bad->str, sizeof(msg));
        ngx_http_maintenance_printable(msg);

        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: heartbeat into %s refused: %s",
                      sync->edge_key, msg);
        sync->hb_err = 1;
    }
}


/*
 * The break-glass switch: a file that exists.  A stat error other than
 * "not there" (permissions on the directory) counts as present: someone
 * tried to pull the switch, and failing closed is what they asked for.
 */

static void
ngx_http_maintenance_check_override(ngx_http_maintenance_sync_t *sync)
{
    ngx_err_t                          err;
    ngx_uint_t                         present;
    ngx_file_info_t                    fi;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = sync->mmcf;

    if (mmcf->override_file.len == 0) {
        return;
    }

    present = 1;

    if (ngx_file_info(mmcf->override_file.data, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;

        if (err == NGX_ENOENT || err == NGX_ENOTDIR) {
            present = 0;
            sync->override_err = 0;

        } else if (!sync->override_err) {
            ngx_log_error(NGX_LOG_ERR, sync->log, err,
                          "maintenance: cannot stat override file \"%V\", "
                          "treating it as present", &mmcf->override_file);
            sync->override_err = 1;
        }
    }

    if (present == sync->override) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                  present ? "maintenance: override file \"%V\" present: "
                            "every scope in maintenance"
                          : "maintenance: override file \"%V\" removed",
                  &mmcf->override_file);

    sync->override = present;
    sync->sh->override = present;
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


/*
 * The state file: one line per scope with a known state,
 * "scope mode epoch retry_after since".  Written to a temporary file,
 * synced, renamed over the old one: a crash leaves the old or the new file,
 * never half of one.
 */

static ngx_int_t
ngx_http_maintenance_state_file_write(ngx_http_maintenance_sync_t *sync)
{
    u_char                             *buf, *p, *last;
    size_t                              size;
    ssize_t                             n;
    ngx_fd_t                            fd;
    ngx_err_t                           err;
    ngx_uint_t                          i;
    const char                         *op;
    ngx_http_maintenance_main_conf_t   *mmcf;
    ngx_http_maintenance_sync_scope_t  *s;

    mmcf = sync->mmcf;

    if (mmcf->state_file.len == 0) {
        sync->state_dirty = 0;
        return NGX_OK;
    }

    size = 128 + sync->nscopes * (MIG_NAME_MAX + 4 * NGX_INT64_LEN + 8);

    buf = ngx_alloc(size, sync->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;
    last = buf + size;

    p = ngx_slprintf(p, last, "# migctl maintenance state (nginx worker 0):"
                              " scope mode epoch retry_after since\n");

    for (i = 0; i < sync->nscopes; i++) {
        s = &sync->scopes[i];

        if (!s->have) {
            continue;
        }

        p = ngx_slprintf(p, last, "%V %s %uL %uD %L\n", &s->name,
                         mig_mode_str(s->base.mode), s->base.epoch,
                         s->base.retry_after, (int64_t) s->base.since);
    }

    op = ngx_open_file_n;
    err = 0;

    fd = ngx_open_file(sync->state_tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);
    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;
        goto failed;
    }

    n = ngx_write_fd(fd, buf, p - buf);

    if (n != p - buf) {
        err = (n == -1) ? ngx_errno : NGX_ENOSPC;
        op = ngx_write_fd_n;
        (void) ngx_close_file(fd);
        goto failed_unlink;
    }

    if (fsync(fd) == -1) {
        err = ngx_errno;
        op = "fsync()";
        (void) ngx_close_file(fd);
        goto failed_unlink;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        err = ngx_errno;
        op = ngx_close_file_n;
        goto failed_unlink;
    }

    if (ngx_rename_file(sync->state_tmp, mmcf->state_file.data)
        == NGX_FILE_ERROR)
    {
        err = ngx_errno;
        op = ngx_rename_file_n;
        goto failed_unlink;
    }

    ngx_free(buf);

    if (sync->state_err) {
        ngx_log_error(NGX_LOG_NOTICE, sync->log, 0,
                      "maintenance: state file \"%V\" written again",
                      &mmcf->state_file);
        sync->state_err = 0;
    }

    sync->state_dirty = 0;

    return NGX_OK;

failed_unlink:

    (void) ngx_delete_file(sync->state_tmp);

failed:

    ngx_free(buf);

    /* stays dirty: the next tick tries again, logged once */

    if (!sync->state_err) {
        ngx_log_error(NGX_LOG_ERR, sync->log, err,
                      "maintenance: cannot write state file \"%V\": %s "
                      "\"%s\" failed", &mmcf->state_file, op,
                      sync->state_tmp);
        sync->state_err = 1;
    }

    return NGX_ERROR;
}


/*
 * Called by the master when the zone is created (a cold start, not a
 * reload): scopes come back in the mode the node last knew, source
 * state_file, until Redis says otherwise.  A missing file is a first start;
 * a damaged line is skipped with a warning; neither stops nginx.  A scope
 * already seen in the zone is left alone.
 */

ngx_int_t
ngx_http_maintenance_state_file_load(ngx_cycle_t *cycle,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    u_char                        *buf, *p, *eol, *last;
    ssize_t                        n;
    ngx_fd_t                       fd;
    ngx_err_t                      err;
    ngx_file_info_t                fi;
    ngx_http_maintenance_shctx_t  *shctx;

    if (mmcf->state_file.len == 0 || mmcf->shm_zone == NULL
        || mmcf->slots == NULL)
    {
        return NGX_OK;
    }

    shctx = mmcf->shm_zone->data;

    fd = ngx_open_file(mmcf->state_file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                       0);
    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (err != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, err,
                          "maintenance: cannot open state file \"%V\"",
                          &mmcf->state_file);
        }

        return NGX_OK;
    }

    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                      "maintenance: cannot stat state file \"%V\"",
                      &mmcf->state_file);
        goto done;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_MAINTENANCE_STATE_FILE_MAX) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "maintenance: state file \"%V\" is larger than %d "
                      "bytes, ignored", &mmcf->state_file,
                      NGX_HTTP_MAINTENANCE_STATE_FILE_MAX);
        goto done;
    }

    buf = ngx_alloc(NGX_HTTP_MAINTENANCE_STATE_FILE_MAX + 1, cycle->log);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_fd(fd, buf, NGX_HTTP_MAINTENANCE_STATE_FILE_MAX);
    if (n == -1) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                      "maintenance: cannot read state file \"%V\"",
                      &mmcf->state_file);
        goto done;
    }

    last = buf + n;

    ngx_shmtx_lock(&shctx->shpool->mutex);

    for (p = buf; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if (eol == p || *p == '#') {
            continue;
        }

        if (ngx_http_maintenance_state_file_line(mmcf, shctx->sh, p, eol - p,
                                                 cycle->log)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "maintenance: state file \"%V\": line \"%*s\" "
                          "skipped", &mmcf->state_file,
                          (size_t) ngx_min(eol - p, 80), p);
        }
    }

    ngx_shmtx_unlock(&shctx->shpool->mutex);

done:

    if (buf) {
        ngx_free(buf);
    }

    (void) ngx_close_file(fd);

    return NGX_OK;
}


/* "scope mode epoch retry_after since"; called under the zone's mutex */

static ngx_int_t
ngx_http_maintenance_state_file_line(ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_sh_t *sh, u_char *p, size_t len, ngx_log_t *log)
{
    u_char                           *f[5], *end, *q;
    size_t                            fl[5];
    int64_t                           since;
    uint64_t                          epoch, retry;
    ngx_str_t                        *name;
    ngx_uint_t                        i, k;
    mig_mode_e                        mode;
    ngx_http_maintenance_scope_sh_t  *ssh;

    end = p + len;
    q = p;

    for (k = 0; k < 5; k++) {
        while (q < end && *q == ' ') {
            q++;
        }

        f[k] = q;

        while (q < end && *q != ' ') {
            q++;
        }

        fl[k] = q - f[k];

        if (fl[k] == 0) {
            return NGX_ERROR;
        }
    }

    while (q < end && (*q == ' ' || *q == '\r')) {
        q++;
    }

    if (q != end
        || mig_name_valid((char *) f[0], fl[0], NULL, 0) != MIG_OK)
    {
        return NGX_ERROR;
    }

    if (fl[1] == 2 && ngx_strncmp(f[1], "on", 2) == 0) {
        mode = MIG_MODE_ON;

    } else if (fl[1] == 3 && ngx_strncmp(f[1], "off", 3) == 0) {
        mode = MIG_MODE_OFF;

    } else {
        return NGX_ERROR;
    }

    if (mig_parse_u64((char *) f[2], fl[2], UINT64_MAX, &epoch) != MIG_OK
        || mig_parse_u64((char *) f[3], fl[3], MIG_RETRY_AFTER_MAX, &retry)
           != MIG_OK
        || mig_parse_i64((char *) f[4], fl[4], &since) != MIG_OK)
    {
        return NGX_ERROR;
    }

    name = mmcf->scopes.elts;

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        if (name[i].len == fl[0]
            && ngx_strncmp(name[i].data, f[0], fl[0]) == 0)
        {
            break;
        }
    }

    if (i == mmcf->scopes.nelts) {
        /* a scope no longer configured */
        return NGX_OK;
    }

    ssh = &sh->scopes[mmcf->slots[i]];

    if (ssh->seen) {
        return NGX_OK;
    }

    mig_state_init(&ssh->state);
    ssh->state.mode = mode;
    ssh->state.epoch = epoch;
    ssh->state.have_epoch = 1;
    ssh->state.retry_after = (uint32_t) retry;
    ssh->state.since = since;
    ssh->seen = 1;
    ssh->lost = 0;

    ssh->on = (mode == MIG_MODE_ON);
    ssh->epoch = (ngx_atomic_uint_t) epoch;
    ssh->retry_after = (ngx_atomic_uint_t) retry;
    ssh->source = NGX_HTTP_MAINTENANCE_SRC_STATE_FILE;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "maintenance: scope \"%V\" restored from the state file: "
                  "mode %s, epoch %uL", &name[i], mig_mode_str(mode), epoch);

    return NGX_OK;
}


static const char *
ngx_http_maintenance_source_name(ngx_uint_t source)
{
    switch (source) {
    case NGX_HTTP_MAINTENANCE_SRC_REDIS:
        return "redis";
    case NGX_HTTP_MAINTENANCE_SRC_OVERRIDE:
        return "override";
    case NGX_HTTP_MAINTENANCE_SRC_STATE_FILE:
        return "state_file";
    default:
        return "default";
    }
}


/* text from the network goes into the log with control bytes replaced */

static void
ngx_http_maintenance_printable(char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((u_char) *s < 0x20 || (u_char) *s == 0x7f) {
            *s = '?';
        }
    }
}
