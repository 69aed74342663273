/*
 * cmd_verify.c: migctl verify: every recorded migration checked against
 * the catalog, its SQL from one Django process: history drift.
 */

#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "db.h"
#include "verify.h"


#define VERIFY_TIMEOUT_MS  300000L         /* a Django start-up, 300 s */



/* one migration of the document, with what the database says of it */
typedef struct {
    json_t      *m;             /* borrowed from doc */
    const char  *app;
    const char  *name;
    int          recorded;      /* its row, or every row it replaces */
    int          row;           /* its own row's position by id, or -1 */
    long         done;
    long         strong;        /* done, and not true before it ran */
    long         not_done;
    long         unverified;
    json_t      *missing;       /* objects not done */
    const char  *reason;        /* why it cannot be checked, or NULL */
} vmig_t;


static int read_rows(migctl_ctx_t *ctx, PGconn *conn, json_t **rows);
static json_t *repair(vmig_t *v, vmig_t *all, size_t n);
static void print_text(json_t *o);
static void usage(FILE *f);


int
cmd_verify(int argc, char **argv, migctl_ctx_t *ctx)
{
    int             rc, i, print_script, secs;
    long            timeout_ms;
    json_t         *doc, *out;
    PGconn         *conn;
    const char     *manage, *from, *p;
    migctl_strv_t   apps;

    const migctl_opt_t  opts[] = {
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { "--app", MIGCTL_OPT_STRINGS, &apps, "A", 0, 0, 0 },
        { "--manage", MIGCTL_OPT_STRING, &manage, "CMD", 0, 0, 0 },
        { "--timeout", MIGCTL_OPT_DURATION, &timeout_ms, "DURATION", 1000,
          0, 0 },
        { "--from", MIGCTL_OPT_STRING, &from, "FILE", 0, 0, 0 },
        { "--print-script", MIGCTL_OPT_FLAG, &print_script, NULL, 0, 0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    memset(&apps, 0, sizeof(apps));
    manage = NULL;
    from = NULL;
    print_script = 0;
    timeout_ms = -1;
    doc = NULL;
    out = NULL;
    conn = NULL;

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    if (print_script) {
        fputs(migctl_verify_script, stdout);
        return MIGCTL_OK;
    }

    /* app labels are identifiers: they go to Django comma-separated */
    for (i = 0; i < apps.n; i++) {
        if (!migctl_plain_name(apps.v[i])) {
            return migctl_error(ctx, MIGCTL_USAGE, "--app '%s': not an app "
                                "label (letters, digits, _)", apps.v[i]);
        }
    }

    if (ctx->conf.lc != NULL) {
        if (manage == NULL
            && config_lookup_string(ctx->conf.lc, "django.manage", &p))
        {
            manage = p;
        }
        if (timeout_ms < 0
            && config_lookup_int(ctx->conf.lc, "django.timeout", &secs))
        {
            if (secs < 1 || secs > 86400) {
                return migctl_error(ctx, MIGCTL_USAGE,
                                    "%s: django.timeout: %d is not 1 to "
                                    "86400 seconds", ctx->conf.source, secs);
            }
            timeout_ms = secs * 1000L;
        }
    }

    if (timeout_ms < 0) {
        timeout_ms = VERIFY_TIMEOUT_MS;
    }

    if (manage == NULL && from == NULL) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "no Django command: give --manage "
                            "'/usr/bin/python3 manage.py' (or django.manage "
                            "in migctl.conf), or --from FILE");
    }

    rc = migctl_db_connect(ctx, &conn);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_db_check_django(ctx, conn);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_verify_django(ctx, conn, manage, apps.v, apps.n, timeout_ms,
                              from, &doc);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_verify_check(ctx, conn, doc, &out);
    rc = migctl_db_result(ctx, out, rc, print_text);

done:

    json_decref(doc);
    PQfinish(conn);

    return rc;
}


int
migctl_verify_check(migctl_ctx_t *ctx, PGconn *conn, json_t *doc,
    json_t **out)
{
    int                 rc;
    char                err[1024], key[600];
    size_t              n, k, j, r, nrows, used;
    json_t             *migs, *rows, *index, *known, *reasons, *objs, *o;
    json_t             *drift, *unver, *unknown, *replaced, *pending, *all;
    json_t             *e, *rp, *wanted;
    vmig_t             *v;
    const char        **texts, *st, *a, *b;
    migctl_sql_plan_t   plan;

    *out = NULL;
    memset(&plan, 0, sizeof(plan));
    v = NULL;
    texts = NULL;
    rows = index = known = reasons = objs = NULL;
    drift = unver = unknown = replaced = pending = all = NULL;

    migs = json_object_get(doc, "migrations");
    wanted = json_object_get(doc, "apps");
    n = json_array_size(migs);

    rc = read_rows(ctx, conn, &rows);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    v = calloc(n + 1, sizeof(vmig_t));
    texts = calloc(n + 1, sizeof(char *));
    index = json_object();
    known = json_object();
    reasons = json_array();
    drift = json_array();
    unver = json_array();
    unknown = json_array();
    replaced = json_array();
    pending = json_array();
    all = json_array();

    if (v == NULL || texts == NULL || index == NULL || known == NULL
        || reasons == NULL || drift == NULL || unver == NULL
        || unknown == NULL || replaced == NULL || pending == NULL
        || all == NULL)
    {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    /* "app\tname" -> its position in django_migrations, by id */
    nrows = json_array_size(rows);
    for (r = 0; r < nrows; r++) {
        e = json_array_get(rows, r);
        snprintf(key, sizeof(key), "%s\t%s",
                 json_string_value(json_array_get(e, 0)),
                 json_string_value(json_array_get(e, 1)));
        json_object_set_new(index, key, json_integer((json_int_t) r));
    }

    for (k = 0; k < n; k++) {
        o = json_array_get(migs, k);
        v[k].m = o;
        v[k].app = json_string_value(json_object_get(o, "app"));
        v[k].name = json_string_value(json_object_get(o, "name"));
        v[k].row = -1;

        if (v[k].app == NULL || v[k].name == NULL) {
            rc = migctl_error(ctx, MIGCTL_CMDFAIL, "the migration document "
                              "has an entry without app or name: was it "
                              "made by migctl verify --print-script?");
            goto done;
        }

        snprintf(key, sizeof(key), "%s\t%s", v[k].app, v[k].name);
        json_object_set_new(known, key, json_true());
        e = json_object_get(index, key);
        if (e) {
            v[k].row = (int) json_integer_value(e);
            v[k].recorded = 1;
        }

        /*
         * A squash from its real "replaces" list: applied when every
         * migration it replaces is recorded (migrate records those)
         */
        rp = json_object_get(o, "replaces");
        j = 0;
        json_array_foreach(rp, r, e) {
            a = json_string_value(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1));
            if (a == NULL || b == NULL) {
                continue;
            }
            snprintf(key, sizeof(key), "%s\t%s", a, b);
            json_object_set_new(known, key, json_true());
            j += json_object_get(index, key) != NULL;

            if (json_object_get(index, key)) {
                json_array_append_new(replaced,
                    json_pack("{s:s, s:s, s:s+++}", "app", a, "name", b,
                              "squashed_into", v[k].app, ".", v[k].name,
                              ""));
            }
        }
        if (!v[k].recorded && j > 0 && j == json_array_size(rp)) {
            v[k].recorded = 1;
        }

        if (!v[k].recorded) {
            json_array_append_new(pending,
                                  json_pack("{s:s, s:s}", "app", v[k].app,
                                            "name", v[k].name));
            continue;
        }

        st = json_string_value(json_object_get(o, "error"));
        if (st != NULL) {
            v[k].reason = st;
            continue;
        }

        texts[k] = json_string_value(json_object_get(o, "sql"));
        if (texts[k] == NULL) {
            v[k].reason = "no SQL from Django";
            continue;
        }

        /* one plan for the whole history: later statements win */
        if (migctl_sql_parse_add(texts[k], (int) k, &plan, err,
                                 sizeof(err)) != 0)
        {
            if (strcmp(err, "out of memory") == 0) {
                rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
                goto done;
            }

            /* Meta options and the like: no SQL is nothing to check */
            if (strcmp(err, "no SQL statement in it") != 0) {
                json_array_append_new(reasons, json_string(err));
                v[k].reason = json_string_value(
                                  json_array_get(reasons,
                                                 json_array_size(reasons)
                                                 - 1));
            }
        }
    }

    rc = migctl_inspect_objects(ctx, conn, &plan, texts, n, &objs);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    json_array_foreach(objs, j, o) {
        k = (size_t) json_integer_value(json_object_get(o, "tag"));
        if (k >= n) {
            continue;
        }
        json_object_del(o, "tag");

        st = json_string_value(json_object_get(o, "status"));
        if (strcmp(st, "done") == 0) {
            v[k].done++;
            v[k].strong += !json_is_true(json_object_get(o,
                                                         "may_hold_before"));
            continue;
        }

        if (v[k].missing == NULL) {
            v[k].missing = json_array();
        }
        v[k].not_done++;
        json_array_append(v[k].missing, o);
    }

    for (j = 0; j < plan.nunver; j++) {
        k = (size_t) plan.unver[j].tag;
        if (k < n) {
            v[k].unverified++;
        }
    }

    for (k = 0; k < n; k++) {
        if (!v[k].recorded) {
            st = "pending";

        } else if (v[k].reason) {
            st = "unverifiable";
            json_array_append_new(unver,
                                  json_pack("{s:s, s:s, s:s}",
                                            "app", v[k].app,
                                            "name", v[k].name,
                                            "reason", v[k].reason));

        } else if (v[k].not_done > 0) {
            st = v[k].strong > 0 ? "incomplete" : "missing";
            e = json_pack("{s:s, s:s, s:s, s:O, s:o}",
                          "app", v[k].app, "name", v[k].name,
                          "status", st, "objects", v[k].missing,
                          "repair", repair(&v[k], v, n));
            json_array_append_new(drift, e);

        } else if (v[k].unverified > 0) {
            /* not drift: what the catalog cannot confirm, named */
            st = "unverified";
            used = 0;
            key[0] = '\0';
            for (j = 0; j < plan.nunver && used < 200; j++) {
                if ((size_t) plan.unver[j].tag == k
                    && strstr(key, plan.unver[j].what) == NULL)
                {
                    used += snprintf(key + used, sizeof(key) - used,
                                     "%s%s", used ? ", " : "",
                                     plan.unver[j].what);
                }
            }
            e = json_pack("{s:s, s:s, s:s+}", "app", v[k].app,
                          "name", v[k].name, "reason",
                          "the catalog cannot confirm: ", key);
            json_array_append_new(unver, e);

        } else {
            st = "ok";
        }

        json_array_append_new(all,
            json_pack("{s:s, s:s, s:b, s:s, s:i, s:i, s:i}",
                      "app", v[k].app, "name", v[k].name,
                      "recorded", v[k].recorded, "status", st,
                      "done", (int) v[k].done,
                      "not_done", (int) v[k].not_done,
                      "unverified", (int) v[k].unverified));
    }

    /* recorded, and neither in the code nor replaced by a squash in it */
    for (r = 0; r < nrows; r++) {
        e = json_array_get(rows, r);
        a = json_string_value(json_array_get(e, 0));
        b = json_string_value(json_array_get(e, 1));
        snprintf(key, sizeof(key), "%s\t%s", a, b);

        if (json_object_get(known, key)) {
            continue;
        }

        if (json_array_size(wanted) > 0) {
            json_array_foreach(wanted, j, o) {
                if (strcmp(json_string_value(o), a) == 0) {
                    break;
                }
            }
            if (j == json_array_size(wanted)) {
                continue;
            }
        }

        json_array_append_new(unknown,
                              json_pack("{s:s, s:s}", "app", a, "name", b));
    }

    *out = json_pack("{s:i, s:O, s:O, s:O, s:O, s:O, s:O, s:O}",
                     "checked", (int) (n - json_array_size(pending)),
                     "apps", json_array_size(wanted) ? wanted : json_null(),
                     "drift", drift, "unverifiable", unver,
                     "unknown", unknown, "replaced", replaced,
                     "pending", pending, "migrations", all);
    if (*out == NULL) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    rc = json_array_size(drift) ? MIGCTL_PROBLEM : MIGCTL_OK;

done:

    if (v) {
        for (k = 0; k < n; k++) {
            json_decref(v[k].missing);
        }
    }
    free(v);
    free(texts);
    migctl_sql_free(&plan);
    json_decref(rows);
    json_decref(index);
    json_decref(known);
    json_decref(reasons);
    json_decref(objs);
    json_decref(drift);
    json_decref(unver);
    json_decref(unknown);
    json_decref(replaced);
    json_decref(pending);
    json_decref(all);

    return rc;
}


/* [[app, name]...] of django_migrations, by id */
static int
read_rows(migctl_ctx_t *ctx, PGconn *conn, json_t **rows)
{
    int        i, rc;
    json_t    *a;
    PGresult  *pr;

    *rows = NULL;

    pr = migctl_db_exec(conn, "SELECT app, name FROM django_migrations ORDER BY id");

    /* a read that did not happen is no finding: never exit 1 (drift) */
    if (PQresultStatus(pr) != PGRES_TUPLES_OK) {
        rc = migctl_db_failed(ctx, conn, pr, "django_migrations");
        PQclear(pr);
        return rc;
    }

    a = json_array();
    for (i = 0; a != NULL && i < PQntuples(pr); i++) {
        json_array_append_new(a, json_pack("[s,s]", PQgetvalue(pr, i, 0),
                                           PQgetvalue(pr, i, 1)));
    }

    PQclear(pr);

    if (a == NULL) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    *rows = a;

    return MIGCTL_OK;
}


/*
 * The exact repair of a drifted migration.  Unrecording it is right only
 * when none of its objects exist and no recorded migration builds on it
 * (a later one of its app, or one that depends on it): migrate then
 * applies it for real.  Otherwise its missing objects are made by hand.
 * Never "migrate A PREV --fake": that unrecords every later migration.
 */
static json_t *
repair(vmig_t *v, vmig_t *all, size_t n)
{
    int          builds;
    char         deps[512], line[2600];
    size_t       k, j, used, nd;
    json_t      *r, *o, *d;
    const char  *a, *b, *sql;

    r = json_array();
    if (r == NULL) {
        return json_array();
    }

    used = 0;
    nd = 0;
    deps[0] = '\0';

    for (k = 0; k < n; k++) {
        if (all[k].m == v->m || !all[k].recorded) {
            continue;
        }

        builds = strcmp(all[k].app, v->app) == 0 && &all[k] > v;

        json_array_foreach(json_object_get(all[k].m, "dependencies"), j, d) {
            a = json_string_value(json_array_get(d, 0));
            b = json_string_value(json_array_get(d, 1));
            if (a && b && strcmp(a, v->app) == 0 && strcmp(b, v->name) == 0)
            {
                builds = 1;
            }
        }

        if (!builds) {
            continue;
        }

        nd++;
        if (used < sizeof(deps)) {
            used += snprintf(deps + used, sizeof(deps) - used, "%s%s.%s",
                             nd > 1 ? ", " : "", all[k].app, all[k].name);
        }
    }

    if (v->strong == 0 && nd == 0 && migctl_plain_name(v->app)
        && migctl_plain_name(v->name))
    {
        snprintf(line, sizeof(line), "psql -c \"DELETE FROM "
                 "django_migrations WHERE app = '%s' AND name = '%s'\"   "
                 "# unrecord exactly %s.%s: none of its objects exist and "
                 "no recorded migration builds on it", v->app, v->name,
                 v->app, v->name);
        json_array_append_new(r, json_string(line));
        snprintf(line, sizeof(line), "migctl run -- python manage.py "
                 "migrate %s %s --noinput   # then apply it for real",
                 v->app, v->name);
        json_array_append_new(r, json_string(line));
        return r;
    }

    if (nd > 0) {
        snprintf(line, sizeof(line), "# do not unrecord %s.%s: %zu recorded "
                 "migration(s) build on it (%s) and migrate would refuse "
                 "the history; create what is missing by hand instead",
                 v->app, v->name, nd, deps);
    } else {
        snprintf(line, sizeof(line), "# part of %s.%s is in place: create "
                 "what is missing by hand, in a transaction", v->app,
                 v->name);
    }
    json_array_append_new(r, json_string(line));

    json_array_foreach(v->missing, k, o) {
        sql = json_string_value(json_object_get(o, "sql"));
        if (sql == NULL) {
            continue;
        }
        snprintf(line, sizeof(line), "%s;   -- %s %s: expected %s, found %s",
                 sql, json_string_value(json_object_get(o, "kind")),
                 json_string_value(json_object_get(o, "name")),
                 json_string_value(json_object_get(o, "expected")),
                 json_string_value(json_object_get(o, "found")));
        o = json_string(line);
        json_array_append_new(r, o ? o : json_string("(not UTF-8)"));
    }

    return r;
}


static void
print_text(json_t *o)
{
    size_t   k, j;
    json_t  *d, *x, *s;

    printf("verify: %lld recorded migration(s) checked: %zu with drift, "
           "%zu unverifiable, %zu unknown to the code, %zu pending\n",
           (long long) json_integer_value(json_object_get(o, "checked")),
           json_array_size(json_object_get(o, "drift")),
           json_array_size(json_object_get(o, "unverifiable")),
           json_array_size(json_object_get(o, "unknown")),
           json_array_size(json_object_get(o, "pending")));

    json_array_foreach(json_object_get(o, "drift"), k, d) {
        printf("\nDRIFT %s.%s: %s\n",
               json_string_value(json_object_get(d, "app")),
               json_string_value(json_object_get(d, "name")),
               json_string_value(json_object_get(d, "status")));

        json_array_foreach(json_object_get(d, "objects"), j, x) {
            printf("  line %-4lld %-18s %s%s%s: expected %s, found %s\n",
                   (long long) json_integer_value(json_object_get(x,
                                                                  "line")),
                   json_string_value(json_object_get(x, "action")),
                   json_is_string(json_object_get(x, "table"))
                   ? json_string_value(json_object_get(x, "table")) : "",
                   json_is_string(json_object_get(x, "table")) ? "." : "",
                   json_string_value(json_object_get(x, "name")),
                   json_string_value(json_object_get(x, "expected")),
                   json_string_value(json_object_get(x, "found")));
        }

        printf("  repair:\n");
        json_array_foreach(json_object_get(d, "repair"), j, s) {
            printf("    %s\n", json_string_value(s));
        }
    }

    json_array_foreach(json_object_get(o, "unverifiable"), k, d) {
        printf("\nUNVERIFIABLE %s.%s: %s\n",
               json_string_value(json_object_get(d, "app")),
               json_string_value(json_object_get(d, "name")),
               json_string_value(json_object_get(d, "reason")));
    }

    json_array_foreach(json_object_get(o, "unknown"), k, d) {
        printf("\nUNKNOWN %s.%s: recorded, not in the code\n",
               json_string_value(json_object_get(d, "app")),
               json_string_value(json_object_get(d, "name")));
    }
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] verify [--app A]... [--manage CMD]\n"
        "           [--timeout D] [--from FILE] [--print-script]\n"
        "\n"
        "One Django process prints the sqlmigrate SQL of every migration\n"
        "(with its replaces list); every recorded migration is checked\n"
        "against the catalog, later migrations overriding earlier ones.\n"
        "Lists each migration whose objects are missing, incomplete or\n"
        "unverifiable, with the exact repair.\n"
        "\n"
        "options:\n"
        "  --app A                 an app to check (repeatable; default:\n"
        "                          all)\n"
        "  --manage CMD            how to run manage.py, e.g.\n"
        "                          '/usr/bin/python3 /srv/app/manage.py'\n"
        "                          (default django.manage of the\n"
        "                          configuration); CMD shell runs the\n"
        "                          script\n"
        "  --timeout D             bound on the Django process (default\n"
        "                          300s, django.timeout)\n"
        "  --from FILE             the script's output saved earlier,\n"
        "                          instead of running Django (- for\n"
        "                          standard input)\n"
        "  --print-script          print the script migctl feeds to CMD\n"
        "                          shell\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 no drift;1 drift;2;3 PostgreSQL unreachable, or Django failed"
        " on a locked django_migrations (the blocker named);5 Django could"
        " not produce the SQL",
        "migctl verify --app shop --manage '/usr/bin/python3"
        " /srv/app/manage.py'");
}
