/*
 * verify_django.c: the SQL of every migration from one Django process:
 * the script, its child under a deadline, the JSON document it prints.
 */

#define _GNU_SOURCE                          /* close_range */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "db.h"
#include "verify.h"


#define VERIFY_MARK        "migctl-verify-json: "
#define VERIFY_OUT_MAX     (256L << 20)    /* the document, 256 MB */
#define VERIFY_LOCK_TIMEOUT_MS  5000       /* Django's reads, PGOPTIONS */


static int read_django(migctl_ctx_t *ctx, PGconn *conn, const char *manage,
    const char **apps, int napps, long timeout_ms, char *const *envp,
    json_t **doc);
static int run_django(migctl_ctx_t *ctx, PGconn *conn, const char *manage,
    const char **apps, int napps, long timeout_ms, char *const *envp,
    char **outp, char *tail, size_t taillen);
static int locked_out(migctl_ctx_t *ctx, PGconn *conn, const char *cmd);
static int parse_doc(migctl_ctx_t *ctx, const char *text, const char *what,
    json_t **doc);
static void last_exception(char *text, char *out, size_t len);


const char  migctl_verify_script[] =
    "# migctl verify: the SQL of every migration of the apps, from one\n"
    "# Django process (manage.py shell reads this on standard input).\n"
    "# Prints one line: 'migctl-verify-json: ' and a JSON object.\n"
    "# MIGCTL_APPS: app labels, comma-separated (all apps when empty);\n"
    "# MIGCTL_DATABASE: the database alias (default).\n"
    "import json\n"
    "import os\n"
    "import sys\n"
    "\n"
    "import django\n"
    "from django.db import DEFAULT_DB_ALIAS, connections\n"
    "from django.db.migrations.loader import MigrationLoader\n"
    "from django.db.migrations.state import ProjectState\n"
    "\n"
    "\n"
    "def migctl_verify():\n"
    "    alias = os.environ.get('MIGCTL_DATABASE') or DEFAULT_DB_ALIAS\n"
    "    env = os.environ.get('MIGCTL_APPS', '')\n"
    "    wanted = [a for a in env.split(',') if a]\n"
    "    conn = connections[alias]\n"
    "    # as migrate sees it: a squash replaces its migrations if it can\n"
    "    loader = MigrationLoader(conn, replace_migrations=True)\n"
    "    graph = loader.graph\n"
    "    labels = set(k[0] for k in graph.nodes)\n"
    "    for a in wanted:\n"
    "        if a not in labels:\n"
    "            print('migctl-verify: app %s has no migrations' % a,\n"
    "                  file=sys.stderr)\n"
    "            sys.exit(3)\n"
    "    # every migration once, in an order migrate can apply them\n"
    "    plan, seen = [], set()\n"
    "    for leaf in sorted(graph.leaf_nodes()):\n"
    "        for node in graph.forwards_plan(leaf):\n"
    "            if node not in seen:\n"
    "                seen.add(node)\n"
    "                plan.append(node)\n"
    "    # one state carried forward: no project_state() per migration\n"
    "    state = ProjectState(real_apps=list(loader.unmigrated_apps))\n"
    "    rollback = conn.features.can_rollback_ddl\n"
    "    out = []\n"
    "    for node in plan:\n"
    "        m = graph.nodes[node]\n"
    "        if wanted and m.app_label not in wanted:\n"
    "            state = m.mutate_state(state, preserve=False)\n"
    "            continue\n"
    "        deps = [list(d) for d in m.dependencies\n"
    "                if d[1] not in ('__first__', '__latest__')]\n"
    "        e = {'app': m.app_label, 'name': m.name,\n"
    "             'atomic': bool(m.atomic),\n"
    "             'replaces': [list(r) for r in (m.replaces or [])],\n"
    "             'dependencies': deps, 'sql': None, 'error': None}\n"
    "        try:\n"
    "            with conn.schema_editor(collect_sql=True,\n"
    "                                    atomic=m.atomic) as editor:\n"
    "                state = m.apply(state, editor, collect_sql=True)\n"
    "            sql = list(editor.collected_sql)\n"
    "            # as sqlmigrate prints it\n"
    "            if m.atomic and rollback:\n"
    "                sql = ['BEGIN;'] + sql + ['COMMIT;']\n"
    "            e['sql'] = ''.join(x + chr(10) for x in sql)\n"
    "        except Exception as exc:\n"
    "            e['error'] = '%s: %s' % (type(exc).__name__, exc)\n"
    "            state = loader.project_state(node, at_end=True)\n"
    "        out.append(e)\n"
    "    # every squash on disk, also one the graph left out (a squash of\n"
    "    # a squash): what a recorded migration is known through\n"
    "    squashes = [{'app': k[0], 'name': k[1],\n"
    "                 'replaces': [list(r) for r in m.replaces]}\n"
    "                for k, m in sorted(loader.replacements.items())\n"
    "                if not wanted or k[0] in wanted]\n"
    "    doc = {'format': 1, 'django': django.get_version(),\n"
    "           'database': alias, 'apps': wanted, 'migrations': out,\n"
    "           'squashes': squashes}\n"
    "    print('migctl-verify-json: ' + json.dumps(doc))\n"
    "\n"
    "\n"
    "migctl_verify()\n";


int
migctl_verify_django(migctl_ctx_t *ctx, PGconn *conn, const char *manage,
    const char **apps, int napps, long timeout_ms, const char *from,
    json_t **doc)
{
    int      rc;
    char    *text, err[1024];
    size_t   len;

    *doc = NULL;
    text = NULL;

    if (from != NULL) {
        if (migctl_read_file(from, &text, &len, err, sizeof(err)) != 0) {
            return migctl_error(ctx, MIGCTL_USAGE, "--from: %s", err);
        }

        rc = parse_doc(ctx, text, from, doc);
        free(text);

        return rc == MIGCTL_OK ? rc : MIGCTL_USAGE;
    }

    return read_django(ctx, conn, manage, apps, napps, timeout_ms, NULL, doc);
}


int
migctl_verify_django_env(migctl_ctx_t *ctx, const char *manage,
    long timeout_ms, char *const *envp, json_t **doc)
{
    *doc = NULL;

    return read_django(ctx, NULL, manage, NULL, 0, timeout_ms, envp, doc);
}


static int
read_django(migctl_ctx_t *ctx, PGconn *conn, const char *manage,
    const char **apps, int napps, long timeout_ms, char *const *envp,
    json_t **doc)
{
    int    rc;
    char  *text, tail[512];

    rc = run_django(ctx, conn, manage, apps, napps, timeout_ms, envp, &text,
                    tail, sizeof(tail));
    if (rc != MIGCTL_OK) {
        return rc;
    }

    rc = parse_doc(ctx, text, NULL, doc);
    free(text);

    if (rc != MIGCTL_OK) {
        return migctl_error(ctx, MIGCTL_CMDFAIL,
                            "'%s shell' printed no migctl-verify-json line"
                            "%s%s: check --manage", manage,
                            tail[0] ? ": " : "", tail);
    }

    return MIGCTL_OK;
}


/*
 * "MANAGE shell" through /bin/sh, the script on its standard input (a
 * regular file: Django's shell reads stdin only when select() finds it
 * ready), in its own process group, killed at the deadline.  *outp is
 * everything it printed on stdout; tail its last stderr line.
 */
static int
run_django(migctl_ctx_t *ctx, PGconn *conn, const char *manage,
    const char **apps, int napps, long timeout_ms, char *const *envp,
    char **outp, char *tail, size_t taillen)
{
    int             in, errfd, fd[2], status, timed_out, i, rc;
    char            path[MIGCTL_PATH_MAX], *cmd, *buf, *nb, **cenv;
    char            list[MIGCTL_COMMAND_MAX], ebuf[4096], pgopt[1024];
    char            appsv[MIGCTL_COMMAND_MAX + 16], pgoptv[1024 + 16];
    char           *argv[4];
    long            start, left;
    pid_t           pid;
    size_t          n, size, used;
    ssize_t         k;
    const char     *tmp;
    struct pollfd   pfd;
    char *const    *base;

    *outp = NULL;
    tail[0] = '\0';
    in = errfd = -1;
    fd[0] = fd[1] = -1;
    cmd = NULL;
    buf = NULL;
    cenv = NULL;
    rc = MIGCTL_CMDFAIL;

    used = 0;
    list[0] = '\0';
    for (i = 0; i < napps; i++) {
        used += snprintf(list + used, sizeof(list) - used, "%s%s",
                         i ? "," : "", apps[i]);
        if (used >= sizeof(list)) {
            return migctl_error(ctx, MIGCTL_USAGE, "too many --app");
        }
    }

    n = strlen(manage) + sizeof(" shell");
    cmd = malloc(n);
    if (cmd == NULL) {
        return migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
    }
    snprintf(cmd, n, "%s shell", manage);

    tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0') {
        tmp = "/tmp";
    }

    /* the script and Django's stderr in files unlinked at once */
    snprintf(path, sizeof(path), "%s/migctl-verify-XXXXXX", tmp);
    in = mkstemp(path);
    if (in >= 0) {
        unlink(path);
        snprintf(path, sizeof(path), "%s/migctl-verify-XXXXXX", tmp);
        errfd = mkstemp(path);
        if (errfd >= 0) {
            unlink(path);
        }
    }

    if (in < 0 || errfd < 0) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "cannot create a temporary "
                          "file in %s: %s: set TMPDIR", tmp,
                          strerror(errno));
        goto done;
    }

    n = strlen(migctl_verify_script);
    if (write(in, migctl_verify_script, n) != (ssize_t) n
        || lseek(in, 0, SEEK_SET) != 0)
    {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "cannot write the script to "
                          "%s: %s: set TMPDIR", tmp, strerror(errno));
        goto done;
    }

    if (pipe(fd) != 0) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "pipe: %s", strerror(errno));
        goto done;
    }

    /*
     * Django only reads (django_migrations): behind a lock it fails in
     * seconds instead of waiting out the whole timeout
     */
    tmp = getenv("PGOPTIONS");
    snprintf(pgopt, sizeof(pgopt), "%s%s-c lock_timeout=%d",
             tmp ? tmp : "", tmp && *tmp ? " " : "", VERIFY_LOCK_TIMEOUT_MS);

    /*
     * The child's environment made here: a health check's thread forks
     * too, and its child may call only async-signal-safe functions.
     */
    snprintf(appsv, sizeof(appsv), "MIGCTL_APPS=%s", list);
    snprintf(pgoptv, sizeof(pgoptv), "PGOPTIONS=%s", pgopt);

    base = envp ? envp : environ;
    for (n = 0; base[n]; n++) {
        /* void */
    }

    cenv = malloc((n + 3) * sizeof(char *));
    if (cenv == NULL) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    for (n = 0, i = 0; base[n]; n++) {
        if (strncmp(base[n], "MIGCTL_APPS=", 12) != 0
            && strncmp(base[n], "PGOPTIONS=", 10) != 0)
        {
            cenv[i++] = base[n];
        }
    }

    cenv[i++] = appsv;
    cenv[i++] = pgoptv;
    cenv[i] = NULL;

    argv[0] = (char *) "sh";
    argv[1] = (char *) "-c";
    argv[2] = cmd;
    argv[3] = NULL;

    start = migctl_now_ms();
    fflush(NULL);

    pid = fork();
    if (pid < 0) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "fork: %s", strerror(errno));
        goto done;
    }

    if (pid == 0) {
        setpgid(0, 0);
        dup2(in, STDIN_FILENO);
        dup2(fd[1], STDOUT_FILENO);
        dup2(errfd, STDERR_FILENO);
        /* nor another thread's pipe or socket outlives it in the child */
        close_range(3, ~0U, 0);
        execve("/bin/sh", argv, cenv);
        _exit(127);
    }

    setpgid(pid, pid);
    close(fd[1]);
    fd[1] = -1;

    size = 65536;
    used = 0;
    buf = malloc(size);
    timed_out = 0;

    for ( ;; ) {
        if (buf == NULL) {
            break;
        }

        left = timeout_ms - (migctl_now_ms() - start);
        if (left <= 0) {
            timed_out = 1;
            break;
        }

        pfd.fd = fd[0];
        pfd.events = POLLIN;
        pfd.revents = 0;

        if (poll(&pfd, 1, left > 1000 ? 1000 : (int) left) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }

        if (pfd.revents == 0) {
            continue;
        }

        if (used + 1 >= size) {
            if (size >= (size_t) VERIFY_OUT_MAX) {
                break;
            }
            nb = realloc(buf, size * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            size *= 2;
        }

        k = read(fd[0], buf + used, size - 1 - used);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            break;
        }
        used += (size_t) k;
    }

    close(fd[0]);
    fd[0] = -1;

    /* the group: manage.py under sh, and anything it started */
    if (timed_out || buf == NULL) {
        kill(-pid, SIGKILL);
    }

    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        /* void */
    }

    if (timed_out) {
        kill(-pid, SIGKILL);
    }

    k = pread(errfd, ebuf, sizeof(ebuf) - 1,
              lseek(errfd, 0, SEEK_END) > (off_t) sizeof(ebuf) - 1
              ? lseek(errfd, 0, SEEK_END) - (off_t) sizeof(ebuf) + 1 : 0);
    ebuf[k > 0 ? k : 0] = '\0';
    last_exception(ebuf, tail, taillen);

    if (buf == NULL) {
        rc = migctl_error(ctx, MIGCTL_PROBLEM, "out of memory");
        goto done;
    }

    buf[used] = '\0';

    if ((timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        && conn != NULL && (rc = locked_out(ctx, conn, cmd)) != MIGCTL_OK)
    {
        goto done;
    }

    if (timed_out) {
        rc = migctl_error(ctx, MIGCTL_CMDFAIL, "'%s' did not finish in %ld "
                          "ms (killed): raise --timeout or django.timeout",
                          cmd, timeout_ms);
        goto done;
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = migctl_error(ctx, MIGCTL_CMDFAIL, "'%s' failed (%s %d)%s%s: "
                          "Django could not produce the SQL; its "
                          "traceback (run it by hand) is what migctl "
                          "diagnose --traceback reads",
                          cmd, WIFEXITED(status) ? "exit" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status)
                                            : WTERMSIG(status),
                          tail[0] ? ": " : "", tail);
        goto done;
    }

    *outp = buf;
    buf = NULL;
    rc = MIGCTL_OK;

done:

    free(buf);
    free(cmd);
    free(cenv);
    if (in >= 0) {
        close(in);
    }
    if (errfd >= 0) {
        close(errfd);
    }
    if (fd[0] >= 0) {
        close(fd[0]);
    }
    if (fd[1] >= 0) {
        close(fd[1]);
    }

    return rc;
}


/*
 * Django failed or ran out of time, maybe on a lock: its own read of
 * django_migrations.  migctl's read of it, bounded by migctl's
 * lock_timeout, names the blocker as every migctl read does (exit 3).
 * MIGCTL_OK when that read passes: Django failed for its own reasons.
 */
static int
locked_out(migctl_ctx_t *ctx, PGconn *conn, const char *cmd)
{
    int          rc;
    char         err[1024];
    PGresult    *res;
    const char  *st;

    res = migctl_db_exec(conn, "SELECT 1 FROM django_migrations LIMIT 1");

    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        rc = MIGCTL_OK;

    } else {
        st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        rc = migctl_error(ctx, migctl_db_fail_code(conn, res),
                          "'%s' failed%s: reading django_migrations: %s",
                          cmd,
                          (st && strcmp(st, "55P03") == 0)
                          || json_array_size(migctl_db_last_blockers()) > 0
                          ? " on a lock" : ", and so did migctl's own read",
                          migctl_db_error(conn, err, sizeof(err)));
    }

    PQclear(res);

    return rc;
}


/* the last "migctl-verify-json: " line; what names a --from file */
static int
parse_doc(migctl_ctx_t *ctx, const char *text, const char *what,
    json_t **doc)
{
    size_t        ml;
    const char   *p, *line, *end;
    json_t       *d;
    json_error_t  je;

    *doc = NULL;
    ml = sizeof(VERIFY_MARK) - 1;
    line = NULL;

    for (p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, VERIFY_MARK, ml) == 0) {
            line = p + ml;
        }
    }

    /* a --from file may hold the bare JSON document */
    if (line == NULL && what != NULL) {
        line = text;
    }

    if (line == NULL) {
        return MIGCTL_CMDFAIL;
    }

    end = strchr(line, '\n');
    if (what != NULL && line == text) {
        end = NULL;
    }

    d = json_loadb(line, end ? (size_t) (end - line) : strlen(line), 0, &je);

    if (d == NULL || !json_is_array(json_object_get(d, "migrations"))
        || json_integer_value(json_object_get(d, "format")) != 1)
    {
        json_decref(d);
        return migctl_error(ctx, what ? MIGCTL_USAGE : MIGCTL_CMDFAIL,
                            "%s: not a migctl verify document (%s): make "
                            "it with migctl verify --print-script",
                            what ? what : "the script's output",
                            d ? "no format 1 migrations" : je.text);
    }

    *doc = d;

    return MIGCTL_OK;
}


/*
 * The exception of a Python traceback: the last line "dotted.Name: text"
 * (psycopg adds "LINE 1: ..." and a caret after it); else the last line.
 */
static void
last_exception(char *text, char *out, size_t len)
{
    char  *p, *q, *nl, *end, *line, *found;

    found = NULL;
    line = NULL;
    p = text;

    while (*p) {
        nl = strchr(p, '\n');
        end = nl ? nl : p + strlen(p);

        if (end > p && p[0] != ' ' && p[0] != '\t' && p[0] != '^'
            && p[0] != '\r')
        {
            line = p;
        }

        for (q = p; q < end && ((*q >= 'a' && *q <= 'z')
                                || (*q >= 'A' && *q <= 'Z')
                                || (*q >= '0' && *q <= '9')
                                || *q == '_' || *q == '.'); q++)
        {
            /* void */
        }
        if (q > p && q + 1 < end && q[0] == ':' && q[1] == ' ') {
            found = p;
        }

        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }

    p = found ? found : line ? line : text;
    nl = strchr(p, '\n');
    snprintf(out, len, "%.*s", (int) (nl ? nl - p : (long) strlen(p)), p);

    /* the \r of a CRLF log goes too */
    q = out + strlen(out);
    while (q > out && (q[-1] == '\r' || q[-1] == ' ')) {
        *--q = '\0';
    }
}
