/*
 * db.c: migctl's libpq sessions: connect with timeouts and keepalives, the
 * query wrapper with a client-side deadline that names who blocks a query.
 */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"


#define DB_MARGIN_MS        500     /* client deadline past statement_timeout */
#define DB_CANCEL_MS        400     /* bound on delivering a cancel */
#define DB_BLOCKER_MS       500     /* waiting longer: look up the blocker */
#define DB_LOOKUP_EVERY_MS  1000
#define DB_LOOKUPS          5       /* lookups per query at most */


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
static const char *connect_sqlstate(const char *msg, char *state);
static void clean_connect_error(const char *in, char *out, size_t len);
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
    rc = migctl_pg_connect(keys, vals, 1, deadline, &c);

    if (rc < 0 && c != NULL
        && strstr(PQerrorMessage(c), "unsupported startup parameter"))
    {
        PQfinish(c);
        startup = 0;
        keys[n - 1] = NULL;
        vals[n - 1] = NULL;
        rc = migctl_pg_connect(keys, vals, 1, deadline, &c);
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
                          migctl_pg_host(c, host, sizeof(host)),
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
            migctl_db_blockers(conn, conn == db.pid_conn ? db.backend_pid
                                                  : PQbackendPID(conn),
                               deadline, db.blockers);
            next_lookup = migctl_now_ms() + DB_LOOKUP_EVERY_MS;
            continue;
        }

        w = migctl_pg_wait(conn, want_write,
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
            migctl_db_explain(res, db.blockers, db.lock_ms, db.statement_ms,
                              db.msg, sizeof(db.msg));
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

    migctl_pg_cancel(cancel, DB_CANCEL_MS);

    snprintf(db.msg, sizeof(db.msg),
             "no answer from %s within %.1f s (statement_timeout %.1f s"
             " + %.1f s): the server went silent; the query was canceled"
             " and the connection closed: check the server's load, disk"
             " and network, then retry",
             migctl_pg_host(conn, host, sizeof(host)),
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


int
migctl_db_result(migctl_ctx_t *ctx, json_t *out, int rc,
    void (*print)(json_t *out))
{
    if (out == NULL) {
        return rc;
    }

    if (ctx->json) {
        rc = migctl_json_result(ctx, json_incref(out), rc);

    } else {
        print(out);
    }

    json_decref(out);

    return rc;
}
