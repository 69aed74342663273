/*
 * classify.c: the class of a migration failure from a Django traceback or
 * a deploy / server log: SQLSTATE, exception, class and the reason.
 */

#include <ctype.h>
#include <string.h>

#include "migctl.h"


#define CLS_UNKNOWN     0
#define CLS_TRANSIENT   1
#define CLS_CODE_FIX    2
#define CLS_HIGH_RISK   3

#define LINE_MAX_SHOWN  240


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

/* a text without SQLSTATE: migration graph errors, a killed job */
typedef struct {
    const char  *a;
    int          eol;           /* "a" must end the line */
    int          cls;
    const char  *reason;
} text_t;

typedef struct {
    const char  *p;
    size_t       len;
} line_t;

typedef struct {
    const char        *code;    /* 5 chars, not NUL-terminated, or NULL */
    const sqlstate_t  *st;
    const char        *source;
    int                line;
    line_t             where;
} found_t;


static const sqlstate_t *sqlstate_by_code(const char *code);
static const sqlstate_t *sqlstate_by_name(const char *name, size_t len);
static int class_of_code(const char *code, const char **reason);
static const char *line_find(line_t l, const char *s, size_t from);
static int line_next(const char *text, size_t len, size_t *pos, line_t *l);
static int explicit_code(line_t l, const char **code);
static int exception_line(line_t l, int after_traceback, line_t *name,
    line_t *msg);
static int code_char(int c);
static json_t *json_line(line_t l);
static json_t *json_code(const char *code);


static const char *class_names[] = {
    "unknown", "transient", "code_fix", "high_risk"
};


#define R_LOCK "a lock the migration needed was held by another session " \
    "and lock_timeout expired; the failed statement changed nothing; " \
    "find the blocker (migctl locks) and retry"
#define R_CONN "the connection to PostgreSQL was lost or refused; " \
    "retry once the server is reachable"
#define R_UNDEF "the migration or the code refers to an object that does " \
    "not exist: fix the migration (or its dependencies) in the code"
#define R_EXISTS "an object the migration creates already exists, left " \
    "by an earlier partial run or made by hand: the schema is not what " \
    "the migration expects"
#define R_DATA "existing rows cannot be converted to the new type: the " \
    "data must be cleaned before the migration can apply"
#define R_SYS "the database server failed (resource or internal error): " \
    "a retry is likely to fail the same way"

static const sqlstate_t sqlstates[] = {

    /* transient: nothing is wrong with the migration or the data */
    { "55P03", "lock_not_available", CLS_TRANSIENT, R_LOCK },
    { "40P01", "deadlock_detected", CLS_TRANSIENT,
      "deadlock with another session; the transaction was rolled back; "
      "retry once the other writer is done" },
    { "40001", "serialization_failure", CLS_TRANSIENT,
      "serialization failure: a concurrent transaction won; retry" },
    { "08000", "connection_exception", CLS_TRANSIENT, R_CONN },
    { "08001", "sqlclient_unable_to_establish_sqlconnection", CLS_TRANSIENT,
      R_CONN },
    { "08003", "connection_does_not_exist", CLS_TRANSIENT, R_CONN },
    { "08004", "sqlserver_rejected_establishment_of_sqlconnection",
      CLS_TRANSIENT, R_CONN },
    { "08006", "connection_failure", CLS_TRANSIENT, R_CONN },
    { "53300", "too_many_connections", CLS_TRANSIENT,
      "too many connections: retry when slots free up (check the pooler "
      "and max_connections)" },
    { "57P01", "admin_shutdown", CLS_TRANSIENT,
      "the server ended the session (administrator command or shutdown): "
      "an interrupted job; retry" },
    { "57P02", "crash_shutdown", CLS_TRANSIENT,
      "the server restarted after a crash: an interrupted job; retry" },
    { "57P03", "cannot_connect_now", CLS_TRANSIENT,
      "the server is starting up or shutting down; retry" },
    { "25P03", "idle_in_transaction_session_timeout", CLS_TRANSIENT,
      "the session was ended by idle_in_transaction_session_timeout: "
      "an interrupted job; retry" },

    /* code_fix: the migration or the release is wrong */
    { "42601", "syntax_error", CLS_CODE_FIX,
      "SQL syntax error in the migration (RunSQL?): fix the SQL" },
    { "42P01", "undefined_table", CLS_CODE_FIX, R_UNDEF },
    { "42703", "undefined_column", CLS_CODE_FIX, R_UNDEF },
    { "42883", "undefined_function", CLS_CODE_FIX, R_UNDEF },
    { "42704", "undefined_object", CLS_CODE_FIX, R_UNDEF },
    { "3F000", "invalid_schema_name", CLS_CODE_FIX, R_UNDEF },
    { "25001", "active_sql_transaction", CLS_CODE_FIX,
      "a CONCURRENTLY operation inside an atomic migration: set "
      "atomic = False on the migration" },
    { "42804", "datatype_mismatch", CLS_CODE_FIX,
      "type mismatch in the migration's SQL: fix the migration" },
    { "42846", "cannot_coerce", CLS_CODE_FIX,
      "no cast between the old and the new type: the migration needs "
      "a USING expression" },
    { "42702", "ambiguous_column", CLS_CODE_FIX,
      "ambiguous column reference in the migration's SQL" },
    { "42725", "ambiguous_function", CLS_CODE_FIX,
      "ambiguous function call in the migration's SQL" },
    { "42809", "wrong_object_type", CLS_CODE_FIX,
      "the migration's SQL uses an object of the wrong kind" },
    { "42P16", "invalid_table_definition", CLS_CODE_FIX,
      "invalid table definition in the migration" },
    { "42611", "invalid_column_definition", CLS_CODE_FIX,
      "invalid column definition in the migration" },
    { "0A000", "feature_not_supported", CLS_CODE_FIX,
      "the migration uses something this PostgreSQL does not support" },
    { "2BP01", "dependent_objects_still_exist", CLS_CODE_FIX,
      "the migration drops an object that others depend on: drop or "
      "alter the dependants first, in the migration" },

    /* high_risk: existing data, rights or the server decide */
    { "23505", "unique_violation", CLS_HIGH_RISK,
      "existing rows violate the new unique constraint or index: the "
      "duplicates must be resolved (a data decision) before it applies" },
    { "23502", "not_null_violation", CLS_HIGH_RISK,
      "existing rows hold NULL where the migration requires NOT NULL: "
      "backfill them first" },
    { "23503", "foreign_key_violation", CLS_HIGH_RISK,
      "existing rows reference rows that do not exist: fix the orphans "
      "before the foreign key can be added" },
    { "23514", "check_violation", CLS_HIGH_RISK,
      "existing rows fail the new check constraint" },
    { "23P01", "exclusion_violation", CLS_HIGH_RISK,
      "existing rows violate the new exclusion constraint" },
    { "23000", "integrity_constraint_violation", CLS_HIGH_RISK,
      "existing rows violate an integrity constraint" },
    { "23001", "restrict_violation", CLS_HIGH_RISK,
      "existing rows are still referenced (ON DELETE RESTRICT)" },
    { "57014", "query_canceled", CLS_HIGH_RISK,
      "the statement was canceled (statement_timeout or a cancel): a "
      "long rewrite or scan under lock; a plain retry hits it again" },
    { "42501", "insufficient_privilege", CLS_HIGH_RISK,
      "the role running migrate lacks a right (table owner or DDL "
      "privilege): run migrate as the schema owner" },
    { "53100", "disk_full", CLS_HIGH_RISK,
      "the database server's disk is full: free space first; a retry "
      "fails the same way" },
    { "53200", "out_of_memory", CLS_HIGH_RISK, R_SYS },
    { "53400", "configuration_limit_exceeded", CLS_HIGH_RISK, R_SYS },
    { "54000", "program_limit_exceeded", CLS_HIGH_RISK, R_SYS },
    { "58030", "io_error", CLS_HIGH_RISK, R_SYS },
    { "XX000", "internal_error", CLS_HIGH_RISK, R_SYS },
    { "XX001", "data_corrupted", CLS_HIGH_RISK, R_SYS },
    { "XX002", "index_corrupted", CLS_HIGH_RISK, R_SYS },
    { "42P07", "duplicate_table", CLS_HIGH_RISK, R_EXISTS },
    { "42701", "duplicate_column", CLS_HIGH_RISK, R_EXISTS },
    { "42710", "duplicate_object", CLS_HIGH_RISK, R_EXISTS },
    { "42P06", "duplicate_schema", CLS_HIGH_RISK, R_EXISTS },
    { "42723", "duplicate_function", CLS_HIGH_RISK, R_EXISTS },
    { "22P02", "invalid_text_representation", CLS_HIGH_RISK, R_DATA },
    { "22003", "numeric_value_out_of_range", CLS_HIGH_RISK, R_DATA },
    { "22001", "string_data_right_truncation", CLS_HIGH_RISK, R_DATA },
    { "22007", "invalid_datetime_format", CLS_HIGH_RISK, R_DATA },
    { "22008", "datetime_field_overflow", CLS_HIGH_RISK, R_DATA },
    { "22012", "division_by_zero", CLS_HIGH_RISK, R_DATA },

    { NULL, NULL, CLS_UNKNOWN, NULL }
};


/* on one line, the later line wins; on one line, the earlier entry */
static const message_t messages[] = {
    { "sorry, too many clients already", NULL, "53300", 0, NULL },
    { "remaining connection slots are reserved", NULL, "53300", 0, NULL },
    { "could not create unique index", NULL, "23505", 0, NULL },
    { "duplicate key value violates unique constraint", NULL, "23505", 0,
      NULL },
    { "contains null values", NULL, "23502", 0, NULL },
    { "violates not-null constraint", NULL, "23502", 0, NULL },
    { "violates foreign key constraint", NULL, "23503", 0, NULL },
    { "is violated by some row", NULL, "23514", 0, NULL },
    { "violates check constraint", NULL, "23514", 0, NULL },
    { "violates exclusion constraint", NULL, "23P01", 0, NULL },
    { "canceling statement due to lock timeout", NULL, "55P03", 0, NULL },
    { "could not obtain lock on", NULL, "55P03", 0, NULL },
    { "canceling statement due to statement timeout", NULL, "57014",
      CLS_HIGH_RISK,
      "statement_timeout expired: a long statement (a table rewrite or "
      "a validating scan) under lock; a plain retry hits it again: it "
      "needs a window and a timeout sized for the table, or a migration "
      "that does not rewrite" },
    { "canceling statement due to user request", NULL, "57014",
      CLS_TRANSIENT,
      "an operator or a deploy tool canceled the statement: an "
      "interrupted job" },
    { "canceling statement due to conflict with recovery", NULL, "40001",
      CLS_TRANSIENT, NULL },
    { "deadlock detected", NULL, "40P01", 0, NULL },
    { "could not serialize access", NULL, "40001", 0, NULL },
    { "terminating connection due to administrator command", NULL, "57P01",
      0, NULL },
    { "terminating connection due to idle-in-transaction timeout", NULL,
      "25P03", 0, NULL },
    { "the database system is shutting down", NULL, "57P03", 0, NULL },
    { "the database system is starting up", NULL, "57P03", 0, NULL },
    { "the database system is in recovery mode", NULL, "57P03", 0, NULL },
    { "server closed the connection unexpectedly", NULL, "08006", 0, NULL },
    { "connection already closed", NULL, "08003", 0, NULL },
    { "could not connect to server", NULL, "08001", 0, NULL },
    { "connection to server at", "failed", "08001", 0, NULL },
    { "connection to server on socket", "failed", "08001", 0, NULL },
    { "No space left on device", NULL, "53100", 0, NULL },
    { "could not extend file", NULL, "53100", 0, NULL },
    { "out of memory", NULL, "53200", 0, NULL },
    { "syntax error at or near", NULL, "42601", 0, NULL },
    { "syntax error at end of input", NULL, "42601", 0, NULL },
    { "cannot run inside a transaction block", NULL, "25001", 0, NULL },
    { "column ", " already exists", "42701", 0, NULL },
    { "relation ", " already exists", "42P07", 0, NULL },
    { "constraint ", " already exists", "42710", 0, NULL },
    { "column ", " does not exist", "42703", 0, NULL },
    { "relation ", " does not exist", "42P01", 0, NULL },
    { "function ", " does not exist", "42883", 0, NULL },
    { "schema ", " does not exist", "3F000", 0, NULL },
    { "must be owner of", NULL, "42501", 0, NULL },
    { "permission denied for", NULL, "42501", 0, NULL },
    { "cannot drop ", "because other objects depend on it", "2BP01", 0,
      NULL },
    { "invalid input syntax for", NULL, "22P02", 0, NULL },
    { "out of range for type", NULL, "22003", 0, NULL },
    { "value too long for type", NULL, "22001", 0, NULL },
    { NULL, NULL, NULL, 0, NULL }
};


#define R_PY "a Python error in the migration or release code (RunPython, " \
    "an import, a setting): fix the code"
#define R_GRAPH "the migration graph of the release is broken: fix the " \
    "migration files"
#define R_CONNPY "the connection to PostgreSQL broke: an interrupted job; " \
    "retry"

static const pyexc_t pyexcs[] = {
    { "ImportError", CLS_CODE_FIX, R_PY },
    { "ModuleNotFoundError", CLS_CODE_FIX, R_PY },
    { "NameError", CLS_CODE_FIX, R_PY },
    { "UnboundLocalError", CLS_CODE_FIX, R_PY },
    { "AttributeError", CLS_CODE_FIX, R_PY },
    { "TypeError", CLS_CODE_FIX, R_PY },
    { "ValueError", CLS_CODE_FIX, R_PY },
    { "KeyError", CLS_CODE_FIX, R_PY },
    { "IndexError", CLS_CODE_FIX, R_PY },
    { "LookupError", CLS_CODE_FIX, R_PY },
    { "ZeroDivisionError", CLS_CODE_FIX, R_PY },
    { "AssertionError", CLS_CODE_FIX, R_PY },
    { "NotImplementedError", CLS_CODE_FIX, R_PY },
    { "RecursionError", CLS_CODE_FIX, R_PY },
    { "SyntaxError", CLS_CODE_FIX, R_PY },
    { "IndentationError", CLS_CODE_FIX, R_PY },
    { "ImproperlyConfigured", CLS_CODE_FIX, R_PY },
    { "AppRegistryNotReady", CLS_CODE_FIX, R_PY },
    { "FieldDoesNotExist", CLS_CODE_FIX, R_PY },
    { "FieldError", CLS_CODE_FIX, R_PY },
    { "NodeNotFoundError", CLS_CODE_FIX, R_GRAPH },
    { "CircularDependencyError", CLS_CODE_FIX, R_GRAPH },
    { "BadMigrationError", CLS_CODE_FIX, R_GRAPH },
    { "IrreversibleError", CLS_CODE_FIX,
      "the migration cannot be reversed: roll forward instead" },
    { "InconsistentMigrationHistory", CLS_HIGH_RISK,
      "django_migrations records a migration before its dependency: the "
      "history was edited or faked; the schema needs checking" },
    { "MemoryError", CLS_HIGH_RISK,
      "the migration ran out of memory (a RunPython loading a table?)" },
    { "KeyboardInterrupt", CLS_TRANSIENT,
      "the run was interrupted (SIGINT): an interrupted job" },
    { "InterfaceError", CLS_TRANSIENT, R_CONNPY },
    { "BrokenPipeError", CLS_TRANSIENT, R_CONNPY },
    { "ConnectionResetError", CLS_TRANSIENT, R_CONNPY },
    { "ConnectionRefusedError", CLS_TRANSIENT, R_CONNPY },
    { "ConnectionAbortedError", CLS_TRANSIENT, R_CONNPY },
    { NULL, 0, NULL }
};


#define R_KILLED "the migration process was killed (OOM killer, a deploy " \
    "timeout or an operator): an interrupted job; check what it left"

static const text_t texts[] = {
    { "Conflicting migrations detected", 0, CLS_CODE_FIX,
      "two migrations are leaves of one app: merge them "
      "(makemigrations --merge) in the code" },
    { "dependencies reference nonexistent", 0, CLS_CODE_FIX, R_GRAPH },
    { "cannot be executed inside a transaction", 0, CLS_CODE_FIX,
      "a CONCURRENTLY operation inside an atomic migration: set "
      "atomic = False on the migration" },
    { "is applied before its dependency", 0, CLS_HIGH_RISK,
      "django_migrations records a migration before its dependency: the "
      "history was edited or faked; the schema needs checking" },
    { "Killed", 1, CLS_TRANSIENT, R_KILLED },
    { "Terminated", 1, CLS_TRANSIENT, R_KILLED },
    { "SIGKILL", 0, CLS_TRANSIENT, R_KILLED },
    { "SIGTERM", 0, CLS_TRANSIENT, R_KILLED },
    { NULL, 0, 0, NULL }
};


int
migctl_classify_text(migctl_ctx_t *ctx, const char *text, size_t len,
    json_t **out)
{
    int               cls, in_tb, best_msg_line, n;
    size_t            pos, k;
    line_t            l, name, msg, exc_name, exc_msg, detail, ev, frame;
    const char       *code, *reason, *source, *p, *hit;
    const message_t  *m, *best_msg;
    const pyexc_t    *e;
    const text_t     *t;
    const sqlstate_t *st;
    found_t           expl, cls_name, by_msg, *best, *f[3];
    json_t           *o;

    memset(&expl, 0, sizeof(expl));
    memset(&cls_name, 0, sizeof(cls_name));
    memset(&by_msg, 0, sizeof(by_msg));
    memset(&exc_name, 0, sizeof(exc_name));
    memset(&exc_msg, 0, sizeof(exc_msg));
    memset(&detail, 0, sizeof(detail));
    memset(&ev, 0, sizeof(ev));
    memset(&frame, 0, sizeof(frame));

    best_msg = NULL;
    best_msg_line = -1;
    in_tb = 0;
    n = 0;

    /* one pass: explicit codes, exception lines, server messages */

    for (pos = 0; line_next(text, len, &pos, &l); n++) {

        if (explicit_code(l, &code)) {
            expl.code = code;
            expl.line = n;
            expl.where = l;
        }

        if (l.len >= 9 && memcmp(l.p, "Traceback", 9) == 0) {
            in_tb = 1;
            continue;
        }

        /* a traceback's frames quote source code: not evidence; the
         * innermost frame in a migration file says where it failed */
        if (in_tb && l.len && (l.p[0] == ' ' || l.p[0] == '\t')) {
            hit = line_find(l, "/migrations/", 0);

            /* a migration file: "<app>/migrations/0002_x.py"; Django's
             * own django/db/migrations/ modules have no leading digit */
            if (line_find(l, "File \"", 0) && hit
                && (size_t) (hit - l.p) + 12 < l.len
                && isdigit((unsigned char) hit[12]))
            {
                frame = l;
                while (frame.len && (*frame.p == ' ' || *frame.p == '\t')) {
                    frame.p++;
                    frame.len--;
                }
            }
            continue;
        }

        if (exception_line(l, in_tb, &name, &msg)) {
            exc_name = name;
            exc_msg = msg;
            in_tb = 0;

            for (k = 0; k + 1 < name.len; k++) {
                if (name.p[k] == '.'
                    && ((k >= 15 && memcmp(name.p + k - 15,
                                           "psycopg2.errors", 15) == 0)
                        || (k >= 14 && memcmp(name.p + k - 14,
                                              "psycopg.errors", 14) == 0)))
                {
                    st = sqlstate_by_name(name.p + k + 1, name.len - k - 1);
                    if (st) {
                        cls_name.st = st;
                        cls_name.code = st->code;
                        cls_name.line = n;
                        cls_name.where = l;
                    }
                    break;
                }
            }
        }

        for (m = messages; m->a; m++) {
            hit = line_find(l, m->a, 0);
            if (hit == NULL) {
                continue;
            }

            if (m->b && line_find(l, m->b, hit - l.p + strlen(m->a)) == NULL)
            {
                continue;
            }

            if (n > best_msg_line) {
                best_msg = m;
                best_msg_line = n;
                by_msg.code = m->code;
                by_msg.line = n;
                by_msg.where = l;
                detail.p = NULL;
            }
            break;
        }

        /* a DETAIL line that follows the latest match on the next line */
        if (best_msg_line == n - 1 && detail.p == NULL
            && l.len > 8 && memcmp(l.p, "DETAIL:", 7) == 0)
        {
            detail = l;
        }
    }

    /*
     * The SQLSTATE: the latest evidence wins, as a log may hold an earlier
     * error that was retried.  Evidence that only repeats the code (Django
     * re-raises psycopg's error with the same text) does not displace the
     * more precise source: an explicit code, psycopg's class, a message.
     */

    expl.source = "sqlstate";
    cls_name.source = "exception";
    by_msg.source = "message";
    f[0] = &expl;
    f[1] = &cls_name;
    f[2] = &by_msg;
    best = NULL;

    for (k = 0; k < 3; k++) {
        if (f[k]->code == NULL) {
            continue;
        }

        if (best == NULL
            || (f[k]->line > best->line
                && memcmp(f[k]->code, best->code, 5) != 0))
        {
            best = f[k];
        }
    }

    code = best ? best->code : NULL;
    source = best ? best->source : NULL;
    if (best) {
        ev = best->where;
    }

    cls = CLS_UNKNOWN;
    reason = NULL;
    st = NULL;

    if (code) {
        st = sqlstate_by_code(code);
        cls = class_of_code(code, &reason);

        if (best_msg && memcmp(best_msg->code, code, 5) == 0) {
            if (best_msg->cls != CLS_UNKNOWN) {
                cls = best_msg->cls;
            }
            if (best_msg->reason) {
                reason = best_msg->reason;
            }
        }

    } else {
        /* no SQL error: the Python exception, then known texts */

        if (exc_name.p) {
            p = exc_name.p + exc_name.len;
            while (p > exc_name.p && p[-1] != '.') {
                p--;
            }
            k = exc_name.p + exc_name.len - p;

            for (e = pyexcs; e->name; e++) {
                if (strlen(e->name) == k && memcmp(e->name, p, k) == 0) {
                    cls = e->cls;
                    reason = e->reason;
                    ev = exc_name;
                    ev.len = exc_msg.p ? (size_t) (exc_msg.p + exc_msg.len
                                                   - exc_name.p)
                                       : exc_name.len;
                    source = "exception";
                    break;
                }
            }
        }

        if (cls == CLS_UNKNOWN) {
            n = 0;
            for (pos = 0; line_next(text, len, &pos, &l); n++) {
                for (t = texts; t->a; t++) {
                    hit = line_find(l, t->a, 0);
                    if (hit == NULL) {
                        continue;
                    }
                    if (t->eol) {
                        k = l.len;
                        while (k && isspace((unsigned char) l.p[k - 1])) {
                            k--;
                        }
                        if ((size_t) (hit - l.p) + strlen(t->a) != k) {
                            continue;
                        }
                    }
                    cls = t->cls;
                    reason = t->reason;
                    ev = l;
                    source = "text";
                    break;
                }
            }
        }
    }

    if (cls == CLS_UNKNOWN && reason == NULL) {
        reason = code ? "a SQLSTATE this table does not know: not guessing"
                      : "no known SQLSTATE, server message or exception "
                        "in the text: not guessing";
    }

    o = json_object();
    if (o == NULL) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    json_object_set_new(o, "class", json_string(class_names[cls]));
    json_object_set_new(o, "sqlstate", code ? json_code(code) : json_null());
    json_object_set_new(o, "condition",
                        st ? json_string(st->name) : json_null());
    json_object_set_new(o, "exception",
                        exc_name.p ? json_line(exc_name) : json_null());
    json_object_set_new(o, "message",
                        exc_msg.p ? json_line(exc_msg) : json_null());
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "source",
                        source ? json_string(source) : json_null());
    json_object_set_new(o, "evidence", ev.p ? json_line(ev) : json_null());
    json_object_set_new(o, "detail",
                        detail.p ? json_line(detail) : json_null());
    json_object_set_new(o, "frame",
                        frame.p ? json_line(frame) : json_null());

    *out = o;

    return MIGCTL_OK;
}


static const sqlstate_t *
sqlstate_by_code(const char *code)
{
    const sqlstate_t  *s;

    for (s = sqlstates; s->code; s++) {
        if (memcmp(s->code, code, 5) == 0) {
            return s;
        }
    }

    return NULL;
}


/* "UniqueViolation" -> unique_violation, compared without a copy */
static const sqlstate_t *
sqlstate_by_name(const char *name, size_t len)
{
    size_t             i, j, n;
    int                c;
    const sqlstate_t  *s;

    for (s = sqlstates; s->code; s++) {
        n = strlen(s->name);

        for (i = 0, j = 0; i < len && j < n; i++) {
            c = (unsigned char) name[i];

            if (isupper(c) && i > 0) {
                if (s->name[j++] != '_' || j == n) {
                    break;
                }
            }

            if (tolower(c) != s->name[j++]) {
                break;
            }
        }

        if (i == len && j == n) {
            return s;
        }
    }

    return NULL;
}


/* a code not in the table is classed by its class only where that is
 * unambiguous; else unknown */
static int
class_of_code(const char *code, const char **reason)
{
    const sqlstate_t  *s;

    s = sqlstate_by_code(code);
    if (s) {
        *reason = s->reason;
        return s->cls;
    }

    if (memcmp(code, "08", 2) == 0) {
        *reason = R_CONN;
        return CLS_TRANSIENT;
    }

    if (memcmp(code, "40", 2) == 0) {
        *reason = "the transaction was rolled back by the server "
                  "(class 40); retry";
        return CLS_TRANSIENT;
    }

    if (memcmp(code, "22", 2) == 0) {
        *reason = R_DATA;
        return CLS_HIGH_RISK;
    }

    if (memcmp(code, "23", 2) == 0) {
        *reason = "existing rows violate an integrity constraint "
                  "(class 23)";
        return CLS_HIGH_RISK;
    }

    if (memcmp(code, "58", 2) == 0 || memcmp(code, "XX", 2) == 0) {
        *reason = R_SYS;
        return CLS_HIGH_RISK;
    }

    *reason = NULL;
    return CLS_UNKNOWN;
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


static const char *
line_find(line_t l, const char *s, size_t from)
{
    size_t  n, i;

    n = strlen(s);
    if (n > l.len) {
        return NULL;
    }

    for (i = from; i + n <= l.len; i++) {
        if (l.p[i] == s[0] && memcmp(l.p + i, s, n) == 0) {
            return l.p + i;
        }
    }

    return NULL;
}


static int
code_char(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}


/*
 * "SQLSTATE 23505", "sqlstate: 23505", "SQLSTATE[23505]", "pgcode 23505",
 * and PostgreSQL's verbose log "ERROR:  23505: ...".  A code has five
 * characters, digits or capitals, at least one digit; up to four
 * separators before it (JSON: "sqlstate": "23505").
 */
static int
explicit_code(line_t l, const char **code)
{
    static const struct {
        const char  *key;
        int          log;       /* the verbose log form: a ':' follows */
    } keys[] = {
        { "SQLSTATE", 0 }, { "sqlstate", 0 }, { "SqlState", 0 },
        { "pgcode", 0 }, { "ERROR:  ", 1 }, { "FATAL:  ", 1 },
        { "PANIC:  ", 1 }, { NULL, 0 }
    };

    size_t       i, j, k, from;
    int          digit, found, x;
    const char  *hit;

    found = 0;

    for (x = 0; keys[x].key; x++) {
        from = 0;

        while ((hit = line_find(l, keys[x].key, from)) != NULL) {
            i = hit - l.p + strlen(keys[x].key);
            from = i;

            for (k = 0; !keys[x].log && k < 4 && i < l.len
                        && l.p[i] != '\0'
                        && strchr(" :=[('\"", l.p[i]) != NULL; k++)
            {
                i++;
            }

            if (i + 5 > l.len) {
                continue;
            }

            digit = 0;
            for (j = 0; j < 5; j++) {
                if (!code_char((unsigned char) l.p[i + j])) {
                    break;
                }
                digit |= (l.p[i + j] >= '0' && l.p[i + j] <= '9');
            }

            if (j < 5 || !digit
                || (i + 5 < l.len && code_char((unsigned char) l.p[i + 5])))
            {
                continue;
            }

            if (keys[x].log && (i + 5 >= l.len || l.p[i + 5] != ':')) {
                continue;
            }

            /* 00 success, 01 warning, 02 no data: not a failure */
            if (l.p[i] == '0' && l.p[i + 1] >= '0' && l.p[i + 1] <= '2') {
                continue;
            }

            *code = l.p + i;
            found = 1;
        }
    }

    return found;
}


/*
 * A Python exception line: "pkg.mod.Name: message" or "Name" alone at the
 * start of a line.  Right after a traceback's frames any such line is
 * one; elsewhere the name must look like an exception (Error, Exception,
 * Interrupt, Exit, or a psycopg errors class).
 */
static int
exception_line(line_t l, int after_traceback, line_t *name, line_t *msg)
{
    size_t  i;
    int     c;

    for (i = 0; i < l.len; i++) {
        c = (unsigned char) l.p[i];

        if (!(isalnum(c) || c == '_' || (c == '.' && i > 0))) {
            break;
        }
    }

    if (i == 0 || isdigit((unsigned char) l.p[0]) || l.p[i - 1] == '.') {
        return 0;
    }

    if (i < l.len && !(l.p[i] == ':' && (i + 1 == l.len
                                         || l.p[i + 1] == ' ')))
    {
        return 0;
    }

    name->p = l.p;
    name->len = i;

    if (!after_traceback) {
        line_t  tail;

        tail.p = l.p;
        tail.len = i;

        if (!((i >= 5 && memcmp(l.p + i - 5, "Error", 5) == 0)
              || (i >= 9 && memcmp(l.p + i - 9, "Exception", 9) == 0)
              || (i >= 9 && memcmp(l.p + i - 9, "Interrupt", 9) == 0)
              || (i >= 4 && memcmp(l.p + i - 4, "Exit", 4) == 0)
              || line_find(tail, "psycopg2.errors.", 0) == l.p
              || line_find(tail, "psycopg.errors.", 0) == l.p))
        {
            return 0;
        }
    }

    if (i + 2 <= l.len) {
        msg->p = l.p + i + 2;
        msg->len = l.len - i - 2;

    } else {
        msg->p = NULL;
        msg->len = 0;
    }

    return 1;
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
