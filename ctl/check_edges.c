/*
 * check_edges.c: the fleet as Redis records it (P:edges, P:edge:<node>,
 * P:state:S), read by maintenance status and --wait, and the edges check.
 */

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "health.h"


#define EDGES_MAX   10000


static void add_scope(migctl_edge_t *e, const char *s, size_t len);
static int list_has(const char *list, const char *name);


void
migctl_check_edges(migctl_check_run_t *r)
{
    int              rc, i, present, gating, behind, named;
    char             key[MIG_KEY_MAX], want[MIG_EDGE_VALUE_MAX + 1],
                     err[256], gated[MIGCTL_SCOPES_MAX], list[512];
    size_t           len;
    const char      *scope;
    mig_state_t      st;
    migctl_edge_t   *e;
    migctl_edges_t   ed;
    redisContext    *c;
    migctl_ctx_t    *ctx = r->ctx;

    r->ok = 0;
    ed.e = NULL;
    c = NULL;

    scope = r->ck->scope ? r->ck->scope : ctx->scope;

    /* every Redis command within the check's own timeout too */
    if (ctx->conf.redis_timeout_ms > r->ck->timeout_ms) {
        ctx->conf.redis_timeout_ms = r->ck->timeout_ms;
    }

    if (migctl_redis_open(ctx, &c) != MIGCTL_OK) {
        snprintf(r->detail, sizeof(r->detail), "%s", ctx->error);
        goto done;
    }

    if (mig_key_state(key, sizeof(key), ctx->conf.prefix, scope) < 0) {
        snprintf(r->detail, sizeof(r->detail), "key names too long");
        goto done;
    }

    rc = migctl_state_read(ctx, c, key, &st, &present, err, sizeof(err));
    if (rc == MIGCTL_UNREACHABLE) {
        snprintf(r->detail, sizeof(r->detail), "%s", ctx->error);
        goto done;
    }

    if (rc != MIGCTL_OK) {
        snprintf(r->detail, sizeof(r->detail), "state of scope %s is"
                 " malformed: %s", scope, err);
        goto done;
    }

    if (present) {
        mig_edge_value_format(want, sizeof(want), st.mode, st.epoch);

    } else {
        mig_edge_value_format(want, sizeof(want), MIG_MODE_OFF, 0);
    }

    if (migctl_edges_read(ctx, c, scope, &ed, migctl_wall_ms(), r->deadline)
        != MIGCTL_OK)
    {
        snprintf(r->detail, sizeof(r->detail), "%s", ctx->error);
        goto done;
    }

    gating = 0;
    behind = 0;
    named = 0;
    list[0] = '\0';

    for (i = 0; i < ed.n; i++) {
        e = &ed.e[i];

        if (!e->live || !e->has_scope) {
            continue;
        }

        gating++;

        if (strcmp(e->serving, want) == 0) {
            continue;
        }

        behind++;

        if (named++ < 5) {
            len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%s%s (serving %s)",
                     len ? ", " : "", e->node,
                     e->serving[0] ? e->serving : "nothing");
        }
    }

    if (gating == 0) {
        migctl_edges_gated(&ed, gated, sizeof(gated));
        snprintf(r->detail, sizeof(r->detail), "no live edge gates scope"
                 " %s (live edges gate: %s): check the scope and prefix",
                 scope, gated[0] ? gated : "none");
        goto done;
    }

    if (behind) {
        snprintf(r->detail, sizeof(r->detail), "%d of %d live edges not"
                 " serving %s: %s%s", behind, gating, want, list,
                 named > 5 ? ", ..." : "");
        goto done;
    }

    snprintf(r->detail, sizeof(r->detail), "%d live edge%s serve%s %s of"
             " scope %s", gating, gating == 1 ? "" : "s",
             gating == 1 ? "s" : "", want, scope);
    r->ok = 1;

done:

    free(ed.e);
    migctl_redis_close(c);
}


int
migctl_state_read(migctl_ctx_t *ctx, redisContext *c, const char *key,
    mig_state_t *st, int *present, char *err, size_t errlen)
{
    int          rc;
    size_t       i;
    const char  *argv[2];
    size_t       lens[2];
    redisReply  *r, *f, *v;

    argv[0] = "HGETALL";
    argv[1] = key;
    lens[0] = 7;
    lens[1] = strlen(key);

    *present = 0;
    mig_state_init(st);

    r = migctl_redis_cmd(ctx, c, 2, argv, lens);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "%s is not a hash", key);
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
            snprintf(err, errlen, "%s holds a non-string field", key);
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

int
migctl_edges_read(migctl_ctx_t *ctx, redisContext *c, const char *scope,
    migctl_edges_t *ed, long long now, long long deadline)
{
    int             rc;
    char            key[MIG_KEY_MAX], kedges[MIG_KEY_MAX], num[32], *end;
    const char     *argv[5];
    size_t          lens[5], i, j;
    double          score;
    uint64_t        u;
    migctl_edge_t  *e;
    mig_mode_e      mode;
    redisReply     *r, *h, *f, *v;

    ed->e = NULL;
    ed->n = 0;
    ed->skipped = 0;
    h = NULL;

    if (mig_key_edges(kedges, sizeof(kedges), ctx->conf.prefix) < 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "key names too long:"
                            " shorten prefix");
    }

    argv[0] = "ZRANGE";
    argv[1] = kedges;
    argv[2] = "0";
    argv[3] = "9999";                        /* EDGES_MAX - 1 */
    argv[4] = "WITHSCORES";

    for (i = 0; i < 5; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = migctl_redis_cmd(ctx, c, 5, argv, lens);
    if (r == NULL) {
        return MIGCTL_UNREACHABLE;
    }

    rc = MIGCTL_PROBLEM;

    if (r->type != REDIS_REPLY_ARRAY) {
        migctl_error(ctx, rc, "%s is not a sorted set: %s", kedges,
                     r->type == REDIS_REPLY_ERROR ? r->str : "wrong type");
        goto done;
    }

    ed->e = calloc(r->elements / 2 + 1, sizeof(migctl_edge_t));
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

        if (deadline && migctl_now_ms() >= deadline) {
            migctl_error(ctx, rc, "timed out reading the edges (%d of %zu"
                         " read)", ed->n - 1, r->elements / 2);
            goto done;
        }

        argv[0] = "HGETALL";
        argv[1] = key;
        lens[0] = 7;
        lens[1] = strlen(key);

        h = migctl_redis_cmd(ctx, c, 2, argv, lens);
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

                if (f->len == 7 && memcmp(f->str, "version", 7) == 0) {
                    snprintf(e->version, sizeof(e->version), "%.*s",
                             (int) (v->len < 31 ? v->len : 31), v->str);
                    continue;
                }

                if (f->len == 3 && memcmp(f->str, "pid", 3) == 0) {
                    if (mig_parse_u64(v->str, v->len, 4194304, &u)
                        == MIG_OK)
                    {
                        e->pid = (long long) u;
                    }
                    continue;
                }

                if (f->len == 7 && memcmp(f->str, "seen_ms", 7) == 0) {
                    continue;
                }

                /* every other field is a scope the edge gates */
                add_scope(e, f->str, f->len);

                if (f->len == strlen(scope)
                    && memcmp(f->str, scope, f->len) == 0)
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


void
migctl_edges_gated(const migctl_edges_t *ed, char *buf, size_t size)
{
    int          i;
    size_t       len, n;
    const char  *p, *q;
    char         one[MIG_NAME_MAX + 3];

    buf[0] = '\0';

    for (i = 0; i < ed->n; i++) {
        if (!ed->e[i].live) {
            continue;
        }

        for (p = ed->e[i].scopes; *p; p = *q ? q + 2 : q) {
            q = strstr(p, ", ");
            if (q == NULL) {
                q = p + strlen(p);
            }

            n = (size_t) (q - p);
            if (n > MIG_NAME_MAX) {
                continue;
            }

            /* each scope once */
            snprintf(one, sizeof(one), "%.*s", (int) n, p);

            if (list_has(buf, one)) {
                continue;
            }

            len = strlen(buf);
            snprintf(buf + len, size - len, "%s%s", len ? ", " : "", one);
        }
    }
}


static void
add_scope(migctl_edge_t *e, const char *s, size_t len)
{
    size_t  n;

    if (mig_name_valid(s, len, NULL, 0) != MIG_OK) {
        return;
    }

    n = strlen(e->scopes);
    if (n + len + 3 > sizeof(e->scopes)) {
        return;                              /* the first ones are named */
    }

    snprintf(e->scopes + n, sizeof(e->scopes) - n, "%s%.*s",
             n ? ", " : "", (int) len, s);
}


/* name is an item of the ", "-separated list */
static int
list_has(const char *list, const char *name)
{
    size_t       n;
    const char  *p;

    n = strlen(name);

    for (p = list; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
        {
            return 1;
        }
    }

    return 0;
}
