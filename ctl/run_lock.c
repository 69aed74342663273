/*
 * run_lock.c: run's runner lock, taken on its own session (waited for,
 * its holder told), and run's audit entries, where the holder is named.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "migctl.h"
#include "db.h"
#include "run.h"


#define RUN_LOCK_POLL_MS    250
#define RUN_LOCK_PRINT_MS   5000
#define RUN_AUDIT_SCAN      500


static int holder(run_t *r, json_t **h);
static void print_holder(run_t *r, json_t *h, const char *prefix);


/*
 * pg_try_advisory_lock on our own session: a second runner is told who
 * holds it at once (exit 4), or with --wait-lock polls until D.
 */
int
migctl_run_take_lock(run_t *r)
{
    int            got, rc, timeup;
    char           key[32], err[512], app[64];
    const char    *params[1];
    json_t        *h;
    PGresult      *res;
    long long      start, last;
    migctl_ctx_t  *ctx = r->ctx;

    snprintf(key, sizeof(key), "%lld", (long long) MIGCTL_RUNNER_LOCK_KEY);
    params[0] = key;

    /* who we are in pg_stat_activity: what a refused runner prints */
    /* cut as before: application_name keeps 63 bytes */
    snprintf(app, sizeof(app), "migctl run %.52s", r->cmdline);
    {
        const char  *p2[1] = { app };

        res = PQexecParams(r->conn,
            "SELECT set_config('application_name', $1, false),"
            "  set_config('statement_timeout', '60s', false),"
            "  set_config('lock_timeout', '10s', false),"
            /* the server notices a vanished host and frees the lock */
            "  set_config('tcp_keepalives_idle', '10', false),"
            "  set_config('tcp_keepalives_interval', '5', false),"
            "  set_config('tcp_keepalives_count', '3', false),"
            "  pg_backend_pid(), current_database()",
            1, NULL, p2, NULL, NULL, 0);
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = migctl_error(ctx, MIGCTL_UNREACHABLE, "preparing the lock"
                          " session: %s", migctl_db_error(r->conn, err,
                                                          sizeof(err)));
        PQclear(res);
        return rc;
    }

    r->backend_pid = atoi(PQgetvalue(res, 0, 6));
    snprintf(r->db, sizeof(r->db), "%s:%s/%s",
             PQhost(r->conn) ? PQhost(r->conn) : "local",
             PQport(r->conn) ? PQport(r->conn) : "",
             PQgetvalue(res, 0, 7));
    PQclear(res);

    /* a DBA's idle_session_timeout (14+) must not end the lock mid-run */
    res = PQexec(r->conn, "SELECT set_config(name, '0', false)"
                          " FROM pg_settings"
                          " WHERE name = 'idle_session_timeout'");
    PQclear(res);

    start = migctl_now_ms();
    last = 0;

    for ( ;; ) {
        res = PQexecParams(r->conn, "SELECT pg_try_advisory_lock($1::bigint)",
                           1, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = migctl_error(ctx, MIGCTL_UNREACHABLE, "taking the runner"
                              " lock: %s", migctl_db_error(r->conn, err,
                                                           sizeof(err)));
            PQclear(res);
            return rc;
        }

        got = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);

        if (got) {
            return MIGCTL_OK;
        }

        timeup = r->wait_lock_ms == 0
                 || migctl_now_ms() - start >= r->wait_lock_ms;

        /* who holds it: when we give up, and every few seconds */
        if (!timeup && last != 0
            && migctl_now_ms() - last < RUN_LOCK_PRINT_MS)
        {
            usleep(RUN_LOCK_POLL_MS * 1000);
            continue;
        }

        h = NULL;
        if (holder(r, &h) != MIGCTL_OK) {
            return MIGCTL_UNREACHABLE;
        }

        if (timeup) {
            print_holder(r, h, r->wait_lock_ms ? "still held after"
                                                 " --wait-lock"
                                               : "held");
            (void) migctl_run_audit(r, "refused");

            if (ctx->json) {
                (void) migctl_json_result(ctx, json_pack("{s:s, s:O?}",
                                          "result", "refused", "holder",
                                          h), MIGCTL_REFUSED);
            }

            json_decref(h);

            return migctl_error(ctx, MIGCTL_REFUSED, "another migration"
                                " runner holds the lock: nothing was run:"
                                " wait for it (--wait-lock D), or see"
                                " migctl locks");
        }

        print_holder(r, h, "waiting: held");
        last = migctl_now_ms();

        json_decref(h);
        usleep(RUN_LOCK_POLL_MS * 1000);
    }
}


/* one entry of P:audit: action "run"; Redis down never fails the run */
int
migctl_run_audit(run_t *r, const char *result)
{
    int            i, n, rc;
    char           k_state[MIG_KEY_MAX], k_audit[MIG_KEY_MAX], pgpid[16];
    char           pid[16], st[256], applied[16], reason[MIG_REASON_MAX + 1];
    const char    *av[48];
    size_t         lens[48];
    json_t        *v;
    redisReply    *rep;
    redisContext  *c;
    migctl_ctx_t  *ctx = r->ctx;

    if (r->redis_warned) {
        return MIGCTL_UNREACHABLE;
    }

    if (mig_key_state(k_state, sizeof(k_state), ctx->conf.prefix,
                      ctx->scope) < 0
        || mig_key_audit(k_audit, sizeof(k_audit), ctx->conf.prefix) < 0)
    {
        return MIGCTL_USAGE;
    }

    rc = migctl_redis_open(ctx, &c);
    if (rc != MIGCTL_OK) {
        r->redis_warned = 1;
        fprintf(stderr, "migctl: run: no audit entry (Redis unreachable):"
                " the run goes on\n");
        return rc;
    }

    /* the command line is the reason: one line of text, bounded */
    n = (int) strlen(r->cmdline);
    n = n > MIG_REASON_MAX ? MIG_REASON_MAX : n;
    memcpy(reason, r->cmdline, (size_t) n);
    reason[n] = '\0';
    for (i = 0; reason[i]; i++) {
        if ((unsigned char) reason[i] < 0x20 || reason[i] == 0x7f) {
            reason[i] = '?';
        }
    }
    if (mig_text_valid(reason, strlen(reason), NULL, 0) != MIG_OK) {
        snprintf(reason, sizeof(reason), "(command line not UTF-8)");
    }

    snprintf(pgpid, sizeof(pgpid), "%d", r->backend_pid);
    snprintf(pid, sizeof(pid), "%d", (int) getpid());

    n = 0;
    av[n++] = "EVAL";
    av[n++] = migctl_audit_lua;
    av[n++] = "2";
    av[n++] = k_state;
    av[n++] = k_audit;
    av[n++] = MIGCTL_AUDIT_MAXLEN;
    av[n++] = "run";
    av[n++] = ctx->scope;
    av[n++] = "actor";
    av[n++] = r->actor;
    av[n++] = "reason";
    av[n++] = reason;
    av[n++] = "release";
    av[n++] = "";
    av[n++] = "result";
    av[n++] = result;
    av[n++] = "run";
    av[n++] = r->id[0] ? r->id : "-";
    av[n++] = "dir";
    av[n++] = r->dir[0] ? r->dir : "-";
    av[n++] = "pg_pid";
    av[n++] = pgpid;
    av[n++] = "db";
    av[n++] = r->db;
    av[n++] = "host";
    av[n++] = r->host;
    av[n++] = "pid";
    av[n++] = pid;

    if (r->res != NULL && (v = json_object_get(r->res, "attempts"))
        != NULL && strcmp(result, "started") != 0)
    {
        migctl_run_status_text(0, st, sizeof(st));
        if (json_is_integer(json_object_get(r->res, "exit"))) {
            snprintf(st, sizeof(st), "exit %lld", (long long)
                     json_integer_value(json_object_get(r->res, "exit")));
        } else if (json_is_string(json_object_get(r->res, "signal"))) {
            snprintf(st, sizeof(st), "signal %s", json_string_value(
                     json_object_get(r->res, "signal")));
        }
        av[n++] = "status";
        av[n++] = st;
        snprintf(applied, sizeof(applied), "%d", (int) json_array_size(
                 json_object_get(r->res, "applied")));
        av[n++] = "applied";
        av[n++] = applied;
        av[n++] = "attempts";
        snprintf(st + 128, 16, "%d", (int) json_array_size(v));
        av[n++] = st + 128;
        if (json_is_string(json_object_get(r->res, "failed_migration"))) {
            av[n++] = "migration";
            av[n++] = json_string_value(json_object_get(r->res,
                                                        "failed_migration"));
        }
    }

    for (i = 0; i < n; i++) {
        lens[i] = strlen(av[i]);
    }

    rep = migctl_redis_cmd(ctx, c, n, av, lens);
    rc = MIGCTL_UNREACHABLE;

    if (rep != NULL) {
        if (rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "migctl: run: no audit entry: Redis: %s\n",
                    rep->str);
            rc = MIGCTL_PROBLEM;
        } else {
            rc = MIGCTL_OK;
        }
        freeReplyObject(rep);
    }

    migctl_redis_close(c);

    return rc;
}


/* the session holding the runner lock, and its command from the audit */
static int
holder(run_t *r, json_t **out)
{
    int            rc, retried;
    char           classid[16], objid[16], err[512], pidbuf[16];
    const char    *params[2];
    size_t         j, f;
    json_t        *h;
    PGresult      *res;
    redisReply    *rep, *ent, *fv;
    redisContext  *c;
    migctl_ctx_t  *ctx = r->ctx;

    snprintf(classid, sizeof(classid), "%u", MIGCTL_RUNNER_LOCK_CLASSID);
    snprintf(objid, sizeof(objid), "%u", MIGCTL_RUNNER_LOCK_OBJID);
    params[0] = classid;
    params[1] = objid;

    res = PQexecParams(r->conn,
        "SELECT a.pid, coalesce(host(a.client_addr), 'local'),"
        "  a.application_name, a.usename,"
        "  to_char(a.backend_start AT TIME ZONE 'UTC',"
        "          'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        "  extract(epoch FROM now() - a.backend_start)::bigint"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted"
        "   AND l.classid = $1::oid AND l.objid = $2::oid"
        "   AND l.objsubid = 1"
        "   AND l.database = (SELECT oid FROM pg_database"
        "                     WHERE datname = current_database())",
        2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = migctl_error(ctx, MIGCTL_UNREACHABLE, "reading who holds the"
                          " runner lock: %s",
                          migctl_db_error(r->conn, err, sizeof(err)));
        PQclear(res);
        return rc;
    }

    if (PQntuples(res) == 0) {
        /* released between our try and this read */
        *out = json_pack("{s:n}", "pid");
        PQclear(res);
        return MIGCTL_OK;
    }

    h = json_object();
    json_object_set_new(h, "pid", json_integer(atol(PQgetvalue(res, 0, 0))));
    json_object_set_new(h, "client", json_string(PQgetvalue(res, 0, 1)));
    json_object_set_new(h, "application",
                        json_string(PQgetvalue(res, 0, 2)));
    json_object_set_new(h, "user", json_string(PQgetvalue(res, 0, 3)));
    json_object_set_new(h, "since", json_string(PQgetvalue(res, 0, 4)));
    json_object_set_new(h, "seconds",
                        json_integer(atol(PQgetvalue(res, 0, 5))));
    snprintf(pidbuf, sizeof(pidbuf), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    *out = h;

    retried = 0;

again:

    /* the first runner's own audit entry: its full command line */
    if (r->redis_warned || migctl_redis_open(ctx, &c) != MIGCTL_OK) {
        r->redis_warned = 1;
        return MIGCTL_OK;
    }

    {
        char  k_audit[MIG_KEY_MAX];

        if (mig_key_audit(k_audit, sizeof(k_audit), ctx->conf.prefix) < 0) {
            migctl_redis_close(c);
            return MIGCTL_OK;
        }

        rep = migctl_audit_tail(ctx, c, k_audit, RUN_AUDIT_SCAN);
    }

    for (j = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY
                && j < rep->elements; j++)
    {
        const char  *cmd, *run, *pgpid, *db, *res_s, *actor, *host;

        ent = rep->element[j];
        if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2
            || ent->element[1]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        fv = ent->element[1];
        cmd = run = pgpid = db = res_s = actor = host = NULL;

        for (f = 0; f + 1 < fv->elements; f += 2) {
            const char  *name = fv->element[f]->str;
            const char  *v = fv->element[f + 1]->str;

            if (fv->element[f]->type != REDIS_REPLY_STRING
                || fv->element[f + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            if (strcmp(name, "action") == 0 && strcmp(v, "run") != 0) {
                break;
            }
            if (strcmp(name, "reason") == 0) cmd = v;
            else if (strcmp(name, "run") == 0) run = v;
            else if (strcmp(name, "pg_pid") == 0) pgpid = v;
            else if (strcmp(name, "db") == 0) db = v;
            else if (strcmp(name, "result") == 0) res_s = v;
            else if (strcmp(name, "actor") == 0) actor = v;
            else if (strcmp(name, "host") == 0) host = v;
        }

        if (cmd && run && pgpid && db && res_s
            && strcmp(res_s, "started") == 0 && strcmp(pgpid, pidbuf) == 0
            && strcmp(db, r->db) == 0)
        {
            json_object_set_new(h, "command", json_string(cmd));
            json_object_set_new(h, "run", json_string(run));
            json_object_set_new(h, "actor", json_string(actor ? actor
                                                               : ""));
            json_object_set_new(h, "host", json_string(host ? host : ""));
            break;
        }
    }

    if (rep != NULL) {
        freeReplyObject(rep);
    }

    migctl_redis_close(c);

    /* a runner that took the lock a moment ago audits right after */
    if (json_object_get(h, "command") == NULL && !retried
        && json_integer_value(json_object_get(h, "seconds")) < 2)
    {
        retried = 1;
        usleep(300000);
        goto again;
    }

    return MIGCTL_OK;
}


static void
print_holder(run_t *r, json_t *h, const char *prefix)
{
    char         buf[2048];
    const char  *cmd;

    if (json_is_null(json_object_get(h, "pid"))) {
        fprintf(stderr, "migctl: run: runner lock %s: just released\n",
                prefix);
        return;
    }

    cmd = json_string_value(json_object_get(h, "command"));

    snprintf(buf, sizeof(buf), "runner lock %s by pid %lld (client %s,"
             " application \"%s\", user %s, since %s, %lld s)%s%s%s%s%s%s",
             prefix,
             (long long) json_integer_value(json_object_get(h, "pid")),
             json_string_value(json_object_get(h, "client")),
             json_string_value(json_object_get(h, "application")),
             json_string_value(json_object_get(h, "user")),
             json_string_value(json_object_get(h, "since")),
             (long long) json_integer_value(json_object_get(h, "seconds")),
             cmd ? ": run " : "",
             cmd ? json_string_value(json_object_get(h, "run")) : "",
             cmd ? " by " : "",
             cmd ? json_string_value(json_object_get(h, "actor")) : "",
             cmd ? ": " : "", cmd ? cmd : "");

    migctl_escape(buf, buf, sizeof(buf));
    (void) r;
    fprintf(stderr, "migctl: run: %s\n", buf);
}
