/*
 * conf.c: libFuzzer target of migctl's configuration reader (ctl/conf.c,
 * over libconfig): any file gives a configuration or a FILE:LINE error.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migctl.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


static char  path[64];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    snprintf(path, sizeof(path), "/tmp/migctl-fuzz-conf.%ld", (long) getpid());

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE          *f;
    char           err[MIGCTL_PATH_MAX + 512];
    migctl_ctx_t  *ctx;

    f = fopen(path, "wb");
    if (f == NULL) {
        return 0;
    }
    if (fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);

    /* the context is large (paths, checks): not on the stack */
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return 0;
    }
    ctx->cmd = "fuzz";
    ctx->config_path = path;
    strcpy(ctx->scope, "default");

    (void) migctl_conf_load(ctx, err, sizeof(err));
    migctl_conf_free(ctx);
    free(ctx);
    unlink(path);

    return 0;
}
