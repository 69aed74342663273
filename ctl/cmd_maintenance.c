/*
 * cmd_maintenance.c: migctl maintenance on|off|status: one server-side
 * script per change (state, epoch, publish, audit), --wait on the edges.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "health.h"
#include "maintenance.h"


#define AUDIT_SCAN         1000              /* status: since when */
#define WAIT_POLL_US       50000
#define WAIT_REPRINT_MS    5000
#define BEHIND_NAMED_MAX   20


static int do_change(mnt_t *m, int argc, char **argv, int on);
static int do_status(mnt_t *m, int argc, char **argv);
static int parse_opts(mnt_t *m, int argc, char **argv, int on,
    opts_t *o);
static int check_text(mnt_t *m, const char *opt, const char *v,
    size_t max);
static int set_actor(mnt_t *m);
static int short_ack_error(mnt_t *m);
static int run_refused(mnt_t *m, const opts_t *o, char *id, size_t idsize);
static int run_hooks(mnt_t *m, int on, const opts_t *o, json_t *res);
static void sanitize_text(char *s);
static int wait_edges(mnt_t *m, const char *want, int seconds,
    json_t *res);
static int state_since(mnt_t *m, const mig_state_t *st, long long *since,
    long long *after, const char **src);
static int read_state(mnt_t *m, mig_state_t *st, int *present,
    char *err, size_t errlen);
static int read_edges(mnt_t *m, migctl_edges_t *ed,
    long long now);
static void print_clean(FILE *f, const char *s);
static void usage(FILE *f);


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
    int                  rc, hc, hooks_rc;
    char                 id[64], want[MIG_EDGE_VALUE_MAX + 1];
    const char          *result;
    json_t              *res, *health, *checks, *ck;
    opts_t               o;
    size_t               i;
    unsigned long long   epoch;
    migctl_ctx_t        *ctx = m->ctx;

    res = NULL;
    health = NULL;
    hooks_rc = MIGCTL_OK;

    rc = parse_opts(m, argc, argv, on, &o);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = set_actor(m);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    /* off runs the checks: a bad url is a configuration error first */
    if (!on) {
        rc = migctl_conf_check_urls(ctx);
        if (rc != MIGCTL_OK) {
            return rc;
        }
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
        /*
         * Reopening is gated: every health check must pass, and with no
         * check at all nothing says the app is healthy: refused too.
         */
        hc = migctl_health_run(ctx, &health);
        json_object_set(res, "health", health);

        rc = migctl_mnt_refind_master(m);
        if (rc != MIGCTL_OK) {
            goto done;
        }

        if (ctx->conf.nchecks == 0) {
            hc = MIGCTL_PROBLEM;
            fprintf(stderr, "migctl: maintenance: no health check is"
                    " configured (health.checks in %s): nothing says the"
                    " app is healthy\n", ctx->conf.source[0]
                                         ? ctx->conf.source
                                         : "/etc/migctl/migctl.conf");
        }

        checks = json_object_get(health, "checks");

        json_array_foreach(checks, i, ck) {
            if (json_is_true(json_object_get(ck, "ok"))) {
                continue;
            }

            fprintf(stderr, "migctl: maintenance: health check %s failed: ",
                    json_string_value(json_object_get(ck, "name")));
            print_clean(stderr, json_string_value(json_object_get(ck,
                                                              "detail")));
            fputc('\n', stderr);
        }

        if (hc == MIGCTL_OK && !ctx->json) {
            printf("health: %d check%s passed (%lld ms)\n",
                   ctx->conf.nchecks, ctx->conf.nchecks == 1 ? "" : "s",
                   (long long) json_integer_value(json_object_get(health,
                                                              "total_ms")));
        }

        if (hc != MIGCTL_OK) {
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

                rc = migctl_error(ctx, MIGCTL_REFUSED, "off refused: %s, the"
                                  " flag is unchanged: %s, or --force"
                                  " --reason R (audited)",
                                  ctx->conf.nchecks
                                  ? "health checks failed"
                                  : "no health check configured",
                                  ctx->conf.nchecks
                                  ? "fix them" : "configure health.checks");
                goto done;
            }

            result = "forced";
        }

        /* containment undone (workers, cron) once the app is healthy */
        hooks_rc = run_hooks(m, 0, &o, res);
    }

    rc = migctl_mnt_change(m, on, &o, result, &epoch, id, sizeof(id));
    if (rc != MIGCTL_OK) {
        goto done;
    }

    json_object_set_new(res, "mode", json_string(on ? "on" : "off"));
    json_object_set_new(res, "epoch", json_integer((json_int_t) epoch));
    json_object_set_new(res, "result", json_string(result));
    json_object_set_new(res, "audit_id", json_string(id));
    json_object_set_new(res, "actor", json_string(m->actor));
    json_object_set_new(res, "redis", migctl_redis_json(ctx));

    if (m->wanted > 0) {
        json_object_set_new(res, "replication",
                            json_pack("{s:i, s:i, s:I, s:b}",
                                      "wanted", m->wanted,
                                      "acknowledged", m->acked,
                                      "timeout_ms", (json_int_t)
                                      ctx->conf.redis_wait_timeout_ms,
                                      "ok", !m->short_ack));
    }

    if (!ctx->json) {
        printf("maintenance %s for scope %s (epoch %llu)%s\n",
               on ? "on" : "off", ctx->scope, epoch,
               strcmp(result, "forced") == 0
               ? ", forced past failed health checks" : "");
    }

    if (on) {
        /* containment: pause workers and cron once the flag is on */
        hooks_rc = run_hooks(m, 1, &o, res);
    }

    if (o.wait) {
        mig_edge_value_format(want, sizeof(want),
                              on ? MIG_MODE_ON : MIG_MODE_OFF, epoch);
        rc = wait_edges(m, want, o.wait, res);
    }

    if (m->short_ack) {
        /* the last word: the change may not survive a failover */
        rc = short_ack_error(m);

    } else if (rc == MIGCTL_OK && hooks_rc != MIGCTL_OK) {
        rc = migctl_error(ctx, hooks_rc, "the flag is %s, but a hook"
                          " failed (above): finish its work by hand",
                          on ? "on" : "off");
    }

    if (ctx->json) {
        rc = migctl_json_result(ctx, json_incref(res), rc);
    }

done:

    json_decref(health);
    json_decref(res);

    return rc;
}


/*
 * hooks.on / hooks.off in turn, each bounded by its timeout, without
 * migctl's secrets; each result printed and audited.  MIGCTL_OK, or
 * MIGCTL_CMDFAIL when one failed (the others still run).
 */
static int
run_hooks(mnt_t *m, int on, const opts_t *o, json_t *res)
{
    int                    i, n, ok, rc;
    char                 **envp, detail[MIGCTL_DETAIL_MAX], id[64],
                           what[MIG_REASON_MAX + 1];
    long                   ms;
    json_t                *list, *h;
    const migctl_check_t  *hk;
    migctl_ctx_t          *ctx = m->ctx;

    n = on ? ctx->conf.nhooks_on : ctx->conf.nhooks_off;
    if (n == 0) {
        return MIGCTL_OK;
    }

    envp = migctl_env_scrubbed(ctx);
    if (envp == NULL) {
        return migctl_error(ctx, MIGCTL_CMDFAIL, "hooks: out of memory");
    }

    list = json_array();
    rc = MIGCTL_OK;

    for (i = 0; i < n; i++) {
        hk = on ? &ctx->conf.hooks_on[i] : &ctx->conf.hooks_off[i];

        ok = migctl_run_command(hk->command, hk->timeout_ms, envp, detail,
                                sizeof(detail), &ms);
        if (!ok) {
            rc = MIGCTL_CMDFAIL;
        }

        fprintf(stderr, "migctl: maintenance: hook %s.%s %s (%ld ms)%s",
                on ? "on" : "off", hk->name, ok ? "ok" : "FAILED", ms,
                detail[0] ? ": " : "");
        print_clean(stderr, detail);
        fputc('\n', stderr);

        h = json_object();
        json_object_set_new(h, "name", json_string(hk->name));
        json_object_set_new(h, "ok", json_boolean(ok));
        json_object_set_new(h, "detail",
                            migctl_mnt_jstr(detail, strlen(detail)));
        json_object_set_new(h, "time_ms", json_integer(ms));
        json_array_append_new(list, h);

        /* the audit names the hook and its result, not the command */
        snprintf(what, sizeof(what), "hook %s.%s: %.300s", on ? "on" : "off",
                 hk->name, detail);
        sanitize_text(what);

        if (migctl_mnt_audit(m, on ? "hook_on" : "hook_off", what,
                             ok ? "ok" : "failed", o, id, sizeof(id))
            != MIGCTL_OK)
        {
            rc = MIGCTL_CMDFAIL;
        }
    }

    json_object_set_new(res, on ? "hooks_on" : "hooks_off", list);
    migctl_env_free(envp);

    return rc;
}


static int
parse_opts(mnt_t *m, int argc, char **argv, int on, opts_t *o)
{
    int            rc, n, retry;
    const char    *cmd;
    migctl_ctx_t  *ctx = m->ctx;

    const migctl_opt_t  on_opts[] = {
        { "--reason", MIGCTL_OPT_STRING, &o->reason, "R", 0, 0, 0 },
        { "--release", MIGCTL_OPT_STRING, &o->release, "SHA", 0, 0, 0 },
        { "--retry-after", MIGCTL_OPT_INT, &retry, "seconds", 0,
          MIG_RETRY_AFTER_MAX, 0 },
        { "--wait", MIGCTL_OPT_OPTIONAL_SECONDS, &o->wait, "SECONDS", 0,
          86400, ctx->conf.wait_default_s },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    const migctl_opt_t  off_opts[] = {
        { "--reason", MIGCTL_OPT_STRING, &o->reason, "R", 0, 0, 0 },
        { "--release", MIGCTL_OPT_STRING, &o->release, "SHA", 0, 0, 0 },
        { "--wait", MIGCTL_OPT_OPTIONAL_SECONDS, &o->wait, "SECONDS", 0,
          86400, ctx->conf.wait_default_s },
        { "--force", MIGCTL_OPT_FLAG, &o->force, NULL, 0, 0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    memset(o, 0, sizeof(opts_t));
    o->reason = "";
    o->release = "";
    retry = 0;

    /* "migctl: maintenance on: unknown option ...: see migctl
     * maintenance on --help" */
    cmd = ctx->cmd;
    ctx->cmd = on ? "maintenance on" : "maintenance off";
    rc = migctl_opt_parse(ctx, on ? on_opts : off_opts, argc, argv, &n,
                          usage);
    ctx->cmd = cmd;

    if (rc != MIGCTL_OK) {
        return rc;
    }

    if (n > 1) {
        return migctl_error(ctx, MIGCTL_USAGE, "unexpected argument '%s'"
                            " for %s: see migctl maintenance --help",
                            argv[1], on ? "on" : "off");
    }

    o->retry_after = retry;

    if (check_text(m, "--reason", o->reason, MIG_REASON_MAX) != MIGCTL_OK
        || check_text(m, "--release", o->release, MIG_RELEASE_MAX)
           != MIGCTL_OK)
    {
        return MIGCTL_USAGE;
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
    const char  *a;

    a = migctl_actor();

    if (check_text(m, "$MIGCTL_ACTOR", a, MIG_ACTOR_MAX) != MIGCTL_OK) {
        return MIGCTL_USAGE;
    }

    strcpy(m->actor, a);

    return MIGCTL_OK;
}


/* the line (and exit 3) for a change fewer replicas acknowledged */
static int
short_ack_error(mnt_t *m)
{
    return migctl_error(m->ctx, MIGCTL_UNREACHABLE, "written on the master"
                        " (Redis %s) but only %d of %d replicas acknowledged"
                        " within %ld ms: the change may be lost in a"
                        " failover; run migctl maintenance status and"
                        " repeat if needed", migctl_redis_addr(m->ctx),
                        m->acked, m->wanted,
                        m->ctx->conf.redis_wait_timeout_ms);
}


static int
run_refused(mnt_t *m, const opts_t *o, char *id, size_t idsize)
{
    return migctl_mnt_audit(m, "off", o->reason, "refused", o, id, idsize);
}


/* printable ASCII only: a hook's output goes into the audit stream */
static void
sanitize_text(char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f) {
            *s = '?';
        }
    }
}


/*
 * Polls P:edges and P:edge:<node> until every edge that was live at some
 * point of the wait serves "want".  An edge stays awaited once seen live:
 * one that stops (crash, SIGSTOP) during the wait is named, not dropped.
 */

static int
wait_edges(mnt_t *m, const char *want, int seconds, json_t *res)
{
    int              rc, i, j, acked, tracked, last_acked, last_tracked,
                     named, gating;
    char             gated[MIGCTL_SCOPES_MAX * 2];
    long long        start, deadline, now, last_print;
    json_t          *w, *behind;
    migctl_edge_t   *e;
    migctl_edges_t   ed, prev;

    memset(&prev, 0, sizeof(migctl_edges_t));
    start = migctl_wall_ms();
    deadline = start + (long long) seconds * 1000;
    last_acked = -1;
    last_tracked = -1;
    last_print = 0;

    for ( ;; ) {
        now = migctl_wall_ms();

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

        for (i = 0, gating = 0; i < ed.n; i++) {
            gating += ed.e[i].live && ed.e[i].has_scope;
        }

        if (gating == 0 && tracked == acked) {
            /* a typo in --scope or prefix must not look like success */
            break;
        }

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

    if (gating == 0) {
        migctl_edges_gated(&prev, gated, sizeof(gated));
        json_object_set_new(w, "gated_scopes", json_string(gated));
        free(prev.e);

        if (gated[0] == '\0') {
            return migctl_error(m->ctx, MIGCTL_PROBLEM, "--wait: no live"
                                " edge reports to %s: nobody serves the"
                                " change: check prefix (\"%s\") and"
                                " maintenance_redis on the nginx nodes",
                                m->k_edges, m->ctx->conf.prefix);
        }

        return migctl_error(m->ctx, MIGCTL_PROBLEM, "--wait: no live edge"
                            " gates scope %s (live edges gate: %s): check"
                            " --scope and the edges' maintenance_scope",
                            m->ctx->scope, gated);
    }

    if (acked == tracked) {
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
    int              rc, i, n, present, nok, nbehind, nstale, nlost,
                     nother, ngone;
    char             err[256], want[MIG_EDGE_VALUE_MAX + 1], when[64],
                     afterw[64];
    const char      *flag, *state, *since_src;
    json_t          *res, *edges, *je, *audit, *ae, *probs, *v;
    size_t           k;
    uint64_t         sepoch;
    long long        now, since, after;
    mig_mode_e       smode;
    mig_state_t      st;
    migctl_edge_t   *e;
    migctl_edges_t   ed;
    migctl_ctx_t    *ctx = m->ctx;

    const migctl_opt_t  opts[] = {
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    rc = migctl_opt_parse(ctx, opts, argc, argv, &n, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    if (n > 1) {
        return migctl_error(ctx, MIGCTL_USAGE, "unexpected argument '%s'"
                            " for status: see migctl maintenance --help",
                            argv[1]);
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
    json_object_set_new(res, "redis", migctl_redis_json(ctx));

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

    since = 0;
    after = 0;
    since_src = "state";

    if (present && rc == MIGCTL_OK) {
        rc = state_since(m, &st, &since, &after, &since_src);
        if (rc != MIGCTL_OK) {
            goto done;
        }

        migctl_mnt_fmt_time(when, sizeof(when), since);
        migctl_mnt_fmt_time(afterw, sizeof(afterw), after);
        json_object_set_new(res, "since", since ? json_integer(since)
                                                : json_null());
        json_object_set_new(res, "since_iso", since ? json_string(when)
                                                    : json_null());
        json_object_set_new(res, "since_source", json_string(since_src));
        if (after) {
            json_object_set_new(res, "changed_after", json_integer(after));
        }
        json_object_set_new(res, "retry_after",
                            json_integer(st.retry_after));
        /* what the edges send: the state's own, else their directive */
        json_object_set_new(res, "retry_after_sent",
                            st.retry_after >= 1
                            && st.retry_after <= MIG_RETRY_AFTER_MAX
                            ? json_integer(st.retry_after) : json_null());
        json_object_set_new(res, "reason",
                            migctl_mnt_jstr(st.reason, strlen(st.reason)));
        json_object_set_new(res, "release",
                            migctl_mnt_jstr(st.release, strlen(st.release)));
        json_object_set_new(res, "actor",
                            migctl_mnt_jstr(st.actor, strlen(st.actor)));
    }

    now = migctl_wall_ms();

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
        json_object_set_new(je, "version",
                            migctl_mnt_jstr(e->version, strlen(e->version)));
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

    rc = migctl_mnt_read_audit(m, AUDIT_TAIL, &audit);
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
        if (since) {
            printf("scope %s: %s (epoch %llu) since %s (%lld s ago)\n",
                   ctx->scope, st.mode == MIG_MODE_ON ? "ON" : "off",
                   (unsigned long long) st.epoch, when,
                   now / 1000 - since);

        } else {
            printf("scope %s: %s (epoch %llu) since unknown: set outside"
                   " migctl (not audited) after %s\n", ctx->scope,
                   st.mode == MIG_MODE_ON ? "ON" : "off",
                   (unsigned long long) st.epoch, afterw);
        }
        printf("  reason:      ");
        print_clean(stdout, st.reason);
        printf("\n  release:     ");
        print_clean(stdout, st.release);
        printf("\n  actor:       ");
        print_clean(stdout, st.actor);
        if (st.mode != MIG_MODE_ON) {
            printf("\n  retry_after: -\n");

        } else if (st.retry_after >= 1
                   && st.retry_after <= MIG_RETRY_AFTER_MAX)
        {
            printf("\n  retry_after: %u s (the edges send this)\n",
                   st.retry_after);

        } else {
            printf("\n  retry_after: not set: the edges send their"
                   " maintenance_retry_after (120 s unless configured)\n");
        }

    } else if (strcmp(state, "missing") == 0) {
        printf("scope %s: off (no state in Redis)\n", ctx->scope);

    } else {
        printf("scope %s: state hash malformed: ", ctx->scope);
        print_clean(stdout, err);
        printf("\n");
    }

    printf("redis: %s\n", migctl_redis_addr(ctx));

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


/*
 * When the current mode began: the oldest audited change of the newest
 * run of changes to this mode, when the newest audited change is the
 * state in force.  A state written by hand (redis-cli HSET, not audited)
 * keeps its own "since" only when newer than the last audited change;
 * else it is unknown, changed after *after.
 */
static int
state_since(mnt_t *m, const mig_state_t *st, long long *since,
    long long *after, const char **src)
{
    int           rc, run;
    size_t        i;
    long long     t;
    json_t       *all, *e;
    const char   *mode, *act, *res;

    *since = st->since;
    *after = 0;
    *src = "state";

    rc = migctl_mnt_read_audit(m, AUDIT_SCAN, &all);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    run = 0;

    json_array_foreach(all, i, e) {
        act = afield(e, "action");
        res = afield(e, "result");

        if (strcmp(afield(e, "scope"), m->ctx->scope) != 0
            || (strcmp(act, "on") != 0 && strcmp(act, "off") != 0)
            || (strcmp(res, "ok") != 0 && strcmp(res, "forced") != 0))
        {
            continue;
        }

        mode = afield(e, "mode");
        t = strtoll(afield(e, "id"), NULL, 10) / 1000;

        if (run == 0) {
            if (strcmp(mode, mig_mode_str(st->mode)) != 0
                || strtoull(afield(e, "epoch"), NULL, 10) != st->epoch)
            {
                /* the state in force is not the last audited change */
                if (st->since <= t) {
                    *since = 0;
                    *after = t;
                    *src = "unknown";
                }
                break;
            }

            *src = "audit";
            run = 1;
            continue;                        /* its own since is exact */
        }

        if (strcmp(mode, mig_mode_str(st->mode)) != 0) {
            break;
        }

        *since = t;                          /* an earlier change, same mode */
        run++;
    }

    json_decref(all);

    return MIGCTL_OK;
}


static int
read_state(mnt_t *m, mig_state_t *st, int *present, char *err,
    size_t errlen)
{
    return migctl_state_read(m->ctx, m->c, m->k_state, st, present, err,
                             errlen);
}


static int
read_edges(mnt_t *m, migctl_edges_t *ed, long long now)
{
    return migctl_edges_read(m->ctx, m->c, m->ctx->scope, ed, now, 0);
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


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] [--scope S] maintenance on|off|status"
        " [options]\n"
        "\n"
        "The maintenance flag of the scope, served by every edge.\n"
        "on sets it (state, epoch + 1, publish and audit in one server-side\n"
        "script), then runs hooks.on.  off runs the health checks first:\n"
        "any failure, or no check configured, refuses (audited \"refused\");\n"
        "--force --reason reopens anyway (audited \"forced\"); then\n"
        "hooks.off, then the flag.  status: the flag, since when, the\n"
        "Retry-After the edges send, every edge with the mode:epoch it\n"
        "serves and its heartbeat age, the audit tail (an edge whose hash\n"
        "expired is shown as gone, not a problem).  A failed hook is\n"
        "printed and audited.  The actor in the audit is $MIGCTL_ACTOR,\n"
        "else the login user.\n"
        "\n"
        "options:\n"
        "  --reason R              why (on, off --force; audited)\n"
        "  --release SHA           the release concerned (on, off)\n"
        "  --retry-after N         seconds for Retry-After (on)\n"
        "  --wait[=SECONDS]        block until every live edge serves the\n"
        "                          new epoch (progress on stderr), exit 1\n"
        "                          naming the edges behind on timeout\n"
        "                          (default wait_timeout, 30 s), or at once\n"
        "                          when no live edge gates the scope;\n"
        "                          --wait 5 is --wait=5 (on, off)\n"
        "  --force                 reopen though the health gate refuses;\n"
        "                          needs --reason (off)\n");

    migctl_usage_footer(f, MIGCTL_USAGE_REDIS,
        "0 ok;1 a problem (edges behind or stale, no live edge gates the"
        " scope, Redis lost the state edges still serve);2;3 Redis"
        " unreachable or no master found through the sentinels (nothing"
        " written); also a change not confirmed after a lost link, or"
        " acknowledged by fewer replicas than redis.wait;4 refused by the"
        " health gate;5 a hook failed",
        "migctl maintenance on --reason \"migrate failed\" --release abc123"
        " --wait\n"
        "migctl maintenance status\n"
        "migctl maintenance off --wait");
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
        rc = migctl_mnt_change(&m, on, &o, "ok", epoch, id, sizeof(id));
    }

    if (rc == MIGCTL_OK && m.short_ack) {
        rc = short_ack_error(&m);
    }

    migctl_redis_close(m.c);

    return rc;
}
