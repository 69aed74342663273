/*
 * evidence.h: what cmd_evidence.c (collect, write, pack) shares with
 * evidence_summary.c (summary.md from what was collected).
 */

#ifndef MIGCTL_EVIDENCE_H
#define MIGCTL_EVIDENCE_H

#include <libpq-fe.h>
#include <jansson.h>

#include "migctl.h"


#define EV_MIGRATIONS_TAIL  "50"
#define EV_TIMELINE_MAX     400


typedef struct {
    migctl_ctx_t      *ctx;

    const char        *out;
    const char        *sql;
    const char        *traceback;
    const char        *plan;
    const char        *prev_plan;
    const char        *app;
    const char        *migration;
    const char        *runs_dir;
    int                nruns;

    char               dir[MIGCTL_PATH_MAX];      /* the bundle */
    char               tarball[MIGCTL_PATH_MAX];  /* or "" */
    char               ts[64];
    migctl_secrets_t   sec;
    PGconn            *conn;

    json_t            *missing;          /* what could not be collected */
    json_t            *runs;             /* result.json of the last runs */
    json_t            *last_failed;      /* the newest failed run, or NULL */
    json_t            *insp;
    json_t            *cls;
    json_t            *diag;
    json_t            *locks;
    json_t            *state;
    json_t            *edges;
    json_t            *audit;
    json_t            *server;
    char               tbfile[MIGCTL_PATH_MAX];   /* traceback used */
    char               failed_app[256];
    char               failed_mig[256];
    int                diag_tried;
    const char        *manage;           /* --manage, or NULL */
    const char        *prev_manage;      /* --previous-manage, or NULL */
    json_t            *doc;              /* their Django documents */
    json_t            *prev_doc;
    json_t            *migs;             /* migrations.json, or NULL */
} ev_t;


/* summary.md (malloc'ed, *len bytes), or NULL when out of memory */
char *migctl_evidence_summary(const ev_t *e, size_t *len);


static inline const char *
s_of(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

#endif /* MIGCTL_EVIDENCE_H */
