/*
 * out.c: how migctl speaks: one-line errors on stderr, JSON on stdout,
 * and reading input files.
 */

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <unistd.h>
#include <sys/time.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migctl.h"


static int            json_printed;

/* main()'s, for a failure no caller returns from (migctl_fatal) */
static migctl_ctx_t  *fatal_ctx;


int
migctl_error(migctl_ctx_t *ctx, int code, const char *fmt, ...)
{
    char     raw[sizeof(ctx->error)];
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);

    /* names, query texts and Redis values reach here: no terminal codes */
    migctl_escape(raw, ctx->error, sizeof(ctx->error));

    if (ctx->cmd == NULL || strcmp(ctx->cmd, "migctl") == 0) {
        fprintf(stderr, "migctl: %s\n", ctx->error);

    } else {
        fprintf(stderr, "migctl: %s: %s\n", ctx->cmd, ctx->error);
    }

    return code;
}


/* --json: a failed command still answers in JSON, on stdout */
void
migctl_json_error(migctl_ctx_t *ctx, int rc)
{
    json_t  *o, *b;

    o = json_object();
    if (o == NULL) {
        return;
    }

    json_object_set_new(o, "error", json_string(ctx->error));

    /* a read blocked by a lock: who blocked it, for a program to act on */
    b = ctx->error_details ? ctx->error_details() : NULL;
    if (json_array_size(b) > 0) {
        json_object_set(o, "blockers", b);
    }

    ctx->json = 1;
    (void) migctl_json_result(ctx, o, rc);
}


void
migctl_fatal_ctx(migctl_ctx_t *ctx)
{
    fatal_ctx = ctx;
}


/*
 * The error path of every failure, for one no caller can return from (a
 * library that cannot be loaded, in any thread): the one line without the
 * command's name (it is no fault of the command), the JSON error object
 * under --json, then _exit(): another thread may be inside a library
 * whose destructors exit() would run under it.  The first caller speaks.
 */
void
migctl_fatal(int code, const char *fmt, ...)
{
    char        msg[sizeof(fatal_ctx->error)];
    va_list     ap;
    const char *cmd;

    static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;

    /* never unlocked: a second caller waits here for the _exit() */
    (void) pthread_mutex_lock(&lock);

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (fatal_ctx == NULL) {
        (void) fflush(stdout);
        fprintf(stderr, "migctl: %s\n", msg);
        _exit(code);
    }

    cmd = fatal_ctx->cmd;
    fatal_ctx->cmd = NULL;
    (void) migctl_error(fatal_ctx, code, "%s", msg);
    fatal_ctx->cmd = cmd;

    if (fatal_ctx->json && !json_printed) {
        migctl_json_error(fatal_ctx, code);
    }

    (void) fflush(stdout);
    _exit(code);
}


int
migctl_json_result(migctl_ctx_t *ctx, json_t *result, int rc)
{
    json_t  *o;

    o = json_object();
    if (o == NULL) {
        json_decref(result);
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }

    json_object_set_new(o, "command", json_string(ctx->cmd ? ctx->cmd
                                                            : "migctl"));
    json_object_set_new(o, "version", json_string(MIG_VERSION));
    json_object_set_new(o, "ok", json_boolean(rc == MIGCTL_OK));
    json_object_set_new(o, "exit", json_integer(rc));

    if (json_is_object(result)) {
        json_object_update(o, result);

    } else if (result != NULL) {
        json_object_set(o, "result", result);
    }

    json_decref(result);

    if (migctl_json_print(o) != 0) {
        json_decref(o);
        return migctl_error(ctx, MIGCTL_PROBLEM, "writing output: %s",
                            strerror(errno));
    }

    json_decref(o);

    return rc;
}


int
migctl_json_printed(void)
{
    return json_printed;
}


int
migctl_json_print(json_t *value)
{
    json_printed = 1;

    if (json_dumpf(value, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
        != 0)
    {
        return -1;
    }

    return fputc('\n', stdout) == EOF ? -1 : 0;
}


size_t
migctl_escape(const char *in, char *out, size_t size)
{
    size_t          n;
    unsigned char   c;

    if (size == 0) {
        return 0;
    }

    /* control characters as \xNN (tab too): one line, no terminal codes */
    for (n = 0; *in != '\0' && n + 1 < size; in++) {
        c = (unsigned char) *in;

        if (c < 0x20 || c == 0x7f) {
            if (size - n < 5) {
                break;
            }
            n += snprintf(out + n, size - n, "\\x%02x", c);
            continue;
        }

        out[n++] = (char) c;
    }

    out[n] = '\0';

    return n;
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
            snprintf(err, errlen, "cannot open %s: %s: check the path "
                     "(and that this user may read it)", path,
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


long long
migctl_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/*
 * who acts: $MIGCTL_ACTOR, else $SUDO_USER (under sudo $LOGNAME is root:
 * the audit must name the person), else $LOGNAME, else the effective user
 */
const char *
migctl_actor(void)
{
    const char     *a;
    struct passwd  *pw;

    a = getenv("MIGCTL_ACTOR");

    if (a == NULL || *a == '\0') {
        a = getenv("SUDO_USER");
    }

    if (a == NULL || *a == '\0') {
        a = getenv("LOGNAME");
    }

    if (a == NULL || *a == '\0') {
        pw = getpwuid(geteuid());
        a = pw ? pw->pw_name : "unknown";
    }

    return a;
}


/* unix ms: for times shown and stored, and the edges' heartbeat scores */
long long
migctl_wall_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/*
 * The end of every usage text, so that the shared lines exist once: the
 * database timeouts (closing "options:"), where the database and Redis
 * come from, the exit codes, an example.  codes: "0 applied;1 any other
 * verdict;2;3": a code alone gets its meaning from DESIGN.md (3: of the
 * services in what).
 */
void
migctl_usage_footer(FILE *f, unsigned what, const char *codes,
    const char *example)
{
    int          code;
    char         line[1024];
    size_t       n, len, col, w;
    const char  *p, *end, *nl;

    static const char  *meaning[] = {
        "ok", "a problem was found", "usage or configuration",
        "Redis or PostgreSQL unreachable", "refused by a safety gate",
        "the wrapped command failed"
    };

    if (what & MIGCTL_USAGE_DB_OPTS) {
        fprintf(f,
            "  --lock-timeout D        give up a read waiting on a lock"
            " after D\n"
            "                          (default 2s, database { } of the"
            " configuration)\n"
            "  --statement-timeout D   give up a read after D (default"
            " 30s)\n");
    }

    fprintf(f, "\n");

    if (!(what & MIGCTL_USAGE_MAIN)) {
        fprintf(f, "global options (-c FILE, --scope S, ...) go before"
                " COMMAND: see migctl help;\n"
                "--json and --help work after COMMAND too.\n");
    }

    if (what & MIGCTL_USAGE_DB) {
        fprintf(f, "database: DATABASE_URL or PGHOST/PGPORT/PGUSER/"
                "PGDATABASE (no password on\n"
                "  the command line)\n");
    }

    if (what & MIGCTL_USAGE_REDIS) {
        fprintf(f, "Redis: redis { ... } of the configuration (-c,"
                " $MIGCTL_CONFIG,\n"
                "  /etc/migctl/migctl.conf)\n");
    }

    /* "exit codes: 0 x, 1 y, ...", wrapped at 78 columns */
    n = (size_t) snprintf(line, sizeof(line), "exit codes:");

    for (p = codes; *p && n < sizeof(line) - 1; p = *end ? end + 1 : end) {
        end = strchr(p, ';');
        if (end == NULL) {
            end = p + strlen(p);
        }

        code = *p - '0';
        len = (size_t) (end - p);

        if (len == 1 && code == 3
            && (what & (MIGCTL_USAGE_DB | MIGCTL_USAGE_REDIS))
               != (MIGCTL_USAGE_DB | MIGCTL_USAGE_REDIS))
        {
            /* the one of the two this command talks to */
            n += (size_t) snprintf(line + n, sizeof(line) - n,
                                   " 3 %s unreachable,",
                                   (what & MIGCTL_USAGE_DB) ? "PostgreSQL"
                                                            : "Redis");

        } else if (len == 1 && code >= 0 && code <= 5) {
            n += (size_t) snprintf(line + n, sizeof(line) - n, " %d %s,",
                                   code, meaning[code]);
        } else {
            n += (size_t) snprintf(line + n, sizeof(line) - n, " %.*s,",
                                   (int) len, p);
        }
    }

    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
    }

    if (n > 0 && line[n - 1] == ',') {
        line[--n] = '\0';
    }

    for (p = line, col = 0; *p; p += w) {
        if (*p == ' ') {
            p++;
        }

        for (w = 0; p[w] && p[w] != ' '; w++) {
            /* void */
        }

        if (col > 0 && col + 1 + w > 78) {
            fprintf(f, "\n ");
            col = 1;
        }

        fprintf(f, "%s%.*s", col > 0 ? " " : "", (int) w, p);
        col += w + (col > 0);
    }

    fprintf(f, "\n");

    if (example == NULL) {
        return;
    }

    fprintf(f, "example:\n");

    for (p = example; *p; p = *nl ? nl + 1 : nl) {
        nl = strchr(p, '\n');
        if (nl == NULL) {
            nl = p + strlen(p);
        }
        fprintf(f, "  %.*s\n", (int) (nl - p), p);
    }
}
