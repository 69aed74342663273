/*
 * conf.c: migctl's configuration: -c, else $MIGCTL_CONFIG, else
 * /etc/migctl/migctl.conf, else built-in defaults; libconfig syntax.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libconfig.h>

#include "migctl.h"


#define MIGCTL_SYSTEM_CONF   "/etc/migctl/migctl.conf"


typedef struct {
    const char  *file;
    char        *err;
    size_t       errlen;
} conf_parse_t;


static int conf_fail(conf_parse_t *p, config_setting_t *s,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int get_string(conf_parse_t *p, config_setting_t *g,
    const char *name, char *dst, size_t size);
static int get_int(conf_parse_t *p, config_setting_t *g, const char *name,
    int min, int max, int *dst);
static int check_members(conf_parse_t *p, config_setting_t *g,
    const char *const *known);
static int parse_redis(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int parse_health(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static void set_defaults(migctl_conf_t *cf);
static int parse_runs(conf_parse_t *p, config_setting_t *root,
    migctl_conf_t *cf);


static const char *const redis_keys[] = {
    "host", "port", "unix", "db", "user", "password_file", "password_env",
    "timeout_ms", NULL
};

static const char *const health_keys[] = {
    "checks", "timeout_ms", NULL
};

static const char *const check_keys[] = {
    "name", "command", "timeout_ms", NULL
};


int
migctl_conf_load(migctl_ctx_t *ctx, char *err, size_t errlen)
{
    int                rc;
    const char        *path;
    config_t          *lc;
    struct stat        sb;
    conf_parse_t       p;
    migctl_conf_t     *cf;
    config_setting_t  *root, *s;

    cf = &ctx->conf;
    set_defaults(cf);

    path = ctx->config_path;

    if (path == NULL) {
        path = getenv("MIGCTL_CONFIG");
        if (path != NULL && *path == '\0') {
            path = NULL;
        }
    }

    if (path == NULL) {
        if (stat(MIGCTL_SYSTEM_CONF, &sb) != 0 && errno == ENOENT) {
            return 0;                        /* built-in defaults */
        }

        path = MIGCTL_SYSTEM_CONF;
    }

    if (strlen(path) >= sizeof(cf->source)) {
        snprintf(err, errlen, "configuration path too long");
        return -1;
    }

    lc = malloc(sizeof(config_t));
    if (lc == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    config_init(lc);
    cf->lc = (struct config_t *) lc;
    strcpy(cf->source, path);

    p.file = path;
    p.err = err;
    p.errlen = errlen;

    if (config_read_file(lc, path) != CONFIG_TRUE) {
        if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
            snprintf(err, errlen, "cannot read configuration %s: %s:"
                     " fix the path (-c, $MIGCTL_CONFIG)", path,
                     strerror(errno));

        } else {
            snprintf(err, errlen, "%s:%d: %s: fix the configuration",
                     config_error_file(lc) ? config_error_file(lc) : path,
                     config_error_line(lc), config_error_text(lc));
        }

        return -1;
    }

    root = config_root_setting(lc);
    rc = -1;

    s = config_setting_get_member(root, "redis");
    if (s != NULL) {
        if (!config_setting_is_group(s)) {
            return conf_fail(&p, s, "redis must be a group { ... }");
        }

        if (parse_redis(&p, s, cf) != 0) {
            return rc;
        }
    }

    if (get_string(&p, root, "prefix", cf->prefix, sizeof(cf->prefix)) != 0)
    {
        return rc;
    }

    s = config_setting_get_member(root, "prefix");
    if (s != NULL
        && mig_name_valid(cf->prefix, strlen(cf->prefix), NULL, 0) != MIG_OK)
    {
        return conf_fail(&p, s, "prefix \"%s\" must be 1..%d of"
                         " [A-Za-z0-9_.-]", cf->prefix, MIG_NAME_MAX);
    }

    if (get_int(&p, root, "edge_live_ms", 100, 3600000, &cf->edge_live_ms)
        != 0
        || get_int(&p, root, "wait_timeout", 1, 86400, &cf->wait_default_s)
           != 0)
    {
        return rc;
    }

    s = config_setting_get_member(root, "health");
    if (s != NULL) {
        if (!config_setting_is_group(s)) {
            return conf_fail(&p, s, "health must be a group { ... }");
        }

        if (parse_health(&p, s, cf) != 0) {
            return rc;
        }
    }

    if (parse_runs(&p, root, cf) != 0) {
        return rc;
    }

    /* other top-level settings belong to other commands' sections */

    return 0;
}


void
migctl_conf_free(migctl_ctx_t *ctx)
{
    config_t  *lc;

    lc = (config_t *) ctx->conf.lc;
    if (lc != NULL) {
        config_destroy(lc);
        free(lc);
        ctx->conf.lc = NULL;
    }
}


static int
parse_redis(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    if (check_members(p, g, redis_keys) != 0
        || get_string(p, g, "host", cf->redis_host, sizeof(cf->redis_host))
        || get_int(p, g, "port", 1, 65535, &cf->redis_port)
        || get_string(p, g, "unix", cf->redis_unix, sizeof(cf->redis_unix))
        || get_int(p, g, "db", 0, 1000000, &cf->redis_db)
        || get_string(p, g, "user", cf->redis_user, sizeof(cf->redis_user))
        || get_string(p, g, "password_file", cf->redis_password_file,
                      sizeof(cf->redis_password_file))
        || get_string(p, g, "password_env", cf->redis_password_env,
                      sizeof(cf->redis_password_env))
        || get_int(p, g, "timeout_ms", 1, 600000, &cf->redis_timeout_ms))
    {
        return -1;
    }

    if (cf->redis_password_file[0] && cf->redis_password_env[0]) {
        return conf_fail(p, config_setting_get_member(g, "password_env"),
                         "redis: give password_file or password_env,"
                         " not both");
    }

    if (cf->redis_unix[0] && config_setting_get_member(g, "host") != NULL) {
        return conf_fail(p, config_setting_get_member(g, "unix"),
                         "redis: give host/port or unix, not both");
    }

    return 0;
}


static int
parse_health(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    int                i, n, timeout_ms;
    migctl_check_t    *ck;
    config_setting_t  *list, *e;

    if (check_members(p, g, health_keys) != 0) {
        return -1;
    }

    timeout_ms = 30000;
    if (get_int(p, g, "timeout_ms", 1, 3600000, &timeout_ms) != 0) {
        return -1;
    }

    list = config_setting_get_member(g, "checks");
    if (list == NULL) {
        return 0;
    }

    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        return conf_fail(p, list, "health.checks must be a list"
                         " ( { name = \"...\"; command = \"...\"; } )");
    }

    n = config_setting_length(list);
    if (n > MIGCTL_CHECKS_MAX) {
        return conf_fail(p, list, "health.checks: more than %d checks",
                         MIGCTL_CHECKS_MAX);
    }

    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(list, i);
        ck = &cf->checks[i];

        if (!config_setting_is_group(e)) {
            return conf_fail(p, e, "health.checks[%d] must be a group"
                             " { name = \"...\"; command = \"...\"; }", i);
        }

        ck->timeout_ms = timeout_ms;
        ck->line = config_setting_source_line(e);

        if (check_members(p, e, check_keys) != 0
            || get_string(p, e, "name", ck->name, sizeof(ck->name))
            || get_string(p, e, "command", ck->command, sizeof(ck->command))
            || get_int(p, e, "timeout_ms", 1, 3600000, &ck->timeout_ms))
        {
            return -1;
        }

        if (ck->name[0] == '\0' || ck->command[0] == '\0') {
            return conf_fail(p, e, "health.checks[%d] needs a name and a"
                             " command", i);
        }

        if (mig_name_valid(ck->name, strlen(ck->name), NULL, 0) != MIG_OK) {
            return conf_fail(p, e, "health check name \"%s\" must be"
                             " [A-Za-z0-9_.-]", ck->name);
        }
    }

    cf->nchecks = n;

    return 0;
}


static int
check_members(conf_parse_t *p, config_setting_t *g,
    const char *const *known)
{
    int                i, n;
    const char        *name;
    const char *const *k;
    config_setting_t  *s;

    n = config_setting_length(g);

    for (i = 0; i < n; i++) {
        s = config_setting_get_elem(g, i);
        name = config_setting_name(s);

        for (k = known; *k; k++) {
            if (name != NULL && strcmp(name, *k) == 0) {
                break;
            }
        }

        if (*k == NULL) {
            return conf_fail(p, s, "unknown setting \"%s\" in %s",
                             name ? name : "?",
                             config_setting_name(g)
                             ? config_setting_name(g) : "a check");
        }
    }

    return 0;
}


static int
get_string(conf_parse_t *p, config_setting_t *g, const char *name,
    char *dst, size_t size)
{
    const char        *v;
    config_setting_t  *s;

    s = config_setting_get_member(g, name);
    if (s == NULL) {
        return 0;
    }

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        return conf_fail(p, s, "%s must be a string in double quotes",
                         name);
    }

    v = config_setting_get_string(s);
    if (strlen(v) >= size) {
        return conf_fail(p, s, "%s is longer than %zu bytes", name,
                         size - 1);
    }

    strcpy(dst, v);

    return 0;
}


static int
get_int(conf_parse_t *p, config_setting_t *g, const char *name, int min,
    int max, int *dst)
{
    long long          v;
    config_setting_t  *s;

    s = config_setting_get_member(g, name);
    if (s == NULL) {
        return 0;
    }

    if (config_setting_type(s) == CONFIG_TYPE_INT) {
        v = config_setting_get_int(s);

    } else if (config_setting_type(s) == CONFIG_TYPE_INT64) {
        v = config_setting_get_int64(s);

    } else {
        return conf_fail(p, s, "%s must be an integer", name);
    }

    if (v < min || v > max) {
        return conf_fail(p, s, "%s = %lld is out of range %d..%d", name, v,
                         min, max);
    }

    *dst = (int) v;

    return 0;
}


static int
conf_fail(conf_parse_t *p, config_setting_t *s, const char *fmt, ...)
{
    int          n;
    va_list      ap;
    const char  *file;

    file = s ? config_setting_source_file(s) : NULL;

    n = snprintf(p->err, p->errlen, "%s:%d: ", file ? file : p->file,
                 s ? config_setting_source_line(s) : 0);
    if (n < 0 || (size_t) n >= p->errlen) {
        return -1;
    }

    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - n, fmt, ap);
    va_end(ap);

    n = strlen(p->err);
    snprintf(p->err + n, p->errlen - n, ": fix the configuration");

    return -1;
}


static void
set_defaults(migctl_conf_t *cf)
{
    memset(cf, 0, sizeof(migctl_conf_t));

    strcpy(cf->redis_host, "127.0.0.1");
    cf->redis_port = 6379;
    cf->redis_timeout_ms = 2000;
    strcpy(cf->prefix, MIG_DEFAULT_PREFIX);
    cf->edge_live_ms = 5000;
    cf->wait_default_s = 30;
}


/*
 * runs { dir = "/var/lib/migctl/runs"; plan_cmd = "..."; }
 * evidence { secret_files = [ "/etc/nginx/bypass.token" ]; }
 * secret_files are read when a run or a bundle is written (their values
 * are scrubbed from every file); here only their shape is checked.
 */
static const char *const runs_keys[] = {
    "dir", "plan_cmd", NULL
};

static const char *const evidence_keys[] = {
    "secret_files", NULL
};


static int
parse_runs(conf_parse_t *p, config_setting_t *root, migctl_conf_t *cf)
{
    int                i;
    config_setting_t  *g, *l, *e;

    g = config_setting_get_member(root, "runs");
    if (g != NULL) {
        if (!config_setting_is_group(g)) {
            return conf_fail(p, g, "runs must be a group { dir = \"...\"; }");
        }

        if (check_members(p, g, runs_keys) != 0
            || get_string(p, g, "dir", cf->runs_dir, sizeof(cf->runs_dir))
            || get_string(p, g, "plan_cmd", cf->plan_cmd,
                          sizeof(cf->plan_cmd)))
        {
            return -1;
        }

        if (config_setting_get_member(g, "dir") != NULL
            && cf->runs_dir[0] != '/')
        {
            return conf_fail(p, config_setting_get_member(g, "dir"),
                             "runs.dir must be an absolute path");
        }
    }

    g = config_setting_get_member(root, "evidence");
    if (g == NULL) {
        return 0;
    }

    if (!config_setting_is_group(g)) {
        return conf_fail(p, g, "evidence must be a group { ... }");
    }

    if (check_members(p, g, evidence_keys) != 0) {
        return -1;
    }

    l = config_setting_get_member(g, "secret_files");
    if (l == NULL) {
        return 0;
    }

    if (!config_setting_is_list(l) && !config_setting_is_array(l)) {
        return conf_fail(p, l, "evidence.secret_files must be a list of"
                         " paths [ \"...\" ]");
    }

    for (i = 0; i < config_setting_length(l); i++) {
        e = config_setting_get_elem(l, i);

        if (config_setting_type(e) != CONFIG_TYPE_STRING
            || config_setting_get_string(e)[0] != '/')
        {
            return conf_fail(p, e, "evidence.secret_files[%d] must be an"
                             " absolute path in double quotes", i);
        }
    }

    return 0;
}
