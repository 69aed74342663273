/*
 * classify.h: what classify_decide.c (the last failure decides),
 * classify.c (reading a run) and classify_table.c (what PostgreSQL,
 * psycopg, Python and Django print) share.  Private to them.
 */

#ifndef MIGCTL_CLASSIFY_H
#define MIGCTL_CLASSIFY_H

#include <stddef.h>
#include <string.h>


#define CLS_UNKNOWN     0
#define CLS_TRANSIENT   1
#define CLS_CODE_FIX    2
#define CLS_HIGH_RISK   3


typedef struct {
    const char  *code;
    const char  *name;          /* condition name: psycopg2's class name in
                                   snake case */
    int          cls;
    const char  *reason;
} sqlstate_t;

/*
 * A server or driver message: "a" alone, or "a" then "b" later on the same
 * line.  A message may refine the class and reason of its code (57014 is a
 * statement timeout or an operator's cancel).
 */
typedef struct {
    const char  *a;
    const char  *b;
    const char  *code;
    int          cls;           /* CLS_UNKNOWN: the code's class */
    const char  *reason;        /* NULL: the code's reason */
} message_t;

/* a Python or Django exception class, by its last dotted component */
typedef struct {
    const char  *name;
    int          cls;
    const char  *reason;
} pyexc_t;

/* a text without SQLSTATE: migration graph errors */
typedef struct {
    const char  *a;
    int          cls;
    const char  *reason;
} text_t;

typedef struct {
    const char  *p;
    size_t       len;
} line_t;


const sqlstate_t *migctl_cls_by_code(const char *code);
const sqlstate_t *migctl_cls_by_name(const char *name, size_t len);
int migctl_cls_class_of_code(const char *code, const char **reason);
const message_t *migctl_cls_message(line_t l);
const text_t *migctl_cls_text(line_t l);
const pyexc_t *migctl_cls_pyexc(const char *name, size_t len);
int migctl_cls_explicit_code(line_t l, const char **code);
int migctl_cls_exception_line(line_t l, int after_traceback, line_t *name,
    line_t *msg);
const char *migctl_cls_find(line_t l, const char *s, size_t from);
line_t migctl_cls_trim(line_t l);

/* lines of a run: Django's stdout, the shell, PostgreSQL's log */
int migctl_cls_applying(line_t l, line_t *mig, line_t *rest,
    const char **word);
int migctl_cls_run(line_t l);
int migctl_cls_kill(line_t l);
int migctl_cls_severity(line_t l, line_t *sev, line_t *prefix, line_t *msg);
line_t migctl_cls_pid(line_t prefix);
int migctl_cls_ddl(line_t l);


/* evidence of a code within one exception, server line or loose line */
typedef struct {
    const char        *code;    /* explicit or psycopg's class: 5 chars */
    const char        *source;  /* "sqlstate" or "exception" */
    const message_t   *msg;     /* the first server message seen */
    const text_t      *txt;     /* the first known text seen */
    line_t             detail;  /* a DETAIL line */
} evid_t;

#define F_CLIENT        1       /* a traceback chain, or exception lines */
#define F_SERVER        2       /* a server log ERROR, FATAL or PANIC */
#define F_LOOSE         3       /* a code or a message on a line alone */

/*
 * One failure in the text and its verdict.  Every line_t points into the
 * caller's text: nothing here is allocated but the array of failures.
 */
typedef struct {
    int                kind;
    size_t             first;   /* line numbers, from 0 */
    size_t             last;
    int                cls;
    const char        *code;
    const char        *reason;
    const char        *source;
    line_t             exc_name;    /* the last exception of a chain */
    line_t             exc_msg;
    line_t             ev;
    line_t             detail;
    line_t             frame;       /* innermost frame in a migration */
    line_t             migration;   /* "app.name" of its Applying line */
    line_t             msg;         /* server: the message */
    line_t             pid;         /* server: digits, or empty */
    line_t             statement;
    int                ddl;         /* server: its statement is DDL */
} fail_t;

/* where a traceback reader is */
#define TB_NONE         0
#define TB_FRAMES       1       /* after "Traceback (most recent ...):" */
#define TB_MSG          2       /* after an exception line */
#define TB_GAP          3       /* blank lines after an exception */
#define TB_LINK         4       /* after "The above exception ..." */

#define AP_NONE         0       /* "Applying x..." and nothing yet */
#define AP_OK           1
#define AP_FAILED       2

#define MSG_LINES_MAX   16      /* continuation lines of one exception */
#define HISTORY_MAX     20
#define SAME_PID_BACK   64      /* failures searched for a DETAIL's owner */
#define FAILS_MAX       65536   /* then compact: bounded memory */
#define FAILS_TAIL      1024    /* the latest failures always kept */

typedef struct {
    fail_t            *fails;
    size_t             nfails;
    size_t             nalloc;
    int                nomem;

    /* the chain being read */
    int                tb;
    int                tb_first;    /* the first line after the header */
    size_t             tb_prefix;   /* bytes of log prefix on its lines */
    size_t             msg_lines;
    size_t             gap_lines;
    int                in_chain;
    fail_t             chain;
    evid_t             exc;         /* of the chain's current exception */
    evid_t             cause;       /* of its earlier ones, with a code */

    /* the last "Applying app.name..." */
    line_t             applying;
    size_t             applying_at;
    int                applying_state;

    line_t             kill;        /* the last sign of a killed job */
    size_t             kill_at;
    size_t             run_at;      /* the last "Running migrations:" */
    int                run_seen;

    fail_t             loose;       /* the last loose evidence */
    int                have_loose;

    line_t             ddl_pid;     /* the last backend seen running DDL */
    size_t             dropped;     /* server errors compacted away */
} scan_t;

/*
 * classify.c: one pass over the lines of text into s->fails, each with
 * its verdict; 0, or -1 out of memory (s->fails is the caller's to free
 * either way).
 */
int migctl_cls_scan(scan_t *s, const char *text, size_t len);


static inline int
line_eq(line_t a, line_t b)
{
    if (a.p == NULL || b.p == NULL) {
        return a.p == b.p;
    }

    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

#endif /* MIGCTL_CLASSIFY_H */
