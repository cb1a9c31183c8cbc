#!/usr/bin/env bash
# The Rinha de Backend 2025 test on this machine, natively: the processor
# simulators, one `reroute serve` on the embedded store, and `reroute bench
# rinha` against them. Prints the score and the router's CPU time and peak
# memory; everything it started is stopped when it ends (or is interrupted).
#
#   scripts/rinha-local.sh [extra `reroute bench rinha` flags, e.g. --duration 20s]
#
# Env: REROUTE_BIN (a prebuilt binary; default: build target/release/reroute),
# OUT (result JSON, default target/rinha-result.json), KEEP_DB=1 keeps the
# database in target/rinha-local/.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${REROUTE_BIN:-target/release/reroute}
[ -n "${REROUTE_BIN:-}" ] || cargo build --release --quiet --bin reroute
work=target/rinha-local
out=${OUT:-target/rinha-result.json}
rm -rf "$work" && mkdir -p "$work"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${KEEP_DB:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

. scripts/lib.sh # wait_for

RUST_LOG=warn "$bin" sim >"$work/sim.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin" serve --store "" --db "$work/reroute.db" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
wait_for "http://127.0.0.1:8001/payments/00000000-0000-4000-8000-000000000000"
wait_for "http://127.0.0.1:8002/payments/00000000-0000-4000-8000-000000000000"
wait_for "http://127.0.0.1:9999/payments-summary"

"$bin" bench rinha --out "$out" "$@"

ticks=$(getconf CLK_TCK)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$serve_pid/stat")
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
echo "reroute serve: CPU $(( (utime + stime) * 1000 / ticks )) ms, peak RSS $(( peak_kb / 1024 )) MB"
echo "result: $out"
