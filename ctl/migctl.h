/*
 * migctl.h: the hub header of the migctl CLI: context, exit codes, the
 * helpers shared by the command files (out.c, conf.c, redis.c, db.c).
 */

#ifndef MIGCTL_H
#define MIGCTL_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "mig.h"


/* exit codes: DESIGN.md */
#define MIGCTL_OK            0
#define MIGCTL_PROBLEM       1   /* unhealthy, not applied, inconsistent */
#define MIGCTL_USAGE         2   /* usage or configuration error */
#define MIGCTL_UNREACHABLE   3   /* Redis or PostgreSQL unreachable */
#define MIGCTL_REFUSED       4   /* refused by a safety gate */
#define MIGCTL_CMDFAIL       5   /* the wrapped command failed */

#define MIGCTL_PATH_MAX      4096
#define MIGCTL_CHECKS_MAX    32
#define MIGCTL_COMMAND_MAX   2048
#define MIGCTL_HOOKS_MAX     8
#define MIGCTL_SENTINELS_MAX 16
#define MIGCTL_SENTINEL_NAME_MAX  128

struct config_t;                             /* libconfig */

/* health check types: health.checks[].type in migctl.conf */
typedef enum {
    MIGCTL_CHECK_COMMAND = 0,       /* a shell command exits 0 */
    MIGCTL_CHECK_HTTP,              /* libcurl GET, status, body, header */
    MIGCTL_CHECK_EDGES,             /* live edges serve the current epoch */
    MIGCTL_CHECK_MIGRATIONS,        /* nothing pending: plan or command */
    MIGCTL_CHECK_INVALID_INDEXES,   /* no INVALID index */
    MIGCTL_CHECK_BLOCKED_SESSIONS,  /* no lock wait longer than max_wait_s */
    MIGCTL_CHECK_BACKUP,            /* a command, or WAL archived lately */
    MIGCTL_CHECK_SQL                /* a query returns the expected value */
} migctl_check_type_e;

/*
 * A health check, or a hook (hooks.on / hooks.off: commands only).  The
 * const char * fields point into the parsed file (conf.lc), NULL when not
 * given; they live until migctl_conf_free().
 */
typedef struct {
    char         name[MIG_NAME_MAX + 1];
    char         command[MIGCTL_COMMAND_MAX];
    int          timeout_ms;
    int          line;                       /* in the config file */
    int          type;                       /* migctl_check_type_e */
    const char  *url;                        /* http */
    int          url_line;                   /* http: the url's line */
    int          expect_status;              /* http: default 200 */
    const char  *expect_body;                /* http: text in the body */
    const char  *expect_header;              /* http: "Name: value" */
    const char  *bypass_token_file;          /* http: X-Maintenance-Bypass */
    const char  *ca_file;                    /* http: TLS trust */
    const char  *resolve;                    /* http: "host:port:addr" */
    const char  *scope;                      /* edges: default --scope */
    const char  *plan;                       /* migrations: a plan file */
    const char  *query;                      /* sql */
    const char  *expect;                     /* sql: first value, as text */
    int          max_wait_s;                 /* blocked_sessions */
    int          max_age_min;                /* backup: pg_stat_archiver */
    char         manage[MIGCTL_COMMAND_MAX]; /* migrations: Django's lists
                                                ("" : guessed from names) */
} migctl_check_t;

/* configuration, filled by migctl_conf_load() (conf.c) */
typedef struct {
    char        source[MIGCTL_PATH_MAX];     /* file read, or "" */
    char        redis_host[256];
    int         redis_port;
    char        redis_unix[MIGCTL_PATH_MAX]; /* "" unless a socket */
    int         redis_db;
    char        redis_user[128];
    char        redis_password_file[MIGCTL_PATH_MAX];
    char        redis_password_env[128];     /* name of the variable */
    int         redis_timeout_ms;
    char        prefix[MIG_NAME_MAX + 1];
    int         edge_live_ms;                /* heartbeat younger = live */
    int         wait_default_s;              /* --wait without =SECONDS */
    int         nchecks;
    migctl_check_t  checks[MIGCTL_CHECKS_MAX];

    /*
     * The parsed file, kept until exit so that other commands can read
     * their own sections (config_lookup()); NULL with built-in defaults.
     * Owned by conf.c: migctl_conf_free() releases it.
     */
    struct config_t  *lc;

    /* database { ... }: every session migctl opens (db.c), in ms */
    long        db_lock_timeout_ms;
    long        db_statement_timeout_ms;
    long        db_connect_timeout_ms;
    int         db_connect_timeout_set;      /* else PGCONNECT_TIMEOUT */
    long        db_tcp_user_timeout_ms;
    long        db_keepalives_idle_ms;
    long        db_keepalives_interval_ms;
    int         db_keepalives_count;
    /* hooks.on / hooks.off: run after the flag goes on, and after health
     * passes on the way off (cmd_maintenance.c) */
    int              nhooks_on;
    int              nhooks_off;
    migctl_check_t   hooks_on[MIGCTL_HOOKS_MAX];
    migctl_check_t   hooks_off[MIGCTL_HOOKS_MAX];
    /* runs { dir; plan_cmd; } (conf.c: parse_runs); "" = not set */
    char        runs_dir[MIGCTL_PATH_MAX];
    char        plan_cmd[MIGCTL_COMMAND_MAX];
    /* redis.sentinel { master; nodes; user; password_file; password_env }:
     * the master is found through these (redis.c); nsentinels 0: not used */
    char        sentinel_master[MIGCTL_SENTINEL_NAME_MAX + 1];
    int         nsentinels;
    char        sentinel_host[MIGCTL_SENTINELS_MAX][256];
    int         sentinel_port[MIGCTL_SENTINELS_MAX];
    char        sentinel_user[128];
    char        sentinel_password_file[MIGCTL_PATH_MAX];
    char        sentinel_password_env[128];
    /* redis.wait { replicas; timeout; }: WAIT after a change; 0: none */
    int         redis_wait_replicas;
    long        redis_wait_timeout_ms;
} migctl_conf_t;

/* what every command gets from main() */
typedef struct {
    const char     *cmd;                     /* command name, for errors */
    int             json;                    /* --json */
    char            scope[MIG_NAME_MAX + 1]; /* --scope, default "default" */
    const char     *config_path;             /* -c, or NULL */
    char            error[1024];             /* the last error printed */
    migctl_conf_t   conf;
    long            lock_timeout_ms;         /* --lock-timeout, or 0 */
    long            statement_timeout_ms;    /* --statement-timeout, or 0 */
    /* the JSON error's details from below (db.c's lock blockers), handed
     * down by main() so that out.c calls no higher file by name */
    json_t       *(*error_details)(void);
} migctl_ctx_t;

typedef int (*migctl_cmd_pt)(int argc, char **argv, migctl_ctx_t *ctx);


/*
 * opt.c: the option parser of every command.  A table of options ends
 * with a NULL name; "--opt value" and "--opt=value" are the same; "--"
 * ends the options; --help/-h print usage on stdout and --json sets
 * ctx->json for every command.
 */
#define MIGCTL_OPT_HELP             (-1)     /* --help printed: exit 0 */
#define MIGCTL_STRV_MAX             64

typedef enum {
    MIGCTL_OPT_FLAG = 1,            /* int *: set to 1 */
    MIGCTL_OPT_STRING,              /* const char **: non-empty */
    MIGCTL_OPT_STRINGS,             /* migctl_strv_t *: repeatable */
    MIGCTL_OPT_INT,                 /* int *: min..max */
    MIGCTL_OPT_DURATION,            /* long * in ms: "500ms", "2s", "2" (s),
                                       "1m"; min..max ms (max 0: 1 day) */
    MIGCTL_OPT_OPTIONAL_SECONDS     /* int *: "--wait", "--wait=5",
                                       "--wait 5"; alone: dflt */
} migctl_opt_type_e;

typedef struct {
    const char  *v[MIGCTL_STRV_MAX];
    int          n;
} migctl_strv_t;

typedef struct {
    const char  *name;              /* "--sql" */
    int          type;              /* migctl_opt_type_e */
    void        *value;
    const char  *arg;               /* "FILE": for messages */
    long         min;
    long         max;
    long         dflt;
} migctl_opt_t;

/*
 * Parses argv[1..argc-1] (argv[0] is the command's name) against opts.
 * Operands are moved to argv[1..*nargs-1] in order (argv[*nargs] is
 * NULL); with nargs NULL the command takes none and an operand is an
 * error.  MIGCTL_OK; MIGCTL_OPT_HELP after usage(stdout); or
 * MIGCTL_USAGE after a one-line error.
 */
int migctl_opt_parse(migctl_ctx_t *ctx, const migctl_opt_t *opts, int argc,
    char **argv, int *nargs, void (*usage)(FILE *f));

/*
 * The database timeouts of every command, as global options and in each
 * command's table: --lock-timeout D, --statement-timeout D (db.c).
 */
#define MIGCTL_DB_LOCK_TIMEOUT_MS        2000
#define MIGCTL_DB_STATEMENT_TIMEOUT_MS   30000
#define MIGCTL_DB_CONNECT_TIMEOUT_MS     5000
#define MIGCTL_DB_TIMEOUT_MAX_MS         (86400L * 1000)

#define MIGCTL_OPT_DB_TIMEOUTS(ctx)                                          \
    { "--lock-timeout", MIGCTL_OPT_DURATION, &(ctx)->lock_timeout_ms, "D",   \
      1, MIGCTL_DB_TIMEOUT_MAX_MS, 0 },                                      \
    { "--statement-timeout", MIGCTL_OPT_DURATION,                            \
      &(ctx)->statement_timeout_ms, "D", 1, MIGCTL_DB_TIMEOUT_MAX_MS, 0 }

/* "500ms", "2s", "2" (seconds), "1.5m", "1h": 0 and *ms, or -1 */
int migctl_parse_duration_ms(const char *s, long max_ms, long *ms);


/* commands: one file each, cmd_<name>.c; argv[0] is the command name */
int cmd_maintenance(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_migrations(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_inspect(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_classify(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_diagnose(int argc, char **argv, migctl_ctx_t *ctx);
/* the same with Django's documents already read (evidence), either NULL */
int migctl_diagnose_docs(int argc, char **argv, migctl_ctx_t *ctx,
    json_t *doc, json_t *prev_doc);
int cmd_locks(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_health(int argc, char **argv, migctl_ctx_t *ctx);   /* health.c */
int cmd_verify(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_run(int argc, char **argv, migctl_ctx_t *ctx);
int cmd_evidence(int argc, char **argv, migctl_ctx_t *ctx);


/* out.c */

/*
 * Prints "migctl: <ctx->cmd>: <message>" on stderr, one line, and returns
 * code, so that a command can write: return migctl_error(ctx, 2, "...").
 * Control characters in the message are escaped.  With --json, main()
 * also prints {"command", "version", "ok": false, "exit", "error"} on
 * stdout when the command printed no result.
 */
int migctl_error(migctl_ctx_t *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Prints a command's result on stdout as JSON, in the envelope every
 * command shares: {"command", "version", "ok": rc == 0, "exit": rc, ...
 * the result's own members}.  Steals the reference to result.  Returns
 * rc, or MIGCTL_PROBLEM after an error when stdout cannot be written.
 */
int migctl_json_result(migctl_ctx_t *ctx, json_t *result, int rc);

/* a JSON result (or error object) has been printed on stdout */
int migctl_json_printed(void);

/* prints a JSON value on stdout (indented, newline); 0 or -1 */
int migctl_json_print(json_t *value);

/*
 * The JSON error object of a failed command: {"command", "version", "ok":
 * false, "exit": rc, "error": ctx->error, "blockers" if a lock blocked a
 * read}, on stdout.
 */
void migctl_json_error(migctl_ctx_t *ctx, int rc);

/*
 * A failure no caller can return from: migctl_error()'s line without the
 * command, migctl_json_error() under --json, _exit(code).  main() hands
 * its ctx over first (migctl_fatal_ctx).
 */
void migctl_fatal_ctx(migctl_ctx_t *ctx);
void migctl_fatal(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * Copies in to out (size bytes with the NUL) with control characters
 * (below 0x20, and 0x7f) as "\xNN": text from the database, Redis or a
 * file is escaped so before it reaches a terminal.  Returns the length.
 */
size_t migctl_escape(const char *in, char *out, size_t size);

/* monotonic milliseconds: the one clock for timeouts */
long long migctl_now_ms(void);

/* wall clock milliseconds (unix): times shown, stored, heartbeats */
long long migctl_wall_ms(void);

/* the actor of a change: $MIGCTL_ACTOR, $LOGNAME or the user (unchecked) */
const char *migctl_actor(void);

/* reads a whole file ("-" for stdin) into a malloc'ed NUL-terminated
 * buffer; 0, or -1 with a one-line reason in err */
int migctl_read_file(const char *path, char **data, size_t *len,
    char *err, size_t errlen);

/*
 * The end of every usage text (help layout): with MIGCTL_USAGE_DB_OPTS the
 * --lock-timeout/--statement-timeout lines that close "options:", then
 * the pointer to the global options, where the database and Redis come
 * from, "exit codes:" from codes ("0 applied;1 any other verdict;2;3": a
 * code alone gets its usual meaning) and "example:" (lines split at \n).
 */
#define MIGCTL_USAGE_DB          0x01   /* uses PostgreSQL */
#define MIGCTL_USAGE_REDIS       0x02   /* uses Redis */
#define MIGCTL_USAGE_DB_OPTS     0x04   /* has MIGCTL_OPT_DB_TIMEOUTS */
#define MIGCTL_USAGE_MAIN        0x08   /* migctl help itself */

void migctl_usage_footer(FILE *f, unsigned what, const char *codes,
    const char *example);


/* conf.c: 0, or -1 with "FILE:LINE: what" in err (exit 2) */
int migctl_conf_load(migctl_ctx_t *ctx, char *err, size_t errlen);
int migctl_conf_check_urls(migctl_ctx_t *ctx);
void migctl_conf_free(migctl_ctx_t *ctx);


/* redis.c: the synchronous hiredis link, with the configured timeouts */
struct redisContext;
struct redisReply;

/*
 * Connects (host:port or unix socket), AUTHs with the password from
 * password_file or password_env (never argv, never printed), SELECTs db
 * and PINGs, all within timeout_ms each.  MIGCTL_OK and *c, or prints
 * one line and returns MIGCTL_UNREACHABLE (or MIGCTL_USAGE for a bad
 * password file).  Nothing is written to Redis.
 */
int migctl_redis_open(migctl_ctx_t *ctx, struct redisContext **c);
void migctl_redis_close(struct redisContext *c);

/*
 * One command from binary-safe arguments.  Returns the reply (the caller
 * freeReplyObject()s it; it may be an error reply) or NULL after printing
 * a one-line I/O error: the caller returns MIGCTL_UNREACHABLE.
 */
struct redisReply *migctl_redis_cmd(migctl_ctx_t *ctx,
    struct redisContext *c, int argc, const char **argv,
    const size_t *lens);

/*
 * "host:port" or "unix:/path" of the configured server, for messages;
 * with Sentinel, the master found and how: "127.0.0.1:6380 (master of
 * mymaster via sentinel 127.0.0.1:26379)".
 */
const char *migctl_redis_addr(migctl_ctx_t *ctx);

/*
 * The server the last migctl_redis_open() reached, for --json: {"addr"},
 * with Sentinel also "master_name" and "sentinel" (the one that named it).
 */
json_t *migctl_redis_json(migctl_ctx_t *ctx);

/* the reply is Redis's -READONLY (a replica, e.g. a demoted master) */
int migctl_redis_readonly(const struct redisReply *r);


/*
 * health.c: the health runner shared by "maintenance off" and "health".
 * Runs every configured check at once, each in a thread bounded by its
 * timeout; *out is {"ok": bool, "checks": [{"name", "type", "ok",
 * "detail", "time_ms"}], "total_ms"} (caller json_decref()s).  Returns
 * MIGCTL_OK when all pass (also with no checks: "maintenance off" refuses
 * that case itself), MIGCTL_PROBLEM when any fails.
 */
int migctl_health_run(migctl_ctx_t *ctx, json_t **out);


/*
 * Results shared between commands.  Each returns a MIGCTL_ exit code and
 * on success a new json_t object in *out that the caller json_decref()s;
 * on error it has printed its one-line error through migctl_error().
 * Diagnose builds on them.
 *
 * migctl_classify_text(): {"class", "sqlstate", "exception", "reason"}
 * migctl_inspect_run():   {"verdict", "recorded", "objects": [...],
 *                          "unverified": [...], ...}
 * migctl_migrations_run():{"applied", "pending", "unknown_to_release",
 *                          "unknown_to_previous", ...}
 */
int migctl_classify_text(migctl_ctx_t *ctx, const char *text, size_t len,
    json_t **out);


/*
 * redact.c: the one redaction routine for every query text (and URL or
 * conninfo) migctl prints or stores.  Copies in to out (size bytes with
 * the NUL) with secrets replaced by [redacted]: PASSWORD 'x', E'x', U&'x',
 * $$x$$, $tag$x$tag$, "password": "x", password=x (conninfo, URL
 * parameters, PGPASSWORD=x), scheme://user:x@host.  Control characters
 * become "\xNN" and bytes that are not UTF-8 too, so the result is one
 * printable line of valid UTF-8.  A text longer than size ends in "...",
 * cut after redaction.  Returns the length.
 */
#define MIGCTL_REDACT_ONELINE   0x01    /* whitespace runs as one space */
#define MIGCTL_REDACT_KEEP_NL   0x02    /* newlines and tabs kept (files) */

size_t migctl_redact_query(const char *in, char *out, size_t size,
    int flags);

/* the password of "scheme://user:PASSWORD@host" in s, which follows "://" */
size_t migctl_url_password(const char *s, size_t len, size_t *pwlen);


/*
 * cmd_maintenance.c: sets the flag of ctx->scope as "maintenance on|off"
 * does (one server-side script: state, epoch, publish, audit), without
 * the health gate and without --wait.  MIGCTL_OK and *epoch, or a one
 * line error printed and MIGCTL_UNREACHABLE / MIGCTL_PROBLEM / MIGCTL_USAGE.
 */
int migctl_maintenance_set(migctl_ctx_t *ctx, int on, const char *reason,
    const char *release, unsigned long long *epoch);


/*
 * runs.c: what `run` and `evidence` share: the evidence root, the secret
 * values to scrub from every file they write, shell quoting, time.
 */
#define MIGCTL_RUNS_DIR      "/var/lib/migctl/runs"
#define MIGCTL_SECRETS_MAX   64

typedef struct {
    char        *v[MIGCTL_SECRETS_MAX];      /* malloc'ed, wiped on free */
    int          n;
} migctl_secrets_t;

/* --runs-dir, else runs.dir of the configuration, else the default */
const char *migctl_runs_dir(migctl_ctx_t *ctx, const char *opt);

/* mkdir -p with mode for every component created; 0 or -1 and errno */
int migctl_mkdirs(const char *path, int mode);

/*
 * Collects the secret values known to this process: the database
 * password (DATABASE_URL, PGPASSWORD, the one libpq used: pass), the
 * Redis password, the contents of evidence.secret_files, and values of
 * environment variables whose names say PASSWORD, SECRET, TOKEN or KEY.
 */
void migctl_secrets_load(migctl_ctx_t *ctx, migctl_secrets_t *s,
    const char *pass);
void migctl_secrets_free(migctl_secrets_t *s);

/*
 * Replaces every known secret, and the password of any URL
 * ("scheme://user:PASSWORD@"), by "[redacted]".  Returns a malloc'ed
 * string (NULL when out of memory).
 */
char *migctl_scrub(const migctl_secrets_t *s, const char *in, size_t len);

/* appends argv shell-quoted ('...' when needed) to buf; the length */
size_t migctl_shell_quote(char *buf, size_t size, char *const *argv,
    int argc);

/* 1 when s is [A-Za-z0-9_]+: no quoting needed in a shell or SQL literal */
int migctl_plain_name(const char *s);

/* "2026-11-29T16:07:01.123Z" (ms) / "...01Z" of a migctl_wall_ms() */
void migctl_iso_time(char *buf, size_t size, long long ms, int with_ms);

/* the same without '-' and ':', for file names: "20261129T160701.123Z" */
void migctl_iso_time_compact(char *buf, size_t size, long long ms,
    int with_ms);

/*
 * Writes text, every known secret scrubbed, to path (created 0600,
 * truncated): 0, or -1 and errno (ENOMEM when scrubbing ran out).
 */
int migctl_write_scrubbed(const migctl_secrets_t *s, const char *path,
    const char *text, size_t len);

/*
 * maintenance_send.c: the script of an audit entry that changes nothing
 * (maintenance's refusals and hook results, run's entries).  KEYS: state,
 * audit; ARGV: maxlen, action, scope, then field, value pairs.  The entry
 * carries the mode and epoch in force; it returns {epoch, entry id}.
 */
#define MIGCTL_AUDIT_MAXLEN  "10000"

extern const char migctl_audit_lua[];

/* the newest count entries of the audit stream key (XREVRANGE), as
 * migctl_redis_cmd() returns them */
struct redisReply *migctl_audit_tail(migctl_ctx_t *ctx,
    struct redisContext *c, const char *key, int count);

#endif /* MIGCTL_H */
