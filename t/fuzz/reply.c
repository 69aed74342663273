/*
 * reply.c: libFuzzer target of the module's Redis reply handling: raw bytes
 * through hiredis's reader with the module's limits, every reply through
 * the checks worker 0 makes, in the order its links ask for them (Redis,
 * and through Sentinel: discovery, ROLE, the +switch-master subscription).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "mig.h"
#include "ngx_http_maintenance_reply.h"


/* the commands a link has queued, in the order worker 0 sends them */
#define Q_AUTH        0
#define Q_SELECT      1
#define Q_SUBSCRIBE   2
#define Q_HGETALL     3
#define Q_MULTI       4    /* and DEL, HSET, EXPIRE, ZADD: QUEUED each */
#define Q_EXEC        5
#define Q_PUSH        6    /* nothing queued: the subscriber's messages */
#define Q_ROLE        7
#define Q_MASTER      8    /* SENTINEL get-master-addr-by-name */
#define Q_PEERS       9    /* SENTINEL sentinels */

/* the links, as worker 0 opens them */
#define L_CMD         0    /* AUTH, SELECT, polls and heartbeats */
#define L_SUB         1    /* AUTH, SUBSCRIBE P:events, messages */
#define L_CMD_SN      2    /* as L_CMD, ROLE before the first poll */
#define L_QUERY       3    /* a sentinel asked: the two SENTINEL commands */
#define L_QUERY_AUTH  4    /* the same, AUTH first */
#define L_SWITCH      5    /* a sentinel: [AUTH], SUBSCRIBE +switch-master,
                              messages and pongs */

/* the master's name in the seeds (Debian's sentinel.conf has mymaster) */
#define NAME          "mymaster"

/* scopes a command link polls in one round */
#define NSCOPES       3

/* a heartbeat: MULTI DEL HSET EXPIRE ZADD EXEC */
#define HB_LEN        6


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void link_run(const uint8_t *data, size_t size, int kind,
    size_t (*chunk)(size_t *seed));
static int link_reply(int kind, unsigned long n, int *subscribed,
    const redisReply *r);
static int sentinel_reply(int kind, unsigned long n, int *subscribed,
    const redisReply *r);
static void every_check(const uint8_t *data, size_t size);
static void check_reply(const redisReply *r);
static void check_refused(const redisReply *r);
static void check_sentinel(const redisReply *r);
static int check_master_addr(const redisReply *r);
static int check_peer(const redisReply *r);
static int check_role(const redisReply *r, int *master);
static int check_switch_sub(const redisReply *r, int subscribed);
static void check_switch(const char *msg, size_t len);
static int switch_ref(const char *msg, size_t len, const char *name,
    const char **ip, size_t *iplen, int *port);
static void check_cstr(const redisReply *r);
static void check_ip(const char *ip, size_t size, const redisReply *from);
static int ref_port(const char *s, size_t len);
static int ref_is(const redisReply *r, const char *s);
static size_t chunk_recv(size_t *seed);
static size_t chunk_split(size_t *seed);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /*
     * the command link (AUTH, SELECT, polls and heartbeats), read as
     * recv() hands it over, 16 KB at most
     */
    link_run(data, size, L_CMD, chunk_recv);

    /* the subscriber (AUTH, SUBSCRIBE, messages), TCP splitting anywhere */
    link_run(data, size, L_SUB, chunk_split);

    /* through Sentinel: the discovery, without and with AUTH */
    link_run(data, size, L_QUERY, chunk_split);
    link_run(data, size, L_QUERY_AUTH, chunk_recv);

    /* the command link's ROLE, then its polls */
    link_run(data, size, L_CMD_SN, chunk_recv);

    /* the +switch-master subscription */
    link_run(data, size, L_SWITCH, chunk_split);

    /* every check on every reply, whatever came before it */
    every_check(data, size);

    return 0;
}


/*
 * As ngx_http_maintenance_redis.c reads: feed a chunk, take every complete
 * reply, hand it to the check of the command it answers; the connection
 * goes on a reader error, on a reply over the limits, and where the module
 * drops the link (refused, malformed).
 */

static void
link_run(const uint8_t *data, size_t size, int kind,
    size_t (*chunk)(size_t *seed))
{
    int             too_large, subscribed, rv;
    size_t          off, n, seed;
    redisReply     *r;
    redisReader    *reader;
    const char     *err;
    unsigned long   replies;

    reader = ngx_http_maintenance_reply_reader(&too_large);
    if (reader == NULL) {
        return;
    }

    seed = size;
    subscribed = 0;
    replies = 0;

    for (off = 0; off < size; off += n) {
        n = chunk(&seed);
        if (n > size - off) {
            n = size - off;
        }

        if (redisReaderFeed(reader, (const char *) data + off, n)
            != REDIS_OK)
        {
            break;
        }

        for ( ;; ) {
            r = NULL;

            rv = ngx_http_maintenance_reply_next(reader, &too_large, &r,
                                                 &err);
            if (rv == -1) {
                if (err == NULL || err[0] == '\0') {
                    abort();
                }

                goto done;
            }

            if (rv == 0) {
                break;
            }

            rv = link_reply(kind, replies++, &subscribed, r);

            freeReplyObject(r);

            if (rv == 1) {
                /* the connection ends: the next one reads what follows */
                replies = 0;
                subscribed = 0;
                continue;
            }

            if (rv != 0) {
                goto done;
            }
        }

        if (ngx_http_maintenance_reply_over(reader)) {
            break;
        }
    }

done:

    redisReaderFree(reader);
}


/*
 * The n-th reply on a link: 0 it goes on, 1 the connection ends and the
 * next one (another sentinel, a reconnect) reads what follows, -1 the
 * module drops the link.
 */

static int
link_reply(int kind, unsigned long n, int *subscribed, const redisReply *r)
{
    int                q, rv;
    char               err[160], scope[MIG_NAME_MAX + 1];
    uint64_t           epoch;
    mig_state_t        st;
    const char        *why;
    const redisReply  *bad;

    check_reply(r);
    check_sentinel(r);

    if (kind == L_QUERY || kind == L_QUERY_AUTH || kind == L_SWITCH) {
        return sentinel_reply(kind, n, subscribed, r);
    }

    /* AUTH (and SELECT on the command link) first, as link_open */

    if (kind == L_SUB) {
        q = n == 0 ? Q_AUTH : n == 1 ? Q_SUBSCRIBE : Q_PUSH;

    } else if (n < 2) {
        q = n == 0 ? Q_AUTH : Q_SELECT;

    } else if (kind == L_CMD_SN && n == 2) {
        q = Q_ROLE;

    } else {
        n = (n - (kind == L_CMD_SN ? 3 : 2)) % (NSCOPES + HB_LEN);
        q = n < NSCOPES ? Q_HGETALL
                        : n == NSCOPES + HB_LEN - 1 ? Q_EXEC : Q_MULTI;
    }

    switch (q) {

    case Q_AUTH:
    case Q_SELECT:
        rv = ngx_http_maintenance_reply_handshake(r);

        if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
            check_refused(r);
        }

        return rv == NGX_HTTP_MAINTENANCE_REPLY_OK ? 0 : -1;

    case Q_ROLE:
        /* role_cb: an error is refused, a replica or a sentinel reroutes */
        if (r->type == REDIS_REPLY_ERROR) {
            check_refused(r);
            return 1;
        }

        if (check_role(r, &rv) != 0 || !rv) {
            return 1;
        }

        return 0;

    case Q_HGETALL:
        rv = ngx_http_maintenance_reply_state(r, &st, err, sizeof(err));

        if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
            check_refused(r);
            return -1;
        }

        return 0;

    case Q_MULTI:
    case Q_EXEC:
        rv = ngx_http_maintenance_reply_heartbeat(r, q == Q_EXEC, &bad,
                                                  &why);
        return rv == NGX_HTTP_MAINTENANCE_REPLY_MALFORMED ? -1 : 0;

    default: /* Q_SUBSCRIBE, Q_PUSH */
        rv = ngx_http_maintenance_reply_pubsub(r, *subscribed, scope,
                                               sizeof(scope), &epoch, &why);

        switch (rv) {

        case NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED:
            *subscribed = 1;
            return 0;

        case NGX_HTTP_MAINTENANCE_REPLY_EVENT:
        case NGX_HTTP_MAINTENANCE_REPLY_NOEVENT:
            return 0;

        case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
            check_refused(r);
            return -1;

        default:
            return -1;
        }
    }
}


/*
 * A sentinel's connections, as ngx_http_maintenance_sentinel.c reads them:
 * the discovery (auth_cb, addr_cb, peers_cb: the connection ends after
 * the list of sentinels or at the first failure, and the next sentinel is
 * asked) and the subscription (sub_cb, and _switch on each message).
 */

static int
sentinel_reply(int kind, unsigned long n, int *subscribed,
    const redisReply *r)
{
    int     q, rv;
    size_t  i;

    if (kind == L_SWITCH) {
        rv = check_switch_sub(r, *subscribed);

        switch (rv) {

        case NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED:
            *subscribed = 1;
            return 0;

        case NGX_HTTP_MAINTENANCE_REPLY_EVENT:
            /* a malformed or another master's message keeps the link */
            check_switch(r->element[2]->str, r->element[2]->len);
            return 0;

        case NGX_HTTP_MAINTENANCE_REPLY_OK:
            return 0;

        default:
            return 1;
        }
    }

    if (kind == L_QUERY_AUTH) {
        if (n == 0) {
            q = Q_AUTH;

        } else {
            q = n == 1 ? Q_MASTER : Q_PEERS;
        }

    } else {
        q = n == 0 ? Q_MASTER : Q_PEERS;
    }

    switch (q) {

    case Q_AUTH:
        rv = ngx_http_maintenance_reply_handshake(r);

        if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
            check_refused(r);
        }

        return rv == NGX_HTTP_MAINTENANCE_REPLY_OK ? 0 : 1;

    case Q_MASTER:
        if (r->type == REDIS_REPLY_ERROR) {
            check_refused(r);
            return 1;
        }

        return check_master_addr(r) == 0 ? 0 : 1;

    default: /* Q_PEERS: the others are added, the connection ends */
        if (r->type == REDIS_REPLY_ARRAY) {
            for (i = 0; i < r->elements; i++) {
                (void) check_peer(r->element[i]);
            }
        }

        return 1;
    }
}


/* the whole input at once, each reply through every check */

static void
every_check(const uint8_t *data, size_t size)
{
    int            too_large, rv;
    redisReply    *r;
    redisReader   *reader;
    const char    *err;

    reader = ngx_http_maintenance_reply_reader(&too_large);
    if (reader == NULL) {
        return;
    }

    if (redisReaderFeed(reader, (const char *) data, size) == REDIS_OK) {
        for ( ;; ) {
            r = NULL;

            rv = ngx_http_maintenance_reply_next(reader, &too_large, &r,
                                                 &err);
            if (rv != 1) {
                break;
            }

            check_reply(r);
            check_sentinel(r);
            freeReplyObject(r);
        }
    }

    redisReaderFree(reader);
}


/*
 * Every check, and what the module relies on in each answer: a refusal is
 * an error reply with text (link_refused copies it), a malformed reply
 * says why, an event names a valid scope, a good state is a whole valid
 * record.
 */

static void
check_reply(const redisReply *r)
{
    int                rv, ready, exec;
    char               err[160], scope[MIG_NAME_MAX + 1];
    size_t             len;
    uint64_t           epoch;
    mig_state_t        st;
    const char        *why;
    const redisReply  *bad;

    rv = ngx_http_maintenance_reply_handshake(r);

    if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
        check_refused(r);
    }

    for (ready = 0; ready < 2; ready++) {
        why = NULL;
        rv = ngx_http_maintenance_reply_pubsub(r, ready, scope,
                                               sizeof(scope), &epoch, &why);
        switch (rv) {

        case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
            check_refused(r);
            break;

        case NGX_HTTP_MAINTENANCE_REPLY_MALFORMED:
            if (why == NULL || why[0] == '\0') {
                abort();
            }
            break;

        case NGX_HTTP_MAINTENANCE_REPLY_EVENT:
            len = strnlen(scope, sizeof(scope));
            if (len == sizeof(scope)
                || mig_scope_valid(scope, len, NULL, 0) != MIG_OK)
            {
                abort();
            }
            break;

        case NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED:
            if (ready) {
                abort();
            }
            break;

        case NGX_HTTP_MAINTENANCE_REPLY_NOEVENT:
            break;

        default:
            abort();
        }
    }

    err[0] = '\0';
    rv = ngx_http_maintenance_reply_state(r, &st, err, sizeof(err));

    switch (rv) {

    case NGX_HTTP_MAINTENANCE_REPLY_OK:
        if ((st.mode != MIG_MODE_ON && st.mode != MIG_MODE_OFF)
            || st.retry_after > MIG_RETRY_AFTER_MAX
            || mig_text_valid(st.reason, strlen(st.reason), NULL, 0)
               != MIG_OK
            || mig_text_valid(st.release, strlen(st.release), NULL, 0)
               != MIG_OK
            || mig_text_valid(st.actor, strlen(st.actor), NULL, 0)
               != MIG_OK)
        {
            abort();
        }
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE:
        /* the malformed log line prints it */
        len = strnlen(err, sizeof(err));
        if (len == 0 || len == sizeof(err)) {
            abort();
        }
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
        check_refused(r);
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_MISSING:
        break;

    default:
        abort();
    }

    for (exec = 0; exec < 2; exec++) {
        rv = ngx_http_maintenance_reply_heartbeat(r, exec, &bad, &why);

        switch (rv) {

        case NGX_HTTP_MAINTENANCE_REPLY_OK:
            break;

        case NGX_HTTP_MAINTENANCE_REPLY_FAILED:
            if ((bad == NULL) == (why == NULL)) {
                abort();
            }

            if (bad) {
                check_refused(bad);
            }
            break;

        case NGX_HTTP_MAINTENANCE_REPLY_MALFORMED:
            if (why == NULL || why[0] == '\0') {
                abort();
            }
            break;

        default:
            abort();
        }
    }
}


/*
 * Every Sentinel check on one reply, and on its elements (each could be
 * a reply on its own), and what ngx_http_maintenance_sentinel.c relies on
 * in each answer.
 */

static void
check_sentinel(const redisReply *r)
{
    int     master;
    size_t  i;

    check_cstr(r);
    (void) check_master_addr(r);
    (void) check_peer(r);
    (void) check_role(r, &master);
    (void) check_switch_sub(r, 0);
    (void) check_switch_sub(r, 1);

    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        check_switch(r->str, r->len);
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (i = 0; i < r->elements; i++) {
        check_cstr(r->element[i]);
        (void) check_peer(r->element[i]);

        if (r->element[i]->type == REDIS_REPLY_STRING) {
            check_switch(r->element[i]->str, r->element[i]->len);
        }
    }
}


/*
 * get-master-addr-by-name: 0 only for [ip, port] as two strings, the ip
 * as sent, the port its decimal value in 1..65535; 1 only for nil
 */

static int
check_master_addr(const redisReply *r)
{
    int   rv, port;
    char  ip[NGX_HTTP_MAINTENANCE_IP_LEN];

    memset(ip, 'x', sizeof(ip));
    port = -1;

    rv = ngx_http_maintenance_reply_master_addr(r, ip, sizeof(ip), &port);

    switch (rv) {

    case 0:
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
            || r->element[1]->type != REDIS_REPLY_STRING
            || port != ref_port(r->element[1]->str, r->element[1]->len))
        {
            abort();
        }

        check_ip(ip, sizeof(ip), r->element[0]);
        break;

    case 1:
        if (r->type != REDIS_REPLY_NIL) {
            abort();
        }
        break;

    case -1:
        if (r->type == REDIS_REPLY_NIL) {
            abort();
        }
        break;

    default:
        abort();
    }

    return rv;
}


/*
 * One entry of SENTINEL sentinels: 0 only for field, value strings with
 * an "ip" and a "port", the address as the last "ip" field sent and the
 * port the last "port" field's value
 */

static int
check_peer(const redisReply *r)
{
    int                rv, port, want;
    char               ip[NGX_HTTP_MAINTENANCE_IP_LEN];
    size_t             i;
    const redisReply  *last_ip;

    memset(ip, 'x', sizeof(ip));

    rv = ngx_http_maintenance_reply_sentinel(r, ip, sizeof(ip), &port);

    if (rv == -1) {
        return rv;
    }

    if (rv != 0 || r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        abort();
    }

    last_ip = NULL;
    want = 0;

    for (i = 0; i < r->elements; i += 2) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || r->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            abort();
        }

        if (ref_is(r->element[i], "ip")) {
            last_ip = r->element[i + 1];

        } else if (ref_is(r->element[i], "port")) {
            want = ref_port(r->element[i + 1]->str, r->element[i + 1]->len);
        }
    }

    if (last_ip == NULL || want != port) {
        abort();
    }

    check_ip(ip, sizeof(ip), last_ip);

    return rv;
}


/* ROLE: the first element exactly, and "master" only for "master" */

static int
check_role(const redisReply *r, int *master)
{
    int   rv;
    char  role[32];

    memset(role, 'x', sizeof(role));
    *master = 0;

    /* as role_cb: a role[32] and strcmp() */
    rv = ngx_http_maintenance_reply_role(r, role, sizeof(role));

    if (strnlen(role, sizeof(role)) == sizeof(role)
        && r->type == REDIS_REPLY_ARRAY && r->elements > 0
        && r->element[0]->type == REDIS_REPLY_STRING)
    {
        /* role_cb prints it after a refusal too */
        abort();
    }

    if (rv != 0) {
        return rv;
    }

    check_ip(role, sizeof(role), r->element[0]);

    *master = strcmp(role, "master") == 0;

    if (*master != (r->element[0]->len == 6
                    && memcmp(r->element[0]->str, "master", 6) == 0))
    {
        abort();
    }

    return rv;
}


/*
 * The subscription: the confirmation only before it, a message only
 * after it and with a string payload, a reason for a malformed one
 */

static int
check_switch_sub(const redisReply *r, int subscribed)
{
    int          rv;
    const char  *why;

    why = NULL;

    rv = ngx_http_maintenance_reply_switch_sub(r, subscribed, &why);

    switch (rv) {

    case NGX_HTTP_MAINTENANCE_REPLY_OK:
        if (!(r->type == REDIS_REPLY_STATUS && !subscribed)
            && !(r->type == REDIS_REPLY_ARRAY && r->elements >= 2
                 && ref_is(r->element[0], "pong")))
        {
            abort();
        }
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_REFUSED:
        check_refused(r);
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_MALFORMED:
        if (why == NULL || strncmp(why, "malformed reply: ", 17) != 0) {
            abort();
        }
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED:
        if (subscribed || r->type != REDIS_REPLY_ARRAY || r->elements != 3
            || !ref_is(r->element[0], "subscribe")
            || r->element[2]->type != REDIS_REPLY_INTEGER)
        {
            abort();
        }
        break;

    case NGX_HTTP_MAINTENANCE_REPLY_EVENT:
        /* _switch reads element[2] as a string */
        if (!subscribed || r->type != REDIS_REPLY_ARRAY || r->elements != 3
            || !ref_is(r->element[0], "message")
            || !ref_is(r->element[1], "+switch-master")
            || r->element[2]->type != REDIS_REPLY_STRING
            || r->element[2]->str == NULL)
        {
            abort();
        }
        break;

    default:
        abort();
    }

    return rv;
}


/*
 * A +switch-master payload against the reference below, for our name,
 * names that differ by one byte, and the message's own first word as the
 * name (so that any payload can name our master)
 */

static void
check_switch(const char *msg, size_t len)
{
    int          k, rv, want, port, want_port;
    char         ip[NGX_HTTP_MAINTENANCE_IP_LEN], name[MIG_NAME_MAX + 2];
    size_t       n, want_len;
    const char  *want_ip, *w;

    for (k = 0; k < 4; k++) {
        switch (k) {

        case 0:
            memcpy(name, NAME, sizeof(NAME));
            break;

        case 1:
            memcpy(name, NAME "2", sizeof(NAME "2"));
            break;

        case 2:
            memcpy(name, NAME, sizeof(NAME) - 2);
            name[sizeof(NAME) - 2] = '\0';
            break;

        default:
            /* the first word, if it is a name nginx would take */
            for (w = msg; w < msg + len && *w == ' '; w++) {
                /* void */
            }

            for (n = 0; w + n < msg + len && n <= MIG_NAME_MAX && w[n] != ' ';
                 n++)
            {
                name[n] = w[n];
            }

            if (mig_name_valid(name, n, NULL, 0) != MIG_OK) {
                return;
            }

            name[n] = '\0';
            break;
        }

        memset(ip, 'x', sizeof(ip));
        port = -1;

        rv = ngx_http_maintenance_switch_master_parse(msg, len, name, ip,
                                                      sizeof(ip), &port);

        want = switch_ref(msg, len, name, &want_ip, &want_len, &want_port);

        if (rv != want) {
            abort();
        }

        if (rv != 1) {
            continue;
        }

        if (port != want_port || strnlen(ip, sizeof(ip)) != want_len
            || memcmp(ip, want_ip, want_len) != 0)
        {
            abort();
        }
    }
}


/*
 * The reference: exactly five words between spaces; the first equal to
 * the name byte for byte; the fourth 1..IP_LEN-1 of [0-9a-zA-Z.:_-]; the
 * fifth a port
 */

static int
switch_ref(const char *msg, size_t len, const char *name, const char **ip,
    size_t *iplen, int *port)
{
    size_t       i, w, start[6], end[6];
    const char  *c;

    w = 0;

    for (i = 0; i < len; i++) {
        if (msg[i] == ' ') {
            continue;
        }

        if (i == 0 || msg[i - 1] == ' ') {
            if (w == 5) {
                return -1;
            }

            start[w] = i;
        }

        if (i + 1 == len || msg[i + 1] == ' ') {
            end[w++] = i + 1;
        }
    }

    if (w != 5) {
        return -1;
    }

    if (end[0] - start[0] != strlen(name)
        || memcmp(msg + start[0], name, strlen(name)) != 0)
    {
        return 0;
    }

    *ip = msg + start[3];
    *iplen = end[3] - start[3];

    if (*iplen >= NGX_HTTP_MAINTENANCE_IP_LEN) {
        return -1;
    }

    for (c = *ip; c < *ip + *iplen; c++) {
        if (strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ.:-_", *c) == NULL
            || *c == '\0')
        {
            return -1;
        }
    }

    *port = ref_port(msg + start[4], end[4] - start[4]);

    return *port > 0 ? 1 : -1;
}


/*
 * The copy of a reply's text (an error's into msg[128], a role, an
 * address): terminated within the buffer whatever the reply; 0 exactly
 * for a non-empty text without NUL that fits
 */

static void
check_cstr(const redisReply *r)
{
    int     rv, text;
    char    buf[128];
    size_t  k, size, sizes[] = { 1, 2, 10, 46, 128 };

    text = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS
           || r->type == REDIS_REPLY_ERROR;

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size = sizes[k];
        memset(buf, 'x', sizeof(buf));

        rv = ngx_http_maintenance_reply_cstr(r, buf, size);

        /* terminated within size, nothing written past it */
        if (strnlen(buf, size) == size || (size < 128 && buf[size] != 'x')) {
            abort();
        }

        if ((rv == 0)
            != (text && r->len > 0 && r->len < size
                && memchr(r->str, '\0', r->len) == NULL))
        {
            abort();
        }

        if (rv == 0
            && (strlen(buf) != r->len || memcmp(buf, r->str, r->len) != 0))
        {
            abort();
        }
    }
}


/*
 * An accepted address (or role): non-empty, NUL-terminated within its
 * buffer, the reply's bytes exactly; sentinel_parse() hands it to
 * ngx_parse_addr() as a C string, as inet_pton() takes it here
 */

static void
check_ip(const char *ip, size_t size, const redisReply *from)
{
    size_t         len;
    unsigned char  addr[16];

    len = strnlen(ip, size);

    if (len == 0 || len == size || from->type != REDIS_REPLY_STRING
        || len != from->len || memcmp(ip, from->str, len) != 0)
    {
        abort();
    }

    (void) inet_pton(AF_INET, ip, addr);
    (void) inet_pton(AF_INET6, ip, addr);
}


/* a decimal port of 1..5 digits, 1..65535, else 0 */

static int
ref_port(const char *s, size_t len)
{
    char    buf[6];
    long    v;
    size_t  i;

    if (len == 0 || len > 5) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtol(buf, NULL, 10);

    return v >= 1 && v <= 65535 ? (int) v : 0;
}


/* a string reply equal to s, ASCII letters in either case */

static int
ref_is(const redisReply *r, const char *s)
{
    size_t  i;
    int     a, b;

    if (r->type != REDIS_REPLY_STRING || r->len != strlen(s)) {
        return 0;
    }

    for (i = 0; i < r->len; i++) {
        a = (unsigned char) r->str[i];
        b = (unsigned char) s[i];

        if (a >= 'A' && a <= 'Z') {
            a += 'a' - 'A';
        }

        if (b >= 'A' && b <= 'Z') {
            b += 'a' - 'A';
        }

        if (a != b) {
            return 0;
        }
    }

    return 1;
}


/* link_refused and the heartbeat copy the error text as this does */

static void
check_refused(const redisReply *r)
{
    char    msg[128];
    size_t  n;

    if (r->type != REDIS_REPLY_ERROR || r->str == NULL) {
        abort();
    }

    /* ngx_cpystrn(msg, str, min(sizeof(msg), len + 1)) */
    for (n = 0; n + 1 < sizeof(msg) && n < r->len && r->str[n]; n++) {
        msg[n] = r->str[n];
    }

    msg[n] = '\0';

    if (r->str[r->len] != '\0') {
        /* hiredis terminates its strings: the copy above relies on it */
        abort();
    }
}


static size_t
chunk_recv(size_t *seed)
{
    (void) seed;

    return NGX_HTTP_MAINTENANCE_REPLY_CHUNK;
}


/* 1..64 bytes, from a small LCG: frames split anywhere */

static size_t
chunk_split(size_t *seed)
{
    *seed = *seed * 1103515245 + 12345;

    return 1 + (*seed >> 16) % 64;
}
