/*
 * db.h: migctl's database engine: the libpq connection, the runner lock
 * key, and the migrations / inspect / locks results that diagnose reuses.
 */

#ifndef MIGCTL_DB_H
#define MIGCTL_DB_H

#include <stdint.h>
#include <libpq-fe.h>
#include <jansson.h>

#include "migctl.h"


/*
 * The runner lock: `migctl run` holds pg_advisory_lock(MIGCTL_RUNNER_LOCK_KEY)
 * (the one-bigint form) on its session while the wrapped migrate runs.
 * The key is "migctl" in ASCII, 0x6d696763746c.  In pg_locks it shows as
 * locktype 'advisory', classid = key >> 32, objid = key & 0xffffffff,
 * objsubid = 1.  `locks` only reads pg_locks: it never takes the lock.
 */
#define MIGCTL_RUNNER_LOCK_KEY      INT64_C(0x6d696763746c)
#define MIGCTL_RUNNER_LOCK_CLASSID  0x6d69u
#define MIGCTL_RUNNER_LOCK_OBJID    0x6763746cu

/* default threshold of `locks` for long-running / idle-in-transaction */
#define MIGCTL_LOCKS_LONG_SECS      60

/* bytes of a session's query `locks` shows, whitespace collapsed */
#define MIGCTL_LOCKS_QUERY_MAX      1000


/*
 * Connects through libpq: DATABASE_URL when set (a postgres:// URL or a
 * conninfo string), else the standard PG* variables.  application_name
 * is "migctl"; the connection (start-up included) must finish within
 * connect_timeout (database.connect_timeout, else PGCONNECT_TIMEOUT, else
 * 5 s); TCP keepalives and tcp_user_timeout are set; lock_timeout and
 * statement_timeout (--lock-timeout, --statement-timeout, else
 * migctl.conf's database section, else 2 s and 30 s) go in the start-up
 * packet after PGOPTIONS (or a SET when a pooler refuses it); SIGINT and
 * SIGTERM then cancel the query in flight.  On failure prints
 * one line (never the password) and returns MIGCTL_USAGE for a refused
 * login or missing database (SQLSTATE 28xxx, 3D000, no password) or a
 * malformed DATABASE_URL, else MIGCTL_UNREACHABLE, with *conn NULL; on
 * success MIGCTL_OK and the caller PQfinish()es *conn.
 */
int migctl_db_connect(migctl_ctx_t *ctx, PGconn **conn);

/*
 * Checks that django_migrations is visible on the search_path.  Returns
 * MIGCTL_OK, or prints "not a Django database ..." and returns
 * MIGCTL_USAGE (exit 2: DATABASE_URL / PG* point at the wrong database;
 * this is a configuration error, not a finding about a Django database),
 * or migctl_db_fail_code()'s code when the query itself fails.
 */
int migctl_db_check_django(migctl_ctx_t *ctx, PGconn *conn);


/*
 * Every *_run() below: returns a MIGCTL_ exit code.  With MIGCTL_OK or
 * MIGCTL_PROBLEM, *out is a new object (the caller json_decref()s it) and
 * nothing has been printed.  With any other code *out is NULL and the one
 * line error has been printed through migctl_error().
 */

/*
 * migrations: plan and prev_plan are paths of `manage.py showmigrations
 * --plan` output ("[X]  app.0001_x" lines) or of plain `showmigrations`
 * output ("app" then " [X] 0001_x" lines), "-" for stdin, or NULL.
 *
 * {"applied": [{"app", "name", "applied_at"}...],      from the database
 *  "plan": true|false,                  plan given (or a document)
 *  "pending": [{"app", "name"}...],                     in plan, not recorded
 *  "unknown_to_release": [{"app", "name"}...],          recorded, not in plan
 *  "previous_plan": true|false,
 *  "unknown_to_previous": [{"app", "name"}...],         recorded, not in prev
 *  "rollback_safe": true|false|null,        null without --previous-plan:
 *                                           true when the previous release
 *                                           knows every recorded migration
 *  "plan_mismatch": [{"app", "name", "plan_says", "database_says"}...],
 *  "replaced_by_squash": [{"app", "name", "squashed_into"}...]}
 *                           recorded, replaced by a squash in the plan
 *                           ("0001_squashed_0004_x" replaces 0001..0004)
 *
 * MIGCTL_PROBLEM when something is pending or unknown to this release.
 */
int migctl_migrations_run(migctl_ctx_t *ctx, PGconn *conn, const char *plan,
    const char *prev_plan, json_t **out);

/*
 * The same with the documents of migctl_verify_django() of this release
 * (doc) and of the previous one (prev_doc), either NULL: a document gives
 * the real replaces lists of its release's squashes (a squash whose
 * replaced migrations are all recorded is applied, as Django has it), and
 * its migrations when no plan file is given.  The result also has
 * "squash_source" and "previous_squash_source": "django" (the lists),
 * "names" (guessed from "N_squashed_M" names) or null (no such release).
 */
int migctl_migrations_check(migctl_ctx_t *ctx, PGconn *conn,
    const char *plan, const char *prev_plan, json_t *doc, json_t *prev_doc,
    json_t **out);

/*
 * inspect: sqlfile is `manage.py sqlmigrate app migration` output ("-"
 * for stdin); app and migration may be NULL (then "recorded" is null).
 *
 * {"file", "app", "migration",
 *  "recorded": true|false|null,                 in django_migrations
 *  "later_recorded": N|null,    migrations of the app recorded after it:
 *                               they may have changed its objects (the
 *                               check is against today's schema)
 *  "verdict": "not_applied" | "partially_applied" | "applied"
 *           | "recorded_but_incomplete" | "applied_unverified",
 *  "verified": true|false,    false when something could not be checked
 *                             (or recorded is unknown): never plain
 *                             "applied" then, but "applied_unverified"
 *  "note": "one line why",
 *  "counts": {"done", "not_done", "invalid", "unverified"},
 *  "atomic": true|false,      the file is wrapped in BEGIN/COMMIT
 *  "objects": [{"stmt": N, "line": L, "operation": "Add field x to y"|null,
 *               "action": "create_table" | "drop_table" | "rename_table"
 *                 | "add_column" | "drop_column" | "rename_column"
 *                 | "alter_column_type" | "set_not_null" | "drop_not_null"
 *                 | "set_default" | "drop_default" | "create_index"
 *                 | "drop_index" | "rename_index" | "add_constraint"
 *                 | "drop_constraint" | "rename_constraint"
 *                 | "validate_constraint" | "create_sequence"
 *                 | "drop_sequence" | "create_view" | "drop_view"
 *                 | "create_extension" | "drop_extension"
 *                 | "create_trigger" | "drop_trigger",
 *               "kind": "table" | "column" | "index" | "constraint"
 *                 | "sequence" | "view" | "extension" | "trigger",
 *               "schema": S|null, "table": T|null, "name": N,
 *               "expected": "present" | "absent" | "type T" | "not null"
 *                 | "nullable" | "default" | "no default" | "valid index"
 *                 | "unique valid index" | "unique constraint"
 *                 | "foreign key" | "check constraint" | "primary key"
 *                 | "exclusion constraint" (+ " (NOT VALID)"),
 *               "type": "character varying(254)",   (an added column:
 *                                       the type it must have; optional)
 *               "found": "...",
 *               "status": "done" | "not_done" | "invalid"}...],
 *  "unverified": [{"stmt": N|null, "line": L, "operation": ...,
 *                  "what": "RunPython" | "operation without SQL"
 *                    | "UPDATE" | "INSERT" | "DO" | "CREATE FUNCTION"
 *                    | "DROP FUNCTION" | "ALTER TABLE AT_..." | ...,
 *                  "sql": "first 200 bytes"|null}]}
 *
 * Verdict: recorded -> applied (every object done, nothing unverified),
 * applied_unverified (done, but something unverified), else
 * recorded_but_incomplete.  Not recorded -> not_applied (no object done
 * and no INVALID leftover) else partially_applied.  recorded null (no
 * --app/--migration) with every object done -> applied_unverified.
 * MIGCTL_OK only for "applied"; MIGCTL_PROBLEM for every other verdict.
 * Garbage SQL or an empty file: MIGCTL_USAGE with libpg_query's message
 * and position.
 *
 * Issue 7: a statement that does not parse is an "unverified" entry
 * ("unparsable statement", with "error"); MIGCTL_USAGE only when none
 * parses.  Not recorded and every object in place: "present_but_unrecorded"
 * (non-atomic with unverified operations: "partially_applied").  An atomic
 * migration that is not recorded is never "partially_applied".  Objects
 * carry "may_hold_before" (drop default, drop not null, IF EXISTS: no
 * proof of progress) and, when not done, "sql" (their statement);
 * "counts" has "progress".  No query takes a lock on a user table.
 */
int migctl_inspect_run(migctl_ctx_t *ctx, PGconn *conn, const char *sqlfile,
    const char *app, const char *migration, json_t **out);

/* the object table of an inspect result, as `migctl inspect` prints it */
void migctl_inspect_print(FILE *f, json_t *result);

/*
 * locks: long_secs is the threshold for long-running queries and
 * idle-in-transaction sessions (MIGCTL_LOCKS_LONG_SECS by default);
 * sessions of the current database, or of all with all_dbs.
 *
 * {"long_seconds": N, "all_databases": bool,
 *  "blocked": [{"pid", "database", "user", "application", "client",
 *               "state", "wait_event", "blocked_by": [pid...],
 *               "seconds" (query age), "transaction_seconds",
 *               "state_seconds" (integers, or null),
 *               "lock": {"mode", "relation", "granted"}|null  (the lock
 *                 it waits for, else its strongest on a table),
 *               "query" (1000 bytes, one line, passwords
 *               redacted)}...],
 *  "blocking": [...same fields...],
 *  "long_running": [...same fields...],     active, query age >= N
 *  "idle_in_transaction": [...same fields...],   idle for >= N
 *  "invalid_indexes": [{"schema", "table", "index", "being_built"}...],
 *  "runner_lock": {"key", "held": true|false,
 *                  "holder": {"pid", "user", "application", "client",
 *                             "seconds", "state"}|null,
 *                  "waiting": [pid...]}}
 *
 * MIGCTL_PROBLEM when a session is blocked, an INVALID index exists (not
 * one being built) or a session passed the threshold.
 */
int migctl_locks_query(migctl_ctx_t *ctx, PGconn *conn, int long_secs,
    int all_dbs, json_t **out);

/* the same, for the current database */
int migctl_locks_run(migctl_ctx_t *ctx, PGconn *conn, int long_secs,
    json_t **out);


/*
 * The query wrapper: PQexec / PQexecParams with the same signatures (a
 * call site converts by renaming).  The query is sent asynchronously
 * and waited for with poll() against statement_timeout + 0.5 s: a server
 * that goes silent gets the query canceled and the connection closed
 * (PQstatus() then says CONNECTION_BAD: exit 3).  A query that waits
 * longer than a moment has its blockers looked up from a second
 * session; a lock timeout (55P03) or statement timeout (57014) then has
 * migctl_db_error() name them: "blocked by pid N (user U, application A,
 * STATE, S s, MODE on SCHEMA.TABLE): QUERY: gave up after lock_timeout
 * ...".  SIGINT/SIGTERM cancel the query in flight before migctl exits.
 */
PGresult *migctl_db_exec(PGconn *conn, const char *query);
PGresult *migctl_db_exec_params(PGconn *conn, const char *command,
    int nParams, const Oid *paramTypes, const char *const *paramValues,
    const int *paramLengths, const int *paramFormats, int resultFormat);

/*
 * SET lock_timeout and statement_timeout on conn (ms; 0: none, as
 * PostgreSQL's; -1: unchanged) and move the wrapper's client deadline
 * with them: a command that must wait longer (`run` waiting for the
 * runner lock) calls this rather than SET statement_timeout itself.
 * 0, or -1 (migctl_db_error() says why).
 */
int migctl_db_set_timeouts(PGconn *conn, long lock_ms, long statement_ms);

/*
 * The blockers of the last wrapped query (empty when none was seen), a
 * json array owned by db.c, valid until the next query: [{"pid", "user",
 * "application", "state", "seconds" (transaction age), "mode", "granted"
 * (false: itself queued), "relation" ("public.t", "transaction N"),
 * "database", "query" (redacted, 1000 bytes), "waiting_for": [pid...]}].
 * inspect can degrade one check to "unverified" with it instead of
 * failing.
 */
json_t *migctl_db_last_blockers(void);

/*
 * The exit code of a failed query: never MIGCTL_PROBLEM (a read that did
 * not happen found nothing).  MIGCTL_USAGE for privileges and unknown
 * objects (28, 3D, 42: the wrong user, database or server version);
 * MIGCTL_UNREACHABLE otherwise (lost connection, lock or statement
 * timeout, shutdown, resources).  res NULL: the last wrapped query's.
 */
int migctl_db_fail_code(PGconn *conn, const PGresult *res);

/* prints "reading WHAT: <migctl_db_error()>" and returns the code above */
int migctl_db_failed(migctl_ctx_t *ctx, PGconn *conn, const PGresult *res,
    const char *what);


/* db.c helpers for the command files */

/*
 * a one-line copy of the last error on conn: the wrapper's own (silent
 * server, blockers named) or libpq's, redacted
 */
const char *migctl_db_error(PGconn *conn, char *buf, size_t len);

/*
 * Builds a PostgreSQL text[] literal ("{\"a\",NULL}") of n strings (NULL
 * elements allowed) into a malloc'ed string; NULL when out of memory.
 */
char *migctl_db_text_array(const char *const *v, size_t n);


/*
 * db.c's lower parts.  pgio.c: libpq without blocking, each call against
 * a deadline in migctl_now_ms() milliseconds.
 */

/* 1 connected; 0 the deadline passed; -1 failed (*out says why, verbose:
 * with the SQLSTATE); *out NULL only when out of memory */
int migctl_pg_connect(const char *const *keys, const char *const *vals,
    int expand, long long deadline, PGconn **out);

/* 1 the socket is ready, 0 the deadline passed, -1 a socket error */
int migctl_pg_wait(PGconn *c, int write, long long deadline);

/* one query's last result, or NULL past the deadline */
PGresult *migctl_pg_query(PGconn *c, const char *q, int n,
    const char *const *v, long long deadline);

/* PQcancel() in a child killed after bound_ms: a silent server would
 * hang it (libpq 15 waits for the server to close, without a timeout) */
void migctl_pg_cancel(PGcancel *cancel, long bound_ms);

/* "host:port", or the socket path, of c for messages */
const char *migctl_pg_host(PGconn *c, char *buf, size_t len);

/*
 * dblock.c: who blocks backend_pid (conn's backend on the server), asked
 * from a second session with conn's parameters, appended to into (the
 * objects of migctl_db_last_blockers()); and the one-line explanation of
 * a lock or statement timeout naming them, in msg.
 */
void migctl_db_blockers(PGconn *conn, int backend_pid, long long deadline,
    json_t *into);
void migctl_db_explain(const PGresult *res, json_t *blockers, long lock_ms,
    long statement_ms, char *msg, size_t len);

/*
 * The end of inspect, locks, migrations and verify: out (NULL: nothing
 * to show, rc already told) as the --json document, else print(out) on
 * stdout; out is released.  Returns the exit code.
 */
int migctl_db_result(migctl_ctx_t *ctx, json_t *out, int rc,
    void (*print)(json_t *out));

#endif /* MIGCTL_DB_H */
