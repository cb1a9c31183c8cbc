#!/usr/bin/env bash
# The Rinha de Backend 2025 topology, natively on this machine: nginx (from
# Debian) on 127.0.0.1:9999 in front of two `reroute serve` instances, against
# `reroute sim` on 8001/8002. The instances share one PostgreSQL (STORE=postgres,
# the default), or each keeps its own embedded store and asks the others for
# their part of the summary (STORE=embedded: --peer; only api1 probes).
#
#   scripts/rinha-topology.sh bench [reroute bench rinha flags]   # start, run the test, stop
#   scripts/rinha-topology.sh start | stop                         # leave it running / stop it
#
# Env: REROUTE_BIN (a prebuilt binary), STORE (postgres | embedded), DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/reroute_rinha; the database is
# created if missing), INSTANCES (default 2), LB_PORT (default 9999), OUT
# (result JSON).
set -euo pipefail
cd "$(dirname "$0")/.."

work=target/rinha-topology
bin=${REROUTE_BIN:-target/release/reroute}
db=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/reroute_rinha}
instances=${INSTANCES:-2}
store=${STORE:-postgres}
case "$store" in postgres | embedded) ;; *) echo "STORE must be postgres or embedded" >&2; exit 2 ;; esac
lb_port=${LB_PORT:-9999}

need_nginx() {
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] && return 0
    echo "installing nginx (Debian package nginx-light)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null
}

wait_for() { # url
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    echo "not answering: $1" >&2
    return 1
}

stop() {
    if [ -f "$work/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
        rm -f "$work/pids"
    fi
    if [ -f "$work/nginx.pid" ]; then
        kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    fi
}

start() {
    need_nginx
    [ -n "${REROUTE_BIN:-}" ] || cargo build --release --quiet --bin reroute
    stop
    mkdir -p "$work"
    : >"$work/pids"
    if [ "$store" = postgres ]; then
        # The database, if missing (psql talks to the server in DATABASE_URL).
        local base=${db%/*} name=${db##*/}
        psql "$base/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1 \
            || psql "$base/postgres" -qc "CREATE DATABASE $name" >/dev/null
    else
        rm -f "$work"/api*.db*
    fi

    RUST_LOG=warn "$bin" sim >"$work/sim.log" 2>&1 &
    echo $! >>"$work/pids"
    local upstreams=""
    for i in $(seq 1 "$instances"); do
        local port=$((9100 + i))
        local storage=(--store "$db")
        if [ "$store" = embedded ]; then
            storage=(--store "" --db "$work/api$i.db")
            for j in $(seq 1 "$instances"); do
                [ "$j" = "$i" ] || storage+=(--peer "http://127.0.0.1:$((9100 + j))")
            done
            [ "$i" = 1 ] || storage+=(--probes false)
        fi
        RUST_LOG=warn "$bin" serve --host 127.0.0.1 --port "$port" "${storage[@]}" \
            --instance "api$i" >"$work/api$i.log" 2>&1 &
        echo $! >>"$work/pids"
        upstreams+="        server 127.0.0.1:$port;"$'\n'
    done
    cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $PWD/$work/nginx.pid;
error_log $PWD/$work/nginx.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $PWD/$work/nginx-body;
    proxy_temp_path $PWD/$work/nginx-proxy;
    upstream reroute {
$upstreams        keepalive 256;
    }
    server {
        listen 127.0.0.1:$lb_port reuseport;
        location / {
            proxy_pass http://reroute;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
        }
    }
}
CONF
    /usr/sbin/nginx -c "$PWD/$work/nginx.conf" -p "$PWD/$work"
    wait_for "http://127.0.0.1:8001/payments/00000000-0000-4000-8000-000000000000"
    for i in $(seq 1 "$instances"); do wait_for "http://127.0.0.1:$((9100 + i))/readyz"; done
    wait_for "http://127.0.0.1:$lb_port/readyz"
    local on=$db
    [ "$store" = postgres ] || on="their own embedded stores"
    echo "topology up: nginx :$lb_port -> $instances instances on $on; sim :8001/:8002"
}

report() { # CPU and peak memory of every process of the topology
    local ticks; ticks=$(getconf CLK_TCK)
    local pids; pids=$(cat "$work/pids"; cat "$work/nginx.pid"; pgrep -P "$(cat "$work/nginx.pid")" || true)
    for pid in $pids; do
        [ -r "/proc/$pid/stat" ] || continue
        read -r utime stime < <(awk '{print $14, $15}' "/proc/$pid/stat")
        local rss; rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
        printf '%-40s CPU %6d ms  peak RSS %4d MB\n' "$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-40)" \
            $(((utime + stime) * 1000 / ticks)) $((rss / 1024))
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    bench)
        shift
        trap stop EXIT INT TERM
        start
        "$bin" bench rinha --backend "http://127.0.0.1:$lb_port" --out "${OUT:-target/rinha-topology-result.json}" "$@"
        report
        ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
esac
