/*
 * cmd_diagnose.c: migctl diagnose: the state of one migration (inspect),
 * the class of its failure (classify) and what the previous release knows
 * (migrations) -> retry, fix_forward, rollback_code or restore_or_repair.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "migctl.h"
#include "db.h"
#include "verify.h"


#define DG_BUF  1024

/* the database state, from the inspect verdict (README: recovery path) */
#define ST_UNCHANGED    0       /* not applied, nothing left behind */
#define ST_PARTIAL      1       /* part done, or cannot prove otherwise */
#define ST_APPLIED      2       /* recorded and in place */
#define ST_RECORDED     3       /* recorded, schema does not match */
#define ST_PRESENT      4       /* every object in place, no record */


typedef struct {
    const char  *app;
    const char  *migration;
    const char  *sqlfile;

    json_t      *insp;          /* migctl_inspect_run(), or NULL */
    json_t      *migs;          /* migctl_migrations_run() */
    json_t      *cls;           /* migctl_classify_text(), or NULL */
    json_t      *holders;       /* sessions holding the tables, or NULL */
    char        *tbtext;        /* the traceback as given, or NULL */
    int          nosql;         /* no --sql: Django could not load the
                                   migration graph, nothing ran */
    const char  *manage;        /* how to run manage.py, or NULL */
    json_t      *drift;         /* the earlier migration at fault, or
                                   NULL: {"app", "name", "status",
                                   "object", "repair"} */
    json_t      *verify;        /* migctl_verify_check(), or NULL */

    const char  *verdict;
    const char  *klass;         /* "none" without --traceback */
    const char  *sqlstate;
    int          state;
    int          atomic;
    int          rollback;      /* 1 safe, 0 unsafe, -1 unknown */
    long         done;
    long         not_done;
    long         invalid;
    long         unverified;

    const char  *path;
    const char  *given;         /* --migration as typed, when a prefix */
    char         name[256];     /* the full name a prefix stands for */
    json_t      *reasons;
    json_t      *risks;
    json_t      *next;
} dg_t;


static int read_traceback(migctl_ctx_t *ctx, const char *path, json_t **cls,
    char **textp);
static int graph_failure(dg_t *d);
static int no_sql_state(migctl_ctx_t *ctx, dg_t *d);
static int find_drift(migctl_ctx_t *ctx, PGconn *conn, dg_t *d);
static int missing_object(const char *msg, char *kind, size_t klen,
    char *table, size_t tlen, char *name, size_t nlen);
static void decide_drift(dg_t *d);
static void decide_present(dg_t *d);
static void risk_conflicts(dg_t *d);
static void next_statements(dg_t *d);
static int plain(const char *s);
static int resolve_name(migctl_ctx_t *ctx, dg_t *d);
static int unparsable_fallback(migctl_ctx_t *ctx, PGconn *conn, dg_t *d);
static int sql_is_atomic(const char *path);
static int lock_holders(PGconn *conn, dg_t *d);
static void derive(dg_t *d);
static void decide(dg_t *d);
static void decide_recorded(dg_t *d);
static void decide_partial(dg_t *d);
static void decide_applied(dg_t *d);
static void decide_unchanged(dg_t *d);
static void risk_objects(dg_t *d, const char *status, const char *prefix);
static void risk_invalid(dg_t *d);
static void risk_rollback(dg_t *d);
static void risk_class(dg_t *d);
static void note_plan(dg_t *d);
static size_t list_of(json_t *a, const char *app, const char *skip,
    char *buf, size_t len);
static void next_duplicates(dg_t *d);
static void next_end(dg_t *d);
static const char *previous_of(dg_t *d, int *later);
static void add(json_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void quote_ident(char *buf, size_t len, const char *schema,
    const char *name);
static const char *str(json_t *o, const char *key);
static long num(json_t *o, const char *key);
static json_t *result(dg_t *d);
static void print_text(dg_t *d);
static void print_list(const char *title, json_t *a, const char *bullet);
static void usage(FILE *f);


int
cmd_diagnose(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          rc, n;
    char         err[512];
    dg_t         d;
    json_t      *res;
    PGconn      *conn;
    const char  *tb, *plan, *prev, *p;

    const migctl_opt_t  opts[] = {
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { "--app", MIGCTL_OPT_STRING, &d.app, "A", 0, 0, 0 },
        { "--migration", MIGCTL_OPT_STRING, &d.migration, "M", 0, 0, 0 },
        { "--sql", MIGCTL_OPT_STRING, &d.sqlfile, "FILE", 0, 0, 0 },
        { "--traceback", MIGCTL_OPT_STRING, &tb, "FILE", 0, 0, 0 },
        { "--plan", MIGCTL_OPT_STRING, &plan, "FILE", 0, 0, 0 },
        { "--previous-plan", MIGCTL_OPT_STRING, &prev, "FILE", 0, 0, 0 },
        { "--manage", MIGCTL_OPT_STRING, &d.manage, "CMD", 0, 0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    memset(&d, 0, sizeof(d));
    tb = NULL;
    plan = NULL;
    prev = NULL;
    conn = NULL;
    res = NULL;

    rc = migctl_opt_parse(ctx, opts, argc, argv, &n, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    if (n > 1) {
        return migctl_error(ctx, MIGCTL_USAGE, "unexpected argument '%s': "
                            "see migctl diagnose --help", argv[1]);
    }

    if (d.app == NULL || d.migration == NULL
        || (d.sqlfile == NULL && tb == NULL))
    {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--app, --migration and --sql are required "
                            "(--sql may be left out when the traceback "
                            "shows Django could not load its migrations): "
                            "see migctl diagnose --help");
    }

    if (*d.app == '\0' || *d.migration == '\0') {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--app and --migration must not be empty");
    }

    if (d.manage == NULL && ctx->conf.lc != NULL
        && config_lookup_string(ctx->conf.lc, "django.manage", &p))
    {
        d.manage = p;
    }

    /* at most one input from stdin */
    if ((d.sqlfile && strcmp(d.sqlfile, "-") == 0)
        + (tb && strcmp(tb, "-") == 0)
        + (plan && strcmp(plan, "-") == 0) + (prev && strcmp(prev, "-") == 0)
        > 1)
    {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "only one of --sql, --traceback, --plan and "
                            "--previous-plan can be stdin");
    }

    /* inputs first: a typo must not cost a database round trip */
    if (tb) {
        rc = read_traceback(ctx, tb, &d.cls, &d.tbtext);
        if (rc != MIGCTL_OK) {
            goto done;
        }
    }

    /* without SQL only when nothing can have run */
    if (d.sqlfile == NULL && !graph_failure(&d)) {
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "--sql FILE is required: the traceback does not "
                          "show a migration graph that failed to load (then "
                          "nothing runs); give manage.py sqlmigrate %s %s "
                          "output", d.app, d.migration);
        goto done;
    }

    rc = migctl_db_connect(ctx, &conn);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_db_check_django(ctx, conn);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_migrations_run(ctx, conn, plan, prev, &d.migs);
    if (rc != MIGCTL_OK && rc != MIGCTL_PROBLEM) {
        goto done;
    }

    rc = resolve_name(ctx, &d);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    d.sqlstate = d.cls ? str(d.cls, "sqlstate") : NULL;

    if (d.sqlfile == NULL) {
        rc = no_sql_state(ctx, &d);
        if (rc != MIGCTL_OK) {
            goto done;
        }

    } else {
        rc = migctl_inspect_run(ctx, conn, d.sqlfile, d.app, d.migration,
                                &d.insp);
    }

    if (d.sqlfile == NULL) {
        /* the state comes from django_migrations alone */

    } else if (rc == MIGCTL_USAGE) {
        /*
         * The file does not parse.  When the failure itself is a syntax
         * error in that file, this is the evidence, not a usage error.
         */
        rc = unparsable_fallback(ctx, conn, &d);
        if (rc != MIGCTL_OK) {
            goto done;
        }

    } else if (rc != MIGCTL_OK && rc != MIGCTL_PROBLEM) {
        goto done;
    }

    derive(&d);

    /* "does not exist": often an earlier migration recorded, never made */
    if (d.sqlstate && (strcmp(d.sqlstate, "42703") == 0
                       || strcmp(d.sqlstate, "42P01") == 0
                       || strcmp(d.sqlstate, "42704") == 0))
    {
        rc = find_drift(ctx, conn, &d);
        if (rc != MIGCTL_OK) {
            goto done;
        }
    }

    if (d.klass && strcmp(d.klass, "transient") == 0) {
        if (lock_holders(conn, &d) != 0) {
            rc = migctl_error(ctx, migctl_db_fail_code(conn, NULL),
                              "reading pg_locks failed: %s",
                              migctl_db_error(conn, err, sizeof(err)));
            goto done;
        }
    }

    d.reasons = json_array();
    d.risks = json_array();
    d.next = json_array();
    if (d.reasons == NULL || d.risks == NULL || d.next == NULL) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    decide(&d);

    if (ctx->json) {
        res = result(&d);
        if (res == NULL) {
            rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
            goto done;
        }

        rc = migctl_json_result(ctx, res, MIGCTL_OK);
        res = NULL;
        goto done;

    } else {
        print_text(&d);
    }

    rc = MIGCTL_OK;

done:

    json_decref(res);
    json_decref(d.insp);
    json_decref(d.migs);
    json_decref(d.cls);
    json_decref(d.holders);
    json_decref(d.drift);
    json_decref(d.verify);
    free(d.tbtext);
    json_decref(d.reasons);
    json_decref(d.risks);
    json_decref(d.next);
    if (conn) {
        PQfinish(conn);
    }

    return rc;
}


static int
read_traceback(migctl_ctx_t *ctx, const char *path, json_t **cls,
    char **textp)
{
    int      rc;
    char    *text, err[512];
    size_t   len, k;

    if (migctl_read_file(path, &text, &len, err, sizeof(err)) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "--traceback: %s", err);
    }

    for (k = 0; k < len && text[k] && strchr(" \t\r\n", text[k]); k++) {
        /* void */
    }

    if (k == len) {
        free(text);
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--traceback: %s is empty: give the traceback "
                            "or the log of the failed step",
                            strcmp(path, "-") == 0 ? "standard input" : path);
    }

    rc = migctl_classify_text(ctx, text, len, cls);
    *textp = text;

    return rc;
}


/*
 * Django never ran anything when it could not load the migration graph:
 * an import in a migration file, a dependency on a migration that is not
 * shipped, two leaves of one app.  The traceback then goes through the
 * loader (or migrate's conflict check), never through the executor's
 * apply_migration.
 */
static int
graph_failure(dg_t *d)
{
    const char  *t, *exc, *msg;

    if (d->tbtext == NULL || d->cls == NULL) {
        return 0;
    }

    t = d->tbtext;
    exc = str(d->cls, "exception") ? str(d->cls, "exception") : "";
    msg = str(d->cls, "message") ? str(d->cls, "message") : "";

    /* a migration that started runs in the executor's apply/unapply */
    if (strstr(t, ", in apply_migration") != NULL
        || strstr(t, ", in unapply_migration") != NULL
        || strstr(t, ", in _migrate_all_") != NULL
        || strstr(t, "Applying ") != NULL)
    {
        return 0;
    }

    if (strstr(msg, "Conflicting migrations detected") != NULL
        || strstr(exc, "NodeNotFoundError") != NULL
        || strstr(exc, "BadMigrationError") != NULL)
    {
        return 1;
    }

    return (strstr(exc, "ImportError") != NULL
            || strstr(exc, "ModuleNotFoundError") != NULL
            || strstr(exc, "SyntaxError") != NULL)
           && (strstr(t, "django/db/migrations/loader.py") != NULL
               || strstr(t, "django/apps/registry.py") != NULL);
}


/* no SQL: the state is django_migrations' (and the plan's) */
static int
no_sql_state(migctl_ctx_t *ctx, dg_t *d)
{
    int          recorded;
    size_t       k;
    json_t      *e;
    const char  *app, *name;

    recorded = 0;
    json_array_foreach(json_object_get(d->migs, "applied"), k, e) {
        app = str(e, "app");
        name = str(e, "name");
        if (app && name && strcmp(app, d->app) == 0
            && strcmp(name, d->migration) == 0)
        {
            recorded = 1;
        }
    }

    d->nosql = 1;
    d->insp = json_pack("{s:n, s:s, s:s, s:b, s:s, s:b, s:s, "
                        "s:{s:i, s:i, s:i, s:i, s:i}, s:n, s:[], s:[]}",
                        "file", "app", d->app, "migration", d->migration,
                        "recorded", recorded,
                        "verdict", recorded ? "applied_unverified"
                                            : "not_applied",
                        "verified", 0,
                        "note", "no SQL: Django could not load the "
                                "migration graph, so nothing ran; the "
                                "state is what django_migrations records",
                        "counts", "done", 0, "not_done", 0, "invalid", 0,
                        "unverified", 0, "progress", 0,
                        "atomic", "objects", "unverified");

    if (d->insp == NULL) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    return MIGCTL_OK;
}


/*
 * A "does not exist" failure: which recorded migration should have made
 * the object?  Its SQL comes from Django (migctl verify's script), the
 * whole recorded history is checked, and a drifted migration that owns
 * the object is the root cause.  Without a way to run Django it says so.
 */
static int
find_drift(migctl_ctx_t *ctx, PGconn *conn, dg_t *d)
{
    int          rc;
    char         kind[32], table[256], name[256];
    size_t       k, j;
    json_t      *doc, *m, *o;
    const char  *ok, *ot, *on;

    if (!missing_object(str(d->cls, "message"), kind, sizeof(kind), table,
                        sizeof(table), name, sizeof(name)))
    {
        return MIGCTL_OK;
    }

    if (d->manage == NULL) {
        d->verify = json_pack("{s:s}", "skipped", "no --manage");
        return MIGCTL_OK;
    }

    rc = migctl_verify_django(ctx, d->manage, NULL, 0, 300000L, NULL, &doc);
    if (rc != MIGCTL_OK) {
        /* its one line is printed: the diagnosis goes on without it */
        d->verify = json_pack("{s:s}", "skipped", ctx->error);
        return MIGCTL_OK;
    }

    rc = migctl_verify_check(ctx, conn, doc, &d->verify);
    json_decref(doc);

    if (rc != MIGCTL_OK && rc != MIGCTL_PROBLEM) {
        return rc;
    }

    json_array_foreach(json_object_get(d->verify, "drift"), k, m) {
        if (strcmp(str(m, "app"), d->app) == 0
            && strcmp(str(m, "name"), d->migration) == 0)
        {
            continue;
        }

        json_array_foreach(json_object_get(m, "objects"), j, o) {
            ok = str(o, "kind");
            ot = str(o, "table");
            on = str(o, "name");
            if (ok == NULL || on == NULL || strcmp(on, name) != 0) {
                continue;
            }

            if (strcmp(kind, "relation") == 0
                ? (strcmp(ok, "table") == 0 || strcmp(ok, "view") == 0
                   || strcmp(ok, "sequence") == 0)
                : strcmp(ok, kind) == 0
                  && (table[0] == '\0' || ot == NULL
                      || strcmp(ot, table) == 0))
            {
                d->drift = json_pack("{s:s, s:s, s:s, s:O, s:O}",
                                     "app", str(m, "app"),
                                     "name", str(m, "name"),
                                     "status", str(m, "status"),
                                     "object", o,
                                     "repair", json_object_get(m, "repair"));
                return MIGCTL_OK;
            }
        }
    }

    return MIGCTL_OK;
}


/*
 * The object of PostgreSQL's "does not exist": column "x" [of relation
 * "t"], column t.x, relation "[s.]t", table "t", index "i", constraint
 * "c" of relation "t".  1 when read.
 */
static int
missing_object(const char *msg, char *kind, size_t klen, char *table,
    size_t tlen, char *name, size_t nlen)
{
    int          i;
    size_t       n;
    const char  *p, *e, *dot;

    static const char  *kinds[] = { "column", "relation", "table", "index",
                                    "constraint", "view", "sequence",
                                    NULL };

    if (msg == NULL || strstr(msg, "does not exist") == NULL) {
        return 0;
    }

    table[0] = '\0';

    for (i = 0; kinds[i]; i++) {
        n = strlen(kinds[i]);
        if (strncmp(msg, kinds[i], n) == 0 && msg[n] == ' ') {
            break;
        }
    }

    if (kinds[i] == NULL) {
        return 0;
    }

    snprintf(kind, klen, "%s",
             strcmp(kinds[i], "table") == 0 || strcmp(kinds[i], "view") == 0
             || strcmp(kinds[i], "sequence") == 0 ? "relation" : kinds[i]);

    p = msg + n + 1;
    if (*p == '"') {
        p++;
        e = strchr(p, '"');
    } else {
        e = strchr(p, ' ');
    }
    if (e == NULL || e == p || (size_t) (e - p) >= nlen) {
        return 0;
    }

    snprintf(name, nlen, "%.*s", (int) (e - p), p);

    /* column t.x (psycopg's text for a qualified reference), s.t */
    dot = strrchr(name, '.');
    if (dot != NULL && msg[n + 1] != '"') {
        if (strcmp(kind, "column") == 0) {
            snprintf(table, tlen, "%.*s", (int) (dot - name), name);
        }
        memmove(name, dot + 1, strlen(dot + 1) + 1);

    } else if (dot != NULL && strcmp(kind, "relation") == 0) {
        memmove(name, dot + 1, strlen(dot + 1) + 1);
    }

    p = strstr(e, " of relation \"");
    if (p != NULL) {
        p += 14;
        e = strchr(p, '"');
        if (e != NULL && (size_t) (e - p) < tlen) {
            snprintf(table, tlen, "%.*s", (int) (e - p), p);
        }
    }

    return name[0] != '\0';
}


static void
decide_drift(dg_t *d)
{
    size_t       k;
    json_t      *o, *r;
    const char  *app, *name, *table;

    app = str(d->drift, "app");
    name = str(d->drift, "name");
    o = json_object_get(d->drift, "object");
    table = str(o, "table");

    d->path = "restore_or_repair";
    d->klass = "high_risk";
    if (d->cls) {
        json_object_set_new(d->cls, "class", json_string("high_risk"));
        json_object_set_new(d->cls, "root_cause",
                            json_string("history_drift"));
    }

    add(d->reasons, "the root cause is history drift, not %s.%s: %s %s%s%s "
        "belongs to %s.%s, which django_migrations records but whose "
        "objects are %s (recorded with --fake, or the history edited)",
        d->app, d->migration, str(o, "kind"), table ? table : "",
        table ? "." : "", str(o, "name"), app, name, str(d->drift, "status"));
    add(d->reasons, "neither a retry nor a fix of %s.%s helps, and rolling "
        "back code leaves the lie in place: repair the history first",
        d->app, d->migration);

    add(d->risks, "do not --fake %s.%s: it would build on %s %s that is "
        "not there", d->app, d->migration, str(o, "kind"), str(o, "name"));
    add(d->risks, "do not run migrate %s PREV --fake to unrecord %s.%s: it "
        "unrecords every migration recorded after it too", app, app, name);

    add(d->next, "migctl verify --app %s   # every drifted migration, with "
        "its repair", app);

    r = json_object_get(d->drift, "repair");
    json_array_foreach(r, k, o) {
        add(d->next, "%s", json_string_value(o));
    }

    add(d->next, "migctl run -- python manage.py migrate %s %s --noinput   "
        "# then the failed migration", d->app, d->migration);
    next_end(d);
}


/* every object in place, no record: the one --fake that is right */
static void
decide_present(dg_t *d)
{
    d->path = "restore_or_repair";

    add(d->reasons, "every object of %s.%s is in place but django_migrations "
        "does not record it: the record was removed, or the run died "
        "between its DDL and the record", d->app, d->migration);
    add(d->reasons, "migrate would run it again and fail on what exists: "
        "record it, do not run it");

    if (d->unverified > 0) {
        add(d->risks, "%ld operation(s) of it cannot be checked (RunPython, "
            "DML): check their data before recording it", d->unverified);
    }
    risk_class(d);

    add(d->next, "python manage.py showmigrations %s   # every migration "
        "before %s must be [X]", d->app, d->migration);
    add(d->next, "python manage.py migrate %s %s --fake   # records exactly "
        "%s.%s: its objects are all in place", d->app, d->migration, d->app,
        d->migration);
    add(d->next, "migctl run -- python manage.py migrate --noinput   # the "
        "rest of the release");
    next_end(d);
}


/*
 * Not applied, yet objects it makes are there (made by hand or by another
 * migration) or an INVALID index is left: it fails on them when it runs.
 */
static void
risk_conflicts(dg_t *d)
{
    size_t   k;
    json_t  *o;

    json_array_foreach(json_object_get(d->insp, "objects"), k, o) {
        if (str(o, "status") == NULL || strcmp(str(o, "status"), "done")
            || json_is_true(json_object_get(o, "may_hold_before"))
            || str(o, "action") == NULL
            || strncmp(str(o, "action"), "drop_", 5) == 0)
        {
            continue;
        }

        add(d->risks, "%s %s%s%s exists already although %s.%s never ran: "
            "it fails on it (made by hand or by another migration)",
            str(o, "kind"), str(o, "table") ? str(o, "table") : "",
            str(o, "table") ? "." : "", str(o, "name"), d->app,
            d->migration);
    }

    risk_invalid(d);
}


/* the statements of what is missing, as psql commands */
static void
next_statements(dg_t *d)
{
    size_t       k, n, i;
    char         q[2400];
    json_t      *o;
    const char  *sql;

    json_array_foreach(json_object_get(d->insp, "objects"), k, o) {
        sql = str(o, "sql");
        if (sql == NULL || str(o, "status") == NULL
            || strcmp(str(o, "status"), "not_done") != 0)
        {
            continue;
        }

        /* single-quoted for the shell: ' becomes '\'' */
        n = 0;
        for (i = 0; sql[i] && n + 5 < sizeof(q); i++) {
            if (sql[i] == '\'') {
                memcpy(q + n, "'\\''", 4);
                n += 4;
            } else {
                q[n++] = sql[i];
            }
        }
        q[n] = '\0';

        add(d->next, "psql -c '%s;'   # %s %s: %s", q, str(o, "kind"),
            str(o, "name"), str(o, "expected"));
    }
}


/* identifiers that need no quoting in a shell or SQL literal */
static int
plain(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }

    for ( /* void */ ; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * Django takes a unique prefix ("0002") for a migration name; the catalog
 * and django_migrations need the full one.  Look for it among the
 * recorded migrations of the app and, with --plan, the pending ones.
 */
static int
resolve_name(migctl_ctx_t *ctx, dg_t *d)
{
    int          n, i;
    size_t       k, len;
    json_t      *e;
    const char  *keys[2], *app, *name, *found;

    keys[0] = "applied";
    keys[1] = "pending";
    len = strlen(d->migration);
    found = NULL;
    n = 0;

    for (i = 0; i < 2; i++) {
        json_array_foreach(json_object_get(d->migs, keys[i]), k, e) {
            app = str(e, "app");
            name = str(e, "name");
            if (app == NULL || name == NULL || strcmp(app, d->app) != 0
                || strncmp(name, d->migration, len) != 0)
            {
                continue;
            }

            if (name[len] == '\0') {
                return MIGCTL_OK;             /* the full name */
            }

            if (found == NULL || strcmp(found, name) != 0) {
                found = name;
                n++;
            }
        }
    }

    if (n == 0) {
        return MIGCTL_OK;                     /* inspect says what it is */
    }

    if (n > 1) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--migration %s is ambiguous in %s: give the "
                            "full name (see showmigrations %s)",
                            d->migration, d->app, d->app);
    }

    if (strlen(found) >= sizeof(d->name)) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--migration: name too long");
    }

    strcpy(d->name, found);
    d->given = d->migration;
    d->migration = d->name;

    return MIGCTL_OK;
}


/*
 * inspect could not read the file.  Go on only when the failure is a
 * syntax error (42601) and the file is an atomic migration: PostgreSQL
 * then rolled the whole migration back, and django_migrations says
 * whether it is recorded.  Everything else stays inspect's usage error.
 */
static int
unparsable_fallback(migctl_ctx_t *ctx, PGconn *conn, dg_t *d)
{
    int          rc, recorded;
    char         err[512];
    json_t      *o;
    PGresult    *res;
    const char  *params[2];

    if (d->sqlstate == NULL || strcmp(d->sqlstate, "42601") != 0
        || !sql_is_atomic(d->sqlfile))
    {
        return MIGCTL_USAGE;
    }

    params[0] = d->app;
    params[1] = d->migration;

    res = migctl_db_exec_params(conn,
                       "SELECT count(*) FROM django_migrations "
                       "WHERE app = $1 AND name = $2",
                       2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = migctl_error(ctx, migctl_db_fail_code(conn, res),
                          "reading django_migrations failed: %s",
                          migctl_db_error(conn, err, sizeof(err)));
        PQclear(res);
        return rc;
    }

    recorded = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    PQclear(res);

    o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:b, s:s, "
                  "s:{s:i, s:i, s:i, s:i}, s:b, s:[], s:[]}",
                  "file", d->sqlfile, "app", d->app,
                  "migration", d->migration, "recorded", recorded,
                  "verdict", recorded ? "recorded_but_incomplete"
                                      : "not_applied",
                  "verified", 0,
                  "note", "the file does not parse (the syntax error the "
                          "migration failed on); atomic, so PostgreSQL "
                          "rolled it back whole",
                  "counts", "done", 0, "not_done", 0, "invalid", 0,
                  "unverified", 0,
                  "atomic", 1, "objects", "unverified");
    if (o == NULL) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    fprintf(stderr, "migctl: diagnose: the SQL cannot be inspected; the "
            "migration is atomic and failed on that syntax error, so "
            "nothing of it stayed\n");

    d->insp = o;

    return MIGCTL_OK;
}


/* sqlmigrate wraps an atomic migration in BEGIN; ... COMMIT; */
static int
sql_is_atomic(const char *path)
{
    int      atomic;
    char    *text, *p, err[256];
    size_t   len;

    if (strcmp(path, "-") == 0) {
        return 0;                    /* already consumed by inspect */
    }

    if (migctl_read_file(path, &text, &len, err, sizeof(err)) != 0) {
        return 0;
    }

    p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
        p++;
    }

    atomic = strncmp(p, "BEGIN;", 6) == 0;
    free(text);

    return atomic;
}


/*
 * Which other sessions hold a lock on the tables of this migration now:
 * a retry would wait on them again.  Read-only.
 */
static int
lock_holders(PGconn *conn, dg_t *d)
{
    int          i, n, rc;
    char        *arr, buf[512], query[512];
    size_t       k, nt;
    json_t      *objs, *o, *h;
    PGresult    *res;
    const char  *t, *s, *params[1], **names;

    objs = d->insp ? json_object_get(d->insp, "objects") : NULL;
    nt = json_array_size(objs);
    if (nt == 0) {
        return 0;
    }

    names = calloc(nt, sizeof(char *));
    if (names == NULL) {
        return -1;
    }

    rc = -1;
    arr = NULL;
    res = NULL;
    n = 0;

    json_array_foreach(objs, k, o) {
        t = str(o, "table");
        s = str(o, "schema");
        if (t == NULL) {
            continue;
        }
        quote_ident(buf, sizeof(buf), s, t);
        names[n] = strdup(buf);
        if (names[n] == NULL) {
            goto done;
        }
        n++;
    }

    arr = migctl_db_text_array(names, n);
    if (arr == NULL) {
        goto done;
    }

    params[0] = arr;

    res = migctl_db_exec_params(conn,
        "SELECT l.pid, coalesce(a.usename, ''), coalesce(a.state, ''),"
        "       c.relname, l.mode,"
        "       coalesce(extract(epoch FROM now() - a.xact_start)::int, 0),"
        "       left(coalesce(a.query, ''), 200)"
        "  FROM pg_locks l"
        "  JOIN pg_class c ON c.oid = l.relation"
        "  LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.granted AND l.pid <> pg_backend_pid()"
        "   AND l.relation IN (SELECT to_regclass(x)"
        "                        FROM unnest($1::text[]) x)"
        " ORDER BY l.pid, c.relname",
        1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        goto done;
    }

    d->holders = json_array();
    if (d->holders == NULL) {
        goto done;
    }

    for (i = 0; i < PQntuples(res); i++) {
        (void) migctl_redact_query(PQgetvalue(res, i, 6), query,
                                   sizeof(query), MIGCTL_REDACT_ONELINE);
        h = json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:s}",
                      "pid", atoi(PQgetvalue(res, i, 0)),
                      "user", PQgetvalue(res, i, 1),
                      "state", PQgetvalue(res, i, 2),
                      "table", PQgetvalue(res, i, 3),
                      "mode", PQgetvalue(res, i, 4),
                      "seconds", atoi(PQgetvalue(res, i, 5)),
                      "query", query);
        if (h) {
            json_array_append_new(d->holders, h);
        }
    }

    rc = 0;

done:

    PQclear(res);
    free(arr);
    while (n > 0) {
        free((char *) names[--n]);
    }
    free(names);

    return rc;
}


static void
derive(dg_t *d)
{
    json_t  *counts, *rs;

    d->verdict = str(d->insp, "verdict");
    if (d->verdict == NULL) {
        d->verdict = "unknown";
    }

    counts = json_object_get(d->insp, "counts");
    d->done = num(counts, "done");
    d->not_done = num(counts, "not_done");
    d->invalid = num(counts, "invalid");
    d->unverified = num(counts, "unverified");
    d->atomic = json_is_true(json_object_get(d->insp, "atomic"));

    d->klass = d->cls ? str(d->cls, "class") : "none";

    rs = json_object_get(d->migs, "rollback_safe");
    d->rollback = json_is_true(rs) ? 1 : json_is_false(rs) ? 0 : -1;

    if (strcmp(d->verdict, "recorded_but_incomplete") == 0) {
        d->state = ST_RECORDED;

    } else if (strcmp(d->verdict, "present_but_unrecorded") == 0) {
        d->state = ST_PRESENT;

    } else if (strcmp(d->verdict, "applied") == 0
               || strcmp(d->verdict, "applied_unverified") == 0)
    {
        d->state = ST_APPLIED;

    } else if (strcmp(d->verdict, "not_applied") == 0
               && (d->atomic || d->unverified == 0))
    {
        d->state = ST_UNCHANGED;

    } else {
        /* partially_applied, or not_applied with a RunPython or a
         * statement inspect could not check in a non-atomic migration:
         * it may have changed rows, so "unchanged" is not proven */
        d->state = ST_PARTIAL;
    }
}


static void
decide(dg_t *d)
{
    switch (d->drift ? -1 : d->state) {

    case -1:
        decide_drift(d);
        break;

    case ST_RECORDED:
        decide_recorded(d);
        break;

    case ST_PRESENT:
        decide_present(d);
        break;

    case ST_PARTIAL:
        decide_partial(d);
        break;

    case ST_APPLIED:
        decide_applied(d);
        break;

    default:
        decide_unchanged(d);
        break;
    }

    if (d->cls && str(d->cls, "frame")) {
        add(d->reasons, "it was raised in the migration at %s",
            str(d->cls, "frame"));
    }

    if (d->drift == NULL && str(d->verify, "skipped")) {
        add(d->risks, "\"%s\" may be history drift (an earlier migration "
            "recorded but never applied): not checked (%s): run migctl "
            "verify --manage CMD, or give diagnose --manage",
            str(d->cls, "message"), str(d->verify, "skipped"));

    } else if (d->drift == NULL && d->verify) {
        add(d->reasons, "no earlier recorded migration is missing \"%s\": "
            "not history drift (%zu drifted migration(s) elsewhere)",
            str(d->cls, "message"),
            json_array_size(json_object_get(d->verify, "drift")));
    }

    note_plan(d);

    if (d->given) {
        add(d->reasons, "--migration %s is %s.%s", d->given, d->app,
            d->migration);
    }
}


/* what this release's plan adds: later migrations, unknown records */
static void
note_plan(dg_t *d)
{
    char    list[DG_BUF];
    size_t  n;

    if (!json_is_true(json_object_get(d->migs, "plan"))) {
        return;
    }

    n = list_of(json_object_get(d->migs, "pending"), d->app, d->migration,
                list, sizeof(list));
    if (n) {
        add(d->reasons, "%zu more migration(s) of %s are pending in this "
            "release and run after it: %s", n, d->app, list);
    }

    n = list_of(json_object_get(d->migs, "unknown_to_release"), NULL, NULL,
                list, sizeof(list));
    if (n) {
        add(d->risks, "django_migrations records %zu migration(s) this "
            "release does not know (%s): a newer release ran here, or a "
            "migration file was renamed or removed", n, list);
    }
}


/* "app.name, ..." of an array of {"app", "name"}; returns the count */
static size_t
list_of(json_t *a, const char *app, const char *skip, char *buf,
    size_t len)
{
    size_t       k, n, used;
    json_t      *e;
    const char  *ea, *en;

    buf[0] = '\0';
    used = 0;
    n = 0;

    json_array_foreach(a, k, e) {
        ea = str(e, "app");
        en = str(e, "name");
        if (ea == NULL || en == NULL || (app && strcmp(ea, app) != 0)
            || (skip && strcmp(en, skip) == 0))
        {
            continue;
        }

        if (used < len) {
            used += snprintf(buf + used, len - used, "%s%s.%s",
                             n ? ", " : "", ea, en);
        }
        n++;
    }

    return n;
}


static void
decide_recorded(dg_t *d)
{
    int          later;
    const char  *prev;

    d->path = "restore_or_repair";

    add(d->reasons, "django_migrations records %s.%s but the schema does "
        "not match it (%ld object(s) missing or different): the record was "
        "faked or the schema changed by hand", d->app, d->migration,
        d->not_done + d->invalid);
    add(d->reasons, "no retry and no code rollback fixes a record that "
        "lies: the schema must be repaired to match it, or the record "
        "removed and the migration applied for real");

    risk_objects(d, "not_done", "do not --fake");
    risk_invalid(d);
    add(d->risks, "every later migration of %s was built on schema that "
        "is not there", d->app);
    risk_class(d);

    add(d->next, "migctl evidence --out incident-%s-%s", d->app,
        d->migration);

    prev = previous_of(d, &later);

    /*
     * Never "migrate A PREV --fake": it unrecords every migration recorded
     * after PREV.  Delete exactly the false row when nothing builds on
     * it; with later records migrate would refuse the history without
     * it, so the missing objects are made by hand instead.
     */
    if (d->done == 0 && d->invalid == 0 && prev && later == 0
        && plain(d->app) && plain(d->migration))
    {
        add(d->next, "psql -c \"DELETE FROM django_migrations WHERE app = "
            "'%s' AND name = '%s'\"   # removes exactly the false record: "
            "none of %s's objects exist and no later migration of %s is "
            "recorded", d->app, d->migration, d->migration, d->app);
        add(d->next, "migctl run -- python manage.py migrate %s %s "
            "--noinput", d->app, d->migration);

    } else {
        if (later > 0) {
            add(d->next, "# do not unrecord %s.%s: %d later migration(s) of "
                "%s are recorded (migrate %s %s --fake would unrecord them "
                "too, and without its row migrate refuses the history): "
                "create what is missing by hand", d->app, d->migration,
                later, d->app, d->app, prev ? prev : "zero");
        }
        next_statements(d);
        add(d->next, "python manage.py sqlmigrate %s %s   # create what is "
            "missing by hand, in a transaction, or restore from backup",
            d->app, d->migration);
    }

    add(d->next, "migctl diagnose --app %s --migration %s --sql %s   "
        "# must say applied", d->app, d->migration,
        d->sqlfile ? d->sqlfile : "FILE");
    next_end(d);
}


static void
decide_partial(dg_t *d)
{
    int  code_fix;

    code_fix = strcmp(d->klass, "code_fix") == 0;
    d->path = code_fix ? "fix_forward" : "restore_or_repair";

    if (strcmp(d->verdict, "partially_applied") == 0) {
        add(d->reasons, "%s.%s is partially applied: %ld object(s) in "
            "place, %ld missing, %ld INVALID, and it is not recorded",
            d->app, d->migration, d->done, d->not_done, d->invalid);

    } else {
        add(d->reasons, "%s.%s is not recorded and no checked object is in "
            "place, but the migration is not atomic and %ld operation(s) "
            "(RunPython, statements inspect cannot read) may have changed "
            "rows: the database is not proven unchanged",
            d->app, d->migration, d->unverified);
    }

    add(d->reasons, "a partial state never gets a blind retry: running "
        "the same migration again trips over what it already did");

    if (code_fix) {
        add(d->reasons, "the failure is in the code (%s): ship a fixed "
            "migration that completes from this state",
            d->cls ? str(d->cls, "reason") : "");

    } else {
        add(d->reasons, "the failure is %s: repair the partial state (or "
            "restore), remove the cause, then apply again", d->klass);
    }

    risk_objects(d, "done", "do not retry as is");
    risk_objects(d, "not_done", "do not --fake");
    risk_invalid(d);

    if (d->unverified) {
        add(d->risks, "%ld operation(s) could not be verified (RunPython?): "
            "rows may be half changed; check the data before any --fake",
            d->unverified);
    }

    risk_rollback(d);
    risk_class(d);

    add(d->next, "migctl evidence --out incident-%s-%s", d->app,
        d->migration);
    add(d->next, "migctl locks   # nothing may still be running the "
        "migration");

    if (code_fix) {
        add(d->next, "# fix %s.%s so that it completes from here (what is "
            "done stays), then:", d->app, d->migration);

    } else {
        add(d->next, "# remove the cause (%s), then:",
            d->cls ? str(d->cls, "reason") : "see the traceback");
    }

    add(d->next, "migctl run -- python manage.py migrate %s %s --noinput",
        d->app, d->migration);
    next_end(d);
}


static void
decide_applied(dg_t *d)
{
    d->path = "fix_forward";

    if (d->nosql) {
        add(d->reasons, "%s.%s is recorded; Django cannot load the "
            "migration graph, so nothing ran and its SQL cannot be checked "
            "now (migctl inspect once the graph loads)", d->app,
            d->migration);

    } else {
        add(d->reasons, "%s.%s is applied and recorded: the schema it makes "
            "is in place, so the failure came from elsewhere (a later "
            "migration or deploy step)", d->app, d->migration);
    }

    if (d->cls) {
        add(d->reasons, "the failure is %s: %s", d->klass,
            str(d->cls, "reason") ? str(d->cls, "reason") : "");
    }

    if (strcmp(d->verdict, "applied_unverified") == 0) {
        add(d->risks, "%ld operation(s) of it could not be verified "
            "(RunPython?): check the data they write", d->unverified);
    }

    if (d->rollback == 1) {
        add(d->reasons, "rollback_code is also safe: the previous release "
            "knows every recorded migration");

    } else {
        risk_rollback(d);
    }

    risk_class(d);

    if (strcmp(d->klass, "transient") == 0) {
        add(d->next, "# the failing step hit a transient error: run that "
            "step again (not this migration)");

    } else {
        add(d->next, "# fix the failing step, then run it again");
    }

    next_end(d);
}


static void
decide_unchanged(dg_t *d)
{
    size_t       k;
    json_t      *h;
    const char  *msg;

    if (d->nosql) {
        add(d->reasons, "nothing ran: Django could not load the migration "
            "graph (%s: %s), and migrate stops before it applies anything; "
            "%s.%s is not recorded in django_migrations",
            str(d->cls, "exception") ? str(d->cls, "exception") : "error",
            str(d->cls, "message") ? str(d->cls, "message") : "",
            d->app, d->migration);

    } else {
        add(d->reasons, "the database is unchanged: %s.%s is not applied "
            "and left nothing behind%s", d->app, d->migration,
            d->atomic ? " (atomic: PostgreSQL rolled it back whole)" : "");
    }

    risk_conflicts(d);

    if (strcmp(d->klass, "transient") == 0) {
        d->path = "retry";

        add(d->reasons, "the failure is transient: %s",
            str(d->cls, "reason"));

        json_array_foreach(d->holders, k, h) {
            add(d->risks, "session %lld (%s, %s for %llds) still holds %s "
                "on %s: the retry waits on it again; end it or wait "
                "(query: %s)",
                (long long) json_integer_value(json_object_get(h, "pid")),
                str(h, "user"), str(h, "state"),
                (long long) json_integer_value(json_object_get(h,
                                                               "seconds")),
                str(h, "mode"), str(h, "table"), str(h, "query"));
        }

        add(d->next, "migctl locks   # the blocker must be gone");

        json_array_foreach(d->holders, k, h) {
            add(d->next, "psql -c 'SELECT pg_terminate_backend(%lld)'   "
                "# only if that session may be ended",
                (long long) json_integer_value(json_object_get(h, "pid")));
        }

        add(d->next, "migctl run -- python manage.py migrate %s %s "
            "--noinput", d->app, d->migration);
        next_end(d);
        return;
    }

    if (d->cls == NULL) {
        add(d->reasons, "no --traceback: the cause is unknown, so no "
            "retry");

    } else if (strcmp(d->klass, "unknown") == 0) {
        add(d->reasons, "the failure could not be classified: no retry "
            "on a guess");

    } else {
        add(d->reasons, "the failure is %s, a retry fails the same way: %s",
            d->klass, str(d->cls, "reason"));
    }

    if (d->rollback == 1) {
        d->path = "rollback_code";

        add(d->reasons, "the previous release knows every recorded "
            "migration: rolling back code is safe and reopens fastest");
        risk_class(d);

        add(d->next, "# deploy the previous release (its code matches "
            "this schema)");
        next_end(d);
        add(d->next, "# then fix %s.%s before the next deploy", d->app,
            d->migration);
        return;
    }

    d->path = "fix_forward";
    risk_rollback(d);
    risk_class(d);

    if (d->nosql) {
        msg = str(d->cls, "message") ? str(d->cls, "message") : "";
        if (strstr(msg, "Conflicting migrations") != NULL) {
            add(d->next, "python manage.py makemigrations --merge %s   # "
                "in the code: one leaf per app, then release", d->app);
        } else if (strstr(msg, "nonexistent parent node") != NULL) {
            add(d->next, "# ship the migration it depends on, or fix the "
                "dependency (%s)", msg);
        } else {
            add(d->next, "# fix the import in the migration file the "
                "traceback names, or ship what it imports (%s)", msg);
        }
        add(d->next, "python manage.py showmigrations --plan   # must load "
            "again before migrate");
        add(d->next, "migctl run -- python manage.py migrate %s --noinput",
            d->app);
        next_end(d);
        return;
    }

    add(d->next, "python manage.py sqlmigrate %s %s   # review what it "
        "does", d->app, d->migration);
    add(d->next, "# fix the cause, then:");
    add(d->next, "migctl run -- python manage.py migrate %s %s --noinput",
        d->app, d->migration);
    next_end(d);
}


/* one risk line per object of the migration in the given status */
static void
risk_objects(dg_t *d, const char *status, const char *prefix)
{
    size_t       k;
    json_t      *o;
    const char  *kind, *name, *table, *expected, *found, *action;

    json_array_foreach(json_object_get(d->insp, "objects"), k, o) {
        if (str(o, "status") == NULL || strcmp(str(o, "status"), status)) {
            continue;
        }

        kind = str(o, "kind") ? str(o, "kind") : "object";
        name = str(o, "name") ? str(o, "name") : "?";
        table = str(o, "table");
        expected = str(o, "expected") ? str(o, "expected") : "";
        found = str(o, "found") ? str(o, "found") : "";
        action = str(o, "action") ? str(o, "action") : "";

        if (strcmp(status, "done") == 0) {
            add(d->risks, "%s: %s %s%s%s is already in place (%s): "
                "the migration fails on it again", prefix, kind, name,
                table ? " of " : "", table ? table : "", action);

        } else if (strcmp(expected, "present") == 0) {
            add(d->risks, "%s: %s %s%s%s is missing", prefix, kind, name,
                table ? " of " : "", table ? table : "");

        } else if (strcmp(expected, "absent") == 0) {
            add(d->risks, "%s: %s %s%s%s still exists", prefix, kind, name,
                table ? " of " : "", table ? table : "");

        } else {
            add(d->risks, "%s: %s %s%s%s is not as the migration leaves it "
                "(expected %s, found %s)", prefix, kind, name,
                table ? " of " : "", table ? table : "", expected, found);
        }
    }
}


static void
risk_invalid(dg_t *d)
{
    size_t   k;
    char     q[512];
    json_t  *o;

    json_array_foreach(json_object_get(d->insp, "objects"), k, o) {
        if (str(o, "status") == NULL || strcmp(str(o, "status"), "invalid")
            || str(o, "name") == NULL)
        {
            continue;
        }

        add(d->risks, "drop INVALID index %s before retrying: a failed "
            "CONCURRENTLY build left it; it slows every write and a retry "
            "fails on its name", str(o, "name"));

        quote_ident(q, sizeof(q), str(o, "schema"), str(o, "name"));
        add(d->next, "psql -c 'DROP INDEX CONCURRENTLY IF EXISTS %s'", q);
    }
}


static void
risk_rollback(dg_t *d)
{
    char  list[DG_BUF];

    if (d->rollback == -1) {
        add(d->risks, "no --previous-plan: whether rolling back code is "
            "safe is unknown; give the previous release's showmigrations "
            "--plan to check");
        return;
    }

    if (d->rollback == 1) {
        return;
    }

    list_of(json_object_get(d->migs, "unknown_to_previous"), NULL, NULL,
            list, sizeof(list));

    add(d->risks, "do not roll back code: the previous release does not "
        "know %s (recorded in django_migrations)", list);
}


/* what the class adds, whatever the path */
static void
risk_class(dg_t *d)
{
    const char  *s;

    s = d->sqlstate;
    if (s == NULL) {
        return;
    }

    if (strcmp(s, "23505") == 0) {
        add(d->risks, "duplicates in existing rows must be resolved before "
            "the unique constraint/index can be built: a data decision, "
            "take it with the data owner");
        if (str(d->cls, "detail")) {
            add(d->risks, "the server named one duplicated key only, there "
                "may be more: %s", str(d->cls, "detail"));
            next_duplicates(d);
        }

    } else if (strcmp(s, "57014") == 0
               && strcmp(d->klass, "high_risk") == 0)
    {
        add(d->risks, "the statement rewrites or scans a whole table under "
            "an ACCESS EXCLUSIVE lock: give it a window and a "
            "statement_timeout sized for the table, or change the "
            "migration so that it does not rewrite");

    } else if (strcmp(s, "42501") == 0) {
        add(d->risks, "run migrate as the role that owns the schema; do not "
            "grant ownership to the application role in a hurry");

    } else if (strcmp(s, "53100") == 0) {
        add(d->risks, "free disk space on the database server first: "
            "nothing else works until then");

    } else if (strcmp(s, "25001") == 0) {
        add(d->risks, "CONCURRENTLY needs atomic = False on the migration, "
            "and then a failed build leaves an INVALID index behind");
    }
}


/*
 * The query that lists every duplicated key: the columns from the
 * server's "DETAIL:  Key (a, b)=(...) is duplicated.", the table from the
 * unique index or constraint the migration could not build.  Plain
 * column names only; anything else is left to the operator.
 */
static void
next_duplicates(dg_t *d)
{
    char         cols[512], tbl[300];
    size_t       k, n, i;
    json_t      *o;
    const char  *detail, *p, *e, *table, *kind, *status;

    detail = str(d->cls, "detail");
    p = strstr(detail, "Key (");
    e = p ? strstr(p, ")=(") : NULL;
    if (p == NULL || e == NULL) {
        return;
    }
    p += 5;

    table = NULL;
    json_array_foreach(json_object_get(d->insp, "objects"), k, o) {
        kind = str(o, "kind");
        status = str(o, "status");
        if (kind && status && strcmp(status, "done") != 0
            && (strcmp(kind, "index") == 0 || strcmp(kind, "constraint") == 0)
            && str(o, "table"))
        {
            table = str(o, "table");
            quote_ident(tbl, sizeof(tbl), str(o, "schema"), table);
            break;
        }
    }

    if (table == NULL) {
        return;
    }

    /* "email, tenant_id" -> "\"email\", \"tenant_id\"" */
    n = 0;
    cols[n++] = '"';
    for (i = 0; p + i < e; i++) {
        if (n + 6 >= sizeof(cols)) {
            return;
        }

        if (p[i] == ',' && p[i + 1] == ' ') {
            memcpy(cols + n, "\", \"", 4);
            n += 4;
            i++;

        } else if ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')
                   || (p[i] >= '0' && p[i] <= '9') || p[i] == '_')
        {
            cols[n++] = p[i];

        } else {
            return;                 /* an expression: not ours to quote */
        }
    }
    cols[n++] = '"';
    cols[n] = '\0';

    add(d->next, "psql -c 'SELECT %s, count(*) FROM %s GROUP BY %s "
        "HAVING count(*) > 1 ORDER BY count(*) DESC'   # every duplicated "
        "key", cols, tbl, cols);
}


static void
next_end(dg_t *d)
{
    add(d->next, "migctl maintenance off --wait   # runs health first; "
        "reopens only when every check passes");
}


/* the migration recorded before ours in the same app, or "zero" */
static const char *
previous_of(dg_t *d, int *later)
{
    size_t       k;
    json_t      *e;
    const char  *prev, *app, *name;
    int          seen;

    prev = "zero";
    seen = 0;
    *later = 0;

    json_array_foreach(json_object_get(d->migs, "applied"), k, e) {
        app = str(e, "app");
        name = str(e, "name");
        if (app == NULL || name == NULL || strcmp(app, d->app) != 0) {
            continue;
        }

        if (strcmp(name, d->migration) == 0) {
            seen = 1;

        } else if (seen) {
            (*later)++;

        } else {
            prev = name;
        }
    }

    return seen ? prev : NULL;
}


static void
add(json_t *a, const char *fmt, ...)
{
    char     buf[DG_BUF];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    /* a name that is not UTF-8 gives NULL: the line is dropped */
    json_array_append_new(a, json_string(buf));
}


/*
 * "schema"."name" for SQL, inside a single-quoted shell word: double
 * quotes doubled for SQL, single quotes closed and escaped for the shell.
 */
static void
quote_ident(char *buf, size_t len, const char *schema, const char *name)
{
    size_t       n;
    const char  *parts[2], *p;
    int          i;

    parts[0] = schema;
    parts[1] = name;
    n = 0;

    for (i = 0; i < 2; i++) {
        if (parts[i] == NULL) {
            continue;
        }

        if (n && n + 1 < len) {
            buf[n++] = '.';
        }

        if (n + 1 < len) {
            buf[n++] = '"';
        }

        for (p = parts[i]; *p && n + 5 < len; p++) {
            if (*p == '"') {
                buf[n++] = '"';
                buf[n++] = '"';

            } else if (*p == '\'') {
                memcpy(buf + n, "'\\''", 4);
                n += 4;

            } else {
                buf[n++] = *p;
            }
        }

        if (n + 1 < len) {
            buf[n++] = '"';
        }
    }

    buf[n < len ? n : len - 1] = '\0';
}


static const char *
str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}


static long
num(json_t *o, const char *key)
{
    return (long) json_integer_value(json_object_get(o, key));
}


static json_t *
result(dg_t *d)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:O?, s:b, s:b}, s:O?, "
                     "s:O?, s:O, s:O, s:O, s:O?, s:O?, s:O?}",
                     "app", d->app, "migration", d->migration,
                     "path", d->path,
                     "state", "verdict", d->verdict,
                     "recorded", json_object_get(d->insp, "recorded"),
                     "atomic", d->atomic,
                     "database_unchanged", d->state == ST_UNCHANGED,
                     "class", d->cls,
                     "rollback_safe", json_object_get(d->migs,
                                                      "rollback_safe"),
                     "reasons", d->reasons, "risks", d->risks,
                     "next", d->next,
                     "inspect", d->insp,
                     "migrations", d->migs,
                     "history_drift", d->drift);
}


static void
print_text(dg_t *d)
{
    json_t      *rs;
    const char  *exc, *code;

    printf("path       %s\n", d->path);
    printf("migration  %s.%s\n", d->app, d->migration);
    printf("state      %s (%s; %ld done, %ld not done, %ld INVALID, "
           "%ld unverified)\n", d->verdict,
           json_is_true(json_object_get(d->insp, "recorded"))
               ? "recorded" : "not recorded",
           d->done, d->not_done, d->invalid, d->unverified);

    if (d->cls) {
        code = str(d->cls, "sqlstate");
        exc = str(d->cls, "exception");
        printf("class      %s%s%s%s%s%s\n", d->klass,
               code ? " " : "", code ? code : "",
               exc ? " (" : "", exc ? exc : "", exc ? ")" : "");

    } else {
        printf("class      none (no --traceback)\n");
    }

    if (d->drift) {
        printf("drift      %s.%s (%s): the root cause\n",
               str(d->drift, "app"), str(d->drift, "name"),
               str(d->drift, "status"));
    }

    rs = json_object_get(d->migs, "rollback_safe");
    printf("rollback   %s\n", json_is_true(rs) ? "safe"
                              : json_is_false(rs) ? "unsafe"
                              : "unknown (no --previous-plan)");

    print_list("reasons", d->reasons, "-");
    print_list("risks", d->risks, "!");
    print_list("next", d->next, "$");
}


static void
print_list(const char *title, json_t *a, const char *bullet)
{
    size_t   k;
    json_t  *v;

    if (json_array_size(a) == 0) {
        return;
    }

    printf("\n%s:\n", title);

    json_array_foreach(a, k, v) {
        printf("  %s %s\n", bullet, json_string_value(v));
    }
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] diagnose --app A --migration M --sql FILE\n"
        "           [--traceback FILE] [--plan FILE] [--previous-plan FILE]\n"
        "           [--manage CMD]\n"
        "\n"
        "Checks the migration against the database (as inspect), classifies\n"
        "the failure (as classify) and recommends one path:\n"
        "  retry              transient failure, database unchanged\n"
        "  rollback_code      database unchanged and the previous release\n"
        "                     knows every recorded migration\n"
        "  fix_forward        the code must change (or the migration is\n"
        "                     applied and a later step failed)\n"
        "  restore_or_repair  partial or inconsistent state that a retry\n"
        "                     or rollback would make worse\n"
        "with the reasons, the risks and the next commands.\n"
        "\n"
        "options:\n"
        "  --app A                 the migration that failed (or that is\n"
        "  --migration M           suspected), as in django_migrations\n"
        "  --sql FILE              manage.py sqlmigrate A M output; not\n"
        "                          needed when the traceback shows Django\n"
        "                          could not load its migrations\n"
        "  --traceback FILE        the traceback or log of the failure\n"
        "                          (- for standard input: one FILE at most)\n"
        "  --plan FILE             this release's showmigrations --plan\n"
        "  --previous-plan FILE    the previous release's, to tell whether\n"
        "                          rolling back code is safe\n"
        "  --manage CMD            how to run manage.py (default\n"
        "                          django.manage of the configuration): on\n"
        "                          \"does not exist\" the earlier migrations\n"
        "                          are checked for history drift, as verify\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 a path is recommended;2 usage or configuration (missing option,"
        " unreadable or unparsable file, not a Django database);3",
        "migctl diagnose --app shop --migration 0042_x --sql 0042.sql \\\n"
        "    --traceback migrate.log --previous-plan previous-plan.txt");
}
