/*
 * redis.c: migctl's synchronous Redis link (hiredis): connect, AUTH,
 * SELECT with the configured timeout, or the master found through Redis
 * Sentinel (confirmed with ROLE); the passwords never leave memory.
 */

#include <errno.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "migctl.h"


#define MIGCTL_PASSWORD_MAX  1024
#define SENTINEL_TIMEOUT_MS  1000            /* per sentinel, at most */
#define WHY_MAX              512


/* where a server connection is going: a configured server or a master */
typedef struct {
    const char  *host;
    int          port;
    const char  *unix_path;                  /* NULL: TCP */
    int          timeout_ms;
    const char  *user;                       /* "" or NULL: none */
    const char  *password;                   /* NULL: no AUTH */
    int          db;
    int          role;                       /* ROLE must say master */
} server_t;

/* the master the last discovery found: messages and --json; threads */
static struct {
    pthread_mutex_t  lock;
    int              found;
    char             addr[300];              /* "host:port" */
    char             via[300];               /* sentinel "host:port" */
} found = { PTHREAD_MUTEX_INITIALIZER, 0, "", "" };


static const char  advice_timeout[] =
    "check that Redis runs and answers within redis.timeout_ms";
static const char  advice_connect[] =
    "check that Redis runs and redis { } in ";


static const char *timeout_ms(migctl_ctx_t *ctx);
static int server_open(server_t *sv, redisContext **out, char *why,
    size_t whylen, const char **advice);
static int sentinel_open(migctl_ctx_t *ctx, const char *password,
    redisContext **out);
static int is_name(const char *host);
static int sentinel_ask(migctl_ctx_t *ctx, int i, const char *spass,
    char *host, size_t hsize, int *port, char *why, size_t whylen);
static redisReply *cmd_quiet(redisContext *c, int argc, const char **argv,
    const size_t *lens, char *why, size_t whylen);
static void conn_why(redisContext *c, char *why, size_t whylen);
static void fmt_addr(char *buf, size_t size, const char *host, int port);
static int read_password(migctl_ctx_t *ctx, const char *what,
    const char *file, const char *env, char *buf, size_t size, int *have);
static void wipe(void *p, size_t n);


int
migctl_redis_open(migctl_ctx_t *ctx, redisContext **out)
{
    int             rc, have;
    char            password[MIGCTL_PASSWORD_MAX + 1], why[WHY_MAX];
    const char     *advice;
    server_t        sv;
    migctl_conf_t  *cf;

    cf = &ctx->conf;
    *out = NULL;

    rc = read_password(ctx, "redis", cf->redis_password_file,
                       cf->redis_password_env, password, sizeof(password),
                       &have);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    if (cf->nsentinels > 0) {
        rc = sentinel_open(ctx, have ? password : NULL, out);
        goto done;
    }

    memset(&sv, 0, sizeof(server_t));
    sv.host = cf->redis_host;
    sv.port = cf->redis_port;
    sv.unix_path = cf->redis_unix[0] ? cf->redis_unix : NULL;
    sv.timeout_ms = cf->redis_timeout_ms;
    sv.user = cf->redis_user;
    sv.password = have ? password : NULL;
    sv.db = cf->redis_db;

    rc = server_open(&sv, out, why, sizeof(why), &advice);
    if (rc != MIGCTL_OK) {
        /* "Redis H:P unreachable: ...", "Redis H:P: PING timed out: ..." */
        migctl_error(ctx, rc, "Redis %s%s %s: %s%s%s",
                     migctl_redis_addr(ctx),
                     strncmp(why, "unreachable", 11) == 0
                     || strncmp(why, "refused", 7) == 0 ? "" : ":",
                     why, advice,
                     advice == advice_timeout ? timeout_ms(ctx) : "",
                     advice != advice_connect ? ""
                     : cf->source[0] ? cf->source
                     : "/etc/migctl/migctl.conf (not found: this "
                       "is the built-in default; -c or $MIGCTL_CONFIG "
                       "name another file)");
    }

done:

    wipe(password, sizeof(password));

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
    static __thread char  addr[MIGCTL_PATH_MAX + 800];
    migctl_conf_t        *cf = &ctx->conf;

    if (cf->nsentinels > 0) {
        pthread_mutex_lock(&found.lock);

        if (found.found) {
            snprintf(addr, sizeof(addr), "%s (master of %s via sentinel"
                     " %s)", found.addr, cf->sentinel_master, found.via);

        } else {
            snprintf(addr, sizeof(addr), "master %s (through %d"
                     " sentinel%s)", cf->sentinel_master, cf->nsentinels,
                     cf->nsentinels == 1 ? "" : "s");
        }

        pthread_mutex_unlock(&found.lock);

    } else if (cf->redis_unix[0]) {
        snprintf(addr, sizeof(addr), "unix:%s", cf->redis_unix);

    } else {
        fmt_addr(addr, sizeof(addr), cf->redis_host, cf->redis_port);
    }

    return addr;
}


json_t *
migctl_redis_json(migctl_ctx_t *ctx)
{
    char            addr[MIGCTL_PATH_MAX + 8];
    json_t         *o;
    migctl_conf_t  *cf = &ctx->conf;

    o = json_object();

    if (cf->nsentinels == 0) {
        if (cf->redis_unix[0]) {
            snprintf(addr, sizeof(addr), "unix:%s", cf->redis_unix);

        } else {
            fmt_addr(addr, sizeof(addr), cf->redis_host, cf->redis_port);
        }

        json_object_set_new(o, "addr", json_string(addr));
        return o;
    }

    json_object_set_new(o, "master_name",
                        json_string(cf->sentinel_master));

    pthread_mutex_lock(&found.lock);
    json_object_set_new(o, "addr", found.found ? json_string(found.addr)
                                               : json_null());
    json_object_set_new(o, "sentinel", found.found ? json_string(found.via)
                                                   : json_null());
    pthread_mutex_unlock(&found.lock);

    return o;
}


int
migctl_redis_readonly(const redisReply *r)
{
    /* "READONLY You can't write ...", also from a script's redis.call */
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 8
           && strncmp(r->str, "READONLY", 8) == 0;
}


/*
 * The Sentinel client guidelines: each sentinel in turn, with a short
 * timeout, SENTINEL get-master-addr-by-name; the address it gives is
 * used only once ROLE there says master (a stale sentinel names a
 * demoted master, now a replica: the next sentinel is asked).  All fail:
 * one line naming every sentinel and why.
 */
static int
sentinel_open(migctl_ctx_t *ctx, const char *password, redisContext **out)
{
    int             i, rc, have, port;
    char            spass[MIGCTL_PASSWORD_MAX + 1], host[256], addr[300],
                    via[300], why[WHY_MAX], all[4096];
    size_t          len;
    const char     *advice;
    server_t        sv;
    migctl_conf_t  *cf = &ctx->conf;

    rc = read_password(ctx, "redis.sentinel", cf->sentinel_password_file,
                       cf->sentinel_password_env, spass, sizeof(spass),
                       &have);
    if (rc != MIGCTL_OK) {
        goto done;
    }

    all[0] = '\0';
    len = 0;

    for (i = 0; i < cf->nsentinels; i++) {
        fmt_addr(via, sizeof(via), cf->sentinel_host[i],
                 cf->sentinel_port[i]);

        rc = sentinel_ask(ctx, i, have ? spass : NULL, host, sizeof(host),
                          &port, why, sizeof(why));

        if (rc == MIGCTL_OK) {
            fmt_addr(addr, sizeof(addr), host, port);

            memset(&sv, 0, sizeof(server_t));
            sv.host = host;
            sv.port = port;
            sv.timeout_ms = cf->redis_timeout_ms;
            sv.user = cf->redis_user;
            sv.password = password;
            sv.db = cf->redis_db;
            sv.role = 1;

            rc = server_open(&sv, out, why, sizeof(why), &advice);

            if (rc == MIGCTL_OK) {
                pthread_mutex_lock(&found.lock);
                found.found = 1;
                strcpy(found.addr, addr);
                strcpy(found.via, via);
                pthread_mutex_unlock(&found.lock);
                goto done;
            }

            if (rc == MIGCTL_USAGE) {
                /* redis.db: the same on every master, not a failover */
                migctl_error(ctx, rc, "Redis %s (master of %s via sentinel"
                             " %s) %s: %s", addr, cf->sentinel_master, via,
                             why, advice);
                goto done;
            }

            /* "pointed at a replica 127.0.0.1:6380" and the like */
            snprintf(all + len, sizeof(all) - len, "%s%s pointed at %s%s",
                     len ? ", " : "", via,
                     strcmp(why, "a replica") == 0 ? "a replica " : "",
                     addr);
            len += strlen(all + len);

            if (strcmp(why, "a replica") != 0 && len < sizeof(all)) {
                snprintf(all + len, sizeof(all) - len, " (%s%s)", why,
                         is_name(host) ? "; a host name, as sentinels with"
                         " resolve-hostnames yes give: it must resolve on"
                         " this host" : "");
                len += strlen(all + len);
            }

        } else {
            snprintf(all + len, sizeof(all) - len, "%s%s %s",
                     len ? ", " : "", via, why);
            len += strlen(all + len);
        }

        if (len >= sizeof(all) - 1) {
            len = sizeof(all) - 1;
        }
    }

    rc = migctl_error(ctx, MIGCTL_UNREACHABLE, "Redis Sentinel: no master"
                      " \"%s\": %s: check the sentinels and redis.sentinel"
                      " in %s", cf->sentinel_master, all,
                      cf->source[0] ? cf->source : "the configuration");

done:

    wipe(spass, sizeof(spass));

    return rc;
}


/* not a numeric IPv4 or IPv6 address: resolved by hiredis (getaddrinfo) */
static int
is_name(const char *host)
{
    unsigned char  buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) != 1
           && inet_pton(AF_INET6, host, buf) != 1;
}


/*
 * Sentinel i: "host", "port" of the master it names, or a short reason
 * ("refused", "timed out", "unknown master", ...).  MIGCTL_OK or
 * MIGCTL_UNREACHABLE.
 */
static int
sentinel_ask(migctl_ctx_t *ctx, int i, const char *spass, char *host,
    size_t hsize, int *port, char *why, size_t whylen)
{
    int             rc, n, ms;
    long            v;
    char           *end;
    const char     *argv[3];
    size_t          lens[3];
    redisReply     *r;
    redisContext   *c;
    struct timeval  tv;
    migctl_conf_t  *cf = &ctx->conf;

    r = NULL;
    rc = MIGCTL_UNREACHABLE;

    ms = cf->redis_timeout_ms < SENTINEL_TIMEOUT_MS ? cf->redis_timeout_ms
                                                    : SENTINEL_TIMEOUT_MS;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;

    c = redisConnectWithTimeout(cf->sentinel_host[i], cf->sentinel_port[i],
                                tv);
    if (c == NULL || c->err) {
        conn_why(c, why, whylen);
        goto done;
    }

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "cannot set the timeout");
        goto done;
    }

    if (spass != NULL) {
        n = 0;
        argv[n] = "AUTH";
        lens[n++] = 4;

        if (cf->sentinel_user[0]) {
            argv[n] = cf->sentinel_user;
            lens[n++] = strlen(cf->sentinel_user);
        }

        argv[n] = spass;
        lens[n++] = strlen(spass);

        r = cmd_quiet(c, n, argv, lens, why, whylen);
        if (r == NULL) {
            if (strstr(why, "timed out") != NULL) {
                snprintf(why, whylen, "timed out");
            }
            goto done;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "refused AUTH: %.200s", r->str);
            goto done;
        }

        freeReplyObject(r);
        r = NULL;
    }

    argv[0] = "SENTINEL";
    lens[0] = 8;
    argv[1] = "get-master-addr-by-name";
    lens[1] = 23;
    argv[2] = cf->sentinel_master;
    lens[2] = strlen(cf->sentinel_master);

    r = cmd_quiet(c, 3, argv, lens, why, whylen);
    if (r == NULL) {
        if (strstr(why, "timed out") != NULL) {
            snprintf(why, whylen, "timed out");
        }
        goto done;
    }

    if (r->type == REDIS_REPLY_NIL) {
        snprintf(why, whylen, "unknown master");
        goto done;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "answered %.200s", r->str);
        goto done;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || r->element[0]->len == 0 || r->element[0]->len >= hsize
        || memchr(r->element[0]->str, '\0', r->element[0]->len) != NULL)
    {
        snprintf(why, whylen, "gave a malformed address");
        goto done;
    }

    errno = 0;
    v = strtol(r->element[1]->str, &end, 10);
    if (errno || *end != '\0' || end == r->element[1]->str || v < 1
        || v > 65535)
    {
        snprintf(why, whylen, "gave a malformed port");
        goto done;
    }

    memcpy(host, r->element[0]->str, r->element[0]->len);
    host[r->element[0]->len] = '\0';
    *port = (int) v;
    rc = MIGCTL_OK;

done:

    if (r != NULL) {
        freeReplyObject(r);
    }

    if (c != NULL) {
        redisFree(c);
    }

    return rc;
}


/*
 * Connect, AUTH, SELECT, then PING (or ROLE for a master found through
 * Sentinel: a replica is refused) within timeout_ms each.  MIGCTL_OK and
 * *out; else the reason in why ("unreachable: ...", "refused AUTH ...",
 * "a replica") and what to do in *advice.
 */
static int
server_open(server_t *sv, redisContext **out, char *why, size_t whylen,
    const char **advice)
{
    int              rc, n;
    char             db[16];
    const char      *argv[3];
    size_t           lens[3];
    redisReply      *r;
    redisContext    *c;
    struct timeval   tv;

    r = NULL;
    *out = NULL;
    why[0] = '\0';
    rc = MIGCTL_UNREACHABLE;
    *advice = advice_timeout;

    tv.tv_sec = sv->timeout_ms / 1000;
    tv.tv_usec = (sv->timeout_ms % 1000) * 1000;

    if (sv->unix_path != NULL) {
        c = redisConnectUnixWithTimeout(sv->unix_path, tv);

    } else {
        c = redisConnectWithTimeout(sv->host, sv->port, tv);
    }

    if (c == NULL || c->err) {
        snprintf(why, whylen, "unreachable: %s",
                 c ? c->errstr : "out of memory");
        *advice = advice_connect;
        goto done;
    }

    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "cannot set the timeout: %s", c->errstr);
        goto done;
    }

    if (sv->password != NULL) {
        n = 0;
        argv[n] = "AUTH";
        lens[n++] = 4;

        if (sv->user != NULL && sv->user[0]) {
            argv[n] = sv->user;
            lens[n++] = strlen(sv->user);
        }

        argv[n] = sv->password;
        lens[n++] = strlen(sv->password);

        r = cmd_quiet(c, n, argv, lens, why, whylen);
        if (r == NULL) {
            goto done;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            /* the reply names no password: "WRONGPASS ..." */
            snprintf(why, whylen, "refused AUTH%s%s: %.200s",
                     sv->user && sv->user[0] ? " as " : "",
                     sv->user ? sv->user : "", r->str);
            *advice = "check the password and redis.user";
            goto done;
        }

        freeReplyObject(r);
        r = NULL;
    }

    if (sv->db != 0) {
        n = snprintf(db, sizeof(db), "%d", sv->db);
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = db;
        lens[1] = (size_t) n;

        r = cmd_quiet(c, 2, argv, lens, why, whylen);
        if (r == NULL) {
            goto done;
        }

        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "SELECT %d: %.200s", sv->db, r->str);
            *advice = "fix redis.db";
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
    argv[0] = sv->role ? "ROLE" : "PING";
    lens[0] = 4;

    r = cmd_quiet(c, 1, argv, lens, why, whylen);
    if (r == NULL) {
        goto done;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s: %.200s", argv[0], r->str);
        *advice = "check redis.user and the password";
        goto done;
    }

    if (sv->role) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1
            || r->element[0]->type != REDIS_REPLY_STRING)
        {
            snprintf(why, whylen, "unexpected reply to ROLE");
            goto done;
        }

        if (strcmp(r->element[0]->str, "master") != 0) {
            snprintf(why, whylen, "%s", strcmp(r->element[0]->str, "slave")
                                        == 0 ? "a replica"
                                             : "not a master (ROLE)");
            goto done;
        }
    }

    *out = c;
    c = NULL;
    rc = MIGCTL_OK;

done:

    if (r != NULL) {
        freeReplyObject(r);
    }

    if (c != NULL) {
        redisFree(c);
    }

    return rc;
}


/* a command whose I/O error becomes a short reason in why, not printed */
static redisReply *
cmd_quiet(redisContext *c, int argc, const char **argv, const size_t *lens,
    char *why, size_t whylen)
{
    redisReply  *r;

    r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL) {
        if (c->err == REDIS_ERR_IO && errno == EAGAIN) {
            snprintf(why, whylen, "%s timed out", argv[0]);

        } else {
            snprintf(why, whylen, "%s: %s", argv[0], c->errstr);
        }
    }

    return r;
}


/* why a connection failed, in the words of the error line */
static void
conn_why(redisContext *c, char *why, size_t whylen)
{
    if (c == NULL) {
        snprintf(why, whylen, "out of memory");

    } else if (strstr(c->errstr, "refused") != NULL) {
        snprintf(why, whylen, "refused");

    } else if (strstr(c->errstr, "timed out") != NULL) {
        snprintf(why, whylen, "timed out");

    } else {
        snprintf(why, whylen, "unreachable: %s", c->errstr);
    }
}


/* " (2000 ms)": the timeout, for the advice on a timeout */
static const char *
timeout_ms(migctl_ctx_t *ctx)
{
    static __thread char  buf[32];

    snprintf(buf, sizeof(buf), " (%d ms)", ctx->conf.redis_timeout_ms);

    return buf;
}


/* "host:port", "[v6]:port" */
static void
fmt_addr(char *buf, size_t size, const char *host, int port)
{
    snprintf(buf, size, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             port);
}


static int
read_password(migctl_ctx_t *ctx, const char *what, const char *file,
    const char *env, char *buf, size_t size, int *have)
{
    char           *data;
    size_t          len;
    const char     *v;
    char            err[MIGCTL_PATH_MAX + 128];

    buf[0] = '\0';
    *have = 0;

    if (env[0]) {
        v = getenv(env);
        if (v == NULL || *v == '\0') {
            return migctl_error(ctx, MIGCTL_USAGE, "%s.password_env names"
                                " $%s, which is not set: export it or fix"
                                " the configuration", what, env);
        }

        if (strlen(v) >= size) {
            return migctl_error(ctx, MIGCTL_USAGE, "$%s is longer than %zu"
                                " bytes", env, size - 1);
        }

        strcpy(buf, v);
        *have = 1;
        return MIGCTL_OK;
    }

    if (file[0] == '\0') {
        return MIGCTL_OK;
    }

    if (migctl_read_file(file, &data, &len, err, sizeof(err)) != 0) {
        return migctl_error(ctx, MIGCTL_USAGE, "%s.password_file: %s:"
                            " fix the path or its permissions", what, err);
    }

    /* one line; the trailing newline of an editor is not part of it */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r')) {
        len--;
    }

    if (len == 0 || len >= size || memchr(data, '\n', len) != NULL) {
        wipe(data, len);
        free(data);
        return migctl_error(ctx, MIGCTL_USAGE, "%s.password_file %s must"
                            " hold the password on one line (1..%zu bytes)",
                            what, file, size - 1);
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
