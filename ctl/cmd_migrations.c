/*
 * cmd_migrations.c: migctl migrations: django_migrations against this
 * release's and the previous release's `showmigrations --plan` output.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "verify.h"


#define MIGS_DJANGO_TIMEOUT_MS  300000L     /* a Django start-up, 300 s */
#define MIGS_SQUASH_DEPTH       32          /* a squash of a squash of... */


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
    json_t       *repl;      /* Django's: "app\tname" of a replaced
                                migration -> [app, name] of its squash */
    json_t       *squashes;  /* Django's: "app\tname" of a squash -> its
                                replaces; NULL: guessed from names */
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
static int load_doc(json_t *doc, mig_list_t *l, int entries);
static int note_squash(mig_list_t *l, const char *app, const char *name,
    json_t *replaces);
static mig_entry_t *replaced_in(mig_list_t *l, const char *app,
    const char *name);
static int recorded_through(mig_list_t *l, mig_list_t *db, mig_entry_t *e);
static int mkkey(char *buf, size_t len, const char *app, const char *name);
static void free_list(mig_list_t *l);
static json_t *pair(const char *app, const char *name);
static void print_text(json_t *o);
static void print_list(json_t *o, const char *key, const char *title);
static void print_source(json_t *src, const char *what, const char *opt);
static const char *esc(json_t *e, const char *key, char *buf);
static void usage(FILE *f);


int
cmd_migrations(int argc, char **argv, migctl_ctx_t *ctx)
{
    int          rc;
    long         timeout_ms;
    json_t      *out, *doc, *pdoc;
    PGconn      *conn;
    const char  *plan, *prev, *manage, *pmanage;

    const migctl_opt_t  opts[] = {
        { "--plan", MIGCTL_OPT_STRING, &plan, "FILE", 0, 0, 0 },
        { "--previous-plan", MIGCTL_OPT_STRING, &prev, "FILE", 0, 0, 0 },
        { "--manage", MIGCTL_OPT_STRING, &manage, "CMD", 0, 0, 0 },
        { "--previous-manage", MIGCTL_OPT_STRING, &pmanage, "CMD", 0, 0, 0 },
        { "--timeout", MIGCTL_OPT_DURATION, &timeout_ms, "DURATION", 1000,
          0, 0 },
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    plan = NULL;
    prev = NULL;
    manage = NULL;
    pmanage = NULL;
    timeout_ms = MIGS_DJANGO_TIMEOUT_MS;
    doc = NULL;
    pdoc = NULL;
    out = NULL;

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

    /* the replaces lists from each release's own Django, as verify's */
    if (manage || pmanage) {
        rc = migctl_db_check_django(ctx, conn);
        if (rc != MIGCTL_OK) {
            goto done;
        }
    }

    if (manage) {
        rc = migctl_verify_django(ctx, conn, manage, NULL, 0, timeout_ms,
                                  NULL, &doc);
        if (rc != MIGCTL_OK) {
            goto done;
        }
    }

    if (pmanage) {
        rc = migctl_verify_django(ctx, conn, pmanage, NULL, 0, timeout_ms,
                                  NULL, &pdoc);
        if (rc != MIGCTL_OK) {
            goto done;
        }
    }

    rc = migctl_migrations_check(ctx, conn, plan, prev, doc, pdoc, &out);

    rc = migctl_db_result(ctx, out, rc, print_text);

done:

    json_decref(doc);
    json_decref(pdoc);
    PQfinish(conn);

    return rc;
}


int
migctl_migrations_run(migctl_ctx_t *ctx, PGconn *conn, const char *plan,
    const char *prev_plan, json_t **out)
{
    return migctl_migrations_check(ctx, conn, plan, prev_plan, NULL, NULL,
                                   out);
}


int
migctl_migrations_check(migctl_ctx_t *ctx, PGconn *conn, const char *plan,
    const char *prev_plan, json_t *doc, json_t *prev_doc, json_t **out)
{
    int           rc, r, rel, prev;
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

    /* a plan lists the migrations, a document gives them too without one */
    if ((doc && load_doc(doc, &pl, plan == NULL) != 0)
        || (prev_doc && load_doc(prev_doc, &pv, prev_plan == NULL) != 0))
    {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    rel = plan != NULL || doc != NULL;
    prev = prev_plan != NULL || prev_doc != NULL;

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
    json_object_set_new(o, "plan", json_boolean(rel));
    json_object_set_new(o, "pending", pending);
    json_object_set_new(o, "unknown_to_release", unk);
    json_object_set_new(o, "previous_plan", json_boolean(prev));
    json_object_set_new(o, "unknown_to_previous", unkprev);
    json_object_set_new(o, "plan_mismatch", mismatch);
    json_object_set_new(o, "replaced_by_squash", squashed);
    json_object_set_new(o, "squash_source",
                        !rel ? json_null()
                        : json_string(pl.squashes ? "django" : "names"));
    json_object_set_new(o, "previous_squash_source",
                        !prev ? json_null()
                        : json_string(pv.squashes ? "django" : "names"));

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

        if (rel) {
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

        if (prev && find(&pv, app, name) == NULL
            && squashed_into(&pv, app, name) == NULL)
        {
            json_array_append_new(unkprev, pair(app, name));
        }
    }

    for (i = 0; i < pl.n; i++) {
        e = &pl.v[i];

        if (find(&db, e->app, e->name) != NULL
            || recorded_through(&pl, &db, e))
        {
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
                        prev ? json_boolean(json_array_size(unkprev) == 0)
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

    if (l->squashes != NULL) {
        return replaced_in(l, app, name);
    }

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


/*
 * A document of migctl_verify_django(): the release's migrations (into
 * l's entries when entries is set: no plan was given) and every squash's
 * replaces list, which then replaces the guess from names.
 */
static int
load_doc(json_t *doc, mig_list_t *l, int entries)
{
    size_t       i;
    json_t      *m;
    const char  *app, *name;

    l->repl = json_object();
    l->squashes = json_object();
    if (l->repl == NULL || l->squashes == NULL) {
        return -1;
    }

    json_array_foreach(json_object_get(doc, "migrations"), i, m) {
        app = json_string_value(json_object_get(m, "app"));
        name = json_string_value(json_object_get(m, "name"));
        if (app == NULL || name == NULL) {
            continue;
        }

        if (entries && add(l, app, strlen(app), name, strlen(name), 0) != 0)
        {
            return -1;
        }

        if (note_squash(l, app, name, json_object_get(m, "replaces")) != 0) {
            return -1;
        }
    }

    /* squashes the graph left out: a squash of a squash, a partial one */
    json_array_foreach(json_object_get(doc, "squashes"), i, m) {
        app = json_string_value(json_object_get(m, "app"));
        name = json_string_value(json_object_get(m, "name"));
        if (app != NULL && name != NULL
            && note_squash(l, app, name, json_object_get(m, "replaces")) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* the first squash seen for a migration wins: the graph's own */
static int
note_squash(mig_list_t *l, const char *app, const char *name,
    json_t *replaces)
{
    char         key[1024];
    size_t       i;
    json_t      *r;
    const char  *a, *b;

    if (json_array_size(replaces) == 0
        || mkkey(key, sizeof(key), app, name) != 0)
    {
        return 0;
    }

    if (json_object_get(l->squashes, key) == NULL
        && json_object_set(l->squashes, key, replaces) != 0)
    {
        return -1;
    }

    json_array_foreach(replaces, i, r) {
        a = json_string_value(json_array_get(r, 0));
        b = json_string_value(json_array_get(r, 1));
        if (a == NULL || b == NULL || mkkey(key, sizeof(key), a, b) != 0
            || json_object_get(l->repl, key) != NULL)
        {
            continue;
        }

        if (json_object_set_new(l->repl, key, json_pack("[s,s]", app, name))
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* the entry of l that replaces app.name, through squashes of squashes */
static mig_entry_t *
replaced_in(mig_list_t *l, const char *app, const char *name)
{
    int           depth;
    char          key[1024];
    json_t       *s;
    mig_entry_t  *e;

    for (depth = 0; depth < MIGS_SQUASH_DEPTH; depth++) {
        if (mkkey(key, sizeof(key), app, name) != 0) {
            return NULL;
        }

        s = json_object_get(l->repl, key);
        if (s == NULL) {
            return NULL;
        }

        app = json_string_value(json_array_get(s, 0));
        name = json_string_value(json_array_get(s, 1));

        e = find(l, app, name);
        if (e != NULL) {
            return e;
        }
    }

    return NULL;
}


/*
 * A squash without its own row is applied when every migration it
 * replaces is recorded (Django's rule, and showmigrations' [X]); known
 * only from Django's lists, never guessed.
 */
static int
recorded_through(mig_list_t *l, mig_list_t *db, mig_entry_t *e)
{
    char         key[1024];
    size_t       i;
    json_t      *rp, *r;
    const char  *a, *b;

    if (l->squashes == NULL || mkkey(key, sizeof(key), e->app, e->name) != 0)
    {
        return 0;
    }

    rp = json_object_get(l->squashes, key);
    if (json_array_size(rp) == 0) {
        return 0;
    }

    json_array_foreach(rp, i, r) {
        a = json_string_value(json_array_get(r, 0));
        b = json_string_value(json_array_get(r, 1));
        if (a == NULL || b == NULL || find(db, a, b) == NULL) {
            return 0;
        }
    }

    return 1;
}


/* "app\tname"; -1 when it does not fit (such a name matches nothing) */
static int
mkkey(char *buf, size_t len, const char *app, const char *name)
{
    int  n;

    n = snprintf(buf, len, "%s\t%s", app, name);

    return n < 0 || (size_t) n >= len ? -1 : 0;
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
    json_decref(l->repl);
    json_decref(l->squashes);
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

        print_source(json_object_get(o, "squash_source"), "squashes",
                     "--manage");

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
        print_source(json_object_get(o, "previous_squash_source"),
                     "the previous release's squashes", "--previous-manage");
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


static void
print_source(json_t *src, const char *what, const char *opt)
{
    if (json_is_string(src)
        && strcmp(json_string_value(src), "django") == 0)
    {
        printf("%s: from Django's replaces lists\n", what);

    } else {
        printf("%s: guessed from names (N_squashed_M replaces N to M of "
               "its app): give %s for Django's replaces lists\n", what,
               opt);
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
        "           [--manage CMD] [--previous-manage CMD] [--timeout D]\n"
        "\n"
        "Lists the migrations recorded in django_migrations; with a plan,\n"
        "the pending ones and those recorded but unknown to this release;\n"
        "with a previous plan, those the previous release does not know\n"
        "(rolling code back is then unsafe).  A plan has no replaces\n"
        "lists: what a squash replaces is guessed from its name\n"
        "(0001_squashed_0004_x: 0001 to 0004) unless that release's Django\n"
        "is given, which reads them (and lists the migrations itself).\n"
        "\n"
        "options:\n"
        "  --plan FILE             manage.py showmigrations --plan of this\n"
        "                          release (- for standard input; the list\n"
        "                          format of showmigrations is read too)\n"
        "  --previous-plan FILE    the same, from the previous release\n"
        "  --manage CMD            how to run this release's manage.py, e.g.\n"
        "                          '/usr/bin/python3 /srv/app/manage.py':\n"
        "                          the squashes' replaces lists (and the\n"
        "                          migrations, without --plan) from one\n"
        "                          Django process, as verify's\n"
        "  --previous-manage CMD   the same, for the previous release\n"
        "  --timeout D             bound on each Django process (default\n"
        "                          300s)\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 ok;1 something is pending or unknown to this release;"
        "2 usage or configuration (no django_migrations);3 PostgreSQL"
        " unreachable, or django_migrations locked past --lock-timeout"
        " (the blocker named);5 Django (--manage) could not list the"
        " migrations",
        "python3 manage.py showmigrations --plan > plan.txt\n"
        "migctl migrations --plan plan.txt --previous-plan previous-plan.txt\n"
        "migctl migrations --manage '/usr/bin/python3 /srv/app/manage.py'"
        " \\\n"
        "    --previous-manage '/usr/bin/python3 /srv/prev/manage.py'");
}
