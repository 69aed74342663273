/*
 * cmd_diagnose.c: migctl diagnose: the state of one migration (inspect),
 * the class of its failure (classify) and what the previous release knows
 * (migrations) -> retry, fix_forward, rollback_code or restore_or_repair.
 */

#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "migctl.h"
#include "db.h"
#include "verify.h"
#include "diagnose.h"


#define DG_DJANGO_TIMEOUT_MS  300000L       /* a Django start-up, 300 s */


static int read_docs(migctl_ctx_t *ctx, PGconn *conn, dg_t *d);
static int read_traceback(migctl_ctx_t *ctx, const char *path, json_t **cls,
    char **textp);
static int graph_failure(dg_t *d);
static int no_sql_state(migctl_ctx_t *ctx, dg_t *d);
static int find_drift(migctl_ctx_t *ctx, PGconn *conn, dg_t *d);
static int missing_object(const char *msg, char *kind, size_t klen,
    char *table, size_t tlen, char *name, size_t nlen);
static int resolve_name(migctl_ctx_t *ctx, dg_t *d);
static int unparsable_fallback(migctl_ctx_t *ctx, PGconn *conn, dg_t *d);
static int sql_is_atomic(const char *path);
static int lock_holders(PGconn *conn, dg_t *d);
static json_t *result(dg_t *d);
static void print_text(dg_t *d);
static void print_list(const char *title, json_t *a, const char *bullet);
static void usage(FILE *f);


int
cmd_diagnose(int argc, char **argv, migctl_ctx_t *ctx)
{
    return migctl_diagnose_docs(argc, argv, ctx, NULL, NULL);
}


int
migctl_diagnose_docs(int argc, char **argv, migctl_ctx_t *ctx, json_t *doc,
    json_t *prev_doc)
{
    int          rc;
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
        { "--previous-manage", MIGCTL_OPT_STRING, &d.prev_manage, "CMD", 0,
          0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    memset(&d, 0, sizeof(d));
    d.doc = json_incref(doc);
    d.prev_doc = json_incref(prev_doc);
    tb = NULL;
    plan = NULL;
    prev = NULL;
    conn = NULL;
    res = NULL;

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    if (d.app == NULL || d.migration == NULL
        || (d.sqlfile == NULL && tb == NULL))
    {
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "--app, --migration and --sql are required "
                          "(--sql may be left out when the traceback "
                          "shows Django could not load its migrations): "
                          "see migctl diagnose --help");
        goto done;
    }

    if (*d.app == '\0' || *d.migration == '\0') {
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "--app and --migration must not be empty");
        goto done;
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
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "only one of --sql, --traceback, --plan and "
                          "--previous-plan can be stdin");
        goto done;
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

    rc = read_docs(ctx, conn, &d);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_migrations_check(ctx, conn, plan, prev, d.doc, d.prev_doc,
                                 &d.migs);
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

    migctl_diagnose_derive(&d);

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

    migctl_diagnose_decide(&d);

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
    json_decref(d.doc);
    json_decref(d.prev_doc);
    free(d.tbtext);
    json_decref(d.reasons);
    json_decref(d.risks);
    json_decref(d.next);
    if (conn) {
        PQfinish(conn);
    }

    return rc;
}


/*
 * One Django process per release: this release's document gives the
 * squashes' replaces lists and the SQL that find_drift() checks; the
 * previous release's, the lists that rollback_code rests on.  This
 * release's Django may be what is broken: the diagnosis goes on with the
 * guess from names.  The previous release's was asked for by name: no
 * decision on a guess then.
 */
static int
read_docs(migctl_ctx_t *ctx, PGconn *conn, dg_t *d)
{
    int  rc;

    if (d->manage && d->doc == NULL) {
        rc = migctl_verify_django(ctx, conn, d->manage, NULL, 0,
                                  DG_DJANGO_TIMEOUT_MS, NULL, &d->doc);
        if (rc == MIGCTL_UNREACHABLE) {
            return rc;
        }

        if (rc != MIGCTL_OK) {
            /* its one line is printed */
            snprintf(d->doc_error, sizeof(d->doc_error), "%s", ctx->error);
        }
    }

    if (d->prev_manage && d->prev_doc == NULL) {
        rc = migctl_verify_django(ctx, conn, d->prev_manage, NULL, 0,
                                  DG_DJANGO_TIMEOUT_MS, NULL, &d->prev_doc);
        if (rc != MIGCTL_OK) {
            return rc;
        }
    }

    return MIGCTL_OK;
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
    json_t      *m, *o;
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

    /* read_docs() read it: its error was printed, the diagnosis goes on */
    if (d->doc == NULL) {
        d->verify = json_pack("{s:s}", "skipped", d->doc_error);
        return MIGCTL_OK;
    }

    rc = migctl_verify_check(ctx, conn, d->doc, &d->verify);

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
        migctl_diagnose_quote_ident(buf, sizeof(buf), s, t);
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
    const char  *exc, *code, *src;

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
    src = str(d->migs, "previous_squash_source");
    printf("rollback   %s%s\n", json_is_true(rs) ? "safe"
                                : json_is_false(rs) ? "unsafe"
                                : "unknown (no --previous-plan)",
           src == NULL ? ""
           : strcmp(src, "django") == 0
             ? " (the previous release's squashes from Django)"
             : " (the previous release's squashes guessed from names:"
               " give --previous-manage)");

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
        "           [--manage CMD] [--previous-manage CMD]\n"
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
        "                          are checked for history drift, as verify;\n"
        "                          the squashes' replaces lists (and the\n"
        "                          migrations, without --plan) come from\n"
        "                          the same Django process\n"
        "  --previous-manage CMD   the previous release's manage.py: its\n"
        "                          squashes' replaces lists decide whether\n"
        "                          rollback_code is safe (a plan alone only\n"
        "                          guesses them from N_squashed_M names)\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 a path is recommended;2 usage or configuration (missing option,"
        " unreadable or unparsable file, not a Django database);3;"
        "5 the previous release's Django (--previous-manage) failed",
        "migctl diagnose --app shop --migration 0042_x --sql 0042.sql \\\n"
        "    --traceback migrate.log --previous-plan previous-plan.txt");
}
