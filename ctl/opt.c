/*
 * opt.c: the one option parser of every migctl command (as git's
 * parse-options): "--opt value" and "--opt=value" alike, durations, lists.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"


static const migctl_opt_t *find(const migctl_opt_t *opts, const char *a,
    size_t len);
static int set(migctl_ctx_t *ctx, const migctl_opt_t *o, const char *v);
static int want_value(const migctl_opt_t *o);


int
migctl_opt_parse(migctl_ctx_t *ctx, const migctl_opt_t *opts, int argc,
    char **argv, int *nargs, void (*usage)(FILE *f))
{
    int                  i, n, rc, dashdash;
    size_t               len;
    const char          *a, *eq, *v;
    const migctl_opt_t  *o;

    /* argv[0] is the command (or subcommand) name: kept in place */
    n = 1;
    dashdash = 0;

    for (i = 1; i < argc; i++) {
        a = argv[i];

        if (dashdash || a[0] != '-' || a[1] == '\0') {
            argv[n++] = argv[i];            /* an operand, or "-" */
            continue;
        }

        if (strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            if (usage != NULL) {
                usage(stdout);
            }
            return MIGCTL_OPT_HELP;
        }

        if (strcmp(a, "--json") == 0) {
            ctx->json = 1;
            continue;
        }

        eq = strchr(a, '=');
        len = eq ? (size_t) (eq - a) : strlen(a);

        o = find(opts, a, len);
        if (o == NULL) {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "unknown option '%.*s': see migctl %s --help",
                                (int) len, a, ctx->cmd);
        }

        if (!want_value(o)) {
            if (eq != NULL) {
                return migctl_error(ctx, MIGCTL_USAGE,
                                    "%s takes no value", o->name);
            }
            v = NULL;

        } else if (eq != NULL) {
            v = eq + 1;

        } else if (o->type == MIGCTL_OPT_OPTIONAL_SECONDS) {
            /* "--wait 5" as "--wait=5"; "--wait" alone takes the default */
            v = NULL;
            if (i + 1 < argc && argv[i + 1][0] >= '0'
                && argv[i + 1][0] <= '9')
            {
                v = argv[++i];
            }

        } else if (i + 1 < argc) {
            v = argv[++i];

        } else {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "%s needs %s: see migctl %s --help",
                                o->name, o->arg ? o->arg : "a value",
                                ctx->cmd);
        }

        rc = set(ctx, o, v);
        if (rc != MIGCTL_OK) {
            return rc;
        }
    }

    argv[n] = NULL;

    if (nargs != NULL) {
        *nargs = n;

    } else if (n > 1) {
        return migctl_error(ctx, MIGCTL_USAGE, "unexpected argument '%s':"
                            " see migctl %s --help", argv[1], ctx->cmd);
    }

    return MIGCTL_OK;
}


int
migctl_parse_duration_ms(const char *s, long max_ms, long *ms)
{
    char    *end;
    double   v, unit;

    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ') {
        return -1;
    }

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s) {
        return -1;
    }

    if (*end == '\0' || strcmp(end, "s") == 0) {
        unit = 1000;
    } else if (strcmp(end, "ms") == 0) {
        unit = 1;
    } else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) {
        unit = 60000;
    } else if (strcmp(end, "h") == 0) {
        unit = 3600000;
    } else {
        return -1;
    }

    v *= unit;
    if (!(v >= 0) || v > (double) max_ms) {
        return -1;
    }

    *ms = (long) (v + 0.5);

    return 0;
}


static const migctl_opt_t *
find(const migctl_opt_t *opts, const char *a, size_t len)
{
    const migctl_opt_t  *o;

    for (o = opts; o != NULL && o->name != NULL; o++) {
        if (strlen(o->name) == len && strncmp(o->name, a, len) == 0) {
            return o;
        }
    }

    return NULL;
}


static int
want_value(const migctl_opt_t *o)
{
    return o->type != MIGCTL_OPT_FLAG;
}


static int
set(migctl_ctx_t *ctx, const migctl_opt_t *o, const char *v)
{
    long           n, max;
    char          *end;
    migctl_strv_t *sv;

    switch (o->type) {

    case MIGCTL_OPT_FLAG:
        *(int *) o->value = 1;
        return MIGCTL_OK;

    case MIGCTL_OPT_STRING:
        if (*v == '\0') {
            return migctl_error(ctx, MIGCTL_USAGE, "%s needs %s, not ''",
                                o->name, o->arg ? o->arg : "a value");
        }
        *(const char **) o->value = v;
        return MIGCTL_OK;

    case MIGCTL_OPT_STRINGS:
        sv = o->value;
        if (*v == '\0') {
            return migctl_error(ctx, MIGCTL_USAGE, "%s needs %s, not ''",
                                o->name, o->arg ? o->arg : "a value");
        }
        if (sv->n == MIGCTL_STRV_MAX) {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "%s given more than %d times", o->name,
                                MIGCTL_STRV_MAX);
        }
        sv->v[sv->n++] = v;
        return MIGCTL_OK;

    case MIGCTL_OPT_INT:
        errno = 0;
        n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 || n < o->min
            || n > o->max)
        {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "%s wants %s from %ld to %ld, not '%s'",
                                o->name, o->arg ? o->arg : "an integer",
                                o->min, o->max, v);
        }
        *(int *) o->value = (int) n;
        return MIGCTL_OK;

    case MIGCTL_OPT_OPTIONAL_SECONDS:
        if (v == NULL) {
            *(int *) o->value = (int) o->dflt;
            return MIGCTL_OK;
        }
        errno = 0;
        n = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 || n < 0
            || n > o->max)
        {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "%s wants seconds from 0 to %ld, not '%s'",
                                o->name, o->max, v);
        }
        *(int *) o->value = (int) n;
        return MIGCTL_OK;

    case MIGCTL_OPT_DURATION:
        max = o->max > 0 ? o->max : 86400L * 1000;
        if (migctl_parse_duration_ms(v, max, &n) != 0
            || n < o->min)
        {
            return migctl_error(ctx, MIGCTL_USAGE,
                                "%s wants a duration from %ldms to %lds "
                                "(e.g. 500ms, 2s, 1m), not '%s'", o->name,
                                o->min, max / 1000, v);
        }
        *(long *) o->value = n;
        return MIGCTL_OK;
    }

    return migctl_error(ctx, MIGCTL_USAGE, "%s: bad option table", o->name);
}
