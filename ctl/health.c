/*
 * health.c: the health runner: every configured check, each bounded in
 * time; "maintenance off" refuses unless all pass.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "migctl.h"


#define MIGCTL_DETAIL_MAX  1024


static int run_command(const migctl_check_t *ck, char *detail,
    size_t size, long *ms);
static long now_ms(void);
static void usage(FILE *f);


int
cmd_health(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          i, rc;
    size_t       k;
    json_t      *res, *c;
    const char  *detail;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return MIGCTL_OK;
        }

        if (strcmp(argv[i], "--json") == 0) {
            ctx->json = 1;
            continue;
        }

        return migctl_error(ctx, MIGCTL_USAGE, "unknown option '%s': see"
                            " migctl health --help", argv[i]);
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

        json_array_foreach(json_object_get(res, "checks"), k, c) {
            detail = json_string_value(json_object_get(c, "detail"));

            printf("%-4s %-24s %6lld ms  %s\n",
                   json_is_true(json_object_get(c, "ok")) ? "ok" : "FAIL",
                   json_string_value(json_object_get(c, "name")),
                   (long long) json_integer_value(json_object_get(c, "ms")),
                   detail ? detail : "");
        }
    }

    json_decref(res);

    return rc;
}


int
migctl_health_run(migctl_ctx_t *ctx, json_t **out)
{
    int                    i, ok, all;
    long                   ms;
    size_t                 n;
    char                   detail[MIGCTL_DETAIL_MAX];
    json_t                *res, *checks, *c;
    const migctl_check_t  *ck;

    res = json_object();
    checks = json_array();
    all = 1;

    for (i = 0; i < ctx->conf.nchecks; i++) {
        ck = &ctx->conf.checks[i];

        ok = run_command(ck, detail, sizeof(detail), &ms);
        if (!ok) {
            all = 0;
        }

        c = json_object();
        json_object_set_new(c, "name", json_string(ck->name));
        json_object_set_new(c, "ok", json_boolean(ok));
        if (json_object_set_new(c, "detail", json_string(detail)) != 0) {
            /* not UTF-8: the bytes a terminal would mangle become '?' */
            for (n = 0; detail[n]; n++) {
                if ((unsigned char) detail[n] >= 0x80) {
                    detail[n] = '?';
                }
            }

            json_object_set_new(c, "detail", json_string(detail));
        }
        json_object_set_new(c, "ms", json_integer(ms));
        json_array_append_new(checks, c);
    }

    json_object_set_new(res, "ok", json_boolean(all));
    json_object_set_new(res, "checks", checks);

    *out = res;

    return all ? MIGCTL_OK : MIGCTL_PROBLEM;
}


/*
 * Runs "/bin/sh -c command" in its own process group, keeps the last line
 * of its output as the detail, kills the group at the deadline.  Returns
 * 1 when the command exited 0 in time.
 */

static int
run_command(const migctl_check_t *ck, char *detail, size_t size, long *ms)
{
    int            fd[2], status, ok, timed_out, devnull;
    char           buf[MIGCTL_DETAIL_MAX], *line, *e;
    long           start, left;
    pid_t          pid;
    size_t         n;
    ssize_t        k;
    struct pollfd  pfd;

    start = now_ms();
    detail[0] = '\0';
    *ms = 0;

    if (pipe(fd) != 0) {
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
        devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
        }
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]);
        close(fd[1]);
        execl("/bin/sh", "sh", "-c", ck->command, (char *) NULL);
        _exit(127);
    }

    setpgid(pid, pid);
    close(fd[1]);

    n = 0;
    timed_out = 0;

    /* output until EOF or the deadline; the tail is kept */
    for ( ;; ) {
        left = ck->timeout_ms - (now_ms() - start);
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

    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        /* void */
    }

    if (timed_out) {
        /* a child that closed its output early is still bounded here */
        kill(-pid, SIGKILL);
    }

    *ms = now_ms() - start;

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
        snprintf(detail, size, "timed out after %d ms%s%.300s", ck->timeout_ms,
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


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [-c FILE] [--json] health\n"
        "\n"
        "Runs every check of health.checks in the configuration, each\n"
        "bounded by its timeout_ms; a check passes when its command exits\n"
        "0.  \"maintenance off\" runs the same checks and refuses to reopen\n"
        "unless all pass.\n"
        "exit codes: 0 all pass (or none configured), 1 a check failed,\n"
        "2 usage or configuration error.\n");
}


static long
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
