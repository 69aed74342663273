/*
 * cmd_inspect.c: migctl inspect: every object a sqlmigrate file creates,
 * alters or drops, checked against the catalog, and the verdict.
 */

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "inspect.h"
#include "sqlparse.h"
#include "verify.h"


static int read_sql(migctl_ctx_t *ctx, const char *path, char **textp,
    migctl_sql_plan_t *planp);
static int recorded(migctl_ctx_t *ctx, PGconn *conn, const char *app,
    const char *migration, int *rec, int *later);
static json_t *build(migctl_sql_plan_t *plan, json_t *objs,
    const char *file, const char *app, const char *migration, int rec,
    int later, int *problem);
static void print_text(json_t *out);
static void usage(FILE *f);


int
cmd_inspect(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          rc;
    json_t      *out;
    PGconn      *conn;
    const char  *sql, *app, *migration;

    const migctl_opt_t  opts[] = {
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { "--sql", MIGCTL_OPT_STRING, &sql, "FILE", 0, 0, 0 },
        { "--app", MIGCTL_OPT_STRING, &app, "A", 0, 0, 0 },
        { "--migration", MIGCTL_OPT_STRING, &migration, "M", 0, 0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    sql = NULL;
    app = NULL;
    migration = NULL;

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        return rc == MIGCTL_OPT_HELP ? MIGCTL_OK : rc;
    }

    if (sql == NULL) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--sql FILE is required (the output of "
                            "manage.py sqlmigrate APP MIGRATION)");
    }

    if ((app == NULL) != (migration == NULL)) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--app and --migration go together");
    }

    /* a bad file is a usage error whether or not the server is up */
    rc = read_sql(ctx, sql, NULL, NULL);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_db_connect(ctx, &conn);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_inspect_run(ctx, conn, sql, app, migration, &out);
    PQfinish(conn);

    return migctl_db_result(ctx, out, rc, print_text);
}


int
migctl_inspect_run(migctl_ctx_t *ctx, PGconn *conn, const char *sqlfile,
    const char *app, const char *migration, json_t **out)
{
    int                 rc, rec, later, problem;
    char               *text;
    json_t             *objs;
    migctl_sql_plan_t   plan;

    *out = NULL;
    text = NULL;
    objs = NULL;
    memset(&plan, 0, sizeof(plan));

    rc = read_sql(ctx, sqlfile, &text, &plan);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_db_check_django(ctx, conn);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_inspect_objects(ctx, conn, &plan, (const char **) &text, 1,
                                &objs);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rec = -1;
    later = 0;
    if (app != NULL) {
        rc = recorded(ctx, conn, app, migration, &rec, &later);
        if (rc != MIGCTL_OK) {
            goto done;
        }
    }

    *out = build(&plan, objs, sqlfile, app, migration, rec, later, &problem);
    objs = NULL;
    if (*out == NULL) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    rc = problem ? MIGCTL_PROBLEM : MIGCTL_OK;

done:

    json_decref(objs);
    migctl_sql_free(&plan);
    free(text);

    return rc;
}


void
migctl_inspect_print(FILE *f, json_t *result)
{
    size_t       i;
    json_t      *o, *v, *e;
    const char  *name, *table, *schema;
    char         obj[300], exp[300];

    fprintf(f, "verdict: %s\n",
            json_string_value(json_object_get(result, "verdict")));

    v = json_object_get(result, "app");
    if (json_is_string(v)) {
        fprintf(f, "migration: %s.%s (%s in django_migrations)\n",
                json_string_value(v),
                json_string_value(json_object_get(result, "migration")),
                json_is_true(json_object_get(result, "recorded"))
                ? "recorded" : "not recorded");
    }

    fprintf(f, "note: %s\n\n",
            json_string_value(json_object_get(result, "note")));

    fprintf(f, "%-4s %-5s %-18s %-10s %-40s %-24s %s\n",
            "STMT", "LINE", "ACTION", "STATUS", "OBJECT", "EXPECTED",
            "FOUND");

    json_array_foreach(json_object_get(result, "objects"), i, o) {
        schema = json_string_value(json_object_get(o, "schema"));
        table = json_string_value(json_object_get(o, "table"));
        name = json_string_value(json_object_get(o, "name"));

        snprintf(obj, sizeof(obj), "%s%s%s%s%s",
                 schema ? schema : "", schema ? "." : "",
                 table ? table : "", table ? "." : "", name ? name : "");

        v = json_object_get(o, "type");
        snprintf(exp, sizeof(exp), "%s%s%s%s",
                 json_string_value(json_object_get(o, "expected")),
                 json_is_string(v) ? " (" : "",
                 json_is_string(v) ? json_string_value(v) : "",
                 json_is_string(v) ? ")" : "");

        fprintf(f, "%-4d %-5d %-18s %-10s %-40s %-24s %s\n",
                (int) json_integer_value(json_object_get(o, "stmt")),
                (int) json_integer_value(json_object_get(o, "line")),
                json_string_value(json_object_get(o, "action")),
                json_string_value(json_object_get(o, "status")),
                obj, exp,
                json_string_value(json_object_get(o, "found")));
    }

    if (json_array_size(json_object_get(result, "unverified")) == 0) {
        return;
    }

    fprintf(f, "\nunverified (the catalog cannot confirm these):\n");

    json_array_foreach(json_object_get(result, "unverified"), i, o) {
        v = json_object_get(o, "operation");
        e = json_object_get(o, "error");
        if (json_is_string(e)) {
            migctl_escape(json_string_value(e), exp, sizeof(exp));
        }
        fprintf(f, "  line %d: %s%s%s%s%s\n",
                (int) json_integer_value(json_object_get(o, "line")),
                json_string_value(json_object_get(o, "what")),
                json_is_string(v) ? ": " : "",
                json_is_string(v) ? json_string_value(v) : "",
                json_is_string(e) ? ": " : "",
                json_is_string(e) ? exp : "");
    }
}


/*
 * Reads and parses the file; with text and plan NULL only validates it
 * (cmd_inspect does that before connecting).  "-" (stdin) can be read
 * once only, so it is not validated early.
 */
static int
read_sql(migctl_ctx_t *ctx, const char *path, char **textp,
    migctl_sql_plan_t *planp)
{
    int                 rc;
    char                err[1024], *text;
    size_t              len;
    migctl_sql_plan_t   plan;

    if (textp == NULL && strcmp(path, "-") == 0) {
        return MIGCTL_OK;
    }

    if (migctl_read_file(path, &text, &len, err, sizeof(err)) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "%s", err);
    }

    rc = MIGCTL_OK;

    if (strlen(text) != len) {
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "%s: contains a NUL byte: give the output of "
                          "manage.py sqlmigrate APP MIGRATION", path);

    } else if (migctl_sql_parse(text, &plan, err, sizeof(err)) != 0) {
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "%s: %s: give the output of manage.py sqlmigrate "
                          "APP MIGRATION", path, err);
    }

    if (rc == MIGCTL_OK && planp != NULL) {
        *planp = plan;
        *textp = text;
        return MIGCTL_OK;
    }

    migctl_sql_free(&plan);
    free(text);

    return rc;
}


static int
recorded(migctl_ctx_t *ctx, PGconn *conn, const char *app,
    const char *migration, int *rec, int *later)
{
    int          rc;
    PGresult    *pr;
    const char  *params[2];

    params[0] = app;
    params[1] = migration;

    /* and how many of the app's migrations were recorded after it */
    pr = migctl_db_exec_params(conn,
        "SELECT count(*), (SELECT count(*) FROM django_migrations l"
        "                  WHERE l.app = $1 AND l.id > max(m.id))"
        " FROM django_migrations m WHERE m.app = $1 AND m.name = $2",
        2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(pr) != PGRES_TUPLES_OK) {
        rc = migctl_inspect_query_failed(ctx, conn, "django_migration");
        goto done;
    }

    *rec = atoi(PQgetvalue(pr, 0, 0)) > 0;
    *later = atoi(PQgetvalue(pr, 0, 1));
    rc = MIGCTL_OK;

done:

    PQclear(pr);

    return rc;
}


static json_t *
build(migctl_sql_plan_t *plan, json_t *objs, const char *file,
    const char *app, const char *migration, int rec, int later,
    int *problem)
{
    size_t                    i, done, not_done, invalid, unver, strong;
    json_t                   *o, *uv, *cnt, *e;
    const char               *verdict, *note, *st;
    migctl_sql_unverified_t  *u;

    o = json_object();
    uv = json_array();
    cnt = json_object();

    if (o == NULL || objs == NULL || uv == NULL || cnt == NULL) {
        json_decref(o);
        json_decref(objs);
        json_decref(uv);
        json_decref(cnt);
        return NULL;
    }

    done = not_done = invalid = strong = 0;
    unver = plan->nunver;

    json_array_foreach(objs, i, e) {
        st = json_string_value(json_object_get(e, "status"));

        if (strcmp(st, "done") == 0) {
            done++;
            strong += !json_is_true(json_object_get(e, "may_hold_before"));
        } else if (strcmp(st, "invalid") == 0) {
            invalid++;
        } else {
            not_done++;
        }
    }

    for (i = 0; i < plan->nunver; i++) {
        u = &plan->unver[i];

        e = json_object();
        json_object_set_new(e, "stmt",
                            u->stmt ? json_integer(u->stmt) : json_null());
        json_object_set_new(e, "line", json_integer(u->line));
        json_object_set_new(e, "operation",
                            migctl_inspect_jstr(u->op >= 0 ? plan->ops[u->op]
                                                           : NULL));
        json_object_set_new(e, "what", migctl_inspect_jstr(u->what));
        json_object_set_new(e, "sql", migctl_inspect_jstr(u->sql));
        if (u->error) {
            json_object_set_new(e, "error", migctl_inspect_jstr(u->error));
        }
        json_array_append_new(uv, e);
    }

    /*
     * The verdict: DESIGN.md's states, never "applied" unchecked.  Only a
     * done check that could not hold before the migration ran (not a
     * weak one: "no default", "nullable", an IF EXISTS drop) is progress.
     */
    if (rec == 1) {
        if (not_done + invalid > 0) {
            verdict = "recorded_but_incomplete";
            note = later == 0
                   ? "recorded in django_migrations but the schema does "
                     "not match: do not trust the record"
                   : "recorded but the schema does not match; later "
                     "migrations of this app are recorded too and may "
                     "have changed these objects: inspect the latest one";
        } else if (unver > 0) {
            verdict = "applied_unverified";
            note = "recorded and every checked object is in place, but "
                   "some operations cannot be checked in the catalog";
        } else {
            verdict = "applied";
            note = "recorded and every object verified in the catalog";
        }

    } else if (strong == 0 && invalid == 0) {
        verdict = "not_applied";
        note = unver > 0
               ? "no object of it is in place and it is not recorded; "
                 "unverified operations may still have run"
               : (plan->nchecks == 0
                  ? "nothing checkable in it"
                  : "no object of it is in place and it is not recorded");
        if (done > 0) {
            note = "not recorded, and what holds (no default, nullable, "
                   "absent) held before it ran too: no proof that any "
                   "of it ran";
        }
        if (rec == -1) {
            note = "no object of it is in place (not checked against "
                   "django_migrations: give --app and --migration)";
        }

    } else if (rec == -1) {
        verdict = not_done + invalid > 0 ? "partially_applied"
                                         : "applied_unverified";
        note = not_done + invalid > 0
               ? "some objects are in place (not checked against "
                 "django_migrations: give --app and --migration)"
               : "every checked object is in place; not checked against "
                 "django_migrations: give --app and --migration";

    } else if (not_done + invalid == 0 && !plan->atomic && unver > 0) {
        /* a non-atomic run may have stopped in what cannot be checked */
        verdict = "partially_applied";
        note = "every checked object is in place but it is not recorded, "
               "and it is not atomic: it may have stopped in an operation "
               "the catalog cannot confirm (RunPython, DML)";

    } else if (not_done + invalid == 0) {
        /* DESIGN.md: the one case where a --fake of it is the repair */
        verdict = "present_but_unrecorded";
        note = plan->atomic
               ? "every object is in place but it is not recorded: atomic, "
                 "so it did not half run; the record was removed, or the "
                 "objects were made by hand or by another migration"
               : "every object is in place but it is not recorded: the "
                 "record was removed, or the run died between its DDL "
                 "and the record";

    } else if (plan->atomic) {
        /*
         * PostgreSQL rolled an atomic migration back whole: what is in
         * place was there before it, made by hand or by another migration
         */
        verdict = "not_applied";
        note = "atomic and not recorded, so PostgreSQL rolled it back "
               "whole; the objects found in place were there before it "
               "(made by hand or by another migration): it fails on them";

    } else {
        verdict = "partially_applied";
        note = "some objects are in place but it is not recorded";
    }

    json_object_set_new(cnt, "done", json_integer(done));
    json_object_set_new(cnt, "not_done", json_integer(not_done));
    json_object_set_new(cnt, "invalid", json_integer(invalid));
    json_object_set_new(cnt, "unverified", json_integer(unver));
    json_object_set_new(cnt, "progress", json_integer(strong));

    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "app", migctl_inspect_jstr(app));
    json_object_set_new(o, "migration", migctl_inspect_jstr(migration));
    json_object_set_new(o, "recorded",
                        rec == -1 ? json_null() : json_boolean(rec));
    json_object_set_new(o, "later_recorded",
                        rec == -1 ? json_null() : json_integer(later));
    json_object_set_new(o, "verdict", json_string(verdict));
    json_object_set_new(o, "verified",
                        json_boolean(unver == 0 && rec != -1));
    json_object_set_new(o, "note", json_string(note));
    json_object_set_new(o, "counts", cnt);
    json_object_set_new(o, "atomic", json_boolean(plan->atomic));
    json_object_set_new(o, "objects", objs);
    json_object_set_new(o, "unverified", uv);

    *problem = strcmp(verdict, "applied") != 0;

    return o;
}


static void
print_text(json_t *out)
{
    migctl_inspect_print(stdout, out);
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] inspect --sql FILE [--app A --migration M]\n"
        "\n"
        "Checks every table, column, index, constraint, extension and\n"
        "trigger the file creates, alters or drops against the catalog.\n"
        "Verdict: not_applied, partially_applied, applied,\n"
        "recorded_but_incomplete, present_but_unrecorded, or\n"
        "applied_unverified when something (RunPython, DML) cannot be\n"
        "checked.\n"
        "\n"
        "options:\n"
        "  --sql FILE              output of manage.py sqlmigrate A M\n"
        "                          (- for standard input)\n"
        "  --app A                 the migration's app label\n"
        "  --migration M           the migration's name (with --app:\n"
        "                          checks django_migrations)\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 applied;1 any other verdict;2 usage or configuration"
        " (unreadable or empty SQL, no django_migrations);3",
        "python3 manage.py sqlmigrate shop 0042_x > 0042.sql\n"
        "migctl inspect --sql 0042.sql --app shop --migration 0042_x");
}
