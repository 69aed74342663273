/*
 * cmd_diagnose.c: migctl diagnose.  Placeholder until its issue lands.
 */

#include "migctl.h"


int
cmd_diagnose(int argc, char **argv, migctl_ctx_t *ctx)
{
    (void) argc;
    (void) argv;

    return migctl_error(ctx, MIGCTL_USAGE, "not implemented yet");
}
