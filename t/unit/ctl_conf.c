/*
 * ctl_conf.c: TAP unit test of migctl's conf.c (defaults, file, errors
 * with file and line) and health.c (exit codes, output, the timeout).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migctl.h"


#define OK(cond, ...)  ok_(!!(cond), __VA_ARGS__)


static int   tests, failed;
static char  dir[] = "/tmp/migctl-unit-XXXXXX";


static int ok_(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *write_conf(const char *name, const char *text);
static int load(migctl_ctx_t *ctx, const char *path, char *err,
    size_t errlen);
static void test_defaults(void);
static void test_file(void);
static void test_sentinel(void);
static void test_errors(void);
static void test_types(void);
static void test_health(void);


int
main(void)
{
    char  cmd[128];

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }

    test_defaults();
    test_file();
    test_sentinel();
    test_errors();
    test_types();
    test_health();

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", dir);
    }

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}


static void
test_defaults(void)
{
    char          err[512];
    migctl_ctx_t  ctx;

    unsetenv("MIGCTL_CONFIG");
    memset(&ctx, 0, sizeof(ctx));

    /* /etc/migctl/migctl.conf is absent on a test box */
    if (access("/etc/migctl/migctl.conf", F_OK) == 0) {
        printf("ok %d # SKIP /etc/migctl/migctl.conf exists\n", ++tests);
        return;
    }

    OK(migctl_conf_load(&ctx, err, sizeof(err)) == 0, "defaults: load");
    OK(strcmp(ctx.conf.redis_host, "127.0.0.1") == 0
       && ctx.conf.redis_port == 6379 && ctx.conf.redis_db == 0
       && ctx.conf.redis_timeout_ms == 2000
       && strcmp(ctx.conf.prefix, "migctl") == 0
       && ctx.conf.nchecks == 0 && ctx.conf.source[0] == '\0'
       && ctx.conf.lc == NULL, "defaults: Redis 127.0.0.1:6379, migctl");
    migctl_conf_free(&ctx);
}


static void
test_file(void)
{
    char          err[512];
    const char   *p;
    migctl_ctx_t  ctx;

    p = write_conf("full.conf",
        "redis = { host = \"r.example\"; port = 6380; db = 2;\n"
        "  user = \"ops\"; password_env = \"PW\"; timeout_ms = 250; };\n"
        "prefix = \"p1\";\n"
        "edge_live_ms = 900;\n"
        "wait_timeout = 7;\n"
        "django = { manage = \"another command's section\"; };\n"
        "health = { timeout_ms = 1234; checks = (\n"
        "  { name = \"a\"; command = \"true\"; },\n"
        "  { name = \"b\"; command = \"false\"; timeout_ms = 5; } ); };\n");

    if (!OK(load(&ctx, p, err, sizeof(err)) == 0, "file: load")) {
        printf("# %s\n", err);
    }
    OK(strcmp(ctx.conf.redis_host, "r.example") == 0
       && ctx.conf.redis_port == 6380 && ctx.conf.redis_db == 2
       && strcmp(ctx.conf.redis_user, "ops") == 0
       && strcmp(ctx.conf.redis_password_env, "PW") == 0
       && ctx.conf.redis_timeout_ms == 250, "file: redis section");
    OK(strcmp(ctx.conf.prefix, "p1") == 0 && ctx.conf.edge_live_ms == 900
       && ctx.conf.wait_default_s == 7, "file: prefix, edge_live_ms,"
       " wait_timeout");
    OK(ctx.conf.nchecks == 2
       && strcmp(ctx.conf.checks[0].name, "a") == 0
       && ctx.conf.checks[0].timeout_ms == 1234
       && ctx.conf.checks[0].line == 8
       && strcmp(ctx.conf.checks[1].command, "false") == 0
       && ctx.conf.checks[1].timeout_ms == 5, "file: health checks");
    OK(strcmp(ctx.conf.source, p) == 0 && ctx.conf.lc != NULL,
       "file: source and the parsed file kept for other sections");
    migctl_conf_free(&ctx);
    OK(ctx.conf.lc == NULL, "file: freed");

    setenv("MIGCTL_CONFIG", p, 1);
    memset(&ctx, 0, sizeof(ctx));
    OK(migctl_conf_load(&ctx, err, sizeof(err)) == 0
       && ctx.conf.redis_port == 6380, "$MIGCTL_CONFIG is read");
    migctl_conf_free(&ctx);
    unsetenv("MIGCTL_CONFIG");

    /* database { }: durations of every session (db.c) */
    OK(load(&ctx, write_conf("nodb.conf", "prefix = \"p\";\n"), err,
            sizeof(err)) == 0
       && ctx.conf.db_lock_timeout_ms == 2000
       && ctx.conf.db_statement_timeout_ms == 30000
       && ctx.conf.db_connect_timeout_ms == 5000
       && !ctx.conf.db_connect_timeout_set, "database: defaults");
    migctl_conf_free(&ctx);

    p = write_conf("db.conf",
        "database = { lock_timeout = \"500ms\"; statement_timeout = \"1m\";\n"
        "  connect_timeout = \"3s\"; tcp_user_timeout = \"20s\";\n"
        "  keepalives_idle = \"30s\"; keepalives_interval = \"2s\";\n"
        "  keepalives_count = 4; };\n");
    if (!OK(load(&ctx, p, err, sizeof(err)) == 0, "database: load")) {
        printf("# %s\n", err);
    }
    OK(ctx.conf.nsentinels == 0 && ctx.conf.redis_wait_replicas == 0,
       "no sentinel, no wait: the defaults");
    OK(ctx.conf.db_lock_timeout_ms == 500
       && ctx.conf.db_statement_timeout_ms == 60000
       && ctx.conf.db_connect_timeout_ms == 3000
       && ctx.conf.db_connect_timeout_set
       && ctx.conf.db_tcp_user_timeout_ms == 20000
       && ctx.conf.db_keepalives_idle_ms == 30000
       && ctx.conf.db_keepalives_interval_ms == 2000
       && ctx.conf.db_keepalives_count == 4, "database: every setting");
    migctl_conf_free(&ctx);
}


static void
test_sentinel(void)
{
    char          err[512];
    const char   *p;
    migctl_ctx_t  ctx;

    p = write_conf("sentinel.conf",
        "redis = { sentinel = { master = \"mymaster\";\n"
        "  nodes = ( \"10.0.0.1:26379\", \"sentinel-b.example:26380\",\n"
        "            \"[::1]:26381\" );\n"
        "  user = \"sen\"; password_env = \"SPW\"; };\n"
        "  db = 3; user = \"ops\"; password_file = \"/run/pw\";\n"
        "  wait = { replicas = 2; timeout = \"250ms\"; }; };\n");

    if (!OK(load(&ctx, p, err, sizeof(err)) == 0, "sentinel: load")) {
        printf("# %s\n", err);
    }
    OK(ctx.conf.nsentinels == 3
       && strcmp(ctx.conf.sentinel_master, "mymaster") == 0
       && strcmp(ctx.conf.sentinel_host[0], "10.0.0.1") == 0
       && ctx.conf.sentinel_port[0] == 26379
       && strcmp(ctx.conf.sentinel_host[1], "sentinel-b.example") == 0
       && ctx.conf.sentinel_port[1] == 26380
       && strcmp(ctx.conf.sentinel_host[2], "::1") == 0
       && ctx.conf.sentinel_port[2] == 26381, "sentinel: nodes, names kept"
       " to be resolved on each run, [IPv6]");
    OK(strcmp(ctx.conf.sentinel_user, "sen") == 0
       && strcmp(ctx.conf.sentinel_password_env, "SPW") == 0
       && ctx.conf.sentinel_password_file[0] == '\0'
       && ctx.conf.redis_db == 3
       && strcmp(ctx.conf.redis_password_file, "/run/pw") == 0,
       "sentinel: its own auth, the master's auth and db beside it");
    OK(ctx.conf.redis_wait_replicas == 2
       && ctx.conf.redis_wait_timeout_ms == 250, "wait: replicas, timeout");
    migctl_conf_free(&ctx);

    p = write_conf("wait1.conf", "redis = { wait = { replicas = 1; }; };\n");
    OK(load(&ctx, p, err, sizeof(err)) == 0
       && ctx.conf.redis_wait_replicas == 1
       && ctx.conf.redis_wait_timeout_ms == 1000 && ctx.conf.nsentinels == 0,
       "wait: without sentinel, timeout 1 s by default");
    migctl_conf_free(&ctx);
}


static void
test_errors(void)
{
    size_t        i;
    char          err[512], want[600];
    const char   *p;
    migctl_ctx_t  ctx;

    static const struct {
        const char  *text;
        int          line;
        const char  *says;
    } bad[] = {
        { "a = 1;\nb = = 2;\n", 2, "syntax error" },
        { "redis = 5;\n", 1, "redis must be a group" },
        { "redis = {\n port = \"x\"; };\n", 2, "port must be an integer" },
        { "redis = { port = 0; };\n", 1, "out of range 1..65535" },
        { "redis = { db = -1; };\n", 1, "out of range" },
        { "redis = { timeout_ms = 0; };\n", 1, "out of range" },
        { "redis = {\n\n host = 5; };\n", 3, "host must be a string" },
        { "redis = { hots = \"x\"; };\n", 1, "unknown setting \"hots\"" },
        { "redis = { password_file = \"/a\";\n password_env = \"B\"; };\n",
          2, "not both" },
        { "prefix = \"a:b\";\n", 1, "prefix \"a:b\" must be" },
        { "prefix = \"\";\n", 1, "prefix \"\" must be" },
        { "edge_live_ms = 10;\n", 1, "out of range 100.." },
        { "health = { checks = 5; };\n", 1, "must be a list" },
        { "health = { checks = ( { name = \"a b\"; command = \"x\"; } );"
          " };\n", 1, "health check name \"a b\"" },
        { "health = { checks = ( { name = \"a\"; cmd = \"x\"; } ); };\n",
          1, "unknown setting \"cmd\"" },
        { "health = { checks = (\n { name = \"a\";\n type = \"htp\"; } ); };\n",
          3, "unknown check type \"htp\"" },
        { "health = { checks = (\n { name = \"a\"; type = \"http\"; } ); };\n",
          2, "an http check needs a url" },
        { "health = { checks = ( { name = \"a\"; type = \"http\";\n"
          " url = \"http://h/\";\n expect_status = 700; } ); };\n", 3,
          "out of range 100..599" },
        { "health = { checks = ( { name = \"a\"; type = \"http\";"
          " url = \"http://h/\";\n expect_header = \"novalue\"; } ); };\n",
          2, "expect_header must be \"Name: value\"" },
        { "health = { checks = (\n { name = \"a\"; type = \"sql\";"
          " query = \"SELECT 1\"; } ); };\n", 2, "needs a query and" },
        { "health = { checks = (\n { name = \"a\"; type = \"migrations\";"
          " plan = \"p\"; command = \"c\"; } ); };\n", 2,
          "a plan file and/or manage, or a command" },
        { "health = { checks = (\n { name = \"a\"; type = \"migrations\";"
          " manage = \"m\"; command = \"c\"; } ); };\n", 2,
          "a plan file and/or manage, or a command" },
        { "health = { checks = (\n { name = \"a\"; type = \"backup\"; }"
          " ); };\n", 2, "a command or max_age_min" },
        { "health = { checks = ( { name = \"a\"; type = \"edges\";\n"
          " scope = \"a b\"; } ); };\n", 2, "not a valid scope" },
        { "health = { checks = ( { name = \"a\"; type = \"edges\";\n"
          " url = \"http://h/\"; } ); };\n", 2, "unknown setting \"url\"" },
        { "health = { checks = ( { name = \"a\"; command = \"x\"; },\n"
          " { name = \"a\"; command = \"y\"; } ); };\n", 2,
          "two entries named \"a\"" },
        { "hooks = {\n on = ( { name = \"a\"; type = \"http\"; } ); };\n",
          2, "a hook is a command" },
        { "hooks = { off = (\n { name = \"a\"; } ); };\n", 2,
          "hooks.off[0] needs a name and a command" },
        { "hooks = 3;\n", 1, "hooks must be a group" },
        { "health = { checks = ( { name = \"a\"; type = \"http\";"
          " url = \"http://h/\";\n resolve = \"h:80\"; } ); };\n", 2,
          "resolve must be \"host:port:address\"" },
        /* redis.sentinel, redis.wait */
        { "redis = { host = \"r\";\n sentinel = { master = \"m\";"
          " nodes = ( \"s:26379\" ); }; };\n", 2,
          "give sentinel or host/port/unix, not both" },
        { "redis = { port = 6380;\n sentinel = { master = \"m\";"
          " nodes = ( \"s:26379\" ); }; };\n", 2, "not both" },
        { "redis = { unix = \"/r.sock\";\n sentinel = { master = \"m\";"
          " nodes = ( \"s:26379\" ); }; };\n", 2, "not both" },
        { "redis = { sentinel = { master = \"m\";\n nodes = ( ); }; };\n",
          2, "must list 1..16 sentinels" },
        { "redis = { sentinel = {\n nodes = ( \"s:1\" ); }; };\n", 1,
          "needs master = \"NAME\"" },
        { "redis = { sentinel = { master = \"m\"; }; };\n", 1,
          "needs nodes" },
        { "redis = { sentinel = { master = \"a b\";\n"
          " nodes = ( \"s:1\" ); }; };\n", 1, "without spaces" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " \"s1:26379\",\n \"s2\" ); }; };\n", 3,
          "nodes[1] \"s2\" is not \"host:port\"" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " \"s1:0\" ); }; };\n", 2, "nodes[0] \"s1:0\"" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " \"s1:65536\" ); }; };\n", 2, "port 1..65535" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " \"s 1:26379\" ); }; };\n", 2, "is not \"host:port\"" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " \":26379\" ); }; };\n", 2, "is not \"host:port\"" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " \"::1:26379\" ); }; };\n", 2, "[IPv6]" },
        { "redis = { sentinel = { master = \"m\"; nodes = (\n"
          " 26379 ); }; };\n", 2, "in double quotes" },
        { "redis = { sentinel = { master = \"m\"; nodes = ( \"s:1\" );\n"
          " pasword_file = \"/x\"; }; };\n", 2,
          "unknown setting \"pasword_file\"" },
        { "redis = { sentinel = { master = \"m\"; nodes = ( \"s:1\" );\n"
          " password_file = \"/x\";\n password_env = \"X\"; }; };\n", 3,
          "password_file or password_env, not both" },
        { "redis = { sentinel = ( \"s:1\" ); };\n", 1,
          "redis.sentinel must be a group" },
        { "redis = { wait = { timeout = \"1s\"; }; };\n", 1,
          "needs replicas" },
        { "redis = { wait = {\n replicas = 0; }; };\n", 2,
          "out of range 1..1000" },
        { "redis = { wait = { replicas = 1;\n timeout = \"forever\"; };"
          " };\n", 2, "is not a duration" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want), "bad%zu.conf", i);
        p = write_conf(want, bad[i].text);
        snprintf(want, sizeof(want), "%s:%d: ", p, bad[i].line);

        err[0] = '\0';
        if (!OK(load(&ctx, p, err, sizeof(err)) == -1
                && strncmp(err, want, strlen(want)) == 0
                && strstr(err, bad[i].says) != NULL,
                "error %zu: \"%s\" at line %d", i, bad[i].says,
                bad[i].line))
        {
            printf("# got: %s\n", err);
        }
        migctl_conf_free(&ctx);
    }

    /* a url is parsed (libcurl) by the commands that run the checks */
    p = write_conf("badurl.conf", "health = { checks = ( { name = \"a\";"
                   " type = \"http\";\n url = \"gopher://h/\"; } ); };\n");
    snprintf(want, sizeof(want), "%s:2: health.checks[0]: bad url"
             " \"gopher://h/\"", p);
    OK(load(&ctx, p, err, sizeof(err)) == 0
       && migctl_conf_check_urls(&ctx) == MIGCTL_USAGE
       && strncmp(ctx.error, want, strlen(want)) == 0,
       "a bad url: exit 2 at line 2 when the checks are to run");
    migctl_conf_free(&ctx);

    snprintf(want, sizeof(want), "%s/missing.conf", dir);
    OK(load(&ctx, want, err, sizeof(err)) == -1
       && strstr(err, "cannot read configuration") != NULL,
       "missing file: cannot read");
    migctl_conf_free(&ctx);
}


static void
test_types(void)
{
    char                   err[512];
    const char            *p;
    migctl_ctx_t           ctx;
    const migctl_check_t  *c;

    p = write_conf("types.conf",
        "health = { timeout_ms = 900; checks = (\n"
        "  { name = \"web\"; type = \"http\"; url = \"https://a.example/h\";\n"
        "    expect_status = 204; expect_body = \"ok\";\n"
        "    expect_header = \"X-Release: r1\"; ca_file = \"/ca.pem\";\n"
        "    bypass_token_file = \"/tok\"; timeout_ms = 50; },\n"
        "  { name = \"edges\"; type = \"edges\"; scope = \"api\"; },\n"
        "  { name = \"plan\"; type = \"migrations\"; plan = \"/p\"; },\n"
        "  { name = \"mcheck\"; type = \"migrations\"; command = \"m\"; },\n"
        "  { name = \"idx\"; type = \"invalid_indexes\"; },\n"
        "  { name = \"blk\"; type = \"blocked_sessions\"; max_wait_s = 7; },\n"
        "  { name = \"wal\"; type = \"backup\"; max_age_min = 30; },\n"
        "  { name = \"q\"; type = \"sql\"; query = \"SELECT 1\";"
        " expect = \"1\"; },\n"
        "  { name = \"cmd\"; type = \"command\"; command = \"true\"; }\n"
        "); };\n"
        "hooks = { timeout_ms = 5000;\n"
        "  on = ( { name = \"pause\"; command = \"p\"; } );\n"
        "  off = ( { name = \"resume\"; command = \"r\"; timeout_ms = 9; },\n"
        "          { name = \"thaw\"; command = \"t\"; } ); };\n");

    if (!OK(load(&ctx, p, err, sizeof(err)) == 0, "types: load")) {
        printf("# %s\n", err);
        migctl_conf_free(&ctx);
        return;
    }

    c = ctx.conf.checks;
    OK(ctx.conf.nchecks == 9, "types: nine checks");
    OK(migctl_conf_check_urls(&ctx) == MIGCTL_OK && c[0].url_line == 2,
       "types: the url is good, its line kept");
    OK(c[0].type == MIGCTL_CHECK_HTTP && c[0].expect_status == 204
       && strcmp(c[0].url, "https://a.example/h") == 0
       && strcmp(c[0].expect_body, "ok") == 0
       && strcmp(c[0].expect_header, "X-Release: r1") == 0
       && strcmp(c[0].ca_file, "/ca.pem") == 0
       && strcmp(c[0].bypass_token_file, "/tok") == 0
       && c[0].timeout_ms == 50 && c[0].line == 2, "types: http");
    OK(c[1].type == MIGCTL_CHECK_EDGES && strcmp(c[1].scope, "api") == 0
       && c[1].timeout_ms == 900, "types: edges, the group's timeout");
    OK(c[2].type == MIGCTL_CHECK_MIGRATIONS && strcmp(c[2].plan, "/p") == 0
       && c[3].type == MIGCTL_CHECK_MIGRATIONS
       && strcmp(c[3].command, "m") == 0, "types: migrations, plan or"
       " command");
    OK(c[4].type == MIGCTL_CHECK_INVALID_INDEXES
       && c[5].type == MIGCTL_CHECK_BLOCKED_SESSIONS && c[5].max_wait_s == 7
       && c[6].type == MIGCTL_CHECK_BACKUP && c[6].max_age_min == 30,
       "types: invalid_indexes, blocked_sessions, backup");
    OK(c[7].type == MIGCTL_CHECK_SQL && strcmp(c[7].query, "SELECT 1") == 0
       && strcmp(c[7].expect, "1") == 0 && c[8].type == MIGCTL_CHECK_COMMAND,
       "types: sql, command");
    OK(ctx.conf.nhooks_on == 1 && ctx.conf.nhooks_off == 2
       && strcmp(ctx.conf.hooks_on[0].command, "p") == 0
       && ctx.conf.hooks_on[0].timeout_ms == 5000
       && ctx.conf.hooks_off[0].timeout_ms == 9
       && strcmp(ctx.conf.hooks_off[1].name, "thaw") == 0, "hooks: on, off");

    migctl_conf_free(&ctx);
}


static void
test_health(void)
{
    int             rc;
    char            err[512];
    time_t          start;
    json_t         *res, *c;
    const char     *p;
    migctl_ctx_t    ctx;

    p = write_conf("health.conf",
        "health = { checks = (\n"
        "  { name = \"pass\"; command = \"echo one; echo two\"; },\n"
        "  { name = \"fail\"; command = \"echo no >&2; exit 3\"; },\n"
        "  { name = \"hang\"; command = \"sleep 30 & sleep 30\";"
        " timeout_ms = 200; },\n"
        "  { name = \"signal\"; command = \"kill -TERM $$\"; },\n"
        "  { name = \"noexec\"; command = \"/nonexistent/x\"; },\n"
        "  { name = \"binary\"; command = \"printf 'a\\\\377b'\"; }\n"
        "); };\n");

    if (load(&ctx, p, err, sizeof(err)) != 0) {
        printf("Bail out! %s\n", err);
        exit(1);
    }

    start = time(NULL);
    rc = migctl_health_run(&ctx, &res);
    OK(rc == MIGCTL_PROBLEM, "health: a failing check -> MIGCTL_PROBLEM");
    OK(time(NULL) - start < 10, "health: a hung check is bounded");
    OK(json_is_false(json_object_get(res, "ok")), "health: ok false");

    c = json_array_get(json_object_get(res, "checks"), 0);
    OK(json_is_true(json_object_get(c, "ok"))
       && strcmp(json_string_value(json_object_get(c, "detail")), "two")
          == 0, "health: pass, the last line of output");

    c = json_array_get(json_object_get(res, "checks"), 1);
    OK(json_is_false(json_object_get(c, "ok"))
       && strcmp(json_string_value(json_object_get(c, "detail")),
                 "exit 3: no") == 0, "health: exit 3 and stderr");

    c = json_array_get(json_object_get(res, "checks"), 2);
    OK(json_is_false(json_object_get(c, "ok"))
       && strncmp(json_string_value(json_object_get(c, "detail")),
                  "timed out after 200 ms", 22) == 0,
       "health: timed out after 200 ms");

    c = json_array_get(json_object_get(res, "checks"), 3);
    OK(json_is_false(json_object_get(c, "ok"))
       && strncmp(json_string_value(json_object_get(c, "detail")),
                  "killed by signal 15", 19) == 0, "health: signal");

    c = json_array_get(json_object_get(res, "checks"), 4);
    OK(json_is_false(json_object_get(c, "ok"))
       && strncmp(json_string_value(json_object_get(c, "detail")),
                  "exit 127", 8) == 0, "health: command not found");

    c = json_array_get(json_object_get(res, "checks"), 5);
    OK(json_is_true(json_object_get(c, "ok"))
       && json_string_value(json_object_get(c, "detail")) != NULL
       && strcmp(json_string_value(json_object_get(c, "detail")), "a?b")
          == 0, "health: output that is not UTF-8 is kept, as '?'");

    json_decref(res);
    migctl_conf_free(&ctx);

    memset(&ctx, 0, sizeof(ctx));
    ctx.conf.nchecks = 0;
    OK(migctl_health_run(&ctx, &res) == MIGCTL_OK
       && json_is_true(json_object_get(res, "ok")),
       "health: no checks pass");
    json_decref(res);
}


static int
load(migctl_ctx_t *ctx, const char *path, char *err, size_t errlen)
{
    memset(ctx, 0, sizeof(migctl_ctx_t));
    ctx->cmd = "test";
    ctx->config_path = path;

    return migctl_conf_load(ctx, err, errlen);
}


static const char *
write_conf(const char *name, const char *text)
{
    FILE         *f;
    static char   path[8][256];
    static int    n;
    char         *p;

    p = path[n++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);

    f = fopen(p, "w");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        printf("Bail out! writing %s\n", p);
        exit(1);
    }

    return p;
}


static int
ok_(int pass, const char *fmt, ...)
{
    va_list  ap;

    tests++;

    printf("%sok %d - ", pass ? "" : "not ", tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");

    if (!pass) {
        failed++;
    }

    return pass;
}
