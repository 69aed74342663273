/*
 * inspect_catalog.c: the checks of a plan against the catalog, one query
 * per kind of object, for inspect and verify.
 */

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "inspect.h"
#include "sqlparse.h"
#include "verify.h"


#define FOUND_MAX  256
#define STMT_MAX   2000                     /* a statement in "sql" */
#define KIND(k)    (1u << (k))

/* batch()'s five arrays as rows q, in check order (q.i from 1) */
#define FROM_CHECKS                                                          \
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"           \
    "             $5::int[]) WITH ORDINALITY AS q(s, t, n, ty, tm, i)"

/* the relation named by q.s and q.<col> (t or n), NULL if none */
#define REGCLASS(col)                                                        \
    "to_regclass(CASE WHEN q.s IS NULL THEN quote_ident(q." col ")"          \
    "   ELSE quote_ident(q.s) || '.' || quote_ident(q." col ") END)::oid"

typedef struct {
    const char  *status;                    /* "done", "not_done", ... */
    char         expected[160];
    char         type[128];                 /* a column's expected type */
    char         found[FOUND_MAX];
} check_result_t;

/* reads row r of a kind's query into the result of check c */
typedef void check_row_pt(PGresult *pr, int r, migctl_sql_check_t *c,
    check_result_t *res);

/* one catalog query for some kinds of object, and what reads its rows */
typedef struct {
    unsigned       kinds;                   /* KIND() bits */
    const char    *what;                    /* for the error message */
    const char    *sql;
    check_row_pt  *row;
} check_kind_t;


static int check_kind(migctl_ctx_t *ctx, PGconn *conn,
    migctl_sql_plan_t *plan, check_result_t *res, const check_kind_t *k);
static check_row_pt row_table, row_column, row_index, row_constraint,
    row_extension, row_trigger;
static PGresult *batch(migctl_ctx_t *ctx, PGconn *conn,
    migctl_sql_plan_t *plan, unsigned kinds, const char *what,
    const char *sql, size_t **mapp, int *rc);
static const char *kind_name(int kind);
static const char *contype_name(char t);
static json_t *jstrn(const char *s, size_t n);


/* one catalog query per kind of object, whatever the plan's size */
static const check_kind_t  check_kinds[] = {

    { KIND(MIGCTL_SQL_TABLE) | KIND(MIGCTL_SQL_SEQUENCE)
      | KIND(MIGCTL_SQL_VIEW), "relation",
      "SELECT q.i, r.oid IS NOT NULL, r.relkind::text"
      FROM_CHECKS
      " LEFT JOIN pg_class r ON r.oid = " REGCLASS("n")
      " ORDER BY q.i", row_table },

    { KIND(MIGCTL_SQL_COLUMN), "column",
      "SELECT q.i, r.oid IS NOT NULL, a.attnum IS NOT NULL,"
      "  format_type(a.atttypid, a.atttypmod), a.attnotnull,"
      /*
       * pg_get_expr(adbin, adrelid) takes a lock on the table and waits
       * behind an ACCESS EXCLUSIVE holder; a default cannot refer to a
       * column, so relid 0 prints it the same without any lock (a
       * generated column's expression can: it is not printed)
       */
      "  CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, 0) END,"
      "  CASE WHEN to_regtype(q.ty) IS NOT NULL"
      "    THEN a.atttypid = to_regtype(q.ty)::oid"
      "         AND (q.tm = -1 OR a.atttypmod = q.tm) END,"
      "  format_type(to_regtype(q.ty)::oid, q.tm), d.oid IS NOT NULL"
      FROM_CHECKS
      " LEFT JOIN pg_class r ON r.oid = " REGCLASS("t")
      " LEFT JOIN pg_attribute a ON a.attrelid = r.oid"
      "   AND a.attname = q.n AND a.attnum > 0 AND NOT a.attisdropped"
      " LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum"
      " ORDER BY q.i", row_column },

    { KIND(MIGCTL_SQL_INDEX), "index",
      "SELECT q.i, x.indexrelid IS NOT NULL, x.indisvalid, x.indisunique,"
      "  t.relname"
      FROM_CHECKS
      " LEFT JOIN pg_index x ON x.indexrelid = " REGCLASS("n")
      " LEFT JOIN pg_class t ON t.oid = x.indrelid"
      " ORDER BY q.i", row_index },

    { KIND(MIGCTL_SQL_CONSTRAINT), "constraint",
      "SELECT q.i, r.oid IS NOT NULL, k.oid IS NOT NULL, k.contype::text,"
      "  k.convalidated"
      FROM_CHECKS
      " LEFT JOIN pg_class r ON r.oid = " REGCLASS("t")
      " LEFT JOIN pg_constraint k ON k.conrelid = r.oid"
      "   AND k.conname = q.n"
      " ORDER BY q.i", row_constraint },

    { KIND(MIGCTL_SQL_EXTENSION), "extension",
      "SELECT q.i, e.oid IS NOT NULL, e.extversion"
      FROM_CHECKS
      " LEFT JOIN pg_extension e ON e.extname = q.n"
      " ORDER BY q.i", row_extension },

    { KIND(MIGCTL_SQL_TRIGGER), "trigger",
      "SELECT q.i, r.oid IS NOT NULL, g.oid IS NOT NULL"
      FROM_CHECKS
      " LEFT JOIN pg_class r ON r.oid = " REGCLASS("t")
      " LEFT JOIN pg_trigger g ON g.tgrelid = r.oid AND g.tgname = q.n"
      "   AND NOT g.tgisinternal"
      " ORDER BY q.i", row_trigger }
};


int
migctl_inspect_objects(migctl_ctx_t *ctx, PGconn *conn,
    migctl_sql_plan_t *plan, const char **texts, size_t ntexts,
    json_t **objs)
{
    int                  rc;
    size_t               i, n, k;
    json_t              *a, *e;
    check_result_t      *res;
    migctl_sql_check_t  *c;

    *objs = NULL;

    res = calloc(plan->nchecks + 1, sizeof(check_result_t));
    a = json_array();
    if (res == NULL || a == NULL) {
        free(res);
        json_decref(a);
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    for (i = 0; i < plan->nchecks; i++) {
        res[i].status = "not_done";
    }

    for (k = 0; k < sizeof(check_kinds) / sizeof(check_kinds[0]); k++) {
        rc = check_kind(ctx, conn, plan, res, &check_kinds[k]);
        if (rc != MIGCTL_OK) {
            free(res);
            json_decref(a);
            return rc;
        }
    }

    for (i = 0; i < plan->nchecks; i++) {
        c = &plan->checks[i];
        if (c->dead) {
            continue;
        }

        e = json_object();
        if (e == NULL) {
            break;
        }
        json_object_set_new(e, "stmt", json_integer(c->stmt));
        json_object_set_new(e, "line", json_integer(c->line));
        json_object_set_new(e, "operation",
                            migctl_inspect_jstr(c->op >= 0 ? plan->ops[c->op]
                                                           : NULL));
        json_object_set_new(e, "action", json_string(c->action));
        json_object_set_new(e, "kind",
                            json_string(kind_name(c->kind)));
        json_object_set_new(e, "schema", migctl_inspect_jstr(c->schema));
        json_object_set_new(e, "table", migctl_inspect_jstr(c->table));
        json_object_set_new(e, "name", migctl_inspect_jstr(c->name));
        json_object_set_new(e, "expected",
                            migctl_inspect_jstr(res[i].expected));
        if (res[i].type[0]) {
            json_object_set_new(e, "type", json_string(res[i].type));
        }
        json_object_set_new(e, "found", migctl_inspect_jstr(res[i].found));
        json_object_set_new(e, "status", json_string(res[i].status));
        json_object_set_new(e, "may_hold_before", json_boolean(c->weak));

        /* what is missing: its statement, to repair it by hand */
        if (strcmp(res[i].status, "done") != 0 && c->tag >= 0
            && (size_t) c->tag < ntexts && texts[c->tag] != NULL
            && c->end > c->start)
        {
            n = c->end - c->start;
            if (n > STMT_MAX) {
                n = STMT_MAX;
            }
            json_object_set_new(e, "sql",
                                jstrn(texts[c->tag] + c->start, n));
        }

        if (ntexts > 1) {
            json_object_set_new(e, "tag", json_integer(c->tag));
        }

        json_array_append_new(a, e);
    }

    free(res);
    *objs = a;

    return MIGCTL_OK;
}


/*
 * Runs one kind's query through batch() and hands each row to its row
 * function, with the check and the result the row is for.
 */
static int
check_kind(migctl_ctx_t *ctx, PGconn *conn, migctl_sql_plan_t *plan,
    check_result_t *res, const check_kind_t *k)
{
    int          rc, r;
    size_t       i, *map;
    PGresult    *pr;

    pr = batch(ctx, conn, plan, k->kinds, k->what, k->sql, &map, &rc);

    if (pr == NULL) {
        return rc;
    }

    for (r = 0; r < PQntuples(pr); r++) {
        i = map[atoi(PQgetvalue(pr, r, 0)) - 1];
        k->row(pr, r, &plan->checks[i], &res[i]);
    }

    PQclear(pr);
    free(map);

    return MIGCTL_OK;
}


/* tables, sequences, views: presence and the kind of relation */
static void
row_table(PGresult *pr, int r, migctl_sql_check_t *c, check_result_t *res)
{
    int  exists;

    exists = PQgetvalue(pr, r, 1)[0] == 't';

    snprintf(res->expected, sizeof(res->expected), "%s",
             c->expect ? "present" : "absent");

    if (exists
        && strchr(c->kind == MIGCTL_SQL_SEQUENCE ? "S"
                  : c->kind == MIGCTL_SQL_VIEW ? "vm" : "rp",
                  PQgetvalue(pr, r, 2)[0]) == NULL)
    {
        snprintf(res->found, FOUND_MAX, "a relation of kind '%s'",
                 PQgetvalue(pr, r, 2));
        res->status = "not_done";
        return;
    }

    snprintf(res->found, FOUND_MAX, "%s", exists ? "present" : "absent");
    res->status = exists == c->expect ? "done" : "not_done";
}


/* columns: presence, type, nullability, default, in one query */
static void
row_column(PGresult *pr, int r, migctl_sql_check_t *c, check_result_t *res)
{
    int    tbl, col, ok, hasdef;
    char  *type, *exptype, *def, key[256], ek[128];

    tbl = PQgetvalue(pr, r, 1)[0] == 't';
    col = PQgetvalue(pr, r, 2)[0] == 't';
    type = PQgetvalue(pr, r, 3);
    def = PQgetvalue(pr, r, 5);
    exptype = PQgetvalue(pr, r, 7);

    switch (c->aspect) {

    case MIGCTL_SQL_PRESENCE:
        /* "expected" stays "present": the type goes in "type" */
        snprintf(res->expected, sizeof(res->expected), "%s",
                 c->expect ? "present" : "absent");
        if (c->expect && c->type && !PQgetisnull(pr, r, 7)) {
            snprintf(res->type, sizeof(res->type), "%s", exptype);
        }

        /* the type is checked when the server knows it (col 6 set) */
        ok = !c->expect || !col || PQgetisnull(pr, r, 6)
             || PQgetvalue(pr, r, 6)[0] == 't';

        if (col) {
            snprintf(res->found, FOUND_MAX, "present (%s%s)%s", type,
                     PQgetvalue(pr, r, 4)[0] == 't' ? ", not null" : "",
                     ok ? "" : ", another type");
        } else {
            snprintf(res->found, FOUND_MAX, "%s",
                     tbl ? "absent" : "absent (no table)");
        }

        /* as for constraints: a dropped column needs its table */
        res->status = col == c->expect && tbl && ok ? "done" : "not_done";
        return;

    case MIGCTL_SQL_TYPE:
        snprintf(res->expected, sizeof(res->expected), "type %s",
                 PQgetisnull(pr, r, 7) ? (c->type ? c->type : "?")
                                       : exptype);
        ok = col && PQgetvalue(pr, r, 6)[0] == 't';
        break;

    case MIGCTL_SQL_NOTNULL:
        snprintf(res->expected, sizeof(res->expected), "%s",
                 c->expect ? "not null" : "nullable");
        ok = col && (PQgetvalue(pr, r, 4)[0] == 't') == c->expect;
        if (col) {
            snprintf(res->found, FOUND_MAX, "%s",
                     PQgetvalue(pr, r, 4)[0] == 't' ? "not null"
                                                    : "nullable");
        }
        break;

    default: /* MIGCTL_SQL_DEFAULT */
        hasdef = PQgetvalue(pr, r, 8)[0] == 't';
        if (c->expect && c->defkey) {
            migctl_escape(c->defkey, ek, sizeof(ek));
            snprintf(res->expected, sizeof(res->expected), "default %s",
                     ek);
        } else {
            snprintf(res->expected, sizeof(res->expected), "%s",
                     c->expect ? "default" : "no default");
        }
        ok = col && hasdef == c->expect;

        /* the value, not only its presence, when both can be read */
        if (ok && c->expect && c->defkey) {
            ok = !PQgetisnull(pr, r, 5)
                 && migctl_sql_expr_key(def, key, sizeof(key)) == 0
                 && strcmp(key, c->defkey) == 0;
        }

        if (col) {
            snprintf(res->found, FOUND_MAX, "%s%s",
                     !hasdef ? "no default" : "default ",
                     !hasdef ? "" : PQgetisnull(pr, r, 5) ? "(generated)"
                                                          : def);
        }
        break;
    }

    if (!col) {
        snprintf(res->found, FOUND_MAX, "%s",
                 tbl ? "column absent" : "table absent");

    } else if (c->aspect == MIGCTL_SQL_TYPE) {
        snprintf(res->found, FOUND_MAX, "type %s", type);
    }

    res->status = ok ? "done" : "not_done";
}


/* indexes: presence, uniqueness and pg_index.indisvalid */
static void
row_index(PGresult *pr, int r, migctl_sql_check_t *c, check_result_t *res)
{
    int  exists, valid, unique;

    exists = PQgetvalue(pr, r, 1)[0] == 't';
    valid = PQgetvalue(pr, r, 2)[0] == 't';
    unique = PQgetvalue(pr, r, 3)[0] == 't';

    if (!c->expect) {
        snprintf(res->expected, sizeof(res->expected), "absent");
        snprintf(res->found, FOUND_MAX, "%s",
                 !exists ? "absent" : valid ? "present" : "present, "
                                              "INVALID");
        res->status = exists ? "not_done" : "done";
        return;
    }

    snprintf(res->expected, sizeof(res->expected), "%s",
             c->unique ? "unique valid index" : "valid index");

    if (!exists) {
        snprintf(res->found, FOUND_MAX, "absent");
        res->status = "not_done";

    } else if (!valid) {
        /* a failed CREATE INDEX CONCURRENTLY leaves this behind */
        snprintf(res->found, FOUND_MAX, "INVALID%s index on %s",
                 unique ? " unique" : "", PQgetvalue(pr, r, 4));
        res->status = "invalid";

    } else if (c->unique && !unique) {
        snprintf(res->found, FOUND_MAX, "valid index on %s, not unique",
                 PQgetvalue(pr, r, 4));
        res->status = "not_done";

    } else {
        snprintf(res->found, FOUND_MAX, "valid%s index on %s",
                 unique ? " unique" : "", PQgetvalue(pr, r, 4));
        res->status = "done";
    }
}


/* constraints, by name on their table: presence, type, validation */
static void
row_constraint(PGresult *pr, int r, migctl_sql_check_t *c,
    check_result_t *res)
{
    int    tbl, exists, validated;
    char  *contype;

    tbl = PQgetvalue(pr, r, 1)[0] == 't';
    exists = PQgetvalue(pr, r, 2)[0] == 't';
    contype = PQgetvalue(pr, r, 3);
    validated = PQgetvalue(pr, r, 4)[0] == 't';

    if (!c->expect) {
        snprintf(res->expected, sizeof(res->expected), "absent");
        /*
         * without its table, "absent" proves nothing (the table may
         * still be under its old name): not done
         */
        snprintf(res->found, FOUND_MAX, "%s",
                 exists ? "present" : tbl ? "absent" : "table absent");
        res->status = exists || !tbl ? "not_done" : "done";
        return;
    }

    if (c->contype) {
        snprintf(res->expected, sizeof(res->expected), "%s%s",
                 contype_name(c->contype),
                 c->validated ? "" : " (NOT VALID)");
    } else {
        snprintf(res->expected, sizeof(res->expected),
                 "validated constraint");
    }

    if (!exists) {
        snprintf(res->found, FOUND_MAX, "%s",
                 tbl ? "absent" : "absent (no table)");
        res->status = "not_done";
        return;
    }

    snprintf(res->found, FOUND_MAX, "%s%s", contype_name(contype[0]),
             validated ? "" : " (not validated)");

    res->status = (c->contype == 0 || c->contype == contype[0])
                  && (validated || !c->validated)
                  ? "done" : "not_done";
}


/* extensions: presence in pg_extension */
static void
row_extension(PGresult *pr, int r, migctl_sql_check_t *c,
    check_result_t *res)
{
    int  exists;

    exists = PQgetvalue(pr, r, 1)[0] == 't';

    snprintf(res->expected, sizeof(res->expected), "%s",
             c->expect ? "present" : "absent");
    if (exists) {
        snprintf(res->found, FOUND_MAX, "present (version %s)",
                 PQgetvalue(pr, r, 2));
    } else {
        snprintf(res->found, FOUND_MAX, "absent");
    }
    res->status = exists == c->expect ? "done" : "not_done";
}


/* triggers, by name on their table (internal ones left out) */
static void
row_trigger(PGresult *pr, int r, migctl_sql_check_t *c, check_result_t *res)
{
    int  tbl, exists;

    tbl = PQgetvalue(pr, r, 1)[0] == 't';
    exists = PQgetvalue(pr, r, 2)[0] == 't';

    snprintf(res->expected, sizeof(res->expected), "%s",
             c->expect ? "present" : "absent");
    snprintf(res->found, FOUND_MAX, "%s",
             exists ? "present" : tbl ? "absent" : "table absent");

    /* as for constraints: "absent" means something only with a table */
    res->status = exists == c->expect && tbl ? "done" : "not_done";
}


/*
 * Runs one catalog query over every live check of a kind: $1 schemas,
 * $2 tables, $3 names, $4 types, $5 typmods, each an array in check
 * order; the query returns q.i, the 1-based position: (*mapp)[q.i - 1]
 * is the index in plan->checks (the caller frees *mapp).
 * Returns NULL with *rc MIGCTL_OK when there is nothing to check.
 */
static PGresult *
batch(migctl_ctx_t *ctx, PGconn *conn, migctl_sql_plan_t *plan,
    unsigned kinds, const char *what, const char *sql, size_t **mapp,
    int *rc)
{
    int          r;
    char        *params[5], num[16];
    size_t       i, n, k, *map;
    PGresult    *pr, *out;
    const char **col[5];

    *rc = MIGCTL_OK;
    *mapp = NULL;
    out = NULL;
    map = NULL;
    memset(params, 0, sizeof(params));
    memset(col, 0, sizeof(col));

    n = 0;
    for (i = 0; i < plan->nchecks; i++) {
        if (!plan->checks[i].dead && (kinds & KIND(plan->checks[i].kind))) {
            n++;
        }
    }

    if (n == 0) {
        return NULL;
    }

    map = calloc(n, sizeof(size_t));
    for (k = 0; k < 5; k++) {
        col[k] = calloc(n, sizeof(char *));
    }
    if (map == NULL || col[0] == NULL || col[1] == NULL || col[2] == NULL
        || col[3] == NULL || col[4] == NULL)
    {
        *rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    n = 0;
    for (i = 0; i < plan->nchecks; i++) {
        migctl_sql_check_t  *c = &plan->checks[i];

        if (c->dead || !(kinds & KIND(c->kind))) {
            continue;
        }

        map[n] = i;
        col[0][n] = c->schema;
        col[1][n] = c->table;
        col[2][n] = c->name;
        col[3][n] = c->type;
        snprintf(num, sizeof(num), "%d", c->typmod);
        col[4][n] = strdup(num);
        if (col[4][n] == NULL) {
            *rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
            goto done;
        }
        n++;
    }

    for (k = 0; k < 5; k++) {
        params[k] = migctl_db_text_array(col[k], n);
        if (params[k] == NULL) {
            *rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
            goto done;
        }
    }

    pr = migctl_db_exec_params(conn, sql, 5, NULL,
                      (const char *const *) params, NULL, NULL, 0);

    if (PQresultStatus(pr) != PGRES_TUPLES_OK) {
        PQclear(pr);
        *rc = migctl_inspect_query_failed(ctx, conn, what);
        goto done;
    }

    /* from the query's 1-based ordinality back to the plan's index */
    for (r = 0; r < PQntuples(pr); r++) {
        k = (size_t) atol(PQgetvalue(pr, r, 0));
        if (k < 1 || k > n) {
            PQclear(pr);
            *rc = migctl_error(ctx, MIGCTL_PROBLEM,
                               "catalog query returned row %zu of %zu", k,
                               n);
            goto done;
        }
    }

    out = pr;
    *mapp = map;
    map = NULL;

done:

    if (col[4]) {
        for (i = 0; i < n; i++) {
            free((char *) col[4][i]);
        }
    }
    for (k = 0; k < 5; k++) {
        free(params[k]);
        free(col[k]);
    }
    free(map);

    return out;
}


int
migctl_inspect_query_failed(migctl_ctx_t *ctx, PGconn *conn, const char *what)
{
    char  err[512];

    return migctl_error(ctx, migctl_db_fail_code(conn, NULL),
                        "catalog query on %ss failed: %s", what,
                        migctl_db_error(conn, err, sizeof(err)));
}


static const char *
kind_name(int kind)
{
    switch (kind) {
    case MIGCTL_SQL_TABLE:
        return "table";
    case MIGCTL_SQL_COLUMN:
        return "column";
    case MIGCTL_SQL_INDEX:
        return "index";
    case MIGCTL_SQL_CONSTRAINT:
        return "constraint";
    case MIGCTL_SQL_SEQUENCE:
        return "sequence";
    case MIGCTL_SQL_VIEW:
        return "view";
    case MIGCTL_SQL_EXTENSION:
        return "extension";
    default:
        return "trigger";
    }
}


static const char *
contype_name(char t)
{
    switch (t) {
    case 'u':
        return "unique constraint";
    case 'f':
        return "foreign key";
    case 'c':
        return "check constraint";
    case 'p':
        return "primary key";
    case 'x':
        return "exclusion constraint";
    default:
        return "constraint";
    }
}


json_t *
migctl_inspect_jstr(const char *s)
{
    json_t  *v;

    if (s == NULL) {
        return json_null();
    }

    v = json_string(s);

    /* a non-UTF-8 name from a file still prints */
    return v ? v : json_stringn_nocheck(s, strlen(s));
}


static json_t *
jstrn(const char *s, size_t n)
{
    json_t  *v;

    v = json_stringn(s, n);

    return v ? v : json_stringn_nocheck(s, n);
}
