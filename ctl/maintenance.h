/*
 * maintenance.h: what cmd_maintenance.c (on, off, status, --wait) shares
 * with maintenance_send.c (the change and audit scripts sent to Redis).
 */

#ifndef MIGCTL_MAINTENANCE_H
#define MIGCTL_MAINTENANCE_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "migctl.h"


#define AUDIT_TAIL         10
#define SERVED_MAX         32                /* scopes named, sorted */


typedef struct {
    const char  *reason;
    const char  *release;
    long         retry_after;
    int          wait;                       /* seconds, 0 = no wait */
    int          force;
    int          any_scope;                  /* skip the scope guard */
} opts_t;

typedef struct {
    migctl_ctx_t  *ctx;
    redisContext  *c;
    char           k_state[MIG_KEY_MAX];
    char           k_events[MIG_KEY_MAX];
    char           k_edges[MIG_KEY_MAX];
    char           k_audit[MIG_KEY_MAX];
    char           actor[MIG_ACTOR_MAX + 1];
    int            wanted;                   /* redis.wait.replicas */
    int            acked;                    /* WAIT's answer, -1: none */
    int            short_ack;                /* acked < wanted */
} mnt_t;

/* the scopes the live edges serve, as the scope guard reads them */
typedef struct {
    int            live;                     /* live edges, valid ids */
    int            unknown;                  /* live, no edge hash */
    int            serving;                  /* live, serving our scope */
    int            nscopes;                  /* distinct scopes served */
    char           scopes[SERVED_MAX][MIG_NAME_MAX + 1];
} mnt_served_t;


/*
 * maintenance_send.c: the change script (state, epoch, publish, audit)
 * and an audit entry alone, each sent Sentinel-aware (one retry when it
 * certainly did not run, confirmed after a link lost once it was sent,
 * WAIT for redis.wait replicas); the master found again after the health
 * checks; the audit tail read back.
 */
int migctl_mnt_change(mnt_t *m, int on, const opts_t *o,
    const char *result, unsigned long long *epoch, char *id,
    size_t idsize);
int migctl_mnt_refind_master(mnt_t *m);
int migctl_mnt_audit(mnt_t *m, const char *action, const char *reason,
    const char *result, const opts_t *o, char *id, size_t idsize);
int migctl_mnt_read_audit(mnt_t *m, int count, json_t **out);

/* a JSON string from network bytes; "2026-11-29T16:07:01Z" of unix s */
json_t *migctl_mnt_jstr(const char *s, size_t len);
void migctl_mnt_fmt_time(char *buf, size_t size, long long t);

/*
 * maintenance_status.c: migctl maintenance status (usage: the command's
 * --help); the edges as status, --wait and the scope guard read them.
 */
int migctl_mnt_status(mnt_t *m, int argc, char **argv,
    void (*usage)(FILE *f));
int migctl_mnt_read_edges(mnt_t *m, migctl_edges_t *ed, long long now);
int migctl_mnt_read_served(mnt_t *m, mnt_served_t *sv, long long now,
    char *err, size_t errlen);


static inline const char *
afield(json_t *o, const char *name)
{
    const char  *v;

    v = json_string_value(json_object_get(o, name));

    return v ? v : "?";
}


/* text from Redis printed without terminal control characters */

static inline void
print_clean(FILE *f, const char *s)
{
    const unsigned char  *p;

    for (p = (const unsigned char *) s; p && *p; p++) {
        fputc((*p < 0x20 || *p == 0x7f) ? '?' : *p, f);
    }
}

#endif /* MIGCTL_MAINTENANCE_H */
