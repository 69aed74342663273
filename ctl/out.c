/*
 * out.c: how migctl speaks: one-line errors on stderr, JSON on stdout,
 * and reading input files.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"


int
migctl_error(migctl_ctx_t *ctx, int code, const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "migctl: %s: ", ctx->cmd ? ctx->cmd : "migctl");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);

    return code;
}


int
migctl_json_print(json_t *value)
{
    if (json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
        != 0)
    {
        return -1;
    }

    return fputc('\n', stdout) == EOF ? -1 : 0;
}


int
migctl_read_file(const char *path, char **data, size_t *len, char *err,
    size_t errlen)
{
    int      rc;
    FILE    *f;
    char    *buf, *p;
    size_t   n, size;

    rc = -1;
    buf = NULL;

    if (strcmp(path, "-") == 0) {
        f = stdin;

    } else {
        f = fopen(path, "rb");
        if (f == NULL) {
            snprintf(err, errlen, "cannot open %s: %s", path,
                     strerror(errno));
            return -1;
        }
    }

    size = 8192;
    n = 0;
    buf = malloc(size);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto done;
    }

    for ( ;; ) {
        n += fread(buf + n, 1, size - n - 1, f);

        if (ferror(f)) {
            snprintf(err, errlen, "cannot read %s: %s", path,
                     strerror(errno));
            goto done;
        }

        if (feof(f)) {
            break;
        }

        size *= 2;
        p = realloc(buf, size);
        if (p == NULL) {
            snprintf(err, errlen, "out of memory reading %s", path);
            goto done;
        }
        buf = p;
    }

    buf[n] = '\0';
    *data = buf;
    *len = n;
    buf = NULL;
    rc = 0;

done:

    free(buf);
    if (f != stdin) {
        fclose(f);
    }

    return rc;
}
