/*
 * run.h: what cmd_run.c shares with run_child.c (the command's process:
 * its group, the watcher, the output streamed and kept, the exit status)
 * and with run_lock.c (the runner lock, the audit entries).
 */

#ifndef MIGCTL_RUN_H
#define MIGCTL_RUN_H

#include <signal.h>
#include <sys/types.h>
#include <libpq-fe.h>

#include "migctl.h"


#define RUN_LINE_MAX        8192         /* a longer line is cut in the log */
#define RUN_CAPTURE_MAX     (1024 * 1024)  /* output kept for classify */
#define RUN_POLL_MS         200
#define RUN_DRAIN_MS        2000         /* after exit: grandchildren */
#define RUN_AUX_TIMEOUT_MS  300000       /* plan and sqlmigrate commands */


typedef struct {
    int          fd;
    int          tag;                    /* 'o' stdout, 'e' stderr */
    char         line[RUN_LINE_MAX];
    size_t       n;
    long long    line_ms;                /* when the line began */
} stream_t;

typedef struct {
    migctl_ctx_t      *ctx;

    /* options */
    int                mof;              /* --maintenance-on-failure */
    int                diagnose;
    long               wait_lock_ms;
    long               lock_timeout_ms;
    long               statement_timeout_ms;
    int                retries;
    const char        *plan_cmd;
    const char        *runs_dir;
    char             **cmd;
    int                ncmd;

    PGconn            *conn;
    int                backend_pid;
    char               db[512];          /* host:port/dbname */
    char               id[96];
    char               dir[MIGCTL_PATH_MAX];
    char               cmdline[MIGCTL_COMMAND_MAX];   /* scrubbed */
    char               actor[MIG_ACTOR_MAX + 1];
    char               host[256];
    migctl_secrets_t   sec;
    FILE              *log;              /* output.log */
    char             **envp;             /* the command's environment */

    char              *cap;              /* this attempt's output */
    size_t             ncap;
    char               applying[256];    /* last "Applying A.M..." */
    int                applying_ok;
    int                lock_lost;        /* our session ended mid-run */

    int                redis_warned;
    json_t            *res;
} run_t;


/* the last SIGINT/SIGTERM/SIGHUP migctl got (run_child.c forwards it) */
extern volatile sig_atomic_t  migctl_run_signal;

void migctl_run_on_signal(int sig);

/*
 * Runs r->cmd once with r->envp: its own process group, killed if migctl
 * dies, signals forwarded, output live and into r->log, the tail in
 * r->cap, the last "Applying" line in r->applying.  MIGCTL_OK and the
 * wait() status, or a one-line error (pipe, fork) and MIGCTL_PROBLEM.
 */
int migctl_run_attempt(run_t *r, int n, int *status);

int migctl_run_capture(run_t *r, char *const *argv, char **output,
    size_t *outlen, int *status);

/* "exit 3" / "killed by SIGTERM"; and {"exit", "signal"} into o */
void migctl_run_status_text(int status, char *buf, size_t size);
json_t *migctl_run_status_json(int status, json_t *o);


/*
 * run_lock.c: pg_try_advisory_lock on r->conn: MIGCTL_OK, or
 * MIGCTL_REFUSED with the holder told (after --wait-lock), or an error.
 * One entry of P:audit, action "run", result "started", "ok", ...: a
 * Redis down never fails the run (MIGCTL_UNREACHABLE, told once).
 */
int migctl_run_take_lock(run_t *r);
int migctl_run_audit(run_t *r, const char *result);


#endif /* MIGCTL_RUN_H */
