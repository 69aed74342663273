/*
 * classify.c: reading a run for classify_decide.c: traceback chains, their
 * exceptions and psycopg classes, server log lines; a verdict for each.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"
#include "classify.h"


static int scan_traceback(scan_t *s, line_t raw, size_t n);
static void scan_plain(scan_t *s, line_t l, size_t n);
static int outcome_only(line_t l);
static void scan_server(scan_t *s, line_t l, size_t n);
static void chain_start(scan_t *s, size_t n, int traceback);
static void chain_exception(scan_t *s, line_t l, line_t name, line_t msg);
static void chain_end(scan_t *s);
static int push_fail(scan_t *s, fail_t *f);
static void compact(scan_t *s);
static void evid_name(evid_t *e, line_t name);
static void evid_line(evid_t *e, line_t l);
static void verdict_code(fail_t *f, const char *code, const message_t *msg);
static int verdict_evid(fail_t *f, evid_t *e);
static int pyexc_verdict(fail_t *f);
static int line_next(const char *text, size_t len, size_t *pos, line_t *l);


#define R_RUNPY "a Python error raised by the migration's own code " \
    "(RunPython): fix the code"
#define R_HOSTDISK "the app host's disk is full (OSError errno 28, e.g. " \
    "collectstatic or a temporary file): not the database; free space on " \
    "the app host, then retry"


/* one pass over the lines: traceback chains, server lines, the rest */
int
migctl_cls_scan(scan_t *s, const char *text, size_t len)
{
    size_t  pos, n;
    line_t  l;

    for (pos = 0, n = 0; line_next(text, len, &pos, &l); n++) {
        if (scan_traceback(s, l, n)) {
            continue;
        }
        scan_plain(s, l, n);
    }

    if (s->in_chain) {
        chain_end(s);
    }

    return s->nomem ? -1 : 0;
}


/* 1: the line belongs to a traceback chain and is consumed */
static int
scan_traceback(scan_t *s, line_t raw, size_t n)
{
    int          ap;
    line_t       l, name, msg, mig, rest;
    const char  *hit, *word;

    hit = migctl_cls_find(raw, "Traceback (most recent call last):", 0);

    if (hit) {
        if (!(s->in_chain && s->tb == TB_LINK)) {
            if (s->in_chain) {
                chain_end(s);
            }

            /* "Applying x...Traceback": stdout and stderr merged */
            ap = migctl_cls_applying(raw, &mig, &rest, &word);
            if (ap) {
                s->applying = mig;
                s->applying_at = n;
                s->applying_state = AP_NONE;
            }

            chain_start(s, n, 1);

            /* a log prefix (CI timestamps) before the header, or before
             * the Applying line's two spaces, is on every line after it */
            s->tb_prefix = (size_t) (hit - raw.p);
            if (ap) {
                s->tb_prefix = word - raw.p;
                if (s->tb_prefix >= 2 && raw.p[s->tb_prefix - 1] == ' '
                    && raw.p[s->tb_prefix - 2] == ' ')
                {
                    s->tb_prefix -= 2;
                }
            }
        }

        s->tb = TB_FRAMES;
        s->tb_first = 1;
        s->chain.last = n;
        return 1;
    }

    if (!s->in_chain) {
        return 0;
    }

    l = raw;
    if (s->tb_first) {
        s->tb_first = 0;
        if (s->tb_prefix
            && !(l.len > s->tb_prefix + 7
                 && memcmp(l.p + s->tb_prefix, "  File ", 7) == 0))
        {
            s->tb_prefix = 0;
        }
    }
    if (s->tb_prefix && l.len >= s->tb_prefix) {
        l.p += s->tb_prefix;
        l.len -= s->tb_prefix;
    }

    switch (s->tb) {

    case TB_FRAMES:
        if (l.len == 0) {
            s->chain.last = n;
            return 1;
        }

        if (l.p[0] == ' ' || l.p[0] == '\t') {
            /* a migration file: "<app>/migrations/0002_x.py"; Django's
             * own django/db/migrations/ modules have no leading digit */
            hit = migctl_cls_find(l, "/migrations/", 0);
            if (hit && migctl_cls_find(l, "File \"", 0)
                && (size_t) (hit - l.p) + 12 < l.len
                && isdigit((unsigned char) hit[12]))
            {
                s->chain.frame = migctl_cls_trim(l);
            }
            s->chain.last = n;
            return 1;
        }

        if (migctl_cls_exception_line(l, 1, &name, &msg)) {
            chain_exception(s, l, name, msg);
            s->chain.last = n;
            return 1;
        }

        chain_end(s);
        return 0;

    case TB_MSG:
        if (l.len == 0) {
            s->tb = TB_GAP;
            s->gap_lines = 0;
            return 1;
        }

        if (migctl_cls_exception_line(l, 0, &name, &msg)) {
            /* exception lines one after the other: a chain printed
             * without its frames (psycopg's, then Django's) */
            chain_exception(s, l, name, msg);
            s->chain.last = n;
            return 1;
        }

        if (s->msg_lines >= MSG_LINES_MAX
            || migctl_cls_applying(l, &mig, &rest, &word)
            || migctl_cls_kill(l) || migctl_cls_run(l)
            || (migctl_cls_severity(l, &name, &rest, &msg) && rest.len > 0))
        {
            chain_end(s);
            return 0;
        }

        evid_line(&s->exc, l);
        s->msg_lines++;
        s->chain.last = n;
        return 1;

    case TB_GAP:
    case TB_LINK:
        if (migctl_cls_trim(l).len == 0 && s->gap_lines++ < 4) {
            return 1;
        }

        if (s->tb == TB_GAP
            && (migctl_cls_find(l, "The above exception was the direct", 0)
                || migctl_cls_find(l, "During handling of the above", 0)))
        {
            s->tb = TB_LINK;
            s->gap_lines = 0;
            return 1;
        }

        chain_end(s);
        return 0;
    }

    return 0;
}


/* a line outside any chain */
static int
outcome_only(line_t l)
{
    int          words;
    size_t       i, last;

    words = 0;
    last = 0;

    for (i = 0; i < l.len; i++) {
        if (l.p[i] != ' ' && l.p[i] != '\t'
            && (i == 0 || l.p[i - 1] == ' ' || l.p[i - 1] == '\t'))
        {
            words++;
            last = i;
        }
    }

    return words >= 1 && words <= 3
           && ((l.len - last == 2 && memcmp(l.p + last, "OK", 2) == 0)
               || (l.len - last == 5 && memcmp(l.p + last, "FAKED", 5) == 0));
}


static void
scan_plain(scan_t *s, line_t l, size_t n)
{
    line_t        name, msg, mig, rest;
    evid_t        e;
    fail_t        f;
    const char   *word;

    /*
     * "OK" on a line of its own: the outcome of the pending Applying when
     * a log writer (migctl run) put the other stream's output between
     * "Applying X..." and its "OK".  At most a timestamp and a stream tag
     * before it.
     */
    if (s->applying.p && s->applying_state == AP_NONE
        && outcome_only(migctl_cls_trim(l)))
    {
        s->applying_state = AP_OK;
        return;
    }

    if (migctl_cls_applying(l, &mig, &rest, &word)) {
        rest = migctl_cls_trim(rest);
        s->applying = mig;
        s->applying_at = n;
        s->applying_state = AP_NONE;

        if ((rest.len >= 2 && memcmp(rest.p, "OK", 2) == 0)
            || (rest.len >= 5 && memcmp(rest.p, "FAKED", 5) == 0))
        {
            s->applying_state = AP_OK;
        }
    }

    if (migctl_cls_run(l)) {
        s->run_at = n;
        s->run_seen = 1;
    }

    if (migctl_cls_kill(l)) {
        s->kill = migctl_cls_trim(l);
        s->kill_at = n;
        return;
    }

    if (migctl_cls_exception_line(l, 0, &name, &msg)) {
        chain_start(s, n, 0);
        chain_exception(s, l, name, msg);
        return;
    }

    if (migctl_cls_severity(l, &name, &rest, &msg)) {
        scan_server(s, l, n);
        return;
    }

    /* a code or a known message on a line of its own */
    memset(&e, 0, sizeof(evid_t));
    evid_line(&e, l);

    if (e.code || e.msg || e.txt) {
        memset(&f, 0, sizeof(fail_t));
        f.kind = F_LOOSE;
        f.first = n;
        f.last = n;
        f.ev = l;
        if (!verdict_evid(&f, &e) && e.txt) {
            f.cls = e.txt->cls;
            f.reason = e.txt->reason;
            f.source = "text";
        }
        s->loose = f;
        s->have_loose = 1;
    }
}


/* a PostgreSQL log line: "<prefix>SEVERITY:  message" */
static void
scan_server(scan_t *s, line_t l, size_t n)
{
    size_t   i, stop;
    line_t   sev, prefix, msg, pid, st;
    fail_t   f, *o;
    evid_t   e;

    if (!migctl_cls_severity(l, &sev, &prefix, &msg)) {
        return;
    }

    pid = migctl_cls_pid(prefix);

    if ((sev.len == 5 && (memcmp(sev.p, "ERROR", 5) == 0
                          || memcmp(sev.p, "FATAL", 5) == 0
                          || memcmp(sev.p, "PANIC", 5) == 0)))
    {
        memset(&f, 0, sizeof(fail_t));
        memset(&e, 0, sizeof(evid_t));
        f.kind = F_SERVER;
        f.first = n;
        f.last = n;
        f.pid = pid;
        f.msg = msg;
        f.ev = l;
        f.ddl = pid.p && line_eq(pid, s->ddl_pid);
        evid_line(&e, l);
        verdict_evid(&f, &e);
        if (f.source == NULL) {
            f.source = "message";
        }
        push_fail(s, &f);
        return;
    }

    st.p = NULL;
    st.len = 0;

    if (sev.len == 9 && memcmp(sev.p, "STATEMENT", 9) == 0) {
        st = msg;

    } else if (sev.len == 3 && memcmp(sev.p, "LOG", 3) == 0) {
        /* log_statement = 'ddl' and log_min_duration_statement */
        st.p = migctl_cls_find(msg, "statement: ", 0);
        if (st.p) {
            st.p += 11;
            st.len = msg.p + msg.len - st.p;
        }
    }

    if (st.p && migctl_cls_ddl(st)) {
        s->ddl_pid = pid;
    }

    if (!(st.p && sev.len == 9) && !(sev.len == 6
                                     && memcmp(sev.p, "DETAIL", 6) == 0))
    {
        return;
    }

    /* DETAIL and STATEMENT belong to the latest error of their backend */
    stop = s->nfails > SAME_PID_BACK ? s->nfails - SAME_PID_BACK : 0;
    for (i = s->nfails; i > stop; i--) {
        o = &s->fails[i - 1];
        if (o->kind != F_SERVER) {
            continue;
        }
        if (!line_eq(o->pid, pid)) {
            if (pid.p == NULL) {
                return;
            }
            continue;
        }
        if (n - o->last > 8) {
            return;
        }

        if (st.p) {
            if (o->statement.p == NULL) {
                o->statement = st;
                o->ddl |= migctl_cls_ddl(st);
            }
        } else if (o->detail.p == NULL) {
            o->detail = l;
            o->detail.p = msg.p - 9;
            o->detail.len = msg.len + 9;
        }
        o->last = n;
        return;
    }
}


static void
chain_start(scan_t *s, size_t n, int traceback)
{
    memset(&s->chain, 0, sizeof(fail_t));
    memset(&s->exc, 0, sizeof(evid_t));
    memset(&s->cause, 0, sizeof(evid_t));
    s->in_chain = 1;
    s->tb = traceback ? TB_FRAMES : TB_MSG;
    s->tb_first = 0;
    s->tb_prefix = 0;
    s->msg_lines = 0;
    s->chain.kind = F_CLIENT;
    s->chain.first = n;
    s->chain.last = n;

    /* the run was applying a migration without an outcome yet: this
     * failure is its outcome */
    if (s->applying.p && s->applying_state == AP_NONE) {
        s->chain.migration = s->applying;
        s->applying_state = AP_FAILED;
    }
}


static void
chain_exception(scan_t *s, line_t l, line_t name, line_t msg)
{
    /* the earlier exception is a cause: keep its code */
    if (s->exc.code || s->exc.msg) {
        s->cause = s->exc;
    }

    memset(&s->exc, 0, sizeof(evid_t));
    evid_name(&s->exc, name);
    evid_line(&s->exc, l);

    s->chain.exc_name = name;
    s->chain.exc_msg = msg;
    s->chain.ev = l;
    s->tb = TB_MSG;
    s->msg_lines = 0;
}


/* the verdict of a chain: its last exception decides */
static void
chain_end(scan_t *s)
{
    fail_t      *f;
    line_t       name;
    int          db;

    s->in_chain = 0;
    s->tb = TB_NONE;
    f = &s->chain;

    if (f->exc_name.p == NULL) {
        return;
    }

    if (s->exc.detail.p) {
        f->detail = s->exc.detail;
    } else if (s->cause.detail.p) {
        f->detail = s->cause.detail;
    }

    /* a database error wrapper: django.db.utils.X, psycopg2.X, ... */
    name = f->exc_name;
    db = migctl_cls_find(name, "django.db.utils.", 0) == name.p
         || migctl_cls_find(name, "psycopg", 0) == name.p;

    if (verdict_evid(f, &s->exc)) {

        /* Django re-raises psycopg's error with the same text: psycopg's
         * class stays the source when only the message repeats it */
        if (s->exc.code == NULL && s->cause.code
            && memcmp(s->cause.code, f->code, 5) == 0)
        {
            f->source = s->cause.source;
        }

    } else if (db && (s->cause.code || s->cause.msg)) {
        verdict_evid(f, &s->cause);

    } else if (pyexc_verdict(f)) {
        /* void */

    } else if (s->exc.txt) {
        f->cls = s->exc.txt->cls;
        f->reason = s->exc.txt->reason;
        f->source = "text";

    } else if (f->frame.p) {
        f->cls = CLS_CODE_FIX;
        f->reason = R_RUNPY;
        f->source = "exception";

    } else if (s->cause.code || s->cause.msg) {
        verdict_evid(f, &s->cause);
    }

    /* the exception line shown is name and message, bounded */
    f->ev = f->exc_name;
    if (f->exc_msg.p) {
        f->ev.len = f->exc_msg.p + f->exc_msg.len - f->exc_name.p;
    }

    push_fail(s, f);
}


static int
push_fail(scan_t *s, fail_t *f)
{
    fail_t  *n;
    size_t   na;

    if (s->nfails == FAILS_MAX) {
        compact(s);
    }

    if (s->nfails == s->nalloc) {
        na = s->nalloc ? s->nalloc * 2 : 16;
        n = realloc(s->fails, na * sizeof(fail_t));
        if (n == NULL) {
            s->nomem = 1;
            return -1;
        }
        s->fails = n;
        s->nalloc = na;
    }

    s->fails[s->nfails++] = *f;

    return 0;
}


/*
 * A huge log with many errors: keep the errors of backends that ran DDL,
 * the client failures history shows and the latest FAILS_TAIL; the other
 * server errors only count (as other sessions').
 */
static void
compact(scan_t *s)
{
    size_t   i, j, nclient, seen, keep;
    fail_t  *f;

    nclient = 0;
    for (i = 0; i < s->nfails; i++) {
        nclient += s->fails[i].kind == F_CLIENT;
    }

    seen = 0;
    for (i = 0, j = 0; i < s->nfails; i++) {
        f = &s->fails[i];

        if (f->kind == F_CLIENT) {
            keep = nclient - seen++ <= HISTORY_MAX + 1;
        } else {
            keep = f->ddl || (s->ddl_pid.p && line_eq(f->pid, s->ddl_pid));
        }

        if (keep || i + FAILS_TAIL >= s->nfails) {
            s->fails[j++] = *f;
        } else {
            s->dropped += f->kind == F_SERVER;
        }
    }

    /* still full (a log of DDL errors): the oldest half goes */
    if (j > FAILS_MAX / 2) {
        for (i = 0; i < j - FAILS_MAX / 2; i++) {
            s->dropped += s->fails[i].kind == F_SERVER;
        }
        memmove(s->fails, s->fails + (j - FAILS_MAX / 2),
                FAILS_MAX / 2 * sizeof(fail_t));
        j = FAILS_MAX / 2;
    }

    s->nfails = j;
}


/* psycopg's error class: "psycopg2.errors.UniqueViolation" */
static void
evid_name(evid_t *e, line_t name)
{
    size_t             k;
    const sqlstate_t  *st;

    for (k = 0; k + 1 < name.len; k++) {
        if (name.p[k] == '.'
            && ((k >= 15 && memcmp(name.p + k - 15, "psycopg2.errors", 15)
                            == 0)
                || (k >= 14 && memcmp(name.p + k - 14, "psycopg.errors", 14)
                               == 0)))
        {
            st = migctl_cls_by_name(name.p + k + 1, name.len - k - 1);
            if (st && e->code == NULL) {
                e->code = st->code;
                e->source = "exception";
            }
            return;
        }
    }
}


/* an explicit code, a server message, a known text, a DETAIL line */
static void
evid_line(evid_t *e, line_t l)
{
    const char  *code, *hit;

    if (e->code == NULL && migctl_cls_explicit_code(l, &code)) {
        e->code = code;
        e->source = "sqlstate";
    }

    if (e->detail.p == NULL && (hit = migctl_cls_find(l, "DETAIL:", 0)) != NULL
        && (hit == l.p || hit[-1] == ' '))
    {
        e->detail.p = hit;
        e->detail.len = l.p + l.len - hit;
    }

    if (e->msg == NULL) {
        e->msg = migctl_cls_message(l);
    }

    if (e->txt == NULL) {
        e->txt = migctl_cls_text(l);
    }
}


static void
verdict_code(fail_t *f, const char *code, const message_t *msg)
{
    f->code = code;
    f->cls = migctl_cls_class_of_code(code, &f->reason);

    /* a message refines its code: 57014 is a timeout or a cancel */
    if (msg && memcmp(msg->code, code, 5) == 0) {
        if (msg->cls != CLS_UNKNOWN) {
            f->cls = msg->cls;
        }
        if (msg->reason) {
            f->reason = msg->reason;
        }
    }
}


/* 1: the evidence gave a code */
static int
verdict_evid(fail_t *f, evid_t *e)
{
    if (e->code) {
        verdict_code(f, e->code, e->msg);
        f->source = e->source;
        return 1;
    }

    if (e->msg) {
        verdict_code(f, e->msg->code, e->msg);
        f->source = "message";
        return 1;
    }

    return 0;
}


/* 1: a Python exception this table knows */
static int
pyexc_verdict(fail_t *f)
{
    line_t          n;
    const pyexc_t  *e;

    /* the last dotted component of the name */
    n = f->exc_name;
    while (n.len && n.p[n.len - 1] != '.') {
        n.len--;
    }
    n.p += n.len;
    n.len = f->exc_name.len - n.len;

    /* the app host's disk, not the database's (53100) */
    if (n.len == 7
        && (memcmp(n.p, "OSError", 7) == 0 || memcmp(n.p, "IOError", 7) == 0)
        && f->exc_msg.p && migctl_cls_find(f->exc_msg, "[Errno 28]", 0))
    {
        f->cls = CLS_TRANSIENT;
        f->reason = R_HOSTDISK;
        f->source = "exception";
        return 1;
    }

    e = migctl_cls_pyexc(f->exc_name.p, f->exc_name.len);
    if (e == NULL) {
        return 0;
    }

    f->cls = e->cls;
    f->reason = e->reason;
    f->source = "exception";

    return 1;
}


static int
line_next(const char *text, size_t len, size_t *pos, line_t *l)
{
    size_t  i;

    if (*pos >= len) {
        return 0;
    }

    for (i = *pos; i < len && text[i] != '\n'; i++) {
        /* void */
    }

    l->p = text + *pos;
    l->len = i - *pos;
    if (l->len && l->p[l->len - 1] == '\r') {
        l->len--;
    }

    *pos = i + 1;

    return 1;
}
