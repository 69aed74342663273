/*
 * cmd_migrations.c: migctl migrations: django_migrations against this
 * release's and the previous release's `showmigrations --plan` output.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"


typedef struct {
    char   *app;
    char   *name;
    char    mark;        /* 'X', ' ', '-' (squash partly applied), 0 */
    int     seen;        /* matched in the other list */
} mig_entry_t;

/*
 * A plan or django_migrations: entries in order, and an index built on
 * the first find() after a change, so that comparing two 10,000-line
 * plans is linear, not quadratic.
 */
typedef struct {
    mig_entry_t  *v;
    size_t        n;
    size_t        alloc;
    size_t        indexed;   /* n when the index was built */
    size_t       *slot;      /* open addressing: entry + 1, or 0 */
    size_t        nslot;     /* a power of two > 2 n */
    size_t       *squash;    /* entries named "N_squashed_M..." */
    size_t        nsquash;
} mig_list_t;


static int read_plan(migctl_ctx_t *ctx, const char *path, mig_list_t *l);
static int parse_plan(char *text, mig_list_t *l);
static int add(mig_list_t *l, const char *app, size_t applen,
    const char *name, size_t namelen, char mark);
static mig_entry_t *find(mig_list_t *l, const char *app, const char *name);
static int build_index(mig_list_t *l);
static size_t hash(const char *app, const char *name);
static mig_entry_t *squashed_into(mig_list_t *l, const char *app,
    const char *name);
static void free_list(mig_list_t *l);
static json_t *pair(const char *app, const char *name);
static void print_text(json_t *o);
static void print_list(json_t *o, const char *key, const char *title);
static const char *esc(json_t *e, const char *key, char *buf);
static void usage(FILE *f);


int
cmd_migrations(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          rc;
    json_t      *out;
    PGconn      *conn;
    const char  *plan, *prev;

    const migctl_opt_t  opts[] = {
        { "--plan", MIGCTL_OPT_STRING, &plan, "FILE", 0, 0, 0 },
        { "--previous-plan", MIGCTL_OPT_STRING, &prev, "FILE", 0, 0, 0 },
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    plan = NULL;
    prev = NULL;

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    if (plan && prev && strcmp(plan, "-") == 0 && strcmp(prev, "-") == 0) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "--plan and --previous-plan cannot both be "
                            "stdin");
    }

    rc = migctl_db_connect(ctx, &conn);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_migrations_run(ctx, conn, plan, prev, &out);
    PQfinish(conn);

    return migctl_db_result(ctx, out, rc, print_text);
}


int
migctl_migrations_run(migctl_ctx_t *ctx, PGconn *conn, const char *plan,
    const char *prev_plan, json_t **out)
{
    int           rc, r;
    size_t        i;
    json_t       *o, *applied, *pending, *unk, *unkprev, *mismatch,
                 *squashed;
    PGresult     *res;
    mig_list_t    db, pl, pv;
    mig_entry_t  *e;

    *out = NULL;
    res = NULL;
    o = NULL;
    memset(&db, 0, sizeof(db));
    memset(&pl, 0, sizeof(pl));
    memset(&pv, 0, sizeof(pv));

    if (plan && (rc = read_plan(ctx, plan, &pl)) != MIGCTL_OK) {
        goto done;
    }

    if (prev_plan && (rc = read_plan(ctx, prev_plan, &pv)) != MIGCTL_OK) {
        goto done;
    }

    rc = migctl_db_check_django(ctx, conn);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    res = migctl_db_exec(conn, "SELECT app, name,"
                         " to_char(applied AT TIME ZONE 'UTC',"
                         "         'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                         " FROM django_migrations ORDER BY id");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = migctl_db_failed(ctx, conn, res, "django_migrations");
        goto done;
    }

    o = json_object();
    applied = json_array();
    pending = json_array();
    unk = json_array();
    unkprev = json_array();
    mismatch = json_array();
    squashed = json_array();
    json_object_set_new(o, "applied", applied);
    json_object_set_new(o, "plan", json_boolean(plan != NULL));
    json_object_set_new(o, "pending", pending);
    json_object_set_new(o, "unknown_to_release", unk);
    json_object_set_new(o, "previous_plan", json_boolean(prev_plan != NULL));
    json_object_set_new(o, "unknown_to_previous", unkprev);
    json_object_set_new(o, "plan_mismatch", mismatch);
    json_object_set_new(o, "replaced_by_squash", squashed);

    for (r = 0; r < PQntuples(res); r++) {
        const char  *app = PQgetvalue(res, r, 0);
        const char  *name = PQgetvalue(res, r, 1);
        json_t      *a = pair(app, name);

        json_object_set_new(a, "applied_at",
                            PQgetisnull(res, r, 2)
                            ? json_null()
                            : json_string(PQgetvalue(res, r, 2)));
        json_array_append_new(applied, a);

        if (add(&db, app, strlen(app), name, strlen(name), 'X') != 0) {
            rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
            goto done;
        }

        if (plan) {
            e = find(&pl, app, name);
            if (e == NULL && (e = squashed_into(&pl, app, name)) != NULL) {
                json_t  *m = pair(app, name);

                /* Django records the replaced ones too: they are known */
                json_object_set_new(m, "squashed_into",
                                    json_string(e->name));
                json_array_append_new(squashed, m);

            } else if (e == NULL) {
                json_array_append_new(unk, pair(app, name));

            } else if (e->mark == ' ') {
                json_t  *m = pair(app, name);

                json_object_set_new(m, "plan_says",
                                    json_string("not applied"));
                json_object_set_new(m, "database_says",
                                    json_string("recorded"));
                json_array_append_new(mismatch, m);
            }
        }

        if (prev_plan && find(&pv, app, name) == NULL
            && squashed_into(&pv, app, name) == NULL)
        {
            json_array_append_new(unkprev, pair(app, name));
        }
    }

    for (i = 0; i < pl.n; i++) {
        e = &pl.v[i];

        if (find(&db, e->app, e->name) != NULL) {
            continue;
        }

        json_array_append_new(pending, pair(e->app, e->name));

        if (e->mark == 'X') {
            json_t  *m = pair(e->app, e->name);

            json_object_set_new(m, "plan_says", json_string("applied"));
            json_object_set_new(m, "database_says",
                                json_string("not recorded"));
            json_array_append_new(mismatch, m);
        }
    }

    /* rolling code back is safe only if the old code knows every record */
    json_object_set_new(o, "rollback_safe",
                        prev_plan ? json_boolean(json_array_size(unkprev)
                                                 == 0)
                                  : json_null());

    rc = json_array_size(pending) || json_array_size(unk)
         ? MIGCTL_PROBLEM : MIGCTL_OK;
    *out = o;
    o = NULL;

done:

    json_decref(o);
    PQclear(res);
    free_list(&db);
    free_list(&pl);
    free_list(&pv);

    return rc;
}


static int
read_plan(migctl_ctx_t *ctx, const char *path, mig_list_t *l)
{
    int      rc;
    char     err[512], *text;
    size_t   len;

    if (migctl_read_file(path, &text, &len, err, sizeof(err)) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "%s", err);
    }

    rc = parse_plan(text, l);
    free(text);

    if (rc == -1) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    if (l->n == 0) {
        return migctl_error(ctx, MIGCTL_USAGE,
                            "%s: no migration in it: give the output of "
                            "manage.py showmigrations --plan", path);
    }

    return MIGCTL_OK;
}


/*
 * Both of Django's formats:
 *   --plan:  "[X]  app.0001_initial"  (-v 2 adds " ... (deps)")
 *   list:    "app" then " [X] 0001_initial" (-v 2 adds " (applied at ...)")
 * Other lines (warnings, " (no migrations)") are skipped.
 */
static int
parse_plan(char *text, mig_list_t *l)
{
    int          indented;
    char        *line, *next, *p, *tok, *dot, *app;
    char         mark;
    size_t       n, applen;

    app = NULL;
    applen = 0;

    for (line = text; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }

        n = strlen(line);
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ')) {
            line[--n] = '\0';
        }

        indented = (line[0] == ' ' || line[0] == '\t');
        p = line;
        while (*p == ' ' || *p == '\t') {
            p++;
        }

        if (*p == '\0') {
            continue;
        }

        if (!(p[0] == '[' && p[1] != '\0' && p[2] == ']')) {
            /* an app header of the list format: one bare word */
            if (!indented && strpbrk(p, " \t()[]:") == NULL) {
                app = p;
                applen = strlen(p);
            }
            continue;
        }

        mark = (p[1] == 'x') ? 'X' : p[1];
        tok = p + 3;
        while (*tok == ' ' || *tok == '\t') {
            tok++;
        }
        n = strcspn(tok, " \t");
        if (n == 0) {
            continue;
        }

        dot = memchr(tok, '.', n);

        if (indented && app != NULL && dot == NULL) {
            if (add(l, app, applen, tok, n, mark) != 0) {
                return -1;
            }

        } else if (dot != NULL && dot > tok && dot < tok + n - 1) {
            if (add(l, tok, dot - tok, dot + 1, tok + n - dot - 1, mark)
                != 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


static int
add(mig_list_t *l, const char *app, size_t applen, const char *name,
    size_t namelen, char mark)
{
    mig_entry_t  *v, *e;

    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 64;
        v = realloc(l->v, l->alloc * sizeof(mig_entry_t));
        if (v == NULL) {
            return -1;
        }
        l->v = v;
    }

    e = &l->v[l->n];
    e->app = strndup(app, applen);
    e->name = strndup(name, namelen);
    e->mark = mark;
    e->seen = 0;

    if (e->app == NULL || e->name == NULL) {
        free(e->app);
        free(e->name);
        return -1;
    }

    l->n++;

    return 0;
}


static mig_entry_t *
find(mig_list_t *l, const char *app, const char *name)
{
    size_t        i, k;
    mig_entry_t  *e;

    if (l->indexed != l->n && build_index(l) != 0) {
        /* out of memory for the index: still right, only slower */
        for (i = 0; i < l->n; i++) {
            if (strcmp(l->v[i].name, name) == 0
                && strcmp(l->v[i].app, app) == 0)
            {
                return &l->v[i];
            }
        }

        return NULL;
    }

    if (l->nslot == 0) {
        return NULL;
    }

    for (k = hash(app, name) & (l->nslot - 1); l->slot[k] != 0;
         k = (k + 1) & (l->nslot - 1))
    {
        e = &l->v[l->slot[k] - 1];
        if (strcmp(e->name, name) == 0 && strcmp(e->app, app) == 0) {
            return e;
        }
    }

    return NULL;
}


/* the first of equal entries wins, as a scan from the top would find */
static int
build_index(mig_list_t *l)
{
    char         *end;
    size_t        i, k, nslot, *slot, *squash, nsquash;
    mig_entry_t  *e;

    for (nslot = 16; nslot < 2 * l->n + 1; nslot *= 2) {
        /* void */
    }

    slot = calloc(nslot, sizeof(size_t));
    squash = malloc((l->n ? l->n : 1) * sizeof(size_t));
    if (slot == NULL || squash == NULL) {
        free(slot);
        free(squash);
        return -1;
    }

    nsquash = 0;

    for (i = 0; i < l->n; i++) {
        e = &l->v[i];

        for (k = hash(e->app, e->name) & (nslot - 1); slot[k] != 0;
             k = (k + 1) & (nslot - 1))
        {
            if (strcmp(l->v[slot[k] - 1].name, e->name) == 0
                && strcmp(l->v[slot[k] - 1].app, e->app) == 0)
            {
                break;
            }
        }

        if (slot[k] == 0) {
            slot[k] = i + 1;
        }

        (void) strtol(e->name, &end, 10);
        if (end != e->name && strncmp(end, "_squashed_", 10) == 0) {
            squash[nsquash++] = i;
        }
    }

    free(l->slot);
    free(l->squash);
    l->slot = slot;
    l->nslot = nslot;
    l->squash = squash;
    l->nsquash = nsquash;
    l->indexed = l->n;

    return 0;
}


/* FNV-1a over "app\0name" */
static size_t
hash(const char *app, const char *name)
{
    uint64_t  h;

    h = 14695981039346656037ULL;

    for ( ; *app; app++) {
        h = (h ^ (unsigned char) *app) * 1099511628211ULL;
    }

    h = (h ^ 0) * 1099511628211ULL;

    for ( ; *name; name++) {
        h = (h ^ (unsigned char) *name) * 1099511628211ULL;
    }

    return (size_t) h;
}


/*
 * squashmigrations names its result "0001_squashed_0004_x": it replaces
 * the app's migrations numbered 0001 to 0004, which django_migrations
 * keeps (and records when the squash is applied).  The plan only shows
 * the squash, so a replaced name is known through its number.
 */
static mig_entry_t *
squashed_into(mig_list_t *l, const char *app, const char *name)
{
    char    *end;
    size_t   i, k;
    long     n, from, to;

    n = strtol(name, &end, 10);
    if (end == name || *end != '_') {
        return NULL;
    }

    if (l->indexed != l->n && build_index(l) != 0) {
        return NULL;
    }

    /* only the squashes: a few, not every entry of the plan */
    for (k = 0; k < l->nsquash; k++) {
        const char  *s;

        i = l->squash[k];
        s = l->v[i].name;

        if (strcmp(l->v[i].app, app) != 0) {
            continue;
        }

        from = strtol(s, &end, 10);
        if (end == s || strncmp(end, "_squashed_", 10) != 0) {
            continue;
        }

        s = end + 10;
        to = strtol(s, &end, 10);
        if (end == s) {
            continue;
        }

        if (n >= from && n <= to && strcmp(l->v[i].name, name) != 0) {
            return &l->v[i];
        }
    }

    return NULL;
}


static void
free_list(mig_list_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i].app);
        free(l->v[i].name);
    }

    free(l->v);
    free(l->slot);
    free(l->squash);
}


static json_t *
pair(const char *app, const char *name)
{
    json_t  *o;

    o = json_object();
    json_object_set_new(o, "app", json_string(app));
    json_object_set_new(o, "name", json_string(name));

    return o;
}


static void
print_text(json_t *o)
{
    char     b[3][4 * 255 + 1];
    size_t   i;
    json_t  *a, *e, *rs;

    a = json_object_get(o, "applied");
    printf("applied (%zu):\n", json_array_size(a));

    json_array_foreach(a, i, e) {
        printf("  %-20s %-50s %s\n",
               esc(e, "app", b[0]),
               esc(e, "name", b[1]),
               json_is_string(json_object_get(e, "applied_at"))
               ? json_string_value(json_object_get(e, "applied_at")) : "");
    }

    if (json_is_true(json_object_get(o, "plan"))) {
        print_list(o, "pending", "pending (in this release, not recorded)");
        print_list(o, "unknown_to_release",
                   "unknown to this release (recorded, not in its plan)");

        json_array_foreach(json_object_get(o, "replaced_by_squash"), i, e) {
            printf("replaced by a squash: %s.%s -> %s\n",
                   esc(e, "app", b[0]),
                   esc(e, "name", b[1]),
                   esc(e, "squashed_into", b[2]));
        }

        if (json_array_size(json_object_get(o, "plan_mismatch"))) {
            printf("plan and database disagree (the plan was made "
                   "against another database?):\n");
            json_array_foreach(json_object_get(o, "plan_mismatch"), i, e) {
                printf("  %s.%s: plan says %s, database says %s\n",
                       esc(e, "app", b[0]),
                       esc(e, "name", b[1]),
                       json_string_value(json_object_get(e, "plan_says")),
                       json_string_value(json_object_get(e,
                                                         "database_says")));
            }
        }
    }

    if (json_is_true(json_object_get(o, "previous_plan"))) {
        print_list(o, "unknown_to_previous",
                   "unknown to the previous release");
        rs = json_object_get(o, "rollback_safe");
        printf("rolling back code: %s\n",
               json_is_true(rs)
               ? "safe (the previous release knows every recorded "
                 "migration)"
               : "UNSAFE (the previous release does not know every "
                 "recorded migration)");
    }
}


static void
print_list(json_t *o, const char *key, const char *title)
{
    char     b[2][4 * 255 + 1];
    size_t   i;
    json_t  *a, *e;

    a = json_object_get(o, key);
    printf("%s (%zu):%s\n", title, json_array_size(a),
           json_array_size(a) ? "" : " none");

    json_array_foreach(a, i, e) {
        printf("  %s.%s\n", esc(e, "app", b[0]),
               esc(e, "name", b[1]));
    }
}


/* names come from django_migrations and files: escaped for a terminal */
static const char *
esc(json_t *e, const char *key, char *buf)
{
    const char  *v;

    v = json_string_value(json_object_get(e, key));
    migctl_escape(v ? v : "", buf, 4 * 255 + 1);

    return buf;
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] migrations [--plan FILE]"
        " [--previous-plan FILE]\n"
        "\n"
        "Lists the migrations recorded in django_migrations; with a plan,\n"
        "the pending ones and those recorded but unknown to this release;\n"
        "with a previous plan, those the previous release does not know\n"
        "(rolling code back is then unsafe).\n"
        "\n"
        "options:\n"
        "  --plan FILE             manage.py showmigrations --plan of this\n"
        "                          release (- for standard input; the list\n"
        "                          format of showmigrations is read too)\n"
        "  --previous-plan FILE    the same, from the previous release\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 ok;1 something is pending or unknown to this release;"
        "2 usage or configuration (no django_migrations);3 PostgreSQL"
        " unreachable, or django_migrations locked past --lock-timeout"
        " (the blocker named)",
        "python3 manage.py showmigrations --plan > plan.txt\n"
        "migctl migrations --plan plan.txt --previous-plan previous-plan.txt");
}
