/*
 * run_child.c: the command `migctl run` wraps: its own process group, a
 * watcher that kills it if migctl dies, output streamed, timed and kept.
 */

#define _GNU_SOURCE  /* pipe2, execvpe */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "run.h"


static int guard(pid_t pgid, pid_t *watcher);
static void unguard(int fd, pid_t watcher);
static void feed(run_t *r, stream_t *s, const char *buf, size_t len);
static void on_line(run_t *r, stream_t *s);
static const char *sig_name(int sig);


volatile sig_atomic_t  migctl_run_signal;


/*
 * One run of the command: its own process group, dies with us
 * (PR_SET_PDEATHSIG), SIGINT/SIGTERM/SIGHUP forwarded to its group;
 * output live on our stdout/stderr and into output.log with timestamps.
 */
int
migctl_run_attempt(run_t *r, int n, int *status)
{
    int            po[2], pe[2], i, nopen, exited, dn, forwarded, watch;
    char           buf[16384], ts[64];
    pid_t          pid, parent, w, watcher;
    ssize_t        k;
    stream_t       s[2];
    long long      exit_at, checked;
    struct pollfd  pfd[2];

    free(r->cap);
    r->cap = NULL;
    r->ncap = 0;
    r->applying[0] = '\0';
    r->applying_ok = 0;

    migctl_iso_time(ts, sizeof(ts), migctl_wall_ms(), 1);
    fprintf(r->log, "%s --- attempt %d: %s\n", ts, n, r->cmdline);
    fflush(r->log);

    if (pipe2(po, O_CLOEXEC) != 0) {
        return migctl_error(r->ctx, MIGCTL_PROBLEM, "pipe: %s",
                            strerror(errno));
    }

    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return migctl_error(r->ctx, MIGCTL_PROBLEM, "pipe: %s",
                            strerror(errno));
    }

    fflush(stdout);
    fflush(stderr);
    parent = getpid();

    pid = fork();

    if (pid < 0) {
        for (i = 0; i < 2; i++) {
            close(po[i]);
            close(pe[i]);
        }
        return migctl_error(r->ctx, MIGCTL_PROBLEM, "fork: %s",
                            strerror(errno));
    }

    if (pid == 0) {
        setpgid(0, 0);

        /* the child must not outlive the runner lock */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }

        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);

        /* its own process group cannot read the terminal */
        dn = open("/dev/null", O_RDONLY);
        if (dn >= 0) {
            dup2(dn, STDIN_FILENO);
        }
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);

        execvpe(r->cmd[0], r->cmd, r->envp);

        dprintf(STDERR_FILENO, "migctl: run: cannot run %s: %s\n",
                r->cmd[0], strerror(errno));
        _exit(127);
    }

    setpgid(pid, pid);
    close(po[1]);
    close(pe[1]);

    watch = guard(pid, &watcher);

    memset(s, 0, sizeof(s));
    s[0].fd = po[0];
    s[0].tag = 'o';
    s[1].fd = pe[0];
    s[1].tag = 'e';

    nopen = 2;
    checked = migctl_now_ms();
    exited = 0;
    exit_at = 0;
    forwarded = 0;
    *status = 0;

    for ( ;; ) {
        if (migctl_run_signal && !forwarded) {
            /* once: the child decides; a second Ctrl-C is forwarded too */
            kill(-pid, migctl_run_signal);
            forwarded = 1;
            fprintf(stderr, "migctl: run: %s forwarded to the command\n",
                    strsignal(migctl_run_signal));
        }

        /*
         * The lock lives as long as our session: a DBA's
         * pg_terminate_backend() or a server restart ends both.  Read
         * without blocking; say it once, loudly: another runner may
         * start while this command still runs.
         */
        if (!r->lock_lost && migctl_now_ms() - checked >= 1000) {
            checked = migctl_now_ms();
            if (PQconsumeInput(r->conn) == 0
                || PQstatus(r->conn) != CONNECTION_OK)
            {
                r->lock_lost = 1;
                fprintf(stderr, "migctl: run: the session holding the"
                        " runner lock ended (terminated, or the server"
                        " restarted): the lock is LOST while the command"
                        " runs: make sure no other runner starts\n");
                fprintf(r->log, "--- the runner lock was lost\n");
                fflush(r->log);
            }
        }

        if (!exited) {
            w = waitpid(pid, status, WNOHANG);
            if (w == pid) {
                exited = 1;
                exit_at = migctl_now_ms();
            }
        }

        if (nopen == 0 && exited) {
            break;
        }

        if (exited && migctl_now_ms() - exit_at > RUN_DRAIN_MS) {
            /* a grandchild keeps the pipe: its output is not ours */
            break;
        }

        for (i = 0; i < 2; i++) {
            pfd[i].fd = s[i].fd;
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }

        if (poll(pfd, 2, RUN_POLL_MS) < 0) {
            if (errno == EINTR) {
                if (migctl_run_signal) {
                    forwarded = 0;
                }
                continue;
            }
            break;
        }

        for (i = 0; i < 2; i++) {
            if (s[i].fd < 0 || pfd[i].revents == 0) {
                continue;
            }

            k = read(s[i].fd, buf, sizeof(buf));
            if (k < 0 && errno == EINTR) {
                continue;
            }

            if (k <= 0) {
                close(s[i].fd);
                s[i].fd = -1;
                nopen--;
                continue;
            }

            /*
             * The log keeps the order things happened in: a line begun on
             * the other stream ("Applying X..." waits for its "OK") is
             * written before this one's output.
             */
            if (s[1 - i].n) {
                on_line(r, &s[1 - i]);
            }

            feed(r, &s[i], buf, (size_t) k);
        }
    }

    for (i = 0; i < 2; i++) {
        if (s[i].n) {
            on_line(r, &s[i]);
        }
        if (s[i].fd >= 0) {
            close(s[i].fd);
        }
    }

    if (!exited) {
        while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
            if (migctl_run_signal && !forwarded) {
                kill(-pid, migctl_run_signal);
                forwarded = 1;
            }
        }
    }

    unguard(watch, watcher);

    migctl_run_status_text(*status, buf, sizeof(buf));
    migctl_iso_time(ts, sizeof(ts), migctl_wall_ms(), 1);
    fprintf(r->log, "%s --- attempt %d: %s\n", ts, n, buf);
    fflush(r->log);

    return MIGCTL_OK;
}

/*
 * An auxiliary command (plan, sqlmigrate): its stdout in *output
 * (malloc'ed, or NULL when empty), bounded in time; 0 when it exited 0.
 */
int
migctl_run_capture(run_t *r, char *const *argv, char **output,
    size_t *outlen, int *status)
{
    int            po[2], pe[2], dn, i, timed_out;
    char          *data, *p, err[1024], chunk[8192];
    pid_t          pid, parent;
    size_t         n, ne;
    ssize_t        k;
    long long      deadline;
    struct pollfd  pfd[2];

    if (pipe2(po, O_CLOEXEC) != 0) {
        return -1;
    }

    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }

    parent = getpid();
    pid = fork();

    if (pid < 0) {
        for (i = 0; i < 2; i++) {
            close(po[i]);
            close(pe[i]);
        }
        return -1;
    }

    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        dn = open("/dev/null", O_RDONLY);
        if (dn >= 0) {
            dup2(dn, STDIN_FILENO);
        }
        dup2(po[1], STDOUT_FILENO);
        dup2(pe[1], STDERR_FILENO);
        execvpe(argv[0], argv, r->envp);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }

    setpgid(pid, pid);
    close(po[1]);
    close(pe[1]);

    data = NULL;
    n = 0;
    ne = 0;
    err[0] = '\0';
    timed_out = 0;
    deadline = migctl_now_ms() + RUN_AUX_TIMEOUT_MS;

    while (po[0] >= 0 || pe[0] >= 0) {
        if (migctl_now_ms() >= deadline) {
            timed_out = 1;
            break;
        }

        pfd[0].fd = po[0];
        pfd[0].events = POLLIN;
        pfd[1].fd = pe[0];
        pfd[1].events = POLLIN;

        if (poll(pfd, 2, RUN_POLL_MS) < 0 && errno != EINTR) {
            break;
        }

        if (po[0] >= 0 && pfd[0].revents) {
            k = read(po[0], chunk, sizeof(chunk));
            if (k <= 0) {
                close(po[0]);
                po[0] = -1;

            } else if (n + (size_t) k < 64 * 1024 * 1024) {
                p = realloc(data, n + (size_t) k + 1);
                if (p != NULL) {
                    data = p;
                    memcpy(data + n, chunk, (size_t) k);
                    n += (size_t) k;
                }
            }
        }

        if (pe[0] >= 0 && pfd[1].revents) {
            k = read(pe[0], chunk, sizeof(chunk));
            if (k <= 0) {
                close(pe[0]);
                pe[0] = -1;

            } else {
                if (ne + (size_t) k >= sizeof(err)) {
                    ne = 0;
                }
                if ((size_t) k < sizeof(err)) {
                    memcpy(err + ne, chunk, (size_t) k);
                    ne += (size_t) k;
                    err[ne] = '\0';
                }
            }
        }
    }

    if (po[0] >= 0) {
        close(po[0]);
    }
    if (pe[0] >= 0) {
        close(pe[0]);
    }

    if (timed_out) {
        kill(-pid, SIGKILL);
    }

    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
        /* void */
    }

    *output = data;
    *outlen = n;

    if (timed_out || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        while (ne > 0 && (err[ne - 1] == '\n' || err[ne - 1] == '\r')) {
            err[--ne] = '\0';
        }
        p = strrchr(err, '\n');
        snprintf(chunk, sizeof(chunk), "%s", p ? p + 1 : err);
        migctl_escape(chunk, chunk, sizeof(chunk));
        fprintf(stderr, "migctl: run: %s %s: %s\n", argv[0],
                timed_out ? "timed out" : "failed", chunk);
        return -1;
    }

    return 0;
}

void
migctl_run_status_text(int status, char *buf, size_t size)
{
    if (WIFEXITED(status)) {
        snprintf(buf, size, "exit %d", WEXITSTATUS(status));

    } else if (WIFSIGNALED(status)) {
        snprintf(buf, size, "killed by %s", sig_name(WTERMSIG(status)));

    } else {
        snprintf(buf, size, "status %d", status);
    }
}

json_t *
migctl_run_status_json(int status, json_t *o)
{
    json_object_set_new(o, "exit", WIFEXITED(status)
                        ? json_integer(WEXITSTATUS(status)) : json_null());
    json_object_set_new(o, "signal", WIFSIGNALED(status)
                        ? json_string(sig_name(WTERMSIG(status)))
                        : json_null());

    return o;
}

void
migctl_run_on_signal(int sig)
{
    migctl_run_signal = sig;
}

/*
 * PR_SET_PDEATHSIG reaches the direct child only: a wrapper (sh -c,
 * bin/migrate) that forks leaves its children running, holding locks,
 * after the runner lock is gone.  A watcher in its own group, deaf to
 * the terminal's signals, holds the read end of a pipe only we write:
 * EOF without the "done" byte means migctl died: it kills the group.
 * Returns the write end, or -1 (then PDEATHSIG alone).
 */
static int
guard(pid_t pgid, pid_t *watcher)
{
    int      p[2], fd;
    char     c;
    pid_t    w;
    ssize_t  k;

    *watcher = -1;

    if (pipe2(p, O_CLOEXEC) != 0) {
        return -1;
    }

    w = fork();

    if (w < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }

    if (w == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);

        /* nothing of ours kept open: no output pipe, no db socket */
        fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, STDIN_FILENO);
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        for (fd = 3; fd < 1024; fd++) {
            if (fd != p[0]) {
                close(fd);
            }
        }

        c = 0;
        while ((k = read(p[0], &c, 1)) < 0 && errno == EINTR) {
            /* void */
        }

        /* EOF without the byte: migctl is gone, so is the lock */
        if (k != 1 || c != 'd') {
            kill(-pgid, SIGKILL);
        }

        _exit(0);
    }

    close(p[0]);
    *watcher = w;

    return p[1];
}

static void
unguard(int fd, pid_t watcher)
{
    int  status;

    if (fd < 0) {
        return;
    }

    if (write(fd, "d", 1) != 1) {
        /* the watcher is gone already */
    }
    close(fd);

    while (waitpid(watcher, &status, 0) < 0 && errno == EINTR) {
        /* void */
    }
}

static void
feed(run_t *r, stream_t *s, const char *buf, size_t len)
{
    char    *p;
    size_t   i, keep;
    FILE    *live;

    /* live, as it comes; under --json stdout is for the result */
    live = (s->tag == 'o' && !r->ctx->json) ? stdout : stderr;
    fwrite(buf, 1, len, live);
    fflush(live);

    /* the tail of the attempt's output, for classify */
    if (r->ncap + len > RUN_CAPTURE_MAX) {
        keep = RUN_CAPTURE_MAX / 2;
        if (r->ncap > keep) {
            memmove(r->cap, r->cap + r->ncap - keep, keep);
            r->ncap = keep;
        }
    }

    if (len <= RUN_CAPTURE_MAX / 2) {
        p = realloc(r->cap, r->ncap + len + 1);
        if (p != NULL) {
            r->cap = p;
            memcpy(r->cap + r->ncap, buf, len);
            r->ncap += len;
            r->cap[r->ncap] = '\0';
        }
    }

    for (i = 0; i < len; i++) {
        if (s->n == 0) {
            s->line_ms = migctl_wall_ms();
        }

        if (buf[i] == '\n') {
            on_line(r, s);
            continue;
        }

        s->line[s->n++] = buf[i];

        if (s->n == sizeof(s->line) - 1) {
            on_line(r, s);
        }
    }
}

static void
on_line(run_t *r, stream_t *s)
{
    char        ts[64], *clean, *a, *dots;
    size_t      n;

    s->line[s->n] = '\0';

    if (s->tag == 'o') {
        a = strstr(s->line, "Applying ");
        if (a != NULL) {
            a += 9;
            dots = strstr(a, "...");
            n = dots ? (size_t) (dots - a) : strcspn(a, " ");
            if (n > 0 && n < sizeof(r->applying)) {
                memcpy(r->applying, a, n);
                r->applying[n] = '\0';
                r->applying_ok = dots != NULL && strstr(dots, "OK") != NULL;
            }

        } else if (r->applying[0] && strspn(s->line, " ") < s->n
                   && strcmp(s->line + strspn(s->line, " "), "OK") == 0)
        {
            /* its "OK" came on a line of its own (see run_child()) */
            r->applying_ok = 1;
        }
    }

    clean = migctl_scrub(&r->sec, s->line, s->n);
    migctl_iso_time(ts, sizeof(ts), s->line_ms, 1);
    fprintf(r->log, "%s %s %s\n", ts, s->tag == 'o' ? "out" : "err",
            clean ? clean : "[out of memory]");
    fflush(r->log);
    free(clean);

    s->n = 0;
}

static const char *
sig_name(int sig)
{
    static char  buf[16];

    switch (sig) {
    case SIGHUP:  return "SIGHUP";
    case SIGINT:  return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGTERM: return "SIGTERM";
    case SIGBUS:  return "SIGBUS";
    }

    snprintf(buf, sizeof(buf), "signal %d", sig);

    return buf;
}
