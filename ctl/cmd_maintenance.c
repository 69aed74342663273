/*
 * cmd_maintenance.c: migctl maintenance on|off|status: one server-side
 * script per change (state, epoch, publish, audit), --wait on the edges.
 */

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "migctl.h"


#define AUDIT_MAXLEN       "10000"
#define AUDIT_TAIL         10
#define EDGES_MAX          10000
#define WAIT_POLL_US       50000
#define WAIT_REPRINT_MS    5000
#define BEHIND_NAMED_MAX   20
#define MIGCTL_HELP        -1                /* parse_opts: --help shown */


typedef struct {
    const char  *reason;
    const char  *release;
    long         retry_after;
    int          wait;                       /* seconds, 0 = no wait */
    int          force;
} opts_t;

typedef struct {
    char        node[MIG_NAME_MAX + 1];
    long long   age_ms;                      /* since the last heartbeat */
    int         live;
    int         has_hash;                    /* P:edge:<node> exists */
    int         has_scope;                   /* it serves our scope */
    char        serving[MIG_EDGE_VALUE_MAX + 1];
    char        version[32];
    long long   pid;
    int         acked;                       /* --wait: serves ours */
    int         tracked;                     /* --wait: awaited */
} edge_t;

typedef struct {
    edge_t      *e;
    int          n;
    int          skipped;                    /* invalid node ids */
} edges_t;

typedef struct {
    migctl_ctx_t  *ctx;
    redisContext  *c;
    char           k_state[MIG_KEY_MAX];
    char           k_events[MIG_KEY_MAX];
    char           k_edges[MIG_KEY_MAX];
    char           k_audit[MIG_KEY_MAX];
    char           actor[MIG_ACTOR_MAX + 1];
} mnt_t;


static int do_change(mnt_t *m, int argc, char **argv, int on);
static int do_status(mnt_t *m, int argc, char **argv);
static int parse_opts(mnt_t *m, int argc, char **argv, int on,
    opts_t *o);
static int check_text(mnt_t *m, const char *opt, const char *v,
    size_t max);
static int set_actor(mnt_t *m);
static int run_change(mnt_t *m, int on, const opts_t *o,
    const char *result, unsigned long long *epoch, char *id,
    size_t idsize);
static int run_refused(mnt_t *m, const opts_t *o, char *id, size_t idsize);
static int wait_edges(mnt_t *m, const char *want, int seconds,
    json_t *res);
static int read_state(mnt_t *m, mig_state_t *st, int *present,
    char *err, size_t errlen);
static int read_edges(mnt_t *m, edges_t *ed, long long now);
static int read_audit(mnt_t *m, int count, json_t **out);
static json_t *jstr(const char *s, size_t len);
static const char *afield(json_t *o, const char *name);
static void print_clean(FILE *f, const char *s);
static long long now_ms(void);
static void fmt_time(char *buf, size_t size, long long t);
static void usage(FILE *f);


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

static const char refused_lua[] =
    /* KEYS: state, audit.  ARGV: action scope actor reason release result
     * maxlen.  The entry carries the state that stays in force. */
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
    "local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',\n"
    "  'action', ARGV[1], 'scope', ARGV[2], 'mode', m, 'epoch', e,\n"
    "  'actor', ARGV[3], 'reason', ARGV[4], 'release', ARGV[5],\n"
    "  'result', ARGV[6])\n"
    "return {e, id}\n";


int
cmd_maintenance(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          rc;
    const char  *sub;
    mnt_t        m;

    if (argc < 2) {
        usage(stderr);
        return MIGCTL_USAGE;
    }

    sub = argv[1];

    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0
        || strcmp(sub, "help") == 0)
    {
        usage(stdout);
        return MIGCTL_OK;
    }

    memset(&m, 0, sizeof(mnt_t));
    m.ctx = ctx;

    if (mig_key_state(m.k_state, sizeof(m.k_state), ctx->conf.prefix,
                      ctx->scope) < 0
        || mig_key_events(m.k_events, sizeof(m.k_events), ctx->conf.prefix)
           < 0
        || mig_key_edges(m.k_edges, sizeof(m.k_edges), ctx->conf.prefix) < 0
        || mig_key_audit(m.k_audit, sizeof(m.k_audit), ctx->conf.prefix) < 0)
    {
        return migctl_error(ctx, MIGCTL_USAGE, "key names too long: shorten"
                            " prefix or --scope");
    }

    if (strcmp(sub, "on") == 0) {
        rc = do_change(&m, argc - 1, argv + 1, 1);

    } else if (strcmp(sub, "off") == 0) {
        rc = do_change(&m, argc - 1, argv + 1, 0);

    } else if (strcmp(sub, "status") == 0) {
        rc = do_status(&m, argc - 1, argv + 1);

    } else {
        return migctl_error(ctx, MIGCTL_USAGE, "unknown subcommand '%s':"
                            " use on, off or status (migctl maintenance"
                            " --help)", sub);
    }

    migctl_redis_close(m.c);

    return rc;
}


static int
do_change(mnt_t *m, int argc, char **argv, int on)
{
    int                  rc, hc;
    char                 id[64], want[MIG_EDGE_VALUE_MAX + 1];
    const char          *result;
    json_t              *res, *health, *checks, *ck;
    opts_t               o;
    size_t               i;
    unsigned long long   epoch;
    migctl_ctx_t        *ctx = m->ctx;

    res = NULL;
    health = NULL;

    rc = parse_opts(m, argc, argv, on, &o);
    if (rc != MIGCTL_OK) {
        return rc == MIGCTL_HELP ? MIGCTL_OK : rc;
    }

    rc = set_actor(m);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_redis_open(ctx, &m->c);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    result = "ok";
    res = json_object();
    json_object_set_new(res, "scope", json_string(ctx->scope));
    json_object_set_new(res, "action", json_string(on ? "on" : "off"));

    if (!on) {
        /* reopening is gated: every health check must pass */
        hc = migctl_health_run(ctx, &health);
        json_object_set(res, "health", health);

        if (hc != MIGCTL_OK) {
            checks = json_object_get(health, "checks");

            json_array_foreach(checks, i, ck) {
                if (json_is_true(json_object_get(ck, "ok"))) {
                    continue;
                }

                fprintf(stderr, "migctl: maintenance: health check %s"
                        " failed: ",
                        json_string_value(json_object_get(ck, "name")));
                print_clean(stderr, json_string_value(
                                        json_object_get(ck, "detail")));
                fputc('\n', stderr);
            }

            if (!o.force) {
                rc = run_refused(m, &o, id, sizeof(id));
                if (rc != MIGCTL_OK) {
                    goto done;
                }

                json_object_set_new(res, "result", json_string("refused"));
                json_object_set_new(res, "audit_id", json_string(id));

                if (ctx->json) {
                    (void) migctl_json_result(ctx, json_incref(res),
                                              MIGCTL_REFUSED);
                }

                rc = migctl_error(ctx, MIGCTL_REFUSED, "off refused: health"
                                  " checks failed, the flag is unchanged:"
                                  " fix them, or --force --reason R"
                                  " (audited)");
                goto done;
            }

            result = "forced";
        }
    }

    rc = run_change(m, on, &o, result, &epoch, id, sizeof(id));
    if (rc != MIGCTL_OK) {
        goto done;
    }

    json_object_set_new(res, "mode", json_string(on ? "on" : "off"));
    json_object_set_new(res, "epoch", json_integer((json_int_t) epoch));
    json_object_set_new(res, "result", json_string(result));
    json_object_set_new(res, "audit_id", json_string(id));
    json_object_set_new(res, "actor", json_string(m->actor));

    if (!ctx->json) {
        printf("maintenance %s for scope %s (epoch %llu)%s\n",
               on ? "on" : "off", ctx->scope, epoch,
               strcmp(result, "forced") == 0
               ? ", forced past failed health checks" : "");
    }

    if (o.wait) {
        mig_edge_value_format(want, sizeof(want),
                              on ? MIG_MODE_ON : MIG_MODE_OFF, epoch);
        rc = wait_edges(m, want, o.wait, res);
    }

    if (ctx->json) {
        rc = migctl_json_result(ctx, json_incref(res), rc);
    }

done:

    json_decref(health);
    json_decref(res);

    return rc;
}


static int
parse_opts(mnt_t *m, int argc, char **argv, int on, opts_t *o)
{
    int            i;
    char          *end;
    const char    *a, *v;
    long           n;
    migctl_ctx_t  *ctx = m->ctx;

    memset(o, 0, sizeof(opts_t));
    o->reason = "";
    o->release = "";

    for (i = 1; i < argc; i++) {
        a = argv[i];
        v = NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return MIGCTL_HELP;
        }

        if (strcmp(a, "--json") == 0) {
            ctx->json = 1;
            continue;
        }

        if (strcmp(a, "--force") == 0 && !on) {
            o->force = 1;
            continue;
        }

        if (strcmp(a, "--wait") == 0) {
            o->wait = ctx->conf.wait_default_s;
            continue;
        }

        if (strncmp(a, "--wait=", 7) == 0) {
            n = strtol(a + 7, &end, 10);
            if (a[7] == '\0' || *end != '\0' || n < 1 || n > 86400) {
                return migctl_error(ctx, MIGCTL_USAGE, "--wait=%s: give"
                                    " seconds, 1..86400", a + 7);
            }

            o->wait = (int) n;
            continue;
        }

        if (strcmp(a, "--reason") == 0 || strcmp(a, "--release") == 0
            || (strcmp(a, "--retry-after") == 0 && on))
        {
            if (i + 1 == argc) {
                return migctl_error(ctx, MIGCTL_USAGE, "%s needs a value:"
                                    " see migctl maintenance --help", a);
            }

            v = argv[++i];

        } else if (strncmp(a, "--reason=", 9) == 0
                   || strncmp(a, "--release=", 10) == 0
                   || (strncmp(a, "--retry-after=", 14) == 0 && on))
        {
            v = strchr(a, '=') + 1;

        } else {
            return migctl_error(ctx, MIGCTL_USAGE, "unknown option '%s' for"
                                " %s: see migctl maintenance --help", a,
                                on ? "on" : "off");
        }

        if (strncmp(a, "--reason", 8) == 0) {
            if (check_text(m, "--reason", v, MIG_REASON_MAX) != MIGCTL_OK) {
                return MIGCTL_USAGE;
            }
            o->reason = v;

        } else if (strncmp(a, "--release", 9) == 0) {
            if (check_text(m, "--release", v, MIG_RELEASE_MAX)
                != MIGCTL_OK)
            {
                return MIGCTL_USAGE;
            }
            o->release = v;

        } else {
            errno = 0;
            n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || errno != 0 || n < 0
                || n > MIG_RETRY_AFTER_MAX)
            {
                return migctl_error(ctx, MIGCTL_USAGE, "--retry-after '%s'"
                                    " is not 0..%d seconds", v,
                                    MIG_RETRY_AFTER_MAX);
            }
            o->retry_after = n;
        }
    }

    if (o->force && o->reason[0] == '\0') {
        return migctl_error(ctx, MIGCTL_USAGE, "--force needs --reason R:"
                            " say why reopening past failed checks is safe");
    }

    return MIGCTL_OK;
}


static int
check_text(mnt_t *m, const char *opt, const char *v, size_t max)
{
    char  why[64];

    if (strlen(v) > max) {
        return migctl_error(m->ctx, MIGCTL_USAGE, "%s is longer than %zu"
                            " bytes: shorten it", opt, max);
    }

    /* the edges refuse a state whose text is not this (shared/mig.c) */
    if (mig_text_valid(v, strlen(v), why, sizeof(why)) != MIG_OK) {
        return migctl_error(m->ctx, MIGCTL_USAGE, "%s: %s: use one line of"
                            " UTF-8 text", opt, why);
    }

    return MIGCTL_OK;
}


static int
set_actor(mnt_t *m)
{
    const char     *a;
    struct passwd  *pw;

    a = getenv("MIGCTL_ACTOR");

    if (a == NULL || *a == '\0') {
        a = getenv("LOGNAME");
    }

    if (a == NULL || *a == '\0') {
        pw = getpwuid(geteuid());
        a = pw ? pw->pw_name : "unknown";
    }

    if (check_text(m, "$MIGCTL_ACTOR", a, MIG_ACTOR_MAX) != MIGCTL_OK) {
        return MIGCTL_USAGE;
    }

    strcpy(m->actor, a);

    return MIGCTL_OK;
}


static int
run_change(mnt_t *m, int on, const opts_t *o, const char *result,
    unsigned long long *epoch, char *id, size_t idsize)
{
    int            rc, i;
    char           since[32], retry[16];
    const char    *argv[16];
    size_t         lens[16];
    uint64_t       e;
    redisReply    *r;
    migctl_ctx_t  *ctx = m->ctx;

    snprintf(since, sizeof(since), "%lld", now_ms() / 1000);
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
    argv[15] = AUDIT_MAXLEN;

    for (i = 0; i < 16; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = migctl_redis_cmd(ctx, m->c, 16, argv, lens);
    if (r == NULL) {
        /* the script may have run: the server did not answer in time */
        fprintf(stderr, "migctl: maintenance: the change may or may not"
                " have been applied: check migctl maintenance status\n");
        return MIGCTL_UNREACHABLE;
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
    rc = MIGCTL_OK;

done:

    freeReplyObject(r);

    return rc;
}


static int
run_refused(mnt_t *m, const opts_t *o, char *id, size_t idsize)
{
    int            rc, i;
    const char    *argv[12];
    size_t         lens[12];
    redisReply    *r;
    migctl_ctx_t  *ctx = m->ctx;

    argv[0] = "EVAL";
    argv[1] = refused_lua;
    argv[2] = "2";
    argv[3] = m->k_state;
    argv[4] = m->k_audit;
    argv[5] = "off";
    argv[6] = ctx->scope;
    argv[7] = m->actor;
    argv[8] = o->reason;
    argv[9] = o->release;
    argv[10] = "refused";
    argv[11] = AUDIT_MAXLEN;

    for (i = 0; i < 12; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = migctl_redis_cmd(ctx, m->c, 12, argv, lens);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type == REDIS_REPLY_ERROR) {
        migctl_error(ctx, rc, "auditing the refusal failed: %s", r->str);
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


/*
 * Polls P:edges and P:edge:<node> until every edge that was live at some
 * point of the wait serves "want".  An edge stays awaited once seen live:
 * one that stops (crash, SIGSTOP) during the wait is named, not dropped.
 */

static int
wait_edges(mnt_t *m, const char *want, int seconds, json_t *res)
{
    int            rc, i, j, acked, tracked, last_acked, last_tracked, named;
    long long      start, deadline, now, last_print;
    json_t        *w, *behind;
    edge_t        *e;
    edges_t        ed, prev;

    memset(&prev, 0, sizeof(edges_t));
    start = now_ms();
    deadline = start + (long long) seconds * 1000;
    last_acked = -1;
    last_tracked = -1;
    last_print = 0;

    for ( ;; ) {
        now = now_ms();

        rc = read_edges(m, &ed, now);
        if (rc != MIGCTL_OK) {
            free(prev.e);
            return rc;
        }

        acked = 0;
        tracked = 0;

        for (i = 0; i < ed.n; i++) {
            e = &ed.e[i];

            /* awaited: live now, or live in an earlier round */
            e->tracked = e->live && (!e->has_hash || e->has_scope);

            for (j = 0; !e->tracked && j < prev.n; j++) {
                if (prev.e[j].tracked
                    && strcmp(prev.e[j].node, e->node) == 0)
                {
                    e->tracked = 1;
                }
            }

            if (!e->tracked) {
                continue;
            }

            tracked++;
            e->acked = strcmp(e->serving, want) == 0;
            acked += e->acked;
        }

        free(prev.e);
        prev = ed;

        /* on every change, and every few seconds while nothing moves */
        if (acked != last_acked || tracked != last_tracked
            || now - last_print >= WAIT_REPRINT_MS)
        {
            fprintf(stderr, "migctl: maintenance: waiting for %s:"
                    " %d/%d live edges acknowledged (%.1f s)\n", want,
                    acked, tracked, (now - start) / 1000.0);
            last_acked = acked;
            last_tracked = tracked;
            last_print = now;
        }

        if (acked == tracked || now >= deadline) {
            break;
        }

        usleep(WAIT_POLL_US);
    }

    w = json_object();
    behind = json_array();
    json_object_set_new(w, "want", json_string(want));
    json_object_set_new(w, "acknowledged", json_integer(acked));
    json_object_set_new(w, "live", json_integer(tracked));
    json_object_set_new(w, "behind", behind);
    json_object_set_new(res, "wait", w);

    if (acked == tracked) {
        if (tracked == 0) {
            fprintf(stderr, "migctl: maintenance: --wait: no live edge"
                    " reports to %s: nothing to wait for (check"
                    " maintenance_redis on the nginx nodes)\n",
                    m->k_edges);
        }

        free(prev.e);
        return MIGCTL_OK;
    }

    fprintf(stderr, "migctl: maintenance: --wait: %d of %d live edges not"
            " serving %s after %d s:", tracked - acked, tracked, want,
            seconds);

    named = 0;

    for (i = 0; i < prev.n; i++) {
        e = &prev.e[i];

        if (!e->tracked || e->acked) {
            continue;
        }

        json_array_append_new(behind, json_string(e->node));

        if (named++ < BEHIND_NAMED_MAX) {
            fprintf(stderr, "%s %s (serving %s, heartbeat %.1f s ago)",
                    named > 1 ? "," : "", e->node,
                    e->serving[0] ? e->serving : "nothing",
                    e->age_ms / 1000.0);
        }
    }

    if (named > BEHIND_NAMED_MAX) {
        fprintf(stderr, " and %d more", named - BEHIND_NAMED_MAX);
    }

    fprintf(stderr, ": check nginx on them, then migctl maintenance"
            " status\n");

    free(prev.e);

    return MIGCTL_PROBLEM;
}


static int
do_status(mnt_t *m, int argc, char **argv)
{
    int            rc, i, present, nok, nbehind, nstale, nlost, nother,
                   ngone;
    char           err[256], want[MIG_EDGE_VALUE_MAX + 1], when[64];
    const char    *flag, *state;
    json_t        *res, *edges, *je, *audit, *ae, *probs, *v;
    edge_t        *e;
    edges_t        ed;
    long long      now;
    size_t         k;
    uint64_t       sepoch;
    mig_mode_e     smode;
    mig_state_t    st;
    migctl_ctx_t  *ctx = m->ctx;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return MIGCTL_OK;
        }

        if (strcmp(argv[i], "--json") == 0) {
            ctx->json = 1;
            continue;
        }

        return migctl_error(ctx, MIGCTL_USAGE, "unknown option '%s' for"
                            " status: see migctl maintenance --help",
                            argv[i]);
    }

    rc = migctl_redis_open(ctx, &m->c);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    ed.e = NULL;
    ed.n = 0;
    audit = NULL;
    res = json_object();
    probs = json_array();
    edges = json_array();
    want[0] = '\0';

    rc = read_state(m, &st, &present, err, sizeof(err));
    if (rc == MIGCTL_UNREACHABLE) {
        goto done;
    }

    json_object_set_new(res, "scope", json_string(ctx->scope));

    if (rc != MIGCTL_OK) {
        state = "malformed";
        json_array_append_new(probs, json_pack("{s:s, s:s}", "problem",
                              "malformed_state", "detail", err));

    } else if (!present) {
        state = "missing";

    } else {
        state = "present";
        mig_edge_value_format(want, sizeof(want), st.mode, st.epoch);
    }

    json_object_set_new(res, "state", json_string(state));
    json_object_set_new(res, "mode", json_string(
                        present && rc == MIGCTL_OK ? mig_mode_str(st.mode)
                                                   : "off"));
    json_object_set_new(res, "epoch", json_integer(
                        present && rc == MIGCTL_OK ? (json_int_t) st.epoch
                                                   : 0));

    if (present && rc == MIGCTL_OK) {
        fmt_time(when, sizeof(when), st.since);
        json_object_set_new(res, "since", json_integer(st.since));
        json_object_set_new(res, "since_iso", json_string(when));
        json_object_set_new(res, "retry_after",
                            json_integer(st.retry_after));
        json_object_set_new(res, "reason", jstr(st.reason,
                                                strlen(st.reason)));
        json_object_set_new(res, "release", jstr(st.release,
                                                 strlen(st.release)));
        json_object_set_new(res, "actor", jstr(st.actor,
                                               strlen(st.actor)));
    }

    now = now_ms();

    rc = read_edges(m, &ed, now);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    nok = nbehind = nstale = nlost = nother = ngone = 0;

    for (i = 0; i < ed.n; i++) {
        e = &ed.e[i];

        if (!e->live && !e->has_hash) {
            /* stopped long enough for its edge hash to expire: a node
             * taken out of the fleet, shown but not a problem */
            flag = "gone";
            ngone++;

        } else if (!e->live) {
            flag = "stale";
            nstale++;

        } else if (e->has_hash && !e->has_scope) {
            flag = "other_scopes";
            nother++;

        } else if (strcmp(state, "missing") == 0) {
            /* a node that has served a change keeps it: Redis lost it */
            if (e->serving[0] == '\0'
                || (mig_edge_value_parse(e->serving, strlen(e->serving),
                                         &smode, &sepoch, NULL, 0) == MIG_OK
                    && sepoch == 0))
            {
                flag = "ok";
                nok++;

            } else {
                flag = "lost";
                nlost++;
            }

        } else if (want[0] && strcmp(e->serving, want) == 0) {
            flag = "ok";
            nok++;

        } else {
            flag = "behind";
            nbehind++;
        }

        je = json_object();
        json_object_set_new(je, "node", json_string(e->node));
        json_object_set_new(je, "serving", e->serving[0]
                            ? json_string(e->serving) : json_null());
        json_object_set_new(je, "age_ms", json_integer(e->age_ms));
        json_object_set_new(je, "live", json_boolean(e->live));
        json_object_set_new(je, "status", json_string(flag));
        json_object_set_new(je, "version", jstr(e->version,
                                                strlen(e->version)));
        json_object_set_new(je, "pid", json_integer(e->pid));
        json_array_append_new(edges, je);
    }

    if (nbehind) {
        json_array_append_new(probs, json_pack("{s:s, s:i}", "problem",
                              "edges_behind", "count", nbehind));
    }

    if (nstale) {
        json_array_append_new(probs, json_pack("{s:s, s:i}", "problem",
                              "edges_stale", "count", nstale));
    }

    if (nlost) {
        json_array_append_new(probs, json_pack("{s:s, s:i}", "problem",
                              "redis_lost_data", "count", nlost));
    }

    rc = read_audit(m, AUDIT_TAIL, &audit);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    json_object_set(res, "edges", edges);
    json_object_set(res, "problems", probs);
    json_object_set(res, "audit", audit);

    if (ctx->json) {
        rc = migctl_json_result(ctx, json_incref(res),
                                json_array_size(probs) ? MIGCTL_PROBLEM
                                                       : MIGCTL_OK);
        goto out;
    }

    /* text */

    if (strcmp(state, "present") == 0) {
        printf("scope %s: %s (epoch %llu) since %s (%lld s ago)\n",
               ctx->scope, st.mode == MIG_MODE_ON ? "ON" : "off",
               (unsigned long long) st.epoch, when,
               st.since ? now / 1000 - st.since : 0);
        printf("  reason:      ");
        print_clean(stdout, st.reason);
        printf("\n  release:     ");
        print_clean(stdout, st.release);
        printf("\n  actor:       ");
        print_clean(stdout, st.actor);
        printf("\n  retry_after: %u\n", st.retry_after);

    } else if (strcmp(state, "missing") == 0) {
        printf("scope %s: off (no state in Redis)\n", ctx->scope);

    } else {
        printf("scope %s: state hash malformed: ", ctx->scope);
        print_clean(stdout, err);
        printf("\n");
    }

    printf("edges: %d (%d ok, %d behind, %d stale, %d lost",
           ed.n, nok, nbehind, nstale, nlost);
    if (nother) {
        printf(", %d not gating this scope", nother);
    }
    if (ngone) {
        printf(", %d gone", ngone);
    }
    printf(")\n");

    for (i = 0; i < ed.n; i++) {
        je = json_array_get(edges, i);
        flag = json_string_value(json_object_get(je, "status"));

        printf("  %-24s %-24s %8.1f s  %s\n", ed.e[i].node,
               ed.e[i].serving[0] ? ed.e[i].serving : "-",
               ed.e[i].age_ms / 1000.0,
               strcmp(flag, "ok") == 0 ? "ok"
               : strcmp(flag, "behind") == 0 ? "BEHIND"
               : strcmp(flag, "stale") == 0 ? "STALE (heartbeat stopped)"
               : strcmp(flag, "lost") == 0
                 ? "LOST (serves a state Redis no longer has)"
               : strcmp(flag, "gone") == 0
                 ? "gone (no heartbeat, edge hash expired)"
               : "does not gate this scope");
    }

    if (nlost) {
        printf("Redis lost its data: %d edge(s) still serve a state Redis no"
               " longer holds; re-assert it with migctl maintenance on or"
               " off\n", nlost);
    }

    if (json_array_size(audit)) {
        printf("recent changes:\n");
    }

    json_array_foreach(audit, k, ae) {
        printf("  %s %s/%s %s epoch %s by ", afield(ae, "time"),
               afield(ae, "scope"), afield(ae, "action"),
               afield(ae, "result"), afield(ae, "epoch"));
        v = json_object_get(ae, "actor");
        print_clean(stdout, v ? json_string_value(v) : "?");
        v = json_object_get(ae, "reason");
        if (v && json_string_length(v)) {
            printf(": ");
            print_clean(stdout, json_string_value(v));
        }
        printf("\n");
    }

out:

    rc = json_array_size(probs) ? MIGCTL_PROBLEM : MIGCTL_OK;

done:

    free(ed.e);
    json_decref(audit);
    json_decref(edges);
    json_decref(probs);
    json_decref(res);

    return rc;
}


static int
read_state(mnt_t *m, mig_state_t *st, int *present, char *err,
    size_t errlen)
{
    int          rc;
    size_t       i;
    const char  *argv[2];
    size_t       lens[2];
    redisReply  *r, *f, *v;

    argv[0] = "HGETALL";
    argv[1] = m->k_state;
    lens[0] = 7;
    lens[1] = strlen(m->k_state);

    *present = 0;
    mig_state_init(st);

    r = migctl_redis_cmd(m->ctx, m->c, 2, argv, lens);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "%s is not a hash", m->k_state);
        goto done;
    }

    if (r->elements == 0) {
        rc = MIGCTL_OK;
        goto done;
    }

    *present = 1;

    for (i = 0; i + 1 < r->elements; i += 2) {
        f = r->element[i];
        v = r->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            snprintf(err, errlen, "%s holds a non-string field", m->k_state);
            goto done;
        }

        if (mig_state_field(st, f->str, f->len, v->str, v->len, err, errlen)
            != MIG_OK)
        {
            goto done;
        }
    }

    if (mig_state_finish(st, err, errlen) != MIG_OK) {
        goto done;
    }

    rc = MIGCTL_OK;

done:

    freeReplyObject(r);

    return rc;
}


/* every edge in P:edges with its heartbeat age and P:edge:<node> fields */

static int
read_edges(mnt_t *m, edges_t *ed, long long now)
{
    int            rc;
    char           key[MIG_KEY_MAX], num[32], *end;
    const char    *argv[5];
    size_t         lens[5], i, j;
    double         score;
    uint64_t       u;
    edge_t        *e;
    mig_mode_e     mode;
    redisReply    *r, *h, *f, *v;
    migctl_ctx_t  *ctx = m->ctx;

    ed->e = NULL;
    ed->n = 0;
    ed->skipped = 0;
    h = NULL;

    argv[0] = "ZRANGE";
    argv[1] = m->k_edges;
    argv[2] = "0";
    argv[3] = "9999";                        /* EDGES_MAX - 1 */
    argv[4] = "WITHSCORES";

    for (i = 0; i < 5; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = migctl_redis_cmd(ctx, m->c, 5, argv, lens);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type != REDIS_REPLY_ARRAY) {
        migctl_error(ctx, rc, "%s is not a sorted set: %s", m->k_edges,
                     r->type == REDIS_REPLY_ERROR ? r->str : "wrong type");
        goto done;
    }

    ed->e = calloc(r->elements / 2 + 1, sizeof(edge_t));
    if (ed->e == NULL) {
        migctl_error(ctx, rc, "out of memory");
        goto done;
    }

    for (i = 0; i + 1 < r->elements && ed->n < EDGES_MAX; i += 2) {
        f = r->element[i];
        v = r->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
            || mig_name_valid(f->str, f->len, NULL, 0) != MIG_OK
            || v->len >= sizeof(num))
        {
            ed->skipped++;
            continue;
        }

        memcpy(num, v->str, v->len);
        num[v->len] = '\0';
        score = strtod(num, &end);
        if (*end != '\0') {
            ed->skipped++;
            continue;
        }

        e = &ed->e[ed->n++];

        memcpy(e->node, f->str, f->len);
        e->node[f->len] = '\0';
        e->age_ms = now - (long long) score;
        if (e->age_ms < 0) {
            e->age_ms = 0;                   /* clocks a little apart */
        }
        e->live = e->age_ms <= ctx->conf.edge_live_ms;

        if (mig_key_edge(key, sizeof(key), ctx->conf.prefix, e->node) < 0) {
            continue;
        }

        argv[0] = "HGETALL";
        argv[1] = key;
        lens[0] = 7;
        lens[1] = strlen(key);

        h = migctl_redis_cmd(ctx, m->c, 2, argv, lens);
        if (h == NULL) {
            rc = MIGCTL_UNREACHABLE;
            goto done;
        }

        if (h->type == REDIS_REPLY_ARRAY && h->elements > 0) {
            e->has_hash = 1;

            for (j = 0; j + 1 < h->elements; j += 2) {
                f = h->element[j];
                v = h->element[j + 1];

                if (f->type != REDIS_REPLY_STRING
                    || v->type != REDIS_REPLY_STRING)
                {
                    continue;
                }

                if (f->len == strlen(ctx->scope)
                    && memcmp(f->str, ctx->scope, f->len) == 0)
                {
                    e->has_scope = 1;

                    if (mig_edge_value_parse(v->str, v->len, &mode, &u,
                                             NULL, 0) == MIG_OK
                        && v->len <= MIG_EDGE_VALUE_MAX)
                    {
                        memcpy(e->serving, v->str, v->len);
                        e->serving[v->len] = '\0';

                    } else {
                        strcpy(e->serving, "invalid");
                    }

                } else if (f->len == 7 && memcmp(f->str, "version", 7) == 0)
                {
                    snprintf(e->version, sizeof(e->version), "%.*s",
                             (int) (v->len < 31 ? v->len : 31), v->str);

                } else if (f->len == 3 && memcmp(f->str, "pid", 3) == 0) {
                    if (mig_parse_u64(v->str, v->len, 4194304, &u)
                        == MIG_OK)
                    {
                        e->pid = (long long) u;
                    }
                }
            }
        }

        freeReplyObject(h);
        h = NULL;
    }

    rc = MIGCTL_OK;

done:

    if (h != NULL) {
        freeReplyObject(h);
    }

    freeReplyObject(r);

    if (rc != MIGCTL_OK) {
        free(ed->e);
        ed->e = NULL;
        ed->n = 0;
    }

    return rc;
}


/* the newest entries of P:audit, newest first, as JSON objects */

static int
read_audit(mnt_t *m, int count, json_t **out)
{
    int            rc;
    char           cnt[16], when[64], name[MIG_NAME_MAX + 1];
    const char    *argv[6];
    size_t         lens[6], i, j;
    long long      ms;
    json_t        *list, *o;
    redisReply    *r, *ent, *id, *fv;

    snprintf(cnt, sizeof(cnt), "%d", count);

    argv[0] = "XREVRANGE";
    argv[1] = m->k_audit;
    argv[2] = "+";
    argv[3] = "-";
    argv[4] = "COUNT";
    argv[5] = cnt;

    for (i = 0; i < 6; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = migctl_redis_cmd(m->ctx, m->c, 6, argv, lens);
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
        json_object_set_new(o, "id", jstr(id->str, id->len));

        ms = strtoll(id->str, NULL, 10);
        fmt_time(when, sizeof(when), ms / 1000);
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

            json_object_set_new(o, name, jstr(fv->element[j + 1]->str,
                                              fv->element[j + 1]->len));
        }

        json_array_append_new(list, o);
    }

done:

    freeReplyObject(r);
    *out = list;

    return rc;
}


/* a JSON string from network bytes: bounded, invalid UTF-8 replaced */

static json_t *
jstr(const char *s, size_t len)
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


static const char *
afield(json_t *o, const char *name)
{
    const char  *v;

    v = json_string_value(json_object_get(o, name));

    return v ? v : "?";
}


/* text from Redis printed without terminal control characters */

static void
print_clean(FILE *f, const char *s)
{
    const unsigned char  *p;

    for (p = (const unsigned char *) s; p && *p; p++) {
        fputc((*p < 0x20 || *p == 0x7f) ? '?' : *p, f);
    }
}


static long long
now_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


static void
fmt_time(char *buf, size_t size, long long t)
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


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [-c FILE] [--json] [--scope S] maintenance SUBCOMMAND\n"
        "\n"
        "  on [--reason R] [--release SHA] [--retry-after N] [--wait[=SECONDS]]\n"
        "      set the flag (state, epoch + 1, publish and audit in one\n"
        "      server-side script); --wait blocks until every live edge\n"
        "      serves the new epoch (progress on stderr), exit 1 naming the\n"
        "      edges behind on timeout (default: wait_timeout, 30 s)\n"
        "  off [--wait[=SECONDS]] [--force --reason R]\n"
        "      run the health checks first: any failure refuses (exit 4,\n"
        "      audited \"refused\"); --force --reason reopens anyway,\n"
        "      audited \"forced\"\n"
        "  status [--json]\n"
        "      flag, metadata, every edge with the mode:epoch it serves and\n"
        "      its heartbeat age, the audit tail; exit 1 when an edge is\n"
        "      behind or stale, or Redis lost the state edges still serve\n"
        "      (an edge whose hash expired is shown as gone, not a problem)\n"
        "\n"
        "The actor in the audit is $MIGCTL_ACTOR, else the login user.\n"
        "exit codes: 0 ok, 1 problem (edges behind), 2 usage, 3 Redis\n"
        "unreachable (nothing written), 4 refused by the health gate.\n");
}


/* the flag set from another command (run --maintenance-on-failure) */

int
migctl_maintenance_set(migctl_ctx_t *ctx, int on, const char *reason,
    const char *release, unsigned long long *epoch)
{
    int     rc;
    char    id[64];
    mnt_t   m;
    opts_t  o;

    memset(&m, 0, sizeof(mnt_t));
    memset(&o, 0, sizeof(opts_t));
    m.ctx = ctx;
    o.reason = reason ? reason : "";
    o.release = release ? release : "";

    if (mig_key_state(m.k_state, sizeof(m.k_state), ctx->conf.prefix,
                      ctx->scope) < 0
        || mig_key_events(m.k_events, sizeof(m.k_events), ctx->conf.prefix)
           < 0
        || mig_key_audit(m.k_audit, sizeof(m.k_audit), ctx->conf.prefix) < 0)
    {
        return migctl_error(ctx, MIGCTL_USAGE, "key names too long: shorten"
                            " prefix or --scope");
    }

    if (check_text(&m, "reason", o.reason, MIG_REASON_MAX) != MIGCTL_OK
        || check_text(&m, "release", o.release, MIG_RELEASE_MAX)
           != MIGCTL_OK)
    {
        return MIGCTL_USAGE;
    }

    rc = set_actor(&m);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_redis_open(ctx, &m.c);
    if (rc == MIGCTL_OK) {
        rc = run_change(&m, on, &o, "ok", epoch, id, sizeof(id));
    }

    migctl_redis_close(m.c);

    return rc;
}
