/*
 * verify.h: history drift: the SQL of every migration from one Django
 * process, checked against the catalog with inspect's engine.
 */

#ifndef MIGCTL_VERIFY_H
#define MIGCTL_VERIFY_H

#include <libpq-fe.h>
#include <jansson.h>

#include "migctl.h"
#include "sqlparse.h"


/*
 * inspect_catalog.c: checks every live check of plan against the catalog
 * (one query per kind of object) and returns them as inspect's
 * "objects" array in *objs (the caller json_decref()s it).  texts[tag]
 * is the text a check's statement was read from (for "sql" on what is
 * not done; NULL entries allowed); with more than one text each object
 * also has "tag".  MIGCTL_OK, or the error printed and its exit code.
 */
int migctl_inspect_objects(migctl_ctx_t *ctx, PGconn *conn,
    migctl_sql_plan_t *plan, const char **texts, size_t ntexts,
    json_t **objs);

/*
 * verify_django.c: runs the script migctl ships through "MANAGE shell"
 * (manage: a shell command line, "/usr/bin/python3 manage.py") for the
 * apps (all when napps is 0) and returns its document in *doc:
 * {"format": 1, "django", "apps", "migrations": [{"app", "name",
 * "atomic", "replaces": [[app, name]...], "sql"|null, "error"|null}...],
 * "squashes": [{"app", "name", "replaces"}...]} (migrations in the order
 * migrate applies them; squashes: every one on disk, also those the
 * graph left out; older documents lack it).  With from set, reads a
 * document saved earlier instead ("-" for stdin).  On failure prints one
 * line (the last line of Django's traceback) and returns MIGCTL_CMDFAIL,
 * or MIGCTL_USAGE for a bad --from file.  With conn (may be NULL), a
 * Django that failed or timed out is followed by migctl's own read of
 * django_migrations: when that fails too (a lock: the blocker named) its
 * error and code (MIGCTL_UNREACHABLE) are returned instead.
 */
int migctl_verify_django(migctl_ctx_t *ctx, PGconn *conn, const char *manage,
    const char **apps, int napps, long timeout_ms, const char *from,
    json_t **doc);

/*
 * The same for a health check's thread: every app, no conn (no read of
 * its own after a failure), the child's environment envp (migctl's minus
 * its secrets), NULL for migctl's.
 */
int migctl_verify_django_env(migctl_ctx_t *ctx, const char *manage,
    long timeout_ms, char *const *envp, json_t **doc);

/*
 * Checks every recorded migration of doc against the catalog: the SQL
 * of all of them in order makes one plan (a later migration's statement
 * replaces what an earlier one said of the same object), checked with
 * migctl_inspect_objects().  *out:
 * {"checked": N, "drift": [{"app", "name", "status": "missing" |
 *    "incomplete", "objects": [...not done...], "repair": [lines]}...],
 *  "unverifiable": [{"app", "name", "reason"}...],
 *  "unknown": [{"app", "name"}...],       recorded, not in the code
 *  "replaced": [{"app", "name", "squashed_into"}...],
 *  "pending": [{"app", "name"}...],
 *  "migrations": [{"app", "name", "recorded", "status"}...]}
 * MIGCTL_PROBLEM when drift is found, MIGCTL_OK otherwise.
 */
int migctl_verify_check(migctl_ctx_t *ctx, PGconn *conn, json_t *doc,
    json_t **out);

/* the Django-side script, as `migctl verify --print-script` shows it */
extern const char migctl_verify_script[];

#endif /* MIGCTL_VERIFY_H */
