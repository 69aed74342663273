/*
 * evidence_summary.c: summary.md, the first file of the bundle: what
 * failed, state, class, path, maintenance, locks, and the timeline.
 */

#define _GNU_SOURCE  /* asprintf */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence.h"


static int by_time(const void *a, const void *b);


static int
by_time(const void *a, const void *b)
{
    return strcmp(s_of(*(json_t *const *) a, "t"),
                  s_of(*(json_t *const *) b, "t"));
}


char *
migctl_evidence_summary(const ev_t *e, size_t *outlen)
{
    char         *t;
    size_t        len, j, k;
    FILE         *f;
    json_t       *o, *v, *items[EV_TIMELINE_MAX];
    const char   *fm;
    char          when[64];
    int           n;

    f = open_memstream(&t, &len);
    if (f == NULL) {
        return NULL;
    }

    fprintf(f, "# Incident evidence, %s\n\n", e->ts);
    fprintf(f, "migctl %s, scope `%s`, database %s.  Secrets (database and"
            " Redis passwords, tokens) are redacted in every file.\n\n",
            MIG_VERSION, e->ctx->scope,
            e->server ? s_of(e->server, "database") : "(unreachable)");

    /* what failed */
    fprintf(f, "## What failed\n\n");
    if (e->last_failed) {
        o = e->last_failed;
        fm = s_of(o, "failed_migration");
        fprintf(f, "- run `%s`: `%s`\n", s_of(o, "id"),
                s_of(o, "command") ? s_of(o, "command") : "?");
        fprintf(f, "- started %s, ended %s, %s %s\n",
                s_of(o, "started") ? s_of(o, "started") : "?",
                s_of(o, "ended") ? s_of(o, "ended") : "?",
                json_is_integer(json_object_get(o, "exit")) ? "exit"
                : "signal",
                json_is_integer(json_object_get(o, "exit"))
                ? (snprintf(when, sizeof(when), "%lld", (long long)
                            json_integer_value(json_object_get(o, "exit"))),
                   when)
                : (s_of(o, "signal") ? s_of(o, "signal") : "?"));
        fprintf(f, "- failing migration: %s\n", fm ? fm : "(none named)");
        fprintf(f, "- attempts: %d, applied by the run: %d\n\n",
                (int) json_array_size(json_object_get(o, "attempts")),
                (int) json_array_size(json_object_get(o, "applied")));
    } else {
        fprintf(f, "No failed run in the evidence root (%s).\n\n",
                migctl_runs_dir(e->ctx, e->runs_dir));
    }

    /* state, class, path */
    fprintf(f, "## State, class, path\n\n");
    if (e->diag) {
        fprintf(f, "- migration: %s.%s\n", s_of(e->diag, "app"),
                s_of(e->diag, "migration"));
        fprintf(f, "- state: **%s**\n",
                s_of(json_object_get(e->diag, "state"), "verdict"));
        fprintf(f, "- class: **%s** (SQLSTATE %s)\n",
                s_of(json_object_get(e->diag, "class"), "class")
                ? s_of(json_object_get(e->diag, "class"), "class") : "none",
                s_of(json_object_get(e->diag, "class"), "sqlstate")
                ? s_of(json_object_get(e->diag, "class"), "sqlstate") : "-");
        fprintf(f, "- path: **%s**\n", s_of(e->diag, "path"));
        json_array_foreach(json_object_get(e->diag, "reasons"), j, v) {
            fprintf(f, "  - %s\n", json_string_value(v));
        }
        fprintf(f, "\nNext:\n\n");
        json_array_foreach(json_object_get(e->diag, "next"), j, v) {
            fprintf(f, "    %s\n", json_string_value(v));
        }
        fprintf(f, "\n");

    } else {
        if (e->insp) {
            fprintf(f, "- state: **%s** (%s)\n", s_of(e->insp, "verdict"),
                    s_of(e->insp, "note") ? s_of(e->insp, "note") : "");
        } else {
            fprintf(f, "- state: not inspected (give --sql with the"
                    " sqlmigrate output)\n");
        }
        if (e->cls) {
            fprintf(f, "- class: **%s** (SQLSTATE %s): %s\n",
                    s_of(e->cls, "class"),
                    s_of(e->cls, "sqlstate") ? s_of(e->cls, "sqlstate")
                                             : "-",
                    s_of(e->cls, "reason") ? s_of(e->cls, "reason") : "");
        } else {
            fprintf(f, "- class: no traceback\n");
        }
        fprintf(f, "- path: not decided (diagnose needs --sql and the"
                " migration: --app/--migration or a failed run)\n\n");
    }

    /* which answer the squashes had: Django's lists or names */
    if (e->migs) {
        fprintf(f, "- squashes: this release: %s, previous release: %s"
                " (django: its replaces lists; names: guessed from"
                " N_squashed_M, give --manage / --previous-manage)\n\n",
                s_of(e->migs, "squash_source")
                ? s_of(e->migs, "squash_source") : "no plan",
                s_of(e->migs, "previous_squash_source")
                ? s_of(e->migs, "previous_squash_source") : "no plan");
    }

    /* maintenance */
    fprintf(f, "## Maintenance\n\n");
    if (e->state && json_object_size(e->state)) {
        migctl_iso_time(when, sizeof(when), 1000 * strtoll(
                        s_of(e->state, "since") ? s_of(e->state, "since")
                                                : "0", NULL, 10), 0);
        fprintf(f, "- scope %s: mode **%s**, epoch %s, since %s, by %s:"
                " %s\n", e->ctx->scope, s_of(e->state, "mode"),
                s_of(e->state, "epoch"), when,
                s_of(e->state, "actor") ? s_of(e->state, "actor") : "?",
                s_of(e->state, "reason") ? s_of(e->state, "reason") : "");
    } else if (e->state) {
        fprintf(f, "- scope %s: no state in Redis (off)\n", e->ctx->scope);
    } else {
        fprintf(f, "- Redis unreachable: state unknown\n");
    }
    fprintf(f, "- edges reporting: %d (maintenance.json)\n\n",
            e->edges ? (int) json_array_size(e->edges) : 0);

    /* locks */
    fprintf(f, "## Locks and indexes\n\n");
    if (e->locks) {
        fprintf(f, "- blocked sessions: %d, blocking: %d, long-running: %d,"
                " idle in transaction: %d\n",
                (int) json_array_size(json_object_get(e->locks, "blocked")),
                (int) json_array_size(json_object_get(e->locks, "blocking")),
                (int) json_array_size(json_object_get(e->locks,
                                                      "long_running")),
                (int) json_array_size(json_object_get(e->locks,
                                                    "idle_in_transaction")));
        fprintf(f, "- INVALID indexes:");
        k = 0;
        json_array_foreach(json_object_get(e->locks, "invalid_indexes"), j,
                           v)
        {
            fprintf(f, " %s.%s", s_of(v, "schema"), s_of(v, "index"));
            k++;
        }
        fprintf(f, "%s\n", k ? "" : " none");
        v = json_object_get(json_object_get(e->locks, "runner_lock"),
                            "holder");
        if (json_is_object(v)) {
            fprintf(f, "- runner lock HELD by pid %lld (%s)\n",
                    (long long) json_integer_value(json_object_get(v,
                                                                   "pid")),
                    s_of(v, "application"));
        } else {
            fprintf(f, "- runner lock: free\n");
        }
    } else {
        fprintf(f, "- not collected\n");
    }

    if (e->server) {
        v = json_object_get(e->server, "settings");
        fprintf(f, "- server: %s\n", s_of(e->server, "version"));
        fprintf(f, "- lock_timeout %s, statement_timeout %s,"
                " max_connections %s (%d connections now)\n",
                s_of(json_object_get(v, "lock_timeout"), "value"),
                s_of(json_object_get(v, "statement_timeout"), "value"),
                s_of(json_object_get(v, "max_connections"), "value"),
                (int) json_integer_value(json_object_get(e->server,
                                                         "connections")));
    }

    /* timeline: audit entries and runs, by time */
    fprintf(f, "\n## Timeline (UTC)\n\n");
    n = 0;
    json_array_foreach(e->audit, j, v) {
        if (n == EV_TIMELINE_MAX) {
            break;
        }
        migctl_iso_time(when, sizeof(when),
                        strtoll(s_of(v, "id") ? s_of(v, "id") : "0", NULL,
                                10), 1);
        items[n++] = json_pack("{s:s, s:s}", "t", when, "what", "");
        {
            char  *line;

            if (asprintf(&line, "audit %s/%s %s epoch %s by %s%s%s%s%s",
                         s_of(v, "scope") ? s_of(v, "scope") : "?",
                         s_of(v, "action") ? s_of(v, "action") : "?",
                         s_of(v, "result") ? s_of(v, "result") : "?",
                         s_of(v, "epoch") ? s_of(v, "epoch") : "?",
                         s_of(v, "actor") ? s_of(v, "actor") : "?",
                         s_of(v, "reason") && *s_of(v, "reason") ? ": " : "",
                         s_of(v, "reason") ? s_of(v, "reason") : "",
                         s_of(v, "status") ? ", " : "",
                         s_of(v, "status") ? s_of(v, "status") : "") >= 0)
            {
                json_object_set_new(items[n - 1], "what",
                                    json_string(line));
                free(line);
            }
        }
    }
    json_array_foreach(e->runs, j, v) {
        if (n + 2 > EV_TIMELINE_MAX || s_of(v, "started") == NULL) {
            continue;
        }
        items[n++] = json_pack("{s:s, s:s}", "t", s_of(v, "started"),
                               "what", "run started");
        {
            char  *line;

            if (asprintf(&line, "run %s started: %s", s_of(v, "id"),
                         s_of(v, "command") ? s_of(v, "command") : "")
                >= 0)
            {
                json_object_set_new(items[n - 1], "what",
                                    json_string(line));
                free(line);
            }
            if (s_of(v, "ended")
                && asprintf(&line, "run %s ended: %s", s_of(v, "id"),
                            s_of(v, "result") ? s_of(v, "result") : "?")
                   >= 0)
            {
                items[n++] = json_pack("{s:s, s:s}", "t", s_of(v, "ended"),
                                       "what", line);
                free(line);
            }
        }
    }

    qsort(items, (size_t) n, sizeof(json_t *), by_time);

    for (k = 0; k < (size_t) n; k++) {
        fprintf(f, "- %s %s\n", s_of(items[k], "t"),
                s_of(items[k], "what"));
        json_decref(items[k]);
    }
    if (n == 0) {
        fprintf(f, "(no audit entry and no run)\n");
    }

    /* missing parts */
    if (json_array_size(e->missing)) {
        fprintf(f, "\n## Not collected\n\n");
        json_array_foreach(e->missing, j, v) {
            fprintf(f, "- %s: %s\n", s_of(v, "part"), s_of(v, "why"));
        }
    }

    fprintf(f, "\n## Files\n\n"
            "- `version.txt`: migctl, host, configuration\n"
            "- `server.json`: PostgreSQL version and the settings that"
            " decide how DDL waits\n"
            "- `django_migrations.tsv`: the last " EV_MIGRATIONS_TAIL
            " recorded migrations\n"
            "- `migrations.json`: applied, pending, unknown (with the"
            " plans given)\n"
            "- `locks.json`: blocked, blocking, idle sessions, INVALID"
            " indexes, runner lock\n"
            "- `inspect.json`, `schema.txt`: the objects of the SQL file"
            " and their tables in the catalog\n"
            "- `classify.json`, `diagnose.json`: class and path\n"
            "- `maintenance.json`: state, edges, audit tail\n"
            "- `runs/`: the last runs (command, env names, output.log,"
            " result.json, plan.txt, django_migrations before/after)\n"
            "- `inputs/`: the files given\n");

    if (fclose(f) != 0) {
        free(t);
        return NULL;
    }

    *outlen = len;

    return t;
}
