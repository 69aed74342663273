#!/usr/bin/env bash
# release-step.sh: the migration step of a Django release, done the safer
# way with migctl.  Run it from the deploy job, once per release, with the
# new release's code on disk and the old one still serving:
#
#   1. the plan of the release being replaced is kept: it is what
#      "migctl diagnose --previous-plan" needs to tell whether rolling the
#      code back is safe;
#   2. the migrations run once, as their own step, under "migctl run": a
#      single runner, lock_timeout for the DDL, retries of a lock timeout
#      only.  On failure the maintenance flag goes on, the diagnose command
#      and an evidence bundle are printed, and the step fails;
#   3. on success: restart web, then workers, then "migctl health"; when
#      the site is in maintenance it reopens only through "maintenance off
#      --wait" (health first); the new plan becomes the next release's
#      previous plan.
#
# Environment (MANAGE is required):
#   MANAGE           manage.py of the NEW release, e.g.
#                    "/usr/bin/python3 /srv/app/releases/abc123/manage.py"
#   PREVIOUS_MANAGE  manage.py of the release still serving (optional: else
#                    the plan kept by the last successful run of this step)
#   STATE_DIR        plans and evidence between releases
#                    (default /var/lib/migctl/release)
#   MIGCTL           migctl (default: migctl on PATH); its configuration
#                    from MIGCTL_CONFIG or /etc/migctl/migctl.conf
#   LOCK_TIMEOUT     lock_timeout of the migration's DDL (default 5s)
#   RETRIES          lock-timeout retries on an unchanged database (3)
#   RESTART_WEB      command that restarts the web processes (optional)
#   RESTART_WORKERS  command that restarts the workers (optional)
#
# Exit: 0 released; migctl's code otherwise (4 another runner holds the
# lock, 5 the migration failed: maintenance is on), 1 health failed.
set -uo pipefail

: "${MANAGE:?set MANAGE to manage.py of the new release (see the header)}"
STATE_DIR=${STATE_DIR:-/var/lib/migctl/release}
MIGCTL=${MIGCTL:-migctl}
LOCK_TIMEOUT=${LOCK_TIMEOUT:-5s}
RETRIES=${RETRIES:-3}

say() { printf 'release-step: %s\n' "$*"; }

mkdir -p "$STATE_DIR" && chmod 0700 "$STATE_DIR" || exit 2
prev=$STATE_DIR/previous.plan
cur=$STATE_DIR/current.plan

# 1. the plans: the new release's (pending migrations show as [ ]) and the
#    one of the release still serving
if ! $MANAGE showmigrations --plan > "$cur.tmp"; then
    say "cannot read the new release's migration plan: nothing was run"
    exit 2
fi
mv -f "$cur.tmp" "$cur"

if [ -n "${PREVIOUS_MANAGE:-}" ]; then
    plan_cmd="$PREVIOUS_MANAGE showmigrations --plan"
elif [ -f "$prev" ]; then
    plan_cmd="cat $(printf '%q' "$prev")"
else
    plan_cmd=
    say "no previous plan yet (first release with this step): diagnose" \
        "will not know whether a rollback is safe"
fi

# 2. the migrations, once
$MIGCTL run --maintenance-on-failure --diagnose \
    --lock-timeout "$LOCK_TIMEOUT" --retries "$RETRIES" \
    ${plan_cmd:+--plan-cmd "$plan_cmd"} \
    -- $MANAGE migrate --noinput
rc=$?

if [ $rc -ne 0 ]; then
    case $rc in
    4) say "another migration runner holds the lock: nothing was run" ;;
    5) say "the migration failed: maintenance is ON; follow the diagnose" \
           "above, then re-run this step" ;;
    *) say "migctl run failed (exit $rc)" ;;
    esac
    if [ $rc -eq 5 ]; then
        ev=$STATE_DIR/evidence-$(date -u +%Y%m%dT%H%M%SZ)
        $MIGCTL evidence --out "$ev" --plan "$cur" \
            ${plan_cmd:+--previous-plan "$prev"} >/dev/null
        say "evidence: $ev (summary.md first)"
    fi
    exit $rc
fi

# 3. the new code everywhere, then health, then reopen
if [ -n "${RESTART_WEB:-}" ]; then
    say "restarting web: $RESTART_WEB"
    sh -c "$RESTART_WEB" || { say "web restart failed"; exit 1; }
fi
if [ -n "${RESTART_WORKERS:-}" ]; then
    say "restarting workers: $RESTART_WORKERS"
    sh -c "$RESTART_WORKERS" || { say "worker restart failed"; exit 1; }
fi

if ! $MIGCTL health; then
    say "health checks fail after the release: maintenance unchanged"
    exit 1
fi

mode=$($MIGCTL --json maintenance status 2>/dev/null \
       | sed -n 's/^  "mode": "\([a-z]*\)",$/\1/p')
if [ "$mode" = on ]; then
    $MIGCTL maintenance off --wait || exit $?
fi

$MANAGE showmigrations --plan > "$prev.tmp" && mv -f "$prev.tmp" "$prev"
say "released: migrations applied, health passes, site open"
