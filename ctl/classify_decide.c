/*
 * classify_decide.c: the class of a migration failure from a Django
 * traceback or a deploy / server log: the last failure of the run decides.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "migctl.h"
#include "classify.h"


#define LINE_MAX_SHOWN  240


static const fail_t *decide(scan_t *s, const fail_t **hist, size_t *nhist,
    size_t *others, int *correlated);
static void correlate(scan_t *s, fail_t *f);
static int in_history(const fail_t *f, const fail_t *d);
static int secret(line_t l);
static json_t *fail_json(const fail_t *f, int full);
static json_t *migration_json(const fail_t *f, json_t **file, json_t **line);
static json_t *json_line(line_t l);
static json_t *json_code(const char *code);


static const char *class_names[] = {
    "unknown", "transient", "code_fix", "high_risk"
};


#define R_INTERRUPTED "the run was interrupted while applying %.*s (%s): " \
    "the playbook's interrupted release job; transient if the database " \
    "is unchanged (check with migctl diagnose: a non-atomic migration may " \
    "have left part of its changes, and a job killed for memory is " \
    "killed again)"
#define R_KILLED "the process was killed (%s), but nothing says during " \
    "which migration or why: a kill alone is no proof of a transient " \
    "cause; check the state (migctl diagnose) and the host's log (OOM " \
    "killer, a deploy timeout) before a retry"


/*
 * The last failure of the run decides: an interrupted run (the last
 * Applying without an outcome, or killed), else the last traceback chain
 * (its last exception, its psycopg error class), else the server log
 * lines of the migrating backend.  Earlier failures are history.
 */
int
migctl_classify_text(migctl_ctx_t *ctx, const char *text, size_t len,
    json_t **out)
{
    int              correlated, rc;
    char             how[128], reason[1024];
    size_t           i, nhist, others;
    json_t          *o, *h, *file, *line;
    scan_t           s;
    const fail_t    *d, *hist[HISTORY_MAX];
    fail_t           intr;
    const sqlstate_t *st;

    memset(&s, 0, sizeof(scan_t));
    o = NULL;
    rc = MIGCTL_OK;

    if (migctl_cls_scan(&s, text, len) != 0) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    d = decide(&s, hist, &nhist, &others, &correlated);

    if (d == NULL) {
        /* interrupted: no outcome after the last Applying, or killed */
        memset(&intr, 0, sizeof(fail_t));

        if (s.kill.p) {
            snprintf(how, sizeof(how), "killed: \"%.*s\"",
                     (int) (s.kill.len < 60 ? s.kill.len : 60), s.kill.p);
        } else {
            snprintf(how, sizeof(how), "no outcome printed after it: a CI "
                     "timeout, an OOM kill or a SIGKILL");
        }

        if (s.applying.p && s.applying_state == AP_NONE) {
            intr.cls = CLS_TRANSIENT;
            intr.migration = s.applying;
            intr.ev = s.kill.p ? s.kill : s.applying;
            snprintf(reason, sizeof(reason), R_INTERRUPTED,
                     (int) s.applying.len, s.applying.p, how);
        } else {
            intr.cls = CLS_UNKNOWN;
            intr.ev = s.kill;
            snprintf(reason, sizeof(reason), R_KILLED, how);
        }

        intr.first = s.kill.p ? s.kill_at : s.applying_at;
        intr.reason = reason;
        intr.source = "interrupted";
        d = &intr;
    }

    o = fail_json(d, 1);
    if (o == NULL) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    st = d->code ? migctl_cls_by_code(d->code) : NULL;
    json_object_set_new(o, "condition",
                        st ? json_string(st->name) : json_null());
    json_object_set_new(o, "interrupted",
                        json_boolean(d->source
                                     && strcmp(d->source, "interrupted")
                                        == 0));
    json_object_set_new(o, "frame",
                        d->frame.p ? json_line(d->frame) : json_null());

    file = NULL;
    line = NULL;
    json_object_set_new(o, "migration", migration_json(d, &file, &line));
    json_object_set_new(o, "file", file ? file : json_null());
    json_object_set_new(o, "line", line ? line : json_null());

    json_object_set_new(o, "pid", d->pid.p
                        ? json_integer(strtoll(d->pid.p, NULL, 10))
                        : json_null());
    json_object_set_new(o, "statement",
                        d->statement.p == NULL ? json_null()
                        : secret(d->statement)
                        ? json_string("(not shown: it carries a password)")
                        : json_line(d->statement));
    json_object_set_new(o, "correlated",
                        correlated < 0 ? json_null()
                                       : json_boolean(correlated));
    json_object_set_new(o, "other_sessions", json_integer(others));

    h = json_array();
    for (i = 0; h && i < nhist; i++) {
        json_array_append_new(h, fail_json(hist[i], 0));
    }
    json_object_set_new(o, "history", h ? h : json_array());

    *out = o;
    o = NULL;

done:

    json_decref(o);
    free(s.fails);

    return rc;
}


/*
 * NULL: the run was interrupted (the caller says so).  Else the deciding
 * failure, with the earlier ones of the same run in hist (oldest first,
 * the latest HISTORY_MAX), others: server errors of other sessions left
 * aside, correlated: -1 no server log, 0 no backend pid tied, 1 tied.
 */
static const fail_t *
decide(scan_t *s, const fail_t **hist, size_t *nhist, size_t *others,
    int *correlated)
{
    size_t         i, k, n;
    fail_t        *c, *d, *f;
    int            pending, killed, servers;

    *nhist = 0;
    *others = 0;
    *correlated = -1;

    c = NULL;
    servers = 0;
    for (i = 0; i < s->nfails; i++) {
        if (s->fails[i].kind == F_CLIENT) {
            c = &s->fails[i];
        } else {
            servers = 1;
        }
    }

    /*
     * Interrupted: the last Applying has no outcome, or the job was
     * killed with no traceback, or killed in a run that began after the
     * last traceback (a kill after a traceback is not that run's end).
     */
    /*
     * A traceback after the last "Running migrations:" is that run's
     * outcome even when it comes before the Applying line: Python buffers
     * stdout ("Applying X..." has no newline) and not stderr, so a log of
     * both streams may hold the traceback first.
     */
    pending = s->applying.p && s->applying_state == AP_NONE
              && (c == NULL
                  || (c->first < s->applying_at
                      && !(s->run_seen && c->first > s->run_at)));
    killed = s->kill.p
             && (c == NULL || (s->kill_at > c->last && s->run_seen
                               && s->run_at > c->last))
             && (s->applying.p == NULL || s->kill_at >= s->applying_at);

    if (pending || killed) {
        for (i = 0, n = 0; i < s->nfails; i++) {
            if (s->fails[i].kind == F_CLIENT) {
                n++;
            }
        }
        for (i = 0, k = 0; i < s->nfails; i++) {
            if (s->fails[i].kind == F_CLIENT && n - k++ <= HISTORY_MAX) {
                hist[(*nhist)++] = &s->fails[i];
            }
        }
        return NULL;
    }

    d = NULL;

    if (c) {
        d = c;
        if (servers) {
            correlate(s, c);
            *correlated = c->pid.p != NULL;
        }

    } else if (servers) {
        /*
         * The migrating backend: the last one seen running DDL, if it
         * failed; else the last error of a backend that ran DDL (an
         * operator's later DDL did not fail); else the last error.
         */
        for (i = s->nfails; s->ddl_pid.p && d == NULL && i > 0; i--) {
            f = &s->fails[i - 1];
            if (line_eq(f->pid, s->ddl_pid)) {
                d = f;
            }
        }

        for (i = s->nfails; d == NULL && i > 0; i--) {
            f = &s->fails[i - 1];
            if (f->ddl) {
                d = f;
            }
        }

        if (d == NULL) {
            d = &s->fails[s->nfails - 1];
        }

        /*
         * A session ended while idle (no STATEMENT) after its error: the
         * error decided, the end is the cleanup (an operator's
         * pg_terminate_backend of a session left in a failed transaction)
         */
        if (d->pid.p && d->statement.p == NULL && d->code
            && memcmp(d->code, "57P0", 4) == 0)
        {
            for (i = d - s->fails; i > 0; i--) {
                f = &s->fails[i - 1];
                if (line_eq(f->pid, d->pid)) {
                    d = f;
                    break;
                }
            }
        }

        *correlated = d->pid.p != NULL && d->ddl;

    } else if (s->have_loose) {
        return &s->loose;

    } else {
        s->loose.kind = F_LOOSE;
        return &s->loose;
    }

    /* earlier failures of the run: chains before it; for a server
     * decision, the errors of its backend and earlier DDL */
    n = 0;
    for (i = 0; i < s->nfails && &s->fails[i] != d; i++) {
        n += in_history(&s->fails[i], d);
    }

    for (i = 0, k = 0; i < s->nfails && &s->fails[i] != d; i++) {
        f = &s->fails[i];
        if (!in_history(f, d)) {
            continue;
        }
        if (n - k++ <= HISTORY_MAX) {
            hist[(*nhist)++] = f;
        }
    }

    if (d->kind == F_SERVER) {
        *others = s->dropped;
        for (i = 0; i < s->nfails; i++) {
            f = &s->fails[i];
            if (f->kind == F_SERVER && f != d && f->pid.p && d->pid.p
                && !line_eq(f->pid, d->pid))
            {
                (*others)++;
            }
        }
    }

    return d;
}


/* the server line of the same error: its backend, statement, detail */
static void
correlate(scan_t *s, fail_t *c)
{
    size_t   i;
    line_t   m;
    fail_t  *f;

    if (c->exc_msg.p == NULL) {
        return;
    }

    m = migctl_cls_trim(c->exc_msg);

    for (i = s->nfails; i > 0; i--) {
        f = &s->fails[i - 1];
        if (f->kind != F_SERVER || f->pid.p == NULL) {
            continue;
        }
        if (line_eq(migctl_cls_trim(f->msg), m)) {
            c->pid = f->pid;
            c->statement = f->statement;
            if (c->detail.p == NULL) {
                c->detail = f->detail;
            }
            return;
        }
    }
}


/* an earlier failure f that belongs to the history of the decision d */
static int
in_history(const fail_t *f, const fail_t *d)
{
    if (f->kind != d->kind) {
        return 0;
    }

    /* of a server decision: its backend's errors and earlier DDL */
    return f->kind != F_SERVER || d->pid.p == NULL || line_eq(f->pid, d->pid)
           || f->ddl;
}


/* a statement that sets a password (ALTER ROLE ... PASSWORD) is not shown */
static int
secret(line_t l)
{
    size_t  i;

    for (i = 0; i + 8 <= l.len; i++) {
        if (strncasecmp(l.p + i, "password", 8) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the keys diagnose reads, and for history a short form */
static json_t *
fail_json(const fail_t *f, int full)
{
    const char  *reason;
    json_t      *o, *file, *line;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    reason = f->reason;
    if (f->cls == CLS_UNKNOWN && reason == NULL) {
        reason = f->code ? "a SQLSTATE this table does not know: not "
                           "guessing"
                         : "no known SQLSTATE, server message or exception "
                           "in the text: not guessing";
    }

    json_object_set_new(o, "class", json_string(class_names[f->cls]));
    json_object_set_new(o, "sqlstate",
                        f->code ? json_code(f->code) : json_null());
    json_object_set_new(o, "exception",
                        f->exc_name.p ? json_line(f->exc_name)
                                      : json_null());

    if (!full) {
        file = NULL;
        line = NULL;
        json_object_set_new(o, "migration", migration_json(f, &file, &line));
        json_decref(file);
        json_decref(line);
        json_object_set_new(o, "pid", f->pid.p
                            ? json_integer(strtoll(f->pid.p, NULL, 10))
                            : json_null());
        json_object_set_new(o, "evidence",
                            f->ev.p ? json_line(f->ev) : json_null());
        json_object_set_new(o, "log_line", json_integer(f->first + 1));
        return o;
    }

    json_object_set_new(o, "message",
                        f->exc_msg.p ? json_line(f->exc_msg) : json_null());
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "source",
                        f->source ? json_string(f->source) : json_null());
    json_object_set_new(o, "evidence",
                        f->ev.p ? json_line(f->ev) : json_null());
    json_object_set_new(o, "detail",
                        f->detail.p ? json_line(f->detail) : json_null());
    json_object_set_new(o, "log_line",
                        f->ev.p ? json_integer(f->first + 1) : json_null());

    return o;
}


/*
 * "app.name": from the Applying line, else from the frame's file
 * ".../<app>/migrations/<name>.py"; the file and line from the frame.
 */
static json_t *
migration_json(const fail_t *f, json_t **file, json_t **line)
{
    char         buf[256];
    const char  *q, *e, *hit, *app, *name;
    line_t       path;
    long         n;

    *file = NULL;
    *line = NULL;
    buf[0] = '\0';

    if (f->frame.p) {
        q = migctl_cls_find(f->frame, "File \"", 0);
        path.p = q ? q + 6 : NULL;
        e = path.p ? memchr(path.p, '"',
                            f->frame.p + f->frame.len - path.p) : NULL;

        if (path.p && e) {
            path.len = e - path.p;
            *file = json_line(path);

            hit = migctl_cls_find(f->frame, ", line ", 0);
            if (hit && hit > e) {
                n = 0;
                for (q = hit + 7; q < f->frame.p + f->frame.len
                                  && isdigit((unsigned char) *q)
                                  && n < 100000000; q++)
                {
                    n = n * 10 + (*q - '0');
                }
                *line = json_integer(n);
            }

            hit = migctl_cls_find(path, "/migrations/", 0);
            if (hit && f->migration.p == NULL) {
                for (app = hit; app > path.p && app[-1] != '/'; app--) {
                    /* void */
                }
                name = hit + 12;
                if (e - name > 3 && memcmp(e - 3, ".py", 3) == 0
                    && hit > app)
                {
                    snprintf(buf, sizeof(buf), "%.*s.%.*s",
                             (int) (hit - app), app,
                             (int) (e - 3 - name), name);
                }
            }
        }
    }

    if (f->migration.p) {
        return json_line(f->migration);
    }

    return buf[0] ? json_string(buf) : json_null();
}


/* a line as a JSON string: bounded, and valid UTF-8 or nothing */
static json_t *
json_line(line_t l)
{
    json_t  *s;
    size_t   n;

    n = l.len < LINE_MAX_SHOWN ? l.len : LINE_MAX_SHOWN;

    /* cut back to a character boundary; invalid UTF-8 gives null */
    while (n > 0 && n < l.len && ((unsigned char) l.p[n] & 0xC0) == 0x80) {
        n--;
    }

    s = json_stringn(l.p, n);

    return s ? s : json_null();
}


static json_t *
json_code(const char *code)
{
    return json_stringn(code, 5);
}
