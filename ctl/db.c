/*
 * db.c: migctl's libpq sessions: connect with timeouts and keepalives, the
 * query wrapper with a client-side deadline that names who blocks a query.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"


#define DB_MARGIN_MS        500     /* client deadline past statement_timeout */
#define DB_CANCEL_MS        400     /* bound on delivering a cancel */
#define DB_BLOCKER_MS       500     /* waiting longer: look up the blocker */
#define DB_LOOKUP_MS        1500    /* bound on one lookup */
#define DB_LOOKUP_EVERY_MS  1000
#define DB_LOOKUPS          5       /* lookups per query at most */
#define DB_MSG_QUERY        200     /* bytes of a blocker's query in errors */


typedef struct {
    long        lock_ms;
    long        statement_ms;
    long        connect_ms;
    PGconn     *conn;               /* the connection msg is about */
    char        msg[1024];          /* the wrapper's own error, or "" */
    char        sqlstate[6];        /* of its last failed query, or "" */
    char        resmsg[512];        /* that query's error, or "" */
    json_t     *blockers;           /* of the last query, owned here */
    PGconn     *pid_conn;           /* the server's pid of this one, */
    int         backend_pid;        /* asked when a pooler is between */
} migctl_db_t;


static PGresult *exec(PGconn *conn, const char *command, int params,
    int nparams, const Oid *types, const char *const *values,
    const int *lengths, const int *formats, int result_format);
static PGresult *gave_up(PGconn *conn, PGcancel *cancel, long long start);
static PGresult *set_timeouts(PGconn *conn, long lock_ms, long statement_ms);
static void explain(PGconn *conn, PGresult *res);
static void lookup_blockers(PGconn *conn, long long deadline);
static json_t *blocker(PGresult *res, int r);
static int connect_async(const char *const *keys, const char *const *vals,
    int expand, long long deadline, PGconn **out);
static int wait_socket(PGconn *c, int write, long long deadline);
static PGresult *query_until(PGconn *c, const char *q, int n,
    const char *const *v, long long deadline);
static void cancel_bounded(PGcancel *cancel);
static const char *connect_sqlstate(const char *msg, char *state);
static void clean_connect_error(const char *in, char *out, size_t len);
static const char *host_of(PGconn *c, char *buf, size_t len);
static void install_handlers(void);
static void on_signal(int sig);
static void set_inflight(PGcancel *c);
static long env_seconds_ms(const char *name);


static migctl_db_t  db = {
    MIGCTL_DB_LOCK_TIMEOUT_MS, MIGCTL_DB_STATEMENT_TIMEOUT_MS,
    MIGCTL_DB_CONNECT_TIMEOUT_MS, NULL, "", "", "", NULL, NULL, 0
};

/* the cancel of the query in flight: the signal handler sends it */
static PGcancel *volatile  inflight;
static int                 handlers;
static struct sigaction    old_int, old_term;

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


int
migctl_db_connect(migctl_ctx_t *ctx, PGconn **conn)
{
    int           n, rc, code, startup;
    char          err[1024], msg[1024], host[300], state[6];
    char          connect_s[32], idle[32], interval[32], count[32],
                  user_timeout[32];
    char         *perr, *options;
    PGconn       *c;
    PGresult     *res;
    long long     deadline;
    const char   *url, *keys[12], *vals[12], *user_options;
    migctl_conf_t *cf;
    PQconninfoOption  *opts, *o;

    *conn = NULL;
    cf = &ctx->conf;
    c = NULL;
    res = NULL;
    options = NULL;
    opts = NULL;

    db.lock_ms = ctx->lock_timeout_ms ? ctx->lock_timeout_ms
                                      : cf->db_lock_timeout_ms;
    db.statement_ms = ctx->statement_timeout_ms ? ctx->statement_timeout_ms
                                                : cf->db_statement_timeout_ms;
    db.connect_ms = cf->db_connect_timeout_ms;
    if (!cf->db_connect_timeout_set && env_seconds_ms("PGCONNECT_TIMEOUT") > 0)
    {
        db.connect_ms = env_seconds_ms("PGCONNECT_TIMEOUT");
    }
    db.conn = NULL;
    db.msg[0] = '\0';
    db.pid_conn = NULL;

    url = getenv("DATABASE_URL");
    if (url != NULL && *url == '\0') {
        url = NULL;
    }

    /* a malformed URL is a configuration error, told without its secret */
    user_options = getenv("PGOPTIONS");

    if (url != NULL && (strchr(url, '=') || strstr(url, "://"))) {
        perr = NULL;
        opts = PQconninfoParse(url, &perr);
        if (opts == NULL) {
            migctl_redact_query(perr ? perr : "out of memory", msg,
                                sizeof(msg), MIGCTL_REDACT_ONELINE);
            PQfreemem(perr);
            return migctl_error(ctx, MIGCTL_USAGE, "DATABASE_URL: %s: fix "
                                "it (postgresql://USER@HOST:PORT/DB, the "
                                "password in ~/.pgpass or PGPASSWORD)", msg);
        }

        for (o = opts; o->keyword != NULL; o++) {
            if (strcmp(o->keyword, "options") == 0 && o->val != NULL) {
                user_options = o->val;
            }
        }
    }

    /*
     * The timeouts travel in the start-up packet (-c, after the user's
     * own options: ours win): no extra query.  A pooler that refuses the
     * options parameter (pgbouncer) gets a SET after the start-up.
     */
    n = strlen(user_options ? user_options : "") + 96;
    options = malloc(n);
    if (options == NULL) {
        PQconninfoFree(opts);
        return migctl_error(ctx, MIGCTL_UNREACHABLE,
                            "cannot connect to PostgreSQL: out of memory");
    }
    snprintf(options, n, "%s%s-c lock_timeout=%ld -c statement_timeout=%ld",
             user_options ? user_options : "",
             user_options && *user_options ? " " : "", db.lock_ms,
             db.statement_ms);
    startup = 1;

    snprintf(connect_s, sizeof(connect_s), "%ld",
             (db.connect_ms + 999) / 1000 < 2 ? 2
             : (db.connect_ms + 999) / 1000);
    snprintf(idle, sizeof(idle), "%ld", cf->db_keepalives_idle_ms / 1000);
    snprintf(interval, sizeof(interval), "%ld",
             cf->db_keepalives_interval_ms / 1000);
    snprintf(count, sizeof(count), "%d", cf->db_keepalives_count);
    snprintf(user_timeout, sizeof(user_timeout), "%ld",
             cf->db_tcp_user_timeout_ms);

    /*
     * dbname last: with expand_dbname its URL or conninfo overrides the
     * settings above; without one everything else comes from PG*.  The
     * keepalives and tcp_user_timeout let the kernel notice a peer that
     * is gone; our own deadlines cover one that is there but silent.
     */
    n = 0;
    keys[n] = "application_name";     vals[n++] = "migctl";
    keys[n] = "connect_timeout";      vals[n++] = connect_s;
    keys[n] = "keepalives";           vals[n++] = "1";
    keys[n] = "keepalives_idle";      vals[n++] = idle;
    keys[n] = "keepalives_interval";  vals[n++] = interval;
    keys[n] = "keepalives_count";     vals[n++] = count;
    keys[n] = "tcp_user_timeout";     vals[n++] = user_timeout;
    if (url != NULL) {
        keys[n] = "dbname";           vals[n++] = url;
    }
    keys[n] = "options";              vals[n++] = options;
    keys[n] = NULL;
    vals[n] = NULL;

    deadline = migctl_now_ms() + db.connect_ms;
    rc = connect_async(keys, vals, 1, deadline, &c);

    if (rc < 0 && c != NULL
        && strstr(PQerrorMessage(c), "unsupported startup parameter"))
    {
        PQfinish(c);
        startup = 0;
        keys[n - 1] = NULL;
        vals[n - 1] = NULL;
        rc = connect_async(keys, vals, 1, deadline, &c);
    }

    if (c == NULL) {
        rc = migctl_error(ctx, MIGCTL_UNREACHABLE,
                          "cannot connect to PostgreSQL: out of memory");
        goto failed;
    }

    if (rc == 0) {                          /* silent: our deadline */
        rc = migctl_error(ctx, MIGCTL_UNREACHABLE,
                          "cannot connect to PostgreSQL: no answer from "
                          "%s within %.1f s (connect_timeout): check that "
                          "the server is up and reachable",
                          host_of(c, host, sizeof(host)),
                          db.connect_ms / 1000.0);
        goto failed;
    }

    if (rc < 0) {
        /*
         * The SQLSTATE of a refusal tells configuration from reach: a
         * wrong password, user or database (28xxx, 3D000) is exit 2;
         * libpq keeps it only in the verbose message.
         */
        code = MIGCTL_UNREACHABLE;
        connect_sqlstate(PQerrorMessage(c), state);

        clean_connect_error(PQerrorMessage(c), err, sizeof(err));

        /* "invalid port number", "invalid sslmode value": before any I/O */
        if (strncmp(state, "28", 2) == 0 || strcmp(state, "3D000") == 0
            || PQconnectionNeedsPassword(c) || strncmp(err, "invalid ", 8) == 0)
        {
            code = MIGCTL_USAGE;
        }

        if (code == MIGCTL_USAGE) {
            rc = migctl_error(ctx, code, "cannot connect to PostgreSQL: %s: "
                              "fix the user, password or database name "
                              "(DATABASE_URL or PGUSER/PGDATABASE, the "
                              "password in ~/.pgpass or PGPASSWORD)", err);
        } else {
            rc = migctl_error(ctx, code, "cannot connect to PostgreSQL: %s: "
                              "check DATABASE_URL or PGHOST/PGPORT/PGUSER/"
                              "PGDATABASE and that the server is up", err);
        }

        goto failed;
    }

    PQsetErrorVerbosity(c, PQERRORS_DEFAULT);
    install_handlers();

    if (!startup) {
        res = set_timeouts(c, db.lock_ms, db.statement_ms);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = migctl_db_failed(ctx, c, res, "setting lock_timeout and "
                                  "statement_timeout");
            goto failed;
        }
    }

    PQclear(res);
    free(options);
    PQconninfoFree(opts);
    *conn = c;

    return MIGCTL_OK;

failed:

    PQclear(res);
    PQfinish(c);
    free(options);
    PQconninfoFree(opts);

    return rc;
}


int
migctl_db_check_django(migctl_ctx_t *ctx, PGconn *conn)
{
    int        rc;
    PGresult  *res;

    res = migctl_db_exec(conn,
                         "SELECT to_regclass('django_migrations') IS NOT NULL,"
                         " current_database(), current_schemas(false)::text");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = migctl_db_failed(ctx, conn, res, "the catalog");
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


PGresult *
migctl_db_exec(PGconn *conn, const char *query)
{
    return exec(conn, query, 0, 0, NULL, NULL, NULL, NULL, 0);
}


PGresult *
migctl_db_exec_params(PGconn *conn, const char *command, int nParams,
    const Oid *paramTypes, const char *const *paramValues,
    const int *paramLengths, const int *paramFormats, int resultFormat)
{
    return exec(conn, command, 1, nParams, paramTypes, paramValues,
                paramLengths, paramFormats, resultFormat);
}


int
migctl_db_set_timeouts(PGconn *conn, long lock_ms, long statement_ms)
{
    int        rc;
    PGresult  *res;

    res = set_timeouts(conn, lock_ms < 0 ? db.lock_ms : lock_ms,
                       statement_ms < 0 ? db.statement_ms : statement_ms);
    rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    PQclear(res);

    return rc;
}


json_t *
migctl_db_last_blockers(void)
{
    if (db.blockers == NULL) {
        db.blockers = json_array();
    }

    return db.blockers;
}


int
migctl_db_fail_code(PGconn *conn, const PGresult *res)
{
    const char  *state;

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        return MIGCTL_UNREACHABLE;
    }

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
          : (conn == db.conn && db.sqlstate[0] ? db.sqlstate : NULL);

    /*
     * The read did not happen: never "a problem found".  Privileges,
     * unknown objects or functions (another PostgreSQL version, the
     * wrong database) are configuration; locks, timeouts, shutdowns,
     * resources are the server not answering.
     */
    if (state != NULL
        && (strncmp(state, "28", 2) == 0 || strncmp(state, "3D", 2) == 0
            || strncmp(state, "42", 2) == 0))
    {
        return MIGCTL_USAGE;
    }

    return MIGCTL_UNREACHABLE;
}


int
migctl_db_failed(migctl_ctx_t *ctx, PGconn *conn, const PGresult *res,
    const char *what)
{
    char  err[1024];

    return migctl_error(ctx, migctl_db_fail_code(conn, res), "reading %s: %s",
                        what, migctl_db_error(conn, err, sizeof(err)));
}


const char *
migctl_db_error(PGconn *conn, char *buf, size_t len)
{
    const char  *m;

    if (conn != NULL && conn == db.conn && db.msg[0] != '\0') {
        snprintf(buf, len, "%s", db.msg);
        return buf;
    }

    if (conn != NULL && conn == db.conn && db.resmsg[0] != '\0'
        && PQstatus(conn) == CONNECTION_OK)
    {
        snprintf(buf, len, "%s", db.resmsg);
        return buf;
    }

    m = conn ? PQerrorMessage(conn) : NULL;
    if (m == NULL || *m == '\0') {
        m = "unknown error";
    }

    /* one line ("\n\tIs the server running ..."), nothing secret */
    migctl_redact_query(m, buf, len, MIGCTL_REDACT_ONELINE);

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


/*
 * PQexec / PQexecParams, asynchronously: the query is sent, then the
 * socket polled against statement_timeout + a margin.  Past a short wait
 * a second session asks pg_blocking_pids() who blocks it; past the
 * deadline the query is canceled and the connection closed (the server
 * went silent).  As PQexec: the last result, an error one if any.
 */
static PGresult *
exec(PGconn *conn, const char *command, int params, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format)
{
    int          sent, busy, want_write, lookups, w;
    PGresult    *res, *r;
    PGcancel    *cancel;
    long long    start, now, deadline, next_lookup;

    db.conn = conn;
    db.msg[0] = '\0';
    db.sqlstate[0] = '\0';
    db.resmsg[0] = '\0';
    json_array_clear(migctl_db_last_blockers());

    if (conn == NULL) {
        return NULL;
    }

    /*
     * Nonblocking from now on: PQsetnonblocking() clears the connection's
     * error message, so it is not switched back after the query (PQexec
     * still blocks on such a connection, as documented).
     */
    if (!PQisnonblocking(conn)) {
        (void) PQsetnonblocking(conn, 1);
    }

    sent = params ? PQsendQueryParams(conn, command, nparams, types, values,
                                      lengths, formats, result_format)
                  : PQsendQuery(conn, command);
    if (!sent) {
        return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    }

    res = NULL;
    cancel = PQgetCancel(conn);
    set_inflight(cancel);

    start = migctl_now_ms();
    deadline = start + (db.statement_ms > 0 ? db.statement_ms
                                            : MIGCTL_DB_TIMEOUT_MAX_MS)
               + DB_MARGIN_MS;
    next_lookup = start + (db.lock_ms > 0 && db.lock_ms / 2 < DB_BLOCKER_MS
                           ? db.lock_ms / 2 : DB_BLOCKER_MS);
    lookups = 0;

    for ( ;; ) {
        want_write = PQflush(conn);           /* 1: more to send */
        if (want_write < 0) {
            want_write = 0;
        }

        busy = PQisBusy(conn);

        if (!busy) {
            r = PQgetResult(conn);
            if (r == NULL) {
                break;
            }

            /* PQexec's rule: the last result, but an error sticks */
            if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR) {
                PQclear(r);
            } else {
                PQclear(res);
                res = r;
            }

            if (PQstatus(conn) != CONNECTION_OK) {
                break;
            }
            continue;
        }

        now = migctl_now_ms();

        if (now >= deadline) {
            PQclear(res);
            res = gave_up(conn, cancel, start);
            break;
        }

        if (now >= next_lookup && lookups < DB_LOOKUPS
            && json_array_size(db.blockers) == 0)
        {
            lookups++;
            lookup_blockers(conn, deadline);
            next_lookup = migctl_now_ms() + DB_LOOKUP_EVERY_MS;
            continue;
        }

        w = wait_socket(conn, want_write,
                        lookups < DB_LOOKUPS && next_lookup < deadline
                        && json_array_size(db.blockers) == 0
                        ? next_lookup : deadline);

        if (w < 0 || PQconsumeInput(conn) == 0) {
            /* the connection is lost: PQgetResult() says how */
            r = PQgetResult(conn);
            if (r == NULL) {
                r = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
            }
            PQclear(res);
            res = r;
            while ((r = PQgetResult(conn)) != NULL) {
                PQclear(r);
            }
            break;
        }
    }

    set_inflight(NULL);
    PQfreeCancel(cancel);

    if (res == NULL) {
        res = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    }

    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        snprintf(db.sqlstate, sizeof(db.sqlstate), "%s",
                 PQresultErrorField(res, PG_DIAG_SQLSTATE)
                 ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "");

        /* the server's own words, without "ERROR:" and the LINE caret */
        if (PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) != NULL) {
            migctl_redact_query(PQresultErrorField(res,
                                                   PG_DIAG_MESSAGE_PRIMARY),
                                db.resmsg, sizeof(db.resmsg),
                                MIGCTL_REDACT_ONELINE);
        }

        if (db.msg[0] == '\0') {
            explain(conn, res);
        }
    }

    return res;
}


/*
 * SET lock_timeout and statement_timeout (0: none, as PostgreSQL's) and
 * move the client deadline with them: the wrapper cannot see a SET
 * statement_timeout of its caller.
 */
static PGresult *
set_timeouts(PGconn *conn, long lock_ms, long statement_ms)
{
    char         lock[32], stmt[32];
    PGresult    *res;
    const char  *params[2];

    snprintf(lock, sizeof(lock), "%ldms", lock_ms);
    snprintf(stmt, sizeof(stmt), "%ldms", statement_ms);
    params[0] = lock;
    params[1] = stmt;

    res = migctl_db_exec_params(conn,
              "SELECT set_config('lock_timeout', $1, false),"
              " set_config('statement_timeout', $2, false),"
              " pg_backend_pid()",
              2, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        db.lock_ms = lock_ms;
        db.statement_ms = statement_ms;

        /* behind a pooler PQbackendPID() is the pooler's, not the server's */
        db.pid_conn = conn;
        db.backend_pid = atoi(PQgetvalue(res, 0, 2));
    }

    return res;
}


/*
 * The server accepted the query and said nothing until the deadline:
 * cancel it (bounded: the cancel goes to the same silent server), close
 * the connection, and keep a message naming the host.
 */
static PGresult *
gave_up(PGconn *conn, PGcancel *cancel, long long start)
{
    char       host[300];
    PGresult  *r, *res;

    cancel_bounded(cancel);

    snprintf(db.msg, sizeof(db.msg),
             "no answer from %s within %.1f s (statement_timeout %.1f s"
             " + %.1f s): the server went silent; the query was canceled"
             " and the connection closed: check the server's load, disk"
             " and network, then retry",
             host_of(conn, host, sizeof(host)),
             (migctl_now_ms() - start) / 1000.0, db.statement_ms / 1000.0,
             DB_MARGIN_MS / 1000.0);

    /* EOF on the next read: libpq marks the connection bad itself */
    (void) shutdown(PQsocket(conn), SHUT_RDWR);

    res = NULL;
    (void) PQconsumeInput(conn);
    while ((r = PQgetResult(conn)) != NULL) {
        PQclear(res);
        res = r;
        if (PQstatus(conn) != CONNECTION_OK) {
            break;
        }
    }

    if (res == NULL || PQresultStatus(res) != PGRES_FATAL_ERROR) {
        PQclear(res);
        res = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    }

    return res;
}


/* a lock or statement timeout: say who blocked us, and for how long */
static void
explain(PGconn *conn, PGresult *res)
{
    int          n, root;
    char         q[DB_MSG_QUERY + 1], err[512];
    size_t       i, k;
    json_t      *b, *p;
    const char  *state, *rel, *mode;

    (void) conn;

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL) {
        return;
    }

    if (strcmp(state, "55P03") != 0 && strcmp(state, "57014") != 0
        && json_array_size(db.blockers) == 0)
    {
        return;
    }

    migctl_redact_query(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                        err, sizeof(err), MIGCTL_REDACT_ONELINE);

    n = 0;

    json_array_foreach(db.blockers, i, b) {
        mode = json_string_value(json_object_get(b, "mode"));
        rel = json_string_value(json_object_get(b, "relation"));
        migctl_redact_query(json_string_value(json_object_get(b, "query")),
                            q, sizeof(q), MIGCTL_REDACT_ONELINE);

        n += snprintf(db.msg + n, sizeof(db.msg) - n,
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
            if ((size_t) n < sizeof(db.msg)) {
                n += snprintf(db.msg + n, sizeof(db.msg) - n, "%s%d",
                              k ? "," : " behind pid ",
                              (int) json_integer_value(p));
            }
        }

        if ((size_t) n < sizeof(db.msg)) {
            n += snprintf(db.msg + n, sizeof(db.msg) - n, "): %s", q);
        }

        if ((size_t) n >= sizeof(db.msg)) {
            break;
        }
    }

    if ((size_t) n >= sizeof(db.msg)) {
        n = sizeof(db.msg) - 1;
    }

    /* the session to end: the holder, not one queued behind it */
    b = json_array_get(db.blockers, 0);
    p = json_array_get(json_object_get(b, "waiting_for"), 0);
    root = (int) json_integer_value(p ? p : json_object_get(b, "pid"));

    if (strcmp(state, "55P03") == 0 && n > 0) {
        snprintf(db.msg + n, sizeof(db.msg) - n,
                 ": gave up after lock_timeout %g s (%s): retry when that"
                 " session is done (migctl locks shows who waits for"
                 " whom), or end it: SELECT pg_terminate_backend(%d)",
                 db.lock_ms / 1000.0, err, root);

    } else if (strcmp(state, "55P03") == 0) {
        snprintf(db.msg, sizeof(db.msg),
                 "gave up after lock_timeout %g s (%s); the blocker was"
                 " gone before it could be named: retry, or see migctl"
                 " locks", db.lock_ms / 1000.0, err);

    } else if (strcmp(state, "57014") == 0) {
        snprintf(db.msg + n, sizeof(db.msg) - n,
                 "%s%s (statement_timeout %g s, lock_timeout %g s): retry"
                 " when the database is less busy, or raise"
                 " --statement-timeout", n ? ": " : "", err,
                 db.statement_ms / 1000.0, db.lock_ms / 1000.0);

    } else {
        snprintf(db.msg + n, sizeof(db.msg) - n, ": %s", err);
    }
}


/*
 * A second, short-lived session with the same connection parameters asks
 * who blocks our backend; the answer is kept in db.blockers.  Bounded by
 * DB_LOOKUP_MS and the query's deadline; any failure leaves it empty.
 */
static void
lookup_blockers(PGconn *conn, long long deadline)
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

    if (connect_async(keys, vals, 0, end, &c) <= 0) {
        goto done;
    }

    snprintf(pid, sizeof(pid), "%d", conn == db.pid_conn ? db.backend_pid
                                                         : PQbackendPID(conn));
    v[0] = pid;

    res = query_until(c, blockers_sql, 1, v, end);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        goto done;
    }

    for (r = 0, i = PQntuples(res); r < i; r++) {
        json_array_append_new(db.blockers, blocker(res, r));
    }

done:

    PQclear(res);
    PQfinish(c);
    PQconninfoFree(opts);
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


/*
 * PQconnectStartParams + PQconnectPoll against our own deadline (libpq's
 * connect_timeout counts whole seconds, and only in blocking connects).
 * 1 connected; 0 timed out; -1 refused or failed (*out says why); *out
 * NULL only when out of memory.  Errors come verbose: with the SQLSTATE.
 */
static int
connect_async(const char *const *keys, const char *const *vals, int expand,
    long long deadline, PGconn **out)
{
    int                     w;
    PGconn                 *c;
    PostgresPollingStatusType  st;

    c = PQconnectStartParams(keys, vals, expand);
    *out = c;

    if (c == NULL) {
        return -1;
    }

    PQsetErrorVerbosity(c, PQERRORS_VERBOSE);

    if (PQstatus(c) == CONNECTION_BAD) {
        return -1;
    }

    st = PGRES_POLLING_WRITING;

    for ( ;; ) {
        if (st == PGRES_POLLING_OK) {
            return 1;
        }

        if (st == PGRES_POLLING_FAILED) {
            return -1;
        }

        w = wait_socket(c, st == PGRES_POLLING_WRITING, deadline);
        if (w == 0) {
            return 0;
        }

        st = PQconnectPoll(c);
    }
}


/* 1 ready, 0 the deadline passed, -1 a socket error */
static int
wait_socket(PGconn *c, int write, long long deadline)
{
    int            rc;
    long long      left;
    struct pollfd  pfd;

    for ( ;; ) {
        left = deadline - migctl_now_ms();
        if (left <= 0) {
            return 0;
        }

        pfd.fd = PQsocket(c);
        if (pfd.fd < 0) {
            return -1;
        }
        pfd.events = write ? POLLOUT : POLLIN;
        pfd.revents = 0;

        rc = poll(&pfd, 1, left > 60000 ? 60000 : (int) left);

        if (rc > 0) {
            return 1;
        }

        if (rc < 0 && errno != EINTR) {
            return -1;
        }
    }
}


/* one query on a helper session, or NULL past the deadline */
static PGresult *
query_until(PGconn *c, const char *q, int n, const char *const *v,
    long long deadline)
{
    PGresult  *res, *r;

    if (!PQsendQueryParams(c, q, n, NULL, v, NULL, NULL, 0)) {
        return NULL;
    }

    res = NULL;

    for ( ;; ) {
        while (!PQisBusy(c)) {
            r = PQgetResult(c);
            if (r == NULL) {
                return res;
            }
            PQclear(res);
            res = r;
        }

        if (wait_socket(c, 0, deadline) <= 0 || PQconsumeInput(c) == 0) {
            PQclear(res);
            return NULL;
        }
    }
}


/*
 * PQcancel() waits for the server to close the cancel connection, with
 * no timeout (libpq 15): a silent server would hang it.  It runs in a
 * child that an alarm kills.
 */
static void
cancel_bounded(PGcancel *cancel)
{
    int        status;
    char       err[256];
    pid_t      pid;
    long long  end;

    if (cancel == NULL) {
        return;
    }

    fflush(NULL);

    pid = fork();
    if (pid < 0) {
        return;
    }

    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        alarm(1);
        (void) PQcancel(cancel, err, sizeof(err));
        _exit(0);
    }

    end = migctl_now_ms() + DB_CANCEL_MS;

    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (migctl_now_ms() >= end) {
            kill(pid, SIGKILL);
            (void) waitpid(pid, &status, 0);
            break;
        }
        (void) poll(NULL, 0, 10);
    }
}


/*
 * "FATAL:  28P01:  password authentication failed ..." (verbose): the
 * first SQLSTATE after a severity, or "".
 */
static const char *
connect_sqlstate(const char *msg, char *state)
{
    int          i;
    const char  *p;

    state[0] = '\0';

    for (p = msg; p != NULL && (p = strstr(p, ":  ")) != NULL; p += 3) {
        for (i = 0; i < 5; i++) {
            if (!((p[3 + i] >= '0' && p[3 + i] <= '9')
                  || (p[3 + i] >= 'A' && p[3 + i] <= 'Z')))
            {
                break;
            }
        }

        if (i == 5 && p[8] == ':') {
            memcpy(state, p + 3, 5);
            state[5] = '\0';
            break;
        }
    }

    return state;
}


/* the verbose message without its SQLSTATE and LOCATION: one line */
static void
clean_connect_error(const char *in, char *out, size_t len)
{
    char   *buf, *p, *q, *loc;
    char    state[6];
    size_t  n;

    n = strlen(in);
    buf = malloc(n + 1);
    if (buf == NULL) {
        migctl_redact_query(in, out, len, MIGCTL_REDACT_ONELINE);
        return;
    }
    memcpy(buf, in, n + 1);

    /* "LOCATION:  auth_failed, auth.c:323" up to its line's end */
    while ((loc = strstr(buf, "LOCATION:")) != NULL) {
        q = strchr(loc, '\n');
        memmove(loc, q ? q + 1 : loc + strlen(loc),
                strlen(q ? q + 1 : loc + strlen(loc)) + 1);
    }

    connect_sqlstate(buf, state);
    if (state[0] != '\0') {
        p = strstr(buf, state);
        if (p != NULL && p[5] == ':') {
            q = p + 6;
            while (*q == ' ') {
                q++;
            }
            memmove(p, q, strlen(q) + 1);
        }
    }

    migctl_redact_query(buf, out, len, MIGCTL_REDACT_ONELINE);
    free(buf);
}


/* "127.0.0.1:5432", or the socket path for a Unix socket */
static const char *
host_of(PGconn *c, char *buf, size_t len)
{
    const char  *h, *p;

    h = PQhost(c);
    p = PQport(c);

    if (h == NULL || *h == '\0') {
        h = "localhost";
    }

    if (p == NULL || *p == '\0') {
        p = "5432";
    }

    if (h[0] == '/') {
        snprintf(buf, len, "%s/.s.PGSQL.%s", h, p);
    } else {
        snprintf(buf, len, "%s:%s", h, p);
    }

    return buf;
}


/*
 * SIGINT/SIGTERM while a query waits: cancel it, so that our backend
 * leaves the lock queue now, not at lock_timeout; then the previous
 * disposition runs (default: exit by that signal).  An ignored signal
 * stays ignored.
 */
static void
install_handlers(void)
{
    struct sigaction  sa;

    if (handlers) {
        return;
    }

    handlers = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);

    if (sigaction(SIGINT, NULL, &old_int) == 0
        && old_int.sa_handler != SIG_IGN)
    {
        (void) sigaction(SIGINT, &sa, NULL);
    }

    if (sigaction(SIGTERM, NULL, &old_term) == 0
        && old_term.sa_handler != SIG_IGN)
    {
        (void) sigaction(SIGTERM, &sa, NULL);
    }
}


static void
on_signal(int sig)
{
    int        saved;
    char       err[256];
    PGcancel  *c;

    saved = errno;
    c = inflight;

    if (c != NULL) {
        /* PQcancel is signal-safe; a silent server must not hang us */
        signal(SIGALRM, SIG_DFL);
        alarm(1);
        (void) PQcancel(c, err, sizeof(err));
        alarm(0);
    }

    /* the signal is blocked in here: raised, it comes to the old one */
    (void) sigaction(sig, sig == SIGINT ? &old_int : &old_term, NULL);
    (void) raise(sig);

    errno = saved;
}


/* signals blocked while the pointer changes: never a freed cancel */
static void
set_inflight(PGcancel *c)
{
    sigset_t  set, old;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    (void) sigprocmask(SIG_BLOCK, &set, &old);
    inflight = c;
    (void) sigprocmask(SIG_SETMASK, &old, NULL);
}


/* an environment variable in seconds (as libpq reads it), in ms; or 0 */
static long
env_seconds_ms(const char *name)
{
    long         v;
    char        *end;
    const char  *s;

    s = getenv(name);
    if (s == NULL || *s == '\0') {
        return 0;
    }

    v = strtol(s, &end, 10);
    if (*end != '\0' || v <= 0 || v > 86400) {
        return 0;
    }

    return v * 1000;
}
