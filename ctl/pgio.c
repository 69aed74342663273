/*
 * pgio.c: libpq without blocking: connect, wait, query and cancel, each
 * against a deadline in migctl_now_ms() milliseconds.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"


/*
 * PQconnectStartParams + PQconnectPoll against our own deadline (libpq's
 * connect_timeout counts whole seconds, and only in blocking connects).
 * 1 connected; 0 timed out; -1 refused or failed (*out says why); *out
 * NULL only when out of memory.  Errors come verbose: with the SQLSTATE.
 */
int
migctl_pg_connect(const char *const *keys, const char *const *vals, int expand,
    long long deadline, PGconn **out)
{
    int                     w;
    PGconn                 *c;
    PostgresPollingStatusType  st;

    c = PQconnectStartParams(keys, vals, expand);
    *out = c;

    if (c == NULL) {
        return -1;
    }

    PQsetErrorVerbosity(c, PQERRORS_VERBOSE);

    if (PQstatus(c) == CONNECTION_BAD) {
        return -1;
    }

    st = PGRES_POLLING_WRITING;

    for ( ;; ) {
        if (st == PGRES_POLLING_OK) {
            return 1;
        }

        if (st == PGRES_POLLING_FAILED) {
            return -1;
        }

        w = migctl_pg_wait(c, st == PGRES_POLLING_WRITING, deadline);
        if (w == 0) {
            return 0;
        }

        st = PQconnectPoll(c);
    }
}


/* 1 ready, 0 the deadline passed, -1 a socket error */
int
migctl_pg_wait(PGconn *c, int write, long long deadline)
{
    int            rc;
    long long      left;
    struct pollfd  pfd;

    for ( ;; ) {
        left = deadline - migctl_now_ms();
        if (left <= 0) {
            return 0;
        }

        pfd.fd = PQsocket(c);
        if (pfd.fd < 0) {
            return -1;
        }
        pfd.events = write ? POLLOUT : POLLIN;
        pfd.revents = 0;

        rc = poll(&pfd, 1, left > 60000 ? 60000 : (int) left);

        if (rc > 0) {
            return 1;
        }

        if (rc < 0 && errno != EINTR) {
            return -1;
        }
    }
}


/* one query on a helper session, or NULL past the deadline */
PGresult *
migctl_pg_query(PGconn *c, const char *q, int n, const char *const *v,
    long long deadline)
{
    PGresult  *res, *r;

    if (!PQsendQueryParams(c, q, n, NULL, v, NULL, NULL, 0)) {
        return NULL;
    }

    res = NULL;

    for ( ;; ) {
        while (!PQisBusy(c)) {
            r = PQgetResult(c);
            if (r == NULL) {
                return res;
            }
            PQclear(res);
            res = r;
        }

        if (migctl_pg_wait(c, 0, deadline) <= 0 || PQconsumeInput(c) == 0) {
            PQclear(res);
            return NULL;
        }
    }
}


/*
 * PQcancel() waits for the server to close the cancel connection, with
 * no timeout (libpq 15): a silent server would hang it.  It runs in a
 * child that an alarm kills.
 */
void
migctl_pg_cancel(PGcancel *cancel, long bound_ms)
{
    int        status;
    char       err[256];
    pid_t      pid;
    long long  end;

    if (cancel == NULL) {
        return;
    }

    fflush(NULL);

    pid = fork();
    if (pid < 0) {
        return;
    }

    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        alarm(1);
        (void) PQcancel(cancel, err, sizeof(err));
        _exit(0);
    }

    end = migctl_now_ms() + bound_ms;

    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (migctl_now_ms() >= end) {
            kill(pid, SIGKILL);
            (void) waitpid(pid, &status, 0);
            break;
        }
        (void) poll(NULL, 0, 10);
    }
}


/* "127.0.0.1:5432", or the socket path for a Unix socket */
const char *
migctl_pg_host(PGconn *c, char *buf, size_t len)
{
    const char  *h, *p;

    h = PQhost(c);
    p = PQport(c);

    if (h == NULL || *h == '\0') {
        h = "localhost";
    }

    if (p == NULL || *p == '\0') {
        p = "5432";
    }

    if (h[0] == '/') {
        snprintf(buf, len, "%s/.s.PGSQL.%s", h, p);
    } else {
        snprintf(buf, len, "%s:%s", h, p);
    }

    return buf;
}
