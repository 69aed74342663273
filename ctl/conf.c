/*
 * conf.c: migctl's configuration.  Placeholder: built-in defaults only,
 * until libconfig loading lands.
 */

#include <string.h>

#include "migctl.h"


int
migctl_conf_load(migctl_ctx_t *ctx, char *err, size_t errlen)
{
    migctl_conf_t  *cf = &ctx->conf;

    (void) err;
    (void) errlen;

    strcpy(cf->redis_host, "127.0.0.1");
    cf->redis_port = 6379;
    cf->redis_timeout_ms = 2000;
    strcpy(cf->prefix, MIG_DEFAULT_PREFIX);

    return 0;
}
