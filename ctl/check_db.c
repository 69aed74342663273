/*
 * check_db.c: the database health checks (invalid_indexes,
 * blocked_sessions, backup by pg_stat_archiver, sql, migrations by plan)
 * on an asynchronous libpq session cancelled at the check's deadline.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "health.h"
#include "verify.h"


#define NAMES_MAX   400                      /* listed in a detail */


static PGconn *db_open(migctl_check_run_t *r);
static PGresult *db_query(migctl_check_run_t *r, PGconn *conn,
    const char *sql, int nparams, const char *const *params);
static int db_wait(migctl_check_run_t *r, PGconn *conn, int forwrite);
static void check_indexes(migctl_check_run_t *r, PGconn *conn);
static void check_blocked(migctl_check_run_t *r, PGconn *conn);
static void check_archiver(migctl_check_run_t *r, PGconn *conn);
static void check_sql(migctl_check_run_t *r, PGconn *conn);
static void check_plan(migctl_check_run_t *r, PGconn *conn);


void
migctl_check_db(migctl_check_run_t *r)
{
    PGconn  *conn;

    r->ok = 0;

    conn = db_open(r);
    if (conn == NULL) {
        return;
    }

    switch (r->ck->type) {

    case MIGCTL_CHECK_INVALID_INDEXES:
        check_indexes(r, conn);
        break;

    case MIGCTL_CHECK_BLOCKED_SESSIONS:
        check_blocked(r, conn);
        break;

    case MIGCTL_CHECK_BACKUP:
        check_archiver(r, conn);
        break;

    case MIGCTL_CHECK_SQL:
        check_sql(r, conn);
        break;

    case MIGCTL_CHECK_MIGRATIONS:
        check_plan(r, conn);
        break;
    }

    PQfinish(conn);
}


static void
check_indexes(migctl_check_run_t *r, PGconn *conn)
{
    int        i, n;
    size_t     len;
    char       names[NAMES_MAX];
    PGresult  *res;

    /* one being built CONCURRENTLY is not done either: fails, named so */
    res = db_query(r, conn,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
        " || ' ON ' || quote_ident(t.relname)"
        " || CASE WHEN EXISTS (SELECT 1 FROM pg_stat_progress_create_index p"
        "          WHERE p.index_relid = i.indexrelid"
        "             OR (p.index_relid = 0 AND p.relid = i.indrelid))"
        "    THEN ' (being built now)' ELSE '' END"
        " FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE NOT i.indisvalid ORDER BY 1", 0, NULL);
    if (res == NULL) {
        return;
    }

    n = PQntuples(res);
    names[0] = '\0';

    for (i = 0; i < n; i++) {
        len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                 PQgetvalue(res, i, 0));
    }

    if (n == 0) {
        snprintf(r->detail, sizeof(r->detail), "no INVALID index");
        r->ok = 1;

    } else {
        snprintf(r->detail, sizeof(r->detail), "%d INVALID index%s: %s: drop"
                 " and rebuild (migctl locks shows builds in progress)", n,
                 n == 1 ? "" : "es", names);
    }

    PQclear(res);
}


static void
check_blocked(migctl_check_run_t *r, PGconn *conn)
{
    int          i, n;
    char         secs[16], one[160], names[NAMES_MAX];
    size_t       len;
    PGresult    *res;
    const char  *params[1];

    snprintf(secs, sizeof(secs), "%d", r->ck->max_wait_s);
    params[0] = secs;

    if (PQserverVersion(conn) >= 140000) {
        /* pg_locks.waitstart: when the wait began */
        res = db_query(r, conn,
            "SELECT l.pid,"
            "  floor(extract(epoch FROM now() - l.waitstart))::int,"
            "  coalesce(nullif(a.application_name, ''), '-'),"
            "  pg_blocking_pids(l.pid)::text"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE NOT l.granted AND l.waitstart IS NOT NULL"
            "   AND l.waitstart < now() - make_interval(secs => $1::int)"
            " ORDER BY l.waitstart", 1, params);

    } else {
        /* before 14: the wait began at or after state_change */
        res = db_query(r, conn,
            "SELECT a.pid,"
            "  floor(extract(epoch FROM now() - a.state_change))::int,"
            "  coalesce(nullif(a.application_name, ''), '-'),"
            "  pg_blocking_pids(a.pid)::text"
            " FROM pg_stat_activity a"
            " WHERE a.wait_event_type = 'Lock'"
            "   AND a.state_change < now() - make_interval(secs => $1::int)"
            " ORDER BY a.state_change", 1, params);
    }
    if (res == NULL) {
        return;
    }

    n = PQntuples(res);
    names[0] = '\0';

    for (i = 0; i < n; i++) {
        snprintf(one, sizeof(one), "pid %s (%s) waiting %s s for %s",
                 PQgetvalue(res, i, 0), PQgetvalue(res, i, 2),
                 PQgetvalue(res, i, 1), PQgetvalue(res, i, 3));
        len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                 one);
    }

    if (n == 0) {
        snprintf(r->detail, sizeof(r->detail), "no session waiting on a"
                 " lock for more than %d s", r->ck->max_wait_s);
        r->ok = 1;

    } else {
        snprintf(r->detail, sizeof(r->detail), "%d session%s waiting on a"
                 " lock for more than %d s: %s: see migctl locks", n,
                 n == 1 ? "" : "s", r->ck->max_wait_s, names);
    }

    PQclear(res);
}


static void
check_archiver(migctl_check_run_t *r, PGconn *conn)
{
    long       age;
    PGresult  *res;

    res = db_query(r, conn,
        "SELECT last_archived_time IS NOT NULL,"
        "  coalesce(floor(extract(epoch FROM now() - last_archived_time)),"
        "           -1)::bigint,"
        "  coalesce(last_archived_wal, ''),"
        "  coalesce(last_failed_wal, ''),"
        "  coalesce(last_failed_time > last_archived_time"
        "           OR (last_archived_time IS NULL"
        "               AND last_failed_time IS NOT NULL), false),"
        "  current_setting('archive_mode')"
        " FROM pg_stat_archiver", 0, NULL);
    if (res == NULL) {
        return;
    }

    if (PQntuples(res) != 1) {
        snprintf(r->detail, sizeof(r->detail), "pg_stat_archiver: no row");
        goto done;
    }

    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        snprintf(r->detail, sizeof(r->detail), "no WAL archived since the"
                 " statistics were reset (archive_mode = %s%s%s)",
                 PQgetvalue(res, 0, 5),
                 PQgetvalue(res, 0, 3)[0] ? ", last failed: " : "",
                 PQgetvalue(res, 0, 3));
        goto done;
    }

    age = strtol(PQgetvalue(res, 0, 1), NULL, 10);

    if (age > (long) r->ck->max_age_min * 60) {
        snprintf(r->detail, sizeof(r->detail), "last WAL archived %ld min"
                 " ago (%s), more than %d min%s%s", age / 60,
                 PQgetvalue(res, 0, 2), r->ck->max_age_min,
                 strcmp(PQgetvalue(res, 0, 4), "t") == 0
                 ? "; archiving fails since: " : "",
                 strcmp(PQgetvalue(res, 0, 4), "t") == 0
                 ? PQgetvalue(res, 0, 3) : "");
        goto done;
    }

    snprintf(r->detail, sizeof(r->detail), "last WAL %s archived %ld s ago",
             PQgetvalue(res, 0, 2), age);
    r->ok = 1;

done:

    PQclear(res);
}


static void
check_sql(migctl_check_run_t *r, PGconn *conn)
{
    const char  *v;
    PGresult    *res;

    res = db_query(r, conn, r->ck->query, 0, NULL);
    if (res == NULL) {
        return;
    }

    if (PQntuples(res) == 0 || PQnfields(res) == 0) {
        snprintf(r->detail, sizeof(r->detail), "no row, want \"%.200s\"",
                 r->ck->expect);
        goto done;
    }

    v = PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0);

    if (strcmp(v, r->ck->expect) != 0) {
        snprintf(r->detail, sizeof(r->detail), "returned \"%.200s\", want"
                 " \"%.200s\"", v, r->ck->expect);
        goto done;
    }

    snprintf(r->detail, sizeof(r->detail), "returned \"%.200s\"", v);
    r->ok = 1;

done:

    PQclear(res);
}


/*
 * The plan file against django_migrations: migctl migrations' own code.
 * With manage, one Django process gives the squashes' replaces lists (and
 * the migrations without a plan), killed at the check's deadline.
 */
static void
check_plan(migctl_check_run_t *r, PGconn *conn)
{
    int          rc, n, django;
    char         names[NAMES_MAX], one[200];
    size_t       i, len;
    json_t      *out, *p, *pending, *doc;
    long long    left;
    const char  *src;

    doc = NULL;

    if (r->ck->manage[0]) {
        left = r->deadline - migctl_now_ms();

        /* no conn: its blocking read of django_migrations has no bound;
           Django gets the checks' environment, without migctl's secrets */
        if (left <= 0
            || migctl_verify_django_env(r->ctx, r->ck->manage, (long) left,
                                        r->envp, &doc) != MIGCTL_OK)
        {
            snprintf(r->detail, sizeof(r->detail), "manage: %.900s",
                     left <= 0 ? "no time left" : r->ctx->error);
            return;
        }
    }

    rc = migctl_migrations_check(r->ctx, conn, r->ck->plan, NULL, doc, NULL,
                                 &out);
    json_decref(doc);

    if (out == NULL) {
        snprintf(r->detail, sizeof(r->detail), "%s", r->ctx->error);
        return;
    }

    src = json_string_value(json_object_get(out, "squash_source"));
    django = src != NULL && strcmp(src, "django") == 0;

    pending = json_object_get(out, "pending");
    n = (int) json_array_size(pending);
    names[0] = '\0';

    json_array_foreach(pending, i, p) {
        snprintf(one, sizeof(one), "%s.%s",
                 json_string_value(json_object_get(p, "app")),
                 json_string_value(json_object_get(p, "name")));
        len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", i ? ", " : "",
                 one);
    }

    if (n) {
        snprintf(r->detail, sizeof(r->detail), "%d pending migration%s: %s",
                 n, n == 1 ? "" : "s", names);

    } else if (rc != MIGCTL_OK) {
        n = (int) json_array_size(json_object_get(out,
                                                  "unknown_to_release"));
        snprintf(r->detail, sizeof(r->detail), "%d recorded migration%s"
                 " unknown to the %s%s: see migctl migrations %s", n,
                 n == 1 ? "" : "s", r->ck->plan ? "plan " : "release",
                 r->ck->plan ? r->ck->plan : "",
                 r->ck->plan ? "--plan" : "--manage");

        if (!django) {
            len = strlen(r->detail);
            snprintf(r->detail + len, sizeof(r->detail) - len, "; squashes"
                     " guessed from names: set manage = \"CMD\" in the"
                     " check (or django.manage) for Django's replaces"
                     " lists");
        }

    } else {
        snprintf(r->detail, sizeof(r->detail), "no pending migration (%zu"
                 " applied%s)", json_array_size(json_object_get(out,
                                                                "applied")),
                 django ? "; squashes from Django" : "");
        r->ok = 1;
    }

    json_decref(out);
}


/*
 * Connects as migctl_db_connect() does (DATABASE_URL, else PG*), without
 * blocking past the deadline; the session is read-only and its statements
 * are bounded by the time left.
 */
static PGconn *
db_open(migctl_check_run_t *r)
{
    int                  n;
    char                 err[512], sql[160];
    long long            left;
    PGconn              *conn;
    PGresult            *res;
    const char          *url, *keys[3], *vals[3];
    PostgresPollingStatusType  st;

    n = 0;
    keys[n] = "application_name";
    vals[n++] = "migctl health";

    url = getenv("DATABASE_URL");
    if (url && *url) {
        keys[n] = "dbname";
        vals[n++] = url;
    }

    keys[n] = NULL;
    vals[n] = NULL;

    conn = PQconnectStartParams(keys, vals, 1);
    if (conn == NULL) {
        snprintf(r->detail, sizeof(r->detail), "out of memory");
        return NULL;
    }

    st = PGRES_POLLING_WRITING;

    while (PQstatus(conn) != CONNECTION_BAD && st != PGRES_POLLING_OK
           && st != PGRES_POLLING_FAILED)
    {
        if (db_wait(r, conn, st == PGRES_POLLING_WRITING) != 0) {
            snprintf(r->detail, sizeof(r->detail), "connecting to"
                     " PostgreSQL: timed out after %d ms",
                     r->ck->timeout_ms);
            PQfinish(conn);
            return NULL;
        }

        st = PQconnectPoll(conn);
    }

    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(r->detail, sizeof(r->detail), "cannot connect to"
                 " PostgreSQL: %s", migctl_db_error(conn, err, sizeof(err)));
        PQfinish(conn);
        return NULL;
    }

    left = r->deadline - migctl_now_ms();
    if (left < 1) {
        left = 1;
    }

    /*
     * A health check reads.  The client cancels at the deadline; the
     * server's own timeouts, a little later, bound what runs without
     * db_query() (migctl_migrations_run()'s PQexec).
     */
    snprintf(sql, sizeof(sql), "SET default_transaction_read_only = on;"
             " SET statement_timeout = %lld; SET lock_timeout = %lld",
             left + 500, left + 500);

    res = db_query(r, conn, sql, 0, NULL);
    if (res == NULL) {
        PQfinish(conn);
        return NULL;
    }

    PQclear(res);

    return conn;
}


/*
 * One statement, sent asynchronously, cancelled at the deadline.  The
 * last result, or NULL with the reason in r->detail.
 */
static PGresult *
db_query(migctl_check_run_t *r, PGconn *conn, const char *sql, int nparams,
    const char *const *params)
{
    int              sent, cancelled;
    char             err[512], cerr[256];
    const char      *state;
    PGcancel        *cn;
    struct pollfd    pfd;
    PGresult        *res, *last;
    ExecStatusType   es;

    if (nparams) {
        sent = PQsendQueryParams(conn, sql, nparams, NULL, params, NULL,
                                 NULL, 0);
    } else {
        sent = PQsendQuery(conn, sql);
    }

    if (!sent) {
        snprintf(r->detail, sizeof(r->detail), "query failed: %s",
                 migctl_db_error(conn, err, sizeof(err)));
        return NULL;
    }

    cancelled = 0;

    while (PQisBusy(conn)) {
        if (!cancelled && db_wait(r, conn, 0) != 0) {
            cn = PQgetCancel(conn);
            if (cn != NULL) {
                (void) PQcancel(cn, cerr, sizeof(cerr));
                PQfreeCancel(cn);
            }
            cancelled = 1;
            continue;
        }

        if (cancelled) {
            /* the server answers a cancel at once; bounded by the grace */
            pfd.fd = PQsocket(conn);
            pfd.events = POLLIN;
            pfd.revents = 0;

            if (poll(&pfd, 1, 500) <= 0) {
                break;
            }
        }

        if (!PQconsumeInput(conn)) {
            break;
        }
    }

    if (cancelled) {
        snprintf(r->detail, sizeof(r->detail), "timed out after %d ms"
                 " (query cancelled)", r->ck->timeout_ms);
        return NULL;
    }

    last = NULL;

    while ((res = PQgetResult(conn)) != NULL) {
        es = PQresultStatus(res);

        if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
            state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

            if (state != NULL && strcmp(state, "57014") == 0) {
                snprintf(r->detail, sizeof(r->detail), "timed out after %d"
                         " ms (query cancelled)", r->ck->timeout_ms);

            } else {
                snprintf(r->detail, sizeof(r->detail), "query failed: %s",
                         migctl_db_error(conn, err, sizeof(err)));
            }

            PQclear(res);
            PQclear(last);
            while ((res = PQgetResult(conn)) != NULL) {
                PQclear(res);
            }
            return NULL;
        }

        PQclear(last);
        last = res;
    }

    if (last == NULL) {
        snprintf(r->detail, sizeof(r->detail), "query failed: %s",
                 migctl_db_error(conn, err, sizeof(err)));
    }

    return last;
}


/* 0 when the socket is ready, -1 at the deadline or on error */
static int
db_wait(migctl_check_run_t *r, PGconn *conn, int forwrite)
{
    int            n;
    long long      left;
    struct pollfd  pfd;

    for ( ;; ) {
        left = r->deadline - migctl_now_ms();
        if (left <= 0) {
            return -1;
        }

        pfd.fd = PQsocket(conn);
        pfd.events = forwrite ? POLLOUT : POLLIN;
        pfd.revents = 0;

        if (pfd.fd < 0) {
            return -1;
        }

        n = poll(&pfd, 1, (int) left);

        if (n > 0) {
            return 0;
        }

        if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
}
