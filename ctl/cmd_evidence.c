/*
 * cmd_evidence.c: migctl evidence: the incident bundle a colleague reads
 * afterwards: summary.md first, then the catalog, audit, runs and inputs.
 */

#define _GNU_SOURCE  /* asprintf */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <hiredis/hiredis.h>

#include "migctl.h"
#include "db.h"
#include "evidence.h"
#include "sqlparse.h"
#include "verify.h"


#define EV_RUNS_DEFAULT     5
#define EV_AUDIT_TAIL       200
#define EV_FILE_MAX         (16 * 1024 * 1024)   /* a run file, its tail */
#define EV_DJANGO_TIMEOUT_MS  300000L            /* a Django start-up */


static int parse(ev_t *e, int argc, char **argv);
static int make_dir(ev_t *e);
static int put(ev_t *e, const char *name, const char *text, size_t len);
static int put_json(ev_t *e, const char *name, json_t *v);
static void miss(ev_t *e, const char *what, const char *why);
static void copy_input(ev_t *e, const char *opt, const char *path,
    const char *name);
static void version(ev_t *e);
static void server(ev_t *e);
static void migrations_tail(ev_t *e);
static void locks(ev_t *e);
static void inspect(ev_t *e);
static void schema(ev_t *e);
static void classify(ev_t *e);
static void diagnose(ev_t *e);
static void migrations(ev_t *e);
static void maintenance(ev_t *e);
static void runs(ev_t *e);
static int pack(ev_t *e);
static json_t *rjson(redisReply *r);
static json_t *rpairs(redisReply *r);
static json_t *sql_tables(const char *path);
static void usage(FILE *f);


int
cmd_evidence(int argc, char **argv, migctl_ctx_t *ctx)
{
    int   rc;
    ev_t  e;

    memset(&e, 0, sizeof(ev_t));
    e.ctx = ctx;
    e.nruns = EV_RUNS_DEFAULT;

    rc = parse(&e, argc, argv);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    /* inputs first: a typo must not leave half a bundle */
    if ((e.sql && access(e.sql, R_OK) != 0)
        || (e.traceback && access(e.traceback, R_OK) != 0)
        || (e.plan && access(e.plan, R_OK) != 0)
        || (e.prev_plan && access(e.prev_plan, R_OK) != 0))
    {
        return migctl_error(ctx, MIGCTL_USAGE, "cannot read %s: %s",
                            e.sql && access(e.sql, R_OK) != 0 ? e.sql
                            : e.traceback && access(e.traceback, R_OK) != 0
                              ? e.traceback
                            : e.plan && access(e.plan, R_OK) != 0 ? e.plan
                            : e.prev_plan, strerror(errno));
    }

    rc = make_dir(&e);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    e.missing = json_array();
    e.runs = json_array();

    /*
     * The database: unreachable is written down, the rest still kept.  An
     * incident has locks held: the session's lock_timeout and
     * statement_timeout (migctl_db_connect) bound every read of ours.
     */
    if (migctl_db_connect(ctx, &e.conn) != MIGCTL_OK) {
        miss(&e, "database", ctx->error);
    }

    migctl_secrets_load(ctx, &e.sec, e.conn ? PQpass(e.conn) : NULL);

    version(&e);
    copy_input(&e, "--sql", e.sql, "inputs/migration.sql");
    copy_input(&e, "--traceback", e.traceback, "inputs/traceback.txt");
    copy_input(&e, "--plan", e.plan, "inputs/plan.txt");
    copy_input(&e, "--previous-plan", e.prev_plan,
               "inputs/previous-plan.txt");
    runs(&e);
    maintenance(&e);

    if (e.conn != NULL) {
        server(&e);
        migrations_tail(&e);
        locks(&e);
        migrations(&e);
    }

    classify(&e);

    if (e.conn != NULL) {
        diagnose(&e);
        inspect(&e);
        schema(&e);
    }

    {
        char    *text;
        size_t   len;

        text = migctl_evidence_summary(&e, &len);
        if (text == NULL) {
            miss(&e, "summary.md", "out of memory");
        } else {
            (void) put(&e, "summary.md", text, len);
            free(text);
        }
    }

    rc = MIGCTL_OK;

    if (e.tarball[0]) {
        rc = pack(&e);
    }

    if (rc == MIGCTL_OK) {
        if (json_array_size(e.missing)) {
            rc = MIGCTL_PROBLEM;
            fprintf(stderr, "migctl: evidence: %d part(s) could not be"
                    " collected: see the summary\n",
                    (int) json_array_size(e.missing));
        }

        if (ctx->json) {
            rc = migctl_json_result(ctx, json_pack("{s:s, s:O}", "bundle",
                                    e.tarball[0] ? e.tarball : e.dir,
                                    "missing", e.missing), rc);

        } else {
            printf("evidence: %s\n", e.tarball[0] ? e.tarball : e.dir);
        }
    }

    if (e.conn != NULL) {
        PQfinish(e.conn);
    }

    json_decref(e.missing);
    json_decref(e.runs);
    json_decref(e.insp);
    json_decref(e.cls);
    json_decref(e.diag);
    json_decref(e.locks);
    json_decref(e.state);
    json_decref(e.edges);
    json_decref(e.audit);
    json_decref(e.server);
    json_decref(e.doc);
    json_decref(e.prev_doc);
    json_decref(e.migs);
    migctl_secrets_free(&e.sec);

    return rc;
}


static int
parse(ev_t *e, int argc, char **argv)
{
    int            rc;
    migctl_ctx_t  *ctx = e->ctx;

    const migctl_opt_t  opts[] = {
        MIGCTL_OPT_DB_TIMEOUTS(ctx),
        { "--out", MIGCTL_OPT_STRING, &e->out, "DIR", 0, 0, 0 },
        { "--sql", MIGCTL_OPT_STRING, &e->sql, "FILE", 0, 0, 0 },
        { "--traceback", MIGCTL_OPT_STRING, &e->traceback, "FILE", 0, 0,
          0 },
        { "--plan", MIGCTL_OPT_STRING, &e->plan, "FILE", 0, 0, 0 },
        { "--previous-plan", MIGCTL_OPT_STRING, &e->prev_plan, "FILE", 0,
          0, 0 },
        { "--app", MIGCTL_OPT_STRING, &e->app, "A", 0, 0, 0 },
        { "--migration", MIGCTL_OPT_STRING, &e->migration, "M", 0, 0, 0 },
        { "--runs-dir", MIGCTL_OPT_STRING, &e->runs_dir, "DIR", 0, 0, 0 },
        { "--runs", MIGCTL_OPT_INT, &e->nruns, "N", 0, 100, 0 },
        { "--manage", MIGCTL_OPT_STRING, &e->manage, "CMD", 0, 0, 0 },
        { "--previous-manage", MIGCTL_OPT_STRING, &e->prev_manage, "CMD", 0,
          0, 0 },
        { NULL, 0, NULL, NULL, 0, 0, 0 }
    };

    rc = migctl_opt_parse(ctx, opts, argc, argv, NULL, usage);
    if (rc != MIGCTL_OK) {
        return rc;
    }

    if ((e->app == NULL) != (e->migration == NULL)) {
        return migctl_error(ctx, MIGCTL_USAGE, "--app and --migration go"
                            " together");
    }

    if ((e->sql && strcmp(e->sql, "-") == 0)
        || (e->traceback && strcmp(e->traceback, "-") == 0)
        || (e->plan && strcmp(e->plan, "-") == 0)
        || (e->prev_plan && strcmp(e->prev_plan, "-") == 0))
    {
        return migctl_error(ctx, MIGCTL_USAGE, "evidence reads files, not"
                            " standard input: save it to a file first");
    }

    return MIGCTL_OK;
}


/*
 * --out DIR: the bundle, or inside DIR when it exists; --out F.tar.gz:
 * built beside F, packed, removed.  Default ./migctl-evidence-<time>.
 */
static int
make_dir(ev_t *e)
{
    char           name[128], stamp[64], *slash;
    size_t         len;
    long long      now;
    struct stat    sb;
    migctl_ctx_t  *ctx = e->ctx;

    now = migctl_wall_ms();
    migctl_iso_time(e->ts, sizeof(e->ts), now, 0);
    migctl_iso_time_compact(stamp, sizeof(stamp), now, 0);
    snprintf(name, sizeof(name), "migctl-evidence-%s", stamp);

    len = e->out ? strlen(e->out) : 0;

    if (len > 7 && strcmp(e->out + len - 7, ".tar.gz") == 0) {
        if (len >= sizeof(e->tarball) - 64) {
            return migctl_error(ctx, MIGCTL_USAGE, "--out path too long");
        }

        if (stat(e->out, &sb) == 0) {
            return migctl_error(ctx, MIGCTL_USAGE, "%s exists: give a new"
                                " name", e->out);
        }

        strcpy(e->tarball, e->out);
        strcpy(e->dir, e->out);
        slash = strrchr(e->dir, '/');
        snprintf(slash ? slash + 1 : e->dir,
                 sizeof(e->dir) - (slash ? (size_t) (slash + 1 - e->dir)
                                         : 0),
                 "%s", name);

    } else if (e->out != NULL && stat(e->out, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            return migctl_error(ctx, MIGCTL_USAGE, "--out %s exists and is"
                                " not a directory", e->out);
        }

        if (snprintf(e->dir, sizeof(e->dir), "%s/%s", e->out, name)
            >= (int) sizeof(e->dir))
        {
            return migctl_error(ctx, MIGCTL_USAGE, "--out path too long");
        }

    } else if (e->out != NULL) {
        if (len >= sizeof(e->dir)) {
            return migctl_error(ctx, MIGCTL_USAGE, "--out path too long");
        }
        strcpy(e->dir, e->out);

    } else {
        strcpy(e->dir, name);
    }

    if (stat(e->dir, &sb) == 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "%s exists: give another"
                            " --out", e->dir);
    }

    if (migctl_mkdirs(e->dir, 0700) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "cannot create %s: %s: give"
                            " --out DIR", e->dir, strerror(errno));
    }

    return MIGCTL_OK;
}


/* a file of the bundle, 0600, every known secret scrubbed */
static int
put(ev_t *e, const char *name, const char *text, size_t len)
{
    char  path[MIGCTL_PATH_MAX + 600], *slash;

    snprintf(path, sizeof(path), "%s/%s", e->dir, name);

    slash = strrchr(path, '/');
    if (slash != NULL && slash > path + strlen(e->dir)) {
        *slash = '\0';
        (void) migctl_mkdirs(path, 0700);
        *slash = '/';
    }

    if (migctl_write_scrubbed(&e->sec, path, text, len) != 0) {
        miss(e, name, errno == ENOMEM ? "out of memory" : strerror(errno));
        return -1;
    }

    return 0;
}


static int
put_json(ev_t *e, const char *name, json_t *v)
{
    int    rc;
    char  *t;

    t = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (t == NULL) {
        miss(e, name, "cannot encode");
        return -1;
    }

    rc = put(e, name, t, strlen(t));
    free(t);

    return rc;
}


static void
miss(ev_t *e, const char *what, const char *why)
{
    char  *s;

    s = migctl_scrub(&e->sec, why, strlen(why));
    json_array_append_new(e->missing, json_pack("{s:s, s:s}", "part", what,
                                                "why", s ? s : "?"));
    free(s);
}


static void
copy_input(ev_t *e, const char *opt, const char *path, const char *name)
{
    char    *data, err[512];
    size_t   len;

    if (path == NULL) {
        return;
    }

    if (migctl_read_file(path, &data, &len, err, sizeof(err)) != 0) {
        miss(e, opt, err);
        return;
    }

    (void) put(e, name, data, len);
    free(data);
}


static void
version(ev_t *e)
{
    char            buf[MIGCTL_PATH_MAX + 2048], host[256];
    struct utsname  u;

    if (gethostname(host, sizeof(host) - 1) != 0) {
        strcpy(host, "unknown");
    }
    host[sizeof(host) - 1] = '\0';

    if (uname(&u) != 0) {
        memset(&u, 0, sizeof(u));
    }

    snprintf(buf, sizeof(buf),
             "migctl %s\nbundle written %s\nhost %s\nsystem %s %s %s\n"
             "configuration %s\nscope %s\nprefix %s\n",
             MIG_VERSION, e->ts, host, u.sysname, u.release, u.machine,
             e->ctx->conf.source[0] ? e->ctx->conf.source
                                    : "(built-in defaults)",
             e->ctx->scope, e->ctx->conf.prefix);

    (void) put(e, "version.txt", buf, strlen(buf));
}


/* the server, and the settings that decide how DDL waits */
static void
server(ev_t *e)
{
    int        i, files;
    char       err[512], sql[2048];
    json_t    *s, *set;
    PGresult  *res;

    res = migctl_db_exec(e->conn,
        "SELECT version(), current_database(), current_user,"
        "  (SELECT count(*) FROM pg_stat_activity),"
        "  pg_postmaster_start_time()::text, now()::text");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        miss(e, "server", migctl_db_error(e->conn, err, sizeof(err)));
        PQclear(res);
        return;
    }

    s = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}",
                  "version", PQgetvalue(res, 0, 0),
                  "database", PQgetvalue(res, 0, 1),
                  "user", PQgetvalue(res, 0, 2),
                  "connections", atoi(PQgetvalue(res, 0, 3)),
                  "started", PQgetvalue(res, 0, 4),
                  "now", PQgetvalue(res, 0, 5));
    PQclear(res);

    /*
     * What a new session of this role and database gets.  migctl's own
     * session sends lock_timeout and statement_timeout at start-up
     * (source "client"), which hides them in reset_val: for those, the
     * value is resolved as PostgreSQL does, ALTER ROLE ... IN DATABASE,
     * ALTER ROLE, ALTER DATABASE, then the configuration files (readable
     * by superusers and pg_read_all_settings only), then the default.
     */
    res = migctl_db_exec(e->conn,
        "SELECT has_function_privilege('pg_show_all_file_settings()',"
        " 'EXECUTE')");
    files = PQresultStatus(res) == PGRES_TUPLES_OK
            && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);

    snprintf(sql, sizeof(sql),
        "SELECT s.name, CASE WHEN s.source NOT IN ('client', 'session')"
        "  THEN s.reset_val"
        "  ELSE coalesce("
        "   (SELECT substr(c, length(s.name) + 2)"
        "      FROM pg_db_role_setting d, unnest(d.setconfig) c"
        "     WHERE d.setdatabase IN (0, (SELECT oid FROM pg_database"
        "             WHERE datname = current_database()))"
        "       AND d.setrole IN (0, (SELECT oid FROM pg_roles"
        "             WHERE rolname = current_user))"
        "       AND c LIKE s.name || '=%%'"
        "     ORDER BY d.setrole <> 0 DESC, d.setdatabase <> 0 DESC"
        "     LIMIT 1),"
        "   %s s.boot_val) END,"
        "  coalesce(s.unit, ''),"
        "  CASE WHEN s.source IN ('client', 'session') THEN 'configured'"
        "   ELSE s.source END"
        " FROM pg_settings s"
        " WHERE s.name IN ('lock_timeout', 'statement_timeout',"
        "   'idle_in_transaction_session_timeout', 'max_connections',"
        "   'deadlock_timeout', 'max_locks_per_transaction',"
        "   'server_version', 'default_transaction_isolation',"
        "   'search_path')"
        " ORDER BY s.name",
        files ? "(SELECT f.setting FROM pg_file_settings f"
                " WHERE f.name = s.name AND f.applied"
                " ORDER BY f.seqno DESC LIMIT 1)," : "");

    res = migctl_db_exec(e->conn, sql);

    set = json_object();

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        for (i = 0; i < PQntuples(res); i++) {
            json_object_set_new(set, PQgetvalue(res, i, 0), json_pack(
                "{s:s, s:s, s:s}", "value", PQgetvalue(res, i, 1),
                "unit", PQgetvalue(res, i, 2),
                "source", PQgetvalue(res, i, 3)));
        }

    } else {
        miss(e, "settings", migctl_db_error(e->conn, err, sizeof(err)));
    }

    PQclear(res);

    json_object_set_new(s, "settings", set);
    (void) put_json(e, "server.json", s);
    e->server = s;
}


static void
migrations_tail(ev_t *e)
{
    int        i;
    char       err[512], *t;
    size_t     n, cap;
    PGresult  *res;

    res = migctl_db_exec(e->conn,
        "SELECT id, app, name, applied FROM ("
        " SELECT id, app, name, to_char(applied AT TIME ZONE 'UTC',"
        "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS applied"
        " FROM django_migrations ORDER BY id DESC LIMIT "
        EV_MIGRATIONS_TAIL ") t ORDER BY id");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        miss(e, "django_migrations", migctl_db_error(e->conn, err,
                                                     sizeof(err)));
        PQclear(res);
        return;
    }

    cap = 128;
    for (i = 0; i < PQntuples(res); i++) {
        cap += (size_t) PQgetlength(res, i, 1) + PQgetlength(res, i, 2)
               + 64;
    }

    t = malloc(cap);
    if (t != NULL) {
        n = (size_t) snprintf(t, cap, "id\tapp\tname\tapplied (UTC)\n");
        for (i = 0; i < PQntuples(res); i++) {
            n += (size_t) snprintf(t + n, cap - n, "%s\t%s\t%s\t%s\n",
                                   PQgetvalue(res, i, 0),
                                   PQgetvalue(res, i, 1),
                                   PQgetvalue(res, i, 2),
                                   PQgetvalue(res, i, 3));
        }
        (void) put(e, "django_migrations.tsv", t, n);
        free(t);
    }

    PQclear(res);
}


static void
locks(ev_t *e)
{
    int  rc;

    rc = migctl_locks_run(e->ctx, e->conn, MIGCTL_LOCKS_LONG_SECS, &e->locks);
    if (e->locks == NULL) {
        miss(e, "locks", e->ctx->error);
        return;
    }

    (void) rc;
    (void) put_json(e, "locks.json", e->locks);
}


/*
 * With --manage / --previous-manage, one Django process per release gives
 * the squashes' replaces lists (diagnose gets the same documents); a
 * Django that fails is written down and the guess from names stays.
 */
static void
migrations(ev_t *e)
{
    int      rc;
    json_t  *o;

    if (e->manage
        && migctl_verify_django(e->ctx, e->conn, e->manage, NULL, 0,
                                EV_DJANGO_TIMEOUT_MS, NULL, &e->doc)
           != MIGCTL_OK)
    {
        miss(e, "django (--manage)", e->ctx->error);
    }

    if (e->prev_manage
        && migctl_verify_django(e->ctx, e->conn, e->prev_manage, NULL, 0,
                                EV_DJANGO_TIMEOUT_MS, NULL, &e->prev_doc)
           != MIGCTL_OK)
    {
        miss(e, "django (--previous-manage)", e->ctx->error);
    }

    o = NULL;
    rc = migctl_migrations_check(e->ctx, e->conn, e->plan, e->prev_plan,
                                 e->doc, e->prev_doc, &o);
    if (o == NULL) {
        miss(e, "migrations", e->ctx->error);
        return;
    }

    (void) rc;
    (void) put_json(e, "migrations.json", o);
    e->migs = o;
}


static void
inspect(ev_t *e)
{
    const char  *app, *mig;

    if (e->sql == NULL) {
        return;
    }

    /* diagnose inspected already (and said why when it could not) */
    if (e->diag != NULL
        && json_is_object(json_object_get(e->diag, "inspect")))
    {
        e->insp = json_incref(json_object_get(e->diag, "inspect"));
        (void) put_json(e, "inspect.json", e->insp);
        return;
    }

    if (e->diag_tried) {
        return;
    }

    app = e->app ? e->app : (e->failed_app[0] ? e->failed_app : NULL);
    mig = e->migration ? e->migration
                       : (e->failed_mig[0] ? e->failed_mig : NULL);

    (void) migctl_inspect_run(e->ctx, e->conn, e->sql, app, mig, &e->insp);
    if (e->insp == NULL) {
        miss(e, "inspect", e->ctx->error);
        return;
    }

    (void) put_json(e, "inspect.json", e->insp);
}


/* the catalog's view of every table the SQL file names */
static void
schema(ev_t *e)
{
    int          i, k, dup;
    char         err[512], *t, *p;
    size_t       n, cap, j;
    json_t      *o, *tables;
    PGresult    *res;
    const char  *params[2], *sch, *tab;

    if (e->sql == NULL) {
        return;
    }

    /* the parsed objects' tables, and the names the text shows */
    tables = sql_tables(e->sql);
    if (tables == NULL) {
        tables = json_array();
    }

    json_array_foreach(json_object_get(e->insp, "objects"), j, o) {
        tab = s_of(o, "table");
        if (tab == NULL && strcmp(s_of(o, "kind") ? s_of(o, "kind") : "",
                                  "table") == 0)
        {
            tab = s_of(o, "name");
        }
        if (tab == NULL) {
            continue;
        }

        sch = s_of(o, "schema");
        dup = 0;
        for (k = 0; k < (int) json_array_size(tables); k++) {
            json_t  *x = json_array_get(tables, k);

            if (strcmp(s_of(x, "table"), tab) == 0
                && strcmp(s_of(x, "schema"), sch ? sch : "") == 0)
            {
                dup = 1;
            }
        }
        if (!dup) {
            json_array_append_new(tables, json_pack("{s:s, s:s}", "schema",
                                  sch ? sch : "", "table", tab));
        }
    }

    cap = 4096;
    t = malloc(cap);
    if (t == NULL) {
        json_decref(tables);
        return;
    }
    n = (size_t) snprintf(t, cap, "# tables named in the SQL file, from"
                          " the catalog\n");

    json_array_foreach(tables, j, o) {
        params[0] = s_of(o, "schema");
        params[1] = s_of(o, "table");

        res = migctl_db_exec_params(e->conn,
            "WITH c AS (SELECT to_regclass(CASE WHEN $1 = '' THEN"
            "   quote_ident($2) ELSE quote_ident($1) || '.' ||"
            "   quote_ident($2) END) AS oid)"
            /* no pg_get_expr(): it locks the table, which may be
             * exactly the one a migration or a blocker holds */
            " SELECT 'column', a.attname || ' '"
            "   || format_type(a.atttypid, a.atttypmod)"
            "   || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END"
            "   || CASE WHEN a.atthasdef THEN ' (has a DEFAULT)' ELSE '' END"
            " FROM c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE a.attnum > 0 AND NOT a.attisdropped"
            /* pg_get_indexdef() and pg_get_constraintdef() lock the
             * table too: names, columns and flags from the catalog */
            " UNION ALL"
            " SELECT 'index', ic.relname || ' ('"
            "   || (SELECT string_agg(x.attname, ', ' ORDER BY x.attnum)"
            "       FROM pg_attribute x WHERE x.attrelid = i.indexrelid)"
            "   || ')' || CASE WHEN i.indisprimary THEN ' PRIMARY KEY'"
            "   WHEN i.indisunique THEN ' UNIQUE' ELSE '' END"
            "   || CASE WHEN i.indisvalid THEN '' ELSE '  -- INVALID' END"
            " FROM c JOIN pg_index i ON i.indrelid = c.oid"
            " JOIN pg_class ic ON ic.oid = i.indexrelid"
            " UNION ALL"
            " SELECT 'constraint', co.conname || ' ' || CASE co.contype"
            "   WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE'"
            "   WHEN 'f' THEN 'FOREIGN KEY' WHEN 'c' THEN 'CHECK'"
            "   WHEN 'x' THEN 'EXCLUDE' ELSE co.contype::text END"
            "   || ' (' || coalesce((SELECT string_agg(x.attname, ', ')"
            "       FROM pg_attribute x WHERE x.attrelid = co.conrelid"
            "         AND x.attnum = ANY (co.conkey)), '') || ')'"
            "   || CASE WHEN co.contype = 'f' THEN ' REFERENCES '"
            "        || co.confrelid::regclass::text ELSE '' END"
            "   || CASE WHEN co.convalidated THEN '' ELSE ' NOT VALID' END"
            " FROM c JOIN pg_constraint co ON co.conrelid = c.oid"
            " UNION ALL"
            " SELECT 'missing', 'no such table' FROM c WHERE c.oid IS NULL",
            2, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            miss(e, "schema", migctl_db_error(e->conn, err, sizeof(err)));
            PQclear(res);
            continue;
        }

        for (i = -1; i < PQntuples(res); i++) {
            const char  *a = i < 0 ? "" : PQgetvalue(res, i, 0);
            const char  *b = i < 0 ? "" : PQgetvalue(res, i, 1);

            if (n + strlen(a) + strlen(b) + strlen(params[0])
                + strlen(params[1]) + 64 >= cap)
            {
                cap = cap * 2 + strlen(b) + 1024;
                p = realloc(t, cap);
                if (p == NULL) {
                    break;
                }
                t = p;
            }

            if (i < 0) {
                n += (size_t) snprintf(t + n, cap - n, "\n## %s%s%s\n",
                                       params[0], params[0][0] ? "." : "",
                                       params[1]);
            } else {
                n += (size_t) snprintf(t + n, cap - n, "%-10s %s\n", a, b);
            }
        }

        PQclear(res);
    }

    (void) put(e, "schema.txt", t, n);
    free(t);
    json_decref(tables);
}


/* the traceback given, else the output of the newest failed run */
static void
classify(ev_t *e)
{
    char    *data, err[512];
    size_t   len;

    if (e->traceback) {
        snprintf(e->tbfile, sizeof(e->tbfile), "%s", e->traceback);
    }

    if (e->tbfile[0] == '\0') {
        return;
    }

    if (migctl_read_file(e->tbfile, &data, &len, err, sizeof(err)) != 0) {
        miss(e, "classify", err);
        return;
    }

    (void) migctl_classify_text(e->ctx, data, len, &e->cls);
    free(data);

    if (e->cls != NULL) {
        (void) put_json(e, "classify.json", e->cls);
    }
}


/*
 * The recommended path: `migctl diagnose --json` itself (the same
 * decision code), called in this process with stdout into a temporary
 * file and its stderr lines silenced.
 */
static void
diagnose(ev_t *e)
{
    int            n, out_fd, err_fd, dn;
    char          *argv[32], *out;
    FILE          *tf;
    long           len;
    const char    *app, *mig;
    json_error_t   jerr;
    migctl_ctx_t   sub;

    app = e->app ? e->app : (e->failed_app[0] ? e->failed_app : NULL);
    mig = e->migration ? e->migration
                       : (e->failed_mig[0] ? e->failed_mig : NULL);

    if (app == NULL || mig == NULL || e->sql == NULL || e->conn == NULL) {
        return;
    }

    n = 0;
    argv[n++] = "diagnose";
    argv[n++] = "--app";
    argv[n++] = (char *) app;
    argv[n++] = "--migration";
    argv[n++] = (char *) mig;
    argv[n++] = "--sql";
    argv[n++] = (char *) e->sql;
    if (e->tbfile[0]) {
        argv[n++] = "--traceback";
        argv[n++] = e->tbfile;
    }
    if (e->plan) {
        argv[n++] = "--plan";
        argv[n++] = (char *) e->plan;
    }
    if (e->prev_plan) {
        argv[n++] = "--previous-plan";
        argv[n++] = (char *) e->prev_plan;
    }
    if (e->manage) {
        argv[n++] = "--manage";
        argv[n++] = (char *) e->manage;
    }
    if (e->prev_doc) {
        /* when its Django failed, diagnose decides on the guess */
        argv[n++] = "--previous-manage";
        argv[n++] = (char *) e->prev_manage;
    }
    argv[n] = NULL;

    tf = tmpfile();
    dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (tf == NULL || dn < 0) {
        miss(e, "diagnose", strerror(errno));
        if (tf != NULL) {
            fclose(tf);
        }
        if (dn >= 0) {
            close(dn);
        }
        return;
    }

    fflush(stdout);
    fflush(stderr);
    out_fd = dup(STDOUT_FILENO);
    err_fd = dup(STDERR_FILENO);
    dup2(fileno(tf), STDOUT_FILENO);
    dup2(dn, STDERR_FILENO);
    close(dn);

    sub = *e->ctx;
    sub.cmd = "diagnose";
    sub.json = 1;
    (void) migctl_diagnose_docs(n, argv, &sub, e->doc, e->prev_doc);

    fflush(stdout);
    fflush(stderr);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    close(out_fd);
    close(err_fd);

    e->diag_tried = 1;
    out = NULL;
    fseek(tf, 0, SEEK_END);
    len = ftell(tf);
    rewind(tf);

    if (len > 0) {
        out = malloc((size_t) len + 1);
        if (out != NULL && fread(out, 1, (size_t) len, tf) != (size_t) len)
        {
            free(out);
            out = NULL;
        }
    }

    fclose(tf);

    e->diag = out ? json_loadb(out, (size_t) len, 0, &jerr) : NULL;
    free(out);

    if (e->diag == NULL) {
        miss(e, "diagnose", sub.error[0] ? sub.error
                                         : "migctl diagnose gave no JSON");
        return;
    }

    (void) put_json(e, "diagnose.json", e->diag);

    if (!json_is_true(json_object_get(e->diag, "ok"))) {
        miss(e, "diagnose", s_of(e->diag, "error") ? s_of(e->diag, "error")
                                                   : "failed");
        json_decref(e->diag);
        e->diag = NULL;
    }
}


/* the flag, the edges with what they serve, the audit tail */
static void
maintenance(ev_t *e)
{
    int            i;
    char           key[MIG_KEY_MAX], k_edges[MIG_KEY_MAX], node[256];
    const char    *av[6];
    size_t         lens[6], j;
    json_t        *o, *edge;
    redisReply    *r, *h;
    redisContext  *c;
    migctl_ctx_t  *ctx = e->ctx;

    if (migctl_redis_open(ctx, &c) != MIGCTL_OK) {
        miss(e, "maintenance (Redis)", ctx->error);
        return;
    }

    o = json_object();

    (void) mig_key_state(key, sizeof(key), ctx->conf.prefix, ctx->scope);
    av[0] = "HGETALL";
    av[1] = key;
    lens[0] = 7;
    lens[1] = strlen(key);
    r = migctl_redis_cmd(ctx, c, 2, av, lens);
    e->state = r ? rpairs(r) : json_null();
    if (r) {
        freeReplyObject(r);
    }
    json_object_set_new(o, "scope", json_string(ctx->scope));
    json_object_set(o, "state", e->state);

    (void) mig_key_edges(k_edges, sizeof(k_edges), ctx->conf.prefix);
    av[0] = "ZRANGE";
    av[1] = k_edges;
    av[2] = "0";
    av[3] = "999";
    av[4] = "WITHSCORES";
    for (i = 0; i < 5; i++) {
        lens[i] = strlen(av[i]);
    }

    e->edges = json_array();
    r = migctl_redis_cmd(ctx, c, 5, av, lens);

    for (j = 0; r && r->type == REDIS_REPLY_ARRAY && j + 1 < r->elements;
         j += 2)
    {
        if (r->element[j]->type != REDIS_REPLY_STRING
            || r->element[j]->len >= sizeof(node))
        {
            continue;
        }
        memcpy(node, r->element[j]->str, r->element[j]->len);
        node[r->element[j]->len] = '\0';

        edge = json_object();
        json_object_set_new(edge, "node", rjson(r->element[j]));
        json_object_set_new(edge, "heartbeat_ms", rjson(r->element[j + 1]));

        if (mig_key_edge(key, sizeof(key), ctx->conf.prefix, node) >= 0) {
            av[0] = "HGETALL";
            av[1] = key;
            lens[0] = 7;
            lens[1] = strlen(key);
            h = migctl_redis_cmd(ctx, c, 2, av, lens);
            json_object_set_new(edge, "hash", h ? rpairs(h) : json_null());
            if (h) {
                freeReplyObject(h);
            }
        }

        json_array_append_new(e->edges, edge);
    }
    if (r) {
        freeReplyObject(r);
    }
    json_object_set(o, "edges", e->edges);

    (void) mig_key_audit(key, sizeof(key), ctx->conf.prefix);
    e->audit = json_array();
    r = migctl_audit_tail(ctx, c, key, EV_AUDIT_TAIL);

    for (j = 0; r && r->type == REDIS_REPLY_ARRAY && j < r->elements; j++) {
        redisReply  *ent = r->element[j];
        json_t      *a;

        if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2) {
            continue;
        }

        a = rpairs(ent->element[1]);
        json_object_set_new(a, "id", rjson(ent->element[0]));
        json_array_insert_new(e->audit, 0, a);       /* oldest first */
    }
    if (r) {
        freeReplyObject(r);
    }
    json_object_set(o, "audit", e->audit);

    migctl_redis_close(c);

    (void) put_json(e, "maintenance.json", o);
    json_decref(o);
}


/* the newest runs of the evidence root, copied file by file */
static void
runs(ev_t *e)
{
    int             i, n, k, m, f;
    char            path[MIGCTL_PATH_MAX + 600], name[MIGCTL_PATH_MAX + 1200];
    char           *data, err[512], *dot;
    size_t          len;
    const char     *root, *fm;
    struct dirent **list, **files;
    json_t         *res;
    json_error_t    jerr;

    root = migctl_runs_dir(e->ctx, e->runs_dir);

    n = scandir(root, &list, NULL, alphasort);
    if (n < 0) {
        if (errno != ENOENT) {
            miss(e, "runs", strerror(errno));
        }
        return;
    }

    for (i = n - 1, k = 0; i >= 0; i--) {
        if (list[i]->d_name[0] == '.' || k >= e->nruns) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s/result.json", root,
                 list[i]->d_name);
        res = json_load_file(path, 0, &jerr);

        snprintf(path, sizeof(path), "%s/%s", root, list[i]->d_name);
        {
            m = scandir(path, &files, NULL, alphasort);

            for (f = 0; f < m; f++) {
                if (files[f]->d_name[0] != '.') {
                    snprintf(name, sizeof(name), "%s/%s", path,
                             files[f]->d_name);
                    if (migctl_read_file(name, &data, &len, err,
                                         sizeof(err)) == 0)
                    {
                        snprintf(name, sizeof(name), "runs/%s/%s",
                                 list[i]->d_name, files[f]->d_name);
                        /* a huge log: its tail says how it ended */
                        (void) put(e, name, len > EV_FILE_MAX
                                            ? data + len - EV_FILE_MAX
                                            : data,
                                   len > EV_FILE_MAX ? EV_FILE_MAX : len);
                        free(data);
                    }
                }
                free(files[f]);
            }
            if (m >= 0) {
                free(files);
            }
        }

        if (res == NULL) {
            /* running now, or killed: no result.json */
            res = json_pack("{s:s, s:s}", "id", list[i]->d_name, "result",
                            "unfinished (no result.json)");
        }

        json_array_append(e->runs, res);

        if (e->last_failed == NULL
            && strcmp(s_of(res, "result") ? s_of(res, "result") : "",
                      "failed") == 0)
        {
            e->last_failed = res;
            fm = s_of(res, "failed_migration");
            if (fm != NULL && (dot = strchr(fm, '.')) != NULL
                && (size_t) (dot - fm) < sizeof(e->failed_app))
            {
                snprintf(e->failed_app, sizeof(e->failed_app), "%.*s",
                         (int) (dot - fm), fm);
                snprintf(e->failed_mig, sizeof(e->failed_mig), "%s",
                         dot + 1);
            }
            if (e->traceback == NULL) {
                snprintf(e->tbfile, sizeof(e->tbfile), "%s/%s/output.log",
                         root, list[i]->d_name);
            }
        }

        json_decref(res);
        k++;
    }

    for (i = 0; i < n; i++) {
        free(list[i]);
    }
    free(list);
}


/* tar -czf F.tar.gz, summary.md first, then the bundle is removed */
static int
rm_entry(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static int
pack(ev_t *e)
{
    int          status;
    char         base[MIGCTL_PATH_MAX], *name, *slash;
    char         first[MIGCTL_PATH_MAX + 16];
    char        *argv[16];
    pid_t        pid;

    snprintf(base, sizeof(base), "%s", e->dir);
    slash = strrchr(base, '/');
    if (slash != NULL) {
        *slash = '\0';
        name = slash + 1;
    } else {
        name = base;
    }

    snprintf(first, sizeof(first), "%s/summary.md", name);

    argv[0] = "tar";
    argv[1] = "-czf";
    argv[2] = e->tarball;
    argv[3] = "-C";
    argv[4] = slash ? (base[0] ? base : "/") : ".";
    argv[5] = first;
    argv[6] = "--exclude";
    argv[7] = first;
    argv[8] = name;
    argv[9] = NULL;

    pid = fork();
    if (pid < 0) {
        return migctl_error(e->ctx, MIGCTL_PROBLEM, "fork: %s",
                            strerror(errno));
    }

    if (pid == 0) {
        umask(077);
        execvp("tar", argv);
        _exit(127);
    }

    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        /* void */
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return migctl_error(e->ctx, MIGCTL_PROBLEM, "tar failed (%d): the"
                            " bundle is left in %s", status, e->dir);
    }

    (void) nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);

    return MIGCTL_OK;
}


/* Redis values as JSON: invalid UTF-8 bytes become '?' */
static json_t *
rjson(redisReply *r)
{
    char    *b;
    size_t   i;
    json_t  *j;

    switch (r->type) {

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        j = json_stringn(r->str, r->len);
        if (j != NULL) {
            return j;
        }
        b = malloc(r->len + 1);
        if (b == NULL) {
            return json_null();
        }
        for (i = 0; i < r->len; i++) {
            b[i] = ((unsigned char) r->str[i] < 0x80 && r->str[i])
                   ? r->str[i] : '?';
        }
        j = json_stringn(b, r->len);
        free(b);
        return j;

    case REDIS_REPLY_INTEGER:
        return json_integer(r->integer);

    case REDIS_REPLY_ARRAY:
        j = json_array();
        for (i = 0; i < r->elements; i++) {
            json_array_append_new(j, rjson(r->element[i]));
        }
        return j;
    }

    return json_null();
}


static json_t *
rpairs(redisReply *r)
{
    char     name[256];
    size_t   i;
    json_t  *o;

    o = json_object();

    for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2)
    {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || r->element[i]->len >= sizeof(name))
        {
            continue;
        }
        memcpy(name, r->element[i]->str, r->element[i]->len);
        name[r->element[i]->len] = '\0';
        json_object_set_new(o, name, rjson(r->element[i + 1]));
    }

    return o;
}


/*
 * The tables a sqlmigrate file names, read with libpg_query (sqlparse.c):
 * every table a check of the plan touches, and the tables themselves.
 */
static json_t *
sql_tables(const char *path)
{
    char               *data, err[256];
    size_t              len, i;
    json_t             *a, *x;
    const char         *t, *sch;
    migctl_sql_plan_t   plan;
    size_t              k;
    int                 dup;

    if (migctl_read_file(path, &data, &len, err, sizeof(err)) != 0) {
        return NULL;
    }

    a = json_array();

    /* a file where one statement does not parse still gives the rest */
    (void) migctl_sql_parse(data, &plan, err, sizeof(err));

    for (i = 0; a != NULL && i < plan.nchecks; i++) {
        t = plan.checks[i].table ? plan.checks[i].table
          : plan.checks[i].kind == MIGCTL_SQL_TABLE ? plan.checks[i].name
          : NULL;
        if (t == NULL) {
            continue;
        }
        sch = plan.checks[i].schema ? plan.checks[i].schema : "";

        dup = 0;
        json_array_foreach(a, k, x) {
            if (strcmp(s_of(x, "table"), t) == 0
                && strcmp(s_of(x, "schema"), sch) == 0)
            {
                dup = 1;
            }
        }

        if (!dup) {
            json_array_append_new(a, json_pack("{s:s, s:s}", "schema", sch,
                                               "table", t));
        }
    }

    migctl_sql_free(&plan);
    free(data);

    return a;
}


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: migctl [--json] [--scope S] evidence [--out DIR]\n"
        "           [--sql FILE] [--traceback FILE] [--plan FILE]\n"
        "           [--previous-plan FILE] [--app A --migration M]\n"
        "           [--runs-dir DIR] [--runs N]\n"
        "           [--manage CMD] [--previous-manage CMD]\n"
        "\n"
        "Writes a timestamped bundle a colleague can read after the\n"
        "incident: summary.md (what failed, state, class, path, timeline),\n"
        "django_migrations tail, locks and INVALID indexes, the catalog of\n"
        "the tables the SQL file names, server version and settings, the\n"
        "maintenance state, edges and audit tail, the last runs and the\n"
        "inputs given.  Database and Redis passwords, the files of\n"
        "evidence.secret_files (the bypass token) and values of variables\n"
        "named *PASSWORD*, *SECRET*, *TOKEN*, *_KEY are redacted.\n"
        "\n"
        "options:\n"
        "  --out DIR               the bundle (inside DIR when it exists);\n"
        "                          F.tar.gz packs it with tar; default\n"
        "                          ./migctl-evidence-<time>\n"
        "  --sql FILE              the migration's sqlmigrate output\n"
        "  --traceback FILE        the traceback or log of the failure\n"
        "  --plan FILE             this release's showmigrations --plan\n"
        "  --previous-plan FILE    the previous release's\n"
        "  --app A                 the migration (default: the newest\n"
        "  --migration M           failed run's)\n"
        "  --runs-dir DIR          the runs of migctl run (default\n"
        "                          runs.dir, else " MIGCTL_RUNS_DIR ")\n"
        "  --runs N                how many runs to keep in the bundle\n"
        "                          (default 5, 0 to 100)\n"
        "  --manage CMD            this release's manage.py: the squashes'\n"
        "                          replaces lists from Django (summary.md\n"
        "                          says which answer the bundle had)\n"
        "  --previous-manage CMD   the same, for the previous release\n");

    migctl_usage_footer(f, MIGCTL_USAGE_DB | MIGCTL_USAGE_REDIS
                           | MIGCTL_USAGE_DB_OPTS,
        "0 complete;1 written but a part could not be collected (named"
        " in summary.md);2",
        "migctl evidence --out /srv/incidents/ --sql 0042.sql \\\n"
        "    --traceback migrate.log");
}
