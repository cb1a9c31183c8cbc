#!/usr/bin/env bash
# The Rinha de Backend 2025 topology, natively on this machine: nginx (from
# Debian, installed by scripts/need-nginx.sh when missing) on 127.0.0.1:9999,
# against `reroute sim` on 8001/8002 (or processors already running: SIM=off).
# STORE=embedded (the shipped shape): nginx -> two `reroute edge` processes ->
# one `reroute serve` core with the embedded store, all over unix sockets in
# WORK. STORE=postgres (the default here): nginx -> two full `reroute serve`
# instances sharing one PostgreSQL, over TCP.
#
#   scripts/rinha-topology.sh bench [reroute bench rinha flags]   # start, run the test, stop
#   scripts/rinha-topology.sh start | stop                         # leave it running / stop it
#
# Env: REROUTE_BIN (a prebuilt binary), STORE (postgres | embedded), DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/reroute_rinha; the database is
# created if missing), INSTANCES (default 2: instances, or edges when
# embedded), LB_PORT (default 9999), BASE_PORT (default 9100: instance i
# listens on BASE_PORT+i; the embedded core on BASE_PORT+1), SIM (on, the
# default; off: start no simulator and use the processors at
# PROCESSOR_DEFAULT_URL and PROCESSOR_FALLBACK_URL, default
# http://127.0.0.1:8001 and :8002), DURABILITY (stable | os; unset: the
# binary's default), ACCEPT_TABLE (embedded: on, the default at
# DURABILITY=os, the edges accept payments in the core's accept table; at
# `stable` too when asked, each 2xx then after its slot's sync; off, the
# default at `stable`, every payment goes to the core), TABLE_PATH (the
# table's file, removed at every start with the store; default
# /dev/shm/reroute-topology-LB_PORT.accepts at `os`, WORK/core.db.accepts at
# `stable`), CORE_THREADS (the embedded core's runtime threads,
# default 1), WORK (work
# directory: pids, logs, nginx config; default target/rinha-topology), OUT
# (result JSON); relative paths are from the repository root. `bench` saves
# each instance's /metrics (the core's when embedded) in WORK before stopping. SCENARIO
# (preview, the default, or final: the simulator at the final's fees 0.07 /
# 0.10, and `bench rinha --scenario final`). SERVE_ARGS: more flags for every
# `reroute serve`. DB_DELAY_MS (postgres only; e.g. 0.5): the instances reach
# PostgreSQL through `reroute bench relay` on BASE_PORT+50, which delays
# every byte that much each way, as if the database were on another host.
# SPILL_WAIT_MS (default 1500, as the compose files; empty:
# not passed). SERVE_BIN: another binary for the instances only (to compare
# builds under the same bench and simulator). KILL_AFTER=N
# (bench only): N seconds into the bench, SIGKILL api1 (the core when
# embedded) and start it again at once with the same command line.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${WORK:-target/rinha-topology}
case "$work" in /*) ;; *) work=$PWD/$work ;; esac
bin=${REROUTE_BIN:-target/release/reroute}
serve_bin=${SERVE_BIN:-$bin}
db=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/reroute_rinha}
instances=${INSTANCES:-2}
store=${STORE:-postgres}
case "$store" in postgres | embedded) ;; *) echo "STORE must be postgres or embedded" >&2; exit 2 ;; esac
lb_port=${LB_PORT:-9999}
base_port=${BASE_PORT:-9100}
kill_after=${KILL_AFTER:-}
scenario=${SCENARIO:-preview}
case "$scenario" in
preview) fees=() ;;
final) fees=(--default-fee 0.07 --fallback-fee 0.10) ;;
*) echo "SCENARIO must be preview or final" >&2; exit 2 ;;
esac
read -r -a serve_args <<<"${SERVE_ARGS:-}"
# --spill-wait-ms as the compose files set it; SPILL_WAIT_MS= (empty) leaves it
# out (a binary older than the flag).
spill=()
[ -z "${SPILL_WAIT_MS-1500}" ] || spill=(--spill-wait-ms "${SPILL_WAIT_MS-1500}")
case "$kill_after" in "" | [0-9]*) ;; *) echo "KILL_AFTER must be a number of seconds" >&2; exit 2 ;; esac
sim=${SIM:-on}
case "$sim" in on | off) ;; *) echo "SIM must be on or off" >&2; exit 2 ;; esac
default_url=${PROCESSOR_DEFAULT_URL:-http://127.0.0.1:8001}
fallback_url=${PROCESSOR_FALLBACK_URL:-http://127.0.0.1:8002}
[ -z "${DURABILITY:-}" ] || serve_args+=(--durability "$DURABILITY")
if [ "${DURABILITY:-}" = os ]; then accept_table=${ACCEPT_TABLE:-on}; else accept_table=${ACCEPT_TABLE:-off}; fi
case "$accept_table" in on | off) ;; *) echo "ACCEPT_TABLE must be on or off" >&2; exit 2 ;; esac
db_delay=${DB_DELAY_MS:-}
# The accept table: at `os` on a memory filesystem where there is one (the
# same promise, and no page fault per page after each writeback:
# docs/operations.md, "Edges in front of one core"), else beside the store.
if [ -z "${TABLE_PATH:-}" ] && [ "${DURABILITY:-}" = os ] && [ -d /dev/shm ]; then
    table_path=/dev/shm/reroute-topology-$lb_port.accepts
else
    table_path=${TABLE_PATH:-$work/core.db.accepts}
fi

. scripts/lib.sh # wait_for

stop() {
    if [ -f "$work/pids" ]; then
        local pids; pids=$(cat "$work/pids")
        for pid in $pids; do kill "$pid" 2>/dev/null || true; done
        # Until they are gone (a core drains for up to 10 s): the next start
        # would find the store still locked by the old core.
        for _ in $(seq 1 300); do
            local alive=0
            # Gone, or a zombie (this shell started it and has not reaped it).
            for pid in $pids; do
                [ -r "/proc/$pid/stat" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && alive=1
            done
            [ "$alive" = 1 ] || break
            sleep 0.05
        done
        rm -f "$work/pids"
    fi
    # Not left in memory once nothing runs (a disk's goes with the store):
    # the one the start used, whatever this stop's environment says.
    if [ -f "$work/table" ]; then
        local used; used=$(cat "$work/table")
        case "$used" in /dev/shm/*) rm -f "$used" "$used".owner* ;; esac
        rm -f "$work/table"
    fi
    if [ -f "$work/nginx.pid" ]; then
        kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    fi
}

start() {
    bash scripts/need-nginx.sh
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
        rm -f "$work"/api*.db* "$work"/core.db*
    fi

    if [ "$sim" = on ]; then
        RUST_LOG=warn "$bin" sim "${fees[@]}" >"$work/sim.log" 2>&1 &
        echo $! >>"$work/pids"
    fi
    local processors=(--default-url "$default_url" --fallback-url "$fallback_url")
    local upstreams="" ready=()
    if [ "$store" = embedded ]; then
        # One core: the store, workers and probes; HTTP on a unix socket for
        # the edges' other requests, and on a port for readiness checks.
        local port=$((base_port + 1)) table=()
        # Removed with the store at every start.
        rm -f "$table_path" "$table_path".owner*
        if [ "$accept_table" = on ]; then
            table=(--accept-table "$table_path")
            echo "$table_path" >"$work/table"
        fi
        # One runtime thread: on a 2-core machine a second one costs more in
        # wake-ups than it gives. One malloc arena (glibc): ~4 MB less peak
        # RSS at the same CPU (BENCHMARKS.md).
        MALLOC_ARENA_MAX=1 TOKIO_WORKER_THREADS=${CORE_THREADS:-1} RUST_LOG=warn "$serve_bin" serve --host 127.0.0.1 --port "$port" --db "$work/core.db" --store "" \
            --unix-socket "$work/core-http.sock" --edge-socket "$work/core.sock" \
            --instance core "${table[@]}" "${processors[@]}" "${spill[@]}" "${serve_args[@]}" >"$work/core.log" 2>&1 &
        echo $! >>"$work/pids"
        echo $! >"$work/api1.pid"
        ready+=("http://127.0.0.1:$port/readyz")
        for i in $(seq 1 "$instances"); do
            RUST_LOG=warn "$serve_bin" edge --unix-socket "$work/edge$i.sock" \
                --core-socket "$work/core.sock" --core-http-socket "$work/core-http.sock" \
                >"$work/edge$i.log" 2>&1 &
            echo $! >>"$work/pids"
            upstreams+="        server unix:$work/edge$i.sock max_fails=0;"$'\n'
        done
    else
        local store_url=$db
        if [ -n "$db_delay" ]; then
            # host:port of the database, then the same URL through the relay.
            local target relay_port=$((base_port + 50))
            target=$(echo "$db" | sed -E 's#^[a-z]+://([^@/]*@)?([^/]+)/.*#\2#')
            "$bin" bench relay --listen "127.0.0.1:$relay_port" --to "$target" \
                --delay-ms "$db_delay" >"$work/relay.log" 2>&1 &
            echo $! >>"$work/pids"
            store_url=${db/$target/127.0.0.1:$relay_port}
        fi
        for i in $(seq 1 "$instances"); do
            local port=$((base_port + i))
            RUST_LOG=warn "$serve_bin" serve --host 127.0.0.1 --port "$port" --store "$store_url" \
                --instance "api$i" "${processors[@]}" "${spill[@]}" "${serve_args[@]}" >"$work/api$i.log" 2>&1 &
            echo $! >>"$work/pids"
            echo $! >"$work/api$i.pid"
            upstreams+="        server 127.0.0.1:$port max_fails=0;"$'\n'
            ready+=("http://127.0.0.1:$port/readyz")
        done
    fi
    cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx-body;
    proxy_temp_path $work/nginx-proxy;
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
    /usr/sbin/nginx -c "$work/nginx.conf" -p "$work"
    wait_for "$default_url/payments/00000000-0000-4000-8000-000000000000"
    for url in "${ready[@]}"; do wait_for "$url"; done
    for i in $(seq 1 "$instances"); do
        [ "$store" = postgres ] || wait_for_socket "$work/edge$i.sock"
    done
    wait_for "http://127.0.0.1:$lb_port/readyz"
    local shape="$instances instances on $db"
    [ -z "$db_delay" ] || shape+=" (through a relay adding $db_delay ms each way)"
    [ "$store" = postgres ] || shape="$instances edges -> one core on $work/core.db (unix sockets)"
    local processors_at="sim :8001/:8002"
    [ "$sim" = on ] || processors_at="processors at $default_url, $fallback_url"
    echo "topology up: nginx :$lb_port -> $shape; $processors_at"
}

kill_api1() { # SIGKILL api1 (the core) and start it again at once, same command line and env
    local old new cmd started
    old=$(cat "$work/api1.pid")
    mapfile -d '' -t cmd <"/proc/$old/cmdline"
    started=$(date +%s%N)
    kill -KILL "$old"
    RUST_LOG=warn "${cmd[@]}" >>"$work/api1.log" 2>&1 </dev/null &
    new=$!
    echo "$new" >"$work/api1.pid"
    sed -i "s/^$old\$/$new/" "$work/pids"
    echo "KILL_AFTER: killed api1 (pid $old) with SIGKILL ${kill_after}s into the bench; restarted it (pid $new)"
    if wait_for "http://127.0.0.1:$((base_port + 1))/readyz" 2>/dev/null; then
        echo "KILL_AFTER: api1 ready again $((($(date +%s%N) - started) / 1000000)) ms after the kill"
    else
        echo "KILL_AFTER: api1 not ready again 15 s after the kill" >&2
    fi
}

killer=""
stop_killer() { # the pending KILL_AFTER, if the bench ended first
    [ -n "$killer" ] || return 0
    kill "$killer" 2>/dev/null || true
    wait "$killer" 2>/dev/null || true
    killer=""
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

scrape() { # each instance's (or the core's) /metrics into WORK, before they stop
    local n=$instances
    [ "$store" = postgres ] || n=1
    for i in $(seq 1 "$n"); do
        curl -s --max-time 5 "http://127.0.0.1:$((base_port + i))/metrics" >"$work/metrics$i.txt" || true
    done
    echo "metrics of each instance in $work/metrics*.txt"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    bench)
        shift
        trap 'stop_killer; stop' EXIT INT TERM
        start
        if [ -n "$kill_after" ]; then
            (
                trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
                sleep "$kill_after" &
                sleeper=$!
                wait "$sleeper"
                trap '' TERM # once started, the restart completes
                kill_api1
            ) &
            killer=$!
        fi
        "$bin" bench rinha --scenario "$scenario" --backend "http://127.0.0.1:$lb_port" \
            --default "$default_url" --fallback "$fallback_url" --out "${OUT:-target/rinha-topology-result.json}" "$@"
        stop_killer
        scrape
        report
        ;;
    *) sed -n 2,35p "$0"; exit 2 ;;
esac
