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


/*
 * Connects through libpq: DATABASE_URL when set (a postgres:// URL or a
 * conninfo string), else the standard PG* variables.  application_name
 * is "migctl"; connect_timeout defaults to 5 s unless PGCONNECT_TIMEOUT or
 * the URL says otherwise.  On failure prints one line (never the
 * password) and returns MIGCTL_UNREACHABLE with *conn NULL; on success
 * MIGCTL_OK and the caller PQfinish()es *conn.
 */
int migctl_db_connect(migctl_ctx_t *ctx, PGconn **conn);

/*
 * Checks that django_migrations is visible on the search_path.  Returns
 * MIGCTL_OK, or prints "not a Django database ..." and returns
 * MIGCTL_USAGE (exit 2: DATABASE_URL / PG* point at the wrong database;
 * this is a configuration error, not a finding about a Django database),
 * or MIGCTL_UNREACHABLE when the query itself fails on a lost connection.
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
 *  "plan": true|false,                                  plan given
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
 * idle-in-transaction sessions (MIGCTL_LOCKS_LONG_SECS by default).
 *
 * {"long_seconds": N,
 *  "blocked": [{"pid", "user", "application", "client", "state",
 *               "wait_event", "blocked_by": [pid...],
 *               "seconds" (query age), "transaction_seconds",
 *               "state_seconds", "query" (200 bytes, passwords
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
int migctl_locks_run(migctl_ctx_t *ctx, PGconn *conn, int long_secs,
    json_t **out);


/* db.c helpers for the command files */

/* a one-line copy of libpq's last error message */
const char *migctl_db_error(PGconn *conn, char *buf, size_t len);

/*
 * Builds a PostgreSQL text[] literal ("{\"a\",NULL}") of n strings (NULL
 * elements allowed) into a malloc'ed string; NULL when out of memory.
 */
char *migctl_db_text_array(const char *const *v, size_t n);

#endif /* MIGCTL_DB_H */
