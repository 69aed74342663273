/*
 * main.c: migctl's entry point: global options, configuration, and the
 * command table; only main() exits.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"


typedef struct {
    const char     *name;
    migctl_cmd_pt   fn;
    const char     *summary;
} migctl_command_t;


static void usage(FILE *f);
static int help(migctl_ctx_t *ctx, int argc, char **argv);
static const migctl_command_t *find_command(const char *name);
static int has_json(int argc, char **argv);
static int global_duration(migctl_ctx_t *ctx, int argc, char **argv,
    int *i, const char *name, long *ms);


static const migctl_command_t commands[] = {
    { "maintenance", cmd_maintenance,
      "on|off|status: the maintenance flag across every edge" },
    { "migrations", cmd_migrations,
      "applied, pending and unknown migrations" },
    { "inspect", cmd_inspect,
      "check a sqlmigrate file against the real schema" },
    { "classify", cmd_classify,
      "class of a failure from a traceback or log" },
    { "diagnose", cmd_diagnose,
      "state + class + the recommended recovery path" },
    { "locks", cmd_locks,
      "blocked, blocking and idle sessions, INVALID indexes" },
    { "health", cmd_health,
      "run the configured health checks; exit 0 only if all pass" },
    { "verify", cmd_verify,
      "history drift: recorded migrations against the catalog" },
    { "run", cmd_run,
      "run a migration command once, under the runner lock, kept" },
    { "evidence", cmd_evidence,
      "write the incident bundle (summary, catalog, audit, runs)" },
    { NULL, NULL, NULL }
};


int
main(int argc, char **argv)
{
    int                      i, rc;
    char                     err[MIGCTL_PATH_MAX + 512];
    const char              *scope;
    migctl_ctx_t             ctx;
    const migctl_command_t  *c;

    memset(&ctx, 0, sizeof(ctx));
    ctx.cmd = "migctl";
    ctx.error_details = migctl_db_last_blockers;
    migctl_fatal_ctx(&ctx);
    scope = getenv("MIGCTL_SCOPE");
    if (scope == NULL || *scope == '\0') {
        scope = MIG_DEFAULT_SCOPE;
    }

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            goto flush;

        } else if (strcmp(a, "--version") == 0) {
            printf("migctl %s\n", MIG_VERSION);
            goto flush;

        } else if (strcmp(a, "--json") == 0) {
            ctx.json = 1;

        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (++i == argc) {
                rc = migctl_error(&ctx, MIGCTL_USAGE,
                                  "%s needs a file: see migctl --help", a);
                goto failed;
            }
            ctx.config_path = argv[i];

        } else if (strncmp(a, "--config=", 9) == 0) {
            ctx.config_path = a + 9;

        } else if (strcmp(a, "--scope") == 0) {
            if (++i == argc) {
                rc = migctl_error(&ctx, MIGCTL_USAGE,
                                  "--scope needs a name: see migctl --help");
                goto failed;
            }
            scope = argv[i];

        } else if (strncmp(a, "--scope=", 8) == 0) {
            scope = a + 8;

        } else if ((rc = global_duration(&ctx, argc, argv, &i,
                                         "--lock-timeout",
                                         &ctx.lock_timeout_ms)) >= 0
                   || (rc = global_duration(&ctx, argc, argv, &i,
                                            "--statement-timeout",
                                            &ctx.statement_timeout_ms)) >= 0)
        {
            if (rc != MIGCTL_OK) {
                goto failed;
            }

        } else {
            rc = migctl_error(&ctx, MIGCTL_USAGE,
                              "unknown option '%s': see migctl --help", a);
            goto failed;
        }
    }

    if (mig_scope_valid(scope, strlen(scope), err, sizeof(err)) != MIG_OK) {
        rc = migctl_error(&ctx, MIGCTL_USAGE, "--scope: %s", err);
        goto failed;
    }
    strcpy(ctx.scope, scope);

    if (i == argc) {
        usage(stderr);
        return MIGCTL_USAGE;
    }

    /*
     * "migctl help [COMMAND]" and "migctl COMMAND --help" print the same
     * text, without reading the configuration: help works on a host
     * whose migctl.conf is broken
     */
    if (strcmp(argv[i], "help") == 0
        || (i + 1 < argc && find_command(argv[i]) != NULL
            && (strcmp(argv[i + 1], "--help") == 0
                || strcmp(argv[i + 1], "-h") == 0)))
    {
        rc = help(&ctx, argc - i, argv + i);
        if (rc != MIGCTL_OK) {
            goto failed;
        }
        goto flush;
    }

    c = find_command(argv[i]);
    if (c == NULL) {
        rc = migctl_error(&ctx, MIGCTL_USAGE,
                          "unknown command '%s': see migctl --help",
                          argv[i]);
        goto failed;
    }

    ctx.cmd = c->name;

    if (migctl_conf_load(&ctx, err, sizeof(err)) != 0) {
        migctl_conf_free(&ctx);
        rc = migctl_error(&ctx, MIGCTL_USAGE, "%s", err);
        if (ctx.json || has_json(argc - i, argv + i)) {
            migctl_json_error(&ctx, rc);
        }
        return rc;
    }

    rc = c->fn(argc - i, argv + i, &ctx);
    migctl_conf_free(&ctx);

    if (rc == MIGCTL_OPT_HELP) {
        rc = MIGCTL_OK;
    }

    if (rc != MIGCTL_OK) {
        if (ctx.json && !migctl_json_printed()) {
            migctl_json_error(&ctx, rc);
        }
        fflush(stdout);
        return rc;
    }

    goto flush;

failed:

    /* --json before the error: the error object too */
    if (ctx.json) {
        migctl_json_error(&ctx, rc);
    }

    return rc;

flush:

    /* a result that did not reach stdout is not a success (git.c) */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctx.cmd = "migctl";
        return migctl_error(&ctx, MIGCTL_PROBLEM, "writing output: %s",
                            strerror(errno));
    }

    return MIGCTL_OK;
}


/* argv: "help" [COMMAND], or COMMAND "--help" */
static int
help(migctl_ctx_t *ctx, int argc, char **argv)
{
    char                    *hargv[3];
    const char              *name;
    const migctl_command_t  *c;

    if (strcmp(argv[0], "help") != 0) {
        name = argv[0];

    } else if (argc == 1 || strcmp(argv[1], "--help") == 0
               || strcmp(argv[1], "-h") == 0)
    {
        usage(stdout);
        return MIGCTL_OK;

    } else if (argc > 2) {
        return migctl_error(ctx, MIGCTL_USAGE, "help takes one command,"
                            " '%s' is extra: see migctl help", argv[2]);

    } else {
        name = argv[1];
    }

    c = find_command(name);
    if (c == NULL) {
        return migctl_error(ctx, MIGCTL_USAGE, "help: unknown command '%s':"
                            " see migctl help", name);
    }

    /* each command prints its own usage on "--help", before any work */
    ctx->cmd = c->name;
    hargv[0] = (char *) c->name;
    hargv[1] = (char *) "--help";
    hargv[2] = NULL;

    return c->fn(2, hargv, ctx) == MIGCTL_USAGE ? MIGCTL_USAGE : MIGCTL_OK;
}


static const migctl_command_t *
find_command(const char *name)
{
    const migctl_command_t  *c;

    for (c = commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }

    return NULL;
}


static int
has_json(int argc, char **argv)
{
    int  i;

    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            return 1;
        }
    }

    return 0;
}


static void
usage(FILE *f)
{
    const migctl_command_t  *c;

    fprintf(f,
        "usage: migctl [GLOBAL] COMMAND [options] [ARGS...]\n"
        "       migctl help [COMMAND]\n"
        "\n"
        "Contains, diagnoses and recovers a failed Django manage.py\n"
        "migrate: sets the maintenance flag every nginx edge serves, finds\n"
        "the real state of the database, classifies the failure, recommends\n"
        "a recovery path, runs migrations one runner at a time, keeps the\n"
        "evidence, and reopens only when the health checks pass.\n"
        "\n"
        "commands:\n");

    for (c = commands; c->name; c++) {
        fprintf(f, "  %-12s  %s\n", c->name, c->summary);
    }

    fprintf(f,
        "  %-12s  %s\n"
        "\n"
        "global options (GLOBAL, before COMMAND):\n"
        "  -c, --config FILE       configuration (else $MIGCTL_CONFIG, else\n"
        "                          /etc/migctl/migctl.conf, else built-in\n"
        "                          defaults: Redis 127.0.0.1:6379, prefix\n"
        "                          migctl)\n"
        "  --json                  machine-readable output (also after\n"
        "                          COMMAND)\n"
        "  --scope S               maintenance scope (default \"default\",\n"
        "                          or $MIGCTL_SCOPE)\n"
        "  --lock-timeout D        give up a database read waiting on a\n"
        "                          lock after D (default 2s; e.g. 500ms)\n"
        "  --statement-timeout D   give up a database read after D\n"
        "                          (default 30s); both also in migctl.conf\n"
        "                          database { ... } and after COMMAND\n"
        "  --version               print the version\n"
        "  -h, --help              this text; COMMAND --help describes a\n"
        "                          command, as migctl help COMMAND\n",
        "help", "this text, or a command's: migctl help COMMAND");

    migctl_usage_footer(f, MIGCTL_USAGE_MAIN | MIGCTL_USAGE_DB
                           | MIGCTL_USAGE_REDIS,
        "0;1 a problem was found (unhealthy, not applied, inconsistent);"
        "2;3;4;5",
        "migctl maintenance on --reason \"migrate failed\" --wait\n"
        "migctl diagnose --app shop --migration 0042_x --sql 0042.sql \\\n"
        "    --traceback migrate.log --previous-plan previous-plan.txt\n"
        "migctl run --lock-timeout 5s -- python3 manage.py migrate"
        " --noinput\n"
        "migctl maintenance off --wait");
}


/*
 * "--lock-timeout D" or "--lock-timeout=D" at argv[*i]: -1 when argv[*i]
 * is another option, else MIGCTL_OK with *ms set or MIGCTL_USAGE
 */
static int
global_duration(migctl_ctx_t *ctx, int argc, char **argv, int *i,
    const char *name, long *ms)
{
    size_t       len;
    const char  *a, *v;

    a = argv[*i];
    len = strlen(name);

    if (strncmp(a, name, len) != 0 || (a[len] != '\0' && a[len] != '=')) {
        return -1;
    }

    if (a[len] == '=') {
        v = a + len + 1;

    } else if (*i + 1 < argc) {
        v = argv[++*i];

    } else {
        return migctl_error(ctx, MIGCTL_USAGE, "%s needs a duration: see "
                            "migctl --help", name);
    }

    if (migctl_parse_duration_ms(v, MIGCTL_DB_TIMEOUT_MAX_MS, ms) != 0
        || *ms < 1)
    {
        return migctl_error(ctx, MIGCTL_USAGE, "%s wants a duration from 1ms"
                            " to %lds (e.g. 500ms, 2s, 1m), not '%s'", name,
                            MIGCTL_DB_TIMEOUT_MAX_MS / 1000, v);
    }

    return MIGCTL_OK;
}
