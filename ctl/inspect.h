/*
 * inspect.h: what cmd_inspect.c takes from inspect_catalog.c besides
 * migctl_inspect_objects() (verify.h).
 */

#ifndef MIGCTL_INSPECT_H
#define MIGCTL_INSPECT_H

#include <libpq-fe.h>
#include <jansson.h>

#include "migctl.h"


/* the error of a failed catalog query on "what"s: its exit code */
int migctl_inspect_query_failed(migctl_ctx_t *ctx, PGconn *conn,
    const char *what);

/* a JSON string, null for NULL; a name that is not UTF-8 still prints */
json_t *migctl_inspect_jstr(const char *s);

#endif /* MIGCTL_INSPECT_H */
