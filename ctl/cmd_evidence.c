/*
 * cmd_evidence.c: migctl evidence: the incident bundle.
 */

#include "migctl.h"


int
cmd_evidence(int argc, char **argv, migctl_ctx_t *ctx)
{
    (void) argc;
    (void) argv;

    return migctl_error(ctx, MIGCTL_USAGE, "not yet");
}
