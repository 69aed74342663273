/*
 * cmd_locks.c: migctl locks.  Placeholder until its issue lands.
 */

#include "migctl.h"


int
cmd_locks(int argc, char **argv, migctl_ctx_t *ctx)
{
    (void) argc;
    (void) argv;

    return migctl_error(ctx, MIGCTL_USAGE, "not implemented yet");
}
