/*
 * runs.c: what `run` and `evidence` share: the evidence root, the secret
 * values scrubbed from every file they write, shell quoting, wall time.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <libconfig.h>
#include <libpq-fe.h>

#include "migctl.h"


#define SECRET_MIN      4            /* shorter values are not scrubbed */
#define REDACTED        "[redacted]"


extern char **environ;

static void add(migctl_secrets_t *s, const char *v, size_t len);
static void add_file(migctl_secrets_t *s, const char *path);
static int secret_name(const char *name, size_t len);
static int longer_first(const void *a, const void *b);


const char *
migctl_runs_dir(migctl_ctx_t *ctx, const char *opt)
{
    if (opt != NULL) {
        return opt;
    }

    return ctx->conf.runs_dir[0] ? ctx->conf.runs_dir : MIGCTL_RUNS_DIR;
}


int
migctl_mkdirs(const char *path, int mode)
{
    char    buf[MIGCTL_PATH_MAX], *p;
    size_t  len;

    len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    memcpy(buf, path, len + 1);

    for (p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }

        if (p[-1] != '/') {
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = (char) (p == buf + len ? '\0' : '/');
        }

        if (p == buf + len) {
            break;
        }
    }

    return 0;
}


void
migctl_secrets_load(migctl_ctx_t *ctx, migctl_secrets_t *s,
    const char *pass)
{
    int                 i;
    char               *err, **e;
    const char         *v, *eq;
    config_t           *lc;
    PQconninfoOption   *opts, *o;
    config_setting_t   *l;

    memset(s, 0, sizeof(migctl_secrets_t));

    v = getenv("DATABASE_URL");
    if (v != NULL && *v != '\0') {
        err = NULL;
        opts = PQconninfoParse(v, &err);
        PQfreemem(err);

        for (o = opts; o != NULL && o->keyword != NULL; o++) {
            if (strcmp(o->keyword, "password") == 0 && o->val != NULL) {
                add(s, o->val, strlen(o->val));
            }
        }

        PQconninfoFree(opts);
    }

    if (pass != NULL) {
        add(s, pass, strlen(pass));
    }

    if (ctx->conf.redis_password_env[0]) {
        v = getenv(ctx->conf.redis_password_env);
        if (v != NULL) {
            add(s, v, strlen(v));
        }
    }

    if (ctx->conf.redis_password_file[0]) {
        add_file(s, ctx->conf.redis_password_file);
    }

    /* the sentinels' password (redis.sentinel), as the master's */
    if (ctx->conf.sentinel_password_env[0]) {
        v = getenv(ctx->conf.sentinel_password_env);
        if (v != NULL) {
            add(s, v, strlen(v));
        }
    }

    if (ctx->conf.sentinel_password_file[0]) {
        add_file(s, ctx->conf.sentinel_password_file);
    }

    lc = (config_t *) ctx->conf.lc;
    l = lc ? config_lookup(lc, "evidence.secret_files") : NULL;

    for (i = 0; l != NULL && i < config_setting_length(l); i++) {
        v = config_setting_get_string_elem(l, i);
        if (v != NULL) {
            add_file(s, v);
        }
    }

    /* PGPASSWORD, DJANGO_SECRET_KEY, API_TOKEN...: values, never names */
    for (e = environ; e != NULL && *e != NULL; e++) {
        eq = strchr(*e, '=');
        if (eq != NULL && secret_name(*e, (size_t) (eq - *e))) {
            add(s, eq + 1, strlen(eq + 1));
        }
    }

    /* a secret that contains another is replaced whole */
    qsort(s->v, (size_t) s->n, sizeof(char *), longer_first);
}


void
migctl_secrets_free(migctl_secrets_t *s)
{
    int                      i;
    volatile unsigned char  *p;

    for (i = 0; i < s->n; i++) {
        for (p = (unsigned char *) s->v[i]; *p; p++) {
            *p = 0;
        }
        free(s->v[i]);
    }

    s->n = 0;
}


char *
migctl_scrub(const migctl_secrets_t *s, const char *in, size_t len)
{
    int      i, hit;
    char    *out, *p;
    size_t   cap, n, k, sl, off, pw;

    cap = len * 2 + 64;
    out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }

    n = 0;

    for (k = 0; k < len; ) {
        hit = 0;

        for (i = 0; i < s->n; i++) {
            sl = strlen(s->v[i]);
            if (sl <= len - k && memcmp(in + k, s->v[i], sl) == 0) {
                hit = 1;
                k += sl;
                break;
            }
        }

        /* "scheme://user:password@host": the password, whatever it is */
        if (!hit && k + 3 <= len && memcmp(in + k, "://", 3) == 0) {
            off = migctl_url_password(in + k + 3, len - k - 3, &pw);

            if (pw > 0) {
                sl = 3 + off;
                if (n + sl + sizeof(REDACTED) + 1 >= cap) {
                    goto grow;
                }
                memcpy(out + n, in + k, sl);
                n += sl;
                memcpy(out + n, REDACTED, sizeof(REDACTED) - 1);
                n += sizeof(REDACTED) - 1;
                k += sl + pw;
                continue;
            }
        }

        if (n + sizeof(REDACTED) + 1 >= cap) {
            goto grow;
        }

        if (hit) {
            memcpy(out + n, REDACTED, sizeof(REDACTED) - 1);
            n += sizeof(REDACTED) - 1;

        } else {
            out[n++] = in[k++];
        }

        continue;

    grow:

        cap *= 2;
        p = realloc(out, cap);
        if (p == NULL) {
            free(out);
            return NULL;
        }
        out = p;
    }

    out[n] = '\0';

    return out;
}


size_t
migctl_shell_quote(char *buf, size_t size, char *const *argv, int argc)
{
    int          i, plain;
    size_t       n;
    const char  *a, *c;

    n = strlen(buf);

    for (i = 0; i < argc && n + 1 < size; i++) {
        a = argv[i];
        plain = *a != '\0';

        for (c = a; *c; c++) {
            if (!isalnum((unsigned char) *c) && strchr("@%+=:,./_-", *c)
                == NULL)
            {
                plain = 0;
                break;
            }
        }

        if (n && n + 1 < size) {
            buf[n++] = ' ';
        }

        if (plain) {
            n += snprintf(buf + n, size - n, "%s", a);

        } else {
            /* 'it'\''s': the one quoting every POSIX shell reads back */
            if (n + 1 < size) {
                buf[n++] = '\'';
            }
            for (c = a; *c && n + 5 < size; c++) {
                if (*c == '\'') {
                    memcpy(buf + n, "'\\''", 4);
                    n += 4;
                } else {
                    buf[n++] = *c;
                }
            }
            if (n + 1 < size) {
                buf[n++] = '\'';
            }
        }

        if (n >= size) {
            n = size - 1;
        }
        buf[n] = '\0';
    }

    return n;
}



int
migctl_plain_name(const char *s)
{
    if (s == NULL || *s == '\0') {
        return 0;
    }

    for ( /* void */ ; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')
              || (*s >= '0' && *s <= '9') || *s == '_'))
        {
            return 0;
        }
    }

    return 1;
}

void
migctl_iso_time(char *buf, size_t size, long long ms, int with_ms)
{
    time_t     t;
    struct tm  tm;
    char       s[32];

    t = (time_t) (ms / 1000);

    if (gmtime_r(&t, &tm) == NULL
        || strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    {
        snprintf(buf, size, "-");
        return;
    }

    if (with_ms) {
        snprintf(buf, size, "%s.%03dZ", s, (int) (ms % 1000));

    } else {
        snprintf(buf, size, "%sZ", s);
    }
}


void
migctl_iso_time_compact(char *buf, size_t size, long long ms, int with_ms)
{
    char    *p;
    size_t   n;

    migctl_iso_time(buf, size, ms, with_ms);

    n = 0;
    for (p = buf; *p; p++) {
        if (*p != '-' && *p != ':') {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
}


int
migctl_write_scrubbed(const migctl_secrets_t *s, const char *path,
    const char *text, size_t len)
{
    int      fd, rc, err;
    char    *t;
    size_t   tl;

    t = migctl_scrub(s, text, len);
    if (t == NULL) {
        errno = ENOMEM;
        return -1;
    }

    tl = strlen(t);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0) {
        rc = -1;
        err = errno;

    } else {
        rc = write(fd, t, tl) == (ssize_t) tl ? 0 : -1;
        err = errno;

        /* closed once, whatever happens; the first error is the one told */
        if (close(fd) != 0 && rc == 0) {
            rc = -1;
            err = errno;
        }
    }

    free(t);
    errno = err;

    return rc;
}


static void
add(migctl_secrets_t *s, const char *v, size_t len)
{
    int  i;

    while (len > 0 && (v[len - 1] == '\n' || v[len - 1] == '\r')) {
        len--;
    }

    if (len < SECRET_MIN || s->n == MIGCTL_SECRETS_MAX) {
        return;
    }

    for (i = 0; i < s->n; i++) {
        if (strlen(s->v[i]) == len && memcmp(s->v[i], v, len) == 0) {
            return;
        }
    }

    s->v[s->n] = strndup(v, len);
    if (s->v[s->n] != NULL) {
        s->n++;
    }
}


static void
add_file(migctl_secrets_t *s, const char *path)
{
    char    *data, err[256];
    size_t   len;

    if (migctl_read_file(path, &data, &len, err, sizeof(err)) != 0) {
        return;                      /* unreadable: nothing to leak */
    }

    if (len <= 4096 && memchr(data, '\0', len) == NULL) {
        add(s, data, len);
    }

    memset(data, 0, len);
    free(data);
}


static int
secret_name(const char *name, size_t len)
{
    size_t       i, k;
    const char  *const words[] = { "PASSWORD", "PASSWD", "SECRET", "TOKEN",
                                   "_KEY", "CREDENTIAL", NULL };

    for (k = 0; words[k] != NULL; k++) {
        for (i = 0; i + strlen(words[k]) <= len; i++) {
            if (strncasecmp(name + i, words[k], strlen(words[k])) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


static int
longer_first(const void *a, const void *b)
{
    size_t  la, lb;

    la = strlen(*(char *const *) a);
    lb = strlen(*(char *const *) b);

    return la < lb ? 1 : la > lb ? -1 : 0;
}
