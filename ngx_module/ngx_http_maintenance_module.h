/*
 * ngx_http_maintenance_module.h: the hub header of the maintenance module:
 * configuration, the shared zone, and what the module files share.
 */

#ifndef NGX_HTTP_MAINTENANCE_MODULE_H
#define NGX_HTTP_MAINTENANCE_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "mig.h"


#define NGX_HTTP_MAINTENANCE_MAX_SCOPES   64

/* the last state file error kept in the zone, NUL included */
#define NGX_HTTP_MAINTENANCE_STATE_ERR_LEN   256

/* where a scope's served state came from */
#define NGX_HTTP_MAINTENANCE_SRC_DEFAULT     0
#define NGX_HTTP_MAINTENANCE_SRC_REDIS       1
#define NGX_HTTP_MAINTENANCE_SRC_OVERRIDE    2
#define NGX_HTTP_MAINTENANCE_SRC_STATE_FILE  3
#define NGX_HTTP_MAINTENANCE_NSOURCES        4

/* maintenance_redis_sentinel: sentinels configured, and learned */
#define NGX_HTTP_MAINTENANCE_SENTINELS_CONF  16
#define NGX_HTTP_MAINTENANCE_SENTINELS_MAX   32

/* "ip:port" of a master or sentinel in the zone, NUL included */
#define NGX_HTTP_MAINTENANCE_ADDR_LEN        64

/* the sentinels tried by a failed discovery, and why, NUL included */
#define NGX_HTTP_MAINTENANCE_TRIED_LEN       1024

/* maintenance_redis_failure */
#define NGX_HTTP_MAINTENANCE_FAIL_LAST       0
#define NGX_HTTP_MAINTENANCE_FAIL_OPEN       1
#define NGX_HTTP_MAINTENANCE_FAIL_CLOSED     2


/*
 * One scope in the shared zone.  The request path reads "on" and "epoch"
 * without the lock (word-sized, written by worker 0 only); everything else
 * is written by worker 0 under shpool->mutex and read under it by the
 * status handler.
 */
typedef struct {
    ngx_atomic_t                 on;          /* what is served now */
    ngx_atomic_t                 epoch;
    ngx_atomic_t                 retry_after; /* 0: use the location's */
    ngx_uint_t                   source;      /* NGX_HTTP_MAINTENANCE_SRC_ */
    ngx_uint_t                   seen;        /* a state was ever read */
    ngx_uint_t                   lost;        /* key gone after seen */
    mig_state_t                  state;       /* last good from Redis */

    /*
     * The scope this slot belongs to, set when the zone is initialised
     * (master, under the mutex).  A slot keeps its name across reloads,
     * so old and new workers read the same slot for the same scope while
     * both run.  name_len 0: a free slot.
     */
    u_char                       name[MIG_NAME_MAX];
    size_t                       name_len;
} ngx_http_maintenance_scope_sh_t;


typedef struct ngx_http_maintenance_main_conf_s
    ngx_http_maintenance_main_conf_t;


/* in the shared zone (as limit_req's shctx): one for every cycle */
typedef struct {
    ngx_uint_t                   nscopes;     /* slots in use: 0..nscopes-1
                                                 (some may be free) */
    ngx_atomic_t                 override;    /* override file exists */
    ngx_atomic_t                 redis_up;
    ngx_msec_t                   last_sync;   /* ngx_current_msec of the
                                                 last full poll, 0 never */
    time_t                       last_sync_time;
    ngx_pid_t                    owner_pid;   /* worker 0's pid */

    /* state file writes (worker 0): failed writes, the last one's error */
    ngx_atomic_t                 state_file_errors;
    ngx_uint_t                   state_file_failing;
    u_char                       state_file_error[
                                     NGX_HTTP_MAINTENANCE_STATE_ERR_LEN];

    /* counters, ngx_atomic_fetch_add() */
    ngx_atomic_t                 requests_gated;
    ngx_atomic_t                 requests_bypassed;
    ngx_atomic_t                 requests_passed;
    ngx_atomic_t                 polls;
    ngx_atomic_t                 events;
    ngx_atomic_t                 malformed;
    ngx_atomic_t                 reconnects;  /* connects after a
                                                 failure */

    /*
     * worker 0's reconnect backoff per link (LINK_CMD, LINK_SUB): a
     * respawned worker 0 goes on waiting instead of starting over
     */
    ngx_msec_t                   backoff[2];

    /*
     * maintenance_redis_sentinel, written by worker 0 under the mutex:
     * the master in use ("" unknown), the sentinel that answered last (""
     * none), whether the last contact with a sentinel succeeded, and if
     * not, every sentinel tried and why
     */
    u_char                       master[NGX_HTTP_MAINTENANCE_ADDR_LEN];
    u_char                       sentinel[NGX_HTTP_MAINTENANCE_ADDR_LEN];
    ngx_uint_t                   sentinel_reachable;
    u_char                       sentinel_tried[
                                     NGX_HTTP_MAINTENANCE_TRIED_LEN];
    ngx_atomic_t                 failovers;   /* master changes seen */
    uint64_t                     last_switch; /* unix ms, 0 none */

    /*
     * the sentinels worker 0 learned (SENTINEL sentinels) for the master
     * "learned_for": a respawned or reloaded worker 0 asks them too
     */
    u_char                       learned_for[MIG_NAME_MAX + 1];
    ngx_uint_t                   nlearned;
    ngx_sockaddr_t               learned[NGX_HTTP_MAINTENANCE_SENTINELS_MAX];
    socklen_t                    learned_len[
                                     NGX_HTTP_MAINTENANCE_SENTINELS_MAX];

    /* the sentinel holding worker 0's +switch-master subscription ("" none) */
    u_char                       sentinel_sub[NGX_HTTP_MAINTENANCE_ADDR_LEN];

    ngx_http_maintenance_scope_sh_t  scopes[NGX_HTTP_MAINTENANCE_MAX_SCOPES];
} ngx_http_maintenance_shctx_t;


/* per cycle: the zone's data pointer (as limit_req's ctx) */
typedef struct {
    ngx_http_maintenance_shctx_t      *sh;       /* in the zone */
    ngx_slab_pool_t                   *shpool;
    ngx_http_maintenance_main_conf_t  *mmcf;
    ngx_uint_t                         fresh;    /* zone created by this
                                                    cycle (not inherited
                                                    on reload) */
} ngx_http_maintenance_ctx_t;


/*
 * Strings below are NUL-terminated (len excludes the NUL), so they can be
 * handed to hiredis and open() as they are.  Paths are absolute (resolved
 * against the prefix at load).
 */
struct ngx_http_maintenance_main_conf_s {
    /* maintenance_redis */
    ngx_str_t                    redis_addr;   /* as written, for logs */
    ngx_str_t                    redis_host;   /* "" with unix */
    in_port_t                    redis_port;
    ngx_str_t                    redis_unix;
    ngx_int_t                    redis_db;
    ngx_str_t                    redis_user;
    ngx_str_t                    redis_password; /* read from the file at
                                                    configuration load */
    ngx_msec_t                   redis_timeout;

    ngx_str_t                    prefix;
    ngx_msec_t                   poll;
    ngx_str_t                    node_id;
    ngx_str_t                    state_file;
    ngx_str_t                    override_file;
    ngx_uint_t                   redis_failure;
    ngx_flag_t                   strict;

    /*
     * every scope named in the configuration (index i = the scope's
     * number in this configuration; "default" is always 0); its slot in
     * the zone is slots[i]: ALWAYS index sh->scopes through slots[], the
     * zone keeps slots stable across reloads, so slots[i] may differ
     * from i.  slots is set when the zone is initialised.
     */
    ngx_array_t                  scopes;       /* of ngx_str_t */
    ngx_uint_t                  *slots;

    ngx_shm_zone_t              *shm_zone;     /* data: the shctx */

    ngx_uint_t                   bypass_tokens; /* a bypass token is set
                                                   somewhere: the header
                                                   and cookie are stripped
                                                   from every request */

    /*
     * the indexes of $maintenance and $maintenance_epoch when the
     * configuration uses them (NGX_ERROR if not): the gate stores what it
     * decided there, so that a log line written later says the same
     */
    ngx_int_t                    var_mode;
    ngx_int_t                    var_epoch;

    /*
     * maintenance_redis NAME:PORT with "resolver" at http level: the name
     * worker 0 resolves again on each connect (len 0: a numeric address,
     * a unix socket, or a name resolved once at load, without resolver)
     */
    ngx_str_t                    redis_name;
    ngx_str_t                    redis_file;   /* where the directive is, */
    ngx_uint_t                   redis_line;   /* for errors after it */
    ngx_resolver_t              *resolver;     /* http level, or NULL */
    ngx_msec_t                   resolver_timeout;

    /*
     * maintenance_redis_sentinel: redis_addr holds the master's name (Redis
     * is configured), redis_host is "": the master comes from the sentinels
     */
    ngx_str_t                    sentinel_name; /* NUL-terminated */
    ngx_array_t                 *sentinels;    /* of ngx_http_maintenance_
                                                  sentinel_conf_t */
    ngx_str_t                    sentinel_password;
};


/*
 * a configured sentinel: numeric (addr), or a name that worker 0 resolves
 * on each connect with "resolver" (host set, addr.sockaddr NULL); without
 * "resolver" a name is resolved at load into numeric ones
 */
typedef struct {
    ngx_addr_t                   addr;         /* name: "ip:port" */
    ngx_str_t                    host;         /* len 0: numeric */
    in_port_t                    port;
    ngx_str_t                    text;         /* "host:port" as written */
} ngx_http_maintenance_sentinel_conf_t;


/* maintenance_health */
#define NGX_HTTP_MAINTENANCE_HEALTH_NONE     0
#define NGX_HTTP_MAINTENANCE_HEALTH          1
#define NGX_HTTP_MAINTENANCE_HEALTH_DRAIN    2


typedef struct {
    ngx_flag_t                   enable;       /* maintenance on|off */
    ngx_uint_t                   scope;        /* index in mmcf->scopes */
    ngx_str_t                    page;         /* read at load */
    ngx_str_t                    page_json;
    ngx_uint_t                   status_code;
    ngx_uint_t                   retry_after;
    ngx_str_t                    retry_after_text;
    ngx_array_t                 *bypass_cidr;  /* of ngx_cidr_t, or NULL */
    ngx_str_t                    bypass_token; /* the secret, or len 0 */
    ngx_uint_t                   health;       /* this location only */
    ngx_flag_t                   status;       /* this location only */
} ngx_http_maintenance_loc_conf_t;


extern ngx_module_t  ngx_http_maintenance_module;


/* the name of a source, as status, Prometheus and the logs show it */
static ngx_inline const char *
ngx_http_maintenance_source_str(ngx_uint_t source)
{
    static const char  *names[NGX_HTTP_MAINTENANCE_NSOURCES] = {
        "default", "redis", "override", "state_file"
    };

    return source < NGX_HTTP_MAINTENANCE_NSOURCES ? names[source]
                                                  : names[0];
}


/* the zone slot of the scope a location is gated by */
static ngx_inline ngx_http_maintenance_scope_sh_t *
ngx_http_maintenance_scope_sh(ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_loc_conf_t *mlcf)
{
    ngx_http_maintenance_ctx_t  *ctx;

    ctx = mmcf->shm_zone->data;

    return &ctx->sh->scopes[mmcf->slots[mlcf->scope]];
}


/*
 * ngx_http_maintenance_gate.c: the gate (rewrite phase), the CIDR bypass
 * confirmed after realip (access phase), the variables (preconfiguration).
 */
ngx_int_t ngx_http_maintenance_gate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_maintenance_confirm_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_maintenance_add_variables(ngx_conf_t *cf);
void ngx_http_maintenance_variables_used(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf);


/* ngx_http_maintenance_guard.c: the consistency guard (postconfiguration) */
ngx_int_t ngx_http_maintenance_check_servers(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf);


/* ngx_http_maintenance_handlers.c: maintenance_health, maintenance_status */
ngx_int_t ngx_http_maintenance_health_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_maintenance_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_maintenance_add_header(ngx_http_request_t *r,
    const char *key, ngx_str_t *value);


/*
 * Worker 0's side: ngx_http_maintenance_sync.c drives it and calls the
 * lower files (link, heartbeat, state file, redis) by name; they call up
 * only through the hooks in ngx_http_maintenance_sync_t.
 */

/*
 * ngx_http_maintenance_redis.c: one Redis connection on nginx's event loop;
 * replies parsed by hiredis's redisReader, handed to the handler queued
 * with each command, in order ("push": replies nobody asked for, pub/sub).
 * "closed" runs once per connect, whatever closed it; it must not connect
 * again at once (a timer may).
 */

#define NGX_HTTP_MAINTENANCE_REDIS_QUEUE     256

struct redisReply;

typedef struct ngx_http_maintenance_redis_s  ngx_http_maintenance_redis_t;

typedef void (*ngx_http_maintenance_redis_reply_pt)(
    ngx_http_maintenance_redis_t *rc, struct redisReply *reply, void *data);
typedef void (*ngx_http_maintenance_redis_closed_pt)(
    ngx_http_maintenance_redis_t *rc, const char *why);

typedef struct {
    ngx_http_maintenance_redis_reply_pt   handler;
    void                                 *data;
} ngx_http_maintenance_redis_cb_t;

struct ngx_http_maintenance_redis_s {
    ngx_connection_t                     *c;        /* NULL: closed */
    void                                 *reader;   /* redisReader */
    ngx_log_t                            *log;
    ngx_msec_t                            timeout;  /* connect, reply */
    struct sockaddr                      *sockaddr;
    socklen_t                             socklen;

    u_char                               *out;      /* ngx_alloc() */
    size_t                                out_len;
    size_t                                out_size;
    size_t                                out_sent;

    ngx_http_maintenance_redis_cb_t       queue[
                                          NGX_HTTP_MAINTENANCE_REDIS_QUEUE];
    ngx_uint_t                            head;
    ngx_uint_t                            n;        /* replies due */

    ngx_http_maintenance_redis_reply_pt   push;
    ngx_http_maintenance_redis_closed_pt  closed;
    void                                 *data;     /* the owner's */

    ngx_uint_t                            connected;
    ngx_uint_t                            malformed; /* closed on a bad
                                                        reply */
    int                                   too_large; /* reply.c sets it */
    ngx_uint_t                            timedout; /* closed on a timer */
    ngx_uint_t                            gen;      /* +1 at each close */
    char                                  why[128];
};

ngx_int_t ngx_http_maintenance_redis_connect(ngx_http_maintenance_redis_t *rc);
ngx_int_t ngx_http_maintenance_redis_send(ngx_http_maintenance_redis_t *rc,
    ngx_http_maintenance_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);
void ngx_http_maintenance_redis_close(ngx_http_maintenance_redis_t *rc,
    const char *why);
void ngx_http_maintenance_redis_free(ngx_http_maintenance_redis_t *rc);
void ngx_http_maintenance_redis_keepalive(ngx_socket_t fd);
void ngx_http_maintenance_printable(char *s);


#define NGX_HTTP_MAINTENANCE_LINK_CMD        0
#define NGX_HTTP_MAINTENANCE_LINK_SUB        1


typedef struct ngx_http_maintenance_sync_s  ngx_http_maintenance_sync_t;
typedef struct ngx_http_maintenance_sentinel_s
    ngx_http_maintenance_sentinel_t;


/*
 * ngx_http_maintenance_resolve.c: host names.  _resolve() answers through
 * the handler: at once (before it returns) for a numeric address or an
 * answer nginx's resolver has cached, else from the event loop; never
 * after _cancel().  A resolution is bounded by the shorter of
 * resolver_timeout and maintenance_redis timeout=.  _next() picks the
 * answer's addresses in turn, starting after the one it picked last.
 */

#define NGX_HTTP_MAINTENANCE_RESOLVE_ADDRS   16     /* kept of an answer */
#define NGX_HTTP_MAINTENANCE_RESOLVE_NAME    255    /* a DNS name, at most */

typedef struct ngx_http_maintenance_resolve_s
    ngx_http_maintenance_resolve_t;

typedef void (*ngx_http_maintenance_resolve_pt)(
    ngx_http_maintenance_resolve_t *rs);

struct ngx_http_maintenance_resolve_s {
    ngx_resolver_ctx_t                *ctx;      /* in flight, or NULL */
    ngx_http_maintenance_resolve_pt    handler;
    void                              *data;     /* the caller's */

    u_char                             name[
                                       NGX_HTTP_MAINTENANCE_RESOLVE_NAME + 1];
    size_t                             name_len;
    in_port_t                          port;

    /* the answer: NGX_OK and addresses (ports set), or NGX_ERROR and err */
    ngx_int_t                          state;
    ngx_uint_t                         naddrs;
    ngx_sockaddr_t                     addrs[
                                       NGX_HTTP_MAINTENANCE_RESOLVE_ADDRS];
    socklen_t                          socklens[
                                       NGX_HTTP_MAINTENANCE_RESOLVE_ADDRS];

    ngx_sockaddr_t                     cur;      /* picked by _next() */
    socklen_t                          cur_len;  /* 0: none yet */

    char                               err[160];

    ngx_msec_t                         timeout;  /* the caller's bound
                                                    too, 0: none */
};

ngx_int_t ngx_http_maintenance_resolve(ngx_http_maintenance_resolve_t *rs,
    ngx_http_maintenance_sync_t *sync, ngx_str_t *host, in_port_t port,
    ngx_http_maintenance_resolve_pt handler, void *data);
void ngx_http_maintenance_resolve_cancel(ngx_http_maintenance_resolve_t *rs);
struct sockaddr *ngx_http_maintenance_resolve_next(
    ngx_http_maintenance_resolve_t *rs, socklen_t *socklen);

/* postconfiguration: the http-level resolver; a name without it, at load */
ngx_int_t ngx_http_maintenance_resolve_conf(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf);

/* postconfiguration: sentinel names without "resolver", at load */
ngx_int_t ngx_http_maintenance_resolve_sentinels(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf);

/* an address as text without the port ("::1", not "[::1]"), NUL-ended */
ngx_int_t ngx_http_maintenance_resolve_text(ngx_pool_t *pool,
    struct sockaddr *sa, socklen_t socklen, ngx_str_t *text);


/* one Redis link of worker 0, in its sync (cycle->pool) */
typedef struct {
    ngx_http_maintenance_redis_t       redis;    /* redis.c == NULL: down */
    ngx_http_maintenance_sync_t       *sync;
    const char                        *name;     /* for logs */
    ngx_uint_t                         kind;     /* LINK_CMD, LINK_SUB */
    ngx_uint_t                         ready;    /* commands may go (cmd),
                                                    subscribed (sub) */
    ngx_uint_t                         up;       /* a good reply came on
                                                    this connection */
    ngx_uint_t                         logged;   /* what was last logged */
    ngx_uint_t                         refused;  /* a refusal logged (a
                                                    different story from
                                                    "down") */
    ngx_uint_t                         bad;      /* malformed logged */
    ngx_uint_t                         ever_up;
    ngx_msec_t                         backoff;  /* next wait; kept in
                                                    sh->backoff[kind] too */
    ngx_msec_t                         down_since; /* ngx_current_msec */
    ngx_uint_t                         down_long;  /* "unreachable for"
                                                      logged */
    ngx_event_t                        reconnect;
    ngx_http_maintenance_resolve_t     resolve;  /* mmcf->redis_name */
    ngx_uint_t                         unresolved; /* a resolver failure
                                                      logged */

    /* for logs: mmcf->redis_addr, or the master found through Sentinel */
    ngx_str_t                         *addr;
    ngx_uint_t                         waiting;  /* for the sentinels */
    ngx_uint_t                         reroute;  /* closed to reconnect at
                                                    once: not a failure */
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


/* the hooks a link calls up through (set by ngx_http_maintenance_sync.c) */
typedef void (*ngx_http_maintenance_sync_pt)(
    ngx_http_maintenance_sync_t *sync);
typedef void (*ngx_http_maintenance_event_pt)(
    ngx_http_maintenance_sync_t *sync, const char *scope, uint64_t epoch);


/* a state file write (ngx_http_maintenance_state_file.c) */
typedef struct ngx_http_maintenance_state_job_s
    ngx_http_maintenance_state_job_t;


struct ngx_http_maintenance_sync_s {
    ngx_http_maintenance_main_conf_t  *mmcf;
    ngx_http_maintenance_shctx_t         *sh;
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
    ngx_http_maintenance_state_job_t  *state_job; /* state file writes */

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
    ngx_uint_t                         exiting;

    ngx_http_maintenance_sync_pt       link_ready; /* a link is ready */
    ngx_http_maintenance_sync_pt       cmd_closed; /* the cmd link closed */
    ngx_http_maintenance_sync_pt       cmd_down;   /* and failed to come
                                                      back: policy rules */
    ngx_http_maintenance_event_pt      event;      /* "scope epoch" */

    /* what the Redis name last resolved to, for "now resolves to" */
    u_char                             resolved[NGX_SOCKADDR_STRLEN];
    size_t                             resolved_len;

    ngx_http_maintenance_sentinel_t   *sentinel;   /* NULL: no Sentinel */
};


/* ngx_http_maintenance_sync.c: worker 0's state, fed by the lower files */
ngx_int_t ngx_http_maintenance_sync_init_worker(ngx_cycle_t *cycle);
void ngx_http_maintenance_sync_exit_worker(ngx_cycle_t *cycle);


/* ngx_http_maintenance_link.c: the two Redis links, their backoff */
ngx_int_t ngx_http_maintenance_link_init(ngx_http_maintenance_link_t *link,
    ngx_http_maintenance_sync_t *sync, const char *name, ngx_uint_t kind);
void ngx_http_maintenance_link_start(ngx_http_maintenance_link_t *link);
void ngx_http_maintenance_link_up(ngx_http_maintenance_link_t *link);
void ngx_http_maintenance_link_drop(ngx_http_maintenance_link_t *link,
    const char *why);
void ngx_http_maintenance_link_malformed(ngx_http_maintenance_link_t *link,
    const char *what);
void ngx_http_maintenance_link_refused(ngx_http_maintenance_link_t *link,
    const char *cmd, struct redisReply *reply);
void ngx_http_maintenance_link_stop(ngx_http_maintenance_link_t *link);
ngx_int_t ngx_http_maintenance_link_send(ngx_http_maintenance_link_t *link,
    ngx_http_maintenance_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);


/*
 * ngx_http_maintenance_sentinel.c: the master through Redis Sentinel
 * (worker 0).  _master gives the master's address (NGX_OK) or starts a
 * discovery (NGX_AGAIN); with "confirmed", only a master the command
 * link's ROLE confirmed (the subscriber waits for it).  The "resolved"
 * hook (set by the link file) runs from the event loop, never from inside
 * a call: after a discovery (NGX_OK or NGX_ERROR), after +switch-master
 * and after a confirmation (NGX_OK): links waiting connect, links
 * connected elsewhere reconnect.
 */

typedef void (*ngx_http_maintenance_resolved_pt)(
    ngx_http_maintenance_sentinel_t *sn, ngx_int_t rc, const char *why);

ngx_http_maintenance_sentinel_t *ngx_http_maintenance_sentinel_create(
    ngx_http_maintenance_sync_t *sync,
    ngx_http_maintenance_resolved_pt resolved);
ngx_int_t ngx_http_maintenance_sentinel_master(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t confirmed,
    struct sockaddr **sockaddr, socklen_t *socklen);
ngx_str_t *ngx_http_maintenance_sentinel_addr(
    ngx_http_maintenance_sentinel_t *sn);
ngx_http_maintenance_sync_t *ngx_http_maintenance_sentinel_sync(
    ngx_http_maintenance_sentinel_t *sn);
void ngx_http_maintenance_sentinel_stale(ngx_http_maintenance_sentinel_t *sn);
void ngx_http_maintenance_sentinel_not_master(
    ngx_http_maintenance_sentinel_t *sn, const char *role);
void ngx_http_maintenance_sentinel_confirmed(
    ngx_http_maintenance_sentinel_t *sn);
void ngx_http_maintenance_sentinel_stop(ngx_http_maintenance_sentinel_t *sn);


/* ngx_http_maintenance_heartbeat.c: P:edge:<node> and P:edges */
void ngx_http_maintenance_heartbeat(ngx_http_maintenance_sync_t *sync);


/*
 * ngx_http_maintenance_state_file.c: the override and the state file.
 * Only the zone's owner (sh->owner_pid) writes the state file: _write
 * starts a write when the state is dirty (on a thread where nginx has
 * them), _init merges the file a new owner inherits, _exit writes what
 * an exiting owner still owes.
 */
void ngx_http_maintenance_check_override(ngx_http_maintenance_sync_t *sync);
ngx_int_t ngx_http_maintenance_state_file_write(
    ngx_http_maintenance_sync_t *sync);
ngx_int_t ngx_http_maintenance_state_file_init(
    ngx_http_maintenance_sync_t *sync, ngx_cycle_t *cycle);
void ngx_http_maintenance_state_file_exit(ngx_http_maintenance_sync_t *sync);

/* at configuration load: the workers can write the file's directory */
ngx_int_t ngx_http_maintenance_state_file_conf(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf);

/* reads the state file into the zone at start (before any worker) */
ngx_int_t ngx_http_maintenance_state_file_load(ngx_cycle_t *cycle,
    ngx_http_maintenance_main_conf_t *mmcf);

/*
 * ngx_http_maintenance_state_load.c: the state file at configuration load
 * and start (_conf, _load above), the one parser of its lines and the
 * names both files use.
 */
#define NGX_HTTP_MAINTENANCE_STATE_FILE_MAX  65536

/* a line of the file: "scope mode epoch retry_after since" */
typedef struct {
    u_char                            *name;   /* into the line */
    size_t                             len;
    mig_mode_e                         mode;
    uint64_t                           epoch;
    uint64_t                           retry_after;
    int64_t                            since;
} ngx_http_maintenance_state_line_t;

ngx_int_t ngx_http_maintenance_state_file_parse(u_char *p, size_t len,
    ngx_http_maintenance_state_line_t *l);
u_char *ngx_http_maintenance_state_file_dir(ngx_pool_t *pool,
    ngx_str_t *path);
#if (NGX_THREADS)
extern ngx_str_t  ngx_http_maintenance_pool_name;   /* nginx's "default" */
#endif


/*
 * ngx_http_maintenance_set.c, ngx_http_maintenance_set_redis.c: the
 * handlers of the directives in ngx_http_maintenance_conf.c's table
 */
char *ngx_http_maintenance_set_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_poll(ngx_conf_t *cf, void *post, void *data);
char *ngx_http_maintenance_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_scope(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_bypass_cidr(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maintenance_set_bypass_token(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_maintenance_set_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_maintenance_set_secret_file(ngx_conf_t *cf,
    ngx_str_t *path, ngx_str_t *out);
char *ngx_http_maintenance_set_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_maintenance_set_redis_sentinel(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


#endif /* NGX_HTTP_MAINTENANCE_MODULE_H */
