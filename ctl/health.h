/*
 * health.h: the health runner's checks (check_*.c), each run in its own
 * thread by health.c, and the edge reading that maintenance shares.
 */

#ifndef MIGCTL_HEALTH_H
#define MIGCTL_HEALTH_H

#include "migctl.h"


#define MIGCTL_DETAIL_MAX    1024
#define MIGCTL_SCOPES_MAX    256             /* "a, b, c" of an edge */


/*
 * One check being run.  The thread owns everything but envp; ctx is a
 * private copy (migctl_error() writes ctx->error), so that a check's error
 * lands in its own detail, not in another thread's; the check is a copy
 * too, so that a thread left running past its bound never reads the
 * parsed file after migctl_conf_free().
 */
typedef struct {
    const migctl_check_t   *ck;              /* &own */
    migctl_check_t          own;             /* a copy, strings in strs */
    char                   *strs;
    migctl_ctx_t           *ctx;
    char *const            *envp;            /* children's environment */
    long long               deadline;        /* monotonic ms */
    int                     ok;
    long                    ms;
    char                    detail[MIGCTL_DETAIL_MAX];
} migctl_check_run_t;

/* each sets r->ok and r->detail (one line), and returns before deadline */
void migctl_check_command(migctl_check_run_t *r);        /* health.c */
void migctl_check_http(migctl_check_run_t *r);           /* check_http.c */
void migctl_check_edges(migctl_check_run_t *r);          /* check_edges.c */
void migctl_check_db(migctl_check_run_t *r);             /* check_db.c */

/*
 * Runs "/bin/sh -c command" with envp in its own process group, stdin
 * /dev/null, kills the group at timeout_ms; detail is the last line of
 * its output.  Returns 1 when it exited 0 in time.  (health.c; also the
 * runner of hooks.)
 */
int migctl_run_command(const char *command, int timeout_ms,
    char *const *envp, char *detail, size_t size, long *ms);

/*
 * The environment for checks' and hooks' children: migctl's own minus its
 * secrets (PGPASSWORD, a DATABASE_URL that carries a password, the Redis
 * password variable, REDISCLI_AUTH).  NULL-terminated, malloc'ed; freed
 * with migctl_env_free().
 */
char **migctl_env_scrubbed(migctl_ctx_t *ctx);
void migctl_env_free(char **envp);



/* the fleet as Redis records it: P:edges and P:edge:<node> */

typedef struct {
    char        node[MIG_NAME_MAX + 1];
    long long   age_ms;                      /* since the last heartbeat */
    int         live;
    int         has_hash;                    /* P:edge:<node> exists */
    int         has_scope;                   /* it serves our scope */
    char        serving[MIG_EDGE_VALUE_MAX + 1];
    char        version[32];
    long long   pid;
    int         acked;                       /* --wait: serves ours */
    int         tracked;                     /* --wait: awaited */
    char        scopes[MIGCTL_SCOPES_MAX];   /* every scope it gates */
} migctl_edge_t;

typedef struct {
    migctl_edge_t  *e;
    int             n;
    int             skipped;                 /* invalid node ids */
} migctl_edges_t;

struct redisContext;

/*
 * Every edge in P:edges with its heartbeat age (now: unix ms) and the
 * fields of P:edge:<node> for scope, given up at deadline (monotonic ms,
 * 0: none).  MIGCTL_OK and ed->e (free()d by the caller), or an error
 * printed through migctl_error().
 */
int migctl_edges_read(migctl_ctx_t *ctx, struct redisContext *c,
    const char *scope, migctl_edges_t *ed, long long now,
    long long deadline);

/* "a, b" of the scopes that live edges gate (each once), "" if none */
void migctl_edges_gated(const migctl_edges_t *ed, char *buf, size_t size);

/*
 * Reads P:state:<scope> into st: MIGCTL_OK (*present 0 when missing),
 * MIGCTL_PROBLEM with err (malformed), MIGCTL_UNREACHABLE.
 */
int migctl_state_read(migctl_ctx_t *ctx, struct redisContext *c,
    const char *key, mig_state_t *st, int *present, char *err,
    size_t errlen);

#endif /* MIGCTL_HEALTH_H */
