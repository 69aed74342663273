/*
 * health.c: the health runner: every configured check in its own thread,
 * each bounded by its timeout; "maintenance off" refuses unless all pass.
 */

#define _GNU_SOURCE                          /* pthread_timedjoin_np */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <curl/curl.h>
#include <libpq-fe.h>

#include "health.h"


#define JOIN_GRACE_MS   1000     /* a check overrunning its own bound */


extern char **environ;


static int copy_check(migctl_check_run_t *r, const migctl_check_t *ck);
static void *check_thread(void *arg);
static json_t *detail_json(const char *detail);
static int secret_var(migctl_ctx_t *ctx, const char *var);
static void usage(FILE *f);


static const char *const type_names[] = {
    "command", "http", "edges", "migrations", "invalid_indexes",
    "blocked_sessions", "backup", "sql"
};

/* a check that overran its bound keeps running detached: kept reachable */
static migctl_check_run_t  *abandoned[MIGCTL_CHECKS_MAX * 4];
static int                  nabandoned;


int
cmd_health(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          rc, nfail;
    char         buf[MIGCTL_DETAIL_MAX * 4];
    size_t       k;
    json_t      *res, *c;
    const char  *detail;

    const migctl_opt_t  opts[] = {
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_conf_check_urls(ctx);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_health_run(ctx, &res);

    if (ctx->json) {
        (void) migctl_json_result(ctx, json_incref(res), rc);

    } else {
        if (ctx->conf.nchecks == 0) {
            printf("no health checks configured (health.checks in %s)\n",
                   ctx->conf.source[0] ? ctx->conf.source
                                       : "the configuration");
        }

        nfail = 0;

        json_array_foreach(json_object_get(res, "checks"), k, c) {
            detail = json_string_value(json_object_get(c, "detail"));
            nfail += !json_is_true(json_object_get(c, "ok"));

            printf("%-4s %-24s %6lld ms  ",
                   json_is_true(json_object_get(c, "ok")) ? "ok" : "FAIL",
                   json_string_value(json_object_get(c, "name")),
                   (long long) json_integer_value(json_object_get(c,
                                                              "time_ms")));
            /* a value from the database, a body: no terminal control */
            migctl_escape(detail ? detail : "", buf, sizeof(buf));
            fputs(buf, stdout);
            fputc('\n', stdout);
        }

        if (ctx->conf.nchecks) {
            printf("%d check%s, %d failed, %lld ms\n", ctx->conf.nchecks,
                   ctx->conf.nchecks == 1 ? "" : "s", nfail,
                   (long long) json_integer_value(json_object_get(res,
                                                             "total_ms")));
        }
    }

    json_decref(res);

    return rc;
}


int
migctl_health_run(migctl_ctx_t *ctx, json_t **out)
{
    int                  i, all, curl, started[MIGCTL_CHECKS_MAX];
    char               **envp, buf[128];
    long long            start, end;
    json_t              *res, *checks, *c;
    pthread_t            tid[MIGCTL_CHECKS_MAX];
    struct timespec      ts;
    migctl_check_run_t  *runs[MIGCTL_CHECKS_MAX], *r;

    res = json_object();
    checks = json_array();
    all = 1;
    curl = 0;
    start = migctl_now_ms();

    envp = migctl_env_scrubbed(ctx);

    /* a peer closing a TLS connection must not kill migctl (libcurl
     * leaves signals alone with CURLOPT_NOSIGNAL, set for threads) */
    signal(SIGPIPE, SIG_IGN);

    for (i = 0; i < ctx->conf.nchecks; i++) {
        if (ctx->conf.checks[i].type == MIGCTL_CHECK_HTTP && !curl) {
            /* not thread-safe: once, before any thread */
            curl = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
        }
    }

    /* every check at once: the total is the slowest one, not the sum */
    for (i = 0; i < ctx->conf.nchecks; i++) {
        started[i] = 0;

        r = calloc(1, sizeof(migctl_check_run_t));
        runs[i] = r;
        if (r == NULL) {
            continue;
        }

        r->envp = envp;
        r->ctx = malloc(sizeof(migctl_ctx_t));

        if (r->ctx == NULL || envp == NULL
            || copy_check(r, &ctx->conf.checks[i]) != 0)
        {
            snprintf(r->detail, sizeof(r->detail), "out of memory");
            continue;
        }

        memcpy(r->ctx, ctx, sizeof(migctl_ctx_t));

        if (pthread_create(&tid[i], NULL, check_thread, r) != 0) {
            snprintf(r->detail, sizeof(r->detail), "cannot start a thread:"
                     " %s", strerror(errno));
            continue;
        }

        started[i] = 1;
    }

    for (i = 0; i < ctx->conf.nchecks; i++) {
        r = runs[i];

        if (started[i]) {
            clock_gettime(CLOCK_REALTIME, &ts);
            end = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000
                  + (start + ctx->conf.checks[i].timeout_ms
                     - migctl_now_ms()) + JOIN_GRACE_MS;
            ts.tv_sec = end / 1000;
            ts.tv_nsec = (end % 1000) * 1000000;

            if (pthread_timedjoin_np(tid[i], NULL, &ts) != 0) {
                /* stuck where no bound of its own reaches (DNS?) */
                pthread_detach(tid[i]);
                if (nabandoned < (int) (sizeof(abandoned)
                                        / sizeof(abandoned[0])))
                {
                    abandoned[nabandoned++] = r;
                }

                runs[i] = NULL;
                all = 0;

                c = json_object();
                json_object_set_new(c, "name",
                                    json_string(ctx->conf.checks[i].name));
                json_object_set_new(c, "type", json_string(
                                    type_names[ctx->conf.checks[i].type]));
                json_object_set_new(c, "ok", json_false());
                snprintf(buf, sizeof(buf), "timed out after %d ms (did not"
                         " stop)", ctx->conf.checks[i].timeout_ms);
                json_object_set_new(c, "detail", json_string(buf));
                json_object_set_new(c, "time_ms",
                                    json_integer(migctl_now_ms() - start));
                json_array_append_new(checks, c);
                continue;
            }
        }

        c = json_object();
        json_object_set_new(c, "name", json_string(ctx->conf.checks[i].name));
        json_object_set_new(c, "type",
                            json_string(type_names[ctx->conf.checks[i].type]));
        json_object_set_new(c, "ok", json_boolean(r && r->ok));
        json_object_set_new(c, "detail",
                            detail_json(r ? r->detail : "out of memory"));
        json_object_set_new(c, "time_ms", json_integer(r ? r->ms : 0));
        json_array_append_new(checks, c);

        if (r == NULL || !r->ok) {
            all = 0;
        }

        if (r != NULL) {
            free(r->strs);
            free(r->ctx);
            free(r);
        }
    }

    if (curl && nabandoned == 0) {
        curl_global_cleanup();
    }

    if (nabandoned == 0) {
        migctl_env_free(envp);
    }

    json_object_set_new(res, "ok", json_boolean(all));
    json_object_set_new(res, "checks", checks);
    json_object_set_new(res, "total_ms", json_integer(migctl_now_ms()
                                                      - start));

    *out = res;

    return all ? MIGCTL_OK : MIGCTL_PROBLEM;
}


/* the check and its strings (pointers into the parsed file) copied */
static int
copy_check(migctl_check_run_t *r, const migctl_check_t *ck)
{
    char             *p;
    size_t            i, len;
    const char      **f[10];
    migctl_check_t   *c;

    c = &r->own;
    *c = *ck;
    r->ck = c;

    f[0] = &c->url;
    f[1] = &c->expect_body;
    f[2] = &c->expect_header;
    f[3] = &c->bypass_token_file;
    f[4] = &c->ca_file;
    f[5] = &c->resolve;
    f[6] = &c->scope;
    f[7] = &c->plan;
    f[8] = &c->query;
    f[9] = &c->expect;

    len = 1;
    for (i = 0; i < 10; i++) {
        len += *f[i] ? strlen(*f[i]) + 1 : 0;
    }

    r->strs = malloc(len);
    if (r->strs == NULL) {
        return -1;
    }

    p = r->strs;

    for (i = 0; i < 10; i++) {
        if (*f[i] == NULL) {
            continue;
        }

        len = strlen(*f[i]) + 1;
        memcpy(p, *f[i], len);
        *f[i] = p;
        p += len;
    }

    return 0;
}


static void *
check_thread(void *arg)
{
    long long            start;
    migctl_check_run_t  *r = arg;

    /* its own timeout from its own start (threads start unevenly) */
    start = migctl_now_ms();
    r->deadline = start + r->ck->timeout_ms;

    switch (r->ck->type) {

    case MIGCTL_CHECK_HTTP:
        migctl_check_http(r);
        break;

    case MIGCTL_CHECK_EDGES:
        migctl_check_edges(r);
        break;

    case MIGCTL_CHECK_MIGRATIONS:
    case MIGCTL_CHECK_BACKUP:
        if (r->ck->command[0]) {
            migctl_check_command(r);
        } else {
            migctl_check_db(r);
        }
        break;

    case MIGCTL_CHECK_INVALID_INDEXES:
    case MIGCTL_CHECK_BLOCKED_SESSIONS:
    case MIGCTL_CHECK_SQL:
        migctl_check_db(r);
        break;

    default:
        migctl_check_command(r);
        break;
    }

    r->ms = migctl_now_ms() - start;

    return NULL;
}


void
migctl_check_command(migctl_check_run_t *r)
{
    r->ok = migctl_run_command(r->ck->command, r->ck->timeout_ms, r->envp,
                               r->detail, sizeof(r->detail), &r->ms);
}


/* a JSON string of a detail; bytes that are not UTF-8 become '?' */
static json_t *
detail_json(const char *detail)
{
    char     buf[MIGCTL_DETAIL_MAX];
    size_t   n;
    json_t  *j;

    j = json_string(detail);
    if (j != NULL) {
        return j;
    }

    snprintf(buf, sizeof(buf), "%s", detail);

    for (n = 0; buf[n]; n++) {
        if ((unsigned char) buf[n] >= 0x80) {
            buf[n] = '?';
        }
    }

    return json_string(buf);
}


/*
 * Runs "/bin/sh -c command" in its own process group, keeps the last line
 * of its output as the detail, kills the group at the deadline.  Returns
 * 1 when the command exited 0 in time.  Called from check threads: the
 * child calls only async-signal-safe functions before execve().
 */
int
migctl_run_command(const char *command, int timeout_ms, char *const *envp,
    char *detail, size_t size, long *ms)
{
    int                fd[2], status, ok, timed_out, devnull;
    char               buf[MIGCTL_DETAIL_MAX], *line, *e;
    char              *argv[4];
    long long          start, left;
    pid_t              pid;
    size_t             n;
    ssize_t            k;
    struct pollfd      pfd;
    struct sigaction   dfl;

    start = migctl_now_ms();
    detail[0] = '\0';
    *ms = 0;

    memset(&dfl, 0, sizeof(struct sigaction));
    dfl.sa_handler = SIG_DFL;

    argv[0] = (char *) "sh";
    argv[1] = (char *) "-c";
    argv[2] = (char *) command;
    argv[3] = NULL;

    if (pipe2(fd, O_CLOEXEC) != 0) {
        snprintf(detail, size, "pipe: %s", strerror(errno));
        return 0;
    }

    pid = fork();

    if (pid < 0) {
        snprintf(detail, size, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return 0;
    }

    if (pid == 0) {
        setpgid(0, 0);
        sigaction(SIGPIPE, &dfl, NULL);      /* ignored by the runner */
        devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
        }
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        /* no other check's socket or pipe outlives it in the child */
        close_range(3, ~0U, 0);
        execve("/bin/sh", argv, envp ? envp : environ);
        _exit(127);
    }

    setpgid(pid, pid);
    close(fd[1]);

    n = 0;
    timed_out = 0;

    /* output until EOF or the deadline; the tail is kept */
    for ( ;; ) {
        left = timeout_ms - (migctl_now_ms() - start);
        if (left <= 0) {
            timed_out = 1;
            break;
        }

        pfd.fd = fd[0];
        pfd.events = POLLIN;

        if (poll(&pfd, 1, (int) left) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }

        if (pfd.revents == 0) {
            continue;
        }

        if (n == sizeof(buf) - 1) {
            memmove(buf, buf + sizeof(buf) / 2, sizeof(buf) / 2 - 1);
            n = sizeof(buf) / 2 - 1;
        }

        k = read(fd[0], buf + n, sizeof(buf) - 1 - n);
        if (k < 0 && errno == EINTR) {
            continue;
        }

        if (k <= 0) {
            break;
        }

        n += (size_t) k;
    }

    close(fd[0]);

    if (timed_out) {
        kill(-pid, SIGKILL);
    }

    /* a child that closed its output early is still bounded here */
    for ( ;; ) {
        k = waitpid(pid, &status, timed_out ? 0 : WNOHANG);

        if (k == pid || (k < 0 && errno != EINTR)) {
            break;
        }

        if (k == 0) {
            left = timeout_ms - (migctl_now_ms() - start);
            if (left <= 0) {
                timed_out = 1;
                kill(-pid, SIGKILL);
                continue;
            }

            poll(NULL, 0, left < 10 ? (int) left : 10);
        }
    }

    if (timed_out) {
        kill(-pid, SIGKILL);
    }

    *ms = (long) (migctl_now_ms() - start);

    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }

    line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;

    for (e = line; *e; e++) {
        if ((unsigned char) *e < 0x20) {
            *e = ' ';
        }
    }

    ok = 0;

    if (timed_out) {
        snprintf(detail, size, "timed out after %d ms%s%.300s", timeout_ms,
                 *line ? ": " : "", line);

    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        snprintf(detail, size, "%.300s", line);
        ok = 1;

    } else if (WIFEXITED(status)) {
        snprintf(detail, size, "exit %d%s%.300s", WEXITSTATUS(status),
                 *line ? ": " : "", line);

    } else {
        snprintf(detail, size, "killed by signal %d%s%.300s",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                 *line ? ": " : "", line);
    }

    return ok;
}


char **
migctl_env_scrubbed(migctl_ctx_t *ctx)
{
    int     n, i;
    char  **env;

    for (n = 0; environ[n]; n++) {
        /* void */
    }

    env = calloc(n + 1, sizeof(char *));
    if (env == NULL) {
        return NULL;
    }

    for (i = 0, n = 0; environ[i]; i++) {
        if (!secret_var(ctx, environ[i])) {
            env[n++] = environ[i];
        }
    }

    env[n] = NULL;

    return env;
}


void
migctl_env_free(char **envp)
{
    free(envp);
}


/* "NAME=value" is one of migctl's secrets */
static int
secret_var(migctl_ctx_t *ctx, const char *var)
{
    int                 secret;
    size_t              len;
    const char         *eq, *pw;
    PQconninfoOption   *opts, *o;

    eq = strchr(var, '=');
    if (eq == NULL) {
        return 0;
    }

    len = (size_t) (eq - var);

#define IS(name)  (len == sizeof(name) - 1 && memcmp(var, name, len) == 0)

    if (IS("PGPASSWORD") || IS("REDISCLI_AUTH")) {
        return 1;
    }

    pw = ctx->conf.redis_password_env;
    if (pw[0] && len == strlen(pw) && memcmp(var, pw, len) == 0) {
        return 1;
    }

    pw = ctx->conf.sentinel_password_env;
    if (pw[0] && len == strlen(pw) && memcmp(var, pw, len) == 0) {
        return 1;
    }

    if (!IS("DATABASE_URL")) {
        return 0;
    }

#undef IS

    /* a URL or conninfo that carries a password; unparseable: dropped */
    opts = PQconninfoParse(eq + 1, NULL);
    if (opts == NULL) {
        return 1;
    }

    secret = 0;

    for (o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0]) {
            secret = 1;
        }
    }

    PQconninfoFree(opts);

    return secret;
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] [--scope S] health\n"
        "\n"
        "Runs every check of health.checks in the configuration at once,\n"
        "each bounded by its timeout_ms, and prints one line per check\n"
        "(result, name, time, last line of output or the reason).  Types:\n"
        "  command           a shell command exits 0\n"
        "  http              a GET answers expect_status (and expect_body,\n"
        "                    expect_header); TLS verified (ca_file)\n"
        "  edges             every live edge serves the current epoch of\n"
        "                    the scope, and at least one gates it\n"
        "  migrations        nothing pending (plan file, or a command such\n"
        "                    as manage.py migrate --check)\n"
        "  invalid_indexes   no INVALID index in the database\n"
        "  blocked_sessions  no session waits on a lock > max_wait_s\n"
        "  backup            a command, or pg_stat_archiver archived WAL\n"
        "                    within max_age_min\n"
        "  sql               a query returns the expected value\n"
        "Commands run without migctl's secrets in their environment\n"
        "(PGPASSWORD, a DATABASE_URL with a password, the Redis password).\n"
        "\"maintenance off\" runs the same checks and refuses to reopen\n"
        "unless all pass, or when none is configured.\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_REDIS,
        "0 all pass (or none configured);1 a check failed (an unreachable"
        " database or Redis fails its checks);2",
        "migctl -c /etc/migctl/migctl.conf health");
}
