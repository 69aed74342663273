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


#define WAIT_POLL_US       50000
#define WAIT_REPRINT_MS    5000
#define BEHIND_NAMED_MAX   20


static int do_change(mnt_t *m, int argc, char **argv, int on);
static int parse_opts(mnt_t *m, int argc, char **argv, int on,
    opts_t *o);
static int check_text(mnt_t *m, const char *opt, const char *v,
    size_t max);
static int set_actor(mnt_t *m);
static int short_ack_error(mnt_t *m);
static int run_refused(mnt_t *m, const opts_t *o, char *id, size_t idsize);
static int scope_guard(mnt_t *m, int on, const opts_t *o);
static int run_hooks(mnt_t *m, int on, const opts_t *o, json_t *res);
static void sanitize_text(char *s);
static int wait_edges(mnt_t *m, const char *want, int seconds,
    json_t *res);
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
        rc = migctl_mnt_status(&m, argc - 1, argv + 1, usage);

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

    /* a mistyped --scope, before the health checks, hooks and the write */
    if (!o.any_scope) {
        rc = scope_guard(m, on, &o);
        if (rc != MIGCTL_OK) {
            return rc;
        }
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
        { "--any-scope", MIGCTL_OPT_FLAG, &o->any_scope, NULL, 0, 0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    const migctl_opt_t  off_opts[] = {
        { "--reason", MIGCTL_OPT_STRING, &o->reason, "R", 0, 0, 0 },
        { "--release", MIGCTL_OPT_STRING, &o->release, "SHA", 0, 0, 0 },
        { "--wait", MIGCTL_OPT_OPTIONAL_SECONDS, &o->wait, "SECONDS", 0,
          86400, ctx->conf.wait_default_s },
        { "--force", MIGCTL_OPT_FLAG, &o->force, NULL, 0, 0, 0 },
        { "--any-scope", MIGCTL_OPT_FLAG, &o->any_scope, NULL, 0, 0, 0 },
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


/*
 * A change for a scope that no live edge serves, while some edge is live,
 * is refused (audited as an off refusal is): a mistyped --scope would
 * otherwise look done while the site stays open.  With no live edge at
 * all (none deployed yet, heartbeats expired), or one whose edge hash is
 * gone (what it serves is unknown), it goes on as before.
 */
static int
scope_guard(mnt_t *m, int on, const opts_t *o)
{
    int            rc, i;
    char           err[256], id[64],
                   list[SERVED_MAX * (MIG_NAME_MAX + 2) + 1];
    size_t         len;
    json_t        *j, *a;
    mnt_served_t   sv;
    migctl_ctx_t  *ctx = m->ctx;

    rc = migctl_mnt_read_served(m, &sv, migctl_wall_ms(), err, sizeof(err));
    if (rc == MIGCTL_UNREACHABLE) {
        return rc;
    }

    if (rc != MIGCTL_OK) {
        /* the guard never blocks containment on a key it cannot read */
        fprintf(stderr, "migctl: maintenance: the scopes the edges serve"
                " are unreadable (%s): the scope is not checked\n", err);
        return MIGCTL_OK;
    }

    if (sv.live == 0 || sv.serving > 0 || sv.unknown > 0) {
        return MIGCTL_OK;
    }

    list[0] = '\0';
    a = json_array();

    for (i = 0; i < sv.nscopes; i++) {
        len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
                 sv.scopes[i]);
        json_array_append_new(a, json_string(sv.scopes[i]));
    }

    rc = migctl_mnt_audit(m, on ? "on" : "off", o->reason, "refused", o, id,
                          sizeof(id));
    if (rc != MIGCTL_OK) {
        json_decref(a);
        return rc;
    }

    rc = migctl_error(ctx, MIGCTL_REFUSED, "no live edge serves scope '%s'"
                      " (the %d live edge%s serve%s: %s): a mistyped"
                      " --scope? --any-scope sets it anyway", ctx->scope,
                      sv.live, sv.live == 1 ? "" : "s",
                      sv.live == 1 ? "s" : "",
                      list[0] ? list : "no scope");

    if (ctx->json) {
        j = json_object();
        json_object_set_new(j, "error", json_string(ctx->error));
        json_object_set_new(j, "scope", json_string(ctx->scope));
        json_object_set_new(j, "action", json_string(on ? "on" : "off"));
        json_object_set_new(j, "result", json_string("refused"));
        json_object_set_new(j, "audit_id", json_string(id));
        json_object_set_new(j, "live_edges", json_integer(sv.live));
        json_object_set(j, "scopes_served", a);
        rc = migctl_json_result(ctx, j, rc);
    }

    json_decref(a);

    return rc;
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

        rc = migctl_mnt_read_edges(m, &ed, now);
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
        "                          needs --reason (off)\n"
        "  --any-scope             set the flag though no live edge serves\n"
        "                          the scope (on, off); without it that is\n"
        "                          refused (exit 4): a mistyped --scope\n");

    migctl_usage_footer(f, MIGCTL_USAGE_REDIS,
        "0 ok;1 a problem (edges behind or stale, no live edge gates the"
        " scope, Redis lost the state edges still serve);2;3 Redis"
        " unreachable or no master found through the sentinels (nothing"
        " written); also a change not confirmed after a lost link, or"
        " acknowledged by fewer replicas than redis.wait;4 refused by the"
        " health gate, or no live edge serves the scope;5 a hook failed",
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
