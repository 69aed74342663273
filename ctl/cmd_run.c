/*
 * cmd_run.c: migctl run -- CMD: the one migration runner: the advisory
 * lock (run_lock.c), lock_timeout for the child, safe retries, and a kept
 * record.
 */

#define _GNU_SOURCE  /* pipe2, execvpe, asprintf */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <hiredis/hiredis.h>

#include "migctl.h"
#include "db.h"
#include "run.h"


#define RUN_BACKOFF_MS      1000
#define RUN_BACKOFF_MAX_MS  30000


static int parse(run_t *r, int argc, char **argv);
static int attempts_run(run_t *r, json_t *before, json_t *attempts,
    int *status, int *ok);
static json_t *applied_by(run_t *r, json_t *before, json_t *after);
static int open_dir(run_t *r);
static int write_file(run_t *r, const char *name, const char *text,
    size_t len);
static int build_env(run_t *r);
static int snapshot(run_t *r, const char *name, json_t **rows);
static int fingerprint(run_t *r, char *buf, size_t size);
static int lock_timeout_only(run_t *r);
static void plan_before(run_t *r);
static void print_diagnose(run_t *r);
static void set_actor(run_t *r);
static int cmp_str(const void *a, const void *b);
static void usage(FILE *f);


int
cmd_run(int argc, char **argv, migctl_ctx_t *ctx)
{
    int                 rc, status, ok, i, audited;
    char                text[256], reason[1024];
    json_t             *before, *after, *applied, *attempts;
    long long           start;
    unsigned long long  epoch;
    run_t               r;
    struct sigaction    sa, old_int, old_term, old_hup;
    redisContext       *rc_redis;

    memset(&r, 0, sizeof(run_t));
    r.ctx = ctx;
    before = NULL;
    after = NULL;
    attempts = NULL;
    status = 0;
    audited = 0;

    rc = parse(&r, argc, argv);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    set_actor(&r);
    if (gethostname(r.host, sizeof(r.host) - 1) != 0) {
        strcpy(r.host, "unknown");
    }

    /* --maintenance-on-failure promises a flag: Redis must be there now */
    if (r.mof) {
        rc = migctl_redis_open(ctx, &rc_redis);
        migctl_redis_close(rc_redis);
        if (rc != MIGCTL_OK) {
            return migctl_error(ctx, rc, "--maintenance-on-failure needs"
                                " Redis to set the flag if the command"
                                " fails: nothing was run: start Redis or"
                                " fix redis { } (or run without the"
                                " option)");
        }
    }

    rc = migctl_db_connect(ctx, &r.conn);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    migctl_secrets_load(ctx, &r.sec, PQpass(r.conn));

    r.cmdline[0] = '\0';
    migctl_shell_quote(r.cmdline, sizeof(r.cmdline), r.cmd, r.ncmd);
    {
        char  *s = migctl_scrub(&r.sec, r.cmdline, strlen(r.cmdline));

        if (s != NULL) {
            snprintf(r.cmdline, sizeof(r.cmdline), "%s", s);
            free(s);
        }
    }

    rc = migctl_run_take_lock(&r);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = open_dir(&r);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    /* at once: a second runner reads our command line from it */
    (void) migctl_run_audit(&r, "started");
    audited = 1;

    r.res = json_object();
    attempts = json_array();
    json_object_set_new(r.res, "id", json_string(r.id));
    json_object_set_new(r.res, "dir", json_string(r.dir));
    json_object_set_new(r.res, "command", json_string(r.cmdline));
    json_object_set_new(r.res, "actor", json_string(r.actor));
    json_object_set_new(r.res, "host", json_string(r.host));
    json_object_set_new(r.res, "database", json_string(r.db));
    json_object_set_new(r.res, "lock_backend_pid",
                        json_integer(r.backend_pid));
    json_object_set_new(r.res, "lock_timeout_ms", r.lock_timeout_ms
                        ? json_integer(r.lock_timeout_ms) : json_null());
    json_object_set_new(r.res, "statement_timeout_ms",
                        r.statement_timeout_ms
                        ? json_integer(r.statement_timeout_ms)
                        : json_null());
    json_object_set_new(r.res, "retries", json_integer(r.retries));
    start = migctl_wall_ms();
    migctl_iso_time(text, sizeof(text), start, 1);
    json_object_set_new(r.res, "started", json_string(text));

    rc = build_env(&r);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = snapshot(&r, "migrations_before.tsv", &before);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    plan_before(&r);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = migctl_run_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);

    rc = attempts_run(&r, before, attempts, &status, &ok);

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);

    if (rc != MIGCTL_OK) {
        goto done;
    }

    if (r.lock_lost) {
        /* a new session for the record; the lock is not taken again */
        PQreset(r.conn);
    }

    json_decref(after);
    after = NULL;
    if (snapshot(&r, "migrations_after.tsv", &after) != MIGCTL_OK) {
        after = json_array();
    }

    applied = applied_by(&r, before, after);

    migctl_iso_time(text, sizeof(text), migctl_wall_ms(), 1);
    json_object_set_new(r.res, "ended", json_string(text));
    json_object_set_new(r.res, "duration_ms",
                        json_integer(migctl_wall_ms() - start));
    migctl_run_status_json(status, r.res);
    json_object_set_new(r.res, "result", json_string(ok ? "ok" : "failed"));
    json_object_set_new(r.res, "attempts", attempts);
    attempts = NULL;
    json_object_set_new(r.res, "applied", applied);
    json_object_set_new(r.res, "failed_migration",
                        !ok && r.applying[0] && !r.applying_ok
                        ? json_string(r.applying) : json_null());
    json_object_set_new(r.res, "lock_lost", json_boolean(r.lock_lost));

    if (migctl_run_signal) {
        json_object_set_new(r.res, "interrupted_by",
                            json_string(strsignal(migctl_run_signal)));
    }

    migctl_run_status_text(status, text, sizeof(text));

    audited = 2;

    if (ok) {
        rc = MIGCTL_OK;
        (void) migctl_run_audit(&r, "ok");

    } else {
        rc = MIGCTL_CMDFAIL;
        (void) migctl_run_audit(&r, "failed");

        if (r.mof) {
            snprintf(reason, sizeof(reason), "migctl run failed: %s%s%s"
                     " (run %s)", text,
                     r.applying[0] && !r.applying_ok ? " applying " : "",
                     r.applying[0] && !r.applying_ok ? r.applying : "",
                     r.id);
            reason[MIG_REASON_MAX] = '\0';      /* the edges' limit */

            i = migctl_maintenance_set(ctx, 1, reason, NULL, &epoch);
            if (i == MIGCTL_OK) {
                fprintf(stderr, "migctl: run: maintenance on for scope %s"
                        " (epoch %llu): %s\n", ctx->scope, epoch, reason);
                json_object_set_new(r.res, "maintenance", json_pack(
                    "{s:s, s:s, s:I}", "mode", "on", "scope", ctx->scope,
                    "epoch", (json_int_t) epoch));

            } else {
                fprintf(stderr, "migctl: run: THE FLAG IS NOT SET: turn it"
                        " on by hand: migctl maintenance on --reason"
                        " 'migctl run failed'\n");
                json_object_set_new(r.res, "maintenance", json_pack(
                    "{s:s, s:s}", "mode", "unknown", "error", ctx->error));
            }
        }
    }

    {
        char  *t = json_dumps(r.res, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (t != NULL) {
            (void) write_file(&r, "result.json", t, strlen(t));
            free(t);
        }
    }

    if (!ok) {
        fprintf(stderr, "migctl: run: the command failed (%s) after %d"
                " attempt(s): the record is in %s\n", text,
                (int) json_array_size(json_object_get(r.res, "attempts")),
                r.dir);

        if (r.diagnose) {
            print_diagnose(&r);
        }

    } else if (!ctx->json) {
        printf("migctl: run: ok: %d migration(s) applied; the record is"
               " in %s\n", (int) json_array_size(json_object_get(r.res,
                                                               "applied")),
               r.dir);
    }

    if (ctx->json) {
        rc = migctl_json_result(ctx, json_pack("{s:O}", "run", r.res), rc);
    }

done:

    if (audited == 1) {
        /* started, then migctl itself failed: the stream says so */
        (void) migctl_run_audit(&r, "error");
    }

    if (r.log != NULL) {
        fclose(r.log);
    }

    if (r.conn != NULL) {
        /* the lock goes with the session */
        PQfinish(r.conn);
    }

    if (r.envp != NULL) {
        for (i = 0; r.envp[i] != NULL; i++) {
            free(r.envp[i]);
        }
        free(r.envp);
    }

    free(r.cap);
    json_decref(before);
    json_decref(after);
    json_decref(attempts);
    json_decref(r.res);
    migctl_secrets_free(&r.sec);

    return rc;
}


/*
 * The command, and again only after a lock timeout that left the
 * database as it was (nothing recorded, same catalog), with backoff.
 */
static int
attempts_run(run_t *r, json_t *before, json_t *attempts, int *status,
    int *ok)
{
    int         rc, n, changed;
    long        backoff;
    char        fp0[64], fp1[64], text[64];
    json_t     *a, *after;
    size_t      k;
    long long   deadline, t0;

    after = NULL;
    rc = MIGCTL_OK;
    backoff = RUN_BACKOFF_MS;
    *ok = 0;

    for (n = 1; ; n++) {
        if (fingerprint(r, fp0, sizeof(fp0)) != MIGCTL_OK) {
            fp0[0] = '\0';
        }

        k = json_array_size(before);
        t0 = migctl_wall_ms();
        rc = migctl_run_attempt(r, n, status);
        if (rc != MIGCTL_OK) {
            break;
        }

        a = json_object();
        json_object_set_new(a, "attempt", json_integer(n));
        migctl_run_status_json(*status, a);
        migctl_iso_time(text, sizeof(text), t0, 1);
        json_object_set_new(a, "started", json_string(text));
        json_object_set_new(a, "duration_ms",
                            json_integer(migctl_wall_ms() - t0));
        json_array_append_new(attempts, a);

        *ok = WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
        if (*ok || migctl_run_signal || n > r->retries || r->lock_lost) {
            break;
        }

        if (!lock_timeout_only(r)) {
            json_object_set_new(a, "retry", json_string("no: not a lock"
                                                        " timeout"));
            break;
        }

        /* unchanged: nothing recorded by this run, the catalog as before */
        json_decref(after);
        after = NULL;
        changed = snapshot(r, NULL, &after) != MIGCTL_OK
                  || json_array_size(after) != k
                  || fingerprint(r, fp1, sizeof(fp1)) != MIGCTL_OK
                  || fp0[0] == '\0' || strcmp(fp0, fp1) != 0;

        if (changed) {
            json_object_set_new(a, "retry", json_string("no: the database"
                                                        " changed"));
            fprintf(stderr, "migctl: run: lock timeout (55P03), but the"
                    " database changed during the attempt: not retried:"
                    " see migctl diagnose\n");
            break;
        }

        json_object_set_new(a, "retry", json_string("yes: lock timeout on"
                                                    " an unchanged"
                                                    " database"));
        fprintf(stderr, "migctl: run: lock timeout (55P03) on an unchanged"
                " database: retry %d of %d in %.1f s\n", n, r->retries,
                backoff / 1000.0);

        deadline = migctl_now_ms() + backoff;
        while (!migctl_run_signal && migctl_now_ms() < deadline) {
            usleep(50000);
        }

        if (migctl_run_signal) {
            break;
        }

        backoff = backoff * 2 > RUN_BACKOFF_MAX_MS ? RUN_BACKOFF_MAX_MS
                                                   : backoff * 2;
    }

    json_decref(after);

    return rc;
}


/* the rows of django_migrations this run added; applied.tsv */
static json_t *
applied_by(run_t *r, json_t *before, json_t *after)
{
    char    *t;
    size_t   k, j, n, cap;
    json_t  *applied, *row, *x;

    applied = json_array();
    cap = 1;

    json_array_foreach(after, k, row) {
        for (j = 0; j < json_array_size(before); j++) {
            x = json_array_get(before, j);
            if (json_equal(json_object_get(x, "id"),
                           json_object_get(row, "id")))
            {
                break;
            }
        }

        if (j == json_array_size(before)) {
            json_array_append(applied, row);
            cap += json_string_length(json_object_get(row, "app"))
                   + json_string_length(json_object_get(row, "name"))
                   + json_string_length(json_object_get(row, "applied"))
                   + 3;
        }
    }

    t = malloc(cap);
    if (t != NULL) {
        n = 0;
        t[0] = '\0';
        json_array_foreach(applied, k, row) {
            n += (size_t) snprintf(t + n, cap - n, "%s\t%s\t%s\n",
                     json_string_value(json_object_get(row, "app")),
                     json_string_value(json_object_get(row, "name")),
                     json_string_value(json_object_get(row, "applied")));
        }
        (void) write_file(r, "applied.tsv", t, n);
        free(t);
    }

    return applied;
}


static int
parse(run_t *r, int argc, char **argv)
{
    int            rc, n;
    migctl_ctx_t  *ctx = r->ctx;

    const migctl_opt_t  opts[] = {
        { "--maintenance-on-failure", MIGCTL_OPT_FLAG, &r->mof, NULL, 0, 0,
          0 },
        { "--diagnose", MIGCTL_OPT_FLAG, &r->diagnose, NULL, 0, 0, 0 },
        { "--wait-lock", MIGCTL_OPT_DURATION, &r->wait_lock_ms, "D", 0, 0,
          0 },
        { "--lock-timeout", MIGCTL_OPT_DURATION, &r->lock_timeout_ms, "D",
          1, 0, 0 },
        { "--statement-timeout", MIGCTL_OPT_DURATION,
          &r->statement_timeout_ms, "D", 1, 0, 0 },
        { "--retries", MIGCTL_OPT_INT, &r->retries, "N", 0, 20, 0 },
        { "--plan-cmd", MIGCTL_OPT_STRING, &r->plan_cmd, "CMD", 0, 0, 0 },
        { "--runs-dir", MIGCTL_OPT_STRING, &r->runs_dir, "DIR", 0, 0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    rc = migctl_opt_parse(ctx, opts, argc, argv, &n, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    if (n < 2) {
        return migctl_error(ctx, MIGCTL_USAGE, "no command to run: migctl"
                            " run [options] -- python manage.py migrate"
                            " --noinput");
    }

    if (r->retries > 0 && r->lock_timeout_ms == 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "--retries retries only a"
                            " lock timeout: give --lock-timeout D too");
    }

    if (r->runs_dir != NULL && r->runs_dir[0] != '/') {
        return migctl_error(ctx, MIGCTL_USAGE, "--runs-dir must be an"
                            " absolute path, not '%s'", r->runs_dir);
    }

    if (r->plan_cmd == NULL && ctx->conf.plan_cmd[0]) {
        r->plan_cmd = ctx->conf.plan_cmd;
    }

    r->cmd = argv + 1;
    r->ncmd = n - 1;

    return MIGCTL_OK;
}


/* RUNS/<UTC time>-<pid>, 0700, the root created 0700 when missing */
static int
open_dir(run_t *r)
{
    int            n;
    char           ts[64], path[MIGCTL_PATH_MAX + 64];
    const char    *root;
    long long      now;
    migctl_ctx_t  *ctx = r->ctx;

    root = migctl_runs_dir(ctx, r->runs_dir);
    now = migctl_wall_ms();
    migctl_iso_time_compact(ts, sizeof(ts), now, 1);

    snprintf(r->id, sizeof(r->id), "%s-%d", ts, (int) getpid());

    if (migctl_mkdirs(root, 0700) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "cannot create the runs"
                            " directory %s: %s: set runs.dir or --runs-dir",
                            root, strerror(errno));
    }

    if (snprintf(r->dir, sizeof(r->dir), "%s/%s", root, r->id)
        >= (int) sizeof(r->dir))
    {
        return migctl_error(ctx, MIGCTL_USAGE, "runs directory path too"
                            " long");
    }

    if (mkdir(r->dir, 0700) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "cannot create %s: %s: set"
                            " runs.dir or --runs-dir", r->dir,
                            strerror(errno));
    }

    snprintf(path, sizeof(path), "%s/output.log", r->dir);
    n = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    r->log = n >= 0 ? fdopen(n, "w") : NULL;
    if (r->log == NULL) {
        return migctl_error(ctx, MIGCTL_USAGE, "cannot create %s: %s",
                            path, strerror(errno));
    }

    n = snprintf(path, sizeof(path), "%s\n", r->cmdline);

    return write_file(r, "command", path, (size_t) n) == 0
           ? MIGCTL_OK : MIGCTL_USAGE;
}


/* a file of the run directory, 0600, secrets scrubbed */
static int
write_file(run_t *r, const char *name, const char *text, size_t len)
{
    char  path[MIGCTL_PATH_MAX + 600];

    snprintf(path, sizeof(path), "%s/%s", r->dir, name);

    if (migctl_write_scrubbed(&r->sec, path, text, len) != 0) {
        if (errno == ENOMEM) {
            return migctl_error(r->ctx, -1, "out of memory");
        }
        return migctl_error(r->ctx, -1, "writing %s: %s", path,
                            strerror(errno));
    }

    return 0;
}


/*
 * The child's environment: ours, PGOPTIONS with the timeouts appended,
 * PYTHONUNBUFFERED (output live), MIGCTL_RUN_ID.  The names are kept,
 * never the values.
 */
static int
build_env(run_t *r)
{
    int           n, i, k;
    char          opt[256], *names, *p;
    const char   *old;
    size_t        len, pwenv, spwenv;
    extern char **environ;

    for (n = 0; environ[n] != NULL; n++) {
        /* void */
    }

    r->envp = calloc((size_t) n + 4, sizeof(char *));
    if (r->envp == NULL) {
        return migctl_error(r->ctx, MIGCTL_PROBLEM, "out of memory");
    }

    k = 0;
    opt[0] = '\0';

    if (r->lock_timeout_ms) {
        snprintf(opt, sizeof(opt), "-c lock_timeout=%ld",
                 r->lock_timeout_ms);
    }

    if (r->statement_timeout_ms) {
        len = strlen(opt);
        snprintf(opt + len, sizeof(opt) - len, "%s-c statement_timeout=%ld",
                 len ? " " : "", r->statement_timeout_ms);
    }

    old = getenv("PGOPTIONS");
    pwenv = strlen(r->ctx->conf.redis_password_env);
    spwenv = strlen(r->ctx->conf.sentinel_password_env);

    for (i = 0; i < n; i++) {
        if (strncmp(environ[i], "PGOPTIONS=", 10) == 0 && opt[0]) {
            continue;
        }
        if (strncmp(environ[i], "MIGCTL_RUN_ID=", 14) == 0) {
            continue;
        }
        /* the migration needs the database, not migctl's Redis password */
        if (pwenv > 0 && strncmp(environ[i], r->ctx->conf.redis_password_env,
                                 pwenv) == 0
            && environ[i][pwenv] == '=')
        {
            continue;
        }
        if (spwenv > 0
            && strncmp(environ[i], r->ctx->conf.sentinel_password_env,
                       spwenv) == 0
            && environ[i][spwenv] == '=')
        {
            continue;
        }
        r->envp[k++] = strdup(environ[i]);
    }

    if (opt[0]) {
        if (asprintf(&r->envp[k++], "PGOPTIONS=%s%s%s",
                     old && *old ? old : "", old && *old ? " " : "",
                     opt) < 0)
        {
            r->envp[--k] = NULL;
        }
        json_object_set_new(r->res, "pgoptions_added", json_string(opt));
    }

    if (getenv("PYTHONUNBUFFERED") == NULL) {
        r->envp[k++] = strdup("PYTHONUNBUFFERED=1");
    }

    if (asprintf(&r->envp[k++], "MIGCTL_RUN_ID=%s", r->id) < 0) {
        r->envp[--k] = NULL;
    }

    r->envp[k] = NULL;

    for (i = 0; i < k; i++) {
        if (r->envp[i] == NULL) {
            return migctl_error(r->ctx, MIGCTL_PROBLEM, "out of memory");
        }
    }

    /* names only, sorted: what the command saw, never a value */
    len = 1;
    for (i = 0; i < k; i++) {
        len += strlen(r->envp[i]) + 1;
    }

    names = malloc(len);
    if (names == NULL) {
        return migctl_error(r->ctx, MIGCTL_PROBLEM, "out of memory");
    }

    qsort(r->envp, (size_t) k, sizeof(char *), cmp_str);

    p = names;
    for (i = 0; i < k; i++) {
        len = strcspn(r->envp[i], "=");
        memcpy(p, r->envp[i], len);
        p += len;
        *p++ = '\n';
    }
    *p = '\0';

    i = write_file(r, "env", names, (size_t) (p - names));
    free(names);

    return i == 0 ? MIGCTL_OK : MIGCTL_USAGE;
}


/* django_migrations as JSON rows, and as RUN/name (TSV) when name given */
static int
snapshot(run_t *r, const char *name, json_t **rows)
{
    int        i, rc;
    char       err[512], *t;
    size_t     cap, n;
    PGresult  *res;

    *rows = json_array();

    res = PQexec(r->conn,
        "SELECT to_regclass('django_migrations') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        goto failed;
    }

    if (PQgetvalue(res, 0, 0)[0] != 't') {
        /* a new database: the first migrate creates the table */
        PQclear(res);
        return name ? (write_file(r, name, "", 0) == 0 ? MIGCTL_OK
                                                       : MIGCTL_USAGE)
                    : MIGCTL_OK;
    }

    PQclear(res);

    res = PQexec(r->conn,
        "SELECT id, app, name, to_char(applied AT TIME ZONE 'UTC',"
        "  'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        " FROM django_migrations ORDER BY id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        goto failed;
    }

    cap = 64;
    for (i = 0; i < PQntuples(res); i++) {
        json_array_append_new(*rows, json_pack("{s:I, s:s, s:s, s:s}",
            "id", (json_int_t) atoll(PQgetvalue(res, i, 0)),
            "app", PQgetvalue(res, i, 1), "name", PQgetvalue(res, i, 2),
            "applied", PQgetvalue(res, i, 3)));
        cap += (size_t) PQgetlength(res, i, 1) + PQgetlength(res, i, 2)
               + PQgetlength(res, i, 3) + 32;
    }

    rc = MIGCTL_OK;

    if (name != NULL) {
        t = malloc(cap);
        if (t == NULL) {
            PQclear(res);
            return migctl_error(r->ctx, MIGCTL_PROBLEM, "out of memory");
        }

        n = 0;
        t[0] = '\0';
        for (i = 0; i < PQntuples(res); i++) {
            n += snprintf(t + n, cap - n, "%s\t%s\t%s\t%s\n",
                          PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                          PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
        }

        rc = write_file(r, name, t, n) == 0 ? MIGCTL_OK : MIGCTL_USAGE;
        free(t);
    }

    PQclear(res);

    return rc;

failed:

    rc = migctl_error(r->ctx, PQstatus(r->conn) == CONNECTION_OK
                              ? MIGCTL_PROBLEM : MIGCTL_UNREACHABLE,
                      "reading django_migrations: %s",
                      migctl_db_error(r->conn, err, sizeof(err)));
    PQclear(res);

    return rc;
}


/*
 * A digest of the user schemas: relations, columns and types, index
 * validity, constraints.  Equal before and after a failed attempt means
 * no partial object was left (what diagnose calls unchanged).
 */
static int
fingerprint(run_t *r, char *buf, size_t size)
{
    int        rc;
    PGresult  *res;

    res = PQexec(r->conn,
        "SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM ("
        " SELECT c.oid::regclass::text || ':' || c.relkind::text || ':'"
        "   || coalesce((SELECT string_agg(a.attname::text || ' '"
        "        || format_type(a.atttypid, a.atttypmod) || ' '"
        "        || a.attnotnull::text || a.atthasdef::text, ','"
        "        ORDER BY a.attnum)"
        "      FROM pg_attribute a WHERE a.attrelid = c.oid"
        "        AND a.attnum > 0 AND NOT a.attisdropped), '')"
        "   || coalesce((SELECT ' valid=' || i.indisvalid::text"
        "        || i.indisready::text"
        "      FROM pg_index i WHERE i.indexrelid = c.oid), '')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "   AND n.nspname NOT LIKE 'pg\\_toast%'"
        "   AND n.nspname NOT LIKE 'pg\\_temp%'"
        " UNION ALL"
        " SELECT co.conrelid::regclass::text || ':' || co.conname::text"
        "   || ':' || co.contype::text || co.convalidated::text"
        " FROM pg_constraint co JOIN pg_namespace n"
        "   ON n.oid = co.connamespace"
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ") s(x)");

    rc = MIGCTL_PROBLEM;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        snprintf(buf, size, "%s", PQgetvalue(res, 0, 0));
        rc = MIGCTL_OK;
    }

    PQclear(res);

    return rc;
}


/* the attempt failed on a lock timeout (55P03), nothing else */
static int
lock_timeout_only(run_t *r)
{
    int          rc, yes;
    json_t      *o;
    const char  *st;

    if (r->ncap == 0) {
        return 0;
    }

    o = NULL;
    rc = migctl_classify_text(r->ctx, r->cap, r->ncap, &o);
    yes = 0;

    if (rc == MIGCTL_OK && o != NULL) {
        st = json_string_value(json_object_get(o, "sqlstate"));
        yes = st != NULL && strcmp(st, "55P03") == 0;
    }

    json_decref(o);

    return yes;
}


/* showmigrations --plan before the run: diagnose --previous-plan */
static void
plan_before(run_t *r)
{
    int      status, rc;
    char    *argv[4], *out;
    size_t   len;

    if (r->plan_cmd == NULL) {
        return;
    }

    argv[0] = "/bin/sh";
    argv[1] = "-c";
    argv[2] = (char *) r->plan_cmd;
    argv[3] = NULL;

    out = NULL;
    len = 0;
    rc = migctl_run_capture(r, argv, &out, &len, &status);
    (void) write_file(r, "plan.txt", out ? out : "", len);
    free(out);

    if (rc != 0) {
        fprintf(stderr, "migctl: run: the plan command failed: plan.txt"
                " is incomplete; the run goes on\n");
        json_object_set_new(r->res, "plan", json_string("failed"));

    } else {
        json_object_set_new(r->res, "plan", json_string("plan.txt"));
    }
}


/*
 * The migration that failed (the last "Applying A.M..." without OK):
 * its sqlmigrate output kept beside the log, and the diagnose command.
 */
static void
print_diagnose(run_t *r)
{
    int     i, k, status, have_sql;
    char    app[256], *mig, sqlname[600], line[MIGCTL_COMMAND_MAX * 2];
    char   *argv[MIGCTL_STRV_MAX + 8], path[MIGCTL_PATH_MAX + 600];
    char   *q[2], *out;
    size_t  len;

    if (r->applying[0] == '\0' || r->applying_ok) {
        fprintf(stderr, "migctl: run: no \"Applying ...\" line without OK"
                " in the output: the failure is not in a migration; see"
                " %s/output.log\n", r->dir);
        return;
    }

    snprintf(app, sizeof(app), "%s", r->applying);
    mig = strchr(app, '.');
    if (mig == NULL) {
        return;
    }
    *mig++ = '\0';

    snprintf(sqlname, sizeof(sqlname), "%s.%s.sql", app, mig);

    /* the same manage.py, with sqlmigrate instead of migrate */
    have_sql = 0;
    for (k = 0; k < r->ncmd && strcmp(r->cmd[k], "migrate") != 0; k++) {
        /* void */
    }

    if (k < r->ncmd && k + 4 < (int) (sizeof(argv) / sizeof(argv[0]))) {
        for (i = 0; i < k; i++) {
            argv[i] = r->cmd[i];
        }
        argv[k] = "sqlmigrate";
        argv[k + 1] = app;
        argv[k + 2] = mig;
        argv[k + 3] = NULL;

        out = NULL;
        len = 0;
        have_sql = migctl_run_capture(r, argv, &out, &len, &status) == 0;
        (void) write_file(r, sqlname, out ? out : "", len);
        free(out);
    }

    line[0] = '\0';
    q[0] = "migctl";
    migctl_shell_quote(line, sizeof(line), q, 1);

    if (r->ctx->config_path != NULL) {
        q[0] = "-c";
        q[1] = (char *) r->ctx->config_path;
        migctl_shell_quote(line, sizeof(line), q, 2);
    }

    q[0] = "diagnose";
    migctl_shell_quote(line, sizeof(line), q, 1);
    q[0] = "--app";
    q[1] = app;
    migctl_shell_quote(line, sizeof(line), q, 2);
    q[0] = "--migration";
    q[1] = mig;
    migctl_shell_quote(line, sizeof(line), q, 2);
    q[0] = "--sql";
    snprintf(path, sizeof(path), "%s/%s", r->dir, sqlname);
    q[1] = path;
    migctl_shell_quote(line, sizeof(line), q, 2);
    q[0] = "--traceback";
    snprintf(path, sizeof(path), "%s/output.log", r->dir);
    migctl_shell_quote(line, sizeof(line), q, 2);

    if (json_is_string(json_object_get(r->res, "plan"))
        && strcmp(json_string_value(json_object_get(r->res, "plan")),
                  "plan.txt") == 0)
    {
        q[0] = "--previous-plan";
        snprintf(path, sizeof(path), "%s/plan.txt", r->dir);
        migctl_shell_quote(line, sizeof(line), q, 2);
    }

    json_object_set_new(r->res, "diagnose", json_string(line));

    if (!have_sql) {
        fprintf(stderr, "migctl: run: write the SQL of %s.%s first:"
                " python manage.py sqlmigrate %s %s > %s/%s\n", app, mig,
                app, mig, r->dir, sqlname);
    }

    fprintf(r->ctx->json ? stderr : stdout, "the migration that failed:"
            " %s.%s; to diagnose it:\n  %s\n", app, mig, line);
}


static void
set_actor(run_t *r)
{
    const char  *a;

    a = migctl_actor();

    if (strlen(a) > MIG_ACTOR_MAX
        || mig_text_valid(a, strlen(a), NULL, 0) != MIG_OK)
    {
        a = "unknown";
    }

    snprintf(r->actor, sizeof(r->actor), "%s", a);
}


static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] [--scope S] run [options] -- CMD [ARGS...]\n"
        "\n"
        "Runs CMD (python manage.py migrate --noinput) once, holding the\n"
        "runner lock pg_advisory_lock(0x6d696763746c) on its own session:\n"
        "a second runner is refused at once and told who holds it.  Each\n"
        "run keeps RUNS/<time>-<pid>/ (0700): command, env (names only),\n"
        "output.log (timestamped stdout/stderr), plan.txt,\n"
        "migrations_before and _after.tsv, applied.tsv, result.json.\n"
        "SIGINT/SIGTERM are forwarded to the command's process group; if\n"
        "migctl dies, the command is killed and the lock goes with\n"
        "migctl's session.  Start, end and result are audited in the Redis\n"
        "stream when Redis answers.\n"
        "\n"
        "options:\n"
        "  --wait-lock D           wait up to D for the lock (holder shown\n"
        "                          every 5 s) instead of exit 4\n"
        "  --lock-timeout D        lock_timeout of the command's sessions\n"
        "                          (appended to PGOPTIONS): its DDL gives\n"
        "                          up instead of queueing every query\n"
        "                          behind it\n"
        "  --statement-timeout D   statement_timeout likewise\n"
        "  --retries N             re-run only after a lock timeout (55P03)\n"
        "                          that left the database unchanged\n"
        "                          (nothing recorded, catalog as before);\n"
        "                          backoff 1 s, 2 s, 4 s... (needs\n"
        "                          --lock-timeout)\n"
        "  --plan-cmd CMD          shell command whose output\n"
        "                          (showmigrations --plan) is kept as\n"
        "                          plan.txt before the run (default\n"
        "                          runs.plan_cmd)\n"
        "  --maintenance-on-failure\n"
        "                          on failure set the maintenance flag of\n"
        "                          --scope (audited) before exit 5; needs\n"
        "                          Redis\n"
        "  --diagnose              on failure print the diagnose command\n"
        "                          for the migration that failed\n"
        "  --runs-dir DIR          the evidence root (default runs.dir,\n"
        "                          else " MIGCTL_RUNS_DIR ")\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_REDIS,
        "0 ok;2;3 PostgreSQL unreachable (or Redis, with"
        " --maintenance-on-failure);4 refused (lock held);5 the command"
        " failed",
        "migctl run --lock-timeout 5s --retries 3 --maintenance-on-failure"
        " \\\n"
        "    -- python3 manage.py migrate --noinput");
}
