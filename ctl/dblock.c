/*
 * dblock.c: who blocks a query: a second session asks pg_blocking_pids(),
 * and the one line that names the blockers for the operator.
 */

#include <stdlib.h>
#include <string.h>

#include "db.h"


#define DB_LOOKUP_MS        1500    /* bound on one lookup */
#define DB_MSG_QUERY        200     /* bytes of a blocker's query in errors */


static json_t *blocker(PGresult *res, int r);


/* who blocks us: our backend's ungranted lock, the blockers' on it */
static const char  blockers_sql[] =
    "WITH w AS (SELECT * FROM pg_locks WHERE pid = $1 AND NOT granted"
    "           LIMIT 1)"
    " SELECT a.pid, a.usename, a.application_name, coalesce(a.state, ''),"
    "  round(extract(epoch FROM now() - coalesce(a.xact_start,"
    "        a.query_start, a.backend_start)))::bigint,"
    "  coalesce(l.mode, ''), coalesce(l.granted, true),"
    "  coalesce((SELECT quote_ident(n.nspname) || '.'"
    "                   || quote_ident(c.relname)"
    "            FROM pg_class c JOIN pg_namespace n"
    "              ON n.oid = c.relnamespace WHERE c.oid = w.relation),"
    "           CASE w.locktype WHEN 'transactionid'"
    "             THEN 'transaction ' || w.transactionid"
    "             WHEN 'relation' THEN 'relation ' || w.relation"
    "             ELSE w.locktype END, ''),"
    "  coalesce(a.query, ''), coalesce(a.datname, ''),"
    "  pg_blocking_pids(a.pid)::text"
    " FROM unnest(pg_blocking_pids($1)) AS b(pid)"
    " JOIN pg_stat_activity a ON a.pid = b.pid"
    " LEFT JOIN w ON true"
    " LEFT JOIN LATERAL (SELECT l.mode, l.granted FROM pg_locks l"
    "   WHERE l.pid = b.pid AND l.locktype = w.locktype"
    "     AND l.database IS NOT DISTINCT FROM w.database"
    "     AND l.relation IS NOT DISTINCT FROM w.relation"
    "     AND l.page IS NOT DISTINCT FROM w.page"
    "     AND l.tuple IS NOT DISTINCT FROM w.tuple"
    "     AND l.virtualxid IS NOT DISTINCT FROM w.virtualxid"
    "     AND l.transactionid IS NOT DISTINCT FROM w.transactionid"
    "     AND l.classid IS NOT DISTINCT FROM w.classid"
    "     AND l.objid IS NOT DISTINCT FROM w.objid"
    "     AND l.objsubid IS NOT DISTINCT FROM w.objsubid"
    "   ORDER BY l.granted DESC, array_position(ARRAY['AccessExclusiveLock',"
    "     'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock',"
    "     'ShareUpdateExclusiveLock', 'RowExclusiveLock', 'RowShareLock',"
    "     'AccessShareLock'], l.mode::text)"
    "   LIMIT 1) l ON true"
    " ORDER BY a.pid";


/*
 * A second, short-lived session with the same connection parameters asks
 * who blocks backend_pid (conn's on the server); the answer is appended
 * to into.  Bounded by DB_LOOKUP_MS and deadline; any failure adds nothing.
 */
void
migctl_db_blockers(PGconn *conn, int backend_pid, long long deadline,
    json_t *into)
{
    int                 i, n, r;
    char                pid[16];
    PGconn             *c;
    PGresult           *res;
    long long           end;
    const char         *keys[64], *vals[64], *v[1];
    PQconninfoOption   *opts, *o;

    c = NULL;
    res = NULL;
    end = migctl_now_ms() + DB_LOOKUP_MS;
    if (end > deadline) {
        end = deadline;
    }

    opts = PQconninfo(conn);
    if (opts == NULL) {
        return;
    }

    /* host, port, user, database, password, sslmode...: as the first */
    n = 0;
    for (o = opts; o->keyword != NULL && n < 62; o++) {
        if (o->val != NULL && *o->val != '\0'
            && strcmp(o->keyword, "application_name") != 0)
        {
            keys[n] = o->keyword;
            vals[n++] = o->val;
        }
    }
    keys[n] = "application_name";
    vals[n++] = "migctl";
    keys[n] = NULL;
    vals[n] = NULL;

    if (migctl_pg_connect(keys, vals, 0, end, &c) <= 0) {
        goto done;
    }

    snprintf(pid, sizeof(pid), "%d", backend_pid);
    v[0] = pid;

    res = migctl_pg_query(c, blockers_sql, 1, v, end);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        goto done;
    }

    for (r = 0, i = PQntuples(res); r < i; r++) {
        json_array_append_new(into, blocker(res, r));
    }

done:

    PQclear(res);
    PQfinish(c);
    PQconninfoFree(opts);
}


/*
 * A lock or statement timeout: say who blocked us, and for how long, in
 * msg; nothing for other errors without blockers.
 */
void
migctl_db_explain(const PGresult *res, json_t *blockers, long lock_ms,
    long statement_ms, char *msg, size_t len)
{
    int          n, root;
    char         q[DB_MSG_QUERY + 1], err[512];
    size_t       i, k;
    json_t      *b, *p;
    const char  *state, *rel, *mode;

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL) {
        return;
    }

    if (strcmp(state, "55P03") != 0 && strcmp(state, "57014") != 0
        && json_array_size(blockers) == 0)
    {
        return;
    }

    migctl_redact_query(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                        err, sizeof(err), MIGCTL_REDACT_ONELINE);

    n = 0;

    json_array_foreach(blockers, i, b) {
        mode = json_string_value(json_object_get(b, "mode"));
        rel = json_string_value(json_object_get(b, "relation"));
        migctl_redact_query(json_string_value(json_object_get(b, "query")),
                            q, sizeof(q), MIGCTL_REDACT_ONELINE);

        n += snprintf(msg + n, len - n,
                      "%s pid %d (user %s, application %s, %s, %d s, "
                      "%s on %s%s",
                      i ? ";" : "blocked by",
                      (int) json_integer_value(json_object_get(b, "pid")),
                      json_string_value(json_object_get(b, "user")),
                      json_string_value(json_object_get(b, "application")),
                      json_string_value(json_object_get(b, "state")),
                      (int) json_integer_value(json_object_get(b, "seconds")),
                      mode && *mode ? mode : "a lock",
                      rel && *rel ? rel : "?",
                      json_is_true(json_object_get(b, "granted"))
                      ? "" : ", waiting");

        json_array_foreach(json_object_get(b, "waiting_for"), k, p) {
            if ((size_t) n < len) {
                n += snprintf(msg + n, len - n, "%s%d",
                              k ? "," : " behind pid ",
                              (int) json_integer_value(p));
            }
        }

        if ((size_t) n < len) {
            n += snprintf(msg + n, len - n, "): %s", q);
        }

        if ((size_t) n >= len) {
            break;
        }
    }

    if ((size_t) n >= len) {
        n = len - 1;
    }

    /* the session to end: the holder, not one queued behind it */
    b = json_array_get(blockers, 0);
    p = json_array_get(json_object_get(b, "waiting_for"), 0);
    root = (int) json_integer_value(p ? p : json_object_get(b, "pid"));

    if (strcmp(state, "55P03") == 0 && n > 0) {
        snprintf(msg + n, len - n,
                 ": gave up after lock_timeout %g s (%s): retry when that"
                 " session is done (migctl locks shows who waits for"
                 " whom), or end it: SELECT pg_terminate_backend(%d)",
                 lock_ms / 1000.0, err, root);

    } else if (strcmp(state, "55P03") == 0) {
        snprintf(msg, len,
                 "gave up after lock_timeout %g s (%s); the blocker was"
                 " gone before it could be named: retry, or see migctl"
                 " locks", lock_ms / 1000.0, err);

    } else if (strcmp(state, "57014") == 0) {
        snprintf(msg + n, len - n,
                 "%s%s (statement_timeout %g s, lock_timeout %g s): retry"
                 " when the database is less busy, or raise"
                 " --statement-timeout", n ? ": " : "", err,
                 statement_ms / 1000.0, lock_ms / 1000.0);

    } else {
        snprintf(msg + n, len - n, ": %s", err);
    }
}


static json_t *
blocker(PGresult *res, int r)
{
    char         q[MIGCTL_LOCKS_QUERY_MAX + 1], name[256];
    long         v;
    char        *end;
    json_t      *b, *w;
    const char  *s;

    b = json_object();

#define STR(key, col)                                                       \
    migctl_redact_query(PQgetvalue(res, r, col), name, sizeof(name),        \
                        MIGCTL_REDACT_ONELINE);                             \
    json_object_set_new(b, key, json_string(name))

    json_object_set_new(b, "pid", json_integer(atol(PQgetvalue(res, r, 0))));
    STR("user", 1);
    STR("application", 2);
    STR("state", 3);
    json_object_set_new(b, "seconds",
                        json_integer(atol(PQgetvalue(res, r, 4))));
    STR("mode", 5);
    json_object_set_new(b, "granted",
                        json_boolean(PQgetvalue(res, r, 6)[0] == 't'));
    STR("relation", 7);
    STR("database", 9);

#undef STR

    migctl_redact_query(PQgetvalue(res, r, 8), q, sizeof(q),
                        MIGCTL_REDACT_ONELINE);
    json_object_set_new(b, "query", json_string(q));

    /* a queued blocker waits itself: for whom ("{12,34}") */
    w = json_array();
    for (s = strchr(PQgetvalue(res, r, 10), '{'); s && *s && *s != '}'; ) {
        s++;
        v = strtol(s, &end, 10);
        if (end == s) {
            break;
        }
        json_array_append_new(w, json_integer(v));
        s = end;
    }
    json_object_set_new(b, "waiting_for", w);

    return b;
}
