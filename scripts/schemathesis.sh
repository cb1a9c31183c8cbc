#!/usr/bin/env bash
# Schemathesis against the router's own OpenAPI document: every documented
# operation is called with generated requests (examples, coverage, fuzzing,
# stateful sequences), and every answer is checked: never a 5xx, a status
# the document lists, the documented content type, headers and body schema.
#
#   scripts/schemathesis.sh [extra `schemathesis run` flags, e.g. --max-examples 500]
#
# It installs schemathesis from PyPI into target/schemathesis-venv (once),
# builds `reroute` (or takes REROUTE_BIN), starts `reroute sim` and
# `reroute serve` on free ports with an embedded store in a temporary
# directory, and stops everything it started when it ends. Env:
# MAX_EXAMPLES (per operation, default 100), SEED (to replay a run), CHECKS
# (schemathesis checks; e.g. all, to also judge the input validation).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=$PWD/target/schemathesis-venv
version="schemathesis>=4.32,<5"
if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$version"
fi

bin=${REROUTE_BIN:-target/debug/reroute}
[ -n "${REROUTE_BIN:-}" ] || cargo build --quiet --bin reroute

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
. scripts/lib.sh # wait_for

default_port=$(free_port)
fallback_port=$(free_port)
port=$(free_port)
RUST_LOG=warn "$bin" sim --host 127.0.0.1 --default-port "$default_port" \
    --fallback-port "$fallback_port" >"$work/sim.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin" serve --host 127.0.0.1 --port "$port" --store "" --db "$work/reroute.db" \
    --default-url "http://127.0.0.1:$default_port" \
    --fallback-url "http://127.0.0.1:$fallback_port" >"$work/serve.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port/livez"

# /dashboard/events is a never-ending event stream: nothing to check in a
# bounded call. Run from the temporary directory: schemathesis leaves a
# .schemathesis cache in its working directory.
status=0
(cd "$work" && "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --checks "${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}" \
    --exclude-path /dashboard/events \
    --max-examples "${MAX_EXAMPLES:-100}" \
    --request-timeout 10 \
    --generation-database none \
    ${SEED:+--seed "$SEED"} \
    --no-color \
    "$@") || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- reroute serve log (last lines) ---" >&2
    tail -n 30 "$work/serve.log" >&2
fi
exit "$status"
