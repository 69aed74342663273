/*
 * redis.c: migctl's synchronous Redis link (hiredis): connect, AUTH,
 * SELECT with the configured timeout; the password never leaves memory.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "migctl.h"


#define MIGCTL_PASSWORD_MAX  1024


static int read_password(migctl_ctx_t *ctx, char *buf, size_t size,
    int *have);
static void wipe(void *p, size_t n);


int
migctl_redis_open(migctl_ctx_t *ctx, redisContext **out)
{
    int              rc, have, n;
    char             password[MIGCTL_PASSWORD_MAX + 1], db[16];
    const char      *argv[3];
    size_t           lens[3];
    redisReply      *r;
    redisContext    *c;
    struct timeval   tv;
    migctl_conf_t   *cf;

    cf = &ctx->conf;
    c = NULL;
    r = NULL;
    have = 0;
    *out = NULL;

    rc = read_password(ctx, password, sizeof(password), &have);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    rc = MIGCTL_UNREACHABLE;

    tv.tv_sec = cf->redis_timeout_ms / 1000;
    tv.tv_usec = (cf->redis_timeout_ms % 1000) * 1000;

    if (cf->redis_unix[0]) {
        c = redisConnectUnixWithTimeout(cf->redis_unix, tv);

    } else {
        c = redisConnectWithTimeout(cf->redis_host, cf->redis_port, tv);
    }

    if (c == NULL || c->err) {
        migctl_error(ctx, rc, "Redis %s unreachable: %s: check that Redis"
                     " runs and redis { } in %s", migctl_redis_addr(ctx),
                     c ? c->errstr : "out of memory",
                     cf->source[0] ? cf->source : "the configuration");
        goto done;
    }

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        migctl_error(ctx, rc, "Redis %s: cannot set the timeout: %s",
                     migctl_redis_addr(ctx), c->errstr);
        goto done;
    }

    if (have) {
        n = 0;
        argv[n] = "AUTH";
        lens[n++] = 4;

        if (cf->redis_user[0]) {
            argv[n] = cf->redis_user;
            lens[n++] = strlen(cf->redis_user);
        }

        argv[n] = password;
        lens[n++] = strlen(password);

        r = migctl_redis_cmd(ctx, c, n, argv, lens);
        wipe(password, sizeof(password));

        if (r == NULL) {
            goto done;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            /* the reply names no password: "WRONGPASS ..." */
            migctl_error(ctx, rc, "Redis %s refused AUTH%s%s: %s: check"
                         " the password and redis.user",
                         migctl_redis_addr(ctx),
                         cf->redis_user[0] ? " as " : "", cf->redis_user,
                         r->str);
            goto done;
        }

        freeReplyObject(r);
        r = NULL;
    }

    if (cf->redis_db != 0) {
        n = snprintf(db, sizeof(db), "%d", cf->redis_db);
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = db;
        lens[1] = (size_t) n;

        r = migctl_redis_cmd(ctx, c, 2, argv, lens);
        if (r == NULL) {
            goto done;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            migctl_error(ctx, MIGCTL_USAGE, "Redis %s: SELECT %d: %s: fix"
                         " redis.db", migctl_redis_addr(ctx), cf->redis_db,
                         r->str);
            rc = MIGCTL_USAGE;
            goto done;
        }

        freeReplyObject(r);
        r = NULL;
    }

    /*
     * A server that accepted the connection but does not answer (stopped,
     * overloaded) is found here, before any write is sent: a change is
     * only sent to a server that has just answered.
     */
    argv[0] = "PING";
    lens[0] = 4;

    r = migctl_redis_cmd(ctx, c, 1, argv, lens);
    if (r == NULL) {
        goto done;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        migctl_error(ctx, rc, "Redis %s: PING: %s: check redis.user and"
                     " the password", migctl_redis_addr(ctx), r->str);
        goto done;
    }

    *out = c;
    c = NULL;
    rc = MIGCTL_OK;

done:

    wipe(password, sizeof(password));

    if (r != NULL) {
        freeReplyObject(r);
    }

    if (c != NULL) {
        redisFree(c);
    }

    return rc;
}


void
migctl_redis_close(redisContext *c)
{
    if (c != NULL) {
        redisFree(c);
    }
}


redisReply *
migctl_redis_cmd(migctl_ctx_t *ctx, redisContext *c, int argc,
    const char **argv, const size_t *lens)
{
    redisReply  *r;

    if (c->err) {
        migctl_error(ctx, MIGCTL_UNREACHABLE, "Redis %s: %s: check that"
                     " Redis runs", migctl_redis_addr(ctx), c->errstr);
        return NULL;
    }

    r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL) {
        migctl_error(ctx, MIGCTL_UNREACHABLE, "Redis %s: %s %s: check that"
                     " Redis runs and answers within redis.timeout_ms"
                     " (%d ms)", migctl_redis_addr(ctx), argv[0],
                     c->err == REDIS_ERR_IO && errno == EAGAIN
                     ? "timed out" : c->errstr,
                     ctx->conf.redis_timeout_ms);
        return NULL;
    }

    return r;
}


const char *
migctl_redis_addr(migctl_ctx_t *ctx)
{
    static char     addr[MIGCTL_PATH_MAX + 300];
    migctl_conf_t  *cf = &ctx->conf;

    if (cf->redis_unix[0]) {
        snprintf(addr, sizeof(addr), "unix:%s", cf->redis_unix);

    } else {
        snprintf(addr, sizeof(addr), "%s:%d", cf->redis_host,
                 cf->redis_port);
    }

    return addr;
}


static int
read_password(migctl_ctx_t *ctx, char *buf, size_t size, int *have)
{
    char           *data;
    size_t          len;
    const char     *v;
    char            err[MIGCTL_PATH_MAX + 128];
    migctl_conf_t  *cf = &ctx->conf;

    buf[0] = '\0';
    *have = 0;

    if (cf->redis_password_env[0]) {
        v = getenv(cf->redis_password_env);
        if (v == NULL || *v == '\0') {
            return migctl_error(ctx, MIGCTL_USAGE, "redis.password_env names"
                                " $%s, which is not set: export it or fix"
                                " the configuration",
                                cf->redis_password_env);
        }

        if (strlen(v) >= size) {
            return migctl_error(ctx, MIGCTL_USAGE, "$%s is longer than %zu"
                                " bytes", cf->redis_password_env, size - 1);
        }

        strcpy(buf, v);
        *have = 1;
        return MIGCTL_OK;
    }

    if (cf->redis_password_file[0] == '\0') {
        return MIGCTL_OK;
    }

    if (migctl_read_file(cf->redis_password_file, &data, &len, err,
                         sizeof(err))
        != 0)
    {
        return migctl_error(ctx, MIGCTL_USAGE, "redis.password_file: %s:"
                            " fix the path or its permissions", err);
    }

    /* one line; the trailing newline of an editor is not part of it */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r')) {
        len--;
    }

    if (len == 0 || len >= size || memchr(data, '\n', len) != NULL) {
        wipe(data, len);
        free(data);
        return migctl_error(ctx, MIGCTL_USAGE, "redis.password_file %s must"
                            " hold the password on one line (1..%zu bytes)",
                            cf->redis_password_file, size - 1);
    }

    memcpy(buf, data, len);
    buf[len] = '\0';
    *have = 1;

    wipe(data, len);
    free(data);

    return MIGCTL_OK;
}


static void
wipe(void *p, size_t n)
{
    volatile unsigned char  *v = p;

    while (n--) {
        *v++ = 0;
    }
}
