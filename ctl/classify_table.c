/*
 * classify_table.c: what PostgreSQL, psycopg, Python and Django print when
 * a migration fails, and the class each means.
 */

#include <ctype.h>
#include <string.h>

#include "classify.h"


static int code_char(int c);


#define R_LOCK "a lock the migration needed was held by another session " \
    "and lock_timeout expired; the failed statement changed nothing; " \
    "find the blocker (migctl locks) and retry"
#define R_CONN "the connection to PostgreSQL was lost or refused; " \
    "retry once the server is reachable"
#define R_UNDEF "the migration or the code refers to an object that does " \
    "not exist: fix the migration (or its dependencies) in the code; " \
    "unless an earlier migration recorded with --fake never created it " \
    "(history drift: migctl diagnose and verify check)"
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
    /* the server's words; Python's OSError errno 28 is the app host's */
    { "could not ", "No space left on device", "53100", 0, NULL },
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
    { "RuntimeError", CLS_CODE_FIX, R_PY },
    { "DoesNotExist", CLS_CODE_FIX,
      "the migration's code looked up a row that is not there "
      "(Model.DoesNotExist): make the code handle it" },
    { "ObjectDoesNotExist", CLS_CODE_FIX,
      "the migration's code looked up a row that is not there: make the "
      "code handle it" },
    { "MultipleObjectsReturned", CLS_CODE_FIX,
      "the migration's code expected one row and found several "
      "(get()): make the code handle it" },
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


static const text_t texts[] = {
    { "Conflicting migrations detected", CLS_CODE_FIX,
      "two migrations are leaves of one app: merge them "
      "(makemigrations --merge) in the code" },
    { "dependencies reference nonexistent", CLS_CODE_FIX, R_GRAPH },
    { "cannot be executed inside a transaction", CLS_CODE_FIX,
      "a CONCURRENTLY operation inside an atomic migration: set "
      "atomic = False on the migration" },
    { "is applied before its dependency", CLS_HIGH_RISK,
      "django_migrations records a migration before its dependency: the "
      "history was edited or faked; the schema needs checking" },
    { NULL, 0, NULL }
};


/* the first server message on the line, in table order */
const message_t *
migctl_cls_message(line_t l)
{
    const char       *hit;
    const message_t  *m;

    for (m = messages; m->a; m++) {
        hit = migctl_cls_find(l, m->a, 0);
        if (hit == NULL) {
            continue;
        }

        if (m->b && migctl_cls_find(l, m->b, hit - l.p + strlen(m->a))
                    == NULL)
        {
            continue;
        }

        return m;
    }

    return NULL;
}


const text_t *
migctl_cls_text(line_t l)
{
    const text_t  *t;

    for (t = texts; t->a; t++) {
        if (migctl_cls_find(l, t->a, 0)) {
            return t;
        }
    }

    return NULL;
}


/* by the last dotted component of its name: "__fake__.X.DoesNotExist" */
const pyexc_t *
migctl_cls_pyexc(const char *name, size_t len)
{
    const char     *p;
    size_t          k;
    const pyexc_t  *e;

    p = name + len;
    while (p > name && p[-1] != '.') {
        p--;
    }
    k = name + len - p;

    for (e = pyexcs; e->name; e++) {
        if (strlen(e->name) == k && memcmp(e->name, p, k) == 0) {
            return e;
        }
    }

    return NULL;
}


const sqlstate_t *
migctl_cls_by_code(const char *code)
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
const sqlstate_t *
migctl_cls_by_name(const char *name, size_t len)
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
int
migctl_cls_class_of_code(const char *code, const char **reason)
{
    const sqlstate_t  *s;

    s = migctl_cls_by_code(code);
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


const char *
migctl_cls_find(line_t l, const char *s, size_t from)
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
int
migctl_cls_explicit_code(line_t l, const char **code)
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

        while ((hit = migctl_cls_find(l, keys[x].key, from)) != NULL) {
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
int
migctl_cls_exception_line(line_t l, int after_traceback, line_t *name,
    line_t *msg)
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
              || migctl_cls_find(tail, "psycopg2.errors.", 0) == l.p
              || migctl_cls_find(tail, "psycopg.errors.", 0) == l.p))
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


/*
 * "  Applying app.0002_name..." (or "Unapplying", backwards) with what
 * follows it on the line; *word: where "Applying" starts
 */
int
migctl_cls_applying(line_t l, line_t *mig, line_t *rest, const char **word)
{
    const char  *hit, *p, *end, *w;
    int          dot;
    size_t       from;

    for (from = 0; ; from = hit - l.p + 8) {
        hit = migctl_cls_find(l, "pplying ", from);
        if (hit == NULL) {
            return 0;
        }

        if (hit > l.p && hit[-1] == 'A') {
            w = hit - 1;
            break;
        }

        if (hit - l.p >= 3 && memcmp(hit - 3, "Una", 3) == 0) {
            w = hit - 3;
            break;
        }
    }

    end = l.p + l.len;
    p = hit + 8;
    dot = 0;

    while (p < end && (isalnum((unsigned char) *p) || *p == '_'
                       || (*p == '.' && !dot && p + 1 < end
                           && p[1] != '.')))
    {
        dot += (*p == '.');
        p++;
    }

    if (!dot || p[-1] == '.' || end - p < 3 || memcmp(p, "...", 3) != 0) {
        return 0;
    }

    mig->p = hit + 8;
    mig->len = p - mig->p;
    rest->p = p + 3;
    rest->len = end - rest->p;
    *word = w;

    return 1;
}


/* a migrate run begins: "Operations to perform:", "Running migrations:" */
int
migctl_cls_run(line_t l)
{
    return migctl_cls_find(l, "Operations to perform:", 0) != NULL
           || migctl_cls_find(l, "Running migrations:", 0) != NULL;
}


/*
 * The job was killed: "Killed" or "Terminated" as a shell reports it (at
 * the end of the line, or after the pid: "12345 Killed  python3 ..."),
 * the kernel's "Killed process", SIGKILL, OOMKilled, exit status 137/143.
 */
int
migctl_cls_kill(line_t l)
{
    static const char  *words[] = {
        "Killed", "Terminated", "SIGKILL", "SIGTERM", "OOMKilled",
        "signal: killed", NULL
    };
    static const char  *exits[] = {
        "code 137", "status 137", "code: 137", "status: 137", "code=137",
        "status=137", "code 143", "status 143", "status -9", "signal 9",
        NULL
    };

    size_t       i, n, at;
    line_t       t;
    const char  *hit;

    t = migctl_cls_trim(l);

    for (i = 0; words[i]; i++) {
        n = strlen(words[i]);
        hit = migctl_cls_find(t, words[i], 0);
        if (hit == NULL) {
            continue;
        }
        at = hit - t.p;

        if ((at > 0 && isalnum((unsigned char) hit[-1]))
            || (at + n < t.len && isalnum((unsigned char) hit[n])))
        {
            continue;
        }

        /* the shell's words need their place: a log line may say them */
        if (i >= 2 || at + n == t.len
            || (at >= 2 && hit[-1] == ' ' && isdigit((unsigned char) hit[-2]))
            || migctl_cls_find(t, " process ", at) == hit + n)
        {
            return 1;
        }
    }

    for (i = 0; exits[i]; i++) {
        n = strlen(exits[i]);
        hit = migctl_cls_find(t, exits[i], 0);
        if (hit && ((size_t) (hit - t.p) + n == t.len
                    || !isdigit((unsigned char) hit[n])))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * PostgreSQL's "SEVERITY:  message" (two spaces): the first such
 * severity on the line, the log prefix before it.
 */
int
migctl_cls_severity(line_t l, line_t *sev, line_t *prefix, line_t *msg)
{
    static const char  *names[] = {
        "ERROR", "FATAL", "PANIC", "DETAIL", "HINT", "STATEMENT",
        "CONTEXT", "QUERY", "LOCATION", "LOG", "WARNING", "NOTICE",
        "INFO", "DEBUG", NULL
    };

    size_t       i, j, k, n;

    for (i = 0; i + 3 <= l.len; i++) {
        if (l.p[i] != ':' || l.p[i + 1] != ' ' || l.p[i + 2] != ' ') {
            continue;
        }

        for (j = i; j > 0 && isupper((unsigned char) l.p[j - 1]); j--) {
            /* void */
        }

        if (j > 0 && !(l.p[j - 1] == ' ' || l.p[j - 1] == ']'
                       || l.p[j - 1] == ':' || l.p[j - 1] == '\t'))
        {
            continue;
        }

        for (k = 0; names[k]; k++) {
            n = strlen(names[k]);
            if (n == i - j && memcmp(l.p + j, names[k], n) == 0) {
                sev->p = l.p + j;
                sev->len = n;
                prefix->p = l.p;
                prefix->len = j;
                msg->p = l.p + i + 3;
                msg->len = l.len - i - 3;
                return 1;
            }
        }
    }

    return 0;
}


/* %p in the prefix: "[1234]", "[1234-1]" or "pid=1234" */
line_t
migctl_cls_pid(line_t prefix)
{
    size_t  i, j;
    line_t  pid;

    pid.p = NULL;
    pid.len = 0;

    for (i = 0; i < prefix.len; i++) {
        if (prefix.p[i] == '[') {
            j = i + 1;
        } else if (i + 4 <= prefix.len && memcmp(prefix.p + i, "pid=", 4)
                                           == 0)
        {
            j = i + 4;
        } else {
            continue;
        }

        for (i = j; i < prefix.len && isdigit((unsigned char) prefix.p[i]);
             i++)
        {
            /* void */
        }

        if (i > j && i < prefix.len
            && (prefix.p[i] == ']' || prefix.p[i] == ' '
                || prefix.p[i] == ',' || prefix.p[i] == ':'))
        {
            pid.p = prefix.p + j;
            pid.len = i - j;
            return pid;
        }

        i = j - 1;
    }

    return pid;
}


/* a statement a migration runs: DDL, or the django_migrations record */
int
migctl_cls_ddl(line_t l)
{
    static const char  *kw[] = {
        "ALTER ", "CREATE ", "DROP ", "COMMENT ON", "TRUNCATE ",
        "alter ", "create ", "drop ", "comment on", "truncate ", NULL
    };

    size_t  i;

    l = migctl_cls_trim(l);

    for (i = 0; kw[i]; i++) {
        if (l.len >= strlen(kw[i]) && memcmp(l.p, kw[i], strlen(kw[i])) == 0)
        {
            return 1;
        }
    }

    return migctl_cls_find(l, "django_migrations", 0) != NULL;
}


line_t
migctl_cls_trim(line_t l)
{
    while (l.len && isspace((unsigned char) l.p[0])) {
        l.p++;
        l.len--;
    }

    while (l.len && isspace((unsigned char) l.p[l.len - 1])) {
        l.len--;
    }

    return l;
}
