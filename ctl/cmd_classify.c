/*
 * cmd_classify.c: migctl classify [FILE|-]: the class of a failure from a
 * traceback or a log (the rules are in classify.c).
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migctl.h"


static void usage(FILE *f);
static void print_field(const char *label, json_t *v);
static void print_history(json_t *res);
static void put_text(const char *s);


int
cmd_classify(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          i, rc;
    char        *text, err[512];
    size_t       len, k;
    const char  *path, *cls;
    json_t      *res;

    path = NULL;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return MIGCTL_OK;

        } else if (strcmp(argv[i], "--json") == 0) {
            ctx->json = 1;

        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "unknown option '%s': see migctl classify "
                                "--help", argv[i]);

        } else if (path == NULL) {
            path = argv[i];

        } else {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "one input only, '%s' is extra: see migctl "
                                "classify --help", argv[i]);
        }
    }

    if (path == NULL) {
        /* a person at a terminal who forgot the file: say so, not wait */
        if (isatty(STDIN_FILENO)) {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "no input: give the traceback or log as "
                                "FILE, or pipe it into standard input");
        }
        path = "-";
    }

    if (migctl_read_file(path, &text, &len, err, sizeof(err)) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "%s", err);
    }

    for (k = 0; k < len && strchr(" \t\r\n", text[k]) && text[k]; k++) {
        /* void */
    }

    if (k == len) {
        free(text);
        return migctl_error(ctx, MIGCTL_USAGE,
                            "%s is empty: give the traceback or the log of "
                            "the failed step",
                            strcmp(path, "-") == 0 ? "standard input" : path);
    }

    rc = migctl_classify_text(ctx, text, len, &res);
    free(text);

    if (rc != MIGCTL_OK) {
        return rc;
    }

    cls = json_string_value(json_object_get(res, "class"));

    /* unknown is a finding too: exit 1, never a guess */
    rc = (cls && strcmp(cls, "unknown") == 0) ? MIGCTL_PROBLEM : MIGCTL_OK;

    if (ctx->json) {
        rc = migctl_json_result(ctx, json_incref(res), rc);

    } else {
        print_field("class", json_object_get(res, "class"));
        print_field("sqlstate", json_object_get(res, "sqlstate"));
        print_field("condition", json_object_get(res, "condition"));
        print_field("exception", json_object_get(res, "exception"));
        print_field("message", json_object_get(res, "message"));
        print_field("reason", json_object_get(res, "reason"));
        print_field("evidence", json_object_get(res, "evidence"));
        print_field("detail", json_object_get(res, "detail"));
        print_field("frame", json_object_get(res, "frame"));
        print_field("migration", json_object_get(res, "migration"));
        print_field("file", json_object_get(res, "file"));
        print_field("line", json_object_get(res, "line"));
        print_field("interrupted", json_object_get(res, "interrupted"));
        print_field("pid", json_object_get(res, "pid"));
        print_field("statement", json_object_get(res, "statement"));

        if (json_is_false(json_object_get(res, "correlated"))) {
            printf("%-11s %s\n", "correlated",
                   "no: the server log does not tie this failure to the "
                   "migrating backend (no %p in log_line_prefix, or no DDL "
                   "logged)");
        }

        print_history(res);
    }

    json_decref(res);

    return rc;
}


static void
print_field(const char *label, json_t *v)
{
    if (json_is_string(v)) {
        printf("%-11s ", label);
        put_text(json_string_value(v));
        putchar('\n');

    } else if (json_is_integer(v)) {
        printf("%-11s %lld\n", label, (long long) json_integer_value(v));

    } else if (json_is_true(v)) {
        printf("%-11s yes\n", label);
    }
}


/* earlier failures of the run, oldest first: they did not decide */
static void
print_history(json_t *res)
{
    size_t       i;
    json_t      *h, *v;
    const char  *code, *mig, *ev;
    long long    others;

    h = json_object_get(res, "history");

    json_array_foreach(h, i, v) {
        code = json_string_value(json_object_get(v, "sqlstate"));
        mig = json_string_value(json_object_get(v, "migration"));
        ev = json_string_value(json_object_get(v, "evidence"));

        printf("%-11s %s %s %s: ", "earlier",
               json_string_value(json_object_get(v, "class")),
               code ? code : "-", mig ? mig : "-");
        put_text(ev ? ev : "");
        printf(" (line %lld)\n",
               (long long) json_integer_value(json_object_get(v,
                                                              "log_line")));
    }

    others = json_integer_value(json_object_get(res, "other_sessions"));
    if (others > 0) {
        printf("%-11s %lld errors of other sessions left aside\n", "ignored",
               others);
    }
}


/* text from a log: control characters (a terminal's escapes) as \xNN */
static void
put_text(const char *s)
{
    const unsigned char  *p;

    for (p = (const unsigned char *) s; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            printf("\\x%02x", *p);
        } else {
            putchar(*p);
        }
    }
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] classify [FILE|-]\n"
        "\n"
        "Reads a Django traceback or a deploy / PostgreSQL log (standard\n"
        "input without FILE, or with -) and prints the class of the\n"
        "failure with the SQLSTATE (an explicit code, psycopg's error class\n"
        "or the server's message), the exception and the reason:\n"
        "  transient   lock timeout, deadlock, serialization failure, lost\n"
        "              connection, too many connections, admin shutdown,\n"
        "              a run interrupted while applying a migration (if\n"
        "              the database is unchanged): a retry can work\n"
        "  code_fix    syntax error, undefined table/column/function, a\n"
        "              Python error in RunPython, broken migration graph,\n"
        "              CONCURRENTLY inside an atomic migration\n"
        "  high_risk   unique / not-null / foreign-key / check violations\n"
        "              on existing data, statement timeout on a rewrite,\n"
        "              insufficient privilege, disk full, an object that\n"
        "              already exists from an earlier partial run\n"
        "  unknown     nothing recognised: migctl does not guess\n"
        "The last failure of the run decides: an interrupted run, else the\n"
        "last traceback chain, else the server log lines of the backend\n"
        "that ran the migration's DDL (by the pid in the log prefix);\n"
        "earlier failures are shown as history (\"earlier\").\n");

    migctl_usage_footer(f, 0,
        "0 classified;1 unknown;2 usage or configuration, unreadable or"
        " empty input, or no FILE with a terminal on standard input",
        "python3 manage.py migrate --noinput 2>&1 | tee migrate.log\n"
        "migctl classify migrate.log");
}
