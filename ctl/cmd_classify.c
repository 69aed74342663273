/*
 * cmd_classify.c: migctl classify.  Placeholder until its issue lands.
 */

#include "migctl.h"


int
cmd_classify(int argc, char **argv, migctl_ctx_t *ctx)
{
    (void) argc;
    (void) argv;

    return migctl_error(ctx, MIGCTL_USAGE, "not implemented yet");
}


int
migctl_classify_text(migctl_ctx_t *ctx, const char *text, size_t len,
    json_t **out)
{
    (void) text;
    (void) len;
    (void) out;

    return migctl_error(ctx, MIGCTL_USAGE, "not implemented yet");
}
