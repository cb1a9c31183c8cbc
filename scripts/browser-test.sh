#!/usr/bin/env bash
# The live dashboard in a real browser (issue 6): starts `reroute sim` and
# `reroute serve` on free loopback ports, then tests/browser/dashboard.mjs
# loads /dashboard in Debian's headless chromium (driven by playwright-core,
# which downloads no browser), slows a processor so that its lane fills and
# payments spill (a small --max-in-flight makes a burst of 40 enough), drives
# a status change through the API and checks that the page shows both live.
# Screenshot: target/dashboard.png.
#
# Installs what it needs: chromium (apt) when /usr/bin/chromium is missing,
# playwright-core (npm ci in tests/browser). Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-test: installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo build -p reroute --quiet
bin=$root/target/debug/reroute

work=$(mktemp -d)
sim_pid=
serve_pid=

# Ends one process we started: SIGTERM, then SIGKILL after 10 s.
stop() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "browser-test: pid $pid ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  stop "$serve_pid"
  stop "$sim_pid"
  if [ "$status" -ne 0 ]; then
    echo "--- reroute serve (last lines)" >&2; tail -n 20 "$work/serve.log" >&2 || true
    echo "--- reroute sim (last lines)" >&2; tail -n 20 "$work/sim.log" >&2 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Three ports the kernel says are free now.
read -r default_port fallback_port router_port < <(node -e '
  const net = require("node:net");
  const grab = () => new Promise((ok) => { const s = net.createServer().listen(0, "127.0.0.1", () => ok(s)); });
  Promise.all([grab(), grab(), grab()]).then((servers) => {
    console.log(servers.map((s) => s.address().port).join(" "));
    servers.forEach((s) => s.close());
  });')
token=$(node -e 'console.log(require("node:crypto").randomBytes(12).toString("hex"))')
router=http://127.0.0.1:$router_port

REROUTE_LOG_FORMAT=text "$bin" sim --host 127.0.0.1 \
  --default-port "$default_port" --fallback-port "$fallback_port" \
  --health-window 200ms >"$work/sim.log" 2>&1 &
sim_pid=$!
"$bin" serve --host 127.0.0.1 --port "$router_port" --store "" --db "$work/reroute.db" \
  --default-url "http://127.0.0.1:$default_port" \
  --fallback-url "http://127.0.0.1:$fallback_port" \
  --health-interval-ms 500 --admin-token "$token" \
  --max-in-flight 8 --spill-wait-ms 2500 >"$work/serve.log" 2>&1 &
serve_pid=$!

# Ready: the router answers /readyz 200.
node -e '
  const url = process.argv[1] + "/readyz";
  const until = Date.now() + 30000;
  (async () => {
    for (;;) {
      try { if ((await fetch(url)).ok) return; } catch {}
      if (Date.now() > until) { console.error("the router was not ready within 30 s"); process.exit(1); }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();' "$router"

REROUTE_URL=$router REROUTE_TOKEN=$token SCREENSHOT=$root/target/dashboard.png \
  DEFAULT_URL=http://127.0.0.1:$default_port MAX_IN_FLIGHT=8 \
  node tests/browser/dashboard.mjs
