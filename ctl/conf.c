/*
 * conf.c: migctl's configuration: -c, else $MIGCTL_CONFIG, else
 * /etc/migctl/migctl.conf, else built-in defaults; libconfig syntax.
 */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libconfig.h>
#include <curl/curl.h>

#include "migctl.h"


#define MIGCTL_SYSTEM_CONF   "/etc/migctl/migctl.conf"


typedef struct {
    const char  *file;
    char        *err;
    size_t       errlen;
} conf_parse_t;

typedef int (*group_parse_pt)(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);


static int conf_fail(conf_parse_t *p, config_setting_t *s,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int get_string(conf_parse_t *p, config_setting_t *g,
    const char *name, char *dst, size_t size);
static int string_member(conf_parse_t *p, config_setting_t *g,
    const char *name, config_setting_t **sp, const char **v);
static int get_int(conf_parse_t *p, config_setting_t *g, const char *name,
    int min, int max, int *dst);
static int check_members(conf_parse_t *p, config_setting_t *g,
    const char *const *known);
static int parse_group(conf_parse_t *p, config_setting_t *root,
    const char *name, const char *shape, group_parse_pt parse,
    migctl_conf_t *cf);
static int parse_redis(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int parse_sentinel(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int parse_node(const char *s, char *host, size_t size, int *port);
static int parse_wait(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int parse_health(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int parse_hooks(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int group_timeout(conf_parse_t *p, config_setting_t *g,
    const char *const *keys, int *timeout_ms);
static int parse_checks(conf_parse_t *p, config_setting_t *list,
    const char *what, int hooks, int timeout_ms, migctl_check_t *cks,
    int max, int *count);
static int check_fields(conf_parse_t *p, config_setting_t *e,
    const char *what, int i, migctl_check_t *ck);
static int get_ref(conf_parse_t *p, config_setting_t *g, const char *name,
    const char **dst);
static void set_defaults(migctl_conf_t *cf);
static int parse_database(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int get_duration(conf_parse_t *p, config_setting_t *g,
    const char *name, long min, long max, long *dst);
static int parse_runs(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);
static int parse_evidence(conf_parse_t *p, config_setting_t *g,
    migctl_conf_t *cf);


static const char *const redis_keys[] = {
    "host", "port", "unix", "db", "user", "password_file", "password_env",
    "timeout_ms", "sentinel", "wait", NULL
};

static const char *const sentinel_keys[] = {
    "master", "nodes", "user", "password_file", "password_env", NULL
};

static const char *const wait_keys[] = {
    "replicas", "timeout", NULL
};

static const char *const health_keys[] = {
    "checks", "timeout_ms", NULL
};

static const char *const hooks_keys[] = {
    "on", "off", "timeout_ms", NULL
};

static const char *const command_keys[] = {
    "name", "type", "command", "timeout_ms", NULL
};

static const char *const http_keys[] = {
    "name", "type", "url", "expect_status", "expect_body", "expect_header",
    "bypass_token_file", "ca_file", "resolve", "timeout_ms", NULL
};

static const char *const edges_keys[] = {
    "name", "type", "scope", "timeout_ms", NULL
};

static const char *const migrations_keys[] = {
    "name", "type", "plan", "command", "timeout_ms", "manage", NULL
};

static const char *const db_keys[] = {
    "name", "type", "timeout_ms", NULL
};

static const char *const blocked_keys[] = {
    "name", "type", "max_wait_s", "timeout_ms", NULL
};

static const char *const backup_keys[] = {
    "name", "type", "command", "max_age_min", "timeout_ms", NULL
};

static const char *const sql_keys[] = {
    "name", "type", "query", "expect", "timeout_ms", NULL
};

/* indexed by migctl_check_type_e */
static const struct {
    const char          *name;
    int                  type;
    const char *const   *keys;
} check_types[] = {
    { "command", MIGCTL_CHECK_COMMAND, command_keys },
    { "http", MIGCTL_CHECK_HTTP, http_keys },
    { "edges", MIGCTL_CHECK_EDGES, edges_keys },
    { "migrations", MIGCTL_CHECK_MIGRATIONS, migrations_keys },
    { "invalid_indexes", MIGCTL_CHECK_INVALID_INDEXES, db_keys },
    { "blocked_sessions", MIGCTL_CHECK_BLOCKED_SESSIONS, blocked_keys },
    { "backup", MIGCTL_CHECK_BACKUP, backup_keys },
    { "sql", MIGCTL_CHECK_SQL, sql_keys },
    { NULL, 0, NULL }
};

static const char *const database_keys[] = {
    "lock_timeout", "statement_timeout", "connect_timeout",
    "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
    "keepalives_count", NULL
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

    if (parse_group(&p, root, "redis", "{ ... }", parse_redis, cf) != 0
        || parse_group(&p, root, "database", "{ ... }", parse_database, cf)
           != 0)
    {
        return rc;
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

    if (parse_group(&p, root, "health", "{ ... }", parse_health, cf) != 0
        || parse_group(&p, root, "hooks", "{ on = (...); off = (...); }",
                       parse_hooks, cf)
           != 0)
    {
        return rc;
    }

    if (parse_group(&p, root, "runs", "{ dir = \"...\"; }", parse_runs, cf)
        != 0
        || parse_group(&p, root, "evidence", "{ ... }", parse_evidence, cf)
           != 0)
    {
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


/* the top-level group name, when present, read by parse */
static int
parse_group(conf_parse_t *p, config_setting_t *root, const char *name,
    const char *shape, group_parse_pt parse, migctl_conf_t *cf)
{
    config_setting_t  *g;

    g = config_setting_get_member(root, name);
    if (g == NULL) {
        return 0;
    }

    if (!config_setting_is_group(g)) {
        return conf_fail(p, g, "%s must be a group %s", name, shape);
    }

    return parse(p, g, cf);
}


static int
parse_redis(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    config_setting_t  *s;

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

    s = config_setting_get_member(g, "sentinel");
    if (s != NULL) {
        if (config_setting_get_member(g, "host") != NULL
            || config_setting_get_member(g, "port") != NULL
            || config_setting_get_member(g, "unix") != NULL)
        {
            return conf_fail(p, s, "redis: give sentinel or host/port/unix,"
                             " not both (with sentinel the master is found"
                             " through the sentinels)");
        }

        if (parse_sentinel(p, s, cf) != 0) {
            return -1;
        }
    }

    s = config_setting_get_member(g, "wait");
    if (s != NULL && parse_wait(p, s, cf) != 0) {
        return -1;
    }

    return 0;
}


/*
 * redis.sentinel = { master = "NAME"; nodes = ( "host:port", ... ); }:
 * host names are kept as given and resolved on each connection.
 */
static int
parse_sentinel(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    int                i, n;
    const char        *v, *c;
    config_setting_t  *s, *e;

    if (!config_setting_is_group(g)) {
        return conf_fail(p, g, "redis.sentinel must be a group { master ="
                         " \"NAME\"; nodes = ( \"host:port\", ... ); }");
    }

    if (check_members(p, g, sentinel_keys) != 0
        || get_string(p, g, "master", cf->sentinel_master,
                      sizeof(cf->sentinel_master))
        || get_string(p, g, "user", cf->sentinel_user,
                      sizeof(cf->sentinel_user))
        || get_string(p, g, "password_file", cf->sentinel_password_file,
                      sizeof(cf->sentinel_password_file))
        || get_string(p, g, "password_env", cf->sentinel_password_env,
                      sizeof(cf->sentinel_password_env)))
    {
        return -1;
    }

    if (cf->sentinel_password_file[0] && cf->sentinel_password_env[0]) {
        return conf_fail(p, config_setting_get_member(g, "password_env"),
                         "redis.sentinel: give password_file or"
                         " password_env, not both");
    }

    if (cf->sentinel_master[0] == '\0') {
        return conf_fail(p, config_setting_get_member(g, "master")
                            ? config_setting_get_member(g, "master") : g,
                         "redis.sentinel needs master = \"NAME\" (the"
                         " name the sentinels monitor)");
    }

    for (c = cf->sentinel_master; *c; c++) {
        if ((unsigned char) *c <= 0x20 || (unsigned char) *c >= 0x7f) {
            return conf_fail(p, config_setting_get_member(g, "master"),
                             "redis.sentinel.master must be printable"
                             " ASCII without spaces");
        }
    }

    s = config_setting_get_member(g, "nodes");
    if (s == NULL) {
        return conf_fail(p, g, "redis.sentinel needs nodes = ("
                         " \"host:port\", ... )");
    }

    if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
        return conf_fail(p, s, "redis.sentinel.nodes must be a list ("
                         " \"host:port\", ... )");
    }

    n = config_setting_length(s);
    if (n < 1 || n > MIGCTL_SENTINELS_MAX) {
        return conf_fail(p, s, "redis.sentinel.nodes must list 1..%d"
                         " sentinels (\"host:port\"), not %d",
                         MIGCTL_SENTINELS_MAX, n);
    }

    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(s, i);

        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            return conf_fail(p, e, "redis.sentinel.nodes[%d] must be"
                             " \"host:port\" in double quotes", i);
        }

        v = config_setting_get_string(e);

        if (parse_node(v, cf->sentinel_host[i], sizeof(cf->sentinel_host[i]),
                       &cf->sentinel_port[i])
            != 0)
        {
            return conf_fail(p, e, "redis.sentinel.nodes[%d] \"%.300s\" is"
                             " not \"host:port\" (a name, an IPv4 address"
                             " or [IPv6], port 1..65535)", i, v);
        }
    }

    cf->nsentinels = n;

    return 0;
}


/* "host:port", "1.2.3.4:port", "[::1]:port": 0, or -1 */
static int
parse_node(const char *s, char *host, size_t size, int *port)
{
    long         v;
    size_t       len;
    const char  *h, *colon, *c;

    if (s[0] == '[') {
        h = s + 1;
        c = strchr(h, ']');
        if (c == NULL || c[1] != ':') {
            return -1;
        }

        len = c - h;
        colon = c + 1;

        for (c = h; c < h + len; c++) {
            if (!isxdigit((unsigned char) *c) && *c != ':' && *c != '.') {
                return -1;
            }
        }

    } else {
        h = s;
        colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL) {
            return -1;
        }

        len = colon - h;

        for (c = h; c < colon; c++) {
            if (!isalnum((unsigned char) *c) && *c != '.' && *c != '-'
                && *c != '_')
            {
                return -1;
            }
        }
    }

    if (len == 0 || len >= size) {
        return -1;
    }

    v = 0;

    for (c = colon + 1; *c; c++) {
        if (!isdigit((unsigned char) *c) || v > 65535) {
            return -1;
        }

        v = v * 10 + (*c - '0');
    }

    if (c == colon + 1 || v < 1 || v > 65535) {
        return -1;
    }

    memcpy(host, h, len);
    host[len] = '\0';
    *port = (int) v;

    return 0;
}


/* redis.wait = { replicas = 1; timeout = "1s"; }: WAIT after a change */
static int
parse_wait(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    if (!config_setting_is_group(g)) {
        return conf_fail(p, g, "redis.wait must be a group { replicas = 1;"
                         " timeout = \"1s\"; }");
    }

    cf->redis_wait_timeout_ms = 1000;

    if (check_members(p, g, wait_keys) != 0
        || get_int(p, g, "replicas", 1, 1000, &cf->redis_wait_replicas)
        || get_duration(p, g, "timeout", 1, 3600000,
                        &cf->redis_wait_timeout_ms))
    {
        return -1;
    }

    if (config_setting_get_member(g, "replicas") == NULL) {
        return conf_fail(p, g, "redis.wait needs replicas = N (how many"
                         " replicas must acknowledge a change)");
    }

    return 0;
}


static int
parse_health(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    int  timeout_ms;

    timeout_ms = 30000;

    if (group_timeout(p, g, health_keys, &timeout_ms) != 0) {
        return -1;
    }

    return parse_checks(p, config_setting_get_member(g, "checks"),
                        "health.checks", 0, timeout_ms, cf->checks,
                        MIGCTL_CHECKS_MAX, &cf->nchecks);
}


static int
parse_hooks(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    int  timeout_ms;

    timeout_ms = 60000;

    if (group_timeout(p, g, hooks_keys, &timeout_ms) != 0
        || parse_checks(p, config_setting_get_member(g, "on"), "hooks.on", 1,
                        timeout_ms, cf->hooks_on, MIGCTL_HOOKS_MAX,
                        &cf->nhooks_on)
           != 0)
    {
        return -1;
    }

    return parse_checks(p, config_setting_get_member(g, "off"), "hooks.off",
                        1, timeout_ms, cf->hooks_off, MIGCTL_HOOKS_MAX,
                        &cf->nhooks_off);
}


/* health { } and hooks { }: their members known, their timeout_ms read */
static int
group_timeout(conf_parse_t *p, config_setting_t *g, const char *const *keys,
    int *timeout_ms)
{
    if (check_members(p, g, keys) != 0
        || get_int(p, g, "timeout_ms", 1, 3600000, timeout_ms) != 0)
    {
        return -1;
    }

    return 0;
}


/*
 * A list of checks (health.checks) or of hooks (commands only), none
 * when list is NULL.  Every error names the file and the line of the
 * setting at fault.
 */
static int
parse_checks(conf_parse_t *p, config_setting_t *list, const char *what,
    int hooks, int timeout_ms, migctl_check_t *cks, int max, int *count)
{
    int                i, j, n;
    char               tname[32];
    migctl_check_t    *ck;
    config_setting_t  *e, *s;

    if (list == NULL) {
        return 0;
    }

    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        return conf_fail(p, list, "%s must be a list"
                         " ( { name = \"...\"; command = \"...\"; } )", what);
    }

    n = config_setting_length(list);
    if (n > max) {
        return conf_fail(p, list, "%s: more than %d entries", what, max);
    }

    for (i = 0; i < n; i++) {
        e = config_setting_get_elem(list, i);
        ck = &cks[i];
        memset(ck, 0, sizeof(migctl_check_t));

        if (!config_setting_is_group(e)) {
            return conf_fail(p, e, "%s[%d] must be a group"
                             " { name = \"...\"; command = \"...\"; }",
                             what, i);
        }

        ck->timeout_ms = timeout_ms;
        ck->line = config_setting_source_line(e);
        ck->expect_status = 200;
        ck->max_wait_s = 5;

        tname[0] = '\0';

        if (get_string(p, e, "type", tname, sizeof(tname)) != 0) {
            return -1;
        }

        s = config_setting_get_member(e, "type");

        if (hooks) {
            if (s != NULL) {
                return conf_fail(p, s, "%s[%d]: a hook is a command: no"
                                 " type", what, i);
            }

        } else if (tname[0] == '\0' && s == NULL) {
            ck->type = MIGCTL_CHECK_COMMAND;

        } else {
            for (j = 0; check_types[j].name; j++) {
                if (strcmp(check_types[j].name, tname) == 0) {
                    break;
                }
            }

            if (check_types[j].name == NULL) {
                return conf_fail(p, s, "%s[%d]: unknown check type \"%s\":"
                                 " use command, http, edges, migrations,"
                                 " invalid_indexes, blocked_sessions,"
                                 " backup or sql", what, i, tname);
            }

            ck->type = check_types[j].type;
        }

        if (check_members(p, e, check_types[ck->type].keys) != 0
            || get_string(p, e, "name", ck->name, sizeof(ck->name))
            || get_string(p, e, "command", ck->command, sizeof(ck->command))
            || get_string(p, e, "manage", ck->manage, sizeof(ck->manage))
            || get_int(p, e, "timeout_ms", 1, 3600000, &ck->timeout_ms)
            || get_int(p, e, "expect_status", 100, 599, &ck->expect_status)
            || get_int(p, e, "max_wait_s", 0, 86400, &ck->max_wait_s)
            || get_int(p, e, "max_age_min", 1, 525600, &ck->max_age_min)
            || get_ref(p, e, "url", &ck->url)
            || get_ref(p, e, "expect_body", &ck->expect_body)
            || get_ref(p, e, "expect_header", &ck->expect_header)
            || get_ref(p, e, "bypass_token_file", &ck->bypass_token_file)
            || get_ref(p, e, "ca_file", &ck->ca_file)
            || get_ref(p, e, "resolve", &ck->resolve)
            || get_ref(p, e, "scope", &ck->scope)
            || get_ref(p, e, "plan", &ck->plan)
            || get_ref(p, e, "query", &ck->query)
            || get_ref(p, e, "expect", &ck->expect))
        {
            return -1;
        }

        if (ck->name[0] == '\0') {
            return conf_fail(p, e, "%s[%d] needs a name%s", what, i,
                             ck->type == MIGCTL_CHECK_COMMAND
                             && ck->command[0] == '\0'
                             ? " and a command" : "");
        }

        if (mig_name_valid(ck->name, strlen(ck->name), NULL, 0) != MIG_OK) {
            return conf_fail(p, e, "%s name \"%s\" must be [A-Za-z0-9_.-]",
                             hooks ? "hook" : "health check", ck->name);
        }

        for (j = 0; j < i; j++) {
            if (strcmp(cks[j].name, ck->name) == 0) {
                return conf_fail(p, e, "%s: two entries named \"%s\"",
                                 what, ck->name);
            }
        }

        if (check_fields(p, e, what, i, ck) != 0) {
            return -1;
        }
    }

    *count = n;

    return 0;
}


/* what each type needs, beyond its known members */
static int
check_fields(conf_parse_t *p, config_setting_t *e, const char *what, int i,
    migctl_check_t *ck)
{
    const char  *dm;

    switch (ck->type) {

    case MIGCTL_CHECK_COMMAND:
        if (ck->command[0] == '\0') {
            return conf_fail(p, e, "%s[%d] needs a name and a command",
                             what, i);
        }
        break;

    case MIGCTL_CHECK_HTTP:
        if (ck->url == NULL) {
            return conf_fail(p, e, "%s[%d]: an http check needs a url",
                             what, i);
        }

        /* the url is parsed (libcurl) when the checks run: see below */
        ck->url_line = config_setting_source_line(
                           config_setting_get_member(e, "url"));

        if (ck->resolve != NULL
            && (strchr(ck->resolve, ':') == NULL
                || strchr(strchr(ck->resolve, ':') + 1, ':') == NULL))
        {
            return conf_fail(p, config_setting_get_member(e, "resolve"),
                             "%s[%d]: resolve must be \"host:port:address\""
                             " (the edge to ask, by its address)", what, i);
        }

        if (ck->expect_header != NULL
            && (strchr(ck->expect_header, ':') == NULL
                || ck->expect_header[0] == ':'))
        {
            return conf_fail(p, config_setting_get_member(e,
                                                          "expect_header"),
                             "%s[%d]: expect_header must be \"Name: value\"",
                             what, i);
        }
        break;

    case MIGCTL_CHECK_EDGES:
        if (ck->scope != NULL
            && mig_scope_valid(ck->scope, strlen(ck->scope), NULL, 0)
               != MIG_OK)
        {
            return conf_fail(p, config_setting_get_member(e, "scope"),
                             "%s[%d]: scope \"%s\" is not a valid scope"
                             " name", what, i, ck->scope);
        }
        break;

    case MIGCTL_CHECK_MIGRATIONS:
        if ((ck->plan == NULL && ck->manage[0] == '\0')
            == (ck->command[0] == '\0'))
        {
            return conf_fail(p, e, "%s[%d]: a migrations check needs a plan"
                             " file and/or manage, or a command (migrate"
                             " --check), not both", what, i);
        }

        /* a plan has no replaces lists: django.manage reads them */
        if (ck->plan != NULL && ck->manage[0] == '\0'
            && config_lookup_string(e->config, "django.manage", &dm)
            && snprintf(ck->manage, sizeof(ck->manage), "%s", dm)
               >= (int) sizeof(ck->manage))
        {
            return conf_fail(p, e, "%s[%d]: django.manage is too long",
                             what, i);
        }
        break;

    case MIGCTL_CHECK_BACKUP:
        if ((ck->max_age_min == 0) == (ck->command[0] == '\0')) {
            return conf_fail(p, e, "%s[%d]: a backup check needs a command"
                             " or max_age_min (pg_stat_archiver), one of"
                             " them", what, i);
        }
        break;

    case MIGCTL_CHECK_SQL:
        if (ck->query == NULL || ck->expect == NULL) {
            return conf_fail(p, e, "%s[%d]: a sql check needs a query and"
                             " the value it must return (expect)", what, i);
        }
        break;
    }

    return 0;
}


static int
get_ref(conf_parse_t *p, config_setting_t *g, const char *name,
    const char **dst)
{
    const char        *v;
    config_setting_t  *s;

    if (string_member(p, g, name, &s, &v) != 0) {
        return -1;
    }

    if (v == NULL) {
        return 0;
    }

    if (*v == '\0') {
        return conf_fail(p, s, "%s is empty", name);
    }

    *dst = v;

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

    if (string_member(p, g, name, &s, &v) != 0) {
        return -1;
    }

    if (v == NULL) {
        return 0;
    }

    if (strlen(v) >= size) {
        return conf_fail(p, s, "%s is longer than %zu bytes", name,
                         size - 1);
    }

    strcpy(dst, v);

    return 0;
}


/* the string name of g: *v NULL when it is absent, -1 when no string */
static int
string_member(conf_parse_t *p, config_setting_t *g, const char *name,
    config_setting_t **sp, const char **v)
{
    *v = NULL;

    *sp = config_setting_get_member(g, name);
    if (*sp == NULL) {
        return 0;
    }

    if (config_setting_type(*sp) != CONFIG_TYPE_STRING) {
        return conf_fail(p, *sp, "%s must be a string in double quotes",
                         name);
    }

    *v = config_setting_get_string(*sp);

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


/*
 * The urls of the http checks, parsed by libcurl: called by the commands
 * that run the checks (health, maintenance off) before they do anything,
 * not when the file is read, so that the others never load libcurl.
 */

int
migctl_conf_check_urls(migctl_ctx_t *ctx)
{
    int              i, bad;
    char            *scheme;
    CURLU           *u;
    migctl_conf_t   *cf;
    migctl_check_t  *ck;

    cf = &ctx->conf;

    for (i = 0; i < cf->nchecks; i++) {
        ck = &cf->checks[i];

        if (ck->type != MIGCTL_CHECK_HTTP) {
            continue;
        }

        u = curl_url();
        if (u == NULL) {
            return migctl_error(ctx, MIGCTL_UNREACHABLE, "out of memory");
        }

        scheme = NULL;

        bad = curl_url_set(u, CURLUPART_URL, ck->url, 0) != CURLUE_OK
              || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
              || scheme == NULL
              || (strcmp(scheme, "http") != 0
                  && strcmp(scheme, "https") != 0);

        curl_free(scheme);
        curl_url_cleanup(u);

        if (bad) {
            return migctl_error(ctx, MIGCTL_USAGE, "%s:%d: health.checks[%d]:"
                                " bad url \"%s\": give http://host[:port]/path"
                                " or https://...: fix the configuration",
                                cf->source, ck->url_line, i, ck->url);
        }
    }

    return MIGCTL_OK;
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

    cf->db_lock_timeout_ms = MIGCTL_DB_LOCK_TIMEOUT_MS;
    cf->db_statement_timeout_ms = MIGCTL_DB_STATEMENT_TIMEOUT_MS;
    cf->db_connect_timeout_ms = MIGCTL_DB_CONNECT_TIMEOUT_MS;
    cf->db_tcp_user_timeout_ms = 10000;
    cf->db_keepalives_idle_ms = 10000;
    cf->db_keepalives_interval_ms = 5000;
    cf->db_keepalives_count = 3;
}


/*
 * database { lock_timeout = "2s"; statement_timeout = "30s"; ... }:
 * durations as strings ("500ms", "2s", "1m"), every session migctl opens
 */
static int
parse_database(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    long  idle, interval;

    idle = cf->db_keepalives_idle_ms;
    interval = cf->db_keepalives_interval_ms;

    if (check_members(p, g, database_keys) != 0
        || get_duration(p, g, "lock_timeout", 1, MIGCTL_DB_TIMEOUT_MAX_MS,
                        &cf->db_lock_timeout_ms)
        || get_duration(p, g, "statement_timeout", 1,
                        MIGCTL_DB_TIMEOUT_MAX_MS,
                        &cf->db_statement_timeout_ms)
        || get_duration(p, g, "connect_timeout", 100, 3600000,
                        &cf->db_connect_timeout_ms)
        || get_duration(p, g, "tcp_user_timeout", 1000, 3600000,
                        &cf->db_tcp_user_timeout_ms)
        || get_duration(p, g, "keepalives_idle", 1000, 3600000, &idle)
        || get_duration(p, g, "keepalives_interval", 1000, 3600000,
                        &interval)
        || get_int(p, g, "keepalives_count", 1, 100,
                   &cf->db_keepalives_count))
    {
        return -1;
    }

    /* libpq takes these in whole seconds */
    cf->db_keepalives_idle_ms = idle / 1000 * 1000;
    cf->db_keepalives_interval_ms = interval / 1000 * 1000;
    cf->db_connect_timeout_set =
        config_setting_get_member(g, "connect_timeout") != NULL;

    return 0;
}


static int
get_duration(conf_parse_t *p, config_setting_t *g, const char *name,
    long min, long max, long *dst)
{
    long               ms;
    const char        *v;
    config_setting_t  *s;

    s = config_setting_get_member(g, name);
    if (s == NULL) {
        return 0;
    }

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        return conf_fail(p, s, "%s must be a duration in double quotes"
                         " (\"500ms\", \"2s\", \"1m\")", name);
    }

    v = config_setting_get_string(s);

    if (migctl_parse_duration_ms(v, max, &ms) != 0 || ms < min) {
        return conf_fail(p, s, "%s = \"%s\" is not a duration from %ldms"
                         " to %lds (\"500ms\", \"2s\", \"1m\")", name, v,
                         min, max / 1000);
    }

    *dst = ms;

    return 0;
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
parse_runs(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    if (check_members(p, g, runs_keys) != 0
        || get_string(p, g, "dir", cf->runs_dir, sizeof(cf->runs_dir))
        || get_string(p, g, "plan_cmd", cf->plan_cmd, sizeof(cf->plan_cmd)))
    {
        return -1;
    }

    if (config_setting_get_member(g, "dir") != NULL
        && cf->runs_dir[0] != '/')
    {
        return conf_fail(p, config_setting_get_member(g, "dir"),
                         "runs.dir must be an absolute path");
    }

    return 0;
}


static int
parse_evidence(conf_parse_t *p, config_setting_t *g, migctl_conf_t *cf)
{
    int                i;
    config_setting_t  *l, *e;

    (void) cf;

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
