/*
 * cmd_locks.c: migctl locks: blocked and blocking sessions, long and idle
 * in transaction ones, INVALID indexes, the runner lock's holder (read-only).
 */

#include <stdlib.h>
#include <string.h>

#include "db.h"


static int sessions(migctl_ctx_t *ctx, PGconn *conn, int long_secs,
    int all_dbs, json_t *o, int *problem);
static int invalid_indexes(migctl_ctx_t *ctx, PGconn *conn, json_t *o,
    int *problem);
static int runner_lock(migctl_ctx_t *ctx, PGconn *conn, json_t *o);
static json_t *pid_array(const char *text);
static int pid_in(json_t *pids, long pid);
static json_t *session(PGresult *res, int r);
static int failed(migctl_ctx_t *ctx, PGconn *conn, PGresult *res,
    const char *what);
static void print_text(json_t *o);
static void print_sessions(json_t *a, const char *title, int all_dbs);
static void usage(FILE *f);


int
cmd_locks(int argc, char **argv, migctl_ctx_t *ctx)
{
    int      rc, long_secs, all_dbs;
    json_t  *out;
    PGconn  *conn;

    const migctl_opt_t  opts[] = {
        { "--long", MIGCTL_OPT_INT, &long_secs, "seconds", 0, 86400 * 30,
          0 },
        { "--all-databases", MIGCTL_OPT_FLAG, &all_dbs, NULL, 0, 0, 0 },
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    long_secs = MIGCTL_LOCKS_LONG_SECS;
    all_dbs = 0;

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_db_connect(ctx, &conn);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = migctl_locks_query(ctx, conn, long_secs, all_dbs, &out);
    PQfinish(conn);

    return migctl_db_result(ctx, out, rc, print_text);
}


int
migctl_locks_run(migctl_ctx_t *ctx, PGconn *conn, int long_secs,
    json_t **out)
{
    return migctl_locks_query(ctx, conn, long_secs, 0, out);
}


int
migctl_locks_query(migctl_ctx_t *ctx, PGconn *conn, int long_secs,
    int all_dbs, json_t **out)
{
    int      rc, problem;
    json_t  *o;

    *out = NULL;
    problem = 0;

    o = json_object();
    if (o == NULL) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    json_object_set_new(o, "long_seconds", json_integer(long_secs));
    json_object_set_new(o, "all_databases", json_boolean(all_dbs));

    if ((rc = sessions(ctx, conn, long_secs, all_dbs, o, &problem))
        != MIGCTL_OK
        || (rc = invalid_indexes(ctx, conn, o, &problem)) != MIGCTL_OK
        || (rc = runner_lock(ctx, conn, o)) != MIGCTL_OK)
    {
        json_decref(o);
        return rc;
    }

    *out = o;

    return problem ? MIGCTL_PROBLEM : MIGCTL_OK;
}


/*
 * One snapshot of pg_stat_activity: blocked ones (pg_blocking_pids not
 * empty), the sessions they wait for, active queries and idle
 * transactions older than the threshold.  Our own session is left out.
 */
static int
sessions(migctl_ctx_t *ctx, PGconn *conn, int long_secs, int all_dbs,
    json_t *o, int *problem)
{
    int          r, n;
    const char  *params[1];
    json_t      *blocked, *blocking, *lng, *idle, *all, *s, *by, *p;
    PGresult    *res;
    const char  *state;

    params[0] = all_dbs ? "t" : "f";

    /*
     * With each session its lock: the one it waits for, else the
     * strongest it holds on a table (names resolved only in this
     * database: an oid of another one means nothing here).
     */
    res = migctl_db_exec_params(conn,
        "SELECT a.pid, a.usename, a.application_name, a.state,"
        "  coalesce(a.wait_event_type || ':' || a.wait_event, ''),"
        "  pg_blocking_pids(a.pid)::text,"
        "  round(extract(epoch FROM now() - a.query_start)),"
        "  round(extract(epoch FROM now() - a.xact_start)),"
        "  round(extract(epoch FROM now() - a.state_change)),"
        "  a.query,"
        "  coalesce(host(a.client_addr), 'local'),"
        "  coalesce(a.datname, ''), lk.mode, lk.granted, lk.rel"
        " FROM pg_stat_activity a"
        " LEFT JOIN LATERAL (SELECT l.mode, l.granted,"
        "     coalesce(quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
        "       l.locktype || ' ' || coalesce(l.relation::text,"
        "         l.transactionid::text, l.virtualxid, l.objid::text, ''))"
        "       AS rel"
        "   FROM pg_locks l"
        "   LEFT JOIN pg_class c ON c.oid = l.relation AND l.database ="
        "     (SELECT oid FROM pg_database WHERE datname = current_database())"
        "   LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
        "   WHERE l.pid = a.pid AND (NOT l.granted OR (l.locktype = 'relation'"
        "     AND n.nspname IS DISTINCT FROM 'pg_catalog'"
        "     AND c.relkind IS DISTINCT FROM 'i'))"
        "   ORDER BY l.granted, array_position(ARRAY['AccessExclusiveLock',"
        "     'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock',"
        "     'ShareUpdateExclusiveLock', 'RowExclusiveLock', 'RowShareLock',"
        "     'AccessShareLock'], l.mode::text), 3"
        "   LIMIT 1) lk ON true"
        " WHERE a.backend_type = 'client backend'"
        "   AND a.pid <> pg_backend_pid()"
        "   AND ($1::bool OR a.datname = current_database())"
        " ORDER BY a.pid",
        1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return failed(ctx, conn, res, "pg_stat_activity");
    }

    blocked = json_array();
    blocking = json_array();
    lng = json_array();
    idle = json_array();
    all = json_array();
    json_object_set_new(o, "blocked", blocked);
    json_object_set_new(o, "blocking", blocking);
    json_object_set_new(o, "long_running", lng);
    json_object_set_new(o, "idle_in_transaction", idle);

    n = PQntuples(res);

    for (r = 0; r < n; r++) {
        json_array_append_new(all, session(res, r));
    }

    /* every pid some blocked session waits for */
    by = json_array();

    for (r = 0; r < n; r++) {
        s = json_array_get(all, r);
        p = json_object_get(s, "blocked_by");

        if (json_array_size(p) > 0) {
            json_array_append(blocked, s);
            json_array_extend(by, p);
        }
    }

    for (r = 0; r < n; r++) {
        s = json_array_get(all, r);
        state = PQgetvalue(res, r, 3);

        if (pid_in(by, json_integer_value(json_object_get(s, "pid")))) {
            json_array_append(blocking, s);
        }

        if (strcmp(state, "active") == 0 && !PQgetisnull(res, r, 6)
            && atof(PQgetvalue(res, r, 6)) >= long_secs)
        {
            json_array_append(lng, s);
        }

        if (strncmp(state, "idle in transaction", 19) == 0
            && !PQgetisnull(res, r, 8)
            && atof(PQgetvalue(res, r, 8)) >= long_secs)
        {
            json_array_append(idle, s);
        }
    }

    if (json_array_size(blocked) || json_array_size(lng)
        || json_array_size(idle))
    {
        *problem = 1;
    }

    json_decref(by);
    json_decref(all);
    PQclear(res);

    return MIGCTL_OK;
}


static json_t *
session(PGresult *res, int r)
{
    char     query[MIGCTL_LOCKS_QUERY_MAX + 1], name[256];
    json_t  *s, *l;

    s = json_object();

    /* names come from clients: escaped like any text for a terminal */
#define STR(key, col)                                                       \
    migctl_redact_query(PQgetvalue(res, r, col), name, sizeof(name),        \
                        MIGCTL_REDACT_ONELINE);                             \
    json_object_set_new(s, key, json_string(name))

#define SECS(key, col)                                                      \
    json_object_set_new(s, key, PQgetisnull(res, r, col) ? json_null()      \
                        : json_integer(atol(PQgetvalue(res, r, col))))

    json_object_set_new(s, "pid", json_integer(atol(PQgetvalue(res, r, 0))));
    STR("database", 11);
    STR("user", 1);
    STR("application", 2);
    STR("client", 10);
    STR("state", 3);
    STR("wait_event", 4);
    json_object_set_new(s, "blocked_by", pid_array(PQgetvalue(res, r, 5)));
    SECS("seconds", 6);
    SECS("transaction_seconds", 7);
    SECS("state_seconds", 8);

    if (PQgetisnull(res, r, 12)) {
        json_object_set_new(s, "lock", json_null());

    } else {
        l = json_object();
        migctl_redact_query(PQgetvalue(res, r, 12), name, sizeof(name),
                            MIGCTL_REDACT_ONELINE);
        json_object_set_new(l, "mode", json_string(name));
        migctl_redact_query(PQgetvalue(res, r, 14), name, sizeof(name),
                            MIGCTL_REDACT_ONELINE);
        json_object_set_new(l, "relation", json_string(name));
        json_object_set_new(l, "granted",
                            json_boolean(PQgetvalue(res, r, 13)[0] == 't'));
        json_object_set_new(s, "lock", l);
    }

#undef STR
#undef SECS

    /*
     * a session's last query may carry a password (ALTER ROLE ... PASSWORD
     * '...', a conninfo "password=..."): redacted, then cut, one line
     */
    migctl_redact_query(PQgetvalue(res, r, 9), query, sizeof(query),
                        MIGCTL_REDACT_ONELINE);
    json_object_set_new(s, "query", json_string(query));

    return s;
}


static int
invalid_indexes(migctl_ctx_t *ctx, PGconn *conn, json_t *o, int *problem)
{
    int        r, building;
    json_t    *a, *e;
    PGresult  *res;

    /* an index being built CONCURRENTLY is INVALID until it is done */
    res = migctl_db_exec(conn,
        "SELECT n.nspname, t.relname, c.relname,"
        "  EXISTS (SELECT 1 FROM pg_stat_progress_create_index p"
        "          WHERE p.index_relid = i.indexrelid"
        "             OR (p.index_relid = 0 AND p.relid = i.indrelid))"
        " FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE NOT i.indisvalid"
        " ORDER BY 1, 2, 3");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return failed(ctx, conn, res, "pg_index");
    }

    a = json_array();
    json_object_set_new(o, "invalid_indexes", a);

    for (r = 0; r < PQntuples(res); r++) {
        building = PQgetvalue(res, r, 3)[0] == 't';

        e = json_object();
        json_object_set_new(e, "schema", json_string(PQgetvalue(res, r, 0)));
        json_object_set_new(e, "table", json_string(PQgetvalue(res, r, 1)));
        json_object_set_new(e, "index", json_string(PQgetvalue(res, r, 2)));
        json_object_set_new(e, "being_built", json_boolean(building));
        json_array_append_new(a, e);

        if (!building) {
            *problem = 1;
        }
    }

    PQclear(res);

    return MIGCTL_OK;
}


/* who holds MIGCTL_RUNNER_LOCK_KEY in this database, who waits for it */
static int
runner_lock(migctl_ctx_t *ctx, PGconn *conn, json_t *o)
{
    int          r;
    char         classid[16], objid[16];
    json_t      *l, *waiting, *h;
    PGresult    *res;
    const char  *params[2];

    snprintf(classid, sizeof(classid), "%u", MIGCTL_RUNNER_LOCK_CLASSID);
    snprintf(objid, sizeof(objid), "%u", MIGCTL_RUNNER_LOCK_OBJID);
    params[0] = classid;
    params[1] = objid;

    res = migctl_db_exec_params(conn,
        "SELECT l.pid, l.granted, a.usename, a.application_name,"
        "  coalesce(host(a.client_addr), 'local'),"
        "  round(extract(epoch FROM now() - a.backend_start)),"
        "  a.state"
        " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.classid = $1::oid"
        "   AND l.objid = $2::oid AND l.objsubid = 1"
        "   AND l.database = (SELECT oid FROM pg_database"
        "                     WHERE datname = current_database())"
        " ORDER BY l.granted DESC, l.pid",
        2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return failed(ctx, conn, res, "pg_locks");
    }

    l = json_object();
    waiting = json_array();
    h = NULL;

    json_object_set_new(l, "key", json_integer(MIGCTL_RUNNER_LOCK_KEY));

    for (r = 0; r < PQntuples(res); r++) {
        if (PQgetvalue(res, r, 1)[0] != 't') {
            json_array_append_new(waiting,
                                  json_integer(atol(PQgetvalue(res, r, 0))));
            continue;
        }

        h = json_object();
        json_object_set_new(h, "pid", json_integer(atol(PQgetvalue(res, r,
                                                                   0))));
        json_object_set_new(h, "user", json_string(PQgetvalue(res, r, 2)));
        json_object_set_new(h, "application",
                            json_string(PQgetvalue(res, r, 3)));
        json_object_set_new(h, "client", json_string(PQgetvalue(res, r, 4)));
        json_object_set_new(h, "seconds",
                            PQgetisnull(res, r, 5)
                            ? json_null()
                            : json_integer(atol(PQgetvalue(res, r, 5))));
        json_object_set_new(h, "state", json_string(PQgetvalue(res, r, 6)));
    }

    json_object_set_new(l, "held", json_boolean(h != NULL));
    json_object_set_new(l, "holder", h ? h : json_null());
    json_object_set_new(l, "waiting", waiting);
    json_object_set_new(o, "runner_lock", l);

    PQclear(res);

    return MIGCTL_OK;
}


/* "{12,34}" from pg_blocking_pids()::text */
static json_t *
pid_array(const char *text)
{
    long     v;
    char    *end;
    json_t  *a;

    a = json_array();

    for (text = strchr(text, '{'); text && *text && *text != '}'; ) {
        text++;
        v = strtol(text, &end, 10);
        if (end == text) {
            break;
        }
        json_array_append_new(a, json_integer(v));
        text = end;
    }

    return a;
}


static int
pid_in(json_t *pids, long pid)
{
    size_t   i;
    json_t  *v;

    json_array_foreach(pids, i, v) {
        if (json_integer_value(v) == pid) {
            return 1;
        }
    }

    return 0;
}


static int
failed(migctl_ctx_t *ctx, PGconn *conn, PGresult *res, const char *what)
{
    int  rc;

    /* a read that failed found nothing: never exit 1 */
    rc = migctl_db_failed(ctx, conn, res, what);
    PQclear(res);

    return rc;
}


static void
print_text(json_t *o)
{
    int      all, long_secs;
    size_t   i;
    json_t  *l, *h, *a, *e, *v;
    char     title[96];

    l = json_object_get(o, "runner_lock");
    h = json_object_get(l, "holder");

    if (json_is_object(h)) {
        printf("runner lock: HELD by pid %d (user %s, application %s, "
               "client %s, session %.0f s, %s)",
               (int) json_integer_value(json_object_get(h, "pid")),
               json_string_value(json_object_get(h, "user")),
               json_string_value(json_object_get(h, "application")),
               json_string_value(json_object_get(h, "client")),
               json_number_value(json_object_get(h, "seconds")),
               json_string_value(json_object_get(h, "state")));
    } else {
        printf("runner lock: free");
    }

    a = json_object_get(l, "waiting");
    if (json_array_size(a)) {
        printf("; waiting:");
        json_array_foreach(a, i, v) {
            printf(" %d", (int) json_integer_value(v));
        }
    }
    printf("\n");

    all = json_is_true(json_object_get(o, "all_databases"));
    long_secs = (int) json_integer_value(json_object_get(o, "long_seconds"));

    print_sessions(json_object_get(o, "blocked"), "blocked sessions", all);
    print_sessions(json_object_get(o, "blocking"), "blocking sessions", all);

    snprintf(title, sizeof(title), "long-running queries (>= %d s)",
             long_secs);
    print_sessions(json_object_get(o, "long_running"), title, all);

    snprintf(title, sizeof(title), "idle in transaction (>= %d s)",
             long_secs);
    print_sessions(json_object_get(o, "idle_in_transaction"), title, all);

    a = json_object_get(o, "invalid_indexes");
    printf("INVALID indexes (%zu):%s\n", json_array_size(a),
           json_array_size(a) ? "" : " none");

    json_array_foreach(a, i, e) {
        printf("  %s.%s on %s%s\n",
               json_string_value(json_object_get(e, "schema")),
               json_string_value(json_object_get(e, "index")),
               json_string_value(json_object_get(e, "table")),
               json_is_true(json_object_get(e, "being_built"))
               ? " (being built now)" : "");
    }
}


static void
print_sessions(json_t *a, const char *title, int all_dbs)
{
    size_t   i, k;
    json_t  *s, *v, *l, *secs;
    char     by[128], lock[256], sec[24];
    int      n;

    printf("%s (%zu):%s\n", title, json_array_size(a),
           json_array_size(a) ? "" : " none");

    if (json_array_size(a) == 0) {
        return;
    }

    printf("  %-8s ", "PID");
    if (all_dbs) {
        printf("%-16s ", "DATABASE");
    }
    printf("%-12s %-16s %-21s %-20s %7s %-12s %-40s %s\n", "USER",
           "APPLICATION", "STATE", "WAIT", "SECS", "BLOCKED BY", "LOCK",
           "QUERY");

    json_array_foreach(a, i, s) {
        n = 0;
        by[0] = '\0';
        json_array_foreach(json_object_get(s, "blocked_by"), k, v) {
            if (n < (int) sizeof(by) - 16) {
                n += snprintf(by + n, sizeof(by) - n, "%s%d", k ? "," : "",
                              (int) json_integer_value(v));
            }
        }

        /* "AccessExclusiveLock on public.t", "waits ShareLock on ..." */
        l = json_object_get(s, "lock");
        if (json_is_object(l)) {
            snprintf(lock, sizeof(lock), "%s%s on %s",
                     json_is_true(json_object_get(l, "granted"))
                     ? "" : "waits ",
                     json_string_value(json_object_get(l, "mode")),
                     json_string_value(json_object_get(l, "relation")));
        } else {
            snprintf(lock, sizeof(lock), "-");
        }

        secs = json_object_get(s, "transaction_seconds");
        if (json_is_null(secs)) {
            secs = json_object_get(s, "seconds");
        }
        snprintf(sec, sizeof(sec), json_is_integer(secs) ? "%lld" : "-",
                 (long long) json_integer_value(secs));

        printf("  %-8d ", (int) json_integer_value(json_object_get(s, "pid")));
        if (all_dbs) {
            printf("%-16.16s ",
                   json_string_value(json_object_get(s, "database")));
        }
        printf("%-12.12s %-16.16s %-21.21s %-20.20s %7s %-12s %-40s %s\n",
               json_string_value(json_object_get(s, "user")),
               json_string_value(json_object_get(s, "application")),
               json_string_value(json_object_get(s, "state")),
               json_string_value(json_object_get(s, "wait_event")),
               sec,
               by[0] ? by : "-", lock,
               json_string_value(json_object_get(s, "query")));
    }
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] locks [--long SECONDS] [--all-databases]\n"
        "\n"
        "Read-only: blocked sessions and who blocks them\n"
        "(pg_blocking_pids), long-running and idle-in-transaction sessions,\n"
        "each with the lock it waits for or its strongest table lock and\n"
        "its query (1000 bytes, passwords redacted), INVALID indexes\n"
        "anywhere, and the holder of the runner advisory lock (key %lld)\n"
        "that migctl run takes (never taken here).\n"
        "\n"
        "options:\n"
        "  --long SECONDS          threshold for long-running queries and\n"
        "                          idle transactions (default %d)\n"
        "  --all-databases         sessions of every database (default:\n"
        "                          this one), with a DATABASE column\n",
        (long long) MIGCTL_RUNNER_LOCK_KEY, MIGCTL_LOCKS_LONG_SECS);

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_DB_OPTS,
        "0 ok;1 a session is blocked or past the threshold, or an INVALID"
        " index (not one being built) exists;2;3",
        "migctl locks --long 30");
}
