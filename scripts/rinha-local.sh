#!/usr/bin/env bash
# The Rinha de Backend 2025 test on this machine, natively: the processor
# simulators, one `reroute serve` on the embedded store, and `reroute bench
# rinha` against them. Prints the score and the router's CPU time and peak
# memory; everything it started is stopped when it ends (or is interrupted).
#
#   scripts/rinha-local.sh [extra `reroute bench rinha` flags, e.g. --duration 20s]
#   SCENARIO=final scripts/rinha-local.sh --duration 30s --max-users 60
#
# Env: SCENARIO (preview, the default, or final: the 300 s final test, with
# the simulator started at the final's fees, default 0.07 and fallback 0.10),
# REROUTE_BIN (a prebuilt binary; default: build target/release/reroute),
# OUT (result JSON, default target/rinha-result.json, or
# target/rinha-final-result.json for the final), KEEP_DB=1 keeps the database
# in target/rinha-local/.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${SCENARIO:-preview}
case "$scenario" in
preview) fees=() default_out=target/rinha-result.json ;;
final) fees=(--default-fee 0.07 --fallback-fee 0.10) default_out=target/rinha-final-result.json ;;
*)
    echo "SCENARIO must be preview or final, not '$scenario'" >&2
    exit 2
    ;;
esac

bin=${REROUTE_BIN:-target/release/reroute}
[ -n "${REROUTE_BIN:-}" ] || cargo build --release --quiet --bin reroute
work=target/rinha-local
out=${OUT:-$default_out}
rm -rf "$work" && mkdir -p "$work"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${KEEP_DB:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

. scripts/lib.sh # wait_for

RUST_LOG=warn "$bin" sim "${fees[@]}" >"$work/sim.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin" serve --store "" --db "$work/reroute.db" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
wait_for "http://127.0.0.1:8001/payments/00000000-0000-4000-8000-000000000000"
wait_for "http://127.0.0.1:8002/payments/00000000-0000-4000-8000-000000000000"
wait_for "http://127.0.0.1:9999/payments-summary"

"$bin" bench rinha --scenario "$scenario" --out "$out" "$@"

ticks=$(getconf CLK_TCK)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$serve_pid/stat")
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
echo "reroute serve: CPU $(( (utime + stime) * 1000 / ticks )) ms, peak RSS $(( peak_kb / 1024 )) MB"
echo "result: $out"
