/*
 * reply.c: libFuzzer target of the module's Redis reply handling: raw bytes
 * through hiredis's reader with the module's limits, every reply through
 * the checks worker 0 makes, in the order its two links ask for them.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* scopes a command link polls in one round */
#define NSCOPES       3

/* a heartbeat: MULTI DEL HSET EXPIRE ZADD EXEC */
#define HB_LEN        6


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void link_run(const uint8_t *data, size_t size, int sub,
    size_t (*chunk)(size_t *seed));
static int link_reply(int sub, unsigned long n, int *subscribed,
    const redisReply *r);
static void every_check(const uint8_t *data, size_t size);
static void check_reply(const redisReply *r);
static void check_refused(const redisReply *r);
static size_t chunk_recv(size_t *seed);
static size_t chunk_split(size_t *seed);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /*
     * the command link (AUTH, SELECT, polls and heartbeats), read as
     * recv() hands it over, 16 KB at most
     */
    link_run(data, size, 0, chunk_recv);

    /* the subscriber (AUTH, SUBSCRIBE, messages), TCP splitting anywhere */
    link_run(data, size, 1, chunk_split);

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
link_run(const uint8_t *data, size_t size, int sub,
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

            rv = link_reply(sub, replies++, &subscribed, r);

            freeReplyObject(r);

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


/* the n-th reply on a link: 0 it goes on, -1 the module drops the link */

static int
link_reply(int sub, unsigned long n, int *subscribed, const redisReply *r)
{
    int                q, rv;
    char               err[160], scope[MIG_NAME_MAX + 1];
    uint64_t           epoch;
    mig_state_t        st;
    const char        *why;
    const redisReply  *bad;

    /* AUTH (and SELECT on the command link) first, as link_connect */

    if (sub) {
        q = n == 0 ? Q_AUTH : n == 1 ? Q_SUBSCRIBE : Q_PUSH;

    } else if (n < 2) {
        q = n == 0 ? Q_AUTH : Q_SELECT;

    } else {
        n = (n - 2) % (NSCOPES + HB_LEN);
        q = n < NSCOPES ? Q_HGETALL
                        : n == NSCOPES + HB_LEN - 1 ? Q_EXEC : Q_MULTI;
    }

    check_reply(r);

    switch (q) {

    case Q_AUTH:
    case Q_SELECT:
        rv = ngx_http_maintenance_reply_handshake(r);

        if (rv == NGX_HTTP_MAINTENANCE_REPLY_REFUSED) {
            check_refused(r);
        }

        return rv == NGX_HTTP_MAINTENANCE_REPLY_OK ? 0 : -1;

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
