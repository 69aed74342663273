/*
 * ngx_http_maintenance_sentinel_int.h: what the Sentinel files share: a
 * sentinel, the state of the Sentinel client, its internal calls.
 */

#ifndef NGX_HTTP_MAINTENANCE_SENTINEL_INT_H
#define NGX_HTTP_MAINTENANCE_SENTINEL_INT_H

#include "ngx_http_maintenance_module.h"

#include <hiredis/hiredis.h>


/* a sentinel is asked with a short timeout: the next one may answer */
#define NGX_HTTP_MAINTENANCE_SENTINEL_TIMEOUT  1000

/* the +switch-master subscription is pinged: a hung sentinel is noticed */
#define NGX_HTTP_MAINTENANCE_SENTINEL_PING     1000

#define NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MIN  100
#define NGX_HTTP_MAINTENANCE_SENTINEL_BACKOFF_MAX  5000


/*
 * A sentinel: numeric, or a configured name resolved on each connect
 * (with "resolver"); then sockaddr is the address of it that answered
 * last (socklen 0: none yet), tried first while the name still has it.
 */
typedef struct {
    ngx_sockaddr_t                     sockaddr;
    socklen_t                          socklen;
    u_char                             text[NGX_HTTP_MAINTENANCE_ADDR_LEN];
    ngx_str_t                          host;     /* len 0: numeric */
    in_port_t                          port;
    ngx_uint_t                         unresolved; /* a failure logged */
    u_char                             resolved[NGX_SOCKADDR_STRLEN];
    size_t                             resolved_len; /* last logged */
    uint32_t                           answer;   /* its addresses, in any
                                                    order, last logged */
} ngx_http_maintenance_sentinel_addr_t;


struct ngx_http_maintenance_sentinel_s {
    ngx_http_maintenance_sync_t       *sync;
    ngx_log_t                         *log;
    ngx_str_t                          name;     /* the master's */
    ngx_str_t                          password; /* of the sentinels */
    ngx_pool_t                        *pool;     /* for ngx_parse_addr() */

    /* configured first (never dropped), then learned, bounded */
    ngx_http_maintenance_sentinel_addr_t  addrs[
                                          NGX_HTTP_MAINTENANCE_SENTINELS_MAX];
    ngx_uint_t                         n;
    ngx_uint_t                         nconf;    /* configured */
    ngx_uint_t                         good;     /* answered last: asked
                                                    first */

    /*
     * The "sentinels" answer of sentinel peers_from (valid), kept until
     * the master it names is confirmed: then a learned sentinel it does
     * not list is dropped.  "overflow": it listed more than fit here.
     */
    ngx_sockaddr_t                     peers[
                                          NGX_HTTP_MAINTENANCE_SENTINELS_MAX];
    socklen_t                          peerlens[
                                          NGX_HTTP_MAINTENANCE_SENTINELS_MAX];
    ngx_uint_t                         npeers;
    ngx_uint_t                         peers_from;
    ngx_uint_t                         peers_valid;
    ngx_uint_t                         peers_overflow;

    /*
     * A discovery: each sentinel in turn, from "good", on a short-lived
     * connection, until one names a master.  After a ROLE check refused
     * that master the discovery resumes at the next sentinel ("resume"),
     * so a stale sentinel is asked once per round, not in a loop.
     */
    ngx_http_maintenance_redis_t       query;
    ngx_event_t                        step;     /* posted: the next one */
    ngx_uint_t                         querying;
    ngx_uint_t                         cur;
    ngx_uint_t                         tried;
    ngx_uint_t                         found;    /* cur named a master */
    ngx_uint_t                         noted;    /* cur's failure noted */
    ngx_http_maintenance_resolve_t     query_rs; /* cur, a name */
    ngx_uint_t                         qleft;    /* its addresses not
                                                    asked yet this round */
    ngx_sockaddr_t                     qaddr;    /* the one asked */
    socklen_t                          qaddrlen;
    u_char                             qtext[NGX_HTTP_MAINTENANCE_ADDR_LEN
                                             + NGX_SOCKADDR_STRLEN + 4];
    ngx_sockaddr_t                     cand;
    socklen_t                          candlen;

    /*
     * cur named the master by host name (the sentinels' resolve-hostnames
     * yes): resolved with "resolver" before the discovery ends
     */
    ngx_uint_t                         cand_named;
    u_char                             cand_host[
                                       NGX_HTTP_MAINTENANCE_RESOLVE_NAME + 1];
    in_port_t                          cand_port;
    ngx_http_maintenance_resolve_t     cand_rs;
    u_char                             cand_logged[
                                       NGX_HTTP_MAINTENANCE_RESOLVE_NAME
                                       + NGX_SOCKADDR_STRLEN + 2];
    u_char                             why[NGX_HTTP_MAINTENANCE_TRIED_LEN];
    size_t                             whylen;
    ngx_uint_t                         failed_logged;

    /* the master: from a discovery or a +switch-master */
    ngx_sockaddr_t                     master;
    socklen_t                          masterlen;
    ngx_uint_t                         known;
    ngx_uint_t                         confirmed; /* by ROLE */
    ngx_uint_t                         stale;    /* rediscover first */
    ngx_uint_t                         resume;
    ngx_uint_t                         from;     /* the sentinel it came
                                                    from */
    ngx_uint_t                         role_logged;
    ngx_str_t                          text;     /* for the links' logs */
    u_char                             text_buf[NGX_HTTP_MAINTENANCE_ADDR_LEN
                                                + MIG_NAME_MAX + 32];

    /* one +switch-master subscription, on one sentinel at a time */
    ngx_http_maintenance_redis_t       sub;
    ngx_uint_t                         sub_idx;
    ngx_http_maintenance_resolve_t     sub_rs;   /* sub_idx, a name */
    ngx_sockaddr_t                     sub_addr;
    ngx_uint_t                         sub_ready;
    ngx_uint_t                         sub_fails; /* in a row */
    ngx_uint_t                         sub_down_logged;
    ngx_uint_t                         sub_ever;
    ngx_msec_t                         sub_backoff;
    ngx_event_t                        sub_timer;
    ngx_event_t                        ping;
    u_char                             sub_why[NGX_HTTP_MAINTENANCE_TRIED_LEN];
    size_t                             sub_whylen;

    /* the discovery (_round): the subscription file calls up through it */
    void                             (*discover)(
                                          ngx_http_maintenance_sentinel_t *sn);

    ngx_http_maintenance_resolved_pt   resolved;
    ngx_event_t                        notify;   /* posted: "resolved" */
    ngx_uint_t                         exiting;
};


/* ngx_http_maintenance_sentinel_addrs.c */

void ngx_http_maintenance_sentinel_set_master(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa,
    socklen_t len, ngx_uint_t from, const char *how);
ngx_int_t ngx_http_maintenance_sentinel_add(
    ngx_http_maintenance_sentinel_t *sn, struct sockaddr *sa,
    socklen_t len);
void ngx_http_maintenance_sentinel_learned(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t save);
void ngx_http_maintenance_sentinel_learn(
    ngx_http_maintenance_sentinel_t *sn);
void ngx_http_maintenance_sentinel_follow(
    ngx_http_maintenance_sentinel_t *sn);
ngx_int_t ngx_http_maintenance_sentinel_parse(
    ngx_http_maintenance_sentinel_t *sn, const char *ip, int port,
    ngx_sockaddr_t *sa, socklen_t *socklen);
ngx_uint_t ngx_http_maintenance_sentinel_host_name(const char *s);
struct sockaddr *ngx_http_maintenance_sentinel_pick(
    ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_sentinel_addr_t *a,
    ngx_http_maintenance_resolve_t *rs, socklen_t *socklen);
ngx_int_t ngx_http_maintenance_sentinel_unresolved(
    ngx_http_maintenance_sentinel_t *sn,
    ngx_http_maintenance_sentinel_addr_t *a,
    ngx_http_maintenance_resolve_t *rs);
void ngx_http_maintenance_sentinel_zone(
    ngx_http_maintenance_sentinel_t *sn, ngx_uint_t reachable, u_char *text);
void ngx_http_maintenance_sentinel_zone_master(
    ngx_http_maintenance_sentinel_t *sn);
void ngx_http_maintenance_sentinel_zone_sub(
    ngx_http_maintenance_sentinel_t *sn, u_char *text);
ngx_uint_t ngx_http_maintenance_sentinel_exiting(
    ngx_http_maintenance_sentinel_t *sn);
ngx_int_t ngx_http_maintenance_sentinel_auth(
    ngx_http_maintenance_sentinel_t *sn, ngx_http_maintenance_redis_t *rc,
    ngx_http_maintenance_redis_reply_pt handler);


/* ngx_http_maintenance_sentinel_sub.c */

void ngx_http_maintenance_sentinel_sub_start(
    ngx_http_maintenance_sentinel_t *sn);
void ngx_http_maintenance_sentinel_sub_cb(
    ngx_http_maintenance_redis_t *rc, redisReply *reply, void *data);
void ngx_http_maintenance_sentinel_sub_closed(
    ngx_http_maintenance_redis_t *rc, const char *why);
void ngx_http_maintenance_sentinel_sub_reconnect(ngx_event_t *ev);
void ngx_http_maintenance_sentinel_ping(ngx_event_t *ev);


#endif /* NGX_HTTP_MAINTENANCE_SENTINEL_INT_H */
