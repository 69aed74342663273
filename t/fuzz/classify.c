/*
 * classify.c: libFuzzer target of migctl's traceback and log classifier
 * (ctl/classify.c): any bytes, any size, a result or an error.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *text;
    json_t        *out;
    migctl_ctx_t   ctx;

    /* the command hands a NUL-terminated copy, as migctl_read_file does */
    text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    memset(&ctx, 0, sizeof(ctx));
    ctx.cmd = "classify";
    out = NULL;

    (void) migctl_classify_text(&ctx, text, size, &out);

    json_decref(out);
    free(text);

    return 0;
}
