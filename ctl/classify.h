/*
 * classify.h: what classify.c (reading a run) and classify_table.c (what
 * PostgreSQL, psycopg, Python and Django print) share.  Private to them.
 */

#ifndef MIGCTL_CLASSIFY_H
#define MIGCTL_CLASSIFY_H

#include <stddef.h>


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

#endif /* MIGCTL_CLASSIFY_H */
