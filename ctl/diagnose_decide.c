/*
 * diagnose_decide.c: diagnose's decision table: the database state and the
 * failure's class -> a path, with its reasons, risks and next commands.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "migctl.h"
#include "diagnose.h"


#define DG_BUF  1024


static void decide_drift(dg_t *d);
static void decide_present(dg_t *d);
static void risk_conflicts(dg_t *d);
static void next_statements(dg_t *d);
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
static long num(json_t *o, const char *key);


void
migctl_diagnose_derive(dg_t *d)
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


void
migctl_diagnose_decide(dg_t *d)
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
        && migctl_plain_name(d->app) && migctl_plain_name(d->migration))
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

        migctl_diagnose_quote_ident(q, sizeof(q), str(o, "schema"),
                                    str(o, "name"));
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
            migctl_diagnose_quote_ident(tbl, sizeof(tbl), str(o, "schema"),
                                        table);
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
void
migctl_diagnose_quote_ident(char *buf, size_t len, const char *schema,
    const char *name)
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


static long
num(json_t *o, const char *key)
{
    return (long) json_integer_value(json_object_get(o, key));
}
