/*
 * db.c: migctl's libpq connection (DATABASE_URL or PG* variables) and
 * the small helpers the database commands share.
 */

#include <stdlib.h>
#include <string.h>

#include "db.h"


int
migctl_db_connect(migctl_ctx_t *ctx, PGconn **conn)
{
    int          n;
    char         err[512];
    PGconn      *c;
    const char  *url, *keys[4], *vals[4];

    *conn = NULL;
    n = 0;

    keys[n] = "application_name";
    vals[n++] = "migctl";

    /* an unreachable host must not hang an incident for minutes */
    if (getenv("PGCONNECT_TIMEOUT") == NULL) {
        keys[n] = "connect_timeout";
        vals[n++] = "5";
    }

    /*
     * dbname last: with expand_dbname its URL or conninfo overrides the
     * defaults above; an empty one leaves everything to the PG* variables.
     */
    url = getenv("DATABASE_URL");
    keys[n] = "dbname";
    vals[n++] = (url && *url) ? url : NULL;
    keys[n] = NULL;
    vals[n] = NULL;

    if (vals[n - 1] == NULL) {
        keys[n - 1] = NULL;
    }

    c = PQconnectdbParams(keys, vals, 1);

    if (c == NULL) {
        return migctl_error(ctx, MIGCTL_UNREACHABLE,
                            "cannot connect to PostgreSQL: out of memory");
    }

    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's messages name host and port, never the password */
        migctl_error(ctx, MIGCTL_UNREACHABLE,
                     "cannot connect to PostgreSQL: %s: check DATABASE_URL "
                     "or PGHOST/PGPORT/PGUSER/PGDATABASE and that the "
                     "server is up",
                     migctl_db_error(c, err, sizeof(err)));
        PQfinish(c);
        return MIGCTL_UNREACHABLE;
    }

    *conn = c;

    return MIGCTL_OK;
}


int
migctl_db_check_django(migctl_ctx_t *ctx, PGconn *conn)
{
    int        rc;
    char       err[512];
    PGresult  *res;

    res = PQexec(conn, "SELECT to_regclass('django_migrations') IS NOT NULL,"
                       " current_database(), current_schemas(false)::text");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = migctl_error(ctx, PQstatus(conn) == CONNECTION_OK
                               ? MIGCTL_PROBLEM : MIGCTL_UNREACHABLE,
                          "reading the catalog: %s",
                          migctl_db_error(conn, err, sizeof(err)));
        goto done;
    }

    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rc = migctl_error(ctx, MIGCTL_USAGE,
                          "not a Django database: no django_migrations "
                          "table in database \"%s\" (search_path schemas "
                          "%s): point DATABASE_URL or PG* at the "
                          "application's database",
                          PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
        goto done;
    }

    rc = MIGCTL_OK;

done:

    PQclear(res);

    return rc;
}


const char *
migctl_db_error(PGconn *conn, char *buf, size_t len)
{
    char         c, *p, *q;
    const char  *m;

    m = conn ? PQerrorMessage(conn) : NULL;
    if (m == NULL || *m == '\0') {
        m = "unknown error";
    }

    snprintf(buf, len, "%s", m);

    /* libpq's messages span lines ("\n\tIs the server running ..."): one */
    for (p = buf, q = buf; *p; p++) {
        c = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
        if (c == ' ' && (q == buf || q[-1] == ' ')) {
            continue;
        }
        *q++ = c;
    }

    while (q > buf && q[-1] == ' ') {
        q--;
    }
    *q = '\0';

    return buf;
}


char *
migctl_db_text_array(const char *const *v, size_t n)
{
    char        *a, *p;
    size_t       i, len;
    const char  *s;

    len = 3;
    for (i = 0; i < n; i++) {
        len += 5;                            /* "", NULL, comma */
        for (s = v[i]; s && *s; s++) {
            len += (*s == '"' || *s == '\\') ? 2 : 1;
        }
    }

    a = malloc(len);
    if (a == NULL) {
        return NULL;
    }

    p = a;
    *p++ = '{';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        if (v[i] == NULL) {
            memcpy(p, "NULL", 4);
            p += 4;
            continue;
        }

        *p++ = '"';
        for (s = v[i]; *s; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }
            *p++ = *s;
        }
        *p++ = '"';
    }

    *p++ = '}';
    *p = '\0';

    return a;
}
