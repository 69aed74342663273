/*
 * maintenance_send.c: maintenance's writes to Redis: one script sent once,
 * again only when it certainly did not run, confirmed, WAITed for replicas.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#include "health.h"
#include "maintenance.h"


static int send_script(mnt_t *m, int argc, const char **argv,
    const size_t *lens, redisReply **out, int *sent, int *have_prev,
    uint64_t *prev);
static int reopen(mnt_t *m, const char *before, const char *why);
static int confirm(mnt_t *m, int on, const opts_t *o, const char *since,
    int have_prev, uint64_t prev, unsigned long long *epoch, char *id,
    size_t idsize);
static int wait_replicas(mnt_t *m, const opts_t *o);


static const char change_lua[] =
    /* KEYS: state, events, audit.  ARGV: action scope mode since
     * retry_after reason release actor result maxlen.  Every check comes
     * before the first write, and HINCRBY (the only write that can fail
     * on a bad value) is the first write: all or nothing. */
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'hash' and t ~= 'none' then\n"
    "  return redis.error_reply(KEYS[1] .. ' is a ' .. t .. ', not a hash')\n"
    "end\n"
    "t = redis.call('TYPE', KEYS[3]).ok\n"
    "if t ~= 'stream' and t ~= 'none' then\n"
    "  return redis.error_reply(KEYS[3] .. ' is a ' .. t .. ', not a stream')\n"
    "end\n"
    "local e = redis.call('HINCRBY', KEYS[1], 'epoch', 1)\n"
    "redis.call('HSET', KEYS[1], 'mode', ARGV[3], 'since', ARGV[4],\n"
    "  'retry_after', ARGV[5], 'reason', ARGV[6], 'release', ARGV[7],\n"
    "  'actor', ARGV[8])\n"
    "redis.call('PUBLISH', KEYS[2], ARGV[2] .. ' ' .. e)\n"
    "local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[10], '*',\n"
    "  'action', ARGV[1], 'scope', ARGV[2], 'mode', ARGV[3],\n"
    "  'epoch', tostring(e), 'actor', ARGV[8], 'reason', ARGV[6],\n"
    "  'release', ARGV[7], 'result', ARGV[9])\n"
    "return {tostring(e), id}\n";

const char migctl_audit_lua[] =
    "local t = redis.call('TYPE', KEYS[2]).ok\n"
    "if t ~= 'stream' and t ~= 'none' then\n"
    "  return redis.error_reply(KEYS[2] .. ' is a ' .. t .. ', not a stream')\n"
    "end\n"
    "local m = 'off'\n"
    "local e = '0'\n"
    "if redis.call('TYPE', KEYS[1]).ok == 'hash' then\n"
    "  m = redis.call('HGET', KEYS[1], 'mode') or 'off'\n"
    "  e = redis.call('HGET', KEYS[1], 'epoch') or '0'\n"
    "end\n"
    "local f = {'MAXLEN', '~', ARGV[1], '*', 'action', ARGV[2],\n"
    "  'scope', ARGV[3], 'mode', m, 'epoch', e}\n"
    "for i = 4, #ARGV do f[#f + 1] = ARGV[i] end\n"
    "return {e, redis.call('XADD', KEYS[2], unpack(f))}\n";


/*
 * The change script through send_script().  A connection lost after it
 * was sent leaves the outcome unknown: the state is read again and the
 * change reported done only if it is there (confirm()).
 */
int
migctl_mnt_change(mnt_t *m, int on, const opts_t *o, const char *result,
    unsigned long long *epoch, char *id, size_t idsize)
{
    int            rc, i, sent, have_prev;
    char           since[32], retry[16];
    const char    *argv[16];
    size_t         lens[16];
    uint64_t       e, prev;
    redisReply    *r;
    migctl_ctx_t  *ctx = m->ctx;

    snprintf(since, sizeof(since), "%lld", migctl_wall_ms() / 1000);
    snprintf(retry, sizeof(retry), "%ld", o->retry_after);

    argv[0] = "EVAL";
    argv[1] = change_lua;
    argv[2] = "3";
    argv[3] = m->k_state;
    argv[4] = m->k_events;
    argv[5] = m->k_audit;
    argv[6] = on ? "on" : "off";
    argv[7] = ctx->scope;
    argv[8] = on ? "on" : "off";
    argv[9] = since;
    argv[10] = retry;
    argv[11] = o->reason;
    argv[12] = o->release;
    argv[13] = m->actor;
    argv[14] = result;
    argv[15] = MIGCTL_AUDIT_MAXLEN;

    for (i = 0; i < 16; i++) {
        lens[i] = strlen(argv[i]);
    }

    rc = send_script(m, 16, argv, lens, &r, &sent, &have_prev, &prev);
    if (rc != MIGCTL_OK) {
        if (sent) {
            return confirm(m, on, o, since, have_prev, prev, epoch, id,
                           idsize);
        }

        return rc;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type == REDIS_REPLY_ERROR) {
        migctl_error(ctx, rc, "Redis refused the change, nothing was"
                     " written: %s: repair the key, then retry", r->str);
        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || mig_parse_u64(r->element[0]->str, r->element[0]->len,
                         UINT64_MAX, &e) != MIG_OK)
    {
        migctl_error(ctx, rc, "unexpected reply to the change script:"
                     " check migctl maintenance status");
        goto done;
    }

    *epoch = e;
    snprintf(id, idsize, "%.*s", (int) r->element[1]->len,
             r->element[1]->str);

    rc = wait_replicas(m, o);

done:

    freeReplyObject(r);

    return rc;
}


/*
 * With Sentinel, the master is asked for again after the health checks
 * (seconds, up to their timeouts): a failover in the meantime has moved
 * it, and a gracefully demoted master accepts writes until the sentinels
 * reconfigure it.  Nothing has been written yet.
 */
int
migctl_mnt_refind_master(mnt_t *m)
{
    int            rc;
    char           before[300];
    json_t        *j;
    const char    *a;
    migctl_ctx_t  *ctx = m->ctx;

    if (ctx->conf.nsentinels == 0) {
        return MIGCTL_OK;
    }

    j = migctl_redis_json(ctx);
    a = json_string_value(json_object_get(j, "addr"));
    snprintf(before, sizeof(before), "%s", a ? a : "");
    json_decref(j);

    migctl_redis_close(m->c);
    m->c = NULL;

    rc = migctl_redis_open(ctx, &m->c);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    j = migctl_redis_json(ctx);
    a = json_string_value(json_object_get(j, "addr"));

    if (a != NULL && strcmp(a, before) != 0) {
        fprintf(stderr, "migctl: maintenance: the master moved during the"
                " health checks: %s, now %s\n", before,
                migctl_redis_addr(ctx));
    }

    json_decref(j);

    return MIGCTL_OK;
}


/* an audit entry that changes nothing: a refusal, a hook's result */
int
migctl_mnt_audit(mnt_t *m, const char *action, const char *reason,
    const char *result, const opts_t *o, char *id, size_t idsize)
{
    int            rc, i, sent, have_prev;
    const char    *argv[16];
    size_t         lens[16];
    uint64_t       prev;
    redisReply    *r;
    migctl_ctx_t  *ctx = m->ctx;

    argv[0] = "EVAL";
    argv[1] = migctl_audit_lua;
    argv[2] = "2";
    argv[3] = m->k_state;
    argv[4] = m->k_audit;
    argv[5] = MIGCTL_AUDIT_MAXLEN;
    argv[6] = action;
    argv[7] = ctx->scope;
    argv[8] = "actor";
    argv[9] = m->actor;
    argv[10] = "reason";
    argv[11] = reason;
    argv[12] = "release";
    argv[13] = o->release;
    argv[14] = "result";
    argv[15] = result;

    for (i = 0; i < 16; i++) {
        lens[i] = strlen(argv[i]);
    }

    rc = send_script(m, 16, argv, lens, &r, &sent, &have_prev, &prev);
    if (rc != MIGCTL_OK) {
        if (sent) {
            migctl_error(ctx, rc, "Redis %s: the connection was lost after"
                         " the audit entry (%s %s) was sent: it may or may"
                         " not be in %s", migctl_redis_addr(ctx), action,
                         result, m->k_audit);
        }

        return rc;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type == REDIS_REPLY_ERROR) {
        migctl_error(ctx, rc, "auditing the %s failed: %s", result, r->str);
        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        migctl_error(ctx, rc, "unexpected reply to the audit script");
        goto done;
    }

    snprintf(id, idsize, "%.*s", (int) r->element[1]->len,
             r->element[1]->str);
    rc = MIGCTL_OK;

done:

    freeReplyObject(r);

    return rc;
}


struct redisReply *
migctl_audit_tail(migctl_ctx_t *ctx, struct redisContext *c, const char *key,
    int count)
{
    int          i;
    char         cnt[16];
    size_t       lens[6];
    const char  *argv[6];

    snprintf(cnt, sizeof(cnt), "%d", count);

    argv[0] = "XREVRANGE";
    argv[1] = key;
    argv[2] = "+";
    argv[3] = "-";
    argv[4] = "COUNT";
    argv[5] = cnt;

    for (i = 0; i < 6; i++) {
        lens[i] = strlen(argv[i]);
    }

    return migctl_redis_cmd(ctx, c, 6, argv, lens);
}


/* the newest entries of P:audit, newest first, as JSON objects */

int
migctl_mnt_read_audit(mnt_t *m, int count, json_t **out)
{
    int            rc;
    char           when[64], name[MIG_NAME_MAX + 1];
    size_t         i, j;
    long long      ms;
    json_t        *list, *o;
    redisReply    *r, *ent, *id, *fv;

    r = migctl_audit_tail(m->ctx, m->c, m->k_audit, count);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    list = json_array();
    rc = MIGCTL_OK;

    if (r->type != REDIS_REPLY_ARRAY) {
        /* an audit stream of the wrong type does not hide the status */
        goto done;
    }

    for (i = 0; i < r->elements; i++) {
        ent = r->element[i];

        if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2
            || ent->element[0]->type != REDIS_REPLY_STRING
            || ent->element[1]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        id = ent->element[0];
        fv = ent->element[1];

        o = json_object();
        json_object_set_new(o, "id", migctl_mnt_jstr(id->str, id->len));

        ms = strtoll(id->str, NULL, 10);
        migctl_mnt_fmt_time(when, sizeof(when), ms / 1000);
        json_object_set_new(o, "time", json_string(when));

        for (j = 0; j + 1 < fv->elements; j += 2) {
            if (fv->element[j]->type != REDIS_REPLY_STRING
                || fv->element[j + 1]->type != REDIS_REPLY_STRING
                || fv->element[j]->len > MIG_NAME_MAX)
            {
                continue;
            }

            memcpy(name, fv->element[j]->str, fv->element[j]->len);
            name[fv->element[j]->len] = '\0';

            json_object_set_new(o, name,
                                migctl_mnt_jstr(fv->element[j + 1]->str,
                                                fv->element[j + 1]->len));
        }

        json_array_append_new(list, o);
    }

done:

    freeReplyObject(r);
    *out = list;

    return rc;
}


/*
 * A write script, sent once; sent again only when it certainly did not
 * run: the connection was found lost before it was sent (the probe, HGET
 * epoch, got no answer) or the server refused it as a replica (-READONLY:
 * a demoted master; the script's first write fails before anything is
 * written).  Then the master is found again (Sentinel, or the host
 * resolved again) and the script sent there, once.  MIGCTL_OK and *out
 * (any other reply); MIGCTL_UNREACHABLE with *out NULL, printed, or, when
 * the connection was lost after the script was sent (*sent: the outcome
 * is unknown), not printed; *prev: the epoch before (have_prev).
 */
static int
send_script(mnt_t *m, int argc, const char **argv, const size_t *lens,
    redisReply **out, int *sent, int *have_prev, uint64_t *prev)
{
    int            rc, i, retried;
    char           before[MIGCTL_PATH_MAX + 800];
    const char    *pargv[3], *why;
    size_t         plens[3];
    redisReply    *r;
    migctl_ctx_t  *ctx = m->ctx;

    *out = NULL;
    *sent = 0;
    retried = 0;

    pargv[0] = "HGET";
    pargv[1] = m->k_state;
    pargv[2] = "epoch";

    for (i = 0; i < 3; i++) {
        plens[i] = strlen(pargv[i]);
    }

again:

    /* the probe: the connection answers, and the epoch before ours */
    why = NULL;
    *have_prev = 0;
    *prev = 0;

    if (m->c == NULL || m->c->err) {
        why = "the connection was lost before the change was sent";

    } else {
        r = redisCommandArgv(m->c, 3, pargv, plens);
        if (r == NULL) {
            why = "the connection was lost before the change was sent";

        } else {
            if (r->type == REDIS_REPLY_NIL) {
                *have_prev = 1;

            } else if (r->type == REDIS_REPLY_STRING
                       && mig_parse_u64(r->str, r->len, UINT64_MAX, prev)
                          == MIG_OK)
            {
                *have_prev = 1;
            }

            freeReplyObject(r);
        }
    }

    if (why == NULL) {
        r = redisCommandArgv(m->c, argc, argv, lens);
        if (r == NULL) {
            /* the script may have run: the server did not answer in time */
            *sent = 1;
            return MIGCTL_UNREACHABLE;
        }

        if (!migctl_redis_readonly(r)) {
            *out = r;
            return MIGCTL_OK;
        }

        freeReplyObject(r);
        why = "refused the write as a replica (READONLY), nothing was"
              " written";
    }

    snprintf(before, sizeof(before), "%s", migctl_redis_addr(ctx));

    if (retried) {
        return migctl_error(ctx, MIGCTL_UNREACHABLE, "Redis %s %s, again"
                            " after finding the master again: wait for the"
                            " failover to settle and retry", before, why);
    }

    rc = reopen(m, before, why);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    retried = 1;
    goto again;
}


/* the master found again after a lost connection or a READONLY reply */
static int
reopen(mnt_t *m, const char *before, const char *why)
{
    int  rc;

    migctl_redis_close(m->c);
    m->c = NULL;

    fprintf(stderr, "migctl: maintenance: Redis %s %s: finding the master"
            " again\n", before, why);

    rc = migctl_redis_open(m->ctx, &m->c);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    fprintf(stderr, "migctl: maintenance: sending the change to Redis %s\n",
            migctl_redis_addr(m->ctx));

    return MIGCTL_OK;
}


/*
 * The connection was lost after the change was sent: it may have run.
 * The state is read from the master found again: ours (same mode, epoch
 * the one after the probe's, since, actor, reason, release) is done;
 * anything else is not confirmed (exit 3): never sent a second time.
 */
static int
confirm(mnt_t *m, int on, const opts_t *o, const char *since,
    int have_prev, uint64_t prev, unsigned long long *epoch, char *id,
    size_t idsize)
{
    int            rc, present, ours;
    char           err[256], before[MIGCTL_PATH_MAX + 800];
    size_t         i;
    json_t        *audit, *ae;
    mig_state_t    st;
    migctl_ctx_t  *ctx = m->ctx;

    snprintf(before, sizeof(before), "%s", migctl_redis_addr(ctx));

    fprintf(stderr, "migctl: maintenance: Redis %s: the connection was lost"
            " after the change was sent (%s): reading the state again to"
            " confirm it\n", before,
            m->c->err == REDIS_ERR_IO && errno == EAGAIN ? "timed out"
                                                          : m->c->errstr);

    migctl_redis_close(m->c);
    m->c = NULL;

    rc = migctl_redis_open(ctx, &m->c);
    if (rc != MIGCTL_OK) {
        return migctl_error(ctx, MIGCTL_UNREACHABLE, "the change was sent"
                            " to Redis %s but is not confirmed (no Redis to"
                            " read it back from): run migctl maintenance"
                            " status, and repeat the change if it is not"
                            " there", before);
    }

    rc = migctl_state_read(ctx, m->c, m->k_state, &st, &present, err,
                           sizeof(err));
    if (rc == MIGCTL_UNREACHABLE) {
        return rc;
    }

    ours = rc == MIGCTL_OK && present && st.have_epoch
           && st.mode == (on ? MIG_MODE_ON : MIG_MODE_OFF)
           && (!have_prev || st.epoch == prev + 1)
           && st.since == strtoll(since, NULL, 10)
           && strcmp(st.actor, m->actor) == 0
           && strcmp(st.reason, o->reason) == 0
           && strcmp(st.release, o->release) == 0;

    if (!ours) {
        return migctl_error(ctx, MIGCTL_UNREACHABLE, "the change was sent"
                            " to Redis %s but is not confirmed: Redis %s"
                            " holds %s epoch %llu, not it (lost in a"
                            " failover, or not run yet): run migctl"
                            " maintenance status, and repeat the change if"
                            " needed", before, migctl_redis_addr(ctx),
                            present ? mig_mode_str(st.mode) : "no state,",
                            (unsigned long long) st.epoch);
    }

    *epoch = st.epoch;
    id[0] = '\0';

    /* the audit entry came with the state, from the same script */
    if (migctl_mnt_read_audit(m, AUDIT_TAIL, &audit) == MIGCTL_OK) {
        json_array_foreach(audit, i, ae) {
            if (strtoull(afield(ae, "epoch"), NULL, 10) == st.epoch
                && strcmp(afield(ae, "actor"), m->actor) == 0
                && strcmp(afield(ae, "action"), on ? "on" : "off") == 0)
            {
                snprintf(id, idsize, "%s", afield(ae, "id"));
                break;
            }
        }

        json_decref(audit);
    }

    fprintf(stderr, "migctl: maintenance: the change is confirmed on Redis"
            " %s (epoch %llu)\n", migctl_redis_addr(ctx),
            (unsigned long long) st.epoch);

    return wait_replicas(m, o);
}


/*
 * redis.wait: WAIT replicas timeout_ms after a change.  Fewer
 * acknowledgements: the change is on the master only and a failover now
 * would lose it; said at the end of the command (m->short_ack), exit 3.
 */
static int
wait_replicas(mnt_t *m, const opts_t *o)
{
    int              i, n;
    char             num[16], ms[32], what[128], id[64];
    const char      *argv[3];
    size_t           lens[3];
    redisReply      *r;
    struct timeval   tv;
    migctl_conf_t   *cf = &m->ctx->conf;

    m->wanted = cf->redis_wait_replicas;
    m->acked = -1;

    if (m->wanted == 0) {
        return MIGCTL_OK;
    }

    snprintf(num, sizeof(num), "%d", m->wanted);
    snprintf(ms, sizeof(ms), "%ld", cf->redis_wait_timeout_ms);

    argv[0] = "WAIT";
    argv[1] = num;
    argv[2] = ms;

    for (i = 0; i < 3; i++) {
        lens[i] = strlen(argv[i]);
    }

    /* WAIT blocks up to its timeout: the read may take that much longer */
    n = (int) cf->redis_wait_timeout_ms + cf->redis_timeout_ms;
    tv.tv_sec = n / 1000;
    tv.tv_usec = (n % 1000) * 1000;
    (void) redisSetTimeout(m->c, tv);

    r = redisCommandArgv(m->c, 3, argv, lens);

    if (r == NULL) {
        /* no answer: nothing says a replica has it */
        m->acked = 0;
        m->short_ack = 1;
        return MIGCTL_OK;
    }

    tv.tv_sec = cf->redis_timeout_ms / 1000;
    tv.tv_usec = (cf->redis_timeout_ms % 1000) * 1000;
    (void) redisSetTimeout(m->c, tv);

    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        m->acked = r->integer > 1000 ? 1000 : (int) r->integer;

    } else {
        m->acked = 0;
        fprintf(stderr, "migctl: maintenance: WAIT: %s\n",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }

    freeReplyObject(r);

    m->short_ack = m->acked < m->wanted;

    /* the audit says how far the change went (the JSON result too) */
    snprintf(what, sizeof(what), "%d of %d replicas acknowledged within"
             " %ld ms", m->acked, m->wanted, cf->redis_wait_timeout_ms);

    (void) migctl_mnt_audit(m, "replication", what,
                            m->short_ack ? "short" : "ok", o, id, sizeof(id));

    return MIGCTL_OK;
}


/* a JSON string from network bytes: bounded, invalid UTF-8 replaced */

json_t *
migctl_mnt_jstr(const char *s, size_t len)
{
    char    buf[MIG_REASON_MAX + 1];
    size_t  i;
    json_t  *j;

    if (len > MIG_REASON_MAX) {
        len = MIG_REASON_MAX;
    }

    j = json_stringn(s, len);
    if (j != NULL) {
        return j;
    }

    for (i = 0; i < len; i++) {
        buf[i] = ((unsigned char) s[i] < 0x80 && s[i] != '\0') ? s[i] : '?';
    }

    return json_stringn(buf, len);
}


void
migctl_mnt_fmt_time(char *buf, size_t size, long long t)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (t <= 0 || gmtime_r(&tt, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "-");
    }
}
