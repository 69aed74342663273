#!/usr/bin/env bash
# demo.sh: an incident, end to end, on a local stack (make demo).  Starts
# Redis, PostgreSQL and nginx on loopback ports in a temp dir, and stops them.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIGCTL=$ROOT/build/migctl
MODULE=$ROOT/build/ngx_http_maintenance_module.so
PY=/usr/bin/python3                    # Debian's Django lives here
DEMO=$(mktemp -d /tmp/migctl-demo-XXXXXX)
chmod 755 "$DEMO"
PIDS=()

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# prints the command as it can be pasted (quoted, migctl by its name when
# it is on PATH through env.sh), then runs it
show() {
    local a out=
    for a in "$@"; do
        [ "$a" = "$MIGCTL" ] && a=migctl
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            out+="$a "
        else
            out+="'${a//\'/\'\\\'\'}' "
        fi
    done
    printf '\033[36m$ %s\033[0m\n' "${out% }"
    "$@"
}
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>0,Listen=>1)->sockport'
}
wait_until() {     # wait_until SECONDS CMD...: poll, bounded
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || { echo "demo: timed out: $*" >&2; return 1; }
        sleep 0.05
    done
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    set +e
    if [ -n "${KEEP:-}" ] && [ -f "$DEMO/env.sh" ]; then
        keep_notice
        return
    fi
    [ -f "$DEMO/nginx/nginx.pid" ] && kill "$(cat "$DEMO/nginx/nginx.pid")"
    [ -f "$DEMO/pg/postmaster.pid" ] && kill -INT "$(head -1 "$DEMO/pg/postmaster.pid")"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$DEMO"
}
trap cleanup EXIT

# KEEP=1: the stack stays up; env.sh points migctl, psql and redis-cli at
# it and stop.sh stops it
keep_notice() {
    cat > "$DEMO/stop.sh" <<STOP
#!/usr/bin/env bash
# stops the demo stack of $DEMO and removes it
kill \$(cat "$DEMO/nginx/nginx.pid") 2>/dev/null
if [ "\$(id -u)" = 0 ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DEMO/pg" -m fast stop
else
    "$PGBIN/pg_ctl" -D "$DEMO/pg" -m fast stop
fi
kill ${PIDS[*]} 2>/dev/null
rm -rf "$DEMO"
STOP
    chmod +x "$DEMO/stop.sh"
    say "KEEP=1: the stack is still up"
    echo "  . $DEMO/env.sh      # migctl, psql, redis-cli and curl at this stack"
    echo "  migctl maintenance status"
    echo "  curl -s http://127.0.0.1:$HTTP_PORT/   curl -sk https://127.0.0.1:$TLS_PORT/"
    echo "  $DEMO/stop.sh       # stops Redis, PostgreSQL and nginx, removes $DEMO"
}

for bin in redis-server nginx psql openssl curl; do
    command -v $bin >/dev/null || {
        echo "demo: $bin is missing: run 'bash .ci/run' or apt-get install the packages listed in .ci/run" >&2
        exit 2; }
done

REDIS_PORT=$(free_port); HTTP_PORT=$(free_port); TLS_PORT=$(free_port)
APP_PORT=$(free_port); HEALTH_PORT=$(free_port); PG_PORT=$(free_port)

say "Starting Redis :$REDIS_PORT, PostgreSQL :$PG_PORT, nginx :$HTTP_PORT (HTTP) :$TLS_PORT (TLS)"
mkdir -p "$DEMO/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$DEMO/redis" \
    --logfile "$DEMO/redis/redis.log" & PIDS+=($!)
REDIS_PID=$!
exec 3>&2          # wait_until silences the check: its verdict goes to fd 3
redis_ours() {     # our redis-server answers on the port, not another's
    case $(ps -o stat= -p "$REDIS_PID") in    # exited: gone, or a zombie
        ''|Z*) echo "demo: redis-server exited: see $DEMO/redis/redis.log" >&3
               exit 1 ;;
    esac
    redis-cli -p "$REDIS_PORT" info server | grep -q "^process_id:$REDIS_PID"
}
wait_until 10 redis_ours

mkdir -p "$DEMO/pg"
[ "$(id -u)" = 0 ] && chown postgres "$DEMO/pg"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg "$PGBIN/initdb" -D "$DEMO/pg" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DEMO/pg" -l "$DEMO/pg/log" -w -o \
    "-p $PG_PORT -k $DEMO/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=shop
psql -d postgres -qc 'CREATE DATABASE shop'

mkdir -p "$DEMO/nginx"; chmod 777 "$DEMO/nginx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$DEMO/nginx/tls.key" -out "$DEMO/nginx/tls.crt" -days 2 \
    -subj /CN=localhost 2>/dev/null
head -c 24 /dev/urandom | base64 > "$DEMO/nginx/bypass.token"
cat > "$DEMO/nginx/nginx.conf" <<CONF
load_module $MODULE;
pid $DEMO/nginx/nginx.pid;
error_log $DEMO/nginx/error.log info;
worker_processes 2;
events { worker_connections 256; }
http {
    access_log off;
    maintenance_redis 127.0.0.1:$REDIS_PORT;
    maintenance_poll 1s;
    maintenance_node_id demo-edge-1;
    maintenance_state_file $DEMO/nginx/state;
    maintenance on;
    maintenance_bypass_token $DEMO/nginx/bypass.token;

    server {                                  # plain HTTP
        listen 127.0.0.1:$HTTP_PORT;
        server_name shop.example;
        location / { proxy_pass http://127.0.0.1:$APP_PORT; }
    }
    server {                                  # TLS
        listen 127.0.0.1:$TLS_PORT ssl;
        server_name shop.example;
        ssl_certificate $DEMO/nginx/tls.crt;
        ssl_certificate_key $DEMO/nginx/tls.key;
        location / { proxy_pass http://127.0.0.1:$APP_PORT; }
    }
    server {                                  # the "application"
        listen 127.0.0.1:$APP_PORT;
        maintenance off;
        location / { return 200 "the shop app answers\n"; }
    }
    server {                                  # for the load balancer
        listen 127.0.0.1:$HEALTH_PORT;
        maintenance off;
        location = /health { maintenance_health; }
        location = /status { maintenance_status; }
    }
}
CONF
nginx -p "$DEMO/nginx/" -c "$DEMO/nginx/nginx.conf" -e "$DEMO/nginx/error.log"
wait_until 10 curl -s "http://127.0.0.1:$HTTP_PORT/"

cat > "$DEMO/migctl.conf" <<CONF
redis = { host = "127.0.0.1"; port = $REDIS_PORT; timeout_ms = 2000; };
prefix = "migctl";
runs = { dir = "$DEMO/runs"; };
evidence = { secret_files = [ "$DEMO/nginx/bypass.token" ]; };
health = {
    checks = (
        { name = "app-through-tls-edge"; type = "http";
          url = "https://localhost:$TLS_PORT/";
          ca_file = "$DEMO/nginx/tls.crt";
          bypass_token_file = "$DEMO/nginx/bypass.token";
          expect_body = "the shop app answers"; timeout_ms = 5000; },
        { name = "edges"; type = "edges"; },
        { name = "migrations"; type = "migrations";
          plan = "$DEMO/current.plan"; },
        { name = "invalid-indexes"; type = "invalid_indexes"; }
    );
};
CONF
export MIGCTL_CONFIG=$DEMO/migctl.conf MIGCTL_ACTOR=demo-operator
cat > "$DEMO/env.sh" <<ENV
export PATH=$ROOT/build:\$PATH MIGCTL_CONFIG=$DEMO/migctl.conf MIGCTL_ACTOR=\$USER
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=shop
export REDISCLI_PORT=$REDIS_PORT
alias redis-cli="redis-cli -p $REDIS_PORT"
ENV

both() {
    printf '  http  -> '; curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$HTTP_PORT/"
    printf '  https -> '; curl -sk -o /dev/null -w '%{http_code}\n' "https://127.0.0.1:$TLS_PORT/"
}

say "Before the deploy: both vhosts reach the app"
both

DJ="$PY $ROOT/t/django/manage.py"
$DJ migrate --noinput dupes 0001 >/dev/null          # what the previous release had
psql -qc "INSERT INTO dupes_customer (email) VALUES ('ann@example.com'), ('bob@example.com'), ('ann@example.com')"
$DJ showmigrations --plan dupes | grep -v '0002_email_unique' > "$DEMO/previous.plan"
$DJ showmigrations --plan dupes > "$DEMO/current.plan"   # the release's plan, kept by the deploy

say "Release abc123 deploys: the migration step runs under migctl run, and fails"
set +e
show "$MIGCTL" run --maintenance-on-failure --diagnose --lock-timeout 5s \
    --plan-cmd "cat $DEMO/previous.plan" -- $DJ migrate --noinput dupes
echo "  (exit $?: the site went into maintenance before migctl returned)"
set -e

say "Contained: every edge, HTTP and TLS, before anyone touches the database"
both
show curl -s -D - -o /dev/null "http://127.0.0.1:$HTTP_PORT/"
show curl -s -H "Accept: application/json" "https://127.0.0.1:$TLS_PORT/" -k
echo
printf '  with the bypass token -> '
curl -sk -H "X-Maintenance-Bypass: $(cat "$DEMO/nginx/bypass.token")" "https://127.0.0.1:$TLS_PORT/"
show "$MIGCTL" maintenance status

say "Find the real state of the database"
RUN=$(ls -d "$DEMO"/runs/*/ | tail -1)
$DJ sqlmigrate dupes 0002_email_unique > "$DEMO/0002.sql"
show "$MIGCTL" migrations --plan "$DEMO/current.plan" --previous-plan "$DEMO/previous.plan" || true
show "$MIGCTL" locks || true
show "$MIGCTL" inspect --sql "$DEMO/0002.sql" --app dupes --migration 0002_email_unique || true

say "Classify the failure and get the recommended path"
show "$MIGCTL" classify "${RUN}output.log" || true
show "$MIGCTL" diagnose --app dupes --migration 0002_email_unique --sql "$DEMO/0002.sql" \
    --traceback "${RUN}output.log" --plan "$DEMO/current.plan" \
    --previous-plan "${RUN}plan.txt" || true

say "The safety gate: health fails, so maintenance off is refused"
set +e
show "$MIGCTL" health
show "$MIGCTL" maintenance off
echo "  (exit $?)"
set -e
both

say "Fix forward: resolve the duplicates, then the migration step again"
show psql -c "DELETE FROM dupes_customer a USING dupes_customer b WHERE a.email = b.email AND a.id > b.id"
show "$MIGCTL" run --lock-timeout 5s -- $DJ migrate --noinput dupes
show "$MIGCTL" inspect --sql "$DEMO/0002.sql" --app dupes --migration 0002_email_unique
show "$MIGCTL" health

say "Reopen: maintenance off (health checks first)"
show "$MIGCTL" maintenance off --wait 5
both

say "The evidence for the post-mortem (secrets redacted)"
show "$MIGCTL" evidence --out "$DEMO/evidence" --sql "$DEMO/0002.sql" \
    --plan "$DEMO/current.plan"
sed -n '1,12p' "$DEMO/evidence/summary.md"
printf '\033[36m$ curl -s http://127.0.0.1:%s/status?format=prometheus | grep -v "^#"\033[0m\n' "$HEALTH_PORT"
curl -s "http://127.0.0.1:$HEALTH_PORT/status?format=prometheus" | grep -v "^#"

[ -n "${KEEP:-}" ] || say "Done: the stack is stopped and $DEMO removed (KEEP=1 keeps it)"
