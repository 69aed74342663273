/*
 * maintenance_status.c: migctl maintenance status: the state, since when,
 * every edge and what it serves, the audit tail; text or --json.
 */

#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "health.h"
#include "maintenance.h"


#define AUDIT_SCAN         1000              /* status: since when */


static int state_since(mnt_t *m, const mig_state_t *st, long long *since,
    long long *after, const char **src);
static int read_state(mnt_t *m, mig_state_t *st, int *present,
    char *err, size_t errlen);


int
migctl_mnt_status(mnt_t *m, int argc, char **argv,
    void (*usage)(FILE *f))
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

    rc = migctl_mnt_read_edges(m, &ed, now);
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


int
migctl_mnt_read_edges(mnt_t *m, migctl_edges_t *ed, long long now)
{
    return migctl_edges_read(m->ctx, m->c, m->ctx->scope, ed, now, 0);
}


/*
 * The scope guard's read, one round trip: the live edges (the same rule
 * as migctl_edges_read(): heartbeat score >= now - edge_live_ms) and the
 * field names of each one's P:edge:<node>, read server-side.
 */
static const char served_lua[] =
    /* KEYS: edges.  ARGV: lowest live score, edge key prefix, max */
    "local n = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf',\n"
    "  'LIMIT', 0, ARGV[3])\n"
    "local out = {}\n"
    "for _, node in ipairs(n) do\n"
    "  local f = redis.pcall('HKEYS', ARGV[2] .. node)\n"
    "  if type(f) ~= 'table' or f.err then f = {} end\n"
    "  out[#out + 1] = node\n"
    "  out[#out + 1] = f\n"
    "end\n"
    "return out\n";


/*
 * MIGCTL_OK and *sv; MIGCTL_UNREACHABLE (printed); MIGCTL_PROBLEM with
 * err when Redis refused the read (a key of the wrong type, an ACL): the
 * caller decides.
 */
int
migctl_mnt_read_served(mnt_t *m, mnt_served_t *sv, long long now,
    char *err, size_t errlen)
{
    int            rc, i, k, d, valid, mine;
    char           min[32], kedge[MIG_KEY_MAX], *p;
    size_t         j, lens[7], plen;
    const char    *argv[7];
    redisReply    *r, *node, *f, *fl;
    migctl_ctx_t  *ctx = m->ctx;

    memset(sv, 0, sizeof(mnt_served_t));

    /* "P:edge:" from the one place that names keys: a node "x", cut */
    if (mig_key_edge(kedge, sizeof(kedge), ctx->conf.prefix, "x") < 0) {
        snprintf(err, errlen, "key names too long");
        return MIGCTL_PROBLEM;
    }

    plen = strlen(kedge) - 1;
    kedge[plen] = '\0';

    snprintf(min, sizeof(min), "%lld", now - ctx->conf.edge_live_ms);

    /* EVAL_RO (Redis 7): a read, as a read; EVAL before Redis 7 */
    argv[0] = "EVAL_RO";
    argv[1] = served_lua;
    argv[2] = "1";
    argv[3] = m->k_edges;
    argv[4] = min;
    argv[5] = kedge;
    argv[6] = "10000";                       /* migctl_edges_read()'s */

    for (i = 0; i < 7; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = migctl_redis_cmd(ctx, m->c, 7, argv, lens);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    if (r->type == REDIS_REPLY_ERROR
        && strncmp(r->str, "ERR unknown command", 19) == 0)
    {
        freeReplyObject(r);

        argv[0] = "EVAL";
        lens[0] = 4;

        r = migctl_redis_cmd(ctx, m->c, 7, argv, lens);
        if (r == NULL) {
            return MIGCTL_UNREACHABLE;
        }
    }

    rc = MIGCTL_PROBLEM;

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%.*s", (int) (r->len < 200 ? r->len : 200),
                 r->str);

        /* Redis names the script's hash after the error: noise here */
        p = strstr(err, " script: ");
        if (p != NULL) {
            *p = '\0';
        }

        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "unexpected reply");
        goto done;
    }

    for (j = 0; j + 1 < r->elements; j += 2) {
        node = r->element[j];
        fl = r->element[j + 1];

        if (node->type != REDIS_REPLY_STRING
            || mig_name_valid(node->str, node->len, NULL, 0) != MIG_OK
            || fl->type != REDIS_REPLY_ARRAY)
        {
            continue;                        /* skipped as status does */
        }

        sv->live++;

        if (fl->elements == 0) {
            /* no edge hash: what it serves is unknown, maybe ours */
            sv->unknown++;
            continue;
        }

        mine = 0;

        for (i = 0; i < (int) fl->elements; i++) {
            f = fl->element[i];

            if (f->type != REDIS_REPLY_STRING
                || (f->len == 7 && memcmp(f->str, "seen_ms", 7) == 0)
                || (f->len == 7 && memcmp(f->str, "version", 7) == 0)
                || (f->len == 3 && memcmp(f->str, "pid", 3) == 0)
                || mig_name_valid(f->str, f->len, NULL, 0) != MIG_OK)
            {
                continue;
            }

            if (f->len == strlen(ctx->scope)
                && memcmp(f->str, ctx->scope, f->len) == 0)
            {
                mine = 1;
            }

            /* the distinct scopes, sorted: the SERVED_MAX lowest */
            valid = 1;

            for (k = 0; k < sv->nscopes; k++) {
                d = strncmp(sv->scopes[k], f->str, f->len);
                if (d == 0 && sv->scopes[k][f->len] == '\0') {
                    valid = 0;
                    break;
                }

                if (d >= 0) {
                    break;
                }
            }

            if (!valid || k >= SERVED_MAX) {
                continue;
            }

            if (sv->nscopes == SERVED_MAX) {
                sv->nscopes--;               /* the last one makes room */
            }

            memmove(sv->scopes[k + 1], sv->scopes[k],
                    (sv->nscopes - k) * sizeof(sv->scopes[0]));
            memcpy(sv->scopes[k], f->str, f->len);
            sv->scopes[k][f->len] = '\0';
            sv->nscopes++;
        }

        sv->serving += mine;
    }

    rc = MIGCTL_OK;

done:

    freeReplyObject(r);

    return rc;
}
