#!/usr/bin/env bash
# Validates the Rinha deployments (deploy/docker-compose*.yml) and checks the
# rules of the benchmark on what compose makes of them: resource limits adding
# up to at most 1.5 CPU and 350 MB, the load balancer published on 9999, the
# external `payment-processor` network joined, bridge networking only, and
# every unix-socket upstream of a mounted nginx.conf served by a service.
#
# Validation uses `docker compose config` (Compose v2) when this machine has
# it, else `docker-compose config` (v1, Debian's package, installed when
# missing). v1 predates the top-level `name:` key, so it is given the file
# without that line; everything else is validated as written. No Docker engine
# is needed.
#
#   scripts/compose-check.sh [FILE...]     # default: every deploy/docker-compose*.yml
set -euo pipefail
cd "$(dirname "$0")/.."

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(deploy/docker-compose*.yml)

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    if ! command -v docker-compose >/dev/null; then
        echo "compose-check: installing docker-compose (Debian package)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            docker-compose >/tmp/compose-check-apt.log 2>&1 || {
            cat /tmp/compose-check-apt.log >&2
            echo "compose-check: cannot install docker-compose" >&2
            exit 1
        }
    fi
    compose=(docker-compose)
fi

failed=0
for file in "${files[@]}"; do
    given=$file
    if [ "${compose[0]}" = docker-compose ]; then
        # Same directory, so that relative build contexts resolve the same.
        given=$(dirname "$file")/.compose-check-$(basename "$file")
        sed '/^name:/d' "$file" >"$given"
    fi
    if ! normalized=$("${compose[@]}" -f "$given" config 2>&1); then
        echo "$file: INVALID" >&2
        echo "$normalized" >&2
        failed=1
    elif ! echo "$normalized" | /usr/bin/python3 -c '
import os, re, sys, yaml
doc = yaml.safe_load(sys.stdin)
name = sys.argv[1]
def mb(text):
    text = str(text).strip().upper().rstrip("B")
    units = {"K": 1 / 1024, "M": 1, "G": 1024}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text) / 2**20
cpus = memory = 0.0
problems = []
published = False
for service, spec in doc["services"].items():
    limits = spec.get("deploy", {}).get("resources", {}).get("limits")
    if not limits or "cpus" not in limits or "memory" not in limits:
        problems.append(f"{service} has no cpus/memory limit")
        continue
    cpus += float(limits["cpus"])
    memory += mb(limits["memory"])
    if spec.get("network_mode") == "host":
        problems.append(f"{service} uses host networking")
    for port in spec.get("ports", []):
        if "9999" in str(port.get("published", port) if isinstance(port, dict) else port):
            published = True
if cpus > 1.5 + 1e-9:
    problems.append(f"limits add up to {cpus:g} CPU (at most 1.5)")
if memory > 350 + 1e-9:
    problems.append(f"limits add up to {memory:g} MB (at most 350)")
if not published:
    problems.append("nothing is published on port 9999")
networks = doc.get("networks", {})
if not networks.get("payment-processor", {}).get("external"):
    problems.append("the external payment-processor network is not joined")
for net, spec in networks.items():
    driver = (spec or {}).get("driver", "bridge")
    if driver != "bridge" and not (spec or {}).get("external"):
        problems.append(f"network {net} uses the {driver} driver")
# Every unix-socket upstream of a mounted nginx.conf is served by some
# service (the path is named in its command or environment).
served = set()
for service, spec in doc["services"].items():
    command = spec.get("command") or []
    if isinstance(command, str):
        command = command.split()
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env if "=" in e)
    served.update(w for w in list(command) + [str(v) for v in env.values()] if w.endswith(".sock"))
for service, spec in doc["services"].items():
    for volume in spec.get("volumes", []):
        source = volume.get("source") if isinstance(volume, dict) else str(volume).split(":")[0]
        if source and source.endswith("nginx.conf") and os.path.isfile(source):
            for path in re.findall(r"server\s+unix:([^\s;]+)", open(source).read()):
                if path not in served:
                    problems.append(f"{service}: its upstream unix:{path} is served by no service")
if problems:
    print(f"{name}: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
services = len(doc["services"])
print(f"{name}: valid; {services} services, limits {cpus:g} CPU / {memory:g} MB, 9999 published")
' "$file"; then
        failed=1
    fi
    [ "$given" = "$file" ] || rm -f "$given"
done
exit $failed
