/*
 * ngx_http_maintenance_reply.h: what worker 0 accepts from Redis: the
 * reader's limits and every reply-shape check, without nginx types.
 */

#ifndef NGX_HTTP_MAINTENANCE_REPLY_H
#define NGX_HTTP_MAINTENANCE_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "mig.h"


/* what one connection may buffer of replies not yet complete */
#define NGX_HTTP_MAINTENANCE_REPLY_IN_MAX      (4 * 1024 * 1024)

/* elements of one array (a state hash has at most 128) */
#define NGX_HTTP_MAINTENANCE_REPLY_ELTS_MAX    4096

/* field and value pairs in a state hash */
#define NGX_HTTP_MAINTENANCE_REPLY_FIELDS_MAX  64

/* what one read hands the reader at most */
#define NGX_HTTP_MAINTENANCE_REPLY_CHUNK       16384


/* what a reply is, to the command it answers */
#define NGX_HTTP_MAINTENANCE_REPLY_OK          0  /* the shape asked for */
#define NGX_HTTP_MAINTENANCE_REPLY_MALFORMED   1  /* any other: the link
                                                     goes */
#define NGX_HTTP_MAINTENANCE_REPLY_REFUSED     2  /* an error about the
                                                     server */
#define NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED  3  /* the confirmation */
#define NGX_HTTP_MAINTENANCE_REPLY_EVENT       4  /* "S epoch", decoded */
#define NGX_HTTP_MAINTENANCE_REPLY_NOEVENT     5  /* a message that is no
                                                     event: a hint lost */
#define NGX_HTTP_MAINTENANCE_REPLY_MISSING     6  /* no state key */
#define NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE   7  /* a malformed state:
                                                     the last good stays */
#define NGX_HTTP_MAINTENANCE_REPLY_FAILED      8  /* a heartbeat refused */


/* an address from a sentinel as text, NUL included (INET6_ADDRSTRLEN) */
#define NGX_HTTP_MAINTENANCE_IP_LEN            46


/*
 * A reader with the limits above.  *too_large (the caller's, alive as long
 * as the reader) is set when an array longer than ELTS_MAX was refused
 * before it was allocated.  NULL: out of memory.
 */
redisReader *ngx_http_maintenance_reply_reader(int *too_large);

/*
 * The next complete reply: 1 and *reply (the caller frees it), 0 when none
 * is complete yet, -1 when the bytes are no RESP or over a limit (*err
 * says why; the connection must go).
 */
int ngx_http_maintenance_reply_next(redisReader *reader,
    const int *too_large, redisReply **reply, const char **err);

/* the reader holds more than IN_MAX bytes of replies not yet complete */
int ngx_http_maintenance_reply_over(redisReader *reader);

/* AUTH, SELECT: OK, REFUSED, MALFORMED */
int ngx_http_maintenance_reply_handshake(const redisReply *r);

/*
 * The subscriber's replies: ["subscribe", channel, count] once (not yet
 * subscribed), then ["message", channel, payload].  SUBSCRIBED, EVENT
 * (scope and *epoch set), NOEVENT, REFUSED (an error before the
 * confirmation), MALFORMED (*why says what).
 */
int ngx_http_maintenance_reply_pubsub(const redisReply *r, int subscribed,
    char *scope, size_t scope_size, uint64_t *epoch, const char **why);

/*
 * HGETALL P:state:S: OK (*st is a whole valid record), MISSING (an empty
 * hash), BAD_STATE (err says why, WRONGTYPE included), REFUSED (any other
 * error: about the server, not the key).
 */
int ngx_http_maintenance_reply_state(const redisReply *r, mig_state_t *st,
    char *err, size_t errlen);

/*
 * The heartbeat's MULTI and queued commands (exec 0: a status each) and
 * its EXEC (an array, nil when aborted): OK, FAILED (*bad the error reply,
 * or *why), MALFORMED (*why).
 */
int ngx_http_maintenance_reply_heartbeat(const redisReply *r, int exec,
    const redisReply **bad, const char **why);

/*
 * Redis Sentinel (ngx_http_maintenance_sentinel.c, and ROLE on the command
 * link).  SENTINEL get-master-addr-by-name: [ip, port]: 0, nil (the
 * sentinel does not know the name): 1, else -1.  The address is what the
 * sentinel sent (numeric or not: ngx_parse_addr() decides), non-empty,
 * without NUL, terminated within iplen; the port 1..65535.
 */
int ngx_http_maintenance_reply_master_addr(const redisReply *r, char *ip,
    size_t iplen, int *port);

/* one entry of SENTINEL sentinels (field, value pairs): its ip and port */
int ngx_http_maintenance_reply_sentinel(const redisReply *r, char *ip,
    size_t iplen, int *port);

/* ROLE: the first element, the role ("master", "slave", "sentinel") */
int ngx_http_maintenance_reply_role(const redisReply *r, char *role,
    size_t rolelen);

/*
 * The +switch-master subscription's replies, queued or pushed alike:
 * OK (AUTH's status before the confirmation, a pong: nothing to do),
 * SUBSCRIBED, EVENT (a +switch-master message: its payload is
 * r->element[2], a string), REFUSED (an error), MALFORMED (*why: what the
 * connection is closed with).
 */
int ngx_http_maintenance_reply_switch_sub(const redisReply *r,
    int subscribed, const char **why);

/*
 * +switch-master's payload "name oldip oldport newip newport": 1 and the
 * new address if the name is exactly ours, 0 if another master's, -1
 * malformed.  The address is hex digits, '.' and ':' only.
 */
int ngx_http_maintenance_switch_master_parse(const char *msg, size_t len,
    const char *name, char *ip, size_t iplen, int *port);

/*
 * A string, status or error reply as a C string into buf (size > 0,
 * always terminated): 0, or -1 if empty, too long (cut) or with a NUL
 */
int ngx_http_maintenance_reply_cstr(const redisReply *r, char *buf,
    size_t size);


#endif /* NGX_HTTP_MAINTENANCE_REPLY_H */
